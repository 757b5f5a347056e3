//! A store with every case the renderer distinguishes, drawn from a seed: both clouds,
//! several instances, topics shared by groups polled at different times (the log-end
//! offset's newest-wins rule), stale, failing, unpolled and skipped groups, partitions
//! hidden by the cardinality controls, derived values present and absent, verdicts, group
//! states, and names that need escaping. Shared by `tests/scrape_stream.rs` and
//! `tests/scrape_allocations.rs` through `#[path]`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kafka_cloud_lag_exporter::model::{
    Cloud, GroupInfo, GroupProgress, GroupState, GroupTarget, InstanceRef, PartitionProgress,
    Rebalance, Status, TimeLag, TimeLagMethod, TopicProgress, Verdict, WorstPartition,
};
use kafka_cloud_lag_exporter::store::{Derived, PartitionDerived, Polled, Store, TopicDerived};

/// The latest poll time of the store; groups were polled up to a few minutes before it.
pub const NOW_SECS: u64 = 1_700_000_300;

/// How long a failing group's data stays exported in these stores.
pub const STALE_AFTER: Duration = Duration::from_secs(90);

/// The moment to render the store at.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// The groups of a varied store of `groups` groups (seeded), in no particular order.
pub fn targets(seed: u64, groups: usize) -> Vec<GroupTarget> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let instances: Vec<Arc<InstanceRef>> = (0..4)
        .map(|i| {
            let cloud = [Cloud::Alibaba, Cloud::Tencent][i % 2];
            Arc::new(InstanceRef {
                cloud,
                account: format!("acct-{cloud}").into(),
                region: "cn-hangzhou".into(),
                instance_id: format!("{cloud}-inst-{i}").into(),
            })
        })
        .collect();
    (0..groups)
        .map(|g| {
            let odd = match rng.u8(..20) {
                0 => "quo\"te",
                1 => "back\\slash",
                2 => "new\nline",
                _ => "",
            };
            GroupTarget {
                instance: instances[rng.usize(..instances.len())].clone(),
                group: format!("group-{odd}{g:03}").into(),
            }
        })
        .collect()
}

/// A poll of `target` at `at`, version `version` (later versions move every offset).
pub fn poll(rng: &mut fastrand::Rng, target: &GroupTarget, at: SystemTime, version: i64) -> Polled {
    // Topics come from a small pool per instance, so groups share them.
    let mut names: Vec<String> = (0..rng.usize(1..=4))
        .map(|_| match rng.u8(..12) {
            0 => "to\"pic".to_string(),
            1 => "to\\pic".to_string(),
            n => format!("topic-{}", n % 7),
        })
        .collect();
    names.sort();
    names.dedup();
    let mut derived = Derived::default();
    let topics: Vec<TopicProgress> = names
        .into_iter()
        .map(|topic| {
            let count = rng.i32(1..=6);
            let mut td = TopicDerived::default();
            let mut partitions = Vec::new();
            for p in 0..count {
                if rng.u8(..6) == 0 {
                    continue;
                }
                let log_end = 1_000 + i64::from(p) * 100 + rng.i64(0..50) + version * 1_000;
                td.partitions.push(PartitionDerived {
                    time_to_drain: rng.bool().then(|| rng.f64() * 1_000.0),
                    retention_margin: rng.bool().then(|| rng.f64() * 86_400.0 - 3_600.0),
                    hidden: rng.u8(..8) == 0,
                });
                let committed = (rng.u8(..5) != 0).then(|| log_end - rng.i64(-5..200));
                let last_consumed_ms = rng
                    .bool()
                    .then(|| 1_699_999_000_000 + rng.i64(0..1_000_000));
                let time_lag = rng.bool().then(|| TimeLag {
                    seconds: match rng.u8(..4) {
                        0 => 0.0,
                        1 => f64::from(rng.u32(..1_000)),
                        _ => rng.f64() * 500.0,
                    },
                    min_seconds: 0.0,
                    max_seconds: None,
                    method: TimeLagMethod::Interpolated,
                });
                partitions.push(PartitionProgress {
                    partition: p,
                    committed,
                    log_end,
                    last_consumed_ms,
                    time_lag,
                });
            }
            derived.topics.push(td);
            TopicProgress { topic, partitions }
        })
        .collect();
    derived.max_time_to_drain = rng.bool().then(|| rng.f64() * 100.0);
    derived.min_retention_margin = rng.bool().then(|| rng.f64() * 10_000.0 - 100.0);
    derived.skipped = rng.u8(..10) == 0;
    if rng.bool() {
        // Nothing derived: every partition shown, no derived value.
        derived.topics.clear();
    }
    let info = (target.instance.cloud == Cloud::Alibaba && rng.bool()).then(|| GroupInfo {
        state: GroupState::ALL[rng.usize(..GroupState::ALL.len())],
        members: rng.bool().then(|| rng.u32(..9)),
        rebalance: rng.bool().then(|| Rebalance {
            generation: rng.bool().then(|| rng.i64(0..100)),
            last_ms: rng
                .bool()
                .then(|| 1_699_999_000_000 + rng.i64(0..1_000_000)),
            succeeded: Some(true),
            duration_ms: None,
        }),
    });
    let worst = topics
        .first()
        .and_then(|t| t.partitions.first().map(|p| (t.topic.clone(), p.partition)));
    let verdict = rng.bool().then(|| Verdict {
        status: Status::ALL[rng.usize(..5)],
        worst: worst
            .filter(|_| rng.bool())
            .map(|(topic, partition)| WorstPartition {
                topic,
                partition,
                status: Status::Stall,
            }),
    });
    Polled {
        progress: GroupProgress { topics, info },
        verdict,
        at,
        derived,
    }
}

/// A varied store of `groups` groups, every value drawn from `seed`: most groups polled
/// (at distinct times), some failing since (a few of those for longer than
/// [`STALE_AFTER`]), some never polled, some with a group state read apart.
pub fn store(seed: u64, groups: usize) -> Store {
    let store = Store::new();
    store.set_stale_after(STALE_AFTER);
    let targets = targets(seed, groups);
    store.set_targets(&targets);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    for (i, t) in targets.iter().enumerate() {
        if rng.u8(..12) == 0 {
            continue; // never polled
        }
        // Distinct poll times, so that the newest log end is well defined.
        let at = now() - Duration::from_millis(200_000 - i as u64 * 97);
        store.record_poll(t, poll(&mut rng, t, at, 0));
        match rng.u8(..10) {
            0 => store.record_failure(t, at + Duration::from_secs(5)),
            1 => store.record_failure(t, now()),
            2 => store.record_info(
                t,
                GroupInfo {
                    state: GroupState::Empty,
                    members: Some(0),
                    rebalance: None,
                },
                at,
            ),
            _ => {}
        }
    }
    store
}

//! A store shaped like the benchmark scenario (`simulator --scenario bench-100k`): groups
//! of 5 topics × 10 partitions on both clouds, names of 20 to 40 characters, and every
//! lag family's inputs (time lag, last-consumed times, verdicts with a worst partition,
//! group state, members, rebalances). Shared by `tests/scrape_allocations.rs` and
//! `benches/scrape.rs` through `#[path]`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kafka_cloud_lag_exporter::model::{
    Cloud, GroupInfo, GroupProgress, GroupState, GroupTarget, InstanceRef, PartitionProgress,
    Rebalance, Status, TimeLag, TimeLagMethod, TopicProgress, Verdict, WorstPartition,
};
use kafka_cloud_lag_exporter::store::Store;

/// Topics per group and partitions per topic, as in the scenario.
pub const TOPICS: usize = 5;
pub const PARTITIONS: usize = 10;

/// When the store's polls happened.
pub const POLLED_AT_SECS: u64 = 1_700_000_000;

/// A store of `groups` groups polled at [`POLLED_AT_SECS`], stale after 90 s.
pub fn store(groups: usize) -> Store {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(POLLED_AT_SECS);
    let store = Store::new();
    store.set_stale_after(Duration::from_secs(90));
    let targets: Vec<GroupTarget> = (0..groups)
        .map(|g| {
            let cloud = [Cloud::Alibaba, Cloud::Tencent][g % 2];
            GroupTarget {
                instance: Arc::new(InstanceRef {
                    cloud,
                    account: format!("sim-{cloud}").into(),
                    region: "cn-hangzhou".into(),
                    instance_id: format!("{cloud}-instance-{:02}", g % 20).into(),
                }),
                group: format!("payments-settlement-{}-{g:05}", &"consumer-group"[..g % 14]).into(),
            }
        })
        .collect();
    store.set_targets(&targets);
    for (g, t) in targets.iter().enumerate() {
        let topic_name = |topic: usize| {
            format!(
                "orders-stream-{}-{g:05}-{topic}",
                &"events-topic-v2"[..g % 15]
            )
        };
        let topics = (0..TOPICS)
            .map(|topic| TopicProgress {
                topic: topic_name(topic),
                partitions: (0..PARTITIONS as i32)
                    .map(|p| {
                        // Values as varied as real ones, so that gzip has real work to do.
                        let n = (g * TOPICS + topic) as i64 * PARTITIONS as i64 + i64::from(p);
                        let spread = n.wrapping_mul(2_654_435_761) % 1_000_003;
                        let log_end = 10_000_000 + spread * 37;
                        PartitionProgress {
                            partition: p,
                            // Every fifth partition never committed, as the cloud reports it.
                            committed: (p % 5 != 4).then_some(log_end - spread % 5_000),
                            log_end,
                            last_consumed_ms: (t.instance.cloud == Cloud::Alibaba)
                                .then_some(1_699_999_000_000 + spread),
                            time_lag: Some(TimeLag {
                                seconds: spread as f64 / 1_000.0,
                                min_seconds: 0.0,
                                max_seconds: None,
                                method: TimeLagMethod::Interpolated,
                            }),
                        }
                    })
                    .collect(),
            })
            .collect();
        let info = GroupInfo {
            state: GroupState::Stable,
            members: Some(3),
            rebalance: Some(Rebalance {
                generation: Some(7),
                last_ms: Some(1_699_999_000_000),
                succeeded: Some(true),
                duration_ms: Some(1_200),
            }),
        };
        let verdict = Verdict {
            status: Status::Warn,
            worst: Some(WorstPartition {
                topic: topic_name(0),
                partition: 3,
                status: Status::Warn,
            }),
        };
        let progress = GroupProgress {
            topics,
            info: Some(info),
        };
        store.record_success(t, progress, Some(verdict), at);
    }
    store
}

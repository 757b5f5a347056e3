//! The numbers alerts are built on, end to end against the simulator of both clouds: time
//! to drain from the committed-offset history, the retention margin from the clouds'
//! retention. All on virtual time; nothing sleeps.

mod support;

use std::time::Duration;

use kafka_cloud_lag_exporter::model::Cloud;
use kcle_sim::SimSettings;
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{WorldSpec, group_name, instance_id, topic_name};
use support::{Harness, get, named, parse};
use tokio::sync::watch;

fn spec() -> WorldSpec {
    WorldSpec {
        groups_per_instance: 4,
        topics_per_group: 1,
        partitions_per_topic: 3,
        ..WorldSpec::default()
    }
}

/// Runs `rounds` rounds 30 s apart, each followed by what the daemon's retention loop
/// does after a round, and returns the exposition after the last.
async fn rounds(h: &Harness, rounds: usize) -> String {
    for i in 0..rounds {
        if i > 0 {
            support::advance(Duration::from_secs(30)).await;
        }
        let report = h.exporter.scheduler.run_once().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        h.exporter.scheduler.refresh_retention(false).await;
    }
    h.text()
}

/// Sets a Tencent topic's own retention and an Alibaba instance's retention.
fn short_retention(h: &Harness, tencent_topic: &str, topic_ms: i64, alibaba_hours: i64) {
    h.env.sim.state().world(|w| {
        let t = w
            .instance_mut(Cloud::Tencent, &instance_id(Cloud::Tencent, 1))
            .unwrap();
        t.topics.get_mut(tencent_topic).unwrap().retention_ms = Some(topic_ms);
        let a = w
            .instance_mut(Cloud::Alibaba, &instance_id(Cloud::Alibaba, 1))
            .unwrap();
        a.retention_hours = Some(alibaba_hours);
    });
}

fn requests(h: &Harness, cloud: Cloud, action: &str) -> u64 {
    h.env.sim.state().count(cloud, action, None)
}

#[tokio::test(start_paused = true)]
async fn time_to_drain_is_the_lag_at_the_consume_rate_and_absent_without_progress() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let samples = parse(&rounds(&h, 5).await);
    let world = h.env.sim.state().world(|w| w.clone());
    let mut checked = 0;
    for cloud in Cloud::ALL {
        let id = instance_id(cloud, 1);
        let inst = world.instance(cloud, &id).unwrap();
        for (n, expect_rate) in [(2, true), (3, false)] {
            let group = group_name(n);
            let g = &inst.groups[&group];
            // Group 2 falls behind (consumes slower than produced), group 3 has no members.
            assert_eq!(g.members > 0, expect_rate, "{group}");
            for (topic, rows) in world
                .progress(
                    cloud,
                    &id,
                    &group,
                    h.answered_at(cloud, &id, &group).unwrap(),
                )
                .unwrap()
            {
                for r in rows.iter().filter(|r| r.committed.is_some()) {
                    let part = r.partition.to_string();
                    let labels = [
                        ("cloud", cloud.as_str()),
                        ("instance_id", id.as_str()),
                        ("consumergroup", group.as_str()),
                        ("topic", topic.as_str()),
                        ("partition", part.as_str()),
                    ];
                    let drain = get(
                        &samples,
                        "kafka_consumergroup_time_to_drain_seconds",
                        &labels,
                    );
                    let lag = (r.log_end - r.committed.unwrap()) as f64;
                    assert!(lag > 0.0, "{labels:?}");
                    if expect_rate {
                        let want = lag / g.consume_per_sec;
                        let got = drain.unwrap_or_else(|| panic!("no drain time for {labels:?}"));
                        // Committed offsets are whole messages: ±1 over the window.
                        assert!(
                            (got - want).abs() / want < 0.05,
                            "{labels:?}: {got} vs {want}"
                        );
                    } else {
                        assert_eq!(drain, None, "{labels:?}: no progress, no drain time");
                    }
                    checked += 1;
                }
            }
            let group_labels = [
                ("cloud", cloud.as_str()),
                ("instance_id", id.as_str()),
                ("consumergroup", group.as_str()),
            ];
            let max = get(
                &samples,
                "kafka_consumergroup_max_time_to_drain_seconds",
                &group_labels,
            );
            assert_eq!(max.is_some(), expect_rate, "{group_labels:?}: {max:?}");
        }
    }
    assert_eq!(checked, 2 * (3 + 2), "group 3 misses one commit");
    for (labels, v) in named(&samples, "kafka_consumergroup_time_to_drain_seconds") {
        assert!(v.is_finite() && v >= 0.0, "{labels:?}: {v}");
    }
}

#[tokio::test(start_paused = true)]
async fn retention_margin_is_the_retention_minus_the_time_lag() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    // Group 2 reads topic 2 on each instance and falls behind.
    short_retention(&h, &topic_name(2), 600_000, 1);
    let samples = parse(&rounds(&h, 4).await);
    let retention = |cloud: Cloud, topic: &str| {
        let id = instance_id(cloud, 1);
        let labels = [
            ("cloud", cloud.as_str()),
            ("instance_id", id.as_str()),
            ("topic", topic),
        ];
        get(&samples, "kafka_topic_retention_seconds", &labels)
    };
    assert_eq!(retention(Cloud::Tencent, &topic_name(2)), Some(600.0));
    assert_eq!(
        retention(Cloud::Tencent, &topic_name(1)),
        Some(72.0 * 3600.0)
    );
    for n in 1..=4 {
        assert_eq!(
            retention(Cloud::Alibaba, &topic_name(n)),
            Some(3600.0),
            "the instance's"
        );
    }
    let mut margins = 0;
    for cloud in Cloud::ALL {
        let id = instance_id(cloud, 1);
        for n in 1..=4 {
            let (group, topic) = (group_name(n), topic_name(n));
            let mut min: Option<f64> = None;
            for p in ["0", "1", "2"] {
                let labels = [
                    ("cloud", cloud.as_str()),
                    ("instance_id", id.as_str()),
                    ("consumergroup", group.as_str()),
                    ("topic", topic.as_str()),
                    ("partition", p),
                ];
                let margin = get(
                    &samples,
                    "kafka_consumergroup_retention_margin_seconds",
                    &labels,
                );
                let lag = get(&samples, "kafka_consumergroup_lag", &labels);
                let lag_seconds = get(&samples, "kafka_consumergroup_lag_seconds", &labels);
                let want = match (lag, lag_seconds) {
                    (Some(l), Some(t)) if l > 0.0 => Some(retention(cloud, &topic).unwrap() - t),
                    _ => None,
                };
                assert_eq!(margin, want, "{labels:?}");
                if let Some(m) = margin {
                    margins += 1;
                    min = Some(min.map_or(m, |x: f64| x.min(m)));
                }
            }
            let group_labels = [
                ("cloud", cloud.as_str()),
                ("instance_id", id.as_str()),
                ("consumergroup", group.as_str()),
            ];
            assert_eq!(
                get(
                    &samples,
                    "kafka_consumergroup_min_retention_margin_seconds",
                    &group_labels
                ),
                min,
                "{group_labels:?}"
            );
        }
    }
    assert!(margins >= 10, "{margins} margins checked");
    // The short Tencent retention shows: its lagging group is within 10 minutes.
    let tencent_group_2 = [
        ("cloud", "tencent"),
        ("instance_id", "ckafka-sim0001"),
        ("consumergroup", "group-0002"),
    ];
    let m = get(
        &samples,
        "kafka_consumergroup_min_retention_margin_seconds",
        &tencent_group_2,
    )
    .unwrap();
    assert!(m < 600.0 && m > 0.0, "{m}");
}

#[tokio::test(start_paused = true)]
async fn retention_reads_fail_alone_and_can_be_turned_off() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let state = h.env.sim.state();
    // Tencent refuses the permission; throttling of Alibaba's listing is retried.
    state.inject(
        FaultRule::random(Fault::ApiError("UnauthorizedOperation".into()), 1.0)
            .cloud(Cloud::Tencent)
            .action("DescribeTopicAttributes"),
    );
    state.inject(
        FaultRule::times(Fault::Throttle, 2)
            .cloud(Cloud::Alibaba)
            .action("GetInstanceList"),
    );
    let samples = parse(&rounds(&h, 3).await);
    let auth = get(
        &samples,
        "kafka_cloud_lag_exporter_api_errors_total",
        &[
            ("action", "DescribeTopicAttributes"),
            ("cloud", "tencent"),
            ("kind", "auth"),
        ],
    );
    // One request per refresh: the rest of the instance's topics would fail alike.
    assert_eq!(auth, Some(3.0));
    assert_eq!(requests(&h, Cloud::Tencent, "DescribeTopicAttributes"), 3);
    let retained: Vec<_> = named(&samples, "kafka_topic_retention_seconds");
    assert!(
        retained.iter().all(|(l, _)| l[0].1 == "alibaba"),
        "{retained:?}"
    );
    assert_eq!(retained.len(), 4, "alibaba's, after the throttled attempts");
    assert!(
        named(&samples, "kafka_consumergroup_retention_margin_seconds")
            .iter()
            .all(|(l, _)| l[0].1 == "alibaba")
    );
    // Polls are untouched.
    for (l, up) in named(&samples, "kafka_cloud_lag_exporter_group_up") {
        assert_eq!(up, 1.0, "{l:?}");
    }

    // read_retention: false asks nothing.
    let h = Harness::with_config(spec(), SimSettings::default(), |c| {
        for a in &mut c.accounts {
            a.read_retention = false;
        }
    })
    .await;
    let samples = parse(&rounds(&h, 3).await);
    assert!(named(&samples, "kafka_topic_retention_seconds").is_empty());
    assert_eq!(requests(&h, Cloud::Tencent, "DescribeTopicAttributes"), 0);
    assert_eq!(requests(&h, Cloud::Alibaba, "GetInstanceList"), 0);
}

/// The daemon reads the retention of new topics after each round and of all topics every
/// `discovery_interval`, not more.
#[tokio::test(start_paused = true)]
async fn the_daemon_reads_retention_with_discovery() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let (stop, stopped) = watch::channel(false);
    let daemon = tokio::spawn(h.exporter.scheduler.clone().run(stopped));
    let mut finished = h.exporter.scheduler.rounds_finished();
    finished.wait_for(|r| *r >= 3).await.unwrap();
    // Four topics on the Tencent instance, one request each; the Alibaba instance once.
    let first = (
        requests(&h, Cloud::Tencent, "DescribeTopicAttributes"),
        requests(&h, Cloud::Alibaba, "GetInstanceList"),
    );
    assert_eq!(first, (4, 1));
    let samples = parse(&h.text());
    assert_eq!(named(&samples, "kafka_topic_retention_seconds").len(), 8);
    // After the discovery interval (5 minutes), once more.
    support::advance(Duration::from_secs(330)).await;
    let again = (
        requests(&h, Cloud::Tencent, "DescribeTopicAttributes"),
        requests(&h, Cloud::Alibaba, "GetInstanceList"),
    );
    assert_eq!(again, (8, 2));
    stop.send_replace(true);
    daemon.await.unwrap();
}

/// The lag families a cardinality control can leave out (default names).
const LAG_FAMILIES: [&str; 10] = [
    "kafka_consumergroup_current_offset",
    "kafka_consumergroup_lag",
    "kafka_consumergroup_lag_seconds",
    "kafka_consumergroup_topic_lag",
    "kafka_consumergroup_last_consumed_timestamp_seconds",
    "kafka_consumergroup_max_lag_seconds",
    "kafka_consumergroup_time_to_drain_seconds",
    "kafka_consumergroup_max_time_to_drain_seconds",
    "kafka_consumergroup_retention_margin_seconds",
    "kafka_consumergroup_min_retention_margin_seconds",
];

/// Lag-family samples per (cloud, instance id).
fn lag_series(samples: &support::Samples) -> std::collections::BTreeMap<(String, String), f64> {
    let mut out = std::collections::BTreeMap::new();
    for name in LAG_FAMILIES {
        for (labels, _) in named(samples, name) {
            *out.entry((labels[0].1.clone(), labels[1].1.clone()))
                .or_insert(0.0) += 1.0;
        }
    }
    out
}

/// The same world polled with and without `edit`: (without, with).
async fn with_and_without(
    edit: impl Fn(&mut kafka_cloud_lag_exporter::config::Config),
) -> (support::Samples, support::Samples) {
    let plain = Harness::new(spec(), SimSettings::default()).await;
    let plain = parse(&rounds(&plain, 3).await);
    let controlled = Harness::with_config(spec(), SimSettings::default(), edit).await;
    let controlled = parse(&rounds(&controlled, 3).await);
    (plain, controlled)
}

#[tokio::test(start_paused = true)]
async fn groups_skipped_by_state_keep_their_health_and_are_counted() {
    use kafka_cloud_lag_exporter::config::GroupStateName;
    // Group 3 of each instance has no members (Empty) and a backlog: kept by default...
    let (plain, kept) = with_and_without(|c| {
        c.cardinality.skip_groups.states = vec![GroupStateName::Empty, GroupStateName::Dead];
    })
    .await;
    assert_eq!(
        lag_series(&plain),
        lag_series(&kept),
        "a backlog stays visible"
    );
    // ...and skipped with `with_lag`.
    let (plain, skipped) = with_and_without(|c| {
        c.cardinality.skip_groups.states = vec![GroupStateName::Empty];
        c.cardinality.skip_groups.with_lag = true;
    })
    .await;
    let stopped = group_name(3);
    for cloud in Cloud::ALL {
        let id = instance_id(cloud, 1);
        let group = [
            ("cloud", cloud.as_str()),
            ("instance_id", id.as_str()),
            ("consumergroup", stopped.as_str()),
        ];
        for name in LAG_FAMILIES {
            assert!(
                named(&skipped, name)
                    .iter()
                    .all(|(l, _)| l[2].1 != stopped || l[0].1 != cloud.as_str()),
                "{name} of {group:?}"
            );
        }
        assert_eq!(
            get(&skipped, "kafka_cloud_lag_exporter_group_up", &group),
            Some(1.0)
        );
        let empty = [group[0], group[1], group[2], ("state", "Empty")];
        assert_eq!(
            get(&skipped, "kafka_consumergroup_state", &empty),
            Some(1.0)
        );
        // The gauge counts exactly what went missing.
        let key = (cloud.as_str().to_string(), id.clone());
        let missing = lag_series(&plain)[&key] - lag_series(&skipped)[&key];
        assert!(missing > 0.0);
        let suppressed = |reason: &str| {
            get(
                &skipped,
                "kafka_cloud_lag_exporter_suppressed_series",
                &[
                    ("cloud", cloud.as_str()),
                    ("instance_id", id.as_str()),
                    ("reason", reason),
                ],
            )
        };
        assert_eq!(suppressed("group_state"), Some(missing), "{cloud}");
        assert_eq!(suppressed("partition_limit"), Some(0.0));
    }
}

#[tokio::test(start_paused = true)]
async fn above_the_partition_limit_groups_keep_their_top_partitions() {
    // 4 groups x 3 partitions = 12 pairs per instance, above 10: each group keeps its
    // partition of largest lag and its per-group series.
    let (plain, limited) = with_and_without(|c| {
        c.cardinality.max_partition_series = 10;
        c.cardinality.top_partitions = 1;
    })
    .await;
    for cloud in Cloud::ALL {
        let id = instance_id(cloud, 1);
        for n in 1..=4 {
            let group = group_name(n);
            let lags = |s: &support::Samples| -> Vec<(String, f64)> {
                named(s, "kafka_consumergroup_lag")
                    .into_iter()
                    .filter(|(l, _)| l[0].1 == cloud.as_str() && l[2].1 == group)
                    .map(|(l, v)| (l[4].1.clone(), v))
                    .collect()
            };
            let all = lags(&plain);
            let kept = lags(&limited);
            assert_eq!(kept.len(), 1, "{cloud} {group}: {kept:?}");
            let largest = all.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
            assert_eq!(
                kept[0].1, largest,
                "{cloud} {group}: the largest lag of {all:?}"
            );
            // Per-group and per-topic series stay, with the same values.
            for name in [
                "kafka_consumergroup_topic_lag",
                "kafka_consumergroup_max_lag_seconds",
            ] {
                let of = |s: &support::Samples| -> Vec<f64> {
                    named(s, name)
                        .into_iter()
                        .filter(|(l, _)| l[0].1 == cloud.as_str() && l[2].1 == group)
                        .map(|(_, v)| v)
                        .collect()
                };
                assert_eq!(of(&plain), of(&limited), "{name} {cloud} {group}");
            }
        }
        let key = (cloud.as_str().to_string(), id.clone());
        let missing = lag_series(&plain)[&key] - lag_series(&limited)[&key];
        let suppressed = get(
            &limited,
            "kafka_cloud_lag_exporter_suppressed_series",
            &[
                ("cloud", cloud.as_str()),
                ("instance_id", id.as_str()),
                ("reason", "partition_limit"),
            ],
        );
        assert!(missing > 0.0);
        assert_eq!(suppressed, Some(missing), "{cloud}");
    }
    // Log-end offsets are one per partition, whatever the limit.
    assert_eq!(
        named(&plain, "kafka_topic_partition_current_offset").len(),
        named(&limited, "kafka_topic_partition_current_offset").len()
    );
}

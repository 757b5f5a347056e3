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

//! The numbers alerts are built on, end to end against the simulator of both clouds: time
//! to drain from the committed-offset history. All on virtual time; nothing sleeps.

mod support;

use std::time::Duration;

use kafka_cloud_lag_exporter::model::Cloud;
use kcle_sim::SimSettings;
use kcle_sim::world::{WorldSpec, group_name, instance_id};
use support::{Harness, get, named, parse};

fn spec() -> WorldSpec {
    WorldSpec {
        groups_per_instance: 4,
        topics_per_group: 1,
        partitions_per_topic: 3,
        ..WorldSpec::default()
    }
}

/// Runs `rounds` rounds 30 s apart and returns the exposition after the last.
async fn rounds(h: &Harness, rounds: usize) -> String {
    for i in 0..rounds {
        if i > 0 {
            support::advance(Duration::from_secs(30)).await;
        }
        let report = h.exporter.scheduler.run_once().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
    h.text()
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

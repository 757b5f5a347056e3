//! Fleet scale and failure behaviour against the simulator: faults of every kind, stale
//! series, groups and partitions that come and go, discovery, request budgets, reloads
//! and log summaries. The simulator and the exporter share a virtual clock; nothing sleeps
//! except where a real per-request timeout is the thing under test.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_cloud_lag_exporter::config::{InstanceDiscovery, NameFilter, Pattern};
use kafka_cloud_lag_exporter::model::Cloud;
use kcle_clock::unix_millis;
use kcle_sim::SimSettings;
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{WorldSpec, group_name, instance_id, topic_name};
use support::{Harness, Samples, get, named, parse};

fn spec() -> WorldSpec {
    WorldSpec {
        instances_per_cloud: 1,
        groups_per_instance: 4,
        topics_per_group: 2,
        partitions_per_topic: 3,
        ..WorldSpec::default()
    }
}

fn group_labels<'a>(
    cloud: Cloud,
    instance: &'a str,
    group: &'a str,
) -> [(&'static str, &'a str); 3] {
    [
        ("cloud", cloud.as_str()),
        ("instance_id", instance),
        ("consumergroup", group),
    ]
}

fn counter(samples: &Samples, name: &str, cloud: Cloud, action: &str, kind: Option<&str>) -> f64 {
    named(samples, name)
        .into_iter()
        .filter(|(l, _)| {
            l.iter().any(|(k, v)| k == "cloud" && v == cloud.as_str())
                && l.iter().any(|(k, v)| k == "action" && v == action)
                && kind.is_none_or(|kind| l.iter().any(|(k, v)| k == "kind" && v == kind))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Each kind of fault, for one group on each cloud: that group fails, every other group
/// keeps exact values, and the exporter's counters equal what the simulator answered.
#[tokio::test(start_paused = true)]
async fn every_fault_kind_fails_only_its_group_and_counters_match() {
    let auth_code = |cloud: Cloud| match cloud {
        Cloud::Alibaba => "InvalidAccessKeyId.NotFound",
        Cloud::Tencent => "AuthFailure.SignatureFailure",
    };
    type MakeFault = Box<dyn Fn(Cloud) -> Fault>;
    let cases: Vec<(&str, MakeFault, &str)> = vec![
        ("5xx", Box::new(|_| Fault::HttpStatus(503)), "http"),
        ("server error", Box::new(|_| Fault::ServerError), ""),
        ("throttling", Box::new(|_| Fault::Throttle), "throttled"),
        (
            "truncated json",
            Box::new(|_| Fault::Truncated),
            "bad_response",
        ),
        (
            "wrong shape",
            Box::new(|_| Fault::WrongShape),
            "bad_response",
        ),
        ("hang", Box::new(|_| Fault::Hang), "timeout"),
        (
            "auth",
            Box::new(move |c| Fault::ApiError(auth_code(c).into())),
            "auth",
        ),
    ];
    let failing = group_name(2);
    for (name, fault, kind) in cases {
        let h = Harness::with_config(spec(), SimSettings::default(), |c| {
            // Hangs cost a real request timeout each; keep it short, and the budget out of
            // the way so that only the faults decide the outcome.
            c.request_timeout = Some(Duration::from_millis(300));
            for a in &mut c.accounts {
                a.api_rate_limits
                    .insert(poll_action_of(a.cloud).into(), 1000.0);
            }
        })
        .await;
        let state = h.env.sim.state();
        for cloud in [Cloud::Alibaba, Cloud::Tencent] {
            state.inject(
                FaultRule::random(fault(cloud), 1.0)
                    .cloud(cloud)
                    .group(&failing),
            );
        }
        let report = h.exporter.scheduler.run_once().await;
        assert_eq!(report.failed.len(), 2, "{name}: {:?}", report.failed);
        let samples = parse(&h.text());
        for cloud in [Cloud::Alibaba, Cloud::Tencent] {
            let inst = instance_id(cloud, 1);
            for g in 1..=4 {
                let group = group_name(g);
                if group == failing {
                    let up = get(
                        &samples,
                        "kafka_cloud_lag_exporter_group_up",
                        &group_labels(cloud, &inst, &group),
                    );
                    assert_eq!(up, Some(0.0), "{name}");
                } else {
                    h.assert_group_matches(&samples, cloud, &inst, &group);
                }
            }
            let action = poll_action_of(cloud);
            let sent = state.count(cloud, action, None) as f64;
            let failed = sent - state.count(cloud, action, Some("ok")) as f64;
            let requests = counter(
                &samples,
                "kafka_cloud_lag_exporter_api_requests_total",
                cloud,
                action,
                None,
            );
            let errors = counter(
                &samples,
                "kafka_cloud_lag_exporter_api_errors_total",
                cloud,
                action,
                None,
            );
            assert_eq!(
                requests, sent,
                "{name} {cloud}: requests counted = requests answered"
            );
            assert_eq!(
                errors, failed,
                "{name} {cloud}: errors counted = faults answered"
            );
            assert!(
                failed >= 1.0,
                "{name} {cloud}: {:?} report {:?}",
                state.counts(),
                report.failed
            );
            if !kind.is_empty() {
                let of_kind = counter(
                    &samples,
                    "kafka_cloud_lag_exporter_api_errors_total",
                    cloud,
                    action,
                    Some(kind),
                );
                assert_eq!(
                    of_kind, failed,
                    "{name} {cloud}: every failure is of kind {kind}"
                );
            }
            let retries = counter(
                &samples,
                "kafka_cloud_lag_exporter_api_retries_total",
                cloud,
                action,
                None,
            );
            if kind == "auth" {
                assert_eq!(retries, 0.0, "{name} {cloud}: auth errors are not retried");
                assert_eq!(failed, 1.0);
            } else {
                assert_eq!(
                    retries,
                    failed - 1.0,
                    "{name} {cloud}: every failure but the last was retried"
                );
            }
        }
    }
}

/// A group whose polls fail keeps its last values for `stale_after` (with `group_up` 0
/// and a frozen last-success time); after that its lag series disappear.
#[tokio::test(start_paused = true)]
async fn failing_group_keeps_values_until_stale_after_then_loses_them() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    h.exporter.scheduler.run_once().await;
    let inst = instance_id(Cloud::Tencent, 1);
    let group = group_name(1);
    let before = parse(&h.text());
    let g = group_labels(Cloud::Tencent, &inst, &group);
    let t0_secs = get(
        &before,
        "kafka_cloud_lag_exporter_last_success_timestamp_seconds",
        &g,
    )
    .unwrap();
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs_f64(t0_secs);
    let lag_of = |s: &Samples| {
        named(s, "kafka_consumergroup_lag")
            .into_iter()
            .filter(|(l, _)| l[0].1 == "tencent" && l[2].1 == group)
            .map(|(l, v)| (l.clone(), v))
            .collect::<BTreeMap<_, _>>()
    };
    let old = lag_of(&before);
    assert!(!old.is_empty());

    h.env.sim.state().inject(
        FaultRule::random(Fault::ApiError("InvalidParameter".into()), 1.0)
            .cloud(Cloud::Tencent)
            .group(&group),
    );
    support::advance(Duration::from_secs(30)).await;
    h.exporter.scheduler.run_once().await;
    for (at, present) in [(60, true), (90, true), (91, false), (600, false)] {
        let to = t0 + Duration::from_secs(at);
        support::advance(to.duration_since(h.clock.now()).unwrap()).await;
        let s = parse(&h.text());
        assert_eq!(
            get(&s, "kafka_cloud_lag_exporter_group_up", &g),
            Some(0.0),
            "at +{at}s"
        );
        assert_eq!(
            get(
                &s,
                "kafka_cloud_lag_exporter_last_success_timestamp_seconds",
                &g
            ),
            Some(t0_secs),
            "frozen at +{at}s"
        );
        let lag = lag_of(&s);
        if present {
            assert_eq!(lag, old, "last values kept at +{at}s");
        } else {
            assert!(lag.is_empty(), "stale after 90s: gone at +{at}s");
        }
        // The healthy groups are unaffected.
        let healthy = named(&s, "kafka_consumergroup_lag")
            .into_iter()
            .filter(|(l, _)| l[2].1 != group)
            .count();
        assert!(healthy > 0, "at +{at}s");
    }
}

/// Groups deleted mid-run are dropped (and come back when they reappear); partitions
/// added appear; topics that vanish from a successful answer vanish at once.
#[tokio::test(start_paused = true)]
async fn groups_topics_and_partitions_follow_the_cloud() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let state = h.env.sim.state().clone();
    let inst = instance_id(Cloud::Tencent, 1);
    h.exporter.scheduler.run_once().await;

    let gone = group_name(2);
    state
        .world(|w| w.delete_group(Cloud::Tencent, &inst, &gone))
        .unwrap();
    let report = h.exporter.scheduler.run_once().await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].1.kind.as_str(), "not_found");
    let s = parse(&h.text());
    let g = group_labels(Cloud::Tencent, &inst, &gone);
    assert_eq!(
        get(&s, "kafka_cloud_lag_exporter_group_up", &g),
        None,
        "dropped"
    );
    assert!(
        named(&s, "kafka_consumergroup_lag")
            .iter()
            .all(|(l, _)| !(l[0].1 == "tencent" && l[2].1 == gone))
    );
    h.assert_group_matches(&s, Cloud::Tencent, &inst, &group_name(1));

    // It comes back when the cloud has it again.
    let now = unix_millis(h.clock.now());
    state
        .world(|w| w.add_group(Cloud::Tencent, &inst, &gone, &[&topic_name(1)], 0, now))
        .unwrap();
    h.exporter.scheduler.run_once().await;
    let s = parse(&h.text());
    assert_eq!(get(&s, "kafka_cloud_lag_exporter_group_up", &g), Some(1.0));
    h.assert_group_matches(&s, Cloud::Tencent, &inst, &gone);

    // Partitions added to a topic of group 1: their log end appears, without a commit.
    let t1 = topic_name(1);
    state
        .world(|w| w.add_partitions(Cloud::Tencent, &inst, &t1, 2, now))
        .unwrap();
    // A topic of group 1 is deleted.
    let t2 = topic_name(2);
    state
        .world(|w| w.delete_topic(Cloud::Tencent, &inst, &t2))
        .unwrap();
    h.exporter.scheduler.run_once().await;
    let s = parse(&h.text());
    let g1 = group_name(1);
    for p in ["3", "4"] {
        let end = [
            ("cloud", "tencent"),
            ("instance_id", inst.as_str()),
            ("topic", t1.as_str()),
            ("partition", p),
        ];
        assert!(
            get(&s, "kafka_topic_partition_current_offset", &end).is_some(),
            "partition {p}"
        );
        let l = [
            ("cloud", "tencent"),
            ("instance_id", inst.as_str()),
            ("consumergroup", g1.as_str()),
            ("topic", t1.as_str()),
            ("partition", p),
        ];
        assert_eq!(
            get(&s, "kafka_consumergroup_lag", &l),
            None,
            "no commit yet on {p}"
        );
    }
    assert!(
        s.keys().all(|(_, l)| !l
            .iter()
            .any(|(k, v)| k == "topic" && *v == t2 && l.iter().any(|(_, c)| c == "tencent"))),
        "a deleted topic's series vanish at once"
    );
    h.assert_group_matches(&s, Cloud::Tencent, &inst, &group_name(1));
}

fn patterns(p: &[&str]) -> Vec<Pattern> {
    p.iter().map(|s| Pattern::new(s).unwrap()).collect()
}

/// Instances and groups are discovered with filters, refreshed without a restart, and a
/// failed listing keeps the groups of the last successful one.
#[tokio::test(start_paused = true)]
async fn discovery_finds_filters_refreshes_and_survives_errors() {
    let spec = WorldSpec {
        instances_per_cloud: 2,
        ..spec()
    };
    let h = Harness::with_config(spec, SimSettings::default(), |c| {
        for a in &mut c.accounts {
            match a.cloud {
                Cloud::Tencent => {
                    a.instances.clear();
                    a.discover_instances = Some(InstanceDiscovery {
                        groups: NameFilter {
                            include: Vec::new(),
                            exclude: patterns(&["group-0004"]),
                        },
                        ..InstanceDiscovery::default()
                    });
                }
                Cloud::Alibaba => {
                    a.instances[0].groups.clear();
                    a.instances[0].discover_groups = Some(NameFilter {
                        include: patterns(&["group-000[12]"]),
                        exclude: Vec::new(),
                    });
                }
            }
        }
    })
    .await;
    let state = h.env.sim.state().clone();
    let (tc1, tc2) = (
        instance_id(Cloud::Tencent, 1),
        instance_id(Cloud::Tencent, 2),
    );
    let ali1 = instance_id(Cloud::Alibaba, 1);
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let ups = |s: &Samples, cloud: &str, inst: &str| -> Vec<String> {
        named(s, "kafka_cloud_lag_exporter_group_up")
            .into_iter()
            .filter(|(l, _)| l[0].1 == cloud && l[1].1 == inst)
            .map(|(l, _)| l[2].1.clone())
            .collect()
    };
    let s = parse(&h.text());
    assert_eq!(
        ups(&s, "tencent", &tc1),
        ["group-0001", "group-0002", "group-0003"]
    );
    assert_eq!(
        ups(&s, "tencent", &tc2),
        ["group-0001", "group-0002", "group-0003"]
    );
    assert_eq!(ups(&s, "alibaba", &ali1), ["group-0001", "group-0002"]);
    assert_eq!(
        ups(&s, "alibaba", &instance_id(Cloud::Alibaba, 2)).len(),
        4,
        "listed instance untouched"
    );
    let discovered = |s: &Samples, cloud: &str, inst: &str| {
        get(
            s,
            "kafka_cloud_lag_exporter_discovered_groups",
            &[("cloud", cloud), ("instance_id", inst)],
        )
    };
    assert_eq!(discovered(&s, "tencent", &tc1), Some(3.0));
    assert_eq!(discovered(&s, "alibaba", &ali1), Some(2.0));
    let last_ok = get(
        &s,
        "kafka_cloud_lag_exporter_discovery_last_success_timestamp_seconds",
        &[("cloud", "tencent"), ("account", "sim-tencent")],
    );
    assert!(last_ok.is_some());

    // Groups come and go; instances stop running.
    let now = unix_millis(h.clock.now());
    state.world(|w| {
        w.add_group(Cloud::Tencent, &tc1, "payments", &[&topic_name(1)], 1, now)
            .unwrap();
        w.delete_group(Cloud::Tencent, &tc1, &group_name(1))
            .unwrap();
        w.instances
            .get_mut(&(Cloud::Tencent, tc2.clone()))
            .unwrap()
            .status = kcle_sim::world::InstanceStatus::Stopped;
    });
    support::advance(Duration::from_secs(300)).await;
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let s = parse(&h.text());
    assert_eq!(
        ups(&s, "tencent", &tc1),
        ["group-0002", "group-0003", "payments"]
    );
    assert!(
        ups(&s, "tencent", &tc2).is_empty(),
        "a stopped instance is no longer polled"
    );
    h.assert_group_matches(&s, Cloud::Tencent, &tc1, "payments");

    // Listing fails: the groups of the last good listing stay polled.
    for action in ["DescribeInstances", "GetConsumerList"] {
        state.inject(
            FaultRule::random(Fault::ApiError("InvalidParameter".into()), 1.0).action(action),
        );
    }
    support::advance(Duration::from_secs(300)).await;
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let s2 = parse(&h.text());
    assert_eq!(
        ups(&s2, "tencent", &tc1),
        ["group-0002", "group-0003", "payments"]
    );
    assert_eq!(ups(&s2, "alibaba", &ali1), ["group-0001", "group-0002"]);
    for (cloud, account) in [("tencent", "sim-tencent"), ("alibaba", "sim-alibaba")] {
        let errors = get(
            &s2,
            "kafka_cloud_lag_exporter_discovery_errors_total",
            &[("account", account), ("cloud", cloud)],
        );
        assert_eq!(errors, Some(1.0), "{cloud}");
        let last = get(
            &s2,
            "kafka_cloud_lag_exporter_discovery_last_success_timestamp_seconds",
            &[("cloud", cloud), ("account", account)],
        );
        let previous = get(
            &s,
            "kafka_cloud_lag_exporter_discovery_last_success_timestamp_seconds",
            &[("cloud", cloud), ("account", account)],
        );
        assert_eq!(last, previous, "{cloud}: frozen while listings fail");
    }
}

/// An account may cover several regions: discovery finds instances in each, and each is
/// polled through its own region.
#[tokio::test(start_paused = true)]
async fn discovery_covers_several_regions() {
    let spec = WorldSpec {
        instances_per_cloud: 2,
        ..spec()
    };
    let h = Harness::with_config(spec, SimSettings::default(), |c| {
        let a = c
            .accounts
            .iter_mut()
            .find(|a| a.cloud == Cloud::Tencent)
            .unwrap();
        a.region = None;
        a.regions = vec!["ap-guangzhou".into(), "ap-shanghai".into()];
        a.instances.clear();
        a.discover_instances = Some(InstanceDiscovery::default());
    })
    .await;
    let tc2 = instance_id(Cloud::Tencent, 2);
    h.env.sim.state().world(|w| {
        w.instances
            .get_mut(&(Cloud::Tencent, tc2.clone()))
            .unwrap()
            .region = "ap-shanghai".into();
    });
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let s = parse(&h.text());
    for (inst, region) in [
        (instance_id(Cloud::Tencent, 1), "ap-guangzhou"),
        (tc2.clone(), "ap-shanghai"),
    ] {
        let info = [
            ("cloud", "tencent"),
            ("instance_id", inst.as_str()),
            ("account", "sim-tencent"),
            ("region", region),
        ];
        assert_eq!(
            get(&s, "kafka_cloud_lag_exporter_instance_info", &info),
            Some(1.0),
            "{inst}"
        );
        h.assert_group_matches(&s, Cloud::Tencent, &inst, &group_name(1));
    }
}

/// When the cloud's limit is far below the configured budget, the exporter lowers its rate
/// towards it: later rounds get every group through and are throttled less.
#[tokio::test(start_paused = true)]
async fn throttling_lowers_the_budget_towards_an_unknown_limit() {
    let spec = WorldSpec {
        groups_per_instance: 60,
        topics_per_group: 1,
        partitions_per_topic: 1,
        ..WorldSpec::default()
    };
    let settings = SimSettings {
        tencent_rate_limit: Some(5.0),
        ..SimSettings::default()
    };
    let h = Harness::with_config(spec, settings, |c| {
        c.request_timeout = Some(Duration::from_secs(20));
        let a = c
            .accounts
            .iter_mut()
            .find(|a| a.cloud == Cloud::Tencent)
            .unwrap();
        a.api_rate_limits
            .insert("DescribeGroupOffsets".into(), 40.0);
    })
    .await;
    let state = h.env.sim.state().clone();
    let count =
        |outcome: Option<&str>| state.count(Cloud::Tencent, "DescribeGroupOffsets", outcome);
    // While the budget comes down from 8× the limit, a poll may be throttled on every
    // attempt until its deadline; it is polled again next round.
    let report = h.exporter.scheduler.run_once().await;
    assert!(
        report.failed.len() <= 6,
        "at most a tenth: {}",
        report.failed.len()
    );
    let (sent, throttled) = (count(None), count(Some("RequestLimitExceeded")));
    assert!(
        throttled > 0,
        "the simulator's 5/s limit was hit while the budget was 40/s"
    );
    // Once found, the limit is kept: later rounds are rarely throttled.
    for _ in 0..3 {
        support::advance(Duration::from_secs(30)).await;
        let report = h.exporter.scheduler.run_once().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
    let later_sent = count(None) - sent;
    let later_throttled = count(Some("RequestLimitExceeded")) - throttled;
    eprintln!(
        "first round: {throttled} of {sent} throttled; next three: {later_throttled} of {later_sent}"
    );
    // A window of 40 outcomes keeps occasional throttling from dragging the rate down, at
    // the price of tolerating up to a quarter of requests throttled before slowing down.
    assert!(
        (later_throttled as f64 / later_sent as f64) < (throttled as f64 / sent as f64)
            && later_throttled * 10 <= later_sent * 3,
        "later rounds are throttled less than the first, and under 30%: {later_throttled} of {later_sent}"
    );
    let s = parse(&h.text());
    let rate = get(
        &s,
        "kafka_cloud_lag_exporter_api_rate_limit",
        &[
            ("cloud", "tencent"),
            ("account", "sim-tencent"),
            ("action", "DescribeGroupOffsets"),
        ],
    )
    .unwrap();
    assert!(
        (40.0 / 64.0..10.0).contains(&rate),
        "lowered from 40/s towards the 5/s limit: {rate}"
    );
}

/// A round that cannot fit its interval under the budget is reported by a metric and a
/// warning saying which interval would fit.
#[tokio::test(start_paused = true)]
async fn a_round_that_cannot_fit_is_reported_with_the_interval_that_would() {
    let spec = WorldSpec {
        groups_per_instance: 100,
        topics_per_group: 1,
        partitions_per_topic: 1,
        ..WorldSpec::default()
    };
    let h = Harness::with_config(spec, SimSettings::default(), |c| {
        let a = c
            .accounts
            .iter_mut()
            .find(|a| a.cloud == Cloud::Alibaba)
            .unwrap();
        a.api_rate_limits.insert("GetConsumerProgress".into(), 2.0);
    })
    .await;
    let logs = capture_logs();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    // The round engine checks the fit when a round starts, in `once` as in the daemon.
    let report = h.round().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let s = parse(&h.text());
    let need = |cloud: &str, account: &str| {
        get(
            &s,
            "kafka_cloud_lag_exporter_poll_round_budget_seconds",
            &[("cloud", cloud), ("account", account)],
        )
    };
    assert_eq!(
        need("alibaba", "sim-alibaba"),
        Some(50.0),
        "100 requests at 2/s"
    );
    assert_eq!(
        need("tencent", "sim-tencent"),
        Some(1.0),
        "100 requests at 100/s fit in 30 s"
    );
    let text = logs.text();
    assert!(text.contains("set poll_interval to at least 50s"), "{text}");
    assert_eq!(
        text.matches("a poll round needs").count(),
        1,
        "only the account that does not fit: {text}"
    );
}

/// Identical failures are logged once and then summarised, with the cloud's code and
/// RequestId, and never a secret.
#[tokio::test(start_paused = true)]
async fn failure_logs_are_summarised_and_carry_no_secret() {
    let h = Harness::new(
        WorldSpec {
            groups_per_instance: 10,
            topics_per_group: 1,
            partitions_per_topic: 1,
            ..WorldSpec::default()
        },
        SimSettings::default(),
    )
    .await;
    let logs = capture_logs();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    h.env.sim.state().inject(
        FaultRule::random(Fault::ApiError("AuthFailure.SecretIdNotFound".into()), 1.0)
            .cloud(Cloud::Tencent),
    );
    h.exporter.scheduler.run_once().await;
    support::advance(Duration::from_secs(61)).await;
    h.exporter.scheduler.run_once().await;
    let text = logs.text();
    let failed_lines: Vec<&str> = text.lines().filter(|l| l.contains("poll failed")).collect();
    assert_eq!(failed_lines.len(), 2, "one per summary window: {text}");
    assert!(
        failed_lines[0].contains("AuthFailure.SecretIdNotFound"),
        "{}",
        failed_lines[0]
    );
    assert!(
        failed_lines[0].contains("request_id="),
        "{}",
        failed_lines[0]
    );
    assert!(
        failed_lines[0].contains("group=group-"),
        "{}",
        failed_lines[0]
    );
    assert!(
        failed_lines[0].contains("action=DescribeGroupOffsets"),
        "{}",
        failed_lines[0]
    );
    assert!(text.contains("9 more polls failed the same way"), "{text}");
    for secret in ["sim-tencent-secret", "sim-alibaba-secret", "Signature="] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// A log capture for one test (the test runtime is single-threaded, so a thread-local
/// default subscriber sees every task).
struct Logs(Arc<Mutex<Vec<u8>>>);

fn capture_logs() -> Logs {
    Logs(Arc::new(Mutex::new(Vec::new())))
}

impl Logs {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let buf = self.0.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(buf.clone()))
            .finish()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn poll_action_of(cloud: Cloud) -> &'static str {
    kafka_cloud_lag_exporter::providers::profile(cloud).poll_action
}

/// `max_concurrency` bounds the account's requests in flight: with one slot, polls of a
/// slow API queue behind each other instead of overlapping.
#[tokio::test(start_paused = true)]
async fn max_concurrency_bounds_requests_in_flight() {
    let arrivals = |concurrency: usize| async move {
        let h = Harness::with_config(spec(), SimSettings::default(), |c| {
            for a in &mut c.accounts {
                a.max_concurrency = concurrency;
            }
        })
        .await;
        h.env.sim.state().inject(
            FaultRule::random(Fault::Delay(Duration::from_secs(1)), 1.0).cloud(Cloud::Alibaba),
        );
        let t0 = unix_millis(h.clock.now());
        let report = h.round().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        h.env
            .sim
            .state()
            .requests()
            .iter()
            .filter(|r| r.cloud == Cloud::Alibaba)
            .map(|r| r.at_ms - t0)
            .collect::<Vec<_>>()
    };
    let parallel = arrivals(20).await;
    let serial = arrivals(1).await;
    assert_eq!(parallel.len(), serial.len());
    assert!(
        parallel.windows(2).all(|w| w[1] - w[0] == 100),
        "budget pace: {parallel:?}"
    );
    assert!(
        serial.windows(2).all(|w| w[1] - w[0] == 1000),
        "one at a time: {serial:?}"
    );
}

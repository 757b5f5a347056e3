//! The exporter against the simulator of both clouds, end to end: real HTTP, real
//! signing, the scheduler, the store, the renderer and the server. Time is a virtual clock
//! shared by the simulator and the exporter; nothing sleeps.

mod support;

use std::time::Duration;

use kafka_cloud_lag_exporter::config::MetricNames;
use kafka_cloud_lag_exporter::model::Cloud;
use kcle_clock::unix_millis;
use kcle_sim::SimSettings;
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{WorldSpec, group_name};
use support::{Harness, get, named, parse};

fn spec() -> WorldSpec {
    WorldSpec {
        instances_per_cloud: 2,
        groups_per_instance: 4,
        topics_per_group: 2,
        partitions_per_topic: 3,
        ..WorldSpec::default()
    }
}

/// Every exported offset equals the simulator's value at the time it answered.
fn assert_matches_world(h: &Harness) {
    let samples = parse(&h.text());
    let world = h.env.sim.state().world(|w| w.clone());
    let mut checked = 0;
    for inst in world.instances.values() {
        for group in inst.groups.keys() {
            checked += h.assert_group_matches(&samples, inst.cloud, &inst.id, group);
            // Alibaba's produce time of the last consumed message, where it is known.
            let at_ms = h.answered_at(inst.cloud, &inst.id, group).unwrap();
            for (topic, rows) in world.progress(inst.cloud, &inst.id, group, at_ms).unwrap() {
                for r in rows {
                    let part = r.partition.to_string();
                    let l = [
                        ("cloud", inst.cloud.as_str()),
                        ("instance_id", inst.id.as_str()),
                        ("consumergroup", group.as_str()),
                        ("topic", topic.as_str()),
                        ("partition", part.as_str()),
                    ];
                    let ts = get(
                        &samples,
                        "kafka_consumergroup_last_consumed_timestamp_seconds",
                        &l,
                    );
                    match (inst.cloud, r.last_consumed_ms) {
                        (Cloud::Alibaba, Some(ms)) => {
                            assert_eq!(ts, Some(ms as f64 / 1000.0), "{l:?}")
                        }
                        _ => assert_eq!(ts, None, "{l:?}"),
                    }
                }
                let tl = [
                    ("cloud", inst.cloud.as_str()),
                    ("instance_id", inst.id.as_str()),
                    ("consumergroup", group.as_str()),
                    ("topic", topic.as_str()),
                ];
                let rows = world.progress(inst.cloud, &inst.id, group, at_ms).unwrap();
                let expected: i64 = rows
                    .iter()
                    .find(|(t, _)| *t == topic)
                    .map(|(_, rs)| {
                        rs.iter()
                            .filter_map(|r| r.committed.map(|c| (r.log_end - c).max(0)))
                            .sum()
                    })
                    .unwrap();
                assert_eq!(
                    get(&samples, "kafka_consumergroup_topic_lag", &tl),
                    Some(expected as f64)
                );
            }
        }
    }
    let s = spec();
    assert_eq!(
        checked,
        2 * s.instances_per_cloud
            * s.groups_per_instance
            * s.topics_per_group
            * s.partitions_per_topic
    );
}

#[tokio::test(start_paused = true)]
async fn exported_values_equal_the_simulators_for_both_clouds() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.succeeded, 16);
    assert_matches_world(&h);

    // Offsets move with time: after 30 s the stopped groups lag more and every group is
    // polled again at the new time.
    support::advance(Duration::from_secs(30)).await;
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_matches_world(&h);
    let samples = parse(&h.text());
    // Tencent has no message timestamps: the second poll gives interpolated time lag.
    let lagging_tencent: Vec<_> = named(&samples, "kafka_consumergroup_lag_seconds")
        .into_iter()
        .filter(|(l, v)| l[0].1 == "tencent" && *v > 0.0)
        .collect();
    assert!(!lagging_tencent.is_empty());
}

/// An Alibaba account that does not choose a signature version signs every request with
/// V3 (ACS3-HMAC-SHA256 in the `Authorization` header), as the current official SDK does.
#[tokio::test(start_paused = true)]
async fn alibaba_signs_with_v3_unless_told_otherwise() {
    let settings = SimSettings {
        record_raw: true,
        ..SimSettings::default()
    };
    let h = Harness::new(spec(), settings).await;
    assert!(
        h.env
            .config
            .accounts
            .iter()
            .all(|a| a.signature_version.is_none()),
        "the test configuration leaves the version to the default"
    );
    let report = h.round().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let alibaba: Vec<_> = h
        .env
        .sim
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.cloud == Cloud::Alibaba)
        .collect();
    assert!(!alibaba.is_empty());
    for r in alibaba {
        let raw = r.raw.as_ref().expect("raw requests are recorded");
        let auth = raw.header("authorization").unwrap_or_default();
        assert!(
            auth.starts_with("ACS3-HMAC-SHA256 "),
            "{}: {auth:?}",
            r.action
        );
        assert!(
            !raw.path_and_query.contains("Signature="),
            "{}: no V2 query signature",
            r.action
        );
    }
}

/// The whole exposition of one round, in one naming mode, against its golden file.
async fn golden_exposition_in(names: MetricNames, file: &str) {
    let h = Harness::with_config(
        WorldSpec {
            groups_per_instance: 3,
            topics_per_group: 1,
            partitions_per_topic: 2,
            ..WorldSpec::default()
        },
        SimSettings::default(),
        |c| c.metric_names = names,
    )
    .await;
    // Virtual time and seeded jitter: every value, durations included, is determined by
    // the seed and the clock, so the whole exposition is compared.
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let text = h.text();
    let path = format!(
        "{}/tests/fixtures/metrics/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).expect("run with UPDATE_EXPECT=1 to create the golden file");
    if text != expected {
        // Show only what differs: the whole exposition is long.
        let got: std::collections::BTreeSet<&str> = text.lines().collect();
        let want: std::collections::BTreeSet<&str> = expected.lines().collect();
        let missing: Vec<&&str> = want.difference(&got).take(10).collect();
        let extra: Vec<&&str> = got.difference(&want).take(10).collect();
        panic!(
            "{file}: exposition changed (if intended, rerun with UPDATE_EXPECT=1)\nmissing: {missing:#?}\nextra: {extra:#?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn golden_exposition() {
    golden_exposition_in(MetricNames::KafkaExporter, "expected.prom").await;
}

#[tokio::test(start_paused = true)]
async fn golden_exposition_with_kafka_lag_exporter_names() {
    golden_exposition_in(
        MetricNames::KafkaLagExporter,
        "expected-kafka_lag_exporter.prom",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn one_failing_group_leaves_the_others_untouched() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let bad = group_name(2);
    let state = h.env.sim.state();
    state.inject(
        FaultRule::random(Fault::ApiError("InvalidParameter".into()), 1.0)
            .cloud(Cloud::Tencent)
            .group(&bad),
    );
    let report = h.exporter.scheduler.run_once().await;
    // The group exists on both Tencent instances; InvalidParameter is not retried.
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    let samples = parse(&h.text());
    for (labels, up) in named(&samples, "kafka_cloud_lag_exporter_group_up") {
        let failing = labels[0].1 == "tencent" && labels[2].1 == bad;
        assert_eq!(up, if failing { 0.0 } else { 1.0 }, "{labels:?}");
    }
    let errors = get(
        &samples,
        "kafka_cloud_lag_exporter_api_errors_total",
        &[
            ("action", "DescribeGroupOffsets"),
            ("cloud", "tencent"),
            ("kind", "api_error"),
        ],
    );
    assert_eq!(errors, Some(2.0));
    assert_eq!(
        state.count(
            Cloud::Tencent,
            "DescribeGroupOffsets",
            Some("fault:api_error")
        ),
        2
    );
    // Healthy groups of the same instance are exported as usual.
    let healthy = named(&samples, "kafka_consumergroup_lag")
        .into_iter()
        .filter(|(l, _)| l[0].1 == "tencent")
        .count();
    assert!(healthy > 0);
    assert!(
        named(&samples, "kafka_consumergroup_lag")
            .iter()
            .all(|(l, _)| !(l[0].1 == "tencent" && l[2].1 == bad)),
        "a group that never succeeded has no lag series"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_faults_are_retried_and_counted() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let state = h.env.sim.state();
    state.inject(
        FaultRule::times(Fault::ServerError, 1)
            .cloud(Cloud::Alibaba)
            .group(&group_name(1)),
    );
    state.inject(
        FaultRule::times(Fault::Throttle, 1)
            .cloud(Cloud::Tencent)
            .action("DescribeGroupOffsets")
            .group(&group_name(1)),
    );
    state.inject(
        FaultRule::times(Fault::Truncated, 1)
            .cloud(Cloud::Tencent)
            .action("DescribeGroupOffsets")
            .group(&group_name(3)),
    );
    let start = h.clock.now();
    let report = h.exporter.scheduler.run_once().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let samples = parse(&h.text());
    let count = |name: &str, labels: &[(&str, &str)]| get(&samples, name, labels).unwrap_or(0.0);
    let ali = [("action", "GetConsumerProgress"), ("cloud", "alibaba")];
    let tc = [("action", "DescribeGroupOffsets"), ("cloud", "tencent")];
    assert_eq!(
        count("kafka_cloud_lag_exporter_api_retries_total", &ali),
        1.0
    );
    assert_eq!(
        count("kafka_cloud_lag_exporter_api_retries_total", &tc),
        2.0
    );
    assert_eq!(
        count("kafka_cloud_lag_exporter_api_requests_total", &ali),
        9.0
    );
    assert_eq!(
        count("kafka_cloud_lag_exporter_api_requests_total", &tc),
        10.0
    );
    assert_eq!(
        count(
            "kafka_cloud_lag_exporter_api_errors_total",
            &[tc[0], tc[1], ("kind", "throttled")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "kafka_cloud_lag_exporter_api_errors_total",
            &[tc[0], tc[1], ("kind", "bad_response")]
        ),
        1.0
    );
    // Backoff waited on the virtual clock, not in real time.
    assert!(h.clock.now() > start);
    assert!(unix_millis(h.clock.now()) - unix_millis(start) < 30_000);
}

#[tokio::test(start_paused = true)]
async fn http_endpoints() {
    let h = Harness::new(spec(), SimSettings::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = h.exporter.server_state("/metrics", None);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(kafka_cloud_lag_exporter::web::serve(
        listener, state, stopped,
    ));
    kafka_cloud_lag_exporter::providers::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    let r = get("/readyz").await.unwrap();
    assert_eq!(r.status(), 503, "not ready before the first round");
    h.exporter.scheduler.run_once().await;
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    let landing = get("/").await.unwrap().text().await.unwrap();
    assert!(landing.contains("href=\"/metrics\""));

    let r = get("/metrics").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let plain = r.text().await.unwrap();
    assert!(plain.contains("kafka_consumergroup_lag{cloud=\"alibaba\""));
    assert!(plain.contains("kafka_consumergroup_lag{cloud=\"tencent\""));

    let r = client
        .get(format!("{base}/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let compressed = r.bytes().await.unwrap();
    let mut decoded = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut decoded)
        .unwrap();
    assert_eq!(
        decoded,
        plain,
        "same body, compressed ({} of {} bytes)",
        compressed.len(),
        plain.len()
    );

    stop.send(true).unwrap();
    server.await.unwrap();
}

/// docs/metrics.md describes exactly what the exporter renders: every family of a full
/// exposition (both clouds, listed and discovered groups, two rounds so that time lag and
/// discovery show) is documented with its type and label set, and every documented
/// metric is rendered, in both naming modes (the "Compatibility names" table lists the
/// families of `kafka_lag_exporter` mode and which default ones they replace). A new
/// instrument without a line in the docs fails here.
#[tokio::test(start_paused = true)]
async fn docs_describe_exactly_what_the_exporter_renders() {
    for names in [MetricNames::KafkaExporter, MetricNames::KafkaLagExporter] {
        let text = full_exposition(names).await;
        let problems = compare_with_docs(&text, names);
        assert!(
            problems.is_empty(),
            "docs/metrics.md vs /metrics ({names:?}):\n{}",
            problems.join("\n")
        );
    }
}

/// A full exposition: both clouds, listed and discovered groups, four rounds.
async fn full_exposition(names: MetricNames) -> String {
    use kafka_cloud_lag_exporter::config::{InstanceDiscovery, NameFilter};

    let h = Harness::with_sim_config(spec(), SimSettings::default(), |sim, c| {
        c.metric_names = names;
        // The shortest window, so that a stopped group's verdict shows within the run.
        c.verdict.window = 3;
        for a in &mut c.accounts {
            match a.cloud {
                Cloud::Tencent => {
                    a.discover_instances = Some(InstanceDiscovery::default());
                    a.instances.truncate(1);
                }
                Cloud::Alibaba => {
                    a.instances[0].groups.clear();
                    a.instances[0].discover_groups = Some(NameFilter::default());
                    // Temporary credentials, so that the credential families show.
                    a.credentials = Some(kafka_cloud_lag_exporter::config::CredentialsConfig {
                        instance_role: Some(Default::default()),
                        metadata_endpoint: Some(sim.metadata_endpoint(Cloud::Alibaba)),
                        ..Default::default()
                    });
                }
            }
        }
    })
    .await;
    for _ in 0..4 {
        let report = h.exporter.scheduler.run_once().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        // What the daemon's retention loop does after each round.
        h.exporter.scheduler.refresh_retention(false).await;
        support::advance(Duration::from_secs(30)).await;
    }
    h.text()
}

/// What differs between the families of `text` and those docs/metrics.md documents for
/// the naming mode `names`.
fn compare_with_docs(text: &str, names: MetricNames) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};

    // What is rendered: family -> (type, label names); histogram series fold into theirs.
    let mut rendered: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            rendered.insert(name.to_string(), (kind.to_string(), BTreeSet::new()));
        }
    }
    let mut with_samples = BTreeSet::new();
    for ((name, labels), _) in parse(text) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|base| rendered.get(*base).is_some_and(|(k, _)| k == "histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        let entry = rendered
            .get_mut(&family)
            .unwrap_or_else(|| panic!("{name} has no # TYPE line"));
        entry
            .1
            .extend(labels.into_iter().map(|(k, _)| k).filter(|k| k != "le"));
        with_samples.insert(family);
    }

    // What is documented: | `name` | type | labels | ... |, the compatibility table's rows
    // only in that mode, where they replace the family their fourth column names.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut documented: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    let mut replaced = BTreeSet::new();
    let mut compatibility = false;
    for line in doc.lines() {
        if line.starts_with("## ") {
            compatibility = line.starts_with("## Compatibility names");
        }
        if !line.starts_with("| `kafka_") {
            continue;
        }
        if compatibility && names != MetricNames::KafkaLagExporter {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if compatibility && cells[4].starts_with('`') {
            replaced.insert(cells[4].trim_matches('`').to_string());
        }
        documented.insert(name, (cells[2].to_string(), labels));
    }
    for name in &replaced {
        assert!(
            documented.remove(name).is_some(),
            "{name} is not documented"
        );
    }

    let all: BTreeSet<&String> = rendered.keys().chain(documented.keys()).collect();
    let mut problems = Vec::new();
    for name in all {
        match (rendered.get(name), documented.get(name)) {
            (Some(r), Some(d)) if r != d => problems.push(format!(
                "{name}: rendered as {} {:?}, documented as {} {:?}",
                r.0, r.1, d.0, d.1
            )),
            (Some(_), None) => problems.push(format!("{name}: rendered but not documented")),
            (None, Some(_)) => problems.push(format!("{name}: documented but not rendered")),
            _ => {}
        }
        if rendered.contains_key(name) && !with_samples.contains(name) {
            problems.push(format!(
                "{name}: no sample in the full exposition, so its labels are unchecked"
            ));
        }
    }
    problems
}

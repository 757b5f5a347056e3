//! Shared helpers of the integration tests: a simulated environment on a manual clock,
//! and a parser of the text exposition.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::app::Exporter;
use kafka_cloud_lag_exporter::clock::{ManualClock, SharedClock};
use kafka_cloud_lag_exporter::demo::{SimEnvironment, start_environment};
use kafka_cloud_lag_exporter::sim::SimSettings;
use kafka_cloud_lag_exporter::sim::world::WorldSpec;

/// 2023-11-14T22:13:20Z: a fixed start so that golden output is stable.
pub const T0_SECS: u64 = 1_700_000_000;

/// A simulator and an exporter sharing one manual clock.
pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub env: SimEnvironment,
    pub exporter: Arc<Exporter>,
}

impl Harness {
    pub async fn new(spec: WorldSpec, settings: SimSettings) -> Harness {
        let clock = ManualClock::at_unix(T0_SECS);
        let shared: SharedClock = clock.clone();
        let env = start_environment(
            &spec,
            settings,
            shared.clone(),
            Duration::from_secs(30),
            None,
        )
        .await
        .expect("simulator starts");
        let exporter = Exporter::new(env.config.clone(), shared, Arc::new(env.resolver()), None);
        Harness {
            clock,
            env,
            exporter,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.exporter.render()).expect("exposition is UTF-8")
    }
}

/// One sample: metric name and label pairs (in exposition order) to value.
pub type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parses the samples of a text exposition (comments skipped). Panics on a malformed line,
/// which is itself a failure of the exporter.
pub fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (
                n,
                parse_labels(rest.strip_suffix('}').expect("closing brace")),
            ),
            None => (series, Vec::new()),
        };
        let previous = out.insert((name.to_string(), labels), value);
        assert!(previous.is_none(), "duplicate series: {line}");
    }
    out
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name, value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

/// Looks a sample up by name and label values given in order.
pub fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let key = (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    samples.get(&key).copied()
}

/// Samples of one metric name.
pub fn named<'a>(samples: &'a Samples, name: &str) -> Vec<(&'a Vec<(String, String)>, f64)> {
    samples
        .iter()
        .filter(|((n, _), _)| n == name)
        .map(|((_, l), v)| (l, *v))
        .collect()
}

impl Harness {
    /// A harness whose configuration is edited before the exporter is built.
    pub async fn with_config(
        spec: WorldSpec,
        settings: SimSettings,
        edit: impl FnOnce(&mut kafka_cloud_lag_exporter::config::Config),
    ) -> Harness {
        let clock = ManualClock::at_unix(T0_SECS);
        let shared: SharedClock = clock.clone();
        let mut env = start_environment(
            &spec,
            settings,
            shared.clone(),
            Duration::from_secs(30),
            None,
        )
        .await
        .expect("simulator starts");
        edit(&mut env.config);
        let path = std::path::Path::new("test.yaml");
        env.config.validate(path).expect("edited config is valid");
        let exporter = Exporter::new(env.config.clone(), shared, Arc::new(env.resolver()), None);
        Harness {
            clock,
            env,
            exporter,
        }
    }

    /// The simulator time (Unix ms) of the last successful poll request of a group.
    pub fn answered_at(&self, cloud: Cloud, instance: &str, group: &str) -> Option<i64> {
        self.env
            .sim
            .state()
            .requests()
            .iter()
            .rev()
            .find(|r| {
                r.cloud == cloud
                    && r.outcome == "ok"
                    && r.action == kafka_cloud_lag_exporter::providers::poll_action(cloud)
                    && r.group.as_deref() == Some(group)
                    && r.params.get("InstanceId").map(String::as_str) == Some(instance)
            })
            .map(|r| r.at_ms)
    }

    /// Asserts that every exported series of one group equals the simulator's values at the
    /// time it answered; returns how many partitions were checked.
    pub fn assert_group_matches(
        &self,
        samples: &Samples,
        cloud: Cloud,
        instance: &str,
        group: &str,
    ) -> usize {
        let at_ms = self
            .answered_at(cloud, instance, group)
            .unwrap_or_else(|| panic!("{group} was never answered"));
        let progress = self
            .env
            .sim
            .state()
            .world(|w| w.progress(cloud, instance, group, at_ms))
            .expect("group exists");
        let c = cloud.as_str();
        let g = [
            ("cloud", c),
            ("instance_id", instance),
            ("consumergroup", group),
        ];
        assert_eq!(
            get(samples, "kafka_cloud_lag_exporter_group_up", &g),
            Some(1.0),
            "{g:?}"
        );
        let mut checked = 0;
        for (topic, rows) in &progress {
            for r in rows {
                let part = r.partition.to_string();
                let l = [
                    g[0],
                    g[1],
                    g[2],
                    ("topic", topic.as_str()),
                    ("partition", part.as_str()),
                ];
                let end = [
                    g[0],
                    g[1],
                    ("topic", topic.as_str()),
                    ("partition", part.as_str()),
                ];
                assert!(
                    get(samples, "kafka_topic_partition_current_offset", &end).is_some(),
                    "{end:?}"
                );
                let current = get(samples, "kafka_consumergroup_current_offset", &l);
                let lag = get(samples, "kafka_consumergroup_lag", &l);
                match r.committed {
                    Some(committed) => {
                        assert_eq!(current, Some(committed as f64), "{l:?}");
                        assert_eq!(lag, Some((r.log_end - committed).max(0) as f64), "{l:?}");
                    }
                    None => {
                        assert_eq!(current, None, "{l:?}");
                        assert_eq!(lag, None, "{l:?}");
                    }
                }
                checked += 1;
            }
        }
        checked
    }
}

use kafka_cloud_lag_exporter::model::Cloud;

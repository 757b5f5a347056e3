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

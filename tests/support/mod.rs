//! Shared helpers of the integration tests: a simulated environment on one virtual clock
//! (every test runs on a paused tokio runtime, so waits take no real time), a recording
//! API observer, and a parser of the text exposition.

#![allow(dead_code)]

pub mod accuracy;
pub mod creds;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_cloud_lag_exporter::commands::demo::{account_name, config_for};
use kafka_cloud_lag_exporter::config::{Account, Config};
use kafka_cloud_lag_exporter::credentials::CredentialSources;
use kafka_cloud_lag_exporter::exporter::{Exporter, Runtime};
use kafka_cloud_lag_exporter::model::Cloud;
use kafka_cloud_lag_exporter::providers::{ApiObserver, ErrorKind};
use kcle_clock::{Clock, unix_millis};
use kcle_sim::world::{World, WorldSpec};
use kcle_sim::{SimSettings, Simulator};

/// 2023-11-14T22:13:20Z: a fixed start so that golden output is stable.
pub const T0_SECS: u64 = 1_700_000_000;

/// Lets `d` of virtual time pass: everything due on the way (polls, retries, discovery)
/// runs in deadline order while the calling test waits. On the paused test runtime this
/// takes no real time.
pub async fn advance(d: Duration) {
    kcle_clock::Clock::system().sleep(d).await;
}

/// A running simulator and a configuration for it.
pub struct SimEnvironment {
    pub sim: Simulator,
    pub config: Config,
    /// Credential sources by account name (the simulator's keys, inline).
    pub credentials: HashMap<String, CredentialSources>,
}

impl SimEnvironment {
    /// The credential sources of an account of this environment.
    pub fn resolver(&self) -> impl Fn(&Account) -> CredentialSources + Send + Sync + 'static {
        let map = self.credentials.clone();
        // An account given a `credentials` block uses it (OIDC and the other sources
        // against the simulator); the others get the simulator's keys.
        move |a: &Account| match (&a.credentials, map.get(&a.name)) {
            (None, Some(sources)) => sources.clone(),
            _ => a.credential_sources(),
        }
    }

    /// What an exporter of this environment runs on.
    pub fn runtime(&self, clock: &Clock) -> Runtime {
        Runtime {
            clock: clock.clone(),
            credentials: Arc::new(self.resolver()),
            http: kafka_cloud_lag_exporter::providers::http::client(),
        }
    }
}

/// Starts a simulator with a generated world on `clock` and a configuration for it.
pub async fn start_environment(
    spec: &WorldSpec,
    settings: SimSettings,
    clock: Clock,
    poll_interval: Duration,
) -> SimEnvironment {
    let world = World::generate(spec, unix_millis(clock.now()));
    start_environment_with_world(world, settings, clock, poll_interval).await
}

/// Starts a simulator serving `world` on `clock` and a configuration for it.
pub async fn start_environment_with_world(
    world: World,
    settings: SimSettings,
    clock: Clock,
    poll_interval: Duration,
) -> SimEnvironment {
    let keys = (
        settings.alibaba_keys.first().cloned(),
        settings.tencent_keys.first().cloned(),
    );
    let sim = Simulator::start(settings, world.clone(), clock)
        .await
        .expect("simulator starts");
    let config = config_for(&world, &sim, poll_interval);
    let mut credentials = HashMap::new();
    for (cloud, key) in [(Cloud::Alibaba, keys.0), (Cloud::Tencent, keys.1)] {
        if let Some(k) = key {
            credentials.insert(
                account_name(cloud).to_string(),
                CredentialSources::inline(&k.id, &k.secret, k.token.as_deref()),
            );
        }
    }
    SimEnvironment {
        sim,
        config,
        credentials,
    }
}

/// A simulator and an exporter sharing one virtual clock.
pub struct Harness {
    pub clock: Clock,
    pub env: SimEnvironment,
    pub exporter: Arc<Exporter>,
}

impl Harness {
    pub async fn new(spec: WorldSpec, settings: SimSettings) -> Harness {
        Harness::with_config(spec, settings, |_| {}).await
    }

    /// A harness whose configuration is edited before the exporter is built.
    pub async fn with_config(
        spec: WorldSpec,
        settings: SimSettings,
        edit: impl FnOnce(&mut Config),
    ) -> Harness {
        Harness::with_sim_config(spec, settings, |_, config| edit(config)).await
    }

    /// A harness whose configuration is edited, knowing the simulator's endpoints (STS,
    /// metadata), before the exporter is built.
    pub async fn with_sim_config(
        spec: WorldSpec,
        settings: SimSettings,
        edit: impl FnOnce(&Simulator, &mut Config),
    ) -> Harness {
        let clock = Clock::virtual_at_unix(T0_SECS);
        let mut env =
            start_environment(&spec, settings, clock.clone(), Duration::from_secs(30)).await;
        edit(&env.sim, &mut env.config);
        let path = std::path::Path::new("test.yaml");
        env.config.validate(path).expect("edited config is valid");
        let exporter = Exporter::new(env.config.clone(), env.runtime(&clock), None);
        Harness {
            clock,
            env,
            exporter,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.exporter.render()).expect("exposition is UTF-8")
    }

    /// Runs `once`'s round: discovery, then one round of polls, all of them ended.
    pub async fn round(&self) -> kafka_cloud_lag_exporter::scheduler::RoundReport {
        self.exporter.scheduler.run_once().await
    }
}

/// Records every API observer call as text (`request A`, `error A kind`, `retry A`).
#[derive(Debug, Default)]
pub struct RecordingObserver(Mutex<Vec<String>>);

impl RecordingObserver {
    fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// How many events are exactly `event`.
    pub fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| *e == event).count()
    }

    /// How many events start with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

impl ApiObserver for RecordingObserver {
    fn request(&self, _: Cloud, action: &'static str) {
        self.push(format!("request {action}"));
    }
    fn error(&self, _: Cloud, action: &'static str, kind: ErrorKind) {
        self.push(format!("error {action} {kind}"));
    }
    fn retry(&self, _: Cloud, action: &'static str) {
        self.push(format!("retry {action}"));
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
                    && r.action == kafka_cloud_lag_exporter::providers::profile(cloud).poll_action
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

//! The configuration file: serde types (unknown keys rejected), named defaults, and
//! [`Config::validate`], which names the file, the field path and what is allowed.
//!
//! `config.example.yaml` documents every key and is parsed by a test below; keep the two
//! in step. Secrets never live here: accounts name environment variables or files.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::credentials::{
    AssumeRoleSpec, BaseSource, CredentialSources, CredentialSpec, OidcSpec, Source,
};
use crate::model::Cloud;
pub use crate::providers::alibaba::SignatureVersion;
use crate::providers::profile;

/// Default `listen` address; 9758 is this exporter's port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9758";
/// Default `poll_interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Longest default `request_timeout`: the default is the smaller of this and
/// [`DEFAULT_REQUEST_TIMEOUT_SHARE`] of `poll_interval`, so any interval works unedited.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The share of `poll_interval` the default `request_timeout` may take: half, so that a
/// poll that runs to its deadline still ends well before the group's next turn.
pub const DEFAULT_REQUEST_TIMEOUT_SHARE: u32 = 2;
/// Default `accounts[].max_concurrency`: enough for the documented Tencent rate at a
/// few hundred milliseconds of latency.
pub const DEFAULT_MAX_CONCURRENCY: usize = 20;
/// Largest accepted `accounts[].max_concurrency`.
pub const MAX_CONCURRENCY_LIMIT: usize = 64;
/// Default `discovery_interval`.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(300);
/// Largest accepted `api_rate_limits` value.
pub const MAX_RATE_LIMIT: f64 = 1000.0;

/// Shortest accepted `poll_interval`.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on; `--web.listen-address` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// How often every consumer group is polled.
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// Deadline of one poll of one group, retries and pages included; `None`: the
    /// default, see [`Config::request_timeout`].
    #[serde(default, with = "optional_duration")]
    pub request_timeout: Option<Duration>,
    /// How long a group whose polls fail keeps its last values on `/metrics`;
    /// default 3 × `poll_interval`.
    #[serde(default, with = "optional_duration")]
    pub stale_after: Option<Duration>,
    /// How often discovered instances and groups are listed again.
    #[serde(default = "default_discovery_interval", with = "duration")]
    pub discovery_interval: Duration,
    /// A writable directory where the time-lag history is kept, so that estimates survive
    /// restarts; without it they start afresh at the second poll after each start.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The Burrow-style verdict per group.
    #[serde(default)]
    pub verdict: VerdictConfig,
    /// The names and labels of the lag families.
    #[serde(default)]
    pub metric_names: MetricNames,
    /// Controls of the number of series.
    #[serde(default)]
    pub cardinality: CardinalityConfig,
    /// The cloud accounts to poll.
    pub accounts: Vec<Account>,
}

/// How group verdicts are evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// Polls per sliding window (Burrow's `intervals`).
    #[serde(default = "default_verdict_window")]
    pub window: usize,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        VerdictConfig {
            window: default_verdict_window(),
        }
    }
}

fn default_verdict_window() -> usize {
    crate::verdict::DEFAULT_WINDOW
}

/// Which family of metric names the lag series follow, so that the dashboards and alerts
/// of the exporter users migrate from keep working.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricNames {
    /// danielqsj/kafka_exporter's names (`kafka_consumergroup_lag`, ...) with the labels
    /// `cloud`, `instance_id`, `consumergroup`, `topic`, `partition`.
    #[default]
    KafkaExporter,
    /// seglo/kafka-lag-exporter's names (`kafka_consumergroup_group_lag`, ...) with its
    /// labels `cluster_name` (the instance id), `group`, `topic`, `partition`.
    KafkaLagExporter,
}

/// Which series are left out when there are too many (kminion #108's request and the
/// like): groups by state, and per-partition series above a per-instance limit.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardinalityConfig {
    /// Groups whose lag series are left out, by their Kafka state.
    #[serde(default)]
    pub skip_groups: SkipGroups,
    /// Most (group, partition) pairs of one instance exported per partition; above it,
    /// each group of the instance keeps its `top_partitions` partitions of largest lag
    /// and its per-group series.
    #[serde(default = "default_max_partition_series")]
    pub max_partition_series: usize,
    /// Partitions of largest lag each group keeps above `max_partition_series`.
    #[serde(default = "default_top_partitions")]
    pub top_partitions: usize,
}

impl Default for CardinalityConfig {
    fn default() -> Self {
        CardinalityConfig {
            skip_groups: SkipGroups::default(),
            max_partition_series: DEFAULT_MAX_PARTITION_SERIES,
            top_partitions: DEFAULT_TOP_PARTITIONS,
        }
    }
}

/// Groups whose lag series are left out by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipGroups {
    /// The Kafka states to skip, e.g. `[Empty, Dead]`; none by default.
    #[serde(default)]
    pub states: Vec<GroupStateName>,
    /// Also skip groups in those states that have lag (a stopped consumer with a backlog);
    /// by default they stay visible.
    #[serde(default)]
    pub with_lag: bool,
}

/// A Kafka consumer-group state, spelled as Kafka does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum GroupStateName {
    Stable,
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Dead,
}

impl GroupStateName {
    pub fn state(self) -> crate::model::GroupState {
        use crate::model::GroupState;
        match self {
            GroupStateName::Stable => GroupState::Stable,
            GroupStateName::Empty => GroupState::Empty,
            GroupStateName::PreparingRebalance => GroupState::PreparingRebalance,
            GroupStateName::CompletingRebalance => GroupState::CompletingRebalance,
            GroupStateName::Dead => GroupState::Dead,
        }
    }
}

/// Default `cardinality.max_partition_series`: 100,000 (group, partition) pairs per
/// instance, so that a fleet of 100,000 partitions is exported as it is even on one
/// instance.
pub const DEFAULT_MAX_PARTITION_SERIES: usize = 100_000;
/// Largest accepted `cardinality.max_partition_series`.
pub const MAX_PARTITION_SERIES_LIMIT: usize = 10_000_000;
/// Default `cardinality.top_partitions`.
pub const DEFAULT_TOP_PARTITIONS: usize = 10;
/// Largest accepted `cardinality.top_partitions`.
pub const MAX_TOP_PARTITIONS: usize = 1_000;

fn default_max_partition_series() -> usize {
    DEFAULT_MAX_PARTITION_SERIES
}
fn default_top_partitions() -> usize {
    DEFAULT_TOP_PARTITIONS
}

/// Largest accepted `verdict.window`.
pub const MAX_VERDICT_WINDOW: usize = 100;

/// Time-lag options of an account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeLagConfig {
    /// Read the produce time of the message at lagging committed offsets (Tencent
    /// `FetchMessageListByOffset`, 1 request per second; needs its CAM permission).
    #[serde(default)]
    pub probe: bool,
}

/// One cloud account (one key pair), in one or more regions.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Unique name, used in logs and in `kafka_cloud_lag_exporter_instance_info`.
    pub name: String,
    pub cloud: Cloud,
    /// Region id, e.g. `cn-hangzhou` (Alibaba) or `ap-guangzhou` (Tencent). Exactly one
    /// of `region` and `regions` is set.
    #[serde(default)]
    pub region: Option<String>,
    /// Several regions covered by the same key pair (for instance discovery).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Base URL of the management API; `{region}` is replaced by the region.
    /// Default: `https://alikafka.{region}.aliyuncs.com` or `https://ckafka.tencentcloudapi.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where the credentials come from; default: the cloud's official SDKs' default
    /// chain (standard variables, profile files, the instance's role, ...).
    #[serde(default)]
    pub credentials: Option<CredentialsConfig>,
    /// Alibaba only: request signature version, `v3` (ACS3-HMAC-SHA256, default) or `v2`
    /// (HMAC-SHA1).
    #[serde(default)]
    pub signature_version: Option<SignatureVersion>,
    /// Most requests in flight at once for this account (only while sent and answered;
    /// a request waiting to be retried holds no slot).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Client-side budget in requests per second per API action, overriding the defaults
    /// (the cloud's documented limits, or its provider's conservative fallback).
    #[serde(default)]
    pub api_rate_limits: BTreeMap<String, f64>,
    /// Discover the account's running instances in its regions.
    #[serde(default)]
    pub discover_instances: Option<InstanceDiscovery>,
    /// Instances listed explicitly.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Time-lag options.
    #[serde(default)]
    pub time_lag: TimeLagConfig,
    /// Read how long the polled topics keep messages (Alibaba `GetInstanceList`, Tencent
    /// `DescribeTopicAttributes`), for `kafka_consumergroup_retention_margin_seconds`.
    #[serde(default = "default_true")]
    pub read_retention: bool,
}

/// Instance discovery: which discovered instances to poll and which of their groups.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceDiscovery {
    /// Keep instances whose id or name matches one of these (all when empty).
    #[serde(default)]
    pub include: Vec<Pattern>,
    /// Drop instances whose id or name matches one of these.
    #[serde(default)]
    pub exclude: Vec<Pattern>,
    /// Which groups of the discovered instances to poll.
    #[serde(default)]
    pub groups: NameFilter,
}

/// Include and exclude patterns over names. A name is kept when it matches an `include`
/// pattern (or `include` is empty) and no `exclude` pattern. Patterns are regular
/// expressions that must match the whole name, as in Prometheus relabelling.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameFilter {
    #[serde(default)]
    pub include: Vec<Pattern>,
    #[serde(default)]
    pub exclude: Vec<Pattern>,
}

impl NameFilter {
    /// Whether `name` passes the filter.
    pub fn keeps(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(name)))
            && !self.exclude.iter().any(|p| p.matches(name))
    }
}

impl InstanceDiscovery {
    /// Whether a discovered instance passes the filter (by id or by name).
    pub fn keeps(&self, id: &str, name: &str) -> bool {
        let any = |ps: &[Pattern]| ps.iter().any(|p| p.matches(id) || p.matches(name));
        (self.include.is_empty() || any(&self.include)) && !any(&self.exclude)
    }
}

/// A regular expression anchored at both ends.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Pattern {
            source: source.to_string(),
            regex: regex::Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(|e| {
            serde::de::Error::custom(format!("{s:?} is not a valid regular expression: {e}"))
        })
    }
}

/// Where an account's credentials come from, in one cloud-neutral form: at most one base
/// source — static keys (id, secret and optional token, each from an environment variable
/// `*_env` or a file `*_file`), `oidc`, `instance_role` or `profile`; none: the cloud's
/// official SDKs' default chain — and optionally a role assumed on top (`assume_role`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    pub id_env: Option<String>,
    pub id_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// A role assumed with an OIDC token file (ACK RRSA, TKE pod identity).
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// The role of the ECS or CVM instance, from its metadata service.
    #[serde(default)]
    pub instance_role: Option<InstanceRoleConfig>,
    /// A profile of the cloud's CLI or SDK credentials file.
    #[serde(default)]
    pub profile: Option<ProfileConfig>,
    /// A role assumed with the base credentials (cross-account monitoring).
    #[serde(default)]
    pub assume_role: Option<AssumeRoleConfig>,
    /// STS base URL instead of the one the SDKs' rules choose (VPC endpoints, proxies,
    /// tests).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// Instance metadata base URL instead of the cloud's (tests).
    #[serde(default)]
    pub metadata_endpoint: Option<String>,
}

/// `credentials.oidc`: every value left out comes from the cloud's standard variables
/// (`ALIBABA_CLOUD_ROLE_ARN`, ... / `TKE_ROLE_ARN`, ...), which the clouds' pod-identity
/// webhooks inject.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub role_arn: Option<String>,
    /// Alibaba: the OIDC provider's ARN; Tencent: the identity provider's id.
    pub provider: Option<String>,
    /// The projected service-account token, read again at every refresh.
    pub token_file: Option<PathBuf>,
    pub session_name: Option<String>,
    #[serde(default, with = "optional_duration")]
    pub duration: Option<Duration>,
    /// Tencent only: the region of the STS call (`TKE_REGION`, else the account's).
    pub region: Option<String>,
}

/// `credentials.instance_role`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRoleConfig {
    /// The role's name; default: the one the metadata service names.
    pub name: Option<String>,
}

/// `credentials.profile`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The profile (Alibaba CLI) or section (INI files); default as the SDKs choose it.
    pub name: Option<String>,
    /// The file; default: the cloud's standard location.
    pub file: Option<PathBuf>,
}

/// `credentials.assume_role`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeRoleConfig {
    pub role_arn: String,
    pub session_name: Option<String>,
    #[serde(default, with = "optional_duration")]
    pub duration: Option<Duration>,
    /// Required when the role's trust policy asks for one.
    pub external_id: Option<String>,
}

/// One Kafka instance and the consumer groups to poll on it: listed (`groups`) or
/// discovered (`discover_groups`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub id: String,
    /// The instance's region; required when the account has several `regions`.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub discover_groups: Option<NameFilter>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_poll_interval() -> Duration {
    DEFAULT_POLL_INTERVAL
}
fn default_discovery_interval() -> Duration {
    DEFAULT_DISCOVERY_INTERVAL
}
fn default_max_concurrency() -> usize {
    DEFAULT_MAX_CONCURRENCY
}
fn default_true() -> bool {
    true
}

/// A configuration problem: which file, which field, what is wrong and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// YAML syntax, unknown keys and type errors; serde's message carries the field path,
    /// the bad value, the allowed values and the line.
    #[error("{}: {message}", file.display())]
    Parse { file: PathBuf, message: String },
    #[error("{}: {field}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

/// Parses a YAML document into `T`; errors carry the full field path (`a.b[1].c`), and
/// `path` only names the file in them. Shared with the web configuration file.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde_yaml prefixes most messages with its own (sometimes shorter) path;
        // replace that with the full one.
        let rest = match inner.split_once(": ") {
            Some((own, rest)) if !own.contains(' ') && field.starts_with(own) => rest,
            _ => inner.as_str(),
        };
        let message = if field == "." {
            rest.to_string()
        } else {
            format!("{field}: {rest}")
        };
        ConfigError::Parse {
            file: path.to_path_buf(),
            message,
        }
    })
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let config = Config::parse(&text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses YAML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        parse_yaml(text, path)
    }

    /// Checks everything serde cannot: ranges, uniqueness, URLs and credential sources.
    /// Does not read credentials; see [`Config::check_credentials`].
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            file: path.to_path_buf(),
            field,
            message,
        };
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "listen".into(),
                format!(
                    "{:?} is not a socket address; expected host:port, e.g. \"0.0.0.0:9758\"",
                    self.listen
                ),
            ));
        }
        if self.poll_interval < MIN_POLL_INTERVAL {
            return Err(invalid(
                "poll_interval".into(),
                format!(
                    "{} is too short; the minimum is {}",
                    fmt_duration(self.poll_interval),
                    fmt_duration(MIN_POLL_INTERVAL)
                ),
            ));
        }
        // Only a value the user wrote can be wrong; the default follows the interval.
        if let Some(timeout) = self.request_timeout
            && (timeout.is_zero() || timeout >= self.poll_interval)
        {
            return Err(invalid(
                "request_timeout".into(),
                format!(
                    "{} must be greater than 0s and shorter than poll_interval ({}); remove it to use the default, the smaller of {} and half of poll_interval",
                    fmt_duration(timeout),
                    fmt_duration(self.poll_interval),
                    fmt_duration(DEFAULT_REQUEST_TIMEOUT)
                ),
            ));
        }
        if self.stale_after() < self.poll_interval {
            return Err(invalid(
                "stale_after".into(),
                format!(
                    "{} must be at least poll_interval ({})",
                    fmt_duration(self.stale_after()),
                    fmt_duration(self.poll_interval)
                ),
            ));
        }
        if self.discovery_interval < MIN_POLL_INTERVAL {
            return Err(invalid(
                "discovery_interval".into(),
                format!(
                    "{} is too short; the minimum is {}",
                    fmt_duration(self.discovery_interval),
                    fmt_duration(MIN_POLL_INTERVAL)
                ),
            ));
        }
        if !(crate::verdict::MIN_POLLS..=MAX_VERDICT_WINDOW).contains(&self.verdict.window) {
            return Err(invalid(
                "verdict.window".into(),
                format!(
                    "{} is out of range; allowed {} to {MAX_VERDICT_WINDOW} polls",
                    self.verdict.window,
                    crate::verdict::MIN_POLLS
                ),
            ));
        }
        let c = &self.cardinality;
        if !(1..=MAX_PARTITION_SERIES_LIMIT).contains(&c.max_partition_series) {
            return Err(invalid(
                "cardinality.max_partition_series".into(),
                format!(
                    "{} is out of range; allowed 1 to {MAX_PARTITION_SERIES_LIMIT} (group, partition) pairs per instance",
                    c.max_partition_series
                ),
            ));
        }
        if c.top_partitions > MAX_TOP_PARTITIONS {
            return Err(invalid(
                "cardinality.top_partitions".into(),
                format!(
                    "{} is out of range; allowed 0 to {MAX_TOP_PARTITIONS} partitions per group",
                    c.top_partitions
                ),
            ));
        }
        for (i, state) in c.skip_groups.states.iter().enumerate() {
            if c.skip_groups.states[..i].contains(state) {
                return Err(invalid(
                    format!("cardinality.skip_groups.states[{i}]"),
                    format!("{state:?} is listed twice"),
                ));
            }
        }
        if let Some(dir) = &self.state_dir
            && dir.as_os_str().is_empty()
        {
            return Err(invalid("state_dir".into(), "must not be empty".into()));
        }
        if self.accounts.is_empty() {
            return Err(invalid(
                "accounts".into(),
                "at least one account is required".into(),
            ));
        }
        let mut names = HashSet::new();
        let mut instances: BTreeMap<(Cloud, &str), String> = BTreeMap::new();
        for (ai, account) in self.accounts.iter().enumerate() {
            let at = |field: &str| format!("accounts[{ai}].{field}");
            if account.name.trim().is_empty() || account.name.chars().any(char::is_whitespace) {
                return Err(invalid(
                    at("name"),
                    format!(
                        "{:?} is not allowed; use a non-empty name without spaces",
                        account.name
                    ),
                ));
            }
            if !names.insert(account.name.as_str()) {
                return Err(invalid(
                    at("name"),
                    format!(
                        "{:?} is used by more than one account; names must be unique",
                        account.name
                    ),
                ));
            }
            let regions: Vec<&str> = match (&account.region, account.regions.is_empty()) {
                (Some(_), false) => {
                    return Err(invalid(
                        at("regions"),
                        "set either region or regions, not both".into(),
                    ));
                }
                (None, true) => {
                    return Err(invalid(
                        at("region"),
                        "missing; set region (or regions for several)".into(),
                    ));
                }
                (Some(r), true) => vec![r.as_str()],
                (None, false) => account.regions.iter().map(String::as_str).collect(),
            };
            for (ri, region) in regions.iter().enumerate() {
                let field = if account.region.is_some() {
                    at("region")
                } else {
                    at(&format!("regions[{ri}]"))
                };
                if !is_region_id(region) {
                    return Err(invalid(
                        field,
                        format!(
                            "{region:?} is not a region id; expected lowercase letters, digits and '-', e.g. \"cn-hangzhou\" or \"ap-guangzhou\""
                        ),
                    ));
                }
                if regions[..ri].contains(region) {
                    return Err(invalid(field, format!("{region:?} is listed twice")));
                }
            }
            let known = profile(account.cloud).action_names();
            for (action, rate) in &account.api_rate_limits {
                let field = at(&format!("api_rate_limits.{action}"));
                if !known.contains(&action.as_str()) {
                    let allowed = &known;
                    return Err(invalid(
                        field,
                        format!(
                            "{action:?} is not a {} API action this exporter calls; allowed: {}",
                            account.cloud,
                            allowed.join(", ")
                        ),
                    ));
                }
                if !rate.is_finite() || *rate <= 0.0 || *rate > MAX_RATE_LIMIT {
                    return Err(invalid(
                        field,
                        format!(
                            "{rate} is out of range; allowed more than 0 up to {MAX_RATE_LIMIT} requests per second"
                        ),
                    ));
                }
            }
            if let Some(endpoint) = &account.endpoint {
                check_endpoint(endpoint).map_err(|m| invalid(at("endpoint"), m))?;
            }
            if account.signature_version.is_some() && !profile(account.cloud).selectable_signature {
                let clouds: Vec<&str> = crate::providers::profiles()
                    .iter()
                    .filter(|p| p.selectable_signature)
                    .map(|p| p.cloud.as_str())
                    .collect();
                return Err(invalid(
                    at("signature_version"),
                    format!(
                        "only applies to cloud: {} ({} has a single signature scheme)",
                        clouds.join(", "),
                        account.cloud
                    ),
                ));
            }
            if account.max_concurrency == 0 || account.max_concurrency > MAX_CONCURRENCY_LIMIT {
                return Err(invalid(
                    at("max_concurrency"),
                    format!(
                        "{} is out of range; allowed 1 to {MAX_CONCURRENCY_LIMIT}",
                        account.max_concurrency
                    ),
                ));
            }
            if account.time_lag.probe && profile(account.cloud).probe_action.is_none() {
                let clouds: Vec<&str> = crate::providers::profiles()
                    .iter()
                    .filter(|p| p.probe_action.is_some())
                    .map(|p| p.cloud.as_str())
                    .collect();
                return Err(invalid(
                    at("time_lag.probe"),
                    format!(
                        "{} cannot read a message's produce time without its content; allowed on: {}",
                        account.cloud,
                        clouds.join(", ")
                    ),
                ));
            }
            if let Some(creds) = &account.credentials {
                creds
                    .spec(account.cloud)
                    .map_err(|(field, m)| invalid(at(&format!("credentials.{field}")), m))?;
            }
            if account.instances.is_empty() && account.discover_instances.is_none() {
                return Err(invalid(
                    at("instances"),
                    "at least one instance is required (or discover_instances)".into(),
                ));
            }
            for (ii, instance) in account.instances.iter().enumerate() {
                let at = |field: &str| format!("accounts[{ai}].instances[{ii}].{field}");
                if instance.id.trim().is_empty() {
                    return Err(invalid(at("id"), "must not be empty".into()));
                }
                if let Some(first) =
                    instances.insert((account.cloud, instance.id.as_str()), at("id"))
                {
                    return Err(invalid(
                        at("id"),
                        format!(
                            "{} instance {:?} is already configured at {first}; each instance may appear once",
                            account.cloud, instance.id
                        ),
                    ));
                }
                match &instance.region {
                    Some(r) if !regions.contains(&r.as_str()) => {
                        return Err(invalid(
                            at("region"),
                            format!(
                                "{r:?} is not one of the account's regions; allowed: {}",
                                regions.join(", ")
                            ),
                        ));
                    }
                    None if regions.len() > 1 => {
                        return Err(invalid(
                            at("region"),
                            format!(
                                "missing; the account has several regions ({}), so each listed instance names its own",
                                regions.join(", ")
                            ),
                        ));
                    }
                    _ => {}
                }
                match (instance.groups.is_empty(), &instance.discover_groups) {
                    (true, None) => {
                        return Err(invalid(
                            at("groups"),
                            "at least one consumer group is required (or discover_groups)".into(),
                        ));
                    }
                    (false, Some(_)) => {
                        return Err(invalid(
                            at("discover_groups"),
                            "set either groups or discover_groups, not both".into(),
                        ));
                    }
                    _ => {}
                }
                let mut groups = HashSet::new();
                for (gi, group) in instance.groups.iter().enumerate() {
                    if group.trim().is_empty() {
                        return Err(invalid(
                            at(&format!("groups[{gi}]")),
                            "must not be empty".into(),
                        ));
                    }
                    if !groups.insert(group.as_str()) {
                        return Err(invalid(
                            at(&format!("groups[{gi}]")),
                            format!("{group:?} is listed twice"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that `state_dir` can be created and written, so that an unusable one is a
    /// startup error rather than a failure at the first save.
    pub fn check_state_dir(&self, path: &Path) -> Result<(), ConfigError> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        let probe = dir.join(".kafka-cloud-lag-exporter-write-test");
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| ConfigError::Invalid {
                file: path.to_path_buf(),
                field: "state_dir".into(),
                message: format!("{}: cannot write there: {e}", dir.display()),
            })
    }

    /// Reads what every account's credentials need locally, so that a missing variable
    /// or file is a startup error naming the account, the field and the source: static
    /// keys are read; OIDC settings resolved (configuration, else the standard variables)
    /// and the token file read; profile files parsed. Nothing is fetched: a source that
    /// signs in (STS, metadata) is first asked at the first poll, and a default chain that
    /// finds nothing locally falls back to the instance's role there.
    pub fn check_credentials(&self, path: &Path) -> Result<(), ConfigError> {
        for (ai, account) in self.accounts.iter().enumerate() {
            let invalid = |field: String, message: String| ConfigError::Invalid {
                file: path.to_path_buf(),
                field,
                message: format!("account {:?}: {message}", account.name),
            };
            let spec = account.credential_spec();
            if let BaseSource::Keys(sources) = &spec.base {
                crate::credentials::resolve(sources)
                    .map_err(|e| invalid(format!("accounts[{ai}].credentials"), e.to_string()))?;
            }
            let region = account.regions().first().copied().unwrap_or_default();
            crate::providers::credentials::resolve(
                account.cloud,
                &spec,
                &crate::credentials::Environment::Process,
                region,
            )
            .map_err(|e| invalid(format!("accounts[{ai}].credentials.{}", e.field), e.message))?;
        }
        Ok(())
    }

    /// `request_timeout`, or its default: the smaller of [`DEFAULT_REQUEST_TIMEOUT`] and
    /// half of `poll_interval` (5 s for a 10 s interval, 10 s from a 20 s interval up).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or_else(|| {
            DEFAULT_REQUEST_TIMEOUT.min(self.poll_interval / DEFAULT_REQUEST_TIMEOUT_SHARE)
        })
    }

    /// `stale_after`, or its default of 3 × `poll_interval`.
    pub fn stale_after(&self) -> Duration {
        self.stale_after.unwrap_or(self.poll_interval * 3)
    }

    /// Consumer groups listed explicitly (discovered ones not counted).
    pub fn group_count(&self) -> usize {
        self.accounts
            .iter()
            .flat_map(|a| &a.instances)
            .map(|i| i.groups.len())
            .sum()
    }
}

impl Account {
    /// The configured static keys, or the cloud's standard environment variables (also
    /// for the other sources, whose keys are not static).
    pub fn credential_sources(&self) -> CredentialSources {
        match &self.credentials {
            Some(c) if c.has_keys() => c
                .sources(self.cloud)
                .expect("credentials are validated before use"),
            _ => CredentialSources::standard(&profile(self.cloud).credential_env),
        }
    }

    /// Where the account's credentials come from: the configured source, or the cloud's
    /// default chain.
    pub fn credential_spec(&self) -> CredentialSpec {
        match &self.credentials {
            Some(c) => c
                .spec(self.cloud)
                .expect("credentials are validated before use"),
            None => CredentialSpec::default_chain(),
        }
    }

    /// The regions this account covers.
    pub fn regions(&self) -> Vec<&str> {
        match &self.region {
            Some(r) => vec![r.as_str()],
            None => self.regions.iter().map(String::as_str).collect(),
        }
    }

    /// The region of a listed instance: its own, or the account's single region.
    pub fn instance_region<'a>(&'a self, instance: &'a Instance) -> &'a str {
        instance
            .region
            .as_deref()
            .or(self.region.as_deref())
            .or(self.regions.first().map(String::as_str))
            .unwrap_or_default()
    }

    /// The endpoint base URL for `region` with `{region}` substituted, or the cloud's default.
    pub fn endpoint_url(&self, region: &str) -> String {
        profile(self.cloud).endpoint_url(self.endpoint.as_deref(), region)
    }

    /// The client-side budget of `action` in requests per second.
    pub fn rate_limit(&self, action: &str) -> f64 {
        self.api_rate_limits
            .get(action)
            .copied()
            .unwrap_or_else(|| profile(self.cloud).default_rate(action))
    }
}

impl CredentialsConfig {
    /// Whether any static key (`id_*`, `secret_*`, `token_*`) is set.
    pub fn has_keys(&self) -> bool {
        self.id_env.is_some()
            || self.id_file.is_some()
            || self.secret_env.is_some()
            || self.secret_file.is_some()
            || self.token_env.is_some()
            || self.token_file.is_some()
    }

    /// Checks the block and turns it into a [`CredentialSpec`]: one base source at most,
    /// durations within what the cloud's STS accepts, names it accepts, endpoints that are
    /// URLs. The error names the offending key (relative to `credentials`).
    pub fn spec(&self, cloud: Cloud) -> Result<CredentialSpec, (String, String)> {
        let keys_field = [
            ("id_env", self.id_env.is_some()),
            ("id_file", self.id_file.is_some()),
            ("secret_env", self.secret_env.is_some()),
            ("secret_file", self.secret_file.is_some()),
            ("token_env", self.token_env.is_some()),
            ("token_file", self.token_file.is_some()),
        ]
        .into_iter()
        .find_map(|(f, set)| set.then_some(f));
        let chosen: Vec<&str> = [
            keys_field,
            self.oidc.as_ref().map(|_| "oidc"),
            self.instance_role.as_ref().map(|_| "instance_role"),
            self.profile.as_ref().map(|_| "profile"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let [first, second, ..] = chosen[..] {
            return Err((
                second.to_string(),
                format!(
                    "{first} and {second} are both set; choose one source per account: static keys (id_*, secret_*, token_*), oidc, instance_role or profile (assume_role may be added on top of any)"
                ),
            ));
        }
        let limits = profile(cloud).session_duration;
        let check_duration = |field: &str, d: Option<Duration>| match d {
            Some(d) if d < limits.0 || d > limits.1 => Err((
                field.to_string(),
                format!(
                    "{} is out of range; {cloud} STS accepts {} to {}",
                    fmt_duration(d),
                    fmt_duration(limits.0),
                    fmt_duration(limits.1)
                ),
            )),
            _ => Ok(()),
        };
        let not_empty = |field: &str, v: Option<&str>| match v {
            Some(v) if v.trim().is_empty() || v.chars().any(char::is_control) => Err((
                field.to_string(),
                "must not be empty or contain control characters".to_string(),
            )),
            _ => Ok(()),
        };
        let path_not_empty = |field: &str, p: Option<&PathBuf>| match p {
            Some(p) if p.as_os_str().is_empty() => {
                Err((field.to_string(), "must not be empty".to_string()))
            }
            _ => Ok(()),
        };
        let base = if keys_field.is_some() {
            BaseSource::Keys(self.sources(cloud)?)
        } else if let Some(o) = &self.oidc {
            not_empty("oidc.role_arn", o.role_arn.as_deref())?;
            not_empty("oidc.provider", o.provider.as_deref())?;
            path_not_empty("oidc.token_file", o.token_file.as_ref())?;
            check_session_name("oidc.session_name", o.session_name.as_deref())?;
            check_duration("oidc.duration", o.duration)?;
            if let Some(r) = &o.region
                && !is_region_id(r)
            {
                return Err((
                    "oidc.region".into(),
                    format!("{r:?} is not a region id, e.g. \"ap-guangzhou\""),
                ));
            }
            BaseSource::Oidc(OidcSpec {
                role_arn: o.role_arn.clone(),
                provider: o.provider.clone(),
                token_file: o.token_file.clone(),
                session_name: o.session_name.clone(),
                duration: o.duration,
                region: o.region.clone(),
            })
        } else if let Some(i) = &self.instance_role {
            not_empty("instance_role.name", i.name.as_deref())?;
            if let Some(n) = &i.name
                && n.contains(['/', '?', '#'])
            {
                return Err((
                    "instance_role.name".into(),
                    format!("{n:?} is not a role name"),
                ));
            }
            BaseSource::InstanceRole {
                name: i.name.clone(),
            }
        } else if let Some(p) = &self.profile {
            not_empty("profile.name", p.name.as_deref())?;
            path_not_empty("profile.file", p.file.as_ref())?;
            BaseSource::Profile {
                name: p.name.clone(),
                file: p.file.clone(),
            }
        } else {
            BaseSource::DefaultChain
        };
        let assume_role = match &self.assume_role {
            None => None,
            Some(a) => {
                not_empty("assume_role.role_arn", Some(&a.role_arn))?;
                check_session_name("assume_role.session_name", a.session_name.as_deref())?;
                check_duration("assume_role.duration", a.duration)?;
                not_empty("assume_role.external_id", a.external_id.as_deref())?;
                Some(AssumeRoleSpec {
                    role_arn: a.role_arn.clone(),
                    session_name: a.session_name.clone(),
                    duration: a.duration,
                    external_id: a.external_id.clone(),
                })
            }
        };
        for (field, value) in [
            ("sts_endpoint", &self.sts_endpoint),
            ("metadata_endpoint", &self.metadata_endpoint),
        ] {
            if let Some(v) = value {
                check_base_url(v).map_err(|m| (field.to_string(), m))?;
            }
        }
        Ok(CredentialSpec {
            base,
            assume_role,
            sts_endpoint: self.sts_endpoint.clone(),
            metadata_endpoint: self.metadata_endpoint.clone(),
        })
    }

    /// Checks that id and secret each have exactly one source and the token at most one.
    /// The error names the offending key (relative to `credentials`) and the message.
    pub fn sources(&self, cloud: Cloud) -> Result<CredentialSources, (String, String)> {
        fn one(
            what: &str,
            env: &Option<String>,
            file: &Option<PathBuf>,
            required: bool,
        ) -> Result<Option<Source>, (String, String)> {
            match (env, file) {
                (Some(_), Some(_)) => Err((
                    format!("{what}_env"),
                    format!("set either {what}_env or {what}_file, not both"),
                )),
                (Some(name), None) if !is_env_name(name) => Err((
                    format!("{what}_env"),
                    format!(
                        "{name:?} is not an environment variable name; expected letters, digits and '_'"
                    ),
                )),
                (Some(name), None) => Ok(Some(Source::Env(name.clone()))),
                (None, Some(path)) if path.as_os_str().is_empty() => {
                    Err((format!("{what}_file"), "must not be empty".into()))
                }
                (None, Some(path)) => Ok(Some(Source::File(path.clone()))),
                (None, None) if required => Err((
                    format!("{what}_env"),
                    format!(
                        "missing; set {what}_env or {what}_file (or omit `credentials` to use the standard variables)"
                    ),
                )),
                (None, None) => Ok(None),
            }
        }
        let _ = cloud;
        let id = one("id", &self.id_env, &self.id_file, true)?.expect("required");
        let secret = one("secret", &self.secret_env, &self.secret_file, true)?.expect("required");
        let token = one("token", &self.token_env, &self.token_file, false)?;
        Ok(CredentialSources {
            id,
            secret,
            token: token.into_iter().collect(),
        })
    }
}

/// Role session names both clouds' STS accept: 2 to 64 letters, digits and `.@-_`.
fn check_session_name(field: &str, name: Option<&str>) -> Result<(), (String, String)> {
    match name {
        Some(n)
            if !(2..=64).contains(&n.len())
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c)) =>
        {
            Err((
                field.to_string(),
                format!("{n:?} is not allowed; use 2 to 64 letters, digits and . @ - _"),
            ))
        }
        _ => Ok(()),
    }
}

/// An http(s) base URL: scheme, host, optional port, nothing after.
fn check_base_url(value: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(value)
        .map_err(|e| format!("{value:?} is not a URL ({e}); expected e.g. \"https://sts-vpc.cn-hangzhou.aliyuncs.com\""))?;
    if !url.username().is_empty() || url.password().is_some() {
        // A user or password in the URL is a secret in the configuration (and would be in
        // every message naming the endpoint): refused without repeating it.
        return Err(
            "the URL carries a user or password; give the base URL only (scheme, host, optional port)"
                .into(),
        );
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{value:?} must be an http or https URL with a host"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{value:?} must be a base URL only (scheme, host, optional port)"
        ));
    }
    Ok(())
}

fn is_region_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let concrete = endpoint.replace("{region}", "region");
    let url = reqwest::Url::parse(&concrete)
        .map_err(|e| format!("{endpoint:?} is not a URL ({e}); expected e.g. \"https://alikafka-vpc.{{region}}.aliyuncs.com\""))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{endpoint:?} has scheme {:?}; allowed: http, https",
            url.scheme()
        ));
    }
    if url.path() != "/" {
        // Both clouds' signatures (Alibaba V3, Tencent TC3) cover the path, and both APIs
        // live at "/": a path here could only be signed wrongly or sent to the wrong place.
        return Err(format!(
            "{endpoint:?} has the path {:?}; the API is served at \"/\" and the request signatures (Alibaba V3, Tencent TC3) cover the path, so give the base URL only (scheme, host, optional port); a reverse proxy in front must be reachable at its own \"/\"",
            url.path()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{endpoint:?} must be a base URL without query or fragment"
        ));
    }
    Ok(())
}

/// Formats a duration the way the config spells it (`30s`, `1m30s`, `250ms`).
pub fn fmt_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let (h, rem) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    for (v, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
        }
    }
    out
}

/// Parses a duration such as `30s`, `5m`, `1m30s`, `1h` or `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = s.trim().parse().map_err(|_| {
        format!("{s:?} is not a duration; expected a number with a unit, e.g. \"30s\", \"5m\", \"1m30s\", \"250ms\"")
    })?;
    if signed.is_negative() {
        return Err(format!("{s:?} is negative; durations must be positive"));
    }
    Ok(signed.unsigned_abs())
}

/// serde adapter for durations written as strings.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// serde adapter for optional durations written as strings.
pub mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
poll_interval: 30s
accounts:
  - name: ali
    cloud: alibaba
    region: cn-hangzhou
    instances:
      - id: alikafka_post-cn-abc123
        groups: [orders]
  - name: tc
    cloud: tencent
    region: ap-guangzhou
    credentials:
      id_env: TC_ID
      secret_file: /var/run/secrets/tc/secret
    instances:
      - id: ckafka-abc
        groups: [billing, audit]
"#;

    fn check(yaml: &str) -> Result<Config, String> {
        let path = Path::new("test.yaml");
        let c = Config::parse(yaml, path).map_err(|e| e.to_string())?;
        c.validate(path).map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn good_config_gets_defaults() {
        let c = check(GOOD).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.poll_interval, Duration::from_secs(30));
        assert_eq!(c.request_timeout(), DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(c.stale_after(), Duration::from_secs(90));
        assert_eq!(c.accounts[0].max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(
            c.accounts[0].endpoint_url("cn-hangzhou"),
            "https://alikafka.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            c.accounts[1].endpoint_url("ap-guangzhou"),
            "https://ckafka.tencentcloudapi.com"
        );
        assert_eq!(c.group_count(), 3);
        let s = c.accounts[1].credential_sources();
        assert_eq!(s.id, Source::Env("TC_ID".into()));
        assert_eq!(s.secret, Source::File("/var/run/secrets/tc/secret".into()));
        assert!(s.token.is_empty());
        assert_eq!(
            c.accounts[0].credential_sources(),
            CredentialSources::standard(&profile(Cloud::Alibaba).credential_env)
        );
    }

    #[test]
    fn example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
        let c = Config::load(&path).unwrap();
        assert!(!c.accounts.is_empty());
    }

    /// Each bad case and a fragment its message must contain.
    #[test]
    fn bad_configs_name_the_field_and_the_allowed_values() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "unknown cloud",
                "cloud: alibaba\n",
                &["accounts[0].cloud", "aws", "alibaba", "tencent"],
            ),
            (
                "unknown key",
                "    instances:\n",
                &["accounts[0]", "unknown field `colour`"],
            ),
            (
                "bad duration",
                "poll_interval: 30s\n",
                &["poll_interval", "\"thirty\"", "30s"],
            ),
            (
                "short interval",
                "poll_interval: 30s\n",
                &["poll_interval", "minimum is 1s"],
            ),
            (
                "bad region",
                "region: cn-hangzhou\n",
                &["accounts[0].region", "\"CN Hangzhou\""],
            ),
            (
                "bad endpoint",
                "region: cn-hangzhou\n",
                &["accounts[0].endpoint", "ftp", "http, https"],
            ),
            (
                "dup group",
                "groups: [orders]\n",
                &["accounts[0].instances[0].groups[1]", "listed twice"],
            ),
            (
                "both env and file",
                "      id_env: TC_ID\n",
                &["accounts[1].credentials.id_env", "not both"],
            ),
            (
                "v3 on tencent",
                "    region: ap-guangzhou\n",
                &["accounts[1].signature_version", "alibaba"],
            ),
            (
                "concurrency",
                "    region: ap-guangzhou\n",
                &["accounts[1].max_concurrency", "1 to 64"],
            ),
            (
                "dup name",
                "  - name: tc\n",
                &["accounts[1].name", "unique"],
            ),
            (
                "timeout",
                "poll_interval: 30s\n",
                &["request_timeout", "shorter than poll_interval"],
            ),
            (
                "endpoint with a path",
                "region: cn-hangzhou\n",
                &[
                    "accounts[0].endpoint",
                    "\"/alikafka\"",
                    "signatures",
                    "base URL only",
                ],
            ),
            (
                "tencent endpoint with a path",
                "    region: ap-guangzhou\n",
                &["accounts[1].endpoint", "\"/ckafka/\"", "TC3"],
            ),
            (
                "unknown skipped state",
                "poll_interval: 30s\n",
                &["cardinality.skip_groups.states[0]", "Idle", "Empty", "Dead"],
            ),
            (
                "zero partition series",
                "poll_interval: 30s\n",
                &["cardinality.max_partition_series", "0", "1 to 10000000"],
            ),
            (
                "state twice",
                "poll_interval: 30s\n",
                &["cardinality.skip_groups.states[1]", "Empty", "twice"],
            ),
            (
                "unknown metric names",
                "poll_interval: 30s\n",
                &[
                    "metric_names",
                    "burrow",
                    "kafka_exporter",
                    "kafka_lag_exporter",
                ],
            ),
        ];
        let edits: &[&str] = &[
            "cloud: aws\n",
            "    colour: blue\n    instances:\n",
            "poll_interval: thirty\n",
            "poll_interval: 500ms\n",
            "region: CN Hangzhou\n",
            "region: cn-hangzhou\n    endpoint: ftp://example.com\n",
            "groups: [orders, orders]\n",
            "      id_env: TC_ID\n      id_file: /x\n",
            "    region: ap-guangzhou\n    signature_version: v3\n",
            "    region: ap-guangzhou\n    max_concurrency: 0\n",
            "  - name: ali\n",
            "poll_interval: 30s\nrequest_timeout: 30s\n",
            "region: cn-hangzhou\n    endpoint: https://proxy.example.com/alikafka\n",
            "    region: ap-guangzhou\n    endpoint: https://proxy.example.com:8443/ckafka/\n",
            "poll_interval: 30s\ncardinality: {skip_groups: {states: [Idle]}}\n",
            "poll_interval: 30s\ncardinality: {max_partition_series: 0}\n",
            "poll_interval: 30s\ncardinality: {skip_groups: {states: [Empty, Empty]}}\n",
            "poll_interval: 30s\nmetric_names: burrow\n",
        ];
        for ((name, find, expect), replace) in cases.iter().zip(edits) {
            let yaml = GOOD.replacen(find, replace, 1);
            assert_ne!(yaml, GOOD, "{name}: edit did not apply");
            let err = check(&yaml).expect_err(name);
            assert!(err.starts_with("test.yaml: "), "{name}: {err}");
            for fragment in *expect {
                assert!(err.contains(fragment), "{name}: {err:?} lacks {fragment:?}");
            }
        }
    }

    /// The YAML documents users copy: config.example.yaml, the README's examples that
    /// are exporter configurations, and the deploy kit's configurations.
    fn documented_configs() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        let mut docs = vec![
            (
                "config.example.yaml".to_string(),
                read("config.example.yaml"),
            ),
            (
                "deploy/kubernetes/config.yaml".to_string(),
                read("deploy/kubernetes/config.yaml"),
            ),
            (
                "deploy/examples/kustomize-overlay/config.yaml".to_string(),
                read("deploy/examples/kustomize-overlay/config.yaml"),
            ),
            (
                "deploy/examples/kustomize-rrsa/config.yaml".to_string(),
                read("deploy/examples/kustomize-rrsa/config.yaml"),
            ),
            (
                "deploy/examples/kustomize-tke-pod-identity/config.yaml".to_string(),
                read("deploy/examples/kustomize-tke-pod-identity/config.yaml"),
            ),
        ];
        let values: serde_yaml::Value =
            serde_yaml::from_str(&read("deploy/helm/kafka-cloud-lag-exporter/values.yaml"))
                .unwrap();
        docs.push((
            "helm values.yaml config".to_string(),
            serde_yaml::to_string(&values["config"]).unwrap(),
        ));
        let readme = read("README.md");
        for (i, block) in readme.split("```yaml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            if block.lines().any(|l| l.starts_with("accounts:")) {
                docs.push((format!("README.md yaml block {i}"), block.to_string()));
            }
        }
        assert!(docs.len() >= 5, "{docs:?}");
        docs
    }

    /// Sets (or adds) the top-level `poll_interval`.
    fn with_interval(yaml: &str, interval: &str) -> String {
        let mut found = false;
        let mut out: Vec<String> = yaml
            .lines()
            .map(|l| {
                if l.starts_with("poll_interval:") {
                    found = true;
                    format!("poll_interval: {interval}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        if !found {
            out.insert(0, format!("poll_interval: {interval}"));
        }
        out.join("\n")
    }

    #[test]
    fn documented_configs_accept_any_poll_interval() {
        for (name, yaml) in documented_configs() {
            for interval in ["1s", "5s", "30s", "5m"] {
                let text = with_interval(&yaml, interval);
                let c = check(&text).unwrap_or_else(|e| panic!("{name} at {interval}: {e}"));
                assert!(
                    c.request_timeout() < c.poll_interval,
                    "{name} at {interval}"
                );
                assert!(!c.request_timeout().is_zero());
            }
        }
    }

    #[test]
    fn default_request_timeout_follows_the_interval() {
        let at = |interval: &str| {
            check(&with_interval(GOOD, interval))
                .unwrap()
                .request_timeout()
        };
        assert_eq!(at("1s"), Duration::from_millis(500));
        assert_eq!(at("5s"), Duration::from_millis(2500));
        assert_eq!(at("20s"), Duration::from_secs(10));
        assert_eq!(at("5m"), Duration::from_secs(10));
        // An explicit value is kept, and only an explicit value can be refused.
        let explicit = with_interval(GOOD, "30s").replacen(
            "poll_interval: 30s",
            "poll_interval: 30s\nrequest_timeout: 25s",
            1,
        );
        assert_eq!(
            check(&explicit).unwrap().request_timeout(),
            Duration::from_secs(25)
        );
        let short = with_interval(GOOD, "5s");
        assert!(
            check(&short).is_ok(),
            "a 5s interval without request_timeout"
        );
        let err = check(&short.replacen(
            "poll_interval: 5s",
            "poll_interval: 5s\nrequest_timeout: 10s",
            1,
        ))
        .unwrap_err();
        assert!(err.contains("request_timeout: 10s must be"), "{err}");
    }

    #[test]
    fn credential_blocks_become_specs() {
        let yaml = GOOD.replacen(
            "    credentials:\n      id_env: TC_ID\n      secret_file: /var/run/secrets/tc/secret\n",
            "    credentials:\n      oidc: {role_arn: r, provider: p, token_file: /t, duration: 2h, region: ap-shanghai}\n      assume_role: {role_arn: x, session_name: s.1, duration: 30m, external_id: e}\n      sts_endpoint: https://sts.internal.tencentcloudapi.com\n",
            1,
        );
        let c = check(&yaml).unwrap();
        let spec = c.accounts[1].credential_spec();
        assert_eq!(
            spec.base,
            BaseSource::Oidc(OidcSpec {
                role_arn: Some("r".into()),
                provider: Some("p".into()),
                token_file: Some("/t".into()),
                session_name: None,
                duration: Some(Duration::from_secs(7200)),
                region: Some("ap-shanghai".into()),
            })
        );
        let role = spec.assume_role.unwrap();
        assert_eq!(role.duration, Some(Duration::from_secs(1800)));
        assert_eq!(role.external_id.as_deref(), Some("e"));
        assert_eq!(
            spec.sts_endpoint.as_deref(),
            Some("https://sts.internal.tencentcloudapi.com")
        );
        // Without a block: the default chain; the static sources stay the standard ones.
        assert_eq!(
            c.accounts[0].credential_spec(),
            CredentialSpec::default_chain()
        );
        assert_eq!(
            c.accounts[1].credential_sources(),
            CredentialSources::standard(&profile(Cloud::Tencent).credential_env)
        );
        // Tencent accepts sessions up to 12 h, Alibaba from 15 min.
        let short = yaml.replace("duration: 2h", "duration: 1m");
        assert!(check(&short).is_ok());
        let userinfo = yaml.replace("https://sts.internal", "https://user:pw@sts.internal");
        let err = check(&userinfo).unwrap_err();
        assert!(
            err.contains("accounts[1].credentials.sts_endpoint"),
            "{err}"
        );
        assert!(!err.contains("pw@"), "the URL is not repeated: {err}");
        let long = yaml.replace("duration: 2h", "duration: 13h");
        let err = check(&long).unwrap_err();
        assert!(
            err.contains("accounts[1].credentials.oidc.duration: 13h is out of range"),
            "{err}"
        );
    }

    #[test]
    fn durations_parse_in_config_spelling() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("-5s").is_err());
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }
}

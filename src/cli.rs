//! Command-line flags and subcommands, named like a Prometheus exporter's
//! (`--config.file`, `--web.listen-address`, `--log.level`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit status for an invalid configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;

/// Prometheus exporter of consumer-group lag for Alibaba Cloud (alikafka) and Tencent
/// Cloud (CKafka) managed Kafka, read from the clouds' management APIs.
///
/// Without a subcommand it runs the exporter daemon. Exit status: 0 success, 1 runtime
/// failure (e.g. a poll failed in `once`), 2 invalid configuration or usage.
#[derive(Debug, Parser)]
#[command(name = "kafka-cloud-lag-exporter", version, about, long_about)]
pub struct Cli {
    /// Configuration file (YAML); see config.example.yaml.
    #[arg(
        long = "config.file",
        visible_alias = "config",
        value_name = "FILE",
        global = true,
        help_heading = "Global options"
    )]
    pub config_file: Option<PathBuf>,

    /// Address to serve /metrics on; overrides `listen` in the configuration.
    #[arg(
        long = "web.listen-address",
        value_name = "HOST:PORT",
        global = true,
        help_heading = "Global options"
    )]
    pub listen_address: Option<String>,

    /// Web configuration file (YAML, Prometheus exporter-toolkit format): TLS
    /// (`tls_server_config`), basic auth (`basic_auth_users`, bcrypt hashes) and response
    /// headers. Re-read on every new connection and request; an invalid change keeps the
    /// previous settings. /healthz and /readyz stay open without authentication.
    #[arg(
        long = "web.config.file",
        value_name = "FILE",
        global = true,
        help_heading = "Global options"
    )]
    pub web_config_file: Option<PathBuf>,

    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics",
        global = true,
        help_heading = "Global options"
    )]
    pub telemetry_path: String,

    /// Benchmark aid for bench/run.sh, not for production: `POST PATH` captures the
    /// exposition and `GET PATH` serves that capture from a prebuilt buffer, the floor a
    /// scrape is measured against. Daemon only.
    #[arg(long = "web.bench-floor-path", value_name = "PATH", hide = true)]
    pub bench_floor_path: Option<String>,

    /// Only log messages of this level or more severe.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info, global = true, help_heading = "Global options")]
    pub log_level: LogLevel,

    /// Log line format (logs go to stderr).
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Text, global = true, help_heading = "Global options")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration file and exit: 0 when valid, 2 with one message naming
    /// the file, the field and what is allowed when not.
    CheckConfig {
        /// Do not check that each account's credential variables or files are readable.
        #[arg(long)]
        skip_credentials: bool,
    },
    /// Poll every consumer group once, print the metrics to stdout and exit: 0 when every
    /// poll succeeded, 1 when any failed (stdout still holds what succeeded).
    Once,
    /// Run the exporter against a built-in simulator of both clouds on loopback (real
    /// HTTP, real signing, offsets moving over time); no cloud account needed.
    Demo(DemoArgs),
    /// Run only the built-in simulator of both clouds, for trying configurations, tests
    /// and benchmarks. Writes a configuration that points at it with --write-config.
    Simulator(SimulatorArgs),
    /// Move a consumer group's committed offsets, like `kafka-consumer-groups
    /// --reset-offsets`. Prints the plan and changes nothing unless --execute is given;
    /// with it, on a terminal, asks for the group name, then writes a backup of the
    /// offsets (undo: --from-file BACKUP) before any write. Exit status: 0 done (or dry
    /// run, or export), 1 a cloud call failed or the result differs from the plan, 2
    /// refused before writing (usage, configuration, validation, no confirmation, no
    /// backup).
    ResetOffsets(ResetArgs),
}

/// Options of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Share of simulated API requests that fail (5xx, throttling), to show retries and
    /// error metrics; 0 to 1.
    #[arg(long, default_value_t = 0.02, value_parser = probability)]
    pub faults: f64,
    /// Seconds between polls of each group.
    #[arg(long = "poll-interval", value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub poll_interval: std::time::Duration,
    /// How the demo's exporter signs in: `keys` (the simulator's static keys) or `oidc`
    /// (an OIDC token file exchanged at the simulated STS for temporary keys, as on ACK
    /// RRSA and TKE pod identity; refreshed before they expire).
    #[arg(long, value_enum, default_value_t = DemoCredentials::Keys)]
    pub credentials: DemoCredentials,
}

/// The demo's credential source.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoCredentials {
    Keys,
    Oidc,
}

/// Options of `simulator`.
#[derive(Debug, clap::Args)]
pub struct SimulatorArgs {
    /// Address of the simulated Alibaba API.
    #[arg(
        long = "alibaba.listen-address",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:0"
    )]
    pub alibaba_listen: String,
    /// Address of the simulated Tencent API.
    #[arg(
        long = "tencent.listen-address",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:0"
    )]
    pub tencent_listen: String,
    /// Write config.yaml (Alibaba signature V3, the default), config-v2.yaml (the same
    /// with Alibaba signature V2) and the key files, all pointing at the simulator, into DIR;
    /// and config-oidc.yaml with OIDC token files (keyless: the simulated STS exchanges the
    /// tokens for temporary keys).
    #[arg(long = "write-config", value_name = "DIR")]
    pub write_config: Option<PathBuf>,
    /// On shutdown, write every request received (raw, with the simulator's keys) as
    /// JSON to FILE, for independent signature checks.
    #[arg(long = "dump-requests", value_name = "FILE")]
    pub dump_requests: Option<PathBuf>,
    /// A fixed world instead of the size flags: `bench-100k` is the benchmark scenario of
    /// bench/run.sh (2,000 groups, 100,000 partitions, long names, 30 ms latency).
    #[arg(long, value_enum, conflicts_with_all = ["instances", "groups", "topics", "partitions", "names"])]
    pub scenario: Option<Scenario>,
    /// Kafka instances per cloud.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Consumer groups per instance.
    #[arg(long, default_value_t = 3)]
    pub groups: usize,
    /// Topics per consumer group.
    #[arg(long, default_value_t = 2)]
    pub topics: usize,
    /// Partitions per topic.
    #[arg(long, default_value_t = 3)]
    pub partitions: usize,
    /// Group and topic names: short (`group-0001`) or long (20 to 40 characters, like
    /// production names).
    #[arg(long, value_enum, default_value_t = Names::Short)]
    pub names: Names,
    /// Time added to every answer, like a real cloud's round trip (default 0, or the
    /// scenario's).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub latency: Option<std::time::Duration>,
    /// Seed of the generated world and of random faults.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of requests that fail at random (5xx, throttling, timeouts, bad bodies); 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub faults: f64,
    /// Alibaba requests per second allowed per key and action.
    #[arg(long = "rate-limit.alibaba", default_value_t = 50.0)]
    pub alibaba_rate_limit: f64,
    /// Answer Alibaba in the documented older shapes: GetConsumerProgress without state
    /// and member fields, GetConsumerList without Total and paging.
    #[arg(long = "alibaba.legacy-answers")]
    pub alibaba_legacy_answers: bool,
    /// Tencent requests per second per key and action; default: the documented limits.
    #[arg(long = "rate-limit.tencent")]
    pub tencent_rate_limit: Option<f64>,
    /// Poll interval written into the generated configuration.
    #[arg(long = "poll-interval", value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub poll_interval: std::time::Duration,
}

/// The fixed worlds of `simulator --scenario`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 2,000 consumer groups (10 instances × 100 groups per cloud) × 5 topics × 10
    /// partitions, names of 20 to 40 characters, 30 ms latency: bench/run.sh's world.
    #[value(name = "bench-100k")]
    Bench100k,
}

/// Naming of the simulator's generated groups and topics.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Names {
    Short,
    Long,
}

/// Options of `reset-offsets`: where, which partitions, which target (exactly one), and
/// whether to apply it.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .multiple(false)
        .args([
            "to_latest", "to_earliest", "to_current", "to_timestamp_ms", "to_datetime",
            "by_duration", "to_offsets", "shift_by", "from_file",
        ])
))]
pub struct ResetArgs {
    /// The configured account (`accounts[].name`) whose credentials and endpoint are used.
    #[arg(long, value_name = "NAME")]
    pub account: String,
    /// The Kafka instance id, listed under the account (or found by its discovery).
    #[arg(long, value_name = "ID")]
    pub instance: String,
    /// The consumer group to reset; it must have no active members.
    #[arg(long, value_name = "GROUP")]
    pub group: String,
    /// Reset this topic, or with `:P,P...` only these partitions of it (e.g. `orders:0,2`).
    /// Repeatable. With --from-file: only these rows of the file.
    #[arg(
        long,
        value_name = "TOPIC[:P,P...]",
        help_heading = "Scope (one is required, except with --from-file)"
    )]
    pub topic: Vec<String>,
    /// Reset every topic the group has offsets on.
    #[arg(
        long = "all-topics",
        conflicts_with = "topic",
        help_heading = "Scope (one is required, except with --from-file)"
    )]
    pub all_topics: bool,
    /// Move to the log-end offset of each partition.
    #[arg(long = "to-latest", help_heading = "Target (exactly one)")]
    pub to_latest: bool,
    /// Move to the earliest retained offset of each partition.
    #[arg(long = "to-earliest", help_heading = "Target (exactly one)")]
    pub to_earliest: bool,
    /// Set each partition to its committed offset as read now (the log end where there is
    /// none), as explicit offsets: with --export, a snapshot of the group.
    #[arg(long = "to-current", help_heading = "Target (exactly one)")]
    pub to_current: bool,
    /// Move to the first offset produced at or after this time (Unix milliseconds).
    #[arg(
        long = "to-timestamp-ms",
        value_name = "MS",
        allow_negative_numbers = true,
        help_heading = "Target (exactly one)"
    )]
    pub to_timestamp_ms: Option<i64>,
    /// Move to the first offset produced at or after this time (RFC 3339, with offset,
    /// e.g. 2024-05-01T08:00:00+08:00).
    #[arg(
        long = "to-datetime",
        value_name = "RFC3339",
        help_heading = "Target (exactly one)"
    )]
    pub to_datetime: Option<String>,
    /// Move to the first offset produced at or after this long ago (ISO 8601 duration in
    /// days, hours, minutes and seconds, e.g. PT30M, PT1H30M, P1D).
    #[arg(
        long = "by-duration",
        value_name = "DURATION",
        help_heading = "Target (exactly one)"
    )]
    pub by_duration: Option<String>,
    /// Set explicit offsets of partitions of one --topic, e.g. 0=1200,3=1500.
    #[arg(
        long = "to-offsets",
        value_name = "P=O[,P=O...]",
        help_heading = "Target (exactly one)"
    )]
    pub to_offsets: Option<String>,
    /// Move each partition by N messages (negative: back), limited to [0, log end]. Tencent
    /// shifts natively; on Alibaba it is sent as explicit offsets computed from the
    /// committed offsets read now.
    #[arg(
        long = "shift-by",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Target (exactly one)"
    )]
    pub shift_by: Option<i64>,
    /// Set the offsets listed in FILE, a CSV of `topic,partition,offset` lines as
    /// kafka-consumer-groups --export writes (lines starting with # are comments): a
    /// backup written by --execute undoes that reset.
    #[arg(
        long = "from-file",
        value_name = "FILE",
        help_heading = "Target (exactly one)"
    )]
    pub from_file: Option<PathBuf>,
    /// Apply the plan: back up the offsets it moves, then write. Without it nothing is
    /// written (dry run).
    #[arg(long)]
    pub execute: bool,
    /// Print the plan as a `topic,partition,offset` CSV (what --from-file reads) instead of
    /// the table, and write nothing.
    #[arg(long, conflicts_with_all = ["execute", "output"])]
    pub export: bool,
    /// How to print the plan and the result: a table, or one JSON document on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ResetOutput::Table)]
    pub output: ResetOutput,
    /// Do not ask for confirmation on a terminal. (Without a terminal, e.g. in a script,
    /// --execute never asks.)
    #[arg(long)]
    pub yes: bool,
    /// Where --execute writes the backup of the group's offsets before any write. Default:
    /// $XDG_STATE_HOME/kafka-cloud-lag-exporter/reset-backups, else
    /// ~/.local/state/kafka-cloud-lag-exporter/reset-backups, else the current directory.
    #[arg(long = "backup-dir", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Reset even though the cloud's answer does not say whether the group has active
    /// members (Alibaba's documented GetConsumerProgress answer has no state and no
    /// members). You take responsibility: stop the group's consumers first. Recorded in
    /// the audit line. A group the cloud reports as active is refused all the same.
    #[arg(long = "assume-inactive")]
    pub assume_inactive: bool,
}

/// How `reset-offsets` prints its plan and result.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ResetOutput {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document (plan, and after --execute the result of each partition).
    Json,
}

/// Log levels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Log formats.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn probability(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is out of range; allowed 0 to 1"))
    }
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn prometheus_style_flags_and_alias() {
        let cli = Cli::try_parse_from([
            "x",
            "once",
            "--config",
            "c.yaml",
            "--web.listen-address",
            "127.0.0.1:1",
            "--log.format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.config_file.unwrap(), PathBuf::from("c.yaml"));
        assert_eq!(cli.listen_address.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(matches!(cli.command, Some(Command::Once)));
        assert_eq!(cli.telemetry_path, "/metrics");
        assert!(Cli::try_parse_from(["x", "demo", "--faults", "2"]).is_err());
        let cli = Cli::try_parse_from(["x", "demo", "--web.config.file", "web.yml"]).unwrap();
        assert_eq!(cli.web_config_file.unwrap(), PathBuf::from("web.yml"));
    }

    #[test]
    fn simulator_scenario_excludes_the_size_flags() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["x", "simulator"];
            argv.extend(extra);
            Cli::try_parse_from(argv).map(|c| match c.command {
                Some(Command::Simulator(args)) => args,
                other => panic!("parsed as {other:?}"),
            })
        };
        let args = parse(&["--scenario", "bench-100k", "--latency", "5ms"]).unwrap();
        assert_eq!(args.scenario, Some(Scenario::Bench100k));
        assert_eq!(args.latency, Some(std::time::Duration::from_millis(5)));
        let err = parse(&["--scenario", "bench-100k", "--groups", "5"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let args = parse(&["--names", "long", "--groups", "5"]).unwrap();
        assert_eq!(
            (args.names, args.groups, args.latency),
            (Names::Long, 5, None)
        );
    }

    fn reset(extra: &[&str]) -> Result<ResetArgs, clap::Error> {
        let mut argv = vec![
            "x",
            "reset-offsets",
            "--account",
            "a",
            "--instance",
            "i",
            "--group",
            "g",
        ];
        argv.extend(extra);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::ResetOffsets(args)) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn reset_offsets_needs_exactly_one_target() {
        let args = reset(&["--shift-by", "-5", "--execute"]).unwrap();
        assert_eq!(args.shift_by, Some(-5));
        assert!(args.execute);
        let args = reset(&["--to-timestamp-ms", "-1"]).unwrap();
        assert_eq!(args.to_timestamp_ms, Some(-1));
        let args = reset(&["--topic", "t", "--to-offsets", "0=1,1=2"]).unwrap();
        assert_eq!(args.to_offsets.as_deref(), Some("0=1,1=2"));
        assert!(!args.execute, "dry run by default");
        assert_eq!(args.output, ResetOutput::Table);
        let args = reset(&["--topic", "a", "--topic", "b:0,2", "--by-duration", "PT30M"]).unwrap();
        assert_eq!(args.topic, ["a", "b:0,2"]);
        assert_eq!(args.by_duration.as_deref(), Some("PT30M"));
        let args = reset(&["--from-file", "b.csv", "--output", "json", "--yes"]).unwrap();
        assert_eq!(args.from_file, Some(PathBuf::from("b.csv")));
        assert_eq!(args.output, ResetOutput::Json);
        assert!(args.yes);
        for conflict in [
            &["--to-current", "--topic", "a", "--all-topics"][..],
            &["--to-current", "--export", "--execute"],
            &["--to-current", "--export", "--output", "json"],
            &["--to-current", "--from-file", "f"],
        ] {
            let e = reset(conflict).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{conflict:?}"
            );
        }
        let none = reset(&[]).unwrap_err();
        assert_eq!(none.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let two = reset(&["--to-latest", "--to-earliest"]).unwrap_err();
        assert_eq!(two.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(none.exit_code(), 2);
        assert_eq!(two.exit_code(), 2);
    }
}

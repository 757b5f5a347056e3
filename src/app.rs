//! Wiring: turns a configuration into a running exporter (providers, scheduler, store,
//! metrics, server) and implements the subcommands. `main.rs` only calls [`run`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::cli::{Cli, Command, LogFormat, LogLevel};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Account, Config, ConfigError};
use crate::credentials::{CredentialProvider, CredentialSources};
use crate::metrics::Metrics;
use crate::model::{Cloud, GroupTarget, InstanceRef};
use crate::providers::{self, AccountSpec, ProviderDeps, call::RetryPolicy};
use crate::scheduler::{AccountRuntime, Plan, Scheduler, Settings};
use crate::server::{self, ServerState};
use crate::store::Store;

/// Exit status for an invalid configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;

/// Chooses each account's credential sources (the config's, or fixed ones in the demo).
pub type CredentialResolver = dyn Fn(&Account) -> CredentialSources + Send + Sync;

/// The poll action of each cloud, whose error series are created at zero at start.
fn poll_action(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Alibaba => "GetConsumerProgress",
        Cloud::Tencent => "DescribeGroupOffsets",
    }
}

/// A configured exporter: everything but the listening socket.
pub struct Exporter {
    pub config: Config,
    pub clock: SharedClock,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    pub scheduler: Arc<Scheduler>,
}

impl Exporter {
    /// Builds providers and the scheduler for `config`.
    pub fn new(config: Config, clock: SharedClock, credentials: &CredentialResolver) -> Exporter {
        let metrics = Metrics::new();
        let deps = ProviderDeps {
            http: providers::http::client(),
            clock: clock.clone(),
            observer: metrics.exporter.clone(),
            request_timeout: config.request_timeout,
            retry: RetryPolicy::default(),
        };
        let plan = build_plan(&config, &deps, credentials);
        for account in &config.accounts {
            metrics
                .exporter
                .init_actions(account.cloud, &[poll_action(account.cloud)]);
        }
        let store = Arc::new(Store::new());
        let settings = Settings {
            poll_interval: config.poll_interval,
            poll_timeout: config.request_timeout,
        };
        let scheduler = Scheduler::new(
            clock.clone(),
            store.clone(),
            metrics.exporter.clone(),
            settings,
            plan,
        );
        Exporter {
            config,
            clock,
            store,
            metrics,
            scheduler,
        }
    }

    /// The current exposition.
    pub fn render(&self) -> Vec<u8> {
        self.metrics
            .render(&self.store, self.clock.now(), self.config.stale_after())
    }

    /// What the HTTP handlers need.
    pub fn server_state(&self, telemetry_path: &str) -> Arc<ServerState> {
        Arc::new(ServerState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            telemetry_path: telemetry_path.to_string(),
            stale_after: self.config.stale_after(),
        })
    }

    /// Polls and serves until `shutdown` turns true.
    pub async fn run(
        self,
        listener: TcpListener,
        telemetry_path: &str,
        shutdown: watch::Receiver<bool>,
    ) {
        let state = self.server_state(telemetry_path);
        let scheduler = self.scheduler.clone().run(shutdown.clone());
        let server = server::serve(listener, state, shutdown);
        tokio::join!(scheduler, server);
    }
}

/// Turns the configured accounts, instances and groups into a polling plan.
pub fn build_plan(config: &Config, deps: &ProviderDeps, credentials: &CredentialResolver) -> Plan {
    let mut plan = Plan::default();
    for account in &config.accounts {
        let mut spec = AccountSpec::from_config(account);
        spec.credentials = CredentialProvider::new(credentials(account));
        let name = spec.name.clone();
        let region = spec.region.clone();
        let provider = providers::build(spec, deps);
        plan.accounts.insert(
            name.clone(),
            AccountRuntime {
                provider,
                permits: Arc::new(Semaphore::new(account.max_concurrency)),
            },
        );
        for instance in &account.instances {
            let iref = Arc::new(InstanceRef {
                cloud: account.cloud,
                account: name.clone(),
                region: region.clone(),
                instance_id: instance.id.as_str().into(),
            });
            for group in &instance.groups {
                plan.targets.push(GroupTarget {
                    instance: iref.clone(),
                    group: group.as_str().into(),
                });
            }
        }
    }
    plan
}

/// The configured credential sources of each account.
pub fn configured_credentials(account: &Account) -> CredentialSources {
    account.credential_sources()
}

/// Runs the command line; returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match &cli.command {
        None => runtime.block_on(daemon(&cli)),
        Some(Command::CheckConfig { skip_credentials }) => check_config(&cli, *skip_credentials),
        Some(Command::Once) => runtime.block_on(once(&cli)),
        Some(Command::Demo(args)) => runtime.block_on(crate::demo::run_demo(&cli, args)),
        Some(Command::Simulator(args)) => runtime.block_on(crate::demo::run_simulator(args)),
    }
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let directives = match level {
        // Dependencies' debug output is rarely what an operator wants.
        LogLevel::Debug | LogLevel::Trace => format!(
            "{0},hyper=info,hyper_util=info,reqwest=info,rustls=info,h2=info",
            level.as_str()
        ),
        _ => level.as_str().to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::new(directives);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Err only when a subscriber is already set (tests); keep that one.
    let _ = result;
}

/// Prints a configuration error the way every command reports it and returns status 2.
fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn config_path(cli: &Cli) -> Result<&Path, ExitCode> {
    match cli.config_file.as_deref() {
        Some(p) => Ok(p),
        None => {
            eprintln!(
                "error: no configuration file; pass --config.file FILE (see config.example.yaml)"
            );
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Loads, validates and (unless skipped) checks the credentials of the configuration.
pub fn load_config(path: &Path, check_credentials: bool) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    if check_credentials {
        config.check_credentials(path)?;
    }
    Ok(config)
}

fn check_config(cli: &Cli, skip_credentials: bool) -> ExitCode {
    let path = match config_path(cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match load_config(path, !skip_credentials) {
        Ok(config) => {
            println!(
                "{}: valid ({} accounts, {} consumer groups)",
                path.display(),
                config.accounts.len(),
                config.group_count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => config_failure(&e),
    }
}

/// The address to listen on: the flag, else the config's `listen`.
fn listen_address(cli: &Cli, config: &Config, path: &Path) -> Result<SocketAddr, ExitCode> {
    let (value, source) = match &cli.listen_address {
        Some(a) => (a.as_str(), "--web.listen-address".to_string()),
        None => (
            config.listen.as_str(),
            format!("{}: listen", path.display()),
        ),
    };
    value.parse().map_err(|_| {
        eprintln!("error: {source}: {value:?} is not a socket address; expected host:port, e.g. 0.0.0.0:9758");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn check_telemetry_path(path: &str) -> Result<(), ExitCode> {
    let reserved = ["/", "/healthz", "/readyz"];
    if !path.starts_with('/') || reserved.contains(&path) {
        eprintln!(
            "error: --web.telemetry-path: {path:?} must start with '/' and not be one of {reserved:?}"
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    Ok(())
}

async fn daemon(cli: &Cli) -> ExitCode {
    let path = match config_path(cli) {
        Ok(p) => p.to_path_buf(),
        Err(code) => return code,
    };
    let config = match load_config(&path, true) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    if let Err(code) = check_telemetry_path(&cli.telemetry_path) {
        return code;
    }
    let addr = match listen_address(cli, &config, &path) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %path.display(),
        address = %addr,
        accounts = config.accounts.len(),
        groups = config.group_count(),
        "starting kafka-cloud-lag-exporter"
    );
    let exporter = Exporter::new(config, Arc::new(SystemClock), &configured_credentials);
    let shutdown = crate::shutdown::on_signal();
    exporter.run(listener, &cli.telemetry_path, shutdown).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn once(cli: &Cli) -> ExitCode {
    let path: PathBuf = match config_path(cli) {
        Ok(p) => p.to_path_buf(),
        Err(code) => return code,
    };
    let config = match load_config(&path, true) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let exporter = Exporter::new(config, Arc::new(SystemClock), &configured_credentials);
    let report = exporter.scheduler.poll_all_once().await;
    let body = exporter.render();
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&body).and_then(|_| stdout.flush()) {
        eprintln!("error: writing metrics to stdout: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {} of {} consumer groups could not be polled",
            report.failed.len(),
            report.failed.len() + report.succeeded
        );
        ExitCode::from(EXIT_FAILURE)
    }
}

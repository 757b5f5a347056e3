//! Wiring: turns a configuration into a running exporter (providers, scheduler, store,
//! metrics, server) and implements the subcommands. `main.rs` only calls [`run`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{Cli, Command, LogFormat, LogLevel};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Account, Config, ConfigError};
use crate::credentials::{CredentialProvider, CredentialSources};
use crate::discovery::Rules;
use crate::metrics::Metrics;
use crate::model::{GroupTarget, InstanceRef};
use crate::providers::budget::Budget;
use crate::providers::{self, AccountSpec, ProviderDeps, call::RetryPolicy};
use crate::scheduler::{AccountRuntime, Plan, Scheduler, Settings};
use crate::server::{self, ServerState, WebProtection};
use crate::store::Store;
use crate::web_config::WebConfigSource;

/// Exit status for an invalid configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;

/// Chooses each account's credential sources (the config's, or fixed ones in the demo).
pub type CredentialResolver = dyn Fn(&Account) -> CredentialSources + Send + Sync;

/// A configured exporter: everything but the listening socket.
pub struct Exporter {
    config: RwLock<Config>,
    pub clock: SharedClock,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    pub scheduler: Arc<Scheduler>,
    http: reqwest::Client,
    credentials: Arc<CredentialResolver>,
    /// Where reloads read the configuration from (`None`: reloads are refused).
    config_path: Option<PathBuf>,
    reloading: Mutex<()>,
}

impl Exporter {
    /// Builds providers and the scheduler for `config`.
    pub fn new(
        config: Config,
        clock: SharedClock,
        credentials: Arc<CredentialResolver>,
        config_path: Option<PathBuf>,
    ) -> Arc<Exporter> {
        let metrics = Metrics::new();
        let http = providers::http::client();
        let store = Arc::new(Store::new());
        store.set_stale_after(config.stale_after());
        let plan = build_plan(&config, &http, &clock, &metrics, &*credentials);
        let scheduler = Scheduler::new(
            clock.clone(),
            store.clone(),
            metrics.exporter.clone(),
            settings(&config),
            plan,
        );
        metrics.exporter.config_last_reload_successful.set(1);
        metrics
            .exporter
            .config_last_reload_success_timestamp_seconds
            .set(crate::clock::unix_seconds_f64(clock.now()));
        Arc::new(Exporter {
            config: RwLock::new(config),
            clock,
            store,
            metrics,
            scheduler,
            http,
            credentials,
            config_path,
            reloading: Mutex::new(()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current exposition.
    pub fn render(&self) -> Vec<u8> {
        self.metrics
            .render(&self.store, &self.scheduler.status(), self.clock.now())
    }

    /// Puts a new configuration in force: new providers, budgets and targets. Groups
    /// that stay keep their data; groups that go lose their series at once.
    pub fn apply(&self, config: Config) {
        let plan = build_plan(
            &config,
            &self.http,
            &self.clock,
            &self.metrics,
            &*self.credentials,
        );
        self.store.set_stale_after(config.stale_after());
        self.scheduler.set_plan(plan, settings(&config));
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Re-reads the configuration file; on any error keeps the running configuration.
    pub fn reload(&self) -> Result<(), String> {
        let _serial = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.config_path else {
            return Err("this exporter was not started from a configuration file".into());
        };
        let gauges = &self.metrics.exporter;
        match load_config(path, true) {
            Ok(config) => {
                let old = self.config();
                if config.listen != old.listen {
                    tracing::warn!(old = %old.listen, new = %config.listen, "listen changed; a restart is needed to apply it");
                }
                let (accounts, groups) = (config.accounts.len(), config.group_count());
                self.apply(config);
                gauges.config_last_reload_successful.set(1);
                gauges
                    .config_last_reload_success_timestamp_seconds
                    .set(crate::clock::unix_seconds_f64(self.clock.now()));
                tracing::info!(config = %path.display(), accounts, groups, "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                gauges.config_last_reload_successful.set(0);
                tracing::error!(error = %e, "configuration reload rejected; the running configuration stays in force");
                Err(e.to_string())
            }
        }
    }

    /// What the HTTP handlers need, without TLS or authentication.
    pub fn server_state(self: &Arc<Self>, telemetry_path: &str) -> Arc<ServerState> {
        self.protected_server_state(telemetry_path, None)
    }

    /// What the HTTP handlers need, with the web configuration (`--web.config.file`).
    pub fn protected_server_state(
        self: &Arc<Self>,
        telemetry_path: &str,
        web: Option<Arc<WebConfigSource>>,
    ) -> Arc<ServerState> {
        Arc::new(ServerState {
            backend: self.clone(),
            telemetry_path: telemetry_path.to_string(),
            web: web.map(WebProtection::new),
        })
    }

    /// Polls and serves until `shutdown` turns true; SIGHUP reloads the configuration.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        telemetry_path: &str,
        web: Option<Arc<WebConfigSource>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let state = self.protected_server_state(telemetry_path, web);
        let hup = tokio::spawn(reload_on_sighup(self.clone(), shutdown.clone()));
        let scheduler = self.scheduler.clone().run(shutdown.clone());
        let server = server::serve(listener, state, shutdown);
        tokio::join!(scheduler, server);
        hup.abort();
    }
}

impl server::Backend for Exporter {
    fn render(&self) -> Vec<u8> {
        Exporter::render(self)
    }

    fn is_ready(&self) -> bool {
        self.store.is_ready()
    }

    fn group_count(&self) -> usize {
        self.store.len()
    }

    fn reload(&self) -> Result<(), String> {
        Exporter::reload(self)
    }
}

#[cfg(unix)]
async fn reload_on_sighup(exporter: Arc<Exporter>, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload instead");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP received; reloading the configuration");
                let e = exporter.clone();
                // Reading files and building clients is blocking work.
                let _ = tokio::task::spawn_blocking(move || e.reload()).await;
            }
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_: Arc<Exporter>, _: watch::Receiver<bool>) {}

fn settings(config: &Config) -> Settings {
    Settings {
        poll_interval: config.poll_interval,
        poll_timeout: config.request_timeout(),
        discovery_interval: config.discovery_interval,
    }
}

/// What every provider of `account` shares: the HTTP client, the clock, an observer, the
/// request timeout, retries and the account's request budget (its configured rates).
pub fn provider_deps(
    config: &Config,
    account: &Account,
    http: &reqwest::Client,
    clock: &SharedClock,
    observer: Arc<dyn providers::ApiObserver>,
) -> ProviderDeps {
    let rates: HashMap<String, f64> = providers::budget::default_rate_limits(account.cloud)
        .iter()
        .map(|(a, _)| (a.to_string(), account.rate_limit(a)))
        .collect();
    ProviderDeps {
        http: http.clone(),
        clock: clock.clone(),
        observer,
        request_timeout: config.request_timeout(),
        retry: RetryPolicy::default(),
        budget: Arc::new(Budget::new(
            rates,
            crate::config::ALIBABA_DEFAULT_RATE_LIMIT,
        )),
    }
}

/// The provider of `account` in `region`, reading credentials from `sources`.
pub fn account_provider(
    account: &Account,
    region: &str,
    sources: CredentialSources,
    deps: &ProviderDeps,
) -> Arc<dyn providers::Provider> {
    let mut spec = AccountSpec::from_config(account, region);
    spec.credentials = CredentialProvider::new(sources);
    providers::build(spec, deps)
}

/// Turns the configured accounts, instances and groups into a polling plan: one
/// provider per (account, region), sharing the account's budget and concurrency.
pub fn build_plan(
    config: &Config,
    http: &reqwest::Client,
    clock: &SharedClock,
    metrics: &Metrics,
    credentials: &CredentialResolver,
) -> Plan {
    let mut plan = Plan::default();
    for account in &config.accounts {
        let name: Arc<str> = account.name.as_str().into();
        let deps = provider_deps(config, account, http, clock, metrics.exporter.clone());
        let budget = deps.budget.clone();
        let sources = credentials(account);
        let mut regions = HashMap::new();
        for region in account.regions() {
            regions.insert(
                Arc::<str>::from(region),
                account_provider(account, region, sources.clone(), &deps),
            );
        }
        let iref = |instance: &crate::config::Instance| {
            Arc::new(InstanceRef {
                cloud: account.cloud,
                account: name.clone(),
                region: account.instance_region(instance).into(),
                instance_id: instance.id.as_str().into(),
            })
        };
        let mut rules = Rules {
            instances: account.discover_instances.clone(),
            regions: account.regions().into_iter().map(Arc::from).collect(),
            ..Rules::default()
        };
        for instance in &account.instances {
            let instance_ref = iref(instance);
            rules.listed.push(instance_ref.instance_id.clone());
            match &instance.discover_groups {
                Some(filter) => rules.groups.push((instance_ref, filter.clone())),
                None => {
                    for group in &instance.groups {
                        plan.listed.push(GroupTarget {
                            instance: instance_ref.clone(),
                            group: group.as_str().into(),
                        });
                    }
                }
            }
        }
        metrics
            .exporter
            .init_actions(account.cloud, &[providers::poll_action(account.cloud)]);
        metrics.exporter.init_account(account.cloud, &account.name);
        plan.accounts.insert(
            name.clone(),
            AccountRuntime {
                name,
                cloud: account.cloud,
                providers: regions,
                budget,
                discovery: rules,
            },
        );
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
        Some(Command::ResetOffsets(args)) => runtime.block_on(reset_offsets(&cli, args)),
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

/// The `--config.file` path and its configuration, or the exit status of the reported
/// error (status 2).
fn cli_config(cli: &Cli, check_credentials: bool) -> Result<(PathBuf, Config), ExitCode> {
    let path = config_path(cli)?.to_path_buf();
    let config = load_config(&path, check_credentials).map_err(|e| config_failure(&e))?;
    Ok((path, config))
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
        }
        Err(e) => return config_failure(&e),
    }
    if let Some(web) = &cli.web_config_file {
        match crate::web_config::WebConfig::load(web) {
            Ok(c) => println!("{}: valid ({})", web.display(), c.summary()),
            Err(e) => return config_failure(&e),
        }
    }
    ExitCode::SUCCESS
}

/// Loads `--web.config.file` when given; an invalid file is a configuration error
/// (status 2) at start-up, like an invalid `--config.file`.
pub fn load_web_config(cli: &Cli) -> Result<Option<Arc<WebConfigSource>>, ExitCode> {
    let Some(path) = &cli.web_config_file else {
        return Ok(None);
    };
    match WebConfigSource::load(path) {
        Ok(source) => {
            tracing::info!(
                file = %path.display(),
                settings = %source.current().summary(),
                "web configuration loaded; /healthz and /readyz stay open without authentication"
            );
            Ok(Some(Arc::new(source)))
        }
        Err(e) => Err(config_failure(&e)),
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
    let (path, config) = match cli_config(cli, true) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Err(code) = check_telemetry_path(&cli.telemetry_path) {
        return code;
    }
    let addr = match listen_address(cli, &config, &path) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let web = match load_web_config(cli) {
        Ok(w) => w,
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
    let exporter = Exporter::new(
        config,
        Arc::new(SystemClock),
        Arc::new(configured_credentials),
        Some(path.clone()),
    );
    let shutdown = crate::shutdown::on_signal();
    exporter
        .run(listener, &cli.telemetry_path, web, shutdown)
        .await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// `reset-offsets`: the only command that writes to a cloud; never part of the daemon.
async fn reset_offsets(cli: &Cli, args: &crate::cli::ResetArgs) -> ExitCode {
    // Only the named account's credentials are needed; `reset` reads and checks them.
    let config = match cli_config(cli, false) {
        Ok((_, config)) => config,
        Err(code) => return code,
    };
    let status = crate::reset::run(
        args,
        &config,
        Arc::new(SystemClock),
        &configured_credentials,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    ExitCode::from(status)
}

async fn once(cli: &Cli) -> ExitCode {
    let config = match cli_config(cli, true) {
        Ok((_, config)) => config,
        Err(code) => return code,
    };
    let exporter = Exporter::new(
        config,
        Arc::new(SystemClock),
        Arc::new(configured_credentials),
        None,
    );
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

//! The exporter as a whole: turns a configuration into providers, a scheduler, a store,
//! metrics and a server, runs them, and reloads the configuration in place.
//!
//! This is wiring: it builds each account's providers (read-only, [`Provider`]) from the
//! configuration, but never a writer; `reset-offsets` builds those itself. It keeps no
//! logic of its own beyond the reload rules.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use kcle_clock::Clock;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cardinality::{Policy, StateSet};
use crate::config::{Account, Config, ConfigError};
use crate::credentials::{
    CredentialObserver, CredentialProvider, CredentialSources, Environment, SourceKind,
};
use crate::discovery::Rules;
use crate::metrics::{Metrics, Scrape};
use crate::model::{GroupTarget, InstanceRef};
use crate::providers::budget::Budget;
use crate::providers::credentials::CredentialDeps;
use crate::providers::{self, AccountSpec, ApiObserver, Provider, ProviderDeps, call::RetryPolicy};
use crate::scheduler::{AccountRuntime, PollPlan, Scheduler, Settings};
use crate::store::Store;
use crate::web::{self, Backend, ServerState, WebConfigSource, WebProtection};

/// Chooses each account's static credential sources: the configuration's
/// ([`configured_credentials`]), or fixed ones that override it (the demo's and tests'
/// simulator keys). An account whose sources are the configuration's gets whatever its
/// `credentials` block configures (see [`account_credentials`]).
pub type CredentialResolver = dyn Fn(&Account) -> CredentialSources + Send + Sync;

/// What an exporter runs on besides its configuration: the clock, where credentials come
/// from, and the HTTP client of the providers.
#[derive(Clone)]
pub struct Runtime {
    pub clock: Clock,
    pub credentials: Arc<CredentialResolver>,
    pub http: reqwest::Client,
}

impl Runtime {
    /// The real clock, the configured credential sources and a fresh HTTP client.
    pub fn production() -> Runtime {
        Runtime {
            clock: Clock::system(),
            credentials: Arc::new(configured_credentials),
            http: providers::http::client(),
        }
    }
}

/// A configured exporter: everything but the listening socket.
pub struct Exporter {
    config: RwLock<Config>,
    runtime: Runtime,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    pub scheduler: Arc<Scheduler>,
    /// Where reloads read the configuration from (`None`: reloads are refused).
    config_path: Option<PathBuf>,
    reloading: Mutex<()>,
    /// Where the benchmark aid is served, if anywhere (`--web.bench-floor-path`).
    bench_floor_path: OnceLock<String>,
}

impl Exporter {
    /// Builds providers and the scheduler for `config`.
    pub fn new(config: Config, runtime: Runtime, config_path: Option<PathBuf>) -> Arc<Exporter> {
        let metrics = Metrics::new();
        metrics.set_metric_names(config.metric_names);
        let store = Arc::new(Store::new());
        store.set_stale_after(config.stale_after());
        let plan = build_plan(&config, &runtime, &metrics);
        let scheduler = Scheduler::new(
            runtime.clock.clone(),
            store.clone(),
            metrics.exporter.clone(),
            settings(&config),
            plan,
            config.state_dir.clone(),
        );
        metrics.exporter.config_loaded(true, runtime.clock.now());
        Arc::new(Exporter {
            config: RwLock::new(config),
            runtime,
            store,
            metrics,
            scheduler,
            config_path,
            reloading: Mutex::new(()),
            bench_floor_path: OnceLock::new(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The clock everything runs on.
    pub fn clock(&self) -> &Clock {
        &self.runtime.clock
    }

    /// A scrape of this moment, rendered piece by piece ([`Scrape::fill`]).
    pub fn scrape(&self) -> Scrape {
        self.metrics
            .scrape(&self.store, self.scheduler.status(), self.clock().now())
    }

    /// The current exposition.
    pub fn render(&self) -> Vec<u8> {
        self.metrics
            .render(&self.store, &self.scheduler.status(), self.clock().now())
    }

    /// Puts a new configuration in force: new providers, budgets and targets. Groups
    /// that stay keep their data; groups that go lose their series at once.
    pub fn apply(&self, config: Config) {
        let plan = build_plan(&config, &self.runtime, &self.metrics);
        self.metrics.set_metric_names(config.metric_names);
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
        match load_config(path, true) {
            Ok(config) => {
                let old = self.config();
                if config.listen != old.listen {
                    tracing::warn!(old = %old.listen, new = %config.listen, "listen changed; a restart is needed to apply it");
                }
                let (accounts, groups) = (config.accounts.len(), config.group_count());
                self.apply(config);
                self.metrics
                    .exporter
                    .config_loaded(true, self.clock().now());
                tracing::info!(config = %path.display(), accounts, groups, "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .exporter
                    .config_loaded(false, self.clock().now());
                tracing::error!(error = %e, "configuration reload rejected; the running configuration stays in force");
                Err(e.to_string())
            }
        }
    }

    /// Serves the benchmark aid ([`web::BenchFloor`]) at `path`; call before `run`.
    pub fn enable_bench_floor(&self, path: &str) {
        let _ = self.bench_floor_path.set(path.to_string());
    }

    /// What the HTTP handlers need; `web` is the web configuration (`--web.config.file`).
    pub fn server_state(
        self: &Arc<Self>,
        telemetry_path: &str,
        web: Option<Arc<WebConfigSource>>,
    ) -> Arc<ServerState> {
        Arc::new(ServerState {
            backend: self.clone(),
            telemetry_path: telemetry_path.to_string(),
            web: web.map(WebProtection::new),
            clock: self.clock().clone(),
            bench_floor: self.bench_floor_path.get().map(|p| web::BenchFloor::new(p)),
        })
    }

    /// Polls and serves until `shutdown` turns true.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        telemetry_path: &str,
        web: Option<Arc<WebConfigSource>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let state = self.server_state(telemetry_path, web);
        let scheduler = self.scheduler.clone().run(shutdown.clone());
        let server = web::serve(listener, state, shutdown);
        tokio::join!(scheduler, server);
    }
}

impl Backend for Exporter {
    fn scrape(&self) -> Box<dyn web::Exposition> {
        Box::new(Exporter::scrape(self))
    }

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

impl web::Exposition for Scrape {
    fn fill(&mut self, out: &mut Vec<u8>, until: usize) -> bool {
        Scrape::fill(self, out, until)
    }
}

fn settings(config: &Config) -> Settings {
    Settings {
        poll_interval: config.poll_interval,
        poll_timeout: config.request_timeout(),
        discovery_interval: config.discovery_interval,
        verdict_window: config.verdict.window,
        cardinality: cardinality(&config.cardinality),
    }
}

fn cardinality(c: &crate::config::CardinalityConfig) -> Policy {
    Policy {
        skip_states: StateSet::of(c.skip_groups.states.iter().map(|s| s.state())),
        skip_with_lag: c.skip_groups.with_lag,
        max_partition_series: c.max_partition_series,
        top_partitions: c.top_partitions,
    }
}

/// Loads, validates and (unless skipped) checks the credentials of the configuration.
pub fn load_config(path: &Path, check_credentials: bool) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    config.check_state_dir(path)?;
    if check_credentials {
        config.check_credentials(path)?;
    }
    Ok(config)
}

/// The configured credential sources of each account.
pub fn configured_credentials(account: &Account) -> CredentialSources {
    account.credential_sources()
}

/// What every provider of `account` shares: the HTTP client, the clock, an observer, the
/// attempt timeout, retries and the account's request budget (its configured rates and
/// concurrency).
pub fn provider_deps(
    config: &Config,
    account: &Account,
    runtime: &Runtime,
    observer: Arc<dyn ApiObserver>,
) -> ProviderDeps {
    let profile = providers::profile(account.cloud);
    let rates: HashMap<String, f64> = profile
        .actions
        .iter()
        .map(|a| (a.name.to_string(), account.rate_limit(a.name)))
        .collect();
    ProviderDeps {
        http: runtime.http.clone(),
        clock: runtime.clock.clone(),
        observer,
        attempt_timeout: config.request_timeout(),
        retry: RetryPolicy::default(),
        budget: Arc::new(
            Budget::new(rates, profile.fallback_rate).with_concurrency(account.max_concurrency),
        ),
    }
}

/// Everything a provider of `account` in `region` is built from, reading credentials from
/// `sources`.
pub fn account_spec(
    account: &Account,
    region: &str,
    sources: CredentialSources,
    clock: &Clock,
) -> AccountSpec {
    account_spec_with(
        account,
        region,
        CredentialProvider::new(sources, clock.clone()),
    )
}

/// Everything a provider of `account` in `region` is built from, with the account's
/// credential provider (shared by its regions).
pub fn account_spec_with(
    account: &Account,
    region: &str,
    credentials: CredentialProvider,
) -> AccountSpec {
    AccountSpec {
        name: account.name.as_str().into(),
        cloud: account.cloud,
        region: region.into(),
        endpoint: account.endpoint_url(region),
        credentials,
        signature_version: account.signature_version.unwrap_or_default(),
    }
}

/// The credential provider of `account`: the runtime's fixed sources when they override
/// the configuration, else the configured source (or the cloud's default chain), kept
/// fresh by the credentials module. A source that cannot be built (its variables or
/// files changed since the start-up check) fails every poll, saying why.
pub fn account_credentials(
    account: &Account,
    runtime: &Runtime,
    observer: Arc<dyn CredentialObserver>,
) -> CredentialProvider {
    let sources = (runtime.credentials)(account);
    if sources != account.credential_sources() {
        return CredentialProvider::new(sources, runtime.clock.clone());
    }
    let deps = CredentialDeps {
        http: runtime.http.clone(),
        clock: runtime.clock.clone(),
        observer,
        env: Environment::Process,
        account: account.name.as_str().into(),
        region: account
            .regions()
            .first()
            .copied()
            .unwrap_or_default()
            .into(),
    };
    let spec = account.credential_spec();
    match providers::credentials::credential_provider(account.cloud, &spec, &deps) {
        Ok(provider) => {
            tracing::info!(account = %account.name, source = %provider.describe(), "credentials");
            provider
        }
        Err(e) => {
            tracing::error!(account = %account.name, error = %e, "the credentials of this account cannot be used; its polls fail");
            providers::credentials::unusable(SourceKind::Static, format!("credentials.{e}"), &deps)
        }
    }
}

/// Turns the configured accounts, instances and groups into a polling plan: one read-only
/// provider per (account, region), sharing the account's budget and concurrency.
pub fn build_plan(config: &Config, runtime: &Runtime, metrics: &Metrics) -> PollPlan {
    let mut plan = PollPlan::default();
    let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    metrics.exporter.retain_credentials(&names);
    for account in &config.accounts {
        let name: Arc<str> = account.name.as_str().into();
        let deps = provider_deps(config, account, runtime, metrics.exporter.clone());
        let budget = deps.budget.clone();
        let credentials = account_credentials(account, runtime, metrics.exporter.clone());
        metrics
            .exporter
            .init_credentials(&account.name, &credentials.kinds());
        let mut regions: HashMap<Arc<str>, Arc<dyn Provider>> = HashMap::new();
        for region in account.regions() {
            let spec = account_spec_with(account, region, credentials.clone());
            regions.insert(Arc::from(region), providers::build(spec, &deps));
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
        let profile = providers::profile(account.cloud);
        metrics
            .exporter
            .init_actions(account.cloud, &[profile.poll_action]);
        metrics.exporter.init_account(account.cloud, &account.name);
        plan.accounts.insert(
            name.clone(),
            AccountRuntime {
                name,
                cloud: account.cloud,
                providers: regions,
                budget,
                discovery: rules,
                probe: account.time_lag.probe,
                read_retention: account.read_retention,
            },
        );
    }
    plan
}

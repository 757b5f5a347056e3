//! The `demo` and `simulator` commands: a generated world served by the built-in
//! simulator, and a configuration pointing at it.
//!
//! The demo polls the simulator over real HTTP with real signing; only the endpoints and
//! the (simulator-issued) keys differ from a production configuration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use kcle_clock::{Clock, unix_millis};
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{Naming, World, WorldSpec};
use kcle_sim::{SimKey, SimSettings, Simulator};

use crate::cli::{
    Cli, DemoArgs, DemoCredentials, EXIT_CONFIG, EXIT_FAILURE, Names, Scenario, SimulatorArgs,
};
use crate::config::{
    Account, Config, CredentialsConfig, Instance, OidcConfig, SignatureVersion, fmt_duration,
};
use crate::credentials::CredentialSources;
use crate::exporter::{Exporter, Runtime};
use crate::model::Cloud;

/// Default address of the demo's exporter: loopback only, the exporter's port.
pub const DEMO_LISTEN: &str = "127.0.0.1:9758";

/// The answer latency of `simulator --scenario bench-100k`: a management API's round trip
/// within a region.
pub const BENCH_LATENCY: Duration = Duration::from_millis(30);

/// A running simulator and a configuration for it.
struct SimEnvironment {
    pub sim: Simulator,
    pub config: Config,
    /// Credential sources by account name (the simulator's keys, inline).
    pub credentials: HashMap<String, CredentialSources>,
}

impl SimEnvironment {
    /// The credential sources of an account of this environment.
    fn resolver(&self) -> impl Fn(&Account) -> CredentialSources + Send + Sync + 'static {
        let map = self.credentials.clone();
        // An account given a `credentials` block uses it (OIDC and the other sources
        // against the simulator); the others get the simulator's keys.
        move |a: &Account| match (&a.credentials, map.get(&a.name)) {
            (None, Some(sources)) => sources.clone(),
            _ => a.credential_sources(),
        }
    }
}

/// Name of the generated account of each cloud.
pub fn account_name(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Alibaba => "sim-alibaba",
        Cloud::Tencent => "sim-tencent",
    }
}

/// A configuration with one account per cloud covering every instance and group of
/// `world`, served by `sim`.
pub fn config_for(world: &World, sim: &Simulator, poll_interval: Duration) -> Config {
    let mut accounts = Vec::new();
    for cloud in [Cloud::Alibaba, Cloud::Tencent] {
        let instances: Vec<Instance> = world
            .instances
            .values()
            .filter(|i| i.cloud == cloud)
            .map(|i| Instance {
                id: i.id.clone(),
                region: None,
                groups: i.groups.keys().cloned().collect(),
                discover_groups: None,
            })
            .collect();
        let Some(region) = world
            .instances
            .values()
            .find(|i| i.cloud == cloud)
            .map(|i| i.region.clone())
        else {
            continue;
        };
        accounts.push(Account {
            name: account_name(cloud).to_string(),
            cloud,
            region: Some(region),
            regions: Vec::new(),
            endpoint: Some(sim.endpoint(cloud)),
            credentials: None,
            signature_version: None,
            max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
            api_rate_limits: Default::default(),
            discover_instances: None,
            instances,
            time_lag: Default::default(),
            read_retention: true,
        });
    }
    Config {
        listen: crate::config::DEFAULT_LISTEN.to_string(),
        poll_interval,
        request_timeout: None,
        stale_after: None,
        discovery_interval: crate::config::DEFAULT_DISCOVERY_INTERVAL,
        state_dir: None,
        verdict: Default::default(),
        metric_names: Default::default(),
        cardinality: Default::default(),
        accounts,
    }
}

/// Starts a simulator with a generated world and returns it with a matching config.
async fn start_environment(
    spec: &WorldSpec,
    settings: SimSettings,
    clock: Clock,
    poll_interval: Duration,
    addrs: Option<(SocketAddr, SocketAddr)>,
) -> std::io::Result<SimEnvironment> {
    let world = World::generate(spec, unix_millis(clock.now()));
    let keys = (
        settings.alibaba_keys.first().cloned(),
        settings.tencent_keys.first().cloned(),
    );
    let sim = match addrs {
        Some((a, t)) => Simulator::start_on(settings, world.clone(), clock, a, t).await?,
        None => Simulator::start(settings, world.clone(), clock).await?,
    };
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
    Ok(SimEnvironment {
        sim,
        config,
        credentials,
    })
}

fn random_faults(probability: f64) -> Vec<FaultRule> {
    if probability <= 0.0 {
        return Vec::new();
    }
    // Split the share over the failure kinds the daemon has to survive.
    let each = probability / 5.0;
    vec![
        FaultRule::random(Fault::ServerError, each),
        FaultRule::random(Fault::Throttle, each),
        FaultRule::random(Fault::Truncated, each),
        FaultRule::random(Fault::HttpStatus(502), each),
        FaultRule::random(Fault::Delay(Duration::from_millis(300)), each),
    ]
}

/// `demo`: simulator plus exporter, until SIGTERM or Ctrl-C.
pub async fn run_demo(cli: &Cli, args: &DemoArgs) -> ExitCode {
    let listen = cli.listen_address.as_deref().unwrap_or(DEMO_LISTEN);
    let Ok(addr) = listen.parse::<SocketAddr>() else {
        eprintln!(
            "error: --web.listen-address: {listen:?} is not a socket address; expected host:port"
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let web = match super::load_web_config(cli) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let clock = Clock::system();
    let spec = WorldSpec {
        instances_per_cloud: 2,
        groups_per_instance: 4,
        topics_per_group: 2,
        partitions_per_topic: 4,
        ..WorldSpec::default()
    };
    let env = match start_environment(
        &spec,
        SimSettings::default(),
        clock.clone(),
        args.poll_interval,
        None,
    )
    .await
    {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: cannot start the simulator: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    for rule in random_faults(args.faults) {
        env.sim.state().inject(rule);
    }
    let mut config = env.config.clone();
    if args.credentials == DemoCredentials::Oidc {
        let dir = std::env::temp_dir().join(format!("kcle-demo-{}", std::process::id()));
        match oidc_credentials(&dir, &env.sim, &mut config) {
            Ok(()) => println!(
                "Signing in with OIDC tokens in {} (the simulated STS exchanges them for 15-minute keys).",
                dir.display()
            ),
            Err(e) => {
                eprintln!("error: writing OIDC tokens into {}: {e}", dir.display());
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let runtime = Runtime {
        clock,
        credentials: Arc::new(env.resolver()),
        http: crate::providers::http::client(),
    };
    let exporter = Exporter::new(config, runtime, None);
    println!(
        "kafka-cloud-lag-exporter demo: {} consumer groups on simulated Alibaba ({}) and Tencent ({}), polled every {}, {:.0}% of API calls failing on purpose.",
        env.config.group_count(),
        env.sim.alibaba_endpoint(),
        env.sim.tencent_endpoint(),
        fmt_duration(args.poll_interval),
        args.faults * 100.0
    );
    let scheme = match web.as_ref().map(|w| w.current()) {
        Some(c) if c.tls.is_some() => "https",
        _ => "http",
    };
    println!(
        "Open {scheme}://{local}{} (Ctrl-C to stop).",
        cli.telemetry_path
    );
    let shutdown = crate::signals::on_termination();
    exporter
        .run(listener, &cli.telemetry_path, web, shutdown)
        .await;
    ExitCode::SUCCESS
}

/// `simulator`: only the simulated clouds, until SIGTERM or Ctrl-C.
pub async fn run_simulator(args: &SimulatorArgs) -> ExitCode {
    let parse = |flag: &str, v: &str| -> Result<SocketAddr, ExitCode> {
        v.parse().map_err(|_| {
            eprintln!("error: {flag}: {v:?} is not a socket address; expected host:port");
            ExitCode::from(EXIT_CONFIG)
        })
    };
    let (ali, tc) = match (
        parse("--alibaba.listen-address", &args.alibaba_listen),
        parse("--tencent.listen-address", &args.tencent_listen),
    ) {
        (Ok(a), Ok(t)) => (a, t),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let clock = Clock::system();
    let (spec, scenario_latency) = match args.scenario {
        Some(Scenario::Bench100k) => (
            WorldSpec {
                seed: args.seed,
                ..WorldSpec::bench_100k()
            },
            BENCH_LATENCY,
        ),
        None => (
            WorldSpec {
                instances_per_cloud: args.instances,
                groups_per_instance: args.groups,
                topics_per_group: args.topics,
                partitions_per_topic: args.partitions,
                seed: args.seed,
                names: match args.names {
                    Names::Short => Naming::Short,
                    Names::Long => Naming::Long,
                },
                ..WorldSpec::default()
            },
            Duration::ZERO,
        ),
    };
    let settings = SimSettings {
        alibaba_rate_limit: args.alibaba_rate_limit,
        alibaba_legacy_answers: args.alibaba_legacy_answers,
        tencent_rate_limit: args.tencent_rate_limit,
        record_raw: args.dump_requests.is_some(),
        log_capacity: if args.dump_requests.is_some() {
            1_000_000
        } else {
            10_000
        },
        seed: args.seed,
        latency: args.latency.unwrap_or(scenario_latency),
        ..SimSettings::default()
    };
    let keys = (settings.alibaba_keys.clone(), settings.tencent_keys.clone());
    let env = match start_environment(&spec, settings, clock, args.poll_interval, Some((ali, tc)))
        .await
    {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: cannot start the simulator: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    for rule in random_faults(args.faults) {
        env.sim.state().inject(rule);
    }
    if let Some(dir) = &args.write_config
        && let Err(e) = write_config(dir, &env, &keys.0, &keys.1)
    {
        {
            eprintln!(
                "error: writing the configuration into {}: {e}",
                dir.display()
            );
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    println!("alibaba_endpoint={}", env.sim.alibaba_endpoint());
    println!("tencent_endpoint={}", env.sim.tencent_endpoint());
    for cloud in [Cloud::Alibaba, Cloud::Tencent] {
        println!("{cloud}_sts_endpoint={}", env.sim.sts_endpoint(cloud));
        println!(
            "{cloud}_metadata_endpoint={}",
            env.sim.metadata_endpoint(cloud)
        );
    }
    println!("alibaba_credentials_uri={}", env.sim.credentials_uri());
    {
        use kcle_sim::identity as id;
        println!("alibaba_role_arn={}", id::ALIBABA_ROLE);
        println!("alibaba_oidc_provider={}", id::ALIBABA_OIDC_PROVIDER);
        println!(
            "alibaba_cross_account_role={}",
            id::ALIBABA_CROSS_ACCOUNT_ROLE
        );
        println!("tencent_role_arn={}", id::TENCENT_ROLE);
        println!("tencent_oidc_provider={}", id::TENCENT_OIDC_PROVIDER);
        println!(
            "tencent_cross_account_role={}",
            id::TENCENT_CROSS_ACCOUNT_ROLE
        );
        println!("external_id={}", id::CROSS_ACCOUNT_EXTERNAL_ID);
    }
    for k in &keys.0 {
        println!("alibaba_key_id={}", k.id);
    }
    for k in &keys.1 {
        println!("tencent_secret_id={}", k.id);
    }
    println!(
        "groups={} partitions={}",
        env.config.group_count(),
        env.config.group_count() * spec.topics_per_group * spec.partitions_per_topic
    );
    println!("ready");
    let mut shutdown = crate::signals::on_termination();
    let _ = shutdown.wait_for(|s| *s).await;
    // What was answered, by cloud, action and outcome (for soak runs and benchmarks).
    for ((cloud, action, outcome), n) in env.sim.state().counts() {
        println!("answered cloud={cloud} action={action} outcome={outcome} count={n}");
    }
    if let Some(path) = &args.dump_requests
        && let Err(e) = dump_requests(path, &env, &keys.0, &keys.1)
    {
        {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    ExitCode::SUCCESS
}

/// Writes `config.yaml` and one file per credential value into `dir`.
fn write_config(
    dir: &Path,
    env: &SimEnvironment,
    ali: &[SimKey],
    tc: &[SimKey],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for account in &env.config.accounts {
        let key = match account.cloud {
            Cloud::Alibaba => ali.first(),
            Cloud::Tencent => tc.first(),
        };
        let Some(key) = key else { continue };
        let (id_file, secret_file) = key_files(dir, account.cloud);
        std::fs::write(&id_file, &key.id)?;
        std::fs::write(&secret_file, &key.secret)?;
    }
    // The default signature (V3) and the older V2, so that both Alibaba signers can be
    // exercised against the same simulator.
    std::fs::write(dir.join("config.yaml"), config_yaml(dir, env, None))?;
    std::fs::write(
        dir.join("config-v2.yaml"),
        config_yaml(dir, env, Some(SignatureVersion::V2)),
    )?;
    // Keyless: OIDC token files and a configuration that exchanges them at the simulated
    // STS (no key file at all).
    let mut config = env.config.clone();
    oidc_credentials(dir, &env.sim, &mut config)?;
    let mut yaml = format!(
        "# Generated by `kafka-cloud-lag-exporter simulator`: points at the simulator and signs in\n\
         # with OIDC tokens (as ACK RRSA and TKE pod identity do), no key.\n\
         poll_interval: {}\naccounts:\n",
        fmt_duration(config.poll_interval),
    );
    for account in &config.accounts {
        let Some(CredentialsConfig {
            oidc: Some(oidc),
            sts_endpoint: Some(sts),
            ..
        }) = &account.credentials
        else {
            continue;
        };
        yaml.push_str(&format!(
            "  - name: {}\n    cloud: {}\n    region: {}\n    endpoint: {}\n    credentials:\n      oidc:\n        role_arn: {}\n        provider: {}\n        token_file: {}\n        duration: 15m\n      sts_endpoint: {sts}\n{}    instances:\n",
            account.name,
            account.cloud,
            account.regions().join(","),
            account.endpoint.as_deref().unwrap_or_default(),
            oidc.role_arn.as_deref().unwrap_or_default(),
            oidc.provider.as_deref().unwrap_or_default(),
            oidc.token_file.as_deref().unwrap_or(Path::new("")).display(),
            rate_limits(account.cloud, env.sim.state()),
        ));
        for instance in &account.instances {
            yaml.push_str(&format!("      - id: {}\n        groups:\n", instance.id));
            for g in &instance.groups {
                yaml.push_str(&format!("          - {g}\n"));
            }
        }
    }
    std::fs::write(dir.join("config-oidc.yaml"), yaml)
}

/// How long the demo's OIDC tokens last: long enough for any demo (a cluster's kubelet
/// would rotate them hourly).
const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Writes an OIDC token of the simulated issuer per cloud into `dir` and points every
/// account of `config` at the simulated STS with it.
fn oidc_credentials(dir: &Path, sim: &Simulator, config: &mut Config) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for account in &mut config.accounts {
        let cloud = account.cloud;
        let token_file = dir.join(format!("oidc-token-{cloud}"));
        std::fs::write(
            &token_file,
            sim.state().mint_oidc_token(cloud, DEMO_TOKEN_LIFETIME),
        )?;
        let (role, provider) = match cloud {
            Cloud::Alibaba => (
                kcle_sim::identity::ALIBABA_ROLE,
                kcle_sim::identity::ALIBABA_OIDC_PROVIDER,
            ),
            Cloud::Tencent => (
                kcle_sim::identity::TENCENT_ROLE,
                kcle_sim::identity::TENCENT_OIDC_PROVIDER,
            ),
        };
        account.credentials = Some(CredentialsConfig {
            oidc: Some(OidcConfig {
                role_arn: Some(role.into()),
                provider: Some(provider.into()),
                token_file: Some(token_file),
                duration: Some(Duration::from_secs(900)),
                ..OidcConfig::default()
            }),
            sts_endpoint: Some(sim.sts_endpoint(cloud)),
            ..CredentialsConfig::default()
        });
    }
    Ok(())
}

/// Where the key files of a cloud's account go.
fn key_files(dir: &Path, cloud: Cloud) -> (std::path::PathBuf, std::path::PathBuf) {
    let prefix = cloud.as_str();
    (
        dir.join(format!("{prefix}-key-id")),
        dir.join(format!("{prefix}-key-secret")),
    )
}

/// The configuration file for the simulator's accounts, reading the keys from their files;
/// `alibaba_signature` is written for the Alibaba account when given.
fn config_yaml(
    dir: &Path,
    env: &SimEnvironment,
    alibaba_signature: Option<SignatureVersion>,
) -> String {
    let mut yaml = format!(
        "# Generated by `kafka-cloud-lag-exporter simulator`: points at the simulator.\n\
         poll_interval: {}\naccounts:\n",
        fmt_duration(env.config.poll_interval),
    );
    for account in &env.config.accounts {
        let (id_file, secret_file) = key_files(dir, account.cloud);
        let signature = match (account.cloud, alibaba_signature) {
            (Cloud::Alibaba, Some(v)) => format!("    signature_version: {v}\n"),
            _ => String::new(),
        };
        yaml.push_str(&format!(
            "  - name: {}\n    cloud: {}\n    region: {}\n    endpoint: {}\n{signature}    credentials:\n      id_file: {}\n      secret_file: {}\n{}    instances:\n",
            account.name,
            account.cloud,
            account.regions().join(","),
            account.endpoint.as_deref().unwrap_or_default(),
            id_file.display(),
            secret_file.display(),
            rate_limits(account.cloud, env.sim.state()),
        ));
        for instance in &account.instances {
            yaml.push_str(&format!("      - id: {}\n        groups:\n", instance.id));
            for g in &instance.groups {
                yaml.push_str(&format!("          - {g}\n"));
            }
        }
    }
    yaml
}

/// The `api_rate_limits` block matching the simulator's own limits, so that a
/// generated configuration uses the budget the simulated cloud really allows.
fn rate_limits(cloud: Cloud, sim: &kcle_sim::SimState) -> String {
    let mut out = String::from("    api_rate_limits:\n");
    for action in crate::providers::profile(cloud).actions {
        let rate = sim.rate_limit(cloud, action.name);
        out.push_str(&format!("      {}: {rate}\n", action.name));
    }
    out
}

/// Writes the request log with raw requests and the keys, for `tools/sdk_crosscheck`.
fn dump_requests(
    path: &Path,
    env: &SimEnvironment,
    ali: &[SimKey],
    tc: &[SimKey],
) -> std::io::Result<()> {
    let mut keys = serde_json::Map::new();
    for k in ali.iter().chain(tc) {
        keys.insert(
            k.id.clone(),
            serde_json::json!({"secret": k.secret, "token": k.token}),
        );
    }
    let dump = serde_json::json!({
        "keys": keys,
        "requests": env.sim.state().requests(),
    });
    std::fs::write(path, serde_json::to_vec_pretty(&dump)?)
}

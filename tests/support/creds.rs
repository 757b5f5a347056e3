//! Helpers of the credential tests (`tests/credentials.rs`, `tests/credential_secrets.rs`):
//! simulator environments whose accounts use a given credentials block, rounds of polls,
//! and the simulator's and exporter's counts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::config::{CredentialsConfig, OidcConfig};
use kafka_cloud_lag_exporter::credentials::{Environment, NoCredentialObserver};
use kafka_cloud_lag_exporter::exporter::Exporter;
use kafka_cloud_lag_exporter::model::Cloud;
use kafka_cloud_lag_exporter::providers::ErrorKind;
use kafka_cloud_lag_exporter::providers::credentials::CredentialDeps;
use kcle_clock::Clock;
use kcle_sim::identity::{
    ALIBABA_CROSS_ACCOUNT_ROLE, ALIBABA_OIDC_PROVIDER, ALIBABA_ROLE, TENCENT_CROSS_ACCOUNT_ROLE,
    TENCENT_OIDC_PROVIDER, TENCENT_ROLE,
};
use kcle_sim::world::WorldSpec;
use kcle_sim::{SimSettings, Simulator};

use super::{Harness, T0_SECS, advance, get, parse};

pub const CLOUDS: [Cloud; 2] = [Cloud::Alibaba, Cloud::Tencent];

pub fn spec() -> WorldSpec {
    WorldSpec {
        instances_per_cloud: 1,
        groups_per_instance: 3,
        topics_per_group: 1,
        partitions_per_topic: 2,
        ..WorldSpec::default()
    }
}

pub fn oidc_action(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Alibaba => "AssumeRoleWithOIDC",
        Cloud::Tencent => "AssumeRoleWithWebIdentity",
    }
}

pub fn role(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Alibaba => ALIBABA_ROLE,
        Cloud::Tencent => TENCENT_ROLE,
    }
}

pub fn provider(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Alibaba => ALIBABA_OIDC_PROVIDER,
        Cloud::Tencent => TENCENT_OIDC_PROVIDER,
    }
}

pub fn cross_account_role(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Alibaba => ALIBABA_CROSS_ACCOUNT_ROLE,
        Cloud::Tencent => TENCENT_CROSS_ACCOUNT_ROLE,
    }
}

/// Writes a token of the simulated OIDC issuer for `cloud`, as kubelet projects one.
pub fn write_token(sim: &Simulator, cloud: Cloud, path: &Path, lifetime: Duration) {
    std::fs::write(path, sim.state().mint_oidc_token(cloud, lifetime)).unwrap();
}

pub fn token_path(dir: &Path, cloud: Cloud) -> std::path::PathBuf {
    dir.join(format!("token-{cloud}"))
}

/// An OIDC credentials block against the simulated STS, with a 15-minute session.
pub fn oidc_config(sim: &Simulator, dir: &Path, cloud: Cloud) -> CredentialsConfig {
    let token = token_path(dir, cloud);
    write_token(sim, cloud, &token, Duration::from_secs(12 * 3600));
    CredentialsConfig {
        oidc: Some(OidcConfig {
            role_arn: Some(role(cloud).into()),
            provider: Some(provider(cloud).into()),
            token_file: Some(token),
            duration: Some(Duration::from_secs(900)),
            ..OidcConfig::default()
        }),
        sts_endpoint: Some(sim.sts_endpoint(cloud)),
        ..CredentialsConfig::default()
    }
}

/// A harness whose accounts' credentials are set by `credentials` (per cloud).
pub async fn harness(
    settings: SimSettings,
    dir: &Path,
    credentials: impl Fn(&Simulator, &Path, Cloud) -> Option<CredentialsConfig>,
) -> Harness {
    let clock = Clock::virtual_at_unix(T0_SECS);
    let mut env =
        super::start_environment(&spec(), settings, clock.clone(), Duration::from_secs(30)).await;
    for a in &mut env.config.accounts {
        a.credentials = credentials(&env.sim, dir, a.cloud);
    }
    let path = Path::new("test.yaml");
    env.config.validate(path).expect("valid config");
    let exporter = Exporter::new(env.config.clone(), env.runtime(&clock), None);
    Harness {
        clock,
        env,
        exporter,
    }
}

/// Runs `rounds` rounds 30 s apart; returns every failure's kind and message.
pub async fn run_rounds(h: &Harness, rounds: usize) -> Vec<(ErrorKind, String)> {
    let mut failures = Vec::new();
    for _ in 0..rounds {
        let report = h.round().await;
        failures.extend(
            report
                .failed
                .into_iter()
                .map(|(t, e)| (e.kind, format!("{t}: {e}"))),
        );
        advance(Duration::from_secs(30)).await;
    }
    failures
}

/// Requests of any action of `cloud` answered with `outcome`.
pub fn answered(h: &Harness, cloud: Cloud, outcome: &str) -> u64 {
    h.env
        .sim
        .state()
        .counts()
        .iter()
        .filter(|((c, _, o), _)| *c == cloud && o == outcome)
        .map(|(_, n)| n)
        .sum()
}

pub fn sts_ok(h: &Harness, cloud: Cloud, action: &str) -> u64 {
    h.env.sim.state().count(cloud, action, Some("ok"))
}

/// The expiry gauge of an account, as exported.
pub fn expiry(h: &Harness, account: &str) -> Option<f64> {
    get(
        &parse(&h.text()),
        "kafka_cloud_lag_exporter_credentials_expiry_timestamp_seconds",
        &[("account", account)],
    )
}

pub fn refresh_errors(h: &Harness, account: &str, source: &str) -> Option<f64> {
    get(
        &parse(&h.text()),
        "kafka_cloud_lag_exporter_credentials_refresh_errors_total",
        &[("account", account), ("source", source)],
    )
}

pub fn account(cloud: Cloud) -> &'static str {
    kafka_cloud_lag_exporter::commands::demo::account_name(cloud)
}

pub fn deps(clock: &Clock, env: Environment) -> CredentialDeps {
    CredentialDeps {
        http: kafka_cloud_lag_exporter::providers::http::client(),
        clock: clock.clone(),
        observer: Arc::new(NoCredentialObserver),
        env,
        account: "chain".into(),
        region: "cn-hangzhou".into(),
    }
}

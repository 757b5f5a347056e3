//! OIDC tokens, temporary secrets and session tokens never appear in logs (at debug level),
//! errors, metrics or `Debug` output, with every credential source. A binary of its own:
//! the log capture is per thread, and tracing's callsite cache is shared by the threads
//! of one process, so another test running alongside could hide events from it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::config::{
    AssumeRoleConfig, CredentialsConfig, InstanceRoleConfig, ProfileConfig,
};
use kafka_cloud_lag_exporter::credentials::{CredentialSpec, Environment};
use kafka_cloud_lag_exporter::model::Cloud;
use kafka_cloud_lag_exporter::providers::credentials::credential_provider;
use kcle_sim::SimSettings;
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::identity::CROSS_ACCOUNT_EXTERNAL_ID;
use support::creds::*;

/// Captures every event at debug level on this thread (the paused test runtime runs every
/// task on it), in the exporter's text format.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// OIDC tokens, temporary secrets and session tokens, and the static keys they were
/// obtained with, never appear in a log line (at debug level), a poll error, the
/// exposition or a `Debug` output, whatever the source and whether it succeeds or fails.
/// A failing refresh is logged once, not at every attempt.
#[tokio::test(start_paused = true)]
async fn secrets_stay_out_of_logs_errors_metrics_and_debug() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut texts = Vec::new();
    let mut secrets: Vec<String> = Vec::new();
    let dir = tempfile::tempdir().unwrap();

    // OIDC, with a refresh that fails (throttled, then an invalid token), then expiry.
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        Some(oidc_config(sim, dir, cloud))
    })
    .await;
    for cloud in CLOUDS {
        secrets.push(std::fs::read_to_string(token_path(dir.path(), cloud)).unwrap());
    }
    let mut errors = run_rounds(&h, 20).await;
    for cloud in CLOUDS {
        h.env.sim.state().inject(
            FaultRule::random(Fault::Throttle, 1.0)
                .cloud(cloud)
                .action(oidc_action(cloud)),
        );
    }
    errors.extend(run_rounds(&h, 20).await);
    h.env.sim.state().clear_faults();
    for cloud in CLOUDS {
        std::fs::write(token_path(dir.path(), cloud), "garbage.token.value").unwrap();
    }
    errors.extend(run_rounds(&h, 20).await);
    assert!(!errors.is_empty(), "the sessions expired");
    let log = captured.text();
    for account in ["sim-alibaba", "sim-tencent"] {
        let warned = log
            .lines()
            .filter(|l| l.contains("credentials refresh failed;") && l.contains(account))
            .count();
        assert_eq!(warned, 1, "{account}: one warning per failing run\n{log}");
        let expired = log
            .lines()
            .filter(|l| l.contains("credentials expired before") && l.contains(account))
            .count();
        assert_eq!(expired, 1, "{account}\n{log}");
    }
    texts.push(h.text());
    texts.push(format!("{:?}", h.exporter.config()));
    texts.extend(errors.into_iter().map(|(_, m)| m));
    let sims = vec![h.env.sim];

    // Instance roles, assumed roles (right and wrong external id), profiles.
    let mut settings = SimSettings::default();
    settings.identity.instance_credentials_lifetime = Duration::from_secs(900);
    let h = harness(settings, dir.path(), |sim, _, cloud| {
        Some(CredentialsConfig {
            instance_role: Some(InstanceRoleConfig::default()),
            metadata_endpoint: Some(sim.metadata_endpoint(cloud)),
            assume_role: Some(AssumeRoleConfig {
                role_arn: cross_account_role(cloud).into(),
                session_name: None,
                duration: Some(Duration::from_secs(900)),
                external_id: Some(CROSS_ACCOUNT_EXTERNAL_ID.into()),
            }),
            sts_endpoint: Some(sim.sts_endpoint(cloud)),
            ..CredentialsConfig::default()
        })
    })
    .await;
    texts.extend(run_rounds(&h, 40).await.into_iter().map(|(_, m)| m));
    texts.push(h.text());
    let mut sims = sims;
    sims.push(h.env.sim);
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        let key = match cloud {
            Cloud::Alibaba => sim.state().settings.alibaba_keys[0].clone(),
            Cloud::Tencent => sim.state().settings.tencent_keys[0].clone(),
        };
        let file = dir.join(format!("profile-{cloud}.json"));
        let config = serde_json::json!({"current": "p", "profiles": [
            {"name": "p", "mode": "RamRoleArn", "access_key_id": key.id,
             "access_key_secret": key.secret, "ram_role_arn": "acs:ram::1:role/missing"}
        ]});
        std::fs::write(&file, config.to_string()).unwrap();
        let ini = dir.join(format!("profile-{cloud}"));
        std::fs::write(
            &ini,
            format!(
                "[default]\nsecret_id = {}\nsecret_key = {}\n",
                key.id, key.secret
            ),
        )
        .unwrap();
        Some(CredentialsConfig {
            profile: Some(ProfileConfig {
                name: None,
                file: Some(if cloud == Cloud::Alibaba { file } else { ini }),
            }),
            sts_endpoint: Some(sim.sts_endpoint(cloud)),
            ..CredentialsConfig::default()
        })
    })
    .await;
    texts.extend(run_rounds(&h, 2).await.into_iter().map(|(_, m)| m));
    sims.push(h.env.sim);

    // The default chain with the credentials URI, through a provider's Debug.
    let sim = &sims[0];
    let env = Environment::fixed([
        ("HOME", dir.path().to_str().unwrap().to_string()),
        ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true".to_string()),
        ("ALIBABA_CLOUD_CREDENTIALS_URI", sim.credentials_uri()),
    ]);
    let p = credential_provider(
        Cloud::Alibaba,
        &CredentialSpec::default_chain(),
        &deps(&h.clock, env),
    )
    .unwrap();
    p.get().await.unwrap();
    texts.push(format!("{p:?} {}", p.describe()));

    for sim in &sims {
        for key in sim.state().issued_keys() {
            secrets.push(key.key.secret.clone());
            secrets.extend(key.key.token.clone());
        }
        secrets.push(sim.state().settings.alibaba_keys[0].secret.clone());
        secrets.push(sim.state().settings.tencent_keys[0].secret.clone());
    }
    assert!(secrets.len() > 20, "{} secrets", secrets.len());
    texts.push(captured.text());
    let all = texts.join("\n");
    for secret in &secrets {
        let secret = secret.trim();
        assert!(
            !all.contains(secret),
            "a secret leaked: …{}",
            &secret[secret.len().saturating_sub(6)..]
        );
    }
    // The logs did describe what happened.
    assert!(
        all.contains("credentials refreshed"),
        "debug events were captured"
    );
}

//! Credentials without long-lived keys, end to end against the simulator on virtual time:
//! every source on both clouds (OIDC, instance role, assumed role, profile files, the
//! credentials URI, the default chain), refreshes ahead of expiry without a failed poll,
//! refresh failures (kept credentials, backoff, counting, expiry, recovery), token file
//! rotation, single-flight refreshes, temporary keys the simulated APIs refuse once
//! expired, a metadata service that is not there, and bad configurations. Secrets in logs
//! are checked in `credential_secrets.rs`, a binary of its own so that its log capture
//! sees no other test.

mod support;

use std::path::Path;
use std::time::Duration;

use kafka_cloud_lag_exporter::config::{
    AssumeRoleConfig, Config, CredentialsConfig, InstanceRoleConfig, ProfileConfig,
};
use kafka_cloud_lag_exporter::credentials::{
    CredentialProvider, CredentialSources, CredentialSpec, Environment,
};
use kafka_cloud_lag_exporter::exporter::Exporter;
use kafka_cloud_lag_exporter::model::Cloud;
use kafka_cloud_lag_exporter::providers::ErrorKind;
use kafka_cloud_lag_exporter::providers::credentials::credential_provider;
use kcle_clock::Clock;
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::identity::{
    ALIBABA_OIDC_PROVIDER, ALIBABA_ROLE, CROSS_ACCOUNT_EXTERNAL_ID, INSTANCE_ROLE, ImdsMode,
    TENCENT_OIDC_PROVIDER, TENCENT_ROLE,
};
use kcle_sim::{SimSettings, Simulator};
use support::creds::*;
use support::{Harness, T0_SECS, advance};

/// OIDC on both clouds: an hour of polls with 15-minute sessions, refreshed ahead of
/// expiry in the background, never a failed poll; the exposition shows the expiry.
#[tokio::test(start_paused = true)]
async fn oidc_sessions_are_refreshed_before_they_expire_without_a_failed_poll() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        Some(oidc_config(sim, dir, cloud))
    })
    .await;
    let failures = run_rounds(&h, 120).await;
    assert_eq!(failures, Vec::new());
    for cloud in CLOUDS {
        let fetched = sts_ok(&h, cloud, oidc_action(cloud));
        // 15-minute sessions over an hour, refreshed before they expire (Alibaba 3 min
        // before for sessions this short, Tencent a tenth of the duration before): 5 or 6.
        assert!((5..=7).contains(&fetched), "{cloud}: {fetched} sessions");
        let exp = expiry(&h, account(cloud)).expect("expiry exported");
        let now = kcle_clock::unix_seconds_f64(h.clock.now());
        assert!(exp > now && exp <= now + 900.0, "{cloud}: {exp} vs {now}");
        assert_eq!(refresh_errors(&h, account(cloud), "oidc"), Some(0.0));
        // Every poll was answered, signed with the temporary keys.
        assert_eq!(
            answered(&h, cloud, "InvalidSecurityToken.Expired")
                + answered(&h, cloud, "AuthFailure.TokenFailure"),
            0
        );
    }
}

/// The instance role on both clouds (ECS with an IMDSv2 token, CVM), rotated by the
/// metadata service ahead of expiry.
#[tokio::test(start_paused = true)]
async fn instance_roles_are_read_from_the_metadata_services_and_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = SimSettings::default();
    settings.identity.instance_credentials_lifetime = Duration::from_secs(20 * 60);
    settings.identity.imds = ImdsMode::Required;
    let h = harness(settings, dir.path(), |sim, _, cloud| {
        Some(CredentialsConfig {
            instance_role: Some(InstanceRoleConfig::default()),
            metadata_endpoint: Some(sim.metadata_endpoint(cloud)),
            ..CredentialsConfig::default()
        })
    })
    .await;
    assert_eq!(run_rounds(&h, 120).await, Vec::new());
    let log = h.env.sim.state().requests();
    for cloud in CLOUDS {
        let reads: Vec<_> = log
            .iter()
            .filter(|r| r.cloud == cloud && r.action == kcle_sim::metadata::ACTION)
            .collect();
        assert!(
            reads.iter().all(|r| r.outcome == "ok"),
            "{cloud}: {reads:?}"
        );
        let creds = reads
            .iter()
            .filter(|r| r.params["path"].ends_with(INSTANCE_ROLE))
            .count();
        // 20-minute credentials rotated at half-life, refreshed before expiry: several.
        assert!((3..=12).contains(&creds), "{cloud}: {creds} reads");
        assert!(expiry(&h, account(cloud)).is_some());
    }
    // Alibaba asked for an IMDSv2 token before each read (enforced here).
    assert!(
        log.iter().any(
            |r| r.cloud == Cloud::Alibaba && r.params.get("method").is_some_and(|m| m == "PUT")
        )
    );
}

/// An older ECS metadata service without the token endpoint: the documented fallback to
/// IMDSv1 reads.
#[tokio::test(start_paused = true)]
async fn ecs_without_imdsv2_falls_back_to_imdsv1() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = SimSettings::default();
    settings.identity.imds = ImdsMode::Unsupported;
    let h = harness(settings, dir.path(), |sim, _, cloud| {
        (cloud == Cloud::Alibaba).then(|| CredentialsConfig {
            instance_role: Some(InstanceRoleConfig {
                name: Some(INSTANCE_ROLE.into()),
            }),
            metadata_endpoint: Some(sim.metadata_endpoint(cloud)),
            ..CredentialsConfig::default()
        })
    })
    .await;
    assert_eq!(run_rounds(&h, 2).await, Vec::new());
    let outcomes: Vec<String> = h
        .env
        .sim
        .state()
        .requests()
        .iter()
        .filter(|r| r.action == kcle_sim::metadata::ACTION)
        .map(|r| format!("{} {} {}", r.params["method"], r.params["path"], r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            "PUT /latest/api/token http_404".to_string(),
            format!("GET /latest/meta-data/ram/security-credentials/{INSTANCE_ROLE} ok"),
        ]
    );
}

/// A host without a metadata service (a laptop): the first poll fails within a second or
/// two with a message saying so, as `auth`, and the metadata service is not hammered.
#[tokio::test(start_paused = true)]
async fn a_missing_metadata_service_fails_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, _, cloud| {
        Some(CredentialsConfig {
            instance_role: Some(InstanceRoleConfig::default()),
            metadata_endpoint: Some(sim.metadata_endpoint(cloud)),
            ..CredentialsConfig::default()
        })
    })
    .await;
    h.env
        .sim
        .state()
        .inject(FaultRule::random(Fault::Hang, 1.0).action(kcle_sim::metadata::ACTION));
    let start = h.clock.instant();
    let report = h.round().await;
    let took = h.clock.instant() - start;
    assert!(took <= Duration::from_secs(2), "{took:?}");
    assert_eq!(report.succeeded, 0);
    for (target, e) in &report.failed {
        assert_eq!(e.kind, ErrorKind::Auth, "{target}: {e}");
        let m = e.to_string();
        assert!(m.contains("did not answer within 1s"), "{m}");
        assert!(
            m.contains("not an ECS instance") || m.contains("not a CVM instance"),
            "{m}"
        );
    }
    let asked = h
        .env
        .sim
        .state()
        .count(Cloud::Alibaba, kcle_sim::metadata::ACTION, None);
    assert_eq!(asked, 1, "one attempt for every poll of the round");
}

/// Cross-account: a role assumed (with its external id) on top of static keys, on both
/// clouds; a wrong external id is refused with the cloud's answer, as `auth`.
#[tokio::test(start_paused = true)]
async fn assumed_roles_on_top_of_static_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = |sim: &Simulator, dir: &Path, cloud: Cloud, external: &str| {
        let key = match cloud {
            Cloud::Alibaba => sim.state().settings.alibaba_keys[0].clone(),
            Cloud::Tencent => sim.state().settings.tencent_keys[0].clone(),
        };
        let id = dir.join(format!("{cloud}-id"));
        let secret = dir.join(format!("{cloud}-secret"));
        std::fs::write(&id, &key.id).unwrap();
        std::fs::write(&secret, &key.secret).unwrap();
        CredentialsConfig {
            id_file: Some(id),
            secret_file: Some(secret),
            assume_role: Some(AssumeRoleConfig {
                role_arn: cross_account_role(cloud).into(),
                session_name: Some("lag-reader".into()),
                duration: Some(Duration::from_secs(3600)),
                external_id: Some(external.into()),
            }),
            sts_endpoint: Some(sim.sts_endpoint(cloud)),
            ..CredentialsConfig::default()
        }
    };
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        Some(keys(sim, dir, cloud, CROSS_ACCOUNT_EXTERNAL_ID))
    })
    .await;
    assert_eq!(run_rounds(&h, 130).await, Vec::new());
    for cloud in CLOUDS {
        let assumed = sts_ok(&h, cloud, "AssumeRole");
        // Alibaba: an hour, refreshed 15 min before expiry: 2 in 65 min. Tencent (both
        // SDKs' rule): refreshed once a tenth of the hour has passed: about 11.
        let expected = match cloud {
            Cloud::Alibaba => 2..=3,
            Cloud::Tencent => 9..=12,
        };
        assert!(expected.contains(&assumed), "{cloud}: {assumed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        Some(keys(sim, dir, cloud, "not-the-external-id"))
    })
    .await;
    let failures = run_rounds(&h, 1).await;
    assert_eq!(failures.len(), 6, "{failures:?}");
    for (kind, m) in failures {
        assert_eq!(kind, ErrorKind::Auth, "{m}");
        assert!(m.contains("STS AssumeRole failed"), "{m}");
        assert!(
            m.contains("NoPermission") || m.contains("UnauthorizedOperation"),
            "{m}"
        );
        assert!(
            m.contains("role acs:ram::") || m.contains("role qcs::cam::"),
            "{m}"
        );
    }
}

/// A role assumed with OIDC credentials: both refreshed on their own rules.
#[tokio::test(start_paused = true)]
async fn assumed_role_on_top_of_oidc() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        let mut c = oidc_config(sim, dir, cloud);
        c.assume_role = Some(AssumeRoleConfig {
            role_arn: cross_account_role(cloud).into(),
            session_name: None,
            duration: Some(Duration::from_secs(900)),
            external_id: Some(CROSS_ACCOUNT_EXTERNAL_ID.into()),
        });
        Some(c)
    })
    .await;
    assert_eq!(run_rounds(&h, 60).await, Vec::new());
    for cloud in CLOUDS {
        assert!(sts_ok(&h, cloud, oidc_action(cloud)) >= 1);
        assert!(sts_ok(&h, cloud, "AssumeRole") >= 2, "{cloud}");
        assert_eq!(refresh_errors(&h, account(cloud), "assume_role"), Some(0.0));
        assert_eq!(refresh_errors(&h, account(cloud), "oidc"), Some(0.0));
    }
}

/// A refresh that fails (STS throttling, then 5xx) keeps the current credentials until
/// they expire; the failures are counted, logged once and retried with backoff; after
/// expiry polls fail as `auth` naming the source and why; once STS answers again they
/// recover.
#[tokio::test(start_paused = true)]
async fn failed_refreshes_keep_the_credentials_until_expiry_then_fail_as_auth() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        Some(oidc_config(sim, dir, cloud))
    })
    .await;
    assert_eq!(run_rounds(&h, 1).await, Vec::new());
    let state = h.env.sim.state().clone();
    for cloud in CLOUDS {
        state.inject(
            FaultRule::random(Fault::Throttle, 0.5)
                .cloud(cloud)
                .action(oidc_action(cloud)),
        );
        state.inject(
            FaultRule::random(Fault::ServerError, 1.0)
                .cloud(cloud)
                .action(oidc_action(cloud)),
        );
    }
    // The sessions last 15 minutes: 14 more minutes of polls still succeed, though the
    // refreshes (due 3 min and 90 s before expiry) fail.
    assert_eq!(run_rounds(&h, 28).await, Vec::new());
    for cloud in CLOUDS {
        let errors = refresh_errors(&h, account(cloud), "oidc").unwrap();
        assert!(errors >= 2.0, "{cloud}: {errors} refresh errors");
        let attempts = state.count(cloud, oidc_action(cloud), None) - 1;
        assert_eq!(attempts as f64, errors, "{cloud}: every attempt counted");
        // At most one attempt per round (3 polls each), fewer with the backoff.
        assert!(attempts <= 7, "{cloud}: {attempts} attempts");
    }
    advance(Duration::from_secs(90)).await;
    let failures = run_rounds(&h, 3).await;
    assert_eq!(failures.len(), 3 * 6, "{failures:?}");
    for (kind, m) in &failures {
        assert_eq!(*kind, ErrorKind::Auth, "{m}");
        assert!(m.contains("expired at"), "{m}");
        assert!(m.contains("OIDC role"), "{m}");
        assert!(
            m.contains("InternalError")
                || m.contains("Throttling")
                || m.contains("RequestLimitExceeded"),
            "{m}"
        );
    }
    state.clear_faults();
    advance(Duration::from_secs(60)).await;
    assert_eq!(run_rounds(&h, 2).await, Vec::new());
}

/// kubelet rotates the projected token long before it expires; the exporter reads it at
/// every refresh, so refreshes keep working past the first token's expiry. A token file
/// that goes bad is refused by STS, counted, and polls go on with the current session.
#[tokio::test(start_paused = true)]
async fn the_token_file_is_read_again_at_every_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        let c = oidc_config(sim, dir, cloud);
        // Tokens of 20 minutes, rotated every 10 below.
        write_token(
            sim,
            cloud,
            &token_path(dir, cloud),
            Duration::from_secs(1200),
        );
        Some(c)
    })
    .await;
    for _ in 0..12 {
        assert_eq!(run_rounds(&h, 20).await, Vec::new());
        for cloud in CLOUDS {
            write_token(
                &h.env.sim,
                cloud,
                &token_path(dir.path(), cloud),
                Duration::from_secs(1200),
            );
        }
    }
    for cloud in CLOUDS {
        assert_eq!(refresh_errors(&h, account(cloud), "oidc"), Some(0.0));
        assert!(sts_ok(&h, cloud, oidc_action(cloud)) >= 8);
        std::fs::write(token_path(dir.path(), cloud), "not-a-jwt\n").unwrap();
    }
    // Until the next refresh fails on both clouds, polls go on with the current session.
    for _ in 0..30 {
        assert_eq!(run_rounds(&h, 1).await, Vec::new());
        let failed = CLOUDS
            .iter()
            .all(|c| refresh_errors(&h, account(*c), "oidc").unwrap() >= 1.0);
        if failed {
            break;
        }
    }
    for cloud in CLOUDS {
        assert!(refresh_errors(&h, account(cloud), "oidc").unwrap() >= 1.0);
    }
    assert!(answered(&h, Cloud::Alibaba, "AuthenticationFail.OIDCToken.Invalid") >= 1);
    assert!(answered(&h, Cloud::Tencent, "InvalidParameter.WebIdentityTokenError") >= 1);
}

/// Many polls at once on cold credentials: one STS call serves them all.
#[tokio::test(start_paused = true)]
async fn concurrent_polls_trigger_one_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        Some(oidc_config(sim, dir, cloud))
    })
    .await;
    for cloud in CLOUDS {
        h.env.sim.state().inject(
            FaultRule::times(Fault::Delay(Duration::from_secs(3)), 1)
                .cloud(cloud)
                .action(oidc_action(cloud)),
        );
    }
    for cloud in CLOUDS {
        let spec = h
            .env
            .config
            .accounts
            .iter()
            .find(|a| a.cloud == cloud)
            .unwrap()
            .credential_spec();
        let env = Environment::fixed::<&str, &str>([]);
        let provider = credential_provider(cloud, &spec, &deps(&h.clock, env)).unwrap();
        let before = h.env.sim.state().count(cloud, oidc_action(cloud), None);
        let calls: Vec<_> = (0..40)
            .map(|_| {
                let p = provider.clone();
                tokio::spawn(async move { p.get().await.map(|c| c.id.clone()) })
            })
            .collect();
        let mut ids = Vec::new();
        for c in calls {
            ids.push(c.await.unwrap().unwrap());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{cloud}: one set of credentials for all");
        assert_eq!(
            h.env.sim.state().count(cloud, oidc_action(cloud), None) - before,
            1
        );
    }
    // And through the exporter: a round of polls on cold credentials, one STS call.
    assert_eq!(run_rounds(&h, 1).await, Vec::new());
    for cloud in CLOUDS {
        assert_eq!(h.env.sim.state().count(cloud, oidc_action(cloud), None), 2);
    }
}

/// The simulated APIs accept temporary keys until they expire, then refuse them with the
/// clouds' codes (Alibaba `InvalidSecurityToken.Expired`, Tencent `AuthFailure.TokenFailure`).
#[tokio::test(start_paused = true)]
async fn expired_temporary_keys_are_refused_with_the_clouds_codes() {
    let clock = Clock::virtual_at_unix(T0_SECS);
    let mut env = support::start_environment(
        &spec(),
        SimSettings::default(),
        clock.clone(),
        Duration::from_secs(30),
    )
    .await;
    for cloud in CLOUDS {
        let key = env
            .sim
            .state()
            .issue_key(cloud, role(cloud), Duration::from_secs(90));
        env.credentials.insert(
            account(cloud).to_string(),
            CredentialSources::inline(&key.key.id, &key.key.secret, key.key.token.as_deref()),
        );
    }
    let exporter = Exporter::new(env.config.clone(), env.runtime(&clock), None);
    let h = Harness {
        clock,
        env,
        exporter,
    };
    assert_eq!(run_rounds(&h, 2).await, Vec::new());
    advance(Duration::from_secs(60)).await;
    let failures = run_rounds(&h, 1).await;
    assert_eq!(failures.len(), 6);
    assert!(failures.iter().all(|(k, _)| *k == ErrorKind::Auth));
    assert!(answered(&h, Cloud::Alibaba, "InvalidSecurityToken.Expired") >= 3);
    assert!(answered(&h, Cloud::Tencent, "AuthFailure.TokenFailure") >= 3);
}

/// Profile files: the Alibaba CLI's `config.json` (a role assumed with a profile's keys)
/// and the Tencent credentials file.
#[tokio::test(start_paused = true)]
async fn profile_files_of_both_clouds() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        let file = match cloud {
            Cloud::Alibaba => {
                let key = &sim.state().settings.alibaba_keys[0];
                let f = dir.join("config.json");
                let config = serde_json::json!({"current": "prod", "profiles": [
                    {"name": "prod", "mode": "RamRoleArn", "access_key_id": key.id,
                     "access_key_secret": key.secret, "ram_role_arn": ALIBABA_ROLE,
                     "ram_session_name": "from-profile"}
                ]});
                std::fs::write(&f, config.to_string()).unwrap();
                f
            }
            Cloud::Tencent => {
                let key = &sim.state().settings.tencent_keys[0];
                let f = dir.join("credentials");
                std::fs::write(
                    &f,
                    format!(
                        "[monitoring]\nsecret_id = {}\nsecret_key = {}\n",
                        key.id, key.secret
                    ),
                )
                .unwrap();
                f
            }
        };
        Some(CredentialsConfig {
            profile: Some(ProfileConfig {
                name: (cloud == Cloud::Tencent).then(|| "monitoring".into()),
                file: Some(file),
            }),
            sts_endpoint: Some(sim.sts_endpoint(cloud)),
            ..CredentialsConfig::default()
        })
    })
    .await;
    assert_eq!(run_rounds(&h, 3).await, Vec::new());
    assert_eq!(sts_ok(&h, Cloud::Alibaba, "AssumeRole"), 1);
    assert!(expiry(&h, account(Cloud::Alibaba)).is_some());
    assert_eq!(
        expiry(&h, account(Cloud::Tencent)),
        None,
        "static keys never expire"
    );
}

/// The default chain, end to end with the simulated services: environment keys first,
/// then OIDC variables, then the instance role, then (Alibaba) the credentials URI.
#[tokio::test(start_paused = true)]
async fn the_default_chain_takes_the_first_source_that_answers() {
    let clock = Clock::virtual_at_unix(T0_SECS);
    let sim = Simulator::start(
        SimSettings::default(),
        kcle_sim::world::World::default(),
        clock.clone(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap().to_string();
    let token = dir.path().join("token");
    write_token(&sim, Cloud::Alibaba, &token, Duration::from_secs(3600));
    let t = token.to_str().unwrap().to_string();
    let chain = |metadata: &str| CredentialSpec {
        sts_endpoint: Some(sim.sts_endpoint(Cloud::Alibaba)),
        metadata_endpoint: Some(metadata.to_string()),
        ..CredentialSpec::default_chain()
    };
    let get = |vars: Vec<(&str, String)>, metadata: String| {
        let mut vars = vars;
        vars.push(("HOME", home.clone()));
        let env = Environment::fixed(vars);
        let provider: CredentialProvider =
            credential_provider(Cloud::Alibaba, &chain(&metadata), &deps(&clock, env)).unwrap();
        async move {
            provider
                .get()
                .await
                .map(|c| (c.id.clone(), provider.describe()))
        }
    };
    let meta = sim.metadata_endpoint(Cloud::Alibaba);
    let oidc = vec![
        ("ALIBABA_CLOUD_ROLE_ARN", ALIBABA_ROLE.to_string()),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            ALIBABA_OIDC_PROVIDER.to_string(),
        ),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", t.clone()),
    ];
    let mut keys = vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIfromenv".to_string()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s".to_string()),
    ];
    keys.extend(oidc.clone());
    let (id, _) = get(keys, meta.clone()).await.unwrap();
    assert_eq!(id, "LTAIfromenv");
    let (id, how) = get(oidc, meta.clone()).await.unwrap();
    assert!(id.starts_with("STS."), "{id}");
    assert!(how.contains("OIDC role"), "{how}");
    let (id, how) = get(vec![], meta.clone()).await.unwrap();
    assert!(id.starts_with("STS."), "{id}");
    assert!(how.contains("ECS"), "{how}");
    // No metadata service: the credentials URI answers.
    sim.state()
        .inject(FaultRule::times(Fault::Hang, 1).action(kcle_sim::metadata::ACTION));
    let uri = vec![("ALIBABA_CLOUD_CREDENTIALS_URI", sim.credentials_uri())];
    let (id, how) = get(uri, meta.clone()).await.unwrap();
    assert!(id.starts_with("STS."), "{id}");
    assert!(how.contains("credentials URI"), "{how}");
    // Nothing answers: the error names every source tried.
    sim.state()
        .inject(FaultRule::times(Fault::Hang, 1).action(kcle_sim::metadata::ACTION));
    let e = get(vec![], meta).await.unwrap_err().to_string();
    assert!(
        e.contains("no source of the default chain gave credentials"),
        "{e}"
    );
    assert!(e.contains("instance_role: "), "{e}");
}

/// Tencent's chain: the CVM role before TKE pod identity, as the Python SDK orders them;
/// without a bound CVM role, pod identity.
#[tokio::test(start_paused = true)]
async fn tencent_chain_prefers_the_cvm_role_then_pod_identity() {
    let clock = Clock::virtual_at_unix(T0_SECS);
    let mut settings = SimSettings::default();
    settings.identity.tencent.instance_role = None;
    let sim = Simulator::start(settings, kcle_sim::world::World::default(), clock.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&sim, Cloud::Tencent, &token, Duration::from_secs(3600));
    let spec = CredentialSpec {
        sts_endpoint: Some(sim.sts_endpoint(Cloud::Tencent)),
        metadata_endpoint: Some(sim.metadata_endpoint(Cloud::Tencent)),
        ..CredentialSpec::default_chain()
    };
    let env = Environment::fixed([
        ("HOME", dir.path().to_str().unwrap()),
        ("TKE_REGION", "ap-guangzhou"),
        ("TKE_PROVIDER_ID", TENCENT_OIDC_PROVIDER),
        ("TKE_ROLE_ARN", TENCENT_ROLE),
        ("TKE_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
    ]);
    let p = credential_provider(Cloud::Tencent, &spec, &deps(&clock, env)).unwrap();
    p.get().await.unwrap();
    assert!(p.describe().contains("OIDC role"), "{}", p.describe());
    let asked = sim
        .state()
        .count(Cloud::Tencent, kcle_sim::metadata::ACTION, Some("http_404"));
    assert_eq!(asked, 1, "the CVM role was asked first");
}

/// A configuration whose file changed under it (a token file removed after the start-up
/// check) does not stop the exporter: that account's polls fail saying why.
#[tokio::test(start_paused = true)]
async fn a_source_that_cannot_be_built_fails_its_polls_only() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(SimSettings::default(), dir.path(), |sim, dir, cloud| {
        let c = oidc_config(sim, dir, cloud);
        if cloud == Cloud::Tencent {
            std::fs::remove_file(token_path(dir, cloud)).unwrap();
        }
        Some(c)
    })
    .await;
    let failures = run_rounds(&h, 1).await;
    assert_eq!(failures.len(), 3, "{failures:?}");
    for (_, m) in failures {
        assert!(m.contains("oidc.token_file"), "{m}");
    }
    let _: &Config = &h.env.config;
}

/// Bad credential settings stop `check-config` (and the daemon) with status 2 and one
/// message naming the file, the field and what is allowed.
#[test]
fn bad_credential_configurations_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a.b.c").unwrap();
    let t = token.display();
    let profile = dir.path().join("credentials");
    std::fs::write(&profile, "[default]\nsecret_id = AKID\nsecret_key = k\n").unwrap();
    let account = |cloud: &str, region: &str, credentials: &str| {
        format!(
            "accounts:\n  - name: a\n    cloud: {cloud}\n    region: {region}\n    credentials: {credentials}\n    instances: [{{id: i, groups: [g]}}]\n"
        )
    };
    let ali = |c: &str| account("alibaba", "cn-hangzhou", c);
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            ali("{oidc: {}, instance_role: {}}"),
            vec![
                "accounts[0].credentials.instance_role",
                "oidc and instance_role are both set",
            ],
        ),
        (
            ali("{id_env: K, secret_env: S, profile: {}}"),
            vec!["accounts[0].credentials.profile", "id_env and profile"],
        ),
        (
            ali(&format!("{{oidc: {{provider: p, token_file: {t}}}}}")),
            vec![
                "accounts[0].credentials.oidc.role_arn",
                "ALIBABA_CLOUD_ROLE_ARN",
            ],
        ),
        (
            account(
                "tencent",
                "ap-guangzhou",
                &format!("{{oidc: {{role_arn: r, token_file: {t}}}}}"),
            ),
            vec!["accounts[0].credentials.oidc.provider", "TKE_PROVIDER_ID"],
        ),
        (
            ali("{oidc: {role_arn: r, provider: p, token_file: /nonexistent/kcle-token}}"),
            vec![
                "accounts[0].credentials.oidc.token_file",
                "/nonexistent/kcle-token",
                "cannot read",
            ],
        ),
        (
            ali("{instance_role: {}, assume_role: {session_name: s}}"),
            vec!["accounts[0].credentials.assume_role", "role_arn"],
        ),
        (
            ali(&format!(
                "{{oidc: {{role_arn: r, provider: p, token_file: {t}, duration: 5m}}}}"
            )),
            vec!["accounts[0].credentials.oidc.duration", "5m", "15m to 12h"],
        ),
        (
            ali("{instance_role: {}, assume_role: {role_arn: r, session_name: 'no spaces'}}"),
            vec![
                "accounts[0].credentials.assume_role.session_name",
                "letters, digits",
            ],
        ),
        (
            ali("{instance_role: {}, sts_endpoint: sts.aliyuncs.com}"),
            vec!["accounts[0].credentials.sts_endpoint", "not a URL"],
        ),
        (
            account(
                "tencent",
                "ap-guangzhou",
                &format!("{{profile: {{name: prod, file: {}}}}}", profile.display()),
            ),
            vec!["accounts[0].credentials.profile.name", "no section [prod]"],
        ),
        (
            ali("{oidc: {role_arn: r}, colour: blue}"),
            vec!["accounts[0].credentials", "unknown field `colour`"],
        ),
    ];
    for (i, (yaml, fragments)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        for command in [&["check-config"][..], &[]] {
            let mut cmd =
                std::process::Command::new(env!("CARGO_BIN_EXE_kafka-cloud-lag-exporter"));
            for var in [
                "ALIBABA_CLOUD_ROLE_ARN",
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
                "TKE_ROLE_ARN",
                "TKE_PROVIDER_ID",
                "TKE_WEB_IDENTITY_TOKEN_FILE",
            ] {
                cmd.env_remove(var);
            }
            let out = cmd
                .args(command)
                .args([
                    "--config.file",
                    file.to_str().unwrap(),
                    "--web.listen-address",
                    "127.0.0.1:0",
                ])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "case {i} {command:?}: {err}");
            assert!(
                err.starts_with(&format!("error: {}", file.display())),
                "case {i}: {err}"
            );
            for f in fragments {
                assert!(err.contains(f), "case {i}: {err:?} lacks {f:?}");
            }
        }
    }
}

//! The Alibaba provider against the simulated alikafka API: exact values from the simulated
//! world, both signature versions, STS tokens, every auth failure, throttling, faults,
//! quirks, paging, discovery, group info and every kind of reset.
//!
//! Time is virtual (a paused runtime; the client's and the simulator's wall clocks may
//! differ): the hang test's per-attempt timeout passes without a real wait.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::config::SignatureVersion;
use kafka_cloud_lag_exporter::credentials::{CredentialProvider, CredentialSources, Source};
use kafka_cloud_lag_exporter::model::{
    Cloud, DiscoveredInstance, GroupInfo, GroupProgress, GroupState, InstanceRef,
    PartitionProgress, Rebalance, ResetRequest, ResetScope, ResetTarget, TopicProgress,
};
use kafka_cloud_lag_exporter::providers::alibaba::AlibabaProvider;
use kafka_cloud_lag_exporter::providers::call::RetryPolicy;
use kafka_cloud_lag_exporter::providers::{
    AccountSpec, ErrorKind, OffsetWriter, Provider, ProviderDeps, ProviderError, http,
};
use kcle_clock::{Clock, Instant, unix_millis};
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{SimGroup, World, WorldSpec, group_name, instance_id};
use kcle_sim::{LoggedRequest, RawRequest, SimKey, SimSettings, Simulator};

const T0: u64 = 1_700_000_000;
const KEY_ID: &str = "LTAI5tIntegrationKey";
const SECRET: &str = "integration-secret-value";
const STS_ID: &str = "STS.NTemporaryKey";
const STS_SECRET: &str = "sts-secret-value";
const STS_TOKEN: &str = "sts-token/value+with=specials";
const REGION: &str = "cn-hangzhou";

type Counting = support::RecordingObserver;

fn settings() -> SimSettings {
    SimSettings {
        alibaba_keys: vec![
            SimKey {
                id: KEY_ID.into(),
                secret: SECRET.into(),
                token: None,
            },
            SimKey {
                id: STS_ID.into(),
                secret: STS_SECRET.into(),
                token: Some(STS_TOKEN.into()),
            },
        ],
        alibaba_rate_limit: 10_000.0,
        record_raw: true,
        ..SimSettings::default()
    }
}

struct Harness {
    sim: Simulator,
    sim_clock: Clock,
    client_clock: Clock,
    observer: Arc<Counting>,
}

/// Client options that differ between tests.
struct Client<'a> {
    id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    version: SignatureVersion,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl Default for Client<'_> {
    fn default() -> Self {
        Client {
            id: KEY_ID,
            secret: SECRET,
            token: None,
            version: SignatureVersion::V2,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

async fn start(settings: SimSettings, spec: &WorldSpec) -> Harness {
    let clock = Clock::virtual_at_unix(T0);
    start_with_clocks(settings, spec, clock.clone(), clock).await
}

async fn start_with_clocks(
    settings: SimSettings,
    spec: &WorldSpec,
    sim_clock: Clock,
    client_clock: Clock,
) -> Harness {
    let world = World::generate(spec, unix_millis(sim_clock.now()));
    let sim = Simulator::start(settings, world, sim_clock.clone())
        .await
        .unwrap();
    Harness {
        sim,
        sim_clock,
        client_clock,
        observer: Arc::new(Counting::default()),
    }
}

impl Harness {
    fn provider(&self) -> AlibabaProvider {
        self.client(Client::default())
    }

    fn client(&self, c: Client<'_>) -> AlibabaProvider {
        self.client_with_sources(
            c.version,
            c.request_timeout,
            c.retry,
            CredentialSources::inline(c.id, c.secret, c.token),
        )
    }

    fn client_with_sources(
        &self,
        version: SignatureVersion,
        request_timeout: Duration,
        retry: RetryPolicy,
        sources: CredentialSources,
    ) -> AlibabaProvider {
        let deps = ProviderDeps {
            http: http::client(),
            clock: self.client_clock.clone(),
            observer: self.observer.clone(),
            attempt_timeout: request_timeout,
            retry,
            budget: std::sync::Arc::new(
                kafka_cloud_lag_exporter::providers::budget::Budget::unlimited(),
            ),
        };
        let spec = AccountSpec {
            name: "ali-test".into(),
            cloud: Cloud::Alibaba,
            region: REGION.into(),
            endpoint: self.sim.alibaba_endpoint(),
            credentials: CredentialProvider::new(sources, self.client_clock.clone()),
            signature_version: version,
        };
        AlibabaProvider::new(spec, &deps)
    }

    fn deadline(&self) -> Instant {
        self.client_clock.instant() + Duration::from_secs(60)
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.sim_clock.now())
    }

    fn log(&self) -> Vec<LoggedRequest> {
        self.sim.state().requests()
    }

    fn count(&self, action: &str, outcome: Option<&str>) -> u64 {
        self.sim.state().count(Cloud::Alibaba, action, outcome)
    }

    fn inject(&self, rule: FaultRule) {
        self.sim.state().inject(rule.cloud(Cloud::Alibaba));
    }

    /// What the world says the provider must report, converted by hand.
    fn expected(&self, instance: &str, group: &str) -> GroupProgress {
        let now = self.now_ms();
        self.sim.state().world(|w| {
            let g = &w.instance(Cloud::Alibaba, instance).unwrap().groups[group];
            let (state, members) = (g.state(), g.members);
            let topics: Vec<TopicProgress> = w
                .progress(Cloud::Alibaba, instance, group, now)
                .unwrap()
                .into_iter()
                .map(|(topic, rows)| TopicProgress {
                    topic,
                    partitions: rows
                        .into_iter()
                        .map(|r| PartitionProgress {
                            partition: r.partition,
                            committed: r.committed,
                            log_end: r.log_end,
                            last_consumed_ms: r.last_consumed_ms,
                            time_lag: None,
                        })
                        .collect(),
                })
                .collect();
            // The simulator gives each member partitions in turn and reports one
            // rebalance, a minute ago, for a group with members.
            let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
            let info = GroupInfo {
                state: GroupState::parse(state),
                // Member fields come with partitions: none without any.
                members: (partitions > 0).then(|| members.min(partitions as u32)),
                rebalance: (members > 0).then(|| Rebalance {
                    generation: Some(i64::from(members)),
                    last_ms: Some(now - 60_000),
                    succeeded: Some(true),
                    duration_ms: Some(3_000),
                }),
            };
            GroupProgress {
                topics,
                info: Some(info),
            }
        })
    }

    fn groups_of(&self, instance: &str) -> Vec<String> {
        self.sim.state().world(|w| {
            w.instance(Cloud::Alibaba, instance)
                .unwrap()
                .groups
                .keys()
                .cloned()
                .collect()
        })
    }
}

fn instance(n: usize) -> InstanceRef {
    InstanceRef {
        cloud: Cloud::Alibaba,
        account: "ali-test".into(),
        region: REGION.into(),
        instance_id: instance_id(Cloud::Alibaba, n).into(),
    }
}

fn query_param(raw: &RawRequest, name: &str) -> Option<String> {
    raw.query_pairs()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn spec(instances: usize, groups: usize) -> WorldSpec {
    WorldSpec {
        instances_per_cloud: instances,
        groups_per_instance: groups,
        ..WorldSpec::default()
    }
}

#[tokio::test(start_paused = true)]
async fn progress_equals_the_world_for_every_group_with_signature_v2() {
    let h = start(settings(), &spec(2, 6)).await;
    let p = h.provider();
    let mut checked = 0;
    for n in 1..=2 {
        let inst = instance(n);
        for group in h.groups_of(&inst.instance_id) {
            let got = p.group_progress(&inst, &group, h.deadline()).await.unwrap();
            assert_eq!(
                got,
                h.expected(&inst.instance_id, &group),
                "{inst:?} {group}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    // Partition 0 of every third group's first topic never committed: None, not -1.
    let g3 = p
        .group_progress(&instance(1), &group_name(3), h.deadline())
        .await
        .unwrap();
    assert_eq!(g3.topics[0].partitions[0].committed, None);
    assert_eq!(g3.info.map(|i| i.state), Some(GroupState::Empty));

    for entry in h.log() {
        assert_eq!(entry.outcome, "ok");
        let raw = entry.raw.unwrap();
        assert_eq!(raw.method, "POST");
        assert!(raw.body.is_empty());
        assert_eq!(raw.path(), "/");
        for (name, value) in [
            ("Action", "GetConsumerProgress"),
            ("Version", "2019-09-16"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("AccessKeyId", KEY_ID),
            ("RegionId", REGION),
        ] {
            assert_eq!(query_param(&raw, name).as_deref(), Some(value), "{name}");
        }
        assert!(query_param(&raw, "Signature").is_some());
        assert_eq!(query_param(&raw, "HideLastTimestamp"), None);
        assert_eq!(query_param(&raw, "SecurityToken"), None);
        assert_eq!(
            entry.params.keys().collect::<Vec<_>>(),
            ["ConsumerId", "InstanceId", "RegionId"],
            "only operation parameters are logged"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn progress_equals_the_world_with_signature_v3() {
    let h = start(settings(), &spec(1, 4)).await;
    let p = h.client(Client {
        version: SignatureVersion::V3,
        ..Client::default()
    });
    let inst = instance(1);
    for group in h.groups_of(&inst.instance_id) {
        let got = p.group_progress(&inst, &group, h.deadline()).await.unwrap();
        assert_eq!(got, h.expected(&inst.instance_id, &group));
    }
    for entry in h.log() {
        assert_eq!(entry.outcome, "ok");
        let raw = entry.raw.unwrap();
        assert_eq!(raw.method, "POST");
        assert!(raw.body.is_empty());
        assert_eq!(query_param(&raw, "Signature"), None);
        assert_eq!(query_param(&raw, "Action"), None);
        let auth = raw.header("authorization").unwrap();
        assert!(
            auth.starts_with(&format!(
                "ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders=host;x-acs-action;"
            )),
            "{auth}"
        );
        assert_eq!(raw.header("x-acs-action"), Some("GetConsumerProgress"));
        assert_eq!(raw.header("x-acs-version"), Some("2019-09-16"));
        assert_eq!(raw.header("accept"), Some("application/json"));
        assert_eq!(
            raw.header("x-acs-content-sha256"),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn sts_tokens_are_sent_signed_and_required() {
    let h = start(settings(), &spec(1, 2)).await;
    let inst = instance(1);
    let group = group_name(1);
    for version in [SignatureVersion::V2, SignatureVersion::V3] {
        let ok = h.client(Client {
            id: STS_ID,
            secret: STS_SECRET,
            token: Some(STS_TOKEN),
            version,
            ..Client::default()
        });
        let got = ok
            .group_progress(&inst, &group, h.deadline())
            .await
            .unwrap();
        assert_eq!(got, h.expected(&inst.instance_id, &group));
        let raw = h.log().last().unwrap().raw.clone().unwrap();
        match version {
            SignatureVersion::V2 => {
                assert_eq!(
                    query_param(&raw, "SecurityToken").as_deref(),
                    Some(STS_TOKEN)
                )
            }
            SignatureVersion::V3 => {
                assert_eq!(raw.header("x-acs-security-token"), Some(STS_TOKEN));
                assert!(
                    raw.header("authorization")
                        .unwrap()
                        .contains("x-acs-security-token")
                );
            }
        }

        for (token, code, expect) in [
            (
                None,
                "MissingSecurityToken",
                "no security token is configured",
            ),
            (
                Some("another-token"),
                "InvalidSecurityToken.MismatchWithAccessKey",
                "not issued with access key id STS.NTemporaryKey",
            ),
        ] {
            let p = h.client(Client {
                id: STS_ID,
                secret: STS_SECRET,
                token,
                version,
                ..Client::default()
            });
            let e = p
                .group_progress(&inst, &group, h.deadline())
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Auth, "{e}");
            assert_eq!(e.code.as_deref(), Some(code));
            assert!(e.message.contains(expect), "{e}");
            assert!(!format!("{e} {e:?}").contains(STS_TOKEN));
        }
    }
}

/// Every secret-bearing string of the raw requests in the log.
fn signatures_in(log: &[LoggedRequest]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in log {
        let raw = entry.raw.as_ref().unwrap();
        if let Some(sig) = query_param(raw, "Signature") {
            out.push(sig);
        }
        if let Some(auth) = raw.header("authorization") {
            out.push(auth.rsplit("Signature=").next().unwrap().to_string());
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn wrong_secret_is_an_auth_error_and_no_error_shows_a_secret() {
    let h = start(settings(), &spec(1, 3)).await;
    let inst = instance(1);
    let group = group_name(3);
    let wrong = "wrong-secret-value-XYZ";
    let mut errors: Vec<ProviderError> = Vec::new();
    for version in [SignatureVersion::V2, SignatureVersion::V3] {
        for (id, token) in [(KEY_ID, None), (STS_ID, Some(STS_TOKEN))] {
            let p = h.client(Client {
                id,
                secret: wrong,
                token,
                version,
                ..Client::default()
            });
            let before = h.log().len();
            let e = p
                .group_progress(&inst, &group, h.deadline())
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Auth);
            assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
            assert_eq!(e.http_status, Some(400));
            assert!(!e.retryable);
            assert!(e.request_id.is_some());
            assert!(
                e.message.contains(&format!(
                    "secret configured for access key id {id} is wrong"
                )),
                "{e}"
            );
            assert_eq!(h.log().len(), before + 1, "auth errors are not retried");
            errors.push(e);
            errors.push(p.list_groups(&inst, h.deadline()).await.unwrap_err());
            errors.push(p.list_instances(REGION, h.deadline()).await.unwrap_err());
            errors.push(p.group_info(&inst, &group, h.deadline()).await.unwrap_err());
            let reset = ResetRequest {
                scope: ResetScope::AllTopics(vec![]),
                target: ResetTarget::Latest,
            };
            errors.push(
                p.reset_offsets(&inst, &group, &reset, h.deadline())
                    .await
                    .unwrap_err(),
            );
        }
    }
    assert_eq!(errors.len(), 20);
    let signatures = signatures_in(&h.log());
    assert_eq!(signatures.len(), 20);
    for e in &errors {
        assert_eq!(e.kind, ErrorKind::Auth, "{e}");
        let shown = format!("{e}\n{e:?}\n{}", e.message);
        for secret in [wrong, SECRET, STS_SECRET, STS_TOKEN, "sts-token%2Fvalue"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for sig in &signatures {
            assert!(!shown.contains(sig.as_str()), "signature in {shown}");
        }
        assert!(!shown.contains("127.0.0.1"), "no URL in {shown}");
    }
}

#[tokio::test(start_paused = true)]
async fn unknown_access_key_is_named_in_the_error() {
    let h = start(settings(), &spec(1, 1)).await;
    let p = h.client(Client {
        id: "LTAI5tNobodyKnowsMe",
        ..Client::default()
    });
    let e = p
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("InvalidAccessKeyId.NotFound"));
    assert_eq!(e.http_status, Some(404));
    assert!(
        e.to_string()
            .contains("access key id LTAI5tNobodyKnowsMe is not known to Alibaba Cloud"),
        "{e}"
    );
    assert_eq!(h.count("GetConsumerProgress", None), 1);
}

#[tokio::test(start_paused = true)]
async fn expired_timestamp_when_the_clocks_disagree() {
    let client_clock = Clock::virtual_at_unix(T0);
    let sim_clock = Clock::virtual_at_unix(T0 + 20 * 60);
    let h = start_with_clocks(settings(), &spec(1, 1), sim_clock, client_clock).await;
    let p = h.provider();
    let e = p
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("InvalidTimeStamp.Expired"));
    assert!(e.message.contains("2023-11-14T22:13:20Z"), "{e}");
    assert!(e.message.contains("NTP"), "{e}");
    assert_eq!(h.count("GetConsumerProgress", None), 1, "not retried");

    // Within the 15-minute window the same client is accepted.
    let near = start_with_clocks(
        settings(),
        &spec(1, 1),
        Clock::virtual_at_unix(T0 + 14 * 60),
        h.client_clock.clone(),
    )
    .await;
    assert!(
        near.provider()
            .group_progress(&instance(1), &group_name(1), near.deadline())
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn nonces_are_fresh_per_attempt_and_a_replay_is_refused() {
    let h = start(settings(), &spec(1, 3)).await;
    h.inject(FaultRule::times(Fault::Throttle, 2).action("GetConsumerProgress"));
    for version in [SignatureVersion::V2, SignatureVersion::V3] {
        let p = h.client(Client {
            version,
            ..Client::default()
        });
        for g in 1..=3 {
            p.group_progress(&instance(1), &group_name(g), h.deadline())
                .await
                .unwrap();
        }
    }
    let log = h.log();
    assert_eq!(log.len(), 8, "6 calls, 2 of them retried once");
    let nonces: Vec<String> = log
        .iter()
        .map(|e| {
            let raw = e.raw.as_ref().unwrap();
            query_param(raw, "SignatureNonce")
                .or_else(|| raw.header("x-acs-signature-nonce").map(str::to_string))
                .unwrap()
        })
        .collect();
    let distinct: HashSet<&String> = nonces.iter().collect();
    assert_eq!(distinct.len(), nonces.len(), "{nonces:?}");
    for n in &nonces {
        assert!(
            n.len() == 32
                && n.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{n}"
        );
    }

    // Sending a logged request again, byte for byte, is refused.
    for entry in [&log[2], &log[7]] {
        let raw = entry.raw.clone().unwrap();
        let mut req = http::client().request(
            raw.method.parse().unwrap(),
            format!("{}{}", h.sim.alibaba_endpoint(), raw.path_and_query),
        );
        for (name, value) in &raw.headers {
            if name != "content-length" {
                req = req.header(name, value);
            }
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(body["Code"], "SignatureNonceUsed");
    }
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_and_every_attempt_counted() {
    let h = start(settings(), &spec(1, 2)).await;
    h.inject(FaultRule::times(Fault::Throttle, 2).action("GetConsumerProgress"));
    let got = h
        .provider()
        .group_progress(&instance(1), &group_name(2), h.deadline())
        .await
        .unwrap();
    assert_eq!(got, h.expected(&instance(1).instance_id, &group_name(2)));
    assert_eq!(
        h.observer.events(),
        [
            "request GetConsumerProgress",
            "error GetConsumerProgress throttled",
            "retry GetConsumerProgress",
            "request GetConsumerProgress",
            "error GetConsumerProgress throttled",
            "retry GetConsumerProgress",
            "request GetConsumerProgress",
        ]
    );
    assert_eq!(h.count("GetConsumerProgress", Some("fault:throttle")), 2);
    assert_eq!(h.count("GetConsumerProgress", Some("ok")), 1);
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_answer_is_waited_out_as_the_retry_after_header_asks() {
    let h = start(
        SimSettings {
            alibaba_rate_limit: 1.0,
            ..settings()
        },
        &spec(1, 2),
    )
    .await;
    let p = h.client(Client {
        retry: RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        },
        ..Client::default()
    });
    let start = h.client_clock.now();
    p.group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap();
    p.group_progress(&instance(1), &group_name(2), h.deadline())
        .await
        .unwrap();
    assert_eq!(h.count("GetConsumerProgress", Some("Throttling.User")), 1);
    assert_eq!(h.count("GetConsumerProgress", Some("ok")), 2);
    let waited = h.client_clock.now().duration_since(start).unwrap();
    assert!(
        waited >= Duration::from_millis(900),
        "the 10 ms backoff was stretched to the server's retry-after: {waited:?}"
    );
    assert_eq!(h.observer.count("retry GetConsumerProgress"), 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_bare_5xx_are_retried() {
    let h = start(settings(), &spec(1, 1)).await;
    let p = h.provider();
    let (inst, group) = (instance(1), group_name(1));
    h.inject(FaultRule::times(Fault::ServerError, 2).action("GetConsumerProgress"));
    h.inject(FaultRule::times(Fault::HttpStatus(502), 1).action("GetConsumerProgress"));
    let got = p.group_progress(&inst, &group, h.deadline()).await.unwrap();
    assert_eq!(got, h.expected(&inst.instance_id, &group));
    assert_eq!(
        h.count("GetConsumerProgress", Some("fault:server_error")),
        2
    );
    assert_eq!(h.count("GetConsumerProgress", Some("fault:http_status")), 1);
    assert_eq!(h.observer.count("error GetConsumerProgress api_error"), 2);
    assert_eq!(h.observer.count("error GetConsumerProgress http"), 1);
    assert_eq!(h.observer.count("retry GetConsumerProgress"), 3);

    h.inject(FaultRule::random(Fault::ServerError, 1.0).action("GetConsumerList"));
    let e = p.list_groups(&inst, h.deadline()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ApiError);
    assert_eq!(e.code.as_deref(), Some("InternalError"));
    assert_eq!(e.http_status, Some(500));
    assert!(e.retryable);
    assert_eq!(
        h.count("GetConsumerList", None),
        4,
        "first attempt and 3 retries"
    );
}

#[tokio::test(start_paused = true)]
async fn truncated_or_misshapen_json_is_a_retried_bad_response() {
    let h = start(settings(), &spec(1, 1)).await;
    let p = h.provider();
    let (inst, group) = (instance(1), group_name(1));
    h.inject(FaultRule::times(Fault::Truncated, 1).action("GetConsumerProgress"));
    let got = p.group_progress(&inst, &group, h.deadline()).await.unwrap();
    assert_eq!(got, h.expected(&inst.instance_id, &group));
    assert_eq!(
        h.observer.count("error GetConsumerProgress bad_response"),
        1
    );
    assert_eq!(h.observer.count("retry GetConsumerProgress"), 1);

    for fault in [Fault::Truncated, Fault::WrongShape] {
        h.sim.state().clear_faults();
        h.inject(FaultRule::random(fault.clone(), 1.0));
        let e = p
            .group_progress(&inst, &group, h.deadline())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse, "{fault:?}: {e}");
        assert!(e.retryable);
        let e = p.list_instances(REGION, h.deadline()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse, "{fault:?}: {e}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hang_beyond_the_request_timeout_is_a_timeout() {
    let h = start(settings(), &spec(1, 1)).await;
    h.inject(FaultRule::random(Fault::Hang, 1.0).action("GetConsumerProgress"));
    let p = h.client(Client {
        request_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        ..Client::default()
    });
    let e = p
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(!e.message.contains("127.0.0.1"), "no URL in {e}");
    assert_eq!(h.count("GetConsumerProgress", Some("fault:hang")), 2);
    assert_eq!(h.observer.count("error GetConsumerProgress timeout"), 2);
}

#[tokio::test(start_paused = true)]
async fn business_failures_with_http_200_are_errors() {
    let h = start(settings(), &spec(1, 1)).await;
    h.inject(FaultRule::times(Fault::ApiError("400".into()), 1));
    let e = h
        .provider()
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ApiError);
    assert_eq!(e.code.as_deref(), Some("400"));
    assert_eq!(e.http_status, Some(200));
    assert!(!e.retryable);
    assert!(e.request_id.is_some());
    assert_eq!(h.count("GetConsumerProgress", None), 1);
}

#[tokio::test(start_paused = true)]
async fn missing_groups_and_instances_are_not_found() {
    let h = start(settings(), &spec(1, 1)).await;
    let p = h.provider();
    let e = p
        .group_progress(&instance(1), "no-such-group", h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.code.as_deref(), Some("BIZ_SUBSCRIPTION_NOT_FOUND"));
    assert!(!e.retryable);

    let e = p
        .group_info(&instance(9), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.code.as_deref(), Some("BIZ_INSTANCE_NOT_FOUND"));

    let mut elsewhere = instance(1);
    elsewhere.region = "cn-beijing".into();
    let e = p.list_groups(&elsewhere, h.deadline()).await.unwrap_err();
    assert_eq!(
        e.code.as_deref(),
        Some("BIZ_INSTANCE_NOT_FOUND"),
        "wrong region"
    );
    assert_eq!(h.log().len(), 3, "not-found is not retried");
}

#[tokio::test(start_paused = true)]
async fn quirks_mode_answers_parse_exactly_like_normal_ones() {
    let world_spec = WorldSpec {
        instances_per_cloud: 2,
        groups_per_instance: 4,
        topics_per_group: 1,
        partitions_per_topic: 1,
        ..WorldSpec::default()
    };
    let normal = start(settings(), &world_spec).await;
    let quirky = start(
        SimSettings {
            alibaba_quirks: true,
            ..settings()
        },
        &world_spec,
    )
    .await;
    for h in [&normal, &quirky] {
        h.sim.state().world(|w| {
            let inst = w
                .instance_mut(Cloud::Alibaba, &instance_id(Cloud::Alibaba, 1))
                .unwrap();
            inst.groups.insert(
                "idle-group".into(),
                SimGroup {
                    members: 0,
                    consume_per_sec: 0.0,
                    commits: BTreeMap::new(),
                },
            );
            // One instance in a region of its own: a list of one.
            let mut lone = w
                .instance(Cloud::Alibaba, &instance_id(Cloud::Alibaba, 2))
                .unwrap()
                .clone();
            lone.region = "cn-shenzhen".into();
            lone.id = "alikafka_post-cn-lone0001".into();
            w.instances.insert((Cloud::Alibaba, lone.id.clone()), lone);
        });
    }
    let (pn, pq) = (normal.provider(), quirky.provider());
    for n in 1..=2 {
        let inst = instance(n);
        let groups = pn.list_groups(&inst, normal.deadline()).await.unwrap();
        assert_eq!(
            groups,
            pq.list_groups(&inst, quirky.deadline()).await.unwrap()
        );
        assert_eq!(groups, normal.groups_of(&inst.instance_id));
        for g in &groups {
            let a = pn
                .group_progress(&inst, g, normal.deadline())
                .await
                .unwrap();
            let b = pq
                .group_progress(&inst, g, quirky.deadline())
                .await
                .unwrap();
            // The rebalance time is relative to each simulator's clock; the rest is equal.
            let timeless = |mut p: GroupProgress| {
                if let Some(r) = p.info.as_mut().and_then(|i| i.rebalance.as_mut()) {
                    r.last_ms = None;
                }
                p
            };
            assert_eq!(timeless(a.clone()), timeless(b), "{g}");
            assert_eq!(timeless(a), timeless(normal.expected(&inst.instance_id, g)));
            let ia = pn.group_info(&inst, g, normal.deadline()).await.unwrap();
            assert_eq!(
                ia,
                pq.group_info(&inst, g, quirky.deadline()).await.unwrap()
            );
        }
    }
    let idle = pq
        .group_progress(&instance(1), "idle-group", quirky.deadline())
        .await
        .unwrap();
    assert!(idle.topics.is_empty());
    for region in [REGION, "cn-shenzhen", "eu-central-1"] {
        let a = pn.list_instances(region, normal.deadline()).await.unwrap();
        let b = pq.list_instances(region, quirky.deadline()).await.unwrap();
        assert_eq!(a, b, "{region}");
    }
    assert_eq!(
        pq.list_instances("cn-shenzhen", quirky.deadline())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        pq.list_instances("eu-central-1", quirky.deadline())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(quirky.log().iter().all(|e| e.outcome == "ok"));
}

#[tokio::test(start_paused = true)]
async fn list_groups_pages_through_every_group() {
    let h = start(
        settings(),
        &WorldSpec {
            groups_per_instance: 250,
            topics_per_group: 1,
            partitions_per_topic: 1,
            ..WorldSpec::default()
        },
    )
    .await;
    let inst = instance(1);
    let groups = h.provider().list_groups(&inst, h.deadline()).await.unwrap();
    assert_eq!(groups.len(), 250);
    assert_eq!(groups, h.groups_of(&inst.instance_id));
    let pages: Vec<(String, String)> = h
        .log()
        .iter()
        .filter(|e| e.action == "GetConsumerList")
        .map(|e| {
            (
                e.params["CurrentPage"].clone(),
                e.params["PageSize"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = (1..=25)
        .map(|page| (page.to_string(), "10".to_string()))
        .collect();
    assert_eq!(pages, expected);
}

#[tokio::test(start_paused = true)]
async fn list_instances_keeps_running_instances_only() {
    let h = start(settings(), &spec(3, 1)).await;
    h.sim.state().world(|w| {
        w.instance_mut(Cloud::Alibaba, &instance_id(Cloud::Alibaba, 2))
            .unwrap()
            .status = kcle_sim::world::InstanceStatus::Stopped;
    });
    let p = h.provider();
    let found = p.list_instances(REGION, h.deadline()).await.unwrap();
    assert_eq!(
        found,
        [
            DiscoveredInstance {
                instance_id: instance_id(Cloud::Alibaba, 1),
                name: "sim-alibaba-1".into(),
            },
            DiscoveredInstance {
                instance_id: instance_id(Cloud::Alibaba, 3),
                name: "sim-alibaba-3".into(),
            },
        ]
    );
    assert!(
        p.list_instances("ap-guangzhou", h.deadline())
            .await
            .unwrap()
            .is_empty()
    );
    let params = &h.log()[0].params;
    assert_eq!(params.len(), 1);
    assert_eq!(params["RegionId"], REGION);
}

#[tokio::test(start_paused = true)]
async fn group_info_reports_state_and_members() {
    let h = start(settings(), &spec(1, 4)).await;
    let p = h.provider();
    let inst = instance(1);
    let mut got = Vec::new();
    for g in 1..=4 {
        got.push(
            p.group_info(&inst, &group_name(g), h.deadline())
                .await
                .unwrap(),
        );
    }
    let member = |state, members| (state, Some(members));
    let got_members: Vec<_> = got.iter().map(|i| (i.state, i.members)).collect();
    assert_eq!(
        got_members,
        [
            member(GroupState::Stable, 2),
            member(GroupState::Stable, 1),
            member(GroupState::Empty, 0),
            member(GroupState::Stable, 3),
        ]
    );
    assert!(got[0].is_active() && !got[2].is_active());
}

/// Topic names and committed offsets of a group, straight from the world.
fn committed(h: &Harness, group: &str) -> Vec<(String, Vec<Option<i64>>)> {
    let now = h.now_ms();
    h.sim.state().world(|w| {
        w.progress(Cloud::Alibaba, &instance_id(Cloud::Alibaba, 1), group, now)
            .unwrap()
            .into_iter()
            .map(|(t, rows)| (t, rows.iter().map(|r| r.committed).collect()))
            .collect()
    })
}

fn partitions_of(h: &Harness, topic: &str) -> Vec<kcle_sim::world::SimPartition> {
    h.sim.state().world(|w| {
        w.instance(Cloud::Alibaba, &instance_id(Cloud::Alibaba, 1))
            .unwrap()
            .topics[topic]
            .partitions
            .clone()
    })
}

fn last_update(h: &Harness) -> LoggedRequest {
    h.log()
        .into_iter()
        .rfind(|e| e.action == "UpdateConsumerOffset")
        .unwrap()
}

fn reset(scope: ResetScope, target: ResetTarget) -> ResetRequest {
    ResetRequest { scope, target }
}

#[tokio::test(start_paused = true)]
async fn reset_to_latest_for_all_topics_sends_an_empty_topic() {
    let h = start(settings(), &spec(1, 3)).await;
    let p = h.provider();
    let (inst, group) = (instance(1), group_name(3));
    let topics: Vec<String> = committed(&h, &group).into_iter().map(|(t, _)| t).collect();
    let request = reset(ResetScope::AllTopics(topics.clone()), ResetTarget::Latest);
    assert_eq!(
        p.reset_calls(&request),
        Some(vec![request.clone()]),
        "all topics in one call"
    );
    p.reset_offsets(
        &inst,
        &group,
        &reset(ResetScope::AllTopics(topics.clone()), ResetTarget::Latest),
        h.deadline(),
    )
    .await
    .unwrap();
    let now = h.now_ms();
    for t in &topics {
        let ends: Vec<Option<i64>> = partitions_of(&h, t)
            .iter()
            .map(|sp| Some(sp.log_end(now)))
            .collect();
        let got = committed(&h, &group)
            .into_iter()
            .find(|(n, _)| n == t)
            .unwrap()
            .1;
        assert_eq!(got, ends, "{t}");
    }
    let entry = last_update(&h);
    assert_eq!(entry.outcome, "ok");
    assert_eq!(
        entry.params,
        BTreeMap::from([
            ("ConsumerId".to_string(), group.clone()),
            ("InstanceId".to_string(), inst.instance_id.to_string()),
            ("RegionId".to_string(), REGION.to_string()),
            ("ResetType".to_string(), "timestamp".to_string()),
            ("Time".to_string(), "-1".to_string()),
            ("Topic".to_string(), String::new()),
        ])
    );
    let raw = entry.raw.unwrap();
    assert!(
        raw.path_and_query.contains("&Topic=&"),
        "the empty Topic is sent and signed: {}",
        raw.path_and_query.split("&Signature=").next().unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn reset_to_earliest_for_one_topic_leaves_the_others() {
    let h = start(settings(), &spec(1, 3)).await;
    let (inst, group) = (instance(1), group_name(3));
    let before = committed(&h, &group);
    let (topic, other) = (before[0].0.clone(), before[1].clone());
    h.provider()
        .reset_offsets(
            &inst,
            &group,
            &reset(ResetScope::Topic(topic.clone()), ResetTarget::Earliest),
            h.deadline(),
        )
        .await
        .unwrap();
    let after = committed(&h, &group);
    let earliest: Vec<Option<i64>> = partitions_of(&h, &topic)
        .iter()
        .map(|sp| Some(sp.earliest))
        .collect();
    assert_eq!(after[0], (topic.clone(), earliest));
    assert_eq!(after[1], other);
    let params = last_update(&h).params;
    assert_eq!(params["Topic"], topic);
    assert_eq!(params["ResetType"], "timestamp");
    assert_eq!(params["Time"], "-2");
}

#[tokio::test(start_paused = true)]
async fn reset_to_a_timestamp() {
    let h = start(settings(), &spec(1, 3)).await;
    let (inst, group) = (instance(1), group_name(3));
    let topic = committed(&h, &group)[1].0.clone();
    let now = h.now_ms();
    let at = now - 90_000;
    h.provider()
        .reset_offsets(
            &inst,
            &group,
            &reset(ResetScope::Topic(topic.clone()), ResetTarget::Timestamp(at)),
            h.deadline(),
        )
        .await
        .unwrap();
    let expected: Vec<Option<i64>> = partitions_of(&h, &topic)
        .iter()
        .map(|sp| Some(sp.offset_for_time(at, now)))
        .collect();
    let got = committed(&h, &group)
        .into_iter()
        .find(|(t, _)| *t == topic)
        .unwrap()
        .1;
    assert_eq!(got, expected);
    assert_eq!(last_update(&h).params["Time"], at.to_string());
}

#[tokio::test(start_paused = true)]
async fn reset_to_explicit_offsets_sends_one_compact_json_string() {
    let h = start(settings(), &spec(1, 3)).await;
    let (inst, group) = (instance(1), group_name(3));
    let topic = committed(&h, &group)[0].0.clone();
    let parts = partitions_of(&h, &topic);
    let now = h.now_ms();
    let targets = vec![(0, parts[0].earliest + 5), (2, parts[2].log_end(now) - 1)];
    h.provider()
        .reset_offsets(
            &inst,
            &group,
            &reset(
                ResetScope::Topic(topic.clone()),
                ResetTarget::Offsets(targets.clone()),
            ),
            h.deadline(),
        )
        .await
        .unwrap();
    let got = committed(&h, &group)[0].1.clone();
    assert_eq!(got[0], Some(targets[0].1));
    assert_eq!(got[2], Some(targets[1].1));
    let params = last_update(&h).params;
    assert_eq!(params["ResetType"], "offset");
    assert_eq!(
        params["Offsets"],
        format!(
            r#"[{{"Partition":0,"Offset":{}}},{{"Partition":2,"Offset":{}}}]"#,
            targets[0].1, targets[1].1
        )
    );
    assert!(!params.contains_key("Time"));
}

#[tokio::test(start_paused = true)]
async fn unsupported_resets_are_refused_without_a_request() {
    let h = start(settings(), &spec(1, 3)).await;
    let p = h.provider();
    let (inst, group) = (instance(1), group_name(3));
    let topic = || ResetScope::Topic("topic-0001".into());
    assert_eq!(
        p.reset_calls(&reset(topic(), ResetTarget::ShiftBy(-100))),
        None
    );
    for target in [
        ResetTarget::Latest,
        ResetTarget::Earliest,
        ResetTarget::Timestamp(1),
        ResetTarget::Offsets(vec![(0, 1)]),
    ] {
        let request = reset(topic(), target);
        assert_eq!(p.reset_calls(&request), Some(vec![request.clone()]));
    }
    let some = ResetScope::Partitions {
        topic: "topic-0001".into(),
        partitions: vec![0],
    };
    for request in [
        reset(topic(), ResetTarget::ShiftBy(-100)),
        reset(
            ResetScope::AllTopics(vec!["topic-0001".into()]),
            ResetTarget::Offsets(vec![(0, 1)]),
        ),
        reset(some, ResetTarget::Latest),
        reset(
            ResetScope::Topics(vec!["topic-0001".into(), "topic-0002".into()]),
            ResetTarget::Earliest,
        ),
    ] {
        let e = p
            .reset_offsets(&inst, &group, &request, h.deadline())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ApiError, "{request:?}");
        assert!(!e.retryable);
    }
    assert_eq!(h.count("UpdateConsumerOffset", None), 0);
    assert!(h.observer.events().is_empty(), "nothing was sent");
}

#[tokio::test(start_paused = true)]
async fn reset_of_an_active_group_is_refused_and_changes_nothing() {
    let h = start(settings(), &spec(1, 1)).await;
    let (inst, group) = (instance(1), group_name(1));
    let before = committed(&h, &group);
    let e = h
        .provider()
        .reset_offsets(
            &inst,
            &group,
            &reset(ResetScope::AllTopics(vec![]), ResetTarget::Earliest),
            h.deadline(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ApiError);
    assert_eq!(e.http_status, Some(200), "a business failure");
    assert!(e.message.contains("Group is active"), "{e}");
    assert!(!e.retryable);
    assert_eq!(committed(&h, &group), before);
    assert_eq!(last_update(&h).outcome, "400");
}

#[tokio::test(start_paused = true)]
async fn resets_are_sent_once_even_when_retryable() {
    let h = start(settings(), &spec(1, 3)).await;
    h.inject(FaultRule::times(Fault::ServerError, 1).action("UpdateConsumerOffset"));
    let e = h
        .provider()
        .reset_offsets(
            &instance(1),
            &group_name(3),
            &reset(ResetScope::AllTopics(vec![]), ResetTarget::Latest),
            h.deadline(),
        )
        .await
        .unwrap_err();
    assert!(e.retryable);
    assert_eq!(h.count("UpdateConsumerOffset", None), 1);
    assert_eq!(h.observer.count("retry UpdateConsumerOffset"), 0);
}

#[tokio::test(start_paused = true)]
async fn unreadable_credentials_send_nothing() {
    let h = start(settings(), &spec(1, 1)).await;
    let p = h.client_with_sources(
        SignatureVersion::V2,
        Duration::from_secs(10),
        RetryPolicy::default(),
        CredentialSources {
            id: Source::Env("KCLE_TEST_ALIBABA_SURELY_UNSET_ID".into()),
            secret: Source::Env("KCLE_TEST_ALIBABA_SURELY_UNSET_SECRET".into()),
            token: vec![],
        },
    );
    let e = p
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Credentials);
    assert!(
        e.message.contains("KCLE_TEST_ALIBABA_SURELY_UNSET_ID"),
        "{e}"
    );
    assert!(h.log().is_empty());
}

/// Every lifecycle status of the simulator, answered with the cloud's own code: instances
/// that may serve traffic (also while upgrading, migrating, scaling or about to expire)
/// are kept; those that cannot (creating, failed, stopped, expired, released, deleting)
/// are not.
#[tokio::test(start_paused = true)]
async fn list_instances_keeps_every_instance_that_serves_traffic() {
    use kcle_sim::world::InstanceStatus;
    let h = start(settings(), &spec(11, 1)).await;
    let statuses = InstanceStatus::ALL;
    h.sim.state().world(|w| {
        for (i, status) in statuses.iter().enumerate() {
            w.instance_mut(Cloud::Alibaba, &instance_id(Cloud::Alibaba, i + 1))
                .unwrap()
                .status = *status;
        }
    });
    let found: Vec<String> = h
        .provider()
        .list_instances(REGION, h.deadline())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.instance_id)
        .collect();
    let expected: Vec<String> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| s.serves())
        .map(|(i, _)| instance_id(Cloud::Alibaba, i + 1))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        expected.len(),
        5,
        "running, upgrading, migrating, scaling, expiring"
    );
}

/// The documented older `GetConsumerList` answer has no `Total` and lists every group on
/// every page: with 150 groups the second page brings nothing new, and the listing must end
/// with every group rather than be thrown away as a server that does not page.
#[tokio::test(start_paused = true)]
async fn list_groups_of_a_legacy_answer_without_total_keeps_every_group() {
    let h = start(
        SimSettings {
            alibaba_legacy_answers: true,
            ..settings()
        },
        &WorldSpec {
            groups_per_instance: 150,
            topics_per_group: 1,
            partitions_per_topic: 1,
            ..WorldSpec::default()
        },
    )
    .await;
    let inst = instance(1);
    let groups = h.provider().list_groups(&inst, h.deadline()).await.unwrap();
    assert_eq!(groups.len(), 150);
    assert_eq!(groups, h.groups_of(&inst.instance_id));
    let listings = h
        .log()
        .iter()
        .filter(|e| e.action == "GetConsumerList")
        .count();
    assert_eq!(
        listings, 2,
        "the second page shows nothing new and ends the listing"
    );
}

/// A server whose page limit is the smallest plausible one still pages every group: the
/// client never asks for more than it allows (a larger PageSize is refused, not capped).
#[tokio::test(start_paused = true)]
async fn list_groups_stays_within_the_smallest_plausible_page_limit() {
    let h = start(
        SimSettings {
            alibaba_max_page_size: 10,
            ..settings()
        },
        &WorldSpec {
            groups_per_instance: 35,
            topics_per_group: 1,
            partitions_per_topic: 1,
            ..WorldSpec::default()
        },
    )
    .await;
    let inst = instance(1);
    let groups = h.provider().list_groups(&inst, h.deadline()).await.unwrap();
    assert_eq!(groups.len(), 35);
    assert!(h.log().iter().all(|e| e.outcome == "ok"));
}

/// The documented `GetConsumerProgress` answer (no `state`, no member fields) says
/// nothing about membership: the state is unknown and the member count absent, never 0.
#[tokio::test(start_paused = true)]
async fn group_info_of_the_documented_answer_leaves_membership_unknown() {
    let h = start(
        SimSettings {
            alibaba_legacy_answers: true,
            ..settings()
        },
        &spec(1, 3),
    )
    .await;
    let p = h.provider();
    for g in 1..=3 {
        let info = p
            .group_info(&instance(1), &group_name(g), h.deadline())
            .await
            .unwrap();
        assert_eq!(
            info,
            GroupInfo {
                state: GroupState::Unknown,
                members: None,
                rebalance: None,
            },
            "{g}"
        );
        assert!(!info.membership_known());
    }
    // The offsets themselves are read as before.
    let got = p
        .group_progress(&instance(1), &group_name(2), h.deadline())
        .await
        .unwrap();
    let mut expected = h.expected(&instance(1).instance_id, &group_name(2));
    expected.info = None;
    assert_eq!(got, expected);
}

/// Any `Throttling.*` code the gateway invents is throttling: retried, counted as such.
#[tokio::test(start_paused = true)]
async fn every_throttling_code_is_retried() {
    let h = start(settings(), &spec(1, 1)).await;
    for code in [
        "Throttling.Concurrency",
        "Throttling",
        "ONS_SYSTEM_FLOW_CONTROL",
    ] {
        h.inject(FaultRule::times(Fault::ApiError(code.into()), 1).action("GetConsumerProgress"));
        h.provider()
            .group_progress(&instance(1), &group_name(1), h.deadline())
            .await
            .unwrap_or_else(|e| panic!("{code}: {e}"));
    }
    assert_eq!(h.observer.count("error GetConsumerProgress throttled"), 3);
    assert_eq!(h.observer.count("retry GetConsumerProgress"), 3);
}

/// A key id or token with a byte an HTTP header cannot carry is a configuration error
/// naming the account and the part at fault: nothing is sent and nothing is retried.
#[tokio::test(start_paused = true)]
async fn unsendable_credentials_are_a_configuration_error_never_retried() {
    let h = start(settings(), &spec(1, 1)).await;
    for (id, token, part) in [
        ("LTAI\u{7f}bad", None, "credential id"),
        (STS_ID, Some("tok\u{1}en"), "credential token"),
    ] {
        let p = h.client(Client {
            id,
            token,
            version: SignatureVersion::V3,
            ..Client::default()
        });
        let e = p
            .group_progress(&instance(1), &group_name(1), h.deadline())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Credentials, "{e}");
        assert!(!e.retryable);
        assert!(e.message.contains("account ali-test"), "{e}");
        assert!(e.message.contains(part), "{e}");
    }
    assert!(h.log().is_empty(), "nothing reached the cloud");
    assert_eq!(h.observer.count("retry GetConsumerProgress"), 0);
}

/// The simulator serves the API at "/" only, as the cloud does: an endpoint with a path
/// (which configuration validation refuses) reaches nothing.
#[tokio::test(start_paused = true)]
async fn the_api_is_only_served_at_the_root_path() {
    let h = start(settings(), &spec(1, 1)).await;
    let deps = ProviderDeps {
        http: http::client(),
        clock: h.client_clock.clone(),
        observer: h.observer.clone(),
        attempt_timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        budget: Arc::new(kafka_cloud_lag_exporter::providers::budget::Budget::unlimited()),
    };
    for version in [SignatureVersion::V2, SignatureVersion::V3] {
        let spec = AccountSpec {
            name: "ali-test".into(),
            cloud: Cloud::Alibaba,
            region: REGION.into(),
            endpoint: format!("{}/proxy", h.sim.alibaba_endpoint()),
            credentials: CredentialProvider::new(
                CredentialSources::inline(KEY_ID, SECRET, None),
                h.client_clock.clone(),
            ),
            signature_version: version,
        };
        let e = AlibabaProvider::new(spec, &deps)
            .group_progress(&instance(1), &group_name(1), h.deadline())
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.http_status), (ErrorKind::Http, Some(404)), "{e}");
    }
}

//! The Tencent provider against the simulated CKafka API on loopback: progress read back
//! exactly, paging, signing and credentials, retries and their counting, timeouts, and
//! every kind of offset reset. Time is virtual (a paused runtime); nothing waits on the real clock.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::config::SignatureVersion;
use kafka_cloud_lag_exporter::credentials::{CredentialProvider, CredentialSources};
use kafka_cloud_lag_exporter::model::{
    Cloud, GroupInfo, GroupProgress, GroupState, InstanceRef, PartitionProgress, ResetRequest,
    ResetScope, ResetTarget, TopicProgress,
};
use kafka_cloud_lag_exporter::providers::call::RetryPolicy;
use kafka_cloud_lag_exporter::providers::tencent::TencentProvider;
use kafka_cloud_lag_exporter::providers::{
    AccountSpec, ErrorKind, OffsetWriter, Provider, ProviderDeps, ProviderError, http,
};
use kcle_clock::{Clock, Instant, unix_millis};
use kcle_sim::faults::{Fault, FaultRule};
use kcle_sim::world::{World, WorldSpec, group_name, instance_id};
use kcle_sim::{LoggedRequest, SimKey, SimSettings, Simulator, is_write_action};

const START_S: u64 = 1_700_000_000;
const REGION: &str = "ap-guangzhou";
const SECRET_ID: &str = "AKIDSimulatorSecretId";
const SECRET: &str = "sim-tencent-secret";

type Counting = support::RecordingObserver;

/// How the client is built.
struct Client {
    clock: Option<Clock>,
    id: String,
    secret: String,
    token: Option<String>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            clock: None,
            id: SECRET_ID.into(),
            secret: SECRET.into(),
            token: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

struct Harness {
    sim: Simulator,
    clock: Clock,
    provider: TencentProvider,
    observer: Arc<Counting>,
}

impl Harness {
    async fn start(settings: SimSettings, spec: WorldSpec, client: Client) -> Harness {
        let clock = Clock::virtual_at_unix(START_S);
        let world = World::generate(&spec, START_S as i64 * 1000);
        let shared: Clock = clock.clone();
        let sim = Simulator::start(settings, world, shared).await.unwrap();
        let observer = Arc::new(Counting::default());
        let client_clock: Clock = client.clock.clone().unwrap_or_else(|| clock.clone());
        let provider = provider_for(
            sim.tencent_endpoint(),
            client_clock,
            &client,
            observer.clone(),
        );
        Harness {
            sim,
            clock,
            provider,
            observer,
        }
    }

    async fn default() -> Harness {
        Harness::start(raw_settings(), WorldSpec::default(), Client::default()).await
    }

    fn deadline(&self) -> Instant {
        self.clock.instant() + Duration::from_secs(60)
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// The world's view of a group, converted the way Tencent reports it.
    fn expected(&self, instance: &str, group: &str) -> GroupProgress {
        let now = self.now_ms();
        let rows = self
            .sim
            .state()
            .world(|w| w.progress(Cloud::Tencent, instance, group, now))
            .unwrap();
        GroupProgress {
            topics: rows
                .into_iter()
                .map(|(topic, rows)| TopicProgress {
                    topic,
                    partitions: rows
                        .into_iter()
                        .map(|r| PartitionProgress {
                            partition: r.partition,
                            committed: r.committed,
                            log_end: r.log_end,
                            last_consumed_ms: None,
                            time_lag: None,
                        })
                        .collect(),
                })
                .collect(),
            info: None,
        }
    }

    fn log(&self, action: &str) -> Vec<LoggedRequest> {
        self.sim
            .state()
            .requests()
            .into_iter()
            .filter(|r| r.action == action)
            .collect()
    }

    fn count(&self, action: &str, outcome: &str) -> u64 {
        self.sim
            .state()
            .count(Cloud::Tencent, action, Some(outcome))
    }

    fn inject(&self, fault: Fault, times: u32, action: &str) {
        self.sim.state().inject(
            FaultRule::times(fault, times)
                .cloud(Cloud::Tencent)
                .action(action),
        );
    }
}

fn raw_settings() -> SimSettings {
    SimSettings {
        record_raw: true,
        ..SimSettings::default()
    }
}

fn instance(n: usize) -> InstanceRef {
    InstanceRef {
        cloud: Cloud::Tencent,
        account: "tc".into(),
        region: REGION.into(),
        instance_id: instance_id(Cloud::Tencent, n).into(),
    }
}

/// The `Signature=` of a logged request's `Authorization` header.
fn sent_signature(entry: &LoggedRequest) -> String {
    let raw = entry.raw.as_ref().expect("record_raw is on");
    let auth = raw.header("authorization").unwrap();
    auth.rsplit("Signature=").next().unwrap().to_string()
}

fn assert_no_secrets(e: &ProviderError, secrets: &[&str]) {
    for text in [e.to_string(), format!("{e:?}")] {
        for s in secrets {
            assert!(!text.contains(s), "{s:?} leaked into {text}");
        }
        assert!(!text.contains("TC3-HMAC-SHA256"), "{text}");
        assert!(!text.contains("Signature="), "{text}");
    }
}

// ---- progress ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn progress_equals_the_world_for_every_group() {
    let spec = WorldSpec {
        instances_per_cloud: 2,
        groups_per_instance: 6,
        ..WorldSpec::default()
    };
    let h = Harness::start(raw_settings(), spec, Client::default()).await;
    let mut uncommitted = 0;
    for n in 1..=2 {
        let inst = instance(n);
        let groups: Vec<String> = h.sim.state().world(|w| {
            w.instance(Cloud::Tencent, &inst.instance_id)
                .unwrap()
                .groups
                .keys()
                .cloned()
                .collect()
        });
        assert_eq!(groups.len(), 6);
        for g in &groups {
            let got = h
                .provider
                .group_progress(&inst, g, h.deadline())
                .await
                .unwrap();
            assert_eq!(got, h.expected(&inst.instance_id, g), "{n} {g}");
            uncommitted += got
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.committed.is_none())
                .count();
        }
    }
    // Group 3 and 6 of each instance lack a commit on one partition: Offset -1 on the wire.
    assert_eq!(uncommitted, 4);
    assert_eq!(h.count("DescribeGroupOffsets", "ok"), 12);
    assert_eq!(h.observer.count_prefix("error"), 0);
}

#[tokio::test(start_paused = true)]
async fn paging_reads_every_topic_exactly_once() {
    let spec = WorldSpec {
        groups_per_instance: 1,
        topics_per_group: 120,
        partitions_per_topic: 2,
        ..WorldSpec::default()
    };
    let h = Harness::start(raw_settings(), spec, Client::default()).await;
    let inst = instance(1);
    let got = h
        .provider
        .group_progress(&inst, &group_name(1), h.deadline())
        .await
        .unwrap();
    assert_eq!(got.topics.len(), 120);
    assert_eq!(got, h.expected(&inst.instance_id, &group_name(1)));
    let pages: Vec<(String, String)> = h
        .log("DescribeGroupOffsets")
        .iter()
        .map(|r| (r.params["Offset"].clone(), r.params["Limit"].clone()))
        .collect();
    let expected: Vec<(String, String)> = ["0", "50", "100"]
        .iter()
        .map(|o| (o.to_string(), "50".to_string()))
        .collect();
    assert_eq!(pages, expected);
    // The exact body of the first page: compact JSON, fields in the documented order.
    let raw = h.log("DescribeGroupOffsets")[0].raw.clone().unwrap();
    assert_eq!(
        raw.body,
        r#"{"InstanceId":"ckafka-sim0001","Group":"group-0001","Offset":0,"Limit":50}"#
    );
    assert_eq!(raw.header("x-tc-version"), Some("2019-08-19"));
    assert_eq!(raw.header("x-tc-region"), Some(REGION));
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(
        raw.header("host"),
        Some(h.sim.tencent_endpoint().trim_start_matches("http://"))
    );
    assert_eq!(
        raw.header("x-tc-timestamp"),
        Some(START_S.to_string().as_str())
    );
    assert!(raw.header("x-tc-token").is_none());
}

#[tokio::test(start_paused = true)]
async fn unknown_groups_and_instances_are_not_found() {
    let h = Harness::default().await;
    let e = h
        .provider
        .group_progress(&instance(1), "no-such-group", h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.code.as_deref(), Some("ResourceNotFound"));
    assert!(e.request_id.is_some());
    let e = h
        .provider
        .group_progress(&instance(9), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.code.as_deref(),
        Some("InvalidParameterValue.InstanceNotExist")
    );
    // Not-found is final: one attempt each.
    assert_eq!(h.observer.count_prefix("request"), 2);
}

// ---- credentials and signing ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_session_token_is_required_sent_and_accepted() {
    let settings = SimSettings {
        tencent_keys: vec![SimKey {
            id: "AKIDTemporary".into(),
            secret: "temporary-secret".into(),
            token: Some("session-token-123".into()),
        }],
        ..raw_settings()
    };
    let temp = |token: Option<&str>| Client {
        id: "AKIDTemporary".into(),
        secret: "temporary-secret".into(),
        token: token.map(str::to_string),
        ..Client::default()
    };
    let inst = instance(1);

    let h = Harness::start(
        settings.clone(),
        WorldSpec::default(),
        temp(Some("session-token-123")),
    )
    .await;
    let got = h
        .provider
        .group_progress(&inst, &group_name(1), h.deadline())
        .await
        .unwrap();
    assert_eq!(got, h.expected(&inst.instance_id, &group_name(1)));
    let raw = h.log("DescribeGroupOffsets")[0].raw.clone().unwrap();
    assert_eq!(raw.header("x-tc-token"), Some("session-token-123"));

    for (token, what) in [(None, "missing"), (Some("stale-token"), "wrong")] {
        let h = Harness::start(settings.clone(), WorldSpec::default(), temp(token)).await;
        let e = h
            .provider
            .group_progress(&inst, &group_name(1), h.deadline())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth, "{what}");
        assert_eq!(
            e.code.as_deref(),
            Some("AuthFailure.TokenFailure"),
            "{what}"
        );
        assert!(e.message.contains("check the session token"), "{e}");
        assert!(!e.retryable);
        assert_no_secrets(
            &e,
            &["temporary-secret", "session-token-123", "stale-token"],
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_wrong_secret_is_an_auth_error_that_leaks_nothing() {
    let h = Harness::start(
        raw_settings(),
        WorldSpec::default(),
        Client {
            secret: "not-the-right-secret".into(),
            ..Client::default()
        },
    )
    .await;
    let e = h
        .provider
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("AuthFailure.SignatureFailure"));
    assert!(e.message.contains("check the SecretKey"), "{e}");
    assert_eq!(e.http_status, Some(200));
    assert!(e.request_id.is_some());
    assert!(!e.retryable);
    assert_eq!(
        h.observer.count_prefix("request"),
        1,
        "auth errors are not retried"
    );
    let signature = sent_signature(&h.log("DescribeGroupOffsets")[0]);
    assert_eq!(signature.len(), 64);
    assert_no_secrets(&e, &["not-the-right-secret", SECRET, &signature]);
    let debug = format!("{:?}", h.provider);
    assert!(!debug.contains("not-the-right-secret"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_secret_id_is_named() {
    let h = Harness::start(
        raw_settings(),
        WorldSpec::default(),
        Client {
            id: "AKIDUnknown".into(),
            ..Client::default()
        },
    )
    .await;
    let e = h
        .provider
        .list_groups(&instance(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("AuthFailure.SecretIdNotFound"));
    assert!(e.message.contains("check the SecretId"), "{e}");
    assert_no_secrets(&e, &[SECRET]);
}

#[tokio::test(start_paused = true)]
async fn clock_skew_beyond_five_minutes_is_rejected() {
    let ahead = Clock::virtual_at_unix(START_S + 6 * 60);
    let h = Harness::start(
        raw_settings(),
        WorldSpec::default(),
        Client {
            clock: Some(ahead.clone()),
            ..Client::default()
        },
    )
    .await;
    let deadline = ahead.instant() + Duration::from_secs(60);
    let e = h
        .provider
        .group_progress(&instance(1), &group_name(1), deadline)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("AuthFailure.SignatureExpire"));
    assert!(e.message.contains("check the system clock"), "{e}");
    assert_eq!(h.observer.count_prefix("request"), 1);

    // Four minutes off is inside the window.
    let near = Clock::virtual_at(h.clock.now() + Duration::from_secs(4 * 60), 1);
    let provider = provider_for(
        h.sim.tencent_endpoint(),
        near.clone(),
        &Client::default(),
        Arc::default(),
    );
    provider
        .group_progress(
            &instance(1),
            &group_name(1),
            near.instant() + Duration::from_secs(60),
        )
        .await
        .unwrap();
}

// ---- retries ----------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_and_counted() {
    let h = Harness::default().await;
    h.inject(Fault::Throttle, 2, "DescribeGroupOffsets");
    let inst = instance(1);
    let start = h.clock.now();
    let got = h
        .provider
        .group_progress(&inst, &group_name(2), h.deadline())
        .await
        .unwrap();
    // Backoff moved the virtual clock; the answer is the world at that moment.
    assert!(h.clock.now() > start);
    assert_eq!(got, h.expected(&inst.instance_id, &group_name(2)));
    assert_eq!(h.observer.count_prefix("request DescribeGroupOffsets"), 3);
    assert_eq!(
        h.observer
            .count_prefix("error DescribeGroupOffsets throttled"),
        2
    );
    assert_eq!(h.observer.count_prefix("retry DescribeGroupOffsets"), 2);
    assert_eq!(h.count("DescribeGroupOffsets", "fault:throttle"), 2);
    assert_eq!(h.count("DescribeGroupOffsets", "ok"), 1);
}

#[tokio::test(start_paused = true)]
async fn sustained_throttling_is_outlasted_within_the_deadline() {
    let settings = SimSettings {
        tencent_rate_limit: Some(2.0),
        ..SimSettings::default()
    };
    let spec = WorldSpec {
        groups_per_instance: 2,
        topics_per_group: 120,
        partitions_per_topic: 1,
        ..WorldSpec::default()
    };
    let client = Client {
        retry: RetryPolicy {
            max_retries: 20,
            ..RetryPolicy::default()
        },
        ..Client::default()
    };
    let h = Harness::start(settings, spec, client).await;
    let start = h.clock.now();
    let deadline = h.deadline();
    for g in [group_name(1), group_name(2)] {
        let got = h
            .provider
            .group_progress(&instance(1), &g, deadline)
            .await
            .unwrap();
        assert_eq!(got.topics.len(), 120, "{g}");
    }
    // Six pages at 2/s with a burst of 2: some were refused and retried after a backoff.
    let refused = h.count("DescribeGroupOffsets", "RequestLimitExceeded");
    assert!(refused > 0);
    assert_eq!(h.count("DescribeGroupOffsets", "ok"), 6);
    assert_eq!(
        h.observer
            .count_prefix("error DescribeGroupOffsets throttled") as u64,
        refused
    );
    assert_eq!(h.observer.count_prefix("retry") as u64, refused);
    let waited = h.clock.now().duration_since(start).unwrap();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(h.clock.instant() < deadline);
}

#[tokio::test(start_paused = true)]
async fn internal_errors_are_retried() {
    let h = Harness::default().await;
    h.inject(Fault::ServerError, 1, "DescribeGroup");
    let groups = h
        .provider
        .list_groups(&instance(1), h.deadline())
        .await
        .unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(h.observer.count_prefix("error DescribeGroup api_error"), 1);
    assert_eq!(h.count("DescribeGroup", "fault:server_error"), 1);
}

#[tokio::test(start_paused = true)]
async fn bad_gateway_is_an_http_error_and_retried() {
    let h = Harness::default().await;
    h.inject(Fault::HttpStatus(502), 1, "DescribeGroupOffsets");
    h.provider
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap();
    assert_eq!(
        h.observer.count_prefix("error DescribeGroupOffsets http"),
        1
    );
    assert_eq!(h.observer.count_prefix("retry"), 1);

    h.inject(Fault::HttpStatus(502), 10, "DescribeGroupOffsets");
    let e = h
        .provider
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Http);
    assert_eq!(e.http_status, Some(502));
    assert!(e.retryable);
    assert!(e.message.contains("502"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn truncated_and_wrongly_shaped_answers_are_bad_responses() {
    let client = Client {
        retry: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        ..Client::default()
    };
    let h = Harness::start(raw_settings(), WorldSpec::default(), client).await;
    h.inject(Fault::Truncated, 2, "DescribeGroupOffsets");
    let e = h
        .provider
        .group_progress(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("malformed"), "{e}");
    assert_eq!(
        h.observer
            .count_prefix("error DescribeGroupOffsets bad_response"),
        2,
        "malformed answers are retried"
    );

    h.inject(Fault::WrongShape, 2, "DescribeInstances");
    let e = h
        .provider
        .list_instances(REGION, h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.request_id.is_some(),
        "the RequestId survives a wrong shape"
    );

    h.inject(Fault::WrongShape, 1, "DescribeGroupInfo");
    h.provider
        .group_info(&instance(1), &group_name(1), h.deadline())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hang_times_out_per_attempt() {
    let client = Client {
        timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        ..Client::default()
    };
    let h = Harness::start(raw_settings(), WorldSpec::default(), client).await;
    // One hang: the second attempt answers.
    h.inject(Fault::Hang, 1, "DescribeGroup");
    let groups = h
        .provider
        .list_groups(&instance(1), h.deadline())
        .await
        .unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(h.observer.count_prefix("error DescribeGroup timeout"), 1);

    h.inject(Fault::Hang, 2, "DescribeGroup");
    let e = h
        .provider
        .list_groups(&instance(1), h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
}

// ---- discovery and group info -----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn list_groups_reads_every_page_in_order() {
    let spec = WorldSpec {
        groups_per_instance: 45,
        topics_per_group: 1,
        partitions_per_topic: 1,
        ..WorldSpec::default()
    };
    let h = Harness::start(raw_settings(), spec, Client::default()).await;
    let groups = h
        .provider
        .list_groups(&instance(1), h.deadline())
        .await
        .unwrap();
    let expected: Vec<String> = (1..=45).map(group_name).collect();
    assert_eq!(groups, expected);
    let pages: Vec<(String, String)> = h
        .log("DescribeGroup")
        .iter()
        .map(|r| (r.params["Offset"].clone(), r.params["Limit"].clone()))
        .collect();
    assert_eq!(
        pages,
        [("0", "20"), ("20", "20"), ("40", "20")].map(|(o, l)| (o.to_string(), l.to_string()))
    );
}

#[tokio::test(start_paused = true)]
async fn list_instances_keeps_running_instances_of_the_region() {
    let spec = WorldSpec {
        instances_per_cloud: 3,
        groups_per_instance: 1,
        ..WorldSpec::default()
    };
    let h = Harness::start(raw_settings(), spec, Client::default()).await;
    h.sim.state().world(|w| {
        w.instance_mut(Cloud::Tencent, &instance_id(Cloud::Tencent, 2))
            .unwrap()
            .status = kcle_sim::world::InstanceStatus::Stopped;
        let mut other = w
            .instance(Cloud::Tencent, &instance_id(Cloud::Tencent, 3))
            .unwrap()
            .clone();
        other.id = "ckafka-elsewhere".into();
        other.region = "ap-shanghai".into();
        w.instances
            .insert((Cloud::Tencent, other.id.clone()), other);
    });
    let found = h
        .provider
        .list_instances(REGION, h.deadline())
        .await
        .unwrap();
    let found: Vec<(String, String)> = found.into_iter().map(|i| (i.instance_id, i.name)).collect();
    assert_eq!(
        found,
        [
            ("ckafka-sim0001", "sim-tencent-1"),
            ("ckafka-sim0003", "sim-tencent-3")
        ]
        .map(|(i, n)| (i.to_string(), n.to_string()))
    );
    let log = h.log("DescribeInstances");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].params["Limit"], "100");
    assert_eq!(log[0].params["Offset"], "0");
}

#[tokio::test(start_paused = true)]
async fn group_info_reports_state_and_members() {
    let h = Harness::default().await;
    let inst = instance(1);
    let info = |g: String| {
        let h = &h;
        let inst = &inst;
        async move { h.provider.group_info(inst, &g, h.deadline()).await }
    };
    assert_eq!(
        info(group_name(1)).await.unwrap(),
        GroupInfo {
            state: GroupState::Stable,
            members: Some(2),
            rebalance: None,
        }
    );
    assert_eq!(
        info(group_name(3)).await.unwrap(),
        GroupInfo {
            state: GroupState::Empty,
            members: Some(0),
            rebalance: None,
        }
    );
    let e = info("no-such-group".into()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("Dead"), "{e}");
    let log = h.log("DescribeGroupInfo");
    assert_eq!(log[0].params["GroupList"], r#"["group-0001"]"#);
    assert_eq!(log[0].group.as_deref(), Some("group-0001"));
}

// ---- resets -----------------------------------------------------------------------------

/// Committed offsets of a group by (topic, partition).
fn committed(h: &Harness, group: &str) -> BTreeMap<(String, i32), Option<i64>> {
    h.expected(&instance_id(Cloud::Tencent, 1), group)
        .topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partitions
                .into_iter()
                .map(move |p| ((topic.clone(), p.partition), p.committed))
        })
        .collect()
}

fn last_body(h: &Harness, action: &str) -> String {
    h.log(action).last().unwrap().raw.clone().unwrap().body
}

#[tokio::test(start_paused = true)]
async fn every_reset_kind_lands_in_the_world() {
    let h = Harness::default().await;
    let inst = instance(1);
    let id = inst.instance_id.to_string();
    let g = group_name(3); // Empty: no members, topics 5 and 6
    let (t5, t6) = ("topic-0005".to_string(), "topic-0006".to_string());
    let reset = |scope: ResetScope, target: ResetTarget| ResetRequest { scope, target };
    let partition = |topic: &str, p: usize| {
        h.sim
            .state()
            .world(|w| w.instance(Cloud::Tencent, &id).unwrap().topics[topic].partitions[p].clone())
    };
    let now = h.now_ms();

    // Latest, all topics: Strategy 1, ShiftTimestamp -1.
    let r = reset(
        ResetScope::AllTopics(vec![t5.clone(), t6.clone()]),
        ResetTarget::Latest,
    );
    h.provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap();
    assert_eq!(
        last_body(&h, "ModifyGroupOffsets"),
        r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":1,"Topics":["topic-0005","topic-0006"],"ShiftTimestamp":-1}"#
    );
    for t in h.expected(&id, &g).topics {
        for p in t.partitions {
            assert_eq!(p.committed, Some(p.log_end), "{} {}", t.topic, p.partition);
        }
    }

    // Earliest, one topic: Strategy 1, ShiftTimestamp -2; the other topic is untouched.
    let before = committed(&h, &g);
    let r = reset(ResetScope::Topic(t5.clone()), ResetTarget::Earliest);
    h.provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap();
    assert_eq!(
        last_body(&h, "ModifyGroupOffsets"),
        r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":1,"Topics":["topic-0005"],"ShiftTimestamp":-2}"#
    );
    let after = committed(&h, &g);
    for ((topic, p), c) in &after {
        if *topic == t5 {
            assert_eq!(*c, Some(partition(topic, *p as usize).earliest));
        } else {
            assert_eq!(*c, before[&(topic.clone(), *p)]);
        }
    }

    // A timestamp: Strategy 1 with the time in ms.
    let ts = now - 120_000;
    let r = reset(ResetScope::Topic(t6.clone()), ResetTarget::Timestamp(ts));
    h.provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap();
    assert_eq!(
        last_body(&h, "ModifyGroupOffsets"),
        format!(
            r#"{{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":1,"Topics":["topic-0006"],"ShiftTimestamp":{ts}}}"#
        )
    );
    for ((topic, p), c) in committed(&h, &g) {
        if topic == t6 {
            assert_eq!(
                c,
                Some(partition(&topic, p as usize).offset_for_time(ts, now))
            );
        }
    }

    // Shift by: Strategy 0 with Shift; every partition moves back by 7.
    let before = committed(&h, &g);
    let r = reset(ResetScope::Topic(t6.clone()), ResetTarget::ShiftBy(-7));
    h.provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap();
    assert_eq!(
        last_body(&h, "ModifyGroupOffsets"),
        r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":0,"Topics":["topic-0006"],"Shift":-7}"#
    );
    for ((topic, p), c) in committed(&h, &g) {
        if topic == t6 {
            assert_eq!(c, before[&(topic.clone(), p)].map(|o| o - 7));
        }
    }

    // Some partitions of a topic: `Partitions` narrows the reset; the others stay.
    let before = committed(&h, &g);
    let r = reset(
        ResetScope::Partitions {
            topic: t6.clone(),
            partitions: vec![0, 2],
        },
        ResetTarget::Latest,
    );
    h.provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap();
    assert_eq!(
        last_body(&h, "ModifyGroupOffsets"),
        r#"{"InstanceId":"ckafka-sim0001","Group":"group-0003","Strategy":1,"Topics":["topic-0006"],"ShiftTimestamp":-1,"Partitions":[0,2]}"#
    );
    let at = h.log("ModifyGroupOffsets").last().unwrap().at_ms;
    for ((topic, p), c) in committed(&h, &g) {
        let expected = if topic == t6 && p != 1 {
            Some(partition(&topic, p as usize).log_end(at))
        } else {
            before[&(topic.clone(), p)]
        };
        assert_eq!(c, expected, "{topic}/{p}");
    }

    // Explicit offsets: BatchModifyGroupOffsets.
    let target0 = partition(&t5, 0).earliest + 11;
    let target2 = partition(&t5, 2).earliest + 22;
    let r = reset(
        ResetScope::Topic(t5.clone()),
        ResetTarget::Offsets(vec![(0, target0), (2, target2)]),
    );
    h.provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap();
    assert_eq!(
        last_body(&h, "BatchModifyGroupOffsets"),
        format!(
            r#"{{"GroupName":"group-0003","InstanceId":"ckafka-sim0001","Partitions":[{{"Partition":0,"Offset":{target0}}},{{"Partition":2,"Offset":{target2}}}],"TopicName":["topic-0005"]}}"#
        )
    );
    let after = committed(&h, &g);
    assert_eq!(after[&(t5.clone(), 0)], Some(target0));
    assert_eq!(after[&(t5.clone(), 2)], Some(target2));
    assert_eq!(h.count("ModifyGroupOffsets", "ok"), 5);
    assert_eq!(h.count("BatchModifyGroupOffsets", "ok"), 1);
    let shift = reset(ResetScope::Topic(t5.clone()), ResetTarget::ShiftBy(1));
    assert_eq!(h.provider.reset_calls(&shift), Some(vec![shift.clone()]));
}

#[tokio::test(start_paused = true)]
async fn a_reset_of_an_active_group_is_refused_and_changes_nothing() {
    let h = Harness::default().await;
    let inst = instance(1);
    let g = group_name(1); // Stable, two members
    let before = committed(&h, &g);
    let r = ResetRequest {
        scope: ResetScope::AllTopics(vec!["topic-0001".into(), "topic-0002".into()]),
        target: ResetTarget::Earliest,
    };
    let e = h
        .provider
        .reset_offsets(&inst, &g, &r, h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ApiError);
    assert_eq!(e.code.as_deref(), Some("FailedOperation"));
    assert!(e.message.contains("active members"), "{e}");
    assert!(!e.retryable);
    assert_eq!(committed(&h, &g), before);
}

#[tokio::test(start_paused = true)]
async fn writes_are_sent_once_even_when_retryable() {
    let h = Harness::default().await;
    h.inject(Fault::ServerError, 1, "ModifyGroupOffsets");
    let r = ResetRequest {
        scope: ResetScope::Topic("topic-0005".into()),
        target: ResetTarget::Latest,
    };
    let e = h
        .provider
        .reset_offsets(&instance(1), &group_name(3), &r, h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("InternalError"));
    assert!(e.retryable, "retryable, yet not retried");
    assert_eq!(h.observer.count_prefix("request ModifyGroupOffsets"), 1);
    assert_eq!(h.observer.count_prefix("retry"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_non_zero_return_code_is_an_error() {
    let h = Harness::default().await;
    let g = group_name(3);
    let before = committed(&h, &g);
    let r = ResetRequest {
        scope: ResetScope::Topic("topic-0005".into()),
        target: ResetTarget::Offsets(vec![(0, 10), (1, i64::MAX / 2)]),
    };
    let e = h
        .provider
        .reset_offsets(&instance(1), &g, &r, h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ApiError);
    assert_eq!(e.code.as_deref(), Some("ReturnCode 1"));
    assert!(e.message.contains("outside"), "{e}");
    assert!(e.request_id.is_some());
    assert_eq!(e.http_status, Some(200));
    assert_eq!(h.count("BatchModifyGroupOffsets", "ReturnCode:1"), 1);
    assert_eq!(committed(&h, &g), before, "a refused batch changes nothing");
}

#[tokio::test(start_paused = true)]
async fn explicit_offsets_without_a_topic_are_refused_before_sending() {
    let h = Harness::default().await;
    let r = ResetRequest {
        scope: ResetScope::AllTopics(vec!["topic-0005".into(), "topic-0006".into()]),
        target: ResetTarget::Offsets(vec![(0, 10)]),
    };
    let e = h
        .provider
        .reset_offsets(&instance(1), &group_name(3), &r, h.deadline())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ApiError);
    assert!(e.message.contains("single topic"), "{e}");
    let writes = h
        .sim
        .state()
        .requests()
        .iter()
        .filter(|r| is_write_action(&r.action))
        .count();
    assert_eq!(writes, 0);
    assert_eq!(h.observer.count_prefix("request"), 0);
}

// ---- malformed paging -------------------------------------------------------------------

/// A server that answers every request with the same CKafka `Result`, for answers the
/// simulator never gives. Returns its endpoint and a request counter.
async fn canned_server(result: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Read the head and the announced body, then answer and close.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body =
                    format!(r#"{{"Response":{{"Result":{result},"RequestId":"canned-1"}}}}"#);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (endpoint, count)
}

/// The provider under test, for `endpoint`.
fn provider_for(
    endpoint: String,
    clock: Clock,
    client: &Client,
    observer: Arc<Counting>,
) -> TencentProvider {
    let deps = ProviderDeps {
        http: http::client(),
        clock: clock.clone(),
        observer,
        attempt_timeout: client.timeout,
        retry: client.retry,
        budget: std::sync::Arc::new(
            kafka_cloud_lag_exporter::providers::budget::Budget::unlimited(),
        ),
    };
    let spec = AccountSpec {
        name: "tc".into(),
        cloud: Cloud::Tencent,
        region: REGION.into(),
        endpoint,
        credentials: CredentialProvider::new(
            CredentialSources::inline(&client.id, &client.secret, client.token.as_deref()),
            clock.clone(),
        ),
        signature_version: SignatureVersion::default(),
    };
    TencentProvider::new(spec, &deps)
}

#[tokio::test(start_paused = true)]
async fn an_empty_page_before_the_total_is_a_bad_response() {
    let (endpoint, count) = canned_server(r#"{"TotalCount":5,"TopicList":[]}"#).await;
    let clock = Clock::virtual_at_unix(START_S);
    let client = Client {
        retry: RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        },
        ..Client::default()
    };
    let provider = provider_for(endpoint, clock.clone(), &client, Arc::default());
    let e = provider
        .group_progress(&instance(1), "g", clock.instant() + Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("empty page at offset 0 of 5"), "{e}");
    assert_eq!(e.request_id.as_deref(), Some("canned-1"));
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "retried like any malformed answer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_total_that_is_never_reached_stops_after_the_page_limit() {
    // One topic per page, always the same, and a total that pages never reach.
    let (endpoint, count) =
        canned_server(r#"{"TotalCount":100000000,"TopicList":[{"Topic":"t","Partitions":[]}]}"#)
            .await;
    let clock = Clock::virtual_at_unix(START_S);
    let provider = provider_for(endpoint, clock.clone(), &Client::default(), Arc::default());
    let e = provider
        .group_progress(&instance(1), "g", clock.instant() + Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("after 1000 pages"), "{e}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1000);
}

/// Every lifecycle status of the simulator, answered with the cloud's own code: instances
/// that may serve traffic (also while upgrading, migrating, scaling or about to expire)
/// are kept; those that cannot (creating, failed, stopped, expired, released, deleting)
/// are not.
#[tokio::test(start_paused = true)]
async fn list_instances_keeps_every_instance_that_serves_traffic() {
    use kcle_sim::world::InstanceStatus;
    let h = Harness::start(
        raw_settings(),
        WorldSpec {
            instances_per_cloud: 11,
            groups_per_instance: 1,
            ..WorldSpec::default()
        },
        Client::default(),
    )
    .await;
    let statuses = InstanceStatus::ALL;
    h.sim.state().world(|w| {
        for (i, status) in statuses.iter().enumerate() {
            w.instance_mut(Cloud::Tencent, &instance_id(Cloud::Tencent, i + 1))
                .unwrap()
                .status = *status;
        }
    });
    let found: Vec<String> = h
        .provider
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
        .map(|(i, _)| instance_id(Cloud::Tencent, i + 1))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        expected.len(),
        5,
        "running, upgrading, migrating, scaling, expiring"
    );
}

/// A SecretId or token with a byte an HTTP header cannot carry is a configuration error
/// naming the account and the part at fault: nothing is sent and nothing is retried.
#[tokio::test(start_paused = true)]
async fn unsendable_credentials_are_a_configuration_error_never_retried() {
    for (id, token, part) in [
        ("AKID\u{7f}bad", None, "credential id"),
        (SECRET_ID, Some("tok\nen"), "credential token"),
    ] {
        let h = Harness::start(
            raw_settings(),
            WorldSpec::default(),
            Client {
                id: id.into(),
                token: token.map(str::to_string),
                ..Client::default()
            },
        )
        .await;
        let e = h
            .provider
            .group_progress(&instance(1), &group_name(1), h.deadline())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Credentials, "{e}");
        assert!(!e.retryable);
        assert!(e.message.contains("account tc"), "{e}");
        assert!(e.message.contains(part), "{e}");
        assert!(
            h.sim.state().requests().is_empty(),
            "nothing reached the cloud"
        );
        assert_eq!(h.observer.count("retry DescribeGroupOffsets"), 0);
    }
}

//! The Tencent Cloud CKafka provider (API 2019-08-19): consumer-group progress from
//! `DescribeGroupOffsets` (every topic page), group and instance discovery
//! (`DescribeGroup`, `DescribeInstances`), group state (`DescribeGroupInfo`), topic
//! retention (`DescribeTopicAttributes`) and offset resets (`ModifyGroupOffsets`,
//! `BatchModifyGroupOffsets`).
//!
//! It owns CKafka's request shape (`POST /` with a compact JSON body, `X-TC-*` headers,
//! TC3 signature over `content-type;host`), the conversion of answers into `model` types
//! and the mapping of Tencent error codes onto [`ErrorKind`]. It must not sleep, retry or
//! count on its own ([`Caller`] does), and it never puts a secret, token, signature or the
//! `Authorization` header into an error or a log line.

pub use kcle_cloud::tencent::sign;
pub mod credentials;
mod wire;

use std::collections::HashSet;
use std::time::Duration;

use kcle_clock::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::call::Caller;
use super::http::{HttpRequest, InvalidHeader, send};
use super::{
    AccountSpec, ErrorKind, OffsetWriter, Profile, Provider, ProviderDeps, ProviderError,
    ProviderFuture, RetentionScope,
};
use crate::credentials::CredentialEnv;
use crate::model::{
    Cloud, DiscoveredInstance, GroupInfo, GroupProgress, GroupState, InstanceRef,
    PartitionProgress, ResetRequest, ResetScope, ResetTarget, TopicProgress,
};
use kcle_clock::unix_secs;

pub use kcle_cloud::tencent::{
    API_VERSION, BATCH_MODIFY_GROUP_OFFSETS, DESCRIBE_GROUP, DESCRIBE_GROUP_INFO,
    DESCRIBE_GROUP_OFFSETS, DESCRIBE_INSTANCES, DESCRIBE_TOPIC_ATTRIBUTES,
    FETCH_MESSAGE_LIST_BY_OFFSET, MODIFY_GROUP_OFFSETS, SERVICE,
};

/// Tencent's facts for the rest of the exporter.
pub static PROFILE: Profile = Profile {
    cloud: Cloud::Tencent,
    default_endpoint: "https://ckafka.tencentcloudapi.com",
    // The official SDKs read no token variable; these are the names other tools use,
    // `TENCENTCLOUD_SESSION_TOKEN` first (reference C2).
    credential_env: CredentialEnv {
        id: "TENCENTCLOUD_SECRET_ID",
        secret: "TENCENTCLOUD_SECRET_KEY",
        token: &[
            "TENCENTCLOUD_SESSION_TOKEN",
            "TENCENTCLOUD_SECURITY_TOKEN",
            "TENCENTCLOUD_TOKEN",
        ],
    },
    credential_variables: credentials::VARIABLES,
    session_duration: (
        Duration::from_secs(kcle_cloud::tencent::sts::MIN_SESSION_SECS),
        Duration::from_secs(kcle_cloud::tencent::sts::MAX_SESSION_SECS),
    ),
    actions: kcle_cloud::tencent::ACTIONS,
    // BatchModifyGroupOffsets has no published limit: the smaller documented figure.
    fallback_rate: 20.0,
    poll_action: DESCRIBE_GROUP_OFFSETS,
    selectable_signature: false,
    requests_per_poll: offsets_pages,
    group_info_batch: Some(GROUP_INFO_BATCH),
    probe_action: Some(FETCH_MESSAGE_LIST_BY_OFFSET),
    retention: Some((RetentionScope::Topic, DESCRIBE_TOPIC_ATTRIBUTES)),
};

/// Groups per `DescribeGroupInfo` call (`GroupList`). No maximum is documented; ten keeps
/// an answer small while dividing the calls by ten.
const GROUP_INFO_BATCH: usize = 10;

/// `DescribeGroupOffsets` pages one poll of a group needs: 50 topics a page, at least one.
fn offsets_pages(last: Option<&GroupProgress>) -> usize {
    last.map_or(1, |p| p.topics.len().div_ceil(OFFSETS_PAGE as usize).max(1))
}
/// The content type we send and sign. Signed byte for byte, so it must not vary.
const JSON: &str = "application/json";

/// Topics per `DescribeGroupOffsets` page: the documented default and maximum.
const OFFSETS_PAGE: i64 = 50;
/// Groups per `DescribeGroup` page: the documented default. The maximum is not published,
/// so we do not go above it.
const GROUPS_PAGE: i64 = 20;
/// Instances per `DescribeInstances` page: the documented maximum.
const INSTANCES_PAGE: i64 = 100;
/// A bound on pages per listing, so that a server that keeps announcing more items than
/// it returns cannot keep a poll looping.
const MAX_PAGES: usize = 1_000;

/// Where requests go: the endpoint's `/` and the `Host` value reqwest sends for it.
#[derive(Debug)]
struct Target {
    url: reqwest::Url,
    /// Host with the port when it is not the scheme's default, exactly as sent (and signed).
    host: String,
}

impl Target {
    fn parse(endpoint: &str) -> Result<Target, String> {
        let url = reqwest::Url::parse(&format!("{}/", endpoint.trim_end_matches('/')))
            .map_err(|e| format!("tencent endpoint {endpoint:?} is not a URL: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("tencent endpoint {endpoint:?} has no host"))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Target { url, host })
    }
}

/// The CKafka provider of one account.
#[derive(Debug)]
pub struct TencentProvider {
    spec: AccountSpec,
    http: reqwest::Client,
    caller: Caller,
    /// The parsed endpoint, or why it could not be parsed (reported by every call).
    target: Result<Target, String>,
}

impl TencentProvider {
    pub fn new(spec: AccountSpec, deps: &ProviderDeps) -> Self {
        let target = Target::parse(&spec.endpoint);
        TencentProvider {
            spec,
            http: deps.http.clone(),
            caller: Caller::new(Cloud::Tencent, deps),
            target,
        }
    }

    /// Signs and sends one attempt of `action` and decodes its `Result`.
    async fn send<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &str,
        body: &impl Serialize,
    ) -> Result<Reply<T>, ProviderError> {
        let target = self.target.as_ref().map_err(|e| {
            ProviderError::new(ErrorKind::Connection, format!("{action}: {e}")).retryable(false)
        })?;
        let creds = self.spec.credentials().await?;
        let payload = serde_json::to_vec(body).expect("request bodies serialize");
        // Each attempt is signed anew: the timestamp must be within 5 minutes when it lands.
        let timestamp = unix_secs(self.caller.clock().now());
        let signed = sign::sign(
            &sign::Request {
                method: "POST",
                headers: &[("content-type", JSON), ("host", &target.host)],
                payload: &payload,
                timestamp,
                service: SERVICE,
            },
            &creds.id,
            creds.secret.expose(),
        )
        .map_err(|e| {
            ProviderError::new(ErrorKind::Auth, format!("{action}: cannot sign: {e}"))
                .retryable(false)
        })?;
        let request = http_request(
            action,
            region,
            target,
            timestamp,
            &signed,
            creds.token.as_ref(),
            payload,
        )
        .map_err(|e| self.unsendable(action, e))?;
        let (status, _, bytes) = send(&self.http, request).await?;
        decode(action, status, &bytes)
    }

    /// Makes sure the account has credentials before `action` is sent (see
    /// [`AccountSpec::credentials_by`]).
    async fn ready(&self, action: &'static str, deadline: Instant) -> Result<(), ProviderError> {
        self.spec
            .credentials_by(self.caller.clock(), deadline)
            .await
            .map(|_| ())
            .map_err(|e| e.with_action(action))
    }

    /// A request that cannot be sent because a value is not valid in an HTTP header: a
    /// configuration error naming the account and the part at fault, never retried.
    fn unsendable(&self, action: &str, e: InvalidHeader) -> ProviderError {
        let part = match e.name {
            "authorization" => "the SecretId",
            "x-tc-token" => "the session token",
            "x-tc-region" => "the region",
            "host" => "the endpoint host",
            other => other,
        };
        ProviderError::new(
            ErrorKind::Credentials,
            format!(
                "{action}: account {}: {part} contains a character that cannot be sent in an HTTP header (a newline or control character?); check its source",
                self.spec.name
            ),
        )
        .retryable(false)
    }

    /// Reads every page of an `Offset`/`Limit` listing until `Offset >= TotalCount`.
    ///
    /// `split` turns a page's `Result` into (TotalCount, items). The offset advances by the
    /// items actually returned, so a short page does not skip anything. An empty page
    /// before `TotalCount` is a malformed answer (retried like one); [`MAX_PAGES`] bounds
    /// the loop.
    async fn read_all<R, P, I>(
        &self,
        action: &'static str,
        region: &str,
        deadline: Instant,
        request: impl Fn(i64) -> R,
        split: impl Fn(P) -> (i64, Vec<I>),
    ) -> Result<Vec<I>, ProviderError>
    where
        R: Serialize,
        P: DeserializeOwned,
    {
        self.ready(action, deadline).await?;
        let mut items = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let body = request(offset);
            let (total, page) = self
                .caller
                .call(action, deadline, || {
                    let (body, split) = (&body, &split);
                    async move {
                        let reply: Reply<P> = self.send(action, region, body).await?;
                        let (total, page) = split(reply.result);
                        if page.is_empty() && offset < total {
                            return Err(bad_response(format!(
                                "{action}: empty page at offset {offset} of {total}"
                            ))
                            .with_status(200)
                            .with_request_id(reply.request_id));
                        }
                        Ok((total, page))
                    }
                })
                .await?;
            offset += page.len() as i64;
            items.extend(page);
            if offset >= total {
                return Ok(items);
            }
        }
        Err(bad_response(format!(
            "{action}: still more items after {MAX_PAGES} pages ({offset} read)"
        )))
    }

    /// One write call, never retried; a non-"0" `ReturnCode` is an error.
    async fn write(
        &self,
        action: &'static str,
        region: &str,
        body: &impl Serialize,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        self.ready(action, deadline).await?;
        self.caller
            .call_once(action, deadline, || async move {
                let reply: Reply<wire::JgwOperateResponse> =
                    self.send(action, region, body).await?;
                let r = reply.result;
                if r.return_code == wire::RETURN_OK {
                    return Ok(());
                }
                Err(ProviderError::new(
                    ErrorKind::ApiError,
                    format!(
                        "{action}: not applied: {}",
                        r.return_message.as_deref().unwrap_or("no message")
                    ),
                )
                .with_code(format!("ReturnCode {}", r.return_code))
                .with_status(200)
                .with_request_id(reply.request_id)
                .retryable(false))
            })
            .await
    }
}

/// The request of one attempt: CKafka's `X-TC-*` headers, the signature and the session
/// token marked sensitive (never shown in `Debug`), and the signed body.
fn http_request(
    action: &str,
    region: &str,
    target: &Target,
    timestamp: i64,
    signed: &sign::Signed,
    token: Option<&crate::credentials::Secret>,
    payload: Vec<u8>,
) -> Result<HttpRequest, InvalidHeader> {
    let mut request = HttpRequest::post(target.url.clone())
        .header("content-type", JSON)?
        .header("host", &target.host)?
        .header("x-tc-action", action)?
        .header("x-tc-version", API_VERSION)?
        .header("x-tc-region", region)?
        .header("x-tc-timestamp", &timestamp.to_string())?
        .secret_header("authorization", &signed.authorization)?;
    if let Some(token) = token {
        request = request.secret_header("x-tc-token", token.expose())?;
    }
    Ok(request.with_body(payload))
}

/// A decoded `Result` with the answer's RequestId.
#[derive(Debug)]
struct Reply<T> {
    result: T,
    request_id: Option<String>,
}

fn bad_response(message: String) -> ProviderError {
    ProviderError::new(ErrorKind::BadResponse, message).retryable(true)
}

/// Turns one HTTP answer into the operation's `Result` or a classified error.
///
/// API errors come with HTTP 200 and `Response.Error`; any other status is a transport
/// failure (the official SDK treats it the same way), retryable when it is a 5xx or 429.
fn decode<T: DeserializeOwned>(
    action: &str,
    status: u16,
    bytes: &[u8],
) -> Result<Reply<T>, ProviderError> {
    let parsed = serde_json::from_slice::<wire::Envelope>(bytes);
    if status != 200 {
        let (error, request_id) = match parsed {
            Ok(env) => (env.response.error, env.response.request_id),
            Err(_) => (None, None),
        };
        if let Some(error) = error {
            return Err(classify(action, &error)
                .with_status(status)
                .with_request_id(request_id));
        }
        return Err(ProviderError::new(
            ErrorKind::Http,
            format!("{action}: http status {status}: {}", snippet(bytes)),
        )
        .with_status(status)
        .with_request_id(request_id)
        .retryable(status >= 500 || status == 429));
    }
    let body = parsed
        .map_err(|e| bad_response(format!("{action}: malformed answer: {e}")).with_status(status))?
        .response;
    if let Some(error) = body.error {
        return Err(classify(action, &error)
            .with_status(status)
            .with_request_id(body.request_id));
    }
    let result = body.result.unwrap_or(serde_json::Value::Null);
    match serde_json::from_value::<T>(result) {
        Ok(result) => Ok(Reply {
            result,
            request_id: body.request_id,
        }),
        Err(e) => Err(bad_response(format!("{action}: unexpected Result: {e}"))
            .with_status(status)
            .with_request_id(body.request_id)),
    }
}

/// The start of a non-JSON body (a gateway's error page), on one line.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text
        .chars()
        .take(120)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 120 {
        s.push_str("...");
    }
    let s = s.trim().to_string();
    if s.is_empty() { "empty body".into() } else { s }
}

/// Maps a Tencent error code onto a kind and whether to retry (reference B5).
fn classify(action: &str, error: &wire::ApiError) -> ProviderError {
    let code = error.code.as_str();
    let (kind, retryable) = if code.starts_with("RequestLimitExceeded") {
        (ErrorKind::Throttled, true)
    } else if code.starts_with("InternalError") || code.starts_with("ResourceUnavailable") {
        (ErrorKind::ApiError, true)
    } else if code.starts_with("AuthFailure") || code.starts_with("UnauthorizedOperation") {
        (ErrorKind::Auth, false)
    } else if is_not_found(code) {
        (ErrorKind::NotFound, false)
    } else {
        (ErrorKind::ApiError, false)
    };
    // Tencent's messages are sentences; ours end without a period.
    let said = error.message.trim().trim_end_matches('.');
    let message = match auth_hint(code) {
        Some(hint) if kind == ErrorKind::Auth => format!("{action}: {hint} (tencent: {said})"),
        None if code.contains("UnauthorizedOperation") => format!(
            "{action}: not permitted: check that the CAM policy allows ckafka:{action} (tencent: {said})"
        ),
        None if kind == ErrorKind::Auth => {
            format!("{action}: authentication failed (tencent: {said})")
        }
        _ => format!("{action}: {said}"),
    };
    ProviderError::new(kind, message)
        .with_code(code)
        .retryable(retryable)
}

/// Codes that mean the instance or group does not exist.
///
/// `InvalidParameterValue.InstanceNotExist` is CKafka's documented code for an unknown
/// instance (also answered when the instance is in another region than `X-TC-Region`).
/// For an unknown group Tencent documents no code: the per-API error lists of
/// `DescribeGroupOffsets`, `DescribeGroupInfo` and `ModifyGroupOffsets` (SDK
/// `client.go`) name none, and CKafka's `errorcodes.py` has only the generic
/// `ResourceNotFound`. We take `ResourceNotFound*` (the simulator answers it), while
/// `DescribeGroupInfo` reports an unknown group as state `Dead`, which the SDK documents
/// as "the consumer group does not exist".
fn is_not_found(code: &str) -> bool {
    code == "InvalidParameterValue.InstanceNotExist" || code.starts_with("ResourceNotFound")
}

/// What to check for an auth failure, by code.
fn auth_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AuthFailure.SecretIdNotFound" | "AuthFailure.InvalidSecretId" => {
            "the SecretId is unknown, disabled or deleted: check the SecretId"
        }
        "AuthFailure.SignatureFailure" => "signature mismatch: check the SecretKey",
        "AuthFailure.SignatureExpire" => {
            "the request time is more than 5 minutes off the server's: check the system clock"
        }
        "AuthFailure.TokenFailure" => {
            "the session token was rejected: check the session token (expired, or not issued with this SecretId)"
        }
        "AuthFailure.InvalidAuthorization" => "the Authorization header was rejected as malformed",
        "AuthFailure.MFAFailure" => "multi-factor authentication failed",
        _ => return None,
    })
}

/// The topics of every `DescribeGroupOffsets` page as the group's progress.
fn group_progress(topics: Vec<wire::GroupOffsetTopic>) -> GroupProgress {
    let topics = dedup_by_key(topics, |t| &t.topic);
    let mut progress = GroupProgress {
        topics: topics.into_iter().map(topic_progress).collect(),
        info: None,
    };
    progress.normalize();
    progress
}

/// A successful one-page `DescribeGroupOffsets` answer body as a poll reads it: the same
/// decoding and conversion, without the request. For `cargo bench --bench hot_paths`.
#[doc(hidden)]
pub fn parse_group_offsets(body: &[u8]) -> Result<GroupProgress, ProviderError> {
    let reply: Reply<wire::GroupOffsetResponse> = decode(DESCRIBE_GROUP_OFFSETS, 200, body)?;
    Ok(group_progress(reply.result.topic_list))
}

/// One topic of `DescribeGroupOffsets` as model progress.
///
/// A partition has no committed offset when Tencent reports `Offset` < 0 (Kafka's -1 for
/// "never committed") or a non-zero `ErrorCode` (its offsets are not valid). Tencent's
/// `Lag` is not used: lag is recomputed downstream from the two offsets.
fn topic_progress(topic: wire::GroupOffsetTopic) -> TopicProgress {
    TopicProgress {
        topic: topic.topic,
        partitions: topic
            .partitions
            .into_iter()
            .map(|p| PartitionProgress {
                partition: p.partition,
                committed: (p.error_code == 0 && p.offset >= 0).then_some(p.offset),
                log_end: p.log_end_offset,
                last_consumed_ms: None,
                time_lag: None,
            })
            .collect(),
    }
}

/// The request a reset becomes.
#[derive(Debug)]
enum ResetCall<'a> {
    Modify(wire::ModifyGroupOffsetsRequest<'a>),
    Batch(wire::BatchModifyGroupOffsetsRequest<'a>),
}

fn invalid_reset(message: &str) -> ProviderError {
    ProviderError::new(ErrorKind::ApiError, format!("reset offsets: {message}")).retryable(false)
}

/// Translates a reset into `ModifyGroupOffsets` (Strategy 0 or 1) or, for explicit
/// offsets, `BatchModifyGroupOffsets`. Requests CKafka would misread are refused here,
/// before anything is sent.
fn reset_call<'a>(
    instance_id: &'a str,
    group: &'a str,
    request: &'a ResetRequest,
) -> Result<ResetCall<'a>, ProviderError> {
    if let ResetTarget::Offsets(list) = &request.target {
        let ResetScope::Topic(topic) = &request.scope else {
            return Err(invalid_reset("explicit offsets need a single topic"));
        };
        if list.is_empty() {
            return Err(invalid_reset("no partition offsets given"));
        }
        return Ok(ResetCall::Batch(wire::BatchModifyGroupOffsetsRequest {
            group_name: group,
            instance_id,
            partitions: list
                .iter()
                .map(|(partition, offset)| wire::PartitionOffset {
                    partition: *partition,
                    offset: *offset,
                })
                .collect(),
            topic_name: [topic.as_str()],
        }));
    }
    // The current documentation marks `Topics` required, so "all topics" is sent as the
    // list the group's progress showed. `Partitions` narrows every listed topic, so a
    // partition subset is sent for one topic at a time.
    let (topics, partitions) = match &request.scope {
        ResetScope::AllTopics(list) | ResetScope::Topics(list) if list.is_empty() => {
            return Err(invalid_reset("the group has no topics to reset"));
        }
        ResetScope::AllTopics(list) | ResetScope::Topics(list) => (list.as_slice(), None),
        ResetScope::Topic(topic) => (std::slice::from_ref(topic), None),
        ResetScope::Partitions { partitions, .. } if partitions.is_empty() => {
            return Err(invalid_reset("no partitions given"));
        }
        ResetScope::Partitions { topic, partitions } => {
            (std::slice::from_ref(topic), Some(partitions.as_slice()))
        }
    };
    let (strategy, shift, shift_timestamp) = match &request.target {
        ResetTarget::Latest => (
            wire::STRATEGY_TIMESTAMP,
            None,
            Some(wire::SHIFT_TIMESTAMP_LATEST),
        ),
        ResetTarget::Earliest => (
            wire::STRATEGY_TIMESTAMP,
            None,
            Some(wire::SHIFT_TIMESTAMP_EARLIEST),
        ),
        // -1 and -2 mean latest and earliest, so a negative time cannot be expressed.
        ResetTarget::Timestamp(ms) if *ms < 0 => {
            return Err(invalid_reset("the timestamp must not be before 1970"));
        }
        ResetTarget::Timestamp(ms) => (wire::STRATEGY_TIMESTAMP, None, Some(*ms)),
        ResetTarget::ShiftBy(n) => (wire::STRATEGY_SHIFT, Some(*n), None),
        ResetTarget::Offsets(_) => unreachable!("handled above"),
    };
    Ok(ResetCall::Modify(wire::ModifyGroupOffsetsRequest {
        instance_id,
        group,
        strategy,
        topics,
        shift,
        shift_timestamp,
        partitions,
    }))
}

/// The calls CKafka needs for a reset: one, except that explicit offsets are sent for one
/// topic at a time (`BatchModifyGroupOffsets` applies its partition list to every topic it
/// names), which the caller splits.
fn reset_calls(request: &ResetRequest) -> Option<Vec<ResetRequest>> {
    match (&request.scope, &request.target) {
        (ResetScope::Topic(_), ResetTarget::Offsets(_)) => Some(vec![request.clone()]),
        (_, ResetTarget::Offsets(_)) => None,
        _ => Some(vec![request.clone()]),
    }
}

/// Whether discovery keeps an instance with this CKafka `Instance.Status`.
///
/// | Status | Meaning | Kept |
/// |---|---|---|
/// | -1 | create failed | no |
/// | 0 | creating | no |
/// | 1 | running | yes |
/// | 2 | deleting | no |
/// | 3 | deleted | no |
/// | 4 | delete failed (still running) | yes |
/// | 5 | isolating (stopped, e.g. payment overdue) | no |
/// | 7 | upgrading (also spec changes) | yes |
/// | other or absent | a status this table does not know | yes |
///
/// Source: the `Status` field of `Instance` in the official SDK models
/// (`tencentcloud-sdk-python-ckafka` 3.1.195 and `tencentcloud-sdk-go`, `DescribeInstances`).
/// Every instance that may serve traffic is kept, so that maintenance never removes its
/// series; one that does not just fails its polls, which `group_up` shows.
fn serves_traffic(status: Option<i64>) -> bool {
    !matches!(status, Some(-1 | 0 | 2 | 3 | 5))
}

/// First occurrence wins, order kept: a listing that shifts between pages may repeat items.
fn dedup_by_key<T>(items: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if seen.insert(key(&item).to_string()) {
            out.push(item);
        }
    }
    out
}

impl Provider for TencentProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Tencent
    }

    fn group_progress<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, GroupProgress> {
        Box::pin(async move {
            let topics = self
                .read_all(
                    DESCRIBE_GROUP_OFFSETS,
                    &instance.region,
                    deadline,
                    |offset| wire::DescribeGroupOffsetsRequest {
                        instance_id: &instance.instance_id,
                        group,
                        offset,
                        limit: OFFSETS_PAGE,
                    },
                    |page: wire::GroupOffsetResponse| (page.total_count, page.topic_list),
                )
                .await?;
            Ok(group_progress(topics))
        })
    }

    fn list_groups<'a>(
        &'a self,
        instance: &'a InstanceRef,
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<String>> {
        Box::pin(async move {
            let groups = self
                .read_all(
                    DESCRIBE_GROUP,
                    &instance.region,
                    deadline,
                    |offset| wire::DescribeGroupRequest {
                        instance_id: &instance.instance_id,
                        offset,
                        limit: GROUPS_PAGE,
                    },
                    |page: wire::GroupResponse| {
                        let groups = page.group_list.into_iter().map(|g| g.group).collect();
                        (page.total_count, groups)
                    },
                )
                .await?;
            Ok(dedup_by_key(groups, |g| g))
        })
    }

    fn list_instances<'a>(
        &'a self,
        region: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<DiscoveredInstance>> {
        Box::pin(async move {
            let instances = self
                .read_all(
                    DESCRIBE_INSTANCES,
                    region,
                    deadline,
                    |offset| wire::DescribeInstancesRequest {
                        offset,
                        limit: INSTANCES_PAGE,
                    },
                    |page: wire::InstanceResponse| (page.total_count, page.instance_list),
                )
                .await?;
            let running = instances
                .into_iter()
                .filter(|i| serves_traffic(i.status))
                .map(|i| DiscoveredInstance {
                    instance_id: i.instance_id,
                    name: i.instance_name,
                })
                .collect();
            Ok(dedup_by_key(running, |i: &DiscoveredInstance| {
                &i.instance_id
            }))
        })
    }

    fn group_info<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, GroupInfo> {
        const ACTION: &str = DESCRIBE_GROUP_INFO;
        Box::pin(async move {
            let body = wire::DescribeGroupInfoRequest {
                instance_id: &instance.instance_id,
                group_list: &[group],
            };
            self.ready(ACTION, deadline).await?;
            self.caller
                .call(ACTION, deadline, || {
                    let body = &body;
                    async move {
                        let reply: Reply<wire::GroupInfoResult> =
                            self.send(ACTION, &instance.region, body).await?;
                        group_info(group, reply)
                    }
                })
                .await
        })
    }

    fn group_infos<'a>(
        &'a self,
        instance: &'a InstanceRef,
        groups: &'a [&'a str],
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<(String, GroupInfo)>> {
        const ACTION: &str = DESCRIBE_GROUP_INFO;
        Box::pin(async move {
            let body = wire::DescribeGroupInfoRequest {
                instance_id: &instance.instance_id,
                group_list: groups,
            };
            self.ready(ACTION, deadline).await?;
            self.caller
                .call(ACTION, deadline, || {
                    let body = &body;
                    async move {
                        let reply: Reply<wire::GroupInfoResult> =
                            self.send(ACTION, &instance.region, body).await?;
                        Ok(group_infos(reply))
                    }
                })
                .await
        })
    }

    fn message_time<'a>(
        &'a self,
        instance: &'a InstanceRef,
        topic: &'a str,
        partition: i32,
        offset: i64,
        deadline: Instant,
    ) -> ProviderFuture<'a, Option<i64>> {
        const ACTION: &str = FETCH_MESSAGE_LIST_BY_OFFSET;
        Box::pin(async move {
            let body = wire::FetchMessageListByOffsetRequest {
                instance_id: &instance.instance_id,
                topic,
                partition,
                offset,
                single_partition_record_number: 1,
            };
            self.ready(ACTION, deadline).await?;
            self.caller
                .call(ACTION, deadline, || {
                    let body = &body;
                    async move {
                        let reply: Reply<wire::MessageListResult> =
                            self.send(ACTION, &instance.region, body).await?;
                        // The record at the offset asked for, if the log still has it (a
                        // compacted or expired offset answers the next one, or nothing).
                        Ok(reply
                            .result
                            .unwrap_or_default()
                            .iter()
                            .find(|r| r.offset == offset && r.partition == partition)
                            .and_then(|r| r.timestamp)
                            .filter(|t| *t > 0))
                    }
                })
                .await
        })
    }

    fn topic_retention<'a>(
        &'a self,
        instance: &'a InstanceRef,
        topic: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, Option<std::time::Duration>> {
        const ACTION: &str = DESCRIBE_TOPIC_ATTRIBUTES;
        Box::pin(async move {
            let body = wire::DescribeTopicAttributesRequest {
                instance_id: &instance.instance_id,
                topic_name: topic,
            };
            self.caller
                .call(ACTION, deadline, || {
                    let body = &body;
                    async move {
                        let reply: Reply<wire::TopicAttributesResponse> =
                            self.send(ACTION, &instance.region, body).await?;
                        Ok(retention_of(reply.result))
                    }
                })
                .await
        })
    }
}

/// A topic's retention from `DescribeTopicAttributes`: `Config.Retention` in
/// milliseconds; absent, null or not positive (as `-1`, "keep forever", would be) is not
/// a limit we can count down to.
fn retention_of(result: wire::TopicAttributesResponse) -> Option<std::time::Duration> {
    result
        .config
        .and_then(|c| c.retention)
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
}

impl OffsetWriter for TencentProvider {
    fn reset_calls(&self, request: &ResetRequest) -> Option<Vec<ResetRequest>> {
        // Latest, earliest and timestamps are Strategy 1, shifts Strategy 0 (both with
        // `Partitions` for some partitions of a topic), explicit offsets
        // BatchModifyGroupOffsets.
        reset_calls(request)
    }

    fn reset_offsets<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        request: &'a ResetRequest,
        deadline: Instant,
    ) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            match reset_call(&instance.instance_id, group, request)? {
                ResetCall::Modify(body) => {
                    self.write(MODIFY_GROUP_OFFSETS, &instance.region, &body, deadline)
                        .await
                }
                ResetCall::Batch(body) => {
                    self.write(
                        BATCH_MODIFY_GROUP_OFFSETS,
                        &instance.region,
                        &body,
                        deadline,
                    )
                    .await
                }
            }
        })
    }
}

/// Reads one group's entry of `DescribeGroupInfo`.
///
/// `Result` null, the group missing from it, or state `Dead` (which the SDK documents as
/// "the consumer group does not exist") are NotFound. Members are only listed for
/// `Stable` groups, so the count is only given where the list is meaningful.
fn group_info(
    group: &str,
    reply: Reply<wire::GroupInfoResult>,
) -> Result<GroupInfo, ProviderError> {
    const ACTION: &str = DESCRIBE_GROUP_INFO;
    let not_found = |why: &str| {
        ProviderError::new(
            ErrorKind::NotFound,
            format!("{ACTION}: group {group} {why}"),
        )
        .with_status(200)
        .with_request_id(reply.request_id.clone())
        .retryable(false)
    };
    let Some(entries) = &reply.result else {
        return Err(not_found("not found (Result is null)"));
    };
    let Some(entry) = entries.iter().find(|e| e.group == group) else {
        return Err(not_found("not found in the answer"));
    };
    if entry.error_code != "0" {
        // Kafka error codes: 69 is GROUP_ID_NOT_FOUND; 14-16 are coordinator moves that a
        // retry usually gets past.
        let kafka_code = entry.error_code.as_str();
        if kafka_code == "69" {
            return Err(not_found("not found (kafka error 69)"));
        }
        return Err(ProviderError::new(
            ErrorKind::ApiError,
            format!("{ACTION}: group {group}: kafka error code {kafka_code}"),
        )
        .with_status(200)
        .with_request_id(reply.request_id.clone())
        .retryable(matches!(kafka_code, "14" | "15" | "16")));
    }
    let info = entry_info(entry);
    if info.state == GroupState::Dead {
        return Err(not_found("does not exist (state Dead)"));
    }
    Ok(info)
}

/// The state and members of one `DescribeGroupInfo` entry without an error. Members are
/// only listed for `Stable` groups, so the count is only given where the list is
/// meaningful. A state this exporter does not know is `Unknown`, its raw value logged once.
fn entry_info(entry: &wire::GroupInfoResponse) -> GroupInfo {
    let state = GroupState::parse(&entry.state);
    if state == GroupState::Unknown {
        unknown_state(&entry.state);
    }
    let listed = entry.members.len() as u32;
    let members = match state {
        GroupState::Stable | GroupState::Empty => Some(listed),
        _ if listed > 0 => Some(listed),
        _ => None,
    };
    GroupInfo {
        state,
        members,
        rebalance: None,
    }
}

/// Logs a group state this exporter does not know, once per distinct value.
fn unknown_state(raw: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|s| s == raw) && seen.len() < 64 {
        seen.push(raw.to_string());
        tracing::warn!(
            state = raw,
            "CKafka reported a group state this exporter does not know; exported as unknown"
        );
    }
}

/// The states of the groups `DescribeGroupInfo` answered for (a group it does not know,
/// or reports with a Kafka error, is left out).
fn group_infos(reply: Reply<wire::GroupInfoResult>) -> Vec<(String, GroupInfo)> {
    reply
        .result
        .unwrap_or_default()
        .iter()
        .filter(|e| e.error_code == "0")
        .map(|e| (e.group.clone(), entry_info(e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Debug` of every value a request passes through (the signature, the request
    /// with its headers, the body types) shows no secret, token or signature.
    #[test]
    fn request_debug_shows_no_secret_token_or_signature() {
        let target = Target::parse("https://ckafka.tencentcloudapi.com").unwrap();
        let secret = "TopSecretKeyValue";
        let token = crate::credentials::Secret::new("SessionTokenValue");
        let body = wire::DescribeGroupOffsetsRequest {
            instance_id: "ckafka-1",
            group: "g",
            offset: 0,
            limit: OFFSETS_PAGE,
        };
        let payload = serde_json::to_vec(&body).unwrap();
        let signed = sign::sign(
            &sign::Request {
                method: "POST",
                headers: &[("content-type", JSON), ("host", &target.host)],
                payload: &payload,
                timestamp: 1_551_113_065,
                service: SERVICE,
            },
            "AKIDvisible",
            secret,
        )
        .unwrap();
        let request = http_request(
            "DescribeGroupOffsets",
            "ap-guangzhou",
            &target,
            1_551_113_065,
            &signed,
            Some(&token),
            payload,
        )
        .unwrap();
        let shown = format!(
            "{signed:?} {request:?} {:?} {body:?} {target:?}",
            request.headers
        );
        for hidden in [secret, token.expose(), signed.signature.as_str()] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(shown.contains("x-tc-action"), "{shown}");
    }

    #[test]
    fn every_status_that_serves_traffic_is_kept() {
        for status in [1, 4, 7, 6, 42] {
            assert!(serves_traffic(Some(status)), "{status}");
        }
        for status in [-1, 0, 2, 3, 5] {
            assert!(!serves_traffic(Some(status)), "{status}");
        }
        assert!(serves_traffic(None));
    }

    fn decode_err(status: u16, body: &str) -> ProviderError {
        decode::<wire::GroupOffsetResponse>("DescribeGroupOffsets", status, body.as_bytes())
            .unwrap_err()
    }

    fn error_body(code: &str) -> String {
        format!(
            r#"{{"Response":{{"Error":{{"Code":"{code}","Message":"m."}},"RequestId":"rid-1"}}}}"#
        )
    }

    #[test]
    fn throttling_is_retryable() {
        for code in [
            "RequestLimitExceeded",
            "RequestLimitExceeded.UinLimitExceeded",
            "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
        ] {
            let e = decode_err(200, &error_body(code));
            assert_eq!(e.kind, ErrorKind::Throttled, "{code}");
            assert!(e.retryable);
            assert_eq!(e.code.as_deref(), Some(code));
            assert_eq!(e.request_id.as_deref(), Some("rid-1"));
            assert_eq!(e.http_status, Some(200));
        }
    }

    #[test]
    fn transient_errors_are_retryable_api_errors() {
        for code in [
            "InternalError",
            "ResourceUnavailable",
            "ResourceUnavailable.KafkaStorageError",
        ] {
            let e = decode_err(200, &error_body(code));
            assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, true), "{code}");
        }
        let e = decode_err(200, &error_body("InvalidParameterValue"));
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, false));
        let e = decode_err(200, &error_body("FailedOperation"));
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, false));
    }

    #[test]
    fn auth_errors_say_what_to_check() {
        let cases = [
            ("AuthFailure.SecretIdNotFound", "check the SecretId"),
            ("AuthFailure.SignatureFailure", "check the SecretKey"),
            ("AuthFailure.SignatureExpire", "check the system clock"),
            ("AuthFailure.TokenFailure", "check the session token"),
            ("UnauthorizedOperation", "ckafka:DescribeGroupOffsets"),
            ("AuthFailure.UnauthorizedOperation", "CAM policy"),
            ("AuthFailure.SomethingNew", "authentication failed"),
        ];
        for (code, hint) in cases {
            let e = decode_err(200, &error_body(code));
            assert_eq!((e.kind, e.retryable), (ErrorKind::Auth, false), "{code}");
            assert!(e.message.contains(hint), "{code}: {}", e.message);
            assert!(e.to_string().contains("request id rid-1"));
            assert!(e.message.ends_with("(tencent: m)"), "{}", e.message);
        }
    }

    #[test]
    fn not_found_codes() {
        for code in [
            "InvalidParameterValue.InstanceNotExist",
            "ResourceNotFound",
            "ResourceNotFound.Group",
        ] {
            let e = decode_err(200, &error_body(code));
            assert_eq!(
                (e.kind, e.retryable),
                (ErrorKind::NotFound, false),
                "{code}"
            );
        }
    }

    #[test]
    fn other_statuses_are_http_errors() {
        let e = decode_err(502, "<html>Bad Gateway</html>\n");
        assert_eq!((e.kind, e.retryable), (ErrorKind::Http, true));
        assert_eq!(e.http_status, Some(502));
        assert!(e.message.contains("Bad Gateway"), "{}", e.message);
        let e = decode_err(403, "");
        assert_eq!((e.kind, e.retryable), (ErrorKind::Http, false));
        assert!(e.message.contains("empty body"));
        // A Tencent error under another status is still classified by its code.
        let e = decode_err(500, &error_body("RequestLimitExceeded"));
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.http_status, Some(500));
    }

    #[test]
    fn malformed_and_wrong_shapes_are_bad_responses() {
        let e = decode_err(200, r#"{"Response":{"Result":{"TotalCo"#);
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, true));
        let e = decode_err(
            200,
            r#"{"Response":{"Result":{"TotalCount":"2","TopicList":{}},"RequestId":"rid-9"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::BadResponse);
        assert_eq!(e.request_id.as_deref(), Some("rid-9"));
        let e = decode_err(200, r#"{"Response":{"RequestId":"rid-8"}}"#);
        assert_eq!(e.kind, ErrorKind::BadResponse, "a missing Result");
    }

    #[test]
    fn uncommitted_and_failed_partitions_have_no_committed_offset() {
        let json =
            include_str!("../../../tests/fixtures/tencent/describe_group_offsets_uncommitted.json");
        let reply = decode::<wire::GroupOffsetResponse>("x", 200, json.as_bytes()).unwrap();
        let mut progress = GroupProgress {
            topics: reply
                .result
                .topic_list
                .into_iter()
                .map(topic_progress)
                .collect(),
            info: None,
        };
        progress.normalize();
        let t = progress.topic("payments").unwrap();
        let p: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (p.partition, p.committed, p.log_end))
            .collect();
        assert_eq!(p, [(0, None, 5000), (1, None, 4200), (2, Some(900), 1000)]);
        assert_eq!(t.lag(), 100);
    }

    /// The documented example of `DescribeTopicAttributes` (CKafka API page 597/40846).
    #[test]
    fn topic_retention_is_config_retention_in_milliseconds() {
        let reply = |json: &str| {
            decode::<wire::TopicAttributesResponse>("DescribeTopicAttributes", 200, json.as_bytes())
                .unwrap()
                .result
        };
        let doc = include_str!("../../../tests/fixtures/tencent/describe_topic_attributes.json");
        assert_eq!(
            retention_of(reply(doc)),
            Some(std::time::Duration::from_secs(86_400))
        );
        for (json, why) in [
            (
                r#"{"Response":{"Result":{"Config":{"Retention":null}},"RequestId":"r"}}"#,
                "null",
            ),
            (
                r#"{"Response":{"Result":{"Config":{"Retention":-1}},"RequestId":"r"}}"#,
                "forever",
            ),
            (
                r#"{"Response":{"Result":{"Config":null},"RequestId":"r"}}"#,
                "no config",
            ),
            (r#"{"Response":{"Result":{},"RequestId":"r"}}"#, "no field"),
        ] {
            assert_eq!(retention_of(reply(json)), None, "{why}");
        }
    }

    #[test]
    fn group_info_states() {
        let reply = |json: &str| {
            decode::<wire::GroupInfoResult>("DescribeGroupInfo", 200, json.as_bytes()).unwrap()
        };
        let info = group_info(
            "orders-consumer",
            reply(include_str!(
                "../../../tests/fixtures/tencent/describe_group_info.json"
            )),
        )
        .unwrap();
        assert_eq!(
            info,
            GroupInfo {
                state: GroupState::Stable,
                members: Some(2),
                rebalance: None,
            }
        );
        assert!(info.is_active());
        for fixture in [
            include_str!("../../../tests/fixtures/tencent/describe_group_info_null.json"),
            include_str!("../../../tests/fixtures/tencent/describe_group_info_dead.json"),
        ] {
            let e = group_info("no-such-group", reply(fixture)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
            assert!(e.request_id.is_some());
        }
        let e = group_info(
            "other",
            reply(include_str!(
                "../../../tests/fixtures/tencent/describe_group_info.json"
            )),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = group_info(
            "g",
            reply(r#"{"Response":{"Result":[{"ErrorCode":"15","State":"","Group":"g"}],"RequestId":"r"}}"#),
        )
        .unwrap_err();
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, true));
        let info = group_info(
            "g",
            reply(r#"{"Response":{"Result":[{"ErrorCode":"0","State":"PreparingRebalance","Group":"g","Members":[]}],"RequestId":"r"}}"#),
        )
        .unwrap();
        assert_eq!(info.members, None);
        assert!(info.is_active());
    }

    fn body(call: ResetCall<'_>) -> String {
        match call {
            ResetCall::Modify(b) => serde_json::to_string(&b).unwrap(),
            ResetCall::Batch(b) => serde_json::to_string(&b).unwrap(),
        }
    }

    #[test]
    fn reset_targets_map_to_strategies() {
        let all = ResetScope::AllTopics(vec!["a".into(), "b".into()]);
        let one = ResetScope::Topic("a".into());
        let cases = [
            (
                all.clone(),
                ResetTarget::Latest,
                r#""Strategy":1,"Topics":["a","b"],"ShiftTimestamp":-1}"#,
            ),
            (
                one.clone(),
                ResetTarget::Earliest,
                r#""Strategy":1,"Topics":["a"],"ShiftTimestamp":-2}"#,
            ),
            (
                one.clone(),
                ResetTarget::Timestamp(1_700_000_000_123),
                r#""Strategy":1,"Topics":["a"],"ShiftTimestamp":1700000000123}"#,
            ),
            (
                all.clone(),
                ResetTarget::ShiftBy(-25),
                r#""Strategy":0,"Topics":["a","b"],"Shift":-25}"#,
            ),
            (
                ResetScope::Topics(vec!["a".into(), "c".into()]),
                ResetTarget::Latest,
                r#""Strategy":1,"Topics":["a","c"],"ShiftTimestamp":-1}"#,
            ),
            (
                ResetScope::Partitions {
                    topic: "a".into(),
                    partitions: vec![0, 2],
                },
                ResetTarget::ShiftBy(3),
                r#""Strategy":0,"Topics":["a"],"Shift":3,"Partitions":[0,2]}"#,
            ),
        ];
        for (scope, target, tail) in cases {
            let request = ResetRequest { scope, target };
            let json = body(reset_call("i", "g", &request).unwrap());
            assert_eq!(json, format!(r#"{{"InstanceId":"i","Group":"g",{tail}"#));
        }
        let request = ResetRequest {
            scope: one,
            target: ResetTarget::Offsets(vec![(0, 10), (2, 30)]),
        };
        assert_eq!(
            body(reset_call("i", "g", &request).unwrap()),
            r#"{"GroupName":"g","InstanceId":"i","Partitions":[{"Partition":0,"Offset":10},{"Partition":2,"Offset":30}],"TopicName":["a"]}"#
        );
    }

    #[test]
    fn only_explicit_offsets_of_several_topics_need_splitting() {
        let offsets = ResetTarget::Offsets(vec![(0, 1)]);
        let one = ResetRequest {
            scope: ResetScope::Topic("a".into()),
            target: offsets.clone(),
        };
        assert_eq!(reset_calls(&one), Some(vec![one.clone()]));
        let two = ResetRequest {
            scope: ResetScope::Topics(vec!["a".into(), "b".into()]),
            target: offsets,
        };
        assert_eq!(reset_calls(&two), None);
        let latest = ResetRequest {
            scope: ResetScope::Topics(vec!["a".into(), "b".into()]),
            target: ResetTarget::ShiftBy(-1),
        };
        assert_eq!(reset_calls(&latest), Some(vec![latest.clone()]));
    }

    #[test]
    fn resets_ckafka_would_misread_are_refused_before_sending() {
        let refused = [
            ResetRequest {
                scope: ResetScope::AllTopics(vec!["a".into()]),
                target: ResetTarget::Offsets(vec![(0, 1)]),
            },
            ResetRequest {
                scope: ResetScope::Topic("a".into()),
                target: ResetTarget::Offsets(vec![]),
            },
            ResetRequest {
                scope: ResetScope::AllTopics(vec![]),
                target: ResetTarget::Latest,
            },
            ResetRequest {
                scope: ResetScope::Topic("a".into()),
                target: ResetTarget::Timestamp(-1),
            },
            ResetRequest {
                scope: ResetScope::Partitions {
                    topic: "a".into(),
                    partitions: vec![],
                },
                target: ResetTarget::Latest,
            },
        ];
        for request in refused {
            let e = reset_call("i", "g", &request).unwrap_err();
            assert_eq!(
                (e.kind, e.retryable),
                (ErrorKind::ApiError, false),
                "{request:?}"
            );
        }
    }

    #[test]
    fn target_host_keeps_non_default_ports() {
        let t = Target::parse("http://127.0.0.1:8123").unwrap();
        assert_eq!(
            (t.url.as_str(), t.host.as_str()),
            ("http://127.0.0.1:8123/", "127.0.0.1:8123")
        );
        let t = Target::parse("https://ckafka.tencentcloudapi.com/").unwrap();
        assert_eq!(t.host, "ckafka.tencentcloudapi.com");
        let t = Target::parse("https://ckafka.tencentcloudapi.com:443").unwrap();
        assert_eq!(t.host, "ckafka.tencentcloudapi.com");
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn dedup_keeps_first_and_order() {
        let v = dedup_by_key(vec!["b".to_string(), "a".into(), "b".into()], |s| s);
        assert_eq!(v, ["b", "a"]);
    }
}

//! Alibaba Cloud ApsaraMQ for Kafka ("alikafka", API 2019-09-16): [`AlibabaProvider`]:
//! consumer-group progress (`GetConsumerProgress`), discovery (`GetConsumerList`,
//! `GetInstanceList`), the instance's retention (`GetInstanceList` `MsgRetain`) and offset
//! resets (`UpdateConsumerOffset`).
//!
//! Owns the alikafka requests, sent as the official SDK sends them: `POST {endpoint}/?<query>`
//! with an empty body, signed with V2 (query `Signature`) or V3 (`Authorization` header)
//! afresh for every attempt; the conversion of the answers ([`wire`]) into `model` types;
//! and the mapping of alikafka error codes onto [`ErrorKind`]s (classified by `Code`, never
//! by HTTP status alone, because Alibaba answers the same code with different statuses).
//!
//! Must not put a secret, a security token, a signature or a signed URL into an error, a
//! log line or `Debug` output (the access key id is not secret and is named, so that an
//! operator knows which key to check). Must not retry `UpdateConsumerOffset`.

pub use kcle_cloud::alibaba::sign;
pub mod credentials;
mod wire;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use kcle_clock::Instant;

use serde::de::DeserializeOwned;

use super::call::Caller;
use super::http::{HttpRequest, InvalidHeader, send};
use super::{
    AccountSpec, ErrorKind, OffsetWriter, Profile, Provider, ProviderDeps, ProviderError,
    ProviderFuture, RetentionScope,
};
use crate::credentials::CredentialEnv;
use crate::credentials::Credentials;
use crate::model::{
    Cloud, DiscoveredInstance, GroupInfo, GroupProgress, GroupState, InstanceRef,
    PartitionProgress, Rebalance, ResetRequest, ResetScope, ResetTarget, TopicProgress,
};
use kcle_clock::unix_secs;

pub use kcle_cloud::alibaba::{
    API_VERSION, GET_CONSUMER_LIST, GET_CONSUMER_PROGRESS, GET_INSTANCE_LIST,
    UPDATE_CONSUMER_OFFSET,
};

/// Alibaba's facts for the rest of the exporter.
pub static PROFILE: Profile = Profile {
    cloud: Cloud::Alibaba,
    default_endpoint: "https://alikafka.{region}.aliyuncs.com",
    // The default credential chain of `alibabacloud-credentials` starts with these.
    credential_env: CredentialEnv {
        id: "ALIBABA_CLOUD_ACCESS_KEY_ID",
        secret: "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        token: &["ALIBABA_CLOUD_SECURITY_TOKEN"],
    },
    credential_variables: credentials::VARIABLES,
    session_duration: (
        Duration::from_secs(kcle_cloud::alibaba::sts::MIN_SESSION_SECS),
        Duration::from_secs(kcle_cloud::alibaba::sts::MAX_SESSION_SECS),
    ),
    actions: kcle_cloud::alibaba::ACTIONS,
    // Alibaba publishes no limit for these operations: a conservative budget.
    fallback_rate: 10.0,
    poll_action: GET_CONSUMER_PROGRESS,
    selectable_signature: true,
    // One answer holds every topic and partition of the group.
    requests_per_poll: |_| 1,
    // GetConsumerProgress carries the state, the members and the rebalances.
    group_info_batch: None,
    probe_action: None,
    // GetInstanceList's `MsgRetain`, the instance's retention in hours. Topic-level
    // `retention.ms` (professional and serverless editions) is in no documented answer.
    retention: Some((RetentionScope::Instance, GET_INSTANCE_LIST)),
};

/// Alibaba request signature versions.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    /// Signature V2, HMAC-SHA1 in query parameters (Alibaba calls it discontinued, but
    /// alikafka still accepts it).
    V2,
    /// Signature V3, ACS3-HMAC-SHA256 in the `Authorization` header: what the current
    /// official SDK sends to alikafka, so the default.
    #[default]
    V3,
}

impl fmt::Display for SignatureVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureVersion::V2 => "v2",
            SignatureVersion::V3 => "v3",
        })
    }
}

/// Groups asked for per `GetConsumerList` page. Alibaba publishes neither the default nor
/// the maximum; a real service refuses a `PageSize` above its limit rather than capping
/// it, so this stays at the one value the documentation shows (its example, 10), which is
/// also the smallest maximum of the sibling ApsaraMQ APIs (10 to 100). Paging does not
/// rely on the server honouring it: pages are requested by number and the loop stops on
/// `Total`, on an empty page, or (older answers without `Total`) on a page with nothing new.
pub const GROUP_PAGE_SIZE: u32 = 10;

/// Most `GetConsumerList` pages read for one instance (100,000 groups at 10 a page):
/// a bound on a server that keeps answering pages.
const MAX_GROUP_PAGES: u32 = 10_000;

/// Alibaba Cloud provider for one account.
pub struct AlibabaProvider {
    spec: AccountSpec,
    http: reqwest::Client,
    caller: Caller,
}

impl fmt::Debug for AlibabaProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlibabaProvider")
            .field("account", &self.spec.name)
            .field("region", &self.spec.region)
            .field("endpoint", &self.spec.endpoint)
            .field("signature_version", &self.spec.signature_version)
            .finish_non_exhaustive()
    }
}

impl AlibabaProvider {
    pub fn new(spec: AccountSpec, deps: &ProviderDeps) -> Self {
        AlibabaProvider {
            spec,
            http: deps.http.clone(),
            caller: Caller::new(Cloud::Alibaba, deps),
        }
    }

    /// Sends a read with retries, or a write exactly once.
    async fn request<T: DeserializeOwned>(
        &self,
        action: &'static str,
        params: &[(&'static str, String)],
        deadline: Instant,
        write: bool,
    ) -> Result<T, ProviderError> {
        self.spec
            .credentials_by(self.caller.clock(), deadline)
            .await
            .map_err(|e| e.with_action(action))?;
        let attempt = || self.attempt::<T>(action, params, write);
        if write {
            self.caller.call_once(action, deadline, attempt).await
        } else {
            self.caller.call(action, deadline, attempt).await
        }
    }

    /// One signed request: fresh nonce and timestamp, so that a retry is never a replay.
    async fn attempt<T: DeserializeOwned>(
        &self,
        action: &'static str,
        params: &[(&'static str, String)],
        write: bool,
    ) -> Result<T, ProviderError> {
        let creds = self.spec.credentials().await?;
        let now = unix_secs(self.caller.clock().now());
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let signed = build_request(
            self.spec.signature_version,
            &self.spec.endpoint,
            action,
            params,
            &creds,
            now,
            &nonce,
        )?;
        let request = signed.to_http().map_err(|e| self.unsendable(e))?;
        let (status, headers, body) = send(&self.http, request).await?;
        let retry_after = retry_after(&headers);
        let ctx = AttemptContext {
            action,
            write,
            creds: &creds,
            timestamp: &signed.timestamp,
            string_to_sign: &signed.string_to_sign,
        };
        let result = interpret::<T>(status, retry_after, &body, &ctx);
        match &result {
            Ok(_) => tracing::debug!(action, status, "alikafka answered"),
            Err(e) => tracing::debug!(action, status, error = %e, "alikafka call failed"),
        }
        result
    }

    /// A request that cannot be sent because a value is not valid in an HTTP header: a
    /// configuration error naming the account and the part at fault, never retried.
    fn unsendable(&self, e: InvalidHeader) -> ProviderError {
        let part = match e.name {
            "authorization" => "the access key id",
            "x-acs-security-token" => "the security token",
            "host" => "the endpoint host",
            other => other,
        };
        ProviderError::new(
            ErrorKind::Credentials,
            format!(
                "account {}: {part} contains a character that cannot be sent in an HTTP header (a newline or control character?); check its source",
                self.spec.name
            ),
        )
        .retryable(false)
    }

    async fn consumer_progress(
        &self,
        instance: &InstanceRef,
        group: &str,
        deadline: Instant,
    ) -> Result<wire::ConsumerProgress, ProviderError> {
        // HideLastTimestamp is left unset: LastTimestamp is what time lag is estimated from.
        let params = [
            ("RegionId", instance.region.to_string()),
            ("InstanceId", instance.instance_id.to_string()),
            ("ConsumerId", group.to_string()),
        ];
        let answer: wire::GetConsumerProgress = self
            .request(GET_CONSUMER_PROGRESS, &params, deadline, false)
            .await?;
        answer.consumer_progress.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::BadResponse,
                "GetConsumerProgress answer has no ConsumerProgress",
            )
        })
    }
}

impl Provider for AlibabaProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Alibaba
    }

    fn group_progress<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, GroupProgress> {
        Box::pin(async move {
            let progress = self.consumer_progress(instance, group, deadline).await?;
            progress_from_wire(&progress)
                .map_err(|m| ProviderError::new(ErrorKind::BadResponse, m).retryable(false))
        })
    }

    fn list_groups<'a>(
        &'a self,
        instance: &'a InstanceRef,
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut groups = Vec::new();
            let mut seen = HashSet::new();
            for page in 1..=MAX_GROUP_PAGES {
                let params = [
                    ("RegionId", instance.region.to_string()),
                    ("InstanceId", instance.instance_id.to_string()),
                    ("CurrentPage", page.to_string()),
                    ("PageSize", GROUP_PAGE_SIZE.to_string()),
                ];
                let answer: wire::GetConsumerList = self
                    .request(GET_CONSUMER_LIST, &params, deadline, false)
                    .await?;
                let before = groups.len();
                for c in &answer.consumer_list {
                    if let Some(id) = c.consumer_id.as_deref().filter(|s| !s.is_empty())
                        && seen.insert(id.to_string())
                    {
                        groups.push(id.to_string());
                    }
                }
                match next_page(
                    answer.consumer_list.len(),
                    groups.len() - before,
                    groups.len(),
                    answer.total,
                ) {
                    PageStep::Done => return Ok(groups),
                    PageStep::Next => {}
                    PageStep::Stuck => {
                        return Err(ProviderError::new(
                            ErrorKind::BadResponse,
                            format!(
                                "GetConsumerList page {page} brought no new group although Total is {} and {} groups were read: the server does not page",
                                answer.total.unwrap_or_default(),
                                groups.len()
                            ),
                        )
                        .retryable(false));
                    }
                }
            }
            Err(ProviderError::new(
                ErrorKind::BadResponse,
                format!("GetConsumerList still had groups after {MAX_GROUP_PAGES} pages"),
            )
            .retryable(false))
        })
    }

    fn list_instances<'a>(
        &'a self,
        region: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<DiscoveredInstance>> {
        Box::pin(async move {
            let params = [("RegionId", region.to_string())];
            let answer: wire::GetInstanceList = self
                .request(GET_INSTANCE_LIST, &params, deadline, false)
                .await?;
            Ok(running_instances(&answer))
        })
    }

    fn instance_retention<'a>(
        &'a self,
        instance: &'a InstanceRef,
        deadline: Instant,
    ) -> ProviderFuture<'a, Option<Duration>> {
        Box::pin(async move {
            // The list narrowed to this instance (the SDK sends the list as `InstanceId.1`).
            let params = [
                ("RegionId", instance.region.to_string()),
                ("InstanceId.1", instance.instance_id.to_string()),
            ];
            let answer: wire::GetInstanceList = self
                .request(GET_INSTANCE_LIST, &params, deadline, false)
                .await?;
            Ok(msg_retain(&answer, &instance.instance_id))
        })
    }

    fn group_info<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, GroupInfo> {
        Box::pin(async move {
            let progress = self.consumer_progress(instance, group, deadline).await?;
            group_info_from_wire(&progress)
                .map_err(|m| ProviderError::new(ErrorKind::BadResponse, m).retryable(false))
        })
    }
}

impl OffsetWriter for AlibabaProvider {
    fn reset_calls(&self, request: &ResetRequest) -> Option<Vec<ResetRequest>> {
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
            let mut params = vec![
                ("RegionId", instance.region.to_string()),
                ("InstanceId", instance.instance_id.to_string()),
                ("ConsumerId", group.to_string()),
            ];
            params.extend(reset_params(request)?);
            let _: wire::UpdateConsumerOffset = self
                .request(UPDATE_CONSUMER_OFFSET, &params, deadline, true)
                .await?;
            Ok(())
        })
    }
}

/// A request ready to send: URL, extra headers, and what was signed (kept to tell a wrong
/// secret from a canonicalization bug when the signature is rejected). Its `Debug` shows
/// neither the URL's values (V2 signature, security token) nor the signed headers' values.
#[derive(Clone, PartialEq)]
struct SignedRequest {
    /// Carries the V2 signature and any security token: never log or return it.
    url: String,
    headers: Vec<(&'static str, String)>,
    timestamp: String,
    string_to_sign: String,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_http() {
            Ok(http) => f
                .debug_struct("SignedRequest")
                .field("request", &http)
                .field("timestamp", &self.timestamp)
                .finish_non_exhaustive(),
            Err(_) => f.write_str("SignedRequest { [unsendable] }"),
        }
    }
}

/// Headers whose values are secret or carry the signature.
const SENSITIVE_HEADERS: [&str; 2] = ["authorization", "x-acs-security-token"];

impl SignedRequest {
    /// The request to send, with the signature and token headers marked sensitive.
    fn to_http(&self) -> Result<HttpRequest, InvalidHeader> {
        let url = reqwest::Url::parse(&self.url).map_err(|_| InvalidHeader { name: "host" })?;
        let mut request = HttpRequest::post(url);
        for (name, value) in &self.headers {
            request = if SENSITIVE_HEADERS.contains(name) {
                request.secret_header(name, value)?
            } else {
                request.header(name, value)?
            };
        }
        Ok(request)
    }
}

/// Builds and signs one request. Pure: time and nonce are arguments.
fn build_request(
    version: SignatureVersion,
    endpoint: &str,
    action: &str,
    params: &[(&'static str, String)],
    creds: &Credentials,
    unix_secs: i64,
    nonce: &str,
) -> Result<SignedRequest, ProviderError> {
    let timestamp = sign::timestamp(unix_secs)
        .map_err(|e| ProviderError::new(ErrorKind::ApiError, e.to_string()))?;
    let mut query: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let base = endpoint.trim_end_matches('/');
    match version {
        SignatureVersion::V2 => {
            let common = [
                ("Action", action),
                ("Version", API_VERSION),
                ("Format", "JSON"),
                ("AccessKeyId", creds.id.as_str()),
                ("SignatureMethod", sign::V2_SIGNATURE_METHOD),
                ("SignatureVersion", sign::V2_SIGNATURE_VERSION),
                ("SignatureNonce", nonce),
                ("Timestamp", timestamp.as_str()),
            ];
            query.extend(common.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            if let Some(token) = &creds.token {
                query.push(("SecurityToken".into(), token.expose().to_string()));
            }
            let canonical = sign::canonicalized_query(&query);
            let string_to_sign = sign::v2_string_to_sign("POST", &canonical);
            let signature = sign::v2_signature(creds.secret.expose(), &string_to_sign);
            // The canonical query is also the query sent, so the server rebuilds it as is.
            let url = format!(
                "{base}/?{canonical}&Signature={}",
                sign::percent_encode(&signature)
            );
            Ok(SignedRequest {
                url,
                headers: vec![("accept", "application/json".to_string())],
                timestamp,
                string_to_sign,
            })
        }
        SignatureVersion::V3 => {
            let canonical_query = sign::v3_canonical_query(&query);
            let mut signed_headers: Vec<(&'static str, String)> = vec![
                ("host", host_of(base).to_string()),
                ("x-acs-action", action.to_string()),
                ("x-acs-version", API_VERSION.to_string()),
                ("x-acs-date", timestamp.clone()),
                ("x-acs-signature-nonce", nonce.to_string()),
                ("x-acs-content-sha256", sign::EMPTY_SHA256.to_string()),
            ];
            if let Some(token) = &creds.token {
                signed_headers.push(("x-acs-security-token", token.expose().to_string()));
            }
            let as_strings: Vec<(String, String)> = signed_headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let (canonical_headers, signed_names) = sign::v3_canonical_headers(&as_strings);
            let canonical_request = sign::v3_canonical_request(
                "POST",
                "/",
                &canonical_query,
                &canonical_headers,
                &signed_names,
                sign::EMPTY_SHA256,
            );
            let string_to_sign = sign::v3_string_to_sign(&canonical_request);
            let signature = sign::v3_signature(creds.secret.expose(), &string_to_sign);
            let mut headers = signed_headers;
            headers.push(("accept", "application/json".to_string()));
            headers.push((
                "authorization",
                sign::v3_authorization(&creds.id, &signed_names, &signature),
            ));
            let url = if canonical_query.is_empty() {
                format!("{base}/")
            } else {
                format!("{base}/?{canonical_query}")
            };
            Ok(SignedRequest {
                url,
                headers,
                timestamp,
                string_to_sign,
            })
        }
    }
}

/// The `host[:port]` part of a base URL, as sent in the `Host` header.
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// A positive integer `x-acs-retry-after`, taken as milliseconds. The unit is undocumented;
/// milliseconds is the cautious reading for a throttling hint (seconds would make a value
/// like 500 an 8-minute wait), and the backoff still applies on top.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get("x-acs-retry-after")?.to_str().ok()?)
}

fn parse_retry_after(value: &str) -> Option<Duration> {
    let ms: u64 = value.trim().parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// What an answer is judged against.
struct AttemptContext<'a> {
    action: &'static str,
    /// A write must be confirmed by its answer (`Success: true` or `Code` 200): a body
    /// that merely shows no failure, like `{}`, is not proof that it was applied.
    write: bool,
    creds: &'a Credentials,
    timestamp: &'a str,
    string_to_sign: &'a str,
}

/// Turns an HTTP answer into the parsed body or a classified error.
fn interpret<T: DeserializeOwned>(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    ctx: &AttemptContext<'_>,
) -> Result<T, ProviderError> {
    if (200..300).contains(&status) {
        return match wire::parse::<T>(body) {
            Ok((envelope, _)) if envelope.failed() => {
                Err(classify(status, retry_after, &envelope, ctx))
            }
            Ok((envelope, _)) if ctx.write && !envelope.confirmed() => Err(ProviderError::new(
                ErrorKind::BadResponse,
                format!(
                    "{} answer confirms nothing (neither Success: true nor Code 200): whether the write was applied is unknown",
                    ctx.action
                ),
            )
            .with_status(status)
            .with_request_id(envelope.request_id)
            .retryable(false)),
            Ok((_, answer)) => Ok(answer),
            Err(e) => {
                // A failure answer may not have the success shape; judge it by its envelope.
                let envelope = wire::parse_envelope(body).ok();
                if let Some(env) = envelope.as_ref().filter(|e| e.failed()) {
                    return Err(classify(status, retry_after, env, ctx));
                }
                Err(ProviderError::new(
                    ErrorKind::BadResponse,
                    format!("{} answer is not of the documented shape: {e}", ctx.action),
                )
                .with_status(status)
                .with_request_id(envelope.and_then(|e| e.request_id)))
            }
        };
    }
    match wire::parse_envelope(body) {
        Ok(envelope) if envelope.code.is_some() => {
            Err(classify(status, retry_after, &envelope, ctx))
        }
        _ => Err(bare_status(status, retry_after)),
    }
}

/// A non-2xx answer without an alikafka error body (a load balancer or proxy answered).
fn bare_status(status: u16, retry_after: Option<Duration>) -> ProviderError {
    let (kind, retryable) = match status {
        429 => (ErrorKind::Throttled, true),
        s if s >= 500 => (ErrorKind::Http, true),
        _ => (ErrorKind::Http, false),
    };
    ProviderError::new(
        kind,
        format!("http status {status} without an alikafka error body"),
    )
    .with_status(status)
    .retryable(retryable)
    .with_retry_after(retry_after.filter(|_| retryable))
}

/// Throttling codes: the `Throttling` family (`Throttling`, `Throttling.User`,
/// `Throttling.Api`, and any the gateway adds, such as `Throttling.Concurrency`), and
/// alikafka's own `ONS_SYSTEM_FLOW_CONTROL` (the Terraform provider retries it).
fn is_throttling(code: &str) -> bool {
    code == "Throttling"
        || code.starts_with("Throttling.")
        || code == "ONS_SYSTEM_FLOW_CONTROL"
        || code == "FlowControl"
}

/// Examples of [`is_throttling`] codes, for tests.
#[cfg(test)]
const THROTTLE_CODES: [&str; 6] = [
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "Throttling.Concurrency",
    "ONS_SYSTEM_FLOW_CONTROL",
    "FlowControl",
];

/// Server-side failures worth another try (alikafka also uses the `ONS_` codes of its
/// RocketMQ sibling; the Terraform provider retries them).
const TRANSIENT_CODES: [&str; 7] = [
    "ONS_SYSTEM_ERROR",
    "ONS_INTERNAL_ERROR",
    "ONS.INTERNAL.ERROR",
    "InternalError",
    "INTERNAL.ERROR",
    "ServiceUnavailable",
    "InternalUnknownCodeError",
];

/// Codes alikafka documents (HTTP 400, every operation's error table) for an instance or
/// group that does not exist. `BIZ_SUBSCRIPTION_NOT_FOUND` is the missing consumer group
/// ("subscription" in the RocketMQ heritage) and `BIZ_TOPIC_NOT_FOUND` the missing topic;
/// the official Terraform provider treats exactly these as "not found" for alikafka.
const NOT_FOUND_CODES: [&str; 5] = [
    "BIZ_INSTANCE_NOT_FOUND",
    "BIZ.INSTANCE.NOT.FOUND",
    "BIZ_SUBSCRIPTION_NOT_FOUND",
    "BIZ_TOPIC_NOT_FOUND",
    "Topic.NotFound",
];

/// Classifies a coded error body by its `Code`.
fn classify(
    status: u16,
    retry_after: Option<Duration>,
    envelope: &wire::Envelope,
    ctx: &AttemptContext<'_>,
) -> ProviderError {
    let code = envelope
        .code
        .as_ref()
        .map(wire::Code::as_text)
        .unwrap_or_default();
    let server_message = scrub(envelope.message.as_deref().unwrap_or_default(), ctx.creds);
    let (kind, retryable, message) = if is_throttling(&code) {
        (ErrorKind::Throttled, true, server_message)
    } else if let Some(message) = auth_message(&code, &server_message, ctx) {
        (ErrorKind::Auth, false, message)
    } else if NOT_FOUND_CODES.contains(&code.as_str()) {
        let message = if server_message.is_empty() {
            "the instance or consumer group does not exist".to_string()
        } else {
            server_message
        };
        (ErrorKind::NotFound, false, message)
    } else {
        // Business codes are numeric (HTTP 200, Success false); 5xx ones are server faults.
        let server_fault = TRANSIENT_CODES.contains(&code.as_str())
            || status >= 500
            || envelope
                .code
                .as_ref()
                .and_then(wire::Code::as_int)
                .is_some_and(|n| n >= 500);
        (ErrorKind::ApiError, server_fault, server_message)
    };
    ProviderError::new(kind, message)
        .with_code(code)
        .with_status(status)
        .with_request_id(envelope.request_id.clone())
        .retryable(retryable)
        .with_retry_after(retry_after.filter(|_| retryable))
}

/// Our own message for a credential or signature rejection, naming the access key id and
/// what to check; `None` if `code` is not an auth code. Server messages are not reused:
/// `SignatureDoesNotMatch` echoes the string to sign, which contains the security token;
/// it is only compared with ours.
fn auth_message(code: &str, server_message: &str, ctx: &AttemptContext<'_>) -> Option<String> {
    let id = &ctx.creds.id;
    let message = match code {
        "InvalidAccessKeyId.NotFound" => format!(
            "access key id {id} is not known to Alibaba Cloud: check the configured access key id"
        ),
        "InvalidAccessKeyId.Inactive" => {
            format!("access key id {id} is disabled: enable it or configure an active key")
        }
        c if c == "InvalidAccessKeyId" || c.starts_with("InvalidAccessKeyId.") => {
            format!("access key id {id} was rejected: check the configured access key id")
        }
        "SignatureDoesNotMatch" => signature_mismatch_message(server_message, ctx),
        "IncompleteSignature" => format!(
            "the request signature of access key id {id} is incomplete or malformed (a client bug)"
        ),
        "InvalidTimeStamp.Expired" => format!(
            "request timestamp {} is too far from Alibaba Cloud's clock: check that this host's clock is synchronised (NTP)",
            ctx.timestamp
        ),
        c if c.starts_with("InvalidTimeStamp") => format!(
            "request timestamp {} was rejected as malformed (a client bug)",
            ctx.timestamp
        ),
        "SignatureNonceUsed" => {
            "the signature nonce was already used: requests are replayed or nonces repeat (a client bug)"
                .to_string()
        }
        "InvalidSecurityToken.Expired" => format!(
            "the security token of access key id {id} has expired: refresh the STS credentials"
        ),
        "InvalidSecurityToken.Malformed" => format!(
            "the security token of access key id {id} is malformed: check the configured security token"
        ),
        "InvalidSecurityToken.MismatchWithAccessKey" => format!(
            "the security token was not issued with access key id {id}: configure the token that belongs to this key"
        ),
        c if c.starts_with("InvalidSecurityToken") => format!(
            "the security token of access key id {id} was rejected: check the configured security token"
        ),
        "MissingSecurityToken" => format!(
            "access key id {id} is a temporary (STS) key but no security token is configured"
        ),
        c if c.starts_with("Forbidden") => format!(
            "access key id {id} is not permitted to call {}: grant the RAM action {}",
            ctx.action,
            ram_action(ctx.action)
        ),
        "AUTH_SIGNATURE_CHECK_ERROR" | "RAM_USER_NOT_FOUND_BY_ACCESSKEY"
        | "RAM.USER.NOT.FOUND.BY.ACCESSKEY" => format!(
            "alikafka rejected access key id {id}: check the configured access key id and secret"
        ),
        _ => return None,
    };
    Some(message)
}

/// Tells a wrong secret (the server signed the very text we signed) from a request the
/// server reads differently (a canonicalization bug), as `aliyunsdkcore` does.
fn signature_mismatch_message(server_message: &str, ctx: &AttemptContext<'_>) -> String {
    let id = &ctx.creds.id;
    // `server_message` is scrubbed, so compare against our text scrubbed the same way.
    let ours = scrub(ctx.string_to_sign, ctx.creds);
    match server_message.split_once("string to sign is:") {
        Some((_, theirs)) if theirs.trim() == ours => format!(
            "the signature was rejected although Alibaba Cloud signed the same request text: the access key secret configured for access key id {id} is wrong"
        ),
        Some(_) => format!(
            "the signature was rejected and Alibaba Cloud signed a different request text than this client did: a request canonicalization problem, not the secret of access key id {id}"
        ),
        None => format!(
            "the signature was rejected: check the access key secret configured for access key id {id}"
        ),
    }
}

/// The RAM action an operation needs, for permission errors.
fn ram_action(action: &str) -> &'static str {
    match action {
        GET_INSTANCE_LIST => "alikafka:ListInstance",
        UPDATE_CONSUMER_OFFSET => "alikafka:UpdateGroup",
        _ => "alikafka:ListGroup",
    }
}

/// Removes the secret and the token (raw, and percent-encoded once and twice as they appear
/// in a string to sign) from a server message before it is stored in an error.
fn scrub(message: &str, creds: &Credentials) -> String {
    let mut out = message.to_string();
    let mut secrets = vec![creds.secret.expose().to_string()];
    if let Some(token) = &creds.token {
        secrets.push(token.expose().to_string());
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let once = sign::percent_encode(secret);
        let twice = sign::percent_encode(&once);
        for form in [twice, once, secret.clone()] {
            out = out.replace(&form, "[redacted]");
        }
    }
    out
}

/// A successful `GetConsumerProgress` answer body as a poll reads it: the same parsing and
/// conversion, without the request. For `cargo bench --bench hot_paths`.
#[doc(hidden)]
pub fn parse_consumer_progress(body: &[u8]) -> Result<GroupProgress, String> {
    let (_, answer) = wire::parse::<wire::GetConsumerProgress>(body).map_err(|e| e.to_string())?;
    let progress = answer
        .consumer_progress
        .ok_or("GetConsumerProgress answer has no ConsumerProgress")?;
    progress_from_wire(&progress)
}

/// Converts `ConsumerProgress` into the model: committed offsets below zero mean "never
/// committed", timestamps of zero or below mean "unknown" (alikafka sends -1).
fn progress_from_wire(progress: &wire::ConsumerProgress) -> Result<GroupProgress, String> {
    let merged = progress.merged_topics()?;
    let mut topics = Vec::with_capacity(merged.len());
    for (topic, entries) in &merged {
        let mut partitions = Vec::with_capacity(entries.len());
        for e in entries {
            let partition = e
                .partition
                .ok_or_else(|| format!("topic {topic}: a partition entry has no Partition"))?;
            let log_end = e
                .broker_offset
                .ok_or_else(|| format!("topic {topic} partition {partition}: no BrokerOffset"))?;
            partitions.push(PartitionProgress {
                partition,
                committed: e.consumer_offset.filter(|o| *o >= 0),
                log_end,
                last_consumed_ms: e.last_timestamp.filter(|t| *t > 0),
                time_lag: None,
            });
        }
        topics.push(TopicProgress {
            topic: topic.to_string(),
            partitions,
        });
    }
    let info = group_info_from_merged(progress, &merged);
    // Only what the answer says: the documented answer (no state, no member fields) has
    // no group information at all.
    let known = info.membership_known() || info.rebalance.is_some();
    let mut out = GroupProgress {
        topics,
        info: known.then_some(info),
    };
    out.normalize();
    Ok(out)
}

/// A group's state and members from `GetConsumerProgress`: alikafka lists no members, so
/// they are counted as the distinct `MemberId`s (or `ClientId`s) owning partitions. A
/// member that owns no partition is not seen.
///
/// The documented answer has neither `state` nor the member fields (newer SDK-model
/// fields): then the state is `Unknown` and the member count `None`, and
/// [`GroupInfo::membership_known`] says so, so that a reset is refused rather than sent to
/// a group that may be live.
fn group_info_from_wire(progress: &wire::ConsumerProgress) -> Result<GroupInfo, String> {
    Ok(group_info_from_merged(progress, &progress.merged_topics()?))
}

/// [`group_info_from_wire`] over the already merged topics.
fn group_info_from_merged(
    progress: &wire::ConsumerProgress,
    merged: &[(&str, Vec<&wire::PartitionEntry>)],
) -> GroupInfo {
    let mut members = HashSet::new();
    let mut member_fields = false;
    for (_, entries) in merged {
        for e in entries {
            member_fields |= e.member_id.is_some() || e.client_id.is_some();
            let member = [e.member_id.as_deref(), e.client_id.as_deref()]
                .into_iter()
                .flatten()
                .find(|s| !s.is_empty());
            if let Some(m) = member {
                members.insert(m);
            }
        }
    }
    let state = progress
        .state
        .as_deref()
        .map_or(GroupState::Unknown, GroupState::parse);
    if let Some(raw) = progress.state.as_deref()
        && state == GroupState::Unknown
    {
        unknown_state(raw);
    }
    // The latest rebalance (the highest generation) where several are listed.
    let rebalance = progress
        .rebalance_info_list
        .iter()
        .max_by_key(|r| (r.generation, r.last_rebalance_timestamp))
        .map(|r| Rebalance {
            generation: r.generation,
            last_ms: r.last_rebalance_timestamp.filter(|t| *t > 0),
            succeeded: r.rebalance_success,
            duration_ms: r.rebalance_time_consuming.filter(|d| *d >= 0),
        });
    GroupInfo {
        state,
        members: member_fields.then(|| u32::try_from(members.len()).unwrap_or(u32::MAX)),
        rebalance,
    }
}

/// Logs a group state this exporter does not know, once per distinct value: it is
/// exported as `unknown`.
fn unknown_state(raw: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.iter().any(|s| s == raw) && seen.len() < 64 {
        seen.push(raw.to_string());
        tracing::warn!(
            state = raw,
            "alikafka reported a group state this exporter does not know; exported as unknown"
        );
    }
}

/// Whether discovery keeps an instance: every instance that may serve traffic is kept,
/// so that maintenance (an upgrade, a migration, scaling) never removes its series.
///
/// `ViewInstanceStatusCode` (the console status, which the docs recommend):
///
/// | Code | Meaning | Kept |
/// |---|---|---|
/// | 0 / 1 | pending / deploying | no |
/// | 2 | running | yes |
/// | 3 | stopped | no |
/// | 4 | expiring soon | yes |
/// | 5 | expired | no |
/// | 6 | released | no |
/// | 7 / 8 | upgrading / migrating | yes |
/// | 21 / 22 | stopping / starting | yes |
/// | 23 | releasing | no |
/// | 30 | auto scaling | yes |
/// | 101 | deployment failed | no |
/// | 102 / 103 | upgrade / migration failed (the instance still runs) | yes |
/// | other | unknown to this table | yes |
///
/// The deprecated `ServiceStatus` is the fallback for answers without it: 0 pending,
/// 1 preparing hardware, 2 initializing, 3 starting, 10 released and 15 expired are
/// dropped; 5 running, 6 migrating, 7 ready for upgrade, 8 upgrading, 9 ready for change,
/// 11 changing, 30 scaling and unknown codes are kept. An instance reporting neither is
/// kept. Source: the `InstanceVO` model of the official SDK
/// (`alibabacloud-alikafka20190916` 2.16.0, `GetInstanceList`).
fn serves_traffic(vo: &wire::InstanceVo) -> bool {
    match (vo.view_instance_status_code, vo.service_status) {
        (Some(view), _) => !matches!(view, 0 | 1 | 3 | 5 | 6 | 23 | 101),
        (None, Some(status)) => !matches!(status, 0 | 1 | 2 | 3 | 10 | 15),
        (None, None) => true,
    }
}

/// The retention of `instance_id` in a `GetInstanceList` answer: `MsgRetain`, in hours
/// (the SDK model: "The retention period of messages in the instance. Unit: hours."). An
/// answer without the instance or the field, or with a value that is not positive, says
/// nothing.
fn msg_retain(answer: &wire::GetInstanceList, instance_id: &str) -> Option<Duration> {
    answer
        .instance_list
        .iter()
        .find(|vo| vo.instance_id.as_deref() == Some(instance_id))
        .and_then(|vo| vo.msg_retain)
        .and_then(|h| u64::try_from(h).ok())
        .filter(|h| *h > 0)
        .map(|h| Duration::from_secs(h * 3600))
}

fn running_instances(answer: &wire::GetInstanceList) -> Vec<DiscoveredInstance> {
    answer
        .instance_list
        .iter()
        .filter(|vo| serves_traffic(vo))
        .filter_map(|vo| {
            let id = vo.instance_id.as_deref().filter(|s| !s.is_empty())?;
            Some(DiscoveredInstance {
                instance_id: id.to_string(),
                name: vo
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.to_string()),
            })
        })
        .collect()
}

/// What the paging loop does after a `GetConsumerList` page.
#[derive(Debug, PartialEq, Eq)]
enum PageStep {
    Done,
    Next,
    /// The page had entries but none new while more are announced: the server ignores
    /// `CurrentPage`, and asking again would loop.
    Stuck,
}

fn next_page(page_len: usize, new: usize, collected: usize, total: Option<i64>) -> PageStep {
    if page_len == 0 {
        return PageStep::Done;
    }
    match total {
        Some(t) if i64::try_from(collected).unwrap_or(i64::MAX) >= t => PageStep::Done,
        // Older answers carry no Total and list every group on every page: a short page
        // is the last, and a page with nothing new means everything has been seen.
        None if page_len < GROUP_PAGE_SIZE as usize || new == 0 => PageStep::Done,
        Some(_) if new == 0 => PageStep::Stuck,
        _ => PageStep::Next,
    }
}

/// The `UpdateConsumerOffset` calls a reset needs. It resets one topic or every subscribed
/// topic (an empty `Topic`) to a time (-1 latest, -2 earliest), or partitions of one topic
/// to explicit offsets. So several topics take a call each; a relative shift, or a time
/// for only some partitions of a topic, cannot be expressed (`None`).
fn reset_calls(request: &ResetRequest) -> Option<Vec<ResetRequest>> {
    match (&request.scope, &request.target) {
        (_, ResetTarget::ShiftBy(_)) => None,
        (ResetScope::Topic(_), _) => Some(vec![request.clone()]),
        (_, ResetTarget::Offsets(_)) | (ResetScope::Partitions { .. }, _) => None,
        (ResetScope::AllTopics(_), _) => Some(vec![request.clone()]),
        (ResetScope::Topics(topics), target) => Some(
            topics
                .iter()
                .map(|t| ResetRequest {
                    scope: ResetScope::Topic(t.clone()),
                    target: target.clone(),
                })
                .collect(),
        ),
    }
}

/// `UpdateConsumerOffset` parameters for a reset (besides region, instance and group).
fn reset_params(request: &ResetRequest) -> Result<Vec<(&'static str, String)>, ProviderError> {
    let refuse = |m: &str| ProviderError::new(ErrorKind::ApiError, m).retryable(false);
    // An empty Topic (sent and signed as `Topic=`) resets every subscribed topic.
    let topic = match &request.scope {
        ResetScope::AllTopics(_) => String::new(),
        ResetScope::Topic(t) => t.clone(),
        ResetScope::Topics(_) => {
            return Err(refuse(
                "alibaba resets one topic, or every topic, per request: send one per topic",
            ));
        }
        ResetScope::Partitions { .. } => {
            return Err(refuse(
                "alibaba resets whole topics to a time: give explicit offsets for some partitions",
            ));
        }
    };
    let mut params = vec![("Topic", topic.clone())];
    match &request.target {
        ResetTarget::Latest => params.extend(timestamp_reset("-1")),
        ResetTarget::Earliest => params.extend(timestamp_reset("-2")),
        ResetTarget::Timestamp(ms) if *ms < 0 => {
            return Err(refuse(
                "a reset time must not be negative (alibaba reads -1 as latest and -2 as earliest)",
            ));
        }
        ResetTarget::Timestamp(ms) => params.extend(timestamp_reset(&ms.to_string())),
        ResetTarget::Offsets(list) => {
            if topic.is_empty() {
                return Err(refuse(
                    "alibaba resets explicit offsets for one topic at a time: name the topic",
                ));
            }
            if list.is_empty() {
                return Err(refuse("no partition offsets given"));
            }
            params.push(("ResetType", "offset".to_string()));
            params.push(("Offsets", offsets_json(list)));
        }
        ResetTarget::ShiftBy(_) => {
            return Err(refuse(
                "alibaba UpdateConsumerOffset has no shift-by reset: give offsets or a time",
            ));
        }
    }
    Ok(params)
}

fn timestamp_reset(time: &str) -> [(&'static str, String); 2] {
    [
        ("ResetType", "timestamp".to_string()),
        ("Time", time.to_string()),
    ]
}

/// The `Offsets` parameter: one compact JSON string, `[{"Partition":0,"Offset":100},...]`.
fn offsets_json(list: &[(i32, i64)]) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        partition: i32,
        offset: i64,
    }
    let entries: Vec<Entry> = list
        .iter()
        .map(|&(partition, offset)| Entry { partition, offset })
        .collect();
    serde_json::to_string(&entries).expect("integers serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Secret;

    const SECRET: &str = "testsecret";
    const TOKEN: &str = "sts-token-example";

    fn creds(id: &str, token: Option<&str>) -> Credentials {
        Credentials {
            id: id.to_string(),
            secret: Secret::new(SECRET),
            token: token.map(Secret::new),
        }
    }

    fn progress_params(hide: bool) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("RegionId", "cn-hangzhou".to_string()),
            ("InstanceId", "alikafka_post-cn-abc123".to_string()),
            ("ConsumerId", "orders-consumer".to_string()),
        ];
        if hide {
            p.push(("HideLastTimestamp", "true".to_string()));
        }
        p
    }

    const ENDPOINT: &str = "https://alikafka.cn-hangzhou.aliyuncs.com";
    const T0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z
    const NONCE: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn v2_request_reproduces_the_sdk_vectors() {
        let r = build_request(
            SignatureVersion::V2,
            ENDPOINT,
            GET_CONSUMER_PROGRESS,
            &progress_params(false),
            &creds("testid", None),
            T0,
            NONCE,
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://alikafka.cn-hangzhou.aliyuncs.com/?AccessKeyId=testid&Action=GetConsumerProgress\
             &ConsumerId=orders-consumer&Format=JSON&InstanceId=alikafka_post-cn-abc123&RegionId=cn-hangzhou\
             &SignatureMethod=HMAC-SHA1&SignatureNonce=0123456789abcdef0123456789abcdef&SignatureVersion=1.0\
             &Timestamp=2024-01-01T00%3A00%3A00Z&Version=2019-09-16&Signature=H9DiFSLxTaXrBgh87GsnxkShtjQ%3D"
        );
        assert_eq!(r.timestamp, "2024-01-01T00:00:00Z");

        let sts = build_request(
            SignatureVersion::V2,
            ENDPOINT,
            GET_CONSUMER_PROGRESS,
            &progress_params(false),
            &creds("STS.testid", Some(TOKEN)),
            T0,
            NONCE,
        )
        .unwrap();
        assert!(sts.url.contains("&SecurityToken=sts-token-example&"));
        assert!(
            sts.url
                .ends_with("&Signature=urcsYeAFcChjTBY4Kl8gH0qcRzE%3D")
        );
    }

    #[test]
    fn v3_request_reproduces_the_sdk_vectors() {
        let r = build_request(
            SignatureVersion::V3,
            ENDPOINT,
            GET_CONSUMER_PROGRESS,
            &progress_params(true),
            &creds("testid", None),
            T0,
            NONCE,
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://alikafka.cn-hangzhou.aliyuncs.com/?ConsumerId=orders-consumer&HideLastTimestamp=true&InstanceId=alikafka_post-cn-abc123&RegionId=cn-hangzhou"
        );
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("host"), Some("alikafka.cn-hangzhou.aliyuncs.com"));
        assert_eq!(header("accept"), Some("application/json"));
        assert_eq!(
            header("authorization"),
            Some(
                "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=a190e4afbeac0a4d529f21220089018f8dd12a84a286212557637fbd4856663b"
            )
        );

        let sts = build_request(
            SignatureVersion::V3,
            ENDPOINT,
            GET_CONSUMER_PROGRESS,
            &progress_params(true),
            &creds("STS.testid", Some(TOKEN)),
            T0,
            NONCE,
        )
        .unwrap();
        let auth = &sts
            .headers
            .iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap()
            .1;
        assert!(auth.ends_with(
            "Signature=37c8ce0d897cec25f827724eae5cdf56088079e54ccd3211399ba79dd2098d66"
        ));
    }

    /// The `Debug` of a signed request of either signature version shows neither the
    /// secret, the security token nor the signature (V2 carries the last two in the URL,
    /// V3 in headers).
    #[test]
    fn signed_request_debug_shows_no_secret_token_or_signature() {
        for version in [SignatureVersion::V2, SignatureVersion::V3] {
            let r = build_request(
                version,
                ENDPOINT,
                UPDATE_CONSUMER_OFFSET,
                &progress_params(false),
                &creds("STS.testid", Some(TOKEN)),
                T0,
                NONCE,
            )
            .unwrap();
            let http = r.to_http().unwrap();
            let signature = match version {
                SignatureVersion::V2 => r.url.rsplit_once("Signature=").unwrap().1.to_string(),
                SignatureVersion::V3 => r
                    .headers
                    .iter()
                    .find(|(k, _)| *k == "authorization")
                    .unwrap()
                    .1
                    .rsplit_once("Signature=")
                    .unwrap()
                    .1
                    .to_string(),
            };
            let shown = format!("{r:?} {http:?} {:?}", http.headers);
            for hidden in ["testsecret", TOKEN, "sts-token", signature.as_str()] {
                assert!(!shown.contains(hidden), "{version}: {hidden} in {shown}");
            }
            assert!(
                shown.contains("x-acs-date") || version == SignatureVersion::V2,
                "{shown}"
            );
        }
        let parsed = sign::parse_v3_authorization(
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host,Signature=deadbeefcafe",
        )
        .unwrap();
        assert!(!format!("{parsed:?}").contains("deadbeefcafe"));
    }

    #[test]
    fn host_keeps_the_port_and_drops_the_scheme() {
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(
            host_of("https://alikafka.cn-hangzhou.aliyuncs.com/"),
            "alikafka.cn-hangzhou.aliyuncs.com"
        );
    }

    #[test]
    fn retry_after_is_a_positive_integer_of_milliseconds() {
        assert_eq!(parse_retry_after("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("0"), None);
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    struct Ctx {
        creds: Credentials,
        sts: String,
    }

    impl Ctx {
        fn new(token: Option<&str>) -> Self {
            Ctx {
                creds: creds("LTAI5tExampleKey", token),
                sts: format!(
                    "POST&%2F&AccessKeyId%3DLTAI5tExampleKey%26SecurityToken%3D{}",
                    sign::percent_encode(&sign::percent_encode(token.unwrap_or("")))
                ),
            }
        }

        fn get(&self) -> AttemptContext<'_> {
            AttemptContext {
                action: GET_CONSUMER_PROGRESS,
                write: false,
                creds: &self.creds,
                timestamp: "2024-01-01T00:00:00Z",
                string_to_sign: &self.sts,
            }
        }
    }

    fn err(status: u16, retry_after: Option<Duration>, body: &str, ctx: &Ctx) -> ProviderError {
        interpret::<wire::GetConsumerProgress>(status, retry_after, body.as_bytes(), &ctx.get())
            .unwrap_err()
    }

    fn gateway(code: &str, message: &str) -> String {
        serde_json::json!({
            "RequestId": "REQ-1", "HostId": "alikafka.cn-hangzhou.aliyuncs.com",
            "Code": code, "Message": message, "Recommend": "https://api.aliyun.com/troubleshoot"
        })
        .to_string()
    }

    #[test]
    fn throttling_codes_are_retryable_and_keep_retry_after() {
        let ctx = Ctx::new(None);
        for code in THROTTLE_CODES {
            let e = err(
                400,
                Some(Duration::from_millis(300)),
                &gateway(code, "slow down"),
                &ctx,
            );
            assert_eq!(e.kind, ErrorKind::Throttled, "{code}");
            assert!(e.retryable);
            assert_eq!(e.retry_after, Some(Duration::from_millis(300)));
            assert_eq!(e.code.as_deref(), Some(code));
            assert_eq!(e.request_id.as_deref(), Some("REQ-1"));
            assert_eq!(e.http_status, Some(400));
        }
    }

    #[test]
    fn auth_codes_name_the_key_and_what_to_check_never_the_secret() {
        let ctx = Ctx::new(Some("tok/en+value"));
        let cases = [
            (
                "InvalidAccessKeyId.NotFound",
                404,
                "is not known to Alibaba Cloud",
            ),
            ("InvalidAccessKeyId.Inactive", 400, "is disabled"),
            ("SignatureDoesNotMatch", 400, "signature was rejected"),
            ("IncompleteSignature", 400, "incomplete"),
            ("InvalidTimeStamp.Expired", 400, "NTP"),
            ("InvalidTimeStamp.Format", 400, "malformed"),
            ("SignatureNonceUsed", 400, "nonce"),
            ("InvalidSecurityToken.Expired", 400, "expired"),
            ("InvalidSecurityToken.Malformed", 400, "malformed"),
            (
                "InvalidSecurityToken.MismatchWithAccessKey",
                400,
                "not issued",
            ),
            ("MissingSecurityToken", 400, "no security token"),
            ("Forbidden.RAM", 403, "alikafka:ListGroup"),
            ("Forbidden", 403, "not permitted"),
        ];
        for (code, status, expect) in cases {
            let echo = format!("server string to sign is:{}&secret={SECRET}", ctx.sts);
            let e = err(status, None, &gateway(code, &echo), &ctx);
            assert_eq!(e.kind, ErrorKind::Auth, "{code}");
            assert!(!e.retryable, "{code}");
            assert!(e.message.contains(expect), "{code}: {}", e.message);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("tok/en+value"), "{shown}");
            assert!(!shown.contains("tok%2Fen"), "{shown}");
            if code.starts_with("InvalidAccessKeyId") || code.starts_with("Forbidden") {
                assert!(e.message.contains("LTAI5tExampleKey"), "{}", e.message);
            }
        }
    }

    #[test]
    fn signature_mismatch_tells_wrong_secret_from_canonicalization() {
        let ctx = Ctx::new(Some("tok/en"));
        let same = format!(
            "Specified signature is not matched with our calculation. server string to sign is:{}",
            ctx.sts
        );
        let e = err(400, None, &gateway("SignatureDoesNotMatch", &same), &ctx);
        assert!(
            e.message
                .contains("secret configured for access key id LTAI5tExampleKey is wrong"),
            "{}",
            e.message
        );
        let other = "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&X";
        let e = err(400, None, &gateway("SignatureDoesNotMatch", other), &ctx);
        assert!(e.message.contains("canonicalization"), "{}", e.message);
    }

    #[test]
    fn not_found_codes() {
        let ctx = Ctx::new(None);
        for code in NOT_FOUND_CODES {
            let e = err(400, None, &gateway(code, "The group does not exist."), &ctx);
            assert_eq!(e.kind, ErrorKind::NotFound, "{code}");
            assert!(!e.retryable);
            assert_eq!(e.message, "The group does not exist.");
        }
    }

    #[test]
    fn server_faults_are_retryable_api_errors_and_the_rest_are_not() {
        let ctx = Ctx::new(None);
        let e = err(500, None, &gateway("InternalError", "boom"), &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, true));
        let e = err(400, None, &gateway("ONS_SYSTEM_ERROR", "boom"), &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, true));
        let e = err(503, None, &gateway("SomethingNew", "boom"), &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, true));
        let e = err(
            400,
            None,
            &gateway("InvalidParameter", "The PageSize parameter is invalid."),
            &ctx,
        );
        assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, false));
        assert_eq!(e.message, "The PageSize parameter is invalid.");
    }

    #[test]
    fn bare_statuses_are_http_errors() {
        let ctx = Ctx::new(None);
        let e = err(
            502,
            Some(Duration::from_millis(5)),
            "<html>502 Bad Gateway</html>",
            &ctx,
        );
        assert_eq!(
            (e.kind, e.retryable, e.http_status),
            (ErrorKind::Http, true, Some(502))
        );
        let e = err(404, None, "not found", &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Http, false));
        let e = err(429, None, "", &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Throttled, true));
        // A JSON body without Code is not a recognised alikafka error either.
        let e = err(500, None, r#"{"error": "x"}"#, &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Http, true));
    }

    #[test]
    fn business_failure_with_http_200() {
        let ctx = Ctx::new(None);
        let body = include_str!("../../../tests/fixtures/alibaba/error_business.json");
        let e = err(200, None, body, &ctx);
        assert_eq!(e.kind, ErrorKind::ApiError);
        assert!(!e.retryable);
        assert_eq!(e.code.as_deref(), Some("400"));
        assert_eq!(
            e.message,
            "Group is active and cannot perform this operation."
        );
        assert_eq!(e.http_status, Some(200));
        assert_eq!(
            e.request_id.as_deref(),
            Some("9C1D2E3F-4A5B-4C6D-8E7F-0A1B2C3D4E5F")
        );
        let e = err(
            200,
            None,
            r#"{"RequestId": "R", "Code": "500", "Message": "x", "Success": false}"#,
            &ctx,
        );
        assert!(e.retryable, "numeric 5xx business codes are server faults");
    }

    #[test]
    fn malformed_answers_are_retryable_bad_responses() {
        let ctx = Ctx::new(None);
        let full = include_str!("../../../tests/fixtures/alibaba/get_consumer_progress.json");
        let e = err(200, None, &full[..full.len() / 2], &ctx);
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, true));
        let e = err(
            200,
            None,
            r#"{"RequestId": "R9", "Code": 200, "Success": true, "ConsumerProgress": "n/a"}"#,
            &ctx,
        );
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, true));
        assert_eq!(e.request_id.as_deref(), Some("R9"));
    }

    fn parse_progress(body: &str) -> wire::ConsumerProgress {
        let (_, p) = wire::parse::<wire::GetConsumerProgress>(body.as_bytes()).unwrap();
        p.consumer_progress.unwrap()
    }

    #[test]
    fn progress_conversion_maps_negative_offsets_and_timestamps_to_none() {
        let p = parse_progress(include_str!(
            "../../../tests/fixtures/alibaba/get_consumer_progress_split_topics.json"
        ));
        let g = progress_from_wire(&p).unwrap();
        let names: Vec<_> = g.topics.iter().map(|t| t.topic.as_str()).collect();
        assert_eq!(names, ["kafka-other", "kafka-test"], "sorted by normalize");
        let other = g.topic("kafka-other").unwrap();
        assert_eq!(
            other.partitions,
            vec![
                PartitionProgress {
                    partition: 0,
                    committed: None,
                    log_end: 7,
                    last_consumed_ms: None,
                    time_lag: None
                },
                PartitionProgress {
                    partition: 1,
                    committed: Some(9),
                    log_end: 12,
                    last_consumed_ms: None,
                    time_lag: None
                },
            ]
        );
        let test = g.topic("kafka-test").unwrap();
        assert_eq!(test.partitions[0].last_consumed_ms, Some(1_566_874_931_649));
        assert_eq!(
            g.info, None,
            "the documented answer says nothing of the group"
        );

        let full = progress_from_wire(&parse_progress(include_str!(
            "../../../tests/fixtures/alibaba/get_consumer_progress.json"
        )))
        .unwrap();
        let info = full.info.unwrap();
        assert_eq!((info.state, info.members), (GroupState::Stable, Some(2)));
        assert_eq!(
            info.rebalance,
            Some(Rebalance {
                generation: Some(12),
                last_ms: Some(1_566_870_000_000),
                succeeded: Some(true),
                duration_ms: Some(3_012),
            })
        );
        assert_eq!(full.topics[0].lag(), 1250);
    }

    #[test]
    fn progress_without_partition_or_log_end_is_rejected() {
        let p: wire::ConsumerProgress = serde_json::from_str(
            r#"{"TopicList": {"TopicList": [{"Topic": "t", "OffsetList": {"OffsetList": [{"BrokerOffset": 1}]}}]}}"#,
        )
        .unwrap();
        assert!(progress_from_wire(&p).unwrap_err().contains("no Partition"));
        let p: wire::ConsumerProgress = serde_json::from_str(
            r#"{"TopicList": {"TopicList": [{"Topic": "t", "OffsetList": {"OffsetList": [{"Partition": 2}]}}]}}"#,
        )
        .unwrap();
        assert!(
            progress_from_wire(&p)
                .unwrap_err()
                .contains("no BrokerOffset")
        );
    }

    #[test]
    fn group_info_counts_distinct_members() {
        let info = group_info_from_wire(&parse_progress(include_str!(
            "../../../tests/fixtures/alibaba/get_consumer_progress.json"
        )))
        .unwrap();
        assert_eq!(
            info,
            GroupInfo {
                state: GroupState::Stable,
                members: Some(2),
                rebalance: info.rebalance.clone(),
            }
        );
        assert!(info.rebalance.is_some());
        let empty = group_info_from_wire(&parse_progress(include_str!(
            "../../../tests/fixtures/alibaba/get_consumer_progress_quirks.json"
        )))
        .unwrap();
        assert_eq!(empty.state, GroupState::Empty);
        assert_eq!(
            empty.members,
            Some(0),
            "empty MemberId/ClientId are not members"
        );
        let by_client: wire::ConsumerProgress = serde_json::from_str(
            r#"{"TopicList": {"TopicList": {"Topic": "t", "OffsetList": {"OffsetList": [
                {"Partition": 0, "ClientId": "a"}, {"Partition": 1, "ClientId": "b", "MemberId": ""},
                {"Partition": 2, "ClientId": "a"}]}}}}"#,
        )
        .unwrap();
        let info = group_info_from_wire(&by_client).unwrap();
        assert_eq!(info.members, Some(2));
        assert_eq!(info.state, GroupState::Unknown);
        assert!(info.is_active());
    }

    #[test]
    fn instance_retention_is_msg_retain_in_hours() {
        let (_, list) = wire::parse::<wire::GetInstanceList>(
            include_str!("../../../tests/fixtures/alibaba/get_instance_list.json").as_bytes(),
        )
        .unwrap();
        assert_eq!(
            msg_retain(&list, "alikafka_post-cn-abc123"),
            Some(Duration::from_secs(72 * 3600))
        );
        assert_eq!(
            msg_retain(&list, "alikafka_pre-cn-legacy01"),
            None,
            "no field"
        );
        assert_eq!(
            msg_retain(&list, "alikafka_post-cn-other"),
            None,
            "not listed"
        );
    }

    #[test]
    fn running_instances_prefer_the_console_status() {
        let (_, list) = wire::parse::<wire::GetInstanceList>(
            include_str!("../../../tests/fixtures/alibaba/get_instance_list.json").as_bytes(),
        )
        .unwrap();
        let ids: Vec<_> = running_instances(&list)
            .into_iter()
            .map(|i| (i.instance_id, i.name))
            .collect();
        assert_eq!(
            ids,
            [
                (
                    "alikafka_post-cn-abc123".to_string(),
                    "prod-kafka".to_string()
                ),
                (
                    "alikafka_pre-cn-legacy01".to_string(),
                    "legacy-kafka".to_string()
                ),
            ]
        );
    }

    #[test]
    fn every_status_that_serves_traffic_is_kept() {
        let vo = |view: Option<i64>, service: Option<i64>| wire::InstanceVo {
            instance_id: Some("i".into()),
            name: None,
            service_status: service,
            view_instance_status_code: view,
            msg_retain: None,
        };
        let kept_views = [2, 4, 7, 8, 21, 22, 30, 102, 103, 999];
        let dropped_views = [0, 1, 3, 5, 6, 23, 101];
        for code in kept_views {
            assert!(serves_traffic(&vo(Some(code), Some(15))), "view {code}");
        }
        for code in dropped_views {
            assert!(!serves_traffic(&vo(Some(code), Some(5))), "view {code}");
        }
        for code in [5, 6, 7, 8, 9, 11, 30, 999] {
            assert!(serves_traffic(&vo(None, Some(code))), "service {code}");
        }
        for code in [0, 1, 2, 3, 10, 15] {
            assert!(!serves_traffic(&vo(None, Some(code))), "service {code}");
        }
        assert!(serves_traffic(&vo(None, None)), "no status at all is kept");
    }

    #[test]
    fn paging_stops_on_total_empty_page_or_short_untotalled_page() {
        assert_eq!(next_page(10, 10, 10, Some(25)), PageStep::Next);
        assert_eq!(next_page(5, 5, 25, Some(25)), PageStep::Done);
        assert_eq!(next_page(0, 0, 20, Some(25)), PageStep::Done);
        assert_eq!(next_page(10, 0, 10, Some(25)), PageStep::Stuck);
        assert_eq!(next_page(7, 7, 7, None), PageStep::Done);
        assert_eq!(next_page(150, 150, 150, None), PageStep::Next);
        // No Total (the legacy answer lists everything on every page): a page that brings
        // nothing new ends the listing with what was collected.
        assert_eq!(next_page(150, 0, 150, None), PageStep::Done);
    }

    fn reset(
        scope: ResetScope,
        target: ResetTarget,
    ) -> Result<Vec<(&'static str, String)>, ProviderError> {
        reset_params(&ResetRequest { scope, target })
    }

    fn kv(list: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        list.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn reset_parameters_for_every_target() {
        let all = || ResetScope::AllTopics(vec!["a".into(), "b".into()]);
        let one = || ResetScope::Topic("orders".into());
        assert_eq!(
            reset(all(), ResetTarget::Latest).unwrap(),
            kv(&[("Topic", ""), ("ResetType", "timestamp"), ("Time", "-1")])
        );
        assert_eq!(
            reset(one(), ResetTarget::Earliest).unwrap(),
            kv(&[
                ("Topic", "orders"),
                ("ResetType", "timestamp"),
                ("Time", "-2")
            ])
        );
        assert_eq!(
            reset(all(), ResetTarget::Timestamp(1_679_587_200_000)).unwrap(),
            kv(&[
                ("Topic", ""),
                ("ResetType", "timestamp"),
                ("Time", "1679587200000")
            ])
        );
        assert_eq!(
            reset(one(), ResetTarget::Offsets(vec![(0, 100), (1, 200)])).unwrap(),
            kv(&[
                ("Topic", "orders"),
                ("ResetType", "offset"),
                (
                    "Offsets",
                    r#"[{"Partition":0,"Offset":100},{"Partition":1,"Offset":200}]"#
                )
            ])
        );
        for (scope, target) in [
            (all(), ResetTarget::Offsets(vec![(0, 1)])),
            (one(), ResetTarget::Offsets(vec![])),
            (one(), ResetTarget::ShiftBy(-10)),
            (one(), ResetTarget::Timestamp(-1)),
            (
                ResetScope::Topics(vec!["a".into(), "b".into()]),
                ResetTarget::Latest,
            ),
            (
                ResetScope::Partitions {
                    topic: "a".into(),
                    partitions: vec![0],
                },
                ResetTarget::Latest,
            ),
        ] {
            let e = reset(scope, target).unwrap_err();
            assert_eq!((e.kind, e.retryable), (ErrorKind::ApiError, false));
        }
    }

    #[test]
    fn several_topics_take_a_call_each_and_shifts_are_not_expressible() {
        let request = |scope, target| ResetRequest { scope, target };
        let two = ResetScope::Topics(vec!["a".into(), "b".into()]);
        assert_eq!(
            reset_calls(&request(two.clone(), ResetTarget::Earliest)),
            Some(vec![
                request(ResetScope::Topic("a".into()), ResetTarget::Earliest),
                request(ResetScope::Topic("b".into()), ResetTarget::Earliest),
            ])
        );
        let all = request(ResetScope::AllTopics(vec!["a".into()]), ResetTarget::Latest);
        assert_eq!(reset_calls(&all), Some(vec![all.clone()]));
        let offsets = request(
            ResetScope::Topic("a".into()),
            ResetTarget::Offsets(vec![(0, 1)]),
        );
        assert_eq!(reset_calls(&offsets), Some(vec![offsets.clone()]));
        let some = ResetScope::Partitions {
            topic: "a".into(),
            partitions: vec![1],
        };
        for r in [
            request(ResetScope::Topic("a".into()), ResetTarget::ShiftBy(-1)),
            request(two, ResetTarget::Offsets(vec![(0, 1)])),
            request(some, ResetTarget::Latest),
        ] {
            assert_eq!(reset_calls(&r), None, "{r:?}");
        }
    }
}

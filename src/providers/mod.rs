//! The one interface to the clouds: [`Provider`] (reads, what the daemon holds),
//! [`OffsetWriter`] (writes, which only `reset-offsets` builds), their error type, each
//! cloud's [`Profile`], and construction.
//!
//! Each cloud is one directory (`alibaba/`, `tencent/`) that alone knows that cloud's
//! field names, signing, error codes and defaults (its [`Profile`]), and converts its
//! answers into `model` types. Requests go through [`call::Caller`], which counts every
//! attempt and retries what is safe to retry within the poll's deadline.

pub mod alibaba;
pub mod budget;
pub mod call;
pub mod credentials;
pub mod http;
pub mod tencent;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kcle_clock::{Clock, Instant};
pub use kcle_cloud::Action;

use crate::credentials::{CredentialEnv, CredentialProvider};
use crate::model::{
    Cloud, DiscoveredInstance, GroupInfo, GroupProgress, InstanceRef, ResetRequest,
};
use alibaba::SignatureVersion;

/// The future a provider method returns.
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A cloud's management API for reading: all the daemon ever holds, so it cannot write.
pub trait Provider: Send + Sync + fmt::Debug {
    /// Which cloud this is.
    fn cloud(&self) -> Cloud;

    /// Reads one consumer group's committed and log-end offsets for every topic and
    /// partition it consumes (Alibaba `GetConsumerProgress`, Tencent `DescribeGroupOffsets`
    /// over all pages). Gives up at `deadline`, retries included.
    fn group_progress<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, GroupProgress>;

    /// Lists every consumer group of an instance (Alibaba `GetConsumerList`, Tencent
    /// `DescribeGroup`), all pages, in the cloud's order.
    fn list_groups<'a>(
        &'a self,
        instance: &'a InstanceRef,
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<String>>;

    /// Lists the running instances of this account in `region` (Alibaba
    /// `GetInstanceList`, Tencent `DescribeInstances`, all pages).
    fn list_instances<'a>(
        &'a self,
        region: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, Vec<DiscoveredInstance>>;

    /// Reads a group's state and membership (Alibaba: from `GetConsumerProgress`;
    /// Tencent: `DescribeGroupInfo`).
    fn group_info<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        deadline: Instant,
    ) -> ProviderFuture<'a, GroupInfo>;

    /// Reads the state and membership of several groups in one call, for clouds whose
    /// progress answer does not carry them (see [`Profile::group_info_batch`]); groups the
    /// answer does not cover are left out. Others answer nothing.
    fn group_infos<'a>(
        &'a self,
        _instance: &'a InstanceRef,
        _groups: &'a [&'a str],
        _deadline: Instant,
    ) -> ProviderFuture<'a, Vec<(String, GroupInfo)>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The produce time (Unix ms) of the message at `offset`, where the cloud can read it
    /// without the message's content (see [`Profile::probe_action`]); `None` when there is
    /// no message there any more.
    fn message_time<'a>(
        &'a self,
        _instance: &'a InstanceRef,
        _topic: &'a str,
        _partition: i32,
        _offset: i64,
        _deadline: Instant,
    ) -> ProviderFuture<'a, Option<i64>> {
        Box::pin(async {
            Err(ProviderError::new(
                ErrorKind::ApiError,
                "this cloud cannot read a message's produce time",
            )
            .retryable(false))
        })
    }

    /// How long the instance keeps messages, for clouds that report it per instance (see
    /// [`Profile::retention`]); `None` when the answer does not say.
    fn instance_retention<'a>(
        &'a self,
        _instance: &'a InstanceRef,
        _deadline: Instant,
    ) -> ProviderFuture<'a, Option<Duration>> {
        Box::pin(async { Ok(None) })
    }

    /// How long `topic` keeps messages, for clouds that report it per topic (see
    /// [`Profile::retention`]); `None` when the answer does not say.
    fn topic_retention<'a>(
        &'a self,
        _instance: &'a InstanceRef,
        _topic: &'a str,
        _deadline: Instant,
    ) -> ProviderFuture<'a, Option<Duration>> {
        Box::pin(async { Ok(None) })
    }
}

/// A cloud's management API for moving committed offsets. Built only by
/// [`build_writer`], which only the `reset-offsets` command calls (an architecture test
/// checks that); the daemon holds [`Provider`]s, which have no write method.
pub trait OffsetWriter: Provider {
    /// The requests, in order, in which this cloud applies `request`, each sent by one
    /// [`OffsetWriter::reset_offsets`] call (e.g. Alibaba resets explicit offsets one topic
    /// per request); `None` when the cloud cannot express it (a relative shift on Alibaba),
    /// so that the caller sends explicit offsets it computed instead, or refuses.
    fn reset_calls(&self, request: &ResetRequest) -> Option<Vec<ResetRequest>>;

    /// Moves a group's committed offsets in one request (Alibaba `UpdateConsumerOffset`,
    /// Tencent `ModifyGroupOffsets` / `BatchModifyGroupOffsets`); a request that
    /// [`OffsetWriter::reset_calls`] would split or cannot express is refused unsent.
    /// Business failures answered with HTTP 200 are errors. Never retried: a write must
    /// not be repeated blindly.
    fn reset_offsets<'a>(
        &'a self,
        instance: &'a InstanceRef,
        group: &'a str,
        request: &'a ResetRequest,
        deadline: Instant,
    ) -> ProviderFuture<'a, ()>;
}

/// What the rest of the exporter needs to know about a cloud; each `providers/<cloud>/`
/// exports its own, so no other module matches on a cloud to learn these facts.
#[derive(Debug)]
pub struct Profile {
    pub cloud: Cloud,
    /// Base URL of the management API; `{region}` stands for the account's region.
    pub default_endpoint: &'static str,
    /// The standard environment variables the cloud's official SDKs read.
    pub credential_env: CredentialEnv,
    /// Every other variable its credential sources read (OIDC, profiles, metadata
    /// switches), as the official SDKs name them.
    pub credential_variables: &'static [&'static str],
    /// Role session durations its STS accepts (`oidc.duration`, `assume_role.duration`).
    pub session_duration: (Duration, Duration),
    /// Every API action this exporter calls, with the cloud's documented limits.
    pub actions: &'static [Action],
    /// Client-side budget, requests per second, of an action without a documented limit.
    pub fallback_rate: f64,
    /// The action every poll calls.
    pub poll_action: &'static str,
    /// Whether the account may choose a request signature version (`signature_version`).
    pub selectable_signature: bool,
    /// Requests one poll of a group needs, from its last progress (paging), for planning
    /// a round against the budget.
    pub requests_per_poll: fn(Option<&GroupProgress>) -> usize,
    /// Groups per [`Provider::group_infos`] call, where group state is read separately
    /// from the progress; `None` where the progress answer carries it.
    pub group_info_batch: Option<usize>,
    /// The action that reads a message's produce time (`time_lag.probe`), if any.
    pub probe_action: Option<&'static str>,
    /// Where the cloud reports how long messages are kept, and the action that reads it.
    pub retention: Option<(RetentionScope, &'static str)>,
}

/// Whether a cloud reports message retention once per instance or per topic.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RetentionScope {
    /// [`Provider::instance_retention`]: every topic of the instance keeps messages as long.
    Instance,
    /// [`Provider::topic_retention`], one request per topic.
    Topic,
}

impl Profile {
    /// The default client-side budget of `action`: the documented limit, or the fallback.
    pub fn default_rate(&self, action: &str) -> f64 {
        self.actions
            .iter()
            .find(|a| a.name == action)
            .and_then(|a| a.documented_limit)
            .unwrap_or(self.fallback_rate)
    }

    /// The names of the actions, in table order.
    pub fn action_names(&self) -> Vec<&'static str> {
        self.actions.iter().map(|a| a.name).collect()
    }

    /// The endpoint base URL for `region`, from a template or the default, without a
    /// trailing slash.
    pub fn endpoint_url(&self, template: Option<&str>, region: &str) -> String {
        template
            .unwrap_or(self.default_endpoint)
            .replace("{region}", region)
            .trim_end_matches('/')
            .to_string()
    }
}

/// The profile of `cloud`.
pub fn profile(cloud: Cloud) -> &'static Profile {
    match cloud {
        Cloud::Alibaba => &alibaba::PROFILE,
        Cloud::Tencent => &tencent::PROFILE,
    }
}

/// Every cloud's profile.
pub fn profiles() -> [&'static Profile; 2] {
    Cloud::ALL.map(profile)
}

/// The small fixed set of failure kinds used as the `kind` metric label.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No answer within the deadline.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// A non-2xx HTTP status without a recognised cloud error.
    Http,
    /// The cloud's rate limit (Tencent `RequestLimitExceeded*`, Alibaba `Throttling*`).
    Throttled,
    /// Credentials rejected, expired, or not permitted (signature, key, token, RAM/CAM).
    Auth,
    /// The answer could not be parsed or broke the documented shape.
    BadResponse,
    /// Any other error the cloud returned (bad parameter, internal error, ...).
    ApiError,
    /// The instance or consumer group does not exist.
    NotFound,
    /// Local credentials could not be read; no request was sent.
    Credentials,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::Http,
        ErrorKind::Throttled,
        ErrorKind::Auth,
        ErrorKind::BadResponse,
        ErrorKind::ApiError,
        ErrorKind::NotFound,
        ErrorKind::Credentials,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Http => "http",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Auth => "auth",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::ApiError => "api_error",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Credentials => "credentials",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed cloud call: what kind of failure, the cloud's code, message and RequestId.
///
/// Messages never contain a secret, a signature or a signed URL.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// The API action that failed, set by the call executor.
    pub action: Option<&'static str>,
    /// The cloud's error code, e.g. `Throttling.User` or `AuthFailure.SignatureFailure`.
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
    /// Whether the same request may succeed if sent again.
    pub retryable: bool,
    /// A wait the cloud asked for (Alibaba `x-acs-retry-after`).
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of `kind` with a message; retryable as the kind usually is.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            action: None,
            code: None,
            message: message.into(),
            request_id: None,
            http_status: None,
            retryable: matches!(
                kind,
                ErrorKind::Timeout
                    | ErrorKind::Connection
                    | ErrorKind::Throttled
                    | ErrorKind::BadResponse
            ),
            retry_after: None,
        }
    }

    pub fn with_action(mut self, action: &'static str) -> Self {
        self.action = Some(action);
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id.filter(|s| !s.is_empty());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// The failure kind, for the `kind` label.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn describe(&self) -> String {
        let mut s = self.kind.as_str().to_string();
        if let Some(code) = &self.code {
            s.push_str(": ");
            s.push_str(code);
        }
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        let mut extra = Vec::new();
        if let Some(status) = self.http_status {
            extra.push(format!("http {status}"));
        }
        if let Some(id) = &self.request_id {
            extra.push(format!("request id {id}"));
        }
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(", ")));
        }
        s
    }
}

impl From<crate::credentials::CredentialError> for ProviderError {
    fn from(e: crate::credentials::CredentialError) -> Self {
        ProviderError::new(ErrorKind::Credentials, e.to_string())
    }
}

/// Receives a call for every API attempt, error and retry; `metrics` implements it so
/// that providers never touch Prometheus types.
pub trait ApiObserver: Send + Sync {
    /// A request is about to be sent.
    fn request(&self, cloud: Cloud, action: &'static str);
    /// A request failed.
    fn error(&self, cloud: Cloud, action: &'static str, kind: ErrorKind);
    /// A failed request is about to be retried.
    fn retry(&self, cloud: Cloud, action: &'static str);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoopObserver;

impl ApiObserver for NoopObserver {
    fn request(&self, _: Cloud, _: &'static str) {}
    fn error(&self, _: Cloud, _: &'static str, _: ErrorKind) {}
    fn retry(&self, _: Cloud, _: &'static str) {}
}

/// What every provider needs besides its account config.
#[derive(Clone)]
pub struct ProviderDeps {
    pub http: reqwest::Client,
    pub clock: Clock,
    pub observer: Arc<dyn ApiObserver>,
    /// Longest single HTTP attempt; the poll's deadline may cut it shorter.
    pub attempt_timeout: Duration,
    pub retry: call::RetryPolicy,
    /// The account's request budget (shared by all its regions).
    pub budget: Arc<budget::Budget>,
}

/// Everything a provider is built from, resolved from one `accounts[]` entry.
#[derive(Debug)]
pub struct AccountSpec {
    pub name: Arc<str>,
    pub cloud: Cloud,
    pub region: Arc<str>,
    /// Base URL without trailing slash.
    pub endpoint: String,
    pub credentials: CredentialProvider,
    pub signature_version: SignatureVersion,
}

impl AccountSpec {
    /// The account's current credentials; an error names the account and the source.
    /// Local keys that cannot be read are a `credentials` failure (nothing was sent);
    /// temporary credentials that could not be had (sign-in refused, expired, metadata
    /// unreachable) an `auth` failure. Neither is retried within a poll.
    pub async fn credentials(&self) -> Result<Arc<crate::credentials::Credentials>, ProviderError> {
        self.credentials.get().await.map_err(|e| {
            let kind = if e.is_sign_in() {
                ErrorKind::Auth
            } else {
                ErrorKind::Credentials
            };
            ProviderError::new(kind, format!("account {}: {e}", self.name)).retryable(false)
        })
    }

    /// [`AccountSpec::credentials`] before a call is sent, so that credentials that are
    /// not there fail the poll without counting a request; waits at most until
    /// `deadline` for a first fetch (which goes on in the background).
    pub async fn credentials_by(
        &self,
        clock: &Clock,
        deadline: Instant,
    ) -> Result<Arc<crate::credentials::Credentials>, ProviderError> {
        match clock.timeout_at(deadline, self.credentials()).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::new(
                ErrorKind::Timeout,
                format!(
                    "account {}: no credentials from {} before the poll deadline",
                    self.name,
                    self.credentials.describe()
                ),
            )
            .retryable(false)),
        }
    }
}

/// Builds the read-only provider of an account (what the daemon and `once` use).
pub fn build(spec: AccountSpec, deps: &ProviderDeps) -> Arc<dyn Provider> {
    match spec.cloud {
        Cloud::Alibaba => Arc::new(alibaba::AlibabaProvider::new(spec, deps)),
        Cloud::Tencent => Arc::new(tencent::TencentProvider::new(spec, deps)),
    }
}

/// Builds the provider of an account that can also write offsets. Only `reset-offsets`
/// calls this.
pub fn build_writer(spec: AccountSpec, deps: &ProviderDeps) -> Arc<dyn OffsetWriter> {
    match spec.cloud {
        Cloud::Alibaba => Arc::new(alibaba::AlibabaProvider::new(spec, deps)),
        Cloud::Tencent => Arc::new(tencent::TencentProvider::new(spec, deps)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An observer that records every call as text (`request A`, `error A kind`,
    /// `retry A`), for tests and debugging.
    #[derive(Debug, Default)]
    pub(crate) struct RecordingObserver(std::sync::Mutex<Vec<String>>);

    impl RecordingObserver {
        fn push(&self, event: String) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
        }

        /// Every event so far, in order.
        pub(crate) fn events(&self) -> Vec<String> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        /// How many events are exactly `event`.
        pub(crate) fn count(&self, event: &str) -> usize {
            self.events().iter().filter(|e| *e == event).count()
        }
    }

    impl ApiObserver for RecordingObserver {
        fn request(&self, _: Cloud, action: &'static str) {
            self.push(format!("request {action}"));
        }
        fn error(&self, _: Cloud, action: &'static str, kind: ErrorKind) {
            self.push(format!("error {action} {kind}"));
        }
        fn retry(&self, _: Cloud, action: &'static str) {
            self.push(format!("retry {action}"));
        }
    }

    #[test]
    fn error_display_has_code_status_and_request_id() {
        let e = ProviderError::new(
            ErrorKind::Throttled,
            "Request was denied due to user flow control.",
        )
        .with_code("Throttling.User")
        .with_status(400)
        .with_request_id(Some("ABC-123".into()));
        assert_eq!(
            e.to_string(),
            "throttled: Throttling.User: Request was denied due to user flow control. (http 400, request id ABC-123)"
        );
        assert!(e.retryable);
        assert!(!ProviderError::new(ErrorKind::Auth, "x").retryable);
    }
}

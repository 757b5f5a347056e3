//! Temporary credentials kept fresh: the [`Fetch`] interface every source of expiring
//! credentials implements (in `providers/<cloud>/credentials.rs`), and the [`Refresher`]
//! that caches what a source gave and refreshes it before it expires.
//!
//! The rules, the same for every source:
//! - A caller never waits for a refresh while the current credentials are valid: when they
//!   are due (the source's own rule, e.g. Tencent's "fewer than 300 s left"), the first
//!   caller starts one refresh in a background task and every caller goes on with the
//!   current credentials.
//! - Only one refresh runs at a time, however many callers ask: callers with nothing
//!   valid to use wait for the one in flight.
//! - A failed refresh keeps the current credentials until they expire. It is counted
//!   (`credentials_refresh_failed`), logged once (the first failure of a run; the rest at
//!   debug level) and retried with exponential backoff and seeded jitter, started by the
//!   next caller after the backoff.
//! - Once expired (or before the first success), callers get
//!   [`CredentialError::Unavailable`] naming the source and the last failure; while a
//!   backoff runs they get it at once, without a request.
//!
//! Time comes from the clock: expiry is wall time, backoff monotonic, so all of it runs on
//! virtual time in tests. A fetch never hangs: each is cut off at [`FETCH_TIMEOUT`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use kcle_clock::{Clock, Instant};
use tokio::sync::watch;

use super::{CredentialError, Credentials};

/// The longest a fetch may take, every request of it included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff before the first retry of a failed refresh; doubled for each further one.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest backoff between two refresh attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// The kind of source a credential or a failure came from: the `source` label of
/// `kafka_cloud_lag_exporter_credentials_refresh_errors_total`, a small fixed set.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// Keys from environment variables, files or inline values.
    Static,
    /// A role assumed with an OIDC token (ACK RRSA, TKE pod identity).
    Oidc,
    /// The instance's role, from the metadata service.
    InstanceRole,
    /// A role assumed with other credentials.
    AssumeRole,
    /// A profile file that could not be used.
    Profile,
    /// Alibaba's `ALIBABA_CLOUD_CREDENTIALS_URI`.
    CredentialsUri,
    /// The default chain, when none of its sources gave credentials.
    DefaultChain,
}

impl SourceKind {
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Static,
        SourceKind::Oidc,
        SourceKind::InstanceRole,
        SourceKind::AssumeRole,
        SourceKind::Profile,
        SourceKind::CredentialsUri,
        SourceKind::DefaultChain,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Static => "static",
            SourceKind::Oidc => "oidc",
            SourceKind::InstanceRole => "instance_role",
            SourceKind::AssumeRole => "assume_role",
            SourceKind::Profile => "profile",
            SourceKind::CredentialsUri => "credentials_uri",
            SourceKind::DefaultChain => "default_chain",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials a source gave, with when they stop working and when to refresh them.
#[derive(Clone, Debug)]
pub struct Issued {
    pub credentials: Arc<Credentials>,
    /// When they expire; `None`: never (static keys).
    pub expires_at: Option<SystemTime>,
    /// When to start refreshing them (the source's rule); `None`: never.
    pub refresh_at: Option<SystemTime>,
}

impl Issued {
    /// Credentials that never expire.
    pub fn lasting(credentials: Credentials) -> Self {
        Issued {
            credentials: Arc::new(credentials),
            expires_at: None,
            refresh_at: None,
        }
    }

    fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    fn due(&self, now: SystemTime) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }
}

/// Why a source gave no credentials: which kind of source and what went wrong (with the
/// cloud's code and RequestId where there is one). Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub kind: SourceKind,
    pub message: String,
}

impl FetchError {
    pub fn new(kind: SourceKind, message: impl Into<String>) -> Self {
        FetchError {
            kind,
            message: message.into(),
        }
    }
}

/// The future [`Fetch::fetch`] returns.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Issued, FetchError>> + Send + 'a>>;

/// A source of credentials that fetches them (from STS, a metadata service, a file).
pub trait Fetch: Send + Sync + fmt::Debug {
    /// The kind of source, for metrics and messages.
    fn kind(&self) -> SourceKind;
    /// What it is, for messages: the role, the file, the endpoint. Never a secret.
    fn describe(&self) -> String;
    /// Every kind whose failures it may report (a chain reports its members').
    fn kinds(&self) -> Vec<SourceKind> {
        vec![self.kind()]
    }
    /// Fetches credentials once; the caller retries.
    fn fetch(&self) -> FetchFuture<'_>;
}

/// Receives every refresh outcome; `metrics` implements it, so that this module never
/// touches Prometheus types.
pub trait CredentialObserver: Send + Sync {
    /// New credentials of `account` are in use, expiring at `expires_at`.
    fn credentials_refreshed(&self, account: &str, expires_at: Option<SystemTime>);
    /// A refresh of `account`'s credentials from a `source` failed.
    fn credentials_refresh_failed(&self, account: &str, source: SourceKind);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoCredentialObserver;

impl CredentialObserver for NoCredentialObserver {
    fn credentials_refreshed(&self, _: &str, _: Option<SystemTime>) {}
    fn credentials_refresh_failed(&self, _: &str, _: SourceKind) {}
}

type Outcome = Option<Result<Issued, FetchError>>;

/// Caches one source's credentials and refreshes them (see the module docs).
pub struct Refresher {
    account: Arc<str>,
    source: Arc<dyn Fetch>,
    clock: Clock,
    observer: Arc<dyn CredentialObserver>,
    /// Whether these are the credentials requests are signed with (and so the ones
    /// `credentials_refreshed` reports); false for the base of an assumed role.
    reports_expiry: bool,
    state: Mutex<State>,
}

struct State {
    current: Option<Issued>,
    /// The refresh in flight, if any: its outcome arrives here.
    inflight: Option<watch::Receiver<Outcome>>,
    /// Failed refreshes in a row.
    failures: u32,
    /// No new attempt before this, after a failure.
    retry_at: Option<Instant>,
    last_error: Option<FetchError>,
    /// Whether the expiry of the current credentials was logged.
    expiry_logged: bool,
    rng: fastrand::Rng,
}

impl fmt::Debug for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field("account", &self.account)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Refresher {
    /// Refreshes `source`'s credentials of `account`; `reports_expiry` when they are the
    /// ones requests are signed with.
    pub fn new(
        account: Arc<str>,
        source: Arc<dyn Fetch>,
        clock: Clock,
        observer: Arc<dyn CredentialObserver>,
        reports_expiry: bool,
    ) -> Arc<Refresher> {
        let rng = clock.rng();
        Arc::new(Refresher {
            account,
            source,
            clock,
            observer,
            reports_expiry,
            state: Mutex::new(State {
                current: None,
                inflight: None,
                failures: 0,
                retry_at: None,
                last_error: None,
                expiry_logged: false,
                rng,
            }),
        })
    }

    /// What the credentials come from.
    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// Every source kind whose failures this refresher may count.
    pub fn kinds(&self) -> Vec<SourceKind> {
        self.source.kinds()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current credentials (see the module docs for when this waits).
    pub async fn get(self: &Arc<Self>) -> Result<Arc<Credentials>, CredentialError> {
        let mut pending = {
            let mut s = self.lock();
            let now = self.clock.now();
            let mono = self.clock.instant();
            let may_start = s.retry_at.is_none_or(|at| mono >= at);
            let valid = match &s.current {
                Some(c) if !c.expired(now) => Some((c.credentials.clone(), c.due(now))),
                _ => None,
            };
            if let Some((credentials, due)) = valid {
                if due && s.inflight.is_none() && may_start {
                    self.start(&mut s);
                }
                return Ok(credentials);
            }
            let expired_at = s.current.as_ref().map(|c| c.expires_at);
            if let Some(expired_at) = expired_at
                && !s.expiry_logged
            {
                s.expiry_logged = true;
                tracing::error!(
                    account = %self.account,
                    source = %self.source.kind(),
                    expired_at = %timestamp(expired_at),
                    last_error = %s.last_error.as_ref().map_or(String::new(), |e| e.to_string()),
                    "credentials expired before a refresh succeeded; polls fail until one does"
                );
            }
            match (&s.inflight, may_start) {
                (Some(rx), _) => rx.clone(),
                (None, true) => self.start(&mut s),
                (None, false) => return Err(self.unavailable(&s, s.last_error.as_ref())),
            }
        };
        let outcome = match pending.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The task ended without an answer (the runtime shuts down).
            Err(_) => None,
        };
        match outcome {
            Some(Ok(issued)) => Ok(issued.credentials),
            Some(Err(e)) => Err(self.unavailable(&self.lock(), Some(&e))),
            None => Err(self.unavailable(&self.lock(), None)),
        }
    }

    /// Starts a refresh in a background task; returns where its outcome arrives.
    fn start(self: &Arc<Self>, s: &mut State) -> watch::Receiver<Outcome> {
        let (tx, rx) = watch::channel(None);
        s.inflight = Some(rx.clone());
        let this = self.clone();
        tokio::spawn(async move {
            let cutoff = this.clock.instant() + FETCH_TIMEOUT;
            let result = match this.clock.timeout_at(cutoff, this.source.fetch()).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::new(
                    this.source.kind(),
                    format!("no credentials within {} s", FETCH_TIMEOUT.as_secs()),
                )),
            };
            this.settle(&result);
            let _ = tx.send(Some(result));
        });
        rx
    }

    /// Records a refresh's outcome: new credentials, or a failure counted, logged once and
    /// backed off.
    fn settle(&self, result: &Result<Issued, FetchError>) {
        let mut s = self.lock();
        s.inflight = None;
        match result {
            Ok(issued) => {
                if s.failures > 0 {
                    tracing::info!(
                        account = %self.account,
                        source = %self.source.kind(),
                        failed_attempts = s.failures,
                        expires_at = %timestamp(issued.expires_at),
                        "credentials refreshed after failed attempts"
                    );
                } else {
                    tracing::debug!(
                        account = %self.account,
                        source = %self.source.kind(),
                        expires_at = %timestamp(issued.expires_at),
                        "credentials refreshed"
                    );
                }
                s.current = Some(issued.clone());
                s.failures = 0;
                s.retry_at = None;
                s.last_error = None;
                s.expiry_logged = false;
                if self.reports_expiry {
                    self.observer
                        .credentials_refreshed(&self.account, issued.expires_at);
                }
            }
            Err(e) => {
                self.observer
                    .credentials_refresh_failed(&self.account, e.kind);
                let retry = s.failures.min(16);
                let cap = RETRY_BASE
                    .saturating_mul(1u32 << retry)
                    .min(RETRY_MAX)
                    .as_millis() as u64;
                let wait = Duration::from_millis(s.rng.u64(cap / 2..=cap));
                s.failures += 1;
                s.retry_at = Some(self.clock.instant() + wait);
                let valid_until = s
                    .current
                    .as_ref()
                    .filter(|c| !c.expired(self.clock.now()))
                    .map(|c| timestamp(c.expires_at));
                if s.failures == 1 {
                    match &valid_until {
                        Some(until) => tracing::warn!(
                            account = %self.account,
                            source = %e.kind,
                            error = %e,
                            valid_until = %until,
                            "credentials refresh failed; the current credentials stay in use until they expire, retrying with backoff"
                        ),
                        None => tracing::warn!(
                            account = %self.account,
                            source = %e.kind,
                            error = %e,
                            "fetching credentials failed; polls fail until it succeeds, retrying with backoff"
                        ),
                    }
                } else {
                    tracing::debug!(
                        account = %self.account,
                        source = %e.kind,
                        error = %e,
                        attempt = s.failures,
                        retry_in_ms = wait.as_millis() as u64,
                        "credentials refresh failed again"
                    );
                }
                s.last_error = Some(e.clone());
            }
        }
    }

    /// The error callers get when there are no valid credentials.
    fn unavailable(&self, s: &State, error: Option<&FetchError>) -> CredentialError {
        let why = error.map_or_else(
            || "the refresh did not finish".to_string(),
            |e| e.to_string(),
        );
        let kind = error.map_or(self.source.kind(), |e| e.kind);
        let message = match &s.current {
            Some(c) => format!(
                "credentials from {} expired at {} and could not be refreshed: {why}",
                self.source.describe(),
                timestamp(c.expires_at)
            ),
            None => format!("no credentials from {}: {why}", self.source.describe()),
        };
        CredentialError::Unavailable { kind, message }
    }
}

/// An expiry as RFC 3339 UTC (or `never`), for logs and messages.
pub fn timestamp(at: Option<SystemTime>) -> String {
    match at {
        None => "never".into(),
        Some(t) => jiff::Timestamp::from_second(kcle_clock::unix_secs(t))
            .map(|ts| ts.to_string())
            .unwrap_or_else(|_| "an unrepresentable time".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Secret;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A source that counts fetches, answers after `latency`, and fails while `failing`.
    #[derive(Debug)]
    struct Scripted {
        clock: Clock,
        fetches: AtomicU32,
        failing: std::sync::atomic::AtomicBool,
        lifetime: Duration,
        refresh_before: Duration,
        latency: Duration,
    }

    impl Fetch for Scripted {
        fn kind(&self) -> SourceKind {
            SourceKind::Oidc
        }
        fn describe(&self) -> String {
            "scripted source".into()
        }
        fn fetch(&self) -> FetchFuture<'_> {
            Box::pin(async move {
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                self.clock.sleep(self.latency).await;
                if self.failing.load(Ordering::SeqCst) {
                    return Err(FetchError::new(SourceKind::Oidc, "sts said no"));
                }
                let now = self.clock.now();
                Ok(Issued {
                    credentials: Arc::new(Credentials {
                        id: format!("STS.{n}"),
                        secret: Secret::new("s"),
                        token: Some(Secret::new("t")),
                    }),
                    expires_at: Some(now + self.lifetime),
                    refresh_at: Some(now + self.lifetime - self.refresh_before),
                })
            })
        }
    }

    #[derive(Default)]
    struct Counting(Mutex<Vec<String>>);
    impl CredentialObserver for Counting {
        fn credentials_refreshed(&self, account: &str, at: Option<SystemTime>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("refreshed {account} {}", timestamp(at)));
        }
        fn credentials_refresh_failed(&self, account: &str, source: SourceKind) {
            self.0
                .lock()
                .unwrap()
                .push(format!("failed {account} {source}"));
        }
    }

    fn setup(latency: Duration) -> (Clock, Arc<Scripted>, Arc<Counting>, Arc<Refresher>) {
        let clock = Clock::virtual_at_unix(1_700_000_000);
        let source = Arc::new(Scripted {
            clock: clock.clone(),
            fetches: AtomicU32::new(0),
            failing: Default::default(),
            lifetime: Duration::from_secs(3600),
            refresh_before: Duration::from_secs(300),
            latency,
        });
        let observer = Arc::new(Counting::default());
        let r = Refresher::new(
            "acct".into(),
            source.clone(),
            clock.clone(),
            observer.clone(),
            true,
        );
        (clock, source, observer, r)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let (_clock, source, observer, r) = setup(Duration::from_secs(2));
        let calls: Vec<_> = (0..50).map(|_| r.clone()).collect();
        let all = futures_join(calls).await;
        assert!(all.iter().all(|c| c.id == "STS.1"));
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
        assert_eq!(
            observer.0.lock().unwrap().as_slice(),
            ["refreshed acct 2023-11-14T23:13:22Z"]
        );
    }

    async fn futures_join(rs: Vec<Arc<Refresher>>) -> Vec<Arc<Credentials>> {
        let handles: Vec<_> = rs
            .into_iter()
            .map(|r| tokio::spawn(async move { r.get().await.unwrap() }))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn due_credentials_are_refreshed_in_the_background_without_waiting() {
        let (clock, source, _, r) = setup(Duration::from_secs(5));
        assert_eq!(r.get().await.unwrap().id, "STS.1");
        clock.sleep(Duration::from_secs(3300)).await;
        // Due: the caller gets the current ones at once, a refresh starts.
        let before = clock.instant();
        assert_eq!(r.get().await.unwrap().id, "STS.1");
        assert_eq!(clock.instant(), before, "the caller did not wait");
        assert_eq!(r.get().await.unwrap().id, "STS.1", "one refresh in flight");
        clock.sleep(Duration::from_secs(6)).await;
        assert_eq!(r.get().await.unwrap().id, "STS.2");
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refreshes_keep_the_credentials_back_off_and_expire() {
        let (clock, source, observer, r) = setup(Duration::ZERO);
        r.get().await.unwrap();
        source.failing.store(true, Ordering::SeqCst);
        clock.sleep(Duration::from_secs(3301)).await;
        // Every second until expiry: still the old ones, refreshes backed off.
        for _ in 0..298 {
            assert_eq!(r.get().await.unwrap().id, "STS.1");
            tokio::task::yield_now().await;
            clock.sleep(Duration::from_secs(1)).await;
        }
        let attempts = source.fetches.load(Ordering::SeqCst) - 1;
        // 1 + 1..2 + 2..4 + 4..8 + ... up to 60 s: between 8 and 12 in 298 s.
        assert!((5..=14).contains(&attempts), "{attempts} attempts");
        let failures = observer
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == "failed acct oidc")
            .count();
        assert_eq!(failures as u32, attempts);
        clock.sleep(Duration::from_secs(2)).await;
        let e = r.get().await.unwrap_err();
        assert!(e.is_sign_in());
        let msg = e.to_string();
        assert!(
            msg.contains("credentials from scripted source expired at 2023-11-14T23:13:20Z"),
            "{msg}"
        );
        assert!(msg.contains("sts said no"), "{msg}");
        // Recovery.
        source.failing.store(false, Ordering::SeqCst);
        clock.sleep(RETRY_MAX).await;
        assert!(r.get().await.unwrap().id.starts_with("STS."));
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_fetch_that_fails_is_not_repeated_before_the_backoff() {
        let (clock, source, _, r) = setup(Duration::ZERO);
        source.failing.store(true, Ordering::SeqCst);
        let e = r.get().await.unwrap_err().to_string();
        assert!(
            e.starts_with("no credentials from scripted source: sts said no"),
            "{e}"
        );
        r.get().await.unwrap_err();
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
        clock.sleep(RETRY_BASE).await;
        r.get().await.unwrap_err();
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    }
}

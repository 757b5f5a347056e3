//! Sends one API request with counting and retries: every attempt is reported to the
//! [`ApiObserver`](super::ApiObserver); retryable failures (throttling, 5xx, timeouts,
//! broken connections, malformed bodies) are retried with exponential backoff and full
//! jitter, but never past the poll's deadline. Auth, permission and parameter errors are
//! returned at once. Each attempt is raced against its own deadline on the shared clock
//! (the HTTP client sets no timeout of its own), and waits and jitter come from that clock
//! too, so all of it runs on virtual time in tests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kcle_clock::{Clock, Instant};

use super::budget::Budget;
use super::{ApiObserver, ErrorKind, ProviderError};
use crate::model::Cloud;

/// Most retries of a request that keeps being throttled (the poll deadline usually ends
/// it sooner).
pub const MAX_THROTTLED_RETRIES: u32 = 10;

/// How failed requests are retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// Backoff before the first retry; doubled for each further retry.
    pub base_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based): a random wait up to
    /// `min(max, base * 2^retry)` ("full jitter"), so that many groups failing together
    /// do not retry together.
    pub fn backoff(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .min(self.max_backoff);
        let millis = cap.as_millis() as u64;
        if millis == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rng.u64(millis / 2..=millis))
    }
}

/// Sends requests for one account and counts them.
pub struct Caller {
    cloud: Cloud,
    clock: Clock,
    budget: Arc<Budget>,
    observer: Arc<dyn ApiObserver>,
    retry: RetryPolicy,
    attempt_timeout: Duration,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("cloud", &self.cloud)
            .field("retry", &self.retry)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl Caller {
    pub fn new(cloud: Cloud, deps: &super::ProviderDeps) -> Self {
        Caller {
            cloud,
            clock: deps.clock.clone(),
            budget: deps.budget.clone(),
            observer: deps.observer.clone(),
            retry: deps.retry,
            attempt_timeout: deps.attempt_timeout,
        }
    }

    /// The clock requests are signed and timed with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Runs `attempt` until it succeeds, fails for good, or `deadline` passes.
    ///
    /// `attempt` must build a freshly signed request each time (nonces and timestamps must
    /// not be reused); each attempt is cut off at the poll's deadline or after the
    /// attempt timeout, whichever comes first.
    pub async fn call<T, F, Fut>(
        &self,
        action: &'static str,
        deadline: Instant,
        attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.run(action, deadline, self.retry.max_retries, attempt)
            .await
    }

    /// Sends a write request exactly once: whether a failed write was applied is unknown,
    /// so it is never repeated automatically.
    pub async fn call_once<T, F, Fut>(
        &self,
        action: &'static str,
        deadline: Instant,
        attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.run(action, deadline, 0, attempt).await
    }

    async fn run<T, F, Fut>(
        &self,
        action: &'static str,
        deadline: Instant,
        max_retries: u32,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut rng = self.clock.rng();
        let mut retry = 0;
        loop {
            let now = self.clock.instant();
            let generation = match self.budget.reserve(action, now, deadline) {
                Ok(slot) => {
                    // Timers tick in milliseconds: a shorter wait would round up to one.
                    if slot.wait >= Duration::from_millis(1) {
                        self.clock.sleep(slot.wait).await;
                    }
                    slot.generation
                }
                Err(wait) => {
                    return Err(ProviderError::new(
                        ErrorKind::Timeout,
                        format!(
                            "the request budget of {action} ({:.1}/s) has no slot before the poll deadline (next in {} ms)",
                            self.budget.rate(action),
                            wait.as_millis()
                        ),
                    )
                    .retryable(false)
                    .with_action(action));
                }
            };
            if self.clock.instant() >= deadline {
                let e = ProviderError::new(
                    ErrorKind::Timeout,
                    "poll deadline passed before the request was sent",
                )
                .with_action(action);
                return Err(e);
            }
            let permit = self.budget.permit().await;
            let started = self.clock.instant();
            if started >= deadline {
                return Err(ProviderError::new(
                    ErrorKind::Timeout,
                    "poll deadline passed while waiting for a free request slot",
                )
                .with_action(action));
            }
            self.observer.request(self.cloud, action);
            let cutoff = deadline.min(started + self.attempt_timeout);
            let outcome = match self.clock.timeout_at(cutoff, attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ProviderError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within {} ms",
                        cutoff.saturating_duration_since(started).as_millis()
                    ),
                )),
            };
            drop(permit);
            let err = match outcome {
                Ok(v) => {
                    self.budget.succeeded(action, self.clock.instant());
                    return Ok(v);
                }
                Err(e) => e.with_action(action),
            };
            if err.kind != ErrorKind::Credentials {
                self.observer.error(self.cloud, action, err.kind);
            }
            if err.kind == ErrorKind::Throttled {
                self.budget
                    .throttled(action, self.clock.instant(), generation);
            }
            // A throttled request was refused, not processed: "not now" is safe to repeat
            // for as long as the deadline allows (bounded all the same).
            let limit = if err.kind == ErrorKind::Throttled && max_retries > 0 {
                MAX_THROTTLED_RETRIES.max(max_retries)
            } else {
                max_retries
            };
            if !err.retryable || retry >= limit {
                return Err(err);
            }
            let mut wait = self.retry.backoff(retry, &mut rng);
            if let Some(after) = err.retry_after {
                wait = wait.max(after);
            }
            if self.clock.instant() + wait >= deadline {
                return Err(err);
            }
            tracing::debug!(
                cloud = %self.cloud, action, error = %err, retry = retry + 1,
                wait_ms = wait.as_millis() as u64, "retrying"
            );
            self.observer.retry(self.cloud, action);
            self.clock.sleep(wait).await;
            retry += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ProviderDeps;

    type Counting = crate::providers::tests::RecordingObserver;

    fn caller(clock: Clock, observer: Arc<Counting>) -> Caller {
        let deps = ProviderDeps {
            http: crate::providers::http::client(),
            clock,
            observer,
            attempt_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            budget: Arc::new(Budget::new(Default::default(), 5.0)),
        };
        Caller::new(Cloud::Tencent, &deps)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_then_succeeds() {
        let clock = Clock::virtual_at_unix(1_000_000);
        let obs = Arc::new(Counting::default());
        let c = caller(clock.clone(), obs.clone());
        let deadline = clock.instant() + Duration::from_secs(30);
        let mut n = 0;
        let r = c
            .call("DescribeGroupOffsets", deadline, || {
                n += 1;
                let fail = n < 3;
                async move {
                    if fail {
                        Err(ProviderError::new(ErrorKind::Throttled, "slow down"))
                    } else {
                        Ok(7)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
        let log = obs.events();
        assert_eq!(
            log,
            [
                "request DescribeGroupOffsets",
                "error DescribeGroupOffsets throttled",
                "retry DescribeGroupOffsets",
                "request DescribeGroupOffsets",
                "error DescribeGroupOffsets throttled",
                "retry DescribeGroupOffsets",
                "request DescribeGroupOffsets",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn auth_errors_are_not_retried() {
        let clock = Clock::virtual_at_unix(1_000_000);
        let obs = Arc::new(Counting::default());
        let c = caller(clock.clone(), obs.clone());
        let deadline = clock.instant() + Duration::from_secs(30);
        let r: Result<(), _> = c
            .call("GetConsumerProgress", deadline, || async {
                Err(ProviderError::new(ErrorKind::Auth, "bad key"))
            })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Auth);
        assert_eq!(obs.events().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn never_waits_past_the_deadline() {
        let clock = Clock::virtual_at_unix(1_000_000);
        let obs = Arc::new(Counting::default());
        let c = caller(clock.clone(), obs.clone());
        let start = clock.instant();
        let deadline = start + Duration::from_secs(2);
        let r: Result<(), _> = c
            .call("GetConsumerProgress", deadline, || async {
                Err(ProviderError::new(ErrorKind::Throttled, "x")
                    .with_retry_after(Some(Duration::from_secs(5))))
            })
            .await;
        assert!(r.is_err());
        // The 5 s retry-after does not fit the 2 s deadline: one attempt, no wait.
        assert_eq!(clock.instant(), start);
        assert_eq!(obs.events().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_by_the_budget_and_throttling_slows_it() {
        let clock = Clock::virtual_at_unix(1_000_000);
        let obs = Arc::new(Counting::default());
        let c = caller(clock.clone(), obs.clone());
        let start = clock.instant();
        let deadline = start + Duration::from_secs(60);
        for _ in 0..5 {
            c.call("DescribeGroupOffsets", deadline, || async { Ok(()) })
                .await
                .unwrap();
        }
        // 5 requests at 5/s: the 5th waits until +0.8 s.
        assert_eq!(clock.instant(), start + Duration::from_millis(800));
        // One throttled answer is noise; a quarter of the recent requests is a limit.
        for n in 0..10 {
            let r: Result<(), _> = c
                .call("DescribeGroupOffsets", deadline, || async {
                    Err(ProviderError::new(ErrorKind::Throttled, "x").retryable(false))
                })
                .await;
            assert_eq!(r.unwrap_err().action, Some("DescribeGroupOffsets"));
            let expected = if n < 9 { 5.0 } else { 2.5 };
            assert_eq!(
                c.budget.rate("DescribeGroupOffsets"),
                expected,
                "after {} throttles",
                n + 1
            );
        }
        // No slot before a deadline that is too close: fail without sending.
        let before = obs.events().len();
        let near = clock.instant() + Duration::from_millis(10);
        let r: Result<(), _> = c
            .call("DescribeGroupOffsets", near, || async { Ok(()) })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Timeout);
        assert_eq!(obs.events().len(), before, "nothing was sent");
    }

    /// An attempt that does not answer is cut off at the attempt timeout (on the clock,
    /// not by the HTTP client), retried, and the poll ends at its deadline.
    #[tokio::test(start_paused = true)]
    async fn a_silent_attempt_times_out_on_the_clock() {
        let clock = Clock::virtual_at_unix(1_000_000);
        let obs = Arc::new(Counting::default());
        let c = caller(clock.clone(), obs.clone());
        let start = clock.instant();
        let r: Result<(), _> = c
            .call(
                "DescribeGroupOffsets",
                start + Duration::from_secs(25),
                std::future::pending,
            )
            .await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(e.message.contains("no answer within"), "{e}");
        // Two attempts of 10 s, then the third is cut at the 25 s deadline.
        assert_eq!(obs.count("request DescribeGroupOffsets"), 3);
        assert_eq!(clock.instant(), start + Duration::from_secs(25));
    }

    /// The same clock seed gives the same jitter, so retry timing repeats between runs.
    #[tokio::test(start_paused = true)]
    async fn jitter_is_seeded_on_a_virtual_clock() {
        let run = || async {
            let clock = Clock::virtual_at_unix(1_000_000);
            let c = caller(clock.clone(), Arc::default());
            let start = clock.instant();
            let _: Result<(), _> = c
                .call(
                    "DescribeGroupOffsets",
                    start + Duration::from_secs(60),
                    || async {
                        Err(ProviderError::new(ErrorKind::ApiError, "boom").retryable(true))
                    },
                )
                .await;
            clock.instant() - start
        };
        assert_eq!(run().await, run().await);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(1);
        for retry in 0..10 {
            let cap = (p.base_backoff * 2u32.pow(retry.min(20))).min(p.max_backoff);
            let b = p.backoff(retry, &mut rng);
            assert!(
                b <= cap && b >= cap / 2,
                "retry {retry}: {b:?} vs cap {cap:?}"
            );
        }
    }
}

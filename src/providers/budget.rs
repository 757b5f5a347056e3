//! The client-side API budget: one pacer per (account, action) that spaces requests at
//! the allowed rate, never in bursts, and adapts to the cloud's throttling.
//!
//! The rate is halved when at least [`THROTTLE_SHARE`] of the last [`WINDOW`] requests of
//! the action were throttled (at most once per [`DECREASE_SPACING`], and only counting
//! requests sent since the last decrease). Sending faster than a cloud's limit gets most
//! requests throttled, so an unknown limit is found within a few halvings; a cloud that
//! throttles now and then whatever our rate (a busy region) rarely fills the window, so it
//! does not drag the rate down.
//!
//! While requests succeed the rate climbs back slowly (the configured rate per
//! [`RECOVERY`]), earned by accepted traffic rather than by idle time, so a limit once
//! found is crossed again rarely; the rare decrease caused by background throttling costs
//! a few minutes at a lower rate.
//! Waits use the shared clock and never pass the poll's deadline. The budget also bounds
//! the account's requests in flight; a request holds its permit only while it is sent and
//! answered, never while it waits to be retried.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kcle_clock::Instant;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Time to climb from zero back to the configured rate while requests flow.
pub const RECOVERY: Duration = Duration::from_secs(300);
/// Requests whose outcomes decide a decrease. With [`THROTTLE_SHARE`], a background of
/// 6 % throttled requests (one in 16) fills it about once in a thousand windows.
pub const WINDOW: usize = 40;
/// Share of throttled requests in the window that halves the rate.
pub const THROTTLE_SHARE: f64 = 0.25;
/// Two decreases are at least this far apart.
pub const DECREASE_SPACING: Duration = Duration::from_secs(1);
/// The rate never drops below the configured one divided by this.
const MAX_SLOWDOWN: f64 = 64.0;

/// One action's pacer.
#[derive(Clone, Debug, PartialEq)]
struct Pacer {
    configured: f64,
    rate: f64,
    next_free: Option<Instant>,
    last_change: Option<Instant>,
    last_decrease: Option<Instant>,
    /// Outcomes of the last [`WINDOW`] requests, `true` for throttled.
    recent: std::collections::VecDeque<bool>,
    /// Bumped by every decrease. Requests reserved before it were sent at the old rate;
    /// their throttling says nothing about the new one, so it is not counted again.
    generation: u64,
}

/// A reserved request slot: how long to wait for it, and the rate generation it was
/// reserved under (pass it back with the outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub wait: Duration,
    pub generation: u64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Pacer {
            configured: rate,
            rate,
            next_free: None,
            last_change: None,
            last_decrease: None,
            recent: std::collections::VecDeque::with_capacity(WINDOW),
            generation: 0,
        }
    }

    fn remember(&mut self, throttled: bool) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(throttled);
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }
}

/// The current state of one action's budget, for metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetState {
    pub action: &'static str,
    /// Requests per second allowed now.
    pub rate: f64,
    /// Requests per second configured.
    pub configured: f64,
}

/// The budgets of one account (shared by all its regions).
#[derive(Debug)]
pub struct Budget {
    pacers: Mutex<HashMap<&'static str, Pacer>>,
    rate_of: HashMap<String, f64>,
    fallback: f64,
    in_flight: Semaphore,
}

/// Requests in flight per account when not configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 20;

impl Budget {
    /// Budgets from configured rates by action; unlisted actions get `fallback`.
    pub fn new(rates: HashMap<String, f64>, fallback: f64) -> Self {
        Budget {
            pacers: Mutex::new(HashMap::new()),
            rate_of: rates,
            fallback,
            in_flight: Semaphore::new(DEFAULT_CONCURRENCY),
        }
    }

    /// Sets how many requests may be in flight at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.in_flight = Semaphore::new(n.max(1));
        self
    }

    /// Waits for a slot among the requests in flight; held while one request is sent.
    pub async fn permit(&self) -> SemaphorePermit<'_> {
        self.in_flight
            .acquire()
            .await
            .expect("the in-flight semaphore is never closed")
    }

    /// An effectively unlimited budget (tests of other parts).
    pub fn unlimited() -> Self {
        Budget::new(HashMap::new(), 1e9).with_concurrency(1024)
    }

    fn with<R>(&self, action: &'static str, f: impl FnOnce(&mut Pacer) -> R) -> R {
        let mut pacers = self.pacers.lock().unwrap_or_else(|e| e.into_inner());
        let pacer = pacers.entry(action).or_insert_with(|| {
            Pacer::new(self.rate_of.get(action).copied().unwrap_or(self.fallback))
        });
        f(pacer)
    }

    /// Reserves the next request slot of `action` at or after `now`. Returns the wait
    /// until it, or `Err(wait)` without reserving when the slot would fall after `deadline`.
    pub fn reserve(
        &self,
        action: &'static str,
        now: Instant,
        deadline: Instant,
    ) -> Result<Slot, Duration> {
        self.with(action, |p| {
            let slot = p.next_free.map_or(now, |n| n.max(now));
            let wait = slot.saturating_duration_since(now);
            if slot > deadline {
                return Err(wait);
            }
            p.next_free = Some(slot + p.interval());
            Ok(Slot {
                wait,
                generation: p.generation,
            })
        })
    }

    /// A request was throttled by the cloud: halve the rate when the recent share of
    /// throttled requests says our rate is the cause.
    pub fn throttled(&self, action: &'static str, now: Instant, generation: u64) {
        self.with(action, |p| {
            if generation != p.generation {
                return;
            }
            p.remember(true);
            let share = p.recent.iter().filter(|t| **t).count() as f64 / WINDOW as f64;
            let recent = p
                .last_decrease
                .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_SPACING);
            if share < THROTTLE_SHARE || recent {
                return;
            }
            p.rate = (p.rate / 2.0).max(p.configured / MAX_SLOWDOWN);
            p.last_decrease = Some(now);
            p.last_change = Some(now);
            p.recent.clear();
            p.generation += 1;
            // Slots already handed out at the old rate keep their times; later ones are
            // spaced at the new rate from the last of them.
            tracing::debug!(
                action,
                rate = p.rate,
                "throttled by the cloud; slowing down"
            );
        });
    }

    /// A request succeeded: let a lowered rate climb back towards the configured one.
    ///
    /// Each success adds `configured / (RECOVERY × rate)`, i.e. `configured / RECOVERY`
    /// per second while requests flow at the current rate, and nothing while idle: a rate
    /// is earned back by traffic the cloud accepted, not by the time that passed.
    pub fn succeeded(&self, action: &'static str, now: Instant) {
        self.with(action, |p| {
            p.remember(false);
            if p.rate < p.configured {
                let step = p.configured / (RECOVERY.as_secs_f64() * p.rate);
                p.rate = (p.rate + step).min(p.configured);
                p.last_change = Some(now);
            }
        });
    }

    /// Requests per second `action` may use now.
    pub fn rate(&self, action: &'static str) -> f64 {
        self.with(action, |p| p.rate)
    }

    /// The state of every action used so far.
    pub fn states(&self) -> Vec<BudgetState> {
        let pacers = self.pacers.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<BudgetState> = pacers
            .iter()
            .map(|(a, p)| BudgetState {
                action: a,
                rate: p.rate,
                configured: p.configured,
            })
            .collect();
        out.sort_by_key(|s| s.action);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed base and offsets from it: the budget only compares instants.
    fn t(ms: u64) -> Instant {
        thread_local!(static BASE: Instant = kcle_clock::Clock::system().instant());
        BASE.with(|b| *b + Duration::from_millis(ms))
    }

    #[test]
    fn requests_are_spaced_at_the_rate_without_bursts() {
        let b = Budget::new([("A".to_string(), 10.0)].into(), 1.0);
        let far = t(1_000_000);
        let waits: Vec<Duration> = (0..4)
            .map(|_| b.reserve("A", t(0), far).unwrap().wait)
            .collect();
        assert_eq!(waits, [0, 100, 200, 300].map(Duration::from_millis));
        // Other actions have their own pacer (here the fallback rate).
        assert_eq!(
            b.reserve("B", t(0), far).map(|s| s.wait),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            b.reserve("B", t(0), far).map(|s| s.wait),
            Ok(Duration::from_secs(1))
        );
        // Time passing frees the slots.
        assert_eq!(
            b.reserve("A", t(1_000), far).map(|s| s.wait),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn slots_past_the_deadline_are_not_reserved() {
        let b = Budget::new([("A".to_string(), 1.0)].into(), 1.0);
        assert!(b.reserve("A", t(0), t(500)).is_ok());
        assert_eq!(b.reserve("A", t(0), t(500)), Err(Duration::from_secs(1)));
        // The refused slot stays free for a request with more time.
        assert_eq!(
            b.reserve("A", t(0), t(5_000)).map(|s| s.wait),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn dense_throttling_halves_the_rate_and_success_recovers_it_linearly() {
        let b = Budget::new([("A".to_string(), 100.0)].into(), 1.0);
        for i in 0..9 {
            b.throttled("A", t(i), 0);
        }
        assert_eq!(b.rate("A"), 100.0, "9 of 40 is below the share");
        b.throttled("A", t(9), 0);
        assert_eq!(b.rate("A"), 50.0, "10 of the last 40 throttled");
        for i in 0..10 {
            b.throttled("A", t(500 + i), 0);
        }
        assert_eq!(
            b.rate("A"),
            50.0,
            "requests reserved at the old rate do not count again"
        );
        for i in 0..10 {
            b.throttled("A", t(600 + i), 1);
        }
        assert_eq!(b.rate("A"), 50.0, "at most one decrease per second");
        for i in 0..10 {
            b.throttled("A", t(1_600 + i), 1);
        }
        assert_eq!(b.rate("A"), 25.0);
        // Idle time earns nothing back; accepted traffic does: 30 s of requests at the
        // budget rate add a tenth of the configured rate.
        b.succeeded("A", t(100_000));
        assert!(b.rate("A") < 25.1, "{}", b.rate("A"));
        let mut ms = 100_000;
        while ms < 130_000 {
            b.succeeded("A", t(ms));
            ms += (1000.0 / b.rate("A")) as u64;
        }
        assert!((34.0..36.0).contains(&b.rate("A")), "{}", b.rate("A"));
        for i in 0..100_000 {
            b.succeeded("A", t(130_000 + i));
        }
        assert_eq!(b.rate("A"), 100.0, "never above the configured rate");
        for s in 0..40 {
            for i in 0..10 {
                b.throttled("A", t(200_000 + s * 2_000 + i), 2 + s);
            }
        }
        assert_eq!(b.rate("A"), 100.0 / 64.0, "floor");
    }

    #[test]
    fn occasional_throttling_does_not_drag_the_rate_down() {
        let b = Budget::new([("A".to_string(), 100.0)].into(), 1.0);
        // One request in 16 throttled (6 %) whatever the rate, for ten minutes of
        // requests sent as fast as the budget allows.
        let mut rng = fastrand::Rng::with_seed(3);
        let (mut ms, mut sum, mut n) = (0u64, 0.0, 0);
        while ms < 600_000 {
            let slot = b.reserve("A", t(ms), t(ms + 60_000)).unwrap();
            if rng.u32(0..16) == 0 {
                b.throttled("A", t(ms), slot.generation);
            } else {
                b.succeeded("A", t(ms));
            }
            sum += b.rate("A");
            n += 1;
            ms += (1000.0 / b.rate("A")).max(1.0) as u64;
        }
        let mean = sum / n as f64;
        assert!(mean >= 85.0, "mean rate {mean}");
    }
}

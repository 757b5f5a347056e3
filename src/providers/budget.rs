//! The client-side API budget: one pacer per (account, action) that spaces requests at
//! the allowed rate, never in bursts, and adapts to the cloud's throttling.
//!
//! On a throttling answer the rate is halved (at most once per second, so a burst of
//! throttled answers to requests already in flight counts once); while requests succeed
//! it climbs back linearly to the configured rate over [`RECOVERY`]. An unknown limit is
//! thus found with few throttled requests, and a lowered one is probed again slowly.
//! Waits use the shared clock and never pass the poll's deadline.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::model::Cloud;

/// Time to climb from a lowered rate back to the configured one.
pub const RECOVERY: Duration = Duration::from_secs(60);
/// The rate never drops below the configured one divided by this.
const MAX_SLOWDOWN: f64 = 64.0;
/// Throttling answers closer together than this halve the rate only once.
const DECREASE_SPACING: Duration = Duration::from_secs(1);

/// Documented (Tencent) or conservative (Alibaba) default budgets, in requests per
/// second, of every action this exporter calls.
pub fn default_rate_limits(cloud: Cloud) -> &'static [(&'static str, f64)] {
    match cloud {
        // Alibaba publishes no limits for these operations.
        Cloud::Alibaba => &[
            (
                "GetConsumerProgress",
                crate::config::ALIBABA_DEFAULT_RATE_LIMIT,
            ),
            ("GetConsumerList", crate::config::ALIBABA_DEFAULT_RATE_LIMIT),
            ("GetInstanceList", crate::config::ALIBABA_DEFAULT_RATE_LIMIT),
            (
                "UpdateConsumerOffset",
                crate::config::ALIBABA_DEFAULT_RATE_LIMIT,
            ),
        ],
        // "默认接口请求频率限制" of each API's documentation; BatchModifyGroupOffsets has
        // none published, so it gets the smaller documented figure.
        Cloud::Tencent => &[
            ("DescribeGroupOffsets", 100.0),
            ("DescribeGroup", 100.0),
            ("DescribeGroupInfo", 100.0),
            ("ModifyGroupOffsets", 100.0),
            ("BatchModifyGroupOffsets", 20.0),
            ("DescribeInstances", 20.0),
        ],
    }
}

/// One action's pacer.
#[derive(Clone, Debug, PartialEq)]
struct Pacer {
    configured: f64,
    rate: f64,
    next_free: Option<SystemTime>,
    last_change: Option<SystemTime>,
    last_decrease: Option<SystemTime>,
    /// The latest time seen, to notice the clock stepping back.
    last_now: Option<SystemTime>,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Pacer {
            configured: rate,
            rate,
            next_free: None,
            last_change: None,
            last_decrease: None,
            last_now: None,
        }
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
}

impl Budget {
    /// Budgets from configured rates by action; unlisted actions get `fallback`.
    pub fn new(rates: HashMap<String, f64>, fallback: f64) -> Self {
        Budget {
            pacers: Mutex::new(HashMap::new()),
            rate_of: rates,
            fallback,
        }
    }

    /// An effectively unlimited budget (tests of other parts).
    pub fn unlimited() -> Self {
        Budget::new(HashMap::new(), 1e9)
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
        now: SystemTime,
        deadline: SystemTime,
    ) -> Result<Duration, Duration> {
        self.with(action, |p| {
            // A clock stepped back (NTP) would otherwise leave the reserved slots far in
            // the future and stall every request: move them back by the same amount.
            if let (Some(last), Some(next)) = (p.last_now, p.next_free)
                && let Ok(back) = last.duration_since(now)
            {
                p.next_free = Some(next.checked_sub(back).unwrap_or(now));
            }
            p.last_now = Some(now);
            let slot = p.next_free.map_or(now, |n| n.max(now));
            let wait = slot.duration_since(now).unwrap_or_default();
            if slot > deadline {
                return Err(wait);
            }
            p.next_free = Some(slot + p.interval());
            Ok(wait)
        })
    }

    /// A request was throttled by the cloud: halve the rate (once per second at most).
    pub fn throttled(&self, action: &'static str, now: SystemTime) {
        self.with(action, |p| {
            let recent = p
                .last_decrease
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() < DECREASE_SPACING);
            if recent {
                return;
            }
            p.rate = (p.rate / 2.0).max(p.configured / MAX_SLOWDOWN);
            p.last_decrease = Some(now);
            p.last_change = Some(now);
            tracing::debug!(
                action,
                rate = p.rate,
                "throttled by the cloud; slowing down"
            );
        });
    }

    /// A request succeeded: let a lowered rate climb back towards the configured one.
    pub fn succeeded(&self, action: &'static str, now: SystemTime) {
        self.with(action, |p| {
            if p.rate >= p.configured {
                p.last_change = Some(now);
                return;
            }
            let elapsed = p.last_change.map_or(Duration::ZERO, |t| {
                now.duration_since(t).unwrap_or_default()
            });
            let step = p.configured * elapsed.as_secs_f64() / RECOVERY.as_secs_f64();
            p.rate = (p.rate + step).min(p.configured);
            p.last_change = Some(now);
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

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn requests_are_spaced_at_the_rate_without_bursts() {
        let b = Budget::new([("A".to_string(), 10.0)].into(), 1.0);
        let far = t(1_000_000);
        let waits: Vec<Duration> = (0..4).map(|_| b.reserve("A", t(0), far).unwrap()).collect();
        assert_eq!(waits, [0, 100, 200, 300].map(Duration::from_millis));
        // Other actions have their own pacer (here the fallback rate).
        assert_eq!(b.reserve("B", t(0), far), Ok(Duration::ZERO));
        assert_eq!(b.reserve("B", t(0), far), Ok(Duration::from_secs(1)));
        // Time passing frees the slots.
        assert_eq!(b.reserve("A", t(1_000), far), Ok(Duration::ZERO));
    }

    #[test]
    fn a_clock_stepping_back_does_not_stall_the_budget() {
        let b = Budget::new([("A".to_string(), 1.0)].into(), 1.0);
        let far = t(10_000_000);
        assert_eq!(b.reserve("A", t(360_000), far), Ok(Duration::ZERO));
        assert_eq!(b.reserve("A", t(360_000), far), Ok(Duration::from_secs(1)));
        // The clock steps back two minutes: the queue keeps its shape, not its old times.
        assert_eq!(b.reserve("A", t(240_000), far), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn slots_past_the_deadline_are_not_reserved() {
        let b = Budget::new([("A".to_string(), 1.0)].into(), 1.0);
        assert!(b.reserve("A", t(0), t(500)).is_ok());
        assert_eq!(b.reserve("A", t(0), t(500)), Err(Duration::from_secs(1)));
        // The refused slot stays free for a request with more time.
        assert_eq!(b.reserve("A", t(0), t(5_000)), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn throttling_halves_once_per_second_and_recovers_linearly() {
        let b = Budget::new([("A".to_string(), 100.0)].into(), 1.0);
        b.throttled("A", t(0));
        b.throttled("A", t(500));
        assert_eq!(
            b.rate("A"),
            50.0,
            "two throttles within a second count once"
        );
        b.throttled("A", t(1_500));
        assert_eq!(b.rate("A"), 25.0);
        b.succeeded("A", t(1_500));
        b.succeeded("A", t(31_500));
        assert!((b.rate("A") - 75.0).abs() < 1e-9, "{}", b.rate("A"));
        b.succeeded("A", t(100_000));
        assert_eq!(b.rate("A"), 100.0, "never above the configured rate");
        for i in 0..20 {
            b.throttled("A", t(200_000 + i * 2_000));
        }
        assert_eq!(b.rate("A"), 100.0 / 64.0, "floor");
    }
}

//! Time as the daemon sees it: wall-clock reads and waits behind one trait.
//!
//! Production code uses [`SystemClock`]. Tests use [`ManualClock`], whose waits finish at
//! once by moving its time forward, so retries, budgets and staleness are tested without
//! sleeping. Signing code never reads a clock: callers pass the time in.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A boxed future that waits; what [`Clock::sleep`] returns.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Source of wall-clock time and of waits measured in that time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits for `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The clock every component shares.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `SystemTime::now()` and `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when told to, or when something sleeps on it.
///
/// A sleep moves the time forward by its duration and returns after one yield, so code
/// that waits (backoff, pacing) runs at once while seeing the time it waited pass.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
    frozen: std::sync::atomic::AtomicBool,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: SystemTime) -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(start),
            frozen: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A manual clock starting at a whole number of Unix seconds.
    pub fn at_unix(secs: u64) -> Arc<Self> {
        Self::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// While frozen, sleeps return at once without moving the time (for tests that
    /// need every request to see the same instant).
    pub fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the time, forward or backward.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        if !self.frozen.load(std::sync::atomic::Ordering::Relaxed) {
            self.advance(duration);
        }
        Box::pin(tokio::task::yield_now())
    }
}

/// Seconds since the Unix epoch as a float, for `_timestamp_seconds` gauges.
pub fn unix_seconds_f64(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Whole seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> i64 {
    unix_millis(t).div_euclid(1000)
}

/// The time at `millis` milliseconds since the Unix epoch.
pub fn from_unix_millis(millis: i64) -> SystemTime {
    if millis >= 0 {
        UNIX_EPOCH + Duration::from_millis(millis as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_moves_time_by_its_duration() {
        let clock = ManualClock::at_unix(1_000);
        let start = clock.now();
        clock.sleep(Duration::from_secs(5)).await;
        clock.sleep(Duration::from_secs(3)).await;
        assert_eq!(clock.now(), start + Duration::from_secs(8));
    }

    #[test]
    fn unix_conversions_round_trip() {
        let t = from_unix_millis(1_566_874_931_671);
        assert_eq!(unix_millis(t), 1_566_874_931_671);
        assert_eq!(unix_secs(t), 1_566_874_931);
        assert!((unix_seconds_f64(t) - 1_566_874_931.671).abs() < 1e-6);
    }
}

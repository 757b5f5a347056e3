//! Time as every part of kafka-cloud-lag-exporter and its simulator sees it: one clock for
//! reading and for waiting.
//!
//! Deadlines, pacing, backoff and timeouts use the monotonic [`Instant`]; timestamps
//! (signatures, `_timestamp_seconds` gauges, the simulator's offsets) use the wall time
//! [`Clock::now`]. Both come from tokio's clock, so a test that runs on a paused tokio
//! runtime (`#[tokio::test(start_paused = true)]`) gets virtual time for free: sleepers
//! wake in deadline order, time jumps to the next deadline when every task is idle, and
//! `tokio::time::advance` moves it on. A [`Clock::virtual_at`] clock starts its wall time
//! at a fixed instant and derives it from tokio's clock, so wall and monotonic time never
//! disagree, and its random source is seeded, so retry jitter repeats from run to run.
//!
//! Nothing outside this crate reads `SystemTime::now`, `Instant::now` or sleeps on its own
//! (a clippy `disallowed-methods` rule enforces it); this crate is where those calls live.
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use tokio::time::Instant;

/// The clock every component shares; cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    /// The real clock.
    System,
    /// Wall time `wall_start + (tokio now - mono_start)`, and a seeded random source.
    Virtual {
        wall_start: SystemTime,
        mono_start: Instant,
        seed: u64,
        draws: AtomicU64,
    },
}

/// The deadline passed before the future finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline passed")]
pub struct Elapsed;

impl Clock {
    /// The real clock: the system's wall time and tokio's monotonic clock.
    pub fn system() -> Clock {
        Clock {
            inner: Arc::new(Inner::System),
        }
    }

    /// A clock whose wall time starts at `start` now and moves with tokio's clock; on a
    /// paused runtime that is virtual time. Its random source is seeded with `seed`.
    pub fn virtual_at(start: SystemTime, seed: u64) -> Clock {
        Clock {
            inner: Arc::new(Inner::Virtual {
                wall_start: start,
                mono_start: Instant::now(),
                seed,
                draws: AtomicU64::new(0),
            }),
        }
    }

    /// A virtual clock starting at a whole number of Unix seconds (seed 1).
    pub fn virtual_at_unix(secs: u64) -> Clock {
        Clock::virtual_at(UNIX_EPOCH + Duration::from_secs(secs), 1)
    }

    /// The current wall-clock time.
    pub fn now(&self) -> SystemTime {
        match &*self.inner {
            Inner::System => SystemTime::now(),
            Inner::Virtual {
                wall_start,
                mono_start,
                ..
            } => *wall_start + Instant::now().saturating_duration_since(*mono_start),
        }
    }

    /// The current monotonic time, for deadlines and intervals.
    pub fn instant(&self) -> Instant {
        Instant::now()
    }

    /// The wall time at monotonic instant `at` (as far as the wall clock does not jump).
    pub fn wall_at(&self, at: Instant) -> SystemTime {
        let now = self.instant();
        let wall = self.now();
        if at >= now {
            wall + (at - now)
        } else {
            wall - (now - at)
        }
    }

    /// Waits for `duration`.
    pub fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep(duration)
    }

    /// Waits until `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(deadline)
    }

    /// Runs `future` until `deadline`: its output, or [`Elapsed`] if the deadline came first.
    pub async fn timeout_at<F: Future>(
        &self,
        deadline: Instant,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| Elapsed)
    }

    /// A random source for jitter: entropy on the real clock, a seeded sequence (a new
    /// seed per call, from the clock's seed) on a virtual one.
    pub fn rng(&self) -> fastrand::Rng {
        match &*self.inner {
            Inner::System => fastrand::Rng::new(),
            Inner::Virtual { seed, draws, .. } => {
                let n = draws.fetch_add(1, Ordering::Relaxed);
                fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(n))
            }
        }
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(&*self.inner, Inner::Virtual { .. })
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

    #[tokio::test(start_paused = true)]
    async fn virtual_wall_time_moves_with_the_paused_clock() {
        let clock = Clock::virtual_at_unix(1_000);
        let (wall, mono) = (clock.now(), clock.instant());
        clock.sleep(Duration::from_secs(5)).await;
        clock.sleep_until(mono + Duration::from_secs(8)).await;
        assert_eq!(clock.now(), wall + Duration::from_secs(8));
        assert_eq!(clock.instant(), mono + Duration::from_secs(8));
        assert_eq!(clock.wall_at(mono), wall);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_sleeps_overlap_instead_of_adding_up() {
        let clock = Clock::virtual_at_unix(1_000);
        let start = clock.instant();
        let (a, b) = (clock.clone(), clock.clone());
        tokio::join!(
            a.sleep(Duration::from_secs(3)),
            b.sleep(Duration::from_secs(5))
        );
        assert_eq!(clock.instant() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_race_on_the_clock() {
        let clock = Clock::virtual_at_unix(1_000);
        let deadline = clock.instant() + Duration::from_secs(2);
        let late = clock.timeout_at(deadline, clock.sleep(Duration::from_secs(3)));
        assert_eq!(late.await, Err(Elapsed));
        let deadline = clock.instant() + Duration::from_secs(2);
        assert_eq!(
            clock.timeout_at(deadline, async { 7 }).await,
            Ok(7),
            "ready futures win"
        );
    }

    #[test]
    fn a_virtual_clock_draws_the_same_jitter_every_run() {
        let draws = || {
            let clock = Clock::virtual_at(UNIX_EPOCH, 42);
            (0..4).map(|_| clock.rng().u64(..)).collect::<Vec<_>>()
        };
        assert_eq!(draws(), draws());
        let d = draws();
        assert_ne!(d[0], d[1], "each draw is its own sequence");
    }

    #[test]
    fn unix_conversions_round_trip() {
        let t = from_unix_millis(1_566_874_931_671);
        assert_eq!(unix_millis(t), 1_566_874_931_671);
        assert_eq!(unix_secs(t), 1_566_874_931);
        assert!((unix_seconds_f64(t) - 1_566_874_931.671).abs() < 1e-6);
    }
}

//! The scrape path allocates per scrape, never per series: rendering ten times as many
//! groups and partitions costs no more heap allocations than a few more doublings of the
//! buffers sized by the count.
//!
//! A counting global allocator counts only on the thread that renders, while a
//! thread-local flag is set, so the test harness and other threads do not disturb it.
//! It lives in its own test binary because a `#[global_allocator]` is per binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, SystemTime};

use kafka_cloud_lag_exporter::metrics::Metrics;
use kafka_cloud_lag_exporter::scheduler;
use kafka_cloud_lag_exporter::store::Store;

#[path = "support/scale.rs"]
mod scale;
use scale::store;

struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted, and how many there were: both
    /// per thread, so that tests running in parallel do not count each other's.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the flag may already be gone while a thread shuts down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (and reallocations) made by `f` on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get) - before, r)
}

/// Allocations of one scrape's rendering of `store` (after a first, warming one), and the
/// number of series it wrote.
fn scrape(metrics: &Metrics, store: &Store) -> (u64, usize) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(scale::POLLED_AT_SECS + 30);
    let status = scheduler::Status::default();
    let _ = metrics.render(store, &status, now);
    let (n, body) = allocations(|| metrics.render(store, &status, now));
    let series = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    (n, series)
}

#[test]
fn rendering_allocates_per_scrape_not_per_series() {
    let metrics = Metrics::new();
    let (small_allocs, small_series) = scrape(&metrics, &store(20));
    let (large_allocs, large_series) = scrape(&metrics, &store(200));
    // Every family is present and the larger store really has ten times the series.
    assert!(small_series > 20 * 50 * 4, "{small_series} series");
    assert!(
        large_series > 9 * small_series,
        "{small_series} → {large_series} series"
    );
    // Per-series allocation would add thousands; amortised doubling of the few buffers
    // sized by the count adds at most a few each (log2 of 10 is 3.3).
    assert!(
        large_allocs <= small_allocs + 16,
        "{small_allocs} allocations for {small_series} series, {large_allocs} for {large_series}"
    );
    assert!(
        large_allocs * 100 < large_series as u64,
        "{large_allocs} allocations for {large_series} series"
    );
}

#[test]
fn the_counter_sees_allocations_on_this_thread_only() {
    let (n, v) = allocations(|| (0..100).map(|i| vec![i; 4]).collect::<Vec<_>>());
    assert!(n >= 101, "{n} for 101 vectors");
    drop(v);
    // Another thread's 10,000 allocations are not counted; spawning it costs a few here.
    let (n, _) = allocations(|| {
        std::thread::spawn(|| (0..10_000).map(|i| vec![i; 4].len()).sum::<usize>())
            .join()
            .unwrap()
    });
    assert!(n < 100, "{n}");
}

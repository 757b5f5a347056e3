//! The scrape path allocates per scrape, never per series, and holds a few pieces of the
//! text, never all of it: ten times the groups and partitions cost no more allocations,
//! and no more memory at the peak, than a tenth of them. Measured on the path `/metrics`
//! takes: a scrape's pieces drained from the response body as hyper drains it, plain and
//! gzipped.
//!
//! A counting global allocator counts allocations, and the bytes live, only on the thread
//! that renders, while a thread-local flag is set, so the test harness and other threads
//! do not disturb it. It lives in its own test binary because a `#[global_allocator]` is
//! per binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Buf;
use hyper::body::Body as _;

use kafka_cloud_lag_exporter::metrics::Metrics;
use kafka_cloud_lag_exporter::scheduler;
use kafka_cloud_lag_exporter::store::Store;
use kafka_cloud_lag_exporter::web::body::{Body, PIECE};

#[path = "support/scale.rs"]
mod scale;
use scale::store;

struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted, how many there were, and the
    /// bytes allocated and not freed since counting started and their peak: all per
    /// thread, so that tests running in parallel do not count each other's.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// Counts an allocation (when `count`) and a change of `delta` bytes live.
fn track(count: bool, delta: i64) {
    // `try_with`: the flag may already be gone while a thread shuts down.
    if !COUNTING.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    if count {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(true, layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(true, layout.size() as i64);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(false, -(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(true, new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What `f` cost on this thread: heap allocations (and reallocations), and the most bytes
/// live at once beyond those live when it started.
fn measure<R>(f: impl FnOnce() -> R) -> (u64, i64, R) {
    let before = ALLOCATIONS.with(Cell::get);
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (
        ALLOCATIONS.with(Cell::get) - before,
        PEAK.with(Cell::get),
        r,
    )
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(scale::POLLED_AT_SECS + 30)
}

/// A scrape of `store` as `/metrics` serves it: the body polled as hyper polls it, each
/// chunk dropped once "sent". Returns the plain text's series and bytes sent.
fn scrape(metrics: &Metrics, store: &Store, gzip: bool) -> (usize, usize) {
    let scrape = metrics.scrape(store, scheduler::Status::default(), now());
    let mut body = Body::stream(Box::new(scrape), gzip);
    let mut cx = Context::from_waker(Waker::noop());
    let (mut lines, mut bytes) = (0, 0);
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        let data = frame.expect("infallible").into_data().expect("data");
        lines += data.chunk().iter().filter(|b| **b == b'\n').count();
        bytes += data.remaining();
    }
    (lines, bytes)
}

/// Allocations and peak bytes of a scrape of `store` (after a first, warming one), and
/// the series it wrote.
fn cost(metrics: &Metrics, store: &Store, gzip: bool) -> (u64, i64, usize) {
    let _ = scrape(metrics, store, gzip);
    let (n, peak, _) = measure(|| scrape(metrics, store, gzip));
    let text = metrics.render(store, &scheduler::Status::default(), now());
    let series = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    (n, peak, series)
}

/// Checks a scrape's cost for ten times the series: the same allocations but for a few,
/// the same peak but for `slack` bytes, and a peak below `peak_limit`.
fn allocates_per_scrape_not_per_series(gzip: bool, slack: i64, peak_limit: i64) {
    let metrics = Metrics::new();
    let (small_allocs, small_peak, small_series) = cost(&metrics, &store(40), gzip);
    let large = store(400);
    let (large_allocs, large_peak, large_series) = cost(&metrics, &large, gzip);
    // Every family is present and the larger store really has ten times the series.
    assert!(small_series > 40 * 50 * 4, "{small_series} series");
    assert!(
        large_series > 9 * small_series,
        "{small_series} → {large_series} series"
    );
    if !gzip {
        let (lines, _) = scrape(&metrics, &large, false);
        assert!(lines > large_series, "the body carries the series");
    }
    // Per-series allocation would add thousands; the few buffers that grow to the
    // longest line or the largest instance add a few at most.
    assert!(
        large_allocs <= small_allocs + 8,
        "{small_allocs} allocations for {small_series} series, {large_allocs} for {large_series}"
    );
    assert!(
        large_allocs * 100 < large_series as u64,
        "{large_allocs} allocations for {large_series} series"
    );
    // A few pieces live at a time, whatever the size of the exposition (ten times the
    // store, about 16 MB of text here).
    assert!(
        large_peak <= small_peak + slack,
        "{small_peak} bytes at the peak for {small_series} series, {large_peak} for {large_series}"
    );
    assert!(
        large_peak < peak_limit,
        "{large_peak} bytes at the peak, limit {peak_limit}"
    );
}

#[test]
fn a_plain_scrape_allocates_per_scrape_and_holds_a_few_pieces() {
    allocates_per_scrape_not_per_series(false, 16 * 1024, 4 * PIECE as i64);
}

#[test]
fn a_gzip_scrape_allocates_per_scrape_and_holds_a_few_pieces() {
    // The compressor's state (its window and tables, about 300 KB) comes on top, and a
    // chunk's buffer may grow once to hold the largest block the encoder writes at once.
    allocates_per_scrape_not_per_series(true, 64 * 1024, 4 * PIECE as i64 + 512 * 1024);
}

#[test]
fn the_counter_sees_allocations_on_this_thread_only() {
    let (n, peak, v) = measure(|| (0..100).map(|i| vec![i; 4]).collect::<Vec<_>>());
    assert!(n >= 101, "{n} for 101 vectors");
    assert!(peak >= 100 * 16, "{peak} bytes for 100 vectors of 16");
    drop(v);
    // Another thread's 10,000 allocations are not counted; spawning it costs a few here.
    let (n, _, _) = measure(|| {
        std::thread::spawn(|| (0..10_000).map(|i| vec![i; 4].len()).sum::<usize>())
            .join()
            .unwrap()
    });
    assert!(n < 100, "{n}");
}

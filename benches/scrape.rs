//! Scrape-path micro-benchmarks over a store shaped like the benchmark scenario (groups of
//! 5 topics × 10 partitions, long names, every lag family) at 10,000 and 100,000
//! partitions: `/metrics`' body as hyper drains it (pieces rendered into pooled buffers,
//! plain and gzipped as it goes), and gzip of a whole exposition at a few levels (the
//! level `/metrics` uses was chosen from these and the sizes they give). Divan counts
//! allocations per iteration: a scrape makes the same few whatever the size
//! (`tests/scrape_allocations.rs` asserts it).
//!
//! Run: `cargo bench --bench scrape` (filter: `cargo bench --bench scrape -- plain`).

// A benchmark measures real time: the one-clock rule (clippy.toml) does not apply here.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Buf;
use divan::Bencher;
use divan::counter::BytesCount;
use hyper::body::Body as _;

use kafka_cloud_lag_exporter::metrics::Metrics;
use kafka_cloud_lag_exporter::scheduler::Status;
use kafka_cloud_lag_exporter::store::Store;
use kafka_cloud_lag_exporter::web::body::Body;

#[path = "../tests/support/scale.rs"]
mod scale;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// Groups of 50 partitions: 10,000 and 100,000 partitions.
const GROUPS: [usize; 2] = [200, 2_000];

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(scale::POLLED_AT_SECS + 30)
}

/// Drains `/metrics`' body for a scrape of `store` as hyper would (outside a runtime, so
/// no turn ends), dropping each chunk once "sent"; returns the bytes.
fn drain(metrics: &Metrics, store: &Store, gzip: bool) -> usize {
    let scrape = metrics.scrape(store, Status::default(), now());
    let mut body = Body::stream(Box::new(scrape), gzip);
    let mut cx = Context::from_waker(Waker::noop());
    let mut bytes = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(data) = frame.expect("infallible").into_data() {
            bytes += divan::black_box(data).remaining();
        }
    }
    bytes
}

#[divan::bench(args = GROUPS, sample_count = 20)]
fn plain(bencher: Bencher, groups: usize) {
    let store = scale::store(groups);
    let metrics = Metrics::new();
    let size = drain(&metrics, &store, false);
    bencher
        .counter(BytesCount::new(size))
        .bench(|| drain(&metrics, &store, false));
}

#[divan::bench(args = GROUPS, sample_count = 10)]
fn gzip(bencher: Bencher, groups: usize) {
    let store = scale::store(groups);
    let metrics = Metrics::new();
    // Counted in plain bytes, for comparison with `plain`.
    let size = drain(&metrics, &store, false);
    bencher
        .counter(BytesCount::new(size))
        .bench(|| drain(&metrics, &store, true));
}

/// Gzip of a whole 100,000-partition exposition at a few levels.
#[divan::bench(args = [1, 2, 3, 6], sample_count = 10)]
fn gzip_level(bencher: Bencher, level: u32) {
    let text = Metrics::new().render(&scale::store(2_000), &Status::default(), now());
    bencher.counter(BytesCount::new(text.len())).bench(|| {
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(text.len() / 8),
            flate2::Compression::new(level),
        );
        gz.write_all(divan::black_box(&text))
            .expect("writing to a Vec");
        gz.finish().expect("writing to a Vec").len()
    });
}

//! Scrape-path micro-benchmarks: rendering `/metrics` from a store shaped like the
//! benchmark scenario (groups of 5 topics × 10 partitions, long names, every lag family)
//! at 10,000 and 100,000 partitions, and gzipping the result at the level `/metrics`
//! uses. Divan counts allocations per iteration: rendering makes the same few whatever
//! the size (`tests/scrape_allocations.rs` asserts it).
//!
//! Run: `cargo bench --bench scrape` (filter: `cargo bench --bench scrape -- render`).

// A benchmark measures real time: the one-clock rule (clippy.toml) does not apply here.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::time::{Duration, SystemTime};

use divan::Bencher;
use divan::counter::BytesCount;

use kafka_cloud_lag_exporter::metrics::Metrics;
use kafka_cloud_lag_exporter::scheduler::Status;

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

#[divan::bench(args = GROUPS, sample_count = 20)]
fn render(bencher: Bencher, groups: usize) {
    let store = scale::store(groups);
    let metrics = Metrics::new();
    let status = Status::default();
    let size = metrics.render(&store, &status, now()).len();
    bencher
        .counter(BytesCount::new(size))
        .bench(|| metrics.render(&store, &status, now()));
}

#[divan::bench(args = GROUPS, sample_count = 10)]
fn gzip_fast(bencher: Bencher, groups: usize) {
    let body = Metrics::new().render(&scale::store(groups), &Status::default(), now());
    bencher.counter(BytesCount::new(body.len())).bench(|| {
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 8),
            flate2::Compression::fast(),
        );
        gz.write_all(divan::black_box(&body))
            .expect("writing to a Vec");
        gz.finish().expect("writing to a Vec")
    });
}

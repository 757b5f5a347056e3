//! Scrape-path benchmark: renders `/metrics` from a store of N partitions and reports
//! time, output size, gzip size and heap allocations per scrape.
//!
//! Run: `cargo bench --bench scrape` (optionally `-- 100000` for one size). A counting
//! global allocator measures allocations, so "no per-series allocation" is checked, not
//! assumed: allocations per scrape must not grow with the number of partitions.

// A benchmark measures real time: the one-clock rule (clippy.toml) does not apply here.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use kafka_cloud_lag_exporter::metrics::Metrics;
use kafka_cloud_lag_exporter::model::{
    Cloud, GroupProgress, GroupTarget, InstanceRef, PartitionProgress, TopicProgress,
};
use kafka_cloud_lag_exporter::scheduler::Status;
use kafka_cloud_lag_exporter::store::Store;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A store of `groups` groups × 10 topics × 10 partitions, spread over 10 instances per cloud.
fn store(groups: usize, at: SystemTime) -> Store {
    let store = Store::new();
    let mut targets = Vec::new();
    for g in 0..groups {
        let cloud = if g % 2 == 0 {
            Cloud::Alibaba
        } else {
            Cloud::Tencent
        };
        targets.push(GroupTarget {
            instance: Arc::new(InstanceRef {
                cloud,
                account: format!("{cloud}-prod").into(),
                region: "cn-hangzhou".into(),
                instance_id: format!("{cloud}-instance-{:02}", g % 20).into(),
            }),
            group: format!("consumer-group-{g:05}").into(),
        });
    }
    store.set_targets(&targets);
    store.set_stale_after(Duration::from_secs(90));
    for (g, t) in targets.iter().enumerate() {
        let progress = GroupProgress {
            topics: (0..10)
                .map(|topic| TopicProgress {
                    topic: format!("topic-{:04}", (g * 10 + topic) % 4000),
                    partitions: (0..10)
                        .map(|p| PartitionProgress {
                            partition: p,
                            committed: Some(1_000_000 + p as i64),
                            log_end: 1_000_500 + (g as i64 % 1000),
                            last_consumed_ms: (t.instance.cloud == Cloud::Alibaba)
                                .then_some(1_700_000_000_000),
                            time_lag: Some(kafka_cloud_lag_exporter::model::TimeLag {
                                seconds: 12.5,
                                min_seconds: 10.0,
                                max_seconds: Some(15.0),
                                method:
                                    kafka_cloud_lag_exporter::model::TimeLagMethod::Interpolated,
                            }),
                        })
                        .collect(),
                })
                .collect(),
            info: None,
        };
        store.record_success(t, progress, None, at);
    }
    store
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let partitions = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    let metrics = Metrics::new();
    let now = SystemTime::now();
    println!(
        "partitions  groups  render_ms(median)  bytes  gzip_bytes  gzip_ms  allocs/scrape  bytes/partition"
    );
    for n in partitions {
        let groups = n / 100;
        let s = store(groups, now);
        let mut times = Vec::new();
        let mut allocs = 0;
        let mut size = 0;
        for _ in 0..15 {
            let before = ALLOCS.load(Ordering::Relaxed);
            let start = Instant::now();
            let body = metrics.render(&s, &Status::default(), now);
            times.push(start.elapsed());
            allocs = ALLOCS.load(Ordering::Relaxed) - before;
            size = body.len();
            std::hint::black_box(body);
        }
        times.sort();
        let body = metrics.render(&s, &Status::default(), now);
        let start = Instant::now();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        let gzip_ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{n:>10}  {groups:>6}  {:>17.1}  {size:>5}  {:>10}  {gzip_ms:>7.1}  {allocs:>13}  {:>15.0}",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            gz.len(),
            size as f64 / n as f64
        );
    }
}

//! Time-lag accuracy over traffic patterns, and the estimator's memory at scale.
//!
//! Run: `cargo bench --bench timelag` (optionally `-- HOURS`, default 6). Part one runs
//! the daemon loop against the simulator on virtual time (30 s polls) for every pattern,
//! both clouds and each restart variant, and prints the absolute error of the estimate
//! against the simulator's true produce times: median, 95th percentile and maximum,
//! seconds, with how many estimates fell outside their own bounds (must be 0). Part two
//! feeds the estimator 100,000 partitions and reports its heap size.

#[path = "../tests/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, SystemTime};

use kafka_cloud_lag_exporter::model::{Cloud, GroupProgress, PartitionProgress, TopicProgress};
use kafka_cloud_lag_exporter::timelag::Estimator;
use support::accuracy::{ErrorSummary, Pattern, Variant, methods, run};

/// Counts live heap bytes, so that the estimator's memory is measured, not computed.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let hours: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(6);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    println!(
        "time-lag error, {hours} h of 30 s polls (seconds: median / p95 / max; outside bounds)"
    );
    println!(
        "{:<28} {:<8} {:<13} {:>7} {:>9} {:>9} {:>9} {:>4}  methods",
        "variant", "cloud", "pattern", "samples", "median", "p95", "max", "out"
    );
    for variant in Variant::ALL {
        let result = rt.block_on(run(
            variant,
            Duration::from_secs(hours * 3600),
            Duration::from_secs(30),
        ));
        for cloud in [Cloud::Alibaba, Cloud::Tencent] {
            for pattern in Pattern::ALL {
                let s = ErrorSummary::of(result.of(cloud, pattern));
                let m = methods(result.of(cloud, pattern));
                println!(
                    "{:<28} {:<8} {:<13} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>4}  {:?}",
                    variant.name(),
                    cloud.as_str(),
                    pattern.name(),
                    s.samples,
                    s.median,
                    s.p95,
                    s.max,
                    s.outside_bounds,
                    m
                );
            }
        }
    }
    memory(100_000);
}

/// The estimator's heap after `n` partitions (1,000 topics, one group each) have been
/// polled 20 times, which fills every history to its cap.
fn memory(n: usize) {
    let partitions_per_topic = 100;
    let topics = n / partitions_per_topic;
    let before = LIVE.load(Ordering::Relaxed);
    let mut estimator = Estimator::default();
    let instance = "alikafka_post-cn-bench0001".into();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for poll in 0..20i64 {
        let at = t0 + Duration::from_secs(30 * poll as u64);
        for t in 0..topics {
            let group = format!("group-{t:05}").into();
            let mut progress = GroupProgress {
                topics: vec![TopicProgress {
                    topic: format!("topic-{t:05}"),
                    partitions: (0..partitions_per_topic as i32)
                        .map(|p| PartitionProgress {
                            partition: p,
                            committed: Some(1_000_000 + poll * 200 - 500),
                            log_end: 1_000_000 + poll * 300,
                            last_consumed_ms: None,
                            time_lag: None,
                        })
                        .collect(),
                }],
                info: None,
            };
            estimator.enrich(Cloud::Alibaba, &instance, &group, &mut progress, at);
        }
    }
    let measured = (LIVE.load(Ordering::Relaxed) - before) as f64;
    let n = estimator.len() as f64;
    println!(
        "estimator memory, {} partitions with full histories: {:.1} MiB live heap \
         ({:.0} bytes per partition; heap_bytes() says {:.1} MiB)",
        estimator.len(),
        measured / (1024.0 * 1024.0),
        measured / n,
        estimator.heap_bytes() as f64 / (1024.0 * 1024.0),
    );
}

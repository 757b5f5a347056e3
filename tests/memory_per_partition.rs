//! What the daemon keeps per partition between polls, measured on the heap: the time-lag
//! estimator and the verdict windows are most of the exporter's memory at 100,000
//! partitions (bench/run.sh's RSS target is 60 MiB after the first round). A counting
//! global allocator tracks the live bytes of the thread that runs the polls (per thread: tests run in
//! parallel).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kafka_cloud_lag_exporter::model::{
    Cloud, GroupKey, GroupProgress, PartitionProgress, TopicProgress,
};
use kafka_cloud_lag_exporter::timelag::Estimator;
use kafka_cloud_lag_exporter::verdict::Evaluator;

struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted, and its live bytes: both per
    /// thread, so that tests running in parallel do not count each other's.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
    }
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const GROUPS: usize = 200;
const TOPICS: usize = 5;
const PARTITIONS: i32 = 10;
const TOTAL: usize = GROUPS * TOPICS * PARTITIONS as usize;

/// One poll of group `g` (5 topics × 10 partitions, long names): offsets that move.
fn answer(g: usize, poll: i64) -> GroupProgress {
    GroupProgress {
        topics: (0..TOPICS)
            .map(|t| TopicProgress {
                topic: format!("orders-settlement-events-{g:05}-{t}"),
                partitions: (0..PARTITIONS)
                    .map(|p| {
                        let log_end = 1_000_000 + poll * (300 + i64::from(p) * 7);
                        PartitionProgress {
                            partition: p,
                            committed: Some(log_end - 400 - poll * i64::from(p)),
                            log_end,
                            last_consumed_ms: None,
                            time_lag: None,
                        }
                    })
                    .collect(),
            })
            .collect(),
        info: None,
    }
}

/// Bytes per partition the estimator and the verdict windows hold after `polls` polls of
/// every group, 30 s apart (the answers themselves are not counted).
fn per_partition(polls: i64) -> (f64, f64) {
    let instance: Arc<str> = "alikafka_post-cn-sim0001".into();
    let groups: Vec<(Arc<str>, GroupKey)> = (0..GROUPS)
        .map(|g| {
            let name: Arc<str> = format!("payments-settlement-consumer-{g:05}").into();
            let key = GroupKey {
                cloud: Cloud::Alibaba,
                instance_id: instance.clone(),
                group: name.clone(),
            };
            (name, key)
        })
        .collect();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut estimator = Estimator::default();
    let mut verdicts = Evaluator::new(10);
    let (mut in_estimator, mut in_verdicts) = (0isize, 0isize);
    for poll in 0..polls {
        for (g, (name, key)) in groups.iter().enumerate() {
            let mut progress = answer(g, poll);
            let at = t0 + Duration::from_secs(30 * poll as u64);
            COUNTING.with(|c| c.set(true));
            let before = live();
            estimator.enrich(Cloud::Alibaba, &instance, name, &mut progress, at);
            let middle = live();
            let at_ms = 1_700_000_000_000 + poll * 30_000;
            verdicts.observe(key, &progress, Some(true), at_ms);
            let after = live();
            COUNTING.with(|c| c.set(false));
            in_estimator += middle - before;
            in_verdicts += after - middle;
        }
    }
    assert_eq!(estimator.len(), TOTAL);
    (
        in_estimator as f64 / TOTAL as f64,
        in_verdicts as f64 / TOTAL as f64,
    )
}

#[test]
fn after_the_first_round_a_partition_costs_little() {
    let (estimator, verdicts) = per_partition(1);
    // The partition's state in its topic's list (176 bytes, its commit and its first point
    // inline) and its share of the topic's name and table; the verdict's window (48 bytes,
    // its first poll inline). Measured before the scale work: 472 and 188.
    assert!(
        estimator <= 200.0,
        "estimator: {estimator:.0} bytes a partition"
    );
    assert!(
        verdicts <= 64.0,
        "verdicts: {verdicts:.0} bytes a partition"
    );
}

#[test]
fn full_histories_and_windows_stay_bounded() {
    // 20 polls: every verdict window of 10 is full (48 bytes and 16 a poll, no spare
    // capacity), histories hold what trimming leaves. Measured before the scale work: 472
    // and 380.
    let (estimator, verdicts) = per_partition(20);
    assert!(
        estimator <= 340.0,
        "estimator: {estimator:.0} bytes a partition"
    );
    assert!(
        verdicts <= 240.0,
        "verdicts: {verdicts:.0} bytes a partition"
    );
}

//! A Burrow-style verdict per consumer group: is it keeping up, falling behind, stuck or
//! gone? Evaluated over a sliding window of the last polls of each partition, with the
//! rules of Burrow's consumer-lag evaluation (its wiki, "Consumer Lag Evaluation Rules"),
//! adapted to what the clouds' APIs show (committed offsets and lag at each poll, and the
//! group's membership where the cloud reports it):
//!
//! - **REWIND**: a committed offset moved backwards within the window.
//! - **OK**: the lag was zero at some poll of the window (Burrow's first rule).
//! - **STALL**: the committed offset did not move over a whole window while lag stayed
//!   above zero, and the group has members (or its membership is unknown).
//! - **STOP**: the same, but the group has no members (empty or dead): nobody consumes.
//! - **WARN**: offsets advance but the lag grew over the window without ever shrinking.
//! - **OK** otherwise; and with fewer than [`MIN_POLLS`] polls nothing else is decided.
//! - **ERR** (group level): the group's last poll failed.
//!
//! A group's status is that of its worst partition (REWIND, then STOP, STALL, WARN); the
//! worst partition is named. The same windows, with the times of the polls, give each
//! partition's recent consume rate, from which the time to drain its lag is derived. This
//! module holds plain data; `metrics/` renders it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::model::{GroupKey, GroupProgress};
pub use crate::model::{Status, Verdict, WorstPartition};

/// Polls per window when not configured.
pub const DEFAULT_WINDOW: usize = 10;
/// Polls a partition needs before it can be anything but OK.
pub const MIN_POLLS: usize = 3;

/// One poll of one partition: committed offset and lag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub committed: i64,
    pub lag: i64,
}

/// Evaluates one partition's window (oldest first). `members`: whether the group has
/// members, `None` when the cloud does not say.
pub fn evaluate(window: &[Observation], full: bool, members: Option<bool>) -> Status {
    if window.windows(2).any(|w| w[1].committed < w[0].committed) {
        return Status::Rewind;
    }
    if window.len() < MIN_POLLS || window.iter().any(|o| o.lag == 0) {
        return Status::Ok;
    }
    let first = window[0];
    let last = window[window.len() - 1];
    if full && window.iter().all(|o| o.committed == first.committed) {
        return match members {
            Some(false) => Status::Stop,
            _ => Status::Stall,
        };
    }
    let lag_never_shrank = window.windows(2).all(|w| w[1].lag >= w[0].lag);
    if last.committed > first.committed && lag_never_shrank && last.lag > first.lag {
        return Status::Warn;
    }
    Status::Ok
}

/// Severity for choosing the worst partition.
fn severity(s: Status) -> u8 {
    match s {
        Status::Ok => 0,
        Status::Warn => 1,
        Status::Stall => 2,
        Status::Stop => 3,
        Status::Rewind => 4,
        Status::Err => 5,
    }
}

/// One partition of a group and its window: the last observations, oldest first, in a
/// list sized to what it holds (a `VecDeque` would double its capacity as it fills), the
/// first inline (no heap after the first round).
#[derive(Clone, Debug)]
struct Tracked {
    /// Shared by the topic's partitions.
    topic: Arc<str>,
    partition: i32,
    window: SmallVec<[Observation; 1]>,
}

/// One group's windows and the times of its last polls. A partition is observed at every
/// poll from its first to the latest (one that leaves the answer leaves the window), so a
/// window of `n` observations spans the group's last `n` poll times.
#[derive(Debug, Default)]
struct GroupWindows {
    /// Unix ms of the group's last polls, oldest first, at most `window`.
    times: VecDeque<i64>,
    /// Sorted by (topic, partition): at 100,000 partitions a hash table with a name per
    /// partition cost more than the windows themselves.
    partitions: Vec<Tracked>,
}

/// The windows of every partition of every group.
#[derive(Debug)]
pub struct Evaluator {
    window: usize,
    groups: HashMap<GroupKey, GroupWindows>,
}

/// What one poll tells about a group beyond its offsets.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub verdict: Verdict,
    /// Each partition's consume rate over its window, in messages per second, in the
    /// progress's order (topic by topic): how fast its committed offset advanced from the
    /// oldest observation to this one. `None` without a committed offset or with a
    /// single observation.
    pub consume_rates: Vec<Vec<Option<f64>>>,
}

/// Seconds to consume `lag` messages at `rate` messages per second (what Amazon MSK calls
/// `EstimatedTimeLag`): 0 with nothing to consume, `None` while the consumer makes no
/// progress (never infinite).
pub fn time_to_drain(lag: i64, rate: Option<f64>) -> Option<f64> {
    if lag <= 0 {
        return Some(0.0);
    }
    rate.filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| lag as f64 / r)
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator::new(DEFAULT_WINDOW)
    }
}

impl Evaluator {
    /// An evaluator over windows of `window` polls.
    pub fn new(window: usize) -> Self {
        Evaluator {
            window: window.max(MIN_POLLS),
            groups: HashMap::new(),
        }
    }

    /// Adds a successful poll of `group` taken at `at_ms` (Unix ms) and returns its
    /// verdict and consume rates. `members` as for [`evaluate`]. Partitions that left the
    /// answer leave the window.
    pub fn observe(
        &mut self,
        group: &GroupKey,
        progress: &GroupProgress,
        members: Option<bool>,
        at_ms: i64,
    ) -> Observed {
        let window = self.window;
        let g = self.groups.entry(group.clone()).or_default();
        if g.times.len() == window {
            g.times.pop_front();
        }
        g.times.push_back(at_ms);
        let mut before = std::mem::take(&mut g.partitions);
        let mut after: Vec<Tracked> = Vec::with_capacity(progress.partition_count());
        let mut worst: Option<WorstPartition> = None;
        let mut consume_rates = Vec::with_capacity(progress.topics.len());
        for topic in &progress.topics {
            let mut rates = Vec::with_capacity(topic.partitions.len());
            let mut shared: Option<Arc<str>> = None;
            for p in &topic.partitions {
                let (Some(committed), Some(lag)) = (p.committed, p.lag()) else {
                    rates.push(None);
                    continue;
                };
                let found = before.binary_search_by(|t| {
                    (&*t.topic, t.partition).cmp(&(topic.topic.as_str(), p.partition))
                });
                let (name, mut w) = match found {
                    Ok(i) => (
                        before[i].topic.clone(),
                        std::mem::take(&mut before[i].window),
                    ),
                    Err(_) => (
                        shared
                            .get_or_insert_with(|| topic.topic.as_str().into())
                            .clone(),
                        SmallVec::new(),
                    ),
                };
                shared.get_or_insert_with(|| name.clone());
                if w.len() >= window {
                    w.drain(..=w.len() - window);
                } else {
                    w.reserve_exact(1);
                }
                w.push(Observation { committed, lag });
                let full = w.len() == window;
                rates.push(consume_rate(&w, &g.times));
                let status = evaluate(&w, full, members);
                tracing::debug!(group = %group.group, topic = %topic.topic, partition = p.partition, status = status.label(), "partition verdict");
                if status != Status::Ok
                    && worst
                        .as_ref()
                        .is_none_or(|w| severity(status) > severity(w.status))
                {
                    worst = Some(WorstPartition {
                        topic: topic.topic.clone(),
                        partition: p.partition,
                        status,
                    });
                }
                after.push(Tracked {
                    topic: name,
                    partition: p.partition,
                    window: w,
                });
            }
            consume_rates.push(rates);
        }
        // Providers answer in (topic, partition) order; anything else is sorted here, and
        // a partition listed twice keeps its last observation.
        let key = |t: &Tracked| (Arc::clone(&t.topic), t.partition);
        if !after.is_sorted_by(|a, b| (&*a.topic, a.partition) < (&*b.topic, b.partition)) {
            after.sort_by_key(key);
            after.reverse();
            after.dedup_by(|a, b| key(a) == key(b));
            after.reverse();
        }
        g.partitions = after;
        Observed {
            verdict: Verdict {
                status: worst.as_ref().map_or(Status::Ok, |w| w.status),
                worst,
            },
            consume_rates,
        }
    }

    /// Forgets groups that are no longer polled.
    pub fn retain(&mut self, keep: impl Fn(&GroupKey) -> bool) {
        self.groups.retain(|k, _| keep(k));
    }

    /// Bytes the windows hold on the heap, roughly (topic names not counted: they are
    /// shared by a topic's partitions).
    pub fn heap_bytes(&self) -> usize {
        self.groups.capacity() * (std::mem::size_of::<(GroupKey, GroupWindows)>() + 8)
            + self
                .groups
                .values()
                .map(|g| {
                    g.times.capacity() * std::mem::size_of::<i64>()
                        + g.partitions.capacity() * std::mem::size_of::<Tracked>()
                        + g.partitions
                            .iter()
                            .filter(|t| t.window.spilled())
                            .map(|t| t.window.capacity() * std::mem::size_of::<Observation>())
                            .sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// Messages per second the committed offset advanced over `window` (oldest first), whose
/// observations were taken at the last `window.len()` of the group's poll `times`. `None`
/// with one observation, or when it went backwards (a rewind is no rate).
fn consume_rate(window: &[Observation], times: &VecDeque<i64>) -> Option<f64> {
    let n = window.len();
    if n < 2 || times.len() < n {
        return None;
    }
    let (first_ms, last_ms) = (times[times.len() - n], times[times.len() - 1]);
    let consumed = window[n - 1].committed - window[0].committed;
    (last_ms > first_ms && consumed >= 0)
        .then(|| consumed as f64 * 1000.0 / (last_ms - first_ms) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(list: &[(i64, i64)]) -> Vec<Observation> {
        list.iter()
            .map(|&(committed, lag)| Observation { committed, lag })
            .collect()
    }

    /// Every rule and its boundaries, on recorded sequences (committed offset, lag).
    #[test]
    fn every_rule_and_boundary() {
        use Status::*;
        // (name, sequence, window full, has members, expected)
        type Case<'a> = (&'a str, &'a [(i64, i64)], bool, Option<bool>, Status);
        let cases: &[Case] = &[
            ("too few polls", &[(10, 5), (10, 5)], false, Some(true), Ok),
            (
                "exactly MIN_POLLS, still growing",
                &[(10, 5), (11, 7), (12, 9)],
                false,
                Some(true),
                Warn,
            ),
            (
                "zero lag once in the window",
                &[(10, 5), (20, 0), (20, 4), (20, 9)],
                true,
                Some(true),
                Ok,
            ),
            (
                "stalled with members",
                &[(10, 5), (10, 6), (10, 9)],
                true,
                Some(true),
                Stall,
            ),
            (
                "stalled, membership unknown",
                &[(10, 5), (10, 6), (10, 9)],
                true,
                None,
                Stall,
            ),
            (
                "stopped: no members",
                &[(10, 5), (10, 6), (10, 9)],
                true,
                Some(false),
                Stop,
            ),
            (
                "unchanged but the window is not full yet",
                &[(10, 5), (10, 6), (10, 9)],
                false,
                Some(true),
                Ok,
            ),
            (
                "one commit in a full window is progress",
                &[(10, 5), (10, 6), (11, 9)],
                true,
                Some(true),
                Warn,
            ),
            (
                "rewind",
                &[(10, 5), (12, 5), (8, 9)],
                true,
                Some(true),
                Rewind,
            ),
            (
                "rewind beats zero lag",
                &[(10, 0), (5, 5), (6, 4)],
                false,
                Some(true),
                Rewind,
            ),
            (
                "advancing, lag shrank once",
                &[(10, 5), (12, 9), (14, 8), (16, 12)],
                true,
                Some(true),
                Ok,
            ),
            (
                "advancing, lag flat",
                &[(10, 5), (12, 5), (14, 5)],
                true,
                Some(true),
                Ok,
            ),
            (
                "advancing, lag grew without shrinking",
                &[(10, 5), (12, 5), (14, 6)],
                true,
                Some(true),
                Warn,
            ),
        ];
        for (name, seq, full, members, want) in cases {
            assert_eq!(evaluate(&obs(seq), *full, *members), *want, "{name}");
        }
    }

    fn key(group: &str) -> GroupKey {
        GroupKey {
            cloud: crate::model::Cloud::Tencent,
            instance_id: "i".into(),
            group: group.into(),
        }
    }

    fn one_partition(committed: i64, log_end: i64) -> GroupProgress {
        GroupProgress {
            topics: vec![crate::model::TopicProgress {
                topic: "t".into(),
                partitions: vec![crate::model::PartitionProgress {
                    partition: 0,
                    committed: Some(committed),
                    log_end,
                    ..Default::default()
                }],
            }],
            info: None,
        }
    }

    #[test]
    fn the_consume_rate_spans_the_window_and_drain_time_follows() {
        let mut e = Evaluator::new(3);
        let g = key("g");
        // 30 s polls; the consumer commits 300 messages a poll: 10/s.
        let rates: Vec<Option<f64>> = [(0, 1_000), (300, 1_600), (600, 2_200), (900, 2_800)]
            .iter()
            .enumerate()
            .map(|(i, &(c, end))| {
                e.observe(&g, &one_partition(c, end), Some(true), i as i64 * 30_000)
                    .consume_rates[0][0]
            })
            .collect();
        assert_eq!(rates, [None, Some(10.0), Some(10.0), Some(10.0)]);
        // Lag 1,900 at 10/s: 190 s.
        assert_eq!(time_to_drain(2_800 - 900, rates[3]), Some(190.0));
    }

    #[test]
    fn no_progress_means_no_drain_time_and_never_infinity() {
        let mut e = Evaluator::new(5);
        let g = key("g");
        let mut last = None;
        for i in 0..5 {
            last = Some(e.observe(&g, &one_partition(100, 500 + i * 10), None, i * 30_000));
        }
        let rate = last.unwrap().consume_rates[0][0];
        assert_eq!(rate, Some(0.0));
        assert_eq!(time_to_drain(540, rate), None);
        assert_eq!(time_to_drain(0, rate), Some(0.0), "nothing to drain");
        assert_eq!(time_to_drain(5, Some(f64::INFINITY)), None);
        // A rewind is no rate.
        let back = e.observe(&g, &one_partition(50, 600), None, 200_000);
        assert_eq!(back.consume_rates[0][0], None);
    }

    /// (partition, committed, log end) of a topic's partitions.
    type Rows<'a> = &'a [(i32, i64, i64)];

    fn progress(topics: &[(&str, Rows<'_>)]) -> GroupProgress {
        GroupProgress {
            topics: topics
                .iter()
                .map(|(t, parts)| crate::model::TopicProgress {
                    topic: t.to_string(),
                    partitions: parts
                        .iter()
                        .map(
                            |&(partition, committed, log_end)| crate::model::PartitionProgress {
                                partition,
                                committed: Some(committed),
                                log_end,
                                ..Default::default()
                            },
                        )
                        .collect(),
                })
                .collect(),
            info: None,
        }
    }

    #[test]
    fn a_partition_that_leaves_the_answer_starts_over_and_topics_share_a_name() {
        let mut e = Evaluator::new(3);
        let g = key("g");
        let stuck = |n: i64| progress(&[("b", &[(0, 10, 20 + n)]), ("a", &[(1, 5, 9), (0, 5, 9)])]);
        let status = |e: &mut Evaluator, p: &GroupProgress, n: i64| {
            e.observe(&g, p, Some(true), n * 30_000).verdict
        };
        assert_eq!(status(&mut e, &stuck(0), 0).status, Status::Ok);
        assert_eq!(status(&mut e, &stuck(1), 1).status, Status::Ok);
        let v = status(&mut e, &stuck(2), 2);
        assert_eq!(v.status, Status::Stall, "three polls without a commit");
        assert_eq!(
            v.worst.map(|w| (w.topic, w.partition)),
            Some(("b".to_string(), 0)),
            "the first of the stalled partitions, in the answer's order"
        );
        // Kept sorted, one name per topic, windows exactly as long as what they hold.
        let tracked = &e.groups[&g].partitions;
        let order: Vec<(&str, i32)> = tracked.iter().map(|t| (&*t.topic, t.partition)).collect();
        assert_eq!(order, [("a", 0), ("a", 1), ("b", 0)]);
        assert!(Arc::ptr_eq(&tracked[0].topic, &tracked[1].topic));
        assert!(tracked.iter().all(|t| t.window.capacity() == 3));
        // Topic b leaves the answer: its window is dropped, and it starts over when back.
        let a_only = progress(&[("a", &[(0, 6, 9), (1, 6, 9)])]);
        assert_eq!(status(&mut e, &a_only, 3).status, Status::Ok);
        assert_eq!(e.groups[&g].partitions.len(), 2);
        let back = progress(&[("a", &[(0, 7, 9), (1, 7, 9)]), ("b", &[(0, 10, 30)])]);
        assert_eq!(status(&mut e, &back, 4).status, Status::Ok);
        assert_eq!(e.groups[&g].partitions[2].window.len(), 1);
        // Another group's windows are its own.
        let h = e.observe(&key("h"), &stuck(3), None, 0);
        assert_eq!(h.verdict.status, Status::Ok);
        e.retain(|k| k.group.as_ref() == "h");
        assert_eq!(e.groups.len(), 1);
    }

    #[test]
    fn a_window_holds_its_polls_and_no_spare_capacity() {
        let partitions: Vec<(i32, i64, i64)> = (0..100).map(|p| (p, 5, 9)).collect();
        let answer = progress(&[("t", &partitions)]);
        let mut e = Evaluator::new(10);
        for poll in 0..60 {
            e.observe(&key("g"), &answer, None, poll * 30_000);
            let windows = &e.groups[&key("g")].partitions;
            let held = (poll as usize + 1).min(10);
            assert!(
                windows
                    .iter()
                    .all(|t| t.window.len() == held && t.window.capacity() == held)
            );
            let spilled = windows.iter().all(|t| t.window.spilled());
            assert_eq!(spilled, held > 1, "one poll inline, more on the heap");
        }
    }
}

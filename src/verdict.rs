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
//! worst partition is named. This module holds plain data; `metrics/` renders it.

use std::collections::HashMap;
use std::sync::Arc;

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

/// What one partition's window comes to, kept incrementally instead of as the last
/// `window` observations: the last observation, how many there were, and the number of
/// the last observation that ended each kind of step. [`Summary::status`] gives what
/// [`evaluate`] gives on the window (a test checks that on random sequences), in 40 bytes
/// whatever the window's length, so that 100,000 partitions cost 4 MB, not 40.
///
/// Observations are numbered from 0; a step ends at observation 1 or later, so 0 means
/// "never". Numbers are `u32`: four billion polls of one partition are centuries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Summary {
    last: Observation,
    /// Observations so far.
    seen: u32,
    /// One more than the number of the last observation with zero lag; 0: none.
    zero: u32,
    /// The last step that moved the committed offset back.
    rewound: u32,
    /// The last step that moved the committed offset.
    moved: u32,
    /// The last step that shrank the lag.
    shrank: u32,
    /// The last step that changed the lag.
    lag_changed: u32,
}

impl Summary {
    fn observe(mut self, o: Observation) -> Summary {
        let i = self.seen;
        if i > 0 {
            if o.committed < self.last.committed {
                self.rewound = i;
            }
            if o.committed != self.last.committed {
                self.moved = i;
            }
            if o.lag < self.last.lag {
                self.shrank = i;
            }
            if o.lag != self.last.lag {
                self.lag_changed = i;
            }
        }
        if o.lag == 0 {
            self.zero = i + 1;
        }
        self.last = o;
        self.seen = i.saturating_add(1);
        self
    }

    /// [`evaluate`] over the last `window` observations.
    fn status(&self, window: usize, members: Option<bool>) -> Status {
        let window = u32::try_from(window).unwrap_or(u32::MAX);
        let len = self.seen.min(window);
        // The window holds observations start..seen; its steps end at start + 1 or later.
        let start = self.seen - len;
        let within = |step: u32| step > start;
        if within(self.rewound) {
            return Status::Rewind;
        }
        if (len as usize) < MIN_POLLS || self.zero > start {
            return Status::Ok;
        }
        // Without a rewind the committed offset never decreases in the window, so "last
        // above first" is "moved at some step", and with a lag that never shrank, "lag
        // grew" is "lag changed at some step".
        if len == window && !within(self.moved) {
            return match members {
                Some(false) => Status::Stop,
                _ => Status::Stall,
            };
        }
        if within(self.moved) && !within(self.shrank) && within(self.lag_changed) {
            return Status::Warn;
        }
        Status::Ok
    }
}

/// One partition of a group and its window.
#[derive(Clone, Debug)]
struct Tracked {
    /// Shared by the topic's partitions.
    topic: Arc<str>,
    partition: i32,
    summary: Summary,
}

/// The windows of every partition of every group: per group, sorted by (topic, partition).
#[derive(Debug)]
pub struct Evaluator {
    window: usize,
    groups: HashMap<GroupKey, Vec<Tracked>>,
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

    /// Adds a successful poll of `group` and returns its verdict. `members` as for
    /// [`evaluate`]. Partitions that left the answer leave the window.
    pub fn observe(
        &mut self,
        group: &GroupKey,
        progress: &GroupProgress,
        members: Option<bool>,
    ) -> Verdict {
        let window = self.window;
        let tracked = self.groups.entry(group.clone()).or_default();
        let before = std::mem::take(tracked);
        let mut after: Vec<Tracked> = Vec::with_capacity(progress.partition_count());
        let mut worst: Option<WorstPartition> = None;
        for topic in &progress.topics {
            let mut shared: Option<Arc<str>> = None;
            for p in &topic.partitions {
                let (Some(committed), Some(lag)) = (p.committed, p.lag()) else {
                    continue;
                };
                let found = before.binary_search_by(|t| {
                    (&*t.topic, t.partition).cmp(&(topic.topic.as_str(), p.partition))
                });
                let (name, summary) = match found {
                    Ok(i) => (before[i].topic.clone(), before[i].summary),
                    Err(_) => (
                        shared
                            .get_or_insert_with(|| topic.topic.as_str().into())
                            .clone(),
                        Summary::default(),
                    ),
                };
                shared.get_or_insert_with(|| name.clone());
                let summary = summary.observe(Observation { committed, lag });
                let status = summary.status(window, members);
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
                    summary,
                });
            }
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
        *tracked = after;
        Verdict {
            status: worst.as_ref().map_or(Status::Ok, |w| w.status),
            worst,
        }
    }

    /// Forgets groups that are no longer polled.
    pub fn retain(&mut self, keep: impl Fn(&GroupKey) -> bool) {
        self.groups.retain(|k, _| keep(k));
    }

    /// Bytes the windows hold on the heap, roughly (topic names not counted: they are
    /// shared by a topic's partitions).
    pub fn heap_bytes(&self) -> usize {
        self.groups.capacity() * (std::mem::size_of::<GroupKey>() + 24)
            + self
                .groups
                .values()
                .map(|g| g.capacity() * std::mem::size_of::<Tracked>())
                .sum::<usize>()
    }
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

    /// The incremental summary agrees with [`evaluate`] over the window it stands for, on
    /// random sequences (offsets that stall, advance and rewind; lags that grow, shrink
    /// and reach zero) for every window length and membership.
    #[test]
    fn the_summary_agrees_with_the_window_on_random_sequences() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut decided = std::collections::HashSet::new();
        for _ in 0..3_000 {
            let window = rng.usize(MIN_POLLS..=12);
            let members = [None, Some(true), Some(false)][rng.usize(..3)];
            let (mut committed, mut lag) = (rng.i64(0..100), rng.i64(0..5));
            let mut all: Vec<Observation> = Vec::new();
            let mut summary = Summary::default();
            for _ in 0..rng.usize(1..30) {
                committed += [0, 0, 0, 1, 3, -2][rng.usize(..6)];
                lag = (lag + [0, 0, 1, 2, -1, -5][rng.usize(..6)]).max(0);
                let o = Observation { committed, lag };
                all.push(o);
                summary = summary.observe(o);
                let from = all.len().saturating_sub(window);
                let expected = evaluate(&all[from..], all.len() >= window, members);
                assert_eq!(
                    summary.status(window, members),
                    expected,
                    "window {window}, members {members:?}: {all:?}"
                );
                decided.insert(expected);
            }
        }
        assert_eq!(decided.len(), 5, "every status was reached: {decided:?}");
    }

    fn key(group: &str) -> GroupKey {
        GroupKey {
            cloud: crate::model::Cloud::Tencent,
            instance_id: "ckafka-1".into(),
            group: group.into(),
        }
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
                                last_consumed_ms: None,
                                time_lag: None,
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
        assert_eq!(e.observe(&g, &stuck(0), Some(true)).status, Status::Ok);
        assert_eq!(e.observe(&g, &stuck(1), Some(true)).status, Status::Ok);
        let v = e.observe(&g, &stuck(2), Some(true));
        assert_eq!(v.status, Status::Stall, "three polls without a commit");
        assert_eq!(
            v.worst.map(|w| (w.topic, w.partition)),
            Some(("b".to_string(), 0)),
            "the first of the stalled partitions, in the answer's order"
        );
        // Kept sorted, one name per topic.
        let tracked = &e.groups[&g];
        let order: Vec<(&str, i32)> = tracked.iter().map(|t| (&*t.topic, t.partition)).collect();
        assert_eq!(order, [("a", 0), ("a", 1), ("b", 0)]);
        assert!(Arc::ptr_eq(&tracked[0].topic, &tracked[1].topic));
        // Topic b leaves the answer: its window is dropped, and it starts over when back.
        let a_only = progress(&[("a", &[(0, 6, 9), (1, 6, 9)])]);
        assert_eq!(e.observe(&g, &a_only, Some(true)).status, Status::Ok);
        assert_eq!(e.groups[&g].len(), 2);
        let back = progress(&[("a", &[(0, 7, 9), (1, 7, 9)]), ("b", &[(0, 10, 30)])]);
        assert_eq!(e.observe(&g, &back, Some(true)).status, Status::Ok);
        assert_eq!(e.groups[&g][2].summary.seen, 1);
        // Another group's windows are its own.
        assert_eq!(e.observe(&key("h"), &stuck(3), None).status, Status::Ok);
        e.retain(|k| k.group.as_ref() == "h");
        assert_eq!(e.groups.len(), 1);
    }

    #[test]
    fn a_window_costs_the_same_whatever_its_length() {
        let partitions: Vec<(i32, i64, i64)> = (0..100).map(|p| (p, 5, 9)).collect();
        let answer = progress(&[("t", &partitions)]);
        let bytes = |window| {
            let mut e = Evaluator::new(window);
            for _ in 0..60 {
                e.observe(&key("g"), &answer, None);
            }
            e.heap_bytes()
        };
        assert_eq!(bytes(3), bytes(50));
        assert!(bytes(50) <= 100 * 64 + 1024, "{}", bytes(50));
    }
}

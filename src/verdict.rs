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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::model::{GroupKey, GroupProgress};
pub use crate::model::{Status, Verdict, WorstPartition};

/// Polls per window when not configured.
pub const DEFAULT_WINDOW: usize = 10;
/// Polls a partition needs before it can be anything but OK.
pub const MIN_POLLS: usize = 3;

/// One poll of one partition: committed offset and lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The windows of one group's partitions, by (topic, partition).
type PartitionWindows = HashMap<(Arc<str>, i32), VecDeque<Observation>>;

/// The windows of every partition of every group.
#[derive(Debug)]
pub struct Evaluator {
    window: usize,
    groups: HashMap<GroupKey, PartitionWindows>,
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
        let windows = self.groups.entry(group.clone()).or_default();
        let mut seen = std::collections::HashSet::new();
        let mut worst: Option<WorstPartition> = None;
        for topic in &progress.topics {
            for p in &topic.partitions {
                let (Some(committed), Some(lag)) = (p.committed, p.lag()) else {
                    continue;
                };
                let key: (Arc<str>, i32) = (topic.topic.as_str().into(), p.partition);
                seen.insert(key.clone());
                let w = windows.entry(key).or_default();
                if w.len() == window {
                    w.pop_front();
                }
                w.push_back(Observation { committed, lag });
                let full = w.len() == window;
                let status = evaluate(w.make_contiguous(), full, members);
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
            }
        }
        windows.retain(|k, _| seen.contains(k));
        Verdict {
            status: worst.as_ref().map_or(Status::Ok, |w| w.status),
            worst,
        }
    }

    /// Forgets groups that are no longer polled.
    pub fn retain(&mut self, keep: impl Fn(&GroupKey) -> bool) {
        self.groups.retain(|k, _| keep(k));
    }

    /// Bytes the windows hold on the heap, roughly.
    pub fn heap_bytes(&self) -> usize {
        self.groups
            .values()
            .map(|g| {
                g.capacity() * (std::mem::size_of::<(Arc<str>, i32)>() + 32)
                    + g.iter()
                        .map(|(k, w)| k.0.len() + w.capacity() * std::mem::size_of::<Observation>())
                        .sum::<usize>()
            })
            .sum()
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
}

//! Estimated time lag: how long ago the oldest unconsumed message was produced.
//!
//! Where the cloud gives the produce time of the last consumed message (Alibaba
//! `LastTimestamp`), the estimate is the poll time minus it: an upper bound, since the
//! next message was produced after it. Otherwise the estimate comes from each partition's
//! log-end offset history (seen at every poll of any group reading it): the time at which
//! the log end passed the group's committed offset, interpolated between the two
//! surrounding observations, or extrapolated from the average rate when the committed
//! offset is older than the history. The history keeps [`MAX_POINTS`] observations and
//! thins its older half when full, so it reaches back further at coarser resolution.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use crate::model::{Cloud, GroupProgress};
use kcle_clock::unix_millis;

/// Observations kept per partition.
pub const MAX_POINTS: usize = 64;

/// Partitions not observed for this long are forgotten.
const FORGET_AFTER_MS: i64 = 6 * 3600 * 1000;

/// Log-end offsets of one partition over time: (Unix ms, offset), oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OffsetHistory {
    points: VecDeque<(i64, i64)>,
}

impl OffsetHistory {
    /// Adds an observation; ignores ones not newer than the last.
    pub fn observe(&mut self, at_ms: i64, log_end: i64) {
        if let Some(&(last_at, last_end)) = self.points.back() {
            if at_ms <= last_at {
                return;
            }
            if log_end < last_end {
                // The log end went backwards (topic recreated): older history is void.
                self.points.clear();
            } else if log_end == last_end && self.points.len() >= 2 {
                // No progress: move the newest point instead of adding one, keeping the
                // moment the log end was first seen at this offset.
                let prev = self.points[self.points.len() - 2];
                if prev.1 == log_end {
                    self.points.back_mut().expect("non-empty").0 = at_ms;
                    return;
                }
            }
        }
        if self.points.len() >= MAX_POINTS {
            self.thin();
        }
        self.points.push_back((at_ms, log_end));
    }

    /// Drops every second point of the older half.
    fn thin(&mut self) {
        let half = self.points.len() / 2;
        let mut idx = 0;
        self.points.retain(|_| {
            let keep = idx >= half || idx % 2 == 0;
            idx += 1;
            keep
        });
    }

    /// When (Unix ms) the message at `offset` was produced, i.e. when the log end first
    /// exceeded it. `None` with fewer than two observations, when the message is not yet
    /// produced, or when the history saw no production at all.
    pub fn produced_at(&self, offset: i64) -> Option<f64> {
        if self.points.len() < 2 {
            return None;
        }
        let target = offset + 1;
        let (first_at, first_end) = *self.points.front().expect("len >= 2");
        let (last_at, last_end) = *self.points.back().expect("len >= 2");
        if target > last_end {
            return None;
        }
        if target <= first_end {
            // Older than the history: extrapolate backwards at the average rate.
            if last_end == first_end {
                return None;
            }
            let rate = (last_end - first_end) as f64 / (last_at - first_at) as f64;
            return Some(first_at as f64 - (first_end - target) as f64 / rate);
        }
        let mut prev = (first_at, first_end);
        for &(at, end) in self.points.iter().skip(1) {
            if end >= target {
                let frac = (target - prev.1) as f64 / (end - prev.1) as f64;
                return Some(prev.0 as f64 + frac * (at - prev.0) as f64);
            }
            prev = (at, end);
        }
        None
    }
}

type PartitionKey = (Cloud, Arc<str>, String, i32);

/// Offset histories of every partition seen, and the estimator over them.
#[derive(Debug, Default)]
pub struct Estimator {
    histories: HashMap<PartitionKey, (i64, OffsetHistory)>,
}

impl Estimator {
    /// Records the poll's log-end offsets and fills in `lag_seconds` of every partition.
    pub fn enrich(
        &mut self,
        cloud: Cloud,
        instance_id: &Arc<str>,
        progress: &mut GroupProgress,
        at: SystemTime,
    ) {
        let now_ms = unix_millis(at);
        for topic in &mut progress.topics {
            for p in &mut topic.partitions {
                let key = (cloud, instance_id.clone(), topic.topic.clone(), p.partition);
                let (seen, history) = self.histories.entry(key).or_default();
                *seen = now_ms;
                history.observe(now_ms, p.log_end);
                p.lag_seconds = match p.lag() {
                    None => None,
                    Some(0) => Some(0.0),
                    Some(_) => match p.last_consumed_ms {
                        Some(ts) => Some((now_ms - ts).max(0) as f64 / 1000.0),
                        None => p
                            .committed
                            .and_then(|c| history.produced_at(c))
                            .map(|t| ((now_ms as f64 - t) / 1000.0).max(0.0)),
                    },
                };
            }
        }
    }

    /// Forgets partitions not observed for a long time (topics deleted, groups gone).
    pub fn forget_old(&mut self, now: SystemTime) {
        let now_ms = unix_millis(now);
        self.histories
            .retain(|_, (seen, _)| now_ms - *seen <= FORGET_AFTER_MS);
    }

    /// Partitions tracked.
    pub fn len(&self) -> usize {
        self.histories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histories.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartitionProgress, TopicProgress};
    use std::time::Duration;

    #[test]
    fn interpolates_between_observations() {
        let mut h = OffsetHistory::default();
        h.observe(0, 100);
        h.observe(10_000, 200);
        h.observe(20_000, 400);
        // Message 149 was produced when the log end reached 150: halfway through the first span.
        assert_eq!(h.produced_at(149), Some(5_000.0));
        // Message 299 when the log end reached 300: halfway through the second.
        assert_eq!(h.produced_at(299), Some(15_000.0));
        // Not yet produced.
        assert_eq!(h.produced_at(400), None);
        // Older than the history: extrapolated at 300 msgs / 20 s.
        let t = h.produced_at(39).unwrap();
        assert!((t - -4_000.0).abs() < 1e-6, "{t}");
    }

    #[test]
    fn idle_partition_keeps_first_time_at_offset() {
        let mut h = OffsetHistory::default();
        h.observe(0, 100);
        h.observe(10_000, 200);
        h.observe(20_000, 200);
        h.observe(30_000, 200);
        assert_eq!(h.points.len(), 3);
        assert_eq!(h.points[1], (10_000, 200));
        assert_eq!(h.points[2], (30_000, 200));
        assert_eq!(h.produced_at(199), Some(10_000.0));
    }

    #[test]
    fn history_is_bounded_and_reaches_back() {
        let mut h = OffsetHistory::default();
        for i in 0..1_000 {
            h.observe(i * 1_000, i * 10);
        }
        assert!(h.points.len() <= MAX_POINTS);
        assert!(
            h.points.front().unwrap().0 < 500_000,
            "older half thinned, not dropped"
        );
        let t = h.produced_at(5_000).unwrap();
        assert!((t - 500_100.0).abs() < 1_000.0, "{t}");
    }

    #[test]
    fn reset_history_when_log_end_goes_back() {
        let mut h = OffsetHistory::default();
        h.observe(0, 1_000);
        h.observe(1_000, 2_000);
        h.observe(2_000, 5);
        assert_eq!(h.points.len(), 1);
    }

    #[test]
    fn enrich_prefers_cloud_timestamps_and_zero_for_caught_up() {
        let mut est = Estimator::default();
        let inst: Arc<str> = "i".into();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mk = |log_end, committed, ts| GroupProgress {
            topics: vec![TopicProgress {
                topic: "t".into(),
                partitions: vec![PartitionProgress {
                    partition: 0,
                    committed,
                    log_end,
                    last_consumed_ms: ts,
                    lag_seconds: None,
                }],
            }],
            state: None,
        };
        let mut g = mk(100, Some(100), None);
        est.enrich(Cloud::Tencent, &inst, &mut g, t0);
        assert_eq!(g.topics[0].partitions[0].lag_seconds, Some(0.0));

        let mut g = mk(200, Some(150), Some(990_000));
        est.enrich(Cloud::Alibaba, &inst, &mut g, t0);
        assert_eq!(g.topics[0].partitions[0].lag_seconds, Some(10.0));

        // The Tencent history of this partition started with the t0 poll above, so the
        // second observation gives an estimate. History: 100 @ t0, 200 @ +10 s.
        // Message 150 was produced when the log end reached 151, at +5.1 s.
        let mut g = mk(200, Some(150), None);
        est.enrich(Cloud::Tencent, &inst, &mut g, t0 + Duration::from_secs(10));
        let lag = g.topics[0].partitions[0].lag_seconds.unwrap();
        assert!((lag - 4.9).abs() < 0.001, "{lag}");

        // A partition seen for the first time has no history: no estimate.
        let other: Arc<str> = "other".into();
        let mut g = mk(200, Some(150), None);
        est.enrich(Cloud::Tencent, &other, &mut g, t0);
        assert_eq!(g.topics[0].partitions[0].lag_seconds, None);
        assert_eq!(
            est.len(),
            3,
            "keyed by cloud, instance, topic and partition"
        );
    }
}

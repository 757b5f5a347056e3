//! What is derived from a poll when it is published, besides its time lag and verdict:
//! each partition's time to drain (its lag at its recent consume rate) and the group's
//! maximum of it.
//!
//! Everything here is computed once per poll from that poll and the windows the scheduler
//! keeps, so that rendering reads a group's series from the group's own snapshot and never
//! computes across groups at scrape time.

use crate::model::GroupProgress;
use crate::store::{Derived, PartitionDerived, TopicDerived};
use crate::verdict::time_to_drain;

/// What a poll's derived values are computed from besides its progress.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// Consume rates per partition, in the progress's order (see `verdict::Observed`).
    pub consume_rates: &'a [Vec<Option<f64>>],
}

/// The derived values of `progress`.
pub fn derive(progress: &GroupProgress, inputs: &Inputs<'_>) -> Derived {
    let mut derived = Derived {
        topics: Vec::with_capacity(progress.topics.len()),
        max_time_to_drain: None,
    };
    // The group's maximum exists only when every partition with lag has a time to drain:
    // a stalled partition never drains, and a maximum over the others would hide it.
    let mut all_known = true;
    for (ti, topic) in progress.topics.iter().enumerate() {
        let rates = inputs.consume_rates.get(ti);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (pi, p) in topic.partitions.iter().enumerate() {
            let rate = rates.and_then(|r| r.get(pi)).copied().flatten();
            let drain = p.lag().and_then(|lag| time_to_drain(lag, rate));
            if p.lag().is_some_and(|l| l > 0) && drain.is_none() {
                all_known = false;
            }
            if let Some(d) = drain {
                derived.max_time_to_drain = Some(derived.max_time_to_drain.map_or(d, |m| m.max(d)));
            }
            partitions.push(PartitionDerived {
                time_to_drain: drain,
            });
        }
        derived.topics.push(TopicDerived { partitions });
    }
    if !all_known {
        derived.max_time_to_drain = None;
    }
    derived
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartitionProgress, TopicProgress};

    fn progress(rows: &[(Option<i64>, i64)]) -> GroupProgress {
        GroupProgress {
            topics: vec![TopicProgress {
                topic: "t".into(),
                partitions: rows
                    .iter()
                    .enumerate()
                    .map(|(i, &(committed, log_end))| PartitionProgress {
                        partition: i as i32,
                        committed,
                        log_end,
                        ..Default::default()
                    })
                    .collect(),
            }],
            info: None,
        }
    }

    #[test]
    fn drain_times_and_the_group_maximum() {
        // Lag 100 at 10/s, lag 0, no commit, lag 60 at 2/s.
        let p = progress(&[(Some(0), 100), (Some(5), 5), (None, 9), (Some(40), 100)]);
        let rates = vec![vec![Some(10.0), Some(0.0), None, Some(2.0)]];
        let d = derive(
            &p,
            &Inputs {
                consume_rates: &rates,
            },
        );
        let drains: Vec<Option<f64>> = (0..4).map(|i| d.partition(0, i).time_to_drain).collect();
        assert_eq!(drains, [Some(10.0), Some(0.0), None, Some(30.0)]);
        assert_eq!(d.max_time_to_drain, Some(30.0));
        // One lagging partition without progress: no group maximum.
        let rates = vec![vec![Some(10.0), Some(0.0), None, Some(0.0)]];
        let d = derive(
            &p,
            &Inputs {
                consume_rates: &rates,
            },
        );
        assert_eq!(d.partition(0, 3).time_to_drain, None);
        assert_eq!(d.max_time_to_drain, None);
    }
}

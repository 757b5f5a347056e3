//! What is derived from a poll when it is published, besides its time lag and verdict:
//! each partition's time to drain (its lag at its recent consume rate) and retention margin
//! (how long until its oldest unconsumed message reaches the topic's retention), and the
//! group's maximum and minimum of them; and, with the cardinality controls' decision, which
//! of its series are left out and how many.
//!
//! Everything here is computed once per poll from that poll and the windows the scheduler
//! keeps, so that rendering reads a group's series from the group's own snapshot and never
//! computes across groups at scrape time.

use std::time::Duration;

use crate::cardinality::{Exposure, Reason};
use crate::model::{GroupProgress, PartitionProgress};
use crate::store::{Derived, PartitionDerived, TopicDerived};
use crate::verdict::time_to_drain;

/// What a poll's derived values are computed from besides its progress.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// Consume rates per partition, in the progress's order (see `verdict::Observed`).
    pub consume_rates: &'a [Vec<Option<f64>>],
    /// Each topic's retention where known, in the progress's order.
    pub retention: &'a [Option<Duration>],
    /// What the cardinality controls let through.
    pub exposure: &'a Exposure,
}

/// The derived values of `progress`.
pub fn derive(progress: &GroupProgress, inputs: &Inputs<'_>) -> Derived {
    let mut derived = Derived {
        topics: Vec::with_capacity(progress.topics.len()),
        max_time_to_drain: None,
        min_retention_margin: None,
        skipped: inputs.exposure.skipped,
        suppressed: [0; 2],
    };
    // The group's maximum exists only when every partition with lag has a time to drain:
    // a stalled partition never drains, and a maximum over the others would hide it.
    let mut all_known = true;
    for (ti, topic) in progress.topics.iter().enumerate() {
        let rates = inputs.consume_rates.get(ti);
        let retention = inputs.retention.get(ti).copied().flatten();
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
            // Only messages not consumed yet can be deleted unconsumed: no lag, no margin.
            let margin = match (retention, p.time_lag) {
                (Some(r), Some(t)) if p.lag().is_some_and(|l| l > 0) => {
                    Some(r.as_secs_f64() - t.seconds)
                }
                _ => None,
            };
            if let Some(m) = margin {
                derived.min_retention_margin =
                    Some(derived.min_retention_margin.map_or(m, |x| x.min(m)));
            }
            let hidden = inputs
                .exposure
                .shown
                .get(ti)
                .and_then(|s| s.get(pi))
                .is_some_and(|shown| !shown);
            let d = PartitionDerived {
                time_to_drain: drain,
                retention_margin: margin,
                hidden,
            };
            if derived.skipped {
                derived.suppressed[Reason::GroupState as usize] += partition_series(p, &d);
            } else if hidden {
                derived.suppressed[Reason::PartitionLimit as usize] += partition_series(p, &d);
            }
            partitions.push(d);
        }
        derived.topics.push(TopicDerived { partitions });
    }
    if !all_known {
        derived.max_time_to_drain = None;
    }
    if derived.skipped {
        // The per-group series too: one topic lag per topic, and the maxima and minimum.
        let has_time_lag = progress
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.time_lag.is_some());
        derived.suppressed[Reason::GroupState as usize] += progress.topics.len()
            + usize::from(has_time_lag)
            + usize::from(derived.max_time_to_drain.is_some())
            + usize::from(derived.min_retention_margin.is_some());
    }
    derived
}

/// The per-partition series a partition has in the default naming: committed offset and
/// lag, time lag, last consumed time, time to drain, retention margin, where known.
fn partition_series(p: &PartitionProgress, d: &PartitionDerived) -> usize {
    2 * usize::from(p.committed.is_some())
        + usize::from(p.time_lag.is_some())
        + usize::from(p.last_consumed_ms.is_some())
        + usize::from(d.time_to_drain.is_some())
        + usize::from(d.retention_margin.is_some())
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
                retention: &[],
                exposure: &Exposure::default(),
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
                retention: &[],
                exposure: &Exposure::default(),
            },
        );
        assert_eq!(d.partition(0, 3).time_to_drain, None);
        assert_eq!(d.max_time_to_drain, None);
    }

    #[test]
    fn retention_margin_is_retention_minus_time_lag_where_something_is_unconsumed() {
        use crate::model::{TimeLag, TimeLagMethod};
        let lag = |seconds: f64| {
            Some(TimeLag {
                seconds,
                min_seconds: seconds,
                max_seconds: Some(seconds),
                method: TimeLagMethod::Interpolated,
            })
        };
        let mut p = progress(&[(Some(0), 100), (Some(5), 5), (Some(10), 50), (Some(1), 9)]);
        let parts = &mut p.topics[0].partitions;
        parts[0].time_lag = lag(3_000.0);
        parts[1].time_lag = Some(TimeLag::CAUGHT_UP);
        parts[2].time_lag = lag(600.5);
        // parts[3]: lag but no time lag yet.
        fn inputs(retention: &[Option<Duration>]) -> Inputs<'_> {
            static ALL: Exposure = Exposure {
                skipped: false,
                shown: Vec::new(),
            };
            Inputs {
                consume_rates: &[],
                retention,
                exposure: &ALL,
            }
        }
        let hour = &[Some(Duration::from_secs(3_600))];
        let d = derive(&p, &inputs(hour));
        let margins: Vec<Option<f64>> =
            (0..4).map(|i| d.partition(0, i).retention_margin).collect();
        assert_eq!(margins, [Some(600.0), None, Some(2_999.5), None]);
        assert_eq!(d.min_retention_margin, Some(600.0));
        // Past the retention: negative (the message may already be gone).
        parts_lag(&mut p, 0, 4_000.0);
        assert_eq!(derive(&p, &inputs(hour)).min_retention_margin, Some(-400.0));
        // Retention unknown: nothing.
        let d = derive(&p, &inputs(&[None]));
        assert_eq!(
            (d.partition(0, 0).retention_margin, d.min_retention_margin),
            (None, None)
        );
    }

    fn parts_lag(p: &mut GroupProgress, i: usize, seconds: f64) {
        let t = p.topics[0].partitions[i].time_lag.as_mut().unwrap();
        t.seconds = seconds;
    }

    #[test]
    fn left_out_series_are_counted_by_reason() {
        // Lag 100, lag 0, no commit, lag 60; drain times for the first two.
        let p = progress(&[(Some(0), 100), (Some(5), 5), (None, 9), (Some(40), 100)]);
        let rates = vec![vec![Some(10.0), Some(1.0), None, None]];
        let limited = Exposure {
            skipped: false,
            shown: vec![vec![true, false, false, true]],
        };
        let d = derive(
            &p,
            &Inputs {
                consume_rates: &rates,
                retention: &[],
                exposure: &limited,
            },
        );
        let hidden: Vec<bool> = (0..4).map(|i| d.partition(0, i).hidden).collect();
        assert_eq!(hidden, [false, true, true, false]);
        // Partition 1: offset, lag, drain 0; partition 2: nothing.
        assert_eq!(d.suppressed, [0, 3]);
        let skipped = Exposure {
            skipped: true,
            shown: Vec::new(),
        };
        let d = derive(
            &p,
            &Inputs {
                consume_rates: &rates,
                retention: &[],
                exposure: &skipped,
            },
        );
        // Offsets and lags of three partitions, two drain times, one topic lag.
        assert_eq!(d.suppressed, [6 + 2 + 1, 0]);
        assert!(d.skipped);
    }
}

//! The outcome of an executed reset: what became of each request (accepted, failed, not
//! sent after a failure), where each partition is when read again, whether that is its
//! target ([`verify`]), and which partitions moved. A multi-request plan that stops part
//! way is reported partition by partition, never as all-or-nothing.

use std::io::Write;

use super::plan::{Expected, Plan, PlanRow};
use super::{ResetError, failed, partitions, put};
use crate::model::{GroupProgress, ResetTarget};

/// What became of one request of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The cloud confirmed it.
    Accepted,
    /// The cloud refused it, or its answer was lost or malformed (it may still have
    /// landed); the message says which.
    Failed(String),
    /// Not sent, because an earlier request failed.
    NotSent,
}

impl Sent {
    pub fn as_str(&self) -> &'static str {
        match self {
            Sent::Accepted => "accepted",
            Sent::Failed(_) => "failed",
            Sent::NotSent => "not_sent",
        }
    }
}

/// How a partition ended up compared with its plan row.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// At its target, which was known exactly.
    Applied,
    /// Where the target must lie, but the target itself is unknown to us (the earliest
    /// retained offset, the offset at a time, a shift stopped at the earliest offset).
    Unverified,
    /// Not where the plan said.
    NotApplied,
    /// Its request was not sent, because an earlier one failed.
    NotSent,
}

impl Verdict {
    /// The RESULT column.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Unverified => "unverified",
            Verdict::NotApplied => "NOT APPLIED",
            Verdict::NotSent => "NOT SENT",
        }
    }

    /// The `result` field of the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Unverified => "unverified",
            Verdict::NotApplied => "not_applied",
            Verdict::NotSent => "not_sent",
        }
    }
}

/// Checks one partition's committed offset after the write against its plan row, given
/// the target its request sent.
///
/// The log end only grows between the plan and the re-read, and the earliest retained
/// offset is not reported by either cloud. So:
/// - latest: applied when the offset is at least the planned log end (the reset moves to
///   the log end as it is when applied, which may be further);
/// - explicit offsets: applied only when equal;
/// - shift by N: applied when equal to current + N within `[0, planned log end]`, or, for
///   a forward shift past the planned log end, between that log end and current + N; a
///   backward shift that stopped between current + N and current is unverified (the
///   cloud stops at the earliest retained offset, which we cannot see);
/// - earliest and a time: the target is unknown, but cannot lie beyond the planned log
///   end (a time that has passed is before everything produced since): unverified when
///   the offset is at most the planned log end, an unchanged offset included (it may
///   already have been at the target), not applied otherwise;
/// - no committed offset after the write: not applied.
pub fn verify(sent: &ResetTarget, row: &PlanRow, after: Option<i64>) -> Verdict {
    let Some(now) = after else {
        return Verdict::NotApplied;
    };
    let ok = |applied: bool| {
        if applied {
            Verdict::Applied
        } else {
            Verdict::NotApplied
        }
    };
    match sent {
        ResetTarget::Latest => ok(now >= row.log_end),
        ResetTarget::Offsets(_) => ok(row.target == Expected::Offset(now)),
        ResetTarget::ShiftBy(n) => {
            let Some(current) = row.current else {
                return Verdict::NotApplied;
            };
            let raw = current.saturating_add(*n);
            if now == raw.clamp(0, row.log_end)
                || (raw > row.log_end && (row.log_end..=raw).contains(&now))
            {
                Verdict::Applied
            } else if *n < 0 && now > raw && now < current {
                Verdict::Unverified
            } else {
                Verdict::NotApplied
            }
        }
        ResetTarget::Earliest | ResetTarget::Timestamp(_) => {
            if now <= row.log_end {
                Verdict::Unverified
            } else {
                Verdict::NotApplied
            }
        }
    }
}

/// The outcome of an executed reset, partition by partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    pub rows: Vec<ResultRow>,
    /// What became of each request of the plan, in order.
    pub sent: Vec<Sent>,
}

/// One partition after the write.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub plan: PlanRow,
    /// The committed offset read after the write.
    pub committed: Option<i64>,
    /// The log end read after the write; `None` when the partition was not in the answer.
    pub log_end: Option<i64>,
    pub verdict: Verdict,
}

impl ResultRow {
    /// Whether the committed offset changed.
    pub fn moved(&self) -> bool {
        self.committed != self.plan.current
    }
}

impl Plan {
    /// Compares the progress read after the writes with the plan, partition by partition.
    /// Where a request failed, a partition whose offset did not move counts as not applied
    /// even where its target is unknown; where it was not sent, the partition is not sent.
    pub fn check(&self, after: &GroupProgress, sent: &[Sent]) -> Results {
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let found = after
                    .topic(&row.topic)
                    .and_then(|t| t.partition(row.partition));
                let committed = found.and_then(|p| p.committed);
                let verdict = match sent.get(row.step).unwrap_or(&Sent::NotSent) {
                    Sent::NotSent => Verdict::NotSent,
                    Sent::Accepted => verify(&self.steps[row.step].target, row, committed),
                    Sent::Failed(_) => match verify(&self.steps[row.step].target, row, committed) {
                        v @ Verdict::Applied => v,
                        _ if committed == row.current => Verdict::NotApplied,
                        v => v,
                    },
                };
                ResultRow {
                    plan: row.clone(),
                    committed,
                    log_end: found.map(|p| p.log_end),
                    verdict,
                }
            })
            .collect();
        Results {
            rows,
            sent: sent.to_vec(),
        }
    }
}

/// `topic/partition` names.
fn names<'a>(rows: impl Iterator<Item = &'a ResultRow>) -> Vec<String> {
    rows.map(|r| format!("{}/{}", r.plan.topic, r.plan.partition))
        .collect()
}

impl Results {
    fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// The partitions whose committed offset changed, as `topic/partition:before->after`.
    pub fn moved(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.moved())
            .map(|r| {
                let text = |o: Option<i64>| o.map_or_else(|| "none".to_string(), |o| o.to_string());
                format!(
                    "{}/{}:{}->{}",
                    r.plan.topic,
                    r.plan.partition,
                    text(r.plan.current),
                    text(r.committed)
                )
            })
            .collect()
    }

    /// The partitions whose committed offset did not change.
    pub fn unmoved(&self) -> Vec<String> {
        names(self.rows.iter().filter(|r| !r.moved()))
    }

    /// "2 of 3 accepted".
    pub fn requests(&self) -> String {
        let accepted = self.sent.iter().filter(|s| **s == Sent::Accepted).count();
        format!("{accepted} of {} accepted", self.sent.len())
    }

    /// Whether every request was accepted and every partition is where it should be.
    pub fn succeeded(&self) -> bool {
        self.sent.iter().all(|s| *s == Sent::Accepted)
            && self
                .rows
                .iter()
                .all(|r| matches!(r.verdict, Verdict::Applied | Verdict::Unverified))
    }

    /// Says on `err` what was and was not applied; an error when anything was not, or
    /// when a request failed. `undo` is the backup to undo with.
    pub fn conclude(&self, plan: &Plan, undo: &str, err: &mut dyn Write) -> Result<(), ResetError> {
        let total = self.rows.len();
        let unverified: Vec<&ResultRow> = self
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Unverified)
            .collect();
        if !unverified.is_empty() {
            let mut why: Vec<&str> = Vec::new();
            for r in &unverified {
                let reason = match plan.steps[r.plan.step].target {
                    ResetTarget::Earliest => {
                        "the cloud does not report the earliest retained offset"
                    }
                    ResetTarget::Timestamp(_) => {
                        "the cloud does not report which offset a time corresponds to"
                    }
                    _ => {
                        "the shift stopped early, presumably at the earliest retained offset, which the cloud does not report"
                    }
                };
                if !why.contains(&reason) {
                    why.push(reason);
                }
            }
            put(
                err,
                &format!(
                    "note: {} of {} where the target lies, but the exact offset cannot be checked: {}\n",
                    unverified.len(),
                    partitions(total),
                    why.join("; ")
                ),
            )?;
        }
        let failed_request = self.sent.iter().any(|s| matches!(s, Sent::Failed(_)));
        let missing = names(
            self.rows
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::NotApplied | Verdict::NotSent)),
        );
        if failed_request || !missing.is_empty() {
            let what = if missing.is_empty() {
                "every partition is at its target, yet the cloud reported a failure".to_string()
            } else {
                format!(
                    "{} of {} not at the target: {}",
                    missing.len(),
                    partitions(total),
                    missing.join(", ")
                )
            };
            let lead = if failed_request {
                "the reset failed"
            } else {
                "the reset was accepted but not fully applied"
            };
            let moved = self.moved();
            let moved = if moved.is_empty() {
                "no partition moved".to_string()
            } else {
                format!("moved: {}", moved.join(", "))
            };
            let not_sent = self.sent.iter().filter(|s| **s == Sent::NotSent).count();
            let requests = if self.sent.len() > 1 {
                format!(
                    "; requests: {}{}",
                    self.requests(),
                    if not_sent > 0 {
                        format!(", {not_sent} not sent")
                    } else {
                        String::new()
                    }
                )
            } else {
                String::new()
            };
            return Err(failed(format!(
                "{lead}: {what}; {moved}{requests}. To undo, run this command with --from-file \
                 {undo} instead of the target; to see the offsets now, run it without --execute"
            )));
        }
        let applied = self.count(Verdict::Applied);
        let unverified = unverified.len();
        let summary = if unverified == 0 {
            format!("reset applied: {} at the target", partitions(total))
        } else if applied == 0 {
            format!(
                "reset applied: {} where the target lies; exact offsets cannot be verified (see the note above)",
                partitions(total)
            )
        } else {
            format!(
                "reset applied: {} at the target, {unverified} where the target lies but not verifiable exactly (see the note above)",
                partitions(applied)
            )
        };
        put(err, &format!("{summary}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::reset::tests::partition;
    use crate::model::{ResetRequest, ResetScope, TopicProgress};

    fn row(current: Option<i64>, log_end: i64, target: Expected) -> PlanRow {
        PlanRow {
            topic: "t".into(),
            partition: 0,
            current,
            log_end,
            target,
            step: 0,
        }
    }

    #[test]
    fn verification_follows_the_documented_rule() {
        use Verdict::*;
        let latest = row(Some(40), 100, Expected::Offset(100));
        let v = |t: &ResetTarget, r: &PlanRow, after| verify(t, r, after);
        assert_eq!(v(&ResetTarget::Latest, &latest, Some(100)), Applied);
        assert_eq!(
            v(&ResetTarget::Latest, &latest, Some(103)),
            Applied,
            "the log end grew"
        );
        assert_eq!(v(&ResetTarget::Latest, &latest, Some(40)), NotApplied);
        assert_eq!(v(&ResetTarget::Latest, &latest, None), NotApplied);

        let offsets = ResetTarget::Offsets(vec![(0, 20)]);
        let r = row(Some(40), 100, Expected::Offset(20));
        assert_eq!(v(&offsets, &r, Some(20)), Applied);
        assert_eq!(v(&offsets, &r, Some(21)), NotApplied);
        assert_eq!(v(&offsets, &r, Some(40)), NotApplied);

        let back = ResetTarget::ShiftBy(-10);
        let r = row(Some(40), 100, Expected::Offset(30));
        assert_eq!(v(&back, &r, Some(30)), Applied);
        assert_eq!(
            v(&back, &r, Some(35)),
            Unverified,
            "stopped at the earliest offset"
        );
        assert_eq!(v(&back, &r, Some(40)), NotApplied);
        assert_eq!(v(&back, &r, Some(29)), NotApplied);
        let fwd = ResetTarget::ShiftBy(70);
        let r = row(Some(40), 100, Expected::Offset(100));
        assert_eq!(v(&fwd, &r, Some(100)), Applied);
        assert_eq!(v(&fwd, &r, Some(104)), Applied, "log end at the write");
        assert_eq!(v(&fwd, &r, Some(111)), NotApplied, "past current + N");
        assert_eq!(v(&fwd, &r, Some(40)), NotApplied);

        for target in [ResetTarget::Earliest, ResetTarget::Timestamp(1)] {
            let r = row(Some(40), 100, Expected::Earliest);
            assert_eq!(v(&target, &r, Some(5)), Unverified);
            assert_eq!(v(&target, &r, Some(40)), Unverified, "may already be there");
            assert_eq!(v(&target, &r, Some(100)), Unverified);
            assert_eq!(v(&target, &r, Some(101)), NotApplied);
            assert_eq!(v(&target, &r, None), NotApplied);
        }
    }

    /// Topics `a` (0: 40 of 100, 1: 7 of 10) and `b` (0: 5 of 50), planned to explicit
    /// offsets in one request per topic.
    fn two_topics() -> (Plan, GroupProgress) {
        let before = GroupProgress {
            topics: vec![
                TopicProgress {
                    topic: "a".into(),
                    partitions: vec![partition(0, Some(40), 100), partition(1, Some(7), 10)],
                },
                TopicProgress {
                    topic: "b".into(),
                    partitions: vec![partition(0, Some(5), 50)],
                },
            ],
            info: None,
        };
        let plan_row = |topic: &str, partition: i32, current, log_end, target, step| PlanRow {
            topic: topic.into(),
            partition,
            current: Some(current),
            log_end,
            target: Expected::Offset(target),
            step,
        };
        let plan = Plan {
            rows: vec![
                plan_row("a", 0, 40, 100, 50, 0),
                plan_row("a", 1, 7, 10, 9, 0),
                plan_row("b", 0, 5, 50, 20, 1),
            ],
            steps: vec![
                ResetRequest {
                    scope: ResetScope::Topic("a".into()),
                    target: ResetTarget::Offsets(vec![(0, 50), (1, 9)]),
                },
                ResetRequest {
                    scope: ResetScope::Topic("b".into()),
                    target: ResetTarget::Offsets(vec![(0, 20)]),
                },
            ],
            notes: Vec::new(),
        };
        (plan, before)
    }

    #[test]
    fn a_plan_that_stops_part_way_says_which_partitions_moved() {
        let (plan, mut after) = two_topics();
        after.topics[0].partitions[0].committed = Some(50);
        after.topics[0].partitions[1].committed = Some(9);
        let sent = [Sent::Accepted, Sent::Failed("api_error: boom".into())];
        let results = plan.check(&after, &sent);
        let verdicts: Vec<Verdict> = results.rows.iter().map(|r| r.verdict).collect();
        assert_eq!(
            verdicts,
            [Verdict::Applied, Verdict::Applied, Verdict::NotApplied]
        );
        assert_eq!(results.moved(), ["a/0:40->50", "a/1:7->9"]);
        assert_eq!(results.unmoved(), ["b/0"]);
        assert_eq!(results.requests(), "1 of 2 accepted");
        assert!(!results.succeeded());
        let e = results
            .conclude(&plan, "/backups/x.csv", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "the reset failed: 1 of 3 partitions not at the target: b/0; moved: a/0:40->50, \
             a/1:7->9; requests: 1 of 2 accepted. To undo, run this command with --from-file \
             /backups/x.csv instead of the target; to see the offsets now, run it without \
             --execute"
        );

        // The first request fails: the second is not sent.
        let (plan, after) = two_topics();
        let sent = [Sent::Failed("timeout".into()), Sent::NotSent];
        let results = plan.check(&after, &sent);
        let verdicts: Vec<Verdict> = results.rows.iter().map(|r| r.verdict).collect();
        assert_eq!(
            verdicts,
            [Verdict::NotApplied, Verdict::NotApplied, Verdict::NotSent]
        );
        let e = results.conclude(&plan, "B", &mut Vec::new()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the reset failed: 3 of 3 partitions not at the target: a/0, a/1, b/0; no \
                 partition moved; requests: 0 of 2 accepted, 1 not sent."
            ),
            "{e}"
        );
    }

    #[test]
    fn a_refused_write_marks_unmoved_partitions_not_applied() {
        let plan = Plan {
            rows: vec![
                row(Some(40), 100, Expected::Earliest),
                PlanRow {
                    partition: 1,
                    ..row(Some(7), 10, Expected::Earliest)
                },
            ],
            steps: vec![ResetRequest {
                scope: ResetScope::Topic("t".into()),
                target: ResetTarget::Earliest,
            }],
            notes: Vec::new(),
        };
        let after = GroupProgress {
            topics: vec![TopicProgress {
                topic: "t".into(),
                partitions: vec![partition(0, Some(3), 100), partition(1, Some(7), 10)],
            }],
            info: None,
        };
        let accepted = plan.check(&after, &[Sent::Accepted]);
        let verdicts: Vec<Verdict> = accepted.rows.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts, [Verdict::Unverified, Verdict::Unverified]);
        let refused = plan.check(&after, &[Sent::Failed("x".into())]);
        let verdicts: Vec<Verdict> = refused.rows.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts, [Verdict::Unverified, Verdict::NotApplied]);

        let e = refused.conclude(&plan, "B", &mut Vec::new()).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string().starts_with(
                "the reset failed: 1 of 2 partitions not at the target: t/1; moved: t/0:40->3."
            ),
            "{e}"
        );
        let mut err = Vec::new();
        accepted.conclude(&plan, "B", &mut err).unwrap();
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.contains("2 of 2 partitions where the target lies"),
            "{err}"
        );
        assert!(
            err.contains("does not report the earliest retained offset"),
            "{err}"
        );
        assert!(err.contains("exact offsets cannot be verified"), "{err}");
    }

    #[test]
    fn a_result_that_differs_from_the_plan_is_a_failure() {
        let (plan, mut after) = two_topics();
        after.topics[0].partitions[0].committed = Some(50);
        after.topics[0].partitions[1].committed = Some(9);
        after.topics[1].partitions[0].committed = Some(21);
        let results = plan.check(&after, &[Sent::Accepted, Sent::Accepted]);
        let e = results.conclude(&plan, "B", &mut Vec::new()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the reset was accepted but not fully applied: 1 of 3 partitions not at the target: b/0;"
            ),
            "{e}"
        );
        after.topics[1].partitions[0].committed = Some(20);
        let results = plan.check(&after, &[Sent::Accepted, Sent::Accepted]);
        assert!(results.succeeded());
        let mut err = Vec::new();
        results.conclude(&plan, "B", &mut err).unwrap();
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "reset applied: 3 partitions at the target\n"
        );
    }
}

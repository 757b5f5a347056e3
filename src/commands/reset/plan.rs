//! The plan of a reset: validated against the group's progress, one row per partition
//! (its offset now, its log end, where it should go) and the requests that move them, in
//! the order they are sent. The printed table, the backup's header, the export, the
//! requests and the check of the result all derive from one [`Plan`].
//!
//! The cloud decides how a reset is split into requests ([`OffsetWriter::reset_calls`],
//! passed in as `calls`). What it cannot express (a shift on Alibaba, a latest reset of
//! some partitions of a topic on Alibaba) is sent as the explicit offsets the plan
//! computed, where those are known; otherwise the reset is refused.
//!
//! [`OffsetWriter::reset_calls`]: crate::providers::OffsetWriter::reset_calls

use std::fmt;

use super::target::{Scope, Selection, Target, offsets_need_topic};
use super::{ResetError, fmt_time_ms, partitions, refused};
use crate::model::{
    GroupProgress, PartitionProgress, ResetRequest, ResetScope, ResetTarget, TopicProgress,
};

/// What a reset will do.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub rows: Vec<PlanRow>,
    /// The requests, in the order they are sent; each row names the one that moves it.
    pub steps: Vec<ResetRequest>,
    /// What the operator should know beyond the table.
    pub notes: Vec<String>,
}

/// One partition of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub topic: String,
    pub partition: i32,
    /// The committed offset when planned; `None` when the group never committed here.
    pub current: Option<i64>,
    /// The log-end offset when planned.
    pub log_end: i64,
    pub target: Expected,
    /// The index in [`Plan::steps`] of the request that moves this partition.
    pub step: usize,
}

/// Where a partition should end up, as far as it can be known ahead of the reset.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// This offset (explicit, the log end, or a shift limited to `[0, log end]`).
    Offset(i64),
    /// The earliest retained offset, which the clouds do not report.
    Earliest,
    /// The first offset produced at or after this Unix millisecond time.
    Time(i64),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Offset(o) => write!(f, "{o}"),
            Expected::Earliest => f.write_str("earliest"),
            Expected::Time(ms) => f.write_str(&fmt_time_ms(*ms)),
        }
    }
}

/// Validates a reset against the group's progress and plans it: the rows, then the
/// requests `calls` splits them into (see the module documentation).
pub fn plan(
    group: &str,
    progress: &GroupProgress,
    scope: &Scope,
    target: &Target,
    cloud: &str,
    calls: &dyn Fn(&ResetRequest) -> Option<Vec<ResetRequest>>,
) -> Result<Plan, ResetError> {
    if progress.topics.is_empty() {
        return Err(refused(format!(
            "group {group} has no offsets on any topic: there is nothing to reset"
        )));
    }
    let mut rows = select(group, progress, scope, target)?;
    let mut steps = Vec::new();
    let mut notes: Vec<String> = note(target).into_iter().collect();
    for wish in wishes(progress, scope, target, &rows) {
        if let Some(list) = calls(&wish) {
            steps.extend(list);
            continue;
        }
        // The cloud cannot express it: send the offsets computed here, where known.
        let covered: Vec<&PlanRow> = rows
            .iter()
            .filter(|r| wish.covers(&r.topic, r.partition))
            .collect();
        if !covered
            .iter()
            .all(|r| matches!(r.target, Expected::Offset(_)))
        {
            return Err(refused(format!(
                "{cloud} cannot reset only some partitions of a topic to {}: reset the whole \
                 topic, or give the offsets with --topic TOPIC --to-offsets",
                match wish.target {
                    ResetTarget::Earliest => "the earliest offset",
                    _ => "a time",
                }
            )));
        }
        for explicit in explicit_requests(&covered) {
            let list = calls(&explicit).ok_or_else(|| {
                refused(format!(
                    "{cloud} cannot reset explicit offsets of {}",
                    describe_scope(&explicit.scope)
                ))
            })?;
            steps.extend(list);
        }
        let what = match wish.target {
            ResetTarget::ShiftBy(n) => {
                // The cloud no longer limits the shift at the earliest retained offset.
                if let Some(first) = notes.first_mut() {
                    *first = format!(
                        "TARGET is CURRENT-OFFSET {n:+} limited to [0, LOG-END-OFFSET]; the cloud \
                         may refuse an offset below its earliest retained offset, which it does \
                         not report"
                    );
                }
                "has no relative reset"
            }
            _ => "cannot reset only some partitions of a topic to the latest offset",
        };
        let translated = format!(
            "{cloud} {what}: TARGET is sent as explicit offsets, computed from the offsets read now"
        );
        if !notes.contains(&translated) {
            notes.push(translated);
        }
    }
    for row in &mut rows {
        row.step = steps
            .iter()
            .position(|s| s.covers(&row.topic, row.partition))
            .ok_or_else(|| {
                refused(format!(
                    "no request of the plan covers partition {} of topic {} (a bug: please report it)",
                    row.partition, row.topic
                ))
            })?;
    }
    if steps.len() > 1 {
        notes.push(format!(
            "the plan takes {} requests, sent one after the other; if one fails, those after \
             it are not sent and the result says which partitions moved",
            steps.len()
        ));
    }
    Ok(Plan { rows, steps, notes })
}

/// The topics of the progress that are in the scope, with the group's topics listed when
/// one is missing.
fn select(
    group: &str,
    progress: &GroupProgress,
    scope: &Scope,
    target: &Target,
) -> Result<Vec<PlanRow>, ResetError> {
    let topic_names = || {
        let names: Vec<&str> = progress.topics.iter().map(|t| t.topic.as_str()).collect();
        names.join(", ")
    };
    let find = |flag: &str, name: &str| {
        progress.topic(name).ok_or_else(|| {
            refused(format!(
                "{flag}: group {group} has no offsets on topic {name} (its topics: {})",
                topic_names()
            ))
        })
    };
    fn part<'t>(
        flag: &str,
        t: &'t TopicProgress,
        p: i32,
    ) -> Result<&'t PartitionProgress, ResetError> {
        t.partition(p).ok_or_else(|| {
            let numbers: Vec<String> = t
                .partitions
                .iter()
                .map(|p| p.partition.to_string())
                .collect();
            refused(format!(
                "{flag}: topic {} has no partition {p} (partitions: {})",
                t.topic,
                numbers.join(", ")
            ))
        })
    }
    let in_range = |flag: &str, t: &TopicProgress, p: &PartitionProgress, offset: i64| {
        if (0..=p.log_end).contains(&offset) {
            Ok(row(t, p, Expected::Offset(offset)))
        } else {
            Err(refused(format!(
                "{flag}: offset {offset} for partition {} of topic {} is outside [0, {}] (0 \
                 to the log-end offset)",
                p.partition, t.topic, p.log_end
            )))
        }
    };
    match (target, scope) {
        (Target::Offsets(list), Scope::Topics(selected)) => {
            let [Selection { topic, .. }] = selected.as_slice() else {
                return Err(offsets_need_topic());
            };
            if list.is_empty() {
                return Err(refused("--to-offsets: no partition offsets given"));
            }
            let t = find("--topic", topic)?;
            list.iter()
                .map(|&(p, offset)| {
                    in_range("--to-offsets", t, part("--to-offsets", t, p)?, offset)
                })
                .collect()
        }
        (Target::Offsets(_), Scope::AllTopics) => Err(offsets_need_topic()),
        (Target::File { rows, .. }, scope) => {
            if let Scope::Topics(selected) = scope {
                for s in selected {
                    if !rows.iter().any(|r| s.covers(&r.topic, r.partition)) {
                        return Err(refused(format!("--topic {s}: the file has no row for it")));
                    }
                }
            }
            let mut planned = Vec::new();
            for r in rows.iter().filter(|r| scope.covers(&r.topic, r.partition)) {
                let flag = format!("--from-file line {}", r.line);
                let t = find(&flag, &r.topic)?;
                planned.push(in_range(&flag, t, part(&flag, t, r.partition)?, r.offset)?);
            }
            planned.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            Ok(planned)
        }
        (_, scope) => {
            let mut selected: Vec<(&TopicProgress, Option<&[i32]>)> = Vec::new();
            match scope {
                Scope::AllTopics => selected.extend(progress.topics.iter().map(|t| (t, None))),
                Scope::Topics(list) => {
                    for s in list {
                        let t = find("--topic", &s.topic)?;
                        if let Some(ps) = &s.partitions {
                            for p in ps {
                                part("--topic", t, *p)?;
                            }
                        }
                        selected.push((t, s.partitions.as_deref()));
                    }
                }
            }
            let mut planned = Vec::new();
            for (t, only) in selected {
                for p in &t.partitions {
                    if only.is_some_and(|list| !list.contains(&p.partition)) {
                        continue;
                    }
                    planned.push(row(t, p, expected(target, t, p)?));
                }
            }
            Ok(planned)
        }
    }
}

fn row(t: &TopicProgress, p: &PartitionProgress, target: Expected) -> PlanRow {
    PlanRow {
        topic: t.topic.clone(),
        partition: p.partition,
        current: p.committed,
        log_end: p.log_end,
        target,
        step: 0,
    }
}

/// Where a partition goes for a target that is not a list of offsets.
fn expected(
    target: &Target,
    t: &TopicProgress,
    p: &PartitionProgress,
) -> Result<Expected, ResetError> {
    Ok(match target {
        Target::Latest => Expected::Offset(p.log_end),
        Target::Earliest => Expected::Earliest,
        Target::Time { ms, .. } => Expected::Time(*ms),
        // As kafka-consumer-groups: where nothing was committed, the log end.
        Target::Current => Expected::Offset(p.committed.unwrap_or(p.log_end)),
        Target::Shift(n) => {
            // As kafka-consumer-groups: a shift needs an offset to shift from.
            let Some(current) = p.committed else {
                return Err(refused(format!(
                    "--shift-by: partition {} of topic {} has no committed offset to shift \
                     from; reset it with --to-offsets, --to-earliest or --to-latest instead",
                    p.partition, t.topic
                )));
            };
            Expected::Offset(current.saturating_add(*n).clamp(0, p.log_end))
        }
        Target::Offsets(_) | Target::File { .. } => unreachable!("planned as listed offsets"),
    })
}

/// The resets the operator asked for, before the cloud splits them: explicit offsets per
/// topic; otherwise all topics at once, the whole topics together, and each partly
/// selected topic on its own.
fn wishes(
    progress: &GroupProgress,
    scope: &Scope,
    target: &Target,
    rows: &[PlanRow],
) -> Vec<ResetRequest> {
    if target.is_explicit() {
        return explicit_requests(&rows.iter().collect::<Vec<_>>());
    }
    let wire = match target {
        Target::Latest => ResetTarget::Latest,
        Target::Earliest => ResetTarget::Earliest,
        Target::Time { ms, .. } => ResetTarget::Timestamp(*ms),
        Target::Shift(n) => ResetTarget::ShiftBy(*n),
        Target::Current | Target::Offsets(_) | Target::File { .. } => unreachable!("explicit"),
    };
    let request = |scope| ResetRequest {
        scope,
        target: wire.clone(),
    };
    match scope {
        Scope::AllTopics => vec![request(ResetScope::AllTopics(
            progress.topics.iter().map(|t| t.topic.clone()).collect(),
        ))],
        Scope::Topics(list) => {
            let whole: Vec<String> = list
                .iter()
                .filter(|s| s.partitions.is_none())
                .map(|s| s.topic.clone())
                .collect();
            let mut out = match whole.len() {
                0 => Vec::new(),
                1 => vec![request(ResetScope::Topic(whole[0].clone()))],
                _ => vec![request(ResetScope::Topics(whole))],
            };
            out.extend(list.iter().filter_map(|s| {
                Some(request(ResetScope::Partitions {
                    topic: s.topic.clone(),
                    partitions: s.partitions.clone()?,
                }))
            }));
            out
        }
    }
}

/// One explicit-offsets request per topic, in the rows' order; every row must have an
/// exact target.
fn explicit_requests(rows: &[&PlanRow]) -> Vec<ResetRequest> {
    let mut out: Vec<(String, Vec<(i32, i64)>)> = Vec::new();
    for r in rows {
        let Expected::Offset(o) = r.target else {
            continue;
        };
        match out.iter_mut().find(|(t, _)| *t == r.topic) {
            Some((_, list)) => list.push((r.partition, o)),
            None => out.push((r.topic.clone(), vec![(r.partition, o)])),
        }
    }
    out.into_iter()
        .map(|(topic, list)| ResetRequest {
            scope: ResetScope::Topic(topic),
            target: ResetTarget::Offsets(list),
        })
        .collect()
}

/// What the operator should know about a target beyond the table.
fn note(target: &Target) -> Option<String> {
    match target {
        Target::Latest => Some(
            "the log end moves while producers write; each partition moves to its log end at the moment the reset is applied".into(),
        ),
        Target::Earliest => Some(
            "TARGET `earliest` is each partition's earliest retained offset, which the cloud does not report".into(),
        ),
        Target::Time { ms, .. } => Some(format!(
            "each partition moves to the first offset produced at or after {}, or to its log end if there is none; the cloud does not report that offset ahead of the reset",
            fmt_time_ms(*ms)
        )),
        Target::Shift(n) => Some(format!(
            "TARGET is CURRENT-OFFSET {n:+} limited to [0, LOG-END-OFFSET]; the cloud also stops at the earliest retained offset, which it does not report"
        )),
        Target::Current => Some(
            "TARGET is each partition's committed offset as read now (its log end where it has none)".into(),
        ),
        Target::Offsets(_) | Target::File { .. } => None,
    }
}

/// A request's scope in words: "all topics (a, b)", "topic a", "partitions 0, 2 of topic a".
pub fn describe_scope(scope: &ResetScope) -> String {
    match scope {
        ResetScope::AllTopics(topics) => format!("all topics ({})", topics.join(", ")),
        ResetScope::Topic(topic) => format!("topic {topic}"),
        ResetScope::Topics(topics) => format!("topics {}", topics.join(", ")),
        ResetScope::Partitions { topic, partitions } => {
            let numbers: Vec<String> = partitions.iter().map(i32::to_string).collect();
            format!(
                "partition{} {} of topic {topic}",
                if partitions.len() == 1 { "" } else { "s" },
                numbers.join(", ")
            )
        }
    }
}

impl Plan {
    /// The distinct topics of the plan, in row order.
    pub fn topics(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.topic.as_str()) {
                out.push(&r.topic);
            }
        }
        out
    }

    /// "6 partitions", or "6 partitions in 2 requests".
    pub fn size(&self) -> String {
        let n = partitions(self.rows.len());
        match self.steps.len() {
            1 => n,
            k => format!("{n} in {k} requests"),
        }
    }

    /// Every row's target as an exact offset, for `--export`; an error naming the target
    /// when the offsets are not known ahead of the reset.
    pub fn exact_offsets(&self) -> Result<Vec<(&str, i32, i64)>, String> {
        self.rows
            .iter()
            .map(|r| match r.target {
                Expected::Offset(o) => Ok((r.topic.as_str(), r.partition, o)),
                Expected::Earliest => Err(
                    "--export: the earliest retained offsets are not reported by the cloud, so they cannot be exported ahead of the reset".to_string(),
                ),
                Expected::Time(_) => Err(
                    "--export: the offsets at a time are not reported by the cloud ahead of the reset, so they cannot be exported".to_string(),
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::reset::tests::partition;

    /// Topic `a` (partitions 0 and 1, both committed) and `b` (partition 0 never committed).
    fn progress() -> GroupProgress {
        GroupProgress {
            topics: vec![
                TopicProgress {
                    topic: "a".into(),
                    partitions: vec![partition(0, Some(40), 100), partition(1, Some(7), 10)],
                },
                TopicProgress {
                    topic: "b".into(),
                    partitions: vec![partition(0, None, 50)],
                },
            ],
            info: None,
        }
    }

    /// Splits as Tencent does: explicit offsets one topic per request, the rest in one.
    fn one_call(r: &ResetRequest) -> Option<Vec<ResetRequest>> {
        match (&r.scope, &r.target) {
            (ResetScope::Topic(_), _)
            | (
                _,
                ResetTarget::Latest
                | ResetTarget::ShiftBy(_)
                | ResetTarget::Earliest
                | ResetTarget::Timestamp(_),
            ) => Some(vec![r.clone()]),
            _ => None,
        }
    }

    /// Splits as Alibaba does: no shifts, no partition subsets of time targets, one topic
    /// per request unless all.
    fn per_topic(r: &ResetRequest) -> Option<Vec<ResetRequest>> {
        match (&r.scope, &r.target) {
            (_, ResetTarget::ShiftBy(_)) => None,
            (ResetScope::Topic(_), _) | (ResetScope::AllTopics(_), ResetTarget::Latest) => {
                Some(vec![r.clone()])
            }
            (ResetScope::Topics(list), t) if !matches!(t, ResetTarget::Offsets(_)) => Some(
                list.iter()
                    .map(|x| ResetRequest {
                        scope: ResetScope::Topic(x.clone()),
                        target: t.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    fn topics(list: &[&str]) -> Scope {
        Scope::Topics(
            list.iter()
                .map(|t| super::super::target::parse_selection(t).unwrap())
                .collect(),
        )
    }

    fn targets(plan: &Plan) -> Vec<(String, i32, Expected, usize)> {
        plan.rows
            .iter()
            .map(|r| (r.topic.clone(), r.partition, r.target, r.step))
            .collect()
    }

    fn message(e: ResetError) -> String {
        assert_eq!(e.exit_code(), 2, "a refusal: {e}");
        e.to_string()
    }

    #[test]
    fn plans_derive_the_rows_and_the_requests_from_one_target() {
        let p = plan(
            "g",
            &progress(),
            &Scope::AllTopics,
            &Target::Latest,
            "c",
            &one_call,
        )
        .unwrap();
        assert_eq!(
            p.steps,
            [ResetRequest {
                scope: ResetScope::AllTopics(vec!["a".into(), "b".into()]),
                target: ResetTarget::Latest
            }]
        );
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(100), 0),
                ("a".into(), 1, Expected::Offset(10), 0),
                ("b".into(), 0, Expected::Offset(50), 0),
            ]
        );
        assert_eq!(p.rows[2].current, None);
        assert_eq!(p.size(), "3 partitions");

        let p = plan(
            "g",
            &progress(),
            &topics(&["b"]),
            &Target::Earliest,
            "c",
            &one_call,
        )
        .unwrap();
        assert_eq!(p.steps[0].scope, ResetScope::Topic("b".into()));
        assert_eq!(targets(&p), [("b".into(), 0, Expected::Earliest, 0)]);

        let time = Target::Time {
            ms: 5,
            duration: None,
        };
        let p = plan("g", &progress(), &Scope::AllTopics, &time, "c", &one_call).unwrap();
        assert!(p.rows.iter().all(|r| r.target == Expected::Time(5)));
        assert_eq!(p.steps[0].target, ResetTarget::Timestamp(5));

        let p = plan(
            "g",
            &progress(),
            &topics(&["a"]),
            &Target::Shift(-45),
            "c",
            &one_call,
        )
        .unwrap();
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(0), 0),
                ("a".into(), 1, Expected::Offset(0), 0),
            ],
            "limited at 0"
        );
        assert_eq!(
            p.steps[0].target,
            ResetTarget::ShiftBy(-45),
            "sent natively"
        );
        let p = plan(
            "g",
            &progress(),
            &topics(&["a"]),
            &Target::Shift(5),
            "c",
            &one_call,
        )
        .unwrap();
        assert_eq!(p.rows[0].target, Expected::Offset(45));
        assert_eq!(
            p.rows[1].target,
            Expected::Offset(10),
            "limited at the log end"
        );

        let p = plan(
            "g",
            &progress(),
            &Scope::AllTopics,
            &Target::Current,
            "c",
            &one_call,
        )
        .unwrap();
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(40), 0),
                ("a".into(), 1, Expected::Offset(7), 0),
                ("b".into(), 0, Expected::Offset(50), 1),
            ],
            "the log end where nothing was committed"
        );
        assert_eq!(
            p.steps,
            [
                ResetRequest {
                    scope: ResetScope::Topic("a".into()),
                    target: ResetTarget::Offsets(vec![(0, 40), (1, 7)])
                },
                ResetRequest {
                    scope: ResetScope::Topic("b".into()),
                    target: ResetTarget::Offsets(vec![(0, 50)])
                },
            ],
            "explicit offsets go one topic per request"
        );
        assert_eq!(p.size(), "3 partitions in 2 requests");
        assert!(
            p.notes.iter().any(|n| n.contains("2 requests")),
            "{:?}",
            p.notes
        );

        let offsets = Target::Offsets(vec![(0, 100), (1, 0)]);
        let p = plan("g", &progress(), &topics(&["a"]), &offsets, "c", &one_call).unwrap();
        assert_eq!(
            p.steps[0].target,
            ResetTarget::Offsets(vec![(0, 100), (1, 0)])
        );
        assert_eq!(p.exact_offsets().unwrap(), [("a", 0, 100), ("a", 1, 0)]);
    }

    #[test]
    fn partition_lists_and_several_topics_split_as_the_cloud_needs() {
        let scope = topics(&["b", "a:1"]);
        let p = plan("g", &progress(), &scope, &Target::Earliest, "c", &one_call).unwrap();
        assert_eq!(
            p.steps,
            [
                ResetRequest {
                    scope: ResetScope::Topic("b".into()),
                    target: ResetTarget::Earliest
                },
                ResetRequest {
                    scope: ResetScope::Partitions {
                        topic: "a".into(),
                        partitions: vec![1]
                    },
                    target: ResetTarget::Earliest
                },
            ]
        );
        assert_eq!(
            targets(&p),
            [
                ("b".into(), 0, Expected::Earliest, 0),
                ("a".into(), 1, Expected::Earliest, 1)
            ]
        );
        // One topic per request where the cloud needs it.
        let p = plan(
            "g",
            &progress(),
            &topics(&["a", "b"]),
            &Target::Latest,
            "c",
            &per_topic,
        )
        .unwrap();
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[1].scope, ResetScope::Topic("b".into()));
        assert_eq!(p.rows[2].step, 1);
    }

    #[test]
    fn what_the_cloud_cannot_express_is_sent_as_the_computed_offsets() {
        let p = plan(
            "g",
            &progress(),
            &topics(&["a"]),
            &Target::Shift(-5),
            "alibaba",
            &per_topic,
        )
        .unwrap();
        assert_eq!(
            p.steps,
            [ResetRequest {
                scope: ResetScope::Topic("a".into()),
                target: ResetTarget::Offsets(vec![(0, 35), (1, 2)])
            }]
        );
        assert!(
            p.notes.iter().any(|n| n
                .starts_with("alibaba has no relative reset: TARGET is sent as explicit offsets")),
            "{:?}",
            p.notes
        );
        assert!(
            p.notes[0].contains("may refuse an offset below its earliest"),
            "{:?}",
            p.notes
        );
        let p = plan(
            "g",
            &progress(),
            &topics(&["a:1"]),
            &Target::Latest,
            "alibaba",
            &per_topic,
        )
        .unwrap();
        assert_eq!(p.steps[0].target, ResetTarget::Offsets(vec![(1, 10)]));
        let m = message(
            plan(
                "g",
                &progress(),
                &topics(&["a:1"]),
                &Target::Earliest,
                "alibaba",
                &per_topic,
            )
            .unwrap_err(),
        );
        assert_eq!(
            m,
            "alibaba cannot reset only some partitions of a topic to the earliest offset: reset \
             the whole topic, or give the offsets with --topic TOPIC --to-offsets"
        );
    }

    fn file(rows: &[(&str, i32, i64)]) -> Target {
        Target::File {
            path: "f.csv".into(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, (t, p, o))| super::super::backup::FileRow {
                    topic: t.to_string(),
                    partition: *p,
                    offset: *o,
                    line: i + 1,
                })
                .collect(),
        }
    }

    #[test]
    fn a_file_is_validated_like_any_target_and_narrowed_by_topic() {
        let f = file(&[("b", 0, 20), ("a", 1, 3), ("a", 0, 30)]);
        let p = plan("g", &progress(), &Scope::AllTopics, &f, "c", &one_call).unwrap();
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(30), 0),
                ("a".into(), 1, Expected::Offset(3), 0),
                ("b".into(), 0, Expected::Offset(20), 1),
            ]
        );
        let p = plan("g", &progress(), &topics(&["a:1"]), &f, "c", &one_call).unwrap();
        assert_eq!(targets(&p), [("a".into(), 1, Expected::Offset(3), 0)]);
        let m = message(plan("g", &progress(), &topics(&["c"]), &f, "c", &one_call).unwrap_err());
        assert_eq!(m, "--topic c: the file has no row for it");
        for (rows, expected) in [
            (
                vec![("a", 0, 1), ("z", 0, 1)],
                "--from-file line 2: group g has no offsets on topic z (its topics: a, b)",
            ),
            (
                vec![("a", 5, 1)],
                "--from-file line 1: topic a has no partition 5 (partitions: 0, 1)",
            ),
            (
                vec![("a", 1, 11)],
                "--from-file line 1: offset 11 for partition 1 of topic a is outside [0, 10] (0 to the log-end offset)",
            ),
        ] {
            let m = message(
                plan(
                    "g",
                    &progress(),
                    &Scope::AllTopics,
                    &file(&rows),
                    "c",
                    &one_call,
                )
                .unwrap_err(),
            );
            assert_eq!(m, expected);
        }
    }

    #[test]
    fn plans_refuse_what_does_not_exist_or_is_out_of_range() {
        let refuse = |scope: Scope, target: Target| {
            message(plan("g", &progress(), &scope, &target, "c", &one_call).unwrap_err())
        };
        let m = refuse(topics(&["c"]), Target::Latest);
        assert_eq!(
            m,
            "--topic: group g has no offsets on topic c (its topics: a, b)"
        );
        let m = refuse(topics(&["a:0,4"]), Target::Latest);
        assert_eq!(m, "--topic: topic a has no partition 4 (partitions: 0, 1)");
        let m = refuse(Scope::AllTopics, Target::Offsets(vec![(0, 1)]));
        assert!(
            m.starts_with("--to-offsets needs exactly one --topic"),
            "{m}"
        );
        let m = refuse(topics(&["a"]), Target::Offsets(vec![(2, 1)]));
        assert_eq!(
            m,
            "--to-offsets: topic a has no partition 2 (partitions: 0, 1)"
        );
        let m = refuse(topics(&["a"]), Target::Offsets(vec![(1, 11)]));
        assert!(
            m.contains("offset 11 for partition 1 of topic a is outside [0, 10]"),
            "{m}"
        );
        let m = refuse(topics(&["a"]), Target::Offsets(vec![(1, -1)]));
        assert!(m.contains("offset -1 for partition 1"), "{m}");
        let m = refuse(topics(&["b"]), Target::Shift(-1));
        assert!(
            m.contains("partition 0 of topic b has no committed offset to shift from"),
            "{m}"
        );
        let empty = GroupProgress::default();
        let m = message(
            plan(
                "g",
                &empty,
                &Scope::AllTopics,
                &Target::Latest,
                "c",
                &one_call,
            )
            .unwrap_err(),
        );
        assert!(m.contains("no offsets on any topic"), "{m}");
    }

    #[test]
    fn exports_need_offsets_known_ahead() {
        let p = plan(
            "g",
            &progress(),
            &Scope::AllTopics,
            &Target::Earliest,
            "c",
            &one_call,
        )
        .unwrap();
        assert!(
            p.exact_offsets()
                .unwrap_err()
                .contains("earliest retained offsets")
        );
        let time = Target::Time {
            ms: 1,
            duration: None,
        };
        let p = plan("g", &progress(), &Scope::AllTopics, &time, "c", &one_call).unwrap();
        assert!(p.exact_offsets().unwrap_err().contains("offsets at a time"));
    }

    #[test]
    fn scopes_are_described() {
        assert_eq!(
            describe_scope(&ResetScope::AllTopics(vec!["a".into(), "b".into()])),
            "all topics (a, b)"
        );
        assert_eq!(describe_scope(&ResetScope::Topic("a".into())), "topic a");
        assert_eq!(
            describe_scope(&ResetScope::Topics(vec!["a".into(), "b".into()])),
            "topics a, b"
        );
        assert_eq!(
            describe_scope(&ResetScope::Partitions {
                topic: "a".into(),
                partitions: vec![0, 2]
            }),
            "partitions 0, 2 of topic a"
        );
    }
}

//! What `reset-offsets` is asked to do, parsed from the command line before anything is
//! read from a cloud: the one target, the partitions it applies to (the scope), and the
//! times, durations and offset lists the flags carry. Checks here need no cloud answer;
//! whether topics, partitions and offsets exist is checked when planning.

use std::path::PathBuf;
use std::time::SystemTime;

use kcle_clock::unix_millis;

use super::backup::{self, FileRow};
use super::{ResetError, fmt_time_ms, refused};
use crate::cli::ResetArgs;

/// Where the partitions' offsets should go, as the operator asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The log-end offset.
    Latest,
    /// The earliest retained offset.
    Earliest,
    /// The committed offset as read now (the log end where there is none), as
    /// `kafka-consumer-groups --to-current` does.
    Current,
    /// The first offset produced at or after `ms` (Unix milliseconds); `duration` is the
    /// `--by-duration` text it was computed from, if any.
    Time { ms: i64, duration: Option<String> },
    /// Explicit (partition, offset) pairs of one topic, sorted by partition.
    Offsets(Vec<(i32, i64)>),
    /// The committed offset moved by this many messages.
    Shift(i64),
    /// The rows of a `--from-file` CSV.
    File { path: PathBuf, rows: Vec<FileRow> },
}

impl Target {
    /// Whether the target of every partition is an offset known before the reset, so that
    /// it is sent as explicit offsets.
    pub fn is_explicit(&self) -> bool {
        matches!(
            self,
            Target::Current | Target::Offsets(_) | Target::File { .. }
        )
    }

    /// The target as the audit line, headings and the backup name it.
    pub fn describe(&self) -> String {
        match self {
            Target::Latest => "to-latest".into(),
            Target::Earliest => "to-earliest".into(),
            Target::Current => "to-current".into(),
            Target::Time { ms, duration: None } => {
                format!("to-timestamp {ms} ({})", fmt_time_ms(*ms))
            }
            Target::Time {
                ms,
                duration: Some(d),
            } => format!("by-duration {d} (to-timestamp {ms}, {})", fmt_time_ms(*ms)),
            Target::Offsets(list) => {
                let pairs: Vec<String> = list.iter().map(|(p, o)| format!("{p}={o}")).collect();
                format!("to-offsets {}", pairs.join(","))
            }
            Target::Shift(n) => format!("shift-by {n}"),
            Target::File { path, rows } => format!(
                "from-file {} ({} {})",
                path.display(),
                rows.len(),
                if rows.len() == 1 { "row" } else { "rows" }
            ),
        }
    }
}

/// Which partitions a reset applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every topic the group has offsets on (with `--from-file`: every row of the file).
    AllTopics,
    /// These topics, each whole or some of its partitions, in the order given.
    Topics(Vec<Selection>),
}

/// One `--topic TOPIC[:P,P...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub topic: String,
    /// Sorted partitions; `None` for the whole topic.
    pub partitions: Option<Vec<i32>>,
}

impl Selection {
    /// Whether partition `partition` of `topic` is selected.
    pub fn covers(&self, topic: &str, partition: i32) -> bool {
        self.topic == topic
            && self
                .partitions
                .as_ref()
                .is_none_or(|list| list.contains(&partition))
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.topic)?;
        if let Some(list) = &self.partitions {
            let numbers: Vec<String> = list.iter().map(i32::to_string).collect();
            write!(f, ":{}", numbers.join(","))?;
        }
        Ok(())
    }
}

impl Scope {
    /// Whether partition `partition` of `topic` is in the scope.
    pub fn covers(&self, topic: &str, partition: i32) -> bool {
        match self {
            Scope::AllTopics => true,
            Scope::Topics(list) => list.iter().any(|s| s.covers(topic, partition)),
        }
    }
}

/// Parses the target and the scope of `args`; reads the `--from-file` file.
pub fn parse(args: &ResetArgs, now: SystemTime) -> Result<(Target, Scope), ResetError> {
    let target = parse_target(args, now)?;
    let scope = parse_scope(args, &target)?;
    Ok((target, scope))
}

/// Parses the one target of `args`. Times must lie between 1970 and `now`.
pub fn parse_target(args: &ResetArgs, now: SystemTime) -> Result<Target, ResetError> {
    let given = [
        args.to_latest,
        args.to_earliest,
        args.to_current,
        args.to_timestamp_ms.is_some(),
        args.to_datetime.is_some(),
        args.by_duration.is_some(),
        args.to_offsets.is_some(),
        args.shift_by.is_some(),
        args.from_file.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(refused(
            "exactly one target is required: --to-latest, --to-earliest, --to-current, \
             --to-timestamp-ms, --to-datetime, --by-duration, --to-offsets, --shift-by or \
             --from-file",
        ));
    }
    let now_ms = unix_millis(now);
    let time = |ms| Target::Time { ms, duration: None };
    if args.to_latest {
        Ok(Target::Latest)
    } else if args.to_earliest {
        Ok(Target::Earliest)
    } else if args.to_current {
        Ok(Target::Current)
    } else if let Some(ms) = args.to_timestamp_ms {
        past_time("--to-timestamp-ms", ms, now_ms).map(time)
    } else if let Some(text) = &args.to_datetime {
        let ms = parse_datetime(text)?;
        past_time("--to-datetime", ms, now_ms).map(time)
    } else if let Some(text) = &args.by_duration {
        let back = parse_duration(text)?;
        let ms = now_ms
            .checked_sub(back)
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| {
                refused(format!(
                    "--by-duration: {text} ago is before 1970; give a shorter duration"
                ))
            })?;
        Ok(Target::Time {
            ms,
            duration: Some(text.trim().to_string()),
        })
    } else if let Some(text) = &args.to_offsets {
        parse_offsets(text).map(Target::Offsets)
    } else if let Some(n) = args.shift_by {
        Ok(Target::Shift(n))
    } else {
        let path = args.from_file.clone().unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            refused(format!(
                "--from-file: cannot read {}: {e} (nothing was changed)",
                path.display()
            ))
        })?;
        let rows = backup::parse(&text, &args.group)
            .map_err(|m| refused(format!("--from-file {}: {m}", path.display())))?;
        Ok(Target::File { path, rows })
    }
}

/// Parses the scope: `--all-topics` or one or more `--topic` (exactly one whole topic for
/// `--to-offsets`); `--from-file` needs neither, and `--topic` narrows it.
pub fn parse_scope(args: &ResetArgs, target: &Target) -> Result<Scope, ResetError> {
    if args.all_topics && !args.topic.is_empty() {
        return Err(refused(
            "--all-topics and --topic exclude each other: give one",
        ));
    }
    let mut selections: Vec<Selection> = Vec::new();
    for text in &args.topic {
        let selection = parse_selection(text)?;
        if selections.iter().any(|s| s.topic == selection.topic) {
            return Err(refused(format!(
                "--topic: topic {} is given twice; list its partitions in one --topic {}:P,P...",
                selection.topic, selection.topic
            )));
        }
        selections.push(selection);
    }
    match target {
        Target::Offsets(_) => match selections.as_slice() {
            [
                Selection {
                    partitions: None, ..
                },
            ] if !args.all_topics => Ok(Scope::Topics(selections)),
            _ => Err(offsets_need_topic()),
        },
        Target::File { .. } if args.all_topics => Err(refused(
            "--from-file: the file lists the partitions; leave out --all-topics (--topic \
             narrows the file to some of its topics)",
        )),
        Target::File { .. } if selections.is_empty() => Ok(Scope::AllTopics),
        _ if args.all_topics => Ok(Scope::AllTopics),
        _ if selections.is_empty() => Err(refused(
            "a scope is required, as with kafka-consumer-groups: --all-topics, or --topic \
             TOPIC[:P,P...] (repeatable)",
        )),
        _ => Ok(Scope::Topics(selections)),
    }
}

pub fn offsets_need_topic() -> ResetError {
    refused(
        "--to-offsets needs exactly one --topic (without partitions): explicit offsets are \
         for the partitions of one topic",
    )
}

/// Parses `TOPIC` or `TOPIC:P,P...`. Kafka topic names cannot contain `:`.
pub fn parse_selection(text: &str) -> Result<Selection, ResetError> {
    let text = text.trim();
    let (topic, partitions) = match text.split_once(':') {
        None => (text, None),
        Some((topic, list)) => {
            let bad = || {
                refused(format!(
                    "--topic: {text:?} is not TOPIC or TOPIC:P,P...; expected e.g. orders or \
                     orders:0,2"
                ))
            };
            let mut numbers = Vec::new();
            for item in list.split(',') {
                let p: i32 = item.trim().parse().map_err(|_| bad())?;
                if p < 0 {
                    return Err(refused(format!(
                        "--topic {text}: partition {p} is negative; partitions are numbered from 0"
                    )));
                }
                if numbers.contains(&p) {
                    return Err(refused(format!(
                        "--topic {text}: partition {p} is given twice"
                    )));
                }
                numbers.push(p);
            }
            numbers.sort_unstable();
            (topic, Some(numbers))
        }
    };
    if topic.is_empty() {
        return Err(refused(format!(
            "--topic: {text:?} names no topic; expected e.g. orders or orders:0,2"
        )));
    }
    Ok(Selection {
        topic: topic.to_string(),
        partitions,
    })
}

/// Parses an RFC 3339 time (an offset is required, so the instant is never ambiguous).
pub fn parse_datetime(text: &str) -> Result<i64, ResetError> {
    let ts: jiff::Timestamp = text.trim().parse().map_err(|e| {
        refused(format!(
            "--to-datetime: {text:?} is not an RFC 3339 time with a UTC offset, e.g. \
             2024-05-01T08:00:00+08:00 or 2024-05-01T00:00:00Z ({e})"
        ))
    })?;
    Ok(ts.as_millisecond())
}

/// Parses an ISO 8601 duration into milliseconds, as `java.time.Duration.parse` reads it
/// for `kafka-consumer-groups --by-duration`: days (of 24 hours), hours, minutes and
/// seconds; years, months and weeks have no fixed length and are refused.
pub fn parse_duration(text: &str) -> Result<i64, ResetError> {
    let t = text.trim();
    let bad = |why: String| {
        refused(format!(
            "--by-duration: {t:?} is not an ISO 8601 duration of days, hours, minutes and \
             seconds, such as PT30M, PT1H30M or P1D ({why})"
        ))
    };
    if !t.starts_with(['P', 'p']) {
        return Err(bad("it must start with P".into()));
    }
    let span: jiff::Span = t.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return Err(bad("years, months and weeks have no fixed length".into()));
    }
    let ms = span
        .total(jiff::SpanTotal::from(jiff::Unit::Millisecond).days_are_24_hours())
        .map_err(|e| bad(e.to_string()))?;
    if ms <= 0.0 {
        return Err(bad("it must be longer than zero".into()));
    }
    Ok(ms.round() as i64)
}

fn past_time(flag: &str, ms: i64, now_ms: i64) -> Result<i64, ResetError> {
    if ms < 0 {
        return Err(refused(format!(
            "{flag}: {ms} is before 1970; give a time in Unix milliseconds"
        )));
    }
    if ms > now_ms {
        return Err(refused(format!(
            "{flag}: {} is in the future (now is {}); a reset can only move to a time that has passed",
            fmt_time_ms(ms),
            fmt_time_ms(now_ms)
        )));
    }
    Ok(ms)
}

/// Parses `P=O[,P=O...]` into (partition, offset) pairs sorted by partition. Ranges are
/// checked later, against the partitions' log ends.
pub fn parse_offsets(text: &str) -> Result<Vec<(i32, i64)>, ResetError> {
    let mut list = Vec::new();
    for item in text.split(',') {
        let bad = || {
            refused(format!(
                "--to-offsets: {:?} is not PARTITION=OFFSET; expected e.g. 0=1200,3=1500",
                item.trim()
            ))
        };
        let (p, o) = item.split_once('=').ok_or_else(bad)?;
        let partition: i32 = p.trim().parse().map_err(|_| bad())?;
        let offset: i64 = o.trim().parse().map_err(|_| bad())?;
        if partition < 0 {
            return Err(refused(format!(
                "--to-offsets: partition {partition} is negative; partitions are numbered from 0"
            )));
        }
        if list.iter().any(|(q, _)| *q == partition) {
            return Err(refused(format!(
                "--to-offsets: partition {partition} is given twice"
            )));
        }
        list.push((partition, offset));
    }
    list.sort_unstable();
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// 2023-11-14T22:13:20Z.
    const NOW_MS: i64 = 1_700_000_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS as u64)
    }

    fn args() -> ResetArgs {
        ResetArgs {
            account: "a".into(),
            instance: "i".into(),
            group: "g".into(),
            ..ResetArgs::default()
        }
    }

    fn message(e: ResetError) -> String {
        assert_eq!(e.exit_code(), 2, "a refusal: {e}");
        e.to_string()
    }

    fn time(ms: i64) -> Target {
        Target::Time { ms, duration: None }
    }

    #[test]
    fn every_target_kind_parses() {
        let t = |f: fn(&mut ResetArgs)| {
            let mut a = args();
            f(&mut a);
            parse_target(&a, now())
        };
        assert_eq!(t(|a| a.to_latest = true), Ok(Target::Latest));
        assert_eq!(t(|a| a.to_earliest = true), Ok(Target::Earliest));
        assert_eq!(t(|a| a.to_current = true), Ok(Target::Current));
        assert_eq!(
            t(|a| a.to_timestamp_ms = Some(NOW_MS - 1)),
            Ok(time(NOW_MS - 1))
        );
        assert_eq!(
            t(|a| a.to_timestamp_ms = Some(NOW_MS)),
            Ok(time(NOW_MS)),
            "now itself has passed"
        );
        assert_eq!(
            t(|a| a.to_datetime = Some("2023-11-15T06:00:00+08:00".into())),
            Ok(time(1_700_000_000_000 - 13 * 60 * 1000 - 20 * 1000)),
        );
        assert_eq!(
            t(|a| a.to_datetime = Some("2023-11-14T22:13:19.5Z".into())),
            Ok(time(NOW_MS - 500))
        );
        assert_eq!(
            t(|a| a.by_duration = Some(" PT30M ".into())),
            Ok(Target::Time {
                ms: NOW_MS - 30 * 60 * 1000,
                duration: Some("PT30M".into())
            })
        );
        assert_eq!(
            t(|a| a.to_offsets = Some("3=30, 0=10".into())),
            Ok(Target::Offsets(vec![(0, 10), (3, 30)])),
            "sorted by partition, spaces allowed"
        );
        assert_eq!(t(|a| a.shift_by = Some(-5)), Ok(Target::Shift(-5)));
    }

    #[test]
    fn iso_durations_are_read_as_kafka_reads_them() {
        let ms = |text: &str| parse_duration(text).map_err(message);
        assert_eq!(ms("PT30M"), Ok(1_800_000));
        assert_eq!(ms("pt1h30m"), Ok(5_400_000));
        assert_eq!(ms("P1D"), Ok(86_400_000), "a day is 24 hours");
        assert_eq!(ms("P1DT2H"), Ok(93_600_000));
        assert_eq!(ms("PT0.5S"), Ok(500));
        assert_eq!(ms("PT90S"), Ok(90_000));
        for (text, fragment) in [
            ("30m", "must start with P"),
            ("P1M", "no fixed length"),
            ("P1Y", "no fixed length"),
            ("P2W", "no fixed length"),
            ("PT0S", "longer than zero"),
            ("-PT5M", "must start with P"),
            ("P", "not an ISO 8601 duration"),
            ("PT5X", "not an ISO 8601 duration"),
        ] {
            let m = ms(text).unwrap_err();
            assert!(m.starts_with("--by-duration: "), "{m}");
            assert!(m.contains(fragment), "{text}: {m}");
        }
        let mut a = args();
        a.by_duration = Some("P20000D".into());
        assert_eq!(
            message(parse_target(&a, now()).unwrap_err()),
            "--by-duration: P20000D ago is before 1970; give a shorter duration"
        );
    }

    #[test]
    fn bad_targets_are_refused_with_the_flag_and_what_is_allowed() {
        let t = |f: fn(&mut ResetArgs)| {
            let mut a = args();
            f(&mut a);
            message(parse_target(&a, now()).unwrap_err())
        };
        let m = t(|_| {});
        assert!(m.contains("exactly one target"), "{m}");
        assert!(
            m.contains("--to-current") && m.contains("--from-file"),
            "{m}"
        );
        let m = t(|a| {
            a.to_latest = true;
            a.shift_by = Some(1);
        });
        assert!(m.contains("exactly one target"), "{m}");
        let m = t(|a| a.to_timestamp_ms = Some(NOW_MS + 1));
        assert!(
            m.starts_with("--to-timestamp-ms: 2023-11-14T22:13:20.001Z is in the future"),
            "{m}"
        );
        let m = t(|a| a.to_timestamp_ms = Some(-2));
        assert!(m.contains("before 1970"), "{m}");
        let m = t(|a| a.to_datetime = Some("2099-01-01T00:00:00Z".into()));
        assert!(
            m.starts_with("--to-datetime: 2099-01-01T00:00:00Z is in the future"),
            "{m}"
        );
        let m = t(|a| a.to_datetime = Some("2023-11-14 10:00".into()));
        assert!(m.contains("not an RFC 3339 time with a UTC offset"), "{m}");
        let m = t(|a| a.to_datetime = Some("2023-11-14T10:00:00".into()));
        assert!(m.contains("not an RFC 3339 time"), "no offset: {m}");
        let m = t(|a| a.from_file = Some("/nonexistent/kcle-backup.csv".into()));
        assert!(
            m.starts_with("--from-file: cannot read /nonexistent/kcle-backup.csv: "),
            "{m}"
        );
        for (text, fragment) in [
            ("0=1,0=2", "partition 0 is given twice"),
            ("0:1", "\"0:1\" is not PARTITION=OFFSET"),
            ("0=x", "\"0=x\" is not PARTITION=OFFSET"),
            ("", "\"\" is not PARTITION=OFFSET"),
            ("0=1,", "\"\" is not PARTITION=OFFSET"),
            ("-1=5", "partition -1 is negative"),
        ] {
            let m = message(parse_offsets(text).unwrap_err());
            assert!(m.contains(fragment), "{text}: {m}");
            assert!(m.starts_with("--to-offsets: "), "{m}");
        }
    }

    #[test]
    fn topics_take_optional_partition_lists() {
        assert_eq!(
            parse_selection("orders").unwrap(),
            Selection {
                topic: "orders".into(),
                partitions: None
            }
        );
        let s = parse_selection("orders:2, 0").unwrap();
        assert_eq!(s.partitions, Some(vec![0, 2]));
        assert_eq!(s.to_string(), "orders:0,2");
        assert!(s.covers("orders", 2) && !s.covers("orders", 1) && !s.covers("other", 0));
        for (text, fragment) in [
            ("orders:", "is not TOPIC or TOPIC:P,P..."),
            ("orders:a", "is not TOPIC or TOPIC:P,P..."),
            ("orders:1,1", "partition 1 is given twice"),
            ("orders:-1", "partition -1 is negative"),
            (":1", "names no topic"),
            ("", "names no topic"),
        ] {
            let m = message(parse_selection(text).unwrap_err());
            assert!(m.contains(fragment), "{text}: {m}");
        }
    }

    #[test]
    fn a_scope_is_explicit_and_fits_the_target() {
        let scope = |f: fn(&mut ResetArgs), target: Target| {
            let mut a = args();
            f(&mut a);
            parse_scope(&a, &target)
        };
        assert_eq!(
            scope(|a| a.all_topics = true, Target::Latest),
            Ok(Scope::AllTopics)
        );
        let s = scope(
            |a| a.topic = vec!["a".into(), "b:1".into()],
            Target::Earliest,
        )
        .unwrap();
        assert!(s.covers("a", 7) && s.covers("b", 1) && !s.covers("b", 0) && !s.covers("c", 0));
        let m = message(scope(|_| {}, Target::Latest).unwrap_err());
        assert!(m.starts_with("a scope is required"), "{m}");
        let m = message(
            scope(|a| a.topic = vec!["a".into(), "a:1".into()], Target::Latest).unwrap_err(),
        );
        assert!(m.contains("topic a is given twice"), "{m}");
        let offsets = || Target::Offsets(vec![(0, 1)]);
        assert!(scope(|a| a.topic = vec!["a".into()], offsets()).is_ok());
        for f in [
            (|_: &mut ResetArgs| {}) as fn(&mut ResetArgs),
            |a| a.all_topics = true,
            |a| a.topic = vec!["a:0".into()],
            |a| a.topic = vec!["a".into(), "b".into()],
        ] {
            let m = message(scope(f, offsets()).unwrap_err());
            assert!(
                m.starts_with("--to-offsets needs exactly one --topic"),
                "{m}"
            );
        }
        let file = || Target::File {
            path: "f".into(),
            rows: Vec::new(),
        };
        assert_eq!(scope(|_| {}, file()), Ok(Scope::AllTopics));
        assert!(matches!(
            scope(|a| a.topic = vec!["a:0".into()], file()),
            Ok(Scope::Topics(_))
        ));
        let m = message(scope(|a| a.all_topics = true, file()).unwrap_err());
        assert!(m.contains("leave out --all-topics"), "{m}");
    }

    #[test]
    fn targets_are_described_for_the_audit_line() {
        assert_eq!(Target::Latest.describe(), "to-latest");
        assert_eq!(Target::Earliest.describe(), "to-earliest");
        assert_eq!(Target::Current.describe(), "to-current");
        assert_eq!(
            time(NOW_MS).describe(),
            "to-timestamp 1700000000000 (2023-11-14T22:13:20Z)"
        );
        assert_eq!(
            Target::Time {
                ms: NOW_MS,
                duration: Some("PT30M".into())
            }
            .describe(),
            "by-duration PT30M (to-timestamp 1700000000000, 2023-11-14T22:13:20Z)"
        );
        assert_eq!(
            Target::Offsets(vec![(0, 1), (2, 3)]).describe(),
            "to-offsets 0=1,2=3"
        );
        assert_eq!(Target::Shift(-3).describe(), "shift-by -3");
        let row = FileRow {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            line: 1,
        };
        assert_eq!(
            Target::File {
                path: "/b.csv".into(),
                rows: vec![row]
            }
            .describe(),
            "from-file /b.csv (1 row)"
        );
    }
}

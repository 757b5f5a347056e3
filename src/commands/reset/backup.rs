//! The offsets file: the `topic,partition,offset` CSV that `kafka-consumer-groups
//! --export` writes and `--from-file` reads. `reset-offsets --execute` writes one as a
//! backup before any write (with `#` comment lines saying what it is and how to undo),
//! `--export` prints one, and `--from-file` reads one (comments and blank lines skipped,
//! and Kafka's several-group form `group,topic,partition,offset` for this group).
//!
//! Kafka topic names cannot contain a comma or a quote, so no field is ever quoted.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::fmt_time_ms;
use crate::model::{GroupProgress, InstanceRef};

/// One `topic,partition,offset` line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The 1-based line number, for messages.
    pub line: usize,
}

/// Parses an offsets file for `group`: one `topic,partition,offset` (or
/// `group,topic,partition,offset`) per line; lines starting with `#` and blank lines are
/// skipped. The message says which line is wrong and why.
pub fn parse(text: &str, group: &str) -> Result<Vec<FileRow>, String> {
    let mut rows: Vec<FileRow> = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
        let (topic, partition, offset) = match fields.as_slice() {
            [t, p, o] => (*t, *p, *o),
            [g, t, p, o] if *g == group => (*t, *p, *o),
            [g, _, _, _] => {
                return Err(format!(
                    "line {line}: the row is for group {g}, not {group}"
                ));
            }
            _ => {
                return Err(format!(
                    "line {line}: {trimmed:?} is not topic,partition,offset"
                ));
            }
        };
        let bad = |what: &str| format!("line {line}: {what} in {trimmed:?}");
        if topic.is_empty() {
            return Err(bad("no topic"));
        }
        let partition: i32 = partition
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| bad("the partition is not a number from 0"))?;
        let offset: i64 = offset
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| bad("the offset is not a number from 0"))?;
        if let Some(first) = rows
            .iter()
            .find(|r| r.topic == topic && r.partition == partition)
        {
            return Err(format!(
                "line {line}: partition {partition} of topic {topic} is given twice (first on line {})",
                first.line
            ));
        }
        rows.push(FileRow {
            topic: topic.to_string(),
            partition,
            offset,
            line,
        });
    }
    if rows.is_empty() {
        return Err("no topic,partition,offset line in the file".into());
    }
    Ok(rows)
}

/// `topic,partition,offset` lines, as `kafka-consumer-groups --export` prints them.
pub fn rows_text<'a>(rows: impl IntoIterator<Item = (&'a str, i32, i64)>) -> String {
    rows.into_iter()
        .map(|(t, p, o)| format!("{t},{p},{o}\n"))
        .collect()
}

/// What a backup's header names.
#[derive(Debug)]
pub struct Header<'a> {
    pub instance: &'a InstanceRef,
    pub group: &'a str,
    pub at_ms: i64,
    /// The planned reset, as the audit line describes it.
    pub planned: &'a str,
}

/// A backup of the group's committed offsets: a header comment (account, cloud, region,
/// instance, group, time, the planned reset, the undo command, every log end read, the
/// planned partitions without a committed offset, and the committed offsets of the
/// partitions the reset leaves alone), then one `topic,partition,offset` line per planned
/// partition with a committed offset: exactly what `--from-file` must restore to undo it.
pub fn backup_text(
    header: &Header<'_>,
    progress: &GroupProgress,
    planned: &dyn Fn(&str, i32) -> bool,
) -> String {
    let i = header.instance;
    let mut text = format!(
        "# kafka-cloud-lag-exporter reset-offsets backup: the committed offsets of a group before a reset\n\
         # account={} cloud={} region={} instance={} group={}\n\
         # at={}\n\
         # planned={}\n\
         # undo: kafka-cloud-lag-exporter reset-offsets --config.file CONFIG --account {} --instance {} --group {} --from-file THIS_FILE --execute\n\
         # kafka-consumer-groups --from-file does not skip comment lines: give it `grep -v '^#' THIS_FILE`\n",
        i.account,
        i.cloud,
        i.region,
        i.instance_id,
        header.group,
        fmt_time_ms(header.at_ms),
        header.planned,
        i.account,
        i.instance_id,
        header.group,
    );
    let mut uncommitted = Vec::new();
    let mut others = Vec::new();
    for t in &progress.topics {
        let ends: Vec<String> = t
            .partitions
            .iter()
            .map(|p| format!("{}={}", p.partition, p.log_end))
            .collect();
        text.push_str(&format!(
            "# log-end offsets of {} (partition=offset): {}\n",
            t.topic,
            ends.join(" ")
        ));
        for p in &t.partitions {
            match (planned(&t.topic, p.partition), p.committed) {
                (true, None) => uncommitted.push(format!("{}/{}", t.topic, p.partition)),
                (false, Some(o)) => others.push(format!("# {},{},{o}\n", t.topic, p.partition)),
                _ => {}
            }
        }
    }
    if !uncommitted.is_empty() {
        text.push_str(&format!(
            "# no committed offset, so none to restore: {}\n",
            uncommitted.join(" ")
        ));
    }
    if !others.is_empty() {
        text.push_str(
            "# committed offsets of the group's other partitions, which this reset leaves alone:\n",
        );
        text.extend(others);
    }
    text.push_str(&rows_text(progress.topics.iter().flat_map(|t| {
        t.partitions.iter().filter_map(|p| {
            let committed = p.committed.filter(|_| planned(&t.topic, p.partition))?;
            Some((t.topic.as_str(), p.partition, committed))
        })
    })));
    text
}

/// The backup directory without `--backup-dir`: `$XDG_STATE_HOME/kafka-cloud-lag-exporter/
/// reset-backups`, else `$HOME/.local/state/...` (the XDG default), else the current
/// directory. Empty variables count as unset, as the XDG specification says.
pub fn default_dir(xdg_state_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = set(xdg_state_home)
        .filter(|p| p.is_absolute())
        .or_else(|| set(home).map(|h| h.join(".local").join("state")));
    match base {
        Some(base) => base.join("kafka-cloud-lag-exporter").join("reset-backups"),
        None => PathBuf::from("."),
    }
}

/// `ACCOUNT.INSTANCE.GROUP.YYYYMMDDTHHMMSS.mmmZ.csv`, with anything but letters, digits,
/// `.`, `_` and `-` replaced by `_`.
pub fn file_name(instance: &InstanceRef, group: &str, at_ms: i64) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let at = jiff::Timestamp::from_millisecond(at_ms).map_or_else(
        |_| at_ms.to_string(),
        |t| {
            format!(
                "{}.{:03}Z",
                t.strftime("%Y%m%dT%H%M%S"),
                at_ms.rem_euclid(1000)
            )
        },
    );
    format!(
        "{}.{}.{}.{at}.csv",
        clean(&instance.account),
        clean(&instance.instance_id),
        clean(group)
    )
}

/// Writes `text` to a new file `name` in `dir` (created if missing), never overwriting
/// one: a name already taken gets `-2`, `-3`, ... before `.csv`. The data is flushed to
/// the disk before this returns, so the backup survives a crash during the writes.
/// Returns the absolute path.
pub fn write_new(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dir = std::path::absolute(dir)?;
    let stem = name.strip_suffix(".csv").unwrap_or(name);
    for n in 1..100 {
        let path = if n == 1 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}.csv"))
        };
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        return Ok(path);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{} and 98 numbered variants exist",
            dir.join(name).display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::reset::tests::partition;
    use crate::model::{Cloud, TopicProgress};

    fn instance() -> InstanceRef {
        InstanceRef {
            cloud: Cloud::Tencent,
            account: "prod".into(),
            region: "ap-guangzhou".into(),
            instance_id: "ckafka-1".into(),
        }
    }

    #[test]
    fn a_backup_holds_every_committed_offset_under_a_header() {
        let progress = GroupProgress {
            topics: vec![
                TopicProgress {
                    topic: "a".into(),
                    partitions: vec![partition(0, Some(40), 100), partition(1, None, 10)],
                },
                TopicProgress {
                    topic: "b".into(),
                    partitions: vec![partition(0, Some(5), 50)],
                },
            ],
            info: None,
        };
        let text = backup_text(
            &Header {
                instance: &instance(),
                group: "payments",
                at_ms: 1_700_000_000_000,
                planned: "to-latest of all topics (a, b)",
            },
            &progress,
            &|_, _| true,
        );
        assert_eq!(
            text,
            "# kafka-cloud-lag-exporter reset-offsets backup: the committed offsets of a group before a reset\n\
             # account=prod cloud=tencent region=ap-guangzhou instance=ckafka-1 group=payments\n\
             # at=2023-11-14T22:13:20Z\n\
             # planned=to-latest of all topics (a, b)\n\
             # undo: kafka-cloud-lag-exporter reset-offsets --config.file CONFIG --account prod --instance ckafka-1 --group payments --from-file THIS_FILE --execute\n\
             # kafka-consumer-groups --from-file does not skip comment lines: give it `grep -v '^#' THIS_FILE`\n\
             # log-end offsets of a (partition=offset): 0=100 1=10\n\
             # log-end offsets of b (partition=offset): 0=50\n\
             # no committed offset, so none to restore: a/1\n\
             a,0,40\n\
             b,0,5\n"
        );
        let rows = parse(&text, "payments").unwrap();
        let read: Vec<(&str, i32, i64)> = rows
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.offset))
            .collect();
        assert_eq!(read, [("a", 0, 40), ("b", 0, 5)], "the backup reads back");
        assert_eq!(rows[0].line, 10);

        // Only the planned partitions are restored; the others are on record.
        let text = backup_text(
            &Header {
                instance: &instance(),
                group: "payments",
                at_ms: 1_700_000_000_000,
                planned: "to-earliest of topic b",
            },
            &progress,
            &|t, _| t == "b",
        );
        assert!(
            text.ends_with(
                "# log-end offsets of b (partition=offset): 0=50\n\
                 # committed offsets of the group's other partitions, which this reset leaves alone:\n\
                 # a,0,40\n\
                 b,0,5\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("no committed offset"),
            "a/1 is not planned: {text}"
        );
        let rows = parse(&text, "payments").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].topic.as_str(), rows[0].offset), ("b", 5));
    }

    #[test]
    fn kafka_exports_parse_and_bad_lines_are_named() {
        let rows = parse("\u{feff}t,0,5\r\n\r\n  t , 2 , 7 \n", "g").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].partition, rows[1].offset, rows[1].line), (2, 7, 3));
        let rows = parse("g,t,1,9\n", "g").unwrap();
        assert_eq!((rows[0].topic.as_str(), rows[0].offset), ("t", 9));
        for (text, message) in [
            ("other,t,1,9\n", "line 1: the row is for group other, not g"),
            ("t,1\n", "line 1: \"t,1\" is not topic,partition,offset"),
            (
                "# c\nt,x,1\n",
                "line 2: the partition is not a number from 0 in \"t,x,1\"",
            ),
            (
                "t,-1,1\n",
                "line 1: the partition is not a number from 0 in \"t,-1,1\"",
            ),
            (
                "t,0,-5\n",
                "line 1: the offset is not a number from 0 in \"t,0,-5\"",
            ),
            (",0,5\n", "line 1: no topic in \",0,5\""),
            (
                "t,0,1\nt,0,2\n",
                "line 2: partition 0 of topic t is given twice (first on line 1)",
            ),
            (
                "# only a comment\n",
                "no topic,partition,offset line in the file",
            ),
            ("", "no topic,partition,offset line in the file"),
        ] {
            assert_eq!(parse(text, "g").unwrap_err(), message, "{text:?}");
        }
    }

    #[test]
    fn the_default_directory_follows_xdg() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_dir(os("/state"), os("/home/u")),
            PathBuf::from("/state/kafka-cloud-lag-exporter/reset-backups")
        );
        assert_eq!(
            default_dir(os(""), os("/home/u")),
            PathBuf::from("/home/u/.local/state/kafka-cloud-lag-exporter/reset-backups")
        );
        assert_eq!(
            default_dir(os("relative"), os("/home/u")),
            PathBuf::from("/home/u/.local/state/kafka-cloud-lag-exporter/reset-backups"),
            "XDG paths must be absolute"
        );
        assert_eq!(default_dir(None, None), PathBuf::from("."));
    }

    #[test]
    fn backups_are_new_files_with_safe_names() {
        let mut i = instance();
        i.account = "prod/eu".into();
        let name = file_name(&i, "orders group", 1_700_000_000_042);
        assert_eq!(
            name,
            "prod_eu.ckafka-1.orders_group.20231114T221320.042Z.csv"
        );
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let first = write_new(&nested, &name, "x\n").unwrap();
        let second = write_new(&nested, &name, "y\n").unwrap();
        assert_eq!(first, nested.join(&name));
        assert_eq!(
            second,
            nested.join("prod_eu.ckafka-1.orders_group.20231114T221320.042Z-2.csv")
        );
        assert_eq!(
            std::fs::read_to_string(first).unwrap(),
            "x\n",
            "never overwritten"
        );
        assert_eq!(std::fs::read_to_string(second).unwrap(), "y\n");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(write_new(&file.join("sub"), &name, "z").is_err());
    }
}

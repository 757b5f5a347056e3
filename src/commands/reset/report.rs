//! What `reset-offsets` says: the plan and before/after tables (stdout, the default),
//! the same as one JSON document for scripts (`--output json`), and the two audit lines
//! (stderr and the log at warn level): one before the first write, one after the result
//! is read back.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use kcle_clock::unix_millis;
use serde::Serialize;

use super::outcome::{Results, Sent};
use super::plan::{Expected, Plan, describe_scope};
use super::{ResetError, fmt_time_ms, put};
use crate::model::InstanceRef;

/// An offset, or `-` when there is none.
fn offset_text(o: Option<i64>) -> String {
    o.map_or_else(|| "-".to_string(), |o| o.to_string())
}

/// The dry-run table: `TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET TARGET`.
pub fn plan_table(plan: &Plan) -> String {
    table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "TARGET",
        ],
        plan.rows
            .iter()
            .map(|r| {
                vec![
                    r.topic.clone(),
                    r.partition.to_string(),
                    offset_text(r.current),
                    r.log_end.to_string(),
                    r.target.to_string(),
                ]
            })
            .collect(),
    )
}

/// The before/after table: `TOPIC PARTITION BEFORE TARGET AFTER LOG-END-OFFSET RESULT`,
/// the log end as re-read (so that the lag after the reset shows).
pub fn results_table(results: &Results) -> String {
    table(
        &[
            "TOPIC",
            "PARTITION",
            "BEFORE",
            "TARGET",
            "AFTER",
            "LOG-END-OFFSET",
            "RESULT",
        ],
        results
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.plan.topic.clone(),
                    r.plan.partition.to_string(),
                    offset_text(r.plan.current),
                    r.plan.target.to_string(),
                    offset_text(r.committed),
                    offset_text(r.log_end),
                    r.verdict.as_str().to_string(),
                ]
            })
            .collect(),
    )
}

/// Left-aligned columns separated by two spaces, one line per row.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(&format!("{cell:<w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How a run ended, the `status` of the JSON document.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The plan was printed; nothing was written.
    #[default]
    DryRun,
    /// The plan was printed as CSV; nothing was written.
    Exported,
    /// Every request was accepted and every partition is where it should be.
    Applied,
    /// A cloud call failed or the result differs from the plan (exit status 1).
    Failed,
    /// Refused before anything was written (exit status 2).
    Refused,
}

/// The JSON document of `--output json`: the plan, and after `--execute` the result of
/// each request and partition. Fields that are not known yet are left out.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub instance: String,
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The backup written before the first write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    pub partitions: Vec<PartitionReport>,
    pub requests: Vec<RequestReport>,
    pub notes: Vec<String>,
}

/// One partition: before, target, and after an execute the offset read back and the
/// verdict.
#[derive(Debug, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    /// The committed offset when planned; null where the group never committed.
    pub before: Option<i64>,
    pub log_end: i64,
    /// An offset where known ahead of the reset, else `"earliest"` or an RFC 3339 time.
    pub target: serde_json::Value,
    /// The committed offset read back after the writes (null: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_end_after: Option<Option<i64>>,
    /// `applied`, `unverified`, `not_applied` or `not_sent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'static str>,
}

/// One request of the plan.
#[derive(Debug, Serialize)]
pub struct RequestReport {
    pub scope: String,
    /// `planned`, then `accepted`, `failed` or `not_sent`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    pub fn new(account: &str, instance: &str, group: &str) -> Report {
        Report {
            account: account.to_string(),
            instance: instance.to_string(),
            group: group.to_string(),
            ..Report::default()
        }
    }

    /// Where the reset runs, once the region is known.
    pub fn locate(&mut self, instance: &InstanceRef) {
        self.cloud = Some(instance.cloud.to_string());
        self.region = Some(instance.region.to_string());
    }

    pub fn set_plan(&mut self, plan: &Plan) {
        self.partitions = plan
            .rows
            .iter()
            .map(|r| PartitionReport {
                topic: r.topic.clone(),
                partition: r.partition,
                before: r.current,
                log_end: r.log_end,
                target: match r.target {
                    Expected::Offset(o) => o.into(),
                    Expected::Earliest => "earliest".into(),
                    Expected::Time(ms) => fmt_time_ms(ms).into(),
                },
                after: None,
                log_end_after: None,
                result: None,
            })
            .collect();
        self.requests = plan
            .steps
            .iter()
            .map(|s| RequestReport {
                scope: describe_scope(&s.scope),
                result: "planned",
                error: None,
            })
            .collect();
        self.notes = plan.notes.clone();
    }

    /// What became of each request, before (or without) the read-back.
    pub fn set_sent(&mut self, sent: &[Sent]) {
        for (r, s) in self.requests.iter_mut().zip(sent) {
            r.result = s.as_str();
            r.error = match s {
                Sent::Failed(e) => Some(e.clone()),
                _ => None,
            };
        }
    }

    pub fn set_results(&mut self, results: &Results) {
        self.set_sent(&results.sent);
        for (p, r) in self.partitions.iter_mut().zip(&results.rows) {
            p.after = Some(r.committed);
            p.log_end_after = Some(r.log_end);
            p.result = Some(r.verdict.key());
        }
    }

    /// The document, one line of JSON.
    pub fn json(&self) -> String {
        // A struct of strings, numbers and options always serializes.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"status\":\"failed\",\"error\":\"{e}\"}}"))
    }
}

/// Who runs a reset where: the context both audit lines carry.
#[derive(Debug)]
pub struct Audit<'a> {
    pub instance: &'a InstanceRef,
    pub group: &'a str,
    /// The local user (`$USER`, else `$LOGNAME`).
    pub user: String,
    /// The backup written before the first write.
    pub backup: &'a Path,
}

/// How the operator confirmed the execute.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// Typed the group name at the terminal prompt.
    Typed,
    /// `--yes` on a terminal.
    YesFlag,
    /// No terminal (a script): `--execute` alone, as documented.
    NoTerminal,
}

impl Confirmation {
    fn as_str(self) -> &'static str {
        match self {
            Confirmation::Typed => "typed",
            Confirmation::YesFlag => "yes-flag",
            Confirmation::NoTerminal => "no-terminal",
        }
    }
}

impl Audit<'_> {
    pub fn new<'a>(instance: &'a InstanceRef, group: &'a str, backup: &'a Path) -> Audit<'a> {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Audit {
            instance,
            group,
            user,
            backup,
        }
    }

    fn who(&self) -> String {
        let i = self.instance;
        format!(
            "user={} account={} cloud={} region={} instance={} group={}",
            self.user, i.account, i.cloud, i.region, i.instance_id, self.group
        )
    }

    /// The line before the first write: who, what, where, when, the backup and the plan.
    pub fn start(
        &self,
        plan: &Plan,
        target: &str,
        assume_inactive: bool,
        confirmation: Confirmation,
        at: SystemTime,
        err: &mut dyn Write,
    ) -> Result<(), ResetError> {
        let at = fmt_time_ms(unix_millis(at));
        let topics = plan.topics().join(",");
        let rows: Vec<String> = plan
            .rows
            .iter()
            .map(|r| {
                let from = r
                    .current
                    .map_or_else(|| "none".to_string(), |o| o.to_string());
                format!("{}/{}:{from}->{}", r.topic, r.partition, r.target)
            })
            .collect();
        let rows = rows.join(",");
        let i = self.instance;
        tracing::warn!(
            user = %self.user,
            account = %i.account,
            cloud = %i.cloud,
            region = %i.region,
            instance = %i.instance_id,
            group = %self.group,
            topics = %topics,
            target = %target,
            confirmation = confirmation.as_str(),
            backup = %self.backup.display(),
            at = %at,
            requests = plan.steps.len(),
            plan = %rows,
            assume_inactive,
            "reset-offsets: writing committed offsets"
        );
        // The operator's word that the group is idle is part of the record when given.
        let assumed = if assume_inactive {
            " assume_inactive=true"
        } else {
            ""
        };
        put(
            err,
            &format!(
                "audit: reset-offsets start {} topics={topics} target=\"{target}\"{assumed} confirmation={} backup={:?} at={at} requests={} plan={rows}\n",
                self.who(),
                confirmation.as_str(),
                self.backup.display().to_string(),
                plan.steps.len()
            ),
        )
    }

    /// The line after the writes: how the requests fared and exactly which partitions
    /// moved; `results` is `None` when the offsets could not be read back.
    pub fn result(
        &self,
        sent: &[Sent],
        results: Option<&Results>,
        at: SystemTime,
        err: &mut dyn Write,
    ) -> Result<(), ResetError> {
        let at = fmt_time_ms(unix_millis(at));
        let accepted = sent.iter().filter(|s| **s == Sent::Accepted).count();
        let requests = format!("{accepted}/{}", sent.len());
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        };
        let (status, moved, unmoved) = match results {
            Some(r) => (
                if r.succeeded() { "applied" } else { "failed" },
                list(r.moved()),
                list(r.unmoved()),
            ),
            None => ("unknown", "unknown".into(), "unknown".into()),
        };
        let i = self.instance;
        tracing::warn!(
            user = %self.user,
            account = %i.account,
            cloud = %i.cloud,
            region = %i.region,
            instance = %i.instance_id,
            group = %self.group,
            status,
            requests_accepted = %requests,
            moved = %moved,
            unmoved = %unmoved,
            backup = %self.backup.display(),
            at = %at,
            "reset-offsets: result"
        );
        put(
            err,
            &format!(
                "audit: reset-offsets result {} status={status} requests_accepted={requests} moved={moved} unmoved={unmoved} backup={:?} at={at}\n",
                self.who(),
                self.backup.display().to_string()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::reset::outcome::{ResultRow, Verdict};
    use crate::commands::reset::plan::PlanRow;
    use crate::model::{Cloud, ResetRequest, ResetScope, ResetTarget};

    fn plan() -> Plan {
        let row = |topic: &str, partition, current, log_end, target| PlanRow {
            topic: String::from(topic),
            partition,
            current,
            log_end,
            target,
            step: 0,
        };
        Plan {
            rows: vec![
                row("a", 0, Some(40), 100, Expected::Offset(100)),
                row("a", 1, Some(7), 10, Expected::Earliest),
                row("b", 0, None, 50, Expected::Time(1_700_000_000_000)),
            ],
            steps: vec![ResetRequest {
                scope: ResetScope::AllTopics(vec!["a".into(), "b".into()]),
                target: ResetTarget::Latest,
            }],
            notes: vec!["n".into()],
        }
    }

    #[test]
    fn tables_align_columns_and_show_missing_offsets_as_dashes() {
        assert_eq!(
            plan_table(&plan()),
            "TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  TARGET\n\
             a      0          40              100             100\n\
             a      1          7               10              earliest\n\
             b      0          -               50              2023-11-14T22:13:20Z\n"
        );
        let p = plan();
        let results = Results {
            rows: p
                .rows
                .iter()
                .map(|r| ResultRow {
                    plan: r.clone(),
                    committed: Some(100),
                    log_end: Some(101),
                    verdict: Verdict::NotSent,
                })
                .collect(),
            sent: vec![Sent::NotSent],
        };
        assert!(
            results_table(&results).ends_with(
                "b      0          -       2023-11-14T22:13:20Z  100    101             NOT SENT\n"
            ),
            "{}",
            results_table(&results)
        );
    }

    #[test]
    fn the_json_document_has_each_partition_and_request() {
        let mut report = Report::new("acc", "inst", "g");
        report.locate(&InstanceRef {
            cloud: Cloud::Alibaba,
            account: "acc".into(),
            region: "cn-hangzhou".into(),
            instance_id: "inst".into(),
        });
        report.set_plan(&plan());
        let v: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(v["status"], "dry_run");
        assert_eq!(v["cloud"], "alibaba");
        assert!(v.get("error").is_none() && v.get("backup").is_none());
        let parts = v["partitions"].as_array().unwrap();
        assert_eq!(parts[0]["target"], 100);
        assert_eq!(parts[1]["target"], "earliest");
        assert_eq!(parts[2]["target"], "2023-11-14T22:13:20Z");
        assert_eq!(parts[2]["before"], serde_json::Value::Null);
        assert!(parts[0].get("after").is_none(), "no result in a dry run");
        assert_eq!(v["requests"][0]["scope"], "all topics (a, b)");
        assert_eq!(v["requests"][0]["result"], "planned");
        report.set_sent(&[Sent::Failed("boom".into())]);
        let v: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(v["requests"][0]["result"], "failed");
        assert_eq!(v["requests"][0]["error"], "boom");
    }
}

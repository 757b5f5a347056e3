//! The `reset-offsets` command: moves a consumer group's committed offsets the way
//! `kafka-consumer-groups --reset-offsets` does, and writes nothing unless asked.
//!
//! Steps: find the account and instance in the configuration; parse the one target;
//! read the group's state and progress; validate (the group has no active members, the
//! topic and partitions exist, explicit offsets lie within `[0, log end]`, a time is not
//! in the future); build one [`Plan`], from which both the printed table and the request
//! sent are derived; print it. Without `--execute` that is all (reads only). With it: an
//! audit line (stderr and the log), one write call, a re-read of the progress and a
//! before/after table checked against the plan by [`verify`].
//!
//! Only the command line calls this module: writes to a cloud never run inside the
//! daemon: this is the only caller of [`providers::build_writer`]. It sees the clouds
//! only through [`OffsetWriter`] and `model` types. Exit
//! statuses: 0 done (or dry run), 1 a cloud call failed or the result differs from the
//! plan, 2 refused before anything was written.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use kcle_clock::{Instant, unix_millis};

use crate::cli::{Cli, EXIT_CONFIG, EXIT_FAILURE, ResetArgs};
use crate::config::{Account, Config};
use crate::credentials::NoCredentialObserver;
use crate::exporter::{Runtime, account_credentials, account_spec_with, provider_deps};
use crate::model::{
    GroupProgress, InstanceRef, PartitionProgress, ResetRequest, ResetScope, ResetTarget,
    TopicProgress,
};
use crate::providers::{self, ErrorKind, NoopObserver, OffsetWriter, ProviderError};

/// Why the command stopped without success.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    /// Refused before anything was written: usage, configuration or validation.
    #[error("{0}")]
    Refused(String),
    /// A cloud call failed, or the result differs from the plan.
    #[error("{0}")]
    Failed(String),
}

impl ResetError {
    /// The process exit status: 2 for a refusal, 1 for a failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ResetError::Refused(_) => EXIT_CONFIG,
            ResetError::Failed(_) => EXIT_FAILURE,
        }
    }
}

fn refused(message: impl Into<String>) -> ResetError {
    ResetError::Refused(message.into())
}

fn failed(message: impl Into<String>) -> ResetError {
    ResetError::Failed(message.into())
}

/// `reset-offsets` from the command line: only the named account's credentials are
/// needed, and `reset` reads and checks them.
pub async fn run_command(cli: &Cli, args: &ResetArgs) -> ExitCode {
    let config = match super::cli_config(cli, false) {
        Ok((_, config)) => config,
        Err(code) => return code,
    };
    let status = run(
        args,
        &config,
        &Runtime::production(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    ExitCode::from(status)
}

/// Runs `reset-offsets`: tables go to `out`, notices, the audit line and errors to `err`.
/// Returns the exit status.
pub async fn run(
    args: &ResetArgs,
    config: &Config,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match reset(args, config, runtime, out, err).await {
        Ok(()) => 0,
        Err(e) => {
            // Nothing more can be done when stderr itself is gone.
            let _ = writeln!(err, "error: {e}");
            e.exit_code()
        }
    }
}

async fn reset(
    args: &ResetArgs,
    config: &Config,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ResetError> {
    let clock = &runtime.clock;
    let account = find_account(config, &args.account)?;
    let target = parse_target(args, clock.now())?;
    if matches!(target, ResetTarget::Offsets(_)) && args.topic.is_none() {
        return Err(offsets_need_topic());
    }
    // Get the credentials now, so that a missing key (or a refused sign-in) is an error
    // naming the source rather than a failed call.
    let credentials = account_credentials(account, runtime, Arc::new(NoCredentialObserver));
    credentials
        .get()
        .await
        .map_err(|e| refused(format!("account {}: {e}", account.name)))?;

    let deps = provider_deps(config, account, runtime, Arc::new(NoopObserver));
    let provider_in = |region: &str| {
        providers::build_writer(
            account_spec_with(account, region, credentials.clone()),
            &deps,
        )
    };
    let deadline = || clock.instant() + config.request_timeout();

    let region = match find_instance(config, account, &args.instance)? {
        Location::Region(r) => r.to_string(),
        Location::Discover => {
            discover_region(account, &args.instance, &provider_in, &deadline).await?
        }
    };
    let provider = provider_in(&region);
    if !provider.supports_reset(&target) {
        return Err(refused(format!(
            "{} has no shift-by reset; set the offsets you want with --topic and --to-offsets \
             (a dry run with --to-latest shows the current ones)",
            account.cloud
        )));
    }
    let instance = InstanceRef {
        cloud: account.cloud,
        account: account.name.as_str().into(),
        region: region.as_str().into(),
        instance_id: args.instance.as_str().into(),
    };

    let plan = read_plan(&*provider, &instance, args, target, &deadline).await?;
    put(
        err,
        &format!(
            "plan: {} {} of group {} on {} instance {} (account {}, region {}), {}\n",
            describe(&plan.request.target),
            describe_scope(&plan.request.scope),
            args.group,
            instance.cloud,
            instance.instance_id,
            instance.account,
            instance.region,
            partitions(plan.rows.len())
        ),
    )?;
    put(out, &plan.table())?;
    if let Some(note) = note(&plan.request.target) {
        put(err, &format!("note: {note}\n"))?;
    }
    if !args.execute {
        return put(
            err,
            "dry run: nothing was changed. Run the same command with --execute to apply this plan.\n",
        );
    }
    audit(
        &plan,
        &instance,
        &args.group,
        args.assume_inactive,
        clock.now(),
        err,
    )?;
    apply(
        &*provider,
        &instance,
        &args.group,
        &plan,
        &deadline,
        out,
        err,
    )
    .await
}

/// Reads the group's state and progress, refuses an active group, and plans the reset.
async fn read_plan(
    provider: &dyn OffsetWriter,
    instance: &InstanceRef,
    args: &ResetArgs,
    target: ResetTarget,
    deadline: &dyn Fn() -> Instant,
) -> Result<Plan, ResetError> {
    let group = args.group.as_str();
    let info = provider
        .group_info(instance, group, deadline())
        .await
        .map_err(|e| read_error(instance, group, "state", &e))?;
    if info.is_active() {
        let members = info
            .members
            .map(|m| format!(", {m} members"))
            .unwrap_or_default();
        return Err(refused(format!(
            "group {group} is active (state {}{members}): offsets can only be reset while the \
             group has no active members, as with kafka-consumer-groups; stop its consumers and \
             run this again",
            info.state.as_str()
        )));
    }
    if !info.membership_known() && !args.assume_inactive {
        return Err(refused(format!(
            "cannot tell whether group {group} has active members: the {} answer reports \
             neither its state nor its members (an older API answer), so a reset could \
             overwrite the offsets of live consumers. Stop every consumer of the group, check \
             in the console that it has no members, then run this again with \
             --assume-inactive (recorded in the audit line)",
            instance.cloud
        )));
    }
    let progress = provider
        .group_progress(instance, group, deadline())
        .await
        .map_err(|e| read_error(instance, group, "progress", &e))?;
    plan(group, &progress, args.topic.as_deref(), target)
}

/// Sends the plan's one write, re-reads the progress and reports partition by partition.
async fn apply(
    provider: &dyn OffsetWriter,
    instance: &InstanceRef,
    group: &str,
    plan: &Plan,
    deadline: &dyn Fn() -> Instant,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ResetError> {
    let written = provider
        .reset_offsets(instance, group, &plan.request, deadline())
        .await;
    if let Err(e) = &written {
        // Said now, and the progress read anyway: a failed write may still have landed.
        put(
            err,
            &format!("error: the cloud did not apply the reset: {e}\n"),
        )?;
    }
    let after = provider
        .group_progress(instance, group, deadline())
        .await
        .map_err(|e| {
            failed(format!(
                "re-reading the progress of group {group} after the reset: {e}; the result is \
                 unknown: run the same command without --execute to see the offsets now"
            ))
        })?;
    let results = plan.check(&after, written.is_ok());
    put(out, &results.table())?;
    results.conclude(&plan.request.target, written.is_err(), err)
}

/// A read failed: a missing instance or group is a refusal, anything else a failure.
fn read_error(instance: &InstanceRef, group: &str, what: &str, e: &ProviderError) -> ResetError {
    let message = format!(
        "reading the {what} of group {group} on {} instance {}: {e}",
        instance.cloud, instance.instance_id
    );
    match e.kind() {
        ErrorKind::NotFound => refused(format!(
            "{message}; check the group and instance names (nothing was changed)"
        )),
        _ => failed(format!("{message} (nothing was changed)")),
    }
}

fn offsets_need_topic() -> ResetError {
    refused("--to-offsets needs --topic: explicit offsets are for the partitions of one topic")
}

/// Writes to `out` or `err`; a failure stops the command (before any write to the cloud
/// when it happens while printing the plan or the audit line).
fn put(w: &mut dyn Write, text: &str) -> Result<(), ResetError> {
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| failed(format!("writing the output: {e}")))
}

// ---- where -------------------------------------------------------------------------------

fn find_account<'a>(config: &'a Config, name: &str) -> Result<&'a Account, ResetError> {
    config
        .accounts
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
            refused(format!(
                "--account: no account named {name:?} in the configuration (configured: {})",
                names.join(", ")
            ))
        })
}

/// Where an instance is: its configured region, or to be found by discovery.
#[derive(Debug, PartialEq, Eq)]
enum Location<'a> {
    Region(&'a str),
    Discover,
}

fn find_instance<'a>(
    config: &'a Config,
    account: &'a Account,
    id: &str,
) -> Result<Location<'a>, ResetError> {
    if let Some(instance) = account.instances.iter().find(|i| i.id == id) {
        return Ok(Location::Region(account.instance_region(instance)));
    }
    if let Some(other) = config
        .accounts
        .iter()
        .find(|a| a.instances.iter().any(|i| i.id == id))
    {
        return Err(refused(format!(
            "--instance: instance {id} is configured under account {}, not {}; pass --account {}",
            other.name, account.name, other.name
        )));
    }
    if account.discover_instances.is_some() {
        return Ok(Location::Discover);
    }
    let ids: Vec<&str> = account.instances.iter().map(|i| i.id.as_str()).collect();
    Err(refused(format!(
        "--instance: instance {id} is not configured for account {} (its instances: {})",
        account.name,
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    )))
}

/// Finds the region of an instance of an account that discovers its instances.
async fn discover_region(
    account: &Account,
    id: &str,
    provider_in: &dyn Fn(&str) -> Arc<dyn OffsetWriter>,
    deadline: &dyn Fn() -> Instant,
) -> Result<String, ResetError> {
    for region in account.regions() {
        let found = provider_in(region)
            .list_instances(region, deadline())
            .await
            .map_err(|e| {
                failed(format!(
                    "listing the instances of account {} in {region}: {e} (nothing was changed)",
                    account.name
                ))
            })?;
        if found.iter().any(|i| i.instance_id == id) {
            return Ok(region.to_string());
        }
    }
    Err(refused(format!(
        "--instance: instance {id} was not found among the running instances of account {} in {}",
        account.name,
        account.regions().join(", ")
    )))
}

// ---- what: the target ----------------------------------------------------------------------

/// Parses the one target of `args`. Times must lie between 1970 and `now`.
pub fn parse_target(args: &ResetArgs, now: SystemTime) -> Result<ResetTarget, ResetError> {
    let given = [
        args.to_latest,
        args.to_earliest,
        args.to_timestamp_ms.is_some(),
        args.to_datetime.is_some(),
        args.to_offsets.is_some(),
        args.shift_by.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(refused(
            "exactly one target is required: --to-latest, --to-earliest, --to-timestamp-ms, \
             --to-datetime, --to-offsets or --shift-by",
        ));
    }
    let now_ms = unix_millis(now);
    if args.to_latest {
        Ok(ResetTarget::Latest)
    } else if args.to_earliest {
        Ok(ResetTarget::Earliest)
    } else if let Some(ms) = args.to_timestamp_ms {
        past_time("--to-timestamp-ms", ms, now_ms).map(ResetTarget::Timestamp)
    } else if let Some(text) = &args.to_datetime {
        let ms = parse_datetime(text)?;
        past_time("--to-datetime", ms, now_ms).map(ResetTarget::Timestamp)
    } else if let Some(text) = &args.to_offsets {
        parse_offsets(text).map(ResetTarget::Offsets)
    } else {
        Ok(ResetTarget::ShiftBy(args.shift_by.unwrap_or_default()))
    }
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

/// The target as the audit line and headings name it.
pub fn describe(target: &ResetTarget) -> String {
    match target {
        ResetTarget::Latest => "to-latest".into(),
        ResetTarget::Earliest => "to-earliest".into(),
        ResetTarget::Timestamp(ms) => format!("to-timestamp {ms} ({})", fmt_time_ms(*ms)),
        ResetTarget::Offsets(list) => {
            let pairs: Vec<String> = list.iter().map(|(p, o)| format!("{p}={o}")).collect();
            format!("to-offsets {}", pairs.join(","))
        }
        ResetTarget::ShiftBy(n) => format!("shift-by {n}"),
    }
}

fn describe_scope(scope: &ResetScope) -> String {
    match scope {
        ResetScope::AllTopics(topics) => format!("of all topics ({})", topics.join(", ")),
        ResetScope::Topic(topic) => format!("of topic {topic}"),
    }
}

fn topic_names(scope: &ResetScope) -> String {
    match scope {
        ResetScope::AllTopics(topics) => topics.join(","),
        ResetScope::Topic(topic) => topic.clone(),
    }
}

/// What the operator should know about a target beyond the table.
fn note(target: &ResetTarget) -> Option<String> {
    match target {
        ResetTarget::Latest => Some(
            "the log end moves while producers write; each partition moves to its log end at the moment the reset is applied".into(),
        ),
        ResetTarget::Earliest => Some(
            "TARGET `earliest` is each partition's earliest retained offset, which the cloud does not report".into(),
        ),
        ResetTarget::Timestamp(ms) => Some(format!(
            "each partition moves to the first offset produced at or after {}, or to its log end if there is none; the cloud does not report that offset ahead of the reset",
            fmt_time_ms(*ms)
        )),
        ResetTarget::ShiftBy(n) => Some(format!(
            "TARGET is CURRENT-OFFSET {n:+} limited to [0, LOG-END-OFFSET]; the cloud also stops at the earliest retained offset, which it does not report"
        )),
        ResetTarget::Offsets(_) => None,
    }
}

/// A Unix millisecond time in RFC 3339 (UTC).
pub fn fmt_time_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| t.to_string())
}

// ---- the plan ------------------------------------------------------------------------------

/// What a reset will do: the request sent and, derived from it, one row per partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub request: ResetRequest,
    pub rows: Vec<PlanRow>,
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

/// "1 partition", "3 partitions".
fn partitions(n: usize) -> String {
    if n == 1 {
        "1 partition".into()
    } else {
        format!("{n} partitions")
    }
}

/// An offset, or `-` when there is none.
fn offset_text(o: Option<i64>) -> String {
    o.map_or_else(|| "-".to_string(), |o| o.to_string())
}

/// Validates a reset against the group's progress and plans it. `topic` narrows it to
/// one topic; without it every topic of the progress is reset.
pub fn plan(
    group: &str,
    progress: &GroupProgress,
    topic: Option<&str>,
    target: ResetTarget,
) -> Result<Plan, ResetError> {
    let topics: Vec<&TopicProgress> = match topic {
        Some(name) => {
            let found = progress.topic(name).ok_or_else(|| {
                let names: Vec<&str> = progress.topics.iter().map(|t| t.topic.as_str()).collect();
                refused(format!(
                    "--topic: group {group} has no offsets on topic {name} (its topics: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?;
            vec![found]
        }
        None => progress.topics.iter().collect(),
    };
    if topics.is_empty() {
        return Err(refused(format!(
            "group {group} has no offsets on any topic: there is nothing to reset"
        )));
    }
    let mut rows = Vec::new();
    let row = |t: &TopicProgress, p: &PartitionProgress, target: Expected| PlanRow {
        topic: t.topic.clone(),
        partition: p.partition,
        current: p.committed,
        log_end: p.log_end,
        target,
    };
    if let ResetTarget::Offsets(list) = &target {
        let (Some(name), [t]) = (topic, topics.as_slice()) else {
            return Err(offsets_need_topic());
        };
        if list.is_empty() {
            return Err(refused("--to-offsets: no partition offsets given"));
        }
        for &(partition, offset) in list {
            let p = t.partition(partition).ok_or_else(|| {
                let numbers: Vec<String> = t
                    .partitions
                    .iter()
                    .map(|p| p.partition.to_string())
                    .collect();
                refused(format!(
                    "--to-offsets: topic {name} has no partition {partition} (partitions: {})",
                    numbers.join(", ")
                ))
            })?;
            if !(0..=p.log_end).contains(&offset) {
                return Err(refused(format!(
                    "--to-offsets: offset {offset} for partition {partition} of topic {name} is \
                     outside [0, {}] (0 to the log-end offset)",
                    p.log_end
                )));
            }
            rows.push(row(t, p, Expected::Offset(offset)));
        }
    } else {
        for t in &topics {
            for p in &t.partitions {
                let expected = match &target {
                    ResetTarget::Latest => Expected::Offset(p.log_end),
                    ResetTarget::Earliest => Expected::Earliest,
                    ResetTarget::Timestamp(ms) => Expected::Time(*ms),
                    ResetTarget::ShiftBy(n) => {
                        // As kafka-consumer-groups: a shift needs an offset to shift from.
                        let Some(current) = p.committed else {
                            return Err(refused(format!(
                                "--shift-by: partition {} of topic {} has no committed offset to \
                                 shift from; reset it with --to-offsets, --to-earliest or \
                                 --to-latest instead",
                                p.partition, t.topic
                            )));
                        };
                        Expected::Offset(current.saturating_add(*n).clamp(0, p.log_end))
                    }
                    ResetTarget::Offsets(_) => unreachable!("handled above"),
                };
                rows.push(row(t, p, expected));
            }
        }
    }
    let scope = match topic {
        Some(name) => ResetScope::Topic(name.to_string()),
        None => ResetScope::AllTopics(topics.iter().map(|t| t.topic.clone()).collect()),
    };
    Ok(Plan {
        request: ResetRequest { scope, target },
        rows,
    })
}

impl Plan {
    /// The dry-run table: `TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET TARGET`.
    pub fn table(&self) -> String {
        table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "TARGET",
            ],
            self.rows
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

    /// Compares the progress read after the write with the plan, partition by partition.
    /// `written` says whether the cloud accepted the write: when it did not, a partition
    /// whose offset did not move counts as not applied even where its target is unknown.
    pub fn check(&self, after: &GroupProgress, written: bool) -> Results {
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let found = after
                    .topic(&row.topic)
                    .and_then(|t| t.partition(row.partition));
                let committed = found.and_then(|p| p.committed);
                let mut verdict = verify(&self.request.target, row, committed);
                if !written && committed == row.current && verdict != Verdict::Applied {
                    verdict = Verdict::NotApplied;
                }
                ResultRow {
                    plan: row.clone(),
                    committed,
                    log_end: found.map(|p| p.log_end),
                    verdict,
                }
            })
            .collect();
        Results { rows }
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
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Unverified => "unverified",
            Verdict::NotApplied => "NOT APPLIED",
        }
    }
}

/// Checks one partition's committed offset after the write against its plan row.
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
pub fn verify(target: &ResetTarget, row: &PlanRow, after: Option<i64>) -> Verdict {
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
    match target {
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

impl Results {
    /// The before/after table: `TOPIC PARTITION BEFORE TARGET AFTER LOG-END-OFFSET RESULT`,
    /// the log end as re-read (so that the lag after the reset shows).
    pub fn table(&self) -> String {
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
            self.rows
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

    fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// Says on `err` what was and was not applied; an error when anything was not, or
    /// when the write call failed.
    fn conclude(
        &self,
        target: &ResetTarget,
        write_failed: bool,
        err: &mut dyn Write,
    ) -> Result<(), ResetError> {
        let total = self.rows.len();
        let missing: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::NotApplied)
            .map(|r| format!("{}/{}", r.plan.topic, r.plan.partition))
            .collect();
        let unverified = self.count(Verdict::Unverified);
        if unverified > 0 {
            let why = match target {
                ResetTarget::Earliest => "the cloud does not report the earliest retained offset",
                ResetTarget::Timestamp(_) => {
                    "the cloud does not report which offset a time corresponds to"
                }
                _ => {
                    "the shift stopped early, presumably at the earliest retained offset, which the cloud does not report"
                }
            };
            put(
                err,
                &format!(
                    "note: {unverified} of {} where the target lies, but the exact offset cannot be checked: {why}\n",
                    partitions(total)
                ),
            )?;
        }
        if write_failed || !missing.is_empty() {
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
            let lead = if write_failed {
                "the reset failed"
            } else {
                "the reset was accepted but not fully applied"
            };
            return Err(failed(format!(
                "{lead}: {what}; run the same command without --execute to see the offsets now"
            )));
        }
        let applied = self.count(Verdict::Applied);
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

// ---- audit and output --------------------------------------------------------------------

/// Writes the audit line (stderr, and the log at warn level) before the write: who, what,
/// where, when and the plan.
fn audit(
    plan: &Plan,
    instance: &InstanceRef,
    group: &str,
    assume_inactive: bool,
    at: SystemTime,
    err: &mut dyn Write,
) -> Result<(), ResetError> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let at = fmt_time_ms(unix_millis(at));
    let target = describe(&plan.request.target);
    let topics = topic_names(&plan.request.scope);
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
    tracing::warn!(
        user = %user,
        account = %instance.account,
        cloud = %instance.cloud,
        region = %instance.region,
        instance = %instance.instance_id,
        group = %group,
        topics = %topics,
        target = %target,
        at = %at,
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
            "audit: reset-offsets user={user} account={} cloud={} region={} instance={} group={group} topics={topics} target=\"{target}\"{assumed} at={at} plan={rows}\n",
            instance.account, instance.cloud, instance.region, instance.instance_id
        ),
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

    #[test]
    fn every_target_kind_parses() {
        let t = |f: fn(&mut ResetArgs)| {
            let mut a = args();
            f(&mut a);
            parse_target(&a, now())
        };
        assert_eq!(t(|a| a.to_latest = true), Ok(ResetTarget::Latest));
        assert_eq!(t(|a| a.to_earliest = true), Ok(ResetTarget::Earliest));
        assert_eq!(
            t(|a| a.to_timestamp_ms = Some(NOW_MS - 1)),
            Ok(ResetTarget::Timestamp(NOW_MS - 1))
        );
        assert_eq!(
            t(|a| a.to_timestamp_ms = Some(NOW_MS)),
            Ok(ResetTarget::Timestamp(NOW_MS)),
            "now itself has passed"
        );
        assert_eq!(
            t(|a| a.to_datetime = Some("2023-11-15T06:00:00+08:00".into())),
            Ok(ResetTarget::Timestamp(
                1_700_000_000_000 - 13 * 60 * 1000 - 20 * 1000
            )),
        );
        assert_eq!(
            t(|a| a.to_datetime = Some("2023-11-14T22:13:19.5Z".into())),
            Ok(ResetTarget::Timestamp(NOW_MS - 500))
        );
        assert_eq!(
            t(|a| a.to_offsets = Some("3=30, 0=10".into())),
            Ok(ResetTarget::Offsets(vec![(0, 10), (3, 30)])),
            "sorted by partition, spaces allowed"
        );
        assert_eq!(t(|a| a.shift_by = Some(-5)), Ok(ResetTarget::ShiftBy(-5)));
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

    fn partition(partition: i32, committed: Option<i64>, log_end: i64) -> PartitionProgress {
        PartitionProgress {
            partition,
            committed,
            log_end,
            ..PartitionProgress::default()
        }
    }

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

    fn targets(plan: &Plan) -> Vec<(String, i32, Expected)> {
        plan.rows
            .iter()
            .map(|r| (r.topic.clone(), r.partition, r.target))
            .collect()
    }

    #[test]
    fn plans_derive_the_request_and_the_rows_from_one_target() {
        let all = ResetScope::AllTopics(vec!["a".into(), "b".into()]);
        let p = plan("g", &progress(), None, ResetTarget::Latest).unwrap();
        assert_eq!(p.request.scope, all);
        assert_eq!(p.request.target, ResetTarget::Latest);
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(100)),
                ("a".into(), 1, Expected::Offset(10)),
                ("b".into(), 0, Expected::Offset(50)),
            ]
        );
        assert_eq!(p.rows[2].current, None);

        let p = plan("g", &progress(), Some("b"), ResetTarget::Earliest).unwrap();
        assert_eq!(p.request.scope, ResetScope::Topic("b".into()));
        assert_eq!(targets(&p), [("b".into(), 0, Expected::Earliest)]);

        let p = plan("g", &progress(), None, ResetTarget::Timestamp(5)).unwrap();
        assert!(p.rows.iter().all(|r| r.target == Expected::Time(5)));

        let p = plan("g", &progress(), Some("a"), ResetTarget::ShiftBy(-45)).unwrap();
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(0)),
                ("a".into(), 1, Expected::Offset(0)),
            ],
            "limited at 0"
        );
        let p = plan("g", &progress(), Some("a"), ResetTarget::ShiftBy(5)).unwrap();
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 0, Expected::Offset(45)),
                ("a".into(), 1, Expected::Offset(10)),
            ],
            "limited at the log end"
        );

        let offsets = ResetTarget::Offsets(vec![(1, 0), (0, 100)]);
        let p = plan("g", &progress(), Some("a"), offsets.clone()).unwrap();
        assert_eq!(p.request.target, offsets, "sent as given");
        assert_eq!(
            targets(&p),
            [
                ("a".into(), 1, Expected::Offset(0)),
                ("a".into(), 0, Expected::Offset(100)),
            ]
        );
    }

    #[test]
    fn plans_refuse_what_does_not_exist_or_is_out_of_range() {
        let refuse = |topic: Option<&str>, target: ResetTarget| {
            message(plan("g", &progress(), topic, target).unwrap_err())
        };
        let m = refuse(Some("c"), ResetTarget::Latest);
        assert_eq!(
            m,
            "--topic: group g has no offsets on topic c (its topics: a, b)"
        );
        let m = refuse(None, ResetTarget::Offsets(vec![(0, 1)]));
        assert!(m.starts_with("--to-offsets needs --topic"), "{m}");
        let m = refuse(Some("a"), ResetTarget::Offsets(vec![(2, 1)]));
        assert_eq!(
            m,
            "--to-offsets: topic a has no partition 2 (partitions: 0, 1)"
        );
        let m = refuse(Some("a"), ResetTarget::Offsets(vec![(1, 11)]));
        assert!(
            m.contains("offset 11 for partition 1 of topic a is outside [0, 10]"),
            "{m}"
        );
        let m = refuse(Some("a"), ResetTarget::Offsets(vec![(1, -1)]));
        assert!(m.contains("offset -1 for partition 1"), "{m}");
        let m = refuse(Some("b"), ResetTarget::ShiftBy(-1));
        assert!(
            m.contains("partition 0 of topic b has no committed offset to shift from"),
            "{m}"
        );
        let empty = GroupProgress::default();
        let m = message(plan("g", &empty, None, ResetTarget::Latest).unwrap_err());
        assert!(m.contains("no offsets on any topic"), "{m}");
    }

    fn row(current: Option<i64>, log_end: i64, target: Expected) -> PlanRow {
        PlanRow {
            topic: "t".into(),
            partition: 0,
            current,
            log_end,
            target,
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

    #[test]
    fn a_refused_write_marks_unmoved_partitions_not_applied() {
        let p = plan("g", &progress(), Some("a"), ResetTarget::Earliest).unwrap();
        let mut after = progress();
        after.topics[0].partitions[0].committed = Some(3);
        let accepted = p.check(&after, true);
        let verdicts: Vec<Verdict> = accepted.rows.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts, [Verdict::Unverified, Verdict::Unverified]);
        let refused = p.check(&after, false);
        let verdicts: Vec<Verdict> = refused.rows.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts, [Verdict::Unverified, Verdict::NotApplied]);

        let mut err = Vec::new();
        let e = refused
            .conclude(&p.request.target, true, &mut err)
            .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string()
                .starts_with("the reset failed: 1 of 2 partitions not at the target: a/1;"),
            "{e}"
        );
        let mut err = Vec::new();
        accepted
            .conclude(&p.request.target, false, &mut err)
            .unwrap();
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.contains("2 of 2 partitions where the target lies"),
            "{err}"
        );
        assert!(err.contains("exact offsets cannot be verified"), "{err}");
    }

    #[test]
    fn a_result_that_differs_from_the_plan_is_a_failure() {
        let p = plan("g", &progress(), None, ResetTarget::Latest).unwrap();
        let mut after = progress();
        for t in &mut after.topics {
            for part in &mut t.partitions {
                part.committed = Some(part.log_end);
            }
        }
        after.topics[0].partitions[1].committed = Some(9);
        let results = p.check(&after, true);
        let e = results
            .conclude(&p.request.target, false, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string().starts_with(
                "the reset was accepted but not fully applied: 1 of 3 partitions not at the target: a/1;"
            ),
            "{e}"
        );
        assert!(results.table().contains("NOT APPLIED"));
    }

    #[test]
    fn tables_align_columns_and_show_missing_offsets_as_dashes() {
        let p = plan("g", &progress(), None, ResetTarget::Latest).unwrap();
        assert_eq!(
            p.table(),
            "TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  TARGET\n\
             a      0          40              100             100\n\
             a      1          7               10              10\n\
             b      0          -               50              50\n"
        );
        let p = plan("g", &progress(), Some("b"), ResetTarget::Timestamp(NOW_MS)).unwrap();
        assert!(
            p.table().ends_with(
                "b      0          -               50              2023-11-14T22:13:20Z\n"
            )
        );
    }

    #[test]
    fn targets_are_described_for_the_audit_line() {
        assert_eq!(describe(&ResetTarget::Latest), "to-latest");
        assert_eq!(describe(&ResetTarget::Earliest), "to-earliest");
        assert_eq!(
            describe(&ResetTarget::Timestamp(NOW_MS)),
            "to-timestamp 1700000000000 (2023-11-14T22:13:20Z)"
        );
        assert_eq!(
            describe(&ResetTarget::Offsets(vec![(0, 1), (2, 3)])),
            "to-offsets 0=1,2=3"
        );
        assert_eq!(describe(&ResetTarget::ShiftBy(-3)), "shift-by -3");
    }
}

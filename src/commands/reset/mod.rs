//! The `reset-offsets` command: moves a consumer group's committed offsets the way
//! `kafka-consumer-groups --reset-offsets` does, writes nothing unless asked, and can
//! always be undone.
//!
//! Steps: find the account and instance in the configuration; parse the target and the
//! scope ([`target`]); read the group's state and progress; validate and plan
//! ([`plan`]: the group has no active members, topics and partitions exist, explicit
//! offsets lie within `[0, log end]`, a time is not in the future), from which the printed
//! table, the requests and the check of the result all derive; print it (a table, the
//! `--export` CSV, or JSON with [`report`]). Without `--execute` that is all (reads only).
//! With it: on a terminal the operator types the group name (unless `--yes`); the group's
//! offsets are written to a backup file ([`backup`]; none written, nothing sent); an
//! audit line; the requests one after the other, stopping at the first failure; a re-read
//! of the progress, a before/after table checked against the plan ([`outcome`]); and a
//! second audit line saying exactly which partitions moved.
//!
//! Only the command line calls this module: writes to a cloud never run inside the
//! daemon: this is the only caller of [`providers::build_writer`]. It sees the clouds
//! only through [`OffsetWriter`] and `model` types. Exit statuses: 0 done (or dry run,
//! or export), 1 a cloud call failed or the result differs from the plan, 2 refused before
//! anything was written.

mod backup;
mod outcome;
mod plan;
mod report;
mod target;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use kcle_clock::{Instant, unix_millis};

pub use outcome::{Results, Sent, Verdict, verify};
pub use plan::{Expected, Plan, PlanRow};
pub use target::{Scope, Selection, Target, parse_datetime, parse_duration, parse_offsets};

use crate::cli::{Cli, EXIT_CONFIG, EXIT_FAILURE, ResetArgs, ResetOutput};
use crate::config::{Account, Config};
use crate::credentials::NoCredentialObserver;
use crate::exporter::{Runtime, account_credentials, account_spec_with, provider_deps};
use crate::model::{GroupProgress, InstanceRef};
use crate::providers::{self, ErrorKind, NoopObserver, OffsetWriter, ProviderError};
use report::{Audit, Confirmation, Report, Status};

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
/// needed, and `reset` reads and checks them. The confirmation is read from stdin when it
/// is a terminal.
pub async fn run_command(cli: &Cli, args: &ResetArgs) -> ExitCode {
    let config = match super::cli_config(cli, false) {
        Ok((_, config)) => config,
        Err(code) => return code,
    };
    let stdin = std::io::stdin();
    let mut terminal = stdin.is_terminal().then(|| stdin.lock());
    let status = run(
        args,
        &config,
        &Runtime::production(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        terminal.as_mut().map(|t| t as &mut dyn BufRead),
    )
    .await;
    ExitCode::from(status)
}

/// Runs `reset-offsets`: tables (or the JSON document) go to `out`; notices, the prompt,
/// the audit lines and errors to `err`. `terminal` is the operator's terminal when stdin
/// is one: with `--execute` (and without `--yes`) the group name is read from it. Returns
/// the exit status.
pub async fn run(
    args: &ResetArgs,
    config: &Config,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
    terminal: Option<&mut dyn BufRead>,
) -> u8 {
    let mut report = Report::new(&args.account, &args.instance, &args.group);
    let result = reset(args, config, runtime, out, err, terminal, &mut report).await;
    if let Err(e) = &result {
        // Nothing more can be done when stderr itself is gone.
        let _ = writeln!(err, "error: {e}");
        report.status = match e {
            ResetError::Refused(_) => Status::Refused,
            ResetError::Failed(_) => Status::Failed,
        };
        report.error = Some(e.to_string());
    }
    if args.output == ResetOutput::Json {
        let _ = put(out, &format!("{}\n", report.json()));
    }
    result.map_or_else(|e| e.exit_code(), |()| 0)
}

async fn reset(
    args: &ResetArgs,
    config: &Config,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
    terminal: Option<&mut dyn BufRead>,
    report: &mut Report,
) -> Result<(), ResetError> {
    let clock = &runtime.clock;
    let json = args.output == ResetOutput::Json;
    let account = find_account(config, &args.account)?;
    let (target, scope) = target::parse(args, clock.now())?;
    report.target = Some(target.describe());
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
    let instance = InstanceRef {
        cloud: account.cloud,
        account: account.name.as_str().into(),
        region: region.as_str().into(),
        instance_id: args.instance.as_str().into(),
    };
    report.locate(&instance);
    let group = args.group.as_str();

    let progress = read_state(
        &*provider,
        &instance,
        group,
        args.assume_inactive,
        &deadline,
    )
    .await?;
    let cloud = instance.cloud.to_string();
    let plan = plan::plan(group, &progress, &scope, &target, &cloud, &|r| {
        provider.reset_calls(r)
    })?;
    report.set_plan(&plan);
    let export = if args.export {
        if json || args.execute {
            return Err(refused(
                "--export prints the plan as CSV and writes nothing: leave out --output json \
                 and --execute",
            ));
        }
        Some(plan.exact_offsets().map_err(refused)?)
    } else {
        None
    };
    let planned = format!(
        "{} of {}",
        target.describe(),
        describe_selection(&scope, &target, &plan)
    );
    put(
        err,
        &format!(
            "plan: {planned} of group {group} on {} instance {} (account {}, region {}), {}\n",
            instance.cloud,
            instance.instance_id,
            instance.account,
            instance.region,
            plan.size()
        ),
    )?;
    if let Some(rows) = export {
        put(out, &backup::rows_text(rows))?;
        report.status = Status::Exported;
        return put(
            err,
            "export: nothing was changed. Give the file to --from-file (with --execute) to apply it.\n",
        );
    }
    if !json {
        put(out, &report::plan_table(&plan))?;
    }
    for n in &plan.notes {
        put(err, &format!("note: {n}\n"))?;
    }
    if !args.execute {
        report.status = Status::DryRun;
        return put(
            err,
            "dry run: nothing was changed. Run the same command with --execute to apply this plan.\n",
        );
    }
    let (confirmation, progress) = match terminal {
        Some(tty) if !args.yes => {
            if json {
                put(err, &report::plan_table(&plan))?;
            }
            confirm(tty, group, &plan, err)?;
            // Time has passed at the prompt: plan only from offsets that still hold.
            let now = read_state(
                &*provider,
                &instance,
                group,
                args.assume_inactive,
                &deadline,
            )
            .await?;
            unchanged_since_plan(&plan, &now)?;
            (Confirmation::Typed, now)
        }
        Some(_) => (Confirmation::YesFlag, progress),
        None => (Confirmation::NoTerminal, progress),
    };

    let at = clock.now();
    let at_ms = unix_millis(at);
    let dir = args.backup_dir.clone().unwrap_or_else(|| {
        backup::default_dir(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
    });
    let text = backup::backup_text(
        &backup::Header {
            instance: &instance,
            group,
            at_ms,
            planned: &planned,
        },
        &progress,
        &|topic, partition| {
            plan.rows
                .iter()
                .any(|r| r.topic == topic && r.partition == partition)
        },
    );
    let path = backup::write_new(&dir, &backup::file_name(&instance, group, at_ms), &text)
        .map_err(|e| {
            refused(format!(
                "cannot write the backup of the offsets of group {group} in {}: {e}; nothing \
                 was changed. Give a writable directory with --backup-dir",
                dir.display()
            ))
        })?;
    report.backup = Some(path.display().to_string());
    put(
        err,
        &format!(
            "backup: {} (the committed offsets before this reset; to undo it, run this \
             command with --from-file and this path instead of the target)\n",
            path.display(),
        ),
    )?;
    let audit = Audit::new(&instance, group, &path);
    audit.start(
        &plan,
        &target.describe(),
        args.assume_inactive,
        confirmation,
        at,
        err,
    )?;
    let outcome = apply(&*provider, &plan, &deadline, &audit, clock, report, err).await?;
    if !json {
        put(out, &report::results_table(&outcome))?;
    }
    audit.result(&outcome.sent, Some(&outcome), clock.now(), err)?;
    outcome.conclude(&plan, &path.display().to_string(), err)?;
    report.status = Status::Applied;
    Ok(())
}

/// Reads the group's state and progress; refuses an active group, or one whose membership
/// the answer cannot tell without `--assume-inactive`.
async fn read_state(
    provider: &dyn OffsetWriter,
    instance: &InstanceRef,
    group: &str,
    assume_inactive: bool,
    deadline: &dyn Fn() -> Instant,
) -> Result<GroupProgress, ResetError> {
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
    if !info.membership_known() && !assume_inactive {
        return Err(refused(format!(
            "cannot tell whether group {group} has active members: the {} answer reports \
             neither its state nor its members (an older API answer), so a reset could \
             overwrite the offsets of live consumers. Stop every consumer of the group, check \
             in the console that it has no members, then run this again with \
             --assume-inactive (recorded in the audit line)",
            instance.cloud
        )));
    }
    provider
        .group_progress(instance, group, deadline())
        .await
        .map_err(|e| read_error(instance, group, "progress", &e))
}

/// Asks the operator to type the group name; anything else (or the end of input) cancels.
fn confirm(
    tty: &mut dyn BufRead,
    group: &str,
    plan: &Plan,
    err: &mut dyn Write,
) -> Result<(), ResetError> {
    put(
        err,
        &format!(
            "this moves the committed offsets of {} of group {group} (the plan above), after \
             writing a backup.\ntype the group name to apply it, anything else to cancel: ",
            plan.size()
        ),
    )?;
    let mut line = String::new();
    tty.read_line(&mut line).map_err(|e| {
        refused(format!(
            "reading the confirmation: {e}; nothing was changed"
        ))
    })?;
    if line.trim() == group {
        return Ok(());
    }
    Err(refused(format!(
        "not confirmed (typed {:?}, not the group name {group}): nothing was changed",
        line.trim()
    )))
}

/// Refuses when a planned partition's committed offset changed since it was planned.
fn unchanged_since_plan(plan: &Plan, now: &GroupProgress) -> Result<(), ResetError> {
    for row in &plan.rows {
        let committed = now
            .topic(&row.topic)
            .and_then(|t| t.partition(row.partition))
            .and_then(|p| p.committed);
        if committed != row.current {
            let text = |o: Option<i64>| o.map_or_else(|| "none".to_string(), |o| o.to_string());
            return Err(refused(format!(
                "the committed offset of partition {} of topic {} changed while waiting for \
                 confirmation ({} to {}): nothing was changed; run the command again to plan \
                 from the offsets now",
                row.partition,
                row.topic,
                text(row.current),
                text(committed)
            )));
        }
    }
    Ok(())
}

/// Sends the plan's requests one after the other, stopping at the first failure, then
/// reads the progress again and checks it partition by partition.
async fn apply(
    provider: &dyn OffsetWriter,
    plan: &Plan,
    deadline: &dyn Fn() -> Instant,
    audit: &Audit<'_>,
    clock: &kcle_clock::Clock,
    report: &mut Report,
    err: &mut dyn Write,
) -> Result<Results, ResetError> {
    let (instance, group) = (audit.instance, audit.group);
    let total = plan.steps.len();
    let mut sent = vec![Sent::NotSent; total];
    for (i, step) in plan.steps.iter().enumerate() {
        let Err(e) = provider
            .reset_offsets(instance, group, step, deadline())
            .await
        else {
            sent[i] = Sent::Accepted;
            continue;
        };
        // Said now, and the progress read anyway: a failed write may still have landed.
        let rest = total - i - 1;
        let message = if total == 1 {
            format!("error: the cloud did not apply the reset: {e}\n")
        } else {
            format!(
                "error: the cloud did not apply request {} of {total} ({}): {e}{}\n",
                i + 1,
                plan::describe_scope(&step.scope),
                match rest {
                    0 => String::new(),
                    1 => "; the request after it was not sent".to_string(),
                    n => format!("; the {n} requests after it were not sent"),
                }
            )
        };
        sent[i] = Sent::Failed(e.to_string());
        report.set_sent(&sent);
        put(err, &message)?;
        break;
    }
    report.set_sent(&sent);
    let after = match provider.group_progress(instance, group, deadline()).await {
        Ok(after) => after,
        Err(e) => {
            audit.result(&sent, None, clock.now(), err)?;
            let accepted = sent.iter().filter(|s| **s == Sent::Accepted).count();
            return Err(failed(format!(
                "re-reading the progress of group {group} after the reset: {e}; {accepted} of \
                 {total} requests were accepted, so the result is unknown: run the same command \
                 without --execute to see the offsets now, and with --from-file {} instead of \
                 the target to undo",
                audit.backup.display()
            )));
        }
    };
    let results = plan.check(&after, &sent);
    report.set_results(&results);
    Ok(results)
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

/// The plan's partitions in words: "all topics (a, b)", "topic a", "topics a, b:0,2"; for
/// a file, the topics it lists.
fn describe_selection(scope: &Scope, target: &Target, plan: &Plan) -> String {
    match scope {
        Scope::AllTopics if matches!(target, Target::File { .. }) => match plan.topics()[..] {
            [one] => format!("topic {one}"),
            ref many => format!("topics {}", many.join(", ")),
        },
        Scope::AllTopics => format!("all topics ({})", plan.topics().join(", ")),
        Scope::Topics(list) if list.len() == 1 => format!("topic {}", list[0]),
        Scope::Topics(list) => {
            let names: Vec<String> = list.iter().map(Selection::to_string).collect();
            format!("topics {}", names.join(", "))
        }
    }
}

/// Writes to `out` or `err`; a failure stops the command (before any write to the cloud
/// when it happens while printing the plan or the audit line).
fn put(w: &mut dyn Write, text: &str) -> Result<(), ResetError> {
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| failed(format!("writing the output: {e}")))
}

/// "1 partition", "3 partitions".
fn partitions(n: usize) -> String {
    if n == 1 {
        "1 partition".into()
    } else {
        format!("{n} partitions")
    }
}

/// A Unix millisecond time in RFC 3339 (UTC).
pub fn fmt_time_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| t.to_string())
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

#[cfg(test)]
mod tests {
    use crate::model::PartitionProgress;

    /// A partition's progress for the plan, outcome and backup tests.
    pub(super) fn partition(
        partition: i32,
        committed: Option<i64>,
        log_end: i64,
    ) -> PartitionProgress {
        PartitionProgress {
            partition,
            committed,
            log_end,
            ..PartitionProgress::default()
        }
    }
}

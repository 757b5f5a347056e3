//! Logging of failed polls: the first failure of a kind at once, identical repeats as one
//! summary line per window, so that a cloud-wide outage does not flood the log. Raw
//! messages and RequestIds go here, never into metric labels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcle_clock::Instant;

use crate::model::{GroupKey, GroupTarget};
use crate::providers::{ErrorKind, ProviderError};

/// Identical failures within this window are summarised in one line.
pub const SUMMARY_WINDOW: Duration = Duration::from_secs(60);

/// A group's run of identical failures: kind, code and how many in a row.
type Failing = (ErrorKind, Option<String>, u64);

/// Identical failures are summarised per account, action, kind and code.
type SummaryKey = (Arc<str>, &'static str, ErrorKind, Option<String>);

struct Summary {
    first: Instant,
    repeats: u64,
    example: String,
}

/// The failure log of one scheduler.
#[derive(Default)]
pub struct FailureLog {
    failing: Mutex<HashMap<GroupKey, Failing>>,
    summaries: Mutex<HashMap<SummaryKey, Summary>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FailureLog {
    /// Logs a failed poll: the first of its kind at once, repeats as one summary line per
    /// [`SUMMARY_WINDOW`].
    pub fn failed(&self, target: &GroupTarget, err: &ProviderError, at: Instant) {
        self.log(target, err, at, "poll failed");
    }

    /// Logs a failed read of a group's state (Tencent `DescribeGroupInfo`) the same way.
    pub fn state_read_failed(&self, target: &GroupTarget, err: &ProviderError, at: Instant) {
        self.log(
            target,
            err,
            at,
            "reading the state of consumer groups failed",
        );
    }

    fn log(&self, target: &GroupTarget, err: &ProviderError, at: Instant, what: &'static str) {
        let signature = (err.kind, err.code.clone());
        {
            let mut failing = lock(&self.failing);
            let entry = failing
                .entry(target.key())
                .or_insert((err.kind, err.code.clone(), 0));
            entry.2 += 1;
            if (entry.0, entry.1.clone()) != signature {
                *entry = (err.kind, err.code.clone(), 1);
            }
        }
        let key = (
            target.instance.account.clone(),
            err.action.unwrap_or(""),
            err.kind,
            err.code.clone(),
        );
        let mut summaries = lock(&self.summaries);
        if let Some(s) = summaries.get_mut(&key) {
            if at.saturating_duration_since(s.first) < SUMMARY_WINDOW {
                s.repeats += 1;
                s.example = format!("{target}: {err}");
                return;
            }
            if s.repeats > 0 {
                tracing::warn!(
                    cloud = %target.instance.cloud, account = %target.instance.account,
                    action = %key.1, kind = %err.kind, code = %err.code.as_deref().unwrap_or(""),
                    repeats = s.repeats, last = %s.example,
                    "{} more polls failed the same way in the last {} s",
                    s.repeats, SUMMARY_WINDOW.as_secs()
                );
            }
        }
        summaries.insert(
            key,
            Summary {
                first: at,
                repeats: 0,
                example: String::new(),
            },
        );
        tracing::warn!(
            cloud = %target.instance.cloud,
            account = %target.instance.account,
            instance_id = %target.instance.instance_id,
            group = %target.group,
            action = %err.action.unwrap_or(""),
            kind = %err.kind,
            code = %err.code.as_deref().unwrap_or(""),
            request_id = %err.request_id.as_deref().unwrap_or(""),
            error = %err,
            "{what}"
        );
    }

    /// A group's poll succeeded: ends its run of failures (logged when there was one).
    pub fn recovered(&self, target: &GroupTarget) {
        if let Some((_, _, n)) = lock(&self.failing).remove(&target.key()) {
            tracing::info!(%target, failures = n, "poll recovered");
        }
    }

    /// Forgets groups that are no longer polled.
    pub fn retain(&self, keep: impl Fn(&GroupKey) -> bool) {
        lock(&self.failing).retain(|k, _| keep(k));
    }

    /// Logs the summaries whose window has passed (so the last repeats of an outage that
    /// ended are reported too).
    pub fn flush(&self, now: Instant) {
        let mut summaries = lock(&self.summaries);
        summaries.retain(|(account, action, kind, code), s| {
            if now.saturating_duration_since(s.first) < SUMMARY_WINDOW {
                return true;
            }
            if s.repeats > 0 {
                tracing::warn!(
                    account = %account, action = %action, kind = %kind, code = %code.as_deref().unwrap_or(""),
                    repeats = s.repeats, last = %s.example,
                    "{} more polls failed the same way in the last {} s",
                    s.repeats, SUMMARY_WINDOW.as_secs()
                );
            }
            false
        });
    }
}

//! One poll round: when each target is due ([`schedule`]), and the tracking of its polls
//! until the last one ends ([`Round`]). The daemon and `once` run rounds the same way; the
//! daemon starts the next round on time while a slow one still finishes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use kcle_clock::Instant;
use tokio::sync::watch;

use crate::model::GroupTarget;
use crate::providers::ProviderError;

/// What one round's polls came to.
#[derive(Debug, Default)]
pub struct RoundReport {
    pub succeeded: usize,
    /// Polls skipped because the group's previous poll was still running.
    pub skipped: usize,
    pub failed: Vec<(GroupTarget, ProviderError)>,
}

/// When each target is due in a round, as (due time, index into `targets`) in due order,
/// and how long the round lasts.
///
/// Per account, polls are spaced by the larger of `interval / n` (later rounds spread
/// evenly over the interval, so requests never burst at its start) and `1 / rate` (never
/// faster than the account's poll budget; the first round uses only this, so it starts as
/// fast as the cloud allows). A round whose polls do not fit the interval at the budget
/// therefore stretches to what fits instead of queueing polls past their deadlines.
pub fn schedule(
    start: Instant,
    interval: Duration,
    targets: &[GroupTarget],
    rate_of: impl Fn(&str) -> f64,
    first: bool,
) -> (Vec<(Instant, usize)>, Duration) {
    let mut by_account: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        by_account.entry(&t.instance.account).or_default().push(i);
    }
    let mut out = Vec::with_capacity(targets.len());
    let mut length = interval;
    for (account, indices) in by_account {
        let n = indices.len() as f64;
        let budget_spacing = 1.0 / rate_of(account).max(f64::MIN_POSITIVE);
        let spacing = if first {
            budget_spacing
        } else {
            budget_spacing.max(interval.as_secs_f64() / n)
        };
        length = length.max(Duration::from_secs_f64(spacing * n));
        for (j, i) in indices.into_iter().enumerate() {
            out.push((start + Duration::from_secs_f64(spacing * j as f64), i));
        }
    }
    out.sort_unstable();
    (out, length)
}

/// The polls of one round in flight: counts what remains, collects the outcomes, and
/// says when the last poll has ended.
pub struct Round {
    pub number: u64,
    pub start: Instant,
    state: Mutex<(usize, RoundReport)>,
    done: watch::Sender<bool>,
}

impl Round {
    /// A round of `polls` polls starting at `start`.
    pub fn new(number: u64, start: Instant, polls: usize) -> Round {
        let (done, _) = watch::channel(polls == 0);
        Round {
            number,
            start,
            state: Mutex::new((polls, RoundReport::default())),
            done,
        }
    }

    pub fn is_first(&self) -> bool {
        self.number == 0
    }

    /// Records one poll's outcome (`None`: skipped); `true` when it was the round's last.
    pub fn finished(&self, outcome: Option<Result<(), (GroupTarget, ProviderError)>>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            None => state.1.skipped += 1,
            Some(Ok(())) => state.1.succeeded += 1,
            Some(Err(failure)) => state.1.failed.push(failure),
        }
        state.0 = state.0.saturating_sub(1);
        let last = state.0 == 0;
        if last {
            self.done.send_replace(true);
        }
        last
    }

    /// Waits until every poll of the round has ended, then hands over the report.
    pub async fn report(&self) -> RoundReport {
        let mut done = self.done.subscribe();
        let _ = done.wait_for(|d| *d).await;
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cloud, InstanceRef};
    use std::sync::Arc;

    #[test]
    fn rounds_are_paced_per_account() {
        let target = |account: &str, g: usize| GroupTarget {
            instance: Arc::new(InstanceRef {
                cloud: Cloud::Tencent,
                account: account.into(),
                region: "r".into(),
                instance_id: "i".into(),
            }),
            group: format!("g{g}").into(),
        };
        let targets = vec![
            target("a", 0),
            target("b", 1),
            target("a", 2),
            target("a", 3),
            target("b", 4),
        ];
        let start = kcle_clock::Clock::system().instant();
        let rate = |a: &str| if a == "a" { 10.0 } else { 2.0 };
        let at = |v: Vec<(Instant, usize)>| -> Vec<(f64, usize)> {
            v.into_iter()
                .map(|(t, i)| ((t - start).as_secs_f64(), i))
                .collect()
        };
        // First round: each account at its budget rate (a: 10/s, b: 2/s).
        let (first, _) = schedule(start, Duration::from_secs(30), &targets, rate, true);
        assert_eq!(
            at(first),
            [(0.0, 0), (0.0, 1), (0.1, 2), (0.2, 3), (0.5, 4)]
        );
        // Later rounds: each account spread over the interval.
        let (later, length) = schedule(start, Duration::from_secs(30), &targets, rate, false);
        assert_eq!(
            at(later),
            [(0.0, 0), (0.0, 1), (10.0, 2), (15.0, 4), (20.0, 3)]
        );
        assert_eq!(length, Duration::from_secs(30));
        // A round that does not fit at the budget stretches instead (b: 2 polls at 0.05/s).
        let slow = |a: &str| if a == "a" { 10.0 } else { 0.05 };
        let (later, length) = schedule(start, Duration::from_secs(30), &targets, slow, false);
        assert_eq!(
            at(later),
            [(0.0, 0), (0.0, 1), (10.0, 2), (20.0, 3), (20.0, 4)]
        );
        assert_eq!(length, Duration::from_secs(40));
    }

    #[tokio::test]
    async fn a_round_reports_when_its_last_poll_ends() {
        let round = Round::new(0, kcle_clock::Clock::system().instant(), 2);
        assert!(!round.finished(None));
        assert!(round.finished(Some(Ok(()))));
        let report = round.report().await;
        assert_eq!((report.succeeded, report.skipped), (1, 1));
        let empty = Round::new(1, kcle_clock::Clock::system().instant(), 0);
        assert_eq!(empty.report().await.succeeded, 0);
    }
}

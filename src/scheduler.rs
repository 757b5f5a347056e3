//! The only timer: polls every consumer group once per `poll_interval`, refreshes
//! discovery every `discovery_interval`, and publishes results into the store.
//!
//! The first round starts at once (paced by each account's budget and concurrency);
//! later rounds spread the groups evenly across the interval, so requests never burst at
//! its start. A group whose previous poll is still running is skipped for that round.
//! Each poll has a deadline of `poll_timeout`, pages and retries included. When a round
//! cannot fit its interval under an account's budget, a warning says which interval would.
//! Failures are logged once per distinct error and summarised while they repeat.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::clock::SharedClock;
use crate::discovery::{self, Discovered, Rules};
use crate::metrics::ExporterMetrics;
use crate::model::{Cloud, GroupKey, GroupTarget};
use crate::providers::budget::{Budget, BudgetState};
use crate::providers::{self, ErrorKind, Provider, ProviderError};
use crate::store::Store;
use crate::timelag::Estimator;

/// How long in-flight polls may run on after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Identical failures within this window are summarised in one line.
const SUMMARY_WINDOW: Duration = Duration::from_secs(60);

/// Timing of polls and discovery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub poll_interval: Duration,
    /// Deadline of one group's poll.
    pub poll_timeout: Duration,
    pub discovery_interval: Duration,
}

/// One account: its providers (one per region), budget, concurrency and discovery rules.
#[derive(Clone)]
pub struct AccountRuntime {
    pub name: Arc<str>,
    pub cloud: Cloud,
    pub providers: HashMap<Arc<str>, Arc<dyn Provider>>,
    /// The account's request budget, shared by its providers (rate and concurrency).
    pub budget: Arc<Budget>,
    pub discovery: Rules,
}

impl AccountRuntime {
    /// The provider of `region`.
    pub fn provider(&self, region: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(region).cloned()
    }
}

/// What to poll: the groups listed in the configuration and the accounts (whose
/// discovery rules add more).
#[derive(Clone, Default)]
pub struct Plan {
    /// Groups listed explicitly, in configuration order.
    pub listed: Vec<GroupTarget>,
    pub accounts: BTreeMap<Arc<str>, AccountRuntime>,
}

/// The outcome of one round of [`Scheduler::poll_all_once`].
#[derive(Debug, Default)]
pub struct RoundReport {
    pub succeeded: usize,
    pub failed: Vec<(GroupTarget, ProviderError)>,
}

/// What the scheduler knows that `/metrics` shows: budgets, discovery, round fit.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub accounts: Vec<AccountStatus>,
}

/// One account's part of [`Status`].
#[derive(Clone, Debug)]
pub struct AccountStatus {
    pub cloud: Cloud,
    pub name: Arc<str>,
    pub budgets: Vec<BudgetState>,
    /// Seconds the account's last round of poll requests needs at the current budget.
    pub round_budget_seconds: Option<f64>,
    /// Whether the account discovers instances or groups.
    pub discovers: bool,
    pub discovery_last_success: Option<SystemTime>,
    /// Discovered groups per instance id.
    pub discovered_groups: Vec<(Arc<str>, usize)>,
}

/// A group's run of identical failures: kind, code and how many in a row.
type Failing = (ErrorKind, Option<String>, u64);

/// Identical failures are summarised per account, action, kind and code.
type SummaryKey = (Arc<str>, &'static str, ErrorKind, Option<String>);

/// Tracks the polls of one round, to time the round and to mark readiness after the first.
struct RoundTracker {
    start: SystemTime,
    first: bool,
    remaining: Mutex<usize>,
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
    start: SystemTime,
    interval: Duration,
    targets: &[GroupTarget],
    rate_of: impl Fn(&str) -> f64,
    first: bool,
) -> (Vec<(SystemTime, usize)>, Duration) {
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

struct Summary {
    first: SystemTime,
    repeats: u64,
    example: String,
}

/// Polls groups and publishes their progress.
pub struct Scheduler {
    clock: SharedClock,
    store: Arc<Store>,
    metrics: Arc<ExporterMetrics>,
    settings: RwLock<Settings>,
    plan: RwLock<Arc<Plan>>,
    targets: RwLock<Arc<Vec<GroupTarget>>>,
    discovered: Mutex<HashMap<Arc<str>, Discovered>>,
    round_budget: Mutex<HashMap<Arc<str>, f64>>,
    rediscover: Notify,
    estimator: Mutex<Estimator>,
    failing: Mutex<HashMap<GroupKey, Failing>>,
    summaries: Mutex<HashMap<SummaryKey, Summary>>,
    in_flight: Mutex<HashSet<GroupKey>>,
    missing: Mutex<HashSet<GroupKey>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Scheduler {
    pub fn new(
        clock: SharedClock,
        store: Arc<Store>,
        metrics: Arc<ExporterMetrics>,
        settings: Settings,
        plan: Plan,
    ) -> Arc<Self> {
        metrics
            .poll_interval_seconds
            .set(settings.poll_interval.as_secs_f64());
        let scheduler = Arc::new(Scheduler {
            clock,
            store,
            metrics,
            settings: RwLock::new(settings),
            plan: RwLock::new(Arc::new(Plan::default())),
            targets: RwLock::new(Arc::new(Vec::new())),
            discovered: Mutex::new(HashMap::new()),
            round_budget: Mutex::new(HashMap::new()),
            rediscover: Notify::new(),
            estimator: Mutex::new(Estimator::default()),
            failing: Mutex::new(HashMap::new()),
            summaries: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            missing: Mutex::new(HashSet::new()),
        });
        scheduler.set_plan(plan, settings);
        scheduler
    }

    /// The current plan.
    pub fn plan(&self) -> Arc<Plan> {
        read(&self.plan)
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        read(&self.settings)
    }

    /// The groups polled now: listed ones, then discovered ones, without duplicates.
    pub fn targets(&self) -> Arc<Vec<GroupTarget>> {
        read(&self.targets)
    }

    /// Replaces the plan and settings (a reload). Discovered groups of accounts that
    /// still exist are kept until the next discovery pass, which starts at once.
    pub fn set_plan(&self, plan: Plan, settings: Settings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
        self.metrics
            .poll_interval_seconds
            .set(settings.poll_interval.as_secs_f64());
        lock(&self.discovered).retain(|name, _| {
            plan.accounts
                .get(name)
                .is_some_and(|a| !a.discovery.is_empty())
        });
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
        self.refresh_targets();
        self.rediscover.notify_one();
    }

    /// Recomputes the target list from the plan and discovery, and tells the store.
    fn refresh_targets(&self) {
        let plan = self.plan();
        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        for t in &plan.listed {
            if seen.insert(t.key()) {
                targets.push(t.clone());
            }
        }
        let discovered = lock(&self.discovered);
        for account in plan.accounts.values() {
            let Some(d) = discovered.get(&account.name) else {
                continue;
            };
            for (iref, groups) in d.instances.values() {
                for g in groups {
                    let t = GroupTarget {
                        instance: iref.clone(),
                        group: g.clone(),
                    };
                    if seen.insert(t.key()) {
                        targets.push(t);
                    }
                }
            }
        }
        drop(discovered);
        self.store.set_targets(&targets);
        let keys: HashSet<GroupKey> = targets.iter().map(GroupTarget::key).collect();
        lock(&self.missing).retain(|k| keys.contains(k));
        lock(&self.failing).retain(|k, _| keys.contains(k));
        *self.targets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(targets);
    }

    /// Runs one discovery pass over every account that discovers, concurrently.
    pub async fn discover_all(self: &Arc<Self>) {
        let plan = self.plan();
        let mut tasks = JoinSet::new();
        for account in plan.accounts.values().filter(|a| !a.discovery.is_empty()) {
            let account = account.clone();
            let this = self.clone();
            tasks.spawn(async move { this.discover_account(&account).await });
        }
        while tasks.join_next().await.is_some() {}
        self.refresh_targets();
    }

    async fn discover_account(&self, account: &AccountRuntime) {
        let previous = lock(&self.discovered)
            .get(&account.name)
            .cloned()
            .unwrap_or_default();
        let now = self.clock.now();
        let settings = self.settings();
        let provider_for = |region: &str| account.provider(region);
        let pass = discovery::Pass {
            cloud: account.cloud,
            account: account.name.clone(),
            provider_for: &provider_for,
            deadline: now + settings.poll_timeout.max(Duration::from_secs(30)),
            now,
        };
        let (next, errors) = discovery::discover(&account.discovery, &previous, &pass).await;
        for e in &errors {
            self.metrics
                .discovery_errors_total
                .with_label_values(&[account.cloud.as_str(), &account.name])
                .inc();
            tracing::warn!(
                cloud = %account.cloud, account = %account.name,
                action = %e.action.unwrap_or(""), kind = %e.kind,
                code = %e.code.as_deref().unwrap_or(""),
                request_id = %e.request_id.as_deref().unwrap_or(""),
                error = %e,
                "discovery failed; keeping what the last successful listing found"
            );
        }
        let before: usize = previous.instances.values().map(|(_, g)| g.len()).sum();
        let after: usize = next.instances.values().map(|(_, g)| g.len()).sum();
        if before != after || previous.instances.len() != next.instances.len() {
            tracing::info!(
                cloud = %account.cloud, account = %account.name,
                instances = next.instances.len(), groups = after,
                "discovery found {after} consumer groups (was {before})"
            );
        }
        lock(&self.discovered).insert(account.name.clone(), next);
    }

    /// Polls one group now and publishes the result.
    pub async fn poll_group(
        &self,
        target: &GroupTarget,
        account: &AccountRuntime,
    ) -> Result<(), ProviderError> {
        let Some(provider) = account.provider(&target.instance.region) else {
            return Err(ProviderError::new(
                ErrorKind::ApiError,
                format!("no provider for region {}", target.instance.region),
            ));
        };
        let started = Instant::now();
        let deadline = self.clock.now() + self.settings().poll_timeout;
        let result = provider
            .group_progress(&target.instance, &target.group, deadline)
            .await;
        let cloud = target.instance.cloud;
        self.metrics
            .poll_duration_seconds
            .with_label_values(&[cloud.as_str()])
            .observe(started.elapsed().as_secs_f64());
        let at = self.clock.now();
        let key = target.key();
        match result {
            Ok(mut progress) => {
                lock(&self.estimator).enrich(
                    cloud,
                    &target.instance.instance_id,
                    &mut progress,
                    at,
                );
                if lock(&self.missing).remove(&key) {
                    tracing::info!(%target, "consumer group exists again");
                    self.store.set_targets(&self.targets());
                }
                self.store.record_success(target, progress, at);
                if let Some((_, _, n)) = lock(&self.failing).remove(&key) {
                    tracing::info!(%target, failures = n, "poll recovered");
                }
                Ok(())
            }
            Err(err) if err.kind == ErrorKind::NotFound => {
                if lock(&self.missing).insert(key.clone()) {
                    tracing::warn!(%target, error = %err, "consumer group not found; its series are dropped until it reappears");
                }
                self.store.remove(&key);
                Err(err)
            }
            Err(err) => {
                self.store.record_failure(target, at);
                self.log_failure(target, &err, at);
                Err(err)
            }
        }
    }

    /// Logs a failed poll: the first of its kind at once, repeats as one summary line
    /// per [`SUMMARY_WINDOW`], so a cloud-wide outage does not flood the log.
    fn log_failure(&self, target: &GroupTarget, err: &ProviderError, at: SystemTime) {
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
            if at.duration_since(s.first).unwrap_or_default() < SUMMARY_WINDOW {
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
            "poll failed"
        );
    }

    /// Logs the summaries whose window has passed (so the last repeats of an outage that
    /// ended are reported too).
    fn flush_summaries(&self, now: SystemTime) {
        let mut summaries = lock(&self.summaries);
        summaries.retain(|(account, action, kind, code), s| {
            if now.duration_since(s.first).unwrap_or_default() < SUMMARY_WINDOW {
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

    /// Polls every target once, concurrently within each account's limits. Used by
    /// `once` and tests; also runs discovery first if the plan has any.
    pub async fn poll_all_once(self: &Arc<Self>) -> RoundReport {
        if self
            .plan()
            .accounts
            .values()
            .any(|a| !a.discovery.is_empty())
        {
            self.discover_all().await;
        }
        let plan = self.plan();
        let targets = self.targets();
        let rate_of = |account: &str| {
            plan.accounts
                .get(account)
                .map_or(1.0, |a| a.budget.rate(providers::poll_action(a.cloud)))
        };
        // Paced like the daemon's first round, so polls do not queue past their deadlines.
        let start = self.clock.now();
        let (due_times, _) = schedule(
            start,
            self.settings().poll_interval,
            &targets,
            rate_of,
            true,
        );
        let mut tasks = JoinSet::new();
        for (due, i) in due_times {
            let target = targets[i].clone();
            let Some(account) = plan.accounts.get(&target.instance.account).cloned() else {
                continue;
            };
            if let Ok(wait) = due.duration_since(self.clock.now())
                && !wait.is_zero()
            {
                self.clock.sleep(wait).await;
            }
            let this = self.clone();
            tasks.spawn(async move {
                let r = this.poll_group(&target, &account).await;
                (target, r)
            });
        }
        let mut report = RoundReport::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => report.succeeded += 1,
                Ok((target, Err(e))) => report.failed.push((target, e)),
                Err(e) => tracing::error!(error = %e, "poll task panicked"),
            }
        }
        lock(&self.estimator).forget_old(self.clock.now());
        self.store.mark_ready();
        report
    }

    /// Checks now whether each account's round fits its interval (the poll loop does this
    /// at the start of every round).
    pub fn check_round_budget_now(&self) {
        let interval = self.settings().poll_interval;
        self.check_round_budget(&self.plan(), &self.targets(), interval);
    }

    /// Checks whether each account's next round fits its interval under its budget,
    /// records the seconds it needs, and warns when it does not fit.
    fn check_round_budget(&self, plan: &Plan, targets: &[GroupTarget], interval: Duration) {
        let mut requests: HashMap<&str, f64> = HashMap::new();
        for t in targets {
            // Tencent pages 50 topics per request; others answer in one request.
            let pages = match t.instance.cloud {
                Cloud::Tencent => self
                    .store
                    .get(&t.key())
                    .and_then(|e| {
                        e.last_good
                            .as_ref()
                            .map(|p| p.progress.topics.len().div_ceil(50).max(1))
                    })
                    .unwrap_or(1),
                Cloud::Alibaba => 1,
            };
            *requests.entry(&t.instance.account).or_default() += pages as f64;
        }
        let mut budgets = lock(&self.round_budget);
        for account in plan.accounts.values() {
            let n = requests.get(&*account.name).copied().unwrap_or(0.0);
            let action = providers::poll_action(account.cloud);
            let rate = account.budget.rate(action);
            let needed = n / rate;
            let fitted = budgets
                .get(&account.name)
                .is_none_or(|s| *s <= interval.as_secs_f64());
            if needed > interval.as_secs_f64() && fitted {
                tracing::warn!(
                    cloud = %account.cloud, account = %account.name, requests = n as u64,
                    rate, needed_seconds = needed,
                    "a poll round needs {n:.0} {action} requests, which take at least {needed:.1} s at the budget of {rate:.1}/s: more than poll_interval ({:.0} s); set poll_interval to at least {}s or raise api_rate_limits.{action}",
                    interval.as_secs_f64(),
                    needed.ceil() as u64
                );
            }
            budgets.insert(account.name.clone(), needed);
        }
    }

    /// Polls until `shutdown` turns true, then lets in-flight polls finish for up to
    /// [`SHUTDOWN_GRACE`].
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        if self
            .plan()
            .accounts
            .values()
            .any(|a| !a.discovery.is_empty())
        {
            // The first round should include discovered groups.
            tokio::select! {
                _ = self.discover_all() => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return,
            }
        }
        tasks.spawn(self.clone().discovery_loop(shutdown.clone()));
        let mut round = 0u64;
        let mut round_start = self.clock.now();
        'rounds: loop {
            let plan = self.plan();
            let targets = self.targets();
            let interval = self.settings().poll_interval;
            self.check_round_budget(&plan, &targets, interval);
            self.flush_summaries(self.clock.now());
            let tracker = Arc::new(RoundTracker {
                start: round_start,
                first: round == 0,
                remaining: Mutex::new(targets.len()),
            });
            if targets.is_empty() {
                self.round_done(&tracker);
            }
            let rate_of = |account: &str| {
                plan.accounts
                    .get(account)
                    .map_or(1.0, |a| a.budget.rate(providers::poll_action(a.cloud)))
            };
            let (due_times, length) =
                schedule(round_start, interval, &targets, rate_of, round == 0);
            for (due, i) in due_times {
                let target = &targets[i];
                if !self.wait_until(due, &mut shutdown).await {
                    break 'rounds;
                }
                while tasks.try_join_next().is_some() {}
                let account = plan.accounts.get(&target.instance.account).cloned();
                let key = target.key();
                let Some(account) = account else {
                    self.poll_finished(&tracker);
                    continue;
                };
                if !lock(&self.in_flight).insert(key.clone()) {
                    self.metrics
                        .polls_skipped_total
                        .with_label_values(&[target.instance.cloud.as_str()])
                        .inc();
                    tracing::debug!(%target, "previous poll still running; skipped this round");
                    self.poll_finished(&tracker);
                    continue;
                }
                let this = self.clone();
                let target = target.clone();
                let tracker = tracker.clone();
                tasks.spawn(async move {
                    let _ = this.poll_group(&target, &account).await;
                    lock(&this.in_flight).remove(&key);
                    this.poll_finished(&tracker);
                });
            }
            lock(&self.estimator).forget_old(self.clock.now());
            round += 1;
            round_start += length;
            let now = self.clock.now();
            if round_start < now {
                let behind = now.duration_since(round_start).unwrap_or_default();
                tracing::warn!(
                    behind_ms = behind.as_millis() as u64,
                    "poll round overran its interval; starting the next one now"
                );
                round_start = now;
            }
            if !self.wait_until(round_start, &mut shutdown).await {
                break;
            }
        }
        let grace = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        });
        if grace.await.is_err() {
            tracing::warn!("in-flight polls did not finish within the shutdown grace period");
        }
    }

    /// Counts one poll of a round as finished; the last one closes the round.
    fn poll_finished(&self, tracker: &RoundTracker) {
        let done = {
            let mut remaining = lock(&tracker.remaining);
            *remaining = remaining.saturating_sub(1);
            *remaining == 0
        };
        if done {
            self.round_done(tracker);
        }
    }

    fn round_done(&self, tracker: &RoundTracker) {
        let took = self
            .clock
            .now()
            .duration_since(tracker.start)
            .unwrap_or_default();
        self.metrics
            .poll_round_duration_seconds
            .set(took.as_secs_f64());
        if tracker.first {
            self.store.mark_ready();
            tracing::info!(
                seconds = took.as_secs_f64(),
                "first poll round complete; ready"
            );
        }
    }

    /// Refreshes discovery every `discovery_interval`, or at once after a reload.
    async fn discovery_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let interval = self.settings().discovery_interval;
            tokio::select! {
                _ = self.clock.sleep(interval) => {}
                _ = self.rediscover.notified() => {}
                _ = crate::shutdown::stopped(&mut shutdown) => return,
            }
            if self
                .plan()
                .accounts
                .values()
                .any(|a| !a.discovery.is_empty())
            {
                tokio::select! {
                    _ = self.discover_all() => {}
                    _ = crate::shutdown::stopped(&mut shutdown) => return,
                }
            }
        }
    }

    /// Waits until `due` by the clock; `false` if shutdown was requested first.
    async fn wait_until(&self, due: SystemTime, shutdown: &mut watch::Receiver<bool>) -> bool {
        if *shutdown.borrow() {
            return false;
        }
        let Ok(wait) = due.duration_since(self.clock.now()) else {
            return true;
        };
        if wait.is_zero() {
            return true;
        }
        let stopped = tokio::select! {
            _ = self.clock.sleep(wait) => false,
            _ = crate::shutdown::stopped(shutdown) => true,
        };
        !stopped && !*shutdown.borrow()
    }

    /// Budgets, discovery and round fit of every account, for `/metrics`.
    pub fn status(&self) -> Status {
        let plan = self.plan();
        let discovered = lock(&self.discovered);
        let budgets = lock(&self.round_budget);
        Status {
            accounts: plan
                .accounts
                .values()
                .map(|a| {
                    let d = discovered.get(&a.name);
                    AccountStatus {
                        cloud: a.cloud,
                        name: a.name.clone(),
                        budgets: a.budget.states(),
                        round_budget_seconds: budgets.get(&a.name).copied(),
                        discovers: !a.discovery.is_empty(),
                        discovery_last_success: d.and_then(|d| d.last_success),
                        discovered_groups: d
                            .map(|d| {
                                d.instances
                                    .iter()
                                    .map(|(id, (_, g))| (id.clone(), g.len()))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }

    /// The store this scheduler publishes into.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_paced_per_account() {
        use crate::model::InstanceRef;
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
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let rate = |a: &str| if a == "a" { 10.0 } else { 2.0 };
        let at = |v: Vec<(SystemTime, usize)>| -> Vec<(f64, usize)> {
            v.into_iter()
                .map(|(t, i)| (t.duration_since(start).unwrap().as_secs_f64(), i))
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
}

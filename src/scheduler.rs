//! The only timer: polls every consumer group once per `poll_interval` and publishes
//! each result into the store.
//!
//! The first round starts at once (bounded by each account's concurrency); later rounds
//! spread the groups evenly across the interval so requests never burst at its start.
//! A group whose previous poll is still running is skipped for that round. Each poll has
//! a deadline of `request_timeout`, pages and retries included. Failures are logged once
//! per distinct error and summarised while they repeat.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::clock::SharedClock;
use crate::metrics::ExporterMetrics;
use crate::model::{GroupKey, GroupTarget};
use crate::providers::{ErrorKind, Provider, ProviderError};
use crate::store::Store;
use crate::timelag::Estimator;

/// How often a failure that keeps repeating is logged again.
const REPEAT_LOG_EVERY: Duration = Duration::from_secs(600);

/// How long in-flight polls may run on after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Timing of the polls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub poll_interval: Duration,
    /// Deadline of one group's poll.
    pub poll_timeout: Duration,
}

/// A provider and the concurrency limit of its account.
#[derive(Clone)]
pub struct AccountRuntime {
    pub provider: Arc<dyn Provider>,
    pub permits: Arc<Semaphore>,
}

/// What to poll and with which account.
#[derive(Clone, Default)]
pub struct Plan {
    /// Groups in polling order.
    pub targets: Vec<GroupTarget>,
    /// Runtimes by account name.
    pub accounts: HashMap<Arc<str>, AccountRuntime>,
}

/// The outcome of one round of [`Scheduler::poll_all_once`].
#[derive(Debug, Default)]
pub struct RoundReport {
    pub succeeded: usize,
    pub failed: Vec<(GroupTarget, ProviderError)>,
}

struct FailureState {
    signature: (ErrorKind, Option<String>),
    count: u64,
    since: SystemTime,
    last_logged: SystemTime,
}

/// Polls groups and publishes their progress.
pub struct Scheduler {
    clock: SharedClock,
    store: Arc<Store>,
    metrics: Arc<ExporterMetrics>,
    settings: Settings,
    plan: RwLock<Arc<Plan>>,
    estimator: Mutex<Estimator>,
    failures: Mutex<HashMap<GroupKey, FailureState>>,
    in_flight: Mutex<HashSet<GroupKey>>,
    missing: Mutex<HashSet<GroupKey>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scheduler {
    pub fn new(
        clock: SharedClock,
        store: Arc<Store>,
        metrics: Arc<ExporterMetrics>,
        settings: Settings,
        plan: Plan,
    ) -> Arc<Self> {
        store.set_targets(&plan.targets);
        metrics
            .poll_interval_seconds
            .set(settings.poll_interval.as_secs_f64());
        Arc::new(Scheduler {
            clock,
            store,
            metrics,
            settings,
            plan: RwLock::new(Arc::new(plan)),
            estimator: Mutex::new(Estimator::default()),
            failures: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            missing: Mutex::new(HashSet::new()),
        })
    }

    /// The current plan.
    pub fn plan(&self) -> Arc<Plan> {
        self.plan.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the plan; the store drops groups no longer targeted at once.
    pub fn set_plan(&self, plan: Plan) {
        self.store.set_targets(&plan.targets);
        let keys: HashSet<GroupKey> = plan.targets.iter().map(GroupTarget::key).collect();
        lock(&self.missing).retain(|k| keys.contains(k));
        lock(&self.failures).retain(|k, _| keys.contains(k));
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
    }

    /// Polls one group now and publishes the result.
    pub async fn poll_group(
        &self,
        target: &GroupTarget,
        account: &AccountRuntime,
    ) -> Result<(), ProviderError> {
        let _permit = account
            .permits
            .acquire()
            .await
            .expect("account semaphores are never closed");
        let started = Instant::now();
        let deadline = self.clock.now() + self.settings.poll_timeout;
        let result = account
            .provider
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
                if lock(&self.missing).remove(&key) && self.is_targeted(&key) {
                    tracing::info!(%target, "consumer group exists again");
                    self.store.set_targets(&self.plan().targets);
                }
                self.store.record_success(target, progress, at);
                self.note_success(target);
                Ok(())
            }
            Err(err) => {
                if err.kind == ErrorKind::NotFound {
                    if lock(&self.missing).insert(key.clone()) {
                        tracing::warn!(%target, error = %err, "consumer group not found; its series are dropped until it reappears");
                    }
                    self.store.remove(&key);
                } else {
                    self.store.record_failure(target, at);
                    self.note_failure(target, &err, at);
                }
                Err(err)
            }
        }
    }

    fn is_targeted(&self, key: &GroupKey) -> bool {
        self.plan().targets.iter().any(|t| t.key() == *key)
    }

    fn note_failure(&self, target: &GroupTarget, err: &ProviderError, at: SystemTime) {
        let signature = (err.kind, err.code.clone());
        let mut failures = lock(&self.failures);
        match failures.get_mut(&target.key()) {
            Some(state) if state.signature == signature => {
                state.count += 1;
                if at.duration_since(state.last_logged).unwrap_or_default() >= REPEAT_LOG_EVERY {
                    state.last_logged = at;
                    let since = jiff::Timestamp::try_from(state.since)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    tracing::warn!(%target, error = %err, failures = state.count, %since, "poll still failing");
                }
            }
            _ => {
                tracing::warn!(
                    cloud = %target.instance.cloud,
                    account = %target.instance.account,
                    instance_id = %target.instance.instance_id,
                    group = %target.group,
                    kind = %err.kind,
                    code = err.code.as_deref().unwrap_or(""),
                    request_id = err.request_id.as_deref().unwrap_or(""),
                    error = %err,
                    "poll failed"
                );
                failures.insert(
                    target.key(),
                    FailureState {
                        signature,
                        count: 1,
                        since: at,
                        last_logged: at,
                    },
                );
            }
        }
    }

    fn note_success(&self, target: &GroupTarget) {
        if let Some(state) = lock(&self.failures).remove(&target.key()) {
            tracing::info!(%target, failures = state.count, "poll recovered");
        }
    }

    /// Polls every group of the plan once, concurrently within each account's limit.
    pub async fn poll_all_once(self: &Arc<Self>) -> RoundReport {
        let plan = self.plan();
        let mut tasks = JoinSet::new();
        for target in plan.targets.iter().cloned() {
            let Some(account) = plan.accounts.get(&target.instance.account).cloned() else {
                continue;
            };
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

    /// Polls until `shutdown` turns true, then lets in-flight polls finish for up to
    /// [`SHUTDOWN_GRACE`].
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut round = 0u64;
        let mut first_round: Option<JoinSet<()>> = Some(JoinSet::new());
        let mut round_start = self.clock.now();
        'rounds: loop {
            let plan = self.plan();
            let n = plan.targets.len().max(1) as u32;
            let spacing = if round == 0 {
                Duration::ZERO
            } else {
                self.settings.poll_interval / n
            };
            for (i, target) in plan.targets.iter().enumerate() {
                let due = round_start + spacing * i as u32;
                if !self.wait_until(due, &mut shutdown).await {
                    break 'rounds;
                }
                while tasks.try_join_next().is_some() {}
                let Some(account) = plan.accounts.get(&target.instance.account).cloned() else {
                    continue;
                };
                let key = target.key();
                if !lock(&self.in_flight).insert(key.clone()) {
                    tracing::debug!(%target, "previous poll still running; skipped this round");
                    continue;
                }
                let this = self.clone();
                let target = target.clone();
                let task = async move {
                    let _ = this.poll_group(&target, &account).await;
                    lock(&this.in_flight).remove(&key);
                };
                match first_round.as_mut() {
                    Some(set) => {
                        set.spawn(task);
                    }
                    None => {
                        tasks.spawn(task);
                    }
                }
            }
            if let Some(mut set) = first_round.take() {
                let store = self.store.clone();
                tasks.spawn(async move {
                    while set.join_next().await.is_some() {}
                    store.mark_ready();
                    tracing::info!("first poll round complete; ready");
                });
            }
            lock(&self.estimator).forget_old(self.clock.now());
            round += 1;
            round_start += self.settings.poll_interval;
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

    /// The store this scheduler publishes into.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

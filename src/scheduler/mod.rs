//! The only timer: polls every consumer group once per `poll_interval`, refreshes
//! discovery every `discovery_interval`, and publishes results into the store.
//!
//! There is one round engine. A round plans when each group is due ([`round::schedule`]):
//! the first starts at once (paced by each account's budget and concurrency), later ones
//! spread the groups evenly across the interval, so requests never burst at its start. A
//! group whose previous poll is still running is skipped for that round. Each poll has a
//! deadline of `poll_timeout`, pages and retries included. When a round cannot fit its
//! interval under an account's budget, a warning says which interval would. The daemon
//! ([`Scheduler::run`]) runs rounds back to back with discovery on its own timer; `once`
//! ([`Scheduler::run_once`]) runs the same discovery and one round, then waits for it.
//!
//! Time comes from the shared [`Clock`] only: on a paused tokio runtime all of it, polls,
//! pacing, retries and discovery, runs on virtual time. This module knows no Prometheus
//! type: it reports through [`PollObserver`], which `metrics` implements.

mod failures;
mod retention;
pub mod round;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use kcle_clock::{Clock, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::cardinality::{Exposure, Policy, Suppressed, Tally, top_partitions};
use crate::derive;
use crate::discovery::{self, Discovered, Rules};
use crate::model::{Cloud, GroupKey, GroupTarget, InstanceRef as InstanceRefKey};
use crate::providers::budget::{Budget, BudgetState};
use crate::providers::{self, ErrorKind, Provider, ProviderError};
use crate::store::{Polled, Store};
use crate::timelag::{self, Estimator};
use crate::verdict::Evaluator;
use failures::FailureLog;
use retention::RetentionTable;
pub use retention::TopicRetention;
pub use round::RoundReport;
use round::{Round, schedule};

/// How long in-flight polls may run on after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Shortest deadline of a discovery pass (listings of many pages need more than a poll).
const MIN_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the time-lag history is written to `state_dir` (and once more at shutdown).
pub const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(300);

/// Timing of polls and discovery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub poll_interval: Duration,
    /// Deadline of one group's poll, every page and retry included.
    pub poll_timeout: Duration,
    pub discovery_interval: Duration,
    /// Polls per verdict window.
    pub verdict_window: usize,
    /// Which series the cardinality controls leave out.
    pub cardinality: Policy,
}

/// What the scheduler reports as it works; `metrics` implements it, so that this module
/// never touches Prometheus types.
pub trait PollObserver: Send + Sync {
    /// The configured interval is now `interval`.
    fn interval_set(&self, interval: Duration);
    /// One poll of a group of `cloud` ended (well or not) after `took`.
    fn poll_finished(&self, cloud: Cloud, took: Duration);
    /// A poll was skipped because the group's previous one was still running.
    fn poll_skipped(&self, cloud: Cloud);
    /// A round's last poll ended `took` after the round started.
    fn round_finished(&self, took: Duration);
    /// A listing of the account's discovery failed.
    fn discovery_failed(&self, cloud: Cloud, account: &str);
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
    /// Whether to read the produce time of the message at lagging committed offsets
    /// (`time_lag.probe`), where the cloud can.
    pub probe: bool,
    /// Whether to read how long the polled topics keep messages (`read_retention`).
    pub read_retention: bool,
}

impl AccountRuntime {
    /// The provider of `region`.
    pub fn provider(&self, region: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(region).cloned()
    }

    /// The budget of the account's poll action, requests per second.
    fn poll_rate(&self) -> f64 {
        self.budget.rate(providers::profile(self.cloud).poll_action)
    }
}

/// What to poll: the groups listed in the configuration and the accounts (whose
/// discovery rules add more).
#[derive(Clone, Default)]
pub struct PollPlan {
    /// Groups listed explicitly, in configuration order.
    pub listed: Vec<GroupTarget>,
    pub accounts: BTreeMap<Arc<str>, AccountRuntime>,
}

impl PollPlan {
    /// Whether any account discovers instances or groups.
    pub fn discovers(&self) -> bool {
        self.accounts.values().any(|a| !a.discovery.is_empty())
    }
}

/// What the scheduler knows that `/metrics` shows: budgets, discovery, round fit, the
/// retention of the polled topics.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub accounts: Vec<AccountStatus>,
    /// The retention of every polled topic whose retention is known (one list, shared by
    /// the scrapes in flight).
    pub retention: Arc<[TopicRetention]>,
    /// Series the cardinality controls leave out, per instance and reason.
    pub suppressed: Vec<Suppressed>,
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

/// A round as planned: its tracker, what it polls, when each target is due (index into
/// `targets`) and how long it lasts.
struct PlannedRound {
    round: Arc<Round>,
    plan: Arc<PollPlan>,
    targets: Arc<Vec<GroupTarget>>,
    due: Vec<(Instant, usize)>,
    length: Duration,
}

/// Polls groups and publishes their progress.
pub struct Scheduler {
    clock: Clock,
    store: Arc<Store>,
    observer: Arc<dyn PollObserver>,
    settings: RwLock<Settings>,
    plan: RwLock<Arc<PollPlan>>,
    targets: RwLock<Arc<Vec<GroupTarget>>>,
    /// The keys of `targets`, to tell in a round whether a group is still polled.
    target_keys: RwLock<Arc<HashSet<GroupKey>>>,
    discovered: Mutex<HashMap<Arc<str>, Discovered>>,
    round_budget: Mutex<HashMap<Arc<str>, f64>>,
    rediscover: Notify,
    estimator: Mutex<Estimator>,
    verdicts: Mutex<Evaluator>,
    /// Where the time-lag history is saved, if anywhere.
    state_dir: Option<std::path::PathBuf>,
    failures: FailureLog,
    in_flight: Mutex<HashSet<GroupKey>>,
    missing: Mutex<HashSet<GroupKey>>,
    rounds: watch::Sender<u64>,
    /// How long the polled topics keep messages, as last read.
    retention: Mutex<RetentionTable>,
    /// Each instance's (group, partition) pairs and suppressed series.
    tally: Mutex<Tally>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Scheduler {
    /// A scheduler; with `state_dir`, the time-lag history saved there is loaded.
    pub fn new(
        clock: Clock,
        store: Arc<Store>,
        observer: Arc<dyn PollObserver>,
        settings: Settings,
        plan: PollPlan,
        state_dir: Option<std::path::PathBuf>,
    ) -> Arc<Self> {
        let estimator = state_dir
            .as_deref()
            .map(timelag::load_or_start)
            .unwrap_or_default();
        let scheduler = Arc::new(Scheduler {
            clock,
            store,
            observer,
            settings: RwLock::new(settings),
            plan: RwLock::new(Arc::new(PollPlan::default())),
            targets: RwLock::new(Arc::new(Vec::new())),
            target_keys: RwLock::new(Arc::new(HashSet::new())),
            discovered: Mutex::new(HashMap::new()),
            round_budget: Mutex::new(HashMap::new()),
            rediscover: Notify::new(),
            estimator: Mutex::new(estimator),
            verdicts: Mutex::new(Evaluator::new(settings.verdict_window)),
            state_dir,
            failures: FailureLog::default(),
            in_flight: Mutex::new(HashSet::new()),
            missing: Mutex::new(HashSet::new()),
            rounds: watch::channel(0).0,
            retention: Mutex::new(RetentionTable::default()),
            tally: Mutex::new(Tally::default()),
        });
        scheduler.install(plan, settings);
        scheduler
    }

    /// The current plan.
    pub fn plan(&self) -> Arc<PollPlan> {
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

    /// How many rounds have finished (every poll of them ended); changes as they do.
    pub fn rounds_finished(&self) -> watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// Replaces the plan and settings (a reload). Discovered groups of accounts that
    /// still exist are kept until the next discovery pass, which starts at once. A round
    /// in progress goes on with the new targets: groups removed are not polled any more.
    pub fn set_plan(&self, plan: PollPlan, settings: Settings) {
        self.install(plan, settings);
        self.rediscover.notify_one();
    }

    fn install(&self, plan: PollPlan, settings: Settings) {
        let old = std::mem::replace(
            &mut *self.settings.write().unwrap_or_else(|e| e.into_inner()),
            settings,
        );
        if old.verdict_window != settings.verdict_window {
            *lock(&self.verdicts) = Evaluator::new(settings.verdict_window);
        }
        self.observer.interval_set(settings.poll_interval);
        lock(&self.discovered).retain(|name, _| {
            plan.accounts
                .get(name)
                .is_some_and(|a| !a.discovery.is_empty())
        });
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
        self.refresh_targets();
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
        self.failures.retain(|k| keys.contains(k));
        lock(&self.verdicts).retain(|k| keys.contains(k));
        lock(&self.tally).retain(|k| keys.contains(k));
        *self.targets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(targets);
        *self.target_keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
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
        let settings = self.settings();
        let provider_for = |region: &str| account.provider(region);
        let pass = discovery::Pass {
            cloud: account.cloud,
            account: account.name.clone(),
            provider_for: &provider_for,
            deadline: self.clock.instant() + settings.poll_timeout.max(MIN_DISCOVERY_TIMEOUT),
            now: self.clock.now(),
        };
        let (next, errors) = discovery::discover(&account.discovery, &previous, &pass).await;
        for e in &errors {
            self.observer.discovery_failed(account.cloud, &account.name);
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
    async fn poll_group(
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
        let started = self.clock.instant();
        let deadline = started + self.settings().poll_timeout;
        let result = provider
            .group_progress(&target.instance, &target.group, deadline)
            .await;
        let cloud = target.instance.cloud;
        self.observer
            .poll_finished(cloud, self.clock.instant() - started);
        let at = self.clock.now();
        let key = target.key();
        match result {
            Ok(mut progress) => {
                lock(&self.estimator).enrich(
                    cloud,
                    &target.instance.instance_id,
                    &target.group,
                    &mut progress,
                    at,
                );
                if lock(&self.missing).remove(&key) {
                    tracing::info!(%target, "consumer group exists again");
                    self.store.set_targets(&self.targets());
                }
                // Whether the group has members: from this answer, else as last read.
                let info = progress.info.clone().map(Arc::new).or_else(|| {
                    self.store
                        .get(&key)
                        .and_then(|e| e.info.as_ref().map(|(i, _)| i.clone()))
                });
                let members = info.as_ref().and_then(|i| {
                    i.members.map(|m| m > 0).or_else(|| {
                        (i.state != crate::model::GroupState::Unknown)
                            .then(|| i.state.has_active_members())
                    })
                });
                let observed = lock(&self.verdicts).observe(
                    &key,
                    &progress,
                    members,
                    kcle_clock::unix_millis(at),
                );
                let retention: Vec<Option<Duration>> = {
                    let table = lock(&self.retention);
                    let id = &target.instance.instance_id;
                    progress
                        .topics
                        .iter()
                        .map(|t| table.get(cloud, id, &t.topic))
                        .collect()
                };
                let exposure = self.exposure(&key, &progress, info.as_deref());
                let derived = derive::derive(
                    &progress,
                    &derive::Inputs {
                        consume_rates: &observed.consume_rates,
                        retention: &retention,
                        exposure: &exposure,
                    },
                );
                lock(&self.tally).suppress(&key, derived.suppressed);
                self.store.record_poll(
                    target,
                    Polled {
                        progress,
                        verdict: Some(observed.verdict),
                        at,
                        derived,
                    },
                );
                self.failures.recovered(target);
                Ok(())
            }
            Err(err) if err.kind == ErrorKind::NotFound => {
                lock(&self.tally).retain(|k| *k != key);
                if lock(&self.missing).insert(key.clone()) {
                    tracing::warn!(%target, error = %err, "consumer group not found; its series are dropped until it reappears");
                }
                self.store.remove(&key);
                Err(err)
            }
            Err(err) => {
                self.store.record_failure(target, at);
                self.failures.failed(target, &err, self.clock.instant());
                Err(err)
            }
        }
    }

    /// What the cardinality controls let through of a group's poll: nothing when its state
    /// is skipped, its top partitions by lag when its instance is over the limit (counting
    /// this poll), else everything.
    fn exposure(
        &self,
        key: &GroupKey,
        progress: &crate::model::GroupProgress,
        info: Option<&crate::model::GroupInfo>,
    ) -> Exposure {
        let policy = self.settings().cardinality;
        let lag: i64 = progress.topics.iter().map(|t| t.lag()).sum();
        let skipped = policy.skips(info, lag);
        let pairs = if skipped {
            0
        } else {
            progress.partition_count()
        };
        let over = lock(&self.tally).count(key, pairs, policy.max_partition_series);
        Exposure {
            skipped,
            shown: if over && !skipped {
                top_partitions(progress, policy.top_partitions)
            } else {
                Vec::new()
            },
        }
    }

    /// Checks whether each account's next round fits its interval under its budget,
    /// records the seconds it needs, and warns when it does not fit.
    fn check_round_budget(&self, plan: &PollPlan, targets: &[GroupTarget], interval: Duration) {
        let mut requests: HashMap<&str, f64> = HashMap::new();
        for t in targets {
            let last = self.store.get(&t.key());
            let progress = last
                .as_ref()
                .and_then(|e| e.last_good.as_ref())
                .map(|p| &p.progress);
            let pages = (providers::profile(t.instance.cloud).requests_per_poll)(progress);
            *requests.entry(&t.instance.account).or_default() += pages as f64;
        }
        let mut budgets = lock(&self.round_budget);
        for account in plan.accounts.values() {
            let n = requests.get(&*account.name).copied().unwrap_or(0.0);
            let action = providers::profile(account.cloud).poll_action;
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

    /// Plans round `number` starting at `start`: checks its fit and flushes the failure
    /// summaries, as every round does.
    fn plan_round(&self, number: u64, start: Instant) -> PlannedRound {
        let plan = self.plan();
        let targets = self.targets();
        let interval = self.settings().poll_interval;
        self.check_round_budget(&plan, &targets, interval);
        self.failures.flush(self.clock.instant());
        let round = Arc::new(Round::new(number, start, targets.len()));
        if targets.is_empty() {
            self.round_done(&round);
        }
        let rate_of = |account: &str| plan.accounts.get(account).map_or(1.0, |a| a.poll_rate());
        let (due, length) = schedule(start, interval, &targets, rate_of, round.is_first());
        PlannedRound {
            round,
            plan,
            targets,
            due,
            length,
        }
    }

    /// Runs round `number`: starts each group's poll when it is due (skipping a group
    /// whose previous poll still runs), the polls themselves in `tasks`. Returns the round
    /// and its length once every poll has started, or `None` if shutdown came first.
    async fn run_round(
        self: &Arc<Self>,
        number: u64,
        start: Instant,
        tasks: &mut JoinSet<()>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<(Arc<Round>, Duration)> {
        let PlannedRound {
            round,
            plan,
            targets,
            due: due_times,
            length,
        } = self.plan_round(number, start);
        self.read_group_infos(&plan, &targets, tasks);
        for (due, i) in due_times {
            if !self.wait_until(due, shutdown).await {
                return None;
            }
            while tasks.try_join_next().is_some() {}
            let target = targets[i].clone();
            let key = target.key();
            // A reload or discovery since the round began may have removed the group.
            let account = plan.accounts.get(&target.instance.account).cloned();
            let targeted = read(&self.target_keys).contains(&key);
            let (Some(account), true) = (account, targeted) else {
                self.poll_ended(&round, None);
                continue;
            };
            if !lock(&self.in_flight).insert(key.clone()) {
                self.observer.poll_skipped(target.instance.cloud);
                tracing::debug!(%target, "previous poll still running; skipped this round");
                self.poll_ended(&round, None);
                continue;
            }
            let this = self.clone();
            let round = round.clone();
            tasks.spawn(async move {
                let result = this.poll_group(&target, &account).await;
                lock(&this.in_flight).remove(&key);
                this.poll_ended(&round, Some(result.map_err(|e| (target, e))));
            });
        }
        lock(&self.estimator).forget_old(self.clock.now());
        Some((round, length))
    }

    /// Reads the state and membership of the round's groups on clouds that report them
    /// apart from the progress (batched, one task per batch, paced by the budget).
    fn read_group_infos(
        self: &Arc<Self>,
        plan: &PollPlan,
        targets: &[GroupTarget],
        tasks: &mut JoinSet<()>,
    ) {
        let mut by_instance: BTreeMap<&InstanceRefKey, Vec<&GroupTarget>> = BTreeMap::new();
        for t in targets {
            if providers::profile(t.instance.cloud)
                .group_info_batch
                .is_some()
            {
                by_instance.entry(&t.instance).or_default().push(t);
            }
        }
        for (instance, groups) in by_instance {
            let Some(account) = plan.accounts.get(&instance.account) else {
                continue;
            };
            let Some(provider) = account.provider(&instance.region) else {
                continue;
            };
            let batch = providers::profile(instance.cloud)
                .group_info_batch
                .unwrap_or(1)
                .max(1);
            for chunk in groups.chunks(batch) {
                let chunk: Vec<GroupTarget> = chunk.iter().map(|t| (*t).clone()).collect();
                let (this, provider) = (self.clone(), provider.clone());
                tasks.spawn(async move {
                    let names: Vec<&str> = chunk.iter().map(|t| &*t.group).collect();
                    let deadline = this.clock.instant() + this.settings().poll_timeout;
                    match provider
                        .group_infos(&chunk[0].instance, &names, deadline)
                        .await
                    {
                        Ok(infos) => {
                            let at = this.clock.now();
                            for (group, info) in infos {
                                if let Some(t) = chunk.iter().find(|t| *t.group == *group) {
                                    this.store.record_info(t, info, at);
                                }
                            }
                        }
                        Err(e) => {
                            this.failures
                                .state_read_failed(&chunk[0], &e, this.clock.instant())
                        }
                    }
                });
            }
        }
    }

    /// Reads the produce time of the messages at lagging committed offsets, for accounts
    /// with `time_lag.probe`, within the action's budget: the partitions whose estimate is
    /// least certain (then largest lag) first; a probe is reused until the offset moves.
    async fn probe_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        const PER_INSTANCE: usize = 4;
        loop {
            let plan = self.plan();
            let targets = self.targets();
            let mut instances: Vec<&Arc<InstanceRefKey>> = targets
                .iter()
                .filter(|t| {
                    plan.accounts
                        .get(&t.instance.account)
                        .is_some_and(|a| a.probe)
                        && providers::profile(t.instance.cloud).probe_action.is_some()
                })
                .map(|t| &t.instance)
                .collect();
            instances.sort();
            instances.dedup();
            let mut probed = 0;
            for instance in instances {
                let Some(provider) = plan
                    .accounts
                    .get(&instance.account)
                    .and_then(|a| a.provider(&instance.region))
                else {
                    continue;
                };
                let candidates = lock(&self.estimator).probe_candidates(
                    instance.cloud,
                    &instance.instance_id,
                    PER_INSTANCE,
                );
                for c in candidates {
                    let deadline = self.clock.instant() + self.settings().poll_timeout;
                    let read = tokio::select! {
                        r = provider.message_time(instance, &c.topic, c.partition, c.offset, deadline) => r,
                        _ = crate::signals::stopped(&mut shutdown) => return,
                    };
                    probed += 1;
                    match read {
                        Ok(at) => lock(&self.estimator).record_probe(
                            instance.cloud,
                            &instance.instance_id,
                            &c.topic,
                            c.partition,
                            c.offset,
                            at,
                        ),
                        Err(e) => tracing::debug!(
                            instance = %instance.instance_id, topic = %c.topic,
                            partition = c.partition, error = %e, "probe failed"
                        ),
                    }
                }
            }
            if probed == 0 {
                let rest = self.settings().poll_interval;
                tokio::select! {
                    _ = self.clock.sleep(rest) => {}
                    _ = crate::signals::stopped(&mut shutdown) => return,
                }
            }
        }
    }

    /// Writes the time-lag history to `state_dir` (on a blocking thread).
    async fn save_state(self: &Arc<Self>) {
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let this = self.clone();
        let saved = tokio::task::spawn_blocking(move || lock(&this.estimator).save(&dir)).await;
        match saved {
            Ok(Ok(n)) => tracing::debug!(partitions = n, "time-lag history saved"),
            Ok(Err(e)) => tracing::warn!(error = %e, "saving the time-lag history failed"),
            Err(e) => tracing::warn!(error = %e, "saving the time-lag history failed"),
        }
    }

    /// `once`: discovery (when any account discovers), then one round, waiting for
    /// every poll of it.
    pub async fn run_once(self: &Arc<Self>) -> RoundReport {
        if self.plan().discovers() {
            self.discover_all().await;
        }
        let (_never, mut shutdown) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let start = self.clock.instant();
        let Some((round, _)) = self.run_round(0, start, &mut tasks, &mut shutdown).await else {
            return RoundReport::default();
        };
        let report = round.report().await;
        while tasks.join_next().await.is_some() {}
        report
    }

    /// The daemon: rounds back to back until `shutdown` turns true, discovery on its own
    /// timer, then lets in-flight polls finish for up to [`SHUTDOWN_GRACE`].
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        if self.plan().discovers() {
            // The first round should include discovered groups.
            tokio::select! {
                _ = self.discover_all() => {}
                _ = crate::signals::stopped(&mut shutdown) => return,
            }
        }
        tasks.spawn(self.clone().discovery_loop(shutdown.clone()));
        tasks.spawn(self.clone().probe_loop(shutdown.clone()));
        tasks.spawn(self.clone().retention_loop(shutdown.clone()));
        let mut last_save = self.clock.instant();
        let mut number = 0u64;
        let mut round_start = self.clock.instant();
        loop {
            let Some((_, length)) = self
                .run_round(number, round_start, &mut tasks, &mut shutdown)
                .await
            else {
                break;
            };
            number += 1;
            round_start += length;
            if self.clock.instant() - last_save >= STATE_SAVE_INTERVAL {
                self.save_state().await;
                last_save = self.clock.instant();
            }
            let now = self.clock.instant();
            if round_start < now {
                tracing::warn!(
                    behind_ms = (now - round_start).as_millis() as u64,
                    "poll round overran its interval; starting the next one now"
                );
                round_start = now;
            }
            if !self.wait_until(round_start, &mut shutdown).await {
                break;
            }
        }
        let grace = self
            .clock
            .timeout_at(self.clock.instant() + SHUTDOWN_GRACE, async {
                while tasks.join_next().await.is_some() {}
            });
        if grace.await.is_err() {
            tracing::warn!("in-flight polls did not finish within the shutdown grace period");
        }
        self.save_state().await;
    }

    /// Counts one poll of a round as ended; the last one closes the round.
    fn poll_ended(&self, round: &Round, outcome: Option<Result<(), (GroupTarget, ProviderError)>>) {
        if round.finished(outcome) {
            self.round_done(round);
        }
    }

    fn round_done(&self, round: &Round) {
        let took = self.clock.instant() - round.start;
        self.observer.round_finished(took);
        if round.is_first() {
            self.store.mark_ready();
            tracing::info!(
                seconds = took.as_secs_f64(),
                "first poll round complete; ready"
            );
        }
        self.rounds.send_modify(|n| *n += 1);
    }

    /// Refreshes discovery every `discovery_interval`, or at once after a reload.
    async fn discovery_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let interval = self.settings().discovery_interval;
            tokio::select! {
                _ = self.clock.sleep(interval) => {}
                _ = self.rediscover.notified() => {}
                _ = crate::signals::stopped(&mut shutdown) => return,
            }
            if self.plan().discovers() {
                tokio::select! {
                    _ = self.discover_all() => {}
                    _ = crate::signals::stopped(&mut shutdown) => return,
                }
            }
        }
    }

    /// Waits until `due` by the clock; `false` if shutdown was requested first.
    async fn wait_until(&self, due: Instant, shutdown: &mut watch::Receiver<bool>) -> bool {
        if *shutdown.borrow() {
            return false;
        }
        if due <= self.clock.instant() {
            return true;
        }
        let stopped = tokio::select! {
            _ = self.clock.sleep_until(due) => false,
            _ = crate::signals::stopped(shutdown) => true,
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
            retention: self.retention(),
            suppressed: lock(&self.tally).suppressed(),
        }
    }

    /// The store this scheduler publishes into.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

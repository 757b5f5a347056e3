//! The time-lag accuracy harness: traffic patterns on both simulated clouds, the daemon
//! loop polling them for hours of virtual time (optionally restarted half-way, with or
//! without `state_dir`), and every estimate compared with the true produce time of the
//! message at the committed offset, which the simulator knows exactly.
//!
//! Used by `tests/timelag_accuracy.rs` (bounds that must hold) and `benches/timelag.rs`
//! (the error table in the README).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kafka_cloud_lag_exporter::exporter::Exporter;
use kafka_cloud_lag_exporter::model::{Cloud, Status, TimeLag, TimeLagMethod};
use kcle_clock::{Clock, unix_millis};
use kcle_sim::SimSettings;
use kcle_sim::world::{
    InstanceStatus, SimCommit, SimGroup, SimInstance, SimPartition, SimTopic, World, instance_id,
};
use tokio::sync::watch;

use super::{T0_SECS, start_environment_with_world};

const T0_MS: i64 = T0_SECS as i64 * 1000;
const SECOND: i64 = 1000;
const HOUR: i64 = 3600 * SECOND;

/// A traffic pattern: one single-partition topic and one group reading it, both named
/// after the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// 10 messages/s, a consumer exactly keeping pace 30 s behind.
    Steady,
    /// 6,000 messages within one second every 10 minutes, a consumer taking 30/s.
    Bursts,
    /// Production ramping from 1/s to 100/s over two hours, a consumer taking 60/s.
    Ramp,
    /// A backlog produced 4 h to 3 h before the start, nothing since; the consumer stopped
    /// half-way through it.
    IdleBacklog,
    /// 10 messages/s, the consumer stopped 100 s behind at the start.
    Stopped,
    /// 10 messages/s, a consumer taking 7/s.
    Slow,
    /// 10 messages/s, a consumer taking 30/s through a 20,000-message backlog.
    CatchingUp,
}

impl Pattern {
    pub const ALL: [Pattern; 7] = [
        Pattern::Steady,
        Pattern::Bursts,
        Pattern::Ramp,
        Pattern::IdleBacklog,
        Pattern::Stopped,
        Pattern::Slow,
        Pattern::CatchingUp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Steady => "steady",
            Pattern::Bursts => "bursts",
            Pattern::Ramp => "ramp",
            Pattern::IdleBacklog => "idle-backlog",
            Pattern::Stopped => "stopped",
            Pattern::Slow => "slow",
            Pattern::CatchingUp => "catching-up",
        }
    }

    fn from_name(name: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The partition and the group's commit, as of the exporter's start at `T0_MS`.
    fn build(self) -> (SimPartition, SimGroup) {
        const BASE: i64 = 1_000_000;
        let linear = |rate: f64| SimPartition {
            anchor_ms: T0_MS,
            anchor_end: BASE,
            produce_per_sec: rate,
            earliest: 0,
            curve: Vec::new(),
        };
        let group = |members: u32, rate: f64, offset: i64, anchor_ms: i64| SimGroup {
            members,
            consume_per_sec: rate,
            commits: BTreeMap::from([(
                self.name().to_string(),
                vec![SimCommit {
                    anchor_ms,
                    anchor_offset: Some(offset),
                }],
            )]),
        };
        match self {
            Pattern::Steady => (linear(10.0), group(1, 10.0, BASE - 300, T0_MS)),
            Pattern::Bursts => {
                // Bursts 17 s past every tenth minute, so that they fall between polls.
                let mut curve = vec![(T0_MS - 600 * SECOND, BASE)];
                let mut end = BASE;
                for k in 0..40 {
                    let t = T0_MS - 600 * SECOND + k * 600 * SECOND + 17 * SECOND;
                    curve.push((t, end));
                    end += 6_000;
                    curve.push((t + SECOND, end));
                }
                let partition = SimPartition {
                    anchor_ms: T0_MS,
                    anchor_end: BASE,
                    produce_per_sec: 0.0,
                    earliest: 0,
                    curve,
                };
                (partition, group(1, 30.0, BASE, T0_MS - 600 * SECOND))
            }
            Pattern::Ramp => {
                // 1/s until an hour after the start, then the rate climbs linearly to
                // 100/s over two hours and stays; knots every minute approximate it.
                let start = T0_MS - HOUR;
                let ramp_from = T0_MS + HOUR;
                let ramp_to = T0_MS + 3 * HOUR;
                let rate_at = |t: i64| -> f64 {
                    if t <= ramp_from {
                        1.0
                    } else if t >= ramp_to {
                        100.0
                    } else {
                        1.0 + 99.0 * (t - ramp_from) as f64 / (ramp_to - ramp_from) as f64
                    }
                };
                let mut curve = vec![(start, BASE)];
                let mut produced = BASE as f64;
                let mut t = start;
                while t < T0_MS + 8 * HOUR {
                    let next = t + 60 * SECOND;
                    produced += (rate_at(t) + rate_at(next)) / 2.0 * 60.0;
                    curve.push((next, produced.round() as i64));
                    t = next;
                }
                let partition = SimPartition {
                    anchor_ms: T0_MS,
                    anchor_end: BASE,
                    produce_per_sec: 1.0,
                    earliest: 0,
                    curve,
                };
                (partition, group(1, 60.0, BASE, start))
            }
            Pattern::IdleBacklog => {
                let partition = SimPartition {
                    anchor_ms: T0_MS,
                    anchor_end: BASE,
                    produce_per_sec: 0.0,
                    earliest: 0,
                    curve: vec![(T0_MS - 4 * HOUR, BASE), (T0_MS - 3 * HOUR, BASE + 36_000)],
                };
                (partition, group(0, 10.0, BASE + 18_000, T0_MS - 3 * HOUR))
            }
            Pattern::Stopped => (linear(10.0), group(0, 10.0, BASE - 1_000, T0_MS)),
            Pattern::Slow => (linear(10.0), group(1, 7.0, BASE - 100, T0_MS)),
            Pattern::CatchingUp => (linear(10.0), group(1, 30.0, BASE - 20_000, T0_MS)),
        }
    }
}

/// A world with one instance per cloud, each holding every pattern.
pub fn pattern_world() -> World {
    let mut world = World::default();
    for (cloud, region) in [
        (Cloud::Alibaba, "cn-hangzhou"),
        (Cloud::Tencent, "ap-guangzhou"),
    ] {
        let mut inst = SimInstance {
            cloud,
            id: instance_id(cloud, 1),
            name: format!("accuracy-{}", cloud.as_str()),
            region: region.to_string(),
            status: InstanceStatus::Running,
            topics: BTreeMap::new(),
            groups: BTreeMap::new(),
            retention_hours: None,
        };
        for pattern in Pattern::ALL {
            let (partition, group) = pattern.build();
            inst.topics.insert(
                pattern.name().to_string(),
                SimTopic {
                    partitions: vec![partition],
                    timestamps_known: true,
                    retention_ms: None,
                },
            );
            inst.groups.insert(pattern.name().to_string(), group);
        }
        world.instances.insert((cloud, inst.id.clone()), inst);
    }
    world
}

/// How a run treats the exporter half-way through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Restart {
    /// One process for the whole run.
    None,
    /// Restarted half-way, without `state_dir`: the history starts empty again.
    Fresh,
    /// Restarted half-way with `state_dir`: the history saved at shutdown is read back.
    WithState,
}

/// One way of running the exporter over the patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variant {
    pub restart: Restart,
    /// `time_lag: {probe: true}` on the Tencent account.
    pub probe: bool,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant {
            restart: Restart::None,
            probe: false,
        },
        Variant {
            restart: Restart::Fresh,
            probe: false,
        },
        Variant {
            restart: Restart::WithState,
            probe: false,
        },
        Variant {
            restart: Restart::None,
            probe: true,
        },
    ];

    pub fn name(self) -> &'static str {
        match (self.restart, self.probe) {
            (Restart::None, false) => "one process",
            (Restart::Fresh, false) => "restart, no state_dir",
            (Restart::WithState, false) => "restart, state_dir",
            (Restart::None, true) => "one process, probe",
            (Restart::Fresh, true) => "restart, no state_dir, probe",
            (Restart::WithState, true) => "restart, state_dir, probe",
        }
    }
}

/// One estimate and the truth it is compared with.
#[derive(Clone, Debug)]
pub struct Sample {
    pub cloud: Cloud,
    pub pattern: Pattern,
    /// Milliseconds since the run started.
    pub at_ms: i64,
    pub committed: i64,
    pub log_end: i64,
    /// `at − produce time of the message at the committed offset`, seconds; 0 when
    /// caught up.
    pub truth_seconds: f64,
    pub estimate: TimeLag,
}

impl Sample {
    pub fn error(&self) -> f64 {
        self.estimate.seconds - self.truth_seconds
    }

    /// Whether the truth lies within the bounds the estimate claims (to the millisecond
    /// the facts are measured in).
    pub fn bracketed(&self) -> bool {
        const MS: f64 = 0.001;
        self.truth_seconds >= self.estimate.min_seconds - MS
            && self
                .estimate
                .max_seconds
                .is_none_or(|max| self.truth_seconds <= max + MS)
    }
}

/// What a run produced.
pub struct Run {
    pub samples: Vec<Sample>,
    /// Polls after which a partition with a committed offset had no time lag at all.
    pub missing: Vec<(Cloud, Pattern, i64)>,
    /// The last verdict of each pattern's group.
    pub verdicts: BTreeMap<(Cloud, Pattern), Status>,
}

impl Run {
    /// Samples of one cloud and pattern.
    pub fn of(&self, cloud: Cloud, pattern: Pattern) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.cloud == cloud && s.pattern == pattern)
    }
}

/// The daemon loop of one exporter process, running until stopped.
struct Process {
    exporter: std::sync::Arc<Exporter>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Process {
    fn start(exporter: std::sync::Arc<Exporter>) -> Process {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(exporter.scheduler.clone().run(stopped));
        Process {
            exporter,
            stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.expect("daemon loop ends");
    }
}

/// Runs `variant` over the patterns for `duration` of virtual time at `poll_interval`.
/// Must run on a paused tokio runtime.
pub async fn run(variant: Variant, duration: Duration, poll_interval: Duration) -> Run {
    let clock = Clock::virtual_at_unix(T0_SECS);
    let mut env = start_environment_with_world(
        pattern_world(),
        SimSettings::default(),
        clock.clone(),
        poll_interval,
    )
    .await;
    let state_dir: Option<PathBuf> = (variant.restart == Restart::WithState).then(|| {
        let dir = std::env::temp_dir().join(format!(
            "kcle-accuracy-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("state dir");
        dir
    });
    env.config.state_dir = state_dir.clone();
    if variant.probe {
        for account in &mut env.config.accounts {
            if account.cloud == Cloud::Tencent {
                account.time_lag.probe = true;
            }
        }
    }
    env.config
        .validate(std::path::Path::new("accuracy.yaml"))
        .expect("the accuracy config is valid");
    let new_process =
        || Process::start(Exporter::new(env.config.clone(), env.runtime(&clock), None));

    let end = clock.now() + duration;
    let restart_at = (variant.restart != Restart::None).then(|| clock.now() + duration / 2);
    let mut process = new_process();
    let mut run = Run {
        samples: Vec::new(),
        missing: Vec::new(),
        verdicts: BTreeMap::new(),
    };
    let mut seen: HashMap<(Cloud, String), SystemTime> = HashMap::new();
    let mut restarted = false;
    loop {
        let mut finished = process.exporter.scheduler.rounds_finished();
        let n = *finished.borrow_and_update();
        finished
            .wait_for(|r| *r > n)
            .await
            .expect("the scheduler runs");
        collect(&env, &process.exporter, &mut seen, &mut run);
        let now = clock.now();
        if now >= end {
            break;
        }
        if let Some(at) = restart_at
            && !restarted
            && now >= at
        {
            process.stop().await;
            process = new_process();
            restarted = true;
        }
    }
    process.stop().await;
    if let Some(dir) = state_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    run
}

/// Samples every poll the store holds that was not sampled yet.
fn collect(
    env: &super::SimEnvironment,
    exporter: &Exporter,
    seen: &mut HashMap<(Cloud, String), SystemTime>,
    run: &mut Run,
) {
    for entry in exporter.scheduler.store().entries() {
        let Some(polled) = entry.last_good.as_deref() else {
            continue;
        };
        let cloud = entry.target.instance.cloud;
        let Some(pattern) = Pattern::from_name(&entry.target.group) else {
            continue;
        };
        if let Some(v) = &polled.verdict {
            run.verdicts.insert((cloud, pattern), v.status);
        }
        let key = (cloud, entry.target.group.to_string());
        if seen.get(&key) == Some(&polled.at) {
            continue;
        }
        seen.insert(key, polled.at);
        let at_ms = unix_millis(polled.at);
        for topic in &polled.progress.topics {
            for p in &topic.partitions {
                let Some(committed) = p.committed else {
                    continue;
                };
                let Some(estimate) = p.time_lag else {
                    run.missing.push((cloud, pattern, at_ms - T0_MS));
                    continue;
                };
                let truth_seconds = if committed >= p.log_end {
                    0.0
                } else {
                    let produced = env.sim.state().world(|w| {
                        w.instance(cloud, &entry.target.instance.instance_id)
                            .expect("instance")
                            .topics[&topic.topic]
                            .partitions[p.partition as usize]
                            .produce_time_ms(committed)
                    });
                    (at_ms - produced) as f64 / 1000.0
                };
                run.samples.push(Sample {
                    cloud,
                    pattern,
                    at_ms: at_ms - T0_MS,
                    committed,
                    log_end: p.log_end,
                    truth_seconds,
                    estimate,
                });
            }
        }
    }
}

/// Median, 95th percentile and maximum of absolute errors, seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorSummary {
    pub samples: usize,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
    /// Estimates whose bounds did not contain the truth.
    pub outside_bounds: usize,
}

impl ErrorSummary {
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> ErrorSummary {
        let mut errors = Vec::new();
        let mut outside_bounds = 0;
        for s in samples {
            errors.push(s.error().abs());
            if !s.bracketed() {
                outside_bounds += 1;
            }
        }
        if errors.is_empty() {
            return ErrorSummary::default();
        }
        errors.sort_by(f64::total_cmp);
        let pick = |q: f64| errors[((errors.len() - 1) as f64 * q).round() as usize];
        ErrorSummary {
            samples: errors.len(),
            median: pick(0.5),
            p95: pick(0.95),
            max: *errors.last().expect("non-empty"),
            outside_bounds,
        }
    }
}

/// How many samples used each method.
pub fn methods<'a>(samples: impl Iterator<Item = &'a Sample>) -> BTreeMap<TimeLagMethod, usize> {
    let mut out = BTreeMap::new();
    for s in samples {
        *out.entry(s.estimate.method).or_default() += 1;
    }
    out
}

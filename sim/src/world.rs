//! The simulated clouds' data: instances, topics, partitions and consumer groups whose
//! offsets move with the simulator's clock.
//!
//! Offsets are a pure function of time since each partition's or commit's anchor, so
//! the world is deterministic under a virtual clock and only needs updating when
//! something changes (a reset, a member leaving, a partition being added).

use std::collections::BTreeMap;

use kcle_cloud::Cloud;

/// Where a partition's offsets are, as a function of time.
///
/// Production is linear at `produce_per_sec` from the anchor, unless `curve` is given: a
/// piecewise-linear cumulative production curve (time, log end) for traffic patterns
/// (bursts, ramps, an idle topic with an old backlog); before its first knot production
/// ran at `produce_per_sec`, after its last it goes on at `produce_per_sec`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimPartition {
    /// Time (Unix ms) at which `anchor_end` was the log-end offset.
    pub anchor_ms: i64,
    pub anchor_end: i64,
    /// Messages produced per second.
    pub produce_per_sec: f64,
    /// The earliest offset still retained.
    pub earliest: i64,
    /// Knots (Unix ms, log end) of a production curve, times increasing, ends
    /// non-decreasing; empty for linear production.
    pub curve: Vec<(i64, i64)>,
}

impl SimPartition {
    /// The log-end offset at `now_ms`.
    pub fn log_end(&self, now_ms: i64) -> i64 {
        let Some(&(first_t, first_e)) = self.curve.first() else {
            let dt = (now_ms - self.anchor_ms).max(0) as f64;
            return self.anchor_end + (dt * self.produce_per_sec / 1000.0).floor() as i64;
        };
        if now_ms <= first_t {
            let back = ((first_t - now_ms) as f64 * self.produce_per_sec / 1000.0).ceil() as i64;
            return (first_e - back).max(0);
        }
        for w in self.curve.windows(2) {
            let ((t0, e0), (t1, e1)) = (w[0], w[1]);
            if now_ms <= t1 {
                let frac = (now_ms - t0) as f64 / (t1 - t0) as f64;
                return e0 + ((e1 - e0) as f64 * frac).floor() as i64;
            }
        }
        let &(last_t, last_e) = self.curve.last().expect("non-empty");
        last_e + ((now_ms - last_t) as f64 * self.produce_per_sec / 1000.0).floor() as i64
    }

    /// When the message at `offset` was produced (Unix ms): when the log end reached
    /// `offset + 1`. Messages before the anchor are taken to have been produced at the
    /// same rate (or 1/s for an idle partition).
    pub fn produce_time_ms(&self, offset: i64) -> i64 {
        let rate = if self.produce_per_sec > 0.0 {
            self.produce_per_sec
        } else {
            1.0
        };
        let Some(&(first_t, first_e)) = self.curve.first() else {
            return self.anchor_ms
                + (((offset - self.anchor_end + 1) as f64) * 1000.0 / rate).floor() as i64;
        };
        let target = offset + 1;
        if target <= first_e {
            return first_t - (((first_e - target) as f64) * 1000.0 / rate).ceil() as i64;
        }
        for w in self.curve.windows(2) {
            let ((t0, e0), (t1, e1)) = (w[0], w[1]);
            if target <= e1 && e1 > e0 {
                // The first millisecond at which log_end(t) >= target.
                let frac = (target - e0) as f64 / (e1 - e0) as f64;
                let mut t = t0 + ((t1 - t0) as f64 * frac).ceil() as i64;
                while t > t0 && self.log_end(t - 1) >= target {
                    t -= 1;
                }
                while self.log_end(t) < target {
                    t += 1;
                }
                return t;
            }
        }
        let &(last_t, last_e) = self.curve.last().expect("non-empty");
        let mut t = last_t + (((target - last_e) as f64) * 1000.0 / rate).floor() as i64;
        while self.log_end(t) < target {
            t += 1;
        }
        t
    }

    /// The first offset produced at or after `t_ms`, within `[earliest, log_end(now)]`;
    /// what a reset "to timestamp" moves to.
    pub fn offset_for_time(&self, t_ms: i64, now_ms: i64) -> i64 {
        let o = if self.curve.is_empty() {
            let rate = if self.produce_per_sec > 0.0 {
                self.produce_per_sec
            } else {
                1.0
            };
            self.anchor_end - 1 + (((t_ms - self.anchor_ms) as f64) * rate / 1000.0).ceil() as i64
        } else {
            // Everything before the log end just before t was produced before t.
            self.log_end(t_ms - 1)
        };
        o.clamp(self.earliest, self.log_end(now_ms))
    }

    /// The knots of the curve in `(from_ms, to_ms]`, for the consumer's queue.
    fn knots_between(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.curve
            .iter()
            .copied()
            .filter(move |(t, _)| *t > from_ms && *t <= to_ms)
    }
}

/// A consumer group's commit on one partition.
#[derive(Clone, Debug, PartialEq)]
pub struct SimCommit {
    pub anchor_ms: i64,
    /// `None`: the group never committed on this partition.
    pub anchor_offset: Option<i64>,
}

/// A topic of an instance.
#[derive(Clone, Debug, PartialEq)]
pub struct SimTopic {
    pub partitions: Vec<SimPartition>,
    /// Whether the cloud knows message timestamps (Alibaba reports -1 for local-storage
    /// and serverless topics).
    pub timestamps_known: bool,
    /// The topic's own `retention.ms`; `None`: the instance's retention applies.
    pub retention_ms: Option<i64>,
}

/// A consumer group of an instance.
#[derive(Clone, Debug, PartialEq)]
pub struct SimGroup {
    /// Connected consumers; 0 means the group is `Empty` and does not consume.
    pub members: u32,
    /// Messages consumed per second per partition while members are connected.
    pub consume_per_sec: f64,
    /// Commits by topic, one per partition (index = partition number).
    pub commits: BTreeMap<String, Vec<SimCommit>>,
}

impl SimGroup {
    /// The Kafka state the cloud reports.
    /// The Kafka state the cloud reports, in Kafka's spelling (`Stable`, `Empty`).
    pub fn state(&self) -> &'static str {
        if self.members > 0 { "Stable" } else { "Empty" }
    }

    fn rate(&self) -> f64 {
        if self.members > 0 {
            self.consume_per_sec
        } else {
            0.0
        }
    }
}

/// The lifecycle of a simulated instance, in cloud-neutral terms. Each cloud's handler
/// answers it with that cloud's status code (`ViewInstanceStatusCode` and `ServiceStatus`
/// for Alibaba, `Status` for Tencent).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    Running,
    Upgrading,
    Migrating,
    Scaling,
    /// The subscription is about to expire; the instance still serves.
    Expiring,
    Creating,
    CreateFailed,
    /// Stopped or isolated (Tencent isolates an instance whose payment is overdue).
    Stopped,
    Expired,
    Released,
    Deleting,
}

impl InstanceStatus {
    pub const ALL: [InstanceStatus; 11] = [
        InstanceStatus::Running,
        InstanceStatus::Upgrading,
        InstanceStatus::Migrating,
        InstanceStatus::Scaling,
        InstanceStatus::Expiring,
        InstanceStatus::Creating,
        InstanceStatus::CreateFailed,
        InstanceStatus::Stopped,
        InstanceStatus::Expired,
        InstanceStatus::Released,
        InstanceStatus::Deleting,
    ];

    /// Whether an instance in this state serves Kafka traffic (and so has lag to export).
    pub fn serves(self) -> bool {
        matches!(
            self,
            InstanceStatus::Running
                | InstanceStatus::Upgrading
                | InstanceStatus::Migrating
                | InstanceStatus::Scaling
                | InstanceStatus::Expiring
        )
    }
}

/// A managed Kafka instance.
#[derive(Clone, Debug, PartialEq)]
pub struct SimInstance {
    pub cloud: Cloud,
    pub id: String,
    pub name: String,
    pub region: String,
    /// Where the instance is in its lifecycle; each cloud's handler answers its own code.
    pub status: InstanceStatus,
    pub topics: BTreeMap<String, SimTopic>,
    pub groups: BTreeMap<String, SimGroup>,
    /// How long the instance keeps messages, hours (Alibaba `MsgRetain`; Tencent's
    /// default for topics without their own); `None`: the answers leave it out.
    pub retention_hours: Option<i64>,
}

impl SimInstance {
    /// The retention in force for `topic`, milliseconds: its own, else the instance's.
    pub fn retention_ms(&self, topic: &SimTopic) -> Option<i64> {
        topic
            .retention_ms
            .or(self.retention_hours.map(|h| h * 3_600_000))
    }
}

/// Alibaba's and Tencent's default retention, hours.
pub const DEFAULT_RETENTION_HOURS: i64 = 72;

/// One partition of a group's progress at a moment, as both clouds' handlers need it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressRow {
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: i64,
    /// Produce time of the last consumed message; `None` when unknown or never committed.
    pub last_consumed_ms: Option<i64>,
}

/// Where a reset moves a group's offsets (cloud-neutral; handlers translate parameters).
#[derive(Clone, Debug, PartialEq)]
pub enum ResetTo {
    Latest,
    Earliest,
    /// The first offset produced at or after this Unix ms time.
    Timestamp(i64),
    /// Move by this many messages, clamped to `[earliest, log_end]`.
    Shift(i64),
    /// Explicit per-partition offsets.
    Offsets(Vec<(i32, i64)>),
    /// One offset for every selected partition.
    Offset(i64),
}

/// Why a simulated operation failed; handlers map these to each cloud's error codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldError {
    InstanceNotFound,
    GroupNotFound,
    TopicNotFound(String),
    PartitionNotFound(String, i32),
    OffsetOutOfRange {
        partition: i32,
        offset: i64,
        earliest: i64,
        log_end: i64,
    },
    GroupActive,
}

/// All simulated instances of both clouds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct World {
    pub instances: BTreeMap<(Cloud, String), SimInstance>,
}

impl World {
    pub fn instance(&self, cloud: Cloud, id: &str) -> Result<&SimInstance, WorldError> {
        self.instances
            .get(&(cloud, id.to_string()))
            .ok_or(WorldError::InstanceNotFound)
    }

    pub fn instance_mut(&mut self, cloud: Cloud, id: &str) -> Result<&mut SimInstance, WorldError> {
        self.instances
            .get_mut(&(cloud, id.to_string()))
            .ok_or(WorldError::InstanceNotFound)
    }

    /// Instances of a cloud in a region, in id order.
    pub fn instances_in(&self, cloud: Cloud, region: &str) -> Vec<&SimInstance> {
        self.instances
            .values()
            .filter(|i| i.cloud == cloud && i.region == region)
            .collect()
    }

    /// A group's progress at `now_ms`: topics in name order, partitions in number order.
    pub fn progress(
        &self,
        cloud: Cloud,
        instance: &str,
        group: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, Vec<ProgressRow>)>, WorldError> {
        let inst = self.instance(cloud, instance)?;
        let g = inst.groups.get(group).ok_or(WorldError::GroupNotFound)?;
        let mut out = Vec::with_capacity(g.commits.len());
        for (topic_name, commits) in &g.commits {
            let Some(topic) = inst.topics.get(topic_name) else {
                continue;
            };
            let rows = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let log_end = p.log_end(now_ms);
                    let committed = commits
                        .get(i)
                        .and_then(|c| committed_at(c, p, g.rate(), now_ms));
                    let last_consumed_ms = match committed {
                        Some(c) if topic.timestamps_known && c > p.earliest => {
                            Some(p.produce_time_ms(c - 1))
                        }
                        _ => None,
                    };
                    ProgressRow {
                        partition: i as i32,
                        committed,
                        log_end,
                        last_consumed_ms,
                    }
                })
                .collect();
            out.push((topic_name.clone(), rows));
        }
        Ok(out)
    }

    /// Moves a group's committed offsets. `topics` empty means every subscribed topic;
    /// `partitions` empty means every partition of those topics. Refuses while the group
    /// has members, as Kafka does.
    // Every argument is a distinct part of the reset request both clouds send.
    #[allow(clippy::too_many_arguments)]
    pub fn reset(
        &mut self,
        cloud: Cloud,
        instance: &str,
        group: &str,
        topics: &[String],
        partitions: &[i32],
        to: &ResetTo,
        now_ms: i64,
    ) -> Result<(), WorldError> {
        let inst = self.instance_mut(cloud, instance)?;
        let g = inst.groups.get(group).ok_or(WorldError::GroupNotFound)?;
        if g.members > 0 {
            return Err(WorldError::GroupActive);
        }
        let selected: Vec<String> = if topics.is_empty() {
            g.commits.keys().cloned().collect()
        } else {
            topics.to_vec()
        };
        // Validate everything before changing anything, so a refusal changes nothing.
        let mut plan = Vec::new();
        for t in &selected {
            let topic = inst
                .topics
                .get(t)
                .ok_or_else(|| WorldError::TopicNotFound(t.clone()))?;
            let parts: Vec<i32> = match to {
                ResetTo::Offsets(list) => list.iter().map(|(p, _)| *p).collect(),
                _ if partitions.is_empty() => (0..topic.partitions.len() as i32).collect(),
                _ => partitions.to_vec(),
            };
            for p in parts {
                let sp = topic
                    .partitions
                    .get(usize::try_from(p).unwrap_or(usize::MAX))
                    .ok_or_else(|| WorldError::PartitionNotFound(t.clone(), p))?;
                let log_end = sp.log_end(now_ms);
                let current = g
                    .commits
                    .get(t)
                    .and_then(|c| c.get(p as usize))
                    .and_then(|c| committed_at(c, sp, 0.0, now_ms));
                let target = match to {
                    ResetTo::Latest => log_end,
                    ResetTo::Earliest => sp.earliest,
                    ResetTo::Timestamp(ms) => sp.offset_for_time(*ms, now_ms),
                    ResetTo::Shift(n) => current
                        .unwrap_or(log_end)
                        .saturating_add(*n)
                        .clamp(sp.earliest, log_end),
                    ResetTo::Offset(o) => *o,
                    ResetTo::Offsets(list) => list
                        .iter()
                        .find(|(pp, _)| *pp == p)
                        .map(|(_, o)| *o)
                        .unwrap_or(log_end),
                };
                if target < sp.earliest || target > log_end {
                    return Err(WorldError::OffsetOutOfRange {
                        partition: p,
                        offset: target,
                        earliest: sp.earliest,
                        log_end,
                    });
                }
                plan.push((t.clone(), p as usize, topic.partitions.len(), target));
            }
        }
        let g = inst.groups.get_mut(group).expect("checked above");
        for (topic, p, count, target) in plan {
            let commits = g.commits.entry(topic).or_default();
            if commits.len() < count {
                commits.resize(
                    count,
                    SimCommit {
                        anchor_ms: now_ms,
                        anchor_offset: None,
                    },
                );
            }
            commits[p] = SimCommit {
                anchor_ms: now_ms,
                anchor_offset: Some(target),
            };
        }
        Ok(())
    }

    /// Sets a group's member count, re-anchoring its commits so that consumption so far
    /// is kept and the new rate applies from `now_ms`.
    pub fn set_members(
        &mut self,
        cloud: Cloud,
        instance: &str,
        group: &str,
        members: u32,
        now_ms: i64,
    ) -> Result<(), WorldError> {
        let inst = self.instance_mut(cloud, instance)?;
        let g = inst
            .groups
            .get_mut(group)
            .ok_or(WorldError::GroupNotFound)?;
        let rate = g.rate();
        for (topic, commits) in g.commits.iter_mut() {
            let Some(t) = inst.topics.get(topic) else {
                continue;
            };
            for (i, c) in commits.iter_mut().enumerate() {
                if let Some(p) = t.partitions.get(i) {
                    let now = committed_at(c, p, rate, now_ms);
                    *c = SimCommit {
                        anchor_ms: now_ms,
                        anchor_offset: now,
                    };
                }
            }
        }
        g.members = members;
        Ok(())
    }

    /// Removes a group (as if deleted in the console).
    pub fn delete_group(
        &mut self,
        cloud: Cloud,
        instance: &str,
        group: &str,
    ) -> Result<(), WorldError> {
        self.instance_mut(cloud, instance)?
            .groups
            .remove(group)
            .map(|_| ())
            .ok_or(WorldError::GroupNotFound)
    }

    /// Creates a consumer group reading `topics`, committed at their current log ends.
    pub fn add_group(
        &mut self,
        cloud: Cloud,
        instance: &str,
        group: &str,
        topics: &[&str],
        members: u32,
        now_ms: i64,
    ) -> Result<(), WorldError> {
        let inst = self.instance_mut(cloud, instance)?;
        let mut commits = BTreeMap::new();
        for t in topics {
            let topic = inst
                .topics
                .get(*t)
                .ok_or_else(|| WorldError::TopicNotFound(t.to_string()))?;
            let list = topic
                .partitions
                .iter()
                .map(|p| SimCommit {
                    anchor_ms: now_ms,
                    anchor_offset: Some(p.log_end(now_ms)),
                })
                .collect();
            commits.insert(t.to_string(), list);
        }
        inst.groups.insert(
            group.to_string(),
            SimGroup {
                members,
                consume_per_sec: 1.0,
                commits,
            },
        );
        Ok(())
    }

    /// Removes a topic from the instance and from every group's subscriptions.
    pub fn delete_topic(
        &mut self,
        cloud: Cloud,
        instance: &str,
        topic: &str,
    ) -> Result<(), WorldError> {
        let inst = self.instance_mut(cloud, instance)?;
        inst.topics
            .remove(topic)
            .ok_or_else(|| WorldError::TopicNotFound(topic.to_string()))?;
        for g in inst.groups.values_mut() {
            g.commits.remove(topic);
        }
        Ok(())
    }

    /// Adds partitions to a topic; groups get no commit on them until they consume.
    pub fn add_partitions(
        &mut self,
        cloud: Cloud,
        instance: &str,
        topic: &str,
        count: usize,
        now_ms: i64,
    ) -> Result<(), WorldError> {
        let inst = self.instance_mut(cloud, instance)?;
        let t = inst
            .topics
            .get_mut(topic)
            .ok_or_else(|| WorldError::TopicNotFound(topic.to_string()))?;
        let rate = t
            .partitions
            .first()
            .map(|p| p.produce_per_sec)
            .unwrap_or(1.0);
        for _ in 0..count {
            t.partitions.push(SimPartition {
                anchor_ms: now_ms,
                anchor_end: 0,
                produce_per_sec: rate,
                earliest: 0,
                curve: Vec::new(),
            });
        }
        Ok(())
    }
}

/// The committed offset of `c` at `now_ms` when consuming at `rate` whenever there is
/// something to consume: a queue served at `rate`, so a consumer that caught up waits at
/// the log end and takes up new messages (a burst) at its rate, never faster.
fn committed_at(c: &SimCommit, p: &SimPartition, rate: f64, now_ms: i64) -> Option<i64> {
    let start = c.anchor_offset?;
    let log_end = p.log_end(now_ms);
    if start >= log_end {
        return Some(start);
    }
    let served = |since_ms: i64| ((now_ms - since_ms).max(0) as f64 * rate / 1000.0).floor() as i64;
    // c(t) = min(c0 + R(t - t0), e(t), min over knots s in (t0, t] of e(s) + R(t - s)):
    // the queue drained at R from its start or from the last time it was caught up.
    let mut c_now = (start + served(c.anchor_ms)).min(log_end);
    for (t, e) in p.knots_between(c.anchor_ms, now_ms) {
        c_now = c_now.min(e + served(t));
    }
    Some(c_now.max(start))
}

/// How generated groups and topics are named.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Naming {
    /// `group-0001`, `topic-0001`: short and predictable, for tests and the demo.
    #[default]
    Short,
    /// Words and a number, 20 to 40 characters long (seeded), like production names;
    /// for benchmarks, where label length decides the size of `/metrics`.
    Long,
}

/// How to generate a world: sizes, rates and a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldSpec {
    pub alibaba_region: String,
    pub tencent_region: String,
    pub instances_per_cloud: usize,
    pub groups_per_instance: usize,
    pub topics_per_group: usize,
    pub partitions_per_topic: usize,
    pub seed: u64,
    pub names: Naming,
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec {
            alibaba_region: "cn-hangzhou".into(),
            tencent_region: "ap-guangzhou".into(),
            instances_per_cloud: 1,
            groups_per_instance: 3,
            topics_per_group: 2,
            partitions_per_topic: 3,
            seed: 42,
            names: Naming::Short,
        }
    }
}

impl WorldSpec {
    /// The benchmark scenario (`bench/run.sh`): 2,000 consumer groups, half on each
    /// cloud (10 instances × 100 groups per cloud), each reading its own 5 topics of 10
    /// partitions: 100,000 partitions, names of 20 to 40 characters.
    pub fn bench_100k() -> WorldSpec {
        WorldSpec {
            instances_per_cloud: 10,
            groups_per_instance: 100,
            topics_per_group: 5,
            partitions_per_topic: 10,
            names: Naming::Long,
            ..WorldSpec::default()
        }
    }
}

/// Words of generated long names.
const NAME_WORDS: [&str; 20] = [
    "orders",
    "payments",
    "billing",
    "inventory",
    "shipping",
    "search",
    "analytics",
    "fraud",
    "ledger",
    "notifications",
    "recommendations",
    "checkout",
    "catalog",
    "pricing",
    "identity",
    "audit",
    "events",
    "clickstream",
    "settlement",
    "risk",
];

/// A name of 20 to 40 characters: words joined by `-`, ending in `-` and `n` (five
/// digits), which keeps names unique. Only letters, digits and `-`, which both clouds
/// accept in group and topic names.
fn long_name(rng: &mut fastrand::Rng, n: usize) -> String {
    let suffix = format!("-{n:05}");
    let len = rng.usize(20..=40);
    let stem = len.saturating_sub(suffix.len());
    let mut name = String::with_capacity(len + 16);
    while name.len() < stem {
        if !name.is_empty() {
            name.push('-');
        }
        name.push_str(NAME_WORDS[rng.usize(..NAME_WORDS.len())]);
    }
    name.truncate(stem);
    if name.ends_with('-') {
        name.pop();
        name.push('x');
    }
    name.push_str(&suffix);
    name
}

/// Instance id naming used by generated worlds.
pub fn instance_id(cloud: Cloud, n: usize) -> String {
    match cloud {
        Cloud::Alibaba => format!("alikafka_post-cn-sim{n:04}"),
        Cloud::Tencent => format!("ckafka-sim{n:04}"),
    }
}

/// Group naming used by generated worlds.
pub fn group_name(n: usize) -> String {
    format!("group-{n:04}")
}

/// Topic naming used by generated worlds.
pub fn topic_name(n: usize) -> String {
    format!("topic-{n:04}")
}

impl World {
    /// Builds a world from a spec at `now_ms`. Each group reads its own topics; rates and
    /// starting offsets come from the seed. Group 1 of each instance keeps up, group 2 falls
    /// behind, group 3 is stopped (no members), later groups vary; partition 0 of every
    /// third group's first topic has no committed offset.
    pub fn generate(spec: &WorldSpec, now_ms: i64) -> World {
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        // Names draw from their own generator, so that long names leave the offsets and
        // rates of a seed unchanged.
        let mut names = fastrand::Rng::with_seed(spec.seed ^ 0x6e61_6d65);
        let (mut groups_named, mut topics_named) = (0, 0);
        let mut world = World::default();
        for cloud in [Cloud::Alibaba, Cloud::Tencent] {
            let region = match cloud {
                Cloud::Alibaba => &spec.alibaba_region,
                Cloud::Tencent => &spec.tencent_region,
            };
            for n in 1..=spec.instances_per_cloud {
                let id = instance_id(cloud, n);
                let mut inst = SimInstance {
                    cloud,
                    id: id.clone(),
                    name: format!("sim-{}-{n}", cloud.as_str()),
                    region: region.clone(),
                    status: InstanceStatus::Running,
                    topics: BTreeMap::new(),
                    groups: BTreeMap::new(),
                    retention_hours: Some(DEFAULT_RETENTION_HOURS),
                };
                let mut topic_no = 0;
                for g in 1..=spec.groups_per_instance {
                    let (members, consume_factor) = match g % 4 {
                        1 => (2, 1.5),
                        2 => (1, 0.6),
                        3 => (0, 0.0),
                        _ => (3, 1.0 + rng.f64()),
                    };
                    let mut group = SimGroup {
                        members,
                        consume_per_sec: 0.0,
                        commits: BTreeMap::new(),
                    };
                    let mut produce_sum = 0.0;
                    for t in 0..spec.topics_per_group {
                        topic_no += 1;
                        let name = match spec.names {
                            Naming::Short => topic_name(topic_no),
                            Naming::Long => {
                                topics_named += 1;
                                long_name(&mut names, topics_named)
                            }
                        };
                        let rate = (1 + rng.u32(0..20)) as f64;
                        produce_sum += rate;
                        let partitions: Vec<SimPartition> = (0..spec.partitions_per_topic)
                            .map(|_| {
                                let end = rng.i64(10_000..5_000_000);
                                SimPartition {
                                    anchor_ms: now_ms,
                                    anchor_end: end,
                                    produce_per_sec: rate,
                                    earliest: end / 10,
                                    curve: Vec::new(),
                                }
                            })
                            .collect();
                        let commits = partitions
                            .iter()
                            .enumerate()
                            .map(|(p, sp)| SimCommit {
                                anchor_ms: now_ms,
                                anchor_offset: if g % 3 == 0 && t == 0 && p == 0 {
                                    None
                                } else {
                                    Some(sp.anchor_end - rng.i64(0..2_000))
                                },
                            })
                            .collect();
                        group.commits.insert(name.clone(), commits);
                        inst.topics.insert(
                            name,
                            SimTopic {
                                partitions,
                                timestamps_known: t % 2 == 0,
                                retention_ms: None,
                            },
                        );
                    }
                    let avg = if spec.topics_per_group > 0 {
                        produce_sum / spec.topics_per_group as f64
                    } else {
                        1.0
                    };
                    group.consume_per_sec = avg * consume_factor;
                    let name = match spec.names {
                        Naming::Short => group_name(g),
                        Naming::Long => {
                            groups_named += 1;
                            long_name(&mut names, groups_named)
                        }
                    };
                    inst.groups.insert(name, group);
                }
                world.instances.insert((cloud, id), inst);
            }
        }
        world
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition() -> SimPartition {
        SimPartition {
            anchor_ms: 1_000_000,
            anchor_end: 1_000,
            produce_per_sec: 10.0,
            earliest: 100,
            curve: Vec::new(),
        }
    }

    #[test]
    fn offsets_move_with_time_and_invert() {
        let p = partition();
        assert_eq!(p.log_end(1_000_000), 1_000);
        assert_eq!(p.log_end(1_001_000), 1_010);
        // Message 1009 is the tenth produced after the anchor: at +1.0 s.
        assert_eq!(p.produce_time_ms(1_009), 1_001_000);
        assert_eq!(p.offset_for_time(1_001_000, 1_002_000), 1_009);
        assert_eq!(p.offset_for_time(0, 1_002_000), 100);
        assert_eq!(p.offset_for_time(9_999_999_999, 1_002_000), 1_020);
    }

    #[test]
    fn a_curve_is_inverted_exactly_and_a_consumer_queues_behind_a_burst() {
        // 1,000 messages in the first second after 60 s of silence, then silence.
        let p = SimPartition {
            anchor_ms: 0,
            anchor_end: 0,
            produce_per_sec: 0.0,
            earliest: 0,
            curve: vec![(0, 500), (60_000, 500), (61_000, 1_500)],
        };
        assert_eq!(p.log_end(30_000), 500);
        assert_eq!(p.log_end(60_500), 1_000);
        assert_eq!(p.log_end(100_000), 1_500);
        for offset in [500, 777, 1_499] {
            let t = p.produce_time_ms(offset);
            assert!(
                p.log_end(t) > offset && p.log_end(t - 1) <= offset,
                "{offset} at {t}"
            );
        }
        // Caught up at 500 since 0, consuming 100/s: the burst is taken up at that rate.
        let c = SimCommit {
            anchor_ms: 0,
            anchor_offset: Some(500),
        };
        assert_eq!(committed_at(&c, &p, 100.0, 60_000), Some(500));
        assert_eq!(
            committed_at(&c, &p, 100.0, 65_000),
            Some(1_000),
            "5 s at 100/s"
        );
        assert_eq!(
            committed_at(&c, &p, 100.0, 80_000),
            Some(1_500),
            "caught up"
        );
    }

    #[test]
    fn generated_world_is_deterministic_and_varied() {
        let spec = WorldSpec::default();
        let a = World::generate(&spec, 1_700_000_000_000);
        let b = World::generate(&spec, 1_700_000_000_000);
        assert_eq!(a, b);
        assert_eq!(a.instances.len(), 2);
        let progress = a
            .progress(
                Cloud::Tencent,
                &instance_id(Cloud::Tencent, 1),
                &group_name(3),
                1_700_000_000_000,
            )
            .unwrap();
        assert_eq!(progress.len(), 2);
        assert_eq!(
            progress[0].1[0].committed, None,
            "group 3 lacks a commit on p0"
        );
        assert!(progress[0].1[1].committed.is_some());
    }

    #[test]
    fn long_names_are_unique_20_to_40_characters_and_keep_the_offsets() {
        let short = WorldSpec {
            instances_per_cloud: 2,
            groups_per_instance: 30,
            topics_per_group: 3,
            ..WorldSpec::default()
        };
        let long = WorldSpec {
            names: Naming::Long,
            ..short.clone()
        };
        let (a, b) = (World::generate(&short, 0), World::generate(&long, 0));
        let mut seen = std::collections::HashSet::new();
        for inst in b.instances.values() {
            for name in inst.groups.keys().chain(inst.topics.keys()) {
                assert!((20..=40).contains(&name.len()), "{name}");
                assert!(
                    name.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
                    "{name}"
                );
                assert!(!name.contains("--"), "{name}");
                assert!(seen.insert(name.clone()), "duplicate {name}");
            }
        }
        let lengths: Vec<usize> = seen.iter().map(String::len).collect();
        assert!(lengths.iter().min() < Some(&25) && lengths.iter().max() > Some(&35));
        // The same offsets and rates, only named differently.
        for (sa, sb) in a.instances.values().zip(b.instances.values()) {
            let offsets = |i: &SimInstance| -> Vec<i64> {
                i.topics
                    .values()
                    .flat_map(|t| t.partitions.iter().map(|p| p.anchor_end))
                    .collect::<Vec<_>>()
            };
            let (mut x, mut y) = (offsets(sa), offsets(sb));
            x.sort_unstable();
            y.sort_unstable();
            assert_eq!(x, y);
            assert_eq!(sa.groups.len(), sb.groups.len());
        }
        assert_eq!(World::generate(&long, 0), b, "deterministic");
    }

    #[test]
    fn the_benchmark_scenario_has_100000_partitions_half_on_each_cloud() {
        let w = World::generate(&WorldSpec::bench_100k(), 0);
        for cloud in [Cloud::Alibaba, Cloud::Tencent] {
            let (groups, partitions) = w
                .instances
                .values()
                .filter(|i| i.cloud == cloud)
                .flat_map(|i| i.groups.values().map(move |g| (i, g)))
                .fold((0, 0), |(g, p), (i, group)| {
                    let parts: usize = group
                        .commits
                        .keys()
                        .map(|t| i.topics[t].partitions.len())
                        .sum();
                    (g + 1, p + parts)
                });
            assert_eq!((groups, partitions), (1_000, 50_000), "{cloud}");
        }
    }

    #[test]
    fn stopped_group_falls_behind_and_resets_to_latest() {
        let spec = WorldSpec::default();
        let t0 = 1_700_000_000_000;
        let mut w = World::generate(&spec, t0);
        let inst = instance_id(Cloud::Alibaba, 1);
        let g = group_name(3);
        let before = w.progress(Cloud::Alibaba, &inst, &g, t0 + 60_000).unwrap();
        let row = &before[0].1[1];
        assert!(row.log_end - row.committed.unwrap() > 0);
        w.reset(
            Cloud::Alibaba,
            &inst,
            &g,
            &[],
            &[],
            &ResetTo::Latest,
            t0 + 60_000,
        )
        .unwrap();
        let after = w.progress(Cloud::Alibaba, &inst, &g, t0 + 60_000).unwrap();
        for (_, rows) in &after {
            for r in rows {
                assert_eq!(r.committed, Some(r.log_end));
            }
        }
    }

    #[test]
    fn reset_refuses_active_groups_and_out_of_range_offsets() {
        let spec = WorldSpec::default();
        let t0 = 1_700_000_000_000;
        let mut w = World::generate(&spec, t0);
        let inst = instance_id(Cloud::Tencent, 1);
        assert_eq!(
            w.reset(
                Cloud::Tencent,
                &inst,
                &group_name(1),
                &[],
                &[],
                &ResetTo::Latest,
                t0
            ),
            Err(WorldError::GroupActive)
        );
        let topic = w
            .progress(Cloud::Tencent, &inst, &group_name(3), t0)
            .unwrap()[0]
            .0
            .clone();
        let err = w
            .reset(
                Cloud::Tencent,
                &inst,
                &group_name(3),
                &[topic],
                &[],
                &ResetTo::Offsets(vec![(0, i64::MAX)]),
                t0,
            )
            .unwrap_err();
        assert!(matches!(
            err,
            WorldError::OffsetOutOfRange { partition: 0, .. }
        ));
    }
}

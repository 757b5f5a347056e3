//! The lag families and per-group health: which series exist for a snapshot of the store,
//! and their text. `stream` walks the [`steps`] unit by unit (a group, a topic of a group,
//! or a topic of an instance) to render a scrape piece by piece.
//!
//! Fresh per scrape, so a group, topic or partition that disappears from the store
//! disappears from `/metrics`. Groups whose polls have failed for longer than
//! `stale_after` lose their lag series but keep `group_up` 0 and their frozen
//! `last_success_timestamp_seconds`. Groups and partitions the cardinality controls leave
//! out (as decided when their poll was published) have no lag series; their state, verdict
//! and health stay.
//!
//! The lag families follow one of two naming schemes (`metric_names`, see [`Naming`]):
//! kafka_exporter's names with the labels `cloud`, `instance_id`, `consumergroup`, or
//! kafka-lag-exporter's names with its labels `cluster_name` (the instance id) and
//! `group`. Every other family is this exporter's own and is the same in both.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::text::{self, Family, Value, sample};
use crate::config::MetricNames;
use crate::model::{GroupState, PartitionProgress, Status};
use crate::store::{GroupEntry, PartitionDerived, Polled};
use kcle_clock::unix_seconds_f64;

pub const CURRENT_OFFSET: Family = Family {
    name: "kafka_consumergroup_current_offset",
    kind: "gauge",
    help: "Committed offset of the consumer group on the partition (Alibaba GetConsumerProgress ConsumerOffset, Tencent DescribeGroupOffsets Offset), as of the group's last successful poll.",
};
pub const LAG: Family = Family {
    name: "kafka_consumergroup_lag",
    kind: "gauge",
    help: "Messages between the consumer group's committed offset and the partition's log-end offset, never negative, as of the group's last successful poll.",
};
pub const LAG_SECONDS: Family = Family {
    name: "kafka_consumergroup_lag_seconds",
    kind: "gauge",
    help: "Estimated age in seconds of the oldest message the consumer group has not consumed (from Alibaba LastTimestamp, else interpolated from log-end offset history), as of the group's last successful poll.",
};
pub const TOPIC_LAG: Family = Family {
    name: "kafka_consumergroup_topic_lag",
    kind: "gauge",
    help: "Consumer group lag summed over the topic's partitions, as of the group's last successful poll.",
};
pub const LAST_CONSUMED: Family = Family {
    name: "kafka_consumergroup_last_consumed_timestamp_seconds",
    kind: "gauge",
    help: "Unix time at which the last message the consumer group consumed was produced (Alibaba LastTimestamp), as of the group's last successful poll; absent when the cloud does not know.",
};
pub const PARTITION_END: Family = Family {
    name: "kafka_topic_partition_current_offset",
    kind: "gauge",
    help: "Log-end offset of the partition (Alibaba BrokerOffset, Tencent LogEndOffset), from the most recent successful poll of a group consuming the topic.",
};
pub const MAX_LAG_SECONDS: Family = Family {
    name: "kafka_consumergroup_max_lag_seconds",
    kind: "gauge",
    help: "Largest estimated time lag over the consumer group's partitions (see kafka_consumergroup_lag_seconds), as of the group's last successful poll.",
};
pub const TIME_TO_DRAIN: Family = Family {
    name: "kafka_consumergroup_time_to_drain_seconds",
    kind: "gauge",
    help: "Seconds the consumer group needs to consume the partition's current lag at its recent consume rate (its committed offset over the last verdict.window polls), new messages not counted; Amazon MSK calls this EstimatedTimeLag. 0 without lag; absent while the committed offset does not advance.",
};
pub const MAX_TIME_TO_DRAIN: Family = Family {
    name: "kafka_consumergroup_max_time_to_drain_seconds",
    kind: "gauge",
    help: "Largest time to drain over the consumer group's partitions (see kafka_consumergroup_time_to_drain_seconds); absent while a partition with lag makes no progress.",
};
pub const RETENTION_MARGIN: Family = Family {
    name: "kafka_consumergroup_retention_margin_seconds",
    kind: "gauge",
    help: "Seconds until the oldest message the consumer group has not consumed on the partition reaches the topic's retention and may be deleted: the retention (kafka_topic_retention_seconds) minus the time lag, as of the group's last successful poll; negative when it is already past. Absent without lag or while either is unknown.",
};
pub const MIN_RETENTION_MARGIN: Family = Family {
    name: "kafka_consumergroup_min_retention_margin_seconds",
    kind: "gauge",
    help: "Smallest retention margin over the consumer group's partitions (see kafka_consumergroup_retention_margin_seconds): how long until unconsumed data of the group may be deleted.",
};
pub const STATUS: Family = Family {
    name: "kafka_consumergroup_status",
    kind: "gauge",
    help: "Burrow-style verdict on the consumer group over its last polls: 1 for the current status (OK, WARN, STALL, STOP, REWIND, or ERR when its last poll failed), 0 for the others.",
};
pub const WORST_PARTITION: Family = Family {
    name: "kafka_consumergroup_worst_partition",
    kind: "gauge",
    help: "The partition that decided a consumer group's verdict when it is not OK, with that partition's status; always 1.",
};
pub const STATE: Family = Family {
    name: "kafka_consumergroup_state",
    kind: "gauge",
    help: "The consumer group's Kafka state as the cloud reports it (Alibaba GetConsumerProgress state, Tencent DescribeGroupInfo State): 1 for the current state, 0 for the others; unknown for a state this exporter does not know.",
};
pub const MEMBERS: Family = Family {
    name: "kafka_consumergroup_members",
    kind: "gauge",
    help: "Members of the consumer group as the cloud reports them (Alibaba: distinct members owning partitions; Tencent: DescribeGroupInfo Members).",
};
pub const LAST_REBALANCE: Family = Family {
    name: "kafka_consumergroup_last_rebalance_timestamp_seconds",
    kind: "gauge",
    help: "Unix time of the consumer group's last rebalance (Alibaba RebalanceInfoList LastRebalanceTimestamp).",
};
pub const GENERATION: Family = Family {
    name: "kafka_consumergroup_rebalance_generation",
    kind: "gauge",
    help: "The consumer group's generation, the number of rebalances so far (Alibaba RebalanceInfoList Generation).",
};
pub const INSTANCE_INFO: Family = Family {
    name: "kafka_cloud_lag_exporter_instance_info",
    kind: "gauge",
    help: "Kafka instances polled by the exporter, with the configured account and region; always 1.",
};
pub const GROUP_UP: Family = Family {
    name: "kafka_cloud_lag_exporter_group_up",
    kind: "gauge",
    help: "Whether the last poll of the consumer group succeeded (1) or failed (0).",
};
pub const LAST_SUCCESS: Family = Family {
    name: "kafka_cloud_lag_exporter_last_success_timestamp_seconds",
    kind: "gauge",
    help: "Unix time of the consumer group's last successful poll.",
};

// kafka-lag-exporter's names for the same values (`metric_names: kafka_lag_exporter`). Its
// per-partition families also carry `member_host`, `consumer_id` and `client_id`; the
// clouds' offset APIs do not say which member owns a partition, and an empty label is
// the same as none in PromQL, so they are left out.
pub const KLE_GROUP_OFFSET: Family = Family {
    name: "kafka_consumergroup_group_offset",
    kind: "gauge",
    help: CURRENT_OFFSET.help,
};
pub const KLE_GROUP_LAG: Family = Family {
    name: "kafka_consumergroup_group_lag",
    kind: "gauge",
    help: LAG.help,
};
pub const KLE_GROUP_LAG_SECONDS: Family = Family {
    name: "kafka_consumergroup_group_lag_seconds",
    kind: "gauge",
    help: LAG_SECONDS.help,
};
pub const KLE_GROUP_TOPIC_SUM_LAG: Family = Family {
    name: "kafka_consumergroup_group_topic_sum_lag",
    kind: "gauge",
    help: TOPIC_LAG.help,
};
pub const KLE_GROUP_SUM_LAG: Family = Family {
    name: "kafka_consumergroup_group_sum_lag",
    kind: "gauge",
    help: "Consumer group lag summed over all its topics and partitions, as of the group's last successful poll.",
};
pub const KLE_GROUP_MAX_LAG: Family = Family {
    name: "kafka_consumergroup_group_max_lag",
    kind: "gauge",
    help: "Largest lag in messages over the consumer group's partitions, as of the group's last successful poll.",
};
pub const KLE_PARTITION_LATEST_OFFSET: Family = Family {
    name: "kafka_partition_latest_offset",
    kind: "gauge",
    help: PARTITION_END.help,
};
pub const KLE_GROUP_MAX_LAG_SECONDS: Family = Family {
    name: "kafka_consumergroup_group_max_lag_seconds",
    kind: "gauge",
    help: "Largest estimated time lag over the consumer group's partitions (see kafka_consumergroup_group_lag_seconds), as of the group's last successful poll.",
};

/// The names and labels of the lag families in one naming scheme (`metric_names`).
#[derive(Clone, Copy, Debug)]
pub struct Naming {
    pub current_offset: Family,
    pub lag: Family,
    pub lag_seconds: Family,
    pub topic_lag: Family,
    /// The group's lag summed over all partitions, where the scheme has it.
    pub sum_lag: Option<Family>,
    /// The group's largest partition lag, where the scheme has it.
    pub max_lag: Option<Family>,
    pub partition_end: Family,
    pub max_lag_seconds: Family,
    labels: Scheme,
}

impl Naming {
    /// kafka_exporter's names (the default).
    pub const KAFKA_EXPORTER: Naming = Naming {
        current_offset: CURRENT_OFFSET,
        lag: LAG,
        lag_seconds: LAG_SECONDS,
        topic_lag: TOPIC_LAG,
        sum_lag: None,
        max_lag: None,
        partition_end: PARTITION_END,
        max_lag_seconds: MAX_LAG_SECONDS,
        labels: Scheme::KafkaExporter,
    };

    /// seglo/kafka-lag-exporter's names.
    pub const KAFKA_LAG_EXPORTER: Naming = Naming {
        current_offset: KLE_GROUP_OFFSET,
        lag: KLE_GROUP_LAG,
        lag_seconds: KLE_GROUP_LAG_SECONDS,
        topic_lag: KLE_GROUP_TOPIC_SUM_LAG,
        sum_lag: Some(KLE_GROUP_SUM_LAG),
        max_lag: Some(KLE_GROUP_MAX_LAG),
        partition_end: KLE_PARTITION_LATEST_OFFSET,
        max_lag_seconds: KLE_GROUP_MAX_LAG_SECONDS,
        labels: Scheme::KafkaLagExporter,
    };

    /// The naming of a `metric_names` setting.
    pub fn of(names: MetricNames) -> Naming {
        match names {
            MetricNames::KafkaExporter => Naming::KAFKA_EXPORTER,
            MetricNames::KafkaLagExporter => Naming::KAFKA_LAG_EXPORTER,
        }
    }
}

/// How a naming scheme labels a group and a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scheme {
    /// `cloud`, `instance_id`, `consumergroup`.
    KafkaExporter,
    /// `cluster_name` (the instance id: unique, and what the console shows as the
    /// cluster), `group`.
    KafkaLagExporter,
}

/// A label set of at most six pairs, built on the stack.
#[derive(Clone, Copy)]
struct Labels<'a> {
    pairs: [(&'static str, &'a str); 6],
    len: usize,
}

impl<'a> Labels<'a> {
    fn new() -> Self {
        Labels {
            pairs: [("", ""); 6],
            len: 0,
        }
    }

    fn with(mut self, name: &'static str, value: &'a str) -> Self {
        self.pairs[self.len] = (name, value);
        self.len += 1;
        self
    }

    fn as_slice(&self) -> &[(&'static str, &'a str)] {
        &self.pairs[..self.len]
    }
}

impl Scheme {
    /// The labels naming `entry`'s group.
    fn group(self, entry: &GroupEntry) -> Labels<'_> {
        let i = &entry.target.instance;
        match self {
            Scheme::KafkaExporter => Labels::new()
                .with("cloud", i.cloud.as_str())
                .with("instance_id", &i.instance_id)
                .with("consumergroup", &entry.target.group),
            Scheme::KafkaLagExporter => Labels::new()
                .with("cluster_name", &i.instance_id)
                .with("group", &entry.target.group),
        }
    }

    /// The labels naming an instance (for the log-end offsets, which belong to no group).
    fn instance<'a>(self, cloud: &'a str, instance_id: &'a str) -> Labels<'a> {
        match self {
            Scheme::KafkaExporter => Labels::new()
                .with("cloud", cloud)
                .with("instance_id", instance_id),
            Scheme::KafkaLagExporter => Labels::new().with("cluster_name", instance_id),
        }
    }
}

/// Every family of the default naming this module renders, in output order.
pub const FAMILIES: [Family; 20] = [
    CURRENT_OFFSET,
    LAG,
    LAG_SECONDS,
    TOPIC_LAG,
    LAST_CONSUMED,
    PARTITION_END,
    MAX_LAG_SECONDS,
    TIME_TO_DRAIN,
    MAX_TIME_TO_DRAIN,
    RETENTION_MARGIN,
    MIN_RETENTION_MARGIN,
    STATUS,
    WORST_PARTITION,
    STATE,
    MEMBERS,
    LAST_REBALANCE,
    GENERATION,
    INSTANCE_INFO,
    GROUP_UP,
    LAST_SUCCESS,
];

/// Scrape-time inputs besides the store.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    pub now: SystemTime,
    pub stale_after: Duration,
    pub naming: Naming,
}

impl RenderOptions {
    /// `entry`'s data to export, unless polls have failed for longer than `stale_after`.
    fn fresh<'a>(&self, entry: &'a GroupEntry) -> Option<&'a Polled> {
        entry.fresh_data(self.now, self.stale_after)
    }

    /// `entry`'s fresh data when the cardinality controls let its lag series through.
    pub(super) fn shown<'a>(&self, entry: &'a GroupEntry) -> Option<&'a Polled> {
        self.fresh(entry).filter(|p| !p.derived.skipped)
    }
}

/// A per-partition value from a partition and what was derived for it; `None` skips it.
type PartitionValue = fn(&PartitionProgress, PartitionDerived) -> Option<Value>;
/// A per-group value from the group's poll; `None` skips it.
type GroupValue = fn(&Polled) -> Option<Value>;

/// One family of the lag exposition and how its series are enumerated.
#[derive(Clone, Copy)]
pub(super) enum Step {
    /// A series per partition of every shown group (unit: a topic of a group).
    Partitions(Family, Scheme, PartitionValue),
    /// A series per topic of every shown group, its lag summed (unit: a group).
    TopicLag(Family, Scheme),
    /// A series per shown group (unit: a group).
    Groups(Family, Scheme, GroupValue),
    /// Log-end offsets: one series per instance, topic and partition however many groups
    /// read it (unit: a topic of an instance, see [`LogEnds`]).
    LogEnd(Family, Scheme),
    /// Per-group state and health, for every group it applies to (unit: a group).
    Health(Health),
}

/// The per-group state and health families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Health {
    Status,
    WorstPartition,
    State,
    Members,
    LastRebalance,
    Generation,
    InstanceInfo,
    GroupUp,
    LastSuccess,
}

impl Step {
    pub(super) fn family(&self) -> &Family {
        match self {
            Step::Partitions(f, ..) | Step::TopicLag(f, _) | Step::Groups(f, ..) => f,
            Step::LogEnd(f, _) => f,
            Step::Health(h) => match h {
                Health::Status => &STATUS,
                Health::WorstPartition => &WORST_PARTITION,
                Health::State => &STATE,
                Health::Members => &MEMBERS,
                Health::LastRebalance => &LAST_REBALANCE,
                Health::Generation => &GENERATION,
                Health::InstanceInfo => &INSTANCE_INFO,
                Health::GroupUp => &GROUP_UP,
                Health::LastSuccess => &LAST_SUCCESS,
            },
        }
    }
}

/// How many steps [`steps`] lists (some absent in a naming).
pub(super) const STEPS: usize = 22;

/// Every lag and per-group health family of `naming`, in output order; `None` where the
/// naming has no such family.
pub(super) fn steps(naming: &Naming) -> [Option<Step>; STEPS] {
    let n = naming;
    let scheme = n.labels;
    let ke = Scheme::KafkaExporter;
    [
        Some(Step::Partitions(n.current_offset, scheme, |p, _| {
            p.committed.map(Value::Int)
        })),
        Some(Step::Partitions(n.lag, scheme, |p, _| {
            p.lag().map(Value::Int)
        })),
        Some(Step::Partitions(n.lag_seconds, scheme, |p, _| {
            p.time_lag.map(|t| Value::Float(t.seconds))
        })),
        Some(Step::TopicLag(n.topic_lag, scheme)),
        n.sum_lag.map(|f| {
            Step::Groups(f, scheme, |p| {
                let lags = || p.progress.topics.iter().flat_map(|t| &t.partitions);
                lags()
                    .any(|p| p.committed.is_some())
                    .then(|| Value::Int(lags().filter_map(PartitionProgress::lag).sum()))
            })
        }),
        n.max_lag.map(|f| {
            Step::Groups(f, scheme, |p| {
                p.progress
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .filter_map(PartitionProgress::lag)
                    .max()
                    .map(Value::Int)
            })
        }),
        Some(Step::Partitions(LAST_CONSUMED, ke, |p, _| {
            p.last_consumed_ms
                .map(|ms| Value::Float(ms as f64 / 1000.0))
        })),
        // A partition's log end is one series however many groups read it: every group's
        // poll contributes, skipped or not.
        Some(Step::LogEnd(n.partition_end, scheme)),
        Some(Step::Groups(n.max_lag_seconds, scheme, |p| {
            p.progress
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(|p| p.time_lag.map(|l| l.seconds))
                .reduce(f64::max)
                .map(Value::Float)
        })),
        Some(Step::Partitions(TIME_TO_DRAIN, ke, |_, d| {
            d.time_to_drain.map(Value::Float)
        })),
        Some(Step::Groups(MAX_TIME_TO_DRAIN, ke, |p| {
            p.derived.max_time_to_drain.map(Value::Float)
        })),
        Some(Step::Partitions(RETENTION_MARGIN, ke, |_, d| {
            d.retention_margin.map(Value::Float)
        })),
        Some(Step::Groups(MIN_RETENTION_MARGIN, ke, |p| {
            p.derived.min_retention_margin.map(Value::Float)
        })),
        Some(Step::Health(Health::Status)),
        Some(Step::Health(Health::WorstPartition)),
        Some(Step::Health(Health::State)),
        Some(Step::Health(Health::Members)),
        Some(Step::Health(Health::LastRebalance)),
        Some(Step::Health(Health::Generation)),
        Some(Step::Health(Health::InstanceInfo)),
        Some(Step::Health(Health::GroupUp)),
        Some(Step::Health(Health::LastSuccess)),
    ]
}

/// Starts `line` afresh with a sample line's fixed part for `entry`'s group: the family's
/// name and the group's labels, escaped (see [`text::open`]).
pub(super) fn open_group(line: &mut Vec<u8>, family: &Family, scheme: Scheme, entry: &GroupEntry) {
    line.clear();
    text::open(line, family.name, scheme.group(entry).as_slice());
}

/// Writes the partitions of topic `ti` of a shown group's poll. `line` holds the group's
/// [`open_group`] part in its first `group_len` bytes; the topic's label is appended to
/// it once, and each partition's line is then a copy of it and two numbers.
pub(super) fn topic_partitions(
    out: &mut Vec<u8>,
    line: &mut Vec<u8>,
    group_len: usize,
    value: PartitionValue,
    polled: &Polled,
    ti: usize,
) {
    let topic = &polled.progress.topics[ti];
    line.truncate(group_len);
    text::label(line, "topic", &topic.topic);
    line.extend_from_slice(b",partition=\"");
    // Nothing derived (an empty list) means every partition shown, no derived value.
    let derived = polled
        .derived
        .topics
        .get(ti)
        .map_or(&[][..], |t| &t.partitions[..]);
    let mut num = itoa::Buffer::new();
    for (pi, p) in topic.partitions.iter().enumerate() {
        let d = derived.get(pi).copied().unwrap_or_default();
        if d.hidden {
            continue;
        }
        let Some(v) = value(p, d) else { continue };
        out.extend_from_slice(line);
        out.extend_from_slice(num.format(p.partition).as_bytes());
        out.extend_from_slice(b"\"} ");
        text::write_value(out, v);
        out.push(b'\n');
    }
}

/// Writes a shown group's lag per topic. `line` holds the group's [`open_group`] part.
pub(super) fn topic_lags(out: &mut Vec<u8>, line: &[u8], polled: &Polled) {
    for topic in &polled.progress.topics {
        out.extend_from_slice(line);
        text::label(out, "topic", &topic.topic);
        out.extend_from_slice(b"} ");
        text::write_value(out, Value::Int(topic.lag()));
        out.push(b'\n');
    }
}

/// Writes a shown group's sample of a per-group family.
pub(super) fn group_value(
    out: &mut Vec<u8>,
    family: &Family,
    scheme: Scheme,
    value: GroupValue,
    entry: &GroupEntry,
    polled: &Polled,
) {
    if let Some(v) = value(polled) {
        sample(out, family.name, scheme.group(entry).as_slice(), v);
    }
}

/// Writes the samples of one health family for `entries[i]`, where it applies. `line` is
/// scratch.
pub(super) fn health(
    out: &mut Vec<u8>,
    line: &mut Vec<u8>,
    which: Health,
    entries: &[Arc<GroupEntry>],
    i: usize,
    opts: &RenderOptions,
) {
    let entry = &*entries[i];
    let family = Step::Health(which).family().name;
    let g = group_labels(entry);
    match which {
        Health::Status => {
            if entry.last_attempt.is_none() {
                return;
            }
            let status = if !entry.up {
                Some(Status::Err)
            } else {
                entry
                    .last_good
                    .as_ref()
                    .and_then(|p| p.verdict.as_ref())
                    .map(|v| v.status)
            };
            let Some(status) = status else { return };
            line.clear();
            text::open(line, family, &g);
            for s in Status::ALL {
                one_of(out, line, "status", s.label(), s == status);
            }
        }
        Health::WorstPartition => {
            let worst = opts
                .fresh(entry)
                .filter(|_| entry.up)
                .and_then(|p| p.verdict.as_ref())
                .and_then(|v| v.worst.as_ref());
            if let Some(w) = worst {
                let mut num = itoa::Buffer::new();
                let labels = [
                    g[0],
                    g[1],
                    g[2],
                    ("topic", w.topic.as_str()),
                    ("partition", num.format(w.partition)),
                    ("status", w.status.label()),
                ];
                sample(out, family, &labels, Value::Int(1));
            }
        }
        // Group state and membership, while the group's data is fresh.
        Health::State | Health::Members | Health::LastRebalance | Health::Generation => {
            let Some((info, _)) = opts.fresh(entry).and(entry.info.as_ref()) else {
                return;
            };
            let rebalance = info.rebalance.as_ref();
            let v = match which {
                Health::State => {
                    line.clear();
                    text::open(line, family, &g);
                    for s in GroupState::ALL {
                        one_of(out, line, "state", s.label(), s == info.state);
                    }
                    return;
                }
                Health::Members => info.members.map(|m| Value::Int(i64::from(m))),
                Health::LastRebalance => rebalance
                    .and_then(|r| r.last_ms)
                    .map(|ms| Value::Float(ms as f64 / 1000.0)),
                _ => rebalance.and_then(|r| r.generation).map(Value::Int),
            };
            if let Some(v) = v {
                sample(out, family, &g, v);
            }
        }
        Health::InstanceInfo => {
            let i_ref = &entry.target.instance;
            let id = (i_ref.cloud, &*i_ref.instance_id);
            let previous = i.checked_sub(1).map(|p| &entries[p].target.instance);
            if previous.is_some_and(|p| (p.cloud, &*p.instance_id) == id) {
                return;
            }
            let labels = [
                ("cloud", id.0.as_str()),
                ("instance_id", id.1),
                ("account", &i_ref.account),
                ("region", &i_ref.region),
            ];
            sample(out, family, &labels, Value::Int(1));
        }
        Health::GroupUp => {
            if entry.last_attempt.is_some() {
                sample(out, family, &g, Value::Int(i64::from(entry.up)));
            }
        }
        Health::LastSuccess => {
            if let Some(polled) = &entry.last_good {
                let v = Value::Float(unix_seconds_f64(polled.at));
                sample(out, family, &g, v);
            }
        }
    }
}

/// One sample of a one-of-N family (status, state): `line` holds the family's name and the
/// group's labels; the value is 1 for the current one.
fn one_of(out: &mut Vec<u8>, line: &[u8], name: &str, value: &str, current: bool) {
    out.extend_from_slice(line);
    text::label(out, name, value);
    out.extend_from_slice(if current { b"} 1\n" } else { b"} 0\n" });
}

fn group_labels(entry: &GroupEntry) -> [(&'static str, &str); 3] {
    let i = &entry.target.instance;
    [
        ("cloud", i.cloud.as_str()),
        ("instance_id", &i.instance_id),
        ("consumergroup", &entry.target.group),
    ]
}

/// The log-end offsets of one instance at a time, once per (topic, partition) although
/// several groups report them: the value from the most recent poll among the fresh groups
/// wins (the first in store order when two polls finished at the same moment).
///
/// When a scrape reaches an instance, [`LogEnds::plan`] lists every fresh group's topics
/// there, sorted by topic and newest poll first; each topic is then one unit, its
/// partitions merged from the groups that read it (usually one, already in partition
/// order). Topics are ordered by a hash of their name (with fixed keys, so the order is
/// stable), ties by name: sorting integers keeps this a small part of a scrape. The lists
/// are reused from instance to instance, so a scrape allocates them once.
#[derive(Debug, Default)]
pub(super) struct LogEnds {
    /// The instance planned: its entries `start..end`.
    planned: Option<(usize, usize)>,
    /// The instance's fresh (group, topic) pairs by topic, newest poll first.
    refs: Vec<TopicRef>,
    /// A topic's (partition, contributor rank, log end) while merging several groups.
    merge: Vec<(i32, u32, i64)>,
}

/// One fresh group's topic: the entry and topic index, its poll time and the topic name's
/// hash.
#[derive(Clone, Copy, Debug)]
struct TopicRef {
    hash: u64,
    at: SystemTime,
    entry: u32,
    topic: u32,
}

impl LogEnds {
    /// Plans the instance whose entries start at `start` (unless it is planned already)
    /// and returns the end of its entries and its number of (group, topic) pairs.
    pub(super) fn plan(
        &mut self,
        entries: &[Arc<GroupEntry>],
        start: usize,
        opts: &RenderOptions,
    ) -> (usize, usize) {
        if let Some((s, end)) = self.planned
            && s == start
        {
            return (end, self.refs.len());
        }
        let instance = &entries[start].target.instance;
        let end = start
            + entries[start..]
                .iter()
                .take_while(|e| {
                    let i = &e.target.instance;
                    (i.cloud, &i.instance_id) == (instance.cloud, &instance.instance_id)
                })
                .count();
        self.refs.clear();
        for (e, entry) in entries.iter().enumerate().take(end).skip(start) {
            let Some(polled) = opts.fresh(entry) else {
                continue;
            };
            for (t, topic) in polled.progress.topics.iter().enumerate() {
                // DefaultHasher::new() has fixed keys, so the output order is stable.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                topic.topic.hash(&mut h);
                self.refs.push(TopicRef {
                    hash: h.finish(),
                    at: polled.at,
                    entry: e as u32,
                    topic: t as u32,
                });
            }
        }
        let name = |r: &TopicRef| topic_of(entries, r).topic.as_str();
        self.refs.sort_unstable_by(|a, b| {
            (a.hash, name(a), b.at, a.entry).cmp(&(b.hash, name(b), a.at, b.entry))
        });
        self.planned = Some((start, end));
        (end, self.refs.len())
    }

    /// Writes the log ends of the planned instance's topic whose first pair is `r`, and
    /// returns the next topic's first pair. `line` is scratch.
    pub(super) fn topic(
        &mut self,
        out: &mut Vec<u8>,
        line: &mut Vec<u8>,
        family: &Family,
        scheme: Scheme,
        entries: &[Arc<GroupEntry>],
        r: usize,
    ) -> usize {
        let first = &self.refs[r];
        let topic = topic_of(entries, first);
        let next = r + self.refs[r..]
            .iter()
            .take_while(|o| o.hash == first.hash && topic_of(entries, o).topic == topic.topic)
            .count();
        let i = &entries[first.entry as usize].target.instance;
        line.clear();
        text::open(
            line,
            family.name,
            scheme.instance(i.cloud.as_str(), &i.instance_id).as_slice(),
        );
        text::label(line, "topic", &topic.topic);
        line.extend_from_slice(b",partition=\"");
        let mut num = itoa::Buffer::new();
        let mut emit = |out: &mut Vec<u8>, partition: i32, log_end: i64| {
            out.extend_from_slice(line);
            out.extend_from_slice(num.format(partition).as_bytes());
            out.extend_from_slice(b"\"} ");
            text::write_value(out, Value::Int(log_end));
            out.push(b'\n');
        };
        let ordered = topic
            .partitions
            .windows(2)
            .all(|w| w[0].partition < w[1].partition);
        if next == r + 1 && ordered {
            for p in &topic.partitions {
                emit(out, p.partition, p.log_end);
            }
            return next;
        }
        self.merge.clear();
        for (rank, o) in self.refs[r..next].iter().enumerate() {
            for p in &topic_of(entries, o).partitions {
                self.merge.push((p.partition, rank as u32, p.log_end));
            }
        }
        self.merge.sort_unstable();
        let mut previous = None;
        for &(partition, _, log_end) in &self.merge {
            if previous != Some(partition) {
                emit(out, partition, log_end);
                previous = Some(partition);
            }
        }
        next
    }
}

/// The topic a [`TopicRef`] names (its entry was fresh when planned).
fn topic_of<'a>(entries: &'a [Arc<GroupEntry>], r: &TopicRef) -> &'a crate::model::TopicProgress {
    let polled = entries[r.entry as usize]
        .last_good
        .as_deref()
        .expect("a log-end plan lists polled groups only");
    &polled.progress.topics[r.topic as usize]
}

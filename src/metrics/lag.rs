//! The lag families and per-group health, rendered from the store on every scrape.
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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::text::{Family, Value, header, sample};
use crate::config::MetricNames;
use crate::model::{GroupInfo, GroupState, PartitionProgress, Status};
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
enum Scheme {
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

/// Appends every lag and per-group health family for `entries` (in store order).
pub fn render(out: &mut Vec<u8>, entries: &[Arc<GroupEntry>], opts: &RenderOptions) {
    let all_fresh: Vec<(&GroupEntry, &Polled)> = entries
        .iter()
        .filter_map(|e| e.fresh_data(opts.now, opts.stale_after).map(|p| (&**e, p)))
        .collect();
    // Groups the cardinality controls skip export no lag series.
    let fresh: Vec<(&GroupEntry, &Polled)> = all_fresh
        .iter()
        .filter(|(_, p)| !p.derived.skipped)
        .copied()
        .collect();
    let n = &opts.naming;
    let scheme = n.labels;

    partition_family(out, &n.current_offset, scheme, &fresh, |p, _| {
        p.committed.map(Value::Int)
    });
    partition_family(out, &n.lag, scheme, &fresh, |p, _| p.lag().map(Value::Int));
    partition_family(out, &n.lag_seconds, scheme, &fresh, |p, _| {
        p.time_lag.map(|t| Value::Float(t.seconds))
    });

    header(out, &n.topic_lag);
    for (entry, polled) in &fresh {
        let g = scheme.group(entry);
        for topic in &polled.progress.topics {
            let labels = g.with("topic", &topic.topic);
            sample(
                out,
                n.topic_lag.name,
                labels.as_slice(),
                Value::Int(topic.lag()),
            );
        }
    }
    if let Some(family) = &n.sum_lag {
        group_family(out, family, scheme, &fresh, |p| {
            let lags = || p.progress.topics.iter().flat_map(|t| &t.partitions);
            lags()
                .any(|p| p.committed.is_some())
                .then(|| Value::Int(lags().filter_map(PartitionProgress::lag).sum()))
        });
    }
    if let Some(family) = &n.max_lag {
        group_family(out, family, scheme, &fresh, |p| {
            p.progress
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(PartitionProgress::lag)
                .max()
                .map(Value::Int)
        });
    }

    partition_family(
        out,
        &LAST_CONSUMED,
        Scheme::KafkaExporter,
        &fresh,
        |p, _| {
            p.last_consumed_ms
                .map(|ms| Value::Float(ms as f64 / 1000.0))
        },
    );

    // A partition's log end is one series however many groups read it: every group's poll
    // contributes, skipped or not.
    partition_end(out, &n.partition_end, scheme, &all_fresh);

    group_family(out, &n.max_lag_seconds, scheme, &fresh, |p| {
        p.progress
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.time_lag.map(|l| l.seconds))
            .reduce(f64::max)
            .map(Value::Float)
    });

    partition_family(
        out,
        &TIME_TO_DRAIN,
        Scheme::KafkaExporter,
        &fresh,
        |_, d| d.time_to_drain.map(Value::Float),
    );
    group_family(
        out,
        &MAX_TIME_TO_DRAIN,
        Scheme::KafkaExporter,
        &fresh,
        |p| p.derived.max_time_to_drain.map(Value::Float),
    );
    partition_family(
        out,
        &RETENTION_MARGIN,
        Scheme::KafkaExporter,
        &fresh,
        |_, d| d.retention_margin.map(Value::Float),
    );
    group_family(
        out,
        &MIN_RETENTION_MARGIN,
        Scheme::KafkaExporter,
        &fresh,
        |p| p.derived.min_retention_margin.map(Value::Float),
    );

    header(out, &STATUS);
    for entry in entries.iter().filter(|e| e.last_attempt.is_some()) {
        let status = if !entry.up {
            Some(Status::Err)
        } else {
            entry
                .last_good
                .as_ref()
                .and_then(|p| p.verdict.as_ref())
                .map(|v| v.status)
        };
        let Some(status) = status else { continue };
        let g = group_labels(entry);
        for s in Status::ALL {
            let labels = [g[0], g[1], g[2], ("status", s.label())];
            sample(
                out,
                STATUS.name,
                &labels,
                Value::Int(i64::from(s == status)),
            );
        }
    }

    header(out, &WORST_PARTITION);
    let mut num = itoa::Buffer::new();
    for (entry, polled) in all_fresh.iter().filter(|(e, _)| e.up) {
        if let Some(w) = polled.verdict.as_ref().and_then(|v| v.worst.as_ref()) {
            let g = group_labels(entry);
            let labels = [
                g[0],
                g[1],
                g[2],
                ("topic", w.topic.as_str()),
                ("partition", num.format(w.partition)),
                ("status", w.status.label()),
            ];
            sample(out, WORST_PARTITION.name, &labels, Value::Int(1));
        }
    }

    // Group state and membership, while the group's data is fresh.
    let infos: Vec<(&GroupEntry, &GroupInfo)> = all_fresh
        .iter()
        .filter_map(|(e, _)| e.info.as_ref().map(|(i, _)| (*e, &**i)))
        .collect();
    header(out, &STATE);
    for (entry, info) in &infos {
        let g = group_labels(entry);
        for s in GroupState::ALL {
            let labels = [g[0], g[1], g[2], ("state", s.label())];
            sample(
                out,
                STATE.name,
                &labels,
                Value::Int(i64::from(s == info.state)),
            );
        }
    }
    header(out, &MEMBERS);
    for (entry, info) in &infos {
        if let Some(m) = info.members {
            sample(
                out,
                MEMBERS.name,
                &group_labels(entry),
                Value::Int(i64::from(m)),
            );
        }
    }
    header(out, &LAST_REBALANCE);
    for (entry, info) in &infos {
        if let Some(ms) = info.rebalance.as_ref().and_then(|r| r.last_ms) {
            let v = Value::Float(ms as f64 / 1000.0);
            sample(out, LAST_REBALANCE.name, &group_labels(entry), v);
        }
    }
    header(out, &GENERATION);
    for (entry, info) in &infos {
        if let Some(g) = info.rebalance.as_ref().and_then(|r| r.generation) {
            sample(out, GENERATION.name, &group_labels(entry), Value::Int(g));
        }
    }

    header(out, &INSTANCE_INFO);
    let mut previous: Option<(&str, &str)> = None;
    for entry in entries {
        let i = &entry.target.instance;
        let id = (i.cloud.as_str(), &*i.instance_id);
        if previous == Some(id) {
            continue;
        }
        previous = Some(id);
        let labels = [
            ("cloud", id.0),
            ("instance_id", id.1),
            ("account", &i.account),
            ("region", &i.region),
        ];
        sample(out, INSTANCE_INFO.name, &labels, Value::Int(1));
    }

    header(out, &GROUP_UP);
    for entry in entries.iter().filter(|e| e.last_attempt.is_some()) {
        let v = Value::Int(i64::from(entry.up));
        sample(out, GROUP_UP.name, &group_labels(entry), v);
    }

    header(out, &LAST_SUCCESS);
    for entry in entries {
        if let Some(polled) = &entry.last_good {
            let v = Value::Float(unix_seconds_f64(polled.at));
            sample(out, LAST_SUCCESS.name, &group_labels(entry), v);
        }
    }
}

fn group_labels(entry: &GroupEntry) -> [(&'static str, &str); 3] {
    let i = &entry.target.instance;
    [
        ("cloud", i.cloud.as_str()),
        ("instance_id", &i.instance_id),
        ("consumergroup", &entry.target.group),
    ]
}

/// One per-partition family over every fresh group; `value` reads a partition and what
/// was derived for it, and returns `None` to skip.
fn partition_family(
    out: &mut Vec<u8>,
    family: &Family,
    scheme: Scheme,
    fresh: &[(&GroupEntry, &Polled)],
    value: impl Fn(&PartitionProgress, PartitionDerived) -> Option<Value>,
) {
    header(out, family);
    let mut num = itoa::Buffer::new();
    for (entry, polled) in fresh {
        let g = scheme.group(entry);
        for (ti, topic) in polled.progress.topics.iter().enumerate() {
            for (pi, p) in topic.partitions.iter().enumerate() {
                let derived = polled.derived.partition(ti, pi);
                if derived.hidden {
                    continue;
                }
                let Some(v) = value(p, derived) else {
                    continue;
                };
                let labels = g
                    .with("topic", &topic.topic)
                    .with("partition", num.format(p.partition));
                sample(out, family.name, labels.as_slice(), v);
            }
        }
    }
}

/// One per-group family over every fresh group; `value` returns `None` to skip.
fn group_family(
    out: &mut Vec<u8>,
    family: &Family,
    scheme: Scheme,
    fresh: &[(&GroupEntry, &Polled)],
    value: impl Fn(&Polled) -> Option<Value>,
) {
    header(out, family);
    for (entry, polled) in fresh {
        if let Some(v) = value(polled) {
            sample(out, family.name, scheme.group(entry).as_slice(), v);
        }
    }
}

/// Log-end offsets, once per (cloud, instance, topic, partition) although several groups
/// report them: the value from the most recent poll wins.
///
/// Deduplication sorts integer keys (instance ordinal, topic hash, partition) rather than
/// strings, which keeps it a small part of a 100,000-partition scrape; equal hashes are
/// confirmed by comparing the names, so a hash collision cannot merge two topics.
fn partition_end(
    out: &mut Vec<u8>,
    family: &Family,
    scheme: Scheme,
    fresh: &[(&GroupEntry, &Polled)],
) {
    use std::hash::{Hash, Hasher};

    struct Row<'a> {
        instance: u32,
        topic_hash: u64,
        partition: i32,
        at: SystemTime,
        cloud: &'a str,
        instance_id: &'a str,
        topic: &'a str,
        log_end: i64,
    }
    header(out, family);
    let mut rows: Vec<Row<'_>> = Vec::with_capacity(
        fresh
            .iter()
            .map(|(_, p)| p.progress.partition_count())
            .sum(),
    );
    let mut ordinal = 0u32;
    let mut previous: Option<(&str, &str)> = None;
    for (entry, polled) in fresh {
        let i = &entry.target.instance;
        let id = (i.cloud.as_str(), &*i.instance_id);
        if previous.is_some_and(|p| p != id) {
            ordinal += 1;
        }
        previous = Some(id);
        for topic in &polled.progress.topics {
            // DefaultHasher::new() has fixed keys, so the output order is stable.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            topic.topic.hash(&mut h);
            let topic_hash = h.finish();
            for p in &topic.partitions {
                rows.push(Row {
                    instance: ordinal,
                    topic_hash,
                    partition: p.partition,
                    at: polled.at,
                    cloud: id.0,
                    instance_id: id.1,
                    topic: &topic.topic,
                    log_end: p.log_end,
                });
            }
        }
    }
    // Newest first within each partition, so the first row of a run is the one to keep.
    rows.sort_unstable_by(|a, b| {
        (a.instance, a.topic_hash, a.topic, a.partition, b.at).cmp(&(
            b.instance,
            b.topic_hash,
            b.topic,
            b.partition,
            a.at,
        ))
    });
    rows.dedup_by(|b, a| {
        (a.instance, a.topic_hash, a.partition) == (b.instance, b.topic_hash, b.partition)
            && a.topic == b.topic
    });
    let mut num = itoa::Buffer::new();
    for r in rows {
        let labels = scheme
            .instance(r.cloud, r.instance_id)
            .with("topic", r.topic)
            .with("partition", num.format(r.partition));
        sample(out, family.name, labels.as_slice(), Value::Int(r.log_end));
    }
}

//! Cloud-neutral types: what to poll and what a poll found.
//!
//! Providers convert their wire types into these at their edge; everything downstream
//! (scheduler, store, metrics, reset) sees only these. No cloud field name appears here.

use std::fmt;
use std::sync::Arc;

pub use kcle_cloud::Cloud;

/// One managed Kafka instance, as configured or discovered, with the account that reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceRef {
    pub cloud: Cloud,
    /// The configured account name (`accounts[].name`), for logs and `instance_info`.
    pub account: Arc<str>,
    pub region: Arc<str>,
    pub instance_id: Arc<str>,
}

/// One consumer group of one instance: the unit the scheduler polls.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupTarget {
    pub instance: Arc<InstanceRef>,
    pub group: Arc<str>,
}

impl GroupTarget {
    /// The identity of the series this target produces: (cloud, instance id, group).
    pub fn key(&self) -> GroupKey {
        GroupKey {
            cloud: self.instance.cloud,
            instance_id: self.instance.instance_id.clone(),
            group: self.group.clone(),
        }
    }
}

impl fmt::Display for GroupTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} account {} instance {} group {}",
            self.instance.cloud, self.instance.account, self.instance.instance_id, self.group
        )
    }
}

/// The identity of a group's series. Instance ids are unique within a cloud, so the
/// account and region are not part of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub cloud: Cloud,
    pub instance_id: Arc<str>,
    pub group: Arc<str>,
}

/// The Kafka state of a consumer group, where the cloud reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    Stable,
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Dead,
    Unknown,
}

impl GroupState {
    /// The Kafka spelling (`Stable`, `Empty`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Stable => "Stable",
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Dead => "Dead",
            GroupState::Unknown => "Unknown",
        }
    }

    /// Every state, in label order.
    pub const ALL: [GroupState; 6] = [
        GroupState::Stable,
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Dead,
        GroupState::Unknown,
    ];

    /// The value of the `state` label: Kafka's spelling, `unknown` for anything else.
    pub fn label(self) -> &'static str {
        match self {
            GroupState::Unknown => "unknown",
            other => other.as_str(),
        }
    }

    /// Parses both clouds' spellings (`STABLE`, `Stable`, `PREPARING_REBALANCE`, ...).
    /// States the clouds may add (the new consumer protocol of KIP-848 has its own) are
    /// `Unknown`; callers log the raw value.
    pub fn parse(s: &str) -> GroupState {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        match norm.as_str() {
            "stable" => GroupState::Stable,
            "empty" => GroupState::Empty,
            "preparingrebalance" => GroupState::PreparingRebalance,
            "completingrebalance" => GroupState::CompletingRebalance,
            "dead" => GroupState::Dead,
            _ => GroupState::Unknown,
        }
    }

    /// Whether the group has live members, so that its offsets must not be reset.
    pub fn has_active_members(self) -> bool {
        matches!(
            self,
            GroupState::Stable | GroupState::PreparingRebalance | GroupState::CompletingRebalance
        )
    }
}

/// Everything one poll learned about a consumer group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupProgress {
    /// Topics sorted by name, each with partitions sorted by number.
    pub topics: Vec<TopicProgress>,
    /// The group's state, members and last rebalance, when the cloud reports them in the
    /// same answer (Alibaba); others read them separately.
    pub info: Option<GroupInfo>,
}

impl GroupProgress {
    /// Sorts topics and partitions so that output and comparisons are stable.
    pub fn normalize(&mut self) {
        self.topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        for t in &mut self.topics {
            t.partitions.sort_by_key(|p| p.partition);
        }
    }

    /// Total partitions over all topics.
    pub fn partition_count(&self) -> usize {
        self.topics.iter().map(|t| t.partitions.len()).sum()
    }

    /// Finds a topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicProgress> {
        self.topics.iter().find(|t| t.topic == name)
    }
}

/// One topic of a group's progress.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicProgress {
    pub topic: String,
    pub partitions: Vec<PartitionProgress>,
}

impl TopicProgress {
    /// Lag summed over the partitions that have a committed offset.
    pub fn lag(&self) -> i64 {
        self.partitions
            .iter()
            .filter_map(PartitionProgress::lag)
            .sum()
    }

    /// Finds a partition by number.
    pub fn partition(&self, partition: i32) -> Option<&PartitionProgress> {
        self.partitions.iter().find(|p| p.partition == partition)
    }
}

/// One partition of a topic as seen by one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionProgress {
    pub partition: i32,
    /// The group's committed offset; `None` when the group has never committed here.
    pub committed: Option<i64>,
    /// The partition's log-end offset (the offset the next produced message gets).
    pub log_end: i64,
    /// When the last message the group consumed was produced, in Unix milliseconds;
    /// `None` when the cloud does not know (Alibaba sends -1).
    pub last_consumed_ms: Option<i64>,
    /// Estimated time lag, filled in by the scheduler (see `timelag`).
    pub time_lag: Option<TimeLag>,
}

/// How long ago the oldest unconsumed message (the one at the committed offset) was
/// produced, as of the poll: an estimate and the bounds the facts allow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeLag {
    /// The estimate, seconds; never below `min_seconds`.
    pub seconds: f64,
    /// What the facts guarantee at least.
    pub min_seconds: f64,
    /// What the facts guarantee at most; `None` when nothing bounds it from above (the
    /// message is older than everything observed).
    pub max_seconds: Option<f64>,
    pub method: TimeLagMethod,
}

impl TimeLag {
    /// No lag: the group has consumed everything produced.
    pub const CAUGHT_UP: TimeLag = TimeLag {
        seconds: 0.0,
        min_seconds: 0.0,
        max_seconds: Some(0.0),
        method: TimeLagMethod::CaughtUp,
    };
}

/// Which facts a time lag rests on (see docs/metrics.md for the error bound of each).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeLagMethod {
    /// Lag 0: nothing to consume.
    CaughtUp,
    /// The produce time of the message itself, read from the cloud (Tencent probe).
    Exact,
    /// Between two log-end observations that straddle the message, interpolated.
    Interpolated,
    /// The message is older than every log-end observation: extrapolated at the observed
    /// rate or from the cloud's timestamp of the message before it, and never less than
    /// the time since the log end was first seen.
    BeforeHistory,
}

impl PartitionProgress {
    /// Messages behind the log end, never negative; `None` without a committed offset.
    ///
    /// Clamped at zero because the two offsets are read at slightly different moments
    /// and a committed offset can briefly appear ahead of the log end it was read with.
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end - c).max(0))
    }
}

/// A verdict on a consumer group (see `verdict`), in the label spelling Burrow uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Stall,
    Stop,
    Rewind,
    Err,
}

impl Status {
    /// Every status, in label order.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Warn,
        Status::Stall,
        Status::Stop,
        Status::Rewind,
        Status::Err,
    ];

    /// The value of the `status` label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
            Status::Rewind => "REWIND",
            Status::Err => "ERR",
        }
    }
}

/// A group's verdict and, when it is not OK, the partition that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub worst: Option<WorstPartition>,
}

/// The partition with the worst status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorstPartition {
    pub topic: String,
    pub partition: i32,
    pub status: Status,
}

/// A consumer group's state and membership as the cloud reports them (`reset-offsets`
/// checks them; the exporter exports them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    pub state: GroupState,
    /// Connected members, where the cloud lists them.
    pub members: Option<u32>,
    /// The last rebalance, where the cloud reports it (Alibaba `RebalanceInfoList`).
    pub rebalance: Option<Rebalance>,
}

/// A consumer group's last rebalance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebalance {
    /// Rebalances so far (the group generation).
    pub generation: Option<i64>,
    /// When the last rebalance happened, Unix milliseconds.
    pub last_ms: Option<i64>,
    pub succeeded: Option<bool>,
    pub duration_ms: Option<i64>,
}

impl GroupInfo {
    /// Whether the group has connected consumers (by state, or by a member count > 0).
    pub fn is_active(&self) -> bool {
        self.state.has_active_members() || self.members.is_some_and(|m| m > 0)
    }

    /// Whether the answer says anything about membership: a known state or a member
    /// count. When it does not (Alibaba's documented `GetConsumerProgress` answer has
    /// neither), an inactive-looking group may still have live consumers.
    pub fn membership_known(&self) -> bool {
        self.state != GroupState::Unknown || self.members.is_some()
    }
}

/// An instance found by discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredInstance {
    pub instance_id: String,
    /// The instance's display name in the console.
    pub name: String,
}

/// Where `reset-offsets` moves a group's offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetTarget {
    /// The log-end offset of each partition.
    Latest,
    /// The earliest retained offset of each partition.
    Earliest,
    /// The first offset produced at or after this Unix time in milliseconds.
    Timestamp(i64),
    /// Explicit offsets: (partition, offset). Needs a single topic.
    Offsets(Vec<(i32, i64)>),
    /// Move every selected partition by this many messages (negative: back).
    ShiftBy(i64),
}

/// Which topics and partitions a reset applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetScope {
    /// Every topic the group consumes; the list is what the group's progress showed
    /// (Tencent needs the names, Alibaba sends an empty `Topic`).
    AllTopics(Vec<String>),
    /// One topic.
    Topic(String),
    /// Several whole topics.
    Topics(Vec<String>),
    /// Some partitions of one topic.
    Partitions { topic: String, partitions: Vec<i32> },
}

impl ResetScope {
    /// Whether partition `partition` of `topic` is in the scope.
    pub fn covers(&self, topic: &str, partition: i32) -> bool {
        match self {
            ResetScope::AllTopics(list) | ResetScope::Topics(list) => {
                list.iter().any(|t| t == topic)
            }
            ResetScope::Topic(t) => t == topic,
            ResetScope::Partitions {
                topic: t,
                partitions,
            } => t == topic && partitions.contains(&partition),
        }
    }
}

/// A reset: scope and target. A writer may need several calls for one (see
/// `OffsetWriter::reset_calls`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetRequest {
    pub scope: ResetScope,
    pub target: ResetTarget,
}

impl ResetRequest {
    /// Whether this reset moves partition `partition` of `topic`: in the scope, and for
    /// explicit offsets one of those given.
    pub fn covers(&self, topic: &str, partition: i32) -> bool {
        self.scope.covers(topic, partition)
            && match &self.target {
                ResetTarget::Offsets(list) => list.iter().any(|(p, _)| *p == partition),
                _ => true,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_clamped_and_absent_without_commit() {
        let mut p = PartitionProgress {
            partition: 0,
            committed: Some(110),
            log_end: 100,
            ..Default::default()
        };
        assert_eq!(p.lag(), Some(0));
        p.committed = Some(40);
        assert_eq!(p.lag(), Some(60));
        p.committed = None;
        assert_eq!(p.lag(), None);
    }

    #[test]
    fn group_state_parses_both_spellings() {
        assert_eq!(GroupState::parse("STABLE"), GroupState::Stable);
        assert_eq!(GroupState::parse("Stable"), GroupState::Stable);
        assert_eq!(
            GroupState::parse("PREPARING_REBALANCE"),
            GroupState::PreparingRebalance
        );
        assert_eq!(
            GroupState::parse("CompletingRebalance"),
            GroupState::CompletingRebalance
        );
        assert_eq!(GroupState::parse("EMPTY"), GroupState::Empty);
        assert_eq!(GroupState::parse("weird"), GroupState::Unknown);
        assert!(GroupState::Stable.has_active_members());
        assert!(!GroupState::Empty.has_active_members());
    }

    #[test]
    fn topic_lag_sums_committed_partitions_only() {
        let t = TopicProgress {
            topic: "orders".into(),
            partitions: vec![
                PartitionProgress {
                    partition: 0,
                    committed: Some(5),
                    log_end: 10,
                    ..Default::default()
                },
                PartitionProgress {
                    partition: 1,
                    committed: None,
                    log_end: 10,
                    ..Default::default()
                },
                PartitionProgress {
                    partition: 2,
                    committed: Some(12),
                    log_end: 10,
                    ..Default::default()
                },
            ],
        };
        assert_eq!(t.lag(), 5);
    }
}

//! Which lag series are exported when there are too many: groups skipped by their Kafka
//! state, and, above a per-instance limit of (group, partition) pairs, only each group's
//! partitions of largest lag (its per-group series stay).
//!
//! Decided when a poll is published, from that poll and a running count of each
//! instance's pairs (kept here, updated per publish), so that a scrape never counts across
//! groups. A change of an instance's side of the limit applies to each of its groups from
//! that group's next poll on, within one `poll_interval`, and is logged once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Cloud, GroupInfo, GroupKey, GroupProgress, GroupState};

/// A set of Kafka group states.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StateSet(u8);

impl StateSet {
    pub fn of(states: impl IntoIterator<Item = GroupState>) -> StateSet {
        StateSet(states.into_iter().fold(0, |m, s| m | StateSet::bit(s)))
    }

    fn bit(s: GroupState) -> u8 {
        1 << GroupState::ALL.iter().position(|x| *x == s).unwrap_or(0)
    }

    pub fn contains(self, s: GroupState) -> bool {
        self.0 & StateSet::bit(s) != 0
    }
}

/// The cardinality controls in force (`cardinality` in the configuration).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Groups in these states export no lag series...
    pub skip_states: StateSet,
    /// ...also when they have lag.
    pub skip_with_lag: bool,
    /// Most (group, partition) pairs of one instance exported per partition.
    pub max_partition_series: usize,
    /// Partitions of largest lag each group keeps above the limit.
    pub top_partitions: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            skip_states: StateSet::default(),
            skip_with_lag: false,
            max_partition_series: usize::MAX,
            top_partitions: 0,
        }
    }
}

impl Policy {
    /// Whether a group in `info`'s state with `lag` messages (summed) is skipped. A group
    /// whose state is unknown never is.
    pub fn skips(&self, info: Option<&GroupInfo>, lag: i64) -> bool {
        info.is_some_and(|i| {
            self.skip_states.contains(i.state)
                && i.state != GroupState::Unknown
                && (lag == 0 || self.skip_with_lag)
        })
    }
}

/// Why series are left out, for the `reason` label.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// `skip_groups`: the group's state.
    GroupState,
    /// `max_partition_series`: the instance has too many (group, partition) pairs.
    PartitionLimit,
}

impl Reason {
    pub const ALL: [Reason; 2] = [Reason::GroupState, Reason::PartitionLimit];

    pub fn label(self) -> &'static str {
        match self {
            Reason::GroupState => "group_state",
            Reason::PartitionLimit => "partition_limit",
        }
    }
}

/// What the controls decided for one published poll.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposure {
    /// The group's lag series are left out altogether.
    pub skipped: bool,
    /// When partitions are limited: per topic and partition (progress order), whether the
    /// partition is among the group's `top_partitions` by lag. Empty: all shown.
    pub shown: Vec<Vec<bool>>,
}

/// Which partitions of `progress` are its `n` of largest lag (ties: the earlier topic and
/// partition), per topic and partition in progress order.
pub fn top_partitions(progress: &GroupProgress, n: usize) -> Vec<Vec<bool>> {
    let mut rows: Vec<(i64, usize, usize)> = progress
        .topics
        .iter()
        .enumerate()
        .flat_map(|(t, topic)| {
            topic
                .partitions
                .iter()
                .enumerate()
                .map(move |(p, part)| (part.lag().unwrap_or(-1), t, p))
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut shown: Vec<Vec<bool>> = progress
        .topics
        .iter()
        .map(|t| vec![false; t.partitions.len()])
        .collect();
    for &(_, t, p) in rows.iter().take(n) {
        shown[t][p] = true;
    }
    shown
}

/// One instance's running counts.
#[derive(Debug, Default)]
struct InstanceTally {
    /// (group, partition) pairs exported per partition, or that would be without the
    /// limit: the sum over the instance's groups that are not skipped.
    pairs: usize,
    over_limit: bool,
    /// Series left out now, by reason.
    suppressed: [usize; 2],
}

/// Running counts per instance, updated as polls are published.
#[derive(Debug, Default)]
pub struct Tally {
    /// Per group: its pairs and its suppressed series by reason, as last published.
    groups: HashMap<GroupKey, (usize, [usize; 2])>,
    instances: HashMap<(Cloud, Arc<str>), InstanceTally>,
}

/// One instance's suppressed series, for `/metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct Suppressed {
    pub cloud: Cloud,
    pub instance_id: Arc<str>,
    pub reason: Reason,
    pub series: usize,
}

impl Tally {
    /// Records that `group` now has `pairs` (group, partition) pairs counted against its
    /// instance's limit, and returns whether the instance is over `limit`. Logs when the
    /// instance crosses it.
    pub fn count(&mut self, group: &GroupKey, pairs: usize, limit: usize) -> bool {
        let entry = self.groups.entry(group.clone()).or_default();
        let before = std::mem::replace(&mut entry.0, pairs);
        let key = (group.cloud, group.instance_id.clone());
        let inst = self.instances.entry(key).or_default();
        inst.pairs = inst.pairs + pairs - before;
        let over = inst.pairs > limit;
        if over != inst.over_limit {
            inst.over_limit = over;
            if over {
                tracing::warn!(
                    cloud = %group.cloud, instance = %group.instance_id, pairs = inst.pairs, limit,
                    "the instance has {} (group, partition) pairs, more than cardinality.max_partition_series ({limit}): its groups now export only their top partitions by lag, and their per-group series; raise the limit or skip groups to keep every partition",
                    inst.pairs
                );
            } else {
                tracing::info!(
                    cloud = %group.cloud, instance = %group.instance_id, pairs = inst.pairs, limit,
                    "the instance is back within cardinality.max_partition_series: every partition is exported again"
                );
            }
        }
        over
    }

    /// Records the series `group`'s last published poll leaves out, by reason.
    pub fn suppress(&mut self, group: &GroupKey, series: [usize; 2]) {
        let entry = self.groups.entry(group.clone()).or_default();
        let before = std::mem::replace(&mut entry.1, series);
        let key = (group.cloud, group.instance_id.clone());
        let inst = self.instances.entry(key).or_default();
        for ((total, new), old) in inst.suppressed.iter_mut().zip(series).zip(before) {
            *total = *total + new - old;
        }
    }

    /// Forgets groups that are no longer polled (and instances left without groups).
    pub fn retain(&mut self, keep: impl Fn(&GroupKey) -> bool) {
        let instances = &mut self.instances;
        self.groups.retain(|k, (pairs, suppressed)| {
            let kept = keep(k);
            if !kept && let Some(inst) = instances.get_mut(&(k.cloud, k.instance_id.clone())) {
                inst.pairs -= *pairs;
                for (total, gone) in inst.suppressed.iter_mut().zip(suppressed.iter()) {
                    *total -= gone;
                }
            }
            kept
        });
        let groups = &self.groups;
        self.instances.retain(|(cloud, id), _| {
            groups
                .keys()
                .any(|k| k.cloud == *cloud && k.instance_id == *id)
        });
    }

    /// Every instance's suppressed series by reason (0 included), sorted.
    pub fn suppressed(&self) -> Vec<Suppressed> {
        let mut out: Vec<Suppressed> = self
            .instances
            .iter()
            .flat_map(|((cloud, id), inst)| {
                Reason::ALL.into_iter().map(move |reason| Suppressed {
                    cloud: *cloud,
                    instance_id: id.clone(),
                    reason,
                    series: inst.suppressed[reason as usize],
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.cloud, &a.instance_id, a.reason).cmp(&(b.cloud, &b.instance_id, b.reason))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartitionProgress, TopicProgress};

    fn key(instance: &str, group: &str) -> GroupKey {
        GroupKey {
            cloud: Cloud::Tencent,
            instance_id: instance.into(),
            group: group.into(),
        }
    }

    fn info(state: GroupState) -> GroupInfo {
        GroupInfo {
            state,
            members: None,
            rebalance: None,
        }
    }

    #[test]
    fn groups_are_skipped_by_state_and_lag() {
        let p = Policy {
            skip_states: StateSet::of([GroupState::Empty, GroupState::Dead]),
            ..Policy::default()
        };
        assert!(p.skips(Some(&info(GroupState::Empty)), 0));
        assert!(p.skips(Some(&info(GroupState::Dead)), 0));
        assert!(
            !p.skips(Some(&info(GroupState::Empty)), 5),
            "a backlog stays visible"
        );
        assert!(!p.skips(Some(&info(GroupState::Stable)), 0));
        assert!(!p.skips(None, 0), "state unknown");
        let all = Policy {
            skip_with_lag: true,
            ..p
        };
        assert!(all.skips(Some(&info(GroupState::Empty)), 5));
        assert!(!Policy::default().skips(Some(&info(GroupState::Empty)), 0));
        let unknown = Policy {
            skip_states: StateSet::of([GroupState::Unknown]),
            ..Policy::default()
        };
        assert!(!unknown.skips(Some(&info(GroupState::Unknown)), 0));
    }

    #[test]
    fn top_partitions_by_lag_ties_in_order() {
        let progress = GroupProgress {
            topics: ["a", "b"]
                .iter()
                .map(|t| TopicProgress {
                    topic: t.to_string(),
                    partitions: [(Some(5), 10), (None, 9), (Some(0), 100), (Some(3), 8)]
                        .iter()
                        .enumerate()
                        .map(|(i, &(committed, log_end))| PartitionProgress {
                            partition: i as i32,
                            committed,
                            log_end,
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            info: None,
        };
        // Lags: a0 5, a1 -, a2 100, a3 3; b the same. The top three: a2, b2, then a0.
        assert_eq!(
            top_partitions(&progress, 3),
            [
                vec![true, false, true, false],
                vec![false, false, true, false]
            ]
        );
        assert!(top_partitions(&progress, 0).iter().flatten().all(|s| !s));
        assert!(top_partitions(&progress, 99).iter().flatten().all(|s| *s));
    }

    #[test]
    fn the_tally_follows_publishes_and_removals() {
        let mut t = Tally::default();
        assert!(!t.count(&key("i", "a"), 60, 100));
        assert!(t.count(&key("i", "b"), 50, 100), "110 > 100");
        assert!(!t.count(&key("j", "c"), 50, 100), "another instance");
        assert!(!t.count(&key("i", "b"), 40, 100), "shrank to 100");
        t.suppress(&key("i", "a"), [3, 0]);
        t.suppress(&key("i", "b"), [0, 7]);
        t.suppress(&key("i", "b"), [0, 5]);
        let series = |t: &Tally| -> Vec<(String, &'static str, usize)> {
            t.suppressed()
                .into_iter()
                .map(|s| (s.instance_id.to_string(), s.reason.label(), s.series))
                .collect()
        };
        assert_eq!(
            series(&t),
            [
                ("i".to_string(), "group_state", 3),
                ("i".to_string(), "partition_limit", 5),
                ("j".to_string(), "group_state", 0),
                ("j".to_string(), "partition_limit", 0),
            ]
        );
        t.retain(|k| &*k.group != "a" && &*k.instance_id != "j");
        assert_eq!(
            series(&t),
            [
                ("i".to_string(), "group_state", 0),
                ("i".to_string(), "partition_limit", 5),
            ]
        );
        assert!(
            t.count(&key("i", "d"), 61, 100),
            "40 + 61 > 100: a removed group no longer counts"
        );
    }

    #[test]
    fn the_default_limit_keeps_100_000_partitions_of_one_instance() {
        let mut t = Tally::default();
        let limit = crate::config::DEFAULT_MAX_PARTITION_SERIES;
        for g in 0..1_000 {
            assert!(
                !t.count(&key("i", &format!("g{g}")), 100, limit),
                "group {g}"
            );
        }
        assert!(t.count(&key("i", "one-more"), 1, limit));
    }
}

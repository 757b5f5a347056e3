//! The latest poll result of every consumer group, each replaced atomically, plus
//! readiness.
//!
//! The scheduler writes one group at a time (an `Arc` swap under a short lock); a scrape
//! takes a consistent list of `Arc`s and renders from it without holding the lock. The
//! store knows nothing of Prometheus or of the clouds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::model::{GroupInfo, GroupKey, GroupProgress, GroupTarget, Verdict};

/// A successful poll's data, the verdict it led to, and when it was taken.
#[derive(Debug, PartialEq)]
pub struct Polled {
    pub progress: GroupProgress,
    pub verdict: Option<Verdict>,
    pub at: SystemTime,
    /// What was derived from it when it was published.
    pub derived: Derived,
}

/// Values derived from a poll when it is published (see `derive`), so that rendering
/// reads each group's series from its own snapshot without computing across groups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    /// Per topic of the progress, in the same order; empty when nothing was derived
    /// (then every partition is shown and has no derived value).
    pub topics: Vec<TopicDerived>,
    /// The longest time to drain over the group's partitions, when every partition with
    /// lag has one.
    pub max_time_to_drain: Option<f64>,
    /// The smallest retention margin over the group's partitions.
    pub min_retention_margin: Option<f64>,
    /// The cardinality controls leave the group's lag series out.
    pub skipped: bool,
    /// Series the cardinality controls leave out of this group's exposition: for its
    /// state, and for the partition limit.
    pub suppressed: [usize; 2],
}

/// What was derived for one topic of a group's progress.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicDerived {
    /// Per partition of the topic, in the progress's order.
    pub partitions: Vec<PartitionDerived>,
}

/// What was derived for one partition of a group's progress.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PartitionDerived {
    /// Seconds to consume the partition's lag at its recent consume rate.
    pub time_to_drain: Option<f64>,
    /// Seconds until the oldest unconsumed message reaches the topic's retention
    /// (negative: past it), where there is lag and both are known.
    pub retention_margin: Option<f64>,
    /// The cardinality controls leave the partition's series out (it is not among its
    /// group's partitions of largest lag while its instance is over the limit).
    pub hidden: bool,
}

impl Derived {
    /// What was derived for partition `p` of topic `t` (by position in the progress).
    pub fn partition(&self, t: usize, p: usize) -> PartitionDerived {
        self.topics
            .get(t)
            .and_then(|t| t.partitions.get(p))
            .copied()
            .unwrap_or_default()
    }
}

/// What the store knows about one group.
#[derive(Debug, Clone)]
pub struct GroupEntry {
    pub target: GroupTarget,
    /// The last successful poll, kept while later polls fail.
    pub last_good: Option<Arc<Polled>>,
    /// When the last poll (successful or not) finished; `None` before the first.
    pub last_attempt: Option<SystemTime>,
    /// Whether the last poll succeeded.
    pub up: bool,
    /// The group's state and membership as last reported (with the progress, or read
    /// separately), and when.
    pub info: Option<(Arc<GroupInfo>, SystemTime)>,
}

impl GroupEntry {
    fn new(target: GroupTarget) -> Self {
        GroupEntry {
            target,
            last_good: None,
            last_attempt: None,
            up: false,
            info: None,
        }
    }

    /// The data to export at `now`: the last good poll, unless polls have been failing
    /// for longer than `stale_after` since it (then the group's lag series disappear).
    pub fn fresh_data(&self, now: SystemTime, stale_after: Duration) -> Option<&Polled> {
        let polled = self.last_good.as_deref()?;
        if self.up {
            return Some(polled);
        }
        match now.duration_since(polled.at) {
            Ok(age) if age > stale_after => None,
            _ => Some(polled),
        }
    }
}

/// Every group's latest state, in (cloud, instance id, group) order.
#[derive(Debug, Default)]
pub struct Store {
    groups: RwLock<BTreeMap<GroupKey, Arc<GroupEntry>>>,
    ready: AtomicBool,
    /// How long a failing group's last values stay exported, in milliseconds.
    stale_after_ms: AtomicU64,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the set of groups exactly `targets`: new groups are added (not yet polled),
    /// groups no longer targeted are dropped with their series, others keep their data.
    pub fn set_targets(&self, targets: &[GroupTarget]) {
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::new();
        for t in targets {
            let key = t.key();
            let entry = match groups.remove(&key) {
                // An instance's account or region may change on reload: keep the data,
                // take the new target.
                Some(e) if e.target == *t => e,
                Some(e) => Arc::new(GroupEntry {
                    target: t.clone(),
                    ..(*e).clone()
                }),
                None => Arc::new(GroupEntry::new(t.clone())),
            };
            next.insert(key, entry);
        }
        *groups = next;
    }

    /// Records a successful poll with nothing derived from it.
    pub fn record_success(
        &self,
        target: &GroupTarget,
        progress: GroupProgress,
        verdict: Option<Verdict>,
        at: SystemTime,
    ) {
        self.record_poll(
            target,
            Polled {
                progress,
                verdict,
                at,
                derived: Derived::default(),
            },
        );
    }

    /// Records a successful poll, replacing the group's data at once.
    pub fn record_poll(&self, target: &GroupTarget, polled: Polled) {
        self.update(target, |e| {
            if let Some(info) = &polled.progress.info {
                e.info = Some((Arc::new(info.clone()), polled.at));
            }
            e.last_attempt = Some(polled.at);
            e.last_good = Some(Arc::new(polled));
            e.up = true;
        });
    }

    /// Records a group's state and membership read apart from its progress.
    pub fn record_info(&self, target: &GroupTarget, info: GroupInfo, at: SystemTime) {
        self.update(target, |e| e.info = Some((Arc::new(info), at)));
    }

    /// Records a failed poll: the last good data stays, `up` turns false.
    pub fn record_failure(&self, target: &GroupTarget, at: SystemTime) {
        self.update(target, |e| {
            e.last_attempt = Some(at);
            e.up = false;
        });
    }

    /// Drops a group (e.g. the cloud says it no longer exists).
    pub fn remove(&self, key: &GroupKey) -> bool {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .is_some()
    }

    /// The current entries, in key order. Cheap: clones `Arc`s only.
    pub fn entries(&self) -> Vec<Arc<GroupEntry>> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// One group's entry.
    pub fn get(&self, key: &GroupKey) -> Option<Arc<GroupEntry>> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets how long a failing group's last values stay exported.
    pub fn set_stale_after(&self, d: Duration) {
        self.stale_after_ms
            .store(d.as_millis() as u64, Ordering::Release);
    }

    /// How long a failing group's last values stay exported.
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms.load(Ordering::Acquire))
    }

    /// Marks the first poll round as done.
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether the first poll round has finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Applies `f` to a copy of the group's entry and swaps it in; ignores groups that are
    /// no longer targeted (a poll can finish after a reload removed its group).
    fn update(&self, target: &GroupTarget, f: impl FnOnce(&mut GroupEntry)) {
        let key = target.key();
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = groups.get_mut(&key) {
            let mut entry = (**slot).clone();
            f(&mut entry);
            *slot = Arc::new(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cloud, InstanceRef};

    fn target(group: &str) -> GroupTarget {
        GroupTarget {
            instance: Arc::new(InstanceRef {
                cloud: Cloud::Tencent,
                account: "acct".into(),
                region: "ap-guangzhou".into(),
                instance_id: "ckafka-1".into(),
            }),
            group: group.into(),
        }
    }

    #[test]
    fn failures_keep_data_until_stale() {
        let store = Store::new();
        let t = target("g");
        store.set_targets(std::slice::from_ref(&t));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        store.record_success(&t, GroupProgress::default(), None, t0);
        store.record_failure(&t, t0 + Duration::from_secs(30));
        let e = store.get(&t.key()).unwrap();
        assert!(!e.up);
        let stale_after = Duration::from_secs(90);
        assert!(
            e.fresh_data(t0 + Duration::from_secs(90), stale_after)
                .is_some()
        );
        assert!(
            e.fresh_data(t0 + Duration::from_secs(91), stale_after)
                .is_none()
        );
    }

    #[test]
    fn set_targets_adds_and_drops() {
        let store = Store::new();
        let (a, b) = (target("a"), target("b"));
        store.set_targets(&[a.clone(), b.clone()]);
        store.record_success(&a, GroupProgress::default(), None, SystemTime::UNIX_EPOCH);
        store.set_targets(std::slice::from_ref(&a));
        assert_eq!(store.len(), 1);
        assert!(
            store.get(&a.key()).unwrap().up,
            "kept groups keep their data"
        );
        // A late poll result for a dropped group is ignored.
        store.record_success(&b, GroupProgress::default(), None, SystemTime::UNIX_EPOCH);
        assert!(store.get(&b.key()).is_none());
    }
}

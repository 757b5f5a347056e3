//! How long the polled topics keep messages, read from the clouds alongside discovery: the
//! topics never seen before after every round, all of them again every
//! `discovery_interval`, each request through the account's budget like any other. A poll
//! looks its topics up here when it is published (for the retention margin); a topic the
//! cloud says nothing about, or that was not read yet, has no retention, and a failed read
//! keeps what the last one found.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{MIN_DISCOVERY_TIMEOUT, Scheduler, lock};
use crate::model::{Cloud, InstanceRef};
use crate::providers::{self, ErrorKind, Provider, ProviderError, RetentionScope};

/// One instance's topics and their retention; `None`: the cloud was asked and did not say.
type Topics = BTreeMap<Arc<str>, Option<Duration>>;

/// The retention of every topic read so far, by (cloud, instance id) and topic.
#[derive(Debug, Default)]
pub struct RetentionTable {
    instances: HashMap<(Cloud, Arc<str>), Topics>,
    /// [`RetentionTable::entries`] as last listed, until the table changes: every scrape
    /// shows them, and one list is shared by the scrapes in flight.
    listed: Option<Arc<[TopicRetention]>>,
}

/// One topic's retention, for `/metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicRetention {
    pub cloud: Cloud,
    pub instance_id: Arc<str>,
    pub topic: Arc<str>,
    pub retention: Duration,
}

impl RetentionTable {
    /// The retention of `topic`, where known.
    pub fn get(&self, cloud: Cloud, instance_id: &Arc<str>, topic: &str) -> Option<Duration> {
        self.instances
            .get(&(cloud, instance_id.clone()))
            .and_then(|t| t.get(topic).copied().flatten())
    }

    /// Whether `topic` was read (with or without an answer).
    fn known(&self, cloud: Cloud, instance_id: &Arc<str>, topic: &str) -> bool {
        self.instances
            .get(&(cloud, instance_id.clone()))
            .is_some_and(|t| t.contains_key(topic))
    }

    fn set(&mut self, cloud: Cloud, instance_id: &Arc<str>, topic: &str, r: Option<Duration>) {
        self.listed = None;
        self.instances
            .entry((cloud, instance_id.clone()))
            .or_default()
            .insert(topic.into(), r);
    }

    /// Keeps only the topics in `wanted`, by instance.
    fn retain(&mut self, wanted: &BTreeMap<Arc<InstanceRef>, BTreeSet<String>>) {
        let keep: HashMap<(Cloud, Arc<str>), &BTreeSet<String>> = wanted
            .iter()
            .map(|(i, t)| ((i.cloud, i.instance_id.clone()), t))
            .collect();
        self.listed = None;
        self.instances.retain(|k, topics| match keep.get(k) {
            Some(w) => {
                topics.retain(|t, _| w.contains(&**t));
                true
            }
            None => false,
        });
    }

    /// Every known retention, sorted by cloud, instance and topic.
    pub fn entries(&mut self) -> Arc<[TopicRetention]> {
        if let Some(listed) = &self.listed {
            return listed.clone();
        }
        let mut out: Vec<TopicRetention> = self
            .instances
            .iter()
            .flat_map(|((cloud, id), topics)| {
                topics.iter().filter_map(move |(topic, r)| {
                    r.map(|retention| TopicRetention {
                        cloud: *cloud,
                        instance_id: id.clone(),
                        topic: topic.clone(),
                        retention,
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.cloud, &a.instance_id, &a.topic).cmp(&(b.cloud, &b.instance_id, &b.topic))
        });
        self.listed.insert(out.into()).clone()
    }
}

impl Scheduler {
    /// Reads the retention of the topics the polled groups consume (as their last
    /// successful polls showed), on accounts with `read_retention` and clouds that report
    /// it: every topic when `full`, else only those not read yet. Instances are read
    /// concurrently, the topics of one instance one after the other; a failure is logged
    /// once per instance and keeps what was known.
    pub async fn refresh_retention(self: &Arc<Self>, full: bool) {
        let plan = self.plan();
        let mut wanted: BTreeMap<Arc<InstanceRef>, BTreeSet<String>> = BTreeMap::new();
        for t in self.targets().iter() {
            let reads = plan
                .accounts
                .get(&t.instance.account)
                .is_some_and(|a| a.read_retention);
            if !reads || providers::profile(t.instance.cloud).retention.is_none() {
                continue;
            }
            let topics = wanted.entry(t.instance.clone()).or_default();
            if let Some(polled) = self.store.get(&t.key()).and_then(|e| e.last_good.clone()) {
                topics.extend(polled.progress.topics.iter().map(|t| t.topic.clone()));
            }
        }
        lock(&self.retention).retain(&wanted);
        let mut tasks = JoinSet::new();
        for (instance, topics) in wanted {
            let topics: Vec<String> = {
                let table = lock(&self.retention);
                topics
                    .into_iter()
                    .filter(|t| full || !table.known(instance.cloud, &instance.instance_id, t))
                    .collect()
            };
            let provider = plan
                .accounts
                .get(&instance.account)
                .and_then(|a| a.provider(&instance.region));
            let (false, Some(provider)) = (topics.is_empty(), provider) else {
                continue;
            };
            let this = self.clone();
            tasks.spawn(async move { this.read_retention(&instance, &*provider, &topics).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Reads the retention of `topics` of one instance into the table.
    async fn read_retention(
        &self,
        instance: &InstanceRef,
        provider: &dyn Provider,
        topics: &[String],
    ) {
        let Some((scope, action)) = providers::profile(instance.cloud).retention else {
            return;
        };
        let timeout = self.settings().poll_timeout.max(MIN_DISCOVERY_TIMEOUT);
        let (cloud, id) = (instance.cloud, &instance.instance_id);
        let mut failed: Option<(ProviderError, usize)> = None;
        let mut fail = |e: ProviderError| match &mut failed {
            Some((_, n)) => *n += 1,
            None => failed = Some((e, 1)),
        };
        match scope {
            RetentionScope::Instance => {
                let deadline = self.clock.instant() + timeout;
                match provider.instance_retention(instance, deadline).await {
                    Ok(r) => {
                        let mut table = lock(&self.retention);
                        for t in topics {
                            table.set(cloud, id, t, r);
                        }
                    }
                    Err(e) => fail(e),
                }
            }
            RetentionScope::Topic => {
                for topic in topics {
                    let deadline = self.clock.instant() + timeout;
                    match provider.topic_retention(instance, topic, deadline).await {
                        Ok(r) => lock(&self.retention).set(cloud, id, topic, r),
                        // The topic went away: nothing to count down to.
                        Err(e) if e.kind == ErrorKind::NotFound => {
                            lock(&self.retention).set(cloud, id, topic, None)
                        }
                        // The next topic would fail the same way.
                        Err(e) if matches!(e.kind, ErrorKind::Auth | ErrorKind::Credentials) => {
                            fail(e);
                            break;
                        }
                        Err(e) => fail(e),
                    }
                }
            }
        }
        if let Some((e, n)) = failed {
            tracing::warn!(
                cloud = %cloud, account = %instance.account, instance = %id, action,
                kind = %e.kind, code = %e.code.as_deref().unwrap_or(""),
                request_id = %e.request_id.as_deref().unwrap_or(""), failures = n, error = %e,
                "reading topic retention failed; the retention margin keeps what was known (grant the read permission, or set read_retention: false)"
            );
        }
    }

    /// The daemon's retention reads: all topics at once and every `discovery_interval`,
    /// the ones not read yet after each round.
    pub(super) async fn retention_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut rounds = self.rounds_finished();
        let mut last_full = None;
        loop {
            let now = self.clock.instant();
            let full = last_full.is_none_or(|t| now - t >= self.settings().discovery_interval);
            tokio::select! {
                _ = self.refresh_retention(full) => {}
                _ = crate::signals::stopped(&mut shutdown) => return,
            }
            if full {
                last_full = Some(now);
            }
            tokio::select! {
                changed = rounds.changed() => if changed.is_err() { return },
                _ = crate::signals::stopped(&mut shutdown) => return,
            }
        }
    }

    /// The retention of every topic read so far, for `/metrics`.
    pub fn retention(&self) -> Arc<[TopicRetention]> {
        lock(&self.retention).entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_what_is_wanted_and_tells_unknown_from_unread() {
        let mut t = RetentionTable::default();
        let id: Arc<str> = "i".into();
        let day = Some(Duration::from_secs(86_400));
        t.set(Cloud::Tencent, &id, "a", day);
        t.set(Cloud::Tencent, &id, "b", None);
        assert_eq!(t.get(Cloud::Tencent, &id, "a"), day);
        assert_eq!(t.get(Cloud::Tencent, &id, "b"), None);
        assert!(t.known(Cloud::Tencent, &id, "b"), "asked, no answer");
        assert!(!t.known(Cloud::Tencent, &id, "c"));
        assert_eq!(t.get(Cloud::Alibaba, &id, "a"), None, "another cloud");
        assert_eq!(t.entries().len(), 1);
        assert!(Arc::ptr_eq(&t.entries(), &t.entries()), "listed once");
        let instance = Arc::new(InstanceRef {
            cloud: Cloud::Tencent,
            account: "acct".into(),
            region: "r".into(),
            instance_id: id.clone(),
        });
        let wanted = BTreeMap::from([(instance, BTreeSet::from(["b".to_string()]))]);
        t.retain(&wanted);
        assert_eq!(t.entries().len(), 0, "listed anew after a change");
        assert!(!t.known(Cloud::Tencent, &id, "a"));
        assert!(t.known(Cloud::Tencent, &id, "b"));
        t.retain(&BTreeMap::new());
        assert!(!t.known(Cloud::Tencent, &id, "b"));
    }
}

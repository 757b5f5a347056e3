//! Time lag: how long ago the oldest unconsumed message (the one at the committed offset)
//! was produced, with the bounds the facts allow.
//!
//! The facts: every poll of any group reading a partition observes its log-end offset, so
//! the message at offset `c` was produced after the last observation whose log end was
//! still `≤ c` and no later than the first whose log end was `> c`; Alibaba's
//! `LastTimestamp` is the produce time of the message before it, so it was produced after
//! that; a probe (Tencent `FetchMessageListByOffset`) gives its produce time exactly.
//! The estimate combines them into the tightest bracket and interpolates inside it; a
//! message older than every observation is extrapolated at the observed rate (or put at
//! `LastTimestamp`), and never reported younger than the first observation of its log end.
//! A committed offset that does not move keeps the bracket it first got, so a stopped
//! consumer's estimate stays as precise as it was when the offset was recent.
//!
//! Memory is bounded: [`MAX_POINTS`] observations per partition (the first kept, segments
//! below every group's committed offset trimmed, and when full the point whose loss
//! changes the interpolation least dropped), state
//! released when a partition is not seen for [`FORGET_AFTER`]. The history can be saved to
//! `state_dir` and loaded at start (see [`Estimator::save`]), so that it survives restarts.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kcle_clock::unix_millis;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::model::{Cloud, GroupProgress, TimeLag, TimeLagMethod};

/// Log-end observations kept per partition.
pub const MAX_POINTS: usize = 12;

/// Partitions not observed for this long are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The name and version of the saved history, checked when it is loaded.
const STATE_FORMAT: &str = "kafka-cloud-lag-exporter/timelag";
const STATE_VERSION: u32 = 1;
/// The file in `state_dir`.
pub const STATE_FILE: &str = "timelag.json.gz";

/// Log-end offsets of one partition over time, oldest first: times as milliseconds after
/// `base_ms` (so a point is 12 bytes), offsets non-decreasing. A run of polls that saw the
/// same log end keeps its first and its last time: the first bounds an idle backlog's age
/// from below, the last bounds the next message's produce time from below.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    base_ms: i64,
    /// The first point is kept inline: a partition seen once needs no heap.
    times: SmallVec<[u32; 1]>,
    ends: SmallVec<[i64; 1]>,
}

impl History {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn at(&self, i: usize) -> (i64, i64) {
        (self.base_ms + i64::from(self.times[i]), self.ends[i])
    }

    /// Adds an observation; ignores ones not newer than the last.
    pub fn observe(&mut self, at_ms: i64, log_end: i64) {
        if let Some(i) = self.len().checked_sub(1) {
            let (last_at, last_end) = self.at(i);
            if at_ms <= last_at {
                return;
            }
            if log_end < last_end || at_ms - self.base_ms > i64::from(u32::MAX) {
                // The log end went backwards (topic recreated) or the history spans more
                // than 49 days: start over.
                *self = History::default();
            } else if log_end == last_end && i >= 1 && self.ends[i - 1] == log_end {
                self.times[i] = (at_ms - self.base_ms) as u32;
                return;
            }
        }
        if self.ends.is_empty() {
            self.base_ms = at_ms;
        }
        if self.ends.len() == self.ends.capacity() {
            // One point at a time: a history holds what it has seen (one point after the
            // first round, two for an idle partition), never more than the cap, and a
            // full one wastes no heap.
            self.times.reserve_exact(1);
            self.ends.reserve_exact(1);
        }
        self.times.push((at_ms - self.base_ms) as u32);
        self.ends.push(log_end);
        if self.len() > MAX_POINTS {
            self.drop_least_informative();
        }
    }

    /// Drops the interior point whose loss changes the history least: the one the line
    /// between its neighbours passes closest to (in time, at its log end), ties going to
    /// the one whose merged segment is shortest. Steady production loses nothing, a
    /// ramp or a burst keeps its knees, and the first and newest points always stay.
    fn drop_least_informative(&mut self) {
        let cost = |i: usize| -> f64 {
            let ((t0, e0), (t1, e1), (t2, e2)) = (self.at(i - 1), self.at(i), self.at(i + 1));
            let width = (t2 - t0) as f64;
            let interpolated = if e2 > e0 {
                t0 as f64 + (e1 - e0) as f64 / (e2 - e0) as f64 * width
            } else {
                t0 as f64
            };
            (interpolated - t1 as f64).abs() + width * TIE_WEIGHT
        };
        /// How much a merged segment's length counts against a point's interpolation
        /// error: enough to spread points of a straight history evenly, too little to
        /// outweigh a knee.
        const TIE_WEIGHT: f64 = 0.01;
        let victim = (1..self.len() - 1)
            .min_by(|a, b| cost(*a).total_cmp(&cost(*b)))
            .expect("a full history has interior points");
        self.times.remove(victim);
        self.ends.remove(victim);
    }

    /// Drops the points of segments that lie wholly below `min_committed` (no message any
    /// group still has to consume was produced in them), keeping the first point.
    fn trim_below(&mut self, min_committed: i64) {
        // Point i can go when point i + 1 still had a log end ≤ min_committed: the segment
        // (i, i + 1] produced only messages below it. The first point stays.
        let mut drop = 0;
        while 1 + drop + 1 < self.len() && self.ends[1 + drop + 1] <= min_committed {
            drop += 1;
        }
        if drop > 0 {
            self.times.drain(1..1 + drop);
            self.ends.drain(1..1 + drop);
        }
    }

    /// The observed production rate, messages per millisecond, if any was seen.
    fn rate(&self) -> Option<f64> {
        let (first_at, first_end) = self.at(0);
        let (last_at, last_end) = self.at(self.len() - 1);
        (last_end > first_end && last_at > first_at)
            .then(|| (last_end - first_end) as f64 / (last_at - first_at) as f64)
    }

    /// Where the message at `offset` was produced, as far as the observations tell.
    /// `None` before the first observation or when it is not produced yet.
    pub fn bracket(&self, offset: i64) -> Option<Bracket> {
        if self.ends.is_empty() || offset >= self.ends[self.len() - 1] {
            return None;
        }
        let i = self.ends.iter().position(|e| *e > offset)?;
        let (hi, end_hi) = self.at(i);
        if i == 0 {
            // Older than the history: at the observed rate it was produced this long
            // before the first observation; with no rate, the first observation is all
            // that is known (a lower bound on its age).
            let est = match self.rate() {
                Some(rate) => hi as f64 - (end_hi - offset - 1) as f64 / rate,
                None => hi as f64,
            };
            return Some(Bracket { lo: None, hi, est });
        }
        let (lo, end_lo) = self.at(i - 1);
        // The message at `offset` appeared when the log end reached offset + 1.
        let frac = (offset + 1 - end_lo) as f64 / (end_hi - end_lo) as f64;
        Some(Bracket {
            lo: Some(lo),
            hi,
            est: lo as f64 + frac * (hi - lo) as f64,
        })
    }

    /// Bytes this history holds on the heap.
    fn heap_bytes(&self) -> usize {
        let heap = |capacity: usize, spilled: bool, size: usize| {
            if spilled { capacity * size } else { 0 }
        };
        heap(self.times.capacity(), self.times.spilled(), 4)
            + heap(self.ends.capacity(), self.ends.spilled(), 8)
    }
}

/// Where a message's produce time lies: after `lo` (exclusive; `None`: no lower bound),
/// no later than `hi`, and the estimate `est` in between (Unix ms).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bracket {
    pub lo: Option<i64>,
    pub hi: i64,
    pub est: f64,
}

impl Bracket {
    /// Narrows the lower bound to `after` (the message was produced after it), if that
    /// does not contradict the upper bound (a clock skew between cloud and exporter).
    fn produced_after(mut self, after: i64) -> Bracket {
        if after <= self.hi && self.lo.is_none_or(|lo| after > lo) {
            self.lo = Some(after);
            self.est = self.est.max(after as f64);
        }
        self
    }

    /// The time lag at `at_ms`.
    fn time_lag(&self, at_ms: i64, method: TimeLagMethod) -> TimeLag {
        let secs = |ms: f64| (ms / 1000.0).max(0.0);
        let min = secs((at_ms - self.hi) as f64);
        TimeLag {
            seconds: secs(at_ms as f64 - self.est).max(min),
            min_seconds: min,
            max_seconds: self.lo.map(|lo| secs((at_ms - lo) as f64)),
            method,
        }
    }

    /// Width of the bracket in milliseconds; unbounded without a lower bound.
    fn width(&self) -> f64 {
        self.lo.map_or(f64::INFINITY, |lo| (self.hi - lo) as f64)
    }
}

/// What the estimator keeps for one group on one partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Commit {
    group: Arc<str>,
    offset: i64,
    /// The bracket the offset got when first seen with both bounds; kept while it does
    /// not move.
    frozen: Option<Bracket>,
    /// The produce time of the message at `offset`, read by a probe.
    probed_ms: Option<i64>,
    /// Whether a probe of `offset` was tried (and found no message there).
    #[serde(default)]
    probe_tried: bool,
    /// The width of the last estimate's bracket, ms (for choosing what to probe).
    #[serde(skip)]
    uncertainty: f64,
    /// The last lag in messages (for choosing what to probe).
    #[serde(skip)]
    lag: i64,
}

/// Everything kept for one partition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct PartitionState {
    history: History,
    /// Usually one group reads a partition: its commit is kept inline, not on the heap.
    commits: SmallVec<[Commit; 1]>,
    seen_ms: i64,
}

/// A partition: cloud, instance, topic and number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionKey {
    pub cloud: Cloud,
    pub instance: Arc<str>,
    pub topic: Arc<str>,
    pub partition: i32,
}

/// A partition whose message at the committed offset a probe should read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeCandidate {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// The saved form of the estimator.
#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    version: u32,
    partitions: Vec<(PartitionKey, PartitionState)>,
}

/// Why a saved history was not used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a time-lag history of this exporter (or is damaged): {reason}")]
    Foreign { path: String, reason: String },
}

/// A partition's state with its number, in a topic's list sorted by number.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tracked {
    partition: i32,
    state: PartitionState,
}

/// The partitions of one instance's topics, by topic name.
type Topics = HashMap<Arc<str>, Vec<Tracked>>;

/// Offset histories of every partition seen, and the estimator over them.
///
/// Kept by cloud, instance and topic, then in a list sorted by partition number and sized
/// exactly: at 100,000 partitions a hash table per partition would cost a key of two
/// names and a third of its buckets spare for every partition (and a copy while it grows).
#[derive(Debug, Default)]
pub struct Estimator {
    clouds: HashMap<Cloud, HashMap<Arc<str>, Topics>>,
}

/// The list of `topic`'s partitions, created (sized for `partitions`) when first seen.
fn topic_list<'a>(topics: &'a mut Topics, topic: &str, partitions: usize) -> &'a mut Vec<Tracked> {
    if !topics.contains_key(topic) {
        topics.insert(topic.into(), Vec::with_capacity(partitions.max(1)));
    }
    topics.get_mut(topic).expect("inserted above")
}

/// The state of `partition` in a topic's list, created when first seen.
fn partition_state(list: &mut Vec<Tracked>, partition: i32) -> &mut PartitionState {
    let i = match list.binary_search_by_key(&partition, |t| t.partition) {
        Ok(i) => i,
        Err(i) => {
            list.reserve_exact(1);
            list.insert(
                i,
                Tracked {
                    partition,
                    state: PartitionState::default(),
                },
            );
            i
        }
    };
    &mut list[i].state
}

impl Estimator {
    /// The topics of an instance, created when first seen.
    fn topics_mut(&mut self, cloud: Cloud, instance: &Arc<str>) -> &mut Topics {
        let instances = self.clouds.entry(cloud).or_default();
        if !instances.contains_key(&**instance) {
            instances.insert(instance.clone(), Topics::default());
        }
        instances.get_mut(&**instance).expect("inserted above")
    }

    /// The state of a partition, if it was seen.
    fn state(
        &mut self,
        cloud: Cloud,
        instance: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&mut PartitionState> {
        let list = self
            .clouds
            .get_mut(&cloud)?
            .get_mut(instance)?
            .get_mut(topic)?;
        let i = list
            .binary_search_by_key(&partition, |t| t.partition)
            .ok()?;
        Some(&mut list[i].state)
    }

    /// Every partition with its key, in no particular order.
    fn all(&self) -> impl Iterator<Item = (PartitionKey, &PartitionState)> + '_ {
        self.clouds.iter().flat_map(|(cloud, instances)| {
            instances.iter().flat_map(move |(instance, topics)| {
                topics.iter().flat_map(move |(topic, list)| {
                    list.iter().map(move |t| {
                        let key = PartitionKey {
                            cloud: *cloud,
                            instance: instance.clone(),
                            topic: topic.clone(),
                            partition: t.partition,
                        };
                        (key, &t.state)
                    })
                })
            })
        })
    }

    /// Records the poll's log-end offsets and fills in the time lag of every partition
    /// of `group`'s progress, as of `at`.
    pub fn enrich(
        &mut self,
        cloud: Cloud,
        instance: &Arc<str>,
        group: &Arc<str>,
        progress: &mut GroupProgress,
        at: SystemTime,
    ) {
        let at_ms = unix_millis(at);
        let topics = self.topics_mut(cloud, instance);
        for topic in &mut progress.topics {
            let list = topic_list(topics, &topic.topic, topic.partitions.len());
            for p in &mut topic.partitions {
                let state = partition_state(list, p.partition);
                state.seen_ms = at_ms;
                state.history.observe(at_ms, p.log_end);
                p.time_lag = match p.committed {
                    None => {
                        state.commits.retain(|c| c.group != *group);
                        None
                    }
                    Some(c) => state.estimate(group, c, p.log_end, p.last_consumed_ms, at_ms),
                };
                if let Some(min) = state.commits.iter().map(|c| c.offset).min() {
                    state.history.trim_below(min);
                }
            }
        }
    }

    /// Records a probe: the message at `offset` of the partition was produced at
    /// `produced_ms` (`None`: there is no message there any more, so do not ask again).
    pub fn record_probe(
        &mut self,
        cloud: Cloud,
        instance: &Arc<str>,
        topic: &str,
        partition: i32,
        offset: i64,
        produced_ms: Option<i64>,
    ) {
        if let Some(state) = self.state(cloud, instance, topic, partition) {
            for c in state.commits.iter_mut().filter(|c| c.offset == offset) {
                c.probed_ms = produced_ms;
                c.probe_tried = true;
            }
        }
    }

    /// Up to `n` partitions of `instance` worth probing, most uncertain first (an open
    /// bracket before a wide one), then largest lag; offsets already probed are skipped.
    pub fn probe_candidates(&self, cloud: Cloud, instance: &str, n: usize) -> Vec<ProbeCandidate> {
        let Some(topics) = self.clouds.get(&cloud).and_then(|i| i.get(instance)) else {
            return Vec::new();
        };
        let mut out: Vec<(f64, i64, ProbeCandidate)> = topics
            .iter()
            .flat_map(|(topic, list)| list.iter().map(move |t| (topic, t)))
            .flat_map(|(topic, t)| {
                t.state
                    .commits
                    .iter()
                    .filter(|c| !c.probe_tried && c.lag > 0)
                    .map(move |c| {
                        (
                            c.uncertainty,
                            c.lag,
                            ProbeCandidate {
                                topic: topic.clone(),
                                partition: t.partition,
                                offset: c.offset,
                            },
                        )
                    })
            })
            .collect();
        out.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then_with(|| (&a.2.topic, a.2.partition).cmp(&(&b.2.topic, b.2.partition)))
        });
        out.dedup_by(|a, b| a.2 == b.2);
        out.into_iter().take(n).map(|(_, _, c)| c).collect()
    }

    /// Forgets partitions not observed for [`FORGET_AFTER`] (topics deleted, groups gone)
    /// and groups no longer polled.
    pub fn forget_old(&mut self, now: SystemTime) {
        let now_ms = unix_millis(now);
        let limit = FORGET_AFTER.as_millis() as i64;
        self.clouds.retain(|_, instances| {
            instances.retain(|_, topics| {
                topics.retain(|_, list| {
                    list.retain(|t| now_ms - t.state.seen_ms <= limit);
                    !list.is_empty()
                });
                !topics.is_empty()
            });
            !instances.is_empty()
        });
    }

    /// Partitions tracked.
    pub fn len(&self) -> usize {
        self.topic_lists().map(|(_, list)| list.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every topic's partition list.
    fn topic_lists(&self) -> impl Iterator<Item = (&Arc<str>, &Vec<Tracked>)> {
        self.clouds
            .values()
            .flat_map(|instances| instances.values())
            .flat_map(|topics| topics.iter())
    }

    /// An estimate of the heap this estimator holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        let per_topic = std::mem::size_of::<(Arc<str>, Vec<Tracked>)>() + 8;
        let tables: usize = self
            .clouds
            .values()
            .flat_map(|instances| instances.values())
            .map(|topics| topics.capacity() * per_topic)
            .sum();
        let lists: usize = self
            .topic_lists()
            .map(|(name, list)| {
                name.len()
                    + 16
                    + list.capacity() * std::mem::size_of::<Tracked>()
                    + list
                        .iter()
                        .map(|t| {
                            t.state.history.heap_bytes()
                                + if t.state.commits.spilled() {
                                    t.state.commits.capacity() * std::mem::size_of::<Commit>()
                                } else {
                                    0
                                }
                        })
                        .sum::<usize>()
            })
            .sum();
        tables + lists
    }

    /// Writes the history to `dir` atomically (a temporary file, then a rename).
    pub fn save(&self, dir: &Path) -> Result<usize, StateError> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let err = |p: &Path| {
            let path = p.display().to_string();
            move |source| StateError::Write { path, source }
        };
        let mut partitions: Vec<(PartitionKey, PartitionState)> =
            self.all().map(|(k, s)| (k, s.clone())).collect();
        partitions.sort_by(|a, b| a.0.cmp(&b.0));
        let n = partitions.len();
        let saved = Saved {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            partitions,
        };
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let file = std::fs::File::create(&tmp).map_err(err(&tmp))?;
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        serde_json::to_writer(&mut gz, &saved).map_err(|e| StateError::Write {
            path: tmp.display().to_string(),
            source: e.into(),
        })?;
        let file = gz.finish().map_err(err(&tmp))?;
        file.sync_all().map_err(err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(err(&path))?;
        Ok(n)
    }

    /// Reads a history saved by [`Estimator::save`]; `Ok(None)` when there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Estimator>, StateError> {
        let path = dir.join(STATE_FILE);
        let shown = path.display().to_string();
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut text)
            .map_err(|e| StateError::Foreign {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        let saved: Saved = serde_json::from_slice(&text).map_err(|e| StateError::Foreign {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if saved.format != STATE_FORMAT || saved.version != STATE_VERSION {
            return Err(StateError::Foreign {
                path: shown,
                reason: format!(
                    "format {:?} version {}, expected {STATE_FORMAT:?} version {STATE_VERSION}",
                    saved.format, saved.version
                ),
            });
        }
        let mut est = Estimator::default();
        for (key, state) in saved.partitions {
            if state.history.times.len() != state.history.ends.len()
                || state.history.len() > MAX_POINTS
            {
                return Err(StateError::Foreign {
                    path: shown,
                    reason: "a history of the wrong shape".into(),
                });
            }
            let topics = est.topics_mut(key.cloud, &key.instance);
            *partition_state(topic_list(topics, &key.topic, 1), key.partition) = state;
        }
        Ok(Some(est))
    }
}

impl PartitionState {
    /// The time lag of `group` at committed offset `offset`, updating what is kept for it;
    /// `None` when nothing is known yet (a first observation without a cloud timestamp).
    fn estimate(
        &mut self,
        group: &Arc<str>,
        offset: i64,
        log_end: i64,
        previous_produced_ms: Option<i64>,
        at_ms: i64,
    ) -> Option<TimeLag> {
        let i = match self.commits.iter().position(|c| c.group == *group) {
            Some(i) => i,
            None => {
                // Usually one group reads a partition: no spare capacity.
                self.commits.reserve_exact(1);
                self.commits.push(Commit {
                    group: group.clone(),
                    offset,
                    frozen: None,
                    probed_ms: None,
                    probe_tried: false,
                    uncertainty: 0.0,
                    lag: 0,
                });
                self.commits.len() - 1
            }
        };
        let commit = &mut self.commits[i];
        if commit.offset != offset {
            *commit = Commit {
                group: group.clone(),
                offset,
                frozen: None,
                probed_ms: None,
                probe_tried: false,
                uncertainty: 0.0,
                lag: 0,
            };
        }
        commit.lag = (log_end - offset).max(0);
        if offset >= log_end {
            commit.uncertainty = 0.0;
            return Some(TimeLag::CAUGHT_UP);
        }
        if let Some(ms) = commit.probed_ms {
            commit.uncertainty = 0.0;
            return Some(
                Bracket {
                    lo: Some(ms),
                    hi: ms,
                    est: ms as f64,
                }
                .time_lag(at_ms, TimeLagMethod::Exact),
            );
        }
        let bracket = commit.frozen.or_else(|| self.history.bracket(offset));
        let Some(mut bracket) = bracket else {
            // Not produced as far as the history knows (an offset beyond a log end that
            // went backwards): nothing to estimate from.
            commit.uncertainty = f64::INFINITY;
            return None;
        };
        if commit.frozen.is_none() && bracket.lo.is_some() {
            commit.frozen = Some(bracket);
        }
        let method = if bracket.lo.is_some() {
            TimeLagMethod::Interpolated
        } else {
            TimeLagMethod::BeforeHistory
        };
        if let Some(after) = previous_produced_ms {
            let open = bracket.lo.is_none();
            bracket = bracket.produced_after(after);
            if open && self.history.rate().is_none() {
                // Nothing was produced while observed: the backlog is older than the
                // history, and the message before it is the best clue to its age.
                bracket.est = after as f64;
            }
        }
        commit.uncertainty = bracket.width();
        let lag = bracket.time_lag(at_ms, method);
        // A first observation says only "produced by now": no estimate rather than 0.
        let informed =
            lag.min_seconds > 0.0 || lag.max_seconds.is_some() || self.history.rate().is_some();
        informed.then_some(lag)
    }
}

/// Loads the saved history from `dir`, or starts empty: a missing file is the first run,
/// a corrupt or foreign one is ignored with one warning (never a crash).
pub fn load_or_start(dir: &Path) -> Estimator {
    match Estimator::load(dir) {
        Ok(Some(est)) => {
            tracing::info!(partitions = est.len(), dir = %dir.display(), "time-lag history loaded");
            est
        }
        Ok(None) => Estimator::default(),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the saved time-lag history; estimates start afresh");
            Estimator::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartitionProgress, TopicProgress};

    fn history(points: &[(i64, i64)]) -> History {
        let mut h = History::default();
        for &(t, e) in points {
            h.observe(t, e);
        }
        h
    }

    #[test]
    fn interpolates_between_the_observations_that_straddle_the_message() {
        let h = history(&[(0, 100), (10_000, 200), (20_000, 400)]);
        // Message 149 appeared when the log end reached 150: halfway through the first span.
        assert_eq!(
            h.bracket(149),
            Some(Bracket {
                lo: Some(0),
                hi: 10_000,
                est: 5_000.0
            })
        );
        assert_eq!(h.bracket(299).unwrap().est, 15_000.0);
        assert_eq!(h.bracket(400), None, "not produced yet");
        // Older than the history: extrapolated at 300 msgs / 20 s, no lower bound.
        let b = h.bracket(39).unwrap();
        assert_eq!((b.lo, b.hi), (None, 0));
        assert!((b.est - -4_000.0).abs() < 1e-6, "{b:?}");
    }

    #[test]
    fn a_flat_run_keeps_its_first_and_last_time() {
        let h = history(&[
            (0, 100),
            (10_000, 200),
            (20_000, 200),
            (30_000, 200),
            (40_000, 260),
        ]);
        assert_eq!(h.len(), 4);
        // Message 200 was produced after the last time the log end was still 200.
        assert_eq!(h.bracket(200).unwrap().lo, Some(30_000));
        assert_eq!(h.bracket(199).unwrap().hi, 10_000);
    }

    #[test]
    fn an_idle_backlog_is_at_least_as_old_as_the_first_observation() {
        let h = history(&[(0, 500), (60_000, 500), (120_000, 500)]);
        let b = h.bracket(100).unwrap();
        assert_eq!(
            (b.lo, b.hi, b.est),
            (None, 0, 0.0),
            "no rate: the bound itself"
        );
        let lag = b.time_lag(120_000, TimeLagMethod::BeforeHistory);
        assert_eq!(lag.seconds, 120.0);
        assert_eq!(lag.min_seconds, 120.0);
        assert_eq!(lag.max_seconds, None);
    }

    #[test]
    fn history_is_bounded_keeps_its_first_point_and_reaches_back() {
        let mut h = History::default();
        for i in 0..1_000 {
            h.observe(i * 1_000, i * 10);
        }
        assert!(h.len() <= MAX_POINTS);
        assert_eq!(h.at(0), (0, 0), "the first point stays");
        let b = h.bracket(5_000).unwrap();
        assert!(b.lo.unwrap() < 500_100 && b.hi >= 500_100, "{b:?}");
    }

    #[test]
    fn segments_below_every_committed_offset_are_trimmed() {
        let mut h = history(&[(0, 0), (1_000, 10), (2_000, 20), (3_000, 30), (4_000, 40)]);
        h.trim_below(25);
        assert_eq!(
            h.ends.as_slice(),
            [0, 20, 30, 40],
            "the first, then from the segment holding 25"
        );
        assert_eq!(h.bracket(25).unwrap().lo, Some(2_000));
    }

    #[test]
    fn the_log_end_going_back_starts_over() {
        let h = history(&[(0, 1_000), (1_000, 2_000), (2_000, 5)]);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn the_cloud_timestamp_raises_the_lower_bound_unless_it_contradicts() {
        let b = Bracket {
            lo: Some(10_000),
            hi: 20_000,
            est: 12_000.0,
        };
        let c = b.produced_after(15_000);
        assert_eq!((c.lo, c.est), (Some(15_000), 15_000.0));
        assert_eq!(
            b.produced_after(25_000),
            b,
            "skewed past the upper bound: ignored"
        );
        assert_eq!(b.produced_after(5_000), b, "weaker than what is known");
    }

    fn progress(log_end: i64, committed: Option<i64>, last: Option<i64>) -> GroupProgress {
        GroupProgress {
            topics: vec![TopicProgress {
                topic: "t".into(),
                partitions: vec![PartitionProgress {
                    partition: 0,
                    committed,
                    log_end,
                    last_consumed_ms: last,
                    time_lag: None,
                }],
            }],
            info: None,
        }
    }

    fn lag(p: &GroupProgress) -> TimeLag {
        p.topics[0].partitions[0].time_lag.unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_stopped_consumer_keeps_its_first_precise_bracket() {
        let mut est = Estimator::default();
        let (i, g): (Arc<str>, Arc<str>) = ("i".into(), "g".into());
        // 10 messages a second; the group stops at offset 250.
        for (t, end) in [(0, 0), (10, 100), (20, 200), (30, 300)] {
            let mut p = progress(end, Some(end.min(250)), None);
            est.enrich(Cloud::Tencent, &i, &g, &mut p, at(t));
        }
        let mut p = progress(36_300, Some(250), None);
        est.enrich(Cloud::Tencent, &i, &g, &mut p, at(3_630));
        let l = lag(&p);
        assert_eq!(l.method, TimeLagMethod::Interpolated);
        // Message 250 appeared at 25.1 s: lag 3604.9 s, bracketed in (20 s, 30 s].
        assert!((l.seconds - 3_604.9).abs() < 1e-6, "{l:?}");
        assert_eq!((l.min_seconds, l.max_seconds), (3_600.0, Some(3_610.0)));
    }

    #[test]
    fn caught_up_is_zero_and_no_commit_is_absent() {
        let mut est = Estimator::default();
        let (i, g): (Arc<str>, Arc<str>) = ("i".into(), "g".into());
        let mut p = progress(100, Some(100), None);
        est.enrich(Cloud::Alibaba, &i, &g, &mut p, at(1_000));
        assert_eq!(lag(&p), TimeLag::CAUGHT_UP);
        let mut p = progress(100, None, None);
        est.enrich(Cloud::Alibaba, &i, &g, &mut p, at(1_010));
        assert_eq!(p.topics[0].partitions[0].time_lag, None);
    }

    #[test]
    fn the_first_poll_of_an_alibaba_backlog_uses_its_timestamp() {
        let mut est = Estimator::default();
        let (i, g): (Arc<str>, Arc<str>) = ("i".into(), "g".into());
        // The message before the committed one was produced 90 s before the poll.
        let mut p = progress(200, Some(150), Some(910_000));
        est.enrich(Cloud::Alibaba, &i, &g, &mut p, at(1_000));
        let l = lag(&p);
        assert_eq!(l.method, TimeLagMethod::BeforeHistory);
        assert_eq!(
            (l.seconds, l.min_seconds, l.max_seconds),
            (90.0, 0.0, Some(90.0))
        );
    }

    #[test]
    fn a_probe_is_exact_until_the_offset_moves() {
        let mut est = Estimator::default();
        let (i, g): (Arc<str>, Arc<str>) = ("i".into(), "g".into());
        let mut p = progress(200, Some(150), None);
        est.enrich(Cloud::Tencent, &i, &g, &mut p, at(1_000));
        assert_eq!(
            est.probe_candidates(Cloud::Tencent, "i", 5),
            [ProbeCandidate {
                topic: "t".into(),
                partition: 0,
                offset: 150
            }]
        );
        est.record_probe(Cloud::Tencent, &i, "t", 0, 150, Some(400_000));
        assert!(est.probe_candidates(Cloud::Tencent, "i", 5).is_empty());
        let mut p = progress(300, Some(150), None);
        est.enrich(Cloud::Tencent, &i, &g, &mut p, at(1_030));
        let l = lag(&p);
        assert_eq!(
            (l.method, l.seconds, l.min_seconds),
            (TimeLagMethod::Exact, 630.0, 630.0)
        );
        let mut p = progress(310, Some(160), None);
        est.enrich(Cloud::Tencent, &i, &g, &mut p, at(1_060));
        assert_ne!(
            lag(&p).method,
            TimeLagMethod::Exact,
            "a new offset needs a new probe"
        );
    }

    #[test]
    fn a_history_holds_what_it_has_seen_and_never_more_than_the_cap() {
        let mut h = History::default();
        h.observe(0, 100);
        assert_eq!(
            (h.len(), h.heap_bytes()),
            (1, 0),
            "one point after one poll, inline"
        );
        h.observe(500, 110);
        assert_eq!(
            (h.len(), h.heap_bytes()),
            (2, 24),
            "then exactly what it holds"
        );
        for i in 1..50 {
            h.observe(i * 1_000, 100 + i * i);
            assert!(h.times.capacity() <= MAX_POINTS + 1 && h.ends.capacity() <= MAX_POINTS + 1);
        }
        assert_eq!(h.len(), MAX_POINTS);
        assert_eq!(
            h.heap_bytes(),
            (MAX_POINTS + 1) * 12,
            "full: the cap exactly"
        );
    }

    #[test]
    fn partitions_are_found_in_any_order_and_forgotten_when_not_seen() {
        let mut est = Estimator::default();
        let (i, g): (Arc<str>, Arc<str>) = ("i".into(), "g".into());
        let answer = |order: &[i32], end: i64| GroupProgress {
            topics: ["b", "a"]
                .iter()
                .map(|t| TopicProgress {
                    topic: t.to_string(),
                    partitions: order
                        .iter()
                        .map(|&partition| PartitionProgress {
                            partition,
                            committed: Some(10),
                            log_end: end + i64::from(partition),
                            last_consumed_ms: None,
                            time_lag: None,
                        })
                        .collect(),
                })
                .collect(),
            info: None,
        };
        est.enrich(Cloud::Tencent, &i, &g, &mut answer(&[3, 1], 100), at(0));
        est.enrich(Cloud::Tencent, &i, &g, &mut answer(&[2, 3, 1], 200), at(30));
        assert_eq!(est.len(), 6);
        let mut keys: Vec<(String, i32, usize)> = est
            .all()
            .map(|(k, s)| (k.topic.to_string(), k.partition, s.history.len()))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                ("a".into(), 1, 2),
                ("a".into(), 2, 1),
                ("a".into(), 3, 2),
                ("b".into(), 1, 2),
                ("b".into(), 2, 1),
                ("b".into(), 3, 2)
            ],
            "each partition has its own history, whatever the order it came in"
        );
        // Another instance and cloud are apart; only what is not seen for 6 h goes.
        est.enrich(Cloud::Alibaba, &i, &g, &mut answer(&[0], 5), at(7 * 3600));
        est.forget_old(at(7 * 3600));
        assert_eq!(est.len(), 2);
        assert!(
            est.all()
                .all(|(k, _)| k.cloud == Cloud::Alibaba && k.partition == 0)
        );
        est.forget_old(at(14 * 3600));
        assert!(est.is_empty());
        assert_eq!(est.heap_bytes(), 0, "nothing kept for what is gone");
    }

    #[test]
    fn saved_history_round_trips_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut est = Estimator::default();
        let (i, g): (Arc<str>, Arc<str>) = ("i".into(), "g".into());
        for (t, end) in [(0, 0), (10, 100), (20, 200)] {
            let mut p = progress(end, Some(50), None);
            est.enrich(Cloud::Tencent, &i, &g, &mut p, at(t));
        }
        assert_eq!(est.save(dir.path()).unwrap(), 1);
        let loaded = Estimator::load(dir.path()).unwrap().unwrap();
        type Facts = Vec<(PartitionKey, History, Vec<(i64, Option<Bracket>)>)>;
        let facts = |e: &Estimator| -> Facts {
            let mut facts: Facts = e
                .all()
                .map(|(k, s)| {
                    let commits = s.commits.iter().map(|c| (c.offset, c.frozen)).collect();
                    (k, s.history.clone(), commits)
                })
                .collect();
            facts.sort_by(|a, b| a.0.cmp(&b.0));
            facts
        };
        assert_eq!(facts(&loaded), facts(&est));
        std::fs::write(dir.path().join(STATE_FILE), b"not gzip at all").unwrap();
        assert!(matches!(
            Estimator::load(dir.path()),
            Err(StateError::Foreign { .. })
        ));
        assert!(
            load_or_start(dir.path()).is_empty(),
            "ignored, never a crash"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(Estimator::load(empty.path()).unwrap().is_none());
    }
}

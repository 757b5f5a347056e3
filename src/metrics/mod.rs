//! Everything Prometheus-shaped: the lag families rendered from the store at scrape time
//! (`lag`), the scheduler's status (`status`), the exporter's own instruments
//! (`exporter`), a scrape rendered piece by piece from one snapshot (`stream`) and the
//! text writer (`text`).
//!
//! No other module imports Prometheus types. A scrape reads the store and the registry;
//! it never calls a cloud API.

pub mod exporter;
pub mod lag;
pub mod status;
pub mod stream;
pub mod text;

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use prometheus::Registry;

use crate::config::MetricNames;
use crate::scheduler::Status;
use crate::store::Store;
pub use exporter::ExporterMetrics;
pub use stream::Scrape;
pub use text::CONTENT_TYPE;

/// The registry of the exporter's own instruments and the renderer of everything.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub exporter: Arc<ExporterMetrics>,
    /// The names and labels of the lag families (`metric_names`).
    naming: Arc<RwLock<lag::Naming>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let exporter = ExporterMetrics::register(&registry)
            .expect("metric names and labels are static and valid");
        Metrics {
            registry,
            exporter: Arc::new(exporter),
            naming: Arc::new(RwLock::new(lag::Naming::KAFKA_EXPORTER)),
        }
    }

    /// Chooses the names and labels of the lag families (from the next scrape on).
    pub fn set_metric_names(&self, names: MetricNames) {
        *self.naming.write().unwrap_or_else(|e| e.into_inner()) = lag::Naming::of(names);
    }

    /// A scrape of this moment: the lag families from `store`, the scheduler's `status`,
    /// then the exporter's instruments, rendered piece by piece by [`Scrape::fill`] from a
    /// snapshot taken now.
    pub fn scrape(&self, store: &Store, status: Status, now: SystemTime) -> Scrape {
        let opts = lag::RenderOptions {
            now,
            stale_after: store.stale_after(),
            naming: *self.naming.read().unwrap_or_else(|e| e.into_inner()),
        };
        Scrape::new(store.entries(), status, opts, self.registry.clone())
    }

    /// The whole exposition at once (for `once` and tests): a [`scrape`](Self::scrape)
    /// rendered to the end, in pieces as `/metrics` renders it.
    pub fn render(&self, store: &Store, status: &Status, now: SystemTime) -> Vec<u8> {
        let mut scrape = self.scrape(store, status.clone(), now);
        let mut out = Vec::new();
        loop {
            let until = out.len() + WHOLE_PIECE;
            if !scrape.fill(&mut out, until) {
                return out;
            }
        }
    }

    /// Appends the exporter's own instruments.
    pub fn render_own(&self, out: &mut Vec<u8>) {
        stream::own(&self.registry, out);
    }
}

/// The piece size of [`Metrics::render`]: what a piece is does not change the text.
const WHOLE_PIECE: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Cloud, GroupProgress, GroupTarget, InstanceRef, PartitionProgress, TopicProgress,
    };
    use crate::providers::{ApiObserver, ErrorKind};
    use std::time::Duration;

    fn target(cloud: Cloud, instance: &str, group: &str) -> GroupTarget {
        GroupTarget {
            instance: Arc::new(InstanceRef {
                cloud,
                account: "acct".into(),
                region: "cn-hangzhou".into(),
                instance_id: instance.into(),
            }),
            group: group.into(),
        }
    }

    /// (partition, committed, log end)
    type Row = (i32, Option<i64>, i64);

    fn progress(topics: &[(&str, &[Row])]) -> GroupProgress {
        GroupProgress {
            topics: topics
                .iter()
                .map(|(t, parts)| TopicProgress {
                    topic: t.to_string(),
                    partitions: parts
                        .iter()
                        .map(|&(partition, committed, log_end)| PartitionProgress {
                            partition,
                            committed,
                            log_end,
                            last_consumed_ms: None,
                            time_lag: None,
                        })
                        .collect(),
                })
                .collect(),
            info: None,
        }
    }

    #[test]
    fn log_end_is_exported_once_per_partition_newest_wins() {
        let store = Store::new();
        let a = target(Cloud::Tencent, "ckafka-1", "a");
        let b = target(Cloud::Tencent, "ckafka-1", "b");
        store.set_targets(&[a.clone(), b.clone()]);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        store.record_success(&a, progress(&[("orders", &[(0, Some(5), 10)])]), None, t0);
        store.record_success(
            &b,
            progress(&[("orders", &[(0, Some(7), 12)])]),
            None,
            t0 + Duration::from_secs(1),
        );
        let text =
            String::from_utf8(Metrics::new().render(&store, &Status::default(), t0)).unwrap();
        let ends: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kafka_topic_partition_current_offset{"))
            .collect();
        assert_eq!(
            ends,
            [
                "kafka_topic_partition_current_offset{cloud=\"tencent\",instance_id=\"ckafka-1\",topic=\"orders\",partition=\"0\"} 12"
            ]
        );
    }

    #[test]
    fn no_commit_means_no_offset_or_lag_sample() {
        let store = Store::new();
        let a = target(Cloud::Alibaba, "alikafka-1", "a");
        store.set_targets(std::slice::from_ref(&a));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        store.record_success(
            &a,
            progress(&[("t", &[(0, None, 10), (1, Some(12), 10)])]),
            None,
            t0,
        );
        let text =
            String::from_utf8(Metrics::new().render(&store, &Status::default(), t0)).unwrap();
        assert!(!text.contains("partition=\"0\"} -1"));
        let lag: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kafka_consumergroup_lag{"))
            .collect();
        assert_eq!(lag.len(), 1);
        assert!(
            lag[0].ends_with("partition=\"1\"} 0"),
            "clamped: {}",
            lag[0]
        );
        assert!(text.contains("kafka_topic_partition_current_offset{cloud=\"alibaba\",instance_id=\"alikafka-1\",topic=\"t\",partition=\"0\"} 10"));
        assert!(text.contains("kafka_consumergroup_topic_lag{cloud=\"alibaba\",instance_id=\"alikafka-1\",consumergroup=\"a\",topic=\"t\"} 0"));
    }

    #[test]
    fn stale_groups_lose_lag_but_keep_health() {
        let store = Store::new();
        let a = target(Cloud::Alibaba, "alikafka-1", "a");
        store.set_targets(std::slice::from_ref(&a));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        store.record_success(&a, progress(&[("t", &[(0, Some(1), 10)])]), None, t0);
        store.record_failure(&a, t0 + Duration::from_secs(30));
        let m = Metrics::new();
        store.set_stale_after(Duration::from_secs(90));
        let fresh =
            String::from_utf8(m.render(&store, &Status::default(), t0 + Duration::from_secs(90)))
                .unwrap();
        assert!(fresh.contains("kafka_consumergroup_lag{"));
        assert!(fresh.contains("kafka_cloud_lag_exporter_group_up{cloud=\"alibaba\",instance_id=\"alikafka-1\",consumergroup=\"a\"} 0"));
        let stale =
            String::from_utf8(m.render(&store, &Status::default(), t0 + Duration::from_secs(91)))
                .unwrap();
        assert!(!stale.contains("kafka_consumergroup_lag{"));
        assert!(stale.contains("kafka_cloud_lag_exporter_group_up{cloud=\"alibaba\",instance_id=\"alikafka-1\",consumergroup=\"a\"} 0"));
        assert!(stale.contains("kafka_cloud_lag_exporter_last_success_timestamp_seconds{cloud=\"alibaba\",instance_id=\"alikafka-1\",consumergroup=\"a\"} 1000"));
    }

    /// A sample as text: name, label pairs, value.
    type Sample = (String, Vec<(String, String)>, String);

    /// The samples of `text`, comments skipped.
    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
                let labels = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap();
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels, value.to_string())
            })
            .collect()
    }

    #[test]
    fn kafka_lag_exporter_names_carry_the_same_values() {
        let store = Store::new();
        let a = target(Cloud::Tencent, "ckafka-1", "a");
        store.set_targets(std::slice::from_ref(&a));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let rows: &[Row] = &[(0, Some(5), 10), (1, None, 7), (2, Some(9), 30)];
        store.record_success(
            &a,
            progress(&[("t", rows), ("u", &[(0, Some(3), 3)])]),
            None,
            t0,
        );
        let m = Metrics::new();
        let default =
            samples(&String::from_utf8(m.render(&store, &Status::default(), t0)).unwrap());
        m.set_metric_names(MetricNames::KafkaLagExporter);
        let kle = samples(&String::from_utf8(m.render(&store, &Status::default(), t0)).unwrap());
        // Each renamed default sample is there under its new name and labels.
        let renames = [
            (
                "kafka_consumergroup_current_offset",
                "kafka_consumergroup_group_offset",
            ),
            ("kafka_consumergroup_lag", "kafka_consumergroup_group_lag"),
            (
                "kafka_consumergroup_topic_lag",
                "kafka_consumergroup_group_topic_sum_lag",
            ),
            (
                "kafka_topic_partition_current_offset",
                "kafka_partition_latest_offset",
            ),
        ];
        let mut checked = 0;
        for (name, labels, value) in &default {
            let Some((_, new)) = renames.iter().find(|(old, _)| old == name) else {
                continue;
            };
            let mapped: Vec<(String, String)> = labels
                .iter()
                .filter(|(k, _)| k != "cloud")
                .map(|(k, v)| match k.as_str() {
                    "instance_id" => ("cluster_name".to_string(), v.clone()),
                    "consumergroup" => ("group".to_string(), v.clone()),
                    _ => (k.clone(), v.clone()),
                })
                .collect();
            assert!(
                kle.contains(&(new.to_string(), mapped.clone(), value.clone())),
                "{new} {mapped:?} {value}"
            );
            checked += 1;
        }
        // 3 committed partitions (offset and lag), 2 topics, 4 log ends.
        assert_eq!(checked, 3 + 3 + 2 + 4);
        // No default lag family remains, and the group sums and maxima are added.
        assert!(
            kle.iter()
                .all(|(n, _, _)| !renames.iter().any(|(old, _)| n == old))
        );
        let group = vec![
            ("cluster_name".to_string(), "ckafka-1".to_string()),
            ("group".to_string(), "a".to_string()),
        ];
        assert!(kle.contains(&(
            "kafka_consumergroup_group_sum_lag".into(),
            group.clone(),
            "26".into()
        )));
        assert!(kle.contains(&(
            "kafka_consumergroup_group_max_lag".into(),
            group,
            "21".into()
        )));
    }

    #[test]
    fn api_observer_counts_into_registry() {
        let m = Metrics::new();
        m.exporter
            .init_actions(Cloud::Tencent, &["DescribeGroupOffsets"]);
        m.exporter.request(Cloud::Tencent, "DescribeGroupOffsets");
        m.exporter
            .error(Cloud::Tencent, "DescribeGroupOffsets", ErrorKind::Throttled);
        let mut out = Vec::new();
        m.render_own(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("kafka_cloud_lag_exporter_api_requests_total{action=\"DescribeGroupOffsets\",cloud=\"tencent\"} 1"));
        assert!(text.contains("kafka_cloud_lag_exporter_api_errors_total{action=\"DescribeGroupOffsets\",cloud=\"tencent\",kind=\"throttled\"} 1"));
        assert!(text.contains("kafka_cloud_lag_exporter_api_errors_total{action=\"DescribeGroupOffsets\",cloud=\"tencent\",kind=\"auth\"} 0"));
        assert!(text.contains("kafka_cloud_lag_exporter_build_info{revision="));
    }
}

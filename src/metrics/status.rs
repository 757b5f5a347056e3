//! Scheduler status rendered per scrape: request budgets, round fit, discovery, the
//! retention of the polled topics and the series the cardinality controls leave out.

use super::text::{Family, Value, sample};
use crate::scheduler::Status;
use kcle_clock::unix_seconds_f64;

pub const API_RATE_LIMIT: Family = Family {
    name: "kafka_cloud_lag_exporter_api_rate_limit",
    kind: "gauge",
    help: "Client-side request budget of the API action in requests per second: the configured rate, lowered after throttling and recovering gradually.",
};
pub const ROUND_BUDGET: Family = Family {
    name: "kafka_cloud_lag_exporter_poll_round_budget_seconds",
    kind: "gauge",
    help: "Seconds one round of the account's poll requests needs at its current budget; above poll_interval the round cannot fit.",
};
pub const DISCOVERED_GROUPS: Family = Family {
    name: "kafka_cloud_lag_exporter_discovered_groups",
    kind: "gauge",
    help: "Consumer groups found by discovery on the instance (after include/exclude filters).",
};
pub const DISCOVERY_LAST_SUCCESS: Family = Family {
    name: "kafka_cloud_lag_exporter_discovery_last_success_timestamp_seconds",
    kind: "gauge",
    help: "Unix time of the account's last discovery pass without errors.",
};

pub const TOPIC_RETENTION: Family = Family {
    name: "kafka_topic_retention_seconds",
    kind: "gauge",
    help: "How long the topic keeps messages (Alibaba GetInstanceList MsgRetain, the instance's; Tencent DescribeTopicAttributes Config.Retention), as last read; absent where the cloud does not say.",
};

pub const SUPPRESSED_SERIES: Family = Family {
    name: "kafka_cloud_lag_exporter_suppressed_series",
    kind: "gauge",
    help: "Lag series of the instance's groups left out of /metrics by the cardinality controls, as of each group's last successful poll: reason=group_state for groups skipped by state (cardinality.skip_groups), reason=partition_limit for partitions beyond each group's top_partitions while the instance is above cardinality.max_partition_series.",
};

/// Every family this module renders, in output order ([`rows`] takes an index into it).
pub const FAMILIES: [Family; 6] = [
    API_RATE_LIMIT,
    ROUND_BUDGET,
    DISCOVERED_GROUPS,
    DISCOVERY_LAST_SUCCESS,
    TOPIC_RETENTION,
    SUPPRESSED_SERIES,
];

/// Writes the samples of `FAMILIES[family]` (its header is the caller's) from row `*row`
/// while `out` is shorter than `until`; `true` when all are written. The retention of
/// topics, one row per topic, resumes row by row; the other families are a few rows and
/// are written whole.
pub(super) fn rows(
    out: &mut Vec<u8>,
    status: &Status,
    family: usize,
    row: &mut usize,
    until: usize,
) -> bool {
    match family {
        0 => {
            for a in &status.accounts {
                for b in &a.budgets {
                    let labels = [
                        ("cloud", a.cloud.as_str()),
                        ("account", &*a.name),
                        ("action", b.action),
                    ];
                    sample(out, API_RATE_LIMIT.name, &labels, Value::Float(b.rate));
                }
            }
        }
        1 => {
            for a in &status.accounts {
                if let Some(s) = a.round_budget_seconds {
                    let labels = [("cloud", a.cloud.as_str()), ("account", &*a.name)];
                    sample(out, ROUND_BUDGET.name, &labels, Value::Float(s));
                }
            }
        }
        2 => {
            for a in &status.accounts {
                for (instance, n) in &a.discovered_groups {
                    let labels = [("cloud", a.cloud.as_str()), ("instance_id", &**instance)];
                    sample(out, DISCOVERED_GROUPS.name, &labels, Value::Int(*n as i64));
                }
            }
        }
        3 => {
            for a in status.accounts.iter().filter(|a| a.discovers) {
                if let Some(t) = a.discovery_last_success {
                    let labels = [("cloud", a.cloud.as_str()), ("account", &*a.name)];
                    sample(
                        out,
                        DISCOVERY_LAST_SUCCESS.name,
                        &labels,
                        Value::Float(unix_seconds_f64(t)),
                    );
                }
            }
        }
        4 => {
            while let Some(r) = status.retention.get(*row) {
                if out.len() >= until {
                    return false;
                }
                let labels = [
                    ("cloud", r.cloud.as_str()),
                    ("instance_id", &*r.instance_id),
                    ("topic", &*r.topic),
                ];
                let v = Value::Float(r.retention.as_secs_f64());
                sample(out, TOPIC_RETENTION.name, &labels, v);
                *row += 1;
            }
        }
        _ => {
            for r in &status.suppressed {
                let labels = [
                    ("cloud", r.cloud.as_str()),
                    ("instance_id", &*r.instance_id),
                    ("reason", r.reason.label()),
                ];
                sample(
                    out,
                    SUPPRESSED_SERIES.name,
                    &labels,
                    Value::Int(r.series as i64),
                );
            }
        }
    }
    true
}

//! The exporter's own metrics: build info, poll durations and API request, error and
//! retry counters. Ordinary Prometheus instruments in one registry, kept private: the
//! scheduler reports through [`PollObserver`], the providers through [`ApiObserver`], the
//! exporter through the methods below, so no other module knows a label order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::credentials::{CredentialObserver, SourceKind};
use crate::model::Cloud;
use crate::providers::{ApiObserver, ErrorKind};
use crate::scheduler::PollObserver;

/// Upper bounds of the poll-duration histogram buckets, in seconds.
pub const POLL_DURATION_BUCKETS: [f64; 11] =
    [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0];

/// The exporter's own instruments.
#[derive(Clone)]
pub struct ExporterMetrics {
    build_info: GaugeVec,
    poll_interval_seconds: Gauge,
    poll_round_duration_seconds: Gauge,
    poll_duration_seconds: HistogramVec,
    api_requests_total: IntCounterVec,
    api_errors_total: IntCounterVec,
    api_retries_total: IntCounterVec,
    discovery_errors_total: IntCounterVec,
    polls_skipped_total: IntCounterVec,
    config_last_reload_successful: IntGauge,
    config_last_reload_success_timestamp_seconds: Gauge,
    credentials_expiry_timestamp_seconds: GaugeVec,
    credentials_refresh_errors_total: IntCounterVec,
    /// The source kinds whose refresh-error series exist, by account, so that a reload
    /// removes the series of accounts and sources that went away.
    credential_series: Arc<Mutex<BTreeMap<String, Vec<SourceKind>>>>,
}

const NS: &str = "kafka_cloud_lag_exporter";

impl ExporterMetrics {
    /// Creates the instruments and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = ExporterMetrics {
            build_info: GaugeVec::new(
                Opts::new("build_info", "Version of the exporter; always 1.").namespace(NS),
                &["version", "revision"],
            )?,
            poll_interval_seconds: Gauge::with_opts(
                Opts::new(
                    "poll_interval_seconds",
                    "Configured interval between two polls of the same consumer group.",
                )
                .namespace(NS),
            )?,
            poll_round_duration_seconds: Gauge::with_opts(
                Opts::new(
                    "poll_round_duration_seconds",
                    "Time from the start of the last completed poll round to the end of its last poll.",
                )
                .namespace(NS),
            )?,
            poll_duration_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "poll_duration_seconds",
                    "Time to poll one consumer group, every page and retry included.",
                )
                .namespace(NS)
                .buckets(POLL_DURATION_BUCKETS.to_vec()),
                &["cloud"],
            )?,
            api_requests_total: IntCounterVec::new(
                Opts::new(
                    "api_requests_total",
                    "Management-API requests sent, every attempt and retry counted.",
                )
                .namespace(NS),
                &["cloud", "action"],
            )?,
            api_errors_total: IntCounterVec::new(
                Opts::new(
                    "api_errors_total",
                    "Management-API requests that failed, by kind of failure.",
                )
                .namespace(NS),
                &["cloud", "action", "kind"],
            )?,
            api_retries_total: IntCounterVec::new(
                Opts::new(
                    "api_retries_total",
                    "Failed management-API requests that were retried.",
                )
                .namespace(NS),
                &["cloud", "action"],
            )?,
            discovery_errors_total: IntCounterVec::new(
                Opts::new(
                    "discovery_errors_total",
                    "Failed instance or consumer-group listings; the last successful listing is kept.",
                )
                .namespace(NS),
                &["cloud", "account"],
            )?,
            polls_skipped_total: IntCounterVec::new(
                Opts::new(
                    "polls_skipped_total",
                    "Polls skipped because the group's previous poll was still running.",
                )
                .namespace(NS),
                &["cloud"],
            )?,
            config_last_reload_successful: IntGauge::with_opts(
                Opts::new(
                    "config_last_reload_successful",
                    "Whether the last configuration reload succeeded (1) or was rejected (0).",
                )
                .namespace(NS),
            )?,
            config_last_reload_success_timestamp_seconds: Gauge::with_opts(
                Opts::new(
                    "config_last_reload_success_timestamp_seconds",
                    "Unix time of the last successful configuration load.",
                )
                .namespace(NS),
            )?,
            credentials_expiry_timestamp_seconds: GaugeVec::new(
                Opts::new(
                    "credentials_expiry_timestamp_seconds",
                    "Unix time at which the account's temporary credentials expire; absent for static keys.",
                )
                .namespace(NS),
                &["account"],
            )?,
            credentials_refresh_errors_total: IntCounterVec::new(
                Opts::new(
                    "credentials_refresh_errors_total",
                    "Failed fetches or refreshes of temporary credentials, by the kind of source that failed.",
                )
                .namespace(NS),
                &["account", "source"],
            )?,
            credential_series: Arc::default(),
        };
        registry.register(Box::new(m.build_info.clone()))?;
        registry.register(Box::new(m.credentials_expiry_timestamp_seconds.clone()))?;
        registry.register(Box::new(m.credentials_refresh_errors_total.clone()))?;
        registry.register(Box::new(m.discovery_errors_total.clone()))?;
        registry.register(Box::new(m.polls_skipped_total.clone()))?;
        registry.register(Box::new(m.config_last_reload_successful.clone()))?;
        registry.register(Box::new(
            m.config_last_reload_success_timestamp_seconds.clone(),
        ))?;
        registry.register(Box::new(m.poll_interval_seconds.clone()))?;
        registry.register(Box::new(m.poll_round_duration_seconds.clone()))?;
        registry.register(Box::new(m.poll_duration_seconds.clone()))?;
        registry.register(Box::new(m.api_requests_total.clone()))?;
        registry.register(Box::new(m.api_errors_total.clone()))?;
        registry.register(Box::new(m.api_retries_total.clone()))?;
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), revision()])
            .set(1.0);
        Ok(m)
    }

    /// Creates every (action, kind) series of a cloud at 0, so that `rate()` sees the
    /// first failure and dashboards show zeros rather than "no data".
    pub fn init_actions(&self, cloud: Cloud, actions: &[&'static str]) {
        for action in actions {
            self.api_requests_total
                .with_label_values(&[cloud.as_str(), action]);
            self.api_retries_total
                .with_label_values(&[cloud.as_str(), action]);
            for kind in ErrorKind::ALL {
                if kind != ErrorKind::Credentials {
                    self.api_errors_total.with_label_values(&[
                        cloud.as_str(),
                        action,
                        kind.as_str(),
                    ]);
                }
            }
        }
        self.poll_duration_seconds
            .with_label_values(&[cloud.as_str()]);
        self.polls_skipped_total
            .with_label_values(&[cloud.as_str()]);
    }

    /// Creates an account's discovery error series at 0.
    pub fn init_account(&self, cloud: Cloud, account: &str) {
        self.discovery_errors_total
            .with_label_values(&[cloud.as_str(), account]);
    }

    /// A (re)built credential provider of `account`, which may fail with these kinds of
    /// source: their error series start at 0; the expiry is absent until it refreshes.
    pub fn init_credentials(&self, account: &str, kinds: &[SourceKind]) {
        let mut series = self
            .credential_series
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for old in series.remove(account).unwrap_or_default() {
            if !kinds.contains(&old) {
                let _ = self
                    .credentials_refresh_errors_total
                    .remove_label_values(&[account, old.as_str()]);
            }
        }
        let _ = self
            .credentials_expiry_timestamp_seconds
            .remove_label_values(&[account]);
        for kind in kinds {
            self.credentials_refresh_errors_total
                .with_label_values(&[account, kind.as_str()]);
        }
        series.insert(account.to_string(), kinds.to_vec());
    }

    /// Removes the credential series of every account not in `accounts`.
    pub fn retain_credentials(&self, accounts: &[&str]) {
        let mut series = self
            .credential_series
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        series.retain(|account, kinds| {
            let keep = accounts.contains(&account.as_str());
            if !keep {
                let _ = self
                    .credentials_expiry_timestamp_seconds
                    .remove_label_values(&[account]);
                for kind in kinds.iter() {
                    let _ = self
                        .credentials_refresh_errors_total
                        .remove_label_values(&[account, kind.as_str()]);
                }
            }
            keep
        });
    }

    /// A configuration was loaded (`ok`) or a reload was rejected, at `at`.
    pub fn config_loaded(&self, ok: bool, at: SystemTime) {
        self.config_last_reload_successful.set(i64::from(ok));
        if ok {
            self.config_last_reload_success_timestamp_seconds
                .set(kcle_clock::unix_seconds_f64(at));
        }
    }
}

impl PollObserver for ExporterMetrics {
    fn interval_set(&self, interval: Duration) {
        self.poll_interval_seconds.set(interval.as_secs_f64());
    }

    fn poll_finished(&self, cloud: Cloud, took: Duration) {
        self.poll_duration_seconds
            .with_label_values(&[cloud.as_str()])
            .observe(took.as_secs_f64());
    }

    fn poll_skipped(&self, cloud: Cloud) {
        self.polls_skipped_total
            .with_label_values(&[cloud.as_str()])
            .inc();
    }

    fn round_finished(&self, took: Duration) {
        self.poll_round_duration_seconds.set(took.as_secs_f64());
    }

    fn discovery_failed(&self, cloud: Cloud, account: &str) {
        self.discovery_errors_total
            .with_label_values(&[cloud.as_str(), account])
            .inc();
    }
}

/// The source revision, when the build provides it (`KCLE_REVISION` at compile time).
fn revision() -> &'static str {
    option_env!("KCLE_REVISION").unwrap_or("unknown")
}

impl ApiObserver for ExporterMetrics {
    fn request(&self, cloud: Cloud, action: &'static str) {
        self.api_requests_total
            .with_label_values(&[cloud.as_str(), action])
            .inc();
    }

    fn error(&self, cloud: Cloud, action: &'static str, kind: ErrorKind) {
        self.api_errors_total
            .with_label_values(&[cloud.as_str(), action, kind.as_str()])
            .inc();
    }

    fn retry(&self, cloud: Cloud, action: &'static str) {
        self.api_retries_total
            .with_label_values(&[cloud.as_str(), action])
            .inc();
    }
}

impl CredentialObserver for ExporterMetrics {
    fn credentials_refreshed(&self, account: &str, expires_at: Option<SystemTime>) {
        match expires_at {
            Some(at) => self
                .credentials_expiry_timestamp_seconds
                .with_label_values(&[account])
                .set(kcle_clock::unix_seconds_f64(at)),
            None => {
                let _ = self
                    .credentials_expiry_timestamp_seconds
                    .remove_label_values(&[account]);
            }
        }
    }

    fn credentials_refresh_failed(&self, account: &str, source: SourceKind) {
        self.credentials_refresh_errors_total
            .with_label_values(&[account, source.as_str()])
            .inc();
    }
}

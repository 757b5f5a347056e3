//! kafka-cloud-lag-exporter: consumer-group lag of Alibaba Cloud and Tencent Cloud
//! managed Kafka, read from the clouds' management APIs and served to Prometheus.
//!
//! `ARCHITECTURE.md` has the code map and the invariants. Modules in reading order:
//! the domain (`model`), configuration (`config`, `credentials`), the clouds
//! (`providers`), polling (`discovery`, `scheduler`, `timelag`, `verdict`, `derive`,
//! `cardinality`, `store`), exposition
//! (`metrics`, `web`), the wiring (`exporter`, `signals`), and the command line (`cli`,
//! `commands`, `app`). The clock, the clouds' pure protocol facts and the simulator are
//! the workspace crates `kcle-clock`, `kcle-cloud` and `kcle-sim`.

pub mod model;

pub mod config;
pub mod credentials;

pub mod providers;

pub mod cardinality;
pub mod derive;
pub mod discovery;
pub mod scheduler;
pub mod store;
pub mod timelag;
pub mod verdict;

pub mod metrics;
pub mod web;

pub mod exporter;
pub mod signals;

pub mod app;
pub mod cli;
pub mod commands;

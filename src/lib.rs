//! kafka-cloud-lag-exporter: consumer-group lag of Alibaba Cloud and Tencent Cloud
//! managed Kafka, read from the clouds' management APIs and served to Prometheus.
//!
//! `ARCHITECTURE.md` has the code map and the invariants. Modules in reading order:
//! the domain (`model`), configuration (`config`, `credentials`), the clouds
//! (`providers`), polling (`scheduler`, `timelag`, `store`), exposition (`metrics`,
//! `server`, protected by `web_config`, `basic_auth` and `client_cert`), the commands
//! (`cli`, `app`, `demo`, `reset`), and the simulator (`sim`).

pub mod app;
pub mod basic_auth;
pub mod cli;
pub mod client_cert;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod discovery;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod reset;
pub mod scheduler;
pub mod server;
pub mod shutdown;
pub mod sim;
pub mod store;
pub mod timelag;
pub mod web_config;

//! Everything about serving HTTP: the server and its routes (`server`), the
//! exporter-toolkit web configuration file (`config`), basic auth (`basic_auth`),
//! client-certificate policies (`client_cert`) and the benchmark aid (`bench_floor`).

pub mod basic_auth;
pub mod bench_floor;
pub mod client_cert;
pub mod config;
pub mod server;

pub use bench_floor::BenchFloor;
pub use config::{WebConfig, WebConfigSource};
pub use server::{Backend, OPEN_PATHS, ServerState, WebProtection, serve};

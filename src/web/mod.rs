//! Everything about serving HTTP: the server and its routes (`server`), response bodies
//! and the exposition streamed piece by piece (`body`), the exporter-toolkit web
//! configuration file (`config`), basic auth (`basic_auth`), client-certificate policies
//! (`client_cert`) and the benchmark aid (`bench_floor`).

pub mod basic_auth;
pub mod bench_floor;
pub mod body;
pub mod client_cert;
pub mod config;
pub mod server;

pub use bench_floor::BenchFloor;
pub use body::{Exposition, Prerendered};
pub use config::{WebConfig, WebConfigSource};
pub use server::{Backend, OPEN_PATHS, ServerState, WebProtection, serve};

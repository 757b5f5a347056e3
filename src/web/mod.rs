//! Everything about serving HTTP: the server and its routes (`server`), the
//! exporter-toolkit web configuration file (`config`), basic auth (`basic_auth`) and
//! client-certificate policies (`client_cert`).

pub mod basic_auth;
pub mod client_cert;
pub mod config;
pub mod server;

pub use config::{WebConfig, WebConfigSource};
pub use server::{Backend, OPEN_PATHS, ServerState, WebProtection, serve};

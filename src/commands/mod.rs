//! The subcommands: the daemon, `check-config`, `once`, `demo` and `simulator`, and
//! `reset-offsets`, with the command-line checks they share. Each reports problems the
//! same way: one `error:` line on stderr and exit status 2 for configuration and usage.

pub mod check_config;
pub mod daemon;
pub mod demo;
pub mod once;
pub mod reset;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Cli, EXIT_CONFIG};
use crate::config::{Config, ConfigError};
use crate::exporter::load_config;
use crate::web::WebConfigSource;

/// Prints a configuration error the way every command reports it and returns status 2.
fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn config_path(cli: &Cli) -> Result<&Path, ExitCode> {
    match cli.config_file.as_deref() {
        Some(p) => Ok(p),
        None => {
            eprintln!(
                "error: no configuration file; pass --config.file FILE (see config.example.yaml)"
            );
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// The `--config.file` path and its configuration, or the exit status of the reported
/// error (status 2).
fn cli_config(cli: &Cli, check_credentials: bool) -> Result<(PathBuf, Config), ExitCode> {
    let path = config_path(cli)?.to_path_buf();
    let config = load_config(&path, check_credentials).map_err(|e| config_failure(&e))?;
    Ok((path, config))
}

/// Loads `--web.config.file` when given; an invalid file is a configuration error
/// (status 2) at start-up, like an invalid `--config.file`.
fn load_web_config(cli: &Cli) -> Result<Option<Arc<WebConfigSource>>, ExitCode> {
    let Some(path) = &cli.web_config_file else {
        return Ok(None);
    };
    match WebConfigSource::load(path) {
        Ok(source) => {
            tracing::info!(
                file = %path.display(),
                settings = %source.current().summary(),
                "web configuration loaded; /healthz and /readyz stay open without authentication"
            );
            Ok(Some(Arc::new(source)))
        }
        Err(e) => Err(config_failure(&e)),
    }
}

/// The address to listen on: the flag, else `fallback` (the config's `listen`, named by
/// `source`).
fn listen_address(cli: &Cli, fallback: &str, source: &str) -> Result<SocketAddr, ExitCode> {
    let (value, source) = match &cli.listen_address {
        Some(a) => (a.as_str(), "--web.listen-address".to_string()),
        None => (fallback, source.to_string()),
    };
    value.parse().map_err(|_| {
        eprintln!("error: {source}: {value:?} is not a socket address; expected host:port, e.g. 0.0.0.0:9758");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn check_telemetry_path(path: &str) -> Result<(), ExitCode> {
    let reserved = ["/", "/healthz", "/readyz"];
    if !path.starts_with('/') || reserved.contains(&path) {
        eprintln!(
            "error: --web.telemetry-path: {path:?} must start with '/' and not be one of {reserved:?}"
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    Ok(())
}

/// The benchmark aid's path: like the telemetry path, and not the telemetry path itself
/// or `/-/reload`.
fn check_bench_floor_path(path: &str, telemetry_path: &str) -> Result<(), ExitCode> {
    let reserved = ["/", "/healthz", "/readyz", "/-/reload", telemetry_path];
    if !path.starts_with('/') || reserved.contains(&path) {
        eprintln!(
            "error: --web.bench-floor-path: {path:?} must start with '/' and not be one of {reserved:?}"
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_floor_path_cannot_shadow_another_route() {
        assert!(check_bench_floor_path("/-/bench/floor", "/metrics").is_ok());
        for taken in ["/metrics", "/", "/healthz", "/-/reload", "floor"] {
            assert!(
                check_bench_floor_path(taken, "/metrics").is_err(),
                "{taken}"
            );
        }
        assert!(check_bench_floor_path("/metrics", "/telemetry").is_ok());
    }
}

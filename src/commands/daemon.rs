//! The daemon (no subcommand): polls and serves until SIGTERM or SIGINT; SIGHUP and
//! `POST /-/reload` reload the configuration.

use std::process::ExitCode;

use tokio::net::TcpListener;

use super::{
    check_bench_floor_path, check_telemetry_path, cli_config, listen_address, load_web_config,
};
use crate::cli::{Cli, EXIT_FAILURE};
use crate::exporter::{Exporter, Runtime};

pub async fn run(cli: &Cli) -> ExitCode {
    let (path, config) = match cli_config(cli, true) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Err(code) = check_telemetry_path(&cli.telemetry_path) {
        return code;
    }
    if let Some(floor) = &cli.bench_floor_path
        && let Err(code) = check_bench_floor_path(floor, &cli.telemetry_path)
    {
        return code;
    }
    let source = format!("{}: listen", path.display());
    let addr = match listen_address(cli, &config.listen, &source) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let web = match load_web_config(cli) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %path.display(),
        address = %addr,
        accounts = config.accounts.len(),
        groups = config.group_count(),
        "starting kafka-cloud-lag-exporter"
    );
    let exporter = Exporter::new(config, Runtime::production(), Some(path.clone()));
    if let Some(floor) = &cli.bench_floor_path {
        tracing::warn!(path = %floor, "benchmark aid enabled: the floor endpoint serves captured expositions");
        exporter.enable_bench_floor(floor);
    }
    let shutdown = crate::signals::on_termination();
    let reloader = exporter.clone();
    let hangups = tokio::spawn(crate::signals::reload_on_hangup(
        move || reloader.reload(),
        shutdown.clone(),
    ));
    exporter
        .run(listener, &cli.telemetry_path, web, shutdown)
        .await;
    hangups.abort();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

//! `once`: one poll round, the daemon's own round engine, then the exposition on stdout.
//! Exit status 0 when every poll succeeded, 1 when any failed (stdout still holds what
//! succeeded).

use std::io::Write;
use std::process::ExitCode;

use super::cli_config;
use crate::cli::{Cli, EXIT_FAILURE};
use crate::exporter::{Exporter, Runtime};

pub async fn run(cli: &Cli) -> ExitCode {
    let config = match cli_config(cli, true) {
        Ok((_, config)) => config,
        Err(code) => return code,
    };
    let exporter = Exporter::new(config, Runtime::production(), None);
    let report = exporter.scheduler.run_once().await;
    let body = exporter.render();
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&body).and_then(|_| stdout.flush()) {
        eprintln!("error: writing metrics to stdout: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {} of {} consumer groups could not be polled",
            report.failed.len(),
            report.failed.len() + report.succeeded
        );
        ExitCode::from(EXIT_FAILURE)
    }
}

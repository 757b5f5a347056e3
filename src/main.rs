//! Entry point: parse the command line and hand over to `app::run`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    kafka_cloud_lag_exporter::app::run(kafka_cloud_lag_exporter::cli::Cli::parse())
}

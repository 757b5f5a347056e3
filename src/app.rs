//! Dispatch: sets up logging and the async runtime and hands the command line to its
//! command. `main.rs` only calls [`run`].

use std::process::ExitCode;

use crate::cli::{Cli, Command, EXIT_FAILURE, LogFormat, LogLevel};
use crate::commands;

/// Runs the command line; returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match &cli.command {
        None => runtime.block_on(commands::daemon::run(&cli)),
        Some(Command::CheckConfig { skip_credentials }) => {
            commands::check_config::run(&cli, *skip_credentials)
        }
        Some(Command::Once) => runtime.block_on(commands::once::run(&cli)),
        Some(Command::Demo(args)) => runtime.block_on(commands::demo::run_demo(&cli, args)),
        Some(Command::Simulator(args)) => runtime.block_on(commands::demo::run_simulator(args)),
        Some(Command::ResetOffsets(args)) => {
            runtime.block_on(commands::reset::run_command(&cli, args))
        }
    }
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let directives = match level {
        // Dependencies' debug output is rarely what an operator wants.
        LogLevel::Debug | LogLevel::Trace => format!(
            "{0},hyper=info,hyper_util=info,reqwest=info,rustls=info,h2=info",
            level.as_str()
        ),
        _ => level.as_str().to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::new(directives);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Err only when a subscriber is already set (tests); keep that one.
    let _ = result;
}

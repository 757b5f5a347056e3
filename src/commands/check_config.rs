//! `check-config`: validates the configuration file (and the web configuration file) and
//! exits 0, or 2 with one message naming the file, the field and what is allowed.

use std::process::ExitCode;

use super::{config_failure, config_path};
use crate::cli::Cli;
use crate::exporter::load_config;

pub fn run(cli: &Cli, skip_credentials: bool) -> ExitCode {
    let path = match config_path(cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match load_config(path, !skip_credentials) {
        Ok(config) => {
            println!(
                "{}: valid ({} accounts, {} consumer groups)",
                path.display(),
                config.accounts.len(),
                config.group_count()
            );
        }
        Err(e) => return config_failure(&e),
    }
    if let Some(web) = &cli.web_config_file {
        match crate::web::WebConfig::load(web) {
            Ok(c) => println!("{}: valid ({})", web.display(), c.summary()),
            Err(e) => return config_failure(&e),
        }
    }
    ExitCode::SUCCESS
}

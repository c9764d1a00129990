//! `sixboot config check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use sixboot::config::Config;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file without serving; prints every problem with file, line and field.
    Check {
        /// The boot-server TOML file.
        file: PathBuf,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check { file } => {
            let config = Config::load(&file)?;
            // Warnings do not fail the check: the server starts with them too.
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            let report = sixboot::http::check_report(&config);
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            let problems = report.problems;
            if !problems.is_empty() {
                eprintln!("{}", http_problems_report(&file, &problems));
                return Ok(ExitCode::FAILURE);
            }
            let n_warnings = config.warnings.len() + report.warnings.len();
            println!(
                "{}: ok ({} host{}, {} subnet{}, RA {}{})",
                file.display(),
                config.hosts.len(),
                if config.hosts.len() == 1 { "" } else { "s" },
                config.dhcp.subnets.len(),
                if config.dhcp.subnets.len() == 1 {
                    ""
                } else {
                    "s"
                },
                if config.ra.enabled { "on" } else { "off" },
                match n_warnings {
                    0 => String::new(),
                    1 => ", 1 warning".to_owned(),
                    n => format!(", {n} warnings"),
                },
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `config check` prints for problems with the templates or files (the SIGHUP
/// reload logs the same text when it rejects a config).
pub fn http_problems_report(file: &Path, problems: &[String]) -> String {
    let n = problems.len();
    let mut text = format!(
        "{}: {n} problem{} with the HTTP templates or files:",
        file.display(),
        if n == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(problem);
    }
    text
}

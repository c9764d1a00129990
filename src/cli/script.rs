//! `sixboot script lint` (issue 5): the check the boot server runs on every script
//! before serving it, for scripts written by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ScriptCommand {
    /// Check iPXE scripts: first line exactly `#!ipxe` (no BOM, no blank line before
    /// it, not `#!pxe`), IPv6 URLs bracketed. Exits 1 if any file has a problem.
    Lint {
        /// Script files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: ScriptCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScriptCommand::Lint { files } => {
            let mut n_bad = 0;
            for file in &files {
                match sixboot::script::lint_file(file) {
                    Ok(problems) if problems.is_empty() => println!("{}: ok", file.display()),
                    Ok(problems) => {
                        n_bad += 1;
                        for problem in problems {
                            eprintln!("{}:{}: {}", file.display(), problem.line, problem.message);
                        }
                    }
                    Err(err) => {
                        n_bad += 1;
                        eprintln!("{}: cannot read: {err}", file.display());
                    }
                }
            }
            if n_bad == 0 {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "{n_bad} of {} script{} failed the lint",
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

//! `sixboot script lint` and `sixboot script rules`: the check the boot server runs on
//! every script before serving it, for scripts written by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use sixboot::script;

#[derive(Debug, Subcommand)]
pub enum ScriptCommand {
    /// Check iPXE scripts as iPXE reads them: errors for what iPXE rejects or misreads
    /// (no `#!ipxe`, BOM, blank line first, `\` at the end, unknown command or label,
    /// IPv6 URL without brackets, bad zone or port, …), warnings for what runs but
    /// surprises (CRLF, `#!gpxe`, zone on a global address, …). Prints
    /// `FILE:LINE: SEVERITY[RULE]: MESSAGE`. Exits 1 if any file has an error (or,
    /// with --strict, a warning) or cannot be read.
    Lint {
        /// Fail on warnings too.
        #[arg(long)]
        strict: bool,
        /// Script files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the lint's rules: name, severity, and the iPXE function each mirrors.
    Rules,
}

pub fn run(command: ScriptCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScriptCommand::Lint { strict, files } => Ok(lint(&files, strict)),
        ScriptCommand::Rules => {
            for rule in script::RULES {
                println!(
                    "{:<24} {:<7} {}\n{:<24} {:<7} source: {}",
                    rule.name,
                    rule.severity.as_str(),
                    rule.summary,
                    "",
                    "",
                    rule.source
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn lint(files: &[PathBuf], strict: bool) -> ExitCode {
    let mut n_failed = 0;
    for file in files {
        let problems = match std::fs::read(file) {
            Ok(bytes) => script::lint(&bytes),
            Err(err) => {
                n_failed += 1;
                eprintln!("{}: cannot read: {err}", file.display());
                continue;
            }
        };
        for problem in &problems {
            eprintln!(
                "{}:{}: {}[{}]: {}",
                file.display(),
                problem.line,
                problem.severity,
                problem.rule.name,
                problem.message
            );
        }
        let n_errors = problems.iter().filter(|p| p.is_error()).count();
        let n_warnings = problems.len() - n_errors;
        if n_errors > 0 || (strict && n_warnings > 0) {
            n_failed += 1;
        } else if n_warnings > 0 {
            println!(
                "{}: ok, {n_warnings} warning{}",
                file.display(),
                if n_warnings == 1 { "" } else { "s" }
            );
        } else {
            println!("{}: ok", file.display());
        }
    }
    if n_failed == 0 {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "{n_failed} of {} script{} failed the lint{}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        if strict {
            " (with --strict a warning fails too)".to_owned()
        } else {
            String::new()
        }
    );
    ExitCode::FAILURE
}

//! `sixboot script lint` (issue 5).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ScriptCommand {
    /// Check iPXE scripts: first line exactly `#!ipxe`, IPv6 URLs bracketed.
    Lint { files: Vec<PathBuf> },
}

pub fn run(_command: ScriptCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sixboot script lint is not implemented yet")
}

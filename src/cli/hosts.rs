//! `sixboot hosts …` (issue 5).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// List hosts and their last boot stage.
    List {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(_command: HostsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sixboot hosts is not implemented yet")
}

//! `sixboot boot-server` and `sixboot leases` (issue 4).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct BootServerArgs {
    /// The boot-server TOML file.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct LeasesArgs {
    /// The boot-server TOML file (its state_dir holds the leases).
    #[arg(long)]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run_boot_server(_args: BootServerArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sixboot boot-server is not implemented yet")
}

pub fn run_leases(_args: LeasesArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sixboot leases is not implemented yet")
}

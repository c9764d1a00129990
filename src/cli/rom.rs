//! `sixboot rom …`: option-ROM tooling (issue 2).

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RomCommand {
    /// Decode every image in a PCI expansion-ROM file.
    Inspect { file: std::path::PathBuf },
}

pub fn run(_command: RomCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sixboot rom is not implemented yet")
}

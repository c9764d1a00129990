//! `cargo xtask build-rom` (issue 3).

use anyhow::Result;
use clap::Args;
use xshell::Shell;

#[derive(Debug, Args)]
pub struct BuildRom {}

impl BuildRom {
    pub fn run(self, _sh: &Shell) -> Result<()> {
        anyhow::bail!("build-rom is not implemented yet")
    }
}

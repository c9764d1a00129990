//! `cargo xtask bench <name>`: benchmarks that measure sixboot and its peers in one run
//! and print a table. CI runs none of them.

use anyhow::Result;
use clap::Subcommand;
use xshell::Shell;

mod build;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Raw iPXE `make` against `cargo xtask build-rom` on the same targets from the same
    /// clean state: cold, no-op and script-only rebuilds.
    Build(build::BuildBench),
}

impl BenchCommand {
    pub fn run(self, sh: &Shell) -> Result<()> {
        match self {
            BenchCommand::Build(bench) => bench.run(sh),
        }
    }
}

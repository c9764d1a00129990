//! `cargo xtask bench <name>`: benchmarks that measure sixboot and its peers in one run
//! and print a table. CI runs none of them.

use anyhow::Result;
use clap::Subcommand;
use xshell::Shell;

mod boot;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time since power-on of each boot stage: our ROM/server against stock iPXE and
    /// dnsmasq + nginx, in QEMU.
    Boot(boot::BootBench),
}

impl BenchCommand {
    pub fn run(self, sh: &Shell) -> Result<()> {
        match self {
            BenchCommand::Boot(bench) => bench.run(sh),
        }
    }
}

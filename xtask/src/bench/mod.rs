//! `cargo xtask bench <name>`: benchmarks that measure sixboot against a real peer in
//! the same run and print a table. CI runs none of them.

use anyhow::Result;
use clap::Subcommand;
use xshell::Shell;

mod tftp;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// TFTP transfer times and throughput: sixboot against dnsmasq's TFTP server.
    Tftp(tftp::TftpBench),
}

impl BenchCommand {
    pub fn run(self, sh: &Shell) -> Result<()> {
        match self {
            BenchCommand::Tftp(bench) => bench.run(sh),
        }
    }
}

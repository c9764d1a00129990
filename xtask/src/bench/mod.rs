//! `cargo xtask bench <name>`: benchmarks that measure sixboot against a peer in the
//! same run and print a table. CI runs none of them.

use anyhow::Result;
use clap::Subcommand;
use xshell::Shell;

mod dhcpv6;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// perfdhcp -6 four-way exchanges/s and drops: sixboot vs Kea vs dnsmasq.
    Dhcpv6(dhcpv6::Dhcpv6Bench),
}

impl BenchCommand {
    pub fn run(self, sh: &Shell) -> Result<()> {
        match self {
            BenchCommand::Dhcpv6(bench) => bench.run(sh),
        }
    }
}

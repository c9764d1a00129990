//! `cargo xtask bench <name>`: benchmarks that measure sixboot against a real peer in
//! the same run and print a table, or with `--json` the report it is rendered from
//! ([`report`]). CI runs none of them; README's tables are rendered from their committed
//! reports (`bench/results/*.json`, `cargo xtask readme`).

use anyhow::Result;
use clap::Subcommand;
use xshell::Shell;

pub mod boot;
mod build;
pub mod dhcpv6;
pub mod http;
pub mod inventory;
pub mod report;
pub mod status;
pub mod tftp;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time since power-on of each boot stage: our ROM/server against stock iPXE and
    /// dnsmasq + nginx, in QEMU.
    Boot(boot::BootBench),
    /// Raw iPXE `make` against `cargo xtask build-rom` on the same targets from the same
    /// clean state: cold, no-op and script-only rebuilds.
    Build(build::BuildBench),
    /// DHCPv6: perfdhcp four-way exchanges/s and drops against sixboot, Kea and dnsmasq.
    Dhcpv6(dhcpv6::Dhcpv6Bench),
    /// HTTP: wrk against sixboot and nginx (10 MB file, per-host script).
    Http(http::HttpBench),
    /// TFTP transfer times and throughput: sixboot against dnsmasq's TFTP server.
    Tftp(tftp::TftpBench),
    /// Inventory: 100,000-host import, then script requests/s and DHCPv6 exchanges/s
    /// with the PostgreSQL backend against the file backend.
    Inventory(inventory::InventoryBench),
    /// Status pages at 100,000 hosts: size and time per page, against nginx serving the
    /// same bytes.
    Status(status::StatusBench),
}

impl BenchCommand {
    pub fn run(self, sh: &Shell) -> Result<()> {
        match self {
            BenchCommand::Boot(bench) => bench.run(sh),
            BenchCommand::Build(bench) => bench.run(sh),
            BenchCommand::Dhcpv6(bench) => bench.run(sh),
            BenchCommand::Http(bench) => bench.run(sh),
            BenchCommand::Tftp(bench) => bench.run(sh),
            BenchCommand::Inventory(bench) => bench.run(sh),
            BenchCommand::Status(bench) => bench.run(sh),
        }
    }
}

//! `cargo xtask test`: the README's test command and what CI runs.
//!
//! Installs what the tests need, then checks formatting and lints and runs every test.
//! Tests that need the iPXE or FlexBoot source run when `IPXE_SRC` / `FLEXBOOT_SRC`
//! are set (the `/var/cache/sixboot` copies are used when they exist).

use anyhow::Result;
use clap::Args;
use xshell::{cmd, Shell};

use crate::deps;

/// Debian packages the test suite uses: real peers and clients, QEMU and firmware.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "isc-dhcp-client",
    "kea-admin",
    "ndisc6",
    "qemu-system-x86",
    "ipxe-qemu",
    "ipxe",
    "ovmf",
    "busybox-static",
    "cpio",
    "dnsmasq-base",
    "nginx-light",
    "mstflint",
    "gcc",
    "make",
    "perl",
    "liblzma-dev",
    "mtools",
    "binutils",
    "git",
    // TFTP clients for tests/tftp_server.rs.
    "curl",
    "tftp-hpa",
    "atftp",
];

#[derive(Debug, Args)]
pub struct Test {
    /// Print the apt-get line for missing packages instead of running it.
    #[arg(long)]
    no_install: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

impl Test {
    pub fn run(self, sh: &Shell) -> Result<()> {
        deps::ensure(sh, TEST_PACKAGES, self.no_install)?;
        for (var, dir) in [
            ("IPXE_SRC", "/var/cache/sixboot/ipxe"),
            ("FLEXBOOT_SRC", "/var/cache/sixboot/flexboot"),
        ] {
            if std::env::var_os(var).is_none() && std::path::Path::new(dir).exists() {
                eprintln!("{var}={dir} (found on this machine)");
                sh.set_var(var, dir);
            }
        }
        cmd!(sh, "cargo fmt --all --check").run()?;
        cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
        let args = &self.cargo_args;
        cmd!(sh, "cargo test --workspace {args...}").run()?;
        Ok(())
    }
}

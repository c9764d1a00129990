//! `cargo xtask test`: the README's test command and what CI runs.
//!
//! Installs what the tests need, then checks formatting and lints and runs every test.
//! Tests that need the iPXE or FlexBoot source run when `IPXE_SRC` / `FLEXBOOT_SRC`
//! are set (the `/var/cache/sixboot` copies are used when they exist).

use anyhow::Result;
use clap::Args;
use xshell::{cmd, Shell};

use crate::deps;

/// Debian packages the test suite uses beyond a ROM build's own
/// (`firmware::BUILD_PACKAGES`): real peers and clients, QEMU and firmware.
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
        // The iPXE and FlexBoot build tests need what a ROM build needs.
        let packages = [TEST_PACKAGES, crate::firmware::BUILD_PACKAGES].concat();
        deps::ensure(sh, &packages, self.no_install)?;
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
        if sh.var_os("IPXE_SRC").is_some() {
            // With the iPXE source at hand, build our QEMU ROMs first, so that the QEMU
            // end-to-end test boots our ROM with our server (it falls back to Debian's
            // stock ROM when dist/ has none). A cache hit when nothing changed.
            let xtask = std::env::current_exe()?;
            cmd!(sh, "{xtask} build-rom --target qemu").run()?;
        }
        cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
        let args = &self.cargo_args;
        if deps::is_root(sh) {
            cmd!(sh, "cargo test --workspace --no-fail-fast {args...}").run()?;
        } else {
            // The network tests create namespaces, bridges and taps, which needs
            // CAP_NET_ADMIN: build as the user, run the test binaries through sudo with the
            // same toolchain and environment.
            eprintln!("not root: the namespace and QEMU tests need root, running `cargo test` through sudo");
            let path = std::env::var("PATH").unwrap_or_default();
            let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| {
                format!("{}/.cargo", std::env::var("HOME").unwrap_or_default())
            });
            let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| {
                format!("{}/.rustup", std::env::var("HOME").unwrap_or_default())
            });
            let env_path = format!("PATH={path}");
            let env_cargo = format!("CARGO_HOME={cargo_home}");
            let env_rustup = format!("RUSTUP_HOME={rustup_home}");
            cmd!(
                sh,
                "sudo --preserve-env env {env_path} {env_cargo} {env_rustup} cargo test --workspace --no-fail-fast {args...}"
            )
            .run()?;
        }
        Ok(())
    }
}

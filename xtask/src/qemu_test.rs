//! `cargo xtask qemu-test`: the end-to-end boot, watched live on the console.
//!
//! Sets up the same lab as `tests/qemu_e2e.rs` (namespace, bridge, tap, boot server,
//! QEMU) and prints every console and server line with its time since power-on, and each
//! boot stage as it is reached. Then, with sixboot's server, boots the same machine again
//! (after `/done` it must fall through to its disk), and boots an unknown MAC (404, falls
//! through). Needs root.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use sixboot_lab::lab::{Lab, LabOptions, ServerKind};
use sixboot_lab::qemu::{find_our_rom, Firmware, STOCK_ROM};
use sixboot_lab::server::Expect;
use sixboot_lab::timeline::format_table;
use sixboot_lab::{known_mac, unknown_mac, BootRun, Event, RomFlavor};
use xshell::{cmd, Shell};

use crate::{deps, project_root};

/// Debian packages the lab needs.
pub const LAB_PACKAGES: &[&str] = &[
    "iproute2",
    "qemu-system-x86",
    "ipxe-qemu",
    "ovmf",
    "busybox-static",
    "dnsmasq-base",
    "nginx-light",
    "gzip",
    "dpkg",
    "tar",
    // `--firmware arm64`: QEMU's `virt` machine, AAVMF, and the installer's ARM64
    // kernel and initrd the guest is cut from.
    "qemu-system-arm",
    "qemu-efi-aarch64",
    "debian-installer-12-netboot-arm64",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FirmwareArg {
    Bios,
    Uefi,
    /// ARM64 UEFI (AAVMF, `qemu-system-aarch64 -machine virt`): no NIC ROM; its own
    /// PXEv6 loads our ARM64 `ipxe.efi` (`dist/arm64/ipxe.efi`, or `--rom`).
    Arm64,
}

impl From<FirmwareArg> for Firmware {
    fn from(arg: FirmwareArg) -> Firmware {
        match arg {
            FirmwareArg::Bios => Firmware::Bios,
            FirmwareArg::Uefi => Firmware::Uefi,
            FirmwareArg::Arm64 => Firmware::Arm64Uefi,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerArg {
    /// `sixboot boot-server`.
    Sixboot,
    /// dnsmasq (RA + DHCPv6) and nginx (HTTP).
    Reference,
}

impl From<ServerArg> for ServerKind {
    fn from(arg: ServerArg) -> ServerKind {
        match arg {
            ServerArg::Sixboot => ServerKind::Sixboot,
            ServerArg::Reference => ServerKind::Reference,
        }
    }
}

#[derive(Debug, Args)]
pub struct QemuTest {
    /// SeaBIOS (legacy ROM image), OVMF (EFI ROM image), or ARM64 UEFI (AAVMF booting
    /// our ARM64 `ipxe.efi` over PXEv6; only the install boot).
    #[arg(long, value_enum, default_value = "bios")]
    firmware: FirmwareArg,
    /// `--rom` is FlexBoot (`cargo xtask build-rom --flavor flexboot --target virtio`):
    /// its banner, and its script gets the host's address from the server (FlexBoot has
    /// no `${ip6}` setting).
    #[arg(long, requires = "rom")]
    flexboot: bool,
    /// The boot server on the lab's link.
    #[arg(long, value_enum, default_value = "sixboot")]
    server: ServerArg,
    /// The NIC's ROM; default: ours from dist/ when built, else Debian's stock ROM.
    #[arg(long)]
    rom: Option<PathBuf>,
    /// Use Debian's stock ROM even when ours is built.
    #[arg(long, conflicts_with = "rom")]
    stock_rom: bool,
    /// Only the known host's install boot (skip the fall-through boots).
    #[arg(long)]
    quick: bool,
    /// Print the apt-get line for missing packages instead of running it.
    #[arg(long)]
    no_install: bool,
}

impl QemuTest {
    pub fn run(self, sh: &Shell) -> Result<()> {
        deps::ensure(
            sh,
            &[deps::SERVER_BUILD, LAB_PACKAGES].concat(),
            self.no_install,
        )?;
        let firmware = Firmware::from(self.firmware);
        let server = ServerKind::from(self.server);
        let rom = pick_rom(self.rom, self.stock_rom, firmware)?;
        if server == ServerKind::Sixboot {
            cmd!(sh, "cargo build --quiet --bin sixboot").run()?;
        }
        let root = project_root();
        let options = LabOptions {
            tag: "xqt".into(),
            firmware,
            rom,
            flavor: if self.flexboot {
                RomFlavor::Flexboot
            } else {
                RomFlavor::Ipxe
            },
            server,
            root: root.clone(),
            work: root.join("target").join("qemu-test"),
            sixboot_bin: None,
        };
        eprintln!(
            "lab: {firmware}, server {server}, ROM {}, files in {}",
            options.rom.display(),
            options.work.display()
        );
        let lab = Lab::start(options).context("cannot set up the QEMU lab")?;
        let mut failures = Vec::new();
        let mut boot = |what: &str, mac, expect| -> Result<()> {
            eprintln!("\n=== {what} ===");
            let run = lab.boot(&mac, expect, Duration::from_secs(240), &mut live)?;
            if let Err(problem) = report(&run) {
                eprintln!("FAILED: {problem}\n{}", run.explain());
                failures.push(format!("{what}: {problem}"));
            }
            Ok(())
        };
        boot("known host installs", known_mac(), Expect::Install)?;
        // The fall-through boots expect SeaBIOS's "Booting from Hard Disk" and iPXE's
        // error codes.
        if !self.quick && !firmware.is_arm64() && !self.flexboot {
            if server == ServerKind::Sixboot {
                boot(
                    "known host after /done boots from disk",
                    known_mac(),
                    Expect::FallThrough,
                )?;
            }
            if firmware == Firmware::Bios {
                boot(
                    "unknown host gets 404 and boots from disk",
                    unknown_mac(),
                    Expect::FallThrough,
                )?;
            }
        }
        if !failures.is_empty() {
            bail!(
                "{} boot(s) failed:\n  {}",
                failures.len(),
                failures.join("\n  ")
            );
        }
        eprintln!("all boots passed");
        Ok(())
    }
}

/// Our ROM when built, else the stock one, saying which. The ARM64 machine has no stock
/// program to fall back on: Debian's ROM is x86.
pub fn pick_rom(rom: Option<PathBuf>, stock: bool, firmware: Firmware) -> Result<PathBuf> {
    if let Some(rom) = rom {
        return Ok(rom);
    }
    if firmware.is_arm64() {
        if stock {
            bail!("--stock-rom: Debian has no ARM64 iPXE for the lab; build ours (cargo xtask build-rom --target arm64)");
        }
        return find_our_rom(&project_root(), firmware).context(
            "no dist/arm64/ipxe.efi: run `cargo xtask build-rom --target arm64`, or pass --rom",
        );
    }
    if !stock {
        if let Some(ours) = find_our_rom(&project_root(), firmware) {
            return Ok(ours);
        }
        eprintln!(
            "no sixboot ROM for {firmware} in dist/ (run `cargo xtask build-rom`); using Debian's"
        );
    }
    Ok(PathBuf::from(STOCK_ROM))
}

/// Prints each line with its time since power-on, and each stage when it is reached.
fn live(event: Event<'_>) {
    println!("{event}");
}

fn report(run: &BootRun) -> Result<(), String> {
    println!(
        "\nstage                time since power-on\n{}",
        format_table(&run.timeline)
    );
    if let Some(delta) = run.timeline.between("configuring", "script") {
        println!("  \"Configuring\" to script: {:.3} s", delta.as_secs_f64());
    }
    run.timeline.check(Duration::from_millis(500))
}

//! `cargo xtask bench boot`: how long each boot stage takes from power-on, for sixboot's
//! ROM and server against Debian's stock iPXE ROM and the reference stack (dnsmasq for RA
//! and DHCPv6, nginx for HTTP), all in one run on the same machine.
//!
//! Combinations: our ROM + our server; stock ROM + our server; our ROM + dnsmasq/nginx;
//! and stock ROM + dnsmasq/nginx as the baseline FIELD-NOTES measured (17.6 s to the
//! script); under BIOS also Mellanox FlexBoot's virtio ROM (`build-rom --flavor flexboot
//! --target virtio`) + our server, and our ROM + our server booting Debian's netboot
//! installer with the built-in `debian-installer` templates, up to its preseed request
//! (`sixboot_lab::installer`). `--firmware arm64` has one column: AAVMF's own PXEv6
//! loading our ARM64 `ipxe.efi` from our server (there is no stock ARM64 ROM, and the
//! reference stack serves no per-architecture boot file), with AAVMF's stages as the
//! first rows. A combination whose ROM is not built, or whose server does not start, is
//! reported as such and the others still run. The QEMU guest runs under TCG, so times
//! depend on the machine's load: run it on a quiet machine and compare columns, not runs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use sixboot_lab::installer::{DebianInstallerLab, DI_DIR, DI_PACKAGE};
use sixboot_lab::lab::{Lab, LabOptions, ServerKind};
use sixboot_lab::qemu::{find_our_rom, Firmware, NetBoot, STOCK_ROM};
use sixboot_lab::server::Expect;
use sixboot_lab::timeline::Timeline;
use sixboot_lab::{firmware_stages, known_mac, Event, RomFlavor};
use xshell::{cmd, Shell};

use crate::qemu_test::{FirmwareArg, LAB_PACKAGES};
use crate::{deps, project_root};

/// Stages shown, in boot order, after the firmware's own ([`firmware_stages`]); a
/// combination without a stage shows an empty cell.
const ROWS: &[&str] = &[
    "ipxe",
    "configuring",
    "configured",
    "script",
    "kernel",
    "initrd",
    "linux",
    "up",
    "ks",
    "done",
    "poweroff",
    "srv:di-dhcpv6",
    "srv:preseed",
];

/// Where `build-rom --flavor flexboot --target virtio` packages FlexBoot's virtio ROM.
const FLEXBOOT_ROM: &str = "virtio/flexboot-virtio-net-1af41000.rom";

/// The Debian installer's column.
const DEBIAN_INSTALLER: &str = "our ROM + sixboot, d-i";

#[derive(Debug, Args)]
pub struct BootBench {
    /// SeaBIOS, OVMF, or ARM64 UEFI (AAVMF).
    #[arg(long, value_enum, default_value = "bios")]
    firmware: FirmwareArg,
    /// Our ROM; default: `dist/**/1af41000.rom` (or `.efirom`; for arm64
    /// `dist/arm64/ipxe.efi`).
    #[arg(long)]
    rom: Option<PathBuf>,
    /// FlexBoot's virtio ROM for its column (BIOS); default:
    /// `dist-flexboot/virtio/flexboot-virtio-net-1af41000.rom`.
    #[arg(long)]
    flexboot_rom: Option<PathBuf>,
    /// Use this `sixboot` binary instead of building `target/release/sixboot`.
    #[arg(long, value_name = "PATH")]
    sixboot_bin: Option<PathBuf>,
    /// Print the apt-get line for missing packages instead of running it.
    #[arg(long)]
    no_install: bool,
}

struct Column {
    name: String,
    result: Result<Timeline, String>,
}

impl BootBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        deps::ensure(
            sh,
            &[deps::SERVER_BUILD, LAB_PACKAGES].concat(),
            self.no_install,
        )?;
        let root = project_root();
        let sixboot_bin = match self.sixboot_bin {
            Some(path) => path,
            None => {
                cmd!(sh, "cargo build --quiet --release --bin sixboot").run()?;
                root.join("target/release/sixboot")
            }
        };
        let firmware = Firmware::from(self.firmware);
        let ours = self.rom.or_else(|| find_our_rom(&root, firmware));
        let stock = PathBuf::from(STOCK_ROM);
        let ipxe = RomFlavor::Ipxe;
        let mut combos: Vec<(&str, Option<PathBuf>, RomFlavor, ServerKind)> = Vec::new();
        if firmware.is_arm64() {
            combos.push((
                "AAVMF + our iPXE + sixboot",
                ours,
                ipxe,
                ServerKind::Sixboot,
            ));
        } else {
            combos.extend([
                ("our ROM + sixboot", ours.clone(), ipxe, ServerKind::Sixboot),
                (
                    "stock ROM + sixboot",
                    Some(stock.clone()),
                    ipxe,
                    ServerKind::Sixboot,
                ),
                ("our ROM + dnsmasq/nginx", ours, ipxe, ServerKind::Reference),
                (
                    "stock ROM + dnsmasq/nginx",
                    Some(stock),
                    ipxe,
                    ServerKind::Reference,
                ),
            ]);
        }
        if firmware == Firmware::Bios {
            let flexboot = self.flexboot_rom.or_else(|| {
                let path = root.join("dist-flexboot").join(FLEXBOOT_ROM);
                path.is_file().then_some(path)
            });
            combos.push((
                "FlexBoot + sixboot",
                flexboot,
                RomFlavor::Flexboot,
                ServerKind::Sixboot,
            ));
        }
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        eprintln!("load average before: {}", load.trim());
        let mut columns = Vec::new();
        let di_rom = combos[0].1.clone();
        for (name, rom, flavor, server) in combos {
            eprintln!("--- {name} ---");
            let result = match rom {
                None => Err(match flavor {
                    RomFlavor::Ipxe => "ROM not built (cargo xtask build-rom)",
                    RomFlavor::Flexboot => {
                        "ROM not built (cargo xtask build-rom --flavor flexboot --target virtio)"
                    }
                }
                .to_string()),
                Some(rom) => measure(&root, &sixboot_bin, firmware, rom, flavor, server),
            };
            if let Err(problem) = &result {
                eprintln!("{name}: {problem}");
            }
            columns.push(Column {
                name: name.to_string(),
                result,
            });
        }
        eprintln!("--- {DEBIAN_INSTALLER} ---");
        let result = match (firmware, di_rom) {
            (Firmware::Uefi | Firmware::Arm64Uefi, _) => {
                Err("measured under BIOS only".to_string())
            }
            (_, None) => Err("ROM not built (cargo xtask build-rom)".to_string()),
            (_, Some(rom)) => measure_debian_installer(&root, &sixboot_bin, &rom),
        };
        if let Err(problem) = &result {
            eprintln!("{DEBIAN_INSTALLER}: {problem}");
        }
        columns.push(Column {
            name: DEBIAN_INSTALLER.to_string(),
            result,
        });
        print_table(firmware, &columns);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("load average after: {}", load.trim());
        Ok(())
    }
}

fn measure(
    root: &std::path::Path,
    sixboot_bin: &std::path::Path,
    firmware: Firmware,
    rom: PathBuf,
    flavor: RomFlavor,
    server: ServerKind,
) -> Result<Timeline, String> {
    let options = LabOptions {
        tag: "bench".into(),
        firmware,
        rom,
        flavor,
        server,
        root: root.to_path_buf(),
        work: root.join("target").join("bench-boot"),
        sixboot_bin: Some(sixboot_bin.to_path_buf()),
    };
    let lab = Lab::start(options).map_err(|err| err.to_string())?;
    let mut progress = |event: Event<'_>| {
        if let Event::Stage { name, at } = event {
            eprintln!("  {name:<18} {:8.3} s", at.as_secs_f64());
        }
    };
    let run = lab
        .boot(
            &known_mac(),
            Expect::Install,
            Duration::from_secs(240),
            &mut progress,
        )
        .map_err(|err| err.to_string())?;
    match run.timeline.check(Duration::from_millis(500)) {
        Ok(()) => Ok(run.timeline),
        Err(problem) => Err(format!("{problem}\n{}", run.explain())),
    }
}

/// Debian's netboot installer from our ROM and sixboot, to its preseed request and /done.
fn measure_debian_installer(
    root: &std::path::Path,
    sixboot_bin: &std::path::Path,
    rom: &std::path::Path,
) -> Result<Timeline, String> {
    if !std::path::Path::new(DI_DIR).join("initrd.gz").exists() {
        return Err(format!("{DI_DIR} missing: apt-get install {DI_PACKAGE}"));
    }
    let lab = DebianInstallerLab::start("bdi", &root.join("target/bench-boot-di"), sixboot_bin)
        .map_err(|err| err.to_string())?;
    let mut progress = |event: Event<'_>| {
        if let Event::Stage { name, at } = event {
            eprintln!("  {name:<18} {:8.3} s", at.as_secs_f64());
        }
    };
    let run = lab
        .boot(rom, Duration::from_secs(240), &mut progress)
        .map_err(|err| err.to_string())?;
    match run.timeline.check(Duration::from_millis(500)) {
        Ok(()) => Ok(run.timeline),
        Err(problem) => Err(format!("{problem}\n{}", run.explain())),
    }
}

fn print_table(firmware: Firmware, columns: &[Column]) {
    let width = 26;
    println!("\nboot stages, seconds since power-on ({firmware}, QEMU TCG)");
    print!("{:<24}", "stage");
    for column in columns {
        print!("{:>width$}", column.name);
    }
    println!();
    let cell = |column: &Column, value: Option<Duration>| match (&column.result, value) {
        (Err(_), _) => "-".to_string(),
        (Ok(_), Some(value)) => format!("{:.3}", value.as_secs_f64()),
        (Ok(_), None) => "never".to_string(),
    };
    let firmware_rows: Vec<&str> = firmware_stages(firmware, NetBoot::default_for(firmware))
        .iter()
        .map(|stage| stage.name)
        .collect();
    for row in firmware_rows.iter().chain(ROWS) {
        print!("{row:<24}");
        for column in columns {
            let has_stage = column
                .result
                .as_ref()
                .map_or(true, |t| t.rows().any(|(stage, _)| stage.name == *row));
            let value = column
                .result
                .as_ref()
                .ok()
                .and_then(|timeline| timeline.seen(row))
                .map(|seen| seen.at);
            let text = if has_stage {
                cell(column, value)
            } else {
                String::new()
            };
            print!("{text:>width$}");
        }
        println!();
    }
    print!("{:<24}", "Configuring -> script");
    for column in columns {
        let value = column
            .result
            .as_ref()
            .ok()
            .and_then(|timeline| timeline.between("configuring", "script"));
        print!("{:>width$}", cell(column, value));
    }
    println!();
    for column in columns {
        if let Err(problem) = &column.result {
            let first = problem.lines().next().unwrap_or_default();
            println!("{}: not measured: {first}", column.name);
        }
    }
    print!("{:<24}", "d-i DHCPv6 -> preseed");
    for column in columns {
        let value = column
            .result
            .as_ref()
            .ok()
            .and_then(|timeline| timeline.between("srv:di-dhcpv6", "srv:preseed"));
        let has = column.name == DEBIAN_INSTALLER;
        print!(
            "{:>width$}",
            if has {
                cell(column, value)
            } else {
                String::new()
            }
        );
    }
    println!();
    println!(
        "goals: Configuring -> script <= 0.150 s; script <= 3 s from power-on (our ROM + sixboot); \
         d-i DHCPv6 -> preseed < 5 s (no DHCPv4 wait)"
    );
}

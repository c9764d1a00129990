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
use serde::{Deserialize, Serialize};
use sixboot_lab::installer::{DebianInstallerLab, DI_DIR, DI_PACKAGE};
use sixboot_lab::lab::{Lab, LabOptions, ServerKind};
use sixboot_lab::qemu::{find_our_rom, Firmware, STOCK_ROM};
use sixboot_lab::server::Expect;
use sixboot_lab::timeline::Timeline;
use sixboot_lab::{known_mac, Event, RomFlavor};
use xshell::{cmd, Shell};

use super::report::{self, met, Common, Run, Table};
use crate::qemu_test::{FirmwareArg, LAB_PACKAGES};
use crate::{deps, project_root};

/// Stages shown, in boot order, with what each means (a combination without a stage
/// shows an empty cell). The first four are AAVMF's own (`sixboot_lab::firmware_stages`,
/// ARM64).
const ROWS: &[(&str, &str)] = &[
    ("firmware", "UEFI firmware banner (ARM64)"),
    ("pxe", "firmware PXEv6 starts (ARM64)"),
    ("pxe-address", "firmware has its address"),
    ("nbp", "ipxe.efi downloaded (TFTP)"),
    ("ipxe", "iPXE banner"),
    ("configuring", "\"Configuring\" (DHCPv6 starts)"),
    ("configured", "address configured"),
    ("script", "per-host script runs"),
    ("kernel", "kernel loaded"),
    ("initrd", "initrd loaded"),
    ("linux", "Linux starts"),
    ("up", "Linux up with its IPv6 address"),
    ("ks", "kickstart fetched"),
    ("done", "/done called"),
    ("poweroff", "power off"),
    ("srv:di-dhcpv6", "d-i's DHCPv6 (server log)"),
    ("srv:preseed", "d-i's preseed (server log)"),
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
    #[command(flatten)]
    common: Common,
}

/// One run of this bench: what `--json` prints and README's table is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: Run,
    /// `bios` or `uefi`.
    pub firmware: String,
    /// One per ROM + server combination, in the table's column order.
    pub columns: Vec<Column>,
}

/// One combination's boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// E.g. `our ROM + sixboot`.
    pub name: String,
    /// Seconds since power-on at which each of its stages was first seen (`None`: never
    /// seen). Stages the combination does not have are left out.
    pub stages: Vec<(String, Option<f64>)>,
    /// Why the combination was not measured (ROM not built, server did not start…).
    pub error: Option<String>,
}

impl Column {
    fn measured(name: &str, timeline: &Timeline) -> Column {
        Column {
            name: name.to_owned(),
            stages: ROWS
                .iter()
                .filter(|(stage, _)| timeline.rows().any(|(s, _)| s.name == *stage))
                .map(|(stage, _)| {
                    let at = timeline.seen(stage).map(|seen| seen.at.as_secs_f64());
                    (stage.to_string(), at)
                })
                .collect(),
            error: None,
        }
    }

    fn at(&self, stage: &str) -> Option<f64> {
        self.stages
            .iter()
            .find(|(s, _)| s == stage)
            .and_then(|(_, at)| *at)
    }

    fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|(s, _)| s == stage)
    }

    /// The failed measurement's column: its name and the first line of why.
    fn failed(name: &str, problem: &str) -> Column {
        eprintln!("{name}: {problem}");
        Column {
            name: name.to_owned(),
            stages: Vec::new(),
            error: Some(problem.lines().next().unwrap_or_default().to_owned()),
        }
    }

    /// "Configuring" to the script running: the DHCPv6 + HTTP part of the boot.
    fn configuring_to_script(&self) -> Option<f64> {
        Some(self.at("script")? - self.at("configuring")?)
    }

    /// The installer's DHCPv6 to its preseed request (the d-i column only).
    fn di_dhcpv6_to_preseed(&self) -> Option<f64> {
        Some(self.at("srv:preseed")? - self.at("srv:di-dhcpv6")?)
    }
}

impl BootBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        deps::ensure(
            sh,
            &[deps::SERVER_BUILD, LAB_PACKAGES].concat(),
            self.common.no_install,
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
        let mut run = Run::start();
        run.tools = report::tool_versions(sh, &[("qemu-system-x86_64", &["--version"])]);
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
            columns.push(match result {
                Ok(timeline) => Column::measured(name, &timeline),
                Err(problem) => Column::failed(name, &problem),
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
        columns.push(match result {
            Ok(timeline) => Column::measured(DEBIAN_INSTALLER, &timeline),
            Err(problem) => Column::failed(DEBIAN_INSTALLER, &problem),
        });
        run.finish();
        let report = Report {
            run,
            firmware: firmware.to_string(),
            columns,
        };
        report::print(&report, self.common.json, render)
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

/// The table of stage times (what the bench prints and README shows), the goals, and
/// the run.
pub fn render(report: &Report) -> String {
    let mut header: Vec<(&str, bool)> = vec![("s since power-on", false)];
    header.extend(report.columns.iter().map(|c| (c.name.as_str(), true)));
    let mut table = Table::new(&header);
    let cell = |column: &Column, value: Option<f64>| match (&column.error, value) {
        (Some(_), _) => "-".to_string(),
        (None, Some(value)) => format!("{value:.3}"),
        (None, None) => "never".to_string(),
    };
    for (stage, label) in ROWS {
        let mut cells = vec![label.to_string()];
        cells.extend(report.columns.iter().map(|c| {
            if c.error.is_none() && !c.has(stage) {
                String::new()
            } else {
                cell(c, c.at(stage))
            }
        }));
        table.row(cells);
    }
    let mut cells = vec!["d-i DHCPv6 → preseed".to_string()];
    cells.extend(report.columns.iter().map(|c| {
        if c.name == DEBIAN_INSTALLER {
            cell(c, c.di_dhcpv6_to_preseed())
        } else {
            String::new()
        }
    }));
    table.row(cells);
    let mut cells = vec!["\"Configuring\" → script".to_string()];
    cells.extend(
        report
            .columns
            .iter()
            .map(|c| cell(c, c.configuring_to_script())),
    );
    table.row(cells);
    let intro = format!(
        "Boot stages, seconds since power-on ({}, QEMU TCG):",
        report.firmware
    );
    let mut bullets: Vec<String> = report
        .columns
        .iter()
        .filter_map(|c| Some(format!("{}: not measured: {}", c.name, c.error.as_ref()?)))
        .collect();
    bullets.extend(headlines(report));
    report::document(&intro, &table, &bullets, &report.run)
}

/// The results against the goals (our ROM + sixboot: "Configuring" → script <= 0.150 s,
/// script <= 3 s after power-on; the Debian installer's DHCPv6 → preseed < 5 s), and the
/// same span for the other combinations.
pub fn headlines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let measured = |name: &str| {
        report
            .columns
            .iter()
            .find(|c| c.name == name && c.error.is_none())
    };
    let others: Vec<String> = report
        .columns
        .iter()
        .filter(|c| c.name != "our ROM + sixboot")
        .filter_map(|c| Some(format!("{} {:.3} s", c.name, c.configuring_to_script()?)))
        .collect();
    if let Some(di) = measured(DEBIAN_INSTALLER).and_then(Column::di_dhcpv6_to_preseed) {
        lines.push(format!(
            "Boot ({}), Debian installer from our ROM + sixboot, its DHCPv6 → preseed: \
             {di:.3} s (goal < 5 s, no DHCPv4 wait): {}",
            report.firmware,
            met(di < 5.0)
        ));
    }
    if let Some(ours) = measured("our ROM + sixboot") {
        if let Some(fast) = ours.configuring_to_script() {
            lines.push(format!(
                "Boot ({}), our ROM + sixboot, \"Configuring\" → script: {fast:.3} s (goal <= \
                 0.150 s): {}; {}",
                report.firmware,
                met(fast <= 0.150),
                others.join(", ")
            ));
        }
        if let Some(script) = ours.at("script") {
            lines.push(format!(
                "Boot ({}), our ROM + sixboot, script runs {script:.3} s after power-on (goal <= \
                 3 s): {}",
                report.firmware,
                met(script <= 3.0)
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, stages: &[(&str, Option<f64>)]) -> Column {
        Column {
            name: name.into(),
            stages: stages.iter().map(|(s, at)| (s.to_string(), *at)).collect(),
            error: None,
        }
    }

    #[test]
    fn renders_stages_per_column_and_the_goals() {
        let report = Report {
            run: Run::fixture("cargo xtask bench boot --json"),
            firmware: "bios".into(),
            columns: vec![
                column(
                    "our ROM + sixboot",
                    &[
                        ("configuring", Some(0.7)),
                        ("script", Some(0.76)),
                        ("ks", None),
                    ],
                ),
                column(
                    DEBIAN_INSTALLER,
                    &[("srv:di-dhcpv6", Some(10.0)), ("srv:preseed", Some(11.5))],
                ),
                Column::failed("stock ROM + sixboot", "ROM not built\nmore"),
            ],
        };
        let text = render(&report);
        let line = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("| {label} ")))
                .unwrap_or_else(|| panic!("no row {label}:\n{text}"))
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
        };
        // A stage the combination has but never reached, one it does not have, a failure.
        assert_eq!(line("kickstart fetched")[2..5], ["never", "", "-"]);
        assert_eq!(line("d-i DHCPv6 → preseed")[2..5], ["", "1.500", ""]);
        assert!(text.contains("stock ROM + sixboot: not measured: ROM not built\n"));
        let goals = headlines(&report).join("\n");
        assert!(goals.contains("\"Configuring\" → script: 0.060 s (goal <= 0.150 s): met"));
        assert!(goals.contains("DHCPv6 → preseed: 1.500 s (goal < 5 s, no DHCPv4 wait): met"));
        assert!(goals.contains("script runs 0.760 s after power-on (goal <= 3 s): met"));
    }
}

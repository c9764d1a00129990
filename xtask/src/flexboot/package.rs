//! The FlexBoot package: the default flavour's [`Manifest`], `SHA256SUMS` and atomic
//! [`publish`](crate::build_rom::package::publish), with a FlexBoot `BURN.md`.
//!
//! FlexBoot's `BURN.md` differs from the default flavour's where the firmware does: the
//! boot IP version these images default to is only a default, and a value saved in the
//! NIC's flash wins, so the manifest's `burn_notes` say how to read, set and clear that
//! value; there are no EFI or combined images; and the QEMU image is a ConnectX-3 `.rom`
//! for `-option-rom`, not a virtio-net ROM.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::build_rom::inputs::{self, sha256_hex};
use crate::build_rom::package::{
    self, ConfigRecord, FileRecord, ImageRecord, Manifest, NamedHash, PatchRecord, SourceRecord,
    TargetRecord,
};
use crate::build_rom::targets::{Kind, Target};

use super::Build;

/// The manifest of a FlexBoot build. `config` records each tree's `EXTRA_CFLAGS` (FlexBoot
/// has no `config/local` headers: its configuration is those flags); `rom_version` is
/// Mellanox's release.
pub fn manifest(build: &Build) -> Manifest {
    let mut config_files: Vec<NamedHash> = build
        .trees
        .iter()
        .map(|tree| NamedHash {
            name: format!("EXTRA_CFLAGS {}: {}", tree.name, tree.extra_cflags),
            sha256: sha256_hex(tree.extra_cflags.as_bytes()),
        })
        .collect();
    config_files.sort_by(|a, b| a.name.cmp(&b.name));
    let config_listing: String = config_files
        .iter()
        .map(|file| format!("{}\n", file.name))
        .collect();
    let mut targets: Vec<Target> = build.images.iter().map(|image| image.spec.target).collect();
    targets.sort();
    targets.dedup();
    Manifest {
        tool: "sixboot build-rom".to_string(),
        flavor: "flexboot".to_string(),
        source: SourceRecord {
            name: format!("flexboot {}", build.pin.release),
            url: build.pin.pin.url.clone(),
            commit: build.pin.pin.commit.clone(),
            date: build.pin.pin.date.clone(),
        },
        patches: build
            .patches
            .iter()
            .map(|patch| PatchRecord {
                file: format!("flexboot/{}", patch.file),
                sha256: patch.sha256.clone(),
                applied: true,
            })
            .collect(),
        config: ConfigRecord {
            sha256: sha256_hex(config_listing.as_bytes()),
            files: config_files,
        },
        script: FileRecord {
            path: relative_to_project(&build.script.path),
            size: build.script.bytes.len() as u64,
            sha256: build.script.sha256(),
        },
        trust: None,
        dual_stack: build.script.path.ends_with(inputs::DUAL_STACK_SCRIPT),
        rom_version: build.pin.release.clone(),
        targets: targets
            .iter()
            .map(|&target| {
                let keys: Vec<&str> = build
                    .images
                    .iter()
                    .filter(|image| image.spec.target == target)
                    .map(|image| image.input_key.as_str())
                    .collect();
                TargetRecord {
                    name: target.name().to_string(),
                    input_key: sha256_hex(keys.join("\n").as_bytes()),
                }
            })
            .collect(),
        images: build
            .images
            .iter()
            .map(|image| ImageRecord {
                target: image.spec.target.name().to_string(),
                file: image.spec.package_file(),
                kind: kind_name(image.spec.kind).to_string(),
                pci_ids: vec![image.spec.device.pci_id.to_string()],
                size: image.bytes.len() as u64,
                sha256: sha256_hex(&image.bytes),
                checks: image.checks.clone(),
            })
            .collect(),
        burn_notes: vec![FLASH_SETTING_WINS.trim_end().to_string()],
    }
}

/// Writes the package to `out` with the default flavour's `publish`: a staging directory
/// swapped in at the end, files checked against the manifest's hashes.
pub fn publish(build: &Build, out: &Path) -> Result<()> {
    let manifest = manifest(build);
    let files: Vec<(String, PathBuf)> = build
        .images
        .iter()
        .map(|image| (image.spec.package_file(), image.path.clone()))
        .collect();
    package::publish(out, &manifest, &files)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::LegacyMrom => "legacy-mrom",
        _ => "legacy-rom",
    }
}

fn relative_to_project(path: &Path) -> String {
    let root = crate::project_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `BURN.md` for FlexBoot images: the flash-setting rule first, then per device the
/// burn commands and the settings that make the card offer its ROM.
pub fn burn_md(manifest: &Manifest) -> String {
    let mut md = String::new();
    let patches = manifest.applied_patches();
    let _ = writeln!(md, "# Burning these FlexBoot ROMs\n");
    let _ = writeln!(
        md,
        "Mellanox FlexBoot {} ({}, {}) rebuilt by `cargo xtask build-rom --flavor flexboot` \
         with patches {}; embedded script sha256 {}. Every image passed the checks listed \
         in `manifest.json`; check the files with `sha256sum -c SHA256SUMS` before you burn \
         them.\n",
        manifest.rom_version,
        manifest.source.commit,
        manifest.source.date,
        patches.join(", "),
        manifest.script.sha256,
    );
    for note in &manifest.burn_notes {
        let _ = writeln!(md, "{}\n", note.trim_end());
    }
    if manifest.images.iter().any(|image| image.target != "qemu") {
        md.push_str(BEFORE_YOU_START);
    }
    for image in &manifest.images {
        match image.target.as_str() {
            "qemu" => {
                let _ = writeln!(
                    md,
                    "## QEMU smoke-test image (not for burning)\n\n\
                     `{}` is a ConnectX-3 `.rom` without flash configuration (no Ctrl-B menu, \
                     no NV settings). It runs in QEMU with no NIC at all and shows the banner \
                     and the embedded script:\n\
                     `qemu-system-x86_64 -nographic -net none -option-rom {}`\n",
                    image.file, image.file
                );
            }
            target => write_device_section(&mut md, target, image),
        }
    }
    md
}

const FLASH_SETTING_WINS: &str = "\
## A boot IP version saved in the NIC's flash still wins

These images boot over IPv6 when the NIC's flash holds no boot IP version: that is the
one change to Mellanox's behaviour (stock FlexBoot defaults to IPv4). FlexBoot reads the
flash first, so a value saved there, from FlexBoot's Ctrl-B menu (NIC Configuration,
\"IPv4/IPv6 support\") or with `mlxconfig ... set IP_VER...`, is used instead. A card that
was ever set to IPv4 keeps booting IPv4, and then FlexBoot also turns DHCPv6 off, so the
embedded script's `ifconf -c ipv6` finds no address.

- See what is saved: `mlxconfig -d <pci> query | grep IP_VER` (`mstconfig` in Debian's
  mstflint package takes the same arguments; mstflint releases after 2023 dropped the
  ConnectX-3 parameters, so use Mellanox MFT's `mlxconfig` for that card).
- Make it IPv6 whatever is saved:
  - ConnectX-4 / 4 Lx: `mlxconfig -d <pci> set IP_VER=IPv6`
  - ConnectX-3 / 3 Pro: `mlxconfig -d <pci> set IP_VER_P1=IPv6 IP_VER_P2=IPv6`
  - or in the Ctrl-B menu: NIC Configuration, \"IPv4/IPv6 support\" = IPv6, then save.
- Or clear what is saved so the images' IPv6 default applies:
  `mlxconfig -d <pci> reset`. This resets every setting of the card to its default, not
  only IP_VER: note what `query` shows first and set again what you need (for example
  the boot settings below).
- Settings take effect at the next cold boot (or `mlxfwreset -d <pci> reset`).

";

const BEFORE_YOU_START: &str = "\
## Before you start

- Tools: `mstflint` (Debian package `mstflint`) burns and reads the ROM; `mlxconfig`
  (Mellanox MFT, or `mstconfig` from mstflint) changes the NIC's settings.
- Find the NIC's PCI address: `lspci -nn -d 15b3:` (for example `03:00.0`). A dual-port
  card has one ROM for both ports: burn it once, on function 0.
- Save what is on the card now: `mstflint -d 03:00.0 rrom backup-03:00.0.rom`; put it
  back with `mstflint -d 03:00.0 brom backup-03:00.0.rom`.
- These are legacy BIOS images only: FlexBoot 3.4.812 has no UEFI build. For UEFI
  machines use the default flavour's `.efirom` (`cargo xtask build-rom`).
- Self-built ROMs carry no `mlxsign:` record, so `mstflint qrom` says \"Signature not
  found\": expected.

";

fn write_device_section(md: &mut String, target: &str, image: &ImageRecord) {
    let device = image.pci_ids.first().map(String::as_str).unwrap_or("?");
    let family = match device {
        "15b3:1003" => "ConnectX-3",
        "15b3:1007" => "ConnectX-3 Pro",
        "15b3:1013" => "ConnectX-4",
        "15b3:1015" => "ConnectX-4 Lx",
        _ => target,
    };
    let _ = writeln!(md, "## {family} ({device})\n");
    let _ = writeln!(md, "- Burn: `mstflint -d <pci> brom {}`", image.file);
    let _ = writeln!(md, "- Check: `mstflint -d <pci> qrom`");
    if target == "cx3" {
        md.push_str(
            "- Let the card offer its ROM (port 1; `_P2` for port 2):\n  \
             `mlxconfig -d <pci> set BOOT_OPTION_ROM_EN_P1=1 LEGACY_BOOT_PROTOCOL_P1=PXE`\n",
        );
    } else {
        md.push_str(
            "- Let the card offer its ROM to the BIOS:\n  \
             `mlxconfig -d <pci> set EXP_ROM_PXE_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE`\n",
        );
    }
    md.push_str(
        "- Power-cycle, then put this NIC in the BIOS boot order. FlexBoot's Ctrl-B menu\n  \
         is offered for a few seconds at POST.\n\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str, file: &str, pci: &str) -> ImageRecord {
        ImageRecord {
            target: target.into(),
            file: file.into(),
            kind: "legacy-mrom".into(),
            pci_ids: vec![pci.into()],
            size: 1,
            sha256: "00".repeat(32),
            checks: vec![],
        }
    }

    fn manifest_with(images: Vec<ImageRecord>) -> Manifest {
        Manifest {
            tool: "sixboot build-rom".into(),
            flavor: "flexboot".into(),
            source: SourceRecord {
                name: "flexboot 3.4.812".into(),
                url: "u".into(),
                commit: "a188cf47f524dce18a8f5d5413e3fe97993e6737".into(),
                date: "2016-07-05T14:39:15+03:00".into(),
            },
            patches: vec![PatchRecord {
                file: "flexboot/0002-ipv6-default-boot-ip-version.patch".into(),
                sha256: "11".repeat(32),
                applied: true,
            }],
            config: ConfigRecord {
                sha256: "22".repeat(32),
                files: vec![],
            },
            script: FileRecord {
                path: "ipxe-config/embed.ipxe".into(),
                size: 1,
                sha256: "33".repeat(32),
            },
            trust: None,
            dual_stack: false,
            rom_version: "3.4.812".into(),
            targets: vec![],
            images,
            burn_notes: vec![FLASH_SETTING_WINS.trim_end().to_string()],
        }
    }

    #[test]
    fn burn_md_says_a_saved_value_wins_and_how_to_set_or_clear_it() {
        let md = burn_md(&manifest_with(vec![
            record("cx3", "cx3/flexboot-ConnectX-3-15b31003.mrom", "15b3:1003"),
            record("cx4", "cx4/flexboot-ConnectX-4-15b31013.mrom", "15b3:1013"),
        ]));
        for needle in [
            "A boot IP version saved in the NIC's flash still wins",
            "mlxconfig -d <pci> set IP_VER=IPv6",
            "mlxconfig -d <pci> set IP_VER_P1=IPv6 IP_VER_P2=IPv6",
            "mlxconfig -d <pci> reset",
            "## ConnectX-3 (15b3:1003)",
            "mstflint -d <pci> brom cx3/flexboot-ConnectX-3-15b31003.mrom",
            "BOOT_OPTION_ROM_EN_P1=1 LEGACY_BOOT_PROTOCOL_P1=PXE",
            "## ConnectX-4 (15b3:1013)",
            "EXP_ROM_PXE_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE",
            "a188cf47f524dce18a8f5d5413e3fe97993e6737",
        ] {
            assert!(md.contains(needle), "BURN.md lacks {needle:?}:\n{md}");
        }
        assert!(!md.contains("QEMU smoke-test image"));
    }

    #[test]
    fn burn_md_marks_the_qemu_image_as_not_for_burning() {
        let md = burn_md(&manifest_with(vec![record(
            "qemu",
            "qemu/flexboot-ConnectX-3-15b31003.rom",
            "15b3:1003",
        )]));
        assert!(
            md.contains("QEMU smoke-test image (not for burning)"),
            "{md}"
        );
        assert!(md.contains("-option-rom qemu/flexboot-ConnectX-3-15b31003.rom"));
        assert!(!md.contains("## Before you start"));
    }

    #[test]
    fn the_default_flavours_burn_md_hands_flexboot_manifests_here() {
        let manifest = manifest_with(vec![record("cx4", "cx4/x.mrom", "15b3:1013")]);
        assert_eq!(package::burn_md(&manifest), burn_md(&manifest));
    }
}

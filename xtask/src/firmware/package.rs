//! The package directory (`dist/`, `dist-flexboot/`): images, `manifest.json`,
//! `SHA256SUMS` and `BURN.md`, for every flavour.
//!
//! The pipeline fills in a [`Manifest`] and the list of files, and [`publish`] writes
//! them to a staging directory next to the output and swaps it in, so the output
//! directory is always a complete package or the previous one, never a mix. BURN.md's
//! flavour-specific text comes from the flavour's [`BurnText`]; the device sections from
//! the NIC table ([`super::targets::NICS`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::flavor::BurnText;
use super::inputs::sha256_hex;
use super::targets::{nic_by_id, Nic, PciId};

/// What `manifest.json` says about a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always "sixboot build-rom"; marks an output directory as ours.
    pub tool: String,
    /// "ipxe" or "flexboot".
    pub flavor: String,
    /// The firmware source.
    pub source: SourceRecord,
    /// Every patch in the patch directory and whether it went in.
    pub patches: Vec<PatchRecord>,
    /// The `config/local` headers.
    pub config: ConfigRecord,
    /// The embedded script.
    pub script: FileRecord,
    /// The CA given with `--trust`, if any.
    pub trust: Option<FileRecord>,
    /// Whether the default script was the dual-stack one.
    pub dual_stack: bool,
    /// The version stamped into combined images (`X.Y.Z`).
    pub rom_version: String,
    /// Each target and the hash of everything that went into it.
    pub targets: Vec<TargetRecord>,
    /// Every file in the package.
    pub images: Vec<ImageRecord>,
    /// Flavour-specific paragraphs for BURN.md, after its header (FlexBoot: a value saved
    /// in the NIC's flash overrides the compiled-in default, and how to clear it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub burn_notes: Vec<String>,
}

/// The firmware source of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// "ipxe" or "flexboot".
    pub name: String,
    /// Upstream URL from the lock file.
    pub url: String,
    /// Pinned commit.
    pub commit: String,
    /// Commit date.
    pub date: String,
}

/// One patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRecord {
    /// File name in the patch directory.
    pub file: String,
    /// SHA-256 of the patch file.
    pub sha256: String,
    /// False when skipped with `--no-patch`.
    pub applied: bool,
}

/// The configuration headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// One hash over all headers (names and contents).
    pub sha256: String,
    /// Each header.
    pub files: Vec<NamedHash>,
}

/// A name and a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedHash {
    /// File name.
    pub name: String,
    /// SHA-256 of its contents.
    pub sha256: String,
}

/// An input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The path it was read from.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of its contents.
    pub sha256: String,
}

/// A target and its input key (the cache key: a hash of every input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    /// "cx3", "cx4", "qemu", …
    pub name: String,
    /// SHA-256 over everything that went into the target's images.
    pub input_key: String,
    /// Never booted on real hardware here (cx5, cx6, cx7).
    #[serde(default, skip_serializing_if = "is_false")]
    pub experimental: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The target it belongs to.
    pub target: String,
    /// Path relative to the output directory (`cx3/15b31003.mrom`).
    pub file: String,
    /// "legacy-mrom", "legacy-rom", "efi-rom", "combined", "lkrn", "efi-app".
    pub kind: String,
    /// PCI IDs the image is for (`15b3:1003`); empty for loaders.
    pub pci_ids: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The checks it passed (`ipv6`, `script`, `driver:hermon_driver`, `rom-verify:…`).
    pub checks: Vec<String>,
    /// Never booted on real hardware here (cx5, cx6, cx7).
    #[serde(default, skip_serializing_if = "is_false")]
    pub experimental: bool,
}

/// `SHA256SUMS` in the format `sha256sum -c` reads.
pub fn sha256sums(images: &[ImageRecord]) -> String {
    let mut text = String::new();
    for image in images {
        let _ = writeln!(text, "{}  {}", image.sha256, image.file);
    }
    text
}

impl Manifest {
    /// The file names of the patches that went into the build, in order.
    pub fn applied_patches(&self) -> Vec<&str> {
        self.patches
            .iter()
            .filter(|p| p.applied)
            .map(|p| p.file.as_str())
            .collect()
    }
}

/// `BURN.md`: how to put each image on a NIC (or where a UEFI application goes), with
/// the exact commands; then how to boot over IPv6 with the card's stock firmware.
pub fn burn_md(manifest: &Manifest, text: &BurnText) -> String {
    let mut md = String::new();
    let patches = manifest.applied_patches();
    let command = if manifest.flavor == "ipxe" {
        "cargo xtask build-rom".to_string()
    } else {
        format!("cargo xtask build-rom --flavor {}", manifest.flavor)
    };
    let _ = writeln!(md, "{}\n", text.title);
    let _ = writeln!(
        md,
        "Built by `{command}` from {} {} ({}), patches: {}; embedded script \
         sha256 {}. Every image passed the checks listed in `manifest.json`; check the \
         files with `sha256sum -c SHA256SUMS` before you burn them.\n",
        manifest.source.name,
        manifest.source.commit,
        manifest.source.date,
        if patches.is_empty() {
            "none".to_string()
        } else {
            patches.join(", ")
        },
        manifest.script.sha256,
    );
    for note in &manifest.burn_notes {
        let _ = writeln!(md, "{}\n", note.trim_end());
    }
    let nic_images: Vec<&ImageRecord> = manifest
        .images
        .iter()
        .filter(|image| !matches!(image.target.as_str(), "qemu" | "virtio"))
        .filter(|image| image_nic(image).is_some())
        .collect();
    if !nic_images.is_empty() {
        md.push_str(&before_you_start(text));
    }
    for target in &manifest.targets {
        let images: Vec<&ImageRecord> = manifest
            .images
            .iter()
            .filter(|i| i.target == target.name)
            .collect();
        match target.name.as_str() {
            "qemu" | "virtio" => write_qemu_section(&mut md, &manifest.flavor, &images),
            "snponly" | "arm64" => write_uefi_app_section(&mut md, &target.name, &images),
            _ => {
                let mut devices: Vec<&str> = images
                    .iter()
                    .flat_map(|i| i.pci_ids.iter().map(String::as_str))
                    .collect();
                devices.sort_unstable();
                devices.dedup();
                for device in devices {
                    write_device_section(&mut md, text, device, &images);
                }
            }
        }
    }
    let mut families: Vec<&Nic> = nic_images.iter().filter_map(|i| image_nic(i)).collect();
    families.sort_by_key(|nic| nic.pci_id.device);
    families.dedup_by_key(|nic| nic.per_port_settings);
    let has_snponly = manifest
        .targets
        .iter()
        .any(|t| t.name == "snponly" || t.name == "arm64");
    if !families.is_empty() || has_snponly {
        write_stock_firmware(&mut md, &families, has_snponly);
    }
    md
}

/// The Mellanox NIC an image is for, if any.
fn image_nic(image: &ImageRecord) -> Option<&'static Nic> {
    image
        .pci_ids
        .iter()
        .filter_map(|id| id.parse::<PciId>().ok())
        .find_map(nic_by_id)
}

fn before_you_start(text: &BurnText) -> String {
    let mut md = String::from(
        "## Before you start\n\n\
         - Tools: `mstflint` (Debian package `mstflint`) burns and reads the ROM; `mlxconfig`\n  \
         (Mellanox MFT, or mstflint's `mstconfig`) changes the NIC's boot settings.\n\
         - Find the NIC's PCI address: `lspci -nn -d 15b3:` (for example `03:00.0`). A dual-port\n  \
         card has one ROM for both ports: burn it once, on function 0.\n\
         - Save what is on the card now: `mstflint -d 03:00.0 rrom backup-03:00.0.rom`.\n\
         - Put it back if you need to: `mstflint -d 03:00.0 brom backup-03:00.0.rom`, or remove the\n  \
         ROM with `mstflint -d 03:00.0 drom`.\n",
    );
    md.push_str(text.before_you_start);
    md.push('\n');
    md
}

fn write_device_section(md: &mut String, text: &BurnText, device: &str, images: &[&ImageRecord]) {
    let nic = device.parse::<PciId>().ok().and_then(nic_by_id);
    let name = nic.map_or(device, |nic| nic.name);
    let of_kind = |kind: &str| {
        images
            .iter()
            .find(|i| i.kind == kind && i.pci_ids.iter().any(|id| id == device))
            .map(|i| i.file.clone())
    };
    let experimental = images
        .iter()
        .any(|i| i.experimental && i.pci_ids.iter().any(|id| id == device));
    if experimental {
        let _ = writeln!(md, "## {name} ({device}), experimental\n");
        md.push_str(
            "Experimental: built and verified like the others (golan driver, IPv6, script,\n\
             `rom verify` for this PCI ID), but never booted on this card here. Keep the backup\n\
             from `rrom` at hand.\n\n",
        );
    } else {
        let _ = writeln!(md, "## {name} ({device})\n");
    }
    let burn = |md: &mut String, what: &str, file: Option<String>| {
        if let Some(file) = file {
            let _ = writeln!(md, "- {what}: `mstflint -d <pci> brom {file}`");
        }
    };
    burn(
        md,
        "Legacy BIOS and UEFI (recommended)",
        of_kind("combined"),
    );
    burn(
        md,
        "Legacy BIOS only",
        of_kind("legacy-mrom").or_else(|| of_kind("legacy-rom")),
    );
    burn(md, "UEFI only", of_kind("efi-rom"));
    let _ = writeln!(md, "- Check what is on the card: `mstflint -d <pci> qrom`");
    if nic.is_some_and(|nic| nic.per_port_settings) {
        md.push_str(
            "- Let the card offer its ROM to the BIOS/UEFI (port 1; `_P2` for port 2):\n  \
             `mlxconfig -d <pci> set BOOT_OPTION_ROM_EN_P1=1 LEGACY_BOOT_PROTOCOL_P1=PXE`\n  \
             (ConnectX-3 names its boot settings per port; `mlxconfig -d <pci> query` shows the\n  \
             names your firmware uses. Debian's mstflint dropped ConnectX-3 from `mstconfig` in\n  \
             late 2023: use Mellanox MFT's `mlxconfig` for this card.)\n",
        );
    } else if text.has_uefi {
        md.push_str(
            "- Let the card offer its ROM to the BIOS and to UEFI:\n  \
             `mlxconfig -d <pci> set EXP_ROM_PXE_ENABLE=1 EXP_ROM_UEFI_x86_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE`\n",
        );
    } else {
        md.push_str(
            "- Let the card offer its ROM to the BIOS:\n  \
             `mlxconfig -d <pci> set EXP_ROM_PXE_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE`\n",
        );
    }
    md.push_str(
        "- Power-cycle the machine (or `mlxfwreset -d <pci> reset`): settings and ROM take\n  \
         effect at the next cold boot. Then enable network boot for this NIC in the BIOS/UEFI\n  \
         boot order.\n\n",
    );
}

fn write_qemu_section(md: &mut String, flavor: &str, images: &[&ImageRecord]) {
    for image in images {
        if flavor != "ipxe" {
            let heading = if image.target == "virtio" {
                "## QEMU virtio-net image (1af4:1000, not for burning)"
            } else {
                "## QEMU smoke-test image (not for burning)"
            };
            let _ = writeln!(md, "{heading}\n");
            if image.target == "virtio" {
                let _ = writeln!(
                    md,
                    "`{}` is FlexBoot's own virtio-net driver with the embedded script, for\n\
                     QEMU's transitional virtio-net-pci (SeaBIOS):\n\
                     `-device virtio-net-pci,netdev=n0,romfile={},bootindex=1`\n",
                    image.file, image.file
                );
            } else {
                let _ = writeln!(
                    md,
                    "`{}` is a ConnectX-3 `.rom` without flash configuration (no Ctrl-B menu, \
                     no NV settings). It runs in QEMU with no NIC at all and shows the banner \
                     and the embedded script:\n\
                     `qemu-system-x86_64 -nographic -net none -option-rom {}`\n",
                    image.file, image.file
                );
            }
        }
    }
    if flavor != "ipxe" {
        return;
    }
    let _ = writeln!(md, "## QEMU (virtio-net-pci, 1af4:1000)\n");
    let _ = writeln!(md, "Nothing to burn; for tests and demos:\n");
    for image in images {
        let line = match image.kind.as_str() {
            "combined" => format!(
                "- SeaBIOS and OVMF: `-device virtio-net-pci,netdev=n0,romfile={},bootindex=1`",
                image.file
            ),
            "legacy-rom" => format!("- SeaBIOS only: `romfile={}`", image.file),
            "efi-rom" => format!("- OVMF only: `romfile={}`", image.file),
            "lkrn" => format!("- Without a NIC ROM: `-kernel {}`", image.file),
            "efi-app" => format!(
                "- UEFI application (chainload, or copy to an ESP as `EFI/BOOT/BOOTX64.EFI`): `{}`",
                image.file
            ),
            _ => continue,
        };
        let _ = writeln!(md, "{line}");
    }
    md.push('\n');
}

fn write_uefi_app_section(md: &mut String, target: &str, images: &[&ImageRecord]) {
    let (arch, dhcp_arch, boot_name) = if target == "arm64" {
        ("ARM64", "11 (ARM64 UEFI)", "BOOTAA64.EFI")
    } else {
        ("x86-64", "7 (x86-64 UEFI)", "BOOTX64.EFI")
    };
    let _ = writeln!(
        md,
        "## UEFI network boot files, {arch} (nothing to flash)\n"
    );
    md.push_str(
        "Give these to the machine's UEFI firmware as its boot file (DHCPv6 bootfile-url, for\n\
         UEFI PXE over TFTP or UEFI HTTP Boot); they run with the embedded script.\n\n",
    );
    for image in images {
        let what = if image.file.ends_with("snponly.efi") {
            "uses the NIC's own UEFI driver (SNP): any NIC the firmware can drive, no iPXE NIC driver"
        } else {
            "carries iPXE's own drivers for this architecture (virtio-net for QEMU's `virt` machine among them)"
        };
        let _ = writeln!(md, "- `{}`: {what}.", image.file);
    }
    let _ = writeln!(
        md,
        "- Serve it as the boot file to clients of DHCPv6 client architecture type {dhcp_arch}\n  \
         (RFC 5970 option 61); on a disk it goes to the ESP as `EFI/BOOT/{boot_name}`.\n"
    );
}

/// The stock-firmware path: the NIC keeps Mellanox's signed firmware and ROM, and either
/// its FlexBoot boots over IPv6 or the platform's UEFI loads `snponly.efi` through the
/// NIC's UEFI driver. One section per device family, with the `mlxconfig` names of
/// Debian mstflint's parameter database (`mlxconfig_host.db`).
fn write_stock_firmware(md: &mut String, families: &[&Nic], has_snponly: bool) {
    md.push_str(
        "## Stock firmware: IPv6 network boot without flashing\n\n\
         Cards whose signed firmware does not take a new ROM can still boot over IPv6: their own\n\
         FlexBoot (legacy BIOS) boots over IPv6 once told to, and under UEFI the platform's\n\
         network stack downloads `snponly.efi` (targets `snponly`, `arm64`) through the card's\n\
         own UEFI driver. A value saved in the card's flash always wins over any default: read\n\
         it back after every change.\n\n",
    );
    let families: Vec<&Nic> = if families.is_empty() && has_snponly {
        vec![crate::firmware::targets::mellanox(0x1013)]
    } else {
        families.to_vec()
    };
    for nic in families {
        if nic.per_port_settings {
            md.push_str(
                "### ConnectX-3 / ConnectX-3 Pro\n\n\
                 - Legacy BIOS, stock FlexBoot over IPv6 (per port, `_P2` for port 2):\n  \
                 `mlxconfig -d <pci> set BOOT_OPTION_ROM_EN_P1=1 LEGACY_BOOT_PROTOCOL_P1=PXE IP_VER_P1=IPv6`\n\
                 - Read it back: `mlxconfig -d <pci> query | grep -E 'IP_VER|BOOT_OPTION_ROM|LEGACY_BOOT'`\n\
                 - ConnectX-3 has no UEFI driver in its stock ROM on most cards: on UEFI machines use\n  \
                 the platform's own network stack only with a UEFI driver from the machine's vendor.\n\
                 - Use Mellanox MFT's `mlxconfig` (Debian's mstflint dropped the ConnectX-3 names).\n\n",
            );
        } else {
            md.push_str(
                "### ConnectX-4 and later (4 Lx, 5, 5 Ex, 6, 6 Dx, 6 Lx, 7)\n\n\
                 - Legacy BIOS, stock FlexBoot over IPv6:\n  \
                 `mlxconfig -d <pci> set EXP_ROM_PXE_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE IP_VER=IPv6`\n  \
                 (`IPv6_IPv4` tries IPv6 first, then IPv4; `set IP_VER=IPv6` alone when the ROM is ours)\n\
                 - UEFI (x86-64 and ARM64 hosts): let the card's UEFI driver load, then enable IPv6 PXE\n  \
                 or HTTP Boot in the machine's own setup (that is where UEFI chooses IPv4 or IPv6):\n  \
                 `mlxconfig -d <pci> set EXP_ROM_UEFI_x86_ENABLE=1 EXP_ROM_UEFI_ARM_ENABLE=1 UEFI_HII_EN=1`\n  \
                 and serve `snponly.efi` as the UEFI boot file.\n\
                 - Read them back: `mlxconfig -d <pci> query EXP_ROM_PXE_ENABLE EXP_ROM_UEFI_x86_ENABLE \
                 EXP_ROM_UEFI_ARM_ENABLE LEGACY_BOOT_PROTOCOL IP_VER` (Debian: `mstconfig` takes the\n  \
                 same arguments).\n\
                 - A value saved in flash wins over the firmware's default and over ours; `query` shows\n  \
                 what is saved (the default is in the `Default` column with `mlxconfig -e query`).\n\n",
            );
        }
    }
    md.push_str("Settings take effect at the next cold boot (or `mlxfwreset -d <pci> reset`).\n\n");
}

/// Whether `dir` is an output directory that build-rom wrote (it may be replaced).
pub fn is_ours(dir: &Path) -> bool {
    std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|value| value["tool"] == "sixboot build-rom")
}

/// Writes the package to `out`: each `(relative path, source file)` copied and checked
/// against the manifest's hash, then `manifest.json`, `SHA256SUMS` and `BURN.md`. Builds
/// everything in `out.partial` and swaps it in at the end. Refuses to replace a
/// non-empty directory that build-rom did not write.
pub fn publish(
    out: &Path,
    manifest: &Manifest,
    burn: &BurnText,
    files: &[(String, PathBuf)],
) -> Result<()> {
    if out.exists() && !is_ours(out) && !is_empty_dir(out) {
        bail!(
            "{} exists and was not written by build-rom (no manifest.json of ours); \
             choose another --out or remove it",
            out.display()
        );
    }
    let staging = sibling(out, "partial");
    let old = sibling(out, "old");
    for dir in [&staging, &old] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
    }
    let result = (|| -> Result<()> {
        for (relative, from) in files {
            let record = manifest
                .images
                .iter()
                .find(|image| &image.file == relative)
                .with_context(|| format!("{relative} is not in the manifest"))?;
            let bytes =
                std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
            if sha256_hex(&bytes) != record.sha256 {
                bail!(
                    "{} does not match its manifest hash; rerun with --rebuild",
                    from.display()
                );
            }
            let to = staging.join(relative);
            std::fs::create_dir_all(to.parent().unwrap_or(&staging))?;
            std::fs::write(&to, &bytes)
                .with_context(|| format!("cannot write {}", to.display()))?;
        }
        if files.len() != manifest.images.len() {
            bail!(
                "the manifest lists {} images but {} files were given",
                manifest.images.len(),
                files.len()
            );
        }
        std::fs::create_dir_all(&staging)?;
        let mut json = serde_json::to_string_pretty(manifest)?;
        json.push('\n');
        std::fs::write(staging.join("manifest.json"), json)?;
        std::fs::write(staging.join("SHA256SUMS"), sha256sums(&manifest.images))?;
        std::fs::write(staging.join("BURN.md"), burn_md(manifest, burn))?;
        Ok(())
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(err);
    }
    if out.exists() {
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
    }
    std::fs::rename(&staging, out).with_context(|| format!("cannot create {}", out.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dist".to_string());
    dir.with_file_name(format!(".{name}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::flavor::{FLASH_SETTING_WINS, FLEXBOOT, IPXE};

    fn image(target: &str, file: &str, kind: &str, ids: &[&str], content: &[u8]) -> ImageRecord {
        ImageRecord {
            target: target.into(),
            file: file.into(),
            kind: kind.into(),
            pci_ids: ids.iter().map(|s| s.to_string()).collect(),
            size: content.len() as u64,
            sha256: sha256_hex(content),
            checks: vec!["ipv6".into()],
            experimental: false,
        }
    }

    fn manifest(images: Vec<ImageRecord>) -> Manifest {
        let mut targets: Vec<String> = images.iter().map(|i| i.target.clone()).collect();
        targets.dedup();
        Manifest {
            tool: "sixboot build-rom".into(),
            flavor: "ipxe".into(),
            source: SourceRecord {
                name: "ipxe".into(),
                url: "https://github.com/ipxe/ipxe.git".into(),
                commit: "0ab2277c40f1de56c736b9e7db7ee23d52509ec5".into(),
                date: "2026-08-21T12:07:23+01:00".into(),
            },
            patches: vec![PatchRecord {
                file: "0001-duid-ll.patch".into(),
                sha256: "00".into(),
                applied: true,
            }],
            config: ConfigRecord {
                sha256: "11".into(),
                files: vec![],
            },
            script: FileRecord {
                path: "ipxe-config/embed.ipxe".into(),
                size: 1,
                sha256: "22".into(),
            },
            trust: None,
            dual_stack: false,
            rom_version: "2.0.0".into(),
            targets: targets
                .into_iter()
                .map(|name| TargetRecord {
                    name,
                    input_key: "33".into(),
                    experimental: false,
                })
                .collect(),
            images,
            burn_notes: vec![],
        }
    }

    #[test]
    fn sha256sums_is_in_sha256sum_check_format() {
        let images = vec![image("qemu", "qemu/ipxe.lkrn", "lkrn", &[], b"abc")];
        assert_eq!(
            sha256sums(&images),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  qemu/ipxe.lkrn\n"
        );
    }

    #[test]
    fn burn_md_gives_the_exact_commands_for_every_device() {
        let m = manifest(vec![
            image(
                "cx4",
                "cx4/15b31013.combined.rom",
                "combined",
                &["15b3:1013"],
                b"a",
            ),
            image(
                "cx4",
                "cx4/15b31013.mrom",
                "legacy-mrom",
                &["15b3:1013"],
                b"b",
            ),
            image(
                "cx4",
                "cx4/15b31013.efirom",
                "efi-rom",
                &["15b3:1013"],
                b"c",
            ),
            image(
                "cx3",
                "cx3/15b31003.mrom",
                "legacy-mrom",
                &["15b3:1003"],
                b"d",
            ),
        ]);
        let md = burn_md(&m, &IPXE.burn);
        assert!(
            md.contains("`mstflint -d <pci> brom cx4/15b31013.combined.rom`"),
            "{md}"
        );
        assert!(md.contains("`mstflint -d <pci> brom cx4/15b31013.mrom`"));
        assert!(md.contains("`mstflint -d <pci> qrom`"));
        assert!(
            md.contains("EXP_ROM_PXE_ENABLE=1 EXP_ROM_UEFI_x86_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE")
        );
        assert!(md.contains("LEGACY_BOOT_PROTOCOL=PXE IP_VER=IPv6"));
        assert!(md.contains("## ConnectX-3 (15b3:1003)"));
        assert!(md.contains("LEGACY_BOOT_PROTOCOL_P1=PXE IP_VER_P1=IPv6"));
        let mut with_note = m.clone();
        with_note
            .burn_notes
            .push("A value saved in flash wins.".into());
        assert!(burn_md(&with_note, &IPXE.burn)
            .contains("\n\nA value saved in flash wins.\n\n## Before you start"));
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let m = manifest(vec![image(
            "qemu",
            "qemu/1af41000.rom",
            "legacy-rom",
            &["1af4:1000"],
            b"x",
        )]);
        let json = serde_json::to_string(&m).unwrap();
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(json.contains("\"commit\":\"0ab2277c40f1de56c736b9e7db7ee23d52509ec5\""));
    }

    #[test]
    fn publish_replaces_its_own_output_and_refuses_foreign_directories() {
        let base = std::env::temp_dir().join(format!("sixboot-publish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let source = base.join("lkrn");
        std::fs::write(&source, b"abc").unwrap();
        let m = manifest(vec![image("qemu", "qemu/ipxe.lkrn", "lkrn", &[], b"abc")]);
        let out = base.join("dist");
        let files = vec![("qemu/ipxe.lkrn".to_string(), source.clone())];
        publish(&out, &m, &IPXE.burn, &files).unwrap();
        assert_eq!(std::fs::read(out.join("qemu/ipxe.lkrn")).unwrap(), b"abc");
        assert!(std::fs::read_to_string(out.join("SHA256SUMS"))
            .unwrap()
            .contains("qemu/ipxe.lkrn"));
        assert!(out.join("BURN.md").exists());
        // Again over our own output: replaced.
        publish(&out, &m, &IPXE.burn, &files).unwrap();
        // A file that does not match the manifest is refused and the old package stays.
        std::fs::write(&source, b"abd").unwrap();
        let err = publish(&out, &m, &IPXE.burn, &files).unwrap_err();
        assert!(
            err.to_string().contains("does not match its manifest hash"),
            "{err}"
        );
        assert_eq!(std::fs::read(out.join("qemu/ipxe.lkrn")).unwrap(), b"abc");
        // A directory someone else owns is refused.
        let foreign = base.join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
        std::fs::write(&source, b"abc").unwrap();
        let err = publish(&foreign, &m, &IPXE.burn, &files).unwrap_err();
        assert!(
            err.to_string().contains("was not written by build-rom"),
            "{err}"
        );
        assert!(foreign.join("notes.txt").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn burn_md_marks_experimental_cards_and_gives_the_stock_firmware_path() {
        let mut cx5 = image(
            "cx5",
            "cx5/15b31017.combined.rom",
            "combined",
            &["15b3:1017"],
            b"a",
        );
        cx5.experimental = true;
        let md = burn_md(&manifest(vec![cx5]), &IPXE.burn);
        assert!(
            md.contains("## ConnectX-5 (15b3:1017), experimental"),
            "{md}"
        );
        assert!(md.contains("never booted on this card here"), "{md}");
        assert!(md.contains("## Stock firmware: IPv6 network boot without flashing"));
        assert!(md.contains("### ConnectX-4 and later"));
        assert!(md.contains("EXP_ROM_PXE_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE IP_VER=IPv6"));
        assert!(md.contains("EXP_ROM_UEFI_x86_ENABLE=1 EXP_ROM_UEFI_ARM_ENABLE=1"));
        assert!(md.contains("mlxconfig -d <pci> query EXP_ROM_PXE_ENABLE"));
        assert!(md.contains("A value saved in flash wins"));
        assert!(!md.contains("### ConnectX-3"));
    }

    #[test]
    fn burn_md_says_where_the_uefi_applications_go() {
        let md = burn_md(
            &manifest(vec![
                image("arm64", "arm64/snponly.efi", "efi-app", &[], b"a"),
                image("arm64", "arm64/ipxe.efi", "efi-app", &[], b"b"),
            ]),
            &IPXE.burn,
        );
        assert!(
            md.contains("## UEFI network boot files, ARM64 (nothing to flash)"),
            "{md}"
        );
        assert!(md.contains("`arm64/snponly.efi`: uses the NIC's own UEFI driver (SNP)"));
        assert!(md.contains("EFI/BOOT/BOOTAA64.EFI"));
        assert!(!md.contains("## Before you start"));
        assert!(md.contains("## Stock firmware"));
    }

    fn flexboot_manifest(images: Vec<ImageRecord>) -> Manifest {
        let mut m = manifest(images);
        m.flavor = "flexboot".into();
        m.source.name = "flexboot 3.4.812".into();
        m.source.commit = "a188cf47f524dce18a8f5d5413e3fe97993e6737".into();
        m.burn_notes = vec![FLASH_SETTING_WINS.to_string()];
        m
    }

    #[test]
    fn flexboot_burn_md_says_a_saved_value_wins_and_how_to_set_or_clear_it() {
        let md = burn_md(
            &flexboot_manifest(vec![
                image(
                    "cx3",
                    "cx3/flexboot-ConnectX-3-15b31003.mrom",
                    "legacy-mrom",
                    &["15b3:1003"],
                    b"a",
                ),
                image(
                    "cx4",
                    "cx4/flexboot-ConnectX-4-15b31013.mrom",
                    "legacy-mrom",
                    &["15b3:1013"],
                    b"b",
                ),
            ]),
            &FLEXBOOT.burn,
        );
        for needle in [
            "# Burning these FlexBoot ROMs",
            "`cargo xtask build-rom --flavor flexboot`",
            "A boot IP version saved in the NIC's flash still wins",
            "mlxconfig -d <pci> set IP_VER=IPv6",
            "mlxconfig -d <pci> set IP_VER_P1=IPv6 IP_VER_P2=IPv6",
            "mlxconfig -d <pci> reset",
            "## ConnectX-3 (15b3:1003)",
            "mstflint -d <pci> brom cx3/flexboot-ConnectX-3-15b31003.mrom",
            "BOOT_OPTION_ROM_EN_P1=1 LEGACY_BOOT_PROTOCOL_P1=PXE",
            "## ConnectX-4 (15b3:1013)",
            "`mlxconfig -d <pci> set EXP_ROM_PXE_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE`",
            "FlexBoot 3.4.812 has no UEFI build",
            "a188cf47f524dce18a8f5d5413e3fe97993e6737",
            "### ConnectX-3 / ConnectX-3 Pro",
        ] {
            assert!(md.contains(needle), "BURN.md lacks {needle:?}:\n{md}");
        }
        assert!(!md.contains("QEMU smoke-test image"));
    }

    #[test]
    fn flexboot_burn_md_marks_the_qemu_images_as_not_for_burning() {
        let md = burn_md(
            &flexboot_manifest(vec![
                image(
                    "qemu",
                    "qemu/flexboot-ConnectX-3-15b31003.rom",
                    "legacy-rom",
                    &["15b3:1003"],
                    b"a",
                ),
                image(
                    "virtio",
                    "virtio/flexboot-virtio-net-1af41000.rom",
                    "legacy-rom",
                    &["1af4:1000"],
                    b"b",
                ),
            ]),
            &FLEXBOOT.burn,
        );
        assert!(
            md.contains("QEMU smoke-test image (not for burning)"),
            "{md}"
        );
        assert!(md.contains("-option-rom qemu/flexboot-ConnectX-3-15b31003.rom"));
        assert!(md.contains("romfile=virtio/flexboot-virtio-net-1af41000.rom"));
        assert!(md.contains("## QEMU virtio-net image (1af4:1000, not for burning)"));
    }
}

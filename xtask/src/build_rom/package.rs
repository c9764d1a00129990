//! The `dist/` directory: images, `manifest.json`, `SHA256SUMS` and `BURN.md`.
//!
//! Shared by every flavour (upstream iPXE here, FlexBoot in `xtask/src/flexboot.rs`): a
//! flavour fills in a [`Manifest`] and the list of files, and [`publish`] writes them to a
//! staging directory next to the output and swaps it in, so the output directory is
//! always a complete package or the previous one, never a mix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::inputs::sha256_hex;

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

/// `BURN.md`: how to put each image on a NIC, with the exact commands.
pub fn burn_md(manifest: &Manifest) -> String {
    if manifest.flavor == "flexboot" {
        // FlexBoot's default is only a default: its BURN.md explains the flash setting.
        return crate::flexboot::package::burn_md(manifest);
    }
    let mut md = String::new();
    let patches = manifest.applied_patches();
    let _ = writeln!(md, "# Burning these ROMs\n");
    let _ = writeln!(
        md,
        "Built by `cargo xtask build-rom` from {} {} ({}), patches: {}; embedded script \
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
    let nic_targets: Vec<&TargetRecord> = manifest
        .targets
        .iter()
        .filter(|t| t.name != "qemu")
        .collect();
    if !nic_targets.is_empty() {
        md.push_str(BURN_PREAMBLE);
    }
    for target in &manifest.targets {
        let images: Vec<&ImageRecord> = manifest
            .images
            .iter()
            .filter(|i| i.target == target.name)
            .collect();
        if target.name == "qemu" {
            write_qemu_section(&mut md, &images);
            continue;
        }
        let mut devices: Vec<&str> = images
            .iter()
            .flat_map(|i| i.pci_ids.iter().map(String::as_str))
            .collect();
        devices.sort_unstable();
        devices.dedup();
        for device in devices {
            write_device_section(&mut md, &target.name, device, &images);
        }
    }
    md
}

const BURN_PREAMBLE: &str = "\
## Before you start

- Tools: `mstflint` (Debian package `mstflint`) burns and reads the ROM; `mlxconfig`
  (Mellanox MFT, or mstflint's `mstconfig`) changes the NIC's boot settings.
- Find the NIC's PCI address: `lspci -nn -d 15b3:` (for example `03:00.0`). A dual-port
  card has one ROM for both ports: burn it once, on function 0.
- Save what is on the card now: `mstflint -d 03:00.0 rrom backup-03:00.0.rom`.
- Put it back if you need to: `mstflint -d 03:00.0 brom backup-03:00.0.rom`, or remove the
  ROM with `mstflint -d 03:00.0 drom`.
- `mstflint qrom` reads Mellanox's `mlxsign:` version records. The combined images carry
  one per image (the version in `manifest.json`, `rom_version`); the plain `.mrom` and
  `.efirom` have none, so flint reports \"Signature not found\" for them: expected.

";

fn write_device_section(md: &mut String, target: &str, device: &str, images: &[&ImageRecord]) {
    let family = match device {
        "15b3:1003" => "ConnectX-3",
        "15b3:1007" => "ConnectX-3 Pro",
        "15b3:1013" => "ConnectX-4",
        "15b3:1015" => "ConnectX-4 Lx",
        _ => target,
    };
    let of_kind = |kind: &str| {
        images
            .iter()
            .find(|i| i.kind == kind && i.pci_ids.iter().any(|id| id == device))
            .map(|i| i.file.clone())
    };
    let _ = writeln!(md, "## {family} ({device})\n");
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
    if target == "cx3" {
        md.push_str(
            "- Let the card offer its ROM to the BIOS/UEFI (port 1; `_P2` for port 2):\n  \
             `mlxconfig -d <pci> set BOOT_OPTION_ROM_EN_P1=1 LEGACY_BOOT_PROTOCOL_P1=PXE`\n  \
             (ConnectX-3 names its boot settings per port; `mlxconfig -d <pci> query` shows the\n  \
             names your firmware uses. Debian's mstflint dropped ConnectX-3 from `mstconfig` in\n  \
             late 2023: use Mellanox MFT's `mlxconfig` for this card.)\n",
        );
    } else {
        md.push_str(
            "- Let the card offer its ROM to the BIOS and to UEFI:\n  \
             `mlxconfig -d <pci> set EXP_ROM_PXE_ENABLE=1 EXP_ROM_UEFI_x86_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE`\n",
        );
    }
    md.push_str(
        "- Power-cycle the machine (or `mlxfwreset -d <pci> reset`): settings and ROM take\n  \
         effect at the next cold boot. Then enable network boot for this NIC in the BIOS/UEFI\n  \
         boot order.\n",
    );
    let ip_ver = if target == "cx3" {
        "IP_VER_P1"
    } else {
        "IP_VER"
    };
    let _ = writeln!(
        md,
        "- Keeping Mellanox's stock FlexBoot instead of these images? Its IPv6 is off by\n  \
         default: `mlxconfig -d <pci> set {ip_ver}=IPv6` makes it boot over IPv6.\n"
    );
}

fn write_qemu_section(md: &mut String, images: &[&ImageRecord]) {
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
pub fn publish(out: &Path, manifest: &Manifest, files: &[(String, PathBuf)]) -> Result<()> {
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
        std::fs::write(staging.join("BURN.md"), burn_md(manifest))?;
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

    fn image(target: &str, file: &str, kind: &str, ids: &[&str], content: &[u8]) -> ImageRecord {
        ImageRecord {
            target: target.into(),
            file: file.into(),
            kind: kind.into(),
            pci_ids: ids.iter().map(|s| s.to_string()).collect(),
            size: content.len() as u64,
            sha256: sha256_hex(content),
            checks: vec!["ipv6".into()],
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
        let md = burn_md(&m);
        assert!(
            md.contains("`mstflint -d <pci> brom cx4/15b31013.combined.rom`"),
            "{md}"
        );
        assert!(md.contains("`mstflint -d <pci> brom cx4/15b31013.mrom`"));
        assert!(md.contains("`mstflint -d <pci> qrom`"));
        assert!(
            md.contains("EXP_ROM_PXE_ENABLE=1 EXP_ROM_UEFI_x86_ENABLE=1 LEGACY_BOOT_PROTOCOL=PXE")
        );
        assert!(md.contains("set IP_VER=IPv6"));
        assert!(md.contains("## ConnectX-3 (15b3:1003)"));
        assert!(md.contains("set IP_VER_P1=IPv6"));
        let mut with_note = m.clone();
        with_note
            .burn_notes
            .push("A value saved in flash wins.".into());
        assert!(
            burn_md(&with_note).contains("\n\nA value saved in flash wins.\n\n## Before you start")
        );
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
        publish(&out, &m, &files).unwrap();
        assert_eq!(std::fs::read(out.join("qemu/ipxe.lkrn")).unwrap(), b"abc");
        assert!(std::fs::read_to_string(out.join("SHA256SUMS"))
            .unwrap()
            .contains("qemu/ipxe.lkrn"));
        assert!(out.join("BURN.md").exists());
        // Again over our own output: replaced.
        publish(&out, &m, &files).unwrap();
        // A file that does not match the manifest is refused and the old package stays.
        std::fs::write(&source, b"abd").unwrap();
        let err = publish(&out, &m, &files).unwrap_err();
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
        let err = publish(&foreign, &m, &files).unwrap_err();
        assert!(
            err.to_string().contains("was not written by build-rom"),
            "{err}"
        );
        assert!(foreign.join("notes.txt").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}

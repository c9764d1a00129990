//! The build's use of `sixboot::rom`: verify every option ROM it made, and pack each NIC's
//! legacy and EFI ROMs into one combined image. Called as a library, not as a process.

use anyhow::{bail, Result};
use sixboot::rom::{self, ImageKind, PackOptions, PciId, Rom};

use super::targets::{Arch, Kind};

/// Verifies an option ROM: the library's findings (checksums, PCIR, last-image bit,
/// sizes, PCI ID, x64 EFI) plus the image layout the kind promises. Returns what was
/// checked, for the manifest; every problem is in the error.
pub fn verify(bytes: &[u8], kind: Kind, expect: Option<PciId>) -> Result<String> {
    let parsed = Rom::parse(bytes)?;
    let mut problems: Vec<String> = parsed
        .verify(expect)
        .iter()
        .map(ToString::to_string)
        .collect();
    let kinds: Vec<ImageKind> = parsed.images.iter().map(|image| image.kind).collect();
    let layout_ok = match kind {
        Kind::LegacyMrom => kinds == [ImageKind::Legacy, ImageKind::MromPayload],
        Kind::LegacyRom => kinds == [ImageKind::Legacy],
        Kind::EfiRom => kinds == [ImageKind::Efi],
        Kind::Combined => {
            kinds == [ImageKind::Legacy, ImageKind::Efi]
                || kinds == [ImageKind::Legacy, ImageKind::MromPayload, ImageKind::Efi]
        }
        Kind::Lkrn | Kind::EfiApp => bail!("{kind:?} is not an option ROM"),
    };
    if !layout_ok {
        problems.push(format!(
            "expected the image layout of a {kind:?}, found {kinds:?}"
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(match expect {
        Some(id) => format!("rom-verify:{id}"),
        None => "rom-verify".to_string(),
    })
}

/// Packs a legacy ROM (`.rom` or `.mrom`) and an EFI ROM into one image for `id`, stamped
/// with `version` in an `mlxsign:` trailer (what `mstflint qrom` shows); the library
/// refuses to return a ROM that does not verify.
pub fn pack_combined(
    legacy: &[u8],
    efi: &[u8],
    id: PciId,
    version: (u16, u16, u16),
) -> Result<Vec<u8>> {
    let options = PackOptions {
        pci_id: Some(id),
        version: Some(version),
    };
    Ok(rom::pack(&[legacy, efi], &options)?)
}

/// Checks an EFI application (`ipxe.efi`, `snponly.efi`) with goblin's PE parser: a PE
/// image for `arch`'s machine (PE/COFF "Machine Types": 0x8664 x64, 0xAA64 ARM64) and the
/// EFI application subsystem (10). Returns what was checked, for the manifest.
pub fn verify_efi_app(bytes: &[u8], arch: Arch) -> Result<String> {
    let pe =
        goblin::pe::PE::parse(bytes).map_err(|err| anyhow::anyhow!("not a PE image: {err}"))?;
    let (machine, name) = match arch {
        Arch::X86_64 => (goblin::pe::header::COFF_MACHINE_X86_64, "x64"),
        Arch::Arm64 => (goblin::pe::header::COFF_MACHINE_ARM64, "arm64"),
        Arch::I386 => bail!("an EFI application is never i386 here"),
    };
    if pe.header.coff_header.machine != machine {
        bail!(
            "PE machine {:#x} is not {machine:#x} ({name})",
            pe.header.coff_header.machine
        );
    }
    let subsystem = pe
        .header
        .optional_header
        .map(|optional| optional.windows_fields.subsystem);
    if subsystem != Some(EFI_APPLICATION) {
        bail!("PE subsystem {subsystem:?} is not 10 (EFI application)");
    }
    Ok(format!("pe:{name}-efi-app"))
}

/// `IMAGE_SUBSYSTEM_EFI_APPLICATION` (PE/COFF, "Windows Subsystem").
const EFI_APPLICATION: u16 = 10;

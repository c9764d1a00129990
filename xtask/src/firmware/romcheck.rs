//! The build's use of `sixboot::rom`: verify every option ROM it made, and pack each NIC's
//! legacy and EFI ROMs into one combined image. Called as a library, not as a process.

use anyhow::{bail, Context, Result};
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

/// Checks an EFI application (`ipxe.efi`, `snponly.efi`): a PE image for `arch`'s machine
/// (PE/COFF "Machine Types": 0x8664 x64, 0xAA64 ARM64) with the EFI application subsystem
/// (10). Read by hand at the PE/COFF offsets: iPXE's `elf2efi` puts the PE header right
/// after the 64-byte DOS header, which goblin 0.9 refuses ("PE pointer (0x40) must be
/// greater than the start offset"). Returns what was checked, for the manifest.
pub fn verify_efi_app(bytes: &[u8], arch: Arch) -> Result<String> {
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.get(..2) != Some(b"MZ") {
        bail!("not a PE image: no MZ header");
    }
    let pe = u32_at(PE_POINTER).context("truncated DOS header")? as usize;
    if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
        bail!("not a PE image: no PE signature at {pe:#x}");
    }
    let (machine, name) = match arch {
        Arch::X86_64 => (MACHINE_X64, "x64"),
        Arch::Arm64 => (MACHINE_ARM64, "arm64"),
        Arch::I386 => bail!("an EFI application is never i386 here"),
    };
    let found = u16_at(pe + 4).context("truncated COFF header")?;
    if found != machine {
        bail!("PE machine {found:#x} is not {machine:#x} ({name})");
    }
    let optional = pe + 4 + COFF_HEADER_LEN;
    let subsystem = u16_at(optional + SUBSYSTEM).context("truncated optional header")?;
    if subsystem != EFI_APPLICATION {
        bail!("PE subsystem {subsystem} is not {EFI_APPLICATION} (EFI application)");
    }
    Ok(format!("pe:{name}-efi-app"))
}

/// Offset of `e_lfanew`, the PE header's offset, in the DOS header (PE/COFF 3.2).
const PE_POINTER: usize = 0x3c;
/// The COFF file header's length after the `PE\0\0` signature (PE/COFF 3.3).
const COFF_HEADER_LEN: usize = 20;
/// `Subsystem` in the optional header, the same for PE32 and PE32+ (PE/COFF 3.4.2).
const SUBSYSTEM: usize = 68;
/// `IMAGE_FILE_MACHINE_AMD64`.
const MACHINE_X64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
const MACHINE_ARM64: u16 = 0xaa64;
/// `IMAGE_SUBSYSTEM_EFI_APPLICATION` (PE/COFF, "Windows Subsystem").
const EFI_APPLICATION: u16 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers of a PE image as iPXE's elf2efi lays them out: PE header at 0x40.
    fn efi_app(machine: u16, subsystem: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x40 + 4 + COFF_HEADER_LEN + 96];
        bytes[..2].copy_from_slice(b"MZ");
        bytes[PE_POINTER..PE_POINTER + 4].copy_from_slice(&0x40u32.to_le_bytes());
        bytes[0x40..0x44].copy_from_slice(b"PE\0\0");
        bytes[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
        let optional = 0x40 + 4 + COFF_HEADER_LEN;
        bytes[optional + SUBSYSTEM..optional + SUBSYSTEM + 2]
            .copy_from_slice(&subsystem.to_le_bytes());
        bytes
    }

    #[test]
    fn an_efi_application_must_have_its_machine_and_subsystem() {
        let arm = efi_app(MACHINE_ARM64, EFI_APPLICATION);
        assert_eq!(
            verify_efi_app(&arm, Arch::Arm64).unwrap(),
            "pe:arm64-efi-app"
        );
        let err = verify_efi_app(&arm, Arch::X86_64).unwrap_err();
        assert!(
            err.to_string().contains("PE machine 0xaa64 is not 0x8664"),
            "{err}"
        );
        let driver = efi_app(MACHINE_X64, 11);
        let err = verify_efi_app(&driver, Arch::X86_64).unwrap_err();
        assert!(err.to_string().contains("subsystem 11 is not 10"), "{err}");
        assert!(verify_efi_app(b"\x55\xaa", Arch::X86_64).is_err());
        assert!(verify_efi_app(&arm[..0x50], Arch::Arm64).is_err());
    }
}

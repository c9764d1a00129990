//! The build's use of `sixboot::rom`: verify every option ROM it made, and pack each NIC's
//! legacy and EFI ROMs into one combined image. Called as a library, not as a process.

use anyhow::{bail, Result};
use sixboot::rom::{self, ImageKind, PackOptions, PciId, Rom};

use super::targets::Kind;

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

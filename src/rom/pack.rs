//! Combining images into one ROM: the inverse of [`Rom::parse`](super::Rom::parse).
//!
//! The rules are iPXE's: `util/catrom.pl` clears the last-image bit on every image but the
//! final one; `util/fixrom.pl` then fixes, per image, the PnP, UNDI and iPXE header checksums
//! and last the x86 image checksum (code type 0 only: EFI images and `.mrom` payloads have
//! none). On top of that, [`pack`] stamps PCI IDs and appends `mlxsign:` version records.

use super::field::{self, mlxsign};
use super::finding::Problem;
use super::image::ImageKind;
use super::{mlx, sum8, PciId, Rom, RomError};

/// What [`pack`] stamps into the images it combines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackOptions {
    /// Written as vendor and device into every image's PCIR (the device list is kept).
    pub pci_id: Option<PciId>,
    /// Major, minor, sub-minor: appended as one `mlxsign:` record per product (PXE for the
    /// legacy images, UEFI for the EFI image) so `mstflint -i FILE qrom` shows it. Major and
    /// minor must fit in a byte, as in mstflint's record.
    pub version: Option<(u16, u16, u16)>,
}

/// Problems in an input that packing repairs, so they do not stop it.
fn pack_repairs(problem: &Problem) -> bool {
    matches!(
        problem,
        Problem::BadChecksum { .. }
            | Problem::HeaderBadChecksum { .. }
            | Problem::LastImageBitMissing
    )
}

/// Combines the images in `inputs` (each a ROM file with one or more images, in order) into
/// one ROM, stamps it as `opts` says, and returns it only if it verifies (against
/// `opts.pci_id` when given).
pub fn pack(inputs: &[&[u8]], opts: &PackOptions) -> Result<Vec<u8>, RomError> {
    if inputs.is_empty() {
        return Err(RomError::NoImages);
    }
    if let Some((major, minor, sub)) = opts.version {
        if major > 0xff || minor > 0xff {
            return Err(RomError::VersionOutOfRange { major, minor, sub });
        }
    }

    // Take every image out of every input, refusing anything packing cannot repair.
    let mut out = Vec::with_capacity(inputs.iter().map(|i| i.len()).sum());
    let mut placed = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let rom = Rom::parse(input).map_err(|source| RomError::InputNotRom {
            index,
            source: Box::new(source),
        })?;
        if let Some(finding) = rom.findings.iter().find(|f| !pack_repairs(&f.problem)) {
            return Err(RomError::InputBroken {
                index,
                finding: finding.clone(),
            });
        }
        if let Some(range) = &rom.trailing {
            if !input[range.clone()].iter().all(|b| *b == 0 || *b == 0xff) {
                return Err(RomError::InputTrailingBytes {
                    index,
                    offset: range.start,
                    len: range.len(),
                });
            }
        }
        for image in rom.images {
            let start = out.len();
            out.extend_from_slice(&input[image.range.clone()]);
            placed.push((start, image));
        }
    }

    // Fix each image in place, in fixrom.pl's order.
    let n_images = placed.len();
    for (position, (start, image)) in placed.iter().enumerate() {
        let bytes = &mut out[*start..*start + image.range.len()];
        // The parse guarantees the PCIR lies inside the image (else it is a finding that
        // stopped the pack above).
        if let Some(pcir) = image
            .pcir
            .as_ref()
            .filter(|p| p.offset + field::pcir::MIN_LEN <= bytes.len())
        {
            let at = pcir.offset;
            let indicator = &mut bytes[at + field::pcir::INDICATOR];
            if position + 1 == n_images {
                *indicator |= field::pcir::LAST_IMAGE;
            } else {
                *indicator &= !field::pcir::LAST_IMAGE;
            }
            if let Some(id) = opts.pci_id {
                bytes[at + field::pcir::VENDOR.start..at + field::pcir::VENDOR.end]
                    .copy_from_slice(&id.vendor.to_le_bytes());
                bytes[at + field::pcir::DEVICE.start..at + field::pcir::DEVICE.end]
                    .copy_from_slice(&id.device.to_le_bytes());
            }
        }
        // Sub-headers first, as fixrom.pl does, since they lie inside the image checksum.
        let headers = [
            image
                .pnp
                .as_ref()
                .map(|h| (h.offset, h.length, field::pnp::CHECKSUM)),
            image
                .undi
                .as_ref()
                .map(|h| (h.offset, h.length, field::undi::CHECKSUM)),
            image
                .ipxe
                .as_ref()
                .map(|h| (h.offset, h.length, field::ipxe::CHECKSUM)),
        ];
        for (offset, length, checksum) in headers.into_iter().flatten() {
            fix(bytes, offset..offset + length, offset + checksum);
        }
        if let Some(checksum) = &image.checksum {
            fix(bytes, 0..checksum.len, field::rom_header::CHECKSUM);
        }
    }

    if let Some(version) = opts.version {
        for (product, wanted) in [
            (mlxsign::PRODUCT_PXE, ImageKind::Legacy),
            (mlxsign::PRODUCT_UEFI, ImageKind::Efi),
        ] {
            let Some((_, image)) = placed.iter().find(|(_, image)| image.kind == wanted) else {
                continue;
            };
            let device = opts
                .pci_id
                .or_else(|| image.pci_id())
                .map_or(0, |id| id.device);
            out.extend_from_slice(&mlx::record(product, version, device));
        }
    }

    let rom = Rom::parse(&out).map_err(|source| RomError::InputNotRom {
        index: 0,
        source: Box::new(source),
    })?;
    let findings = rom.verify(opts.pci_id);
    if findings.is_empty() {
        Ok(out)
    } else {
        Err(RomError::PackedRomInvalid(findings))
    }
}

/// Sets the byte at `checksum_at` so that `range` sums to zero (fixrom.pl's `fix_checksum`:
/// new = old − sum). Ranges come from a parse of these same bytes, so they are in bounds.
fn fix(bytes: &mut [u8], range: core::ops::Range<usize>, checksum_at: usize) {
    if !range.contains(&checksum_at) {
        return;
    }
    if let Some(region) = bytes.get(range) {
        let sum = sum8(region);
        bytes[checksum_at] = bytes[checksum_at].wrapping_sub(sum);
    }
}

//! PCI expansion-ROM files: read, verify, combine and stamp them.
//!
//! This module does no I/O: every function takes and returns bytes, so the CLI, the build
//! (`cargo xtask build-rom`) and the tests share one implementation. [`Rom::parse`] walks the
//! images the way a PCI BIOS or UEFI firmware does (0x55AA, PCIR, image length, last-image
//! bit) and records every problem as a [`Finding`] instead of stopping at the first; it fails
//! only when nothing ROM-like is there. [`pack`] is the inverse: it concatenates images, sets
//! the last-image bit on the final one only, fixes every checksum as iPXE's `util/catrom.pl`
//! and `util/fixrom.pl` do, stamps PCI IDs and a Mellanox `mlxsign:` version trailer, and
//! re-parses its output before returning it.

pub mod field;
mod finding;
mod image;
mod mlx;
mod pack;

use std::fmt;
use std::str::FromStr;

pub use finding::{Finding, ImageRef, Problem};
pub use image::{
    machine_name, subsystem_name, Checksum, EfiHeader, Image, ImageKind, IpxeHeader, Pcir, PeInfo,
    PnpHeader, UndiHeader, MACHINE_X64,
};
pub use mlx::{cpu_name, protocol_name, MlxVersion};
pub use pack::{pack, PackOptions};

/// A PCI vendor and device ID pair, written `VVVV:DDDD` in hex as `lspci -n` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PciId {
    pub vendor: u16,
    pub device: u16,
}

impl PciId {
    pub const fn new(vendor: u16, device: u16) -> Self {
        PciId { vendor, device }
    }
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.device)
    }
}

impl FromStr for PciId {
    type Err = RomError;

    /// Accepts `15b3:1013` (the `lspci -n` form); each half is 1-4 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RomError::BadPciId(s.to_string());
        let (vendor, device) = s.split_once(':').ok_or_else(bad)?;
        Ok(PciId {
            vendor: parse_hex_u16(vendor).ok_or_else(bad)?,
            device: parse_hex_u16(device).ok_or_else(bad)?,
        })
    }
}

/// Parses 1-4 hex digits with an optional `0x`, as PCI IDs are written.
pub fn parse_hex_u16(s: &str) -> Option<u16> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// Parses `X.Y.Z` for [`PackOptions::version`]; [`pack`] checks that it fits the record.
pub fn parse_version(s: &str) -> Result<(u16, u16, u16), RomError> {
    let bad = || RomError::BadVersion(s.to_string());
    let mut parts = s.split('.').map(|p| {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse::<u16>().ok()
        }
    });
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Ok((a, b, c)),
        _ => Err(bad()),
    }
}

/// Errors that stop an operation. Problems inside a ROM that can still be read are
/// [`Finding`]s, not errors.
#[derive(Debug, thiserror::Error)]
pub enum RomError {
    #[error("not an option ROM: it is {len} bytes long and starts with {found}, not 0x55 0xAA")]
    NotARom { len: usize, found: String },
    #[error("{0:?} is not a PCI ID; write it as VVVV:DDDD in hex, for example 15b3:1013")]
    BadPciId(String),
    #[error("nothing to pack: give at least one image")]
    NoImages,
    #[error("input {index} is not an option ROM: {source}")]
    InputNotRom {
        index: usize,
        #[source]
        source: Box<RomError>,
    },
    #[error("input {index} cannot be packed: {finding}")]
    InputBroken { index: usize, finding: Finding },
    #[error("input {index} has {len} bytes after its last image at {offset:#x} that are not padding (an mlxsign: trailer?); take the images out with `sixboot rom split` and pack those")]
    InputTrailingBytes {
        index: usize,
        offset: usize,
        len: usize,
    },
    #[error("version {major}.{minor}.{sub} does not fit the mlxsign: record (major and minor at most 255, sub-minor at most 65535)")]
    VersionOutOfRange { major: u16, minor: u16, sub: u16 },
    #[error("{0:?} is not a version; write it as X.Y.Z, for example 1.0.0")]
    BadVersion(String),
    #[error("the packed ROM does not verify:\n  {}", .0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n  "))]
    PackedRomInvalid(Vec<Finding>),
}

/// A parsed ROM file: its images in file order, what follows them, any Mellanox version
/// records, and every problem found on the way.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rom {
    /// The file's length in bytes.
    pub len: usize,
    pub images: Vec<Image>,
    /// Bytes after the last image (file offsets), if any.
    pub trailing: Option<core::ops::Range<usize>>,
    /// `mlxsign:` records anywhere in the file, as mstflint's `qrom` finds them.
    pub mlx_versions: Vec<MlxVersion>,
    /// Structural problems found while parsing; [`Rom::verify`] adds expectations.
    pub findings: Vec<Finding>,
}

/// A file with more images than this is not a real ROM; parsing stops there.
const MAX_IMAGES: usize = 64;

impl Rom {
    /// Parses every image in `bytes`. Fails only when the file does not start with an
    /// option-ROM signature; everything else wrong is recorded in [`Rom::findings`].
    pub fn parse(bytes: &[u8]) -> Result<Rom, RomError> {
        if bytes.get(field::rom_header::SIGNATURE) != Some(&field::rom_header::SIGNATURE_VALUE[..])
        {
            return Err(RomError::NotARom {
                len: bytes.len(),
                found: describe_start(bytes),
            });
        }
        let mut images = Vec::new();
        let mut findings = Vec::new();
        let mut offset = 0usize;
        let mut end = 0usize;
        loop {
            if images.len() == MAX_IMAGES {
                findings.push(Finding::in_file(Problem::TooManyImages { max: MAX_IMAGES }));
                break;
            }
            let rest = &bytes[offset..];
            if rest.get(field::rom_header::SIGNATURE)
                != Some(&field::rom_header::SIGNATURE_VALUE[..])
            {
                findings.push(Finding::in_file(Problem::MissingNextImage {
                    offset,
                    found: describe_start(rest),
                }));
                break;
            }
            let index = images.len();
            let (image, image_findings) = image::parse(index, offset, rest);
            findings.extend(image_findings);
            end = image.range.end;
            let next = image.next_offset();
            let last = image.is_last();
            images.push(image);
            match next {
                // The image's extent is unknown or runs past the file: nothing after it can
                // be located, and the finding is already recorded.
                None => break,
                Some(_) if last => break,
                Some(next) if next >= bytes.len() => {
                    findings.push(Finding::in_image(
                        index,
                        offset,
                        Problem::LastImageBitMissing,
                    ));
                    break;
                }
                Some(next) => offset = next,
            }
        }
        let trailing = (end < bytes.len()).then_some(end..bytes.len());
        if let Some(range) = &trailing {
            if bytes.get(range.start..range.start + 2) == Some(&field::rom_header::SIGNATURE_VALUE)
                && images.last().is_some_and(Image::is_last)
            {
                findings.push(Finding::in_file(Problem::ImageAfterLast {
                    offset: range.start,
                    len: range.len(),
                }));
            }
        }
        let (mlx_versions, mlx_findings) = mlx::find_all(bytes);
        findings.extend(mlx_findings);
        Ok(Rom {
            len: bytes.len(),
            images,
            trailing,
            mlx_versions,
            findings,
        })
    }

    /// Every problem with this ROM: the parse findings plus, when `expect` is given, every
    /// image whose PCI ID (primary or device list) is not it and every `mlxsign:` record for
    /// another device (0 means any), and every EFI image that is not x64. Empty means the ROM
    /// is good to burn.
    pub fn verify(&self, expect: Option<PciId>) -> Vec<Finding> {
        let mut findings = self.findings.clone();
        for image in &self.images {
            if let Some(expected) = expect {
                if let Some(pcir) = &image.pcir {
                    if !pcir.matches(expected) {
                        findings.push(Finding::in_image(
                            image.index,
                            image.offset,
                            Problem::WrongPciId {
                                found: pcir.pci_id(),
                                expected,
                                device_list: pcir.device_list.clone(),
                            },
                        ));
                    }
                }
            }
            if let Some(efi) = &image.efi {
                if efi.machine != image::MACHINE_X64 {
                    findings.push(Finding::in_image(
                        image.index,
                        image.offset,
                        Problem::EfiNotX64 {
                            machine: image::machine_name(efi.machine),
                            code: efi.machine,
                        },
                    ));
                }
            }
        }
        if let Some(expected) = expect {
            for version in &self.mlx_versions {
                match version.device_id {
                    Some(found) if found != 0 && found != expected.device => {
                        findings.push(Finding::in_file(Problem::MlxsignWrongDevice {
                            offset: version.offset,
                            product: version.product_name(),
                            found,
                            expected: expected.device,
                        }));
                    }
                    _ => {}
                }
            }
        }
        findings
    }
}

/// "0x7f 0x45" or "end of file", for messages about a missing signature.
fn describe_start(bytes: &[u8]) -> String {
    match bytes {
        [] => "the end of the file".to_string(),
        [a] => format!("{a:#04x} and then the end of the file"),
        [a, b, ..] => format!("{a:#04x} {b:#04x}"),
    }
}

/// Reads a little-endian u16 at `range` (2 bytes) of `bytes` starting at `base`.
pub(crate) fn read_u16(bytes: &[u8], base: usize, range: core::ops::Range<usize>) -> Option<u16> {
    let start = base.checked_add(range.start)?;
    let b = bytes.get(start..start.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Reads a little-endian u32 at `range` (4 bytes) of `bytes` starting at `base`.
pub(crate) fn read_u32(bytes: &[u8], base: usize, range: core::ops::Range<usize>) -> Option<u32> {
    let start = base.checked_add(range.start)?;
    let b = bytes.get(start..start.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The 8-bit sum of `bytes`: zero for a correctly checksummed range.
pub(crate) fn sum8(bytes: &[u8]) -> u8 {
    // Eight bytes at a time: the low byte of a sum of bytes only depends on the bytes'
    // low bits, so summing u64 lanes and folding them gives the same 8-bit result.
    let mut chunks = bytes.chunks_exact(8);
    let mut lanes = 0u64;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // Even and odd bytes go into four 16-bit lanes; masking after each add keeps every
        // lane below 256, so no carry crosses into the next lane.
        const LOW_BYTES: u64 = 0x00ff_00ff_00ff_00ff;
        lanes = (lanes + (word & LOW_BYTES)) & LOW_BYTES;
        lanes = (lanes + ((word >> 8) & LOW_BYTES)) & LOW_BYTES;
    }
    let folded = lanes
        .to_le_bytes()
        .iter()
        .step_by(2)
        .fold(0u8, |a, b| a.wrapping_add(*b));
    chunks
        .remainder()
        .iter()
        .fold(folded, |acc, b| acc.wrapping_add(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum8_equals_the_plain_byte_sum_for_every_length_and_content() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..5000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        for len in (0..64).chain([255, 256, 1000, 4999, 5000]) {
            let plain = bytes[..len].iter().fold(0u8, |a, b| a.wrapping_add(*b));
            assert_eq!(sum8(&bytes[..len]), plain, "len {len}");
        }
        assert_eq!(sum8(&[0xff; 4096]), 0);
        assert_eq!(sum8(&[0xff; 4097]), 0xff);
    }

    #[test]
    fn pci_ids_and_versions_parse_as_written_and_reject_the_rest() {
        assert_eq!(
            "15b3:1013".parse::<PciId>().unwrap(),
            PciId::new(0x15b3, 0x1013)
        );
        assert_eq!(
            "0x8086:0x100E".parse::<PciId>().unwrap(),
            PciId::new(0x8086, 0x100e)
        );
        for bad in [
            "15b3",
            "15b3:",
            ":1013",
            "15b3:10133",
            "g5b3:1013",
            "15b3-1013",
        ] {
            assert!(bad.parse::<PciId>().is_err(), "{bad}");
        }
        assert_eq!(parse_version("3.4.812").unwrap(), (3, 4, 812));
        for bad in ["3.4", "3.4.5.6", "3..4", "a.b.c", "1.2.70000", "-1.2.3"] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }
}

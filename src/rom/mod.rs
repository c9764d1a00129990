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
pub use mlx::MlxVersion;
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
    /// image whose PCI ID (primary or device list) is not it, and every EFI image that is not
    /// x64. Empty means the ROM is good to burn.
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
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

//! What is wrong with a ROM: one [`Finding`] per problem, each naming the image, the offset
//! and what a firmware would do with it, so `sixboot rom verify` can list them all at once.

use std::fmt;

use super::PciId;

/// Where in the file a finding is: the image's index (0-based, in file order) and the file
/// offset it starts at. `None` for findings about the file as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImageRef {
    pub index: usize,
    pub offset: usize,
}

/// One problem found in a ROM. Displays as "image 1 at 0x12800: …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub image: Option<ImageRef>,
    pub problem: Problem,
}

impl Finding {
    pub(crate) fn in_image(index: usize, offset: usize, problem: Problem) -> Self {
        Finding {
            image: Some(ImageRef { index, offset }),
            problem,
        }
    }

    pub(crate) fn in_file(problem: Problem) -> Self {
        Finding {
            image: None,
            problem,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.image {
            Some(ImageRef { index, offset }) => {
                write!(f, "image {index} at {offset:#x}: {}", self.problem)
            }
            None => write!(f, "{}", self.problem),
        }
    }
}

impl serde::Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Finding", 4)?;
        s.serialize_field("image", &self.image.map(|i| i.index))?;
        s.serialize_field("offset", &self.image.map(|i| i.offset))?;
        s.serialize_field("problem", &self.problem.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

/// The kinds of problem. Offsets inside an image are relative to the image's start, as the
/// pointers in the ROM header are; lengths are in bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("expected an image (0x55 0xAA) at file offset {offset:#x} after an image without the last-image bit, found {found}; the previous image's length or last-image bit is wrong")]
    MissingNextImage { offset: usize, found: String },
    #[error("the last image does not have the last-image bit (PCIR indicator bit 7) set; firmware would look for another image past the end of the file")]
    LastImageBitMissing,
    #[error("{len} bytes after the last image at {offset:#x} start with 0x55 0xAA: another image follows, so an earlier image has the last-image bit set too soon")]
    ImageAfterLast { offset: usize, len: usize },
    #[error("the image header is cut off: {available} bytes left, the header needs {needed}")]
    HeaderTruncated { available: usize, needed: usize },
    #[error(
        "there is no PCI data structure (PCIR pointer at 0x18 is 0); a PCI option ROM needs one"
    )]
    PcirMissing,
    #[error("PCIR pointer {pointer:#x} points past the end of the image (the structure needs {needed:#x} bytes, {available:#x} are there)")]
    PcirOutOfRange {
        pointer: usize,
        needed: usize,
        available: usize,
    },
    #[error("PCIR pointer {pointer:#x} is not a multiple of 4 (the PCI firmware spec requires DWORD alignment)")]
    PcirMisaligned { pointer: usize },
    #[error("PCIR at {pointer:#x} has signature {found:?}, not \"PCIR\"")]
    PcirBadSignature { pointer: usize, found: String },
    #[error("PCIR at {pointer:#x} says its length is {length:#x} bytes; it must be at least 0x18 and fit in the image")]
    PcirBadLength { pointer: usize, length: usize },
    #[error(
        "the PCIR device list at {offset:#x} has no terminating 0 before the end of the image"
    )]
    DeviceListUnterminated { offset: usize },
    #[error("PCIR image length is 0; firmware cannot find where this image ends")]
    ZeroImageLength,
    #[error("PCIR image length {declared:#x} ({units} × 512) runs past the end of the file ({available:#x} bytes left): the file is truncated or the length is wrong")]
    ImageLengthPastEnd {
        declared: usize,
        units: usize,
        available: usize,
    },
    #[error("size byte says {declared:#x} bytes ({units} × 512) but the PCIR image length is only {image_length:#x}")]
    SizeExceedsImage {
        declared: usize,
        units: usize,
        image_length: usize,
    },
    #[error("size field at offset 2 says {declared:#x} bytes ({units} × 512) but only {available:#x} are left in the file")]
    SizePastEnd {
        declared: usize,
        units: usize,
        available: usize,
    },
    #[error("size byte at offset 2 is 0; the BIOS would load nothing")]
    ZeroSize,
    #[error("checksum over the first {len:#x} bytes sums to {sum:#04x}, not 0 (byte 6 is {stored:#04x}, should be {expected:#04x}); the BIOS will skip this image. `sixboot rom pack` fixes it")]
    BadChecksum {
        len: usize,
        sum: u8,
        stored: u8,
        expected: u8,
    },
    #[error("legacy x86 image is {len:#x} bytes, over the 255 × 512 = 0x1fe00 a BIOS can load")]
    LegacyTooLarge { len: usize },
    #[error("{name} header pointer {pointer:#x} is out of range or its signature is missing")]
    HeaderMissing { name: &'static str, pointer: usize },
    #[error("{name} header at {pointer:#x} checksum sums to {sum:#04x}, not 0")]
    HeaderBadChecksum {
        name: &'static str,
        pointer: usize,
        sum: u8,
    },
    #[error("code type 3 (EFI) but the EFI signature at offset 4 is {found:#x}, not 0xef1")]
    EfiBadSignature { found: u32 },
    #[error("EFI image offset {offset:#x} is not between the end of the EFI header (0x1a) and the end of the image ({len:#x})")]
    EfiImageOffsetOutOfRange { offset: usize, len: usize },
    #[error("EFI PE image at {offset:#x} cannot be read: {reason}")]
    EfiPeUnreadable { offset: usize, reason: String },
    #[error("EFI header says machine {header:#x} but the PE image inside says {pe:#x}")]
    EfiMachineMismatch { header: u16, pe: u16 },
    #[error("EFI image is for {machine} ({code:#x}), not x64 (0x8664); x86-64 UEFI firmware will not run it")]
    EfiNotX64 { machine: &'static str, code: u16 },
    #[error("PCI ID {found} is not the expected {expected}{}", device_list_note(.device_list))]
    WrongPciId {
        found: PciId,
        expected: PciId,
        device_list: Vec<u16>,
    },
    #[error(
        "mlxsign: version record at file offset {offset:#x} is cut off ({available} of 20 bytes)"
    )]
    MlxsignTruncated { offset: usize, available: usize },
    #[error("mlxsign: {product} version record at file offset {offset:#x} is for device {found:04x}, not {expected:04x}")]
    MlxsignWrongDevice {
        offset: usize,
        product: &'static str,
        found: u16,
        expected: u16,
    },
    #[error("{count} mlxsign: version records; mstflint shows only the first 5")]
    MlxsignTooMany { count: usize },
    #[error("stopped after {max} images; the file has more headers than any real ROM")]
    TooManyImages { max: usize },
}

fn device_list_note(list: &[u16]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        let ids: Vec<String> = list.iter().map(|d| format!("{d:04x}")).collect();
        format!(" (device list: {})", ids.join(", "))
    }
}

impl Problem {
    /// A stable name for scripts reading `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::MissingNextImage { .. } => "missing-next-image",
            Problem::LastImageBitMissing => "last-image-bit-missing",
            Problem::ImageAfterLast { .. } => "image-after-last",
            Problem::HeaderTruncated { .. } => "header-truncated",
            Problem::PcirMissing => "pcir-missing",
            Problem::PcirOutOfRange { .. } => "pcir-out-of-range",
            Problem::PcirMisaligned { .. } => "pcir-misaligned",
            Problem::PcirBadSignature { .. } => "pcir-bad-signature",
            Problem::PcirBadLength { .. } => "pcir-bad-length",
            Problem::DeviceListUnterminated { .. } => "device-list-unterminated",
            Problem::ZeroImageLength => "zero-image-length",
            Problem::ImageLengthPastEnd { .. } => "image-length-past-end",
            Problem::SizeExceedsImage { .. } => "size-exceeds-image",
            Problem::ZeroSize => "zero-size",
            Problem::SizePastEnd { .. } => "size-past-end",
            Problem::BadChecksum { .. } => "bad-checksum",
            Problem::LegacyTooLarge { .. } => "legacy-too-large",
            Problem::HeaderMissing { .. } => "header-missing",
            Problem::HeaderBadChecksum { .. } => "header-bad-checksum",
            Problem::EfiBadSignature { .. } => "efi-bad-signature",
            Problem::EfiImageOffsetOutOfRange { .. } => "efi-image-offset-out-of-range",
            Problem::EfiPeUnreadable { .. } => "efi-pe-unreadable",
            Problem::EfiMachineMismatch { .. } => "efi-machine-mismatch",
            Problem::EfiNotX64 { .. } => "efi-not-x64",
            Problem::WrongPciId { .. } => "wrong-pci-id",
            Problem::MlxsignTruncated { .. } => "mlxsign-truncated",
            Problem::MlxsignWrongDevice { .. } => "mlxsign-wrong-device",
            Problem::MlxsignTooMany { .. } => "mlxsign-too-many",
            Problem::TooManyImages { .. } => "too-many-images",
        }
    }
}

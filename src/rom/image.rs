//! One image inside a ROM file: its headers decoded into plain structs, and the findings
//! about it. Offsets in these structs are relative to the image's start unless named `file_*`.

use core::ops::Range;

use super::field::{self, UNIT};
use super::finding::{Finding, Problem};
use super::{read_u16, read_u32, sum8, PciId};

/// PE machine type of x86-64 (PE/COFF spec, "Machine Types").
pub const MACHINE_X64: u16 = 0x8664;

/// What an image is for, from its PCIR code type (PCI FW spec table 5-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// Code type 0: x86 real-mode code run by a PC BIOS (also the small stub of an iPXE
    /// `.mrom`, and images with no PCIR at all).
    Legacy,
    /// Code type 3: a UEFI driver in a PE file.
    Efi,
    /// Code type 0xff: the payload of an iPXE `.mrom`, which no firmware runs; the stub
    /// before it copies it out of the ROM BAR (mromprefix.S `open_payload`).
    MromPayload,
    /// Any other code type (1 Open Firmware, 2 PA-RISC, …), kept as found.
    Unknown(u8),
}

impl ImageKind {
    fn from_code_type(code_type: Option<u8>) -> Self {
        match code_type {
            None | Some(0) => ImageKind::Legacy,
            Some(3) => ImageKind::Efi,
            Some(0xff) => ImageKind::MromPayload,
            Some(other) => ImageKind::Unknown(other),
        }
    }

    /// A short name for tables and file names: `legacy`, `efi`, `mrom-payload`, `type-N`.
    pub fn name(&self) -> String {
        match self {
            ImageKind::Legacy => "legacy".to_string(),
            ImageKind::Efi => "efi".to_string(),
            ImageKind::MromPayload => "mrom-payload".to_string(),
            ImageKind::Unknown(code) => format!("type-{code}"),
        }
    }
}

/// One image: where it is, what it is, and its decoded headers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Image {
    /// 0-based position in the file.
    pub index: usize,
    /// File offset of the image's 0x55AA.
    pub offset: usize,
    pub kind: ImageKind,
    /// The image's declared length in bytes (PCIR image length × 512, or the size byte × 512
    /// when there is no PCIR); 0 when unknown.
    pub length: usize,
    /// File offsets of this image's bytes that are actually in the file.
    pub range: Range<usize>,
    /// The size field at offset 2 in 512-byte units: one byte for x86 images, the 16-bit
    /// initialization size for EFI images.
    pub size_units: Option<u16>,
    pub pcir: Option<Pcir>,
    /// The x86 image checksum (code type 0 only; EFI and `.mrom` payloads have none).
    pub checksum: Option<Checksum>,
    pub pnp: Option<PnpHeader>,
    pub undi: Option<UndiHeader>,
    pub ipxe: Option<IpxeHeader>,
    pub efi: Option<EfiHeader>,
}

impl Image {
    /// This image's bytes within `file`, the bytes [`Rom::parse`](super::Rom::parse) read;
    /// what `sixboot rom split` writes and [`pack`](super::pack) takes.
    pub fn bytes<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        file.get(self.range.clone()).unwrap_or(&[])
    }

    /// The PCIR code type, if the image has a PCIR.
    pub fn code_type(&self) -> Option<u8> {
        self.pcir.as_ref().map(|p| p.code_type)
    }

    /// The primary PCI ID from the PCIR.
    pub fn pci_id(&self) -> Option<PciId> {
        self.pcir.as_ref().map(Pcir::pci_id)
    }

    /// True when the last-image bit is set, or when there is no PCIR (a single non-PCI image).
    pub fn is_last(&self) -> bool {
        self.pcir.as_ref().map_or(true, |p| p.last_image)
    }

    /// Where the next image would start, if this image's extent is known and in the file.
    pub(crate) fn next_offset(&self) -> Option<usize> {
        let end = self.offset.checked_add(self.length)?;
        (self.length > 0 && self.pcir.is_some() && end == self.range.end).then_some(end)
    }
}

/// The PCI data structure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pcir {
    /// Offset from the image start (the pointer at 0x18).
    pub offset: usize,
    pub vendor: u16,
    pub device: u16,
    /// Further device IDs (PCIR revision 3 device list), without the terminator.
    pub device_list: Vec<u16>,
    pub struct_length: u16,
    pub struct_revision: u8,
    /// Base class << 16 | sub-class << 8 | programming interface (0x020000 = Ethernet).
    pub class_code: u32,
    /// Image length in 512-byte units.
    pub image_length_units: u16,
    pub revision: u16,
    pub code_type: u8,
    pub indicator: u8,
    pub last_image: bool,
    /// Maximum run-time length in 512-byte units (revision 3 only).
    pub max_runtime_units: Option<u16>,
}

impl Pcir {
    pub fn pci_id(&self) -> PciId {
        PciId::new(self.vendor, self.device)
    }

    /// True when `id` is the primary ID or its device is in the device list (PCI FW 3.0
    /// section 5.1.2: the list names further devices of the same vendor).
    pub fn matches(&self, id: PciId) -> bool {
        self.vendor == id.vendor
            && (self.device == id.device || self.device_list.contains(&id.device))
    }
}

/// The sum of the first `len` bytes of an x86 image, which must be 0.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checksum {
    pub len: usize,
    pub sum: u8,
    /// The byte at offset 6.
    pub stored: u8,
    pub ok: bool,
}

/// The PnP expansion header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PnpHeader {
    pub offset: usize,
    pub revision: u8,
    pub length: usize,
    pub checksum_ok: bool,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub bev: u16,
}

/// The UNDI ROM ID structure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UndiHeader {
    pub offset: usize,
    pub length: usize,
    pub checksum_ok: bool,
    /// PXE version major, minor, revision.
    pub pxe_version: (u8, u8, u8),
    pub bus_type: String,
}

/// iPXE's header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IpxeHeader {
    pub offset: usize,
    pub length: usize,
    pub checksum_ok: bool,
    pub shrunk_units: u8,
    pub build_id: Option<u32>,
}

/// The EFI expansion-ROM header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EfiHeader {
    pub init_size_units: u16,
    pub subsystem: u16,
    pub machine: u16,
    /// 0 uncompressed, 1 EFI-compressed.
    pub compression: u16,
    pub image_offset: usize,
    /// The PE headers, read with goblin when the image is uncompressed.
    pub pe: Option<PeInfo>,
}

/// What goblin read from the PE file inside an uncompressed EFI image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeInfo {
    pub machine: u16,
    pub subsystem: u16,
    pub entry_point: u64,
    pub image_base: u64,
    pub pe32_plus: bool,
}

/// A name for a PE machine type (PE/COFF spec "Machine Types").
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        0x014c => "IA-32",
        0x0200 => "Itanium",
        0x0ebc => "EFI byte code",
        0x8664 => "x64",
        0x01c2 => "ARM Thumb",
        0xaa64 => "AArch64",
        0x5032 => "RISC-V 32",
        0x5064 => "RISC-V 64",
        0x6264 => "LoongArch 64",
        _ => "an unknown machine",
    }
}

/// A name for a PE subsystem as EFI uses them.
pub fn subsystem_name(subsystem: u16) -> &'static str {
    match subsystem {
        10 => "EFI application",
        11 => "EFI boot-service driver",
        12 => "EFI runtime driver",
        13 => "EFI ROM",
        _ => "unknown subsystem",
    }
}

/// The most device-list entries read; a real list has a handful.
const MAX_DEVICE_LIST: usize = 256;

/// Parses the image starting at `rest[0]` (file offset `offset`). Never panics: every read
/// is bounds-checked and every problem becomes a finding.
pub(crate) fn parse(index: usize, offset: usize, rest: &[u8]) -> (Image, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut push = |problem| findings.push(Finding::in_image(index, offset, problem));
    let mut image = Image {
        index,
        offset,
        kind: ImageKind::Legacy,
        length: 0,
        range: offset..offset + rest.len().min(field::rom_header::LEN),
        size_units: None,
        pcir: None,
        checksum: None,
        pnp: None,
        undi: None,
        ipxe: None,
        efi: None,
    };
    if rest.len() < field::rom_header::LEN {
        push(Problem::HeaderTruncated {
            available: rest.len(),
            needed: field::rom_header::LEN,
        });
        image.range = offset..offset + rest.len();
        return (image, findings);
    }

    image.pcir = parse_pcir(rest, &mut push);
    image.kind = ImageKind::from_code_type(image.code_type());
    // Without a PCIR, an EFI signature still says what the image is.
    if image.pcir.is_none()
        && read_u32(rest, 0, field::efi_header::SIGNATURE)
            == Some(field::efi_header::SIGNATURE_VALUE)
    {
        image.kind = ImageKind::Efi;
    }
    let x86 = image.kind == ImageKind::Legacy;

    // The image's extent: the PCIR image length, or without a PCIR the size field (one byte
    // for x86, the 16-bit initialization size for EFI).
    let size_byte = rest[field::rom_header::SIZE];
    let size_field = match image.kind {
        ImageKind::Efi => read_u16(rest, 0, field::efi_header::INIT_SIZE).unwrap_or(0),
        _ => u16::from(size_byte),
    };
    image.length = match &image.pcir {
        Some(pcir) => usize::from(pcir.image_length_units) * UNIT,
        None => usize::from(size_field) * UNIT,
    };
    if image.pcir.is_some() && image.length == 0 {
        push(Problem::ZeroImageLength);
    } else if image.length > rest.len() {
        let (declared, units, available) = (image.length, image.length / UNIT, rest.len());
        push(match image.pcir {
            Some(_) => Problem::ImageLengthPastEnd {
                declared,
                units,
                available,
            },
            None => Problem::SizePastEnd {
                declared,
                units,
                available,
            },
        });
    }
    let present = if image.length == 0 {
        rest.len()
    } else {
        image.length.min(rest.len())
    };
    image.range = offset..offset + present;
    let bytes = &rest[..present];
    if let Some(pcir) = &image.pcir {
        if image.length > 0 && pcir.offset + field::pcir::MIN_LEN > image.length {
            push(Problem::PcirOutOfRange {
                pointer: pcir.offset,
                needed: pcir.offset + field::pcir::MIN_LEN,
                available: image.length,
            });
        }
    }

    if x86 {
        if image.length > field::LEGACY_MAX_LEN {
            push(Problem::LegacyTooLarge { len: image.length });
        }
        image.size_units = Some(u16::from(size_byte));
        let size = usize::from(size_byte) * UNIT;
        if size_byte == 0 {
            push(Problem::ZeroSize);
        } else if size > rest.len() {
            // Without a PCIR the size byte is the image length, already reported above.
            if image.pcir.is_some() {
                push(Problem::SizePastEnd {
                    declared: size,
                    units: usize::from(size_byte),
                    available: rest.len(),
                });
            }
        } else {
            if image.pcir.is_some() && size > image.length && image.length > 0 {
                push(Problem::SizeExceedsImage {
                    declared: size,
                    units: usize::from(size_byte),
                    image_length: image.length,
                });
            }
            let sum = sum8(&rest[..size]);
            let stored = rest[field::rom_header::CHECKSUM];
            if sum != 0 {
                push(Problem::BadChecksum {
                    len: size,
                    sum,
                    stored,
                    expected: stored.wrapping_sub(sum),
                });
            }
            image.checksum = Some(Checksum {
                len: size,
                sum,
                stored,
                ok: sum == 0,
            });
        }
        image.pnp = parse_pnp(bytes, &mut push);
        image.undi = parse_undi(bytes, &mut push);
        image.ipxe = parse_ipxe(bytes, &mut push);
    } else if image.kind == ImageKind::Efi {
        let pcir_length = if image.pcir.is_some() {
            image.length
        } else {
            0
        };
        image.efi = parse_efi(bytes, pcir_length, &mut image.size_units, &mut push);
    }
    (image, findings)
}

fn parse_pcir(rest: &[u8], push: &mut impl FnMut(Problem)) -> Option<Pcir> {
    use field::pcir as f;
    let pointer = usize::from(read_u16(rest, 0, field::rom_header::PCIR_POINTER)?);
    if pointer == 0 {
        push(Problem::PcirMissing);
        return None;
    }
    if pointer + f::MIN_LEN > rest.len() {
        push(Problem::PcirOutOfRange {
            pointer,
            needed: pointer + f::MIN_LEN,
            available: rest.len(),
        });
        return None;
    }
    let signature = &rest[pointer..pointer + 4];
    if signature != f::SIGNATURE_VALUE {
        push(Problem::PcirBadSignature {
            pointer,
            found: String::from_utf8_lossy(signature).into_owned(),
        });
        return None;
    }
    if pointer % 4 != 0 {
        push(Problem::PcirMisaligned { pointer });
    }
    let u16_at = |range| read_u16(rest, pointer, range).unwrap_or(0);
    let struct_length = u16_at(f::STRUCT_LENGTH);
    if usize::from(struct_length) < f::MIN_LEN || pointer + usize::from(struct_length) > rest.len()
    {
        push(Problem::PcirBadLength {
            pointer,
            length: usize::from(struct_length),
        });
    }
    let struct_revision = rest[pointer + f::STRUCT_REVISION];
    let class = &rest[pointer + f::CLASS_CODE.start..pointer + f::CLASS_CODE.end];
    let class_code = u32::from(class[2]) << 16 | u32::from(class[1]) << 8 | u32::from(class[0]);
    let image_length_units = u16_at(f::IMAGE_LENGTH);
    let has_rev3_fields = struct_revision >= 3 && usize::from(struct_length) >= f::MIN_LEN + 4;
    let mut device_list = Vec::new();
    let list_pointer = usize::from(u16_at(f::DEVICE_LIST));
    if struct_revision >= 3 && list_pointer != 0 {
        // The list lies inside the image; bound it by the image length when it is known.
        let image_end = match usize::from(image_length_units) * UNIT {
            0 => rest.len(),
            len => len.min(rest.len()),
        };
        let start = pointer + list_pointer;
        let mut at = start;
        let mut terminated = false;
        while device_list.len() < MAX_DEVICE_LIST && at + 2 <= image_end {
            let id = u16::from_le_bytes([rest[at], rest[at + 1]]);
            if id == 0 {
                terminated = true;
                break;
            }
            device_list.push(id);
            at += 2;
        }
        if !terminated {
            push(Problem::DeviceListUnterminated { offset: start });
        }
    }
    let indicator = rest[pointer + f::INDICATOR];
    Some(Pcir {
        offset: pointer,
        vendor: u16_at(f::VENDOR),
        device: u16_at(f::DEVICE),
        device_list,
        struct_length,
        struct_revision,
        class_code,
        image_length_units,
        revision: u16_at(f::REVISION),
        code_type: rest[pointer + f::CODE_TYPE],
        indicator,
        last_image: indicator & f::LAST_IMAGE != 0,
        max_runtime_units: has_rev3_fields
            .then(|| read_u16(rest, pointer, f::MAX_RUNTIME_LENGTH))
            .flatten(),
    })
}

/// Where a sub-header pointed to by a u16 at `pointer_field` sits, if its signature is there
/// and its fixed part fits: `(offset, declared length)`.
fn locate(
    bytes: &[u8],
    pointer_field: Range<usize>,
    signature: [u8; 4],
    min_len: usize,
) -> Option<usize> {
    let pointer = usize::from(read_u16(bytes, 0, pointer_field)?);
    if pointer == 0 || pointer + min_len > bytes.len() {
        return None;
    }
    (bytes[pointer..pointer + 4] == signature).then_some(pointer)
}

fn parse_pnp(bytes: &[u8], push: &mut impl FnMut(Problem)) -> Option<PnpHeader> {
    use field::pnp as f;
    let pointer = usize::from(read_u16(bytes, 0, field::rom_header::PNP_POINTER)?);
    let Some(at) = locate(
        bytes,
        field::rom_header::PNP_POINTER,
        f::SIGNATURE_VALUE,
        f::MIN_LEN,
    ) else {
        if pointer != 0 {
            push(Problem::HeaderMissing {
                name: "PnP",
                pointer,
            });
        }
        return None;
    };
    let length = usize::from(bytes[at + f::LENGTH]) * f::LENGTH_UNIT;
    let header = bytes.get(at..at + length);
    let checksum_ok = match header {
        Some(header) if length > f::CHECKSUM => {
            let sum = sum8(header);
            if sum != 0 {
                push(Problem::HeaderBadChecksum {
                    name: "PnP",
                    pointer: at,
                    sum,
                });
            }
            sum == 0
        }
        _ => {
            push(Problem::HeaderMissing {
                name: "PnP",
                pointer: at,
            });
            false
        }
    };
    let string_at = |range: Range<usize>| {
        let ptr = usize::from(header.and_then(|h| read_u16(h, 0, range))?);
        (ptr != 0).then(|| c_string(bytes, ptr)).flatten()
    };
    Some(PnpHeader {
        offset: at,
        revision: bytes[at + f::REVISION],
        length,
        checksum_ok,
        manufacturer: string_at(f::MANUFACTURER),
        product: string_at(f::PRODUCT),
        bev: header.and_then(|h| read_u16(h, 0, f::BEV)).unwrap_or(0),
    })
}

/// A NUL-terminated printable string of at most 64 bytes at `at`.
fn c_string(bytes: &[u8], at: usize) -> Option<String> {
    let tail = bytes.get(at..)?;
    let tail = &tail[..tail.len().min(64)];
    let end = tail.iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// Checks a header whose length byte is at 4 and checksum byte at 5 (UNDI and iPXE).
fn checked_len(
    bytes: &[u8],
    at: usize,
    name: &'static str,
    push: &mut impl FnMut(Problem),
) -> (usize, bool) {
    let length = usize::from(bytes[at + 4]);
    match bytes.get(at..at + length) {
        Some(header) if length > 5 => {
            let sum = sum8(header);
            if sum != 0 {
                push(Problem::HeaderBadChecksum {
                    name,
                    pointer: at,
                    sum,
                });
            }
            (length, sum == 0)
        }
        _ => {
            push(Problem::HeaderMissing { name, pointer: at });
            (length, false)
        }
    }
}

fn parse_undi(bytes: &[u8], push: &mut impl FnMut(Problem)) -> Option<UndiHeader> {
    use field::undi as f;
    let at = locate(
        bytes,
        field::rom_header::UNDI_POINTER,
        f::SIGNATURE_VALUE,
        f::MIN_LEN,
    )?;
    let (length, checksum_ok) = checked_len(bytes, at, "UNDI", push);
    let v = &bytes[at + f::VERSION.start..at + f::VERSION.end];
    Some(UndiHeader {
        offset: at,
        length,
        checksum_ok,
        pxe_version: (v[2], v[1], v[0]),
        bus_type: String::from_utf8_lossy(&bytes[at + f::BUS_TYPE.start..at + f::BUS_TYPE.end])
            .into_owned(),
    })
}

fn parse_ipxe(bytes: &[u8], push: &mut impl FnMut(Problem)) -> Option<IpxeHeader> {
    use field::ipxe as f;
    let at = locate(
        bytes,
        field::rom_header::IPXE_POINTER,
        f::SIGNATURE_VALUE,
        f::MIN_LEN,
    )?;
    let (length, checksum_ok) = checked_len(bytes, at, "iPXE", push);
    Some(IpxeHeader {
        offset: at,
        length,
        checksum_ok,
        shrunk_units: bytes.get(at + f::SHRUNK_LENGTH).copied().unwrap_or(0),
        build_id: (length >= f::BUILD_ID.end)
            .then(|| read_u32(bytes, at, f::BUILD_ID))
            .flatten(),
    })
}

fn parse_efi(
    bytes: &[u8],
    image_length: usize,
    size_units: &mut Option<u16>,
    push: &mut impl FnMut(Problem),
) -> Option<EfiHeader> {
    use field::efi_header as f;
    let signature = read_u32(bytes, 0, f::SIGNATURE)?;
    if signature != f::SIGNATURE_VALUE {
        push(Problem::EfiBadSignature { found: signature });
        return None;
    }
    let u16_at = |range| read_u16(bytes, 0, range).unwrap_or(0);
    let init_size_units = u16_at(f::INIT_SIZE);
    *size_units = Some(init_size_units);
    let init_size = usize::from(init_size_units) * UNIT;
    if image_length > 0 && init_size > image_length {
        push(Problem::SizeExceedsImage {
            declared: init_size,
            units: usize::from(init_size_units),
            image_length,
        });
    }
    let machine = u16_at(f::MACHINE);
    let compression = u16_at(f::COMPRESSION);
    let image_offset = usize::from(u16_at(f::IMAGE_OFFSET));
    let mut pe = None;
    if image_offset < f::LEN || image_offset >= bytes.len() {
        push(Problem::EfiImageOffsetOutOfRange {
            offset: image_offset,
            len: bytes.len(),
        });
    } else if compression == 0 {
        match goblin::pe::header::Header::parse(&bytes[image_offset..]) {
            Ok(header) => match header.optional_header {
                Some(optional) => {
                    let info = PeInfo {
                        machine: header.coff_header.machine,
                        subsystem: optional.windows_fields.subsystem,
                        entry_point: optional.standard_fields.address_of_entry_point,
                        image_base: optional.windows_fields.image_base,
                        pe32_plus: optional.standard_fields.magic
                            == goblin::pe::optional_header::MAGIC_64,
                    };
                    if info.machine != machine {
                        push(Problem::EfiMachineMismatch {
                            header: machine,
                            pe: info.machine,
                        });
                    }
                    pe = Some(info);
                }
                None => push(Problem::EfiPeUnreadable {
                    offset: image_offset,
                    reason: "it has no optional header".to_string(),
                }),
            },
            Err(err) => push(Problem::EfiPeUnreadable {
                offset: image_offset,
                reason: err.to_string(),
            }),
        }
    }
    Some(EfiHeader {
        init_size_units,
        subsystem: u16_at(f::SUBSYSTEM),
        machine,
        compression,
        image_offset,
        pe,
    })
}

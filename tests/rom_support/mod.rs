//! Shared helpers for the `rom_*` integration tests: the ROMs they run on.
//!
//! Two corpora. ROMs the tests build themselves ([`built_virtio_rom`], [`built_legacy_rom`]:
//! headers written field by field from `sixboot::rom::field`, combined and checksummed by
//! `sixboot::rom::pack`), so the parse, verify, corruption, proptest and CLI suites run on
//! any machine; and the real ROMs Debian ships under `/usr/lib/ipxe` (the real-world
//! corpus: `rom_debian.rs`, and every suite above also runs on them when they are here).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sixboot::rom::field::{self, UNIT};
use sixboot::rom::{pack, PackOptions, PciId};

/// The PCI ID of Debian's efi-virtio.rom, which the built virtio ROM copies.
pub const VIRTIO_ID: PciId = PciId::new(0x1af4, 0x1041);
/// The PCI ID of Debian's pxe-rtl8139.rom, which the built legacy-only ROM copies.
pub const RTL8139_ID: PciId = PciId::new(0x10ec, 0x8139);

/// The layout efi-virtio.rom has and the built ROM copies, so one expected message fits
/// both: a 148 × 512-byte legacy image, then a 339 × 512-byte EFI image.
pub const LEGACY_UNITS: usize = 148;
pub const EFI_UNITS: usize = 339;
/// Where the legacy image's headers are (iPXE's romprefix.S layout).
const PCIR_AT: usize = 0x1c;
const DEVICE_LIST_AT: usize = 0x38;
const PNP_AT: usize = 0x40;
const PNP_MANUFACTURER_AT: usize = 0x60;
const PNP_PRODUCT_AT: usize = 0x70;
const UNDI_AT: usize = 0x84;
const IPXE_AT: usize = 0x9c;
/// Where the EFI image's PE file starts, and its PE header inside it (e_lfanew).
const PE_AT: usize = 0x38;
const PE_HEADER_AT: usize = 0xc0;

/// `len` pseudo-random bytes from `seed` (xorshift64): the built images' code (not zeros,
/// so a mutation lands on something), and proptest's cheap large inputs, reproducible from
/// the seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

fn put(bytes: &mut [u8], at: usize, field: core::ops::Range<usize>, value: &[u8]) {
    assert_eq!(field.len(), value.len(), "field width");
    bytes[at + field.start..at + field.end].copy_from_slice(value);
}

/// PCIR for `id` at `at` (PCI FW spec 5.1.2); revision 3 with a device list when `list`.
fn write_pcir(
    bytes: &mut [u8],
    at: usize,
    id: PciId,
    units: usize,
    code_type: u8,
    list: Option<usize>,
) {
    use field::pcir::*;
    let length = if list.is_some() { 0x1c } else { MIN_LEN };
    bytes[at..at + length].fill(0);
    put(bytes, at, SIGNATURE, &SIGNATURE_VALUE);
    put(bytes, at, VENDOR, &id.vendor.to_le_bytes());
    put(bytes, at, DEVICE, &id.device.to_le_bytes());
    put(bytes, at, STRUCT_LENGTH, &(length as u16).to_le_bytes());
    put(bytes, at, CLASS_CODE, &[0x00, 0x00, 0x02]); // network controller
    put(bytes, at, IMAGE_LENGTH, &(units as u16).to_le_bytes());
    bytes[at + CODE_TYPE] = code_type;
    if let Some(list_at) = list {
        bytes[at + STRUCT_REVISION] = 3;
        put(
            bytes,
            at,
            DEVICE_LIST,
            &((list_at - at) as u16).to_le_bytes(),
        );
        put(bytes, at, REVISION, &1u16.to_le_bytes());
        put(bytes, at, MAX_RUNTIME_LENGTH, &7u16.to_le_bytes());
        bytes[list_at..list_at + 4].copy_from_slice(&[id.device.to_le_bytes(), [0, 0]].concat());
    }
}

/// A legacy (BIOS) iPXE image for `id`, laid out as iPXE's romprefix.S lays it out: ROM
/// header with entry jump and pointers, PCIR revision 3 with a device list, PnP header with
/// manufacturer and product strings, UNDI ROM ID (PXE 2.1), iPXE header. Every checksum is
/// left zero: `pack` fixes them, as fixrom.pl does for iPXE's own build.
pub fn legacy_image(id: PciId) -> Vec<u8> {
    let mut bytes = noise(LEGACY_UNITS * UNIT, 0x5eed_1e9a + u64::from(id.device));
    bytes[..0xc0].fill(0);
    {
        use field::rom_header::*;
        put(&mut bytes, 0, SIGNATURE, &SIGNATURE_VALUE);
        bytes[SIZE] = LEGACY_UNITS as u8;
        put(&mut bytes, 0, ENTRY, &[0xe9, 0xa2, 0x00]); // jmp near to the init code
        put(&mut bytes, 0, IPXE_POINTER, &(IPXE_AT as u16).to_le_bytes());
        put(&mut bytes, 0, UNDI_POINTER, &(UNDI_AT as u16).to_le_bytes());
        put(&mut bytes, 0, PCIR_POINTER, &(PCIR_AT as u16).to_le_bytes());
        put(&mut bytes, 0, PNP_POINTER, &(PNP_AT as u16).to_le_bytes());
    }
    write_pcir(
        &mut bytes,
        PCIR_AT,
        id,
        LEGACY_UNITS,
        0,
        Some(DEVICE_LIST_AT),
    );
    {
        use field::pnp::*;
        put(&mut bytes, PNP_AT, SIGNATURE, &SIGNATURE_VALUE);
        bytes[PNP_AT + REVISION] = 1;
        bytes[PNP_AT + LENGTH] = 2; // 2 × 16 bytes
        put(
            &mut bytes,
            PNP_AT,
            MANUFACTURER,
            &(PNP_MANUFACTURER_AT as u16).to_le_bytes(),
        );
        put(
            &mut bytes,
            PNP_AT,
            PRODUCT,
            &(PNP_PRODUCT_AT as u16).to_le_bytes(),
        );
        bytes[PNP_AT + 0x12..PNP_AT + 0x16].copy_from_slice(&[0x02, 0x00, 0x00, 0xf4]);
        put(&mut bytes, PNP_AT, BEV, &0x0385u16.to_le_bytes());
        bytes[PNP_MANUFACTURER_AT..PNP_MANUFACTURER_AT + 16].copy_from_slice(b"http://ipxe.org\0");
        bytes[PNP_PRODUCT_AT..PNP_PRODUCT_AT + 5].copy_from_slice(b"iPXE\0");
    }
    {
        use field::undi::*;
        put(&mut bytes, UNDI_AT, SIGNATURE, &SIGNATURE_VALUE);
        bytes[UNDI_AT + LENGTH] = MIN_LEN as u8;
        put(&mut bytes, UNDI_AT, VERSION, &[0, 1, 2]); // PXE 2.1.0
        put(&mut bytes, UNDI_AT, BUS_TYPE, b"PCIR");
    }
    {
        use field::ipxe::*;
        put(&mut bytes, IPXE_AT, SIGNATURE, &SIGNATURE_VALUE);
        bytes[IPXE_AT + LENGTH] = 0x0c;
        bytes[IPXE_AT + SHRUNK_LENGTH] = 7;
        put(&mut bytes, IPXE_AT, BUILD_ID, &0x5e1f_b017u32.to_le_bytes());
    }
    bytes
}

/// An EFI image for `id` (PCI FW spec 5.2): EFI ROM header (x64 boot-service driver,
/// uncompressed), PCIR revision 0, and a PE32+ file whose headers goblin reads (DOS
/// header, `PE\0\0`, COFF header for x64, PE32+ optional header with 16 data directories).
pub fn efi_image(id: PciId) -> Vec<u8> {
    let mut bytes = noise(EFI_UNITS * UNIT, 0xef1_0000 + u64::from(id.device));
    let pe_header = PE_AT + PE_HEADER_AT;
    bytes[..pe_header + 0x108].fill(0);
    {
        use field::efi_header::*;
        put(
            &mut bytes,
            0,
            field::rom_header::SIGNATURE,
            &field::rom_header::SIGNATURE_VALUE,
        );
        put(&mut bytes, 0, INIT_SIZE, &(EFI_UNITS as u16).to_le_bytes());
        put(&mut bytes, 0, SIGNATURE, &SIGNATURE_VALUE.to_le_bytes());
        put(&mut bytes, 0, SUBSYSTEM, &11u16.to_le_bytes());
        put(
            &mut bytes,
            0,
            MACHINE,
            &sixboot::rom::MACHINE_X64.to_le_bytes(),
        );
        put(&mut bytes, 0, IMAGE_OFFSET, &(PE_AT as u16).to_le_bytes());
        put(
            &mut bytes,
            0,
            field::rom_header::PCIR_POINTER,
            &(PCIR_AT as u16).to_le_bytes(),
        );
    }
    write_pcir(&mut bytes, PCIR_AT, id, EFI_UNITS, 3, None);
    // PE/COFF (Microsoft PE format): DOS header "MZ" with e_lfanew at 0x3c.
    bytes[PE_AT..PE_AT + 2].copy_from_slice(b"MZ");
    bytes[PE_AT + 0x3c..PE_AT + 0x40].copy_from_slice(&(PE_HEADER_AT as u32).to_le_bytes());
    bytes[pe_header..pe_header + 4].copy_from_slice(b"PE\0\0");
    let coff = pe_header + 4;
    bytes[coff..coff + 2].copy_from_slice(&sixboot::rom::MACHINE_X64.to_le_bytes());
    bytes[coff + 16..coff + 18].copy_from_slice(&0xf0u16.to_le_bytes()); // optional header size
    bytes[coff + 18..coff + 20].copy_from_slice(&0x2022u16.to_le_bytes()); // executable, DLL
    let optional = coff + 20;
    bytes[optional..optional + 2].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    bytes[optional + 16..optional + 20].copy_from_slice(&0x6260u32.to_le_bytes()); // entry point
    bytes[optional + 32..optional + 36].copy_from_slice(&0x20u32.to_le_bytes()); // section alignment
    bytes[optional + 36..optional + 40].copy_from_slice(&0x20u32.to_le_bytes()); // file alignment
    bytes[optional + 68..optional + 70].copy_from_slice(&11u16.to_le_bytes()); // subsystem
    bytes[optional + 108..optional + 112].copy_from_slice(&16u32.to_le_bytes()); // data directories
    bytes
}

/// A combined legacy + EFI ROM built with `pack`: the same size, image lengths, PCI ID,
/// device list and header offsets as Debian's efi-virtio.rom, other bytes.
pub fn built_virtio_rom() -> Vec<u8> {
    static ROM: OnceLock<Vec<u8>> = OnceLock::new();
    ROM.get_or_init(|| {
        let (legacy, efi) = (legacy_image(VIRTIO_ID), efi_image(VIRTIO_ID));
        pack(&[&legacy, &efi], &PackOptions::default()).expect("the built images pack")
    })
    .clone()
}

/// A legacy-only ROM built with `pack`, for 10ec:8139 (as Debian's pxe-rtl8139.rom).
pub fn built_legacy_rom() -> Vec<u8> {
    pack(&[&legacy_image(RTL8139_ID)], &PackOptions::default()).expect("the built image packs")
}

/// The virtio-shaped ROMs every suite runs on: the built one, always, and Debian's
/// efi-virtio.rom when `ipxe-qemu` is installed (its absence is recorded as a skip by
/// `rom_debian`, which needs it).
pub fn virtio_roms() -> Vec<(&'static str, Vec<u8>)> {
    let mut roms = vec![("built efi-virtio-shaped ROM", built_virtio_rom())];
    if let Ok(bytes) = std::fs::read(EFI_VIRTIO) {
        roms.push((EFI_VIRTIO, bytes));
    }
    roms
}

/// Every distinct option ROM from Debian's `ipxe-qemu` and `ipxe` packages on this machine
/// (symlinks resolved, so each file is listed once), sorted.
pub fn debian_roms() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in ["/usr/lib/ipxe/qemu", "/usr/lib/ipxe"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rom") {
                if let Ok(real) = path.canonicalize() {
                    found.push(real);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The ROM QEMU puts on a virtio-net NIC: a legacy image and an EFI image.
pub const EFI_VIRTIO: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";

/// The bytes of `path` (a ROM from Debian's `ipxe-qemu`), or `None` after a recorded skip
/// (a failure under CI, which installs the package).
pub fn read_or_skip(path: &str) -> Option<Vec<u8>> {
    if !sixboot_lab::need::file(path, "ipxe-qemu") {
        return None;
    }
    Some(std::fs::read(path).unwrap_or_else(|err| panic!("cannot read {path}: {err}")))
}

/// The directory iPXE's source lives in, when `IPXE_SRC` is set and holds `src/util`.
pub fn ipxe_util_dir() -> Option<PathBuf> {
    let root = sixboot_lab::need::source("IPXE_SRC")?;
    let util = Path::new(&root).join("src/util");
    assert!(
        util.join("catrom.pl").exists(),
        "IPXE_SRC={} is not an iPXE tree: {} has no catrom.pl",
        root.display(),
        util.display()
    );
    Some(util)
}

/// Sets a little-endian u16 at `at`.
pub fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Reads a little-endian u16 at `at`.
pub fn get_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

//! Byte offsets of every structure the `rom` module reads or writes, in one place.
//!
//! Offsets are relative to the start of the structure they belong to. Sources: PCI Firmware
//! Specification 3.0/3.1, section 5.1 ("PCI Expansion ROM", figures 5-1 to 5-3, the PCI data
//! structure, table 5-1) and section 5.2 ("EFI PCI Expansion ROM header"); the BIOS Boot
//! Specification 1.01 appendix C (PnP expansion header); PXE 2.1 section 4.4.1 (UNDI ROM ID
//! structure); iPXE `src/arch/x86/prefix/romprefix.S` and `mromprefix.S` (iPXE header, `.mrom`
//! layout); mstflint `mlxfwops/lib/fw_ops.cpp` `GetExpRomVerForOneRom` (the `mlxsign:` trailer).
//! All multi-byte fields are little-endian.

use core::ops::Range;

/// Images are sized and aligned in 512-byte units (PCI FW spec 5.1: "in units of 512 bytes").
pub const UNIT: usize = 512;

/// The largest legacy image the one-byte size field can describe: 255 × 512 bytes.
pub const LEGACY_MAX_LEN: usize = 255 * UNIT;

/// The option-ROM header at the start of every image (PCI FW spec 5.1.1, figure 5-2).
pub mod rom_header {
    use super::Range;
    /// 0x55, 0xAA.
    pub const SIGNATURE: Range<usize> = 0..2;
    pub const SIGNATURE_VALUE: [u8; 2] = [0x55, 0xaa];
    /// x86 images: initialization size in 512-byte units (one byte).
    pub const SIZE: usize = 2;
    /// x86 images: the entry point (a jump instruction) at 3..6.
    pub const ENTRY: Range<usize> = 3..6;
    /// x86 images: byte that makes the first SIZE × 512 bytes sum to zero. Not part of the
    /// PCI spec; the BIOS checks it, and iPXE's `fixrom.pl` keeps it at offset 6.
    pub const CHECKSUM: usize = 6;
    /// iPXE ROMs: pointer to the iPXE header (romprefix.S, `.org 0x10`).
    pub const IPXE_POINTER: Range<usize> = 0x10..0x12;
    /// iPXE ROMs: pointer to the UNDI ROM ID structure (PXE 2.1 section 4.4.1, `.org 0x16`).
    pub const UNDI_POINTER: Range<usize> = 0x16..0x18;
    /// Pointer to the PCI data structure ("PCIR"), relative to the image start.
    pub const PCIR_POINTER: Range<usize> = 0x18..0x1a;
    /// x86 images: pointer to the PnP expansion header (BIOS Boot Spec appendix C).
    pub const PNP_POINTER: Range<usize> = 0x1a..0x1c;
    /// The smallest header that holds every pointer above.
    pub const LEN: usize = 0x1c;
}

/// The EFI expansion-ROM header (PCI FW spec 5.2.1.1, table 5-3), for code type 3.
pub mod efi_header {
    use super::Range;
    /// Initialization size in 512-byte units (16 bits here, unlike the x86 size byte).
    pub const INIT_SIZE: Range<usize> = 2..4;
    /// 0x0EF1.
    pub const SIGNATURE: Range<usize> = 4..8;
    pub const SIGNATURE_VALUE: u32 = 0x0ef1;
    /// PE subsystem: 10 application, 11 boot-service driver, 12 runtime driver.
    pub const SUBSYSTEM: Range<usize> = 8..10;
    /// PE machine type: 0x14c IA-32, 0x8664 x64, 0xaa64 AArch64, 0xebc EBC.
    pub const MACHINE: Range<usize> = 10..12;
    /// 0 uncompressed, 1 EFI-compressed.
    pub const COMPRESSION: Range<usize> = 12..14;
    /// Offset of the PE image from the start of this image.
    pub const IMAGE_OFFSET: Range<usize> = 0x16..0x18;
    pub const LEN: usize = 0x1a;
}

/// The PCI data structure (PCI FW spec 5.1.2, table 5-1).
pub mod pcir {
    use super::Range;
    pub const SIGNATURE: Range<usize> = 0..4;
    pub const SIGNATURE_VALUE: [u8; 4] = *b"PCIR";
    pub const VENDOR: Range<usize> = 4..6;
    pub const DEVICE: Range<usize> = 6..8;
    /// Revision 3 and later: offset of a zero-terminated list of further device IDs,
    /// relative to the start of this structure; 0 when there is none.
    pub const DEVICE_LIST: Range<usize> = 8..10;
    pub const STRUCT_LENGTH: Range<usize> = 10..12;
    pub const STRUCT_REVISION: usize = 12;
    /// Programming interface, sub-class, base class (3 bytes, in that order).
    pub const CLASS_CODE: Range<usize> = 13..16;
    /// Image length in 512-byte units; the next image starts this far from this one.
    pub const IMAGE_LENGTH: Range<usize> = 0x10..0x12;
    pub const REVISION: Range<usize> = 0x12..0x14;
    /// 0 x86 (PC-AT), 1 Open Firmware, 2 PA-RISC, 3 EFI; iPXE's `.mrom` payload uses 0xff.
    pub const CODE_TYPE: usize = 0x14;
    /// Bit 7 set on the last image in the ROM.
    pub const INDICATOR: usize = 0x15;
    pub const LAST_IMAGE: u8 = 0x80;
    /// Revision 3: maximum run-time image length in 512-byte units.
    pub const MAX_RUNTIME_LENGTH: Range<usize> = 0x16..0x18;
    /// The length of a revision 0-2 structure; revision 3 adds 4 bytes (0x1c).
    pub const MIN_LEN: usize = 0x18;
}

/// The PnP expansion header (BIOS Boot Specification 1.01, appendix C).
pub mod pnp {
    use super::Range;
    pub const SIGNATURE: Range<usize> = 0..4;
    pub const SIGNATURE_VALUE: [u8; 4] = *b"$PnP";
    pub const REVISION: usize = 4;
    /// Length in 16-byte units.
    pub const LENGTH: usize = 5;
    pub const LENGTH_UNIT: usize = 16;
    /// Makes the header's LENGTH × 16 bytes sum to zero.
    pub const CHECKSUM: usize = 9;
    pub const MANUFACTURER: Range<usize> = 0x0e..0x10;
    pub const PRODUCT: Range<usize> = 0x10..0x12;
    /// Boot execution vector.
    pub const BEV: Range<usize> = 0x1a..0x1c;
    /// The fixed part read before LENGTH is trusted (as iPXE's Option::ROM does).
    pub const MIN_LEN: usize = 6;
}

/// The UNDI ROM ID structure (PXE 2.1 section 4.4.1; romprefix.S `undiheader`).
pub mod undi {
    use super::Range;
    pub const SIGNATURE: Range<usize> = 0..4;
    pub const SIGNATURE_VALUE: [u8; 4] = *b"UNDI";
    /// Length in bytes; the checksum covers this many bytes.
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 5;
    pub const REVISION: usize = 6;
    /// PXE version: revision, minor, major.
    pub const VERSION: Range<usize> = 7..10;
    pub const BUS_TYPE: Range<usize> = 0x12..0x16;
    pub const MIN_LEN: usize = 0x16;
}

/// iPXE's own header (romprefix.S `ipxeheader`).
pub mod ipxe {
    use super::Range;
    pub const SIGNATURE: Range<usize> = 0..4;
    pub const SIGNATURE_VALUE: [u8; 4] = *b"iPXE";
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 5;
    /// Size after iPXE shrinks itself in memory, in 512-byte units.
    pub const SHRUNK_LENGTH: usize = 6;
    /// Random build ID; the `.mrom` stub finds its payload image by it (mromprefix.S).
    pub const BUILD_ID: Range<usize> = 8..12;
    pub const MIN_LEN: usize = 6;
}

/// Mellanox's expansion-ROM version record: the magic `mlxsign:` followed by three
/// little-endian dwords (mstflint `GetExpRomVerForOneRom`, `ROM_INFO_SIZE` = 12).
pub mod mlxsign {
    use super::Range;
    pub const MAGIC: &[u8; 8] = b"mlxsign:";
    /// Bits 31..16 product ID (0x10 PXE, 0x11 UEFI, ...), bits 7..0 major version.
    pub const PRODUCT_AND_MAJOR: Range<usize> = 8..12;
    /// Bits 23..16 minor version, bits 15..0 sub-minor version.
    pub const MINOR_AND_SUB: Range<usize> = 12..16;
    /// Product ID ≥ 0x10: bits 31..16 device ID, 15..12 port, 11..8 CPU, 7..0 protocol.
    pub const DEVICE_PORT_CPU_PROTO: Range<usize> = 16..20;
    /// Magic plus the three dwords.
    pub const LEN: usize = 20;
    /// mstflint reports at most this many records (`MAX_ROMS_NUM`).
    pub const MAX_RECORDS: usize = 5;
    pub const PRODUCT_PXE: u16 = 0x10;
    pub const PRODUCT_UEFI: u16 = 0x11;
    /// `ERC_AMD64` in mstflint's `mlxfwops_com.h`.
    pub const CPU_AMD64: u8 = 1;
    /// `ER_ETH` in mstflint's `mlxfwops_com.h`.
    pub const PROTO_ETH: u8 = 1;
}

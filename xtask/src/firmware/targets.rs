//! The vocabulary of the flavour tables: `--target` names, NICs, build directories, image
//! kinds, and [`Output`] (one image make builds, with everything the pipeline checks in
//! it). What each flavour builds for each target is in [`super::flavor`].

use std::fmt;

use clap::ValueEnum;
use serde::Serialize;
pub use sixboot::rom::PciId;

/// A group of images for one kind of hardware (or firmware path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Mellanox ConnectX-3 / ConnectX-3 Pro (15b3:1003, 1007), `hermon` driver.
    Cx3,
    /// Mellanox ConnectX-4 / ConnectX-4 Lx (15b3:1013, 1015), `golan` driver.
    Cx4,
    /// ConnectX-5 / 5 Ex (15b3:1017, 1019), `golan`; experimental (never booted here).
    Cx5,
    /// ConnectX-6 / 6 Dx / 6 Lx (15b3:101b, 101d, 101f), `golan`; experimental.
    Cx6,
    /// ConnectX-7 (15b3:1021), `golan`; experimental.
    Cx7,
    /// QEMU: iPXE's virtio-net ROMs, `ipxe.lkrn`, `ipxe.efi`; FlexBoot's ConnectX-3
    /// `.rom` for the `-option-rom` smoke test.
    Qemu,
    /// FlexBoot for QEMU's virtio-net-pci (1af4:1000), to boot on the lab's network.
    Virtio,
    /// `snponly.efi` for x86-64 UEFI: the NIC's own UEFI driver (SNP), no NIC driver
    /// of ours; the file UEFI PXE or HTTP Boot loads, nothing to flash.
    Snponly,
    /// ARM64 UEFI: `ipxe.efi` and `snponly.efi`, cross-built with aarch64-linux-gnu-gcc.
    Arm64,
}

impl Target {
    /// The name on the command line and the directory in the package.
    pub fn name(self) -> &'static str {
        match self {
            Target::Cx3 => "cx3",
            Target::Cx4 => "cx4",
            Target::Cx5 => "cx5",
            Target::Cx6 => "cx6",
            Target::Cx7 => "cx7",
            Target::Qemu => "qemu",
            Target::Virtio => "virtio",
            Target::Snponly => "snponly",
            Target::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One NIC model: its PCI ID, the names people and iPXE/FlexBoot use, and how its boot
/// settings are named in `mlxconfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nic {
    /// PCI vendor and device ID.
    pub pci_id: PciId,
    /// Marketing name (`ConnectX-4 Lx`), for BURN.md.
    pub name: &'static str,
    /// The `PCI_ROM` name in the driver source, FlexBoot's make-target stem
    /// (`ConnectX-4Lx`, in `drivers/infiniband/golan.c`).
    pub rom_name: &'static str,
    /// ConnectX-3 generation: per-port `mlxconfig` names (`IP_VER_P1`), hermon driver.
    pub per_port_settings: bool,
}

const fn nic(device: u16, name: &'static str, rom_name: &'static str) -> Nic {
    Nic {
        pci_id: PciId::new(0x15b3, device),
        name,
        rom_name,
        per_port_settings: device < 0x1010,
    }
}

/// Every Mellanox NIC a target builds for, as `golan.c`/`hermon.c` list them at the pin
/// (`PCI_ROM` lines).
pub const NICS: &[Nic] = &[
    nic(0x1003, "ConnectX-3", "ConnectX-3"),
    nic(0x1007, "ConnectX-3 Pro", "ConnectX-3Pro"),
    nic(0x1013, "ConnectX-4", "ConnectX-4"),
    nic(0x1015, "ConnectX-4 Lx", "ConnectX-4Lx"),
    nic(0x1017, "ConnectX-5", "ConnectX-5"),
    nic(0x1019, "ConnectX-5 Ex", "ConnectX-5EX"),
    nic(0x101b, "ConnectX-6", "ConnectX-6"),
    nic(0x101d, "ConnectX-6 Dx", "ConnectX-6DX"),
    nic(0x101f, "ConnectX-6 Lx", "ConnectX-6Lx"),
    nic(0x1021, "ConnectX-7", "ConnectX-7"),
];

/// The NIC with this PCI ID.
pub fn nic_by_id(id: PciId) -> Option<&'static Nic> {
    NICS.iter().find(|nic| nic.pci_id == id)
}

/// The NIC with this device ID (vendor 15b3). Panics on an ID missing from [`NICS`]:
/// only the flavour tables call it, with constants, and a unit test walks every table.
pub fn mellanox(device: u16) -> &'static Nic {
    nic_by_id(PciId::new(0x15b3, device)).expect("every table's device is in NICS")
}

/// iPXE's file-name form of a PCI ID: `15b31003`.
pub fn file_stem(id: PciId) -> String {
    format!("{:04x}{:04x}", id.vendor, id.device)
}

/// The machine an image's ELF is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// 32-bit x86 (PC BIOS images), ELF `EM_386`.
    I386,
    /// x86-64 UEFI, ELF `EM_X86_64`.
    X86_64,
    /// AArch64 UEFI, ELF `EM_AARCH64`.
    Arm64,
}

impl Arch {
    /// The ELF `e_machine` value (System V ABI, "Machine Information").
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::I386 => goblin::elf::header::EM_386,
            Arch::X86_64 => goblin::elf::header::EM_X86_64,
            Arch::Arm64 => goblin::elf::header::EM_AARCH64,
        }
    }

    /// The name in check lists (`machine:aarch64`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::I386 => "i386",
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }
}

/// A build directory under the tree's `src/`. Each gets its own make call: targets of
/// two directories in one make can make the next no-change run rebuild everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinDir {
    /// `bin`, `bin-x86_64-efi`, `bin-arm64-efi`.
    pub name: &'static str,
    /// What its ELF files are.
    pub arch: Arch,
    /// `CROSS=` for make (the cross toolchain's prefix), when not the host's compiler.
    pub cross: Option<&'static str>,
}

/// `bin/`: 32-bit PC BIOS.
pub const BIN_BIOS: BinDir = BinDir {
    name: "bin",
    arch: Arch::I386,
    cross: None,
};
/// `bin-x86_64-efi/`: 64-bit UEFI.
pub const BIN_X86_64_EFI: BinDir = BinDir {
    name: "bin-x86_64-efi",
    arch: Arch::X86_64,
    cross: None,
};
/// `bin-arm64-efi/`: AArch64 UEFI, with Debian's `gcc-aarch64-linux-gnu`.
pub const BIN_ARM64_EFI: BinDir = BinDir {
    name: "bin-arm64-efi",
    arch: Arch::Arm64,
    cross: Some("aarch64-linux-gnu-"),
};

/// What an image is, as the manifest names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// iPXE `.mrom`: a small legacy stub that loads its payload from the ROM BAR in
    /// pieces, for NICs whose ROM BAR is smaller than the image (Mellanox).
    LegacyMrom,
    /// A plain legacy BIOS option ROM.
    LegacyRom,
    /// A UEFI option ROM (0x0EF1 image around an EFI driver).
    EfiRom,
    /// A legacy image followed by a UEFI image in one ROM, packed by sixboot.
    Combined,
    /// A Linux-kernel-format iPXE (for `qemu -kernel`, GRUB, PXELINUX).
    Lkrn,
    /// An EFI application (for chainloading, UEFI PXE/HTTP Boot, or a boot entry).
    EfiApp,
}

impl Kind {
    /// Whether `rom verify` applies: everything that is a PCI option ROM.
    pub fn is_option_rom(self) -> bool {
        matches!(
            self,
            Kind::LegacyMrom | Kind::LegacyRom | Kind::EfiRom | Kind::Combined
        )
    }

    /// Whether it is the legacy half of a combined image.
    pub fn is_legacy_rom(self) -> bool {
        matches!(self, Kind::LegacyMrom | Kind::LegacyRom)
    }

    /// The manifest's name (`legacy-mrom`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::LegacyMrom => "legacy-mrom",
            Kind::LegacyRom => "legacy-rom",
            Kind::EfiRom => "efi-rom",
            Kind::Combined => "combined",
            Kind::Lkrn => "lkrn",
            Kind::EfiApp => "efi-app",
        }
    }
}

/// Which network driver an image must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// This NIC driver's `struct pci_driver` must be linked in (`golan_driver`).
    Nic(&'static str),
    /// `snponly`: the firmware's SNP is the driver; `snponly_driver` (an EFI driver)
    /// must be linked in and no PCI NIC driver at all.
    SnpOnly,
}

/// A build tree: one exported, patched copy of the source per distinct set of compiler
/// flags (make does not notice changed flags, so flags never change inside a tree).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreeSpec {
    /// Short name, part of the directory name (`ipxe`, `cx3-flash`).
    pub name: String,
    /// `EXTRA_CFLAGS` for every make in the tree.
    pub flags: String,
}

/// A flavour's extra proof about an image, beyond the checks every image gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// These symbols must all be linked in (FlexBoot's exact IPv6 set).
    Symbols(Vec<&'static str>),
    /// `sixboot_default_ip_ver` holds `value` and its address occurs in the code of
    /// `reader`, the function that fills the port defaults (FlexBoot patch 0002).
    DefaultIpVer {
        /// The function that must load the value.
        reader: &'static str,
        /// The boot IP version (1: IPv6).
        value: u8,
    },
    /// This text (the banner) is in a loaded section; the smoke boot waits for it too.
    Banner(String),
}

/// One image that make builds, and what must be proved about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The `--target` it belongs to.
    pub target: Target,
    /// The tree it is built in.
    pub tree: TreeSpec,
    /// Its build directory.
    pub bin_dir: BinDir,
    /// File name inside the build directory.
    pub file: String,
    /// Its path in the package (`cx3/15b31003.mrom`).
    pub package_file: String,
    /// What it is.
    pub kind: Kind,
    /// The PCI ID an option ROM must carry.
    pub pci_id: Option<PciId>,
    /// The driver that must (or must not) be linked in.
    pub driver: Driver,
    /// The flavour's extra proofs.
    pub proofs: Vec<Proof>,
    /// Boot it in QEMU with `-option-rom` before it is packaged (FlexBoot smoke test).
    pub smoke_boot: bool,
    /// Never booted on real hardware here: marked in the manifest and BURN.md.
    pub experimental: bool,
}

impl Output {
    /// The make target, relative to the tree's `src/`.
    pub fn make_target(&self) -> String {
        format!("{}/{}", self.bin_dir.name, self.file)
    }

    /// The linked ELF that make keeps for this image (`.PRECIOUS`), relative to `src/`:
    /// an `.efirom` is made from `<name>.efidrv`, everything else from `<file>.tmp`.
    pub fn elf_intermediate(&self) -> String {
        match self.file.strip_suffix(".efirom") {
            Some(stem) => format!("{}/{stem}.efidrv.tmp", self.bin_dir.name),
            None => format!("{}/{}.tmp", self.bin_dir.name, self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_print_in_both_forms() {
        let id = PciId::new(0x15b3, 0x1015);
        assert_eq!(id.to_string(), "15b3:1015");
        assert_eq!(file_stem(id), "15b31015");
    }

    #[test]
    fn only_connectx3_names_its_settings_per_port() {
        assert!(mellanox(0x1003).per_port_settings);
        assert!(mellanox(0x1007).per_port_settings);
        assert!(NICS[2..].iter().all(|nic| !nic.per_port_settings));
    }

    #[test]
    fn the_nic_table_has_every_connectx_id_golan_lists_at_the_pin() {
        // `PCI_ROM` lines of drivers/infiniband/golan.c and hermon.c at 0ab2277c4
        // (the real build test checks the built ROMs against these IDs too).
        let ids: Vec<String> = NICS.iter().map(|n| n.pci_id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "15b3:1003",
                "15b3:1007",
                "15b3:1013",
                "15b3:1015",
                "15b3:1017",
                "15b3:1019",
                "15b3:101b",
                "15b3:101d",
                "15b3:101f",
                "15b3:1021"
            ]
        );
    }
}

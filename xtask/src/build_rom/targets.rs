//! What each `--target` builds: the iPXE make targets, the ELF intermediate iPXE keeps
//! for each, the NIC driver that must be linked in, and the PCI IDs a ROM must carry.

use std::fmt;

use clap::ValueEnum;
use serde::Serialize;
pub use sixboot::rom::PciId;

/// A group of images for one kind of hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Mellanox ConnectX-3 / ConnectX-3 Pro (15b3:1003, 15b3:1007), `hermon` driver.
    Cx3,
    /// Mellanox ConnectX-4 / ConnectX-4 Lx (15b3:1013, 15b3:1015), `golan` driver.
    Cx4,
    /// QEMU's virtio-net-pci (1af4:1000) plus `ipxe.lkrn` and `ipxe.efi`.
    Qemu,
}

impl Target {
    /// Every target, in build order.
    pub const ALL: [Target; 3] = [Target::Cx3, Target::Cx4, Target::Qemu];

    /// The name on the command line and the directory in `dist/`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Cx3 => "cx3",
            Target::Cx4 => "cx4",
            Target::Qemu => "qemu",
        }
    }

    /// The images iPXE builds for this target.
    pub fn outputs(self) -> Vec<Output> {
        // A NIC's legacy ROM (`.mrom` for Mellanox, whose ROM BAR is small) and its EFI ROM.
        let roms = |id: PciId, legacy: (&str, Kind), driver: &'static str| {
            let (extension, kind) = legacy;
            let stem = file_stem(id);
            [
                Output::new(
                    BinDir::Bios,
                    format!("{stem}.{extension}"),
                    kind,
                    Some(id),
                    driver,
                ),
                Output::new(
                    BinDir::Efi,
                    format!("{stem}.efirom"),
                    Kind::EfiRom,
                    Some(id),
                    driver,
                ),
            ]
        };
        let mellanox = |device: u16, driver: &'static str| {
            roms(
                PciId::new(0x15b3, device),
                ("mrom", Kind::LegacyMrom),
                driver,
            )
        };
        match self {
            Target::Cx3 => [
                mellanox(0x1003, "hermon_driver"),
                mellanox(0x1007, "hermon_driver"),
            ]
            .concat(),
            Target::Cx4 => [
                mellanox(0x1013, "golan_driver"),
                mellanox(0x1015, "golan_driver"),
            ]
            .concat(),
            Target::Qemu => {
                let driver = "virtio_net_driver";
                let virtio = PciId::new(0x1af4, 0x1000);
                let mut outputs = roms(virtio, ("rom", Kind::LegacyRom), driver).to_vec();
                outputs.push(Output::new(
                    BinDir::Bios,
                    "ipxe.lkrn".into(),
                    Kind::Lkrn,
                    None,
                    driver,
                ));
                outputs.push(Output::new(
                    BinDir::Efi,
                    "ipxe.efi".into(),
                    Kind::EfiApp,
                    None,
                    driver,
                ));
                outputs
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// iPXE's file-name form of a PCI ID: `15b31003`.
pub fn file_stem(id: PciId) -> String {
    format!("{:04x}{:04x}", id.vendor, id.device)
}

/// An iPXE build directory: each gets its own make call, because building targets of
/// two directories in one make can make the next no-change run rebuild everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BinDir {
    /// `bin/`: 32-bit PC BIOS.
    Bios,
    /// `bin-x86_64-efi/`: 64-bit UEFI.
    Efi,
}

impl BinDir {
    /// Both directories, in build order.
    pub const ALL: [BinDir; 2] = [BinDir::Bios, BinDir::Efi];

    /// The directory name under iPXE's `src/`.
    pub fn dir(self) -> &'static str {
        match self {
            BinDir::Bios => "bin",
            BinDir::Efi => "bin-x86_64-efi",
        }
    }
}

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
    /// An EFI application (for chainloading or a UEFI boot entry).
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
}

/// One image that make builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its build directory.
    pub bin_dir: BinDir,
    /// File name inside it, also its name in `dist/<target>/`.
    pub file: String,
    /// What it is.
    pub kind: Kind,
    /// The PCI ID an option ROM must carry.
    pub pci_id: Option<PciId>,
    /// The driver symbol that must be linked in.
    pub driver_symbol: &'static str,
}

impl Output {
    fn new(
        bin_dir: BinDir,
        file: String,
        kind: Kind,
        pci_id: Option<PciId>,
        driver_symbol: &'static str,
    ) -> Output {
        Output {
            bin_dir,
            file,
            kind,
            pci_id,
            driver_symbol,
        }
    }

    /// The make target, relative to iPXE's `src/`.
    pub fn make_target(&self) -> String {
        format!("{}/{}", self.bin_dir.dir(), self.file)
    }

    /// The linked ELF that iPXE keeps for this image (`.PRECIOUS`), relative to `src/`:
    /// an `.efirom` is made from `<name>.efidrv`, everything else from `<file>.tmp`.
    pub fn elf_intermediate(&self) -> String {
        match self.file.strip_suffix(".efirom") {
            Some(stem) => format!("{}/{stem}.efidrv.tmp", self.bin_dir.dir()),
            None => format!("{}/{}.tmp", self.bin_dir.dir(), self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cx3_builds_legacy_and_efi_roms_for_both_device_ids() {
        let targets: Vec<String> = Target::Cx3
            .outputs()
            .iter()
            .map(Output::make_target)
            .collect();
        assert_eq!(
            targets,
            [
                "bin/15b31003.mrom",
                "bin-x86_64-efi/15b31003.efirom",
                "bin/15b31007.mrom",
                "bin-x86_64-efi/15b31007.efirom"
            ]
        );
    }

    #[test]
    fn qemu_builds_the_virtio_roms_and_both_loaders() {
        let outputs = Target::Qemu.outputs();
        let files: Vec<&str> = outputs.iter().map(|o| o.file.as_str()).collect();
        assert_eq!(
            files,
            ["1af41000.rom", "1af41000.efirom", "ipxe.lkrn", "ipxe.efi"]
        );
        assert!(outputs
            .iter()
            .all(|o| o.driver_symbol == "virtio_net_driver"));
    }

    #[test]
    fn elf_intermediates_follow_ipxe_naming() {
        let outputs = Target::Cx4.outputs();
        assert_eq!(outputs[0].elf_intermediate(), "bin/15b31013.mrom.tmp");
        assert_eq!(
            outputs[1].elf_intermediate(),
            "bin-x86_64-efi/15b31013.efidrv.tmp"
        );
    }

    #[test]
    fn pci_ids_print_in_both_forms() {
        let id = PciId::new(0x15b3, 0x1015);
        assert_eq!(id.to_string(), "15b3:1015");
        assert_eq!(file_stem(id), "15b31015");
    }
}

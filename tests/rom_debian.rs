//! The ROM library against real ROMs no one here wrote: Debian's `ipxe-qemu` and `ipxe`
//! packages, and iPXE's own `catrom.pl`/`fixrom.pl` as the reference for packing.

mod rom_support;

use rom_support::{debian_roms, ipxe_util_dir, read_or_skip, EFI_VIRTIO};
use sixboot::rom::{pack, ImageKind, PackOptions, PciId, Rom};

/// The PCI IDs each Debian ROM's images carry, per image, read from the files with a
/// separate script (Python `struct`) when this test was written. QEMU stamps the device's
/// own ID into the first image when it loads a ROM (`pci_patch_ids` in hw/pci/pci.c), which
/// is why efi-virtio.rom, built for 1af4:1041, also serves the transitional 1af4:1000.
const EXPECTED_IDS: &[(&str, &[(u16, u16)])] = &[
    ("efi-e1000.rom", &[(0x8086, 0x100e), (0x8086, 0x100e)]),
    ("efi-e1000e.rom", &[(0x8086, 0x10d3), (0x8086, 0x10d3)]),
    ("efi-eepro100.rom", &[(0x8086, 0x1229), (0x8086, 0x1229)]),
    ("efi-ne2k_pci.rom", &[(0x0000, 0x0000), (0xfff3, 0x0000)]),
    ("efi-pcnet.rom", &[(0x1022, 0x2000), (0x1022, 0x2000)]),
    ("efi-rtl8139.rom", &[(0x10ec, 0x8139), (0x10ec, 0x8139)]),
    ("efi-virtio.rom", &[(0x1af4, 0x1041), (0x1af4, 0x1041)]),
    ("efi-vmxnet3.rom", &[(0x15ad, 0x07b0), (0x15ad, 0x07b0)]),
    ("pxe-e1000.rom", &[(0x8086, 0x100e)]),
    ("pxe-e1000e.rom", &[(0x8086, 0x10d3)]),
    ("pxe-eepro100.rom", &[(0x8086, 0x1229)]),
    ("pxe-ne2k_pci.rom", &[(0x0000, 0x0000)]),
    ("pxe-pcnet.rom", &[(0x1022, 0x2000)]),
    ("pxe-rtl8139.rom", &[(0x10ec, 0x8139)]),
    ("pxe-virtio.rom", &[(0x1af4, 0x1041)]),
    ("pxe-vmxnet3.rom", &[(0x15ad, 0x07b0)]),
];

#[test]
fn every_debian_rom_parses_with_every_image_checksum_and_true_pci_id() {
    let roms = debian_roms();
    if roms.is_empty() {
        sixboot_lab::need::missing(
            "no ROMs under /usr/lib/ipxe (Debian packages ipxe-qemu and ipxe)",
        );
        return;
    }
    let mut n_checked = 0;
    for path in &roms {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).unwrap();
        let rom = Rom::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            rom.verify(None).is_empty(),
            "{name}: {:?}",
            rom.verify(None)
        );
        assert_eq!(rom.trailing, None, "{name}");
        assert!(rom.mlx_versions.is_empty(), "{name}");

        // The images tile the file exactly, and only the final one is marked last.
        let mut offset = 0;
        for (i, image) in rom.images.iter().enumerate() {
            assert_eq!(image.offset, offset, "{name} image {i}");
            assert_eq!(
                image.range,
                offset..offset + image.length,
                "{name} image {i}"
            );
            assert_eq!(
                image.is_last(),
                i + 1 == rom.images.len(),
                "{name} image {i}"
            );
            offset += image.length;
        }
        assert_eq!(offset, bytes.len(), "{name}");

        // Legacy checksums, computed here independently of the library.
        for image in rom.images.iter().filter(|i| i.kind == ImageKind::Legacy) {
            let size = usize::from(bytes[image.offset + 2]) * 512;
            let sum = bytes[image.offset..image.offset + size]
                .iter()
                .fold(0u8, |a, b| a.wrapping_add(*b));
            assert_eq!(sum, 0, "{name}: legacy checksum");
            let checksum = image
                .checksum
                .as_ref()
                .expect("legacy image has a checksum");
            assert!(checksum.ok && checksum.len == size, "{name}: {checksum:?}");
            for (header, ok) in [
                ("PnP", image.pnp.as_ref().map(|h| h.checksum_ok)),
                ("UNDI", image.undi.as_ref().map(|h| h.checksum_ok)),
                ("iPXE", image.ipxe.as_ref().map(|h| h.checksum_ok)),
            ] {
                assert_eq!(ok, Some(true), "{name}: {header} header");
            }
        }

        let kinds: Vec<ImageKind> = rom.images.iter().map(|i| i.kind).collect();
        if name.starts_with("efi-") {
            assert_eq!(kinds, [ImageKind::Legacy, ImageKind::Efi], "{name}");
            let efi = rom.images[1].efi.as_ref().expect("EFI header");
            assert_eq!(efi.machine, 0x8664, "{name}");
            let pe = efi.pe.as_ref().expect("uncompressed PE read with goblin");
            assert_eq!((pe.machine, pe.subsystem), (0x8664, 11), "{name}");
            assert!(pe.pe32_plus && pe.entry_point > 0, "{name}: {pe:?}");
        } else {
            assert_eq!(kinds, [ImageKind::Legacy], "{name}");
        }

        if let Some((_, ids)) = EXPECTED_IDS.iter().find(|(n, _)| *n == name) {
            let found: Vec<(u16, u16)> = rom
                .images
                .iter()
                .map(|i| i.pci_id().map(|id| (id.vendor, id.device)).unwrap())
                .collect();
            assert_eq!(found, *ids, "{name}");
            n_checked += 1;
        }
    }
    assert!(n_checked >= 8, "only {n_checked} ROMs matched the table");
}

#[test]
fn efi_virtio_rom_has_a_legacy_and_an_efi_image_for_virtio_net() {
    let Some(bytes) = read_or_skip(EFI_VIRTIO) else {
        return;
    };
    let rom = Rom::parse(&bytes).unwrap();
    assert_eq!(rom.images.len(), 2);
    assert_eq!((rom.images[0].offset, rom.images[1].offset), (0, 0x12800));
    let legacy = &rom.images[0];
    assert_eq!(legacy.pcir.as_ref().unwrap().device_list, [0x1041]);
    assert_eq!(legacy.pcir.as_ref().unwrap().class_code, 0x020000);
    assert_eq!(legacy.undi.as_ref().unwrap().pxe_version, (2, 1, 0));
    assert_eq!(
        legacy.pnp.as_ref().unwrap().product.as_deref(),
        Some("iPXE")
    );
    assert!(rom.verify(Some(PciId::new(0x1af4, 0x1041))).is_empty());
    // The file is not stamped for the transitional device; QEMU patches that in at load time.
    let wrong = rom.verify(Some(PciId::new(0x1af4, 0x1000)));
    assert_eq!(wrong.len(), 2, "{wrong:?}");
    assert!(wrong[0]
        .to_string()
        .contains("1af4:1041 is not the expected 1af4:1000"));
}

/// What `Rom::parse` reads from a ROM, as JSON, without what differs between two builds of
/// the same layout: the image checksum byte and iPXE's random build ID.
fn layout(bytes: &[u8]) -> serde_json::Value {
    let mut json = serde_json::to_value(Rom::parse(bytes).unwrap()).unwrap();
    for image in json["images"].as_array_mut().unwrap() {
        if let Some(checksum) = image["checksum"].as_object_mut() {
            checksum.remove("stored");
        }
        if let Some(ipxe) = image["ipxe"].as_object_mut() {
            ipxe.remove("build_id");
        }
    }
    json
}

#[test]
fn the_rom_the_tests_build_has_the_layout_of_debian_efi_virtio_rom() {
    // The corruption, proptest and CLI suites run on both with the same expected
    // messages; this is what makes those messages true for the built one.
    let Some(debian) = read_or_skip(EFI_VIRTIO) else {
        return;
    };
    assert_eq!(layout(&rom_support::built_virtio_rom()), layout(&debian));
}

#[test]
fn every_debian_rom_splits_and_packs_back_byte_for_byte() {
    let roms = debian_roms();
    if roms.is_empty() {
        sixboot_lab::need::missing(
            "no ROMs under /usr/lib/ipxe (Debian packages ipxe-qemu and ipxe)",
        );
        return;
    }
    for path in &roms {
        let bytes = std::fs::read(path).unwrap();
        let rom = Rom::parse(&bytes).unwrap();
        let images: Vec<&[u8]> = rom.images.iter().map(|i| i.bytes(&bytes)).collect();
        let packed = pack(&images, &PackOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(packed == bytes, "{} did not round-trip", path.display());
    }
}

#[test]
fn pack_stamps_ids_and_version_and_the_result_verifies() {
    let Some(bytes) = read_or_skip(EFI_VIRTIO) else {
        return;
    };
    let rom = Rom::parse(&bytes).unwrap();
    let images: Vec<&[u8]> = rom.images.iter().map(|i| i.bytes(&bytes)).collect();
    let id = PciId::new(0x15b3, 0x1013);
    let packed = pack(
        &images,
        &PackOptions {
            pci_id: Some(id),
            version: Some((3, 4, 812)),
        },
    )
    .unwrap();
    let out = Rom::parse(&packed).unwrap();
    assert!(
        out.verify(Some(id)).is_empty(),
        "{:?}",
        out.verify(Some(id))
    );
    assert_eq!(out.images.len(), 2);
    for image in &out.images {
        assert_eq!(image.pci_id(), Some(id));
    }
    // Nothing but the two IDs, the checksum byte and the trailer changed.
    let changed: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i] != packed[i])
        .collect();
    let pcir0 = 0x1c;
    let pcir1 = 0x12800 + 0x1c;
    for i in &changed {
        let in_ids = (pcir0 + 4..pcir0 + 8).contains(i) || (pcir1 + 4..pcir1 + 8).contains(i);
        assert!(in_ids || *i == 6, "unexpected change at {i:#x}");
    }
    assert!(changed.contains(&6), "the legacy checksum was not fixed");
    assert_eq!(packed.len(), bytes.len() + 40);
    let versions: Vec<(&str, &str, Option<u16>)> = out
        .mlx_versions
        .iter()
        .map(|v| (v.product_name(), v.version.as_str(), v.device_id))
        .collect();
    assert_eq!(
        versions,
        [
            ("PXE", "3.4.812", Some(0x1013)),
            ("UEFI", "3.4.812", Some(0x1013))
        ]
    );
}

/// Runs one of iPXE's Perl ROM tools with `args`, returning its stdout.
fn ipxe_tool(util: &std::path::Path, tool: &str, args: &[&std::path::Path]) -> Vec<u8> {
    let out = std::process::Command::new("perl")
        .arg(util.join(tool))
        .args(args)
        .output()
        .expect("run perl");
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn pack_matches_ipxe_catrom_and_fixrom_on_the_same_inputs() {
    let Some(util) = ipxe_util_dir() else {
        return;
    };
    let Some(virtio) = read_or_skip(EFI_VIRTIO) else {
        return;
    };
    let Some(e1000) = read_or_skip("/usr/lib/ipxe/qemu/pxe-e1000.rom") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A legacy ROM from one file and the EFI image of another, as the build combines them.
    let rom = Rom::parse(&virtio).unwrap();
    let efi = &virtio[rom.images[1].range.clone()];
    let legacy_path = dir.path().join("legacy.rom");
    let efi_path = dir.path().join("efi.rom");
    std::fs::write(&legacy_path, &e1000).unwrap();
    std::fs::write(&efi_path, efi).unwrap();
    let catrom = ipxe_tool(&util, "catrom.pl", &[&legacy_path, &efi_path]);
    let ours = pack(&[&e1000, efi], &PackOptions::default()).unwrap();
    assert!(ours == catrom, "pack and catrom.pl differ");

    // Break every checksum fixrom.pl knows about, then let both repair it.
    let mut broken = e1000.clone();
    let legacy = Rom::parse(&e1000).unwrap().images.remove(0);
    for at in [
        6,
        legacy.pnp.unwrap().offset + 9,
        legacy.undi.unwrap().offset + 5,
        legacy.ipxe.unwrap().offset + 5,
    ] {
        broken[at] ^= 0x5a;
    }
    assert!(!Rom::parse(&broken).unwrap().findings.is_empty());
    let broken_path = dir.path().join("broken.rom");
    std::fs::write(&broken_path, &broken).unwrap();
    ipxe_tool(&util, "fixrom.pl", &[&broken_path]);
    let fixrom = std::fs::read(&broken_path).unwrap();
    let ours = pack(&[&broken], &PackOptions::default()).unwrap();
    assert!(ours == fixrom, "pack and fixrom.pl differ");
    assert!(ours == e1000, "repair did not restore the original");
}

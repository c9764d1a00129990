//! Broken ROMs: each corruption of a ROM gives a finding that names the image, the offset
//! and the problem, and nothing panics. Every case runs on the ROM built here with
//! `rom::pack` and, when installed, on Debian's efi-virtio.rom, which has the same layout.

mod rom_support;

use rom_support::{get_u16, put_u16, virtio_roms};
use sixboot::rom::{pack, ImageKind, PackOptions, PciId, Problem, Rom, RomError};

const EFI_IMAGE: usize = 0x12800;
const PCIR: usize = 0x1c;

/// The findings' Display strings, for asserting on what a user would read.
fn messages(bytes: &[u8]) -> Vec<String> {
    let rom = Rom::parse(bytes).expect("still ROM-like");
    rom.verify(None).iter().map(|f| f.to_string()).collect()
}

fn codes(bytes: &[u8]) -> Vec<&'static str> {
    let rom = Rom::parse(bytes).expect("still ROM-like");
    rom.verify(None).iter().map(|f| f.problem.code()).collect()
}

#[test]
fn the_rom_built_with_pack_is_a_clean_legacy_plus_efi_rom() {
    let bytes = rom_support::built_virtio_rom();
    let rom = Rom::parse(&bytes).unwrap();
    let kinds: Vec<ImageKind> = rom.images.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ImageKind::Legacy, ImageKind::Efi]);
    assert_eq!(rom.images[1].offset, EFI_IMAGE);
    assert!(rom.verify(Some(rom_support::VIRTIO_ID)).is_empty());
    let legacy = &rom.images[0];
    assert!(legacy.pnp.is_some() && legacy.undi.is_some() && legacy.ipxe.is_some());
    let pe = rom.images[1].efi.as_ref().unwrap().pe.as_ref().unwrap();
    assert!(pe.pe32_plus && pe.machine == sixboot::rom::MACHINE_X64);
    let legacy_only = Rom::parse(&rom_support::built_legacy_rom()).unwrap();
    assert_eq!(legacy_only.images.len(), 1);
    assert!(legacy_only.verify(Some(rom_support::RTL8139_ID)).is_empty());
}

#[test]
fn flipped_checksum_byte_is_reported_with_the_byte_it_should_be() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        let good = bytes[6];
        bytes[6] ^= 0x01;
        let found = messages(&bytes);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert!(
            found[0].starts_with("image 0 at 0x0: checksum over the first 0x12800 bytes sums to"),
            "{name}: {}",
            found[0]
        );
        assert!(
            found[0].contains(&format!("should be {good:#04x}")),
            "{name}: {}",
            found[0]
        );
        // pack repairs exactly that byte.
        let repaired = pack(&[&bytes], &PackOptions::default()).unwrap();
        assert_eq!(repaired, original, "{name}");
    }
}

#[test]
fn flipped_byte_in_the_efi_image_is_not_a_checksum_problem() {
    for (name, original) in virtio_roms() {
        // EFI images carry no checksum (PCI FW spec 5.2; fixrom.pl skips them too).
        let mut bytes = original.clone();
        bytes[EFI_IMAGE + 0x1000] ^= 0xff;
        assert!(codes(&bytes).is_empty(), "{name}: {:?}", messages(&bytes));
    }
}

#[test]
fn truncated_file_reports_the_image_that_runs_past_the_end() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        let cut = &bytes[..0x20000];
        let rom = Rom::parse(cut).unwrap();
        assert_eq!(rom.images.len(), 2, "{name}");
        assert_eq!(rom.images[1].range, EFI_IMAGE..0x20000, "{name}");
        let found = messages(cut);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(
            found[0],
            "image 1 at 0x12800: PCIR image length 0x2a600 (339 × 512) runs past the end of the file \
             (0xd800 bytes left): the file is truncated or the length is wrong",
            "{name}"
        );
    }
}

#[test]
fn file_cut_inside_the_legacy_checksum_range_reports_size_and_length() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        let found = codes(&bytes[..0x1000]);
        assert!(
            found.contains(&"image-length-past-end"),
            "{name}: {found:?}"
        );
        assert!(found.contains(&"size-past-end"), "{name}: {found:?}");
    }
}

#[test]
fn file_cut_inside_the_header_or_before_the_signature() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        assert_eq!(codes(&bytes[..0x1b]), ["header-truncated"], "{name}");
        for len in [0, 1] {
            let err = Rom::parse(&bytes[..len]).unwrap_err();
            assert!(matches!(err, RomError::NotARom { .. }), "{name}: {err}");
        }
        let err = Rom::parse(b"\x7fELF\x02\x01\x01").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not an option ROM: it is 7 bytes long and starts with 0x7f 0x45, not 0x55 0xAA",
            "{name}"
        );
    }
}

#[test]
fn pcir_pointer_out_of_range_is_reported_in_bytes() {
    for (name, original) in virtio_roms() {
        // The EFI image, cut to 0x800 bytes, with its PCIR pointer at the top of its range.
        let mut bytes = original.clone();
        bytes.truncate(EFI_IMAGE + 0x800);
        put_u16(&mut bytes, EFI_IMAGE + 0x18, 0xfff0);
        let found = messages(&bytes);
        assert_eq!(
            found[0],
            "image 1 at 0x12800: PCIR pointer 0xfff0 points past the end of the image (the \
             structure needs 0x10008 bytes, 0x800 are there)",
            "{name}"
        );
        // Without its PCIR the image's extent falls back to the EFI initialization size.
        assert_eq!(codes(&bytes)[1..], ["size-past-end"], "{name}");
    }
}

#[test]
fn pcir_pointer_inside_file_but_past_image_length_is_reported() {
    for (name, original) in virtio_roms() {
        // A copy of the PCIR at 0x300 that says the image is one 512-byte unit long: the
        // structure is in the file but outside the image it describes.
        let mut bytes = original.clone();
        bytes.copy_within(PCIR..PCIR + 0x1c, 0x300);
        put_u16(&mut bytes, 0x18, 0x300);
        put_u16(&mut bytes, 0x300 + 0x10, 1);
        let found = codes(&bytes);
        assert!(found.contains(&"pcir-out-of-range"), "{name}: {found:?}");
        assert!(pack(&[&bytes], &PackOptions::default()).is_err(), "{name}");
    }
}

#[test]
fn bad_pcir_signature_and_misaligned_pointer_are_reported() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        bytes[PCIR] = b'X';
        assert!(codes(&bytes).contains(&"pcir-bad-signature"), "{name}");
        let mut bytes = original.clone();
        bytes.copy_within(PCIR..PCIR + 0x1c, PCIR + 2);
        put_u16(&mut bytes, 0x18, (PCIR + 2) as u16);
        assert!(
            codes(&bytes).contains(&"pcir-misaligned"),
            "{name}: {:?}",
            codes(&bytes)
        );
    }
}

#[test]
fn zero_image_length_is_reported_and_parsing_stops() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        put_u16(&mut bytes, PCIR + 0x10, 0);
        let rom = Rom::parse(&bytes).unwrap();
        assert_eq!(rom.images.len(), 1, "{name}");
        let found = codes(&bytes);
        assert!(found.contains(&"zero-image-length"), "{name}: {found:?}");
    }
}

#[test]
fn huge_length_fields_are_reported_not_trusted() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        put_u16(&mut bytes, PCIR + 0x10, 0xffff);
        let found = codes(&bytes);
        assert!(
            found.contains(&"image-length-past-end"),
            "{name}: {found:?}"
        );
        assert!(found.contains(&"legacy-too-large"), "{name}: {found:?}");

        let mut bytes = original.clone();
        put_u16(&mut bytes, EFI_IMAGE + 2, 0xffff); // EFI initialization size
        let found = codes(&bytes);
        assert_eq!(
            found,
            ["size-exceeds-image"],
            "{name}: {:?}",
            messages(&bytes)
        );

        let mut bytes = original.clone();
        let pnp = usize::from(get_u16(&bytes, 0x1a));
        bytes[pnp + 5] = 0xff; // PnP length: 255 × 16 bytes
        let found = codes(&bytes);
        assert!(found.contains(&"header-bad-checksum"), "{name}: {found:?}");
    }
}

#[test]
fn last_image_bit_missing_or_too_early_is_reported() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        bytes[EFI_IMAGE + PCIR + 0x15] = 0;
        assert_eq!(
            messages(&bytes),
            ["image 1 at 0x12800: the last image does not have the last-image bit (PCIR indicator bit 7) set; firmware would look for another image past the end of the file"],
            "{name}"
        );

        let mut bytes = original.clone();
        bytes[PCIR + 0x15] = 0x80;
        bytes[6] = bytes[6].wrapping_sub(0x80);
        let rom = Rom::parse(&bytes).unwrap();
        assert_eq!(rom.images.len(), 1, "{name}");
        assert_eq!(rom.trailing, Some(EFI_IMAGE..bytes.len()), "{name}");
        assert_eq!(codes(&bytes), ["image-after-last"], "{name}");
    }
}

#[test]
fn broken_sub_header_checksums_name_the_header() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        let rom = Rom::parse(&bytes).unwrap();
        let legacy = &rom.images[0];
        for (header, at) in [
            ("PnP", legacy.pnp.as_ref().unwrap().offset + 9),
            ("UNDI", legacy.undi.as_ref().unwrap().offset + 5),
            ("iPXE", legacy.ipxe.as_ref().unwrap().offset + 5),
        ] {
            let mut broken = bytes.clone();
            broken[at] ^= 0x10;
            // Keep the image checksum right, so the sub-header's is the only problem.
            broken[6] = broken[6].wrapping_add(bytes[at]).wrapping_sub(broken[at]);
            let found = messages(&broken);
            assert_eq!(found.len(), 1, "{name}: {header}: {found:?}");
            assert!(
                found[0].starts_with(&format!("image 0 at 0x0: {header} header at")),
                "{name}: {}",
                found[0]
            );
        }
    }
}

#[test]
fn efi_image_for_another_machine_fails_verify() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        // Header only: the PE inside still says x64.
        put_u16(&mut bytes, EFI_IMAGE + 0x0a, 0xaa64);
        let found = codes(&bytes);
        assert!(found.contains(&"efi-machine-mismatch"), "{name}: {found:?}");
        assert!(found.contains(&"efi-not-x64"), "{name}: {found:?}");
        assert!(messages(&bytes)
            .iter()
            .any(|m| m.contains("EFI image is for AArch64 (0xaa64), not x64")));
    }
}

#[test]
fn efi_signature_and_image_offset_are_checked() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        bytes[EFI_IMAGE + 4] = 0xf2;
        assert_eq!(codes(&bytes), ["efi-bad-signature"], "{name}");
        let mut bytes = original.clone();
        put_u16(&mut bytes, EFI_IMAGE + 0x16, 0x04);
        assert_eq!(codes(&bytes), ["efi-image-offset-out-of-range"], "{name}");
        let mut bytes = original.clone();
        bytes[EFI_IMAGE + 0x38] = b'Z'; // the PE's "MZ"
        assert_eq!(codes(&bytes), ["efi-pe-unreadable"], "{name}");
    }
}

#[test]
fn wrong_expected_pci_id_lists_each_image() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        let rom = Rom::parse(&bytes).unwrap();
        let found = rom.verify(Some(PciId::new(0x15b3, 0x1013)));
        assert_eq!(found.len(), 2, "{name}");
        assert_eq!(
            found[0].to_string(),
            "image 0 at 0x0: PCI ID 1af4:1041 is not the expected 15b3:1013 (device list: 1041)",
            "{name}"
        );
        assert!(
            matches!(found[1].problem, Problem::WrongPciId { .. }),
            "{name}"
        );
    }
}

#[test]
fn pack_refuses_inputs_it_cannot_repair_and_versions_that_do_not_fit() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        let cut = &bytes[..0x20000];
        let err = pack(&[cut], &PackOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("input 0 cannot be packed: image 1 at 0x12800: PCIR image length"),
            "{name}: {err}"
        );
        let err = pack(&[b"MZ"], &PackOptions::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("input 0 is not an option ROM"),
            "{name}: {err}"
        );
        let err = pack(&[], &PackOptions::default()).unwrap_err();
        assert!(matches!(err, RomError::NoImages), "{name}");
        let err = pack(
            &[&bytes],
            &PackOptions {
                pci_id: None,
                version: Some((256, 0, 0)),
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("major and minor at most 255"),
            "{name}: {err}"
        );

        // A file that already has a version trailer must be split first, not silently re-versioned.
        let versioned = pack(
            &[&bytes],
            &PackOptions {
                pci_id: None,
                version: Some((1, 2, 3)),
            },
        )
        .unwrap();
        let err = pack(&[&versioned], &PackOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("sixboot rom split"),
            "{name}: {err}"
        );
    }
}

#[test]
fn pack_refuses_an_efi_image_that_is_not_x64() {
    for (name, original) in virtio_roms() {
        let mut bytes = original.clone();
        put_u16(&mut bytes, EFI_IMAGE + 0x0a, 0x014c);
        let err = pack(&[&bytes], &PackOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("EFI header says machine 0x14c"),
            "{name}: {text}"
        );
    }
}

#[test]
fn version_record_for_another_device_fails_verify_for_this_one() {
    for (name, original) in virtio_roms() {
        let bytes = original.clone();
        let cx4 = PciId::new(0x15b3, 0x1013);
        let packed = pack(
            &[&bytes],
            &PackOptions {
                pci_id: Some(cx4),
                version: Some((1, 0, 0)),
            },
        )
        .unwrap();
        let rom = Rom::parse(&packed).unwrap();
        assert!(rom.verify(Some(cx4)).is_empty(), "{name}");
        // Another device (ConnectX-4 Lx): each image and each version record is reported.
        let found = rom.verify(Some(PciId::new(0x15b3, 0x1015)));
        let found: Vec<&str> = found.iter().map(|f| f.problem.code()).collect();
        assert_eq!(
            found,
            [
                "wrong-pci-id",
                "wrong-pci-id",
                "mlxsign-wrong-device",
                "mlxsign-wrong-device"
            ],
            "{name}"
        );
    }
}

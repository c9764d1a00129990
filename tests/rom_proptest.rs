//! Property tests: no input makes the ROM library panic, and whatever `pack` returns
//! verifies. Case counts default to what CI can afford in seconds; `PROPTEST_CASES=N`
//! overrides every test here (the 1,000,000-case run is recorded in the issue note).

mod rom_support;

use std::sync::OnceLock;

use proptest::prelude::*;
use sixboot::rom::{pack, PackOptions, PciId, Rom};

fn config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = None;
    config
}

/// ROMs to mutate: the ones built here with `rom::pack` (a combined legacy + EFI ROM and a
/// legacy-only one, see `rom_support`), and Debian's two real ones with the same layouts
/// when `ipxe-qemu` is installed.
fn roms_to_mutate() -> &'static [Vec<u8>] {
    static ROMS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROMS.get_or_init(|| {
        let mut roms = vec![
            rom_support::built_virtio_rom(),
            rom_support::built_legacy_rom(),
        ];
        roms.extend(
            [
                rom_support::EFI_VIRTIO,
                "/usr/lib/ipxe/qemu/pxe-rtl8139.rom",
            ]
            .iter()
            .filter_map(|p| std::fs::read(p).ok()),
        );
        roms
    })
}

/// Everything a caller can do with untrusted bytes, with the invariants that must hold.
/// `thorough` also packs the whole file and packs without options (cheap for small inputs,
/// slow for whole ROMs in a debug build).
fn exercise(bytes: &[u8], thorough: bool) {
    let Ok(rom) = Rom::parse(bytes) else {
        return;
    };
    let mut end = 0;
    for image in &rom.images {
        assert!(image.range.start >= end && image.range.end <= bytes.len());
        assert!(image.range.start == image.offset && image.range.end >= image.range.start);
        end = image.range.end;
    }
    for finding in rom.verify(Some(PciId::new(0x15b3, 0x1013))) {
        assert!(!finding.to_string().is_empty());
    }
    serde_json::to_string(&rom).expect("JSON");
    let images: Vec<&[u8]> = rom.images.iter().map(|i| &bytes[i.range.clone()]).collect();
    let stamped = PackOptions {
        pci_id: Some(PciId::new(0x15b3, 0x1015)),
        version: Some((1, 2, 3)),
    };
    let all_options = [stamped, PackOptions::default()];
    let all_inputs = [images.clone(), vec![bytes]];
    let n = if thorough { 2 } else { 1 };
    for opts in &all_options[..n] {
        for input in &all_inputs[..n] {
            if let Ok(out) = pack(input, opts) {
                let packed = Rom::parse(&out).expect("pack output parses");
                assert!(packed.verify(opts.pci_id).is_empty());
                assert_eq!(packed.images.len(), rom.images.len());
            }
        }
    }
}

/// A header that gets past the signature check, with small, often-valid fields, so the
/// generator reaches PCIR, PnP, UNDI, iPXE and EFI parsing rather than stopping at byte 0.
fn rom_like() -> impl Strategy<Value = Vec<u8>> {
    (
        (0x1cusize..3000, any::<u64>()).prop_map(|(len, seed)| rom_support::noise(len, seed)),
        0u8..8,                                                            // size byte
        prop::sample::select(vec![0u16, 0x1c, 0x20, 0x40, 0x1ff, 0xfff0]), // PCIR pointer
        prop::sample::select(vec![0u8, 3, 0xff, 1]),                       // code type
        0u16..10,                                                          // image length units
        any::<bool>(),                                                     // last image
        any::<bool>(),                                                     // EFI signature
        prop::collection::vec((0usize..3000, any::<u8>()), 0..8),
    )
        .prop_map(|(mut b, size, pcir, code, units, last, efi, pokes)| {
            b[0] = 0x55;
            b[1] = 0xaa;
            b[2] = size;
            b[0x18..0x1a].copy_from_slice(&pcir.to_le_bytes());
            if efi {
                b[4..8].copy_from_slice(&0x0ef1u32.to_le_bytes());
            }
            let p = usize::from(pcir);
            if p > 0 && p + 0x18 <= b.len() {
                b[p..p + 4].copy_from_slice(b"PCIR");
                b[p + 0x0a..p + 0x0c].copy_from_slice(&0x1cu16.to_le_bytes());
                b[p + 0x10..p + 0x12].copy_from_slice(&units.to_le_bytes());
                b[p + 0x14] = code;
                b[p + 0x15] = if last { 0x80 } else { 0 };
            }
            for (at, value) in pokes {
                if at < b.len() {
                    b[at] = value;
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        mut bytes in prop::collection::vec(any::<u8>(), 0..600),
        magic_at in prop::option::of(any::<prop::sample::Index>()),
    ) {
        // Now and then an mlxsign: magic, possibly cut off by the end of the input.
        if let Some(index) = magic_at {
            let at = index.index(bytes.len() + 1);
            bytes.splice(at..at, *b"mlxsign:");
        }
        exercise(&bytes, true);
    }

    #[test]
    fn rom_like_bytes_never_panic(bytes in rom_like()) {
        exercise(&bytes, true);
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn mutated_roms_never_panic_and_pack_only_returns_good_roms(
        which in 0usize..4,
        // Most mutations hit the headers of the two images of the virtio ROMs (legacy at 0,
        // EFI at 0x12800) or the PCIR and EFI header fields; some land anywhere.
        pokes in prop::collection::vec(
            (prop::sample::select(vec![0usize, 0x12800]), 0usize..0x80, any::<u8>()),
            1..6,
        ),
        anywhere in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        truncate in prop::option::weighted(0.2, any::<prop::sample::Index>()),
    ) {
        let roms = roms_to_mutate();
        let mut bytes = roms[which % roms.len()].clone();
        for (base, at, value) in pokes {
            if base + at < bytes.len() {
                bytes[base + at] = value;
            }
        }
        for (index, value) in anywhere {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(index) = truncate {
            let len = index.index(bytes.len());
            bytes.truncate(len);
        }
        exercise(&bytes, false);
    }
}

//! Shared helpers for the `rom_*` integration tests: the real ROMs Debian ships.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

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

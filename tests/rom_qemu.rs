//! A stamped PCI ID is what firmware goes by: SeaBIOS in QEMU skips Debian's
//! `pxe-virtio.rom` (1af4:1041) on the transitional virtio-net device (1af4:1000) when it is
//! given as `romfile=`, and runs the same ROM once `pack` has stamped 1af4:1000 into it.
//! (QEMU rewrites the device ID only of the default ROM it picks itself: `pci_patch_ids`.)

mod rom_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sixboot::rom::{pack, PackOptions, PciId};

const PXE_VIRTIO: &str = "/usr/lib/ipxe/qemu/pxe-virtio.rom";

/// Kills QEMU when the test ends, however it ends.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots a diskless PC with one virtio-net NIC carrying `rom` and returns the serial output
/// once SeaBIOS has either run an iPXE ROM or given up ("No bootable device.").
fn boot_with_rom(rom: &Path, serial: &Path) -> String {
    let qemu = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "128",
            "-nodefaults",
        ])
        // -nographic makes QEMU tell SeaBIOS to print on the serial port (etc/sercon-port).
        .args(["-nographic", "-monitor", "none", "-no-reboot", "-serial"])
        .arg(format!("file:{}", serial.display()))
        // User-mode networking with `restrict=on`: no packet leaves QEMU.
        .args(["-netdev", "user,id=n0,restrict=on", "-device"])
        .arg(format!(
            "virtio-net-pci,netdev=n0,romfile={},bootindex=1",
            rom.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu-system-x86_64");
    let _qemu = Qemu(qemu);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(serial).unwrap_or_default()).into_owned();
        if text.contains("iPXE (PCI") || text.contains("No bootable device") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no verdict from SeaBIOS in 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn seabios_runs_a_rom_only_when_its_pci_id_is_stamped_for_the_device() {
    let Some(original) = rom_support::read_or_skip(PXE_VIRTIO) else {
        return;
    };
    if !sixboot_lab::need::program("qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stamped = pack(
        &[&original],
        &PackOptions {
            pci_id: Some(PciId::new(0x1af4, 0x1000)),
            version: None,
        },
    )
    .unwrap();
    let stamped_path: PathBuf = dir.path().join("virtio-1000.rom");
    std::fs::write(&stamped_path, stamped).unwrap();

    let (unstamped_serial, stamped_serial) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let (unstamped, stamped) = std::thread::scope(|s| {
        let a = s.spawn(|| boot_with_rom(Path::new(PXE_VIRTIO), &unstamped_serial));
        let b = s.spawn(|| boot_with_rom(&stamped_path, &stamped_serial));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        unstamped.contains("No bootable device") && !unstamped.contains("iPXE"),
        "{unstamped}"
    );
    assert!(stamped.contains("iPXE (PCI 00:"), "{stamped}");
}

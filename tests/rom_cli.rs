//! `sixboot rom …` as a user runs it: exit codes, stdout, stderr, and files left behind.
//! Each test runs on the ROM built with `rom::pack` (`rom_support`) and, when installed,
//! on Debian's efi-virtio.rom, which has the same layout.

mod rom_support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use rom_support::virtio_roms;

fn sixboot() -> Command {
    Command::cargo_bin("sixboot").unwrap()
}

/// The virtio-shaped ROMs as files in `dir` (a directory of their own, so the tests'
/// listings of their work directories stay exact): bytes and path.
fn virtio_files(dir: &Path) -> Vec<(Vec<u8>, PathBuf)> {
    virtio_roms()
        .into_iter()
        .enumerate()
        .map(|(i, (_, bytes))| {
            let path = dir.join(format!("virtio-{i}.rom"));
            std::fs::write(&path, &bytes).unwrap();
            (bytes, path)
        })
        .collect()
}

/// Names of the files in `dir`, sorted, to check that nothing (temporary) was left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn inspect_shows_both_images_of_a_virtio_rom() {
    let roms = tempfile::tempdir().unwrap();
    for (_, rom) in virtio_files(roms.path()) {
        sixboot()
            .args(["rom", "inspect"])
            .arg(&rom)
            .assert()
            .success()
            .stdout(predicate::str::contains("249344 bytes, 2 images"))
            .stdout(predicate::str::contains(
                "image 0 at 0x0: legacy x86 (BIOS), 75776 bytes (148 x 512)",
            ))
            .stdout(predicate::str::contains(
                "image 1 at 0x12800: EFI, 173568 bytes (339 x 512), last image",
            ))
            .stdout(predicate::str::contains(
                "PCI 1af4:1041 (device list: 1041)",
            ))
            .stdout(predicate::str::contains("checksum ok"))
            .stdout(predicate::str::contains("PE32+: machine x64 (0x8664)"))
            .stdout(predicate::str::contains("findings: none"));
    }
}

#[test]
fn inspect_json_is_machine_readable() {
    let roms = tempfile::tempdir().unwrap();
    for (_, rom) in virtio_files(roms.path()) {
        let out = sixboot()
            .args(["rom", "inspect", "--json"])
            .arg(&rom)
            .output()
            .unwrap();
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let images = json["rom"]["images"].as_array().unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0]["kind"], "legacy");
        assert_eq!(images[1]["kind"], "efi");
        assert_eq!(images[1]["offset"], 0x12800);
        assert_eq!(images[0]["pcir"]["vendor"], 0x1af4);
        assert_eq!(images[0]["pcir"]["device"], 0x1041);
        assert_eq!(images[0]["checksum"]["ok"], true);
        assert_eq!(images[1]["efi"]["pe"]["machine"], 0x8664);
        assert_eq!(json["rom"]["findings"].as_array().unwrap().len(), 0);
        assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn verify_passes_a_good_rom_and_its_own_pci_id() {
    let roms = tempfile::tempdir().unwrap();
    for (_, rom) in virtio_files(roms.path()) {
        sixboot()
            .args(["rom", "verify"])
            .arg(&rom)
            .args(["--device", "1af4:1041"])
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "ok (2 images: legacy + efi, all for 1af4:1041)",
            ));
    }
}

#[test]
fn verify_fails_for_another_pci_id_and_names_each_image() {
    let roms = tempfile::tempdir().unwrap();
    for (_, rom) in virtio_files(roms.path()) {
        sixboot()
            .args(["rom", "verify"])
            .arg(&rom)
            .args(["--device", "15b3:1013"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "image 0 at 0x0: PCI ID 1af4:1041 is not the expected 15b3:1013",
            ))
            .stderr(predicate::str::contains(
                "image 1 at 0x12800: PCI ID 1af4:1041 is not the expected 15b3:1013",
            ))
            .stderr(predicate::str::contains(
                "2 problems found; do not burn this ROM",
            ));
    }
}

#[test]
fn verify_fails_on_a_flipped_checksum_byte() {
    for (_, mut bytes) in virtio_roms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.rom");
        let good = bytes[6];
        bytes[6] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        sixboot()
            .args(["rom", "verify"])
            .arg(&path)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "image 0 at 0x0: checksum over the first 0x12800 bytes sums to {:#04x}, not 0 \
             (byte 6 is {:#04x}, should be {good:#04x})",
                0u8.wrapping_sub(good & 0x20).wrapping_add(!good & 0x20),
                good ^ 0x20,
            )));
    }
}

#[test]
fn verify_rejects_a_file_that_is_not_a_rom_or_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kernel");
    std::fs::write(&path, b"\x7fELF\x02\x01\x01\x00").unwrap();
    sixboot()
        .args(["rom", "verify"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: "))
        .stderr(predicate::str::contains(
            "kernel: not an option ROM: it is 8 bytes long and starts with 0x7f 0x45, not 0x55 0xAA",
        ));
    sixboot()
        .args(["rom", "inspect"])
        .arg(dir.path().join("missing.rom"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: cannot read"))
        .stderr(predicate::str::contains("missing.rom"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    sixboot()
        .args(["rom", "verify", "x.rom", "--device", "15b3-1013"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("write it as VVVV:DDDD"));
    sixboot()
        .args([
            "rom", "pack", "--efi", "x.rom", "-o", "y.rom", "--vendor", "15b3",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--device"));
    sixboot()
        .args([
            "rom",
            "pack",
            "--efi",
            "x.rom",
            "-o",
            "y.rom",
            "--version",
            "1.2",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("write it as X.Y.Z"));
    sixboot()
        .args(["rom", "pack", "-o", "y.rom"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "give --legacy FILE, --efi FILE or both",
        ));
}

/// `sixboot rom split` of a virtio ROM into `dir/parts`; then `sixboot rom pack` of those
/// parts with `extra` arguments into `dir/name`, for the caller to assert on.
fn split_and_pack(
    rom: &Path,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> assert_cmd::assert::Assert {
    let parts = dir.join("parts");
    sixboot()
        .args(["rom", "split"])
        .arg(rom)
        .arg("-o")
        .arg(&parts)
        .assert()
        .success()
        .stdout(predicate::str::contains("image-0-legacy.rom (75776 bytes)"))
        .stdout(predicate::str::contains("image-1-efi.rom (173568 bytes)"));
    assert_eq!(listing(&parts), ["image-0-legacy.rom", "image-1-efi.rom"]);
    sixboot()
        .args(["rom", "pack", "--legacy"])
        .arg(parts.join("image-0-legacy.rom"))
        .arg("--efi")
        .arg(parts.join("image-1-efi.rom"))
        .args(extra)
        .arg("-o")
        .arg(dir.join(name))
        .assert()
}

#[test]
fn split_then_pack_gives_back_the_same_bytes() {
    let roms = tempfile::tempdir().unwrap();
    for (original, rom) in virtio_files(roms.path()) {
        let dir = tempfile::tempdir().unwrap();
        split_and_pack(&rom, dir.path(), "again.rom", &[])
            .success()
            .stdout(predicate::str::contains(
                "249344 bytes, 2 images (legacy + efi)",
            ));
        assert!(
            std::fs::read(dir.path().join("again.rom")).unwrap() == original,
            "{}",
            rom.display()
        );
    }
}

#[test]
fn packed_version_is_what_mstflint_qrom_reads() {
    let roms = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut packed = Vec::new();
    for (i, (_, rom)) in virtio_files(roms.path()).into_iter().enumerate() {
        let dir = work.path().join(i.to_string());
        std::fs::create_dir(&dir).unwrap();
        let out = dir.join("cx4.rom");
        split_and_pack(
            &rom,
            &dir,
            "cx4.rom",
            &[
                "--vendor",
                "15b3",
                "--device",
                "1013",
                "--version",
                "3.4.812",
            ],
        )
        .success()
        .stdout(predicate::str::contains("PCI 15b3:1013, version 3.4.812"));
        sixboot()
            .args(["rom", "verify", "--device", "15b3:1013"])
            .arg(&out)
            .assert()
            .success();
        sixboot()
            .args(["rom", "inspect"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "type=PXE version=3.4.812 device=1013",
            ))
            .stdout(predicate::str::contains(
                "type=UEFI version=3.4.812 device=1013",
            ));
        packed.push(out);
    }

    // The reader that matters: Mellanox's own flint, from Debian's mstflint package.
    if !sixboot_lab::need::program("mstflint", "mstflint") {
        return;
    }
    for out in packed {
        let flint = std::process::Command::new("mstflint")
            .arg("-i")
            .arg(&out)
            .arg("qrom")
            .output()
            .expect("run mstflint");
        let stdout = String::from_utf8_lossy(&flint.stdout);
        assert!(
            flint.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&flint.stderr)
        );
        assert!(
            stdout.contains("Rom Info: type=PXE version=3.4.812 proto=ETH cpu=AMD64"),
            "{}: {stdout}",
            out.display()
        );
        assert!(
            stdout.contains("type=UEFI version=3.4.812 proto=ETH cpu=AMD64"),
            "{}: {stdout}",
            out.display()
        );
    }
}

#[test]
fn failed_pack_leaves_no_file_and_keeps_an_existing_one() {
    for (_, original) in virtio_roms() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.rom");
        std::fs::write(&input, &original).unwrap();

        // The version does not fit mstflint's record: nothing is written.
        sixboot()
            .args(["rom", "pack", "--legacy"])
            .arg(&input)
            .args(["--version", "300.0.0", "-o"])
            .arg(dir.path().join("out.rom"))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("major and minor at most 255"));
        assert_eq!(listing(dir.path()), ["in.rom"]);

        // A truncated input: the existing output stays as it was, and no temporary is left.
        let cut = dir.path().join("cut.rom");
        std::fs::write(&cut, &original[..0x20000]).unwrap();
        let out = dir.path().join("out.rom");
        std::fs::write(&out, b"previous").unwrap();
        sixboot()
            .args(["rom", "pack", "--legacy"])
            .arg(&cut)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "cut.rom: input 0 cannot be packed",
            ));
        assert_eq!(std::fs::read(&out).unwrap(), b"previous");
        assert_eq!(listing(dir.path()), ["cut.rom", "in.rom", "out.rom"]);

        // An output directory that does not exist: an error naming it, nothing created.
        sixboot()
            .args(["rom", "pack", "--legacy"])
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join("no/such/dir/out.rom"))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("cannot create"))
            .stderr(predicate::str::contains("no/such/dir"));
    }
}

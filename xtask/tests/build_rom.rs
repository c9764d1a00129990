//! `cargo xtask build-rom` end to end: the real iPXE build when `IPXE_SRC` is set, and
//! the input checks that fail before any build work (these need no iPXE tree).
//!
//! The real build uses the default work directory (`target/build-rom`), so its cache is
//! shared with later `cargo xtask build-rom` runs and with the QEMU test, which finds
//! `dist/qemu/1af41000.rom` after `cargo xtask build-rom --target qemu` (a cache hit).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.env_remove("IPXE_SRC");
    command
}

/// Runs build-rom with `args` in a scratch work directory, expects it to fail, and
/// returns its stderr.
fn build_rom_fails(dir: &Path, args: &[&std::ffi::OsStr]) -> String {
    let output = xtask()
        .args(["build-rom", "--no-install", "--work-dir"])
        .arg(dir.join("work"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "build-rom succeeded with {args:?}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("build-rom-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rejects_a_script_without_the_ipxe_magic_line_before_building() {
    let dir = scratch("lint");
    let script = dir.join("boot.sh");
    std::fs::write(&script, "#!/bin/sh\nchain http://2001:db8::1/x\n").unwrap();
    let stderr = build_rom_fails(&dir, &["--embed".as_ref(), script.as_os_str()]);
    assert!(
        stderr.contains(&format!(
            "{}:1: first line is `#!/bin/sh`",
            script.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(":2: `http://2001:db8::1` has an IPv6 address without brackets"),
        "{stderr}"
    );
    assert!(
        !dir.join("work/cache").exists(),
        "nothing may be built for a bad script"
    );
}

#[test]
fn rejects_an_unknown_patch_name_and_lists_the_known_ones() {
    let dir = scratch("no-patch");
    let output = xtask()
        .args([
            "build-rom",
            "--no-install",
            "--no-patch",
            "dhcp-foo",
            "--work-dir",
        ])
        .arg(dir.join("work"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--no-patch dhcp-foo: there is no such patch"),
        "{stderr}"
    );
    assert!(stderr.contains("duid-ll"), "{stderr}");
}

#[test]
fn rejects_an_ipxe_src_without_the_pinned_commit() {
    let dir = scratch("bare");
    let repo = dir.join("empty.git");
    let status = Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let stderr = build_rom_fails(&dir, &["--ipxe-src".as_ref(), repo.as_os_str()]);
    assert!(
        stderr.contains(
            "does not have the pinned iPXE commit 0ab2277c40f1de56c736b9e7db7ee23d52509ec5"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("fetch"), "{stderr}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn builds_verified_qemu_and_connectx4_roms_and_a_cache_hit_gives_the_same_bytes() {
    let Some(ipxe_src) = std::env::var_os("IPXE_SRC").filter(|v| !v.is_empty()) else {
        println!("SKIPPED: IPXE_SRC not set");
        return;
    };
    let dir = scratch("real");
    let out = dir.join("dist");
    let run = || {
        let output = xtask()
            .args([
                "build-rom",
                "--no-install",
                "--target",
                "qemu,cx4",
                "--ipxe-src",
            ])
            .arg(&ipxe_src)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "build-rom failed:\n{stdout}\n{stderr}"
        );
        stdout
    };
    run();

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["source"]["commit"],
        "0ab2277c40f1de56c736b9e7db7ee23d52509ec5"
    );
    let images = manifest["images"].as_array().unwrap();
    let files: Vec<&str> = images.iter().map(|i| i["file"].as_str().unwrap()).collect();
    for expected in [
        "qemu/1af41000.rom",
        "qemu/1af41000.efirom",
        "qemu/ipxe.lkrn",
        "qemu/ipxe.efi",
        "qemu/1af41000.combined.rom",
        "cx4/15b31013.mrom",
        "cx4/15b31013.efirom",
        "cx4/15b31013.combined.rom",
        "cx4/15b31015.mrom",
        "cx4/15b31015.efirom",
        "cx4/15b31015.combined.rom",
    ] {
        assert!(
            files.contains(&expected),
            "{expected} missing from {files:?}"
        );
    }
    let script =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ipxe-config/embed.ipxe"))
            .unwrap();
    assert_eq!(manifest["script"]["sha256"], sha256_hex(&script));

    // Every image passed the ELF checks (or was packed from images that did) and every
    // option ROM passed the ROM library's verify; the files are what the manifest says.
    let mut sums = String::new();
    for image in images {
        let file = image["file"].as_str().unwrap();
        let bytes = std::fs::read(out.join(file)).unwrap();
        assert_eq!(image["sha256"], sha256_hex(&bytes), "{file}");
        assert_eq!(image["size"], bytes.len(), "{file}");
        let checks: Vec<&str> = image["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let kind = image["kind"].as_str().unwrap();
        if kind != "combined" {
            for check in ["ipv6", "script", "patch-symbol:dhcpv6_duid_ll"] {
                assert!(checks.contains(&check), "{file}: {checks:?}");
            }
            let driver = if file.starts_with("cx4/") {
                "driver:golan_driver"
            } else {
                "driver:virtio_net_driver"
            };
            assert!(checks.contains(&driver), "{file}: {checks:?}");
        }
        if !matches!(kind, "lkrn" | "efi-app") {
            let id = image["pci_ids"][0].as_str().unwrap();
            assert!(
                checks.contains(&format!("rom-verify:{id}").as_str()),
                "{file}: {checks:?}"
            );
            let rom = sixboot::rom::Rom::parse(&bytes).unwrap();
            assert_eq!(rom.verify(Some(id.parse().unwrap())), vec![], "{file}");
        }
        sums.push_str(&format!("{}  {file}\n", sha256_hex(&bytes)));
    }
    assert_eq!(
        std::fs::read_to_string(out.join("SHA256SUMS")).unwrap(),
        sums
    );
    let burn = std::fs::read_to_string(out.join("BURN.md")).unwrap();
    assert!(
        burn.contains("mstflint -d <pci> brom cx4/15b31013.combined.rom"),
        "{burn}"
    );
    assert!(burn.contains("EXP_ROM_UEFI_x86_ENABLE=1"), "{burn}");

    // The combined image holds the legacy and the EFI image, each with the PCI ID.
    let combined =
        sixboot::rom::Rom::parse(&std::fs::read(out.join("qemu/1af41000.combined.rom")).unwrap())
            .unwrap();
    assert_eq!(combined.images.len(), 2);
    assert_eq!(combined.images[1].kind, sixboot::rom::ImageKind::Efi);

    // Same inputs again: served from the cache, byte for byte the same package.
    let before: Vec<(String, Vec<u8>)> = [
        "manifest.json",
        "SHA256SUMS",
        "qemu/1af41000.rom",
        "cx4/15b31013.combined.rom",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(out.join(f)).unwrap()))
    .collect();
    let summary = run();
    assert!(
        !summary.contains(" built"),
        "second run rebuilt something:\n{summary}"
    );
    assert!(summary.contains("cached"), "{summary}");
    for (file, bytes) in before {
        assert_eq!(
            std::fs::read(out.join(&file)).unwrap(),
            bytes,
            "{file} changed"
        );
    }
}

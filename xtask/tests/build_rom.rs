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
            "{}:1: the first line is `#!/bin/sh`",
            script.display()
        )),
        "{stderr}"
    );
    // The library linter's rules (`sixboot::script::lint`): the unbracketed literal too.
    assert!(
        stderr.contains(&format!("{}:2: ", script.display())),
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

/// Runs build-rom with `args`, expects success, returns (stdout, stderr).
fn build_rom_ok(args: &[&std::ffi::OsStr]) -> (String, String) {
    let output = xtask()
        .args(["build-rom", "--no-install"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "build-rom {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn read_manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

fn checks_of(image: &serde_json::Value) -> Vec<String> {
    image["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// The images of `out` against `fixtures/rom-sha256-before-merge.json`: the SHA-256 of
/// every image the two flavours' separate pipelines built (commit d6525f7) from the same
/// inputs. When the inputs differ (a new patch, another script or config), the bytes
/// legitimately differ: then only that is reported and `None` returned. Otherwise
/// returns how many images were compared (each one equal).
fn assert_matches_the_pre_merge_images(out: &Path, flavor: &str) -> Option<usize> {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/rom-sha256-before-merge.json")).unwrap();
    let recorded = &fixture["flavors"][flavor];
    let manifest = read_manifest(out);
    let mut inputs = serde_json::json!({
        "commit": manifest["source"]["commit"],
        "patches": manifest["patches"],
        "config": manifest["config"]["sha256"],
        "script": manifest["script"]["sha256"],
    });
    // Only the inputs the fixture recorded for this flavour.
    inputs
        .as_object_mut()
        .unwrap()
        .retain(|key, _| recorded["inputs"].get(key).is_some());
    let toolchain = Command::new("gcc").arg("--version").output().unwrap();
    let gcc = String::from_utf8_lossy(&toolchain.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    if inputs != recorded["inputs"] || gcc != fixture["gcc"] {
        eprintln!(
            "inputs differ from the pre-merge fixture ({inputs} vs {}), byte identity not compared",
            recorded["inputs"]
        );
        return None;
    }
    let mut matched = 0;
    for image in manifest["images"].as_array().unwrap() {
        let file = image["file"].as_str().unwrap();
        if let Some(expected) = recorded["images"][file].as_str() {
            assert_eq!(
                image["sha256"].as_str().unwrap(),
                expected,
                "{flavor} {file} differs from the image the pre-merge pipeline built"
            );
            matched += 1;
        }
    }
    Some(matched)
}

#[test]
fn builds_verified_qemu_and_connectx4_roms_and_a_cache_hit_gives_the_same_bytes() {
    let Some(ipxe_src) = sixboot_lab::need::source("IPXE_SRC") else {
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
    // Byte for byte what the pipeline built before the flavours were merged.
    if let Some(compared) = assert_matches_the_pre_merge_images(&out, "ipxe") {
        assert_eq!(compared, 11);
    }

    let manifest = read_manifest(&out);
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
        let checks = checks_of(image);
        let checks: Vec<&str> = checks.iter().map(String::as_str).collect();
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

#[test]
fn flexboot_refuses_targets_and_options_it_does_not_have() {
    let dir = scratch("flexboot-args");
    let stderr = build_rom_fails(
        &dir,
        &[
            "--flavor".as_ref(),
            "flexboot".as_ref(),
            "--target".as_ref(),
            "cx5".as_ref(),
        ],
    );
    assert!(
        stderr.contains("FlexBoot has no target cx5 (its targets: cx3, cx4, qemu, virtio)"),
        "{stderr}"
    );
    let stderr = build_rom_fails(
        &dir,
        &[
            "--flavor".as_ref(),
            "flexboot".as_ref(),
            "--no-patch".as_ref(),
            "x".as_ref(),
        ],
    );
    assert!(
        stderr.contains("do not apply to --flavor flexboot"),
        "{stderr}"
    );
    let stderr = build_rom_fails(&dir, &["--target".as_ref(), "virtio".as_ref()]);
    assert!(stderr.contains("iPXE has no target virtio"), "{stderr}");
}

/// ConnectX-5/6/7 (every golan PCI ID), snponly.efi and the ARM64 images: built, each
/// image's ELF and ROM checked, marked experimental where never booted.
#[test]
fn builds_connectx5_to_7_snponly_and_arm64_images_and_verifies_each() {
    let Some(ipxe_src) = sixboot_lab::need::source("IPXE_SRC") else {
        return;
    };
    let dir = scratch("new-targets");
    let out = dir.join("dist");
    build_rom_ok(&[
        "--target".as_ref(),
        "cx5,cx6,cx7,snponly,arm64".as_ref(),
        "--ipxe-src".as_ref(),
        ipxe_src.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let manifest = read_manifest(&out);
    let images = manifest["images"].as_array().unwrap();
    let new_ids = ["1017", "1019", "101b", "101d", "101f", "1021"];
    for device in new_ids {
        let id = format!("15b3:{device}");
        let of_id: Vec<&serde_json::Value> = images
            .iter()
            .filter(|i| i["pci_ids"][0] == id.as_str())
            .collect();
        let kinds: Vec<&str> = of_id.iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["legacy-mrom", "efi-rom", "combined"], "{id}");
        for image in of_id {
            let file = image["file"].as_str().unwrap();
            let checks = checks_of(image);
            assert_eq!(image["experimental"], true, "{file}");
            if image["kind"] != "combined" {
                for check in ["driver:golan_driver", "ipv6", "script"] {
                    assert!(checks.contains(&check.to_string()), "{file}: {checks:?}");
                }
            }
            // What `sixboot rom verify --device 15b3:…` runs.
            let rom = sixboot::rom::Rom::parse(&std::fs::read(out.join(file)).unwrap()).unwrap();
            assert_eq!(rom.verify(Some(id.parse().unwrap())), vec![], "{file}");
            assert!(checks.contains(&format!("rom-verify:{id}")), "{file}");
        }
    }
    for target in ["cx5", "cx6", "cx7"] {
        let record = manifest["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == target)
            .unwrap();
        assert_eq!(record["experimental"], true, "{target}");
    }
    let burn = std::fs::read_to_string(out.join("BURN.md")).unwrap();
    for heading in [
        "## ConnectX-5 (15b3:1017), experimental",
        "## ConnectX-6 Dx (15b3:101d), experimental",
        "## ConnectX-7 (15b3:1021), experimental",
        "## Stock firmware: IPv6 network boot without flashing",
        "## UEFI network boot files, ARM64 (nothing to flash)",
    ] {
        assert!(burn.contains(heading), "BURN.md lacks {heading}");
    }

    let image = |file: &str| {
        images
            .iter()
            .find(|i| i["file"] == file)
            .unwrap_or_else(|| panic!("{file} missing"))
    };
    for (file, machine, pe) in [
        ("snponly/snponly.efi", "machine:x86_64", "pe:x64-efi-app"),
        ("arm64/snponly.efi", "machine:aarch64", "pe:arm64-efi-app"),
        ("arm64/ipxe.efi", "machine:aarch64", "pe:arm64-efi-app"),
    ] {
        let checks = checks_of(image(file));
        for check in [machine, pe, "ipv6", "script", "patch-symbol:dhcpv6_duid_ll"] {
            assert!(checks.contains(&check.to_string()), "{file}: {checks:?}");
        }
        if file.ends_with("snponly.efi") {
            // The firmware's SNP is the driver; no PCI NIC driver of iPXE's is in it.
            assert!(
                checks.contains(&"driver:snponly_driver".to_string()),
                "{file}"
            );
            assert!(
                checks.iter().any(|c| c.starts_with("no-nic-driver:")),
                "{file}: {checks:?}"
            );
        } else {
            assert!(
                checks.contains(&"driver:virtio_net_driver".to_string()),
                "{file}"
            );
        }
    }
}

/// The FlexBoot flavour through the same pipeline: the ConnectX-4 `.mrom`s, the QEMU
/// ConnectX-3 `.rom` (booted to its script) and the virtio-net `.rom` for the lab.
#[test]
fn flexboot_builds_with_its_ipv6_default_and_boots_its_script_in_qemu() {
    let Some(flexboot_src) = sixboot_lab::need::source("FLEXBOOT_SRC") else {
        return;
    };
    // The QEMU image is booted to its script before it is packaged.
    if !sixboot_lab::need::program("qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let dir = scratch("flexboot");
    let out = dir.join("dist-flexboot");
    let (stdout, stderr) = build_rom_ok(&[
        "--flavor".as_ref(),
        "flexboot".as_ref(),
        "--target".as_ref(),
        "qemu,cx4,virtio".as_ref(),
        "--flexboot-src".as_ref(),
        flexboot_src.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let manifest = read_manifest(&out);
    assert_eq!(manifest["flavor"], "flexboot");
    assert_eq!(manifest["rom_version"], "3.4.812");
    let images = manifest["images"].as_array().unwrap();
    let files: Vec<&str> = images.iter().map(|i| i["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "cx4/flexboot-ConnectX-4-15b31013.mrom",
            "cx4/flexboot-ConnectX-4Lx-15b31015.mrom",
            "qemu/flexboot-ConnectX-3-15b31003.rom",
            "virtio/flexboot-virtio-net-1af41000.rom"
        ]
    );
    for image in images {
        let file = image["file"].as_str().unwrap();
        let checks = checks_of(image);
        let rom_verify = format!("rom-verify:{}", image["pci_ids"][0].as_str().unwrap());
        let mut expected = vec![
            "machine:i386",
            "ipv6",
            "script",
            "symbol:ipv6_configurator",
            "banner:FlexBoot v3.4.812",
            "patch-symbol:sixboot_default_ip_ver",
            rom_verify.as_str(),
        ];
        if file.starts_with("virtio/") {
            expected.push("driver:virtnet_driver");
        } else {
            expected.push("ip_ver-default:IPv6");
        }
        if file.starts_with("qemu/") {
            expected.extend(["driver:hermon_driver", "smoke-boot"]);
        }
        for check in expected {
            assert!(checks.contains(&check.to_string()), "{file}: {checks:?}");
        }
        // A legacy ROM's size byte caps it at 255 * 512 bytes.
        let size = image["size"].as_u64().unwrap();
        assert!(size > 64 * 1024 && size <= 130_560, "{file}: {size}");
    }
    // Booted in this run, or taken from the build cache, whose record carries the
    // `smoke-boot` check asserted above (an earlier run booted those same bytes).
    let qemu_from_cache = stdout.lines().any(|line| {
        line.contains("qemu/flexboot-ConnectX-3-15b31003.rom")
            && line.trim_end().ends_with("cached")
    });
    assert!(
        qemu_from_cache
            || stderr.contains("QEMU smoke boot of qemu/flexboot-ConnectX-3-15b31003.rom passed"),
        "{stdout}\n{stderr}"
    );
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 4, "{sums}");
    let burn = std::fs::read_to_string(out.join("BURN.md")).unwrap();
    assert!(
        burn.contains("mlxconfig -d <pci> set IP_VER=IPv6"),
        "{burn}"
    );
    assert!(
        burn.contains("romfile=virtio/flexboot-virtio-net-1af41000.rom"),
        "{burn}"
    );
    if let Some(compared) = assert_matches_the_pre_merge_images(&out, "flexboot") {
        assert_eq!(
            compared, 3,
            "cx4 (2) and qemu (1) were built before the merge"
        );
    }
}

//! End to end on ARM64 (issue 19): QEMU's `virt` machine (`qemu-system-aarch64`, TCG) with
//! Debian's AAVMF and a virtio NIC without ROM boots over IPv6 only from `sixboot
//! boot-server`, and every stage is checked on its console and in the server's log:
//!
//! AAVMF's own PXEv6 (edk2) → DHCPv6 Reply with the ARM64 file (`[boot.pxe] arm64`,
//! architecture 11) → TFTP `arm64/ipxe.efi` (ours, `cargo xtask build-rom --target arm64`)
//! → that iPXE's embedded script: RA, DHCPv6 again, now as iPXE → its per-host script over
//! HTTP → Debian's ARM64 kernel and the lab's initramfs (from the installer's netboot
//! package) → `/init`: address, kickstart, `/done` → power-off. The second test does the
//! same through AAVMF's HTTP Boot (architecture 19, `[boot.http] arm64`).
//!
//! Needs root, `qemu-system-arm`, `qemu-efi-aarch64`, `debian-installer-12-netboot-arm64`
//! (installed by `cargo xtask test`; a miss fails under CI) and `IPXE_SRC` (without it the
//! test is skipped). One VM at a time (`sixboot_lab::lock::vm_lock`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use sixboot_lab::guest::{DI_ARM64_DIR, DI_ARM64_PACKAGE};
use sixboot_lab::qemu::{need_vm, Firmware, NetBoot};
use sixboot_lab::server::{Expect, ARM64_BOOT_FILE};
use sixboot_lab::{known_mac, need, RomFlavor, SERVER_ADDRESS};

/// The ARM64 lab with our ARM64 `ipxe.efi` (built, or a build-rom cache hit), and that
/// file; `None` after a recorded skip.
fn arm64_lab(tag: &str) -> Option<(common::Lab, PathBuf)> {
    if !need_vm(Firmware::Arm64Uefi)
        || !need::file(format!("{DI_ARM64_DIR}/initrd.gz"), DI_ARM64_PACKAGE)
    {
        return None;
    }
    need::source("IPXE_SRC")?;
    let (ipxe_efi, _) = common::build_rom("arm64", &["--target", "arm64"], ARM64_BOOT_FILE);
    let lab = common::Lab::start(tag, Firmware::Arm64Uefi, RomFlavor::Ipxe, ipxe_efi.clone());
    Some((lab, ipxe_efi))
}

/// What the ARM64 iPXE and Linux did after the firmware: iPXE says architecture 11 and
/// gets its script URL; Linux runs with the host's address on the PL011 console.
fn assert_arm64_ipxe_and_linux(run: &sixboot_lab::BootRun) {
    let ipxe = &run.timeline.seen("srv:dhcpv6-reply").expect("checked").line;
    assert!(
        ipxe.contains("arch=Some(11)") && ipxe.contains("/ipxe/ipxe-"),
        "the ARM64 iPXE should get its script URL: {ipxe}"
    );
    let up = &run.timeline.seen("up").expect("checked").line;
    assert!(
        up.contains(&format!("addr={}", sixboot_lab::HOST_ADDRESS)),
        "ARM64 Linux should run with the host's DHCPv6 address: {up}"
    );
    let linux = &run.timeline.seen("linux").expect("checked").line;
    assert!(
        linux.contains("console=ttyAMA0"),
        "the ARM64 kernel's console is the PL011: {linux}"
    );
}

#[test]
fn arm64_uefi_pxe_gets_the_arm64_ipxe_over_tftp_and_boots_an_arm64_kernel_to_done() {
    let _one_vm_at_a_time = common::serial();
    let Some((lab, ipxe_efi)) = arm64_lab("arm64") else {
        return;
    };
    let run = lab.boot_via(
        NetBoot::FirmwarePxe,
        &known_mac(),
        Expect::Install,
        Duration::from_secs(280),
    );
    lab.assert_chain(&run);

    // The firmware's Reply: the ARM64 PXE file, for architecture 11, and nothing else.
    let tftp_url = format!("tftp://[{SERVER_ADDRESS}]/{ARM64_BOOT_FILE}");
    let reply = &run
        .timeline
        .seen("srv:firmware-reply")
        .expect("checked")
        .line;
    assert!(
        reply.contains("rule=\"uefi-pxe-arch\"") && reply.contains(&tftp_url),
        "AAVMF's PXE should be classified by its architecture and get {tftp_url}: {reply}"
    );
    // What it downloaded is exactly our ARM64 iPXE, once.
    let size = std::fs::metadata(&ipxe_efi).expect("built").len();
    let downloads: Vec<&str> = run
        .server_log
        .lines()
        .filter(|line| line.contains("TFTP transfer complete"))
        .collect();
    assert_eq!(downloads.len(), 1, "one TFTP download:\n{}", run.server_log);
    assert!(
        downloads[0].contains(&format!("file={ARM64_BOOT_FILE}"))
            && downloads[0].contains(&format!("bytes={size}")),
        "the firmware should fetch all {size} bytes of {ARM64_BOOT_FILE}: {}",
        downloads[0]
    );
    // The iPXE it loaded is ARM64 (option 61 = 11) and got its script, not the file again.
    assert_arm64_ipxe_and_linux(&run);
}

#[test]
fn arm64_uefi_http_boot_gets_the_arm64_ipxe_over_http_and_boots_an_arm64_kernel_to_done() {
    let _one_vm_at_a_time = common::serial();
    let Some((lab, ipxe_efi)) = arm64_lab("arm64h") else {
        return;
    };
    let run = lab.boot_via(
        NetBoot::FirmwareHttp,
        &known_mac(),
        Expect::Install,
        Duration::from_secs(280),
    );
    lab.assert_chain(&run);

    // HTTP Boot's Reply (edk2 sends vendor class "HTTPClient:Arch:00019:…" and option 61
    // = 19): the HTTP URL of the ARM64 file, with the "HTTPClient" vendor class back.
    let http_url = format!("{}/files/{ARM64_BOOT_FILE}", sixboot_lab::base_url());
    let reply = &run
        .timeline
        .seen("srv:firmware-reply")
        .expect("checked")
        .line;
    assert!(
        reply.contains("rule=\"http-client-vendor-class\"") && reply.contains(&http_url),
        "AAVMF's HTTP Boot should be classified by its vendor class and get {http_url}: {reply}"
    );
    let uri = &run.timeline.seen("uri").expect("checked").line;
    assert!(
        uri.contains(&http_url),
        "AAVMF should fetch {http_url}: {uri}"
    );
    // All of our ARM64 iPXE over HTTP, and nothing over TFTP.
    let size = std::fs::metadata(&ipxe_efi).expect("built").len();
    let file = &run
        .timeline
        .seen("srv:firmware-file")
        .expect("checked")
        .line;
    assert!(
        file.contains(&format!("bytes={size}")),
        "the firmware should get all {size} bytes of {ARM64_BOOT_FILE}: {file}"
    );
    assert!(
        !run.server_log.contains("TFTP transfer"),
        "HTTP Boot should use no TFTP:\n{}",
        run.server_log
    );
    assert_arm64_ipxe_and_linux(&run);
}

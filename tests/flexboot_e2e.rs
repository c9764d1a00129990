//! End to end with Mellanox FlexBoot's own IPv6 stack (issue 19): FlexBoot 3.4.812, built
//! by `cargo xtask build-rom --flavor flexboot --target virtio` for QEMU's virtio-net
//! (1af4:1000) with sixboot's embedded script, is the NIC's ROM under SeaBIOS and boots
//! over IPv6 only from `sixboot boot-server`: RA → DHCPv6 → its per-MAC script over HTTP →
//! kernel and initrd → Linux → kickstart → `/done`, every stage checked on the console and
//! in the server's log.
//!
//! FlexBoot's DHCPv6 client is a 2016 fork of iPXE's: it sends a DUID-UUID, iPXE's CRC-32
//! IAID and user class "iPXE", but no vendor class and no client architecture (option
//! 61). The test holds the server to what that means: FlexBoot is classified as iPXE by
//! its user class, and its MAC is learnt from its EUI-64 link-local address cross-checked
//! with the IAID (`eui64-iaid` in the lease log).
//!
//! Needs root, `qemu-system-x86` (installed by `cargo xtask test`) and `FLEXBOOT_SRC`
//! (without it the test is skipped). One VM at a time.

mod common;

use std::time::Duration;

use sixboot::leases::{read_leases, MacSource};
use sixboot_lab::qemu::{need_vm, Firmware};
use sixboot_lab::server::Expect;
use sixboot_lab::{known_mac, need, RomFlavor, HOST_ADDRESS};

/// Where `build-rom --flavor flexboot --target virtio` packages the ROM.
const ROM: &str = "virtio/flexboot-virtio-net-1af41000.rom";

#[test]
fn flexboot_over_ipv6_gets_its_script_from_sixboot_and_boots_linux_to_done() {
    let _one_vm_at_a_time = common::serial();
    if !need_vm(Firmware::Bios) {
        return;
    }
    if need::source("FLEXBOOT_SRC").is_none() {
        return;
    }
    let (rom, _) = common::build_rom(
        "flexboot",
        &["--flavor", "flexboot", "--target", "virtio"],
        ROM,
    );
    let lab = common::Lab::start("flexb", Firmware::Bios, RomFlavor::Flexboot, rom);
    let run = lab.boot(&known_mac(), Expect::Install, Duration::from_secs(200));
    lab.assert_chain(&run);

    assert!(
        run.console.contains("FlexBoot v3.4.812"),
        "the ROM that ran should be FlexBoot:\n{}",
        run.explain()
    );
    // FlexBoot sends user class "iPXE" (no vendor class, no option 61): the server's
    // first rule recognises it and hands it the script, never a firmware file.
    let lease = &run.timeline.seen("srv:dhcpv6-reply").expect("checked").line;
    assert!(
        lease.contains("rule=\"ipxe-user-class\"") && lease.contains("arch=None"),
        "FlexBoot should be iPXE by its user class, without an architecture: {lease}"
    );
    assert!(
        lease.contains("duid=0004"),
        "FlexBoot should send a DUID-UUID (type 4): {lease}"
    );
    let up = &run.timeline.seen("up").expect("checked").line;
    assert!(
        up.contains(&format!("addr={HOST_ADDRESS}")),
        "Linux should run with the host's DHCPv6 address: {up}"
    );
    // Its MAC came from the EUI-64 link-local source, confirmed by iPXE's CRC-32 IAID.
    let state = lab.inner.work().join("sixboot/state");
    let leases = read_leases(&state).unwrap_or_else(|err| panic!("{err}"));
    let lease = leases
        .by_address(&HOST_ADDRESS)
        .unwrap_or_else(|| panic!("no lease for {HOST_ADDRESS} in {}", state.display()));
    assert_eq!(lease.key.mac, Some(known_mac()), "{lease:?}");
    assert_eq!(lease.key.iaid, known_mac().ipxe_iaid(), "{lease:?}");
    assert_eq!(lease.mac_source, Some(MacSource::Eui64Iaid), "{lease:?}");
}

//! End to end: a QEMU machine boots Linux over IPv6 only, through iPXE, from the lab's
//! boot server, and the chain is checked stage by stage on its console and in the
//! server's log (issue 6). Needs root (network namespaces, taps): without it each test
//! fails and says so. See `sixboot_lab` for the lab.
//!
//! The ROM is sixboot's own (`dist/**/1af41000.rom`, `SIXBOOT_QEMU_ROM`) when built, else
//! Debian's stock dual-stack `efi-virtio.rom`, which waits about 15 s for DHCPv4 first.

mod common;

use std::time::Duration;

use sixboot_lab::lab::ServerKind;
use sixboot_lab::qemu::Firmware;
use sixboot_lab::server::Expect;
use sixboot_lab::{self as testenv, HOST_ADDRESS};

#[test]
fn known_host_boots_linux_over_ipv6_under_bios_fetches_its_kickstart_and_reports_done() {
    let _one_vm_at_a_time = common::serial();
    let Some(lab) = common::Lab::new("e2eb", Firmware::Bios) else {
        return;
    };
    let run = lab.boot(
        &testenv::known_mac(),
        Expect::Install,
        Duration::from_secs(150),
    );
    lab.assert_chain(&run);
    let up = &run.timeline.seen("up").expect("checked").line;
    assert!(
        up.contains(&format!("addr={HOST_ADDRESS}")),
        "Linux should run with the host's DHCPv6 address {HOST_ADDRESS}: {up}"
    );
    let ks = &run.timeline.seen("ks").expect("checked").line;
    assert!(
        ks.contains(&format!("url={}/ks/", testenv::base_url())),
        "the kickstart URL should reach the guest bracketed: {ks}"
    );
    if common::server_kind() == ServerKind::Sixboot {
        // The server's own record of that boot: every stage, in boot order, monotonic.
        let config = lab.inner.work().join("sixboot/boot.toml");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sixboot"))
            .args([
                "hosts",
                "show",
                &testenv::known_mac().to_string(),
                "--json",
                "--config",
            ])
            .arg(&config)
            .output()
            .expect("sixboot hosts show");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let timeline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let steps = timeline["boots"][0]["steps"].as_array().expect("one boot");
        let stages: Vec<&str> = steps.iter().map(|s| s["stage"].as_str().unwrap()).collect();
        let times: Vec<u64> = steps.iter().map(|s| s["at"].as_u64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{timeline:#}");
        // No "rs" required: iPXE sends no RS when a periodic RA reaches it first (the
        // lab's RA interval is seconds), and then the boot starts at its Solicit.
        let mut expected = [
            "solicit",
            "reply",
            "script",
            "kernel",
            "initrd",
            "kickstart",
            "done",
        ]
        .into_iter()
        .peekable();
        for stage in &stages {
            if expected.peek() == Some(stage) {
                expected.next();
            }
        }
        assert_eq!(
            expected.collect::<Vec<_>>(),
            Vec::<&str>::new(),
            "stages missing or out of order in {stages:?}"
        );
        eprintln!("server timeline: {stages:?}");
        // Install-once: after /done the same machine gets a 404 and boots from its disk.
        let again = lab.boot(
            &testenv::known_mac(),
            Expect::FallThrough,
            Duration::from_secs(90),
        );
        lab.assert_chain(&again);
        assert!(
            !again.console.contains("SIXBOOT-E2E-SCRIPT"),
            "after /done the host must not get its script again:\n{}",
            again.explain()
        );
    } else {
        sixboot_lab::need::skip(
            "SIXBOOT_E2E_SERVER=reference: the boot after /done (install-once) needs sixboot's server",
        );
    }
}

#[test]
fn unknown_mac_gets_404_and_falls_through_to_the_disk() {
    let _one_vm_at_a_time = common::serial();
    let Some(lab) = common::Lab::new("e2en", Firmware::Bios) else {
        return;
    };
    let run = lab.boot(
        &testenv::unknown_mac(),
        Expect::FallThrough,
        Duration::from_secs(90),
    );
    lab.assert_chain(&run);
    assert!(
        !run.console.contains("SIXBOOT-E2E-SCRIPT"),
        "an unknown host must not get a script:\n{}",
        run.explain()
    );
}

#[test]
fn known_host_boots_linux_over_ipv6_under_uefi() {
    let _one_vm_at_a_time = common::serial();
    let Some(lab) = common::Lab::new("e2eu", Firmware::Uefi) else {
        return;
    };
    let run = lab.boot(
        &testenv::known_mac(),
        Expect::Install,
        Duration::from_secs(180),
    );
    lab.assert_chain(&run);
}

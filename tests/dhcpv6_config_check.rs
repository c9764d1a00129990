//! `sixboot config check` knows what firmware can use: one golden file per rule
//! (tests/golden/config-check/NAME.toml → NAME.out: exit code, stdout, stderr), each
//! saying error or warning with file:line:column. Set `UPDATE_GOLDEN=1` to rewrite the
//! `.out` files after an intended change, then review the diff.
//!
//! And `sixboot boot-server` refuses to start on errors, not on warnings.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/config-check")
}

/// Runs `sixboot config check NAME.toml` in the golden directory (so the path in
/// every message is just the file name) and compares with `NAME.out`.
fn check_golden(name: &str, expected_code: i32) {
    let dir = golden_dir();
    let output = Command::cargo_bin("sixboot")
        .unwrap()
        .current_dir(&dir)
        .args(["config", "check", &format!("{name}.toml")])
        .output()
        .unwrap();
    let code = output.status.code().unwrap_or(-1);
    let actual = format!(
        "exit: {code}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join(format!("{name}.out"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
    } else {
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        assert_eq!(
            actual,
            expected,
            "{} differs; if intended, rerun with UPDATE_GOLDEN=1",
            path.display()
        );
    }
    assert_eq!(code, expected_code, "{name}: {actual}");
}

#[test]
fn uefi_pxe_given_an_http_url_is_an_error() {
    check_golden("pxe-http-url", 1);
}

#[test]
fn uefi_pxe_given_a_port_is_an_error() {
    check_golden("pxe-port", 1);
}

#[test]
fn uefi_pxe_given_a_host_name_without_dns_servers_is_an_error() {
    check_golden("pxe-host-name-no-dns", 1);
}

#[test]
fn uefi_pxe_given_a_host_name_with_dns_servers_is_a_warning() {
    check_golden("pxe-host-name-with-dns", 0);
}

#[test]
fn http_boot_given_a_host_name_without_dns_servers_or_a_tftp_url_is_an_error() {
    check_golden("http-boot-host-name-no-dns", 1);
}

#[test]
fn ra_without_m_and_no_pool_for_uefi_firmware_is_a_warning() {
    check_golden("ra-m0-no-pool", 0);
}

#[test]
fn autonomous_on_a_prefix_that_is_not_a_64_is_an_error() {
    check_golden("autonomous-not-64", 1);
}

#[test]
fn a_relay_mapped_to_two_subnets_or_to_nothing_is_an_error() {
    check_golden("relay-twice", 1);
}

#[test]
fn the_mixed_fleet_example_is_clean() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mixed-fleet.toml");
    Command::cargo_bin("sixboot")
        .unwrap()
        .args(["config", "check"])
        .arg(&example)
        .assert()
        .success()
        .stdout(contains("ok ("))
        .stdout(contains("warning").not())
        .stderr("");
}

/// A config whose only listener is a missing interface: the server gets past the
/// config only if nothing in it is an error, and then stops at the interface.
fn server_config(dir: &Path, boot: &str) -> PathBuf {
    let path = dir.join("sixboot.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ninterfaces = [\"sbd-nope1\"]\nstate_dir = \"{}\"\n\
             [[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n\
             pool_start = \"2001:db8:1::100\"\npool_end = \"2001:db8:1::1ff\"\n{boot}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

fn boot_server(config: &Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("sixboot")
        .unwrap()
        .args(["boot-server", "--config"])
        .arg(config)
        .assert()
}

#[test]
fn boot_server_refuses_to_start_on_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(
        dir.path(),
        "[boot]\nefi_url = \"tftp://[2001:db8:1::1]:69/ipxe.efi\"\n",
    );
    boot_server(&config)
        .failure()
        .stderr(contains("sixboot.toml:9:"))
        .stderr(contains("boot.efi_url"))
        .stderr(contains("no port"))
        .stderr(contains("sbd-nope1").not());
}

#[test]
fn boot_server_logs_a_warning_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(
        dir.path(),
        "[dhcp]\ndns_servers = [\"2001:db8:1::53\"]\n\
         [boot]\nefi_url = \"tftp://boot.example.com/ipxe.efi\"\n",
    );
    boot_server(&config)
        .failure()
        .stderr(contains("WARN"))
        .stderr(contains("warning: boot.efi_url"))
        .stderr(contains("interface `sbd-nope1` does not exist"));
}

use predicates::prelude::PredicateBooleanExt;

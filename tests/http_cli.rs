//! `sixboot hosts …`, `sixboot script lint` and the template part of
//! `sixboot config check`, run as a user would.

mod http_support;

use assert_cmd::Command;
use http_support::*;
use predicates::prelude::*;

fn sixboot() -> Command {
    Command::cargo_bin("sixboot").unwrap()
}

#[test]
fn script_lint_passes_good_scripts_and_names_file_and_line_of_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.ipxe");
    let bom = dir.path().join("bom.ipxe");
    let v6 = dir.path().join("v6.ipxe");
    std::fs::write(&good, "#!ipxe\nchain http://[2001:db8::1]/x\n").unwrap();
    std::fs::write(&bom, "\u{feff}#!ipxe\n").unwrap();
    std::fs::write(&v6, "#!ipxe\n\nkernel http://2001:db8::1/vmlinuz\n").unwrap();
    sixboot()
        .args(["script", "lint"])
        .arg(&good)
        .assert()
        .success()
        .stdout(predicate::str::contains("good.ipxe: ok"));
    sixboot()
        .args(["script", "lint"])
        .args([&good, &bom, &v6])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "bom.ipxe:1: error[magic-bom]: the script starts with a UTF-8 byte-order mark",
        ))
        .stderr(predicate::str::contains(
            "v6.ipxe:3: error[uri-unbracketed-ipv6]: `http://2001:db8::1/vmlinuz` has an IPv6 address without brackets",
        ))
        .stderr(predicate::str::contains("2 of 3 scripts failed the lint"));
    sixboot()
        .args(["script", "lint", "/nonexistent/x.ipxe"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/x.ipxe: cannot read"));
}

#[test]
fn hosts_list_shows_install_flags_and_stages_as_table_and_json() {
    let lab = Lab::new("");
    sixboot()
        .args(["hosts", "list", "--config"])
        .arg(lab.config_path())
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"(?m)^NAME\s+MAC\s+ADDRESS\s+INSTALL\s+STAGE\s+SINCE$")
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(r"(?m)^node1\s+52:54:00:12:34:56\s+::1\s+yes\s+none\s+-$")
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(r"(?m)^cx3-node\s+00:02:c9:aa:bb:01\s+-\s+no\s+none\s+-$")
                .unwrap(),
        );
    let out = sixboot()
        .args(["hosts", "list", "--json", "--config"])
        .arg(lab.config_path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "node1");
    assert_eq!(rows[0]["install"], true);
    assert_eq!(rows[1]["mac"], CX3);
    assert_eq!(rows[1]["stage"], "none");
    assert!(
        !lab.path().join("state").exists(),
        "listing must not write anything"
    );
}

#[test]
fn hosts_install_marks_a_host_and_the_list_shows_it() {
    let lab = Lab::new("");
    sixboot()
        .args(["hosts", "install", "00-02-C9-AA-BB-01", "--config"])
        .arg(lab.config_path())
        .assert()
        .success()
        .stdout("cx3-node (00:02:c9:aa:bb:01) will install on its next boot\n");
    sixboot()
        .args(["hosts", "list", "--config"])
        .arg(lab.config_path())
        .assert()
        .stdout(predicate::str::is_match(r"(?m)^cx3-node\s+00:02:c9:aa:bb:01\s+-\s+yes").unwrap());
    sixboot()
        .args(["hosts", "install", "--off", NODE1, "--config"])
        .arg(lab.config_path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "node1 (52:54:00:12:34:56) will boot from its disk",
        ));
}

#[test]
fn hosts_install_refuses_unknown_and_malformed_macs() {
    let lab = Lab::new("");
    sixboot()
        .args(["hosts", "install", "02:00:00:00:00:99", "--config"])
        .arg(lab.config_path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "02:00:00:00:00:99 is not among the [[hosts]]",
        ))
        .stderr(predicate::str::contains("boot.toml"));
    sixboot()
        .args(["hosts", "install", "52:54:00", "--config"])
        .arg(lab.config_path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`52:54:00` is not a MAC address"));
}

#[test]
fn config_check_reports_template_problems_with_file_and_host() {
    let lab = Lab::new("script_template = \"script.j2\"\nkickstart_template = \"ks.j2\"");
    std::fs::write(
        lab.path().join("script.j2"),
        "#!ipxe\nchain {{ base_url }}/x\n",
    )
    .unwrap();
    std::fs::write(lab.path().join("ks.j2"), "url {{ ks_url }}\n").unwrap();
    sixboot()
        .args(["config", "check"])
        .arg(lab.config_path())
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (2 hosts"));

    std::fs::write(lab.path().join("script.j2"), "#!ipxe\n{% if %}\n").unwrap();
    sixboot()
        .args(["config", "check"])
        .arg(lab.config_path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("script.j2"))
        .stderr(predicate::str::contains("line 2"));

    // Renders, but into a script iPXE would not run, and for one host only.
    std::fs::write(
        lab.path().join("script.j2"),
        "{% if name == 'cx3-node' %}\n{% endif %}#!ipxe\nchain http://{{ address or '2001:db8::9' }}/x\n",
    )
    .unwrap();
    sixboot()
        .args(["config", "check"])
        .arg(lab.config_path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("for host node1"))
        .stderr(predicate::str::contains("without brackets"))
        .stderr(predicate::str::contains("for host cx3-node"))
        .stderr(predicate::str::contains("blank line"));
}

#[test]
fn a_broken_template_stops_the_server_at_start_up() {
    let lab = Lab::new("script_template = \"script.j2\"");
    std::fs::write(lab.path().join("script.j2"), "#!pxe\nboot\n").unwrap();
    let err = sixboot::http::App::from_config(&lab.config()).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("nothing is served") && text.contains("`#!pxe`"),
        "{text}"
    );
    std::fs::remove_file(lab.path().join("script.j2")).unwrap();
    let err = sixboot::http::App::from_config(&lab.config()).unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot read template"),
        "{err:#}"
    );
}

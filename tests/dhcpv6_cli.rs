//! `sixboot boot-server` and `sixboot leases` from the command line: failures name
//! what to fix, and the lease listing reads the log the server writes.

use assert_cmd::Command;
use predicates::str::contains;

fn config(dir: &std::path::Path, interfaces: &str) -> std::path::PathBuf {
    let path = dir.join("sixboot.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ninterfaces = [{interfaces}]\nstate_dir = \"{}\"\n\
             [[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n\
             pool_start = \"2001:db8:1::100\"\npool_end = \"2001:db8:1::1ff\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

/// Runs `sixboot SUBCOMMAND [--json] --config PATH`.
fn sixboot(args: &[&str], config: &std::path::Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("sixboot")
        .unwrap()
        .args(args)
        .arg("--config")
        .arg(config)
        .assert()
}

#[test]
fn boot_server_names_a_missing_interface_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "\"sbd-nope0\"");
    sixboot(&["boot-server"], &path)
        .failure()
        .stderr(contains("interface `sbd-nope0` does not exist"))
        .stderr(contains("server.interfaces"));
}

#[test]
fn boot_server_reports_config_problems_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[dhcp]\ndns_servers = [\"2401::beef:20::20\"]\n").unwrap();
    sixboot(&["boot-server"], &path)
        .failure()
        .stderr(contains("bad.toml:2:"))
        .stderr(contains("dhcp.dns_servers[0]"));
}

#[test]
fn leases_lists_the_log_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("leases.jsonl"),
        "{\"bind\":{\"key\":{\"duid\":\"000411111111222233334444555555555555\",\"iaid\":2857742559,\
         \"mac\":\"52:54:00:12:34:56\"},\"address\":\"2001:db8:1::10\",\"mac_source\":\"eui64-iaid\",\
         \"host\":\"node1\",\"expires\":4000000000}}\n",
    )
    .unwrap();
    sixboot(&["leases"], &path)
        .success()
        .stdout(contains("2001:db8:1::10"))
        .stdout(contains("52:54:00:12:34:56"))
        .stdout(contains("eui64-iaid"))
        .stdout(contains("node1"));
    let out = sixboot(&["leases", "--json"], &path).success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json[0]["key"]["iaid"], 2_857_742_559u32);
    assert_eq!(json[0]["host"], "node1");
}

#[test]
fn leases_refuses_a_damaged_log_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("leases.jsonl"), "not json\n{}\n").unwrap();
    sixboot(&["leases"], &path)
        .failure()
        .stderr(contains("leases.jsonl:1:"))
        .stderr(contains("move the file aside"));
}

//! `sixboot script lint` and `sixboot script rules` as a user runs them: exact stdout,
//! stderr (`FILE:LINE: SEVERITY[RULE]: MESSAGE`) and exit code, against the golden files
//! in `tests/golden/script_lint/`. Run with `SIXBOOT_BLESS=1` to rewrite them after a
//! deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/script_lint")
}

/// Runs `sixboot ARGS` in the corpus directory (so file names print short) and compares
/// its output and exit code with `tests/golden/script_lint/NAME.txt`.
fn golden(name: &str, args: &[&str]) {
    let out = Command::cargo_bin("sixboot")
        .unwrap()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint_corpus"))
        .args(args)
        .output()
        .unwrap();
    let actual = format!(
        "$ sixboot {}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = golden_dir().join(format!("{name}.txt"));
    if std::env::var_os("SIXBOOT_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err} (SIXBOOT_BLESS=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs (SIXBOOT_BLESS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn a_clean_script_prints_ok_and_exits_0() {
    golden(
        "clean",
        &["script", "lint", "real-chain.ipxe", "real-menu-goto.ipxe"],
    );
}

#[test]
fn warnings_are_printed_but_exit_0() {
    golden(
        "warnings",
        &[
            "script",
            "lint",
            "warn-crlf.ipxe",
            "warn-gpxe-magic.ipxe",
            "warn-zone-on-global.ipxe",
        ],
    );
}

#[test]
fn strict_makes_warnings_fail() {
    golden(
        "strict",
        &[
            "script",
            "lint",
            "--strict",
            "warn-crlf.ipxe",
            "real-chain.ipxe",
        ],
    );
}

#[test]
fn errors_name_file_line_rule_and_exit_1() {
    golden(
        "errors",
        &[
            "script",
            "lint",
            "pitfall-bom.ipxe",
            "pitfall-blank-line-first.ipxe",
            "pitfall-pxe-magic.ipxe",
            "pitfall-unbracketed.ipxe",
            "pitfall-unbracketed-via-set.ipxe",
            "pitfall-zone-eth0.ipxe",
            "pitfall-continuation-eof.ipxe",
            "pitfall-port-octal.ipxe",
            "installer-unbracketed-ks.ipxe",
            "real-chain.ipxe",
        ],
    );
}

#[test]
fn an_unreadable_file_is_a_failure() {
    golden("unreadable", &["script", "lint", "no-such-file.ipxe"]);
}

#[test]
fn rules_lists_every_rule_with_its_source() {
    golden("rules", &["script", "rules"]);
}

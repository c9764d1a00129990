//! The build-speed mechanism (issue 13), asserted on make's own account of what it
//! compiled rather than on time: after a change to the embedded script only, make
//! recompiles only the embedded-image object in each `bin*` directory; after a change of
//! `--trust` CA only, only the root-certificate object. Both reuse the same build tree.
//!
//! Its own test binary, so no other build-rom test touches the shared work directory
//! (`target/build-rom`, warm from `cargo xtask test`'s QEMU build) between its runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.env_remove("IPXE_SRC");
    command
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("build-speed-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs build-rom for the QEMU target with `extra` arguments; returns the objects each
/// make call compiled, as build-rom reports them (`✓ make bin 2.1s 1 compiled
/// (bin/embedded.o); …`), keyed by build directory.
fn build_qemu(ipxe_src: &Path, out: &Path, extra: &[&std::ffi::OsStr]) -> Vec<(String, String)> {
    let output = xtask()
        .args(["build-rom", "--target", "qemu", "--ipxe-src"])
        .arg(ipxe_src)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "build-rom failed:\n{stderr}");
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("✓ make "))
        .map(|rest| {
            let dir = rest.split(' ').next().unwrap_or("").to_string();
            let compiled = rest
                .split_once("s ")
                .map(|(_, after)| after.split(';').next().unwrap_or("").to_string())
                .unwrap_or_default();
            (dir, compiled)
        })
        .collect()
}

#[test]
fn a_script_or_ca_change_recompiles_only_the_object_that_embeds_it() {
    let Some(ipxe_src) = sixboot_lab::need::source("IPXE_SRC") else {
        return;
    };
    if !sixboot_lab::need::program("openssl", "openssl") {
        return;
    }
    let dir = scratch("mechanism");
    let out = dir.join("dist");
    let default = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ipxe-config/embed.ipxe"),
    )
    .unwrap();
    // Scripts no earlier run embedded, so neither is a cache hit.
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let script = |name: &str| {
        let path = dir.join(format!("{name}.ipxe"));
        std::fs::write(
            &path,
            format!("{default}# build-speed test {name} {nonce}\n"),
        )
        .unwrap();
        path
    };
    let (a, b) = (script("a"), script("b"));
    // Whatever state the tree is in, this brings it up to date with script A.
    let first = build_qemu(&ipxe_src, &out, &["--embed".as_ref(), a.as_os_str()]);
    eprintln!("script A (whatever the tree needed): {first:?}");

    let makes = build_qemu(&ipxe_src, &out, &["--embed".as_ref(), b.as_os_str()]);
    assert_eq!(
        makes,
        [
            ("bin".to_string(), "1 compiled (bin/embedded.o)".to_string()),
            (
                "bin-x86_64-efi".to_string(),
                "1 compiled (bin-x86_64-efi/embedded.o)".to_string()
            )
        ],
        "a script-only change must recompile only the embedded image"
    );

    let ca = dir.join("ca.pem");
    let key = dir.join("ca.key");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=sixboot build-speed test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&ca)
        .output()
        .expect("openssl (Debian package openssl) makes the test CA");
    assert!(status.status.success(), "{status:?}");
    let makes = build_qemu(
        &ipxe_src,
        &out,
        &[
            "--embed".as_ref(),
            b.as_os_str(),
            "--trust".as_ref(),
            ca.as_os_str(),
        ],
    );
    assert_eq!(
        makes,
        [
            ("bin".to_string(), "1 compiled (bin/rootcert.o)".to_string()),
            (
                "bin-x86_64-efi".to_string(),
                "1 compiled (bin-x86_64-efi/rootcert.o)".to_string()
            )
        ],
        "a CA-only change must recompile only the root certificate store"
    );

    // The same inputs again: a cache hit, no make at all.
    let makes = build_qemu(
        &ipxe_src,
        &out,
        &[
            "--embed".as_ref(),
            b.as_os_str(),
            "--trust".as_ref(),
            ca.as_os_str(),
        ],
    );
    assert_eq!(makes, []);
}

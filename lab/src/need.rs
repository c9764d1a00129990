//! The one way a test says "I need X from this machine", and the one place a test skips.
//!
//! A test that cannot run here calls one of these and returns when it gets `false` /
//! `None`. Each miss prints `SKIPPED: <reason>` and appends `<test>\t<reason>` to the file
//! named by `SIXBOOT_SKIP_LOG` (set by `cargo xtask test`, which lists every skip and the
//! totals at the end), so a skip never looks like a pass.
//!
//! Two kinds of need, two policies:
//! - What `.ci/run` installs (root, Debian programs and files: [`root`], [`program`],
//!   [`file`], [`missing`]): under `CI=true` a miss is a **failure** (panic with what to
//!   install), because CI is supposed to have it; elsewhere it is a recorded skip.
//! - What CI only has when the machine has it (the iPXE and FlexBoot sources: [`source`],
//!   [`skip`]): always a recorded skip.
//!
//! rust-analyzer's `skip_slow_tests` is the model: the decision is made in one place and
//! reported, not swallowed by libtest's output capture.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether this run is CI's (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(value) => !matches!(value.trim(), "" | "0" | "false" | "FALSE" | "False"),
        Err(_) => false,
    }
}

/// Root (CAP_NET_ADMIN for namespaces and taps, /dev/net/tun for QEMU).
///
/// `true` when the effective user is root. Otherwise a CI failure or a recorded skip.
pub fn root() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    missing(
        "needs root for network namespaces, taps and QEMU; run as root, or `cargo xtask test` \
         (it runs the test binaries through sudo)",
    );
    false
}

/// A program on `PATH` (or at an absolute path) that Debian package `package` installs.
pub fn program(program: &str, package: &str) -> bool {
    if find_program(program).is_some() {
        return true;
    }
    missing(format!(
        "{program} is not installed (Debian package {package}; `cargo xtask test` installs it)"
    ));
    false
}

/// A file that Debian package `package` installs (a firmware image, a ROM).
pub fn file(path: impl AsRef<Path>, package: &str) -> bool {
    let path = path.as_ref();
    if path.exists() {
        return true;
    }
    missing(format!(
        "{} does not exist (Debian package {package}; `cargo xtask test` installs it)",
        path.display()
    ));
    false
}

/// A source tree named by an environment variable (`IPXE_SRC`, `FLEXBOOT_SRC`): `.ci/run`
/// sets it only when the machine has the tree, so a miss is always a (recorded) skip.
pub fn source(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => {
            let path = PathBuf::from(value);
            if path.exists() {
                Some(path)
            } else {
                // Set but wrong is a mistake, not a reason to skip.
                panic!(
                    "{var}={} does not exist; unset it or point it at the source tree",
                    path.display()
                );
            }
        }
        _ => {
            skip(format!(
                "{var} not set (the source tree this test builds from)"
            ));
            None
        }
    }
}

/// Something `.ci/run` installs is missing: a failure under CI, a recorded skip elsewhere.
pub fn missing(reason: impl Display) {
    if in_ci() {
        panic!("CI=true and a dependency that .ci/run installs is missing: {reason}");
    }
    skip(reason);
}

/// Skips for a reason CI does not control: prints `SKIPPED:` and records it.
pub fn skip(reason: impl Display) {
    let test = test_name();
    println!("SKIPPED: {reason}");
    eprintln!("SKIPPED: {test}: {reason}");
    if let Some(log) = std::env::var_os("SIXBOOT_SKIP_LOG") {
        // One short write with O_APPEND: lines of concurrent tests do not interleave.
        let line = format!("{test}\t{reason}\n").replace(['\r'], " ");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            eprintln!(
                "warning: cannot record the skip in {}: {err}",
                Path::new(&log).display()
            );
        }
    }
}

/// `binary::test_path`, e.g. `qemu_e2e::uefi_boot`: the test binary's name without
/// cargo's hash, and libtest's name for the test thread.
fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_owned());
    let thread = std::thread::current().name().unwrap_or("main").to_owned();
    format!("{binary}::{thread}")
}

/// The program's path when it is executable on `PATH` (or is an absolute path).
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_every_debian_machine_has_and_not_a_made_up_one() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("sixboot-no-such-program").is_none());
    }

    #[test]
    fn the_test_name_carries_the_binary_and_the_test() {
        let name = test_name();
        assert!(
            name.ends_with("need::tests::the_test_name_carries_the_binary_and_the_test"),
            "{name}"
        );
        assert!(name.starts_with("sixboot_lab::"), "{name}");
    }
}

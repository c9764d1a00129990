//! Debian packages the tasks need: find what is missing and install it.
//!
//! As root, `apt-get install` runs directly; otherwise through `sudo` when it exists.
//! With `--no-install` (or when neither works) the one apt-get line that would install
//! the missing packages is printed and the task stops.

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

/// What building the `sixboot` binary needs beyond Rust: OpenSSL's headers and
/// pkg-config for its default `https` feature (`openssl-sys`). xtask itself builds
/// without them (it uses the library without `https`), so every task that builds the
/// server installs these first.
pub const SERVER_BUILD: &[&str] = &["libssl-dev", "pkg-config"];

/// Installs the missing packages among `packages`, or explains how.
pub fn ensure(sh: &Shell, packages: &[&str], no_install: bool) -> Result<()> {
    let installed = installed(sh, packages);
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !installed.iter().any(|name| name == package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let line = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if no_install {
        bail!("missing Debian packages; install them with:\n  sudo {line}");
    }
    eprintln!("installing missing Debian packages: {}", missing.join(" "));
    let sudo: &[&str] = if is_root(sh) {
        &[]
    } else if cmd!(sh, "sudo -n true")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        &["sudo", "-n"]
    } else {
        bail!("missing Debian packages and no root or sudo to install them; run:\n  sudo {line}");
    };
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let run = |args: &[&str]| -> Result<()> {
        let mut argv: Vec<&str> = sudo.to_vec();
        argv.extend(args);
        let (program, rest) = argv.split_first().expect("argv is never empty");
        let mut command = cmd!(sh, "{program} {rest...}").quiet();
        for (key, value) in env {
            command = command.env(key, value);
        }
        // apt's and dpkg's progress goes to stderr: a bench's `--json` owns stdout.
        let output = command.ignore_status().output()?;
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            bail!(
                "`{}` failed ({}); the install failed, try it yourself:\n  sudo {line}",
                argv.join(" "),
                output.status
            );
        }
        Ok(())
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    run(&install)?;
    Ok(())
}

/// Whether this process runs as root (uid 0).
pub fn is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u")
        .quiet()
        .read()
        .map(|uid| uid.trim() == "0")
        .unwrap_or(false)
}

/// The installed ones among `packages`, with one `dpkg-query` for all of them (one call
/// per package cost build-rom 0.4 s on every build). Unknown packages are simply absent
/// from its output (dpkg-query then exits non-zero, which is expected here).
fn installed(sh: &Shell, packages: &[&str]) -> Vec<String> {
    let format = "${Package}\t${Status}\n";
    let output = cmd!(sh, "dpkg-query -W -f {format} {packages...}")
        .quiet()
        .ignore_stderr()
        .ignore_status()
        .read()
        .unwrap_or_default();
    parse_installed(&output)
}

/// The package names whose status line says "install ok installed".
fn parse_installed(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| status.contains("install ok installed"))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_which_packages_dpkg_query_says_are_installed() {
        let output = "gcc\tinstall ok installed\nmtools\tdeinstall ok config-files\nperl\tinstall ok installed\n";
        assert_eq!(parse_installed(output), ["gcc", "perl"]);
    }
}

//! `cargo xtask test`: the README's test command and what CI runs.
//!
//! Installs what the tests need, then checks formatting and lints and runs every test.
//! Tests that need the iPXE or FlexBoot source run when `IPXE_SRC` / `FLEXBOOT_SRC`
//! are set (the `/var/cache/sixboot` copies are used when they exist).

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};
use clap::Args;
use xshell::{cmd, Shell};

use crate::deps;

/// Debian packages the test suite uses beyond a ROM build's own
/// (`firmware::BUILD_PACKAGES`): real peers and clients, QEMU and firmware.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "isc-dhcp-client",
    "kea-admin",
    "ndisc6",
    "qemu-system-x86",
    "ipxe-qemu",
    "ipxe",
    "ovmf",
    "busybox-static",
    "cpio",
    "dnsmasq-base",
    "nginx-light",
    "mstflint",
    // TFTP clients for tests/tftp_server.rs.
    "curl",
    "tftp-hpa",
    "atftp",
    // Debian's netboot installer (text linux + initrd.gz) for tests/debian_installer_e2e.rs.
    "debian-installer-12-netboot-amd64",
    // The service tests (tests/service.rs): systemd-analyze, the package checks and
    // what cargo-deb calls (`cargo xtask package-deb`).
    "systemd",
    "lintian",
    "man-db",
    "dpkg-dev",
    "binutils",
    // The inventory's PostgreSQL backend (tests start throwaway clusters).
    "postgresql",
    // Observability (tests/observe*.rs): `promtool check metrics`, and headless
    // Chromium for the status page.
    "prometheus",
    "chromium",
    // The ARM64 end-to-end test (tests/arm64_e2e.rs): QEMU's `virt` machine, AAVMF, and
    // the ARM64 kernel and installer initrd the lab's guest is cut from.
    "qemu-system-arm",
    "qemu-efi-aarch64",
    "debian-installer-12-netboot-arm64",
    // The lab BMC (tests/redfish_e2e.rs): libvirt's embedded QEMU driver and its Python
    // binding, and a venv for sushy-tools from PyPI (`ensure_bmc_emulator`).
    "libvirt-daemon-driver-qemu",
    "python3-libvirt",
    "python3-venv",
];

#[derive(Debug, Args)]
pub struct Test {
    /// Print the apt-get line for missing packages instead of running it.
    #[arg(long)]
    no_install: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

impl Test {
    pub fn run(self, sh: &Shell) -> Result<()> {
        // The iPXE and FlexBoot build tests need what a ROM build needs.
        let packages = [
            deps::SERVER_BUILD,
            TEST_PACKAGES,
            crate::firmware::BUILD_PACKAGES,
        ]
        .concat();
        deps::ensure(sh, &packages, self.no_install)?;
        // tests/service.rs packages the boot server with cargo-deb.
        crate::package_deb::ensure_cargo_deb(sh, self.no_install)?;
        ensure_bmc_emulator(sh, self.no_install)?;
        for (var, dir) in [
            ("IPXE_SRC", "/var/cache/sixboot/ipxe"),
            ("FLEXBOOT_SRC", "/var/cache/sixboot/flexboot"),
        ] {
            if std::env::var_os(var).is_none() && std::path::Path::new(dir).exists() {
                eprintln!("{var}={dir} (found on this machine)");
                sh.set_var(var, dir);
                // Also for `cargo test`, which is spawned outside xshell.
                std::env::set_var(var, dir);
            }
        }
        cmd!(sh, "cargo fmt --all --check").run()?;
        if sh.var_os("IPXE_SRC").is_some() {
            // With the iPXE source at hand, build our QEMU ROMs first, so that the QEMU
            // end-to-end test boots our ROM with our server (it falls back to Debian's
            // stock ROM when dist/ has none). A cache hit when nothing changed.
            let xtask = std::env::current_exe()?;
            cmd!(sh, "{xtask} build-rom --target qemu").run()?;
        }
        cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
        // Every skip goes through `sixboot_lab::need`, which appends it to this file.
        let skip_log = crate::project_root().join("target/test-skips.log");
        std::fs::create_dir_all(skip_log.parent().expect("target/ has a parent"))?;
        std::fs::write(&skip_log, "")?;
        let args = &self.cargo_args;
        let mut argv: Vec<String> = Vec::new();
        if !deps::is_root(sh) {
            // The network tests create namespaces, bridges and taps, which needs
            // CAP_NET_ADMIN: build as the user, run the test binaries through sudo with the
            // same toolchain and environment.
            eprintln!("not root: the namespace and QEMU tests need root, running `cargo test` through sudo");
            let path = std::env::var("PATH").unwrap_or_default();
            let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| {
                format!("{}/.cargo", std::env::var("HOME").unwrap_or_default())
            });
            let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| {
                format!("{}/.rustup", std::env::var("HOME").unwrap_or_default())
            });
            argv.extend([
                "sudo".to_owned(),
                "--preserve-env".to_owned(),
                "env".to_owned(),
                format!("PATH={path}"),
                format!("CARGO_HOME={cargo_home}"),
                format!("RUSTUP_HOME={rustup_home}"),
                format!("SIXBOOT_SKIP_LOG={}", skip_log.display()),
            ]);
        }
        argv.extend(
            ["cargo", "test", "--workspace", "--no-fail-fast"]
                .iter()
                .map(|s| s.to_string()),
        );
        argv.extend(args.iter().cloned());
        let started = std::time::Instant::now();
        let (status, summary) = run_and_count(&argv, &skip_log)?;
        let skips = std::fs::read_to_string(&skip_log).unwrap_or_default();
        eprintln!("{}", summary.report(&skips, started.elapsed()));
        if !status.success() || summary.failed > 0 {
            anyhow::bail!("tests failed ({} failed)", summary.failed);
        }
        Ok(())
    }
}

/// The lab BMC's pieces that are not Debian packages (`sixboot_lab::redfish`): the
/// sushy-tools venv under the lab's cache directory (as the tests, which run as root,
/// see it) and the `libvirt-qemu` user Debian's QEMU driver looks up at start (made by
/// libvirt-daemon-system's postinst, which is not installed here).
fn ensure_bmc_emulator(sh: &Shell, no_install: bool) -> Result<()> {
    use sixboot_lab::redfish::{has_emulator_venv, venv_python, PIP_PACKAGES, VENV};
    let root = deps::is_root(sh);
    let cache = if root {
        sixboot_lab::cache_dir(&crate::project_root())
    } else {
        std::env::var_os("SIXBOOT_CACHE")
            .map_or_else(|| "/var/cache/sixboot".into(), std::path::PathBuf::from)
    };
    let sudo: &[&str] = if root { &[] } else { &["sudo", "-n"] };
    let user_missing = cmd!(sh, "getent passwd libvirt-qemu")
        .quiet()
        .ignore_stdout()
        .run()
        .is_err();
    let venv_missing = !has_emulator_venv(&cache);
    if !user_missing && !venv_missing {
        return Ok(());
    }
    let venv = cache.join(VENV);
    let python = venv_python(&cache);
    if no_install {
        anyhow::bail!(
            "the lab BMC needs the user libvirt-qemu and sushy-tools in {}; run `cargo xtask \
             test` without --no-install, or see sixboot_lab::redfish::need_emulator",
            venv.display()
        );
    }
    // As root, or through sudo (the tests run as root and see root's cache).
    let as_root = |args: &[&str]| -> Result<()> {
        let mut argv: Vec<&str> = sudo.to_vec();
        argv.extend(args);
        let (program, rest) = argv.split_first().expect("argv is never empty");
        cmd!(sh, "{program} {rest...}")
            .run()
            .with_context(|| format!("cannot run {}", argv.join(" ")))
    };
    if user_missing {
        eprintln!("creating the system user libvirt-qemu (Debian's libvirt QEMU driver needs it)");
        as_root(&["groupadd", "--system", "libvirt-qemu"])?;
        as_root(&[
            "useradd",
            "--system",
            "--gid",
            "libvirt-qemu",
            "--no-create-home",
            "--home-dir",
            "/var/lib/libvirt",
            "--shell",
            "/usr/sbin/nologin",
            "libvirt-qemu",
        ])?;
    }
    if venv_missing {
        eprintln!(
            "installing {} into {}",
            PIP_PACKAGES.join(" "),
            venv.display()
        );
        let (cache, venv, python) = (
            cache.display().to_string(),
            venv.display().to_string(),
            python.display().to_string(),
        );
        as_root(&["mkdir", "-p", &cache])?;
        as_root(&[
            "/usr/bin/python3",
            "-m",
            "venv",
            "--system-site-packages",
            &venv,
        ])?;
        let mut pip = vec![
            python.as_str(),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ];
        pip.extend(PIP_PACKAGES);
        as_root(&pip).context("pip install of the Redfish emulator (PyPI sushy-tools)")?;
    }
    Ok(())
}

/// Runs `argv` (cargo test) with its output streamed through, counting libtest's results.
fn run_and_count(argv: &[String], skip_log: &std::path::Path) -> Result<(ExitStatus, Summary)> {
    let (program, rest) = argv.split_first().context("empty command")?;
    let mut child = Command::new(program)
        .args(rest)
        .env("SIXBOOT_SKIP_LOG", skip_log)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", argv.join(" ")))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut summary = Summary::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        summary.read_line(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    Ok((status, summary))
}

/// What libtest printed, added up over every test binary: its `test result:` lines and
/// the names of failed tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    pub n_binaries: u64,
    pub failures: Vec<String>,
}

impl Summary {
    /// Takes one line of `cargo test` output.
    pub fn read_line(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" ... FAILED"))
        {
            self.failures.push(name.to_owned());
            return;
        }
        let Some(counts) = line.strip_prefix("test result: ") else {
            return;
        };
        self.n_binaries += 1;
        for part in counts.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }

    /// The closing report: totals, then every skip with its reason (lines `test\treason`
    /// as `sixboot_lab::need` writes them), then every failure.
    pub fn report(&self, skip_log: &str, took: std::time::Duration) -> String {
        let skips: Vec<(&str, &str)> = skip_log
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.split_once('\t').unwrap_or((line, "")))
            .collect();
        let run = self.passed + self.failed;
        let mut out = format!(
            "\n== cargo xtask test: {run} tests run in {} binaries, {} failed, {} skipped (counted as passed by libtest), {} ignored; {:.0} s\n",
            self.n_binaries,
            self.failed,
            skips.len(),
            self.ignored,
            took.as_secs_f64()
        );
        for (test, reason) in &skips {
            out.push_str(&format!("   SKIPPED {test}: {reason}\n"));
        }
        for test in &self.failures {
            out.push_str(&format!("   FAILED  {test}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_libtest_result_lines_and_failed_names() {
        let mut summary = Summary::default();
        for line in [
            "running 3 tests",
            "test a::b ... ok",
            "test a::c ... FAILED",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: ok. 10 passed; 0 failed; 2 ignored; 0 measured; 5 filtered out; finished in 1.50s",
        ] {
            summary.read_line(line);
        }
        assert_eq!(
            summary,
            Summary {
                passed: 12,
                failed: 1,
                ignored: 2,
                n_binaries: 2,
                failures: vec!["a::c".to_owned()],
            }
        );
        let report = summary.report(
            "qemu_e2e::boots\tneeds root\nrom_cli::qrom\tmstflint is not installed\n",
            std::time::Duration::from_secs(61),
        );
        assert!(
            report.contains("13 tests run in 2 binaries, 1 failed, 2 skipped"),
            "{report}"
        );
        assert!(
            report.contains("SKIPPED qemu_e2e::boots: needs root"),
            "{report}"
        );
        assert!(report.contains("FAILED  a::c"), "{report}");
    }
}

//! The FlexBoot smoke test: boot a legacy `.rom` in QEMU as a plain option ROM and read
//! SeaBIOS's serial console.
//!
//! A `.mrom` needs the real card, but a ConnectX-3 `.rom` built without
//! `-DFLASH_CONFIGURATION` runs from `-option-rom` with no NIC at all: SeaBIOS runs its
//! init vector, boots its BEV after the disks fail, and FlexBoot prints its banner and
//! runs the embedded script, which finds no network and exits back to the BIOS. No
//! network device exists in the VM (`-net none`), so nothing leaves the machine.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// What the console showed.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The whole serial console, carriage returns removed.
    pub console: String,
    /// Seconds from QEMU's start until every expected line had appeared.
    pub seconds: f64,
}

/// Boots `rom` as an option ROM and waits until every string in `expect` has appeared on
/// the serial console, in that order, or fails after `timeout` with the console so far.
pub fn boot_option_rom(
    sh: &Shell,
    rom: &Path,
    serial_log: &Path,
    expect: &[&str],
    timeout: Duration,
) -> Result<Boot> {
    if serial_log.exists() {
        std::fs::remove_file(serial_log)?;
    }
    let serial = format!("file:{}", serial_log.display());
    let command = cmd!(
        sh,
        "qemu-system-x86_64 -accel tcg -m 256 -nographic -monitor none -serial {serial} -net none -no-reboot -option-rom {rom}"
    );
    let mut command: std::process::Command = command.into();
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let child = command
        .spawn()
        .context("cannot start qemu-system-x86_64 (Debian package qemu-system-x86)")?;
    let mut vm = Vm(Some(child));
    loop {
        let console = std::fs::read(serial_log)
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\r', ""))
            .unwrap_or_default();
        if appear_in_order(&console, expect) {
            return Ok(Boot {
                console,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if let Some(status) = vm.try_wait()? {
            let stderr = vm.stderr();
            bail!(
                "QEMU exited ({status}) before the console showed {expect:?}\nstderr: {stderr}\nconsole:\n{console}"
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "the console did not show {expect:?} within {} s; console so far:\n{console}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether each of `expect` occurs in `console`, each after the previous one.
pub fn appear_in_order(console: &str, expect: &[&str]) -> bool {
    let mut rest = console;
    for line in expect {
        match rest.find(line) {
            Some(at) => rest = &rest[at + line.len()..],
            None => return false,
        }
    }
    true
}

/// The literal text of each `echo` in an iPXE script, up to its first `${`: what the
/// console shows when that line runs, whatever the settings hold.
pub fn echo_texts(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("echo "))
        .map(|text| text.trim_start_matches("-n ").trim())
        .map(|text| {
            text.split("${")
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_string()
        })
        .filter(|text| !text.is_empty())
        .collect()
}

/// Kills QEMU when dropped, so a failed assertion leaves no VM behind.
struct Vm(Option<std::process::Child>);

impl Vm {
    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        match self.0.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => Ok(None),
        }
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(stderr) = self.0.as_mut().and_then(|child| child.stderr.as_mut()) {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_expected_lines_only_in_order() {
        let console = "SeaBIOS\nFlexBoot v3.4.812\nsixboot: configuring\nNo bootable device.\n";
        assert!(appear_in_order(
            console,
            &["FlexBoot v3.4.812", "sixboot: configuring", "No bootable"]
        ));
        assert!(!appear_in_order(
            console,
            &["sixboot: configuring", "FlexBoot v3.4.812"]
        ));
        assert!(!appear_in_order(console, &["FlexBoot v3.4.719"]));
    }

    #[test]
    fn echo_texts_stop_at_the_first_setting() {
        let script = "#!ipxe\necho sixboot: configuring IPv6\n  echo -n sixboot: chaining ${filename}\necho ${x}\nchain x\n";
        assert_eq!(
            echo_texts(script),
            ["sixboot: configuring IPv6", "sixboot: chaining"]
        );
    }
}

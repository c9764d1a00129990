//! What the QEMU end-to-end tests share: one VM at a time, a lab per test, assertions
//! that print the console and the server's log when a stage is missing.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sixboot::mac::Mac;
use sixboot_lab::lab::{Lab as LabInner, LabOptions, ServerKind};
use sixboot_lab::qemu::{find_our_rom, need_vm, Firmware, NetBoot, STOCK_ROM};
use sixboot_lab::server::Expect;
use sixboot_lab::timeline::format_table;
use sixboot_lab::{BootRun, Event, RomFlavor};

/// TCG VMs are CPU-bound: two at once on two cores would only make both slow.
pub fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The server under test: `sixboot boot-server`; `SIXBOOT_E2E_SERVER=reference` picks
/// dnsmasq + nginx instead (to tell a server bug from a lab bug).
pub fn server_kind() -> ServerKind {
    match std::env::var("SIXBOOT_E2E_SERVER").as_deref() {
        Ok("reference") => ServerKind::Reference,
        _ => ServerKind::Sixboot,
    }
}

pub struct Lab {
    pub inner: LabInner,
}

impl Lab {
    /// Starts a lab tagged `tag`; `None` after a recorded skip when the machine cannot run
    /// it (not root, no QEMU or OVMF: a failure under CI); panics with the lab's message
    /// when setting it up fails.
    #[allow(dead_code)] // The ARM64 and FlexBoot tests bring their own image.
    pub fn new(tag: &str, firmware: Firmware) -> Option<Lab> {
        if !need_vm(firmware) {
            return None;
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let rom = find_our_rom(&root, firmware).unwrap_or_else(|| {
            eprintln!("no sixboot ROM for {firmware} built (cargo xtask build-rom); using Debian's {STOCK_ROM}");
            PathBuf::from(STOCK_ROM)
        });
        Some(Lab::start(tag, firmware, RomFlavor::Ipxe, rom))
    }

    /// As [`Lab::new`] with this ROM of this flavour (for the ARM64 machine: the
    /// `ipxe.efi` its firmware is served); the caller has checked `need_vm`.
    pub fn start(tag: &str, firmware: Firmware, flavor: RomFlavor, rom: PathBuf) -> Lab {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("qemu-e2e-{tag}"));
        let _ = std::fs::remove_dir_all(&work);
        let options = LabOptions {
            tag: tag.to_string(),
            firmware,
            rom,
            flavor,
            server: server_kind(),
            root,
            work,
            sixboot_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_sixboot"))),
        };
        eprintln!(
            "lab {tag}: {firmware}, {flavor} {}, server {}",
            options.rom.display(),
            options.server
        );
        match LabInner::start(options) {
            Ok(inner) => Lab { inner },
            Err(err) => panic!("cannot set up the QEMU lab: {err}"),
        }
    }

    /// Boots `mac`, echoing the console with times since power-on.
    #[allow(dead_code)] // The ARM64 test names how its firmware boots.
    pub fn boot(&self, mac: &Mac, expect: Expect, limit: Duration) -> BootRun {
        let how = NetBoot::default_for(self.inner.options.firmware);
        self.boot_via(how, mac, expect, limit)
    }

    /// As [`Lab::boot`], starting the network boot `how` (ARM64: PXE or HTTP Boot).
    pub fn boot_via(&self, how: NetBoot, mac: &Mac, expect: Expect, limit: Duration) -> BootRun {
        let mut echo = |event: Event<'_>| eprintln!("{event}");
        match self.inner.boot_via(how, mac, expect, limit, &mut echo) {
            Ok(run) => run,
            Err(err) => panic!("cannot boot the VM: {err}"),
        }
    }

    /// Every stage seen, in order; prints the table either way.
    pub fn assert_chain(&self, run: &BootRun) {
        eprintln!(
            "stages ({}, server {}, ROM {}):\n{}",
            self.inner.options.firmware,
            self.inner.server.label(),
            self.inner.options.rom.display(),
            format_table(&run.timeline)
        );
        if let Err(problem) = run.timeline.check(Duration::from_millis(500)) {
            panic!(
                "{problem}\n{}\nfiles: {}",
                run.explain(),
                self.inner.work().display()
            );
        }
    }
}

/// Builds one image with `cargo xtask build-rom --no-install ARGS --out DIR` (build-rom's
/// default work directory, so its cache is the one `.ci/run` and the build tests fill:
/// nothing is compiled when nothing changed) and returns `DIR/file` and the wall time.
/// Panics with build-rom's output when it fails.
#[allow(dead_code)] // Not every test binary builds an image.
pub fn build_rom(label: &str, args: &[&str], file: &str) -> (PathBuf, Duration) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-dist"));
    let started = Instant::now();
    let output = sixboot_lab::nested_cargo(root)
        .args(["xtask", "build-rom", "--no-install"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap_or_else(|err| panic!("cannot run cargo xtask build-rom: {err}"));
    let took = started.elapsed();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "cargo xtask build-rom {args:?} failed:\n{log}"
    );
    let path = out.join(file);
    assert!(
        path.is_file(),
        "build-rom {args:?} wrote no {file} under {}:\n{log}",
        out.display()
    );
    eprintln!(
        "build-rom {args:?}: {} in {:.1} s",
        path.display(),
        took.as_secs_f64()
    );
    (path, took)
}

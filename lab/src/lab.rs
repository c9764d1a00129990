//! A whole lab: link, boot server, site and VM settings, as the test, `cargo xtask
//! qemu-test` and `cargo xtask bench boot` use it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::guest::GuestImages;
use super::netns::NetEnv;
use super::qemu::{check_tools, Firmware, NetBoot, Vm, VmSpec};
use super::server::{lab_extra, BootServer, Expect, ReferenceStack, Site, Sixboot};
use super::{
    boot_stages, cache_dir, known_mac, watch, BootRun, Event, LabError, Result, RomFlavor,
};
use sixboot::mac::Mac;

/// Which boot server answers on the lab's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `sixboot boot-server` (RA, DHCPv6 and HTTP in one process).
    Sixboot,
    /// dnsmasq (RA + DHCPv6) and nginx (HTTP).
    Reference,
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerKind::Sixboot => "sixboot",
            ServerKind::Reference => "dnsmasq+nginx",
        })
    }
}

/// How to set a lab up.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Names the namespace and interfaces (`sbq-<tag>…`); 1-6 letters or digits.
    pub tag: String,
    pub firmware: Firmware,
    /// The NIC's option ROM under test. For firmware that boots from the network by
    /// itself ([`Firmware::Arm64Uefi`]: the NIC has no ROM) the program the server hands
    /// it instead: the ARM64 `ipxe.efi`.
    pub rom: PathBuf,
    /// Which iPXE [`LabOptions::rom`] is (its banner, how its script passes the address).
    pub flavor: RomFlavor,
    pub server: ServerKind,
    /// The workspace root (for `target/` and `sixboot`'s binary).
    pub root: PathBuf,
    /// Where configs, logs and consoles go.
    pub work: PathBuf,
    /// The `sixboot` binary; default `root/target/debug/sixboot`.
    pub sixboot_bin: Option<PathBuf>,
}

/// A running lab. Fields drop in order: server first, then the namespace.
pub struct Lab {
    pub server: Box<dyn BootServer>,
    pub net: NetEnv,
    pub options: LabOptions,
    pub images: GuestImages,
    n_boots: std::cell::Cell<u32>,
}

impl Lab {
    /// Prepares the guest, creates the link and starts the server.
    pub fn start(options: LabOptions) -> Result<Lab> {
        check_tools(options.firmware)?;
        // First, so that a run without root fails at once and says why.
        let net = NetEnv::create(&options.tag)?;
        let guest = options.work.join("guest");
        let images = if options.firmware.is_arm64() {
            GuestImages::prepare_arm64(&guest)?
        } else {
            GuestImages::prepare(&cache_dir(&options.root), &guest)?
        };
        let site = Site::write(
            &options.work.join("site"),
            &images,
            &known_mac(),
            options.flavor,
        )?;
        let server: Box<dyn BootServer> = match options.server {
            ServerKind::Reference if options.firmware.is_arm64() => {
                return Err(LabError::Missing(
                    "the reference stack (dnsmasq + nginx) serves no per-architecture firmware \
                     files: boot the ARM64 machine against sixboot"
                        .into(),
                ))
            }
            ServerKind::Reference => Box::new(ReferenceStack::start(
                &net,
                &options.work,
                &site,
                &known_mac(),
            )?),
            ServerKind::Sixboot => Box::new(Sixboot::start_with(
                &net,
                &options.work,
                &site,
                &options
                    .sixboot_bin
                    .clone()
                    .unwrap_or_else(|| options.root.join("target/debug/sixboot")),
                &lab_extra(
                    options.firmware,
                    options.flavor,
                    &options.work,
                    &site,
                    &images,
                    &options.rom,
                )?,
            )?),
        };
        Ok(Lab {
            server,
            net,
            options,
            images,
            n_boots: std::cell::Cell::new(0),
        })
    }

    /// Powers on a VM with `mac` and watches it until `expect` is fulfilled or `limit`;
    /// it boots as [`NetBoot::default_for`] its firmware.
    pub fn boot(
        &self,
        mac: &Mac,
        expect: Expect,
        limit: Duration,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<BootRun> {
        let how = NetBoot::default_for(self.options.firmware);
        self.boot_via(how, mac, expect, limit, on_event)
    }

    /// As [`Lab::boot`], starting the network boot `how`. The firmware's own PXE and HTTP
    /// Boot are for the ARM64 machine (the lab serves the boot file only for it); a NIC
    /// ROM for the x86 ones.
    pub fn boot_via(
        &self,
        how: NetBoot,
        mac: &Mac,
        expect: Expect,
        limit: Duration,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<BootRun> {
        let firmware = self.options.firmware;
        if firmware.is_arm64() == (how == NetBoot::Rom) {
            return Err(LabError::Missing(format!(
                "the lab boots {firmware} through {}, not {how}",
                NetBoot::default_for(firmware)
            )));
        }
        let n = self.n_boots.get() + 1;
        self.n_boots.set(n);
        let spec = VmSpec {
            firmware,
            nic: how.nic(&self.options.rom),
            mac: *mac,
            uuid: uuid_for(mac),
            memory_mb: 512,
        };
        let label = format!("boot{n}-{}", mac.hyphenated());
        let mut vm = Vm::start(&self.net, &spec, &self.options.work, &label)?;
        let stages = boot_stages(
            self.server.as_ref(),
            firmware,
            how,
            self.options.flavor,
            mac,
            expect,
        );
        let run = watch(&mut vm, &self.server.logs(), stages, limit, on_event);
        Ok(run)
    }

    /// The work directory.
    pub fn work(&self) -> &Path {
        &self.options.work
    }
}

/// A fixed SMBIOS UUID per MAC, so that each VM sends its own DUID-UUID.
pub fn uuid_for(mac: &Mac) -> String {
    let hex = mac.to_string().replace(':', "");
    format!("5b5b0000-0000-4000-8000-{hex}")
}

//! The lab's virtual machine: QEMU with software emulation (TCG; KVM dies on iPXE's RDRAND
//! here), a virtio-net NIC on the lab's tap carrying the ROM under test (or no ROM, so that
//! OVMF's own PXE and HTTP Boot run), its serial console in a file.
//!
//! The NIC's PCI device ID follows the ROM: QEMU's `virtio-net-pci` is the transitional
//! 1af4:1000, but Debian's `efi-virtio.rom` is built for the modern 1af4:1041 only (both of
//! its images), so with such a ROM the NIC is made modern-only (`disable-legacy=on`);
//! otherwise SeaBIOS silently skips the ROM.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Instant;

use super::netns::NetEnv;
use super::{io_error, LabError, Result};
use sixboot::mac::Mac;

/// Debian's stock dual-stack iPXE for QEMU's virtio-net (package `ipxe-qemu`).
pub const STOCK_ROM: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";
/// OVMF's code and variable store (package `ovmf`).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF's variable store template; each VM gets its own copy (it writes boot entries).
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Which firmware starts the NIC's ROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, `-machine pc`: runs the ROM's legacy image.
    Bios,
    /// OVMF, `-machine q35` with pflash: runs the ROM's EFI image.
    Uefi,
}

impl std::fmt::Display for Firmware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        })
    }
}

/// What the VM's NIC boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nic {
    /// The NIC carries this option ROM (the iPXE under test); OVMF's own network boot
    /// entries are off.
    Rom(PathBuf),
    /// No option ROM (`romfile=`): the firmware's own network stack boots, OVMF only,
    /// through these IPv6 entries in this order (PXEv6, then HTTPv6). IPv4 PXE is always
    /// off (each IPv4 entry waits about a minute on the lab's IPv6-only link).
    FirmwareOnly { pxe6: bool, http6: bool },
}

/// What to boot.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub firmware: Firmware,
    pub nic: Nic,
    pub mac: Mac,
    /// The SMBIOS UUID, so each VM sends its own DUID-UUID (without one, every VM sends
    /// the same all-zero DUID).
    pub uuid: String,
    pub memory_mb: u32,
}

impl VmSpec {
    /// The QEMU arguments for this VM, writing its console to `serial`; `rom_device` is
    /// the PCI device ID of the NIC's ROM (none without a ROM).
    pub fn args(
        &self,
        tap: &str,
        serial: &Path,
        vars: &Path,
        rom_device: Option<u16>,
    ) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        match self.firmware {
            Firmware::Bios => push(&["-machine", "pc"]),
            Firmware::Uefi => {
                push(&["-machine", "q35"]);
                push(&[
                    "-drive",
                    &format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
                    "-drive",
                    &format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
                    // OVMF's IPv4 PXE entry would wait about a minute on this link.
                    "-fw_cfg",
                    "name=opt/org.tianocore/IPv4PXESupport,string=n",
                ]);
                let (pxe6, http6) = match self.nic {
                    // Only the NIC's iPXE should boot.
                    Nic::Rom(_) => (false, false),
                    Nic::FirmwareOnly { pxe6, http6 } => (pxe6, http6),
                };
                if !pxe6 {
                    push(&["-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"]);
                }
                if http6 {
                    // No IPv4 stack, or the HTTPv4 entry waits for DHCPv4 first.
                    push(&["-fw_cfg", "name=opt/org.tianocore/IPv4Support,string=n"]);
                    if !pxe6 {
                        // HTTPv6 first can fail at about 4 s, before the link is up
                        // (FIELD-NOTES); the menu's delay avoids it.
                        push(&["-boot", "menu=on,splash-time=5000"]);
                    }
                }
            }
        }
        let legacy = if rom_device == Some(0x1041) {
            ",disable-legacy=on"
        } else {
            ""
        };
        push(&[
            "-accel",
            "tcg",
            "-m",
            &self.memory_mb.to_string(),
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            &format!("file:{}", serial.display()),
            "-no-reboot",
            "-uuid",
            &self.uuid,
            "-netdev",
            &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
            "-device",
            &format!(
                "virtio-net-pci,netdev=n0,mac={},romfile={},bootindex=1{legacy}",
                self.mac,
                match &self.nic {
                    Nic::Rom(rom) => rom.display().to_string(),
                    Nic::FirmwareOnly { .. } => String::new(),
                }
            ),
        ]);
        args
    }
}

/// A running VM; killed when dropped. It holds [`crate::lock::vm_lock`] while it runs.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    pub serial: PathBuf,
    /// When QEMU was started: the lab's "power-on".
    pub started: Instant,
    stderr: PathBuf,
    /// One TCG VM at a time on the machine; released when the VM is dropped.
    _vm_lock: crate::lock::FileLock,
}

impl Vm {
    /// Starts QEMU inside the lab's namespace; files go to `work` (named after `label`).
    pub fn start(net: &NetEnv, spec: &VmSpec, work: &Path, label: &str) -> Result<Vm> {
        let device = match &spec.nic {
            Nic::Rom(path) => {
                let rom = std::fs::read(path)
                    .map_err(io_error(format!("cannot read the ROM {}", path.display())))?;
                Some(rom_device_id(&rom).ok_or_else(|| {
                    LabError::Missing(format!(
                        "{} is not a PCI option ROM (no 55 AA / PCIR)",
                        path.display()
                    ))
                })?)
            }
            Nic::FirmwareOnly { .. } if spec.firmware == Firmware::Bios => {
                return Err(LabError::Missing(
                    "a NIC without ROM boots only with Firmware::Uefi: SeaBIOS has no IPv6 \
                     network boot of its own"
                        .into(),
                ))
            }
            Nic::FirmwareOnly { .. } => None,
        };
        std::fs::create_dir_all(work)
            .map_err(io_error(format!("cannot create {}", work.display())))?;
        let serial = work.join(format!("{label}.serial.log"));
        let stderr = work.join(format!("{label}.qemu.log"));
        let vars = work.join(format!("{label}.OVMF_VARS.fd"));
        let _ = std::fs::remove_file(&serial);
        if spec.firmware == Firmware::Uefi {
            std::fs::copy(OVMF_VARS, &vars).map_err(io_error(format!(
                "cannot copy {OVMF_VARS} (install Debian's ovmf)"
            )))?;
        }
        let args = spec.args(&net.tap, &serial, &vars, device);
        let log = std::fs::File::create(&stderr)
            .map_err(io_error(format!("cannot create {}", stderr.display())))?;
        let vm_lock = crate::lock::vm_lock()?;
        let started = Instant::now();
        let child = net
            .command("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_error("dup"))?)
            .stderr(log)
            .spawn()
            .map_err(io_error(
                "cannot start qemu-system-x86_64 (install Debian's qemu-system-x86)",
            ))?;
        Ok(Vm {
            child,
            serial,
            started,
            stderr,
            _vm_lock: vm_lock,
        })
    }

    /// Whether QEMU has exited (the guest powered off, or QEMU failed).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// QEMU's own messages (stderr), for error reports.
    pub fn qemu_log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops the VM now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// sixboot's own QEMU ROM for `firmware`, when one was built: `SIXBOOT_QEMU_ROM` /
/// `SIXBOOT_QEMU_EFIROM`, else the first `1af41000.rom` / `1af41000.efirom` under
/// `root/dist` (where `cargo xtask build-rom` packages its images).
pub fn find_our_rom(root: &Path, firmware: Firmware) -> Option<PathBuf> {
    let (var, name) = match firmware {
        Firmware::Bios => ("SIXBOOT_QEMU_ROM", "1af41000.rom"),
        Firmware::Uefi => ("SIXBOOT_QEMU_EFIROM", "1af41000.efirom"),
    };
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    fn search(dir: &Path, name: &str, depth: u32) -> Option<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .collect();
        entries.sort();
        if let Some(found) = entries
            .iter()
            .find(|path| path.is_file() && path.file_name().is_some_and(|n| n == name))
        {
            return Some(found.clone());
        }
        if depth == 0 {
            return None;
        }
        entries
            .iter()
            .filter(|path| path.is_dir())
            .find_map(|path| search(path, name, depth - 1))
    }
    search(&root.join("dist"), name, 3)
}

/// The PCI device ID of a ROM's first image (PCI Firmware Spec 3.0: 55 AA, then the PCIR
/// offset at 0x18, the device ID at PCIR + 6).
pub fn rom_device_id(rom: &[u8]) -> Option<u16> {
    if rom.get(0..2)? != [0x55, 0xaa] {
        return None;
    }
    let pcir = usize::from(u16::from_le_bytes([*rom.get(0x18)?, *rom.get(0x19)?]));
    if rom.get(pcir..pcir + 4)? != b"PCIR" {
        return None;
    }
    Some(u16::from_le_bytes([
        *rom.get(pcir + 6)?,
        *rom.get(pcir + 7)?,
    ]))
}

/// Whether this machine has what a VM needs; the message says what to install.
/// Whether this machine can run a lab VM with `firmware` (root, QEMU, OVMF for UEFI); a
/// miss is recorded through [`crate::need`] (a failure under CI, which installs them).
pub fn need_vm(firmware: Firmware) -> bool {
    crate::need::root()
        && crate::need::program("qemu-system-x86_64", "qemu-system-x86")
        && (firmware == Firmware::Bios || crate::need::file(OVMF_CODE, "ovmf"))
}

/// The tools a VM needs, as an error naming the package to install.
pub fn check_tools(firmware: Firmware) -> Result<()> {
    let which = |program: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    if !which("qemu-system-x86_64") {
        return Err(LabError::Missing(
            "qemu-system-x86_64 not found: apt-get install qemu-system-x86".into(),
        ));
    }
    if firmware == Firmware::Uefi && !Path::new(OVMF_CODE).exists() {
        return Err(LabError::Missing(format!(
            "{OVMF_CODE} not found: apt-get install ovmf"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rom_device_id_reads_the_first_pcir() {
        let mut rom = vec![0u8; 0x40];
        rom[0] = 0x55;
        rom[1] = 0xaa;
        rom[0x18] = 0x1c;
        rom[0x1c..0x20].copy_from_slice(b"PCIR");
        rom[0x20..0x22].copy_from_slice(&0x1af4u16.to_le_bytes());
        rom[0x22..0x24].copy_from_slice(&0x1041u16.to_le_bytes());
        assert_eq!(rom_device_id(&rom), Some(0x1041));
        rom[0x1c] = b'X';
        assert_eq!(rom_device_id(&rom), None);
        assert_eq!(rom_device_id(&[0x55, 0xaa]), None);
        assert_eq!(rom_device_id(b""), None);
    }

    #[test]
    fn a_modern_only_rom_gets_a_modern_only_nic() {
        let spec = VmSpec {
            firmware: Firmware::Bios,
            nic: Nic::Rom(PathBuf::from("/x.rom")),
            mac: "52:54:00:5b:00:01".parse().unwrap(),
            uuid: "00000000-0000-4000-8000-000000000001".into(),
            memory_mb: 512,
        };
        let args = spec.args("sbq-t-tap", Path::new("/s"), Path::new("/v"), Some(0x1041));
        let device = args
            .iter()
            .find(|a| a.starts_with("virtio-net-pci"))
            .unwrap();
        assert!(device.ends_with(",disable-legacy=on"), "{device}");
        assert!(device.contains("bootindex=1"));
        assert!(args.contains(&"tcg".to_string()));
        let args = spec.args("sbq-t-tap", Path::new("/s"), Path::new("/v"), Some(0x1000));
        let device = args
            .iter()
            .find(|a| a.starts_with("virtio-net-pci"))
            .unwrap();
        assert!(!device.contains("disable-legacy"), "{device}");
    }

    #[test]
    fn a_nic_without_rom_lets_ovmf_boot_through_the_entries_asked_for() {
        let mut spec = VmSpec {
            firmware: Firmware::Uefi,
            nic: Nic::FirmwareOnly {
                pxe6: true,
                http6: false,
            },
            mac: "52:54:00:5b:00:01".parse().unwrap(),
            uuid: "00000000-0000-4000-8000-000000000001".into(),
            memory_mb: 512,
        };
        let has = |args: &[String], text: &str| args.iter().any(|a| a == text);
        let args = spec.args("t", Path::new("/s"), Path::new("/v"), None);
        let device = args
            .iter()
            .find(|a| a.starts_with("virtio-net-pci"))
            .unwrap();
        assert!(device.contains(",romfile=,"), "{device}");
        assert!(has(&args, "name=opt/org.tianocore/IPv4PXESupport,string=n"));
        assert!(!has(
            &args,
            "name=opt/org.tianocore/IPv6PXESupport,string=n"
        ));
        assert!(!has(&args, "name=opt/org.tianocore/IPv4Support,string=n"));
        spec.nic = Nic::FirmwareOnly {
            pxe6: false,
            http6: true,
        };
        let args = spec.args("t", Path::new("/s"), Path::new("/v"), None);
        assert!(has(&args, "name=opt/org.tianocore/IPv6PXESupport,string=n"));
        assert!(has(&args, "name=opt/org.tianocore/IPv4Support,string=n"));
        assert!(has(&args, "menu=on,splash-time=5000"));
    }
}

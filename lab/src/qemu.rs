//! The lab's virtual machine: QEMU with software emulation (TCG; KVM dies on iPXE's RDRAND
//! here), a virtio-net NIC on the lab's tap carrying the ROM under test (or no ROM, so that
//! the UEFI firmware's own PXE and HTTP Boot run), its serial console in a file. x86 PCs
//! (SeaBIOS, OVMF) run in `qemu-system-x86_64`; ARM64 UEFI (AAVMF) in `qemu-system-aarch64
//! -machine virt`, whose console is the PL011 UART (`ttyAMA0` to Linux).
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
/// AAVMF, edk2 for QEMU's ARM64 `virt` machine (package `qemu-efi-aarch64`): code, 64 MiB.
pub const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
/// AAVMF's variable store template (64 MiB, the size `virt`'s second flash bank must have).
pub const AAVMF_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";

/// Which firmware the machine runs (and so which machine it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, `-machine pc`: runs the ROM's legacy image.
    Bios,
    /// OVMF, `-machine q35` with pflash: runs the ROM's EFI image, or its own PXE and
    /// HTTP Boot with a NIC without ROM.
    Uefi,
    /// AAVMF, `qemu-system-aarch64 -machine virt -cpu cortex-a57` with pflash: ARM64 UEFI,
    /// which boots with its own PXE and HTTP Boot (a NIC without ROM: iPXE builds no
    /// ARM64 option ROM). Cortex-A57 rather than `max`: TCG emulates pointer
    /// authentication slowly, and nothing here needs it.
    Arm64Uefi,
}

/// What QEMU and the firmware need from the machine: binaries, files, Debian packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareFiles {
    /// The QEMU system emulator and its Debian package.
    pub qemu: (&'static str, &'static str),
    /// The pflash code and variable-store template, and their Debian package (UEFI).
    pub pflash: Option<(&'static str, &'static str, &'static str)>,
}

impl Firmware {
    /// The emulator and firmware files this machine runs on.
    pub fn files(self) -> FirmwareFiles {
        match self {
            Firmware::Bios => FirmwareFiles {
                qemu: ("qemu-system-x86_64", "qemu-system-x86"),
                pflash: None,
            },
            Firmware::Uefi => FirmwareFiles {
                qemu: ("qemu-system-x86_64", "qemu-system-x86"),
                pflash: Some((OVMF_CODE, OVMF_VARS, "ovmf")),
            },
            Firmware::Arm64Uefi => FirmwareFiles {
                qemu: ("qemu-system-aarch64", "qemu-system-arm"),
                pflash: Some((AAVMF_CODE, AAVMF_VARS, "qemu-efi-aarch64")),
            },
        }
    }

    /// Whether the machine is ARM64 (its guest kernel, console and boot files are).
    pub fn is_arm64(self) -> bool {
        self == Firmware::Arm64Uefi
    }
}

impl std::fmt::Display for Firmware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
            Firmware::Arm64Uefi => "ARM64 UEFI",
        })
    }
}

/// What the VM's NIC boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nic {
    /// The NIC carries this option ROM (the iPXE under test); OVMF's own network boot
    /// entries are off.
    Rom(PathBuf),
    /// No option ROM (`romfile=`): the firmware's own network stack boots (OVMF or
    /// AAVMF), through these IPv6 entries in this order (PXEv6, then HTTPv6). IPv4 PXE is
    /// always off (each IPv4 entry waits about a minute on the lab's IPv6-only link).
    FirmwareOnly { pxe6: bool, http6: bool },
}

/// How a lab machine starts its network boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetBoot {
    /// The iPXE on the NIC's option ROM (SeaBIOS, OVMF).
    Rom,
    /// The UEFI firmware's own PXEv6, which loads the boot file over TFTP (ARM64).
    FirmwarePxe,
    /// The UEFI firmware's own HTTP Boot over IPv6 (ARM64).
    FirmwareHttp,
}

impl NetBoot {
    /// How `firmware` boots unless told otherwise: from the NIC's ROM, or (ARM64, for
    /// which iPXE builds no option ROM) with the firmware's own PXEv6.
    pub fn default_for(firmware: Firmware) -> NetBoot {
        match firmware {
            Firmware::Bios | Firmware::Uefi => NetBoot::Rom,
            Firmware::Arm64Uefi => NetBoot::FirmwarePxe,
        }
    }

    /// The NIC for this way of booting: `rom` on it, or no ROM and only this one of the
    /// firmware's IPv6 boot entries (the other would run after the first failed).
    pub fn nic(self, rom: &Path) -> Nic {
        match self {
            NetBoot::Rom => Nic::Rom(rom.to_path_buf()),
            NetBoot::FirmwarePxe => Nic::FirmwareOnly {
                pxe6: true,
                http6: false,
            },
            NetBoot::FirmwareHttp => Nic::FirmwareOnly {
                pxe6: false,
                http6: true,
            },
        }
    }
}

impl std::fmt::Display for NetBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetBoot::Rom => "NIC ROM",
            NetBoot::FirmwarePxe => "firmware PXEv6",
            NetBoot::FirmwareHttp => "firmware HTTP Boot",
        })
    }
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
            Firmware::Uefi => push(&["-machine", "q35"]),
            Firmware::Arm64Uefi => push(&["-machine", "virt", "-cpu", "cortex-a57"]),
        }
        if let Some((code, _, _)) = self.firmware.files().pflash {
            push(&[
                "-drive",
                &format!("if=pflash,format=raw,unit=0,readonly=on,file={code}"),
                "-drive",
                &format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
                // The IPv4 PXE entry would wait about a minute on this link (OVMF and
                // AAVMF both read these edk2 switches from fw_cfg).
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
                // Meant to drop the HTTPv4 entry, which runs before HTTPv6 and waits for
                // DHCPv4. AAVMF ignores it (its HTTPv4 entry still costs about 60 s):
                // upstream edk2 reads only IPv4PXESupport and IPv6PXESupport from fw_cfg
                // (OvmfPkg/Library/PxeBcPcdProducerLib).
                push(&["-fw_cfg", "name=opt/org.tianocore/IPv4Support,string=n"]);
                if !pxe6 {
                    // HTTPv6 first can fail at about 4 s, before the link is up
                    // (FIELD-NOTES); the menu's delay avoids it.
                    push(&["-boot", "menu=on,splash-time=5000"]);
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
                    "a NIC without ROM boots only with UEFI firmware: SeaBIOS has no IPv6 \
                     network boot of its own"
                        .into(),
                ))
            }
            Nic::FirmwareOnly { .. } => None,
        };
        if device.is_some() && spec.firmware == Firmware::Arm64Uefi {
            return Err(LabError::Missing(
                "the ARM64 machine boots a NIC without ROM (Nic::FirmwareOnly): iPXE builds \
                 no ARM64 option ROM, AAVMF loads ipxe.efi over PXE or HTTP Boot instead"
                    .into(),
            ));
        }
        let files = spec.firmware.files();
        std::fs::create_dir_all(work)
            .map_err(io_error(format!("cannot create {}", work.display())))?;
        let serial = work.join(format!("{label}.serial.log"));
        let stderr = work.join(format!("{label}.qemu.log"));
        let vars = work.join(format!("{label}.VARS.fd"));
        let _ = std::fs::remove_file(&serial);
        if let Some((_, template, package)) = files.pflash {
            std::fs::copy(template, &vars).map_err(io_error(format!(
                "cannot copy {template} (install Debian's {package})"
            )))?;
        }
        let args = spec.args(&net.tap, &serial, &vars, device);
        let log = std::fs::File::create(&stderr)
            .map_err(io_error(format!("cannot create {}", stderr.display())))?;
        let vm_lock = crate::lock::vm_lock()?;
        let started = Instant::now();
        let (qemu, package) = files.qemu;
        let child = net
            .command(qemu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_error("dup"))?)
            .stderr(log)
            .spawn()
            .map_err(io_error(format!(
                "cannot start {qemu} (install Debian's {package})"
            )))?;
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
/// `root/dist` (where `cargo xtask build-rom` packages its images). For the ARM64 machine,
/// which boots without a ROM, it is the program its firmware is served:
/// `SIXBOOT_ARM64_IPXE_EFI`, else `root/dist/arm64/ipxe.efi` (`build-rom --target arm64`).
pub fn find_our_rom(root: &Path, firmware: Firmware) -> Option<PathBuf> {
    let (var, name) = match firmware {
        Firmware::Bios => ("SIXBOOT_QEMU_ROM", "1af41000.rom"),
        Firmware::Uefi => ("SIXBOOT_QEMU_EFIROM", "1af41000.efirom"),
        Firmware::Arm64Uefi => ("SIXBOOT_ARM64_IPXE_EFI", "arm64/ipxe.efi"),
    };
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    if firmware == Firmware::Arm64Uefi {
        let path = root.join("dist").join(name);
        return path.is_file().then_some(path);
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

/// Whether this machine can run a lab VM with `firmware` (root, its QEMU, its UEFI
/// firmware); a miss is recorded through [`crate::need`] (a failure under CI, which
/// installs them).
pub fn need_vm(firmware: Firmware) -> bool {
    let files = firmware.files();
    crate::need::root()
        && crate::need::program(files.qemu.0, files.qemu.1)
        && match files.pflash {
            Some((code, _, package)) => crate::need::file(code, package),
            None => true,
        }
}

/// The tools a VM needs, as an error naming the package to install.
pub fn check_tools(firmware: Firmware) -> Result<()> {
    let files = firmware.files();
    let (qemu, package) = files.qemu;
    if crate::need::find_program(qemu).is_none() {
        return Err(LabError::Missing(format!(
            "{qemu} not found: apt-get install {package}"
        )));
    }
    if let Some((code, _, package)) = files.pflash {
        if !Path::new(code).exists() {
            return Err(LabError::Missing(format!(
                "{code} not found: apt-get install {package}"
            )));
        }
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

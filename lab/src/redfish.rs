//! A BMC for the lab: sushy-tools' Redfish emulator (the one OpenStack Ironic and Metal3
//! test against) with its libvirt driver, driving a real QEMU machine on the lab's link.
//!
//! libvirt runs as its *embedded* QEMU driver (`qemu:///embed?root=DIR`): the driver is
//! loaded into the emulator's own process, keeps every file (domain XML, monitor sockets,
//! logs, `etc/qemu.conf`) under DIR in the lab's work directory, and never talks to a
//! system libvirtd (none needs to be installed or running). The emulator runs inside the
//! lab's namespace, so QEMU does too, and the domain's NIC is the lab's pre-made tap
//! (`<interface type='ethernet'>` with `managed='no'`). A private libvirtd was not
//! needed: it would add a socket directory and a daemon to start and stop, for nothing
//! the embedded driver lacks here. Running the driver unprivileged does not work on this
//! kind of machine (`/dev/net/tun` is root-only); as root, Debian's driver resolves its
//! build-time user `libvirt-qemu` before it reads `qemu.conf` (which then says
//! `user = "root"`), so that user must exist ([`need_emulator`] says how to create it;
//! `cargo xtask test` does, as libvirt-daemon-system's postinst would).
//!
//! The domain ([`DomainSpec`]): SeaBIOS, a virtio disk first in the boot order whose
//! boot sector prints [`DISK_MARKER`] on COM1 and halts ([`marker_disk`]), then a virtio
//! NIC carrying the ROM under test, its serial console appended to a file across QEMU
//! restarts. There is no VGA: `<bios useserial='yes'/>` (QEMU's `sga` option ROM) puts
//! the BIOS text console, iPXE's included, on COM1 too, and ACPI is on so that the
//! guest's `poweroff -f` powers the machine off (without it the kernel only halts, and
//! the BMC would go on reporting `On`). The emulator answers on `[address]:8000` with HTTP basic auth (bcrypt
//! htpasswd made from the password file) and, when given a certificate, HTTPS.
//!
//! sushy-tools' libvirt driver makes every boot override persistent (it rewrites the
//! domain's boot order and always reports `BootSourceOverrideEnabled: Continuous`): it
//! has no `Once`. Its `ForceRestart` is destroy + create (a new QEMU process).

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::netns::NetEnv;
use super::server::{listening, log_file, wait_for};
use super::{io_error, run, LabError, Result};
use sixboot::mac::Mac;

/// The Python virtual environment with sushy-tools (under the lab's cache directory):
/// made from Debian's `/usr/bin/python3` with `--system-site-packages`, so that Debian's
/// `python3-libvirt` is importable.
pub const VENV: &str = "sushy-venv";
/// What `cargo xtask test` installs into [`VENV`] with pip: sushy-tools (FIELD-NOTES:
/// 2.2.0) and bcrypt, which the launcher uses to write the emulator's htpasswd file.
pub const PIP_PACKAGES: &[&str] = &["sushy-tools==2.2.0", "bcrypt==5.0.0"];
/// libvirt's QEMU driver module (Debian `libvirt-daemon-driver-qemu`).
pub const QEMU_DRIVER: &str =
    "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so";
/// Debian's libvirt Python binding (`python3-libvirt`).
pub const PYTHON_LIBVIRT: &str = "/usr/lib/python3/dist-packages/libvirt.py";
/// What the lab disk's boot sector prints on COM1.
pub const DISK_MARKER: &str = "SIXBOOT-DISK-BOOT";
/// The emulator's TCP port.
pub const PORT: u16 = 8000;

/// The venv's python, under `cache` (the lab's cache directory).
pub fn venv_python(cache: &Path) -> PathBuf {
    cache.join(VENV).join("bin/python")
}

/// Whether this machine can run the lab BMC: root, QEMU, libvirt's QEMU driver and its
/// Python binding, the sushy-tools venv, the `libvirt-qemu` user. Misses are recorded
/// through [`crate::need`] (failures under CI, whose `cargo xtask test` installs them).
pub fn need_emulator(cache: &Path) -> bool {
    if !(crate::need::root()
        && crate::need::program("qemu-system-x86_64", "qemu-system-x86")
        && crate::need::file(QEMU_DRIVER, "libvirt-daemon-driver-qemu")
        && crate::need::file(PYTHON_LIBVIRT, "python3-libvirt"))
    {
        return false;
    }
    let python = venv_python(cache);
    if !has_emulator_venv(cache) {
        crate::need::missing(format!(
            "needs sushy-tools in {}: /usr/bin/python3 -m venv --system-site-packages {} && \
             {} -m pip install {} (cargo xtask test does this)",
            cache.join(VENV).display(),
            cache.join(VENV).display(),
            python.display(),
            PIP_PACKAGES.join(" ")
        ));
        return false;
    }
    if run("getent", &["passwd", "libvirt-qemu"]).is_err() {
        crate::need::missing(
            "needs the user libvirt-qemu, which Debian's libvirt QEMU driver looks up at start \
             (libvirt-daemon-system's postinst makes it; without that package: groupadd --system \
             libvirt-qemu && useradd --system --gid libvirt-qemu --no-create-home --home-dir \
             /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu; cargo xtask test does this)",
        );
        return false;
    }
    true
}

/// Whether the venv under `cache` can import the emulator, bcrypt and libvirt.
pub fn has_emulator_venv(cache: &Path) -> bool {
    std::process::Command::new(venv_python(cache))
        .args(["-c", "import sushy_tools.emulator.main, bcrypt, libvirt"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes a 1 MiB raw disk whose MBR boot sector prints [`DISK_MARKER`] and CR LF to
/// COM1 (port 0x3f8) and halts: a "disk" that visibly boots, so a machine that should
/// not boot from the network and does not shows it on its console.
pub fn marker_disk(path: &Path) -> Result<()> {
    std::fs::write(path, boot_sector())
        .map_err(io_error(format!("cannot write {}", path.display())))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(format!("cannot open {}", path.display())))?;
    file.set_len(1 << 20)
        .map_err(io_error(format!("cannot size {}", path.display())))
}

/// The 512-byte boot sector of [`marker_disk`]: 16-bit real mode, loaded at 0x7c00.
pub fn boot_sector() -> Vec<u8> {
    let message = format!("{DISK_MARKER}\r\n\0");
    // cli; xor ax,ax; mov ds,ax; mov si,MSG; mov dx,0x3f8;
    // loop: lodsb; test al,al; jz halt; out dx,al; jmp loop; halt: hlt; jmp halt
    const CODE_LEN: u16 = 22;
    let msg = 0x7c00 + CODE_LEN;
    let mut sector = vec![0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xbe];
    sector.extend_from_slice(&msg.to_le_bytes());
    sector.extend_from_slice(&[0xba, 0xf8, 0x03]);
    sector.extend_from_slice(&[0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8]);
    sector.extend_from_slice(&[0xf4, 0xeb, 0xfd]);
    debug_assert_eq!(sector.len(), usize::from(CODE_LEN));
    sector.extend_from_slice(message.as_bytes());
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    sector
}

/// The lab machine the BMC controls.
#[derive(Debug, Clone)]
pub struct DomainSpec {
    /// The libvirt domain name (the Redfish system's `Name`).
    pub name: String,
    /// The SMBIOS UUID (the Redfish system's `Id`).
    pub uuid: String,
    pub mac: Mac,
    /// The NIC's option ROM.
    pub rom: PathBuf,
    pub memory_mb: u32,
}

impl DomainSpec {
    /// The domain XML: disk first in the boot order, then the NIC on `tap`.
    pub fn xml(&self, tap: &str, disk: &Path, console: &Path, rom_device: u16) -> String {
        // Debian's stock ROM is for the modern-only 1af4:1041 (see `qemu`).
        let model = if rom_device == 0x1041 {
            "virtio-non-transitional"
        } else {
            "virtio"
        };
        format!(
            r#"<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <bios useserial='yes'/>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <interface type='ethernet'>
      <mac address='{mac}'/>
      <target dev='{tap}' managed='no'/>
      <model type='{model}'/>
      <rom file='{rom}'/>
      <boot order='2'/>
    </interface>
    <serial type='file'>
      <source path='{console}' append='on'/>
      <target port='0'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
"#,
            name = self.name,
            uuid = self.uuid,
            memory = self.memory_mb,
            disk = disk.display(),
            mac = self.mac,
            rom = self.rom.display(),
            console = console.display(),
        )
    }
}

/// How the emulator is reached and who may use it.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Its address on the lab's bridge (added with `nodad`).
    pub address: Ipv6Addr,
    pub username: String,
    /// The file holding the password (first line), as the BMC's client reads it too.
    pub password_file: PathBuf,
    /// PEM certificate and key: HTTPS when given.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The lab's cache directory (the venv is under it).
    pub cache: PathBuf,
}

/// The running emulator and its machine. Dropping it destroys the domain (QEMU) and
/// stops the emulator; it holds [`crate::lock::vm_lock`] all the while.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    /// `http(s)://[address]:8000`
    pub url: String,
    /// The machine's serial console (appended across restarts).
    pub console: PathBuf,
    /// The emulator's own output (libvirt and Flask messages).
    pub log: PathBuf,
    /// The embedded driver's root.
    pub root: PathBuf,
    pub domain: DomainSpec,
    _vm_lock: crate::lock::FileLock,
}

impl Emulator {
    /// Writes the driver root, the disk and the domain under `work/bmc`, starts the
    /// emulator in `net`'s namespace (which defines and starts the domain), and waits
    /// until it answers on its port.
    pub fn start(
        net: &NetEnv,
        work: &Path,
        domain: &DomainSpec,
        options: &EmulatorOptions,
    ) -> Result<Emulator> {
        let dir = work.join("bmc");
        let _ = std::fs::remove_dir_all(&dir);
        // A short root: libvirt's monitor socket paths must fit in 108 bytes.
        let root = dir.join("lv");
        std::fs::create_dir_all(root.join("etc"))
            .map_err(io_error(format!("cannot create {}", root.display())))?;
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text)
                .map(|()| path.clone())
                .map_err(io_error(format!("cannot write {}", path.display())))
        };
        write(root.join("etc/qemu.conf"), QEMU_CONF.to_owned())?;
        let disk = dir.join("disk.img");
        marker_disk(&disk)?;
        let console = dir.join("console.log");
        let rom = std::fs::read(&domain.rom).map_err(io_error(format!(
            "cannot read the ROM {}",
            domain.rom.display()
        )))?;
        let device = crate::qemu::rom_device_id(&rom).ok_or_else(|| {
            LabError::Missing(format!(
                "{} is not a PCI option ROM (no 55 AA / PCIR)",
                domain.rom.display()
            ))
        })?;
        let xml = write(
            dir.join("domain.xml"),
            domain.xml(&net.tap, &disk, &console, device),
        )?;
        let address = options.address;
        run(
            "ip",
            &[
                "-n",
                &net.namespace,
                "addr",
                "add",
                &format!("{address}/64"),
                "dev",
                &net.bridge,
                "nodad",
            ],
        )?;
        let uri = format!("qemu:///embed?root={}", root.display());
        let mut config = format!(
            "SUSHY_EMULATOR_LISTEN_IP = '{address}'\nSUSHY_EMULATOR_LISTEN_PORT = {PORT}\n\
             SUSHY_EMULATOR_LIBVIRT_URI = '{uri}'\nSUSHY_EMULATOR_AUTH_FILE = '{auth}'\n",
            auth = dir.join("htpasswd").display(),
        );
        if let Some((cert, key)) = &options.tls {
            config.push_str(&format!(
                "SUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
                cert.display(),
                key.display()
            ));
        }
        let config = write(dir.join("emulator.conf"), config)?;
        let launcher = write(dir.join("launcher.py"), LAUNCHER.to_owned())?;
        let log = dir.join("emulator.log");
        let vm_lock = crate::lock::vm_lock()?;
        let python = venv_python(&options.cache);
        let child = net
            .command(&python.display().to_string())
            .arg(&launcher)
            .arg(&uri)
            .arg(&xml)
            .arg(&config)
            .arg(&options.username)
            .arg(&options.password_file)
            .arg(dir.join("htpasswd"))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log_file(&log)?)
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .map_err(io_error(format!("cannot open {}", log.display())))?,
            )
            .spawn()
            .map_err(io_error(format!(
                "cannot start {} (the sushy-tools venv)",
                python.display()
            )))?;
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut emulator = Emulator {
            child,
            url: format!("{scheme}://[{address}]:{PORT}"),
            console,
            log,
            root,
            domain: domain.clone(),
            _vm_lock: vm_lock,
        };
        let ready = wait_for(
            Duration::from_secs(60),
            "the Redfish emulator to listen",
            || listening(net, PORT) || matches!(emulator.child.try_wait(), Ok(Some(_))),
        );
        if let Ok(Some(status)) = emulator.child.try_wait() {
            return Err(LabError::Boot(format!(
                "the Redfish emulator exited at start ({status}):\n{}",
                emulator.log_text().trim()
            )));
        }
        ready?;
        Ok(emulator)
    }

    /// The emulator's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The machine's console so far (all boots), escapes removed.
    pub fn console_text(&self) -> String {
        let bytes = std::fs::read(&self.console).unwrap_or_default();
        crate::timeline::clean(&bytes)
    }

    /// Waits until `needle` occurs at least `count` times on the console, or `limit`.
    pub fn wait_console(&self, needle: &str, count: usize, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if self.console_text().matches(needle).count() >= count {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                let text = self.console_text();
                let lines: Vec<&str> = text.lines().collect();
                return Err(LabError::Boot(format!(
                    "`{needle}` not seen {count} time(s) on the console within {limit:?}; last \
                     lines:\n{}",
                    lines[lines.len().saturating_sub(25)..].join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The QEMU process of the domain, if running (from the driver's pid file).
    fn qemu_pid(&self) -> Option<i32> {
        let pid_file = self
            .root
            .join("run/qemu")
            .join(format!("{}.pid", self.domain.name));
        std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let qemu = self.qemu_pid();
        // SIGTERM: the launcher destroys its domains, then exits.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = qemu {
            // Gone already unless the launcher could not destroy it.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// `ROOT/etc/qemu.conf` of the embedded driver: QEMU as root (the tap and the lab's
/// files are root's), no relabelling, no cgroups or mount namespaces, QEMU's output to
/// plain files (there is no virtlogd).
const QEMU_CONF: &str = r#"user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
"#;

/// The process that hosts the embedded driver and the emulator (see its comments).
const LAUNCHER: &str = include_str!("redfish_launcher.py");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_sector_prints_the_marker_and_is_bootable() {
        let sector = boot_sector();
        assert_eq!(sector.len(), 512);
        assert_eq!(&sector[510..], &[0x55, 0xaa]);
        // mov si, imm16 points at the message.
        let msg = usize::from(u16::from_le_bytes([sector[6], sector[7]])) - 0x7c00;
        assert!(sector[msg..].starts_with(DISK_MARKER.as_bytes()));
        // The jz skips exactly `out dx,al` + `jmp loop`; the jmp lands on lodsb.
        assert_eq!(sector[msg - 3], 0xf4, "hlt before jmp $-3");
        let lodsb = sector.iter().position(|&b| b == 0xac).unwrap();
        let jmp = sector.iter().position(|&b| b == 0xeb).unwrap();
        assert_eq!(
            (jmp + 2) as i32 + i32::from(sector[jmp + 1] as i8),
            lodsb as i32
        );
    }

    #[test]
    fn the_domain_boots_its_disk_first_and_its_nic_second() {
        let spec = DomainSpec {
            name: "node1".into(),
            uuid: "5b5b0000-0000-4000-8000-5254005b0015".into(),
            mac: "52:54:00:5b:00:15".parse().unwrap(),
            rom: PathBuf::from("/r.rom"),
            memory_mb: 256,
        };
        let xml = spec.xml(
            "sbq-t-tap",
            Path::new("/d.img"),
            Path::new("/c.log"),
            0x1000,
        );
        let disk = xml.find("<boot order='1'/>").unwrap();
        let nic = xml.find("<boot order='2'/>").unwrap();
        assert!(xml[..disk].contains("device='disk'"));
        assert!(xml[disk..nic].contains("<interface type='ethernet'>"));
        assert!(xml.contains("<target dev='sbq-t-tap' managed='no'/>"));
        assert!(xml.contains("<model type='virtio'/>"));
        assert!(xml.contains("append='on'"));
        let stock = spec.xml("t", Path::new("/d"), Path::new("/c"), 0x1041);
        assert!(stock.contains("virtio-non-transitional"));
    }
}

//! The Debian installer in the lab (issue 21): our ROM → DHCPv6 → the host's script from
//! sixboot's built-in `debian-installer` templates → Debian's netboot `linux` + `initrd.gz`
//! → d-i's own DHCPv6 → the preseed over `http://[…]` → an early command that calls
//! `/done`. Shared by `tests/debian_installer_e2e.rs` and `cargo xtask bench boot`.
//!
//! The server is `sixboot boot-server` with the lab's usual link (RA with M and O,
//! `router_lifetime_secs = 0`, no SLAAC, the host's address reserved). The host runs the
//! built-in script template unchanged; its preseed is the built-in one plus one line, a
//! `preseed/early_command` that calls `/done` right after the preseed is loaded, so that
//! the test ends there instead of installing Debian (no disk, no mirror here).
//!
//! d-i tells what it does on two channels the lab reads: its serial console, and its
//! syslog, which the kernel line sends to the server's address (`log_host=`, busybox
//! syslogd `-R`) and a receiver thread in the namespace writes to `work/di-syslog.log`.
//! `DEBCONF_DEBUG=5` (developer level) puts every debconf command in that log, so a question d-i
//! shows is a line "<-- 0 question will be asked" (debconf's answer to INPUT; "<-- 30
//! question skipped" when the priority or a preseeded answer skips it).

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::lab::uuid_for;
use super::netns::NetEnv;
use super::qemu::{Firmware, Nic, Vm, VmSpec};
use super::server::{link_config, Sixboot};
use super::timeline::Stage;
use super::{
    io_error, known_mac, watch, BootRun, Event, LabError, Result, HOST_ADDRESS, SERVER_ADDRESS,
};

/// Debian's package with the netboot installer (`cargo xtask test` installs it).
pub const DI_PACKAGE: &str = "debian-installer-12-netboot-amd64";
/// Where that package puts the text installer's kernel and initrd.
pub const DI_DIR: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";
/// The marker the preseed's early command prints on the console.
pub const DONE_MARKER: &str = "SIXBOOT-DI-DONE";
/// What debconf answers in its log when d-i is about to show a question.
pub const QUESTION: &str = "question will be asked";

/// The Debian installer's lab: link, sixboot, syslog receiver.
pub struct DebianInstallerLab {
    /// Killed when dropped, before the namespace goes.
    _server: Sixboot,
    syslog_stop: Arc<AtomicBool>,
    syslog_thread: Option<std::thread::JoinHandle<()>>,
    /// The server's log (tracing, `RUST_LOG=info,sixboot=debug`).
    pub server_log: PathBuf,
    /// d-i's syslog, one datagram per line: `<seconds since the lab started> <message>`.
    pub di_syslog: PathBuf,
    pub work: PathBuf,
    pub net: NetEnv,
}

impl DebianInstallerLab {
    /// Creates the link, lays out the files, starts the syslog receiver and sixboot.
    pub fn start(tag: &str, work: &Path, sixboot: &Path) -> Result<DebianInstallerLab> {
        let net = NetEnv::create(tag)?;
        let _ = std::fs::remove_dir_all(work);
        let files = work.join("files/debian-installer");
        std::fs::create_dir_all(&files)
            .map_err(io_error(format!("cannot create {}", files.display())))?;
        for name in ["linux", "initrd.gz"] {
            let from = Path::new(DI_DIR).join(name);
            let to = files.join(name);
            // A hard link when /usr and the work directory share a file system.
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(io_error(format!(
                    "cannot copy {} (install Debian's {DI_PACKAGE})",
                    from.display()
                )))?;
            }
        }
        let preseed = format!(
            "{}\n# The lab stops here: /done right after the preseed is loaded.\n\
             d-i preseed/early_command string wget -q -O /dev/null {{{{ done_url }}}} \
             && echo {DONE_MARKER} > /dev/ttyS0\n",
            sixboot::installer::DEBIAN_INSTALLER.answer
        );
        let write = |name: &str, text: &str| {
            let path = work.join(name);
            std::fs::write(&path, text)
                .map(|()| path.clone())
                .map_err(io_error(format!("cannot write {}", path.display())))
        };
        write("preseed.j2", &preseed)?;
        let config = write("boot.toml", &config(&net.bridge, work))?;
        let di_syslog = work.join("di-syslog.log");
        let (syslog_stop, syslog_thread) = receive_syslog(&net, &di_syslog)?;
        let server_log = work.join("boot-server.log");
        let server = Sixboot::run(&net, &config, &server_log, sixboot)?;
        Ok(DebianInstallerLab {
            _server: server,
            syslog_stop,
            syslog_thread: Some(syslog_thread),
            server_log,
            di_syslog,
            work: work.to_path_buf(),
            net,
        })
    }

    /// Powers on the known host with `rom` and watches it until the preseed's early
    /// command has called `/done`, QEMU exits, or `limit` passes.
    pub fn boot(
        &self,
        rom: &Path,
        limit: Duration,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<BootRun> {
        let mac = known_mac();
        let spec = VmSpec {
            firmware: Firmware::Bios,
            nic: Nic::Rom(rom.to_path_buf()),
            mac,
            uuid: uuid_for(&mac),
            // d-i's lowmem mode starts below about 780 MB with this initrd.
            memory_mb: 1024,
        };
        let mut vm = Vm::start(&self.net, &spec, &self.work, "di")?;
        Ok(watch(
            &mut vm,
            &[self.server_log.clone(), self.di_syslog.clone()],
            stages(),
            limit,
            on_event,
        ))
    }
}

impl Drop for DebianInstallerLab {
    fn drop(&mut self) {
        self.syslog_stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.syslog_thread.take() {
            let _ = thread.join();
        }
    }
}

/// The stages of a d-i boot up to `/done`, console and server side (d-i's syslog counts
/// as the server side: it is written on the server).
pub fn stages() -> Vec<Stage> {
    let host = HOST_ADDRESS.to_string();
    let peer = format!("peer=[{host}]");
    vec![
        Stage::console("ipxe", &["Open Source Network Boot Firmware"]),
        Stage::server("srv:dhcpv6-ipxe", &["DHCPv6 lease", &host, "boot=Some"]),
        Stage::console("configured", &["Configuring", "(net0", " ok"]),
        Stage::server("srv:script", &["script served"]),
        Stage::console("script", &["sixboot: installing", "Debian installer"]),
        Stage::console("kernel", &["/debian-installer/linux", " ok"]),
        Stage::console("initrd", &["/debian-installer/initrd.gz", " ok"]),
        Stage::console("linux", &["Linux version"]),
        // d-i's own DHCPv6 (dhcp6c): a Request for the reserved address; iPXE's carried
        // a boot-file URL, this one does not.
        Stage::server(
            "srv:di-dhcpv6",
            &["DHCPv6 lease", "Request", &host, "boot=None"],
        ),
        Stage::server("srv:preseed", &["kickstart served", &peer]),
        Stage::server("srv:done", &["install done", &peer]),
        Stage::console("done", &[DONE_MARKER]),
    ]
}

/// The lab's boot-server config for the installer: the usual link, the known host with
/// `installer = "debian-installer"`, the lab's preseed.
fn config(bridge: &str, work: &Path) -> String {
    format!(
        r#"{link}
[installers.debian-installer]
answer_template = "preseed.j2"

[[hosts]]
mac = "{mac}"
name = "di-node"
address = "{HOST_ADDRESS}"
install = true
installer = "debian-installer"
[hosts.vars]
kernel_args = "console=ttyS0 log_host=[{SERVER_ADDRESS}] DEBCONF_DEBUG=5"
# The mirror is never reached (the lab stops at /done); on the link, so no warning.
mirror_host = "[{SERVER_ADDRESS}]"
"#,
        link = link_config(bridge, &work.join("state"), &work.join("files"), ""),
        mac = known_mac(),
    )
}

/// A thread in the namespace that writes every syslog datagram to UDP port 514 as one
/// line to `path`, until the flag is set.
fn receive_syslog(
    net: &NetEnv,
    path: &Path,
) -> Result<(Arc<AtomicBool>, std::thread::JoinHandle<()>)> {
    let mut out = std::fs::File::create(path)
        .map_err(io_error(format!("cannot create {}", path.display())))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // The thread enters the namespace by its file, as `Namespace::enter_this_thread`.
    let netns = std::fs::File::open(format!("/run/netns/{}", net.namespace)).map_err(io_error(
        format!("cannot open /run/netns/{}", net.namespace),
    ))?;
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let entered =
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
                LabError::Io {
                    what: "setns into the lab's namespace".into(),
                    source: std::io::Error::from(errno),
                }
            });
        let socket = entered.and_then(|()| {
            let socket = UdpSocket::bind((SERVER_ADDRESS, 514))
                .map_err(io_error(format!("cannot bind [{SERVER_ADDRESS}]:514")))?;
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .map_err(io_error("set_read_timeout"))?;
            Ok(socket)
        });
        let socket = match socket {
            Ok(socket) => {
                let _ = ready_tx.send(Ok(()));
                socket
            }
            Err(err) => {
                let _ = ready_tx.send(Err(err));
                return;
            }
        };
        let mut buffer = [0u8; 2048];
        while !flag.load(Ordering::Relaxed) {
            if let Ok(len) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..len]);
                let _ = writeln!(out, "di-syslog: {}", text.trim_end());
            }
        }
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((stop, thread)),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(LabError::Boot("the syslog receiver thread died".into())),
    }
}

//! The boot servers the lab runs on its link, and the log lines that show each boot stage.
//!
//! [`ReferenceStack`] is dnsmasq (RA + DHCPv6, as in FIELD-NOTES) with nginx (HTTP), both
//! from Debian, each with its own config and files under the lab's work directory: the
//! peer that `cargo xtask bench boot` measures sixboot against, and the stack the
//! end-to-end test was first built on.
//!
//! [`Site`] is what every server serves: the per-host iPXE script, the kernel, the initrd
//! and the kickstart, laid out as sixboot's HTTP routes name them (`/ipxe/ipxe-{mac}.cfg`,
//! `/files/…`, `/ks/{mac}`, `/done/{mac}`).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::guest::{ipxe_script, ipxe_script_for, kickstart, GuestImages};
use super::netns::NetEnv;
use super::qemu::{Firmware, NetBoot};
use super::timeline::Stage;
use super::{
    base_url, io_error, known_mac, LabError, Result, RomFlavor, HOST_ADDRESS, POOL, PREFIX,
    SERVER_ADDRESS,
};
use sixboot::mac::Mac;

/// What a boot should end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The full chain: script, kernel, initrd, Linux, kickstart, `/done`, power-off.
    Install,
    /// The script URL answers 404, iPXE exits and the firmware tries the next device.
    FallThrough,
}

/// A boot server running in the lab.
pub trait BootServer {
    /// A short name for tables: `sixboot`, `dnsmasq+nginx`.
    fn label(&self) -> String;
    /// The log files that show the server's side of each stage.
    fn logs(&self) -> Vec<PathBuf>;
    /// The server-side stages of a boot of `mac`, in the order they happen.
    fn stages(&self, mac: &Mac, expect: Expect) -> Vec<Stage>;
    /// The server-side stages of `firmware`'s own network boot (`how`), before the iPXE
    /// it loads runs (named as [`crate::boot_stages`] anchors them); none for a NIC ROM.
    fn firmware_stages(&self, firmware: Firmware, how: NetBoot) -> Vec<Stage> {
        let _ = (firmware, how);
        Vec::new()
    }
}

/// The files every lab server serves, under one directory.
#[derive(Debug, Clone)]
pub struct Site {
    pub root: PathBuf,
}

impl Site {
    /// Writes `root` with the kernel, the initrd, and a script and kickstart for `known`
    /// (whose address is [`HOST_ADDRESS`]), the script as `flavor` needs it.
    pub fn write(
        root: &Path,
        images: &GuestImages,
        known: &Mac,
        flavor: RomFlavor,
    ) -> Result<Site> {
        for dir in ["ipxe", "files", "ks"] {
            let dir = root.join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(io_error(format!("cannot create {}", dir.display())))?;
        }
        let copy = |from: &Path, name: &str| {
            let to = root.join("files").join(name);
            std::fs::copy(from, &to)
                .map(|_| ())
                .map_err(io_error(format!(
                    "cannot copy {} to {}",
                    from.display(),
                    to.display()
                )))
        };
        copy(&images.kernel, "vmlinuz")?;
        copy(&images.initrd, "initrd.gz")?;
        let write = |path: PathBuf, text: String| {
            std::fs::write(&path, text)
                .map_err(io_error(format!("cannot write {}", path.display())))
        };
        let mac = known.to_string();
        let base = base_url();
        write(
            root.join("ipxe").join(format!("ipxe-{mac}.cfg")),
            ipxe_script_for(
                images.console,
                &flavor.script_ip6(&HOST_ADDRESS.to_string()),
                &format!("{base}/files"),
                &format!("{base}/ks/{mac}"),
            ),
        )?;
        write(root.join("ks").join(&mac), kickstart(&mac))?;
        Ok(Site {
            root: root.to_path_buf(),
        })
    }
}

/// dnsmasq for RA and DHCPv6 plus nginx for HTTP: the reference boot stack.
#[derive(Debug)]
pub struct ReferenceStack {
    dnsmasq: Child,
    nginx: Child,
    dnsmasq_log: PathBuf,
    access_log: PathBuf,
}

impl ReferenceStack {
    /// Starts both in `net`, serving `site`, knowing `known` with the fixed host address.
    pub fn start(net: &NetEnv, work: &Path, site: &Site, known: &Mac) -> Result<ReferenceStack> {
        let dir = work.join("reference");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp"))
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        let dnsmasq_log = dir.join("dnsmasq.log");
        let access_log = dir.join("access.log");
        let error_log = dir.join("error.log");
        let nginx_conf = dir.join("nginx.conf");
        std::fs::write(
            &nginx_conf,
            nginx_config(&dir, &site.root, &access_log, &error_log),
        )
        .map_err(io_error(format!("cannot write {}", nginx_conf.display())))?;
        let base = base_url();
        let mac = known.to_string();
        let args = [
            "--keep-in-foreground".to_string(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            format!("--interface={}", net.bridge),
            "--bind-interfaces".into(),
            format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
            format!("--dhcp-leasefile={}", dir.join("dnsmasq.leases").display()),
            format!("--log-facility={}", dnsmasq_log.display()),
            "--log-dhcp".into(),
            "--enable-ra".into(),
            format!("--dhcp-range={},{},64,1h", POOL.0, POOL.1),
            format!("--dhcp-host={mac},set:sbq-known,[{HOST_ADDRESS}]"),
            format!("--dhcp-option=tag:sbq-known,option6:bootfile-url,{base}/ipxe/ipxe-{mac}.cfg"),
            // Hosts it does not know get a script URL that answers 404.
            format!(
                "--dhcp-option=tag:!sbq-known,option6:bootfile-url,{base}/ipxe/ipxe-unknown.cfg"
            ),
        ];
        let dnsmasq = spawn_in(
            net,
            "dnsmasq",
            &args,
            &dir.join("dnsmasq.stderr"),
            "dnsmasq-base",
        )?;
        let nginx_args = [
            "-p".to_string(),
            dir.display().to_string(),
            "-c".into(),
            nginx_conf.display().to_string(),
            "-e".into(),
            error_log.display().to_string(),
        ];
        let nginx = spawn_in(
            net,
            "nginx",
            &nginx_args,
            &dir.join("nginx.stderr"),
            "nginx-light",
        )?;
        let mut stack = ReferenceStack {
            dnsmasq,
            nginx,
            dnsmasq_log,
            access_log,
        };
        wait_for(Duration::from_secs(10), "dnsmasq to enable RA", || {
            std::fs::read_to_string(&stack.dnsmasq_log)
                .is_ok_and(|log| log.contains("router advertisement enabled"))
        })?;
        wait_for(
            Duration::from_secs(10),
            "nginx to listen on port 80",
            || listening(net, 80),
        )?;
        for (name, child) in [("dnsmasq", &mut stack.dnsmasq), ("nginx", &mut stack.nginx)] {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(LabError::Boot(format!(
                    "{name} exited at start ({status}); see {}",
                    dir.display()
                )));
            }
        }
        Ok(stack)
    }
}

impl BootServer for ReferenceStack {
    fn label(&self) -> String {
        "dnsmasq+nginx".into()
    }

    fn logs(&self) -> Vec<PathBuf> {
        vec![self.dnsmasq_log.clone(), self.access_log.clone()]
    }

    fn stages(&self, mac: &Mac, expect: Expect) -> Vec<Stage> {
        let mut stages = vec![Stage::server("srv:ra", &["RTR-ADVERT("]).unordered()];
        match expect {
            Expect::Install => {
                let host = HOST_ADDRESS.to_string();
                let script = format!("/ipxe/ipxe-{mac}.cfg");
                stages.extend([
                    Stage::server("srv:dhcpv6-reply", &["DHCPREPLY(", &host]),
                    Stage::server("srv:bootfile-url", &["bootfile-url", &script]).unordered(),
                    Stage::server("srv:script", &["GET /ipxe/ipxe-", " 200 "]),
                    Stage::server("srv:kernel", &["GET /files/vmlinuz", " 200 "]),
                    Stage::server("srv:initrd", &["GET /files/initrd.gz", " 200 "]),
                    Stage::server("srv:ks", &["GET /ks/", " 200 "]),
                    Stage::server("srv:done", &["GET /done/", " 200 "]),
                ]);
            }
            Expect::FallThrough => stages.extend([
                Stage::server("srv:dhcpv6-reply", &["DHCPREPLY("]),
                Stage::server("srv:script-404", &["GET /ipxe/ipxe-", " 404 "]),
            ]),
        }
        stages
    }
}

impl Drop for ReferenceStack {
    fn drop(&mut self) {
        for child in [&mut self.dnsmasq, &mut self.nginx] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// nginx as a single foreground process (no master, so killing it leaves no workers).
fn nginx_config(dir: &Path, root: &Path, access_log: &Path, error_log: &Path) -> String {
    let dir = dir.display();
    format!(
        "daemon off;\n\
         master_process off;\n\
         pid {dir}/nginx.pid;\n\
         error_log {error_log} info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20 access_log {access_log};\n\
         \x20 client_body_temp_path {dir}/tmp;\n\
         \x20 proxy_temp_path {dir}/tmp;\n\
         \x20 fastcgi_temp_path {dir}/tmp;\n\
         \x20 uwsgi_temp_path {dir}/tmp;\n\
         \x20 scgi_temp_path {dir}/tmp;\n\
         \x20 sendfile on;\n\
         \x20 tcp_nopush on;\n\
         \x20 default_type application/octet-stream;\n\
         \x20 server {{\n\
         \x20   listen [{SERVER_ADDRESS}]:80;\n\
         \x20   root {root};\n\
         \x20   location /done/ {{ return 200 \"done\\n\"; }}\n\
         \x20 }}\n\
         }}\n",
        error_log = error_log.display(),
        access_log = access_log.display(),
        root = root.display(),
    )
}

/// Starts `program` in the namespace, its stderr in `stderr`; `package` is what to install.
pub(crate) fn spawn_in(
    net: &NetEnv,
    program: &str,
    args: &[String],
    stderr: &Path,
    package: &str,
) -> Result<Child> {
    net.command(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(stderr)?)
        .spawn()
        .map_err(io_error(format!(
            "cannot start {program} (install Debian's {package})"
        )))
}

pub(crate) fn log_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).map_err(io_error(format!("cannot create {}", path.display())))
}

/// Whether something in the namespace listens on TCP `port`.
pub fn listening(net: &NetEnv, port: u16) -> bool {
    net.command("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .is_ok_and(|out| !String::from_utf8_lossy(&out.stdout).trim().is_empty())
}

/// Polls `ready` every 20 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(LabError::Boot(format!(
        "gave up after {limit:?} waiting for {what}"
    )))
}

/// `sixboot boot-server` on the lab's link, with a config written for the lab.
///
/// The per-host script and kickstart templates are the same text the reference stack
/// serves pre-rendered, with sixboot's template variables where the URLs go. The server
/// logs at `debug` for sixboot's own modules, so that answered router solicitations show.
#[derive(Debug)]
pub struct Sixboot {
    child: Child,
    log: PathBuf,
}

/// What a lab's sixboot serves beyond the NIC ROM's chain (script, kernel, kickstart):
/// what UEFI firmware booting by itself needs.
#[derive(Debug, Clone, Default)]
pub struct SixbootExtra {
    /// `[tftp] root`, served on `[SERVER_ADDRESS]:69`.
    pub tftp_root: Option<PathBuf>,
    /// TOML appended to `[boot]`: keys (`efi_url = …`, `bootfile_params = […]`) and then
    /// subtables (`[boot.pxe]`, `[boot.http]`).
    pub boot: String,
    /// The per-host script template instead of the lab's (kernel, initrd, kickstart).
    pub script_template: Option<String>,
    /// The host's name in `[[hosts]]` (default `e2e-node`).
    pub host_name: Option<String>,
}

impl Sixboot {
    /// Starts `binary boot-server` with a config written for the lab.
    pub fn start(net: &NetEnv, work: &Path, site: &Site, binary: &Path) -> Result<Sixboot> {
        Sixboot::start_with(net, work, site, binary, &SixbootExtra::default())
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// As [`Sixboot::start`], with `extra` in the config.
    pub fn start_with(
        net: &NetEnv,
        work: &Path,
        site: &Site,
        binary: &Path,
        extra: &SixbootExtra,
    ) -> Result<Sixboot> {
        let dir = work.join("sixboot");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state"))
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map(|()| path.clone())
                .map_err(io_error(format!("cannot write {}", path.display())))
        };
        write(
            "ipxe.j2",
            extra
                .script_template
                .clone()
                .unwrap_or_else(|| ipxe_script("{{ files_url }}", "{{ ks_url }}")),
        )?;
        write("ks.j2", kickstart("{{ mac }}"))?;
        let config = write("boot.toml", sixboot_config(&net.bridge, &dir, site, extra))?;
        Sixboot::run(net, &config, &dir.join("boot-server.log"), binary)
    }

    /// Starts `binary boot-server --config CONFIG` in the namespace, its log in `log`,
    /// and waits until it listens on port 80 (or says why it exited).
    pub fn run(net: &NetEnv, config: &Path, log: &Path, binary: &Path) -> Result<Sixboot> {
        let log = log.to_path_buf();
        let child = net
            .command(&binary.display().to_string())
            .arg("boot-server")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info,sixboot=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(&log)?)
            .spawn()
            .map_err(io_error(format!(
                "cannot start {} (cargo build --bin sixboot)",
                binary.display()
            )))?;
        let mut server = Sixboot { child, log };
        let ready = wait_for(
            Duration::from_secs(10),
            "sixboot to listen on port 80",
            || listening(net, 80) || matches!(server.child.try_wait(), Ok(Some(_))),
        );
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            return Err(LabError::Boot(format!(
                "sixboot boot-server exited at start ({status}):\n{}\n(the reference stack \
                 runs without it: SIXBOOT_E2E_SERVER=reference, or --server reference)",
                log.trim()
            )));
        }
        ready?;
        Ok(server)
    }
}

/// The lab's boot-server config: RA with M and O and no SLAAC, DHCPv6 with the known host
/// at its fixed address and a pool for the others, HTTP with the lab's templates, and
/// what `extra` adds (`[boot]` lines, `[tftp]`, the host's name).
pub fn sixboot_config(bridge: &str, dir: &Path, site: &Site, extra: &SixbootExtra) -> String {
    let tftp = extra.tftp_root.as_ref().map_or(String::new(), |root| {
        format!(
            "\n[tftp]\nroot = \"{}\"\nlisten = [\"[{SERVER_ADDRESS}]:69\"]\n",
            root.display()
        )
    });
    format!(
        r#"{link}script_template = "{script}"
kickstart_template = "{ks}"
{tftp}
[[hosts]]
mac = "{mac}"
name = "{name}"
address = "{HOST_ADDRESS}"
install = true
"#,
        link = link_config(
            bridge,
            &dir.join("state"),
            &site.root.join("files"),
            &extra.boot
        ),
        mac = known_mac(),
        name = extra.host_name.as_deref().unwrap_or("e2e-node"),
        script = dir.join("ipxe.j2").display(),
        ks = dir.join("ks.j2").display(),
    )
}

/// The part of the lab's config every lab shares, up to and including `[http]`'s
/// `files_root` (a caller appends `[http]` keys, `[installers]` and `[[hosts]]`): the
/// link's RA (M and O, router lifetime 0, no SLAAC), DHCPv6 and HTTP on the server address,
/// and `[boot]` with the per-host script URL followed by `boot` (more `[boot]` keys, then
/// its subtables such as `[boot.pxe]`; empty for none).
pub fn link_config(bridge: &str, state_dir: &Path, files_root: &Path, boot: &str) -> String {
    let base = base_url();
    format!(
        r#"# Written by sixboot_lab for the QEMU lab.
[server]
interfaces = ["{bridge}"]
state_dir = "{state}"

[ra]
enabled = true
managed = true
other = true
router_lifetime_secs = 0
min_interval_secs = 3
max_interval_secs = 10

[[ra.prefixes]]
prefix = "{PREFIX}/64"
autonomous = false

[dhcp]
dns_servers = ["{SERVER_ADDRESS}"]
unknown_hosts = "pool"

[[dhcp.subnets]]
prefix = "{PREFIX}/64"
pool_start = "{pool_start}"
pool_end = "{pool_end}"
interface = "{bridge}"

[boot]
ipxe_script_url = "{base}/ipxe/ipxe-{{mac}}.cfg"
{boot}
[http]
listen = ["[{SERVER_ADDRESS}]:80"]
base_url = "{base}"
files_root = "{files}"
"#,
        state = state_dir.display(),
        pool_start = POOL.0,
        pool_end = POOL.1,
        files = files_root.display(),
    )
}

impl BootServer for Sixboot {
    fn label(&self) -> String {
        "sixboot".into()
    }

    fn logs(&self) -> Vec<PathBuf> {
        vec![self.log.clone()]
    }

    fn stages(&self, _mac: &Mac, expect: Expect) -> Vec<Stage> {
        // Messages of sixboot's tracing events (src/server, src/http).
        // iPXE configures from whichever RA comes first: the answer to its RS, or a
        // periodic one that arrives before it sent the RS (then it sends none).
        let mut stages = vec![Stage::server("srv:ra", &["RS answered"])
            .or(&["RA sent", "periodic"])
            .unordered()];
        match expect {
            Expect::Install => {
                let host = HOST_ADDRESS.to_string();
                stages.extend([
                    // iPXE's lease (a firmware's own PXE may have had one before).
                    Stage::server("srv:dhcpv6-reply", &["DHCPv6 lease", &host, "client=ipxe"]),
                    Stage::server("srv:bootfile-url", &["DHCPv6 lease", "boot=Some"]).unordered(),
                    Stage::server("srv:script", &["script served"]),
                    Stage::server("srv:kernel", &["file served", "vmlinuz"]),
                    Stage::server("srv:initrd", &["file served", "initrd.gz"]),
                    Stage::server("srv:ks", &["kickstart served"]),
                    Stage::server("srv:done", &["install done"]),
                ]);
            }
            Expect::FallThrough => stages.extend([
                Stage::server("srv:dhcpv6-reply", &["DHCPv6 lease"]),
                Stage::server("srv:script-404", &["404, it boots from its disk"]),
            ]),
        }
        stages
    }

    fn firmware_stages(&self, firmware: Firmware, how: NetBoot) -> Vec<Stage> {
        if !firmware.is_arm64() {
            return Vec::new();
        }
        match how {
            NetBoot::Rom => Vec::new(),
            // AAVMF's PXEv6: its Reply carries the ARM64 file (architecture 11), which it
            // then fetches over TFTP.
            NetBoot::FirmwarePxe => vec![
                Stage::server(
                    "srv:firmware-reply",
                    &[
                        "DHCPv6 lease",
                        "client=uefi-pxe",
                        "arch=Some(11)",
                        &format!("tftp://[{SERVER_ADDRESS}]/{ARM64_BOOT_FILE}"),
                    ],
                ),
                Stage::server(
                    "srv:firmware-file",
                    &["TFTP transfer complete", ARM64_BOOT_FILE],
                ),
            ],
            // AAVMF's HTTP Boot: architecture 19 (ARM64 UEFI HTTP), the HTTP URL.
            NetBoot::FirmwareHttp => vec![
                Stage::server(
                    "srv:firmware-reply",
                    &[
                        "DHCPv6 lease",
                        "client=uefi-http",
                        "arch=Some(19)",
                        &format!("{}/files/{ARM64_BOOT_FILE}", base_url()),
                    ],
                ),
                Stage::server("srv:firmware-file", &["file served", ARM64_BOOT_FILE]),
            ],
        }
    }
}

/// Where the lab serves the ARM64 iPXE, under the TFTP root and under `/files/`.
pub const ARM64_BOOT_FILE: &str = "arm64/ipxe.efi";

/// What the lab's sixboot needs beyond its defaults: the per-host script template for
/// `images`' console and for `flavor` (see [`RomFlavor::script_ip6`]); for `firmware`
/// booting by itself (ARM64) also `[boot.pxe] arm64` and `[boot.http] arm64` (the
/// per-architecture boot files of issue 11), with the boot program (`boot_program`, the
/// ARM64 `ipxe.efi`) copied where they point: the TFTP root `work/tftp` and the site's
/// `files/`.
pub fn lab_extra(
    firmware: Firmware,
    flavor: RomFlavor,
    work: &Path,
    site: &Site,
    images: &GuestImages,
    boot_program: &Path,
) -> Result<SixbootExtra> {
    let script_template = Some(ipxe_script_for(
        images.console,
        &flavor.script_ip6("{{ address }}"),
        "{{ files_url }}",
        "{{ ks_url }}",
    ));
    if !firmware.is_arm64() {
        return Ok(SixbootExtra {
            script_template,
            ..SixbootExtra::default()
        });
    }
    let tftp_root = work.join("tftp");
    for root in [&tftp_root, &site.root.join("files")] {
        let to = root.join(ARM64_BOOT_FILE);
        let dir = to.parent().expect("the boot file has a directory");
        std::fs::create_dir_all(dir)
            .map_err(io_error(format!("cannot create {}", dir.display())))?;
        std::fs::copy(boot_program, &to).map_err(io_error(format!(
            "cannot copy the ARM64 boot program {} (cargo xtask build-rom --target arm64)",
            boot_program.display()
        )))?;
    }
    Ok(SixbootExtra {
        tftp_root: Some(tftp_root),
        boot: format!(
            "\n[boot.pxe]\narm64 = \"tftp://[{SERVER_ADDRESS}]/{ARM64_BOOT_FILE}\"\n\n\
             [boot.http]\narm64 = \"{base}/files/{ARM64_BOOT_FILE}\"\n",
            base = base_url()
        ),
        script_template,
        host_name: None,
    })
}

impl Drop for Sixboot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! sixboot's test lab: what tests, benchmarks and `cargo xtask` share to run real clients,
//! servers and firmware against sixboot. A workspace crate (`publish = false`), never part
//! of the shipped library: it starts processes, creates network namespaces and reads the
//! clock. It needs root (namespaces and taps) and Debian's `qemu-system-x86`, `ipxe-qemu`,
//! `ovmf`, `busybox-static` and a `linux-image-*-amd64` package (fetched into a cache); the
//! ARM64 machine `qemu-system-arm`, `qemu-efi-aarch64` and
//! `debian-installer-12-netboot-arm64`.
//!
//! The pieces:
//! - [`need`]: the one skip helper ("this test needs X"), which records every skip for
//!   `cargo xtask test`'s summary and turns a missing CI-installed dependency into a failure
//!   under `CI=true`.
//! - [`netns`]: [`netns::Namespace`] (locked per name, leftovers removed, removed in `Drop`),
//!   [`netns::veth`], and [`netns::NetEnv`], the QEMU lab's bridge + tap link, IPv6 only.
//! - [`lock`]: cross-process locks (one TCG VM at a time: [`lock::vm_lock`]).
//! - [`guest`]: a real Debian kernel and a busybox initramfs whose `/init` brings the NIC up,
//!   prints markers, fetches its kickstart and calls `/done/{mac}`.
//! - [`server`]: the boot servers under test: `sixboot boot-server`, or the reference stack
//!   (dnsmasq for RA and DHCPv6, nginx for HTTP).
//! - [`qemu`]: the virtual machine (SeaBIOS, OVMF, or AAVMF on ARM64), its serial console
//!   in a file.
//! - [`installer`]: the Debian installer's netboot image against sixboot's built-in
//!   `debian-installer` templates, up to its preseed and `/done` (issue 21).
//! - [`redfish`]: a BMC for the lab machine: sushy-tools' Redfish emulator over libvirt's
//!   embedded QEMU driver, in the lab's namespace.
//! - [`lab`]: all of it together, as `tests/{qemu,arm64,flexboot}_e2e.rs`, `cargo xtask
//!   qemu-test` and `cargo xtask bench boot` use it.
//! - [`timeline`]: the pure part: which text marks which boot stage, and when it was first
//!   seen, in the console and in the server's logs.

pub mod guest;
pub mod installer;
pub mod lab;
pub mod lock;
pub mod need;
pub mod netns;
pub mod postgres;
pub mod qemu;
pub mod redfish;
pub mod server;
pub mod timeline;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use sixboot::mac::Mac;

/// The boot server's address on the lab link (RFC 3849 documentation prefix).
pub const SERVER_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x5b, 0, 0, 0, 0, 1);
/// The lab prefix, /64.
pub const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x5b, 0, 0, 0, 0, 0);
/// The fixed address the known host gets from DHCPv6.
pub const HOST_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x5b, 0, 0, 0, 0, 0x10);
/// The first and last pool address, for hosts without a fixed address.
pub const POOL: (Ipv6Addr, Ipv6Addr) = (
    Ipv6Addr::new(0x2001, 0xdb8, 0x5b, 0, 0, 0, 0, 0x100),
    Ipv6Addr::new(0x2001, 0xdb8, 0x5b, 0, 0, 0, 0, 0x1ff),
);

/// The MAC of the host the lab knows and installs.
pub fn known_mac() -> Mac {
    "52:54:00:5b:00:01".parse().expect("a valid MAC literal")
}

/// A MAC the boot server has never heard of.
pub fn unknown_mac() -> Mac {
    "52:54:00:5b:00:99".parse().expect("a valid MAC literal")
}

/// `http://[SERVER_ADDRESS]`, the base of every URL the lab serves.
pub fn base_url() -> String {
    format!("http://[{SERVER_ADDRESS}]")
}

/// Errors of the lab: each names the command or file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "cannot create network namespaces or taps ({0}); the QEMU end-to-end test needs root \
         (CAP_NET_ADMIN): run it as root, e.g. `sudo -E cargo test --test qemu_e2e`"
    )]
    NotRoot(String),
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Boot(String),
}

/// The lab's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// Runs a command to completion; a non-zero exit becomes [`LabError::Command`] with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(io_error(format!("cannot run `{command}`")))?;
    if !output.status.success() {
        return Err(LabError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `cargo` (the one running the tests) in a clean environment, for a test that runs
/// `cargo xtask …`: the variables cargo sets for a test process would make the nested
/// cargo see a changed build environment and recompile xtask and its dependencies. Keeps
/// `PATH`, `HOME`, the toolchain's and CI's variables and `IPXE_SRC`/`FLEXBOOT_SRC`; runs
/// in `root` (the workspace).
pub fn nested_cargo(root: &Path) -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.env_clear().current_dir(root);
    for var in [
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CI",
        "IPXE_SRC",
        "FLEXBOOT_SRC",
    ] {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    command
}

/// Where the lab caches what it downloads (the kernel package): `SIXBOOT_CACHE`, else
/// `/var/cache/sixboot` when writable, else `target/sixboot-cache` under `fallback_root`.
pub fn cache_dir(fallback_root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("SIXBOOT_CACHE") {
        return PathBuf::from(dir);
    }
    let system = Path::new("/var/cache/sixboot");
    if std::fs::create_dir_all(system).is_ok() && is_writable(system) {
        return system.to_path_buf();
    }
    fallback_root.join("target").join("sixboot-cache")
}

fn is_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".sbq-probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Which iPXE runs the boot (the NIC's ROM, or the program UEFI firmware loaded), for
/// what the lab expects of it and asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RomFlavor {
    /// iPXE (ours, or Debian's stock ROM).
    #[default]
    Ipxe,
    /// Mellanox FlexBoot 3.4.812, a 2016 fork of iPXE (`cargo xtask build-rom --flavor
    /// flexboot`).
    Flexboot,
}

impl RomFlavor {
    /// Text of its start-up banner: iPXE's tag line; FlexBoot prints `PRODUCT_NAME`
    /// ("FlexBoot v3.4.812", `config/branding.h`) and never the tag line.
    pub fn banner(self) -> &'static str {
        match self {
            RomFlavor::Ipxe => "Open Source Network Boot Firmware",
            RomFlavor::Flexboot => "FlexBoot v",
        }
    }

    /// What the per-host script puts after `sixboot.ip6=` for the guest's `/init`: iPXE's
    /// `${ip6}` setting, the address DHCPv6 gave the ROM. FlexBoot applies its DHCPv6
    /// address too, but has no `ip6` setting (its `net/udp/dhcpv6.c` exposes only the
    /// Reply's options), so its script carries `fixed`: the host's fixed address as the
    /// server knows it (`{{ address }}` in a sixboot template).
    pub fn script_ip6(self, fixed: &str) -> String {
        match self {
            RomFlavor::Ipxe => "${ip6}".to_string(),
            RomFlavor::Flexboot => fixed.to_string(),
        }
    }
}

impl std::fmt::Display for RomFlavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RomFlavor::Ipxe => "iPXE",
            RomFlavor::Flexboot => "FlexBoot",
        })
    }
}

/// The console side of a boot by `flavor`, in the order it happens.
pub fn console_stages(flavor: RomFlavor, expect: server::Expect) -> Vec<timeline::Stage> {
    use timeline::Stage;
    let mut stages = vec![
        // The banner, printed under BIOS and UEFI alike.
        Stage::console("ipxe", &[flavor.banner()]),
        // `Configuring (net0 …)` from autoboot, `Configuring [ipv6] (net0 …)` from ifconf.
        Stage::console("configuring", &["Configuring", "(net0"]),
        Stage::console("configured", &["Configuring", "(net0", " ok"]),
    ];
    match expect {
        server::Expect::Install => stages.extend([
            Stage::console("script", &["SIXBOOT-E2E-SCRIPT"]),
            Stage::console("kernel", &["/files/vmlinuz", " ok"]),
            Stage::console("initrd", &["/files/initrd.gz", " ok"]),
            Stage::console("linux", &["SIXBOOT-E2E-INIT"]),
            Stage::console("up", &["SIXBOOT-E2E-UP"]),
            Stage::console("ks", &["SIXBOOT-E2E-KS"]),
            Stage::console("done", &["SIXBOOT-E2E-DONE"]),
            Stage::console("poweroff", &["reboot: Power down"]),
        ]),
        server::Expect::FallThrough => stages.extend([
            // iPXE names the error of a 404 by its code, 2d0c61xx (e.g. "No such file or
            // directory (http://ipxe.org/2d0c613b)").
            Stage::console("script-404", &["2d0c61"]),
            // SeaBIOS moves on to the next boot device once the ROM returns.
            Stage::console("fell-through", &["Booting from Hard Disk"]),
        ]),
    }
    stages
}

/// The console side of `firmware`'s own network boot (`how`), before the iPXE it loaded
/// prints its banner: none for a NIC ROM; AAVMF's PXEv6 or HTTP Boot (the messages of
/// edk2's `PxeBcDxe` and `HttpBootDxe`; "UEFI firmware" is ArmVirtPkg's first line).
pub fn firmware_stages(firmware: qemu::Firmware, how: qemu::NetBoot) -> Vec<timeline::Stage> {
    use qemu::NetBoot;
    use timeline::Stage;
    let mut stages = Vec::new();
    if how == NetBoot::Rom {
        return stages;
    }
    if firmware.is_arm64() {
        stages.push(Stage::console("firmware", &["UEFI firmware"]));
    }
    match how {
        NetBoot::Rom => {}
        NetBoot::FirmwarePxe => stages.extend([
            Stage::console("pxe", &["Start PXE over IPv6"]),
            Stage::console("pxe-address", &["Station IP address is"]),
            Stage::console("nbp", &["NBP file downloaded successfully"]),
        ]),
        NetBoot::FirmwareHttp => stages.extend([
            Stage::console("http", &["Start HTTP Boot over IPv6"]),
            Stage::console("uri", &["URI: http"]),
        ]),
    }
    stages
}

/// Console and server stages merged: `firmware`'s own stages first (booting `how`), then
/// those of the NIC's or the loaded iPXE (`flavor`); each server stage just before the
/// console stage that depends on it; unordered ones (periodic RAs) first.
pub fn boot_stages(
    server: &dyn server::BootServer,
    firmware: qemu::Firmware,
    how: qemu::NetBoot,
    flavor: RomFlavor,
    mac: &Mac,
    expect: server::Expect,
) -> Vec<timeline::Stage> {
    const BEFORE: &[(&str, &str)] = &[
        ("srv:firmware-reply", "pxe-address"),
        ("srv:firmware-reply", "uri"),
        ("srv:firmware-file", "nbp"),
        // HTTP Boot prints nothing once the file is in: the loaded iPXE's banner.
        ("srv:firmware-file", "ipxe"),
        ("srv:dhcpv6-reply", "configured"),
        ("srv:script", "script"),
        ("srv:kernel", "kernel"),
        ("srv:initrd", "initrd"),
        ("srv:ks", "ks"),
        ("srv:done", "done"),
        ("srv:script-404", "script-404"),
    ];
    let mut console = firmware_stages(firmware, how);
    console.extend(console_stages(flavor, expect));
    let mut server_stages = server.firmware_stages(firmware, how);
    server_stages.extend(server.stages(mac, expect));
    let (unordered, ordered): (Vec<_>, Vec<_>) =
        server_stages.into_iter().partition(|stage| !stage.ordered);
    let mut merged = unordered;
    let mut pending = ordered;
    for stage in console {
        let (now, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|srv| {
            BEFORE
                .iter()
                .any(|(name, anchor)| *name == srv.name && *anchor == stage.name)
        });
        merged.extend(now);
        merged.push(stage);
        pending = later;
    }
    merged.extend(pending);
    merged
}

/// One boot, watched: what was seen when, and the raw text.
#[derive(Debug)]
pub struct BootRun {
    pub timeline: timeline::Timeline,
    /// The whole console, cleaned of escapes, one line per line.
    pub console: String,
    /// The server's log lines written during this boot.
    pub server_log: String,
    /// QEMU's exit status, if it exited (the guest powered off).
    pub exit: Option<std::process::ExitStatus>,
    /// QEMU's own messages.
    pub qemu_log: String,
}

impl BootRun {
    /// A report for a failed assertion: missing stages, then the tails of both logs.
    pub fn explain(&self) -> String {
        let tail = |text: &str, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        format!(
            "missing stages: {:?}\nQEMU exit: {:?}\n--- console (last 40 lines) ---\n{}\n\
             --- server log (last 30 lines) ---\n{}\n--- qemu ---\n{}",
            self.timeline.missing(),
            self.exit,
            tail(&self.console, 40),
            tail(&self.server_log, 30),
            self.qemu_log.trim()
        )
    }
}

/// Follows a growing file from a given offset.
struct Follow {
    path: PathBuf,
    offset: u64,
    lines: timeline::LineBuffer,
    source: timeline::Source,
}

impl Follow {
    fn from_end(path: &Path, source: timeline::Source) -> Follow {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Follow {
            path: path.to_path_buf(),
            offset,
            lines: timeline::LineBuffer::default(),
            source,
        }
    }

    fn read_new(&mut self) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_ok() {
            let _ = file.read_to_end(&mut bytes);
        }
        self.offset += bytes.len() as u64;
        bytes
    }
}

/// What [`watch`] reports while a boot goes on, with the time since power-on.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A finished line of the console or a server log; `at` is when it began.
    Line {
        source: timeline::Source,
        at: std::time::Duration,
        line: &'a str,
    },
    /// A stage's text was seen for the first time.
    Stage {
        name: &'static str,
        at: std::time::Duration,
    },
}

impl std::fmt::Display for Event<'_> {
    /// `[  12.345] console | text`, or `[  12.345] ===== stage =====`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Line { source, at, line } => {
                let source = match source {
                    timeline::Source::Console => "console",
                    timeline::Source::Server => "server ",
                };
                write!(f, "[{:8.3}] {source} | {line}", at.as_secs_f64())
            }
            Event::Stage { name, at } => {
                write!(f, "[{:8.3}] ===== {name} =====", at.as_secs_f64())
            }
        }
    }
}

/// Watches a VM's console and the server's logs until every stage is seen, QEMU exits,
/// or `limit` passes, reporting lines and stages to `on_event` as they come.
pub fn watch(
    vm: &mut qemu::Vm,
    server_logs: &[PathBuf],
    stages: Vec<timeline::Stage>,
    limit: std::time::Duration,
    on_event: &mut dyn FnMut(Event<'_>),
) -> BootRun {
    use std::time::Duration;
    use timeline::Source;
    let mut timeline = timeline::Timeline::new(stages);
    let mut follows = vec![Follow {
        path: vm.serial.clone(),
        offset: 0,
        lines: timeline::LineBuffer::default(),
        source: Source::Console,
    }];
    follows.extend(
        server_logs
            .iter()
            .map(|path| Follow::from_end(path, Source::Server)),
    );
    let (mut console, mut server_log) = (String::new(), String::new());
    let mut exit = None;
    let mut all_seen_at: Option<std::time::Instant> = None;
    loop {
        let now = vm.started.elapsed();
        // Read after checking for exit, so the last bytes before an exit are not lost.
        let exited = vm.exited();
        for follow in &mut follows {
            let bytes = follow.read_new();
            for (at, line) in follow.lines.push(now, &bytes) {
                // A stage counts from when its text was visible (now), not from when its
                // line began: iPXE's "Configuring (net0 …)…… ok" spans seconds.
                on_event(Event::Line {
                    source: follow.source,
                    at,
                    line: &line,
                });
                timeline.complete(follow.source, &line);
                for name in timeline.observe(follow.source, now, &line) {
                    on_event(Event::Stage { name, at: now });
                }
                let text = match follow.source {
                    Source::Console => &mut console,
                    Source::Server => &mut server_log,
                };
                text.push_str(&line);
                text.push('\n');
            }
            if let Some((_, partial)) = follow.lines.partial() {
                for name in timeline.observe_partial(follow.source, now, &partial) {
                    on_event(Event::Stage { name, at: now });
                }
            }
        }
        if exited.is_some() {
            exit = exited;
            break;
        }
        if timeline.missing().is_empty() {
            // Give QEMU a moment to exit on its own after the guest's power-off.
            let since = *all_seen_at.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        if now > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for follow in &mut follows {
        if let Some((at, partial)) = follow.lines.partial() {
            on_event(Event::Line {
                source: follow.source,
                at,
                line: &partial,
            });
            match follow.source {
                timeline::Source::Console => console.push_str(&partial),
                timeline::Source::Server => server_log.push_str(&partial),
            }
        }
    }
    BootRun {
        timeline,
        console,
        server_log,
        exit,
        qemu_log: vm.qemu_log(),
    }
}

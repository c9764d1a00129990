//! What the lab boots: a real Debian kernel and a small busybox initramfs.
//!
//! x86-64: the kernel comes from Debian's `linux-image-*-amd64` package (`apt-get
//! download`, then `dpkg-deb --fsys-tarfile` into `tar`, keeping only the kernel and the
//! virtio modules), cached by package name; busybox is the machine's `busybox-static`.
//!
//! ARM64: the kernel (`linux`, an EFI-bootable `Image`) and everything else come from
//! Debian's `debian-installer-12-netboot-arm64` package (Architecture: all, so it installs
//! on this amd64 machine without multiarch: no `dpkg --add-architecture`, no arm64 package
//! lists). Its 40 MB `initrd.gz` is read here (cpio "newc") and only what `/init` needs is
//! kept (about 1 MB gzipped: busybox and its libc, kmod as `insmod`, the virtio modules and
//! busybox's applet links): a whole installer initrd would cost seconds of download and
//! unpacking under TCG. The installer's busybox has no `wget` and no `timeout`, so its
//! `/init` speaks HTTP through `nc -w` ([`Userland::DebianInstaller`]).
//!
//! Debian builds `virtio_net` and `virtio_pci` as modules on both, so the initramfs carries
//! them and their dependencies, in the order their `.modinfo` `depends=` asks for. The
//! initramfs is written here as a cpio "newc" archive (no root, no `cpio` binary needed,
//! byte-identical for the same inputs) and gzipped.
//!
//! `/init` prints markers that the test reads from the serial console:
//! `SIXBOOT-E2E-INIT`, `SIXBOOT-E2E-UP mac=… addr=…`, `SIXBOOT-E2E-KS bytes=… url=…`,
//! `SIXBOOT-E2E-DONE url=…` (or `SIXBOOT-E2E-FAIL …`), then powers the machine off.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{io_error, run, LabError, Result};

/// Modules `/init` must load for a virtio NIC; their dependencies are added.
const WANTED_MODULES: &[&str] = &["virtio_pci", "virtio_net"];

/// Debian's ARM64 installer netboot package, which carries the ARM64 kernel and initrd.
pub const DI_ARM64_PACKAGE: &str = "debian-installer-12-netboot-arm64";
/// Where [`DI_ARM64_PACKAGE`] puts its kernel (`linux`) and initrd (`initrd.gz`).
pub const DI_ARM64_DIR: &str =
    "/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64";

/// Files of the installer's initrd that `/init` needs besides busybox's applet links and
/// the modules: busybox, its C library (`readelf -d`: libc.so.6 and the loader only), and
/// kmod, which is the installer's `insmod` (its busybox has none).
const DI_ARM64_FILES: &[&str] = &[
    "bin/busybox",
    "bin/kmod",
    "sbin/insmod",
    "lib/ld-linux-aarch64.so.1",
    "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
    "lib/aarch64-linux-gnu/libc.so.6",
];

/// The kernel and initramfs the lab serves over HTTP.
#[derive(Debug, Clone)]
pub struct GuestImages {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Where the kernel came from, e.g. `linux-image-6.1.0-56-amd64`, or
    /// `debian-installer-12-netboot-arm64 (6.1.0-50-arm64)`.
    pub kernel_package: String,
    /// The kernel's serial console: `ttyS0` (PC), `ttyAMA0` (ARM64 `virt`, PL011).
    pub console: &'static str,
}

/// Which busybox `/init` runs with, and so how it fetches over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Userland {
    /// Debian's `busybox-static` (x86-64): `busybox --install`, `insmod`, `wget`, `timeout`.
    BusyboxStatic,
    /// The Debian installer's busybox (ARM64): applet links from its initrd, kmod's
    /// `insmod`, no `wget` or `timeout`: HTTP/1.0 by hand through `nc -w 20`.
    DebianInstaller,
}

impl GuestImages {
    /// Fetches (or reuses) the kernel in `cache` and builds the initramfs into `out_dir`.
    pub fn prepare(cache: &Path, out_dir: &Path) -> Result<GuestImages> {
        let kernel = Kernel::fetch(cache)?;
        std::fs::create_dir_all(out_dir)
            .map_err(io_error(format!("cannot create {}", out_dir.display())))?;
        let modules = kernel.load_order()?;
        let mut archive = Cpio::default();
        for dir in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
            archive.directory(dir);
        }
        archive.char_device("dev/console", 5, 1);
        let busybox = std::fs::read("/bin/busybox").map_err(io_error(
            "cannot read /bin/busybox (install Debian's busybox-static)",
        ))?;
        archive.file("bin/busybox", 0o755, &busybox);
        let mut names = Vec::new();
        for (name, path) in &modules {
            let bytes = std::fs::read(path)
                .map_err(io_error(format!("cannot read module {}", path.display())))?;
            archive.file(&format!("lib/modules/{name}.ko"), 0o644, &bytes);
            names.push(name.as_str());
        }
        archive.file(
            "init",
            0o755,
            init_script(&names, Userland::BusyboxStatic).as_bytes(),
        );
        let initrd = out_dir.join("initrd.gz");
        gzip(&archive.finish(), &initrd)?;
        let kernel_copy = out_dir.join("vmlinuz");
        std::fs::copy(&kernel.vmlinuz, &kernel_copy).map_err(io_error(format!(
            "cannot copy {}",
            kernel.vmlinuz.display()
        )))?;
        Ok(GuestImages {
            kernel: kernel_copy,
            initrd,
            kernel_package: kernel.package,
            console: "ttyS0",
        })
    }

    /// The ARM64 guest from [`DI_ARM64_DIR`] (package [`DI_ARM64_PACKAGE`], which
    /// `cargo xtask test` installs): its kernel as is, and an initramfs of the few files
    /// of its initrd that `/init` needs, written into `out_dir`.
    pub fn prepare_arm64(out_dir: &Path) -> Result<GuestImages> {
        let dir = Path::new(DI_ARM64_DIR);
        let installer_initrd = dir.join("initrd.gz");
        if !installer_initrd.is_file() {
            return Err(LabError::Missing(format!(
                "{} not found: apt-get install {DI_ARM64_PACKAGE}",
                installer_initrd.display()
            )));
        }
        let entries = read_cpio(&gunzip_file(&installer_initrd)?).map_err(|problem| {
            LabError::Missing(format!("{}: {problem}", installer_initrd.display()))
        })?;
        let (archive, release) = arm64_initramfs(&entries)
            .map_err(|problem| LabError::Missing(format!("{}: {problem}", dir.display())))?;
        std::fs::create_dir_all(out_dir)
            .map_err(io_error(format!("cannot create {}", out_dir.display())))?;
        let initrd = out_dir.join("initrd.gz");
        gzip(&archive, &initrd)?;
        let kernel = out_dir.join("vmlinuz");
        std::fs::copy(dir.join("linux"), &kernel).map_err(io_error(format!(
            "cannot copy {}/linux (apt-get install {DI_ARM64_PACKAGE})",
            dir.display()
        )))?;
        Ok(GuestImages {
            kernel,
            initrd,
            kernel_package: format!("{DI_ARM64_PACKAGE} ({release})"),
            console: "ttyAMA0",
        })
    }
}

/// The ARM64 initramfs from the installer initrd's `entries`: [`DI_ARM64_FILES`], every
/// symbolic link to busybox (its applets), the virtio-net modules with their dependencies,
/// the directories above them, `/dev/console` and the lab's `/init`. Returns the archive
/// and the kernel release its modules are for; `Err` names what the initrd lacks.
pub fn arm64_initramfs(entries: &[CpioEntry]) -> Result<(Vec<u8>, String), String> {
    let by_name: BTreeMap<&str, &CpioEntry> =
        entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut keep: Vec<&CpioEntry> = Vec::new();
    for name in DI_ARM64_FILES {
        keep.push(
            by_name
                .get(name)
                .copied()
                .ok_or_else(|| format!("the installer initrd has no {name}"))?,
        );
    }
    keep.extend(entries.iter().filter(|e| {
        e.is_symlink()
            && (e.data == b"busybox" || e.data == b"/bin/busybox")
            && !DI_ARM64_FILES.contains(&e.name.as_str())
    }));
    // Modules: lib/modules/RELEASE/kernel/…/NAME.ko, by name.
    let mut release = None;
    let mut modules: BTreeMap<String, &CpioEntry> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.is_file()) {
        let Some(rest) = entry.name.strip_prefix("lib/modules/") else {
            continue;
        };
        let Some((rel, _)) = rest.split_once('/') else {
            continue;
        };
        if let Some(name) = rest
            .rsplit('/')
            .next()
            .and_then(|file| file.strip_suffix(".ko"))
        {
            release.get_or_insert_with(|| rel.to_string());
            modules.insert(name.replace('-', "_"), entry);
        }
    }
    let release = release.ok_or("the installer initrd has no kernel modules")?;
    let depends: BTreeMap<String, Vec<String>> = modules
        .iter()
        .map(|(name, entry)| (name.clone(), module_depends(&entry.data)))
        .collect();
    let order = load_order(WANTED_MODULES, &depends)?;
    let mut archive = Cpio::default();
    let mut directories = std::collections::BTreeSet::new();
    for dir in ["dev", "proc", "sys", "tmp", "lib/modules"] {
        directories.insert(dir.to_string());
    }
    for entry in &keep {
        let mut parent = Path::new(&entry.name).parent();
        while let Some(dir) = parent.filter(|p| !p.as_os_str().is_empty()) {
            directories.insert(dir.display().to_string());
            parent = dir.parent();
        }
    }
    // BTreeSet order puts each directory before the ones inside it.
    for dir in &directories {
        archive.directory(dir);
    }
    archive.char_device("dev/console", 5, 1);
    for entry in &keep {
        if entry.is_symlink() {
            archive.symlink(&entry.name, &String::from_utf8_lossy(&entry.data));
        } else {
            archive.file(&entry.name, entry.mode & 0o7777, &entry.data);
        }
    }
    for name in &order {
        archive.file(
            &format!("lib/modules/{name}.ko"),
            0o644,
            &modules[name].data,
        );
    }
    let names: Vec<&str> = order.iter().map(String::as_str).collect();
    archive.file(
        "init",
        0o755,
        init_script(&names, Userland::DebianInstaller).as_bytes(),
    );
    Ok((archive.finish(), release))
}

/// The `/init` of the lab's initramfs (busybox ash), loading `modules` in this order.
///
/// The address comes from `sixboot.ip6=` on the kernel command line, which the per-host
/// script fills with iPXE's `${ip6}`: the address DHCPv6 gave the firmware. (Debian's
/// busybox has no DHCPv6 client, and the lab's RA has SLAAC off.) `userland` decides how
/// it fetches: busybox-static's `wget -T` crashes, so `timeout` bounds each `wget`; the
/// installer's busybox has neither, so HTTP/1.0 goes through `nc -w 20` (connect and idle
/// timeout) and only a `200` status line counts.
pub fn init_script(modules: &[&str], userland: Userland) -> String {
    let modules = modules.join(" ");
    let (setup, fetch) = match userland {
        Userland::BusyboxStatic => (
            "/bin/busybox --install -s /bin",
            r#"fetch() { timeout 20 wget -q -O "$2" "$1"; }"#,
        ),
        Userland::DebianInstaller => (
            "export PATH=/bin:/sbin:/usr/bin:/usr/sbin",
            r#"fetch() {
  rest="${1#http://}"; hostport="${rest%%/*}"; path="/${rest#*/}"
  host="${hostport#\[}"; host="${host%%]*}"; port=80
  case "$hostport" in *]:*) port="${hostport##*]:}";; esac
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" \
    | nc -w 20 "$host" "$port" > /tmp/response || return 1
  head -n 1 /tmp/response | grep -q '^HTTP/1\.[01] 200 ' || return 1
  # The body starts after the first empty line, which ends in CR; POSIX regular
  # expressions have no \r, so that line is "at most one character".
  sed '1,/^.\{0,1\}$/d' /tmp/response > "$2"
}"#,
        ),
    };
    format!(
        r#"#!/bin/busybox sh
{setup}
{fetch}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "SIXBOOT-E2E-INIT cmdline=$(cat /proc/cmdline)"
for m in {modules}; do insmod /lib/modules/$m.ko || echo "SIXBOOT-E2E-FAIL insmod $m"; done
ip link set lo up
for i in $(seq 1 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
mac=$(cat /sys/class/net/eth0/address)
ip6=""; ks=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    sixboot.ip6=*) ip6="${{arg#sixboot.ip6=}}";;
    inst.ks=*) ks="${{arg#inst.ks=}}";;
  esac
done
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
ip link set eth0 up
[ -n "$ip6" ] && ip -6 addr add "$ip6/64" dev eth0
addr=$(ip -6 addr show dev eth0 scope global | sed -n 's/.*inet6 \([0-9a-f:]*\)\/.*/\1/p' | head -n 1)
echo "SIXBOOT-E2E-UP mac=$mac addr=${{addr:-none}}"
if [ -z "$ks" ]; then
  echo "SIXBOOT-E2E-FAIL no inst.ks= on the kernel command line"
elif fetch "$ks" /tmp/ks; then
  echo "SIXBOOT-E2E-KS bytes=$(wc -c < /tmp/ks) url=$ks"
  done_url=$(echo "$ks" | sed 's#/ks/#/done/#')
  if fetch "$done_url" /tmp/done; then
    echo "SIXBOOT-E2E-DONE url=$done_url"
  else
    echo "SIXBOOT-E2E-FAIL done $done_url"
  fi
else
  echo "SIXBOOT-E2E-FAIL ks $ks"
fi
sync
poweroff -f
"#
    )
}

/// The per-host iPXE script the lab's servers hand out, fetching the kernel and initrd
/// from `files_url` and giving the kernel `inst.ks={ks_url}`. (sixboot's server gets the
/// same text as a template, with `{{ files_url }}` and `{{ ks_url }}` in those places.)
///
/// `${ip6}` and `${net0/mac}` are iPXE settings expanded on the client; `initrd=` lets the
/// kernel's EFI stub find the initrd under UEFI (harmless under BIOS).
pub fn ipxe_script(files_url: &str, ks_url: &str) -> String {
    ipxe_script_for("ttyS0", "${ip6}", files_url, ks_url)
}

/// [`ipxe_script`] for a kernel whose serial console is `console` (`ttyAMA0` on ARM64),
/// with `ip6` after `sixboot.ip6=` (`${ip6}`, or a fixed address for a ROM without that
/// setting: [`crate::RomFlavor::script_ip6`]).
pub fn ipxe_script_for(console: &str, ip6: &str, files_url: &str, ks_url: &str) -> String {
    format!(
        "#!ipxe\n\
         echo SIXBOOT-E2E-SCRIPT mac=${{net0/mac}}\n\
         kernel {files_url}/vmlinuz initrd=initrd.gz console={console} loglevel=4 panic=-1 \
         sixboot.ip6={ip6} inst.ks={ks_url}\n\
         initrd {files_url}/initrd.gz\n\
         boot\n"
    )
}

/// The kickstart the lab serves; the guest only proves that it arrived.
pub fn kickstart(mac: &str) -> String {
    format!("# sixboot e2e kickstart for {mac}\ntext\nreboot\n")
}

/// A kernel package unpacked into the cache.
struct Kernel {
    package: String,
    vmlinuz: PathBuf,
    modules_dir: PathBuf,
}

impl Kernel {
    fn fetch(cache: &Path) -> Result<Kernel> {
        let package = kernel_package()?;
        let dir = cache.join("kernel").join(&package);
        let unpacked = dir.join("unpacked");
        let stamp = dir.join(".complete");
        if !stamp.exists() {
            std::fs::create_dir_all(&dir)
                .map_err(io_error(format!("cannot create {}", dir.display())))?;
            let deb = download(&package, &dir)?;
            let _ = std::fs::remove_dir_all(&unpacked);
            std::fs::create_dir_all(&unpacked)
                .map_err(io_error(format!("cannot create {}", unpacked.display())))?;
            extract(&deb, &unpacked)?;
            std::fs::write(&stamp, b"")
                .map_err(io_error(format!("cannot write {}", stamp.display())))?;
            // The 70 MB package is not needed once its few files are out.
            let _ = std::fs::remove_file(&deb);
        }
        let vmlinuz = first_entry(&unpacked.join("boot"), "vmlinuz-")?;
        let modules_dir = first_entry(&unpacked.join("lib/modules"), "")?;
        Ok(Kernel {
            package,
            vmlinuz,
            modules_dir,
        })
    }

    /// `(name, path)` of every module to load, dependencies first.
    fn load_order(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut found = BTreeMap::new();
        for sub in [
            "kernel/drivers/virtio",
            "kernel/drivers/net",
            "kernel/net/core",
        ] {
            let dir = self.modules_dir.join(sub);
            let entries = std::fs::read_dir(&dir)
                .map_err(io_error(format!("cannot list {}", dir.display())))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".ko"))
                {
                    found.insert(name.to_string(), path.clone());
                }
            }
        }
        let mut depends = BTreeMap::new();
        for (name, path) in &found {
            let bytes =
                std::fs::read(path).map_err(io_error(format!("cannot read {}", path.display())))?;
            depends.insert(name.clone(), module_depends(&bytes));
        }
        let order = load_order(WANTED_MODULES, &depends).map_err(LabError::Missing)?;
        Ok(order
            .into_iter()
            .map(|name| {
                let path = found[&name].clone();
                (name, path)
            })
            .collect())
    }
}

/// The kernel package: `SIXBOOT_KERNEL_PACKAGE`, else what `linux-image-amd64` depends on.
fn kernel_package() -> Result<String> {
    if let Ok(package) = std::env::var("SIXBOOT_KERNEL_PACKAGE") {
        return Ok(package);
    }
    let out = run("apt-cache", &["depends", "linux-image-amd64"]).map_err(|err| {
        LabError::Missing(format!(
            "cannot find Debian's kernel package ({err}); set SIXBOOT_KERNEL_PACKAGE=linux-image-…-amd64"
        ))
    })?;
    out.lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|name| name.starts_with("linux-image-") && name.ends_with("-amd64"))
        .map(str::to_string)
        .ok_or_else(|| {
            LabError::Missing(format!(
                "`apt-cache depends linux-image-amd64` names no linux-image-*-amd64 package:\n{out}"
            ))
        })
}

fn download(package: &str, dir: &Path) -> Result<PathBuf> {
    if let Some(deb) = find_deb(dir, package) {
        return Ok(deb);
    }
    eprintln!("downloading {package} into {}", dir.display());
    let output = Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(dir)
        .output()
        .map_err(io_error("cannot run apt-get download"))?;
    match find_deb(dir, package) {
        Some(deb) => Ok(deb),
        None => Err(LabError::Missing(format!(
            "`apt-get download {package}` in {} gave no .deb ({}); run `apt-get update` or put the \
             .deb there yourself",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let name = entry.file_name().into_string().ok()?;
        (name.starts_with(&format!("{package}_")) && name.ends_with(".deb")).then(|| entry.path())
    })
}

/// Unpacks only the kernel image and the virtio-net modules (about 9 MB of ~400).
fn extract(deb: &Path, into: &Path) -> Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(io_error("cannot run dpkg-deb"))?;
    let stdout = dpkg.stdout.take().expect("stdout is piped");
    let status = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(into)
        .args([
            "--wildcards",
            "./boot/vmlinuz-*",
            "./lib/modules/*/kernel/drivers/virtio/*",
            "./lib/modules/*/kernel/drivers/net/virtio_net.ko",
            "./lib/modules/*/kernel/drivers/net/net_failover.ko",
            "./lib/modules/*/kernel/net/core/*",
        ])
        .stdin(Stdio::from(stdout))
        .status()
        .map_err(io_error("cannot run tar"))?;
    let dpkg_status = dpkg.wait().map_err(io_error("dpkg-deb"))?;
    if !status.success() || !dpkg_status.success() {
        return Err(LabError::Missing(format!(
            "cannot unpack {} (dpkg-deb {dpkg_status}, tar {status})",
            deb.display()
        )));
    }
    Ok(())
}

fn first_entry(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(format!("cannot list {}", dir.display())))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    entries.sort();
    entries.into_iter().next().ok_or_else(|| {
        LabError::Missing(format!(
            "no {prefix}* in {}: delete its .complete stamp to unpack again",
            dir.display()
        ))
    })
}

/// The `depends=` list of a kernel module's `.modinfo` section.
pub fn module_depends(module: &[u8]) -> Vec<String> {
    let needle = b"depends=";
    module
        .split(|&b| b == 0)
        .find_map(|field| field.strip_prefix(needle.as_slice()))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Orders `wanted` and everything they depend on so that each module comes after its
/// dependencies.
pub fn load_order(
    wanted: &[&str],
    depends: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<String>, String> {
    fn visit(
        name: &str,
        depends: &BTreeMap<String, Vec<String>>,
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        if order.iter().any(|done| done == name) {
            return Ok(());
        }
        if stack.iter().any(|open| open == name) {
            return Err(format!("modules depend on each other in a loop: {stack:?}"));
        }
        let deps = depends
            .get(name)
            .ok_or_else(|| format!("module {name} is not in the kernel package"))?;
        stack.push(name.to_string());
        for dep in deps {
            visit(dep, depends, stack, order)?;
        }
        stack.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for name in wanted {
        visit(name, depends, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// A cpio archive in the "newc" format the kernel unpacks (`usr/gen_init_cpio.c`).
#[derive(Debug, Default)]
pub struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Cpio {
    /// A directory, mode 0755, owned by root.
    pub fn directory(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    /// A regular file owned by root; `permissions` such as 0o755.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | permissions, (0, 0), data);
    }

    /// A symbolic link `name` → `target` (busybox's applets).
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, (0, 0), target.as_bytes());
    }

    /// A character device node (`/dev/console` is 5:1), which an archive written
    /// without root can hold while `mknod` could not.
    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, (major, minor), &[]);
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let is_trailer = name == "TRAILER!!!";
        let fields = [
            if is_trailer { 0 } else { self.next_inode },
            mode,
            0, // uid
            0, // gid
            if mode & 0o040_000 != 0 { 2 } else { 1 },
            0, // mtime: fixed, so the archive is reproducible
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            let _ = write!(self.bytes, "{field:08x}");
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }
}

/// One member of a cpio archive, as [`read_cpio`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    /// The path without a leading `./` or `/`.
    pub name: String,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// The file's bytes, or a symbolic link's target.
    pub data: Vec<u8>,
}

impl CpioEntry {
    pub fn is_file(&self) -> bool {
        self.mode & 0o170_000 == 0o100_000
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170_000 == 0o120_000
    }
}

/// Reads a cpio "newc" archive (magic `070701`, or `070702` with checksums) up to its
/// `TRAILER!!!` (the kernel's `usr/gen_init_cpio.c` format, which Debian's initrds use).
/// `Err` says where the archive is truncated or not newc.
pub fn read_cpio(bytes: &[u8]) -> Result<Vec<CpioEntry>, String> {
    const HEADER: usize = 110;
    let align = |n: usize| (n + 3) & !3;
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        let header = bytes
            .get(at..at + HEADER)
            .ok_or_else(|| format!("cpio ends inside a header at byte {at}"))?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(format!("no cpio newc header at byte {at}"));
        }
        let field = |index: usize| {
            let hex = &header[6 + 8 * index..6 + 8 * (index + 1)];
            std::str::from_utf8(hex)
                .ok()
                .and_then(|text| u32::from_str_radix(text, 16).ok())
                .ok_or_else(|| format!("cpio header field {index} at byte {at} is not hex"))
        };
        let mode = field(1)?;
        let file_size = field(6)? as usize;
        let name_size = field(11)? as usize;
        let name_bytes = bytes
            .get(at + HEADER..at + HEADER + name_size)
            .ok_or_else(|| format!("cpio ends inside a name at byte {at}"))?;
        let name = String::from_utf8_lossy(name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes))
            .into_owned();
        let data_at = align(at + HEADER + name_size);
        if name == "TRAILER!!!" {
            return Ok(entries);
        }
        let data = bytes
            .get(data_at..data_at + file_size)
            .ok_or_else(|| format!("cpio ends inside {name}'s data"))?;
        let name = name
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        if !name.is_empty() && name != "." {
            entries.push(CpioEntry {
                name,
                mode,
                data: data.to_vec(),
            });
        }
        at = align(data_at + file_size);
    }
}

/// `gzip -dc path`: the decompressed bytes.
fn gunzip_file(path: &Path) -> Result<Vec<u8>> {
    let output = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(io_error("cannot run gzip"))?;
    if !output.status.success() {
        return Err(LabError::Missing(format!(
            "gzip -dc {} failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

fn gzip(data: &[u8], out: &Path) -> Result<()> {
    let file =
        std::fs::File::create(out).map_err(io_error(format!("cannot create {}", out.display())))?;
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .map_err(io_error("cannot run gzip"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(data)
        .map_err(io_error("cannot feed gzip"))?;
    drop(stdin);
    let status = child.wait().map_err(io_error("gzip"))?;
    if !status.success() {
        return Err(LabError::Missing(format!("gzip failed: {status}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_depends_reads_the_modinfo_list() {
        let module =
            b"\x7fELF junk\0license=GPL\0depends=virtio_ring,virtio,net_failover\0intree=Y\0";
        assert_eq!(
            module_depends(module),
            vec!["virtio_ring", "virtio", "net_failover"]
        );
        assert!(module_depends(b"\0depends=\0").is_empty());
        assert!(module_depends(b"no modinfo at all").is_empty());
    }

    #[test]
    fn load_order_puts_dependencies_first_and_each_module_once() {
        let depends: BTreeMap<String, Vec<String>> = [
            ("virtio_net", vec!["virtio_ring", "virtio", "net_failover"]),
            ("net_failover", vec!["failover"]),
            ("failover", vec![]),
            ("virtio_pci", vec!["virtio_ring", "virtio"]),
            ("virtio", vec!["virtio_ring"]),
            ("virtio_ring", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
        .collect();
        let order = load_order(&["virtio_pci", "virtio_net"], &depends).unwrap();
        assert_eq!(
            order,
            vec![
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
    }

    #[test]
    fn load_order_names_a_missing_module() {
        let depends = BTreeMap::from([("a".to_string(), vec!["b".to_string()])]);
        let err = load_order(&["a"], &depends).unwrap_err();
        assert!(
            err.contains("module b is not in the kernel package"),
            "{err}"
        );
    }

    #[test]
    fn cpio_entries_are_newc_and_four_byte_aligned() {
        let mut cpio = Cpio::default();
        cpio.directory("bin");
        cpio.file("init", 0o755, b"#!/bin/sh\n");
        cpio.char_device("dev/console", 5, 1);
        let bytes = cpio.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(&bytes[..6], b"070701");
        // The first header: inode 1, mode 040755, name "bin" + NUL (namesize 4).
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[6..14], "00000001");
        assert_eq!(&header[14..22], "000041ed");
        assert_eq!(&header[94..102], "00000004");
        assert_eq!(&bytes[110..114], b"bin\0");
        // Header (110) + "bin\0" is 114, padded to 116; the next entry starts there.
        assert_eq!(&bytes[116..122], b"070701");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("init\0"));
        assert!(text.contains("#!/bin/sh\n"));
        assert!(text.contains("TRAILER!!!\0"));
        // The console node: rdevmajor 5, rdevminor 1.
        let console = text.find("dev/console").unwrap() - 110;
        assert_eq!(&text[console + 78..console + 86], "00000005");
        assert_eq!(&text[console + 86..console + 94], "00000001");
    }

    #[test]
    fn init_script_loads_modules_in_order_and_powers_off() {
        for userland in [Userland::BusyboxStatic, Userland::DebianInstaller] {
            let script = init_script(&["virtio_ring", "virtio_net"], userland);
            assert!(script.starts_with("#!/bin/busybox sh\n"));
            assert!(script.contains("for m in virtio_ring virtio_net; do insmod"));
            assert!(script.contains("SIXBOOT-E2E-UP mac=$mac addr=${addr:-none}"));
            assert!(script.contains(r"sed -n 's/.*inet6 \([0-9a-f:]*\)\/.*/\1/p'"));
            assert!(script.trim_end().ends_with("poweroff -f"));
            assert!(
                !script.contains("wget -T"),
                "busybox-static's wget -T crashes"
            );
        }
    }

    #[test]
    fn installer_init_script_fetches_through_nc_without_wget_or_timeout() {
        let script = init_script(&["virtio_net"], Userland::DebianInstaller);
        assert!(script.contains("nc -w 20"), "{script}");
        assert!(!script.contains("wget"), "{script}");
        assert!(!script.contains("timeout "), "{script}");
        assert!(!script.contains("--install"), "{script}");
    }

    #[test]
    fn arm64_initramfs_keeps_what_init_needs_from_the_installer_initrd() {
        if !crate::need::file(format!("{DI_ARM64_DIR}/initrd.gz"), DI_ARM64_PACKAGE) {
            return;
        }
        let out = std::env::temp_dir().join(format!("sbq-arm64-guest-{}", std::process::id()));
        let images = GuestImages::prepare_arm64(&out).unwrap();
        let entries = read_cpio(&gunzip_file(&images.initrd).unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&out);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        for name in DI_ARM64_FILES.iter().chain(&[
            "init",
            "dev/console",
            "lib/modules/virtio_pci.ko",
            "lib/modules/virtio_net.ko",
            // Applets /init runs, as links to busybox.
            "usr/bin/nc",
            "bin/sed",
            "sbin/ip",
            "sbin/poweroff",
        ]) {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        let init = entries.iter().find(|e| e.name == "init").unwrap();
        assert!(String::from_utf8_lossy(&init.data).contains("nc -w 20"));
        assert_eq!(images.console, "ttyAMA0");
        assert!(
            images.kernel_package.contains("-arm64)"),
            "{}",
            images.kernel_package
        );
        // Small enough to be quick under TCG: the installer's initrd is 40 MB.
        let size = std::fs::metadata(&images.initrd)
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size < 4 << 20, "the ARM64 initramfs is {size} bytes");
    }

    #[test]
    fn read_cpio_reads_what_cpio_writes() {
        let mut cpio = Cpio::default();
        cpio.directory("bin");
        cpio.file("bin/busybox", 0o755, b"\x7fELF...");
        cpio.symlink("bin/sh", "busybox");
        cpio.char_device("dev/console", 5, 1);
        let entries = read_cpio(&cpio.finish()).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "dev/console"]);
        assert!(entries[1].is_file());
        assert_eq!(entries[1].mode & 0o7777, 0o755);
        assert_eq!(entries[1].data, b"\x7fELF...");
        assert!(entries[2].is_symlink());
        assert_eq!(entries[2].data, b"busybox");
    }

    #[test]
    fn read_cpio_names_a_truncated_archive() {
        let mut cpio = Cpio::default();
        cpio.file("init", 0o755, &[b'x'; 64]);
        let bytes = cpio.finish();
        let err = read_cpio(&bytes[..150]).unwrap_err();
        assert!(err.contains("init"), "{err}");
        let err = read_cpio(&[b'x'; 200]).unwrap_err();
        assert!(err.contains("no cpio newc header at byte 0"), "{err}");
    }

    #[test]
    fn ipxe_script_starts_with_the_magic_line_and_brackets_urls() {
        let script = ipxe_script(
            "http://[2001:db8::1]/files",
            "http://[2001:db8::1]/ks/52:54:00:5b:00:01",
        );
        assert!(script.starts_with("#!ipxe\n"));
        assert!(script.contains("inst.ks=http://[2001:db8::1]/ks/52:54:00:5b:00:01"));
        assert!(script.contains("sixboot.ip6=${ip6}"));
    }
}

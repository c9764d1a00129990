//! UEFI firmware's own network boot over IPv6 loads iPXE from sixboot, and that iPXE
//! then gets its per-host script instead of itself again (issue 8): (a) OVMF's PXEv6
//! fetches `ipxe.efi` over TFTP, (b) OVMF's HTTP Boot fetches it over HTTP.
//!
//! Real parts only: OVMF (Debian `ovmf`) in QEMU (TCG) with a virtio NIC that carries no
//! option ROM (`romfile=`), so the firmware's own network stack boots; Debian's
//! `ipxe.efi`; one `sixboot boot-server` for RA, DHCPv6 (architecture 7 → the TFTP URL,
//! 16 → the HTTP URL with vendor class "HTTPClient", user class iPXE → the script URL),
//! HTTP and TFTP, from one config. All inside a namespace of our own (`sbt-ovmf`, bridge
//! and tap), removed in `Drop`. Needs root; otherwise it prints `SKIPPED:`. About a
//! minute per test under TCG; the two tests take turns (one VM at a time).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const NETNS: &str = "sbt-ovmf";
const BRIDGE: &str = "sbt-br0";
const TAP: &str = "sbt-tap0";
const SERVER: &str = "2001:db8:5c::1";
const MAC: &str = "52:54:00:5c:00:01";
const IPXE_EFI: &str = "/usr/lib/ipxe/ipxe.efi";
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const MARKER: &str = "SIXBOOT-OVMF-TFTP-SCRIPT";

/// The namespace, its link and every process started in it.
struct Lab {
    work: tempfile::TempDir,
    children: Vec<Child>,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Lab {
    fn create() -> Result<Lab, String> {
        // Leftovers of an interrupted run.
        ip(&["netns", "del", NETNS]);
        if !ip(&["netns", "add", NETNS]) {
            return Err("cannot create a network namespace (needs root)".into());
        }
        let lab = Lab {
            work: tempfile::tempdir().map_err(|e| e.to_string())?,
            children: Vec::new(),
        };
        let address = format!("{SERVER}/64");
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "add", BRIDGE, "type", "bridge"],
            &["tuntap", "add", TAP, "mode", "tap"],
            &["link", "set", TAP, "master", BRIDGE],
            // nodad: bind at once instead of after duplicate address detection.
            &["addr", "add", &address, "dev", BRIDGE, "nodad"],
            &["link", "set", BRIDGE, "up"],
            &["link", "set", TAP, "up"],
        ] {
            let mut full = vec!["-n", NETNS];
            full.extend_from_slice(args);
            if !ip(&full) {
                return Err(format!("ip {full:?} failed"));
            }
        }
        Ok(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Starts `program args` in the namespace, output to `<label>.log`.
    fn spawn(&mut self, label: &str, program: &str, args: &[&str]) {
        let log = std::fs::File::create(self.path(&format!("{label}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", NETNS, program])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.children.push(child);
    }

    fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path(name)).unwrap_or_default()).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        ip(&["netns", "del", NETNS]);
    }
}

fn missing_files() -> Option<String> {
    let need = [IPXE_EFI, OVMF_CODE, OVMF_VARS];
    if let Some(path) = need.iter().find(|p| !Path::new(p).exists()) {
        return Some(format!("{path} not found (install Debian's ipxe and ovmf)"));
    }
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    (!qemu).then(|| "qemu-system-x86_64 not installed".to_string())
}

/// TCG VMs are CPU-bound, and both tests use the same namespace names: one at a time.
fn one_vm_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn config(lab: &Lab) -> String {
    format!(
        r#"[server]
interfaces = ["{BRIDGE}"]
state_dir = "{state}"

[ra]
enabled = true
managed = true
other = true
router_lifetime_secs = 0
min_interval_secs = 4
max_interval_secs = 10

[[ra.prefixes]]
prefix = "2001:db8:5c::/64"
autonomous = false

[[dhcp.subnets]]
prefix = "2001:db8:5c::/64"
pool_start = "2001:db8:5c::100"
pool_end = "2001:db8:5c::1ff"
interface = "{BRIDGE}"

[boot]
ipxe_script_url = "http://[{SERVER}]/ipxe/ipxe-{{mac}}.cfg"
efi_url = "tftp://[{SERVER}]/ipxe.efi"
http_boot_url = "http://[{SERVER}]/files/ipxe.efi"

[http]
listen = ["[{SERVER}]:80"]
base_url = "http://[{SERVER}]"
files_root = "{files}"
script_template = "{script}"

[tftp]
root = "{tftp}"
listen = ["[{SERVER}]:69"]

[[hosts]]
mac = "{MAC}"
name = "ovmf1"
address = "2001:db8:5c::10"
install = true
"#,
        state = lab.path("state").display(),
        files = lab.path("files").display(),
        script = lab.path("ipxe.j2").display(),
        tftp = lab.path("tftp").display(),
    )
}

/// Which of OVMF's network boot entries runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    PxeV6,
    HttpV6,
}

/// What one boot showed: the console and the server's log.
struct Boot {
    console: String,
    log: String,
    took: Duration,
}

/// Starts the server and a VM that boots through `entry`, and waits for the script.
fn boot(entry: Entry) -> Option<Boot> {
    if let Some(reason) = missing_files() {
        println!("SKIPPED: {reason}");
        return None;
    }
    let mut lab = match Lab::create() {
        Ok(lab) => lab,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return None;
        }
    };
    for dir in ["state", "tftp", "files"] {
        std::fs::create_dir_all(lab.path(dir)).unwrap();
    }
    std::fs::copy(IPXE_EFI, lab.path("tftp/ipxe.efi")).unwrap();
    std::fs::copy(IPXE_EFI, lab.path("files/ipxe.efi")).unwrap();
    std::fs::write(
        lab.path("ipxe.j2"),
        format!("#!ipxe\necho {MARKER} {{{{ name }}}}\n"),
    )
    .unwrap();
    std::fs::write(lab.path("lab.toml"), config(&lab)).unwrap();
    std::fs::copy(OVMF_VARS, lab.path("vars.fd")).unwrap();

    let config_path = lab.path("lab.toml").display().to_string();
    let sixboot = env!("CARGO_BIN_EXE_sixboot");
    lab.spawn(
        "boot-server",
        sixboot,
        &["boot-server", "--config", &config_path],
    );

    let serial_arg = format!("file:{}", lab.path("serial.log").display());
    let code = format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}");
    let vars = format!(
        "if=pflash,format=raw,unit=1,file={}",
        lab.path("vars.fd").display()
    );
    let netdev = format!("tap,id=n0,ifname={TAP},script=no,downscript=no");
    // romfile= removes the NIC's iPXE ROM, so OVMF's own network stack does the boot.
    let device = format!("virtio-net-pci,netdev=n0,mac={MAC},romfile=,bootindex=1");
    let mut args = vec![
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-m",
        "512",
        "-nographic",
        "-monitor",
        "none",
        "-no-reboot",
        "-serial",
        &serial_arg,
        "-uuid",
        "5b5b5b5b-0000-4000-8000-00000000005c",
        "-drive",
        &code,
        "-drive",
        &vars,
        // Each IPv4 entry would wait about a minute on this IPv6-only link.
        "-fw_cfg",
        "name=opt/org.tianocore/IPv4PXESupport,string=n",
        "-netdev",
        &netdev,
        "-device",
        &device,
    ];
    if entry == Entry::HttpV6 {
        // Leave HTTPv6 as the first entry; the menu delay lets the link come up before
        // it starts (FIELD-NOTES: without it, "Unexpected network error" at about 4 s).
        args.extend([
            "-fw_cfg",
            "name=opt/org.tianocore/IPv6PXESupport,string=n",
            // No IPv4 stack at all, or its HTTPv4 entry waits for DHCPv4 first.
            "-fw_cfg",
            "name=opt/org.tianocore/IPv4Support,string=n",
            "-boot",
            "menu=on,splash-time=5000",
        ]);
    }
    let started = Instant::now();
    lab.spawn("qemu", "qemu-system-x86_64", &args);

    let deadline = started + Duration::from_secs(240);
    loop {
        let console = lab.read("serial.log");
        if console.contains(MARKER) {
            return Some(Boot {
                console,
                log: lab.read("boot-server.log"),
                took: started.elapsed(),
            });
        }
        if Instant::now() > deadline {
            panic!(
                "no {MARKER} within 240 s ({entry:?}).\n--- console (tail) ---\n{}\n--- boot-server (tail) ---\n{}",
                tail(&console, 3000),
                tail(&lab.read("boot-server.log"), 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The console after the firmware's download: iPXE started, asked DHCPv6 again and got
/// its script URL, not `ipxe.efi` a second time.
fn assert_ipxe_got_its_script(console: &str, downloaded: usize) {
    let ipxe = console[downloaded..]
        .find("iPXE initialising devices")
        .expect("iPXE did not start after the download");
    let after = &console[downloaded + ipxe..];
    let script_url = format!("Filename: http://[{SERVER}]/ipxe/ipxe-{MAC}.cfg");
    assert!(after.contains(&script_url), "{}", tail(after, 2000));
    assert!(
        !after.contains("ipxe.efi"),
        "iPXE was handed ipxe.efi again (a chainload loop): {}",
        tail(after, 2000)
    );
    assert!(
        after.contains(&format!("{MARKER} ovmf1")),
        "{}",
        tail(after, 2000)
    );
}

#[test]
fn ovmf_pxe_over_ipv6_loads_ipxe_efi_over_tftp_and_ipxe_then_runs_its_http_script() {
    let _one = one_vm_at_a_time();
    let Some(boot) = boot(Entry::PxeV6) else {
        return;
    };
    let downloaded = boot
        .console
        .find("NBP file downloaded successfully")
        .expect("OVMF did not report the NBP download");
    let ipxe_size = std::fs::metadata(IPXE_EFI).unwrap().len();
    let complete: Vec<&str> = boot
        .log
        .lines()
        .filter(|l| l.contains("TFTP transfer complete") && l.contains("file=ipxe.efi"))
        .collect();
    assert_eq!(
        complete.len(),
        1,
        "exactly one full TFTP download of ipxe.efi:\n{}",
        boot.log
    );
    assert!(
        complete[0].contains(&format!("bytes={ipxe_size}")),
        "{}",
        complete[0]
    );
    assert!(
        boot.log.contains("script served"),
        "no script in the server log"
    );
    assert_ipxe_got_its_script(&boot.console, downloaded);
    println!(
        "OVMF PXEv6 → TFTP ipxe.efi → iPXE → HTTP script in {:.1} s; {}",
        boot.took.as_secs_f64(),
        complete[0]
    );
}

#[test]
fn ovmf_http_boot_over_ipv6_loads_ipxe_efi_over_http_and_ipxe_then_runs_its_script() {
    let _one = one_vm_at_a_time();
    let Some(boot) = boot(Entry::HttpV6) else {
        return;
    };
    let uri = format!("URI: http://[{SERVER}]/files/ipxe.efi");
    let downloaded = boot.console.find(&uri).unwrap_or_else(|| {
        panic!(
            "OVMF's HTTP Boot did not get the HTTP URL of ipxe.efi:\n{}",
            tail(&boot.console, 6000)
        )
    });
    assert!(
        boot.console[..downloaded].contains("Start HTTP Boot over IPv6"),
        "not the HTTPv6 entry:\n{}",
        tail(&boot.console[..downloaded], 2000)
    );
    assert!(
        boot.log
            .lines()
            .any(|l| l.contains("file served") && l.contains("ipxe.efi")),
        "ipxe.efi was not served over HTTP:\n{}",
        tail(&boot.log, 4000)
    );
    assert!(
        !boot.log.contains("TFTP transfer complete"),
        "HTTP Boot must not use TFTP"
    );
    assert_ipxe_got_its_script(&boot.console, downloaded);
    println!(
        "OVMF HTTPv6 → HTTP ipxe.efi → iPXE → HTTP script in {:.1} s",
        boot.took.as_secs_f64()
    );
}

fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

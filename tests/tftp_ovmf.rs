//! UEFI firmware's own PXE over IPv6 loads iPXE from sixboot's TFTP server, and that
//! iPXE then gets its per-host script instead of itself again (issue 8, path (a)).
//!
//! Real parts only: OVMF (Debian `ovmf`) in QEMU (TCG) with a virtio NIC that carries no
//! option ROM (`romfile=`), so the firmware's PXEv6 boots; `sixboot boot-server` for RA
//! and DHCPv6 (architecture 7 → `tftp://…/ipxe.efi`, user class iPXE → the script URL);
//! `sixboot tftp` serving Debian's `ipxe.efi`; busybox httpd serving the script. All
//! inside a namespace of our own (`sbt-ovmf`, bridge and tap), removed in `Drop`.
//! Needs root; otherwise it prints `SKIPPED:`. Takes about a minute under TCG.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

[tftp]
root = "{root}"
listen = ["[{SERVER}]:69"]

[[hosts]]
mac = "{MAC}"
name = "ovmf1"
address = "2001:db8:5c::10"
install = true
"#,
        state = lab.path("state").display(),
        root = lab.path("tftp").display(),
    )
}

#[test]
fn ovmf_pxe_over_ipv6_loads_ipxe_efi_over_tftp_and_ipxe_then_runs_its_http_script() {
    if let Some(reason) = missing_files() {
        println!("SKIPPED: {reason}");
        return;
    }
    let mut lab = match Lab::create() {
        Ok(lab) => lab,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return;
        }
    };
    for dir in ["state", "tftp", "www/ipxe"] {
        std::fs::create_dir_all(lab.path(dir)).unwrap();
    }
    std::fs::copy(IPXE_EFI, lab.path("tftp/ipxe.efi")).unwrap();
    let ipxe_size = std::fs::metadata(IPXE_EFI).unwrap().len();
    std::fs::write(
        lab.path(&format!("www/ipxe/ipxe-{MAC}.cfg")),
        format!("#!ipxe\necho {MARKER}\n"),
    )
    .unwrap();
    std::fs::write(lab.path("lab.toml"), config(&lab)).unwrap();
    std::fs::copy(OVMF_VARS, lab.path("vars.fd")).unwrap();

    let sixboot = env!("CARGO_BIN_EXE_sixboot");
    let config_path = lab.path("lab.toml").display().to_string();
    lab.spawn(
        "boot-server",
        sixboot,
        &["boot-server", "--config", &config_path],
    );
    lab.spawn("tftp", sixboot, &["tftp", "--config", &config_path]);
    let www = lab.path("www").display().to_string();
    let http_listen = format!("[{SERVER}]:80");
    lab.spawn(
        "httpd",
        "busybox",
        &["httpd", "-f", "-p", &http_listen, "-h", &www],
    );

    let serial = lab.path("serial.log");
    let code = format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}");
    let vars = format!(
        "if=pflash,format=raw,unit=1,file={}",
        lab.path("vars.fd").display()
    );
    let serial_arg = format!("file:{}", serial.display());
    let netdev = format!("tap,id=n0,ifname={TAP},script=no,downscript=no");
    // romfile= removes the NIC's iPXE ROM, so OVMF's own PXEv6 does the boot.
    let device = format!("virtio-net-pci,netdev=n0,mac={MAC},romfile=,bootindex=1");
    let started = Instant::now();
    lab.spawn(
        "qemu",
        "qemu-system-x86_64",
        &[
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
            // Each IPv4 PXE entry would wait about a minute on this IPv6-only link.
            "-fw_cfg",
            "name=opt/org.tianocore/IPv4PXESupport,string=n",
            "-netdev",
            &netdev,
            "-device",
            &device,
        ],
    );

    let deadline = started + Duration::from_secs(240);
    let console = loop {
        let console = lab.read("serial.log");
        if console.contains(MARKER) {
            break console;
        }
        if Instant::now() > deadline {
            panic!(
                "no {MARKER} within 240 s.\n--- console (tail) ---\n{}\n--- tftp ---\n{}\n--- boot-server ---\n{}",
                tail(&console, 3000),
                lab.read("tftp.log"),
                tail(&lab.read("boot-server.log"), 3000)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let took = started.elapsed();

    // The firmware's PXE took the file from our TFTP server ...
    let downloaded = console
        .find("NBP file downloaded successfully")
        .expect("OVMF did not report the NBP download");
    let tftp_log = lab.read("tftp.log");
    let complete: Vec<&str> = tftp_log
        .lines()
        .filter(|l| l.contains("TFTP transfer complete") && l.contains("file=ipxe.efi"))
        .collect();
    assert_eq!(
        complete.len(),
        1,
        "exactly one full TFTP download of ipxe.efi (a second one would be a chainload loop):\n{tftp_log}"
    );
    assert!(
        complete[0].contains(&format!("bytes={ipxe_size}")),
        "{}",
        complete[0]
    );
    // ... then that iPXE asked DHCPv6 again and got its script URL, not ipxe.efi.
    let ipxe = console[downloaded..]
        .find("iPXE initialising devices")
        .expect("iPXE did not start after the download");
    let after = &console[downloaded + ipxe..];
    let script_url = format!("Filename: http://[{SERVER}]/ipxe/ipxe-{MAC}.cfg");
    assert!(after.contains(&script_url), "{}", tail(after, 2000));
    assert!(
        !after.contains("Filename: tftp://"),
        "iPXE was handed ipxe.efi again: {}",
        tail(after, 2000)
    );
    println!(
        "OVMF PXEv6 → TFTP ipxe.efi → iPXE → HTTP script in {:.1} s; {}",
        took.as_secs_f64(),
        complete[0]
    );
}

fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

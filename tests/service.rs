//! `sixboot boot-server` as a service (issue 18): started with `setpriv` as an
//! unprivileged user holding only CAP_NET_BIND_SERVICE and CAP_NET_RAW it serves RA,
//! DHCPv6, HTTP and TFTP to real clients in namespaces, with JSON logs; without
//! CAP_NET_RAW it refuses to start and names RA; SIGHUP reloads (hosts added, broken
//! configs rejected with `config check`'s messages, leases kept, no exchange dropped
//! under perfdhcp load); the systemd unit's exposure score; the Debian package from
//! `cargo xtask package-deb` installs, passes lintian and purges cleanly.

mod dhcpv6_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dhcpv6_support::{Lab, SERVER_ADDRESS};
use sixboot_lab::need;

/// `nobody` / `nogroup` on Debian: a user with no rights of its own.
const UNPRIVILEGED: &str = "65534";
const BOTH_CAPS: &str = "+net_bind_service,+net_raw";
const HOST_ADDRESS: &str = "2001:db8:1::10";
/// A static address for the client, outside the pool, so curl has a source address.
const CLIENT_ADDRESS: &str = "2001:db8:1::99";
const RA_ON: &str = "[ra]\nenabled = true\nmanaged = true\nother = true\n[[ra.prefixes]]\nprefix = \"2001:db8:1::/64\"\n";

/// A boot server started by the test as an unprivileged user; killed in `Drop`
/// (declare it after the `Lab`, so it goes before the namespaces).
struct Service {
    child: Option<Child>,
    log: PathBuf,
    n_ready: usize,
    /// How often each awaited text had appeared at the last wait.
    marks: Vec<(String, usize)>,
}

impl Service {
    /// Starts `sixboot boot-server` in the lab's server namespace through
    /// `setpriv --reuid 65534 … --ambient-caps CAPS`, logging to the lab's server.log.
    fn spawn(lab: &Lab, caps: &str, extra: &[&str]) -> Service {
        // The binary and the lab directory must be reachable for `nobody`: the test's
        // own target directory may be below a private home.
        let dir = lab.dir.path();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let binary = dir.join("sixboot");
        if !binary.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_sixboot"), &binary).expect("copy the binary");
        }
        let log_path = dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &lab.server_ns, "setpriv"])
            .args([
                "--reuid",
                UNPRIVILEGED,
                "--regid",
                UNPRIVILEGED,
                "--clear-groups",
            ])
            .args(["--inh-caps", caps, "--ambient-caps", caps])
            .arg(&binary)
            .args(["boot-server", "--config"])
            .arg(lab.config_path())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        Service {
            child: Some(command.spawn().expect("spawn setpriv sixboot boot-server")),
            log: log_path,
            n_ready: 0,
            marks: Vec::new(),
        }
    }

    /// [`Service::spawn`] and wait for "boot server ready" (READY=1 time).
    fn start(lab: &Lab, caps: &str, extra: &[&str]) -> Service {
        let mut service = Service::spawn(lab, caps, extra);
        service.wait_for("boot server ready", Duration::from_secs(15));
        service
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `text` appears once more in the log than it did at the last wait.
    fn wait_for(&mut self, text: &str, limit: Duration) {
        let before = if text == "boot server ready" {
            self.n_ready
        } else {
            0
        };
        let deadline = Instant::now() + limit;
        loop {
            let n = self.log().matches(text).count();
            if n > before {
                if text == "boot server ready" {
                    self.n_ready = n;
                }
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("boot-server exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself; returns its status.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("kill");
    }

    /// SIGTERM, and a clean exit within 5 s.
    fn stop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(5));
        assert!(status.success(), "exit {status}:\n{}", self.log());
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The client interface's MAC (dhclient's DUID-LLT carries it).
fn client_mac(lab: &Lab) -> String {
    let out = lab.in_client(
        "cat",
        &[&format!("/sys/class/net/{}/address", lab.client_if)],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn host_entry(mac: &str, name: &str, address: &str) -> String {
    format!(
        "[[hosts]]\nmac = \"{mac}\"\nname = \"{name}\"\naddress = \"{address}\"\ninstall = true\n"
    )
}

/// `[http]` and `[tftp]` on the server address, a files directory with one file, and
/// a state directory the unprivileged user owns.
fn serving_sections(lab: &Lab) -> String {
    let files = lab.dir.path().join("files");
    std::fs::create_dir_all(&files).expect("files dir");
    std::fs::set_permissions(&files, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(files.join("hello.txt"), "hello over TFTP\n").expect("file");
    let state = lab.state_dir();
    std::fs::create_dir_all(&state).expect("state dir");
    nix::unistd::chown(
        &state,
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .expect("chown state dir");
    format!(
        "[http]\nlisten = [\"[{SERVER_ADDRESS}]:80\"]\nbase_url = \"http://[{SERVER_ADDRESS}]\"\n\
         files_root = \"{files}\"\n[tftp]\nlisten = [\"[{SERVER_ADDRESS}]:69\"]\nroot = \"{files}\"\n",
        files = files.display()
    )
}

/// curl in the client namespace: (HTTP status or curl error, body).
fn curl(lab: &Lab, url: &str) -> (String, String) {
    let out = lab.in_client(
        "curl",
        &[
            "-sS",
            "-g",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            url,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = if out.status.success() {
        code.to_owned()
    } else {
        format!("curl failed: {}", String::from_utf8_lossy(&out.stderr))
    };
    (code, body.to_owned())
}

fn script_url(mac: &str) -> String {
    format!("http://[{SERVER_ADDRESS}]/ipxe/ipxe-{mac}.cfg")
}

fn needs_lab_programs() -> bool {
    need::program("setpriv", "util-linux")
        && need::program("dhclient", "isc-dhcp-client")
        && need::program("rdisc6", "ndisc6")
        && need::program("curl", "curl")
}

#[test]
fn an_unprivileged_user_with_two_capabilities_serves_ra_dhcpv6_http_and_tftp_in_json_logs() {
    if !needs_lab_programs() {
        return;
    }
    let Some(lab) = Lab::new("svcp") else {
        return;
    };
    let mac = client_mac(&lab);
    let extra = format!(
        "{}{}",
        serving_sections(&lab),
        host_entry(&mac, "node1", HOST_ADDRESS)
    );
    lab.write_config(RA_ON, "2001:db8:1::1ff", &extra);
    let mut server = Service::start(&lab, BOTH_CAPS, &["--log-format", "json"]);

    // Who it runs as: nobody, with exactly the two capabilities effective.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    assert!(
        status.contains("\nUid:\t65534\t65534\t65534\t65534\n"),
        "{status}"
    );
    let effective = sixboot::privilege::parse_status_capabilities(&status, "CapEff");
    assert_eq!(effective, Some((1 << 10) | (1 << 13)), "{status}");

    // RA: M and O set.
    let out = lab.in_client("rdisc6", &["-1", "-r", "3", "-w", "1000", &lab.client_if]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Stateful address conf.    :          Yes"),
        "{text}\n{}",
        server.log()
    );
    // DHCPv6: a real dhclient gets the host's address and its script URL.
    let (lease, _) = lab.dhclient(false);
    assert!(lease.contains(&format!("iaaddr {HOST_ADDRESS}")), "{lease}");
    assert!(lease.contains(&script_url(&mac)), "{lease}");
    // HTTP and TFTP from the client.
    lab.in_client(
        "ip",
        &[
            "addr",
            "add",
            &format!("{CLIENT_ADDRESS}/64"),
            "dev",
            &lab.client_if,
            "nodad",
        ],
    );
    let (code, body) = curl(&lab, &script_url(&mac));
    assert_eq!(code, "200", "{body}\n{}", server.log());
    assert!(body.starts_with("#!ipxe"), "{body}");
    let (code, body) = curl(&lab, &format!("tftp://[{SERVER_ADDRESS}]/hello.txt"));
    // curl says 000 for a TFTP transfer that worked (no HTTP status).
    assert_eq!(code, "000", "{body}");
    assert_eq!(body, "hello over TFTP\n");
    server.stop();

    // Every line is a JSON object; boot events carry their fields as top-level keys.
    let log = server.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let script = events
        .iter()
        .find(|e| e["target"] == "sixboot::boot" && e["stage"] == "script")
        .unwrap_or_else(|| panic!("no script event:\n{log}"));
    assert_eq!(script["mac"], mac.as_str(), "{script}");
    assert_eq!(script["host"], "node1", "{script}");
    assert_eq!(script["level"], "INFO", "{script}");
    let peer = script["peer"].as_str().unwrap_or_default();
    assert!(
        peer.starts_with(&format!("[{CLIENT_ADDRESS}]:")),
        "{script}"
    );
    let lease_event = events
        .iter()
        .find(|e| e["message"] == "DHCPv6 lease")
        .unwrap_or_else(|| panic!("no lease event:\n{log}"));
    assert_eq!(lease_event["mac"], mac.as_str(), "{lease_event}");
    assert_eq!(lease_event["host"], "node1", "{lease_event}");
}

#[test]
fn without_cap_net_raw_the_server_refuses_to_start_and_names_router_advertisements() {
    if !need::program("setpriv", "util-linux") {
        return;
    }
    let Some(lab) = Lab::new("svcn") else {
        return;
    };
    let extra = serving_sections(&lab);
    lab.write_config(RA_ON, "2001:db8:1::1ff", &extra);
    let mut server = Service::spawn(&lab, "+net_bind_service", &[]);
    let status = server.wait_exit(Duration::from_secs(10));
    let log = server.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "router advertisements on {} need CAP_NET_RAW (a raw ICMPv6 socket)",
            lab.server_if
        )),
        "{log}"
    );
    assert!(log.contains("--ambient-caps +net_raw"), "{log}");
    // Only what is missing is listed: the ports are covered by CAP_NET_BIND_SERVICE.
    assert!(!log.contains("needs CAP_NET_BIND_SERVICE"), "{log}");
}

#[test]
fn the_systemd_unit_has_an_exposure_score_below_four() {
    if !need::program("systemd-analyze", "systemd") {
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sixboot.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no score:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    // "→ Overall exposure level for sixboot.service: 1.5 OK 🙂"
    let score: f64 = line
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score < 4.0, "{line}");
    assert!(line.contains("OK"), "{line}");
}

/// Runs a command to completion; panics with its output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// dpkg refuses at once while apt or dpkg runs elsewhere on the machine: retry then.
fn dpkg(args: &[&str]) -> String {
    for _ in 0..60 {
        let out = Command::new("dpkg").args(args).output().expect("dpkg");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if !stderr.contains("lock") {
            panic!("dpkg {args:?}: {}\n{stderr}", out.status);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("dpkg {args:?}: the dpkg lock stayed busy for 2 minutes");
}

/// What the package test added to the machine, removed whatever happens.
struct PackageCleanup {
    user_existed: bool,
    state_existed: bool,
}

impl Drop for PackageCleanup {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "sixboot"]).output();
        if !self.state_existed {
            let _ = std::fs::remove_dir_all("/var/lib/sixboot");
        }
        if !self.user_existed {
            let _ = Command::new("deluser")
                .args(["--system", "--quiet", "sixboot"])
                .output();
        }
    }
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

#[test]
fn the_debian_package_installs_passes_lintian_and_purge_keeps_only_the_state() {
    if !(need::root()
        && need::program("dpkg", "dpkg")
        && need::program("lintian", "lintian")
        && need::program("man", "man-db")
        && need::program("systemd-analyze", "systemd"))
    {
        return;
    }
    if is_installed("sixboot") {
        need::skip("a sixboot package is installed on this machine; the test would replace it");
        return;
    }
    // One package test at a time on the machine (other worktrees run this test too).
    let _lock = sixboot_lab::lock::lock("package-deb").expect("lock");
    let out_dir = tempfile::tempdir().expect("temp dir");
    // The debug binary these tests already built: packaging it takes seconds, a
    // release build minutes.
    // A clean environment, or the nested cargo recompiles xtask (see `nested_cargo`).
    let built = sixboot_lab::nested_cargo(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["xtask", "package-deb", "--fast", "--binary"])
        .arg(env!("CARGO_BIN_EXE_sixboot"))
        .arg("--output")
        .arg(out_dir.path())
        .output()
        .expect("cargo xtask package-deb");
    assert!(
        built.status.success(),
        "package-deb: {}\n{}",
        built.status,
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8_lossy(&built.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_owned())
        .unwrap_or_default();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb:?}");

    let lintian = Command::new("lintian")
        .args(["--fail-on", "error", "--no-tag-display-limit"])
        .arg(&deb)
        .output()
        .expect("lintian");
    let report = String::from_utf8_lossy(&lintian.stdout);
    assert!(lintian.status.success(), "lintian:\n{report}");
    assert!(!report.lines().any(|l| l.starts_with("E:")), "{report}");

    let cleanup = PackageCleanup {
        user_existed: Command::new("getent")
            .args(["passwd", "sixboot"])
            .output()
            .is_ok_and(|o| o.status.success()),
        state_existed: Path::new("/var/lib/sixboot").exists(),
    };
    dpkg(&["-i", &deb]);
    let version = run("/usr/bin/sixboot", &["--version"]);
    assert_eq!(
        version.trim(),
        format!("sixboot {}", env!("CARGO_PKG_VERSION"))
    );
    let page = Command::new("man")
        .arg("sixboot")
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("sixboot-boot-server(1)"), "{page}");
    let page = run("man", &["-P", "cat", "sixboot-boot-server"]);
    assert!(page.contains("CAP_NET_RAW"), "{page}");
    // The system user owns the state directory; the example config checks out.
    run("getent", &["passwd", "sixboot"]);
    let owner = run("stat", &["-c", "%U:%G %a", "/var/lib/sixboot"]);
    assert_eq!(owner.trim(), "sixboot:sixboot 750");
    let check = run(
        "/usr/bin/sixboot",
        &["config", "check", "/etc/sixboot/sixboot.toml"],
    );
    assert!(check.contains(": ok"), "{check}");
    let conffiles = run("dpkg-query", &["-W", "-f", "${Conffiles}", "sixboot"]);
    for file in [
        "/etc/sixboot/sixboot.toml",
        "/etc/sixboot/templates/ipxe.j2",
        "/etc/sixboot/templates/ks.j2",
    ] {
        assert!(
            conffiles.contains(file),
            "{file} is not a conffile:\n{conffiles}"
        );
    }
    let files = dpkg(&["-L", "sixboot"]);
    let unit = files
        .lines()
        .find(|l| l.ends_with("/systemd/system/sixboot.service"))
        .unwrap_or_else(|| panic!("no unit in the package:\n{files}"))
        .to_owned();
    for wanted in [
        "/usr/share/bash-completion/completions/sixboot",
        "/usr/share/zsh/vendor-completions/_sixboot",
        "/usr/share/fish/vendor_completions.d/sixboot.fish",
        "/usr/share/man/man1/sixboot-boot-server.1.gz",
        "/usr/share/man/man1/sixboot-rom-verify.1.gz",
    ] {
        assert!(
            files.lines().any(|l| l == wanted),
            "{wanted} missing:\n{files}"
        );
    }
    // With the binary and the man page in place, systemd accepts the unit as installed.
    let verify = Command::new("systemd-analyze")
        .args(["verify", &unit])
        .output()
        .expect("systemd-analyze verify");
    assert!(
        verify.status.success(),
        "systemd-analyze verify {unit}: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    std::fs::write("/var/lib/sixboot/leases.jsonl", "").expect("state file");
    dpkg(&["--purge", "sixboot"]);
    for gone in ["/usr/bin/sixboot", "/etc/sixboot", unit.as_str()] {
        assert!(
            !Path::new(gone).exists(),
            "{gone} is still there after purge"
        );
    }
    assert!(!Path::new("/usr/share/man/man1/sixboot.1.gz").exists());
    assert!(
        Path::new("/var/lib/sixboot/leases.jsonl").exists(),
        "purge removed the state"
    );
    drop(cleanup);
}

/// Writes `text` as the lab's config (the file the running server reloads).
fn rewrite_config(lab: &Lab, ra: &str, extra: &str) {
    lab.write_config(ra, "2001:db8:1::ffff", extra);
}

/// SIGHUP, then the log line that says how the reload ended (`reloaded` or `rejected`).
fn reload(server: &mut Service, expect: &str) {
    server.signal(nix::sys::signal::Signal::SIGHUP);
    server.wait_for_more(expect, Duration::from_secs(10));
}

impl Service {
    /// Like [`Service::wait_for`] for any text: one more occurrence than now.
    fn wait_for_more(&mut self, text: &str, limit: Duration) {
        let before = self.seen(text);
        let deadline = Instant::now() + limit;
        while self.log().matches(text).count() <= before {
            assert!(
                Instant::now() < deadline,
                "no new {text:?} within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.mark(text);
    }

    fn seen(&self, text: &str) -> usize {
        self.marks
            .iter()
            .find(|(t, _)| t == text)
            .map_or(0, |(_, n)| *n)
    }

    fn mark(&mut self, text: &str) {
        let n = self.log().matches(text).count();
        self.marks.retain(|(t, _)| t != text);
        self.marks.push((text.to_owned(), n));
    }
}

#[test]
fn sighup_serves_added_hosts_drops_removed_ones_and_rejects_a_broken_config_keeping_leases() {
    if !needs_lab_programs() {
        return;
    }
    let Some(lab) = Lab::new("svcr") else {
        return;
    };
    let mac = client_mac(&lab);
    let serving = serving_sections(&lab);
    rewrite_config(&lab, "", &serving);
    let mut server = Service::start(&lab, BOTH_CAPS, &[]);
    let pid = server.pid();
    lab.in_client(
        "ip",
        &[
            "addr",
            "add",
            &format!("{CLIENT_ADDRESS}/64"),
            "dev",
            &lab.client_if,
            "nodad",
        ],
    );
    assert_eq!(curl(&lab, &script_url(&mac)).0, "404");

    // Added: DHCPv6 gives the host its configured address, HTTP its script.
    let node1 = host_entry(&mac, "node1", HOST_ADDRESS);
    rewrite_config(&lab, "", &format!("{serving}{node1}"));
    reload(&mut server, "reloaded: serving the new config");
    let (lease, _) = lab.dhclient(false);
    assert!(lease.contains(&format!("iaaddr {HOST_ADDRESS}")), "{lease}");
    let (code, body) = curl(&lab, &script_url(&mac));
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("node1"), "{body}");
    let leases = std::fs::read(lab.state_dir().join("leases.jsonl")).expect("lease log");
    assert!(!leases.is_empty());

    // Broken: rejected whole with `config check`'s messages; the old config serves on.
    let good = std::fs::read_to_string(lab.config_path()).expect("config");
    let broken = format!(
        "{good}\n[[hosts]]\nmac = \"52:54:00:00:00:02\"\nname = \"node2\"\naddress = \"2001:db8:99::2\"\n"
    )
    .replace("dns_servers = [\"2001:db8:1::53\"]", "dns_servers = [\"2401::beef:20::20\"]");
    std::fs::write(lab.config_path(), &broken).expect("write");
    reload(&mut server, "reload rejected");
    let check = Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(["config", "check"])
        .arg(lab.config_path())
        .output()
        .expect("config check");
    assert!(!check.status.success());
    let messages: Vec<String> = String::from_utf8_lossy(&check.stderr)
        .lines()
        .map(|l| l.trim_start_matches("error: ").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(messages.len() >= 3, "{messages:?}");
    let log = server.log();
    for message in &messages {
        assert!(
            log.contains(message.as_str()),
            "{message:?} not in the log:\n{log}"
        );
    }
    let (code, body) = curl(&lab, &script_url(&mac));
    assert_eq!(code, "200", "{body}");
    assert_eq!(
        std::fs::read(lab.state_dir().join("leases.jsonl")).expect("lease log"),
        leases,
        "a rejected reload touched the leases"
    );

    // A listener change needs a restart: named, and nothing applied.
    std::fs::write(
        lab.config_path(),
        good.replace(
            &format!("[{SERVER_ADDRESS}]:80"),
            &format!("[{SERVER_ADDRESS}]:8080"),
        ),
    )
    .expect("write");
    reload(&mut server, "reload rejected");
    assert!(
        server.log().contains("http.listen changed"),
        "{}",
        server.log()
    );

    // Removed: its script is no longer answered; its lease stays on record.
    rewrite_config(&lab, "", &serving);
    reload(&mut server, "reloaded: serving the new config");
    assert_eq!(curl(&lab, &script_url(&mac)).0, "404");
    assert_eq!(server.pid(), pid, "the server restarted");
    let after = std::fs::read(lab.state_dir().join("leases.jsonl")).expect("lease log");
    assert!(after.starts_with(&leases), "leases lost in a reload");
    server.stop();
}

#[test]
fn a_reload_every_second_under_perfdhcp_load_drops_no_exchange() {
    if !(needs_lab_programs() && need::program("perfdhcp", "kea-admin")) {
        return;
    }
    let Some(mut lab) = Lab::new("svcl") else {
        return;
    };
    let serving = serving_sections(&lab);
    rewrite_config(&lab, "", &serving);
    let mut server = Service::start(&lab, BOTH_CAPS, &[]);
    // 200 four-way exchanges/s for 6 s from 3,000 simulated clients; a reply later
    // than 3 s counts as lost (an fsync can stall that long on a busy machine).
    let client_if = lab.client_if.clone();
    let perf = lab.spawn_in_client(
        "perfdhcp",
        &[
            "-6", "-l", &client_if, "-r", "200", "-p", "6", "-R", "3000", "-d", "3", "-W",
            "3000000",
        ],
    );
    let mut n_reloads = 0;
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(900));
        let extra = format!(
            "{serving}{}",
            host_entry(
                &format!("52:54:00:00:01:{i:02x}"),
                &format!("load{i}"),
                &format!("2001:db8:1::5{i}")
            )
        );
        rewrite_config(&lab, "", &extra);
        reload(&mut server, "reloaded: serving the new config");
        n_reloads += 1;
    }
    let out = lab.wait_child(perf);
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers = |label: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.strip_prefix(label))
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    let received = numbers("received packets:");
    assert_eq!(n_reloads, 5);
    assert_eq!(numbers("drops:"), vec![0, 0], "{text}");
    assert_eq!(received.len(), 2, "{text}");
    assert!(
        received[1] >= 800,
        "too few exchanges to say anything:\n{text}"
    );
    server.stop();
}

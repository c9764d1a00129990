//! A two-namespace lab for the DHCPv6/RA integration tests: a server namespace and a
//! client namespace joined by a veth pair, built on `sixboot_lab::netns` (locked per name,
//! leftovers removed first, removed in `Drop`). Every name starts with `sbd` so tests of
//! other parts running on the same machine never collide with these.

#![allow(dead_code)]

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sixboot_lab::need;
use sixboot_lab::netns;

pub fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

pub const SERVER_ADDRESS: &str = "2001:db8:1::1";
/// The client veth's MAC, and its EUI-64 link-local address.
pub const CLIENT_MAC: &str = "02:5b:d0:00:00:01";
pub const CLIENT_LINK_LOCAL: &str = "fe80::5b:d0ff:fe00:1";

/// The server and client namespaces and the link between them.
pub struct Lab {
    pub tag: String,
    pub server_ns: String,
    pub client_ns: String,
    /// Declared after the children so they are killed before the namespaces go.
    namespaces: Option<netns::Pair>,
    pub server_if: String,
    pub client_if: String,
    pub dir: tempfile::TempDir,
    server: Option<Child>,
    n_starts: usize,
    children: Vec<Child>,
}

impl Lab {
    /// `tag` is a few letters unique to the test (names must fit in 15 bytes). `None`
    /// (after a recorded skip, or a failure under CI) when namespaces cannot be made.
    pub fn new(tag: &str) -> Option<Lab> {
        if !need::root() {
            return None;
        }
        let (server_ns, client_ns) = (format!("sbd-{tag}-s"), format!("sbd-{tag}-c"));
        let (server_if, client_if) = (format!("sbd{tag}s"), format!("sbd{tag}c"));
        assert!(server_if.len() <= 15, "interface name too long");
        // The client's fixed MAC gives it a known link-local address: perfdhcp -A 1 writes
        // it as its Relay-Forw link-address, which the config maps to the subnet.
        let pair = netns::Pair::create(
            (&server_ns, &server_if),
            (&client_ns, &client_if),
            Some(CLIENT_MAC),
            &format!("{SERVER_ADDRESS}/64"),
        )
        .unwrap_or_else(|e| panic!("namespaces: {e}"));
        Some(Lab {
            tag: tag.to_owned(),
            server_ns,
            client_ns,
            namespaces: Some(pair),
            server_if,
            client_if,
            dir: tempfile::Builder::new()
                .prefix("sbd-test")
                .tempdir()
                .expect("temp dir"),
            server: None,
            n_starts: 0,
            children: Vec::new(),
        })
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sixboot.toml")
    }

    /// A config serving the lab link; `extra` is appended (e.g. `[ra]` settings).
    pub fn write_config(&self, ra: &str, pool_end: &str, extra: &str) -> PathBuf {
        let text = format!(
            r#"
[server]
interfaces = ["{ifname}"]
state_dir = "{state}"
{ra}
[dhcp]
dns_servers = ["2001:db8:1::53"]
domain_search = ["lab.example"]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "{pool_end}"
interface = "{ifname}"
# perfdhcp -A 1 relays with its own link-local address as link-address.
[[dhcp.subnets.relays]]
link_address = "{CLIENT_LINK_LOCAL}"
[boot]
ipxe_script_url = "http://[{SERVER_ADDRESS}]/ipxe/ipxe-{{mac}}.cfg"
{extra}
"#,
            ifname = self.server_if,
            state = self.state_dir().display(),
        );
        let path = self.config_path();
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts `sixboot boot-server` in the server namespace and waits until it serves.
    pub fn start_server(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns])
            .arg(env!("CARGO_BIN_EXE_sixboot"))
            .args(["boot-server", "--config"])
            .arg(self.config_path())
            .env("RUST_LOG", "info,sixboot::server::ra=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sixboot boot-server");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let log = self.server_log();
            let starts = log.matches("DHCPv6 ready").count();
            if starts > self.n_starts {
                self.n_starts = starts;
                return;
            }
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("boot-server exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("boot-server did not start:\n{}", self.server_log());
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server as a crash would (SIGKILL), no shutdown path.
    pub fn crash_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and checks that it exits cleanly and quickly.
    pub fn stop_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    assert!(status.success(), "boot-server exited with {status}");
                    return;
                }
                assert!(Instant::now() < deadline, "boot-server ignored SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn server_alive(&mut self) -> bool {
        self.server
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Runs a command in the client namespace and returns its output.
    pub fn in_client(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client_ns, program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// Spawns a long-running command in the client namespace, killed in `Drop`.
    pub fn spawn_in_client(&mut self, program: &str, args: &[&str]) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.client_ns, program])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        self.children.push(child);
        self.children.len() - 1
    }

    pub fn wait_child(&mut self, index: usize) -> std::process::Output {
        let child = self.children.remove(index);
        child.wait_with_output().expect("wait")
    }

    /// Runs `dhclient -6 -1` (or `-S` for stateless) once in the client namespace
    /// with a script that records the options it got; returns (lease file, env dump).
    pub fn dhclient(&self, stateless: bool) -> (String, String) {
        let dir = self.dir.path();
        let conf = dir.join("dhclient.conf");
        std::fs::write(
            &conf,
            "option dhcp6.bootfile-url code 59 = string;\n\
             request dhcp6.name-servers, dhcp6.domain-search, dhcp6.bootfile-url;\n",
        )
        .expect("dhclient.conf");
        let env_file = dir.join("dhclient.env");
        let script = dir.join("dhclient-script");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nenv >> '{}'\n", env_file.display()),
        )
        .expect("script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let lease = dir.join("dhclient.leases");
        let pid = dir.join("dhclient.pid");
        let mut args = vec!["-6", "-1"];
        if stateless {
            args.push("-S");
        }
        let conf_s = conf.display().to_string();
        let lease_s = lease.display().to_string();
        let pid_s = pid.display().to_string();
        let script_s = script.display().to_string();
        args.extend([
            "-cf",
            &conf_s,
            "-lf",
            &lease_s,
            "-pf",
            &pid_s,
            "-sf",
            &script_s,
            &self.client_if,
        ]);
        let out = Command::new("timeout")
            .args(["20", "ip", "netns", "exec", &self.client_ns, "dhclient"])
            .args(&args)
            .output()
            .expect("dhclient");
        kill_pid_file(&pid);
        assert!(
            out.status.success(),
            "dhclient failed: {}\n{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.server_log()
        );
        (
            std::fs::read_to_string(&lease).unwrap_or_default(),
            std::fs::read_to_string(&env_file).unwrap_or_default(),
        )
    }

    /// Runs `f` on a thread that has entered the client namespace (setns affects only
    /// the calling thread), so the test can send raw datagrams from inside it.
    pub fn in_client_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let ns = PathBuf::from(format!("/run/netns/{}", self.client_ns));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&ns).expect("open netns");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    pub fn client_ifindex(&self) -> u32 {
        let out = self.in_client(
            "cat",
            &[&format!("/sys/class/net/{}/ifindex", self.client_if)],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("ifindex")
    }
}

fn kill_pid_file(path: &Path) {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.crash_server();
        kill_pid_file(&self.dir.path().join("dhclient.pid"));
        // The namespaces go last (and kill anything still inside).
        self.namespaces.take();
    }
}

/// A UDP socket on the client's port 546 inside the client namespace, for hand-made
/// DHCPv6 traffic.
pub fn client_socket(ifname: &str) -> UdpSocket {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .expect("socket");
    socket.set_reuse_address(true).expect("reuse");
    socket
        .bind_device(Some(ifname.as_bytes()))
        .expect("bind device");
    socket
        .bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0).into())
        .expect("bind 546");
    socket.into()
}

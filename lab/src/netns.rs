//! Network namespaces for every test, benchmark and lab that sends RAs, DHCP or BMC traffic.
//!
//! [`Namespace`] is the one primitive: it takes a per-name lock (so a concurrent run that
//! uses the same name waits instead of having its namespace deleted under it as a
//! "leftover"), removes a leftover of an earlier crashed run (and the processes inside),
//! creates the namespace, waits until it can be entered (a concurrent `ip netns add`
//! elsewhere can leave a new namespace's bind mount unusable for a moment; it is made
//! afresh), brings `lo` up, and removes it all in `Drop`. Like dora's `DhcpServerEnv`.
//!
//! On top: [`veth`] joins two namespaces, [`Pair`] is the DHCPv6 tests' and benchmarks'
//! server/client pair over one veth link, and [`NetEnv`] is the QEMU lab's link: namespace
//! `sbq-<tag>`, bridge `sbq-<tag>-br`, tap `sbq-<tag>-tap`, the server's address added
//! with `nodad` and duplicate address detection off on the bridge (so servers can bind at
//! once), no IPv4 address anywhere.

use std::process::Command;
use std::time::Duration;

use super::lock::{lock, FileLock};
use super::{run, LabError, Result, SERVER_ADDRESS};

/// A network namespace that this process made and removes when dropped.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    /// Whether `ip netns add` succeeded: only then does Drop remove it.
    created: bool,
    _lock: FileLock,
}

impl Namespace {
    /// Creates namespace `name` (at most 15 bytes is safe for derived interface names),
    /// with `lo` up. Fails with [`LabError::NotRoot`] when namespaces cannot be made.
    pub fn create(name: &str) -> Result<Namespace> {
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(LabError::Missing(format!(
                "namespace name {name:?}: use 1-32 letters, digits, '-' or '_'"
            )));
        }
        let held = lock(&format!("ns-{name}"))?;
        let mut namespace = Namespace {
            name: name.to_owned(),
            created: false,
            _lock: held,
        };
        namespace.remove_leftover();
        if let Err(err) = run("ip", &["netns", "add", name]) {
            // Nothing was made: Drop has nothing to remove.
            return Err(match err {
                LabError::Command {
                    command, stderr, ..
                } => LabError::NotRoot(format!("`{command}`: {stderr}")),
                other => other,
            });
        }
        // From here on, Drop cleans up whatever is left half done.
        namespace.created = true;
        let mut attempt = 1u64;
        loop {
            match namespace.run("ip", &["link", "set", "lo", "up"]) {
                Ok(_) => return Ok(namespace),
                Err(err)
                    if attempt < 4 && err.to_string().contains("setting the network namespace") =>
                {
                    eprintln!("retrying namespace {name} after: {err}");
                    let _ = run("ip", &["netns", "del", name]);
                    std::thread::sleep(Duration::from_millis(200 * attempt));
                    run("ip", &["netns", "add", name])?;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The namespace's name, for `ip -n` and `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Sets one sysctl (`net.ipv6.conf.X.Y=V`) inside the namespace.
    pub fn sysctl(&self, setting: &str) -> Result<String> {
        self.run("sysctl", &["-qw", setting])
    }

    /// Runs `program ARGS` inside the namespace to completion; non-zero exit is an error.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NS program`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Moves the calling thread into the namespace (for sockets a test opens itself).
    /// The thread stays there: use a thread of its own.
    pub fn enter_this_thread(&self) -> Result<()> {
        let path = format!("/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).map_err(super::io_error(format!(
            "cannot open {path} to enter namespace"
        )))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
            LabError::Io {
                what: format!("setns into {}", self.name),
                source: std::io::Error::from(errno),
            }
        })
    }

    /// The link-local address of `interface`, once the kernel has assigned it.
    pub fn link_local(&self, interface: &str) -> Option<String> {
        let out = self
            .ip(&["-6", "addr", "show", "dev", interface, "scope", "link"])
            .ok()?;
        out.split_whitespace()
            .skip_while(|word| *word != "inet6")
            .nth(1)
            .map(|cidr| cidr.split('/').next().unwrap_or(cidr).to_string())
    }

    /// Waits up to `limit` for `interface`'s link-local address (DAD done).
    pub fn wait_link_local(&self, interface: &str, limit: Duration) -> Result<String> {
        let start = std::time::Instant::now();
        loop {
            let out = self
                .ip(&["-6", "addr", "show", "dev", interface, "scope", "link"])
                .unwrap_or_default();
            if out.contains("inet6") && !out.contains("tentative") {
                if let Some(address) = self.link_local(interface) {
                    return Ok(address);
                }
            }
            if start.elapsed() > limit {
                return Err(LabError::Missing(format!(
                    "{interface} in {} has no usable link-local address after {limit:?}",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exists(&self) -> bool {
        run("ip", &["netns", "list"])
            .map(|list| {
                list.lines()
                    .any(|line| line.split_whitespace().next() == Some(self.name.as_str()))
            })
            .unwrap_or(false)
    }

    fn remove_leftover(&self) {
        if self.exists() {
            eprintln!("removing leftover namespace {}", self.name);
            self.kill_processes_inside();
            let _ = run("ip", &["netns", "del", &self.name]);
        }
    }

    /// Kills every process inside (servers, clients and VMs a test left running).
    pub fn kill_processes_inside(&self) {
        if let Ok(pids) = run("ip", &["netns", "pids", &self.name]) {
            for pid in pids.split_whitespace() {
                let _ = run("kill", &["-KILL", pid]);
            }
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if !self.created {
            return;
        }
        self.kill_processes_inside();
        if let Err(err) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("warning: cannot remove namespace {}: {err}", self.name);
        }
    }
}

/// Joins two namespaces with a veth pair (`a_if` in `a`, `b_if` in `b`), both ends up.
/// Interface names are at most 15 bytes.
pub fn veth(a: &Namespace, a_if: &str, b: &Namespace, b_if: &str) -> Result<()> {
    for name in [a_if, b_if] {
        if name.is_empty() || name.len() > 15 {
            return Err(LabError::Missing(format!(
                "interface name {name:?} must be 1-15 bytes"
            )));
        }
    }
    run(
        "ip",
        &[
            "link",
            "add",
            a_if,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.name(),
        ],
    )?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// A server and a client namespace joined by a veth pair: the DHCPv6 tests' and
/// benchmarks' link (perfdhcp or dhclient on the client side, the server under test on
/// the other). Both namespaces are removed when dropped.
#[derive(Debug)]
pub struct Pair {
    pub server: Namespace,
    pub client: Namespace,
    pub server_if: String,
    pub client_if: String,
}

impl Pair {
    /// Creates namespaces `server_ns` and `client_ns`, joins them with `server_if` ↔
    /// `client_if`, gives the client end `client_mac` if one is given (so its EUI-64
    /// link-local address, which perfdhcp `-A 1` writes as the relay's link-address, is
    /// known), adds
    /// `server_address` (with its prefix length, `nodad`) to the server end, and waits
    /// until both ends have a usable link-local address.
    pub fn create(
        (server_ns, server_if): (&str, &str),
        (client_ns, client_if): (&str, &str),
        client_mac: Option<&str>,
        server_address: &str,
    ) -> Result<Pair> {
        let server = Namespace::create(server_ns)?;
        let client = Namespace::create(client_ns)?;
        veth(&server, server_if, &client, client_if)?;
        if let Some(mac) = client_mac {
            // Set while the link is down, so the link-local address is made from it.
            client.ip(&["link", "set", client_if, "down"])?;
            client.ip(&["link", "set", client_if, "address", mac])?;
            client.ip(&["link", "set", client_if, "up"])?;
        }
        server.ip(&["addr", "add", server_address, "dev", server_if, "nodad"])?;
        for (ns, ifname) in [(&server, server_if), (&client, client_if)] {
            ns.wait_link_local(ifname, Duration::from_secs(10))?;
        }
        Ok(Pair {
            server,
            client,
            server_if: server_if.to_owned(),
            client_if: client_if.to_owned(),
        })
    }
}

/// A namespace, bridge and tap, removed when dropped: the QEMU lab's link.
#[derive(Debug)]
pub struct NetEnv {
    pub namespace: String,
    pub bridge: String,
    pub tap: String,
    ns: Namespace,
}

impl NetEnv {
    /// Creates the link for `tag` (at most 6 characters, so that names fit in 15).
    pub fn create(tag: &str) -> Result<NetEnv> {
        if tag.is_empty() || tag.len() > 6 || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LabError::Missing(format!(
                "lab tag {tag:?} must be 1-6 letters or digits (interface names max 15 chars)"
            )));
        }
        let ns = Namespace::create(&format!("sbq-{tag}"))?;
        let env = NetEnv {
            namespace: ns.name().to_owned(),
            bridge: format!("sbq-{tag}-br"),
            tap: format!("sbq-{tag}-tap"),
            ns,
        };
        env.setup()?;
        Ok(env)
    }

    fn setup(&self) -> Result<()> {
        let (br, tap) = (self.bridge.as_str(), self.tap.as_str());
        self.ip(&[
            "link",
            "add",
            br,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])?;
        self.ns
            .sysctl(&format!("net.ipv6.conf.{br}.accept_dad=0"))?;
        self.ns.sysctl(&format!("net.ipv6.conf.{br}.accept_ra=0"))?;
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])
            .map_err(|err| LabError::NotRoot(format!("cannot create tap {tap}: {err}")))?;
        self.ns
            .sysctl(&format!("net.ipv6.conf.{tap}.disable_ipv6=1"))?;
        self.ip(&["link", "set", tap, "master", br])?;
        self.ip(&["link", "set", tap, "up"])?;
        self.ip(&["link", "set", br, "up"])?;
        let address = format!("{SERVER_ADDRESS}/64");
        self.ip(&["-6", "addr", "add", &address, "dev", br, "nodad"])?;
        Ok(())
    }

    /// The namespace itself (to run commands in it, or enter it from a thread).
    pub fn ns(&self) -> &Namespace {
        &self.ns
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        self.ns.ip(args)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NS program`).
    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    /// The bridge's link-local address, once the kernel has assigned it.
    pub fn bridge_link_local(&self) -> Option<String> {
        self.ns.link_local(&self.bridge)
    }
}

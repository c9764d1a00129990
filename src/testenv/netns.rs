//! One lab link: a network namespace holding a bridge and a tap for QEMU, IPv6 only.
//!
//! Names are `sbq-<tag>` (namespace), `sbq-<tag>-br` (bridge) and `sbq-<tag>-tap` (tap), so
//! several labs (and other helpers' tests) can run side by side. The server address is added
//! with `nodad` and duplicate address detection is off on the bridge, so servers can bind at
//! once; no IPv4 address is ever configured. Like dora's `DhcpServerEnv`, the namespace is
//! removed in `Drop`, and a leftover namespace of the same name (an earlier run that crashed)
//! is removed, with the processes still inside it, before a new one is made.

use std::process::Command;

use super::{run, LabError, Result, SERVER_ADDRESS};

/// A namespace, bridge and tap, removed when dropped.
#[derive(Debug)]
pub struct NetEnv {
    pub namespace: String,
    pub bridge: String,
    pub tap: String,
}

impl NetEnv {
    /// Creates the link for `tag` (at most 6 characters, so that names fit in 15).
    pub fn create(tag: &str) -> Result<NetEnv> {
        if tag.is_empty() || tag.len() > 6 || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LabError::Missing(format!(
                "lab tag {tag:?} must be 1-6 letters or digits (interface names max 15 chars)"
            )));
        }
        let env = NetEnv {
            namespace: format!("sbq-{tag}"),
            bridge: format!("sbq-{tag}-br"),
            tap: format!("sbq-{tag}-tap"),
        };
        env.remove_leftovers();
        if let Err(err) = run("ip", &["netns", "add", &env.namespace]) {
            // Nothing was made: there is nothing for Drop to remove.
            std::mem::forget(env);
            return Err(match err {
                LabError::Command {
                    command, stderr, ..
                } => LabError::NotRoot(format!("`{command}`: {stderr}")),
                other => other,
            });
        }
        // From here on, Drop cleans up whatever the next steps leave half done.
        let mut attempt = 1;
        loop {
            match env.setup() {
                Ok(()) => return Ok(env),
                // `ip netns add` by other tests at the same moment can leave the new
                // namespace's bind mount unusable for a moment ("setting the network
                // namespace … failed: Invalid argument"): make it afresh.
                Err(err)
                    if attempt < 3 && err.to_string().contains("setting the network namespace") =>
                {
                    eprintln!("retrying namespace {} after: {err}", env.namespace);
                    env.kill_processes_inside();
                    let _ = run("ip", &["netns", "del", &env.namespace]);
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
                    run("ip", &["netns", "add", &env.namespace])?;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn setup(&self) -> Result<()> {
        let (br, tap) = (self.bridge.as_str(), self.tap.as_str());
        self.ip(&["link", "set", "lo", "up"])?;
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
        self.sysctl(&format!("net.ipv6.conf.{br}.accept_dad=0"))?;
        self.sysctl(&format!("net.ipv6.conf.{br}.accept_ra=0"))?;
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])
            .map_err(|err| LabError::NotRoot(format!("cannot create tap {tap}: {err}")))?;
        self.sysctl(&format!("net.ipv6.conf.{tap}.disable_ipv6=1"))?;
        self.ip(&["link", "set", tap, "master", br])?;
        self.ip(&["link", "set", tap, "up"])?;
        self.ip(&["link", "set", br, "up"])?;
        let address = format!("{SERVER_ADDRESS}/64");
        self.ip(&["-6", "addr", "add", &address, "dev", br, "nodad"])?;
        Ok(())
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.namespace.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    fn sysctl(&self, setting: &str) -> Result<String> {
        run(
            "ip",
            &["netns", "exec", &self.namespace, "sysctl", "-qw", setting],
        )
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NS program`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespace, program]);
        command
    }

    /// The bridge's link-local address, once the kernel has assigned it.
    pub fn bridge_link_local(&self) -> Option<String> {
        let out = self
            .ip(&["-6", "addr", "show", "dev", &self.bridge, "scope", "link"])
            .ok()?;
        out.split_whitespace()
            .skip_while(|word| *word != "inet6")
            .nth(1)
            .map(|cidr| cidr.split('/').next().unwrap_or(cidr).to_string())
    }

    fn remove_leftovers(&self) {
        let exists = run("ip", &["netns", "list"])
            .map(|list| {
                list.lines()
                    .any(|line| line.split_whitespace().next() == Some(self.namespace.as_str()))
            })
            .unwrap_or(false);
        if exists {
            eprintln!("removing leftover namespace {}", self.namespace);
            self.kill_processes_inside();
            let _ = run("ip", &["netns", "del", &self.namespace]);
        }
    }

    /// Leftover servers and VMs of an earlier run of this same lab hold the namespace.
    fn kill_processes_inside(&self) {
        if let Ok(pids) = run("ip", &["netns", "pids", &self.namespace]) {
            for pid in pids.split_whitespace() {
                let _ = run("kill", &["-KILL", pid]);
            }
        }
    }
}

impl Drop for NetEnv {
    fn drop(&mut self) {
        self.kill_processes_inside();
        if let Err(err) = run("ip", &["netns", "del", &self.namespace]) {
            eprintln!("warning: cannot remove namespace {}: {err}", self.namespace);
        }
    }
}

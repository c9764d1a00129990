//! What each listener of a boot-server config needs from the kernel, as Linux
//! capabilities, so that `sixboot boot-server` runs as an unprivileged user with only
//! those and says which one is missing for which listener before it binds anything.
//!
//! Checked on Linux 6.18 as an unprivileged user (see `ARCHITECTURE.md`):
//! - UDP 547 / 69 and TCP 80 / 443: ports below `net.ipv4.ip_unprivileged_port_start`
//!   (1024 by default, per network namespace, IPv6 included) need
//!   `CAP_NET_BIND_SERVICE` (`capabilities(7)`); above it, nothing.
//! - Router advertisements: a raw ICMPv6 socket needs `CAP_NET_RAW` (`raw(7)`); the RA
//!   socket's `SO_BINDTODEVICE`, hop limits and joining ff02::2 then need nothing more.
//! - `SO_BINDTODEVICE` on a socket not yet bound to a device, `IPV6_RECVPKTINFO` and
//!   joining ff02::1:2 need no capability (since Linux 5.7 for `SO_BINDTODEVICE`).
//! - `SO_RCVBUFFORCE` needs `CAP_NET_ADMIN`, which the server is not given: it falls
//!   back to `SO_RCVBUF`, capped at twice `net.core.rmem_max`.
//!
//! Pure: the caller reads the effective set (`/proc/self/status` `CapEff`) and the
//! port limit, and decides what to do with the answer.

use std::fmt;

use crate::config::Config;

/// The two capabilities a boot server may need (`linux/capability.h` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Bind ports below `ip_unprivileged_port_start` (bit 10).
    NetBindService,
    /// Open raw sockets (bit 13).
    NetRaw,
}

impl Capability {
    /// Every capability the boot server can need, in a fixed order.
    pub const ALL: [Capability; 2] = [Capability::NetBindService, Capability::NetRaw];

    /// The bit in a capability set (`CAP_NET_BIND_SERVICE` = 10, `CAP_NET_RAW` = 13).
    pub fn bit(self) -> u32 {
        match self {
            Capability::NetBindService => 10,
            Capability::NetRaw => 13,
        }
    }

    /// The name systemd and `capabilities(7)` use, e.g. `CAP_NET_RAW`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetBindService => "CAP_NET_BIND_SERVICE",
            Capability::NetRaw => "CAP_NET_RAW",
        }
    }

    /// The name `setpriv --ambient-caps` takes, e.g. `net_raw`.
    pub fn setpriv_name(self) -> &'static str {
        match self {
            Capability::NetBindService => "net_bind_service",
            Capability::NetRaw => "net_raw",
        }
    }

    /// Whether `set` (a capability bit mask such as `CapEff`) holds this capability.
    pub fn is_in(self, set: u64) -> bool {
        set & (1u64 << self.bit()) != 0
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One listener and the capability it cannot start without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// What the operator would call it, e.g. `router advertisements on br-boot`.
    pub listener: String,
    pub capability: Capability,
    /// Why, in a few words: `a raw ICMPv6 socket`, `UDP port 547 is below 1024`.
    pub why: String,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} need{} {} ({})",
            self.listener,
            if self.listener.starts_with("router advertisements") {
                ""
            } else {
                "s"
            },
            self.capability,
            self.why
        )
    }
}

/// Everything `config` will bind and the capability each needs, given the network
/// namespace's `net.ipv4.ip_unprivileged_port_start` (1024 unless changed).
pub fn needs(config: &Config, unprivileged_port_start: u32) -> Vec<Need> {
    let mut out = Vec::new();
    let mut port = |listener: String, protocol: &str, port: u16| {
        if u32::from(port) < unprivileged_port_start {
            out.push(Need {
                listener,
                capability: Capability::NetBindService,
                why: format!("{protocol} port {port} is below {unprivileged_port_start}"),
            });
        }
    };
    let dhcp_port = dhcproto::v6::SERVER_PORT;
    if config.interfaces.is_empty() {
        port("DHCPv6 on all interfaces".into(), "UDP", dhcp_port);
    }
    for interface in &config.interfaces {
        port(format!("DHCPv6 on {interface}"), "UDP", dhcp_port);
    }
    for address in &config.http.listen {
        port(format!("HTTP on {address}"), "TCP", address.port());
    }
    for address in &config.http.tls_listen {
        port(format!("HTTPS on {address}"), "TCP", address.port());
    }
    if let Some(tftp) = &config.tftp {
        for address in &tftp.listen {
            port(format!("TFTP on {address}"), "UDP", address.port());
        }
    }
    if config.ra.enabled {
        for interface in &config.interfaces {
            out.push(Need {
                listener: format!("router advertisements on {interface}"),
                capability: Capability::NetRaw,
                why: "a raw ICMPv6 socket".into(),
            });
        }
    }
    out
}

/// The needs that `effective` (a capability bit mask, `CapEff`) does not cover.
pub fn missing(needs: &[Need], effective: u64) -> Vec<Need> {
    needs
        .iter()
        .filter(|need| !need.capability.is_in(effective))
        .cloned()
        .collect()
}

/// The start-up error for `missing` (non-empty): one line per listener, then how to
/// give the capabilities without root, or turn the listeners off.
pub fn explain_missing(missing: &[Need]) -> String {
    let mut capabilities: Vec<Capability> = missing.iter().map(|n| n.capability).collect();
    capabilities.sort();
    capabilities.dedup();
    let mut text = String::from("this process lacks capabilities its listeners need:\n");
    for need in missing {
        text.push_str(&format!("  {need}\n"));
    }
    let systemd: Vec<&str> = capabilities.iter().map(|c| c.name()).collect();
    let setpriv: Vec<String> = capabilities
        .iter()
        .map(|c| format!("+{}", c.setpriv_name()))
        .collect();
    let setpriv = setpriv.join(",");
    text.push_str(&format!(
        "Give the process these capabilities (root is not needed): the packaged systemd unit \
         does (AmbientCapabilities={}); by hand, `setpriv --reuid USER --regid GROUP \
         --init-groups --inh-caps {setpriv} --ambient-caps {setpriv} sixboot boot-server …`. \
         Or turn the listener off in the config",
        systemd.join(" "),
    ));
    if missing.iter().any(|n| n.capability == Capability::NetRaw) {
        text.push_str(" ([ra] enabled = false when another router sends RAs with M/O)");
    }
    text.push('.');
    text
}

/// Parses the `CapEff:` (or any `Cap*:`) line of `/proc/<pid>/status`: 16 hex digits.
pub fn parse_status_capabilities(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        u64::from_str_radix(value.trim(), 16).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(std::path::Path::new("test.toml"), text).expect("valid config")
    }

    const LAB: &str = r#"
[server]
interfaces = ["br-boot"]
state_dir = "/tmp/x"
[ra]
enabled = true
managed = true
[dhcp]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "2001:db8:1::1ff"
interface = "br-boot"
[http]
listen = ["[2001:db8:1::1]:80", "[::1]:8080"]
[tftp]
root = "/tmp"
"#;

    #[test]
    fn every_privileged_listener_names_its_capability() {
        let needs = needs(&config(LAB), 1024);
        let lines: Vec<String> = needs.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            lines,
            [
                "DHCPv6 on br-boot needs CAP_NET_BIND_SERVICE (UDP port 547 is below 1024)",
                "HTTP on [2001:db8:1::1]:80 needs CAP_NET_BIND_SERVICE (TCP port 80 is below 1024)",
                "TFTP on [::]:69 needs CAP_NET_BIND_SERVICE (UDP port 69 is below 1024)",
                "router advertisements on br-boot need CAP_NET_RAW (a raw ICMPv6 socket)",
            ]
        );
    }

    #[test]
    fn a_lowered_port_limit_leaves_only_the_raw_socket() {
        let needs = needs(&config(LAB), 0);
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].capability, Capability::NetRaw);
    }

    #[test]
    fn missing_keeps_only_what_the_set_lacks_and_says_how_to_fix_it() {
        let needs = needs(&config(LAB), 1024);
        let bind_only = 1u64 << 10;
        let missing = missing(&needs, bind_only);
        assert_eq!(missing.len(), 1);
        let text = explain_missing(&missing);
        assert!(
            text.contains("router advertisements on br-boot need CAP_NET_RAW"),
            "{text}"
        );
        assert!(text.contains("--ambient-caps +net_raw"), "{text}");
        assert!(text.contains("[ra] enabled = false"), "{text}");
        assert!(super::missing(&needs, (1 << 10) | (1 << 13)).is_empty());
    }

    #[test]
    fn reads_the_effective_set_from_proc_status() {
        let status = "Name:\tsixboot\nCapInh:\t0000000000000000\nCapEff:\t0000000000002400\n";
        assert_eq!(
            parse_status_capabilities(status, "CapEff"),
            Some((1 << 10) | (1 << 13))
        );
        assert_eq!(parse_status_capabilities(status, "CapAmb"), None);
    }
}

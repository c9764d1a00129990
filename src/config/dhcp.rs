//! `[dhcp]`: lifetimes, DNS, unknown hosts and the subnets addresses come from
//! (RFC 8415).

use core::net::Ipv6Addr;

use toml::Spanned;

use super::raw::{RawDhcp, RawRelay};
use super::validator::Validator;
use super::Prefix;

/// What the DHCPv6 server does for a host that is not in `[[hosts]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownHosts {
    /// Give it an address from the pool (and a script URL that will 404).
    Pool,
    /// Stay silent, so that its firmware gives up and boots from disk.
    Ignore,
}

/// DHCPv6 settings (RFC 8415).
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    pub preferred_lifetime_secs: u32,
    pub valid_lifetime_secs: u32,
    pub t1_secs: u32,
    pub t2_secs: u32,
    pub dns_servers: Vec<Ipv6Addr>,
    pub domain_search: Vec<String>,
    pub unknown_hosts: UnknownHosts,
    pub rapid_commit: bool,
    pub subnets: Vec<Subnet>,
}

/// A prefix that DHCPv6 hands addresses out of.
#[derive(Debug, Clone)]
pub struct Subnet {
    pub prefix: Prefix,
    /// Inclusive pool range; `None` when only fixed host addresses are served.
    pub pool: Option<(Ipv6Addr, Ipv6Addr)>,
    /// The interface that serves this subnet directly (messages not relayed).
    pub interface: Option<String>,
    /// Relay layers that come from this subnet's link (`[[dhcp.subnets.relays]]`).
    pub relays: Vec<RelayMatch>,
}

/// Ties a relay to a subnet: a Relay-Forw layer (RFC 8415 section 9.1) matches when
/// every field that is `Some` equals the layer's. At least one field is `Some`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayMatch {
    /// The layer's link-address field, as the relay writes it: a global address, a
    /// link-local one (ISC dhcrelay in some setups, perfdhcp -A) or `::` (an LDRA).
    pub link_address: Option<Ipv6Addr>,
    /// The layer's Interface-ID option (18), byte for byte.
    pub interface_id: Option<Vec<u8>>,
}

impl RelayMatch {
    /// Whether a relay layer with this link-address and Interface-ID matches.
    pub fn matches(&self, link_address: &Ipv6Addr, interface_id: Option<&[u8]>) -> bool {
        self.link_address.map_or(true, |a| a == *link_address)
            && self
                .interface_id
                .as_deref()
                .map_or(true, |id| Some(id) == interface_id)
    }
}

/// Validates `[dhcp]` and its `[[dhcp.subnets]]`.
pub(super) fn validate(v: &mut Validator<'_>, d: &RawDhcp) -> DhcpConfig {
    let (preferred, valid) = v.lifetimes(
        d.preferred_lifetime_secs.as_ref(),
        d.valid_lifetime_secs.as_ref(),
        (3_600, 7_200),
        ("dhcp.preferred_lifetime_secs", "dhcp.valid_lifetime_secs"),
    );
    let (t1, t2) = v.lifetimes(
        d.t1_secs.as_ref(),
        d.t2_secs.as_ref(),
        (preferred / 2, preferred * 4 / 5),
        ("dhcp.t1_secs", "dhcp.t2_secs"),
    );
    if t2 > preferred {
        let span = d.t2_secs.as_ref().map_or(0..0, |s| s.span());
        v.error(
            span,
            "dhcp.t2_secs",
            format!("T2 ({t2}) must not be greater than the preferred lifetime ({preferred})"),
        );
    }
    let dns_servers = d
        .dns_servers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| v.address(a, &format!("dhcp.dns_servers[{i}]")))
        .collect();
    let mut domain_search = Vec::new();
    for (i, name) in d.domain_search.iter().enumerate() {
        if is_domain_name(name.get_ref()) {
            domain_search.push(name.get_ref().clone());
        } else {
            v.error(
                name.span(),
                &format!("dhcp.domain_search[{i}]"),
                format!("`{}` is not a domain name", name.get_ref()),
            );
        }
    }
    let unknown_hosts = match d.unknown_hosts.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("pool") => UnknownHosts::Pool,
        Some("ignore") => UnknownHosts::Ignore,
        Some(other) => {
            let span = d.unknown_hosts.as_ref().map_or(0..0, |s| s.span());
            v.error(
                span,
                "dhcp.unknown_hosts",
                format!("`{other}` is not one of \"pool\" or \"ignore\""),
            );
            UnknownHosts::Pool
        }
    };
    let mut subnets: Vec<Subnet> = Vec::new();
    for (i, s) in d.subnets.iter().enumerate() {
        let field = format!("dhcp.subnets[{i}]");
        let Some(prefix) = v.prefix(&s.prefix, &format!("{field}.prefix")) else {
            continue;
        };
        let pool = match (&s.pool_start, &s.pool_end) {
            (None, None) => None,
            (Some(start), Some(end)) => {
                let a = v.address(start, &format!("{field}.pool_start"));
                let b = v.address(end, &format!("{field}.pool_end"));
                match (a, b) {
                    (Some(a), Some(b)) => {
                        for (addr, text, name) in [(a, start, "pool_start"), (b, end, "pool_end")] {
                            if !prefix.contains(&addr) {
                                v.error(
                                    text.span(),
                                    &format!("{field}.{name}"),
                                    format!("{addr} is outside the subnet's prefix {prefix}"),
                                );
                            }
                        }
                        if a > b {
                            v.error(
                                start.span(),
                                &format!("{field}.pool_start"),
                                format!("pool start {a} is after pool end {b}"),
                            );
                        }
                        Some((a, b))
                    }
                    _ => None,
                }
            }
            _ => {
                v.error(
                    s.prefix.span(),
                    &field,
                    "give both pool_start and pool_end, or neither".into(),
                );
                None
            }
        };
        if let Some(other) = subnets
            .iter()
            .find(|other| other.prefix.contains(&prefix.address))
        {
            let message = format!("prefix {prefix} overlaps subnet {}", other.prefix);
            v.error(s.prefix.span(), &format!("{field}.prefix"), message);
        }
        let relays = relays(v, &field, &s.relays, &subnets);
        subnets.push(Subnet {
            prefix,
            pool,
            interface: s.interface.as_ref().map(|i| i.get_ref().clone()),
            relays,
        });
    }
    DhcpConfig {
        preferred_lifetime_secs: preferred,
        valid_lifetime_secs: valid,
        t1_secs: t1,
        t2_secs: t2,
        dns_servers,
        domain_search,
        unknown_hosts,
        rapid_commit: d.rapid_commit.unwrap_or(true),
        subnets,
    }
}

/// Validates one subnet's `relays`: each entry names a link-address, an Interface-ID
/// or both, and no entry matches the same relays as an entry of an earlier subnet.
fn relays(
    v: &mut Validator<'_>,
    subnet_field: &str,
    raw: &[Spanned<RawRelay>],
    earlier: &[Subnet],
) -> Vec<RelayMatch> {
    let mut out: Vec<RelayMatch> = Vec::new();
    for (j, spanned) in raw.iter().enumerate() {
        let r = spanned.get_ref();
        let field = format!("{subnet_field}.relays[{j}]");
        let link_address = match &r.link_address {
            Some(text) => match v.address(text, &format!("{field}.link_address")) {
                Some(address) => Some(address),
                None => continue,
            },
            None => None,
        };
        let interface_id = r
            .interface_id
            .as_ref()
            .map(|id| id.get_ref().as_bytes().to_vec());
        let span = spanned.span();
        if link_address.is_none() && interface_id.is_none() {
            v.error(
                span,
                &field,
                "name the relay by link_address, interface_id or both".into(),
            );
            continue;
        }
        if interface_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 0xffff)
        {
            v.error(
                span,
                &format!("{field}.interface_id"),
                "an Interface-ID is 1 to 65535 bytes".into(),
            );
            continue;
        }
        let entry = RelayMatch {
            link_address,
            interface_id,
        };
        if let Some((i, other)) = earlier
            .iter()
            .enumerate()
            .find(|(_, other)| other.relays.contains(&entry))
        {
            v.error(
                span,
                &field,
                format!(
                    "the same relay is already mapped to dhcp.subnets[{i}] ({}); a relay \
                     layer can belong to one subnet only",
                    other.prefix
                ),
            );
            continue;
        }
        out.push(entry);
    }
    out
}

/// Dot-separated labels of 1 to 63 letters, digits, `-` or `_` (RFC 1035 section
/// 2.3.4, with the underscore that service names use).
fn is_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

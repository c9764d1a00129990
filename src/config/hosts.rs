//! `[[hosts]]`: the machines the operator knows, keyed by MAC.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;

use super::dhcp::DhcpConfig;
use super::installers::{self, InstallersConfig};
use super::raw::RawHost;
use super::validator::Validator;
use crate::mac::Mac;

/// One machine the operator knows, keyed by MAC.
#[derive(Debug, Clone)]
pub struct Host {
    pub mac: Mac,
    pub name: String,
    pub address: Option<Ipv6Addr>,
    /// Whether the host should install on its next boot (as written in the config;
    /// the persisted state in `state_dir` may override it at run time).
    pub install: bool,
    /// The installer family it runs: its own `installer`, else `http.installer`.
    pub installer: String,
    pub vars: BTreeMap<String, toml::Value>,
}

/// Validates `[[hosts]]`: unique MACs, names and addresses, each address inside one
/// of `dhcp.subnets` (when there are any).
pub(super) fn validate(
    v: &mut Validator<'_>,
    raw: &[RawHost],
    dhcp: &DhcpConfig,
    families: &InstallersConfig,
) -> Vec<Host> {
    let mut hosts: Vec<Host> = Vec::new();
    let mut seen_macs: HashMap<Mac, usize> = HashMap::new();
    let mut seen_addresses: HashMap<Ipv6Addr, usize> = HashMap::new();
    let mut seen_names: HashMap<String, usize> = HashMap::new();
    for (i, raw_host) in raw.iter().enumerate() {
        let field = format!("hosts[{i}]");
        let mac = match raw_host.mac.get_ref().parse::<Mac>() {
            Ok(mac) => mac,
            Err(err) => {
                v.error(
                    raw_host.mac.span(),
                    &format!("{field}.mac"),
                    err.to_string(),
                );
                continue;
            }
        };
        if let Some(first) = seen_macs.insert(mac, i) {
            v.error(
                raw_host.mac.span(),
                &format!("{field}.mac"),
                format!("MAC {mac} is already used by hosts[{first}]"),
            );
        }
        let address = raw_host
            .address
            .as_ref()
            .and_then(|a| v.address(a, &format!("{field}.address")));
        if let (Some(addr), Some(text)) = (address, raw_host.address.as_ref()) {
            if let Some(first) = seen_addresses.insert(addr, i) {
                v.error(
                    text.span(),
                    &format!("{field}.address"),
                    format!("address {addr} is already given to hosts[{first}]"),
                );
            }
            if !dhcp.subnets.is_empty() && !dhcp.subnets.iter().any(|s| s.prefix.contains(&addr)) {
                v.error(
                    text.span(),
                    &format!("{field}.address"),
                    format!("address {addr} is in none of the dhcp.subnets"),
                );
            }
        }
        let name = raw_host
            .name
            .as_ref()
            .map_or_else(|| mac.hyphenated(), |n| n.get_ref().clone());
        if let Some(first) = seen_names.insert(name.clone(), i) {
            let span = raw_host
                .name
                .as_ref()
                .map_or(raw_host.mac.span(), |n| n.span());
            v.error(
                span,
                &format!("{field}.name"),
                format!("name `{name}` is already used by hosts[{first}]"),
            );
        }
        let installer = installers::host_family(
            v,
            raw_host.installer.as_ref(),
            &format!("{field}.installer"),
            families,
        );
        hosts.push(Host {
            mac,
            name,
            address,
            install: raw_host.install,
            installer,
            vars: raw_host.vars.clone(),
        });
    }
    hosts
}

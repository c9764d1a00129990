//! `[[hosts]]`: the machines the operator knows, keyed by MAC.

use core::net::Ipv6Addr;
use std::collections::{BTreeMap, HashMap};

use super::dhcp::DhcpConfig;
use super::installers::{self, InstallersConfig};
use super::raw::{RawBmc, RawHost};
use super::validator::Validator;
use crate::bmc::{BmcSpec, BootPath};
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
    /// `[hosts.bmc]`: how to reach its BMC for `hosts install --reboot` and `bmc …`.
    pub bmc: Option<BmcSpec>,
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
        let bmc = raw_host
            .bmc
            .as_ref()
            .and_then(|raw| bmc(v, raw, &format!("{field}.bmc")));
        hosts.push(Host {
            mac,
            name,
            address,
            install: raw_host.install,
            installer,
            vars: raw_host.vars.clone(),
            bmc,
        });
    }
    hosts
}

/// `[hosts.bmc]`: the URL as a BMC takes it, a password only by file (paths relative
/// to the config file), `boot` one of `pxe`, `uefi-http`.
fn bmc(v: &mut Validator<'_>, raw: &RawBmc, field: &str) -> Option<BmcSpec> {
    let mut ok = true;
    if let Err(message) = BmcSpec::check_url(raw.url.get_ref()) {
        v.error(raw.url.span(), &format!("{field}.url"), message);
        ok = false;
    }
    if let Some(password) = &raw.password {
        v.error(
            password.span(),
            &format!("{field}.password"),
            "passwords are not written in the config; put it in a file readable only by \
             sixboot and set password_file"
                .into(),
        );
        ok = false;
    }
    match (&raw.username, &raw.password_file) {
        (Some(user), None) => {
            v.error(
                user.span(),
                &format!("{field}.password_file"),
                "username is set but password_file is not; give both or neither".into(),
            );
            ok = false;
        }
        (None, Some(file)) => {
            v.error(
                file.span(),
                &format!("{field}.username"),
                "password_file is set but username is not; give both or neither".into(),
            );
            ok = false;
        }
        _ => {}
    }
    let boot = match &raw.boot {
        None => BootPath::Pxe,
        Some(text) => match BootPath::parse(text.get_ref()) {
            Some(path) => path,
            None => {
                v.error(
                    text.span(),
                    &format!("{field}.boot"),
                    format!(
                        "`{}` is not a boot path; use pxe or uefi-http",
                        text.get_ref()
                    ),
                );
                ok = false;
                BootPath::Pxe
            }
        },
    };
    if let Some(secs) = &raw.timeout_secs {
        if !(1..=600).contains(secs.get_ref()) {
            v.error(
                secs.span(),
                &format!("{field}.timeout_secs"),
                format!("{} is not 1 to 600 seconds", secs.get_ref()),
            );
            ok = false;
        }
    }
    if raw.verify_tls == Some(false) {
        v.warning(
            raw.url.span(),
            &format!("{field}.verify_tls"),
            "verify_tls = false: anyone on the path to the BMC can read its password; \
             give the BMC's CA in ca_file instead"
                .into(),
        );
    }
    ok.then(|| BmcSpec {
        url: raw.url.get_ref().clone(),
        username: raw.username.as_ref().map(|u| u.get_ref().clone()),
        password_file: raw.password_file.as_ref().map(|p| v.relative(p.get_ref())),
        verify_tls: raw.verify_tls.unwrap_or(true),
        ca_file: raw.ca_file.as_ref().map(|p| v.relative(p.get_ref())),
        boot,
        system: raw.system.as_ref().map(|s| s.get_ref().clone()),
        timeout_secs: raw.timeout_secs.as_ref().map(|s| *s.get_ref()),
    })
}

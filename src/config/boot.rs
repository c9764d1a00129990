//! `[boot]`: which boot file (RFC 5970 option 59) and parameters (option 60) each
//! kind of client gets, and the rules firmware imposes on those URLs.
//!
//! Which kind a client is, and which of these it gets, is decided in
//! `crate::dhcpv6::class`; this module only holds and checks the URLs:
//!
//! - `[boot.pxe]` (firmware PXE) must be `tftp://[IPv6 literal]/path`: edk2's
//!   `PxeBcExtractBootFileUrl` takes nothing else (a host name only through the DNS
//!   server of the same reply, and only since UEFI 2.6; no port; no `;mode=` but octet).
//! - `[boot.http]` (UEFI HTTP Boot) must be `http://` or `https://`; a host name needs
//!   `dhcp.dns_servers`: edk2's `HttpBootSelectDhcpOffer` never boots from a name-URI
//!   offer without a DNS server in it.

use std::collections::BTreeMap;

use super::dhcp::DhcpConfig;
use super::ra::RaConfig;
use super::raw::{RawArchFiles, RawBoot, Text};
use super::validator::Validator;
use crate::dhcpv6::class::{BootMethod, Cpu};
use crate::mac::Mac;

/// Which boot file each kind of client gets (RFC 5970 options 59 and 60).
#[derive(Debug, Clone)]
pub struct BootConfig {
    /// For iPXE; `{mac}` becomes the host's MAC.
    pub ipxe_script_url: Option<String>,
    /// Firmware PXE boot files (`tftp://`) by CPU: UEFI PXE, and BIOS PXE for
    /// [`Cpu::X86Bios`]. `efi_url` is the x86-64 entry.
    pub pxe: BTreeMap<Cpu, String>,
    /// UEFI HTTP Boot files (`http(s)://`) by CPU. `http_boot_url` is the x86-64 entry.
    pub http: BTreeMap<Cpu, String>,
    /// Option 60, sent only to clients that can use it (iPXE, and clients that ask).
    pub bootfile_params: Vec<String>,
    /// Option-15 user classes that mark a client as iPXE (default `["iPXE"]`), as bytes.
    pub ipxe_user_classes: Vec<Vec<u8>>,
}

impl Default for BootConfig {
    fn default() -> BootConfig {
        BootConfig {
            ipxe_script_url: None,
            pxe: BTreeMap::new(),
            http: BTreeMap::new(),
            bootfile_params: Vec::new(),
            ipxe_user_classes: vec![DEFAULT_IPXE_USER_CLASS.as_bytes().to_vec()],
        }
    }
}

/// iPXE's user class when its `user-class` setting is unset (`dhcpv6_user_class`).
pub const DEFAULT_IPXE_USER_CLASS: &str = "iPXE";

impl BootConfig {
    /// The iPXE script URL for one host.
    pub fn script_url_for(&self, mac: &Mac) -> Option<String> {
        self.ipxe_script_url
            .as_ref()
            .map(|url| url.replace("{mac}", &mac.to_string()))
    }

    /// The boot file for firmware of this CPU booting by `method`, if configured.
    pub fn file(&self, method: BootMethod, cpu: Cpu) -> Option<&str> {
        match method {
            BootMethod::Pxe => self.pxe.get(&cpu),
            BootMethod::Http => self.http.get(&cpu),
        }
        .map(String::as_str)
    }
}

/// Validates `[boot]` against the sections it depends on: `dhcp.dns_servers` for
/// host names in URLs, `[ra]` and the pools for what UEFI firmware needs to get an
/// address.
pub(super) fn validate(
    v: &mut Validator<'_>,
    b: &RawBoot,
    ra: &RaConfig,
    ra_managed: Option<&toml::Spanned<bool>>,
    dhcp: &DhcpConfig,
) -> BootConfig {
    let dns = !dhcp.dns_servers.is_empty();
    let ipxe_script_url = b
        .ipxe_script_url
        .as_ref()
        .and_then(|u| v.url(u, "boot.ipxe_script_url"));
    if let (Some(url), Some(text)) = (&ipxe_script_url, &b.ipxe_script_url) {
        if host_name(url).is_some() && !dns {
            v.warning(
                text.span(),
                "boot.ipxe_script_url",
                "a host name with no dhcp.dns_servers: iPXE can resolve it only if another \
                 router's RA carries RDNSS; set dhcp.dns_servers or write the address"
                    .into(),
            );
        }
    }
    let pxe = files(
        v,
        BootMethod::Pxe,
        b.pxe.as_ref(),
        b.efi_url.as_ref(),
        ("boot.pxe", "boot.efi_url"),
        dns,
    );
    let http = files(
        v,
        BootMethod::Http,
        b.http.as_ref(),
        b.http_boot_url.as_ref(),
        ("boot.http", "boot.http_boot_url"),
        dns,
    );

    let mut bootfile_params = Vec::new();
    for (i, param) in b.bootfile_params.iter().enumerate() {
        if param.get_ref().len() > usize::from(u16::MAX) {
            v.error(
                param.span(),
                &format!("boot.bootfile_params[{i}]"),
                "a boot-file parameter is at most 65535 bytes (RFC 5970 3.2)".into(),
            );
        } else {
            bootfile_params.push(param.get_ref().clone());
        }
    }

    let ipxe_user_classes = match &b.ipxe_user_classes {
        None => BootConfig::default().ipxe_user_classes,
        Some(classes) => {
            let mut out = Vec::new();
            for (i, class) in classes.iter().enumerate() {
                let bytes = class.get_ref().as_bytes();
                if bytes.is_empty() || bytes.len() > usize::from(u16::MAX) {
                    v.error(
                        class.span(),
                        &format!("boot.ipxe_user_classes[{i}]"),
                        "a user class is 1 to 65535 bytes (RFC 8415 21.15)".into(),
                    );
                } else {
                    out.push(bytes.to_vec());
                }
            }
            out
        }
    };

    // RFC 8415 section 18.2.1 / edk2 PxeBcDhcp6Sarr, HttpBootDhcp6Sarr: UEFI PXE and
    // HTTP Boot always ask for an address (IA_NA) and boot only with one, whatever the
    // RA's M flag says. With M=0 and no pool, only hosts with a fixed address get one.
    let firmware_files = !pxe.is_empty() || !http.is_empty();
    let any_pool = dhcp.subnets.iter().any(|s| s.pool.is_some());
    if ra.enabled && !ra.managed && firmware_files && !any_pool {
        v.warning(
            ra_managed.map_or(0..0, |m| m.span()),
            "ra.managed",
            "M=0 and no dhcp.subnets pool, but [boot] has UEFI PXE/HTTP files: UEFI \
             firmware always asks DHCPv6 for an address and only hosts with a fixed \
             address will get one. Add pool_start/pool_end or set managed = true"
                .into(),
        );
    }

    BootConfig {
        ipxe_script_url,
        pxe,
        http,
        bootfile_params,
        ipxe_user_classes,
    }
}

/// One `[boot.pxe]`/`[boot.http]` table plus its older single key (the x86-64 entry).
fn files(
    v: &mut Validator<'_>,
    method: BootMethod,
    table: Option<&RawArchFiles>,
    legacy: Option<&Text>,
    (table_name, legacy_name): (&str, &str),
    dns: bool,
) -> BTreeMap<Cpu, String> {
    // The older key first: `[boot]` comes before `[boot.pxe]` in a file.
    let mut out = BTreeMap::new();
    let legacy_url = legacy.and_then(|text| firmware_url(v, method, text, legacy_name, dns));
    let default = RawArchFiles::default();
    for (cpu, text) in table.unwrap_or(&default).entries() {
        let Some(text) = text else {
            continue;
        };
        let field = format!("{table_name}.{}", cpu.key());
        if cpu == Cpu::X86_64 {
            if let Some(legacy) = legacy {
                v.error(
                    legacy.span(),
                    legacy_name,
                    format!(
                        "{legacy_name} is the older name of {field}, which is set too; \
                         keep one"
                    ),
                );
            }
        }
        if let Some(url) = firmware_url(v, method, text, &field, dns) {
            out.insert(cpu, url);
        }
    }
    if let Some(url) = legacy_url {
        out.entry(Cpu::X86_64).or_insert(url);
    }
    out
}

/// Checks one firmware boot URL for what its firmware can fetch.
fn firmware_url(
    v: &mut Validator<'_>,
    method: BootMethod,
    text: &Text,
    field: &str,
    dns: bool,
) -> Option<String> {
    let url = v.url(text, field)?;
    let problem = match method {
        BootMethod::Pxe => pxe_url_problem(&url, dns),
        BootMethod::Http => http_url_problem(&url, dns),
    };
    match problem {
        None => Some(url),
        Some(UrlProblem::Error(message)) => {
            v.error(text.span(), field, message);
            None
        }
        Some(UrlProblem::Warning(message)) => {
            v.warning(text.span(), field, message);
            Some(url)
        }
    }
}

enum UrlProblem {
    Error(String),
    Warning(String),
}

/// edk2 `PxeBcExtractBootFileUrl` (NetworkPkg/UefiPxeBcDxe/PxeBcDhcp6.c): the URL must
/// start `tftp://`; then either `[literal]` followed directly by `/` (no port), or a
/// host name up to the first `/`, resolved with the DNS server of the same reply
/// (`PxeBcDns6`, since UEFI 2.6); a `;mode=` suffix other than `;mode=octet` fails.
fn pxe_url_problem(url: &str, dns: bool) -> Option<UrlProblem> {
    let Some(rest) = url.strip_prefix("tftp://") else {
        return Some(UrlProblem::Error(format!(
            "`{url}`: UEFI PXE fetches only tftp://[ADDRESS]/PATH (edk2 \
             PxeBcExtractBootFileUrl); for http:// use [boot.http] (UEFI HTTP Boot)"
        )));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path.is_empty() {
        return Some(UrlProblem::Error(format!(
            "`{url}` names no file: write tftp://[ADDRESS]/PATH"
        )));
    }
    if let Some(mode) = path.find(";mode=") {
        if &path[mode..] != ";mode=octet" {
            return Some(UrlProblem::Error(format!(
                "`{url}`: edk2 PXE accepts only ;mode=octet (or no mode)"
            )));
        }
    }
    if let Some(after) = authority.strip_prefix('[').and_then(|a| a.split_once(']')) {
        if !after.1.is_empty() {
            return Some(UrlProblem::Error(format!(
                "`{url}`: edk2 PXE takes no port (it always uses 69): write \
                 tftp://[{}]/{path}",
                after.0
            )));
        }
        return None;
    }
    if authority.contains(':') {
        return Some(UrlProblem::Error(format!(
            "`{url}`: edk2 PXE takes no port (it always uses 69)"
        )));
    }
    Some(if dns {
        UrlProblem::Warning(format!(
            "`{url}` has a host name: edk2 PXE resolves it with dhcp.dns_servers only \
             since UEFI 2.6 (2016); older firmware takes only tftp://[ADDRESS]/PATH"
        ))
    } else {
        UrlProblem::Error(format!(
            "`{url}` has a host name and dhcp.dns_servers is empty: UEFI PXE cannot \
             resolve it (edk2 uses only the DNS server in the same reply); write \
             tftp://[ADDRESS]/PATH or set dhcp.dns_servers"
        ))
    })
}

/// edk2 `HttpBootParseDhcp6Packet` and `HttpBootSelectDhcpOffer`
/// (NetworkPkg/HttpBootDxe): the URI must parse as http(s); an offer with a host-name
/// URI and no DNS server option is typed `HttpOfferTypeDhcpNameUri`, which is only
/// ever used together with another server's DNS-only offer.
fn http_url_problem(url: &str, dns: bool) -> Option<UrlProblem> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Some(UrlProblem::Error(format!(
            "`{url}`: UEFI HTTP Boot fetches only http:// or https://; for tftp:// use \
             [boot.pxe]"
        )));
    }
    if host_name(url).is_some() && !dns {
        return Some(UrlProblem::Error(format!(
            "`{url}` has a host name and dhcp.dns_servers is empty: UEFI HTTP Boot never \
             boots from such an offer (edk2 HttpBootSelectDhcpOffer); write the address \
             in brackets or set dhcp.dns_servers"
        )));
    }
    None
}

/// The host of an absolute URL when it is a name, not an IP literal.
fn host_name(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return None;
    }
    let host = host.split(':').next()?;
    (host.parse::<core::net::Ipv4Addr>().is_err() && !host.is_empty()).then_some(host)
}

//! The boot server's configuration: one TOML file for RA, DHCPv6, HTTP, TFTP and hosts.
//!
//! [`raw`] mirrors the file; [`Config::from_toml`] turns it into a validated [`Config`]
//! that the rest of the server can trust, or returns every [`Problem`] at once, each
//! with the file, line, column and field that caused it. This module reads no files
//! but through [`Config::load`].

pub mod raw;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::mac::Mac;
use raw::{RawConfig, Text};
use toml::Spanned;

/// An IPv6 prefix such as `2001:db8:1::/64`, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub address: Ipv6Addr,
    pub len: u8,
}

impl Prefix {
    /// Whether `address` lies inside this prefix.
    pub fn contains(&self, address: &Ipv6Addr) -> bool {
        let mask = prefix_mask(self.len);
        u128::from(*address) & mask == u128::from(self.address)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

fn prefix_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// Router advertisement settings (RFC 4861 section 6.2.1).
#[derive(Debug, Clone)]
pub struct RaConfig {
    /// Off by default: a stray RA can take over the routing of a whole network.
    pub enabled: bool,
    /// The M flag: addresses from DHCPv6. iPXE starts DHCPv6 only when M or O is set.
    pub managed: bool,
    /// The O flag: other configuration (DNS, bootfile-url) from DHCPv6.
    pub other: bool,
    pub min_interval_secs: u32,
    pub max_interval_secs: u32,
    /// 0 means "not a default router", right for a boot-only network.
    pub router_lifetime_secs: u32,
    pub hop_limit: u8,
    pub prefixes: Vec<RaPrefix>,
    pub rdnss: bool,
}

/// One prefix information option.
#[derive(Debug, Clone)]
pub struct RaPrefix {
    pub prefix: Prefix,
    pub on_link: bool,
    pub autonomous: bool,
    pub valid_lifetime_secs: u32,
    pub preferred_lifetime_secs: u32,
}

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
    pub interface: Option<String>,
}

/// Which boot file each kind of client gets (RFC 5970 options 59 and 60).
#[derive(Debug, Clone, Default)]
pub struct BootConfig {
    /// For iPXE (user class "iPXE"); `{mac}` becomes the host's MAC.
    pub ipxe_script_url: Option<String>,
    /// For UEFI PXE (client architecture 7 or 9).
    pub efi_url: Option<String>,
    /// For UEFI HTTP Boot (client architecture 16).
    pub http_boot_url: Option<String>,
    pub bootfile_params: Vec<String>,
}

impl BootConfig {
    /// The iPXE script URL for one host.
    pub fn script_url_for(&self, mac: &Mac) -> Option<String> {
        self.ipxe_script_url
            .as_ref()
            .map(|url| url.replace("{mac}", &mac.to_string()))
    }
}

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: Vec<SocketAddr>,
    pub base_url: Option<String>,
    pub script_template: Option<PathBuf>,
    pub kickstart_template: Option<PathBuf>,
    pub files_root: Option<PathBuf>,
    pub header_timeout_secs: u32,
    pub max_header_bytes: u32,
    /// Certificate chain and private key (PEM) for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Addresses that serve HTTPS; needs `tls`.
    pub tls_listen: Vec<SocketAddr>,
}

/// TFTP settings (the server is in `crate::tftp`).
#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// `[::]:69` when the file names none.
    pub listen: Vec<SocketAddr>,
    /// Files are served from below this directory only.
    pub root: PathBuf,
    /// Cap on the client's blksize (RFC 2348); default 1468, what OVMF and iPXE ask
    /// for, since bigger blocks are fragmented on a 1500-byte link.
    pub max_block_size: u16,
    /// Cap on the client's windowsize (RFC 7440); default 16.
    pub max_window_size: u16,
    /// Retransmission interval when the client asks for none; default 1 s.
    pub timeout: std::time::Duration,
    /// Retransmissions of one window before giving up; default 5.
    pub retries: u32,
    /// Transfers at once; default 256.
    pub max_transfers: usize,
}

impl TftpConfig {
    /// The defaults for everything but the root.
    pub fn with_root(root: PathBuf) -> TftpConfig {
        TftpConfig {
            listen: vec![SocketAddr::from((Ipv6Addr::UNSPECIFIED, 69))],
            root,
            max_block_size: 1468,
            max_window_size: 16,
            timeout: std::time::Duration::from_secs(1),
            retries: 5,
            max_transfers: 256,
        }
    }
}

/// One machine the operator knows, keyed by MAC.
#[derive(Debug, Clone)]
pub struct Host {
    pub mac: Mac,
    pub name: String,
    pub address: Option<Ipv6Addr>,
    /// Whether the host should install on its next boot (as written in the config;
    /// the persisted state in `state_dir` may override it at run time).
    pub install: bool,
    pub vars: BTreeMap<String, toml::Value>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages.
    pub path: PathBuf,
    pub interfaces: Vec<String>,
    pub state_dir: PathBuf,
    pub ra: RaConfig,
    pub dhcp: DhcpConfig,
    pub boot: BootConfig,
    pub http: HttpConfig,
    pub tftp: Option<TftpConfig>,
    pub hosts: Vec<Host>,
}

impl Config {
    /// The host with this MAC, if the operator listed it.
    pub fn host(&self, mac: &Mac) -> Option<&Host> {
        self.hosts.iter().find(|host| host.mac == *mac)
    }
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The dotted field, e.g. `hosts[2].address`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.field,
            self.message
        )
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Ok(Config::from_toml(path, &text)?)
    }

    /// Parses and validates config text; `path` only names it in messages and anchors
    /// relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut v = Validator::new(path, text);
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                let (line, column) = err
                    .span()
                    .map(|span| v.line_col(span.start))
                    .unwrap_or((1, 1));
                return Err(ConfigError {
                    problems: vec![Problem {
                        path: path.to_owned(),
                        line,
                        column,
                        field: "(syntax)".into(),
                        message: err.message().trim().to_owned(),
                    }],
                });
            }
        };
        let config = v.validate(raw);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: v.problems,
            })
        }
    }
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    fn new(path: &'a Path, text: &'a str) -> Self {
        Validator {
            path,
            text,
            problems: Vec::new(),
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    fn problem(&mut self, span: std::ops::Range<usize>, field: &str, message: String) {
        let (line, column) = self.line_col(span.start);
        self.problems.push(Problem {
            path: self.path.to_owned(),
            line,
            column,
            field: field.to_owned(),
            message,
        });
    }

    fn address(&mut self, text: &Text, field: &str) -> Option<Ipv6Addr> {
        match text.get_ref().parse::<Ipv6Addr>() {
            Ok(address) => Some(address),
            Err(_) => {
                let hint = if text.get_ref().matches("::").count() > 1 {
                    " (`::` may appear only once)"
                } else {
                    ""
                };
                self.problem(
                    text.span(),
                    field,
                    format!("`{}` is not an IPv6 address{hint}", text.get_ref()),
                );
                None
            }
        }
    }

    fn prefix(&mut self, text: &Text, field: &str) -> Option<Prefix> {
        let Some((address, len)) = text.get_ref().split_once('/') else {
            self.problem(
                text.span(),
                field,
                format!(
                    "`{}` is not a prefix: write it as ADDRESS/LENGTH, e.g. 2001:db8:1::/64",
                    text.get_ref()
                ),
            );
            return None;
        };
        let address_text = Spanned::new(text.span(), address.to_owned());
        let address = self.address(&address_text, field)?;
        let len = match len.parse::<u8>() {
            Ok(len) if len <= 128 => len,
            _ => {
                self.problem(
                    text.span(),
                    field,
                    format!("prefix length `{len}` must be a number from 0 to 128"),
                );
                return None;
            }
        };
        if u128::from(address) & !prefix_mask(len) != 0 {
            self.problem(
                text.span(),
                field,
                format!(
                    "`{}` has bits set past the prefix length; did you mean {}/{len}?",
                    text.get_ref(),
                    Ipv6Addr::from(u128::from(address) & prefix_mask(len))
                ),
            );
            return None;
        }
        Some(Prefix { address, len })
    }

    fn url(&mut self, text: &Text, field: &str) -> Option<String> {
        match check_url(text.get_ref()) {
            Ok(()) => Some(text.get_ref().clone()),
            Err(message) => {
                self.problem(text.span(), field, message);
                None
            }
        }
    }

    fn lifetimes(
        &mut self,
        short: Option<&Spanned<u32>>,
        long: Option<&Spanned<u32>>,
        defaults: (u32, u32),
        names: (&str, &str),
    ) -> (u32, u32) {
        let a = short.map_or(defaults.0, |s| *s.get_ref());
        let b = long.map_or(defaults.1, |s| *s.get_ref());
        if a > b {
            let span = short.or(long).map_or(0..0, |s| s.span());
            self.problem(
                span,
                names.0,
                format!(
                    "{} ({a}) must not be greater than {} ({b})",
                    names.0, names.1
                ),
            );
        }
        (a, b)
    }

    fn validate(&mut self, raw: RawConfig) -> Config {
        let interfaces: Vec<String> = raw
            .server
            .interfaces
            .iter()
            .map(|i| i.get_ref().clone())
            .collect();
        let state_dir = raw.server.state_dir.as_ref().map_or_else(
            || PathBuf::from("/var/lib/sixboot"),
            |dir| self.relative(dir.get_ref()),
        );

        // Router advertisements.
        let mut ra_prefixes = Vec::new();
        for (i, p) in raw.ra.prefixes.iter().enumerate() {
            let field = format!("ra.prefixes[{i}]");
            let prefix = self.prefix(&p.prefix, &format!("{field}.prefix"));
            let (preferred, valid) = self.lifetimes(
                p.preferred_lifetime_secs.as_ref(),
                p.valid_lifetime_secs.as_ref(),
                (14_400, 86_400),
                (
                    &format!("{field}.preferred_lifetime_secs"),
                    &format!("{field}.valid_lifetime_secs"),
                ),
            );
            if let Some(prefix) = prefix {
                ra_prefixes.push(RaPrefix {
                    prefix,
                    on_link: p.on_link.unwrap_or(true),
                    autonomous: p.autonomous.unwrap_or(false),
                    valid_lifetime_secs: valid,
                    preferred_lifetime_secs: preferred,
                });
            }
        }
        let (min_interval, max_interval) = self.lifetimes(
            raw.ra.min_interval_secs.as_ref(),
            raw.ra.max_interval_secs.as_ref(),
            (30, 200),
            ("ra.min_interval_secs", "ra.max_interval_secs"),
        );
        if raw.ra.enabled && interfaces.is_empty() {
            self.problem(
                0..0,
                "server.interfaces",
                "ra.enabled is true but no interface is listed in server.interfaces".into(),
            );
        }
        let ra = RaConfig {
            enabled: raw.ra.enabled,
            managed: raw.ra.managed.unwrap_or(true),
            other: raw.ra.other.unwrap_or(true),
            min_interval_secs: min_interval,
            max_interval_secs: max_interval,
            router_lifetime_secs: raw.ra.router_lifetime_secs.map_or(0, |s| *s.get_ref()),
            hop_limit: raw.ra.hop_limit.unwrap_or(64),
            prefixes: ra_prefixes,
            rdnss: raw.ra.rdnss,
        };

        // DHCPv6.
        let d = &raw.dhcp;
        let (preferred, valid) = self.lifetimes(
            d.preferred_lifetime_secs.as_ref(),
            d.valid_lifetime_secs.as_ref(),
            (3_600, 7_200),
            ("dhcp.preferred_lifetime_secs", "dhcp.valid_lifetime_secs"),
        );
        let (t1, t2) = self.lifetimes(
            d.t1_secs.as_ref(),
            d.t2_secs.as_ref(),
            (preferred / 2, preferred * 4 / 5),
            ("dhcp.t1_secs", "dhcp.t2_secs"),
        );
        if t2 > preferred {
            let span = d.t2_secs.as_ref().map_or(0..0, |s| s.span());
            self.problem(
                span,
                "dhcp.t2_secs",
                format!("T2 ({t2}) must not be greater than the preferred lifetime ({preferred})"),
            );
        }
        let dns_servers = d
            .dns_servers
            .iter()
            .enumerate()
            .filter_map(|(i, a)| self.address(a, &format!("dhcp.dns_servers[{i}]")))
            .collect();
        let mut domain_search = Vec::new();
        for (i, name) in d.domain_search.iter().enumerate() {
            let valid = !name.get_ref().is_empty()
                && name.get_ref().split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if valid {
                domain_search.push(name.get_ref().clone());
            } else {
                self.problem(
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
                self.problem(
                    span,
                    "dhcp.unknown_hosts",
                    format!("`{other}` is not one of \"pool\" or \"ignore\""),
                );
                UnknownHosts::Pool
            }
        };
        let mut subnets = Vec::new();
        for (i, s) in d.subnets.iter().enumerate() {
            let field = format!("dhcp.subnets[{i}]");
            let Some(prefix) = self.prefix(&s.prefix, &format!("{field}.prefix")) else {
                continue;
            };
            let pool = match (&s.pool_start, &s.pool_end) {
                (None, None) => None,
                (Some(start), Some(end)) => {
                    let a = self.address(start, &format!("{field}.pool_start"));
                    let b = self.address(end, &format!("{field}.pool_end"));
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            for (addr, text, name) in
                                [(a, start, "pool_start"), (b, end, "pool_end")]
                            {
                                if !prefix.contains(&addr) {
                                    self.problem(
                                        text.span(),
                                        &format!("{field}.{name}"),
                                        format!("{addr} is outside the subnet's prefix {prefix}"),
                                    );
                                }
                            }
                            if a > b {
                                self.problem(
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
                    self.problem(
                        s.prefix.span(),
                        &field,
                        "give both pool_start and pool_end, or neither".into(),
                    );
                    None
                }
            };
            if let Some(other) = subnets
                .iter()
                .find(|other: &&Subnet| other.prefix.contains(&prefix.address))
            {
                let message = format!("prefix {prefix} overlaps subnet {}", other.prefix);
                self.problem(s.prefix.span(), &format!("{field}.prefix"), message);
            }
            subnets.push(Subnet {
                prefix,
                pool,
                interface: s.interface.as_ref().map(|i| i.get_ref().clone()),
            });
        }
        let dhcp = DhcpConfig {
            preferred_lifetime_secs: preferred,
            valid_lifetime_secs: valid,
            t1_secs: t1,
            t2_secs: t2,
            dns_servers,
            domain_search,
            unknown_hosts,
            rapid_commit: d.rapid_commit.unwrap_or(true),
            subnets,
        };

        // Boot files.
        let b = &raw.boot;
        let boot = BootConfig {
            ipxe_script_url: b
                .ipxe_script_url
                .as_ref()
                .and_then(|u| self.url(u, "boot.ipxe_script_url")),
            efi_url: b.efi_url.as_ref().and_then(|u| self.url(u, "boot.efi_url")),
            http_boot_url: b
                .http_boot_url
                .as_ref()
                .and_then(|u| self.url(u, "boot.http_boot_url")),
            bootfile_params: b.bootfile_params.clone(),
        };

        // HTTP.
        let h = &raw.http;
        let listen = self.socket_addresses(&h.listen, "http.listen");
        let tls_listen = self.socket_addresses(&h.tls_listen, "http.tls_listen");
        let tls = match (&h.tls_cert, &h.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some((self.relative(cert.get_ref()), self.relative(key.get_ref())))
            }
            (Some(t), None) | (None, Some(t)) => {
                self.problem(
                    t.span(),
                    "http",
                    "give both tls_cert and tls_key, or neither".into(),
                );
                None
            }
        };
        let http = HttpConfig {
            listen,
            base_url: h
                .base_url
                .as_ref()
                .and_then(|u| self.url(u, "http.base_url"))
                .map(|u| u.trim_end_matches('/').to_owned()),
            script_template: h
                .script_template
                .as_ref()
                .map(|p| self.relative(p.get_ref())),
            kickstart_template: h
                .kickstart_template
                .as_ref()
                .map(|p| self.relative(p.get_ref())),
            files_root: h.files_root.as_ref().map(|p| self.relative(p.get_ref())),
            header_timeout_secs: h.header_timeout_secs.unwrap_or(10),
            max_header_bytes: h.max_header_bytes.unwrap_or(16 * 1024),
            tls,
            tls_listen,
        };
        if !tls_listen_ok(&http) {
            let span = h.tls_listen.first().map_or(0..0, |l| l.span());
            self.problem(
                span,
                "http.tls_listen",
                "tls_listen needs tls_cert and tls_key (and they need tls_listen)".into(),
            );
        }

        // TFTP.
        let tftp = raw.tftp.as_ref().and_then(|t| self.tftp(t));

        // Hosts.
        let mut hosts: Vec<Host> = Vec::new();
        let mut seen_macs: HashMap<Mac, usize> = HashMap::new();
        let mut seen_addresses: HashMap<Ipv6Addr, usize> = HashMap::new();
        let mut seen_names: HashMap<String, usize> = HashMap::new();
        for (i, raw_host) in raw.hosts.iter().enumerate() {
            let field = format!("hosts[{i}]");
            let mac = match raw_host.mac.get_ref().parse::<Mac>() {
                Ok(mac) => mac,
                Err(err) => {
                    self.problem(
                        raw_host.mac.span(),
                        &format!("{field}.mac"),
                        err.to_string(),
                    );
                    continue;
                }
            };
            if let Some(first) = seen_macs.insert(mac, i) {
                self.problem(
                    raw_host.mac.span(),
                    &format!("{field}.mac"),
                    format!("MAC {mac} is already used by hosts[{first}]"),
                );
            }
            let address = raw_host
                .address
                .as_ref()
                .and_then(|a| self.address(a, &format!("{field}.address")));
            if let (Some(addr), Some(text)) = (address, raw_host.address.as_ref()) {
                if let Some(first) = seen_addresses.insert(addr, i) {
                    self.problem(
                        text.span(),
                        &format!("{field}.address"),
                        format!("address {addr} is already given to hosts[{first}]"),
                    );
                }
                if !dhcp.subnets.is_empty()
                    && !dhcp.subnets.iter().any(|s| s.prefix.contains(&addr))
                {
                    self.problem(
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
                self.problem(
                    span,
                    &format!("{field}.name"),
                    format!("name `{name}` is already used by hosts[{first}]"),
                );
            }
            hosts.push(Host {
                mac,
                name,
                address,
                install: raw_host.install,
                vars: raw_host.vars.clone(),
            });
        }

        Config {
            path: self.path.to_owned(),
            interfaces,
            state_dir,
            ra,
            dhcp,
            boot,
            http,
            tftp,
            hosts,
        }
    }

    /// Validates `[tftp]`: listen addresses, root, and the limits on negotiation.
    fn tftp(&mut self, t: &raw::RawTftp) -> Option<TftpConfig> {
        let mut listen = Vec::new();
        for (i, l) in t.listen.iter().enumerate() {
            match l.get_ref().parse::<SocketAddr>() {
                Ok(addr) => listen.push(addr),
                Err(_) => self.problem(
                    l.span(),
                    &format!("tftp.listen[{i}]"),
                    format!(
                        "`{}` is not ADDRESS:PORT (write IPv6 as [2001:db8:1::1]:69)",
                        l.get_ref()
                    ),
                ),
            }
        }
        let mut number = |value: &Option<Spanned<u32>>,
                          name: &str,
                          range: std::ops::RangeInclusive<u32>,
                          default: u32| {
            let Some(value) = value else {
                return default;
            };
            if range.contains(value.get_ref()) {
                *value.get_ref()
            } else {
                self.problem(
                    value.span(),
                    &format!("tftp.{name}"),
                    format!(
                        "{} is out of range: use {} to {}",
                        value.get_ref(),
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        };
        let defaults = TftpConfig::with_root(PathBuf::new());
        let max_block_size = number(
            &t.max_block_size,
            "max_block_size",
            8..=65464,
            defaults.max_block_size.into(),
        );
        let max_window_size = number(
            &t.max_window_size,
            "max_window_size",
            1..=64,
            defaults.max_window_size.into(),
        );
        let timeout_secs = number(&t.timeout_secs, "timeout_secs", 1..=255, 1);
        let retries = number(&t.retries, "retries", 0..=100, defaults.retries);
        let max_transfers = number(&t.max_transfers, "max_transfers", 1..=65536, 256);
        let Some(root) = &t.root else {
            self.problem(
                0..0,
                "tftp.root",
                "[tftp] needs a root directory: add root = \"PATH\" (e.g. the dist/ of build-rom)"
                    .into(),
            );
            return None;
        };
        Some(TftpConfig {
            listen: if t.listen.is_empty() {
                defaults.listen
            } else {
                listen
            },
            root: self.relative(root.get_ref()),
            // The ranges above keep these conversions lossless.
            max_block_size: max_block_size as u16,
            max_window_size: max_window_size as u16,
            timeout: std::time::Duration::from_secs(timeout_secs.into()),
            retries,
            max_transfers: max_transfers as usize,
        })
    }

    fn socket_addresses(&mut self, texts: &[Text], field: &str) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (i, l) in texts.iter().enumerate() {
            match l.get_ref().parse::<SocketAddr>() {
                Ok(addr) => out.push(addr),
                Err(_) => self.problem(
                    l.span(),
                    &format!("{field}[{i}]"),
                    format!(
                        "`{}` is not ADDRESS:PORT (write IPv6 as [2001:db8::1]:80)",
                        l.get_ref()
                    ),
                ),
            }
        }
        out
    }

    /// Resolves a path from the config relative to the config file's directory.
    fn relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(path)
        }
    }
}

/// HTTPS addresses and a certificate come together or not at all.
fn tls_listen_ok(http: &HttpConfig) -> bool {
    http.tls.is_some() != http.tls_listen.is_empty()
}

/// Checks a boot URL: a scheme iPXE or UEFI can fetch, and IPv6 literals in brackets.
///
/// iPXE (and every URL parser) reads `http://2001:db8::1/x` as host `2001` with a
/// bad port, so an unbracketed literal never works; it must be `http://[2001:db8::1]/x`.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "`{url}` is not an absolute URL (iPXE needs scheme://host/path)"
        ));
    };
    if !matches!(scheme, "http" | "https" | "tftp") {
        return Err(format!(
            "`{url}` has scheme `{scheme}`; use http, https or tftp"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if let Some(inside) = authority.strip_prefix('[') {
        let Some((literal, after)) = inside.split_once(']') else {
            return Err(format!("`{url}` opens `[` but never closes it"));
        };
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{literal}` in `{url}` is not an IPv6 address"));
        }
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return Err(format!("`{url}` has a bad port after `]`"));
        }
    } else if authority.matches(':').count() > 1 {
        return Err(format!(
            "`{url}` has an IPv6 address without brackets; write it as {scheme}://[ADDRESS]/…"
        ));
    } else if let Some((_, port)) = authority.split_once(':') {
        if !is_port(port) {
            return Err(format!("`{url}` has a bad port `{port}`"));
        }
    }
    Ok(())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("/etc/sixboot/lab.toml"), text)
    }

    fn problems(text: &str) -> Vec<String> {
        check(text)
            .expect_err("config should be rejected")
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../examples/lab.toml");
        let config = check(text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.ra.enabled || !config.interfaces.is_empty());
        assert!(!config.hosts.is_empty());
    }

    #[test]
    fn an_empty_config_is_valid_and_ra_is_off() {
        let config = check("").unwrap();
        assert!(!config.ra.enabled);
        assert_eq!(config.dhcp.unknown_hosts, UnknownHosts::Pool);
    }

    #[test]
    fn rejects_address_with_two_double_colons_naming_line_and_field() {
        let p = problems("[dhcp]\ndns_servers = [\"2401::beef:20::20\"]\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("/etc/sixboot/lab.toml:2:"), "{}", p[0]);
        assert!(p[0].contains("dhcp.dns_servers[0]"), "{}", p[0]);
        assert!(p[0].contains("only once"), "{}", p[0]);
    }

    #[test]
    fn rejects_url_with_unbracketed_ipv6_literal() {
        let p = problems("[boot]\nipxe_script_url = \"http://2001:db8::1/ipxe/{mac}\"\n");
        assert!(p[0].contains("without brackets"), "{}", p[0]);
        assert!(check_url("http://[2001:db8::1]/ks.cfg").is_ok());
        assert!(check_url("http://[2001:db8::1]:8080/ks.cfg").is_ok());
        assert!(check_url("tftp://[2001:db8::1]/ipxe.efi").is_ok());
        assert!(check_url("/relative").is_err());
        assert!(check_url("http://[2001:db8::1/x").is_err());
    }

    #[test]
    fn rejects_pool_outside_its_prefix() {
        let p = problems(
            "[[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\npool_start = \"2001:db8:1::100\"\npool_end = \"2001:db8:2::1ff\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(":4:") && p[0].contains("pool_end"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn rejects_duplicate_macs_and_addresses() {
        let p = problems(
            "[[hosts]]\nmac = \"52:54:00:12:34:56\"\naddress = \"2001:db8::10\"\n\
             [[hosts]]\nmac = \"52-54-00-12-34-56\"\naddress = \"2001:db8::10\"\nname = \"b\"\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("hosts[1].mac") && p[0].contains("hosts[0]"));
        assert!(p[1].contains("hosts[1].address"));
    }

    #[test]
    fn rejects_lifetimes_in_the_wrong_order() {
        let p = problems("[dhcp]\npreferred_lifetime_secs = 7200\nvalid_lifetime_secs = 3600\n");
        assert!(p[0].contains("must not be greater"), "{p:?}");
        let p = problems("[dhcp]\nt1_secs = 3000\nt2_secs = 1000\n");
        assert!(p[0].contains("dhcp.t1_secs"), "{p:?}");
    }

    #[test]
    fn rejects_unknown_fields_with_their_line() {
        let p = problems("[ra]\nenabled = true\nmanagd = true\n");
        assert!(p[0].contains(":3:") && p[0].contains("managd"), "{}", p[0]);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let p = problems(
            "[dhcp]\ndns_servers = [\"nope\"]\nunknown_hosts = \"drop\"\n[[hosts]]\nmac = \"zz\"\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn tftp_section_gets_defaults_and_a_root_relative_to_the_file() {
        let config = check("[tftp]\nroot = \"dist\"\n").unwrap();
        let tftp = config.tftp.expect("[tftp] was given");
        assert_eq!(tftp.root, PathBuf::from("/etc/sixboot/dist"));
        assert_eq!(tftp.listen, vec!["[::]:69".parse().unwrap()]);
        assert_eq!(tftp.max_block_size, 1468);
        assert_eq!(tftp.max_window_size, 16);
        assert_eq!(tftp.timeout, std::time::Duration::from_secs(1));
    }

    #[test]
    fn tftp_limits_are_read_and_checked_against_their_rfc_ranges() {
        let config = check(
            "[tftp]\nroot = \"/srv/tftp\"\nlisten = [\"[2001:db8:1::1]:69\"]\n\
             max_block_size = 8192\nmax_window_size = 4\ntimeout_secs = 3\nretries = 2\n",
        )
        .unwrap();
        let tftp = config.tftp.unwrap();
        assert_eq!(tftp.max_block_size, 8192);
        assert_eq!(tftp.max_window_size, 4);
        assert_eq!(tftp.timeout, std::time::Duration::from_secs(3));
        assert_eq!(tftp.retries, 2);

        let p = problems(
            "[tftp]\nroot = \"/srv/tftp\"\nmax_block_size = 70000\nmax_window_size = 0\n\
             timeout_secs = 300\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].contains(":3:") && p[0].contains("tftp.max_block_size"),
            "{}",
            p[0]
        );
        assert!(p[0].contains("8 to 65464"), "{}", p[0]);
        assert!(p[1].contains("tftp.max_window_size"), "{}", p[1]);
        assert!(p[2].contains("tftp.timeout_secs"), "{}", p[2]);
    }

    #[test]
    fn tftp_without_root_or_with_a_bad_listen_address_is_rejected() {
        let p = problems("[tftp]\nlisten = [\"2001:db8::1:69\"]\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("tftp.listen[0]") && p[0].contains("[2001:db8:1::1]:69"));
        assert!(p[1].contains("tftp.root"), "{}", p[1]);
    }

    #[test]
    fn tls_listen_and_certificate_come_together() {
        let p = problems("[http]\ntls_listen = [\"[::1]:443\"]\n");
        assert!(
            p[0].contains("http.tls_listen") && p[0].contains(":2:"),
            "{p:?}"
        );
        let p = problems("[http]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
        assert!(p[0].contains("http.tls_listen"), "{p:?}");
        let config = check(
            "[http]\ntls_listen = [\"[::1]:443\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.http.tls_listen.len(), 1);
        assert_eq!(config.http.tls.unwrap().0, Path::new("/etc/sixboot/c.pem"));
    }

    #[test]
    fn prefix_contains_only_its_addresses() {
        let p = Prefix {
            address: "2001:db8:1::".parse().unwrap(),
            len: 64,
        };
        assert!(p.contains(&"2001:db8:1::ffff".parse().unwrap()));
        assert!(!p.contains(&"2001:db8:2::1".parse().unwrap()));
    }
}

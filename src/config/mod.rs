//! The boot server's configuration: one TOML file for RA, DHCPv6, HTTP, TFTP and hosts.
//!
//! Two layers, as dora's `libs/config` has them: [`raw`] mirrors the file (serde,
//! unknown fields denied, spans kept); [`validate`] turns it into a [`Config`] the rest
//! of the server can trust and returns every [`Problem`] at once, each with the file,
//! line, column and field that caused it. One module per section does that section's
//! checks (`server`, [`ra`], [`dhcp`], [`boot`], [`http`], [`tftp`], [`hosts`],
//! [`inventory`] with `[api]`);
//! checks that need several sections live where the later section is validated. A
//! [`Severity::Error`] rejects the file; a [`Severity::Warning`] is kept in
//! [`Config::warnings`]. All of this is pure; the one file read is [`Config::load`], in
//! `load.rs`.

pub mod boot;
pub mod dhcp;
pub mod hosts;
pub mod http;
pub mod installers;
pub mod inventory;
mod load;
mod problem;
pub mod ra;
pub mod raw;
pub mod tftp;
mod url;
mod validator;

use core::net::Ipv6Addr;
use std::fmt;
use std::path::{Path, PathBuf};

pub use boot::BootConfig;
pub use dhcp::{DhcpConfig, RelayMatch, Subnet, UnknownHosts};
pub use hosts::Host;
pub use http::HttpConfig;
pub use installers::{FamilyTemplates, InstallersConfig};
pub use inventory::{ApiConfig, InventoryBackend, InventoryConfig, PostgresConfig};
pub use problem::{ConfigError, Problem, Severity};
pub use ra::{RaConfig, RaPrefix};
pub use tftp::TftpConfig;
pub use url::check_url;

use crate::mac::Mac;
use raw::RawConfig;
use validator::Validator;

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
    /// Installer families: the default one and template files per family.
    pub installers: InstallersConfig,
    pub inventory: InventoryConfig,
    pub api: ApiConfig,
    /// What validation found risky but not fatal (every entry a [`Severity::Warning`]);
    /// `config check` prints them and `boot-server` logs them at start-up.
    pub warnings: Vec<Problem>,
}

impl Config {
    /// The host with this MAC, if the operator listed it.
    pub fn host(&self, mac: &Mac) -> Option<&Host> {
        self.hosts.iter().find(|host| host.mac == *mac)
    }

    /// Parses and validates config text; `path` only names it in messages and anchors
    /// relative paths. `Err` when there is at least one error; it lists the warnings
    /// too. `Ok` carries the warnings in [`Config::warnings`].
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                let v = Validator::new(path, text);
                let (line, column) = err
                    .span()
                    .map(|span| v.line_col(span.start))
                    .unwrap_or((1, 1));
                return Err(ConfigError {
                    problems: vec![Problem {
                        severity: Severity::Error,
                        path: path.to_owned(),
                        line,
                        column,
                        field: "(syntax)".into(),
                        message: err.message().trim().to_owned(),
                    }],
                });
            }
        };
        let (mut config, problems) = validate(path, text, &raw);
        if problems.iter().any(Problem::is_error) {
            Err(ConfigError { problems })
        } else {
            config.warnings = problems;
            Ok(config)
        }
    }
}

/// Validates a parsed file section by section. Returns the config as far as it could
/// be built and every problem found, errors and warnings, in the order of the sections; the config is only usable when no problem is a [`Severity::Error`].
/// `path` and `text` turn spans into file:line:column.
pub fn validate(path: &Path, text: &str, raw: &RawConfig) -> (Config, Vec<Problem>) {
    let mut v = Validator::new(path, text);
    let interfaces: Vec<String> = raw
        .server
        .interfaces
        .iter()
        .map(|i| i.get_ref().clone())
        .collect();
    let state_dir = raw.server.state_dir.as_ref().map_or_else(
        || PathBuf::from("/var/lib/sixboot"),
        |dir| v.relative(dir.get_ref()),
    );
    let ra = ra::validate(&mut v, &raw.ra, &interfaces);
    let dhcp = dhcp::validate(&mut v, &raw.dhcp);
    let boot = boot::validate(&mut v, &raw.boot, &ra, raw.ra.managed.as_ref(), &dhcp);
    let http = http::validate(&mut v, &raw.http);
    let tftp = raw.tftp.as_ref().and_then(|t| tftp::validate(&mut v, t));
    let installers = installers::validate(&mut v, raw);
    let hosts = hosts::validate(&mut v, &raw.hosts, &dhcp, &installers);
    installers::warn_about_routes(&mut v, raw, &ra, &dhcp, &hosts);
    let inventory = inventory::validate(&mut v, &raw.inventory);
    let api = inventory::validate_api(&raw.api, !http.tls_listen.is_empty());
    let config = Config {
        path: v.path().to_owned(),
        interfaces,
        state_dir,
        ra,
        dhcp,
        boot,
        http,
        tftp,
        hosts,
        installers,
        inventory,
        api,
        warnings: Vec::new(),
    };
    (config, v.problems)
}

#[cfg(test)]
mod tests;

//! The TOML file as written: serde structs that mirror it one to one.
//!
//! Nothing here is trusted. Every field that validation may reject is `Spanned`, so
//! that an error can name the line it came from. Unknown fields are errors: a typo in
//! a boot server's config should stop it, not be ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::dhcpv6::class::Cpu;

/// A spanned string: an address, prefix, MAC, URL or path as written.
pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub ra: RawRa,
    #[serde(default)]
    pub dhcp: RawDhcp,
    #[serde(default)]
    pub boot: RawBoot,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub tftp: Option<RawTftp>,
    #[serde(default)]
    pub hosts: Vec<RawHost>,
    /// `[installers.NAME]`: template files of an installer family.
    #[serde(default)]
    pub installers: BTreeMap<Spanned<String>, RawInstaller>,
    #[serde(default)]
    pub inventory: RawInventory,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub monitor: RawMonitor,
}

/// `[monitor]`: when a host needs attention.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// Minutes from an install's start (address, TFTP or script) to "stuck".
    pub stuck_after_mins: Option<Spanned<u32>>,
    /// Two script fetches at most this many minutes apart are a possible loop.
    pub loop_window_mins: Option<Spanned<u32>>,
    /// Count into `/metrics` (default true).
    pub metrics: Option<bool>,
}

/// `[inventory]`: where hosts, install flags and boot events are stored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    /// `"file"` (default) or `"postgres"`.
    pub backend: Option<Text>,
    /// PostgreSQL connection URL (or libpq key=value string) without the password.
    pub url: Option<Text>,
    /// File holding the database password.
    pub password_file: Option<Text>,
    /// PEM CA certificates for TLS to the database.
    pub ca_file: Option<Text>,
    /// This server's name in boot events (default: the host name).
    pub server_name: Option<Text>,
}

/// `[api]`: the JSON API under `/api/v1`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub enabled: Option<bool>,
    pub require_tls: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Interfaces that RA and DHCPv6 run on.
    #[serde(default)]
    pub interfaces: Vec<Text>,
    /// Where leases, the server DUID and host state live.
    pub state_dir: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRa {
    #[serde(default)]
    pub enabled: bool,
    pub managed: Option<Spanned<bool>>,
    pub other: Option<bool>,
    pub min_interval_secs: Option<Spanned<u32>>,
    pub max_interval_secs: Option<Spanned<u32>>,
    pub router_lifetime_secs: Option<Spanned<u32>>,
    pub hop_limit: Option<u8>,
    #[serde(default)]
    pub prefixes: Vec<RawRaPrefix>,
    /// Advertise the DHCPv6 DNS servers and search list in the RA too (RFC 8106).
    #[serde(default)]
    pub rdnss: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRaPrefix {
    pub prefix: Text,
    pub on_link: Option<bool>,
    pub autonomous: Option<Spanned<bool>>,
    pub valid_lifetime_secs: Option<Spanned<u32>>,
    pub preferred_lifetime_secs: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDhcp {
    pub preferred_lifetime_secs: Option<Spanned<u32>>,
    pub valid_lifetime_secs: Option<Spanned<u32>>,
    pub t1_secs: Option<Spanned<u32>>,
    pub t2_secs: Option<Spanned<u32>>,
    #[serde(default)]
    pub dns_servers: Vec<Text>,
    #[serde(default)]
    pub domain_search: Vec<Text>,
    /// `"pool"` (default) or `"ignore"`.
    pub unknown_hosts: Option<Text>,
    pub rapid_commit: Option<bool>,
    #[serde(default)]
    pub subnets: Vec<RawSubnet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubnet {
    pub prefix: Text,
    pub pool_start: Option<Text>,
    pub pool_end: Option<Text>,
    /// The interface that serves this subnet directly (clients on-link).
    pub interface: Option<Text>,
    /// Relays whose Relay-Forw messages come from this subnet's link.
    #[serde(default)]
    pub relays: Vec<Spanned<RawRelay>>,
}

/// `[[dhcp.subnets.relays]]`: a relay layer matches when every field given equals it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    /// The Relay-Forw's link-address as the relay writes it (may be link-local).
    pub link_address: Option<Text>,
    /// The Interface-ID option (18) as text, byte for byte.
    pub interface_id: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoot {
    /// URL handed to iPXE; `{mac}` is replaced by the host's MAC.
    pub ipxe_script_url: Option<Text>,
    /// The older name of `[boot.pxe] x86_64`.
    pub efi_url: Option<Text>,
    /// The older name of `[boot.http] x86_64`.
    pub http_boot_url: Option<Text>,
    /// Option 60 (boot-file parameters), sent to iPXE and to clients that ask.
    #[serde(default)]
    pub bootfile_params: Vec<Text>,
    /// User classes (option 15) that mark a client as iPXE; default `["iPXE"]`.
    pub ipxe_user_classes: Option<Vec<Text>>,
    /// Boot files for firmware PXE, by architecture.
    pub pxe: Option<RawArchFiles>,
    /// Boot files for UEFI HTTP Boot, by architecture.
    pub http: Option<RawArchFiles>,
}

/// `[boot.pxe]` and `[boot.http]`: one URL per architecture (keys: `Cpu::key`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArchFiles {
    pub x86_bios: Option<Text>,
    pub ia32: Option<Text>,
    pub x86_64: Option<Text>,
    pub arm32: Option<Text>,
    pub arm64: Option<Text>,
    pub riscv32: Option<Text>,
    pub riscv64: Option<Text>,
    pub loongarch64: Option<Text>,
}

impl RawArchFiles {
    /// Every key with its value, in `Cpu::ALL` order.
    pub fn entries(&self) -> [(Cpu, Option<&Text>); 8] {
        [
            (Cpu::X86Bios, self.x86_bios.as_ref()),
            (Cpu::Ia32, self.ia32.as_ref()),
            (Cpu::X86_64, self.x86_64.as_ref()),
            (Cpu::Arm32, self.arm32.as_ref()),
            (Cpu::Arm64, self.arm64.as_ref()),
            (Cpu::RiscV32, self.riscv32.as_ref()),
            (Cpu::RiscV64, self.riscv64.as_ref()),
            (Cpu::LoongArch64, self.loongarch64.as_ref()),
        ]
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    #[serde(default)]
    pub listen: Vec<Text>,
    /// The base URL hosts reach this server at, used in templates (`{{ base_url }}`).
    pub base_url: Option<Text>,
    pub script_template: Option<Text>,
    pub kickstart_template: Option<Text>,
    /// The installer family of hosts that name none (default `"anaconda"`).
    pub installer: Option<Text>,
    /// Directory served under `/files/`.
    pub files_root: Option<Text>,
    pub header_timeout_secs: Option<u32>,
    pub max_header_bytes: Option<u32>,
    pub tls_cert: Option<Text>,
    pub tls_key: Option<Text>,
    /// Addresses that serve HTTPS with `tls_cert`/`tls_key` (`listen` stays plain HTTP).
    #[serde(default)]
    pub tls_listen: Vec<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTftp {
    #[serde(default)]
    pub listen: Vec<Text>,
    pub root: Option<Text>,
    /// Largest blksize granted (RFC 2348), 8 to 65464.
    pub max_block_size: Option<Spanned<u32>>,
    /// Largest windowsize granted (RFC 7440), 1 to 64.
    pub max_window_size: Option<Spanned<u32>>,
    /// Seconds to wait for an ACK when the client does not ask, 1 to 255 (RFC 2349).
    pub timeout_secs: Option<Spanned<u32>>,
    /// Retransmissions before a transfer gives up.
    pub retries: Option<Spanned<u32>>,
    /// Transfers running at once; requests beyond get "server busy".
    pub max_transfers: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub mac: Text,
    pub name: Option<Text>,
    pub address: Option<Text>,
    #[serde(default)]
    pub install: bool,
    /// The installer family this host runs (default: `http.installer`).
    pub installer: Option<Text>,
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    /// `[hosts.bmc]`: the host's BMC (Redfish).
    pub bmc: Option<RawBmc>,
}

/// `[hosts.bmc]`: how to reach a host's BMC. Every field but `url` is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBmc {
    pub url: Text,
    pub username: Option<Text>,
    pub password_file: Option<Text>,
    /// Never accepted: present only to say so with a clear message.
    pub password: Option<Text>,
    pub verify_tls: Option<bool>,
    pub ca_file: Option<Text>,
    /// `"pxe"` (default) or `"uefi-http"`.
    pub boot: Option<Text>,
    pub system: Option<Text>,
    pub timeout_secs: Option<Spanned<u32>>,
}

/// `[installers.NAME]`: the templates of one installer family. For a built-in family
/// either may be left out (the built-in one is used); a family of your own needs both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstaller {
    pub script_template: Option<Text>,
    pub answer_template: Option<Text>,
}

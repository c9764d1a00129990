//! Out-of-band control of a host through its BMC, over Redfish (DMTF DSP0266): a
//! one-time network boot override, power on/off/cycle, and the status behind them.
//!
//! - [`BmcSpec`] is how a host's BMC is reached (`[hosts.bmc]` in the config, `bmc` in
//!   the inventory): URL, user, a *password file* (the password itself is never in the
//!   config, the inventory or a log), TLS verification, the boot path to request.
//! - [`redfish`] is pure: the serde types of the few resources used, the request bodies,
//!   the choice of reset type and the reading of Redfish error bodies.
//! - [`client`] is the shell: HTTPS (ureq + rustls) with a timeout on every request,
//!   basic authentication, and the steps (`find_system`, `set_boot_once`, `reset`), each
//!   failing with a [`BmcError`] that names the BMC, the step and the BMC's message.

pub mod client;
pub mod redfish;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{Bmc, System};
pub use redfish::{BootPath, PowerAction};

/// The default time a BMC has to answer one request (connect, send, receive).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// How to reach a host's BMC. Stored with the host (the inventory keeps it as JSON /
/// `jsonb`); the password is referenced by file, never held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcSpec {
    /// `https://[2001:db8:ff::10]` (scheme, host and optional port; `http` only for labs).
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the password (its first line), read at each use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Check the BMC's certificate (default on).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub verify_tls: bool,
    /// PEM CA certificates to check it against instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The one-time boot target to request.
    #[serde(default, skip_serializing_if = "BootPath::is_default")]
    pub boot: BootPath,
    /// Which `ComputerSystem`: its `Id`, `Name`, `UUID` or `@odata.id` path; needed
    /// only when the BMC manages several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Seconds each request may take (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl BmcSpec {
    /// A BMC at `url` with the defaults (TLS verified, PXE, 20 s per request).
    pub fn new(url: &str) -> BmcSpec {
        BmcSpec {
            url: url.to_owned(),
            username: None,
            password_file: None,
            verify_tls: true,
            ca_file: None,
            boot: BootPath::Pxe,
            system: None,
            timeout_secs: None,
        }
    }

    /// The time each request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout_secs
            .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(u64::from(s)))
    }

    /// Checks the URL: `http` or `https`, a host (IPv6 in brackets), nothing after the
    /// authority but `/`. The Redfish paths are absolute from there.
    pub fn check_url(url: &str) -> Result<(), String> {
        crate::config::check_url(url)?;
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        if !matches!(scheme, "http" | "https") {
            return Err(format!("`{url}`: a BMC is reached over https (or http)"));
        }
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        if !path.is_empty() && path != "/" {
            return Err(format!(
                "`{url}` has a path; give only scheme://host[:port] (Redfish starts at /redfish/v1)"
            ));
        }
        Ok(())
    }
}

/// One step of a BMC conversation, for messages: what it was for and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `read the service root`, `find the system`, `set the boot override`, …
    pub what: &'static str,
    /// `GET /redfish/v1/Systems`
    pub request: String,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.what, self.request)
    }
}

/// Why a BMC step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("no answer within {seconds} s ({phase}); is the BMC up and reachable from here?")]
    Timeout { phase: String, seconds: u64 },
    #[error("cannot connect: {0}")]
    Unreachable(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(
        "HTTP 401 Unauthorized{}; check username and password_file",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Unauthorized { message: Option<String> },
    #[error("HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        status: u16,
        message: Option<String>,
    },
    #[error("the answer is not the Redfish resource expected: {0}")]
    BadResponse(String),
    #[error("no ComputerSystem `{wanted}`; the BMC has: {}", list(available))]
    UnknownSystem {
        wanted: String,
        available: Vec<String>,
    },
    #[error(
        "the BMC manages {} systems ({}); set `system` to one of them",
        available.len(),
        list(available)
    )]
    WhichSystem { available: Vec<String> },
    #[error(
        "boot override target {wanted} is not supported; the BMC supports: {}",
        list(supported)
    )]
    UnsupportedTarget {
        wanted: String,
        supported: Vec<String>,
    },
    #[error(
        "none of the reset types {} is supported; the BMC supports: {}",
        wanted.join(", "),
        list(supported)
    )]
    UnsupportedReset {
        wanted: Vec<String>,
        supported: Vec<String>,
    },
    #[error("the system has no #ComputerSystem.Reset action")]
    NoResetAction,
    #[error("{0}")]
    Credentials(String),
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// A failed BMC step: `BMC https://[…]: set the boot override (PATCH /redfish/v1/…):
/// HTTP 400: <the BMC's message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BMC {bmc}: {step}: {problem}")]
pub struct BmcError {
    pub bmc: String,
    pub step: Step,
    pub problem: Problem,
}

//! The boot server's HTTP half: per-host iPXE scripts, boot files, kickstarts and the
//! install-once flag, `/metrics` and `/status`, and the inventory API.
//!
//! Routes ([`routes`] for the boot path, [`pages`] for the pages, [`api`] for
//! `/api/v1`):
//! - `GET /ipxe/ipxe-{mac}.cfg`: the host's script (404 if unknown or not marked for
//!   install, so iPXE exits and the machine boots from its disk);
//! - `GET|HEAD /files/{path}`: files beneath `http.files_root` (Range, ETag,
//!   Last-Modified, `sendfile`);
//! - `GET /ks/{mac}/{token}`: the host's kickstart (404 unless marked for install and
//!   `token` is its current install token);
//! - `GET|POST /done/{mac}/{token}`: the installer's `%post` turns the install flag
//!   off (404 without the current token);
//! - `GET /metrics` (Prometheus text), `GET /status`, `/status.json` and
//!   `/status/host/{mac}` (the status pages, [`status`]);
//! - `/api/v1/…`: JSON, bearer tokens (see [`api`]).
//!
//! The MAC may be written as iPXE sends `${net0/mac}` in a URL (`52%3A54%3A…`), with
//! colons, hyphens, or none, in any case.
//!
//! Host state is read from the inventory's in-memory snapshot
//! ([`crate::inventory::Live::snapshot`]) and changed only through the inventory's
//! writer, so a request costs no file or database access. [`serve`] is the edge (in
//! [`runtime`]): the caller binds the listeners, so tests bind loopback port 0 and the
//! boot server binds `http.listen`. HTTP/1.1 is handled here with httparse for the
//! head; [`conn`] owns reading, writing and every timeout.

pub mod api;
pub mod conn;
pub mod files;
pub mod metrics;
mod pages;
pub mod request;
mod response;
mod routes;
mod runtime;
pub mod status;
#[cfg_attr(not(feature = "https"), path = "tls_off.rs")]
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::installer::Catalog;
use crate::inventory::{Host, Live};
use crate::mac::Mac;
use crate::metrics::Metrics;
use files::FilesRoot;
use metrics::Route;
use request::Request;
pub(crate) use response::{Body, Download, Response};
pub use runtime::{bind, serve, serve_reloadable, serve_with_tls};

/// Limits that keep one client from starving the others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The request head (and the idle time between keep-alive requests) must arrive
    /// within this time.
    pub header_timeout: Duration,
    /// The request head may be at most this long (431 otherwise).
    pub max_header_bytes: usize,
    /// At most this many header fields (431 otherwise).
    pub max_headers: usize,
    /// Each write of a response must make progress within this time.
    pub send_timeout: Duration,
    /// Connections beyond this wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long shutdown waits for responses in flight.
    pub shutdown_grace: Duration,
    /// Threads serving HTTP, each with its own runtime; default: one per CPU.
    pub workers: usize,
}

impl Limits {
    /// The limits a config asks for.
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(u64::from(config.http.header_timeout_secs.max(1))),
            max_header_bytes: config.http.max_header_bytes.max(1024) as usize,
            max_headers: 64,
            send_timeout: Duration::from_secs(30),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(5),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A host's template context for its current install and its script once rendered,
/// reused while the host's definition, install flag and token are the same.
type PreparedCache = Mutex<HashMap<Mac, (Arc<Host>, Arc<routes::Prepared>)>>;

/// Everything the HTTP server needs, built once from a validated config.
pub struct App {
    pub limits: Limits,
    /// Every service's counters (shared with the DHCPv6, RA and TFTP halves, and with
    /// the `App`s that replace this one on reload, so counters go on).
    pub metrics: Arc<Metrics>,
    /// When a host counts as stuck or looping (`/metrics`, `/status`): `[monitor]`.
    watch: crate::inventory::Watch,
    inventory: Arc<Live>,
    templates: Catalog,
    prepared: PreparedCache,
    /// The status pages' name order and search texts (per inventory generation) and
    /// the `View` of the latest snapshot.
    status_cache: Mutex<status::StatusCache>,
    /// The config's `dhcp.subnets` prefixes: API-added addresses must be inside one.
    subnets: Vec<crate::config::Prefix>,
    api: crate::config::ApiConfig,
    files_root: Option<FilesRoot>,
    tls: Option<tls::Acceptor>,
    /// The x86-64 UEFI HTTP Boot URL, for a BMC's `HttpBootUri` (API `install?reboot=1`).
    http_boot_uri: Option<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("limits", &self.limits)
            .field("n_hosts", &self.inventory.snapshot().len())
            .finish_non_exhaustive()
    }
}

/// Every problem that would stop the HTTP server from starting with this config:
/// templates that do not compile, fail to render for a host, or render a script that
/// fails the lint; a missing files root. `sixboot config check` prints these.
pub fn check(config: &Config) -> Vec<String> {
    check_report(config).problems
}

/// What [`check_report`] finds: `problems` stop start-up, `warnings` (the script lint's
/// warnings, once per template line with its hosts, and [`tls_warnings`]) do not.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// [`check`] plus the script lint's warnings, rendering every host once.
pub fn check_report(config: &Config) -> CheckReport {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if config.http.base_url.is_none()
        && config
            .http
            .listen
            .first()
            .is_some_and(|a| a.ip().is_unspecified())
    {
        problems.push(format!(
            "http.base_url is not set and http.listen[0] ({}) is a wildcard: set base_url to \
             the URL hosts reach this server at, e.g. http://[2001:db8:1::1]",
            config.http.listen[0]
        ));
    }
    match Catalog::load(config) {
        Ok(templates) => {
            let report = templates.check_report(config);
            problems.extend(report.errors.iter().map(|e| e.to_string()));
            warnings.extend(report.warnings.iter().map(|w| w.to_string()));
        }
        Err(err) => problems.push(err.to_string()),
    }
    if let Some((cert, key)) = &config.http.tls {
        if let Err(err) = tls::load(cert, key).map(drop) {
            problems.push(format!("{err:#}"));
        }
    }
    if let Some(root) = &config.http.files_root {
        if let Err(err) = FilesRoot::open(root) {
            problems.push(format!(
                "http.files_root {}: {err}; create it or fix the path",
                root.display()
            ));
        }
    }
    warnings.extend(tls_warnings(config));
    CheckReport { problems, warnings }
}

/// What `config check` and the server's start-up warn about without failing: the TLS
/// certificate against the `https://` boot URLs ([`tls::check_urls`]).
pub fn tls_warnings(config: &Config) -> Vec<String> {
    let Some((cert, _)) = &config.http.tls else {
        return Vec::new();
    };
    // Every URL a boot client fetches from us: the iPXE script, UEFI HTTP Boot files
    // (PXE files are tftp://), and the base of the URLs templates write.
    let mut labelled: Vec<(String, &str)> = Vec::new();
    if let Some(url) = &config.boot.ipxe_script_url {
        labelled.push(("boot.ipxe_script_url".to_owned(), url));
    }
    for (cpu, url) in &config.boot.http {
        labelled.push((format!("boot.http.{cpu}"), url));
    }
    if let Some(url) = &config.http.base_url {
        labelled.push(("http.base_url".to_owned(), url));
    }
    let urls: Vec<(&str, &str)> = labelled.iter().map(|(f, u)| (f.as_str(), *u)).collect();
    tls::check_urls(cert, &urls)
}

impl App {
    /// Builds the server state from a validated config and opens its inventory
    /// ([`crate::inventory::open`]).
    pub fn from_config(config: &Config) -> anyhow::Result<App> {
        let inventory = Arc::new(crate::inventory::open(config)?);
        App::new(config, inventory)
    }

    /// Builds the server state from a validated config over a running inventory:
    /// loads and checks every template against every config host, opens the files
    /// root.
    pub fn new(config: &Config, inventory: Arc<Live>) -> anyhow::Result<App> {
        let templates = Catalog::load(config)?;
        let report = templates.check_report(config);
        // Lint warnings never stop start-up (iPXE runs those scripts); say them once.
        for warning in &report.warnings {
            tracing::warn!("{warning}");
        }
        let mut errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
        errors.extend(
            check(config)
                .into_iter()
                .filter(|p| p.starts_with("http.base_url")),
        );
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::bail!(
                "{} template problem{} in {}; nothing is served until they are fixed:\n{}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                config.path.display(),
                list.join("\n")
            );
        }
        let files_root = match &config.http.files_root {
            Some(root) => Some(
                FilesRoot::open(root)
                    .with_context(|| format!("cannot open http.files_root {}", root.display()))?,
            ),
            None => None,
        };
        Ok(App {
            limits: Limits::from_config(config),
            metrics: Arc::new(Metrics::for_config(config)),
            watch: config.monitor.watch(),
            inventory,
            templates,
            prepared: Mutex::new(HashMap::new()),
            status_cache: Mutex::default(),
            subnets: config.dhcp.subnets.iter().map(|s| s.prefix).collect(),
            api: config.api.clone(),
            files_root,
            tls: match &config.http.tls {
                Some((cert, key)) => Some(tls::load(cert, key)?),
                None => None,
            },
            http_boot_uri: config
                .boot
                .file(
                    crate::dhcpv6::class::BootMethod::Http,
                    crate::dhcpv6::class::Cpu::X86_64,
                )
                .map(str::to_owned),
        })
    }

    /// Keeps counting in `previous`'s metrics: the `App` built from a reloaded config
    /// replaces `previous` without resetting `/metrics`.
    pub fn with_metrics_of(mut self, previous: &App) -> App {
        self.metrics = previous.metrics.clone();
        self
    }

    /// Serves `metrics` on `/metrics` and counts HTTP in it: the one [`Metrics`] the
    /// DHCPv6, RA and TFTP halves of the same process count in.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> App {
        self.metrics = metrics;
        self
    }

    /// The inventory this server reads and changes.
    pub fn inventory(&self) -> &Arc<Live> {
        &self.inventory
    }

    /// Answers one request. Never fails: errors become 4xx/5xx responses.
    pub(crate) async fn handle(&self, req: &Request, peer: SocketAddr) -> (Route, Response) {
        let path = req.path.as_str();
        if let Some(rest) = path.strip_prefix("/ipxe/") {
            return (Route::Script, self.script(req, rest, peer).await);
        }
        if let Some(rest) = path.strip_prefix("/files/") {
            return (Route::Files, self.file(req, rest, peer).await);
        }
        if let Some(rest) = path.strip_prefix("/ks/") {
            return (Route::Kickstart, self.kickstart(req, rest, peer).await);
        }
        if let Some(rest) = path.strip_prefix("/done/") {
            return (Route::Done, self.done(req, rest, peer).await);
        }
        if let Some(rest) = path.strip_prefix("/status/host/") {
            return (Route::Status, self.status_host(req, rest).await);
        }
        if path == "/api" || path.starts_with("/api/") {
            return (Route::Api, self.api(req, peer).await);
        }
        match path {
            "/metrics" => (Route::Metrics, self.metrics_page(req).await),
            "/status" | "/" => (Route::Status, self.status_page(req).await),
            "/status.json" => (Route::Status, self.status_json(req).await),
            _ => (Route::Other, Response::error(404)),
        }
    }
}

//! The boot server's HTTP half: per-host iPXE scripts, boot files, kickstarts and the
//! install-once flag, plus `/metrics` and `/status`.
//!
//! Routes:
//! - `GET /ipxe/ipxe-{mac}.cfg`: the host's script (404 if unknown or not marked for
//!   install, so iPXE exits and the machine boots from its disk);
//! - `GET|HEAD /files/{path}`: files beneath `http.files_root` (Range, ETag,
//!   Last-Modified, `sendfile`);
//! - `GET /ks/{mac}`: the host's kickstart (404 unless marked for install);
//! - `GET|POST /done/{mac}`: the installer's `%post` turns the install flag off;
//! - `GET /metrics` (Prometheus text) and `GET /status` (HTML).
//!
//! The MAC may be written as iPXE sends `${net0/mac}` in a URL (`52%3A54%3A…`), with
//! colons, hyphens, or none, in any case.
//!
//! [`serve`] is the edge: the caller binds the listeners, so tests bind loopback port 0
//! and the boot server binds `http.listen`. HTTP/1.1 is handled here with httparse for
//! the head; [`conn`] owns reading, writing and every timeout.

pub mod conn;
pub mod files;
pub mod metrics;
pub mod request;
pub mod tls;

use std::collections::HashMap;
use std::fmt::Write;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::{Config, Host};
use crate::hoststate::{HostRecord, HostStates, Stage};
use crate::installer::{Catalog, PreparedInstall};
use crate::mac::Mac;
use files::{FilesRoot, RangeRequest, Validators};
use metrics::{Metrics, Route};
use request::{Method, Request};

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

/// Extra text for `/metrics`, from another part of the boot server (DHCPv6 leases).
pub type MetricsSource = Box<dyn Fn(&mut String) + Send + Sync>;

/// Everything the HTTP server needs, built once from a validated config.
pub struct App {
    pub limits: Limits,
    pub metrics: Metrics,
    states: Arc<HostStates>,
    templates: Catalog,
    hosts: HashMap<Mac, Host>,
    /// Each host's template context, built once.
    prepared: HashMap<Mac, PreparedInstall>,
    /// Host names by fixed address, to say whose boot a file download is part of.
    hosts_by_address: HashMap<IpAddr, Mac>,
    files_root: Option<FilesRoot>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    extra_metrics: Vec<MetricsSource>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("limits", &self.limits)
            .field("n_hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

/// Every problem that would stop the HTTP server from starting with this config:
/// templates that do not compile, fail to render for a host, or render a script that
/// fails the lint; a missing files root. `sixboot config check` prints these.
pub fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
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
        Ok(templates) => problems.extend(templates.check(config).iter().map(|e| e.to_string())),
        Err(err) => problems.push(err.to_string()),
    }
    if let Some((cert, key)) = &config.http.tls {
        if let Err(err) = tls::load(cert, key) {
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
    problems
}

impl App {
    /// Builds the server state from a validated config: loads and checks every
    /// template against every host, opens the files root and the host state.
    pub fn from_config(config: &Config) -> anyhow::Result<App> {
        let templates = Catalog::load(config)?;
        for warning in templates.warnings(config) {
            tracing::warn!("{warning}");
        }
        let mut errors: Vec<String> = templates
            .check(config)
            .iter()
            .map(|e| e.to_string())
            .collect();
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
        std::fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "cannot create server.state_dir {}; create it or point state_dir elsewhere",
                config.state_dir.display()
            )
        })?;
        let states = HostStates::open(config)?;
        Ok(App {
            limits: Limits::from_config(config),
            metrics: Metrics::default(),
            states: Arc::new(states),
            prepared: config
                .hosts
                .iter()
                .map(|h| (h.mac, templates.prepare(h)))
                .collect(),
            templates,
            hosts: config.hosts.iter().map(|h| (h.mac, h.clone())).collect(),
            hosts_by_address: config
                .hosts
                .iter()
                .filter_map(|h| h.address.map(|a| (IpAddr::V6(a), h.mac)))
                .collect(),
            files_root,
            tls: match &config.http.tls {
                Some((cert, key)) => Some(tls::load(cert, key)?),
                None => None,
            },
            extra_metrics: Vec::new(),
        })
    }

    /// Adds text to `/metrics` (the DHCPv6 half's lease gauges, say).
    pub fn with_metrics_source(mut self, source: MetricsSource) -> App {
        self.extra_metrics.push(source);
        self
    }

    /// The persisted host state this server reads and changes.
    pub fn host_states(&self) -> &HostStates {
        &self.states
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
        match path {
            "/metrics" => (
                Route::Metrics,
                only_get(req).unwrap_or_else(|| self.metrics_page()),
            ),
            "/status" | "/" => (
                Route::Status,
                only_get(req).unwrap_or_else(|| self.status_page()),
            ),
            _ => (Route::Other, Response::error(404)),
        }
    }

    async fn script(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let decoded = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
        let Some(mac) = decoded
            .strip_prefix("ipxe-")
            .and_then(|r| r.strip_suffix(".cfg"))
            .and_then(|m| m.parse::<Mac>().ok())
        else {
            return Response::error(404);
        };
        let (Some(host), Some(prepared), Some(state)) = (
            self.hosts.get(&mac),
            self.prepared.get(&mac),
            self.states.get(&mac),
        ) else {
            tracing::info!(target: "sixboot::boot", stage = "script", %mac, %peer, "unknown host: 404, it boots from its disk");
            return Response::error(404);
        };
        if !state.install {
            tracing::info!(target: "sixboot::boot", stage = "local-disk", %mac, host = %host.name, %peer, "not marked for install: 404, it boots from its disk");
            if req.method == Method::Get {
                self.record(mac, &state, Stage::LocalDisk, None).await;
            }
            return Response::error(404);
        }
        match self.templates.script_prepared(prepared) {
            Ok(text) => {
                tracing::info!(target: "sixboot::boot", stage = "script", %mac, host = %host.name, %peer, bytes = text.len(), "script served");
                if req.method == Method::Get {
                    self.record(mac, &state, Stage::Script, None).await;
                }
                Response::text(200, "text/plain; charset=utf-8", text.into_bytes())
            }
            Err(err) => {
                // The start-up check rendered this host, so this cannot happen unless
                // a template depends on something that changed; never serve it.
                tracing::error!(%mac, error = %err, "script failed to render");
                Response::error(500)
            }
        }
    }

    async fn kickstart(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let Some((mac, host)) = self.host_in_path(rest) else {
            return Response::error(404);
        };
        let (Some(prepared), Some(state)) = (self.prepared.get(&mac), self.states.get(&mac)) else {
            return Response::error(404);
        };
        if !state.install {
            return Response::error(404);
        }
        match self.templates.answer_prepared(prepared) {
            Ok(text) => {
                tracing::info!(target: "sixboot::boot", stage = "kickstart", %mac, host = %host.name, %peer, bytes = text.len(), "kickstart served");
                if req.method == Method::Get {
                    self.record(mac, &state, Stage::Kickstart, None).await;
                }
                Response::text(200, "text/plain; charset=utf-8", text.into_bytes())
            }
            Err(err) => {
                tracing::error!(%mac, error = %err, "kickstart failed to render");
                Response::error(500)
            }
        }
    }

    async fn done(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
        if !matches!(req.method, Method::Get | Method::Post | Method::Put) {
            return Response::error(405).with_header("Allow", "GET, POST, PUT".into());
        }
        let Some((mac, host)) = self.host_in_path(rest) else {
            return Response::error(404);
        };
        let states = self.states.clone();
        let now = SystemTime::now();
        let result =
            tokio::task::spawn_blocking(move || states.record_stage(&mac, Stage::Done, None, now))
                .await;
        match result {
            Ok(Ok(_)) => {
                tracing::info!(target: "sixboot::boot", stage = "done", %mac, host = %host.name, %peer, "install done: the next boot goes to disk");
                Response::text(200, "text/plain; charset=utf-8", b"ok\n".to_vec())
            }
            Ok(Err(err)) => {
                tracing::error!(%mac, error = %err, "cannot save the install flag");
                Response::error(500)
            }
            Err(err) => {
                tracing::error!(%mac, error = %err, "state task failed");
                Response::error(500)
            }
        }
    }

    async fn file(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let Some(root) = &self.files_root else {
            return Response::error(404);
        };
        let relative = match files::clean_path(rest) {
            Ok(relative) => relative,
            Err(err) => {
                tracing::warn!(%peer, path = %req.path, error = %err, "refused a file path");
                return Response::error(400);
            }
        };
        let (file, meta) = match root.open_beneath(&relative) {
            Ok(found) => found,
            Err(err) => {
                tracing::debug!(%peer, path = %relative.display(), error = %err, "no such file");
                return Response::error(404);
            }
        };
        let validators = Validators::of(&meta);
        let mut response = Response::new(304);
        response.headers.push(("ETag", validators.etag.clone()));
        response
            .headers
            .push(("Last-Modified", validators.last_modified.clone()));
        response.headers.push(("Accept-Ranges", "bytes".into()));
        if validators.not_modified(
            req.if_none_match.as_deref(),
            req.if_modified_since.as_deref(),
        ) {
            return response;
        }
        let len = meta.len();
        let range = match (&req.range, &req.if_range) {
            (Some(range), Some(if_range)) if !validators.if_range_matches(if_range) => {
                let _ = range;
                RangeRequest::Full
            }
            (Some(range), _) => files::parse_range(range, len),
            (None, _) => RangeRequest::Full,
        };
        let (status, start, count) = match range {
            RangeRequest::Full => (200, 0, len),
            RangeRequest::Partial { start, end } => {
                response
                    .headers
                    .push(("Content-Range", format!("bytes {start}-{end}/{len}")));
                (206, start, end - start + 1)
            }
            RangeRequest::Unsatisfiable => {
                response.status = 416;
                response
                    .headers
                    .push(("Content-Range", format!("bytes */{len}")));
                response.body = Body::Bytes(Vec::new());
                return response;
            }
        };
        let host = self
            .hosts_by_address
            .get(&peer.ip().to_canonical())
            .and_then(|mac| self.hosts.get(mac));
        let path = relative.display().to_string();
        if let (Some(host), Method::Get) = (host, &req.method) {
            if let Some(state) = self.states.get(&host.mac) {
                self.record(host.mac, &state, Stage::Files, Some(&path))
                    .await;
            }
        }
        response.status = status;
        response.content_type = "application/octet-stream";
        response.body = Body::File {
            file,
            start,
            len: count,
            download: Download {
                path,
                host: host.map(|h| h.name.clone()),
                peer,
            },
        };
        response
    }

    fn host_in_path(&self, rest: &str) -> Option<(Mac, &Host)> {
        let decoded = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
        let mac: Mac = decoded.trim_end_matches('/').parse().ok()?;
        self.hosts.get(&mac).map(|h| (mac, h))
    }

    /// Saves a boot stage off the async threads (it may fsync); a failure is logged,
    /// never shown to the client, whose boot goes on.
    async fn record(&self, mac: Mac, current: &HostRecord, stage: Stage, detail: Option<&str>) {
        if current.stage == stage && current.detail.as_deref() == detail {
            return;
        }
        let states = self.states.clone();
        let detail = detail.map(str::to_owned);
        let now = SystemTime::now();
        let result = tokio::task::spawn_blocking(move || {
            states.record_stage(&mac, stage, detail.as_deref(), now)
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(%mac, error = %err, "cannot save the boot stage"),
            Err(err) => tracing::error!(%mac, error = %err, "state task failed"),
        }
    }

    fn metrics_page(&self) -> Response {
        let mut out = String::with_capacity(4096);
        self.metrics.render(&self.states.all(), &mut out);
        for source in &self.extra_metrics {
            source(&mut out);
        }
        Response::text(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            out.into_bytes(),
        )
    }

    fn status_page(&self) -> Response {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sixboot status</title>\
             <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style>\
             </head><body>\n<h1>sixboot hosts</h1>\n<table>\n\
             <tr><th>name</th><th>MAC</th><th>address</th><th>install</th><th>last stage</th><th>since</th></tr>\n",
        );
        let mut hosts: Vec<&Host> = self.hosts.values().collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        for host in hosts {
            let Some(record) = self.states.get(&host.mac) else {
                continue;
            };
            let since = if record.stage_at == 0 {
                "-".to_owned()
            } else {
                httpdate::fmt_http_date(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(record.stage_at),
                )
            };
            let stage = match &record.detail {
                Some(detail) => format!("{} ({detail})", record.stage.as_str()),
                None => record.stage.as_str().to_owned(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape_html(&host.name),
                host.mac,
                host.address.map(|a| a.to_string()).unwrap_or_default(),
                if record.install { "yes" } else { "no" },
                escape_html(&stage),
                since
            );
        }
        let _ = writeln!(
            out,
            "</table>\n<p>{} active download(s); <a href=\"/metrics\">metrics</a></p>\n</body></html>",
            self.metrics.active_downloads.load(Relaxed)
        );
        Response::text(200, "text/html; charset=utf-8", out.into_bytes())
    }
}

fn only_get(req: &Request) -> Option<Response> {
    match req.method {
        Method::Get | Method::Head => None,
        _ => Some(Response::error(405).with_header("Allow", "GET, HEAD".into())),
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who a file goes to, for the log line written when it has been sent.
#[derive(Debug)]
pub(crate) struct Download {
    path: String,
    host: Option<String>,
    peer: SocketAddr,
}

#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    File {
        file: std::fs::File,
        start: u64,
        len: u64,
        download: Download,
    },
}

/// A response before it is written.
#[derive(Debug)]
pub(crate) struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Body,
    close: bool,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
        }
    }

    fn text(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            content_type,
            body: Body::Bytes(body),
            ..Response::new(status)
        }
    }

    /// A short plain-text error page.
    fn error(status: u16) -> Response {
        let body = format!("{} {}\n", status, reason(status)).into_bytes();
        Response::text(status, "text/plain; charset=utf-8", body)
    }

    fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    /// The status line and header fields.
    fn head(&self, now: SystemTime) -> String {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nServer: sixboot\r\nDate: {}\r\n",
            self.status,
            reason(self.status),
            files::http_date(now)
        );
        let len = match &self.body {
            Body::Empty => None,
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::File { len, .. } => Some(*len),
        };
        if let Some(len) = len {
            let _ = write!(
                head,
                "Content-Type: {}\r\nContent-Length: {len}\r\n",
                self.content_type
            );
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if self.close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Binds every `http.listen` address (an IPv6 wildcard only for IPv6, so that an IPv4
/// wildcard can be listed beside it).
pub fn bind(addresses: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for address in addresses {
        let domain = socket2::Domain::for_address(*address);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        if address.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket
            .bind(&(*address).into())
            .and_then(|()| socket.listen(1024))
            .with_context(|| format!("cannot listen on http.listen {address}"))?;
        listeners.push(TcpListener::from_std(socket.into())?);
    }
    Ok(listeners)
}

/// Serves HTTP on listeners the caller has bound until `shutdown` completes; then
/// stops accepting, lets responses in flight finish for at most
/// `limits.shutdown_grace`, and returns. A failing connection is logged and the
/// server goes on.
pub async fn serve(
    app: Arc<App>,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with_tls(app, listeners, Vec::new(), shutdown).await
}

/// [`serve`] with HTTPS on `tls_listeners` (bound from `http.tls_listen`); needs a
/// config with `tls_cert` and `tls_key`.
pub async fn serve_with_tls(
    app: Arc<App>,
    listeners: Vec<TcpListener>,
    tls_listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    if !tls_listeners.is_empty() && app.tls.is_none() {
        anyhow::bail!("HTTPS listeners given but the config has no tls_cert/tls_key");
    }
    // One current-thread runtime per worker thread, each accepting from every
    // listener, like nginx's worker processes: a connection stays on the thread that
    // accepted it, with no hand-offs between threads. Under CPU contention this served
    // about twice the requests/s of one work-stealing runtime for the same CPU time.
    let mut all = Vec::new();
    for (listener, is_tls) in listeners
        .into_iter()
        .map(|l| (l, false))
        .chain(tls_listeners.into_iter().map(|l| (l, true)))
    {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, tls = is_tls, workers = app.limits.workers, "HTTP listening");
        }
        all.push((listener.into_std()?, is_tls));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let n_workers = app.limits.workers.max(1);
    let mut finished = Vec::new();
    for i in 0..n_workers {
        let mine = all
            .iter()
            .map(|(l, is_tls)| Ok((l.try_clone()?, *is_tls)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let (app, stop) = (app.clone(), stop_rx.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("sixboot-http-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|runtime| runtime.block_on(run_worker(app, mine, n_workers, stop)));
                let _ = done_tx.send(result);
            })
            .context("cannot start an HTTP worker thread")?;
        finished.push(done_rx);
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    for done in finished {
        match done.await {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("an HTTP worker thread died"),
        }
    }
    Ok(())
}

/// One worker: accept loops on its own runtime; returns when `stop` turns true and
/// its connections have finished (or the shutdown grace is over).
async fn run_worker(
    app: Arc<App>,
    listeners: Vec<(std::net::TcpListener, bool)>,
    n_workers: usize,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let max_connections = (app.limits.max_connections / n_workers).max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut accepts = tokio::task::JoinSet::new();
    for (listener, is_tls) in listeners {
        let listener = TcpListener::from_std(listener)?;
        accepts.spawn(accept_loop(
            app.clone(),
            listener,
            is_tls,
            stop.clone(),
            slots.clone(),
        ));
    }
    let mut stop = stop;
    let _ = stop.wait_for(|s| *s).await;
    while accepts.join_next().await.is_some() {}
    // Every connection holds a slot; getting them all back means all are done.
    let n_slots = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(app.limits.shutdown_grace, slots.acquire_many(n_slots))
        .await
        .is_err()
    {
        tracing::warn!(
            active = app.metrics.active_connections.load(Relaxed),
            "shutdown grace over; dropping connections still open"
        );
    }
    Ok(())
}

async fn accept_loop(
    app: Arc<App>,
    listener: TcpListener,
    is_tls: bool,
    mut stop: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
) {
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    app.metrics.connections_total.fetch_add(1, Relaxed);
                    app.metrics.active_connections.fetch_add(1, Relaxed);
                    match (&app.tls, is_tls) {
                        (Some(acceptor), true) => {
                            let handshake = tokio::time::timeout(
                                app.limits.header_timeout,
                                acceptor.accept(stream),
                            )
                            .await;
                            match handshake {
                                Ok(Ok(stream)) => {
                                    conn::serve_connection(&app, stream, peer, stop).await
                                }
                                Ok(Err(err)) => {
                                    tracing::debug!(%peer, error = %err, "TLS handshake failed")
                                }
                                Err(_) => {
                                    app.metrics.header_timeouts.fetch_add(1, Relaxed);
                                }
                            }
                        }
                        _ => conn::serve_connection(&app, stream, peer, stop).await,
                    }
                    app.metrics.active_connections.fetch_sub(1, Relaxed);
                    drop(permit);
                });
            }
            Err(err) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

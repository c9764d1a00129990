//! The boot path's routes: the per-host script, boot files, the kickstart and `/done`.
//!
//! Each reads the inventory's snapshot once; what it sees is recorded with
//! [`crate::inventory::Live::observe`] (no wait), and only `/done` waits for the
//! inventory's writer, since the installer must hear "ok" only once the flag is off
//! for good.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use super::files::{self, RangeRequest, Validators};
use super::request::{Method, Request};
use super::response::only_get;
use super::{App, Body, Download, Response};
use crate::installer::PreparedInstall;
use crate::inventory::timeline::BootImages;
use crate::inventory::{
    live::now_millis, Change, ChangeError, Host, Observation, Stage, StoreError,
};
use crate::mac::Mac;

/// A host's install as this server serves it, for one definition, install flag and
/// token: the template context, and the script rendered and linted on its first
/// request. Templates are pure functions of the context (no clock, no randomness), so
/// the script is the same bytes until one of those changes.
pub(super) struct Prepared {
    install: PreparedInstall,
    script: OnceLock<Result<ServedScript, String>>,
}

/// A rendered script and the kernel and initrd file names in it.
struct ServedScript {
    text: Vec<u8>,
    images: Arc<BootImages>,
}

/// `{mac}` or `{mac}/{token}` from the rest of a path, the MAC in any spelling.
fn mac_and_token(rest: &str) -> Option<(Mac, Option<String>)> {
    let decoded = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
    let trimmed = decoded.trim_end_matches('/');
    let (mac, token) = match trimmed.split_once('/') {
        Some((mac, token)) => (mac, Some(token.to_owned())),
        None => (trimmed, None),
    };
    Some((mac.parse().ok()?, token))
}

/// A template that rendered at start-up (config hosts) or when the host was added
/// (API hosts) failed now: it depends on something that changed since. Never serve
/// what failed.
fn render_failed(host: &Host, err: &str) {
    tracing::error!(mac = %host.spec.mac, error = %err, "template failed to render");
}

impl App {
    pub(super) fn observe(&self, mac: Mac, stage: Stage, detail: Option<String>, peer: SocketAddr) {
        self.inventory.observe(Observation {
            mac,
            stage,
            detail,
            at: now_millis(),
            peer: Some(peer.ip().to_canonical()),
        });
    }

    /// The host's template context for its current install, built once per change of
    /// what a template reads: the host's definition, install flag and token (a stage
    /// recorded gives the host a new record but the same script).
    fn prepared(&self, host: &Arc<Host>, token: &str) -> Arc<Prepared> {
        let mac = host.spec.mac;
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, prepared)) = cache.get_mut(&mac) {
            if Arc::ptr_eq(seen, host) {
                return prepared.clone();
            }
            if seen.spec == host.spec
                && seen.state.install == host.state.install
                && seen.state.token.as_deref() == Some(token)
            {
                *seen = host.clone();
                return prepared.clone();
            }
        }
        let config_host = host.spec.to_config_host(host.state.install);
        let prepared = Arc::new(Prepared {
            install: self.templates.prepare_install(&config_host, token),
            script: OnceLock::new(),
        });
        cache.insert(mac, (host.clone(), prepared.clone()));
        prepared
    }

    /// The host's kickstart (or other answer file), rendered per request.
    fn answer(&self, host: &Arc<Host>, token: &str) -> Response {
        let prepared = self.prepared(host, token);
        match self.templates.answer_prepared(&prepared.install) {
            Ok(text) => Response::text(200, "text/plain; charset=utf-8", text.into_bytes()),
            Err(err) => {
                render_failed(host, &err.to_string());
                Response::error(500)
            }
        }
    }

    /// The kernel and initrd file names of the script the host was last served (from
    /// the script cache), so that a download is recorded as the "kernel" or "initrd"
    /// stage.
    fn served_images(&self, mac: &Mac) -> Option<Arc<BootImages>> {
        let cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        let (_, prepared) = cache.get(mac)?;
        let script = prepared.script.get()?.as_ref().ok()?;
        Some(script.images.clone())
    }

    /// The host's script, rendered once per [`Prepared`]; `None` when the render failed
    /// (logged).
    fn script_of(&self, host: &Arc<Host>, token: &str) -> Option<Vec<u8>> {
        let prepared = self.prepared(host, token);
        let served = prepared.script.get_or_init(|| {
            self.templates
                .script_prepared(&prepared.install)
                .map(|text| ServedScript {
                    images: Arc::new(BootImages::of_script(text.as_bytes())),
                    text: text.into_bytes(),
                })
                .map_err(|err| err.to_string())
        });
        match served {
            Ok(script) => Some(script.text.clone()),
            Err(err) => {
                render_failed(host, err);
                None
            }
        }
    }

    pub(super) async fn script(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
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
        let inventory = self.inventory.snapshot();
        let Some(host) = inventory.get_arc(&mac) else {
            tracing::info!(target: "sixboot::boot", stage = "script", %mac, %peer, "unknown host: 404, it boots from its disk");
            return Response::error(404);
        };
        let (true, Some(token)) = (host.state.install, host.state.token.as_deref()) else {
            tracing::info!(target: "sixboot::boot", stage = "local-disk", %mac, host = %host.spec.name, %peer, "not marked for install: 404, it boots from its disk");
            if req.method == Method::Get {
                self.observe(mac, Stage::LocalDisk, None, peer);
            }
            return Response::error(404);
        };
        let Some(text) = self.script_of(host, token) else {
            return Response::error(500);
        };
        tracing::info!(target: "sixboot::boot", stage = "script", %mac, host = %host.spec.name, %peer, "script served");
        if req.method == Method::Get {
            self.observe(mac, Stage::Script, None, peer);
        }
        Response::text(200, "text/plain; charset=utf-8", text)
    }

    pub(super) async fn kickstart(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
        if let Some(refused) = only_get(req) {
            return refused;
        }
        let Some((mac, token)) = mac_and_token(rest) else {
            return Response::error(404);
        };
        let inventory = self.inventory.snapshot();
        let Some(host) = inventory.get_arc(&mac) else {
            return Response::error(404);
        };
        let current = host.state.token.as_deref().filter(|_| host.state.install);
        let Some(current) = current.filter(|c| token.as_deref() == Some(*c)) else {
            tracing::warn!(target: "sixboot::boot", stage = "kickstart", %mac, host = %host.spec.name, %peer, installing = host.state.install, "kickstart asked for without the current install token: 404");
            return Response::error(404);
        };
        let response = self.answer(host, current);
        if response.status == 200 {
            tracing::info!(target: "sixboot::boot", stage = "kickstart", %mac, host = %host.spec.name, %peer, "kickstart served");
            if req.method == Method::Get {
                self.observe(mac, Stage::Kickstart, None, peer);
            }
        }
        response
    }

    pub(super) async fn done(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
        if !matches!(req.method, Method::Get | Method::Post | Method::Put) {
            return Response::error(405).with_header("Allow", "GET, POST, PUT".into());
        }
        let Some((mac, token)) = mac_and_token(rest) else {
            return Response::error(404);
        };
        let name = self
            .inventory
            .snapshot()
            .get(&mac)
            .map(|h| h.spec.name.clone());
        let Some(name) = name else {
            return Response::error(404);
        };
        let Some(token) = token else {
            tracing::warn!(target: "sixboot::boot", stage = "done", %mac, host = %name, %peer, "/done without an install token: 404");
            return Response::error(404);
        };
        let change = Change::Done { mac, token };
        match self
            .inventory
            .apply(change, Some(peer.ip().to_canonical()))
            .await
        {
            Ok(_) => {
                tracing::info!(target: "sixboot::boot", stage = "done", %mac, host = %name, %peer, "install done: the next boot goes to disk");
                Response::text(200, "text/plain; charset=utf-8", b"ok\n".to_vec())
            }
            Err(StoreError::Change(
                err @ (ChangeError::WrongToken(_)
                | ChangeError::NotInstalling(_)
                | ChangeError::UnknownHost(_)),
            )) => {
                tracing::warn!(target: "sixboot::boot", stage = "done", %mac, host = %name, %peer, reason = %err, "/done refused: 404");
                Response::error(404)
            }
            Err(err) => {
                tracing::error!(%mac, error = %err, "cannot save the install flag");
                Response::error(500)
            }
        }
    }

    pub(super) async fn file(&self, req: &Request, rest: &str, peer: SocketAddr) -> Response {
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
        let inventory = self.inventory.snapshot();
        let host = match peer.ip().to_canonical() {
            IpAddr::V6(address) => inventory
                .by_address(&address)
                .or_else(|| Mac::from_eui64_address(&address).and_then(|mac| inventory.get(&mac))),
            IpAddr::V4(_) => None,
        };
        let path = relative.display().to_string();
        if let (Some(host), Method::Get) = (host, &req.method) {
            // The kernel and initrd its script names are stages of their own.
            let stage = self
                .served_images(&host.spec.mac)
                .map_or(Stage::Files, |images| images.stage_of(&path));
            self.observe(host.spec.mac, stage, Some(path.clone()), peer);
        }
        response.status = status;
        response.content_type = "application/octet-stream";
        response.body = Body::File {
            file,
            start,
            len: count,
            download: Download {
                path,
                host: host.map(|h| h.spec.name.clone()),
                peer,
            },
        };
        response
    }
}

//! The inventory API under `/api/v1`: JSON in and out, bearer tokens.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/hosts` | every host |
//! | `POST /api/v1/hosts` | add a host: `{"mac", "name", "address"?, "vars"?, "install"?}` → 201 |
//! | `GET /api/v1/hosts/{mac}` | one host |
//! | `PUT /api/v1/hosts/{mac}` | replace its definition: `{"name", "address"?, "vars"?, "version"?}` |
//! | `DELETE /api/v1/hosts/{mac}` | remove it (`?version=N` to guard) |
//! | `POST /api/v1/hosts/{mac}/install` | mark it for install (a new install token) |
//! | `DELETE /api/v1/hosts/{mac}/install` | clear the flag |
//! | `GET /api/v1/hosts/{mac}/boots` | its boot events, last `?boots=N` boots (default 10) |
//!
//! Every request needs `Authorization: Bearer sixboot_…` (a token from `sixboot api
//! token create`, checked against its stored SHA-256; revoked tokens fail): 401
//! otherwise. With `[api] require_tls` (the default when `http.tls_listen` is set) a
//! request over plain HTTP gets 403. Errors are `{"error": {"field": …, "message": …}}`
//! with 400 (bad input), 404 (no such host), 409 (taken MAC/name/address, stale
//! version, config host), 503 (the inventory database is unreachable). A change is
//! checked whole before anything is written, so a refused request changes nothing.

// A refused request returns its response as the error: one per request, so the size
// of the `Err` costs nothing worth a box.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::request::{Method, Request};
use super::{App, Response};
use crate::inventory::{
    check_spec, check_templates, token, BootEvent, Change, ChangeError, Host, HostSpec, Origin,
    StoreError,
};
use crate::mac::Mac;

/// A host as the API shows it.
#[derive(Debug, Serialize)]
pub struct HostView {
    pub mac: Mac,
    pub name: String,
    pub address: Option<Ipv6Addr>,
    pub vars: BTreeMap<String, toml::Value>,
    /// The installer family; absent: the config's default family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    pub origin: Origin,
    /// The definition's version, for `PUT` and `DELETE` guards (0 for config hosts).
    pub version: u64,
    pub install: bool,
    pub stage: &'static str,
    /// ms since the epoch; 0 when never.
    pub stage_at: u64,
    pub detail: Option<String>,
    pub boot: u64,
    /// Its BMC (URL, user, the password *file*), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bmc: Option<crate::bmc::BmcSpec>,
}

impl HostView {
    pub fn of(host: &Host) -> HostView {
        HostView {
            mac: host.spec.mac,
            name: host.spec.name.clone(),
            address: host.spec.address,
            vars: host.spec.vars.clone(),
            installer: host.spec.installer.clone(),
            origin: host.origin,
            version: host.version,
            install: host.state.install,
            stage: host.state.stage.as_str(),
            stage_at: host.state.stage_at,
            detail: host.state.detail.clone(),
            boot: host.state.boot,
            bmc: host.spec.bmc.as_deref().cloned(),
        }
    }
}

/// The body of `POST /hosts` and `PUT /hosts/{mac}`; strings, so that a bad value is
/// reported by field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostBody {
    mac: Option<String>,
    name: Option<String>,
    address: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, serde_json::Value>,
    /// The installer family (`anaconda`, `debian-installer`, or one the config defines).
    installer: Option<String>,
    #[serde(default)]
    install: bool,
    version: Option<u64>,
    /// How to reach its BMC (`password_file` by reference only).
    #[serde(default)]
    bmc: Option<crate::bmc::BmcSpec>,
}

/// A JSON error naming the field.
fn error(status: u16, field: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "field": field, "message": message } });
    json(status, &body)
}

fn json(status: u16, value: &impl Serialize) -> Response {
    let mut body = serde_json::to_vec_pretty(value).expect("API values always serialize");
    body.push(b'\n');
    Response::text(status, "application/json", body)
}

fn store_error(err: &StoreError) -> Response {
    match err {
        StoreError::Change(change) => change_error(change),
        StoreError::Conflict { .. } => error(409, "version", &err.to_string()),
        StoreError::Unavailable(_) => error(503, "", &err.to_string()),
        other => {
            tracing::error!(error = %other, "API request failed in the store");
            error(500, "", "the inventory store failed; see the server log")
        }
    }
}

fn change_error(err: &ChangeError) -> Response {
    let message = err.to_string();
    match err {
        ChangeError::Invalid { field, .. } => error(400, field, &message),
        ChangeError::Conflict { field, .. } => error(409, field, &message),
        ChangeError::UnknownHost(_) => error(404, "mac", &message),
        ChangeError::ConfigHost(_) => error(409, "mac", &message),
        ChangeError::Version { .. } => error(409, "version", &message),
        ChangeError::NotInstalling(_) | ChangeError::WrongToken(_) => {
            error(409, "install", &message)
        }
    }
}

/// `vars` from JSON into template variables (no nulls: TOML has none).
fn vars_of(
    vars: BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, toml::Value>, Response> {
    vars.into_iter()
        .map(|(key, value)| {
            if value.is_null() {
                return Err(error(
                    400,
                    &format!("vars.{key}"),
                    "null is not a value; leave the key out",
                ));
            }
            serde_json::from_value::<toml::Value>(value)
                .map(|v| (key.clone(), v))
                .map_err(|e| error(400, &format!("vars.{key}"), &e.to_string()))
        })
        .collect()
}

/// The field a serde_json error is about, when it says.
fn serde_field(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split('`')
        .nth(1)
        .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
        .unwrap_or("body")
        .to_owned()
}

impl App {
    pub(super) async fn api(&self, req: &Request, peer: SocketAddr) -> Response {
        if !self.api.enabled {
            return Response::error(404);
        }
        let path = req.path.trim_end_matches('/');
        let Some(rest) = path.strip_prefix("/api/v1") else {
            return error(404, "", "the API is under /api/v1");
        };
        if self.api.require_tls && !req.tls {
            return error(
                403,
                "",
                "the API is served over HTTPS only ([api] require_tls)",
            );
        }
        let who = match self.authenticate(req).await {
            Ok(name) => name,
            Err(response) => {
                tracing::warn!(%peer, path = %req.path, "API request without a valid token: 401");
                return response;
            }
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let response = match (&req.method, segments.as_slice()) {
            (Method::Get, ["hosts"]) => self.list_hosts(),
            (Method::Post, ["hosts"]) => self.create_host(req).await,
            (method, ["hosts", mac, tail @ ..]) => {
                let decoded = percent_encoding::percent_decode_str(mac).decode_utf8_lossy();
                match decoded.parse::<Mac>() {
                    Ok(mac) => self.host_route(req, method, mac, tail).await,
                    Err(err) => error(400, "mac", &err.to_string()),
                }
            }
            _ => error(404, "", "no such API route; see the README's API reference"),
        };
        if req.method != Method::Get {
            tracing::info!(target: "sixboot::api", token = %who, %peer, method = ?req.method, path = %req.path, status = response.status, "API change");
        }
        response
    }

    /// The name of the token the request carries, or the 401 to send.
    async fn authenticate(&self, req: &Request) -> Result<String, Response> {
        let unauthorized = || {
            error(
                401,
                "authorization",
                "send Authorization: Bearer TOKEN (sixboot api token create)",
            )
            .with_header("WWW-Authenticate", "Bearer".into())
        };
        let text = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthorized)?;
        let tokens = self
            .inventory
            .api_tokens()
            .await
            .map_err(|e| store_error(&e))?;
        token::check(&tokens, text)
            .map(|t| t.name.clone())
            .ok_or_else(unauthorized)
    }

    fn list_hosts(&self) -> Response {
        let inventory = self.inventory.snapshot();
        let hosts: Vec<HostView> = inventory
            .sorted_by_name()
            .into_iter()
            .map(HostView::of)
            .collect();
        json(200, &hosts)
    }

    /// Parses and checks a body into a definition (the MAC from the path for PUT).
    fn spec_of(
        &self,
        body: HostBody,
        path_mac: Option<Mac>,
    ) -> Result<(HostSpec, bool, Option<u64>), Response> {
        let mac = match (path_mac, body.mac.as_deref()) {
            (Some(mac), None) => mac,
            (Some(mac), Some(text)) => match text.parse::<Mac>() {
                Ok(given) if given == mac => mac,
                Ok(_) => {
                    return Err(error(
                        400,
                        "mac",
                        "differs from the MAC in the path; a host's MAC cannot change",
                    ))
                }
                Err(err) => return Err(error(400, "mac", &err.to_string())),
            },
            (None, Some(text)) => text
                .parse::<Mac>()
                .map_err(|e| error(400, "mac", &e.to_string()))?,
            (None, None) => return Err(error(400, "mac", "missing")),
        };
        let address =
            match body.address.as_deref() {
                None | Some("") => None,
                Some(text) => Some(text.parse::<Ipv6Addr>().map_err(|_| {
                    error(400, "address", &format!("`{text}` is not an IPv6 address"))
                })?),
            };
        let spec = HostSpec {
            mac,
            name: body.name.unwrap_or_else(|| mac.hyphenated()),
            address,
            vars: vars_of(body.vars)?,
            installer: body.installer.filter(|family| !family.is_empty()),
            bmc: body.bmc.map(Box::new),
        };
        check_spec(&spec, &self.subnets)
            .and_then(|()| check_templates(&self.templates, &spec))
            .map_err(|e| change_error(&e))?;
        Ok((spec, body.install, body.version))
    }

    fn body(req: &Request) -> Result<HostBody, Response> {
        serde_json::from_slice(&req.body).map_err(|e| error(400, &serde_field(&e), &e.to_string()))
    }

    async fn create_host(&self, req: &Request) -> Response {
        let body = match App::body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let (spec, install, _) = match self.spec_of(body, None) {
            Ok(parsed) => parsed,
            Err(response) => return response,
        };
        let change = Change::Create {
            spec,
            install,
            token: install.then(token::install_token),
        };
        match self.inventory.apply(change, None).await {
            Ok(applied) => match applied.host {
                Some(host) => json(201, &HostView::of(&host)),
                None => error(500, "", "created host missing"),
            },
            Err(err) => store_error(&err),
        }
    }

    async fn host_route(
        &self,
        req: &Request,
        method: &Method,
        mac: Mac,
        tail: &[&str],
    ) -> Response {
        let change = match (method, tail) {
            (Method::Get, []) => {
                return match self.inventory.snapshot().get(&mac) {
                    Some(host) => json(200, &HostView::of(host)),
                    None => error(404, "mac", &format!("no host with MAC {mac}")),
                };
            }
            (Method::Get, ["boots"]) => {
                if self.inventory.snapshot().get(&mac).is_none() {
                    return error(404, "mac", &format!("no host with MAC {mac}"));
                }
                let boots = query_number(&req.query, "boots")
                    .unwrap_or(10)
                    .clamp(1, 1000);
                self.inventory.flush().await;
                return match self.inventory.events(mac, boots).await {
                    Ok(events) => json(200, &BootsView { mac, events }),
                    Err(err) => store_error(&err),
                };
            }
            (Method::Put, []) => {
                let body = match App::body(req) {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                match self.spec_of(body, Some(mac)) {
                    Ok((spec, _, version)) => Change::Update {
                        spec,
                        expected_version: version,
                    },
                    Err(response) => return response,
                }
            }
            (Method::Delete, []) => Change::Remove {
                mac,
                expected_version: query_number(&req.query, "version"),
            },
            (Method::Post, ["install"]) if query_number(&req.query, "reboot") == Some(1) => {
                return self.install_and_reboot(mac).await;
            }
            (Method::Post, ["install"]) => Change::SetInstall {
                mac,
                install: true,
                token: Some(token::install_token()),
            },
            (Method::Delete, ["install"]) => Change::SetInstall {
                mac,
                install: false,
                token: None,
            },
            _ => return error(404, "", "no such API route; see the README's API reference"),
        };
        let removing = matches!(change, Change::Remove { .. });
        match self.inventory.apply(change, None).await {
            Ok(_) if removing => Response::new(204),
            Ok(applied) => match applied.host {
                Some(host) => json(200, &HostView::of(&host)),
                None => Response::new(204),
            },
            Err(err) => store_error(&err),
        }
    }
}

impl App {
    /// `POST /api/v1/hosts/{mac}/install?reboot=1`: the install flag on, then through
    /// the host's BMC a one-time network boot and a restart (`sixboot hosts install
    /// --reboot` without the wait: poll `/boots` for the stages). A failed BMC step
    /// answers 502 with the BMC's error, and the flag is put back as it was.
    async fn install_and_reboot(&self, mac: Mac) -> Response {
        let Some(host) = self.inventory.snapshot().get(&mac).cloned() else {
            return error(404, "mac", &format!("no host with MAC {mac}"));
        };
        let Some(spec) = host.spec.bmc.as_deref().cloned() else {
            return error(
                400,
                "bmc",
                "the host has no BMC; give it one (`bmc` in PUT, or [hosts.bmc])",
            );
        };
        // Local problems (password or CA file) before anything changes.
        let bmc = match crate::bmc::Bmc::connect(&spec) {
            Ok(bmc) => bmc,
            Err(err) => return error(500, "bmc", &err.to_string()),
        };
        let was_on = host.state.install;
        if !was_on {
            let change = Change::SetInstall {
                mac,
                install: true,
                token: Some(token::install_token()),
            };
            if let Err(err) = self.inventory.apply(change, None).await {
                return store_error(&err);
            }
        }
        let uri = self.http_boot_uri.clone();
        let steps = tokio::task::spawn_blocking(move || {
            let mut steps = Vec::new();
            let result = bmc.reboot_to_network(
                spec.system.as_deref(),
                spec.boot,
                uri.as_deref(),
                &mut |step| steps.push(step.to_string()),
            );
            result.map(|_| steps.clone()).map_err(|err| (err, steps))
        })
        .await;
        let failure = match steps {
            Ok(Ok(steps)) => {
                let host = self.inventory.snapshot().get(&mac).cloned();
                return match host {
                    Some(host) => json(
                        200,
                        &serde_json::json!({ "host": HostView::of(&host), "bmc": steps }),
                    ),
                    None => error(404, "mac", "the host was removed meanwhile"),
                };
            }
            Ok(Err((err, steps))) => (err.to_string(), steps),
            Err(join) => (format!("the BMC request stopped: {join}"), Vec::new()),
        };
        if !was_on {
            let undo = Change::SetInstall {
                mac,
                install: false,
                token: None,
            };
            if let Err(err) = self.inventory.apply(undo, None).await {
                tracing::error!(%mac, "cannot put the install flag back to off: {err}");
            }
        }
        let body = serde_json::json!({
            "error": { "field": "bmc", "message": failure.0 },
            "bmc": failure.1,
            "install": was_on,
        });
        json(502, &body)
    }
}

#[derive(Debug, Serialize)]
struct BootsView {
    mac: Mac,
    events: Vec<BootEvent>,
}

/// `name=N` from a query string.
fn query_number(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

//! `[inventory]`: where hosts, install flags and boot events are stored, and `[api]`:
//! the JSON API on the HTTP listeners.

use std::path::PathBuf;

use super::raw::{RawApi, RawInventory};
use super::validator::Validator;

/// Which store holds the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryBackend {
    /// `state_dir/hosts.json` and friends (the default; one server).
    File,
    /// A PostgreSQL database shared by every boot server.
    Postgres(PostgresConfig),
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A `postgres://` URL or a libpq `key=value` string, without the password.
    pub url: String,
    /// A file whose first line is the password (never inline in the config).
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates: when set, the connection is TLS (rustls) verified against
    /// them, whatever the URL's `sslmode`.
    pub ca_file: Option<PathBuf>,
}

/// `[inventory]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryConfig {
    pub backend: InventoryBackend,
    /// The name boot events carry for this server; default: the host name.
    pub server_name: Option<String>,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            backend: InventoryBackend::File,
            server_name: None,
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Serve `/api/v1` on the HTTP listeners (default on; every request needs a token).
    pub enabled: bool,
    /// Answer the API only over HTTPS; default on when `http.tls_listen` is set.
    pub require_tls: bool,
}

/// Validates `[inventory]`.
pub(super) fn validate(v: &mut Validator<'_>, raw: &RawInventory) -> InventoryConfig {
    let backend = match raw
        .backend
        .as_ref()
        .map(|b| (b.get_ref().as_str(), b.span()))
    {
        None | Some(("file", _)) => {
            for (name, set) in [
                ("url", raw.url.is_some()),
                ("password_file", raw.password_file.is_some()),
                ("ca_file", raw.ca_file.is_some()),
            ] {
                if set {
                    let span = raw.backend.as_ref().map_or(0..0, |b| b.span());
                    v.error(
                        span,
                        &format!("inventory.{name}"),
                        "only for backend = \"postgres\"; remove it or set the backend".into(),
                    );
                }
            }
            InventoryBackend::File
        }
        Some(("postgres", span)) => match &raw.url {
            Some(url) => {
                let text = url.get_ref();
                if text.contains("password=") || url_has_password(text) {
                    v.error(
                        url.span(),
                        "inventory.url",
                        "holds a password; put it in a file and name it in inventory.password_file"
                            .into(),
                    );
                }
                if let Err(err) = text.parse::<tokio_postgres::Config>() {
                    v.error(
                        url.span(),
                        "inventory.url",
                        format!(
                            "not a PostgreSQL connection string ({err}); e.g. \
                             postgres://sixboot@[2001:db8::5]/sixboot"
                        ),
                    );
                }
                InventoryBackend::Postgres(PostgresConfig {
                    url: text.clone(),
                    password_file: raw.password_file.as_ref().map(|p| v.relative(p.get_ref())),
                    ca_file: raw.ca_file.as_ref().map(|p| v.relative(p.get_ref())),
                })
            }
            None => {
                v.error(
                    span,
                    "inventory.url",
                    "backend = \"postgres\" needs url = \"postgres://USER@HOST/DB\"".into(),
                );
                InventoryBackend::File
            }
        },
        Some((other, span)) => {
            v.error(
                span,
                "inventory.backend",
                format!("`{other}` is not a backend: use \"file\" or \"postgres\""),
            );
            InventoryBackend::File
        }
    };
    InventoryConfig {
        backend,
        server_name: raw.server_name.as_ref().map(|n| n.get_ref().clone()),
    }
}

/// Whether a `postgres://user:password@…` URL carries a password.
fn url_has_password(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Validates `[api]`; `tls_listen` says whether the server has HTTPS listeners.
pub(super) fn validate_api(raw: &RawApi, tls_listen: bool) -> ApiConfig {
    ApiConfig {
        enabled: raw.enabled.unwrap_or(true),
        require_tls: raw.require_tls.unwrap_or(tls_listen),
    }
}

//! `[http]`: listeners, templates, the files root and HTTPS.

use core::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawHttp;
use super::validator::Validator;

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

const EXAMPLE: &str = "[2001:db8::1]:80";

/// Validates `[http]`; relative paths are taken from the config file's directory.
pub(super) fn validate(v: &mut Validator<'_>, h: &RawHttp) -> HttpConfig {
    let listen = v.socket_addresses(&h.listen, "http.listen", EXAMPLE);
    let tls_listen = v.socket_addresses(&h.tls_listen, "http.tls_listen", EXAMPLE);
    let tls = match (&h.tls_cert, &h.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some((v.relative(cert.get_ref()), v.relative(key.get_ref()))),
        (Some(t), None) | (None, Some(t)) => {
            v.error(
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
            .and_then(|u| v.url(u, "http.base_url"))
            .map(|u| u.trim_end_matches('/').to_owned()),
        script_template: h.script_template.as_ref().map(|p| v.relative(p.get_ref())),
        kickstart_template: h
            .kickstart_template
            .as_ref()
            .map(|p| v.relative(p.get_ref())),
        files_root: h.files_root.as_ref().map(|p| v.relative(p.get_ref())),
        header_timeout_secs: h.header_timeout_secs.unwrap_or(10),
        max_header_bytes: h.max_header_bytes.unwrap_or(16 * 1024),
        tls,
        tls_listen,
    };
    // HTTPS addresses and a certificate come together or not at all.
    if http.tls.is_some() == http.tls_listen.is_empty() {
        let span = h.tls_listen.first().map_or(0..0, |l| l.span());
        v.error(
            span,
            "http.tls_listen",
            "tls_listen needs tls_cert and tls_key (and they need tls_listen)".into(),
        );
    }
    http
}

//! Optional HTTPS (TLS 1.2 and 1.3) on `http.tls_listen`, served by the system's OpenSSL.
//!
//! iPXE verifies the server against the certificates built into the ROM
//! (`build-rom --trust CA.crt`, iPXE's `TRUST=`): give the boot server a certificate
//! chain issued by that CA whose `iPAddress` subjectAltName is the address in the
//! `https://[…]/` URL (iPXE's `x509_check_ipaddress` strips the brackets), or whose
//! dNSName is the host name. Files over TLS are copied through a 256 KiB buffer,
//! since `sendfile` cannot encrypt.
//!
//! Why OpenSSL and not rustls: stock iPXE (every release up to and including the
//! pinned commit, `tls_client_hello` in `src/net/tls.c`) puts the URI host into the
//! server_name extension, brackets included (`[2001:db8::1]`). RFC 6066 §3 forbids
//! literals there; the server may ignore the extension ("MAY use the information"),
//! which is what nginx and every OpenSSL server do. rustls 0.23 (up to 0.23.46, the
//! newest release) ignores an unbracketed address but answers anything else that is
//! not a valid DNS name with a fatal `illegal_parameter` alert, in
//! `server::hs::process_client_hello`, which both `ServerConnection` and the
//! `Acceptor`/`LazyConfigAcceptor` hook run before the application sees the hello, and
//! no `ServerConfig` field changes it. Its fix, `ServerConfig::invalid_sni_policy =
//! InvalidSniPolicy::IgnoreAll`, exists only in the 0.24 development line (0.24.0-dev.2,
//! on an alpha rustls-webpki, without a tokio-rustls release). Rewriting the
//! extension before rustls reads it cannot work: TLS 1.2's extended master secret and
//! Finished messages and TLS 1.3's key schedule hash the ClientHello bytes as the
//! client sent them, so a server that parsed other bytes derives other keys. When a
//! rustls release with `InvalidSniPolicy` has a tokio adapter, this module can go
//! back to rustls with `IgnoreAll`; `tests/http_tls.rs` says whether it still
//! holds.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;

use anyhow::Context;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{self, AlpnError, Ssl, SslAcceptor, SslMethod};
use openssl::x509::{X509Ref, X509};
use tokio::net::TcpStream;

use super::conn::{copy_file, Transport};

/// One HTTPS connection after its handshake.
pub type TlsStream = tokio_openssl::SslStream<TcpStream>;

/// ALPN protocol list in wire form (RFC 7301 §3.1): one length-prefixed name.
const ALPN_HTTP_1_1: &[u8] = b"\x08http/1.1";

/// The server side of TLS for one certificate chain and key, shared by every
/// connection on every worker.
#[derive(Clone)]
pub struct Acceptor {
    inner: SslAcceptor,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Runs the server handshake on `tcp`. Any server_name the client sends is
    /// ignored (one certificate is served whatever it says), so an IP literal,
    /// bracketed or not, or any other name completes like no extension at all.
    ///
    /// Errors: the handshake failed (protocol error, no common cipher suite, the
    /// peer closed); the caller bounds the time.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let ssl = Ssl::new(self.inner.context()).map_err(io::Error::other)?;
        let mut stream = TlsStream::new(ssl, tcp).map_err(io::Error::other)?;
        Pin::new(&mut stream)
            .accept()
            .await
            .map_err(|err| match err.into_io_error() {
                Ok(err) => err,
                Err(err) => io::Error::new(io::ErrorKind::InvalidData, err.to_string()),
            })?;
        Ok(stream)
    }
}

/// Loads a PEM certificate chain (leaf first) and private key (PKCS#8, PKCS#1 RSA or
/// SEC1 EC) into an acceptor: TLS 1.2 and 1.3 with Mozilla's "intermediate" cipher
/// suites, ALPN `http/1.1` when the client offers it.
///
/// Errors name the config field and file: unreadable file, no certificate in
/// `tls_cert`, no key in `tls_key`, a key that does not fit the certificate.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Acceptor> {
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read http.tls_cert {}", cert.display()))?;
    let chain = X509::stack_from_pem(&cert_pem)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| {
            format!(
                "cannot read certificates from http.tls_cert {}",
                cert.display()
            )
        })?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        anyhow::bail!(
            "http.tls_cert {} holds no PEM certificate (BEGIN CERTIFICATE)",
            cert.display()
        );
    };
    let key_pem = std::fs::read(key)
        .with_context(|| format!("cannot read http.tls_key {}", key.display()))?;
    let private_key = PKey::private_key_from_pem(&key_pem)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| {
            format!(
                "cannot read a private key from http.tls_key {} (PEM: BEGIN PRIVATE KEY, \
                 BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)",
                key.display()
            )
        })?;
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .context("cannot set up OpenSSL")?;
    builder.set_certificate(leaf)?;
    for intermediate in intermediates {
        builder.add_extra_chain_cert(intermediate.clone())?;
    }
    // OpenSSL compares the key with the leaf already in `set_private_key`.
    builder
        .set_private_key(&private_key)
        .and_then(|()| builder.check_private_key())
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| {
            format!(
                "http.tls_key {} does not fit http.tls_cert {}",
                key.display(),
                cert.display()
            )
        })?;
    builder.set_alpn_select_callback(|_, offered| {
        ssl::select_next_proto(ALPN_HTTP_1_1, offered).ok_or(AlpnError::NOACK)
    });
    Ok(Acceptor {
        inner: builder.build(),
    })
}

/// Warnings for the certificate chain in `http.tls_cert` against the `https://` URLs a
/// boot client will fetch (`(field, url)` pairs; other schemes are skipped). Nothing
/// here stops the server: a URL may point at another server.
///
/// - The leaf must cover each URL's host the way iPXE checks it (`x509_check_name` in
///   iPXE's `src/crypto/x509.c`): an `iPAddress` subjectAltName equal to the address
///   (iPXE strips the brackets with `sock_aton`), or a commonName or dNSName equal to
///   the host name (case-insensitive, `*.` matches one label). A name such as
///   `2001:db8::1` in the commonName or a dNSName does not match `[2001:db8::1]`.
/// - The chain should end with the self-signed CA: a ROM built with `--trust CA`
///   knows only that CA's fingerprint (iPXE's `TRUST=`), so when the server does not
///   send the CA, iPXE tries to fetch the issuer from `http://ca.ipxe.org/auto`.
///
/// An unreadable certificate gives no warning here: [`load`] reports it as an error.
pub fn check_urls(cert: &Path, urls: &[(&str, &str)]) -> Vec<String> {
    let chain = match std::fs::read(cert).map(|pem| X509::stack_from_pem(&pem)) {
        Ok(Ok(chain)) if !chain.is_empty() => chain,
        _ => return Vec::new(),
    };
    let mut warnings = Vec::new();
    let mut any_https = false;
    for (field, url) in urls {
        let Some(host) = https_host(url) else {
            continue;
        };
        any_https = true;
        if !covers(&chain[0], host) {
            warnings.push(format!(
                "http.tls_cert {} does not cover {host}, the host of {field} ({url}): iPXE will \
                 refuse it; issue the certificate with {}",
                cert.display(),
                match host_address(host) {
                    Some(address) => format!("subjectAltName = IP:{address}"),
                    None => format!("subjectAltName = DNS:{host}"),
                }
            ));
        }
    }
    let last = &chain[chain.len() - 1];
    let self_signed = last.issued(last) == openssl::x509::X509VerifyResult::OK;
    if any_https && !self_signed {
        warnings.push(format!(
            "http.tls_cert {} does not end with its CA certificate: a ROM built with \
             `build-rom --trust CA` can verify the chain only if the server sends that CA \
             (append it: cat server.crt ca.crt > server-chain.pem); otherwise iPXE tries to \
             fetch the issuer from ca.ipxe.org",
            cert.display()
        ));
    }
    warnings
}

/// The host of an `https://` URL as iPXE names it (brackets kept, no port, no
/// userinfo); `None` for other schemes.
fn https_host(url: &str) -> Option<&str> {
    let rest = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .map(|_| &url[8..])?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.find(']') {
        Some(end) if host_port.starts_with('[') => &host_port[..=end],
        _ => host_port.split(':').next().unwrap_or(host_port),
    };
    (!host.is_empty()).then_some(host)
}

/// The address in a URL host (`[2001:db8::1]`, `[fe80::1%25net0]`, `192.0.2.1`).
fn host_address(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.split('%').next().unwrap_or(bare).parse().ok()
}

/// Whether `cert` matches `host` by iPXE's rules (`x509_check_name`).
fn covers(cert: &X509Ref, host: &str) -> bool {
    let names_match = |pattern: &[u8]| {
        let pattern = String::from_utf8_lossy(pattern);
        match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix)),
            None => pattern.eq_ignore_ascii_case(host),
        }
    };
    let common_name = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .any(|entry| names_match(entry.data().as_slice()));
    let address = host_address(host);
    let alt_name = cert.subject_alt_names().is_some_and(|names| {
        names.iter().any(|name| {
            name.dnsname().is_some_and(|d| names_match(d.as_bytes()))
                || match (name.ipaddress(), address) {
                    (Some(bytes), Some(IpAddr::V6(a))) => bytes == a.octets(),
                    (Some(bytes), Some(IpAddr::V4(a))) => bytes == a.octets(),
                    _ => false,
                }
        })
    });
    common_name || alt_name
}

impl Transport for TlsStream {
    async fn send_file(
        &mut self,
        head: &[u8],
        file: &std::fs::File,
        start: u64,
        len: u64,
        stall: std::time::Duration,
    ) -> std::io::Result<u64> {
        copy_file(self, head, file, start, len, stall).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_host_is_what_ipxe_checks_the_certificate_against() {
        assert_eq!(
            https_host("https://[2001:db8::1]/ipxe/ipxe-{mac}.cfg"),
            Some("[2001:db8::1]")
        );
        assert_eq!(
            https_host("HTTPS://user:pw@[2001:db8::1]:8443?x"),
            Some("[2001:db8::1]")
        );
        assert_eq!(
            https_host("https://boot.example.com:443/"),
            Some("boot.example.com")
        );
        assert_eq!(https_host("https://192.0.2.1"), Some("192.0.2.1"));
        assert_eq!(https_host("http://[2001:db8::1]/"), None);
        assert_eq!(https_host("https:///x"), None);
    }

    #[test]
    fn host_address_strips_brackets_and_zone() {
        assert_eq!(
            host_address("[fe80::1%25net0]"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(
            host_address("192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(host_address("boot.example.com"), None);
    }

    #[test]
    fn names_match_by_ipxes_rules() {
        let cert = |names: &[&str], common_name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, common_name);
            let pem = params.self_signed(&key).unwrap().pem();
            X509::from_pem(pem.as_bytes()).unwrap()
        };
        let by_address = cert(&["2001:db8::1"], "x");
        assert!(covers(&by_address, "[2001:db8::1]"));
        assert!(covers(&by_address, "[2001:db8:0::1]"));
        assert!(!covers(&by_address, "[2001:db8::2]"));
        let wildcard = cert(&["*.example.com"], "x");
        assert!(covers(&wildcard, "boot.EXAMPLE.com"));
        assert!(!covers(&wildcard, "a.boot.example.com"));
        // A commonName is compared as text: iPXE's name keeps the brackets.
        let by_common_name = cert(&[], "2001:db8::1");
        assert!(!covers(&by_common_name, "[2001:db8::1]"));
        assert!(covers(&cert(&[], "[2001:db8::1]"), "[2001:db8::1]"));
    }
}

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
use std::path::Path;
use std::pin::Pin;

use anyhow::Context;
use openssl::pkey::PKey;
use openssl::ssl::{self, AlpnError, Ssl, SslAcceptor, SslMethod};
use openssl::x509::X509;
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

//! Optional HTTPS (rustls, ring provider, TLS 1.2 and 1.3) on `http.tls_listen`.
//!
//! iPXE verifies the server against the certificates built into the ROM
//! (`build-rom --trust CA.crt`, iPXE's `TRUST=`): give the boot server a certificate
//! chain issued by that CA, whose name or IP address matches the `https://` URL.
//! Files over TLS are copied through a 256 KiB buffer, since `sendfile` cannot
//! encrypt.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::conn::{copy_file, Transport};

/// Loads a PEM certificate chain and private key into an acceptor.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| {
            format!(
                "cannot read certificates from http.tls_cert {}",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "http.tls_cert {} holds no PEM certificate (BEGIN CERTIFICATE)",
            cert.display()
        );
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .with_context(|| {
            format!(
                "cannot read a private key from http.tls_key {}",
                key.display()
            )
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .with_context(|| {
            format!(
                "http.tls_key {} does not fit http.tls_cert {}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Transport for TlsStream<TcpStream> {
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

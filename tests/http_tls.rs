//! HTTPS on `http.tls_listen`: a real rustls client that trusts only the test's CA
//! fetches a script and a file; a key that does not fit the certificate stops start-up.

mod http_support;

use std::sync::Arc;

use http_support::*;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn write_certificate(lab: &Lab) -> CertificateDer<'static> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "::1".to_owned()]).unwrap();
    std::fs::write(lab.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        lab.path().join("key.pem"),
        certified.key_pair.serialize_pem(),
    )
    .unwrap();
    certified.cert.der().clone()
}

async fn https_get(addr: std::net::SocketAddr, ca: &CertificateDer<'static>, path: &str) -> Reply {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    // rustls reports a peer that closes without close_notify as an error; the
    // server sends close_notify, so read_to_end must end cleanly.
    tls.read_to_end(&mut out).await.unwrap();
    parse_reply(&out, false).0
}

#[tokio::test]
async fn serves_scripts_and_files_over_https_with_the_configured_certificate() {
    let lab =
        Lab::new("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls_listen = [\"[::1]:0\"]");
    let ca = write_certificate(&lab);
    let app = Arc::new(sixboot::http::App::from_config(&lab.config()).unwrap());
    let tls_listener = TcpListener::bind("[::1]:0").await.unwrap();
    let addr = tls_listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sixboot::http::serve_with_tls(
        app,
        Vec::new(),
        vec![tls_listener],
        async {
            let _ = stopped.await;
        },
    ));
    let script = https_get(addr, &ca, "/ipxe/ipxe-525400123456.cfg").await;
    assert_eq!(script.status, 200);
    assert!(script.text().starts_with("#!ipxe\n"));
    let kernel = https_get(addr, &ca, "/files/vmlinuz").await;
    assert_eq!(kernel.status, 200);
    assert_eq!(kernel.body, kernel_bytes());
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_key_that_does_not_fit_the_certificate_stops_start_up() {
    let lab =
        Lab::new("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ntls_listen = [\"[::1]:0\"]");
    write_certificate(&lab);
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(lab.path().join("key.pem"), other.serialize_pem()).unwrap();
    let err = sixboot::http::App::from_config(&lab.config()).unwrap_err();
    assert!(
        format!("{err:#}").contains("does not fit http.tls_cert"),
        "{err:#}"
    );
    std::fs::write(lab.path().join("cert.pem"), "not a certificate").unwrap();
    let problems = sixboot::http::check(&lab.config());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("holds no PEM certificate")),
        "{problems:?}"
    );
}

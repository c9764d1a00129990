//! HTTPS left out of this build: the `https` cargo feature (on by default) links the
//! system's OpenSSL (`tls.rs`). Without it the library still parses and checks configs,
//! and a config with `http.tls_cert` fails at [`load`] with a message saying how to get
//! a build that serves it. xtask and the test lab use the library this way, so they
//! compile before libssl-dev is installed.

use std::io;
use std::path::Path;

use tokio::net::TcpStream;

/// The stream a handshake would give; never produced, as no [`Acceptor`] exists.
pub type TlsStream = TcpStream;

/// No value exists: [`load`] always fails in this build.
#[derive(Clone, Debug)]
pub enum Acceptor {}

impl Acceptor {
    /// Unreachable (no `Acceptor` can be made); kept so the server compiles unchanged.
    pub async fn accept(&self, _tcp: TcpStream) -> io::Result<TlsStream> {
        match *self {}
    }
}

/// Always an error naming `http.tls_cert` and the missing feature.
pub fn load(cert: &Path, _key: &Path) -> anyhow::Result<Acceptor> {
    anyhow::bail!(
        "http.tls_cert {}: this sixboot was built without HTTPS (cargo feature `https`, on \
         by default); build it with default features, or remove http.tls_cert/tls_listen",
        cert.display()
    )
}

/// No certificate checks without OpenSSL: [`load`] already reports the config as an
/// error.
pub fn check_urls(_cert: &Path, _urls: &[(&str, &str)]) -> Vec<String> {
    Vec::new()
}

//! Shared by the `http_*` tests: a boot-server config in a temporary directory, the
//! HTTP server running in-process on loopback port 0, and a tiny raw HTTP/1.1 client
//! (raw, so that tests can send exactly the bytes a hostile client would).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sixboot::config::Config;
use sixboot::http::App;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const NODE1: &str = "52:54:00:12:34:56";
pub const CX3: &str = "00:02:c9:aa:bb:01";

/// A config directory: `files/`, `state/`, templates, `boot.toml`.
pub struct Lab {
    pub dir: tempfile::TempDir,
}

impl Lab {
    /// A lab whose config has `extra` appended to the `[http]` table.
    pub fn new(http_extra: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("files")).unwrap();
        std::fs::write(root.join("files/vmlinuz"), kernel_bytes()).unwrap();
        std::fs::write(root.join("files/initrd.img"), b"initrd").unwrap();
        std::fs::write(root.join("secret.txt"), b"top secret").unwrap();
        let text = format!(
            r#"[server]
state_dir = "state"

[http]
listen = ["[::1]:0"]
base_url = "http://[2001:db8:1::1]"
files_root = "files"
header_timeout_secs = 2
max_header_bytes = 4096
{http_extra}

[[hosts]]
mac = "{NODE1}"
name = "node1"
address = "::1"
install = true
[hosts.vars]
kernel_args = "console=ttyS0"

[[hosts]]
mac = "{CX3}"
name = "cx3-node"
install = false
"#
        );
        std::fs::write(root.join("boot.toml"), text).unwrap();
        Lab { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("boot.toml")
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path()).unwrap()
    }

    /// Starts the server on `[::1]:0` and `127.0.0.1:0`.
    pub async fn start(&self) -> Server {
        let app = Arc::new(App::from_config(&self.config()).unwrap());
        Server::start(app).await
    }
}

/// 3 MiB with a recognisable pattern, so that a wrong range shows up.
pub fn kernel_bytes() -> Vec<u8> {
    (0..3 * 1024 * 1024u32)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

pub struct Server {
    pub v6: SocketAddr,
    pub v4: SocketAddr,
    pub app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub async fn start(app: Arc<App>) -> Server {
        let v6 = TcpListener::bind("[::1]:0").await.unwrap();
        let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (v6_addr, v4_addr) = (v6.local_addr().unwrap(), v4.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sixboot::http::serve(app.clone(), vec![v6, v4], async {
            let _ = stopped.await;
        }));
        Server {
            v6: v6_addr,
            v4: v4_addr,
            app,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it, as the boot server does on SIGTERM.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes and reads until the server closes the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await
    .expect("server did not close the connection");
    out
}

/// Parses one response from the front of `bytes` (no chunked bodies: we send none).
/// `head_only`: a HEAD response has Content-Length but no body.
pub fn parse_reply(bytes: &[u8], head_only: bool) -> (Reply, usize) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(bytes)))
        + 4;
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = if head_only {
        0
    } else {
        reply
            .header("content-length")
            .map_or(bytes.len() - end, |l| l.parse().unwrap())
    };
    let body = bytes[end..end + len].to_vec();
    (Reply { body, ..reply }, end + len)
}

/// A request with `Connection: close` and extra header lines.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Reply {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let bytes = raw(addr, text.as_bytes()).await;
    parse_reply(&bytes, method == "HEAD").0
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}

/// The path of the kickstart URL (`inst.ks=…`) in a served script.
pub fn ks_path(script: &str) -> String {
    let url = script
        .split_whitespace()
        .find_map(|w| w.strip_prefix("inst.ks="))
        .unwrap_or_else(|| panic!("no inst.ks= in {script}"));
    let after_scheme = url.split_once("://").unwrap().1;
    after_scheme[after_scheme.find('/').unwrap()..].to_owned()
}

/// Polls `path` every 10 ms until it answers `status` (at most 5 s); how long it took.
pub async fn wait_for_status(addr: SocketAddr, path: &str, status: u16) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if get(addr, path).await.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{path} never answered {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

//! The TFTP server over loopback ([::1]) against real clients: curl, tftp-hpa and atftp
//! from Debian, plus a hand-driven UDP socket for the cases no client exposes (error
//! codes, a client that stops answering, duplicate requests).
//!
//! Each test runs its own server on a port the kernel picks, in a thread with its own
//! tokio runtime, and stops it in `Drop`.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sixboot::config::TftpConfig;
use sixboot::tftp::wire::{ErrorCode, Repr};
use sixboot_lab::netns::Namespace;

struct TestServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl TestServer {
    fn start(config: TftpConfig) -> TestServer {
        let socket = std::net::UdpSocket::bind("[::1]:0").expect("bind [::1]:0");
        socket.set_nonblocking(true).unwrap();
        let address = socket.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let socket = tokio::net::UdpSocket::from_std(socket).map_err(|e| e.to_string())?;
                sixboot::tftp::serve(&config, socket, async {
                    let _ = stop.await;
                })
                .await
                .map_err(|e| e.to_string())
            })
        });
        TestServer {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    fn port(&self) -> String {
        self.address.port().to_string()
    }

    fn url(&self, file: &str) -> String {
        format!("tftp://[::1]:{}/{file}", self.address.port())
    }

    /// Stops the server and returns how long `serve` took to return.
    fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("server thread panicked")
                .expect("serve failed");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// Deterministic pseudo-random bytes, so a wrong block shows up as a mismatch.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn root_with(files: &[(&str, usize)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (i, (name, len)) in files.iter().enumerate() {
        let path = root.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, pattern(*len, i as u64 + 7)).unwrap();
    }
    root
}

fn config(root: &Path) -> TftpConfig {
    TftpConfig {
        timeout: Duration::from_millis(200),
        retries: 2,
        ..TftpConfig::with_root(root.to_owned())
    }
}

/// Whether a client program (from Debian package `package`) is installed; a recorded skip
/// when not (a failure under CI, which installs it).
fn have(program: &str, package: &str) -> bool {
    sixboot_lab::need::program(program, package)
}

fn run(command: &mut Command) -> std::process::Output {
    let output = command.output().expect("run client");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn assert_same_file(got: &Path, want: &Path) {
    let got = std::fs::read(got).unwrap();
    let want = std::fs::read(want).unwrap();
    assert_eq!(got.len(), want.len(), "size differs");
    assert!(got == want, "content differs");
}

#[test]
fn curl_fetches_an_ipxe_sized_file_with_blksize_1468_and_tsize() {
    if !have("curl", "curl") {
        return;
    }
    let root = root_with(&[("ipxe.efi", 1_030_000)]);
    let server = TestServer::start(config(root.path()));
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("ipxe.efi");
    run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(["--tftp-blksize", "1468", "--output"])
        .arg(&got)
        .arg(server.url("ipxe.efi")));
    assert_same_file(&got, &root.path().join("ipxe.efi"));
}

/// `tftp -6 -m MODE ::1 PORT -c get REMOTE LOCAL` (tftp-hpa).
fn tftp_hpa_get(server: &TestServer, mode: &str, remote: &str, local: &Path) {
    let port = server.port();
    run(Command::new("timeout")
        .args([
            "30", "tftp", "-6", "-m", mode, "::1", &port, "-c", "get", remote,
        ])
        .arg(local));
}

#[test]
fn tftp_hpa_fetches_with_the_default_512_byte_blocks_and_a_leading_slash() {
    if !have("tftp", "tftp-hpa") {
        return;
    }
    let root = root_with(&[("efi/boot.bin", 200_000)]);
    let server = TestServer::start(config(root.path()));
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("boot.bin");
    tftp_hpa_get(&server, "binary", "/efi/boot.bin", &got);
    assert_same_file(&got, &root.path().join("efi/boot.bin"));
}

#[test]
fn tftp_hpa_in_netascii_mode_gets_the_text_back_with_its_own_line_ends() {
    if !have("tftp", "tftp-hpa") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // Long enough to span blocks after conversion; CR on its own tests the CR NUL rule.
    let text: String = (0..200)
        .map(|i| format!("line {i}\tbare cr\r here\n"))
        .collect();
    std::fs::write(root.path().join("motd.txt"), &text).unwrap();
    let server = TestServer::start(config(root.path()));
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("motd.txt");
    tftp_hpa_get(&server, "netascii", "motd.txt", &got);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), text);

    // tftp-hpa forgives a server that sends raw text, so check the wire too: LF goes out
    // as CR LF and a bare CR as CR NUL (RFC 764).
    let client = RawClient::new(server.address);
    let rrq = Repr::ReadRequest {
        filename: b"motd.txt",
        mode: sixboot::tftp::wire::Mode::NetAscii,
        options: Vec::new(),
    };
    client
        .socket
        .send_to(&rrq.to_bytes(), server.address)
        .unwrap();
    let mut wire = Vec::new();
    loop {
        let (bytes, from) = client.receive().expect("no DATA");
        let Ok(Repr::Data { block, data }) = Repr::parse_bytes(&bytes) else {
            panic!("expected DATA, got {bytes:?}");
        };
        wire.extend_from_slice(data);
        client
            .socket
            .send_to(&Repr::Ack { block }.to_bytes(), from)
            .unwrap();
        if data.len() < 512 {
            break;
        }
    }
    let expected = text.replace('\r', "\r\0").replace('\n', "\r\n");
    assert_eq!(String::from_utf8(wire).unwrap(), expected);
}

#[test]
fn atftp_fetches_with_windowsize_8_across_the_block_number_wrap() {
    if !have("atftp", "atftp") {
        return;
    }
    // 512-byte blocks and more than 65535 of them: the block number rolls over.
    let size = 512 * 65_536 + 3_000;
    let root = root_with(&[("big.img", size)]);
    let server = TestServer::start(config(root.path()));
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("big.img");
    let output = run(Command::new("timeout")
        .args(["60", "atftp", "--verbose", "--trace"])
        .args(["--option", "windowsize 8", "--option", "tsize 0"])
        .args(["-g", "-r", "big.img", "-l"])
        .arg(&got)
        .args(["::1", &server.port()]));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let oack = log
        .lines()
        .find(|line| line.starts_with("received OACK"))
        .unwrap_or_else(|| panic!("atftp got no OACK: {}", &log[..log.len().min(2000)]));
    assert!(
        oack.contains("windowsize: 8") && oack.contains(&format!("tsize: {size}")),
        "{oack}"
    );
    assert_same_file(&got, &root.path().join("big.img"));
}

#[test]
fn curl_reports_file_not_found_for_a_missing_file() {
    if !have("curl", "curl") {
        return;
    }
    let root = root_with(&[]);
    let server = TestServer::start(config(root.path()));
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--output",
            "/dev/null",
        ])
        .arg(server.url("missing.efi"))
        .output()
        .unwrap();
    // curl's exit code 68 is "TFTP: File Not Found".
    assert_eq!(output.status.code(), Some(68), "{output:?}");
}

/// A raw client: sends one request from its own port and reads what comes back.
struct RawClient {
    socket: UdpSocket,
    server: SocketAddr,
}

impl RawClient {
    fn new(server: SocketAddr) -> RawClient {
        let socket = UdpSocket::bind("[::1]:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        RawClient { socket, server }
    }

    fn request(&self, filename: &str) {
        let rrq = Repr::ReadRequest {
            filename: filename.as_bytes(),
            mode: sixboot::tftp::wire::Mode::Octet,
            options: Vec::new(),
        };
        self.socket.send_to(&rrq.to_bytes(), self.server).unwrap();
    }

    fn receive(&self) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buffer = vec![0; 70_000];
        loop {
            match self.socket.recv_from(&mut buffer) {
                Ok((n, from)) => return Some((buffer[..n].to_vec(), from)),
                // A signal for another thread of the test process (EINTR): read again.
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }

    fn expect_error(&self, filename: &str) -> (ErrorCode, String) {
        self.request(filename);
        let (bytes, _) = self.receive().expect("no answer");
        match Repr::parse_bytes(&bytes) {
            Ok(Repr::Error { code, message }) => (code, String::from_utf8_lossy(message).into()),
            other => panic!("expected an ERROR for {filename}, got {other:?}"),
        }
    }
}

#[test]
fn refuses_dot_dot_and_symlinks_out_of_the_root_but_follows_symlinks_inside_it() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"not for you").unwrap();
    let root = root_with(&[("ipxe.efi", 100)]);
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("ipxe.efi", root.path().join("alias.efi")).unwrap();
    let server = TestServer::start(config(root.path()));
    let client = RawClient::new(server.address);

    for name in ["../secret", "efi/../../secret", "escape", "etc/passwd"] {
        let (code, message) = client.expect_error(name);
        assert_eq!(code, ErrorCode::AccessViolation, "{name}: {message}");
    }
    let (code, _) = client.expect_error("/");
    assert_eq!(code, ErrorCode::FileNotFound);
    let (code, _) = client.expect_error("nothing-here");
    assert_eq!(code, ErrorCode::FileNotFound);

    client.request("alias.efi");
    let (bytes, _) = client.receive().expect("no answer for alias.efi");
    match Repr::parse_bytes(&bytes).unwrap() {
        Repr::Data { block: 1, data } => assert_eq!(data, pattern(100, 7)),
        other => panic!("expected DATA 1, got {other:?}"),
    }
}

#[test]
fn a_write_request_gets_an_access_violation() {
    let root = root_with(&[]);
    let server = TestServer::start(config(root.path()));
    let client = RawClient::new(server.address);
    let wrq = Repr::WriteRequest {
        filename: b"upload",
        mode: sixboot::tftp::wire::Mode::Octet,
        options: Vec::new(),
    };
    client
        .socket
        .send_to(&wrq.to_bytes(), server.address)
        .unwrap();
    let (bytes, _) = client.receive().expect("no answer");
    assert!(matches!(
        Repr::parse_bytes(&bytes),
        Ok(Repr::Error {
            code: ErrorCode::AccessViolation,
            ..
        })
    ));
    assert!(!root.path().join("upload").exists());
}

#[test]
fn a_silent_client_gets_retransmissions_then_an_error_while_others_are_served() {
    if !have("curl", "curl") {
        return;
    }
    let root = root_with(&[("ipxe.efi", 300_000)]);
    let server = TestServer::start(config(root.path()));
    let silent = RawClient::new(server.address);
    silent.request("ipxe.efi");
    let (first, transfer_port) = silent.receive().expect("no DATA 1");
    assert_ne!(
        transfer_port, server.address,
        "each transfer has its own port"
    );

    // While the silent client holds its transfer, a real client gets the whole file.
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("ipxe.efi");
    run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--output"])
        .arg(&got)
        .arg(server.url("ipxe.efi")));
    assert_same_file(&got, &root.path().join("ipxe.efi"));

    // The server resent DATA 1 after each timeout (200 ms, 2 retries), then gave up.
    let (again, from) = silent.receive().expect("no retransmission");
    assert_eq!(again, first);
    assert_eq!(from, transfer_port);
    let (again, _) = silent.receive().expect("no second retransmission");
    assert_eq!(again, first);
    let (last, _) = silent.receive().expect("no error after the last retry");
    assert!(
        matches!(Repr::parse_bytes(&last), Ok(Repr::Error { .. })),
        "{:?}",
        Repr::parse_bytes(&last)
    );
}

#[test]
fn a_repeated_request_from_the_same_port_starts_no_second_transfer() {
    let root = root_with(&[("ipxe.efi", 5_000)]);
    let server = TestServer::start(config(root.path()));
    let client = RawClient::new(server.address);
    client.request("ipxe.efi");
    client.request("ipxe.efi");
    let (first, port) = client.receive().expect("no DATA 1");
    // A second transfer would answer from another port. Retransmissions of the first
    // (every 200 ms while we do not ACK) and its final ERROR come from the same port.
    client
        .socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Some((bytes, from)) = client.receive() {
        assert_eq!(from, port, "a second transfer answered from {from}");
        let timed_out = matches!(Repr::parse_bytes(&bytes), Ok(Repr::Error { .. }));
        assert!(bytes == first || timed_out, "unexpected {bytes:?}");
    }
}

#[test]
fn shutdown_returns_within_the_grace_period_even_with_a_transfer_running() {
    let root = root_with(&[("ipxe.efi", 5_000)]);
    let mut server = TestServer::start(TftpConfig {
        timeout: Duration::from_secs(30),
        ..config(root.path())
    });
    let client = RawClient::new(server.address);
    client.request("ipxe.efi");
    client.receive().expect("no DATA 1");
    let took = server.stop();
    assert!(
        took < sixboot::tftp::server::SHUTDOWN_GRACE + Duration::from_secs(2),
        "shutdown took {took:?}"
    );
}

#[test]
fn serve_fails_with_a_clear_error_when_the_root_is_missing() {
    let missing = PathBuf::from("/nonexistent/sixboot-tftp-root");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime
        .block_on(async {
            let socket = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
            sixboot::tftp::serve(&config(&missing), socket, std::future::pending()).await
        })
        .expect_err("a missing root must fail");
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/sixboot-tftp-root") && message.contains("[tftp] root"),
        "{message}"
    );
}

/// A network namespace of our own (`sbt-tftp-any`) with two addresses on `lo`.
fn wildcard_namespace() -> Option<Namespace> {
    if !sixboot_lab::need::root() {
        return None;
    }
    let netns = Namespace::create("sbt-tftp-any").expect("namespace");
    for address in ["fd00:5b::1/128", "fd00:5b::2/128"] {
        netns
            .ip(&["addr", "add", address, "dev", "lo", "nodad"])
            .expect("address on lo");
    }
    Some(netns)
}

#[test]
fn on_the_wildcard_address_each_transfer_answers_from_the_address_that_was_asked() {
    let Some(netns) = wildcard_namespace() else {
        return;
    };
    let root = root_with(&[("ipxe.efi", 300)]);
    let config = config(root.path());
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                netns.enter_this_thread().expect("enter namespace");
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    // Only inside our namespace could a test bind the wildcard address.
                    let socket = sixboot::tftp::bind("[::]:0".parse().unwrap()).unwrap();
                    let port = socket.local_addr().unwrap().port();
                    let server = tokio::spawn(async move {
                        sixboot::tftp::serve(&config, socket, std::future::pending()).await
                    });
                    let rrq = Repr::ReadRequest {
                        filename: b"ipxe.efi",
                        mode: sixboot::tftp::wire::Mode::Octet,
                        options: Vec::new(),
                    }
                    .to_bytes();
                    for asked in ["fd00:5b::1", "fd00:5b::2", "::1"] {
                        let asked: std::net::Ipv6Addr = asked.parse().unwrap();
                        // A new port per request, as real clients do.
                        let client = tokio::net::UdpSocket::bind("[fd00:5b::2]:0").await.unwrap();
                        client.send_to(&rrq, (asked, port)).await.unwrap();
                        let mut buffer = [0u8; 1024];
                        let (n, from) = tokio::time::timeout(
                            Duration::from_secs(5),
                            client.recv_from(&mut buffer),
                        )
                        .await
                        .expect("no answer")
                        .unwrap();
                        assert_eq!(from.ip(), std::net::IpAddr::V6(asked), "asked {asked}");
                        assert!(matches!(
                            Repr::parse_bytes(&buffer[..n]),
                            Ok(Repr::Data { block: 1, .. })
                        ));
                        client
                            .send_to(&Repr::Ack { block: 1 }.to_bytes(), from)
                            .await
                            .unwrap();
                    }
                    server.abort();
                });
            })
            .join()
            .expect("namespace thread panicked");
    });
}

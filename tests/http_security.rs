//! Hostile clients: path traversal in every spelling, symlinks out of the root,
//! oversized heads, and slow clients that must not starve the others.

mod http_support;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn assert_refused(path: &str, reply: &Reply) {
    assert!(
        reply.status == 400 || reply.status == 404,
        "{path}: status {} body {:?}",
        reply.status,
        reply.text()
    );
    let text = reply.text();
    assert!(
        !text.contains("top secret") && !text.contains("root:"),
        "{path} leaked: {text}"
    );
}

#[tokio::test]
async fn no_path_escapes_the_files_root() {
    let lab = Lab::new("");
    let files = lab.path().join("files");
    std::os::unix::fs::symlink("../secret.txt", files.join("up-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", files.join("abs-link")).unwrap();
    std::os::unix::fs::symlink(lab.path(), files.join("dir-link")).unwrap();
    std::fs::create_dir(files.join("sub")).unwrap();
    let server = lab.start().await;
    for path in [
        "/files/../secret.txt",
        "/files/sub/../../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2E%2E/secret.txt",
        "/files/.%2e/secret.txt",
        "/files/%2e%2e%2fsecret.txt",
        "/files/..%2fsecret.txt",
        "/files/..%2Fsecret.txt",
        "/files/sub%2f..%2f..%2fsecret.txt",
        "/files/%252e%252e/secret.txt",
        "/files/..%5csecret.txt",
        "/files/..\\secret.txt",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/%2Fetc/passwd",
        "/files/./../secret.txt",
        "/files/vmlinuz%00.txt",
        "/files/up-link",
        "/files/abs-link",
        "/files/dir-link/secret.txt",
        "/files/sub",
        "/files/",
        "/files/sub/",
        "http://evil/files/../secret.txt",
    ] {
        let reply = get(server.v6, path).await;
        assert_refused(path, &reply);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_symlink_that_stays_inside_the_root_is_served() {
    let lab = Lab::new("");
    let files = lab.path().join("files");
    std::fs::create_dir(files.join("images")).unwrap();
    std::os::unix::fs::symlink("../vmlinuz", files.join("images/current")).unwrap();
    let server = lab.start().await;
    let reply = get(server.v4, "/files/images/current").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, kernel_bytes());
    server.stop().await;
}

#[tokio::test]
async fn refuses_heads_that_are_too_large_or_have_too_many_fields() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let big = format!(
        "GET /status HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8000)
    );
    let (reply, _) = parse_reply(&raw(server.v6, big.as_bytes()).await, false);
    assert_eq!(reply.status, 431);
    let mut many = "GET /status HTTP/1.1\r\n".to_owned();
    for i in 0..70 {
        many.push_str(&format!("X-{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let (reply, _) = parse_reply(&raw(server.v6, many.as_bytes()).await, false);
    assert_eq!(reply.status, 431);
    let (reply, _) = parse_reply(&raw(server.v6, b"\x16\x03\x01garbage\r\n\r\n").await, false);
    assert_eq!(reply.status, 400);
    let chunked =
        b"POST /done/525400123456 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (reply, _) = parse_reply(&raw(server.v6, chunked).await, false);
    assert_eq!(reply.status, 501);
    let huge = b"POST /done/525400123456 HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n";
    let (reply, _) = parse_reply(&raw(server.v6, huge).await, false);
    assert_eq!(reply.status, 413);
    // None of these marked the host installed.
    let node1 = NODE1.parse().unwrap();
    assert!(
        server
            .app
            .inventory()
            .snapshot()
            .get(&node1)
            .unwrap()
            .state
            .install
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off_while_others_are_served() {
    // header_timeout_secs = 1
    let lab = Lab::new("");
    let text = std::fs::read_to_string(lab.config_path())
        .unwrap()
        .replace("header_timeout_secs = 2", "header_timeout_secs = 1");
    std::fs::write(lab.config_path(), text).unwrap();
    let server = lab.start().await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.v6).await.unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nX-Slow: ")
        .await
        .unwrap();
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(server.v6).await.unwrap());
    }
    let reply = get(server.v6, "/ipxe/ipxe-525400123456.cfg").await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "starved by slow clients"
    );
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out))
        .await
        .expect("the slow client was never cut off")
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(server.app.metrics.http.header_timeouts.load(Relaxed) >= 1);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_a_download_is_dropped() {
    let lab = Lab::new("");
    // Larger than every socket buffer on the way, sparse so it costs no disk.
    let big = std::fs::File::create(lab.path().join("files/big.img")).unwrap();
    big.set_len(256 * 1024 * 1024).unwrap();
    let mut app = sixboot::http::App::from_config(&lab.config()).unwrap();
    app.limits.send_timeout = Duration::from_millis(500);
    let server = Server::start(Arc::new(app)).await;
    let mut stuck = TcpStream::connect(server.v4).await.unwrap();
    stuck
        .write_all(b"GET /files/big.img HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    while server.app.metrics.http.send_timeouts.load(Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never timed out"
        );
        // Others are served while the stuck download waits.
        assert_eq!(get(server.v4, "/files/initrd.img").await.status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.app.metrics.http.active_downloads.load(Relaxed), 0);
    drop(stuck);
    server.stop().await;
}

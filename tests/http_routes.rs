//! Every route of the HTTP server over real HTTP on loopback, and the install-once
//! flow: script → kernel → kickstart → /done → 404.

mod http_support;

use http_support::*;

#[tokio::test]
async fn serves_the_script_for_every_spelling_of_the_mac() {
    let lab = Lab::new("");
    let server = lab.start().await;
    for spelling in [
        "52%3A54%3A00%3A12%3A34%3A56",
        "52%3a54%3a00%3a12%3a34%3a56",
        "52:54:00:12:34:56",
        "52-54-00-12-34-56",
        "525400123456",
        "52-54-00-12-34-56".to_uppercase().as_str(),
    ] {
        let reply = get(server.v6, &format!("/ipxe/ipxe-{spelling}.cfg")).await;
        assert_eq!(reply.status, 200, "{spelling}: {}", reply.text());
        let text = reply.text();
        assert!(text.starts_with("#!ipxe\n"), "{text}");
        assert!(
            text.contains(" inst.ks=http://[2001:db8:1::1]/ks/52-54-00-12-34-56 ")
                && text.contains(" console=ttyS0\n"),
            "{text}"
        );
        assert!(sixboot::script::lint(&reply.body).is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_hosts_and_hosts_not_marked_for_install_get_404() {
    let lab = Lab::new("");
    let server = lab.start().await;
    assert_eq!(
        get(server.v4, "/ipxe/ipxe-02:00:00:00:00:99.cfg")
            .await
            .status,
        404
    );
    assert_eq!(
        get(server.v4, "/ipxe/ipxe-00%3A02%3Ac9%3Aaa%3Abb%3A01.cfg")
            .await
            .status,
        404
    );
    assert_eq!(get(server.v4, "/ipxe/ipxe-notamac.cfg").await.status, 404);
    assert_eq!(get(server.v4, "/ks/00:02:c9:aa:bb:01").await.status, 404);
    assert_eq!(get(server.v4, "/nothing/here").await.status, 404);
    let record = server.app.host_states().get(&CX3.parse().unwrap()).unwrap();
    assert_eq!(record.stage, sixboot::hoststate::Stage::LocalDisk);
    server.stop().await;
}

#[tokio::test]
async fn serves_files_with_length_etag_and_last_modified() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let reply = get(server.v6, "/files/vmlinuz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, kernel_bytes());
    assert_eq!(
        reply.header("content-length"),
        Some(kernel_bytes().len().to_string().as_str())
    );
    let etag = reply.header("etag").unwrap().to_owned();
    let modified = reply.header("last-modified").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));

    let head = request(server.v6, "HEAD", "/files/vmlinuz", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        reply.header("content-length")
    );
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    let again = request(
        server.v6,
        "GET",
        "/files/vmlinuz",
        &[&format!("If-None-Match: {etag}")],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let again = request(
        server.v6,
        "GET",
        "/files/vmlinuz",
        &[&format!("If-Modified-Since: {modified}")],
    )
    .await;
    assert_eq!(again.status, 304);
    server.stop().await;
}

#[tokio::test]
async fn serves_byte_ranges_and_refuses_unsatisfiable_ones() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let kernel = kernel_bytes();
    let len = kernel.len();
    let reply = request(
        server.v4,
        "GET",
        "/files/vmlinuz",
        &["Range: bytes=1000-1999"],
    )
    .await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &kernel[1000..2000]);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes 1000-1999/{len}").as_str())
    );
    let reply = request(server.v4, "GET", "/files/vmlinuz", &["Range: bytes=-10"]).await;
    assert_eq!(reply.body, &kernel[len - 10..]);
    let reply = request(
        server.v4,
        "GET",
        "/files/vmlinuz",
        &[&format!("Range: bytes={len}-")],
    )
    .await;
    assert_eq!(reply.status, 416);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    // A stale If-Range gets the whole file, as RFC 9110 section 13.1.5 says.
    let reply = request(
        server.v4,
        "GET",
        "/files/vmlinuz",
        &["Range: bytes=0-9", "If-Range: \"stale\""],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), len);
    server.stop().await;
}

#[tokio::test]
async fn keeps_the_connection_alive_across_requests() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let two = b"GET /files/initrd.img HTTP/1.1\r\nHost: a\r\n\r\n\
                GET /ipxe/ipxe-525400123456.cfg HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let bytes = raw(server.v6, two).await;
    let (first, used) = parse_reply(&bytes, false);
    assert_eq!((first.status, first.body.as_slice()), (200, &b"initrd"[..]));
    let (second, _) = parse_reply(&bytes[used..], false);
    assert_eq!(second.status, 200);
    assert!(second.text().starts_with("#!ipxe\n"));
    server.stop().await;
}

#[tokio::test]
async fn install_once_flow_goes_from_script_to_done_to_404() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let script = "/ipxe/ipxe-52%3A54%3A00%3A12%3A34%3A56.cfg";
    assert_eq!(get(server.v6, script).await.status, 200);
    assert_eq!(get(server.v6, "/files/vmlinuz").await.status, 200);
    let ks = get(server.v6, "/ks/52-54-00-12-34-56").await;
    assert_eq!(ks.status, 200);
    assert!(
        ks.text()
            .contains("http://[2001:db8:1::1]/done/52-54-00-12-34-56"),
        "{}",
        ks.text()
    );
    let states = server.app.host_states();
    let node1 = NODE1.parse().unwrap();
    assert_eq!(
        states.get(&node1).unwrap().stage,
        sixboot::hoststate::Stage::Kickstart
    );

    let done = request(
        server.v6,
        "POST",
        "/done/52:54:00:12:34:56",
        &["Content-Length: 0"],
    )
    .await;
    assert_eq!(done.status, 200);
    assert_eq!(
        get(server.v6, script).await.status,
        404,
        "boot-once: next boot goes to disk"
    );
    assert_eq!(get(server.v6, "/ks/52-54-00-12-34-56").await.status, 404);
    server.stop().await;

    // Persisted: a restarted server still says 404 ...
    let server = lab.start().await;
    assert_eq!(get(server.v6, script).await.status, 404);
    // ... until the operator marks the host again, which the running server sees.
    let cli = sixboot::hoststate::HostStates::open(&lab.config()).unwrap();
    cli.set_install(&node1, true).unwrap();
    assert_eq!(get(server.v6, script).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_bytes_and_hosts_by_stage() {
    let lab = Lab::new("");
    let server = lab.start().await;
    get(server.v4, "/ipxe/ipxe-525400123456.cfg").await;
    get(server.v6, "/files/initrd.img").await;
    get(server.v4, "/nope").await;
    let reply = get(server.v4, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = reply.text();
    for line in [
        "sixboot_http_requests_total{route=\"script\",code=\"200\"} 1",
        "sixboot_http_requests_total{route=\"files\",code=\"200\"} 1",
        "sixboot_http_requests_total{route=\"other\",code=\"404\"} 1",
        "sixboot_http_response_bytes_total{route=\"files\"} 6",
        "sixboot_http_active_downloads 0",
        "sixboot_hosts{stage=\"files\"} 1",
        "sixboot_hosts_install 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn status_page_lists_hosts_and_their_stage() {
    let lab = Lab::new("");
    let server = lab.start().await;
    get(server.v6, "/ipxe/ipxe-525400123456.cfg").await;
    let reply = get(server.v6, "/status").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = reply.text();
    assert!(
        html.contains(
            "<td>node1</td><td>52:54:00:12:34:56</td><td>::1</td><td>yes</td><td>script</td>"
        ),
        "{html}"
    );
    assert!(html.contains("<td>cx3-node</td>"), "{html}");
    server.stop().await;
}

#[tokio::test]
async fn refuses_methods_a_route_does_not_take() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let reply = request(server.v6, "DELETE", "/files/vmlinuz", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    server.stop().await;
}

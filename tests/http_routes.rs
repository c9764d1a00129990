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
        let ks = ks_path(&text);
        assert!(ks.starts_with("/ks/52-54-00-12-34-56/"), "{text}");
        assert!(text.contains(&format!("{ks} ")), "{text}");
        assert!(text.contains(" console=ttyS0\n"), "{text}");
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
    server.app.inventory().flush().await;
    let inventory = server.app.inventory().snapshot();
    let record = &inventory.get(&CX3.parse().unwrap()).unwrap().state;
    assert_eq!(record.stage, sixboot::inventory::Stage::LocalDisk);
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

/// Marks `mac` for install with a new token through the store, as `sixboot hosts
/// install` does (another process than the server).
async fn mark_for_install(lab: &Lab, mac: sixboot::mac::Mac) {
    let config = lab.config();
    let store = sixboot::inventory::store_for(&config).await.unwrap();
    let change = sixboot::inventory::Change::SetInstall {
        mac,
        install: true,
        token: Some(sixboot::inventory::token::install_token()),
    };
    sixboot::inventory::apply_all_or_none(
        &store,
        sixboot::inventory::live::seed_of(&config.hosts),
        &[change],
        1,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn install_once_flow_goes_from_script_to_done_to_404() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let script = "/ipxe/ipxe-52%3A54%3A00%3A12%3A34%3A56.cfg";
    let reply = get(server.v6, script).await;
    assert_eq!(reply.status, 200);
    let ks_url = ks_path(&reply.text());
    assert_eq!(get(server.v6, "/files/vmlinuz").await.status, 200);
    let ks = get(server.v6, &ks_url).await;
    assert_eq!(ks.status, 200);
    let done_url = ks_url.replace("/ks/", "/done/");
    assert!(
        ks.text()
            .contains(&format!("http://[2001:db8:1::1]{done_url}")),
        "{}",
        ks.text()
    );
    let live = server.app.inventory();
    live.flush().await;
    let node1 = NODE1.parse().unwrap();
    assert_eq!(
        live.snapshot().get(&node1).unwrap().state.stage,
        sixboot::inventory::Stage::Kickstart
    );

    let done = request(server.v6, "POST", &done_url, &["Content-Length: 0"]).await;
    assert_eq!(done.status, 200);
    assert_eq!(
        get(server.v6, script).await.status,
        404,
        "boot-once: next boot goes to disk"
    );
    assert_eq!(get(server.v6, &ks_url).await.status, 404);
    assert_eq!(
        request(server.v6, "POST", &done_url, &["Content-Length: 0"])
            .await
            .status,
        404,
        "a second /done with the spent token changes nothing"
    );
    // Marked again while this server runs (its script cache holds the old install):
    // the script it serves carries the new token, and the new install ends as well.
    mark_for_install(&lab, node1).await;
    wait_for_status(server.v6, script, 200).await;
    let new_ks = ks_path(&get(server.v6, script).await.text());
    assert_ne!(
        new_ks, ks_url,
        "a new install has a new token in its script"
    );
    assert_eq!(get(server.v6, &ks_url).await.status, 404);
    let new_done = new_ks.replace("/ks/", "/done/");
    let done = request(server.v6, "POST", &new_done, &["Content-Length: 0"]).await;
    assert_eq!(done.status, 200);
    assert_eq!(get(server.v6, script).await.status, 404);
    server.stop().await;

    // Persisted: a restarted server still says 404 ...
    let server = lab.start().await;
    assert_eq!(get(server.v6, script).await.status, 404);
    // ... until the operator marks the host again (as `sixboot hosts install` does,
    // through the store), which the running server sees within a second.
    mark_for_install(&lab, node1).await;
    let seen = wait_for_status(server.v6, script, 200).await;
    assert!(
        seen < std::time::Duration::from_secs(1),
        "seen after {seen:?}"
    );
    // The new install has a new token: the old kickstart URL stays refused.
    assert_eq!(get(server.v6, &ks_url).await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn kickstart_and_done_need_the_current_install_token() {
    let lab = Lab::new("");
    let server = lab.start().await;
    let reply = get(server.v6, "/ipxe/ipxe-525400123456.cfg").await;
    let ks_url = ks_path(&reply.text());
    let token = ks_url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    for path in [
        "/ks/52-54-00-12-34-56".to_owned(),
        "/ks/52-54-00-12-34-56/".to_owned(),
        "/ks/52-54-00-12-34-56/0123456789abcdef0123456789abcdef".to_owned(),
        format!("/ks/00:02:c9:aa:bb:01/{token}"),
    ] {
        assert_eq!(get(server.v6, &path).await.status, 404, "{path}");
    }
    for path in [
        "/done/52-54-00-12-34-56".to_owned(),
        "/done/52-54-00-12-34-56/0123456789abcdef0123456789abcdef".to_owned(),
    ] {
        assert_eq!(get(server.v6, &path).await.status, 404, "{path}");
    }
    // None of those cancelled the install.
    assert_eq!(get(server.v6, &ks_url).await.status, 200);
    let upper = ks_url.replace("52-54-00-12-34-56", "52%3A54%3A00%3A12%3A34%3A56");
    assert_eq!(get(server.v6, &upper).await.status, 200);
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
        // The script names initrd.img as its initrd: that download is its own stage.
        "sixboot_hosts{stage=\"initrd\"} 1",
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
async fn metrics_turned_off_are_not_served_and_boots_go_on() {
    let lab = Lab::new("\n[monitor]\nmetrics = false\n");
    let server = lab.start().await;
    assert_eq!(
        get(server.v6, "/ipxe/ipxe-525400123456.cfg").await.status,
        200
    );
    assert_eq!(get(server.v6, "/metrics").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn status_page_lists_hosts_and_their_stage() {
    let lab = Lab::new("");
    let server = lab.start().await;
    get(server.v6, "/ipxe/ipxe-525400123456.cfg").await;
    // The page shows the last published snapshot (it never waits for the inventory's
    // writer): the stage shows once the writer has published it.
    let row = "<td><a href=\"/status/host/52:54:00:12:34:56\">node1</a></td>\
               <td class=\"wide\">52:54:00:12:34:56</td><td class=\"wide\">::1</td>\
               <td class=\"wide\">yes</td><td>script</td>";
    let start = std::time::Instant::now();
    let html = loop {
        let reply = get(server.v6, "/status").await;
        assert_eq!(reply.status, 200);
        assert!(reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        let html = reply.text();
        if html.contains(row) || start.elapsed() > std::time::Duration::from_secs(5) {
            break html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(html.contains(row), "{html}");
    assert!(html.contains(">cx3-node</a></td>"), "{html}");
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

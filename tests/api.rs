//! The inventory API over real HTTP on loopback: bearer tokens, JSON errors that name
//! the field, nothing half-written, and hosts added through it served at once.

mod http_support;

use http_support::*;
use serde_json::Value;

const SUBNET: &str = "\n[dhcp]\n[[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n";

/// A lab whose config has a subnet, and a token created with the CLI.
fn lab_with_token() -> (Lab, String) {
    let lab = Lab::new(SUBNET);
    // The seed host's address must be inside the subnet now.
    let config = std::fs::read_to_string(lab.config_path()).unwrap();
    std::fs::write(
        lab.config_path(),
        config.replace("address = \"::1\"", "address = \"2001:db8:1::10\""),
    )
    .unwrap();
    let out = lab.path().join("token");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(["api", "token", "create", "--name", "ci", "--output"])
        .arg(&out)
        .arg("--config")
        .arg(lab.config_path())
        .status()
        .unwrap();
    assert!(status.success());
    let token = std::fs::read_to_string(&out).unwrap().trim().to_owned();
    (lab, token)
}

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut headers = Vec::new();
    if let Some(token) = token {
        headers.push(format!("Authorization: Bearer {token}"));
    }
    if let Some(body) = body {
        headers.push("Content-Type: application/json".into());
        headers.push(format!("Content-Length: {}", body.len()));
    }
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for h in &refs {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body.unwrap_or(""));
    let bytes = raw(server.v6, text.as_bytes()).await;
    let reply = parse_reply(&bytes, false).0;
    let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, value)
}

#[tokio::test]
async fn the_api_needs_a_live_token_and_stores_only_its_hash() {
    let (lab, token) = lab_with_token();
    let server = lab.start().await;
    assert_eq!(
        call(&server, "GET", "/api/v1/hosts", None, None).await.0,
        401
    );
    let mut wrong = token.clone();
    wrong.replace_range(token.len() - 4.., "0000");
    assert_eq!(
        call(&server, "GET", "/api/v1/hosts", Some(&wrong), None)
            .await
            .0,
        401
    );
    let (status, hosts) = call(&server, "GET", "/api/v1/hosts", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(hosts.as_array().unwrap().len(), 2);
    let stored = std::fs::read_to_string(lab.path().join("state/api-tokens.json")).unwrap();
    assert!(!stored.contains(&token), "the token is stored in clear");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(["api", "token", "revoke", "ci", "--config"])
        .arg(lab.config_path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        call(&server, "GET", "/api/v1/hosts", Some(&token), None)
            .await
            .0,
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn a_host_added_and_marked_through_the_api_is_served_at_once() {
    let (lab, token) = lab_with_token();
    let server = lab.start().await;
    let t = Some(token.as_str());
    let (status, host) = call(
        &server,
        "POST",
        "/api/v1/hosts",
        t,
        Some(r#"{"mac":"02-00-00-00-00-07","name":"api-node","address":"2001:db8:1::77","vars":{"kernel_args":"console=ttyS1"}}"#),
    )
    .await;
    assert_eq!(status, 201, "{host}");
    assert_eq!(host["name"], "api-node");
    assert_eq!(host["install"], false);
    assert_eq!(host["origin"], "store");
    let script = "/ipxe/ipxe-02:00:00:00:00:07.cfg";
    assert_eq!(get(server.v6, script).await.status, 404, "not marked yet");
    let (status, host) = call(
        &server,
        "POST",
        "/api/v1/hosts/02:00:00:00:00:07/install",
        t,
        None,
    )
    .await;
    assert_eq!((status, &host["install"]), (200, &Value::Bool(true)));
    let reply = get(server.v6, script).await;
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("console=ttyS1"), "{}", reply.text());
    let ks = ks_path(&reply.text());
    assert_eq!(get(server.v6, &ks).await.status, 200);
    let done = request(
        server.v6,
        "POST",
        &ks.replace("/ks/", "/done/"),
        &["Content-Length: 0"],
    )
    .await;
    assert_eq!(done.status, 200);
    let (status, boots) = call(
        &server,
        "GET",
        "/api/v1/hosts/02-00-00-00-00-07/boots",
        t,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let stages: Vec<&str> = boots["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    // The 404 before it was marked is its first boot (to disk); the install is the second.
    assert_eq!(stages, ["local-disk", "script", "kickstart", "done"]);
    let boot_numbers: Vec<u64> = boots["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["boot"].as_u64().unwrap())
        .collect();
    assert_eq!(boot_numbers, [1, 2, 2, 2]);
    // Edits check the version; removal takes it away.
    let (status, err) = call(
        &server,
        "PUT",
        "/api/v1/hosts/02:00:00:00:00:07",
        t,
        Some(r#"{"name":"renamed","version":9}"#),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (409, Some("version"))
    );
    let (status, host) = call(
        &server,
        "PUT",
        "/api/v1/hosts/02:00:00:00:00:07",
        t,
        Some(r#"{"name":"renamed","version":1}"#),
    )
    .await;
    assert_eq!((status, host["name"].as_str()), (200, Some("renamed")));
    assert_eq!(
        call(
            &server,
            "DELETE",
            "/api/v1/hosts/02:00:00:00:00:07",
            t,
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(&server, "GET", "/api/v1/hosts/02:00:00:00:00:07", t, None)
            .await
            .0,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_400_or_409_naming_the_field_and_writes_nothing() {
    let (lab, token) = lab_with_token();
    let server = lab.start().await;
    let t = Some(token.as_str());
    for (body, status, field) in [
        (r#"{"mac":"zz:00","name":"x"}"#, 400, "mac"),
        (r#"{"name":"x"}"#, 400, "mac"),
        (
            r#"{"mac":"02:00:00:00:00:08","name":"bad name"}"#,
            400,
            "name",
        ),
        (
            r#"{"mac":"02:00:00:00:00:08","address":"2001:db8:9::1"}"#,
            400,
            "address",
        ),
        (
            r#"{"mac":"02:00:00:00:00:08","address":"not-an-address"}"#,
            400,
            "address",
        ),
        (
            r#"{"mac":"02:00:00:00:00:08","colour":"red"}"#,
            400,
            "colour",
        ),
        (
            r#"{"mac":"02:00:00:00:00:08","vars":{"k":null}}"#,
            400,
            "vars.k",
        ),
        (r#"{"mac":"02:00:00:00:00:08","name":"node1"}"#, 409, "name"),
        (
            r#"{"mac":"02:00:00:00:00:08","address":"2001:db8:1::10"}"#,
            409,
            "address",
        ),
        (r#"{"mac":"52:54:00:12:34:56","name":"again"}"#, 409, "mac"),
        ("{not json", 400, "body"),
        (
            r#"{"mac":"02:00:00:00:00:08","bmc":{"url":"https://[2001:db8::10]/redfish/v1"}}"#,
            400,
            "bmc.url",
        ),
        (
            r#"{"mac":"02:00:00:00:00:08","bmc":{"url":"https://[2001:db8::10]","password":"x"}}"#,
            400,
            // serde names the unknown field, and its message lists password_file.
            "password",
        ),
    ] {
        let (got, err) = call(&server, "POST", "/api/v1/hosts", t, Some(body)).await;
        assert_eq!(got, status, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (_, err) = call(
        &server,
        "DELETE",
        "/api/v1/hosts/52:54:00:12:34:56",
        t,
        None,
    )
    .await;
    assert_eq!(
        err["error"]["field"], "mac",
        "config hosts are edited in the config: {err}"
    );
    let (_, before) = call(&server, "GET", "/api/v1/hosts", t, None).await;
    let (got, err) = call(
        &server,
        "POST",
        "/api/v1/hosts/52:54:00:12:34:56/install?reboot=1",
        t,
        None,
    )
    .await;
    assert_eq!((got, &err["error"]["field"]), (400, &"bmc".into()), "{err}");
    let (_, hosts) = call(&server, "GET", "/api/v1/hosts", t, None).await;
    assert_eq!(
        hosts.as_array().unwrap().len(),
        2,
        "nothing half-written: {hosts}"
    );
    assert_eq!(hosts, before, "a reboot without a BMC changes nothing");
    server.stop().await;
}

#[tokio::test]
async fn an_api_host_installs_with_its_installer_family_and_the_inventorys_token() {
    let (lab, token) = lab_with_token();
    let server = lab.start().await;
    let t = Some(token.as_str());
    let (status, err) = call(
        &server,
        "POST",
        "/api/v1/hosts",
        t,
        Some(r#"{"mac":"02-00-00-00-00-08","installer":"windows"}"#),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("installer")),
        "{err}"
    );
    let (status, host) = call(
        &server,
        "POST",
        "/api/v1/hosts",
        t,
        Some(r#"{"mac":"02-00-00-00-00-08","name":"deb","installer":"debian-installer","install":true}"#),
    )
    .await;
    assert_eq!(status, 201, "{host}");
    assert_eq!(host["installer"], "debian-installer");
    let reply = get(server.v6, "/ipxe/ipxe-02:00:00:00:00:08.cfg").await;
    assert_eq!(reply.status, 200);
    let script = reply.text();
    assert!(script.contains(" auto=true priority=critical "), "{script}");
    // d-i's `url=` carries the per-install token the inventory made.
    let url = script
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url=http"))
        .unwrap_or_else(|| panic!("no url=http… in {script}"));
    let path = &url[url.find("/ks/").unwrap()..];
    let install_token = path.rsplit('/').next().unwrap();
    assert_eq!(install_token.len(), 32, "{path}");
    let preseed = get(server.v6, path).await;
    assert_eq!(preseed.status, 200);
    assert!(
        preseed.text().contains("d-i preseed/late_command string"),
        "{}",
        preseed.text()
    );
    assert!(preseed
        .text()
        .contains(&format!("/done/02-00-00-00-00-08/{install_token}")));
    // The token is the install's: a made-up one is refused.
    let wrong = path.replace(install_token, &"0".repeat(install_token.len()));
    assert_eq!(get(server.v6, &wrong).await.status, 404);
    server.stop().await;
}

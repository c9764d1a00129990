//! The store contract: one test body run against every backend, so that the file
//! backend and PostgreSQL mean the same thing by every change.

mod inventory_support;

use inventory_support::*;
use sixboot::inventory::live::SCRIPT_REPEAT_MIN_MS;
use sixboot::inventory::{
    apply_all_or_none, token, BatchError, Change, ChangeError, HostSpec, Live, Observation,
    RowWrite, Stage, Store, StoreError,
};

/// Everything a backend must do, from an empty store.
async fn contract(store: Store) {
    assert_eq!(store.load().await.unwrap().hosts.len(), 0);

    // Create: definition and state rows, read back as written.
    let token_a = token::install_token();
    let (_, applied) = apply_all_or_none(
        &store,
        seed(),
        &[
            create(
                "02:00:00:00:00:01",
                "a",
                Some("2001:db8:1::a"),
                Some(&token_a),
            ),
            create("02:00:00:00:00:02", "b", None, None),
        ],
        1_000,
    )
    .await
    .unwrap();
    assert_eq!(applied.len(), 2);
    let rows = store.load().await.unwrap();
    assert_eq!(rows.hosts.len(), 2);
    let a = mac("02:00:00:00:00:01");
    assert_eq!(rows.hosts[&a].spec.name, "a");
    assert_eq!(rows.states[&a].token.as_deref(), Some(token_a.as_str()));

    // All or none: a batch whose second change is refused writes nothing.
    let err = apply_all_or_none(
        &store,
        seed(),
        &[
            create("02:00:00:00:00:03", "c", None, None),
            create("02:00:00:00:00:04", "a", None, None),
        ],
        2_000,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            BatchError {
                index: Some(1),
                error: StoreError::Change(ChangeError::Conflict { field: "name", .. })
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        store.load().await.unwrap().hosts.len(),
        2,
        "nothing half-written"
    );

    // A row write with a stale version is refused whole.
    let stale = store.load().await.unwrap().states[&a].clone();
    let mut newer = stale.clone();
    newer.version += 1;
    store
        .commit(&[RowWrite::PutState {
            mac: a,
            state: newer.clone(),
            expected: Some(stale.version),
        }])
        .await
        .unwrap();
    let again = store
        .commit(&[RowWrite::PutState {
            mac: a,
            state: newer,
            expected: Some(stale.version),
        }])
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );

    // /done with the token, through the same model: the flag goes off once.
    let done = Change::Done {
        mac: a,
        token: token_a.clone(),
    };
    apply_all_or_none(&store, seed(), std::slice::from_ref(&done), 3_000)
        .await
        .unwrap();
    let state = &store.load().await.unwrap().states[&a];
    assert!(!state.install && state.token.is_none());
    assert_eq!(state.stage, Stage::Done);
    let twice = apply_all_or_none(&store, seed(), &[done], 4_000).await;
    assert!(matches!(
        twice,
        Err(BatchError {
            error: StoreError::Change(ChangeError::NotInstalling(_)),
            ..
        })
    ));

    // Remove: rows gone.
    apply_all_or_none(
        &store,
        seed(),
        &[Change::Remove {
            mac: mac("02:00:00:00:00:02"),
            expected_version: Some(1),
        }],
        5_000,
    )
    .await
    .unwrap();
    let rows = store.load().await.unwrap();
    assert_eq!(rows.hosts.len(), 1);
    assert!(!rows.states.contains_key(&mac("02:00:00:00:00:02")));

    // Events: appended, read per host, oldest first, only the last boots.
    let events: Vec<_> = (1..=12)
        .map(|boot| event(a, boot, Stage::Script, 10_000 + boot))
        .collect();
    store.append_events(&events).await.unwrap();
    let read = store.events(&a, 3).await.unwrap();
    let boots: Vec<u64> = read.iter().map(|e| e.boot).collect();
    assert_eq!(boots, vec![10, 11, 12]);
    assert_eq!(read[0], events[9]);
    assert!(store
        .events(&mac("02:00:00:00:00:09"), 3)
        .await
        .unwrap()
        .is_empty());

    // API tokens: stored hashed, revocable.
    let (text, record) = token::new_api_token("ci", 7);
    store.add_api_token(record.clone()).await.unwrap();
    let tokens = store.api_tokens().await.unwrap();
    assert_eq!(
        token::check(&tokens, &text).map(|t| &t.name),
        Some(&record.name)
    );
    assert!(!format!("{tokens:?}").contains(&text[17..]));
    assert!(store.revoke_api_token("ci", 8).await.unwrap());
    assert!(token::check(&store.api_tokens().await.unwrap(), &text).is_none());
    assert!(!store.revoke_api_token("nobody", 9).await.unwrap());
}

/// A running server's view of the store: observations become stages and events; a
/// change another process commits is served within a second.
async fn live_contract(store: Store, other: Store) {
    let live = Live::start(store, seed(), "server-a".into(), None).unwrap();
    let node1 = mac(NODE1);
    let snapshot = live.snapshot();
    let host = snapshot.get(&node1).unwrap();
    assert!(host.state.install);
    assert_eq!(
        host.state.token.as_ref().map(String::len),
        Some(32),
        "token issued at start"
    );
    // A repeat of the current stage is not written (but for a script: see
    // `inventory::progress`), and a script only once a second.
    let t0 = sixboot::inventory::live::now_millis();
    let seen = |stage, at| Observation {
        mac: node1,
        stage,
        detail: None,
        at,
        peer: Some("2001:db8:1::10".parse().unwrap()),
    };
    for (stage, at) in [
        (Stage::Reply, t0),
        (Stage::Script, t0 + 1),
        (Stage::Script, t0 + 2),
        (Stage::Script, t0 + SCRIPT_REPEAT_MIN_MS),
        (Stage::Kickstart, t0 + SCRIPT_REPEAT_MIN_MS + 1),
        (Stage::Kickstart, t0 + SCRIPT_REPEAT_MIN_MS + 2),
    ] {
        live.observe(seen(stage, at));
    }
    live.flush().await;
    assert_eq!(
        live.snapshot().get(&node1).unwrap().state.stage,
        Stage::Kickstart
    );
    let events = live.events(node1, 10).await.unwrap();
    let stages: Vec<Stage> = events.iter().map(|e| e.stage).collect();
    assert_eq!(stages, vec![Stage::Reply, Stage::Script, Stage::Kickstart]);
    assert!(events.iter().all(|e| e.server == "server-a" && e.boot == 1));
    // A second later it is news again (a loop, or the next boot).
    live.observe(seen(Stage::Script, t0 + 1 + SCRIPT_REPEAT_MIN_MS));
    live.flush().await;
    let events = live.events(node1, 10).await.unwrap();
    let scripts = events.iter().filter(|e| e.stage == Stage::Script).count();
    assert_eq!(scripts, 2, "{events:?}");
    // Within the second but after another stage was published: news too (iPXE
    // fetching its script again after a kernel download is a new boot).
    let t1 = t0 + 10_000;
    live.observe(seen(Stage::Script, t1));
    live.flush().await;
    live.observe(seen(Stage::Kernel, t1 + 300));
    live.flush().await;
    live.observe(seen(Stage::Script, t1 + 800));
    live.flush().await;
    let events = live.events(node1, 10).await.unwrap();
    let scripts = events.iter().filter(|e| e.stage == Stage::Script).count();
    assert_eq!(scripts, 4, "{events:?}");

    // Another process (the CLI, or another server) adds a host.
    let start = std::time::Instant::now();
    apply_all_or_none(
        &other,
        seed(),
        &[create("02:00:00:00:00:05", "late", None, None)],
        1,
    )
    .await
    .unwrap();
    while live.snapshot().get(&mac("02:00:00:00:00:05")).is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "not seen within 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_file_backend_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(file_store(dir.path())).await;
}

#[tokio::test]
async fn a_server_on_the_file_backend_records_stages_and_sees_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    live_contract(file_store(dir.path()), file_store(dir.path())).await;
}

#[tokio::test]
async fn the_postgres_backend_keeps_the_contract() {
    let Some(cluster) = cluster("ctr") else {
        return;
    };
    contract(pg_store(&cluster).await).await;
    // Nothing secret is stored in clear: the API token table holds hashes only.
    let hashes = cluster.psql("SELECT hash FROM api_tokens").unwrap();
    assert_eq!(hashes.len(), 64, "{hashes}");
}

#[tokio::test]
async fn a_server_on_the_postgres_backend_records_stages_and_sees_other_writers() {
    let Some(cluster) = cluster("live") else {
        return;
    };
    let (a, b) = (pg_store(&cluster).await, pg_store(&cluster).await);
    live_contract(a, b).await;
}

#[test]
fn a_version_1_hosts_json_is_read_as_state_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.json"),
        r#"{"version":1,"hosts":{"52:54:00:12:34:56":{"install":false,"stage":"done","stage_at":1700000000}}}"#,
    )
    .unwrap();
    let store = sixboot::inventory::file::FileStore::open(dir.path());
    let rows = store.load().unwrap();
    let state = &rows.states[&mac(NODE1)];
    assert!(!state.install);
    assert_eq!(state.stage, Stage::Done);
    assert_eq!(state.stage_at, 1_700_000_000_000);
    let _ = HostSpec::from_config;
}

/// `hosts add` on the file backend, `inventory export`, `inventory import` into
/// PostgreSQL, `hosts list` there: the same hosts, install flags and installer families.
#[test]
fn export_from_the_file_backend_imports_into_postgres() {
    let Some(cluster) = cluster("exp") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file_config = dir.path().join("file.toml");
    std::fs::write(&file_config, "[server]\nstate_dir = \"state\"\n").unwrap();
    let pg_config = dir.path().join("pg.toml");
    std::fs::write(
        &pg_config,
        format!(
            "[server]\nstate_dir = \"pg-state\"\n[inventory]\nbackend = \"postgres\"\nurl = \"{}\"\n",
            cluster.url()
        ),
    )
    .unwrap();
    sixboot(
        &[
            "hosts",
            "add",
            "02:00:00:00:00:0a",
            "--name",
            "n10",
            "--install",
        ],
        &file_config,
    );
    sixboot(
        &[
            "hosts",
            "add",
            "02:00:00:00:00:0b",
            "--name",
            "n11",
            "--var",
            "kernel_args=quiet",
            "--installer",
            "debian-installer",
        ],
        &file_config,
    );
    let export = dir.path().join("inventory.json");
    sixboot(
        &["inventory", "export", "--output", export.to_str().unwrap()],
        &file_config,
    );
    assert!(sixboot(&["inventory", "migrate"], &pg_config).contains("applied"));
    assert!(sixboot(
        &["inventory", "import", export.to_str().unwrap()],
        &pg_config
    )
    .contains("imported 2 hosts"));
    let list: serde_json::Value =
        serde_json::from_str(&sixboot(&["hosts", "list", "--json"], &pg_config)).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["name"].as_str(), rows[0]["install"].as_bool()),
        (Some("n10"), Some(true))
    );
    assert_eq!(
        (rows[1]["name"].as_str(), rows[1]["install"].as_bool()),
        (Some("n11"), Some(false))
    );
    // The installer family travels in the spec (jsonb): no column, no migration.
    assert_eq!(rows[0].get("installer"), None);
    assert_eq!(rows[1]["installer"].as_str(), Some("debian-installer"));
    // A second import into the now non-empty store changes nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(["inventory", "import", export.to_str().unwrap(), "--config"])
        .arg(&pg_config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty store only"));
}

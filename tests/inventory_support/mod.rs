//! Shared by the `inventory_*` tests: hosts, changes and stores.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use sixboot::inventory::{file::FileStore, BootEvent, Change, HostSpec, Stage, Store};
use sixboot::mac::Mac;

pub const NODE1: &str = "52:54:00:12:34:56";

pub fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

/// The config's hosts: node1, marked for install.
pub fn seed() -> Vec<(HostSpec, bool)> {
    vec![(
        HostSpec {
            mac: mac(NODE1),
            name: "node1".into(),
            address: Some("2001:db8:1::10".parse().unwrap()),
            vars: BTreeMap::new(),
            installer: None,
            bmc: None,
        },
        true,
    )]
}

pub fn create(m: &str, name: &str, address: Option<&str>, token: Option<&str>) -> Change {
    Change::Create {
        spec: HostSpec {
            mac: mac(m),
            name: name.into(),
            address: address.map(|a| a.parse().unwrap()),
            vars: BTreeMap::new(),
            installer: None,
            bmc: None,
        },
        install: token.is_some(),
        token: token.map(str::to_owned),
    }
}

pub fn event(mac: Mac, boot: u64, stage: Stage, at: u64) -> BootEvent {
    BootEvent {
        id: format!("{mac}-{boot}-{at}"),
        mac,
        boot,
        stage,
        at,
        server: "test".into(),
        peer: None,
        detail: None,
    }
}

pub fn file_store(dir: &Path) -> Store {
    Store::File(FileStore::open(dir))
}

/// A throwaway cluster (a recorded skip, or a CI failure, without PostgreSQL).
pub fn cluster(tag: &str) -> Option<sixboot_lab::postgres::Cluster> {
    let bin = sixboot_lab::postgres::need_server()?;
    Some(sixboot_lab::postgres::Cluster::start(&bin, tag).expect("start a PostgreSQL cluster"))
}

/// The cluster's database, migrated.
pub async fn pg_store(cluster: &sixboot_lab::postgres::Cluster) -> Store {
    let config = sixboot::config::PostgresConfig {
        url: cluster.url(),
        password_file: None,
        ca_file: None,
    };
    let pg = sixboot::inventory::postgres::PgStore::connect(&config)
        .await
        .unwrap();
    pg.migrate().await.unwrap();
    pg.check_schema().await.unwrap();
    Store::Postgres(pg)
}

/// Runs the `sixboot` binary with `args` and `--config config`; its stdout. Panics with
/// its stderr when it fails.
pub fn sixboot(args: &[&str], config: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sixboot {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

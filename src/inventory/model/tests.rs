//! The inventory's rules with hand-set time and tokens.

use super::*;

fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

fn spec(m: &str, name: &str, address: Option<&str>) -> HostSpec {
    HostSpec {
        mac: mac(m),
        name: name.into(),
        address: address.map(|a| a.parse().unwrap()),
        vars: BTreeMap::new(),
        installer: None,
        bmc: None,
    }
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const TOKEN2: &str = "fedcba9876543210fedcba9876543210";

fn seeded() -> Inventory {
    Inventory::new(
        vec![(
            spec("52:54:00:12:34:56", "node1", Some("2001:db8:1::10")),
            true,
        )],
        Rows::default(),
    )
}

#[test]
fn config_hosts_start_from_their_install_flag_and_need_a_token() {
    let inventory = seeded();
    let host = inventory.get(&mac("52:54:00:12:34:56")).unwrap();
    assert!(host.state.install);
    assert_eq!(host.origin, Origin::Config);
    assert_eq!(inventory.missing_tokens(), vec![mac("52:54:00:12:34:56")]);
    assert_eq!(inventory.by_name("node1").unwrap().spec.mac, host.spec.mac);
    assert!(inventory
        .by_address(&"2001:db8:1::10".parse().unwrap())
        .is_some());
}

#[test]
fn done_needs_the_current_token_and_turns_install_off() {
    let mut inventory = seeded();
    let node = mac("52:54:00:12:34:56");
    inventory
        .apply(
            &Change::SetInstall {
                mac: node,
                install: true,
                token: Some(TOKEN.into()),
            },
            1,
        )
        .unwrap();
    let wrong = Change::Done {
        mac: node,
        token: TOKEN2.into(),
    };
    assert_eq!(
        inventory.apply(&wrong, 2),
        Err(ChangeError::WrongToken(node))
    );
    let done = Change::Done {
        mac: node,
        token: TOKEN.into(),
    };
    let applied = inventory.apply(&done, 3).unwrap();
    let state = &applied.host.unwrap().state;
    assert!(!state.install && state.token.is_none());
    assert_eq!(state.stage, Stage::Done);
    // The same /done again (a replay after an outage) changes nothing.
    assert_eq!(
        inventory.apply(&done, 4),
        Err(ChangeError::NotInstalling(node))
    );
}

#[test]
fn reinstall_after_done_issues_a_new_token_and_the_old_one_is_refused() {
    let mut inventory = seeded();
    let node = mac("52:54:00:12:34:56");
    let set = |token: &str| Change::SetInstall {
        mac: node,
        install: true,
        token: Some(token.into()),
    };
    inventory.apply(&set(TOKEN), 1).unwrap();
    inventory.apply(&set(TOKEN2), 2).unwrap();
    let old = Change::Done {
        mac: node,
        token: TOKEN.into(),
    };
    assert_eq!(inventory.apply(&old, 3), Err(ChangeError::WrongToken(node)));
    assert!(inventory.get(&node).unwrap().state.install);
}

#[test]
fn create_refuses_taken_macs_names_and_addresses_naming_the_field() {
    let mut inventory = seeded();
    let create = |s: HostSpec| Change::Create {
        spec: s,
        install: false,
        token: None,
    };
    let err = |r: Result<Applied, ChangeError>| match r {
        Err(ChangeError::Conflict { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(inventory.apply(&create(spec("52:54:00:12:34:56", "x", None)), 1)),
        "mac"
    );
    assert_eq!(
        err(inventory.apply(&create(spec("02:00:00:00:00:01", "node1", None)), 1)),
        "name"
    );
    assert_eq!(
        err(inventory.apply(
            &create(spec("02:00:00:00:00:01", "n2", Some("2001:db8:1::10"))),
            1
        )),
        "address"
    );
    assert_eq!(inventory.len(), 1, "nothing half-applied");
    let applied = inventory
        .apply(
            &create(spec("02:00:00:00:00:01", "n2", Some("2001:db8:1::11"))),
            1,
        )
        .unwrap();
    assert_eq!(applied.writes.len(), 2);
    assert_eq!(inventory.len(), 2);
}

#[test]
fn config_hosts_are_read_only_and_edits_check_the_version() {
    let mut inventory = seeded();
    let err = inventory
        .apply(
            &Change::Remove {
                mac: mac("52:54:00:12:34:56"),
                expected_version: None,
            },
            1,
        )
        .unwrap_err();
    assert!(matches!(err, ChangeError::ConfigHost(_)));
    inventory
        .apply(
            &Change::Create {
                spec: spec("02:00:00:00:00:01", "n2", None),
                install: false,
                token: None,
            },
            1,
        )
        .unwrap();
    let stale = Change::Update {
        spec: spec("02:00:00:00:00:01", "renamed", None),
        expected_version: Some(7),
    };
    assert!(matches!(
        inventory.apply(&stale, 2),
        Err(ChangeError::Version { actual: 1, .. })
    ));
    let fresh = Change::Update {
        spec: spec("02:00:00:00:00:01", "renamed", None),
        expected_version: Some(1),
    };
    inventory.apply(&fresh, 2).unwrap();
    assert!(inventory.by_name("n2").is_none());
    assert_eq!(inventory.by_name("renamed").unwrap().version, 2);
}

#[test]
fn a_repeated_stage_writes_nothing_and_boots_are_numbered() {
    let mut inventory = seeded();
    let node = mac("52:54:00:12:34:56");
    let seen = |stage, at| {
        Change::Stage(Observation {
            mac: node,
            stage,
            detail: None,
            at,
            peer: None,
        })
    };
    assert_eq!(
        inventory
            .apply(&seen(Stage::Reply, 10), 10)
            .unwrap()
            .new_stage,
        Some(1)
    );
    assert_eq!(
        inventory
            .apply(&seen(Stage::Script, 20), 20)
            .unwrap()
            .new_stage,
        Some(1)
    );
    let again = inventory.apply(&seen(Stage::Script, 30), 30).unwrap();
    assert!(again.writes.is_empty() && again.new_stage.is_none());
    assert_eq!(
        inventory
            .apply(&seen(Stage::LocalDisk, 40), 40)
            .unwrap()
            .new_stage,
        Some(1)
    );
    assert_eq!(
        inventory
            .apply(&seen(Stage::Reply, 50), 50)
            .unwrap()
            .new_stage,
        Some(2)
    );
    assert_eq!(
        inventory
            .apply(&seen(Stage::Script, 60 + BOOT_GAP_MILLIS), 0)
            .unwrap()
            .new_stage,
        Some(3)
    );
}

#[test]
fn rows_round_trip_through_a_new_inventory() {
    let mut inventory = seeded();
    inventory
        .apply(
            &Change::Create {
                spec: spec("02:00:00:00:00:01", "n2", None),
                install: true,
                token: Some(TOKEN.into()),
            },
            1,
        )
        .unwrap();
    let rows = inventory.rows();
    let again = Inventory::new(
        vec![(
            spec("52:54:00:12:34:56", "node1", Some("2001:db8:1::10")),
            true,
        )],
        rows.clone(),
    );
    assert_eq!(again.rows(), rows);
    let n2 = again.get(&mac("02:00:00:00:00:01")).unwrap();
    assert_eq!(n2.origin, Origin::Store);
    assert_eq!(n2.state.token.as_deref(), Some(TOKEN));
}

#[test]
fn retention_keeps_the_last_boots_of_each_host() {
    let event = |boot, at| BootEvent {
        id: format!("{boot}-{at}"),
        mac: mac("52:54:00:12:34:56"),
        boot,
        stage: Stage::Script,
        at,
        server: "a".into(),
        peer: None,
        detail: None,
    };
    let kept = retain_recent_boots(
        vec![event(3, 30), event(1, 10), event(2, 20), event(3, 31)],
        2,
    );
    let boots: Vec<u64> = kept.iter().map(|e| e.boot).collect();
    assert_eq!(boots, vec![2, 3, 3]);
}

#[test]
fn check_spec_names_the_field() {
    let subnets = [crate::config::Prefix {
        address: "2001:db8:1::".parse().unwrap(),
        len: 64,
    }];
    let bad_name = spec("02:00:00:00:00:01", "a b", None);
    assert!(matches!(
        check_spec(&bad_name, &subnets),
        Err(ChangeError::Invalid { field: "name", .. })
    ));
    let outside = spec("02:00:00:00:00:01", "ok", Some("2001:db8:2::1"));
    assert!(matches!(
        check_spec(&outside, &subnets),
        Err(ChangeError::Invalid {
            field: "address",
            ..
        })
    ));
}

//! Request bodies, and responses recorded from sushy-tools 2.2.0's emulator (libvirt
//! driver, embedded QEMU driver, a SeaBIOS domain `node1` and an OVMF domain
//! `node-uefi`) with curl: `tests/fixtures/redfish/*.json`.

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/redfish/",
            $name
        ))
    };
}

fn system(text: &str) -> ComputerSystem {
    serde_json::from_str(text).expect("a recorded ComputerSystem parses")
}

#[test]
fn the_one_time_override_body_says_once_and_the_target() {
    assert_eq!(
        boot_override_body("Pxe", None),
        serde_json::json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Pxe"}})
    );
    assert_eq!(
        boot_override_body("UefiHttp", Some("http://[2001:db8::1]/ipxe.efi")),
        serde_json::json!({"Boot": {
            "BootSourceOverrideEnabled": "Once",
            "BootSourceOverrideTarget": "UefiHttp",
            "HttpBootUri": "http://[2001:db8::1]/ipxe.efi"
        }})
    );
    assert_eq!(
        reset_body("ForceRestart").to_string(),
        r#"{"ResetType":"ForceRestart"}"#
    );
}

#[test]
fn service_root_and_systems_collection_parse() {
    let root: ServiceRoot = serde_json::from_str(fixture!("service-root.json")).unwrap();
    assert_eq!(root.systems.unwrap().id, "/redfish/v1/Systems");
    assert_eq!(root.redfish_version.as_deref(), Some("1.5.0"));
    let systems: Collection = serde_json::from_str(fixture!("systems.json")).unwrap();
    assert_eq!(
        systems.members,
        vec![Link {
            id: "/redfish/v1/Systems/5b5b0000-0000-4000-8000-5254005b0001".into()
        }]
    );
    let two: Collection = serde_json::from_str(fixture!("systems-two.json")).unwrap();
    assert_eq!(two.members.len(), 2);
}

#[test]
fn a_running_bios_system_from_its_disk_parses_with_allowable_values() {
    let s = system(fixture!("system-disk.json"));
    assert_eq!(s.id, "5b5b0000-0000-4000-8000-5254005b0001");
    assert_eq!(s.name.as_deref(), Some("node1"));
    assert_eq!(s.power_state.as_deref(), Some("On"));
    let boot = s.boot.as_ref().unwrap();
    assert_eq!(boot.target.as_deref(), Some("Hdd"));
    // sushy-tools' libvirt driver always reports (and applies) Continuous.
    assert_eq!(boot.enabled.as_deref(), Some("Continuous"));
    assert_eq!(
        boot.allowable_targets.as_deref(),
        Some(&["Pxe".to_string(), "Cd".into(), "Hdd".into()][..])
    );
    assert_eq!(boot.http_boot_uri, None, "a BIOS system has no HttpBootUri");
    let reset = s.actions.as_ref().unwrap().reset.as_ref().unwrap();
    assert_eq!(
        reset.target,
        "/redfish/v1/Systems/5b5b0000-0000-4000-8000-5254005b0001/Actions/ComputerSystem.Reset"
    );
    assert!(reset
        .allowable
        .as_ref()
        .unwrap()
        .contains(&"ForceRestart".to_string()));
    assert!(system_matches(&s, "/redfish/v1/Systems/x", "node1"));
    assert!(system_matches(
        &s,
        "/redfish/v1/Systems/x",
        "5B5B0000-0000-4000-8000-5254005B0001"
    ));
    assert!(!system_matches(&s, "/redfish/v1/Systems/x", "node2"));
}

#[test]
fn pxe_is_supported_and_uefi_http_is_not_on_a_bios_system() {
    let s = system(fixture!("system-disk.json"));
    assert_eq!(check_target(s.boot.as_ref(), "Pxe"), Ok(()));
    assert_eq!(
        check_target(s.boot.as_ref(), "UefiHttp"),
        Err(vec!["Pxe".to_string(), "Cd".into(), "Hdd".into()])
    );
    // Nothing listed: the BMC's answer to the PATCH decides.
    assert_eq!(check_target(None, "UefiHttp"), Ok(()));
}

#[test]
fn a_uefi_system_offers_uefi_http_and_http_boot_uri() {
    let s = system(fixture!("system-uefi.json"));
    let boot = s.boot.as_ref().unwrap();
    assert_eq!(boot.mode.as_deref(), Some("UEFI"));
    assert_eq!(check_target(Some(boot), "UefiHttp"), Ok(()));
    assert!(boot.http_boot_uri.is_some());
    let url = Some("http://[2001:db8::1]/ipxe.efi");
    assert_eq!(
        http_boot_uri_to_send(BootPath::UefiHttp, Some(boot), url),
        url
    );
    assert_eq!(http_boot_uri_to_send(BootPath::Pxe, Some(boot), url), None);
    let bios = system(fixture!("system-disk.json"));
    assert_eq!(
        http_boot_uri_to_send(BootPath::UefiHttp, bios.boot.as_ref(), url),
        None
    );
}

#[test]
fn restart_is_force_restart_when_on_and_on_when_off() {
    let on = system(fixture!("system-disk.json"));
    assert_eq!(
        reset_type(PowerAction::Cycle, &on),
        Ok(Some("ForceRestart"))
    );
    assert_eq!(reset_type(PowerAction::On, &on), Ok(None));
    assert_eq!(reset_type(PowerAction::Off, &on), Ok(Some("ForceOff")));
    let off = system(fixture!("system-off.json"));
    assert_eq!(off.power_state.as_deref(), Some("Off"));
    assert_eq!(reset_type(PowerAction::Cycle, &off), Ok(Some("On")));
    assert_eq!(reset_type(PowerAction::On, &off), Ok(Some("On")));
    assert_eq!(reset_type(PowerAction::Off, &off), Ok(None));
}

#[test]
fn a_bmc_without_force_restart_gets_the_next_best_or_a_named_refusal() {
    let mut s = system(fixture!("system-disk.json"));
    let reset = s.actions.as_mut().unwrap().reset.as_mut().unwrap();
    reset.allowable = Some(vec!["On".into(), "PowerCycle".into()]);
    assert_eq!(reset_type(PowerAction::Cycle, &s), Ok(Some("PowerCycle")));
    s.actions
        .as_mut()
        .unwrap()
        .reset
        .as_mut()
        .unwrap()
        .allowable = Some(vec!["Nmi".into()]);
    let refused = reset_type(PowerAction::Cycle, &s).unwrap_err();
    assert_eq!(refused.supported, vec!["Nmi".to_string()]);
    assert_eq!(refused.wanted[0], "ForceRestart");
}

#[test]
fn the_override_the_emulator_shows_after_the_patch() {
    let s = system(fixture!("system-pxe.json"));
    assert_eq!(s.boot.unwrap().target.as_deref(), Some("Pxe"));
}

#[test]
fn error_bodies_give_their_message() {
    assert_eq!(
        error_message(fixture!("error-401.json").as_bytes()).as_deref(),
        Some("Incorrect username or password")
    );
    let missing = error_message(fixture!("error-404.json").as_bytes()).unwrap();
    assert!(
        missing.starts_with("Error finding domain by name/UUID \"no-such-node\""),
        "{missing}"
    );
    // DSP0266 section 9.6's example shape: ExtendedInfo messages follow the summary.
    let body = br#"{"error": {"code": "Base.1.0.GeneralError",
        "message": "A general error has occurred. See ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.PropertyValueNotInList",
        "Message": "The value Floppy for the property BootSourceOverrideTarget is not in the list of acceptable values."}]}}"#;
    assert_eq!(
        error_message(body).unwrap(),
        "A general error has occurred. See ExtendedInfo for more information.; The value \
         Floppy for the property BootSourceOverrideTarget is not in the list of acceptable values."
    );
    // sushy-tools answers some 400s with plain text.
    assert_eq!(
        error_message(b"Failed to download and attach HttpBootUri.").as_deref(),
        Some("Failed to download and attach HttpBootUri.")
    );
    assert_eq!(error_message(b"  "), None);
    assert_eq!(error_message(&[b'x'; 400]).unwrap().chars().count(), 301);
}

#[test]
fn boot_paths_have_one_spelling() {
    for path in [BootPath::Pxe, BootPath::UefiHttp] {
        assert_eq!(BootPath::parse(path.as_str()), Some(path));
    }
    assert_eq!(BootPath::parse("Pxe"), None);
    assert_eq!(BootPath::UefiHttp.target(), "UefiHttp");
}

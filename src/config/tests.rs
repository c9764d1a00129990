//! Validation tests: one per rule, each naming the line and field it expects.

use super::*;

pub(super) fn check(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/etc/sixboot/lab.toml"), text)
}

pub(super) fn problems(text: &str) -> Vec<String> {
    check(text)
        .expect_err("config should be rejected")
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../examples/lab.toml");
    let config = check(text).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.ra.enabled || !config.interfaces.is_empty());
    assert!(!config.hosts.is_empty());
}

#[test]
fn an_empty_config_is_valid_and_ra_is_off() {
    let config = check("").unwrap();
    assert!(!config.ra.enabled);
    assert_eq!(config.dhcp.unknown_hosts, UnknownHosts::Pool);
}

#[test]
fn rejects_address_with_two_double_colons_naming_line_and_field() {
    let p = problems("[dhcp]\ndns_servers = [\"2401::beef:20::20\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("/etc/sixboot/lab.toml:2:"), "{}", p[0]);
    assert!(p[0].contains("dhcp.dns_servers[0]"), "{}", p[0]);
    assert!(p[0].contains("only once"), "{}", p[0]);
}

#[test]
fn rejects_url_with_unbracketed_ipv6_literal() {
    let p = problems("[boot]\nipxe_script_url = \"http://2001:db8::1/ipxe/{mac}\"\n");
    assert!(p[0].contains("without brackets"), "{}", p[0]);
    assert!(check_url("http://[2001:db8::1]/ks.cfg").is_ok());
    assert!(check_url("http://[2001:db8::1]:8080/ks.cfg").is_ok());
    assert!(check_url("tftp://[2001:db8::1]/ipxe.efi").is_ok());
    assert!(check_url("/relative").is_err());
    assert!(check_url("http://[2001:db8::1/x").is_err());
}

#[test]
fn rejects_pool_outside_its_prefix() {
    let p = problems(
        "[[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\npool_start = \"2001:db8:1::100\"\npool_end = \"2001:db8:2::1ff\"\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains(":4:") && p[0].contains("pool_end"),
        "{}",
        p[0]
    );
}

#[test]
fn rejects_duplicate_macs_and_addresses() {
    let p = problems(
        "[[hosts]]\nmac = \"52:54:00:12:34:56\"\naddress = \"2001:db8::10\"\n\
         [[hosts]]\nmac = \"52-54-00-12-34-56\"\naddress = \"2001:db8::10\"\nname = \"b\"\n",
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("hosts[1].mac") && p[0].contains("hosts[0]"));
    assert!(p[1].contains("hosts[1].address"));
}

#[test]
fn rejects_lifetimes_in_the_wrong_order() {
    let p = problems("[dhcp]\npreferred_lifetime_secs = 7200\nvalid_lifetime_secs = 3600\n");
    assert!(p[0].contains("must not be greater"), "{p:?}");
    let p = problems("[dhcp]\nt1_secs = 3000\nt2_secs = 1000\n");
    assert!(p[0].contains("dhcp.t1_secs"), "{p:?}");
}

#[test]
fn rejects_unknown_fields_with_their_line() {
    let p = problems("[ra]\nenabled = true\nmanagd = true\n");
    assert!(p[0].contains(":3:") && p[0].contains("managd"), "{}", p[0]);
}

#[test]
fn reports_every_problem_at_once() {
    let p = problems(
        "[dhcp]\ndns_servers = [\"nope\"]\nunknown_hosts = \"drop\"\n[[hosts]]\nmac = \"zz\"\n",
    );
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn tftp_section_gets_defaults_and_a_root_relative_to_the_file() {
    let config = check("[tftp]\nroot = \"dist\"\n").unwrap();
    let tftp = config.tftp.expect("[tftp] was given");
    assert_eq!(tftp.root, PathBuf::from("/etc/sixboot/dist"));
    assert_eq!(tftp.listen, vec!["[::]:69".parse().unwrap()]);
    assert_eq!(tftp.max_block_size, 1468);
    assert_eq!(tftp.max_window_size, 16);
    assert_eq!(tftp.timeout, std::time::Duration::from_secs(1));
}

#[test]
fn tftp_limits_are_read_and_checked_against_their_rfc_ranges() {
    let config = check(
        "[tftp]\nroot = \"/srv/tftp\"\nlisten = [\"[2001:db8:1::1]:69\"]\n\
         max_block_size = 8192\nmax_window_size = 4\ntimeout_secs = 3\nretries = 2\n",
    )
    .unwrap();
    let tftp = config.tftp.unwrap();
    assert_eq!(tftp.max_block_size, 8192);
    assert_eq!(tftp.max_window_size, 4);
    assert_eq!(tftp.timeout, std::time::Duration::from_secs(3));
    assert_eq!(tftp.retries, 2);

    let p = problems(
        "[tftp]\nroot = \"/srv/tftp\"\nmax_block_size = 70000\nmax_window_size = 0\n\
         timeout_secs = 300\n",
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].contains(":3:") && p[0].contains("tftp.max_block_size"),
        "{}",
        p[0]
    );
    assert!(p[0].contains("8 to 65464"), "{}", p[0]);
    assert!(p[1].contains("tftp.max_window_size"), "{}", p[1]);
    assert!(p[2].contains("tftp.timeout_secs"), "{}", p[2]);
}

#[test]
fn tftp_without_root_or_with_a_bad_listen_address_is_rejected() {
    let p = problems("[tftp]\nlisten = [\"2001:db8::1:69\"]\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("tftp.listen[0]") && p[0].contains("[2001:db8:1::1]:69"));
    assert!(p[1].contains("tftp.root"), "{}", p[1]);
}

#[test]
fn tls_listen_and_certificate_come_together() {
    let p = problems("[http]\ntls_listen = [\"[::1]:443\"]\n");
    assert!(
        p[0].contains("http.tls_listen") && p[0].contains(":2:"),
        "{p:?}"
    );
    let p = problems("[http]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
    assert!(p[0].contains("http.tls_listen"), "{p:?}");
    let config =
        check("[http]\ntls_listen = [\"[::1]:443\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n")
            .unwrap();
    assert_eq!(config.http.tls_listen.len(), 1);
    assert_eq!(config.http.tls.unwrap().0, Path::new("/etc/sixboot/c.pem"));
}

#[test]
fn prefix_contains_only_its_addresses() {
    let p = Prefix {
        address: "2001:db8:1::".parse().unwrap(),
        len: 64,
    };
    assert!(p.contains(&"2001:db8:1::ffff".parse().unwrap()));
    assert!(!p.contains(&"2001:db8:2::1".parse().unwrap()));
}

fn warnings(text: &str) -> Vec<String> {
    check(text)
        .unwrap_or_else(|e| panic!("config should be accepted: {e}"))
        .warnings
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn per_architecture_boot_files_and_the_older_keys_as_x86_64() {
    use crate::dhcpv6::class::{BootMethod, Cpu};
    let config = check(
        "[boot]\nefi_url = \"tftp://[2001:db8::1]/x64.efi\"\n\
         http_boot_url = \"http://[2001:db8::1]/x64.efi\"\n\
         [boot.pxe]\narm64 = \"tftp://[2001:db8::1]/aa64.efi\"\n\
         ia32 = \"tftp://[2001:db8::1]/ia32.efi\"\n\
         [boot.http]\narm64 = \"https://[2001:db8::1]/aa64.efi\"\n",
    )
    .unwrap();
    let b = &config.boot;
    assert_eq!(
        b.file(BootMethod::Pxe, Cpu::X86_64),
        Some("tftp://[2001:db8::1]/x64.efi")
    );
    assert_eq!(
        b.file(BootMethod::Pxe, Cpu::Arm64),
        Some("tftp://[2001:db8::1]/aa64.efi")
    );
    assert_eq!(
        b.file(BootMethod::Pxe, Cpu::Ia32),
        Some("tftp://[2001:db8::1]/ia32.efi")
    );
    assert_eq!(
        b.file(BootMethod::Http, Cpu::X86_64),
        Some("http://[2001:db8::1]/x64.efi")
    );
    assert_eq!(
        b.file(BootMethod::Http, Cpu::Arm64),
        Some("https://[2001:db8::1]/aa64.efi")
    );
    assert_eq!(b.file(BootMethod::Http, Cpu::Ia32), None);
    assert_eq!(b.ipxe_user_classes, vec![b"iPXE".to_vec()]);
    assert!(config.warnings.is_empty());
}

#[test]
fn the_older_key_and_the_new_one_for_the_same_file_are_an_error() {
    let p = problems(
        "[boot]\nefi_url = \"tftp://[2001:db8::1]/a.efi\"\n[boot.pxe]\nx86_64 = \"tftp://[2001:db8::1]/b.efi\"\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains(":2:") && p[0].contains("boot.efi_url") && p[0].contains("keep one"));
}

#[test]
fn an_unknown_architecture_key_is_named_with_the_ones_that_exist() {
    let p = problems("[boot.pxe]\naarch64 = \"tftp://[2001:db8::1]/a.efi\"\n");
    assert!(
        p[0].contains(":2:") && p[0].contains("aarch64") && p[0].contains("arm64"),
        "{p:?}"
    );
}

#[test]
fn ipxe_user_classes_are_read_and_must_not_be_empty_strings() {
    let config = check("[boot]\nipxe_user_classes = [\"iPXE\", \"site-ipxe\"]\n").unwrap();
    assert_eq!(
        config.boot.ipxe_user_classes,
        vec![b"iPXE".to_vec(), b"site-ipxe".to_vec()]
    );
    let p = problems("[boot]\nipxe_user_classes = [\"\"]\n");
    assert!(p[0].contains("boot.ipxe_user_classes[0]"), "{p:?}");
}

#[test]
fn uefi_pxe_urls_must_be_tftp_with_a_bracketed_literal_and_no_port() {
    for (url, needle) in [
        ("http://[2001:db8:1::1]/files/ipxe.efi", "only tftp://"),
        ("tftp://[2001:db8:1::1]:69/ipxe.efi", "no port"),
        ("tftp://boot.example.com:69/ipxe.efi", "no port"),
        (
            "tftp://boot.example.com/ipxe.efi",
            "dhcp.dns_servers is empty",
        ),
        ("tftp://[2001:db8:1::1]/", "names no file"),
        (
            "tftp://[2001:db8:1::1]/ipxe.efi;mode=netascii",
            "mode=octet",
        ),
    ] {
        for key in ["[boot]\nefi_url", "[boot.pxe]\narm64"] {
            let p = problems(&format!("{key} = \"{url}\"\n"));
            assert_eq!(p.len(), 1, "{url}: {p:?}");
            assert!(
                p[0].contains(":2:") && p[0].contains(needle),
                "{url}: {}",
                p[0]
            );
            assert!(!p[0].contains("warning"), "{}", p[0]);
        }
    }
    assert!(check("[boot]\nefi_url = \"tftp://[2001:db8:1::1]/ipxe.efi;mode=octet\"\n").is_ok());
}

#[test]
fn a_pxe_host_name_with_dns_servers_is_a_warning_not_an_error() {
    let w = warnings(
        "[dhcp]\ndns_servers = [\"2001:db8::53\"]\n[boot]\nefi_url = \"tftp://boot.example.com/ipxe.efi\"\n",
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("/etc/sixboot/lab.toml:4:") && w[0].contains("warning: boot.efi_url"));
    assert!(w[0].contains("UEFI 2.6"), "{}", w[0]);
}

#[test]
fn http_boot_urls_must_be_http_and_a_host_name_needs_dns_servers() {
    let p = problems("[boot]\nhttp_boot_url = \"tftp://[2001:db8:1::1]/ipxe.efi\"\n");
    assert!(
        p[0].contains("boot.http_boot_url") && p[0].contains("http:// or https://"),
        "{p:?}"
    );
    let p = problems("[boot.http]\narm64 = \"http://boot.example.com/ipxe.efi\"\n");
    assert!(
        p[0].contains(":2:") && p[0].contains("boot.http.arm64"),
        "{p:?}"
    );
    assert!(p[0].contains("HttpBootSelectDhcpOffer"), "{p:?}");
    assert!(warnings(
        "[dhcp]\ndns_servers = [\"2001:db8::53\"]\n[boot.http]\narm64 = \"http://boot.example.com/ipxe.efi\"\n"
    )
    .is_empty());
}

#[test]
fn ipxe_script_url_with_a_host_name_and_no_dns_is_a_warning() {
    let w = warnings("[boot]\nipxe_script_url = \"http://boot.example.com/ipxe/{mac}\"\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(":2:") && w[0].contains("RDNSS"), "{}", w[0]);
}

#[test]
fn autonomous_on_a_prefix_that_is_not_a_64_is_an_error() {
    let p = problems("[[ra.prefixes]]\nprefix = \"2001:db8:1::/56\"\nautonomous = true\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains(":3:")
            && p[0].contains("ra.prefixes[0].autonomous")
            && p[0].contains("5.5.3")
    );
    assert!(check("[[ra.prefixes]]\nprefix = \"2001:db8:1::/56\"\nautonomous = false\n").is_ok());
    assert!(check("[[ra.prefixes]]\nprefix = \"2001:db8:1::/64\"\nautonomous = true\n").is_ok());
}

#[test]
fn ra_without_m_and_no_pool_while_uefi_files_are_configured_is_a_warning() {
    let base = "[server]\ninterfaces = [\"br0\"]\n[ra]\nenabled = true\nmanaged = false\n\
                [[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n\
                [boot]\nefi_url = \"tftp://[2001:db8:1::1]/ipxe.efi\"\n";
    let w = warnings(base);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(":5:") && w[0].contains("warning: ra.managed"),
        "{}",
        w[0]
    );
    // A pool, or M set, or no UEFI file: no warning.
    assert!(warnings(&base.replace(
        "prefix = \"2001:db8:1::/64\"\n",
        "prefix = \"2001:db8:1::/64\"\npool_start = \"2001:db8:1::100\"\npool_end = \"2001:db8:1::1ff\"\n"
    ))
    .is_empty());
    assert!(warnings(&base.replace("managed = false", "managed = true")).is_empty());
    assert!(warnings(&base.replace("efi_url", "ipxe_script_url")).is_empty());
}

#[test]
fn relays_map_to_subnets_and_bad_or_ambiguous_mappings_are_errors() {
    let config = check(
        "[[dhcp.subnets]]\nprefix = \"2001:db8:b170::/64\"\n\
         [[dhcp.subnets.relays]]\ninterface_id = \"igb1\"\n\
         [[dhcp.subnets.relays]]\nlink_address = \"fe80::1\"\ninterface_id = \"igb2\"\n",
    )
    .unwrap();
    let relays = &config.dhcp.subnets[0].relays;
    assert_eq!(relays.len(), 2);
    assert!(relays[0].matches(&"fe80::9".parse().unwrap(), Some(b"igb1")));
    assert!(!relays[1].matches(&"fe80::9".parse().unwrap(), Some(b"igb2")));
    assert!(relays[1].matches(&"fe80::1".parse().unwrap(), Some(b"igb2")));

    let p = problems("[[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n[[dhcp.subnets.relays]]\n");
    assert!(
        p[0].contains("dhcp.subnets[0].relays[0]") && p[0].contains("link_address"),
        "{p:?}"
    );
    let p = problems(
        "[[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n[[dhcp.subnets.relays]]\ninterface_id = \"igb1\"\n\
         [[dhcp.subnets]]\nprefix = \"2001:db8:2::/64\"\n[[dhcp.subnets.relays]]\ninterface_id = \"igb1\"\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains(":7:")
            && p[0].contains("dhcp.subnets[1].relays[0]")
            && p[0].contains("dhcp.subnets[0]")
    );
    let p = problems(
        "[[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\n[[dhcp.subnets.relays]]\nlink_address = \"fe80::zz\"\n",
    );
    assert!(p[0].contains("relays[0].link_address"), "{p:?}");
}

#[test]
fn warnings_are_listed_with_the_errors_when_a_file_is_rejected() {
    let err = check(
        "[boot]\nipxe_script_url = \"http://boot.example.com/x\"\nefi_url = \"http://[2001:db8::1]/x\"\n",
    )
    .unwrap_err();
    assert_eq!(err.errors().count(), 1);
    assert_eq!(err.problems.len(), 2);
    let text = err.to_string();
    assert!(text.starts_with("1 problem in the configuration"), "{text}");
    assert!(text.contains("warning: boot.ipxe_script_url"), "{text}");
}

#[test]
fn a_host_bmc_takes_its_password_from_a_file_relative_to_the_config() {
    let config = check(
        "[[hosts]]\nmac = \"52:54:00:5b:00:15\"\nname = \"node1\"\n[hosts.bmc]\n\
         url = \"https://[2001:db8:ff::10]\"\nusername = \"admin\"\n\
         password_file = \"bmc/node1\"\nboot = \"uefi-http\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bmc = config.hosts[0].bmc.as_ref().expect("the BMC is kept");
    assert_eq!(
        bmc.password_file.as_deref(),
        Some(Path::new("/etc/sixboot/bmc/node1"))
    );
    assert_eq!(bmc.boot, crate::bmc::BootPath::UefiHttp);
    assert!(bmc.verify_tls, "TLS is verified unless turned off");
}

#[test]
fn rejects_a_bmc_password_in_the_config_and_a_bad_bmc_url_or_boot_path() {
    let p = problems(
        "[[hosts]]\nmac = \"52:54:00:5b:00:15\"\n[hosts.bmc]\n\
         url = \"https://[2001:db8:ff::10]/redfish/v1\"\nusername = \"admin\"\n\
         password = \"hunter2\"\nboot = \"floppy\"\n",
    );
    let text = p.join("\n");
    assert!(
        text.contains(":4:") && text.contains("hosts[0].bmc.url") && text.contains("has a path"),
        "{text}"
    );
    assert!(
        text.contains(":6:")
            && text.contains("hosts[0].bmc.password")
            && text.contains("password_file"),
        "{text}"
    );
    assert!(
        text.contains("hosts[0].bmc.boot") && text.contains("uefi-http"),
        "{text}"
    );
    assert!(
        text.contains("hosts[0].bmc.password_file"),
        "username without password_file: {text}"
    );
    assert!(
        !text.contains("hunter2"),
        "the password is not repeated: {text}"
    );
}

//! Validation tests: one per rule, each naming the line and field it expects.

use super::*;

fn check(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/etc/sixboot/lab.toml"), text)
}

fn problems(text: &str) -> Vec<String> {
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

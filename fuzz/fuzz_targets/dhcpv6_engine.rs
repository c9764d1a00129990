//! Any datagram through the DHCPv6 engine's parse path, with a lease table that
//! already holds leases: it may be ignored, never panic. Run with
//! `cargo +nightly fuzz run dhcpv6_engine` from the repository root.

#![no_main]

use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sixboot::config::Config;
use sixboot::dhcpv6::{Engine, Request};
use sixboot::leases::LeaseTable;

const CONFIG: &str = r#"
[server]
interfaces = ["sbd-fz"]
[dhcp]
dns_servers = ["2001:db8:1::1"]
domain_search = ["lab.example"]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "2001:db8:1::103"
interface = "sbd-fz"
[[dhcp.subnets]]
prefix = "2001:db8:2::/64"
pool_start = "2001:db8:2::100"
pool_end = "2001:db8:2::1ff"
[boot]
ipxe_script_url = "http://[2001:db8:1::1]/ipxe/ipxe-{mac}.cfg"
efi_url = "tftp://[2001:db8:1::1]/ipxe.efi"
http_boot_url = "http://[2001:db8:1::1]/files/ipxe.efi"
bootfile_params = ["a", "b"]
[[hosts]]
mac = "52:54:00:12:34:56"
address = "2001:db8:1::10"
"#;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = Config::from_toml(Path::new("fuzz.toml"), CONFIG).expect("valid config");
        Engine::new(Arc::new(config), vec![0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
    })
}

fuzz_target!(|data: &[u8]| {
    let mut leases = LeaseTable::default();
    // Feed the datagram twice so that the second pass sees any lease the first made.
    for _ in 0..2 {
        let request = Request {
            payload: data,
            source: "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap(),
            interface: Some("sbd-fz"),
        };
        if let Ok(outcome) = engine().handle(&request, &leases, 1_800_000_000) {
            for change in &outcome.changes {
                leases.apply(change);
            }
        }
    }
});

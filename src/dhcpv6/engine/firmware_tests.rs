//! Engine tests with datagrams laid out byte for byte as real clients build them:
//! edk2 (`Dhcp6SendSolicitMsg`/`Dhcp6SendRequestMsg` in NetworkPkg/Dhcp6Dxe/Dhcp6Io.c:
//! Client ID, Elapsed Time, [Server ID], IA_NA, then the caller's options from
//! `PxeBcBuildDhcp6Options` or `HttpBootBuildDhcp6Options`: ORO 59/60/23/16, UNDI
//! (62), architecture (61), vendor class (16)) and iPXE (`dhcpv6_tx` in
//! src/net/udp/dhcpv6.c: Client ID, [Server ID], IA_NA, ORO 23/24/59/60, vendor class,
//! architecture, NDI, user class, Elapsed Time). For every client kind and
//! architecture: the exact options 59, 60 and 16 in the Advertise and in the Reply.
//! Then the relay cases: link-local link-address, Interface-ID only, mapped, unmapped,
//! nested.

use super::*;
use crate::dhcpv6::class::ClientKind;
use crate::dhcpv6::wire::field;
use std::path::Path;

const SERVER_DUID: &[u8] = &[0, 4, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
const NOW: u64 = 1_800_000_000;

/// A mixed fleet: x86-64, IA32 and ARM64 PXE files, x86-64 and ARM64 HTTP Boot files,
/// a BIOS PXE file, nothing for RISC-V; boot-file parameters set; one subnet on the
/// server's link and one behind a relay that writes a link-local link-address.
const FLEET: &str = r#"
[dhcp]
dns_servers = ["2001:db8:1::53"]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "2001:db8:1::1ff"
interface = "br-boot"
[[dhcp.subnets]]
prefix = "2001:db8:b170::/64"
pool_start = "2001:db8:b170::100"
pool_end = "2001:db8:b170::1ff"
[[dhcp.subnets.relays]]
interface_id = "igb1"
[[dhcp.subnets]]
prefix = "2001:db8:c0::/64"
pool_start = "2001:db8:c0::100"
pool_end = "2001:db8:c0::1ff"
[[dhcp.subnets.relays]]
link_address = "fe80::c0"
interface_id = "port3"
[[dhcp.subnets]]
prefix = "2001:db8:d0::/64"
pool_start = "2001:db8:d0::100"
pool_end = "2001:db8:d0::1ff"
[[dhcp.subnets.relays]]
link_address = "fe80::d0"
[boot]
ipxe_script_url = "http://[2001:db8:1::1]/ipxe/ipxe-{mac}.cfg"
efi_url = "tftp://[2001:db8:1::1]/x86_64/ipxe.efi"
http_boot_url = "http://[2001:db8:1::1]/files/x86_64/ipxe.efi"
bootfile_params = ["console=ttyS0"]
[boot.pxe]
x86_bios = "tftp://[2001:db8:1::1]/undionly.kpxe"
ia32 = "tftp://[2001:db8:1::1]/i386/ipxe.efi"
arm64 = "tftp://[2001:db8:1::1]/arm64/ipxe.efi"
[boot.http]
arm64 = "http://[2001:db8:1::1]/files/arm64/ipxe.efi"
"#;

fn fleet() -> Engine {
    let config =
        Config::from_toml(Path::new("fleet.toml"), FLEET).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    Engine::new(Arc::new(config), SERVER_DUID.to_vec())
}

fn opt(code: u16, body: &[u8]) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn class_data(num: u32, class: &[u8]) -> Vec<u8> {
    let mut body = num.to_be_bytes().to_vec();
    body.extend_from_slice(&(class.len() as u16).to_be_bytes());
    body.extend_from_slice(class);
    body
}

fn ia_na(iaid: u32, address: Option<Ipv6Addr>) -> Vec<u8> {
    let mut body = iaid.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 8]); // T1, T2
    if let Some(address) = address {
        let mut iaaddr = address.octets().to_vec();
        iaaddr.extend_from_slice(&[0; 8]); // preferred, valid
        body.extend(opt(5, &iaaddr));
    }
    opt(3, &body)
}

/// Which firmware or program, and how it would fill its options.
#[derive(Debug, Clone)]
enum Sender {
    /// edk2 UefiPxeBcDxe: arch in option 61 and in "PXEClient:Arch:NNNNN:UNDI:003000".
    Edk2Pxe(u16),
    /// edk2 HttpBootDxe: "HTTPClient:Arch:NNNNN:UNDI:003000".
    Edk2Http(u16),
    /// iPXE: arch, UNDI version (003010 EFI, 002001 BIOS), user class.
    Ipxe(u16, &'static str, &'static [u8]),
    /// A BIOS PXE ROM that speaks DHCPv6: arch 0, PXEClient vendor class, no option 15.
    BiosPxe,
    /// An OS DHCPv6 client with this ORO.
    Os(&'static [u16]),
}

struct Client {
    sender: Sender,
    duid: Vec<u8>,
    iaid: u32,
    mac: Mac,
}

impl Client {
    fn new(sender: Sender, n: u8) -> Client {
        let mac = Mac([0x52, 0x54, 0x00, 0x5c, 0x11, n]);
        let mut duid = vec![0, 4];
        duid.extend_from_slice(&[n; 16]);
        Client {
            sender,
            duid,
            iaid: mac.ipxe_iaid(),
            mac,
        }
    }

    /// The options after the identifiers and IA_NA, in the sender's own order.
    fn own_options(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.sender {
            Sender::Edk2Pxe(arch) | Sender::Edk2Http(arch) => {
                let http = matches!(self.sender, Sender::Edk2Http(_));
                out.extend(opt(6, &[0, 59, 0, 60, 0, 23, 0, 16]));
                out.extend(opt(62, &[1, 3, 0]));
                out.extend(opt(61, &arch.to_be_bytes()));
                let class = format!(
                    "{}:Arch:{arch:05}:UNDI:003000",
                    if http { "HTTPClient" } else { "PXEClient" }
                );
                out.extend(opt(16, &class_data(343, class.as_bytes())));
            }
            Sender::Ipxe(arch, undi, user_class) => {
                out.extend(opt(6, &[0, 23, 0, 24, 0, 59, 0, 60]));
                let class = format!("PXEClient:Arch:{arch:05}:UNDI:{undi}");
                out.extend(opt(16, &class_data(343, class.as_bytes())));
                out.extend(opt(61, &arch.to_be_bytes()));
                let (major, minor) = if *undi == "003010" { (3, 10) } else { (2, 1) };
                out.extend(opt(62, &[1, major, minor]));
                let mut user = (user_class.len() as u16).to_be_bytes().to_vec();
                user.extend_from_slice(user_class);
                out.extend(opt(15, &user));
            }
            Sender::BiosPxe => {
                out.extend(opt(6, &[0, 59, 0, 60]));
                out.extend(opt(61, &[0, 0]));
                out.extend(opt(
                    16,
                    &class_data(343, b"PXEClient:Arch:00000:UNDI:002001"),
                ));
            }
            Sender::Os(oro) => {
                let body: Vec<u8> = oro.iter().flat_map(|c| c.to_be_bytes()).collect();
                out.extend(opt(6, &body));
            }
        }
        out
    }

    fn is_ipxe(&self) -> bool {
        matches!(self.sender, Sender::Ipxe(..))
    }

    /// Solicit (type 1) or Request (type 3) as the sender lays it out.
    fn message(&self, kind: u8, server_id: Option<&[u8]>, address: Option<Ipv6Addr>) -> Vec<u8> {
        let mut out = vec![kind, 0x12, 0x34, 0x56];
        out.extend(opt(1, &self.duid));
        let elapsed = opt(8, &[0, 0]);
        if self.is_ipxe() {
            if let Some(id) = server_id {
                out.extend(opt(2, id));
            }
            out.extend(ia_na(self.iaid, address));
            out.extend(self.own_options());
            out.extend(elapsed);
        } else {
            out.extend(elapsed);
            if let Some(id) = server_id {
                out.extend(opt(2, id));
            }
            out.extend(ia_na(self.iaid, address));
            out.extend(self.own_options());
        }
        out
    }
}

/// Options as (code, body), in wire order.
type Options = Vec<(u16, Vec<u8>)>;

/// A reply's message type and top-level options, after peeling Relay-Repl layers.
fn reply_options(reply: &[u8]) -> (u8, Options) {
    let mut bytes = reply;
    while bytes[0] == field::MSG_RELAY_REPL {
        let opts = wire::options(&bytes[field::RELAY_HEADER_LEN..]).unwrap();
        bytes = opts
            .into_iter()
            .find(|(code, _)| *code == field::OPT_RELAY_MSG)
            .unwrap()
            .1;
    }
    let opts = wire::options(&bytes[field::CLIENT_HEADER_LEN..])
        .unwrap()
        .into_iter()
        .map(|(code, body)| (code, body.to_vec()))
        .collect();
    (bytes[0], opts)
}

fn body(opts: &[(u16, Vec<u8>)], code: u16) -> Option<Vec<u8>> {
    let all: Vec<&Vec<u8>> = opts
        .iter()
        .filter(|(c, _)| *c == code)
        .map(|(_, b)| b)
        .collect();
    assert!(all.len() <= 1, "option {code} appears {} times", all.len());
    all.first().map(|b| b.to_vec())
}

/// The address in the (first) IA_NA of a reply.
fn leased(opts: &[(u16, Vec<u8>)]) -> Option<Ipv6Addr> {
    let ia = body(opts, 3)?;
    let inner = wire::options(&ia[12..]).unwrap();
    inner.iter().find(|(c, _)| *c == 5).map(|(_, a)| {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&a[..16]);
        Ipv6Addr::from(octets)
    })
}

fn handle(
    e: &Engine,
    leases: &LeaseTable,
    source: Ipv6Addr,
    payload: &[u8],
) -> Result<Outcome, Ignored> {
    e.handle(
        &Request {
            payload,
            source,
            interface: Some("br-boot"),
        },
        leases,
        NOW,
    )
}

/// Solicit then Request, directly on the server's link; both answers' options.
fn sarr(e: &Engine, c: &Client) -> [(Outcome, u8, Options); 2] {
    let mut leases = LeaseTable::default();
    let source = c.mac.link_local();
    let advertise = handle(e, &leases, source, &c.message(1, None, None)).unwrap();
    let (adv_type, adv_opts) = reply_options(&advertise.reply);
    let address = leased(&adv_opts);
    let server_id = body(&adv_opts, 2).unwrap();
    let request = c.message(3, Some(&server_id), address);
    let reply = handle(e, &leases, source, &request).unwrap();
    for change in &reply.changes {
        leases.apply(change);
    }
    let (reply_type, reply_opts) = reply_options(&reply.reply);
    [
        (advertise, adv_type, adv_opts),
        (reply, reply_type, reply_opts),
    ]
}

const PARAMS: &[u8] = b"\x00\x0dconsole=ttyS0";
const HTTP_CLIENT_OPTION: &[u8] = b"\x00\x00\x01\x57\x00\x0aHTTPClient";

struct Expect {
    kind: ClientKind,
    arch: Option<u16>,
    url: Option<&'static str>,
    params: bool,
    http_client: bool,
}

fn expect(kind: ClientKind, arch: Option<u16>, url: Option<&'static str>) -> Expect {
    Expect {
        kind,
        arch,
        url,
        params: false,
        http_client: false,
    }
}

/// `{mac}` in an expected URL stands for the client's MAC.
fn check(name: &str, e: &Engine, c: &Client, want: &Expect) {
    let mac = c.mac.to_string();
    for (outcome, message_type, opts) in sarr(e, c) {
        let at = format!("{name}, {message_type}");
        assert_eq!(outcome.client.kind, want.kind, "{at}: kind");
        assert_eq!(outcome.client.arch.map(|a| a.0), want.arch, "{at}: arch");
        let url = body(&opts, 59).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(
            url,
            want.url.map(|u| u.replace("{mac}", &mac)),
            "{at}: option 59"
        );
        assert_eq!(outcome.bootfile_url, url, "{at}: Outcome::bootfile_url");
        assert_eq!(
            body(&opts, 60).as_deref(),
            want.params.then_some(PARAMS),
            "{at}: option 60"
        );
        assert_eq!(
            body(&opts, 16).as_deref(),
            want.http_client.then_some(HTTP_CLIENT_OPTION),
            "{at}: option 16"
        );
        assert!(leased(&opts).is_some(), "{at}: an address");
    }
}

#[test]
fn every_client_kind_and_architecture_gets_exactly_its_boot_options() {
    use ClientKind as K;
    let e = fleet();
    let script = Some("http://[2001:db8:1::1]/ipxe/ipxe-{mac}.cfg");
    let with = |mut x: Expect, params: bool, http_client: bool| {
        x.params = params;
        x.http_client = http_client;
        x
    };
    let cases: Vec<(&str, Sender, Expect)> = vec![
        // iPXE, whatever build and user class: its script, and option 60.
        (
            "iPXE x86-64 EFI",
            Sender::Ipxe(7, "003010", b"iPXE"),
            with(expect(K::Ipxe, Some(7), script), true, false),
        ),
        (
            "iPXE ARM64 EFI with its own user class",
            Sender::Ipxe(11, "003010", b"my-ipxe"),
            with(expect(K::Ipxe, Some(11), script), true, false),
        ),
        (
            "iPXE BIOS with its own user class",
            Sender::Ipxe(0, "002001", b"my-ipxe"),
            with(expect(K::Ipxe, Some(0), script), true, false),
        ),
        // UEFI PXE: the TFTP file for its architecture, never option 60.
        (
            "edk2 PXE x86-64",
            Sender::Edk2Pxe(7),
            expect(
                K::UefiPxe,
                Some(7),
                Some("tftp://[2001:db8:1::1]/x86_64/ipxe.efi"),
            ),
        ),
        (
            "edk2 PXE IA32",
            Sender::Edk2Pxe(6),
            expect(
                K::UefiPxe,
                Some(6),
                Some("tftp://[2001:db8:1::1]/i386/ipxe.efi"),
            ),
        ),
        (
            "edk2 PXE ARM64",
            Sender::Edk2Pxe(11),
            expect(
                K::UefiPxe,
                Some(11),
                Some("tftp://[2001:db8:1::1]/arm64/ipxe.efi"),
            ),
        ),
        (
            "RFC 4578-era x64 firmware (arch 9)",
            Sender::Edk2Pxe(9),
            expect(
                K::UefiPxe,
                Some(9),
                Some("tftp://[2001:db8:1::1]/x86_64/ipxe.efi"),
            ),
        ),
        (
            "edk2 PXE RISC-V 64 (no file configured)",
            Sender::Edk2Pxe(27),
            expect(K::UefiPxe, Some(27), None),
        ),
        // UEFI HTTP Boot: the HTTP file for its architecture plus "HTTPClient".
        (
            "edk2 HTTP Boot x86-64",
            Sender::Edk2Http(16),
            with(
                expect(
                    K::UefiHttp,
                    Some(16),
                    Some("http://[2001:db8:1::1]/files/x86_64/ipxe.efi"),
                ),
                false,
                true,
            ),
        ),
        (
            "edk2 HTTP Boot ARM64",
            Sender::Edk2Http(19),
            with(
                expect(
                    K::UefiHttp,
                    Some(19),
                    Some("http://[2001:db8:1::1]/files/arm64/ipxe.efi"),
                ),
                false,
                true,
            ),
        ),
        (
            "edk2 HTTP Boot IA32 (no file configured)",
            Sender::Edk2Http(15),
            expect(K::UefiHttp, Some(15), None),
        ),
        (
            "a BIOS PXE ROM",
            Sender::BiosPxe,
            expect(
                K::LegacyPxe,
                Some(0),
                Some("tftp://[2001:db8:1::1]/undionly.kpxe"),
            ),
        ),
        // Anything else: the script only when asked, option 60 only when asked.
        (
            "an installer asking for 59 and 60",
            Sender::Os(&[23, 59, 60]),
            with(expect(K::Unknown, None, script), true, false),
        ),
        (
            "dhclient asking for 59",
            Sender::Os(&[23, 59]),
            expect(K::Unknown, None, script),
        ),
        (
            "dhclient asking for DNS only",
            Sender::Os(&[23]),
            expect(K::Unknown, None, None),
        ),
    ];
    for (n, (name, sender, want)) in cases.into_iter().enumerate() {
        check(name, &e, &Client::new(sender, n as u8 + 1), &want);
    }
}

#[test]
fn the_ipxe_user_class_list_is_configurable() {
    // A site whose iPXE says "site-ipxe" and a client that sends that class plus an
    // edk2-looking HTTP vendor class: the listed class wins over everything.
    let e = Engine::new(
        Arc::new(
            Config::from_toml(
                Path::new("fleet.toml"),
                &FLEET.replace("[boot]\n", "[boot]\nipxe_user_classes = [\"site-ipxe\"]\n"),
            )
            .unwrap(),
        ),
        SERVER_DUID.to_vec(),
    );
    let c = Client::new(Sender::Edk2Http(16), 40);
    let mut bytes = c.message(1, None, None);
    bytes.extend(opt(15, b"\x00\x09site-ipxe"));
    let out = handle(&e, &LeaseTable::default(), c.mac.link_local(), &bytes).unwrap();
    assert_eq!(out.client.kind, ClientKind::Ipxe);
    assert_eq!(out.client.rule, "ipxe-user-class");
    assert!(out.bootfile_url.unwrap().contains("/ipxe/ipxe-"));
}

#[test]
fn uefi_pxe_never_gets_option_60_even_when_it_asks() {
    // edk2 asks for 60 in its ORO and then reads it as an NBP size (PXE-E53).
    let e = fleet();
    let c = Client::new(Sender::Edk2Pxe(7), 50);
    for (_, _, opts) in sarr(&e, &c) {
        assert!(body(&opts, 59).is_some());
        assert!(body(&opts, 60).is_none());
    }
}

/// Wraps a client message in relay layers, innermost (closest to the client) first.
fn relayed(message: &[u8], layers: &[(&str, Option<&[u8]>)], peer: Ipv6Addr) -> Vec<u8> {
    let mut bytes = message.to_vec();
    let mut peer = peer;
    for (hop, (link, id)) in layers.iter().enumerate() {
        let layer = RelayLayer {
            hop_count: hop as u8,
            link_address: link.parse().unwrap(),
            peer_address: peer,
            interface_id: id.map(<[u8]>::to_vec),
            client_link_layer: None,
        };
        bytes = wire::wrap_forward(&layer, &bytes);
        peer = format!("2001:db8:ff::{}", hop + 1).parse().unwrap();
    }
    bytes
}

fn relayed_solicit(e: &Engine, layers: &[(&str, Option<&[u8]>)]) -> Result<Outcome, Ignored> {
    let c = Client::new(Sender::Edk2Pxe(7), 60);
    let payload = relayed(&c.message(1, None, None), layers, c.mac.link_local());
    // It arrives on the server's own interface: that must not decide the subnet.
    handle(
        e,
        &LeaseTable::default(),
        "2001:db8:1::2".parse().unwrap(),
        &payload,
    )
}

fn in_subnet(outcome: &Outcome, prefix: &str) -> bool {
    let prefix: Prefix = Prefix {
        address: prefix.parse().unwrap(),
        len: 64,
    };
    outcome.addresses.len() == 1 && prefix.contains(&outcome.addresses[0])
}

use crate::config::Prefix;

#[test]
fn a_relay_with_a_link_local_link_address_is_mapped_by_its_interface_id() {
    // The issue's case: hop 0, link-address fe80::5054:ff:fe00:b170, Interface-ID igb1.
    let e = fleet();
    let out = relayed_solicit(&e, &[("fe80::5054:ff:fe00:b170", Some(b"igb1"))]).unwrap();
    assert!(in_subnet(&out, "2001:db8:b170::"), "{:?}", out.addresses);
    assert_eq!(out.relay_hops, 1);
    assert_eq!(
        out.bootfile_url.as_deref(),
        Some("tftp://[2001:db8:1::1]/x86_64/ipxe.efi")
    );
    // The Relay-Repl echoes the Interface-ID.
    let opts = wire::options(&out.reply[field::RELAY_HEADER_LEN..]).unwrap();
    assert_eq!(opts[0], (field::OPT_INTERFACE_ID, &b"igb1"[..]));
}

#[test]
fn a_relay_that_sends_only_an_interface_id_is_mapped_by_it() {
    let e = fleet();
    let out = relayed_solicit(&e, &[("::", Some(b"igb1"))]).unwrap();
    assert!(in_subnet(&out, "2001:db8:b170::"), "{:?}", out.addresses);
}

#[test]
fn a_link_address_mapping_matches_a_link_local_link_address() {
    let e = fleet();
    let out = relayed_solicit(&e, &[("fe80::d0", None)]).unwrap();
    assert!(in_subnet(&out, "2001:db8:d0::"), "{:?}", out.addresses);
}

#[test]
fn a_mapping_with_both_fields_needs_both_to_match() {
    let e = fleet();
    let out = relayed_solicit(&e, &[("fe80::c0", Some(b"port3"))]).unwrap();
    assert!(in_subnet(&out, "2001:db8:c0::"), "{:?}", out.addresses);
    for (link, id) in [("fe80::c0", &b"port4"[..]), ("fe80::c1", &b"port3"[..])] {
        let result = relayed_solicit(&e, &[(link, Some(id))]);
        assert!(
            matches!(result, Err(Ignored::UnmappedRelay { .. })),
            "{link} {id:?}: {result:?}"
        );
    }
}

#[test]
fn an_unmapped_relay_is_dropped_with_its_link_address_and_interface_id() {
    let e = fleet();
    let err = relayed_solicit(&e, &[("fe80::5054:ff:fe00:b171", Some(b"igb7"))]).unwrap_err();
    assert_eq!(
        err,
        Ignored::UnmappedRelay {
            hops: 1,
            link_address: "fe80::5054:ff:fe00:b171".parse().unwrap(),
            interface_id: Some("igb7".into()),
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("fe80::5054:ff:fe00:b171") && text.contains("igb7"),
        "{text}"
    );
    // A binary Interface-ID is shown in hex.
    let err = relayed_solicit(&e, &[("::", Some(&[0, 0, 0, 3]))]).unwrap_err();
    assert!(err.to_string().contains("0x00000003"), "{err}");
}

#[test]
fn nested_relays_are_mapped_from_the_layer_closest_to_the_client_outwards() {
    let e = fleet();
    // An LDRA (link-address ::, its port as Interface-ID) inside a relay that knows
    // the link by a global address: the outer layer maps it.
    let out = relayed_solicit(&e, &[("::", Some(b"port9")), ("2001:db8:b170::1", None)]).unwrap();
    assert!(in_subnet(&out, "2001:db8:b170::"), "{:?}", out.addresses);
    assert_eq!(out.relay_hops, 2);
    // When the inner layer is mapped, it wins over the outer one.
    let out = relayed_solicit(
        &e,
        &[("fe80::c0", Some(b"port3")), ("2001:db8:b170::1", None)],
    )
    .unwrap();
    assert!(in_subnet(&out, "2001:db8:c0::"), "{:?}", out.addresses);
    // No layer names a link: dropped, reported with the innermost layer.
    let err = relayed_solicit(&e, &[("::", Some(b"port9")), ("fe80::1", None)]).unwrap_err();
    assert_eq!(
        err,
        Ignored::UnmappedRelay {
            hops: 2,
            link_address: Ipv6Addr::UNSPECIFIED,
            interface_id: Some("port9".into()),
        }
    );
}

#[test]
fn a_direct_message_still_gets_the_subnet_of_its_interface() {
    let e = fleet();
    let c = Client::new(Sender::Edk2Pxe(7), 70);
    let out = handle(
        &e,
        &LeaseTable::default(),
        c.mac.link_local(),
        &c.message(1, None, None),
    )
    .unwrap();
    assert!(in_subnet(&out, "2001:db8:1::"), "{:?}", out.addresses);
    assert_eq!(out.relay_hops, 0);
}

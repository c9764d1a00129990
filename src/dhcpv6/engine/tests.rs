//! Engine tests: every message type and identity path, with hand-set time.

use super::*;
use crate::config::Config;
use crate::dhcpv6::wire::field;
use dhcproto::v6::{Decodable, Decoder, VendorClass, ORO};
use std::path::Path;

const QEMU_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const SERVER_DUID: &[u8] = &[0, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];
const NOW: u64 = 1_800_000_000;

const CONFIG: &str = r#"
[server]
interfaces = ["sbd-br"]
[dhcp]
dns_servers = ["2001:db8:1::1"]
domain_search = ["lab.example"]
valid_lifetime_secs = 7200
preferred_lifetime_secs = 3600
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "2001:db8:1::1ff"
interface = "sbd-br"
[[dhcp.subnets]]
prefix = "2001:db8:2::/64"
pool_start = "2001:db8:2::100"
pool_end = "2001:db8:2::103"
[boot]
ipxe_script_url = "http://[2001:db8:1::1]/ipxe/ipxe-{mac}.cfg"
efi_url = "tftp://[2001:db8:1::1]/ipxe.efi"
http_boot_url = "http://[2001:db8:1::1]/files/ipxe.efi"
bootfile_params = ["console=ttyS0"]
[[hosts]]
mac = "52:54:00:12:34:56"
name = "node1"
address = "2001:db8:1::10"
"#;

fn engine_with(text: &str) -> Engine {
    let config = Config::from_toml(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(Arc::new(config), SERVER_DUID.to_vec())
}

fn engine() -> Engine {
    engine_with(CONFIG)
}

fn duid_uuid(byte: u8) -> Vec<u8> {
    let mut duid = vec![0, 4];
    duid.extend_from_slice(&[byte; 16]);
    duid
}

fn duid_ll(mac: Mac) -> Vec<u8> {
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(&mac.0);
    duid
}

fn duid_llt(mac: Mac) -> Vec<u8> {
    let mut duid = vec![0, 1, 0, 1, 0x2a, 0, 0, 1];
    duid.extend_from_slice(&mac.0);
    duid
}

struct Client {
    duid: Vec<u8>,
    iaid: u32,
    source: Ipv6Addr,
    ipxe: bool,
    arch: Option<u16>,
    oro: Vec<OptionCode>,
}

impl Client {
    /// iPXE as it really talks: DUID-UUID, CRC-32 IAID, EUI-64 link-local source.
    fn ipxe(mac: Mac) -> Client {
        Client {
            duid: duid_uuid(0),
            iaid: mac.ipxe_iaid(),
            source: mac.link_local(),
            ipxe: true,
            arch: Some(7),
            oro: vec![
                OptionCode::DomainNameServers,
                OptionCode::DomainSearchList,
                OptionCode::OptBootfileUrl,
                OptionCode::OptBootfileParam,
            ],
        }
    }

    fn plain(duid: Vec<u8>) -> Client {
        Client {
            duid,
            iaid: 1,
            source: "fe80::1234:5678:9abc:def0".parse().unwrap(),
            ipxe: false,
            arch: None,
            oro: vec![OptionCode::DomainNameServers],
        }
    }

    fn message(&self, kind: MessageType, server: bool, addresses: &[Ipv6Addr]) -> Message {
        let mut m = Message::new_with_id(kind, [1, 2, 3]);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(self.duid.clone()));
        if server {
            o.insert(DhcpOption::ServerId(SERVER_DUID.to_vec()));
        }
        o.insert(DhcpOption::ElapsedTime(0));
        o.insert(DhcpOption::ORO(ORO {
            opts: self.oro.clone(),
        }));
        if kind != MessageType::InformationRequest {
            let mut ia_opts = DhcpOptions::new();
            for a in addresses {
                ia_opts.insert(DhcpOption::IAAddr(IAAddr {
                    addr: *a,
                    preferred_life: 0,
                    valid_life: 0,
                    opts: DhcpOptions::new(),
                }));
            }
            o.insert(DhcpOption::IANA(IANA {
                id: self.iaid,
                t1: 0,
                t2: 0,
                opts: ia_opts,
            }));
        }
        if self.ipxe {
            // By hand: dhcproto 0.12 mis-encodes the user class length.
            o.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::UserClass,
                b"\x00\x04iPXE".to_vec(),
            )));
        }
        if let Some(arch) = self.arch {
            o.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::ClientArchType,
                arch.to_be_bytes().to_vec(),
            )));
        }
        m
    }

    fn bytes(&self, kind: MessageType, server: bool, addresses: &[Ipv6Addr]) -> Vec<u8> {
        encode(&self.message(kind, server, addresses))
    }
}

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut Encoder::new(&mut out)).unwrap();
    out
}

fn run(
    e: &Engine,
    leases: &mut LeaseTable,
    source: Ipv6Addr,
    payload: &[u8],
    now: u64,
) -> Result<(Message, Outcome), Ignored> {
    let request = Request {
        payload,
        source,
        interface: Some("sbd-br"),
    };
    let outcome = e.handle(&request, leases, now)?;
    for change in &outcome.changes {
        leases.apply(change);
    }
    let unwrapped = wire::unwrap_relays(&outcome.reply).unwrap_or_else(|_| {
        // Replies are Relay-Repl, not Relay-Forw: peel them by hand.
        panic!("reply does not parse")
    });
    let inner = if outcome.reply[0] == field::MSG_RELAY_REPL {
        peel_relay_repl(&outcome.reply)
    } else {
        unwrapped.client_message.to_vec()
    };
    let message = Message::decode(&mut Decoder::new(&inner)).unwrap();
    Ok((message, outcome))
}

fn peel_relay_repl(mut bytes: &[u8]) -> Vec<u8> {
    while bytes[0] == field::MSG_RELAY_REPL {
        let opts = wire::options(&bytes[field::RELAY_HEADER_LEN..]).unwrap();
        bytes = opts
            .iter()
            .find(|(code, _)| *code == field::OPT_RELAY_MSG)
            .unwrap()
            .1;
    }
    bytes.to_vec()
}

fn exchange(e: &Engine, leases: &mut LeaseTable, c: &Client, kind: MessageType) -> Message {
    let server = matches!(
        kind,
        MessageType::Request | MessageType::Renew | MessageType::Release | MessageType::Decline
    );
    run(e, leases, c.source, &c.bytes(kind, server, &[]), NOW)
        .unwrap()
        .0
}

fn solicit(e: &Engine, leases: &mut LeaseTable, c: &Client) -> (Message, Outcome) {
    let payload = c.bytes(MessageType::Solicit, false, &[]);
    run(e, leases, c.source, &payload, NOW).unwrap()
}

fn addresses_of(m: &Message) -> Vec<Ipv6Addr> {
    ia_nas(m.opts())
        .into_iter()
        .flat_map(ia_addresses)
        .collect()
}

fn bootfile_url(m: &Message) -> Option<String> {
    match m.opts().get(OptionCode::OptBootfileUrl) {
        Some(DhcpOption::Unknown(o)) => Some(String::from_utf8(o.data().to_vec()).unwrap()),
        _ => None,
    }
}

fn ia_status_of(m: &Message) -> Option<Status> {
    m.opts()
        .get(OptionCode::IANA)
        .and_then(|o| match o {
            DhcpOption::IANA(ia) => ia.opts.get(OptionCode::StatusCode),
            _ => None,
        })
        .and_then(|o| match o {
            DhcpOption::StatusCode(s) => Some(s.status),
            _ => None,
        })
}

fn top_status(m: &Message) -> Option<Status> {
    match m.opts().get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(s)) => Some(s.status),
        _ => None,
    }
}

#[test]
fn ipxe_with_duid_uuid_is_known_by_its_eui64_link_local_and_iaid() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let c = Client::ipxe(QEMU_MAC);
    let (adv, outcome) = solicit(&e, &mut leases, &c);
    assert_eq!(adv.msg_type(), MessageType::Advertise);
    assert_eq!(adv.xid(), [1, 2, 3]);
    assert_eq!(outcome.identity.mac, Some(QEMU_MAC));
    assert_eq!(outcome.identity.mac_source, Some(MacSource::Eui64Iaid));
    assert_eq!(outcome.identity.host.as_deref(), Some("node1"));
    assert_eq!(
        addresses_of(&adv),
        vec!["2001:db8:1::10".parse::<Ipv6Addr>().unwrap()]
    );
    assert!(outcome.changes.is_empty(), "an Advertise commits nothing");
    assert_eq!(
        bootfile_url(&adv).as_deref(),
        Some("http://[2001:db8:1::1]/ipxe/ipxe-52:54:00:12:34:56.cfg")
    );
    assert_eq!(
        adv.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(SERVER_DUID.to_vec()))
    );
    assert_eq!(
        adv.opts().get(OptionCode::Preference),
        Some(&DhcpOption::Preference(255))
    );
}

#[test]
fn request_commits_the_lease_and_the_reply_carries_the_boot_options() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let c = Client::ipxe(QEMU_MAC);
    let reply = exchange(&e, &mut leases, &c, MessageType::Request);
    assert_eq!(reply.msg_type(), MessageType::Reply);
    let address: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    assert_eq!(addresses_of(&reply), vec![address]);
    assert!(bootfile_url(&reply)
        .unwrap()
        .ends_with("ipxe-52:54:00:12:34:56.cfg"));
    assert_eq!(
        reply.opts().get(OptionCode::DomainNameServers),
        Some(&DhcpOption::DomainNameServers(vec!["2001:db8:1::1"
            .parse()
            .unwrap()]))
    );
    match reply.opts().get(OptionCode::DomainSearchList) {
        Some(DhcpOption::DomainSearchList(names)) => {
            assert_eq!(names[0].to_string(), "lab.example.")
        }
        other => panic!("no domain search list: {other:?}"),
    }
    match reply.opts().get(OptionCode::OptBootfileParam) {
        Some(DhcpOption::Unknown(o)) => assert_eq!(o.data(), b"\x00\x0dconsole=ttyS0"),
        other => panic!("no bootfile-param: {other:?}"),
    }
    let lease = leases.by_address(&address).unwrap();
    assert_eq!(lease.key.mac, Some(QEMU_MAC));
    assert_eq!(lease.expires, NOW + 7200);
    assert_eq!(lease.host.as_deref(), Some("node1"));
}

#[test]
fn duid_ll_and_duid_llt_give_the_mac_first() {
    let e = engine();
    for duid in [duid_ll(QEMU_MAC), duid_llt(QEMU_MAC)] {
        let mut leases = LeaseTable::default();
        let c = Client::plain(duid);
        let (adv, outcome) = solicit(&e, &mut leases, &c);
        assert_eq!(outcome.identity.mac_source, Some(MacSource::Duid));
        assert_eq!(
            addresses_of(&adv),
            vec!["2001:db8:1::10".parse::<Ipv6Addr>().unwrap()]
        );
        assert_eq!(bootfile_url(&adv), None, "not a boot client, did not ask");
    }
}

#[test]
fn eui64_source_without_ipxe_iaid_is_marked_unconfirmed() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let mut c = Client::ipxe(QEMU_MAC);
    c.iaid = 7;
    let (_, outcome) = solicit(&e, &mut leases, &c);
    assert_eq!(outcome.identity.mac_source, Some(MacSource::Eui64));
}

#[test]
fn relay_option_79_gives_the_mac_and_the_link_address_picks_the_subnet() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let mut c = Client::plain(duid_uuid(0));
    c.oro.push(OptionCode::OptBootfileUrl);
    c.ipxe = true;
    let other_mac = Mac([0, 2, 0xc9, 0xaa, 0xbb, 1]);
    let inner = RelayLayer {
        hop_count: 0,
        link_address: "2001:db8:2::1".parse().unwrap(),
        peer_address: "fe80::1234:5678:9abc:def0".parse().unwrap(),
        interface_id: Some(b"port7".to_vec()),
        client_link_layer: Some((1, other_mac.0.to_vec())),
    };
    let outer = RelayLayer {
        hop_count: 1,
        link_address: Ipv6Addr::UNSPECIFIED,
        peer_address: "2001:db8:9::2".parse().unwrap(),
        interface_id: None,
        client_link_layer: None,
    };
    let payload = wire::wrap_forward(
        &outer,
        &wire::wrap_forward(&inner, &c.bytes(MessageType::Solicit, false, &[])),
    );
    let (adv, outcome) = run(
        &e,
        &mut leases,
        "2001:db8:9::2".parse().unwrap(),
        &payload,
        NOW,
    )
    .unwrap();
    assert_eq!(outcome.identity.mac, Some(other_mac));
    assert_eq!(outcome.identity.mac_source, Some(MacSource::RelayOption79));
    let address = addresses_of(&adv)[0];
    assert!(
        "2001:db8:2::100".parse::<Ipv6Addr>().unwrap() <= address
            && address <= "2001:db8:2::103".parse::<Ipv6Addr>().unwrap(),
        "{address}"
    );
    assert_eq!(
        bootfile_url(&adv).as_deref(),
        Some("http://[2001:db8:1::1]/ipxe/ipxe-00:02:c9:aa:bb:01.cfg")
    );
    // Two Relay-Repl layers, the inner one echoing the Interface-ID.
    assert_eq!(outcome.reply[0], field::MSG_RELAY_REPL);
    assert_eq!(outcome.reply[1], 1);
    let outer_opts = wire::options(&outcome.reply[field::RELAY_HEADER_LEN..]).unwrap();
    let inner_bytes = outer_opts[0].1;
    assert_eq!(inner_bytes[0], field::MSG_RELAY_REPL);
    assert_eq!(&inner_bytes[2..18], &inner.link_address.octets());
    let inner_opts = wire::options(&inner_bytes[field::RELAY_HEADER_LEN..]).unwrap();
    assert_eq!(inner_opts[0], (field::OPT_INTERFACE_ID, &b"port7"[..]));
}

#[test]
fn relay_from_an_unknown_link_gets_no_answer() {
    let e = engine();
    let c = Client::plain(duid_ll(QEMU_MAC));
    let layer = RelayLayer {
        hop_count: 0,
        link_address: "2001:db8:77::1".parse().unwrap(),
        peer_address: c.source,
        interface_id: None,
        client_link_layer: None,
    };
    let payload = wire::wrap_forward(&layer, &c.bytes(MessageType::Solicit, false, &[]));
    let result = run(&e, &mut LeaseTable::default(), c.source, &payload, NOW);
    assert_eq!(
        result.err(),
        Some(Ignored::UnmappedRelay {
            hops: 1,
            link_address: "2001:db8:77::1".parse().unwrap(),
            interface_id: None,
        })
    );
}

#[test]
fn two_machines_with_the_same_zero_duid_get_different_addresses() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let a = Client::ipxe(Mac([2, 0, 0, 0, 0, 1]));
    let b = Client::ipxe(Mac([2, 0, 0, 0, 0, 2]));
    assert_eq!(a.duid, b.duid);
    let ra = exchange(&e, &mut leases, &a, MessageType::Request);
    let rb = exchange(&e, &mut leases, &b, MessageType::Request);
    assert_ne!(addresses_of(&ra), addresses_of(&rb));
    assert_eq!(leases.len(), 2);
    // Each comes back to its own address.
    assert_eq!(
        addresses_of(&exchange(&e, &mut leases, &a, MessageType::Request)),
        addresses_of(&ra)
    );
}

#[test]
fn renew_and_rebind_extend_the_binding() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    let reply = exchange(&e, &mut leases, &c, MessageType::Request);
    let address = addresses_of(&reply)[0];
    let later = NOW + 3000;
    for (kind, server) in [(MessageType::Renew, true), (MessageType::Rebind, false)] {
        let (reply, outcome) = run(
            &e,
            &mut leases,
            c.source,
            &c.bytes(kind, server, &[address]),
            later,
        )
        .unwrap();
        assert_eq!(reply.msg_type(), MessageType::Reply);
        assert_eq!(addresses_of(&reply), vec![address]);
        assert_eq!(outcome.changes.len(), 1);
        assert_eq!(leases.by_address(&address).unwrap().expires, later + 7200);
    }
}

#[test]
fn renew_without_a_binding_says_no_binding() {
    let e = engine();
    let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    let (reply, outcome) = run(
        &e,
        &mut LeaseTable::default(),
        c.source,
        &c.bytes(
            MessageType::Renew,
            true,
            &["2001:db8:1::150".parse().unwrap()],
        ),
        NOW,
    )
    .unwrap();
    assert_eq!(ia_status_of(&reply), Some(Status::NoBinding));
    assert!(outcome.changes.is_empty());
}

#[test]
fn release_frees_the_address_and_decline_quarantines_it() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    let address = addresses_of(&exchange(&e, &mut leases, &c, MessageType::Request))[0];
    let (reply, _) = run(
        &e,
        &mut leases,
        c.source,
        &c.bytes(MessageType::Release, true, &[address]),
        NOW,
    )
    .unwrap();
    assert_eq!(top_status(&reply), Some(Status::Success));
    assert!(leases.by_address(&address).is_none());

    let address = addresses_of(&exchange(&e, &mut leases, &c, MessageType::Request))[0];
    run(
        &e,
        &mut leases,
        c.source,
        &c.bytes(MessageType::Decline, true, &[address]),
        NOW,
    )
    .unwrap();
    assert!(leases.by_address(&address).unwrap().declined);
    let again = addresses_of(&exchange(&e, &mut leases, &c, MessageType::Request));
    assert_eq!(again.len(), 1);
    assert_ne!(
        again[0], address,
        "a declined address is not handed out again"
    );
}

#[test]
fn confirm_says_whether_addresses_are_on_link() {
    let e = engine();
    let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    let mut leases = LeaseTable::default();
    let on: Ipv6Addr = "2001:db8:1::123".parse().unwrap();
    let off: Ipv6Addr = "2001:db8:5::1".parse().unwrap();
    let (reply, _) = run(
        &e,
        &mut leases,
        c.source,
        &c.bytes(MessageType::Confirm, false, &[on]),
        NOW,
    )
    .unwrap();
    assert_eq!(top_status(&reply), Some(Status::Success));
    let (reply, _) = run(
        &e,
        &mut leases,
        c.source,
        &c.bytes(MessageType::Confirm, false, &[off]),
        NOW,
    )
    .unwrap();
    assert_eq!(top_status(&reply), Some(Status::NotOnLink));
    let none = run(
        &e,
        &mut leases,
        c.source,
        &c.bytes(MessageType::Confirm, false, &[]),
        NOW,
    );
    assert_eq!(none.err(), Some(Ignored::NothingToConfirm));
}

#[test]
fn information_request_gets_options_without_addresses() {
    let e = engine();
    let c = Client::ipxe(QEMU_MAC);
    let (reply, outcome) = run(
        &e,
        &mut LeaseTable::default(),
        c.source,
        &c.bytes(MessageType::InformationRequest, false, &[]),
        NOW,
    )
    .unwrap();
    assert_eq!(reply.msg_type(), MessageType::Reply);
    assert!(reply.opts().get(OptionCode::IANA).is_none());
    assert!(outcome.changes.is_empty());
    assert!(reply.opts().get(OptionCode::DomainNameServers).is_some());
    assert!(bootfile_url(&reply).unwrap().contains("52:54:00:12:34:56"));
}

#[test]
fn rapid_commit_solicit_gets_a_committed_reply() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    let mut m = c.message(MessageType::Solicit, false, &[]);
    m.opts_mut().insert(DhcpOption::RapidCommit);
    let (reply, outcome) = run(&e, &mut leases, c.source, &encode(&m), NOW).unwrap();
    assert_eq!(reply.msg_type(), MessageType::Reply);
    assert!(reply.opts().get(OptionCode::RapidCommit).is_some());
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(leases.len(), 1);
}

#[test]
fn messages_for_another_server_or_wrongly_addressed_are_ignored() {
    let e = engine();
    let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    let mut leases = LeaseTable::default();
    let mut m = c.message(MessageType::Request, false, &[]);
    m.opts_mut()
        .insert(DhcpOption::ServerId(vec![0, 4, 1, 1, 1]));
    assert_eq!(
        run(&e, &mut leases, c.source, &encode(&m), NOW).err(),
        Some(Ignored::OtherServer(MessageType::Request))
    );
    assert_eq!(
        run(
            &e,
            &mut leases,
            c.source,
            &c.bytes(MessageType::Solicit, true, &[]),
            NOW
        )
        .err(),
        Some(Ignored::UnexpectedServerId(MessageType::Solicit))
    );
    assert_eq!(
        run(
            &e,
            &mut leases,
            c.source,
            &c.bytes(MessageType::Advertise, false, &[]),
            NOW
        )
        .err(),
        Some(Ignored::NotForServer(MessageType::Advertise))
    );
    let mut m = c.message(MessageType::Solicit, false, &[]);
    m.opts_mut().remove(OptionCode::ClientId);
    assert_eq!(
        run(&e, &mut leases, c.source, &encode(&m), NOW).err(),
        Some(Ignored::NoClientId(MessageType::Solicit))
    );
    assert!(leases.is_empty());
}

#[test]
fn unknown_hosts_get_no_answer_when_configured_to_be_ignored() {
    let e = engine_with(&CONFIG.replace("[dhcp]\n", "[dhcp]\nunknown_hosts = \"ignore\"\n"));
    let stranger = Client::ipxe(Mac([2, 0, 0, 0, 0, 0x33]));
    let result = run(
        &e,
        &mut LeaseTable::default(),
        stranger.source,
        &stranger.bytes(MessageType::Solicit, false, &[]),
        NOW,
    );
    assert!(matches!(result, Err(Ignored::UnknownHost(Some(_)))));
    let known = Client::ipxe(QEMU_MAC);
    assert!(run(
        &e,
        &mut LeaseTable::default(),
        known.source,
        &known.bytes(MessageType::Solicit, false, &[]),
        NOW
    )
    .is_ok());
}

#[test]
fn uefi_clients_get_their_boot_file_and_http_boot_gets_httpclient() {
    let e = engine();
    let mut c = Client::plain(duid_llt(QEMU_MAC));
    c.arch = Some(7);
    let reply = exchange(&e, &mut LeaseTable::default(), &c, MessageType::Solicit);
    assert_eq!(
        bootfile_url(&reply).as_deref(),
        Some("tftp://[2001:db8:1::1]/ipxe.efi")
    );
    assert!(reply.opts().get(OptionCode::VendorClass).is_none());

    c.arch = Some(16);
    let reply = exchange(&e, &mut LeaseTable::default(), &c, MessageType::Request);
    assert_eq!(
        bootfile_url(&reply).as_deref(),
        Some("http://[2001:db8:1::1]/files/ipxe.efi")
    );
    assert_eq!(
        reply.opts().get(OptionCode::VendorClass),
        Some(&DhcpOption::VendorClass(VendorClass {
            num: 343,
            data: vec![b"HTTPClient".to_vec()]
        }))
    );

    // The same firmware, now running iPXE: the user class wins, no loop.
    c.arch = Some(7);
    c.ipxe = true;
    let reply = exchange(&e, &mut LeaseTable::default(), &c, MessageType::Request);
    assert!(bootfile_url(&reply)
        .unwrap()
        .contains("/ipxe/ipxe-52:54:00:12:34:56.cfg"));
}

#[test]
fn a_plain_client_asking_for_the_bootfile_url_gets_its_script_url() {
    let e = engine();
    let mut c = Client::plain(duid_llt(QEMU_MAC));
    c.oro.push(OptionCode::OptBootfileUrl);
    let reply = exchange(&e, &mut LeaseTable::default(), &c, MessageType::Request);
    assert_eq!(
        bootfile_url(&reply).as_deref(),
        Some("http://[2001:db8:1::1]/ipxe/ipxe-52:54:00:12:34:56.cfg")
    );
    assert!(reply.opts().get(OptionCode::VendorClass).is_none());
}

#[test]
fn a_fixed_address_still_leased_to_another_machine_is_not_handed_out_twice() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let fixed: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    // Before the operator gave node1 this address, a stranger leased it.
    leases.apply(&LeaseChange::Bind(Lease {
        key: LeaseKey {
            duid: duid_ll(Mac([2, 0, 0, 0, 0, 7])),
            iaid: 1,
            mac: Some(Mac([2, 0, 0, 0, 0, 7])),
        },
        address: fixed,
        mac_source: Some(MacSource::Duid),
        host: None,
        expires: NOW + 100,
        declined: false,
    }));
    let c = Client::ipxe(QEMU_MAC);
    let request = c.bytes(MessageType::Request, true, &[]);
    let (reply, outcome) = run(&e, &mut leases, c.source, &request, NOW).unwrap();
    let now = addresses_of(&reply);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], fixed);
    assert_eq!(
        outcome.fixed_addresses_held,
        vec![fixed],
        "the outcome says why (the shell logs it)"
    );
    let (later, outcome) = run(&e, &mut leases, c.source, &request, NOW + 100).unwrap();
    assert_eq!(
        addresses_of(&later),
        vec![fixed],
        "the fixed address once it is free"
    );
    assert!(outcome.fixed_addresses_held.is_empty());
}

#[test]
fn only_requested_options_are_sent() {
    let e = engine();
    let mut c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 0, 9])));
    c.oro = vec![];
    let reply = exchange(&e, &mut LeaseTable::default(), &c, MessageType::Request);
    assert!(reply.opts().get(OptionCode::DomainNameServers).is_none());
    assert!(reply.opts().get(OptionCode::DomainSearchList).is_none());
    assert!(bootfile_url(&reply).is_none());
}

#[test]
fn a_full_pool_says_no_addrs_avail_and_expired_leases_are_reused() {
    let e = engine();
    let mut leases = LeaseTable::default();
    let relay = |n: u8| {
        let c = Client::plain(duid_llt(Mac([2, 0, 0, 0, 1, n])));
        let layer = RelayLayer {
            hop_count: 0,
            link_address: "2001:db8:2::1".parse().unwrap(),
            peer_address: c.source,
            interface_id: None,
            client_link_layer: None,
        };
        (c, layer)
    };
    let mut given = HashSet::new();
    for n in 0..4 {
        let (c, layer) = relay(n);
        let payload = wire::wrap_forward(&layer, &c.bytes(MessageType::Request, true, &[]));
        let (reply, _) = run(&e, &mut leases, c.source, &payload, NOW).unwrap();
        let a = addresses_of(&reply);
        assert_eq!(a.len(), 1);
        assert!(given.insert(a[0]), "address {} given twice", a[0]);
    }
    let (c, layer) = relay(9);
    let payload = wire::wrap_forward(&layer, &c.bytes(MessageType::Solicit, false, &[]));
    let (adv, _) = run(&e, &mut leases, c.source, &payload, NOW).unwrap();
    assert_eq!(top_status(&adv), Some(Status::NoAddrsAvail));
    assert!(addresses_of(&adv).is_empty());
    let (adv, _) = run(&e, &mut leases, c.source, &payload, NOW + 7200).unwrap();
    assert_eq!(addresses_of(&adv).len(), 1, "expired leases are free again");
}

#[test]
fn garbage_is_rejected_not_answered() {
    let e = engine();
    for payload in [
        &[][..],
        &[1][..],
        &[12, 0, 1][..],
        &[1, 0, 0, 1, 0, 13, 0, 0][..],
    ] {
        let result = e.handle(
            &Request {
                payload,
                source: Ipv6Addr::LOCALHOST,
                interface: None,
            },
            &LeaseTable::default(),
            NOW,
        );
        assert!(
            matches!(result, Err(Ignored::Malformed(_))),
            "{payload:?}: {result:?}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic_the_engine(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let e = engine();
            let _ = e.handle(
                &Request { payload: &bytes, source: QEMU_MAC.link_local(), interface: Some("sbd-br") },
                &LeaseTable::default(),
                NOW,
            );
        }

        #[test]
        fn mutated_real_messages_never_panic_the_engine(
            kind in 0usize..5,
            flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
            cut in any::<u16>(),
        ) {
            let e = engine();
            let c = Client::ipxe(QEMU_MAC);
            let kinds = [MessageType::Solicit, MessageType::Request, MessageType::Renew,
                MessageType::InformationRequest, MessageType::Release];
            let mut bytes = c.bytes(kinds[kind], kind == 1 || kind == 2 || kind == 4, &[QEMU_MAC.link_local()]);
            if kind == 0 {
                let layer = RelayLayer {
                    hop_count: 0,
                    link_address: "2001:db8:1::1".parse().unwrap(),
                    peer_address: c.source,
                    interface_id: Some(vec![1, 2]),
                    client_link_layer: Some((1, QEMU_MAC.0.to_vec())),
                };
                bytes = wire::wrap_forward(&layer, &bytes);
            }
            for (at, value) in flips {
                let n = bytes.len();
                bytes[usize::from(at) % n] = value;
            }
            bytes.truncate(usize::from(cut) % (bytes.len() + 1));
            let _ = e.handle(
                &Request { payload: &bytes, source: c.source, interface: Some("sbd-br") },
                &LeaseTable::default(),
                NOW,
            );
        }
    }
}

//! RA and DHCPv6 against real clients (`dhclient -6`, `perfdhcp -6`, `rdisc6`) in
//! network namespaces this test creates and removes. Needs root; without it every
//! test fails with a message saying so.

mod dhcpv6_support;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dhcproto::v6::{DhcpOption, Message, MessageType, OptionCode, IANA};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use dhcpv6_support::{client_socket, Lab, CLIENT_LINK_LOCAL};

const RA_ON: &str = "[ra]\nenabled = true\n[[ra.prefixes]]\nprefix = \"2001:db8:1::/64\"\n";

#[test]
fn dhclient_gets_an_address_dns_and_the_bootfile_url() {
    let Some(mut lab) = Lab::new("dh") else {
        return;
    };
    lab.write_config("", "2001:db8:1::1ff", "");
    lab.start_server();
    let (lease, _) = lab.dhclient(false);
    assert!(lease.contains("iaaddr 2001:db8:1::"), "{lease}");
    assert!(
        lease.contains("option dhcp6.name-servers 2001:db8:1::53;"),
        "{lease}"
    );
    assert!(
        lease.contains("option dhcp6.domain-search \"lab.example.\";"),
        "{lease}"
    );
    assert!(
        lease.contains("option dhcp6.bootfile-url \"http://[2001:db8:1::1]/ipxe/ipxe-"),
        "{lease}"
    );
    // The lease is on record with the MAC from dhclient's DUID-LLT.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(["leases", "--json", "--config"])
        .arg(lab.config_path())
        .output()
        .expect("sixboot leases");
    let leases: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(leases.as_array().map(Vec::len), Some(1), "{leases}");
    assert_eq!(leases[0]["mac_source"], "duid");
    lab.stop_server();
}

#[test]
fn dhclient_stateless_gets_options_without_an_address() {
    let Some(mut lab) = Lab::new("st") else {
        return;
    };
    lab.write_config("", "2001:db8:1::1ff", "");
    lab.start_server();
    let (_, env) = lab.dhclient(true);
    assert!(
        env.contains("new_dhcp6_name_servers=2001:db8:1::53"),
        "{env}"
    );
    assert!(env.contains("new_dhcp6_domain_search"), "{env}");
    assert!(
        !env.contains("new_ip6_address"),
        "stateless got an address: {env}"
    );
    let state = lab.state_dir().join("leases.jsonl");
    assert_eq!(std::fs::read_to_string(state).unwrap_or_default(), "");
}

#[test]
fn rdisc6_sees_the_m_and_o_flags_and_the_prefix() {
    let Some(mut lab) = Lab::new("ra") else {
        return;
    };
    lab.write_config(RA_ON, "2001:db8:1::1ff", "");
    lab.start_server();
    let out = lab.in_client("rdisc6", &["-1", "-r", "3", "-w", "1000", &lab.client_if]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", lab.server_log());
    assert!(
        text.contains("Stateful address conf.    :          Yes"),
        "{text}"
    );
    assert!(
        text.contains("Stateful other conf.      :          Yes"),
        "{text}"
    );
    assert!(
        text.contains("Prefix                   : 2001:db8:1::/64"),
        "{text}"
    );
    assert!(
        text.contains("Router lifetime           :            0"),
        "{text}"
    );
    assert!(
        lab.server_log().contains("RS answered"),
        "{}",
        lab.server_log()
    );

    // A solicitation that crossed a router (hop limit below 255) is not answered.
    let (client_if, ifindex) = (lab.client_if.clone(), lab.client_ifindex());
    lab.in_client_thread(move || {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::RAW,
            Some(socket2::Protocol::ICMPV6),
        )
        .expect("raw socket");
        socket
            .bind_device(Some(client_if.as_bytes()))
            .expect("bind device");
        socket.set_multicast_hops_v6(64).expect("hops");
        let all_routers = SocketAddrV6::new("ff02::2".parse().unwrap(), 0, 0, ifindex);
        socket
            .send_to(&[133, 0, 0, 0, 0, 0, 0, 0], &all_routers.into())
            .expect("send RS");
    })
    .join()
    .expect("RS thread");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !lab.server_log().contains("hop_limit=Some(64)") {
        assert!(Instant::now() < deadline, "{}", lab.server_log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn with_ra_off_no_advertisement_tells_a_client_to_start_dhcpv6() {
    let Some(mut lab) = Lab::new("nr") else {
        return;
    };
    lab.write_config("", "2001:db8:1::1ff", "");
    lab.start_server();
    let out = lab.in_client("rdisc6", &["-1", "-r", "2", "-w", "500", &lab.client_if]);
    assert!(
        !out.status.success(),
        "an RA arrived although [ra] is off: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And with RA on but M and O off, the RA says "no DHCPv6".
    let Some(mut lab) = Lab::new("mo") else {
        return;
    };
    lab.write_config(
        "[ra]\nenabled = true\nmanaged = false\nother = false\n",
        "2001:db8:1::1ff",
        "",
    );
    lab.start_server();
    let out = lab.in_client("rdisc6", &["-1", "-r", "3", "-w", "1000", &lab.client_if]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Stateful address conf.    :           No"),
        "{text}"
    );
    assert!(
        text.contains("Stateful other conf.      :           No"),
        "{text}"
    );
}

/// Runs perfdhcp and returns the drop counts of both exchanges and the replies seen.
fn perfdhcp(lab: &Lab, extra: &[&str]) -> (String, Vec<u64>, Vec<u64>) {
    let mut args = vec![
        "-6",
        "-l",
        &lab.client_if,
        "-r",
        "150",
        "-n",
        "300",
        "-R",
        "300",
    ];
    // A reply counts as lost after 3 s, not perfdhcp's 1 s: on a busy CI machine an
    // fsync can stall that long, and a late reply is not a dropped one.
    args.extend(["-d", "3", "-W", "3000000"]);
    args.extend(extra);
    let out = lab.in_client("perfdhcp", &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let numbers = |label: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.strip_prefix(label))
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    (
        text.clone(),
        numbers("drops:"),
        numbers("received packets:"),
    )
}

#[test]
fn perfdhcp_completes_hundreds_of_exchanges_without_drops_direct_and_relayed() {
    let Some(mut lab) = Lab::new("pf") else {
        return;
    };
    lab.write_config("", "2001:db8:1::ffff", "");
    lab.start_server();
    for relay in [&[][..], &["-A", "1"][..]] {
        let (text, drops, received) = perfdhcp(&lab, relay);
        assert_eq!(drops, vec![0, 0], "relay {relay:?}:\n{text}");
        assert_eq!(received, vec![300, 300], "relay {relay:?}:\n{text}");
    }
    assert!(lab.server_alive());
}

fn malformed(i: u32) -> Vec<u8> {
    let mut seed = i.wrapping_mul(2_654_435_761) | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    match i % 6 {
        // Random bytes.
        0 => (0..(next() % 200)).map(|_| next() as u8).collect(),
        // Status code option of length 0 (dhcproto would underflow).
        1 => vec![1, 0, 0, 1, 0, 13, 0, 0],
        // An option longer than the datagram.
        2 => vec![3, 1, 2, 3, 0, 1, 0xff, 0xff, 0, 1],
        // Relay-Forw nested past the hop limit.
        3 => {
            let mut m = vec![1, 0, 0, 1];
            for _ in 0..12 {
                let mut r = vec![12, 0];
                r.extend_from_slice(&[0; 32]);
                r.extend_from_slice(&[0, 9]);
                r.extend_from_slice(&(m.len() as u16).to_be_bytes());
                r.extend_from_slice(&m);
                m = r;
            }
            m
        }
        // IA_NA shorter than its fixed part.
        4 => vec![1, 0, 0, 1, 0, 1, 0, 2, 0, 4, 0, 3, 0, 4, 0, 0, 0, 1],
        // A Request for another server.
        _ => vec![3, 0, 0, 1, 0, 1, 0, 4, 0, 3, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0],
    }
}

#[test]
fn a_flood_of_malformed_packets_does_not_stop_a_real_client_getting_its_lease() {
    let Some(mut lab) = Lab::new("fl") else {
        return;
    };
    lab.write_config("", "2001:db8:1::1ff", "");
    lab.start_server();
    let ifindex = lab.client_ifindex();
    let client_if = lab.client_if.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flood = stop.clone();
    let flood = lab.in_client_thread(move || {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .expect("socket");
        socket
            .bind_device(Some(client_if.as_bytes()))
            .expect("bind device");
        let to = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, ifindex).into();
        let mut sent = 0u32;
        while !stop_flood.load(Ordering::Relaxed) || sent < 20_000 {
            if socket.send_to(&malformed(sent), &to).is_ok() {
                sent += 1;
            }
            if sent % 64 == 0 {
                std::thread::sleep(Duration::from_micros(500));
            }
            if sent >= 200_000 {
                break;
            }
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(200));
    let (lease, _) = lab.dhclient(false);
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().expect("flood thread");
    assert!(sent >= 20_000, "only {sent} malformed datagrams sent");
    assert!(lease.contains("iaaddr 2001:db8:1::"), "{lease}");
    assert!(lab.server_alive(), "server died:\n{}", lab.server_log());
    assert!(!lab.server_log().contains("panicked"));
}

fn duid_ll(i: u32) -> Vec<u8> {
    let b = i.to_be_bytes();
    vec![0, 3, 0, 1, 0x02, 0x5b, b[0], b[1], b[2], b[3]]
}

fn request(i: u32, server_duid: &[u8]) -> Vec<u8> {
    let b = i.to_be_bytes();
    let mut m = Message::new_with_id(MessageType::Request, [b[1], b[2], b[3]]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(duid_ll(i)));
    o.insert(DhcpOption::ServerId(server_duid.to_vec()));
    o.insert(DhcpOption::ElapsedTime(0));
    o.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: Default::default(),
    }));
    let mut out = Vec::new();
    m.encode(&mut Encoder::new(&mut out)).expect("encode");
    out
}

fn reply_address(bytes: &[u8]) -> Option<(u32, Ipv6Addr)> {
    let m = Message::decode(&mut Decoder::new(bytes)).ok()?;
    if m.msg_type() != MessageType::Reply {
        return None;
    }
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        return None;
    };
    let Some(DhcpOption::IAAddr(a)) = ia.opts.get(OptionCode::IAAddr) else {
        return None;
    };
    Some((m.xid_num(), a.addr))
}

/// Requests a lease for each client, retransmitting until every one is acknowledged
/// or `deadline` passes; `acked` counts progress for the caller.
fn lease_clients(
    n_clients: u32,
    server_duid: Vec<u8>,
    client_if: String,
    ifindex: u32,
    acked: Arc<AtomicUsize>,
    deadline: Instant,
) -> HashMap<u32, Vec<Ipv6Addr>> {
    let socket = client_socket(&client_if);
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let to = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, ifindex);
    let mut answers: HashMap<u32, Vec<Ipv6Addr>> = HashMap::new();
    let mut last_sent: HashMap<u32, Instant> = HashMap::new();
    let mut buffer = [0u8; 1500];
    const WINDOW: usize = 32;
    while Instant::now() < deadline && answers.len() < n_clients as usize {
        let waiting: Vec<u32> = (0..n_clients)
            .filter(|i| !answers.contains_key(i))
            .take(WINDOW)
            .collect();
        for i in waiting {
            let due = last_sent
                .get(&i)
                .map_or(true, |t| t.elapsed() > Duration::from_millis(300));
            if due {
                let _ = socket.send_to(&request(i, &server_duid), to);
                last_sent.insert(i, Instant::now());
            }
        }
        while let Ok((len, _)) = socket.recv_from(&mut buffer) {
            if let Some((xid, address)) = reply_address(&buffer[..len]) {
                let entry = answers.entry(xid).or_default();
                if entry.is_empty() {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                entry.push(address);
            }
        }
    }
    answers
}

#[test]
fn a_crash_under_load_loses_no_lease_and_gives_no_address_twice() {
    let Some(mut lab) = Lab::new("rs") else {
        return;
    };
    lab.write_config("", "2001:db8:1::ffff", "");
    lab.start_server();
    let server_duid = hex::decode(
        std::fs::read_to_string(lab.state_dir().join("server-duid"))
            .expect("server DUID persisted")
            .trim(),
    )
    .expect("hex");
    let n_clients = 400;
    let acked = Arc::new(AtomicUsize::new(0));
    let ifindex = lab.client_ifindex();
    let load = {
        let (duid, client_if, acked) = (server_duid.clone(), lab.client_if.clone(), acked.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        lab.in_client_thread(move || {
            lease_clients(n_clients, duid, client_if, ifindex, acked, deadline)
        })
    };
    let until = Instant::now() + Duration::from_secs(15);
    while acked.load(Ordering::SeqCst) < 150 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let acked_before_crash = acked.load(Ordering::SeqCst);
    lab.crash_server();
    lab.start_server();
    let first = load.join().expect("load thread");
    assert!(
        (100..n_clients as usize).contains(&acked_before_crash),
        "the crash should land mid-load, not after {acked_before_crash} acks"
    );
    assert_eq!(first.len(), n_clients as usize, "every client got a lease");

    // No address twice: every client saw one address, and no two clients share one.
    let mut owners: HashMap<Ipv6Addr, u32> = HashMap::new();
    for (client, addresses) in &first {
        let distinct: HashSet<&Ipv6Addr> = addresses.iter().collect();
        assert_eq!(distinct.len(), 1, "client {client} got {addresses:?}");
        if let Some(other) = owners.insert(addresses[0], *client) {
            panic!("{} given to clients {other} and {client}", addresses[0]);
        }
    }

    // No lease lost: after the restart every client gets its address back.
    lab.crash_server();
    lab.start_server();
    let again = {
        let client_if = lab.client_if.clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        lab.in_client_thread(move || {
            lease_clients(
                n_clients,
                server_duid,
                client_if,
                ifindex,
                Arc::new(AtomicUsize::new(0)),
                deadline,
            )
        })
        .join()
        .expect("second pass")
    };
    for (client, addresses) in &first {
        assert_eq!(
            again.get(client).map(|a| a[0]),
            Some(addresses[0]),
            "client {client}"
        );
    }
}

#[test]
fn a_relay_that_no_subnet_maps_is_dropped_and_logged_with_its_link_address() {
    // perfdhcp -A 1 relays with its link-local address as link-address and no
    // Interface-ID; without the config's mapping nothing may be served from the
    // server's own link.
    let Some(mut lab) = Lab::new("ur") else {
        return;
    };
    let path = lab.write_config("", "2001:db8:1::1ff", "");
    let mapping = format!("[[dhcp.subnets.relays]]\nlink_address = \"{CLIENT_LINK_LOCAL}\"\n");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&mapping));
    std::fs::write(&path, text.replace(&mapping, "")).unwrap();
    lab.start_server();
    let out = lab.in_client(
        "perfdhcp",
        &[
            "-6",
            "-l",
            &lab.client_if,
            "-r",
            "20",
            "-n",
            "20",
            "-A",
            "1",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let received: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("received packets:"))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    assert!(received.iter().all(|&n| n == 0), "{text}");
    let log = lab.server_log();
    let dropped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("DHCPv6 relayed message dropped"))
        .collect();
    assert!(!dropped.is_empty(), "{log}");
    assert!(
        dropped[0].contains(&format!("link-address {CLIENT_LINK_LOCAL}"))
            && dropped[0].contains("Interface-ID (none)"),
        "{}",
        dropped[0]
    );
    println!("{}", dropped[0]);
    assert!(lab.server_alive());
}

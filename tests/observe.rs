//! Observability end to end: a real `sixboot boot-server` in a namespace, real clients
//! (rdisc6, dhclient, curl over HTTP and TFTP) and hand-made DHCPv6 datagrams in the
//! other; then `/metrics` holds the exact counts of that known sequence and passes
//! `promtool check metrics`, and `sixboot hosts show` / `hosts watch` print the host's
//! boot timeline in order.

mod dhcpv6_support;

use std::net::{Ipv6Addr, SocketAddrV6};
use std::process::Command;
use std::time::{Duration, Instant};

use dhcpv6_support::{client_socket, Lab, CLIENT_MAC, SERVER_ADDRESS};
use sixboot_lab::need;

const HOST_ADDRESS: &str = "2001:db8:1::10";

fn config_extra(files: &std::path::Path) -> String {
    format!(
        r#"
[http]
listen = ["[{SERVER_ADDRESS}]:8080"]
base_url = "http://[{SERVER_ADDRESS}]:8080"
files_root = "{files}"

[tftp]
listen = ["[{SERVER_ADDRESS}]:6969"]
root = "{files}"

[[hosts]]
mac = "{CLIENT_MAC}"
name = "obs-node"
address = "{HOST_ADDRESS}"
install = true
"#,
        files = files.display()
    )
}

const RA_ON: &str = "[ra]\nenabled = true\nmanaged = true\nother = true\n\
                     router_lifetime_secs = 0\n[[ra.prefixes]]\nprefix = \"2001:db8:1::/64\"\n";

fn curl(lab: &Lab, url: &str) -> Vec<u8> {
    let out = lab.in_client("curl", &["-sS", "-f", "-g", "--max-time", "10", url]);
    assert!(
        out.status.success(),
        "curl {url}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        lab.server_log()
    );
    out.stdout
}

/// The value of one sample line (`name{labels} value`) of the exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn sixboot(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args(args)
        .output()
        .expect("run sixboot");
    assert!(
        out.status.success(),
        "sixboot {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn metrics_count_a_known_sequence_and_the_timeline_shows_every_stage_in_order() {
    if !need::program("promtool", "prometheus")
        || !need::program("rdisc6", "ndisc6")
        || !need::program("dhclient", "isc-dhcp-client")
        || !need::program("curl", "curl")
    {
        return;
    }
    let Some(mut lab) = Lab::new("ob") else {
        return;
    };
    let files = lab.dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("ipxe.efi"), vec![0x4d; 3000]).unwrap();
    std::fs::write(files.join("vmlinuz"), vec![0x7f; 5000]).unwrap();
    std::fs::write(files.join("initrd.img"), vec![0x1f; 7000]).unwrap();
    let config = lab.write_config(RA_ON, "2001:db8:1::1ff", &config_extra(&files));
    let config = config.to_str().unwrap().to_owned();
    // The client reaches the server's global address from the address DHCPv6 gives it.
    let client_if = lab.client_if.clone();
    let status = Command::new("ip")
        .args(["-n", &lab.client_ns, "addr", "add"])
        .arg(format!("{HOST_ADDRESS}/64"))
        .args(["dev", &client_if, "nodad"])
        .status()
        .unwrap();
    assert!(status.success());
    lab.start_server();
    // Someone at the console follows the rack while it boots.
    let mut watching = Command::new(env!("CARGO_BIN_EXE_sixboot"))
        .args([
            "hosts",
            "watch",
            "obs-*",
            "--interval-ms",
            "50",
            "--config",
            &config,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hosts watch");
    std::thread::sleep(Duration::from_millis(300));

    // The known sequence. RA: rdisc6 solicits until it hears an RA.
    let out = lab.in_client("rdisc6", &["-1", "-r", "3", "-w", "1000", &client_if]);
    assert!(out.status.success(), "{}", lab.server_log());
    // DHCPv6: one Solicit/Advertise and one Request/Reply from dhclient ...
    let (lease, _) = lab.dhclient(false);
    assert!(lease.contains(HOST_ADDRESS), "{lease}");
    // ... and three datagrams too short for a header, straight to the server.
    lab.in_client_thread(move || {
        let socket = client_socket(&client_if);
        let server = SocketAddrV6::new(SERVER_ADDRESS.parse::<Ipv6Addr>().unwrap(), 547, 0, 0);
        for _ in 0..3 {
            socket.send_to(&[1, 0, 0], server).expect("send");
        }
    })
    .join()
    .unwrap();
    // TFTP (a UEFI PXE firmware fetching iPXE), then the script, its kernel and initrd.
    assert_eq!(
        curl(&lab, &format!("tftp://[{SERVER_ADDRESS}]:6969/ipxe.efi")).len(),
        3000
    );
    let script = curl(
        &lab,
        &format!("http://[{SERVER_ADDRESS}]:8080/ipxe/ipxe-02-5b-d0-00-00-01.cfg"),
    );
    assert!(String::from_utf8_lossy(&script).contains("vmlinuz"));
    curl(
        &lab,
        &format!("http://[{SERVER_ADDRESS}]:8080/files/vmlinuz"),
    );
    curl(
        &lab,
        &format!("http://[{SERVER_ADDRESS}]:8080/files/initrd.img"),
    );

    // The malformed datagrams are dropped after the lease is written: wait for the
    // three drops before scraping.
    let url = format!("http://[{SERVER_ADDRESS}]:8080/metrics");
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let text = String::from_utf8(curl(&lab, &url)).unwrap();
        if sample(&text, "sixboot_dhcpv6_dropped_total{reason=\"malformed\"}") == Some(3.0)
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let expected = [
        (
            "sixboot_dhcpv6_received_total{type=\"solicit\",via=\"direct\"}",
            4.0,
        ),
        (
            "sixboot_dhcpv6_received_total{type=\"request\",via=\"direct\"}",
            1.0,
        ),
        ("sixboot_dhcpv6_sent_total{type=\"advertise\"}", 1.0),
        ("sixboot_dhcpv6_sent_total{type=\"reply\"}", 1.0),
        ("sixboot_dhcpv6_dropped_total{reason=\"malformed\"}", 3.0),
        (
            "sixboot_dhcpv6_client_messages_total{client=\"unknown\",arch=\"none\"}",
            2.0,
        ),
        ("sixboot_dhcpv6_exchange_duration_seconds_count", 2.0),
        ("sixboot_dhcpv6_lease_fsync_duration_seconds_count", 1.0),
        // The pool is ::100-::1ff; the host's fixed address is outside it.
        (
            "sixboot_dhcpv6_pool_addresses{subnet=\"2001:db8:1::/64\",state=\"size\"}",
            256.0,
        ),
        (
            "sixboot_dhcpv6_pool_addresses{subnet=\"2001:db8:1::/64\",state=\"assigned\"}",
            0.0,
        ),
        ("sixboot_tftp_transfers_total{outcome=\"complete\"}", 1.0),
        ("sixboot_tftp_sent_bytes_total", 3000.0),
        ("sixboot_tftp_active_transfers", 0.0),
        (
            "sixboot_http_requests_total{route=\"script\",code=\"200\"}",
            1.0,
        ),
        (
            "sixboot_http_requests_total{route=\"files\",code=\"200\"}",
            2.0,
        ),
        (
            "sixboot_http_response_bytes_total{route=\"files\"}",
            12000.0,
        ),
        ("sixboot_hosts{stage=\"initrd\"}", 1.0),
        ("sixboot_hosts_install", 1.0),
        ("sixboot_hosts_stuck", 0.0),
        ("sixboot_hosts_looping", 0.0),
    ];
    // One trailing period in each help text (the registry adds one).
    assert!(!metrics.contains(".."), "{metrics}");
    for (series, value) in expected {
        assert_eq!(sample(&metrics, series), Some(value), "{series}\n{metrics}");
    }
    // rdisc6 stops at the first RA: each RS it sent was answered at once or by the
    // next multicast, and each one answered at once got its unicast RA.
    let answered = sample(
        &metrics,
        "sixboot_ra_solicitations_received_total{result=\"answered\"}",
    )
    .unwrap_or(0.0);
    let folded = sample(
        &metrics,
        "sixboot_ra_solicitations_received_total{result=\"multicast\"}",
    )
    .unwrap_or(0.0);
    assert!(answered + folded >= 1.0, "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "sixboot_ra_advertisements_sent_total{kind=\"solicited\"}"
        )
        .unwrap_or(0.0),
        answered,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "sixboot_ra_advertisements_sent_total{kind=\"periodic\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // Every name and help text passes Prometheus' own linter.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The Grafana dashboard asks only for metrics the server has.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contrib/grafana/sixboot.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut n_exprs = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            n_exprs += 1;
            for (start, _) in expr.match_indices("sixboot_") {
                let name: String = expr[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(&name);
                assert!(
                    metrics.contains(&format!("# TYPE {family} ")),
                    "dashboard panel {:?} asks for {name}, which /metrics does not have",
                    panel["title"]
                );
            }
        }
    }
    assert!(n_exprs >= 20, "{n_exprs}");

    // The timeline: every stage the servers saw, in boot order, one boot.
    let deadline = Instant::now() + Duration::from_secs(5);
    let timeline = loop {
        let json = sixboot(&["hosts", "show", "obs-node", "--json", "--config", &config]);
        let timeline: serde_json::Value = serde_json::from_str(&json).unwrap();
        let n_steps = timeline["boots"].as_array().map_or(0, |b| {
            b.iter().map(|b| b["steps"].as_array().unwrap().len()).sum()
        });
        if n_steps >= 7 || Instant::now() > deadline {
            break timeline;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let boots = timeline["boots"].as_array().unwrap();
    assert_eq!(boots.len(), 1, "{timeline:#}");
    let steps = boots[0]["steps"].as_array().unwrap();
    let stages: Vec<&str> = steps.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(
        stages,
        ["rs", "solicit", "reply", "tftp", "script", "kernel", "initrd"],
        "{timeline:#}"
    );
    let times: Vec<u64> = steps.iter().map(|s| s["at"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(steps[2]["detail"], HOST_ADDRESS);
    assert_eq!(steps[5]["detail"], "vmlinuz");

    // By MAC in another spelling, as text.
    let text = sixboot(&["hosts", "show", "02-5b-d0-00-00-01", "--config", &config]);
    assert!(
        text.starts_with("obs-node 02:5b:d0:00:00:01 2001:db8:1::10"),
        "{text}"
    );
    assert!(text.contains("boot 1: started"), "{text}");
    for stage in [
        "rs ", "solicit ", "reply ", "tftp ", "script ", "kernel ", "initrd ",
    ] {
        assert!(text.contains(&format!("\n  {stage}")), "{stage}: {text}");
    }

    // The live view saw the host go through its stages (at 50 ms a few may coalesce).
    let _ = watching.kill();
    let live = String::from_utf8(watching.wait_with_output().unwrap().stdout).unwrap();
    assert!(live.lines().next().unwrap().contains("obs-node"), "{live}");
    assert!(live.contains(" -> initrd (initrd.img)"), "{live}");
    assert!(live.lines().count() >= 3, "{live}");
    eprintln!("hosts watch:\n{live}");

    let watched = sixboot(&[
        "hosts",
        "watch",
        "obs-*",
        "--exit-after",
        "0",
        "--config",
        &config,
    ]);
    assert_eq!(watched.lines().count(), 1, "{watched}");
    assert!(
        watched.contains("obs-node") && watched.contains("initrd (initrd.img)"),
        "{watched}"
    );
    let nothing = sixboot(&[
        "hosts",
        "watch",
        "rack9-*",
        "--exit-after",
        "0",
        "--config",
        &config,
    ]);
    assert!(
        nothing.starts_with("no host matches `rack9-*`"),
        "{nothing}"
    );
}

//! Two `sixboot boot-server` processes in two network namespaces sharing one
//! PostgreSQL database: a host added and marked through the API of server A boots
//! (DHCPv6 with `dhclient -6`, script, kickstart, `/done` with `curl`) through server
//! B within a second; then the database is killed while the host installs, the
//! install completes, and `/done` and every stage are in the database once after it
//! comes back.

mod inventory_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inventory_support::sixboot;
use sixboot_lab::netns::{self, Namespace};
use sixboot_lab::{need, postgres};

const SERVER_B: &str = "2001:db8:1::1";
const HOST_ADDRESS: &str = "2001:db8:1::77";

struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(ns: &Namespace, config: &Path, log: PathBuf) -> Server {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(env!("CARGO_BIN_EXE_sixboot"))
            .args(["boot-server", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let server = Server { child, log };
        let start = Instant::now();
        while !server.log().contains("HTTP listening") {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "server did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// `curl` in a namespace: (status, body).
fn curl(ns: &Namespace, args: &[&str]) -> (u16, String) {
    let out = ns
        .command("curl")
        .args([
            "-gsS",
            "-m",
            "5",
            "-o",
            "/dev/stdout",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let code = code.trim().parse().unwrap_or(0);
    if code == 0 {
        return (0, String::from_utf8_lossy(&out.stderr).into_owned());
    }
    (code, body.to_owned())
}

fn config(dir: &Path, name: &str, url: &str, interface: Option<&str>, listen: &str) -> PathBuf {
    let interfaces = interface.map_or(String::new(), |i| format!("\"{i}\""));
    let subnet_interface = interface.map_or(String::new(), |i| format!("interface = \"{i}\""));
    let text = format!(
        r#"[server]
interfaces = [{interfaces}]
state_dir = "{state}"

[dhcp]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "2001:db8:1::1ff"
{subnet_interface}

[boot]
ipxe_script_url = "http://[{SERVER_B}]/ipxe/ipxe-{{mac}}.cfg"

[http]
listen = ["{listen}"]
base_url = "http://[{SERVER_B}]"

[inventory]
backend = "postgres"
url = "{url}"
server_name = "{name}"
"#,
        state = dir.join(name).display(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_servers_share_the_inventory_and_an_outage_loses_no_done() {
    if !need::root()
        || !need::program("dhclient", "isc-dhcp-client")
        || !need::program("curl", "curl")
    {
        return;
    }
    let Some(bin) = postgres::need_server() else {
        return;
    };
    let cluster = postgres::Cluster::start(&bin, "fleet").expect("PostgreSQL cluster");
    let dir = tempfile::tempdir().unwrap();
    let a_ns = Namespace::create("sbi-flt-a").unwrap();
    let b_ns = Namespace::create("sbi-flt-b").unwrap();
    let c_ns = Namespace::create("sbi-flt-c").unwrap();
    netns::veth(&b_ns, "sbifltb", &c_ns, "sbifltc").unwrap();
    b_ns.ip(&[
        "addr",
        "add",
        &format!("{SERVER_B}/64"),
        "dev",
        "sbifltb",
        "nodad",
    ])
    .unwrap();
    for (ns, interface) in [(&b_ns, "sbifltb"), (&c_ns, "sbifltc")] {
        ns.wait_link_local(interface, Duration::from_secs(5))
            .unwrap();
    }
    // The client's HTTP requests need a source in the subnet (dhclient with
    // `-sf /bin/true` configures nothing).
    c_ns.ip(&[
        "addr",
        "add",
        "2001:db8:1::99/64",
        "dev",
        "sbifltc",
        "nodad",
    ])
    .unwrap();
    let mac = c_ns
        .run("cat", &["/sys/class/net/sbifltc/address"])
        .unwrap()
        .trim()
        .to_owned();

    let a_config = config(dir.path(), "a", &cluster.url(), None, "[::1]:80");
    let b_config = config(
        dir.path(),
        "b",
        &cluster.url(),
        Some("sbifltb"),
        &format!("[{SERVER_B}]:80"),
    );
    assert!(sixboot(&["inventory", "migrate"], &a_config).contains("applied"));
    let token_file = dir.path().join("token");
    sixboot(
        &[
            "api",
            "token",
            "create",
            "--name",
            "fleet",
            "--output",
            token_file.to_str().unwrap(),
        ],
        &a_config,
    );
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let server_a = Server::start(&a_ns, &a_config, dir.path().join("a.log"));
    let server_b = Server::start(&b_ns, &b_config, dir.path().join("b.log"));

    // Added and marked on A ...
    let auth = format!("Authorization: Bearer {token}");
    let body = format!(
        r#"{{"mac":"{mac}","name":"rack-node","address":"{HOST_ADDRESS}","install":true}}"#
    );
    let added = Instant::now();
    let (status, reply) = curl(
        &a_ns,
        &["-H", &auth, "-d", &body, "http://[::1]/api/v1/hosts"],
    );
    assert_eq!(status, 201, "{reply}\n{}", server_a.log());
    // ... served by B within a second.
    let script_url = format!("http://[{SERVER_B}]/ipxe/ipxe-{mac}.cfg");
    let script = loop {
        let (status, script) = curl(&c_ns, &[&script_url]);
        if status == 200 {
            break script;
        }
        assert!(
            added.elapsed() < Duration::from_secs(1),
            "B did not serve the new host within 1 s (last {status}: {script})\n{}\n{:?}\n{:?}\n{:?}",
            server_b.log(),
            c_ns.ip(&["-6", "addr"]),
            b_ns.ip(&["-6", "addr"]),
            b_ns.run("ss", &["-ltn"]),
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let seen_after = added.elapsed();
    // DHCPv6 from B knows it too: its fixed address.
    let lease = dhclient(&c_ns, dir.path(), "sbifltc");
    assert!(
        lease.contains(HOST_ADDRESS),
        "no fixed address in:\n{lease}\n{}",
        server_b.log()
    );

    // The install runs; the database dies between the kickstart and /done.
    let ks_url = script
        .split_whitespace()
        .find_map(|w| w.strip_prefix("inst.ks="))
        .unwrap()
        .to_owned();
    assert_eq!(curl(&c_ns, &[&ks_url]).0, 200);
    cluster.kill().unwrap();
    let done_url = ks_url.replace("/ks/", "/done/");
    let (status, _) = curl(&c_ns, &["-X", "POST", &done_url]);
    assert_eq!(status, 200, "/done during the outage\n{}", server_b.log());
    assert_eq!(
        curl(&c_ns, &[&script_url]).0,
        404,
        "the next boot goes to disk"
    );
    let (_, metrics) = curl(&b_ns, &[&format!("http://[{SERVER_B}]/metrics")]);
    assert!(
        metrics.contains("sixboot_inventory_degraded 1"),
        "{metrics}"
    );
    assert!(dir.path().join("b/inventory-outbox.jsonl").exists());

    cluster.restart().unwrap();
    let back = Instant::now();
    let query = format!("SELECT install FROM host_states WHERE mac = '{mac}'");
    // Replayed: the flag is off in the database and the outbox is written out whole.
    while cluster.psql(&query).unwrap_or_default() != "f"
        || dir.path().join("b/inventory-outbox.jsonl").exists()
    {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "/done never reached the database\n{}",
            server_b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stages = cluster
        .psql(&format!(
            "SELECT string_agg(stage || ':' || n, ',' ORDER BY stage) FROM \
             (SELECT stage, count(*) AS n FROM boot_events WHERE mac = '{mac}' GROUP BY stage) s"
        ))
        .unwrap();
    // The 404 after /done is the "local-disk" stage, recorded during the outage too; the
    // Advertise before the Reply is "solicit".
    assert_eq!(
        stages,
        "done:1,kickstart:1,local-disk:1,reply:1,script:1,solicit:1",
        "{}",
        server_b.log()
    );
    // A hears about it too, and the outbox is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, host) = curl(
            &a_ns,
            &["-H", &auth, &format!("http://[::1]/api/v1/hosts/{mac}")],
        );
        if host.contains("\"install\": false") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still says {host}\n{}",
            server_a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.path().join("b/inventory-outbox.jsonl").exists());
    println!("new host served by the other server after {seen_after:?}");
    drop((server_a, server_b));
}

/// `dhclient -6 -1` once in `ns` on `interface`; its lease file.
fn dhclient(ns: &Namespace, dir: &Path, interface: &str) -> String {
    let lease = dir.join("dhclient.leases");
    let pid = dir.join("dhclient.pid");
    let conf = dir.join("dhclient.conf");
    std::fs::write(&conf, "").unwrap();
    let out = Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            ns.name(),
            "dhclient",
            "-6",
            "-1",
            "-cf",
        ])
        .arg(&conf)
        .arg("-lf")
        .arg(&lease)
        .arg("-pf")
        .arg(&pid)
        .args(["-sf", "/bin/true", interface])
        .output()
        .unwrap();
    if let Ok(text) = std::fs::read_to_string(&pid) {
        if let Ok(n) = text.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(n),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    assert!(
        out.status.success(),
        "dhclient: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&lease).unwrap_or_default()
}

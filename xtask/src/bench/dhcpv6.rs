//! `cargo xtask bench dhcpv6`: perfdhcp -6 against sixboot, Kea (memfile, persisted)
//! and dnsmasq, each in turn on the same veth pair between two namespaces, in one run.
//!
//! sixboot runs twice: as configured by default and with `[monitor] metrics = false`
//! (nothing counted), the price of metrics in the same run (goal: with metrics at
//! least 0.97x the exchanges/s and capacity of without; capacity is judged from server
//! CPU per exchange, since perfdhcp on the same two cores saturates before sixboot).
//!
//! Every server persists its leases to the same disk (a directory under `target/`).
//! The servers run in the foreground of their namespace; perfdhcp runs in the other.
//! Names start with `sbd` (this benchmark's tag) and are removed before and after.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use sixboot_lab::netns;
use xshell::{cmd, Shell};

use super::report::{self, met, thousands, Common, Run, Table};
use crate::deps;

const SERVER_NS: &str = "sbd-bench-s";
const CLIENT_NS: &str = "sbd-bench-c";
const SERVER_IF: &str = "sbdbenchs";
const CLIENT_IF: &str = "sbdbenchc";
/// The client veth's MAC and its EUI-64 link-local address (perfdhcp's relay address).
const CLIENT_MAC: &str = "02:5b:d0:00:00:02";
const CLIENT_LINK_LOCAL: &str = "fe80::5b:d0ff:fe00:2";
const POOL_START: &str = "2001:db8:1::1:0";
const POOL_END: &str = "2001:db8:1::ff:ffff";
/// The name of the sixboot run with `[monitor] metrics = false`.
const NO_METRICS: &str = "sixboot, metrics off";

#[derive(Debug, Args)]
pub struct Dhcpv6Bench {
    /// Target rate of four-way exchanges per second (perfdhcp -r), one or more.
    #[arg(long, value_delimiter = ',', default_value = "6000,10000,15000")]
    rates: Vec<u32>,
    /// Seconds per run (perfdhcp -p).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Distinct simulated clients (perfdhcp -R).
    #[arg(long, default_value_t = 1_000_000)]
    clients: u32,
    /// Also measure through one relay level (perfdhcp -A 1).
    #[arg(long)]
    relay: bool,
    /// Skip the peers and measure sixboot alone.
    #[arg(long)]
    sixboot_only: bool,
    #[command(flatten)]
    common: Common,
}

/// One run of this bench: what `--json` prints and README's table is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: Run,
    /// Seconds per perfdhcp run (`-p`).
    pub seconds: u32,
    /// Distinct simulated clients (`-R`).
    pub clients: u32,
    pub rows: Vec<Measurement>,
}

/// The two namespaces and the veth pair between them (`sixboot_lab::netns::Pair`: locked
/// per name, leftovers removed, removed when dropped). The client's fixed MAC gives it a
/// known link-local address: perfdhcp -A 1 writes it as its Relay-Forw link-address, which
/// sixboot's config maps to the subnet.
fn create_pair() -> Result<netns::Pair> {
    Ok(netns::Pair::create(
        (SERVER_NS, SERVER_IF),
        (CLIENT_NS, CLIENT_IF),
        Some(CLIENT_MAC),
        "2001:db8:1::1/64",
    )?)
}

/// A server running in the server namespace, killed when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn start(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, &Path)],
    ) -> Result<Server> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", SERVER_NS])
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        let mut server = Server { child };
        std::thread::sleep(Duration::from_millis(1500));
        if let Some(status) = server.child.try_wait()? {
            bail!("{name} exited at start-up with {status}");
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One perfdhcp run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `sixboot`, `sixboot, metrics off`, `kea` or `dnsmasq`.
    pub server: String,
    /// Through one relay level (perfdhcp `-A 1`).
    pub relay: bool,
    /// Target rate, exchanges per second (perfdhcp `-r`).
    pub target: u32,
    /// Four-way exchanges per second completed (perfdhcp's `Rate:`).
    pub rate: f64,
    /// Packets perfdhcp sent and counted as dropped, all exchange steps.
    pub sent: u64,
    pub drops: u64,
    /// Server CPU seconds (user + system) during the run: independent of how busy
    /// the rest of the machine is.
    pub cpu_secs: f64,
    /// Datagrams the kernel dropped because the server's socket queue was full.
    pub server_overflows: u64,
    /// The same on perfdhcp's side: drops that are the load generator's, not the server's.
    pub client_overflows: u64,
}

/// `Udp6RcvbufErrors` in a namespace (/proc/net/snmp6 is per namespace).
fn rcvbuf_errors(sh: &Shell, ns: &str) -> u64 {
    cmd!(sh, "ip netns exec {ns} cat /proc/net/snmp6")
        .quiet()
        .read()
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("Udp6RcvbufErrors")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of a process, all threads (/proc/PID/stat fields 14, 15).
fn cpu_seconds(pid: u32) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            // Fields after the name start at field 3 (state).
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / ticks_per_second)
        })
        .unwrap_or(0.0)
}

fn perfdhcp(
    sh: &Shell,
    target: u32,
    seconds: u32,
    clients: u32,
    relay: bool,
) -> Result<(f64, u64, u64)> {
    let rate = target.to_string();
    let period = seconds.to_string();
    let clients = clients.to_string();
    let relay_args: &[&str] = if relay { &["-A", "1"] } else { &[] };
    let output = cmd!(
        sh,
        "ip netns exec {CLIENT_NS} perfdhcp -6 -l {CLIENT_IF} -r {rate} -p {period} -R {clients} -W 1000000 {relay_args...}"
    )
    .ignore_status()
    .read()?;
    let rate = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Rate:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    let numbers = |label: &str| -> u64 {
        output
            .lines()
            .filter_map(|l| l.trim().strip_prefix(label))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .sum()
    };
    Ok((rate, numbers("sent packets:"), numbers("drops:")))
}

/// sixboot's config; `metrics` false adds `[monitor] metrics = false`.
fn write_sixboot_config(dir: &Path, metrics: bool) -> Result<PathBuf> {
    let path = dir.join("sixboot.toml");
    let state = dir.join("sixboot-state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::write(
        &path,
        format!(
            "[server]\ninterfaces = [\"{SERVER_IF}\"]\nstate_dir = \"{}\"\n\
             [dhcp]\ndns_servers = [\"2001:db8:1::1\"]\n\
             [[dhcp.subnets]]\nprefix = \"2001:db8:1::/64\"\npool_start = \"{POOL_START}\"\n\
             pool_end = \"{POOL_END}\"\ninterface = \"{SERVER_IF}\"\n\
             [[dhcp.subnets.relays]]\nlink_address = \"{CLIENT_LINK_LOCAL}\"\n\
             [monitor]\nmetrics = {metrics}\n",
            state.display()
        ),
    )?;
    Ok(path)
}

fn write_kea_config(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("kea-dhcp6.json");
    let leases = dir.join("kea-leases6.csv");
    let _ = std::fs::remove_file(&leases);
    let config = serde_json::json!({
        "Dhcp6": {
            "interfaces-config": { "interfaces": [SERVER_IF] },
            "lease-database": { "type": "memfile", "persist": true, "name": leases, "lfc-interval": 0 },
            "preferred-lifetime": 3600,
            "valid-lifetime": 7200,
            "renew-timer": 1800,
            "rebind-timer": 2880,
            "option-data": [{ "name": "dns-servers", "data": "2001:db8:1::1" }],
            "subnet6": [{
                "id": 1,
                "subnet": "2001:db8:1::/64",
                "interface": SERVER_IF,
                "pools": [{ "pool": format!("{POOL_START}-{POOL_END}") }]
            }],
            "loggers": [{ "name": "kea-dhcp6", "severity": "WARN",
                          "output_options": [{ "output": dir.join("kea.log") }] }]
        }
    });
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok(path)
}

impl Dhcpv6Bench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        deps::ensure(
            sh,
            &[
                deps::SERVER_BUILD,
                &["iproute2", "kea-admin", "kea-dhcp6-server", "dnsmasq-base"],
            ]
            .concat(),
            self.common.no_install,
        )?;
        if !nix_is_root() {
            bail!("the DHCPv6 benchmark creates network namespaces: run it as root");
        }
        cmd!(sh, "cargo build --release --bin sixboot").run()?;
        let mut run = Run::start();
        run.tools = report::tool_versions(
            sh,
            &[
                ("perfdhcp", &["-v"]),
                ("kea-dhcp6", &["-V"]),
                ("dnsmasq", &["--version"]),
            ],
        );
        let root = crate::project_root();
        let sixboot = root.join("target/release/sixboot");
        let dir = root.join("target/bench-dhcpv6");
        std::fs::create_dir_all(&dir)?;
        // Kea refuses to start without its state directory.
        std::fs::create_dir_all("/var/lib/kea")?;
        let _netns = create_pair()?;
        let mut results = Vec::new();
        let relays: &[bool] = if self.relay { &[false, true] } else { &[false] };
        let servers: &[&str] = if self.sixboot_only {
            &["sixboot", NO_METRICS]
        } else {
            &["sixboot", NO_METRICS, "kea", "dnsmasq"]
        };
        // Rates outside, servers inside: the runs compared with each other (sixboot
        // with and without metrics, and the peers) run back to back.
        for &target in &self.rates {
            for &name in servers {
                for &relay in relays {
                    if relay && name == "dnsmasq" {
                        continue; // dnsmasq answers no Relay-Forw that is not from a relay on a configured link.
                    }
                    // A fresh server (and empty lease store) for every run.
                    let server = match name {
                        "sixboot" | NO_METRICS => {
                            let config = write_sixboot_config(&dir, name == "sixboot")?;
                            Server::start(
                                name,
                                &sixboot,
                                &[
                                    "boot-server".into(),
                                    "--config".into(),
                                    config.display().to_string(),
                                ],
                                &[("RUST_LOG", Path::new("warn"))],
                            )?
                        }
                        "kea" => {
                            let config = write_kea_config(&dir)?;
                            Server::start(
                                name,
                                Path::new("kea-dhcp6"),
                                &["-c".into(), config.display().to_string()],
                                &[("KEA_PIDFILE_DIR", &dir), ("KEA_LOCKFILE_DIR", &dir)],
                            )?
                        }
                        _ => {
                            let leases = dir.join("dnsmasq.leases");
                            let _ = std::fs::remove_file(&leases);
                            Server::start(
                                name,
                                Path::new("dnsmasq"),
                                &[
                                    "--keep-in-foreground".into(),
                                    "--conf-file=/dev/null".into(),
                                    "--port=0".into(),
                                    format!("--interface={SERVER_IF}"),
                                    format!("--dhcp-range={POOL_START},{POOL_END},64,1h"),
                                    format!("--dhcp-leasefile={}", leases.display()),
                                    format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
                                    "--dhcp-option=option6:dns-server,[2001:db8:1::1]".into(),
                                ],
                                &[],
                            )?
                        }
                    };
                    eprintln!(
                        "bench: {name} at {target}/s{}",
                        if relay { " via one relay" } else { "" }
                    );
                    let pid = server.child.id();
                    let cpu_before = cpu_seconds(pid);
                    let server_before = rcvbuf_errors(sh, SERVER_NS);
                    let client_before = rcvbuf_errors(sh, CLIENT_NS);
                    let (rate, sent, drops) =
                        perfdhcp(sh, target, self.seconds, self.clients, relay)?;
                    results.push(Measurement {
                        server: name.to_owned(),
                        relay,
                        target,
                        rate,
                        sent,
                        drops,
                        cpu_secs: cpu_seconds(pid) - cpu_before,
                        server_overflows: rcvbuf_errors(sh, SERVER_NS) - server_before,
                        client_overflows: rcvbuf_errors(sh, CLIENT_NS) - client_before,
                    });
                    drop(server);
                }
            }
        }
        run.finish();
        let report = Report {
            run,
            seconds: self.seconds,
            clients: self.clients,
            rows: results,
        };
        report::print(&report, self.common.json, render)
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Completed exchanges per second as a multiple of Kea's in the same run and path.
fn vs_kea(report: &Report, m: &Measurement) -> Option<f64> {
    report
        .rows
        .iter()
        .find(|k| k.server == "kea" && k.target == m.target && k.relay == m.relay)
        .filter(|k| k.rate > 0.0)
        .map(|k| m.rate / k.rate)
}

/// The table (what the bench prints and README shows), the goal per rate, and the run.
pub fn render(report: &Report) -> String {
    let mut table = Table::new(&[
        ("server", false),
        ("path", false),
        ("target/s", true),
        ("exchanges/s", true),
        ("drops", true),
        ("vs Kea", true),
        ("server CPU ms/1k exchanges", true),
        ("queue drops server / perfdhcp", true),
    ]);
    for m in &report.rows {
        let drops = if m.sent == 0 {
            "-".into()
        } else {
            format!("{:.1} %", 100.0 * m.drops as f64 / m.sent as f64)
        };
        let exchanges = m.rate * f64::from(report.seconds);
        let cpu = if exchanges > 0.0 {
            format!("{:.1}", 1e6 * m.cpu_secs / exchanges)
        } else {
            "-".into()
        };
        table.row(vec![
            m.server.clone(),
            if m.relay { "relay" } else { "direct" }.into(),
            thousands(f64::from(m.target)),
            thousands(m.rate),
            drops,
            vs_kea(report, m).map_or("-".into(), |r| format!("{r:.2}x")),
            cpu,
            format!(
                "{} / {}",
                thousands(m.server_overflows as f64),
                thousands(m.client_overflows as f64)
            ),
        ]);
    }
    let intro = format!(
        "perfdhcp -6, {} s per run, {} simulated clients, four-way exchanges \
         (Solicit-Advertise-Request-Reply), every server's leases persisted:",
        report.seconds,
        thousands(f64::from(report.clients))
    );
    report::document(&intro, &table, &headlines(report), &report.run)
}

/// Server CPU microseconds per completed exchange.
fn cpu_us_per_exchange(report: &Report, m: &Measurement) -> Option<f64> {
    let exchanges = m.rate * f64::from(report.seconds);
    (exchanges > 0.0 && m.cpu_secs > 0.0).then(|| 1e6 * m.cpu_secs / exchanges)
}

/// The results against the goals, one line per rate and path: >= 1.5x Kea's
/// exchanges/s; with metrics >= 0.97x of without, in exchanges/s and in capacity
/// (CPU per exchange without / with).
pub fn headlines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for m in report.rows.iter().filter(|m| m.server == "sixboot") {
        let path = if m.relay { "relayed" } else { "direct" };
        if let Some(ratio) = vs_kea(report, m) {
            lines.push(format!(
                "DHCPv6 {path} at {}/s: sixboot {} exchanges/s = {ratio:.2}x Kea's (goal >= 1.5x): {}",
                thousands(f64::from(m.target)),
                thousands(m.rate),
                met(ratio >= 1.5)
            ));
        }
        let off = report
            .rows
            .iter()
            .find(|o| o.server == NO_METRICS && o.target == m.target && o.relay == m.relay);
        if let Some(off) = off.filter(|o| o.rate > 0.0) {
            let rate = m.rate / off.rate;
            let (cpu_on, cpu_off) = (
                cpu_us_per_exchange(report, m),
                cpu_us_per_exchange(report, off),
            );
            let capacity = match (cpu_on, cpu_off) {
                (Some(on), Some(off)) => off / on,
                _ => 0.0,
            };
            lines.push(format!(
                "DHCPv6 {path} at {}/s, metrics on vs off: {} vs {} exchanges/s = {rate:.2}x; \
                 server CPU {:.1} vs {:.1} us/exchange = capacity {capacity:.2}x (goal >= 0.97x): {}",
                thousands(f64::from(m.target)),
                thousands(m.rate),
                thousands(off.rate),
                cpu_on.unwrap_or(0.0),
                cpu_off.unwrap_or(0.0),
                met(rate >= 0.97 && capacity >= 0.97)
            ));
        }
    }
    lines
}

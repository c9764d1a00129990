//! `cargo xtask bench inventory`: the inventory's two backends in one run, on the same
//! hosts: the time to import N hosts (`sixboot hosts import --csv`), then with the
//! whole inventory loaded, script requests/s (wrk on the server's loopback) and DHCPv6
//! four-way exchanges/s (perfdhcp over a veth pair) from `sixboot boot-server` on the
//! file backend and on PostgreSQL (a throwaway cluster from `sixboot_lab::postgres`).
//! The goal: PostgreSQL ≥ 0.95× the file backend on both paths, since neither path
//! touches the store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use sixboot_lab::netns;
use xshell::{cmd, Shell};

use super::report::{self, met, thousands, Common, Run, Table};
use crate::deps;

const SERVER_NS: &str = "sbi-bench-s";
const CLIENT_NS: &str = "sbi-bench-c";
const SERVER_IF: &str = "sbibenchs";
const CLIENT_IF: &str = "sbibenchc";

#[derive(Debug, Args)]
pub struct InventoryBench {
    /// Hosts to import (and hold in memory while serving).
    #[arg(long, default_value_t = 100_000)]
    hosts: u32,
    /// Seconds per wrk and perfdhcp run.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// perfdhcp's target rate of four-way exchanges/s.
    #[arg(long, default_value_t = 8_000)]
    dhcp_rate: u32,
    #[command(flatten)]
    common: Common,
}

/// One backend's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendResult {
    /// `file` or `postgres`.
    pub backend: String,
    /// Seconds `sixboot hosts import --csv` took for every host.
    pub import_secs: f64,
    /// Seconds from `boot-server` start to "HTTP listening" with every host loaded.
    pub ready_secs: f64,
    pub script_requests_per_sec: f64,
    pub dhcpv6_exchanges_per_sec: f64,
}

/// One run of this bench: what `--json` prints and README's table is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: Run,
    pub hosts: u32,
    /// Seconds per wrk and perfdhcp run.
    pub seconds: u32,
    /// perfdhcp's target rate (`-r`).
    pub dhcp_target_rate: u32,
    /// The file backend first, then PostgreSQL.
    pub results: Vec<BackendResult>,
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl InventoryBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let packages = [deps::SERVER_BUILD, &["wrk", "kea-admin", "postgresql"]].concat();
        deps::ensure(sh, &packages, self.common.no_install)?;
        cmd!(sh, "cargo build --quiet --release --bin sixboot").run()?;
        let sixboot = crate::project_root().join("target/release/sixboot");
        let Some(bin) = sixboot_lab::postgres::bin_dir() else {
            bail!("no PostgreSQL server binaries under /usr/lib/postgresql");
        };
        let cluster = sixboot_lab::postgres::Cluster::start(&bin, "bench")
            .context("cannot start a PostgreSQL cluster")?;
        let dir = tempfile_dir()?;
        let csv = dir.join("hosts.csv");
        write_csv(&csv, self.hosts)?;
        let mut facts = Run::start();
        facts.tools = report::tool_versions(sh, &[("wrk", &["-v"]), ("perfdhcp", &["-v"])]);
        let mut results = Vec::new();
        for backend in ["file", "postgres"] {
            let config = write_config(&dir, backend, &cluster.url())?;
            if backend == "postgres" {
                run(&sixboot, &["inventory", "migrate"], &config)?;
            }
            let start = Instant::now();
            run(
                &sixboot,
                &["hosts", "import", "--csv", csv.to_str().unwrap_or("")],
                &config,
            )?;
            let import_secs = start.elapsed().as_secs_f64();
            run(&sixboot, &["hosts", "install", "h0"], &config)?;
            let _netns = make_netns()?;
            let log = dir.join(format!("{backend}.log"));
            let start = Instant::now();
            let _server = Running(
                Command::new("ip")
                    .args(["netns", "exec", SERVER_NS])
                    .arg(&sixboot)
                    .args(["boot-server", "--config"])
                    .arg(&config)
                    .env("RUST_LOG", "warn,sixboot::http::runtime=info")
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log)?)
                    .spawn()?,
            );
            while !std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("HTTP listening")
            {
                if start.elapsed() > Duration::from_secs(300) {
                    bail!(
                        "boot-server did not start:\n{}",
                        std::fs::read_to_string(&log)?
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let ready_secs = start.elapsed().as_secs_f64();
            let seconds = format!("{}s", self.seconds);
            let url = format!("http://[::1]:8080/ipxe/ipxe-{}.cfg", mac(0));
            let wrk = cmd!(
                sh,
                "ip netns exec {SERVER_NS} wrk -t2 -c50 -d{seconds} {url}"
            )
            .read()?;
            let script_requests_per_sec = wrk
                .lines()
                .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .with_context(|| format!("cannot read wrk's report:\n{wrk}"))?;
            let (rate, period) = (self.dhcp_rate.to_string(), self.seconds.to_string());
            let perfdhcp = cmd!(
                sh,
                "ip netns exec {CLIENT_NS} perfdhcp -6 -l {CLIENT_IF} -r {rate} -p {period} -R 100000 -W 1000000"
            )
            .ignore_status()
            .read()?;
            let dhcpv6_exchanges_per_sec = perfdhcp
                .lines()
                .find_map(|l| l.trim().strip_prefix("Rate:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
            results.push(BackendResult {
                backend: backend.to_owned(),
                import_secs,
                ready_secs,
                script_requests_per_sec,
                dhcpv6_exchanges_per_sec,
            });
        }
        facts.finish();
        let report = Report {
            run: facts,
            hosts: self.hosts,
            seconds: self.seconds,
            dhcp_target_rate: self.dhcp_rate,
            results,
        };
        let _ = std::fs::remove_dir_all(&dir);
        report::print(&report, self.common.json, render)
    }
}

/// PostgreSQL's figure as a multiple of the file backend's (`None` without both).
fn ratio(report: &Report, figure: fn(&BackendResult) -> f64) -> Option<f64> {
    let find = |name: &str| report.results.iter().find(|r| r.backend == name);
    let (file, postgres) = (find("file")?, find("postgres")?);
    (figure(file) > 0.0).then(|| figure(postgres) / figure(file))
}

/// The table (what the bench prints and README shows), the goal, and the run.
pub fn render(report: &Report) -> String {
    let mut table = Table::new(&[
        ("backend", false),
        ("import", true),
        ("ready", true),
        ("script req/s", true),
        ("DHCPv6 exchanges/s", true),
    ]);
    for r in &report.results {
        table.row(vec![
            r.backend.clone(),
            format!("{:.1} s", r.import_secs),
            format!("{:.1} s", r.ready_secs),
            thousands(r.script_requests_per_sec),
            thousands(r.dhcpv6_exchanges_per_sec),
        ]);
    }
    let intro = format!(
        "{} hosts imported with `hosts import --csv`, then held in memory by `boot-server`; wrk \
         -t2 -c50 for {} s on one host's script; perfdhcp -6 -r {} for {} s:",
        thousands(f64::from(report.hosts)),
        report.seconds,
        thousands(f64::from(report.dhcp_target_rate)),
        report.seconds
    );
    report::document(&intro, &table, &headlines(report), &report.run)
}

/// The result against the goal: PostgreSQL >= 0.95x the file backend on both paths.
pub fn headlines(report: &Report) -> Vec<String> {
    let (Some(script), Some(dhcpv6)) = (
        ratio(report, |r| r.script_requests_per_sec),
        ratio(report, |r| r.dhcpv6_exchanges_per_sec),
    ) else {
        return Vec::new();
    };
    vec![format!(
        "Inventory of {} hosts, PostgreSQL / file backend: script {script:.2}x, DHCPv6 \
         {dhcpv6:.2}x (goal >= 0.95x on both): {}",
        thousands(f64::from(report.hosts)),
        met(script >= 0.95 && dhcpv6 >= 0.95)
    )]
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sixboot-bench-inventory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Host `i`'s MAC: `02:00:` and `i`'s four bytes, big-endian.
pub(super) fn mac(i: u32) -> String {
    let b = i.to_be_bytes();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// A `hosts import --csv` file of `n` hosts, `h0` to `h{n-1}`, with [`mac`]s and
/// addresses in 2001:db8:1::/64.
pub(super) fn write_csv(path: &Path, n: u32) -> Result<()> {
    let mut text = String::from("mac,name,address,vars\n");
    for i in 0..n {
        text.push_str(&format!(
            "{},h{i},2001:db8:1::{:x}:{:x},kernel_args=console=ttyS0\n",
            mac(i),
            1 + i / 0x10000,
            i % 0x10000
        ));
    }
    std::fs::write(path, text)?;
    Ok(())
}

fn write_config(dir: &Path, backend: &str, url: &str) -> Result<PathBuf> {
    let inventory = if backend == "postgres" {
        format!("[inventory]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
    } else {
        String::new()
    };
    let text = format!(
        r#"[server]
interfaces = ["{SERVER_IF}"]
state_dir = "{state}"

[dhcp]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1:0:ffff::"
pool_end = "2001:db8:1:0:ffff::ffff"
interface = "{SERVER_IF}"

[boot]
ipxe_script_url = "http://[2001:db8:1::1]/ipxe/ipxe-{{mac}}.cfg"

[http]
listen = ["[::1]:8080"]
base_url = "http://[2001:db8:1::1]"

{inventory}"#,
        state = dir.join(backend).display(),
    );
    let path = dir.join(format!("{backend}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn run(sixboot: &Path, args: &[&str], config: &Path) -> Result<()> {
    let out = Command::new(sixboot)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()?;
    if !out.status.success() {
        bail!(
            "sixboot {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The server and client namespaces and the veth link between them (removed when
/// dropped).
fn make_netns() -> Result<netns::Pair> {
    Ok(netns::Pair::create(
        (SERVER_NS, SERVER_IF),
        (CLIENT_NS, CLIENT_IF),
        None,
        "2001:db8:1::1/64",
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_backends_and_judges_the_goal_on_both_paths() {
        let backend = |name: &str, script: f64, dhcpv6: f64| BackendResult {
            backend: name.into(),
            import_secs: 2.0,
            ready_secs: 3.5,
            script_requests_per_sec: script,
            dhcpv6_exchanges_per_sec: dhcpv6,
        };
        let mut report = Report {
            run: Run::fixture("cargo xtask bench inventory --json"),
            hosts: 100_000,
            seconds: 5,
            dhcp_target_rate: 8_000,
            results: vec![
                backend("file", 40_000.0, 7_000.0),
                backend("postgres", 39_000.0, 6_990.0),
            ],
        };
        let text = render(&report);
        assert!(
            text.contains("| postgres |  2.0 s | 3.5 s |       39,000 |              6,990 |"),
            "{text}"
        );
        assert!(text.contains("script 0.97x, DHCPv6 1.00x (goal >= 0.95x on both): met"));
        report.results[1].dhcpv6_exchanges_per_sec = 6_000.0;
        assert!(headlines(&report)[0].ends_with("not met"));
        report.results.pop();
        assert!(headlines(&report).is_empty(), "no verdict without both");
    }
}

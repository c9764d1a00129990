//! `cargo xtask bench status`: the status page of a server holding 100,000 hosts, page
//! by page: its size and the time to answer it, against nginx serving the very same
//! bytes as static files in the same run (the floor any server has).
//!
//! The hosts come from `sixboot hosts import --csv` into the file backend; one host is
//! marked for install and fetches its script, so that its timeline has a boot. Each page
//! is fetched once (size, and the bytes nginx then serves), then requested one at a
//! time for `--seconds` by `wrk -t1 -c1 --latency` (each request waits for the previous
//! answer, so a request's latency is the server's time plus loopback). The last rows
//! repeat two pages while hosts boot: a thread fetches the script of one host after
//! another (`--booting`/s, each a 404 to its disk, so a new stage per host), so the
//! inventory's writer commits and publishes new snapshots all along. The goals (issue
//! 16): every page under 100 KB and answered in under 50 ms (p99) at 100,000 hosts.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use super::http::{
    cpu_ticks, free_port, get, parse_wrk, start_nginx, wait_for_port, RemoveDir, Running,
};
use super::inventory::{mac, write_csv};
use super::report::{self, met, thousands, Common, Run, Table};
use crate::deps;

/// The goals: page size and p99 latency.
const MAX_PAGE_BYTES: usize = 100 * 1024;
const MAX_P99_MS: f64 = 50.0;

#[derive(Debug, Args)]
pub struct StatusBench {
    /// Hosts in the inventory.
    #[arg(long, default_value_t = 100_000)]
    hosts: u32,
    /// Seconds of requests per page and server.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Hosts booting per second during the last rows.
    #[arg(long, default_value_t = 20)]
    booting: u32,
    #[command(flatten)]
    common: Common,
}

/// One run of this bench: what `--json` prints and README's table is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: Run,
    pub hosts: u32,
    /// Seconds of requests per page and server.
    pub seconds: u32,
    /// Hosts booting per second during the rows marked `booting`.
    #[serde(default)]
    pub booting_per_sec: u32,
    pub rows: Vec<Row>,
}

/// One page on both servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What the page is (`status, first page`, …).
    pub page: String,
    /// The path asked for.
    pub path: String,
    /// The body's size in bytes.
    pub bytes: usize,
    /// Measured while hosts boot (see `--booting`).
    #[serde(default)]
    pub booting: bool,
    pub sixboot: Timing,
    pub nginx: Timing,
}

/// One server's answers to one page, one request at a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Server CPU (user + system) per request, ms.
    pub cpu_ms_per_request: f64,
    /// Non-2xx answers and socket errors.
    pub errors: u64,
}

impl StatusBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let packages = [deps::SERVER_BUILD, &["wrk", "nginx-light"]].concat();
        deps::ensure(sh, &packages, self.common.no_install)?;
        cmd!(
            sh,
            "cargo build --quiet --release --bin sixboot --example http_serve"
        )
        .run()?;
        let root = crate::project_root();
        let sixboot = root.join("target/release/sixboot");
        let server_bin = root.join("target/release/examples/http_serve");
        if self.hosts == 0 {
            bail!("--hosts must be at least 1");
        }

        let dir = std::env::temp_dir().join(format!("sbs-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("files"))?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let _cleanup = RemoveDir(dir.clone());
        let port = free_port()?;
        let nginx_port = free_port()?;
        let config = dir.join("boot.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nstate_dir = \"state\"\n\n[http]\nlisten = [\"127.0.0.1:{port}\"]\n\
                 base_url = \"http://[2001:db8:1::1]\"\n"
            ),
        )?;
        let csv = dir.join("hosts.csv");
        write_csv(&csv, self.hosts)?;
        eprintln!("importing {} hosts", thousands(f64::from(self.hosts)));
        for args in [
            vec!["hosts", "import", "--csv", csv.to_str().unwrap_or_default()],
            vec!["hosts", "install", "h0"],
        ] {
            let out = Command::new(&sixboot)
                .args(&args)
                .arg("--config")
                .arg(&config)
                .output()?;
            if !out.status.success() {
                bail!(
                    "sixboot {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let child = Command::new(&server_bin)
            .arg(&config)
            .env("RUST_LOG", "warn")
            .env("SIXBOOT_HTTP_WORKERS", "2")
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the sixboot HTTP server")?;
        let server = Running {
            name: "sixboot",
            child,
        };
        wait_for_port(port, Duration::from_secs(120))?;
        // One boot for the timeline: h0 fetches its script.
        let h0 = mac(0);
        let (code, _) = get(port, &format!("/ipxe/ipxe-{h0}.cfg"))?;
        if code != 200 {
            bail!("h0's script answered {code}, expected 200");
        }
        std::thread::sleep(Duration::from_millis(500)); // the inventory's writer records it

        let last = format!("h{}", self.hosts - 1);
        let pages = [
            ("status, first page", "/status".to_owned()),
            (
                "status, last page",
                format!("/status?page={}", self.hosts.div_ceil(100)),
            ),
            ("status, text search", format!("/status?q={last}")),
            ("status, stage filter", "/status?stage=script".to_owned()),
            (
                "status.json (what the page polls)",
                "/status.json".to_owned(),
            ),
            ("status.json, text search", format!("/status.json?q={last}")),
            ("host timeline", format!("/status/host/{h0}")),
            ("status, first page, hosts booting", "/status".to_owned()),
            ("status.json, hosts booting", "/status.json".to_owned()),
        ];
        let mut fetched = Vec::new();
        for (i, (name, path)) in pages.iter().enumerate() {
            let (code, body) = get(port, path)?;
            if code != 200 {
                bail!("{path} answered {code}, expected 200");
            }
            let file = format!("page{i}");
            std::fs::write(dir.join("files").join(&file), &body)?;
            fetched.push((name, path, body.len(), file));
        }
        // The search finds the one host; the timeline shows its script.
        let (_, body) = get(port, &format!("/status?q={last}"))?;
        if !String::from_utf8_lossy(&body).contains(&format!(">{last}<")) {
            bail!("/status?q={last} does not list {last}");
        }
        let (_, body) = get(port, &format!("/status/host/{h0}"))?;
        if !String::from_utf8_lossy(&body).contains("script") {
            bail!("h0's timeline shows no script stage");
        }

        let nginx = start_nginx(sh, &dir, nginx_port, 2)?;
        wait_for_port(nginx_port, Duration::from_secs(10))?;

        let mut run = Run::start();
        run.tools = report::tool_versions(sh, &[("nginx", &["-v"]), ("wrk", &["-v"])]);
        let mut rows = Vec::new();
        for (name, path, bytes, file) in fetched {
            eprintln!("page: {name} ({path}, {bytes} bytes)");
            let booting = name.ends_with("hosts booting");
            let _boots = booting.then(|| Boots::start(port, self.booting, self.hosts));
            let ours = self.timing(sh, &format!("127.0.0.1:{port}{path}"), server.child.id())?;
            let theirs = self.timing(
                sh,
                &format!("127.0.0.1:{nginx_port}/{file}"),
                nginx.child.id(),
            )?;
            rows.push(Row {
                page: (*name).to_owned(),
                path: path.clone(),
                bytes,
                booting,
                sixboot: ours,
                nginx: theirs,
            });
        }
        drop(server);
        drop(nginx);
        run.finish();
        let report = Report {
            run,
            hosts: self.hosts,
            seconds: self.seconds,
            booting_per_sec: self.booting,
            rows,
        };
        report::print(&report, self.common.json, render)
    }

    /// `wrk -t1 -c1` on `http://{target}` for `--seconds`, with the server's CPU.
    fn timing(&self, sh: &Shell, target: &str, pid: u32) -> Result<Timing> {
        let ticks_per_sec: f64 = cmd!(sh, "getconf CLK_TCK").quiet().read()?.trim().parse()?;
        let duration = format!("{}s", self.seconds);
        let url = format!("http://{target}");
        let before = cpu_ticks(pid);
        let text = cmd!(sh, "wrk -t1 -c1 -d{duration} --latency {url}")
            .quiet()
            .read()?;
        let cpu_secs = (cpu_ticks(pid) - before) as f64 / ticks_per_sec;
        let result = parse_wrk(&text)?;
        let n = (result.requests_per_sec * f64::from(self.seconds)).max(1.0);
        Ok(Timing {
            requests_per_sec: result.requests_per_sec,
            p50_ms: result.p50_ms,
            p99_ms: result.p99_ms,
            cpu_ms_per_request: cpu_secs * 1e3 / n,
            errors: result.errors,
        })
    }
}

/// The next host a [`Boots`] boots: each host boots once per run (a second 404 would be
/// the stage it has, which the inventory skips).
static NEXT_HOST: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Hosts booting while it lives: a thread that fetches the script of one host after
/// another ([`NEXT_HOST`]) at `per_sec` a second (each a 404 to its disk: a new stage for
/// the inventory).
struct Boots {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Boots {
    fn start(port: u16, per_sec: u32, hosts: u32) -> Boots {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let pause = Duration::from_secs(1) / per_sec.max(1);
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let i = NEXT_HOST.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % hosts;
                let _ = get(port, &format!("/ipxe/ipxe-{}.cfg", mac(i.max(1))));
                std::thread::sleep(pause);
            }
        });
        Boots {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Boots {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The table (what the bench prints and README shows), the goals, and the run.
pub fn render(report: &Report) -> String {
    let mut table = Table::new(&[
        ("page", false),
        ("size", true),
        ("sixboot p50 ms", true),
        ("p99 ms", true),
        ("CPU ms/req", true),
        ("req/s", true),
        ("nginx, same bytes: p50 ms", true),
        ("p99 ms", true),
        ("req/s", true),
    ]);
    for row in &report.rows {
        let (ours, theirs) = (&row.sixboot, &row.nginx);
        table.row(vec![
            format!("{} `{}`", row.page, row.path),
            format!("{:.1} KB", row.bytes as f64 / 1024.0),
            format!("{:.2}", ours.p50_ms),
            format!("{:.2}", ours.p99_ms),
            format!("{:.2}", ours.cpu_ms_per_request),
            thousands(ours.requests_per_sec),
            format!("{:.2}", theirs.p50_ms),
            format!("{:.2}", theirs.p99_ms),
            thousands(theirs.requests_per_sec),
        ]);
    }
    let intro = format!(
        "The status pages of a server holding {} hosts (file backend), one request at a \
         time (`wrk -t1 -c1 --latency`, {} s per page and server), against nginx serving \
         the same bytes from files; the last rows while {} hosts/s boot:",
        thousands(f64::from(report.hosts)),
        report.seconds,
        report.booting_per_sec
    );
    report::document(&intro, &table, &headlines(report), &report.run)
}

/// The results against the goals: every page < 100 KB; every page's p99 < 50 ms.
pub fn headlines(report: &Report) -> Vec<String> {
    let Some(largest) = report.rows.iter().max_by_key(|r| r.bytes) else {
        return Vec::new();
    };
    let slowest = report
        .rows
        .iter()
        .max_by(|a, b| a.sixboot.p99_ms.total_cmp(&b.sixboot.p99_ms))
        .unwrap_or(largest);
    let errors: u64 = report.rows.iter().map(|r| r.sixboot.errors).sum();
    vec![
        format!(
            "Status pages at {} hosts, size: largest {} ({:.1} KB) (goal < 100 KB each): {}",
            thousands(f64::from(report.hosts)),
            largest.page,
            largest.bytes as f64 / 1024.0,
            met(largest.bytes < MAX_PAGE_BYTES)
        ),
        format!(
            "Status pages at {} hosts, time: slowest {} p99 {:.2} ms, {:.2} ms CPU (goal < 50 ms each){}: {}",
            thousands(f64::from(report.hosts)),
            slowest.page,
            slowest.sixboot.p99_ms,
            slowest.sixboot.cpu_ms_per_request,
            if errors > 0 {
                format!(", {errors} errors")
            } else {
                String::new()
            },
            met(slowest.sixboot.p99_ms < MAX_P99_MS && errors == 0)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(p99_ms: f64) -> Timing {
        Timing {
            requests_per_sec: 100.0,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            cpu_ms_per_request: 1.0,
            errors: 0,
        }
    }

    #[test]
    fn judges_the_largest_and_the_slowest_page() {
        let row = |page: &str, bytes, p99| Row {
            page: page.into(),
            path: "/status".into(),
            bytes,
            booting: false,
            sixboot: timing(p99),
            nginx: timing(0.1),
        };
        let mut report = Report {
            run: Run::fixture("cargo xtask bench status --json"),
            hosts: 100_000,
            seconds: 5,
            booting_per_sec: 20,
            rows: vec![row("a", 40_000, 3.0), row("b", 90_000, 12.0)],
        };
        let lines = headlines(&report);
        assert!(lines[0].contains("largest b (87.9 KB)"), "{lines:?}");
        assert!(lines[1].contains("slowest b p99 12.00 ms"), "{lines:?}");
        assert!(lines.iter().all(|l| l.ends_with(": met")), "{lines:?}");
        report.rows.push(row("c", 120_000, 60.0));
        let lines = headlines(&report);
        assert!(lines.iter().all(|l| l.ends_with(": not met")), "{lines:?}");
        assert!(render(&report).contains("| c `/status`"));
    }
}

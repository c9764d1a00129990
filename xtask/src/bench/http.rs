//! `cargo xtask bench http`: wrk against sixboot's HTTP server and nginx, in one run,
//! on loopback, with the same files.
//!
//! Three measurements per server, each `wrk -t2 -c100 --latency`:
//! 1. a 10 MiB file (throughput; nginx with `sendfile on; tcp_nopush on;
//!    sendfile_max_chunk 1m`, sixboot with `sendfile(2)` in 1 MiB pieces);
//! 2. the per-host iPXE script at full speed (nginx serves the same bytes as a file,
//!    sixboot renders the template per request);
//! 3. the script paced to about 5,000 requests/s: Debian's wrk has no `-R` (that is
//!    wrk2), so each connection waits 20 ms between requests (wrk's Lua `delay()`),
//!    100 connections × 50/s. Latency percentiles come from `--latency`.
//!
//! wrk and the servers share the machine's cores; every server gets the same number
//! of workers (nginx `worker_processes`, sixboot's HTTP worker threads).
//!
//! sixboot runs twice, as configured by default and with `[monitor] metrics = false`
//! (no counting at all): the price of metrics, measured in the same run (goal: the
//! script's throughput with metrics at least 0.97x of without).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use super::report::{self, met, thousands, Common, Run, Table};
use crate::deps;

const MAC: &str = "52:54:00:12:34:56";
const SCRIPT_PATH: &str = "/ipxe/ipxe-52%3A54%3A00%3A12%3A34%3A56.cfg";
const BIG_FILE_BYTES: usize = 10 * 1024 * 1024;
/// The name of the sixboot run with `[monitor] metrics = false`.
const NO_METRICS: &str = "sixboot, metrics off";

#[derive(Debug, Args)]
pub struct HttpBench {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    duration: u32,
    /// Connections per wrk run.
    #[arg(long, default_value_t = 100)]
    connections: u32,
    /// Workers for each server (nginx worker_processes, sixboot HTTP worker threads).
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Rounds; each runs every test against every server, rotating which goes
    /// first. The table shows the median round.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    #[command(flatten)]
    common: Common,
}

/// One run of this bench: what `--json` prints and README's table is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: Run,
    /// Seconds per wrk run, connections, workers per server, rounds (median shown).
    pub duration_secs: u32,
    pub connections: u32,
    pub workers: u32,
    pub rounds: u32,
    /// The rendered per-host script's size (nginx serves the same bytes from a file).
    pub script_bytes: usize,
    pub rows: Vec<Row>,
}

/// One test against one server: the median over the rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `10 MiB file`, `script, full speed` or `script, ~5,000 req/s`.
    pub test: String,
    /// `sixboot`, `sixboot, metrics off` or `nginx`.
    pub server: String,
    #[serde(flatten)]
    pub result: WrkResult,
}

/// One wrk result.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub bytes_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Non-2xx answers and socket errors, summed over the rounds.
    pub errors: u64,
    /// Server CPU time (user + system, all threads and worker processes) per request.
    pub cpu_us_per_request: f64,
}

/// A server we started; stopped (SIGTERM by its pid, then wait) when dropped.
pub(super) struct Running {
    pub(super) name: &'static str,
    pub(super) child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HttpBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let packages = [deps::SERVER_BUILD, &["wrk", "nginx-light"]].concat();
        deps::ensure(sh, &packages, self.common.no_install)?;
        cmd!(sh, "cargo build --quiet --release --example http_serve").run()?;
        let server_bin = crate::project_root().join("target/release/examples/http_serve");

        let dir = std::env::temp_dir().join(format!("sbh-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("files/ipxe"))?;
        let _cleanup = RemoveDir(dir.clone());
        let big: Vec<u8> = (0..BIG_FILE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.join("files/big.bin"), &big)?;

        let sixboot_port = free_port()?;
        let no_metrics_port = free_port()?;
        let nginx_port = free_port()?;
        let sixboot_config = |port: u16, state: &str, monitor: &str| {
            format!(
                "[server]\nstate_dir = \"{state}\"\n\n[http]\nlisten = [\"127.0.0.1:{port}\"]\n\
                 base_url = \"http://[2001:db8:1::1]\"\nfiles_root = \"files\"\n\n{monitor}\
                 [[hosts]]\nmac = \"{MAC}\"\nname = \"node1\"\naddress = \"2001:db8:1::10\"\n\
                 install = true\n[hosts.vars]\nkernel_args = \"console=ttyS0\"\n"
            )
        };
        let config_path = dir.join("boot.toml");
        std::fs::write(&config_path, sixboot_config(sixboot_port, "state", ""))?;
        let no_metrics_config = dir.join("boot-no-metrics.toml");
        std::fs::write(
            &no_metrics_config,
            sixboot_config(
                no_metrics_port,
                "state-no-metrics",
                "[monitor]\nmetrics = false\n\n",
            ),
        )?;
        // nginx serves the very bytes sixboot renders, as a static file.
        let config = sixboot::config::Config::load(&config_path)?;
        let templates = sixboot::installer::Catalog::load(&config)?;
        let script = templates.script(&config.hosts[0])?;
        std::fs::write(dir.join(format!("files/ipxe/ipxe-{MAC}.cfg")), &script)?;
        std::fs::write(
            dir.join("paced.lua"),
            "-- 100 connections x one request per 20 ms = about 5,000 requests/s\n\
             function delay()\n  return 20\nend\n",
        )?;

        eprintln!(
            "files: 10 MiB file, {}-byte script; wrk -t2 -c{} -d{}s --latency; {} worker(s) per server",
            script.len(),
            self.connections,
            self.duration,
            self.workers
        );
        let workers = self.workers.to_string();
        let start_sixboot = |name: &'static str, config: &Path| -> Result<Running> {
            let child = std::process::Command::from(
                cmd!(sh, "{server_bin} {config}")
                    .env("RUST_LOG", "warn")
                    .env("SIXBOOT_HTTP_WORKERS", &workers),
            )
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the sixboot HTTP server ({name})"))?;
            Ok(Running { name, child })
        };
        let sixboot = start_sixboot("sixboot", &config_path)?;
        let no_metrics = start_sixboot(NO_METRICS, &no_metrics_config)?;
        let nginx = start_nginx(sh, &dir, nginx_port, self.workers)?;
        let ten_secs = Duration::from_secs(10);
        wait_for_port(sixboot_port, ten_secs)?;
        wait_for_port(no_metrics_port, ten_secs)?;
        wait_for_port(nginx_port, ten_secs)?;
        let servers = [
            (
                "sixboot",
                format!("http://127.0.0.1:{sixboot_port}"),
                sixboot.child.id(),
            ),
            (
                NO_METRICS,
                format!("http://127.0.0.1:{no_metrics_port}"),
                no_metrics.child.id(),
            ),
            (
                "nginx",
                format!("http://127.0.0.1:{nginx_port}"),
                nginx.child.id(),
            ),
        ];
        for (name, base, _) in &servers {
            // Each must answer the script with 200 before anything is measured.
            let probe = cmd!(sh, "wrk -t1 -c1 -d1s {base}{SCRIPT_PATH}")
                .quiet()
                .read()?;
            if parse_wrk(&probe)?.errors > 0 {
                bail!("{name} does not answer {SCRIPT_PATH} with 200:\n{probe}");
            }
        }
        // The two sixboot runs differ in their metrics only: check that they do.
        for (port, want) in [(sixboot_port, 200), (no_metrics_port, 404)] {
            let (got, _) = get(port, "/metrics")?;
            if got != want {
                bail!("sixboot on port {port}: GET /metrics answered {got}, expected {want}");
            }
        }
        let mut run = Run::start();
        run.tools = report::tool_versions(sh, &[("nginx", &["-v"]), ("wrk", &["-v"])]);
        let ticks_per_sec: f64 = cmd!(sh, "getconf CLK_TCK").quiet().read()?.trim().parse()?;
        let mut results: Vec<(&'static str, &'static str, Vec<WrkResult>)> = Vec::new();
        for round in 0..self.rounds {
            for (test, path, paced) in TESTS {
                // Each round starts with another server, so that none always runs
                // first (or right after the same one).
                let mut order: Vec<&(&'static str, String, u32)> = servers.iter().collect();
                order.rotate_left(round as usize % servers.len());
                for (name, base, pid) in order {
                    eprintln!("round {}/{}: {name}: {test}", round + 1, self.rounds);
                    let url = format!("{base}{path}");
                    let before = cpu_ticks(*pid);
                    let mut result = self.wrk(sh, &url, paced.then_some(dir.join("paced.lua")))?;
                    let cpu_secs = (cpu_ticks(*pid) - before) as f64 / ticks_per_sec;
                    let n = result.requests_per_sec * f64::from(self.duration);
                    result.cpu_us_per_request = cpu_secs * 1e6 / n.max(1.0);
                    match results
                        .iter_mut()
                        .find(|(s, t, _)| s == name && **t == *test)
                    {
                        Some((_, _, list)) => list.push(result),
                        None => results.push((name, test, vec![result])),
                    }
                }
            }
        }
        drop(sixboot);
        drop(no_metrics);
        drop(nginx);
        run.finish();
        let report = Report {
            run,
            duration_secs: self.duration,
            connections: self.connections,
            workers: self.workers,
            rounds: self.rounds,
            script_bytes: script.len(),
            rows: results
                .into_iter()
                .map(|(server, test, list)| Row {
                    test: test.to_owned(),
                    server: server.to_owned(),
                    result: median(&list),
                })
                .collect(),
        };
        report::print(&report, self.common.json, render)
    }

    fn wrk(&self, sh: &Shell, url: &str, lua: Option<PathBuf>) -> Result<WrkResult> {
        let (c, d) = (self.connections.to_string(), format!("{}s", self.duration));
        let text = match lua {
            Some(lua) => cmd!(
                sh,
                "wrk -t2 -c{c} -d{d} --timeout 30s --latency -s {lua} {url}"
            )
            .quiet()
            .read()?,
            None => cmd!(sh, "wrk -t2 -c{c} -d{d} --timeout 30s --latency {url}")
                .quiet()
                .read()?,
        };
        parse_wrk(&text)
    }
}

/// (name, path, paced to about 5,000 requests/s)
const TESTS: [(&str, &str, bool); 3] = [
    ("10 MiB file", "/files/big.bin", false),
    ("script, full speed", SCRIPT_PATH, false),
    ("script, ~5,000 req/s", SCRIPT_PATH, true),
];

/// User + system CPU ticks of a process and its direct children (nginx's workers);
/// a process's own figure covers all its threads (sixboot's HTTP worker threads).
pub(super) fn cpu_ticks(pid: u32) -> u64 {
    let read = |stat: &str| -> Option<(u32, u64)> {
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ppid = fields.get(1)?.parse().ok()?;
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some((ppid, ticks))
    };
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(this) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((ppid, ticks)) = read(&stat) {
            if this == pid || ppid == pid {
                total += ticks;
            }
        }
    }
    total
}

/// The median of each figure across rounds; errors are summed.
fn median(list: &[WrkResult]) -> WrkResult {
    let mid = |f: fn(&WrkResult) -> f64| {
        let mut v: Vec<f64> = list.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    WrkResult {
        requests_per_sec: mid(|r| r.requests_per_sec),
        bytes_per_sec: mid(|r| r.bytes_per_sec),
        p50_ms: mid(|r| r.p50_ms),
        p90_ms: mid(|r| r.p90_ms),
        p99_ms: mid(|r| r.p99_ms),
        errors: list.iter().map(|r| r.errors).sum(),
        cpu_us_per_request: mid(|r| r.cpu_us_per_request),
    }
}

pub(super) struct RemoveDir(pub(super) PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn nginx_config(dir: &Path, port: u16, workers: u32) -> String {
    let d = dir.display();
    format!(
        "worker_processes {workers};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 sendfile on;\n\
         \x20 tcp_nopush on;\n\
         \x20 sendfile_max_chunk 1m;\n\
         \x20 keepalive_requests 1000000;\n\
         \x20 default_type application/octet-stream;\n\
         \x20 client_body_temp_path {d}/tmp;\n\
         \x20 proxy_temp_path {d}/tmp;\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port};\n\
         \x20   root {d}/files;\n\
         \x20   location /files/ {{ alias {d}/files/; }}\n\
         \x20 }}\n\
         }}\n"
    )
}

pub(super) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET path` on 127.0.0.1:`port`: the status code and the body (the server closes the
/// connection after it).
pub(super) fn get(port: u16, path: &str) -> Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("GET {path}: no end of the response head"))?;
    let code = std::str::from_utf8(reply.get(9..12).unwrap_or_default())?
        .parse()
        .with_context(|| format!("GET {path}: not an HTTP status line"))?;
    Ok((code, reply[split + 4..].to_vec()))
}

/// Waits until something accepts on 127.0.0.1:`port`, at most `limit`.
pub(super) fn wait_for_port(port: u16, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {limit:?}")
}

/// nginx in the foreground with [`nginx_config`] (`dir/files` as its root), on
/// 127.0.0.1:`port`; stopped when the `Running` is dropped.
pub(super) fn start_nginx(sh: &Shell, dir: &Path, port: u16, workers: u32) -> Result<Running> {
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_config(dir, port, workers))?;
    let prefix = dir.display().to_string();
    let child =
        std::process::Command::from(cmd!(sh, "nginx -p {prefix} -c {conf} -g 'daemon off;'"))
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start nginx")?;
    Ok(Running {
        name: "nginx",
        child,
    })
}

/// Reads wrk's report: requests/s, bytes read, the latency distribution, errors.
pub(super) fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut result = WrkResult::default();
    let mut seconds = 0.0;
    let mut bytes = 0.0;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(n)) => result.requests_per_sec = n.parse()?,
            (Some("50%"), Some(t)) => result.p50_ms = millis(t)?,
            (Some("90%"), Some(t)) => result.p90_ms = millis(t)?,
            (Some("99%"), Some(t)) => result.p99_ms = millis(t)?,
            (Some("Non-2xx"), _) => {
                result.errors += line.rsplit(' ').next().unwrap_or("0").parse::<u64>()?;
            }
            (Some("Socket"), Some("errors:")) => {
                for part in line.split(',') {
                    if let Some(n) = part.split_whitespace().last() {
                        result.errors += n.parse::<u64>().unwrap_or(0);
                    }
                }
            }
            (Some(_), Some("requests")) => {
                // "2281 requests in 10.01s, 22.30GB read"
                let rest: Vec<&str> = line.split_whitespace().collect();
                if rest.len() >= 5 {
                    seconds = duration_secs(rest[3].trim_end_matches(','))?;
                    bytes = size_bytes(rest[4])?;
                }
            }
            _ => {}
        }
    }
    if result.requests_per_sec == 0.0 {
        bail!("cannot read wrk's report:\n{text}");
    }
    if seconds > 0.0 {
        result.bytes_per_sec = bytes / seconds;
    }
    Ok(result)
}

fn millis(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in `{text}`"))?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse()?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => bail!("unknown time unit in `{text}`"),
    })
}

fn duration_secs(text: &str) -> Result<f64> {
    Ok(millis(text)? / 1000.0)
}

fn size_bytes(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in `{text}`"))?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse()?;
    let scale = match unit {
        "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => bail!("unknown size unit in `{text}`"),
    };
    Ok(n * scale)
}

/// The table (what the bench prints and README shows), the goals, and the run.
pub fn render(report: &Report) -> String {
    let mut table = Table::new(&[
        ("test", false),
        ("server", false),
        ("req/s", true),
        ("throughput", true),
        ("p50 ms", true),
        ("p90 ms", true),
        ("p99 ms", true),
        ("server CPU/req", true),
        ("errors", true),
    ]);
    for row in &report.rows {
        let r = &row.result;
        let throughput = if row.test.contains("file") {
            format!("{:.2} GB/s", r.bytes_per_sec / 1e9)
        } else {
            String::new()
        };
        table.row(vec![
            row.test.clone(),
            row.server.clone(),
            thousands(r.requests_per_sec),
            throughput,
            format!("{:.2}", r.p50_ms),
            format!("{:.2}", r.p90_ms),
            format!("{:.2}", r.p99_ms),
            format!("{:.1} us", r.cpu_us_per_request),
            r.errors.to_string(),
        ]);
    }
    let intro = format!(
        "wrk -t2 -c{} -d{}s --latency, {} round(s) rotating which server goes first \
         (median shown), {} worker(s) per server, {}-byte script (one host's: sixboot \
         renders it on the first fetch, then serves it from the host's cache):",
        report.connections,
        report.duration_secs,
        report.rounds,
        report.workers,
        report.script_bytes
    );
    report::document(&intro, &table, &headlines(report), &report.run)
}

/// The results against the goals: file throughput >= 0.95x nginx's, script p99 < 1 ms at
/// about 5,000 requests/s.
pub fn headlines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let find = |server: &str, test: &str| {
        report
            .rows
            .iter()
            .find(|r| r.server == server && r.test == test)
            .map(|r| &r.result)
    };
    if let (Some(ours), Some(theirs)) =
        (find("sixboot", "10 MiB file"), find("nginx", "10 MiB file"))
    {
        let ratio = ours.bytes_per_sec / theirs.bytes_per_sec;
        lines.push(format!(
            "HTTP 10 MiB file: sixboot {:.2} GB/s = {ratio:.2}x nginx's {:.2} GB/s (goal >= 0.95x): {}",
            ours.bytes_per_sec / 1e9,
            theirs.bytes_per_sec / 1e9,
            met(ratio >= 0.95)
        ));
    }
    if let Some(paced) = find("sixboot", "script, ~5,000 req/s") {
        let nginx = find("nginx", "script, ~5,000 req/s")
            .map(|n| format!(" (nginx {:.2} ms)", n.p99_ms))
            .unwrap_or_default();
        lines.push(format!(
            "HTTP per-host script at {} req/s: sixboot p99 {:.2} ms{nginx} (goal < 1 ms): {}",
            thousands(paced.requests_per_sec),
            paced.p99_ms,
            met(paced.p99_ms < 1.0)
        ));
    }
    for test in ["script, full speed", "10 MiB file"] {
        if let (Some(on), Some(off)) = (find("sixboot", test), find(NO_METRICS, test)) {
            let ratio = on.requests_per_sec / off.requests_per_sec;
            lines.push(format!(
                "HTTP {test}, metrics on vs off: {} vs {} req/s = {ratio:.2}x, server CPU {:.1} vs {:.1} us/req (goal >= 0.97x): {}",
                thousands(on.requests_per_sec),
                thousands(off.requests_per_sec),
                on.cpu_us_per_request,
                off.cpu_us_per_request,
                met(ratio >= 0.97)
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_wrk_report() {
        let text = "Running 10s test @ http://127.0.0.1:1/big.bin\n  2 threads and 100 connections\n\
            \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
            \x20   Latency   433.02ms   10.00ms   1.00s    90.00%\n\
            \x20 Latency Distribution\n     50%  420.00ms\n     75%  500.00ms\n     90%  600.10ms\n     99%    1.20s\n\
            \x20 2281 requests in 10.00s, 22.30GB read\n\
            \x20 Socket errors: connect 0, read 2, write 0, timeout 3\n\
            \x20 Non-2xx or 3xx responses: 4\n\
            Requests/sec:    228.10\nTransfer/sec:      2.23GB\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests_per_sec, 228.10);
        assert_eq!(r.p50_ms, 420.0);
        assert_eq!(r.p99_ms, 1200.0);
        assert_eq!(r.errors, 9);
        assert!((r.bytes_per_sec - 22.30 * 1024.0 * 1024.0 * 1024.0 / 10.0).abs() < 1.0);
        assert_eq!(millis("51.00us").unwrap(), 0.051);
    }
}

//! `cargo xtask bench tftp`: sixboot's TFTP server against dnsmasq's, same files, same
//! clients, same run.
//!
//! Both servers run on the loopback of a network namespace of our own (`sbt-bench`),
//! so dnsmasq can have port 69 without touching the machine's. The clients are Debian's
//! curl (blksize 512 and 1468, as firmware asks) and atftp (windowsize 8, RFC 7440,
//! which dnsmasq ignores). Files: a real `ipxe.efi` when Debian's `ipxe` package is
//! installed (about 0.85 MB; else 1 MB of pseudo-random bytes) and 10 MB. Every
//! measurement alternates the servers, runs `--runs` times and reports the median;
//! every downloaded file is compared with the original. The server CPU time comes from
//! `/proc/PID/stat`, peak memory from `VmHWM`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use sixboot_lab::netns::Namespace;
use xshell::{cmd, Shell};

use super::report::{self, Common, Run, Table};
use crate::deps;

/// Our namespace; the `sbt` prefix keeps it apart from other helpers' namespaces.
const NETNS: &str = "sbt-bench";
const SIXBOOT_PORT: u16 = 6969;
const DNSMASQ_PORT: u16 = 69;
const IPXE_EFI: &str = "/usr/lib/ipxe/ipxe.efi";

#[derive(Debug, Args)]
pub struct TftpBench {
    /// Transfers per measurement and server; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Clients at once in the concurrency rows.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    #[command(flatten)]
    common: Common,
}

/// One run of this bench: what `--json` prints and README's table is rendered from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub run: Run,
    /// Transfers per measurement and server (the median is shown); clients in the storm rows.
    pub runs: usize,
    pub clients: usize,
    /// What `ipxe.efi` was: Debian's file, or pseudo-random bytes; and its size.
    pub ipxe_efi: String,
    pub ipxe_efi_bytes: u64,
    pub rows: Vec<Row>,
    /// Peak resident memory (`VmHWM`) at the end, KiB.
    pub peak_rss_kib: Sides<u64>,
}

/// One figure for each server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sides<T> {
    pub sixboot: T,
    pub dnsmasq: T,
}

/// One file fetched by one client configuration from each server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The file (`ipxe.efi`, `10M.img`, or `ipxe.efi x20` for that many clients at once).
    pub what: String,
    pub client: String,
    pub block_size: u16,
    pub window_size: u16,
    pub sixboot: Side,
    pub dnsmasq: Side,
}

/// One server's result for a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// Median wall time of the transfer (all transfers, in the storm rows).
    pub seconds: f64,
    /// Megabytes (10^6 bytes) per second over that time.
    pub mb_per_sec: f64,
    /// Server CPU milliseconds per measurement (user + system).
    pub cpu_ms: f64,
}

/// A network namespace with its loopback up and the processes started in it; all
/// removed in `Drop`.
struct Netns {
    children: Vec<Child>,
    /// Removed after the children are killed (fields drop after `Drop::drop`).
    _namespace: Namespace,
}

impl Netns {
    fn create() -> Result<Netns> {
        let namespace = Namespace::create(NETNS)
            .context("cannot create a network namespace; run the benchmark as root")?;
        Ok(Netns {
            children: Vec::new(),
            _namespace: namespace,
        })
    }

    /// Starts a long-running process in the namespace; returns its PID (`ip netns exec`
    /// execs the program, so the PID is the server's own).
    fn spawn(&mut self, mut command: Command, log: &Path) -> Result<u32> {
        let log_file = std::fs::File::create(log)?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Server {
    name: &'static str,
    port: u16,
    pid: u32,
}

/// One benchmark file.
struct Payload {
    name: &'static str,
    path: PathBuf,
    size: u64,
}

/// What one client run does.
#[derive(Clone, Copy)]
enum Client {
    Curl { block_size: u16 },
    Atftp { block_size: u16, window_size: u16 },
}

impl Client {
    fn describe(&self) -> (String, u16, u16) {
        match *self {
            Client::Curl { block_size } => ("curl".into(), block_size, 1),
            Client::Atftp {
                block_size,
                window_size,
            } => ("atftp".into(), block_size, window_size),
        }
    }

    /// The command that fetches `file` from the server at `[::1]:port` into `out`.
    fn command(&self, sh: &Shell, port: u16, file: &str, out: &Path) -> Command {
        let port = port.to_string();
        match *self {
            Client::Curl { block_size } => {
                let url = format!("tftp://[::1]:{port}/{file}");
                let block_size = block_size.to_string();
                cmd!(
                    sh,
                    "ip netns exec {NETNS} curl --silent --show-error --max-time 300 --tftp-blksize {block_size} -o {out} {url}"
                )
                .into()
            }
            Client::Atftp {
                block_size,
                window_size,
            } => {
                let blksize = format!("blksize {block_size}");
                let windowsize = format!("windowsize {window_size}");
                cmd!(
                    sh,
                    "ip netns exec {NETNS} timeout 300 atftp --option {blksize} --option {windowsize} -g -r {file} -l {out} ::1 {port}"
                )
                .into()
            }
        }
    }
}

/// CPU time (user + system) of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("server process {pid} is gone"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/PID/stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `after` starts at field 3.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmHWM")?
        .parse()?)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn check_same(got: &Path, want: &Path) -> Result<()> {
    let got_bytes =
        std::fs::read(got).with_context(|| format!("no download at {}", got.display()))?;
    let want_bytes = std::fs::read(want)?;
    ensure!(
        got_bytes == want_bytes,
        "{} differs from {} ({} vs {} bytes)",
        got.display(),
        want.display(),
        got_bytes.len(),
        want_bytes.len()
    );
    Ok(())
}

/// Runs `command`, failing with its stderr when it fails; returns seconds taken.
fn timed(mut command: Command) -> Result<f64> {
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    let secs = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(secs)
}

/// Deterministic bytes that do not compress, so no layer can shortcut them.
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

impl TftpBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        ensure!(
            self.runs > 0 && self.clients > 0,
            "--runs and --clients must be at least 1"
        );
        deps::ensure(
            sh,
            &[
                deps::SERVER_BUILD,
                &["iproute2", "dnsmasq-base", "curl", "atftp"],
            ]
            .concat(),
            self.common.no_install,
        )?;
        cmd!(sh, "cargo build --release --quiet --bin sixboot")
            .run()
            .context("cannot build sixboot")?;
        let sixboot = crate::project_root().join("target/release/sixboot");
        let clock_ticks: f64 = cmd!(sh, "getconf CLK_TCK").read()?.trim().parse()?;
        let mut run = Run::start();
        run.tools = report::tool_versions(
            sh,
            &[
                ("dnsmasq", &["--version"]),
                ("curl", &["--version"]),
                ("atftp", &["--version"]),
            ],
        );

        let work = sh.create_temp_dir()?;
        let root = work.path().join("root");
        let out = work.path().join("out");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&out)?;
        let ipxe_source = std::fs::canonicalize(IPXE_EFI).ok();
        let ipxe_bytes = match &ipxe_source {
            Some(path) => std::fs::read(path)?,
            None => pattern(1 << 20),
        };
        let payloads = [("ipxe.efi", ipxe_bytes), ("10M.img", pattern(10_000_000))]
            .into_iter()
            .map(|(name, bytes)| -> Result<Payload> {
                let path = root.join(name);
                std::fs::write(&path, &bytes)?;
                Ok(Payload {
                    name,
                    path,
                    size: bytes.len() as u64,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let mut netns = Netns::create()?;
        let config = work.path().join("sixboot.toml");
        std::fs::write(
            &config,
            format!(
                "[tftp]\nroot = \"{}\"\nlisten = [\"[::1]:{SIXBOOT_PORT}\"]\nmax_block_size = 1468\nmax_window_size = 16\nmax_transfers = 256\n",
                root.display()
            ),
        )?;
        let sixboot_pid = netns.spawn(
            cmd!(sh, "ip netns exec {NETNS} {sixboot} tftp --config {config}")
                .env("RUST_LOG", "warn")
                .into(),
            &work.path().join("sixboot.log"),
        )?;
        let tftp_root = format!("--tftp-root={}", root.display());
        let dnsmasq_pid = netns.spawn(
            cmd!(
                sh,
                "ip netns exec {NETNS} dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --enable-tftp {tftp_root} --listen-address=::1 --bind-interfaces --user=root --group=root --pid-file= --log-facility=- --quiet-tftp --tftp-max=256"
            )
            .into(),
            &work.path().join("dnsmasq.log"),
        )?;
        let servers = [
            Server {
                name: "sixboot",
                port: SIXBOOT_PORT,
                pid: sixboot_pid,
            },
            Server {
                name: "dnsmasq",
                port: DNSMASQ_PORT,
                pid: dnsmasq_pid,
            },
        ];
        // Wait until both answer.
        for server in &servers {
            let probe = out.join("probe");
            let started = Instant::now();
            loop {
                let client = Client::Curl { block_size: 512 };
                if timed(client.command(sh, server.port, "ipxe.efi", &probe)).is_ok() {
                    break;
                }
                if started.elapsed().as_secs() > 10 {
                    let log =
                        std::fs::read_to_string(work.path().join(format!("{}.log", server.name)))
                            .unwrap_or_default();
                    bail!("{} did not start serving within 10 s:\n{log}", server.name);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }

        let clients = [
            Client::Curl { block_size: 512 },
            Client::Curl { block_size: 1468 },
            Client::Atftp {
                block_size: 1468,
                window_size: 8,
            },
        ];
        let mut rows = Vec::new();
        for payload in &payloads {
            for client in clients {
                let (client_name, block_size, window_size) = client.describe();
                eprintln!(
                    "measuring {} ({} bytes) with {client_name}, blksize {block_size}, windowsize {window_size}",
                    payload.name, payload.size
                );
                let mut times = vec![Vec::new(); servers.len()];
                let mut ticks = vec![0u64; servers.len()];
                for run in 0..self.runs {
                    for (i, server) in servers.iter().enumerate() {
                        let got = out.join(format!("{}-{}", server.name, payload.name));
                        let _ = std::fs::remove_file(&got);
                        let before = cpu_ticks(server.pid)?;
                        times[i].push(timed(client.command(sh, server.port, payload.name, &got))?);
                        ticks[i] += cpu_ticks(server.pid)? - before;
                        if run == 0 {
                            check_same(&got, &payload.path)
                                .with_context(|| format!("{} served a wrong file", server.name))?;
                        }
                    }
                }
                let [sixboot, dnsmasq] = [0, 1].map(|i| {
                    let seconds = median(&mut times[i]);
                    Side {
                        seconds,
                        mb_per_sec: payload.size as f64 / 1e6 / seconds,
                        cpu_ms: ticks[i] as f64 / clock_ticks * 1000.0 / self.runs as f64,
                    }
                });
                rows.push(Row {
                    what: payload.name.into(),
                    client: client_name,
                    block_size,
                    window_size,
                    sixboot,
                    dnsmasq,
                });
            }
        }

        // Many clients at once: the ipxe.efi boot storm.
        let payload = &payloads[0];
        for block_size in [512u16, 1468] {
            eprintln!(
                "measuring {} clients at once fetching {} with blksize {block_size}",
                self.clients, payload.name
            );
            let client = Client::Curl { block_size };
            let mut times = vec![Vec::new(); servers.len()];
            let mut ticks = vec![0u64; servers.len()];
            for _ in 0..self.runs {
                for (i, server) in servers.iter().enumerate() {
                    let before = cpu_ticks(server.pid)?;
                    let started = Instant::now();
                    let mut children = Vec::new();
                    for c in 0..self.clients {
                        let got = out.join(format!("{}-storm-{c}", server.name));
                        let mut command = client.command(sh, server.port, payload.name, &got);
                        command.stdin(Stdio::null()).stdout(Stdio::null());
                        children.push((command.spawn()?, got));
                    }
                    for (mut child, got) in children {
                        let status = child.wait()?;
                        ensure!(
                            status.success(),
                            "{} storm client failed: {status}",
                            server.name
                        );
                        check_same(&got, &payload.path)?;
                    }
                    times[i].push(started.elapsed().as_secs_f64());
                    ticks[i] += cpu_ticks(server.pid)? - before;
                }
            }
            let total_mb = payload.size as f64 * self.clients as f64 / 1e6;
            let [sixboot, dnsmasq] = [0, 1].map(|i| {
                let seconds = median(&mut times[i]);
                Side {
                    seconds,
                    mb_per_sec: total_mb / seconds,
                    cpu_ms: ticks[i] as f64 / clock_ticks * 1000.0 / self.runs as f64,
                }
            });
            rows.push(Row {
                what: format!("{} x{}", payload.name, self.clients),
                client: "curl".into(),
                block_size,
                window_size: 1,
                sixboot,
                dnsmasq,
            });
        }

        run.finish();
        let report = Report {
            run,
            runs: self.runs,
            clients: self.clients,
            ipxe_efi: ipxe_source
                .as_ref()
                .map_or("1 MiB of pseudo-random bytes".to_string(), |p| {
                    p.display().to_string()
                }),
            ipxe_efi_bytes: payloads[0].size,
            rows,
            peak_rss_kib: Sides {
                sixboot: peak_rss_kib(servers[0].pid)?,
                dnsmasq: peak_rss_kib(servers[1].pid)?,
            },
        };
        report::print(&report, self.common.json, render)
    }
}

/// The table (what the bench prints and README shows), memory, and the run.
pub fn render(report: &Report) -> String {
    let mut table = Table::new(&[
        ("file", false),
        ("client", false),
        ("blksize", true),
        ("windowsize", true),
        ("sixboot ms", true),
        ("dnsmasq ms", true),
        ("sixboot MB/s", true),
        ("dnsmasq MB/s", true),
        ("sixboot/dnsmasq speed", true),
        ("server CPU ms sixboot / dnsmasq", true),
    ]);
    for row in &report.rows {
        let (s, d) = (row.sixboot, row.dnsmasq);
        table.row(vec![
            row.what.clone(),
            row.client.clone(),
            row.block_size.to_string(),
            row.window_size.to_string(),
            format!("{:.1}", s.seconds * 1000.0),
            format!("{:.1}", d.seconds * 1000.0),
            format!("{:.1}", s.mb_per_sec),
            format!("{:.1}", d.mb_per_sec),
            format!("{:.2}x", d.seconds / s.seconds),
            format!("{:.0} / {:.0}", s.cpu_ms, d.cpu_ms),
        ]);
    }
    let intro = format!(
        "TFTP over [::1] in netns {NETNS}, median of {} transfers per row; ipxe.efi = {} ({} \
         bytes); \"x{}\" rows: that many clients at once:",
        report.runs, report.ipxe_efi, report.ipxe_efi_bytes, report.clients
    );
    let mut bullets = headlines(report);
    bullets.push(format!(
        "Peak RSS: sixboot {} KiB, dnsmasq {} KiB. dnsmasq does not implement windowsize \
         (RFC 7440): the atftp rows run at window 1 there.",
        report.peak_rss_kib.sixboot, report.peak_rss_kib.dnsmasq
    ));
    report::document(&intro, &table, &bullets, &report.run)
}

/// The 10 MB transfer with the largest window, and the boot storm at blksize 1468.
pub fn headlines(report: &Report) -> Vec<String> {
    let big = report
        .rows
        .iter()
        .filter(|r| r.what == "10M.img")
        .max_by_key(|r| (r.window_size, r.block_size));
    let storm = report
        .rows
        .iter()
        .filter(|r| r.what.contains(" x"))
        .max_by_key(|r| r.block_size);
    big.into_iter()
        .chain(storm)
        .map(|r| {
            format!(
                "TFTP {}, {} blksize {} windowsize {}: sixboot {:.1} MB/s, dnsmasq {:.1} MB/s \
                 ({:.2}x)",
                r.what,
                r.client,
                r.block_size,
                r.window_size,
                r.sixboot.mb_per_sec,
                r.dnsmasq.mb_per_sec,
                r.dnsmasq.seconds / r.sixboot.seconds
            )
        })
        .collect()
}

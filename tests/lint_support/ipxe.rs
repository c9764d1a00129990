//! Real iPXE for the differential test: built from `IPXE_SRC` for iPXE's Linux userspace
//! platform (`bin-x86_64-linux/tap.linux`), with every corpus script embedded next to a
//! driver script, and run as a process per script on a tap inside a namespace.
//!
//! Why this platform: it is iPXE's own code (the same `script.c`, `exec.c`, `settings.c`,
//! `uri.c`, `ipv6.c`, `tcp.c`, `http.c`, `dns.c`, `tftp.c` as in our ROMs; only the console,
//! timer and NIC driver are the Linux ones), built from the pinned source; a run takes tens
//! of milliseconds where a QEMU boot takes seconds, and one build serves every script.
//!
//! The build tree lives under `target/tmp/lint-ipxe/<key>/`: a `git archive` export of the
//! source (never the user's tree) plus `tests/lint_ipxe_build/general.h` as `config/local`, keyed
//! by source commit, header and make flags, so only the first run compiles iPXE; later runs
//! relink `embedded.o` when the corpus changes.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sixboot_lab::netns::Namespace;

use super::servers::{Event, Servers};
use super::Verdict;

/// The build's `config/local/general.h`: IPv6 and every command (so "command not found"
/// means no build has it), every download protocol the corpus uses.
pub const GENERAL_H: &str = include_str!("../lint_ipxe_build/general.h");
/// The driver: the corpus' network (as DHCP would set it), then `imgexec ${lintscript}`.
pub const DRIVER: &str = include_str!("../lint_ipxe_build/driver.ipxe");
/// The driver's name inside iPXE (embedded images are named by file name).
pub const DRIVER_NAME: &str = "lint-driver.ipxe";
/// The one target built.
pub const TARGET: &str = "bin-x86_64-linux/tap.linux";
/// The source directories compiled: what the Linux platform links, without the ~600
/// files of NIC, Wi-Fi, InfiniBand and self-test code it never uses. A needed one left
/// out fails the link, it cannot change the binary.
pub const SRCDIRS: &str = "libgcc core net net/tcp net/udp net/oncrpc image drivers/bus \
    drivers/block drivers/nvs drivers/bitbash drivers/uart hci hci/commands hci/tui \
    hci/mucurses hci/mucurses/widgets hci/keymap usr config crypto crypto/mishmash \
    interface/smbios drivers/linux drivers/net/linux interface/linux arch/x86/core \
    arch/x86/hci/commands arch/x86_64/core arch/x86/interface/efi arch/x86/image";

/// How long one build step or run may take before the test says so.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs a command to completion; the error carries its output.
fn run(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .map_err(|err| format!("cannot run {shown}: {err}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{shown} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The source's identity: the commit of a git tree (plus "dirty" when it has changes),
/// else a hash of every file name and size.
fn source_identity(src: &Path) -> String {
    let git = |args: &[&str]| run(Command::new("git").arg("-C").arg(src).args(args));
    if let Ok(commit) = git(&["rev-parse", "HEAD"]) {
        let dirty = git(&["status", "--porcelain", "--", "src"]).unwrap_or_default();
        return format!(
            "{} {}",
            commit.trim(),
            if dirty.trim().is_empty() { "" } else { "dirty" }
        );
    }
    let mut hasher = Sha256::new();
    let mut stack = vec![src.join("src")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(meta) = entry.metadata() {
                hasher.update(path.to_string_lossy().as_bytes());
                hasher.update(meta.len().to_le_bytes());
            }
        }
    }
    hex::encode(hasher.finalize())
}

/// Builds (or reuses) iPXE with the driver and `scripts` (name, bytes) embedded; returns
/// the binary. Holds a machine-wide lock while building.
pub fn build(src: &Path, scripts: &[(String, Vec<u8>)]) -> Result<PathBuf, String> {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lint-ipxe");
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let _lock = sixboot_lab::lock::lock("lint-ipxe-build").map_err(|e| e.to_string())?;
    let mut key = Sha256::new();
    for part in [
        source_identity(src).as_str(),
        GENERAL_H,
        SRCDIRS,
        TARGET,
        "NO_WERROR=1",
    ] {
        key.update(part.as_bytes());
        key.update([0]);
    }
    let tree = base.join(&hex::encode(key.finalize())[..16]);
    if !tree.join("src/Makefile").exists() {
        let partial = tree.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| e.to_string())?;
        if src.join(".git").exists() {
            let tar = partial.join("src.tar");
            run(Command::new("git")
                .arg("-C")
                .arg(src)
                .args(["archive", "--format=tar", "-o"])
                .arg(&tar)
                .args(["HEAD", "src"]))?;
            run(Command::new("tar")
                .arg("-xf")
                .arg(&tar)
                .arg("-C")
                .arg(&partial))?;
            std::fs::remove_file(&tar).map_err(|e| e.to_string())?;
        } else {
            run(Command::new("cp")
                .arg("-a")
                .arg(src.join("src"))
                .arg(partial.join("src")))?;
        }
        let local = partial.join("src/config/local");
        std::fs::create_dir_all(&local).map_err(|e| e.to_string())?;
        std::fs::write(local.join("general.h"), GENERAL_H).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::rename(&partial, &tree).map_err(|e| e.to_string())?;
    }
    // Embedded files: rewritten only when they changed, so make relinks only then.
    let embed = tree.join("embed");
    std::fs::create_dir_all(&embed).map_err(|e| e.to_string())?;
    let mut list = Vec::new();
    for (name, bytes) in std::iter::once((DRIVER_NAME.to_owned(), DRIVER.as_bytes().to_vec()))
        .chain(scripts.iter().cloned())
    {
        let path = embed.join(&name);
        if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&path, &bytes).map_err(|e| e.to_string())?;
        }
        list.push(path.to_string_lossy().into_owned());
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    run(Command::new("make")
        .arg("-C")
        .arg(tree.join("src"))
        .arg(format!("-j{jobs}"))
        .arg(TARGET)
        .arg(format!("EMBED={}", list.join(",")))
        .arg("NO_WERROR=1")
        .arg(format!(
            "SRCDIRS={}",
            SRCDIRS.split_whitespace().collect::<Vec<_>>().join(" ")
        )))?;
    println!(
        "iPXE {TARGET} ready in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        tree.display()
    );
    Ok(tree.join("src").join(TARGET))
}

/// The namespace: a tap for iPXE, the addresses the corpus uses made local (AnyIP), and
/// the servers.
pub struct Lab {
    pub ns: Namespace,
    pub servers: Servers,
}

/// The tap iPXE's `net0` is.
pub const TAP: &str = "sbl-tap";

impl Lab {
    /// Sets up namespace `sbl-lint`; panics with the failing step.
    pub fn start() -> Lab {
        let ns = Namespace::create("sbl-lint").unwrap_or_else(|e| panic!("namespace: {e}"));
        let ip = |args: &[&str]| {
            ns.ip(args)
                .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")))
        };
        ip(&["tuntap", "add", "dev", TAP, "mode", "tap"]);
        ns.sysctl(&format!("net.ipv6.conf.{TAP}.accept_dad=0"))
            .unwrap_or_else(|e| panic!("{e}"));
        ip(&["link", "set", TAP, "up"]);
        // The router iPXE is configured with, and the link-local servers of the corpus
        // (iPXE's own test vector fe80::69ff:fe50:5845 among them).
        for address in ["3fff:5b::1/64", "fe80::1/64", "fe80::69ff:fe50:5845/64"] {
            ip(&["-6", "addr", "add", address, "dev", TAP, "nodad"]);
        }
        ip(&["addr", "add", "198.51.100.1/24", "dev", TAP]);
        // AnyIP: every address in these prefixes is this namespace's own, so the servers
        // bound to `[::]` answer iPXE whatever literal the script names.
        for prefix in ["2001:db8::/32", "2001:ba8:0:1d4::6950:5845/128"] {
            ip(&["-6", "route", "add", "local", prefix, "dev", "lo"]);
        }
        for prefix in ["192.0.2.0/24", "192.168.0.0/16", "10.0.0.0/8"] {
            ip(&["route", "add", "local", prefix, "dev", "lo"]);
        }
        // TFTP answers from the address it was asked at: bind to AnyIP addresses.
        for setting in ["net.ipv6.ip_nonlocal_bind=1", "net.ipv4.ip_nonlocal_bind=1"] {
            ns.sysctl(setting).unwrap_or_else(|e| panic!("{e}"));
        }
        let at = |s: &str| s.parse::<SocketAddr>().expect("address");
        let servers = Servers::start(
            &ns,
            &[80, 8080, 3001, 8001],
            &[at("[3fff:5b::1]:53"), at("198.51.100.1:53")],
            &[
                at("[2001:db8::1]:69"),
                at("192.0.2.10:69"),
                at("192.168.0.1:4069"),
                at("192.168.0.2:69"),
                at("192.168.0.3:69"),
                at("10.0.0.6:69"),
            ],
        );
        Lab { ns, servers }
    }

    /// Runs the embedded script `name` in iPXE, typing `keys`; stops at its verdict.
    pub fn run(&self, binary: &Path, name: &str, keys: &[u8]) -> IpxeRun {
        let started = Instant::now();
        let mut child = self
            .ns
            .command(&binary.to_string_lossy())
            .args(["--net", &format!("tap,if={TAP}")])
            .args(["--settings", &format!("lintscript={name}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut stdin = child.stdin.take().expect("stdin");
        // Keys wait in the pipe until iPXE reads them; the pipe stays open (at EOF iPXE's
        // console would read "keys" forever).
        let _ = stdin.write_all(keys);
        let _ = stdin.flush();
        let mut stdout = child.stdout.take().expect("stdout");
        let (chunks_tx, chunks_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || chunks_tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut transcript = Vec::new();
        let mut pending = Vec::new();
        let outcome = 'run: loop {
            let left = RUN_LIMIT.saturating_sub(started.elapsed());
            let ended = match chunks_rx.recv_timeout(left) {
                Ok(chunk) => {
                    pending.extend_from_slice(&chunk);
                    None
                }
                Err(mpsc::RecvTimeoutError::Timeout) => Some("timed out"),
                Err(mpsc::RecvTimeoutError::Disconnected) => Some("iPXE exited without a verdict"),
            };
            while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
                let line = clean(&pending[..newline]);
                pending.drain(..=newline);
                let outcome = outcome_of(&line);
                transcript.push(line);
                if let Some(outcome) = outcome {
                    break 'run outcome;
                }
            }
            if let Some(why) = ended {
                // What iPXE printed without a newline yet (a progress line) is shown too.
                if !pending.is_empty() {
                    transcript.push(clean(&pending));
                }
                break Outcome::NoVerdict(why);
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        drop(stdin);
        // The servers log a request after answering it; give the last one a moment.
        std::thread::sleep(Duration::from_millis(20));
        IpxeRun {
            outcome,
            transcript,
            events: self.servers.take_log(),
            elapsed: started.elapsed(),
        }
    }
}

/// Removes ANSI escape sequences and trailing white space.
fn clean(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out.trim_end().to_owned()
}

fn outcome_of(line: &str) -> Option<Outcome> {
    if line.starts_with("LINT-HANDOVER") {
        return Some(Outcome::HandedOver(line.to_owned()));
    }
    let rest = line.strip_prefix("LINT-RESULT ")?;
    Some(
        match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ok"] => Outcome::Finished,
            ["fail", errno] => Outcome::Failed(errno.to_string()),
            _ => Outcome::NoVerdict("the driver could not set up the network"),
        },
    )
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The script executed an image it fetched (`chain`, `boot`): where a real boot leaves
    /// the script.
    HandedOver(String),
    /// The script ran to its end and returned success.
    Finished,
    /// `imgexec` of the script failed with this `${errno}`.
    Failed(String),
    /// No verdict (a harness problem, reported as such).
    NoVerdict(&'static str),
}

/// One script's run in iPXE.
#[derive(Debug, Clone)]
pub struct IpxeRun {
    pub outcome: Outcome,
    /// iPXE's console, escapes removed.
    pub transcript: Vec<String>,
    /// What the servers saw.
    pub events: Vec<Event>,
    pub elapsed: Duration,
}

impl IpxeRun {
    /// iPXE's verdict, or `None` when the run gave none.
    pub fn verdict(&self) -> Option<Verdict> {
        match self.outcome {
            Outcome::HandedOver(_) | Outcome::Finished => Some(Verdict::Ok),
            Outcome::Failed(_) => Some(Verdict::Error),
            Outcome::NoVerdict(_) => None,
        }
    }

    /// Whether iPXE ran the image as a script (it failed with something other than
    /// `script_probe`'s "Exec format error" from `image_exec`, 0x2e008008).
    pub fn ran_as_script(&self) -> bool {
        self.outcome != Outcome::Failed("0x2e008008".into())
    }

    /// The line with iPXE's last error message (`… (https://ipxe.org/…)`), if any.
    pub fn error_line(&self) -> Option<&str> {
        self.transcript
            .iter()
            .rev()
            .find(|l| l.contains("https://ipxe.org/") && !l.starts_with("Could not boot"))
            .or_else(|| {
                self.transcript
                    .iter()
                    .rev()
                    .find(|l| l.contains("https://ipxe.org/"))
            })
            .map(String::as_str)
    }

    /// The transcript from the script's start.
    pub fn script_output(&self) -> String {
        let start = self
            .transcript
            .iter()
            .position(|l| l.starts_with("LINT-START"))
            .map_or(0, |i| i + 1);
        self.transcript[start..].join("\n")
    }
}

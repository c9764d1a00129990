//! Running the firmware's make (iPXE's and FlexBoot's are the same machinery): one call
//! per tree and `bin*` directory, its output logged to a file (or
//! streamed with `--verbose`), a progress line that shows what make is doing, and the
//! time at which each requested target was finished.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use xshell::{cmd, Shell};

/// One make invocation.
#[derive(Debug, Clone)]
pub struct MakeCall {
    /// iPXE's `src/` directory in the build tree.
    pub src_dir: PathBuf,
    /// Targets, relative to `src/`, all in one `bin*` directory.
    pub targets: Vec<String>,
    /// `VAR=value` arguments (the flavour's make variables).
    pub variables: Vec<String>,
    /// `-j`.
    pub jobs: usize,
    /// Where make's full output goes.
    pub log: PathBuf,
    /// Echo every line to the terminal.
    pub verbose: bool,
}

/// What a make call did.
#[derive(Debug, Clone)]
pub struct MakeReport {
    /// For each requested target, the time since the start when make reported it done
    /// (`[FINISH]`), if it did (a target that was already up to date is not reported).
    pub finished: Vec<(String, Option<Duration>)>,
    /// How many files make compiled (`[BUILD]` lines).
    pub n_compiled: usize,
    /// The objects it compiled, relative to `src/` (`bin/embedded.o`).
    pub compiled: Vec<String>,
}

/// Runs one make call, updating `bar` with the current step.
pub fn run(sh: &Shell, call: &MakeCall, bar: &ProgressBar) -> Result<MakeReport> {
    let src = &call.src_dir;
    let jobs = format!("-j{}", call.jobs);
    let targets = &call.targets;
    let variables = &call.variables;
    let mut command: std::process::Command =
        cmd!(sh, "make -C {src} {jobs} {targets...} {variables...}").into();
    // Keep git from finding sixboot's own repository above the build tree.
    command.env("GIT_CEILING_DIRECTORIES", src.parent().unwrap_or(src));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(parent) = call.log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut log = std::fs::File::create(&call.log)
        .with_context(|| format!("cannot create {}", call.log.display()))?;
    writeln!(
        log,
        "$ make -C {} {jobs} {} {}",
        src.display(),
        targets.join(" "),
        variables.join(" ")
    )?;

    let start = Instant::now();
    let mut child = command
        .spawn()
        .context("cannot run make (is it installed?)")?;
    // stderr goes through a thread into the same channel, so neither pipe can fill up
    // and block make.
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().context("make has no stderr")?;
    let stderr_sender = sender.clone();
    let stderr_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if stderr_sender.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().context("make has no stdout")?;
    let stdout_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });

    let mut finished: Vec<(String, Option<Duration>)> =
        targets.iter().map(|t| (t.clone(), None)).collect();
    let mut n_compiled = 0;
    let mut compiled = Vec::new();
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in receiver {
        writeln!(log, "{line}")?;
        if call.verbose {
            bar.suspend(|| eprintln!("{line}"));
        }
        let trimmed = line.trim_start();
        if let Some(object) = trimmed.strip_prefix("[BUILD]") {
            n_compiled += 1;
            compiled.push(object.trim().to_string());
        }
        if let Some(done) = trimmed.strip_prefix("[FINISH]") {
            let done = done.trim();
            if let Some(entry) = finished.iter_mut().find(|(t, _)| t == done) {
                entry.1 = Some(start.elapsed());
            }
        }
        if trimmed.starts_with('[') {
            bar.set_message(format!("{n_compiled} compiled; {trimmed}"));
        }
        tail.push_back(line);
        if tail.len() > 30 {
            tail.pop_front();
        }
    }
    let _ = stdout_thread.join();
    let _ = stderr_thread.join();
    let status = child.wait().context("make did not finish")?;
    if !status.success() {
        let tail: Vec<String> = tail.into_iter().collect();
        bail!(
            "make in {} failed ({status}); the last lines:\n{}\nfull log: {}",
            src.display(),
            tail.join("\n"),
            call.log.display()
        );
    }
    Ok(MakeReport {
        finished,
        n_compiled,
        compiled,
    })
}

/// Path of a make log in the work directory: `logs/make-<tree>-<bin dir>.log`.
pub fn log_path(work_dir: &Path, tree: &str, bin_dir: &str) -> PathBuf {
    work_dir
        .join("logs")
        .join(format!("make-{tree}-{bin_dir}.log"))
}

//! `cargo xtask bench build`: what build-rom costs over iPXE's own make.
//!
//! Both sides start from the same clean state: a fresh export of the pinned commit with
//! the same patches, config headers and script. The raw side is what a person would type
//! (`make bin/… EMBED=…`, one call per `bin*` directory); the build-rom side is the whole
//! command (export, patch, make, ELF checks, rom verify, pack, package) in its own work
//! directory. Three rows: cold, no-op rerun, and a change to the script only. Every row
//! is measured in this one run, so both sides see the same machine load (printed too),
//! and each row says how many objects each side's make compiled: the mechanism behind
//! the time (a script-only change should compile one object per `bin*` directory).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use xshell::{cmd, Shell};

use crate::firmware::flavor::{MakeInputs, IPXE};
use crate::firmware::inputs::{self, InputFile};
use crate::firmware::lock::Lock;
use crate::firmware::targets::{BinDir, Target};
use crate::firmware::{source, tree};

#[derive(Debug, Args)]
pub struct BuildBench {
    /// The iPXE source (as for build-rom).
    #[arg(long, env = "IPXE_SRC")]
    ipxe_src: PathBuf,
    /// Targets, comma-separated (default: cx3, cx4, qemu, the comparison).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Target::Cx3, Target::Cx4, Target::Qemu])]
    target: Vec<Target>,
    /// Parallel make jobs for both sides (default: all cores).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Print the result as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// One scenario, both sides.
#[derive(Debug, Serialize)]
struct Row {
    scenario: &'static str,
    raw_make_s: f64,
    build_rom_s: f64,
    ratio: f64,
    /// Objects raw make compiled, all `bin*` directories.
    raw_compiled: usize,
    /// Objects build-rom's make compiled (`N compiled` in its progress lines).
    build_rom_compiled: usize,
    /// Of build-rom's time, the seconds its make calls took (its progress lines); the rest
    /// is build-rom's own work (export, ELF checks, pack, package, process start).
    build_rom_make_s: f64,
}

/// The whole result, for `--json`.
#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    targets: String,
    jobs: usize,
    load_before: String,
    load_after: String,
    rows: Vec<Row>,
    goals: &'static str,
}

impl BuildBench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = crate::project_root();
        let bench_dir = root.join("target/bench-build");
        if bench_dir.exists() {
            std::fs::remove_dir_all(&bench_dir)
                .with_context(|| format!("cannot clean {}", bench_dir.display()))?;
        }
        std::fs::create_dir_all(&bench_dir)?;
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ipxe_src = std::env::current_dir()?.join(&self.ipxe_src);

        // The raw side's tree: exported, patched and configured exactly as build-rom does.
        let lock = Lock::load(&root.join(crate::firmware::lock::LOCK_PATH))?;
        let pin = &lock.ipxe;
        let src = source::resolve(sh, &IPXE, Some(&ipxe_src), &bench_dir, pin)?;
        let patch_dir = root.join(IPXE.patch_dir);
        let patches = inputs::read_patches(&patch_dir)?;
        let raw_tree = bench_dir.join("raw");
        tree::prepare(sh, &src, pin, IPXE.title, &patch_dir, &patches, &raw_tree)?;
        let raw_src = raw_tree.join("src");
        // The same config/local headers as build-rom writes (ours, plus iPXE's empty
        // defaults), so both sides compile the same thing; `.echocheck` made once.
        let headers = inputs::read_config_headers(&root.join(inputs::CONFIG_DIR))?;
        tree::write_local_config(&raw_src, &headers)?;
        // The raw side's `.echocheck` exists from the start, dated back, so raw make's later
        // runs are incremental (otherwise its no-op rebuilds the library). It is made as
        // its recipe makes it (`touch`), not with `make .echocheck`: that would also write
        // every dependency file outside the timing, which the bench used to do, and which
        // was most of the "extra cold 30 s" of build-rom in the table.
        std::fs::write(raw_src.join(".echocheck"), b"")?;
        tree::settle_timestamps(&raw_src, pin.epoch)?;
        let script = InputFile::read(&root.join(inputs::DEFAULT_SCRIPT), "script")?;
        let (embed_in_tree, embed_for_make) = IPXE.embed;
        tree::write_if_changed(&raw_tree.join(embed_in_tree), &script.bytes)?;
        let changed_script = bench_dir.join("changed.ipxe");
        let mut changed = script.bytes.clone();
        changed.extend_from_slice(b"# changed by cargo xtask bench build\n");
        std::fs::write(&changed_script, &changed)?;

        let mut targets = self.target.clone();
        targets.sort();
        targets.dedup();
        let outputs = IPXE.outputs(&targets, pin);
        let mut bin_dirs: Vec<BinDir> = outputs.iter().map(|o| o.bin_dir).collect();
        bin_dirs.sort();
        bin_dirs.dedup();
        let flags = outputs
            .first()
            .map(|o| o.tree.flags.clone())
            .unwrap_or_default();
        let raw_make = |sh: &Shell| -> Result<(Duration, usize)> {
            let start = Instant::now();
            let mut compiled = 0;
            for &bin_dir in &bin_dirs {
                let make_targets: Vec<String> = outputs
                    .iter()
                    .filter(|o| o.bin_dir == bin_dir)
                    .map(|o| o.make_target())
                    .collect();
                let vars = (IPXE.make_variables)(&MakeInputs {
                    pin,
                    flags: &flags,
                    embed: embed_for_make,
                    trust: None,
                    from_git: matches!(src, source::Source::Git { .. }),
                    build_id: "",
                    bin_dir,
                });
                let j = format!("-j{jobs}");
                let output = cmd!(sh, "make -C {raw_src} {j} {make_targets...} {vars...}")
                    .env("GIT_CEILING_DIRECTORIES", &raw_tree)
                    .quiet()
                    .ignore_status()
                    .output()
                    .context("cannot run make")?;
                if !output.status.success() {
                    anyhow::bail!(
                        "raw make failed:\n{}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                compiled += String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .filter(|line| line.trim_start().starts_with("[BUILD]"))
                    .count();
            }
            Ok((start.elapsed(), compiled))
        };
        // Run a copy of this binary, so rebuilding xtask during the benchmark cannot
        // swap the program under it.
        let exe = bench_dir.join("xtask");
        std::fs::copy(std::env::current_exe()?, &exe).context("cannot copy the xtask binary")?;
        let target_list = targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(",");
        let work = bench_dir.join("work");
        let out = bench_dir.join("dist");
        let build_rom = |sh: &Shell, embed: Option<&Path>| -> Result<(Duration, Progress)> {
            let j = jobs.to_string();
            let embed_args: Vec<String> = embed
                .map(|path| vec!["--embed".to_string(), path.display().to_string()])
                .unwrap_or_default();
            let start = Instant::now();
            let output = cmd!(
                sh,
                "{exe} build-rom --ipxe-src {ipxe_src} --target {target_list} -j {j} --work-dir {work} --out {out} {embed_args...}"
            )
            .quiet()
            .ignore_status()
            .output()
            .context("cannot run build-rom")?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() {
                anyhow::bail!("build-rom failed:\n{stderr}");
            }
            Ok((start.elapsed(), make_progress(&stderr)))
        };

        let load_before = load_average();
        eprintln!("bench build: targets {target_list}, -j{jobs}, load {load_before}");
        let mut rows = Vec::new();
        let mut row = |scenario,
                       (raw, raw_compiled): (Duration, usize),
                       (ours, progress): (Duration, Progress)| {
            rows.push(Row {
                scenario,
                raw_make_s: raw.as_secs_f64(),
                build_rom_s: ours.as_secs_f64(),
                ratio: ours.as_secs_f64() / raw.as_secs_f64().max(1e-9),
                raw_compiled,
                build_rom_compiled: progress.compiled,
                build_rom_make_s: progress.make_seconds,
            })
        };
        eprintln!("cold: raw make …");
        let raw = raw_make(sh)?;
        eprintln!("cold: build-rom …");
        let ours = build_rom(sh, None)?;
        row("cold", raw, ours);
        eprintln!("no-op …");
        let raw = raw_make(sh)?;
        let ours = build_rom(sh, None)?;
        row("no-op rerun", raw, ours);
        eprintln!("script-only change …");
        tree::write_if_changed(&raw_tree.join(embed_in_tree), &changed)?;
        let raw = raw_make(sh)?;
        let ours = build_rom(sh, Some(&changed_script))?;
        row("script-only change", raw, ours);
        let report = Report {
            bench: "build",
            targets: target_list,
            jobs,
            load_before,
            load_after: load_average(),
            rows,
            goals: "cold ratio <= 1.05; script-only change ratio <= 1.05; build-rom no-op < 1 s (a cache hit, no make)",
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        println!(
            "targets: {}; make -j{}; load average before {}, after {}",
            report.targets, report.jobs, report.load_before, report.load_after
        );
        println!(
            "{:<20} {:>10} {:>10} {:>8} {:>10} {:>10} {:>14}",
            "scenario", "raw make", "build-rom", "ratio", "raw objs", "ours objs", "ours in make"
        );
        for row in &report.rows {
            println!(
                "{:<20} {:>9.2}s {:>9.2}s {:>8.3} {:>10} {:>10} {:>13.2}s",
                row.scenario,
                row.raw_make_s,
                row.build_rom_s,
                row.ratio,
                row.raw_compiled,
                row.build_rom_compiled,
                row.build_rom_make_s
            );
        }
        println!("(goals: {})", report.goals);
        Ok(())
    }
}

/// What build-rom's make calls did, from its progress lines
/// (`✓ make bin 2.1s 1 compiled (bin/embedded.o); …`).
#[derive(Debug, Default, PartialEq)]
struct Progress {
    compiled: usize,
    make_seconds: f64,
}

fn make_progress(stderr: &str) -> Progress {
    let mut progress = Progress::default();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("✓ make ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let seconds = words
            .find_map(|word| word.strip_suffix('s')?.parse::<f64>().ok())
            .unwrap_or(0.0);
        let compiled = words
            .next()
            .and_then(|word| word.parse::<usize>().ok())
            .unwrap_or(0);
        progress.make_seconds += seconds;
        progress.compiled += compiled;
    }
    progress
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_objects_and_make_time_from_build_rom_progress_lines() {
        let stderr = "make bin: 6 targets\n✓ make bin 2.1s 1 compiled (bin/embedded.o); ipxe.lkrn 2.0s\n\
                      ✓ make bin-x86_64-efi 3.0s 1041 compiled; ipxe.efi 2.9s\n✓ verify 0.2s 3 targets\n";
        let progress = make_progress(stderr);
        assert_eq!(progress.compiled, 1042);
        assert!((progress.make_seconds - 5.1).abs() < 1e-9, "{progress:?}");
        assert_eq!(
            make_progress("✓ package 0.0s 20 files\n"),
            Progress::default()
        );
    }
}

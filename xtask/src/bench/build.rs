//! `cargo xtask bench build`: what build-rom costs over iPXE's own make.
//!
//! Both sides start from the same clean state: a fresh export of the pinned commit with
//! the same patches, config headers and script. The raw side is what a person would type
//! (`make bin/… EMBED=…`, one call per `bin*` directory); the build-rom side is the whole
//! command (export, patch, make, ELF checks, rom verify, pack, package) in its own work
//! directory. Three rows: cold, no-op rerun, and a change to the script only. Every row
//! is measured in this one run, so both sides see the same machine load (printed too).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use xshell::{cmd, Shell};

use crate::build_rom::inputs::{self, InputFile};
use crate::build_rom::lock::Lock;
use crate::build_rom::targets::{BinDir, Target};
use crate::build_rom::{make, source};

#[derive(Debug, Args)]
pub struct BuildBench {
    /// The iPXE source (as for build-rom).
    #[arg(long, env = "IPXE_SRC")]
    ipxe_src: PathBuf,
    /// Targets, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Target::ALL)]
    target: Vec<Target>,
    /// Parallel make jobs for both sides (default: all cores).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
}

struct Row {
    scenario: &'static str,
    raw: Duration,
    ours: Duration,
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
        let lock = Lock::load(&root.join(crate::build_rom::lock::LOCK_PATH))?;
        let pin = &lock.ipxe;
        let src = source::resolve(sh, Some(&ipxe_src), &bench_dir, pin)?;
        let patches = inputs::read_patches(&root.join(inputs::PATCH_DIR))?;
        let raw_tree = bench_dir.join("raw");
        source::prepare_tree(sh, &src, pin, &patches, &root, &raw_tree)?;
        let raw_src = raw_tree.join("src");
        // The same config/local headers as build-rom writes (ours, plus iPXE's empty
        // defaults), so both sides compile the same thing.
        let headers = inputs::read_config_headers(&root.join(inputs::CONFIG_DIR))?;
        crate::build_rom::write_local_config(&raw_src, &headers)?;
        let script = InputFile::read(&root.join(inputs::DEFAULT_SCRIPT), "script")?;
        source::write_if_changed(&raw_src.join("sixboot/embed.ipxe"), &script.bytes)?;
        let changed_script = bench_dir.join("changed.ipxe");
        let mut changed = script.bytes.clone();
        changed.extend_from_slice(b"# changed by cargo xtask bench build\n");
        std::fs::write(&changed_script, &changed)?;

        let variables = make::variables(
            "sixboot/embed.ipxe",
            None,
            matches!(src, source::Source::Git { .. }).then(|| pin.short()),
            pin.epoch,
        );
        let mut targets = self.target.clone();
        targets.sort();
        targets.dedup();
        let raw_make = |sh: &Shell| -> Result<Duration> {
            let start = Instant::now();
            for bin_dir in BinDir::ALL {
                let make_targets: Vec<String> = targets
                    .iter()
                    .flat_map(|t| t.outputs())
                    .filter(|o| o.bin_dir == bin_dir)
                    .map(|o| o.make_target())
                    .collect();
                if make_targets.is_empty() {
                    continue;
                }
                let j = format!("-j{jobs}");
                let vars = &variables;
                cmd!(sh, "make -C {raw_src} {j} {make_targets...} {vars...}")
                    .env("GIT_CEILING_DIRECTORIES", &raw_tree)
                    .quiet()
                    .ignore_stdout()
                    .run()
                    .context("raw make failed")?;
            }
            Ok(start.elapsed())
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
        let build_rom = |sh: &Shell, embed: Option<&Path>| -> Result<Duration> {
            let j = jobs.to_string();
            let embed_args: Vec<String> = embed
                .map(|path| vec!["--embed".to_string(), path.display().to_string()])
                .unwrap_or_default();
            let start = Instant::now();
            cmd!(
                sh,
                "{exe} build-rom --ipxe-src {ipxe_src} --target {target_list} -j {j} --work-dir {work} --out {out} {embed_args...}"
            )
            .quiet()
            .ignore_stdout()
            .run()
            .context("build-rom failed")?;
            Ok(start.elapsed())
        };

        let load_before = load_average();
        eprintln!("bench build: targets {target_list}, -j{jobs}, load {load_before}");
        let mut rows = Vec::new();
        eprintln!("cold: raw make …");
        let raw = raw_make(sh)?;
        eprintln!("cold: build-rom …");
        let ours = build_rom(sh, None)?;
        rows.push(Row {
            scenario: "cold",
            raw,
            ours,
        });
        eprintln!("no-op …");
        let raw = raw_make(sh)?;
        let ours = build_rom(sh, None)?;
        rows.push(Row {
            scenario: "no-op rerun",
            raw,
            ours,
        });
        eprintln!("script-only change …");
        source::write_if_changed(&raw_src.join("sixboot/embed.ipxe"), &changed)?;
        let raw = raw_make(sh)?;
        let ours = build_rom(sh, Some(&changed_script))?;
        rows.push(Row {
            scenario: "script-only change",
            raw,
            ours,
        });
        let load_after = load_average();

        println!("targets: {target_list}; make -j{jobs}; load average before {load_before}, after {load_after}");
        println!(
            "{:<20} {:>10} {:>10} {:>8}",
            "scenario", "raw make", "build-rom", "ratio"
        );
        for row in &rows {
            println!(
                "{:<20} {:>9.2}s {:>9.2}s {:>8.3}",
                row.scenario,
                row.raw.as_secs_f64(),
                row.ours.as_secs_f64(),
                row.ours.as_secs_f64() / row.raw.as_secs_f64().max(1e-9)
            );
        }
        println!("(goal: cold ratio <= 1.05; build-rom's no-op is a cache hit and calls no make)");
        Ok(())
    }
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

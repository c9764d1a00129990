//! `cargo xtask build-rom` (issue 3): IPv6-by-default iPXE for ConnectX-3/4 and QEMU,
//! built from the pinned source, verified, and packaged in `dist/`.
//!
//! The steps, each its own module: [`lock`] (what to build), [`inputs`] (config headers,
//! script, CA, patches), [`cache`] (input keys; a run whose keys are cached calls no
//! make), [`source`] (export the pinned commit into a build tree, apply patches),
//! [`make`] (one make call per `bin*` directory), [`verify`] (ELF checks),
//! [`romcheck`] (`sixboot::rom` verify and pack), [`package`] (manifest, SHA256SUMS,
//! BURN.md, atomic publish). Everything lives under `target/build-rom/` (the work
//! directory) except the package.

pub mod cache;
pub mod inputs;
pub mod lock;
pub mod make;
pub mod package;
pub mod romcheck;
pub mod source;
pub mod targets;
pub mod verify;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use xshell::{cmd, Shell};

use crate::deps;
use inputs::{ConfigHeader, InputFile, Patch};
use lock::{Lock, Pin};
use package::{ImageRecord, Manifest};
use source::Source;
use targets::{BinDir, Kind, Output, Target};

/// Debian packages a build needs (`openssl` only with `--trust`).
pub const BUILD_PACKAGES: &[&str] = &[
    "gcc",
    "make",
    "perl",
    "liblzma-dev",
    "mtools",
    "binutils",
    "git",
];

/// Which firmware to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Flavor {
    /// Upstream iPXE at the pinned commit (this module).
    Ipxe,
    /// Mellanox FlexBoot (issue 7, `xtask/src/flexboot.rs`).
    Flexboot,
}

/// Build IPv6-by-default boot ROMs, verify them and package them.
#[derive(Debug, Clone, Args)]
pub struct BuildRom {
    /// What to build, comma-separated: cx3 (15b3:1003, 1007), cx4 (15b3:1013, 1015),
    /// qemu (1af4:1000 ROMs, ipxe.lkrn, ipxe.efi).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Target::ALL)]
    pub target: Vec<Target>,
    /// A local iPXE: work tree or git repository (bare too) that has the pinned commit,
    /// or a plain tree (used as is, with a warning). Default: clone into target/.
    #[arg(long, env = "IPXE_SRC")]
    pub ipxe_src: Option<PathBuf>,
    /// Embed this iPXE script instead of ipxe-config/embed.ipxe (first line `#!ipxe`).
    #[arg(long, value_name = "FILE")]
    pub embed: Option<PathBuf>,
    /// Embed the dual-stack script (IPv6 and DHCPv4) instead of the IPv6-only one.
    #[arg(long, conflicts_with = "embed")]
    pub dual_stack: bool,
    /// Trust only this CA for HTTPS (iPXE `TRUST=`), PEM.
    #[arg(long, value_name = "CA.pem")]
    pub trust: Option<PathBuf>,
    /// Skip a patch from patches/ by name (for example `duid-ll`); repeatable.
    #[arg(long = "no-patch", value_name = "NAME")]
    pub no_patch: Vec<String>,
    /// Parallel make jobs (default: all cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Stream make's output.
    #[arg(short, long)]
    pub verbose: bool,
    /// Where the package goes.
    #[arg(long, default_value = "dist", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the apt-get line for missing Debian packages instead of running it.
    #[arg(long)]
    pub no_install: bool,
    /// Firmware flavour: upstream iPXE, or Mellanox FlexBoot with IPv6 as its default
    /// (legacy BIOS images only; packaged into `dist-flexboot/` unless `--out` is given).
    #[arg(long, value_enum, default_value_t = Flavor::Ipxe)]
    pub flavor: Flavor,
    /// With `--flavor flexboot`: a FlexBoot clone (work tree or bare repository) holding the
    /// pinned commit, or a plain tree. Default: clone the URL in ipxe-config/ipxe.lock.
    #[arg(long, env = "FLEXBOOT_SRC", value_name = "PATH")]
    pub flexboot_src: Option<PathBuf>,
    /// Version stamped into the combined images' mlxsign: records (X.Y.Z).
    #[arg(long, value_name = "X.Y.Z", default_value = env!("CARGO_PKG_VERSION"))]
    pub rom_version: String,
    /// Build even when the cache has the result (the build tree is reused).
    #[arg(long)]
    pub rebuild: bool,
    /// Work directory for build trees, cache and logs.
    #[arg(long, value_name = "DIR", default_value = "target/build-rom")]
    pub work_dir: PathBuf,
}

/// Everything read before building, shared by the targets.
struct Plan {
    lock: Lock,
    headers: Vec<ConfigHeader>,
    script: InputFile,
    trust: Option<InputFile>,
    all_patches: Vec<Patch>,
    applied: Vec<Patch>,
    skipped: Vec<Patch>,
    rom_version: (u16, u16, u16),
    toolchain: String,
}

/// How one target's images were obtained.
struct TargetResult {
    target: Target,
    key: String,
    records: Vec<ImageRecord>,
    entry: PathBuf,
    built: bool,
}

impl BuildRom {
    /// `--flavor flexboot`: the FlexBoot build (`crate::flexboot`) with this command's
    /// source, script, target, job and output flags. Flags that have no meaning for
    /// FlexBoot are refused rather than ignored.
    fn run_flexboot(self, sh: &Shell) -> Result<()> {
        if self.dual_stack || self.trust.is_some() || !self.no_patch.is_empty() || self.rebuild {
            bail!(
                "--dual-stack, --trust, --no-patch and --rebuild do not apply to --flavor flexboot \
                 (FlexBoot turns DHCPv4 off when its boot IP version is IPv6; its patches are all required)"
            );
        }
        let cwd = std::env::current_dir().context("no current directory")?;
        let mut opts =
            crate::flexboot::FlexbootOptions::new(self.flexboot_src.map(|path| cwd.join(path)));
        if self.target != Target::ALL {
            opts.targets = self.target;
        }
        if let Some(embed) = self.embed {
            opts.embed = cwd.join(embed);
        }
        if let Some(jobs) = self.jobs {
            opts.jobs = jobs;
        }
        opts.verbose = self.verbose;
        opts.no_install = self.no_install;
        // The shared `publish` replaces its whole output directory, so the FlexBoot
        // package must not land in the default flavour's `dist/`.
        let out = if self.out == Path::new("dist") {
            cwd.join("dist-flexboot")
        } else {
            cwd.join(&self.out)
        };
        let build = crate::flexboot::build_rom(sh, &opts, &out)?;
        // The QEMU image exists only to be booted: do it, so a broken one fails here.
        if opts.targets.contains(&Target::Qemu) {
            let boot = crate::flexboot::smoke_boot(sh, &build, &opts.work_dir)?;
            if opts.verbose {
                println!("{}", boot.console);
            }
            println!(
                "QEMU smoke boot of the FlexBoot .rom passed in {:.1} s",
                boot.seconds
            );
        }
        Ok(())
    }

    pub fn run(self, sh: &Shell) -> Result<()> {
        let started = Instant::now();
        if self.flavor == Flavor::Flexboot {
            return self.run_flexboot(sh);
        }
        let root = crate::project_root();
        let cwd = std::env::current_dir().context("no current directory")?;
        let user_path = |path: &Path| cwd.join(path);
        let work_dir = root.join(&self.work_dir);
        let out = user_path(&self.out);
        let mut targets = self.target.clone();
        targets.sort();
        targets.dedup();

        let mut packages = BUILD_PACKAGES.to_vec();
        if self.trust.is_some() {
            packages.push("openssl");
        }
        // Prerequisites are checked before anything is built; a run served entirely from
        // the cache needs none of them, unless the toolchain (part of the cache key) is
        // missing altogether.
        let mut plan = self.plan(sh, &root, &user_path)?;
        if plan.toolchain.contains("not found") {
            deps::ensure(sh, &packages, self.no_install)?;
            plan.toolchain = toolchain_id(sh);
        }
        let source = self
            .ipxe_src
            .as_deref()
            .map(|path| source::resolve(sh, Some(&user_path(path)), &work_dir, &plan.lock.ipxe))
            .transpose()?;
        let source_id = match &source {
            Some(source) => source.identity(&plan.lock.ipxe)?,
            None => format!("git:{}", plan.lock.ipxe.commit),
        };

        let _lock = cache::WorkLock::acquire(&work_dir, Duration::from_secs(30 * 60))?;
        let progress = Progress::new();
        let mut results = Vec::new();
        let mut missing = Vec::new();
        for &target in &targets {
            let key = plan.key(target, &source_id);
            let entry = cache::entry_dir(&work_dir, target.name(), &key);
            match cache::load_entry(&entry).filter(|_| !self.rebuild) {
                Some(records) => results.push(TargetResult {
                    target,
                    key,
                    records,
                    entry,
                    built: false,
                }),
                None => missing.push((target, key, entry)),
            }
        }
        if !missing.is_empty() {
            deps::ensure(sh, &packages, self.no_install)?;
            let source = match source {
                Some(source) => source,
                None => {
                    let step = progress.step("source", "cloning iPXE");
                    let source = source::resolve(sh, None, &work_dir, &plan.lock.ipxe)?;
                    step.done("default clone");
                    source
                }
            };
            let built = self.build(
                sh, &root, &work_dir, &plan, &source, &source_id, &missing, &progress,
            )?;
            results.extend(built);
            cache::prune(&work_dir, 4);
        }
        results.sort_by_key(|r| r.target);

        let step = progress.step("package", &format!("writing {}", out.display()));
        let manifest = plan.manifest(&results);
        let files: Vec<(String, PathBuf)> = results
            .iter()
            .flat_map(|r| {
                r.records
                    .iter()
                    .map(|rec| (rec.file.clone(), r.entry.join(cache::file_name(&rec.file))))
            })
            .collect();
        package::publish(&out, &manifest, &files)?;
        step.done(&format!("{} files", files.len() + 3));
        drop(progress);

        print_summary(&results, &out, started.elapsed());
        Ok(())
    }

    /// Reads and checks every input; fails before any build work on bad input.
    fn plan(&self, sh: &Shell, root: &Path, user_path: &dyn Fn(&Path) -> PathBuf) -> Result<Plan> {
        let lock = Lock::load(&root.join(lock::LOCK_PATH))?;
        let headers = inputs::read_config_headers(&root.join(inputs::CONFIG_DIR))?;
        let script_path = match (&self.embed, self.dual_stack) {
            (Some(path), _) => user_path(path),
            (None, true) => root.join(inputs::DUAL_STACK_SCRIPT),
            (None, false) => root.join(inputs::DEFAULT_SCRIPT),
        };
        let script = InputFile::read(&script_path, "script to embed")?;
        let problems = inputs::lint_script(&script.bytes);
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{}:{}: {}", script_path.display(), p.line, p.message))
                .collect();
            bail!("the script to embed has problems:\n{}", lines.join("\n"));
        }
        let trust = self
            .trust
            .as_deref()
            .map(|path| {
                let file = InputFile::read(&user_path(path), "CA certificate (--trust)")?;
                if !String::from_utf8_lossy(&file.bytes).contains("-----BEGIN CERTIFICATE-----") {
                    bail!(
                        "{} is not a PEM certificate (no -----BEGIN CERTIFICATE----- line)",
                        file.path.display()
                    );
                }
                Ok(file)
            })
            .transpose()?;
        let all_patches = inputs::read_patches(&root.join(inputs::PATCH_DIR))?;
        let (applied, skipped) = inputs::select_patches(&all_patches, &self.no_patch)?;
        let rom_version = sixboot::rom::parse_version(&self.rom_version)
            .with_context(|| format!("--rom-version {}", self.rom_version))?;
        Ok(Plan {
            lock,
            headers,
            script,
            trust,
            all_patches,
            applied,
            skipped,
            rom_version,
            toolchain: toolchain_id(sh),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        sh: &Shell,
        root: &Path,
        work_dir: &Path,
        plan: &Plan,
        source: &Source,
        source_id: &str,
        missing: &[(Target, String, PathBuf)],
        progress: &Progress,
    ) -> Result<Vec<TargetResult>> {
        let pin = &plan.lock.ipxe;
        // One build tree per source, patch set and cache format (make does not notice
        // changed flags); config and script are written into it on every run, and make
        // rebuilds what they touch.
        let tree_key = inputs::sha256_hex(
            format!(
                "{}\n{source_id}\n{}",
                cache::CACHE_FORMAT,
                plan.applied
                    .iter()
                    .map(|p| format!("{} {}", p.file, p.sha256))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
            .as_bytes(),
        );
        let tree = work_dir.join(format!("tree-{}", &tree_key[..12]));
        if !tree.join("src/Makefile").is_file() {
            let step = progress.step(
                "source",
                &format!("exporting iPXE {} and applying patches", pin.short()),
            );
            source::prepare_tree(sh, source, pin, &plan.applied, root, &tree)?;
            step.done(&format!(
                "from {} into {} ({} patch{} applied)",
                source.describe(),
                tree.display(),
                plan.applied.len(),
                if plan.applied.len() == 1 { "" } else { "es" }
            ));
        }
        prune_trees(work_dir, &tree, 2);
        let src = tree.join("src");
        write_local_config(&src, &plan.headers)?;
        source::write_if_changed(&src.join("sixboot/embed.ipxe"), &plan.script.bytes)?;
        let trust = match &plan.trust {
            Some(file) => {
                source::write_if_changed(&src.join("sixboot/trust.pem"), &file.bytes)?;
                Some("sixboot/trust.pem")
            }
            None => None,
        };
        let git_version = matches!(source, Source::Git { .. }).then(|| pin.short());
        let variables = make::variables("sixboot/embed.ipxe", trust, git_version, pin.epoch);
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

        let outputs: Vec<(Target, Output)> = missing
            .iter()
            .flat_map(|(target, _, _)| target.outputs().into_iter().map(move |o| (*target, o)))
            .collect();
        for bin_dir in BinDir::ALL {
            let make_targets: Vec<String> = outputs
                .iter()
                .filter(|(_, o)| o.bin_dir == bin_dir)
                .map(|(_, o)| o.make_target())
                .collect();
            if make_targets.is_empty() {
                continue;
            }
            let step = progress.step(
                &format!("make {}", bin_dir.dir()),
                &format!(
                    "{} target{}",
                    make_targets.len(),
                    if make_targets.len() == 1 { "" } else { "s" }
                ),
            );
            let call = make::MakeCall {
                src_dir: src.clone(),
                targets: make_targets,
                variables: variables.clone(),
                jobs,
                log: make::log_path(work_dir, bin_dir.dir()),
                verbose: self.verbose,
            };
            let report = make::run(sh, &call, &step.bar)?;
            let finished: Vec<String> = report
                .finished
                .iter()
                .map(|(t, at)| match at {
                    Some(at) => format!("{} {:.1}s", cache::file_name(t), at.as_secs_f64()),
                    None => format!("{} up to date", cache::file_name(t)),
                })
                .collect();
            step.done(&format!(
                "{} compiled; {}",
                report.n_compiled,
                finished.join(", ")
            ));
        }

        let step = progress.step("verify", "ELF symbols, embedded script, ROM structure");
        let mut results = Vec::new();
        let mut failures = Vec::new();
        for (target, key, entry) in missing {
            match self.verify_and_pack(plan, &src, *target) {
                Ok(images) => {
                    cache::store_entry(entry, &images)?;
                    results.push(TargetResult {
                        target: *target,
                        key: key.clone(),
                        records: images.into_iter().map(|(record, _)| record).collect(),
                        entry: entry.clone(),
                        built: true,
                    });
                }
                Err(err) => failures.push(format!("{target}: {err:#}")),
            }
        }
        if !failures.is_empty() {
            step.fail("failed");
            bail!(
                "verification failed; nothing was packaged:\n  {}",
                failures.join("\n  ")
            );
        }
        step.done(&format!("{} targets", results.len()));
        Ok(results)
    }

    /// Verifies every image of `target` in the build tree and packs the combined images.
    fn verify_and_pack(
        &self,
        plan: &Plan,
        src: &Path,
        target: Target,
    ) -> Result<Vec<(ImageRecord, Vec<u8>)>> {
        let present: Vec<&str> = plan
            .applied
            .iter()
            .flat_map(|p| p.verify_symbols.iter().map(String::as_str))
            .collect();
        let absent: Vec<&str> = plan
            .skipped
            .iter()
            .flat_map(|p| p.verify_symbols.iter().map(String::as_str))
            .collect();
        let mut images: Vec<(ImageRecord, Vec<u8>, Output)> = Vec::new();
        for output in target.outputs() {
            let expect = verify::Expectations {
                driver_symbol: output.driver_symbol,
                script: &plan.script.bytes,
                present: present.clone(),
                absent: absent.clone(),
            };
            let mut checks = verify::check_elf_file(&src.join(output.elf_intermediate()), &expect)?;
            let path = src.join(output.make_target());
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if output.kind.is_option_rom() {
                let checked = romcheck::verify(&bytes, output.kind, output.pci_id)
                    .with_context(|| format!("{} failed rom verify", path.display()))?;
                checks.push(checked);
            }
            let record = record(
                target,
                &output.file,
                output.kind,
                output.pci_id,
                &bytes,
                checks,
            );
            images.push((record, bytes, output));
        }
        // One combined legacy + EFI image per NIC.
        let mut combined = Vec::new();
        for (legacy_record, legacy, output) in &images {
            let (Some(id), Kind::LegacyMrom | Kind::LegacyRom) = (output.pci_id, output.kind)
            else {
                continue;
            };
            let Some((efi_record, efi, _)) = images
                .iter()
                .find(|(_, _, o)| o.kind == Kind::EfiRom && o.pci_id == Some(id))
            else {
                continue;
            };
            let bytes =
                romcheck::pack_combined(legacy, efi, id, plan.rom_version).with_context(|| {
                    format!("cannot pack {} and {}", legacy_record.file, efi_record.file)
                })?;
            let mut checks = vec![format!(
                "packed:{}+{}",
                cache::file_name(&legacy_record.file),
                cache::file_name(&efi_record.file)
            )];
            checks.push(romcheck::verify(&bytes, Kind::Combined, Some(id))?);
            let file = format!("{}.combined.rom", targets::file_stem(id));
            combined.push((
                record(target, &file, Kind::Combined, Some(id), &bytes, checks),
                bytes,
            ));
        }
        Ok(images
            .into_iter()
            .map(|(record, bytes, _)| (record, bytes))
            .chain(combined)
            .collect())
    }
}

fn record(
    target: Target,
    file: &str,
    kind: Kind,
    pci_id: Option<targets::PciId>,
    bytes: &[u8],
    checks: Vec<String>,
) -> ImageRecord {
    ImageRecord {
        target: target.name().to_string(),
        file: format!("{}/{file}", target.name()),
        kind: serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        pci_ids: pci_id.iter().map(ToString::to_string).collect(),
        size: bytes.len() as u64,
        sha256: inputs::sha256_hex(bytes),
        checks,
    }
}

impl Plan {
    fn key(&self, target: Target, source_id: &str) -> String {
        cache::KeyInputs {
            format: cache::CACHE_FORMAT,
            flavor: "ipxe",
            target: target.name(),
            source: source_id,
            patches: self
                .applied
                .iter()
                .map(|p| (p.file.as_str(), p.sha256.as_str()))
                .collect(),
            config: &inputs::config_hash(&self.headers),
            script: &self.script.sha256(),
            trust: self.trust.as_ref().map(|t| t.sha256()).as_deref(),
            rom_version: self.rom_version,
            toolchain: &self.toolchain,
        }
        .key()
    }

    fn manifest(&self, results: &[TargetResult]) -> Manifest {
        let pin: &Pin = &self.lock.ipxe;
        let file_record = |file: &InputFile| package::FileRecord {
            path: display_path(&file.path),
            size: file.bytes.len() as u64,
            sha256: file.sha256(),
        };
        Manifest {
            tool: "sixboot build-rom".to_string(),
            flavor: "ipxe".to_string(),
            source: package::SourceRecord {
                name: "ipxe".to_string(),
                url: pin.url.clone(),
                commit: pin.commit.clone(),
                date: pin.date.clone(),
            },
            patches: self
                .all_patches
                .iter()
                .map(|p| package::PatchRecord {
                    file: p.file.clone(),
                    sha256: p.sha256.clone(),
                    applied: self.applied.iter().any(|a| a.file == p.file),
                })
                .collect(),
            config: package::ConfigRecord {
                sha256: inputs::config_hash(&self.headers),
                files: self
                    .headers
                    .iter()
                    .map(|h| package::NamedHash {
                        name: h.name.clone(),
                        sha256: h.sha256.clone(),
                    })
                    .collect(),
            },
            script: file_record(&self.script),
            trust: self.trust.as_ref().map(file_record),
            dual_stack: self.script.path.ends_with(inputs::DUAL_STACK_SCRIPT),
            rom_version: format!(
                "{}.{}.{}",
                self.rom_version.0, self.rom_version.1, self.rom_version.2
            ),
            targets: results
                .iter()
                .map(|r| package::TargetRecord {
                    name: r.target.name().to_string(),
                    input_key: r.key.clone(),
                })
                .collect(),
            images: results.iter().flat_map(|r| r.records.clone()).collect(),
            burn_notes: Vec::new(),
        }
    }
}

/// A path relative to the project root when it is inside it (so the manifest does not
/// depend on where the checkout lives).
fn display_path(path: &Path) -> String {
    let root = crate::project_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Writes `config/local/<name>.h` for every `config/<name>.h` of the tree: ours where we
/// have one, empty otherwise (what iPXE itself would create).
///
/// iPXE creates missing local headers on demand, in the middle of a parallel build, so
/// objects compiled before that moment are older than a header they include and the next
/// "no-op" make recompiles them (a quarter of the library here). Creating all of them
/// before the first make, and rewriting only what changed, keeps a no-op a no-op.
pub fn write_local_config(src: &Path, headers: &[ConfigHeader]) -> Result<()> {
    let local = src.join("config/local");
    std::fs::create_dir_all(&local)?;
    let config = src.join("config");
    for entry in
        std::fs::read_dir(&config).with_context(|| format!("cannot list {}", config.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".h") {
            continue;
        }
        let bytes = headers
            .iter()
            .find(|header| header.name == name)
            .map_or(&[][..], |header| &header.bytes[..]);
        source::write_if_changed(&local.join(&name), bytes)?;
    }
    for header in headers {
        if !config.join(&header.name).is_file() {
            bail!(
                "{}/{} has no counterpart config/{} in iPXE, so iPXE would never read it",
                inputs::CONFIG_DIR,
                header.name,
                header.name
            );
        }
    }
    Ok(())
}

/// Compiler, linker and make versions: a new toolchain can change the bytes.
fn toolchain_id(sh: &Shell) -> String {
    let first_line = |program: &str| {
        cmd!(sh, "{program} --version")
            .quiet()
            .ignore_stderr()
            .read()
            .map(|text| text.lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|_| format!("{program}: not found"))
    };
    ["gcc", "ld", "make"].map(first_line).join("; ")
}

/// Removes build trees other than `keep` beyond the newest `n_keep`.
fn prune_trees(work_dir: &Path, keep: &Path, n_keep: usize) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    let mut trees: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tree-"))
        .filter(|e| e.path() != keep)
        .map(|e| {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, e.path())
        })
        .collect();
    trees.sort_by_key(|tree| std::cmp::Reverse(tree.0));
    for (_, path) in trees.into_iter().skip(n_keep.saturating_sub(1)) {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn print_summary(results: &[TargetResult], out: &Path, elapsed: Duration) {
    let rows: Vec<[String; 7]> = results
        .iter()
        .flat_map(|r| {
            r.records.iter().map(move |rec| {
                [
                    rec.target.clone(),
                    rec.file.clone(),
                    rec.kind.clone(),
                    rec.pci_ids.join(","),
                    group_thousands(rec.size),
                    rec.sha256[..12].to_string(),
                    if r.built { "built" } else { "cached" }.to_string(),
                ]
            })
        })
        .collect();
    let header = ["target", "file", "kind", "pci", "bytes", "sha256", "from"].map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 4 {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    println!(
        "{}: {} images + manifest.json, SHA256SUMS, BURN.md ({:.1} s)",
        out.display(),
        rows.len(),
        elapsed.as_secs_f64()
    );
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Progress lines: spinners on a terminal, plain lines otherwise (CI logs).
struct Progress {
    multi: MultiProgress,
    tty: bool,
}

struct Step {
    bar: ProgressBar,
    name: String,
    started: Instant,
    tty: bool,
}

impl Progress {
    fn new() -> Progress {
        let tty = std::io::stderr().is_terminal();
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            tty,
        }
    }

    fn step(&self, name: &str, message: &str) -> Step {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<20} {elapsed:>4} {wide_msg}")
                .expect("the template is valid"),
        );
        bar.set_prefix(name.to_string());
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        if !self.tty {
            eprintln!("{name}: {message}");
        }
        Step {
            bar,
            name: name.to_string(),
            started: Instant::now(),
            tty: self.tty,
        }
    }
}

impl Step {
    fn done(&self, message: &str) {
        self.finish("✓", message);
    }

    fn fail(&self, message: &str) {
        self.finish("✗", message);
    }

    fn finish(&self, mark: &str, message: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.bar.set_style(
            ProgressStyle::with_template("{prefix} {wide_msg}").expect("the template is valid"),
        );
        self.bar
            .set_prefix(format!("{mark} {:<20} {elapsed:>5.1}s", self.name));
        self.bar.finish_with_message(message.to_string());
        if !self.tty {
            eprintln!("{mark} {} {elapsed:.1}s {message}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands_for_sizes() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(90_624), "90,624");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}

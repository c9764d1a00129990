//! `cargo xtask build-rom [--flavor ipxe|flexboot]`: one firmware pipeline for upstream
//! iPXE and Mellanox FlexBoot, with IPv6 on and sixboot's script embedded, verified and
//! packaged.
//!
//! The pipeline, each step its own module: [`lock`] and [`inputs`] (what to build: the
//! pin, config headers, script (linted by `sixboot::script::lint`), CA, patches) →
//! [`cache`] (a key per target; a run whose keys are all cached calls no make) →
//! [`source`] (the user's clone, a plain tree, or a default clone) → [`tree`] (a
//! patched export per flavour, patch set and flags; file times settled so make rebuilds
//! only what changed) → [`make`] (one call per tree and `bin*` directory) → [`elf`]
//! (goblin checks of every linked ELF) and [`romcheck`] (`sixboot::rom` verify, pack the
//! combined images) → [`qemu`] (FlexBoot's smoke boot) → [`package`] (manifest,
//! SHA256SUMS, BURN.md, atomic publish) → [`summary`].
//!
//! Everything in which the flavours differ is a table in [`flavor`]: pin and patch
//! directory, the images of each target ([`targets::Output`]: tree, build directory,
//! driver, extra ELF proofs), make variables, BURN.md text.

pub mod cache;
pub mod elf;
pub mod flavor;
pub mod inputs;
pub mod lock;
pub mod make;
pub mod package;
pub mod qemu;
pub mod romcheck;
pub mod source;
pub mod summary;
pub mod targets;
pub mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use xshell::{cmd, Shell};

use crate::deps;
pub use flavor::Flavor;
use flavor::{FlavorSpec, MakeInputs};
use inputs::{ConfigHeader, InputFile, Patch};
use lock::{Lock, Pin};
use package::{ImageRecord, Manifest};
use source::Source;
use summary::{Progress, TargetResult};
use targets::{file_stem, BinDir, Kind, Output, Target, TreeSpec};

/// Debian packages a build needs, both flavours (`openssl` for `--trust`, the cross
/// compiler for the ARM64 images).
pub const BUILD_PACKAGES: &[&str] = &[
    "gcc",
    "make",
    "perl",
    "liblzma-dev",
    "mtools",
    "binutils",
    "git",
    "tar",
    "openssl",
    "gcc-aarch64-linux-gnu",
];

/// Build IPv6-by-default boot ROMs, verify them and package them.
#[derive(Debug, Clone, Args)]
pub struct BuildRom {
    /// What to build, comma-separated (default: every target of the flavour). iPXE:
    /// cx3 (15b3:1003, 1007), cx4 (1013, 1015), cx5 (1017, 1019), cx6 (101b, 101d, 101f),
    /// cx7 (1021) (cx5-7 experimental), qemu (1af4:1000 ROMs, ipxe.lkrn, ipxe.efi),
    /// snponly (x86-64 snponly.efi), arm64 (ipxe.efi, snponly.efi). FlexBoot: cx3, cx4,
    /// qemu (ConnectX-3 .rom for -option-rom), virtio (1af4:1000 .rom).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub target: Vec<Target>,
    /// A local iPXE: work tree or git repository (bare too) that has the pinned commit,
    /// or a plain tree (used as is, with a warning). Default: clone into the work dir.
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
    /// Where the package goes (default: dist/, dist-flexboot/ for FlexBoot).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    /// Work directory for build trees, cache and logs (default: target/build-rom,
    /// target/flexboot for FlexBoot).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// Everything read before building, shared by the targets.
struct Plan {
    spec: &'static FlavorSpec,
    pin: Pin,
    targets: Vec<Target>,
    outputs: Vec<Output>,
    headers: Vec<ConfigHeader>,
    script: InputFile,
    trust: Option<InputFile>,
    all_patches: Vec<Patch>,
    applied: Vec<Patch>,
    skipped: Vec<Patch>,
    rom_version: (u16, u16, u16),
    toolchain: String,
}

impl BuildRom {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let started = Instant::now();
        let spec = self.flavor.spec();
        let root = crate::project_root();
        let cwd = std::env::current_dir().context("no current directory")?;
        let user_path = |path: &Path| cwd.join(path);
        let work_dir = root.join(
            self.work_dir
                .clone()
                .unwrap_or_else(|| spec.default_work_dir.into()),
        );
        let out = user_path(&self.out.clone().unwrap_or_else(|| spec.default_out.into()));

        let packages = BUILD_PACKAGES;
        // Prerequisites are checked before anything is built; a run served entirely from
        // the cache needs none of them, unless the toolchain (part of the cache key) is
        // missing altogether.
        let mut plan = self.plan(sh, &root, &user_path)?;
        if plan.toolchain.contains("not found") {
            deps::ensure(sh, packages, self.no_install)?;
            plan.toolchain = toolchain_id(sh, &plan.outputs);
        }
        let src_arg = match self.flavor {
            Flavor::Ipxe => self.ipxe_src.as_deref(),
            Flavor::Flexboot => self.flexboot_src.as_deref(),
        };
        let source = src_arg
            .map(|path| source::resolve(sh, spec, Some(&user_path(path)), &work_dir, &plan.pin))
            .transpose()?;
        let source_id = match &source {
            Some(source) => source.identity(&plan.pin)?,
            None => format!("git:{}", plan.pin.commit),
        };

        let _lock = cache::WorkLock::acquire(&work_dir, Duration::from_secs(30 * 60))?;
        let progress = Progress::new();
        let mut results = Vec::new();
        let mut missing = Vec::new();
        for &target in &plan.targets {
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
            deps::ensure(sh, packages, self.no_install)?;
            let source = match source {
                Some(source) => source,
                None => {
                    let step = progress.step("source", &format!("cloning {}", spec.title));
                    let source = source::resolve(sh, spec, None, &work_dir, &plan.pin)?;
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
        package::publish(&out, &manifest, &spec.burn, &files)?;
        step.done(&format!("{} files", files.len() + 3));
        drop(progress);

        summary::print_summary(&results, &out, started.elapsed());
        Ok(())
    }

    /// Reads and checks every input; fails before any build work on bad input.
    fn plan(&self, sh: &Shell, root: &Path, user_path: &dyn Fn(&Path) -> PathBuf) -> Result<Plan> {
        let spec = self.flavor.spec();
        if !spec.takes_trust_and_patch_choice
            && (self.dual_stack || self.trust.is_some() || !self.no_patch.is_empty())
        {
            bail!(
                "--dual-stack, --trust and --no-patch do not apply to --flavor {} \
                 (FlexBoot turns DHCPv4 off when its boot IP version is IPv6; its patches are all required)",
                spec.name
            );
        }
        let lock = Lock::load(&root.join(lock::LOCK_PATH))?;
        let pin = lock
            .pin(spec.lock_table)
            .with_context(|| format!("bad lock file {}", lock::LOCK_PATH))?
            .clone();
        let mut targets = if self.target.is_empty() {
            spec.targets.to_vec()
        } else {
            self.target.clone()
        };
        targets.sort();
        targets.dedup();
        for target in &targets {
            if !spec.targets.contains(target) {
                let known: Vec<&str> = spec.targets.iter().map(|t| t.name()).collect();
                bail!(
                    "{} has no target {target} (its targets: {})",
                    spec.title,
                    known.join(", ")
                );
            }
        }
        let outputs = spec.outputs(&targets, &pin);
        let headers = if spec.config_headers {
            inputs::read_config_headers(&root.join(inputs::CONFIG_DIR))?
        } else {
            Vec::new()
        };
        let script_path = match (&self.embed, self.dual_stack) {
            (Some(path), _) => user_path(path),
            (None, true) => root.join(inputs::DUAL_STACK_SCRIPT),
            (None, false) => root.join(inputs::DEFAULT_SCRIPT),
        };
        let script = InputFile::read(&script_path, "script to embed")?;
        inputs::lint_script(&script)?;
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
        let patch_dir = root.join(spec.patch_dir);
        let all_patches = inputs::read_patches(&patch_dir)?;
        if spec.needs_patches && all_patches.is_empty() {
            bail!(
                "no patches in {}: {} does not build without them",
                patch_dir.display(),
                spec.title
            );
        }
        let (applied, skipped) =
            inputs::select_patches(&all_patches, &self.no_patch, spec.patch_dir)?;
        let rom_version = sixboot::rom::parse_version(&self.rom_version)
            .with_context(|| format!("--rom-version {}", self.rom_version))?;
        Ok(Plan {
            spec,
            toolchain: toolchain_id(sh, &outputs),
            pin,
            targets,
            outputs,
            headers,
            script,
            trust,
            all_patches,
            applied,
            skipped,
            rom_version,
        })
    }

    /// Builds the targets that missed the cache: per tree, export and patch (once),
    /// write the script, CA and headers, one make per build directory; then verify and
    /// package each target into its cache entry.
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
        let spec = plan.spec;
        let pin = &plan.pin;
        let outputs: Vec<&Output> = plan
            .outputs
            .iter()
            .filter(|o| missing.iter().any(|(t, _, _)| *t == o.target))
            .collect();
        let mut trees: Vec<&TreeSpec> = outputs.iter().map(|o| &o.tree).collect();
        trees.sort();
        trees.dedup();
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let mut tree_dirs: BTreeMap<&TreeSpec, PathBuf> = BTreeMap::new();
        for tree_spec in trees {
            let key = tree::tree_key(spec.name, source_id, &plan.applied, &tree_spec.flags);
            let dir = tree::dir(work_dir, &tree_spec.name, &key);
            if !dir.join(".sixboot-tree").is_file() {
                let step = progress.step(
                    "source",
                    &format!(
                        "exporting {} {} and applying patches",
                        spec.title,
                        pin.short()
                    ),
                );
                tree::prepare(
                    sh,
                    source,
                    pin,
                    spec.title,
                    &root.join(spec.patch_dir),
                    &plan.applied,
                    &dir,
                )?;
                step.done(&format!(
                    "from {} into {} ({} patch{} applied)",
                    source.describe(),
                    dir.display(),
                    plan.applied.len(),
                    if plan.applied.len() == 1 { "" } else { "es" }
                ));
            }
            tree::prune_stale(work_dir, &tree_spec.name, &dir)?;
            let src = dir.join("src");
            if spec.config_headers {
                tree::write_local_config(&src, &plan.headers)?;
            }
            let (embed_in_tree, embed_for_make) = spec.embed;
            tree::write_if_changed(&dir.join(embed_in_tree), &plan.script.bytes)?;
            // The CA's file name follows its content: iPXE rebuilds its root certificate
            // object only when `TRUST=` changes, not when the file behind it does.
            let trust = match &plan.trust {
                Some(file) => {
                    let relative = format!("sixboot/trust-{}.pem", &file.sha256()[..12]);
                    tree::write_if_changed(&src.join(&relative), &file.bytes)?;
                    Some(relative)
                }
                None => None,
            };
            let build_id = tree::build_id(&key, &plan.script.bytes);
            let mut bin_dirs: Vec<BinDir> = outputs
                .iter()
                .filter(|o| &o.tree == tree_spec)
                .map(|o| o.bin_dir)
                .collect();
            bin_dirs.sort();
            bin_dirs.dedup();
            for bin_dir in bin_dirs {
                let make_targets: Vec<String> = outputs
                    .iter()
                    .filter(|o| &o.tree == tree_spec && o.bin_dir == bin_dir)
                    .map(|o| o.make_target())
                    .collect();
                let label = if tree_spec.name == spec.name {
                    format!("make {}", bin_dir.name)
                } else {
                    format!("make {} {}", tree_spec.name, bin_dir.name)
                };
                let step = progress.step(
                    &label,
                    &format!(
                        "{} target{}",
                        make_targets.len(),
                        if make_targets.len() == 1 { "" } else { "s" }
                    ),
                );
                tree::settle_timestamps(&src, pin.epoch)?;
                let variables = (spec.make_variables)(&MakeInputs {
                    pin,
                    flags: &tree_spec.flags,
                    embed: embed_for_make,
                    trust: trust.as_deref(),
                    from_git: matches!(source, Source::Git { .. }),
                    build_id: &build_id,
                    bin_dir,
                });
                let call = make::MakeCall {
                    src_dir: src.clone(),
                    targets: make_targets,
                    variables,
                    jobs,
                    log: make::log_path(work_dir, &tree_spec.name, bin_dir.name),
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
                // The objects, when few: a script-only change must show only the
                // embedded image here (the build-speed test reads this line).
                let objects = if (1..=4).contains(&report.compiled.len()) {
                    format!(" ({})", report.compiled.join(", "))
                } else {
                    String::new()
                };
                step.done(&format!(
                    "{} compiled{objects}; {}",
                    report.n_compiled,
                    finished.join(", ")
                ));
            }
            tree_dirs.insert(tree_spec, dir);
        }

        let step = progress.step("verify", "ELF symbols, embedded script, ROM structure");
        let mut results = Vec::new();
        let mut failures = Vec::new();
        for (target, key, entry) in missing {
            let target_outputs: Vec<&Output> = outputs
                .iter()
                .copied()
                .filter(|o| o.target == *target)
                .collect();
            match self.verify_and_pack(plan, &tree_dirs, &target_outputs, work_dir) {
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

    /// Verifies every image of one target, packs its combined images, and boots the ones
    /// that ask for a smoke boot.
    fn verify_and_pack(
        &self,
        plan: &Plan,
        tree_dirs: &BTreeMap<&TreeSpec, PathBuf>,
        outputs: &[&Output],
        work_dir: &Path,
    ) -> Result<Vec<(ImageRecord, Vec<u8>)>> {
        let symbols = |patches: &[Patch]| -> Vec<String> {
            patches
                .iter()
                .flat_map(|p| p.verify_symbols.iter().cloned())
                .collect()
        };
        let (present, absent) = (symbols(&plan.applied), symbols(&plan.skipped));
        let mut images: Vec<(ImageRecord, Vec<u8>, &Output)> = Vec::new();
        for output in outputs {
            let src = tree_dirs
                .get(&output.tree)
                .context("the tree of this output was not built")?
                .join("src");
            let nic_driver_objects = match output.driver {
                targets::Driver::SnpOnly => {
                    let defs = src.join(output.bin_dir.name).join(".rom.defs");
                    let text = std::fs::read_to_string(&defs).with_context(|| {
                        format!("cannot read make's driver list {}", defs.display())
                    })?;
                    elf::nic_driver_objects(&text)
                }
                targets::Driver::Nic(_) => Vec::new(),
            };
            let expect = elf::Expectations {
                arch: output.bin_dir.arch,
                driver: output.driver,
                script: &plan.script.bytes,
                present: present.iter().map(String::as_str).collect(),
                absent: absent.iter().map(String::as_str).collect(),
                proofs: &output.proofs,
                nic_driver_objects: &nic_driver_objects,
            };
            let report = elf::check_elf_file(&src.join(output.elf_intermediate()), &expect)?;
            let mut checks = report.checks;
            let path = src.join(output.make_target());
            let bytes = std::fs::read(&path)
                .with_context(|| format!("make did not produce {}", path.display()))?;
            if output.kind.is_option_rom() {
                let checked = romcheck::verify(&bytes, output.kind, output.pci_id)
                    .with_context(|| format!("{} failed rom verify", path.display()))?;
                checks.push(checked);
            } else if output.kind == Kind::EfiApp {
                checks.push(romcheck::verify_efi_app(&bytes, output.bin_dir.arch)?);
            }
            if output.smoke_boot {
                let boot = smoke_boot(&path, &plan.script, output, work_dir)?;
                eprintln!(
                    "QEMU smoke boot of {} passed in {:.1} s",
                    output.package_file, boot.seconds
                );
                if self.verbose {
                    eprintln!("{}", boot.console);
                }
                checks.push("smoke-boot".to_string());
            }
            let record = record(output, &output.package_file, output.kind, &bytes, checks);
            images.push((record, bytes, output));
        }
        // One combined legacy + EFI image per NIC.
        let mut combined = Vec::new();
        for (legacy_record, legacy, output) in &images {
            let (Some(id), true) = (output.pci_id, output.kind.is_legacy_rom()) else {
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
            let file = format!("{}/{}.combined.rom", output.target.name(), file_stem(id));
            combined.push((record(output, &file, Kind::Combined, &bytes, checks), bytes));
        }
        Ok(images
            .into_iter()
            .map(|(record, bytes, _)| (record, bytes))
            .chain(combined)
            .collect())
    }
}

/// Boots a legacy `.rom` with `-option-rom` (no network) and waits for the banner, the
/// script's first message and the fall-through to the BIOS, in that order.
fn smoke_boot(
    rom: &Path,
    script: &InputFile,
    output: &Output,
    work_dir: &Path,
) -> Result<qemu::Boot> {
    let sh = Shell::new()?;
    let banner = output
        .proofs
        .iter()
        .find_map(|proof| match proof {
            targets::Proof::Banner(banner) => Some(banner.clone()),
            _ => None,
        })
        .context("a smoke-booted image needs a banner to wait for")?;
    let echoes = qemu::echo_texts(&String::from_utf8_lossy(&script.bytes));
    let first = echoes
        .first()
        .context("the embedded script has no `echo` whose output the smoke test could look for")?;
    let expect = [
        banner.as_str(),
        "Features:",
        first.as_str(),
        "No bootable device",
    ];
    qemu::boot_option_rom(
        &sh,
        rom,
        &work_dir.join("smoke-serial.log"),
        &expect,
        Duration::from_secs(120),
    )
}

fn record(
    output: &Output,
    file: &str,
    kind: Kind,
    bytes: &[u8],
    checks: Vec<String>,
) -> ImageRecord {
    ImageRecord {
        target: output.target.name().to_string(),
        file: file.to_string(),
        kind: kind.name().to_string(),
        pci_ids: output.pci_id.iter().map(ToString::to_string).collect(),
        size: bytes.len() as u64,
        sha256: inputs::sha256_hex(bytes),
        checks,
        experimental: output.experimental,
    }
}

impl Plan {
    fn target_flags(&self, target: Target) -> Vec<&str> {
        let mut flags: Vec<&str> = self
            .outputs
            .iter()
            .filter(|o| o.target == target)
            .map(|o| o.tree.flags.as_str())
            .collect();
        flags.sort_unstable();
        flags.dedup();
        flags
    }

    fn key(&self, target: Target, source_id: &str) -> String {
        cache::KeyInputs {
            format: cache::CACHE_FORMAT,
            flavor: self.spec.name,
            target: target.name(),
            source: source_id,
            patches: self
                .applied
                .iter()
                .map(|p| (p.file.as_str(), p.sha256.as_str()))
                .collect(),
            flags: self.target_flags(target),
            config: &inputs::config_hash(&self.headers),
            script: &self.script.sha256(),
            trust: self.trust.as_ref().map(|t| t.sha256()).as_deref(),
            rom_version: self.rom_version,
            toolchain: &self.toolchain,
        }
        .key()
    }

    fn manifest(&self, results: &[TargetResult]) -> Manifest {
        let pin = &self.pin;
        let file_record = |file: &InputFile| package::FileRecord {
            path: display_path(&file.path),
            size: file.bytes.len() as u64,
            sha256: file.sha256(),
        };
        // The patch's path under patches/ (`0001-duid-ll.patch`, `flexboot/0001-…`).
        let patch_prefix = self
            .spec
            .patch_dir
            .strip_prefix("patches")
            .unwrap_or(self.spec.patch_dir)
            .trim_start_matches('/');
        let patch_file = |file: &str| {
            if patch_prefix.is_empty() {
                file.to_string()
            } else {
                format!("{patch_prefix}/{file}")
            }
        };
        let config = if self.spec.config_headers {
            package::ConfigRecord {
                sha256: inputs::config_hash(&self.headers),
                files: self
                    .headers
                    .iter()
                    .map(|h| package::NamedHash {
                        name: h.name.clone(),
                        sha256: h.sha256.clone(),
                    })
                    .collect(),
            }
        } else {
            // FlexBoot has no config/local headers: its configuration is each tree's flags.
            let mut trees: Vec<&TreeSpec> = self.outputs.iter().map(|o| &o.tree).collect();
            trees.sort();
            trees.dedup();
            let files: Vec<package::NamedHash> = trees
                .iter()
                .map(|tree| package::NamedHash {
                    name: format!("EXTRA_CFLAGS {}: {}", tree.name, tree.flags),
                    sha256: inputs::sha256_hex(tree.flags.as_bytes()),
                })
                .collect();
            let listing: String = files
                .iter()
                .map(|file| format!("{}\n", file.name))
                .collect();
            package::ConfigRecord {
                sha256: inputs::sha256_hex(listing.as_bytes()),
                files,
            }
        };
        Manifest {
            tool: "sixboot build-rom".to_string(),
            flavor: self.spec.name.to_string(),
            source: package::SourceRecord {
                name: match &pin.release {
                    Some(release) => format!("{} {release}", self.spec.name),
                    None => self.spec.name.to_string(),
                },
                url: pin.url.clone(),
                commit: pin.commit.clone(),
                date: pin.date.clone(),
            },
            patches: self
                .all_patches
                .iter()
                .map(|p| package::PatchRecord {
                    file: patch_file(&p.file),
                    sha256: p.sha256.clone(),
                    applied: self.applied.iter().any(|a| a.file == p.file),
                })
                .collect(),
            config,
            script: file_record(&self.script),
            trust: self.trust.as_ref().map(file_record),
            dual_stack: self.script.path.ends_with(inputs::DUAL_STACK_SCRIPT),
            rom_version: match &pin.release {
                Some(release) => release.clone(),
                None => format!(
                    "{}.{}.{}",
                    self.rom_version.0, self.rom_version.1, self.rom_version.2
                ),
            },
            targets: results
                .iter()
                .map(|r| package::TargetRecord {
                    name: r.target.name().to_string(),
                    input_key: r.key.clone(),
                    experimental: r.records.iter().any(|rec| rec.experimental),
                })
                .collect(),
            images: results.iter().flat_map(|r| r.records.clone()).collect(),
            burn_notes: self.spec.burn.notes.iter().map(|n| n.to_string()).collect(),
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

/// Compiler, linker and make versions (and the cross compiler's, when an output needs
/// it): a new toolchain can change the bytes.
fn toolchain_id(sh: &Shell, outputs: &[Output]) -> String {
    let first_line = |program: &str| {
        cmd!(sh, "{program} --version")
            .quiet()
            .ignore_stderr()
            .read()
            .map(|text| text.lines().next().unwrap_or("").to_string())
            .unwrap_or_else(|_| format!("{program}: not found"))
    };
    let mut programs = vec!["gcc".to_string(), "ld".to_string(), "make".to_string()];
    let mut crosses: Vec<&str> = outputs.iter().filter_map(|o| o.bin_dir.cross).collect();
    crosses.sort_unstable();
    crosses.dedup();
    for cross in crosses {
        programs.push(format!("{cross}gcc"));
        programs.push(format!("{cross}ld"));
    }
    programs
        .iter()
        .map(|program| first_line(program))
        .collect::<Vec<_>>()
        .join("; ")
}

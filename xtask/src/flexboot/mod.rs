//! `cargo xtask build-rom --flavor flexboot` (issue 7): Mellanox's own FlexBoot 3.4.812,
//! rebuilt with IPv6 as its default boot protocol and sixboot's embedded script.
//!
//! FlexBoot keeps its boot IP version in the NIC's flash and falls back to a default
//! compiled in; `patches/flexboot/` makes that default IPv6 and lets today's perl build
//! the tree. Each family (ConnectX-3, ConnectX-4) and each set of compiler flags gets its
//! own exported tree under `target/flexboot/`, because FlexBoot's make does not rebuild
//! when `EXTRA_CFLAGS` change (and its `make clean` needs bash). The linked ELF of every
//! image is checked ([`verify`]), then the image itself (`sixboot::rom`), then the
//! package is written with the default flavour's [`package`](crate::build_rom::package).
//!
//! Entry points: [`build_rom`] (build, verify, package: what `build-rom --flavor
//! flexboot` runs) and [`build`] (build and verify only).

pub mod package;
pub mod qemu;
pub mod source;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::build_rom::inputs::{self, InputFile, Patch};
use crate::build_rom::targets::{Kind, PciId, Target};
use crate::build_rom::{cache, lock, romcheck};
use crate::project_root;
use source::{FlexbootPin, Source};

/// FlexBoot patches, applied in name order.
pub const PATCH_DIR: &str = "patches/flexboot";
/// FlexBoot's value for IPv6 in `ip_ver` (`VAL_IPV6` in `driver_settings.h`).
pub const IP_VER_IPV6: u8 = 1;
/// Debian packages a FlexBoot build needs.
pub const BUILD_PACKAGES: &[&str] = &[
    "gcc",
    "make",
    "perl",
    "binutils",
    "liblzma-dev",
    "git",
    "tar",
];

/// The two FlexBoot driver families, which need different `-DDEVICE_*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `hermon.c`: ConnectX-3 and ConnectX-3 Pro.
    ConnectX3,
    /// `golan.c` on `flexboot_nodnic.c`: ConnectX-4 and ConnectX-4 Lx.
    ConnectX4,
}

impl Family {
    /// The vendor build line's device define.
    pub fn define(self) -> &'static str {
        match self {
            Family::ConnectX3 => "-DDEVICE_CX3",
            Family::ConnectX4 => "-DDEVICE_CX4",
        }
    }

    /// The driver's `struct pci_driver`, which must be linked in.
    pub fn driver_symbol(self) -> &'static str {
        match self {
            Family::ConnectX3 => "hermon_driver",
            Family::ConnectX4 => "golan_driver",
        }
    }

    /// The function that stores the port's default boot IP version (after inlining at
    /// the pinned commit with gcc 12: `hermon_port_get_defaults` lives inside
    /// `hermon_get_ini_and_defaults`, `flexboot_nodnic_port_get_defaults` inside
    /// `flexboot_nodnic_probe`).
    pub fn defaults_reader(self) -> &'static str {
        match self {
            Family::ConnectX3 => "hermon_get_ini_and_defaults",
            Family::ConnectX4 => "flexboot_nodnic_probe",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Family::ConnectX3 => "cx3",
            Family::ConnectX4 => "cx4",
        }
    }
}

/// One NIC model: FlexBoot's ROM name (`PCI_ROM` in its driver) and PCI IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Device {
    /// FlexBoot's name, which is also its make target's stem (`bin/ConnectX-3.mrom`).
    pub name: &'static str,
    /// PCI vendor and device ID.
    pub pci_id: PciId,
    /// Driver family.
    pub family: Family,
}

/// ConnectX-3 (15b3:1003).
pub const CONNECTX_3: Device = Device {
    name: "ConnectX-3",
    pci_id: PciId::new(0x15b3, 0x1003),
    family: Family::ConnectX3,
};
/// ConnectX-3 Pro (15b3:1007).
pub const CONNECTX_3_PRO: Device = Device {
    name: "ConnectX-3Pro",
    pci_id: PciId::new(0x15b3, 0x1007),
    family: Family::ConnectX3,
};
/// ConnectX-4 (15b3:1013).
pub const CONNECTX_4: Device = Device {
    name: "ConnectX-4",
    pci_id: PciId::new(0x15b3, 0x1013),
    family: Family::ConnectX4,
};
/// ConnectX-4 Lx (15b3:1015).
pub const CONNECTX_4_LX: Device = Device {
    name: "ConnectX-4Lx",
    pci_id: PciId::new(0x15b3, 0x1015),
    family: Family::ConnectX4,
};

/// One image to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// The `--target` it belongs to.
    pub target: Target,
    /// The NIC it is for.
    pub device: Device,
    /// [`Kind::LegacyMrom`] (flash configuration, Ctrl-B menu: to burn) or
    /// [`Kind::LegacyRom`] (no flash configuration: runs in QEMU from `-option-rom`).
    pub kind: Kind,
}

/// The images a target builds. FlexBoot 3.4.812 has no EFI build (its `src/` lacks the
/// `Makefile.efi` that `arch/x86/Makefile.efi` includes), so there are no `.efirom`
/// and no combined images.
pub fn images(target: Target) -> Vec<ImageSpec> {
    let burn = |device| ImageSpec {
        target,
        device,
        kind: Kind::LegacyMrom,
    };
    match target {
        Target::Cx3 => vec![burn(CONNECTX_3), burn(CONNECTX_3_PRO)],
        Target::Cx4 => vec![burn(CONNECTX_4), burn(CONNECTX_4_LX)],
        Target::Qemu => vec![ImageSpec {
            target,
            device: CONNECTX_3,
            kind: Kind::LegacyRom,
        }],
    }
}

impl ImageSpec {
    fn extension(&self) -> &'static str {
        if self.kind == Kind::LegacyMrom {
            "mrom"
        } else {
            "rom"
        }
    }

    /// Built with `-DFLASH_CONFIGURATION` (NV settings, Ctrl-B menu): the images to burn.
    pub fn flash_configuration(&self) -> bool {
        self.kind == Kind::LegacyMrom
    }

    /// FlexBoot's make target, relative to its `src/`.
    pub fn make_target(&self) -> String {
        format!("bin/{}.{}", self.device.name, self.extension())
    }

    /// The linked ELF FlexBoot keeps next to the image.
    pub fn elf_intermediate(&self) -> String {
        format!("{}.tmp", self.make_target())
    }

    /// Its path in the package: `cx3/flexboot-ConnectX-3-15b31003.mrom`.
    pub fn package_file(&self) -> String {
        let id = self.device.pci_id;
        format!(
            "{}/flexboot-{}-{:04x}{:04x}.{}",
            self.target.name(),
            self.device.name,
            id.vendor,
            id.device,
            self.extension()
        )
    }
}

/// The vendor build line from FlexBoot's `src/README`, for one family with or without
/// flash configuration, plus `-fno-PIE`: gcc 12 builds position-independent code by
/// default, iPXE's `-nopie` probe fails silently with it, and the link then fails.
///
/// The README's `-D__MLX_DEV_ID_00ff=…` is left out: nothing in the tree reads it (nor
/// `__MLX_0001_MAJOR_VER_`/`__MLX_MIN_SUB_MIN_VER_`, kept for fidelity), and without it
/// both devices of a family share one tree. `__BUILD_VERSION__` is the banner's version.
pub fn extra_cflags(family: Family, flash_configuration: bool, release: &str) -> String {
    let minor = release
        .rsplit('.')
        .next()
        .and_then(|minor| minor.parse::<u32>().ok())
        .unwrap_or(0);
    let mut flags = vec![
        "-fno-PIE".to_string(),
        "-DMLX_BUILD".to_string(),
        "-D__MLX_0001_MAJOR_VER_=0x00100003".to_string(),
        format!("-D__MLX_MIN_SUB_MIN_VER_=0x0004{minor:04x}"),
        format!("-D__BUILD_VERSION__=\\\"{release}\\\""),
    ];
    if flash_configuration {
        flags.push("-DFLASH_CONFIGURATION".to_string());
    }
    for dir in [
        "mlx_utils_flexboot/include/",
        "mlx_utils/include/",
        "mlx_utils/include/public/",
        "mlx_utils/include/private/",
        "mlx_nodnic/include/",
        "mlx_nodnic/include/public/",
        "mlx_nodnic/include/private/",
        "mlx_utils_flexboot/tests/include/",
        "mlx_utils/mlx_lib/mlx_reg_access/",
        "mlx_utils/mlx_lib/mlx_nvconfig/",
        "mlx_utils/mlx_lib/mlx_vmac/",
    ] {
        flags.push(format!("-Idrivers/infiniband/{dir}"));
    }
    flags.push(family.define().to_string());
    flags.join(" ")
}

/// Everything [`build`] needs.
#[derive(Debug, Clone)]
pub struct FlexbootOptions {
    /// A FlexBoot clone (work tree or bare) or plain tree; `None`: clone the pinned URL.
    pub flexboot_src: Option<PathBuf>,
    /// What to build (`qemu` is the ConnectX-3 `.rom` for the smoke test).
    pub targets: Vec<Target>,
    /// The embedded script.
    pub embed: PathBuf,
    /// make's `-j`.
    pub jobs: usize,
    /// Stream make's output instead of logging it to `<tree>/make.log`.
    pub verbose: bool,
    /// Print the apt-get line for missing packages instead of running it.
    pub no_install: bool,
    /// Where the source cache and build trees live (`target/flexboot`).
    pub work_dir: PathBuf,
}

impl FlexbootOptions {
    /// Defaults: the NIC targets, the shared script, every core, `target/flexboot`.
    pub fn new(flexboot_src: Option<PathBuf>) -> FlexbootOptions {
        FlexbootOptions {
            flexboot_src,
            targets: vec![Target::Cx3, Target::Cx4],
            embed: project_root().join(inputs::DEFAULT_SCRIPT),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            verbose: false,
            no_install: false,
            work_dir: project_root().join("target/flexboot"),
        }
    }
}

/// One built and verified image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// What was built.
    pub spec: ImageSpec,
    /// The image in its build tree.
    pub path: PathBuf,
    /// The linked ELF it was verified from.
    pub elf: PathBuf,
    /// The image's bytes.
    pub bytes: Vec<u8>,
    /// The key of the tree it was built in (source, patches, flags) plus the script.
    pub input_key: String,
    /// What the ELF checks found.
    pub report: verify::Report,
    /// What passed, for the manifest (`ipv6`, `ip_ver-default:IPv6`, `rom-verify:…`).
    pub checks: Vec<String>,
}

/// One build tree: a family and flag set.
#[derive(Debug, Clone)]
pub struct Tree {
    /// `cx3-flash`, `cx3-noflash`, `cx4-flash`.
    pub name: String,
    /// `EXTRA_CFLAGS` it was built with.
    pub extra_cflags: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Seconds make took in this run.
    pub make_seconds: f64,
}

/// What a build read and did, for the package and the report.
#[derive(Debug, Clone)]
pub struct Build {
    /// The pin from the lock file.
    pub pin: FlexbootPin,
    /// Where the source came from.
    pub source: Source,
    /// The patches applied, in order.
    pub patches: Vec<Patch>,
    /// The embedded script.
    pub script: InputFile,
    /// The trees built.
    pub trees: Vec<Tree>,
    /// The images, in target order.
    pub images: Vec<BuiltImage>,
}

/// Builds and verifies every image of `opts.targets`: the ELF checks, then `rom verify`.
/// An image that fails makes the whole call fail.
pub fn build(sh: &Shell, opts: &FlexbootOptions) -> Result<Build> {
    if opts.targets.is_empty() {
        bail!("no --target given; choose from cx3, cx4, qemu");
    }
    let root = project_root();
    let pin = FlexbootPin::load(&root.join(lock::LOCK_PATH))?;
    let script = InputFile::read(&opts.embed, "script to embed")?;
    let problems = inputs::lint_script(&script.bytes);
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{}:{}: {}", opts.embed.display(), p.line, p.message))
            .collect();
        bail!("the script to embed has problems:\n{}", lines.join("\n"));
    }
    let patch_dir = root.join(PATCH_DIR);
    let patches = inputs::read_patches(&patch_dir)?;
    if patches.is_empty() {
        bail!(
            "no patches in {}: FlexBoot does not build without them",
            patch_dir.display()
        );
    }
    crate::deps::ensure(sh, BUILD_PACKAGES, opts.no_install)?;
    // One build at a time in a work directory (a test and a CLI run may overlap).
    let _lock = cache::WorkLock::acquire(&opts.work_dir, Duration::from_secs(30 * 60))?;
    let source = source::resolve(sh, opts.flexboot_src.as_deref(), &opts.work_dir, &pin)?;
    let identity = source.identity(&pin)?;

    let mut targets = opts.targets.clone();
    targets.sort();
    targets.dedup();
    let specs: Vec<ImageSpec> = targets.iter().flat_map(|&target| images(target)).collect();
    // One tree per family and flash setting; all its make targets in one call.
    let mut tree_ids: Vec<(Family, bool)> = specs
        .iter()
        .map(|spec| (spec.device.family, spec.flash_configuration()))
        .collect();
    tree_ids.sort();
    tree_ids.dedup();

    let mut trees = Vec::new();
    let mut built = Vec::new();
    for (family, flash) in tree_ids {
        let tree_specs: Vec<&ImageSpec> = specs
            .iter()
            .filter(|spec| spec.device.family == family && spec.flash_configuration() == flash)
            .collect();
        let cflags = extra_cflags(family, flash, &pin.release);
        let key = source::tree_key(&identity, &patches, &cflags);
        let name = format!(
            "{}-{}",
            family.short(),
            if flash { "flash" } else { "noflash" }
        );
        let dir = opts.work_dir.join(format!("{name}-{key}"));
        let fresh = source::prepare_tree(sh, &source, &pin, &patch_dir, &patches, &dir)?;
        let embed = dir.join("sixboot-embed.ipxe");
        crate::build_rom::source::write_if_changed(&embed, &script.bytes)?;
        let input_key = input_key(&key, &script.bytes);
        let make_targets: Vec<String> = tree_specs.iter().map(|spec| spec.make_target()).collect();
        eprintln!(
            "make {} in {}{}",
            make_targets.join(" "),
            dir.display(),
            if fresh { " (fresh tree)" } else { "" }
        );
        let started = Instant::now();
        let call = MakeCall {
            src: &dir.join("src"),
            cflags: &cflags,
            embed: &embed,
            epoch: pin.pin.epoch,
            build_id: &input_key[..8],
            targets: &make_targets,
        };
        call.run(sh, opts)?;
        let make_seconds = started.elapsed().as_secs_f64();
        eprintln!("  done in {make_seconds:.1} s");
        for spec in tree_specs {
            built.push(check_image(
                *spec,
                &dir,
                &pin,
                &patches,
                &script.bytes,
                &input_key,
            )?);
        }
        source::prune_stale_trees(&opts.work_dir, &name, &dir)?;
        trees.push(Tree {
            name,
            extra_cflags: cflags,
            dir,
            make_seconds,
        });
    }
    built.sort_by_key(|image| (image.spec.target, image.spec.device.pci_id.device));
    Ok(Build {
        pin,
        source,
        patches,
        script,
        trees,
        images: built,
    })
}

/// Builds, verifies and packages into `out` (manifest, SHA256SUMS, BURN.md), then prints
/// a summary: what `cargo xtask build-rom --flavor flexboot` runs.
pub fn build_rom(sh: &Shell, opts: &FlexbootOptions, out: &Path) -> Result<Build> {
    let started = Instant::now();
    let build = build(sh, opts)?;
    package::publish(&build, out)?;
    print_summary(&build, out, started.elapsed(), opts.verbose);
    Ok(build)
}

/// The ELF checks and `rom verify` for one image.
fn check_image(
    spec: ImageSpec,
    tree: &Path,
    pin: &FlexbootPin,
    patches: &[Patch],
    script: &[u8],
    input_key: &str,
) -> Result<BuiltImage> {
    let src = tree.join("src");
    let path = src.join(spec.make_target());
    let elf = src.join(spec.elf_intermediate());
    let banner = format!("FlexBoot v{}", pin.release);
    let patch_symbols: Vec<&str> = patches
        .iter()
        .flat_map(|patch| patch.verify_symbols.iter().map(String::as_str))
        .collect();
    let family = spec.device.family;
    let expect = verify::Expectations {
        driver: family.driver_symbol(),
        defaults_reader: family.defaults_reader(),
        default_ip_ver: IP_VER_IPV6,
        script,
        banner: &banner,
        patch_symbols: &patch_symbols,
    };
    let report = verify::check_elf_file(&elf, &expect)?;
    let bytes =
        std::fs::read(&path).with_context(|| format!("make did not produce {}", path.display()))?;
    let rom_check = romcheck::verify(&bytes, spec.kind, Some(spec.device.pci_id))
        .with_context(|| format!("{} failed `rom verify`", path.display()))?;
    let mut checks = vec![
        format!("driver:{}", family.driver_symbol()),
        "ipv6".to_string(),
        format!(
            "ip_ver-default:{}",
            verify::ip_ver_name(report.default_ip_ver)
        ),
        format!("ip_ver-read-by:{}", family.defaults_reader()),
        "script".to_string(),
        format!("banner:{banner}"),
    ];
    checks.extend(
        patch_symbols
            .iter()
            .map(|symbol| format!("symbol:{symbol}")),
    );
    checks.push(rom_check);
    Ok(BuiltImage {
        spec,
        path,
        elf,
        bytes,
        input_key: input_key.to_string(),
        report,
        checks,
    })
}

/// A hash of the tree key and the script: what an image's bytes follow from. Its first
/// 8 hex digits are the ROM's build id (instead of FlexBoot's random one).
fn input_key(tree_key: &str, script: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(tree_key.as_bytes());
    hash.update(b"\0script\0");
    hash.update(script);
    hex::encode(hash.finalize())
}

/// One call of FlexBoot's make.
struct MakeCall<'a> {
    src: &'a Path,
    cflags: &'a str,
    embed: &'a Path,
    epoch: i64,
    build_id: &'a str,
    targets: &'a [String],
}

impl MakeCall<'_> {
    /// The variables on make's command line.
    fn variables(&self) -> Vec<String> {
        vec![
            "NO_WERROR=1".to_string(),
            format!("EMBED={}", self.embed.display()),
            format!("EXTRA_CFLAGS={}", self.cflags),
            // Same inputs, same bytes: no wall-clock timestamp, no random build id.
            format!("BUILD_TIMESTAMP={}", self.epoch),
            format!("BUILD_ID_CMD=echo 0x{}", self.build_id),
        ]
    }

    fn run(&self, sh: &Shell, opts: &FlexbootOptions) -> Result<()> {
        let (src, targets) = (self.src, self.targets);
        let jobs = format!("-j{}", opts.jobs.max(1));
        let vars = self.variables();
        let make = cmd!(sh, "make -C {src} {jobs} {vars...} {targets...}").quiet();
        if opts.verbose {
            return make
                .run()
                .with_context(|| format!("FlexBoot make failed in {}", src.display()));
        }
        let log = src.parent().unwrap_or(src).join("make.log");
        let output = make
            .ignore_status()
            .output()
            .context("cannot run make (Debian package make)")?;
        let mut text = output.stdout;
        text.extend(&output.stderr);
        std::fs::write(&log, &text).with_context(|| format!("cannot write {}", log.display()))?;
        if !output.status.success() {
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            bail!(
                "FlexBoot make failed ({}); the end of its log:\n{}\nwhole log: {}",
                output.status,
                tail.join("\n"),
                log.display()
            );
        }
        Ok(())
    }
}

fn print_summary(build: &Build, out: &Path, elapsed: Duration, verbose: bool) {
    println!(
        "FlexBoot {} ({}) from {}; patches: {}",
        build.pin.release,
        build.pin.pin.short(),
        build.source.describe(),
        build
            .patches
            .iter()
            .map(|patch| patch.file.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for tree in &build.trees {
        println!(
            "tree {:<12} make {:>6.1} s  {}",
            tree.name,
            tree.make_seconds,
            tree.dir.display()
        );
    }
    println!(
        "{:<6}  {:<40}  {:<11}  {:<9}  {:>7}  ip_ver",
        "target", "file", "kind", "pci", "bytes"
    );
    for image in &build.images {
        println!(
            "{:<6}  {:<40}  {:<11}  {:<9}  {:>7}  {}",
            image.spec.target.name(),
            image.spec.package_file(),
            if image.spec.kind == Kind::LegacyMrom {
                "legacy-mrom"
            } else {
                "legacy-rom"
            },
            image.spec.device.pci_id.to_string(),
            image.bytes.len(),
            verify::ip_ver_name(image.report.default_ip_ver)
        );
        if verbose {
            println!(
                "        {}: sixboot_default_ip_ver = {} at {:#x}, loaded {} time(s) in {}",
                image.elf.display(),
                image.report.default_ip_ver,
                image.report.default_ip_ver_address,
                image.report.reader_references,
                image.spec.device.family.defaults_reader()
            );
        }
    }
    println!(
        "{}: {} images + manifest.json, SHA256SUMS, BURN.md ({:.1} s)",
        out.display(),
        build.images.len(),
        elapsed.as_secs_f64()
    );
}

/// Boots the QEMU image of `build` and checks that the banner, the script's first
/// message and the fall-through to the BIOS appear on the console, in that order.
pub fn smoke_boot(sh: &Shell, build: &Build, work_dir: &Path) -> Result<qemu::Boot> {
    let image = build
        .images
        .iter()
        .find(|image| image.spec.target == Target::Qemu)
        .context("no QEMU image was built (--target qemu)")?;
    let banner = format!("FlexBoot v{}", build.pin.release);
    let echoes = qemu::echo_texts(&String::from_utf8_lossy(&build.script.bytes));
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
        sh,
        &image.path,
        &work_dir.join("smoke-serial.log"),
        &expect,
        Duration::from_secs(120),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_flexboot_make_targets_and_pci_ids() {
        let cx3: Vec<String> = images(Target::Cx3)
            .iter()
            .map(|s| s.make_target())
            .collect();
        assert_eq!(cx3, ["bin/ConnectX-3.mrom", "bin/ConnectX-3Pro.mrom"]);
        let cx4: Vec<(String, String)> = images(Target::Cx4)
            .iter()
            .map(|s| (s.make_target(), s.device.pci_id.to_string()))
            .collect();
        assert_eq!(
            cx4,
            [
                ("bin/ConnectX-4.mrom".to_string(), "15b3:1013".to_string()),
                ("bin/ConnectX-4Lx.mrom".to_string(), "15b3:1015".to_string())
            ]
        );
        let qemu = images(Target::Qemu);
        assert_eq!(qemu[0].make_target(), "bin/ConnectX-3.rom");
        assert_eq!(qemu[0].elf_intermediate(), "bin/ConnectX-3.rom.tmp");
        assert!(!qemu[0].flash_configuration());
        assert_eq!(
            qemu[0].package_file(),
            "qemu/flexboot-ConnectX-3-15b31003.rom"
        );
        assert_eq!(
            images(Target::Cx3)[1].package_file(),
            "cx3/flexboot-ConnectX-3Pro-15b31007.mrom"
        );
    }

    #[test]
    fn flags_follow_the_vendor_build_line() {
        let cx3 = extra_cflags(Family::ConnectX3, true, "3.4.812");
        for flag in [
            "-fno-PIE",
            "-DMLX_BUILD",
            "-D__BUILD_VERSION__=\\\"3.4.812\\\"",
            "-D__MLX_MIN_SUB_MIN_VER_=0x0004032c",
            "-DFLASH_CONFIGURATION",
            "-Idrivers/infiniband/mlx_utils/mlx_lib/mlx_nvconfig/",
            "-DDEVICE_CX3",
        ] {
            assert!(
                cx3.split(' ').any(|f| f == flag),
                "{flag} missing from {cx3}"
            );
        }
        assert!(!cx3.contains("DEVICE_CX4"));
        let qemu = extra_cflags(Family::ConnectX3, false, "3.4.812");
        assert!(!qemu.contains("FLASH_CONFIGURATION"));
        let cx4 = extra_cflags(Family::ConnectX4, true, "3.4.812");
        assert!(cx4.ends_with("-DDEVICE_CX4"));
        // The README's per-device id would split a family into two trees.
        assert!(!cx4.contains("__MLX_DEV_ID_00ff"));
    }

    #[test]
    fn make_gets_fixed_timestamp_and_build_id() {
        let targets = ["bin/ConnectX-3.rom".to_string()];
        let call = MakeCall {
            src: Path::new("/t/src"),
            cflags: "-fno-PIE -DDEVICE_CX3",
            embed: Path::new("/t/sixboot-embed.ipxe"),
            epoch: 1_467_718_755,
            build_id: "0123abcd",
            targets: &targets,
        };
        assert_eq!(
            call.variables(),
            [
                "NO_WERROR=1",
                "EMBED=/t/sixboot-embed.ipxe",
                "EXTRA_CFLAGS=-fno-PIE -DDEVICE_CX3",
                "BUILD_TIMESTAMP=1467718755",
                "BUILD_ID_CMD=echo 0x0123abcd"
            ]
        );
    }

    #[test]
    fn input_keys_follow_tree_and_script() {
        assert_eq!(input_key("abc", b"x"), input_key("abc", b"x"));
        assert_ne!(input_key("abc", b"x"), input_key("abc", b"y"));
        assert_ne!(input_key("abc", b"x"), input_key("abd", b"x"));
    }

    #[test]
    fn the_shared_script_echoes_something_the_smoke_test_can_find() {
        let script = std::fs::read(project_root().join(inputs::DEFAULT_SCRIPT)).unwrap();
        assert!(inputs::lint_script(&script).is_empty());
        assert!(!qemu::echo_texts(&String::from_utf8_lossy(&script)).is_empty());
    }

    /// The real thing: export the pinned FlexBoot, patch, build the QEMU ConnectX-3
    /// `.rom` and the ConnectX-4 `.mrom`s, verify them, package them, and boot the `.rom`
    /// in QEMU to its embedded script.
    #[test]
    fn flexboot_builds_with_ipv6_default_and_boots_its_script_in_qemu() {
        let Some(src) = std::env::var_os("FLEXBOOT_SRC") else {
            eprintln!("SKIPPED: FLEXBOOT_SRC not set");
            return;
        };
        let sh = Shell::new().unwrap();
        sh.change_dir(project_root());
        let mut opts = FlexbootOptions::new(Some(PathBuf::from(src)));
        opts.targets = vec![Target::Qemu, Target::Cx4];
        let out = opts.work_dir.join("test-package");
        let build = build_rom(&sh, &opts, &out).unwrap();
        let files: Vec<String> = build
            .images
            .iter()
            .map(|image| image.spec.package_file())
            .collect();
        assert_eq!(
            files,
            [
                "cx4/flexboot-ConnectX-4-15b31013.mrom",
                "cx4/flexboot-ConnectX-4Lx-15b31015.mrom",
                "qemu/flexboot-ConnectX-3-15b31003.rom"
            ]
        );
        for image in &build.images {
            assert_eq!(
                image.report.default_ip_ver,
                IP_VER_IPV6,
                "{}",
                image.elf.display()
            );
            assert!(image.report.reader_references >= 1);
            assert_eq!(image.report.script_len, build.script.bytes.len());
            // A legacy ROM's size byte caps it at 255 * 512 bytes.
            let size = image.bytes.len();
            assert!(
                size > 64 * 1024 && size <= 130_560,
                "{}: {size}",
                image.path.display()
            );
        }
        let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
        assert_eq!(sums.lines().count(), 3, "{sums}");
        let burn = std::fs::read_to_string(out.join("BURN.md")).unwrap();
        assert!(
            burn.contains("mlxconfig -d <pci> set IP_VER=IPv6"),
            "{burn}"
        );
        let boot = smoke_boot(&sh, &build, &opts.work_dir).unwrap();
        assert!(
            boot.console.contains("FlexBoot v3.4.812"),
            "{}",
            boot.console
        );
        eprintln!("smoke boot: {:.1} s\n{}", boot.seconds, boot.console);
    }
}

//! `cargo xtask build-rom --flavor flexboot` (issue 7): Mellanox's own FlexBoot 3.4.812,
//! rebuilt with IPv6 as its default boot protocol and sixboot's embedded script.
//!
//! FlexBoot keeps its boot IP version in the NIC's flash and falls back to a default
//! compiled in; `patches/flexboot/` makes that default IPv6 and lets today's perl build
//! the tree. Each family (ConnectX-3, ConnectX-4) and each set of compiler flags gets its
//! own exported tree under `target/flexboot/`, because FlexBoot's make does not rebuild
//! when `EXTRA_CFLAGS` change (and its `make clean` needs bash). The linked ELF of every
//! image is checked (see [`verify`]) before the image is handed on.
//!
//! Entry point for `build_rom.rs`: [`build`] with [`FlexbootOptions`]; [`FlexbootArgs`]
//! holds the command-line flags.

pub mod qemu;
pub mod source;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::project_root;
use source::{Patch, Pin, Source};

/// The lock file holding the `[flexboot]` pin, relative to the project root.
pub const LOCK_PATH: &str = "ipxe-config/flexboot.lock";
/// FlexBoot patches, applied in name order.
pub const PATCH_DIR: &str = "patches/flexboot";
/// The embedded script shared with the default flavour.
pub const DEFAULT_EMBED: &str = "ipxe-config/embed.ipxe";
/// FlexBoot's value for IPv6 in `ip_ver` (`VAL_IPV6` in `driver_settings.h`).
pub const IP_VER_IPV6: u8 = 1;

/// What `--target` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Target {
    /// ConnectX-3 and ConnectX-3 Pro (15b3:1003, 15b3:1007) `.mrom` images to burn.
    Cx3,
    /// ConnectX-4 and ConnectX-4 Lx (15b3:1013, 15b3:1015) `.mrom` images to burn.
    Cx4,
    /// A ConnectX-3 `.rom` without flash configuration, which boots in QEMU as a plain
    /// option ROM (the smoke test); not for burning.
    Qemu,
}

impl Target {
    /// The name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Target::Cx3 => "cx3",
            Target::Cx4 => "cx4",
            Target::Qemu => "qemu",
        }
    }

    /// The images this target builds.
    pub fn images(self) -> Vec<ImageSpec> {
        let burn = |device| ImageSpec {
            target: self,
            device,
            kind: Kind::Mrom,
        };
        match self {
            Target::Cx3 => vec![burn(CONNECTX_3), burn(CONNECTX_3_PRO)],
            Target::Cx4 => vec![burn(CONNECTX_4), burn(CONNECTX_4_LX)],
            Target::Qemu => vec![ImageSpec {
                target: self,
                device: CONNECTX_3,
                kind: Kind::QemuRom,
            }],
        }
    }
}

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
    /// PCI vendor ID (Mellanox: 0x15b3).
    pub vendor_id: u16,
    /// PCI device ID.
    pub device_id: u16,
    /// Driver family.
    pub family: Family,
}

/// ConnectX-3 (15b3:1003).
pub const CONNECTX_3: Device = Device {
    name: "ConnectX-3",
    vendor_id: 0x15b3,
    device_id: 0x1003,
    family: Family::ConnectX3,
};
/// ConnectX-3 Pro (15b3:1007).
pub const CONNECTX_3_PRO: Device = Device {
    name: "ConnectX-3Pro",
    vendor_id: 0x15b3,
    device_id: 0x1007,
    family: Family::ConnectX3,
};
/// ConnectX-4 (15b3:1013).
pub const CONNECTX_4: Device = Device {
    name: "ConnectX-4",
    vendor_id: 0x15b3,
    device_id: 0x1013,
    family: Family::ConnectX4,
};
/// ConnectX-4 Lx (15b3:1015).
pub const CONNECTX_4_LX: Device = Device {
    name: "ConnectX-4Lx",
    vendor_id: 0x15b3,
    device_id: 0x1015,
    family: Family::ConnectX4,
};

/// The kind of image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `.mrom` with flash configuration (Ctrl-B menu, NV settings): burned to the NIC.
    Mrom,
    /// `.rom` without flash configuration: runs in QEMU from `-option-rom`.
    QemuRom,
}

impl Kind {
    fn extension(self) -> &'static str {
        match self {
            Kind::Mrom => "mrom",
            Kind::QemuRom => "rom",
        }
    }

    fn flash_configuration(self) -> bool {
        self == Kind::Mrom
    }
}

/// One image to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    /// The `--target` it belongs to.
    pub target: Target,
    /// The NIC it is for.
    pub device: Device,
    /// `.mrom` or QEMU `.rom`.
    pub kind: Kind,
}

impl ImageSpec {
    /// FlexBoot's make target, relative to its `src/`.
    pub fn make_target(&self) -> String {
        format!("bin/{}.{}", self.device.name, self.kind.extension())
    }

    /// The linked ELF FlexBoot keeps next to the image.
    pub fn elf_intermediate(&self) -> String {
        format!("{}.tmp", self.make_target())
    }

    /// The file name in the output directory, e.g. `flexboot-3.4.812-ConnectX-3-15b31003.mrom`.
    pub fn output_name(&self, release: &str) -> String {
        let qemu = if self.kind == Kind::QemuRom {
            "-qemu"
        } else {
            ""
        };
        format!(
            "flexboot-{release}-{}-{:04x}{:04x}{qemu}.{}",
            self.device.name,
            self.device.vendor_id,
            self.device.device_id,
            self.kind.extension()
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
    /// What to build.
    pub targets: Vec<Target>,
    /// The embedded script.
    pub embed: PathBuf,
    /// make's `-j`.
    pub jobs: usize,
    /// Stream make's output instead of logging it to `<tree>/make.log`.
    pub verbose: bool,
    /// Where source cache and build trees live (`target/flexboot`).
    pub work_dir: PathBuf,
}

impl FlexbootOptions {
    /// Defaults for a build from the project root: all NIC targets, the shared script,
    /// every core, `target/flexboot`.
    pub fn new(flexboot_src: Option<PathBuf>) -> FlexbootOptions {
        FlexbootOptions {
            flexboot_src,
            targets: vec![Target::Cx3, Target::Cx4],
            embed: project_root().join(DEFAULT_EMBED),
            jobs: default_jobs(),
            verbose: false,
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
    /// Image size in bytes.
    pub size: u64,
    /// What the ELF checks found.
    pub report: verify::Report,
}

/// Inputs every image of one build shares, for the manifest.
#[derive(Debug, Clone)]
pub struct BuildInputs {
    /// The pin from the lock file.
    pub pin: Pin,
    /// Where the source came from.
    pub source: Source,
    /// The patches applied, in order.
    pub patches: Vec<Patch>,
    /// The embedded script's bytes.
    pub script: Vec<u8>,
}

/// Builds and verifies every image of `opts.targets`. An image whose ELF fails a check
/// makes the whole call fail. The entry point `build_rom.rs` calls for `--flavor flexboot`.
#[allow(dead_code)] // until build_rom.rs wires the flavour
pub fn build(sh: &Shell, opts: &FlexbootOptions) -> Result<Vec<BuiltImage>> {
    build_with_inputs(sh, opts).map(|(images, _)| images)
}

/// [`build`], also returning the inputs for packaging.
pub fn build_with_inputs(
    sh: &Shell,
    opts: &FlexbootOptions,
) -> Result<(Vec<BuiltImage>, BuildInputs)> {
    if opts.targets.is_empty() {
        bail!("no --target given; choose from cx3, cx4, qemu");
    }
    let root = project_root();
    let pin = Pin::load(&root.join(LOCK_PATH))?;
    let script = std::fs::read(&opts.embed)
        .with_context(|| format!("cannot read the embedded script {}", opts.embed.display()))?;
    lint_script(&script)
        .with_context(|| format!("{} is not a usable iPXE script", opts.embed.display()))?;
    let patches = source::read_patches(&root.join(PATCH_DIR))?;
    crate::deps::ensure(sh, BUILD_PACKAGES, false)?;
    let source = source::resolve(sh, opts.flexboot_src.as_deref(), &opts.work_dir, &pin)?;

    let mut specs: Vec<ImageSpec> = Vec::new();
    for target in &opts.targets {
        for spec in target.images() {
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
    }
    // One tree per family and flash setting; make targets of one tree in one call.
    let mut trees: Vec<(Family, bool)> = specs
        .iter()
        .map(|spec| (spec.device.family, spec.kind.flash_configuration()))
        .collect();
    trees.sort();
    trees.dedup();

    let mut images = Vec::new();
    for (family, flash) in trees {
        let tree_specs: Vec<&ImageSpec> = specs
            .iter()
            .filter(|spec| spec.device.family == family && spec.kind.flash_configuration() == flash)
            .collect();
        let cflags = extra_cflags(family, flash, &pin.release);
        let key = source::tree_key(&pin, &patches, &cflags);
        let name = format!(
            "{}-{}-{key}",
            family.short(),
            if flash { "flash" } else { "noflash" }
        );
        let tree = opts.work_dir.join(name);
        let fresh = source::prepare_tree(sh, &source, &pin, &patches, &tree)?;
        let src = tree.join("src");
        let embed = tree.join("sixboot-embed.ipxe");
        source::write_if_changed(&embed, &script)?;
        let build_id = build_id(&key, &script);
        let targets: Vec<String> = tree_specs.iter().map(|spec| spec.make_target()).collect();
        let started = Instant::now();
        eprintln!(
            "make {} in {}{}",
            targets.join(" "),
            tree.display(),
            if fresh { " (fresh tree)" } else { "" }
        );
        run_make(
            sh, &src, opts, &cflags, &embed, pin.epoch, &build_id, &targets,
        )?;
        eprintln!("  done in {:.1} s", started.elapsed().as_secs_f64());

        for spec in tree_specs {
            let path = src.join(spec.make_target());
            let elf = src.join(spec.elf_intermediate());
            let banner = format!("FlexBoot v{}", pin.release);
            let expect = verify::Expectations {
                driver: spec.device.family.driver_symbol(),
                defaults_reader: spec.device.family.defaults_reader(),
                default_ip_ver: IP_VER_IPV6,
                script: &script,
                banner: &banner,
            };
            let report = verify::check_elf_file(&elf, &expect)?;
            let bytes = std::fs::read(&path)
                .with_context(|| format!("make did not produce {}", path.display()))?;
            verify_rom(&bytes, spec.device)
                .with_context(|| format!("{} failed `rom verify`", path.display()))?;
            let size = bytes.len() as u64;
            images.push(BuiltImage {
                spec: *spec,
                path,
                elf,
                size,
                report,
            });
        }
    }
    Ok((
        images,
        BuildInputs {
            pin,
            source,
            patches,
            script,
        },
    ))
}

/// The option-ROM checks `sixboot rom verify` makes (headers, checksums, lengths,
/// last-image bit), plus the device's PCI ID in every image.
pub fn verify_rom(bytes: &[u8], device: Device) -> Result<()> {
    let rom = sixboot::rom::Rom::parse(bytes)?;
    let findings = rom.verify(Some(sixboot::rom::PciId::new(
        device.vendor_id,
        device.device_id,
    )));
    if !findings.is_empty() {
        let list: Vec<String> = findings
            .iter()
            .map(|finding| format!("  {finding}"))
            .collect();
        bail!("{} problem(s):\n{}", findings.len(), list.join("\n"));
    }
    Ok(())
}

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

/// The first line must be exactly `#!ipxe`: anything else and iPXE runs nothing,
/// silently.
pub fn lint_script(script: &[u8]) -> Result<()> {
    let first = script.split(|&b| b == b'\n').next().unwrap_or_default();
    if first != b"#!ipxe" {
        bail!(
            "line 1 must be exactly `#!ipxe` (found {:?}); iPXE ignores a script without it",
            String::from_utf8_lossy(first)
        );
    }
    if script.contains(&b'\r') {
        bail!("the script has carriage returns (DOS line ends); save it with Unix line ends");
    }
    Ok(())
}

fn build_id(tree_key: &str, script: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(tree_key.as_bytes());
    hash.update(script);
    format!("0x{}", hex::encode(&hash.finalize()[..4]))
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[allow(clippy::too_many_arguments)]
fn run_make(
    sh: &Shell,
    src: &Path,
    opts: &FlexbootOptions,
    cflags: &str,
    embed: &Path,
    epoch: i64,
    build_id: &str,
    targets: &[String],
) -> Result<()> {
    let jobs = format!("-j{}", opts.jobs.max(1));
    let vars = [
        "NO_WERROR=1".to_string(),
        format!("EMBED={}", embed.display()),
        format!("EXTRA_CFLAGS={cflags}"),
        // Same inputs, same bytes: no wall-clock timestamp, no random build id.
        format!("BUILD_TIMESTAMP={epoch}"),
        format!("BUILD_ID_CMD=echo {build_id}"),
    ];
    let make = cmd!(sh, "make -C {src} {jobs} {vars...} {targets...}").quiet();
    let log = src.parent().unwrap_or(src).join("make.log");
    if opts.verbose {
        return make
            .run()
            .with_context(|| format!("FlexBoot make failed in {}", src.display()));
    }
    let output = make
        .ignore_status()
        .output()
        .context("cannot run make (Debian package make)")?;
    let mut text = output.stdout.clone();
    text.extend(&output.stderr);
    std::fs::write(&log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&text);
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "FlexBoot make failed ({}); the end of its log:\n{}\nwhole log: {}",
            output.status,
            tail.join("\n"),
            log.display()
        );
    }
    Ok(())
}

/// Command-line flags of the FlexBoot flavour (flattened into `build-rom`).
#[derive(Debug, Clone, Args)]
pub struct FlexbootArgs {
    /// A FlexBoot clone (work tree or bare repository) holding the pinned commit, or a
    /// plain tree; default: $FLEXBOOT_SRC, else clone the URL in ipxe-config/flexboot.lock.
    #[arg(long, value_name = "PATH")]
    pub flexboot_src: Option<PathBuf>,
    /// What to build: cx3, cx4, qemu (comma separated); default cx3,cx4.
    #[arg(long = "target", value_enum, value_delimiter = ',', default_values_t = [Target::Cx3, Target::Cx4])]
    pub targets: Vec<Target>,
    /// The embedded script (default ipxe-config/embed.ipxe).
    #[arg(long, value_name = "FILE")]
    pub embed: Option<PathBuf>,
    /// Parallel make jobs (default: all cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
    /// Stream make's output.
    #[arg(long)]
    pub verbose: bool,
    /// Where the images go.
    #[arg(long, value_name = "DIR", default_value = "dist/flexboot")]
    pub out: PathBuf,
    /// Boot the QEMU image (built when asked for with --target qemu) and check its console.
    #[arg(long)]
    pub smoke: bool,
}

impl FlexbootArgs {
    /// Builds, verifies and copies the images to `--out`, then prints a summary.
    pub fn run(self, sh: &Shell) -> Result<()> {
        let flexboot_src = self
            .flexboot_src
            .clone()
            .or_else(|| std::env::var_os("FLEXBOOT_SRC").map(PathBuf::from));
        let mut opts = FlexbootOptions::new(flexboot_src);
        opts.targets = self.targets.clone();
        if self.smoke && !opts.targets.contains(&Target::Qemu) {
            opts.targets.push(Target::Qemu);
        }
        if let Some(embed) = &self.embed {
            opts.embed = embed.clone();
        }
        if let Some(jobs) = self.jobs {
            opts.jobs = jobs;
        }
        opts.verbose = self.verbose;
        let started = Instant::now();
        let (images, inputs) = build_with_inputs(sh, &opts)?;
        let out = project_root().join(&self.out);
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        println!(
            "FlexBoot {} ({}) from {}, patches: {}",
            inputs.pin.release,
            inputs.pin.short(),
            inputs.source.describe(),
            inputs
                .patches
                .iter()
                .map(|patch| patch.file.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "{:<48} {:>6} {:>9} {:>8} {:>8}",
            "image", "target", "pci", "bytes", "ip_ver"
        );
        for image in &images {
            let name = image.spec.output_name(&inputs.pin.release);
            std::fs::copy(&image.path, out.join(&name)).with_context(|| {
                format!("cannot copy {} to {}", image.path.display(), out.display())
            })?;
            println!(
                "{:<48} {:>6} {:04x}:{:04x} {:>8} {:>8}",
                name,
                image.spec.target.name(),
                image.spec.device.vendor_id,
                image.spec.device.device_id,
                image.size,
                verify::ip_ver_name(image.report.default_ip_ver)
            );
            if self.verbose {
                println!(
                    "  {}: sixboot_default_ip_ver = {} at {:#x}, loaded {} time(s) by {}, script {} bytes",
                    image.elf.display(),
                    image.report.default_ip_ver,
                    image.report.default_ip_ver_address,
                    image.report.reader_references,
                    image.spec.device.family.defaults_reader(),
                    image.report.script_len
                );
            }
        }
        println!(
            "built and verified in {:.1} s, images in {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
        if self.smoke {
            let image = images
                .iter()
                .find(|image| image.spec.kind == Kind::QemuRom)
                .context("no QEMU image was built")?;
            let boot = smoke_boot(sh, image, &inputs, &opts.work_dir)?;
            if self.verbose {
                println!("{}", boot.console);
            }
            println!(
                "QEMU smoke boot of {} passed in {:.1} s",
                image.path.display(),
                boot.seconds
            );
        }
        Ok(())
    }
}

/// Boots the QEMU image and checks that the banner, the script's first message and the
/// fall-through to the BIOS appear on the console, in that order.
pub fn smoke_boot(
    sh: &Shell,
    image: &BuiltImage,
    inputs: &BuildInputs,
    work_dir: &Path,
) -> Result<qemu::Boot> {
    let banner = format!("FlexBoot v{}", inputs.pin.release);
    let echoes = qemu::echo_texts(&String::from_utf8_lossy(&inputs.script));
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
        let cx3: Vec<String> = Target::Cx3
            .images()
            .iter()
            .map(|s| s.make_target())
            .collect();
        assert_eq!(cx3, ["bin/ConnectX-3.mrom", "bin/ConnectX-3Pro.mrom"]);
        let cx4: Vec<(String, u16)> = Target::Cx4
            .images()
            .iter()
            .map(|s| (s.make_target(), s.device.device_id))
            .collect();
        assert_eq!(
            cx4,
            [
                ("bin/ConnectX-4.mrom".to_string(), 0x1013),
                ("bin/ConnectX-4Lx.mrom".to_string(), 0x1015)
            ]
        );
        let qemu = Target::Qemu.images();
        assert_eq!(qemu[0].make_target(), "bin/ConnectX-3.rom");
        assert_eq!(qemu[0].elf_intermediate(), "bin/ConnectX-3.rom.tmp");
        assert_eq!(
            qemu[0].output_name("3.4.812"),
            "flexboot-3.4.812-ConnectX-3-15b31003-qemu.rom"
        );
        assert_eq!(
            Target::Cx3.images()[1].output_name("3.4.812"),
            "flexboot-3.4.812-ConnectX-3Pro-15b31007.mrom"
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
    fn the_script_lint_wants_exactly_hash_bang_ipxe() {
        assert!(lint_script(b"#!ipxe\necho hi\n").is_ok());
        let err = lint_script(b"#!ipxe \necho hi\n").unwrap_err();
        assert!(format!("{err}").contains("line 1 must be exactly `#!ipxe`"));
        assert!(lint_script(b"#!gpxe\n").is_err());
        assert!(lint_script(b"#!ipxe\r\necho hi\r\n").is_err());
    }

    #[test]
    fn the_shared_script_passes_the_lint_and_echoes_something() {
        let script = std::fs::read(project_root().join(DEFAULT_EMBED)).unwrap();
        lint_script(&script).unwrap();
        assert!(!qemu::echo_texts(&String::from_utf8_lossy(&script)).is_empty());
    }

    #[test]
    fn build_ids_are_stable_and_follow_the_inputs() {
        assert_eq!(build_id("abc", b"x"), build_id("abc", b"x"));
        assert_ne!(build_id("abc", b"x"), build_id("abc", b"y"));
        assert_eq!(build_id("abc", b"x").len(), 10);
    }

    /// The real thing: export the pinned FlexBoot, patch, build the QEMU ConnectX-3
    /// `.rom` and the ConnectX-4 `.mrom`s, verify their ELFs, and boot the `.rom` in QEMU.
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
        let (images, inputs) = build_with_inputs(&sh, &opts).unwrap();
        let names: Vec<String> = images
            .iter()
            .map(|image| image.spec.make_target())
            .collect();
        assert_eq!(
            names,
            [
                "bin/ConnectX-3.rom",
                "bin/ConnectX-4.mrom",
                "bin/ConnectX-4Lx.mrom"
            ]
        );
        for image in &images {
            assert_eq!(
                image.report.default_ip_ver,
                IP_VER_IPV6,
                "{}",
                image.elf.display()
            );
            assert!(image.report.reader_references >= 1);
            assert_eq!(image.report.script_len, inputs.script.len());
            // A legacy ROM's size byte caps it at 255 * 512 bytes.
            assert!(
                image.size > 64 * 1024 && image.size <= 130_560,
                "{}: {}",
                image.path.display(),
                image.size
            );
        }
        let qemu_image = &images[0];
        let boot = smoke_boot(&sh, qemu_image, &inputs, &opts.work_dir).unwrap();
        assert!(
            boot.console.contains("FlexBoot v3.4.812"),
            "{}",
            boot.console
        );
        eprintln!("smoke boot: {:.1} s\n{}", boot.seconds, boot.console);
    }
}

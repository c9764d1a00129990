//! `sixboot rom inspect|verify|pack|split`: the shell around `sixboot::rom`.
//!
//! This file owns the file I/O: it reads whole files, hands bytes to the library, prints
//! what comes back, and writes outputs with `sixboot::atomic_file::write` (a temporary file
//! in the target directory, fsync, rename, fsync of the directory), so a failed or
//! interrupted command never leaves a partial ROM behind.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use sixboot::atomic_file;
use sixboot::rom::{self, Image, ImageKind, PackOptions, PciId, Rom};

#[derive(Debug, Subcommand)]
pub enum RomCommand {
    /// Decode every image in a PCI expansion-ROM file: headers, IDs, checksums, trailers.
    Inspect {
        /// The ROM file (.rom, .mrom, .efirom, or a combined image).
        file: PathBuf,
        /// Print JSON for scripts instead of text for people.
        #[arg(long)]
        json: bool,
    },
    /// Check a ROM before burning it; exits non-zero and lists every problem found.
    Verify {
        file: PathBuf,
        /// The PCI ID every image must carry (primary or in its device list), as VVVV:DDDD.
        #[arg(long, value_name = "VVVV:DDDD", value_parser = parse_pci_id)]
        device: Option<PciId>,
    },
    /// Combine a legacy and an EFI image into one ROM, fix checksums, stamp IDs and version.
    Pack {
        /// Legacy BIOS image(s) first: a .rom or .mrom (an .mrom brings its payload along).
        #[arg(long)]
        legacy: Option<PathBuf>,
        /// The UEFI image, an .efirom; it goes last.
        #[arg(long)]
        efi: Option<PathBuf>,
        /// Where to write the combined ROM (written atomically; never left half-written).
        #[arg(short, long)]
        output: PathBuf,
        /// PCI vendor ID to stamp into every image, in hex (with --device).
        #[arg(long, value_parser = parse_hex_id, requires = "device")]
        vendor: Option<u16>,
        /// PCI device ID to stamp into every image, in hex (with --vendor).
        #[arg(long, value_parser = parse_hex_id, requires = "vendor")]
        device: Option<u16>,
        /// Append mlxsign: version records (X.Y.Z) that `mstflint -i FILE qrom` shows.
        #[arg(long, value_name = "X.Y.Z", value_parser = parse_version)]
        version: Option<(u16, u16, u16)>,
    },
    /// Write each image of a ROM to its own file in DIR (image-N-KIND.rom), for repacking.
    Split {
        file: PathBuf,
        /// Directory for the images; created if missing.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn parse_pci_id(s: &str) -> Result<PciId, String> {
    s.parse::<PciId>().map_err(|e| e.to_string())
}

fn parse_hex_id(s: &str) -> Result<u16, String> {
    rom::parse_hex_u16(s).ok_or_else(|| format!("{s:?} is not a 16-bit hex ID (for example 15b3)"))
}

fn parse_version(s: &str) -> Result<(u16, u16, u16), String> {
    rom::parse_version(s).map_err(|e| e.to_string())
}

pub fn run(command: RomCommand) -> Result<ExitCode> {
    match command {
        RomCommand::Inspect { file, json } => {
            let (bytes, rom) = load(&file)?;
            if json {
                let value = serde_json::json!({
                    "file": file.display().to_string(),
                    "rom": rom,
                    "sha256": sha256_hex(&bytes),
                });
                out(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
            } else {
                out(&render(&file, &rom))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RomCommand::Verify { file, device } => {
            let (_, rom) = load(&file)?;
            let findings = rom.verify(device);
            if findings.is_empty() {
                let kinds: Vec<String> = rom.images.iter().map(|i| i.kind.name()).collect();
                out(&format!(
                    "{}: ok ({} image{}: {}{})\n",
                    file.display(),
                    rom.images.len(),
                    plural(rom.images.len()),
                    kinds.join(" + "),
                    device.map(|d| format!(", all for {d}")).unwrap_or_default(),
                ))?;
                Ok(ExitCode::SUCCESS)
            } else {
                for finding in &findings {
                    eprintln!("{}: {finding}", file.display());
                }
                eprintln!(
                    "error: {}: {} problem{} found; do not burn this ROM",
                    file.display(),
                    findings.len(),
                    plural(findings.len())
                );
                Ok(ExitCode::FAILURE)
            }
        }
        RomCommand::Pack {
            legacy,
            efi,
            output,
            vendor,
            device,
            version,
        } => {
            let paths: Vec<PathBuf> = legacy.into_iter().chain(efi).collect();
            if paths.is_empty() {
                bail!("nothing to pack: give --legacy FILE, --efi FILE or both");
            }
            let inputs = paths
                .iter()
                .map(|p| fs::read(p).with_context(|| format!("cannot read {}", p.display())))
                .collect::<Result<Vec<_>>>()?;
            let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let opts = PackOptions {
                pci_id: vendor.zip(device).map(|(v, d)| PciId::new(v, d)),
                version,
            };
            let packed = rom::pack(&slices, &opts).map_err(|err| match err {
                rom::RomError::InputNotRom { index, .. }
                | rom::RomError::InputBroken { index, .. }
                | rom::RomError::InputTrailingBytes { index, .. } => {
                    anyhow::anyhow!("{}: {err}", paths[index].display())
                }
                other => anyhow::anyhow!("cannot pack {}: {other}", output.display()),
            })?;
            atomic_file::write(&output, &packed)?;
            let rom = Rom::parse(&packed)?;
            let kinds: Vec<String> = rom.images.iter().map(|i| i.kind.name()).collect();
            out(&format!(
                "{}: {} bytes, {} image{} ({}){}{}\n",
                output.display(),
                packed.len(),
                rom.images.len(),
                plural(rom.images.len()),
                kinds.join(" + "),
                opts.pci_id
                    .map(|id| format!(", PCI {id}"))
                    .unwrap_or_default(),
                version
                    .map(|(a, b, c)| format!(", version {a}.{b}.{c}"))
                    .unwrap_or_default(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        RomCommand::Split { file, output } => {
            let (bytes, rom) = load(&file)?;
            if let Some(problem) = rom.findings.iter().find(|f| {
                matches!(
                    f.problem,
                    rom::Problem::ImageLengthPastEnd { .. } | rom::Problem::HeaderTruncated { .. }
                )
            }) {
                bail!(
                    "{}: {problem}; refusing to split a cut-off image",
                    file.display()
                );
            }
            fs::create_dir_all(&output)
                .with_context(|| format!("cannot create directory {}", output.display()))?;
            for image in &rom.images {
                let path = output.join(format!("image-{}-{}.rom", image.index, image.kind.name()));
                atomic_file::write(&path, &bytes[image.range.clone()])?;
                out(&format!(
                    "{} ({} bytes)\n",
                    path.display(),
                    image.range.len()
                ))?;
            }
            if let Some(range) = &rom.trailing {
                let path = output.join("trailing.bin");
                atomic_file::write(&path, &bytes[range.clone()])?;
                out(&format!(
                    "{} ({} bytes after the last image)\n",
                    path.display(),
                    range.len()
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to stdout; a closed pipe (`sixboot rom inspect … | head`) ends the output
/// quietly instead of panicking as `println!` would.
fn out(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn load(file: &Path) -> Result<(Vec<u8>, Rom)> {
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let rom = Rom::parse(&bytes).with_context(|| format!("{}", file.display()))?;
    Ok((bytes, rom))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The text `inspect` prints: one block per image, then trailer, version records, findings.
fn render(file: &Path, rom: &Rom) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} bytes, {} image{}",
        file.display(),
        rom.len,
        rom.images.len(),
        plural(rom.images.len())
    );
    for image in &rom.images {
        render_image(&mut s, image);
    }
    match &rom.trailing {
        Some(range) => {
            let _ = writeln!(
                s,
                "trailing bytes: {} at {:#x}..{:#x}",
                range.len(),
                range.start,
                range.end
            );
        }
        None => s.push_str("trailing bytes: none\n"),
    }
    if rom.mlx_versions.is_empty() {
        s.push_str("mlxsign version: none\n");
    }
    for v in &rom.mlx_versions {
        let _ = write!(
            s,
            "mlxsign version at {:#x}: type={} version={}",
            v.offset,
            v.product_name(),
            v.version
        );
        if let Some(device) = v.device_id {
            let _ = write!(s, " device={device:04x}");
        }
        if let Some(proto) = v.protocol {
            let _ = write!(s, " proto={}", rom::protocol_name(proto));
        }
        if let Some(cpu) = v.cpu {
            let _ = write!(s, " cpu={}", rom::cpu_name(cpu));
        }
        s.push('\n');
    }
    let findings = rom.verify(None);
    if findings.is_empty() {
        s.push_str("findings: none\n");
    } else {
        let _ = writeln!(s, "findings: {}", findings.len());
        for finding in &findings {
            let _ = writeln!(s, "  {finding}");
        }
    }
    s
}

fn render_image(s: &mut String, image: &Image) {
    let kind = match image.kind {
        ImageKind::Legacy => "legacy x86 (BIOS)".to_string(),
        ImageKind::Efi => "EFI".to_string(),
        ImageKind::MromPayload => "iPXE .mrom payload (code type 0xff)".to_string(),
        ImageKind::Unknown(code) => format!("code type {code:#04x}"),
    };
    let _ = writeln!(
        s,
        "image {} at {:#x}: {kind}, {} bytes ({} x 512){}",
        image.index,
        image.offset,
        image.length,
        image.length / 512,
        if image.is_last() { ", last image" } else { "" }
    );
    if let Some(pcir) = &image.pcir {
        let list = if pcir.device_list.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = pcir
                .device_list
                .iter()
                .map(|d| format!("{d:04x}"))
                .collect();
            format!(" (device list: {})", ids.join(" "))
        };
        let _ = writeln!(
            s,
            "  PCIR at {:#x} rev {}: PCI {}{list}, class {:06x}, revision {:#06x}, code type {:#04x}, indicator {:#04x}",
            pcir.offset,
            pcir.struct_revision,
            pcir.pci_id(),
            pcir.class_code,
            pcir.revision,
            pcir.code_type,
            pcir.indicator
        );
    }
    if let Some(c) = &image.checksum {
        let _ = writeln!(
            s,
            "  size {} x 512, checksum {} (byte 6 = {:#04x}, sum {:#04x})",
            image.size_units.unwrap_or(0),
            if c.ok { "ok" } else { "BAD" },
            c.stored,
            c.sum
        );
    }
    if let Some(p) = &image.pnp {
        let _ = writeln!(
            s,
            "  PnP at {:#x} rev {}: checksum {}, manufacturer {:?}, product {:?}",
            p.offset,
            p.revision,
            ok(p.checksum_ok),
            p.manufacturer.as_deref().unwrap_or(""),
            p.product.as_deref().unwrap_or("")
        );
    }
    if let Some(u) = &image.undi {
        let _ = writeln!(
            s,
            "  UNDI at {:#x}: PXE {}.{}.{}, bus {}, checksum {}",
            u.offset,
            u.pxe_version.0,
            u.pxe_version.1,
            u.pxe_version.2,
            u.bus_type,
            ok(u.checksum_ok)
        );
    }
    if let Some(i) = &image.ipxe {
        let _ = writeln!(
            s,
            "  iPXE at {:#x}: build id {}, shrunk to {} x 512, checksum {}",
            i.offset,
            i.build_id
                .map(|b| format!("{b:#010x}"))
                .unwrap_or_else(|| "-".into()),
            i.shrunk_units,
            ok(i.checksum_ok)
        );
    }
    if let Some(e) = &image.efi {
        let _ = writeln!(
            s,
            "  EFI: init size {} x 512, {} ({}), machine {} ({:#06x}), {}, PE at {:#x}",
            e.init_size_units,
            rom::subsystem_name(e.subsystem),
            e.subsystem,
            rom::machine_name(e.machine),
            e.machine,
            match e.compression {
                0 => "uncompressed".to_string(),
                1 => "EFI-compressed".to_string(),
                other => format!("compression {other}"),
            },
            e.image_offset
        );
        if let Some(pe) = &e.pe {
            let _ = writeln!(
                s,
                "  PE{}: machine {} ({:#06x}), subsystem {} ({}), entry point {:#x}, image base {:#x}",
                if pe.pe32_plus { "32+" } else { "32" },
                rom::machine_name(pe.machine),
                pe.machine,
                rom::subsystem_name(pe.subsystem),
                pe.subsystem,
                pe.entry_point,
                pe.image_base
            );
        }
    }
}

fn ok(good: bool) -> &'static str {
    if good {
        "ok"
    } else {
        "BAD"
    }
}

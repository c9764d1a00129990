//! Proof of what went into an image, read with goblin from the linked ELF that make
//! keeps next to it (`bin/<file>.tmp`, `bin-x86_64-efi/<name>.efidrv.tmp`): the final
//! images are compressed or converted, the ELF is not.
//!
//! Every image: the ELF machine of its build directory (i386, x86-64, AArch64); IPv6
//! linked in (`ipv6_protocol`, an `ndp_*` and a `dhcpv6_*` symbol); the embedded
//! script's bytes equal the input (`embedded_image_1_data`, the absolute
//! `embedded_image_1_len`, and `_end` when present); the NIC driver, or for `snponly`
//! the SNP driver and none of the build directory's NIC driver objects; each patch's `Verify-Symbol` present when
//! the patch was applied and absent when it was skipped. A flavour adds [`Proof`]s:
//! FlexBoot's exact IPv6 symbols, its boot IP version default and the code that reads
//! it, and its banner.

use std::path::Path;

use anyhow::{bail, Context, Result};
use goblin::elf::{section_header::SHT_NOBITS, Elf, Sym};

use super::targets::{Arch, Driver, Proof};

/// What one image must contain.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The machine of its build directory.
    pub arch: Arch,
    /// The driver that must (or for `snponly`, must not) be linked in.
    pub driver: Driver,
    /// The embedded script, byte for byte.
    pub script: &'a [u8],
    /// Symbols that applied patches add (each must be present).
    pub present: Vec<&'a str>,
    /// Symbols of skipped patches (each must be absent).
    pub absent: Vec<&'a str>,
    /// The flavour's extra proofs.
    pub proofs: &'a [Proof],
    /// For [`Driver::SnpOnly`]: every NIC driver object of the build directory
    /// ([`nic_driver_objects`]); none of them may be linked in.
    pub nic_driver_objects: &'a [String],
}

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The checks that passed, for the manifest (`machine:i386`, `ipv6`, `script`, …).
    pub checks: Vec<String>,
    /// The boot IP version default, when a [`Proof::DefaultIpVer`] asked for it.
    pub default_ip_ver: Option<IpVerReport>,
    /// Length of the embedded script in the image.
    pub script_len: usize,
}

/// What [`Proof::DefaultIpVer`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpVerReport {
    /// The value of `sixboot_default_ip_ver` in the image.
    pub value: u8,
    /// Its address in the image.
    pub address: u64,
    /// How often that address occurs in the reader function's bytes.
    pub reader_references: usize,
}

/// The symbol FlexBoot patch 0002 adds.
pub const DEFAULT_IP_VER_SYMBOL: &str = "sixboot_default_ip_ver";

/// The SNP driver of `snponly` (`drivers/net/efi/snponly.c`).
pub const SNP_DRIVER: &str = "snponly_driver";

/// The NIC driver objects iPXE knows for a build directory, from the `<bin>/.rom.defs`
/// its make writes (`DRIVERS_pci_net += virtio-net`): every class of network driver
/// (`*_net`, `pci_infiniband`) but `efi_net` (SNP/NII/MNP, the firmware's). Each linked
/// driver object defines `obj_<name>` (`-` as `_`), which is how [`check_elf`] tells an
/// image that drives no NIC itself.
pub fn nic_driver_objects(rom_defs: &str) -> Vec<String> {
    let mut objects: Vec<String> = rom_defs
        .lines()
        .filter_map(|line| {
            let (class, object) = line.strip_prefix("DRIVERS_")?.split_once(" += ")?;
            let network = class.ends_with("_net") || class == "pci_infiniband";
            (network && class != "efi_net").then(|| object.trim().replace('-', "_"))
        })
        .collect();
    objects.sort();
    objects.dedup();
    objects
}

/// Reads the ELF at `path` and checks it.
pub fn check_elf_file(path: &Path, expect: &Expectations<'_>) -> Result<Report> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the ELF intermediate {} (did make keep it?)",
            path.display()
        )
    })?;
    check_elf(&bytes, expect).with_context(|| format!("{} failed verification", path.display()))
}

/// Checks ELF bytes against `expect`; every failed check is listed in the error.
pub fn check_elf(bytes: &[u8], expect: &Expectations<'_>) -> Result<Report> {
    let elf = Elf::parse(bytes).context("not an ELF file")?;
    let image = Image { elf: &elf, bytes };
    let mut failures = Vec::new();
    let mut checks = Vec::new();

    if elf.header.e_machine == expect.arch.elf_machine() {
        checks.push(format!("machine:{}", expect.arch.name()));
    } else {
        failures.push(format!(
            "ELF machine {} is not {} ({})",
            elf.header.e_machine,
            expect.arch.elf_machine(),
            expect.arch.name()
        ));
    }

    let ipv6_missing: Vec<&str> = [
        ("ipv6_protocol", image.symbol("ipv6_protocol").is_some()),
        ("ndp_*", image.any_with_prefix("ndp_")),
        ("dhcpv6_*", image.any_with_prefix("dhcpv6_")),
    ]
    .into_iter()
    .filter(|(_, found)| !found)
    .map(|(name, _)| name)
    .collect();
    if ipv6_missing.is_empty() {
        checks.push("ipv6".to_string());
    } else {
        failures.push(format!(
            "IPv6 is not linked in (missing {}): is NET_PROTO_IPV6 defined in config/local/general.h?",
            ipv6_missing.join(", ")
        ));
    }

    let mut script_len = 0;
    match image.embedded_script() {
        Ok(Some(embedded)) if embedded == expect.script => {
            script_len = embedded.len();
            checks.push("script".to_string());
        }
        Ok(Some(embedded)) => failures.push(format!(
            "the embedded script ({} bytes) differs from the input script ({} bytes)",
            embedded.len(),
            expect.script.len()
        )),
        Ok(None) => failures.push(
            "no embedded script: `embedded_image_1_data` is missing (was EMBED= given?)".into(),
        ),
        Err(err) => failures.push(format!("cannot read the embedded script: {err:#}")),
    }

    match expect.driver {
        Driver::Nic(driver) if image.symbol(driver).is_some() => {
            checks.push(format!("driver:{driver}"));
        }
        Driver::Nic(driver) => failures.push(format!(
            "the NIC driver `{driver}` is not linked in: wrong make target?"
        )),
        Driver::SnpOnly => {
            let linked: Vec<&str> = expect
                .nic_driver_objects
                .iter()
                .map(String::as_str)
                .filter(|object| image.symbol(&format!("obj_{object}")).is_some())
                .collect();
            if image.symbol(SNP_DRIVER).is_none() {
                failures.push(format!("the SNP driver `{SNP_DRIVER}` is not linked in"));
            } else if expect.nic_driver_objects.is_empty() {
                failures.push(
                    "no list of NIC driver objects (<bin>/.rom.defs) to prove that none is linked in"
                        .to_string(),
                );
            } else if !linked.is_empty() {
                failures.push(format!(
                    "an SNP-only image must carry no NIC driver of its own, but links {}",
                    linked.join(", ")
                ));
            } else {
                checks.push(format!("driver:{SNP_DRIVER}"));
                checks.push(format!(
                    "no-nic-driver:{}-checked",
                    expect.nic_driver_objects.len()
                ));
            }
        }
    }

    for name in &expect.present {
        if image.symbol(name).is_some() {
            checks.push(format!("patch-symbol:{name}"));
        } else {
            failures.push(format!(
                "`{name}` is missing although its patch was applied"
            ));
        }
    }
    for name in &expect.absent {
        if image.symbol(name).is_some() {
            failures.push(format!(
                "`{name}` is present although its patch was skipped"
            ));
        }
    }

    let mut default_ip_ver = None;
    for proof in expect.proofs {
        match proof {
            Proof::Symbols(names) => {
                let missing: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|name| image.symbol(name).is_none())
                    .collect();
                if missing.is_empty() {
                    checks.extend(names.iter().map(|name| format!("symbol:{name}")));
                } else {
                    failures.push(format!(
                        "IPv6 is not linked in: `{}` is missing",
                        missing.join("`, `")
                    ));
                }
            }
            Proof::DefaultIpVer { reader, value } => match image.default_ip_ver(reader, *value) {
                Ok(report) => {
                    checks.push(format!("ip_ver-default:{}", ip_ver_name(report.value)));
                    checks.push(format!("ip_ver-read-by:{reader}"));
                    default_ip_ver = Some(report);
                }
                Err(err) => failures.push(format!("{err:#}")),
            },
            Proof::Banner(banner) => {
                if image
                    .loaded_bytes()
                    .any(|data| count(data, banner.as_bytes()) > 0)
                {
                    checks.push(format!("banner:{banner}"));
                } else {
                    failures.push(format!("the banner `{banner}` is not in the image"));
                }
            }
        }
    }

    if failures.is_empty() {
        Ok(Report {
            checks,
            default_ip_ver,
            script_len,
        })
    } else {
        bail!("{}", failures.join("; "))
    }
}

/// FlexBoot's names for the `ip_ver` values (`STR_IPV4` … in `driver_settings.h`).
pub fn ip_ver_name(value: u8) -> &'static str {
    match value {
        0 => "IPv4",
        1 => "IPv6",
        2 => "IPv4/IPv6",
        3 => "IPv6/IPv4",
        _ => "unknown",
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || haystack.len() < needle.len() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

struct Image<'a> {
    elf: &'a Elf<'a>,
    bytes: &'a [u8],
}

impl Image<'_> {
    fn symbol(&self, name: &str) -> Option<Sym> {
        self.elf
            .syms
            .iter()
            .find(|sym| self.elf.strtab.get_at(sym.st_name) == Some(name))
    }

    fn any_with_prefix(&self, prefix: &str) -> bool {
        self.elf.syms.iter().any(|sym| {
            self.elf
                .strtab
                .get_at(sym.st_name)
                .is_some_and(|name| name.starts_with(prefix))
        })
    }

    /// `len` bytes at the symbol's address, from the file image of its section.
    fn contents(&self, sym: &Sym, len: u64) -> Option<&[u8]> {
        let header = self.elf.section_headers.get(sym.st_shndx)?;
        if header.sh_type == SHT_NOBITS {
            return None;
        }
        let start = sym.st_value.checked_sub(header.sh_addr)?;
        if start.checked_add(len)? > header.sh_size {
            return None;
        }
        let offset = usize::try_from(header.sh_offset.checked_add(start)?).ok()?;
        self.bytes
            .get(offset..offset.checked_add(usize::try_from(len).ok()?)?)
    }

    /// A function's bytes: its symbol size, or up to the next symbol in its section
    /// when the size is 0 (assembly).
    fn function_bytes(&self, sym: &Sym) -> Result<&[u8]> {
        let size = if sym.st_size > 0 {
            sym.st_size
        } else {
            let next = self
                .elf
                .syms
                .iter()
                .filter(|other| other.st_shndx == sym.st_shndx && other.st_value > sym.st_value)
                .map(|other| other.st_value)
                .min()
                .context("cannot find where the function ends")?;
            next - sym.st_value
        };
        self.contents(sym, size)
            .context("function is not in a loaded section")
    }

    /// The bytes of the first embedded image: `embedded_image_1_data` is its address and
    /// `embedded_image_1_len` an absolute symbol whose value is its length; when
    /// `embedded_image_1_end` exists it must agree.
    fn embedded_script(&self) -> Result<Option<&[u8]>> {
        let (Some(data), Some(len)) = (
            self.symbol("embedded_image_1_data"),
            self.symbol("embedded_image_1_len"),
        ) else {
            return Ok(None);
        };
        if let Some(end) = self.symbol("embedded_image_1_end") {
            let span = end
                .st_value
                .checked_sub(data.st_value)
                .context("embedded_image_1_end lies before embedded_image_1_data")?;
            if span != len.st_value {
                bail!(
                    "embedded_image_1_len says {} bytes but the data spans {span}",
                    len.st_value
                );
            }
        }
        self.contents(&data, len.st_value)
            .map(Some)
            .context("the embedded script is not in a loaded section of the file")
    }

    /// Patch 0002 routes every FlexBoot default through one global,
    /// `sixboot_default_ip_ver`, initialised from `DEFAULT_BOOT_IP_VER`. Its byte must be
    /// `value`, and its absolute address must occur in `reader`: i386 code built with
    /// `-fno-PIE` loads a global by its absolute address (`mov 0x27698,%al`), so the
    /// address in that function's bytes shows the patched driver code reads it.
    fn default_ip_ver(&self, reader: &str, value: u8) -> Result<IpVerReport> {
        let default = self.symbol(DEFAULT_IP_VER_SYMBOL).with_context(|| {
            format!("`{DEFAULT_IP_VER_SYMBOL}` is missing: patches/flexboot/0002-ipv6-default-boot-ip-version.patch was not applied")
        })?;
        let found = *self
            .contents(&default, 1)
            .with_context(|| format!("`{DEFAULT_IP_VER_SYMBOL}` is not in a loaded section"))?
            .first()
            .context("empty symbol")?;
        if found != value {
            bail!(
                "`{DEFAULT_IP_VER_SYMBOL}` is {found} ({}), expected {value} ({}): check DEFAULT_BOOT_IP_VER in mlx_nvconfig_defaults.h",
                ip_ver_name(found),
                ip_ver_name(value)
            );
        }
        let function = self.symbol(reader).with_context(|| {
            format!("`{reader}`, the function that sets the port defaults, is missing")
        })?;
        let code = self.function_bytes(&function)?;
        let address = u32::try_from(default.st_value)
            .context("address does not fit 32 bits: not an i386 image")?
            .to_le_bytes();
        let reader_references = count(code, &address);
        if reader_references == 0 {
            bail!(
                "`{reader}` never loads `{DEFAULT_IP_VER_SYMBOL}` (address {:#x} not in its code): the driver part of patch 0002 is missing",
                default.st_value
            );
        }
        Ok(IpVerReport {
            value: found,
            address: default.st_value,
            reader_references,
        })
    }

    fn loaded_bytes(&self) -> impl Iterator<Item = &[u8]> {
        self.elf
            .section_headers
            .iter()
            .filter(|header| header.is_alloc() && header.sh_type != SHT_NOBITS)
            .filter_map(|header| {
                let start = usize::try_from(header.sh_offset).ok()?;
                let end = start.checked_add(usize::try_from(header.sh_size).ok()?)?;
                self.bytes.get(start..end)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::flavor::FLEXBOOT_IPV6_SYMBOLS;

    /// A minimal i386 ELF with one loaded section and the symbols the checks read,
    /// laid out the way FlexBoot's linker script lays out `.textdata`.
    struct FakeImage {
        default_ip_ver: u8,
        reader_loads_default: bool,
        script: Vec<u8>,
        banner: String,
        missing: Option<&'static str>,
        extra: Option<&'static str>,
        machine: u16,
    }

    impl Default for FakeImage {
        fn default() -> Self {
            FakeImage {
                default_ip_ver: 1,
                reader_loads_default: true,
                script: b"#!ipxe\necho hello\n".to_vec(),
                banner: "FlexBoot v3.4.812".into(),
                missing: None,
                extra: None,
                machine: 3,
            }
        }
    }

    impl FakeImage {
        fn build(&self) -> Vec<u8> {
            const DEFAULT_AT: u32 = 0x40;
            const READER_AT: u32 = 0x10;
            let mut text = vec![0x90u8; 0x60];
            text[DEFAULT_AT as usize] = self.default_ip_ver;
            // mov 0x40,%al ; mov %al,0x18(%ebx) ; ret
            let mut reader = vec![0xa0];
            let loaded = if self.reader_loads_default {
                DEFAULT_AT
            } else {
                0x44
            };
            reader.extend(loaded.to_le_bytes());
            reader.extend([0x88, 0x43, 0x18, 0xc3]);
            text[READER_AT as usize..READER_AT as usize + reader.len()].copy_from_slice(&reader);
            let script_at = text.len() as u32;
            text.extend(&self.script);
            text.extend(self.banner.as_bytes());

            let mut symbols: Vec<(&str, u32, u32, u16)> = vec![
                ("hermon_driver", 0x00, 4, 1),
                ("snponly_driver", 0x00, 4, 1),
                (
                    "hermon_get_ini_and_defaults",
                    READER_AT,
                    reader.len() as u32,
                    1,
                ),
                ("sixboot_default_ip_ver", DEFAULT_AT, 1, 1),
                ("ipv6_protocol", 0x04, 4, 1),
                ("ndp_discovery", 0x08, 4, 1),
                ("dhcpv6_request", 0x0c, 4, 1),
                ("ipv6_configurator", 0x0e, 2, 1),
                ("embedded_image_1_data", script_at, 0, 1),
                (
                    "embedded_image_1_end",
                    script_at + self.script.len() as u32,
                    0,
                    1,
                ),
                ("embedded_image_1_len", self.script.len() as u32, 0, 0xfff1),
            ];
            symbols.retain(|(name, ..)| Some(*name) != self.missing);
            if let Some(extra) = self.extra {
                symbols.push((extra, 0x02, 2, 1));
            }
            elf32(&text, &symbols, self.machine)
        }
    }

    /// Writes an ELF32 little-endian image: `.textdata` (loaded at address 0),
    /// `.symtab`, `.strtab`, `.shstrtab`.
    fn elf32(text: &[u8], symbols: &[(&str, u32, u32, u16)], machine: u16) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 16];
        for (name, value, size, shndx) in symbols {
            let name_at = strtab.len() as u32;
            strtab.extend(name.as_bytes());
            strtab.push(0);
            symtab.extend(name_at.to_le_bytes());
            symtab.extend(value.to_le_bytes());
            symtab.extend(size.to_le_bytes());
            symtab.push(0x12); // STB_GLOBAL, STT_FUNC
            symtab.push(0);
            symtab.extend(shndx.to_le_bytes());
        }
        let shstrtab = b"\0.textdata\0.symtab\0.strtab\0.shstrtab\0".to_vec();
        let mut out = vec![0u8; 52];
        let text_off = out.len();
        out.extend(text);
        let symtab_off = out.len();
        out.extend(&symtab);
        let strtab_off = out.len();
        out.extend(&strtab);
        let shstrtab_off = out.len();
        out.extend(&shstrtab);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        let shoff = out.len();
        let section = |out: &mut Vec<u8>, fields: [u32; 10]| {
            for field in fields {
                out.extend(field.to_le_bytes());
            }
        };
        section(&mut out, [0; 10]);
        // name, type, flags, addr, offset, size, link, info, addralign, entsize
        let (t, s, st, sh) = (
            text_off as u32,
            symtab_off as u32,
            strtab_off as u32,
            shstrtab_off as u32,
        );
        section(&mut out, [1, 1, 0x7, 0, t, text.len() as u32, 0, 0, 32, 0]);
        section(&mut out, [11, 2, 0, 0, s, symtab.len() as u32, 3, 1, 4, 16]);
        section(&mut out, [19, 3, 0, 0, st, strtab.len() as u32, 0, 0, 1, 0]);
        section(
            &mut out,
            [27, 3, 0, 0, sh, shstrtab.len() as u32, 0, 0, 1, 0],
        );
        let header = &mut out[..52];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 1; // ELFCLASS32
        header[5] = 1; // little endian
        header[6] = 1; // EV_CURRENT
        header[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        header[20..24].copy_from_slice(&1u32.to_le_bytes());
        header[32..36].copy_from_slice(&(shoff as u32).to_le_bytes());
        header[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
        header[46..48].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
        header[48..50].copy_from_slice(&5u16.to_le_bytes()); // e_shnum
        header[50..52].copy_from_slice(&4u16.to_le_bytes()); // e_shstrndx
        out
    }

    fn flexboot_proofs() -> Vec<Proof> {
        vec![
            Proof::Symbols(FLEXBOOT_IPV6_SYMBOLS.to_vec()),
            Proof::DefaultIpVer {
                reader: "hermon_get_ini_and_defaults",
                value: 1,
            },
            Proof::Banner("FlexBoot v3.4.812".into()),
        ]
    }

    fn check(image: &FakeImage, script: &[u8], proofs: &[Proof]) -> Result<Report> {
        let expect = Expectations {
            arch: Arch::I386,
            driver: Driver::Nic("hermon_driver"),
            script,
            present: vec!["sixboot_default_ip_ver"],
            absent: vec![],
            proofs,
            nic_driver_objects: &[],
        };
        check_elf(&image.build(), &expect)
    }

    fn error_of(image: &FakeImage, script: &[u8]) -> String {
        format!(
            "{:#}",
            check(image, script, &flexboot_proofs()).unwrap_err()
        )
    }

    #[test]
    fn accepts_an_image_with_ipv6_default_and_the_script() {
        let image = FakeImage::default();
        let report = check(&image, &image.script, &flexboot_proofs()).unwrap();
        let ip_ver = report.default_ip_ver.unwrap();
        assert_eq!(ip_ver.value, 1);
        assert_eq!(ip_ver.address, 0x40);
        assert_eq!(ip_ver.reader_references, 1);
        assert_eq!(report.script_len, image.script.len());
        for check in [
            "machine:i386",
            "ipv6",
            "script",
            "driver:hermon_driver",
            "patch-symbol:sixboot_default_ip_ver",
            "symbol:ndp_discovery",
            "ip_ver-default:IPv6",
            "ip_ver-read-by:hermon_get_ini_and_defaults",
            "banner:FlexBoot v3.4.812",
        ] {
            assert!(report.checks.contains(&check.to_string()), "{check}");
        }
    }

    #[test]
    fn rejects_an_image_whose_default_is_still_ipv4() {
        let image = FakeImage {
            default_ip_ver: 0,
            ..FakeImage::default()
        };
        let err = error_of(&image, &image.script);
        assert!(err.contains("is 0 (IPv4), expected 1 (IPv6)"), "{err}");
    }

    #[test]
    fn rejects_an_image_whose_driver_does_not_read_the_default() {
        let image = FakeImage {
            reader_loads_default: false,
            ..FakeImage::default()
        };
        let err = error_of(&image, &image.script);
        assert!(
            err.contains("never loads `sixboot_default_ip_ver`"),
            "{err}"
        );
    }

    #[test]
    fn rejects_an_image_without_the_patch_symbol() {
        let image = FakeImage {
            missing: Some("sixboot_default_ip_ver"),
            ..FakeImage::default()
        };
        let err = error_of(&image, &image.script);
        assert!(
            err.contains("0002-ipv6-default-boot-ip-version.patch was not applied"),
            "{err}"
        );
        assert!(
            err.contains("`sixboot_default_ip_ver` is missing although its patch was applied"),
            "{err}"
        );
    }

    #[test]
    fn rejects_an_image_without_ipv6_or_the_driver() {
        let image = FakeImage {
            missing: Some("ndp_discovery"),
            ..FakeImage::default()
        };
        let err = error_of(&image, &image.script);
        assert!(err.contains("`ndp_discovery` is missing"), "{err}");
        let image = FakeImage {
            missing: Some("hermon_driver"),
            ..FakeImage::default()
        };
        assert!(error_of(&image, &image.script).contains("`hermon_driver` is not linked in"));
        let image = FakeImage {
            missing: Some("ipv6_protocol"),
            ..FakeImage::default()
        };
        assert!(error_of(&image, &image.script)
            .contains("IPv6 is not linked in (missing ipv6_protocol)"));
    }

    #[test]
    fn rejects_an_image_with_another_script() {
        let image = FakeImage::default();
        let err = error_of(&image, b"#!ipxe\necho other\n");
        assert!(err.contains("differs from the input"), "{err}");
        let image = FakeImage {
            missing: Some("embedded_image_1_data"),
            ..FakeImage::default()
        };
        assert!(error_of(&image, &image.script).contains("no embedded script"));
    }

    #[test]
    fn rejects_an_image_without_the_banner() {
        let image = FakeImage {
            banner: "FlexBoot v3.4.719".into(),
            ..FakeImage::default()
        };
        let err = error_of(&image, &image.script);
        assert!(
            err.contains("the banner `FlexBoot v3.4.812` is not in the image"),
            "{err}"
        );
    }

    #[test]
    fn rejects_an_image_of_another_machine() {
        let image = FakeImage {
            machine: 62,
            ..FakeImage::default()
        };
        let err = format!("{:#}", check(&image, &image.script, &[]).unwrap_err());
        assert!(err.contains("ELF machine 62 is not 3 (i386)"), "{err}");
    }

    #[test]
    fn snp_only_means_the_snp_driver_and_no_nic_driver_object() {
        let rom_defs = "DRIVERS_pci_net += virtio-net\nDRIVERS += virtio-net\n\
                        DRIVERS_pci_infiniband += golan\nDRIVERS_usb_net += ecm\n\
                        DRIVERS_efi_net += snp\nDRIVERS_pci_bus += pcibridge\n";
        let objects = nic_driver_objects(rom_defs);
        assert_eq!(objects, ["ecm", "golan", "virtio_net"]);
        let image = FakeImage::default();
        let expect = |objects| Expectations {
            arch: Arch::I386,
            driver: Driver::SnpOnly,
            script: &image.script,
            present: vec![],
            absent: vec![],
            proofs: &[],
            nic_driver_objects: objects,
        };
        let report = check_elf(&image.build(), &expect(&objects)).unwrap();
        assert!(report
            .checks
            .contains(&"no-nic-driver:3-checked".to_string()));
        let with_nic = FakeImage {
            extra: Some("obj_virtio_net"),
            ..FakeImage::default()
        };
        let err = format!(
            "{:#}",
            check_elf(&with_nic.build(), &expect(&objects)).unwrap_err()
        );
        assert!(
            err.contains("must carry no NIC driver of its own, but links virtio_net"),
            "{err}"
        );
        let err = format!("{:#}", check_elf(&image.build(), &expect(&[])).unwrap_err());
        assert!(err.contains("no list of NIC driver objects"), "{err}");
        let without_snp = FakeImage {
            missing: Some("snponly_driver"),
            ..FakeImage::default()
        };
        let err = format!(
            "{:#}",
            check_elf(&without_snp.build(), &expect(&objects)).unwrap_err()
        );
        assert!(err.contains("`snponly_driver` is not linked in"), "{err}");
    }

    #[test]
    fn a_skipped_patch_must_leave_no_symbol() {
        let image = FakeImage::default();
        let expect = Expectations {
            arch: Arch::I386,
            driver: Driver::Nic("hermon_driver"),
            script: &image.script,
            present: vec![],
            absent: vec!["sixboot_default_ip_ver"],
            proofs: &[],
            nic_driver_objects: &[],
        };
        let err = format!("{:#}", check_elf(&image.build(), &expect).unwrap_err());
        assert!(
            err.contains("present although its patch was skipped"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bytes_that_are_not_elf() {
        let expect = Expectations {
            arch: Arch::I386,
            driver: Driver::Nic("hermon_driver"),
            script: b"",
            present: vec![],
            absent: vec![],
            proofs: &[],
            nic_driver_objects: &[],
        };
        let err = check_elf(b"MZ not an elf", &expect).unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF file"));
    }
}

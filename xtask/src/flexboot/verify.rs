//! Proof of what went into a FlexBoot ROM, read from the linked ELF that FlexBoot's
//! make keeps next to it (`bin/ConnectX-3.mrom.tmp`): the ROM itself is compressed.
//!
//! Checked, from the symbol table and the bytes of loaded sections only (no
//! disassembler):
//! - the NIC driver (`hermon_driver`, `golan_driver`) and IPv6 (`ipv6_protocol`,
//!   `ndp_discovery`, `dhcpv6_request`, `ipv6_configurator`) are linked in;
//! - the boot IP version default: patch 0002 routes every default through one global,
//!   `sixboot_default_ip_ver`, initialised from `DEFAULT_BOOT_IP_VER`. Its byte in the
//!   image must be 1 (IPv6), and its absolute address must occur inside the function
//!   that fills the port defaults (`hermon_get_ini_and_defaults` for ConnectX-3,
//!   `flexboot_nodnic_probe` for ConnectX-4): i386 code built with `-fno-PIE` loads a
//!   global by its absolute address (`mov 0x27698,%al`), so the address in that
//!   function's bytes shows the patched driver code reads the value;
//! - the embedded script's bytes (`embedded_image_1_data` to `_end`, and the absolute
//!   `embedded_image_1_len`) equal the input;
//! - the banner string (`FlexBoot v3.4.812`) is in the image, and every symbol a patch
//!   names in a `Verify-Symbol:` line.

use anyhow::{bail, Context, Result};
use goblin::elf::{section_header::SHT_NOBITS, Elf, Sym};

/// What one image must contain.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The NIC driver's `struct pci_driver` symbol.
    pub driver: &'a str,
    /// The function whose code stores the boot IP version default for this family.
    pub defaults_reader: &'a str,
    /// The boot IP version the image must default to (1: IPv6).
    pub default_ip_ver: u8,
    /// The embedded script, byte for byte.
    pub script: &'a [u8],
    /// A string the banner prints, e.g. `FlexBoot v3.4.812`.
    pub banner: &'a str,
    /// Symbols the applied patches name in their `Verify-Symbol:` lines.
    pub patch_symbols: &'a [&'a str],
}

/// What the checks found, for the summary and the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The value of `sixboot_default_ip_ver` in the image.
    pub default_ip_ver: u8,
    /// Its address in the image.
    pub default_ip_ver_address: u64,
    /// How often that address occurs in the defaults function's bytes.
    pub reader_references: usize,
    /// Length of the embedded script in the image.
    pub script_len: usize,
}

/// The symbol patch 0002 adds.
pub const DEFAULT_IP_VER_SYMBOL: &str = "sixboot_default_ip_ver";

/// IPv6 symbols that must all be linked in.
pub const IPV6_SYMBOLS: &[&str] = &[
    "ipv6_protocol",
    "ndp_discovery",
    "dhcpv6_request",
    "ipv6_configurator",
];

/// Reads the ELF at `path` and checks it.
pub fn check_elf_file(path: &std::path::Path, expect: &Expectations<'_>) -> Result<Report> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    check_elf(&bytes, expect).with_context(|| format!("{} failed verification", path.display()))
}

/// Checks the bytes of a linked FlexBoot ELF.
pub fn check_elf(bytes: &[u8], expect: &Expectations<'_>) -> Result<Report> {
    let elf = Elf::parse(bytes).context("not an ELF file")?;
    let image = Image { elf: &elf, bytes };

    image.symbol(expect.driver).with_context(|| {
        format!(
            "the NIC driver `{}` is not linked in: wrong make target?",
            expect.driver
        )
    })?;
    for name in IPV6_SYMBOLS {
        image
            .symbol(name)
            .with_context(|| format!("IPv6 is not linked in: `{name}` is missing"))?;
    }

    let default = image.symbol(DEFAULT_IP_VER_SYMBOL).with_context(|| {
        format!("`{DEFAULT_IP_VER_SYMBOL}` is missing: patches/flexboot/0002-ipv6-default-boot-ip-version.patch was not applied")
    })?;
    let value = *image
        .contents(&default, 1)
        .with_context(|| format!("`{DEFAULT_IP_VER_SYMBOL}` is not in a loaded section"))?
        .first()
        .context("empty symbol")?;
    if value != expect.default_ip_ver {
        bail!(
            "`{DEFAULT_IP_VER_SYMBOL}` is {value} ({}), expected {} ({}): check DEFAULT_BOOT_IP_VER in mlx_nvconfig_defaults.h",
            ip_ver_name(value),
            expect.default_ip_ver,
            ip_ver_name(expect.default_ip_ver)
        );
    }
    let reader = image.symbol(expect.defaults_reader).with_context(|| {
        format!(
            "`{}`, the function that sets the port defaults, is missing",
            expect.defaults_reader
        )
    })?;
    let code = image.function_bytes(&reader)?;
    let address = u32::try_from(default.st_value)
        .context("address does not fit 32 bits: not an i386 image")?
        .to_le_bytes();
    let reader_references = count(code, &address);
    if reader_references == 0 {
        bail!(
            "`{}` never loads `{DEFAULT_IP_VER_SYMBOL}` (address {:#x} not in its code): the driver part of patch 0002 is missing",
            expect.defaults_reader,
            default.st_value
        );
    }

    for name in expect.patch_symbols {
        image
            .symbol(name)
            .with_context(|| format!("`{name}`, which an applied patch adds, is missing"))?;
    }

    let script = image.embedded_script()?;
    if script != expect.script {
        bail!(
            "the embedded script in the image ({} bytes) differs from the input ({} bytes)",
            script.len(),
            expect.script.len()
        );
    }
    if !image
        .loaded_bytes()
        .any(|data| count(data, expect.banner.as_bytes()) > 0)
    {
        bail!("the banner `{}` is not in the image", expect.banner);
    }
    Ok(Report {
        default_ip_ver: value,
        default_ip_ver_address: default.st_value,
        reader_references,
        script_len: script.len(),
    })
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

    fn embedded_script(&self) -> Result<&[u8]> {
        let missing =
            |name: &str| format!("no embedded script: `{name}` is missing (was EMBED= given?)");
        let data = self
            .symbol("embedded_image_1_data")
            .with_context(|| missing("embedded_image_1_data"))?;
        let end = self
            .symbol("embedded_image_1_end")
            .with_context(|| missing("embedded_image_1_end"))?;
        let len = self
            .symbol("embedded_image_1_len")
            .with_context(|| missing("embedded_image_1_len"))?;
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
        self.contents(&data, span)
            .context("the embedded script is not in a loaded section")
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
pub(crate) mod tests {
    use super::*;

    /// A minimal i386 ELF with one loaded section and the symbols the checks read,
    /// laid out the way FlexBoot's linker script lays out `.textdata`.
    pub(crate) struct FakeImage {
        pub default_ip_ver: u8,
        pub reader_loads_default: bool,
        pub script: Vec<u8>,
        pub banner: String,
        pub missing: Option<&'static str>,
    }

    impl Default for FakeImage {
        fn default() -> Self {
            FakeImage {
                default_ip_ver: 1,
                reader_loads_default: true,
                script: b"#!ipxe\necho hello\n".to_vec(),
                banner: "FlexBoot v3.4.812".into(),
                missing: None,
            }
        }
    }

    impl FakeImage {
        pub(crate) fn build(&self) -> Vec<u8> {
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
            elf32(&text, &symbols)
        }
    }

    /// Writes an ELF32 little-endian relocatable-shaped image: `.textdata` (loaded at
    /// address 0), `.symtab`, `.strtab`, `.shstrtab`.
    fn elf32(text: &[u8], symbols: &[(&str, u32, u32, u16)]) -> Vec<u8> {
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
        section(
            &mut out,
            [
                1,
                1,
                0x7,
                0,
                text_off as u32,
                text.len() as u32,
                0,
                0,
                32,
                0,
            ],
        );
        section(
            &mut out,
            [
                11,
                2,
                0,
                0,
                symtab_off as u32,
                symtab.len() as u32,
                3,
                1,
                4,
                16,
            ],
        );
        section(
            &mut out,
            [
                19,
                3,
                0,
                0,
                strtab_off as u32,
                strtab.len() as u32,
                0,
                0,
                1,
                0,
            ],
        );
        section(
            &mut out,
            [
                27,
                3,
                0,
                0,
                shstrtab_off as u32,
                shstrtab.len() as u32,
                0,
                0,
                1,
                0,
            ],
        );
        let header = &mut out[..52];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 1; // ELFCLASS32
        header[5] = 1; // little endian
        header[6] = 1; // EV_CURRENT
        header[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        header[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
        header[20..24].copy_from_slice(&1u32.to_le_bytes());
        header[32..36].copy_from_slice(&(shoff as u32).to_le_bytes());
        header[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
        header[46..48].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
        header[48..50].copy_from_slice(&5u16.to_le_bytes()); // e_shnum
        header[50..52].copy_from_slice(&4u16.to_le_bytes()); // e_shstrndx
        out
    }

    fn expect(script: &[u8]) -> Expectations<'_> {
        Expectations {
            driver: "hermon_driver",
            defaults_reader: "hermon_get_ini_and_defaults",
            default_ip_ver: 1,
            script,
            banner: "FlexBoot v3.4.812",
            patch_symbols: &["sixboot_default_ip_ver"],
        }
    }

    fn error_of(image: &FakeImage, script: &[u8]) -> String {
        format!(
            "{:#}",
            check_elf(&image.build(), &expect(script)).unwrap_err()
        )
    }

    #[test]
    fn accepts_an_image_with_ipv6_default_and_the_script() {
        let image = FakeImage::default();
        let report = check_elf(&image.build(), &expect(&image.script)).unwrap();
        assert_eq!(report.default_ip_ver, 1);
        assert_eq!(report.default_ip_ver_address, 0x40);
        assert_eq!(report.reader_references, 1);
        assert_eq!(report.script_len, image.script.len());
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
    }

    #[test]
    fn rejects_an_image_without_ipv6_or_the_driver() {
        let image = FakeImage {
            missing: Some("ndp_discovery"),
            ..FakeImage::default()
        };
        assert!(error_of(&image, &image.script).contains("`ndp_discovery` is missing"));
        let image = FakeImage {
            missing: Some("hermon_driver"),
            ..FakeImage::default()
        };
        assert!(error_of(&image, &image.script).contains("`hermon_driver` is not linked in"));
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
    fn rejects_bytes_that_are_not_elf() {
        let err = check_elf(b"MZ not an elf", &expect(b"")).unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF file"));
    }
}

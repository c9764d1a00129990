//! Proof of what went into a ROM, read from the linked ELF that iPXE keeps next to it
//! (`bin/<file>.tmp`, `bin-x86_64-efi/<name>.efidrv.tmp`): the final images are
//! compressed, the ELF is not.
//!
//! Checked: IPv6 is linked in (`ipv6_protocol`, an `ndp_*` and a `dhcpv6_*` symbol), the
//! embedded script's bytes equal the input (`embedded_image_1_data`, `_len`), the NIC
//! driver is present, and each patch's `Verify-Symbol` is there when the patch was
//! applied and absent when it was skipped.

use std::path::Path;

use anyhow::{Context, Result};
use goblin::elf::Elf;

/// What one image must contain.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The driver symbol (`hermon_driver`, `golan_driver`, `virtio_net_driver`).
    pub driver_symbol: &'a str,
    /// The embedded script, byte for byte.
    pub script: &'a [u8],
    /// Symbols that applied patches add (each must be present).
    pub present: Vec<&'a str>,
    /// Symbols of skipped patches (each must be absent).
    pub absent: Vec<&'a str>,
}

/// The checks that passed, for the manifest (`["ipv6", "script", ...]`).
pub type Passed = Vec<String>;

/// Checks the ELF at `path`; every failed check is listed in the error.
pub fn check_elf_file(path: &Path, expect: &Expectations<'_>) -> Result<Passed> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the ELF intermediate {} (did make keep it?)",
            path.display()
        )
    })?;
    check_elf(&bytes, expect).with_context(|| format!("{} failed verification", path.display()))
}

/// Checks ELF bytes against `expect`.
pub fn check_elf(bytes: &[u8], expect: &Expectations<'_>) -> Result<Passed> {
    let elf = Elf::parse(bytes).context("not an ELF file")?;
    let symbol = |name: &str| {
        elf.syms
            .iter()
            .find(|sym| elf.strtab.get_at(sym.st_name) == Some(name))
    };
    let any_with_prefix = |prefix: &str| {
        elf.syms.iter().any(|sym| {
            elf.strtab
                .get_at(sym.st_name)
                .is_some_and(|name| name.starts_with(prefix))
        })
    };
    let mut failures = Vec::new();
    let mut passed = Vec::new();

    let ipv6_missing: Vec<&str> = [
        ("ipv6_protocol", symbol("ipv6_protocol").is_some()),
        ("ndp_*", any_with_prefix("ndp_")),
        ("dhcpv6_*", any_with_prefix("dhcpv6_")),
    ]
    .into_iter()
    .filter(|(_, found)| !found)
    .map(|(name, _)| name)
    .collect();
    if ipv6_missing.is_empty() {
        passed.push("ipv6".to_string());
    } else {
        failures.push(format!(
            "IPv6 is not linked in (missing {}): is NET_PROTO_IPV6 defined in config/local/general.h?",
            ipv6_missing.join(", ")
        ));
    }

    match embedded_script(&elf, bytes) {
        Ok(Some(embedded)) if embedded == expect.script => passed.push("script".to_string()),
        Ok(Some(embedded)) => failures.push(format!(
            "the embedded script ({} bytes) differs from the input script ({} bytes)",
            embedded.len(),
            expect.script.len()
        )),
        Ok(None) => failures.push("no embedded script (embedded_image_1_data is missing)".into()),
        Err(err) => failures.push(format!("cannot read the embedded script: {err:#}")),
    }

    if symbol(expect.driver_symbol).is_some() {
        passed.push(format!("driver:{}", expect.driver_symbol));
    } else {
        failures.push(format!(
            "the NIC driver `{}` is not linked in",
            expect.driver_symbol
        ));
    }
    for name in &expect.present {
        if symbol(name).is_some() {
            passed.push(format!("patch-symbol:{name}"));
        } else {
            failures.push(format!(
                "`{name}` is missing although its patch was applied"
            ));
        }
    }
    for name in &expect.absent {
        if symbol(name).is_some() {
            failures.push(format!(
                "`{name}` is present although its patch was skipped"
            ));
        }
    }
    if failures.is_empty() {
        Ok(passed)
    } else {
        anyhow::bail!("{}", failures.join("; "))
    }
}

/// The bytes of the first embedded image: `embedded_image_1_data` is its address and
/// `embedded_image_1_len` an absolute symbol whose value is its length.
fn embedded_script<'a>(elf: &Elf<'_>, bytes: &'a [u8]) -> Result<Option<&'a [u8]>> {
    let find = |name: &str| {
        elf.syms
            .iter()
            .find(|sym| elf.strtab.get_at(sym.st_name) == Some(name))
    };
    let (Some(data), Some(len)) = (find("embedded_image_1_data"), find("embedded_image_1_len"))
    else {
        return Ok(None);
    };
    let section = elf
        .section_headers
        .get(data.st_shndx)
        .context("embedded_image_1_data has no section")?;
    let offset_in_section = data
        .st_value
        .checked_sub(section.sh_addr)
        .context("embedded_image_1_data lies before its section")?;
    let start = section
        .sh_offset
        .checked_add(offset_in_section)
        .context("offset overflow")?;
    let end = start.checked_add(len.st_value).context("length overflow")?;
    let (start, end) = (usize::try_from(start)?, usize::try_from(end)?);
    bytes.get(start..end).map(Some).with_context(|| {
        format!("the script at {start:#x}..{end:#x} lies past the end of the file")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A QEMU ELF intermediate from an earlier real build (`cargo xtask build-rom`), with
    /// the script that went into it.
    fn built_qemu_elf() -> Option<(Vec<u8>, Vec<u8>)> {
        let work = crate::project_root().join("target/build-rom");
        std::fs::read_dir(work).ok()?.flatten().find_map(|entry| {
            let src = entry.path().join("src");
            let elf = std::fs::read(src.join("bin/1af41000.rom.tmp")).ok()?;
            let script = std::fs::read(src.join("sixboot/embed.ipxe")).ok()?;
            Some((elf, script))
        })
    }

    #[test]
    fn a_real_ipxe_elf_passes_and_each_wrong_expectation_fails() {
        let Some((elf, script)) = built_qemu_elf() else {
            println!("SKIPPED: no iPXE build in target/build-rom (run cargo xtask build-rom)");
            return;
        };
        let good = Expectations {
            driver_symbol: "virtio_net_driver",
            script: &script,
            present: vec!["dhcpv6_duid_ll"],
            absent: vec![],
        };
        let passed = check_elf(&elf, &good).unwrap();
        assert!(passed.contains(&"ipv6".to_string()), "{passed:?}");
        assert!(passed.contains(&"script".to_string()), "{passed:?}");

        let mut other_script = script.clone();
        other_script.push(b'\n');
        let cases = [
            (
                Expectations {
                    script: &other_script,
                    ..good.clone()
                },
                "differs from the input script",
            ),
            (
                Expectations {
                    driver_symbol: "hermon_driver",
                    ..good.clone()
                },
                "`hermon_driver` is not linked in",
            ),
            (
                Expectations {
                    present: vec![],
                    absent: vec!["dhcpv6_duid_ll"],
                    ..good.clone()
                },
                "`dhcpv6_duid_ll` is present although its patch was skipped",
            ),
        ];
        for (expect, message) in cases {
            let err = format!("{:#}", check_elf(&elf, &expect).unwrap_err());
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn rejects_bytes_that_are_not_elf() {
        let expect = Expectations {
            driver_symbol: "virtio_net_driver",
            script: b"#!ipxe\n",
            present: vec![],
            absent: vec![],
        };
        let err = check_elf(b"\x55\xaa not an elf", &expect).unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF"));
    }

    #[test]
    fn lists_every_missing_piece_of_a_plain_elf() {
        // Any ELF without iPXE's symbols: this test binary's own executable.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let expect = Expectations {
            driver_symbol: "hermon_driver",
            script: b"#!ipxe\n",
            present: vec!["dhcpv6_duid_ll"],
            absent: vec![],
        };
        let err = format!("{:#}", check_elf(&exe, &expect).unwrap_err());
        assert!(err.contains("IPv6 is not linked in"), "{err}");
        assert!(err.contains("no embedded script"), "{err}");
        assert!(err.contains("`hermon_driver` is not linked in"), "{err}");
        assert!(err.contains("`dhcpv6_duid_ll` is missing"), "{err}");
    }
}

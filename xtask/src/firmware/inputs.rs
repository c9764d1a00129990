//! Everything that goes into a ROM besides the iPXE source: the `config/local` headers,
//! the embedded script (and its lint), an optional trusted CA, and the patches.
//!
//! All of it is read once into memory, so the cache key, the build tree and the
//! manifest see the same bytes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `config/local` headers, relative to the project root.
pub const CONFIG_DIR: &str = "ipxe-config/local";
/// The default embedded script.
pub const DEFAULT_SCRIPT: &str = "ipxe-config/embed.ipxe";
/// The embedded script for `--dual-stack`.
pub const DUAL_STACK_SCRIPT: &str = "ipxe-config/embed-dual-stack.ipxe";

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file read into memory, with the path it came from (for messages and the manifest).
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Where it was read from, as the user or the project names it.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl InputFile {
    /// Reads `path`; the error names the file and what it was for.
    pub fn read(path: &Path, what: &str) -> Result<InputFile> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the {what} {}", path.display()))?;
        Ok(InputFile {
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// SHA-256 of the bytes.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// One `config/local/*.h` header: its name inside `config/local/` and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigHeader {
    /// File name, for example `general.h`.
    pub name: String,
    /// Contents.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// SHA-256 of the contents.
    pub sha256: String,
}

/// Reads every `*.h` in `dir`, sorted by name.
pub fn read_config_headers(dir: &Path) -> Result<Vec<ConfigHeader>> {
    let mut headers = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if !name.ends_with(".h") {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        headers.push(ConfigHeader {
            name: name.to_string(),
            sha256: sha256_hex(&bytes),
            bytes,
        });
    }
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    if headers.is_empty() {
        bail!(
            "no *.h in {}: it must hold at least general.h with NET_PROTO_IPV6",
            dir.display()
        );
    }
    Ok(headers)
}

/// One hash over all config headers (names and contents), for the manifest.
pub fn config_hash(headers: &[ConfigHeader]) -> String {
    let mut hasher = Sha256::new();
    for header in headers {
        hasher.update(header.name.as_bytes());
        hasher.update([0]);
        hasher.update((header.bytes.len() as u64).to_le_bytes());
        hasher.update(&header.bytes);
    }
    hex::encode(hasher.finalize())
}

/// Checks the script to embed with the project's one iPXE script linter
/// (`sixboot::script::lint`, the rules of `sixboot script lint`): errors fail with every
/// problem as `FILE:LINE: message`, warnings are printed to stderr and returned.
pub fn lint_script(file: &InputFile) -> Result<Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for problem in sixboot::script::lint(&file.bytes) {
        let line = format!(
            "{}:{}: {}",
            file.path.display(),
            problem.line,
            problem.message
        );
        // Errors are what iPXE rejects or misreads; warnings run but surprise.
        match problem.severity {
            sixboot::script::Severity::Error => errors.push(line),
            sixboot::script::Severity::Warning => warnings.push(line),
        }
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !errors.is_empty() {
        bail!("the script to embed has problems:\n{}", errors.join("\n"));
    }
    Ok(warnings)
}

/// One patch from `patches/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patch {
    /// File name, for example `0001-duid-ll.patch`.
    pub file: String,
    /// The name `--no-patch` takes: the file name without its number and extension.
    pub name: String,
    /// SHA-256 of the patch file.
    pub sha256: String,
    /// Symbols the patch adds, from its `Verify-Symbol:` header lines; the ELF check
    /// requires them when the patch is applied and their absence when it is skipped.
    pub verify_symbols: Vec<String>,
    /// The patch's bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// The short name of a patch file: `0001-duid-ll.patch` → `duid-ll`.
pub fn patch_name(file: &str) -> String {
    let stem = file.strip_suffix(".patch").unwrap_or(file);
    let without_number = stem.trim_start_matches(|c: char| c.is_ascii_digit());
    without_number
        .strip_prefix('-')
        .unwrap_or(without_number)
        .to_string()
}

/// Reads `dir/*.patch` (not subdirectories: `patches/flexboot/` belongs to FlexBoot),
/// in name order; a missing directory has no patches.
pub fn read_patches(dir: &Path) -> Result<Vec<Patch>> {
    let mut patches = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(patches),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if !file.ends_with(".patch") || !path.is_file() {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let verify_symbols = String::from_utf8_lossy(&bytes)
            .lines()
            .take_while(|line| !line.starts_with("diff --git"))
            .filter_map(|line| line.strip_prefix("Verify-Symbol:"))
            .map(|symbol| symbol.trim().to_string())
            .collect();
        patches.push(Patch {
            file: file.to_string(),
            name: patch_name(file),
            sha256: sha256_hex(&bytes),
            verify_symbols,
            bytes,
        });
    }
    sort_patches(&mut patches);
    Ok(patches)
}

/// Puts patches in the order they apply: by file name, byte for byte.
pub fn sort_patches(patches: &mut [Patch]) {
    patches.sort_by(|a, b| a.file.cmp(&b.file));
}

/// Splits `patches` into (applied, skipped) by `--no-patch` names; an unknown name is
/// an error that lists the known ones.
pub fn select_patches(
    patches: &[Patch],
    skip: &[String],
    patch_dir: &str,
) -> Result<(Vec<Patch>, Vec<Patch>)> {
    for name in skip {
        if !patches.iter().any(|p| &p.name == name || &p.file == name) {
            let known: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "--no-patch {name}: there is no such patch in {patch_dir}/ (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    Ok(patches
        .iter()
        .cloned()
        .partition(|p| !skip.iter().any(|name| name == &p.name || name == &p.file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(file: &str) -> Patch {
        Patch {
            file: file.to_string(),
            name: patch_name(file),
            sha256: String::new(),
            verify_symbols: Vec::new(),
            bytes: Vec::new(),
        }
    }

    fn script(bytes: &[u8]) -> InputFile {
        InputFile {
            path: PathBuf::from("boot.ipxe"),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn accepts_the_default_scripts() {
        for path in [DEFAULT_SCRIPT, DUAL_STACK_SCRIPT] {
            let file = InputFile::read(&crate::project_root().join(path), "script").unwrap();
            assert_eq!(lint_script(&file).unwrap(), Vec::<String>::new(), "{path}");
        }
    }

    #[test]
    fn rejects_what_the_library_linter_rejects_naming_file_and_line() {
        let err = lint_script(&script(b"#!/bin/sh\nchain http://[2001:db8::1]/x\n")).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("boot.ipxe:1: the first line is `#!/bin/sh`"),
            "{err}"
        );
        let err = lint_script(&script(b"#!ipxe\nchain http://2001:db8::1/x\n")).unwrap_err();
        assert!(err.to_string().contains("boot.ipxe:2: "), "{err}");
        assert!(lint_script(&script(b"#!ipxe\nchain http://[2001:db8::1]:8080/x\n")).is_ok());
        // Warnings (here CRLF line ends, which iPXE strips) are returned, not fatal.
        let warnings = lint_script(&script(b"#!ipxe\r\nchain http://[2001:db8::1]/x\r\n")).unwrap();
        assert!(!warnings.is_empty(), "CRLF must give a warning");
    }

    #[test]
    fn names_patches_by_what_follows_their_number() {
        assert_eq!(patch_name("0001-duid-ll.patch"), "duid-ll");
        assert_eq!(patch_name("0010-fix-thing.patch"), "fix-thing");
        assert_eq!(patch_name("plain.patch"), "plain");
    }

    #[test]
    fn sorts_patches_by_file_name() {
        let mut patches = vec![
            patch("0010-b.patch"),
            patch("0002-c.patch"),
            patch("0001-a.patch"),
        ];
        sort_patches(&mut patches);
        let files: Vec<&str> = patches.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(files, ["0001-a.patch", "0002-c.patch", "0010-b.patch"]);
    }

    #[test]
    fn skips_patches_by_name_and_rejects_unknown_names() {
        let patches = vec![patch("0001-duid-ll.patch"), patch("0002-other.patch")];
        let (applied, skipped) =
            select_patches(&patches, &["duid-ll".to_string()], "patches").unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].name, "other");
        assert_eq!(skipped[0].name, "duid-ll");
        let err = select_patches(&patches, &["nope".to_string()], "patches").unwrap_err();
        assert!(err.to_string().contains("known: duid-ll, other"), "{err}");
    }

    #[test]
    fn the_committed_patches_apply_in_order_and_name_their_symbols() {
        let patches = read_patches(&crate::project_root().join("patches")).unwrap();
        let duid = patches.iter().find(|p| p.name == "duid-ll").unwrap();
        assert_eq!(duid.verify_symbols, ["dhcpv6_duid_ll"]);
        let flexboot = read_patches(&crate::project_root().join("patches/flexboot")).unwrap();
        let names: Vec<&str> = flexboot.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            names,
            [
                "0001-parserom-perl-5.36.patch",
                "0002-ipv6-default-boot-ip-version.patch"
            ]
        );
        assert_eq!(flexboot[1].verify_symbols, ["sixboot_default_ip_ver"]);
    }

    #[test]
    fn the_committed_config_enables_ipv6_and_the_operator_commands() {
        let headers = read_config_headers(&crate::project_root().join(CONFIG_DIR)).unwrap();
        let general = headers.iter().find(|h| h.name == "general.h").unwrap();
        let text = String::from_utf8_lossy(&general.bytes);
        for define in [
            "NET_PROTO_IPV6",
            "DOWNLOAD_PROTO_HTTPS",
            "PING_CMD",
            "IPSTAT_CMD",
            "NSLOOKUP_CMD",
            "POWEROFF_CMD",
            "REBOOT_CMD",
        ] {
            assert!(
                text.lines()
                    .any(|line| line.trim() == format!("#define {define}")),
                "{define}"
            );
        }
    }

    #[test]
    fn config_hash_changes_with_any_byte() {
        let mut headers = read_config_headers(&crate::project_root().join(CONFIG_DIR)).unwrap();
        let before = config_hash(&headers);
        headers[0].bytes.push(b'\n');
        assert_ne!(before, config_hash(&headers));
    }

    #[test]
    fn a_second_patch_dropped_in_the_directory_is_applied_after_the_first_with_its_symbol() {
        // What issue 20's `0002-*.patch` needs: no list to edit, the file name orders it.
        let dir = std::env::temp_dir().join(format!("sixboot-patches-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("flexboot")).unwrap();
        let patch = |symbol: &str| {
            format!("Subject: x\nVerify-Symbol: {symbol}\n---\ndiff --git a/x b/x\n+Verify-Symbol: not_a_header\n")
        };
        std::fs::write(
            dir.join("0002-no-ip-literal-sni.patch"),
            patch("tls_sni_skip_literal"),
        )
        .unwrap();
        std::fs::write(dir.join("0001-duid-ll.patch"), patch("dhcpv6_duid_ll")).unwrap();
        std::fs::write(dir.join("flexboot/0001-other.patch"), patch("other")).unwrap();
        let patches = read_patches(&dir).unwrap();
        let files: Vec<&str> = patches.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            files,
            ["0001-duid-ll.patch", "0002-no-ip-literal-sni.patch"]
        );
        assert_eq!(patches[1].name, "no-ip-literal-sni");
        assert_eq!(patches[1].verify_symbols, ["tls_sni_skip_literal"]);
        let (applied, skipped) =
            select_patches(&patches, &["no-ip-literal-sni".to_string()], "patches").unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(skipped[0].verify_symbols, ["tls_sni_skip_literal"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

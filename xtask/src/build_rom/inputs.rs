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
/// Patches against the pinned iPXE, applied in name order.
pub const PATCH_DIR: &str = "patches";

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

/// A problem the script lint found, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// Checks an iPXE script before it is embedded.
///
/// iPXE runs an embedded image as a script only when it starts with `#!ipxe` and a
/// whitespace character; anything else is silently not a script, and the ROM then
/// does nothing useful. Also caught: a UTF-8 byte-order mark, CR line endings (the CR
/// ends up inside the last argument of every line) and IPv6 literals in URLs without
/// the brackets that iPXE's URI parser needs.
pub fn lint_script(bytes: &[u8]) -> Vec<LintError> {
    let mut errors = Vec::new();
    let error = |line: usize, message: &str| LintError {
        line,
        message: message.to_string(),
    };
    if bytes.starts_with(&[0xef, 0xbb, 0xbf]) {
        errors.push(error(
            1,
            "starts with a UTF-8 byte-order mark; iPXE needs `#!ipxe` as the very first bytes (save without BOM)",
        ));
        return errors;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        errors.push(error(1, "is not UTF-8 text"));
        return errors;
    };
    let first = text.split('\n').next().unwrap_or("");
    if first.trim_end_matches('\r') != "#!ipxe" {
        errors.push(error(
            1,
            &format!(
                "first line is `{}`, it must be exactly `#!ipxe` (otherwise iPXE does not run it as a script)",
                first.trim_end_matches('\r')
            ),
        ));
    }
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        if line.ends_with('\r') {
            errors.push(error(
                number,
                "ends with CR (Windows line endings); convert the file to LF line endings",
            ));
            break;
        }
    }
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(url) = unbracketed_ipv6_url(line) {
            errors.push(error(
                index + 1,
                &format!("`{url}` has an IPv6 address without brackets; write it as http://[2001:db8::1]/path"),
            ));
        }
    }
    errors
}

/// Finds a URL whose host is an IPv6 literal without brackets (`http://2001:db8::1/`).
fn unbracketed_ipv6_url(line: &str) -> Option<&str> {
    let mut rest = line;
    while let Some(start) = rest.find("://") {
        let after = &rest[start + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(after.len());
        let authority = &after[..end];
        let host = authority.rsplit('@').next().unwrap_or(authority);
        // An iPXE setting such as ${next-server} may expand to anything; only literal
        // hosts are checked.
        if !host.starts_with('[') && !host.contains('$') && host.matches(':').count() >= 2 {
            let scheme_start = rest[..start]
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |i| i + 1);
            return Some(&rest[scheme_start..start + 3 + end]);
        }
        rest = &after[end..];
    }
    None
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
/// in name order.
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
pub fn select_patches(patches: &[Patch], skip: &[String]) -> Result<(Vec<Patch>, Vec<Patch>)> {
    for name in skip {
        if !patches.iter().any(|p| &p.name == name || &p.file == name) {
            let known: Vec<&str> = patches.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "--no-patch {name}: there is no such patch in {PATCH_DIR}/ (known: {})",
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

    #[test]
    fn accepts_the_default_scripts() {
        for script in [DEFAULT_SCRIPT, DUAL_STACK_SCRIPT] {
            let bytes = std::fs::read(crate::project_root().join(script)).unwrap();
            assert_eq!(lint_script(&bytes), vec![], "{script}");
        }
    }

    #[test]
    fn rejects_a_script_without_the_ipxe_magic_line() {
        let errors = lint_script(b"#!/bin/sh\nchain http://[2001:db8::1]/x\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("exactly `#!ipxe`"));
        assert_eq!(lint_script(b"#!ipxe --x\n").len(), 1);
        assert_eq!(lint_script(b"").len(), 1);
    }

    #[test]
    fn rejects_a_byte_order_mark_and_crlf_line_endings() {
        let errors = lint_script(b"\xef\xbb\xbf#!ipxe\n");
        assert!(errors[0].message.contains("byte-order mark"));
        let errors = lint_script(b"#!ipxe\r\nshell\r\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("LF line endings"));
    }

    #[test]
    fn rejects_ipv6_urls_without_brackets_and_names_the_line() {
        let script = b"#!ipxe\nifconf -c ipv6\nkernel http://2001:db8::1/vmlinuz inst.ks=http://[2001:db8::1]/ks\n";
        let errors = lint_script(script);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(
            errors[0].message.contains("`http://2001:db8::1`"),
            "{}",
            errors[0].message
        );
        assert!(lint_script(b"#!ipxe\nchain http://[2001:db8::1]:8080/x\n").is_empty());
        assert!(lint_script(b"#!ipxe\nchain http://boot.example:8080/x\n").is_empty());
        assert!(lint_script(b"#!ipxe\nchain http://${next-server}/x\n").is_empty());
        assert!(lint_script(b"#!ipxe\n# http://2001:db8::1/ in a comment\n").is_empty());
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
        let (applied, skipped) = select_patches(&patches, &["duid-ll".to_string()]).unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].name, "other");
        assert_eq!(skipped[0].name, "duid-ll");
        let err = select_patches(&patches, &["nope".to_string()]).unwrap_err();
        assert!(err.to_string().contains("known: duid-ll, other"), "{err}");
    }

    #[test]
    fn the_committed_patches_apply_in_order_and_name_their_symbols() {
        let patches = read_patches(&crate::project_root().join(PATCH_DIR)).unwrap();
        let duid = patches.iter().find(|p| p.name == "duid-ll").unwrap();
        assert_eq!(duid.verify_symbols, ["dhcpv6_duid_ll"]);
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
}

//! Which file names a TFTP client may ask for: the lexical half of path safety.
//!
//! A requested name becomes a path relative to the configured root, or is refused.
//! The same rules as the HTTP file routes: no `..` component, nothing outside the root.
//! A leading `/` means the root itself (as with tftp-hpa `--secure` and dnsmasq, and as
//! `tftp://host/ipxe.efi` URLs produce), so `/ipxe.efi` and `ipxe.efi` are the same file.
//! Backslashes count as separators too, since Windows-style loaders send
//! `boot\x64\wdsnbp.com`. The symlink half (a link inside the root pointing out of it)
//! cannot be decided without the file system; `tftp::server` opens files with
//! `openat2(RESOLVE_BENEATH)` for that. This module does no I/O.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Why a requested file name is refused before the file system is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the file name is empty")]
    Empty,
    #[error("the file name has a `..` component, which could leave the TFTP root")]
    ParentComponent,
    #[error("the file name names the TFTP root itself, not a file")]
    OnlyRoot,
}

/// Turns a requested file name into a path relative to the root, or refuses it.
///
/// `.` and empty components are dropped; `..` anywhere is refused even when it would
/// stay inside the root, because no boot loader needs it and refusing is simpler to
/// reason about than normalising.
pub fn relative_path(filename: &[u8]) -> Result<PathBuf, PathError> {
    if filename.is_empty() {
        return Err(PathError::Empty);
    }
    let mut path = PathBuf::new();
    for component in filename.split(|&b| b == b'/' || b == b'\\') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(PathError::ParentComponent),
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    if path.as_os_str().is_empty() {
        return Err(PathError::OnlyRoot);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_rooted_names_mean_the_same_file() {
        assert_eq!(
            relative_path(b"ipxe.efi").unwrap(),
            PathBuf::from("ipxe.efi")
        );
        assert_eq!(
            relative_path(b"/ipxe.efi").unwrap(),
            PathBuf::from("ipxe.efi")
        );
        assert_eq!(
            relative_path(b"//efi/./ipxe.efi").unwrap(),
            PathBuf::from("efi/ipxe.efi")
        );
    }

    #[test]
    fn backslashes_separate_components() {
        assert_eq!(
            relative_path(b"boot\\x64\\wdsnbp.com").unwrap(),
            PathBuf::from("boot/x64/wdsnbp.com")
        );
    }

    #[test]
    fn refuses_parent_components_in_every_spelling() {
        for name in [
            &b"../etc/passwd"[..],
            b"/../etc/passwd",
            b"efi/../../etc/passwd",
            b"efi/..",
            b"..\\windows",
            b"a/b/..",
        ] {
            assert_eq!(
                relative_path(name),
                Err(PathError::ParentComponent),
                "{name:?}"
            );
        }
    }

    #[test]
    fn refuses_empty_names_and_the_root_itself() {
        assert_eq!(relative_path(b""), Err(PathError::Empty));
        assert_eq!(relative_path(b"/"), Err(PathError::OnlyRoot));
        assert_eq!(relative_path(b"./."), Err(PathError::OnlyRoot));
    }

    #[test]
    fn keeps_names_that_merely_contain_dots() {
        assert_eq!(
            relative_path(b"..hidden").unwrap(),
            PathBuf::from("..hidden")
        );
        assert_eq!(relative_path(b"a..b/c").unwrap(), PathBuf::from("a..b/c"));
        assert_eq!(
            relative_path(b"%2e%2e/x").unwrap(),
            PathBuf::from("%2e%2e/x"),
            "TFTP has no percent-encoding: this is a literal directory name"
        );
    }
}

//! `/files/…`: turning a request path into a file beneath the configured root, and
//! the HTTP semantics of serving it (Range, ETag, Last-Modified, conditionals).
//!
//! Defence in depth against path traversal: the path is percent-decoded exactly once
//! and split into segments, and any `..` or `.` segment, NUL byte or backslash is
//! refused ([`clean_path`]); the file is then opened with `openat2(RESOLVE_BENEATH)`
//! relative to the root directory's descriptor, so the kernel itself refuses a symlink
//! or `..` that would leave the root ([`open_beneath`]). Only regular files are served.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a request path cannot name a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path has a `..` or `.` segment")]
    DotSegment,
    #[error("the path has a NUL byte or a backslash")]
    BadByte,
    #[error("the path names no file")]
    Empty,
}

/// Decodes the part of a URL path after `/files/` into a relative path with only
/// normal segments. Empty segments (`a//b`, a leading `/`) are dropped, which keeps an
/// "absolute" path such as `/files//etc/passwd` beneath the root.
pub fn clean_path(raw: &str) -> Result<PathBuf, PathError> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    if decoded.iter().any(|b| *b == 0 || *b == b'\\') {
        return Err(PathError::BadByte);
    }
    let mut path = PathBuf::new();
    for segment in decoded.split(|b| *b == b'/') {
        match segment {
            b"" => continue,
            b"." | b".." => return Err(PathError::DotSegment),
            _ => path.push(std::ffi::OsStr::from_bytes(segment)),
        }
    }
    if path.as_os_str().is_empty() {
        return Err(PathError::Empty);
    }
    Ok(path)
}

/// The root directory served under `/files/`, held open so that every lookup is
/// relative to the same directory even if its path is renamed.
#[derive(Debug)]
pub struct FilesRoot {
    path: PathBuf,
    canonical: PathBuf,
    dir: OwnedFd,
}

impl FilesRoot {
    /// Opens the root directory.
    pub fn open(path: &Path) -> io::Result<FilesRoot> {
        let dir = File::open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(FilesRoot {
            path: path.to_owned(),
            canonical: path.canonicalize()?,
            dir: dir.into(),
        })
    }

    /// The root as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a cleaned relative path beneath the root; a regular file or an error
    /// (`NotFound` for anything missing, outside the root, or not a regular file).
    pub fn open_beneath(&self, relative: &Path) -> io::Result<(File, std::fs::Metadata)> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let file: File = match rustix::fs::openat2(
            self.dir.as_fd(),
            relative,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd.into(),
            // Kernels before 5.6 lack openat2: resolve in user space and compare.
            Err(rustix::io::Errno::NOSYS) => {
                let full = self.canonical.join(relative).canonicalize()?;
                if !full.starts_with(&self.canonical) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "outside the root"));
                }
                File::open(full)?
            }
            Err(rustix::io::Errno::XDEV) => {
                return Err(io::Error::new(io::ErrorKind::NotFound, "outside the root"))
            }
            Err(errno) => return Err(errno.into()),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not a regular file",
            ));
        }
        Ok((file, meta))
    }
}

/// What a `Range` header asks for, given the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole file (RFC 9110 section 14.2 lets a server
    /// ignore a Range it does not support, such as several ranges).
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416: no byte of the range is in the file.
    Unsatisfiable,
}

/// Parses a `Range` header (RFC 9110 section 14.1.2) for a file of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // bytes=-N: the last N bytes.
        return match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(suffix) => RangeRequest::Partial {
                start: len.saturating_sub(suffix),
                end: len - 1,
            },
            None => RangeRequest::Full,
        };
    }
    let Some(start) = number(first) else {
        return RangeRequest::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) => end,
            None => return RangeRequest::Full,
        }
    };
    if end < start {
        return RangeRequest::Full;
    }
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// The validators of one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong ETag from inode, size and modification time.
    pub etag: String,
    /// `Last-Modified` in HTTP-date form.
    pub last_modified: String,
    modified_secs: u64,
}

impl Validators {
    /// The validators of a file from its metadata.
    pub fn of(meta: &std::fs::Metadata) -> Validators {
        let modified_secs = u64::try_from(meta.mtime()).unwrap_or(0);
        let modified = UNIX_EPOCH + Duration::from_secs(modified_secs);
        Validators {
            etag: format!(
                "\"{:x}-{:x}-{:x}.{:x}\"",
                meta.ino(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec()
            ),
            last_modified: httpdate::fmt_http_date(modified),
            modified_secs,
        }
    }

    /// Whether a GET may answer 304 (RFC 9110 section 13.2.2: If-None-Match wins
    /// over If-Modified-Since).
    pub fn not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(tags) = if_none_match {
            return tags.trim() == "*"
                || tags
                    .split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == self.etag);
        }
        if let Some(since) = if_modified_since.and_then(|s| httpdate::parse_http_date(s).ok()) {
            let since = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            return self.modified_secs <= since;
        }
        false
    }

    /// Whether an `If-Range` value still names this version, so the Range applies.
    pub fn if_range_matches(&self, if_range: &str) -> bool {
        let if_range = if_range.trim();
        if if_range.starts_with('"') {
            if_range == self.etag
        } else {
            httpdate::parse_http_date(if_range)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .is_some_and(|d| d.as_secs() == self.modified_secs)
        }
    }
}

/// The current time as an HTTP date, for the `Date` header.
pub fn http_date(now: SystemTime) -> String {
    httpdate::fmt_http_date(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_keeps_normal_segments() {
        assert_eq!(clean_path("vmlinuz").unwrap(), PathBuf::from("vmlinuz"));
        assert_eq!(clean_path("a//b/c").unwrap(), PathBuf::from("a/b/c"));
        assert_eq!(
            clean_path("/etc/passwd").unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean_path("my%20file").unwrap(), PathBuf::from("my file"));
        // Decoded once only: `%252e%252e` is the literal name `%2e%2e`, not `..`.
        assert_eq!(clean_path("%252e%252e").unwrap(), PathBuf::from("%2e%2e"));
    }

    #[test]
    fn clean_path_refuses_dot_segments_in_every_spelling() {
        for raw in [
            "..",
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "%2E%2e%2fx",
            "..%2fx",
            "a/%2e%2e",
            ".",
            "./x",
        ] {
            assert_eq!(clean_path(raw), Err(PathError::DotSegment), "{raw}");
        }
        assert_eq!(clean_path("a%00b"), Err(PathError::BadByte));
        assert_eq!(clean_path("..%5cx"), Err(PathError::BadByte));
        assert_eq!(clean_path("//"), Err(PathError::Empty));
    }

    #[test]
    fn parse_range_follows_rfc_9110() {
        use RangeRequest::*;
        assert_eq!(
            parse_range("bytes=0-99", 1000),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=900-", 1000),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-100", 1000),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range("bytes=-5000", 1000),
            Partial { start: 0, end: 999 }
        );
        assert_eq!(
            parse_range("bytes=990-5000", 1000),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Full);
        assert_eq!(parse_range("bytes=5-1", 1000), Full);
        assert_eq!(parse_range("bytes=x-1", 1000), Full);
        assert_eq!(parse_range("items=0-1", 1000), Full);
    }

    #[test]
    fn validators_answer_conditionals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let v = Validators::of(&std::fs::metadata(&path).unwrap());
        assert!(v.not_modified(Some(&v.etag), None));
        assert!(v.not_modified(Some(&format!("\"x\", {}", v.etag)), None));
        assert!(!v.not_modified(Some("\"other\""), Some(&v.last_modified)));
        assert!(v.not_modified(None, Some(&v.last_modified)));
        assert!(!v.not_modified(None, Some("Thu, 01 Jan 1970 00:00:00 GMT")));
        assert!(v.if_range_matches(&v.etag) && v.if_range_matches(&v.last_modified));
        assert!(!v.if_range_matches("\"stale\""));
    }
}

//! The one way sixboot replaces a file: [`write`](fn@write), so that a reader, a crash or
//! a full disk never sees half a file.
//!
//! Used for everything written whole: `sixboot rom pack`/`split` outputs, the compacted
//! lease log and the server DUID (`leases::store`), the inventory's file backend, and
//! README's bench blocks (`cargo xtask readme`). Append-only logs (`leases.jsonl`) are
//! not replaced and do not go through here.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The step of [`write`](fn@write) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the temporary file beside the target (directory missing, not writable…).
    Create,
    /// Writing the bytes into the temporary file (disk full, quota…).
    Write,
    /// `fsync` of the temporary file.
    Sync,
    /// Renaming the temporary file over the target (the target is a directory…).
    Rename,
    /// `fsync` of the directory after the rename: the target already holds the new bytes,
    /// complete, but the rename may not survive a power loss.
    SyncDir,
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::Create => "create a temporary file for",
            Step::Write => "write a temporary file for",
            Step::Sync => "fsync a temporary file for",
            Step::Rename => "rename a temporary file over",
            Step::SyncDir => "fsync the directory of",
        }
    }
}

/// Why [`write`](fn@write) failed: the target path, the step, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("cannot {} {}: {source}", step.describe(), path.display())]
pub struct AtomicWriteError {
    /// The file that was to be replaced (not the temporary file).
    pub path: PathBuf,
    pub step: Step,
    #[source]
    pub source: std::io::Error,
}

/// Makes temporary names unique between threads of one process (the pid makes them
/// unique between processes).
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Replaces (or creates) `path` with exactly `bytes`, durably and atomically.
///
/// Steps: create `.<name>.tmp.<pid>.<n>` in `path`'s own directory (`O_EXCL`, so the
/// rename never crosses file systems and never reuses someone else's file), write all
/// bytes, `fsync` it, `rename(2)` it over `path`, then `fsync` the directory so that the
/// rename itself survives a power loss.
///
/// Guarantees:
/// - `path` never holds a partial file: readers see the old bytes or all new bytes.
/// - On an error before the rename ([`Step::Create`] … [`Step::Rename`]) an existing
///   `path` is left exactly as it was and the temporary file is removed.
/// - On [`Step::SyncDir`] (the only step after the rename) `path` already holds all the
///   new bytes; the error says only that durability is not confirmed.
///
/// A new file gets the default mode (`0o666` less the umask), as `File::create` gives; a
/// symbolic link at `path` is replaced by the file, not followed. Writers of the same
/// path must serialise themselves (a lock) if neither may lose its update: the last
/// rename wins.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let fail = |step: Step| {
        move |source: std::io::Error| AtomicWriteError {
            path: path.to_owned(),
            step,
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        fail(Step::Create)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let replaced = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(fail(Step::Create))?;
        file.write_all(bytes).map_err(fail(Step::Write))?;
        file.sync_all().map_err(fail(Step::Sync))?;
        std::fs::rename(&tmp, path).map_err(fail(Step::Rename))
    })();
    if replaced.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    replaced?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(fail(Step::SyncDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_then_replaces_a_file_with_exactly_the_new_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"first, longer contents\n").unwrap();
        write(&path, b"second\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second\n");
        assert_eq!(names_in(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_rename_keeps_the_existing_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file: rename(2) fails.
        let target = dir.path().join("out.rom");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"kept").unwrap();
        let err = write(&target, b"new").unwrap_err();
        assert_eq!(err.step, Step::Rename);
        assert!(
            err.to_string().starts_with(&format!(
                "cannot rename a temporary file over {}:",
                target.display()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"kept");
        assert_eq!(names_in(dir.path()), ["out.rom"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/file");
        let err = write(&path, b"x").unwrap_err();
        assert_eq!(err.step, Step::Create);
        assert_eq!(err.path, path);
        assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn concurrent_writers_never_leave_a_mixed_or_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|scope| {
            for bytes in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..10 {
                        write(path, bytes).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&path).unwrap();
        assert!(contents.contains(&got), "a mix of writers' bytes");
        assert_eq!(names_in(dir.path()), ["shared"]);
    }
}

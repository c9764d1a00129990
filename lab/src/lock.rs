//! Cross-process locks: one TCG VM at a time on the machine, one user of a namespace name.
//!
//! `flock(2)` on a file under `/run/lock` (or the temp dir when that is not writable).
//! flock locks belong to an open file description, so two threads of one test binary
//! exclude each other as two processes do; the lock goes away with the process, so a
//! crashed run never leaves one behind.

use std::fs::File;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use super::{io_error, LabError, Result};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _flock: Flock<File>,
    pub path: PathBuf,
}

/// Waits for and takes the lock named `name` (letters, digits, `-`).
pub fn lock(name: &str) -> Result<FileLock> {
    let dir = [PathBuf::from("/run/lock"), std::env::temp_dir()]
        .into_iter()
        .find(|dir| {
            let probe = dir.join(".sixboot-lab-probe");
            let ok = File::create(&probe).is_ok();
            let _ = std::fs::remove_file(&probe);
            ok
        })
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("sixboot-lab-{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(format!(
            "cannot open lock file {}",
            path.display()
        )))?;
    let flock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| LabError::Io {
        what: format!("cannot lock {}", path.display()),
        source: std::io::Error::from(errno),
    })?;
    Ok(FileLock {
        _flock: flock,
        path,
    })
}

/// One TCG virtual machine at a time on this machine (across test binaries, worktrees and
/// benchmarks): two on two cores only make both slow and their timeouts flaky.
pub fn vm_lock() -> Result<FileLock> {
    lock("vm")
}

//! The lease store: the append-only log `state_dir/leases.jsonl`, its lock, and the
//! server DUID file. The I/O half of [`super`]; the table and the log format are pure
//! and live there.
//!
//! The server appends the changes of a batch of requests, calls `fdatasync`, and only
//! then sends the replies: a client never holds an address that a restart could forget.
//! On open the log is replayed ([`super::replay`]), a torn last line (a crash mid-write)
//! is dropped, and the surviving leases are compacted into a fresh file with
//! [`atomic_file::write`](fn@atomic_file::write). The server's DUID lives beside it in
//! `server-duid`, so that clients renewing after a restart still find their server.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{compacted_log, encode_changes, replay, LeaseChange, LeaseTable};
use crate::atomic_file::{self, AtomicWriteError};

/// Why the lease store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "{path} is locked: another sixboot boot-server uses this state_dir; stop it, or give \
         this one its own server.state_dir"
    )]
    Locked { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: not a lease record ({message}); the log is damaged before its last \
         line, so sixboot will not guess: move the file aside to start with no leases"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LeaseError + '_ {
    move |source| LeaseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The append-only lease log in `state_dir`.
#[derive(Debug)]
pub struct LeaseStore {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    /// Held for the store's life: two servers appending to one log would each hand
    /// out addresses the other does not know about.
    _lock: nix::fcntl::Flock<File>,
}

/// The lock file's name inside `state_dir`.
pub const LOCK_FILE: &str = "leases.lock";

/// The log's file name inside `state_dir`.
pub const LEASE_FILE: &str = "leases.jsonl";
/// The server DUID's file name inside `state_dir`.
pub const SERVER_DUID_FILE: &str = "server-duid";

/// Reads the log without opening it for writing (for `sixboot leases`).
pub fn read_leases(state_dir: &Path) -> Result<LeaseTable, LeaseError> {
    let path = state_dir.join(LEASE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(LeaseTable::default()),
        Err(err) => return Err(io_error(&path)(err)),
    };
    let replayed = replay(&text).map_err(|err| LeaseError::Corrupt {
        path: path.clone(),
        line: err.line,
        message: err.message,
    })?;
    if let Some(line) = replayed.torn_last_line {
        // A crash while appending leaves a torn last line, never acknowledged.
        tracing::warn!(path = %path.display(), line, "dropping torn last line");
    }
    Ok(replayed.table)
}

impl LeaseStore {
    /// Opens (creating if needed) the log in `state_dir`, replays it, drops leases that
    /// expired before `now`, and compacts the file.
    pub fn open(state_dir: &Path, now: u64) -> Result<(LeaseStore, LeaseTable), LeaseError> {
        std::fs::create_dir_all(state_dir).map_err(io_error(state_dir))?;
        let lock_path = state_dir.join(LOCK_FILE);
        let lock_file = File::create(&lock_path).map_err(io_error(&lock_path))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| LeaseError::Locked {
                path: lock_path.clone(),
            })?;
        let mut table = read_leases(state_dir)?;
        table.expire(now);
        let path = state_dir.join(LEASE_FILE);
        atomic_file::write(&path, &compacted_log(&table))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok((
            LeaseStore {
                path,
                file,
                buffer: Vec::new(),
                _lock: lock,
            },
            table,
        ))
    }

    /// Queues changes; nothing is durable until [`LeaseStore::commit`].
    pub fn append(&mut self, changes: &[LeaseChange]) {
        encode_changes(&mut self.buffer, changes);
    }

    /// Writes the queued changes and waits until they are on disk.
    pub fn commit(&mut self) -> Result<(), LeaseError> {
        let buffer = std::mem::take(&mut self.buffer);
        self.write_synced(&buffer)
    }

    /// Appends log lines made by [`encode_changes`] and waits until they are on disk.
    pub fn write_synced(&mut self, lines: &[u8]) -> Result<(), LeaseError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(lines)
            .and_then(|()| self.file.sync_data())
            .map_err(io_error(&self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The server's DUID, created once (a DUID-UUID from 16 random bytes) and kept.
pub fn load_or_create_server_duid(state_dir: &Path) -> Result<Vec<u8>, LeaseError> {
    let path = state_dir.join(SERVER_DUID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let duid = hex::decode(text.trim()).map_err(|e| LeaseError::Corrupt {
                path: path.clone(),
                line: 1,
                message: e.to_string(),
            })?;
            if duid.len() < 3 {
                return Err(LeaseError::Corrupt {
                    path,
                    line: 1,
                    message: "a DUID has at least 3 bytes".into(),
                });
            }
            Ok(duid)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(state_dir).map_err(io_error(state_dir))?;
            let mut random = [0u8; 16];
            let urandom = Path::new("/dev/urandom");
            File::open(urandom)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
                .map_err(io_error(urandom))?;
            let mut duid = vec![0, 4];
            duid.extend_from_slice(&random);
            atomic_file::write(&path, format!("{}\n", hex::encode(&duid)).as_bytes())?;
            Ok(duid)
        }
        Err(err) => Err(io_error(&path)(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::tests::lease;

    #[test]
    fn log_survives_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, table) = LeaseStore::open(dir.path(), 0).unwrap();
        assert!(table.is_empty());
        let a = lease(1, Some(1), "2001:db8::10", 1_000);
        let b = lease(2, Some(2), "2001:db8::11", 1_000);
        store.append(&[LeaseChange::Bind(a.clone()), LeaseChange::Bind(b.clone())]);
        store.commit().unwrap();
        store.append(&[LeaseChange::Release {
            key: b.key.clone(),
            address: b.address,
        }]);
        store.commit().unwrap();
        drop(store);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LEASE_FILE))
            .unwrap();
        file.write_all(b"{\"bind\":{\"key\":").unwrap();
        let (_, table) = LeaseStore::open(dir.path(), 10).unwrap();
        assert_eq!(table.leases(), vec![&a]);
        // Expired leases are compacted away on open.
        let (_, table) = LeaseStore::open(dir.path(), 1_000).unwrap();
        assert!(table.is_empty());
    }

    #[test]
    fn a_second_store_on_the_same_state_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = LeaseStore::open(dir.path(), 0).unwrap();
        let err = LeaseStore::open(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("another sixboot boot-server"), "{err}");
        drop(first);
        assert!(LeaseStore::open(dir.path(), 0).is_ok());
    }

    #[test]
    fn refuses_a_log_damaged_before_its_last_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEASE_FILE), "garbage\n{}\n").unwrap();
        let err = LeaseStore::open(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("leases.jsonl:1:"), "{err}");
        assert!(err.contains("move the file aside"), "{err}");
    }

    #[test]
    fn server_duid_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_server_duid(dir.path()).unwrap();
        assert_eq!(&first[..2], &[0, 4]);
        assert_eq!(first.len(), 18);
        assert_eq!(load_or_create_server_duid(dir.path()).unwrap(), first);
    }
}

//! DHCPv6 leases: the in-memory table the engine reads, and the crash-safe log the
//! server writes before it acknowledges anything.
//!
//! The log (`leases.jsonl` in `state_dir`) is append-only JSON lines, one
//! [`LeaseChange`] per line. The server appends the changes of a batch of requests,
//! calls `fdatasync`, and only then sends the replies: a client never holds an address
//! that a restart could forget. On open the log is replayed, a torn last line (a crash
//! mid-write) is dropped, and the surviving leases are compacted into a fresh file with
//! [`atomic_file::write`]. The server's DUID lives beside it in `server-duid`, so
//! that clients renewing after a restart still find their server.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{self, AtomicWriteError};
use crate::mac::Mac;

/// What makes two leases different: two machines with the same DUID (an all-zero
/// DUID-UUID from a blank SMBIOS) but different MACs never share a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseKey {
    #[serde(with = "hex_bytes")]
    pub duid: Vec<u8>,
    pub iaid: u32,
    pub mac: Option<Mac>,
}

/// Where the engine learnt a client's MAC, in the order it tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MacSource {
    /// DUID-LLT or DUID-LL (RFC 8415 sections 11.2, 11.4).
    Duid,
    /// Client link-layer address option 79 from a relay (RFC 6939).
    RelayOption79,
    /// EUI-64 link-local source address whose MAC also gives the IA_NA's IAID under
    /// iPXE's CRC-32: the way an iPXE client with a DUID-UUID is recognised.
    Eui64Iaid,
    /// EUI-64 link-local source address, IAID not matching iPXE's.
    Eui64,
}

/// One address bound to one client IA (or declined by a client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub key: LeaseKey,
    pub address: Ipv6Addr,
    pub mac_source: Option<MacSource>,
    /// The configured host's name, when the MAC is known to the config.
    pub host: Option<String>,
    /// Unix seconds at which the valid lifetime ends.
    pub expires: u64,
    /// A client said the address is in use by someone else (Decline): nobody gets it
    /// until `expires`.
    #[serde(default)]
    pub declined: bool,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseChange {
    Bind(Lease),
    Release { key: LeaseKey, address: Ipv6Addr },
}

/// The current leases, indexed by address and by client IA.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    by_address: HashMap<Ipv6Addr, Lease>,
    by_key: HashMap<LeaseKey, Ipv6Addr>,
}

impl LeaseTable {
    /// The lease on this address, expired or not.
    pub fn by_address(&self, address: &Ipv6Addr) -> Option<&Lease> {
        self.by_address.get(address)
    }

    /// The lease this client IA holds, expired or not.
    pub fn by_key(&self, key: &LeaseKey) -> Option<&Lease> {
        self.by_key
            .get(key)
            .and_then(|address| self.by_address.get(address))
            .filter(|lease| lease.key == *key && !lease.declined)
    }

    /// Whether `key` could take `address` at `now`: nobody holds it, its lease
    /// expired, or `key` already holds it.
    pub fn is_free_for(&self, address: &Ipv6Addr, key: &LeaseKey, now: u64) -> bool {
        match self.by_address.get(address) {
            None => true,
            Some(lease) => lease.expires <= now || (!lease.declined && lease.key == *key),
        }
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// Every lease, sorted by address.
    pub fn leases(&self) -> Vec<&Lease> {
        let mut all: Vec<&Lease> = self.by_address.values().collect();
        all.sort_by_key(|lease| lease.address);
        all
    }

    /// Applies one change. Replaying the log through this gives back the table.
    pub fn apply(&mut self, change: &LeaseChange) {
        match change {
            LeaseChange::Bind(lease) => {
                if !lease.declined {
                    if let Some(old) = self.by_key.insert(lease.key.clone(), lease.address) {
                        if old != lease.address
                            && self
                                .by_address
                                .get(&old)
                                .is_some_and(|l| l.key == lease.key)
                        {
                            self.by_address.remove(&old);
                        }
                    }
                }
                if let Some(previous) = self.by_address.insert(lease.address, lease.clone()) {
                    if previous.key != lease.key
                        && self.by_key.get(&previous.key) == Some(&lease.address)
                    {
                        self.by_key.remove(&previous.key);
                    }
                }
            }
            LeaseChange::Release { key, address } => {
                if self.by_address.get(address).is_some_and(|l| l.key == *key) {
                    self.by_address.remove(address);
                }
                if self.by_key.get(key) == Some(address) {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// Drops leases that ended before `now`; they are free either way, this only
    /// bounds memory.
    pub fn expire(&mut self, now: u64) {
        let gone: Vec<Lease> = self
            .by_address
            .values()
            .filter(|lease| lease.expires <= now)
            .cloned()
            .collect();
        for lease in gone {
            self.apply(&LeaseChange::Release {
                key: lease.key,
                address: lease.address,
            });
        }
    }
}

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
    let mut table = LeaseTable::default();
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(table),
        Err(err) => return Err(io_error(&path)(err)),
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(io_error(&path))?;
    let n_lines = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<LeaseChange>(line) {
            Ok(change) => table.apply(&change),
            // A crash while appending leaves a torn last line, never acknowledged.
            Err(_) if i + 1 == n_lines => {
                tracing::warn!(path = %path.display(), line = i + 1, "dropping torn last line");
            }
            Err(err) => {
                return Err(LeaseError::Corrupt {
                    path,
                    line: i + 1,
                    message: err.to_string(),
                })
            }
        }
    }
    Ok(table)
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
        let mut text = Vec::new();
        for lease in table.leases() {
            serde_json::to_writer(&mut text, &LeaseChange::Bind(lease.clone()))
                .map_err(|e| io_error(&path)(e.into()))?;
            text.push(b'\n');
        }
        atomic_file::write(&path, &text)?;
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

/// Appends the log lines for `changes` to `out` (what [`LeaseStore::append`] queues).
pub fn encode_changes(out: &mut Vec<u8>, changes: &[LeaseChange]) {
    for change in changes {
        // Serializing plain structs into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, change).is_ok() {
            out.push(b'\n');
        }
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

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(duid: u8, mac: Option<u8>, address: &str, expires: u64) -> Lease {
        Lease {
            key: LeaseKey {
                duid: vec![0, 4, duid],
                iaid: 1,
                mac: mac.map(|m| Mac([2, 0, 0, 0, 0, m])),
            },
            address: address.parse().unwrap(),
            mac_source: Some(MacSource::Duid),
            host: None,
            expires,
            declined: false,
        }
    }

    #[test]
    fn rebinding_a_key_frees_its_old_address() {
        let mut table = LeaseTable::default();
        let a = lease(1, Some(1), "2001:db8::10", 100);
        let mut b = a.clone();
        b.address = "2001:db8::11".parse().unwrap();
        table.apply(&LeaseChange::Bind(a.clone()));
        table.apply(&LeaseChange::Bind(b.clone()));
        assert_eq!(table.len(), 1);
        assert!(table.by_address(&a.address).is_none());
        assert_eq!(table.by_key(&a.key), Some(&b));
    }

    #[test]
    fn same_duid_with_different_macs_are_different_leases() {
        let mut table = LeaseTable::default();
        let a = lease(0, Some(1), "2001:db8::10", 100);
        let b = lease(0, Some(2), "2001:db8::11", 100);
        table.apply(&LeaseChange::Bind(a.clone()));
        table.apply(&LeaseChange::Bind(b.clone()));
        assert_eq!(table.len(), 2);
        assert!(!table.is_free_for(&a.address, &b.key, 50));
        assert!(table.is_free_for(&a.address, &b.key, 100));
    }

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

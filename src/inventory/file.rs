//! The file backend: the inventory's rows in `state_dir/hosts.json`, boot events in
//! `state_dir/events.jsonl`, API tokens in `state_dir/api-tokens.json`.
//!
//! `hosts.json` is only ever replaced whole (temporary file, fsync, rename, fsync the
//! directory), so a crash leaves the old or the new file, never half of one. Every
//! read-modify-write holds an exclusive `flock` on `hosts.lock`, so a running server
//! and the CLI can change it at the same time; a commit whose rows another process
//! changed since they were read is refused ([`StoreError::Conflict`]) and the caller
//! reloads. Other processes' changes are noticed by the file's inode, size and
//! modification time ([`FileStore::changed`]). Version 1 files (install flag and stage
//! per MAC, before the inventory store) are read as state rows.
//!
//! Events are appended to `events.jsonl`; after every [`COMPACT_EVERY`] appended
//! events the file is rewritten with only each host's last [`MAX_BOOTS`] boots, so it
//! stays bounded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::model::{retain_recent_boots, BootEvent, HostState, RowWrite, Rows, Stage};
use super::{ApiToken, StoreError};
use crate::mac::Mac;

/// Boots kept per host in `events.jsonl`.
pub const MAX_BOOTS: u64 = 10;
/// Appended events between two compactions of `events.jsonl`.
pub const COMPACT_EVERY: usize = 5_000;

/// Identifies one version of a file: a rename gives a new inode.
pub type FileKey = (u64, i64, i64, u64);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    #[serde(default)]
    hosts: BTreeMap<Mac, serde_json::Value>,
    #[serde(default)]
    defined: BTreeMap<Mac, super::model::StoredHost>,
}

/// A state row as version 1 wrote it.
#[derive(Debug, Deserialize)]
struct V1State {
    install: bool,
    #[serde(default)]
    stage: Option<String>,
    /// Seconds in version 1.
    #[serde(default)]
    stage_at: u64,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default)]
    tokens: Vec<ApiToken>,
}

#[derive(Debug, Default)]
struct Cache {
    key: Option<FileKey>,
    rows: Rows,
    appended: usize,
}

/// The inventory in one directory.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    file: PathBuf,
    lock: PathBuf,
    events: PathBuf,
    tokens: PathBuf,
    cache: Mutex<Cache>,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The identity of the file at `path` now, `None` when it does not exist.
pub fn file_key(path: &Path) -> Option<FileKey> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size()))
}

/// Replaces `path` with `bytes` through [`crate::atomic_file::write`].
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    Ok(crate::atomic_file::write(path, bytes)?)
}

impl FileStore {
    /// The store in `dir` (usually `server.state_dir`). Nothing is created until the
    /// first change, so reading changes nothing on disk.
    pub fn open(dir: &Path) -> FileStore {
        FileStore {
            dir: dir.to_owned(),
            file: dir.join("hosts.json"),
            lock: dir.join("hosts.lock"),
            events: dir.join("events.jsonl"),
            tokens: dir.join("api-tokens.json"),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The path of `hosts.json`, for messages.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Whether another process replaced `hosts.json` since this store last read or
    /// wrote it (a `stat`, no read).
    pub fn changed(&self) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        file_key(&self.file) != cache.key
    }

    /// Every row, re-read when the file changed.
    pub fn load(&self) -> Result<Rows, StoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh(&mut cache)?;
        Ok(cache.rows.clone())
    }

    fn refresh(&self, cache: &mut Cache) -> Result<(), StoreError> {
        let key = file_key(&self.file);
        if key.is_some() && key == cache.key {
            return Ok(());
        }
        let text = match std::fs::read(&self.file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                cache.key = None;
                cache.rows = Rows::default();
                return Ok(());
            }
            Err(err) => return Err(io("read", &self.file)(err)),
        };
        let corrupt = |source: serde_json::Error| StoreError::Corrupt {
            path: self.file.clone(),
            message: source.to_string(),
        };
        let document: Document = serde_json::from_slice(&text).map_err(corrupt)?;
        let mut rows = Rows {
            hosts: document.defined,
            states: BTreeMap::new(),
        };
        for (mac, value) in document.hosts {
            let state = if document.version < 2 {
                let old: V1State = serde_json::from_value(value).map_err(corrupt)?;
                HostState {
                    install: old.install,
                    token: None,
                    version: 1,
                    stage: old
                        .stage
                        .as_deref()
                        .and_then(Stage::parse)
                        .unwrap_or_default(),
                    stage_at: old.stage_at.saturating_mul(1000),
                    detail: old.detail,
                    boot: 0,
                    progress: Default::default(),
                }
            } else {
                serde_json::from_value(value).map_err(corrupt)?
            };
            rows.states.insert(mac, state);
        }
        cache.key = key;
        cache.rows = rows;
        Ok(())
    }

    fn locked(&self) -> Result<nix::fcntl::Flock<File>, StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(io("create the state directory", &self.dir))?;
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(io("open the lock file", &self.lock))?;
        nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, errno)| StoreError::Io {
                action: "lock",
                path: self.lock.clone(),
                source: errno.into(),
            },
        )
    }

    /// Persists `writes` atomically, all or none, under the lock. Refuses with
    /// [`StoreError::Conflict`] when a row no longer has the expected version.
    pub fn commit(&self, writes: &[RowWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let _lock = self.locked()?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh(&mut cache)?;
        let mut rows = cache.rows.clone();
        apply_writes(&mut rows, writes)?;
        self.write(&rows)?;
        cache.key = file_key(&self.file);
        cache.rows = rows;
        Ok(())
    }

    fn write(&self, rows: &Rows) -> Result<(), StoreError> {
        let document = Document {
            version: 2,
            hosts: rows
                .states
                .iter()
                .map(|(mac, state)| {
                    (
                        *mac,
                        serde_json::to_value(state).expect("a state always serializes"),
                    )
                })
                .collect(),
            defined: rows.hosts.clone(),
        };
        let mut text =
            serde_json::to_vec_pretty(&document).expect("the inventory always serializes");
        text.push(b'\n');
        write_atomically(&self.file, &text)
    }

    /// Appends boot events (one JSON line each) and compacts now and then.
    pub fn append_events(&self, events: &[BootEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for event in events {
            serde_json::to_writer(&mut text, event).expect("an event always serializes");
            text.push(b'\n');
        }
        let _lock = self.locked()?;
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&self.events)
            .map_err(io("open", &self.events))?;
        file.write_all(&text)
            .map_err(io("append to", &self.events))?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.appended += events.len();
        if cache.appended >= COMPACT_EVERY {
            cache.appended = 0;
            drop(cache);
            let kept = retain_recent_boots(self.read_events()?, MAX_BOOTS);
            let mut text = Vec::new();
            for event in &kept {
                serde_json::to_writer(&mut text, event).expect("an event always serializes");
                text.push(b'\n');
            }
            write_atomically(&self.events, &text)?;
        }
        Ok(())
    }

    fn read_events(&self) -> Result<Vec<BootEvent>, StoreError> {
        let text = match std::fs::read_to_string(&self.events) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io("read", &self.events)(err)),
        };
        // A line cut by a crash mid-append is skipped, not fatal.
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    /// The host's events of its last `max_boots` boots, oldest first.
    pub fn events(&self, mac: &Mac, max_boots: u64) -> Result<Vec<BootEvent>, StoreError> {
        let mine: Vec<BootEvent> = self
            .read_events()?
            .into_iter()
            .filter(|e| e.mac == *mac)
            .collect();
        Ok(retain_recent_boots(mine, max_boots))
    }

    /// Every stored API token (hashes only).
    pub fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        match std::fs::read(&self.tokens) {
            Ok(text) => serde_json::from_slice::<TokenFile>(&text)
                .map(|f| f.tokens)
                .map_err(|e| StoreError::Corrupt {
                    path: self.tokens.clone(),
                    message: e.to_string(),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => Err(io("read", &self.tokens)(err)),
        }
    }

    /// Changes the API tokens under the lock; `change` returns what the caller gets.
    pub fn update_api_tokens<T>(
        &self,
        change: impl FnOnce(&mut Vec<ApiToken>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = self.locked()?;
        let mut tokens = self.api_tokens()?;
        let result = change(&mut tokens)?;
        let mut text =
            serde_json::to_vec_pretty(&TokenFile { tokens }).expect("tokens always serialize");
        text.push(b'\n');
        write_atomically(&self.tokens, &text)?;
        Ok(result)
    }
}

/// Applies row writes to rows, checking each expected version first (all or none).
pub fn apply_writes(rows: &mut Rows, writes: &[RowWrite]) -> Result<(), StoreError> {
    let mut next = rows.clone();
    for write in writes {
        match write {
            RowWrite::PutHost { host, expected } => {
                let actual = next.hosts.get(&host.spec.mac).map(|h| h.version);
                guard(host.spec.mac, *expected, actual)?;
                next.hosts.insert(host.spec.mac, host.clone());
            }
            RowWrite::DeleteHost { mac, expected } => {
                guard(
                    *mac,
                    Some(*expected),
                    next.hosts.get(mac).map(|h| h.version),
                )?;
                next.hosts.remove(mac);
            }
            RowWrite::PutState {
                mac,
                state,
                expected,
            } => {
                let actual = next.states.get(mac).map(|s| s.version);
                guard(*mac, *expected, actual)?;
                next.states.insert(*mac, state.clone());
            }
            RowWrite::DeleteState { mac, expected } => {
                let actual = next.states.get(mac).map(|s| s.version);
                // A host that never had a state row written has nothing to delete.
                if actual.is_some() {
                    guard(*mac, Some(*expected), actual)?;
                }
                next.states.remove(mac);
            }
        }
    }
    *rows = next;
    Ok(())
}

fn guard(mac: Mac, expected: Option<u64>, actual: Option<u64>) -> Result<(), StoreError> {
    if expected == actual {
        Ok(())
    } else {
        Err(StoreError::Conflict { mac })
    }
}

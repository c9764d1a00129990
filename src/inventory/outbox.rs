//! The local queue of changes a server could not write to the database while it was
//! unreachable: `/done` flips and boot stages, with their events.
//!
//! One JSON line per entry in `state_dir/inventory-outbox.jsonl`, appended and
//! fsynced before the client hears "ok", so a queued `/done` survives a crash. Every
//! entry has a random id; the database records the ids it applied (`applied_ops`) in
//! the same transaction as the change, so replaying an entry twice (a crash between
//! the commit and the truncation of this file) applies it once. Events carry their own
//! ids and are skipped when already stored.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{BootEvent, Change};
use super::StoreError;

/// The outbox's file name in `state_dir`.
pub const OUTBOX_FILE: &str = "inventory-outbox.jsonl";

/// One queued write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// A change to apply once (the `applied_ops` id).
    Change { id: String, change: Change },
    /// Boot events to record.
    Events { events: Vec<BootEvent> },
}

/// The outbox file.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    /// Entries in the file (read at open, kept in step with appends).
    entries: Vec<Entry>,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

impl Outbox {
    /// Opens (and reads) the outbox at `path`; a line cut by a crash is dropped.
    pub fn open(path: &Path) -> Result<Outbox, StoreError> {
        let entries = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(io("read", path)(err)),
        };
        Ok(Outbox {
            path: path.to_owned(),
            entries,
        })
    }

    /// The queued entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends entries and fsyncs.
    pub fn append(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for entry in &entries {
            serde_json::to_writer(&mut text, entry).expect("an entry always serializes");
            text.push(b'\n');
        }
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io("open", &self.path))?;
        file.write_all(&text).map_err(io("append to", &self.path))?;
        file.sync_data().map_err(io("fsync", &self.path))?;
        self.entries.extend(entries);
        Ok(())
    }

    /// Drops the first `n` entries (they are in the database now).
    pub fn remove_first(&mut self, n: usize) -> Result<(), StoreError> {
        self.entries.drain(..n.min(self.entries.len()));
        if self.entries.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(io("remove", &self.path)(err)),
            };
        }
        let mut text = Vec::new();
        for entry in &self.entries {
            serde_json::to_writer(&mut text, entry).expect("an entry always serializes");
            text.push(b'\n');
        }
        Ok(crate::atomic_file::write(&self.path, &text)?)
    }
}

//! Per-host install flag and last boot stage, persisted in the config's `state_dir`.
//!
//! The config's `hosts[].install` is only the starting value: `/done/{mac}` turns the
//! flag off (boot-once) and `sixboot hosts install MAC` turns it on again, and both
//! survive restarts. The state lives in one JSON file, `hosts.json`, replaced with
//! [`atomic_file::write`](fn@atomic_file::write) (temporary file, fsync, rename, fsync the directory), so a crash
//! leaves either the old or the new file, never half of one. Every read-modify-write
//! holds an exclusive `flock` on `hosts.lock`, so the running server and the CLI can
//! change it at the same time without losing either change; the server notices the
//! CLI's change by the file's inode, size and modification time, checked on each use.
//!
//! The caller passes the time in ([`HostStates::record_stage`]); nothing here reads the
//! clock.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{self, AtomicWriteError};
use crate::config::Config;
use crate::mac::Mac;

/// The last thing the boot server did for a host, in boot order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Nothing seen since the state file was created.
    #[default]
    None,
    /// Its iPXE script was served.
    Script,
    /// A boot file (kernel, initrd) was served to its address.
    Files,
    /// Its kickstart was served.
    Kickstart,
    /// The installer reported success through `/done/{mac}`.
    Done,
    /// It asked for a script while not marked for install and got 404: it boots from disk.
    LocalDisk,
}

impl Stage {
    /// Every stage, for metrics that list each one.
    pub const ALL: [Stage; 6] = [
        Stage::None,
        Stage::Script,
        Stage::Files,
        Stage::Kickstart,
        Stage::Done,
        Stage::LocalDisk,
    ];

    /// The kebab-case name used in JSON, metrics and tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::None => "none",
            Stage::Script => "script",
            Stage::Files => "files",
            Stage::Kickstart => "kickstart",
            Stage::Done => "done",
            Stage::LocalDisk => "local-disk",
        }
    }
}

/// One host's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub install: bool,
    #[serde(default)]
    pub stage: Stage,
    /// Seconds since the Unix epoch when `stage` was reached; 0 when never.
    #[serde(default)]
    pub stage_at: u64,
    /// What the stage was about (a file name, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    hosts: BTreeMap<Mac, HostRecord>,
}

/// Why the host state could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a sixboot host-state file ({source}); move it away to start from the config's install flags", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{mac} is not in the config's [[hosts]]; add it there first")]
    UnknownHost { mac: Mac },
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Identifies one version of the state file: a rename gives a new inode.
type FileKey = (u64, i64, i64, u64);

#[derive(Debug, Default)]
struct Cache {
    key: Option<FileKey>,
    hosts: BTreeMap<Mac, HostRecord>,
}

/// The host state of one config, shared by the server's tasks and the CLI.
#[derive(Debug)]
pub struct HostStates {
    dir: PathBuf,
    file: PathBuf,
    lock: PathBuf,
    /// `hosts[].install` from the config: the value until something changes it.
    defaults: BTreeMap<Mac, bool>,
    cache: Mutex<Cache>,
}

impl HostStates {
    /// Opens the state of the config's hosts. The directory is created on the first
    /// change, so listing hosts changes nothing on disk.
    pub fn open(config: &Config) -> Result<HostStates, StateError> {
        let defaults = config.hosts.iter().map(|h| (h.mac, h.install)).collect();
        HostStates::open_dir(&config.state_dir, defaults)
    }

    /// Opens the state in `dir` for hosts with these starting install flags.
    pub fn open_dir(dir: &Path, defaults: BTreeMap<Mac, bool>) -> Result<HostStates, StateError> {
        let states = HostStates {
            dir: dir.to_owned(),
            file: dir.join("hosts.json"),
            lock: dir.join("hosts.lock"),
            defaults,
            cache: Mutex::new(Cache::default()),
        };
        states.refresh()?;
        Ok(states)
    }

    /// The path of the state file, for messages.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Whether the host is known to the config.
    pub fn knows(&self, mac: &Mac) -> bool {
        self.defaults.contains_key(mac)
    }

    /// The host's state: persisted if anything was recorded, else the config's flag.
    /// `None` for a MAC the config does not list.
    pub fn get(&self, mac: &Mac) -> Option<HostRecord> {
        let default = *self.defaults.get(mac)?;
        if let Err(err) = self.refresh() {
            tracing::warn!(error = %err, "keeping the host state read before");
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        Some(cache.hosts.get(mac).cloned().unwrap_or(HostRecord {
            install: default,
            stage: Stage::None,
            stage_at: 0,
            detail: None,
        }))
    }

    /// Every configured host's state, in MAC order.
    pub fn all(&self) -> Vec<(Mac, HostRecord)> {
        self.defaults
            .keys()
            .filter_map(|mac| self.get(mac).map(|r| (*mac, r)))
            .collect()
    }

    /// Turns the host's install flag on or off, persisted. Returns the old value.
    pub fn set_install(&self, mac: &Mac, install: bool) -> Result<bool, StateError> {
        self.update(mac, |record| {
            let old = record.install;
            record.install = install;
            old
        })
    }

    /// Records that the host reached `stage` at `now`. Writes only when the stage or
    /// its detail changes, so serving the same script again costs no disk write.
    /// `Stage::Done` also turns the install flag off. Returns whether it wrote.
    pub fn record_stage(
        &self,
        mac: &Mac,
        stage: Stage,
        detail: Option<&str>,
        now: SystemTime,
    ) -> Result<bool, StateError> {
        if let Some(current) = self.get(mac) {
            let install_after = current.install && stage != Stage::Done;
            if current.stage == stage
                && current.detail.as_deref() == detail
                && current.install == install_after
            {
                return Ok(false);
            }
        }
        let at = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.update(mac, |record| {
            record.stage = stage;
            record.stage_at = at;
            record.detail = detail.map(str::to_owned);
            if stage == Stage::Done {
                record.install = false;
            }
        })?;
        Ok(true)
    }

    /// Read-modify-write under the lock file.
    fn update<T>(
        &self,
        mac: &Mac,
        change: impl FnOnce(&mut HostRecord) -> T,
    ) -> Result<T, StateError> {
        let Some(&default) = self.defaults.get(mac) else {
            return Err(StateError::UnknownHost { mac: *mac });
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create the state directory", &self.dir))?;
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(io("open the lock file", &self.lock))?;
        let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| StateError::Io {
                action: "lock",
                path: self.lock.clone(),
                source: errno.into(),
            })?;
        self.refresh()?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let mut hosts = cache.hosts.clone();
        let record = hosts.entry(*mac).or_insert(HostRecord {
            install: default,
            stage: Stage::None,
            stage_at: 0,
            detail: None,
        });
        let result = change(record);
        self.write(&hosts)?;
        cache.key = file_key(&self.file);
        cache.hosts = hosts;
        Ok(result)
    }

    fn write(&self, hosts: &BTreeMap<Mac, HostRecord>) -> Result<(), StateError> {
        let state = StateFile {
            version: 1,
            hosts: hosts.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&state).expect("host state always serializes");
        text.push(b'\n');
        Ok(atomic_file::write(&self.file, &text)?)
    }

    /// Re-reads the file if another process replaced it since the last read.
    fn refresh(&self) -> Result<(), StateError> {
        let key = file_key(&self.file);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if key == cache.key && key.is_some() {
            return Ok(());
        }
        if key.is_none() {
            cache.key = None;
            cache.hosts.clear();
            return Ok(());
        }
        let text = match std::fs::read(&self.file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                cache.key = None;
                cache.hosts.clear();
                return Ok(());
            }
            Err(err) => return Err(io("read", &self.file)(err)),
        };
        let state: StateFile =
            serde_json::from_slice(&text).map_err(|source| StateError::Corrupt {
                path: self.file.clone(),
                source,
            })?;
        cache.key = key;
        cache.hosts = state.hosts;
        Ok(())
    }
}

fn file_key(path: &Path) -> Option<FileKey> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn open(dir: &Path) -> HostStates {
        let defaults = [
            (mac("52:54:00:12:34:56"), true),
            (mac("00:02:c9:aa:bb:01"), false),
        ]
        .into_iter()
        .collect();
        HostStates::open_dir(dir, defaults).unwrap()
    }

    #[test]
    fn starts_from_the_config_install_flags() {
        let dir = tempfile::tempdir().unwrap();
        let states = open(dir.path());
        assert!(states.get(&mac("52:54:00:12:34:56")).unwrap().install);
        assert!(!states.get(&mac("00:02:c9:aa:bb:01")).unwrap().install);
        assert!(states.get(&mac("00:00:00:00:00:01")).is_none());
        assert!(!states.path().exists(), "nothing written before a change");
    }

    #[test]
    fn done_turns_install_off_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let node = mac("52:54:00:12:34:56");
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        {
            let states = open(dir.path());
            assert!(states
                .record_stage(&node, Stage::Script, None, now)
                .unwrap());
            assert!(!states
                .record_stage(&node, Stage::Script, None, now)
                .unwrap());
            assert!(states.record_stage(&node, Stage::Done, None, now).unwrap());
        }
        let states = open(dir.path());
        let record = states.get(&node).unwrap();
        assert!(!record.install);
        assert_eq!(record.stage, Stage::Done);
        assert_eq!(record.stage_at, 1_700_000_000);
    }

    #[test]
    fn sees_a_change_made_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let cx3 = mac("00:02:c9:aa:bb:01");
        let server = open(dir.path());
        let cli = open(dir.path());
        assert!(!server.get(&cx3).unwrap().install);
        assert!(!cli.set_install(&cx3, true).unwrap());
        assert!(server.get(&cx3).unwrap().install);
    }

    #[test]
    fn refuses_unknown_hosts_and_names_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let states = open(dir.path());
        let err = states
            .set_install(&mac("00:00:00:00:00:01"), true)
            .unwrap_err();
        assert!(err.to_string().contains("not in the config"), "{err}");
        std::fs::write(dir.path().join("hosts.json"), "{ half").unwrap();
        let defaults = BTreeMap::new();
        let err = HostStates::open_dir(dir.path(), defaults)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hosts.json") && err.contains("move it away"),
            "{err}"
        );
    }
}

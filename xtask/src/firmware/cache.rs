//! The input-hash cache and the work-directory lock, for every flavour.
//!
//! Each target's images are stored under `<work>/cache/<target>-<key>/`, where the key is
//! a SHA-256 over everything that can change them: the flavour, the source, the applied
//! patches, the compiler flags, the config headers, the script, the CA, the version
//! stamp and the toolchain. A run whose keys are all cached calls no make at all. Bump
//! [`CACHE_FORMAT`] whenever the build logic changes what goes into an image.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::inputs::sha256_hex;
use super::package::ImageRecord;

/// Changes whenever build-rom itself changes what it puts into the images.
pub const CACHE_FORMAT: u32 = 3;

/// Everything a target's images depend on.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInputs<'a> {
    /// [`CACHE_FORMAT`].
    pub format: u32,
    /// "ipxe" or "flexboot".
    pub flavor: &'a str,
    /// The target's name.
    pub target: &'a str,
    /// The source's identity ([`super::source::Source::identity`]).
    pub source: &'a str,
    /// Applied patches: file name and SHA-256, in apply order.
    pub patches: Vec<(&'a str, &'a str)>,
    /// The compiler flags of the target's trees (`EXTRA_CFLAGS`).
    pub flags: Vec<&'a str>,
    /// Hash over the config headers.
    pub config: &'a str,
    /// SHA-256 of the embedded script.
    pub script: &'a str,
    /// SHA-256 of the trusted CA, if any.
    pub trust: Option<&'a str>,
    /// The version stamped into combined images.
    pub rom_version: (u16, u16, u16),
    /// Compiler and linker versions.
    pub toolchain: &'a str,
}

impl KeyInputs<'_> {
    /// The cache key: SHA-256 of the inputs' canonical JSON.
    pub fn key(&self) -> String {
        sha256_hex(&serde_json::to_vec(self).expect("key inputs always serialize"))
    }
}

/// The directory of one cache entry.
pub fn entry_dir(work_dir: &Path, target: &str, key: &str) -> PathBuf {
    work_dir
        .join("cache")
        .join(format!("{target}-{}", &key[..16]))
}

/// The records of a complete cache entry, or None when there is none.
pub fn load_entry(dir: &Path) -> Option<Vec<ImageRecord>> {
    let bytes = std::fs::read(dir.join("images.json")).ok()?;
    let records: Vec<ImageRecord> = serde_json::from_slice(&bytes).ok()?;
    records
        .iter()
        .all(|r| dir.join(file_name(&r.file)).is_file())
        .then_some(records)
}

/// The file name of a record's path (`cx3/15b31003.mrom` → `15b31003.mrom`).
pub fn file_name(relative: &str) -> &str {
    relative.rsplit('/').next().unwrap_or(relative)
}

/// Stores a target's images (`(record, bytes)`) as a cache entry, atomically.
pub fn store_entry(dir: &Path, images: &[(ImageRecord, Vec<u8>)]) -> Result<()> {
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    for (record, bytes) in images {
        std::fs::write(partial.join(file_name(&record.file)), bytes)?;
    }
    let records: Vec<&ImageRecord> = images.iter().map(|(record, _)| record).collect();
    std::fs::write(
        partial.join("images.json"),
        serde_json::to_vec_pretty(&records)?,
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&partial, dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}

/// Keeps the newest `keep` entries of each target and removes the rest.
pub fn prune(work_dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(work_dir.join("cache")) else {
        return;
    };
    let mut by_target: std::collections::BTreeMap<String, Vec<(std::time::SystemTime, PathBuf)>> =
        Default::default();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((target, _)) = name.rsplit_once('-') else {
            continue;
        };
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        by_target
            .entry(target.to_string())
            .or_default()
            .push((modified, entry.path()));
    }
    for (_, mut entries) in by_target {
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        for (_, path) in entries.into_iter().skip(keep) {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Exclusive use of the work directory (build trees and cache) by one build-rom at a
/// time: a directory created atomically, holding the owner's pid. A lock whose owner is
/// gone is taken over.
pub struct WorkLock {
    dir: PathBuf,
}

impl WorkLock {
    /// Waits up to `timeout` for the lock.
    pub fn acquire(work_dir: &Path, timeout: Duration) -> Result<WorkLock> {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("cannot create {}", work_dir.display()))?;
        let dir = work_dir.join("lock");
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::write(dir.join("pid"), std::process::id().to_string())?;
                    return Ok(WorkLock { dir });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(dir.join("pid")).ok();
                    let alive = owner
                        .as_deref()
                        .map(str::trim)
                        .is_some_and(|pid| Path::new("/proc").join(pid).exists());
                    if !alive && start.elapsed() > Duration::from_millis(200) {
                        // Gone (or never wrote its pid): take the lock over.
                        let _ = std::fs::remove_dir_all(&dir);
                        continue;
                    }
                    if start.elapsed() > timeout {
                        bail!(
                            "{} is locked by process {} (another build-rom); wait for it or remove the directory",
                            dir.display(),
                            owner.unwrap_or_default().trim()
                        );
                    }
                    if !told && alive {
                        eprintln!("waiting for another build-rom (lock {})", dir.display());
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot create {}", dir.display()))
                }
            }
        }
    }
}

impl Drop for WorkLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>() -> KeyInputs<'a> {
        KeyInputs {
            format: CACHE_FORMAT,
            flavor: "ipxe",
            target: "qemu",
            source: "git:0ab2277c40f1de56c736b9e7db7ee23d52509ec5",
            patches: vec![("0001-duid-ll.patch", "aa")],
            flags: vec!["-ffile-prefix-map=$(CURDIR)=."],
            config: "bb",
            script: "cc",
            trust: None,
            rom_version: (0, 1, 0),
            toolchain: "gcc 12",
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        assert_eq!(inputs().key(), inputs().key());
        assert_eq!(inputs().key().len(), 64);
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs().key();
        let changed = [
            KeyInputs {
                script: "cd",
                ..inputs()
            },
            KeyInputs {
                target: "cx3",
                ..inputs()
            },
            KeyInputs {
                config: "bc",
                ..inputs()
            },
            KeyInputs {
                patches: vec![],
                ..inputs()
            },
            KeyInputs {
                flags: vec!["-DDEVICE_CX3"],
                ..inputs()
            },
            KeyInputs {
                trust: Some("dd"),
                ..inputs()
            },
            KeyInputs {
                source: "plain:ee",
                ..inputs()
            },
            KeyInputs {
                rom_version: (0, 1, 1),
                ..inputs()
            },
            KeyInputs {
                toolchain: "gcc 13",
                ..inputs()
            },
            KeyInputs {
                flavor: "flexboot",
                ..inputs()
            },
            KeyInputs {
                format: CACHE_FORMAT + 1,
                ..inputs()
            },
        ];
        for other in changed {
            assert_ne!(other.key(), base, "{other:?}");
        }
    }

    #[test]
    fn an_entry_round_trips_and_an_incomplete_one_is_a_miss() {
        let base = std::env::temp_dir().join(format!("sixboot-cache-{}", std::process::id()));
        let dir = entry_dir(&base, "qemu", &inputs().key());
        let record = ImageRecord {
            target: "qemu".into(),
            file: "qemu/ipxe.lkrn".into(),
            kind: "lkrn".into(),
            pci_ids: vec![],
            size: 3,
            sha256: sha256_hex(b"abc"),
            checks: vec![],
            experimental: false,
        };
        store_entry(&dir, &[(record.clone(), b"abc".to_vec())]).unwrap();
        assert_eq!(load_entry(&dir), Some(vec![record]));
        std::fs::remove_file(dir.join("ipxe.lkrn")).unwrap();
        assert_eq!(load_entry(&dir), None);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let base = std::env::temp_dir().join(format!("sixboot-lock-{}", std::process::id()));
        let lock = WorkLock::acquire(&base, Duration::from_secs(1)).unwrap();
        let err = WorkLock::acquire(&base, Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(err.to_string().contains("is locked by process"), "{err}");
        drop(lock);
        let again = WorkLock::acquire(&base, Duration::from_secs(1)).unwrap();
        drop(again);
        std::fs::remove_dir_all(&base).unwrap();
    }
}

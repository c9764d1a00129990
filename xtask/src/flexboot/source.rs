//! Getting the pinned FlexBoot source into sixboot's own build trees.
//!
//! The user's copy is only ever read. A git repository (work tree or bare) is exported
//! with `git archive` at the pinned commit; a tree without git metadata is copied with a
//! warning, because nothing proves it is the pinned commit. Without `--flexboot-src`, a
//! bare clone of the upstream repository is kept under the work directory. Patches are
//! applied to a fresh copy that only gets its final name once every patch applied, so a
//! build tree is never half patched.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

/// The pinned FlexBoot source: the `[flexboot]` table of the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Where a fresh clone comes from.
    pub url: String,
    /// The branch the commit is on; a fresh clone fetches only it.
    pub branch: String,
    /// Mellanox's release number, which also goes into the banner (`FlexBoot v3.4.812`).
    pub release: String,
    /// Full 40-hex-digit commit id, lower case.
    pub commit: String,
    /// The commit's date as RFC 3339.
    pub date: String,
    /// `date` as seconds since the Unix epoch: the build timestamp linked into the ROM.
    pub epoch: i64,
}

impl Pin {
    /// The short form people read in logs (`a188cf47f`).
    pub fn short(&self) -> &str {
        &self.commit[..9]
    }

    /// Reads the `[flexboot]` table of the lock file at `path`.
    pub fn load(path: &Path) -> Result<Pin> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lock file {}", path.display()))?;
        Pin::parse(&text).with_context(|| format!("bad lock file {}", path.display()))
    }

    /// Parses the text of a lock file; errors name the field.
    pub fn parse(text: &str) -> Result<Pin> {
        #[derive(Deserialize)]
        struct RawLock {
            flexboot: Option<RawPin>,
        }
        #[derive(Deserialize)]
        struct RawPin {
            url: Option<String>,
            branch: Option<String>,
            release: Option<String>,
            commit: Option<String>,
            date: Option<String>,
        }
        let raw: RawLock = toml::from_str(text).context("not valid TOML")?;
        let Some(raw) = raw.flexboot else {
            bail!("no [flexboot] table (it needs url, branch, release, commit and date)");
        };
        let field = |value: Option<String>, name: &str| -> Result<String> {
            match value {
                Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                _ => bail!("[flexboot] has no `{name}`"),
            }
        };
        let commit = field(raw.commit, "commit")?.to_ascii_lowercase();
        if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("[flexboot] commit `{commit}` is not a full 40-hex-digit git commit id");
        }
        let date = field(raw.date, "date")?;
        let epoch = parse_rfc3339(&date).with_context(|| {
            format!(
                "[flexboot] date `{date}` is not an RFC 3339 date like 2016-07-05T14:39:15+03:00"
            )
        })?;
        Ok(Pin {
            url: field(raw.url, "url")?,
            branch: field(raw.branch, "branch")?,
            release: field(raw.release, "release")?,
            commit,
            date,
            epoch,
        })
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS(Z|±HH:MM)` into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<i64> {
    let b = text.as_bytes();
    let shape_ok = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    if !shape_ok {
        bail!("expected YYYY-MM-DDTHH:MM:SS followed by Z or ±HH:MM");
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64> {
        text.get(range.clone())
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("`{}` is not a number", &text[range]))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        bail!("date or time out of range");
    }
    let offset = match &text[19..] {
        "Z" => 0,
        zone if zone.len() == 6 && zone.as_bytes()[3] == b':' => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => bail!("time zone `{zone}` must start with + or -"),
            };
            sign * (number(20..22)? * 3600 + number(23..25)? * 60)
        }
        zone => bail!("time zone `{zone}` is neither Z nor ±HH:MM"),
    };
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// One patch from `patches/flexboot/`, read into memory so the tree key and the tree
/// see the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// File name, e.g. `0002-ipv6-default-boot-ip-version.patch`.
    pub file: String,
    /// Where it was read from (given to `git apply`).
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Reads every `*.patch` in `dir`, in name order (the order they are applied in).
pub fn read_patches(dir: &Path) -> Result<Vec<Patch>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the patch directory {}", dir.display()))?;
    let mut patches = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if !file.ends_with(".patch") {
            continue;
        }
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read the patch {}", path.display()))?;
        patches.push(Patch {
            file: file.to_string(),
            path: path.clone(),
            bytes,
        });
    }
    patches.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(patches)
}

/// Where the pinned commit is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A git repository (work tree or bare) that holds the pinned commit.
    Git(PathBuf),
    /// A tree without git metadata: copied as it is.
    Plain(PathBuf),
}

impl Source {
    /// For logs and the manifest.
    pub fn describe(&self) -> String {
        match self {
            Source::Git(path) => format!("git repository {}", path.display()),
            Source::Plain(path) => format!("plain tree {} (no git metadata)", path.display()),
        }
    }
}

/// Finds the FlexBoot source: `flexboot_src` when given, else a bare clone of the
/// pinned URL kept in `work_dir` (cloned on first use).
pub fn resolve(
    sh: &Shell,
    flexboot_src: Option<&Path>,
    work_dir: &Path,
    pin: &Pin,
) -> Result<Source> {
    match flexboot_src {
        Some(path) => resolve_local(sh, path, pin),
        None => clone_cached(sh, work_dir, pin),
    }
}

fn is_git_repository(sh: &Shell, path: &Path) -> bool {
    cmd!(sh, "git -C {path} rev-parse --git-dir")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn has_commit(sh: &Shell, repo: &Path, commit: &str) -> bool {
    let object = format!("{commit}^{{commit}}");
    cmd!(sh, "git -C {repo} cat-file -e {object}")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn resolve_local(sh: &Shell, path: &Path, pin: &Pin) -> Result<Source> {
    if !path.is_dir() {
        bail!(
            "--flexboot-src {}: no such directory; give a clone of {} (work tree or bare)",
            path.display(),
            pin.url
        );
    }
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    if is_git_repository(sh, &path) {
        if !has_commit(sh, &path, &pin.commit) {
            let (url, branch) = (&pin.url, &pin.branch);
            bail!(
                "{} does not have the pinned FlexBoot commit {} (release {}); fetch it there:\n  git -C {} fetch {url} {branch}",
                path.display(),
                pin.commit,
                pin.release,
                path.display()
            );
        }
        return Ok(Source::Git(path));
    }
    if !path.join("src/Makefile").is_file()
        || !path.join("src/drivers/infiniband/hermon.c").is_file()
    {
        bail!(
            "{} is neither a git repository nor a FlexBoot tree (no src/Makefile and src/drivers/infiniband/hermon.c)",
            path.display()
        );
    }
    eprintln!(
        "warning: {} has no git metadata; building it as it is, without proof that it is FlexBoot {} ({})",
        path.display(),
        pin.release,
        pin.short()
    );
    Ok(Source::Plain(path))
}

fn clone_cached(sh: &Shell, work_dir: &Path, pin: &Pin) -> Result<Source> {
    let cache = work_dir.join("vendor-mellanox-flexboot.git");
    if cache.exists() && has_commit(sh, &cache, &pin.commit) {
        return Ok(Source::Git(cache));
    }
    let partial = work_dir.join("vendor-mellanox-flexboot.git.partial");
    remove_dir_if_exists(&partial)?;
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let (url, branch) = (&pin.url, &pin.branch);
    eprintln!("cloning {url} (branch {branch}) into {}", cache.display());
    let cloned = cmd!(
        sh,
        "git clone --quiet --bare --single-branch --branch {branch} {url} {partial}"
    )
    .env("GIT_TERMINAL_PROMPT", "0")
    .quiet()
    .run();
    if let Err(err) = cloned {
        remove_dir_if_exists(&partial)?;
        bail!(
            "could not clone {url}: {err}\nWithout network access, give a local clone instead: \
             --flexboot-src PATH or FLEXBOOT_SRC=PATH (work tree or bare repository holding commit {})",
            pin.commit
        );
    }
    if !has_commit(sh, &partial, &pin.commit) {
        remove_dir_if_exists(&partial)?;
        bail!(
            "{url} branch {branch} no longer has the pinned commit {}; give a clone that does with --flexboot-src",
            pin.commit
        );
    }
    remove_dir_if_exists(&cache)?;
    std::fs::rename(&partial, &cache)
        .with_context(|| format!("cannot move the clone to {}", cache.display()))?;
    Ok(Source::Git(cache))
}

/// A key naming a build tree: the commit, the patches and the compiler flags. FlexBoot's
/// make does not notice changed `EXTRA_CFLAGS`, so different flags need different trees.
pub fn tree_key(pin: &Pin, patches: &[Patch], extra_cflags: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"sixboot flexboot tree v1\0");
    hash.update(pin.commit.as_bytes());
    for patch in patches {
        hash.update(b"\0patch\0");
        hash.update(patch.file.as_bytes());
        hash.update(b"\0");
        hash.update(&patch.bytes);
    }
    hash.update(b"\0cflags\0");
    hash.update(extra_cflags.as_bytes());
    hex::encode(&hash.finalize()[..6])
}

/// Makes `dir` a patched copy of the pinned source, unless it already is one.
/// Returns whether a fresh copy was made.
pub fn prepare_tree(
    sh: &Shell,
    source: &Source,
    pin: &Pin,
    patches: &[Patch],
    dir: &Path,
) -> Result<bool> {
    let marker = dir.join(".sixboot-tree");
    if marker.is_file() {
        return Ok(false);
    }
    let parent = dir
        .parent()
        .context("a build tree needs a parent directory")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let partial = dir.with_extension("partial");
    remove_dir_if_exists(&partial)?;
    remove_dir_if_exists(dir)?;
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let result = export_and_patch(sh, source, pin, patches, &partial);
    if let Err(err) = result {
        remove_dir_if_exists(&partial)?;
        return Err(err);
    }
    let applied: Vec<&str> = patches.iter().map(|patch| patch.file.as_str()).collect();
    std::fs::write(
        partial.join(".sixboot-tree"),
        format!(
            "FlexBoot {} ({}) from {}\npatches: {}\n",
            pin.release,
            pin.commit,
            source.describe(),
            applied.join(" ")
        ),
    )?;
    std::fs::rename(&partial, dir)
        .with_context(|| format!("cannot move the tree to {}", dir.display()))?;
    Ok(true)
}

fn export_and_patch(
    sh: &Shell,
    source: &Source,
    pin: &Pin,
    patches: &[Patch],
    into: &Path,
) -> Result<()> {
    match source {
        Source::Git(repo) => {
            let tar = into.join("flexboot.tar");
            let commit = &pin.commit;
            cmd!(sh, "git -C {repo} archive --format=tar -o {tar} {commit}")
                .quiet()
                .run()
                .with_context(|| {
                    format!("git archive of {commit} from {} failed", repo.display())
                })?;
            cmd!(sh, "tar -xf {tar} -C {into}")
                .quiet()
                .run()
                .with_context(|| format!("cannot unpack {}", tar.display()))?;
            std::fs::remove_file(&tar)?;
        }
        Source::Plain(tree) => {
            let from = tree.join(".");
            cmd!(sh, "cp -a {from} {into}")
                .quiet()
                .run()
                .with_context(|| format!("cannot copy {}", tree.display()))?;
            // A stale build directory in the user's tree would be reused by make.
            for bin in ["src/bin", "src/bin-i386-efi", "src/bin-x86_64-efi"] {
                remove_dir_if_exists(&into.join(bin))?;
            }
        }
    }
    // `git apply` inside our own repository (target/ is in it) would apply to paths
    // relative to that repository; the ceiling makes it a plain patch tool here.
    let ceiling = into
        .parent()
        .context("a build tree needs a parent directory")?;
    let _dir = sh.push_dir(into);
    for patch in patches {
        let path = &patch.path;
        let check = cmd!(sh, "git apply --check {path}")
            .env("GIT_CEILING_DIRECTORIES", ceiling)
            .quiet()
            .ignore_status()
            .output()
            .context("cannot run git apply")?;
        if !check.status.success() {
            bail!(
                "patch {} does not apply to FlexBoot {} ({}):\n{}\nupdate the patch or the pin in the lock file",
                patch.file,
                pin.release,
                pin.commit,
                String::from_utf8_lossy(&check.stderr).trim()
            );
        }
        cmd!(sh, "git apply {path}")
            .env("GIT_CEILING_DIRECTORIES", ceiling)
            .quiet()
            .run()
            .with_context(|| format!("patch {} failed to apply", patch.file))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` only when they differ, so make sees no new timestamp
/// for an unchanged input.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[ipxe]
url = "https://github.com/ipxe/ipxe.git"
commit = "0ab2277c40f1de56c736b9e7db7ee23d52509ec5"
date = "2026-08-21T12:07:23+01:00"

[flexboot]
url = "https://github.com/ipxe/vendor-mellanox-flexboot.git"
branch = "flexboot"
release = "3.4.812"
commit = "A188CF47F524DCE18A8F5D5413E3FE97993E6737"
date = "2016-07-05T14:39:15+03:00"
"#;

    #[test]
    fn reads_the_flexboot_table_and_ignores_others() {
        let pin = Pin::parse(LOCK).unwrap();
        assert_eq!(pin.commit, "a188cf47f524dce18a8f5d5413e3fe97993e6737");
        assert_eq!(pin.short(), "a188cf47f");
        assert_eq!(pin.release, "3.4.812");
        assert_eq!(pin.branch, "flexboot");
        // `git log -1 --format=%ct a188cf47` in the FlexBoot repository.
        assert_eq!(pin.epoch, 1_467_718_755);
    }

    #[test]
    fn the_committed_lock_file_is_valid() {
        let path = crate::project_root().join(super::super::LOCK_PATH);
        let pin = Pin::load(&path).unwrap();
        assert_eq!(pin.commit.len(), 40);
    }

    #[test]
    fn rejects_a_lock_without_flexboot_table_or_with_a_short_commit() {
        let err = Pin::parse("[ipxe]\nurl = \"x\"\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("no [flexboot] table"),
            "{err:#}"
        );
        let short = LOCK.replace("A188CF47F524DCE18A8F5D5413E3FE97993E6737", "a188cf47");
        let err = Pin::parse(&short).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a full 40-hex-digit"),
            "{err:#}"
        );
        let no_date = LOCK.replace("date = \"2016-07-05T14:39:15+03:00\"", "");
        let err = Pin::parse(&no_date).unwrap_err();
        assert!(
            format!("{err:#}").contains("[flexboot] has no `date`"),
            "{err:#}"
        );
    }

    #[test]
    fn parses_rfc3339_dates_with_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z").unwrap(), 951_868_800);
        assert_eq!(
            parse_rfc3339("2016-07-05T14:39:15+03:00").unwrap(),
            1_467_718_755
        );
        assert_eq!(
            parse_rfc3339("2016-07-05T11:39:15Z").unwrap(),
            1_467_718_755
        );
        assert!(parse_rfc3339("2016-07-05 14:39:15").is_err());
        assert!(parse_rfc3339("2016-13-05T14:39:15Z").is_err());
        assert!(parse_rfc3339("2016-07-05T14:39:15+0300").is_err());
    }

    #[test]
    fn tree_key_changes_with_flags_patches_and_commit() {
        let pin = Pin::parse(LOCK).unwrap();
        let patch = |bytes: &[u8]| Patch {
            file: "0001-a.patch".into(),
            path: PathBuf::from("0001-a.patch"),
            bytes: bytes.to_vec(),
        };
        let base = tree_key(&pin, &[patch(b"one")], "-DDEVICE_CX3");
        assert_eq!(base, tree_key(&pin, &[patch(b"one")], "-DDEVICE_CX3"));
        assert_ne!(base, tree_key(&pin, &[patch(b"two")], "-DDEVICE_CX3"));
        assert_ne!(base, tree_key(&pin, &[patch(b"one")], "-DDEVICE_CX4"));
        assert_ne!(base, tree_key(&pin, &[], "-DDEVICE_CX3"));
        let mut other = pin.clone();
        other.commit = "06e96b86".repeat(5);
        assert_ne!(base, tree_key(&other, &[patch(b"one")], "-DDEVICE_CX3"));
    }

    #[test]
    fn reads_patches_in_name_order_and_skips_other_files() {
        let dir = tempdir();
        std::fs::write(dir.join("0002-b.patch"), "b").unwrap();
        std::fs::write(dir.join("0001-a.patch"), "a").unwrap();
        std::fs::write(dir.join("README"), "not a patch").unwrap();
        let patches = read_patches(&dir).unwrap();
        let names: Vec<&str> = patches.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(names, ["0001-a.patch", "0002-b.patch"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_committed_patches_are_in_order() {
        let dir = crate::project_root().join(super::super::PATCH_DIR);
        let patches = read_patches(&dir).unwrap();
        let names: Vec<&str> = patches.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            names,
            [
                "0001-parserom-perl-5.36.patch",
                "0002-ipv6-default-boot-ip-version.patch"
            ]
        );
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sixboot-flexboot-source-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

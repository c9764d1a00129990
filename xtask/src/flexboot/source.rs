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

use crate::build_rom::inputs::Patch;
use crate::build_rom::{lock, source::hash_tree};

/// The pinned FlexBoot source: the `[flexboot]` table of `ipxe-config/ipxe.lock`. The
/// fields every pin has are read by [`lock::Lock`]; FlexBoot adds `branch` and `release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlexbootPin {
    /// URL, commit, date and build epoch.
    pub pin: lock::Pin,
    /// The branch the commit is on; a fresh clone fetches only it.
    pub branch: String,
    /// Mellanox's release number, which also goes into the banner (`FlexBoot v3.4.812`).
    pub release: String,
}

impl FlexbootPin {
    /// Reads the `[flexboot]` table of the lock file at `path`.
    pub fn load(path: &Path) -> Result<FlexbootPin> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lock file {}", path.display()))?;
        FlexbootPin::parse(&text).with_context(|| format!("bad lock file {}", path.display()))
    }

    /// Parses the text of a lock file; errors name the table and field.
    pub fn parse(text: &str) -> Result<FlexbootPin> {
        #[derive(Deserialize)]
        struct RawLock {
            flexboot: Option<RawExtras>,
        }
        #[derive(Deserialize)]
        struct RawExtras {
            branch: Option<String>,
            release: Option<String>,
        }
        let Some(pin) = lock::Lock::parse(text)?.flexboot else {
            bail!("no [flexboot] table (it needs url, branch, release, commit and date)");
        };
        let raw: RawLock = toml::from_str(text).context("not valid TOML")?;
        let extras = raw.flexboot.context("no [flexboot] table")?;
        let field = |value: Option<String>, name: &str| -> Result<String> {
            match value {
                Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                _ => bail!("[flexboot] has no `{name}`"),
            }
        };
        Ok(FlexbootPin {
            pin,
            branch: field(extras.branch, "branch")?,
            release: field(extras.release, "release")?,
        })
    }

    /// The full commit id.
    pub fn commit(&self) -> &str {
        &self.pin.commit
    }
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
    /// What identifies the source's content in the tree key: the commit for git (a hash
    /// of the content), a hash of every file for a plain tree.
    pub fn identity(&self, pin: &FlexbootPin) -> Result<String> {
        match self {
            Source::Git(_) => Ok(format!("git:{}", pin.commit())),
            Source::Plain(root) => Ok(format!("plain:{}", hash_tree(root)?)),
        }
    }

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
    pin: &FlexbootPin,
) -> Result<Source> {
    match flexboot_src {
        Some(path) => resolve_local(sh, path, pin),
        None => clone_cached(sh, work_dir, pin),
    }
}

fn is_git_repository(sh: &Shell, path: &Path) -> bool {
    // The ceiling keeps git from finding an enclosing repository (a plain tree copied
    // under sixboot's own checkout is not part of sixboot).
    let ceiling = path.parent().unwrap_or(path);
    cmd!(sh, "git -C {path} rev-parse --git-dir")
        .env("GIT_CEILING_DIRECTORIES", ceiling)
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

fn resolve_local(sh: &Shell, path: &Path, pin: &FlexbootPin) -> Result<Source> {
    if !path.is_dir() {
        bail!(
            "--flexboot-src {}: no such directory; give a clone of {} (work tree or bare)",
            path.display(),
            pin.pin.url
        );
    }
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    if is_git_repository(sh, &path) {
        if !has_commit(sh, &path, pin.commit()) {
            let (url, branch) = (&pin.pin.url, &pin.branch);
            bail!(
                "{} does not have the pinned FlexBoot commit {} (release {}); fetch it there:\n  git -C {} fetch {url} {branch}",
                path.display(),
                pin.commit(),
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
        pin.pin.short()
    );
    Ok(Source::Plain(path))
}

fn clone_cached(sh: &Shell, work_dir: &Path, pin: &FlexbootPin) -> Result<Source> {
    let cache = work_dir.join("vendor-mellanox-flexboot.git");
    if cache.exists() && has_commit(sh, &cache, pin.commit()) {
        return Ok(Source::Git(cache));
    }
    let partial = work_dir.join("vendor-mellanox-flexboot.git.partial");
    remove_dir_if_exists(&partial)?;
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let (url, branch) = (&pin.pin.url, &pin.branch);
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
            pin.commit()
        );
    }
    if !has_commit(sh, &partial, pin.commit()) {
        remove_dir_if_exists(&partial)?;
        bail!(
            "{url} branch {branch} no longer has the pinned commit {}; give a clone that does with --flexboot-src",
            pin.commit()
        );
    }
    remove_dir_if_exists(&cache)?;
    std::fs::rename(&partial, &cache)
        .with_context(|| format!("cannot move the clone to {}", cache.display()))?;
    Ok(Source::Git(cache))
}

/// A key naming a build tree: the source, the patches and the compiler flags. FlexBoot's
/// make does not notice changed `EXTRA_CFLAGS`, so different flags need different trees.
/// Only a patch's diff counts (from its first `diff --git`): editing its description
/// does not throw a tree away.
pub fn tree_key(source_identity: &str, patches: &[Patch], extra_cflags: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"sixboot flexboot tree v1\0");
    hash.update(source_identity.as_bytes());
    for patch in patches {
        hash.update(b"\0patch\0");
        hash.update(patch.file.as_bytes());
        hash.update(b"\0");
        hash.update(patch_body(&patch.bytes));
    }
    hash.update(b"\0cflags\0");
    hash.update(extra_cflags.as_bytes());
    hex::encode(&hash.finalize()[..6])
}

/// The part of a patch `git apply` acts on: from the first `diff --git` line.
pub fn patch_body(bytes: &[u8]) -> &[u8] {
    let marker = b"diff --git ";
    if bytes.starts_with(marker) {
        return bytes;
    }
    bytes
        .windows(marker.len() + 1)
        .position(|window| window[0] == b'\n' && &window[1..] == marker)
        .map_or(bytes, |at| &bytes[at + 1..])
}

/// Makes `dir` a patched copy of the pinned source, unless it already is one.
/// Returns whether a fresh copy was made.
pub fn prepare_tree(
    sh: &Shell,
    source: &Source,
    pin: &FlexbootPin,
    patch_dir: &Path,
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
    let result = export_and_patch(sh, source, pin, patch_dir, patches, &partial);
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
            pin.commit(),
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
    pin: &FlexbootPin,
    patch_dir: &Path,
    patches: &[Patch],
    into: &Path,
) -> Result<()> {
    match source {
        Source::Git(repo) => {
            let tar = into.join("flexboot.tar");
            let commit = pin.commit();
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
        let path = patch_dir.join(&patch.file);
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
                pin.commit(),
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

/// Removes the other trees of the same name (`cx3-flash-<key>` with another key): their
/// key no longer matches the source, patches or flags, and each holds about 70 MB.
pub fn prune_stale_trees(work_dir: &Path, name: &str, current: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|file| file.to_str()) else {
            continue;
        };
        if path != current && is_tree_of(file, name) {
            remove_dir_if_exists(&path)?;
        }
    }
    Ok(())
}

/// Whether `file` is `<name>-<12 hex digits>`, a tree [`tree_key`] named.
fn is_tree_of(file: &str, name: &str) -> bool {
    file.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|key| key.len() == 12 && key.bytes().all(|b| b.is_ascii_hexdigit()))
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
    use crate::build_rom::inputs::read_patches;

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
    fn reads_the_flexboot_table_with_branch_and_release() {
        let pin = FlexbootPin::parse(LOCK).unwrap();
        assert_eq!(pin.commit(), "a188cf47f524dce18a8f5d5413e3fe97993e6737");
        assert_eq!(pin.release, "3.4.812");
        assert_eq!(pin.branch, "flexboot");
        // `git log -1 --format=%ct a188cf47` in the FlexBoot repository.
        assert_eq!(pin.pin.epoch, 1_467_718_755);
    }

    #[test]
    fn the_committed_lock_file_pins_flexboot() {
        let path = crate::project_root().join(lock::LOCK_PATH);
        let pin = FlexbootPin::load(&path).unwrap();
        assert_eq!(pin.commit(), "a188cf47f524dce18a8f5d5413e3fe97993e6737");
        assert_eq!(pin.release, "3.4.812");
    }

    #[test]
    fn rejects_a_lock_without_flexboot_table_or_release() {
        let ipxe_only = &LOCK[..LOCK.find("[flexboot]").unwrap()];
        let err = format!("{:#}", FlexbootPin::parse(ipxe_only).unwrap_err());
        assert!(err.contains("no [flexboot] table"), "{err}");
        let no_release = LOCK.replace("release = \"3.4.812\"\n", "");
        let err = format!("{:#}", FlexbootPin::parse(&no_release).unwrap_err());
        assert!(err.contains("[flexboot] has no `release`"), "{err}");
        let short = LOCK.replace("A188CF47F524DCE18A8F5D5413E3FE97993E6737", "a188cf47");
        let err = format!("{:#}", FlexbootPin::parse(&short).unwrap_err());
        assert!(err.contains("not a full 40-hex-digit"), "{err}");
    }

    fn patch(file: &str, bytes: &[u8]) -> Patch {
        Patch {
            file: file.into(),
            name: file.into(),
            sha256: String::new(),
            verify_symbols: Vec::new(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn tree_key_follows_source_diffs_and_flags_but_not_patch_descriptions() {
        let diff = b"Subject: one\n\ndiff --git a/x b/x\n+1\n";
        let base = tree_key("git:a188", &[patch("0001-a.patch", diff)], "-DDEVICE_CX3");
        let reworded = b"Subject: one, said better\n\ndiff --git a/x b/x\n+1\n";
        assert_eq!(
            base,
            tree_key(
                "git:a188",
                &[patch("0001-a.patch", reworded)],
                "-DDEVICE_CX3"
            )
        );
        let other_diff = b"Subject: one\n\ndiff --git a/x b/x\n+2\n";
        for other in [
            tree_key(
                "git:a188",
                &[patch("0001-a.patch", other_diff)],
                "-DDEVICE_CX3",
            ),
            tree_key("git:a188", &[patch("0001-a.patch", diff)], "-DDEVICE_CX4"),
            tree_key("git:a188", &[], "-DDEVICE_CX3"),
            tree_key("plain:ff", &[patch("0001-a.patch", diff)], "-DDEVICE_CX3"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn only_trees_of_the_same_name_are_stale() {
        assert!(is_tree_of("cx3-flash-ac9279d25801", "cx3-flash"));
        assert!(!is_tree_of("cx3-flash-ac9279d25801", "cx3-noflash"));
        assert!(!is_tree_of("cx3-flash-ac9279d25801.partial", "cx3-flash"));
        assert!(!is_tree_of("cx3-flash", "cx3-flash"));
        assert!(!is_tree_of("vendor-mellanox-flexboot.git", "cx3-flash"));
    }

    #[test]
    fn patch_body_starts_at_the_first_diff() {
        assert_eq!(
            patch_body(b"From: x\n\ndiff --git a/x b/x\n+1\n"),
            b"diff --git a/x b/x\n+1\n"
        );
        assert_eq!(patch_body(b"diff --git a/x b/x\n"), b"diff --git a/x b/x\n");
        assert_eq!(patch_body(b"no diff here"), b"no diff here");
    }

    #[test]
    fn the_committed_patches_are_in_order_and_name_their_symbol() {
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
        assert_eq!(patches[1].verify_symbols, ["sixboot_default_ip_ver"]);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sixboot-flexboot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A FlexBoot-shaped git repository with one commit; returns the pin for it.
    fn tiny_repo(sh: &Shell, dir: &Path) -> FlexbootPin {
        std::fs::create_dir_all(dir.join("src/drivers/infiniband")).unwrap();
        std::fs::write(dir.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(
            dir.join("src/drivers/infiniband/hermon.c"),
            "int ip_ver = 0;\n",
        )
        .unwrap();
        let git = |args: &[&str]| {
            cmd!(sh, "git -C {dir} {args...}")
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()
                .unwrap()
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "base"]);
        let commit = cmd!(sh, "git -C {dir} rev-parse HEAD")
            .quiet()
            .read()
            .unwrap();
        let lock = LOCK.replace("A188CF47F524DCE18A8F5D5413E3FE97993E6737", commit.trim());
        FlexbootPin::parse(&lock).unwrap()
    }

    const HERMON_PATCH: &str = "Subject: ipv6\n\ndiff --git a/src/drivers/infiniband/hermon.c b/src/drivers/infiniband/hermon.c\n--- a/src/drivers/infiniband/hermon.c\n+++ b/src/drivers/infiniband/hermon.c\n@@ -1 +1 @@\n-int ip_ver = 0;\n+int ip_ver = 1;\n";

    #[test]
    fn exports_the_pinned_commit_and_applies_patches_without_touching_the_source() {
        let sh = Shell::new().unwrap();
        let work = scratch("export");
        let repo = work.join("repo");
        let pin = tiny_repo(&sh, &repo);
        // A change in the user's work tree must not reach the export.
        std::fs::write(repo.join("src/Makefile"), "dirty:\n").unwrap();
        let source = resolve(&sh, Some(&repo), &work, &pin).unwrap();
        assert_eq!(source, Source::Git(repo.canonicalize().unwrap()));
        let patch_dir = work.join("patches");
        std::fs::create_dir_all(&patch_dir).unwrap();
        std::fs::write(patch_dir.join("0001-ipv6.patch"), HERMON_PATCH).unwrap();
        let patches = crate::build_rom::inputs::read_patches(&patch_dir).unwrap();
        let tree = work.join("trees/cx3-flash-000000000000");
        assert!(prepare_tree(&sh, &source, &pin, &patch_dir, &patches, &tree).unwrap());
        let hermon = std::fs::read_to_string(tree.join("src/drivers/infiniband/hermon.c")).unwrap();
        assert_eq!(hermon, "int ip_ver = 1;\n");
        assert_eq!(
            std::fs::read_to_string(tree.join("src/Makefile")).unwrap(),
            "all:\n"
        );
        let original =
            std::fs::read_to_string(repo.join("src/drivers/infiniband/hermon.c")).unwrap();
        assert_eq!(original, "int ip_ver = 0;\n");
        // A second call reuses the tree.
        assert!(!prepare_tree(&sh, &source, &pin, &patch_dir, &patches, &tree).unwrap());
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn a_patch_that_does_not_apply_leaves_no_tree() {
        let sh = Shell::new().unwrap();
        let work = scratch("badpatch");
        let repo = work.join("repo");
        let pin = tiny_repo(&sh, &repo);
        let source = resolve(&sh, Some(&repo), &work, &pin).unwrap();
        let patch_dir = work.join("patches");
        std::fs::create_dir_all(&patch_dir).unwrap();
        let stale = HERMON_PATCH.replace("-int ip_ver = 0;", "-int ip_ver = 7;");
        std::fs::write(patch_dir.join("0002-stale.patch"), stale).unwrap();
        let patches = crate::build_rom::inputs::read_patches(&patch_dir).unwrap();
        let tree = work.join("trees/cx3-flash-000000000000");
        let err = format!(
            "{:#}",
            prepare_tree(&sh, &source, &pin, &patch_dir, &patches, &tree).unwrap_err()
        );
        assert!(
            err.contains("patch 0002-stale.patch does not apply to FlexBoot 3.4.812"),
            "{err}"
        );
        assert!(!tree.exists());
        assert!(!tree.with_extension("partial").exists());
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn rejects_a_repository_without_the_pinned_commit_and_a_directory_that_is_no_flexboot() {
        let sh = Shell::new().unwrap();
        let work = scratch("nocommit");
        let repo = work.join("repo");
        tiny_repo(&sh, &repo);
        let pin = FlexbootPin::parse(LOCK).unwrap();
        let err = format!("{:#}", resolve(&sh, Some(&repo), &work, &pin).unwrap_err());
        assert!(
            err.contains("does not have the pinned FlexBoot commit a188cf47"),
            "{err}"
        );
        assert!(
            err.contains("fetch https://github.com/ipxe/vendor-mellanox-flexboot.git flexboot"),
            "{err}"
        );
        let empty = work.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = format!("{:#}", resolve(&sh, Some(&empty), &work, &pin).unwrap_err());
        assert!(
            err.contains("neither a git repository nor a FlexBoot tree"),
            "{err}"
        );
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn a_failed_clone_suggests_flexboot_src() {
        let sh = Shell::new().unwrap();
        let work = scratch("clone");
        let mut pin = FlexbootPin::parse(LOCK).unwrap();
        pin.pin.url = work.join("nonexistent.git").display().to_string();
        let err = format!("{:#}", resolve(&sh, None, &work, &pin).unwrap_err());
        assert!(err.contains("could not clone"), "{err}");
        assert!(
            err.contains("--flexboot-src PATH or FLEXBOOT_SRC=PATH"),
            "{err}"
        );
        assert!(!work.join("vendor-mellanox-flexboot.git").exists());
        assert!(!work.join("vendor-mellanox-flexboot.git.partial").exists());
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn builds_a_plain_tree_as_it_is_keyed_by_its_content() {
        let sh = Shell::new().unwrap();
        let work = scratch("plain");
        let plain = work.join("plain");
        std::fs::create_dir_all(plain.join("src/drivers/infiniband")).unwrap();
        std::fs::create_dir_all(plain.join("src/bin")).unwrap();
        std::fs::write(plain.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(
            plain.join("src/drivers/infiniband/hermon.c"),
            "int ip_ver = 0;\n",
        )
        .unwrap();
        std::fs::write(plain.join("src/bin/stale.o"), "old object").unwrap();
        let pin = FlexbootPin::parse(LOCK).unwrap();
        let source = resolve(&sh, Some(&plain), &work, &pin).unwrap();
        assert_eq!(source, Source::Plain(plain.canonicalize().unwrap()));
        let identity = source.identity(&pin).unwrap();
        assert!(identity.starts_with("plain:"), "{identity}");
        let tree = work.join("trees/cx3-flash-000000000000");
        assert!(prepare_tree(&sh, &source, &pin, &work, &[], &tree).unwrap());
        assert!(tree.join("src/drivers/infiniband/hermon.c").is_file());
        assert!(!tree.join("src/bin/stale.o").exists());
        std::fs::write(
            plain.join("src/drivers/infiniband/hermon.c"),
            "int ip_ver = 1;\n",
        )
        .unwrap();
        assert_ne!(source.identity(&pin).unwrap(), identity);
        std::fs::remove_dir_all(&work).unwrap();
    }
}

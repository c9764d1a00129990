//! Build trees: a patched export of the pinned source per flavour, source, patch set and
//! compiler flags, under the work directory; and the file times make's incremental
//! build depends on.
//!
//! A tree is `<work>/<name>-<key>/`: the key hashes the source identity, each patch's
//! diff and the flags (make does not notice changed flags, so they never change inside
//! a tree; `make clean` is never used). The script, the CA and the `config/local`
//! headers are written into the tree on every run, only when their bytes changed, so a
//! different `--embed` script or `--trust` CA reuses the tree and make rebuilds only
//! what includes them. A tree gets its final name only after every patch applied.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use super::inputs::{ConfigHeader, Patch, CONFIG_DIR};
use super::lock::Pin;
use super::source::{collect_files, git_in, Source};

/// The file that marks a complete tree, with what went into it.
const MARKER: &str = ".sixboot-tree";

/// The key of a tree: the source, the patches (only their diffs: editing a patch's
/// description keeps the tree) and the flags. 12 hex digits. The FlexBoot flavour's
/// build id derives from it, so its formula is part of those images' bytes.
pub fn tree_key(flavor: &str, source_identity: &str, patches: &[Patch], flags: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("sixboot {flavor} tree v1\0").as_bytes());
    hash.update(source_identity.as_bytes());
    for patch in patches {
        hash.update(b"\0patch\0");
        hash.update(patch.file.as_bytes());
        hash.update(b"\0");
        hash.update(patch_body(&patch.bytes));
    }
    hash.update(b"\0cflags\0");
    hash.update(flags.as_bytes());
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

/// A hash of the tree key and the script: what an image's bytes follow from in a tree.
/// Its first 8 hex digits are FlexBoot's build id (instead of its random one).
pub fn build_id(tree_key: &str, script: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(tree_key.as_bytes());
    hash.update(b"\0script\0");
    hash.update(script);
    hex::encode(hash.finalize())[..8].to_string()
}

/// Makes `dir` a patched copy of the pinned source, unless it already is one. Works in
/// `dir.partial` and renames at the end, so `dir` is complete or absent; a patch that
/// does not apply leaves nothing behind. Returns whether a fresh copy was made.
pub fn prepare(
    sh: &Shell,
    source: &Source,
    pin: &Pin,
    title: &str,
    patch_dir: &Path,
    patches: &[Patch],
    dir: &Path,
) -> Result<bool> {
    if dir.join(MARKER).is_file() {
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
    let result = export_and_patch(sh, source, pin, title, patch_dir, patches, &partial);
    if let Err(err) = result {
        remove_dir_if_exists(&partial)?;
        return Err(err);
    }
    let applied: Vec<&str> = patches.iter().map(|patch| patch.file.as_str()).collect();
    std::fs::write(
        partial.join(MARKER),
        format!(
            "{title} {} from {}\npatches: {}\n",
            pin.commit,
            source.describe(),
            applied.join(" ")
        ),
    )?;
    std::fs::rename(&partial, dir)
        .with_context(|| format!("cannot move the build tree to {}", dir.display()))?;
    Ok(true)
}

fn export_and_patch(
    sh: &Shell,
    source: &Source,
    pin: &Pin,
    title: &str,
    patch_dir: &Path,
    patches: &[Patch],
    into: &Path,
) -> Result<()> {
    match source {
        Source::Git { repo } => {
            let tarball = into.join("source.tar");
            let commit = &pin.commit;
            git_in(sh, repo)
                .args(["archive", "--format=tar", "-o"])
                .arg(&tarball)
                .arg(commit)
                .run()
                .with_context(|| format!("git archive {commit} in {} failed", repo.display()))?;
            cmd!(sh, "tar -xf {tarball} -C {into}")
                .quiet()
                .run()
                .with_context(|| format!("cannot unpack the exported {title} tree"))?;
            std::fs::remove_file(&tarball)?;
        }
        Source::Plain { root } => {
            let mut files = Vec::new();
            collect_files(root, root, &mut files)?;
            for relative in files {
                let to = into.join(&relative);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(root.join(&relative), &to)
                    .with_context(|| format!("cannot copy {}", root.join(&relative).display()))?;
            }
        }
    }
    for patch in patches {
        let file = patch_dir.join(&patch.file);
        let shown = file
            .strip_prefix(crate::project_root())
            .unwrap_or(&file)
            .display()
            .to_string();
        let check = git_in(sh, into)
            .args(["apply", "--check"])
            .arg(&file)
            .ignore_status()
            .output()
            .context("cannot run git apply")?;
        if !check.status.success() {
            bail!(
                "patch {shown} does not apply to {title} {} ({}):\n{}\nrefresh it against that commit, or build without it: --no-patch {}",
                pin.commit,
                pin.date,
                String::from_utf8_lossy(&check.stderr).trim(),
                patch.name
            );
        }
        git_in(sh, into)
            .arg("apply")
            .arg(&file)
            .run()
            .with_context(|| format!("git apply {shown} failed"))?;
    }
    Ok(())
}

/// Removes the other trees of the same name (`cx3-flash-<key>` with another key): their
/// key no longer matches the source, patches or flags, and each holds 70 to 200 MB.
pub fn prune_stale(work_dir: &Path, name: &str, current: &Path) -> Result<()> {
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

/// Writes `bytes` to `path` only when they differ, so make sees an unchanged mtime (and
/// rebuilds nothing) when the content is the same.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// Writes `config/local/<name>.h` for every `config/<name>.h` of the tree: ours where we
/// have one, empty otherwise (what iPXE itself would create).
///
/// iPXE creates missing local headers on demand, in the middle of a parallel build, so
/// objects compiled before that moment are older than a header they include and the next
/// "no-op" make recompiles them (a quarter of the library here). Creating all of them
/// before the first make, and rewriting only what changed, keeps a no-op a no-op.
pub fn write_local_config(src: &Path, headers: &[ConfigHeader]) -> Result<()> {
    let local = src.join("config/local");
    std::fs::create_dir_all(&local)?;
    let config = src.join("config");
    for entry in
        std::fs::read_dir(&config).with_context(|| format!("cannot list {}", config.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".h") {
            continue;
        }
        let bytes = headers
            .iter()
            .find(|header| header.name == name)
            .map_or(&[][..], |header| &header.bytes[..]);
        write_if_changed(&local.join(&name), bytes)?;
    }
    for header in headers {
        if !config.join(&header.name).is_file() {
            bail!(
                "{CONFIG_DIR}/{} has no counterpart config/{} in iPXE, so iPXE would never read it",
                header.name,
                header.name
            );
        }
    }
    Ok(())
}

/// Headers that iPXE's make `touch`es whenever a `bin*/.<name>.list` is newer than they
/// are (`include/compiler.h : $(FNREC_LIST)` and its siblings in Makefile.housekeeping),
/// with the list each one follows. Every `bin*` directory has its own lists, but the
/// headers are shared: the first make in a new directory writes its lists, touches the
/// headers, and everything already built in the other directories (which includes
/// `compiler.h`) becomes out of date. That was "a script-only change recompiles all
/// 1,041 objects of bin/". sixboot never sets FNREC, ASSERT, PROFILE or CONFIG, so these
/// touches never carry a real change.
const TOUCHED_HEADERS: &[(&str, &str)] = &[
    ("include/compiler.h", ".fnrec.list"),
    ("include/assert.h", ".assert.list"),
    ("include/ipxe/profile.h", ".profile.list"),
    ("config/named.h", ".config.list"),
];

/// Dates make's bookkeeping back to the pinned commit before every make, so only real
/// changes rebuild anything:
///
/// - `.echocheck` (a prerequisite of everything): the first make in a fresh tree writes
///   `bin/.*.list` while it reads the Makefiles and only then creates `.echocheck`, so
///   those lists would stay older than it forever and every later make would recompile
///   the whole library. Dated back to the pin (the date every file of the export has), it
///   is older than the lists again. (It is not made ahead of the first make: `make
///   .echocheck` generates the dependency files of all ~1,000 sources, one at a time,
///   which cost a cold build about 30 s.)
/// - the [`TOUCHED_HEADERS`] and every `bin*/` list they follow.
///
/// A list whose content changes (iPXE rewrites it while reading the Makefiles when
/// `EMBED` or `TRUST` differ) is newer again after that, so its dependants rebuild.
pub fn settle_timestamps(src: &Path, epoch: i64) -> Result<()> {
    let echocheck = src.join(".echocheck");
    let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch).unwrap_or(0));
    let mut files = vec![echocheck];
    for entry in std::fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))? {
        let dir = entry?.path();
        let is_bin = dir
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("bin"));
        if is_bin && dir.is_dir() {
            files.extend(TOUCHED_HEADERS.iter().map(|(_, list)| dir.join(list)));
        }
    }
    files.extend(TOUCHED_HEADERS.iter().map(|(header, _)| src.join(header)));
    for file in files.iter().filter(|file| file.exists()) {
        set_mtime(file, when)?;
    }
    Ok(())
}

fn set_mtime(path: &Path, when: std::time::SystemTime) -> Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(when))
        .with_context(|| format!("cannot set the time of {}", path.display()))
}

/// The tree directory for a tree name and key.
pub fn dir(work_dir: &Path, name: &str, key: &str) -> PathBuf {
    work_dir.join(format!("{name}-{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::inputs::read_patches;

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
        let key = |identity: &str, patches: &[Patch], flags: &str| {
            tree_key("flexboot", identity, patches, flags)
        };
        let base = key("git:a188", &[patch("0001-a.patch", diff)], "-DDEVICE_CX3");
        let reworded = b"Subject: one, said better\n\ndiff --git a/x b/x\n+1\n";
        assert_eq!(
            base,
            key(
                "git:a188",
                &[patch("0001-a.patch", reworded)],
                "-DDEVICE_CX3"
            )
        );
        let other_diff = b"Subject: one\n\ndiff --git a/x b/x\n+2\n";
        for other in [
            key(
                "git:a188",
                &[patch("0001-a.patch", other_diff)],
                "-DDEVICE_CX3",
            ),
            key("git:a188", &[patch("0001-a.patch", diff)], "-DDEVICE_CX4"),
            key("git:a188", &[], "-DDEVICE_CX3"),
            key("plain:ff", &[patch("0001-a.patch", diff)], "-DDEVICE_CX3"),
            tree_key(
                "ipxe",
                "git:a188",
                &[patch("0001-a.patch", diff)],
                "-DDEVICE_CX3",
            ),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(base.len(), 12);
    }

    #[test]
    fn the_flexboot_build_id_formula_is_unchanged() {
        // The FlexBoot images' bytes carry this id: same inputs, same id as before the
        // pipeline was merged (values from the FlexBoot flavour's own module then).
        let patches = read_patches(&crate::project_root().join("patches/flexboot")).unwrap();
        let flags = crate::firmware::flavor::flexboot_cflags("-DDEVICE_CX4", true, "3.4.812");
        let key = tree_key(
            "flexboot",
            "git:a188cf47f524dce18a8f5d5413e3fe97993e6737",
            &patches,
            &flags,
        );
        let mut hash = Sha256::new();
        hash.update(key.as_bytes());
        hash.update(b"\0script\0");
        hash.update(b"#!ipxe\n");
        assert_eq!(
            build_id(&key, b"#!ipxe\n"),
            hex::encode(hash.finalize())[..8]
        );
        assert_ne!(
            build_id(&key, b"#!ipxe\n"),
            build_id(&key, b"#!ipxe\necho\n")
        );
    }

    #[test]
    fn only_trees_of_the_same_name_are_stale() {
        assert!(is_tree_of("cx3-flash-ac9279d25801", "cx3-flash"));
        assert!(!is_tree_of("cx3-flash-ac9279d25801", "cx3-noflash"));
        assert!(!is_tree_of("cx3-flash-ac9279d25801.partial", "cx3-flash"));
        assert!(!is_tree_of("cx3-flash", "cx3-flash"));
        assert!(!is_tree_of("flexboot.git", "cx3-flash"));
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
    fn write_if_changed_keeps_the_mtime_of_identical_content() {
        let dir = std::env::temp_dir().join(format!("sixboot-wic-{}", std::process::id()));
        let path = dir.join("a/general.h");
        assert!(write_if_changed(&path, b"x").unwrap());
        assert!(!write_if_changed(&path, b"x").unwrap());
        assert!(write_if_changed(&path, b"y").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A bare repository with one commit holding `src/Makefile`, `src/config/general.h`
    /// and `src/net/dhcpv6.c`, and a patch for it; returns (bare repo, commit, patch dir).
    fn tiny_repo(dir: &Path) -> (PathBuf, String, PathBuf) {
        let sh = Shell::new().unwrap();
        let work = dir.join("work-tree");
        std::fs::create_dir_all(work.join("src/net")).unwrap();
        std::fs::create_dir_all(work.join("src/config")).unwrap();
        std::fs::write(work.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(work.join("src/config/general.h"), "").unwrap();
        std::fs::write(work.join("src/net/dhcpv6.c"), "duid = uuid;\n").unwrap();
        let git = |args: &[&str]| {
            git_in(&sh, &work)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .run()
                .unwrap()
        };
        git(&["init", "--quiet"]);
        git(&["add", "-A"]);
        git(&["commit", "--quiet", "-m", "tiny"]);
        let commit = git_in(&sh, &work)
            .args(["rev-parse", "HEAD"])
            .read()
            .unwrap();
        let bare = dir.join("tiny.git");
        cmd!(sh, "git clone --quiet --bare {work} {bare}")
            .quiet()
            .run()
            .unwrap();
        let patches = dir.join("patches");
        std::fs::create_dir_all(&patches).unwrap();
        std::fs::write(
            patches.join("0001-duid-ll.patch"),
            "Subject: tiny\n---\ndiff --git a/src/net/dhcpv6.c b/src/net/dhcpv6.c\n--- a/src/net/dhcpv6.c\n+++ b/src/net/dhcpv6.c\n@@ -1 +1 @@\n-duid = uuid;\n+duid = ll;\n",
        )
        .unwrap();
        (bare, commit, patches)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sixboot-tree-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn pin(commit: String) -> Pin {
        Pin {
            url: "u".into(),
            commit,
            date: "2026-08-21T12:07:23+01:00".into(),
            epoch: 1_787_310_443,
            branch: None,
            release: None,
        }
    }

    #[test]
    fn exports_a_bare_repository_and_applies_patches_in_a_copy() {
        let sh = Shell::new().unwrap();
        let dir = scratch("export");
        let (bare, commit, patch_dir) = tiny_repo(&dir);
        let pin = pin(commit);
        let source = Source::Git { repo: bare.clone() };
        let patches = read_patches(&patch_dir).unwrap();
        let tree = dir.join("ipxe-000000000000");
        assert!(prepare(&sh, &source, &pin, "iPXE", &patch_dir, &patches, &tree).unwrap());
        assert_eq!(
            std::fs::read_to_string(tree.join("src/net/dhcpv6.c")).unwrap(),
            "duid = ll;\n"
        );
        assert!(!tree.join(".git").exists());
        // The repository itself is untouched, and a second call reuses the tree.
        let original = git_in(&sh, &bare)
            .args(["show", "HEAD:src/net/dhcpv6.c"])
            .read()
            .unwrap();
        assert_eq!(original, "duid = uuid;");
        assert!(!prepare(&sh, &source, &pin, "iPXE", &patch_dir, &patches, &tree).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_patch_that_does_not_apply_is_named_and_leaves_no_tree() {
        let sh = Shell::new().unwrap();
        let dir = scratch("badpatch");
        let (bare, commit, patch_dir) = tiny_repo(&dir);
        std::fs::write(
            patch_dir.join("0002-stale.patch"),
            "diff --git a/src/net/dhcpv6.c b/src/net/dhcpv6.c\n--- a/src/net/dhcpv6.c\n+++ b/src/net/dhcpv6.c\n@@ -1 +1 @@\n-something else;\n+x;\n",
        )
        .unwrap();
        let pin = pin(commit);
        let source = Source::Git { repo: bare };
        let patches = read_patches(&patch_dir).unwrap();
        let tree = dir.join("ipxe-000000000000");
        let err = format!(
            "{:#}",
            prepare(&sh, &source, &pin, "iPXE", &patch_dir, &patches, &tree).unwrap_err()
        );
        assert!(
            err.contains("0002-stale.patch does not apply to iPXE"),
            "{err}"
        );
        assert!(err.contains(&pin.commit), "{err}");
        assert!(err.contains("--no-patch stale"), "{err}");
        assert!(!tree.exists());
        assert!(!tree.with_extension("partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_plain_tree_is_copied_without_its_build_output() {
        let sh = Shell::new().unwrap();
        let dir = scratch("plain");
        let plain = dir.join("plain");
        std::fs::create_dir_all(plain.join("src/bin")).unwrap();
        std::fs::write(plain.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(plain.join("src/bin/stale.o"), "old object").unwrap();
        let source = Source::Plain { root: plain };
        let tree = dir.join("cx3-flash-000000000000");
        assert!(prepare(
            &sh,
            &source,
            &pin("0".repeat(40)),
            "FlexBoot",
            &dir,
            &[],
            &tree
        )
        .unwrap());
        assert!(tree.join("src/Makefile").is_file());
        assert!(!tree.join("src/bin/stale.o").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settling_dates_make_bookkeeping_back_to_the_pin() {
        let dir = scratch("settle");
        let src = dir.join("src");
        for file in [
            "Makefile",
            ".echocheck",
            "include/compiler.h",
            "bin/.fnrec.list",
            "bin-x86_64-efi/.fnrec.list",
            "bin/.embedded.list",
        ] {
            let path = src.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        settle_timestamps(&src, 1_787_310_443).unwrap();
        let mtime = |file: &str| {
            std::fs::metadata(src.join(file))
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        for file in [
            ".echocheck",
            "include/compiler.h",
            "bin/.fnrec.list",
            "bin-x86_64-efi/.fnrec.list",
        ] {
            assert_eq!(mtime(file), 1_787_310_443, "{file}");
        }
        // The embedded-image list carries a real change when EMBED differs: left alone.
        assert_ne!(mtime("bin/.embedded.list"), 1_787_310_443);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

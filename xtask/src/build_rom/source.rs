//! Getting the pinned iPXE source into sixboot's own build tree.
//!
//! The user's tree is only ever read: a git repository (work tree or bare) is exported
//! with `git archive` at the pinned commit; a tree without git metadata is copied (with
//! a warning, because nothing proves it is the pinned commit). Without `--ipxe-src` a
//! bare clone is kept under the work directory. Patches are applied to the copy, and a
//! copy whose patches fail is thrown away: never a half-patched tree.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::inputs::{sha256_hex, Patch, PATCH_DIR};
use super::lock::Pin;

/// Where the source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A git repository (work tree or bare) that has the pinned commit.
    Git {
        /// The repository (the directory holding `.git`, or the bare repository).
        repo: PathBuf,
    },
    /// A directory without git metadata; `root` has `src/Makefile`.
    Plain {
        /// The tree's root.
        root: PathBuf,
    },
}

impl Source {
    /// What identifies this source's content in cache keys: the pinned commit for git
    /// (the commit id is a hash of the content), a hash of every file for a plain tree.
    pub fn identity(&self, pin: &Pin) -> Result<String> {
        match self {
            Source::Git { .. } => Ok(format!("git:{}", pin.commit)),
            Source::Plain { root } => Ok(format!("plain:{}", hash_tree(root)?)),
        }
    }

    /// For the manifest: where the source came from.
    pub fn describe(&self) -> String {
        match self {
            Source::Git { repo } => format!("git repository {}", repo.display()),
            Source::Plain { root } => {
                format!(
                    "plain tree {} (not verified against the pin)",
                    root.display()
                )
            }
        }
    }
}

/// Runs git with discovery stopped at `dir`'s parent, so a directory that is not a
/// repository is never mistaken for part of an enclosing one (sixboot's own checkout).
fn git_in<'a>(sh: &'a Shell, dir: &Path) -> xshell::Cmd<'a> {
    let ceiling = dir.parent().unwrap_or(dir).to_path_buf();
    cmd!(sh, "git -C {dir}")
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .quiet()
}

/// Whether `dir` itself is a git repository (work tree root or bare repository).
fn is_git_repo(sh: &Shell, dir: &Path) -> bool {
    git_in(sh, dir)
        .args(["rev-parse", "--git-dir"])
        .ignore_stderr()
        .read()
        .is_ok()
}

/// Whether the repository has `commit`.
fn has_commit(sh: &Shell, repo: &Path, commit: &str) -> bool {
    let spec = format!("{commit}^{{commit}}");
    git_in(sh, repo)
        .args(["rev-parse", "--quiet", "--verify", &spec])
        .ignore_stderr()
        .read()
        .is_ok()
}

/// Resolves `--ipxe-src` (or the default clone) to a [`Source`] that has the pin.
pub fn resolve(sh: &Shell, ipxe_src: Option<&Path>, work_dir: &Path, pin: &Pin) -> Result<Source> {
    let Some(path) = ipxe_src else {
        return default_clone(sh, work_dir, pin);
    };
    if !path.is_dir() {
        bail!("--ipxe-src {}: no such directory", path.display());
    }
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    // The src/ directory of a git work tree means that work tree.
    let is_src_dir = path.join("Makefile").is_file() && path.join("config/general.h").is_file();
    let path = match path.parent() {
        Some(parent) if is_src_dir && !is_git_repo(sh, &path) && is_git_repo(sh, parent) => {
            parent.to_path_buf()
        }
        _ => path,
    };
    if is_git_repo(sh, &path) {
        if !has_commit(sh, &path, &pin.commit) {
            bail!(
                "{} does not have the pinned iPXE commit {}; fetch it with\n  git -C {} fetch {} {}\nor point --ipxe-src at a clone that has it",
                path.display(),
                pin.commit,
                path.display(),
                pin.url,
                pin.commit
            );
        }
        return Ok(Source::Git { repo: path });
    }
    // No git metadata: accept the tree root or its src/ directory.
    let root = if path.join("src/Makefile").is_file() {
        path
    } else if path.join("Makefile").is_file() && path.join("config/general.h").is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or(path)
    } else {
        bail!(
            "{} is neither a git repository nor an iPXE tree (no src/Makefile); pass the iPXE checkout's top directory",
            path.display()
        );
    };
    eprintln!(
        "warning: {} has no git metadata; building it as is, without proof that it is iPXE {}",
        root.display(),
        pin.short()
    );
    Ok(Source::Plain { root })
}

/// The default: a bare clone of the pinned URL under the work directory.
fn default_clone(sh: &Shell, work_dir: &Path, pin: &Pin) -> Result<Source> {
    let repo = work_dir.join("ipxe.git");
    let advice = format!(
        "if this machine cannot reach {url}, use a local copy instead: \
         `cargo xtask build-rom --ipxe-src /path/to/ipxe` (a work tree or bare clone that has commit {commit}), \
         or set IPXE_SRC",
        url = pin.url,
        commit = pin.commit
    );
    if !is_git_repo(sh, &repo) {
        std::fs::create_dir_all(work_dir)?;
        let partial = work_dir.join("ipxe.git.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let url = &pin.url;
        eprintln!("cloning {url} into {}", repo.display());
        let output = cmd!(sh, "git clone --bare --quiet {url} {partial}")
            .quiet()
            .ignore_status()
            .output()
            .context("cannot run git")?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&partial);
            bail!(
                "git clone {url} failed: {}\n{advice}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        std::fs::rename(&partial, &repo)?;
    }
    if !has_commit(sh, &repo, &pin.commit) {
        let (url, commit) = (&pin.url, &pin.commit);
        let fetched = git_in(sh, &repo)
            .args(["fetch", "--quiet", url, commit])
            .ignore_stderr()
            .run()
            .is_ok();
        if !fetched || !has_commit(sh, &repo, commit) {
            bail!(
                "the clone {} does not have commit {commit} and fetching it from {url} failed\n{advice}",
                repo.display()
            );
        }
    }
    Ok(Source::Git { repo })
}

/// Hashes every regular file under `root` (paths and contents), skipping build output
/// (`src/bin*`) and VCS metadata, so a plain tree's cache key follows its content.
pub fn hash_tree(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect_files(root, root, &mut files)?;
    files.sort();
    let mut listing = Vec::new();
    for relative in files {
        let bytes = std::fs::read(root.join(&relative))
            .with_context(|| format!("cannot read {}", root.join(&relative).display()))?;
        listing.extend_from_slice(relative.to_string_lossy().as_bytes());
        listing.push(0);
        listing.extend_from_slice(sha256_hex(&bytes).as_bytes());
        listing.push(b'\n');
    }
    Ok(sha256_hex(&listing))
}

fn skip_in_copy(relative: &Path) -> bool {
    let mut components = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy());
    let first = components.next().unwrap_or_default();
    if first == ".git" {
        return true;
    }
    first == "src"
        && components
            .next()
            .is_some_and(|second| second.starts_with("bin"))
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let relative = path.strip_prefix(root)?.to_path_buf();
        if skip_in_copy(&relative) {
            continue;
        }
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_files(root, &path, files)?;
        } else if file_type.is_file() || file_type.is_symlink() {
            files.push(relative);
        }
    }
    Ok(())
}

/// Makes `dest` a fresh, patched copy of the source. Works in `dest.partial` and renames
/// at the end, so `dest` either is complete or does not exist.
pub fn prepare_tree(
    sh: &Shell,
    source: &Source,
    pin: &Pin,
    patches: &[Patch],
    project_root: &Path,
    dest: &Path,
) -> Result<()> {
    let partial = dest.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial)?;
    let result = (|| -> Result<()> {
        match source {
            Source::Git { repo } => {
                let tarball = partial.join("source.tar");
                let commit = &pin.commit;
                git_in(sh, repo)
                    .args(["archive", "--format=tar", "-o"])
                    .arg(&tarball)
                    .arg(commit)
                    .run()
                    .with_context(|| {
                        format!("git archive {commit} in {} failed", repo.display())
                    })?;
                cmd!(sh, "tar -xf {tarball} -C {partial}")
                    .quiet()
                    .run()
                    .context("cannot unpack the exported iPXE tree")?;
                std::fs::remove_file(&tarball)?;
            }
            Source::Plain { root } => copy_tree(root, root, &partial)?,
        }
        for patch in patches {
            apply_patch(sh, &partial, patch, pin, project_root)?;
        }
        Ok(())
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(err);
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .with_context(|| format!("cannot remove the old build tree {}", dest.display()))?;
    }
    std::fs::rename(&partial, dest)
        .with_context(|| format!("cannot move the build tree into {}", dest.display()))?;
    Ok(())
}

fn apply_patch(
    sh: &Shell,
    tree: &Path,
    patch: &Patch,
    pin: &Pin,
    project_root: &Path,
) -> Result<()> {
    let file = project_root.join(PATCH_DIR).join(&patch.file);
    let check = git_in(sh, tree)
        .args(["apply", "--check"])
        .arg(&file)
        .ignore_status()
        .output()
        .context("cannot run git apply")?;
    if !check.status.success() {
        bail!(
            "patch {PATCH_DIR}/{} does not apply to iPXE {} ({}):\n{}\nrefresh it against that commit, or build without it: --no-patch {}",
            patch.file,
            pin.commit,
            pin.date,
            String::from_utf8_lossy(&check.stderr).trim(),
            patch.name
        );
    }
    git_in(sh, tree)
        .arg("apply")
        .arg(&file)
        .run()
        .with_context(|| format!("git apply {PATCH_DIR}/{} failed", patch.file))?;
    Ok(())
}

fn copy_tree(root: &Path, dir: &Path, dest_root: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect_files(root, dir, &mut files)?;
    for relative in files {
        let to = dest_root.join(&relative);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(root.join(&relative), &to)
            .with_context(|| format!("cannot copy {}", root.join(&relative).display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tree_copies_skip_build_output_and_git_metadata() {
        assert!(skip_in_copy(Path::new(".git")));
        assert!(skip_in_copy(Path::new("src/bin")));
        assert!(skip_in_copy(Path::new("src/bin-x86_64-efi/foo.o")));
        assert!(!skip_in_copy(Path::new("src/core/main.c")));
        assert!(!skip_in_copy(Path::new("contrib/bin/x")));
    }

    fn pin(url: &str) -> Pin {
        Pin {
            url: url.to_string(),
            commit: "0ab2277c40f1de56c736b9e7db7ee23d52509ec5".to_string(),
            date: "2026-08-21T12:07:23+01:00".to_string(),
            epoch: 1_787_310_443,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sixboot-source-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_clone_suggests_ipxe_src() {
        let sh = Shell::new().unwrap();
        let work = scratch("clone");
        let err = resolve(&sh, None, &work, &pin("/nonexistent/ipxe.git")).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("git clone /nonexistent/ipxe.git failed"),
            "{message}"
        );
        assert!(message.contains("--ipxe-src /path/to/ipxe"), "{message}");
        assert!(!work.join("ipxe.git").exists());
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn accepts_a_tree_without_git_metadata_at_its_root_or_src() {
        let sh = Shell::new().unwrap();
        let tree = scratch("plain");
        std::fs::create_dir_all(tree.join("src/config")).unwrap();
        std::fs::write(tree.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(tree.join("src/config/general.h"), "").unwrap();
        let source = resolve(&sh, Some(&tree), &tree, &pin("u")).unwrap();
        let root = tree.canonicalize().unwrap();
        assert_eq!(source, Source::Plain { root: root.clone() });
        let from_src = resolve(&sh, Some(&tree.join("src")), &tree, &pin("u")).unwrap();
        assert_eq!(from_src, Source::Plain { root });
        // Its identity follows the content and ignores build output.
        let before = source.identity(&pin("u")).unwrap();
        std::fs::create_dir_all(tree.join("src/bin")).unwrap();
        std::fs::write(tree.join("src/bin/x.o"), "object").unwrap();
        assert_eq!(source.identity(&pin("u")).unwrap(), before);
        std::fs::write(tree.join("src/Makefile"), "all: x\n").unwrap();
        assert_ne!(source.identity(&pin("u")).unwrap(), before);
        std::fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn rejects_a_directory_that_is_no_ipxe_tree() {
        let sh = Shell::new().unwrap();
        let dir = scratch("empty");
        let err = resolve(&sh, Some(&dir), &dir, &pin("u")).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a git repository nor an iPXE tree"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A bare repository with one commit holding `src/Makefile` and `src/net/dhcpv6.c`,
    /// and a patch file for it in `project/patches/`; returns (bare repo, commit, project).
    fn tiny_ipxe(dir: &Path) -> (PathBuf, String, PathBuf) {
        let sh = Shell::new().unwrap();
        let work = dir.join("work-tree");
        std::fs::create_dir_all(work.join("src/net")).unwrap();
        std::fs::write(work.join("src/Makefile"), "all:\n").unwrap();
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
        let project = dir.join("project");
        std::fs::create_dir_all(project.join(PATCH_DIR)).unwrap();
        std::fs::write(
            project.join(PATCH_DIR).join("0001-duid-ll.patch"),
            "Subject: tiny\n---\ndiff --git a/src/net/dhcpv6.c b/src/net/dhcpv6.c\n--- a/src/net/dhcpv6.c\n+++ b/src/net/dhcpv6.c\n@@ -1 +1 @@\n-duid = uuid;\n+duid = ll;\n",
        )
        .unwrap();
        (bare, commit, project)
    }

    #[test]
    fn exports_a_bare_repository_and_applies_patches_in_a_copy() {
        let sh = Shell::new().unwrap();
        let dir = scratch("export");
        let (bare, commit, project) = tiny_ipxe(&dir);
        let pin = Pin { commit, ..pin("u") };
        let source = resolve(&sh, Some(&bare), &dir, &pin).unwrap();
        assert!(matches!(source, Source::Git { .. }));
        let patches = super::super::inputs::read_patches(&project.join(PATCH_DIR)).unwrap();
        let tree = dir.join("tree");
        prepare_tree(&sh, &source, &pin, &patches, &project, &tree).unwrap();
        assert_eq!(
            std::fs::read_to_string(tree.join("src/net/dhcpv6.c")).unwrap(),
            "duid = ll;\n"
        );
        assert!(!tree.join(".git").exists());
        // The repository itself is untouched.
        let original = git_in(&sh, &bare)
            .args(["show", "HEAD:src/net/dhcpv6.c"])
            .read()
            .unwrap();
        assert_eq!(original, "duid = uuid;");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_patch_that_does_not_apply_is_named_and_leaves_no_tree() {
        let sh = Shell::new().unwrap();
        let dir = scratch("badpatch");
        let (bare, commit, project) = tiny_ipxe(&dir);
        std::fs::write(
            project.join(PATCH_DIR).join("0002-stale.patch"),
            "diff --git a/src/net/dhcpv6.c b/src/net/dhcpv6.c\n--- a/src/net/dhcpv6.c\n+++ b/src/net/dhcpv6.c\n@@ -1 +1 @@\n-something else;\n+x;\n",
        )
        .unwrap();
        let pin = Pin { commit, ..pin("u") };
        let source = resolve(&sh, Some(&bare), &dir, &pin).unwrap();
        let patches = super::super::inputs::read_patches(&project.join(PATCH_DIR)).unwrap();
        let tree = dir.join("tree");
        let err = format!(
            "{:#}",
            prepare_tree(&sh, &source, &pin, &patches, &project, &tree).unwrap_err()
        );
        assert!(
            err.contains("patch patches/0002-stale.patch does not apply to iPXE"),
            "{err}"
        );
        assert!(err.contains(&pin.commit), "{err}");
        assert!(err.contains("--no-patch stale"), "{err}");
        assert!(!tree.exists());
        assert!(!tree.with_extension("partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
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
}

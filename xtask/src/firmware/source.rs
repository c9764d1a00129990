//! Where a flavour's pinned source comes from: the user's clone (work tree or bare), a
//! plain tree without git metadata (used as it is, with a warning), or a bare clone of
//! the pinned URL kept in the work directory.
//!
//! The user's copy is only ever read; [`super::tree`] exports it into a build tree.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::flavor::FlavorSpec;
use super::inputs::sha256_hex;
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
    /// What identifies this source's content in keys: the pinned commit for git (the
    /// commit id is a hash of the content), a hash of every file for a plain tree.
    pub fn identity(&self, pin: &Pin) -> Result<String> {
        match self {
            Source::Git { .. } => Ok(format!("git:{}", pin.commit)),
            Source::Plain { root } => Ok(format!("plain:{}", hash_tree(root)?)),
        }
    }

    /// For logs: where the source came from.
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
pub fn git_in<'a>(sh: &'a Shell, dir: &Path) -> xshell::Cmd<'a> {
    let ceiling = dir.parent().unwrap_or(dir).to_path_buf();
    cmd!(sh, "git -C {dir}")
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .env("GIT_TERMINAL_PROMPT", "0")
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

/// Resolves the user's source path (or, without one, the default clone) to a [`Source`]
/// that has the pin.
pub fn resolve(
    sh: &Shell,
    flavor: &FlavorSpec,
    src: Option<&Path>,
    work_dir: &Path,
    pin: &Pin,
) -> Result<Source> {
    let Some(path) = src else {
        return default_clone(sh, flavor, work_dir, pin);
    };
    let option = flavor.src_option;
    if !path.is_dir() {
        bail!(
            "{option} {}: no such directory; give a clone of {} (work tree or bare)",
            path.display(),
            pin.url
        );
    }
    let path = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    // The src/ directory of a git work tree means that work tree.
    let marker_in_src = flavor.tree_marker.strip_prefix("src/").unwrap_or("");
    let is_src_dir = path.join("Makefile").is_file() && path.join(marker_in_src).is_file();
    let path = match path.parent() {
        Some(parent) if is_src_dir && !is_git_repo(sh, &path) && is_git_repo(sh, parent) => {
            parent.to_path_buf()
        }
        _ => path,
    };
    if is_git_repo(sh, &path) {
        if !has_commit(sh, &path, &pin.commit) {
            let fetch_ref = pin.branch.as_deref().unwrap_or(&pin.commit);
            bail!(
                "{} does not have the pinned {} commit {}; fetch it with\n  git -C {} fetch {} {fetch_ref}\nor point {option} at a clone that has it",
                path.display(),
                flavor.title,
                pin.commit,
                path.display(),
                pin.url,
            );
        }
        return Ok(Source::Git { repo: path });
    }
    // No git metadata: accept the tree root or its src/ directory.
    let root = if path.join("src/Makefile").is_file() && path.join(flavor.tree_marker).is_file() {
        path
    } else if is_src_dir {
        path.parent().map(Path::to_path_buf).unwrap_or(path)
    } else {
        bail!(
            "{} is neither a git repository nor a {} tree (no src/Makefile and {}); pass the checkout's top directory",
            path.display(),
            flavor.title,
            flavor.tree_marker
        );
    };
    eprintln!(
        "warning: {} has no git metadata; building it as it is, without proof that it is {} {}",
        root.display(),
        flavor.title,
        pin.short()
    );
    Ok(Source::Plain { root })
}

/// The default: a bare clone of the pinned URL (only its branch, when the pin names one)
/// under the work directory.
fn default_clone(sh: &Shell, flavor: &FlavorSpec, work_dir: &Path, pin: &Pin) -> Result<Source> {
    let repo = work_dir.join(format!("{}.git", flavor.name));
    let advice = format!(
        "if this machine cannot reach {url}, use a local copy instead: \
         {option} /path/to/{name} or {env}=/path/to/{name} (a work tree or bare clone that has commit {commit})",
        url = pin.url,
        option = flavor.src_option,
        env = flavor.src_env,
        name = flavor.name,
        commit = pin.commit
    );
    if !is_git_repo(sh, &repo) {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("cannot create {}", work_dir.display()))?;
        let partial = work_dir.join(format!("{}.git.partial", flavor.name));
        let _ = std::fs::remove_dir_all(&partial);
        let url = &pin.url;
        let branch: Vec<String> = match &pin.branch {
            Some(branch) => vec!["--single-branch".into(), "--branch".into(), branch.clone()],
            None => Vec::new(),
        };
        eprintln!("cloning {url} into {}", repo.display());
        let output = cmd!(sh, "git clone --bare --quiet {branch...} {url} {partial}")
            .env("GIT_TERMINAL_PROMPT", "0")
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
/// (`src/bin*`) and VCS metadata, so a plain tree's key follows its content.
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

/// Whether a path of a plain tree stays out of its copy and its hash: git metadata and
/// build output (`src/bin*`, which make would otherwise reuse).
pub fn skip_in_copy(relative: &Path) -> bool {
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

/// Every file under `dir` (relative to `root`), without what [`skip_in_copy`] skips.
pub fn collect_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::flavor::{FLEXBOOT, IPXE};

    #[test]
    fn plain_tree_copies_skip_build_output_and_git_metadata() {
        assert!(skip_in_copy(Path::new(".git")));
        assert!(skip_in_copy(Path::new("src/bin")));
        assert!(skip_in_copy(Path::new("src/bin-x86_64-efi/foo.o")));
        assert!(!skip_in_copy(Path::new("src/core/main.c")));
        assert!(!skip_in_copy(Path::new("contrib/bin/x")));
    }

    pub(crate) fn pin(url: &str) -> Pin {
        Pin {
            url: url.to_string(),
            commit: "0ab2277c40f1de56c736b9e7db7ee23d52509ec5".to_string(),
            date: "2026-08-21T12:07:23+01:00".to_string(),
            epoch: 1_787_310_443,
            branch: None,
            release: None,
        }
    }

    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sixboot-source-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_clone_suggests_the_source_option_of_the_flavour() {
        let sh = Shell::new().unwrap();
        let work = scratch("clone");
        let err = resolve(&sh, &IPXE, None, &work, &pin("/nonexistent/ipxe.git")).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("git clone /nonexistent/ipxe.git failed"),
            "{message}"
        );
        assert!(message.contains("--ipxe-src /path/to/ipxe"), "{message}");
        assert!(!work.join("ipxe.git").exists());
        let flexboot = Pin {
            branch: Some("flexboot".into()),
            ..pin("/nonexistent/flexboot.git")
        };
        let err = format!(
            "{:#}",
            resolve(&sh, &FLEXBOOT, None, &work, &flexboot).unwrap_err()
        );
        assert!(err.contains("FLEXBOOT_SRC=/path/to/flexboot"), "{err}");
        assert!(!work.join("flexboot.git.partial").exists());
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn accepts_a_tree_without_git_metadata_at_its_root_or_src() {
        let sh = Shell::new().unwrap();
        let tree = scratch("plain");
        std::fs::create_dir_all(tree.join("src/config")).unwrap();
        std::fs::write(tree.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(tree.join("src/config/general.h"), "").unwrap();
        let source = resolve(&sh, &IPXE, Some(&tree), &tree, &pin("u")).unwrap();
        let root = tree.canonicalize().unwrap();
        assert_eq!(source, Source::Plain { root: root.clone() });
        let from_src = resolve(&sh, &IPXE, Some(&tree.join("src")), &tree, &pin("u")).unwrap();
        assert_eq!(from_src, Source::Plain { root });
        // Its identity follows the content and ignores build output.
        let before = source.identity(&pin("u")).unwrap();
        std::fs::create_dir_all(tree.join("src/bin")).unwrap();
        std::fs::write(tree.join("src/bin/x.o"), "object").unwrap();
        assert_eq!(source.identity(&pin("u")).unwrap(), before);
        std::fs::write(tree.join("src/Makefile"), "all: x\n").unwrap();
        assert_ne!(source.identity(&pin("u")).unwrap(), before);
        // It is no FlexBoot tree.
        let err = resolve(&sh, &FLEXBOOT, Some(&tree), &tree, &pin("u")).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a git repository nor a FlexBoot tree"),
            "{err}"
        );
        std::fs::remove_dir_all(&tree).unwrap();
    }

    #[test]
    fn rejects_a_repository_without_the_pinned_commit_naming_the_fetch() {
        let sh = Shell::new().unwrap();
        let dir = scratch("nocommit");
        let repo = dir.join("empty.git");
        cmd!(sh, "git init --quiet --bare {repo}").run().unwrap();
        let flexboot = Pin {
            url: "https://github.com/ipxe/vendor-mellanox-flexboot.git".into(),
            branch: Some("flexboot".into()),
            ..pin("u")
        };
        let err = format!(
            "{:#}",
            resolve(&sh, &FLEXBOOT, Some(&repo), &dir, &flexboot).unwrap_err()
        );
        assert!(
            err.contains("does not have the pinned FlexBoot commit 0ab2277c4"),
            "{err}"
        );
        assert!(
            err.contains("fetch https://github.com/ipxe/vendor-mellanox-flexboot.git flexboot"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Shared by the lint tests: the corpus manifest (`tests/lint_corpus/MANIFEST.toml`),
//! and for the differential test, iPXE built from `IPXE_SRC` for Linux userspace and the
//! namespace it runs the corpus in ([`ipxe`]).

#![allow(dead_code)] // Each test binary uses its own part.

pub mod ipxe;
pub mod servers;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The corpus directory.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint_corpus")
}

/// What real iPXE does with a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Runs as a script and reaches its end, or hands over to an image it fetched.
    Ok,
    /// Stops before that: not a script, a command fails, a URL is misread.
    Error,
}

/// One manifest entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub file: String,
    pub about: String,
    /// Every rule the lint must report, exactly.
    pub rules: Vec<String>,
    /// What real iPXE does.
    pub ipxe: Verdict,
    /// For errors: text iPXE must print.
    pub ipxe_says: Option<String>,
    /// Keystrokes for iPXE's console (`\r` is Enter).
    pub keys: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    script: Vec<Entry>,
}

/// One corpus script: its entry and its bytes.
#[derive(Debug, Clone)]
pub struct Script {
    pub entry: Entry,
    pub bytes: Vec<u8>,
}

/// Reads the manifest and every script it names; panics with the file at fault.
pub fn corpus() -> Vec<Script> {
    let dir = corpus_dir();
    let path = dir.join("MANIFEST.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let manifest: Manifest =
        toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    manifest
        .script
        .into_iter()
        .map(|entry| {
            let file = dir.join(&entry.file);
            let bytes = std::fs::read(&file)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", file.display()));
            Script { entry, bytes }
        })
        .collect()
}

/// The lint's verdict on what iPXE will do: an error iff it reports an error whose
/// authority is iPXE (installer rules are about the kernel command line).
pub fn lint_verdict(bytes: &[u8]) -> Verdict {
    let problems = sixboot::script::lint(bytes);
    if sixboot::script::ipxe_problems(&problems)
        .iter()
        .any(|p| p.is_error())
    {
        Verdict::Error
    } else {
        Verdict::Ok
    }
}

//! The lint corpus without iPXE: every script under `tests/lint_corpus/` gets exactly the
//! rules its `MANIFEST.toml` entry lists, and an iPXE-authority error exactly when the
//! manifest says real iPXE fails it (`tests/lint_ipxe.rs` checks that against iPXE).
//! Also: our own embedded scripts lint clean, and README lists every rule.

mod lint_support;

use std::collections::BTreeSet;

use lint_support::{corpus, corpus_dir, lint_verdict, Verdict};

#[test]
fn every_corpus_script_gets_exactly_the_rules_its_manifest_lists() {
    let mut wrong = Vec::new();
    for script in corpus() {
        let found: BTreeSet<String> = sixboot::script::lint(&script.bytes)
            .iter()
            .map(|p| p.rule.name.to_owned())
            .collect();
        let expected: BTreeSet<String> = script.entry.rules.iter().cloned().collect();
        if found != expected {
            wrong.push(format!(
                "{}: lint reports {found:?}, manifest lists {expected:?}",
                script.entry.file
            ));
        }
        let verdict = lint_verdict(&script.bytes);
        if verdict != script.entry.ipxe {
            wrong.push(format!(
                "{}: the lint's iPXE verdict is {verdict:?}, the manifest says iPXE gives {:?}",
                script.entry.file, script.entry.ipxe
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_corpus_has_forty_scripts_or_more_all_in_the_manifest() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "only {} scripts", corpus.len());
    let listed: BTreeSet<String> = corpus.iter().map(|s| s.entry.file.clone()).collect();
    assert_eq!(listed.len(), corpus.len(), "a file is listed twice");
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".ipxe"))
        .collect();
    assert_eq!(listed, on_disk, "files and MANIFEST.toml disagree");
    for verdict in [Verdict::Ok, Verdict::Error] {
        assert!(
            corpus.iter().filter(|s| s.entry.ipxe == verdict).count() >= 10,
            "fewer than 10 scripts iPXE gives {verdict:?}"
        );
    }
    // Every rule of iPXE authority has a script that shows it.
    let shown: BTreeSet<&str> = corpus
        .iter()
        .flat_map(|s| s.entry.rules.iter().map(String::as_str))
        .collect();
    for rule in sixboot::script::RULES {
        assert!(
            shown.contains(rule.name),
            "no corpus script shows {}",
            rule.name
        );
    }
}

#[test]
fn our_own_embedded_scripts_and_templates_lint_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "ipxe-config/embed.ipxe",
        "ipxe-config/embed-dual-stack.ipxe",
    ] {
        let bytes = std::fs::read(root.join(file)).unwrap();
        let problems = sixboot::script::lint(&bytes);
        assert!(problems.is_empty(), "{file}: {problems:?}");
    }
}

#[test]
fn readme_lists_every_rule_with_its_severity_and_source() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for rule in sixboot::script::RULES {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", rule.name)))
            .unwrap_or_else(|| panic!("README has no row `| `{}` |`", rule.name));
        assert!(
            row.contains(rule.severity.as_str()) && row.contains(rule.source),
            "README's row for {} must say {} and {:?}: {row}",
            rule.name,
            rule.severity,
            rule.source
        );
    }
}

//! Differential test: every script of the lint corpus is run in real iPXE, built from
//! `IPXE_SRC` (iPXE's Linux userspace platform, see `lint_support::ipxe`), on a tap in a
//! namespace whose HTTP, DNS and TFTP servers answer whatever iPXE asks for; the lint's
//! verdict must be iPXE's on every one.
//!
//! For each script it records whether iPXE ran it as a script, how far it got (handed
//! over to a fetched image, ran to its end, or failed with which error), and what iPXE
//! asked the servers for (the DNS name and HTTP host it made of each URL); the table is
//! printed and written to `target/tmp/lint-ipxe/results.md`. `SIXBOOT_LINT_ONLY=TEXT` runs
//! only the scripts whose file name contains TEXT.

mod lint_support;

use std::fmt::Write as _;
use std::time::Instant;

use lint_support::ipxe::{self, Lab};
use lint_support::{corpus, lint_verdict, Verdict};
use sixboot_lab::need;

#[test]
fn real_ipxe_gives_every_corpus_script_the_lints_verdict() {
    let started = Instant::now();
    let Some(src) = need::source("IPXE_SRC") else {
        return;
    };
    if !need::root() {
        return;
    }
    for (program, package) in [
        ("make", "make"),
        ("gcc", "gcc"),
        ("git", "git"),
        ("tar", "tar"),
    ] {
        if !need::program(program, package) {
            return;
        }
    }
    // SIXBOOT_LINT_ONLY=SUBSTRING runs only the matching scripts (while working on one).
    let only = std::env::var("SIXBOOT_LINT_ONLY").unwrap_or_default();
    let corpus: Vec<_> = corpus()
        .into_iter()
        .filter(|s| s.entry.file.contains(&only))
        .collect();
    let scripts: Vec<(String, Vec<u8>)> = corpus
        .iter()
        .map(|s| (s.entry.file.clone(), s.bytes.clone()))
        .collect();
    let binary = ipxe::build(&src, &scripts).unwrap_or_else(|err| panic!("{err}"));
    let built = started.elapsed();
    let lab = Lab::start();

    let mut table = String::from(
        "| script | lint | iPXE | as script | how it ended | what iPXE asked for | ms |\n|---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    let mut n_agree = 0;
    for script in &corpus {
        let entry = &script.entry;
        let keys = entry.keys.as_deref().unwrap_or_default().as_bytes();
        let run = lab.run(&binary, &entry.file, keys);
        let lint = lint_verdict(&script.bytes);
        let ended = match &run.outcome {
            ipxe::Outcome::HandedOver(line) => line.replace("LINT-HANDOVER ", "handed over: "),
            ipxe::Outcome::Finished => "ran to its end".to_owned(),
            ipxe::Outcome::Failed(errno) => format!(
                "failed {errno}: {}",
                run.error_line().unwrap_or("(no message)")
            ),
            ipxe::Outcome::NoVerdict(why) => format!("no verdict: {why}"),
        };
        let asked: Vec<String> = run.events.iter().map(|e| e.to_string()).collect();
        let _ = writeln!(
            table,
            "| {} | {:?} | {} | {} | {} | {} | {} |",
            entry.file,
            lint,
            run.verdict().map_or("-".to_owned(), |v| format!("{v:?}")),
            if run.ran_as_script() { "yes" } else { "no" },
            ended.replace('|', "\\|"),
            asked.join("; ").replace('|', "\\|"),
            run.elapsed.as_millis(),
        );
        let mut problems = Vec::new();
        match run.verdict() {
            None => problems.push(format!("iPXE gave no verdict ({ended})")),
            Some(ipxe) if ipxe != lint => problems.push(format!(
                "the lint says {lint:?}, iPXE says {ipxe:?} ({ended})"
            )),
            Some(ipxe) => {
                n_agree += 1;
                if ipxe != entry.ipxe {
                    problems.push(format!(
                        "both say {ipxe:?}, the manifest says {:?}",
                        entry.ipxe
                    ));
                }
            }
        }
        // Magic problems and "not run as a script" go together.
        let magic_error = sixboot::script::lint(&script.bytes)
            .iter()
            .any(|p| p.is_error() && p.rule.name.starts_with("magic-"));
        if magic_error == run.ran_as_script() {
            problems.push(format!(
                "the lint {} a magic error, and iPXE {} it as a script",
                if magic_error { "reports" } else { "reports no" },
                if run.ran_as_script() {
                    "ran"
                } else {
                    "did not run"
                }
            ));
        }
        if let Some(says) = &entry.ipxe_says {
            let seen = format!("{}\n{}", run.script_output(), asked.join("\n"));
            if !seen.contains(says.as_str()) {
                problems.push(format!("iPXE did not say {says:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  iPXE's console:\n    {}\n  servers saw: {}",
                entry.file,
                problems.join("; "),
                run.script_output().replace('\n', "\n    "),
                if asked.is_empty() {
                    "nothing".to_owned()
                } else {
                    asked.join("; ")
                }
            ));
        }
    }
    let summary = format!(
        "{n_agree} of {} corpus scripts: real iPXE's verdict = the lint's ({} ok, {} error by the manifest); build {:.1} s, runs {:.1} s",
        corpus.len(),
        corpus.iter().filter(|s| s.entry.ipxe == Verdict::Ok).count(),
        corpus.iter().filter(|s| s.entry.ipxe == Verdict::Error).count(),
        built.as_secs_f64(),
        (started.elapsed() - built).as_secs_f64(),
    );
    println!("{table}\n{summary}");
    let results = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("lint-ipxe/results.md");
    let _ = std::fs::write(&results, format!("{table}\n{summary}\n"));
    assert!(
        failures.is_empty(),
        "{} of {} scripts:\n{}\n{summary}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

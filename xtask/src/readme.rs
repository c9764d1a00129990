//! `cargo xtask readme [--check]`: README's benchmark tables, rendered from the committed
//! bench reports, so the numbers in README are the numbers a bench printed.
//!
//! A report is what `cargo xtask bench NAME --json` prints, committed as
//! `bench/results/NAME.json`. README holds one block per report, between
//! `<!-- bench:NAME … -->` and `<!-- /bench:NAME -->`, filled with the table the bench
//! itself prints (the same render function), and one `bench:summary` block with every
//! report's results against its goals. `--check` (and the test below, so `cargo test`)
//! fails when a block is not what its report renders.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::de::DeserializeOwned;
use xshell::Shell;

use crate::bench::report::{Run, Table};
use crate::bench::{boot, dhcpv6, http, inventory, status, tftp};

/// Where the committed reports live, relative to the project root.
pub const RESULTS_DIR: &str = "bench/results";

/// The block that sums up every report.
const SUMMARY: &str = "summary";

/// The benches whose reports render into README.
const KNOWN: &[&str] = &["boot", "dhcpv6", "http", "inventory", "status", "tftp"];

#[derive(Debug, Args)]
pub struct Readme {
    /// Change nothing; fail if README's blocks are not what the reports render.
    #[arg(long)]
    check: bool,
}

impl Readme {
    pub fn run(self, _sh: &Shell) -> Result<()> {
        let root = crate::project_root();
        let path = root.join("README.md");
        let readme = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let rendered = render_readme(&readme, &read_results(&root.join(RESULTS_DIR))?)?;
        if rendered == readme {
            eprintln!("README.md: every bench block is up to date");
            return Ok(());
        }
        if self.check {
            bail!(
                "README.md's bench blocks are not what {RESULTS_DIR}/*.json render: run \
                 `cargo xtask readme` (and commit README.md)"
            );
        }
        sixboot::atomic_file::write(&path, rendered.as_bytes())?;
        eprintln!("README.md: bench blocks rewritten from {RESULTS_DIR}/*.json");
        Ok(())
    }
}

/// Every `*.json` in `dir`: bench name → text.
fn read_results(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut results = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        results.insert(name.to_owned(), text);
    }
    Ok(results)
}

/// What README shows of one report: its table (with goals and run), its headlines, its run.
struct Rendered {
    table: String,
    headlines: Vec<String>,
    run: Run,
}

fn parse<T: DeserializeOwned>(name: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).with_context(|| {
        format!(
            "{RESULTS_DIR}/{name}.json is not a `cargo xtask bench {name} --json` report; \
             re-run the bench"
        )
    })
}

fn render_report(name: &str, json: &str) -> Result<Rendered> {
    macro_rules! bench {
        ($module:ident) => {{
            let report: $module::Report = parse(name, json)?;
            Rendered {
                table: $module::render(&report),
                headlines: $module::headlines(&report),
                run: report.run,
            }
        }};
    }
    Ok(match name {
        "boot" => bench!(boot),
        "dhcpv6" => bench!(dhcpv6),
        "http" => bench!(http),
        "inventory" => bench!(inventory),
        "status" => bench!(status),
        "tftp" => bench!(tftp),
        _ => bail!(
            "{RESULTS_DIR}/{name}.json: no bench `{name}` renders into README (known: {})",
            KNOWN.join(", ")
        ),
    })
}

/// What a block shows while its bench has no committed report: how to make one. (Numbers
/// are never typed into a block by hand.)
fn no_report(name: &str) -> String {
    format!(
        "_No report committed yet. On an otherwise idle machine: `sudo cargo xtask bench {name} \
         --json > {RESULTS_DIR}/{name}.json && cargo xtask readme`._\n"
    )
}

/// The summary: every report's headlines, with the command and day that measured them.
fn render_summary(rendered: &BTreeMap<String, Rendered>) -> String {
    if rendered.is_empty() {
        return "_No report committed yet: each bench block says how to make one; this \
                summary then lists their results against their goals._\n"
            .to_owned();
    }
    let mut table = Table::new(&[("result", false), ("measured by", false)]);
    for r in rendered.values() {
        for line in &r.headlines {
            table.row(vec![
                line.clone(),
                format!(
                    "`{}`, {}, load {:.1}",
                    r.run.command, r.run.date, r.run.load_before[0]
                ),
            ]);
        }
    }
    table.render()
}

/// README with every bench block replaced by what its report renders.
fn render_readme(readme: &str, results: &BTreeMap<String, String>) -> Result<String> {
    let rendered: BTreeMap<String, Rendered> = results
        .iter()
        .map(|(name, json)| Ok((name.clone(), render_report(name, json)?)))
        .collect::<Result<_>>()?;
    let mut out = String::with_capacity(readme.len());
    let mut lines = readme.split_inclusive('\n').enumerate();
    let mut seen = Vec::new();
    while let Some((n, line)) = lines.next() {
        out.push_str(line);
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- bench:")
            .and_then(|rest| rest.split([' ', '-']).next())
            .filter(|name| !name.is_empty())
        else {
            continue;
        };
        let end = format!("<!-- /bench:{name} -->");
        if !lines.any(|(_, l)| l.trim() == end) {
            bail!(
                "README.md:{}: block bench:{name} has no `{end}` line",
                n + 1
            );
        }
        let body = if name == SUMMARY {
            render_summary(&rendered)
        } else {
            match rendered.get(name) {
                Some(r) => r.table.clone(),
                None if KNOWN.contains(&name) => no_report(name),
                None => bail!(
                    "README.md:{}: block bench:{name} names no bench (known: {})",
                    n + 1,
                    KNOWN.join(", ")
                ),
            }
        };
        out.push('\n');
        out.push_str(&body);
        out.push('\n');
        out.push_str(&end);
        out.push('\n');
        seen.push(name.to_owned());
    }
    if let Some(missing) = rendered.keys().find(|name| !seen.contains(name)) {
        bail!(
            "{RESULTS_DIR}/{missing}.json has no block in README.md: add `<!-- bench:{missing} \
             -->` and `<!-- /bench:{missing} -->` where its table belongs"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_bench_tables_are_what_the_committed_reports_render() {
        let root = crate::project_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let results = read_results(&root.join(RESULTS_DIR)).unwrap();
        let rendered = render_readme(&readme, &results).unwrap();
        assert!(
            rendered == readme,
            "README.md's bench blocks are not what {RESULTS_DIR}/*.json render: run `cargo \
             xtask readme`"
        );
    }

    #[test]
    fn blocks_are_replaced_and_reports_without_a_block_are_refused() {
        let measured = |server: &str, rate: f64| dhcpv6::Measurement {
            server: server.into(),
            relay: false,
            target: 6000,
            rate,
            sent: 120_000,
            drops: 0,
            cpu_secs: 1.0,
            server_overflows: 0,
            client_overflows: 0,
        };
        let report = dhcpv6::Report {
            run: Run {
                tools: vec!["kea-dhcp6 2.2.0".into()],
                ..Run::fixture("cargo xtask bench dhcpv6 --json")
            },
            seconds: 10,
            clients: 1000,
            rows: vec![measured("sixboot", 5400.0), measured("kea", 3000.0)],
        };
        let json = serde_json::to_string(&report).unwrap();
        let results = BTreeMap::from([("dhcpv6".to_owned(), json)]);
        let readme = "intro\n<!-- bench:dhcpv6 generated -->\nstale\n<!-- /bench:dhcpv6 -->\nend\n";
        let out = render_readme(readme, &results).unwrap();
        assert!(out.starts_with("intro\n<!-- bench:dhcpv6 generated -->\n\nperfdhcp -6"));
        assert!(out.ends_with("\n<!-- /bench:dhcpv6 -->\nend\n"));
        assert!(!out.contains("stale"));
        assert!(
            out.contains("| sixboot | direct |    6,000 |       5,400 |"),
            "{out}"
        );
        assert!(out.contains("1.80x Kea's (goal >= 1.5x): met"), "{out}");
        assert_eq!(render_readme(&out, &results).unwrap(), out);
        let summary = render_readme(
            "<!-- bench:summary -->\n<!-- /bench:summary -->\n<!-- bench:dhcpv6 -->\n<!-- /bench:dhcpv6 -->\n",
            &results,
        )
        .unwrap();
        assert!(
            summary.contains("| DHCPv6 direct at 6,000/s: sixboot 5,400 exchanges/s = 1.80x Kea's (goal >= 1.5x): met | `cargo xtask bench dhcpv6 --json`, 2024-03-01, load 0.5 |"),
            "{summary}"
        );
        let err = render_readme("no blocks\n", &results).unwrap_err();
        assert!(
            err.to_string().contains("has no block in README.md"),
            "{err}"
        );
        let placeholder = render_readme(
            "<!-- bench:tftp -->\n<!-- /bench:tftp -->\n",
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(
            placeholder.contains("No report committed yet")
                && placeholder.contains("bench tftp --json > bench/results/tftp.json"),
            "{placeholder}"
        );
        let err = render_readme(
            "<!-- bench:nope -->\n<!-- /bench:nope -->\n",
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("names no bench"), "{err}");
    }
}

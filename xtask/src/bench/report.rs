//! Benchmark results as data. Every `cargo xtask bench …` builds one report (the run's
//! [`Run`] facts, its settings and one row per measurement); the table it prints and the
//! table README shows are rendered from that report by the same function, and `--json`
//! prints the report itself. Committed reports live in `bench/results/<bench>.json`;
//! `cargo xtask readme` renders them into README (`crate::readme`).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

/// The options every bench has.
#[derive(Debug, Args)]
pub struct Common {
    /// Print the apt-get line for missing packages instead of running it.
    #[arg(long)]
    pub no_install: bool,
    /// Print the report as JSON (what `bench/results/<bench>.json` holds) instead of the
    /// table.
    #[arg(long)]
    pub json: bool,
}

/// Facts about one run that every bench records: what was typed and how busy the machine
/// was (the peer runs in the same run, so ratios survive load; absolute numbers do not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The command as typed, e.g. `cargo xtask bench dhcpv6 --json --rates 6000`.
    pub command: String,
    /// The day it ran (UTC, `YYYY-MM-DD`).
    pub date: String,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// `/proc/loadavg`'s 1-, 5- and 15-minute load averages when the run started and ended.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    /// The peers' and load generators' versions (first line of what each prints).
    #[serde(default)]
    pub tools: Vec<String>,
}

impl Run {
    /// The facts known when a bench starts; [`Run::finish`] adds the load at the end.
    pub fn start() -> Run {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Run {
            command: format!("cargo xtask {}", args.join(" ")),
            date: utc_date(std::time::SystemTime::now()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_before: load_average(),
            load_after: [0.0; 3],
            tools: Vec::new(),
        }
    }

    pub fn finish(&mut self) {
        self.load_after = load_average();
    }

    /// Fixed facts for tests: `command`, 2024-03-01, 2 CPUs, load 0.5 before and 1.5 after.
    #[cfg(test)]
    pub fn fixture(command: &str) -> Run {
        Run {
            command: command.into(),
            date: "2024-03-01".into(),
            cpus: 2,
            load_before: [0.5, 0.4, 0.3],
            load_after: [1.5, 0.6, 0.4],
            tools: Vec::new(),
        }
    }

    /// One line under a table: where the numbers came from.
    pub fn footer(&self) -> String {
        let load = |l: &[f64; 3]| format!("{:.1} {:.1} {:.1}", l[0], l[1], l[2]);
        let tools = if self.tools.is_empty() {
            String::new()
        } else {
            format!(" Peers and tools: {}.", self.tools.join("; "))
        };
        format!(
            "Measured by `{}` on {}: {} CPUs, load average {} before, {} after.{tools}",
            self.command,
            self.date,
            self.cpus,
            load(&self.load_before),
            load(&self.load_after)
        )
    }
}

/// The first line each `(program, args)` prints about its version (stdout or stderr),
/// or `program: not found`.
pub fn tool_versions(sh: &Shell, tools: &[(&str, &[&str])]) -> Vec<String> {
    tools
        .iter()
        .map(|&(program, args)| {
            let output = cmd!(sh, "{program} {args...}")
                .quiet()
                .ignore_status()
                .output();
            let first_line = |bytes: &[u8]| {
                String::from_utf8_lossy(bytes)
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_owned)
            };
            match output
                .ok()
                .and_then(|o| first_line(&o.stdout).or_else(|| first_line(&o.stderr)))
            {
                // `nginx version: nginx/1.22.1`, `Dnsmasq version 2.90 …` name themselves;
                // `perfdhcp -v` and `kea-dhcp6 -V` print a bare version.
                Some(line) if line.to_lowercase().contains(&program.to_lowercase()) => line,
                Some(line) => format!("{program} {line}"),
                None => format!("{program}: not found"),
            }
        })
        .collect()
}

/// `/proc/loadavg`'s first three fields (zeros when it cannot be read).
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

/// `YYYY-MM-DD` (UTC) of a time: the date part of the library's
/// [`sixboot::inventory::timeline::format_utc`].
fn utc_date(time: std::time::SystemTime) -> String {
    let millis = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    // 0 ms formats as "-": the epoch's date instead.
    let mut text = sixboot::inventory::timeline::format_utc(millis.max(1));
    text.truncate(10);
    text
}

/// A Markdown table: header cells, right-aligned columns (numbers), rows.
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns as `(title, right-aligned)`.
    pub fn new(columns: &[(&str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|(t, _)| t.to_string()).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    /// The table, padded so that it also reads well as plain text.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.header[i].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                if self.right[i] {
                    let _ = write!(s, " {}{cell} |", " ".repeat(pad));
                } else {
                    let _ = write!(s, " {cell}{} |", " ".repeat(pad));
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.header);
        out.push('|');
        for (i, width) in widths.iter().enumerate() {
            if self.right[i] {
                let _ = write!(out, "{}:|", "-".repeat(width + 1));
            } else {
                let _ = write!(out, "{}|", "-".repeat(width + 2));
            }
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A rendered report: an introduction (what was measured, how), the table, one bullet per
/// result or note, and where the numbers came from.
pub fn document(intro: &str, table: &Table, bullets: &[String], run: &Run) -> String {
    let mut out = format!("{intro}\n\n{}\n", table.render());
    for bullet in bullets {
        out.push_str(&format!("- {bullet}\n"));
    }
    out.push_str(&format!("\n{}\n", run.footer()));
    out
}

/// Prints a report as JSON (`--json`) or as its rendered text.
pub fn print<T: Serialize>(report: &T, json: bool, render: fn(&T) -> String) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).context("cannot write the report as JSON")?
        );
    } else {
        println!();
        print!("{}", render(report));
    }
    Ok(())
}

/// A number with thousands separators: `13596` → `13,596`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// "met" or "not met".
pub fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "not met"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_numbers_read_as_people_write_them() {
        let day = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_200);
        assert_eq!(utc_date(day), "2024-03-01");
        assert_eq!(utc_date(std::time::UNIX_EPOCH), "1970-01-01");
        assert_eq!(thousands(13_596.4), "13,596");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }

    #[test]
    fn tables_are_markdown_with_aligned_columns() {
        let mut table = Table::new(&[("server", false), ("req/s", true)]);
        table.row(vec!["sixboot".into(), "36,295".into()]);
        table.row(vec!["nginx".into(), "7".into()]);
        assert_eq!(
            table.render(),
            "| server  |  req/s |\n\
             |---------|-------:|\n\
             | sixboot | 36,295 |\n\
             | nginx   |      7 |\n"
        );
    }
}

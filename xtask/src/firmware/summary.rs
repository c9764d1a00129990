//! What build-rom shows: a progress line per step (spinners on a terminal, plain lines in
//! CI logs) and the summary table of the package.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::package::ImageRecord;
use super::targets::Target;

/// How one target's images were obtained.
pub struct TargetResult {
    /// The target.
    pub target: Target,
    /// Its cache key (the manifest's `input_key`).
    pub key: String,
    /// Its images.
    pub records: Vec<ImageRecord>,
    /// The cache entry holding the files.
    pub entry: PathBuf,
    /// Built in this run (not served from the cache).
    pub built: bool,
}

/// Prints one row per packaged image (`from`: built in this run or served from the
/// cache) and the package line.
pub fn print_summary(results: &[TargetResult], out: &Path, elapsed: Duration) {
    let rows: Vec<[String; 7]> = results
        .iter()
        .flat_map(|r| {
            r.records.iter().map(move |rec| {
                [
                    rec.target.clone(),
                    rec.file.clone(),
                    rec.kind.clone(),
                    rec.pci_ids.join(","),
                    group_thousands(rec.size),
                    rec.sha256[..12].to_string(),
                    match (r.built, rec.experimental) {
                        (true, false) => "built",
                        (true, true) => "built, experimental",
                        (false, false) => "cached",
                        (false, true) => "cached, experimental",
                    }
                    .to_string(),
                ]
            })
        })
        .collect();
    let header = ["target", "file", "kind", "pci", "bytes", "sha256", "from"].map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == 4 {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    println!(
        "{}: {} images + manifest.json, SHA256SUMS, BURN.md ({:.1} s)",
        out.display(),
        rows.len(),
        elapsed.as_secs_f64()
    );
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Progress lines: spinners on a terminal, plain lines otherwise (CI logs).
pub struct Progress {
    multi: MultiProgress,
    tty: bool,
}

pub struct Step {
    /// The spinner; make updates its message.
    pub bar: ProgressBar,
    name: String,
    started: Instant,
    tty: bool,
}

impl Progress {
    /// Spinners on a terminal (stderr), plain lines otherwise.
    pub fn new() -> Progress {
        let tty = std::io::stderr().is_terminal();
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            tty,
        }
    }

    /// Starts a step.
    pub fn step(&self, name: &str, message: &str) -> Step {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<20} {elapsed:>4} {wide_msg}")
                .expect("the template is valid"),
        );
        bar.set_prefix(name.to_string());
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        if !self.tty {
            eprintln!("{name}: {message}");
        }
        Step {
            bar,
            name: name.to_string(),
            started: Instant::now(),
            tty: self.tty,
        }
    }
}

impl Step {
    /// Marks the step done.
    pub fn done(&self, message: &str) {
        self.finish("✓", message);
    }

    /// Marks the step failed.
    pub fn fail(&self, message: &str) {
        self.finish("✗", message);
    }

    fn finish(&self, mark: &str, message: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.bar.set_style(
            ProgressStyle::with_template("{prefix} {wide_msg}").expect("the template is valid"),
        );
        self.bar
            .set_prefix(format!("{mark} {:<20} {elapsed:>5.1}s", self.name));
        self.bar.finish_with_message(message.to_string());
        if !self.tty {
            eprintln!("{mark} {} {elapsed:.1}s {message}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands_for_sizes() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(90_624), "90,624");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}

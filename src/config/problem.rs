//! What validation reports: a [`Problem`] (error or warning) with the file, line,
//! column and dotted field it came from, and [`ConfigError`], every error at once.

use std::fmt;
use std::path::PathBuf;

/// How bad a [`Problem`] is.
///
/// An error is a config that cannot work (the firmware cannot use it, or the server
/// cannot start): `config check` exits 1 and `boot-server` refuses to start. A warning
/// is a config that works for some clients or networks but is risky; both print it,
/// neither stops on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based line and column of the value (or of the file's start for a missing key).
    pub line: usize,
    pub column: usize,
    /// The dotted field, e.g. `hosts[2].address`.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `FILE:LINE:COLUMN: FIELD: MESSAGE` for an error, `FILE:LINE:COLUMN: warning:
    /// FIELD: MESSAGE` for a warning (the shape compilers use, so editors jump to it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a config file: at least one error, plus any warnings.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// The errors only (the reason the config was rejected).
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_error())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

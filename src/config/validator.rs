//! The state every section's validation shares: where the text came from (to turn
//! spans into lines), the problems found so far, and the parsers for the value kinds
//! that appear in more than one section (addresses, prefixes, URLs, lifetimes, paths).

use core::net::{Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::problem::{Problem, Severity};
use super::raw::Text;
use super::{check_url, prefix_mask, Prefix};

/// Collects [`Problem`]s while the sections are validated.
pub(super) struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Self {
        Validator {
            path,
            text,
            problems: Vec::new(),
        }
    }

    pub(super) fn path(&self) -> &Path {
        self.path
    }

    /// 1-based line and column of a byte offset into the text.
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    fn push(&mut self, severity: Severity, span: Range<usize>, field: &str, message: String) {
        let (line, column) = self.line_col(span.start);
        self.problems.push(Problem {
            severity,
            path: self.path.to_owned(),
            line,
            column,
            field: field.to_owned(),
            message,
        });
    }

    /// Something that cannot work: the config is rejected.
    pub(super) fn error(&mut self, span: Range<usize>, field: &str, message: String) {
        self.push(Severity::Error, span, field, message);
    }

    /// Something risky: reported, the config is still accepted.
    pub(super) fn warning(&mut self, span: Range<usize>, field: &str, message: String) {
        self.push(Severity::Warning, span, field, message);
    }

    pub(super) fn address(&mut self, text: &Text, field: &str) -> Option<Ipv6Addr> {
        match text.get_ref().parse::<Ipv6Addr>() {
            Ok(address) => Some(address),
            Err(_) => {
                let hint = if text.get_ref().matches("::").count() > 1 {
                    " (`::` may appear only once)"
                } else {
                    ""
                };
                self.error(
                    text.span(),
                    field,
                    format!("`{}` is not an IPv6 address{hint}", text.get_ref()),
                );
                None
            }
        }
    }

    pub(super) fn prefix(&mut self, text: &Text, field: &str) -> Option<Prefix> {
        let Some((address, len)) = text.get_ref().split_once('/') else {
            self.error(
                text.span(),
                field,
                format!(
                    "`{}` is not a prefix: write it as ADDRESS/LENGTH, e.g. 2001:db8:1::/64",
                    text.get_ref()
                ),
            );
            return None;
        };
        let address_text = Spanned::new(text.span(), address.to_owned());
        let address = self.address(&address_text, field)?;
        let len = match len.parse::<u8>() {
            Ok(len) if len <= 128 => len,
            _ => {
                self.error(
                    text.span(),
                    field,
                    format!("prefix length `{len}` must be a number from 0 to 128"),
                );
                return None;
            }
        };
        if u128::from(address) & !prefix_mask(len) != 0 {
            self.error(
                text.span(),
                field,
                format!(
                    "`{}` has bits set past the prefix length; did you mean {}/{len}?",
                    text.get_ref(),
                    Ipv6Addr::from(u128::from(address) & prefix_mask(len))
                ),
            );
            return None;
        }
        Some(Prefix { address, len })
    }

    pub(super) fn url(&mut self, text: &Text, field: &str) -> Option<String> {
        match check_url(text.get_ref()) {
            Ok(()) => Some(text.get_ref().clone()),
            Err(message) => {
                self.error(text.span(), field, message);
                None
            }
        }
    }

    /// A (shorter, longer) pair of durations with defaults; the first must not exceed
    /// the second.
    pub(super) fn lifetimes(
        &mut self,
        short: Option<&Spanned<u32>>,
        long: Option<&Spanned<u32>>,
        defaults: (u32, u32),
        names: (&str, &str),
    ) -> (u32, u32) {
        let a = short.map_or(defaults.0, |s| *s.get_ref());
        let b = long.map_or(defaults.1, |s| *s.get_ref());
        if a > b {
            let span = short.or(long).map_or(0..0, |s| s.span());
            self.error(
                span,
                names.0,
                format!(
                    "{} ({a}) must not be greater than {} ({b})",
                    names.0, names.1
                ),
            );
        }
        (a, b)
    }

    /// `ADDRESS:PORT` values; `example` is shown in the message (`[2001:db8::1]:80`).
    pub(super) fn socket_addresses(
        &mut self,
        texts: &[Text],
        field: &str,
        example: &str,
    ) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (i, l) in texts.iter().enumerate() {
            match l.get_ref().parse::<SocketAddr>() {
                Ok(addr) => out.push(addr),
                Err(_) => self.error(
                    l.span(),
                    &format!("{field}[{i}]"),
                    format!(
                        "`{}` is not ADDRESS:PORT (write IPv6 as {example})",
                        l.get_ref()
                    ),
                ),
            }
        }
        out
    }

    /// Resolves a path from the config relative to the config file's directory.
    pub(super) fn relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(path)
        }
    }
}

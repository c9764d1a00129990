//! `ipxe-config/ipxe.lock`: the one place that pins the firmware sources.
//!
//! A small TOML file with one table per source (`[ipxe]`, and `[flexboot]` for the
//! FlexBoot flavour). Each pin names the upstream URL, the full commit and the
//! commit's date; the date doubles as `SOURCE_DATE_EPOCH`, so a build from the same
//! inputs gives the same bytes.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The lock file, relative to the project root.
pub const LOCK_PATH: &str = "ipxe-config/ipxe.lock";

/// Every pin in the lock file. Tables this code does not know are ignored, so other
/// flavours can add theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Upstream iPXE.
    pub ipxe: Pin,
    /// Mellanox FlexBoot, when the lock file has a `[flexboot]` table.
    pub flexboot: Option<Pin>,
}

/// One pinned source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Where a fresh clone comes from.
    pub url: String,
    /// Full 40-hex-digit commit id, lower case.
    pub commit: String,
    /// The commit's date as RFC 3339 (`2026-08-21T12:07:23+01:00`).
    pub date: String,
    /// `date` as seconds since the Unix epoch.
    pub epoch: i64,
    /// The branch the commit is on; a fresh clone fetches only it (FlexBoot).
    pub branch: Option<String>,
    /// The vendor's release number, also in the banner (FlexBoot's `3.4.812`).
    pub release: Option<String>,
}

impl Pin {
    /// The short form people read in logs and banners (`0ab2277c4`).
    pub fn short(&self) -> &str {
        &self.commit[..9]
    }
}

impl Lock {
    /// The pin in table `table` (`ipxe`, `flexboot`); FlexBoot's must name its branch and
    /// release.
    pub fn pin(&self, table: &str) -> Result<&Pin> {
        match table {
            "ipxe" => Ok(&self.ipxe),
            "flexboot" => {
                let Some(pin) = &self.flexboot else {
                    bail!("no [flexboot] table (it needs url, branch, release, commit and date)");
                };
                if pin.branch.is_none() {
                    bail!("[flexboot] has no `branch`");
                }
                if pin.release.is_none() {
                    bail!("[flexboot] has no `release`");
                }
                Ok(pin)
            }
            other => bail!("no [{other}] table"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawLock {
    ipxe: Option<RawPin>,
    flexboot: Option<RawPin>,
}

#[derive(Debug, Deserialize)]
struct RawPin {
    url: Option<String>,
    commit: Option<String>,
    date: Option<String>,
    branch: Option<String>,
    release: Option<String>,
}

impl Lock {
    /// Reads and validates the lock file at `path`.
    pub fn load(path: &Path) -> Result<Lock> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lock file {}", path.display()))?;
        Lock::parse(&text).with_context(|| format!("bad lock file {}", path.display()))
    }

    /// Parses the text of a lock file; errors name the table and field.
    pub fn parse(text: &str) -> Result<Lock> {
        let raw: RawLock = toml::from_str(text).context("not valid TOML")?;
        let Some(ipxe) = raw.ipxe else {
            bail!("no [ipxe] table (it needs url, commit and date)");
        };
        Ok(Lock {
            ipxe: validate_pin("ipxe", ipxe)?,
            flexboot: raw
                .flexboot
                .map(|pin| validate_pin("flexboot", pin))
                .transpose()?,
        })
    }
}

fn validate_pin(table: &str, raw: RawPin) -> Result<Pin> {
    let field = |value: Option<String>, name: &str| -> Result<String> {
        match value {
            Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
            _ => bail!("[{table}] has no `{name}`"),
        }
    };
    let url = field(raw.url, "url")?;
    let commit = field(raw.commit, "commit")?.to_ascii_lowercase();
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("[{table}] commit `{commit}` is not a full 40-hex-digit git commit id");
    }
    let date = field(raw.date, "date")?;
    let epoch = parse_rfc3339(&date).with_context(|| {
        format!("[{table}] date `{date}` is not an RFC 3339 date like 2026-08-21T12:07:23+01:00")
    })?;
    let optional = |value: Option<String>| {
        value
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    Ok(Pin {
        url,
        commit,
        date,
        epoch,
        branch: optional(raw.branch),
        release: optional(raw.release),
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS(Z|±HH:MM)` into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        bail!("expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset");
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64> {
        let part = text.get(range.clone()).context("truncated")?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            bail!("`{part}` is not a number");
        }
        Ok(part.parse()?)
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        bail!("date or time out of range");
    }
    if second > 60 {
        bail!("seconds out of range");
    }
    let offset = match &text[19..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (number(20..22)? * 3600 + number(23..25)? * 60)
        }
        zone => bail!("unknown time zone `{zone}`"),
    };
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[ipxe]
url = "https://github.com/ipxe/ipxe.git"
commit = "0ab2277c40f1de56c736b9e7db7ee23d52509ec5"
date = "2026-08-21T12:07:23+01:00"
"#;

    #[test]
    fn parses_the_pinned_ipxe_commit_and_its_epoch() {
        let lock = Lock::parse(GOOD).unwrap();
        assert_eq!(lock.ipxe.commit, "0ab2277c40f1de56c736b9e7db7ee23d52509ec5");
        assert_eq!(lock.ipxe.url, "https://github.com/ipxe/ipxe.git");
        // `git log -1 --format=%ct 0ab2277c4` in the iPXE repository.
        assert_eq!(lock.ipxe.epoch, 1_787_310_443);
        assert_eq!(lock.ipxe.short(), "0ab2277c4");
        assert!(lock.flexboot.is_none());
    }

    #[test]
    fn the_committed_lock_file_is_valid() {
        let path = crate::project_root().join(LOCK_PATH);
        let lock = Lock::load(&path).unwrap();
        assert_eq!(lock.ipxe.commit.len(), 40);
    }

    #[test]
    fn keeps_a_flexboot_pin_and_ignores_unknown_tables() {
        let text = format!(
            "{GOOD}\n[flexboot]\nurl = \"u\"\ncommit = \"{}\"\ndate = \"2020-01-01T00:00:00Z\"\n[other]\nx = 1\n",
            "a188cf47".repeat(5)
        );
        let lock = Lock::parse(&text).unwrap();
        assert_eq!(lock.flexboot.unwrap().epoch, 1_577_836_800);
    }

    #[test]
    fn the_flexboot_pin_needs_branch_and_release() {
        let flexboot = "[flexboot]\nurl = \"u\"\nbranch = \"flexboot\"\nrelease = \"3.4.812\"\ncommit = \"A188CF47F524DCE18A8F5D5413E3FE97993E6737\"\ndate = \"2016-07-05T14:39:15+03:00\"\n";
        let lock = Lock::parse(&format!("{GOOD}\n{flexboot}")).unwrap();
        let pin = lock.pin("flexboot").unwrap();
        assert_eq!(pin.commit, "a188cf47f524dce18a8f5d5413e3fe97993e6737");
        assert_eq!(pin.release.as_deref(), Some("3.4.812"));
        assert_eq!(pin.branch.as_deref(), Some("flexboot"));
        // `git log -1 --format=%ct a188cf47` in the FlexBoot repository.
        assert_eq!(pin.epoch, 1_467_718_755);
        let err = Lock::parse(GOOD).unwrap().pin("flexboot").unwrap_err();
        assert!(err.to_string().contains("no [flexboot] table"), "{err}");
        let no_release = flexboot.replace("release = \"3.4.812\"\n", "");
        let lock = Lock::parse(&format!("{GOOD}\n{no_release}")).unwrap();
        let err = lock.pin("flexboot").unwrap_err();
        assert!(
            err.to_string().contains("[flexboot] has no `release`"),
            "{err}"
        );
    }

    #[test]
    fn the_committed_lock_file_pins_flexboot() {
        let lock = Lock::load(&crate::project_root().join(LOCK_PATH)).unwrap();
        let pin = lock.pin("flexboot").unwrap();
        assert_eq!(pin.commit, "a188cf47f524dce18a8f5d5413e3fe97993e6737");
        assert_eq!(pin.release.as_deref(), Some("3.4.812"));
    }

    #[test]
    fn rejects_a_short_commit_naming_the_table() {
        let text = GOOD.replace("0ab2277c40f1de56c736b9e7db7ee23d52509ec5", "0ab2277c4");
        let err = format!("{:#}", Lock::parse(&text).unwrap_err());
        assert!(err.contains("[ipxe] commit `0ab2277c4`"), "{err}");
    }

    #[test]
    fn rejects_a_missing_date_and_a_missing_table() {
        let text = GOOD.replace("date = \"2026-08-21T12:07:23+01:00\"", "");
        let err = format!("{:#}", Lock::parse(&text).unwrap_err());
        assert!(err.contains("[ipxe] has no `date`"), "{err}");
        let err = format!("{:#}", Lock::parse("[flexboot]\n").unwrap_err());
        assert!(err.contains("no [ipxe] table"), "{err}");
    }

    #[test]
    fn parses_utc_and_negative_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00-01:00").unwrap(), 3600);
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z").unwrap(), 951_868_800);
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}

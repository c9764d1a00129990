//! A host's boots as a timeline: its boot events grouped per boot, each with the time
//! since the previous stage, for `GET /api/v1/hosts/{mac}/boots`, the status page and
//! `sixboot hosts show`; and which of a script's downloads are the kernel and initrd.
//!
//! Pure: events in, views out; the script is bytes.

use serde::Serialize;

use super::model::{BootEvent, Stage, UnixMillis};
use crate::script::ipxe;

/// One stage of a boot as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub stage: Stage,
    /// ms since the epoch.
    pub at: UnixMillis,
    /// The server that saw it.
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// ms since the boot's previous stage (0 for the first).
    pub since_previous_ms: u64,
    /// ms since the boot's first stage.
    pub since_start_ms: u64,
}

/// One boot: its number and its stages in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Boot {
    pub boot: u64,
    /// ms since the epoch of its first stage.
    pub started_at: UnixMillis,
    /// The last stage it reached.
    pub last: Stage,
    /// ms from the first stage to the last.
    pub duration_ms: u64,
    pub steps: Vec<Step>,
}

/// Groups events (any order) into boots, oldest boot first, each boot's stages in time
/// order (ties in the order given, which is the order they were recorded).
pub fn boots(events: &[BootEvent]) -> Vec<Boot> {
    let mut sorted: Vec<&BootEvent> = events.iter().collect();
    sorted.sort_by_key(|e| (e.boot, e.at));
    let mut result: Vec<Boot> = Vec::new();
    for event in sorted {
        let boot = match result.last_mut() {
            Some(boot) if boot.boot == event.boot => boot,
            _ => {
                result.push(Boot {
                    boot: event.boot,
                    started_at: event.at,
                    last: event.stage,
                    duration_ms: 0,
                    steps: Vec::new(),
                });
                result.last_mut().expect("just pushed")
            }
        };
        let previous = boot.steps.last().map_or(event.at, |s| s.at);
        boot.steps.push(Step {
            stage: event.stage,
            at: event.at,
            server: event.server.clone(),
            peer: event.peer,
            detail: event.detail.clone(),
            since_previous_ms: event.at.saturating_sub(previous),
            since_start_ms: event.at.saturating_sub(boot.started_at),
        });
        boot.last = event.stage;
        boot.duration_ms = event.at.saturating_sub(boot.started_at);
    }
    result
}

/// A host's timeline as the API, `hosts show` and the status page give it: the host,
/// what needs attention, and its last boots (oldest first).
#[derive(Debug, Clone, Serialize)]
pub struct HostTimeline {
    pub mac: crate::mac::Mac,
    pub name: String,
    pub install: bool,
    pub stage: Stage,
    /// ms since the epoch of the last stage (0: never seen).
    pub stage_at: UnixMillis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Since when (ms) its install runs without `/done`, if longer than allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck_since: Option<UnixMillis>,
    /// The two script fetches (ms) that look like a boot loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looping: Option<(UnixMillis, UnixMillis)>,
    pub boots: Vec<Boot>,
}

impl HostTimeline {
    /// The timeline of `host` from its `events`, judged at `now`.
    pub fn of(
        host: &super::model::Host,
        events: &[BootEvent],
        now: UnixMillis,
        watch: &super::progress::Watch,
    ) -> HostTimeline {
        let attention = super::progress::attention(&host.state, now, watch);
        HostTimeline {
            mac: host.spec.mac,
            name: host.spec.name.clone(),
            install: host.state.install,
            stage: host.state.stage,
            stage_at: host.state.stage_at,
            detail: host.state.detail.clone(),
            stuck_since: attention.stuck_since,
            looping: attention.looping,
            boots: boots(events),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) for ms since the epoch; `-` for 0.
pub fn format_utc(ms: UnixMillis) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days (days since 1970-01-01 to a proleptic
    // Gregorian date).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        ms % 1000
    )
}

/// A duration in ms for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub fn format_duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// The file names a script downloads as its kernel (`kernel`, `chain`, `boot`,
/// `imgexec` and their aliases) and as initrds (`initrd`, `module`, `imgfetch`), so
/// that a download can be told apart as the "kernel" or "initrd" stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootImages {
    pub kernels: Vec<String>,
    pub initrds: Vec<String>,
}

impl BootImages {
    /// Reads the image commands of an iPXE script (lines as iPXE's `process_script`
    /// splits them, commands as its `system` does; settings are not expanded, so a
    /// file name written as `${…}` is not recognised).
    pub fn of_script(script: &[u8]) -> BootImages {
        let mut images = BootImages::default();
        for line in ipxe::process_script(script).lines {
            let (_, text) = ipxe::split_label(&line.text);
            for command in ipxe::commands(text) {
                let Some(name) = command.tokens.first() else {
                    continue;
                };
                let list = match *name {
                    b"kernel" | b"chain" | b"boot" | b"imgexec" | b"imgselect" | b"imgload" => {
                        &mut images.kernels
                    }
                    b"initrd" | b"module" | b"imgfetch" => &mut images.initrds,
                    _ => continue,
                };
                let Some(command_table) = crate::script::commands::uri_command(name) else {
                    continue;
                };
                let Some(index) = crate::script::commands::first_positional(
                    &command.tokens,
                    command_table.options,
                ) else {
                    continue;
                };
                if let Some(file) = command.tokens.get(index).and_then(|t| file_name(t)) {
                    list.push(file);
                }
            }
        }
        images
    }

    /// The stage a download of `path` is: [`Stage::Kernel`] or [`Stage::Initrd`] when
    /// its file name is one the script names, else [`Stage::Files`].
    pub fn stage_of(&self, path: &str) -> Stage {
        let Some(name) = file_name(path.as_bytes()) else {
            return Stage::Files;
        };
        if self.kernels.contains(&name) {
            Stage::Kernel
        } else if self.initrds.contains(&name) {
            Stage::Initrd
        } else {
            Stage::Files
        }
    }
}

/// The last path segment of a URL or path, without query or fragment; `None` when
/// empty.
fn file_name(url: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(url);
    let path = text.split(['?', '#']).next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::Mac;

    fn event(boot: u64, stage: Stage, at: UnixMillis) -> BootEvent {
        BootEvent {
            id: format!("{boot}-{at}"),
            mac: Mac([2, 0, 0, 0, 0, 1]),
            boot,
            stage,
            at,
            server: "boot-a".into(),
            peer: None,
            detail: None,
        }
    }

    #[test]
    fn events_group_into_boots_with_the_time_since_the_previous_stage() {
        let events = vec![
            event(2, Stage::Reply, 5_000),
            event(1, Stage::Script, 1_500),
            event(1, Stage::Reply, 1_000),
            event(2, Stage::LocalDisk, 5_250),
        ];
        let boots = boots(&events);
        assert_eq!(boots.len(), 2);
        assert_eq!(boots[0].boot, 1);
        assert_eq!(boots[0].last, Stage::Script);
        assert_eq!(boots[0].duration_ms, 500);
        let steps: Vec<(Stage, u64, u64)> = boots[0]
            .steps
            .iter()
            .map(|s| (s.stage, s.since_previous_ms, s.since_start_ms))
            .collect();
        assert_eq!(steps, vec![(Stage::Reply, 0, 0), (Stage::Script, 500, 500)]);
        assert_eq!(boots[1].steps[1].since_previous_ms, 250);
        assert_eq!(boots[1].started_at, 5_000);
    }

    #[test]
    fn times_print_as_utc_dates_and_durations_for_people() {
        assert_eq!(format_utc(0), "-");
        assert_eq!(format_utc(1), "1970-01-01 00:00:00.001");
        // 2026-11-29 18:51:00 UTC.
        assert_eq!(format_utc(1_795_978_260_250), "2026-11-29 18:51:00.250");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00.000");
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(12_340), "12.3 s");
        assert_eq!(format_duration(245_000), "4 min 05 s");
        assert_eq!(format_duration(7_380_000), "2 h 03 min");
    }

    #[test]
    fn a_scripts_kernel_and_initrd_are_recognised_by_file_name() {
        let script = b"#!ipxe\r\n\
            kernel http://[2001:db8::1]/files/vmlinuz initrd=initrd.gz inst.ks=http://x/ks\r\n\
            :retry initrd --name initrd.gz http://[2001:db8::1]/files/initrd.gz || goto retry\n\
            imgfetch http://[2001:db8::1]/files/extra.cpio?v=2\n\
            boot\n";
        let images = BootImages::of_script(script);
        assert_eq!(images.kernels, vec!["vmlinuz".to_owned()]);
        assert_eq!(
            images.initrds,
            vec!["initrd.gz".to_owned(), "extra.cpio".to_owned()]
        );
        assert_eq!(images.stage_of("vmlinuz"), Stage::Kernel);
        assert_eq!(images.stage_of("debian/initrd.gz"), Stage::Initrd);
        assert_eq!(images.stage_of("squashfs.img"), Stage::Files);
        assert_eq!(images.stage_of(""), Stage::Files);
    }
}

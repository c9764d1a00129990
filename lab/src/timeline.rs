//! Boot stages and when each was first seen: the lab's pure core.
//!
//! A [`Stage`] is a named piece of text expected in one source (the serial console or a
//! server's log); a [`Timeline`] records the first time each stage's text was seen, given
//! times from outside (time since power-on). [`LineBuffer`] turns raw bytes arriving in
//! chunks into lines, stripping the ANSI escapes SeaBIOS and iPXE print, and also offers
//! the unfinished last line, so that a stage such as iPXE's `Configuring (net0 …)` is seen
//! when it is printed, not seconds later when its line ends with `ok`.

use std::time::Duration;

/// Where a stage's text appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The VM's serial console (SeaBIOS/OVMF, iPXE, Linux, `/init`).
    Console,
    /// A boot server's log (DHCPv6, RA, HTTP).
    Server,
}

/// One stage of a boot: `parts` must all appear, in this order, in one line of `source`.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: &'static str,
    pub source: Source,
    pub parts: Vec<String>,
    /// Other lines that show the same stage, each its own parts (see [`Stage::or`]).
    pub alternatives: Vec<Vec<String>>,
    /// Whether [`Timeline::check`] holds this stage to its place in the order. Periodic
    /// events (an unsolicited RA) may come at any time.
    pub ordered: bool,
}

impl Stage {
    /// A stage seen on the console.
    pub fn console(name: &'static str, parts: &[&str]) -> Stage {
        Stage::new(name, Source::Console, parts)
    }

    /// A stage seen in the server's log.
    pub fn server(name: &'static str, parts: &[&str]) -> Stage {
        Stage::new(name, Source::Server, parts)
    }

    fn new(name: &'static str, source: Source, parts: &[&str]) -> Stage {
        Stage {
            name,
            source,
            parts: parts.iter().map(|part| part.to_string()).collect(),
            alternatives: Vec::new(),
            ordered: true,
        }
    }

    /// The same stage, exempt from the order check.
    /// The stage is also shown by a line holding every one of `parts`, in order.
    pub fn or(mut self, parts: &[&str]) -> Stage {
        self.alternatives
            .push(parts.iter().map(|part| part.to_string()).collect());
        self
    }

    pub fn unordered(mut self) -> Stage {
        self.ordered = false;
        self
    }

    /// Whether `line` holds every part, in order (of the stage's parts or of one of
    /// its alternatives).
    pub fn matches(&self, line: &str) -> bool {
        std::iter::once(&self.parts)
            .chain(&self.alternatives)
            .any(|parts| holds_in_order(line, parts))
    }
}

/// Whether `line` holds every one of `parts`, in order.
fn holds_in_order(line: &str, parts: &[String]) -> bool {
    let mut rest = line;
    for part in parts {
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// When a stage was first seen, and the line that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at: Duration,
    /// The whole line, once it ended ([`Timeline::complete`]); until then what of it had
    /// arrived.
    pub line: String,
    /// Whether `line` is still only the start of its line.
    pub partial: bool,
}

/// The expected stages of one boot, in the order they must happen, and what was seen.
#[derive(Debug, Clone)]
pub struct Timeline {
    stages: Vec<(Stage, Option<Seen>)>,
}

impl Timeline {
    pub fn new(stages: Vec<Stage>) -> Timeline {
        Timeline {
            stages: stages.into_iter().map(|stage| (stage, None)).collect(),
        }
    }

    /// Feeds one whole line; returns the names of stages it showed first.
    pub fn observe(&mut self, source: Source, at: Duration, line: &str) -> Vec<&'static str> {
        self.record(source, at, line, false)
    }

    /// Feeds the start of a line still being written (a stage counts from when its text
    /// was visible); returns the names of stages it showed first.
    pub fn observe_partial(
        &mut self,
        source: Source,
        at: Duration,
        line: &str,
    ) -> Vec<&'static str> {
        self.record(source, at, line, true)
    }

    fn record(
        &mut self,
        source: Source,
        at: Duration,
        line: &str,
        partial: bool,
    ) -> Vec<&'static str> {
        let mut new = Vec::new();
        for (stage, seen) in &mut self.stages {
            if seen.is_none() && stage.source == source && stage.matches(line) {
                *seen = Some(Seen {
                    at,
                    line: line.to_string(),
                    partial,
                });
                new.push(stage.name);
            }
        }
        new
    }

    /// `line` from `source` has ended: stages first seen in its start
    /// ([`Timeline::observe_partial`]) now hold the whole line; their time stays.
    pub fn complete(&mut self, source: Source, line: &str) {
        for (stage, seen) in &mut self.stages {
            if let Some(seen) = seen.as_mut().filter(|seen| seen.partial) {
                if stage.source == source && line.starts_with(&seen.line) {
                    seen.line = line.to_string();
                    seen.partial = false;
                }
            }
        }
    }

    /// When stage `name` was seen, if it was.
    pub fn seen(&self, name: &str) -> Option<&Seen> {
        self.stages
            .iter()
            .find(|(stage, _)| stage.name == name)
            .and_then(|(_, seen)| seen.as_ref())
    }

    /// Every stage with what was seen, in the expected order.
    pub fn rows(&self) -> impl Iterator<Item = (&Stage, Option<&Seen>)> {
        self.stages
            .iter()
            .map(|(stage, seen)| (stage, seen.as_ref()))
    }

    /// The stages not seen yet.
    pub fn missing(&self) -> Vec<&'static str> {
        self.stages
            .iter()
            .filter(|(_, seen)| seen.is_none())
            .map(|(stage, _)| stage.name)
            .collect()
    }

    /// Checks that every stage was seen, and no stage before one listed earlier.
    ///
    /// Server-log lines are seen a poll interval after they are written, so a server
    /// stage may trail the console stage after it by up to `slack`.
    pub fn check(&self, slack: Duration) -> Result<(), String> {
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(format!("stages never seen: {}", missing.join(", ")));
        }
        let mut latest: Option<(&str, Duration)> = None;
        for (stage, seen) in self.stages.iter().filter(|(stage, _)| stage.ordered) {
            let at = seen.as_ref().map(|seen| seen.at).unwrap_or_default();
            if let Some((before, before_at)) = latest {
                if at + slack < before_at {
                    return Err(format!(
                        "stage {} ({:.3} s) came before {before} ({:.3} s)",
                        stage.name,
                        at.as_secs_f64(),
                        before_at.as_secs_f64()
                    ));
                }
            }
            if latest.map_or(true, |(_, before_at)| at > before_at) {
                latest = Some((stage.name, at));
            }
        }
        Ok(())
    }

    /// The time from stage `from` to stage `to`, when both were seen.
    pub fn between(&self, from: &str, to: &str) -> Option<Duration> {
        let from = self.seen(from)?.at;
        let to = self.seen(to)?.at;
        to.checked_sub(from)
    }
}

/// A table of the stages: name, time since power-on, the line that showed it.
pub fn format_table(timeline: &Timeline) -> String {
    let mut out = String::new();
    for (stage, seen) in timeline.rows() {
        let (at, line) = match seen {
            Some(seen) => (
                format!("{:8.3} s", seen.at.as_secs_f64()),
                seen.line.as_str(),
            ),
            None => ("    never ".to_string(), ""),
        };
        let line: String = line.chars().take(90).collect();
        out.push_str(&format!("  {:<18} {at}  {line}\n", stage.name));
    }
    out
}

/// Splits a byte stream into lines, remembering when each line's first byte arrived.
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    partial_since: Option<Duration>,
}

impl LineBuffer {
    /// Adds bytes that arrived at `at`; returns the lines they completed, each with the
    /// time its first byte arrived.
    pub fn push(&mut self, at: Duration, bytes: &[u8]) -> Vec<(Duration, String)> {
        let mut lines = Vec::new();
        for &byte in bytes {
            if self.partial_since.is_none() {
                self.partial_since = Some(at);
            }
            if byte == b'\n' {
                let since = self.partial_since.take().unwrap_or(at);
                lines.push((since, clean(&self.partial)));
                self.partial.clear();
            } else {
                self.partial.push(byte);
            }
        }
        lines
    }

    /// The unfinished last line, cleaned, and when it began.
    pub fn partial(&self) -> Option<(Duration, String)> {
        let since = self.partial_since?;
        Some((since, clean(&self.partial)))
    }
}

/// Drops carriage returns, ANSI escape sequences and other control bytes.
pub fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            match chars.peek() {
                // CSI: ESC [ parameters final-byte
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // Two-byte escapes such as ESC c (reset).
                Some(_) => {
                    chars.next();
                }
                None => {}
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_stage_seen_in_an_unfinished_line_gets_the_whole_line_and_keeps_its_time() {
        let mut timeline = Timeline::new(vec![
            Stage::console("up", &["SIXBOOT-E2E-UP"]),
            Stage::console("ks", &["SIXBOOT-E2E-KS"]),
        ]);
        let start = "SIXBOOT-E2E-UP mac=52:54:00:5b:00:01";
        assert_eq!(
            timeline.observe_partial(Source::Console, ms(10), start),
            ["up"]
        );
        // Another source's line, or one that does not continue it, changes nothing.
        timeline.complete(Source::Server, &format!("{start} addr=2001:db8::10"));
        timeline.complete(Source::Console, "something else");
        assert_eq!(timeline.seen("up").unwrap().line, start);
        timeline.complete(Source::Console, &format!("{start} addr=2001:db8::10"));
        let up = timeline.seen("up").unwrap();
        assert_eq!(up.line, format!("{start} addr=2001:db8::10"));
        assert_eq!(up.at, ms(10));
        assert!(!up.partial);
        // A whole line seen as such is never replaced by a later one.
        timeline.observe(Source::Console, ms(20), "SIXBOOT-E2E-KS bytes=58");
        timeline.complete(Source::Console, "SIXBOOT-E2E-KS bytes=58 again");
        assert_eq!(timeline.seen("ks").unwrap().line, "SIXBOOT-E2E-KS bytes=58");
    }

    #[test]
    fn stage_matches_parts_in_order_within_one_line() {
        let stage = Stage::console("configured", &["Configuring (net0", " ok"]);
        assert!(stage.matches("Configuring (net0 52:54:00:5b:00:01)...... ok"));
        assert!(!stage.matches("Configuring (net0 52:54:00:5b:00:01)......"));
        assert!(!stage.matches("ok Configuring (net0"));
        let ra = Stage::server("srv:ra", &["RS answered"]).or(&["RA sent", "periodic"]);
        assert!(ra.matches("DEBUG sixboot::server::ra: RS answered interface=br0"));
        assert!(ra.matches("DEBUG sixboot::server::ra: RA sent interface=br0 kind=\"periodic\""));
        assert!(!ra.matches("DEBUG sixboot::server::ra: RA send failed kind=periodic"));
    }

    #[test]
    fn timeline_keeps_the_first_time_each_stage_is_seen() {
        let mut timeline = Timeline::new(vec![
            Stage::console("configuring", &["Configuring (net0"]),
            Stage::server("dhcpv6", &["DHCPREPLY"]),
        ]);
        assert_eq!(
            timeline.observe(Source::Console, ms(100), "Configuring (net0 x)..."),
            vec!["configuring"]
        );
        assert!(timeline
            .observe(Source::Console, ms(900), "Configuring (net0 x)... ok")
            .is_empty());
        // The same text in the wrong source does not count.
        assert!(timeline
            .observe(Source::Console, ms(950), "DHCPREPLY")
            .is_empty());
        assert_eq!(timeline.seen("configuring").unwrap().at, ms(100));
        assert_eq!(timeline.missing(), vec!["dhcpv6"]);
        assert!(timeline.check(ms(0)).unwrap_err().contains("dhcpv6"));
        timeline.observe(Source::Server, ms(1000), "DHCPREPLY(br) 2001:db8::10");
        assert_eq!(timeline.check(ms(0)), Ok(()));
        assert_eq!(timeline.between("configuring", "dhcpv6"), Some(ms(900)));
    }

    #[test]
    fn timeline_rejects_stages_out_of_order_beyond_the_slack() {
        let mut timeline = Timeline::new(vec![
            Stage::console("a", &["A"]),
            Stage::console("b", &["B"]),
        ]);
        timeline.observe(Source::Console, ms(500), "B");
        timeline.observe(Source::Console, ms(700), "A");
        let err = timeline.check(ms(100)).unwrap_err();
        assert!(
            err.contains("stage b (0.500 s) came before a (0.700 s)"),
            "{err}"
        );
        assert_eq!(timeline.check(ms(300)), Ok(()));
    }

    #[test]
    fn line_buffer_times_lines_by_their_first_byte_and_offers_the_partial_line() {
        let mut buffer = LineBuffer::default();
        assert!(buffer.push(ms(10), b"Configuring (net0").is_empty());
        assert_eq!(
            buffer.partial(),
            Some((ms(10), "Configuring (net0".to_string()))
        );
        let lines = buffer.push(ms(2000), b" x)... ok\r\nnet0: 2001:db8::10/64\nFile");
        assert_eq!(
            lines,
            vec![
                (ms(10), "Configuring (net0 x)... ok".to_string()),
                (ms(2000), "net0: 2001:db8::10/64".to_string()),
            ]
        );
        assert_eq!(buffer.partial(), Some((ms(2000), "File".to_string())));
    }

    #[test]
    fn clean_strips_ansi_escapes_and_control_bytes() {
        assert_eq!(
            clean(b"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16)\r"),
            "SeaBIOS (version 1.16)"
        );
        assert_eq!(clean(b"\x1b[0;1miPXE 1.0\x1b[0m -- x"), "iPXE 1.0 -- x");
    }
}

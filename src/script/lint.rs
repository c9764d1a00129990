//! The lint: reads a script in the order iPXE does and reports each rule of
//! [`super::rules`] that applies, with its line.
//!
//! 1. `script_probe`: is it a script at all (magic, BOM, blank lines, `#!gpxe`)?
//! 2. `process_script`: lines, CR stripping, backslash continuations.
//! 3. `system`/`execv`: each line's commands (`||`, `&&`, `;`, `#` comments), each token
//!    expanded as `expand_settings` will (values the script itself `set`s earlier, in file
//!    order and unconditionally, are known; anything else is unknown and the part of a URL
//!    that holds it is not judged), command names, `goto` labels.
//! 4. Every argument iPXE hands to `parse_uri` (`chain`, `kernel`, `initrd`, `imgfetch`,
//!    `sanboot`, …), and every image command line (installer rules, [`super::kernel`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use super::commands::{self, UriArgs};
use super::ipxe::{self, Condition, Probe, UNKNOWN};
use super::kernel;
use super::rules::{self, Authority, Rule, Severity};
use super::uri::{self, show};

/// One thing wrong with a script, at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintProblem {
    /// The physical line it starts on (the first line of a continued command).
    pub line: usize,
    /// The rule, with its stable name and severity.
    pub rule: &'static Rule,
    /// `rule.severity`, here for convenience.
    pub severity: Severity,
    /// What iPXE (or the installer) will do, and what to write instead.
    pub message: String,
}

impl LintProblem {
    fn new(line: usize, rule: &'static Rule, message: impl Into<String>) -> LintProblem {
        LintProblem {
            line,
            rule,
            severity: rule.severity,
            message: message.into(),
        }
    }

    /// Whether this problem breaks the boot.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for LintProblem {
    /// `line 3: error[uri-unbracketed-ipv6]: …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}[{}]: {}",
            self.line, self.severity, self.rule.name, self.message
        )
    }
}

/// Whether any of `problems` is an error.
pub fn has_errors(problems: &[LintProblem]) -> bool {
    problems.iter().any(LintProblem::is_error)
}

/// Only the errors of `problems`.
pub fn errors(problems: &[LintProblem]) -> Vec<LintProblem> {
    problems.iter().filter(|p| p.is_error()).cloned().collect()
}

/// Checks an iPXE script as iPXE reads it. Returns every problem, errors and warnings,
/// sorted by line; no errors means iPXE runs it as a script and reads every URL it can
/// see as written. Never panics; any bytes are accepted (iPXE does not care about UTF-8).
pub fn lint(bytes: &[u8]) -> Vec<LintProblem> {
    let mut problems = Vec::new();
    let probe = probe(bytes, &mut problems);
    let lines = ipxe::process_script(bytes);
    line_structure(bytes, &lines, &mut problems);
    let labels: HashSet<&[u8]> = lines
        .lines
        .iter()
        .filter_map(|line| ipxe::split_label(&line.text).0)
        .collect();
    let mut state = State {
        settings: HashMap::new(),
        image_names: HashSet::new(),
        check_commands: probe != ProbeVerdict::NotAScript,
    };
    for (i, line) in lines.lines.iter().enumerate() {
        if i == 0 && probe != ProbeVerdict::Script {
            // The broken magic line: once fixed, it is a comment.
            continue;
        }
        let (_, command_text) = ipxe::split_label(&line.text);
        for command in ipxe::commands(command_text) {
            state.command(line.first, &command, &labels, &mut problems);
        }
    }
    problems.sort_by(|a, b| a.line.cmp(&b.line).then(b.severity.cmp(&a.severity)));
    problems.dedup();
    problems
}

/// Checks only the URLs in a text an installer reads (a kickstart, a preseed): every
/// IPv6 literal in brackets (installer authority).
pub fn lint_urls(text: &str) -> Vec<LintProblem> {
    let mut problems = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        for url in uri::urls_in(line.as_bytes()) {
            if let Some(message) = uri::check_installer_url(url) {
                problems.push(LintProblem::new(i + 1, &rules::INSTALLER_URL_IPV6, message));
            }
        }
    }
    problems
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeVerdict {
    Script,
    /// Rejected, but it was meant to be a script (`#!` is there, after a BOM or blank
    /// lines, or misspelled).
    BrokenMagic,
    /// Nothing like a script: its lines are not checked as commands.
    NotAScript,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Step 1, `script_probe`, with a message that names what is in the way.
fn probe(bytes: &[u8], problems: &mut Vec<LintProblem>) -> ProbeVerdict {
    let first_line = |b: &[u8]| {
        let line = b.split(|c| *c == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        show(&line[..line.len().min(40)])
    };
    match ipxe::script_probe(bytes) {
        Probe::Ipxe => return ProbeVerdict::Script,
        Probe::Gpxe => {
            problems.push(LintProblem::new(
                1,
                &rules::MAGIC_GPXE,
                "`#!gpxe` is the old name of the magic; iPXE still runs it (script_probe), but write `#!ipxe`",
            ));
            return ProbeVerdict::Script;
        }
        Probe::TooShort | Probe::BadMagic => {}
    }
    let is_magic = |b: &[u8]| b.starts_with(ipxe::IPXE_MAGIC) || b.starts_with(ipxe::GPXE_MAGIC);
    if let Some(rest) = bytes.strip_prefix(BOM) {
        problems.push(LintProblem::new(
            1,
            &rules::MAGIC_BOM,
            "the script starts with a UTF-8 byte-order mark (EF BB BF), so `#!ipxe` is not its first six bytes and iPXE does not run it as a script (script_probe: \"Exec format error\"); save it as UTF-8 without BOM",
        ));
        return if rest.starts_with(b"#!") {
            ProbeVerdict::BrokenMagic
        } else {
            ProbeVerdict::NotAScript
        };
    }
    let leading = bytes.iter().take_while(|b| ipxe::is_space(**b)).count();
    if leading > 0 && bytes[leading..].starts_with(b"#!") {
        let line = bytes[..leading].iter().filter(|b| **b == b'\n').count() + 1;
        let what = if line > 1 {
            format!(
                "{} blank line{} before the `#!` line (found on line {line})",
                line - 1,
                if line == 2 { "" } else { "s" }
            )
        } else {
            "white space before `#!`".to_owned()
        };
        problems.push(LintProblem::new(
            1,
            &rules::MAGIC_BLANK_LINE,
            format!("{what}: iPXE needs `#!ipxe` as the very first bytes (script_probe) and does not run it as a script; delete what comes before it"),
        ));
        return ProbeVerdict::BrokenMagic;
    }
    if is_magic(bytes) {
        let message = match bytes.get(ipxe::IPXE_MAGIC.len()) {
            None => "the script is only `#!ipxe`: script_probe needs a white-space byte (a newline) after the magic, so iPXE does not run it as a script; end the line with a newline".to_owned(),
            Some(_) => format!(
                "the first line is `{}`: script_probe needs white space right after `{}`, so iPXE does not run it as a script",
                first_line(bytes),
                show(&bytes[..ipxe::IPXE_MAGIC.len()])
            ),
        };
        problems.push(LintProblem::new(1, &rules::MAGIC_NO_SPACE, message));
        return ProbeVerdict::BrokenMagic;
    }
    if bytes.starts_with(b"#!") {
        problems.push(LintProblem::new(
            1,
            &rules::MAGIC_WRONG,
            format!(
                "the first line is `{}`; iPXE runs a script only if it starts with `#!ipxe` (script_probe: \"Exec format error\"); write `#!ipxe`",
                first_line(bytes)
            ),
        ));
        return ProbeVerdict::BrokenMagic;
    }
    let message = if bytes.is_empty() {
        "the script is empty; its first line must be `#!ipxe`".to_owned()
    } else {
        format!(
            "the first line is `{}`; iPXE runs a script only if it starts with `#!ipxe` (script_probe: \"Exec format error\"); add `#!ipxe` as line 1",
            first_line(bytes)
        )
    };
    problems.push(LintProblem::new(1, &rules::MAGIC_MISSING, message));
    ProbeVerdict::NotAScript
}

/// Step 2: what `process_script` does with line ends.
fn line_structure(bytes: &[u8], lines: &ipxe::ScriptLines, problems: &mut Vec<LintProblem>) {
    let crlf: Vec<usize> = lines
        .lines
        .iter()
        .filter(|l| l.crlf)
        .map(|l| l.first)
        .collect();
    if let Some(&first) = crlf.first() {
        problems.push(LintProblem::new(
            first,
            &rules::LINE_CRLF,
            format!(
                "{} line{} end{} in CR LF (Windows line endings); iPXE strips one CR per line (process_script), so this runs, but convert the file to LF",
                crlf.len(),
                if crlf.len() == 1 { "" } else { "s" },
                if crlf.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    if let Some(line) = lines.unfinished {
        problems.push(LintProblem::new(
            line,
            &rules::CONTINUATION_AT_EOF,
            "the script ends inside a `\\` line continuation: process_script drops this last command and fails the script (\"Invalid argument\"); remove the trailing `\\`",
        ));
    }
    for (i, physical) in bytes.split(|b| *b == b'\n').enumerate() {
        let physical = physical.strip_suffix(b"\r").unwrap_or(physical);
        let trimmed_len = physical
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |p| p + 1);
        if trimmed_len < physical.len() && physical[..trimmed_len].ends_with(b"\\") {
            problems.push(LintProblem::new(
                i + 1,
                &rules::CONTINUATION_SPACE,
                "a `\\` followed by spaces ends this line: only a `\\` as the very last byte continues a line (process_script), so iPXE passes `\\` as an argument and runs the next line on its own; delete the trailing spaces",
            ));
        }
    }
}

/// What the lint knows while walking the script's commands in file order.
struct State {
    /// Settings set unconditionally to a known value by an earlier line.
    settings: HashMap<Vec<u8>, Vec<u8>>,
    /// Names given with `--name`: `chain NAME` then uses that image, not a URI.
    image_names: HashSet<Vec<u8>>,
    check_commands: bool,
}

impl State {
    fn expand<'t>(&self, token: &'t [u8]) -> Cow<'t, [u8]> {
        ipxe::expand_settings(token, |name| {
            // `${name}` or `${name:string}`; a type changes the formatting.
            let (name, kind) = match memchr::memrchr(b':', name) {
                Some(colon) => (&name[..colon], Some(&name[colon + 1..])),
                None => (name, None),
            };
            if kind.is_some_and(|k| k != b"string") {
                return None;
            }
            self.settings.get(name).cloned()
        })
        .unwrap_or(Cow::Borrowed(&[UNKNOWN]))
    }

    fn command(
        &mut self,
        line: usize,
        command: &ipxe::Command<'_>,
        labels: &HashSet<&[u8]>,
        problems: &mut Vec<LintProblem>,
    ) {
        let argv: Vec<Cow<'_, [u8]>> = command.tokens.iter().map(|t| self.expand(t)).collect();
        let Some(name) = argv.first() else {
            return;
        };
        if name.contains(&UNKNOWN) {
            return;
        }
        let name: &[u8] = name;
        if self.check_commands && !commands::is_command(name) {
            problems.push(LintProblem::new(
                line,
                &rules::COMMAND_UNKNOWN,
                format!(
                    "`{}` is not an iPXE command: iPXE says \"{}: command not found\" (execv) and the script stops",
                    show(name),
                    show(name)
                ),
            ));
            return;
        }
        match name {
            b"goto" => {
                if let Some(label) = argv.get(1).filter(|l| !l.contains(&UNKNOWN)) {
                    if !labels.contains(&**label) {
                        problems.push(LintProblem::new(
                            line,
                            &rules::GOTO_NO_LABEL,
                            format!(
                                "`goto {}` but no line is `:{}`: goto_find_label finds nothing, goto fails and the script stops",
                                show(label),
                                show(label)
                            ),
                        ));
                    }
                }
            }
            b"set" => {
                if let Some(setting) = argv.get(1) {
                    let value = argv[2..].join(&b' ');
                    let known = command.condition == Condition::Always
                        && !setting.contains(&UNKNOWN)
                        && !value.contains(&UNKNOWN);
                    if known {
                        self.settings.insert(setting.to_vec(), value);
                    } else {
                        self.settings.remove(&**setting);
                    }
                }
            }
            b"clear" | b"read" | b"inc" | b"choose" => {
                for setting in &argv[1..] {
                    self.settings.remove(&**setting);
                }
            }
            _ => {}
        }
        if let Some(uri_command) = commands::uri_command(name) {
            self.uri_command(line, command, &argv, uri_command, problems);
        }
    }

    fn uri_command(
        &mut self,
        line: usize,
        command: &ipxe::Command<'_>,
        argv: &[Cow<'_, [u8]>],
        uri_command: &commands::UriCommand,
        problems: &mut Vec<LintProblem>,
    ) {
        let Some(first) = commands::first_positional(argv, uri_command.options) else {
            return;
        };
        self.remember_image_name(&argv[..first]);
        let (uris, cmdline) = match uri_command.args {
            UriArgs::FirstThenCommandLine => (
                first..argv.len().min(first + 1),
                argv.get(first + 1..).unwrap_or_default(),
            ),
            UriArgs::All => (first..argv.len(), &[][..]),
        };
        for i in uris {
            if self.image_names.contains(&*argv[i]) {
                continue;
            }
            for found in uri::check_ipxe_uri(command.tokens[i], &argv[i]) {
                problems.push(LintProblem::new(line, found.rule, found.message));
            }
        }
        for found in kernel::check_args(cmdline) {
            problems.push(LintProblem::new(line, found.rule, found.message));
        }
    }

    /// `--name NAME`, `--name=NAME`, `-n NAME` or `-nNAME` among the options.
    fn remember_image_name(&mut self, options: &[Cow<'_, [u8]>]) {
        let mut i = 1;
        while i < options.len() {
            let option: &[u8] = &options[i];
            let name = if option == b"--name" || option == b"-n" {
                i += 1;
                options.get(i).map(|n| n.to_vec())
            } else if let Some(name) = option.strip_prefix(b"--name=") {
                Some(name.to_vec())
            } else if option.starts_with(b"-n") && !option.starts_with(b"--") {
                Some(option[2..].to_vec())
            } else {
                None
            };
            if let Some(name) = name.filter(|n| !n.contains(&UNKNOWN)) {
                self.image_names.insert(name);
            }
            i += 1;
        }
    }
}

/// Only the problems whose authority is iPXE (what the differential test compares).
pub fn ipxe_problems(problems: &[LintProblem]) -> Vec<&LintProblem> {
    problems
        .iter()
        .filter(|p| p.rule.authority == Authority::Ipxe)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(line, rule)` of every problem.
    fn found(script: &[u8]) -> Vec<(usize, &'static str)> {
        lint(script).iter().map(|p| (p.line, p.rule.name)).collect()
    }

    fn only(script: &[u8], line: usize, rule: &str) {
        assert_eq!(found(script), [(line, rule)], "{:?}", lint(script));
    }

    #[test]
    fn a_plain_script_with_bracketed_urls_is_clean() {
        let script = b"#!ipxe\nkernel http://[2001:db8::1]/vmlinuz ip=auto6 inst.ks=http://[2001:db8::1]/ks/x\ninitrd http://[2001:db8::1]/initrd.img\nboot\n";
        assert_eq!(found(script), []);
    }

    #[test]
    fn magic_rules_follow_script_probe() {
        only(b"\xef\xbb\xbf#!ipxe\nboot\n", 1, "magic-bom");
        only(b"\n#!ipxe\nboot\n", 1, "magic-blank-line");
        only(b"  \n\n#!ipxe\nboot\n", 1, "magic-blank-line");
        only(b"#!pxe\nboot\n", 1, "magic-wrong");
        only(b"#!iPXE\nboot\n", 1, "magic-wrong");
        only(b"#! ipxe\nboot\n", 1, "magic-wrong");
        only(b"#!ipxe", 1, "magic-no-space");
        only(b"#!ipxe-x\nboot\n", 1, "magic-no-space");
        only(b"", 1, "magic-missing");
        only(b"kernel http://[::1]/k\n", 1, "magic-missing");
        only(b"#!gpxe\nboot\n", 1, "magic-gpxe");
        assert_eq!(found(b"#!ipxe\tcomment\nboot\n"), []);
        let blank = &lint(b"\n\n#!ipxe\n")[0].message;
        assert!(
            blank.contains("2 blank lines") && blank.contains("line 3"),
            "{blank}"
        );
    }

    #[test]
    fn crlf_is_one_warning_for_the_whole_script() {
        let problems = lint(b"#!ipxe\r\necho a\r\nboot\r\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].rule.name), (1, "line-crlf"));
        assert!(!problems[0].is_error());
        assert!(problems[0].message.starts_with("3 lines end in CR LF"));
    }

    #[test]
    fn continuations_follow_process_script() {
        only(b"#!ipxe\necho a \\", 2, "continuation-at-eof");
        only(
            b"#!ipxe\nkernel http://[::1]/k \\\n",
            2,
            "continuation-at-eof",
        );
        assert_eq!(
            found(b"#!ipxe\nkernel http://[2001:db8::1]/k \\\n  console=ttyS0\nboot\n"),
            []
        );
        only(b"#!ipxe\necho a \\  \necho b\n", 2, "continuation-space");
        // The joined line is checked as one command, reported at its first line.
        only(
            b"#!ipxe\necho \\\nx\nkernel \\\n  http://2001:db8::1/k\n",
            4,
            "uri-unbracketed-ipv6",
        );
    }

    #[test]
    fn unknown_commands_and_labels_are_errors() {
        only(b"#!ipxe\nkernal http://[::1]/k\n", 2, "command-unknown");
        only(b"#!ipxe\ngoto nowhere\n:somewhere\n", 2, "goto-no-label");
        assert_eq!(found(b"#!ipxe\ngoto end\necho x\n:end\n"), []);
        assert_eq!(
            found(b"#!ipxe\n  :end echo label and command\ngoto end\n"),
            []
        );
        // Expanded names and targets are only known to iPXE.
        assert_eq!(found(b"#!ipxe\nchoose t && goto ${t}\n${cmd} x\n"), []);
        // A line after `#` is a comment; `||`, `&&` and `;` separate commands.
        assert_eq!(
            found(b"#!ipxe\necho a # kernal\nisset ${x} || echo b && echo c ; echo d\n"),
            []
        );
        only(b"#!ipxe\necho a ; kernal\n", 2, "command-unknown");
    }

    #[test]
    fn not_a_script_is_not_checked_command_by_command() {
        only(b"this is not a script\nat all\n", 1, "magic-missing");
        assert_eq!(
            found(b"\xef\xbb\xbf#!ipxe\nkernal x\n"),
            [(1, "magic-bom"), (2, "command-unknown")]
        );
    }

    #[test]
    fn uris_are_checked_where_ipxe_parses_them() {
        only(
            b"#!ipxe\nchain http://2001:db8::1/boot.ipxe\n",
            2,
            "uri-unbracketed-ipv6",
        );
        only(
            b"#!ipxe\nchain --autofree --replace http://2001:db8::1/x\n",
            2,
            "uri-unbracketed-ipv6",
        );
        only(
            b"#!ipxe\nimgfetch -n k http://[fe80::1%25eth0]/k\n",
            2,
            "uri-zone-device",
        );
        only(
            b"#!ipxe\nsanhook http://[2001:db8::1]/a http://[2001:db8::2/b\n",
            2,
            "uri-bracket",
        );
        only(
            b"#!ipxe\nimgverify http://[2001:db8::1]/k http://[2001:db8::1]:08/k.sig\n",
            2,
            "uri-port",
        );
        // Not a URI position: echo and item text are left alone.
        assert_eq!(
            found(b"#!ipxe\necho http://2001:db8::1/x\nitem a http://2001:db8::1/\n"),
            []
        );
        // An image named with --name is used by name, not parsed.
        assert_eq!(
            found(b"#!ipxe\nimgfetch --name x:y http://[::1]/k\nchain x:y\n"),
            []
        );
    }

    #[test]
    fn settings_set_earlier_are_expanded() {
        only(
            b"#!ipxe\nset server 2001:db8::1\nchain http://${server}/boot.ipxe\n",
            3,
            "uri-unbracketed-ipv6",
        );
        assert_eq!(
            found(b"#!ipxe\nset base http://[2001:db8::1]\nkernel ${base}/vmlinuz\n"),
            []
        );
        let message = &lint(b"#!ipxe\nset s 2001:db8::1\nchain http://${s}/x\n")[0].message;
        assert!(
            message.contains("(expanded: `http://2001:db8::1/x`)"),
            "{message}"
        );
        // Set only conditionally, or by DHCP: unknown, so not judged.
        assert_eq!(
            found(b"#!ipxe\nisset ${s} || set s 2001:db8::1\nchain http://${s}/x\n"),
            []
        );
        assert_eq!(found(b"#!ipxe\nchain http://${next-server}/x\n"), []);
        assert_eq!(
            found(b"#!ipxe\nset s 2001:db8::1\nclear s\nchain http://${s}/x\n"),
            []
        );
        // A typed expansion formats the value another way: unknown.
        assert_eq!(
            found(b"#!ipxe\nset s 2001:db8::1\nchain http://${s:hex}/x\n"),
            []
        );
        only(
            b"#!ipxe\nset s 2001:db8::1\nchain http://${s:string}/x\n",
            3,
            "uri-unbracketed-ipv6",
        );
        // The rest of the URL is still checked.
        only(b"#!ipxe\nchain http://[${ip}]:080/x\n", 2, "uri-port");
    }

    #[test]
    fn warnings_do_not_make_errors() {
        let problems = lint(b"#!gpxe\r\nchain http://[fe80::1]/x\r\n");
        assert!(!has_errors(&problems), "{problems:?}");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(errors(&problems).is_empty());
    }

    #[test]
    fn kernel_lines_carry_installer_rules() {
        let problems = lint(
            b"#!ipxe\nkernel http://[2001:db8::1]/vmlinuz ip=auto6 inst.ks=http://2001:db8::1/ks\n",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rule.name, "installer-url-ipv6");
        assert_eq!(problems[0].rule.authority, Authority::Installer);
        assert!(ipxe_problems(&problems).is_empty());
        only(
            b"#!ipxe\nimgargs vmlinuz url=2001:db8::1/preseed.cfg\n",
            2,
            "kernel-param-host",
        );
    }

    #[test]
    fn display_names_line_severity_and_rule() {
        let problem = &lint(b"#!ipxe\nchain http://2001:db8::1/x\n")[0];
        assert!(
            problem.to_string().starts_with("line 2: error[uri-unbracketed-ipv6]: `http://2001:db8::1/x` has an IPv6 address without brackets"),
            "{problem}"
        );
    }

    #[test]
    fn kickstart_urls_are_checked_by_installer_rules() {
        let problems =
            lint_urls("url --url=http://2001:db8::1/os\nrepo --baseurl=http://[2001:db8::1]/x\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].line, problems[0].rule.name),
            (1, "installer-url-ipv6")
        );
    }

    #[test]
    fn lint_never_panics_on_odd_bytes() {
        for script in [
            &b"#!ipxe\n\0\xff\xfe${${${\n"[..],
            b"#!ipxe\nchain http://[%\n",
            b"#!ipxe\nchain \x00://\nkernel -n\nkernel --name\nchain --\n",
            b"#!ipxe\n\\\n\\",
            b"\r\r\r",
            b"#!ipxe\nset a ${a}${a}\nchain ${a}://[\n",
        ] {
            let _ = lint(script);
        }
    }

    proptest::proptest! {
        #[test]
        fn lint_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = lint(&bytes);
        }

        #[test]
        fn lint_never_panics_on_script_like_text(body in "[ -~\\t\\r\\n\\\\]{0,300}") {
            let _ = lint(format!("#!ipxe\n{body}").as_bytes());
        }
    }
}

//! Installer kernel command lines in iPXE scripts: the IPv6 mistakes that make an
//! installer fail after iPXE has done its part.
//!
//! iPXE passes everything after the image URL of `kernel`, `chain` and `imgargs` to the
//! kernel untouched, so a kernel line can be perfect for iPXE and still useless for the
//! installer it starts:
//! - An IPv6 literal without brackets in a location option (`inst.ks=`, `inst.repo=`,
//!   `inst.stage2=`, `ks=`, `url=`, `preseed/url=`, `inst.updates=`, `inst.dd=`): the
//!   installer reads `2001:db8::1` as host `2001` and port `db8`. The script lint's URL
//!   rule already catches `http`, `https` and `tftp` URLs on every line; this rule adds
//!   `ftp://`, Anaconda's `nfs:[server]:/path` form and Debian's scheme-less `url=[host]`.
//! - An IPv6 literal without brackets in dracut's `ip=` or `rd.route=`: both are
//!   colon-separated lists, and dracut.cmdline(7) ("Network") requires IPv6 addresses in
//!   brackets, as NetworkManager's nm-initrd-generator (`get_word`) and network-legacy do.
//! - An Anaconda boot (`inst.ks=`, `inst.repo=`, `inst.stage2=`, `ks=`) without an `ip=`
//!   that configures IPv6: Anaconda's boot-options ("ip") says dracut then defaults to
//!   `ip=dhcp`, which is DHCPv4 only (NetworkManager's initrd generator even sets IPv6 to
//!   "disabled" for it), so on an IPv6-only link the kickstart is never fetched.
//!
//! [`lint_script`] finds those lines in a script; [`lint_args`] checks one argument list.
//! Pure: no I/O.

use std::net::Ipv6Addr;

/// How bad a problem is: an `Error` breaks the install for certain, a `Warning` breaks it
/// on an IPv6-only link (or costs a long wait) but may be deliberate elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem on a kernel line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProblem {
    /// 1-based line in the script (0 from [`lint_args`]).
    pub line: usize,
    /// Stable rule name, for `--json` and for silencing: `kernel-unbracketed-ipv6`,
    /// `kernel-dracut-unbracketed-ipv6`, `kernel-anaconda-no-ipv6`.
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
}

/// Options whose value is a location (URL, `nfs:` path, or Debian's bare host).
const LOCATION_OPTIONS: &[&str] = &[
    "inst.ks",
    "inst.repo",
    "inst.stage2",
    "inst.updates",
    "inst.dd",
    "ks",
    "repo",
    "url",
    "preseed/url",
];

/// Schemes whose URLs `crate::script::lint_urls` checks on every line.
const URL_RULE_SCHEMES: &[&str] = &["http", "https", "tftp"];

/// Options that make a kernel line an Anaconda boot (Anaconda's boot-options document).
const ANACONDA_OPTIONS: &[&str] = &["inst.ks", "inst.repo", "inst.stage2", "ks"];

/// dracut's `ip=` autoconf values that configure IPv6 (dracut.cmdline(7), "Network").
const IPV6_AUTOCONF: &[&str] = &["dhcp6", "auto6", "either6"];

/// The kernel lines of an iPXE script: `kernel`, `chain`, `imgexec` and `imgargs`, each
/// with its arguments after the image (options such as `--name x` skipped).
pub fn lint_script(text: &str) -> Vec<KernelProblem> {
    let mut problems = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if let Some(args) = kernel_args(line) {
            problems.extend(lint_args(&args).into_iter().map(|mut p| {
                p.line = i + 1;
                p
            }));
        }
    }
    problems
}

/// The arguments a script line hands to a kernel, or `None` when it is not such a line.
fn kernel_args(line: &str) -> Option<Vec<&str>> {
    let mut words = line.split_whitespace();
    let command = words.next()?;
    if !matches!(command, "kernel" | "chain" | "imgexec" | "imgargs") {
        return None;
    }
    let mut words = words.peekable();
    // iPXE's getopt stops at the first word without a leading '-' (core/getopt.c).
    while let Some(word) = words.peek() {
        if !word.starts_with('-') {
            break;
        }
        let takes_value = matches!(*word, "--name" | "-n" | "--timeout" | "-t");
        words.next();
        if takes_value {
            words.next();
        }
    }
    words.next()?; // the image URL or name
    Some(words.collect())
}

/// Checks one kernel argument list (the words after the image).
pub fn lint_args(args: &[&str]) -> Vec<KernelProblem> {
    let mut problems = Vec::new();
    let mut ip_values = Vec::new();
    let mut is_anaconda = false;
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            continue;
        };
        if ANACONDA_OPTIONS.contains(&key) {
            is_anaconda = true;
        }
        if LOCATION_OPTIONS.contains(&key) {
            if let Some(literal) = unbracketed_location(value) {
                problems.push(problem(
                    "kernel-unbracketed-ipv6",
                    Severity::Error,
                    format!(
                        "`{arg}`: the IPv6 address {literal} needs brackets ([{literal}]); \
                         without them the installer reads the address up to its first `:` \
                         as the host name"
                    ),
                ));
            }
        }
        if key == "ip" || key == "rd.route" {
            if let Some(literal) = unbracketed_field(value) {
                problems.push(problem(
                    "kernel-dracut-unbracketed-ipv6",
                    Severity::Error,
                    format!(
                        "`{arg}`: dracut's {key}= is a `:`-separated list, so the IPv6 \
                         address {literal} must be written [{literal}] (dracut.cmdline(7), \
                         \"Network\")"
                    ),
                ));
            }
        }
        if key == "ip" {
            ip_values.push(value);
        }
    }
    if is_anaconda && !ip_values.iter().any(|v| configures_ipv6(v)) {
        let message = match ip_values.first() {
            Some(value) => format!(
                "Anaconda boot with `ip={value}`, which configures no IPv6: dracut then runs \
                 DHCPv4 only and never fetches the kickstart over IPv6; use ip=auto6 \
                 (NetworkManager in the initrd: Fedora, EL8 and later) or ip=dhcp6 \
                 (network-legacy: EL7)"
            ),
            None => "Anaconda boot without `ip=`: dracut then defaults to ip=dhcp (DHCPv4 \
                     only) and never fetches the kickstart over IPv6; add ip=auto6 \
                     (NetworkManager in the initrd: Fedora, EL8 and later) or ip=dhcp6 \
                     (network-legacy: EL7)"
                .to_owned(),
        };
        problems.push(problem(
            "kernel-anaconda-no-ipv6",
            Severity::Warning,
            message,
        ));
    }
    problems
}

fn problem(rule: &'static str, severity: Severity, message: String) -> KernelProblem {
    KernelProblem {
        line: 0,
        rule,
        severity,
        message,
    }
}

/// The unbracketed IPv6 literal a location names, if any: `ftp://2001:db8::1/os`,
/// `nfs:2001:db8::1:/path`, `nfs:opts:2001:db8::1:/path` or Debian's bare `url=2001:db8::1`.
/// `http`, `https` and `tftp` URLs are left to the script lint's URL rule, which checks
/// them wherever they appear, so that one mistake is reported once.
fn unbracketed_location(value: &str) -> Option<Ipv6Addr> {
    let rest = match value.split_once("://") {
        Some((scheme, _)) if URL_RULE_SCHEMES.contains(&scheme) => return None,
        Some((_, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            return leading_ipv6(host);
        }
        None => value,
    };
    if let Some(nfs) = rest.strip_prefix("nfs:") {
        return unbracketed_field(nfs);
    }
    leading_ipv6(rest)
}

/// The first field of a `:`-separated value that starts with an IPv6 literal out of
/// brackets: at each field start (outside `[…]`), the longest run of fields that parses
/// as an IPv6 address. A MAC address (6 groups) never parses, so it is not mistaken for one.
fn unbracketed_field(value: &str) -> Option<Ipv6Addr> {
    let mut depth = 0usize;
    let mut field_start = true;
    for (i, c) in value.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if field_start && depth == 0 && c != '[' {
            if let Some(addr) = leading_ipv6(&value[i..]) {
                return Some(addr);
            }
        }
        field_start = c == ':' && depth == 0;
    }
    None
}

/// The longest prefix of `text` that parses as an IPv6 address with at least two colons,
/// cut where a field ends: at a `:`, at the end, or before a character that cannot be in
/// an address and does not continue a word (`/48`, `/path`; not the `t` of `64::eth0`).
/// It must start with a hex digit: `::` alone is an empty field between two `:`.
fn leading_ipv6(text: &str) -> Option<Ipv6Addr> {
    if !text.starts_with(|c: char| c.is_ascii_hexdigit()) {
        return None;
    }
    let end = text
        .find(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .unwrap_or(text.len());
    let candidate = &text[..end];
    let mut cuts: Vec<usize> = candidate.match_indices(':').map(|(i, _)| i).collect();
    if !text[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
        cuts.push(candidate.len());
    }
    cuts.iter()
        .rev()
        .filter_map(|&cut| {
            let prefix = &candidate[..cut];
            (prefix.matches(':').count() >= 2)
                .then(|| prefix.parse::<Ipv6Addr>().ok())
                .flatten()
        })
        .next()
}

/// Whether a dracut `ip=` value configures IPv6: `dhcp6`/`auto6`/`either6` alone or as
/// the autoconf field of `<interface>:<autoconf>`, or a static `[address]…` form.
fn configures_ipv6(value: &str) -> bool {
    if value.starts_with('[') {
        return true;
    }
    value.split(':').any(|field| IPV6_AUTOCONF.contains(&field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(line: &str) -> Vec<&'static str> {
        lint_script(line).iter().map(|p| p.rule).collect()
    }

    #[test]
    fn accepts_the_anaconda_line_sixboot_ships() {
        let line = "kernel http://[2001:db8::1]/files/vmlinuz initrd=initrd.img ip=auto6 \
                    BOOTIF=01-52-54-00-12-34-56 inst.ks=http://[2001:db8::1]/ks/52-54-00-12-34-56 \
                    inst.repo=http://[2001:db8::1]/files/repo";
        assert!(lint_script(line).is_empty(), "{:?}", lint_script(line));
    }

    #[test]
    fn accepts_the_debian_installer_line_sixboot_ships() {
        let line = "kernel http://[2001:db8::1]/files/linux initrd=initrd.gz auto=true \
                    priority=critical url=http://[2001:db8::1]/ks/52-54-00-12-34-56 \
                    netcfg/dhcp_timeout=0 preseed/early_command=\"sed -i s/-TERM/-KILL/ /bin/kill-all-dhcp; ln -sf /dev/null /var/run/dhcp6c.pid\"";
        assert!(lint_script(line).is_empty(), "{:?}", lint_script(line));
    }

    #[test]
    fn rejects_unbracketed_literals_in_installer_locations() {
        for arg in [
            "inst.repo=ftp://user@2001:db8::1/os",
            "inst.repo=nfs:2001:db8::1:/srv/os",
            "inst.repo=nfs:nfsvers=4:2001:db8::1:/srv/os",
            "url=2001:db8::1",
            "preseed/url=ftp://2001:db8::1/p.cfg",
        ] {
            let line = format!("kernel http://[2001:db8::1]/k ip=auto6 {arg}");
            assert_eq!(rules(&line), ["kernel-unbracketed-ipv6"], "{arg}");
        }
        for arg in [
            "inst.repo=nfs:[2001:db8::1]:/srv/os",
            "url=[2001:db8::1]",
            "url=mirror.example",
            "inst.ks=hd:sdb1:/ks.cfg",
            "inst.repo=cdrom",
            // The script lint's URL rule reports these, once.
            "inst.ks=http://2001:db8::1/ks",
            "inst.stage2=https://2001:db8::1:8443/os",
        ] {
            let line = format!("kernel http://[2001:db8::1]/k ip=auto6 {arg}");
            assert!(rules(&line).is_empty(), "{arg}: {:?}", lint_script(&line));
        }
    }

    #[test]
    fn rejects_unbracketed_literals_in_dracut_ip_and_route() {
        let problems = lint_args(&["ip=2001:db8::10::2001:db8::1:64::eth0:none"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].message.contains("[2001:db8::10]"),
            "{problems:?}"
        );
        // Which is the very ambiguity: `2001:db8::1:64` is an address too.
        let gateway = lint_args(&["ip=[2001:db8::10]::2001:db8::1:64::eth0:none"]);
        assert!(
            gateway[0].message.contains("[2001:db8::1:64]"),
            "{gateway:?}"
        );
        assert_eq!(
            lint_args(&["rd.route=2001:db8:3::/48:[2001:db8::1]"])[0].rule,
            "kernel-dracut-unbracketed-ipv6"
        );
        for fine in [
            "ip=[2001:db8::10]::[2001:db8::1]:64:node1:eth0:none",
            "ip=eth0:dhcp6::52:54:00:12:34:56",
            "ip=eth0:auto6:9000",
            "ip=192.0.2.10::192.0.2.1:255.255.255.0:cafe:eth0:none",
            "rd.route=[2001:db8:3::/48]:[2001:db8::1]:eth0",
        ] {
            assert!(
                lint_args(&[fine]).is_empty(),
                "{fine}: {:?}",
                lint_args(&[fine])
            );
        }
    }

    #[test]
    fn warns_about_an_anaconda_line_that_configures_no_ipv6() {
        let missing = lint_args(&["inst.ks=http://[2001:db8::1]/ks"]);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].severity, Severity::Warning);
        assert!(missing[0].message.contains("ip=auto6"), "{missing:?}");
        let dhcp = lint_args(&["ip=dhcp", "inst.repo=http://[2001:db8::1]/os"]);
        assert!(dhcp[0].message.contains("`ip=dhcp`"), "{dhcp:?}");
        for ip in [
            "ip=dhcp6",
            "ip=auto6",
            "ip=either6",
            "ip=eth0:dhcp6",
            "ip=[2001:db8::10]:::64::eth0:none",
        ] {
            assert!(
                lint_args(&[ip, "inst.ks=http://[2001:db8::1]/ks"]).is_empty(),
                "{ip}"
            );
        }
        // Not an Anaconda line: the Debian installer has no dracut.
        assert!(lint_args(&["auto=true", "url=http://[2001:db8::1]/p"]).is_empty());
    }

    #[test]
    fn finds_kernel_lines_and_skips_ipxe_options() {
        let script = "#!ipxe\necho inst.ks=http://2001:db8::1/x\n\
                      kernel --name k http://[2001:db8::1]/k inst.ks=http://[2001:db8::1]/ks\n\
                      imgargs k ip=dhcp6 inst.repo=nfs:2001:db8::2:/os\n";
        let problems = lint_script(script);
        let lines: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.rule)).collect();
        assert_eq!(
            lines,
            [
                (3, "kernel-anaconda-no-ipv6"),
                (4, "kernel-unbracketed-ipv6")
            ]
        );
    }
}

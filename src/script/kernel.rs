//! Kernel command-line rules: what an installer will misread in the arguments iPXE
//! passes to the image (`kernel URL ARGS…`, `chain URL ARGS…`, `imgargs IMAGE ARGS…`).
//!
//! iPXE does not parse these arguments, so these rules have installer authority (see
//! [`super::rules::Authority`]): every `scheme://` URL anywhere in an argument is checked
//! by [`super::uri::check_installer_url`], and parameters whose value names a server
//! without a `scheme://` are rows of [`KERNEL_PARAMS`]. Adding a parameter is one row:
//! its key, the kind of value (add a [`ValueKind`] variant with its check when no
//! existing one fits), the rule it reports and the document that defines it.
//!
//! One rule looks at the whole line instead of one parameter: an Anaconda boot
//! (`inst.ks=`, `inst.repo=`, `inst.stage2=`, `ks=`) without an `ip=` that configures
//! IPv6. Anaconda's boot-options document ("ip") says dracut then defaults to `ip=dhcp`,
//! which is DHCPv4 only (NetworkManager's initrd generator even sets IPv6 to "disabled"
//! for it), so on an IPv6-only link the kickstart is never fetched.

use core::net::Ipv6Addr;

use super::ipxe::UNKNOWN;
use super::rules::{self, Rule};
use super::uri::{self, show};

/// How a parameter's value names a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A URL whose scheme may be left out, the installer then assuming `http://`
    /// (d-i's `url=example.com/./d-i/bookworm/./preseed.cfg`).
    UrlDefaultHttp,
    /// An Anaconda location: a URL (left to the URL rule), `nfs:[options:]server:/path`,
    /// `hd:…`, `cdrom`, or a bare `server:/path`. The server of the `nfs:` and bare
    /// forms must be bracketed: Anaconda splits them at `:`.
    AnacondaLocation,
    /// A dracut `:`-separated list (`ip=`, `rd.route=`): every IPv6 address in it must
    /// be written `[address]`, or its colons are read as field separators.
    DracutList,
}

/// One installer parameter whose value the lint checks.
#[derive(Debug, Clone, Copy)]
pub struct KernelParam {
    /// The text before `=`.
    pub key: &'static str,
    pub value: ValueKind,
    /// The rule a bad value reports.
    pub rule: &'static Rule,
    /// Which installer reads it and where that is documented.
    pub source: &'static str,
}

const DEBIAN_PRESEEDING: &str = "debian-installer, Installation Guide appendix B.2 (preseeding: `url` is the alias of preseed/url; without a scheme it means http)";
const ANACONDA_BOOT_OPTIONS: &str =
    "Anaconda, docs/boot-options.rst (installation source and kickstart locations)";
const DRACUT_NETWORK: &str = "dracut.cmdline(7), \"Network\"";

/// One row of [`KERNEL_PARAMS`].
const fn row(
    key: &'static str,
    value: ValueKind,
    rule: &'static Rule,
    source: &'static str,
) -> KernelParam {
    KernelParam {
        key,
        value,
        rule,
        source,
    }
}

/// The parameters the lint knows.
pub const KERNEL_PARAMS: &[KernelParam] = {
    use ValueKind::{AnacondaLocation, DracutList, UrlDefaultHttp};
    const HOST: &Rule = &rules::KERNEL_PARAM_HOST;
    const DRACUT: &Rule = &rules::KERNEL_DRACUT_IPV6;
    &[
        row("url", UrlDefaultHttp, HOST, DEBIAN_PRESEEDING),
        row("preseed/url", UrlDefaultHttp, HOST, DEBIAN_PRESEEDING),
        row("inst.ks", AnacondaLocation, HOST, ANACONDA_BOOT_OPTIONS),
        row("ks", AnacondaLocation, HOST, ANACONDA_BOOT_OPTIONS),
        row("inst.repo", AnacondaLocation, HOST, ANACONDA_BOOT_OPTIONS),
        row("repo", AnacondaLocation, HOST, ANACONDA_BOOT_OPTIONS),
        row("inst.stage2", AnacondaLocation, HOST, ANACONDA_BOOT_OPTIONS),
        row(
            "inst.updates",
            AnacondaLocation,
            HOST,
            ANACONDA_BOOT_OPTIONS,
        ),
        row("inst.dd", AnacondaLocation, HOST, ANACONDA_BOOT_OPTIONS),
        row("ip", DracutList, DRACUT, DRACUT_NETWORK),
        row("rd.route", DracutList, DRACUT, DRACUT_NETWORK),
    ]
};

/// The parameters that make a kernel line an Anaconda boot (Anaconda's boot-options).
const ANACONDA_KEYS: &[&str] = &["inst.ks", "inst.repo", "inst.stage2", "ks"];

/// dracut's `ip=` autoconf values that configure IPv6 (dracut.cmdline(7), "Network").
const IPV6_AUTOCONF: &[&str] = &["dhcp6", "auto6", "either6"];

/// One problem in a kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgFinding {
    pub rule: &'static Rule,
    pub message: String,
}

/// Checks the arguments of one image command line (each already expanded; [`UNKNOWN`]
/// marks a setting the lint cannot know).
pub fn check_args<T: AsRef<[u8]>>(args: &[T]) -> Vec<ArgFinding> {
    let mut findings = Vec::new();
    let mut is_anaconda = false;
    let mut ip_values: Vec<&[u8]> = Vec::new();
    for arg in args.iter().map(AsRef::as_ref) {
        for url in uri::urls_in(arg) {
            if let Some(problem) = uri::check_installer_url(url) {
                findings.push(ArgFinding {
                    rule: &rules::INSTALLER_URL_IPV6,
                    message: format!("kernel argument `{}`: {problem}", show(arg)),
                });
            }
        }
        let Some(eq) = memchr::memchr(b'=', arg) else {
            continue;
        };
        let (key, value) = (&arg[..eq], &arg[eq + 1..]);
        is_anaconda |= ANACONDA_KEYS.iter().any(|k| k.as_bytes() == key);
        if key == b"ip" {
            ip_values.push(value);
        }
        for param in KERNEL_PARAMS.iter().filter(|p| p.key.as_bytes() == key) {
            if let Some(problem) = check_value(param.value, value) {
                findings.push(ArgFinding {
                    rule: param.rule,
                    message: format!(
                        "kernel argument `{}`: {problem} ({})",
                        show(arg),
                        param.source
                    ),
                });
            }
        }
    }
    if is_anaconda && !ip_values.iter().any(|v| configures_ipv6(v)) {
        let dracut = "use ip=auto6 (NetworkManager in the initrd: Fedora, EL8 and later) or \
                      ip=dhcp6 (network-legacy: EL7)";
        let message = match ip_values.first() {
            Some(value) => format!(
                "Anaconda boot with `ip={}`, which configures no IPv6: dracut then runs \
                 DHCPv4 only and never fetches the kickstart over IPv6; {dracut}",
                show(value)
            ),
            None => format!(
                "Anaconda boot without `ip=`: dracut then defaults to ip=dhcp (DHCPv4 only) \
                 and never fetches the kickstart over IPv6; {dracut}"
            ),
        };
        findings.push(ArgFinding {
            rule: &rules::KERNEL_ANACONDA_NO_IPV6,
            message,
        });
    }
    findings
}

fn check_value(kind: ValueKind, value: &[u8]) -> Option<String> {
    if value.contains(&UNKNOWN) {
        return None;
    }
    match kind {
        ValueKind::UrlDefaultHttp => {
            if memchr::memmem::find(value, b"://").is_some() {
                // A full URL is checked by the generic URL rule.
                return None;
            }
            let host = &value[..value
                .iter()
                .position(|b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(value.len())];
            (host.iter().filter(|b| **b == b':').count() > 1 && !host.starts_with(b"[")).then(
                || {
                    format!(
                        "the installer reads `{}` as http://{}…, an IPv6 address without brackets; write http://[ADDRESS]/…",
                        show(value),
                        show(host)
                    )
                },
            )
        }
        ValueKind::AnacondaLocation => {
            if memchr::memmem::find(value, b"://").is_some() {
                return None;
            }
            let value = std::str::from_utf8(value).ok()?;
            let literal = match value.strip_prefix("nfs:") {
                Some(nfs) => unbracketed_field(nfs),
                None => leading_ipv6(value),
            }?;
            Some(format!(
                "the IPv6 address {literal} needs brackets ([{literal}]); without them the \
                 installer reads the address up to its first `:` as the server"
            ))
        }
        ValueKind::DracutList => {
            let literal = unbracketed_field(std::str::from_utf8(value).ok()?)?;
            Some(format!(
                "dracut splits this value at every `:`, so the IPv6 address {literal} must be written \
                 [{literal}]"
            ))
        }
    }
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
/// the autoconf field of `<interface>:<autoconf>`, a static `[address]…` form, or a
/// setting the lint cannot know.
fn configures_ipv6(value: &[u8]) -> bool {
    value.starts_with(b"[")
        || value.contains(&UNKNOWN)
        || value
            .split(|b| *b == b':')
            .any(|field| IPV6_AUTOCONF.iter().any(|a| a.as_bytes() == field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Vec<&'static str> {
        check_args(args).iter().map(|f| f.rule.name).collect()
    }

    /// The rules of every kernel line in a script, as the whole lint reports them.
    fn script_rules(script: &str) -> Vec<(usize, &'static str)> {
        crate::script::lint(script.as_bytes())
            .iter()
            .map(|p| (p.line, p.rule.name))
            .collect()
    }

    #[test]
    fn urls_anywhere_in_an_argument_need_brackets() {
        assert!(names(&[
            "inst.ks=http://[2001:db8::1]/ks",
            "ip=auto6",
            "console=ttyS0"
        ])
        .is_empty());
        assert_eq!(
            names(&["ip=auto6", "inst.ks=http://2001:db8::1/ks"]),
            ["installer-url-ipv6"]
        );
        assert_eq!(
            names(&["ip=auto6", "inst.repo=http://[2001:db8::1/os"]),
            ["installer-url-ipv6"]
        );
        assert!(names(&["ip=auto6", "inst.ks=http://\0/ks"]).is_empty());
    }

    #[test]
    fn debian_installer_url_without_scheme_is_a_table_row() {
        assert!(names(&["url=[2001:db8::1]/preseed.cfg"]).is_empty());
        assert!(names(&["url=[2001:db8::1]"]).is_empty());
        assert!(names(&["url=example.com/./preseed.cfg"]).is_empty());
        assert!(names(&["url=mirror.example"]).is_empty());
        assert_eq!(
            names(&["url=2001:db8::1/preseed.cfg"]),
            ["kernel-param-host"]
        );
        assert_eq!(names(&["url=2001:db8::1"]), ["kernel-param-host"]);
        assert_eq!(names(&["preseed/url=fe80::1/p"]), ["kernel-param-host"]);
        assert_eq!(names(&["url=http://2001:db8::1/p"]), ["installer-url-ipv6"]);
        assert_eq!(
            names(&["preseed/url=ftp://2001:db8::1/p.cfg"]),
            ["installer-url-ipv6"]
        );
        let message = &check_args(&["url=2001:db8::1/p"])[0].message;
        assert!(message.contains("Installation Guide"), "{message}");
    }

    #[test]
    fn the_kernel_lines_sixboot_ships_are_clean() {
        let anaconda = "#!ipxe\nkernel http://[2001:db8::1]/files/vmlinuz initrd=initrd.img ip=auto6 \
                        BOOTIF=01-52-54-00-12-34-56 inst.ks=http://[2001:db8::1]/ks/52-54-00-12-34-56 \
                        inst.repo=http://[2001:db8::1]/files/repo\n";
        assert!(
            script_rules(anaconda).is_empty(),
            "{:?}",
            script_rules(anaconda)
        );
        let debian = "#!ipxe\nkernel http://[2001:db8::1]/files/linux initrd=initrd.gz auto=true \
                      priority=critical url=http://[2001:db8::1]/ks/52-54-00-12-34-56 \
                      netcfg/dhcp_timeout=0 preseed/early_command=\"sed -i s/-TERM/-KILL/ \
                      /bin/kill-all-dhcp; ln -sf /dev/null /var/run/dhcp6c.pid\"\n";
        assert!(
            script_rules(debian).is_empty(),
            "{:?}",
            script_rules(debian)
        );
    }

    #[test]
    fn rejects_unbracketed_literals_in_installer_locations_once() {
        // Each mistake is reported once: URLs by the URL rule, the rest by the table.
        for (arg, rule) in [
            ("inst.repo=ftp://user@2001:db8::1/os", "installer-url-ipv6"),
            ("inst.repo=nfs:2001:db8::1:/srv/os", "kernel-param-host"),
            (
                "inst.repo=nfs:nfsvers=4:2001:db8::1:/srv/os",
                "kernel-param-host",
            ),
            ("inst.stage2=2001:db8::1:/srv/os", "kernel-param-host"),
            ("url=2001:db8::1", "kernel-param-host"),
            ("preseed/url=ftp://2001:db8::1/p.cfg", "installer-url-ipv6"),
            ("inst.ks=http://2001:db8::1/ks", "installer-url-ipv6"),
            (
                "inst.stage2=https://2001:db8::1:8443/os",
                "installer-url-ipv6",
            ),
        ] {
            let findings = check_args(&["ip=auto6", arg]);
            assert_eq!(
                findings.iter().map(|f| f.rule.name).collect::<Vec<_>>(),
                [rule],
                "{arg}"
            );
            assert_eq!(findings[0].rule.severity, rules::Severity::Error, "{arg}");
        }
        let nfs = &check_args(&["ip=auto6", "inst.repo=nfs:2001:db8::1:/srv/os"])[0].message;
        assert!(nfs.contains("[2001:db8::1]"), "{nfs}");
        for arg in [
            "inst.repo=nfs:[2001:db8::1]:/srv/os",
            "inst.repo=nfs:nfsvers=4:[2001:db8::1]:/srv/os",
            "inst.ks=hd:sdb1:/ks.cfg",
            "inst.ks=cdrom:/ks.cfg",
            "inst.repo=cdrom",
            "inst.dd=/dev/sdb",
            // `nfs:${next-server}:/ks.cfg`: a setting the lint cannot know.
            "inst.ks=nfs:\0:/ks.cfg",
        ] {
            assert!(
                names(&["ip=auto6", arg]).is_empty(),
                "{arg}: {:?}",
                names(&["ip=auto6", arg])
            );
        }
    }

    #[test]
    fn rejects_unbracketed_literals_in_dracut_ip_and_route() {
        let findings = check_args(&["ip=2001:db8::10::2001:db8::1:64::eth0:none"]);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].rule.name, "kernel-dracut-ipv6");
        assert!(
            findings[0].message.contains("[2001:db8::10]"),
            "{findings:?}"
        );
        assert!(
            findings[0].message.contains("dracut.cmdline(7)"),
            "{findings:?}"
        );
        // Which is the very ambiguity: `2001:db8::1:64` is an address too.
        let gateway = check_args(&["ip=[2001:db8::10]::2001:db8::1:64::eth0:none"]);
        assert!(
            gateway[0].message.contains("[2001:db8::1:64]"),
            "{gateway:?}"
        );
        assert_eq!(
            names(&["rd.route=2001:db8:3::/48:[2001:db8::1]"]),
            ["kernel-dracut-ipv6"]
        );
        for fine in [
            "ip=[2001:db8::10]::[2001:db8::1]:64:node1:eth0:none",
            "ip=eth0:dhcp6::52:54:00:12:34:56",
            "ip=eth0:auto6:9000",
            "ip=192.0.2.10::192.0.2.1:255.255.255.0:cafe:eth0:none",
            "rd.route=[2001:db8:3::/48]:[2001:db8::1]:eth0",
        ] {
            assert!(names(&[fine]).is_empty(), "{fine}: {:?}", names(&[fine]));
        }
    }

    #[test]
    fn warns_about_an_anaconda_line_that_configures_no_ipv6() {
        let missing = check_args(&["inst.ks=http://[2001:db8::1]/ks"]);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].rule.name, "kernel-anaconda-no-ipv6");
        assert_eq!(missing[0].rule.severity, rules::Severity::Warning);
        assert!(missing[0].message.contains("ip=auto6"), "{missing:?}");
        let dhcp = check_args(&["ip=dhcp", "inst.repo=http://[2001:db8::1]/os"]);
        assert!(dhcp[0].message.contains("`ip=dhcp`"), "{dhcp:?}");
        for ip in [
            "ip=dhcp6",
            "ip=auto6",
            "ip=either6",
            "ip=eth0:dhcp6",
            "ip=[2001:db8::10]:::64::eth0:none",
            // A setting the lint cannot know (`ip=${ipmode}`) may well configure IPv6.
            "ip=\0",
        ] {
            assert!(
                names(&[ip, "inst.ks=http://[2001:db8::1]/ks"]).is_empty(),
                "{ip}"
            );
        }
        // Not an Anaconda line: the Debian installer has no dracut.
        assert!(names(&["auto=true", "url=http://[2001:db8::1]/p"]).is_empty());
    }

    #[test]
    fn finds_kernel_lines_and_skips_ipxe_options() {
        let script = "#!ipxe\necho inst.ks=http://2001:db8::1/x\n\
                      kernel --name k http://[2001:db8::1]/k inst.ks=http://[2001:db8::1]/ks\n\
                      imgargs k ip=dhcp6 inst.repo=nfs:2001:db8::2:/os\n";
        assert_eq!(
            script_rules(script),
            [(3, "kernel-anaconda-no-ipv6"), (4, "kernel-param-host")]
        );
    }

    #[test]
    fn every_table_rule_is_an_installer_rule_in_rules() {
        for param in KERNEL_PARAMS {
            assert_eq!(
                param.rule.authority,
                rules::Authority::Installer,
                "{}",
                param.key
            );
            assert!(rules::find(param.rule.name).is_some(), "{}", param.key);
        }
    }
}

//! The lint's rules: one table, each rule with its stable name, severity and the
//! iPXE (or installer) source whose behaviour it reports.
//!
//! A rule is an **error** only when iPXE rejects or misreads the script (it does not run
//! it as a script, stops with an error, or reads a URL as something other than what is
//! written); a **warning** when iPXE runs it as written but the result surprises. To add
//! a rule: add a `pub const` here, list it in [`RULES`] (a test checks that README's lint
//! table lists it), emit it from `lint.rs` (or a row of `kernel::KERNEL_PARAMS`),
//! and give it a unit test.

use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// iPXE runs the script as written, but not as a reader would expect.
    Warning,
    /// iPXE rejects or misreads it: the boot fails or fetches something else.
    Error,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose reading of the script a rule reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authority {
    /// iPXE itself (script probe, line and command processing, URI parsing): the
    /// differential test against real iPXE checks these.
    Ipxe,
    /// The installer that reads the kernel command line or kickstart iPXE passes on.
    Installer,
}

/// One lint rule.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Stable kebab-case name, shown as `error[name]` and usable by tools.
    pub name: &'static str,
    pub severity: Severity,
    pub authority: Authority,
    /// The function (and file, at iPXE commit 0ab2277c4) or document it mirrors.
    pub source: &'static str,
    /// One line for README and `--help`: what it catches.
    pub summary: &'static str,
}

/// the script does not start with `#!ipxe`: iPXE does not run it as a script ("Exec format error")
///
/// Mirrors script_probe, src/image/script.c.
pub const MAGIC_MISSING: Rule = Rule {
    name: "magic-missing",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "script_probe, src/image/script.c",
    summary: "the script does not start with `#!ipxe`: iPXE does not run it as a script (\"Exec format error\")",
};

/// a UTF-8 byte-order mark before `#!ipxe`: the magic is not in the first six bytes
///
/// Mirrors script_probe, src/image/script.c.
pub const MAGIC_BOM: Rule = Rule {
    name: "magic-bom",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "script_probe, src/image/script.c",
    summary: "a UTF-8 byte-order mark before `#!ipxe`: the magic is not in the first six bytes",
};

/// blank lines or white space before `#!ipxe`: the magic is not in the first six bytes
///
/// Mirrors script_probe, src/image/script.c.
pub const MAGIC_BLANK_LINE: Rule = Rule {
    name: "magic-blank-line",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "script_probe, src/image/script.c",
    summary: "blank lines or white space before `#!ipxe`: the magic is not in the first six bytes",
};

/// a `#!` line that is not `#!ipxe` (`#!pxe`, `#!iPXE`, `#! ipxe`): not a script to iPXE
///
/// Mirrors script_probe, src/image/script.c.
pub const MAGIC_WRONG: Rule = Rule {
    name: "magic-wrong",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "script_probe, src/image/script.c",
    summary:
        "a `#!` line that is not `#!ipxe` (`#!pxe`, `#!iPXE`, `#! ipxe`): not a script to iPXE",
};

/// `#!ipxe` not followed by a white-space byte (`#!ipxe-x`, or the file ends there)
///
/// Mirrors script_probe, src/image/script.c.
pub const MAGIC_NO_SPACE: Rule = Rule {
    name: "magic-no-space",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "script_probe, src/image/script.c",
    summary: "`#!ipxe` not followed by a white-space byte (`#!ipxe-x`, or the file ends there)",
};

/// `#!gpxe`: iPXE still runs it, but it is the old name; write `#!ipxe`
///
/// Mirrors script_probe, src/image/script.c.
pub const MAGIC_GPXE: Rule = Rule {
    name: "magic-gpxe",
    severity: Severity::Warning,
    authority: Authority::Ipxe,
    source: "script_probe, src/image/script.c",
    summary: "`#!gpxe`: iPXE still runs it, but it is the old name; write `#!ipxe`",
};

/// CRLF line endings: iPXE strips one CR per line, so it runs, but a second CR or a CR in a template's output does not go away
///
/// Mirrors process_script, src/image/script.c.
pub const LINE_CRLF: Rule = Rule {
    name: "line-crlf",
    severity: Severity::Warning,
    authority: Authority::Ipxe,
    source: "process_script, src/image/script.c",
    summary: "CRLF line endings: iPXE strips one CR per line, so it runs, but a second CR or a CR in a template's output does not go away",
};

/// the last line ends in `\`: iPXE waits for a next line that never comes, drops the command and fails the script (EINVAL)
///
/// Mirrors process_script, src/image/script.c.
pub const CONTINUATION_AT_EOF: Rule = Rule {
    name: "continuation-at-eof",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "process_script, src/image/script.c",
    summary: "the last line ends in `\\`: iPXE waits for a next line that never comes, drops the command and fails the script (EINVAL)",
};

/// `\` followed by spaces at the end of a line: not a continuation; the `\` becomes an argument and the next line a command of its own
///
/// Mirrors process_script, src/image/script.c.
pub const CONTINUATION_SPACE: Rule = Rule {
    name: "continuation-space",
    severity: Severity::Warning,
    authority: Authority::Ipxe,
    source: "process_script, src/image/script.c",
    summary: "`\\` followed by spaces at the end of a line: not a continuation; the `\\` becomes an argument and the next line a command of its own",
};

/// a command no iPXE build has ("command not found"): the script stops there
///
/// Mirrors execv, src/core/exec.c.
pub const COMMAND_UNKNOWN: Rule = Rule {
    name: "command-unknown",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "execv, src/core/exec.c",
    summary: "a command no iPXE build has (\"command not found\"): the script stops there",
};

/// `goto X` without a `:X` line in the script: the goto fails and the script stops
///
/// Mirrors goto_exec and goto_find_label, src/image/script.c.
pub const GOTO_NO_LABEL: Rule = Rule {
    name: "goto-no-label",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "goto_exec and goto_find_label, src/image/script.c",
    summary: "`goto X` without a `:X` line in the script: the goto fails and the script stops",
};

/// a URI scheme iPXE has no opener for ("Operation not supported")
///
/// Mirrors xfer_open_uri and xfer_uri_opener, src/core/open.c.
pub const URI_UNKNOWN_SCHEME: Rule = Rule {
    name: "uri-unknown-scheme",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "xfer_open_uri and xfer_uri_opener, src/core/open.c",
    summary: "a URI scheme iPXE has no opener for (\"Operation not supported\")",
};

/// an IPv6 literal without brackets: parse_uri splits host and port at the last `:`, so `http://2001:db8::1/` is host `2001:db8:` port 1
///
/// Mirrors parse_uri, src/core/uri.c.
pub const URI_UNBRACKETED_IPV6: Rule = Rule {
    name: "uri-unbracketed-ipv6",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "parse_uri, src/core/uri.c",
    summary: "an IPv6 literal without brackets: parse_uri splits host and port at the last `:`, so `http://2001:db8::1/` is host `2001:db8:` port 1",
};

/// a `[` without its `]` (or text around the brackets): iPXE strips brackets only when the host starts with `[` and ends with `]`
///
/// Mirrors parse_uri, src/core/uri.c, and ipv6_sock_aton, src/net/ipv6.c.
pub const URI_BRACKET: Rule = Rule {
    name: "uri-bracket",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "parse_uri, src/core/uri.c, and ipv6_sock_aton, src/net/ipv6.c",
    summary: "a `[` without its `]` (or text around the brackets): iPXE strips brackets only when the host starts with `[` and ends with `]`",
};

/// brackets around something inet6_aton does not read (a name, a dotted IPv4 tail like `::ffff:192.0.2.1`, a `%xx` that decoded into the address)
///
/// Mirrors inet6_aton, src/net/ipv6.c.
pub const URI_NOT_IPV6: Rule = Rule {
    name: "uri-not-ipv6",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "inet6_aton, src/net/ipv6.c",
    summary: "brackets around something inet6_aton does not read (a name, a dotted IPv4 tail like `::ffff:192.0.2.1`, a `%xx` that decoded into the address)",
};

/// a zone that is not an iPXE device name (`%25eth0`): iPXE names devices net0, net1, …, finds none and falls back to DNS
///
/// Mirrors ipv6_sock_aton, src/net/ipv6.c, and find_netdev, src/net/netdevice.c.
pub const URI_ZONE_DEVICE: Rule = Rule {
    name: "uri-zone-device",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "ipv6_sock_aton, src/net/ipv6.c, and find_netdev, src/net/netdevice.c",
    summary: "a zone that is not an iPXE device name (`%25eth0`): iPXE names devices net0, net1, …, finds none and falls back to DNS",
};

/// a zone on an address that is not link-local: iPXE accepts it and then routes only through that device
///
/// Mirrors ipv6_sock_aton, src/net/ipv6.c, and ipv6_route.
pub const URI_ZONE_GLOBAL: Rule = Rule {
    name: "uri-zone-global",
    severity: Severity::Warning,
    authority: Authority::Ipxe,
    source: "ipv6_sock_aton, src/net/ipv6.c, and ipv6_route",
    summary: "a zone on an address that is not link-local: iPXE accepts it and then routes only through that device",
};

/// a link-local address without a zone: iPXE uses the device opened last, which need not be the one on the server's link; add `%25net0`
///
/// Mirrors ipv6_sock_aton, src/net/ipv6.c.
pub const URI_LINK_LOCAL_NO_ZONE: Rule = Rule {
    name: "uri-link-local-no-zone",
    severity: Severity::Warning,
    authority: Authority::Ipxe,
    source: "ipv6_sock_aton, src/net/ipv6.c",
    summary: "a link-local address without a zone: iPXE uses the device opened last, which need not be the one on the server's link; add `%25net0`",
};

/// a second `@` in the authority: parse_uri splits user information at the first `@`, so the rest becomes the host; write `@` in a password as `%40`
///
/// Mirrors parse_uri, src/core/uri.c.
pub const URI_USERINFO_AT: Rule = Rule {
    name: "uri-userinfo-at",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "parse_uri, src/core/uri.c",
    summary: "a second `@` in the authority: parse_uri splits user information at the first `@`, so the rest becomes the host; write `@` in a password as `%40`",
};

/// `scheme:///path` (no host) for a network scheme: there is nothing to connect to
///
/// Mirrors parse_uri, src/core/uri.c.
pub const URI_EMPTY_HOST: Rule = Rule {
    name: "uri-empty-host",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "parse_uri, src/core/uri.c",
    summary: "`scheme:///path` (no host) for a network scheme: there is nothing to connect to",
};

/// a port iPXE reads as another number: empty (port 0), a leading 0 (octal), trailing text, or above 65535 (truncated)
///
/// Mirrors uri_port, src/core/uri.c (strtoul base 0).
pub const URI_PORT: Rule = Rule {
    name: "uri-port",
    severity: Severity::Error,
    authority: Authority::Ipxe,
    source: "uri_port, src/core/uri.c (strtoul base 0)",
    summary: "a port iPXE reads as another number: empty (port 0), a leading 0 (octal), trailing text, or above 65535 (truncated)",
};

/// a `0x` port: iPXE reads it as hex, no other tool does; write it in decimal
///
/// Mirrors uri_port, src/core/uri.c (strtoul base 0).
pub const URI_PORT_HEX: Rule = Rule {
    name: "uri-port-hex",
    severity: Severity::Warning,
    authority: Authority::Ipxe,
    source: "uri_port, src/core/uri.c (strtoul base 0)",
    summary: "a `0x` port: iPXE reads it as hex, no other tool does; write it in decimal",
};

/// a URL in a kernel command line or kickstart with an unbracketed or invalid IPv6 literal
///
/// Mirrors RFC 3986 section 3.2.2 (installers parse these URLs, not iPXE).
pub const INSTALLER_URL_IPV6: Rule = Rule {
    name: "installer-url-ipv6",
    severity: Severity::Error,
    authority: Authority::Installer,
    source: "RFC 3986 section 3.2.2 (installers parse these URLs, not iPXE)",
    summary:
        "a URL in a kernel command line or kickstart with an unbracketed or invalid IPv6 literal",
};

/// an installer parameter whose server part is an unbracketed IPv6 literal (d-i `url=2001:db8::1/preseed.cfg`, Anaconda `inst.repo=nfs:2001:db8::1:/os`)
///
/// Mirrors the installer's documentation for the parameter (see kernel::KERNEL_PARAMS).
pub const KERNEL_PARAM_HOST: Rule = Rule {
    name: "kernel-param-host",
    severity: Severity::Error,
    authority: Authority::Installer,
    source: "the installer's documentation for the parameter (see kernel::KERNEL_PARAMS)",
    summary: "an installer parameter whose server part is an unbracketed IPv6 literal (d-i `url=2001:db8::1/preseed.cfg`, Anaconda `inst.repo=nfs:2001:db8::1:/os`)",
};

/// an IPv6 address without brackets in dracut's `ip=` or `rd.route=`: both are `:`-separated lists, so the address's colons split it into fields
///
/// Mirrors dracut.cmdline(7), "Network".
pub const KERNEL_DRACUT_IPV6: Rule = Rule {
    name: "kernel-dracut-ipv6",
    severity: Severity::Error,
    authority: Authority::Installer,
    source: "dracut.cmdline(7), \"Network\"",
    summary: "an IPv6 address without brackets in dracut's `ip=` or `rd.route=`: both are `:`-separated lists, so the address's colons split it into fields",
};

/// an Anaconda boot (`inst.ks=`, `inst.repo=`, `inst.stage2=`, `ks=`) without an `ip=` that configures IPv6: dracut runs DHCPv4 only and never fetches the kickstart on an IPv6-only link
///
/// Mirrors Anaconda's docs/boot-options.rst ("ip") and dracut.cmdline(7), "Network".
pub const KERNEL_ANACONDA_NO_IPV6: Rule = Rule {
    name: "kernel-anaconda-no-ipv6",
    severity: Severity::Warning,
    authority: Authority::Installer,
    source: "Anaconda's docs/boot-options.rst (\"ip\") and dracut.cmdline(7), \"Network\"",
    summary: "an Anaconda boot (`inst.ks=`, `inst.repo=`, `inst.stage2=`, `ks=`) without an `ip=` that configures IPv6 (`auto6`, `dhcp6`, `either6`, `[address]`): dracut runs DHCPv4 only and never fetches the kickstart on an IPv6-only link",
};

/// Every rule, in the order README lists them.
pub const RULES: &[&Rule] = &[
    &MAGIC_MISSING,
    &MAGIC_BOM,
    &MAGIC_BLANK_LINE,
    &MAGIC_WRONG,
    &MAGIC_NO_SPACE,
    &MAGIC_GPXE,
    &LINE_CRLF,
    &CONTINUATION_AT_EOF,
    &CONTINUATION_SPACE,
    &COMMAND_UNKNOWN,
    &GOTO_NO_LABEL,
    &URI_UNKNOWN_SCHEME,
    &URI_UNBRACKETED_IPV6,
    &URI_BRACKET,
    &URI_NOT_IPV6,
    &URI_ZONE_DEVICE,
    &URI_ZONE_GLOBAL,
    &URI_LINK_LOCAL_NO_ZONE,
    &URI_USERINFO_AT,
    &URI_EMPTY_HOST,
    &URI_PORT,
    &URI_PORT_HEX,
    &INSTALLER_URL_IPV6,
    &KERNEL_PARAM_HOST,
    &KERNEL_DRACUT_IPV6,
    &KERNEL_ANACONDA_NO_IPV6,
];

/// The rule with this name, if any.
pub fn find(name: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|rule| rule.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_unique_kebab_case() {
        let mut names: Vec<_> = RULES.iter().map(|r| r.name).collect();
        for name in &names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
        }
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate rule names");
        assert_eq!(find("uri-port").map(|r| r.severity), Some(Severity::Error));
    }
}

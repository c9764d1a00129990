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

macro_rules! rule {
    ($id:ident, $name:literal, $severity:ident, $authority:ident, $source:literal, $summary:literal) => {
        #[doc = $summary]
        #[doc = ""]
        #[doc = concat!("Source: ", $source, ".")]
        pub const $id: Rule = Rule {
            name: $name,
            severity: Severity::$severity,
            authority: Authority::$authority,
            source: $source,
            summary: $summary,
        };
    };
}

rule!(MAGIC_MISSING, "magic-missing", Error, Ipxe,
    "script_probe, src/image/script.c",
    "the script does not start with `#!ipxe`: iPXE does not run it as a script (\"Exec format error\")");
rule!(
    MAGIC_BOM,
    "magic-bom",
    Error,
    Ipxe,
    "script_probe, src/image/script.c",
    "a UTF-8 byte-order mark before `#!ipxe`: the magic is not in the first six bytes"
);
rule!(
    MAGIC_BLANK_LINE,
    "magic-blank-line",
    Error,
    Ipxe,
    "script_probe, src/image/script.c",
    "blank lines or white space before `#!ipxe`: the magic is not in the first six bytes"
);
rule!(
    MAGIC_WRONG,
    "magic-wrong",
    Error,
    Ipxe,
    "script_probe, src/image/script.c",
    "a `#!` line that is not `#!ipxe` (`#!pxe`, `#!iPXE`, `#! ipxe`): not a script to iPXE"
);
rule!(
    MAGIC_NO_SPACE,
    "magic-no-space",
    Error,
    Ipxe,
    "script_probe, src/image/script.c",
    "`#!ipxe` not followed by a white-space byte (`#!ipxe-x`, or the file ends there)"
);
rule!(
    MAGIC_GPXE,
    "magic-gpxe",
    Warning,
    Ipxe,
    "script_probe, src/image/script.c",
    "`#!gpxe`: iPXE still runs it, but it is the old name; write `#!ipxe`"
);
rule!(LINE_CRLF, "line-crlf", Warning, Ipxe,
    "process_script, src/image/script.c",
    "CRLF line endings: iPXE strips one CR per line, so it runs, but a second CR or a CR in a template's output does not go away");
rule!(CONTINUATION_AT_EOF, "continuation-at-eof", Error, Ipxe,
    "process_script, src/image/script.c",
    "the last line ends in `\\`: iPXE waits for a next line that never comes, drops the command and fails the script (EINVAL)");
rule!(CONTINUATION_SPACE, "continuation-space", Warning, Ipxe,
    "process_script, src/image/script.c",
    "`\\` followed by spaces at the end of a line: not a continuation; the `\\` becomes an argument and the next line a command of its own");
rule!(
    COMMAND_UNKNOWN,
    "command-unknown",
    Error,
    Ipxe,
    "execv, src/core/exec.c",
    "a command no iPXE build has (\"command not found\"): the script stops there"
);
rule!(
    GOTO_NO_LABEL,
    "goto-no-label",
    Error,
    Ipxe,
    "goto_exec and goto_find_label, src/image/script.c",
    "`goto X` without a `:X` line in the script: the goto fails and the script stops"
);
rule!(
    URI_UNKNOWN_SCHEME,
    "uri-unknown-scheme",
    Error,
    Ipxe,
    "xfer_open_uri and xfer_uri_opener, src/core/open.c",
    "a URI scheme iPXE has no opener for (\"Operation not supported\")"
);
rule!(URI_UNBRACKETED_IPV6, "uri-unbracketed-ipv6", Error, Ipxe,
    "parse_uri, src/core/uri.c",
    "an IPv6 literal without brackets: parse_uri splits host and port at the last `:`, so `http://2001:db8::1/` is host `2001:db8:` port 1");
rule!(URI_BRACKET, "uri-bracket", Error, Ipxe,
    "parse_uri, src/core/uri.c, and ipv6_sock_aton, src/net/ipv6.c",
    "a `[` without its `]` (or text around the brackets): iPXE strips brackets only when the host starts with `[` and ends with `]`");
rule!(URI_NOT_IPV6, "uri-not-ipv6", Error, Ipxe,
    "inet6_aton, src/net/ipv6.c",
    "brackets around something inet6_aton does not read (a name, a dotted IPv4 tail like `::ffff:192.0.2.1`, a `%xx` that decoded into the address)");
rule!(URI_ZONE_DEVICE, "uri-zone-device", Error, Ipxe,
    "ipv6_sock_aton, src/net/ipv6.c, and find_netdev, src/net/netdevice.c",
    "a zone that is not an iPXE device name (`%25eth0`): iPXE names devices net0, net1, …, finds none and falls back to DNS");
rule!(URI_ZONE_GLOBAL, "uri-zone-global", Warning, Ipxe,
    "ipv6_sock_aton, src/net/ipv6.c, and ipv6_route",
    "a zone on an address that is not link-local: iPXE accepts it and then routes only through that device");
rule!(URI_LINK_LOCAL_NO_ZONE, "uri-link-local-no-zone", Warning, Ipxe,
    "ipv6_sock_aton, src/net/ipv6.c",
    "a link-local address without a zone: iPXE uses the device opened last, which need not be the one on the server's link; add `%25net0`");
rule!(URI_USERINFO_AT, "uri-userinfo-at", Error, Ipxe,
    "parse_uri, src/core/uri.c",
    "a second `@` in the authority: parse_uri splits user information at the first `@`, so the rest becomes the host; write `@` in a password as `%40`");
rule!(
    URI_EMPTY_HOST,
    "uri-empty-host",
    Error,
    Ipxe,
    "parse_uri, src/core/uri.c",
    "`scheme:///path` (no host) for a network scheme: there is nothing to connect to"
);
rule!(URI_PORT, "uri-port", Error, Ipxe,
    "uri_port, src/core/uri.c (strtoul base 0)",
    "a port iPXE reads as another number: empty (port 0), a leading 0 (octal), trailing text, or above 65535 (truncated)");
rule!(
    URI_PORT_HEX,
    "uri-port-hex",
    Warning,
    Ipxe,
    "uri_port, src/core/uri.c (strtoul base 0)",
    "a `0x` port: iPXE reads it as hex, no other tool does; write it in decimal"
);
rule!(
    INSTALLER_URL_IPV6,
    "installer-url-ipv6",
    Error,
    Installer,
    "RFC 3986 section 3.2.2 (installers parse these URLs, not iPXE)",
    "a URL in a kernel command line or kickstart with an unbracketed or invalid IPv6 literal"
);
rule!(KERNEL_PARAM_HOST, "kernel-param-host", Error, Installer,
    "the installer's documentation for the parameter (see kernel::KERNEL_PARAMS)",
    "an installer parameter whose server part is an unbracketed IPv6 literal (d-i `url=2001:db8::1/preseed.cfg`)");

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

//! URL checks. [`check_ipxe_uri`] judges a URI the way iPXE will open it (`parse_uri`,
//! `uri_decode`, `uri_port`, `ipv6_sock_aton`, `inet6_aton`, `find_netdev`, ported in
//! [`super::ipxe`]); [`check_installer_url`] judges a URL an installer will read from
//! the kernel command line or a kickstart (RFC 3986 section 3.2.2: an IPv6 literal
//! must be in brackets).

use core::net::Ipv6Addr;

use super::ipxe::{self, UNKNOWN};
use super::rules::{self, Rule};

/// One problem with one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriFinding {
    pub rule: &'static Rule,
    pub message: String,
}

fn finding(rule: &'static Rule, message: String) -> Vec<UriFinding> {
    vec![UriFinding { rule, message }]
}

/// Every scheme some iPXE build can open (each `__uri_opener` at the pinned commit).
pub const IPXE_SCHEMES: &[&str] = &[
    "http", "https", "ftp", "tftp", "tftm", "mtftp", "nfs", "x-slam", "tcp", "udp", "iscsi",
    "ib_srp", "aoe", "fcp", "file", "usb", "data",
];

/// The schemes whose openers connect to `host[:port]` over the network; their host and
/// port are checked.
pub const NETWORK_SCHEMES: &[&str] = &[
    "http", "https", "ftp", "tftp", "tftm", "mtftp", "nfs", "x-slam", "tcp", "udp",
];

fn is_one_of(scheme: &[u8], list: &[&str]) -> bool {
    list.iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(scheme))
}

/// Shows bytes in a message: UTF-8 where it is, `\xNN` elsewhere, and `${…}` for a
/// setting the lint cannot know.
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\0' => out.push_str("${…}"),
                c if c.is_control() => out.push_str(&c.escape_default().to_string()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `written` as in the script, plus what it expands to when that differs; formatted only
/// when a message needs it.
struct Shown<'a> {
    written: &'a [u8],
    expanded: &'a [u8],
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.written == self.expanded {
            write!(f, "`{}`", show(self.written))
        } else {
            write!(
                f,
                "`{}` (expanded: `{}`)",
                show(self.written),
                show(self.expanded)
            )
        }
    }
}

/// Checks one argument iPXE will hand to `parse_uri` (the URI of `chain`, `kernel`,
/// `initrd`, `imgfetch`, `sanboot`, …). `written` is the token as in the script,
/// `expanded` the same after settings expansion ([`UNKNOWN`] where the lint cannot know
/// a value). Relative URIs and non-network schemes are not checked beyond the scheme;
/// parts holding an unknown setting are not checked at all.
pub fn check_ipxe_uri(written: &[u8], expanded: &[u8]) -> Vec<UriFinding> {
    let uri = ipxe::parse_uri(expanded);
    let Some(scheme) = &uri.scheme else {
        return Vec::new();
    };
    let what = Shown { written, expanded };
    if !is_one_of(scheme, IPXE_SCHEMES) {
        return finding(
            &rules::URI_UNKNOWN_SCHEME,
            format!(
                "{what}: iPXE has no opener for scheme `{}` (xfer_open_uri: \"Operation not supported\"); use http, https or tftp",
                show(scheme)
            ),
        );
    }
    if !is_one_of(scheme, NETWORK_SCHEMES) {
        return Vec::new();
    }
    let (Some(raw_authority), Some(host), Some(raw_host)) =
        (&uri.raw_authority, &uri.host, &uri.raw_host)
    else {
        return Vec::new();
    };
    if raw_authority.contains(&UNKNOWN) {
        // Only a literal port after a bracketed host is still certain: an address
        // setting inside `[…]` cannot move the `]:` split.
        let bracketed = raw_host.first() == Some(&b'[') && raw_host.last() == Some(&b']');
        return match (&uri.port, &uri.raw_port) {
            (Some(port), Some(raw_port)) if bracketed && !raw_port.contains(&UNKNOWN) => {
                check_port(&what, port)
            }
            _ => Vec::new(),
        };
    }
    if raw_authority.iter().filter(|b| **b == b'@').count() > 1 {
        return finding(
            &rules::URI_USERINFO_AT,
            format!(
                "{what}: iPXE splits the user information at the first `@` (parse_uri), so it connects to host `{}`; write `@` inside a user name or password as `%40`",
                show(host)
            ),
        );
    }
    if host.is_empty() {
        return finding(
            &rules::URI_EMPTY_HOST,
            format!("{what} has no host (parse_uri reads an empty authority): iPXE has nothing to connect to"),
        );
    }
    let mut findings = if raw_host.contains(&b'[') || raw_host.contains(&b']') {
        check_bracketed(&what, host, raw_host, uri.raw_port.as_deref())
    } else if host.contains(&b':') {
        let literal = match &uri.raw_port {
            Some(port) => [&raw_host[..], b":", port].concat(),
            None => raw_host.clone(),
        };
        let suggestion = if ipxe::inet6_aton(&literal).is_some() || literal.contains(&b'%') {
            format!("; write it as {}://[{}]/…", show(scheme), show(&literal))
        } else {
            String::new()
        };
        return finding(
            &rules::URI_UNBRACKETED_IPV6,
            format!(
                "{what} has an IPv6 address without brackets: parse_uri splits host and port at the last `:` and reads host `{}` port `{}`{suggestion}",
                show(host),
                show(uri.port.as_deref().unwrap_or_default())
            ),
        );
    } else {
        Vec::new()
    };
    if findings
        .iter()
        .any(|f| f.rule.severity == rules::Severity::Error)
    {
        return findings;
    }
    if let (Some(port), Some(raw_port)) = (&uri.port, &uri.raw_port) {
        if !raw_port.contains(&UNKNOWN) {
            findings.extend(check_port(&what, port));
        }
    }
    findings
}

/// The host of a URI that has a `[` or `]`: brackets around the whole host, an address
/// `inet6_aton` reads, a zone `find_netdev` can find.
fn check_bracketed(
    what: &Shown<'_>,
    host: &[u8],
    raw_host: &[u8],
    raw_port: Option<&[u8]>,
) -> Vec<UriFinding> {
    let (Some(b'['), Some(b']')) = (host.first(), host.last()) else {
        let port = raw_port
            .map(|p| format!(" port `{}`", show(p)))
            .unwrap_or_default();
        return finding(
            &rules::URI_BRACKET,
            format!(
                "{what}: iPXE reads host `{}`{port}; an IPv6 literal must be the whole host, `[` to `]`, with only `:PORT` after it",
                show(host)
            ),
        );
    };
    let inner = &host[1..host.len() - 1];
    let Some((address, zone)) = ipxe::ipv6_sock_aton(host) else {
        let address = inner.split(|b| *b == b'%').next().unwrap_or_default();
        let why = if address.contains(&b'.') {
            "inet6_aton reads no dotted IPv4 part; write the last 32 bits in hex (`::ffff:c000:201` for `::ffff:192.0.2.1`)".to_owned()
        } else if decoded_escape_in_zone(raw_host) {
            "iPXE decoded a `%` followed by hex digits as an escape (uri_decode); write the zone as `%25net0`".to_owned()
        } else {
            format!("inet6_aton does not read `{}` as an IPv6 address, so iPXE looks the whole `[…]` up in DNS", show(address))
        };
        return finding(&rules::URI_NOT_IPV6, format!("{what}: {why}"));
    };
    match zone {
        Some(zone) if !ipxe::is_netdev_name(zone) => finding(
            &rules::URI_ZONE_DEVICE,
            format!(
                "{what}: iPXE looks the zone `{}` up as a network device (find_netdev) and its devices are named net0, net1, … (or netX for the last one opened), so this fails and iPXE falls back to DNS; write `%25net0`",
                show(zone)
            ),
        ),
        Some(zone) if !ipxe::is_scoped(&address) => finding(
            &rules::URI_ZONE_GLOBAL,
            format!(
                "{what}: `{address}` is not link-local, yet it has the zone `{}`: iPXE accepts it and then routes only through that device; drop the zone unless that is what you want",
                show(zone)
            ),
        ),
        None if is_link_local(&address) => finding(
            &rules::URI_LINK_LOCAL_NO_ZONE,
            format!(
                "{what}: link-local `{address}` without a zone: iPXE uses the device opened last (ipv6_sock_aton), not necessarily the one on the server's link; write `[{address}%25net0]`"
            ),
        ),
        _ => Vec::new(),
    }
}

fn is_link_local(address: &Ipv6Addr) -> bool {
    (address.segments()[0] & 0xffc0) == 0xfe80
}

/// Whether the raw host has a `%` that `uri_decode` turned into a byte (not `%25`).
fn decoded_escape_in_zone(raw_host: &[u8]) -> bool {
    raw_host
        .windows(2)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit())
        && !raw_host.windows(3).any(|w| w == b"%25")
}

/// A port `uri_port` reads as what is written: decimal digits, no leading zero,
/// 1 to 65535.
fn check_port(what: &Shown<'_>, port: &[u8]) -> Vec<UriFinding> {
    let read = ipxe::uri_port(Some(port)).unwrap_or_default();
    let decimal = !port.is_empty() && port.iter().all(u8::is_ascii_digit);
    let problem = if port.is_empty() {
        "an empty port: uri_port reads it as port 0, not the scheme's default; drop the `:`"
            .to_owned()
    } else if decimal
        && port[0] != b'0'
        && read != 0
        && port.len() <= 5
        && u32::from(read) == parse_u32(port)
    {
        return Vec::new();
    } else if decimal && port[0] == b'0' {
        format!(
            "port `{}` starts with 0, so uri_port (strtoul base 0) reads it as octal: port {read}; write it without the leading zero",
            show(port)
        )
    } else if decimal {
        format!(
            "port `{}` is not 1 to 65535; iPXE truncates it to port {read}",
            show(port)
        )
    } else if let Some(hex) = port
        .strip_prefix(b"0x")
        .or_else(|| port.strip_prefix(b"0X"))
    {
        if !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit) && read != 0 && hex.len() <= 4 {
            return vec![UriFinding {
                rule: &rules::URI_PORT_HEX,
                message: format!(
                    "{what}: port `{}` is hexadecimal; iPXE reads port {read}, other tools refuse it; write {read}",
                    show(port)
                ),
            }];
        }
        format!("port `{}`: iPXE reads port {read}", show(port))
    } else {
        format!(
            "port `{}` is not a number: uri_port (strtoul) reads port {read}",
            show(port)
        )
    };
    finding(&rules::URI_PORT, format!("{what}: {problem}"))
}

fn parse_u32(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    })
}

/// The URLs (`scheme://…`) in a piece of text, each up to white space or a quote or
/// angle bracket. The scheme is RFC 3986's: a letter, then letters, digits, `+`, `-`, `.`.
pub fn urls_in(text: &[u8]) -> Vec<&[u8]> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&text[from..], b"://") {
        let colon = from + at;
        let mut start = colon;
        while start > 0
            && (text[start - 1].is_ascii_alphanumeric()
                || matches!(text[start - 1], b'+' | b'-' | b'.'))
        {
            start -= 1;
        }
        while start < colon && !text[start].is_ascii_alphabetic() {
            start += 1;
        }
        let end = text[colon..]
            .iter()
            .position(|b| ipxe::is_space(*b) || matches!(b, b'"' | b'\'' | b'<' | b'>'))
            .map_or(text.len(), |e| colon + e);
        if start < colon {
            found.push(&text[start..end]);
        }
        from = end.max(colon + 3);
    }
    found
}

/// Checks a URL an installer (Anaconda, d-i, dracut) will read: an IPv6 literal in
/// brackets, a valid address inside them (RFC 4291 text, dotted tail allowed; zone
/// `%25…` per RFC 6874). `None` when fine or when the host holds an unknown setting.
pub fn check_installer_url(url: &[u8]) -> Option<String> {
    let rest = &url[memchr::memmem::find(url, b"://")? + 3..];
    let authority = &rest[..rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len())];
    if authority.contains(&UNKNOWN) || authority.contains(&b'$') || authority.contains(&b'{') {
        return None;
    }
    let host_port = match memchr::memrchr(b'@', authority) {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    if let Some(inside) = host_port.strip_prefix(b"[") {
        let Some(close) = memchr::memchr(b']', inside) else {
            return Some(format!("`{}` opens `[` but never closes it", show(url)));
        };
        let literal = &inside[..close];
        let address = literal.split(|b| *b == b'%').next().unwrap_or_default();
        let valid = std::str::from_utf8(address)
            .ok()
            .and_then(|a| a.parse::<Ipv6Addr>().ok())
            .is_some();
        if !valid {
            return Some(format!(
                "`{}` in `{}` is not an IPv6 address",
                show(literal),
                show(url)
            ));
        }
        let after = &inside[close + 1..];
        let port_ok = after.is_empty()
            || after
                .strip_prefix(b":")
                .is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
        if !port_ok {
            return Some(format!(
                "`{}` has something other than `:PORT` after `]`",
                show(url)
            ));
        }
        return None;
    }
    if host_port.iter().filter(|b| **b == b':').count() > 1 {
        let scheme = &url[..memchr::memmem::find(url, b"://")?];
        return Some(format!(
            "`{}` has an IPv6 address without brackets; write it as {}://[ADDRESS]/…",
            show(url),
            show(scheme)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_for(uri: &str) -> Vec<&'static str> {
        check_ipxe_uri(uri.as_bytes(), uri.as_bytes())
            .iter()
            .map(|f| f.rule.name)
            .collect()
    }

    #[test]
    fn accepts_every_form_ipxe_reads_as_written() {
        for uri in [
            "http://[2001:db8::1]/boot.ipxe",
            "http://[2001:db8::1]:8080/boot.ipxe",
            "http://anon:password@example.com:3001/~foo/cgi-bin/foo.pl?a=b&c=d#bit",
            "http://anon:password@[2001:db8::1]:3001/x",
            "https://[2001:ba8:0:1d4::6950:5845]/",
            "http://[fe80::69ff:fe50:5845%25net0]/ipxe",
            "http://[fe80::69ff:fe50:5845%net0]/ipxe",
            "http://[fe80::1%25net0-42]/ipxe",
            "http://[ff02::1%25netX]/x",
            "tftp://192.168.0.1:4069//another/path",
            "tftp://10.0.0.6/C:\\tftpboot\\icky#path",
            "http://boot.ipxe.org/demo/boot.php##params=foo",
            "http://[2001:db8::1]/a?x=[::1]:80#frag:frag",
            "iscsi:10.253.253.1::::iqn.2010-04.org.ipxe:rabbit",
            "file:/boot/script.ipxe",
            "file:///boot/script.ipxe",
            "data:,hello",
            "vmlinuz",
            "/boot/52:54:00:12:34:56/boot.ipxe",
            "HTTP://[2001:db8::1]/upper-case-scheme",
        ] {
            assert_eq!(rules_for(uri), Vec::<&str>::new(), "{uri}");
        }
    }

    #[test]
    fn reports_each_misread_with_its_rule() {
        for (uri, rule) in [
            ("http://2001:db8::1/x", "uri-unbracketed-ipv6"),
            ("tftp://fe80::1%net0/x", "uri-unbracketed-ipv6"),
            ("http://[2001:db8::1/x", "uri-bracket"),
            ("http://[2001:db8::1]x/", "uri-bracket"),
            ("http://[boot.example.com]/x", "uri-not-ipv6"),
            ("http://[::ffff:192.0.2.1]/x", "uri-not-ipv6"),
            ("http://[fe80::1%ab]/x", "uri-not-ipv6"),
            ("http://[fe80::1%25eth0]/x", "uri-zone-device"),
            ("http://[fe80::1%25]/x", "uri-zone-device"),
            ("http://[2001:db8::1%25net0]/x", "uri-zone-global"),
            ("http://[fe80::1]/x", "uri-link-local-no-zone"),
            ("http://user:p@ss@[2001:db8::1]/x", "uri-userinfo-at"),
            ("http:///x", "uri-empty-host"),
            ("http://[2001:db8::1]:/x", "uri-port"),
            ("http://[2001:db8::1]:080/x", "uri-port"),
            ("http://[2001:db8::1]:0/x", "uri-port"),
            ("http://[2001:db8::1]:65616/x", "uri-port"),
            ("http://host:http/x", "uri-port"),
            ("http://2001:db8/x", "uri-port"),
            ("http://[2001:db8::1]:0x50/x", "uri-port-hex"),
            ("htp://[2001:db8::1]/x", "uri-unknown-scheme"),
        ] {
            assert_eq!(rules_for(uri), [rule], "{uri}");
        }
    }

    #[test]
    fn unknown_settings_stop_checks_of_the_part_they_are_in() {
        let check = |expanded: &[u8]| check_ipxe_uri(b"(written)", expanded);
        assert!(check(b"http://\0/x").is_empty());
        assert!(check(b"http://[\0]:\0/x").is_empty());
        assert_eq!(check(b"http://[\0]:080/x")[0].rule.name, "uri-port");
        assert!(check(b"http://\0:080/x").is_empty());
        assert!(check(b"\0/vmlinuz").is_empty());
        assert_eq!(
            check(b"http://2001:db8::1/\0")[0].rule.name,
            "uri-unbracketed-ipv6"
        );
    }

    #[test]
    fn messages_say_what_ipxe_reads() {
        let f = &check_ipxe_uri(b"http://2001:db8::1/x", b"http://2001:db8::1/x")[0];
        assert!(
            f.message.contains("host `2001:db8:` port `1`"),
            "{}",
            f.message
        );
        assert!(f.message.contains("http://[2001:db8::1]/"), "{}", f.message);
        let f = &check_ipxe_uri(b"${u}", b"http://[2001:db8::1]:010/x")[0];
        assert!(
            f.message
                .contains("`${u}` (expanded: `http://[2001:db8::1]:010/x`)"),
            "{}",
            f.message
        );
        assert!(f.message.contains("port 8"), "{}", f.message);
    }

    #[test]
    fn finds_urls_in_text() {
        let text = b"inst.ks=http://[::1]/ks url=\"tftp://h/x\" x://y  noscheme://";
        assert_eq!(
            urls_in(text),
            [
                &b"http://[::1]/ks"[..],
                b"tftp://h/x",
                b"x://y",
                b"noscheme://"
            ]
        );
        assert!(urls_in(b"://x").is_empty());
    }

    #[test]
    fn installer_urls_need_brackets_per_rfc_3986() {
        assert_eq!(check_installer_url(b"http://[2001:db8::1]/ks"), None);
        assert_eq!(
            check_installer_url(b"http://[::ffff:192.0.2.1]:8080/ks"),
            None
        );
        assert_eq!(check_installer_url(b"http://u:p@[2001:db8::1]/ks"), None);
        assert_eq!(check_installer_url(b"http://[fe80::1%25eth0]/ks"), None);
        assert_eq!(check_installer_url(b"http://example.com:80/ks"), None);
        assert_eq!(check_installer_url(b"http://[\0]/ks"), None);
        assert!(check_installer_url(b"http://2001:db8::1/ks")
            .unwrap()
            .contains("without brackets"));
        assert!(check_installer_url(b"http://[2001:db8::1/ks")
            .unwrap()
            .contains("never closes"));
        assert!(check_installer_url(b"http://[nope]/ks")
            .unwrap()
            .contains("not an IPv6"));
        assert!(check_installer_url(b"http://[::1]x/ks").is_some());
    }
}

//! Ports of the iPXE functions that decide how a script is read, byte for byte.
//!
//! Each function names the iPXE function and file it mirrors, at the pinned commit
//! 0ab2277c4 (FlexBoot 3.4.812's copies of `script_probe`, `process_script`, `parse_uri`
//! and `ipv6_sock_aton` agree with it on everything used here). They are ports, quirks
//! included, not idealised parsers: iPXE's `strtoul` skips white space and a sign and
//! only honours `0x` when the base is 0, `inet6_aton` accepts a lone leading or trailing
//! colon and no dotted IPv4 tail, `parse_uri` splits the port at the *last* colon and
//! the user information at the *first* `@`. The lint's verdicts come from these, so a
//! script is judged as iPXE will judge it.
//!
//! C strings end at NUL; here a byte slice ends where the C string would. Nothing here
//! allocates beyond its result, does I/O or panics on any input.

use core::net::Ipv6Addr;
use std::borrow::Cow;

/// The magic iPXE looks for in the first six bytes (`script_probe`, src/image/script.c).
pub const IPXE_MAGIC: &[u8] = b"#!ipxe";
/// The older magic `script_probe` still accepts.
pub const GPXE_MAGIC: &[u8] = b"#!gpxe";

/// `isspace` (src/core/ctype.c): space, `\f`, `\n`, `\r`, `\t`, `\v`.
pub fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | 0x0c | b'\n' | b'\r' | b'\t' | 0x0b)
}

/// `digit_value` (src/core/string.c): a digit's value in any base up to 36, or a value
/// no base accepts. C's `char` is signed on x86, so bytes from 0x80 up are huge.
fn digit_value(byte: u8) -> u32 {
    if byte >= 0x80 {
        return u32::MAX;
    }
    let c = u32::from(byte);
    if c >= u32::from(b'a') {
        c - (u32::from(b'a') - 10)
    } else if c >= u32::from(b'A') {
        c - (u32::from(b'A') - 10)
    } else if c <= u32::from(b'9') {
        c.wrapping_sub(u32::from(b'0'))
    } else {
        c
    }
}

/// `strtoul` (src/core/string.c, with `strtoul_pre`): returns the value (64-bit
/// `unsigned long`, wrapping) and the index where parsing stopped.
///
/// Unlike ISO C, the end index is past any white space, sign and base prefix even when
/// no digit follows; base 0 means 8 after a leading `0`, 16 after `0x`/`0X`, else 10,
/// and an explicit base 16 does not skip `0x`.
pub fn strtoul(text: &[u8], base: u32) -> (u64, usize) {
    let mut i = 0;
    while text.get(i).copied().is_some_and(is_space) {
        i += 1;
    }
    let mut negate = false;
    match text.get(i) {
        Some(b'-') => {
            negate = true;
            i += 1;
        }
        Some(b'+') => i += 1,
        _ => {}
    }
    let mut base = base;
    if base == 0 {
        base = 10;
        if text.get(i) == Some(&b'0') {
            i += 1;
            base = 8;
            if text.get(i).map(|c| c & !0x20) == Some(b'X') {
                i += 1;
                base = 16;
            }
        }
    }
    let mut value: u64 = 0;
    while let Some(&c) = text.get(i) {
        let digit = digit_value(c);
        if digit >= base {
            break;
        }
        value = value
            .wrapping_mul(u64::from(base))
            .wrapping_add(u64::from(digit));
        i += 1;
    }
    if negate {
        value = value.wrapping_neg();
    }
    (value, i)
}

/// What `script_probe` (src/image/script.c) decides about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `#!ipxe` and a white-space byte: a script.
    Ipxe,
    /// `#!gpxe` and a white-space byte: also a script.
    Gpxe,
    /// Fewer than seven bytes: "Too short to be a script".
    TooShort,
    /// Anything else: "Invalid magic signature"; iPXE does not run it as a script.
    BadMagic,
}

/// `script_probe`: the first six bytes must be `#!ipxe` or `#!gpxe` and the seventh
/// white space. Nothing else about the image matters.
pub fn script_probe(image: &[u8]) -> Probe {
    if image.len() < IPXE_MAGIC.len() + 1 {
        return Probe::TooShort;
    }
    let (magic, space) = (&image[..IPXE_MAGIC.len()], image[IPXE_MAGIC.len()]);
    if !is_space(space) {
        return Probe::BadMagic;
    }
    if magic == IPXE_MAGIC {
        Probe::Ipxe
    } else if magic == GPXE_MAGIC {
        Probe::Gpxe
    } else {
        Probe::BadMagic
    }
}

/// One line as `process_script` hands it to the command processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLine {
    /// 1-based number of the physical line it starts on.
    pub first: usize,
    /// 1-based number of the physical line it ends on (later than `first` after
    /// backslash continuations).
    pub last: usize,
    /// The text: fragments joined, one trailing CR and each continuation backslash
    /// removed, as `process_script` builds it.
    pub text: Vec<u8>,
    /// Whether a CR was stripped from any of its fragments.
    pub crlf: bool,
}

/// Everything `process_script` reads from a script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScriptLines {
    /// The lines it executes, in order.
    pub lines: Vec<ScriptLine>,
    /// `Some(first line)` when the script ends inside a backslash continuation: that
    /// last command never runs and the script fails with `EINVAL`.
    pub unfinished: Option<usize>,
}

/// `process_script` (src/image/script.c): split at `\n`, strip one trailing `\r`, join a
/// line ending in `\` with the next (nothing in between, the `\` dropped).
pub fn process_script(image: &[u8]) -> ScriptLines {
    let mut result = ScriptLines::default();
    let mut offset = 0;
    let mut line = Vec::new();
    let mut crlf = false;
    let mut physical = 1;
    let mut first = 1;
    loop {
        let rest = image.get(offset..).unwrap_or(&[]);
        let fragment_len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        line.extend_from_slice(&rest[..fragment_len]);
        offset += fragment_len + 1;
        if line.last() == Some(&b'\r') {
            line.pop();
            crlf = true;
        }
        if line.last() == Some(&b'\\') {
            line.pop();
            physical += 1;
            if offset >= image.len() {
                result.unfinished = Some(first);
                break;
            }
            continue;
        }
        result.lines.push(ScriptLine {
            first,
            last: physical,
            text: std::mem::take(&mut line),
            crlf: std::mem::take(&mut crlf),
        });
        physical += 1;
        first = physical;
        if offset >= image.len() {
            break;
        }
    }
    result
}

/// `process_script`'s label split: after leading white space, a `:` starts a label that
/// runs to the next white space; the rest (after one white-space byte) is the command.
pub fn split_label(text: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let start = text
        .iter()
        .position(|b| !is_space(*b))
        .unwrap_or(text.len());
    let command = &text[start..];
    let Some(after_colon) = command.strip_prefix(b":") else {
        return (None, command);
    };
    let end = after_colon
        .iter()
        .position(|b| is_space(*b))
        .unwrap_or(after_colon.len());
    let rest = after_colon.get(end + 1..).unwrap_or(&[]);
    (Some(&after_colon[..end]), rest)
}

/// `split_command` (src/core/exec.c): white-space separated tokens.
pub fn split_command(line: &[u8]) -> Vec<&[u8]> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        let start = i;
        while i < line.len() && !is_space(line[i]) {
            i += 1;
        }
        if i > start {
            tokens.push(&line[start..i]);
        }
    }
    tokens
}

/// When `system` runs a command of a line, relative to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The first command of a line, or after `;`.
    Always,
    /// After `&&`: only if the previous command succeeded.
    OnSuccess,
    /// After `||`: only if the previous command failed.
    OnFailure,
}

/// One command of a line: its tokens (not yet expanded) and when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub condition: Condition,
    pub tokens: Vec<&'a [u8]>,
}

/// `system` with `command_terminator` (src/core/exec.c): a line's commands, split at the
/// tokens `||`, `&&` and `;`; a token starting with `#` ends the line (a comment).
/// Commands with no tokens (an empty line, a comment) are left out.
pub fn commands(line: &[u8]) -> Vec<Command<'_>> {
    let mut result = Vec::new();
    let mut condition = Condition::Always;
    let mut current = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        let start = i;
        while i < line.len() && !is_space(line[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let token = &line[start..i];
        let next = match token {
            b"||" => Condition::OnFailure,
            b"&&" => Condition::OnSuccess,
            b";" => Condition::Always,
            _ if token[0] == b'#' => break,
            _ => {
                current.push(token);
                continue;
            }
        };
        if !current.is_empty() {
            result.push(Command {
                condition,
                tokens: std::mem::take(&mut current),
            });
        }
        condition = next;
    }
    if !current.is_empty() {
        result.push(Command {
            condition,
            tokens: current,
        });
    }
    result
}

/// The byte the lint puts where a setting of unknown value was expanded. C strings
/// cannot hold NUL, so it never collides with a real value.
pub const UNKNOWN: u8 = 0;

/// `expand_settings` (src/core/settings.c): repeatedly replaces the innermost `${name}`
/// (the last `${` before the first `}`) with `lookup(name)`; an unterminated `${` stays.
///
/// `lookup` returns a setting's value, or `None` when only iPXE can know it (then the
/// result holds [`UNKNOWN`] there). Gives up (returns `None`) after 256 rounds, where
/// iPXE itself would loop forever on a self-producing value.
pub fn expand_settings(
    token: &[u8],
    lookup: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Option<Cow<'_, [u8]>> {
    if !memchr::memchr_iter(b'$', token).any(|i| token.get(i + 1) == Some(&b'{')) {
        return Some(Cow::Borrowed(token));
    }
    let mut text = token.to_vec();
    for _ in 0..256 {
        let mut start = None;
        let mut end = None;
        for i in 0..text.len() {
            if text[i] == b'$' && text.get(i + 1) == Some(&b'{') {
                start = Some(i);
            }
            if start.is_some() && text[i] == b'}' {
                end = Some(i);
                break;
            }
        }
        let (Some(start), Some(end)) = (start, end) else {
            return Some(Cow::Owned(text));
        };
        let value = lookup(&text[start + 2..end]).unwrap_or_else(|| vec![UNKNOWN]);
        let mut expanded = Vec::with_capacity(text.len() + value.len());
        expanded.extend_from_slice(&text[..start]);
        expanded.extend_from_slice(&value);
        expanded.extend_from_slice(&text[end + 1..]);
        text = expanded;
    }
    None
}

/// `uri_decode` (src/core/uri.c): each `%` takes up to two following bytes, read with
/// `strtoul(…, 16)` (so `% 5`, `%-1` and a single hex digit decode too); a `%` that
/// reads nothing stays. The result ends at the first NUL, as iPXE's C string would.
pub fn uri_decode(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        let mut c = encoded[i];
        i += 1;
        if c == b'%' {
            let hex_len = encoded.len().saturating_sub(i).min(2);
            let (value, skip) = strtoul(&encoded[i..i + hex_len], 16);
            i += skip;
            if skip > 0 {
                c = value as u8;
            }
        }
        out.push(c);
    }
    if let Some(nul) = out.iter().position(|b| *b == 0) {
        out.truncate(nul);
    }
    out
}

/// A URI as `parse_uri` (src/core/uri.c) splits it. Fields before the path are
/// percent-decoded as iPXE decodes them; `raw_authority` is the authority as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Option<Vec<u8>>,
    pub opaque: Option<Vec<u8>>,
    pub user: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
    pub port: Option<Vec<u8>>,
    pub epath: Option<Vec<u8>>,
    pub equery: Option<Vec<u8>>,
    pub efragment: Option<Vec<u8>>,
    /// The authority (`user:password@host:port`) before decoding.
    pub raw_authority: Option<Vec<u8>>,
    /// The host before decoding.
    pub raw_host: Option<Vec<u8>>,
    /// The port before decoding.
    pub raw_port: Option<Vec<u8>>,
}

/// `parse_uri` (src/core/uri.c), step for step: drop `##params…`, cut the fragment at
/// the first `#`, a scheme of letters, `-` and `_` before `:`, the query at the first
/// `?`, the authority after `//` up to the next `/`, user information up to the
/// *first* `@` (password after its first `:`), and the port after the *last* `:` of the
/// host unless the host ends in `]`.
pub fn parse_uri(text: &[u8]) -> Uri {
    let mut uri = Uri::default();
    let mut raw = text;
    if let Some(at) = memchr::memmem::find(raw, b"##params") {
        raw = &raw[..at];
    }
    if let Some(hash) = memchr::memchr(b'#', raw) {
        uri.efragment = Some(raw[hash + 1..].to_vec());
        raw = &raw[..hash];
    }
    let mut epath: Option<&[u8]> = Some(raw);
    for (i, &c) in raw.iter().enumerate() {
        if c.is_ascii_alphabetic() || c == b'-' || c == b'_' {
            continue;
        }
        if c != b':' {
            break;
        }
        uri.scheme = Some(raw[..i].to_vec());
        let rest = &raw[i + 1..];
        if rest.first() == Some(&b'/') {
            epath = Some(rest);
        } else {
            uri.opaque = Some(rest.to_vec());
            epath = None;
        }
        break;
    }
    if let Some(mut path) = epath {
        if let Some(question) = memchr::memchr(b'?', path) {
            uri.equery = Some(path[question + 1..].to_vec());
            path = &path[..question];
        }
        if !path.is_empty() {
            let authority = if uri.scheme.is_some() && path.starts_with(b"//") {
                let after = &path[2..];
                match memchr::memchr(b'/', after) {
                    Some(slash) => {
                        uri.epath = Some(after[slash..].to_vec());
                        Some(&after[..slash])
                    }
                    None => Some(after),
                }
            } else {
                uri.epath = Some(path.to_vec());
                None
            };
            if let Some(authority) = authority {
                uri.raw_authority = Some(authority.to_vec());
                let host = match memchr::memchr(b'@', authority) {
                    Some(at) => {
                        let userinfo = &authority[..at];
                        match memchr::memchr(b':', userinfo) {
                            Some(colon) => {
                                uri.user = Some(uri_decode(&userinfo[..colon]));
                                uri.password = Some(uri_decode(&userinfo[colon + 1..]));
                            }
                            None => uri.user = Some(uri_decode(userinfo)),
                        }
                        &authority[at + 1..]
                    }
                    None => authority,
                };
                let (host, port) = match memchr::memrchr(b':', host) {
                    Some(colon) if host.last() != Some(&b']') => {
                        (&host[..colon], Some(&host[colon + 1..]))
                    }
                    _ => (host, None),
                };
                uri.raw_host = Some(host.to_vec());
                uri.host = Some(uri_decode(host));
                uri.raw_port = port.map(<[u8]>::to_vec);
                uri.port = port.map(uri_decode);
            }
        }
    }
    if let Some(scheme) = &uri.scheme {
        uri.scheme = Some(uri_decode(scheme));
    }
    if let Some(opaque) = &uri.opaque {
        uri.opaque = Some(uri_decode(opaque));
    }
    uri
}

/// `uri_port` (src/core/uri.c) as the TCP/UDP openers use it: `strtoul(port, NULL, 0)`,
/// then truncated to 16 bits by `htons`. `None` when the URI has no port.
pub fn uri_port(port: Option<&[u8]>) -> Option<u16> {
    port.map(|port| strtoul(port, 0).0 as u16)
}

/// `inet6_aton` (src/net/ipv6.c): up to eight hex words (each read by `strtoul`, so
/// white space and a sign are taken), separated by `:`, at most one empty word (`::`)
/// after the first. No dotted IPv4 tail, no zone.
pub fn inet6_aton(text: &[u8]) -> Option<Ipv6Addr> {
    let mut words = [0u16; 8];
    let mut n_words = 0;
    let mut pad = None;
    let mut nptr = 0;
    loop {
        let (value, consumed) = strtoul(&text[nptr..], 16);
        let endptr = nptr + consumed;
        if value > 0xffff {
            return None;
        }
        words[n_words] = value as u16;
        n_words += 1;
        let Some(&separator) = text.get(endptr) else {
            break;
        };
        if separator != b':' {
            return None;
        }
        if endptr == nptr && nptr != 0 {
            if pad.is_some() {
                return None;
            }
            pad = Some(n_words);
        }
        nptr = endptr + 1;
        if n_words == words.len() {
            return None;
        }
    }
    match pad {
        Some(pad) => {
            let moved = n_words - pad;
            let gap = words.len() - n_words;
            words.copy_within(pad..n_words, pad + gap);
            words[pad..pad + gap].iter_mut().for_each(|w| *w = 0);
            debug_assert_eq!(pad + gap + moved, words.len());
        }
        None if n_words != words.len() => return None,
        None => {}
    }
    Some(Ipv6Addr::from(words))
}

/// `ipv6_sock_aton` (src/net/ipv6.c) without the device lookup: strips one surrounding
/// `[…]` (only when both are there), splits at the first `%` and reads the address with
/// [`inet6_aton`]. Returns the address and the zone (a device name for `find_netdev`).
pub fn ipv6_sock_aton(host: &[u8]) -> Option<(Ipv6Addr, Option<&[u8]>)> {
    let inner = match host {
        [b'[', inner @ .., b']'] => inner,
        _ => host,
    };
    let (address, zone) = match memchr::memchr(b'%', inner) {
        Some(percent) => (&inner[..percent], Some(&inner[percent + 1..])),
        None => (inner, None),
    };
    inet6_aton(address).map(|address| (address, zone))
}

/// Whether `find_netdev` (src/net/netdevice.c) can ever find a device by this name:
/// `netX` (the last opened device), `net<N>` as `register_netdev` names devices, or
/// `net<N>-<tag>` as `vlan_create` (src/net/vlan.c) names a VLAN device.
pub fn is_netdev_name(name: &[u8]) -> bool {
    let is_number = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if name == b"netX" {
        return true;
    }
    let Some(rest) = name.strip_prefix(b"net") else {
        return false;
    };
    match memchr::memchr(b'-', rest) {
        Some(dash) => is_number(&rest[..dash]) && is_number(&rest[dash + 1..]),
        None => is_number(rest),
    }
}

/// `IN6_IS_ADDR_LINKLOCAL` (fe80::/10) or `IN6_IS_ADDR_MULTICAST` (ff00::/8): the
/// addresses `ipv6_sock_aton` gives a scope to.
pub fn is_scoped(address: &Ipv6Addr) -> bool {
    let first = address.segments()[0];
    (first & 0xffc0) == 0xfe80 || (first & 0xff00) == 0xff00
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(text: &str) -> Option<String> {
        inet6_aton(text.as_bytes()).map(|a| a.to_string())
    }

    #[test]
    fn strtoul_follows_ipxe_not_iso_c() {
        assert_eq!(strtoul(b"8080", 0), (8080, 4));
        assert_eq!(strtoul(b"080", 0), (0, 1), "octal stops at 8");
        assert_eq!(strtoul(b"010", 0), (8, 3));
        assert_eq!(strtoul(b"0x50", 0), (80, 4));
        assert_eq!(strtoul(b"0x50", 16), (0, 1), "explicit base 16 keeps 0x");
        assert_eq!(strtoul(b" -1", 16), (u64::MAX, 3));
        assert_eq!(strtoul(b"", 0), (0, 0));
        assert_eq!(strtoul(b" z", 16), (0, 1), "end is past white space");
        assert_eq!(strtoul(b"g", 16), (0, 0));
        assert_eq!(strtoul(b"\xff", 16), (0, 0));
    }

    #[test]
    fn script_probe_wants_magic_and_one_white_space_byte() {
        assert_eq!(script_probe(b"#!ipxe\n"), Probe::Ipxe);
        assert_eq!(script_probe(b"#!ipxe\r\n"), Probe::Ipxe);
        assert_eq!(script_probe(b"#!ipxe echo"), Probe::Ipxe);
        assert_eq!(script_probe(b"#!gpxe\t"), Probe::Gpxe);
        assert_eq!(script_probe(b"#!ipxe"), Probe::TooShort);
        assert_eq!(script_probe(b""), Probe::TooShort);
        assert_eq!(script_probe(b"#!ipxe-x\n"), Probe::BadMagic);
        assert_eq!(script_probe(b"#!iPXE\n"), Probe::BadMagic);
        assert_eq!(script_probe(b"\n#!ipxe\n"), Probe::BadMagic);
        assert_eq!(script_probe(b"#!pxe\nboot\n"), Probe::BadMagic);
    }

    fn texts(script: &[u8]) -> Vec<(usize, usize, String)> {
        process_script(script)
            .lines
            .into_iter()
            .map(|l| (l.first, l.last, String::from_utf8(l.text).unwrap()))
            .collect()
    }

    #[test]
    fn process_script_strips_one_cr_and_joins_continuations() {
        assert_eq!(
            texts(b"#!ipxe\r\necho a\r\r\nb"),
            [
                (1, 1, "#!ipxe".into()),
                (2, 2, "echo a\r".into()),
                (3, 3, "b".into())
            ]
        );
        assert_eq!(
            texts(b"#!ipxe\nkernel x \\\r\n  y\\\nz\necho\n"),
            [
                (1, 1, "#!ipxe".into()),
                (2, 4, "kernel x   yz".into()),
                (5, 5, "echo".into())
            ]
        );
        let lines = process_script(b"#!ipxe\necho a \\\n");
        assert_eq!(lines.unfinished, Some(2));
        assert_eq!(lines.lines.len(), 1);
        assert_eq!(process_script(b"#!ipxe\necho \\\n\n").unfinished, None);
        assert!(process_script(b"#!ipxe\n").lines.iter().all(|l| !l.crlf));
    }

    #[test]
    fn labels_and_commands_split_as_ipxe_splits_them() {
        assert_eq!(split_label(b"  :menu"), (Some(&b"menu"[..]), &b""[..]));
        assert_eq!(
            split_label(b":a echo hi"),
            (Some(&b"a"[..]), &b"echo hi"[..])
        );
        assert_eq!(split_label(b" echo"), (None, &b"echo"[..]));
        let cmds = commands(b"isset ${x} || goto a && echo b ; echo c # d || e");
        let shape: Vec<_> = cmds.iter().map(|c| (c.condition, c.tokens.len())).collect();
        assert_eq!(
            shape,
            [
                (Condition::Always, 2),
                (Condition::OnFailure, 2),
                (Condition::OnSuccess, 2),
                (Condition::Always, 2)
            ]
        );
        assert!(commands(b"#!ipxe").is_empty());
        assert_eq!(commands(b"echo a#b")[0].tokens, [&b"echo"[..], &b"a#b"[..]]);
    }

    #[test]
    fn expand_settings_expands_innermost_first_and_keeps_unterminated() {
        let lookup = |name: &[u8]| match name {
            b"a" => Some(b"b".to_vec()),
            b"xb" => Some(b"ok".to_vec()),
            _ => None,
        };
        assert_eq!(&*expand_settings(b"${x${a}}", lookup).unwrap(), b"ok");
        assert_eq!(&*expand_settings(b"p${q}r", lookup).unwrap(), b"p\0r");
        assert_eq!(&*expand_settings(b"${a", lookup).unwrap(), b"${a");
        let dollar = |name: &[u8]| (name == b"d").then(|| b"${d}".to_vec());
        assert_eq!(expand_settings(b"${d}", dollar), None);
    }

    #[test]
    fn uri_decode_mirrors_strtoul_quirks() {
        assert_eq!(uri_decode(b"%25net0"), b"%net0");
        assert_eq!(uri_decode(b"%net0"), b"%net0");
        assert_eq!(uri_decode(b"%2"), [2]);
        assert_eq!(uri_decode(b"%eth0"), b"\x0eth0");
        assert_eq!(uri_decode(b"a%00b"), b"a");
        assert_eq!(uri_decode(b"%"), b"%");
    }

    fn field(f: &Option<Vec<u8>>) -> Option<&str> {
        f.as_deref().map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn parse_uri_matches_ipxe_uri_test_vectors() {
        // src/tests/uri_test.c: uri_http_all, uri_ipv6_port, uri_ipv6_local(_non_conforming).
        let u = parse_uri(b"http://anon:password@example.com:3001/~foo/cgi-bin/foo.pl?a=b&c=d#bit");
        assert_eq!(field(&u.scheme), Some("http"));
        assert_eq!(field(&u.user), Some("anon"));
        assert_eq!(field(&u.password), Some("password"));
        assert_eq!(field(&u.host), Some("example.com"));
        assert_eq!(field(&u.port), Some("3001"));
        assert_eq!(field(&u.epath), Some("/~foo/cgi-bin/foo.pl"));
        assert_eq!(field(&u.equery), Some("a=b&c=d"));
        assert_eq!(field(&u.efragment), Some("bit"));
        let u = parse_uri(b"http://[2001:ba8:0:1d4::6950:5845]:8001/boot");
        assert_eq!(field(&u.host), Some("[2001:ba8:0:1d4::6950:5845]"));
        assert_eq!(field(&u.port), Some("8001"));
        for text in [
            &b"http://[fe80::69ff:fe50:5845%25net0]/ipxe"[..],
            b"http://[fe80::69ff:fe50:5845%net0]/ipxe",
        ] {
            let u = parse_uri(text);
            assert_eq!(field(&u.host), Some("[fe80::69ff:fe50:5845%net0]"));
            assert_eq!(u.port, None);
        }
        let u = parse_uri(b"https://test%2eipxe.org/wt%66%3f\n?kind%23of/uri is#this?");
        assert_eq!(field(&u.host), Some("test.ipxe.org"));
        let u = parse_uri(b"iscsi:10.253.253.1::::iqn.2010-04.org.ipxe:rabbit");
        assert_eq!(
            field(&u.opaque),
            Some("10.253.253.1::::iqn.2010-04.org.ipxe:rabbit")
        );
        assert_eq!(u.host, None);
        let u = parse_uri(b"/boot/52:54:00:12:34:56/boot.ipxe");
        assert_eq!((u.scheme, u.host), (None, None));
        let u = parse_uri(b"http://boot.ipxe.org");
        assert_eq!(field(&u.host), Some("boot.ipxe.org"));
        let u = parse_uri(b"http://192.168.100.4:3001/register##params=foo");
        assert_eq!(field(&u.port), Some("3001"));
    }

    #[test]
    fn parse_uri_misreads_unbracketed_literals_and_second_at() {
        let u = parse_uri(b"http://2001:db8::1/x");
        assert_eq!(field(&u.host), Some("2001:db8:"));
        assert_eq!(field(&u.port), Some("1"));
        let u = parse_uri(b"http://u:p@ss@host/");
        assert_eq!(field(&u.host), Some("ss@host"));
        let u = parse_uri(b"http://h?q=[::1]:80");
        assert_eq!(field(&u.host), Some("h"));
    }

    #[test]
    fn inet6_aton_accepts_what_ipxe_accepts() {
        assert_eq!(v6("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(v6("::").as_deref(), Some("::"));
        assert_eq!(v6("::1").as_deref(), Some("::1"));
        assert_eq!(v6("1::").as_deref(), Some("1::"));
        assert_eq!(v6("1:2:3:4:5:6:7:8").as_deref(), Some("1:2:3:4:5:6:7:8"));
        assert_eq!(v6(":1:2:3:4:5:6:7").as_deref(), Some("0:1:2:3:4:5:6:7"));
        assert_eq!(v6("1:2:3:4:5:6:7:").as_deref(), Some("1:2:3:4:5:6:7:0"));
        assert_eq!(v6("0001:0db8::0001").as_deref(), Some("1:db8::1"));
        assert_eq!(v6("::ffff:192.0.2.1"), None, "no dotted tail");
        assert_eq!(v6("1:2"), None);
        assert_eq!(v6(":::"), None);
        assert_eq!(v6("1::2::3"), None);
        assert_eq!(v6("1:2:3:4:5:6:7:8:9"), None);
        assert_eq!(v6("12345::"), None);
        assert_eq!(v6(""), None);
        assert_eq!(v6("fe80::1%net0"), None);
        assert_eq!(v6("g::1"), None);
    }

    #[test]
    fn ipv6_sock_aton_strips_brackets_and_splits_the_zone() {
        let (addr, zone) = ipv6_sock_aton(b"[fe80::1%net0]").unwrap();
        assert_eq!(
            (addr.to_string(), zone),
            ("fe80::1".into(), Some(&b"net0"[..]))
        );
        assert!(ipv6_sock_aton(b"2001:db8::1").is_some());
        assert!(ipv6_sock_aton(b"[2001:db8::1").is_none());
        assert!(is_scoped(&"fe80::1".parse().unwrap()));
        assert!(is_scoped(&"ff02::1".parse().unwrap()));
        assert!(!is_scoped(&"2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn netdev_names_are_net_n_net_x_and_vlans() {
        for ok in ["net0", "net12", "netX", "net0-42"] {
            assert!(is_netdev_name(ok.as_bytes()), "{ok}");
        }
        for bad in ["eth0", "net", "net0-", "1", "net-1", "NET0", ""] {
            assert!(!is_netdev_name(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn uri_port_reads_octal_hex_and_truncates() {
        assert_eq!(uri_port(Some(b"8080")), Some(8080));
        assert_eq!(uri_port(Some(b"080")), Some(0));
        assert_eq!(uri_port(Some(b"010")), Some(8));
        assert_eq!(uri_port(Some(b"0x50")), Some(80));
        assert_eq!(uri_port(Some(b"65616")), Some(80));
        assert_eq!(uri_port(Some(b"")), Some(0));
        assert_eq!(uri_port(None), None);
    }
}

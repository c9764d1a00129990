//! URL checks for the config's boot URLs (scripts are checked by the script lint, `crate::script::uri`).

use core::net::Ipv6Addr;

/// Checks a boot URL: a scheme iPXE or UEFI can fetch, and IPv6 literals in brackets.
///
/// iPXE (and every URL parser) reads `http://2001:db8::1/x` as host `2001` with a
/// bad port, so an unbracketed literal never works; it must be `http://[2001:db8::1]/x`.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "`{url}` is not an absolute URL (iPXE needs scheme://host/path)"
        ));
    };
    if !matches!(scheme, "http" | "https" | "tftp") {
        return Err(format!(
            "`{url}` has scheme `{scheme}`; use http, https or tftp"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if let Some(inside) = authority.strip_prefix('[') {
        let Some((literal, after)) = inside.split_once(']') else {
            return Err(format!("`{url}` opens `[` but never closes it"));
        };
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{literal}` in `{url}` is not an IPv6 address"));
        }
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return Err(format!("`{url}` has a bad port after `]`"));
        }
    } else if authority.matches(':').count() > 1 {
        return Err(format!(
            "`{url}` has an IPv6 address without brackets; write it as {scheme}://[ADDRESS]/…"
        ));
    } else if let Some((_, port)) = authority.split_once(':') {
        if !is_port(port) {
            return Err(format!("`{url}` has a bad port `{port}`"));
        }
    }
    Ok(())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.parse::<u16>().is_ok()
}

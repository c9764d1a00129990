//! Kernel command-line rules: what an installer will misread in the arguments iPXE
//! passes to the image (`kernel URL ARGS…`, `chain URL ARGS…`, `imgargs IMAGE ARGS…`).
//!
//! iPXE does not parse these arguments, so these rules have installer authority (see
//! [`super::rules::Authority`]): every `scheme://` URL anywhere in an argument is checked
//! by [`super::uri::check_installer_url`], and parameters whose value names a server
//! without a `scheme://` are rows of [`KERNEL_PARAMS`]. Adding a parameter is one row:
//! its key, the kind of value (add a [`ValueKind`] variant with its check when no
//! existing one fits), the rule it reports and the document that defines it.

use super::ipxe::UNKNOWN;
use super::rules::{self, Rule};
use super::uri::{self, show};

/// How a parameter's value names a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A URL whose scheme may be left out, the installer then assuming `http://`
    /// (d-i's `url=example.com/./d-i/bookworm/./preseed.cfg`).
    UrlDefaultHttp,
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

/// The parameters the lint knows. Issue 21 adds Anaconda's and dracut's (`ip=`).
pub const KERNEL_PARAMS: &[KernelParam] = &[
    KernelParam {
        key: "url",
        value: ValueKind::UrlDefaultHttp,
        rule: &rules::KERNEL_PARAM_HOST,
        source: "debian-installer, Installation Guide appendix B.2 (preseeding: `url` is the alias of preseed/url; without a scheme it means http)",
    },
    KernelParam {
        key: "preseed/url",
        value: ValueKind::UrlDefaultHttp,
        rule: &rules::KERNEL_PARAM_HOST,
        source: "debian-installer, Installation Guide appendix B.2 (preseeding)",
    },
];

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
    findings
}

fn check_value(kind: ValueKind, value: &[u8]) -> Option<String> {
    match kind {
        ValueKind::UrlDefaultHttp => {
            if memchr::memmem::find(value, b"://").is_some() || value.contains(&UNKNOWN) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Vec<&'static str> {
        check_args(args).iter().map(|f| f.rule.name).collect()
    }

    #[test]
    fn urls_anywhere_in_an_argument_need_brackets() {
        assert!(names(&["inst.ks=http://[2001:db8::1]/ks", "console=ttyS0"]).is_empty());
        assert_eq!(
            names(&["inst.ks=http://2001:db8::1/ks"]),
            ["installer-url-ipv6"]
        );
        assert_eq!(
            names(&["inst.repo=http://[2001:db8::1/os"]),
            ["installer-url-ipv6"]
        );
        assert!(names(&["inst.ks=http://\0/ks"]).is_empty());
    }

    #[test]
    fn debian_installer_url_without_scheme_is_a_table_row() {
        assert!(names(&["url=[2001:db8::1]/preseed.cfg"]).is_empty());
        assert!(names(&["url=example.com/./preseed.cfg"]).is_empty());
        assert_eq!(
            names(&["url=2001:db8::1/preseed.cfg"]),
            ["kernel-param-host"]
        );
        assert_eq!(names(&["preseed/url=fe80::1/p"]), ["kernel-param-host"]);
        assert_eq!(names(&["url=http://2001:db8::1/p"]), ["installer-url-ipv6"]);
        let message = &check_args(&["url=2001:db8::1/p"])[0].message;
        assert!(message.contains("Installation Guide"), "{message}");
    }
}

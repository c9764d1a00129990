//! iPXE scripts and kickstarts: the lint that guards every script we serve, and the
//! templates that produce them.
//!
//! A script whose first line is not exactly `#!ipxe` makes iPXE treat it as some other
//! image type and fail without saying why, and a URL with a bare IPv6 literal
//! (`http://2001:db8::1/x`) is read as host `2001` with a bad port. [`lint`] catches
//! both. [`Templates`] renders a host's script and kickstart with minijinja; the boot
//! server renders and lints every configured host at start-up ([`Templates::check`]),
//! so that a broken template stops it before anything broken is served. Nothing here
//! does I/O except [`Templates::load`], which reads the template files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{check_url, Config, Host};

/// The built-in iPXE script template, used when `http.script_template` is not set.
pub const DEFAULT_SCRIPT_TEMPLATE: &str = include_str!("../examples/templates/ipxe.j2");
/// The built-in kickstart template, used when `http.kickstart_template` is not set.
pub const DEFAULT_KICKSTART_TEMPLATE: &str = include_str!("../examples/templates/ks.j2");

/// One thing wrong with a script, at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintProblem {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LintProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Checks an iPXE script the way iPXE will read it; an empty result means it is fine.
///
/// iPXE's `script.c` recognises a script only by its first bytes being `#!ipxe`
/// (`#!gpxe` is an old alias we do not hand out). Everything after that line is
/// checked for URLs whose IPv6 literal lacks brackets, kernel command lines included.
pub fn lint(bytes: &[u8]) -> Vec<LintProblem> {
    let mut problems = Vec::new();
    let mut text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let line = bytes[..err.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            problems.push(LintProblem {
                line,
                message: "the script is not valid UTF-8".into(),
            });
            return problems;
        }
    };
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        problems.push(LintProblem {
            line: 1,
            message: "the script starts with a byte-order mark (EF BB BF); iPXE needs `#!ipxe` \
                      as the very first bytes: save it as UTF-8 without BOM"
                .into(),
        });
        text = rest;
    }
    let first = text.split('\n').next().unwrap_or("");
    if text.is_empty() {
        problems.push(LintProblem {
            line: 1,
            message: "the script is empty; its first line must be `#!ipxe`".into(),
        });
    } else if first.trim().is_empty() && text.trim_start().starts_with("#!") {
        let line = text.len() - text.trim_start().len();
        let line = text[..line].matches('\n').count() + 1;
        problems.push(LintProblem {
            line: 1,
            message: format!(
                "blank line before the `#!` line (found on line {line}); iPXE needs `#!ipxe` \
                 on line 1"
            ),
        });
    } else if first.trim_end() == "#!pxe" || first.trim_end() == "#!gpxe" {
        problems.push(LintProblem {
            line: 1,
            message: format!("first line is `{}`; iPXE needs `#!ipxe`", first.trim_end()),
        });
    } else if first != "#!ipxe" {
        let message = if first.trim_end() == "#!ipxe" {
            if first.ends_with('\r') {
                "first line ends in CR (a DOS line ending); write `#!ipxe` with Unix line endings"
                    .to_owned()
            } else {
                "first line has trailing whitespace; it must be exactly `#!ipxe`".to_owned()
            }
        } else {
            format!(
                "first line is `{}`; it must be exactly `#!ipxe`",
                first.trim_end().chars().take(40).collect::<String>()
            )
        };
        problems.push(LintProblem { line: 1, message });
    }
    problems.extend(lint_urls(text));
    problems
}

/// Checks only the URLs in a text (a kickstart, say): every IPv6 literal in brackets.
pub fn lint_urls(text: &str) -> Vec<LintProblem> {
    let mut problems = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        for url in urls_in(line) {
            if let Err(message) = check_url(url) {
                problems.push(LintProblem {
                    line: i + 1,
                    message,
                });
            }
        }
    }
    problems
}

/// The URLs in one line: `http://`, `https://` and `tftp://` up to whitespace or a
/// quote. URLs whose host is an iPXE setting (`http://${next-server}/…`) are skipped,
/// since only iPXE knows their value.
fn urls_in(line: &str) -> impl Iterator<Item = &str> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(at) = line[from..].find("://") {
            let colon = from + at;
            from = colon + 3;
            let scheme_start = line[..colon]
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |i| i + 1);
            let scheme = &line[scheme_start..colon];
            if !matches!(scheme, "http" | "https" | "tftp") {
                continue;
            }
            let end = line[from..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
                .map_or(line.len(), |e| from + e);
            from = end;
            let url = &line[scheme_start..end];
            let authority = url[scheme.len() + 3..].split(['/', '?', '#']).next();
            if authority.is_some_and(|a| a.contains("${") || a.contains("{{")) {
                continue;
            }
            return Some(url);
        }
        None
    })
}

/// Why a template could not be loaded or rendered into a servable document.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {name}: {message}")]
    Syntax { name: String, message: String },
    #[error("template {name} fails for host {host}: {message}")]
    Render {
        name: String,
        host: String,
        message: String,
    },
    #[error(
        "template {name} renders a script for host {host} that iPXE cannot use: {}",
        join(problems)
    )]
    Lint {
        name: String,
        host: String,
        problems: Vec<LintProblem>,
    },
}

fn join(problems: &[LintProblem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a template sees for one host. `vars` holds the host's free-form variables,
/// which are also available at the top level unless they collide with a fixed name.
#[derive(Debug, Clone, Serialize)]
pub struct HostContext {
    pub name: String,
    /// `52:54:00:12:34:56`
    pub mac: String,
    /// `52-54-00-12-34-56`
    pub mac_hyphenated: String,
    /// The fixed address, or empty.
    pub address: String,
    /// The server's base URL without a trailing slash, e.g. `http://[2001:db8:1::1]`.
    pub base_url: String,
    /// `vars.kernel_args`, or empty.
    pub kernel_args: String,
    /// `{base_url}/ks/{mac_hyphenated}`
    pub ks_url: String,
    /// `{base_url}/done/{mac_hyphenated}`
    pub done_url: String,
    /// `{base_url}/files`
    pub files_url: String,
    /// The per-install token that `ks_url` and `done_url` end in (empty when the
    /// context was built without one, as for `config check`).
    pub install_token: String,
    pub vars: toml::Value,
}

impl HostContext {
    /// The context for one host as served from `base_url`.
    pub fn new(host: &Host, base_url: &str) -> HostContext {
        let mac_hyphenated = host.mac.hyphenated();
        let kernel_args = match host.vars.get("kernel_args") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        HostContext {
            name: host.name.clone(),
            mac: host.mac.to_string(),
            address: host.address.map(|a| a.to_string()).unwrap_or_default(),
            base_url: base_url.to_owned(),
            kernel_args,
            ks_url: format!("{base_url}/ks/{mac_hyphenated}"),
            done_url: format!("{base_url}/done/{mac_hyphenated}"),
            files_url: format!("{base_url}/files"),
            install_token: String::new(),
            mac_hyphenated,
            vars: toml::Value::Table(host.vars.clone().into_iter().collect()),
        }
    }

    /// The same context for one install: `ks_url` and `done_url` end in
    /// `/{token}`, which the server checks before it serves the kickstart or takes
    /// `/done`.
    pub fn with_install_token(mut self, token: &str) -> HostContext {
        self.ks_url = format!("{}/{token}", self.ks_url);
        self.done_url = format!("{}/{token}", self.done_url);
        self.install_token = token.to_owned();
        self
    }

    fn to_value(&self) -> minijinja::Value {
        let mut map: std::collections::BTreeMap<String, minijinja::Value> = self
            .vars
            .as_table()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), minijinja::Value::from_serialize(v)))
            .collect();
        let fixed = minijinja::Value::from_serialize(self);
        if let Ok(keys) = fixed.try_iter() {
            for key in keys {
                if let Ok(value) = fixed.get_item(&key) {
                    map.insert(key.to_string(), value);
                }
            }
        }
        minijinja::Value::from(map)
    }
}

/// The two compiled templates and the base URL they are rendered with.
#[derive(Debug)]
pub struct Templates {
    env: minijinja::Environment<'static>,
    base_url: String,
}

const SCRIPT: &str = "script";
const KICKSTART: &str = "kickstart";

impl Templates {
    /// Compiles templates from source text.
    pub fn new(script: &str, kickstart: &str, base_url: &str) -> Result<Templates, TemplateError> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        for (name, source) in [(SCRIPT, script), (KICKSTART, kickstart)] {
            env.add_template_owned(name, source.to_owned())
                .map_err(|err| TemplateError::Syntax {
                    name: name.to_owned(),
                    message: describe(&err),
                })?;
        }
        Ok(Templates {
            env,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Reads the templates a config names (or the built-in ones) and compiles them.
    pub fn load(config: &Config) -> Result<Templates, TemplateError> {
        let read = |path: &Option<PathBuf>, default: &str| match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
                path: path.clone(),
                source,
            }),
            None => Ok(default.to_owned()),
        };
        let script = read(&config.http.script_template, DEFAULT_SCRIPT_TEMPLATE)?;
        let kickstart = read(&config.http.kickstart_template, DEFAULT_KICKSTART_TEMPLATE)?;
        let script_name = template_name(&config.http.script_template, "script");
        let kickstart_name = template_name(&config.http.kickstart_template, "kickstart");
        Templates::new(&script, &kickstart, &base_url(config)).map_err(|err| match &err {
            TemplateError::Syntax { name, .. } if name == KICKSTART => rename(err, &kickstart_name),
            _ => rename(err, &script_name),
        })
    }

    /// Renders every host's script and kickstart and lints them: the start-up check
    /// that makes sure nothing broken is ever served. Returns every failure.
    pub fn check(&self, config: &Config) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        let script_name = template_name(&config.http.script_template, "script");
        let kickstart_name = template_name(&config.http.kickstart_template, "kickstart");
        for host in &config.hosts {
            if let Err(err) = self.script(host) {
                errors.push(rename(err, &script_name));
            }
            if let Err(err) = self.kickstart(host) {
                errors.push(rename(err, &kickstart_name));
            }
        }
        errors
    }

    /// Builds a host's template context once, so that serving it only renders.
    pub fn prepare(&self, host: &Host) -> PreparedHost {
        PreparedHost {
            name: host.name.clone(),
            context: HostContext::new(host, &self.base_url).to_value(),
        }
    }

    /// [`Templates::prepare`] for one install: the URLs carry the install token.
    pub fn prepare_install(&self, host: &Host, token: &str) -> PreparedHost {
        PreparedHost {
            name: host.name.clone(),
            context: HostContext::new(host, &self.base_url)
                .with_install_token(token)
                .to_value(),
        }
    }

    /// The host's iPXE script, rendered and linted.
    pub fn script(&self, host: &Host) -> Result<String, TemplateError> {
        self.script_prepared(&self.prepare(host))
    }

    /// The host's kickstart, rendered, its URLs checked.
    pub fn kickstart(&self, host: &Host) -> Result<String, TemplateError> {
        self.kickstart_prepared(&self.prepare(host))
    }

    /// [`Templates::script`] with a context from [`Templates::prepare`].
    pub fn script_prepared(&self, host: &PreparedHost) -> Result<String, TemplateError> {
        let text = self.render(SCRIPT, host)?;
        let problems = lint(text.as_bytes());
        if problems.is_empty() {
            Ok(text)
        } else {
            Err(TemplateError::Lint {
                name: SCRIPT.into(),
                host: host.name.clone(),
                problems,
            })
        }
    }

    /// [`Templates::kickstart`] with a context from [`Templates::prepare`].
    pub fn kickstart_prepared(&self, host: &PreparedHost) -> Result<String, TemplateError> {
        let text = self.render(KICKSTART, host)?;
        let problems = lint_urls(&text);
        if problems.is_empty() {
            Ok(text)
        } else {
            Err(TemplateError::Lint {
                name: KICKSTART.into(),
                host: host.name.clone(),
                problems,
            })
        }
    }

    fn render(&self, name: &str, host: &PreparedHost) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(&host.context))
            .map_err(|err| TemplateError::Render {
                name: name.to_owned(),
                host: host.name.clone(),
                message: describe(&err),
            })
    }
}

/// A host's template context, built once at start-up.
#[derive(Debug, Clone)]
pub struct PreparedHost {
    name: String,
    context: minijinja::Value,
}

/// The base URL templates use: `http.base_url`, else the first listen address.
pub fn base_url(config: &Config) -> String {
    if let Some(url) = &config.http.base_url {
        return url.clone();
    }
    match config.http.listen.first() {
        Some(addr) if addr.port() == 80 => format!("http://{}", bracket(addr.ip())),
        Some(addr) => format!("http://{}:{}", bracket(addr.ip()), addr.port()),
        None => "http://localhost".to_owned(),
    }
}

fn bracket(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}

fn template_name(path: &Option<PathBuf>, kind: &str) -> String {
    path.as_ref().map_or_else(
        || format!("built-in {kind} template"),
        |p| p.display().to_string(),
    )
}

/// minijinja's error with its line, in one line.
fn describe(err: &minijinja::Error) -> String {
    let mut text = err.kind().to_string();
    if let Some(detail) = err.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = err.line() {
        text = format!("line {line}: {text}");
    }
    text
}

/// Puts the template's file name in place of its internal name.
fn rename(err: TemplateError, file: &str) -> TemplateError {
    match err {
        TemplateError::Syntax { message, .. } => TemplateError::Syntax {
            name: file.to_owned(),
            message,
        },
        TemplateError::Render { host, message, .. } => TemplateError::Render {
            name: file.to_owned(),
            host,
            message,
        },
        TemplateError::Lint { host, problems, .. } => TemplateError::Lint {
            name: file.to_owned(),
            host,
            problems,
        },
        other => other,
    }
}

/// Lints a script file; `Err` only when it cannot be read.
pub fn lint_file(path: &Path) -> std::io::Result<Vec<LintProblem>> {
    Ok(lint(&std::fs::read(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(script: &str) -> Vec<String> {
        lint(script.as_bytes())
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn accepts_a_plain_script_with_bracketed_urls() {
        let script =
            "#!ipxe\nkernel http://[2001:db8::1]/vmlinuz inst.ks=http://[2001:db8::1]/ks/x\nboot\n";
        assert!(messages(script).is_empty(), "{:?}", messages(script));
    }

    #[test]
    fn rejects_a_byte_order_mark() {
        let m = messages("\u{feff}#!ipxe\nboot\n");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("byte-order mark"), "{m:?}");
    }

    #[test]
    fn rejects_a_blank_line_before_the_magic() {
        let m = messages("\n#!ipxe\nboot\n");
        assert!(
            m[0].contains("blank line") && m[0].contains("line 2"),
            "{m:?}"
        );
        let m = messages("   \n\n#!ipxe\n");
        assert!(m[0].contains("line 3"), "{m:?}");
    }

    #[test]
    fn rejects_pxe_and_gpxe_magic() {
        assert!(messages("#!pxe\nboot\n")[0].contains("`#!pxe`"));
        assert!(messages("#!gpxe\nboot\n")[0].contains("`#!gpxe`"));
    }

    #[test]
    fn rejects_crlf_and_trailing_space_on_the_first_line() {
        assert!(messages("#!ipxe\r\nboot\r\n")[0].contains("CR"));
        assert!(messages("#!ipxe \nboot\n")[0].contains("trailing whitespace"));
    }

    #[test]
    fn rejects_a_script_without_magic_or_empty() {
        assert!(messages("kernel x\n")[0].contains("must be exactly `#!ipxe`"));
        assert!(messages("")[0].contains("empty"));
        assert!(lint(b"#!ipxe\n\xff\n")[0].message.contains("UTF-8"));
    }

    #[test]
    fn rejects_unbracketed_ipv6_urls_with_their_line() {
        let m = messages("#!ipxe\nkernel http://[2001:db8::1]/k inst.ks=http://2001:db8::1/ks\n");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("line 2:") && m[0].contains("without brackets"),
            "{m:?}"
        );
        let m = messages("#!ipxe\nchain tftp://2001:db8::1/x.efi\n");
        assert!(m[0].contains("without brackets"), "{m:?}");
    }

    #[test]
    fn skips_urls_whose_host_is_an_ipxe_setting() {
        assert!(messages("#!ipxe\nchain http://${next-server}/boot\n").is_empty());
        assert!(messages("#!ipxe\nchain http://[${ip6}]/boot\n").is_empty());
    }

    fn host() -> Host {
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("kernel_args".into(), toml::Value::from("console=ttyS0"));
        vars.insert("disk".into(), toml::Value::from("sda"));
        Host {
            mac: "52:54:00:12:34:56".parse().unwrap(),
            name: "node1".into(),
            address: Some("2001:db8:1::10".parse().unwrap()),
            install: true,
            vars,
        }
    }

    #[test]
    fn renders_host_variables_at_top_level_and_under_vars() {
        let t = Templates::new(
            "#!ipxe\necho {{ name }} {{ mac }} {{ address }} {{ disk }} {{ vars.disk }} {{ kernel_args }}\n",
            "url {{ ks_url }}\n",
            "http://[2001:db8:1::1]/",
        )
        .unwrap();
        assert_eq!(
            t.script(&host()).unwrap(),
            "#!ipxe\necho node1 52:54:00:12:34:56 2001:db8:1::10 sda sda console=ttyS0\n"
        );
        assert_eq!(
            t.kickstart(&host()).unwrap(),
            "url http://[2001:db8:1::1]/ks/52-54-00-12-34-56\n"
        );
    }

    #[test]
    fn an_undefined_variable_is_an_error_naming_the_host() {
        let t = Templates::new("#!ipxe\necho {{ nope }}\n", "", "http://x").unwrap();
        let err = t.script(&host()).unwrap_err().to_string();
        assert!(err.contains("node1") && err.contains("undefined"), "{err}");
    }

    #[test]
    fn a_template_rendering_a_bad_script_is_rejected() {
        let t = Templates::new("\n#!ipxe\n", "", "http://x").unwrap();
        let err = t.script(&host()).unwrap_err().to_string();
        assert!(err.contains("blank line"), "{err}");
        let t = Templates::new("#!ipxe\nchain http://{{ address }}/x\n", "", "http://x").unwrap();
        let err = t.script(&host()).unwrap_err().to_string();
        assert!(err.contains("without brackets"), "{err}");
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        let err = Templates::new("#!ipxe\n{% if %}\n", "", "http://x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}

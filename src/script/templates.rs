//! The templates that produce every host's iPXE script and kickstart (minijinja, strict
//! undefined), and the start-up check that renders and lints them all.
//!
//! A rendered script is served only when [`super::lint`] finds no error in it;
//! warnings never stop start-up or a request ([`Templates::check_host`] collects them
//! so `config check` and the server log can show them). Which templates a host gets
//! (its installer family's, from a file or built in) is `crate::installer`'s business.
//! Nothing here does I/O.

use std::path::PathBuf;

use serde::Serialize;

use super::lint::{errors, lint, lint_urls, LintProblem};
use crate::config::{Config, Host};

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

/// What the start-up check ([`Templates::check_host`] for every host) found: errors
/// (start-up fails) and warnings.
#[derive(Debug, Default)]
pub struct TemplateReport {
    pub errors: Vec<TemplateError>,
    pub warnings: Vec<TemplateWarning>,
}

impl TemplateReport {
    fn add_warning(&mut self, template: &str, host: &str, problem: LintProblem) {
        let same = self
            .warnings
            .iter_mut()
            .find(|w| w.template == template && w.problem == problem);
        match same {
            Some(warning) => warning.hosts.push(host.to_owned()),
            None => self.warnings.push(TemplateWarning {
                template: template.to_owned(),
                hosts: vec![host.to_owned()],
                problem,
            }),
        }
    }
}

/// A lint warning in a rendered script: iPXE runs it, but not as one might expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateWarning {
    /// The template's file name, or "built-in script template".
    pub template: String,
    /// The hosts whose rendered script has it (in config order).
    pub hosts: Vec<String>,
    pub problem: LintProblem,
}

impl std::fmt::Display for TemplateWarning {
    /// `template T, host a (and 2 more): line 1: warning[magic-gpxe]: …`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let more = match self.hosts.len() {
            0 | 1 => String::new(),
            n => format!(
                " (and {} more host{})",
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        };
        write!(
            f,
            "template {}, host {}{more}: {}",
            self.template,
            self.hosts.first().map_or("?", String::as_str),
            self.problem
        )
    }
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

    /// Renders one host's script and kickstart and lints them into `report`, under the
    /// template names `script_name` and `kickstart_name` (file names, or "built-in …"):
    /// lint errors and render failures as errors, the script's lint warnings once per
    /// template line with the hosts they apply to. The start-up check that makes sure
    /// nothing broken is ever served (`installer::Catalog::check_report` calls it for
    /// every host with the host's installer family).
    pub fn check_host(
        &self,
        host: &Host,
        script_name: &str,
        kickstart_name: &str,
        report: &mut TemplateReport,
    ) {
        let prepared = self.prepare(host);
        match self.script_linted(&prepared) {
            Ok((_, warnings)) => {
                for problem in warnings {
                    report.add_warning(script_name, &host.name, problem);
                }
            }
            Err(err) => report.errors.push(rename(err, script_name)),
        }
        if let Err(err) = self.kickstart_prepared(&prepared) {
            report.errors.push(rename(err, kickstart_name));
        }
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

    /// [`Templates::script`] with a context from [`Templates::prepare`]: the rendered
    /// script when the lint finds no error in it (warnings are ignored here).
    pub fn script_prepared(&self, host: &PreparedHost) -> Result<String, TemplateError> {
        self.script_linted(host).map(|(text, _)| text)
    }

    /// Renders and lints: the text and its warnings, or the errors.
    fn script_linted(
        &self,
        host: &PreparedHost,
    ) -> Result<(String, Vec<LintProblem>), TemplateError> {
        let text = self.render(SCRIPT, host)?;
        let problems = lint(text.as_bytes());
        let errors = errors(&problems);
        if errors.is_empty() {
            Ok((text, problems))
        } else {
            Err(TemplateError::Lint {
                name: SCRIPT.into(),
                host: host.name.clone(),
                problems: errors,
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

fn bracket(ip: core::net::IpAddr) -> String {
    match ip {
        core::net::IpAddr::V6(v6) => format!("[{v6}]"),
        core::net::IpAddr::V4(v4) => v4.to_string(),
    }
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
pub(crate) fn rename(err: TemplateError, file: &str) -> TemplateError {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("kernel_args".into(), toml::Value::from("console=ttyS0"));
        vars.insert("disk".into(), toml::Value::from("sda"));
        Host {
            mac: "52:54:00:12:34:56".parse().unwrap(),
            name: "node1".into(),
            address: Some("2001:db8:1::10".parse().unwrap()),
            install: true,
            installer: "anaconda".into(),
            vars,
            bmc: None,
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

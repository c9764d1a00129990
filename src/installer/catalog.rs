//! The compiled templates of every installer family a config uses, and which family
//! serves which host.
//!
//! One [`Templates`] per family (its script and answer-file templates, from the config's
//! files or built in); a host is rendered with its own family's. [`Catalog::load`] reads
//! the template files; everything else renders and lints in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::built_in;
use crate::config::{Config, Host};
use crate::mac::Mac;
use crate::script::{self, rename, PreparedHost, TemplateError, TemplateReport, Templates};

/// One family's compiled templates and the names its errors are reported under.
#[derive(Debug)]
struct Family {
    templates: Templates,
    script_name: String,
    answer_name: String,
}

/// Every family's templates, and each host's family.
#[derive(Debug)]
pub struct Catalog {
    families: BTreeMap<String, Family>,
    host_family: HashMap<Mac, String>,
    default: String,
}

/// A host prepared for serving: its family and its template context.
#[derive(Debug, Clone)]
pub struct PreparedInstall {
    family: String,
    host: PreparedHost,
}

impl Catalog {
    /// Reads and compiles the templates of every built-in and configured family (built-in
    /// unless `[installers.NAME]` or `http.*_template` names a file). Fails on the first
    /// file that cannot be read or compiled, naming it.
    pub fn load(config: &Config) -> Result<Catalog, TemplateError> {
        let base_url = script::base_url(config);
        // Every built-in and configured family, not only those config hosts use: hosts
        // added later through the API or CLI may name any of them.
        let mut used: Vec<&str> = super::BUILT_IN.iter().map(|f| f.name).collect();
        used.extend(config.installers.families.keys().map(String::as_str));
        used.extend(config.hosts.iter().map(|h| h.installer.as_str()));
        used.push(&config.installers.default);
        used.sort_unstable();
        used.dedup();
        let mut families = BTreeMap::new();
        for name in used {
            let files = config.installers.families.get(name);
            let builtin = built_in(name);
            let pick = |path: Option<&PathBuf>,
                        text: Option<&'static str>,
                        kind: &str|
             -> Result<(String, String), TemplateError> {
                match (path, text) {
                    (Some(path), _) => std::fs::read_to_string(path)
                        .map(|t| (t, path.display().to_string()))
                        .map_err(|source| TemplateError::Read {
                            path: path.clone(),
                            source,
                        }),
                    (None, Some(text)) => Ok((text.to_owned(), format!("built-in {name} {kind}"))),
                    // Validation requires both files for a family that is not built in.
                    (None, None) => Err(TemplateError::Syntax {
                        name: format!("{name} {kind}"),
                        message: format!("installer family `{name}` has no {kind} template"),
                    }),
                }
            };
            let (script, script_name) = pick(
                files.and_then(|f| f.script_template.as_ref()),
                builtin.map(|b| b.script),
                "script",
            )?;
            let (answer, answer_name) = pick(
                files.and_then(|f| f.answer_template.as_ref()),
                builtin.map(|b| b.answer),
                builtin.map_or("answer-file", |b| b.answer_kind),
            )?;
            let templates =
                Templates::new(&script, &answer, &base_url).map_err(|err| match err {
                    TemplateError::Syntax { name, message } => TemplateError::Syntax {
                        name: if name == "script" {
                            script_name.clone()
                        } else {
                            answer_name.clone()
                        },
                        message,
                    },
                    other => other,
                })?;
            families.insert(
                name.to_owned(),
                Family {
                    templates,
                    script_name,
                    answer_name,
                },
            );
        }
        Ok(Catalog {
            families,
            host_family: config
                .hosts
                .iter()
                .map(|h| (h.mac, h.installer.clone()))
                .collect(),
            default: config.installers.default.clone(),
        })
    }

    /// Renders every config host's script and answer file with its family's templates
    /// and lints them (the one script lint, installer kernel-line rules included): the
    /// start-up check that makes sure nothing broken is ever served. Errors stop
    /// start-up and fail `config check`; warnings are printed once per template line.
    pub fn check_report(&self, config: &Config) -> TemplateReport {
        let mut report = TemplateReport::default();
        for host in &config.hosts {
            let family = self.family(host);
            family.templates.check_host(
                host,
                &family.script_name,
                &family.answer_name,
                &mut report,
            );
        }
        report
    }

    /// Only the errors of [`Catalog::check_report`].
    pub fn check(&self, config: &Config) -> Vec<TemplateError> {
        self.check_report(config).errors
    }

    /// Whether hosts may name `family` (a built-in family or one the config defines).
    pub fn has_family(&self, family: &str) -> bool {
        self.families.contains_key(family)
    }

    /// The family a host is rendered with: the config's choice for it (every family a
    /// host of the config uses was compiled by `load`), else the default family.
    fn family_name<'a>(&'a self, host: &'a Host) -> &'a str {
        let name = self
            .host_family
            .get(&host.mac)
            .map_or(host.installer.as_str(), String::as_str);
        if self.families.contains_key(name) {
            name
        } else {
            &self.default
        }
    }

    fn family<'a>(&'a self, host: &'a Host) -> &'a Family {
        &self.families[self.family_name(host)]
    }

    /// Builds a host's template context once, so that serving it only renders.
    pub fn prepare(&self, host: &Host) -> PreparedInstall {
        let family = self.family_name(host);
        PreparedInstall {
            family: family.to_owned(),
            host: self.families[family].templates.prepare(host),
        }
    }

    /// [`Catalog::prepare`] for one install: `ks_url` and `done_url` carry the install's
    /// token (see [`crate::script::HostContext::with_install_token`]).
    pub fn prepare_install(&self, host: &Host, token: &str) -> PreparedInstall {
        let family = self.family_name(host);
        PreparedInstall {
            family: family.to_owned(),
            host: self.families[family].templates.prepare_install(host, token),
        }
    }

    /// The host's iPXE script, rendered and linted.
    pub fn script(&self, host: &Host) -> Result<String, TemplateError> {
        self.script_prepared(&self.prepare(host))
    }

    /// The host's answer file (kickstart, preseed), rendered, its URLs checked.
    pub fn answer(&self, host: &Host) -> Result<String, TemplateError> {
        self.answer_prepared(&self.prepare(host))
    }

    /// [`Catalog::script`] with a context from [`Catalog::prepare`]: the rendered script
    /// when the lint (installer kernel-line rules included) finds no error in it.
    pub fn script_prepared(&self, host: &PreparedInstall) -> Result<String, TemplateError> {
        let family = &self.families[&host.family];
        family
            .templates
            .script_prepared(&host.host)
            .map_err(|err| rename(err, &family.script_name))
    }

    /// [`Catalog::answer`] with a context from [`Catalog::prepare`].
    pub fn answer_prepared(&self, host: &PreparedInstall) -> Result<String, TemplateError> {
        let family = &self.families[&host.family];
        family
            .templates
            .kickstart_prepared(&host.host)
            .map_err(|err| rename(err, &family.answer_name))
    }
}

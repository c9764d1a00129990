//! `http.installer`, `[installers.NAME]` and `hosts[].installer`: which installer family
//! each host runs and where each family's templates come from (see [`crate::installer`]).
//!
//! ```toml
//! [http]
//! installer = "debian-installer"        # hosts that name none (default "anaconda")
//!
//! [installers.debian-installer]         # replace a built-in template (either or both)
//! answer_template = "templates/my-preseed.j2"
//!
//! [installers.ubuntu]                   # a family of your own: both templates
//! script_template = "templates/ubuntu-ipxe.j2"
//! answer_template = "templates/ubuntu-autoinstall.j2"
//!
//! [[hosts]]
//! mac = "52:54:00:12:34:56"
//! installer = "anaconda"
//! ```
//!
//! `http.script_template` and `http.kickstart_template`, older than families, replace the
//! templates of the default family (they may not be combined with an `[installers.…]`
//! entry for that family).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::dhcp::DhcpConfig;
use super::hosts::Host;
use super::problem::{Problem, Severity};
use super::ra::RaConfig;
use super::raw::{RawConfig, RawInstaller, Text};
use super::validator::Validator;
use crate::installer::{self, DEFAULT_FAMILY};

/// Installer families as configured.
#[derive(Debug, Clone)]
pub struct InstallersConfig {
    /// The family of hosts that name none (`http.installer`, default `anaconda`).
    pub default: String,
    /// Template files per family: a built-in family's replacements, or both templates of
    /// a family of your own. A built-in family not listed uses its built-in templates.
    pub families: BTreeMap<String, FamilyTemplates>,
}

/// The template files of one family; `None` means the built-in one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyTemplates {
    pub script_template: Option<PathBuf>,
    pub answer_template: Option<PathBuf>,
}

impl InstallersConfig {
    /// Whether hosts may name `family`: built in, or given templates in `[installers]`.
    pub fn is_known(&self, family: &str) -> bool {
        installer::built_in(family).is_some() || self.families.contains_key(family)
    }

    /// Every family a host may name, built-in first, for messages.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = installer::BUILT_IN.iter().map(|f| f.name).collect();
        names.extend(
            self.families
                .keys()
                .map(String::as_str)
                .filter(|n| installer::built_in(n).is_none()),
        );
        names
    }
}

impl Default for InstallersConfig {
    fn default() -> Self {
        InstallersConfig {
            default: DEFAULT_FAMILY.to_owned(),
            families: BTreeMap::new(),
        }
    }
}

/// Validates `[installers.*]` and `http.installer` (with the older `http.*_template`).
pub(super) fn validate(v: &mut Validator<'_>, raw: &RawConfig) -> InstallersConfig {
    let mut families = BTreeMap::new();
    for (name, templates) in &raw.installers {
        let field = format!("installers.{}", name.get_ref());
        if !installer::is_valid_name(name.get_ref()) {
            v.error(
                name.span(),
                &field,
                format!(
                    "`{}` is not a family name: use lowercase letters, digits and `-`, \
                     starting with a letter",
                    name.get_ref()
                ),
            );
            continue;
        }
        let typed = family_templates(v, templates);
        if installer::built_in(name.get_ref()).is_none()
            && (typed.script_template.is_none() || typed.answer_template.is_none())
        {
            v.error(
                name.span(),
                &field,
                format!(
                    "`{}` is not a built-in installer family ({}), so it needs both \
                     script_template and answer_template",
                    name.get_ref(),
                    builtin_names()
                ),
            );
            continue;
        }
        families.insert(name.get_ref().clone(), typed);
    }
    let mut config = InstallersConfig {
        default: DEFAULT_FAMILY.to_owned(),
        families,
    };
    if let Some(default) = &raw.http.installer {
        if check_family(v, default, "http.installer", &config) {
            config.default = default.get_ref().clone();
        }
    }
    // The templates from before families: the default family's.
    let legacy = FamilyTemplates {
        script_template: raw
            .http
            .script_template
            .as_ref()
            .map(|p| v.relative(p.get_ref())),
        answer_template: raw
            .http
            .kickstart_template
            .as_ref()
            .map(|p| v.relative(p.get_ref())),
    };
    if legacy != FamilyTemplates::default() {
        let span = raw
            .http
            .script_template
            .as_ref()
            .or(raw.http.kickstart_template.as_ref())
            .map_or(0..0, Spanned::span);
        let default = config.default.clone();
        match config.families.get_mut(&default) {
            Some(_) => v.error(
                span,
                "http.script_template",
                format!(
                    "http.script_template/kickstart_template set the templates of the default \
                     family `{default}`, which [installers.{default}] sets too: keep one"
                ),
            ),
            None => {
                config.families.insert(default, legacy);
            }
        }
    }
    config
}

fn family_templates(v: &mut Validator<'_>, raw: &RawInstaller) -> FamilyTemplates {
    FamilyTemplates {
        script_template: raw
            .script_template
            .as_ref()
            .map(|p| v.relative(p.get_ref())),
        answer_template: raw
            .answer_template
            .as_ref()
            .map(|p| v.relative(p.get_ref())),
    }
}

fn builtin_names() -> String {
    installer::BUILT_IN
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` names a family hosts may use; reports it at `field` when not.
fn check_family(
    v: &mut Validator<'_>,
    name: &Text,
    field: &str,
    config: &InstallersConfig,
) -> bool {
    if config.is_known(name.get_ref()) {
        return true;
    }
    v.error(
        name.span(),
        field,
        format!(
            "unknown installer family `{}`: use one of {} or give its templates in \
             [installers.{}]",
            name.get_ref(),
            config.names().join(", "),
            name.get_ref()
        ),
    );
    false
}

/// The family of one host: its own `installer`, else the default.
pub(super) fn host_family(
    v: &mut Validator<'_>,
    raw: Option<&Text>,
    field: &str,
    config: &InstallersConfig,
) -> String {
    match raw {
        Some(name) if check_family(v, name, field, config) => name.get_ref().clone(),
        _ => config.default.clone(),
    }
}

/// Hosts whose installer needs a route off the boot link: the built-in families that do
/// ([`installer::BuiltIn::needs_default_route`]), unless the host's `mirror_host` variable
/// is an address on one of the link's prefixes.
fn needs_default_route(host: &Host, ra: &RaConfig, dhcp: &DhcpConfig) -> bool {
    if !installer::built_in(&host.installer).is_some_and(|f| f.needs_default_route) {
        return false;
    }
    let Some(toml::Value::String(mirror)) = host.vars.get("mirror_host") else {
        return true;
    };
    // `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:3142`; a name is off-link for all
    // we know.
    let literal = match mirror.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => mirror.as_str(),
    };
    let Ok(address) = literal.parse::<core::net::Ipv6Addr>() else {
        return true;
    };
    let on_link = ra
        .prefixes
        .iter()
        .filter(|p| p.on_link)
        .map(|p| &p.prefix)
        .chain(dhcp.subnets.iter().map(|s| &s.prefix));
    !on_link.into_iter().any(|p| p.contains(&address))
}

/// Warns when the RA names no default router (`router_lifetime_secs = 0`) while hosts
/// run an installer that fetches from off the link (RFC 4861 section 6.3.4: a host
/// takes its default routers only from RAs with a non-zero router lifetime).
pub(super) fn warn_about_routes(
    v: &mut Validator<'_>,
    raw: &RawConfig,
    ra: &RaConfig,
    dhcp: &DhcpConfig,
    hosts: &[Host],
) {
    if !ra.enabled || ra.router_lifetime_secs != 0 {
        return;
    }
    let needy: Vec<(usize, &Host)> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| needs_default_route(h, ra, dhcp))
        .collect();
    let Some(&(first, _)) = needy.first() else {
        return;
    };
    let span: Range<usize> = raw
        .ra
        .router_lifetime_secs
        .as_ref()
        .map(Spanned::span)
        .or_else(|| raw.hosts[first].installer.as_ref().map(Spanned::span))
        .unwrap_or_else(|| raw.hosts[first].mac.span());
    let mut names: Vec<String> = needy
        .iter()
        .take(3)
        .map(|(i, h)| format!("hosts[{i}] ({}, {})", h.name, h.installer))
        .collect();
    if needy.len() > 3 {
        names.push(format!("and {} more", needy.len() - 3));
    }
    let (line, column) = v.line_col(span.start);
    v.problems.push(Problem {
        severity: Severity::Warning,
        path: v.path().to_owned(),
        line,
        column,
        field: "ra.router_lifetime_secs".into(),
        message: format!(
            "the RA names no default router (router_lifetime_secs = 0), but {} install{} \
             with an installer that fetches packages from a mirror off this link (host \
             variable mirror_host, default deb.debian.org): the install stops at the mirror. \
             Set router_lifetime_secs (e.g. 1800) if this server's host routes, or let the \
             link's router send RAs with a lifetime; or give mirror_host an address on this \
             link",
            names.join(", "),
            if needy.len() == 1 { "s" } else { "" }
        ),
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::tests::{check, problems as errors};

    fn warnings(text: &str) -> Vec<String> {
        let config = check(text).unwrap_or_else(|e| panic!("{e}"));
        config.warnings.iter().map(|p| p.to_string()).collect()
    }

    const LINK: &str = "[server]\ninterfaces = [\"br0\"]\n\n[ra]\nenabled = true\n\
                        managed = true\nother = true\n\n[[ra.prefixes]]\n\
                        prefix = \"2001:db8:1::/64\"\nautonomous = false\n";

    fn host(installer: &str, vars: &str) -> String {
        format!(
            "\n[[hosts]]\nmac = \"52:54:00:12:34:56\"\ninstaller = \"{installer}\"\n\
             [hosts.vars]\n{vars}\n"
        )
    }

    #[test]
    fn hosts_get_their_own_family_or_the_default() {
        let config = check(&format!(
            "[http]\ninstaller = \"debian-installer\"\n{}\n[[hosts]]\nmac = \"52:54:00:12:34:57\"\n",
            host("anaconda", "")
        ))
        .unwrap();
        assert_eq!(config.installers.default, "debian-installer");
        assert_eq!(config.hosts[0].installer, "anaconda");
        assert_eq!(config.hosts[1].installer, "debian-installer");
        assert_eq!(check("").unwrap().installers.default, "anaconda");
    }

    #[test]
    fn rejects_an_unknown_family_naming_the_known_ones() {
        let p = errors(&host("kickstart", ""));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("hosts[0].installer"), "{}", p[0]);
        assert!(p[0].contains("anaconda, debian-installer"), "{}", p[0]);
        assert!(p[0].contains("[installers.kickstart]"), "{}", p[0]);
        let p = errors("[http]\ninstaller = \"preseed\"\n");
        assert!(p[0].contains("http.installer"), "{}", p[0]);
    }

    #[test]
    fn a_family_of_your_own_needs_both_templates() {
        let p = errors("[installers.ubuntu]\nscript_template = \"u.j2\"\n");
        assert!(
            p[0].contains("installers.ubuntu") && p[0].contains("answer_template"),
            "{}",
            p[0]
        );
        let config = check(&format!(
            "[installers.ubuntu]\nscript_template = \"u.j2\"\nanswer_template = \"a.j2\"\n{}",
            host("ubuntu", "")
        ))
        .unwrap();
        assert_eq!(config.hosts[0].installer, "ubuntu");
        let files = &config.installers.families["ubuntu"];
        assert_eq!(
            files.script_template.as_deref(),
            Some(Path::new("/etc/sixboot/u.j2"))
        );
        // A built-in family may replace one template only.
        check("[installers.debian-installer]\nanswer_template = \"p.j2\"\n").unwrap();
        assert!(errors("[installers.Bad]\nscript_template = \"x\"\n")[0].contains("lowercase"));
    }

    #[test]
    fn the_older_http_templates_belong_to_the_default_family() {
        let config = check("[http]\nscript_template = \"s.j2\"\n").unwrap();
        let files = &config.installers.families["anaconda"];
        assert_eq!(
            files.script_template.as_deref(),
            Some(Path::new("/etc/sixboot/s.j2"))
        );
        assert_eq!(files.answer_template, None);
        let p = errors(
            "[http]\nkickstart_template = \"k.j2\"\n\n[installers.anaconda]\nscript_template = \"s.j2\"\n",
        );
        assert!(p[0].contains("keep one"), "{}", p[0]);
    }

    #[test]
    fn warns_when_the_debian_installer_needs_a_router_the_ra_does_not_name() {
        let w = warnings(&format!("{LINK}{}", host("debian-installer", "")));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("warning: ra.router_lifetime_secs"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("hosts[0]"), "{}", w[0]);
        assert!(w[0].contains("deb.debian.org"), "{}", w[0]);
        // A router lifetime, a mirror on the link, or no d-i host: nothing to say.
        let routed = LINK.replace("other = true", "other = true\nrouter_lifetime_secs = 1800");
        assert!(warnings(&format!("{routed}{}", host("debian-installer", ""))).is_empty());
        for mirror in ["[2001:db8:1::1]", "2001:db8:1::1", "[2001:db8:1::1]:3142"] {
            let vars = format!("mirror_host = \"{mirror}\"");
            assert!(
                warnings(&format!("{LINK}{}", host("debian-installer", &vars))).is_empty(),
                "{mirror}"
            );
        }
        let far = "mirror_host = \"[2001:db8:99::1]\"";
        assert_eq!(
            warnings(&format!("{LINK}{}", host("debian-installer", far))).len(),
            1
        );
        assert!(warnings(&format!("{LINK}{}", host("anaconda", ""))).is_empty());
        // Without our RA, another router may well name itself.
        assert!(warnings(&host("debian-installer", "")).is_empty());
    }
}

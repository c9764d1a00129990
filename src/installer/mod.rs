//! Installer families: which installer a host runs, and what sixboot knows about each.
//!
//! A family is a name (`anaconda`, `debian-installer`, or one of your own), an iPXE script
//! template that starts the installer, and an answer-file template (a kickstart, a preseed)
//! that the installer fetches from `{{ ks_url }}` and that calls `{{ done_url }}` when the
//! install is over. The built-in families ship templates that make an install over IPv6
//! only unattended: no DHCPv4 wait, no question, the host's reserved address kept for the
//! whole install (README, "Installer families", says why each kernel option is there).
//! A family of your own names both templates in the config.
//!
//! [`catalog`] compiles each family's templates and renders a host with its family's;
//! every rendered script goes through the one script lint, whose installer kernel-line
//! rules (`crate::script::kernel`) know these families' parameters. Pure but for
//! [`Catalog::load`], which reads the template files the config names.

pub mod catalog;

pub use catalog::{Catalog, PreparedInstall};

/// A built-in installer family: its name and its default templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    /// The name used in the config (`installer = "…"`).
    pub name: &'static str,
    /// What the answer file is called in this family's documentation.
    pub answer_kind: &'static str,
    /// The iPXE script template.
    pub script: &'static str,
    /// The answer-file template.
    pub answer: &'static str,
    /// Whether an install needs a route off the boot link by default: the Debian installer
    /// fetches every package from its mirror (deb.debian.org unless the host sets
    /// `mirror_host`); Anaconda's default `inst.repo` is the boot server itself.
    pub needs_default_route: bool,
}

/// Anaconda (Fedora, RHEL and its rebuilds): kernel line for dracut, a kickstart.
pub const ANACONDA: BuiltIn = BuiltIn {
    name: "anaconda",
    answer_kind: "kickstart",
    script: include_str!("../../templates/anaconda/ipxe.j2"),
    answer: include_str!("../../templates/anaconda/ks.j2"),
    needs_default_route: false,
};

/// The Debian installer (netboot `linux` + `initrd.gz`): kernel-line preseeding, a preseed.
pub const DEBIAN_INSTALLER: BuiltIn = BuiltIn {
    name: "debian-installer",
    answer_kind: "preseed",
    script: include_str!("../../templates/debian-installer/ipxe.j2"),
    answer: include_str!("../../templates/debian-installer/preseed.j2"),
    needs_default_route: true,
};

/// Every built-in family, in the order the documentation lists them.
pub const BUILT_IN: &[BuiltIn] = &[ANACONDA, DEBIAN_INSTALLER];

/// The family hosts get when neither they nor the config name one: today's default
/// templates were Anaconda's, so configs written before families keep their meaning.
pub const DEFAULT_FAMILY: &str = ANACONDA.name;

/// The built-in family called `name`.
pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|family| family.name == name)
}

/// Whether `name` can name a family: lowercase ASCII letters, digits and `-`, starting
/// with a letter (it appears in messages and template names).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_families_are_found_by_name() {
        assert_eq!(built_in("anaconda"), Some(&ANACONDA));
        assert_eq!(built_in("debian-installer"), Some(&DEBIAN_INSTALLER));
        assert_eq!(built_in("Anaconda"), None);
        assert!(BUILT_IN.iter().all(|f| is_valid_name(f.name)));
        assert!(built_in(DEFAULT_FAMILY).is_some());
    }

    #[test]
    fn family_names_are_lowercase_words() {
        assert!(is_valid_name("ubuntu-autoinstall"));
        assert!(is_valid_name("nixos2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("2fast"));
        assert!(!is_valid_name("Debian"));
        assert!(!is_valid_name("a b"));
    }

    #[test]
    fn built_in_templates_use_the_url_variables_and_never_build_them() {
        // Issue 14 adds per-install tokens to these URLs: a template that assembles
        // `{{ base_url }}/ks/…` itself would lose them.
        for family in BUILT_IN {
            assert!(family.script.contains("{{ ks_url }}"), "{}", family.name);
            assert!(family.answer.contains("{{ done_url }}"), "{}", family.name);
            for text in [family.script, family.answer] {
                assert!(!text.contains("/ks/"), "{}", family.name);
                assert!(!text.contains("/done/"), "{}", family.name);
            }
        }
    }
}

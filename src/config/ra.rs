//! `[ra]`: router advertisements (RFC 4861 section 6.2.1).

use super::raw::RawRa;
use super::validator::Validator;
use super::Prefix;

/// Router advertisement settings (RFC 4861 section 6.2.1).
#[derive(Debug, Clone)]
pub struct RaConfig {
    /// Off by default: a stray RA can take over the routing of a whole network.
    pub enabled: bool,
    /// The M flag: addresses from DHCPv6. iPXE starts DHCPv6 only when M or O is set.
    pub managed: bool,
    /// The O flag: other configuration (DNS, bootfile-url) from DHCPv6.
    pub other: bool,
    pub min_interval_secs: u32,
    pub max_interval_secs: u32,
    /// 0 means "not a default router", right for a boot-only network.
    pub router_lifetime_secs: u32,
    pub hop_limit: u8,
    pub prefixes: Vec<RaPrefix>,
    pub rdnss: bool,
}

/// One prefix information option.
#[derive(Debug, Clone)]
pub struct RaPrefix {
    pub prefix: Prefix,
    pub on_link: bool,
    pub autonomous: bool,
    pub valid_lifetime_secs: u32,
    pub preferred_lifetime_secs: u32,
}

/// Validates `[ra]`; `interfaces` are `server.interfaces` (RAs need at least one).
pub(super) fn validate(v: &mut Validator<'_>, raw: &RawRa, interfaces: &[String]) -> RaConfig {
    let mut prefixes = Vec::new();
    for (i, p) in raw.prefixes.iter().enumerate() {
        let field = format!("ra.prefixes[{i}]");
        let prefix = v.prefix(&p.prefix, &format!("{field}.prefix"));
        let (preferred, valid) = v.lifetimes(
            p.preferred_lifetime_secs.as_ref(),
            p.valid_lifetime_secs.as_ref(),
            (14_400, 86_400),
            (
                &format!("{field}.preferred_lifetime_secs"),
                &format!("{field}.valid_lifetime_secs"),
            ),
        );
        let autonomous = p.autonomous.as_ref().is_some_and(|a| *a.get_ref());
        if let (Some(prefix), Some(flag)) = (prefix, p.autonomous.as_ref()) {
            // RFC 4862 section 5.5.3 (d): a host forms an address only when the prefix
            // length plus its interface identifier (64 bits on Ethernet, RFC 2464
            // section 4) is 128; any other length is ignored for SLAAC.
            if autonomous && prefix.len != 64 {
                v.error(
                    flag.span(),
                    &format!("{field}.autonomous"),
                    format!(
                        "SLAAC needs a /64 (RFC 4862 5.5.3: prefix length + 64-bit interface \
                         ID = 128); hosts ignore {prefix} for addresses. Advertise a /64 or \
                         set autonomous = false"
                    ),
                );
            }
        }
        if let Some(prefix) = prefix {
            prefixes.push(RaPrefix {
                prefix,
                on_link: p.on_link.unwrap_or(true),
                autonomous,
                valid_lifetime_secs: valid,
                preferred_lifetime_secs: preferred,
            });
        }
    }
    let (min_interval, max_interval) = v.lifetimes(
        raw.min_interval_secs.as_ref(),
        raw.max_interval_secs.as_ref(),
        (30, 200),
        ("ra.min_interval_secs", "ra.max_interval_secs"),
    );
    if raw.enabled && interfaces.is_empty() {
        v.error(
            0..0,
            "server.interfaces",
            "ra.enabled is true but no interface is listed in server.interfaces".into(),
        );
    }
    RaConfig {
        enabled: raw.enabled,
        managed: raw.managed.as_ref().map_or(true, |m| *m.get_ref()),
        other: raw.other.unwrap_or(true),
        min_interval_secs: min_interval,
        max_interval_secs: max_interval,
        router_lifetime_secs: raw
            .router_lifetime_secs
            .as_ref()
            .map_or(0, |s| *s.get_ref()),
        hop_limit: raw.hop_limit.unwrap_or(64),
        prefixes,
        rdnss: raw.rdnss,
    }
}

//! Router advertisements: the wire format of RFC 4861 Router Solicitation and Router
//! Advertisement messages with prefix information, MTU and RFC 8106 RDNSS/DNSSL
//! options, and a scheduler that decides when to send them.
//!
//! Like smoltcp's `wire/ndisc.rs`, [`Repr`] is the meaning and `parse`/`buffer_len`/
//! `emit` mirror each other over the bytes; offsets live in [`field`]. The ICMPv6
//! checksum is left zero on emit: Linux fills it in for raw ICMPv6 sockets (RFC 3542
//! section 3.1), and checks it on receive. Nothing here opens a socket or reads a clock.

mod schedule;

pub use schedule::{Scheduler, SolicitAnswer};

use core::net::Ipv6Addr;

use crate::config::{DhcpConfig, RaConfig};

/// Byte offsets, RFC 4861 section 4.
pub mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: std::ops::Range<usize> = 2..4;
    /// Router Solicitation: 4 reserved bytes, then options.
    pub const RS_OPTIONS: usize = 8;
    /// Router Advertisement (section 4.2).
    pub const RA_CUR_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_ROUTER_LIFETIME: std::ops::Range<usize> = 6..8;
    pub const RA_REACHABLE_TIME: std::ops::Range<usize> = 8..12;
    pub const RA_RETRANS_TIMER: std::ops::Range<usize> = 12..16;
    pub const RA_OPTIONS: usize = 16;
    pub const FLAG_MANAGED: u8 = 0x80;
    pub const FLAG_OTHER: u8 = 0x40;

    pub const TYPE_ROUTER_SOLICIT: u8 = 133;
    pub const TYPE_ROUTER_ADVERT: u8 = 134;

    /// Option types: section 4.6 and RFC 8106.
    pub const OPT_SOURCE_LINK_LAYER: u8 = 1;
    pub const OPT_PREFIX_INFO: u8 = 3;
    pub const OPT_MTU: u8 = 5;
    pub const OPT_RDNSS: u8 = 25;
    pub const OPT_DNSSL: u8 = 31;
    /// Prefix information flags (section 4.6.2).
    pub const PREFIX_FLAG_ON_LINK: u8 = 0x80;
    pub const PREFIX_FLAG_AUTONOMOUS: u8 = 0x40;
    /// Options are sized in units of 8 bytes.
    pub const OPTION_UNIT: usize = 8;
}

/// Why an ICMPv6 message is not an RS or RA we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaError {
    #[error("{0} bytes is too short for this ICMPv6 message")]
    TooShort(usize),
    #[error("ICMPv6 type {0} is neither a Router Solicitation nor an Advertisement")]
    OtherType(u8),
    #[error("ICMPv6 code {0} must be 0 for router discovery")]
    BadCode(u8),
    #[error("option at offset {0} has length 0 or runs past the message")]
    BadOption(usize),
}

/// Prefix Information option (RFC 4861 section 4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixInfo {
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    pub on_link: bool,
    pub autonomous: bool,
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
}

/// One neighbor discovery option; unknown ones are kept, not dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdiscOption {
    SourceLinkLayer(Vec<u8>),
    PrefixInfo(PrefixInfo),
    Mtu(u32),
    /// Recursive DNS servers (RFC 8106 section 5.1).
    Rdnss {
        lifetime: u32,
        servers: Vec<Ipv6Addr>,
    },
    /// DNS search list (RFC 8106 section 5.2).
    Dnssl {
        lifetime: u32,
        domains: Vec<String>,
    },
    Unknown {
        kind: u8,
        data: Vec<u8>,
    },
}

/// A Router Advertisement (RFC 4861 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvert {
    pub cur_hop_limit: u8,
    pub managed: bool,
    pub other: bool,
    pub router_lifetime: u16,
    pub reachable_time: u32,
    pub retrans_timer: u32,
    pub options: Vec<NdiscOption>,
}

/// A router discovery message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    RouterSolicit { options: Vec<NdiscOption> },
    RouterAdvert(RouterAdvert),
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn address(bytes: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    Ipv6Addr::from(octets)
}

/// RFC 8106 section 5.2 names (RFC 1035 labels, zero padding at the end), or `None`
/// when a label is not plain ASCII without dots: such an option is kept as unknown
/// rather than turned into a string that would not emit back to the same bytes.
fn parse_domains(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut domains = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        let len = usize::from(len);
        if len == 0 {
            if !labels.is_empty() {
                domains.push(labels.join("."));
                labels.clear();
            }
            bytes = rest;
            continue;
        }
        let label = rest.get(..len)?;
        if len > 63 || !label.iter().all(|b| b.is_ascii_graphic() && *b != b'.') {
            return None;
        }
        labels.push(String::from_utf8_lossy(label).into_owned());
        bytes = &rest[len..];
    }
    labels.is_empty().then_some(domains)
}

fn parse_option(kind: u8, body: &[u8]) -> NdiscOption {
    use field::*;
    // `body` is the option after its type and length bytes (6, 14, 22 … bytes).
    match kind {
        OPT_SOURCE_LINK_LAYER => NdiscOption::SourceLinkLayer(body.to_vec()),
        OPT_PREFIX_INFO if body.len() >= 30 => NdiscOption::PrefixInfo(PrefixInfo {
            prefix_len: body[0],
            on_link: body[1] & PREFIX_FLAG_ON_LINK != 0,
            autonomous: body[1] & PREFIX_FLAG_AUTONOMOUS != 0,
            valid_lifetime: be32(&body[2..6]),
            preferred_lifetime: be32(&body[6..10]),
            prefix: address(&body[14..30]),
        }),
        OPT_MTU if body.len() >= 6 => NdiscOption::Mtu(be32(&body[2..6])),
        OPT_RDNSS if body.len() >= 6 => NdiscOption::Rdnss {
            lifetime: be32(&body[2..6]),
            servers: body[6..].chunks_exact(16).map(address).collect(),
        },
        OPT_DNSSL if body.len() >= 6 => match parse_domains(&body[6..]) {
            Some(domains) => NdiscOption::Dnssl {
                lifetime: be32(&body[2..6]),
                domains,
            },
            None => NdiscOption::Unknown {
                kind,
                data: body.to_vec(),
            },
        },
        _ => NdiscOption::Unknown {
            kind,
            data: body.to_vec(),
        },
    }
}

fn parse_options(bytes: &[u8], base: usize) -> Result<Vec<NdiscOption>, RaError> {
    let mut options = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let len = usize::from(
            *bytes
                .get(offset + 1)
                .ok_or(RaError::BadOption(base + offset))?,
        ) * field::OPTION_UNIT;
        if len == 0 || offset + len > bytes.len() {
            return Err(RaError::BadOption(base + offset));
        }
        options.push(parse_option(
            bytes[offset],
            &bytes[offset + 2..offset + len],
        ));
        offset += len;
    }
    Ok(options)
}

fn domains_len(domains: &[String]) -> usize {
    domains
        .iter()
        .map(|d| {
            d.trim_end_matches('.')
                .split('.')
                .map(|l| l.len() + 1)
                .sum::<usize>()
                + 1
        })
        .sum()
}

impl NdiscOption {
    /// The option's length on the wire, padded to 8 bytes.
    pub fn buffer_len(&self) -> usize {
        let raw = match self {
            NdiscOption::SourceLinkLayer(address) => 2 + address.len(),
            NdiscOption::PrefixInfo(_) => 32,
            NdiscOption::Mtu(_) => 8,
            NdiscOption::Rdnss { servers, .. } => 8 + 16 * servers.len(),
            NdiscOption::Dnssl { domains, .. } => 8 + domains_len(domains),
            NdiscOption::Unknown { data, .. } => 2 + data.len(),
        };
        raw.div_ceil(field::OPTION_UNIT) * field::OPTION_UNIT
    }

    /// The option's type byte.
    pub fn kind(&self) -> u8 {
        use field::*;
        match self {
            NdiscOption::SourceLinkLayer(_) => OPT_SOURCE_LINK_LAYER,
            NdiscOption::PrefixInfo(_) => OPT_PREFIX_INFO,
            NdiscOption::Mtu(_) => OPT_MTU,
            NdiscOption::Rdnss { .. } => OPT_RDNSS,
            NdiscOption::Dnssl { .. } => OPT_DNSSL,
            NdiscOption::Unknown { kind, .. } => *kind,
        }
    }

    /// Writes the option into `out`, which is exactly `buffer_len()` bytes.
    pub fn emit(&self, out: &mut [u8]) {
        use field::*;
        out.fill(0);
        out[0] = self.kind();
        out[1] = (out.len() / OPTION_UNIT) as u8;
        let body = &mut out[2..];
        match self {
            NdiscOption::SourceLinkLayer(address) => {
                body[..address.len()].copy_from_slice(address);
            }
            NdiscOption::PrefixInfo(p) => {
                body[0] = p.prefix_len;
                body[1] = if p.on_link { PREFIX_FLAG_ON_LINK } else { 0 }
                    | if p.autonomous {
                        PREFIX_FLAG_AUTONOMOUS
                    } else {
                        0
                    };
                body[2..6].copy_from_slice(&p.valid_lifetime.to_be_bytes());
                body[6..10].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
                body[14..30].copy_from_slice(&p.prefix.octets());
            }
            NdiscOption::Mtu(mtu) => {
                body[2..6].copy_from_slice(&mtu.to_be_bytes());
            }
            NdiscOption::Rdnss { lifetime, servers } => {
                body[2..6].copy_from_slice(&lifetime.to_be_bytes());
                for (chunk, server) in body[6..].chunks_exact_mut(16).zip(servers) {
                    chunk.copy_from_slice(&server.octets());
                }
            }
            NdiscOption::Dnssl { lifetime, domains } => {
                body[2..6].copy_from_slice(&lifetime.to_be_bytes());
                let mut at = 6;
                for domain in domains {
                    for label in domain.trim_end_matches('.').split('.') {
                        body[at] = label.len() as u8;
                        body[at + 1..at + 1 + label.len()].copy_from_slice(label.as_bytes());
                        at += 1 + label.len();
                    }
                    at += 1;
                }
            }
            NdiscOption::Unknown { data, .. } => {
                body[..data.len()].copy_from_slice(data);
            }
        }
    }
}

impl Repr {
    /// Reads an RS or RA from an ICMPv6 message (the checksum is the kernel's job).
    pub fn parse(bytes: &[u8]) -> Result<Repr, RaError> {
        use field::*;
        let kind = *bytes.get(TYPE).ok_or(RaError::TooShort(bytes.len()))?;
        let min = match kind {
            TYPE_ROUTER_SOLICIT => RS_OPTIONS,
            TYPE_ROUTER_ADVERT => RA_OPTIONS,
            other => return Err(RaError::OtherType(other)),
        };
        if bytes.len() < min {
            return Err(RaError::TooShort(bytes.len()));
        }
        if bytes[CODE] != 0 {
            return Err(RaError::BadCode(bytes[CODE]));
        }
        let options = parse_options(&bytes[min..], min)?;
        Ok(if kind == TYPE_ROUTER_SOLICIT {
            Repr::RouterSolicit { options }
        } else {
            Repr::RouterAdvert(RouterAdvert {
                cur_hop_limit: bytes[RA_CUR_HOP_LIMIT],
                managed: bytes[RA_FLAGS] & FLAG_MANAGED != 0,
                other: bytes[RA_FLAGS] & FLAG_OTHER != 0,
                router_lifetime: u16::from_be_bytes([bytes[6], bytes[7]]),
                reachable_time: be32(&bytes[RA_REACHABLE_TIME]),
                retrans_timer: be32(&bytes[RA_RETRANS_TIMER]),
                options,
            })
        })
    }

    fn options(&self) -> &[NdiscOption] {
        match self {
            Repr::RouterSolicit { options } => options,
            Repr::RouterAdvert(ra) => &ra.options,
        }
    }

    pub fn buffer_len(&self) -> usize {
        let header = match self {
            Repr::RouterSolicit { .. } => field::RS_OPTIONS,
            Repr::RouterAdvert(_) => field::RA_OPTIONS,
        };
        header + self.options().iter().map(|o| o.buffer_len()).sum::<usize>()
    }

    /// Writes the message into `out` (at least `buffer_len()` bytes), checksum zero.
    pub fn emit(&self, out: &mut [u8]) {
        use field::*;
        let out = &mut out[..self.buffer_len()];
        out[CODE] = 0;
        out[CHECKSUM].fill(0);
        let header = match self {
            Repr::RouterSolicit { .. } => {
                out[TYPE] = TYPE_ROUTER_SOLICIT;
                out[4..RS_OPTIONS].fill(0);
                RS_OPTIONS
            }
            Repr::RouterAdvert(ra) => {
                out[TYPE] = TYPE_ROUTER_ADVERT;
                out[RA_CUR_HOP_LIMIT] = ra.cur_hop_limit;
                out[RA_FLAGS] = if ra.managed { FLAG_MANAGED } else { 0 }
                    | if ra.other { FLAG_OTHER } else { 0 };
                out[RA_ROUTER_LIFETIME].copy_from_slice(&ra.router_lifetime.to_be_bytes());
                out[RA_REACHABLE_TIME].copy_from_slice(&ra.reachable_time.to_be_bytes());
                out[RA_RETRANS_TIMER].copy_from_slice(&ra.retrans_timer.to_be_bytes());
                RA_OPTIONS
            }
        };
        let mut at = header;
        for option in self.options() {
            let len = option.buffer_len();
            option.emit(&mut out[at..at + len]);
            at += len;
        }
    }

    /// Convenience: `emit` into a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; self.buffer_len()];
        self.emit(&mut out);
        out
    }
}

/// The advertisement this server sends, built from the config.
///
/// RDNSS/DNSSL lifetimes follow RFC 8106 section 5.1's advice of at least three
/// times the maximum interval.
pub fn advert_from_config(
    ra: &RaConfig,
    dhcp: &DhcpConfig,
    link_layer: Option<[u8; 6]>,
) -> RouterAdvert {
    let mut options = Vec::new();
    if let Some(mac) = link_layer {
        options.push(NdiscOption::SourceLinkLayer(mac.to_vec()));
    }
    for p in &ra.prefixes {
        options.push(NdiscOption::PrefixInfo(PrefixInfo {
            prefix: p.prefix.address,
            prefix_len: p.prefix.len,
            on_link: p.on_link,
            autonomous: p.autonomous,
            valid_lifetime: p.valid_lifetime_secs,
            preferred_lifetime: p.preferred_lifetime_secs,
        }));
    }
    let dns_lifetime = ra.max_interval_secs.saturating_mul(3);
    if ra.rdnss && !dhcp.dns_servers.is_empty() {
        options.push(NdiscOption::Rdnss {
            lifetime: dns_lifetime,
            servers: dhcp.dns_servers.clone(),
        });
    }
    if ra.rdnss && !dhcp.domain_search.is_empty() {
        options.push(NdiscOption::Dnssl {
            lifetime: dns_lifetime,
            domains: dhcp.domain_search.clone(),
        });
    }
    RouterAdvert {
        cur_hop_limit: ra.hop_limit,
        managed: ra.managed,
        other: ra.other,
        router_lifetime: ra.router_lifetime_secs.min(9000) as u16,
        reachable_time: 0,
        retrans_timer: 0,
        options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Router Solicitation as Linux sends it (type 133, source link-layer option).
    const LINUX_RS: [u8; 16] = [
        0x85, 0x00, 0x12, 0x34, 0, 0, 0, 0, 0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
    ];

    fn sample() -> Repr {
        Repr::RouterAdvert(RouterAdvert {
            cur_hop_limit: 64,
            managed: true,
            other: true,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
            options: vec![
                NdiscOption::SourceLinkLayer(vec![0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
                NdiscOption::PrefixInfo(PrefixInfo {
                    prefix: "2001:db8:1::".parse().unwrap(),
                    prefix_len: 64,
                    on_link: true,
                    autonomous: false,
                    valid_lifetime: 86_400,
                    preferred_lifetime: 14_400,
                }),
                NdiscOption::Mtu(1500),
                NdiscOption::Rdnss {
                    lifetime: 600,
                    servers: vec!["2001:db8:1::1".parse().unwrap()],
                },
                NdiscOption::Dnssl {
                    lifetime: 600,
                    domains: vec!["lab.example".into(), "example.org".into()],
                },
                NdiscOption::Unknown {
                    kind: 200,
                    data: vec![1, 2, 3, 4, 5, 6],
                },
            ],
        })
    }

    #[test]
    fn parses_a_linux_router_solicitation() {
        assert_eq!(
            Repr::parse(&LINUX_RS),
            Ok(Repr::RouterSolicit {
                options: vec![NdiscOption::SourceLinkLayer(vec![
                    0x52, 0x54, 0x00, 0x12, 0x34, 0x56
                ])]
            })
        );
    }

    #[test]
    fn emit_into_junk_then_parse_round_trips() {
        let repr = sample();
        let mut buffer = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut buffer);
        assert_eq!(buffer[0], 134);
        assert_eq!(buffer[field::RA_FLAGS], 0xc0);
        assert_eq!(Repr::parse(&buffer), Ok(repr));
    }

    #[test]
    fn prefix_option_has_rfc_4861_layout() {
        let option = NdiscOption::PrefixInfo(PrefixInfo {
            prefix: "2001:db8:1::".parse().unwrap(),
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 1,
            preferred_lifetime: 2,
        });
        let mut out = [0xffu8; 32];
        option.emit(&mut out);
        assert_eq!(&out[..4], &[3, 4, 64, 0xc0]);
        assert_eq!(&out[4..12], &[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(&out[12..16], &[0; 4], "reserved bytes are zero");
        assert_eq!(&out[16..20], &[0x20, 0x01, 0x0d, 0xb8]);
    }

    #[test]
    fn rejects_zero_length_option_and_other_icmp() {
        let mut rs = LINUX_RS;
        rs[9] = 0;
        assert_eq!(Repr::parse(&rs), Err(RaError::BadOption(8)));
        assert_eq!(Repr::parse(&[128, 0, 0, 0]), Err(RaError::OtherType(128)));
        assert_eq!(Repr::parse(&[134, 0, 0]), Err(RaError::TooShort(3)));
        let mut rs = LINUX_RS;
        rs[1] = 1;
        assert_eq!(Repr::parse(&rs), Err(RaError::BadCode(1)));
    }

    #[test]
    fn advert_from_the_example_config_has_m_o_and_the_prefix() {
        let text = include_str!("../../examples/lab.toml");
        let config = crate::config::Config::from_toml(std::path::Path::new("lab.toml"), text)
            .unwrap_or_else(|e| panic!("{e}"));
        let ra = advert_from_config(&config.ra, &config.dhcp, None);
        assert!(ra.managed && ra.other);
        assert_eq!(ra.router_lifetime, 0);
        assert!(ra.options.iter().any(|o| matches!(o,
            NdiscOption::PrefixInfo(p) if p.prefix_len == 64 && !p.autonomous && p.on_link)));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn whatever_parses_emits_and_parses_back_the_same(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                if let Ok(repr) = Repr::parse(&bytes) {
                    prop_assert_eq!(Repr::parse(&repr.to_bytes()), Ok(repr));
                }
            }

            #[test]
            fn router_advertisements_with_random_options_round_trip(
                header in proptest::collection::vec(any::<u8>(), 14),
                options in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 6..40)), 0..6),
            ) {
                let mut bytes = vec![134, 0, 0, 0];
                bytes.extend_from_slice(&header[2..14]);
                bytes[4] = header[0];
                bytes[5] = header[1];
                for (kind, body) in options {
                    let len = (body.len() + 2) / 8 * 8;
                    bytes.push(kind);
                    bytes.push((len / 8) as u8);
                    bytes.extend_from_slice(&body[..len - 2]);
                }
                let repr = Repr::parse(&bytes);
                prop_assert!(repr.is_ok(), "{:?}", repr);
                let repr = repr.unwrap();
                prop_assert_eq!(Repr::parse(&repr.to_bytes()), Ok(repr));
            }
        }
    }
}

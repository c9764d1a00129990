//! The untrusted edge of DHCPv6: a checked walk over option TLVs before dhcproto sees
//! them, and Relay-Forw/Relay-Repl framing (RFC 8415 section 9).
//!
//! dhcproto decodes client messages well, but two things need care. Its decoder
//! subtracts from option lengths without checking them (a Status Code option of length
//! 0 underflows), so [`check_client_message`] walks every option, nested ones included,
//! and rejects lengths that are too short before `Message::decode` runs. And it reads
//! option 9 (Relay Message) always as a relay message, even when it holds a client
//! message, so relay framing is parsed here by hand.

use core::net::Ipv6Addr;

/// Byte offsets and option codes, from RFC 8415 unless noted.
pub mod field {
    /// msg-type (1) + transaction-id (3): section 8.
    pub const CLIENT_HEADER_LEN: usize = 4;
    /// msg-type, hop-count, link-address, peer-address: section 9.
    pub const RELAY_HEADER_LEN: usize = 34;
    pub const RELAY_HOP_COUNT: usize = 1;
    pub const RELAY_LINK_ADDRESS: std::ops::Range<usize> = 2..18;
    pub const RELAY_PEER_ADDRESS: std::ops::Range<usize> = 18..34;
    /// option-code (2) + option-len (2): section 21.1.
    pub const OPTION_HEADER_LEN: usize = 4;

    pub const MSG_RELAY_FORW: u8 = 12;
    pub const MSG_RELAY_REPL: u8 = 13;

    pub const OPT_IA_NA: u16 = 3;
    pub const OPT_IA_TA: u16 = 4;
    pub const OPT_IAADDR: u16 = 5;
    pub const OPT_PREFERENCE: u16 = 7;
    pub const OPT_ELAPSED_TIME: u16 = 8;
    pub const OPT_RELAY_MSG: u16 = 9;
    pub const OPT_AUTH: u16 = 11;
    pub const OPT_UNICAST: u16 = 12;
    pub const OPT_STATUS_CODE: u16 = 13;
    pub const OPT_RAPID_COMMIT: u16 = 14;
    pub const OPT_VENDOR_CLASS: u16 = 16;
    pub const OPT_VENDOR_OPTS: u16 = 17;
    pub const OPT_INTERFACE_ID: u16 = 18;
    pub const OPT_RECONF_MSG: u16 = 19;
    pub const OPT_RECONF_ACCEPT: u16 = 20;
    pub const OPT_IA_PD: u16 = 25;
    pub const OPT_IAPREFIX: u16 = 26;
    /// RFC 5970.
    pub const OPT_BOOTFILE_URL: u16 = 59;
    pub const OPT_BOOTFILE_PARAM: u16 = 60;
    pub const OPT_CLIENT_ARCH_TYPE: u16 = 61;
    /// RFC 6939: the client's link-layer address, added by the first relay.
    pub const OPT_CLIENT_LINKLAYER_ADDR: u16 = 79;

    /// RFC 8415 section 7.6: HOP_COUNT_LIMIT.
    pub const HOP_COUNT_LIMIT: u8 = 8;
}

/// Why a datagram was dropped before the engine looked at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("datagram of {0} bytes is too short for a DHCPv6 header")]
    TooShort(usize),
    #[error("option {code} at offset {offset} claims {len} bytes but only {left} remain")]
    OptionOverrun {
        code: u16,
        offset: usize,
        len: usize,
        left: usize,
    },
    #[error("option {code} is {len} bytes, shorter than its fixed part ({min})")]
    OptionTooShort { code: u16, len: usize, min: usize },
    #[error("option {code} is {len} bytes, longer than its fixed size ({max})")]
    OptionTooLong { code: u16, len: usize, max: usize },
    #[error("option {0} may not appear in a client message")]
    OptionNotAllowed(u16),
    #[error("relay message nested deeper than the hop-count limit")]
    TooManyRelays,
    #[error("Relay-Forw carries no Relay Message option")]
    NoRelayMessage,
    #[error("dhcproto could not decode the message: {0}")]
    Decode(String),
}

/// Walks the options in `bytes`, returning `(code, body)` pairs, or the first overrun.
pub fn options(bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, WireError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let left = bytes.len() - offset;
        if left < field::OPTION_HEADER_LEN {
            return Err(WireError::OptionOverrun {
                code: 0,
                offset,
                len: field::OPTION_HEADER_LEN,
                left,
            });
        }
        let code = u16::from_be_bytes([bytes[offset], bytes[offset + 1]]);
        let len = usize::from(u16::from_be_bytes([bytes[offset + 2], bytes[offset + 3]]));
        let start = offset + field::OPTION_HEADER_LEN;
        if len > bytes.len() - start {
            return Err(WireError::OptionOverrun {
                code,
                offset,
                len,
                left: bytes.len() - start,
            });
        }
        out.push((code, &bytes[start..start + len]));
        offset = start + len;
    }
    Ok(out)
}

/// The lengths dhcproto can decode an option at: (shortest, longest, offset of the
/// encapsulated options if any).
///
/// Some decoders read a fixed width and ignore the option length (Preference,
/// Elapsed Time, Server Unicast, Reconfigure Message, and the empty Rapid Commit and
/// Reconfigure Accept), which would leave the decoder mid-option; those must be
/// exactly their width.
fn shape(code: u16) -> (usize, usize, Option<usize>) {
    use field::*;
    const ANY: usize = usize::MAX;
    match code {
        OPT_IA_NA | OPT_IA_PD => (12, ANY, Some(12)),
        OPT_IA_TA => (4, ANY, Some(4)),
        OPT_IAADDR => (24, ANY, Some(24)),
        OPT_IAPREFIX => (25, ANY, Some(25)),
        OPT_VENDOR_OPTS => (4, ANY, Some(4)),
        OPT_STATUS_CODE => (2, ANY, None),
        OPT_VENDOR_CLASS => (4, ANY, None),
        OPT_AUTH => (11, ANY, None),
        OPT_UNICAST => (16, 16, None),
        OPT_PREFERENCE | OPT_RECONF_MSG => (1, 1, None),
        OPT_ELAPSED_TIME => (2, 2, None),
        OPT_RAPID_COMMIT | OPT_RECONF_ACCEPT => (0, 0, None),
        _ => (0, ANY, None),
    }
}

fn check_options(bytes: &[u8], depth: u8) -> Result<(), WireError> {
    if depth > 4 {
        return Err(WireError::TooManyRelays);
    }
    for (code, body) in options(bytes)? {
        if code == field::OPT_RELAY_MSG {
            return Err(WireError::OptionNotAllowed(code));
        }
        let (min, max, nested) = shape(code);
        if body.len() < min {
            return Err(WireError::OptionTooShort {
                code,
                len: body.len(),
                min,
            });
        }
        if body.len() > max {
            return Err(WireError::OptionTooLong {
                code,
                len: body.len(),
                max,
            });
        }
        if let Some(at) = nested {
            check_options(&body[at..], depth + 1)?;
        }
    }
    Ok(())
}

/// Checks a client message (not a relay message) so that dhcproto can decode it
/// without panicking, then decodes it.
pub fn decode_client_message(bytes: &[u8]) -> Result<dhcproto::v6::Message, WireError> {
    use dhcproto::Decodable;
    if bytes.len() < field::CLIENT_HEADER_LEN {
        return Err(WireError::TooShort(bytes.len()));
    }
    check_options(&bytes[field::CLIENT_HEADER_LEN..], 0)?;
    dhcproto::v6::Message::decode(&mut dhcproto::Decoder::new(bytes))
        .map_err(|e| WireError::Decode(e.to_string()))
}

/// One Relay-Forw layer as received (RFC 8415 section 9.1), outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLayer {
    pub hop_count: u8,
    pub link_address: Ipv6Addr,
    pub peer_address: Ipv6Addr,
    /// Interface-ID (option 18), echoed back unchanged in the Relay-Repl.
    pub interface_id: Option<Vec<u8>>,
    /// Client link-layer address (RFC 6939 option 79): link-layer type and address.
    pub client_link_layer: Option<(u16, Vec<u8>)>,
}

/// A datagram split into its relay layers (possibly none) and the client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    pub relays: Vec<RelayLayer>,
    pub client_message: &'a [u8],
}

/// Peels Relay-Forw layers off a datagram.
pub fn unwrap_relays(mut bytes: &[u8]) -> Result<Unwrapped<'_>, WireError> {
    let mut relays = Vec::new();
    loop {
        match bytes.first() {
            None => return Err(WireError::TooShort(0)),
            Some(&field::MSG_RELAY_FORW) => {}
            Some(_) => {
                return Ok(Unwrapped {
                    relays,
                    client_message: bytes,
                })
            }
        }
        if relays.len() > usize::from(field::HOP_COUNT_LIMIT) {
            return Err(WireError::TooManyRelays);
        }
        if bytes.len() < field::RELAY_HEADER_LEN {
            return Err(WireError::TooShort(bytes.len()));
        }
        let address = |range: std::ops::Range<usize>| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes[range]);
            Ipv6Addr::from(octets)
        };
        let mut layer = RelayLayer {
            hop_count: bytes[field::RELAY_HOP_COUNT],
            link_address: address(field::RELAY_LINK_ADDRESS),
            peer_address: address(field::RELAY_PEER_ADDRESS),
            interface_id: None,
            client_link_layer: None,
        };
        let mut inner = None;
        for (code, body) in options(&bytes[field::RELAY_HEADER_LEN..])? {
            match code {
                field::OPT_RELAY_MSG => inner = Some(body),
                field::OPT_INTERFACE_ID => layer.interface_id = Some(body.to_vec()),
                field::OPT_CLIENT_LINKLAYER_ADDR if body.len() >= 2 => {
                    let kind = u16::from_be_bytes([body[0], body[1]]);
                    layer.client_link_layer = Some((kind, body[2..].to_vec()));
                }
                _ => {}
            }
        }
        relays.push(layer);
        bytes = inner.ok_or(WireError::NoRelayMessage)?;
    }
}

fn push_option(out: &mut Vec<u8>, code: u16, body: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    // Bodies are bounded by the datagram we received plus our own small reply.
    out.extend_from_slice(&(body.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// Wraps a reply in one Relay-Repl per layer (RFC 8415 section 19.3), innermost
/// first, copying each layer's hop count, addresses and Interface-ID.
pub fn wrap_reply(relays: &[RelayLayer], reply: Vec<u8>) -> Vec<u8> {
    let mut message = reply;
    for layer in relays.iter().rev() {
        let mut out = Vec::with_capacity(message.len() + 64);
        out.push(field::MSG_RELAY_REPL);
        out.push(layer.hop_count);
        out.extend_from_slice(&layer.link_address.octets());
        out.extend_from_slice(&layer.peer_address.octets());
        if let Some(id) = &layer.interface_id {
            push_option(&mut out, field::OPT_INTERFACE_ID, id);
        }
        push_option(&mut out, field::OPT_RELAY_MSG, &message);
        message = out;
    }
    message
}

/// Builds a Relay-Forw around a client message; tests and the benchmark use it.
pub fn wrap_forward(layer: &RelayLayer, message: &[u8]) -> Vec<u8> {
    let mut out = vec![field::MSG_RELAY_FORW, layer.hop_count];
    out.extend_from_slice(&layer.link_address.octets());
    out.extend_from_slice(&layer.peer_address.octets());
    if let Some(id) = &layer.interface_id {
        push_option(&mut out, field::OPT_INTERFACE_ID, id);
    }
    if let Some((kind, address)) = &layer.client_link_layer {
        let mut body = kind.to_be_bytes().to_vec();
        body.extend_from_slice(address);
        push_option(&mut out, field::OPT_CLIENT_LINKLAYER_ADDR, &body);
    }
    push_option(&mut out, field::OPT_RELAY_MSG, message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_status_code_option_too_short_for_dhcproto() {
        // Solicit with option 13 of length 0: dhcproto would underflow `len - 2`.
        let bytes = [1, 0, 0, 1, 0, 13, 0, 0];
        assert_eq!(
            decode_client_message(&bytes),
            Err(WireError::OptionTooShort {
                code: 13,
                len: 0,
                min: 2
            })
        );
    }

    #[test]
    fn rejects_fixed_width_option_with_another_length() {
        // Found by cargo fuzz: Preference of length 3 made dhcproto read one byte and
        // then decode the other two as the start of a Vendor Options header.
        let bytes = [
            7, 0, 3, 0xdd, 0, 7, 0, 3, 1, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            decode_client_message(&bytes),
            Err(WireError::OptionTooLong {
                code: 7,
                len: 3,
                max: 1
            })
        );
        assert!(decode_client_message(&[1, 0, 0, 1, 0, 14, 0, 1, 0]).is_err());
    }

    #[test]
    fn rejects_option_running_past_the_datagram() {
        let bytes = [1, 0, 0, 1, 0, 1, 0, 9, 1, 2];
        assert!(matches!(
            decode_client_message(&bytes),
            Err(WireError::OptionOverrun { code: 1, .. })
        ));
    }

    #[test]
    fn rejects_short_nested_option_inside_ia_na() {
        let mut bytes = vec![3, 0, 0, 1, 0, 3, 0, 16];
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(&[0, 13, 0, 0]);
        assert!(matches!(
            decode_client_message(&bytes),
            Err(WireError::OptionTooShort { code: 13, .. })
        ));
    }

    #[test]
    fn relay_layers_round_trip_through_forward_and_reply() {
        let inner_layer = RelayLayer {
            hop_count: 0,
            link_address: "2001:db8:1::1".parse().unwrap(),
            peer_address: "fe80::5054:ff:fe12:3456".parse().unwrap(),
            interface_id: Some(b"eth7".to_vec()),
            client_link_layer: Some((1, vec![0x52, 0x54, 0, 0x12, 0x34, 0x56])),
        };
        let outer_layer = RelayLayer {
            hop_count: 1,
            link_address: "::".parse().unwrap(),
            peer_address: "2001:db8:9::2".parse().unwrap(),
            interface_id: Some(b"up0".to_vec()),
            client_link_layer: None,
        };
        let message = [1u8, 0xaa, 0xbb, 0xcc];
        let forward = wrap_forward(&outer_layer, &wrap_forward(&inner_layer, &message));
        let unwrapped = unwrap_relays(&forward).unwrap();
        assert_eq!(unwrapped.client_message, &message);
        assert_eq!(
            unwrapped.relays,
            vec![outer_layer.clone(), inner_layer.clone()]
        );

        let reply = wrap_reply(&unwrapped.relays, vec![7, 0xaa, 0xbb, 0xcc]);
        assert_eq!(reply[0], field::MSG_RELAY_REPL);
        assert_eq!(reply[1], 1);
        let opts = options(&reply[field::RELAY_HEADER_LEN..]).unwrap();
        assert_eq!(opts[0], (field::OPT_INTERFACE_ID, &b"up0"[..]));
        let inner = opts[1].1;
        assert_eq!(inner[0], field::MSG_RELAY_REPL);
        let inner_opts = options(&inner[field::RELAY_HEADER_LEN..]).unwrap();
        assert_eq!(inner_opts[0], (field::OPT_INTERFACE_ID, &b"eth7"[..]));
        assert_eq!(
            inner_opts[1],
            (field::OPT_RELAY_MSG, &[7u8, 0xaa, 0xbb, 0xcc][..])
        );
    }

    #[test]
    fn rejects_relay_without_relay_message() {
        let layer = RelayLayer {
            hop_count: 0,
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: Ipv6Addr::UNSPECIFIED,
            interface_id: None,
            client_link_layer: None,
        };
        let mut bytes = wrap_forward(&layer, &[]);
        bytes.truncate(field::RELAY_HEADER_LEN);
        assert_eq!(unwrap_relays(&bytes), Err(WireError::NoRelayMessage));
    }
}

//! Which subnet (which link) a message is for.
//!
//! Relayed (RFC 8415 section 9.1): the relay layers are tried from the one closest to
//! the client outwards; in each, a `[[dhcp.subnets.relays]]` entry that matches the
//! layer's link-address and Interface-ID wins, then a subnet whose prefix holds the
//! layer's link-address when that is global. A relayed message that no layer maps is
//! dropped: its link is unknown, and the arrival interface is the relay's link, not
//! the client's. Direct: the subnet tied to the arrival interface, else the only
//! subnet (or the only one tied to no interface).

use core::net::Ipv6Addr;

use super::engine::Ignored;
use super::wire::RelayLayer;
use crate::config::Subnet;

/// The subnet for a message that arrived through `relays` (outermost first, empty
/// when direct) on `interface`. `Ok(None)`: direct, and no subnet serves the
/// interface. `Err`: relayed from a link no subnet maps.
pub(super) fn subnet_for<'c>(
    subnets: &'c [Subnet],
    relays: &[RelayLayer],
    interface: Option<&str>,
) -> Result<Option<&'c Subnet>, Ignored> {
    if let Some(innermost) = relays.last() {
        return relays
            .iter()
            .rev()
            .find_map(|layer| subnet_of_layer(subnets, layer))
            .map(Some)
            .ok_or_else(|| Ignored::UnmappedRelay {
                hops: relays.len(),
                link_address: innermost.link_address,
                interface_id: innermost.interface_id.as_deref().map(printable),
            });
    }
    if let Some(interface) = interface {
        if let Some(s) = subnets
            .iter()
            .find(|s| s.interface.as_deref() == Some(interface))
        {
            return Ok(Some(s));
        }
    }
    let mut untied = subnets.iter().filter(|s| s.interface.is_none());
    Ok(match (subnets.len(), untied.next(), untied.next()) {
        (1, _, _) => subnets.first(),
        (_, Some(only), None) => Some(only),
        _ => None,
    })
}

/// One layer: an explicit relay mapping first, then a global link-address inside a
/// subnet's prefix. `::` (an LDRA, RFC 6221) and link-local link-addresses name no
/// link by themselves.
fn subnet_of_layer<'c>(subnets: &'c [Subnet], layer: &RelayLayer) -> Option<&'c Subnet> {
    let interface_id = layer.interface_id.as_deref();
    subnets
        .iter()
        .find(|s| {
            s.relays
                .iter()
                .any(|m| m.matches(&layer.link_address, interface_id))
        })
        .or_else(|| {
            is_global(&layer.link_address)
                .then(|| {
                    subnets
                        .iter()
                        .find(|s| s.prefix.contains(&layer.link_address))
                })
                .flatten()
        })
}

fn is_global(address: &Ipv6Addr) -> bool {
    !address.is_unspecified() && address.segments()[0] & 0xffc0 != 0xfe80
}

/// An Interface-ID for a log line: the text when it is printable ASCII, else hex.
fn printable(id: &[u8]) -> String {
    if !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(id).into_owned()
    } else {
        format!("0x{}", hex::encode(id))
    }
}

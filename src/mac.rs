//! MAC addresses: the key operators use for their hosts.
//!
//! Parsing accepts every spelling a MAC reaches us in (`52:54:00:12:34:56`,
//! `52-54-00-12-34-56`, `525400123456`, any case, and iPXE's URL-encoded
//! `52%3A54%3A…` once percent-decoding is done by the caller). This module also holds
//! the two ways to recover a MAC that iPXE does not send: the EUI-64 interface
//! identifier of its link-local address (RFC 4291 appendix A) and the IAID that iPXE
//! derives from the MAC (`src/net/udp/dhcpv6.c`: `crc32_le(0, mac, 6)`).

use core::net::Ipv6Addr;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a MAC address: {reason} (write it as 52:54:00:12:34:56)")]
pub struct ParseMacError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl FromStr for Mac {
    type Err = ParseMacError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseMacError {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        let hex: String = if trimmed.contains([':', '-', '.']) {
            let groups: Vec<&str> = trimmed.split([':', '-', '.']).collect();
            match groups.len() {
                // 52:54:00:12:34:56 and 52-54-00-12-34-56
                6 if groups.iter().all(|g| g.len() == 2) => groups.concat(),
                // Cisco style 5254.0012.3456
                3 if groups.iter().all(|g| g.len() == 4) => groups.concat(),
                _ => return Err(fail("expected six two-digit groups")),
            }
        } else {
            trimmed.to_owned()
        };
        if hex.len() != 12 {
            return Err(fail("expected 12 hexadecimal digits"));
        }
        let mut bytes = [0u8; 6];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| fail("not a hexadecimal digit"))?;
        }
        Ok(Mac(bytes))
    }
}

impl fmt::Display for Mac {
    /// Lower case with colons, the form iPXE prints for `${net0/mac}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Mac {
    /// The hyphenated form (`52-54-00-12-34-56`) used in file names.
    pub fn hyphenated(&self) -> String {
        self.to_string().replace(':', "-")
    }

    /// The modified EUI-64 interface identifier (RFC 4291 appendix A): the MAC split
    /// by `ff:fe` with the universal/local bit flipped.
    pub fn eui64(&self) -> [u8; 8] {
        let m = self.0;
        [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
    }

    /// The link-local address a host with this MAC forms by SLAAC, as iPXE does.
    pub fn link_local(&self) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets[0] = 0xfe;
        octets[1] = 0x80;
        octets[8..].copy_from_slice(&self.eui64());
        Ipv6Addr::from(octets)
    }

    /// Recovers the MAC from an address whose interface identifier is a modified
    /// EUI-64 (bytes 11 and 12 are `ff:fe`); `None` for privacy or manual addresses.
    pub fn from_eui64_address(address: &Ipv6Addr) -> Option<Mac> {
        let o = address.octets();
        if o[11] != 0xff || o[12] != 0xfe {
            return None;
        }
        Some(Mac([o[8] ^ 0x02, o[9], o[10], o[13], o[14], o[15]]))
    }

    /// The IAID iPXE puts in its IA_NA: `crc32_le(0, mac, 6)`, a reflected CRC-32
    /// (polynomial 0xEDB88320) with initial value 0 and no final inversion. This is not
    /// zlib's CRC-32, which starts from and ends with `!0`.
    pub fn ipxe_iaid(&self) -> u32 {
        const IPXE_CRC32: crc::Algorithm<u32> = crc::Algorithm {
            width: 32,
            poly: 0x04c1_1db7,
            init: 0,
            refin: true,
            refout: true,
            xorout: 0,
            check: 0x2dfd_2d88,
            residue: 0,
        };
        crc::Crc::<u32>::new(&IPXE_CRC32).checksum(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_MAC: Mac = Mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    #[test]
    fn parses_every_common_spelling() {
        for text in [
            "52:54:00:12:34:56",
            "52-54-00-12-34-56",
            "525400123456",
            "52:54:00:12:34:56 ",
            "5254.0012.3456",
            "52:54:00:12:34:56".to_uppercase().as_str(),
        ] {
            assert_eq!(text.parse::<Mac>(), Ok(QEMU_MAC), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_macs_with_the_input_in_the_message() {
        for text in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:5g",
            "5:54:00:12:34:567",
        ] {
            let err = text.parse::<Mac>().unwrap_err();
            assert!(err.to_string().contains(text), "{err}");
        }
    }

    #[test]
    fn link_local_is_the_eui64_of_the_mac() {
        let ll: Ipv6Addr = "fe80::5054:ff:fe12:3456".parse().unwrap();
        assert_eq!(QEMU_MAC.link_local(), ll);
        assert_eq!(Mac::from_eui64_address(&ll), Some(QEMU_MAC));
        let privacy: Ipv6Addr = "fe80::1234:5678:9abc:def0".parse().unwrap();
        assert_eq!(Mac::from_eui64_address(&privacy), None);
    }

    #[test]
    fn iaid_matches_ipxe_not_zlib() {
        // Checked against iPXE's crc32_le(0, mac, 6) in FIELD-NOTES.
        assert_eq!(QEMU_MAC.ipxe_iaid(), 0xaa55_b0df);
        assert_ne!(QEMU_MAC.ipxe_iaid(), 0x1b97_117c);
    }
}

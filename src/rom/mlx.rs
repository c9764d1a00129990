//! Mellanox's `mlxsign:` expansion-ROM version records, which `mstflint … qrom` reads.
//!
//! mstflint (`mlxfwops/lib/fw_ops.cpp`, `GetExpRomVersion`) scans the whole ROM for the
//! magic `mlxsign:`, decodes the 12 bytes after it (`GetExpRomVerForOneRom`), resumes the
//! scan 12 bytes after the magic's start, and reports at most five records. [`find_all`]
//! follows the same rules so that what `sixboot rom inspect` shows is what flint shows, and
//! [`record`] writes one record that flint reads back.

use super::field::mlxsign as f;
use super::finding::{Finding, Problem};
use super::read_u32;

/// One version record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MlxVersion {
    /// File offset of the `mlxsign:` magic.
    pub offset: usize,
    /// 0x10 PXE, 0x11 UEFI, 0x12 CLP, … (mstflint `expRomType2Str`).
    pub product_id: u16,
    /// The version as flint prints it: "3.4.812", or one number for product 0xf.
    pub version: String,
    /// Device ID (product ID 0x10 and above; 0 means any device).
    pub device_id: Option<u16>,
    /// 1 AMD64, 2 AArch64, 3 both, 4 IA-32.
    pub cpu: Option<u8>,
    /// 0 IB, 1 Ethernet, 2 VPI, 0xff none.
    pub protocol: Option<u8>,
    pub port: Option<u8>,
}

impl MlxVersion {
    /// The product's name as mstflint prints it after `type=`.
    pub fn product_name(&self) -> &'static str {
        match self.product_id {
            0x1 => "CLP1",
            0x2 => "CLP2",
            0x3 => "CLP3",
            0x4 => "CLP4",
            0xf | 0x12 => "CLP",
            0x10 => "PXE",
            0x11 => "UEFI",
            0x13 => "NVMe",
            0x14 => "UEFI Virtio net",
            0x15 => "UEFI Virtio blk",
            0x16 => "PXE Virtio net",
            0x21 => "FCODE",
            _ => "unknown",
        }
    }
}

/// mstflint's name for a CPU value (`getRomSuppCpuStr`).
pub fn cpu_name(cpu: u8) -> &'static str {
    match cpu {
        1 => "AMD64",
        2 => "AARCH64",
        3 => "AMD64,AARCH64",
        4 => "IA32",
        _ => "N/A",
    }
}

/// mstflint's name for a protocol value (`getRomProtocolStr`).
pub fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        0 => "IB",
        1 => "ETH",
        2 => "VPI",
        _ => "N/A",
    }
}

/// Every record in `bytes`, in file order, with findings for cut-off records.
pub(crate) fn find_all(bytes: &[u8]) -> (Vec<MlxVersion>, Vec<Finding>) {
    let mut versions = Vec::new();
    let mut findings = Vec::new();
    let mut count = 0usize;
    let mut from = 0usize;
    let finder = memchr::memmem::Finder::new(f::MAGIC);
    while let Some(pos) = bytes.get(from..).and_then(|rest| finder.find(rest)) {
        let at = from + pos;
        count += 1;
        match decode(bytes, at) {
            Some(version) => versions.push(version),
            None => findings.push(Finding::in_file(Problem::MlxsignTruncated {
                offset: at,
                available: (bytes.len() - at).min(f::LEN),
            })),
        }
        // mstflint: `i += ROM_INFO_SIZE - 1` and the loop's `i++`.
        from = at + 12;
    }
    if count > f::MAX_RECORDS {
        findings.push(Finding::in_file(Problem::MlxsignTooMany { count }));
    }
    (versions, findings)
}

fn decode(bytes: &[u8], at: usize) -> Option<MlxVersion> {
    let word0 = read_u32(bytes, at, f::PRODUCT_AND_MAJOR)?;
    let word1 = read_u32(bytes, at, f::MINOR_AND_SUB)?;
    let product_id = (word0 >> 16) as u16;
    let major = word0 & 0xff;
    let mut version = MlxVersion {
        offset: at,
        product_id,
        version: format!("{major}.{}.{}", (word1 >> 16) & 0xff, word1 & 0xffff),
        device_id: None,
        cpu: None,
        protocol: None,
        port: None,
    };
    if product_id >= 0x10 {
        let word2 = read_u32(bytes, at, f::DEVICE_PORT_CPU_PROTO)?;
        version.device_id = Some((word2 >> 16) as u16);
        version.cpu = Some(((word2 >> 8) & 0xf) as u8);
        if product_id != 0x12 {
            version.port = Some(((word2 >> 12) & 0xf) as u8);
            version.protocol = Some((word2 & 0xff) as u8);
        }
    } else if product_id == 0xf {
        // A free-form version string follows: its length is bits 15..8 of the dword at 0xc
        // after the magic's end; flint prints the number it starts with.
        let word3 = read_u32(bytes, at + 8, 0xc..0x10)?;
        let str_len = ((word3 >> 8) & 0xff) as usize;
        let start = at + 8 + 0x10;
        let text = bytes.get(start..start + str_len)?;
        let text = String::from_utf8_lossy(text);
        let digits: String = text
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        version.version = if digits.is_empty() {
            major.to_string()
        } else {
            digits
        };
    } else {
        version.version = major.to_string();
    }
    Some(version)
}

/// One record for a product (PXE or UEFI) and version, as flint expects: port 0 (any),
/// CPU AMD64, protocol Ethernet. The caller checks that `major` and `minor` fit in a byte.
pub(crate) fn record(product_id: u16, version: (u16, u16, u16), device_id: u16) -> [u8; f::LEN] {
    let (major, minor, sub) = version;
    let word0 = u32::from(product_id) << 16 | u32::from(major & 0xff);
    let word1 = u32::from(minor & 0xff) << 16 | u32::from(sub);
    let word2 = u32::from(device_id) << 16 | u32::from(f::CPU_AMD64) << 8 | u32::from(f::PROTO_ETH);
    let mut out = [0u8; f::LEN];
    out[..8].copy_from_slice(f::MAGIC);
    out[f::PRODUCT_AND_MAJOR].copy_from_slice(&word0.to_le_bytes());
    out[f::MINOR_AND_SUB].copy_from_slice(&word1.to_le_bytes());
    out[f::DEVICE_PORT_CPU_PROTO].copy_from_slice(&word2.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_reads_back_as_written() {
        let mut bytes = vec![0xffu8; 7];
        bytes.extend_from_slice(&record(0x10, (3, 4, 812), 0x1013));
        let (versions, findings) = find_all(&bytes);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(versions.len(), 1);
        let v = &versions[0];
        assert_eq!(v.offset, 7);
        assert_eq!(v.product_name(), "PXE");
        assert_eq!(v.version, "3.4.812");
        assert_eq!(v.device_id, Some(0x1013));
        assert_eq!(v.cpu, Some(1));
        assert_eq!(v.protocol, Some(1));
        assert_eq!(v.port, Some(0));
    }

    #[test]
    fn cut_off_record_is_a_finding_not_a_panic() {
        let mut bytes = b"xxmlxsign:".to_vec();
        bytes.extend_from_slice(&[0x10, 0, 0x11]);
        let (versions, findings) = find_all(&bytes);
        assert!(versions.is_empty());
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].to_string().contains("cut off"),
            "{}",
            findings[0]
        );
    }
}

//! `[tftp]`: listeners, the root, and the limits on option negotiation.

use core::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawTftp;
use super::validator::Validator;

/// TFTP settings (the server is in `crate::tftp`).
#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// `[::]:69` when the file names none.
    pub listen: Vec<SocketAddr>,
    /// Files are served from below this directory only.
    pub root: PathBuf,
    /// Cap on the client's blksize (RFC 2348); default 1468, what OVMF and iPXE ask
    /// for, since bigger blocks are fragmented on a 1500-byte link.
    pub max_block_size: u16,
    /// Cap on the client's windowsize (RFC 7440); default 16.
    pub max_window_size: u16,
    /// Retransmission interval when the client asks for none; default 1 s.
    pub timeout: Duration,
    /// Retransmissions of one window before giving up; default 5.
    pub retries: u32,
    /// Transfers at once; default 256.
    pub max_transfers: usize,
}

impl TftpConfig {
    /// The defaults for everything but the root.
    pub fn with_root(root: PathBuf) -> TftpConfig {
        TftpConfig {
            listen: vec![SocketAddr::from((Ipv6Addr::UNSPECIFIED, 69))],
            root,
            max_block_size: 1468,
            max_window_size: 16,
            timeout: Duration::from_secs(1),
            retries: 5,
            max_transfers: 256,
        }
    }
}

/// Validates `[tftp]`; `None` (with a problem) when it has no root.
pub(super) fn validate(v: &mut Validator<'_>, t: &RawTftp) -> Option<TftpConfig> {
    let listen = v.socket_addresses(&t.listen, "tftp.listen", "[2001:db8:1::1]:69");
    let mut number = |value: &Option<Spanned<u32>>,
                      name: &str,
                      range: std::ops::RangeInclusive<u32>,
                      default: u32| {
        let Some(value) = value else {
            return default;
        };
        if range.contains(value.get_ref()) {
            *value.get_ref()
        } else {
            v.error(
                value.span(),
                &format!("tftp.{name}"),
                format!(
                    "{} is out of range: use {} to {}",
                    value.get_ref(),
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    };
    let defaults = TftpConfig::with_root(PathBuf::new());
    let max_block_size = number(
        &t.max_block_size,
        "max_block_size",
        8..=65464,
        defaults.max_block_size.into(),
    );
    let max_window_size = number(
        &t.max_window_size,
        "max_window_size",
        1..=64,
        defaults.max_window_size.into(),
    );
    let timeout_secs = number(&t.timeout_secs, "timeout_secs", 1..=255, 1);
    let retries = number(&t.retries, "retries", 0..=100, defaults.retries);
    let max_transfers = number(&t.max_transfers, "max_transfers", 1..=65536, 256);
    let Some(root) = &t.root else {
        v.error(
            0..0,
            "tftp.root",
            "[tftp] needs a root directory: add root = \"PATH\" (e.g. the dist/ of build-rom)"
                .into(),
        );
        return None;
    };
    Some(TftpConfig {
        listen: if t.listen.is_empty() {
            defaults.listen
        } else {
            listen
        },
        root: v.relative(root.get_ref()),
        // The ranges above keep these conversions lossless.
        max_block_size: max_block_size as u16,
        max_window_size: max_window_size as u16,
        timeout: Duration::from_secs(timeout_secs.into()),
        retries,
        max_transfers: max_transfers as usize,
    })
}

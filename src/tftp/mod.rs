//! A read-only TFTP server for firmware that cannot speak HTTP (UEFI PXE fetching
//! `ipxe.efi`, legacy PXE ROMs).
//!
//! RFC 1350 with options (RFC 2347): blksize (RFC 2348), timeout and tsize (RFC 2349),
//! windowsize (RFC 7440). Split the way the rest of sixboot is:
//! - [`wire`]: packets as bytes ([`wire::Packet`]) and as meaning ([`wire::Repr`]);
//! - [`path`]: which file names may be served (no `..`, nothing outside the root);
//! - [`transfer`]: one transfer as a state machine driven with hand-set time;
//! - [`server`]: the tokio shell that owns the sockets, files and timers. Its entry
//!   point is [`serve`]; the caller binds the listening socket (or uses [`bind`]).

pub mod path;
pub mod server;
pub mod transfer;
pub mod wire;

pub use server::{bind, serve, ServeError};
pub use transfer::Settings;

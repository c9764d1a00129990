//! The DHCPv6 server's logic (RFC 8415, RFC 5970 boot options, RFC 6939), with no
//! sockets and no clock.
//!
//! [`Engine::handle`] takes one datagram, the lease table and the time, and returns
//! the reply bytes plus the lease changes to persist before the reply is sent. The
//! `server` module owns the sockets, the log and the clock; tests drive the engine
//! with hand-set time.

mod engine;
pub mod wire;

pub use engine::{BootKind, Engine, Identity, Ignored, Outcome, Request};

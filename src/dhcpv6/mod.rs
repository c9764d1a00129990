//! The DHCPv6 server's logic (RFC 8415, RFC 5970 boot options, RFC 6939), with no
//! sockets and no clock.
//!
//! [`Engine::handle`] takes one datagram, the lease table and the time, and returns
//! the reply bytes plus the lease changes to persist before the reply is sent. Which
//! kind of boot client sent it and which boot options it gets is [`class`]; which
//! subnet it is on, `link`. The `server` module owns the sockets, the log and the
//! clock; tests drive the engine with hand-set time.

pub mod class;
mod engine;
mod link;
pub mod wire;

pub use class::{BootClient, ClientArch, ClientKind, Cpu};
pub use engine::{Engine, Identity, Ignored, Outcome, Request};

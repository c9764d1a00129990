//! sixboot: boot bare-metal fleets over IPv6.
//!
//! The library holds every piece of protocol and format logic as plain functions and
//! state machines that do no I/O of their own (see `ARCHITECTURE.md`); the binary and
//! the `server` module own sockets, files and the clock.

pub mod atomic_file;
pub mod bmc;
pub mod config;
pub mod dhcpv6;
pub mod http;
pub mod installer;
pub mod inventory;
pub mod leases;
pub mod mac;
pub mod privilege;
pub mod ra;
pub mod rom;
pub mod script;
pub mod server;
pub mod tftp;

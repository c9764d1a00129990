//! Argument definitions and handlers, one module per subcommand. Handlers return
//! `anyhow::Result<ExitCode>`: `Ok(FAILURE)` for a clean "no" (verify found problems),
//! `Err` for anything that stopped the command.

pub mod api;
pub mod bmc;
pub mod config;
pub mod generate;
pub mod hosts;
pub mod inventory;
pub mod reload;
pub mod rom;
pub mod script;
pub mod server;
pub mod tftp;

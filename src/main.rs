//! The `sixboot` command: one clap definition for every subcommand.
//!
//! Each subcommand's arguments and handler live in `cli/<name>.rs`; this file only
//! routes, and turns any error into `error: …` on stderr and a non-zero exit.

use clap::{CommandFactory, Parser, Subcommand};

mod cli;

/// Boot bare-metal fleets over IPv6: option-ROM tooling and an RA + DHCPv6 + HTTP boot server.
#[derive(Debug, Parser)]
#[command(name = "sixboot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read, verify and combine PCI option-ROM images.
    #[command(subcommand)]
    Rom(cli::rom::RomCommand),
    /// Serve router advertisements, DHCPv6, HTTP and TFTP to boot hosts.
    ///
    /// Runs as an unprivileged user: it needs CAP_NET_BIND_SERVICE for ports below 1024
    /// (DHCPv6 547, TFTP 69, HTTP 80, HTTPS 443) and CAP_NET_RAW for router
    /// advertisements, and names the listener whose capability is missing at start.
    /// Under systemd (Type=notify) it reports readiness once every listener is bound.
    /// SIGHUP reloads the config file and templates: a config that passes
    /// `sixboot config check` replaces the old one whole (leases, install flags and
    /// sockets stay); one that does not is logged with the same messages and the
    /// server goes on with the old one. SIGTERM or SIGINT stop it within seconds.
    BootServer(cli::server::BootServerArgs),
    /// Validate a boot-server configuration file.
    #[command(subcommand)]
    Config(cli::config::ConfigCommand),
    /// List the DHCPv6 leases the boot server has handed out.
    Leases(cli::server::LeasesArgs),
    /// Show hosts and their boot stage; mark them for installation.
    #[command(subcommand)]
    Hosts(cli::hosts::HostsCommand),
    /// A host's BMC over Redfish: power state and boot override, power on/off/cycle.
    #[command(subcommand)]
    Bmc(cli::bmc::BmcCommand),
    /// Check iPXE scripts the way the boot server checks them before serving.
    #[command(subcommand)]
    Script(cli::script::ScriptCommand),
    /// Serve only the [tftp] section of a boot-server config (read-only TFTP).
    Tftp(cli::tftp::TftpArgs),
    /// Write the man pages and shell completions (used by `cargo xtask package-deb`).
    #[command(hide = true)]
    Generate(cli::generate::GenerateArgs),
    /// Bearer tokens for the inventory API (/api/v1).
    #[command(subcommand)]
    Api(cli::api::ApiCommand),
    /// The inventory store: database schema, export and import between backends.
    #[command(subcommand)]
    Inventory(cli::inventory::InventoryCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rom(command) => cli::rom::run(command),
        Command::BootServer(args) => cli::server::run_boot_server(args),
        Command::Config(command) => cli::config::run(command),
        Command::Leases(args) => cli::server::run_leases(args),
        Command::Hosts(command) => cli::hosts::run(command),
        Command::Bmc(command) => cli::bmc::run(command),
        Command::Script(command) => cli::script::run(command),
        Command::Tftp(args) => cli::tftp::run(args),
        Command::Generate(args) => cli::generate::run(args, Cli::command()),
        Command::Api(command) => cli::api::run(command),
        Command::Inventory(command) => cli::inventory::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `sixboot bmc status|power`: a host's BMC over Redfish, found through the inventory
//! (`[hosts.bmc]` in the config, or `bmc` of a stored host). `hosts install --reboot`
//! (in `cli/hosts.rs`) uses the same client.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use sixboot::bmc::{Bmc, BmcSpec, PowerAction};
use sixboot::config::Config;
use sixboot::inventory::{self, live::seed_of, Host};

#[derive(Debug, Subcommand)]
pub enum BmcCommand {
    /// Show the host's system as its BMC reports it: power state, boot override, the
    /// boot targets and reset types it accepts.
    Status {
        /// The host's MAC (any spelling) or name.
        host: String,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Power the host on, off (ForceOff) or cycle it (ForceRestart, or On when off).
    Power {
        action: Power,
        /// The host's MAC (any spelling) or name.
        host: String,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Power {
    On,
    Off,
    Cycle,
}

pub fn run(command: BmcCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            BmcCommand::Status { host, config, json } => status(&config, &host, json).await,
            BmcCommand::Power {
                action,
                host,
                config,
            } => {
                let action = match action {
                    Power::On => PowerAction::On,
                    Power::Off => PowerAction::Off,
                    Power::Cycle => PowerAction::Cycle,
                };
                power(&config, &host, action).await
            }
        }
    })
}

/// The host (by MAC or name) and its BMC, from the config's inventory store.
pub async fn host_with_bmc(path: &Path, which: &str) -> anyhow::Result<(Config, Host, BmcSpec)> {
    let config = Config::load(path)?;
    let store = inventory::store_for(&config).await?;
    let inventory = inventory::load(&store, seed_of(&config.hosts)).await?;
    let host = super::hosts::find(&inventory, which, path)?.clone();
    let Some(bmc) = host.spec.bmc.as_deref().cloned() else {
        bail!(
            "{} ({}) has no BMC; add a [hosts.bmc] table with url, username and \
             password_file to its [[hosts]] entry in {}",
            host.spec.name,
            host.spec.mac,
            path.display()
        );
    };
    Ok((config, host, bmc))
}

#[derive(Debug, Serialize)]
struct StatusView {
    bmc: String,
    system: String,
    name: Option<String>,
    power_state: Option<String>,
    boot_override_enabled: Option<String>,
    boot_override_target: Option<String>,
    boot_override_mode: Option<String>,
    allowable_targets: Option<Vec<String>>,
    http_boot_uri_supported: bool,
    allowable_reset_types: Option<Vec<String>>,
}

async fn status(path: &Path, which: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (_, _, spec) = host_with_bmc(path, which).await?;
    let bmc = Bmc::connect(&spec)?;
    let system = bmc.find_system(spec.system.as_deref())?;
    let boot = system.resource.boot.clone().unwrap_or_default();
    let view = StatusView {
        bmc: bmc.url().to_owned(),
        system: system.path.clone(),
        name: system.resource.name.clone(),
        power_state: system.resource.power_state.clone(),
        boot_override_enabled: boot.enabled,
        boot_override_target: boot.target,
        boot_override_mode: boot.mode,
        allowable_targets: boot.allowable_targets,
        http_boot_uri_supported: boot.http_boot_uri.is_some(),
        allowable_reset_types: system
            .resource
            .actions
            .as_ref()
            .and_then(|a| a.reset.as_ref())
            .and_then(|r| r.allowable.clone()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let list = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map_or_else(|| "(not listed)".into(), |v| v.join(", "))
    };
    println!("BMC            {}", view.bmc);
    println!("system         {}", system.label());
    println!("power          {}", text(&view.power_state));
    println!(
        "boot override  {} {}{}",
        text(&view.boot_override_enabled),
        text(&view.boot_override_target),
        view.boot_override_mode
            .as_ref()
            .map(|m| format!(" (mode {m})"))
            .unwrap_or_default()
    );
    println!("targets        {}", list(&view.allowable_targets));
    println!(
        "HttpBootUri    {}",
        if view.http_boot_uri_supported {
            "supported"
        } else {
            "not offered"
        }
    );
    println!("reset types    {}", list(&view.allowable_reset_types));
    Ok(ExitCode::SUCCESS)
}

async fn power(path: &Path, which: &str, action: PowerAction) -> anyhow::Result<ExitCode> {
    let (_, host, spec) = host_with_bmc(path, which).await?;
    let bmc = Bmc::connect(&spec)?;
    let system = bmc.find_system(spec.system.as_deref())?;
    let state = system
        .resource
        .power_state
        .clone()
        .unwrap_or_else(|| "unknown".into());
    match bmc.power(&system, action)? {
        Some(reset_type) => println!(
            "BMC {}: {} ({}) was {state}: ComputerSystem.Reset {reset_type} accepted",
            bmc.url(),
            host.spec.name,
            system.label()
        ),
        None => println!(
            "BMC {}: {} ({}) is already {state}; nothing to do",
            bmc.url(),
            host.spec.name,
            system.label()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

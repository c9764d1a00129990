//! `sixboot hosts list` and `sixboot hosts install` (issue 5).
//!
//! Both read the same persisted state as the running boot server
//! (`state_dir/hosts.json`); `install` changes it under the same lock, and the server
//! sees the change on the host's next request.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use sixboot::config::Config;
use sixboot::hoststate::HostStates;
use sixboot::mac::Mac;

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// List hosts, their install flag and their last boot stage.
    List {
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Mark a host to install on its next boot (its iPXE script is served again).
    Install {
        /// The host's MAC, in any spelling (52:54:00:12:34:56, 52-54-…, 525400…).
        mac: String,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
        /// Turn the flag off instead: the host boots from its disk.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Serialize)]
struct HostRow {
    name: String,
    mac: Mac,
    address: Option<String>,
    install: bool,
    stage: &'static str,
    /// Seconds since the Unix epoch; absent when the host was never seen.
    stage_at: Option<u64>,
    detail: Option<String>,
}

pub fn run(command: HostsCommand) -> anyhow::Result<ExitCode> {
    match command {
        HostsCommand::List { config, json } => list(&config, json),
        HostsCommand::Install { mac, config, off } => install(&config, &mac, !off),
    }
}

fn list(path: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let states = HostStates::open(&config)?;
    let rows: Vec<HostRow> = config
        .hosts
        .iter()
        .filter_map(|host| {
            let record = states.get(&host.mac)?;
            Some(HostRow {
                name: host.name.clone(),
                mac: host.mac,
                address: host.address.map(|a| a.to_string()),
                install: record.install,
                stage: record.stage.as_str(),
                stage_at: (record.stage_at != 0).then_some(record.stage_at),
                detail: record.detail,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![[
        "NAME".to_owned(),
        "MAC".to_owned(),
        "ADDRESS".to_owned(),
        "INSTALL".to_owned(),
        "STAGE".to_owned(),
        "SINCE".to_owned(),
    ]];
    for row in &rows {
        let stage = match &row.detail {
            Some(detail) => format!("{} ({detail})", row.stage),
            None => row.stage.to_owned(),
        };
        table.push([
            row.name.clone(),
            row.mac.to_string(),
            row.address.clone().unwrap_or_else(|| "-".into()),
            if row.install { "yes" } else { "no" }.to_owned(),
            stage,
            row.stage_at.map_or("-".into(), |t| {
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(t))
            }),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn install(path: &std::path::Path, mac: &str, on: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let mac: Mac = mac.parse()?;
    let host = config.host(&mac).with_context(|| {
        format!(
            "{mac} is not among the [[hosts]] of {}; add it there first",
            path.display()
        )
    })?;
    let states = HostStates::open(&config)?;
    let was = states.set_install(&mac, on)?;
    let what = if on {
        "will install on its next boot"
    } else {
        "will boot from its disk"
    };
    let note = if was == on { " (unchanged)" } else { "" };
    println!("{} ({mac}) {what}{note}", host.name);
    Ok(ExitCode::SUCCESS)
}

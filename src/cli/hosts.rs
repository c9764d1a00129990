//! `sixboot hosts list|install|add|remove|import`.
//!
//! Every command goes through the inventory store the config names (the file backend
//! in `state_dir`, or PostgreSQL), the same store and the same rules
//! ([`sixboot::inventory::Inventory::apply`]) as the running boot server, which sees
//! the change within a second.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Serialize;
use sixboot::config::Config;
use sixboot::inventory::{
    self, live::now_millis, live::seed_of, token, BatchError, Change, HostSpec, Inventory, Origin,
    Stage,
};
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
        /// The host's MAC in any spelling (52:54:00:12:34:56, 52-54-…, 525400…) or its name.
        host: String,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
        /// Turn the flag off instead: the host boots from its disk.
        #[arg(long, conflicts_with = "reboot")]
        off: bool,
        /// Then, through the host's BMC (`[hosts.bmc]`, Redfish): set a one-time network
        /// boot, restart the machine (or power it on) and wait until the boot server
        /// sees it boot. If a BMC step fails, the install flag is put back as it was.
        #[arg(long)]
        reboot: bool,
        /// With --reboot: seconds to wait for the boot server to see the host.
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        wait: u64,
        /// With --reboot: wait until this stage (reply, script, files, kickstart, done);
        /// default: the first stage seen.
        #[arg(long, value_name = "STAGE")]
        until: Option<String>,
    },
    /// Add a host to the inventory store (served without a restart).
    Add {
        /// The host's MAC, in any spelling.
        mac: String,
        /// The host's name (default: the MAC with hyphens).
        #[arg(long)]
        name: Option<String>,
        /// Its fixed IPv6 address (inside one of dhcp.subnets).
        #[arg(long)]
        address: Option<String>,
        /// A template variable, KEY=VALUE (repeat for more).
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
        /// Its installer family (`anaconda`, `debian-installer`, or one the config
        /// defines; default: the config's `http.installer`).
        #[arg(long)]
        installer: Option<String>,
        /// Mark it for install right away.
        #[arg(long)]
        install: bool,
        #[command(flatten)]
        bmc: Box<BmcArgs>,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Remove a host the store holds (config hosts are removed from the config file).
    Remove {
        /// The host's MAC or name.
        host: String,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Add or update many hosts from a CSV file, all or none.
    Import {
        /// CSV with a header line `mac,name,address,vars,installer`; `vars` is `KEY=VALUE` pairs
        /// separated by `;`. Only `mac` is required.
        #[arg(long)]
        csv: PathBuf,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
}

/// A stored host's BMC (`[hosts.bmc]` for config hosts): given with `--bmc-url`.
#[derive(Debug, clap::Args)]
pub struct BmcArgs {
    /// Its BMC's Redfish URL, `https://[2001:db8:ff::10]`.
    #[arg(long, value_name = "URL")]
    bmc_url: Option<String>,
    /// The BMC user.
    #[arg(long, value_name = "USER", requires = "bmc_url")]
    bmc_username: Option<String>,
    /// A file holding the BMC password (stored by path, read at each use).
    #[arg(long, value_name = "FILE", requires = "bmc_username")]
    bmc_password_file: Option<PathBuf>,
    /// PEM CA certificates for the BMC's HTTPS.
    #[arg(long, value_name = "FILE", requires = "bmc_url")]
    bmc_ca_file: Option<PathBuf>,
    /// Do not check the BMC's certificate.
    #[arg(long, requires = "bmc_url", conflicts_with = "bmc_ca_file")]
    bmc_no_verify_tls: bool,
    /// The one-time boot to request: pxe or uefi-http.
    #[arg(long, value_name = "PATH", requires = "bmc_url")]
    bmc_boot: Option<String>,
    /// The ComputerSystem (Id, Name, UUID or path) when the BMC has several.
    #[arg(long, value_name = "ID", requires = "bmc_url")]
    bmc_system: Option<String>,
    /// Seconds each BMC request may take (default 20).
    #[arg(long, value_name = "SECONDS", requires = "bmc_url", value_parser = clap::value_parser!(u32).range(1..=600))]
    bmc_timeout: Option<u32>,
}

impl BmcArgs {
    /// The spec these flags describe; paths made absolute (the server reads them from
    /// its own working directory).
    fn spec(self) -> anyhow::Result<Option<sixboot::bmc::BmcSpec>> {
        let Some(url) = self.bmc_url else {
            return Ok(None);
        };
        sixboot::bmc::BmcSpec::check_url(&url).map_err(|e| anyhow::anyhow!("--bmc-url {e}"))?;
        if self.bmc_username.is_some() != self.bmc_password_file.is_some() {
            bail!("--bmc-username and --bmc-password-file go together");
        }
        let absolute = |path: PathBuf| -> anyhow::Result<PathBuf> {
            std::path::absolute(&path).with_context(|| format!("cannot resolve {}", path.display()))
        };
        let boot = match self.bmc_boot.as_deref() {
            None => sixboot::bmc::BootPath::Pxe,
            Some(text) => sixboot::bmc::BootPath::parse(text)
                .with_context(|| format!("--bmc-boot {text}: use pxe or uefi-http"))?,
        };
        let mut spec = sixboot::bmc::BmcSpec::new(&url);
        spec.username = self.bmc_username;
        spec.password_file = self.bmc_password_file.map(absolute).transpose()?;
        spec.ca_file = self.bmc_ca_file.map(absolute).transpose()?;
        spec.verify_tls = !self.bmc_no_verify_tls;
        spec.boot = boot;
        spec.system = self.bmc_system;
        spec.timeout_secs = self.bmc_timeout;
        Ok(Some(spec))
    }
}

#[derive(Debug, Serialize)]
struct HostRow {
    name: String,
    mac: Mac,
    address: Option<String>,
    /// The installer family; absent: the config's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    installer: Option<String>,
    install: bool,
    origin: Origin,
    stage: &'static str,
    /// Seconds since the Unix epoch; absent when the host was never seen.
    stage_at: Option<u64>,
    detail: Option<String>,
}

pub fn run(command: HostsCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            HostsCommand::List { config, json } => list(&config, json).await,
            HostsCommand::Install {
                host,
                config,
                off: _,
                reboot: true,
                wait,
                until,
            } => {
                let until = match until.as_deref() {
                    None => None,
                    Some(text) => Some(
                        Stage::parse(text)
                            .filter(|s| !matches!(s, Stage::None | Stage::LocalDisk))
                            .with_context(|| {
                                format!(
                                    "--until {text}: use reply, script, files, kickstart or done"
                                )
                            })?,
                    ),
                };
                install_and_reboot(&config, &host, Duration::from_secs(wait), until).await
            }
            HostsCommand::Install {
                host, config, off, ..
            } => install(&config, &host, !off).await,
            HostsCommand::Add {
                mac,
                name,
                address,
                vars,
                installer,
                install,
                bmc,
                config,
            } => {
                let mac: Mac = mac.parse()?;
                let spec =
                    HostSpec {
                        mac,
                        name: name.unwrap_or_else(|| mac.hyphenated()),
                        address: match address {
                            Some(a) => Some(a.parse().with_context(|| {
                                format!("--address `{a}` is not an IPv6 address")
                            })?),
                            None => None,
                        },
                        vars: parse_vars(vars.iter().map(String::as_str))
                            .map_err(|e| anyhow::anyhow!("--var {e}"))?,
                        installer,
                        bmc: (*bmc).spec()?.map(Box::new),
                    };
                add(&config, vec![spec], install).await
            }
            HostsCommand::Remove { host, config } => remove(&config, &host).await,
            HostsCommand::Import { csv, config } => import(&config, &csv).await,
        }
    })
}

/// `KEY=VALUE` pairs into template variables (strings).
fn parse_vars<'a>(
    pairs: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<String, toml::Value>, String> {
    let mut vars = BTreeMap::new();
    for pair in pairs.map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not KEY=VALUE"));
        };
        vars.insert(key.trim().to_owned(), toml::Value::String(value.to_owned()));
    }
    Ok(vars)
}

async fn open(path: &Path) -> anyhow::Result<(Config, inventory::Store, Inventory)> {
    let config = Config::load(path)?;
    let store = inventory::store_for(&config).await?;
    let inventory = inventory::load(&store, seed_of(&config.hosts)).await?;
    Ok((config, store, inventory))
}

async fn list(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (config, _, inventory) = open(path).await?;
    // Config hosts in the file's order, then the store's hosts by name.
    let hosts = config
        .hosts
        .iter()
        .filter_map(|h| inventory.get(&h.mac))
        .chain(
            inventory
                .sorted_by_name()
                .into_iter()
                .filter(|h| h.origin == Origin::Store),
        );
    let rows: Vec<HostRow> = hosts
        .map(|host| HostRow {
            name: host.spec.name.clone(),
            mac: host.spec.mac,
            address: host.spec.address.map(|a| a.to_string()),
            installer: host.spec.installer.clone(),
            install: host.state.install,
            origin: host.origin,
            stage: host.state.stage.as_str(),
            stage_at: (host.state.stage_at != 0).then_some(host.state.stage_at / 1000),
            detail: host.state.detail.clone(),
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

async fn install(path: &Path, which: &str, on: bool) -> anyhow::Result<ExitCode> {
    let (config, store, inventory) = open(path).await?;
    let host = find(&inventory, which, path)?;
    let (mac, name) = (host.spec.mac, host.spec.name.clone());
    let change = Change::SetInstall {
        mac,
        install: on,
        token: on.then(token::install_token),
    };
    let (_, applied) =
        inventory::apply_all_or_none(&store, seed_of(&config.hosts), &[change], now_millis())
            .await
            .map_err(|e| e.error)?;
    let was = applied[0].was_install == Some(on);
    let what = if on {
        "will install on its next boot"
    } else {
        "will boot from its disk"
    };
    let note = if was && !on { " (unchanged)" } else { "" };
    println!("{name} ({mac}) {what}{note}");
    Ok(ExitCode::SUCCESS)
}

/// `hosts install --reboot`: flag, then BMC (override, reset), then wait for the boot
/// server to see the host. The flag is set first so that the machine finds it when it
/// boots; when a BMC step fails it is put back as it was (left alone when it was on).
async fn install_and_reboot(
    path: &Path,
    which: &str,
    wait: Duration,
    until: Option<Stage>,
) -> anyhow::Result<ExitCode> {
    let (config, host, spec) = super::bmc::host_with_bmc(path, which).await?;
    let (mac, name) = (host.spec.mac, host.spec.name.clone());
    // Local problems (password file, CA file) before anything changes.
    let bmc = sixboot::bmc::Bmc::connect(&spec)?;
    let store = inventory::store_for(&config).await?;
    let seed = seed_of(&config.hosts);
    let was_on = host.state.install;
    let mut seen = if was_on {
        println!("{name} ({mac}) is already marked for install (its install token is kept)");
        host.state.clone()
    } else {
        let change = Change::SetInstall {
            mac,
            install: true,
            token: Some(token::install_token()),
        };
        let (_, applied) =
            inventory::apply_all_or_none(&store, seed.clone(), &[change], now_millis())
                .await
                .map_err(|e| e.error)?;
        println!("{name} ({mac}) will install on its next boot");
        applied[0]
            .host
            .as_ref()
            .map_or_else(|| host.state.clone(), |h| h.state.clone())
    };
    let http_boot_uri = config
        .boot
        .file(
            sixboot::dhcpv6::class::BootMethod::Http,
            sixboot::dhcpv6::class::Cpu::X86_64,
        )
        .map(str::to_owned);
    let url = bmc.url().to_owned();
    let reset_at = std::time::Instant::now();
    let result = bmc.reboot_to_network(
        spec.system.as_deref(),
        spec.boot,
        http_boot_uri.as_deref(),
        &mut |step| println!("BMC {url}: {step}"),
    );
    if let Err(err) = result {
        if !was_on {
            let change = Change::SetInstall {
                mac,
                install: false,
                token: None,
            };
            match inventory::apply_all_or_none(&store, seed, &[change], now_millis()).await {
                Ok(_) => eprintln!("{name} ({mac}): install flag put back to off"),
                Err(undo) => eprintln!(
                    "{name} ({mac}): cannot put the install flag back to off ({}); run \
                     `sixboot hosts install {name} --off`",
                    undo.error
                ),
            }
        }
        return Err(err.into());
    }
    println!(
        "waiting up to {} s for the boot server to see {name} boot",
        wait.as_secs()
    );
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let inventory = inventory::load(&store, seed_of(&config.hosts)).await?;
        let Some(now) = inventory.get(&mac) else {
            bail!("{name} ({mac}) was removed from the inventory while it was rebooting");
        };
        let state = &now.state;
        if (state.boot, state.stage, state.stage_at) != (seen.boot, seen.stage, seen.stage_at) {
            let detail = state
                .detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            println!(
                "boot server: {name} reached {}{detail} {:.1} s after the reset",
                state.stage.as_str(),
                reset_at.elapsed().as_secs_f64()
            );
            seen = state.clone();
            let reached = match until {
                None => true,
                Some(stage) => state.stage == stage || (stage == Stage::Done && !state.install),
            };
            if reached {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if reset_at.elapsed() > wait {
            bail!(
                "the BMC restarted {name} but the boot server saw no{} boot stage within {} s; \
                 the install flag stays on (check the machine's console, or \
                 `sixboot hosts install {name} --off`)",
                until
                    .map(|s| format!(" `{}`", s.as_str()))
                    .unwrap_or_default(),
                wait.as_secs()
            );
        }
    }
}

/// The host a MAC (any spelling) or a name means; a word that is neither a known name
/// nor a MAC is reported as a bad MAC when it looks like one.
pub(crate) fn find<'a>(
    inventory: &'a Inventory,
    which: &str,
    path: &Path,
) -> anyhow::Result<&'a sixboot::inventory::Host> {
    if let Some(host) = inventory.find(which) {
        return Ok(host);
    }
    match which.parse::<Mac>() {
        Ok(mac) => bail!(
            "{mac} is not among the [[hosts]] of {} nor in its inventory store; add it first \
             (`sixboot hosts add`)",
            path.display()
        ),
        Err(err) if which.contains([':', '-']) => Err(err.into()),
        Err(_) => bail!(
            "no host named `{which}` in {} or its inventory store",
            path.display()
        ),
    }
}

async fn add(path: &Path, specs: Vec<HostSpec>, install: bool) -> anyhow::Result<ExitCode> {
    let (config, store, inventory) = open(path).await?;
    let templates = sixboot::installer::Catalog::load(&config)?;
    let subnets: Vec<_> = config.dhcp.subnets.iter().map(|s| s.prefix).collect();
    let mut changes = Vec::with_capacity(specs.len());
    for spec in &specs {
        inventory::model::check_spec(spec, &subnets)
            .and_then(|()| inventory::check_templates(&templates, spec))
            .with_context(|| format!("host {}", spec.mac))?;
        changes.push(match inventory.get(&spec.mac) {
            Some(existing) if existing.origin == Origin::Store => Change::Update {
                spec: spec.clone(),
                expected_version: None,
            },
            _ => Change::Create {
                spec: spec.clone(),
                install,
                token: install.then(token::install_token),
            },
        });
    }
    match inventory::apply_all_or_none(&store, seed_of(&config.hosts), &changes, now_millis()).await
    {
        Ok((_, applied)) => {
            if specs.len() == 1 {
                println!("added {} ({})", specs[0].name, specs[0].mac);
            } else {
                println!("{} hosts added or updated", applied.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(BatchError {
            index: Some(i),
            error,
        }) => bail!(
            "host {} ({}): {error}; nothing was changed",
            specs[i].mac,
            specs[i].name
        ),
        Err(err) => Err(err.error.into()),
    }
}

async fn remove(path: &Path, which: &str) -> anyhow::Result<ExitCode> {
    let (config, store, inventory) = open(path).await?;
    let host = find(&inventory, which, path)?;
    let (mac, name) = (host.spec.mac, host.spec.name.clone());
    let change = Change::Remove {
        mac,
        expected_version: None,
    };
    inventory::apply_all_or_none(&store, seed_of(&config.hosts), &[change], now_millis())
        .await
        .map_err(|e| e.error)?;
    println!("removed {name} ({mac})");
    Ok(ExitCode::SUCCESS)
}

async fn import(path: &Path, csv_path: &Path) -> anyhow::Result<ExitCode> {
    let specs = read_csv(csv_path)?;
    add(path, specs, false).await
}

/// Reads `mac,name,address,vars,installer` rows; every bad row is reported with its line.
fn read_csv(path: &Path) -> anyhow::Result<Vec<HostSpec>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no header line", path.display()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let Some(mac_column) = column("mac") else {
        bail!(
            "{}:1: the header has no `mac` column (expected mac,name,address,vars,installer)",
            path.display()
        );
    };
    for (i, header) in headers.iter().enumerate() {
        if !["mac", "name", "address", "vars", "installer"]
            .contains(&header.to_ascii_lowercase().as_str())
        {
            bail!(
                "{}:1: column {} `{header}` is not one of mac, name, address, vars, installer",
                path.display(),
                i + 1
            );
        }
    }
    let (name_column, address_column, vars_column, installer_column) = (
        column("name"),
        column("address"),
        column("vars"),
        column("installer"),
    );
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                problems.push(format!("{}:{line}: {err}", path.display()));
                continue;
            }
        };
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).filter(|v| !v.is_empty());
        let mac = match field(Some(mac_column)).unwrap_or("").parse::<Mac>() {
            Ok(mac) => mac,
            Err(err) => {
                problems.push(format!("{}:{line}: mac: {err}", path.display()));
                continue;
            }
        };
        let address = match field(address_column).map(str::parse) {
            None => None,
            Some(Ok(address)) => Some(address),
            Some(Err(_)) => {
                problems.push(format!(
                    "{}:{line}: address: `{}` is not an IPv6 address",
                    path.display(),
                    field(address_column).unwrap_or("")
                ));
                continue;
            }
        };
        let vars = match parse_vars(field(vars_column).unwrap_or("").split(';')) {
            Ok(vars) => vars,
            Err(err) => {
                problems.push(format!("{}:{line}: vars: {err}", path.display()));
                continue;
            }
        };
        specs.push(HostSpec {
            mac,
            name: field(name_column).map_or_else(|| mac.hyphenated(), str::to_owned),
            address,
            vars,
            installer: field(installer_column).map(str::to_owned),
            bmc: None,
        });
    }
    if !problems.is_empty() {
        bail!(
            "{} bad row{} in {}; nothing was imported:\n  {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            path.display(),
            problems.join("\n  ")
        );
    }
    Ok(specs)
}

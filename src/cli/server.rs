//! `sixboot boot-server` and `sixboot leases` (issue 4).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use sixboot::config::Config;
use sixboot::leases::{self, Lease};

#[derive(Debug, Args)]
pub struct BootServerArgs {
    /// The boot-server TOML file.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct LeasesArgs {
    /// The boot-server TOML file (its state_dir holds the leases).
    #[arg(long)]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Logs go to stderr; `RUST_LOG` overrides the default `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM, the two ways operators and service managers stop it.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub fn run_boot_server(args: BootServerArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = Arc::new(Config::load(&args.config)?);
    // Errors stopped `load`; warnings are risky, not fatal: say them and go on.
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if !config.ra.enabled {
        tracing::info!("router advertisements are off ([ra] enabled = false): clients need another router's RA with M or O set to start DHCPv6");
    }
    // Everything that can fail on a bad config or a missing permission fails here,
    // before anything is served: inventory, templates, files root, every socket.
    let inventory = Arc::new(sixboot::inventory::open(&config)?);
    let http_app = if config.http.listen.is_empty() && config.http.tls_listen.is_empty() {
        None
    } else {
        Some(Arc::new(sixboot::http::App::new(
            &config,
            inventory.clone(),
        )?))
    };
    let sockets = sixboot::server::bind(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve_all(config, sockets, http_app));
    // Every stage seen is written before the process ends (the writer drains its
    // queue when the last handle goes).
    drop(runtime);
    drop(inventory);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Runs DHCPv6/RA, HTTP and TFTP under one shutdown: a signal stops all three, and so
/// does any one of them ending with an error, so the process never stays half alive.
async fn serve_all(
    config: Arc<Config>,
    sockets: sixboot::server::Sockets,
    http_app: Option<Arc<sixboot::http::App>>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(sixboot::server::run(config.clone(), sockets, stopped()));
    if let Some(app) = http_app {
        let listeners = sixboot::http::bind(&config.http.listen)?;
        let tls_listeners = sixboot::http::bind(&config.http.tls_listen)?;
        tasks.spawn(sixboot::http::serve_with_tls(
            app,
            listeners,
            tls_listeners,
            stopped(),
        ));
    }
    if let Some(tftp) = config.tftp.clone() {
        for &address in &tftp.listen {
            let (tftp, stop) = (tftp.clone(), stopped());
            // Stop-and-wait TFTP is one round trip per block, so the wake-up latency per
            // ACK is the transfer speed: each listener gets a current-thread runtime of its
            // own instead of a work-stealing one that hands every wake-up between threads.
            tasks.spawn(async move {
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("cannot start the TFTP runtime")?;
                    runtime.block_on(async move {
                        let socket = sixboot::tftp::server::bind(address)
                            .with_context(|| format!("cannot bind tftp.listen {address}"))?;
                        Ok(sixboot::tftp::server::serve(&tftp, socket, stop).await?)
                    })
                })
                .await?
            });
        }
    }
    let mut failure = None;
    tokio::select! {
        () = shutdown_signal() => {}
        Some(ended) = tasks.join_next() => {
            failure = Some(match ended {
                Ok(Ok(())) => anyhow::anyhow!("a server task stopped on its own"),
                Ok(Err(err)) => err,
                Err(err) => anyhow::anyhow!("a server task panicked: {err}"),
            });
        }
    }
    let _ = stop_tx.send(true);
    while let Some(ended) = tasks.join_next().await {
        if let (Ok(Err(err)), None) = (ended, &failure) {
            failure = Some(err);
        }
    }
    failure.map_or(Ok(()), Err)
}

fn format_expiry(lease: &Lease, now: u64) -> String {
    if lease.expires <= now {
        "expired".into()
    } else {
        format!("{}s", lease.expires - now)
    }
}

pub fn run_leases(args: LeasesArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let table = leases::read_leases(&config.state_dir)?;
    let all = table.leases();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!(
        "{:<40} {:<17} {:<13} {:<12} {:>9}  DUID/IAID",
        "ADDRESS", "MAC", "MAC FROM", "HOST", "EXPIRES"
    );
    for lease in &all {
        let source = lease
            .mac_source
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".into());
        let state = if lease.declined {
            "declined".to_owned()
        } else {
            format_expiry(lease, now)
        };
        println!(
            "{:<40} {:<17} {:<13} {:<12} {:>9}  {}/{}",
            lease.address.to_string(),
            lease.key.mac.map_or("-".into(), |m| m.to_string()),
            source,
            lease.host.as_deref().unwrap_or("-"),
            state,
            hex::encode(&lease.key.duid),
            lease.key.iaid
        );
    }
    eprintln!(
        "{} lease{} in {}",
        all.len(),
        if all.len() == 1 { "" } else { "s" },
        config.state_dir.join(leases::LEASE_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

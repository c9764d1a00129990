//! `sixboot boot-server` and `sixboot leases` (issues 4 and 18): logging (text or
//! JSON), the capability check before anything is bound, systemd readiness
//! (`sd_notify`), SIGHUP reload and a bounded shutdown on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use sd_notify::NotifyState;

use sixboot::config::Config;
use sixboot::leases::{self, Lease};
use sixboot::privilege;

use super::reload;

#[derive(Debug, Args)]
pub struct BootServerArgs {
    /// The boot-server TOML file.
    #[arg(long)]
    pub config: PathBuf,
    /// Log lines as plain text (default) or as one JSON object per line, with each
    /// event's fields (mac, host, stage, peer…) as top-level keys.
    #[arg(long, value_enum, env = "SIXBOOT_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event (the default).
    Text,
    /// One JSON object per line; the event's fields are top-level keys.
    Json,
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

/// Logs go to stderr (journald under systemd); `RUST_LOG` overrides the default `info`.
/// JSON lines carry the event's fields at the top level (`flatten_event`), so a boot
/// event is `{"stage":"script","mac":"…","host":"…","peer":"…",…}` for Loki or jq.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Fails with one line per listener when this process lacks a capability that a
/// listener of `config` needs (RA → `CAP_NET_RAW`, ports below 1024 →
/// `CAP_NET_BIND_SERVICE`), before anything is bound. Root passes (it has all).
fn check_capabilities(config: &Config) -> anyhow::Result<()> {
    for interface in &config.interfaces {
        if nix::net::if_::if_nametoindex(interface.as_str()).is_err() {
            anyhow::bail!(
                "interface `{interface}` does not exist here: create it, or fix \
                 server.interfaces in the config (see `ip link`)"
            );
        }
    }
    // Without /proc (or with a status we cannot read) the binds below still explain
    // a refusal; this check only makes the message come first and complete.
    let Some(effective) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| privilege::parse_status_capabilities(&status, "CapEff"))
    else {
        return Ok(());
    };
    let port_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024);
    let missing = privilege::missing(&privilege::needs(config, port_start), effective);
    if !missing.is_empty() {
        anyhow::bail!("{}", privilege::explain_missing(&missing));
    }
    Ok(())
}

/// Tells systemd (`Type=notify`) how the service is doing; nothing when not run by it.
fn notify(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(false, states) {
        tracing::debug!(%err, "sd_notify failed");
    }
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
    init_logging(args.log_format);
    let config = Arc::new(Config::load(&args.config)?);
    // Errors stopped `load`; warnings are risky, not fatal: say them and go on.
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if !config.ra.enabled {
        tracing::info!("router advertisements are off ([ra] enabled = false): clients need another router's RA with M or O set to start DHCPv6");
    }
    // Everything that can fail on a bad config or a missing permission fails here,
    // before anything is served: capabilities, inventory, templates, files root,
    // every socket.
    check_capabilities(&config)?;
    let inventory = Arc::new(sixboot::inventory::open(&config)?);
    // One set of counters for the whole process: DHCPv6, RA, TFTP and HTTP count in
    // it, `/metrics` serves it, and a reload keeps it.
    let metrics = Arc::new(sixboot::metrics::Metrics::for_config(&config));
    let http_app = reload::build_app(&config, &inventory)?
        .map(|app| Arc::new(app.with_metrics(metrics.clone())));
    // The TLS certificate against the https:// boot URLs: risky, not fatal.
    for warning in sixboot::http::tls_warnings(&config) {
        tracing::warn!("{warning}");
    }
    let sockets = sixboot::server::bind(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve_all(
        &args.config,
        config,
        sockets,
        http_app,
        inventory.clone(),
        metrics,
    ));
    notify(&[NotifyState::Stopping]);
    // Every stage seen is written before the process ends (the writer drains its
    // queue when the last handle goes).
    drop(runtime);
    drop(inventory);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Runs DHCPv6/RA, HTTP and TFTP under one shutdown: a signal stops all three, and so
/// does any one of them ending with an error, so the process never stays half alive.
/// SIGHUP reloads `path` (see [`reload`]); systemd hears READY=1 once every listener
/// is bound, RELOADING=1 … READY=1 around each reload and STOPPING=1 at the end.
async fn serve_all(
    path: &Path,
    config: Arc<Config>,
    sockets: sixboot::server::Sockets,
    http_app: Option<Arc<sixboot::http::App>>,
    inventory: Arc<sixboot::inventory::Live>,
    metrics: Arc<sixboot::metrics::Metrics>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed before READY=1, so that a SIGHUP right after start is a reload and
    // never the default action (terminate).
    let mut hangups = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let (config_tx, configs) = tokio::sync::watch::channel(config.clone());
    let mut live = reload::Serving {
        configs: config_tx,
        apps: None,
        inventory,
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(report_attention(
        live.inventory.clone(),
        configs.clone(),
        stopped(),
    ));
    let (dhcp_started, dhcp_ready) = tokio::sync::oneshot::channel();
    tasks.spawn(sixboot::server::run_reloadable(
        configs,
        Some(live.inventory.clone()),
        metrics.clone(),
        sockets,
        dhcp_started,
        stopped(),
    ));
    if let Some(app) = http_app {
        let listeners = sixboot::http::bind(&config.http.listen)?;
        let tls_listeners = sixboot::http::bind(&config.http.tls_listen)?;
        let (app_tx, apps) = tokio::sync::watch::channel(app);
        live.apps = Some(app_tx);
        tasks.spawn(sixboot::http::serve_reloadable(
            apps,
            listeners,
            tls_listeners,
            stopped(),
        ));
    }
    let mut tftp_bound = Vec::new();
    if let Some(tftp) = config.tftp.clone() {
        for &address in &tftp.listen {
            let (tftp, stop) = (tftp.clone(), stopped());
            let reporting = sixboot::tftp::server::Reporting {
                metrics: metrics.clone(),
                inventory: Some(live.inventory.clone()),
            };
            let (bound_tx, bound_rx) = tokio::sync::oneshot::channel::<()>();
            tftp_bound.push(bound_rx);
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
                        let socket = sixboot::tftp::server::bind(address).map_err(|err| {
                            if err.kind() == std::io::ErrorKind::PermissionDenied {
                                anyhow::anyhow!(
                                    "cannot bind tftp.listen {address}: permission denied; \
                                     TFTP on a port below 1024 needs CAP_NET_BIND_SERVICE"
                                )
                            } else {
                                anyhow::Error::new(err)
                                    .context(format!("cannot bind tftp.listen {address}"))
                            }
                        })?;
                        let _ = bound_tx.send(());
                        Ok(
                            sixboot::tftp::server::serve_reporting(&tftp, socket, stop, reporting)
                                .await?,
                        )
                    })
                })
                .await?
            });
        }
    }
    // READY=1 only once the lease log is open and every TFTP listener is bound too
    // (a failure drops its sender and ends its task with the error, reported below).
    let mut all_bound = dhcp_ready.await.is_ok();
    for bound in tftp_bound {
        all_bound &= bound.await.is_ok();
    }
    if all_bound {
        tracing::info!(config = %path.display(), "boot server ready");
        notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
    }
    let mut failure = None;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = hangups.recv() => {
                reload_now(path, &live).await;
            }
            Some(ended) = tasks.join_next() => {
                failure = Some(match ended {
                    Ok(Ok(())) => anyhow::anyhow!("a server task stopped on its own"),
                    Ok(Err(err)) => err,
                    Err(err) => anyhow::anyhow!("a server task panicked: {err}"),
                });
                break;
            }
        }
    }
    notify(&[NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    while let Some(ended) = tasks.join_next().await {
        if let (Ok(Err(err)), None) = (ended, &failure) {
            failure = Some(err);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// How often the inventory is scanned for hosts that became stuck or looping.
const ATTENTION_SCAN: std::time::Duration = std::time::Duration::from_secs(30);

/// Logs (warn) each host when it becomes stuck or looping by `[monitor]`'s thresholds
/// (the reloaded config's, after a reload), until `stop`.
async fn report_attention(
    inventory: Arc<sixboot::inventory::Live>,
    configs: tokio::sync::watch::Receiver<Arc<Config>>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use sixboot::inventory::timeline::format_utc;
    use sixboot::inventory::{Alert, Alerts};
    let mut alerts = Alerts::default();
    let mut ticks = tokio::time::interval(ATTENTION_SCAN);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = ticks.tick() => {}
        }
        let watch = configs.borrow().monitor.watch();
        let snapshot = inventory.snapshot();
        let now = sixboot::inventory::live::now_millis();
        for alert in alerts.scan(&snapshot, now, &watch) {
            match alert {
                Alert::Stuck { mac, name, since } => tracing::warn!(
                    target: "sixboot::boot", %mac, host = %name, since = %format_utc(since),
                    stuck_after_mins = watch.stuck_after / 60_000,
                    "host stuck: its install started and has not reached /done"
                ),
                Alert::Looping {
                    mac,
                    name,
                    first,
                    second,
                } => tracing::warn!(
                    target: "sixboot::boot", %mac, host = %name, first = %format_utc(first),
                    second = %format_utc(second),
                    "possible boot loop: the script was fetched twice without /done"
                ),
            }
        }
    }
}

/// One SIGHUP: swap in the config at `path` if it checks out, else log why (the same
/// text as `sixboot config check`) and keep serving the old one.
async fn reload_now(path: &Path, live: &reload::Serving) {
    let mut reloading = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        reloading.push(now);
    }
    notify(&reloading);
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    match reload::prepare(path, live) {
        Ok(next) => {
            let n_hosts = next.config.hosts.len();
            if let Err(err) = live.swap_in(next).await {
                tracing::error!(config = %path.display(), "reload failed, still serving the previous config: {err:#}");
                notify(&[
                    NotifyState::Ready,
                    NotifyState::Status("serving the previous config: the reload failed"),
                ]);
                return;
            }
            tracing::info!(config = %path.display(), hosts = n_hosts, "reloaded: serving the new config");
            notify(&[
                NotifyState::Ready,
                NotifyState::Status("serving (reloaded)"),
            ]);
        }
        Err(report) => {
            tracing::error!(
                config = %path.display(),
                "reload rejected, still serving the previous config:\n{report}"
            );
            notify(&[
                NotifyState::Ready,
                NotifyState::Status("serving the previous config: the reload was rejected"),
            ]);
        }
    }
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

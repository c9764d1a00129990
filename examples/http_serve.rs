//! Runs only the HTTP half of the boot server from a config file, until Ctrl-C or
//! SIGTERM: for `cargo xtask bench http` and for trying templates and boot files
//! without RA or DHCPv6.
//!
//! `cargo run --release --example http_serve -- CONFIG`; `SIXBOOT_HTTP_WORKERS=N`
//! sets the number of HTTP worker threads (default: one per CPU).

use std::sync::Arc;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let path = std::env::args_os()
        .nth(1)
        .context("usage: http_serve CONFIG")?;
    let config = sixboot::config::Config::load(path.as_ref())?;
    let mut app = sixboot::http::App::from_config(&config)?;
    if let Some(n) = std::env::var("SIXBOOT_HTTP_WORKERS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        app.limits.workers = n;
    }
    let app = Arc::new(app);
    let listeners = sixboot::http::bind(&config.http.listen)?;
    let tls_listeners = sixboot::http::bind(&config.http.tls_listen)?;
    for listener in listeners.iter().chain(&tls_listeners) {
        println!("listening on {}", listener.local_addr()?);
    }
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    sixboot::http::serve_with_tls(app, listeners, tls_listeners, shutdown).await
}

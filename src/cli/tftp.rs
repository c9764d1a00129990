//! `sixboot tftp`: only the TFTP part of a boot-server config, on its own.
//!
//! For networks where another DHCPv6 server hands out `tftp://` boot URLs, and for
//! `cargo xtask bench tftp`. `sixboot boot-server` runs the same server next to
//! RA, DHCPv6 and HTTP.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use sixboot::config::Config;

#[derive(Debug, Args)]
pub struct TftpArgs {
    /// The boot-server TOML file; its `[tftp]` section is served.
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: TftpArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let Some(tftp) = config.tftp else {
        bail!(
            "{} has no [tftp] section; add one with root = \"DIR\"",
            args.config.display()
        );
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    // One thread for every transfer, as dnsmasq does: TFTP is stop-and-wait, so each
    // ACK's wake-up latency is the transfer's speed. Measured on 5 × 10 MB at blksize
    // 512: the same time and CPU as dnsmasq, where the multi-threaded runtime took 40 %
    // more CPU and had 2 s outliers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let mut servers = tokio::task::JoinSet::new();
        for &address in &tftp.listen {
            let socket = sixboot::tftp::bind(address).with_context(|| {
                format!(
                    "cannot bind TFTP to {address} (port 69 needs root or CAP_NET_BIND_SERVICE)"
                )
            })?;
            let tftp = tftp.clone();
            servers.spawn(async move {
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                sixboot::tftp::serve(&tftp, socket, shutdown).await
            });
        }
        while let Some(result) = servers.join_next().await {
            result.context("TFTP server task failed")??;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

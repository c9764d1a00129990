//! `sixboot api token create|list|revoke`: bearer tokens for `/api/v1`.
//!
//! A new token is shown once (or written to a file with mode 0600) and stored only as
//! its SHA-256; it is never logged.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use sixboot::config::Config;
use sixboot::inventory::{self, live::now_millis, token};

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// API bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once (or written to --output), only its hash is kept.
    Create {
        /// A name for the token (who or what uses it).
        #[arg(long)]
        name: String,
        /// Write the token to this new file (mode 0600) instead of printing it.
        #[arg(long)]
        output: Option<PathBuf>,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
    /// List tokens (id, name, created, revoked); never the tokens themselves.
    List {
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke a token by its id or name: requests with it get 401 from then on.
    Revoke {
        /// The token's id (the 8 hex characters after `sixboot_`) or its name.
        token: String,
        /// The boot-server TOML file.
        #[arg(long)]
        config: PathBuf,
    },
}

pub fn run(command: ApiCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let ApiCommand::Token(command) = command;
    runtime.block_on(async move {
        match command {
            TokenCommand::Create {
                name,
                output,
                config,
            } => {
                let config = Config::load(&config)?;
                let store = inventory::store_for(&config).await?;
                let (text, record) = token::new_api_token(&name, now_millis());
                if let Some(path) = &output {
                    // Written before the hash is stored: a token nobody can read is
                    // never valid.
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    file.write_all(format!("{text}\n").as_bytes())
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                let id = record.id.clone();
                store.add_api_token(record).await?;
                match output {
                    Some(path) => eprintln!("token {id} ({name}) written to {}", path.display()),
                    None => {
                        println!("{text}");
                        eprintln!(
                            "token {id} ({name}): shown once, store it now; only its hash is kept"
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            TokenCommand::List { config } => {
                let config = Config::load(&config)?;
                let store = inventory::store_for(&config).await?;
                println!("{:<10} {:<20} {:<30} REVOKED", "ID", "NAME", "CREATED");
                for t in store.api_tokens().await? {
                    let date = |ms: u64| {
                        httpdate::fmt_http_date(
                            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                        )
                    };
                    println!(
                        "{:<10} {:<20} {:<30} {}",
                        t.id,
                        t.name,
                        date(t.created_at),
                        t.revoked_at.map_or("-".to_owned(), date)
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            TokenCommand::Revoke { token, config } => {
                let config = Config::load(&config)?;
                let store = inventory::store_for(&config).await?;
                if !store.revoke_api_token(&token, now_millis()).await? {
                    bail!("no live token with id or name `{token}` (see `sixboot api token list`)");
                }
                println!("revoked {token}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

//! `sixboot inventory migrate|export|import`: the database schema, and moving the
//! inventory between backends (file ↔ PostgreSQL) as one JSON document.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use sixboot::config::{Config, InventoryBackend};
use sixboot::inventory::{self, ApiToken, RowWrite, Rows};

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Create or update the PostgreSQL schema (refinery migrations; idempotent).
    Migrate {
        /// The boot-server TOML file (its [inventory] names the database).
        #[arg(long)]
        config: PathBuf,
    },
    /// Write the store's hosts, states and API token hashes as JSON (stdout or --output).
    Export {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Load a document written by `export` into an empty store (all or none).
    Import {
        /// The JSON document.
        file: PathBuf,
        #[arg(long)]
        config: PathBuf,
    },
}

/// What `export` writes and `import` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    rows: Rows,
    #[serde(default)]
    api_tokens: Vec<ApiToken>,
}

const FORMAT: &str = "sixboot-inventory";

pub fn run(command: InventoryCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            InventoryCommand::Migrate { config } => migrate(&config).await,
            InventoryCommand::Export { config, output } => export(&config, output.as_deref()).await,
            InventoryCommand::Import { file, config } => import(&config, &file).await,
        }
    })
}

async fn migrate(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let InventoryBackend::Postgres(pg) = &config.inventory.backend else {
        println!("the file backend needs no migration ([inventory] backend = \"file\")");
        return Ok(ExitCode::SUCCESS);
    };
    let store = inventory::postgres::PgStore::connect(pg).await?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        println!("the inventory schema is current");
    } else {
        for name in applied {
            println!("applied {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(path: &Path, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let store = inventory::store_for(&config).await?;
    let document = Document {
        format: FORMAT.into(),
        version: 1,
        rows: store.load().await?,
        api_tokens: store.api_tokens().await?,
    };
    let mut text = serde_json::to_vec_pretty(&document)?;
    text.push(b'\n');
    match output {
        Some(out) => sixboot::atomic_file::write(out, &text)?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&text)?;
        }
    }
    eprintln!(
        "exported {} hosts, {} states, {} API tokens",
        document.rows.hosts.len(),
        document.rows.states.len(),
        document.api_tokens.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn import(path: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let document: Document = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an inventory export", file.display()))?;
    if document.format != FORMAT || document.version != 1 {
        bail!(
            "{} is `{}` version {}, not {FORMAT} version 1",
            file.display(),
            document.format,
            document.version
        );
    }
    let store = inventory::store_for(&config).await?;
    let existing = store.load().await?;
    if !existing.hosts.is_empty() || !existing.states.is_empty() {
        bail!(
            "the target store already holds {} hosts and {} states; import goes into an empty \
             store only (nothing was changed)",
            existing.hosts.len(),
            existing.states.len()
        );
    }
    // Every row is checked by the model first (unique names and addresses).
    let inventory = inventory::Inventory::new(Vec::new(), document.rows.clone());
    if inventory.len() != document.rows.hosts.len() {
        bail!("the document has hosts the model refuses; nothing was changed");
    }
    let mut writes = Vec::new();
    for host in document.rows.hosts.values() {
        writes.push(RowWrite::PutHost {
            host: host.clone(),
            expected: None,
        });
    }
    for (mac, state) in &document.rows.states {
        writes.push(RowWrite::PutState {
            mac: *mac,
            state: state.clone(),
            expected: None,
        });
    }
    store.commit(&writes).await?;
    for token in document.api_tokens {
        store.add_api_token(token).await?;
    }
    println!(
        "imported {} hosts and {} states into the {} backend",
        document.rows.hosts.len(),
        document.rows.states.len(),
        match config.inventory.backend {
            InventoryBackend::File => "file",
            InventoryBackend::Postgres(_) => "postgres",
        }
    );
    Ok(ExitCode::SUCCESS)
}

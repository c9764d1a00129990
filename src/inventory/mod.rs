//! The fleet inventory: hosts, install flags with per-install tokens, boot events and
//! API tokens, behind one store interface with two backends.
//!
//! - [`model`] is the pure core: [`Inventory`] (every host in memory) and
//!   [`Inventory::apply`], which checks a [`Change`] and returns the [`RowWrite`]s to
//!   persist. No I/O, no clock, no randomness.
//! - [`Store`] is the interface a backend implements: load every row, commit row
//!   writes all-or-none with version guards, append and read boot events, keep API
//!   tokens. [`file::FileStore`] keeps them in `state_dir` (the default, nothing to
//!   set up).
//! - [`live::Live`] is what a running server holds: the current inventory as an
//!   `Arc` snapshot swapped atomically (read by the DHCPv6 and HTTP paths without a
//!   lock or a store round trip), a bounded non-blocking queue of boot observations,
//!   and one writer thread that owns the store, applies every change in one place and
//!   publishes the next snapshot.

pub mod file;
pub mod live;
pub mod model;
pub mod outbox;
pub mod postgres;
pub mod token;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use live::Live;
pub use model::{
    check_spec, Applied, BootEvent, Change, ChangeError, Host, HostSpec, HostState, Inventory,
    Observation, Origin, RowWrite, Rows, Stage, StoredHost, UnixMillis,
};

use crate::mac::Mac;

/// An API bearer token as stored: only its SHA-256, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The public part of the token (`sixboot_{id}_{secret}`), to find it and revoke it.
    pub id: String,
    /// What the operator called it (`--name`).
    pub name: String,
    /// Hex SHA-256 of the whole token text.
    pub hash: String,
    pub created_at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixMillis>,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] crate::atomic_file::AtomicWriteError),
    #[error("{} is not a sixboot inventory file ({message}); move it away to start from the config's hosts", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// A row changed since it was read (another server or the CLI wrote it).
    #[error("host {mac} was changed by someone else at the same time; try again")]
    Conflict { mac: Mac },
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// The database cannot be reached (the server goes on from its cache).
    #[error("the inventory database is unreachable: {0}")]
    Unavailable(String),
    #[error("inventory database: {0}")]
    Database(String),
}

/// What changed in a store since a server last read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// Everything (the file was replaced; the database connection was remade).
    Full(Rows),
    /// These hosts' rows as they are now (`None`: the row is gone).
    Changed(Vec<(Mac, Option<StoredHost>, Option<HostState>)>),
}

/// The store interface both backends implement: the file backend (blocking calls,
/// made from the inventory's own thread) and PostgreSQL.
#[derive(Debug)]
pub enum Store {
    File(file::FileStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Every stored row.
    pub async fn load(&self) -> Result<Rows, StoreError> {
        match self {
            Store::File(s) => s.load(),
            Store::Postgres(s) => s.load().await,
        }
    }

    /// Persists `writes` all or none; [`StoreError::Conflict`] when a row's version is
    /// not the expected one.
    pub async fn commit(&self, writes: &[RowWrite]) -> Result<(), StoreError> {
        match self {
            Store::File(s) => s.commit(writes),
            Store::Postgres(s) => s.commit_op(None, writes).await.map(|_| ()),
        }
    }

    /// Whether rows changed since this store last read or wrote them, as far as it can
    /// tell without reading them (a `stat`; a NOTIFY received).
    pub async fn changed(&self) -> bool {
        match self {
            Store::File(s) => s.changed(),
            Store::Postgres(s) => s.changed(),
        }
    }

    /// What changed since the last read ([`Store::changed`] says whether to ask).
    pub async fn poll(&self) -> Result<Delta, StoreError> {
        match self {
            Store::File(s) => s.load().map(Delta::Full),
            Store::Postgres(s) => s.poll().await,
        }
    }

    /// Records boot events (PostgreSQL skips an `id` already stored).
    pub async fn append_events(&self, events: &[BootEvent]) -> Result<(), StoreError> {
        match self {
            Store::File(s) => s.append_events(events),
            Store::Postgres(s) => s.append_events(events).await,
        }
    }

    /// The host's events of its last `max_boots` boots, oldest first.
    pub async fn events(&self, mac: &Mac, max_boots: u64) -> Result<Vec<BootEvent>, StoreError> {
        match self {
            Store::File(s) => s.events(mac, max_boots),
            Store::Postgres(s) => s.events(mac, max_boots).await,
        }
    }

    /// Every API token (hashes only).
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        match self {
            Store::File(s) => s.api_tokens(),
            Store::Postgres(s) => s.api_tokens().await,
        }
    }

    /// Stores a new API token.
    pub async fn add_api_token(&self, token: ApiToken) -> Result<(), StoreError> {
        match self {
            Store::File(s) => s.update_api_tokens(|tokens| {
                tokens.push(token);
                Ok(())
            }),
            Store::Postgres(s) => s.add_api_token(&token).await,
        }
    }

    /// Revokes the token with this id or name at `now`; false when none matched.
    pub async fn revoke_api_token(
        &self,
        id_or_name: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        match self {
            Store::File(s) => s.update_api_tokens(|tokens| {
                let mut found = false;
                for token in tokens.iter_mut() {
                    if (token.id == id_or_name || token.name == id_or_name)
                        && token.revoked_at.is_none()
                    {
                        token.revoked_at = Some(now);
                        found = true;
                    }
                }
                Ok(found)
            }),
            Store::Postgres(s) => s.revoke_api_token(id_or_name, now).await,
        }
    }
}

/// This machine's host name, the default server name in boot events.
pub fn default_server_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sixboot".to_owned())
}

/// The store a config names: the file backend in `server.state_dir`, or PostgreSQL
/// (connected, schema checked; the caller's runtime runs its connections).
pub async fn store_for(config: &crate::config::Config) -> anyhow::Result<Store> {
    match &config.inventory.backend {
        crate::config::InventoryBackend::File => {
            Ok(Store::File(file::FileStore::open(&config.state_dir)))
        }
        crate::config::InventoryBackend::Postgres(pg) => {
            let store = postgres::PgStore::connect(pg).await?;
            store.check_schema().await?;
            Ok(Store::Postgres(store))
        }
    }
}

/// Opens the config's store and starts the live inventory over the config's hosts:
/// the one function that turns "config + store" into what a server serves.
pub fn open(config: &crate::config::Config) -> anyhow::Result<Live> {
    use anyhow::Context;
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create server.state_dir {}; create it or point state_dir elsewhere",
            config.state_dir.display()
        )
    })?;
    let server_name = config
        .inventory
        .server_name
        .clone()
        .unwrap_or_else(default_server_name);
    Live::start(
        config.clone(),
        live::seed_of(&config.hosts),
        server_name,
        Some(config.state_dir.join(outbox::OUTBOX_FILE)),
    )
    .context("cannot open the inventory")
}

/// A refused change in a batch: which one (0-based) and why.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BatchError {
    /// The change that failed, when a change (not the store) failed.
    pub index: Option<usize>,
    pub error: StoreError,
}

/// Loads the store's rows over `seed` and applies `changes` all or none: either every
/// change is valid and all their rows are committed at once, or nothing is written.
/// Retries (three times) when another writer changed a row in between. For the CLI and
/// imports; a running server uses [`Live::apply`].
pub async fn apply_all_or_none(
    store: &Store,
    seed: Vec<(HostSpec, bool)>,
    changes: &[Change],
    now: UnixMillis,
) -> Result<(Inventory, Vec<Applied>), BatchError> {
    let store_error = |error| BatchError { index: None, error };
    let mut inventory = Inventory::new(seed, store.load().await.map_err(store_error)?);
    for _attempt in 0..3 {
        let before = inventory.clone();
        let mut applied = Vec::with_capacity(changes.len());
        let mut writes = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            match inventory.apply(change, now) {
                Ok(done) => {
                    writes.extend(done.writes.iter().cloned());
                    applied.push(done);
                }
                Err(error) => {
                    return Err(BatchError {
                        index: Some(index),
                        error: error.into(),
                    })
                }
            }
        }
        match store.commit(&writes).await {
            Ok(()) => return Ok((inventory, applied)),
            Err(StoreError::Conflict { .. }) => {
                inventory = before.with_rows(store.load().await.map_err(store_error)?);
            }
            Err(error) => return Err(store_error(error)),
        }
    }
    Err(store_error(StoreError::Unavailable(
        "the inventory kept changing under this command; try again".into(),
    )))
}

/// The store's rows over `seed`, read once (what `hosts list` shows).
pub async fn load(store: &Store, seed: Vec<(HostSpec, bool)>) -> Result<Inventory, StoreError> {
    Ok(Inventory::new(seed, store.load().await?))
}

/// Renders a host's script and answer file with its installer family's templates and
/// lints them, as start-up does for config hosts: an API or CLI host that would be
/// served broken is refused (`vars`, the field templates read), and so is one that
/// names an installer family the server does not have (`installer`).
pub fn check_templates(
    templates: &crate::installer::Catalog,
    spec: &HostSpec,
) -> Result<(), ChangeError> {
    if let Some(family) = spec
        .installer
        .as_deref()
        .filter(|f| !templates.has_family(f))
    {
        return Err(ChangeError::Invalid {
            field: "installer",
            message: format!(
                "no installer family `{family}`: use a built-in one ({}) or define \
                 [installers.{family}] in the config",
                crate::installer::BUILT_IN
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let host = spec.to_config_host(true);
    let prepared = templates.prepare_install(&host, "0000000000000000");
    let result = templates
        .script_prepared(&prepared)
        .and_then(|_| templates.answer_prepared(&prepared));
    result.map(|_| ()).map_err(|err| ChangeError::Invalid {
        field: "vars",
        message: err.to_string(),
    })
}

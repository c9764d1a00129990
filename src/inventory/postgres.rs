//! The PostgreSQL backend: the inventory shared by every boot server of a fleet.
//!
//! Tables (`migrations/V1__inventory.sql`, applied by refinery with
//! `sixboot inventory migrate`): `hosts` (definition: mac, unique name and address,
//! the spec as `jsonb`, version), `host_states` (install, token, version, stage, …),
//! `boot_events`, `api_tokens`, `applied_ops`. Every row write gets the next value of
//! one sequence (`revision`, set by a trigger) and every writing statement sends
//! `NOTIFY sixboot_inventory`; deletes leave a tombstone. A server `LISTEN`s on its own
//! connection and, when notified, reads only the rows whose revision is past the last
//! one it saw ([`PgStore::poll`]); after a reconnect it reads everything again.
//!
//! Writers serialise on a transaction-level advisory lock, so revisions are handed
//! out in commit order and a reader that has seen revision N has seen every commit up
//! to it. Each row write checks the version it expects (`UPDATE … WHERE version =
//! $expected`, `INSERT … ON CONFLICT DO NOTHING`): a row another server changed first
//! refuses the whole transaction with [`StoreError::Conflict`]. Unique names and
//! addresses are also constraints, reported as a conflict on that field.
//!
//! Connections: tokio-postgres through a deadpool pool, TLS with rustls (ring) and the
//! CA file the config names; the password from a file. Every call has a timeout; a
//! connection failure is [`StoreError::Unavailable`], which the live writer answers by
//! serving from memory and queueing (see [`super::outbox`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::model::{
    BootEvent, ChangeError, HostSpec, HostState, RowWrite, Rows, Stage, StoredHost,
};
use super::{ApiToken, Delta, StoreError};
use crate::config::PostgresConfig;
use crate::mac::Mac;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The channel every writing statement notifies.
pub const CHANNEL: &str = "sixboot_inventory";
/// The advisory lock key writers serialise on ("sixboot" in ASCII).
const WRITE_LOCK: i64 = 0x0073_6978_626f_6f74;
/// Longest wait for one call to the database.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a new connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The inventory in PostgreSQL.
pub struct PgStore {
    pool: Pool,
    pg_config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    use_tls: bool,
    /// Set by the LISTEN task on every notification.
    notified: Arc<AtomicBool>,
    /// Set when the LISTEN connection was (re)made: read everything again.
    need_full: Arc<AtomicBool>,
    /// The highest revision read so far.
    cursor: Mutex<i64>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("tls", &self.use_tls)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// Sorts a tokio-postgres error: connection trouble is `Unavailable`, a unique
/// violation on a name or address a conflict on that field, the rest `Database`.
fn classify(err: tokio_postgres::Error) -> StoreError {
    if let Some(db) = err.as_db_error() {
        if db.code() == &SqlState::UNIQUE_VIOLATION {
            let field = match db.constraint() {
                Some(c) if c.contains("name") => "name",
                Some(c) if c.contains("address") => "address",
                _ => "mac",
            };
            return StoreError::Change(ChangeError::Conflict {
                field,
                message: format!(
                    "another host already has this {field} (database: {})",
                    db.message()
                ),
            });
        }
        if db.code() == &SqlState::UNDEFINED_TABLE {
            return StoreError::Database(format!(
                "{}; run `sixboot inventory migrate --config …` first",
                db.message()
            ));
        }
        return StoreError::Database(db.message().to_owned());
    }
    unavailable(err)
}

async fn timed<T, E: Into<StoreError>>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(unavailable("no answer within 5 s")),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> StoreError {
        classify(err)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> StoreError {
        match err {
            deadpool_postgres::PoolError::Backend(err) => classify(err),
            other => unavailable(other),
        }
    }
}

/// The TLS setup for a CA file (or none).
fn rustls_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read inventory.ca_file {}", path.display()))?;
        for cert in certs {
            let cert =
                cert.with_context(|| format!("inventory.ca_file {} is not PEM", path.display()))?;
            roots.add(cert).with_context(|| {
                format!("inventory.ca_file {}: bad certificate", path.display())
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl PgStore {
    /// Connects as the config says: the URL, the password from `password_file`, TLS
    /// verified against `ca_file` when it is set. Checks that the schema is current.
    pub async fn connect(config: &PostgresConfig) -> anyhow::Result<PgStore> {
        use anyhow::Context;
        let mut pg_config: tokio_postgres::Config = config
            .url
            .parse()
            .context("inventory.url is not a PostgreSQL connection string")?;
        if let Some(path) = &config.password_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read inventory.password_file {}", path.display())
            })?;
            pg_config.password(text.lines().next().unwrap_or("").trim_end());
        }
        pg_config.connect_timeout(CONNECT_TIMEOUT);
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("sixboot");
        }
        let use_tls = config.ca_file.is_some();
        if use_tls {
            pg_config.ssl_mode(tokio_postgres::config::SslMode::Require);
        } else if pg_config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            anyhow::bail!(
                "inventory.url asks for sslmode=require: set inventory.ca_file to the CA that \
                 signed the database's certificate"
            );
        } else {
            pg_config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config(
            config.ca_file.as_deref(),
        )?);
        let manager = Manager::from_config(
            pg_config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(4)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .context("cannot build the PostgreSQL pool")?;
        Ok(PgStore {
            pool,
            pg_config,
            tls,
            use_tls,
            notified: Arc::new(AtomicBool::new(false)),
            need_full: Arc::new(AtomicBool::new(true)),
            cursor: Mutex::new(0),
            listener: Mutex::new(None),
        })
    }

    /// Applies every pending schema migration (refinery); returns their names.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let (mut client, connection) = timed(self.pg_config.connect(self.tls.clone())).await?;
        let task = tokio::spawn(connection);
        let report = embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")));
        drop(client);
        let _ = task.await;
        Ok(report?
            .applied_migrations()
            .iter()
            .map(|m| m.to_string())
            .collect())
    }

    /// Whether the schema is current; `Err` names the step to take if not.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        // A connection of its own: pooled connections belong to the runtime that made
        // them, and the store may move to the inventory's thread after this.
        let (client, connection) = timed(self.pg_config.connect(self.tls.clone())).await?;
        let task = tokio::spawn(connection);
        let result = self.schema_of(&client).await;
        drop(client);
        let _ = task.await;
        result
    }

    async fn schema_of(&self, client: &tokio_postgres::Client) -> Result<(), StoreError> {
        let latest = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0);
        let row =
            timed(client.query_opt("SELECT max(version) FROM refinery_schema_history", &[])).await;
        let applied: Option<i32> = match row {
            Ok(Some(row)) => row.get(0),
            Ok(None) => None,
            Err(StoreError::Database(_)) => None,
            Err(err) => return Err(err),
        };
        if applied.map(i64::from) == Some(i64::from(latest)) {
            Ok(())
        } else {
            Err(StoreError::Database(format!(
                "the inventory database has schema {} but this sixboot needs {latest}; run \
                 `sixboot inventory migrate --config …`",
                applied.map_or("none".to_owned(), |v| v.to_string())
            )))
        }
    }

    /// Starts the LISTEN connection (on the current runtime), reconnecting after
    /// failures; each (re)connection asks for a full read.
    pub fn listen(&self) {
        // Idle pooled connections were made on another runtime (the caller's, before
        // the store moved to the inventory's thread): drop them.
        self.pool.retain(|_, _| false);
        let (pg_config, tls) = (self.pg_config.clone(), self.tls.clone());
        let (notified, need_full) = (self.notified.clone(), self.need_full.clone());
        let task = tokio::spawn(async move {
            loop {
                match tokio::time::timeout(CONNECT_TIMEOUT, pg_config.connect(tls.clone())).await {
                    Ok(Ok((client, mut connection))) => {
                        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
                        let notified = notified.clone();
                        let pump = tokio::spawn(async move {
                            loop {
                                let message =
                                    std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                                match message {
                                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                        notified.store(true, Ordering::SeqCst);
                                    }
                                    Some(Ok(_)) => {}
                                    Some(Err(_)) | None => break,
                                }
                            }
                            let _ = done_tx.send(());
                        });
                        let listening = tokio::time::timeout(
                            CALL_TIMEOUT,
                            client.batch_execute(&format!("LISTEN {CHANNEL}")),
                        )
                        .await;
                        if matches!(listening, Ok(Ok(()))) {
                            need_full.store(true, Ordering::SeqCst);
                            // Keep the client alive while the connection lives.
                            let _ = (&mut done_rx).await;
                        } else {
                            pump.abort();
                        }
                        drop(client);
                        tracing::warn!("inventory LISTEN connection lost; reconnecting");
                    }
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "inventory LISTEN connection failed")
                    }
                    Err(_) => tracing::debug!("inventory LISTEN connection timed out"),
                }
                need_full.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Whether a notification (or a reconnect) came since the last [`PgStore::poll`].
    pub fn changed(&self) -> bool {
        self.notified.load(Ordering::SeqCst) || self.need_full.load(Ordering::SeqCst)
    }

    /// Every row.
    pub async fn load(&self) -> Result<Rows, StoreError> {
        let client = timed(self.pool.get()).await?;
        let cursor = timed(client.query_one("SELECT last_value FROM sixboot_revision", &[]))
            .await?
            .get::<_, i64>(0);
        let hosts = timed(client.query("SELECT spec, version FROM hosts", &[])).await?;
        let states = timed(client.query(
            "SELECT mac, install, token, version, stage, stage_at, detail, boot FROM host_states",
            &[],
        ))
        .await?;
        let mut rows = Rows::default();
        for row in hosts {
            let host = stored_host(&row)?;
            rows.hosts.insert(host.spec.mac, host);
        }
        for row in states {
            let (mac, state) = host_state(&row)?;
            rows.states.insert(mac, state);
        }
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
        Ok(rows)
    }

    /// What changed since the last read: every row again after a reconnect, else the
    /// rows past the last revision seen.
    pub async fn poll(&self) -> Result<Delta, StoreError> {
        if self.need_full.swap(false, Ordering::SeqCst) {
            self.notified.store(false, Ordering::SeqCst);
            return match self.load().await {
                Ok(rows) => Ok(Delta::Full(rows)),
                Err(err) => {
                    self.need_full.store(true, Ordering::SeqCst);
                    Err(err)
                }
            };
        }
        self.notified.store(false, Ordering::SeqCst);
        let since = *self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let client = timed(self.pool.get()).await?;
        let changed = timed(client.query(
            "SELECT mac, revision FROM hosts WHERE revision > $1 \
             UNION ALL SELECT mac, revision FROM host_states WHERE revision > $1 \
             UNION ALL SELECT mac, revision FROM deleted_rows WHERE revision > $1",
            &[&since],
        ))
        .await;
        let changed = match changed {
            Ok(changed) => changed,
            Err(err) => {
                self.notified.store(true, Ordering::SeqCst);
                return Err(err);
            }
        };
        if changed.is_empty() {
            return Ok(Delta::Changed(Vec::new()));
        }
        let mut macs: Vec<String> = Vec::new();
        let mut cursor = since;
        for row in &changed {
            macs.push(row.get(0));
            cursor = cursor.max(row.get(1));
        }
        macs.sort();
        macs.dedup();
        let hosts = timed(client.query(
            "SELECT spec, version FROM hosts WHERE mac = ANY($1)",
            &[&macs],
        ))
        .await?;
        let states = timed(client.query(
            "SELECT mac, install, token, version, stage, stage_at, detail, boot FROM host_states \
             WHERE mac = ANY($1)",
            &[&macs],
        ))
        .await?;
        let mut by_mac: BTreeMap<Mac, (Option<StoredHost>, Option<HostState>)> = BTreeMap::new();
        for text in &macs {
            if let Ok(mac) = text.parse() {
                by_mac.insert(mac, (None, None));
            }
        }
        for row in hosts {
            let host = stored_host(&row)?;
            let mac = host.spec.mac;
            by_mac.entry(mac).or_default().0 = Some(host);
        }
        for row in states {
            let (mac, state) = host_state(&row)?;
            by_mac.entry(mac).or_default().1 = Some(state);
        }
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = cursor;
        Ok(Delta::Changed(
            by_mac
                .into_iter()
                .map(|(mac, (host, state))| (mac, host, state))
                .collect(),
        ))
    }

    /// Persists `writes` in one transaction (all or none). With `op`, also records the
    /// op id in `applied_ops`; returns `false` (and writes nothing) when it was already
    /// there: a replayed outbox entry is applied once.
    pub async fn commit_op(
        &self,
        op: Option<&str>,
        writes: &[RowWrite],
    ) -> Result<bool, StoreError> {
        if writes.is_empty() && op.is_none() {
            return Ok(true);
        }
        let mut client = timed(self.pool.get()).await?;
        let transaction = timed(client.transaction()).await?;
        timed(transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])).await?;
        if let Some(op) = op {
            let inserted = timed(transaction.execute(
                "INSERT INTO applied_ops (id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&op],
            ))
            .await?;
            if inserted == 0 {
                return Ok(false);
            }
        }
        // New hosts and new states go in bulk (an import of 100,000 hosts is two
        // statements); every other write is one guarded statement.
        let mut new_hosts: Vec<&StoredHost> = Vec::new();
        let mut new_states: Vec<(Mac, &HostState)> = Vec::new();
        for write in writes {
            match write {
                RowWrite::PutHost {
                    host,
                    expected: None,
                } => new_hosts.push(host),
                RowWrite::PutState {
                    mac,
                    state,
                    expected: None,
                } => new_states.push((*mac, state)),
                _ => {}
            }
        }
        if !new_hosts.is_empty() {
            let macs: Vec<String> = new_hosts.iter().map(|h| h.spec.mac.to_string()).collect();
            let names: Vec<&str> = new_hosts.iter().map(|h| h.spec.name.as_str()).collect();
            let addresses: Vec<Option<String>> = new_hosts
                .iter()
                .map(|h| h.spec.address.map(|a| a.to_string()))
                .collect();
            let specs: Vec<serde_json::Value> = new_hosts
                .iter()
                .map(|h| serde_json::to_value(&h.spec).expect("a spec always serializes"))
                .collect();
            let versions: Vec<i64> = new_hosts.iter().map(|h| h.version as i64).collect();
            let n = timed(transaction.execute(
                "INSERT INTO hosts (mac, name, address, spec, version) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[]) \
                 ON CONFLICT (mac) DO NOTHING",
                &[&macs, &names, &addresses, &specs, &versions],
            ))
            .await?;
            if n as usize != new_hosts.len() {
                return Err(StoreError::Conflict {
                    mac: new_hosts[0].spec.mac,
                });
            }
        }
        if !new_states.is_empty() {
            let columns = StateColumns::of(&new_states);
            let n = timed(transaction.execute(
                "INSERT INTO host_states (mac, install, token, version, stage, stage_at, detail, boot) \
                 SELECT * FROM unnest($1::text[], $2::bool[], $3::text[], $4::bigint[], $5::text[], \
                 $6::bigint[], $7::text[], $8::bigint[]) ON CONFLICT (mac) DO NOTHING",
                &columns.params(),
            ))
            .await?;
            if n as usize != new_states.len() {
                return Err(StoreError::Conflict {
                    mac: new_states[0].0,
                });
            }
        }
        for write in writes {
            let (n, mac) = match write {
                RowWrite::PutHost {
                    host,
                    expected: Some(expected),
                } => {
                    let spec = serde_json::to_value(&host.spec).expect("a spec always serializes");
                    let n = timed(transaction.execute(
                        "UPDATE hosts SET name = $2, address = $3, spec = $4, version = $5 \
                         WHERE mac = $1 AND version = $6",
                        &[
                            &host.spec.mac.to_string(),
                            &host.spec.name,
                            &host.spec.address.map(|a| a.to_string()),
                            &spec,
                            &(host.version as i64),
                            &(*expected as i64),
                        ],
                    ))
                    .await?;
                    (n, host.spec.mac)
                }
                RowWrite::DeleteHost { mac, expected } => {
                    timed(transaction.execute(
                        "DELETE FROM boot_events WHERE mac = $1",
                        &[&mac.to_string()],
                    ))
                    .await?;
                    let n = timed(transaction.execute(
                        "DELETE FROM hosts WHERE mac = $1 AND version = $2",
                        &[&mac.to_string(), &(*expected as i64)],
                    ))
                    .await?;
                    (n, *mac)
                }
                RowWrite::PutState {
                    mac,
                    state,
                    expected: Some(expected),
                } => {
                    let n = timed(transaction.execute(
                        "UPDATE host_states SET install = $2, token = $3, version = $4, stage = $5, \
                         stage_at = $6, detail = $7, boot = $8 WHERE mac = $1 AND version = $9",
                        &[
                            &mac.to_string(),
                            &state.install,
                            &state.token,
                            &(state.version as i64),
                            &state.stage.as_str(),
                            &(state.stage_at as i64),
                            &state.detail,
                            &(state.boot as i64),
                            &(*expected as i64),
                        ],
                    ))
                    .await?;
                    (n, *mac)
                }
                RowWrite::DeleteState { mac, expected } => {
                    let n = timed(transaction.execute(
                        "DELETE FROM host_states WHERE mac = $1 AND version = $2",
                        &[&mac.to_string(), &(*expected as i64)],
                    ))
                    .await?;
                    let exists = n == 0
                        && timed(transaction.query_opt(
                            "SELECT 1 FROM host_states WHERE mac = $1",
                            &[&mac.to_string()],
                        ))
                        .await?
                        .is_some();
                    (u64::from(!exists), *mac)
                }
                _ => continue,
            };
            if n != 1 {
                return Err(StoreError::Conflict { mac });
            }
        }
        timed(transaction.commit()).await?;
        Ok(true)
    }

    /// Records boot events; an id already stored is skipped.
    pub async fn append_events(&self, events: &[BootEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let client = timed(self.pool.get()).await?;
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let macs: Vec<String> = events.iter().map(|e| e.mac.to_string()).collect();
        let boots: Vec<i64> = events.iter().map(|e| e.boot as i64).collect();
        let stages: Vec<&str> = events.iter().map(|e| e.stage.as_str()).collect();
        let ats: Vec<i64> = events.iter().map(|e| e.at as i64).collect();
        let servers: Vec<&str> = events.iter().map(|e| e.server.as_str()).collect();
        let peers: Vec<Option<String>> = events
            .iter()
            .map(|e| e.peer.map(|p| p.to_string()))
            .collect();
        let details: Vec<Option<&str>> = events.iter().map(|e| e.detail.as_deref()).collect();
        timed(client.execute(
            "INSERT INTO boot_events (id, mac, boot, stage, at, server, peer, detail) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], \
             $6::text[], $7::text[], $8::text[]) ON CONFLICT (id) DO NOTHING",
            &[
                &ids, &macs, &boots, &stages, &ats, &servers, &peers, &details,
            ],
        ))
        .await?;
        Ok(())
    }

    /// The host's events of its last `max_boots` boots, oldest first.
    pub async fn events(&self, mac: &Mac, max_boots: u64) -> Result<Vec<BootEvent>, StoreError> {
        let client = timed(self.pool.get()).await?;
        let rows = timed(client.query(
            "SELECT id, boot, stage, at, server, peer, detail FROM boot_events \
             WHERE mac = $1 AND boot > (SELECT coalesce(max(boot), 0) FROM boot_events WHERE mac = $1) - $2 \
             ORDER BY boot, at, seq",
            &[&mac.to_string(), &(max_boots as i64)],
        ))
        .await?;
        rows.iter()
            .map(|row| {
                let stage: String = row.get(2);
                let peer: Option<String> = row.get(5);
                Ok(BootEvent {
                    id: row.get(0),
                    mac: *mac,
                    boot: row.get::<_, i64>(1) as u64,
                    stage: Stage::parse(&stage).ok_or_else(|| {
                        StoreError::Database(format!("unknown stage `{stage}` in boot_events"))
                    })?,
                    at: row.get::<_, i64>(3) as u64,
                    server: row.get(4),
                    peer: peer.and_then(|p| p.parse::<IpAddr>().ok()),
                    detail: row.get(6),
                })
            })
            .collect()
    }

    /// Every API token (hashes only).
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let client = timed(self.pool.get()).await?;
        let rows = timed(client.query(
            "SELECT id, name, hash, created_at, revoked_at FROM api_tokens ORDER BY created_at",
            &[],
        ))
        .await?;
        Ok(rows
            .iter()
            .map(|row| ApiToken {
                id: row.get(0),
                name: row.get(1),
                hash: row.get(2),
                created_at: row.get::<_, i64>(3) as u64,
                revoked_at: row.get::<_, Option<i64>>(4).map(|t| t as u64),
            })
            .collect())
    }

    /// Stores a new API token.
    pub async fn add_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let client = timed(self.pool.get()).await?;
        timed(client.execute(
            "INSERT INTO api_tokens (id, name, hash, created_at) VALUES ($1, $2, $3, $4)",
            &[
                &token.id,
                &token.name,
                &token.hash,
                &(token.created_at as i64),
            ],
        ))
        .await?;
        Ok(())
    }

    /// Revokes the live tokens with this id or name; whether any matched.
    pub async fn revoke_api_token(&self, id_or_name: &str, now: u64) -> Result<bool, StoreError> {
        let client = timed(self.pool.get()).await?;
        let n = timed(client.execute(
            "UPDATE api_tokens SET revoked_at = $2 WHERE (id = $1 OR name = $1) AND revoked_at IS NULL",
            &[&id_or_name, &(now as i64)],
        ))
        .await?;
        Ok(n > 0)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = timed(self.pool.get()).await?;
        timed(client.simple_query("SELECT 1")).await?;
        Ok(())
    }
}

/// Columns of new state rows, for one `unnest` insert.
struct StateColumns {
    macs: Vec<String>,
    installs: Vec<bool>,
    tokens: Vec<Option<String>>,
    versions: Vec<i64>,
    stages: Vec<&'static str>,
    stage_ats: Vec<i64>,
    details: Vec<Option<String>>,
    boots: Vec<i64>,
}

impl StateColumns {
    fn of(states: &[(Mac, &HostState)]) -> StateColumns {
        StateColumns {
            macs: states.iter().map(|(m, _)| m.to_string()).collect(),
            installs: states.iter().map(|(_, s)| s.install).collect(),
            tokens: states.iter().map(|(_, s)| s.token.clone()).collect(),
            versions: states.iter().map(|(_, s)| s.version as i64).collect(),
            stages: states.iter().map(|(_, s)| s.stage.as_str()).collect(),
            stage_ats: states.iter().map(|(_, s)| s.stage_at as i64).collect(),
            details: states.iter().map(|(_, s)| s.detail.clone()).collect(),
            boots: states.iter().map(|(_, s)| s.boot as i64).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.macs,
            &self.installs,
            &self.tokens,
            &self.versions,
            &self.stages,
            &self.stage_ats,
            &self.details,
            &self.boots,
        ]
    }
}

fn stored_host(row: &tokio_postgres::Row) -> Result<StoredHost, StoreError> {
    let spec: serde_json::Value = row.get(0);
    let spec: HostSpec = serde_json::from_value(spec)
        .map_err(|e| StoreError::Database(format!("a hosts.spec is not a host: {e}")))?;
    Ok(StoredHost {
        spec,
        version: row.get::<_, i64>(1) as u64,
    })
}

fn host_state(row: &tokio_postgres::Row) -> Result<(Mac, HostState), StoreError> {
    let mac: String = row.get(0);
    let mac: Mac = mac
        .parse()
        .map_err(|e| StoreError::Database(format!("host_states.mac: {e}")))?;
    let stage: String = row.get(4);
    Ok((
        mac,
        HostState {
            install: row.get(1),
            token: row.get(2),
            version: row.get::<_, i64>(3) as u64,
            stage: Stage::parse(&stage).unwrap_or_default(),
            stage_at: row.get::<_, i64>(5) as u64,
            detail: row.get(6),
            boot: row.get::<_, i64>(7) as u64,
        },
    ))
}

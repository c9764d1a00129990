//! The inventory a running server holds: a snapshot for the packet paths, a queue for
//! what they see, and one writer thread that owns the store.
//!
//! Readers (the DHCPv6 thread, HTTP workers) call [`Live::snapshot`]: an
//! `Arc<Inventory>` loaded from an `ArcSwap`, no lock, no store round trip. What they
//! see (a script served, a file downloaded, an address given) goes through
//! [`Live::observe`], a `try_send` into a bounded queue that never blocks: when it is
//! full the observation is dropped and counted. Changes that must be durable before the
//! client hears "ok" (`/done`, the API) go through [`Live::apply`], which waits for the
//! writer. The writer thread (its own current-thread tokio runtime) is the one place
//! the inventory changes: it applies changes with [`Inventory::apply`], commits the
//! row writes to the [`Store`], appends boot events, publishes the next snapshot, and
//! every [`POLL_INTERVAL`] picks up changes other processes made to the store.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use std::path::PathBuf;

use super::model::{Applied, BootEvent, Change, HostSpec, Inventory, Observation, Stage};
use super::outbox::{Entry, Outbox};
use super::{token, ApiToken, Delta, Store, StoreError, UnixMillis};
use crate::mac::Mac;

/// How often the writer looks for other processes' changes and publishes coalesced
/// stage updates.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Observations that may wait for the writer; more are dropped (and counted).
pub const QUEUE_LENGTH: usize = 65_536;
/// Observations the writer takes from the queue per commit.
const MAX_BATCH: usize = 4_096;
/// A host's script fetched again within this many ms of the last one recorded is not
/// recorded again: one fetch a second still flags a loop (`[monitor] loop_window_mins`
/// is minutes), while a client hammering its script cannot make the writer rewrite the
/// store per request.
pub const SCRIPT_REPEAT_MIN_MS: UnixMillis = 1_000;

/// The time now in ms since the epoch (the shell's clock, for the pure model).
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Observations dropped because the queue was full.
    pub observations_dropped: AtomicU64,
    /// Commits or event appends that failed (logged each time).
    pub store_errors: AtomicU64,
    /// Snapshots published.
    pub snapshots: AtomicU64,
    /// True while the store is unreachable and the server serves from its cache.
    pub degraded: AtomicBool,
}

enum Command {
    Apply {
        change: Change,
        peer: Option<IpAddr>,
        reply: oneshot::Sender<Result<Applied, StoreError>>,
    },
    Events {
        mac: Mac,
        max_boots: u64,
        reply: oneshot::Sender<Result<Vec<BootEvent>, StoreError>>,
    },
    ApiTokens {
        reply: oneshot::Sender<Result<Vec<ApiToken>, StoreError>>,
    },
    Reseed {
        seed: Vec<(HostSpec, bool)>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Flush {
        reply: oneshot::Sender<()>,
    },
}

/// A running server's inventory (see the module docs).
pub struct Live {
    snapshot: Arc<ArcSwap<Inventory>>,
    observations: mpsc::Sender<Observation>,
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<LiveStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// When each host's script fetch was last queued (ms since the epoch): what
    /// [`SCRIPT_REPEAT_MIN_MS`] is measured from. One entry per host that fetched its
    /// script since start (a removed host's entry stays: 16 bytes).
    scripts_queued: Mutex<std::collections::HashMap<Mac, UnixMillis>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("n_hosts", &self.snapshot.load().len())
            .finish_non_exhaustive()
    }
}

/// Why a [`Live`] call failed: the store said no, or the writer is gone.
fn writer_gone() -> StoreError {
    StoreError::Unavailable("the inventory writer has stopped".into())
}

/// Where the writer gets its store: one made already, or the config's (connected on
/// the writer's own runtime, which then runs the database connections).
#[derive(Debug)]
pub enum StoreSource {
    Store(Box<Store>),
    Config(Box<crate::config::Config>),
}

impl From<Store> for StoreSource {
    fn from(store: Store) -> StoreSource {
        StoreSource::Store(Box::new(store))
    }
}

impl From<crate::config::Config> for StoreSource {
    fn from(config: crate::config::Config) -> StoreSource {
        StoreSource::Config(Box::new(config))
    }
}

impl Live {
    /// Loads the inventory from the store over `seed` (the config's hosts and their
    /// initial install flag), issues install tokens to hosts marked for install that
    /// lack one, and starts the writer thread. `server_name` goes into every boot event.
    /// `outbox`: where to queue `/done` and stages while a database is unreachable
    /// (PostgreSQL only; `None` refuses them instead).
    pub fn start(
        source: impl Into<StoreSource>,
        seed: Vec<(HostSpec, bool)>,
        server_name: String,
        outbox: Option<PathBuf>,
    ) -> Result<Live, StoreError> {
        let source = source.into();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (observations_tx, observations_rx) = mpsc::channel(QUEUE_LENGTH);
        let stats = Arc::new(LiveStats::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("sixboot-inventory".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(StoreError::Unavailable(format!(
                            "cannot start the inventory runtime: {err}"
                        ))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = match source {
                        StoreSource::Store(store) => *store,
                        StoreSource::Config(config) => match super::store_for(&config).await {
                            Ok(store) => store,
                            Err(err) => {
                                let _ =
                                    ready_tx.send(Err(StoreError::Unavailable(format!("{err:#}"))));
                                return;
                            }
                        },
                    };
                    let opened = Writer::open(store, seed, server_name, thread_stats, outbox).await;
                    let writer = match opened {
                        Ok(writer) => writer,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(writer.shared.clone()));
                    writer.run(commands_rx, observations_rx).await;
                });
            })
            .map_err(|err| {
                StoreError::Unavailable(format!("cannot start the inventory thread: {err}"))
            })?;
        let snapshot = match ready_rx.recv() {
            Ok(Ok(snapshot)) => snapshot,
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(writer_gone());
            }
        };
        Ok(Live {
            snapshot,
            observations: observations_tx,
            commands: commands_tx,
            stats,
            thread: Mutex::new(Some(thread)),
            scripts_queued: Mutex::default(),
        })
    }

    /// The current inventory. Cheap (an atomic load); hold it for one request.
    pub fn snapshot(&self) -> Arc<Inventory> {
        self.snapshot.load_full()
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }

    /// Records that a server saw `observation`, without waiting: repeats of the host's
    /// current stage are skipped here (but for a script fetched again, which may be a
    /// loop or a new boot: that is skipped only when it comes less than
    /// [`SCRIPT_REPEAT_MIN_MS`] after the last one queued with no stage published in
    /// between), the rest queued for the writer (dropped and counted when the queue is
    /// full). Observations of MACs the inventory does not hold are dropped.
    pub fn observe(&self, observation: Observation) {
        let snapshot = self.snapshot.load();
        let Some(state) = snapshot.get(&observation.mac).map(|h| &h.state) else {
            return;
        };
        if observation.stage != Stage::Script {
            if state.stage == observation.stage && state.detail == observation.detail {
                return;
            }
            if self.observations.try_send(observation).is_err() {
                self.stats.observations_dropped.fetch_add(1, Relaxed);
            }
            return;
        }
        let mut queued = self
            .scripts_queued
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(&last) = queued.get(&observation.mac) {
            // A repeat: within the window (a clock stepped back is not one), and
            // nothing published since the last one queued (a kernel download in
            // between makes a new fetch news: a new boot).
            let within =
                (last..last.saturating_add(SCRIPT_REPEAT_MIN_MS)).contains(&observation.at);
            let nothing_since = state.stage == Stage::Script || state.stage_at < last;
            if within && nothing_since {
                return;
            }
        }
        let (mac, at) = (observation.mac, observation.at);
        if self.observations.try_send(observation).is_err() {
            self.stats.observations_dropped.fetch_add(1, Relaxed);
        } else {
            queued.insert(mac, at);
        }
    }

    /// Applies a change and waits until it is durable and published: the next
    /// [`Live::snapshot`] shows it. `peer` goes into the boot event a `Done` records.
    pub async fn apply(&self, change: Change, peer: Option<IpAddr>) -> Result<Applied, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Apply {
                change,
                peer,
                reply,
            })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// [`Live::apply`] for callers outside any async runtime (the CLI, tests).
    pub fn apply_blocking(&self, change: Change) -> Result<Applied, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Apply {
                change,
                peer: None,
                reply,
            })
            .map_err(|_| writer_gone())?;
        answer.blocking_recv().map_err(|_| writer_gone())?
    }

    /// The host's events of its last `max_boots` boots, from the store.
    pub async fn events(&self, mac: Mac, max_boots: u64) -> Result<Vec<BootEvent>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Events {
                mac,
                max_boots,
                reply,
            })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Every API token (hashes only), from the store.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::ApiTokens { reply })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Replaces the config's hosts (a reloaded config file) and publishes the result.
    pub async fn reseed(&self, seed: Vec<(HostSpec, bool)>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Reseed { seed, reply })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Waits until every observation queued before this call is applied, persisted
    /// and published.
    pub async fn flush(&self) {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Flush { reply }).is_ok() {
            let _ = answer.await;
        }
    }

    /// [`Live::flush`] outside any async runtime.
    pub fn flush_blocking(&self) {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Flush { reply }).is_ok() {
            let _ = answer.blocking_recv();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        // Closing the command channel stops the writer after it has drained the queue.
        let (closed_tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.commands, closed_tx));
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

struct Writer {
    store: Store,
    /// Changes and events waiting for the database (PostgreSQL only).
    outbox: Option<Outbox>,
    inventory: Inventory,
    shared: Arc<ArcSwap<Inventory>>,
    stats: Arc<LiveStats>,
    server_name: String,
    /// Stage updates applied but not yet published.
    dirty: bool,
    last_publish: Instant,
}

impl Writer {
    async fn open(
        store: Store,
        seed: Vec<(HostSpec, bool)>,
        server_name: String,
        stats: Arc<LiveStats>,
        outbox: Option<PathBuf>,
    ) -> Result<Writer, StoreError> {
        let outbox = match (&store, outbox) {
            (Store::Postgres(pg), Some(path)) => {
                pg.listen();
                Some(Outbox::open(&path)?)
            }
            (Store::Postgres(pg), None) => {
                pg.listen();
                None
            }
            (Store::File(_), _) => None,
        };
        let rows = store.load().await?;
        let inventory = Inventory::new(seed, rows);
        for mac in inventory.shadowed() {
            tracing::warn!(%mac, "a stored host has the MAC of a config host; the config's definition is served");
        }
        let queued = outbox.as_ref().is_some_and(|o| !o.is_empty());
        stats.degraded.store(queued, Relaxed);
        let mut writer = Writer {
            store,
            outbox,
            shared: Arc::new(ArcSwap::from_pointee(inventory.clone())),
            inventory,
            stats,
            server_name,
            dirty: false,
            last_publish: Instant::now(),
        };
        writer.issue_missing_tokens().await?;
        writer.publish();
        Ok(writer)
    }

    /// Hosts marked for install without a token get one, persisted, so that every
    /// server hands out the same URLs.
    async fn issue_missing_tokens(&mut self) -> Result<(), StoreError> {
        let changes: Vec<Change> = self
            .inventory
            .missing_tokens()
            .into_iter()
            .map(|mac| Change::SetInstall {
                mac,
                install: true,
                token: Some(token::install_token()),
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let results = self.apply_all(&changes, now_millis()).await?;
        for (change, result) in changes.iter().zip(results) {
            if let Err(err) = result {
                tracing::warn!(mac = %change.mac(), error = %err, "cannot issue an install token");
            }
        }
        Ok(())
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut observations: mpsc::Receiver<Observation>,
    ) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.command(command, &mut observations).await,
                    None => break,
                },
                Some(first) = observations.recv() => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match observations.try_recv() {
                            Ok(more) => batch.push(more),
                            Err(_) => break,
                        }
                    }
                    self.observe(batch).await;
                }
                _ = tick.tick() => self.tick().await,
            }
        }
        observations.close();
        self.drain(&mut observations).await;
        self.publish();
    }

    async fn drain(&mut self, observations: &mut mpsc::Receiver<Observation>) {
        loop {
            let mut batch = Vec::new();
            while batch.len() < MAX_BATCH {
                match observations.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            self.observe(batch).await;
        }
    }

    async fn command(&mut self, command: Command, observations: &mut mpsc::Receiver<Observation>) {
        match command {
            Command::Apply {
                change,
                peer,
                reply,
            } => {
                // Stages seen before this change are recorded first, in order.
                self.drain(observations).await;
                let now = now_millis();
                let result = match self.apply_all(std::slice::from_ref(&change), now).await {
                    Ok(mut results) => results.remove(0).map_err(StoreError::from),
                    Err(err) => Err(err),
                };
                if let Ok(applied) = &result {
                    if let (Change::Done { mac, .. }, Some(boot)) = (&change, applied.new_stage) {
                        let event = self.event(*mac, boot, Stage::Done, now, peer, None);
                        self.append(vec![event]).await;
                    }
                }
                self.publish();
                let _ = reply.send(result);
            }
            Command::Events {
                mac,
                max_boots,
                reply,
            } => {
                self.drain(observations).await;
                let _ = reply.send(self.store.events(&mac, max_boots).await);
            }
            Command::ApiTokens { reply } => {
                let _ = reply.send(self.store.api_tokens().await);
            }
            Command::Reseed { seed, reply } => {
                let result = match self.store.load().await {
                    Ok(rows) => {
                        self.inventory = Inventory::new(seed, rows);
                        let result = self.issue_missing_tokens().await;
                        self.publish();
                        result
                    }
                    Err(err) => Err(err),
                };
                let _ = reply.send(result);
            }
            Command::Flush { reply } => {
                self.drain(observations).await;
                // Publishing copies the whole inventory (100,000 hosts: milliseconds):
                // only when something changed since the last time.
                if self.dirty {
                    self.publish();
                }
                let _ = reply.send(());
            }
        }
    }

    fn event(
        &self,
        mac: Mac,
        boot: u64,
        stage: Stage,
        at: UnixMillis,
        peer: Option<IpAddr>,
        detail: Option<String>,
    ) -> BootEvent {
        BootEvent {
            id: token::random_hex(16),
            mac,
            boot,
            stage,
            at,
            server: self.server_name.clone(),
            peer,
            detail,
        }
    }

    async fn observe(&mut self, batch: Vec<Observation>) {
        let changes: Vec<Change> = batch.iter().cloned().map(Change::Stage).collect();
        let results = match self.apply_all(&changes, now_millis()).await {
            Ok(results) => results,
            Err(err) => {
                self.stats.store_errors.fetch_add(1, Relaxed);
                tracing::error!(error = %err, n = batch.len(), "cannot record boot stages");
                return;
            }
        };
        let mut events = Vec::new();
        for (observation, result) in batch.into_iter().zip(results) {
            if let Ok(Applied {
                new_stage: Some(boot),
                ..
            }) = result
            {
                events.push(self.event(
                    observation.mac,
                    boot,
                    observation.stage,
                    observation.at,
                    observation.peer,
                    observation.detail,
                ));
            }
        }
        self.append(events).await;
        self.dirty = true;
        if self.last_publish.elapsed() >= POLL_INTERVAL {
            self.publish();
        }
    }

    fn degraded(&self) -> bool {
        self.stats.degraded.load(Relaxed)
    }

    /// Enters or leaves "serving from memory", logging the change.
    fn set_degraded(&self, degraded: bool, why: &str) {
        if self.stats.degraded.swap(degraded, Relaxed) != degraded {
            if degraded {
                tracing::error!(reason = why, "inventory database unreachable: serving from memory, queueing /done and boot events on local disk");
            } else {
                tracing::info!("inventory database reachable again: queued changes written");
            }
        }
    }

    async fn append(&mut self, events: Vec<BootEvent>) {
        if events.is_empty() {
            return;
        }
        if !self.degraded() {
            match self.store.append_events(&events).await {
                Ok(()) => return,
                Err(StoreError::Unavailable(why)) if self.outbox.is_some() => {
                    self.set_degraded(true, &why);
                }
                Err(err) => {
                    self.stats.store_errors.fetch_add(1, Relaxed);
                    tracing::error!(error = %err, n = events.len(), "cannot record boot events");
                    return;
                }
            }
        }
        if let Some(outbox) = &mut self.outbox {
            if let Err(err) = outbox.append(vec![Entry::Events { events }]) {
                self.stats.store_errors.fetch_add(1, Relaxed);
                tracing::error!(error = %err, "cannot queue boot events on local disk");
            }
        }
    }

    async fn tick(&mut self) {
        if self.degraded() {
            self.replay().await;
        } else if self.store.changed().await {
            match self.store.poll().await {
                Ok(Delta::Full(rows)) => {
                    self.inventory = self.inventory.with_rows(rows);
                    self.dirty = true;
                }
                Ok(Delta::Changed(rows)) => {
                    for (mac, host, state) in rows {
                        self.inventory.replace(mac, host, state);
                    }
                    self.dirty = true;
                }
                // Unreachable: say so once, then wait for it in `replay`.
                Err(StoreError::Unavailable(why)) => self.set_degraded(true, &why),
                Err(err) => {
                    self.stats.store_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %err, "cannot read the inventory's changes; serving the ones read before");
                }
            }
        }
        if self.dirty {
            self.publish();
        }
    }

    /// Writes the outbox to the database, oldest first, each change once; then reads
    /// everything again and leaves degraded mode.
    async fn replay(&mut self) {
        let Store::Postgres(pg) = &self.store else {
            self.set_degraded(false, "");
            return;
        };
        if pg.ping().await.is_err() {
            return;
        }
        let Some(outbox) = &mut self.outbox else {
            if let Ok(rows) = pg.load().await {
                self.inventory = self.inventory.with_rows(rows);
                self.dirty = true;
                self.set_degraded(false, "");
            }
            return;
        };
        let Ok(rows) = pg.load().await else {
            return;
        };
        let mut fresh = self.inventory.with_rows(rows);
        let entries = outbox.entries().to_vec();
        let mut written = 0;
        for entry in &entries {
            match entry {
                Entry::Events { events } => match pg.append_events(events).await {
                    Ok(()) => {}
                    Err(StoreError::Unavailable(_)) => break,
                    Err(err) => {
                        tracing::error!(error = %err, "dropping queued boot events the database refuses")
                    }
                },
                Entry::Change { id, change } => {
                    let before = fresh.clone();
                    match fresh.apply(change, now_millis()) {
                        Ok(applied) => match pg.commit_op(Some(id), &applied.writes).await {
                            Ok(true) => {
                                tracing::info!(mac = %change.mac(), op = %id, "queued change written")
                            }
                            Ok(false) => fresh = before,
                            Err(StoreError::Unavailable(_)) => break,
                            Err(err) => {
                                fresh = before;
                                tracing::error!(mac = %change.mac(), error = %err, "dropping a queued change the database refuses");
                            }
                        },
                        Err(err) => {
                            tracing::warn!(mac = %change.mac(), error = %err, "a queued change no longer applies (the inventory changed meanwhile); dropped");
                        }
                    }
                }
            }
            written += 1;
        }
        if let Err(err) = outbox.remove_first(written) {
            tracing::error!(error = %err, "cannot shorten the outbox");
            return;
        }
        if outbox.is_empty() {
            if let Ok(rows) = pg.load().await {
                self.inventory = self.inventory.with_rows(rows);
                self.dirty = true;
                self.set_degraded(false, "");
            }
        }
    }

    fn publish(&mut self) {
        self.shared.store(Arc::new(self.inventory.clone()));
        self.stats.snapshots.fetch_add(1, Relaxed);
        self.dirty = false;
        self.last_publish = Instant::now();
    }

    /// Applies `changes` in order and commits their row writes at once. A change the
    /// model refuses is reported in its slot and writes nothing. When the store says
    /// another writer got there first, reloads and applies again (three tries).
    async fn apply_all(
        &mut self,
        changes: &[Change],
        now: UnixMillis,
    ) -> Result<Vec<Result<Applied, super::ChangeError>>, StoreError> {
        // Only what the boot path must not lose is queued while the database is away;
        // API edits wait for it (they answer 503).
        let queueable = self.outbox.is_some()
            && changes
                .iter()
                .all(|c| matches!(c, Change::Done { .. } | Change::Stage(_)));
        if self.degraded() {
            if !queueable {
                return Err(StoreError::Unavailable(
                    "the inventory database is unreachable; the server serves from memory".into(),
                ));
            }
            return self.queue(changes, now);
        }
        let mut last_conflict = None;
        for _attempt in 0..3 {
            let before = self.inventory.clone();
            let mut results = Vec::with_capacity(changes.len());
            let mut writes = Vec::new();
            for change in changes {
                let result = self.inventory.apply(change, now);
                if let Ok(applied) = &result {
                    writes.extend(applied.writes.iter().cloned());
                }
                results.push(result);
            }
            match self.store.commit(&writes).await {
                Ok(()) => return Ok(results),
                Err(StoreError::Conflict { mac }) => {
                    last_conflict = Some(mac);
                    let rows = self.store.load().await?;
                    self.inventory = before.with_rows(rows);
                    // Another writer's rows: publish them even if the retries run out.
                    self.dirty = true;
                }
                Err(StoreError::Unavailable(why)) if queueable => {
                    self.inventory = before;
                    self.set_degraded(true, &why);
                    return self.queue(changes, now);
                }
                Err(err) => {
                    self.inventory = before;
                    return Err(err);
                }
            }
        }
        Err(StoreError::Conflict {
            mac: last_conflict.unwrap_or(Mac([0; 6])),
        })
    }
}

impl Writer {
    /// Applies changes in memory and queues them on local disk (fsynced) for the
    /// database.
    fn queue(
        &mut self,
        changes: &[Change],
        now: UnixMillis,
    ) -> Result<Vec<Result<Applied, super::ChangeError>>, StoreError> {
        let before = self.inventory.clone();
        let mut results = Vec::with_capacity(changes.len());
        let mut entries = Vec::new();
        for change in changes {
            let result = self.inventory.apply(change, now);
            if matches!(&result, Ok(applied) if !applied.writes.is_empty()) {
                entries.push(Entry::Change {
                    id: token::random_hex(16),
                    change: change.clone(),
                });
            }
            results.push(result);
        }
        let Some(outbox) = &mut self.outbox else {
            self.inventory = before;
            return Err(StoreError::Unavailable("no outbox".into()));
        };
        if let Err(err) = outbox.append(entries) {
            self.inventory = before;
            return Err(err);
        }
        Ok(results)
    }
}

/// Hosts by MAC from the config, for the seed.
pub fn seed_of(hosts: &[crate::config::Host]) -> Vec<(HostSpec, bool)> {
    hosts
        .iter()
        .map(|h| (HostSpec::from_config(h), h.install))
        .collect()
}

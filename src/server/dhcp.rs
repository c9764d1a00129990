//! The DHCPv6 thread: receive a batch, run the engine, persist, then reply.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::SocketAddrV6;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendto, ControlMessageOwned, MsgFlags, SockaddrIn6};

use super::{wait_readable, DhcpSocket, POLL_INTERVAL};
use crate::config::Config;
use crate::dhcpv6::{Engine, Ignored, Request};
use crate::inventory::live::now_millis;
use crate::inventory::{Live, Observation, Stage};
use crate::leases::{self, LeaseStore, LeaseTable};
use crate::metrics::Metrics;

/// What the DHCPv6 thread hands to the committer: log lines and the replies that may
/// leave only once those lines are on disk.
struct Batch {
    lines: Vec<u8>,
    replies: Vec<Pending>,
}

/// One line per answer: at `info` when it changed a lease, `debug` otherwise.
macro_rules! log_outcome {
    ($level:ident, $text:literal, $from:expr, $outcome:expr) => {{
        let outcome = &$outcome;
        let id = &outcome.identity;
        tracing::$level!(
            from = %$from, message_type = ?outcome.message_type,
            mac = id.mac.map(|m| m.to_string()).as_deref(), mac_source = ?id.mac_source,
            host = id.host.as_deref(), duid = %hex::encode(&id.duid),
            addresses = ?outcome.addresses,
            // `boot=Some(KIND)` when the reply carries a bootfile-url (the QEMU lab
            // watches for it).
            boot = ?outcome.bootfile_url.as_ref().map(|_| outcome.client.kind),
            client = %outcome.client.kind,
            arch = ?outcome.client.arch.map(|a| a.0),
            rule = outcome.client.rule,
            bootfile_url = outcome.bootfile_url.as_deref(),
            relay_hops = outcome.relay_hops,
            $text
        )
    }};
}

/// How often the pool gauges are recomputed while leases change.
const POOL_GAUGES_EVERY: Duration = Duration::from_secs(1);

/// Sets each subnet's pool gauges from the lease table: the pool's size, its live
/// leases (assigned) and its declined addresses.
fn pool_gauges(metrics: &Metrics, config: &Config, table: &LeaseTable, now: u64) {
    if !metrics.on() {
        return;
    }
    for subnet in &config.dhcp.subnets {
        let Some((start, end)) = subnet.pool else {
            continue;
        };
        let (start, end) = (u128::from(start), u128::from(end));
        let size = end.saturating_sub(start).saturating_add(1);
        let in_pool = |address: &std::net::Ipv6Addr| (start..=end).contains(&u128::from(*address));
        let (mut assigned, mut declined) = (0u64, 0u64);
        for lease in table
            .iter()
            .filter(|l| l.expires > now && in_pool(&l.address))
        {
            if lease.declined {
                declined += 1;
            } else {
                assigned += 1;
            }
        }
        metrics.dhcpv6.pool(
            &subnet.prefix.to_string(),
            u64::try_from(size).unwrap_or(u64::MAX),
            assigned,
            declined,
        );
    }
}

/// Datagrams taken from one socket before the batch is committed.
const MAX_BATCH: usize = 512;
/// How often expired leases are dropped from memory.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// The engine with its lease table and log: everything the DHCPv6 thread owns.
pub(super) struct DhcpState {
    engine: Engine,
    table: LeaseTable,
    store: LeaseStore,
    /// The live inventory: hosts come from its snapshot (so hosts added through the
    /// API get their address), and every address given is recorded as a boot stage.
    inventory: Option<Arc<Live>>,
    metrics: Arc<Metrics>,
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DhcpState {
    pub(super) fn open(
        config: Arc<Config>,
        inventory: Option<Arc<Live>>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<DhcpState> {
        let dir = config.state_dir.clone();
        let duid = leases::load_or_create_server_duid(&dir)
            .with_context(|| format!("cannot set up the server DUID in {}", dir.display()))?;
        let (store, table) = LeaseStore::open(&dir, unix_now())
            .with_context(|| format!("cannot open the lease log in {}", dir.display()))?;
        Ok(DhcpState {
            engine: Engine::new(config, duid),
            table,
            store,
            inventory,
            metrics,
        })
    }

    pub(super) fn n_leases(&self) -> usize {
        self.table.len()
    }

    pub(super) fn server_duid(&self) -> &[u8] {
        self.engine.server_duid()
    }
}

struct Pending {
    socket: usize,
    to: SocketAddrV6,
    reply: Vec<u8>,
    /// When its request was received (the exchange latency ends at the send).
    received: Instant,
}

fn send(socket: &socket2::Socket, p: &Pending) {
    let to = SockaddrIn6::from(p.to);
    if let Err(err) = sendto(socket.as_raw_fd(), &p.reply, &to, MsgFlags::empty()) {
        tracing::warn!(to = %p.to, %err, "DHCPv6 send failed");
    }
}

/// Writes and fsyncs batches in order, then sends their replies. Batches that queue
/// up during one fsync share the next, so the disk's latency bounds the delay of a
/// reply but not the server's throughput.
fn commit_and_send(
    mut store: LeaseStore,
    batches: std::sync::mpsc::Receiver<Batch>,
    sockets: Vec<socket2::Socket>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    let mut replies = Vec::new();
    while let Ok(first) = batches.recv() {
        lines.clear();
        lines.extend_from_slice(&first.lines);
        replies.extend(first.replies);
        while let Ok(more) = batches.try_recv() {
            lines.extend_from_slice(&more.lines);
            replies.extend(more.replies);
        }
        // Persist before anything leaves: a reply is a promise.
        let fsync = Instant::now();
        store
            .write_synced(&lines)
            .context("cannot write the lease log; replies of the last batch were not sent")?;
        metrics.dhcpv6.fsync(fsync.elapsed().as_secs_f64());
        for p in replies.drain(..) {
            send(&sockets[p.socket], &p);
            metrics.dhcpv6.exchange(p.received.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// The boot stages a DHCPv6 answer is: a Reply that binds an address (to a Request, or
/// to a rapid-commit Solicit) is "reply", an Advertise is "solicit" (its detail names
/// the boot client); Renew and Rebind are no new stage.
fn record_stage(inventory: Option<&Live>, outcome: &crate::dhcpv6::Outcome, from: &SocketAddrV6) {
    use dhcproto::v6::MessageType;
    let (Some(live), Some(mac)) = (inventory, outcome.identity.mac) else {
        return;
    };
    let (stage, detail) = match (outcome.message_type, outcome.addresses.first()) {
        (MessageType::Request | MessageType::Solicit, Some(address))
            if !outcome.changes.is_empty() =>
        {
            (Stage::Reply, address.to_string())
        }
        (MessageType::Solicit, _) if outcome.reply_type == MessageType::Advertise => (
            Stage::Solicit,
            match outcome.client.arch {
                Some(arch) => format!("{} {}", outcome.client.kind.label(), arch.label()),
                None => outcome.client.kind.label().to_owned(),
            },
        ),
        _ => return,
    };
    live.observe(Observation {
        mac,
        stage,
        detail: Some(detail),
        at: now_millis(),
        peer: Some((*from.ip()).into()),
    });
}

fn interface_name(index: u32, names: &mut HashMap<u32, String>) -> Option<String> {
    if !names.contains_key(&index) {
        for entry in nix::net::if_::if_nameindex().ok()?.iter() {
            names.insert(entry.index(), entry.name().to_string_lossy().into_owned());
        }
    }
    names.get(&index).cloned()
}

pub(super) fn serve(
    state: DhcpState,
    sockets: Vec<DhcpSocket>,
    stop: &AtomicBool,
    mut configs: tokio::sync::watch::Receiver<Arc<Config>>,
) -> anyhow::Result<()> {
    let DhcpState {
        mut engine,
        mut table,
        store,
        inventory,
        metrics,
    } = state;
    // The inventory generation the engine's hosts come from (`None`: the config's, as
    // at start and right after a reload).
    let mut generation: Option<u64> = None;
    let send_sockets = sockets
        .iter()
        .map(|s| s.socket.try_clone())
        .collect::<Result<Vec<_>, _>>()
        .context("cannot share the DHCPv6 sockets with the committer thread")?;
    let (to_committer, batches) = std::sync::mpsc::channel::<Batch>();
    let committer = std::thread::Builder::new()
        .name("sixboot-dhcpv6-commit".into())
        .spawn({
            let metrics = metrics.clone();
            move || commit_and_send(store, batches, send_sockets, metrics)
        })?;
    let mut buffer = vec![0u8; 65_536];
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut last_expiry = Instant::now();
    pool_gauges(&metrics, engine.config(), &table, unix_now());
    let mut last_pool_gauges = Instant::now();
    let mut leases_changed = false;
    let fds: Vec<&socket2::Socket> = sockets.iter().map(|s| &s.socket).collect();
    while !stop.load(Ordering::Relaxed) {
        // A reloaded config takes over between two batches: the table and the
        // sockets (and the datagrams queued in them) stay.
        if configs.has_changed().unwrap_or(false) {
            let config = configs.borrow_and_update().clone();
            engine = Engine::new(config, engine.server_duid().to_vec());
            // The reloaded config's own hosts are only the seed: take the inventory's
            // hosts again below.
            generation = None;
            tracing::info!(
                leases = table.len(),
                "DHCPv6 now answers from the reloaded config"
            );
        }
        let ready = wait_readable(&fds, POLL_INTERVAL);
        let now = unix_now();
        if let Some(live) = &inventory {
            // Definitions changed (a host added, removed or edited): the engine gets
            // the inventory's hosts. Stage updates leave the generation alone.
            let snapshot = live.snapshot();
            if generation != Some(snapshot.generation()) {
                let mut config = engine.config().clone();
                config.hosts = snapshot.config_hosts();
                engine = Engine::new(Arc::new(config), engine.server_duid().to_vec());
                generation = Some(snapshot.generation());
            }
        }
        let mut batch = Batch {
            lines: Vec::new(),
            replies: Vec::new(),
        };
        for (index, socket) in sockets.iter().enumerate() {
            if !ready[index] {
                continue;
            }
            for _ in 0..MAX_BATCH {
                let mut iov = [IoSliceMut::new(&mut buffer)];
                let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
                let received = recvmsg::<SockaddrIn6>(
                    socket.socket.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                );
                let received_at = Instant::now();
                let (len, from, arrival) = match received {
                    Ok(message) => {
                        let arrival = message.cmsgs().ok().and_then(|mut cmsgs| {
                            cmsgs.find_map(|c| match c {
                                ControlMessageOwned::Ipv6PacketInfo(info) => {
                                    Some(info.ipi6_ifindex)
                                }
                                _ => None,
                            })
                        });
                        (message.bytes, message.address, arrival)
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(err) => {
                        tracing::warn!(%err, "DHCPv6 receive failed");
                        break;
                    }
                };
                let Some(from) = from.map(SocketAddrV6::from) else {
                    continue;
                };
                let interface = socket
                    .interface
                    .clone()
                    .or_else(|| arrival.and_then(|i| interface_name(i, &mut names)));
                let request = Request {
                    payload: &buffer[..len],
                    source: *from.ip(),
                    interface: interface.as_deref(),
                };
                match engine.handle(&request, &table, now) {
                    Ok(outcome) => {
                        metrics.dhcpv6.answered(&outcome);
                        for change in &outcome.changes {
                            table.apply(change);
                        }
                        leases::encode_changes(&mut batch.lines, &outcome.changes);
                        record_stage(inventory.as_deref(), &outcome, &from);
                        for address in &outcome.fixed_addresses_held {
                            tracing::warn!(
                                %address,
                                mac = outcome.identity.mac.map(|m| m.to_string()).as_deref(),
                                "fixed address still leased to another client; served from the pool"
                            );
                        }
                        if outcome.changes.is_empty() {
                            log_outcome!(debug, "DHCPv6 answer", from, outcome);
                        } else {
                            log_outcome!(info, "DHCPv6 lease", from, outcome);
                        }
                        let pending = Pending {
                            socket: index,
                            to: from,
                            reply: outcome.reply,
                            received: received_at,
                        };
                        if outcome.changes.is_empty() {
                            // An Advertise or Information-request Reply promises
                            // nothing durable: it need not wait for the fsync.
                            send(&sockets[index].socket, &pending);
                            metrics.dhcpv6.exchange(received_at.elapsed().as_secs_f64());
                        } else {
                            batch.replies.push(pending);
                        }
                    }
                    Err(why) => {
                        metrics.dhcpv6.dropped(&buffer[..len], &why);
                        if let Ignored::UnmappedRelay { .. } = why {
                            // A relay no subnet maps is the operator's to fix: say so.
                            tracing::warn!(from = %from, %why, "DHCPv6 relayed message dropped")
                        } else {
                            tracing::debug!(from = %from, %why, "DHCPv6 datagram ignored")
                        }
                    }
                }
            }
        }
        leases_changed |= !batch.replies.is_empty();
        if leases_changed && last_pool_gauges.elapsed() >= POOL_GAUGES_EVERY {
            pool_gauges(&metrics, engine.config(), &table, now);
            last_pool_gauges = Instant::now();
            leases_changed = false;
        }
        if !batch.replies.is_empty() && to_committer.send(batch).is_err() {
            break; // The committer failed; its error is reported below.
        }
        if last_expiry.elapsed() >= EXPIRE_EVERY {
            table.expire(now);
            last_expiry = Instant::now();
        }
    }
    drop(to_committer);
    committer
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the lease committer panicked")))
}

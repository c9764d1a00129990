//! The boot server's thin shell: sockets, threads, the clock and the lease log around
//! the pure DHCPv6 engine and RA scheduler.
//!
//! The caller binds ([`bind`]) and hands the sockets to [`run`] with a shutdown
//! future, so tests bind whatever they like and the HTTP half can run beside it in the
//! same process under the same shutdown. DHCPv6 runs in one thread that owns the lease
//! table: it drains every readable socket, handles the batch, appends the lease
//! changes to the log and fsyncs once, and only then sends the replies (group commit:
//! no acknowledged address is ever unpersisted, and one fsync serves many clients). RA
//! runs in one thread per interface. A bad datagram is logged and dropped; nothing a
//! client sends stops the server.

mod dhcp;
mod ra;

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;

/// All DHCPv6 servers and relay agents (RFC 8415 section 7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// All routers (RFC 4291 section 2.7.1): Router Solicitations go here.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All nodes: unsolicited Router Advertisements go here.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A UDP socket on port 547, bound to one interface (or to none, for relayed traffic).
#[derive(Debug)]
pub struct DhcpSocket {
    pub interface: Option<String>,
    pub socket: Socket,
}

/// A raw ICMPv6 socket on one interface, hop limit 255 (RFC 4861 section 6.1.2).
#[derive(Debug)]
pub struct RaSocket {
    pub interface: String,
    pub ifindex: u32,
    pub link_layer: Option<[u8; 6]>,
    pub socket: Socket,
}

/// What [`run`] serves on.
#[derive(Debug, Default)]
pub struct Sockets {
    pub dhcp: Vec<DhcpSocket>,
    pub ra: Vec<RaSocket>,
}

fn ifindex(interface: &str) -> anyhow::Result<u32> {
    nix::net::if_::if_nametoindex(interface).map_err(|_| {
        anyhow::anyhow!(
            "interface `{interface}` does not exist here: create it, or fix server.interfaces \
             in the config (see `ip link`)"
        )
    })
}

fn explain(err: std::io::Error, what: &str, capability: &str) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::PermissionDenied {
        anyhow::anyhow!(
            "{what}: permission denied; give sixboot boot-server {capability} (root is not \
             needed: AmbientCapabilities={capability} in the systemd unit, or `setpriv \
             --ambient-caps`)"
        )
    } else {
        anyhow::Error::new(err).context(what.to_owned())
    }
}

/// Binds UDP port 547 on `interface` (all interfaces when `None`), joined to
/// ff02::1:2, with IPV6_PKTINFO so every datagram says where it arrived.
pub fn bind_dhcp(interface: Option<&str>, port: u16) -> anyhow::Result<DhcpSocket> {
    let what = format!(
        "cannot bind DHCPv6 port {port} on {}",
        interface.unwrap_or("all interfaces")
    );
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| explain(e, &what, "CAP_NET_BIND_SERVICE"))?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    // A deep receive queue absorbs bursts while a batch waits for its fsync; as root
    // SO_RCVBUFFORCE passes net.core.rmem_max (about 270 datagrams by default, a
    // few milliseconds of load), otherwise take what the limit allows.
    if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20))
        .is_err()
    {
        let _ = socket.set_recv_buffer_size(16 << 20);
    }
    let _ = socket.set_send_buffer_size(4 << 20);
    if let Some(name) = interface {
        let index = ifindex(name)?;
        // SO_BINDTODEVICE on a socket without a device needs no capability since
        // Linux 5.7; older kernels ask for CAP_NET_RAW.
        socket
            .bind_device(Some(name.as_bytes()))
            .map_err(|e| explain(e, &what, "CAP_NET_RAW"))?;
        socket
            .bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())
            .map_err(|e| explain(e, &what, "CAP_NET_BIND_SERVICE"))?;
        socket
            .join_multicast_v6(&ALL_DHCP_RELAY_AGENTS_AND_SERVERS, index)
            .with_context(|| format!("{what}: cannot join ff02::1:2"))?;
    } else {
        socket
            .bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())
            .map_err(|e| explain(e, &what, "CAP_NET_BIND_SERVICE"))?;
    }
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::Ipv6RecvPacketInfo,
        &true,
    )
    .with_context(|| format!("{what}: IPV6_RECVPKTINFO"))?;
    socket.set_nonblocking(true)?;
    Ok(DhcpSocket {
        interface: interface.map(str::to_owned),
        socket,
    })
}

/// Opens the raw ICMPv6 socket for router discovery on `interface`.
pub fn bind_ra(interface: &str) -> anyhow::Result<RaSocket> {
    let what = format!("cannot open a raw ICMPv6 socket on {interface} for router advertisements");
    let index = ifindex(interface)?;
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
        .map_err(|e| explain(e, &what, "CAP_NET_RAW"))?;
    socket
        .bind_device(Some(interface.as_bytes()))
        .map_err(|e| explain(e, &what, "CAP_NET_RAW"))?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_if_v6(index)?;
    socket.set_multicast_loop_v6(false)?;
    socket
        .join_multicast_v6(&ALL_ROUTERS, index)
        .with_context(|| format!("{what}: cannot join ff02::2"))?;
    socket.set_nonblocking(true)?;
    let link_layer = std::fs::read_to_string(format!("/sys/class/net/{interface}/address"))
        .ok()
        .and_then(|text| text.trim().parse::<crate::mac::Mac>().ok())
        .map(|mac| mac.0);
    Ok(RaSocket {
        interface: interface.to_owned(),
        ifindex: index,
        link_layer,
        socket,
    })
}

/// Binds everything the config asks for: DHCPv6 on each interface (or on all when
/// none is listed), and RA on each interface when `[ra] enabled`.
pub fn bind(config: &Config) -> anyhow::Result<Sockets> {
    let mut sockets = Sockets::default();
    if config.interfaces.is_empty() {
        sockets
            .dhcp
            .push(bind_dhcp(None, dhcproto::v6::SERVER_PORT)?);
    }
    for interface in &config.interfaces {
        sockets
            .dhcp
            .push(bind_dhcp(Some(interface), dhcproto::v6::SERVER_PORT)?);
        if config.ra.enabled {
            sockets.ra.push(bind_ra(interface)?);
        }
    }
    Ok(sockets)
}

/// How long a worker thread sleeps in poll(2) before it looks at the shutdown flag.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

fn wait_readable(fds: &[&Socket], timeout: Duration) -> Vec<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::BorrowedFd;
    let mut polls: Vec<PollFd> = fds
        .iter()
        .map(|s| {
            // The sockets outlive this call.
            let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
            PollFd::new(fd, PollFlags::POLLIN)
        })
        .collect();
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let _ = nix::poll::poll(&mut polls, PollTimeout::from(millis));
    polls
        .iter()
        .map(|p| p.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
        .collect()
}

/// Serves RA and DHCPv6 on `sockets` until `shutdown` completes, then stops within
/// about 100 ms. Opens the lease log and the server DUID in `config.state_dir`.
/// Hosts are the config's `[[hosts]]`; see [`run_with_inventory`] for a live inventory.
pub async fn run(
    config: Arc<Config>,
    sockets: Sockets,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_inventory(config, None, sockets, shutdown).await
}

/// [`run`] with hosts from the live inventory's snapshot (hosts added through the API
/// or CLI get their address without a restart), recording each address given as a
/// boot stage.
pub async fn run_with_inventory(
    config: Arc<Config>,
    inventory: Option<Arc<crate::inventory::Live>>,
    sockets: Sockets,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(crate::metrics::Metrics::for_config(&config));
    let (_keep, configs) = tokio::sync::watch::channel(config);
    let (started, _) = tokio::sync::oneshot::channel();
    run_reloadable(configs, inventory, metrics, sockets, started, shutdown).await
}

/// [`run_with_inventory`] with a config that can be replaced while serving (SIGHUP
/// reload): each time `configs` changes, the DHCPv6 thread takes the new config between
/// two batches (the lease table, the lease log and the sockets stay; no datagram waiting
/// in a socket is lost; hosts still come from the inventory when there is one) and each
/// RA thread rebuilds its advertisement. The listeners (`server.interfaces`, `[ra]
/// enabled`) and `state_dir` must not change: the caller refuses such a reload.
/// `started` is sent once the lease log is open and every thread runs (dropped unsent
/// when start-up fails): the moment to tell systemd READY=1. Every message, answer and
/// RA is counted in `metrics` (the one the HTTP half serves on `/metrics`); with an
/// inventory, answered RSs, Advertises and address-binding Replies are boot stages.
pub async fn run_reloadable(
    mut configs: tokio::sync::watch::Receiver<Arc<Config>>,
    inventory: Option<Arc<crate::inventory::Live>>,
    metrics: Arc<crate::metrics::Metrics>,
    sockets: Sockets,
    started: tokio::sync::oneshot::Sender<()>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = configs.borrow_and_update().clone();
    if sockets.dhcp.is_empty() && sockets.ra.is_empty() {
        bail!("nothing to serve: no DHCPv6 or RA socket was bound");
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Each thread reports how it ended, so that a thread that fails (a lease log that
    // cannot be written) stops the whole server instead of leaving it half alive.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<anyhow::Result<()>>();
    let mut threads = Vec::new();
    let dhcp_state = dhcp::DhcpState::open(config.clone(), inventory.clone(), metrics.clone())?;
    tracing::info!(
        state_dir = %config.state_dir.display(),
        leases = dhcp_state.n_leases(),
        server_duid = %hex::encode(dhcp_state.server_duid()),
        "DHCPv6 ready"
    );
    if !sockets.dhcp.is_empty() {
        let (stop, done) = (stop.clone(), done_tx.clone());
        let dhcp_sockets = sockets.dhcp;
        let configs = configs.clone();
        threads.push(
            std::thread::Builder::new()
                .name("sixboot-dhcpv6".into())
                .spawn(move || {
                    let _ = done.send(dhcp::serve(dhcp_state, dhcp_sockets, &stop, configs));
                })?,
        );
    }
    for socket in sockets.ra {
        let (stop, done) = (stop.clone(), done_tx.clone());
        let configs = configs.clone();
        let seen = ra::Seen {
            metrics: metrics.clone(),
            inventory: inventory.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("sixboot-ra-{}", socket.interface))
                .spawn(move || {
                    let _ = done.send(ra::serve(configs, socket, &stop, &seen));
                })?,
        );
    }
    drop(done_tx);
    let _ = started.send(());
    tokio::pin!(shutdown);
    let mut failure = None;
    tokio::select! {
        () = &mut shutdown => tracing::info!("shutting down"),
        Some(ended) = done_rx.recv() => {
            failure = Some(ended.err().unwrap_or_else(|| anyhow::anyhow!("a server thread stopped")));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let panicked = tokio::task::spawn_blocking(move || {
        threads.into_iter().map(|t| t.join()).any(|r| r.is_err())
    })
    .await?;
    while let Ok(ended) = done_rx.try_recv() {
        if let (Err(err), None) = (ended, &failure) {
            failure = Some(err);
        }
    }
    if panicked {
        bail!("a server thread panicked");
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

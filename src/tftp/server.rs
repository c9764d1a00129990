//! The TFTP shell: sockets, files and timers around [`Transfer`].
//!
//! [`serve`] reads requests from a socket the caller bound and starts one tokio task
//! per transfer. Each task binds its own socket on the same address (a new port, the
//! server's transfer ID in RFC 1350 terms) and connects it to the client, so the kernel
//! drops datagrams from anyone else and a slow or silent client only ever holds its
//! own task. Files are opened with `openat2(RESOLVE_BENEATH)` below the root that was
//! opened at start-up, so neither `..` nor a symlink can lead outside it.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::io::IoSliceMut;
use std::net::{Ipv6Addr, SocketAddrV6};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::transfer::{Action, Event, Negotiated, OpenError, Outcome, Settings, Transfer};
use super::wire::{field, ErrorCode, Opcode, Packet, Repr};
use crate::config::TftpConfig;

/// How long [`serve`] lets running transfers finish after shutdown before it aborts them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A netascii file is converted in memory; larger ones are refused.
const MAX_NETASCII_BYTES: u64 = 16 << 20;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the TFTP root {path}: {source} (check [tftp] root in the config)")]
    Root { path: PathBuf, source: io::Error },
    #[error("cannot set up the TFTP socket (its address, IPV6_RECVPKTINFO): {0}")]
    Socket(io::Error),
}

/// Binds a UDP socket for [`serve`]; an IPv6 address listens on IPv6 only.
///
/// Callers may bind their own socket instead (tests use port 0).
pub fn bind(address: SocketAddr) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

/// The limits a validated `[tftp]` section sets on transfers.
pub fn settings(config: &TftpConfig) -> Settings {
    Settings {
        max_block_size: config.max_block_size,
        max_window_size: config.max_window_size,
        timeout: config.timeout,
        retries: config.retries,
    }
}

/// Serves read requests for files below `config.root` on `socket` until `shutdown`
/// completes, then gives running transfers [`SHUTDOWN_GRACE`] to end.
///
/// Errors only when the root cannot be opened or the socket has no address; every
/// problem of a single transfer is logged and the server goes on.
pub async fn serve(
    config: &TftpConfig,
    socket: UdpSocket,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_reporting(config, socket, shutdown, Reporting::default()).await
}

/// Where the TFTP server reports: every transfer is counted in `metrics`; a completed
/// download by a host the inventory knows (its configured address, or the EUI-64
/// link-local address of its MAC) is its "tftp" boot stage.
#[derive(Debug, Clone, Default)]
pub struct Reporting {
    pub metrics: Arc<crate::metrics::Metrics>,
    pub inventory: Option<Arc<crate::inventory::Live>>,
}

impl Reporting {
    fn ended(&self, peer: SocketAddr, file: &str, outcome: Option<&Outcome>) {
        self.metrics.tftp.ended(outcome);
        let (Some(live), Some(Outcome::Complete { .. })) = (&self.inventory, outcome) else {
            return;
        };
        let SocketAddr::V6(peer_v6) = peer else {
            return;
        };
        let snapshot = live.snapshot();
        let mac = snapshot
            .by_address(peer_v6.ip())
            .map(|host| host.spec.mac)
            .or_else(|| crate::mac::Mac::from_eui64_address(peer_v6.ip()));
        if let Some(mac) = mac {
            live.observe(crate::inventory::Observation {
                mac,
                stage: crate::inventory::Stage::Tftp,
                detail: Some(file.to_owned()),
                at: crate::inventory::live::now_millis(),
                peer: Some(peer.ip()),
            });
        }
    }
}

/// [`serve`], reporting transfers to `reporting`.
pub async fn serve_reporting(
    config: &TftpConfig,
    socket: UdpSocket,
    shutdown: impl Future<Output = ()>,
    reporting: Reporting,
) -> Result<(), ServeError> {
    let root = Arc::new(Root::open(&config.root)?);
    let local = socket.local_addr().map_err(ServeError::Socket)?;
    let settings = settings(config);
    // On a wildcard address, ask the kernel where each request was sent, so that the
    // transfer answers from that address: clients (UEFI's Mtftp6 among them) expect
    // the DATA from the address they asked.
    let wildcard_v6 = matches!(local, SocketAddr::V6(v6) if v6.ip().is_unspecified());
    if wildcard_v6 {
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|errno| ServeError::Socket(io::Error::from_raw_os_error(errno as i32)))?;
    }
    let active: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let mut buffer = vec![0u8; 65536];
    info!(%local, root = %config.root.display(), "TFTP server listening");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            received = receive(&socket, &mut buffer, wildcard_v6) => {
                let (n, peer, destination) = match received {
                    Ok(received) => received,
                    Err(err) => {
                        debug!(%err, "TFTP receive failed");
                        continue;
                    }
                };
                let request = &buffer[..n];
                let Ok(packet) = Packet::new_checked(request) else {
                    debug!(%peer, "TFTP packet too short to carry an opcode");
                    continue;
                };
                if !matches!(packet.opcode(), Opcode::ReadRequest | Opcode::WriteRequest) {
                    // RFC 1350: only requests belong on the server port.
                    debug!(%peer, opcode = ?packet.opcode(), "TFTP non-request on the server port");
                    continue;
                }
                let guard = match ActiveGuard::enter(&active, peer) {
                    Some(guard) => guard,
                    // The client sent its request again while we are already
                    // answering it from the transfer's port: that port retransmits.
                    None => continue,
                };
                if tasks.len() >= config.max_transfers {
                    let busy = Repr::Error {
                        code: ErrorCode::NotDefined,
                        message: b"server busy, try again",
                    };
                    let _ = socket.send_to(&busy.to_bytes(), peer).await;
                    warn!(%peer, n_transfers = tasks.len(), "TFTP request refused: too many transfers");
                    continue;
                }
                let transfer = TransferTask {
                    guard: Some(guard),
                    request: request.to_vec(),
                    peer,
                    local: destination.unwrap_or(local),
                    root: Arc::clone(&root),
                    settings: settings.clone(),
                    reporting: reporting.clone(),
                };
                tasks.spawn(transfer.run());
            }
        }
    }
    info!(
        n_transfers = tasks.len(),
        "TFTP server stopping; letting running transfers finish"
    );
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

/// Receives one datagram: its length, sender, and (with `pktinfo`) the address it was
/// sent to, scoped to the arrival interface when link-local.
async fn receive(
    socket: &UdpSocket,
    buffer: &mut [u8],
    pktinfo: bool,
) -> io::Result<(usize, SocketAddr, Option<SocketAddr>)> {
    if !pktinfo {
        let (n, peer) = socket.recv_from(buffer).await?;
        return Ok((n, peer, None));
    }
    socket
        .async_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(&mut *buffer)];
            let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo);
            let message = recvmsg::<SockaddrIn6>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
            let destination = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        let address = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                        let link_local = address.segments()[0] & 0xffc0 == 0xfe80;
                        let scope = if link_local { info.ipi6_ifindex } else { 0 };
                        Some(SocketAddr::V6(SocketAddrV6::new(address, 0, 0, scope)))
                    }
                    _ => None,
                })
            });
            let peer = message
                .address
                .map(|peer| SocketAddr::V6(SocketAddrV6::from(peer)))
                .ok_or_else(|| io::Error::other("datagram without a sender address"))?;
            Ok((message.bytes, peer, destination))
        })
        .await
}

/// Marks a client address busy while its transfer runs.
struct ActiveGuard {
    active: Arc<Mutex<HashSet<SocketAddr>>>,
    peer: SocketAddr,
}

impl ActiveGuard {
    fn enter(active: &Arc<Mutex<HashSet<SocketAddr>>>, peer: SocketAddr) -> Option<ActiveGuard> {
        let mut set = active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set.insert(peer).then(|| ActiveGuard {
            active: Arc::clone(active),
            peer,
        })
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut set = self
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set.remove(&self.peer);
    }
}

/// The directory files are served from, held open for the server's lifetime.
struct Root {
    directory: File,
    canonical: PathBuf,
}

impl Root {
    fn open(path: &Path) -> Result<Root, ServeError> {
        let fail = |source| ServeError::Root {
            path: path.to_owned(),
            source,
        };
        let canonical = path.canonicalize().map_err(fail)?;
        let directory = File::open(&canonical).map_err(fail)?;
        if !directory.metadata().map_err(fail)?.is_dir() {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a directory",
            )));
        }
        Ok(Root {
            directory,
            canonical,
        })
    }

    /// Opens a root-relative path for reading without leaving the root.
    fn open_file(&self, relative: &Path) -> Result<File, OpenError> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let file = match openat2(self.directory.as_raw_fd(), relative, how) {
            // SAFETY: openat2 just returned this descriptor and nothing else owns it.
            Ok(fd) => unsafe { File::from_raw_fd(fd) },
            Err(Errno::ENOSYS) => self.open_file_without_openat2(relative)?,
            Err(errno) => return Err(open_error(errno)),
        };
        let metadata = file
            .metadata()
            .map_err(|err| OpenError::Other(err.to_string()))?;
        if !metadata.is_file() {
            return Err(OpenError::NotAFile);
        }
        Ok(file)
    }

    /// Kernels before 5.6 lack openat2: resolve every symlink and compare prefixes.
    fn open_file_without_openat2(&self, relative: &Path) -> Result<File, OpenError> {
        let resolved = self
            .canonical
            .join(relative)
            .canonicalize()
            .map_err(|err| io_open_error(&err))?;
        if !resolved.starts_with(&self.canonical) {
            return Err(OpenError::Escapes);
        }
        File::open(resolved).map_err(|err| io_open_error(&err))
    }
}

fn open_error(errno: Errno) -> OpenError {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => OpenError::NotFound,
        // EXDEV: resolution would leave the root; ELOOP: a magic link or a loop.
        Errno::EXDEV | Errno::ELOOP => OpenError::Escapes,
        Errno::EACCES | Errno::EPERM => OpenError::PermissionDenied,
        other => OpenError::Other(other.desc().to_owned()),
    }
}

fn io_open_error(err: &io::Error) -> OpenError {
    match err.kind() {
        io::ErrorKind::NotFound => OpenError::NotFound,
        io::ErrorKind::PermissionDenied => OpenError::PermissionDenied,
        _ => OpenError::Other(err.to_string()),
    }
}

/// What DATA blocks are cut from.
enum Source {
    File(File),
    /// A netascii conversion of the file.
    Memory(Vec<u8>),
}

impl Source {
    fn open(root: &Root, relative: &Path, netascii: bool) -> Result<(Source, u64), OpenError> {
        let file = root.open_file(relative)?;
        let size = file
            .metadata()
            .map_err(|err| OpenError::Other(err.to_string()))?
            .len();
        if !netascii {
            return Ok((Source::File(file), size));
        }
        if size > MAX_NETASCII_BYTES {
            return Err(OpenError::Other(format!(
                "file too large for netascii mode ({size} bytes); ask for octet mode"
            )));
        }
        let mut raw = Vec::with_capacity(size as usize);
        io::Read::read_to_end(&mut &file, &mut raw)
            .map_err(|err| OpenError::Other(err.to_string()))?;
        let converted = to_netascii(&raw);
        let size = converted.len() as u64;
        Ok((Source::Memory(converted), size))
    }

    fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Source::File(file) => file.read_exact_at(buffer, offset),
            Source::Memory(bytes) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let chunk = start
                    .checked_add(buffer.len())
                    .and_then(|end| bytes.get(start..end))
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                buffer.copy_from_slice(chunk);
                Ok(())
            }
        }
    }
}

/// RFC 764 NVT ASCII: LF becomes CR LF, a bare CR becomes CR NUL.
fn to_netascii(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    for &byte in raw {
        match byte {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            other => out.push(other),
        }
    }
    out
}

struct TransferTask {
    /// Released just before the last packet goes out, so that the client may send its
    /// next request from the same port as soon as it has our answer.
    guard: Option<ActiveGuard>,
    request: Vec<u8>,
    peer: SocketAddr,
    local: SocketAddr,
    root: Arc<Root>,
    settings: Settings,
    reporting: Reporting,
}

impl TransferTask {
    async fn run(mut self) {
        let peer = self.peer;
        let started = Instant::now();
        let reporting = self.reporting.clone();
        reporting.metrics.tftp.active.inc();
        let filename = match Repr::parse_bytes(&self.request) {
            Ok(Repr::ReadRequest { filename, .. } | Repr::WriteRequest { filename, .. }) => {
                String::from_utf8_lossy(filename).into_owned()
            }
            _ => String::new(),
        };
        let result = self.transfer().await;
        reporting.metrics.tftp.active.dec();
        reporting.ended(
            peer,
            &filename,
            result.as_ref().ok().map(|(outcome, _)| outcome),
        );
        match result {
            Ok((
                Outcome::Complete {
                    bytes,
                    retransmitted_blocks,
                },
                negotiated,
            )) => info!(
                %peer,
                file = %filename,
                bytes,
                block_size = negotiated.block_size,
                window_size = negotiated.window_size,
                retransmitted_blocks,
                millis = started.elapsed().as_millis() as u64,
                "TFTP transfer complete"
            ),
            // UEFI's PXE asks for tsize first and ends that transfer after the OACK
            // with error 8: a size probe, not a failure.
            Ok((
                Outcome::ClientError {
                    code: ErrorCode::OptionNegotiation,
                    message,
                },
                _,
            )) => {
                info!(%peer, file = %filename, reason = %message, "TFTP client ended the transfer after the OACK (a size probe)")
            }
            Ok((Outcome::Refused { code, message }, _)) => {
                info!(%peer, file = %filename, %code, reason = %message, "TFTP request refused")
            }
            Ok((outcome, _)) => {
                warn!(%peer, file = %filename, ?outcome, "TFTP transfer ended early")
            }
            Err(err) => warn!(%peer, file = %filename, %err, "TFTP transfer failed"),
        }
    }

    async fn transfer(&mut self) -> io::Result<(Outcome, Negotiated)> {
        // Same address as the server socket (scope ID included), a fresh port.
        let mut bind_to = self.local;
        bind_to.set_port(0);
        let socket = UdpSocket::bind(bind_to).await?;
        socket.connect(self.peer).await?;

        let (mut transfer, actions) = Transfer::start(
            Instant::now().into_std(),
            &self.request,
            self.settings.clone(),
        );
        let mut pending: VecDeque<Action> = actions.into();
        let mut source: Option<Source> = None;
        // One timer for the whole transfer, moved with `reset` rather than created
        // anew for every block.
        let far = || Instant::now() + Duration::from_secs(3600);
        let timer = tokio::time::sleep_until(far());
        tokio::pin!(timer);
        let mut buffer = vec![0u8; 65536 + field::DATA];
        loop {
            while let Some(action) = pending.pop_front() {
                if self.guard.is_some() && pending.iter().any(|a| matches!(a, Action::Finish(_))) {
                    self.guard = None;
                }
                match action {
                    Action::Open { path, netascii } => {
                        let result = match Source::open(&self.root, &path, netascii) {
                            Ok((opened, size)) => {
                                source = Some(opened);
                                Ok(size)
                            }
                            Err(err) => Err(err),
                        };
                        let now = Instant::now().into_std();
                        pending.extend(transfer.handle(now, Event::Opened(result)));
                    }
                    Action::Send(bytes) => {
                        socket.send(&bytes).await?;
                    }
                    Action::SendData { block, offset, len } => {
                        let Some(source) = &source else {
                            return Err(io::Error::other(
                                "DATA asked for before the file was open",
                            ));
                        };
                        let packet = &mut buffer[..field::DATA + len];
                        let mut view = Packet::new_unchecked(&mut *packet);
                        view.set_opcode(Opcode::Data);
                        view.set_block(block);
                        if let Err(err) = source.read_exact_at(&mut packet[field::DATA..], offset) {
                            let message = format!("cannot read the file: {err}");
                            let error = Repr::Error {
                                code: ErrorCode::NotDefined,
                                message: message.as_bytes(),
                            };
                            let _ = socket.send(&error.to_bytes()).await;
                            return Err(err);
                        }
                        socket.send(packet).await?;
                    }
                    Action::WaitUntil(at) => timer.as_mut().reset(at.into()),
                    Action::Finish(outcome) => return Ok((outcome, transfer.negotiated())),
                }
            }
            tokio::select! {
                received = socket.recv(&mut buffer) => {
                    let n = received?;
                    let now = Instant::now().into_std();
                    pending.extend(transfer.handle(now, Event::Packet(&buffer[..n])));
                }
                () = &mut timer => {
                    // A fired timer stays ready: park it until the machine asks again.
                    timer.as_mut().reset(far());
                    pending.extend(transfer.handle(Instant::now().into_std(), Event::Timer));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netascii_turns_line_ends_into_cr_lf_and_bare_cr_into_cr_nul() {
        assert_eq!(to_netascii(b"a\nb\rc\r\n"), b"a\r\nb\r\0c\r\0\r\n");
    }
}

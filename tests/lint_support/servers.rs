//! The peers iPXE talks to while it runs the corpus: HTTP, DNS and TFTP, each a thread
//! inside the test's namespace, answering every well-formed request so that a script iPXE
//! reads correctly gets as far as it can, and logging every request (what iPXE asked for
//! is the evidence of how it parsed a URL).
//!
//! HTTP and TFTP answer any path with a one-line iPXE script that prints
//! `LINT-HANDOVER …`: executing a fetched image is where a real script hands over (to
//! an installer kernel or the next script), so the harness stops there. DNS knows a few
//! names (those of iPXE's own URI tests and the corpus) and answers NXDOMAIN otherwise,
//! so a host iPXE misread (`2001:db8:`) fails at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sixboot_lab::netns::Namespace;

/// The address DNS gives every known name.
pub const NAME_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);
/// The IPv4 address DNS gives every known name.
pub const NAME_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// The names DNS answers (`boot.ipxe.org`, `example.com`, `test.ipxe.org` are iPXE's URI
/// test vectors).
pub const KNOWN_NAMES: &[&str] = &[
    "boot.ipxe.org",
    "example.com",
    "test.ipxe.org",
    "boot.example.com",
];

/// Something a server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Dns {
        name: String,
        answered: bool,
    },
    Http {
        local: SocketAddr,
        request: String,
        host: String,
    },
    Tftp {
        local: SocketAddr,
        file: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Dns { name, answered } => write!(
                f,
                "DNS {name:?} {}",
                if *answered { "answered" } else { "NXDOMAIN" }
            ),
            Event::Http {
                local,
                request,
                host,
            } => write!(f, "HTTP {local} Host:{host} {request}"),
            Event::Tftp { local, file } => write!(f, "TFTP {local} {file}"),
        }
    }
}

/// The shared log.
pub type Log = Arc<Mutex<Vec<Event>>>;

fn record(log: &Log, event: Event) {
    log.lock().unwrap_or_else(|e| e.into_inner()).push(event);
}

/// The body of every fetched file.
fn handover(what: &str) -> Vec<u8> {
    format!("#!ipxe\necho LINT-HANDOVER {what}\n").into_bytes()
}

/// The running servers; stopped (threads joined) on drop.
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub log: Log,
}

impl Servers {
    /// Starts HTTP on `[::]` at each of `http_ports`, DNS on each of `dns`, TFTP on each
    /// of `tftp`, inside `ns`. Returns once every socket is bound.
    pub fn start(
        ns: &Namespace,
        http_ports: &[u16],
        dns: &[SocketAddr],
        tftp: &[SocketAddr],
    ) -> Servers {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Log = Arc::default();
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let mut n = 0;
        for &port in http_ports {
            let bind = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            threads.push(spawn(
                ns,
                &stop,
                &log,
                &ready_tx,
                move |stop, log, ready| {
                    let listener = TcpListener::bind(bind).map_err(|e| format!("HTTP {bind}: {e}"));
                    let listener = match listener {
                        Ok(l) => l,
                        Err(e) => return ready(Err(e)),
                    };
                    listener.set_nonblocking(true).ok();
                    ready(Ok(()));
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => answer_http(stream, &log),
                            Err(_) => std::thread::sleep(Duration::from_millis(2)),
                        }
                    }
                },
            ));
            n += 1;
        }
        let udp: Vec<(SocketAddr, UdpHandler)> = dns
            .iter()
            .map(|&addr| (addr, answer_dns as UdpHandler))
            .chain(tftp.iter().map(|&addr| (addr, answer_tftp as UdpHandler)))
            .collect();
        for (addr, handler) in udp {
            threads.push(spawn(
                ns,
                &stop,
                &log,
                &ready_tx,
                move |stop, log, ready| {
                    let socket = match UdpSocket::bind(addr) {
                        Ok(s) => s,
                        Err(e) => return ready(Err(format!("UDP {addr}: {e}"))),
                    };
                    socket
                        .set_read_timeout(Some(Duration::from_millis(50)))
                        .ok();
                    ready(Ok(()));
                    let mut buf = [0u8; 1500];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((len, peer)) = socket.recv_from(&mut buf) {
                            handler(&socket, &buf[..len], peer, &log);
                        }
                    }
                },
            ));
            n += 1;
        }
        drop(ready_tx);
        for _ in 0..n {
            match ready_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(())) => {}
                Ok(Err(err)) => panic!("lint lab server could not start: {err}"),
                Err(err) => panic!("lint lab server did not start: {err}"),
            }
        }
        Servers { stop, threads, log }
    }

    /// Takes the log so far.
    pub fn take_log(&self) -> Vec<Event> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

type Ready = Box<dyn Fn(Result<(), String>) + Send>;

/// Answers one datagram that arrived on `socket` from `peer`.
type UdpHandler = fn(&UdpSocket, &[u8], SocketAddr, &Log);

/// A server thread inside `ns`.
fn spawn(
    ns: &Namespace,
    stop: &Arc<AtomicBool>,
    log: &Log,
    ready: &std::sync::mpsc::Sender<Result<(), String>>,
    body: impl FnOnce(Arc<AtomicBool>, Log, Ready) + Send + 'static,
) -> JoinHandle<()> {
    let path = format!("/run/netns/{}", ns.name());
    let (stop, log, ready) = (stop.clone(), log.clone(), ready.clone());
    std::thread::spawn(move || {
        let ready: Ready = Box::new(move |r| {
            let _ = ready.send(r);
        });
        let entered = std::fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| e.to_string())
            });
        if let Err(err) = entered {
            return ready(Err(format!("cannot enter {path}: {err}")));
        }
        body(stop, log, ready);
    })
}

/// One HTTP exchange: read the head (and a POST body), answer 200 with the handover
/// script, close.
fn answer_http(stream: TcpStream, log: &Log) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let request = request.trim_end().to_owned();
    let mut host = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        if name.eq_ignore_ascii_case("host") {
            host = value.trim().to_owned();
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(65536)];
    let _ = reader.read_exact(&mut body);
    let reply = handover(&format!("http {local} {request}"));
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    );
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply);
    record(
        log,
        Event::Http {
            local,
            request,
            host,
        },
    );
}

/// Answers a DNS query: AAAA/A for a known name, NXDOMAIN for any other.
fn answer_dns(socket: &UdpSocket, query: &[u8], peer: SocketAddr, log: &Log) {
    if let Some(reply) = dns_reply(query, log) {
        let _ = socket.send_to(&reply, peer);
    }
}

fn dns_reply(query: &[u8], log: &Log) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name = labels.join(".");
    let known = KNOWN_NAMES.iter().any(|n| n.eq_ignore_ascii_case(&name));
    let rdata: Option<Vec<u8>> = match qtype {
        28 if known => Some(NAME_V6.octets().to_vec()),
        1 if known => Some(NAME_V4.octets().to_vec()),
        _ => None,
    };
    let mut reply = query.get(..question_end)?.to_vec();
    reply[2] = 0x80 | (query[2] & 0x01); // QR, RD copied
    reply[3] = 0x80 | if known { 0 } else { 3 }; // RA, NOERROR or NXDOMAIN
    reply[6..12].copy_from_slice(&[0, u8::from(rdata.is_some()), 0, 0, 0, 0]);
    if let Some(rdata) = rdata {
        reply.extend_from_slice(&[0xc0, 12]);
        reply.extend_from_slice(&qtype.to_be_bytes());
        reply.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        reply.extend_from_slice(&rdata);
    }
    record(
        log,
        Event::Dns {
            name,
            answered: known,
        },
    );
    Some(reply)
}

/// Answers a TFTP read request with one DATA block (the handover script) from a new
/// port on the same address, and waits briefly for its ACK.
fn answer_tftp(socket: &UdpSocket, packet: &[u8], peer: SocketAddr, log: &Log) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    if packet.get(..2) != Some(&[0, 1]) {
        return;
    }
    let file = packet[2..]
        .split(|b| *b == 0)
        .next()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default();
    record(
        log,
        Event::Tftp {
            local,
            file: file.clone(),
        },
    );
    let Ok(socket) = UdpSocket::bind(SocketAddr::new(local.ip(), 0)) else {
        return;
    };
    let mut data = vec![0, 3, 0, 1];
    data.extend_from_slice(&handover(&format!("tftp {local} {file}")));
    let _ = socket.send_to(&data, peer);
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    let mut ack = [0u8; 64];
    let _ = socket.recv_from(&mut ack);
}

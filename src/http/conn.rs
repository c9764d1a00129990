//! One client connection: read a head within the header timeout, answer it, repeat
//! while the client keeps the connection alive.
//!
//! Every wait has a bound: the head (and the idle time between keep-alive requests)
//! must arrive within `header_timeout`, and each write must make progress within
//! `send_timeout`, so a slow or stalled client holds only its own connection.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use super::request::{parse_head, HeadError, Request};
use super::{App, Body, Response};
use crate::http::metrics::Route;

/// The largest piece sent in one `sendfile` call, as nginx's `sendfile_max_chunk`:
/// one fast client must not keep a worker thread busy for a whole file.
const SENDFILE_CHUNK: usize = 1 << 20;
/// The buffer for copying files where `sendfile` cannot be used (TLS).
const COPY_BUFFER: usize = 256 * 1024;
/// The largest request body we read (and throw away): `/done` needs none.
const MAX_BODY: u64 = 64 * 1024;

/// A byte stream a response can be written to, with the fastest way it has to send
/// part of a file.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// Writes `head` and then `len` bytes of `file` from `start`; returns the file
    /// bytes sent. Each write must make progress within `stall`.
    fn send_file(
        &mut self,
        head: &[u8],
        file: &File,
        start: u64,
        len: u64,
        stall: Duration,
    ) -> impl Future<Output = io::Result<u64>> + Send;
}

impl Transport for TcpStream {
    /// `sendfile(2)`: the kernel moves page-cache pages to the socket, no copy
    /// through user space. TCP_CORK keeps the head and the first data in one segment.
    async fn send_file(
        &mut self,
        head: &[u8],
        file: &File,
        start: u64,
        len: u64,
        stall: Duration,
    ) -> io::Result<u64> {
        let _ = socket2::SockRef::from(&*self).set_cork(true);
        timeout(stall, self.write_all(head))
            .await
            .map_err(|_| stall_error())??;
        let mut offset = start;
        let end = start + len;
        while offset < end {
            let chunk = usize::try_from(end - offset)
                .unwrap_or(usize::MAX)
                .min(SENDFILE_CHUNK);
            let sent = timeout(stall, async {
                loop {
                    self.writable().await?;
                    match self.try_io(tokio::io::Interest::WRITABLE, || {
                        rustix::fs::sendfile(self.as_fd(), file.as_fd(), Some(&mut offset), chunk)
                            .map_err(io::Error::from)
                    }) {
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                        other => return other,
                    }
                }
            })
            .await
            .map_err(|_| stall_error())??;
            if sent == 0 {
                let _ = socket2::SockRef::from(&*self).set_cork(false);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was being sent",
                ));
            }
            // `offset` was advanced by sendfile itself.
        }
        let _ = socket2::SockRef::from(&*self).set_cork(false);
        Ok(offset - start)
    }
}

fn stall_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")
}

/// Copies a file with a large buffer: for transports that are not a plain socket.
pub async fn copy_file<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: &[u8],
    file: &File,
    start: u64,
    len: u64,
    stall: Duration,
) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    timeout(stall, stream.write_all(head))
        .await
        .map_err(|_| stall_error())??;
    let mut buf = vec![
        0u8;
        COPY_BUFFER
            .min(usize::try_from(len).unwrap_or(COPY_BUFFER))
            .max(1)
    ];
    let mut sent = 0u64;
    while sent < len {
        let want = buf
            .len()
            .min(usize::try_from(len - sent).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], start + sent)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was being sent",
            ));
        }
        timeout(stall, stream.write_all(&buf[..n]))
            .await
            .map_err(|_| stall_error())??;
        sent += n as u64;
    }
    timeout(stall, stream.flush())
        .await
        .map_err(|_| stall_error())??;
    Ok(sent)
}

enum ReadHead {
    Request(Box<Request>, usize),
    /// The client closed the connection between requests.
    Closed,
    /// Answer with this status and close.
    Refuse(u16),
}

async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max_bytes: usize,
    max_headers: usize,
) -> io::Result<ReadHead> {
    loop {
        if !buf.is_empty() {
            match parse_head(buf, max_headers) {
                Ok(Some((request, len))) => return Ok(ReadHead::Request(Box::new(request), len)),
                Ok(None) => {}
                Err(HeadError::TooManyHeaders) => return Ok(ReadHead::Refuse(431)),
                Err(HeadError::Malformed(_)) => return Ok(ReadHead::Refuse(400)),
            }
            if buf.len() >= max_bytes {
                return Ok(ReadHead::Refuse(431));
            }
        }
        let before = buf.len();
        buf.reserve(4096.min(max_bytes - before).max(1));
        let n = stream.read_buf(buf).await?;
        if n == 0 {
            if before == 0 {
                return Ok(ReadHead::Closed);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection inside a request head",
            ));
        }
    }
}

/// Serves requests on one connection until the client closes it, a limit is hit, or
/// the server shuts down.
/// `tls`: whether `stream` is HTTPS (the API may require it).
pub async fn serve_connection<S: Transport>(
    app: &App,
    mut stream: S,
    peer: SocketAddr,
    tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    serve_requests(app, &mut stream, peer, tls, shutdown).await;
    // A TLS stream sends close_notify here, so the client knows the response is whole.
    let _ = timeout(app.limits.send_timeout, stream.shutdown()).await;
}

async fn serve_requests<S: Transport>(
    app: &App,
    stream: &mut S,
    peer: SocketAddr,
    tls: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &app.limits;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head = tokio::select! {
            head = timeout(
                limits.header_timeout,
                read_head(stream, &mut buf, limits.max_header_bytes, limits.max_headers),
            ) => head,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (mut request, head_len) = match head {
            Ok(Ok(ReadHead::Request(request, len))) => (request, len),
            Ok(Ok(ReadHead::Closed)) => return,
            Ok(Ok(ReadHead::Refuse(code))) => {
                tracing::debug!(%peer, code, "refused a request head");
                let response = Response::error(code).closing();
                let _ = write_response(app, stream, response, Route::Other, false).await;
                return;
            }
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "connection ended");
                return;
            }
            Err(_) => {
                app.metrics.header_timeouts.fetch_add(1, Relaxed);
                // Only a client that started a request hears why; an idle
                // keep-alive connection is simply closed.
                if !buf.is_empty() {
                    let response = Response::error(408).closing();
                    let _ = write_response(app, stream, response, Route::Other, false).await;
                }
                return;
            }
        };
        buf.drain(..head_len);
        request.tls = tls;
        // Bodies: only the API reads one; a client may send a small one elsewhere
        // (POST /done).
        if request.has_transfer_encoding {
            let response = Response::error(501).closing();
            let _ = write_response(app, stream, response, Route::Other, false).await;
            return;
        }
        if request.content_length > MAX_BODY {
            let response = Response::error(413).closing();
            let _ = write_response(app, stream, response, Route::Other, false).await;
            return;
        }
        let body_len = request.content_length as usize;
        if body_len > 0 {
            let read_body = async {
                while buf.len() < body_len {
                    if stream.read_buf(&mut buf).await? == 0 {
                        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                    }
                }
                Ok(())
            };
            match timeout(limits.header_timeout, read_body).await {
                Ok(Ok(())) => {
                    request.body = buf.drain(..body_len).collect();
                }
                _ => return,
            }
        }
        let head_only = request.method == super::request::Method::Head;
        let (route, mut response) = app.handle(&request, peer).await;
        let stopping = *shutdown.borrow();
        if !request.keep_alive || stopping {
            response.close = true;
        }
        let close = response.close;
        match write_response(app, stream, response, route, head_only).await {
            Ok(()) if !close => {}
            _ => return,
        }
    }
}

/// Writes one response and counts it; `Err` when the connection cannot go on.
async fn write_response<S: Transport>(
    app: &App,
    stream: &mut S,
    response: Response,
    route: Route,
    head_only: bool,
) -> io::Result<()> {
    let stall = app.limits.send_timeout;
    let head = response.head(SystemTime::now());
    let code = response.status;
    match response.body {
        Body::Bytes(bytes) if !head_only => {
            let mut out = head.into_bytes();
            out.extend_from_slice(&bytes);
            let result = timeout(stall, stream.write_all(&out)).await;
            app.metrics.count(route, code, bytes.len() as u64);
            match result {
                Ok(result) => result,
                Err(_) => {
                    app.metrics.send_timeouts.fetch_add(1, Relaxed);
                    Err(stall_error())
                }
            }
        }
        Body::File {
            file,
            start,
            len,
            download,
        } if !head_only => {
            app.metrics.active_downloads.fetch_add(1, Relaxed);
            let started = Instant::now();
            let result = stream
                .send_file(head.as_bytes(), &file, start, len, stall)
                .await;
            app.metrics.active_downloads.fetch_sub(1, Relaxed);
            let sent = result.as_ref().map_or(0, |n| *n);
            app.metrics.count(route, code, sent);
            let elapsed = started.elapsed();
            match &result {
                Ok(_) => tracing::info!(
                    target: "sixboot::boot",
                    stage = "file",
                    path = %download.path,
                    host = download.host.as_deref().unwrap_or("-"),
                    peer = %download.peer,
                    bytes = sent,
                    status = code,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "file served"
                ),
                Err(err) => {
                    if err.kind() == io::ErrorKind::TimedOut {
                        app.metrics.send_timeouts.fetch_add(1, Relaxed);
                    }
                    tracing::warn!(
                        target: "sixboot::boot",
                        stage = "file",
                        path = %download.path,
                        host = download.host.as_deref().unwrap_or("-"),
                        peer = %download.peer,
                        bytes = sent,
                        duration_ms = elapsed.as_secs_f64() * 1000.0,
                        error = %err,
                        "file transfer broken off"
                    )
                }
            }
            result.map(|_| ())
        }
        _ => {
            app.metrics.count(route, code, 0);
            match timeout(stall, stream.write_all(head.as_bytes())).await {
                Ok(result) => result,
                Err(_) => Err(stall_error()),
            }
        }
    }
}

//! The HTTP edge: binding listeners and running the worker threads, each with its own
//! current-thread tokio runtime accepting from every listener (nginx's worker model).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::{conn, App};

/// Binds every `http.listen` address (an IPv6 wildcard only for IPv6, so that an IPv4
/// wildcard can be listed beside it).
pub fn bind(addresses: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for address in addresses {
        let domain = socket2::Domain::for_address(*address);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        if address.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket
            .bind(&(*address).into())
            .and_then(|()| socket.listen(1024))
            .with_context(|| format!("cannot listen on http.listen {address}"))?;
        listeners.push(TcpListener::from_std(socket.into())?);
    }
    Ok(listeners)
}

/// Serves HTTP on listeners the caller has bound until `shutdown` completes; then
/// stops accepting, lets responses in flight finish for at most
/// `limits.shutdown_grace`, and returns. A failing connection is logged and the
/// server goes on.
pub async fn serve(
    app: Arc<App>,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with_tls(app, listeners, Vec::new(), shutdown).await
}

/// [`serve`] with HTTPS on `tls_listeners` (bound from `http.tls_listen`); needs a
/// config with `tls_cert` and `tls_key`.
pub async fn serve_with_tls(
    app: Arc<App>,
    listeners: Vec<TcpListener>,
    tls_listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (_keep, apps) = watch::channel(app);
    serve_reloadable(apps, listeners, tls_listeners, shutdown).await
}

/// [`serve_with_tls`] with an `App` that can be replaced while serving (SIGHUP
/// reload): every connection accepted after `apps` changes is served by the new
/// `App` (templates, files root, TLS certificate); a connection already open finishes
/// on the one it started with. The listeners stay; limits and worker count are the
/// first `App`'s.
pub async fn serve_reloadable(
    mut apps: watch::Receiver<Arc<App>>,
    listeners: Vec<TcpListener>,
    tls_listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let app = apps.borrow_and_update().clone();
    if !tls_listeners.is_empty() && app.tls.is_none() {
        anyhow::bail!("HTTPS listeners given but the config has no tls_cert/tls_key");
    }
    // One current-thread runtime per worker thread, each accepting from every
    // listener, like nginx's worker processes: a connection stays on the thread that
    // accepted it, with no hand-offs between threads. Under CPU contention this served
    // about twice the requests/s of one work-stealing runtime for the same CPU time.
    let mut all = Vec::new();
    for (listener, is_tls) in listeners
        .into_iter()
        .map(|l| (l, false))
        .chain(tls_listeners.into_iter().map(|l| (l, true)))
    {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, tls = is_tls, workers = app.limits.workers, "HTTP listening");
        }
        all.push((listener.into_std()?, is_tls));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let n_workers = app.limits.workers.max(1);
    let mut finished = Vec::new();
    for i in 0..n_workers {
        let mine = all
            .iter()
            .map(|(l, is_tls)| Ok((l.try_clone()?, *is_tls)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let (apps, stop) = (apps.clone(), stop_rx.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("sixboot-http-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|runtime| runtime.block_on(run_worker(apps, mine, n_workers, stop)));
                let _ = done_tx.send(result);
            })
            .context("cannot start an HTTP worker thread")?;
        finished.push(done_rx);
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    for done in finished {
        match done.await {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("an HTTP worker thread died"),
        }
    }
    Ok(())
}

/// One worker: accept loops on its own runtime; returns when `stop` turns true and
/// its connections have finished (or the shutdown grace is over).
async fn run_worker(
    apps: watch::Receiver<Arc<App>>,
    listeners: Vec<(std::net::TcpListener, bool)>,
    n_workers: usize,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = apps.borrow().clone();
    let max_connections = (app.limits.max_connections / n_workers).max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut accepts = tokio::task::JoinSet::new();
    for (listener, is_tls) in listeners {
        let listener = TcpListener::from_std(listener)?;
        accepts.spawn(accept_loop(
            apps.clone(),
            listener,
            is_tls,
            stop.clone(),
            slots.clone(),
        ));
    }
    let mut stop = stop;
    let _ = stop.wait_for(|s| *s).await;
    while accepts.join_next().await.is_some() {}
    // Every connection holds a slot; getting them all back means all are done.
    let n_slots = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(app.limits.shutdown_grace, slots.acquire_many(n_slots))
        .await
        .is_err()
    {
        tracing::warn!(
            active = app.metrics.active_connections.load(Relaxed),
            "shutdown grace over; dropping connections still open"
        );
    }
    Ok(())
}

async fn accept_loop(
    apps: watch::Receiver<Arc<App>>,
    listener: TcpListener,
    is_tls: bool,
    mut stop: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
) {
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                // The newest App (a reload may have replaced it since the last accept).
                let app = apps.borrow().clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    app.metrics.connections_total.fetch_add(1, Relaxed);
                    app.metrics.active_connections.fetch_add(1, Relaxed);
                    match (&app.tls, is_tls) {
                        (Some(acceptor), true) => {
                            let handshake = tokio::time::timeout(
                                app.limits.header_timeout,
                                acceptor.accept(stream),
                            )
                            .await;
                            match handshake {
                                Ok(Ok(stream)) => {
                                    conn::serve_connection(&app, stream, peer, true, stop).await
                                }
                                Ok(Err(err)) => {
                                    tracing::debug!(%peer, error = %err, "TLS handshake failed")
                                }
                                Err(_) => {
                                    app.metrics.header_timeouts.fetch_add(1, Relaxed);
                                }
                            }
                        }
                        _ => conn::serve_connection(&app, stream, peer, false, stop).await,
                    }
                    app.metrics.active_connections.fetch_sub(1, Relaxed);
                    drop(permit);
                });
            }
            Err(err) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

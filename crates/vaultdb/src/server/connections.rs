//! The server's connections ([`serve`]): plain TCP or TLS, each under a cap on connections
//! and a deadline for what a client must send before the server works for it.
//!
//! - At most [`Connections::max`] connections at once, TLS handshakes included: the server
//!   accepts the next one only when one has ended, so clients beyond the cap wait in the
//!   kernel's backlog, where they cost no task, buffer or file descriptor of the server's
//!   (which its `fs` backends need too).
//! - A TLS handshake has [`HANDSHAKE_TIMEOUT`]; then each request's header has
//!   [`Connections::header_timeout`] to arrive, counted from the connection's start or the
//!   end of the previous answer (hyper's `header_read_timeout`): a client that sends nothing,
//!   sends a header slowly (slow loris) or idles between requests is disconnected; so is one
//!   that stops reading its answers for as long (a write waits that long at most). The
//!   body and the handler fall under the request timeout (`Limits::request_timeout`).
//!
//! HTTP/1.1 is hyper's; a graceful stop lets requests in flight finish, as `axum::serve`
//! does.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::tls::Reloading;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default cap on connections (`server.max_connections`): well below the usual limit
/// of 1024 open files, so that the store's own files and sockets still open.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Limits on the server's connections.
#[derive(Clone, Copy, Debug)]
pub struct Connections {
    /// The most connections open at once (TLS handshakes included).
    pub max: usize,
    /// How long a request's header may take to arrive (and a connection may idle), and
    /// how long a write of an answer may wait for the client to read.
    pub header_timeout: Duration,
}

/// Serves `app` on `tcp` (over TLS with `tls`'s configuration of the moment, if given)
/// until `shutdown` completes, then waits for the requests in flight.
///
/// # Errors
/// Never: failures of single connections are logged (at `debug`) and end those only.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<Arc<Reloading>>,
    app: Router,
    limits: Connections,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: clients beyond the cap wait in the backlog.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let sock = tokio::select! {
            r = tcp.accept() => match r {
                Ok((sock, _)) => sock,
                Err(e) => {
                    // As axum's own listener: per-connection errors are skipped; others
                    // (out of file descriptors) wait a moment.
                    if !is_connection_error(&e) {
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = sock.set_nodelay(true);
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return connection(sock, app, limits, watcher).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                Ok(Ok(stream)) => connection(stream, app, limits, watcher).await,
                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    drop(tcp);
    graceful.shutdown().await;
    Ok(())
}

/// Serves HTTP/1.1 requests on one connection until it closes (or the header deadline
/// passes), stopping gracefully when `watcher` says so.
async fn connection<S>(
    io: S,
    app: Router,
    limits: Connections,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // A client that stops reading its answer: the write waiting for it fails.
    let io = WriteDeadline { io, limit: limits.header_timeout, stalled: None };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection ended: {e}");
    }
}

/// A connection whose writes (and flushes) fail after `limit` without progress: hyper has
/// no write timeout of its own, and a client that stops reading would hold the connection
/// for ever.
struct WriteDeadline<S> {
    io: S,
    limit: Duration,
    /// Since when a write has been waiting (`None`: the last one made progress).
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    /// `r`, or a `TimedOut` error once writes have waited `limit`.
    fn deadline<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.deadline(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.deadline(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.deadline(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.deadline(cx, r)
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

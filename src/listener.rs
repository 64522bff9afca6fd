//! The HTTP listener: accepts connections (API and admin page alike, before
//! any authentication), bounds how many are open, closes stalled ones, and
//! shuts down gracefully.
//!
//! Invariants (SPEC §14):
//! - At most `max_connections` connections are open: the accept loop takes
//!   a permit before accepting, so beyond the bound new connections wait in
//!   the kernel's backlog and are served as soon as one closes.
//! - A connection must deliver a request's headers within
//!   `header_read_timeout` of its first byte (of connecting, for its first
//!   request), and one with no request in progress closes after
//!   `idle_timeout` without a byte read or written. A request whose handler
//!   is running has no deadline here (handlers bound their own work).
//! - At shutdown, accepting stops first; idle connections close, requests
//!   in progress finish, and `serve` returns once every connection closed.
//!
//! hyper has a header-read timeout of its own, but it starts as soon as a
//! keep-alive connection turns idle, so it would also close idle
//! connections after 10 s instead of 60 s: the watchdog here replaces it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::config::Settings;

/// How many connections may be open and how long they may stall.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_connections: settings.max_connections,
            header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
        }
    }
}

/// How often, at most, a full connection table is logged.
const SATURATION_LOG_EVERY: Duration = Duration::from_secs(60);
/// Pause after an accept error that is not the client's (out of file
/// descriptors): retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` is cancelled, then waits
/// for the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut last_saturation_log: Option<Instant> = None;
    loop {
        if permits.available_permits() == 0
            && last_saturation_log.is_none_or(|at| at.elapsed() >= SATURATION_LOG_EVERY)
        {
            last_saturation_log = Some(Instant::now());
            tracing::warn!(
                max_connections = limits.max_connections,
                "every connection slot is taken: new connections wait until one closes"
            );
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, shutdown).await;
            drop(permit);
        });
    }
    // New connections are refused from here on; open ones finish.
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Errors of one connection (reset before it was accepted): not the
/// listener's, so the loop goes on at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new(Instant::now()));
    let io = TokioIo::new(WatchedIo {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // The guard lives as long as the handler and then its response
            // body: until it is dropped, the connection is not idle.
            let guard = RequestGuard::start(activity.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            // A Router is always ready (axum documents `poll_ready` as
            // always `Ready`), so it is called without waiting for it.
            let response = router.clone().call(req.map(axum::body::Body::new));
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| GuardedBody { body, guard }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog below bounds header reads (see the module comment).
    builder.header_read_timeout(None).keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !draining => {
                // Idle: closes now; a request in progress finishes first.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            // Dropping the connection closes the socket.
            () = activity.stalled(limits) => return,
        }
    }
}

/// What a connection is doing, for its watchdog.
struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the watchdog when a deadline may have come closer (a request
    /// started arriving on an idle connection).
    changed: Notify,
}

struct ActivityState {
    /// Requests whose handler (or response body) is still alive.
    in_progress: usize,
    /// When the request being received sent its first byte (the connection
    /// was opened, for the first); `None` when no request is arriving.
    request_started: Option<Instant>,
    /// The last byte read or written.
    last_io: Instant,
}

impl Activity {
    fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_progress: 0,
                request_started: Some(now),
                last_io: now,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().expect("activity lock")
    }

    fn read(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_io = now;
        if s.in_progress == 0 && s.request_started.is_none() {
            s.request_started = Some(now);
            drop(s);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.lock().last_io = Instant::now();
    }

    /// When the connection is stalled, or `None` while a request runs.
    fn deadline(&self, limits: ConnectionLimits) -> Option<Instant> {
        let s = self.lock();
        if s.in_progress > 0 {
            return None;
        }
        Some(match s.request_started {
            Some(started) => started + limits.header_read_timeout,
            None => s.last_io + limits.idle_timeout,
        })
    }

    /// Resolves once the connection has stalled past its deadline.
    async fn stalled(&self, limits: ConnectionLimits) {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// One request in progress on a connection, from its handler's call to
/// the end of its response body.
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn start(activity: Arc<Activity>) -> Self {
        {
            let mut s = activity.lock();
            s.in_progress += 1;
            s.request_started = None;
        }
        Self(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_progress -= 1;
        s.last_io = Instant::now();
        drop(s);
        // The deadline changed from none to the idle one.
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in progress.
struct GuardedBody {
    body: axum::body::Body,
    #[allow(dead_code)] // held for its Drop
    guard: RequestGuard,
}

impl Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling the watchdog when bytes move.
struct WatchedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

//! Serving HTTP/1 connections that may go idle: hyper's connection state is released after
//! `release_idle_buffers_after` without a request (the stream kept), and taken up again with the
//! next request's first byte; and `drive`, which runs a hyper connection of either version
//! under the registry's close and shutdown signals.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use hyper_util::rt::TokioIo;

use super::accept::{AppBody, AppService, Shared};
use super::registry::{ConnShared, Phase};
use super::service::ConnService;
use super::timeouts::TimedIo;

type Http1Conn<I, S> =
    hyper::server::conn::http1::UpgradeableConnection<TokioIo<TimedIo<I>>, ConnService<S>>;

/// Serves an HTTP/1 connection. After `release_idle_buffers_after` without a request, hyper's
/// connection state (its read and write buffers) is released and the connection waits for the
/// next request holding only its TLS stream; the first byte of that request starts a new hyper
/// connection state over the same stream.
pub(super) async fn serve_http1<I, S, B>(
    mut c: Pin<Box<Http1Conn<I, S>>>,
    shared: &Shared,
    conn: &ConnShared,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: AppService<B>,
    B: AppBody,
{
    loop {
        let parked = drive(
            &mut c,
            conn,
            |c| c.graceful_shutdown(),
            shared.idle_check_after,
            FIRST_REQUEST_GRACE,
        )
        .await;
        if !parked {
            return;
        }
        conn.set_parking(false);
        // `None`: the connection was upgraded and belongs to the upgrade now.
        let Some(Released {
            mut io,
            unparsed,
            service,
        }) = Released::take(c)
        else {
            return;
        };
        match unparsed {
            // The start of a pipelined request: it began when those bytes arrived.
            Some(bytes) => io.resume_pipelined(bytes),
            None => {
                conn.set_released(true);
                let next = wait_for_request(&mut io, conn).await;
                conn.set_released(false);
                match next {
                    Some(byte) => io.push_front(byte),
                    None => return,
                }
            }
        }
        c = Box::pin(
            shared
                .http1
                .serve_connection(TokioIo::new(*io), service)
                .with_upgrades(),
        );
    }
}

/// What a released hyper connection leaves: the stream (boxed, so that the task does not grow by
/// a TLS stream for every connection), a copy of the bytes hyper had read but not parsed (hyper
/// hands them over in its whole read buffer), and the service.
struct Released<I, S> {
    io: Box<TimedIo<I>>,
    unparsed: Option<Bytes>,
    service: ConnService<S>,
}

impl<I, S> Released<I, S> {
    /// `None` when the connection was upgraded. Not inlined into an `async fn`: hyper's `Parts`
    /// would then size the task.
    fn take<B>(c: Pin<Box<Http1Conn<I, S>>>) -> Option<Self>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: AppService<B>,
        B: AppBody,
    {
        let parts = Pin::into_inner(c).into_parts()?;
        Some(Self {
            io: Box::new(parts.io.into_inner()),
            unparsed: (!parts.read_buf.is_empty()).then(|| Bytes::copy_from_slice(&parts.read_buf)),
            service: parts.service,
        })
    }
}

/// Waits, holding only the stream, for the first byte of the next request (returned), or for
/// the end of the connection (`None`): the client closed it, the keep-alive or inactivity
/// timeout passed (both enforced by `TimedIo`), or the server is closing it.
async fn wait_for_request<I>(io: &mut TimedIo<I>, conn: &ConnShared) -> Option<Bytes>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut first = [0u8; 1];
    let read = tokio::select! {
        biased;
        () = conn.control_changed(false) => {
            if !conn.is_killed() {
                // close() and close_idle_connections(): an idle connection ends cleanly.
                let _ = io.shutdown().await;
            }
            return None;
        }
        read = io.read(&mut first) => read,
    };
    match read {
        Ok(0) => {
            let _ = io.shutdown().await;
            None
        }
        Ok(_) => Some(Bytes::copy_from_slice(&first)),
        Err(e) => {
            tracing::debug!(id = conn.id, error = %e, "idle connection ended with an error");
            None
        }
    }
}

/// How long a connection that has sent no request yet when the server starts closing is given
/// for its first (answered with `Connection: close`). hyper's graceful shutdown would close it
/// at once, failing a client whose request was on its way: one that connected a moment before
/// a restart, or finished its handshake after it.
pub(super) const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Runs a hyper connection until it ends (`false`), shutting it down gracefully or dropping it
/// when the registry says so; a graceful shutdown of a connection that has not received a request
/// yet waits up to `first_request_grace` for one (HTTP/1; HTTP/2's GOAWAY lets the requests
/// already sent finish by itself). With a non-zero `release_after` (HTTP/1), it also ends hyper's
/// connection, leaving the stream open, once the connection has been idle that long (`true`):
/// to give back hyper's buffers, and to find the start of a pipelined request hyper holds
/// unparsed (whose headers timeout runs while the connection looks idle).
pub(super) async fn drive<F, E>(
    c: &mut Pin<Box<F>>,
    conn: &ConnShared,
    graceful: fn(Pin<&mut F>),
    release_after: Duration,
    first_request_grace: Duration,
) -> bool
where
    F: Future<Output = std::result::Result<(), E>>,
    E: fmt::Display,
{
    // Boxed, and only when used: a timer entry in the task's state would size it for released
    // connections too.
    let mut check = (!release_after.is_zero()).then(|| Box::pin(tokio::time::sleep(release_after)));
    let mut graceful_sent = false;
    // The graceful shutdown put off until the first request has had its moment.
    let mut deferred: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            biased;
            result = c.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(id = conn.id, error = %e, "connection ended with an error");
                }
                return conn.is_parking();
            }
            () = conn.control_changed(graceful_sent) => {
                if conn.is_killed() {
                    return false;
                }
                graceful_sent = true;
                let no_request_yet = conn.requests.load(std::sync::atomic::Ordering::Relaxed) == 0
                    && conn.phase() == Phase::Head;
                if no_request_yet && !first_request_grace.is_zero() {
                    // Its response will say `Connection: close` (the service sees the graceful
                    // flag); hyper is told when the moment is over.
                    deferred = Some(Box::pin(tokio::time::sleep(first_request_grace)));
                } else {
                    graceful(c.as_mut());
                }
            }
            () = fired(&mut deferred), if deferred.is_some() => {
                deferred = None;
                graceful(c.as_mut());
            }
            () = fired(&mut check), if check.is_some() && !graceful_sent && !conn.is_parking() => {
                let now = Instant::now();
                let idle = conn.phase() == Phase::Idle;
                let since = conn.idle_since();
                let releasable = conn.is_flushed() && !conn.has_stale_upgrade();
                if idle && releasable && now.duration_since(since) >= release_after {
                    // hyper is between requests with nothing to write: it ends its state at
                    // once, and the stream's shutdown is skipped while `parking` is set.
                    tracing::trace!(id = conn.id, "idle: releasing the HTTP/1 connection state");
                    conn.set_parking(true);
                    graceful(c.as_mut());
                } else if let Some(check) = check.as_mut() {
                    let next = if idle { since + release_after } else { now + release_after };
                    check.as_mut().reset(next.max(now + Duration::from_millis(10)));
                }
            }
        }
    }
}

/// Resolves when the timer fires; never without a timer.
async fn fired(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

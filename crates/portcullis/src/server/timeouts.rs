//! Node's HTTP timeouts, enforced in an IO wrapper so hyper stays in charge of HTTP.
//!
//! The wrapper notes when each request's first byte arrives and checks, whenever hyper reads or
//! writes, the deadline that applies to the connection's [`Phase`]:
//!
//! | phase | deadline | on expiry |
//! |---|---|---|
//! | `Head` | start + min(headers_timeout, request_timeout) | `408` + close (HTTP/1) |
//! | `Body`, response not started | start + request_timeout | `408` + close |
//! | `Body`, response started | start + request_timeout | drop, no bytes (Node) |
//! | `Idle` | idle since + keep_alive_timeout + buffer | close |
//! | any | last I/O + timeout | drop, no bytes (Node's `server.timeout`) |
//!
//! hyper is built with `half_close(true)`, so it reads only when it wants a head or body bytes,
//! not while a handler works on a complete request: a fired deadline is seen only while the
//! request is still incomplete, which is Node's rule.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::registry::{ConnShared, Phase};
use super::stats::TimeoutKind;

const REQUEST_TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n";

/// The timeouts that apply to an established connection. Zero means off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) headers: Duration,
    pub(crate) request: Duration,
    pub(crate) keep_alive: Duration,
    pub(crate) keep_alive_buffer: Duration,
    pub(crate) inactivity: Duration,
}

impl Timeouts {
    /// How long an idle HTTP/1 connection waits before its hyper state is released: `release`
    /// (zero: never), or the head timeout when that is shorter and the keep-alive timeout would
    /// not end the connection first. A pipelined request hyper holds unparsed is found only
    /// then, and its headers timeout has been running since its bytes arrived.
    pub(crate) fn idle_check_after(&self, release: Duration) -> Duration {
        let keep_alive = self.keep_alive + self.keep_alive_buffer;
        let head = self
            .head()
            .filter(|head| self.keep_alive.is_zero() || *head < keep_alive);
        match (release.is_zero(), head) {
            (true, None) => Duration::ZERO,
            (true, Some(head)) => head,
            (false, None) => release,
            (false, Some(head)) => head.min(release),
        }
    }

    /// The bound on receiving a head, following Node: both zero disables; a headers timeout
    /// above the request timeout is capped by it.
    fn head(&self) -> Option<Duration> {
        match (self.headers.is_zero(), self.request.is_zero()) {
            (true, true) => None,
            (false, true) => Some(self.headers),
            (true, false) => Some(self.request),
            (false, false) => Some(self.headers.min(self.request)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Headers or request timeout: 408 if no response has started.
    Request,
    /// Keep-alive idle timeout: end the connection cleanly.
    Idle,
    /// Socket inactivity: drop without a byte.
    Inactive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Writing408(usize),
    Flushing,
    ShuttingDown,
    Done,
}

/// The connection's stream with Node's timeouts applied.
#[derive(Debug)]
pub(crate) struct TimedIo<T> {
    inner: T,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    conn: Arc<ConnShared>,
    timeouts: Timeouts,
    http2: bool,
    request_start: Instant,
    last_io: Instant,
    ending: Option<Ending>,
    /// Bytes already read from the stream, handed out before it is read again: what a released
    /// HTTP/1 connection state had buffered, or the first byte that woke an idle connection.
    prefix: Bytes,
    /// When a read last brought bytes: where a pipelined request found in hyper's buffer began.
    last_data: Instant,
    /// The stream was shut down (close_notify sent), or failed: nothing more to say on drop.
    finished: bool,
    /// Ends the TLS session politely (close_notify, written without waiting) when the stream
    /// is dropped unfinished; a no-op for plain TCP.
    close_notify: fn(&mut T),
}

impl<T> TimedIo<T> {
    pub(crate) fn new(
        inner: T,
        conn: Arc<ConnShared>,
        timeouts: Timeouts,
        http2: bool,
        close_notify: fn(&mut T),
    ) -> Self {
        let now = Instant::now();
        Self {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(now)),
            armed: None,
            conn,
            timeouts,
            http2,
            request_start: now,
            last_io: now,
            ending: None,
            prefix: Bytes::new(),
            last_data: now,
            finished: false,
            close_notify,
        }
    }

    /// Puts bytes in front of the stream's next reads.
    pub(crate) fn push_front(&mut self, bytes: Bytes) {
        debug_assert!(self.prefix.is_empty());
        self.prefix = bytes;
    }

    /// Puts back the start of a pipelined request that hyper had read but not parsed when its
    /// connection state was released: the request began when those bytes arrived, so its
    /// headers timeout counts from then (Node's `on_message_begin` fired as they were parsed).
    pub(crate) fn resume_pipelined(&mut self, bytes: Bytes) {
        self.push_front(bytes);
        self.request_start = self.last_data;
        self.conn.set_phase(Phase::Head);
    }
}

impl<T> Drop for TimedIo<T> {
    fn drop(&mut self) {
        // hyper drops the stream without shutting it down when a connection ends in an error or
        // through a pending upgrade nobody took; close_notify still tells the peer the data is
        // complete. Not for a connection dropped on purpose.
        if !self.finished && !self.conn.is_killed() {
            (self.close_notify)(&mut self.inner);
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> TimedIo<T> {
    /// The deadline that applies now, and what happens when it passes.
    fn deadline(
        conn: &ConnShared,
        timeouts: &Timeouts,
        http2: bool,
        request_start: Instant,
        last_io: Instant,
    ) -> Option<(Instant, Expiry)> {
        let phase_deadline: Option<(Instant, Expiry)> = match conn.phase() {
            Phase::Head => timeouts
                .head()
                .map(|d| (request_start + d, Expiry::Request)),
            Phase::Body if !http2 && !timeouts.request.is_zero() => {
                Some((request_start + timeouts.request, Expiry::Request))
            }
            Phase::Idle if !timeouts.keep_alive.is_zero() => Some((
                conn.idle_since() + timeouts.keep_alive + timeouts.keep_alive_buffer,
                Expiry::Idle,
            )),
            _ => None,
        };
        // Node lets the keep-alive timer govern an idle socket: the inactivity timeout returns
        // with the next request.
        let keep_alive_governs = phase_deadline.is_some_and(|(_, e)| e == Expiry::Idle);
        let inactive = (!timeouts.inactivity.is_zero() && !keep_alive_governs)
            .then(|| (last_io + timeouts.inactivity, Expiry::Inactive));
        match (phase_deadline, inactive) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Checks the deadline; `Ready` carries the expiry that has passed. The timer stays armed
    /// at the earliest deadline seen; while it is armed no later than the current deadline and
    /// has not fired, nothing can have expired, so the clock is read only when the timer is
    /// (re)armed or has fired.
    fn poll_expiry(&mut self, cx: &mut Context<'_>) -> Poll<Expiry> {
        let Some((at, expiry)) = Self::deadline(
            &self.conn,
            &self.timeouts,
            self.http2,
            self.request_start,
            self.last_io,
        ) else {
            return Poll::Pending;
        };
        if self.armed.is_some_and(|armed| armed <= at) {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // It fired for an earlier deadline, or for this one.
            self.armed = None;
        }
        if Instant::now() >= at {
            return Poll::Ready(expiry);
        }
        self.sleep.as_mut().reset(at);
        self.armed = Some(at);
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(expiry),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes the 408, flushes and shuts the stream down; then reports end of stream.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self;
        let mut inner = Pin::new(&mut this.inner);
        loop {
            match this.ending.unwrap_or(Ending::Done) {
                Ending::Writing408(pos) if pos < REQUEST_TIMEOUT_RESPONSE.len() => {
                    let n = ready!(inner
                        .as_mut()
                        .poll_write(cx, &REQUEST_TIMEOUT_RESPONSE[pos..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    this.ending = Some(Ending::Writing408(pos + n));
                }
                Ending::Writing408(_) => this.ending = Some(Ending::Flushing),
                Ending::Flushing => {
                    ready!(inner.as_mut().poll_flush(cx))?;
                    this.ending = Some(Ending::ShuttingDown);
                }
                Ending::ShuttingDown => {
                    // A peer that is gone cannot take close_notify; that is not our error.
                    let _ = ready!(inner.as_mut().poll_shutdown(cx));
                    this.finished = true;
                    this.ending = Some(Ending::Done);
                }
                Ending::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ending.is_some() {
            return this.poll_end(cx);
        }
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            if this.prefix.is_empty() {
                this.prefix = Bytes::new();
            }
            this.bytes_arrived();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_data = Instant::now();
                    this.last_io = this.last_data;
                    this.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                // A TLS error already sent its alert; nothing polite is left to say, and the
                // peer may still be sending.
                this.finished = true;
                this.conn.set_linger();
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                let expiry = ready!(this.poll_expiry(cx));
                this.count(expiry);
                match expiry {
                    Expiry::Request if !this.http2 && !this.conn.response_started() => {
                        tracing::debug!(id = this.conn.id, "request timeout; answering 408");
                        this.conn.set_linger();
                        this.ending = Some(Ending::Writing408(0));
                        this.poll_end(cx)
                    }
                    Expiry::Idle => {
                        tracing::trace!(id = this.conn.id, "keep-alive timeout");
                        Poll::Ready(Ok(()))
                    }
                    Expiry::Request | Expiry::Inactive => {
                        tracing::debug!(id = this.conn.id, "connection timed out");
                        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
                    }
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> TimedIo<T> {
    /// One write through `write`, noting activity and checking deadlines while it waits.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.ending.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        match write(Pin::new(&mut self.inner), cx) {
            Poll::Ready(Ok(n)) => {
                self.note_activity();
                if n > 0 {
                    self.conn.set_flushed(false);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let expiry = ready!(self.poll_expiry(cx));
                self.count(expiry);
                Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
            }
            Poll::Ready(Err(e)) => {
                self.finished = true;
                Poll::Ready(Err(e))
            }
        }
    }

    /// Counts the timeout (with [`stats`](super::ServerBuilder::stats) on) by the option that
    /// set it.
    fn count(&self, expiry: Expiry) {
        if let Some(counters) = self.conn.counters() {
            counters.timeout(match expiry {
                Expiry::Request if self.conn.phase() == Phase::Head => TimeoutKind::Headers,
                Expiry::Request => TimeoutKind::Request,
                Expiry::Idle => TimeoutKind::KeepAlive,
                Expiry::Inactive => TimeoutKind::Idle,
            });
        }
    }

    /// Request bytes reached hyper: on an idle connection they begin the next request.
    fn bytes_arrived(&mut self) {
        if !self.http2 && self.conn.phase() == Phase::Idle {
            // The first byte of the next request: Node's on_message_begin.
            self.request_start = Instant::now();
            self.conn.set_phase(Phase::Head);
        }
    }

    /// Only the inactivity timeout needs the time of each read and write.
    fn note_activity(&mut self) {
        if !self.timeouts.inactivity.is_zero() {
            self.last_io = Instant::now();
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ending.is_some() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.conn.set_flushed(true);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ending.is_some() || this.conn.is_parking() {
            // Parking: hyper ends its connection state, the stream stays open.
            return Poll::Ready(Ok(()));
        }
        let result = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
        this.finished = true;
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod paused_tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::server::registry::{Phase, Registry};

    /// The server's timers run on tokio's clock, so timeout tests can run under paused time:
    /// a 60 s headers timeout is checked here in milliseconds of real time.
    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_completes_gets_408_at_the_headers_timeout_in_virtual_time() {
        let registry = Arc::new(Registry::new(0, false));
        let guard = registry.admit().unwrap();
        guard.conn.set_phase(Phase::Head);
        let (mut client, server) = tokio::io::duplex(4096);
        let timeouts = Timeouts {
            headers: Duration::from_secs(60),
            request: Duration::from_secs(300),
            keep_alive: Duration::from_secs(5),
            keep_alive_buffer: Duration::from_secs(1),
            inactivity: Duration::ZERO,
        };
        let mut io = TimedIo::new(server, guard.conn.clone(), timeouts, false, |_| {});
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let real = std::time::Instant::now();
        let mut buf = [0u8; 64];
        // The partial head is read; then nothing more arrives.
        let n = io.read(&mut buf).await.unwrap();
        assert!(n > 0);
        let _ = io.read(&mut buf).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
            "{waited:?}"
        );
        assert!(
            real.elapsed() < Duration::from_secs(5),
            "{:?}",
            real.elapsed()
        );
        drop(io);
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
}

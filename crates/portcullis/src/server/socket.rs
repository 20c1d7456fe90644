//! A connection's TCP socket, closed so that the peer reads everything we sent.
//!
//! Closing a socket whose receive queue still holds data, or which receives data after the
//! close, makes the kernel answer with a reset, and a reset makes the peer's kernel drop what
//! it had received but not yet read: the TLS alert that said why a handshake was refused, the
//! last response before `Connection: close`. curl then reports "Connection reset by peer"
//! instead of the alert. So, as nginx's `lingering_close` does, a socket closed while the peer
//! may still be sending — during or after a refused handshake, after a TLS error or a 408
//! (`ConnShared::wants_linger`), or with bytes still unread — is shut down for writing (the
//! peer sees the end of our data), then read and discarded until the peer closes too, for at
//! most [`LINGER_TIME`] and [`LINGER_BYTES`], in a task of its own. Any other socket (an
//! exchange that ended cleanly, one the peer closed, one dropped on purpose by `close_all`, the
//! LRU purge or the shutdown deadline) closes at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::registry::{ConnShared, Phase};

/// How long a closed socket waits for the peer's end.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much a closing socket reads and discards before giving up on the peer's end.
pub(crate) const LINGER_BYTES: usize = 256 * 1024;

/// The TCP stream of one connection, lingering on drop (see the module docs).
#[derive(Debug)]
pub(crate) struct Socket {
    stream: Option<TcpStream>,
    conn: Arc<ConnShared>,
    /// The peer ended its side (a read returned end of stream).
    peer_closed: bool,
}

impl Socket {
    pub(crate) fn new(stream: TcpStream, conn: Arc<ConnShared>) -> Self {
        Self {
            stream: Some(stream),
            conn,
            peer_closed: false,
        }
    }

    /// The stream; present until drop.
    pub(crate) fn stream(&self) -> &TcpStream {
        // Invariant: `stream` is taken only in `drop`.
        self.stream.as_ref().expect("socket used after drop")
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("socket used after drop")
    }

    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        if let (Poll::Ready(Ok(n)), Some(counters)) = (result, self.conn.counters()) {
            counters.written(*n);
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.peer_closed || self.conn.is_killed() {
            return;
        }
        let linger = self.conn.wants_linger()
            || self.conn.phase() == Phase::Handshaking
            || has_unread_bytes(&stream);
        if linger {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(linger_close(stream));
            }
        }
    }
}

/// Whether the peer sent bytes nobody read (known without a syscall when tokio has not seen
/// the socket readable since its last read).
fn has_unread_bytes(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Ok(1))
}

/// Ends our side, then waits (bounded) for the peer's, discarding what it still sends.
async fn linger_close(mut stream: TcpStream) {
    // Already shut down after a close_notify: the error is expected and harmless.
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 2048];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let result = Pin::new(this.stream_mut()).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let n = buf.filled().len() - before;
            if wanted && n == 0 {
                this.peer_closed = true;
            }
            if let Some(counters) = this.conn.counters() {
                counters.read(n);
            }
        }
        result
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(this.stream_mut()).poll_write(cx, buf);
        this.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(this.stream_mut()).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream().is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream_mut()).poll_shutdown(cx)
    }
}

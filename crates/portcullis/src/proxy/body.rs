//! The bodies a proxy moves: the request's, read into memory up to a bound before the backend
//! is chosen (the rest streamed), and the backend's response, streamed frame by frame while it
//! holds one of the backend's connection permits.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::BoxError;

type DynBody = Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>;

/// A request body on its way to a backend.
pub(crate) struct OutBody {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// What was not read ahead: the body past the buffering bound.
    rest: Option<DynBody>,
    /// Told (or dropped) once the last frame has gone.
    sent: Option<oneshot::Sender<()>>,
}

impl OutBody {
    pub(crate) fn empty() -> Self {
        Self {
            chunks: VecDeque::new(),
            trailers: None,
            rest: None,
            sent: None,
        }
    }

    /// For a body still streaming from the client: a receiver that resolves once all of it
    /// has gone to the backend (or the body was dropped). `None` when it is all in memory.
    pub(crate) fn when_sent(&mut self) -> Option<oneshot::Receiver<()>> {
        self.rest.as_ref()?;
        let (tx, rx) = oneshot::channel();
        self.sent = Some(tx);
        Some(rx)
    }

    /// Reads `body` until it ends or more than `limit` bytes have come; what is left streams
    /// after them. A client that sends slowly is waited for here, before any backend
    /// connection is taken.
    pub(crate) async fn read_ahead<B>(body: B, limit: usize) -> Result<Self, BoxError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut body: DynBody = Box::pin(body.map_err(Into::into));
        let mut out = Self::empty();
        let mut read = 0;
        while !body.is_end_stream() {
            if read > limit {
                out.rest = Some(body);
                return Ok(out);
            }
            let Some(frame) = body.frame().await else {
                break;
            };
            match frame?.into_data() {
                Ok(data) => {
                    read += data.len();
                    if !data.is_empty() {
                        out.chunks.push_back(data);
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        out.trailers = Some(trailers);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A copy to send again, when all of it is in memory.
    pub(crate) fn replay(&self) -> Option<Self> {
        self.rest.is_none().then(|| Self {
            chunks: self.chunks.clone(),
            trailers: self.trailers.clone(),
            rest: None,
            sent: None,
        })
    }
}

impl OutBody {
    fn next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(rest) = &mut self.rest {
            match rest.as_mut().poll_frame(cx) {
                Poll::Ready(None) => self.rest = None,
                other => return other,
            }
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

impl fmt::Debug for OutBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutBody")
            .field(
                "buffered",
                &self.chunks.iter().map(Bytes::len).sum::<usize>(),
            )
            .field("streaming", &self.rest.is_some())
            .finish()
    }
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = self.next_frame(cx);
        if polled.is_ready() && self.is_end_stream() {
            // hyper asks no more once the body says it has ended.
            self.sent.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.chunks.iter().map(|c| c.len() as u64).sum();
        match &self.rest {
            None => SizeHint::with_exact(buffered),
            Some(rest) => {
                let hint = rest.size_hint();
                let mut sum = SizeHint::new();
                sum.set_lower(hint.lower() + buffered);
                if let Some(upper) = hint.upper() {
                    sum.set_upper(upper + buffered);
                }
                sum
            }
        }
    }
}

/// The body of a response from [`ReverseProxy`](super::ReverseProxy): the backend's, streamed
/// as it arrives, or a short text of the proxy's own (`502`, `503`, `504`).
pub struct ProxyBody(Inner);

enum Inner {
    Backend {
        body: hyper::body::Incoming,
        /// The backend connection's place under its cap, given back when the body ends.
        _permit: Option<OwnedSemaphorePermit>,
    },
    Text(Option<Bytes>),
}

impl ProxyBody {
    pub(crate) fn backend(body: hyper::body::Incoming, permit: OwnedSemaphorePermit) -> Self {
        Self(Inner::Backend {
            body,
            _permit: Some(permit),
        })
    }

    pub(crate) fn text(text: &'static str) -> Self {
        Self(Inner::Text(
            (!text.is_empty()).then(|| Bytes::from_static(text.as_bytes())),
        ))
    }

    pub(crate) fn empty() -> Self {
        Self(Inner::Text(None))
    }
}

impl fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Backend { .. } => f.write_str("ProxyBody::Backend"),
            Inner::Text(text) => f.debug_tuple("ProxyBody::Text").field(text).finish(),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Inner::Backend { body, _permit } => {
                let polled = Pin::new(body).poll_frame(cx);
                match polled {
                    Poll::Ready(None) => {
                        // Ended: the connection goes back to the pool, the place to the cap.
                        *_permit = None;
                        Poll::Ready(None)
                    }
                    other => other.map(|f| f.map(|r| r.map_err(Into::into))),
                }
            }
            Inner::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Backend { body, .. } => body.is_end_stream(),
            Inner::Text(text) => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Backend { body, .. } => body.size_hint(),
            Inner::Text(text) => SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64)),
        }
    }
}

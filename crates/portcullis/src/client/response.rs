//! The response: status, headers, a streaming body that gives its socket back to the pool
//! when read to the end, and the connection's TLS details.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::Lease;
use crate::error::{Error, Kind, Result};
use crate::tls::TlsInfo;

/// The most [`Response::bytes`] (and `text`, `json`) reads unless told otherwise: 64 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The former name of the TLS session type: client and server now share [`TlsInfo`].
#[deprecated(note = "use portcullis::tls::TlsInfo, the type the server uses too")]
pub type ClientTlsInfo = TlsInfo;

/// A response. The body streams; [`bytes`](Self::bytes), [`text`](Self::text) and
/// [`json`](Self::json) read it whole, up to a limit.
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: ResponseBody,
    pub(crate) tls: Option<Arc<TlsInfo>>,
    pub(crate) reused_socket: bool,
    pub(crate) remote_addr: std::net::SocketAddr,
    pub(crate) limit: usize,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The TLS session; `None` for plain `http://`.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }

    /// Node's `req.reusedSocket`: true when a pooled keep-alive socket carried this request.
    pub fn reused_socket(&self) -> bool {
        self.reused_socket
    }

    /// The server's address.
    pub fn remote_addr(&self) -> std::net::SocketAddr {
        self.remote_addr
    }

    /// Sets the most bytes `bytes`/`text`/`json` accept. Default: [`DEFAULT_BODY_LIMIT`].
    pub fn limit(mut self, max: usize) -> Self {
        self.limit = max;
        self
    }

    /// The body, to stream it (an [`http_body::Body`]).
    pub fn into_body(self) -> ResponseBody {
        self.body
    }

    /// Reads the body whole.
    ///
    /// # Errors
    /// A body over the limit, or a connection error while reading.
    pub async fn bytes(self) -> Result<Bytes> {
        let limit = self.limit;
        let mut body = self.body;
        let mut buf = BytesMut::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                Error::new(Kind::Http, "error reading the response body").with_source(e)
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(Error::new(
                        Kind::Body,
                        format!("response body larger than the limit of {limit} bytes"),
                    ));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    }

    /// Reads the body whole as UTF-8 (invalid sequences replaced).
    ///
    /// # Errors
    /// As [`bytes`](Self::bytes).
    pub async fn text(self) -> Result<String> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Reads the body whole and parses it as JSON.
    ///
    /// # Errors
    /// As [`bytes`](Self::bytes), or a body that is not the JSON of `T`.
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(Kind::Body, "the response body is not the expected JSON").with_source(e)
        })
    }
}

/// A streaming response body. Reading it to the end gives its socket back to the agent's pool;
/// dropping it early closes the socket.
pub struct ResponseBody {
    pub(crate) inner: Incoming,
    pub(crate) lease: Option<Lease>,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(lease) = self.lease.take() {
                    lease.release(true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(lease) = self.lease.take() {
                    lease.release(false);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

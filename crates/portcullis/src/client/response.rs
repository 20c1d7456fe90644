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
use crate::tls::PeerCertificate;

/// The most [`Response::bytes`] (and `text`, `json`) reads unless told otherwise: 64 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The TLS session a response came over: `tls_info()` on a response.
#[derive(Debug, Clone)]
pub struct ClientTlsInfo {
    pub(crate) version: &'static str,
    pub(crate) cipher_suite: &'static str,
    pub(crate) alpn: Option<String>,
    pub(crate) resumed: bool,
    /// The chain as sent; parsed into `peer_certificates` when first asked for.
    pub(crate) peer_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub(crate) peer_certificates: std::sync::OnceLock<Vec<PeerCertificate>>,
    pub(crate) authorization_error: Option<String>,
}

impl ClientTlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The IANA name of the cipher suite.
    pub fn cipher_suite(&self) -> &'static str {
        self.cipher_suite
    }

    /// The ALPN protocol agreed, if any.
    pub fn alpn(&self) -> Option<&str> {
        self.alpn.as_deref()
    }

    /// Node's `socket.authorized`: true unless verification was off
    /// ([`danger::reject_unauthorized`](crate::tls::danger::reject_unauthorized)) and the
    /// server would have been refused.
    pub fn is_authorized(&self) -> bool {
        self.authorization_error.is_none()
    }

    /// Node's `socket.authorizationError`: why the server would have been refused, as Node's
    /// code (`"DEPTH_ZERO_SELF_SIGNED_CERT"`, `"ERR_TLS_CERT_ALTNAME_INVALID"`, …), when
    /// verification was off. `None` when authorized.
    pub fn authorization_error(&self) -> Option<&str> {
        self.authorization_error.as_deref()
    }

    /// Node's `isSessionReused()`.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// The server's whole chain as sent, leaf first (Node's `getPeerCertificate(true)` walk).
    pub fn peer_certificates(&self) -> &[PeerCertificate] {
        self.peer_certificates.get_or_init(|| {
            self.peer_chain
                .iter()
                .filter_map(|c| PeerCertificate::from_der(c).ok())
                .collect()
        })
    }
}

/// A response. The body streams; [`bytes`](Self::bytes), [`text`](Self::text) and
/// [`json`](Self::json) read it whole, up to a limit.
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: ResponseBody,
    pub(crate) tls: Option<Arc<ClientTlsInfo>>,
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
    pub fn tls_info(&self) -> Option<&ClientTlsInfo> {
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

//! Building and sending a request: Node's `https.request(options)`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};

use super::{Agent, Response};
use crate::error::{Error, Kind, Result};
use crate::tls::ClientTlsOptions;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `application/x-www-form-urlencoded` (the WHATWG URL standard's serializer): unreserved bytes
/// as they are, space as `+`, everything else `%XX`.
fn form_encode(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// A request body: bytes, or a stream of chunks.
pub struct RequestBody {
    inner: BoxBody<Bytes, BoxError>,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("size_hint", &self.inner.size_hint())
            .finish()
    }
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        Self::from(Bytes::new())
    }

    /// A body streamed from `stream` (for uploads larger than memory).
    pub fn stream<S, E>(stream: S) -> Self
    where
        S: futures_core::Stream<Item = std::result::Result<Bytes, E>>
            + Send
            + Sync
            + Unpin
            + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            inner: BoxBody::new(StreamBody::new(Frames(stream))),
        }
    }
}

/// Maps a stream of byte chunks to body frames.
struct Frames<S>(S);

impl<S, E> futures_core::Stream for Frames<S>
where
    S: futures_core::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = std::result::Result<Frame<Bytes>, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(Frame::data).map_err(Into::into)))
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> Self {
        Self {
            inner: Full::new(bytes).map_err(|e| match e {}).boxed(),
        }
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Cancels requests: Node's `AbortController`.
#[derive(Debug, Clone, Default)]
pub struct AbortController {
    signal: AbortSignal,
}

impl AbortController {
    /// A new controller.
    pub fn new() -> Self {
        Self::default()
    }

    /// The signal to give requests.
    pub fn signal(&self) -> AbortSignal {
        self.signal.clone()
    }

    /// Aborts every request holding this controller's signal: they fail with `ABORT_ERR`.
    pub fn abort(&self) {
        self.signal.0.cancel();
    }
}

/// Node's `AbortSignal`: given to a request with [`RequestBuilder::signal`].
#[derive(Debug, Clone, Default)]
pub struct AbortSignal(tokio_util::sync::CancellationToken);

impl AbortSignal {
    /// True once aborted.
    pub fn is_aborted(&self) -> bool {
        self.0.is_cancelled()
    }

    pub(crate) async fn aborted(&self) {
        self.0.cancelled().await;
    }
}

/// A request being built. From [`crate::client::request`], [`Agent::request`] or
/// [`crate::client::get`]; sent with [`send`](Self::send).
#[derive(Debug)]
pub struct RequestBuilder {
    pub(crate) agent: Option<Agent>,
    pub(crate) method: Method,
    pub(crate) url: std::result::Result<Uri, String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<RequestBody>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) signal: Option<AbortSignal>,
    pub(crate) tls: Option<ClientTlsOptions>,
    pub(crate) error: Option<Error>,
}

impl RequestBuilder {
    pub(crate) fn new(agent: Option<Agent>, method: Method, url: &str) -> Self {
        Self {
            agent,
            method,
            url: url
                .parse::<Uri>()
                .map_err(|e| format!("invalid URL {url:?}: {e}")),
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            signal: None,
            tls: None,
            error: None,
        }
    }

    /// Adds a header (repeatable for multi-valued headers).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => {
                self.error
                    .get_or_insert_with(|| Error::config("invalid header name or value"));
            }
        }
        self
    }

    /// The request body.
    pub fn body(mut self, body: impl Into<RequestBody>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A JSON body: `value` serialized, with `Content-Type: application/json` (unless a
    /// content type was set).
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                if !self.headers.contains_key(http::header::CONTENT_TYPE) {
                    self.headers.insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                self.body = Some(RequestBody::from(Bytes::from(body)));
            }
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    Error::config(format!("cannot encode the JSON body: {e}"))
                });
            }
        }
        self
    }

    /// A form body (`application/x-www-form-urlencoded`): the pairs, percent-encoded as HTML
    /// forms encode them (space as `+`).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        let mut body = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                body.push('&');
            }
            form_encode(k.as_ref(), &mut body);
            body.push('=');
            form_encode(v.as_ref(), &mut body);
        }
        if !self.headers.contains_key(http::header::CONTENT_TYPE) {
            self.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        self.body = Some(RequestBody::from(Bytes::from(body)));
        self
    }

    /// Fails the request with `ETIMEDOUT` if the response head has not arrived within
    /// `timeout` (connecting and the handshake included): a deadline, as reqwest's `timeout`.
    /// Node's request `timeout` option is something else (socket inactivity, which only emits
    /// an event); the agent's idle sockets have
    /// [`free_socket_timeout`](super::AgentBuilder::free_socket_timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Cancels the request when the signal's controller aborts (`ABORT_ERR`).
    pub fn signal(mut self, signal: AbortSignal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// TLS options for this request, replacing the agent's (and so using other sockets).
    pub fn tls(mut self, tls: ClientTlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Node's `agent: false`: a fresh connection that is closed after the response.
    pub fn no_agent(mut self) -> Self {
        self.agent = Some(
            Agent::builder()
                .keep_alive(false)
                .max_cached_sessions(0)
                .assemble(),
        );
        self
    }

    /// Sends the request; resolves with the response head (the body streams after).
    ///
    /// # Errors
    /// Bad URL or options, connection and TLS failures (with Node's codes), timeouts, abort.
    pub async fn send(self) -> Result<Response> {
        let agent = self
            .agent
            .clone()
            .unwrap_or_else(|| super::global_agent().clone());
        let signal = self.signal.clone();
        let timeout = self.timeout;
        let fut = agent.execute(self);
        let timed = async {
            match timeout {
                Some(t) => tokio::time::timeout(t, fut).await.unwrap_or_else(|_| {
                    Err(Error::new(Kind::Timeout, "request timed out").with_code("ETIMEDOUT"))
                }),
                None => fut.await,
            }
        };
        match signal {
            Some(signal) => {
                if signal.is_aborted() {
                    return Err(Error::new(Kind::Aborted, "The operation was aborted"));
                }
                tokio::select! {
                    res = timed => res,
                    () = signal.aborted() => Err(Error::new(Kind::Aborted, "The operation was aborted")),
                }
            }
            None => timed.await,
        }
    }
}

//! A reverse proxy to plain-HTTP backends, as a tower [`Service`](tower_service::Service) to
//! mount under a route (cargo feature `proxy`).
//!
//! ```no_run
//! use portcullis::proxy::ReverseProxy;
//!
//! # fn demo() -> portcullis::Result<()> {
//! let api = ReverseProxy::builder()
//!     .backend("http://127.0.0.1:3000")?
//!     .backend("http://127.0.0.1:3001")?
//!     .build()?;
//! # let _ = api; Ok(())
//! # }
//! ```
//!
//! What it does, and what a user of nginx or Caddy would expect of it:
//!
//! - The client's `Host` reaches the backend ([`HostHeader`]), with `X-Forwarded-For`,
//!   `-Proto`, `-Host` and RFC 7239 `Forwarded`; hop-by-hop headers are dropped both ways.
//! - `Upgrade` (WebSocket and any other protocol) passes through over HTTP/1.1, and an HTTP/2
//!   client's extended CONNECT (RFC 8441, `:protocol websocket`) becomes an HTTP/1.1 upgrade to
//!   the backend (the server needs [`ServerBuilder::enable_connect_protocol`]).
//! - A request body is read ahead up to a bound ([`ReverseProxyBuilder::buffer_request`],
//!   64 KiB) before a backend connection is taken, so slow clients wait on the proxy, not on
//!   the backend; a longer body streams after what was read, with backpressure both ways.
//! - Each backend has a connection cap ([`ReverseProxyBuilder::max_connections`]); requests
//!   over it wait for a place until the timeout, then get `503`.
//! - Several backends take turns (round robin); one that refuses a connection or times out is
//!   skipped for [`ReverseProxyBuilder::fail_timeout`], and a request whose body is all in
//!   memory is sent to the next one.
//! - No connection: `502`; no response head within [`ReverseProxyBuilder::timeout`] (60 s):
//!   `504`. The backend's statuses, bodies and `Connection: close` pass as they are; response
//!   bodies stream frame by frame (server-sent events are not held back).
//!
//! [`ServerBuilder::enable_connect_protocol`]: crate::ServerBuilder::enable_connect_protocol

mod body;
mod headers;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use body::OutBody;
pub use body::ProxyBody;

use crate::ConnectionInfo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which `Host` the backend sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HostHeader {
    /// The client's (`Host`, or an HTTP/2 request's `:authority`). The default, as Caddy.
    #[default]
    Client,
    /// The backend's own address, as nginx's default `proxy_set_header Host $proxy_host`.
    Backend,
}

/// Forwards requests to one or more plain-HTTP backends. Cheap to clone.
#[derive(Clone)]
pub struct ReverseProxy {
    inner: Arc<Inner>,
}

struct Inner {
    backends: Vec<Backend>,
    next: AtomicUsize,
    client: Client<HttpConnector, OutBody>,
    host: HostHeader,
    timeout: Duration,
    buffer_request: usize,
    strip_prefix: Option<String>,
    fail_timeout: Duration,
    epoch: Instant,
}

struct Backend {
    authority: Authority,
    /// The URL's path without its trailing slash: prepended to each request's path.
    base_path: String,
    /// Whether the URL had a path (even `/`): it then replaces the stripped prefix, as
    /// nginx's `proxy_pass` with a URI.
    has_path: bool,
    permits: Arc<Semaphore>,
    /// Milliseconds since `epoch` until which the backend is skipped.
    down_until: AtomicU64,
}

impl fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReverseProxy")
            .field(
                "backends",
                &self
                    .inner
                    .backends
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("host", &self.inner.host)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.base_path)
    }
}

/// Builds a [`ReverseProxy`]; see each setter for its default.
#[derive(Debug, Clone)]
pub struct ReverseProxyBuilder {
    backends: Vec<(Authority, String, bool)>,
    host: HostHeader,
    timeout: Duration,
    buffer_request: usize,
    max_connections: usize,
    strip_prefix: Option<String>,
    fail_timeout: Duration,
}

impl ReverseProxy {
    /// Starts a builder; add at least one backend.
    pub fn builder() -> ReverseProxyBuilder {
        ReverseProxyBuilder {
            backends: Vec::new(),
            host: HostHeader::Client,
            timeout: Duration::from_secs(60),
            buffer_request: 64 * 1024,
            max_connections: 1024,
            strip_prefix: None,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

impl ReverseProxyBuilder {
    /// Adds a backend: `http://host[:port][/path]`. Requests go to the path with the request's
    /// path and query after it. Several backends take turns.
    ///
    /// # Errors
    /// Not an `http://` URL, or one with credentials, a query or a fragment.
    pub fn backend(mut self, url: &str) -> crate::Result<Self> {
        let bad = |why: &str| {
            crate::Error::config(format!(
                "backend {url:?}: {why}; expected e.g. http://127.0.0.1:3000"
            ))
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => {}
            Some(s) if *s == Scheme::HTTPS => {
                return Err(bad("https backends are not supported, only http://"))
            }
            _ => return Err(bad("not an http:// URL")),
        }
        let authority = uri.authority().cloned().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(bad("a backend URL has no query or fragment"));
        }
        // `Uri` turns "http://h" into path "/": look at the text for a path of its own.
        let after_scheme = &url[url.find("://").map_or(0, |i| i + 3)..];
        let has_path = after_scheme.contains('/');
        let base_path = uri.path().trim_end_matches('/').to_owned();
        self.backends.push((authority, base_path, has_path));
        Ok(self)
    }

    /// Which `Host` the backend sees. Default: [`HostHeader::Client`].
    pub fn host_header(mut self, host: HostHeader) -> Self {
        self.host = host;
        self
    }

    /// How long a backend has to accept the connection and send its response head (nginx's
    /// `proxy_connect_timeout` and `proxy_read_timeout` for the head); past it the client gets
    /// `504`. Waiting for a place under [`max_connections`](Self::max_connections) counts
    /// too. Default: 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads up to this many bytes of a request body before a backend connection is taken
    /// (nginx buffers the whole body, in a temporary file past 16 KiB); what is longer streams
    /// after them. `0` streams from the start. Default: 64 KiB.
    pub fn buffer_request(mut self, bytes: usize) -> Self {
        self.buffer_request = bytes;
        self
    }

    /// The most connections (requests in flight, WebSockets included) one backend gets.
    /// Default: 1024.
    pub fn max_connections(mut self, count: usize) -> Self {
        self.max_connections = count.max(1);
        self
    }

    /// Takes this prefix off request paths when the backend URL has a path of its own (even
    /// `/`), which takes its place, as nginx's `location /api/ { proxy_pass http://b/; }`.
    /// A backend URL without a path gets the request's path as it is. Default: none.
    pub fn strip_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.strip_prefix = Some(prefix.into());
        self
    }

    /// How long a backend that refused a connection or timed out is skipped while others are
    /// up (nginx's `fail_timeout`). Default: 10 s.
    pub fn fail_timeout(mut self, duration: Duration) -> Self {
        self.fail_timeout = duration;
        self
    }

    /// Builds the proxy.
    ///
    /// # Errors
    /// No backend was added.
    pub fn build(self) -> crate::Result<ReverseProxy> {
        if self.backends.is_empty() {
            return Err(crate::Error::config("a reverse proxy needs a backend"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.max_connections)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let backends = self
            .backends
            .into_iter()
            .map(|(authority, base_path, has_path)| Backend {
                authority,
                base_path,
                has_path,
                permits: Arc::new(Semaphore::new(self.max_connections)),
                down_until: AtomicU64::new(0),
            })
            .collect();
        Ok(ReverseProxy {
            inner: Arc::new(Inner {
                backends,
                next: AtomicUsize::new(0),
                client,
                host: self.host,
                timeout: self.timeout,
                buffer_request: self.buffer_request,
                strip_prefix: self.strip_prefix,
                fail_timeout: self.fail_timeout,
                epoch: Instant::now(),
            }),
        })
    }
}

impl<B> tower_service::Service<Request<B>> for ReverseProxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.forward(req).await) })
    }
}

/// How a request asks to change protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    None,
    /// HTTP/1.1 `Connection: upgrade` with `Upgrade: ...`.
    Http1,
    /// HTTP/2 extended CONNECT (RFC 8441), sent to the backend as an HTTP/1.1 upgrade.
    ExtendedConnect,
}

impl Inner {
    async fn forward<B>(&self, mut req: Request<B>) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let protocol = req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str().to_owned());
        let upgrade = if req.method() == Method::CONNECT {
            match &protocol {
                Some(_) => Upgrade::ExtendedConnect,
                None => return text(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not proxied\n"),
            }
        } else if req.version() <= Version::HTTP_11
            && req.headers().contains_key(header::UPGRADE)
            && headers::connection_has(req.headers(), "upgrade")
        {
            Upgrade::Http1
        } else {
            Upgrade::None
        };
        let client_upgrade = match upgrade {
            Upgrade::None => None,
            _ => Some(hyper::upgrade::on(&mut req)),
        };

        let (mut parts, body) = req.into_parts();
        let client_version = parts.version;
        let info = parts.extensions.get::<ConnectionInfo>().cloned();
        let client_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let upgrade_to = parts.headers.get(header::UPGRADE).cloned();
        headers::remove_hop_by_hop(&mut parts.headers);
        headers::add_forwarding(&mut parts.headers, info.as_ref(), client_host.as_ref());
        parts.headers.remove(header::HOST);
        if self.host == HostHeader::Client {
            if let Some(host) = &client_host {
                parts.headers.insert(header::HOST, host.clone());
            }
        }
        match upgrade {
            Upgrade::None => {}
            Upgrade::Http1 => {
                if let Some(to) = upgrade_to {
                    parts.headers.insert(header::UPGRADE, to);
                }
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            }
            Upgrade::ExtendedConnect => {
                let protocol = protocol.unwrap_or_default();
                let Ok(to) = HeaderValue::from_str(&protocol) else {
                    return text(StatusCode::BAD_REQUEST, "bad :protocol\n");
                };
                parts.method = Method::GET;
                parts.headers.insert(header::UPGRADE, to);
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                if protocol.eq_ignore_ascii_case("websocket")
                    && !parts.headers.contains_key(header::SEC_WEBSOCKET_KEY)
                {
                    // RFC 8441 §5: HTTP/2 has no key; an HTTP/1.1 backend needs one.
                    parts
                        .headers
                        .insert(header::SEC_WEBSOCKET_KEY, websocket_key());
                }
            }
        }
        parts.version = Version::HTTP_11;
        parts.extensions = http::Extensions::new();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
            .to_owned();

        // Read ahead before a backend connection is taken; an upgrade's body is the tunnel.
        let body = if upgrade == Upgrade::None {
            match OutBody::read_ahead(body, self.buffer_request).await {
                Ok(body) => body,
                Err(e) => {
                    tracing::debug!(error = %e, "request body ended early");
                    return text(StatusCode::BAD_REQUEST, "the request body ended early\n");
                }
            }
        } else {
            OutBody::empty()
        };

        let order = self.order();
        let mut body = Some(body);
        let mut last_failure = Failure::Refused;
        for (attempt, index) in order.into_iter().enumerate() {
            let backend = &self.backends[index];
            let this_body = match (attempt, body.as_ref().and_then(OutBody::replay)) {
                (_, Some(copy)) => copy,
                (0, None) => match body.take() {
                    Some(b) => b,
                    None => break,
                },
                (_, None) => break,
            };
            let Ok(uri) = self.backend_uri(backend, &path_and_query) else {
                return text(StatusCode::BAD_REQUEST, "bad request target\n");
            };
            let mut out = Request::from_parts(parts.clone(), this_body);
            *out.uri_mut() = uri;
            match self.send(backend, out, deadline).await {
                Ok((res, permit)) => {
                    return self.respond(res, permit, client_version, upgrade, client_upgrade)
                }
                Err(failure) => {
                    last_failure = failure;
                    if failure != Failure::Busy {
                        self.mark_down(backend);
                    }
                    // Nothing was sent, or it may safely be sent again (nginx's
                    // proxy_next_upstream error timeout, idempotent methods only).
                    let again = failure == Failure::Refused
                        || (failure == Failure::Broken && is_idempotent(&parts.method));
                    if !again {
                        break;
                    }
                }
            }
        }
        match last_failure {
            Failure::Refused | Failure::Broken => text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: the backend did not answer\n",
            ),
            Failure::Timeout => text(
                StatusCode::GATEWAY_TIMEOUT,
                "504 Gateway Timeout: the backend did not answer in time\n",
            ),
            Failure::Busy => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable: every connection to the backend is busy\n",
            ),
        }
    }

    /// Backends to try, in turn: those up first (round robin), then those resting.
    fn order(&self) -> Vec<usize> {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = self.now_ms();
        let (mut up, down): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|i| (start + i) % n)
            .partition(|&i| self.backends[i].down_until.load(Ordering::Relaxed) <= now);
        up.extend(down);
        up
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn mark_down(&self, backend: &Backend) {
        if self.backends.len() > 1 {
            let until = self.now_ms() + self.fail_timeout.as_millis() as u64;
            backend.down_until.store(until, Ordering::Relaxed);
            tracing::warn!(%backend, "backend failed: skipped for {:?}", self.fail_timeout);
        }
    }

    /// The backend URL for a request path and query.
    fn backend_uri(&self, backend: &Backend, path_and_query: &str) -> Result<Uri, http::Error> {
        let mut rest = path_and_query.trim_start_matches('*');
        if backend.has_path {
            if let Some(prefix) = &self.strip_prefix {
                let prefix = prefix.trim_end_matches('/');
                if let Some(stripped) = rest.strip_prefix(prefix) {
                    if stripped.is_empty() || stripped.starts_with(['/', '?']) {
                        rest = stripped;
                    }
                }
            }
        }
        let joined = match rest.starts_with('/') {
            true => format!("{}{rest}", backend.base_path),
            false => format!("{}/{rest}", backend.base_path),
        };
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(backend.authority.clone())
            .path_and_query(joined)
            .build()
    }

    /// Sends one request to `backend` once it has a place under its cap. The response head is
    /// waited for up to the timeout after the request body has gone (a body still streaming
    /// from the client is the server's timeouts' business); the connection must be made
    /// within the timeout.
    async fn send(
        &self,
        backend: &Backend,
        mut out: Request<OutBody>,
        deadline: tokio::time::Instant,
    ) -> Result<(Response<hyper::body::Incoming>, OwnedSemaphorePermit), Failure> {
        let permit = match tokio::time::timeout_at(
            deadline,
            backend.permits.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                tracing::warn!(%backend, "no place under the backend's connection cap in time");
                return Err(Failure::Busy);
            }
        };
        let sent = out.body_mut().when_sent();
        let request = self.client.request(out);
        tokio::pin!(request);
        let head_deadline = match sent {
            None => deadline,
            Some(sent) => tokio::select! {
                res = &mut request => return self.sent(backend, res, permit),
                _ = sent => tokio::time::Instant::now() + self.timeout,
            },
        };
        match tokio::time::timeout_at(head_deadline, request).await {
            Ok(res) => self.sent(backend, res, permit),
            Err(_) => {
                tracing::warn!(%backend, "backend sent no response head within {:?}", self.timeout);
                Err(Failure::Timeout)
            }
        }
    }

    /// What came of a request to `backend`.
    fn sent(
        &self,
        backend: &Backend,
        res: Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Response<hyper::body::Incoming>, OwnedSemaphorePermit), Failure> {
        match res {
            Ok(res) => Ok((res, permit)),
            Err(e) => {
                let connect = e.is_connect();
                tracing::warn!(%backend, error = %error_chain(&e), "backend request failed");
                Err(if connect && is_timeout(&e) {
                    Failure::Timeout
                } else if connect {
                    Failure::Refused
                } else {
                    Failure::Broken
                })
            }
        }
    }

    /// The client's response from the backend's.
    fn respond(
        &self,
        mut res: Response<hyper::body::Incoming>,
        permit: OwnedSemaphorePermit,
        client_version: Version,
        upgrade: Upgrade,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Response<ProxyBody> {
        let backend_upgrade =
            (res.status() == StatusCode::SWITCHING_PROTOCOLS).then(|| hyper::upgrade::on(&mut res));
        let (mut parts, body) = res.into_parts();
        let backend_closes = headers::connection_has(&parts.headers, "close");
        if let Some(backend_upgrade) = backend_upgrade {
            if let Some(client_upgrade) = client_upgrade {
                let upgraded_to = parts.headers.get(header::UPGRADE).cloned();
                tokio::spawn(tunnel(client_upgrade, backend_upgrade, permit));
                headers::remove_hop_by_hop(&mut parts.headers);
                if upgrade == Upgrade::ExtendedConnect {
                    // RFC 8441: the stream is open once the CONNECT gets 2xx.
                    parts.status = StatusCode::OK;
                    parts.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
                } else {
                    if let Some(to) = upgraded_to {
                        parts.headers.insert(header::UPGRADE, to);
                    }
                    parts
                        .headers
                        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                }
                parts.version = client_version;
                return Response::from_parts(parts, ProxyBody::empty());
            }
            // A 101 nobody asked for.
            return text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: the backend switched protocols unasked\n",
            );
        }
        headers::remove_hop_by_hop(&mut parts.headers);
        if backend_closes && client_version <= Version::HTTP_11 {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        parts.version = client_version;
        Response::from_parts(parts, ProxyBody::backend(body, permit))
    }
}

/// Why a backend gave no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No connection: nothing was sent, another backend may take the request.
    Refused,
    /// The connection broke after the request started.
    Broken,
    Timeout,
    /// No place under the connection cap in time.
    Busy,
}

/// Joins the two sides of an upgraded connection until either ends.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    backend: hyper::upgrade::OnUpgrade,
    _permit: OwnedSemaphorePermit,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
}

/// RFC 9110 §9.2.2.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
fn websocket_key() -> HeaderValue {
    use base64::Engine as _;
    let mut nonce = [0u8; 16];
    // Only a nonce (RFC 6455 §4.1): a clock-derived one will do if the generator fails.
    if aws_lc_rs::rand::fill(&mut nonce).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        nonce = nanos.to_le_bytes();
    }
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    HeaderValue::from_str(&key)
        .unwrap_or_else(|_| HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA=="))
}

fn text(status: StatusCode, message: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(ProxyBody::text(message));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        if e.to_string().contains("timed out") {
            return true;
        }
        source = e.source();
    }
    false
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(proxy: &ReverseProxy, path: &str) -> String {
        let inner = &proxy.inner;
        inner
            .backend_uri(&inner.backends[0], path)
            .unwrap()
            .to_string()
    }

    #[test]
    fn backend_urls_are_checked() {
        let b = ReverseProxy::builder();
        assert!(b.clone().backend("https://example.com").is_err());
        assert!(b.clone().backend("127.0.0.1:3000").is_err());
        assert!(b.clone().backend("http://h/?q=1").is_err());
        assert!(b.clone().backend("http://u:p@h/").is_err());
        assert!(b.clone().build().is_err());
        assert!(b.backend("http://127.0.0.1:3000/api/").is_ok());
    }

    #[test]
    fn paths_join_as_nginx_proxy_pass() {
        let p = |url: &str, strip: Option<&str>| {
            let mut b = ReverseProxy::builder().backend(url).unwrap();
            if let Some(s) = strip {
                b = b.strip_prefix(s);
            }
            b.build().unwrap()
        };
        // A base path goes in front.
        let proxy = p("http://127.0.0.1:3000/api", None);
        assert_eq!(uri(&proxy, "/x/y?z=1"), "http://127.0.0.1:3000/api/x/y?z=1");
        // No path in the URL: the request's path as it is, prefix kept.
        let proxy = p("http://127.0.0.1:3000", Some("/api"));
        assert_eq!(
            uri(&proxy, "/api/users?a=1"),
            "http://127.0.0.1:3000/api/users?a=1"
        );
        // A path (even "/"): it takes the prefix's place.
        let proxy = p("http://127.0.0.1:3000/", Some("/api"));
        assert_eq!(
            uri(&proxy, "/api/users?a=1"),
            "http://127.0.0.1:3000/users?a=1"
        );
        assert_eq!(uri(&proxy, "/api"), "http://127.0.0.1:3000/");
        assert_eq!(uri(&proxy, "/apix"), "http://127.0.0.1:3000/apix");
        let proxy = p("http://127.0.0.1:3000/v1", Some("/api/"));
        assert_eq!(uri(&proxy, "/api/users"), "http://127.0.0.1:3000/v1/users");
    }

    #[test]
    fn backends_that_failed_go_last_until_their_rest_ends() {
        let proxy = ReverseProxy::builder()
            .backend("http://127.0.0.1:1")
            .unwrap()
            .backend("http://127.0.0.1:2")
            .unwrap()
            .fail_timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let inner = &proxy.inner;
        assert_eq!(inner.order(), [0, 1]);
        assert_eq!(inner.order(), [1, 0]);
        inner.mark_down(&inner.backends[0]);
        assert_eq!(inner.order(), [1, 0]);
        assert_eq!(inner.order(), [1, 0]);
    }
}

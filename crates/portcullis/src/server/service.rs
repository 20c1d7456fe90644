//! The per-connection service wrapper: puts `ConnectionInfo` on each request, tells the
//! registry when a request starts and its response ends, and adds the headers Node adds
//! (`Connection`, `Keep-Alive`), plus HSTS and the HTTP/1.1 Host check.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, EXPECT, HOST};
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tower::util::Oneshot;
use tower::ServiceExt;

use super::info::ConnectionInfo;
use super::registry::{ConnShared, Phase};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Keep-Alive`, known at compile time so that no request parses the name.
static KEEP_ALIVE: http::HeaderName = http::HeaderName::from_static("keep-alive");

/// Per-server settings the wrapper reads.
#[derive(Debug)]
pub(crate) struct ServiceOptions {
    pub(crate) keep_alive_header: Option<HeaderValue>,
    pub(crate) max_requests_per_socket: usize,
    pub(crate) max_headers_count: usize,
    pub(crate) hsts: Option<HeaderValue>,
    /// HTTP-01 tokens being validated, answered on plain-HTTP connections before the service.
    #[cfg(feature = "acme")]
    pub(crate) acme_http01: Option<std::sync::Arc<crate::acme::Challenges>>,
}

impl ServiceOptions {
    pub(crate) fn keep_alive_value(
        keep_alive_secs: u64,
        max_requests: usize,
    ) -> Option<HeaderValue> {
        let text = if max_requests > 0 {
            format!("timeout={keep_alive_secs}, max={max_requests}")
        } else {
            format!("timeout={keep_alive_secs}")
        };
        HeaderValue::from_str(&text).ok()
    }
}

pub(crate) struct ConnService<S> {
    pub(crate) inner: S,
    pub(crate) conn: Arc<ConnShared>,
    pub(crate) info: ConnectionInfo,
    pub(crate) options: Arc<ServiceOptions>,
}

impl<S> ConnService<S> {
    /// The key authorization, when this plain-HTTP request fetches an HTTP-01 token being
    /// validated.
    #[cfg(feature = "acme")]
    fn acme_http01<T>(&self, req: &Request<T>) -> Option<Bytes> {
        if self.info.is_secure() || req.method() != http::Method::GET {
            return None;
        }
        self.options
            .acme_http01
            .as_ref()?
            .http01_response(req.uri().path())
    }

    #[cfg(not(feature = "acme"))]
    fn acme_http01<T>(&self, _req: &Request<T>) -> Option<Bytes> {
        None
    }
}

impl<S> fmt::Debug for ConnService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnService")
            .field("conn", &self.conn.id)
            .finish_non_exhaustive()
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let conn = &self.conn;
        let served = conn.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let http1 = req.version() < Version::HTTP_2;
        let has_body = !req.body().is_end_stream();
        if http1 {
            // Node's on_headers_complete: without a body the request is complete now.
            conn.set_phase(if has_body {
                Phase::Body
            } else {
                Phase::Processing
            });
        } else {
            conn.stream_started();
        }
        let guard = ResponseGuard {
            conn: conn.clone(),
            http1,
        };
        let framing = Framing {
            http1,
            version: req.version(),
            has_body,
            client_close: http1 && !client_keeps_alive(&req),
            last: http1
                && self.options.max_requests_per_socket > 0
                && served >= self.options.max_requests_per_socket,
            upgrade: http1
                && req
                    .extensions()
                    .get::<hyper::upgrade::OnUpgrade>()
                    .is_some(),
            connect: req.method() == http::Method::CONNECT,
        };

        let http11 = req.version() == Version::HTTP_11;
        let canned = if let Some(answer) = self.acme_http01(&req) {
            Some((StatusCode::OK, answer))
        } else if http11 && !req.headers().contains_key(HOST) {
            // Node's requireHostHeader.
            Some((
                StatusCode::BAD_REQUEST,
                Bytes::from_static(b"missing Host header\n"),
            ))
        } else if !http1
            && self.options.max_headers_count > 0
            && req.headers().len() > self.options.max_headers_count
        {
            Some((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Bytes::from_static(b"too many headers\n"),
            ))
        } else if http11 && expects_other_than_continue(&req) {
            // Node without a 'checkExpectation' listener.
            Some((StatusCode::EXPECTATION_FAILED, Bytes::new()))
        } else {
            None
        };
        if let Some((status, text)) = canned {
            conn.mark_response_started();
            if let Some(counters) = conn.counters() {
                counters.response(framing.version, status);
            }
            let empty = text.is_empty();
            let mut res = Response::new(ResponseBody::full(text, guard));
            *res.status_mut() = status;
            if !empty {
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            let framing = Framing {
                // Node closes after a 400 or 431, and keeps the connection after a 417.
                last: framing.last
                    || !(status == StatusCode::EXPECTATION_FAILED || status == StatusCode::OK),
                ..framing
            };
            framing.connection_headers(res.headers_mut(), conn, &self.options);
            return ResponseFuture::Ready {
                res: Some(Box::new(res)),
            };
        }

        if http11 && has_body && expects_continue(&req) {
            // Node answers `100 Continue` as soon as the head is in, before the handler runs;
            // hyper sends it when the body is first polled. Poll it once (nothing has been read
            // yet, so no data can come out): the handler still gets the whole body.
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let polled = Pin::new(req.body_mut()).poll_frame(&mut cx);
            debug_assert!(
                polled.is_pending(),
                "a body behind 100-continue was read early"
            );
        }
        req.extensions_mut().insert(self.info.clone());
        ResponseFuture::Pending {
            fut: Call::start(self.inner.clone(), req),
            guard: Some(guard),
            options: self.options.clone(),
            secure: self.info.is_secure(),
            framing,
            held: None,
        }
    }
}

/// What decides the connection headers of one HTTP/1 response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    http1: bool,
    /// The request's version, for the counters.
    version: Version,
    /// The request has a body (it may still be arriving when the response starts).
    has_body: bool,
    /// The client asked to close: HTTP/1.1 `Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`.
    client_close: bool,
    /// The last response this connection sends (`max_requests_per_socket`, or a canned error).
    last: bool,
    /// The request carried an upgrade hyper may hand the connection to.
    upgrade: bool,
    connect: bool,
}

impl Framing {
    /// Node's `Connection` and `Keep-Alive` headers, saying only what will happen:
    /// `Connection: close` when the connection ends after this response, Node's keep-alive
    /// pair when it stays open, and nothing for a request whose body may still be arriving:
    /// hyper decides then (it closes if the handler dropped the body before its end) and adds
    /// `Connection: close` itself when it closes.
    fn connection_headers(
        &self,
        headers: &mut http::HeaderMap,
        conn: &ConnShared,
        options: &ServiceOptions,
    ) {
        if !self.http1 {
            return;
        }
        if self.last || self.client_close || conn.is_graceful() || conn.is_draining() {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
            headers.remove(&KEEP_ALIVE);
        } else if self.has_body {
            // hyper's call, as above.
        } else if let Some(ka) = &options.keep_alive_header {
            if !headers.contains_key(CONNECTION) && !headers.contains_key(&KEEP_ALIVE) {
                headers.reserve(2);
                headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
                headers.insert(KEEP_ALIVE.clone(), ka.clone());
            }
        }
    }
}

/// Whether an HTTP/1 request lets the connection stay open after its response: HTTP/1.1 unless
/// `Connection` lists `close`, HTTP/1.0 only when it lists `keep-alive`.
fn client_keeps_alive<B>(req: &Request<B>) -> bool {
    let mut tokens = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    if req.version() == Version::HTTP_10 {
        tokens.any(|t| t.eq_ignore_ascii_case("keep-alive"))
    } else {
        !tokens.any(|t| t.eq_ignore_ascii_case("close"))
    }
}

/// Node's `continueExpression`: `100-continue` as a word in `Expect`.
fn expects_continue<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(EXPECT)
        .iter()
        .any(|v| has_continue_token(v.as_bytes()))
}

/// An `Expect` header that is not `100-continue`: Node answers `417`.
fn expects_other_than_continue<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(EXPECT) && !expects_continue(req)
}

/// Node's `/(?:^|\W)100-continue(?:$|\W)/i`.
fn has_continue_token(value: &[u8]) -> bool {
    const TOKEN: &[u8] = b"100-continue";
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    value.windows(TOKEN.len()).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(TOKEN)
            && (i == 0 || !word(value[i - 1]))
            && value.get(i + TOKEN.len()).is_none_or(|&b| !word(b))
    })
}

pin_project_lite::pin_project! {
    #[project = ResponseFutureProj]
    pub(crate) enum ResponseFuture<S, B>
    where
        S: tower_service::Service<Request<Incoming>>,
    {
        Pending {
            #[pin]
            fut: Call<S, Request<Incoming>>,
            guard: Option<ResponseGuard>,
            options: Arc<ServiceOptions>,
            secure: bool,
            framing: Framing,
            // A response held back for one turn (boxed: only requests with a body need it).
            held: Option<Box<Response<B>>>,
        },
        // Boxed: a canned answer is rare; the response would otherwise size every call's
        // future (hyper moves it, and an HTTP/2 stream's task holds it).
        Ready { res: Option<Box<Response<ResponseBody<B>>>> },
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Ready { res } => Poll::Ready(
                res.take()
                    .map(|res| *res)
                    .ok_or_else(|| "polled after completion".into()),
            ),
            ResponseFutureProj::Pending {
                fut,
                guard,
                options,
                secure,
                framing,
                held,
            } => {
                let res = match held.take() {
                    Some(res) => *res,
                    None => {
                        let res = ready!(fut.poll(cx))?;
                        if framing.http1 && framing.has_body {
                            // One turn back to hyper before its head is written: if the handler
                            // dropped a body that is still arriving, hyper notices now, drains
                            // it or closes, and when it closes says so in this head.
                            *held = Some(Box::new(res));
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        res
                    }
                };
                let guard = guard.take().ok_or("polled after completion")?;
                guard.conn.mark_response_started();
                let (mut parts, body) = res.into_parts();
                if let Some(counters) = guard.conn.counters() {
                    counters.response(framing.version, parts.status);
                }
                if framing.upgrade && !switches_protocols(parts.status, framing.connect) {
                    guard.conn.set_stale_upgrade();
                }
                let headers = &mut parts.headers;
                if *secure {
                    if let Some(hsts) = &options.hsts {
                        headers
                            .entry(http::header::STRICT_TRANSPORT_SECURITY)
                            .or_insert_with(|| hsts.clone());
                    }
                }
                framing.connection_headers(headers, &guard.conn, options);
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    ResponseBody::Inner { body, guard },
                )))
            }
        }
    }
}

/// Whether a response hands the connection over: `101`, or a `2xx` to `CONNECT`.
fn switches_protocols(status: StatusCode, connect: bool) -> bool {
    status == StatusCode::SWITCHING_PROTOCOLS || (connect && status.is_success())
}

pin_project_lite::pin_project! {
    /// The service's call. Most services are ready at once (`service_fn`, axum's `Router`):
    /// then the request goes straight to `call`, without carrying the service and the request
    /// in a `Oneshot` until the first poll.
    #[project = CallProj]
    pub(crate) enum Call<S, Req>
    where
        S: tower_service::Service<Req>,
    {
        Called { #[pin] fut: S::Future },
        // Boxed: the service and the request would otherwise size every call's future.
        Waiting { fut: Pin<Box<Oneshot<S, Req>>> },
        NotReady { error: Option<BoxError> },
    }
}

impl<S, Req> Call<S, Req>
where
    S: tower_service::Service<Req>,
    S::Error: Into<BoxError>,
{
    fn start(mut service: S, req: Req) -> Self {
        // A no-op waker is enough: a service that is not ready now is polled again, with the
        // connection's waker, by `Oneshot`.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match service.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => Call::Called {
                fut: service.call(req),
            },
            Poll::Ready(Err(error)) => Call::NotReady {
                error: Some(error.into()),
            },
            Poll::Pending => Call::Waiting {
                fut: Box::pin(service.oneshot(req)),
            },
        }
    }
}

impl<S, Req> Future for Call<S, Req>
where
    S: tower_service::Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CallProj::Called { fut } => fut.poll(cx).map_err(Into::into),
            CallProj::Waiting { fut } => fut.as_mut().poll(cx).map_err(Into::into),
            CallProj::NotReady { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
        }
    }
}

/// Marks the response (and so the request) finished when the body is dropped.
#[derive(Debug)]
pub(crate) struct ResponseGuard {
    conn: Arc<ConnShared>,
    http1: bool,
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        if self.http1 {
            self.conn.set_phase(Phase::Idle);
        } else {
            self.conn.stream_ended();
        }
    }
}

pin_project_lite::pin_project! {
    /// The response body hyper sends: the service's, or a short canned one.
    #[project = ResponseBodyProj]
    pub enum ResponseBody<B> {
        /// The service's own body.
        Inner {
            #[pin]
            body: B,
            guard: ResponseGuard,
        },
        /// A canned answer (400, 431).
        Full {
            data: Option<Bytes>,
            guard: ResponseGuard,
        },
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseBody")
    }
}

impl<B> ResponseBody<B> {
    fn full(data: Bytes, guard: ResponseGuard) -> Self {
        ResponseBody::Full {
            data: Some(data),
            guard,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            ResponseBodyProj::Inner { body, .. } => body.poll_frame(cx).map_err(Into::into),
            ResponseBodyProj::Full { data, .. } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data(d))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Inner { body, .. } => body.is_end_stream(),
            ResponseBody::Full { data, .. } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Inner { body, .. } => body.size_hint(),
            ResponseBody::Full { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Not ready on its first `poll_ready` (waking the caller), then ready; or never ready.
    #[derive(Clone)]
    struct Slow {
        polls: Arc<AtomicUsize>,
        fail: bool,
    }

    impl tower_service::Service<u32> for Slow {
        type Response = u32;
        type Error = BoxError;
        type Future = std::future::Ready<Result<u32, BoxError>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            if self.fail {
                return Poll::Ready(Err("overloaded".into()));
            }
            if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: u32) -> Self::Future {
            std::future::ready(Ok(req * 2))
        }
    }

    #[tokio::test]
    async fn a_ready_service_is_called_at_once() {
        let service = tower::service_fn(|req: u32| async move { Ok::<_, BoxError>(req + 1) });
        let call = Call::start(service, 41);
        assert!(matches!(call, Call::Called { .. }));
        assert_eq!(call.await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_service_that_is_not_ready_is_polled_again_with_the_real_waker() {
        let polls = Arc::new(AtomicUsize::new(0));
        let service = Slow {
            polls: polls.clone(),
            fail: false,
        };
        let call = Call::start(service, 21);
        assert!(matches!(call, Call::Waiting { .. }));
        assert_eq!(call.await.unwrap(), 42);
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_poll_ready_is_the_calls_error() {
        let service = Slow {
            polls: Arc::new(AtomicUsize::new(0)),
            fail: true,
        };
        let err = Call::start(service, 1).await.unwrap_err();
        assert_eq!(err.to_string(), "overloaded");
    }

    #[test]
    fn expect_matches_node_s_continue_expression() {
        for yes in [
            "100-continue",
            "100-Continue",
            " 100-continue",
            "foo, 100-continue",
        ] {
            assert!(has_continue_token(yes.as_bytes()), "{yes}");
        }
        for no in ["100-continuex", "x100-continue", "foo", "", "200-continue"] {
            assert!(!has_continue_token(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_tokens() {
        let req = |version, connection: Option<&str>| {
            let mut b = Request::builder().version(version);
            if let Some(c) = connection {
                b = b.header(CONNECTION, c);
            }
            b.body(()).unwrap()
        };
        assert!(client_keeps_alive(&req(Version::HTTP_11, None)));
        assert!(!client_keeps_alive(&req(Version::HTTP_11, Some("close"))));
        assert!(!client_keeps_alive(&req(
            Version::HTTP_11,
            Some("TE, Close")
        )));
        assert!(!client_keeps_alive(&req(Version::HTTP_10, None)));
        assert!(client_keeps_alive(&req(
            Version::HTTP_10,
            Some("Keep-Alive")
        )));
    }
}

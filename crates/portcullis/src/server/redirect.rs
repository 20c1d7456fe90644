//! The plain-HTTP listener that sends every request to the HTTPS origin with `308`.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, HOST, LOCATION};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::accept::Shared;
use super::sniff::https_url;

/// Answers every request with `308 Permanent Redirect` to the same host, path and query on the
/// HTTPS port (a request without a usable `Host` gets `400`). From [`Server::redirect`],
/// to serve with [`Server::serve_http`] behind layers of one's own (an access log).
///
/// [`Server::redirect`]: super::Server::redirect
/// [`Server::serve_http`]: super::Server::serve_http
#[derive(Clone)]
pub struct Redirect {
    shared: Arc<Shared>,
    port: Option<u16>,
}

impl std::fmt::Debug for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redirect")
            .field("port", &self.port)
            .finish()
    }
}

impl Redirect {
    /// Redirects to `port`, or (when `None`) to the server's HTTPS port at request time.
    pub(crate) fn new(shared: Arc<Shared>, port: Option<u16>) -> Self {
        Self { shared, port }
    }
}

impl tower_service::Service<Request<Incoming>> for Redirect {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = host
            .and_then(|h| {
                https_url(
                    h,
                    self.port.unwrap_or_else(|| self.shared.https_port()),
                    path,
                )
            })
            .and_then(|url| HeaderValue::from_str(&url).ok());
        let mut res = Response::new(Full::new(Bytes::new()));
        match location {
            Some(url) => {
                *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
                res.headers_mut().insert(LOCATION, url);
            }
            None => {
                *res.status_mut() = StatusCode::BAD_REQUEST;
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
        }
        ready(Ok(res))
    }
}

//! `--proxy URL`: a reverse proxy to a plain-HTTP backend. Bodies stream both ways; the
//! backend learns the client through `X-Forwarded-*` and RFC 7239 `Forwarded`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::ConnectionInfo;
use tower::util::BoxCloneService;

use crate::serve::{text, Body, BoxError, HttpService};

/// The backend of `--proxy`: an `http://` origin and a base path (no trailing slash).
#[derive(Debug, Clone)]
pub struct Backend {
    authority: Authority,
    base_path: String,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}/", self.authority, self.base_path)
    }
}

/// Parses `--proxy`: `http://host[:port][/base]`, no query or fragment.
pub fn parse_backend(value: &str) -> Result<Backend, String> {
    let uri: Uri = value
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected e.g. http://127.0.0.1:3000"))?;
    match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => {}
        Some(s) if *s == Scheme::HTTPS => {
            return Err("https backends are not supported; use an http:// URL".into())
        }
        _ => return Err("expected an http:// URL, e.g. http://127.0.0.1:3000".into()),
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or("the URL has no host; expected e.g. http://127.0.0.1:3000")?;
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    if uri.query().is_some() {
        return Err("the URL must not have a query".into());
    }
    Ok(Backend {
        authority,
        base_path: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// Headers that describe one connection and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The proxy service for `backend`.
pub fn service(backend: Backend) -> HttpService {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    BoxCloneService::new(tower::service_fn(move |req: Request<Incoming>| {
        let client = client.clone();
        let backend = backend.clone();
        async move { Ok::<_, BoxError>(forward(&client, &backend, req).await) }
    }))
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    backend: &Backend,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() == Method::CONNECT {
        return text(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported\n");
    }
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("websocket"));
    if websocket {
        // A WebSocket needs the connection handed over; refuse plainly. Other upgrade offers
        // (h2c) are optional and are dropped with the hop-by-hop headers.
        return text(StatusCode::NOT_IMPLEMENTED, "WebSocket is not proxied\n");
    }
    let (mut parts, body) = req.into_parts();
    let info = parts.extensions.get::<ConnectionInfo>().cloned();
    let Ok(uri) = backend_uri(backend, &parts.uri) else {
        return text(StatusCode::BAD_REQUEST, "bad request target\n");
    };
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });

    remove_hop_by_hop(&mut parts.headers);
    // The client sets Host from the backend URI.
    parts.headers.remove(header::HOST);
    add_forwarding(&mut parts.headers, info.as_ref(), original_host.as_ref());
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();

    match client.request(Request::from_parts(parts, body)).await {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
        }
        Err(error) => {
            tracing::warn!(%backend, error = %error_chain(&error), "backend request failed");
            text(
                StatusCode::BAD_GATEWAY,
                "502 Bad Gateway: the backend did not answer\n",
            )
        }
    }
}

/// The backend URL for a request: the base path, then the request's path and query.
fn backend_uri(backend: &Backend, request: &Uri) -> Result<Uri, http::Error> {
    let path_and_query = request
        .path_and_query()
        .map_or("/", PathAndQuery::as_str)
        .trim_start_matches('*');
    let path_and_query = match path_and_query.starts_with('/') {
        true => format!("{}{path_and_query}", backend.base_path),
        false => format!("{}/{path_and_query}", backend.base_path),
    };
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(backend.authority.clone())
        .path_and_query(path_and_query)
        .build()
}

/// Drops the hop-by-hop headers and those the `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds `X-Forwarded-For` (appended), `X-Forwarded-Proto`, `X-Forwarded-Host` and an element
/// of RFC 7239 `Forwarded` (appended).
fn add_forwarding(
    headers: &mut HeaderMap,
    info: Option<&ConnectionInfo>,
    host: Option<&HeaderValue>,
) {
    let proto = match info.is_some_and(ConnectionInfo::is_secure) {
        true => "https",
        false => "http",
    };
    let peer = info.map(|i| canonical(i.peer_addr()));

    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        let xff = match joined(headers, "x-forwarded-for") {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip,
        };
        if let Ok(value) = HeaderValue::from_str(&xff) {
            headers.insert("x-forwarded-for", value);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    match host {
        Some(host) => headers.insert("x-forwarded-host", host.clone()),
        None => headers.remove("x-forwarded-host"),
    };

    let mut element = Vec::new();
    if let Some(peer) = peer {
        element.push(format!("for={}", forwarded_value(&node(peer))));
    }
    element.push(format!("proto={proto}"));
    if let Some(host) = host.and_then(|h| h.to_str().ok()) {
        element.push(format!("host={}", forwarded_value(host)));
    }
    let element = element.join(";");
    let forwarded = match joined(headers, header::FORWARDED.as_str()) {
        Some(earlier) => format!("{earlier}, {element}"),
        None => element,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, value);
    }
}

/// All values of a header joined by ", ", if any.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// An IPv4-mapped IPv6 peer (from a dual-stack listener) as plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// RFC 7239 §6 node: `192.0.2.43:47011` or `[2001:db8::1]:47011`.
fn node(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A `Forwarded` parameter value: a token as is, anything else as a quoted-string.
fn forwarded_value(value: &str) -> String {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !value.is_empty() && value.chars().all(is_tchar) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn error_chain(error: &dyn std::error::Error) -> String {
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

    #[test]
    fn parses_backends() {
        let b = parse_backend("http://127.0.0.1:3000/api/").unwrap();
        assert_eq!(b.base_path, "/api");
        assert_eq!(b.to_string(), "http://127.0.0.1:3000/api/");
        assert!(parse_backend("https://example.com").is_err());
        assert!(parse_backend("127.0.0.1:3000").is_err());
        assert!(parse_backend("http://h/?q=1").is_err());
    }

    #[test]
    fn appends_path_and_query_to_the_base() {
        let b = parse_backend("http://127.0.0.1:3000/api").unwrap();
        let uri = backend_uri(&b, &"/x/y?z=1".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:3000/api/x/y?z=1");
        let b = parse_backend("http://127.0.0.1:3000").unwrap();
        let uri = backend_uri(&b, &"/".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:3000/");
    }

    #[test]
    fn forwarded_values_follow_rfc_7239() {
        assert_eq!(forwarded_value("example.com"), "example.com");
        assert_eq!(forwarded_value("localhost:8443"), "\"localhost:8443\"");
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(forwarded_value(&node(v6)), "\"[::1]:5000\"");
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(node(canonical(mapped)), "10.0.0.1:80");
    }

    #[test]
    fn drops_hop_by_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}

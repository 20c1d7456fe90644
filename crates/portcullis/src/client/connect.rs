//! Making one connection: resolve, TCP (local address, keep-alive), an optional HTTP CONNECT
//! proxy, TLS with Node's servername rules and a per-origin session cache, then hyper's
//! HTTP/1.1 or HTTP/2 handshake.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};

use super::proxy::Proxy;
use super::RequestBody;
use crate::error::{Error, Kind, Result};
use crate::tls::failure::{self, Side};
use crate::tls::verifier_error;
use crate::tls::TlsInfo;

/// Where a request goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// A client TLS config from the agent's cache, and, when verification is off, the check
/// that reports Node's `authorized`/`authorizationError` for each connection.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    pub(crate) config: Arc<rustls::ClientConfig>,
    #[allow(clippy::type_complexity)]
    pub(crate) authorize: Option<crate::tls::Authorize>,
}

/// What the agent fixes for every connection it makes.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    pub(crate) http2: bool,
    pub(crate) local_address: Option<IpAddr>,
    pub(crate) keep_alive_msecs: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) resolve: Arc<HashMap<(String, u16), SocketAddr>>,
    pub(crate) proxy: Option<Proxy>,
}

/// A request sender over one connection.
#[derive(Debug)]
pub(crate) enum Sender {
    H1(http1::SendRequest<RequestBody>),
    H2(http2::SendRequest<RequestBody>),
}

/// One established connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) sender: Sender,
    pub(crate) tls: Option<Arc<TlsInfo>>,
    pub(crate) peer: SocketAddr,
    pub(crate) ended: Arc<Ended>,
}

impl Conn {
    pub(crate) fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    pub(crate) fn is_http2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// A second handle on an HTTP/2 connection (HTTP/1 senders are not shared).
    pub(crate) fn share(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                tls: self.tls.clone(),
                peer: self.peer,
                ended: self.ended.clone(),
            }),
            Sender::H1(_) => None,
        }
    }
}

/// Session caches per origin key, evicting the oldest key beyond `max` (Node's
/// `maxCachedSessions`; 0 disables resumption).
#[derive(Debug)]
pub(crate) struct SessionCaches {
    max: usize,
    caches: Mutex<Vec<(String, Arc<ClientSessionMemoryCache>)>>,
}

impl SessionCaches {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            caches: Mutex::new(Vec::new()),
        }
    }

    fn resumption(&self, key: &str) -> Resumption {
        if self.max == 0 {
            return Resumption::disabled();
        }
        let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, cache)) = caches.iter().find(|(k, _)| k == key) {
            return Resumption::store(cache.clone());
        }
        if caches.len() >= self.max {
            caches.remove(0);
        }
        let cache = Arc::new(ClientSessionMemoryCache::new(4));
        caches.push((key.to_owned(), cache.clone()));
        Resumption::store(cache)
    }

    /// Node evicts an origin's session when its socket closes with an error.
    pub(crate) fn evict(&self, key: &str) {
        self.caches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _)| k != key);
    }

    pub(crate) fn len(&self) -> usize {
        self.caches.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Node's servername rule: the given one, else the host; none for an IP literal or "".
fn sni_and_check_name(target: &Target, servername: Option<&str>) -> (bool, String) {
    match servername {
        Some("") => (false, target.host.clone()),
        Some(name) => (name.parse::<IpAddr>().is_err(), name.to_owned()),
        None => (target.host.parse::<IpAddr>().is_err(), target.host.clone()),
    }
}

pub(crate) async fn connect(
    target: &Target,
    options: &ConnectOptions,
    servername: Option<&str>,
    setup: &TlsSetup,
    sessions: &SessionCaches,
    key: &str,
) -> Result<Conn> {
    let via_proxy = options
        .proxy
        .as_ref()
        .filter(|p| target.https && p.applies_to(&target.host));
    // The connect timeout covers the proxy's CONNECT exchange too: a tunnel is the
    // connection, as far as the request is concerned.
    let opened = async {
        let tcp = open_tcp(target, options).await?;
        let peer = tcp
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let io: Box<dyn Io> = match via_proxy {
            Some(proxy) => Box::new(TokioIo::new(proxy_tunnel(tcp, proxy, target).await?)),
            None => Box::new(tcp),
        };
        Ok::<_, Error>((io, peer))
    };
    let (io, peer) = tokio::time::timeout(options.connect_timeout, opened)
        .await
        .map_err(|_| {
            let through = via_proxy
                .map(|p| format!(" through the proxy {}:{}", p.host, p.port))
                .unwrap_or_default();
            Error::new(
                Kind::Timeout,
                format!(
                    "connect to {}:{}{through} timed out",
                    target.host, target.port
                ),
            )
            .with_code("ETIMEDOUT")
        })??;

    let (sni, check_name) = sni_and_check_name(target, servername);
    let mut config = (*setup.config).clone();
    config.enable_sni = sni;
    config.resumption = sessions.resumption(key);
    config.alpn_protocols = if options.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let name = ServerName::try_from(
        check_name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|_| Error::config(format!("invalid server name {check_name:?}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let checked_name = name.clone();
    let tls = tokio::time::timeout(options.handshake_timeout, connector.connect(name, io))
        .await
        .map_err(|_| {
            Error::new(Kind::Timeout, "TLS handshake timeout")
                .with_code("ERR_TLS_HANDSHAKE_TIMEOUT")
        })?
        .map_err(|e| {
            sessions.evict(key);
            tls_error(e)
        })?;
    let conn = tls.get_ref().1;
    let mut info = TlsInfo::from_state(conn, sni.then(|| check_name.clone()));
    // With verification on, the handshake itself authorized the server.
    let refusal = setup
        .authorize
        .as_ref()
        .and_then(|authorize| authorize(info.peer_chain(), &checked_name));
    info.set_authorization(refusal.as_ref().map(|(c, r)| (c.as_str(), r.as_str())));
    let h2 = info.alpn() == Some("h2");
    handshake_http(Box::new(tls), Some(Arc::new(info)), peer, h2).await
}

/// A plain-HTTP connection (for `http://` URLs).
pub(crate) async fn connect_plain(target: &Target, options: &ConnectOptions) -> Result<Conn> {
    let tcp = tokio::time::timeout(options.connect_timeout, open_tcp(target, options))
        .await
        .map_err(|_| {
            Error::new(
                Kind::Timeout,
                format!("connect to {}:{} timed out", target.host, target.port),
            )
            .with_code("ETIMEDOUT")
        })??;
    let peer = tcp
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    handshake_http(Box::new(tcp), None, peer, false).await
}

/// The IO types a connection can run over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

async fn handshake_http(
    io: Box<dyn Io>,
    tls: Option<Arc<TlsInfo>>,
    peer: SocketAddr,
    h2: bool,
) -> Result<Conn> {
    let io = TokioIo::new(io);
    let ended = Arc::new(Ended::default());
    let end = ended.clone();
    let sender = if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| Error::new(Kind::Http, "HTTP/2 handshake failed").with_source(e))?;
        tokio::spawn(async move {
            let result = conn.await;
            if let Err(e) = &result {
                tracing::debug!(error = %e, "client h2 connection ended");
            }
            end.finish(result.err().and_then(|e| connection_tls_error(&e)));
        });
        Sender::H2(sender)
    } else {
        let (sender, conn) = http1::handshake(io)
            .await
            .map_err(|e| Error::new(Kind::Http, "HTTP/1 handshake failed").with_source(e))?;
        tokio::spawn(async move {
            let result = conn.with_upgrades().await;
            if let Err(e) = &result {
                tracing::debug!(error = %e, "client h1 connection ended");
            }
            end.finish(result.err().and_then(|e| connection_tls_error(&e)));
        });
        Sender::H1(sender)
    };
    Ok(Conn {
        sender,
        tls,
        peer,
        ended,
    })
}

async fn open_tcp(target: &Target, options: &ConnectOptions) -> Result<TcpStream> {
    let proxy = options
        .proxy
        .as_ref()
        .filter(|p| target.https && p.applies_to(&target.host));
    let (host, port) = match proxy {
        Some(p) => (p.host.clone(), p.port),
        None => (target.host.clone(), target.port),
    };
    let addrs: Vec<SocketAddr> = match options.resolve.get(&(host.clone(), port)) {
        Some(addr) => vec![*addr],
        None => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((bare, port))
                    .await
                    .map_err(|e| {
                        Error::new(Kind::Connect, format!("getaddrinfo ENOTFOUND {host}"))
                            .with_code("ENOTFOUND")
                            .with_source(e)
                    })?
                    .collect(),
            }
        }
    };
    let mut last = None;
    for addr in addrs {
        match connect_one(addr, options).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(Kind::Connect, format!("getaddrinfo ENOTFOUND {host}")).with_code("ENOTFOUND")
    }))
}

async fn connect_one(addr: SocketAddr, options: &ConnectOptions) -> Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| io_error(e, addr))?;
    if let Some(local) = options.local_address {
        socket
            .bind(SocketAddr::new(local, 0))
            .map_err(|e| io_error(e, addr))?;
    }
    let stream = socket.connect(addr).await.map_err(|e| io_error(e, addr))?;
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(options.keep_alive_msecs);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    Ok(stream)
}

fn io_error(e: io::Error, addr: SocketAddr) -> Error {
    let code = match e.kind() {
        io::ErrorKind::ConnectionRefused => "ECONNREFUSED",
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => "ECONNRESET",
        io::ErrorKind::TimedOut => "ETIMEDOUT",
        io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
        _ => "ECONNREFUSED",
    };
    let kind = if code == "ETIMEDOUT" {
        Kind::Timeout
    } else {
        Kind::Connect
    };
    Error::new(kind, format!("connect {code} {addr}"))
        .with_code(code)
        .with_source(e)
}

/// The Node error for a connection that failed after its handshake (a TLS alert, such as a
/// TLS 1.3 server refusing the client's certificate), when the cause is a TLS one.
pub(crate) fn connection_tls_error(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        let rustls_error = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls_error) = rustls_error {
            return Some(
                Error::new(Kind::Tls, failure::describe(rustls_error, Side::Client))
                    .with_code(failure::code(rustls_error, Side::Client)),
            );
        }
        next = err.source();
    }
    None
}

/// How a connection's driver task ended: the TLS error that ended it, if one did. A request
/// that finds its connection gone reports this rather than a bare "socket hang up".
#[derive(Debug, Default)]
pub(crate) struct Ended {
    error: std::sync::OnceLock<Error>,
    done: tokio_util::sync::CancellationToken,
}

impl Ended {
    fn finish(&self, error: Option<Error>) {
        if let Some(error) = error {
            let _ = self.error.set(error);
        }
        self.done.cancel();
    }

    /// The TLS error that ended the connection, waiting up to `wait` for the driver to stop.
    pub(crate) async fn tls_error(&self, wait: Duration) -> Option<Error> {
        let _ = tokio::time::timeout(wait, self.done.cancelled()).await;
        self.error.get().map(Error::duplicate)
    }
}

/// Turns a failed TLS handshake into Node's error.
fn tls_error(e: io::Error) -> Error {
    if let Some(rustls_error) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        if let Some(ours) = verifier_error(rustls_error) {
            // The verifier's error, with its detail (the source is not Clone: keep its text).
            let detail = std::error::Error::source(ours).map(|s| s.to_string());
            let copy = ours.duplicate();
            return match detail {
                Some(detail) => copy.with_source(detail),
                None => copy,
            };
        }
        return Error::new(
            Kind::Tls,
            format!(
                "TLS handshake failed: {}",
                failure::describe(rustls_error, Side::Client)
            ),
        )
        .with_code(failure::code(rustls_error, Side::Client));
    }
    let code = match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => "ECONNRESET",
        _ => "EPROTO",
    };
    Error::new(
        Kind::Tls,
        "Client network socket disconnected before secure TLS connection was established",
    )
    .with_code(code)
    .with_source(e)
}

/// Opens an HTTP CONNECT tunnel through `proxy` to the target.
async fn proxy_tunnel(
    tcp: TcpStream,
    proxy: &Proxy,
    target: &Target,
) -> Result<hyper::upgrade::Upgraded> {
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .map_err(|e| Error::new(Kind::Connect, "proxy handshake failed").with_source(e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let authority = if target.host.contains(':') && !target.host.starts_with('[') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(authority.as_str())
        .header(http::header::HOST, authority.as_str());
    if let Some(auth) = &proxy.authorization {
        req = req.header(http::header::PROXY_AUTHORIZATION, auth.as_str());
    }
    let req = req
        .body(Empty::new())
        .map_err(|e| Error::config(format!("bad CONNECT request: {e}")))?;
    let res = sender.send_request(req).await.map_err(|e| {
        Error::new(Kind::Connect, "proxy CONNECT failed")
            .with_code("ECONNRESET")
            .with_source(e)
    })?;
    if res.status() != StatusCode::OK {
        return Err(Error::new(
            Kind::Connect,
            format!("proxy refused CONNECT {authority}: {}", res.status()),
        )
        .with_code("ERR_PROXY_TUNNEL"));
    }
    hyper::upgrade::on(res)
        .await
        .map_err(|e| Error::new(Kind::Connect, "proxy tunnel failed").with_source(e))
}

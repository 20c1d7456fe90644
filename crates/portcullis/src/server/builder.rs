//! `ServerBuilder`: every option with Node's name and default.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::accept::{Hooks, Shared, TlsRuntime};
use super::info::ConnectionInfo;
use super::registry::{Registry, Signal};
use super::service::ServiceOptions;
use super::sniff::PlainHttpResponse;
use super::timeouts::Timeouts;
use super::{IpNet, Server, TlsClientError};
use crate::error::{Error, Result};
use crate::tls::{Identity, ServerTlsConfig};

/// hyper's own limit on HTTP/1 request headers.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Configures a [`Server`]. Setters consume and return the builder; errors surface at
/// [`build`](Self::build).
///
/// Defaults follow Node's `https.createServer()` where Node has the option.
pub struct ServerBuilder {
    identity: Option<Identity>,
    tls: Option<ServerTlsConfig>,
    http2: bool,
    connect_protocol: bool,
    headers_timeout: Duration,
    request_timeout: Duration,
    keep_alive_timeout: Duration,
    keep_alive_timeout_buffer: Duration,
    release_idle_buffers_after: Duration,
    timeout: Duration,
    handshake_timeout: Duration,
    max_header_size: usize,
    max_headers_count: usize,
    max_requests_per_socket: usize,
    max_connections: usize,
    lru_purge: bool,
    stats: bool,
    max_concurrent_handshakes: usize,
    backlog: Option<u32>,
    shutdown_timeout: Option<Duration>,
    hsts: Option<Duration>,
    https_port: Option<u16>,
    proxy_protocol: bool,
    proxy_protocol_from: Vec<IpNet>,
    plain_http_response: PlainHttpResponse,
    hooks: Hooks,
    #[cfg(feature = "acme")]
    acme: Option<crate::acme::AcmeConfig>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("identity", &self.identity)
            .field("http2", &self.http2)
            .field("headers_timeout", &self.headers_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field(
                "release_idle_buffers_after",
                &self.release_idle_buffers_after,
            )
            .field("timeout", &self.timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// A builder with every option at its default.
    pub fn new() -> Self {
        Self {
            identity: None,
            tls: None,
            http2: true,
            connect_protocol: false,
            headers_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            keep_alive_timeout: Duration::from_secs(5),
            keep_alive_timeout_buffer: Duration::from_secs(1),
            release_idle_buffers_after: Duration::from_millis(500),
            timeout: Duration::ZERO,
            handshake_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            max_headers_count: 2000,
            max_requests_per_socket: 0,
            max_connections: 0,
            lru_purge: true,
            stats: false,
            max_concurrent_handshakes: 512,
            backlog: None,
            shutdown_timeout: None,
            hsts: None,
            https_port: None,
            proxy_protocol: false,
            proxy_protocol_from: IpNet::loopback().to_vec(),
            plain_http_response: PlainHttpResponse::Explain,
            hooks: Hooks::default(),
            #[cfg(feature = "acme")]
            acme: None,
        }
    }

    /// The certificate chain and key to present, with every other TLS option at its default.
    /// A shortcut for [`tls`](Self::tls) with `ServerTlsConfig::builder().identity(identity)`.
    /// A server that only serves plain HTTP may omit both.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The full TLS configuration: identities and SNI, versions, suites, client
    /// certificates, resumption, key log. See [`ServerTlsConfig::builder`].
    pub fn tls(mut self, config: ServerTlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Offer HTTP/2 by ALPN (`h2` before `http/1.1`). Default: on.
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// HTTP/2 extended CONNECT (RFC 8441, Node's `settings.enableConnectProtocol`): clients
    /// may open WebSockets over an HTTP/2 connection. A handler sees `CONNECT` with a
    /// [`hyper::ext::Protocol`] extension, answers `200` and takes the stream with
    /// `hyper::upgrade::on`. Default: off. `proxy::ReverseProxy` (feature `proxy`) handles it.
    pub fn enable_connect_protocol(mut self, enabled: bool) -> Self {
        self.connect_protocol = enabled;
        self
    }

    /// Node's `headersTimeout`: the request head must arrive within this, counted from the end
    /// of the handshake for a silent connection and from the first byte of each later request.
    /// On expiry: `408 Request Timeout` with `Connection: close`, then close. Default: 60 s;
    /// zero disables.
    pub fn headers_timeout(mut self, timeout: Duration) -> Self {
        self.headers_timeout = timeout;
        self
    }

    /// Node's `requestTimeout`: the whole request (head and body) must arrive within this.
    /// On expiry: `408` if no response has started, else the connection is dropped.
    /// Default: 300 s; zero disables.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Node's `keepAliveTimeout`: how long a connection may sit idle between requests.
    /// Responses carry `Keep-Alive: timeout=N` (whole seconds, rounded down). Default: 5 s;
    /// zero disables (idle connections are then kept until the client closes them).
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Extra time past `keep_alive_timeout` before an idle connection is closed, so a client
    /// that trusts the advertised value never races the close. Default: 1 s (Node v20.20's
    /// `HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER`, an option on newer Node).
    pub fn keep_alive_timeout_buffer(mut self, buffer: Duration) -> Self {
        self.keep_alive_timeout_buffer = buffer;
        self
    }

    /// How long an HTTP/1 keep-alive connection stays idle before its HTTP buffers are released
    /// (hyper's 8 KiB read and 8 KiB write buffers and its connection state: ~18 kB per
    /// connection). The connection stays open and keeps its TLS session; the next request on it
    /// starts a fresh HTTP/1 connection state, which costs a few microseconds. Default: 500 ms;
    /// zero keeps the buffers for the connection's life. HTTP/2 connections keep theirs.
    pub fn release_idle_buffers_after(mut self, idle: Duration) -> Self {
        self.release_idle_buffers_after = idle;
        self
    }

    /// The listen backlog of the sockets [`Server::bind`](crate::Server::bind) and `serve` bind: how many
    /// connections the kernel queues before they are accepted (Node's and nginx's `backlog`).
    /// Default: the system's `net.core.somaxconn` on Linux (4096 on current kernels), else 1024;
    /// the kernel caps it at `somaxconn` in any case.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = Some(backlog.max(1));
        self
    }

    /// Node's `server.timeout`: socket inactivity after which the connection is dropped without
    /// a byte written. As in Node, an idle keep-alive connection between requests is governed
    /// by [`keep_alive_timeout`](Self::keep_alive_timeout) instead (unless that is zero).
    /// Default: zero (off).
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The former name of [`inactivity_timeout`](Self::inactivity_timeout).
    #[deprecated(note = "use inactivity_timeout: `timeout` meant three things across the API")]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.inactivity_timeout(timeout)
    }

    /// Node's `handshakeTimeout`, covering the PROXY header, the first bytes and the TLS
    /// handshake. On expiry the connection is closed and `on_tls_client_error` gets
    /// `ERR_TLS_HANDSHAKE_TIMEOUT`. Default: 10 s (Node: 120 s; a handshake takes milliseconds
    /// and a connection stuck in it holds a socket and a handshake slot, so we keep the window
    /// short). Zero disables.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Node's `maxHeaderSize`: a request head larger than this gets `431` with
    /// `Connection: close`. Default: 16 KiB. HTTP/1 counts the whole head with a floor of
    /// 8 KiB (hyper's smallest buffer); HTTP/2 applies it as `SETTINGS_MAX_HEADER_LIST_SIZE`.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// The most header fields a request may carry; more gets `431` with `Connection: close`.
    /// Default: 2000. (Node truncates silently instead.)
    ///
    /// Cost: hyper prepares this many header slots for every HTTP/1 request it parses; above
    /// 100 they live on the heap. With 2000 that is about 18k more CPU instructions per request
    /// than with 100 (measured with callgrind: 39k against 21k per keep-alive request), so a
    /// server that never sees more than 100 headers should set `max_headers_count(100)`.
    pub fn max_headers_count(mut self, count: usize) -> Self {
        self.max_headers_count = count;
        self
    }

    /// Node's `maxRequestsPerSocket`: the Nth response on a connection carries
    /// `Connection: close` and responses before it `Keep-Alive: timeout=T, max=N`.
    /// Default: zero (unlimited).
    pub fn max_requests_per_socket(mut self, count: usize) -> Self {
        self.max_requests_per_socket = count;
        self
    }

    /// ESP-IDF's `max_open_sockets`: the most connections open at once. At the limit a new
    /// connection is admitted by closing the least-recently-used idle one when
    /// [`lru_purge`](Self::lru_purge) is on, and refused otherwise (Node's `maxConnections`).
    /// With LRU purge on and no connection idle yet (all in their handshake or a request), the
    /// newcomer waits up to a second for one to become idle or close, the connections behind it
    /// waiting in the listen queue, before it is refused. Default: zero (no limit).
    pub fn max_connections(mut self, count: usize) -> Self {
        self.max_connections = count;
        self
    }

    /// ESP-IDF's `lru_purge_enable`. Default: on.
    pub fn lru_purge(mut self, enabled: bool) -> Self {
        self.lru_purge = enabled;
        self
    }

    /// Counts accepted, refused and purged connections, handshakes, responses, timeouts and
    /// bytes, for [`ServerHandle::stats`](super::ServerHandle::stats) (a few relaxed atomic
    /// additions per request, no lock). Default: off; the snapshot then has only the live
    /// connection states and the certificates.
    pub fn stats(mut self, enabled: bool) -> Self {
        self.stats = enabled;
        self
    }

    /// The most TLS handshakes in progress at once; more wait their turn (inside their
    /// handshake timeout), so a handshake flood cannot starve established connections of CPU.
    /// Default: 512.
    pub fn max_concurrent_handshakes(mut self, count: usize) -> Self {
        self.max_concurrent_handshakes = count.max(1);
        self
    }

    /// After [`close`](super::ServerHandle::close), drop the connections still open when this
    /// passes. Default: none (wait for them, as Node does).
    pub fn shutdown_timeout(mut self, deadline: Duration) -> Self {
        self.shutdown_timeout = Some(deadline);
        self
    }

    /// Send `Strict-Transport-Security: max-age=N` on HTTPS responses that do not set it.
    /// Default: off.
    pub fn hsts(mut self, max_age: Duration) -> Self {
        self.hsts = Some(max_age);
        self
    }

    /// The HTTPS port redirects point to. Default: the port of the first TLS listener.
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = Some(port);
        self
    }

    /// Require a PROXY protocol (v1 or v2) header on every connection; the address it carries
    /// becomes [`ConnectionInfo::peer_addr`]. A connection without a valid one is closed, as
    /// is one from outside [`proxy_protocol_from`](Self::proxy_protocol_from). Default: off.
    pub fn proxy_protocol(mut self, required: bool) -> Self {
        self.proxy_protocol = required;
        self
    }

    /// The load balancers a PROXY header is accepted from (with
    /// [`proxy_protocol`](Self::proxy_protocol) on): a connection from any other address is
    /// refused, so a client that can reach the server directly cannot claim another address.
    /// Default: loopback ([`IpNet::loopback`]).
    pub fn proxy_protocol_from(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.proxy_protocol_from = networks.into_iter().collect();
        self
    }

    /// How the TLS port answers plain HTTP. Default: [`PlainHttpResponse::Explain`].
    pub fn plain_http_response(mut self, response: PlainHttpResponse) -> Self {
        self.plain_http_response = response;
        self
    }

    /// Node's `'connection'` event, made a gate: called with the peer and local address of
    /// each accepted TCP connection; `false` closes it at once.
    pub fn on_connection(
        mut self,
        hook: impl Fn(SocketAddr, SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.on_connection = Some(Arc::new(hook));
        self
    }

    /// Node's `'secureConnection'`, made a gate: called after the handshake; `false` closes
    /// the connection before any request is read.
    pub fn on_secure_connection(
        mut self,
        hook: impl Fn(&ConnectionInfo) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.on_secure_connection = Some(Arc::new(hook));
        self
    }

    /// Node's `'tlsClientError'`: a handshake failed or timed out, or the client spoke plain
    /// HTTP or junk to the TLS port.
    pub fn on_tls_client_error(
        mut self,
        hook: impl Fn(&TlsClientError) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.on_tls_client_error = Some(Arc::new(hook));
        self
    }

    /// Gets and renews the certificate from an ACME CA (see [`crate::acme`]): the TLS-ALPN-01
    /// challenge is answered on every HTTPS listener, HTTP-01 on every plain-HTTP one, and each
    /// new certificate becomes the default identity of the TLS configuration. The TLS options
    /// come from [`tls`](Self::tls) when given (build it with
    /// [`without_identity`](crate::tls::ServerTlsConfigBuilder::without_identity), or its
    /// identity is served until the first certificate arrives), else the defaults. The manager
    /// starts with the first `serve*` call and stops when the server closes.
    #[cfg(feature = "acme")]
    pub fn acme(mut self, config: crate::acme::AcmeConfig) -> Self {
        self.acme = Some(config);
        self
    }

    /// Checks the options and builds the server.
    ///
    /// # Errors
    /// An unusable identity or TLS configuration.
    pub fn build(self) -> Result<Server> {
        let tls = match (self.tls, self.identity) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "give the identity inside the TLS configuration, not both identity() and tls()",
                ))
            }
            (Some(tls), None) => Some(tls),
            (None, Some(identity)) => Some(ServerTlsConfig::builder().identity(identity).build()?),
            (None, None) => None,
        };
        #[cfg(feature = "acme")]
        let (tls, acme) = match self.acme {
            Some(config) => {
                let acme = crate::acme::AcmeState::new(config)?;
                let tls = match tls {
                    Some(tls) => tls,
                    None => ServerTlsConfig::builder().without_identity().build()?,
                };
                let tls = match acme.initial_identity()? {
                    Some(identity) => tls.with_identity(identity),
                    None => tls,
                };
                (Some(tls), Some(acme))
            }
            None => (tls, None),
        };
        let tls = tls.map(|tls| {
            let config = tls.finalize(self.http2, None);
            Arc::new(TlsRuntime { config, tls })
        });
        if self.max_header_size == 0 {
            return Err(Error::config("max_header_size must be above zero"));
        }

        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true)
            // hyper then reads only when it wants a head or body bytes; see timeouts.rs.
            .half_close(true)
            .max_buf_size(self.max_header_size.max(8192));
        // hyper sizes a header array of this many slots for every request it parses (inline up
        // to its default of 100, on the heap beyond): leave its default alone when it fits.
        if self.max_headers_count != HYPER_DEFAULT_MAX_HEADERS {
            // "Unlimited" is bounded by the head size: a header line takes at least 4 bytes.
            http1.max_headers(if self.max_headers_count == 0 {
                self.max_header_size.max(8192) / 4
            } else {
                self.max_headers_count
            });
        }
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(self.max_header_size.min(u32::MAX as usize) as u32)
            .max_concurrent_streams(250);
        if self.connect_protocol {
            http2.enable_connect_protocol();
        }

        let keep_alive_header = (!self.keep_alive_timeout.is_zero())
            .then(|| {
                ServiceOptions::keep_alive_value(
                    self.keep_alive_timeout.as_secs(),
                    self.max_requests_per_socket,
                )
            })
            .flatten();
        let service_options = ServiceOptions {
            keep_alive_header,
            max_requests_per_socket: self.max_requests_per_socket,
            max_headers_count: self.max_headers_count,
            hsts: self
                .hsts
                .and_then(|age| HeaderValue::from_str(&format!("max-age={}", age.as_secs())).ok()),
            #[cfg(feature = "acme")]
            acme_http01: acme.as_ref().map(|a| a.challenges.clone()),
        };
        let timeouts = Timeouts {
            headers: self.headers_timeout,
            request: self.request_timeout,
            keep_alive: self.keep_alive_timeout,
            keep_alive_buffer: self.keep_alive_timeout_buffer,
            inactivity: self.timeout,
        };
        let shared = Shared {
            registry: Arc::new(Registry::with_stats(
                self.max_connections,
                self.lru_purge,
                self.stats,
            )),
            tls: arc_swap::ArcSwapOption::new(tls),
            http2_enabled: self.http2,
            handshakes: tokio::sync::Semaphore::new(self.max_concurrent_handshakes),
            stop_accepting: Signal::default(),
            http1,
            http2,
            service_options: Arc::new(service_options),
            timeouts,
            handshake_timeout: self.handshake_timeout,
            idle_check_after: timeouts.idle_check_after(self.release_idle_buffers_after),
            shutdown_timeout: self.shutdown_timeout,
            https_port: self.https_port,
            proxy_protocol: self.proxy_protocol,
            proxy_protocol_from: self.proxy_protocol_from,
            backlog: self.backlog.unwrap_or_else(super::listen::default_backlog),
            plain_http_response: self.plain_http_response,
            hooks: self.hooks,
            tls_addrs: Mutex::new(Vec::new()),
            handshake_log: Default::default(),
            #[cfg(feature = "acme")]
            acme,
        };
        Ok(Server {
            shared: Arc::new(shared),
        })
    }
}

//! The HTTPS server: Node's `https.Server` semantics over hyper and rustls.
//!
//! ```text
//! accept → registry.admit → PROXY header (opt) → sniff → TLS handshake (timed, capped)
//!        → ConnectionInfo → hyper h1/h2 over TimedIo → the user's tower Service
//! ```

pub(crate) mod accept;
mod builder;
mod idle;
mod info;
mod ip_net;
mod listen;
pub(crate) mod proxy_protocol;
mod redirect;
mod registry;
mod service;
pub(crate) mod sniff;
mod socket;
mod stats;
mod timeouts;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;

pub use builder::ServerBuilder;
pub use info::{ConnectionInfo, ProxyInfo, TlsInfo};
pub use ip_net::IpNet;
pub use redirect::Redirect;
pub use registry::ConnectionCounts;
pub use sniff::PlainHttpResponse;
pub use stats::{CertificateExpiry, ConnectionStates, ServerStats, TimeoutCounts};

use crate::error::{Error, Result};
use accept::Shared;
use service::BoxError;

/// An HTTPS server, configured and ready to serve on one or more listeners.
///
/// Cheap to clone; clones share connections, counts and shutdown.
///
/// ```no_run
/// # async fn run() -> portcullis::Result<()> {
/// use portcullis::{Identity, Server};
/// let server = Server::builder()
///     .identity(Identity::from_pem_files("cert.pem", "key.pem")?)
///     .build()?;
/// let listener = server.bind("127.0.0.1:0").await?;
/// println!("listening on https://{}", listener.local_addr());
/// let hello = tower::service_fn(|_req| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
///         bytes::Bytes::from_static(b"hello world\n"),
///     )))
/// });
/// server.serve(listener, hello).await
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.shared.registry.counts())
            .finish_non_exhaustive()
    }
}

/// A bound TCP listener, from [`Server::bind`]. Its [`local_addr`](Listener::local_addr)
/// is the real address, port included when port 0 was asked for.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    local_addr: SocketAddr,
}

impl Listener {
    /// A listener bound elsewhere: one passed by systemd socket activation, or kept by a parent
    /// across restarts. It keeps the backlog it was bound with. Needs a tokio runtime.
    ///
    /// # Errors
    /// The socket cannot be made non-blocking or registered with the runtime, or has no
    /// address.
    pub fn from_std(listener: std::net::TcpListener) -> Result<Self> {
        let what = "cannot use the passed listener";
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(what, e))?;
        let inner = TcpListener::from_std(listener).map_err(|e| Error::io(what, e))?;
        let local_addr = inner.local_addr().map_err(|e| Error::io(what, e))?;
        Ok(Self { inner, local_addr })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// Anything `serve` can listen on: a [`Listener`], a tokio or std `TcpListener`, or an address.
pub trait IntoListener: Send {
    /// Binds (if needed, listening with `backlog`) and returns the listener. A listener bound
    /// already keeps the backlog it was bound with.
    fn into_listener(self, backlog: u32) -> impl Future<Output = io::Result<TcpListener>> + Send;
}

impl IntoListener for Listener {
    async fn into_listener(self, _backlog: u32) -> io::Result<TcpListener> {
        Ok(self.inner)
    }
}

impl IntoListener for TcpListener {
    async fn into_listener(self, _backlog: u32) -> io::Result<TcpListener> {
        Ok(self)
    }
}

impl IntoListener for std::net::TcpListener {
    async fn into_listener(self, _backlog: u32) -> io::Result<TcpListener> {
        self.set_nonblocking(true)?;
        TcpListener::from_std(self)
    }
}

impl IntoListener for SocketAddr {
    async fn into_listener(self, backlog: u32) -> io::Result<TcpListener> {
        listen::bind(self, backlog).await
    }
}

impl IntoListener for &str {
    async fn into_listener(self, backlog: u32) -> io::Result<TcpListener> {
        listen::bind(self, backlog).await
    }
}

impl IntoListener for String {
    async fn into_listener(self, backlog: u32) -> io::Result<TcpListener> {
        listen::bind(self.as_str(), backlog).await
    }
}

impl Server {
    /// Starts configuring a server. See [`ServerBuilder`] for the options and their defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// A handle for closing the server and reading its counts from anywhere.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Binds a TCP listener (port 0 picks a free port), listening with the configured
    /// [`backlog`](ServerBuilder::backlog).
    ///
    /// # Errors
    /// The address cannot be resolved or bound; the error names it.
    pub async fn bind(
        &self,
        addr: impl tokio::net::ToSocketAddrs + fmt::Debug,
    ) -> Result<Listener> {
        let what = format!("cannot listen on {addr:?}");
        let inner = listen::bind(addr, self.shared.backlog)
            .await
            .map_err(|e| Error::io(&what, e))?;
        let local_addr = inner.local_addr().map_err(|e| Error::io(&what, e))?;
        Ok(Listener { inner, local_addr })
    }

    /// Serves HTTPS on `listener` with `service` until the server is closed and its last
    /// connection is gone.
    ///
    /// The service is any tower `Service<Request<Incoming>>` returning `Response<B>`: an axum
    /// `Router`, a `tower::service_fn` closure, a `ServeDir`. Each request carries a
    /// [`ConnectionInfo`] extension.
    ///
    /// # Errors
    /// The listener cannot be bound. Errors of single connections are logged and reported to
    /// the hooks; they never stop the accept loop.
    pub async fn serve<L, S, B>(&self, listener: L, service: S) -> Result<()>
    where
        L: IntoListener,
        S: tower_service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let listener = listener
            .into_listener(self.shared.backlog)
            .await
            .map_err(|e| Error::io("cannot listen", e))?;
        self.start_acme();
        accept::run(self.shared.clone(), listener, accept::Mode::Tls, service).await
    }

    /// [`serve`](Self::serve) until `signal` completes (a Ctrl-C, a channel), then Node's
    /// `close()`: stop accepting, let in-flight requests finish (up to
    /// [`ServerBuilder::shutdown_timeout`]), and return once every connection is gone.
    ///
    /// ```no_run
    /// # async fn run(server: portcullis::Server) -> portcullis::Result<()> {
    /// let svc = tower::service_fn(|_req| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi\n")))
    /// });
    /// server
    ///     .serve_with_shutdown("127.0.0.1:8443", svc, async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub async fn serve_with_shutdown<L, S, B, F>(
        &self,
        listener: L,
        service: S,
        signal: F,
    ) -> Result<()>
    where
        L: IntoListener,
        S: tower_service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
        F: Future<Output = ()> + Send,
    {
        let serving = self.serve(listener, service);
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result,
            () = signal => {}
        }
        let handle = self.handle();
        let close = handle.close();
        tokio::pin!(close);
        // The accept loop ends with the close; keep driving it until then.
        let (result, ()) = tokio::join!(serving, close);
        result
    }

    /// Serves plain HTTP on `listener` with the same service (ESP-IDF's insecure transport):
    /// for trusted networks and tests. Timeouts, limits and the registry apply as on TLS.
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub async fn serve_http<L, S, B>(&self, listener: L, service: S) -> Result<()>
    where
        L: IntoListener,
        S: tower_service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let listener = listener
            .into_listener(self.shared.backlog)
            .await
            .map_err(|e| Error::io("cannot listen", e))?;
        self.start_acme();
        accept::run(self.shared.clone(), listener, accept::Mode::Plain, service).await
    }

    /// Starts getting and renewing the certificate (once), when the server has an ACME
    /// configuration.
    fn start_acme(&self) {
        #[cfg(feature = "acme")]
        if let Some(acme) = &self.shared.acme {
            acme.start(&self.shared);
        }
    }

    /// Serves plain HTTP on `listener`, answering every request with `308 Permanent Redirect`
    /// to the same path and query on the HTTPS origin (the port of the first TLS listener, or
    /// [`ServerBuilder::https_port`]).
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub async fn serve_redirect<L: IntoListener>(&self, listener: L) -> Result<()> {
        let service = redirect::Redirect::new(self.shared.clone(), None);
        self.serve_http(listener, service).await
    }

    /// As [`Server::serve_redirect`], to an explicit HTTPS port (443 is left out of the URL).
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub async fn serve_redirect_to<L: IntoListener>(
        &self,
        listener: L,
        https_port: u16,
    ) -> Result<()> {
        self.serve_http(listener, self.redirect(Some(https_port)))
            .await
    }

    /// The service of [`serve_redirect`](Self::serve_redirect): `308` to `https_port`, or (when
    /// `None`) to the port of the first TLS listener or [`ServerBuilder::https_port`].
    pub fn redirect(&self, https_port: Option<u16>) -> Redirect {
        Redirect::new(self.shared.clone(), https_port)
    }
}

/// Swaps the default identity of the running TLS configuration (ACME renewals): the reload
/// path of [`ServerHandle::set_tls_config`], everything else kept.
#[cfg(feature = "acme")]
pub(crate) fn set_default_identity(shared: &Shared, identity: crate::Identity) {
    let Some(previous) = shared.tls.load_full() else {
        return;
    };
    let config = previous.tls.with_identity(identity);
    let finalized = config.finalize(shared.http2_enabled, Some(&previous.config));
    shared.tls.store(Some(Arc::new(accept::TlsRuntime {
        config: finalized,
        tls: config,
    })));
}

/// Closes the server and reads its counts, from any task. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// Node's `server.close()`: stops accepting, closes idle connections at once, lets in-flight
    /// requests finish (HTTP/1.1 responses get `Connection: close`, HTTP/2 gets GOAWAY), and
    /// resolves when the last connection is gone. As in Node, a connection still in its
    /// handshake is not dropped: it completes it (within the handshake timeout), and, like a
    /// connection that has sent no request yet, gets a second for its first request, answered
    /// with `Connection: close` — so a restart on a socket handed over to the next process
    /// (socket activation) fails no client caught in between.
    ///
    /// With a [`shutdown_timeout`](ServerBuilder::shutdown_timeout), connections left when it
    /// passes are dropped as by [`close_all_connections`](Self::close_all_connections).
    pub async fn close(&self) {
        let shared = &self.shared;
        shared.registry.start_closing();
        shared.stop_accepting.cancel();
        match shared.shutdown_timeout {
            Some(deadline) => {
                if tokio::time::timeout(deadline, shared.registry.wait_empty())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        left = shared.registry.counts().total(),
                        "shutdown timeout passed; dropping the remaining connections"
                    );
                    shared.registry.close_all();
                    shared.registry.wait_empty().await;
                }
            }
            None => shared.registry.wait_empty().await,
        }
    }

    /// Starts draining without closing the listeners: every connection, open now or accepted
    /// from now on, ends after its next response (HTTP/1.1 `Connection: close`; a connection
    /// inside a request finishes it gracefully, HTTP/2 with GOAWAY), and
    /// [`is_closing`](Self::is_closing) turns true. An idle connection is not closed under a
    /// client that may be sending on it: it ends with its next response, or at `close()`. What
    /// a server behind a load balancer does between failing its readiness check and
    /// [`close`](Self::close), so that no connection is caught in a listen queue being closed
    /// and no keep-alive client loses a request to the race of a close. Node has no
    /// counterpart.
    pub fn drain(&self) {
        self.shared.registry.drain();
    }

    /// Node's `closeIdleConnections()`: closes every connection that is between requests.
    pub fn close_idle_connections(&self) {
        self.shared.registry.close_idle();
    }

    /// Node's `closeAllConnections()`: drops every connection now, in-flight requests included.
    pub fn close_all_connections(&self) {
        self.shared.registry.close_all();
    }

    /// Live counts of handshaking, active and idle connections (a walk of every connection).
    pub fn connections(&self) -> ConnectionCounts {
        self.shared.registry.counts()
    }

    /// Node's `getConnections()`: how many connections are open, read from a counter (cheap
    /// enough to poll; [`connections`](Self::connections) says which state each is in).
    pub fn connection_count(&self) -> usize {
        self.shared.registry.len()
    }

    /// The server's counters (with [`ServerBuilder::stats`]; zero without), its connections by
    /// state and the expiry of the certificates it presents: what a metrics endpoint exports.
    /// Taking it walks every connection, as [`connections`](Self::connections) does.
    pub fn stats(&self) -> ServerStats {
        let shared = &self.shared;
        let mut stats = shared
            .registry
            .counters()
            .map(stats::Counters::snapshot)
            .unwrap_or_default();
        stats.connections = shared.registry.states();
        if let Some(runtime) = shared.tls.load_full() {
            stats.certificates = runtime.tls.certificate_expiries();
        }
        stats
    }

    /// Node's `setSecureContext`: connections accepted from now on use `config`; established
    /// ones keep theirs. The session cache, and the ticket keys unless `config` brings its
    /// own, carry over, so sessions issued before the swap still resume.
    ///
    /// # Errors
    /// The server was built without TLS.
    pub fn set_tls_config(&self, config: crate::tls::ServerTlsConfig) -> Result<()> {
        let shared = &self.shared;
        let previous = shared.tls.load_full().ok_or_else(|| {
            Error::config("this server was built without TLS; give it an identity first")
        })?;
        // The ACME certificate stays the default identity across reloads.
        #[cfg(feature = "acme")]
        let config = match shared.acme.as_ref().and_then(|acme| acme.current()) {
            Some(identity) => config.with_identity(identity),
            None => config,
        };
        let finalized = config.finalize(shared.http2_enabled, Some(&previous.config));
        shared.tls.store(Some(Arc::new(accept::TlsRuntime {
            config: finalized,
            tls: config,
        })));
        Ok(())
    }

    /// Node's `addContext(hostname, identity)` on the running server: new connections asking
    /// for `hostname` (exact or `*.example.com`) get `identity`.
    ///
    /// # Errors
    /// The server was built without TLS.
    pub fn add_context(&self, hostname: &str, identity: crate::Identity) -> Result<()> {
        let runtime = self.shared.tls.load_full().ok_or_else(|| {
            Error::config("this server was built without TLS; give it an identity first")
        })?;
        runtime.tls.add_context(hostname, identity);
        Ok(())
    }

    /// True once [`close`](Self::close) or [`drain`](Self::drain) has been called.
    pub fn is_closing(&self) -> bool {
        self.shared.registry.is_closing()
    }

    /// The addresses of the TLS listeners being served.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .tls_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A failed TLS connection attempt, as Node's `tlsClientError` reports it.
#[derive(Debug, Clone)]
pub struct TlsClientError {
    peer_addr: SocketAddr,
    code: &'static str,
    message: String,
}

impl TlsClientError {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Node's code: `ERR_TLS_HANDSHAKE_TIMEOUT`, `ECONNRESET`, `ERR_SSL_HTTP_REQUEST`,
    /// `ERR_SSL_WRONG_VERSION_NUMBER`, `ERR_SSL_UNSUPPORTED_PROTOCOL`,
    /// `ERR_SSL_NO_APPLICATION_PROTOCOL`, `ERR_SSL_NO_SHARED_CIPHER`,
    /// `ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE`, an alert the client sent
    /// (`ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`, `ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE`, …), the
    /// verification code of a refused client certificate (`CERT_HAS_EXPIRED`, …),
    /// `ERR_PROXY_PROTOCOL` or `ERR_SSL_HANDSHAKE_FAILURE`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What went wrong, in words a user can act on (what an alert the client sent usually
    /// means, why a client certificate was refused).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TlsClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {}: {}", self.code, self.peer_addr, self.message)
    }
}

impl std::error::Error for TlsClientError {}

pub(crate) type TlsAddrs = Mutex<Vec<SocketAddr>>;

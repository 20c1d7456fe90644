//! The accept loop and one connection's way from TCP to hyper.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;

use super::idle::{drive, serve_http1};
use super::info::{server_tls_info, ConnectionInfo};
use super::registry::{ConnGuard, Phase, Refused, Registry, Signal};
use super::service::{BoxError, ConnService, ServiceOptions};
use super::sniff::{self, BadHello, FirstBytes, PlainHttpResponse};
use super::socket::Socket;
use super::timeouts::{TimedIo, Timeouts};
use super::{proxy_protocol, TlsAddrs, TlsClientError};
use crate::error::{Error, Result};
use crate::tls::failure::{self, Side};
use crate::tls::{FixedIdentity, ServerTlsConfig};

type OnConnection = Arc<dyn Fn(SocketAddr, SocketAddr) -> bool + Send + Sync>;
type OnSecureConnection = Arc<dyn Fn(&ConnectionInfo) -> bool + Send + Sync>;
type OnTlsClientError = Arc<dyn Fn(&TlsClientError) + Send + Sync>;

#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub(crate) on_connection: Option<OnConnection>,
    pub(crate) on_secure_connection: Option<OnSecureConnection>,
    pub(crate) on_tls_client_error: Option<OnTlsClientError>,
}

/// The TLS configuration connections are accepted with; swapped whole on reload.
pub(crate) struct TlsRuntime {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) tls: ServerTlsConfig,
}

/// Everything the connections of one server share.
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) tls: arc_swap::ArcSwapOption<TlsRuntime>,
    pub(crate) http2_enabled: bool,
    pub(crate) handshakes: Semaphore,
    pub(crate) stop_accepting: Signal,
    pub(crate) http1: hyper::server::conn::http1::Builder,
    pub(crate) http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    pub(crate) service_options: Arc<ServiceOptions>,
    pub(crate) timeouts: Timeouts,
    pub(crate) handshake_timeout: Duration,
    /// How long an HTTP/1 connection stays idle before its hyper state is released (see
    /// `drive`): `release_idle_buffers_after`, or sooner when a pipelined request's headers
    /// timeout could pass before the keep-alive timeout. Zero: never.
    pub(crate) idle_check_after: Duration,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) https_port: Option<u16>,
    pub(crate) proxy_protocol: bool,
    /// The peers a PROXY header is taken from; others are refused.
    pub(crate) proxy_protocol_from: Vec<super::IpNet>,
    /// The listen backlog for the sockets the server binds itself.
    pub(crate) backlog: u32,
    pub(crate) plain_http_response: PlainHttpResponse,
    pub(crate) hooks: Hooks,
    pub(crate) tls_addrs: TlsAddrs,
    pub(crate) handshake_log: LogLimit,
    #[cfg(feature = "acme")]
    pub(crate) acme: Option<Arc<crate::acme::AcmeState>>,
}

impl Shared {
    /// The port redirects and the plain-HTTP answer point to.
    pub(crate) fn https_port(&self) -> u16 {
        self.https_port.unwrap_or_else(|| {
            self.tls_addrs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .map_or(443, SocketAddr::port)
        })
    }

    /// A connection that ended before or in its handshake: logged (rate-limited) and handed to
    /// `on_tls_client_error`.
    fn report(&self, peer_addr: SocketAddr, sni: Option<&str>, failure: Failure) {
        let Failure {
            code,
            message,
            level,
        } = failure;
        if let Some(counters) = self.registry.counters() {
            counters.handshake_failed(code);
        }
        let sni = sni.unwrap_or("-");
        match level {
            Level::Quiet => tracing::debug!(%peer_addr, sni, code, "{message}"),
            level => {
                if let Some(suppressed) = self.handshake_log.admit() {
                    if level == Level::Warn {
                        tracing::warn!(%peer_addr, sni, code, suppressed, "TLS handshake refused: {message}");
                    } else {
                        tracing::info!(%peer_addr, sni, code, suppressed, "TLS handshake failed: {message}");
                    }
                }
            }
        }
        if let Some(hook) = &self.hooks.on_tls_client_error {
            hook(&TlsClientError {
                peer_addr,
                code,
                message,
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Tls,
    Plain,
}

pub(crate) async fn run<S, B>(
    shared: Arc<Shared>,
    listener: TcpListener,
    mode: Mode,
    service: S,
) -> Result<()>
where
    S: AppService<B>,
    B: AppBody,
{
    let local_addr = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the listener's address", e))?;
    if mode == Mode::Tls {
        if shared.tls.load().is_none() {
            return Err(Error::config(
                "serving HTTPS needs an identity: call ServerBuilder::identity",
            ));
        }
        shared
            .tls_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(local_addr);
    }
    let mut backoff = AcceptBackoff::default();
    let mut refused_at: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.stop_accepting.cancelled() => break,
        };
        let (stream, peer_addr) = match accepted {
            Ok(pair) => {
                backoff.succeeded();
                pair
            }
            Err(e) => {
                // Out of descriptors: close the least recently used idle keep-alive
                // connections (when LRU purge is on, as nginx drains its reusable ones) and
                // accept again at once; a client waiting in the queue matters more than one
                // that is idle.
                if is_out_of_descriptors(&e) {
                    let drained = shared.registry.drain_idle(DRAIN_ON_EMFILE);
                    if drained > 0 {
                        backoff.drained(drained);
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
                // Otherwise (or nothing idle to close): wait (20 ms doubling to 1 s while it
                // lasts), warn once per episode and then every 10 s with the count; never stop.
                // Out of descriptors, the wait ends as soon as a connection closes (or becomes
                // idle, to be drained): the visitor at the head of the queue should not sit out a
                // second that a closed connection had already made good.
                let pause = backoff.failed(&e);
                let until = tokio::time::Instant::now() + pause;
                let wait = async {
                    if is_out_of_descriptors(&e) {
                        shared.registry.freed(until, || None::<()>).await;
                    } else {
                        tokio::time::sleep_until(until).await;
                    }
                };
                tokio::select! {
                    () = wait => {}
                    () = shared.stop_accepting.cancelled() => break,
                }
                continue;
            }
        };
        // Before admission: a peer the hook refuses takes no place and evicts no idle client.
        if let Some(hook) = &shared.hooks.on_connection {
            if !hook(peer_addr, local_addr) {
                continue;
            }
        }
        // Full with nothing idle to purge: wait a moment for a place (once per ADMIT_WAIT: while
        // places stay taken, the queue is refused at once rather than a second at a time).
        let wait = match refused_at {
            Some(at) if at.elapsed() < ADMIT_WAIT => Duration::ZERO,
            _ => ADMIT_WAIT,
        };
        let admitted = tokio::select! {
            admitted = shared.registry.admit_within(wait) => admitted,
            () = shared.stop_accepting.cancelled() => break,
        };
        let guard = match admitted {
            Ok(guard) => {
                refused_at = None;
                if let Some(counters) = shared.registry.counters() {
                    counters.accepted();
                }
                guard
            }
            Err(Refused::Full) => {
                if let Some(counters) = shared.registry.counters() {
                    counters.refused();
                }
                tracing::debug!(%peer_addr, "max_connections reached; refusing");
                if !wait.is_zero() {
                    refused_at = Some(tokio::time::Instant::now());
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        limit_unsent(&stream);
        // Boxed until the first poll: tokio sizes the task's cell (in steps of 128 bytes) by the
        // largest state of its future, and this one is the largest.
        let task = Box::new(Connection {
            shared: shared.clone(),
            guard,
            peer_addr,
            local_addr,
            service: service.clone(),
        });
        tokio::spawn(async move {
            match mode {
                // Both stages boxed: the handshake's state is freed once it is done, and the
                // task itself stays a few pointers wide whichever stage it is in.
                Mode::Tls => {
                    if let Some(serve) = Box::pin(unbox(task).start_tls(stream)).await {
                        serve.await;
                    }
                }
                Mode::Plain => unbox(task).start_plain(stream).await,
            }
        });
    }
    drop(listener);
    shared.registry.wait_empty().await;
    Ok(())
}

/// The bounds `Server::serve` puts on a service, named once for the connection code (the
/// public signature spells them out).
pub(crate) trait AppService<B>:
    tower_service::Service<
        Request<Incoming>,
        Response = Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> AppService<B> for S where
    S: tower_service::Service<
            Request<Incoming>,
            Response = Response<B>,
            Future: Send + 'static,
            Error: Into<BoxError>,
        > + Clone
        + Send
        + 'static
{
}

/// The bounds `Server::serve` puts on a response body.
pub(crate) trait AppBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> AppBody for B where B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

/// Moves a value out of its box and frees the box (`Box::into_inner` is unstable).
#[allow(clippy::boxed_local)] // taking the box is the point: it is freed here
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

struct Connection<S> {
    shared: Arc<Shared>,
    guard: ConnGuard,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    service: S,
}

/// How long a new connection waits for a place at `max_connections` (LRU purge on, nothing idle
/// yet) before it is refused.
const ADMIT_WAIT: Duration = Duration::from_secs(1);

/// The most response bytes a connection keeps queued in the kernel beyond what the network
/// has taken (`TCP_NOTSENT_LOWAT`).
const UNSENT_LIMIT: u32 = 128 * 1024;

/// Caps the bytes a connection leaves unsent in its socket. Without it a peer that reads
/// slowly (or not at all) lets the kernel queue up to `tcp_wmem`'s maximum (4 MiB) of response
/// for it: a thousand such peers push the whole host's TCP memory into pressure, where every
/// connection, not only theirs, sees drops and retransmits (legitimate visitors' p99 was 4.8 s
/// under slowhttptest -X, nginx's likewise). Throughput to a peer that reads is unchanged: what
/// is in flight is not counted, only what waits behind it.
fn limit_unsent(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (stream, UNSENT_LIMIT);
}

/// Idle connections closed at a time when accept runs out of descriptors.
const DRAIN_ON_EMFILE: usize = 32;

fn is_out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs alike.
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// The accept loop's pause after a failed `accept` (out of file descriptors, most often).
#[derive(Debug, Default)]
struct AcceptBackoff {
    pause: Duration,
    failures: u64,
    /// Idle connections closed to free descriptors in this episode.
    drained: u64,
    warned: Option<tokio::time::Instant>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(20);
    const MAX: Duration = Duration::from_secs(1);
    const WARN_EVERY: Duration = Duration::from_secs(10);

    fn failed(&mut self, e: &io::Error) -> Duration {
        self.failures += 1;
        self.pause = if self.pause.is_zero() {
            Self::FIRST
        } else {
            (self.pause * 2).min(Self::MAX)
        };
        let now = tokio::time::Instant::now();
        if self
            .warned
            .is_none_or(|at| now.duration_since(at) >= Self::WARN_EVERY)
        {
            tracing::warn!(
                error = %e,
                failures = self.failures,
                "accept failed; pausing the accept loop {:?} (raise the file descriptor limit, \
                 ulimit -n, if it says too many open files)",
                self.pause
            );
            self.warned = Some(now);
        }
        self.pause
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting again");
        }
        *self = Self::default();
    }

    /// Idle connections were closed for descriptors: said once per 10 s with the count.
    fn drained(&mut self, n: usize) {
        self.drained += n as u64;
        let now = tokio::time::Instant::now();
        if self
            .warned
            .is_none_or(|at| now.duration_since(at) >= Self::WARN_EVERY)
        {
            tracing::warn!(
                closed = self.drained,
                "out of file descriptors: closing the least recently used idle connections to \
                 accept new ones (raise the limit, ulimit -n, to keep them)"
            );
            self.warned = Some(now);
        }
    }
}

/// Why a connection ended before its handshake completed.
enum Early {
    NoTls,
    Timeout,
    Proxy(io::Error),
    PlainHttp,
    SslV2,
    OldVersion(u16),
    BadHello(BadHello),
    Junk,
    Io(io::Error),
    /// A TLS-ALPN-01 validation handshake, answered.
    #[cfg(feature = "acme")]
    AcmeAnswered,
}

impl<S, B> Connection<S>
where
    // The binding names `B` for the impl (a trait parameter alone would leave it unconstrained).
    S: AppService<B, Response = Response<B>>,
    B: AppBody,
{
    /// The handshake, then the (boxed) future that serves the connection.
    async fn start_tls(
        mut self,
        stream: TcpStream,
    ) -> Option<Pin<Box<impl Future<Output = ()> + Send + 'static>>> {
        let (tls, info, http2) = self.handshake(stream).await?;
        Some(Box::pin(self.serve(tls, info, http2, tls_close_notify)))
    }

    /// PROXY header, first-bytes check, TLS handshake under the handshake timeout, and the
    /// `on_secure_connection` hook; `None` when the connection ends here. A socket dropped
    /// here after an alert lingers (see [`Socket`]), so the client reads the alert.
    async fn handshake(
        &mut self,
        stream: TcpStream,
    ) -> Option<(
        tokio_rustls::server::TlsStream<Socket>,
        ConnectionInfo,
        bool,
    )> {
        let shared = self.shared.clone();
        let conn = self.guard.conn.clone();
        let mut sni: Option<String> = None;
        let early = async {
            let mut stream = Socket::new(stream, conn.clone());
            let mut peer = self.peer_addr;
            let mut proxy = None;
            if shared.proxy_protocol {
                // A peer that could write its own header must not choose its address.
                let from = self.peer_addr.ip();
                if !shared
                    .proxy_protocol_from
                    .iter()
                    .any(|net| net.contains(from))
                {
                    return Err(Early::Proxy(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "PROXY header from {from}, which is not a trusted proxy (proxy_protocol_from)"
                        ),
                    )));
                }
                match proxy_protocol::read_header(stream.stream_mut()).await {
                    Ok(header) => {
                        peer = header.source.unwrap_or(peer);
                        proxy = Some(Box::new(header.info));
                    }
                    Err(e) => return Err(Early::Proxy(e)),
                }
            }
            screen(&mut stream, &shared).await?;
            let _permit = shared.handshakes.acquire().await;
            // Loaded per connection: a reload applies to connections accepted after it.
            let runtime = shared.tls.load_full().ok_or(Early::NoTls)?;
            let mut acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
            let start = match (&mut acceptor).await {
                Ok(start) => start,
                Err(e) => {
                    if let Some(alert) = unsent_hello_alert(&e) {
                        // rustls refused the ClientHello without queuing an alert.
                        if let Some(mut stream) = acceptor.take_io() {
                            let _ = sniff::refuse_hello(stream.stream_mut(), alert).await;
                        }
                    }
                    return Err(Early::Io(e));
                }
            };
            sni = start.client_hello().server_name().map(str::to_owned);
            #[cfg(feature = "acme")]
            if let Some(acme) = &shared.acme {
                if crate::acme::offers_acme_alpn(&start.client_hello()) {
                    if let Some(config) = acme
                        .challenges
                        .tls_alpn01_config(&runtime.config, sni.as_deref())
                    {
                        // RFC 8737: the validator only looks at the certificate, then closes.
                        let mut tls = start.into_stream(config).await.map_err(Early::Io)?;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                        return Err(Early::AcmeAnswered);
                    }
                }
            }
            let mut config = runtime.config.clone();
            if let Some(callback) = &runtime.tls.sni_callback {
                if let Some(name) = &sni {
                    if let Some(identity) = callback(name).await {
                        let mut chosen = (*config).clone();
                        chosen.cert_resolver = Arc::new(FixedIdentity(identity.key));
                        config = Arc::new(chosen);
                    }
                }
            }
            let tls = start.into_stream(config).await.map_err(Early::Io)?;
            Ok((tls, peer, proxy, runtime))
        };
        let timed = async {
            if shared.handshake_timeout.is_zero() {
                early.await
            } else {
                tokio::time::timeout(shared.handshake_timeout, early)
                    .await
                    .unwrap_or(Err(Early::Timeout))
            }
        };
        let result = tokio::select! {
            result = timed => result,
            () = conn.control_changed(true) => return None,
        };
        let (tls, peer, proxy, runtime) = match result {
            Ok(pair) => pair,
            #[cfg(feature = "acme")]
            Err(Early::AcmeAnswered) => {
                tracing::info!(
                    peer_addr = %self.peer_addr,
                    sni = sni.as_deref().unwrap_or("-"),
                    "ACME: answered a tls-alpn-01 validation"
                );
                return None;
            }
            #[cfg(feature = "acme")]
            Err(Early::Io(e)) if awaiting_acme(&shared, &e) => {
                let failure = Failure {
                    code: "ERR_SSL_HANDSHAKE_FAILURE",
                    message: "no certificate for this name yet: the ACME order has not completed \
                              (answered with alert access_denied)"
                        .to_owned(),
                    level: Level::Info,
                };
                shared.report(self.peer_addr, sni.as_deref(), failure);
                return None;
            }
            Err(early) => {
                if let (Early::Timeout, Some(counters)) = (&early, conn.counters()) {
                    counters.timeout(super::stats::TimeoutKind::Handshake);
                }
                shared.report(self.peer_addr, sni.as_deref(), describe_early(early));
                return None;
            }
        };
        self.peer_addr = peer;
        let tls_info = server_tls_info(
            tls.get_ref().1,
            runtime.tls.client_auth.as_deref(),
            runtime.tls.client_auth_enforced,
        );
        if let Some(counters) = conn.counters() {
            counters.handshake(tls_info.is_resumed());
        }
        let http2 = tls_info.alpn() == Some("h2");
        let info = ConnectionInfo::new(
            conn.id,
            self.peer_addr,
            self.local_addr,
            Some(tls_info),
            proxy,
        );
        if let Some(hook) = &shared.hooks.on_secure_connection {
            if !hook(&info) {
                return None;
            }
        }
        Some((tls, info, http2))
    }

    fn start_plain(self, stream: TcpStream) -> Pin<Box<impl Future<Output = ()> + Send + 'static>> {
        let info = ConnectionInfo::new(
            self.guard.conn.id,
            self.peer_addr,
            self.local_addr,
            None,
            None,
        );
        let socket = Socket::new(stream, self.guard.conn.clone());
        Box::pin(self.serve(socket, info, false, |_| {}))
    }

    /// Hands the connection to hyper. Not an `async fn`: the stream, the service and the
    /// connection details move into the boxed hyper connection here, so that the future that
    /// lives as long as the connection holds only that box and the registry's handles (an
    /// idle keep-alive connection's task stays a few hundred bytes).
    fn serve<I>(
        self,
        io: I,
        info: ConnectionInfo,
        http2: bool,
        close_notify: fn(&mut I),
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            shared,
            guard,
            service,
            ..
        } = self;
        let conn = guard.conn.clone();
        conn.set_phase(Phase::Head);
        let io = TokioIo::new(TimedIo::new(
            io,
            conn.clone(),
            shared.timeouts,
            http2,
            close_notify,
        ));
        let service = ConnService {
            inner: service,
            conn: conn.clone(),
            info,
            options: shared.service_options.clone(),
        };
        // Boxed, so that an HTTP/1 connection does not carry the size of an HTTP/2 one (and the
        // other way round) in its task.
        let (h1, h2) = if http2 {
            let c = Box::pin(shared.http2.serve_connection(io, service));
            (None, Some(c))
        } else {
            let c = Box::pin(shared.http1.serve_connection(io, service).with_upgrades());
            (Some(c), None)
        };
        async move {
            if let Some(mut c) = h2 {
                drive(
                    &mut c,
                    &conn,
                    |c| c.graceful_shutdown(),
                    Duration::ZERO,
                    Duration::ZERO,
                )
                .await;
            } else if let Some(c) = h1 {
                serve_http1(c, &shared, &conn).await;
            }
            drop(guard);
        }
    }
}

/// Looks at the first bytes before any TLS state exists, and answers what rustls would not
/// answer, or not answer well: plain HTTP, an SSL 2.0 hello, a TLS 1.0/1.1-only hello, a first
/// record no server may accept. `Ok` when the handshake should go on.
async fn screen(stream: &mut Socket, shared: &Shared) -> std::result::Result<(), Early> {
    let first = sniff::first_bytes(stream.stream())
        .await
        .map_err(Early::Io)?;
    if let Some(bad) = BadHello::of(first) {
        let _ = bad.refuse(stream.stream_mut()).await;
        return Err(Early::BadHello(bad));
    }
    match first {
        FirstBytes::Tls {
            legacy_version: Some(version),
            ..
        } if version < 0x0303 && sniff::is_pre_tls12_only(stream.stream()).await => {
            let _ = sniff::refuse_old_version(stream.stream_mut()).await;
            Err(Early::OldVersion(version))
        }
        FirstBytes::Tls { .. } => Ok(()),
        FirstBytes::SslV2Hello => {
            let _ = sniff::refuse_sslv2(stream.stream_mut()).await;
            Err(Early::SslV2)
        }
        FirstBytes::PlainHttp => {
            let _ = sniff::answer_plain_http(
                stream.stream_mut(),
                shared.plain_http_response,
                shared.https_port(),
            )
            .await;
            Err(Early::PlainHttp)
        }
        FirstBytes::Junk => Err(Early::Junk),
    }
}

/// The alert for a ClientHello rustls refused in its record layer, where it returns the error
/// before queuing an alert: one over 64 KiB (`HandshakePayloadTooLarge`, or, when record headers
/// push a hello just under the bound past its buffer, an I/O error with this text: rustls issue
/// 3176), or split by another record or by too many empty ones.
fn unsent_hello_alert(e: &io::Error) -> Option<sniff::HelloAlert> {
    use rustls::{InvalidMessage, PeerMisbehaved};
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge)) => {
            Some(sniff::HelloAlert::DecodeError)
        }
        Some(rustls::Error::PeerMisbehaved(
            PeerMisbehaved::MessageInterleavedWithHandshakeMessage
            | PeerMisbehaved::TooManyEmptyFragments,
        )) => Some(sniff::HelloAlert::UnexpectedMessage),
        Some(_) => None,
        None => (e.kind() == io::ErrorKind::InvalidData && e.to_string() == "message buffer full")
            .then_some(sniff::HelloAlert::DecodeError),
    }
}

/// Queues close_notify and writes it if the socket takes it now (a dropped stream cannot wait).
fn tls_close_notify(tls: &mut tokio_rustls::server::TlsStream<Socket>) {
    struct TryWrite<'a>(&'a TcpStream);
    impl io::Write for TryWrite<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.try_write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (socket, session) = tls.get_mut();
    session.send_close_notify();
    let mut out = TryWrite(socket.stream());
    while session.wants_write() {
        match session.write_tls(&mut out) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// How loudly a failed handshake is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Debug: clients that go away, plain HTTP on the TLS port (answered).
    Quiet,
    /// Info, rate-limited.
    Info,
    /// Warn, rate-limited: a client certificate refused.
    Warn,
}

struct Failure {
    code: &'static str,
    message: String,
    level: Level,
}

/// A handshake refused because ACME has not delivered the first certificate yet.
#[cfg(feature = "acme")]
fn awaiting_acme(shared: &Shared, e: &io::Error) -> bool {
    shared
        .acme
        .as_ref()
        .is_some_and(|acme| acme.current().is_none())
        && e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|tls| matches!(tls, rustls::Error::General(m) if m.contains("no server certificate")))
}

fn describe_early(early: Early) -> Failure {
    let failure = |code, message: &str, level| Failure {
        code,
        message: message.to_owned(),
        level,
    };
    match early {
        #[cfg(feature = "acme")]
        Early::AcmeAnswered => failure("", "tls-alpn-01 validation", Level::Quiet),
        Early::NoTls => failure(
            "ERR_SSL_HANDSHAKE_FAILURE",
            "no TLS configuration",
            Level::Info,
        ),
        Early::Timeout => failure(
            "ERR_TLS_HANDSHAKE_TIMEOUT",
            "TLS handshake timeout",
            Level::Info,
        ),
        Early::Proxy(e) => Failure {
            code: "ERR_PROXY_PROTOCOL",
            message: e.to_string(),
            level: Level::Info,
        },
        Early::PlainHttp => failure(
            "ERR_SSL_HTTP_REQUEST",
            "plain HTTP request sent to the TLS port",
            Level::Quiet,
        ),
        Early::SslV2 => failure(
            "ERR_SSL_UNSUPPORTED_PROTOCOL",
            "the client sent an SSL 2.0-format hello (a client from before TLS 1.2); answered \
             with alert protocol version",
            Level::Info,
        ),
        Early::OldVersion(version) => Failure {
            code: "ERR_SSL_UNSUPPORTED_PROTOCOL",
            message: format!(
                "the client offers only {} (TLS 1.2 is the minimum); answered with alert \
                 protocol version",
                match version {
                    0x0300 => "SSL 3.0",
                    0x0301 => "TLS 1.0",
                    0x0302 => "TLS 1.1",
                    _ => "versions older than TLS 1.2",
                }
            ),
            level: Level::Info,
        },
        Early::BadHello(bad) => Failure {
            code: match bad {
                BadHello::AncientVersion(_) => "ERR_SSL_UNSUPPORTED_PROTOCOL",
                BadHello::RecordOverflow(_) => "ERR_SSL_RECORD_OVERFLOW",
                BadHello::NotClientHello(_) => "ERR_SSL_UNEXPECTED_MESSAGE",
            },
            message: match bad {
                BadHello::AncientVersion(v) => format!(
                    "the client's hello says version {v:#06x}, older than SSL 3.1; answered with \
                     alert protocol version"
                ),
                BadHello::RecordOverflow(len) => format!(
                    "the client's first record is {len} bytes, over the 16384 TLS allows; \
                     answered with alert record overflow"
                ),
                BadHello::NotClientHello(kind) => format!(
                    "the client's first handshake message is of type {kind}, not a ClientHello; \
                     answered with alert unexpected message"
                ),
            },
            level: Level::Info,
        },
        Early::Junk => failure(
            "ERR_SSL_WRONG_VERSION_NUMBER",
            "the first bytes are not a TLS handshake",
            Level::Info,
        ),
        Early::Io(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Failure {
                code: failure::code(tls, Side::Server),
                message: failure::describe(tls, Side::Server),
                level: if crate::tls::verifier_error(tls).is_some() {
                    Level::Warn
                } else {
                    Level::Info
                },
            },
            None => match e.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe => Failure {
                    code: "ECONNRESET",
                    message: "the client closed the connection during the handshake".to_owned(),
                    level: Level::Quiet,
                },
                _ => Failure {
                    code: "ERR_SSL_HANDSHAKE_FAILURE",
                    message: e.to_string(),
                    level: Level::Info,
                },
            },
        },
    }
}

/// Lets through at most [`LogLimit::BURST`] lines per [`LogLimit::WINDOW`] and counts the rest,
/// so that a flood of bad handshakes cannot flood the log.
#[derive(Debug)]
pub(crate) struct LogLimit {
    epoch: Instant,
    /// Milliseconds since `epoch` when the current window began.
    window: std::sync::atomic::AtomicU64,
    in_window: std::sync::atomic::AtomicU32,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            window: Default::default(),
            in_window: Default::default(),
            suppressed: Default::default(),
        }
    }
}

impl LogLimit {
    const BURST: u32 = 20;
    const WINDOW: Duration = Duration::from_secs(10);

    /// `Some(lines suppressed since the last one let through)` when this line may be logged.
    fn admit(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.epoch.elapsed().as_millis() as u64;
        let start = self.window.load(Relaxed);
        if now.saturating_sub(start) >= Self::WINDOW.as_millis() as u64
            && self
                .window
                .compare_exchange(start, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.in_window.store(0, Relaxed);
        }
        if self.in_window.fetch_add(1, Relaxed) < Self::BURST {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn accept_failures_back_off_doubling_to_a_second_and_reset_on_success() {
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..8).map(|_| backoff.failed(&emfile)).collect();
        assert_eq!(pauses[0], Duration::from_millis(20));
        assert_eq!(pauses[1], Duration::from_millis(40));
        assert_eq!(pauses[5], Duration::from_millis(640));
        assert_eq!(pauses[6], Duration::from_secs(1));
        assert_eq!(pauses[7], Duration::from_secs(1));
        // Warned once for the burst (the next warning waits 10 s).
        let first_warning = backoff.warned.unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        backoff.failed(&emfile);
        assert!(backoff.warned.unwrap() > first_warning);
        backoff.succeeded();
        assert_eq!(backoff.failed(&emfile), Duration::from_millis(20));
    }
}

//! `portcullis serve`: check the flags and files, bind every listener, print where we listen,
//! serve them all from one `Server`, and shut down gracefully on SIGINT/SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use portcullis::server::Listener;
use portcullis::Server;
use tokio::task::JoinSet;
use tower::util::BoxCloneService;

use crate::access_log::{AccessLog, Format};
use crate::ServeArgs;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body every mode answers with.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;
/// The service every mode provides: cheap to clone, one per request.
pub type HttpService = BoxCloneService<Request<Incoming>, Response<Body>, BoxError>;

/// `Strict-Transport-Security` max-age for `--hsts`: one year.
const HSTS_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Runs `serve` to the end: exit code 2 for a bad flag or file, 1 for a failure while
/// serving, 0 after a graceful shutdown.
pub fn main(args: ServeArgs) -> ExitCode {
    // First: the passed descriptors are this process's to claim before anything opens files.
    let inherited = match crate::activation::take() {
        Ok(inherited) => inherited,
        Err(e) => {
            eprintln!("error: socket activation: {e:#}");
            return ExitCode::from(2);
        }
    };
    raise_fd_limit();
    let mut builder = match args.workers {
        Some(1) => {
            // One thread serves; the blocking pool (file watching and reading, off the serving
            // thread) is named apart.
            let mut builder = tokio::runtime::Builder::new_current_thread();
            builder.thread_name("blocking-pool");
            builder
        }
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(n));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let ready = match prepare(args, inherited).await {
            Ok(ready) => ready,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        match ready.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    // Connections left past the shutdown timeout were dropped; do not wait for stragglers.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// Raises the soft open-file limit to the hard one, as nginx's `worker_rlimit_nofile`: each
/// connection takes a descriptor, and a soft limit of 1024 (the usual default) caps a server
/// at about a thousand clients whatever its memory. Said in the log, once.
fn raise_fd_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let limit = getrlimit(Resource::Nofile);
        let (Some(soft), hard) = (limit.current, limit.maximum) else {
            return; // unlimited already
        };
        let target = hard.unwrap_or(u64::MAX).min(1 << 20);
        if soft >= target {
            return;
        }
        let raised = rustix::process::Rlimit {
            current: Some(target),
            maximum: hard,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!("open-file limit raised from {soft} to {target} (the hard limit)")
            }
            Err(e) => {
                tracing::warn!("open-file limit stays at {soft}: cannot raise it to {target}: {e}")
            }
        }
    }
}

/// Everything checked and bound, not yet serving.
struct Ready {
    tls_args: crate::tls_flags::TlsArgs,
    server: Server,
    service: HttpService,
    tls: Vec<Listener>,
    plain: Option<Listener>,
    redirect: bool,
    access_log: Option<Arc<AccessLog>>,
    local_ca: Option<PathBuf>,
    shutdown_timeout: Duration,
    shutdown_delay: Option<Duration>,
    metrics: Option<Listener>,
}

/// Checks the flags and files, builds the server and binds the listeners. Every error here is
/// the user's to fix (exit code 2) and names the flag or file.
async fn prepare(
    args: ServeArgs,
    inherited: Option<crate::activation::Inherited>,
) -> anyhow::Result<Ready> {
    if args.dir.is_none() && args.files.any() {
        bail!("the static-file options (--spa, --browse, --cache, --cors, ...) need DIR");
    }
    if args.dir.is_some() && args.proxy.takes_everything() {
        bail!(
            "DIR and --proxy URL both want every path; give the proxy a prefix: --proxy /api=URL"
        );
    }
    let files = match &args.dir {
        Some(dir) => {
            let meta = std::fs::metadata(dir)
                .with_context(|| format!("DIR {}: cannot serve it", dir.display()))?;
            if !meta.is_dir() {
                bail!("DIR {}: not a directory", dir.display());
            }
            Some(args.files.service(dir.clone())?)
        }
        None => None,
    };
    let service = match (files, args.proxy.any()) {
        (files, true) => args.proxy.service(files)?,
        (Some(files), false) => files,
        (None, false) => crate::hello::service(),
    };
    if args.access_log_max_size.is_some() && matches!(args.access_log.as_str(), "-" | "off") {
        bail!("--access-log-max-size needs --access-log FILE");
    }
    let access_log = AccessLog::open(
        &args.access_log,
        Format::parse(&args.log_format),
        args.access_log_max_size.map(|n| n as u64),
    )?;
    let service = match &access_log {
        Some(log) => crate::access_log::layer(service, log.clone()),
        None => service,
    };

    let mut args = args;
    let acme = args.acme.config()?;
    if let Some(acme) = &acme {
        args.tls.acme = true;
        // A public name: the standard ports unless told otherwise, as Caddy does.
        if !args.listen_given {
            args.listen = vec!["[::]:443".to_owned()];
        }
        if args.http_listen.is_none() {
            args.http_listen = Some("[::]:80".to_owned());
            args.redirect = true;
        }
        eprintln!(
            "ACME: certificate for {} from {}, kept in {}",
            acme.domains().join(", "),
            args.acme
                .acme_directory
                .as_deref()
                .unwrap_or(if args.acme.acme_staging {
                    portcullis::acme::LETS_ENCRYPT_STAGING
                } else {
                    portcullis::acme::LETS_ENCRYPT
                }),
            acme.storage_dir().display()
        );
    }
    let (tls_config, local_ca) = args.tls.build()?;

    let mut builder = Server::builder()
        .tls(tls_config)
        .http2(!args.no_http2)
        .enable_connect_protocol(args.proxy.any())
        .lru_purge(!args.no_lru_purge)
        .proxy_protocol(args.proxy_protocol)
        .shutdown_timeout(args.shutdown_timeout)
        .stats(args.metrics.is_some());
    if !args.proxy_protocol_from.is_empty() {
        builder = builder.proxy_protocol_from(args.proxy_protocol_from.iter().copied());
    }
    if args.hsts {
        builder = builder.hsts(HSTS_MAX_AGE);
    }
    if args.max_header_size == Some(0) {
        bail!("--max-header-size must be above zero");
    }
    if let Some(t) = args.headers_timeout {
        builder = builder.headers_timeout(t);
    }
    if let Some(t) = args.request_timeout {
        builder = builder.request_timeout(t);
    }
    if let Some(t) = args.keep_alive_timeout {
        builder = builder.keep_alive_timeout(t);
    }
    if let Some(t) = args.idle_timeout {
        builder = builder.inactivity_timeout(t);
    }
    if let Some(t) = args.release_idle_after {
        builder = builder.release_idle_buffers_after(t);
    }
    if let Some(t) = args.handshake_timeout {
        builder = builder.handshake_timeout(t);
    }
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(n) = args.backlog {
        builder = builder.backlog(n);
    }
    if let Some(n) = args.max_header_size {
        builder = builder.max_header_size(n);
    }
    builder = builder.max_headers_count(args.max_headers_count);
    if let Some(n) = args.max_requests_per_socket {
        builder = builder.max_requests_per_socket(n);
    }
    if let Some(acme) = acme {
        builder = builder.acme(acme);
    }
    let server = builder.build().context("server configuration")?;

    let (mut tls, mut plain) = (Vec::new(), None);
    if let Some(inherited) = inherited {
        // The supervisor's sockets stand for --listen (and --http-listen, for one named http).
        for listener in inherited.https {
            tls.push(Listener::from_std(listener).context("socket activation")?);
        }
        if let Some(listener) = inherited.http {
            plain = Some(Listener::from_std(listener).context("socket activation")?);
        }
        tracing::info!(
            https = tls.len(),
            http = plain.is_some(),
            "serving the sockets passed by socket activation"
        );
    } else {
        for addr in &args.listen {
            tls.push(bind(&server, "--listen", addr).await?);
        }
    }
    let plain = match &args.http_listen {
        _ if plain.is_some() => plain.take(),
        Some(addr) => Some(bind(&server, "--http-listen", addr).await?),
        None => None,
    };

    if args.redirect && plain.is_none() {
        bail!("--redirect needs a plain-HTTP listener: --http-listen ADDR:PORT");
    }
    let metrics = match &args.metrics {
        Some(addr) => Some(bind(&server, "--metrics", addr).await?),
        None => None,
    };
    Ok(Ready {
        tls_args: args.tls,
        server,
        service,
        tls,
        plain,
        redirect: args.redirect,
        access_log,
        local_ca,
        shutdown_timeout: args.shutdown_timeout,
        shutdown_delay: args.shutdown_delay.filter(|d| !d.is_zero()),
        metrics,
    })
}

impl Ready {
    /// Prints the listening lines, serves every listener and returns after a graceful
    /// shutdown; an error means a listener failed while serving.
    async fn run(self) -> anyhow::Result<()> {
        // Listen for signals before announcing the listeners, so none is missed.
        let mut signals = Signals::new().context("cannot install the signal handlers")?;
        let handle = self.server.handle();

        if let (Some(ca), Some(first)) = (&self.local_ca, self.tls.first()) {
            let ca = ca.display();
            let port = first.local_addr().port();
            eprintln!("local CA: {ca} (curl --cacert {ca} https://localhost:{port}/)");
        }
        let mut out = std::io::stdout().lock();
        for listener in &self.tls {
            writeln!(out, "listening on https://{}", listener.local_addr())?;
        }
        if let Some(listener) = &self.plain {
            writeln!(out, "listening on http://{}", listener.local_addr())?;
        }
        if let Some(listener) = &self.metrics {
            writeln!(out, "metrics on http://{}/metrics", listener.local_addr())?;
        }
        out.flush()?;
        drop(out);

        // Redirects point at the first TLS listener.
        let https_port = self.tls.first().map_or(443, |l| l.local_addr().port());
        tokio::spawn(crate::reload::watch(handle.clone(), self.tls_args));
        tokio::spawn(crate::trim::watch(handle.clone()));
        if let Some(listener) = self.metrics {
            // Not among `tasks`: it keeps answering (/readyz 503) while the server drains.
            tokio::spawn(crate::metrics::serve(listener, handle.clone()));
        }
        #[cfg(unix)]
        if let Some(log) = self.access_log.clone() {
            tokio::spawn(reopen_on_sigusr1(log));
        }
        let mut tasks = JoinSet::new();
        for listener in self.tls {
            let (server, service) = (self.server.clone(), self.service.clone());
            let name = format!("https://{}", listener.local_addr());
            tasks.spawn(async move { (name, server.serve(listener, service).await) });
        }
        if let Some(listener) = self.plain {
            let name = format!("http://{}", listener.local_addr());
            let server = self.server.clone();
            if self.redirect {
                // The redirects go through the access log too.
                let redirect = server.redirect(Some(https_port));
                let service: HttpService = match &self.access_log {
                    Some(log) => crate::access_log::layer(boxed(redirect), log.clone()),
                    None => boxed(redirect),
                };
                tasks.spawn(async move { (name, server.serve_http(listener, service).await) });
            } else {
                let service = self.service.clone();
                tasks.spawn(async move { (name, server.serve_http(listener, service).await) });
            }
        }

        let mut first = None;
        let mut failure = tokio::select! {
            signal = signals.recv() => {
                first = Some(signal);
                None
            }
            Some(joined) = tasks.join_next() => Some(listener_failure(joined)),
        };

        if let (Some(signal), Some(delay)) = (first, self.shutdown_delay) {
            tracing::info!(
                "{signal}: draining for {} before closing the listeners (/readyz says 503, \
                 responses say Connection: close)",
                humantime::format_duration(delay)
            );
            handle.drain();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                again = signals.recv() => {
                    tracing::info!("{again} while draining: closing the listeners now");
                }
                Some(joined) = tasks.join_next() => failure = Some(listener_failure(joined)),
            }
        }
        if let Some(signal) = first {
            tracing::info!(
                "{signal}: shutting down (in-flight requests get up to {})",
                humantime::format_duration(self.shutdown_timeout)
            );
        }
        let close = handle.close();
        tokio::pin!(close);
        tokio::select! {
            () = &mut close => {}
            signal = signals.recv() => {
                match first {
                    Some(first) if first == signal => {
                        tracing::warn!("{signal} again: dropping every connection now");
                    }
                    Some(first) => tracing::warn!(
                        "{signal} after {first}: dropping every connection now"
                    ),
                    None => tracing::warn!("{signal}: dropping every connection now"),
                }
                handle.close_all_connections();
                close.await;
            }
        }
        // close() returned with no connection left, so the accept loops end promptly.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        match failure {
            Some(e) => Err(e),
            None => {
                tracing::info!("shut down");
                Ok(())
            }
        }
    }
}

/// Why a listener's task ended before the shutdown.
fn listener_failure(
    joined: Result<(String, portcullis::Result<()>), tokio::task::JoinError>,
) -> anyhow::Error {
    match joined {
        Ok((name, Ok(()))) => anyhow::anyhow!("{name} stopped serving"),
        Ok((name, Err(e))) => anyhow::Error::new(e).context(format!("serving {name}")),
        Err(e) => anyhow::Error::new(e).context("a listener task failed"),
    }
}

/// Binds the listener `flag` asks for; the error names the flag and, for a port below 1024,
/// what to do about privileges.
async fn bind(server: &Server, flag: &str, addr: &str) -> anyhow::Result<Listener> {
    server
        .bind(addr)
        .await
        .map_err(|e| low_port_hint(e, addr))
        .with_context(|| format!("{flag} {addr}"))
}

/// A bind error, with what to do when a port below 1024 needs privileges.
fn low_port_hint(e: portcullis::Error, addr: &str) -> anyhow::Error {
    let privileged = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .is_some_and(|p| p != 0 && p < 1024);
    let denied = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
    if privileged && denied {
        anyhow::Error::new(e).context(
            "ports below 1024 need root or the capability: sudo setcap \
             cap_net_bind_service=+ep \"$(command -v portcullis)\" (or give --listen/--http-listen \
             a high port that the firewall forwards 443/80 to)",
        )
    } else {
        anyhow::Error::new(e)
    }
}

/// logrotate's `postrotate kill -USR1`: the access log file is opened again by its name.
#[cfg(unix)]
async fn reopen_on_sigusr1(log: Arc<AccessLog>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        tracing::warn!("cannot listen for SIGUSR1: the access log will not be reopened");
        return;
    };
    while usr1.recv().await.is_some() {
        match log.reopen() {
            Ok(()) => tracing::info!("SIGUSR1: access log reopened"),
            Err(e) => tracing::warn!("SIGUSR1: cannot reopen the access log: {e}"),
        }
    }
}

/// A service of any body, as the one every mode provides.
fn boxed<S, B>(service: S) -> HttpService
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    use tower::ServiceExt;
    BoxCloneService::new(
        service
            .map_response(|res: Response<B>| res.map(|b| b.map_err(Into::into).boxed_unsync()))
            .map_err(Into::into),
    )
}

/// SIGINT and SIGTERM, installed when created.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal and names it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// A complete body from bytes.
pub fn full(data: Bytes) -> Body {
    Full::new(data).map_err(|e| match e {}).boxed_unsync()
}

/// A short plain-text response.
pub fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut res = Response::new(full(Bytes::from_static(message.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

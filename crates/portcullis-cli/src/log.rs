//! Logging: the tracing subscriber (stderr, `RUST_LOG`) and the per-request log line.

use std::io::IsTerminal;
use std::time::Instant;

use http::Request;
use hyper::body::Incoming;
use portcullis::ConnectionInfo;
use tower::util::BoxCloneService;
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;

use crate::serve::HttpService;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init() {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(e) => {
            if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
                eprintln!("warning: ignoring RUST_LOG: {e}");
            }
            EnvFilter::new("info")
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Wraps `inner` so that each request is logged at info level once its response head is
/// ready: peer, method, path, HTTP version, status and time taken.
pub fn requests(inner: HttpService) -> HttpService {
    if !tracing::enabled!(tracing::Level::INFO) {
        // RUST_LOG=warn or quieter: nothing would be logged, so nothing is measured.
        return inner;
    }
    BoxCloneService::new(tower::service_fn(move |req: Request<Incoming>| {
        let inner = inner.clone();
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let version = req.version();
        let peer = req
            .extensions()
            .get::<ConnectionInfo>()
            .map(ConnectionInfo::peer_addr);
        async move {
            let result = inner.oneshot(req).await;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let peer = peer.map(tracing::field::display);
            match &result {
                Ok(res) => tracing::info!(
                    peer,
                    %method,
                    %path,
                    ?version,
                    status = res.status().as_u16(),
                    ms = format_args!("{ms:.1}"),
                    "request"
                ),
                Err(error) => tracing::warn!(
                    peer,
                    %method,
                    %path,
                    ?version,
                    %error,
                    ms = format_args!("{ms:.1}"),
                    "request failed"
                ),
            }
            result
        }
    }))
}

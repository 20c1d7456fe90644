//! `serve --metrics ADDR`: Prometheus metrics, `/healthz` and `/readyz` on a plain-HTTP
//! listener of their own.
//!
//! The server counts with relaxed atomics where things happen (`ServerBuilder::stats`); a
//! scrape takes one snapshot (`ServerHandle::stats`) and a prometheus-client collector writes
//! it in the Prometheus text format. Nothing is locked on the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use portcullis::server::Listener;
use portcullis::{Server, ServerHandle};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tower::util::BoxCloneService;

use crate::serve::{full, text, BoxError, HttpService};

/// TLS configuration reloads (SIGHUP or a changed file), by outcome.
#[derive(Debug, Default)]
pub struct Reloads {
    succeeded: AtomicU64,
    failed: AtomicU64,
}

impl Reloads {
    pub fn count(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.succeeded
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The process's reloads (one server per process).
pub static RELOADS: Reloads = Reloads {
    succeeded: AtomicU64::new(0),
    failed: AtomicU64::new(0),
};

/// Serves the metrics listener until the process ends. It is a server of its own: closing the
/// main server (draining) leaves it answering, `/readyz` with 503.
pub async fn serve(listener: Listener, main: ServerHandle) {
    let server = match Server::builder().build() {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("metrics listener: {e}");
            return;
        }
    };
    let addr = listener.local_addr();
    if let Err(e) = server.serve_http(listener, service(main)).await {
        tracing::error!("metrics listener {addr} stopped: {e}");
    }
}

fn service(main: ServerHandle) -> HttpService {
    let mut registry = Registry::with_prefix("portcullis");
    registry.register_collector(Box::new(ServerCollector {
        handle: main.clone(),
    }));
    let registry = std::sync::Arc::new(registry);
    BoxCloneService::new(tower::service_fn(move |req: Request<Incoming>| {
        let (main, registry) = (main.clone(), registry.clone());
        async move { Ok::<_, BoxError>(respond(&req, &main, &registry)) }
    }))
}

fn respond<B>(
    req: &Request<B>,
    main: &ServerHandle,
    registry: &Registry,
) -> Response<crate::serve::Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut body = String::with_capacity(4096);
            if prometheus_client::encoding::prometheus_text::encode(&mut body, registry).is_err() {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode the metrics\n",
                );
            }
            let mut res = Response::new(full(Bytes::from(body)));
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            res
        }
        // The process answers: liveness.
        "/healthz" => text(StatusCode::OK, "ok\n"),
        // Taking new connections: a load balancer sends traffic elsewhere once this fails.
        "/readyz" if main.is_closing() => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/readyz" => text(StatusCode::OK, "ready\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        ),
    }
}

/// Writes one snapshot of the server's counters at each scrape.
#[derive(Debug)]
struct ServerCollector {
    handle: ServerHandle,
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.handle.stats();
        let c = s.connections;
        gauges(
            &mut encoder,
            "connections",
            "Open connections by state (released: idle with only the TLS stream kept).",
            "state",
            [
                ("handshaking", c.handshaking as i64),
                ("active", c.active as i64),
                ("idle", c.idle as i64),
                ("released", c.released as i64),
            ],
        )?;
        counter(
            &mut encoder,
            "connections_accepted",
            "Connections accepted.",
            s.accepted,
        )?;
        counter(
            &mut encoder,
            "connections_refused",
            "Connections refused at max_connections with nothing idle to purge.",
            s.refused,
        )?;
        counter(
            &mut encoder,
            "connections_purged",
            "Idle connections closed to make room (LRU purge, out of descriptors).",
            s.purged,
        )?;
        counters(
            &mut encoder,
            "tls_handshakes",
            "Completed TLS handshakes, full or resumed.",
            "result",
            [
                ("full", s.handshakes_full),
                ("resumed", s.handshakes_resumed),
            ],
        )?;
        counters(
            &mut encoder,
            "tls_handshake_failures",
            "Connections that ended before or in their TLS handshake, by Node error code.",
            "code",
            s.handshake_failures.iter().map(|(code, n)| (*code, *n)),
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "http_responses",
                "Responses begun, by HTTP version and status class.",
                None,
                MetricType::Counter,
            )?;
            for ((version, class), n) in &s.requests {
                let labels = [("version", *version), ("status", *class)];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        let t = s.timeouts;
        counters(
            &mut encoder,
            "timeouts",
            "Timeouts that ended a request or a connection, by kind.",
            "kind",
            [
                ("headers", t.headers),
                ("request", t.request),
                ("keep_alive", t.keep_alive),
                ("handshake", t.handshake),
                ("idle", t.idle),
            ],
        )?;
        counter(
            &mut encoder,
            "received_bytes",
            "Bytes read from client sockets (TLS records included).",
            s.bytes_in,
        )?;
        counter(
            &mut encoder,
            "sent_bytes",
            "Bytes written to client sockets (TLS records included).",
            s.bytes_out,
        )?;
        let now = SystemTime::now();
        gauges(
            &mut encoder,
            "certificate_expiry_seconds",
            "Seconds until each served certificate's notAfter (negative once expired).",
            "identity",
            s.certificates.iter().map(|cert| {
                let left = match cert.not_after.duration_since(now) {
                    Ok(d) => d.as_secs() as i64,
                    Err(e) => -(e.duration().as_secs() as i64),
                };
                (cert.identity.as_str(), left)
            }),
        )?;
        counters(
            &mut encoder,
            "tls_reloads",
            "TLS configuration reloads (SIGHUP or a changed file), by result.",
            "result",
            [
                ("success", RELOADS.succeeded.load(Ordering::Relaxed)),
                ("failure", RELOADS.failed.load(Ordering::Relaxed)),
            ],
        )?;
        Ok(())
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, n: u64) -> std::fmt::Result {
    let c = ConstCounter::new(n);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// One metric family with one label, a sample per value.
fn family<'a, M: EncodeMetric>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (&'a str, M)>,
    metric_type: MetricType,
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, metric_type)?;
    for (value, metric) in samples {
        metric.encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

fn counters<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let samples = values.into_iter().map(|(v, n)| (v, ConstCounter::new(n)));
    family(e, name, help, label, samples, MetricType::Counter)
}

fn gauges<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, i64)>,
) -> std::fmt::Result {
    let samples = values.into_iter().map(|(v, n)| (v, ConstGauge::new(n)));
    family(e, name, help, label, samples, MetricType::Gauge)
}

//! `Agent`: Node's `https.Agent` — a cheap-to-clone handle on a socket pool and a TLS session
//! cache, with Node's options and defaults.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};
use http::{Method, Request};

use super::connect::{self, ConnectOptions, Sender, SessionCaches, Target, TlsSetup};
use super::pool::{Limits, Pool};
use super::proxy::Proxy;
use super::request::{RequestBody, RequestBuilder};
use super::response::{Response, ResponseBody, DEFAULT_BODY_LIMIT};
use crate::error::{Error, Kind, Result};
use crate::tls::ClientTlsOptions;

/// Which free socket a request takes: Node's `scheduling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Scheduling {
    /// The most recently used (keeps few sockets warm). Node's default.
    #[default]
    Lifo,
    /// The least recently used (spreads requests over sockets).
    Fifo,
}

/// Node's `https.Agent`. Cheap to clone: clones share the pool and the session cache.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    keep_alive: bool,
    timeout: Option<Duration>,
    pool: Arc<Pool>,
    sessions: SessionCaches,
    connect: ConnectOptions,
    /// The agent's TLS options and their pool key, computed once.
    tls: Arc<ClientTlsOptions>,
    tls_key: Arc<str>,
    configs: std::sync::Mutex<ConfigCache>,
}

/// Built rustls configs by TLS options key, the oldest dropped beyond [`CONFIG_CACHE`].
#[derive(Default)]
struct ConfigCache {
    map: HashMap<Arc<str>, TlsSetup>,
    order: std::collections::VecDeque<Arc<str>>,
}

/// Most rustls client configs an agent keeps: one per distinct set of per-request TLS options
/// (requests with the agent's own options share one).
const CONFIG_CACHE: usize = 32;

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("keep_alive", &self.inner.keep_alive)
            .field("timeout", &self.inner.timeout)
            .field("sockets", &self.inner.pool.total())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Agent`]. Defaults are Node's `new https.Agent()`.
#[derive(Debug, Clone)]
pub struct AgentBuilder {
    keep_alive: bool,
    keep_alive_msecs: Duration,
    max_sockets: usize,
    max_total_sockets: usize,
    max_free_sockets: usize,
    scheduling: Scheduling,
    timeout: Option<Duration>,
    max_cached_sessions: usize,
    tls: ClientTlsOptions,
    http2: bool,
    local_address: Option<IpAddr>,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    resolve: HashMap<(String, u16), SocketAddr>,
    proxy: Option<Proxy>,
}

impl Default for AgentBuilder {
    fn default() -> Self {
        Self {
            keep_alive: false,
            keep_alive_msecs: Duration::from_millis(1000),
            max_sockets: usize::MAX,
            max_total_sockets: usize::MAX,
            max_free_sockets: 256,
            scheduling: Scheduling::Lifo,
            timeout: None,
            max_cached_sessions: 100,
            tls: ClientTlsOptions::new(),
            http2: false,
            local_address: None,
            connect_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(30),
            resolve: HashMap::new(),
            proxy: Proxy::from_env(),
        }
    }
}

impl AgentBuilder {
    /// Node's `keepAlive`: keep sockets for later requests (`Connection: keep-alive`).
    /// Default: false (each socket is closed after its response, but TLS sessions are still
    /// cached and resumed).
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.keep_alive = on;
        self
    }

    /// Node's `keepAliveMsecs`: TCP keep-alive initial delay. Default: 1000 ms.
    pub fn keep_alive_msecs(mut self, delay: Duration) -> Self {
        self.keep_alive_msecs = delay;
        self
    }

    /// Node's `maxSockets`: sockets per origin (pool key); more requests queue in order.
    /// Default: unlimited.
    pub fn max_sockets(mut self, n: usize) -> Self {
        self.max_sockets = n.max(1);
        self
    }

    /// Node's `maxTotalSockets`: sockets over all origins. Default: unlimited.
    pub fn max_total_sockets(mut self, n: usize) -> Self {
        self.max_total_sockets = n.max(1);
        self
    }

    /// Node's `maxFreeSockets`: idle sockets kept per origin. Default: 256.
    pub fn max_free_sockets(mut self, n: usize) -> Self {
        self.max_free_sockets = n;
        self
    }

    /// Node's `scheduling`. Default: LIFO.
    pub fn scheduling(mut self, scheduling: Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    /// Node's `timeout`: how long a free socket may stay idle before it is closed; a
    /// server's `Keep-Alive: timeout=N` shortens it to N−1 s (and N ≤ 1 means "do not pool").
    /// Default: none (the hint is then ignored, as in Node).
    pub fn free_socket_timeout(mut self, idle: Duration) -> Self {
        self.timeout = Some(idle);
        self
    }

    /// The former name of [`free_socket_timeout`](Self::free_socket_timeout).
    #[deprecated(note = "use free_socket_timeout: `timeout` meant three things across the API")]
    pub fn timeout(self, idle: Duration) -> Self {
        self.free_socket_timeout(idle)
    }

    /// Node's `maxCachedSessions`: TLS sessions kept (one per origin key), oldest evicted
    /// first; 0 disables resumption. Default: 100.
    pub fn max_cached_sessions(mut self, n: usize) -> Self {
        self.max_cached_sessions = n;
        self
    }

    /// TLS options for every request of this agent.
    pub fn tls(mut self, tls: ClientTlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`); an h2 connection is shared by concurrent
    /// requests. Default: off (HTTP/1.1, as Node's https module).
    pub fn http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }

    /// Node's `localAddress`: the address to connect from.
    pub fn local_address(mut self, addr: IpAddr) -> Self {
        self.local_address = Some(addr);
        self
    }

    /// Time allowed for the TCP connect, and a proxy's answer to CONNECT (`ETIMEDOUT`).
    /// Default: 30 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the TLS handshake (`ERR_TLS_HANDSHAKE_TIMEOUT`). Default: 30 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// curl's `--resolve`: connect to `addr` for `host:port` (the name still drives SNI and
    /// the certificate check).
    pub fn resolve(mut self, host: impl Into<String>, port: u16, addr: SocketAddr) -> Self {
        self.resolve.insert((host.into(), port), addr);
        self
    }

    /// Tunnel HTTPS through this proxy. Default: `HTTPS_PROXY`/`https_proxy` with `NO_PROXY`.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Connect directly, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = None;
        self
    }

    /// Builds the agent, checking its TLS options now: an unusable CA certificate or client
    /// identity, an unknown cipher suite or an impossible version range is reported here
    /// instead of at the first request. The TLS configuration is built on the spot (the system
    /// store read, when asked for) and kept for the requests to come.
    ///
    /// # Errors
    /// The configuration error the first request would otherwise fail with.
    pub fn build(self) -> Result<Agent> {
        let agent = self.assemble();
        let (config, authorize) = agent.inner.tls.build()?;
        let setup = TlsSetup {
            config: Arc::new(config),
            authorize,
        };
        let mut cache = agent
            .inner
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache.order.push_back(agent.inner.tls_key.clone());
        cache.map.insert(agent.inner.tls_key.clone(), setup);
        drop(cache);
        Ok(agent)
    }

    /// The agent, its TLS configuration built when a request first needs it: for the agents
    /// the library makes with default options, which cannot fail to build.
    pub(crate) fn assemble(self) -> Agent {
        let limits = Limits {
            max_sockets: self.max_sockets,
            max_total_sockets: self.max_total_sockets,
            max_free_sockets: self.max_free_sockets,
            scheduling: self.scheduling,
        };
        Agent {
            inner: Arc::new(Inner {
                keep_alive: self.keep_alive,
                timeout: self.timeout,
                pool: Pool::new(limits),
                sessions: SessionCaches::new(self.max_cached_sessions),
                tls_key: self.tls.pool_key().into(),
                tls: Arc::new(self.tls),
                connect: ConnectOptions {
                    http2: self.http2,
                    local_address: self.local_address,
                    keep_alive_msecs: self.keep_alive_msecs,
                    connect_timeout: self.connect_timeout,
                    handshake_timeout: self.handshake_timeout,
                    resolve: Arc::new(self.resolve),
                    proxy: self.proxy,
                },
                configs: std::sync::Mutex::new(ConfigCache::default()),
            }),
        }
    }
}

impl Agent {
    /// Starts configuring an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// A request with this agent.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(Some(self.clone()), method, url)
    }

    /// A GET with this agent.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A POST with this agent; give the body with `body`, `json` or `form`.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT with this agent.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A DELETE with this agent.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// Sockets open (free and busy) over all origins.
    pub fn sockets(&self) -> usize {
        self.inner.pool.total()
    }

    /// Free sockets kept for reuse over all origins (the sizes of Node's `agent.freeSockets`).
    pub fn free_sockets(&self) -> usize {
        self.inner.pool.free()
    }

    /// Requests waiting for a socket over all origins (the sizes of Node's `agent.requests`).
    pub fn queued_requests(&self) -> usize {
        self.inner.pool.waiting()
    }

    /// TLS sessions cached (origins).
    pub fn cached_sessions(&self) -> usize {
        self.inner.sessions.len()
    }

    /// The rustls config for `tls`, built on a blocking thread the first time (it may read the
    /// system's certificate store) and kept in a bounded cache.
    async fn config_for(
        &self,
        tls: &Arc<ClientTlsOptions>,
        tls_key: &Arc<str>,
    ) -> Result<TlsSetup> {
        if let Some(setup) = self.cached_config(tls_key) {
            return Ok(setup);
        }
        let options = tls.clone();
        let built = tokio::task::spawn_blocking(move || options.build())
            .await
            .map_err(|e| Error::config(format!("building the TLS configuration failed: {e}")))?;
        let (config, authorize) = built?;
        let setup = TlsSetup {
            config: Arc::new(config),
            authorize,
        };
        let mut cache = self.inner.configs.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.map.contains_key(tls_key) {
            if cache.order.len() >= CONFIG_CACHE {
                if let Some(oldest) = cache.order.pop_front() {
                    cache.map.remove(&oldest);
                }
            }
            cache.order.push_back(tls_key.clone());
            cache.map.insert(tls_key.clone(), setup.clone());
        }
        Ok(setup)
    }

    fn cached_config(&self, tls_key: &str) -> Option<TlsSetup> {
        let cache = self.inner.configs.lock().unwrap_or_else(|e| e.into_inner());
        cache.map.get(tls_key).cloned()
    }

    /// How many rustls configs the agent holds: for tests.
    #[doc(hidden)]
    pub fn cached_configs(&self) -> usize {
        self.inner
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub(crate) async fn execute(&self, req: RequestBuilder) -> Result<Response> {
        if let Some(e) = req.error {
            return Err(e);
        }
        let uri = req.url.map_err(Error::config)?;
        let https = match uri.scheme_str() {
            Some("https") | None => true,
            Some("http") => false,
            Some(other) => return Err(Error::config(format!("unsupported URL scheme {other:?}"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::config(format!("URL {uri} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = Target { https, host, port };

        // The agent's own options and key are shared; per-request options are keyed here.
        let (tls, tls_key): (Arc<ClientTlsOptions>, Arc<str>) = match req.tls {
            Some(tls) => {
                let key = tls.pool_key().into();
                (Arc::new(tls), key)
            }
            None => (self.inner.tls.clone(), self.inner.tls_key.clone()),
        };
        let connect = &self.inner.connect;
        let mut servername = tls.servername.clone();
        // Node's servername default follows the Host header when one is given.
        if servername.is_none() {
            if let Some(h) = req.headers.get(HOST).and_then(|h| h.to_str().ok()) {
                let name = h
                    .parse::<http::uri::Authority>()
                    .map(|a| a.host().to_owned())
                    .unwrap_or_default();
                let name = name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                if !name.is_empty() && name != target.host {
                    servername = Some(if name.parse::<IpAddr>().is_ok() {
                        String::new()
                    } else {
                        name
                    });
                }
            }
        }
        let key = format!(
            "{}:{}:{}:{}:{}:{}:{}",
            target.host,
            target.port,
            connect
                .local_address
                .map(|a| a.to_string())
                .unwrap_or_default(),
            https,
            connect.http2,
            tls_key,
            servername.as_deref().unwrap_or("\u{0}"),
        );
        let config = if https {
            Some(self.config_for(&tls, &tls_key).await?)
        } else {
            None
        };

        // The lease holds this request's place in the pool from here on: whatever ends the
        // request early (an error, a timeout, an abort) gives the place back.
        let mut lease = self.inner.pool.checkout(&key, https && connect.http2).await;
        let reused = lease.conn().is_some();
        if !reused {
            let conn = match &config {
                Some(config) => {
                    connect::connect(
                        &target,
                        connect,
                        servername.as_deref(),
                        config,
                        &self.inner.sessions,
                        &key,
                    )
                    .await?
                }
                None => connect::connect_plain(&target, connect).await?,
            };
            lease.attach(conn);
        }
        let Some(conn) = lease.conn_mut() else {
            unreachable!("a connection was attached above");
        };

        let mut builder = Request::builder().method(req.method.clone());
        let h2 = conn.is_http2();
        builder = if h2 {
            builder.uri(uri.clone())
        } else {
            builder.uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        };
        let mut request = builder
            .body(req.body.unwrap_or_else(RequestBody::empty))
            .map_err(|e| Error::config(format!("invalid request: {e}")))?;
        *request.headers_mut() = req.headers;
        let headers = request.headers_mut();
        if !h2 && !headers.contains_key(HOST) {
            let default_port = if https { 443 } else { 80 };
            let host = if target.host.contains(':') {
                format!("[{}]", target.host)
            } else {
                target.host.clone()
            };
            let value = if port == default_port {
                host
            } else {
                format!("{host}:{port}")
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HOST, v);
            }
        }
        if !h2 && !headers.contains_key(CONNECTION) {
            headers.insert(
                CONNECTION,
                HeaderValue::from_static(if self.inner.keep_alive {
                    "keep-alive"
                } else {
                    "close"
                }),
            );
        }
        if let Some(len) = http_body::Body::size_hint(request.body()).exact() {
            if len > 0 || !matches!(req.method, Method::GET | Method::HEAD) {
                request
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(len));
            }
        }

        let tls = conn.tls.clone();
        let peer = conn.peer;
        let ended = conn.ended.clone();
        let sent = match &mut conn.sender {
            Sender::H1(s) => match s.ready().await {
                Ok(()) => s.send_request(request).await,
                Err(e) => Err(e),
            },
            Sender::H2(s) => match s.ready().await {
                Ok(()) => s.send_request(request).await,
                Err(e) => Err(e),
            },
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                lease.release(false);
                // A TLS alert that ended the connection (a TLS 1.3 server refusing the
                // client certificate after the handshake) says more than "channel closed".
                if let Some(tls_error) = connect::connection_tls_error(&e) {
                    return Err(tls_error);
                }
                if let Some(tls_error) = ended.tls_error(Duration::from_millis(200)).await {
                    return Err(tls_error);
                }
                return Err(Error::new(Kind::Http, format!("socket hang up: {e}"))
                    .with_code("ECONNRESET")
                    .with_source(e));
            }
        };
        let (parts, body) = response.into_parts();
        let (keep, idle) = self.keep_decision(&parts.headers, h2);
        lease.set_keep(keep, idle);
        let lease = if hyper::body::Body::is_end_stream(&body) {
            lease.release(true);
            None
        } else {
            Some(lease)
        };
        Ok(Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: ResponseBody { inner: body, lease },
            tls,
            reused_socket: reused,
            remote_addr: peer,
            limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// Whether the socket may be pooled after this response, and for how long (Node's
    /// `keepSocketAlive`: the server's `Keep-Alive: timeout=N` gives N·1000 − 1000 ms).
    fn keep_decision(&self, headers: &http::HeaderMap, h2: bool) -> (bool, Option<Duration>) {
        if h2 {
            return (true, None);
        }
        if !self.inner.keep_alive {
            return (false, None);
        }
        let closing = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        if closing {
            return (false, None);
        }
        // Node reads the hint with /^timeout=(\d+)/ and keeps N·1000 − 1000 ms of it: a hint
        // of 1 s or less means "do not reuse", whatever the agent's own timeout.
        let hint = headers
            .get("keep-alive")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("timeout="))
            .and_then(|v| {
                let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
                v[..digits].parse::<u64>().ok()
            });
        match hint.map(|n| n.saturating_mul(1000).saturating_sub(1000)) {
            Some(0) => (false, None),
            Some(hint_ms) => {
                let hint = Duration::from_millis(hint_ms);
                (true, self.inner.timeout.map(|agent| agent.min(hint)))
            }
            None => (true, self.inner.timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(agent_timeout: Option<u64>, header: Option<&str>) -> (bool, Option<Duration>) {
        let mut b = Agent::builder().keep_alive(true).no_proxy();
        if let Some(t) = agent_timeout {
            b = b.free_socket_timeout(Duration::from_millis(t));
        }
        let agent = b.build().unwrap();
        let mut headers = http::HeaderMap::new();
        if let Some(h) = header {
            headers.insert("keep-alive", h.parse().unwrap());
        }
        agent.keep_decision(&headers, false)
    }

    #[test]
    fn keep_alive_hint_follows_node() {
        // Node v20.20 (reference §3.2): agent timeout 10000.
        assert_eq!(keep(Some(10_000), Some("timeout=1")), (false, None));
        assert_eq!(
            keep(Some(10_000), Some("timeout=2")),
            (true, Some(Duration::from_millis(1000)))
        );
        assert_eq!(
            keep(Some(10_000), Some("timeout=5")),
            (true, Some(Duration::from_millis(4000)))
        );
        assert_eq!(
            keep(Some(10_000), None),
            (true, Some(Duration::from_millis(10_000)))
        );
        // Without an agent timeout a usable hint is ignored, but 1 s still means "do not
        // reuse" (checked against Node v20.20.2's keepSocketAlive).
        assert_eq!(keep(None, Some("timeout=5")), (true, None));
        assert_eq!(keep(None, Some("timeout=1")), (false, None));
        assert_eq!(keep(None, Some("timeout=0")), (false, None));
        // Node's /^timeout=(\d+)/: only a leading timeout counts.
        assert_eq!(keep(None, Some("max=5, timeout=1")), (true, None));
        assert_eq!(
            keep(Some(10_000), Some("timeout=3, max=100")),
            (true, Some(Duration::from_millis(2000)))
        );
    }
}

//! What every test binary uses: `eventually`, tool checks, a free port, the body type.

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use portcullis::ConnectionInfo;

/// The response body of the test services.
pub type Body = Full<Bytes>;

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `cond` holds, up to `limit`; returns whether it did. Use it instead of a
/// sleep before an assertion: `assert!(eventually(limit, || ...).await, "what was awaited")`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that is itself a future (a request, a read).
pub async fn eventually_async<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for synchronous tests (the CLI's): blocks the thread between looks.
pub fn eventually_blocking(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Fails the test when `tool` is not on the PATH (tests never skip silently).
pub fn require(tool: &str) {
    assert!(
        have(tool),
        "{tool} is needed for this test and is not installed"
    );
}

/// True when `tool` is on the PATH (or is a path to a file).
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new(tool).is_file()
}

/// A free loopback port (bound then released; good enough on a test machine).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The headers both test services report a connection's TLS session in: `x-tls-version`,
/// `x-tls-alpn`, `x-tls-sni`, `x-tls-resumed` (`none` where there is nothing to say).
pub fn tls_headers(h: &mut HeaderMap, info: &ConnectionInfo) {
    let Some(tls) = info.tls() else { return };
    h.insert("x-tls-version", tls.version().parse().unwrap());
    h.insert("x-tls-alpn", tls.alpn().unwrap_or("none").parse().unwrap());
    h.insert(
        "x-tls-sni",
        tls.server_name().unwrap_or("none").parse().unwrap(),
    );
    h.insert(
        "x-tls-resumed",
        tls.is_resumed().to_string().parse().unwrap(),
    );
}

//! The HTTPS client: Node's `https.Agent` pooling and session caching, `request`/`get`,
//! `servername`, `checkServerIdentity` and pinning, errors with Node's codes.
//!
//! ```no_run
//! # async fn run() -> portcullis::Result<()> {
//! let res = portcullis::client::get("https://example.com/").send().await?;
//! println!("{} {:?}", res.status(), res.tls_info().map(|t| t.version()));
//! let text = res.text().await?;
//! # Ok(()) }
//! ```

mod agent;
mod connect;
mod pool;
mod proxy;
mod request;
mod response;

use std::sync::OnceLock;
use std::time::Duration;

use http::Method;

pub use agent::{Agent, AgentBuilder, Scheduling};
pub use proxy::Proxy;
pub use request::{AbortController, AbortSignal, RequestBody, RequestBuilder};
#[allow(deprecated)]
pub use response::ClientTlsInfo;
pub use response::{Response, ResponseBody, DEFAULT_BODY_LIMIT};

/// Node's `https.globalAgent` (v19+): keep-alive, LIFO, free sockets closed after 5 s.
pub fn global_agent() -> &'static Agent {
    static GLOBAL: OnceLock<Agent> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        Agent::builder()
            .keep_alive(true)
            .free_socket_timeout(Duration::from_secs(5))
            .assemble()
    })
}

/// Node's `https.get(url)`, with the global agent: `get(url).send().await`.
pub fn get(url: &str) -> RequestBuilder {
    request(Method::GET, url)
}

/// A POST with the global agent; give the body with `body`, `json` or `form`.
pub fn post(url: &str) -> RequestBuilder {
    request(Method::POST, url)
}

/// A PUT with the global agent.
pub fn put(url: &str) -> RequestBuilder {
    request(Method::PUT, url)
}

/// A DELETE with the global agent.
pub fn delete(url: &str) -> RequestBuilder {
    request(Method::DELETE, url)
}

/// Node's `https.request(options)`, with the global agent; set headers, body, timeout, TLS
/// options or another agent on the builder, then `send()`.
pub fn request(method: Method, url: &str) -> RequestBuilder {
    RequestBuilder::new(None, method, url)
}

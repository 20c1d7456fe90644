//! What a handler can learn about its connection (Node's `req.socket`, ESP-IDF's `user_cb`).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::ServerConnection;
use rustls_pki_types::UnixTime;

pub use super::proxy_protocol::ProxyInfo;
pub use crate::tls::TlsInfo;

/// The connection a request arrived on. Every request carries one in its extensions:
/// `req.extensions().get::<ConnectionInfo>()` (or axum's `Extension<ConnectionInfo>`).
///
/// Cheap to clone: built once per connection and shared.
#[derive(Debug, Clone)]
pub struct ConnectionInfo(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    id: u64,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    tls: Option<TlsInfo>,
    proxy: Option<Box<ProxyInfo>>,
}

impl ConnectionInfo {
    pub(crate) fn new(
        id: u64,
        peer_addr: SocketAddr,
        local_addr: SocketAddr,
        tls: Option<TlsInfo>,
        proxy: Option<Box<ProxyInfo>>,
    ) -> Self {
        Self(Arc::new(Inner {
            id,
            peer_addr,
            local_addr,
            tls,
            proxy,
        }))
    }

    /// A number unique to this connection within the server.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The client's address: from the PROXY protocol header when that is on, else the socket's.
    pub fn peer_addr(&self) -> SocketAddr {
        self.0.peer_addr
    }

    /// The address the connection was accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr
    }

    /// The TLS session; `None` on a plain-HTTP listener.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.0.tls.as_ref()
    }

    /// What the PROXY protocol header said besides the address (v2 TLVs: ALPN, authority,
    /// unique ID); `None` unless [`proxy_protocol`](super::ServerBuilder::proxy_protocol) is on.
    pub fn proxy(&self) -> Option<&ProxyInfo> {
        self.0.proxy.as_deref()
    }

    /// True when the connection is TLS.
    pub fn is_secure(&self) -> bool {
        self.0.tls.is_some()
    }
}

/// The server's view of a session: with client authentication configured, `client_auth` (the
/// strict verifier) gives the verdict on the presented chain, unless the handshake already
/// enforced it (`enforced`: a chain that got through is authorized).
pub(crate) fn server_tls_info(
    conn: &ServerConnection,
    client_auth: Option<&dyn ClientCertVerifier>,
    enforced: bool,
) -> TlsInfo {
    let mut info = TlsInfo::from_state(conn, conn.server_name().map(str::to_owned));
    match client_auth {
        None => {}
        Some(_) if enforced && !info.peer_chain().is_empty() => info.set_authorization(None),
        Some(verifier) => {
            let verdict =
                crate::tls::judge_client_chain(verifier, info.peer_chain(), UnixTime::now());
            match verdict {
                Ok(()) => info.set_authorization(None),
                Err(r) => info.set_authorization(Some((r.code, &r.reason))),
            }
        }
    }
    info
}

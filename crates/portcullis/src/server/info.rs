//! What a handler can learn about its connection (Node's `req.socket`, ESP-IDF's `user_cb`).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::{HandshakeKind, ServerConnection};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::tls::PeerCertificate;

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
}

/// The TLS session of a connection, as negotiated.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    version: &'static str,
    cipher_suite: &'static str,
    alpn: Option<String>,
    server_name: Option<String>,
    resumed: bool,
    peer_certificates: Vec<PeerCertificate>,
    authorized: bool,
    authorization_error: Option<&'static str>,
    authorization_reason: Option<Box<str>>,
}

impl ConnectionInfo {
    pub(crate) fn new(
        id: u64,
        peer_addr: SocketAddr,
        local_addr: SocketAddr,
        tls: Option<TlsInfo>,
    ) -> Self {
        Self(Arc::new(Inner {
            id,
            peer_addr,
            local_addr,
            tls,
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

    /// True when the connection is TLS.
    pub fn is_secure(&self) -> bool {
        self.0.tls.is_some()
    }
}

impl TlsInfo {
    /// Reads the negotiated session; with client authentication configured, `client_auth`
    /// (the strict verifier) gives the verdict on the presented chain, unless the handshake
    /// already enforced it (`enforced`: a chain that got through is authorized).
    pub(crate) fn from_connection(
        conn: &ServerConnection,
        client_auth: Option<&dyn ClientCertVerifier>,
        enforced: bool,
    ) -> Self {
        let chain: &[CertificateDer<'static>] = conn.peer_certificates().unwrap_or_default();
        let (authorized, refusal) = match client_auth {
            None => (false, None),
            Some(_) if enforced && !chain.is_empty() => (true, None),
            Some(verifier) => {
                match crate::tls::judge_client_chain(verifier, chain, UnixTime::now()) {
                    Ok(()) => (true, None),
                    Err(refusal) => (false, Some(refusal)),
                }
            }
        };
        Self {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            },
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| crate::tls::iana_suite_name(&s))
                .unwrap_or("unknown"),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: conn.server_name().map(str::to_owned),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
            // The handshake accepted these, so they parse; one that does not is left out.
            peer_certificates: chain
                .iter()
                .filter_map(|der| PeerCertificate::from_der(der).ok())
                .collect(),
            authorized,
            authorization_error: refusal.as_ref().map(|r| r.code),
            authorization_reason: refusal.map(|r| r.reason.into_boxed_str()),
        }
    }

    /// `"TLSv1.3"` or `"TLSv1.2"`, as Node's `getProtocol()`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The IANA name of the cipher suite, e.g. `TLS_AES_256_GCM_SHA384` or
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    pub fn cipher_suite(&self) -> &'static str {
        self.cipher_suite
    }

    /// The ALPN protocol agreed (`"h2"`, `"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&str> {
        self.alpn.as_deref()
    }

    /// The SNI name the client asked for; `None` when it sent none (Node's `servername === false`).
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// True when the session was resumed from a ticket or the session cache.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// The client's certificate chain as sent, leaf first, with Node's
    /// `getPeerCertificate()` fields; empty when it sent none. [`PeerCertificate::der`] gives
    /// the DER.
    pub fn peer_certificates(&self) -> &[PeerCertificate] {
        &self.peer_certificates
    }

    /// Node's `socket.authorized`: with `request_cert`, true when the client's chain verified
    /// against the client CAs (and CRLs). False without client authentication.
    pub fn is_authorized(&self) -> bool {
        self.authorized
    }

    /// Node's `socket.authorizationError`: why the client's chain did not verify, as OpenSSL's
    /// code (`UNABLE_TO_GET_ISSUER_CERT` when no certificate was sent, `CERT_HAS_EXPIRED`,
    /// `CERT_REVOKED`, …). `None` when authorized or without client authentication.
    pub fn authorization_error(&self) -> Option<&'static str> {
        self.authorization_error
    }

    /// Why the client's chain did not verify, in words a user can act on: what is wrong with the
    /// certificate and how to fix it (for example that an X.509 v1 certificate must be
    /// re-issued as v3). `None` when authorized or without client authentication.
    pub fn authorization_reason(&self) -> Option<&str> {
        self.authorization_reason.as_deref()
    }
}

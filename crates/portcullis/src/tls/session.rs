//! `TlsInfo`: one TLS session as negotiated, the same type on both sides: a server handler
//! reads it from [`ConnectionInfo::tls`](crate::ConnectionInfo::tls), a client from
//! [`Response::tls_info`](crate::Response::tls_info).

use std::sync::OnceLock;

use rustls::{CommonState, HandshakeKind};
use rustls_pki_types::CertificateDer;

use super::PeerCertificate;

/// The TLS session of a connection, as negotiated (Node's `tls.TLSSocket` getters).
#[derive(Debug, Clone)]
pub struct TlsInfo {
    version: &'static str,
    cipher_suite: &'static str,
    alpn: Option<String>,
    server_name: Option<String>,
    resumed: bool,
    /// The peer's chain as sent; parsed into `peer_certificates` when first asked for.
    peer_chain: Vec<CertificateDer<'static>>,
    peer_certificates: OnceLock<Vec<PeerCertificate>>,
    authorized: bool,
    authorization_error: Option<Box<str>>,
    authorization_reason: Option<Box<str>>,
}

impl TlsInfo {
    /// Reads the session of either side; `server_name` is the SNI name (received on a server,
    /// sent by a client). Not authorized until [`set_authorization`](Self::set_authorization).
    pub(crate) fn from_state(conn: &CommonState, server_name: Option<String>) -> Self {
        Self {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            },
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| super::iana_suite_name(&s))
                .unwrap_or("unknown"),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name,
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
            peer_chain: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            peer_certificates: OnceLock::new(),
            authorized: false,
            authorization_error: None,
            authorization_reason: None,
        }
    }

    /// The verdict on the peer's chain: authorized, or Node's code and the reason in words.
    pub(crate) fn set_authorization(&mut self, refusal: Option<(&str, &str)>) {
        self.authorized = refusal.is_none();
        self.authorization_error = refusal.map(|(code, _)| code.into());
        self.authorization_reason = refusal.map(|(_, reason)| reason.into());
    }

    /// The peer's chain as sent, leaf first.
    pub(crate) fn peer_chain(&self) -> &[CertificateDer<'static>] {
        &self.peer_chain
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

    /// The SNI name: on a server, the one the client asked for (`None` when it sent none: Node's
    /// `servername === false`); on a client, the one it sent (`None` for an IP address).
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// True when the session was resumed from a ticket or a session cache (Node's
    /// `isSessionReused()`).
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// The peer's certificate chain as sent, leaf first, with Node's `getPeerCertificate()`
    /// fields (parsed when first asked for); empty when it sent none. [`PeerCertificate::der`]
    /// gives the DER.
    pub fn peer_certificates(&self) -> &[PeerCertificate] {
        self.peer_certificates.get_or_init(|| {
            self.peer_chain
                .iter()
                .filter_map(|c| PeerCertificate::from_der(c).ok())
                .collect()
        })
    }

    /// Node's `socket.authorized`. On a server with `request_cert`: the client's chain
    /// verified against the client CAs (and CRLs); false without client authentication. On a
    /// client: true unless verification was off
    /// ([`danger::reject_unauthorized`](crate::tls::danger::reject_unauthorized)) and the
    /// server would have been refused.
    pub fn is_authorized(&self) -> bool {
        self.authorized
    }

    /// Node's `socket.authorizationError`: why the peer's chain did not (or would not) verify,
    /// as Node's code (`UNABLE_TO_GET_ISSUER_CERT` when a client sent no certificate,
    /// `CERT_HAS_EXPIRED`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_CERT_ALTNAME_INVALID`, …).
    /// `None` when authorized, or on a server without client authentication.
    pub fn authorization_error(&self) -> Option<&str> {
        self.authorization_error.as_deref()
    }

    /// The same, in words a user can act on: what is wrong with the certificate and how to fix
    /// it (for example that an X.509 v1 certificate must be re-issued as v3).
    pub fn authorization_reason(&self) -> Option<&str> {
        self.authorization_reason.as_deref()
    }
}

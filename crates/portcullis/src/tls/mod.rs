//! TLS material and configuration, shared by the server and (later) the client.
//!
//! This module knows nothing of HTTP.

mod identity;
mod keyfile;
mod keylog;
mod options;
mod passphrase;
mod peer;
mod server;
mod tickets;
mod verify;

pub use identity::Identity;
pub use keyfile::load_certificates;
pub use keylog::KeyLog;
pub use options::{openssl_name, TlsVersion};
pub use passphrase::Passphrase;
pub use peer::{DistinguishedName, PeerCertificate};
pub(crate) use server::FixedIdentity;
pub use server::{load_crls, ServerTlsConfig, ServerTlsConfigBuilder, SniFuture};
pub use tickets::TicketKeys;
pub use verify::verify_server_chain;

/// The crypto provider every rustls config in this crate uses: aws-lc-rs, chosen explicitly.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Runs `verifier` over a presented client chain; the error is Node's code.
pub(crate) fn verify_client_chain(
    verifier: &dyn rustls::server::danger::ClientCertVerifier,
    chain: &[rustls_pki_types::CertificateDer<'static>],
    now: rustls_pki_types::UnixTime,
) -> Result<(), &'static str> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err("UNABLE_TO_GET_ISSUER_CERT");
    };
    verifier
        .verify_client_cert(end_entity, intermediates, now)
        .map(|_| ())
        .map_err(|e| interim_code(&e))
}

// Replaced by verify::node_code once that lands.
fn interim_code(err: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "CERT_HAS_EXPIRED"
        }
        rustls::Error::InvalidCertificate(C::Revoked) => "CERT_REVOKED",
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        _ => "CERT_REJECTED",
    }
}

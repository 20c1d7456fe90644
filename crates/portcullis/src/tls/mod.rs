//! TLS material and configuration, shared by the server and (later) the client.
//!
//! This module knows nothing of HTTP.

mod identity;
mod keyfile;
mod peer;
mod server;
mod verify;

pub use identity::Identity;
pub use peer::PeerCertificate;
pub(crate) use server::{build_server_config, ServerTlsOptions};

/// The crypto provider every rustls config in this crate uses: aws-lc-rs, chosen explicitly.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

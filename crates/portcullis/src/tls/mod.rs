//! TLS material and configuration, shared by the server and (later) the client.
//!
//! This module knows nothing of HTTP.

mod client;
pub mod danger;
pub(crate) mod failure;
pub(crate) mod host_check;
mod identity;
pub(crate) mod keyfile;
mod keylog;
pub(crate) mod options;
mod passphrase;
mod peer;
mod server;
mod session;
mod tickets;
mod verify;

#[cfg(feature = "client")]
pub(crate) use client::Authorize;
pub use client::{CheckServerIdentity, ClientTlsOptions};
pub use host_check::{check_server_identity, check_server_identity_rfc6125, pin_sha256, PinSet};
pub use identity::Identity;
pub use keyfile::load_certificates;
pub use keylog::KeyLog;
pub(crate) use options::iana_name as iana_suite_name;
pub use options::{openssl_name, TlsVersion};
pub use passphrase::Passphrase;
pub use peer::{DistinguishedName, PeerCertificate};
pub(crate) use server::FixedIdentity;
pub use server::{
    load_crls, load_ocsp_response, ServerTlsConfig, ServerTlsConfigBuilder, SniFuture,
};
pub use session::TlsInfo;
pub use tickets::TicketKeys;
pub(crate) use verify::{judge_client_chain, verifier_error};
pub use verify::{verify_client_chain, verify_server_chain};

/// The crypto provider every rustls config in this crate uses: aws-lc-rs, chosen explicitly.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::Identity;
use crate::error::{Error, Result};

/// TLS choices the server makes from its builder's options.
#[derive(Debug, Clone)]
pub(crate) struct ServerTlsOptions {
    pub(crate) http2: bool,
}

/// Builds the rustls server config: TLS 1.2 and 1.3 only, aws-lc-rs's AEAD forward-secret
/// suites, ALPN `h2` (when enabled) then `http/1.1`.
pub(crate) fn build_server_config(
    identity: &Identity,
    options: &ServerTlsOptions,
) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(super::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::tls("unsupported protocol versions", e))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedIdentity(identity.key.clone())));
    config.alpn_protocols = if options.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // Node's https.Server prefers its own cipher order (honorCipherOrder defaults to true).
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// One identity for every client, whatever name it asks for.
#[derive(Debug)]
struct FixedIdentity(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

//! The challenges being answered right now: HTTP-01 tokens for the plain-HTTP listeners and
//! TLS-ALPN-01 certificates for the HTTPS ones.
//!
//! With a storage directory shared by a fleet, the process that orders writes each answer under
//! `challenges/` there too, and every process answers from it what it does not hold itself: the
//! CA's validation may reach any instance behind the load balancer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};
use crate::tls::FixedIdentity;

/// The ALPN protocol of RFC 8737.
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Where HTTP-01 tokens are fetched.
const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// Challenge certificates made from shared answers: domain → (hex digest, certificate).
type Borrowed = HashMap<String, (Vec<u8>, Arc<CertifiedKey>)>;

#[derive(Debug, Default)]
pub(crate) struct Challenges {
    /// token → key authorization.
    http01: RwLock<HashMap<String, Bytes>>,
    /// lowercase domain → the self-signed certificate with the `acmeIdentifier` extension.
    tls_alpn01: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// The fleet's shared answers (`DIR/<CA>/challenges`), when there is a directory.
    shared: Option<PathBuf>,
    /// Certificates made from another process's answers: domain → (digest, certificate).
    borrowed: RwLock<Borrowed>,
}

impl Challenges {
    pub(crate) fn with_shared_dir(dir: PathBuf) -> Self {
        Self {
            shared: Some(dir),
            ..Self::default()
        }
    }

    /// The body for a plain-HTTP request to `path`, when it is a token being validated.
    pub(crate) fn http01_response(&self, path: &str) -> Option<Bytes> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        if let Some(answer) = self
            .http01
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            return Some(answer.clone());
        }
        // Tokens are base64url: nothing else may become a file name.
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let file = self.shared.as_ref()?.join("http-01").join(token);
        std::fs::read(file).ok().map(Bytes::from)
    }

    pub(crate) fn add_http01(&self, token: &str, key_authorization: &str) {
        self.http01
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token.to_owned(),
                Bytes::copy_from_slice(key_authorization.as_bytes()),
            );
        self.share("http-01", token, key_authorization.as_bytes());
    }

    /// Makes and keeps the RFC 8737 certificate for `domain`: self-signed, the domain as its
    /// only SAN, the critical `id-pe-acmeIdentifier` extension holding `digest` (the SHA-256 of
    /// the key authorization).
    pub(crate) fn add_tls_alpn01(&self, domain: &str, digest: &[u8]) -> Result<()> {
        let certified = challenge_certificate(domain, digest)?;
        self.tls_alpn01
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(domain.to_ascii_lowercase(), certified);
        self.share("tls-alpn-01", &domain.to_ascii_lowercase(), &hex(digest));
        Ok(())
    }

    /// Writes an answer for the other processes sharing the directory (best effort).
    fn share(&self, kind: &str, name: &str, data: &[u8]) {
        let Some(dir) = &self.shared else { return };
        let dir = dir.join(kind);
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), data))
        {
            tracing::debug!(
                "ACME: cannot share the {kind} answer in {}: {e}",
                dir.display()
            );
        }
    }

    /// Forgets every challenge (after an order, successful or not), shared answers included.
    pub(crate) fn clear(&self) {
        let tokens: Vec<String> = self
            .http01
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(token, _)| token)
            .collect();
        let domains: Vec<String> = self
            .tls_alpn01
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(domain, _)| domain)
            .collect();
        if let Some(dir) = &self.shared {
            for token in tokens {
                let _ = std::fs::remove_file(dir.join("http-01").join(token));
            }
            for domain in domains {
                let _ = std::fs::remove_file(dir.join("tls-alpn-01").join(domain));
            }
        }
    }

    /// The challenge certificate for `name`: ours, else one made from the shared answer.
    fn tls_alpn01_key(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(key) = self
            .tls_alpn01
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(key.clone());
        }
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return None;
        }
        let digest = std::fs::read(self.shared.as_ref()?.join("tls-alpn-01").join(name)).ok()?;
        let mut borrowed = self.borrowed.write().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, key)) = borrowed.get(name) {
            if *cached == digest {
                return Some(key.clone());
            }
        }
        let raw = unhex(&digest)?;
        let key = challenge_certificate(name, &raw).ok()?;
        borrowed.insert(name.to_owned(), (digest, key.clone()));
        Some(key)
    }

    /// The configuration for a validation handshake to `server_name`: `base` with the
    /// challenge certificate and `acme-tls/1` as its only protocol. `None` when no challenge
    /// for that name is pending (the handshake then goes on with the normal configuration,
    /// which refuses `acme-tls/1` with `no_application_protocol`).
    pub(crate) fn tls_alpn01_config(
        &self,
        base: &ServerConfig,
        server_name: Option<&str>,
    ) -> Option<Arc<ServerConfig>> {
        let name = server_name?.to_ascii_lowercase();
        let key = self.tls_alpn01_key(&name)?;
        let mut config = base.clone();
        config.cert_resolver = Arc::new(FixedIdentity(key));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        config.send_tls13_tickets = 0;
        Some(Arc::new(config))
    }
}

/// The RFC 8737 certificate for `domain` and `digest`.
fn challenge_certificate(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>> {
    let failed =
        |e: rcgen::Error| Error::config(format!("cannot make the tls-alpn-01 certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(failed)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical extension it does not know.
    let signing = crate::tls::provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .map_err(|e| Error::config(format!("cannot use the tls-alpn-01 certificate's key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect()
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii();
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// True when the client offers `acme-tls/1` (RFC 8737 clients offer nothing else).
pub(crate) fn offers_acme_alpn(hello: &rustls::server::ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http01_answers_only_known_tokens_under_the_well_known_path() {
        let c = Challenges::default();
        c.add_http01("tok", "tok.thumb");
        assert_eq!(
            c.http01_response("/.well-known/acme-challenge/tok")
                .as_deref(),
            Some(&b"tok.thumb"[..])
        );
        assert!(c
            .http01_response("/.well-known/acme-challenge/other")
            .is_none());
        assert!(c.http01_response("/tok").is_none());
        c.clear();
        assert!(c
            .http01_response("/.well-known/acme-challenge/tok")
            .is_none());
    }

    #[test]
    fn another_process_answers_from_the_shared_directory_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Challenges::with_shared_dir(dir.path().to_path_buf());
        let other = Challenges::with_shared_dir(dir.path().to_path_buf());
        owner.add_http01("tok_en-1", "tok_en-1.thumb");
        owner.add_tls_alpn01("example.com", &[9u8; 32]).unwrap();
        assert_eq!(
            other
                .http01_response("/.well-known/acme-challenge/tok_en-1")
                .as_deref(),
            Some(&b"tok_en-1.thumb"[..])
        );
        assert!(other
            .http01_response("/.well-known/acme-challenge/../x")
            .is_none());
        let base = crate::ServerTlsConfig::builder()
            .identity(test_identity())
            .build()
            .unwrap();
        other
            .tls_alpn01_config(&base.config, Some("example.com"))
            .expect("answered from the shared directory");
        let key = other.borrowed.read().unwrap()["example.com"].1.clone();
        let (_, cert) = x509_parser::parse_x509_certificate(key.cert[0].as_ref()).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert_eq!(&ext.value[2..], &[9u8; 32]);
        owner.clear();
        assert!(other
            .http01_response("/.well-known/acme-challenge/tok_en-1")
            .is_none());
        assert!(other
            .tls_alpn01_config(&base.config, Some("example.com"))
            .is_none());
    }

    #[test]
    fn the_tls_alpn01_certificate_carries_the_digest_in_a_critical_extension() {
        let c = Challenges::default();
        let digest = [7u8; 32];
        c.add_tls_alpn01("Example.COM", &digest).unwrap();
        let base = crate::ServerTlsConfig::builder()
            .identity(test_identity())
            .build()
            .unwrap();
        assert!(c
            .tls_alpn01_config(&base.config, Some("other.com"))
            .is_none());
        assert!(c.tls_alpn01_config(&base.config, None).is_none());
        let config = c
            .tls_alpn01_config(&base.config, Some("example.com"))
            .expect("pending challenge");
        assert_eq!(config.alpn_protocols, vec![ACME_TLS_ALPN.to_vec()]);
        let key = c.tls_alpn01.read().unwrap()["example.com"].clone();
        let (_, cert) = x509_parser::parse_x509_certificate(key.cert[0].as_ref()).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        // An OCTET STRING of the 32-byte digest.
        assert_eq!(&ext.value[..2], &[0x04, 32]);
        assert_eq!(&ext.value[2..], &digest);
    }

    fn test_identity() -> crate::Identity {
        let mut o = crate::cert::LeafOptions::new(["x"]);
        o.self_signed = true;
        let leaf = o.generate(None).unwrap();
        crate::Identity::from_pem(leaf.chain_pem().as_bytes(), leaf.key_pem().as_bytes()).unwrap()
    }
}

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// A certificate chain and its private key: what a server presents.
///
/// Cheap to clone. Built from PEM today; the key is checked against the certificate at load.
#[derive(Clone)]
pub struct Identity {
    pub(crate) key: Arc<CertifiedKey>,
}

impl Identity {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key from two files.
    ///
    /// The key may be PKCS#1 (RSA), PKCS#8 or SEC1 (EC); both may live in the same file.
    ///
    /// # Errors
    /// A file that cannot be read, holds no certificate or no key, or a key that does not
    /// match the certificate. The error names the file.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let cert_pem = read(cert)?;
        let key_pem = if key == cert {
            cert_pem.clone()
        } else {
            read(key)?
        };
        let chain = certs_from_pem(&cert_pem).map_err(|e| e.with_path(cert))?;
        let key_der = key_from_pem(&key_pem).map_err(|e| e.with_path(key))?;
        Self::from_der(chain, key_der).map_err(|e| e.with_path(key))
    }

    /// Builds an identity from PEM text held in memory: the chain, then the key.
    ///
    /// # Errors
    /// As [`Identity::from_pem_files`], without a file name.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        Self::from_der(certs_from_pem(cert_pem)?, key_from_pem(key_pem)?)
    }

    /// Builds an identity from DER values.
    ///
    /// # Errors
    /// An empty chain, an unsupported key type, or a key that does not match the leaf.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self> {
        if chain.is_empty() {
            return Err(Error::config("no certificate found"));
        }
        let provider = super::provider();
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                Error::config("the private key does not match the certificate")
            }
            other => Error::tls("unusable private key", other),
        })?;
        Ok(Self { key: Arc::new(key) })
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("cannot read file", e).with_path(path))
}

/// What the PEM sections of a file are, for error messages ("the file holds 2 certificates").
fn describe(pem: &[u8]) -> String {
    let mut certs = 0;
    let mut keys = 0;
    let mut other = 0;
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem) {
        match item {
            Ok((SectionKind::Certificate, _)) => certs += 1,
            Ok((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            )) => keys += 1,
            Ok(_) => other += 1,
            Err(_) => break,
        }
    }
    match (certs, keys, other) {
        (0, 0, 0) => "the file holds no PEM data".into(),
        _ => format!(
            "the file holds {certs} certificate(s), {keys} private key(s) and {other} other PEM section(s)"
        ),
    }
}

fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, pem::Error>>()
        .map_err(|e| Error::config(format!("malformed PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::config(format!(
            "no certificate found; {}",
            describe(pem)
        )));
    }
    Ok(chain)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(Error::config(format!(
            "no private key found; {}",
            describe(pem)
        ))),
        Err(e) => Err(Error::config(format!("malformed PEM: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_matching_pair() {
        let (cert, key) = pair();
        let id = Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(id.chain().len(), 1);
    }

    #[test]
    fn mismatched_key_is_named() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        let err = Identity::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn key_file_without_key_says_what_it_holds() {
        let (cert, _) = pair();
        let err = Identity::from_pem(cert.as_bytes(), cert.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("no private key found; the file holds 1 certificate"),
            "{err}"
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = pair();
        let c = dir.path().join("cert.pem");
        std::fs::write(&c, cert).unwrap();
        let err = Identity::from_pem_files(&c, &c).unwrap_err();
        assert!(
            err.to_string().starts_with(&c.display().to_string()),
            "{err}"
        );
        let missing = dir.path().join("missing.pem");
        let err = Identity::from_pem_files(&missing, &c).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}

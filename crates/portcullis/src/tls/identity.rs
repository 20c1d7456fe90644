use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{keyfile, Passphrase};
use crate::error::{Error, Result};

/// A certificate chain and its private key: what a server presents.
///
/// Cheap to clone. Loaded from PEM, DER, encrypted keys or PKCS#12; the key is checked
/// against the leaf certificate at load, and a leaf outside its validity period is logged
/// (`tracing` warning) but accepted.
#[derive(Clone)]
pub struct Identity {
    pub(crate) key: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Identity {
    /// Loads a certificate chain (leaf first) and an unencrypted private key from two files.
    ///
    /// Same as [`Identity::from_files`] without a passphrase: PEM or DER; the key may be
    /// PKCS#1 (RSA), PKCS#8 or SEC1 (EC); both may live in the same file.
    ///
    /// # Errors
    /// A file that cannot be read, holds no certificate or no key (the error says what it
    /// holds), an encrypted key, or a key that does not match the certificate. The error names
    /// the file.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Self::from_files(cert, key, None)
    }

    /// Loads a certificate chain and its private key from files in any form users have.
    ///
    /// - `cert`: PEM `CERTIFICATE` sections (leaf first, other sections ignored) or DER
    ///   (one certificate or several concatenated).
    /// - `key`: PEM or DER, PKCS#8 (RSA, ECDSA, Ed25519), PKCS#1 (RSA) or SEC1 (EC); encrypted
    ///   PKCS#8 (`ENCRYPTED PRIVATE KEY`: PBES2 with AES or 3DES, as `openssl genrsa -aes256`
    ///   and `openssl pkcs8 -topk8 -v2 aes256|des3` write); legacy OpenSSL encrypted PEM
    ///   (`Proc-Type: 4,ENCRYPTED` with AES-128/192/256-CBC, DES-EDE3-CBC or DES-CBC, as
    ///   `openssl rsa -aes256 -traditional` and `openssl ec -aes256` write). The first key in
    ///   the file is used.
    /// - `cert` and `key` may name the same file; when that file is a PKCS#12 archive it is
    ///   loaded as by [`Identity::from_pkcs12`].
    ///
    /// `passphrase` is needed for an encrypted key and ignored for a plain one. Decrypted key
    /// bytes and the files' contents are zeroized after use.
    ///
    /// # Errors
    /// Every error names the file it is about:
    /// - the file cannot be read, or holds no certificate / no key (it says what it holds);
    /// - "the private key is encrypted (...): a passphrase is needed";
    /// - "wrong passphrase (or the file is damaged: decryption failed)";
    /// - "corrupt file: ..." when the file's structure is broken, "unsupported ..." for
    ///   encryption schemes that cannot be decoded;
    /// - "the private key does not match the certificate".
    pub fn from_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        passphrase: Option<&Passphrase>,
    ) -> Result<Self> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let cert_data = keyfile::read_bounded(cert, keyfile::MAX_BUNDLE)?;
        let key_data = if key == cert {
            None
        } else {
            Some(keyfile::read_bounded(key, keyfile::MAX_KEY)?)
        };
        let key_bytes: &[u8] = key_data.as_deref().map_or(&cert_data[..], |k| &k[..]);
        for (path, data) in [(cert, &cert_data[..]), (key, key_bytes)] {
            if !keyfile::is_pkcs12(data) {
                continue;
            }
            if key_data.is_some() {
                return Err(Error::config(
                    "this is a PKCS#12 archive, which holds the certificate and the key \
                     together: give it as both, or load it with Identity::from_pkcs12_file",
                )
                .with_path(path));
            }
            let passphrase = passphrase.ok_or_else(|| {
                Error::config("the PKCS#12 file is encrypted: a passphrase is needed")
                    .with_path(path)
            })?;
            return Self::from_pkcs12(data, passphrase).map_err(|e| e.with_path(path));
        }
        let chain = keyfile::certificates(&cert_data).map_err(|e| e.with_path(cert))?;
        let key_der = keyfile::private_key(key_bytes, passphrase).map_err(|e| e.with_path(key))?;
        Self::from_der(chain, key_der).map_err(|e| e.with_path(key))
    }

    /// Loads a PKCS#12 archive (`.p12`/`.pfx`) from a file: see [`Identity::from_pkcs12`].
    ///
    /// # Errors
    /// As [`Identity::from_pkcs12`], and a file that cannot be read; the error names the file.
    pub fn from_pkcs12_file(path: impl AsRef<Path>, passphrase: &Passphrase) -> Result<Self> {
        let path = path.as_ref();
        let data = keyfile::read_bounded(path, keyfile::MAX_BUNDLE)?;
        Self::from_pkcs12(&data, passphrase).map_err(|e| e.with_path(path))
    }

    /// Builds an identity from a DER PKCS#12 archive and its passphrase.
    ///
    /// Reads what `openssl pkcs12 -export` writes: with `-certpbe AES-256-CBC -keypbe
    /// AES-256-CBC`, with OpenSSL 3's defaults (PBES2/AES-256, SHA-256 MAC) and with `-legacy`
    /// (RC2-40 / 3DES, SHA-1 MAC). The key is the one a certificate names by `localKeyId` (or
    /// the first); the leaf is that certificate (or the one matching the key); the chain is the
    /// leaf, then the archive's other certificates ordered from the leaf's issuer up, then any
    /// unrelated ones. Use an empty passphrase for an archive made with an empty one.
    ///
    /// # Errors
    /// "wrong passphrase (or the file is damaged: decryption failed)" when the MAC or the
    /// decryption fails; "corrupt file: not valid PKCS#12 ..." when the structure is broken;
    /// "unsupported PKCS#12 file ..."; no key or no certificate inside; a key that does not
    /// match the leaf.
    pub fn from_pkcs12(der: &[u8], passphrase: &Passphrase) -> Result<Self> {
        let (chain, key) = keyfile::pkcs12(der, passphrase)?;
        Self::from_der(chain, key)
    }

    /// Builds an identity from PEM text held in memory: the chain, then the key.
    ///
    /// The key must not be encrypted (use [`Identity::from_files`] for that).
    ///
    /// # Errors
    /// As [`Identity::from_pem_files`], without a file name.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        Self::from_der(
            keyfile::certificates(cert_pem)?,
            keyfile::private_key(key_pem, None)?,
        )
    }

    /// Builds an identity from DER values.
    ///
    /// Logs a `tracing` warning naming the dates when the leaf is expired or not yet valid.
    ///
    /// # Errors
    /// An empty chain, a leaf that is not valid X.509, an unsupported key type, or a key that
    /// does not match the leaf.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self> {
        let Some(leaf) = chain.first() else {
            return Err(Error::config("no certificate found"));
        };
        let (not_before, not_after) = validity(leaf)?;
        let provider = super::provider();
        // Only the algorithm and size, read before the key moves: what a refusal reports.
        let kind = keyfile::KeyKind::of(&key);
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                Error::config("the private key does not match the certificate")
            }
            _ => Error::config(kind.refusal()),
        })?;
        Ok(Self {
            key: Arc::new(key),
            not_before,
            not_after,
        })
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }

    /// The start of the leaf certificate's validity period (`notBefore`).
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// The end of the leaf certificate's validity period (`notAfter`).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

/// The leaf's validity period; warns when `now` is outside it.
/// The `notAfter` of a served key's leaf certificate.
pub(crate) fn leaf_not_after(key: &CertifiedKey) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(key.cert.first()?).ok()?;
    Some(at(&cert.validity().not_after))
}

fn at(t: &x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn validity(leaf: &CertificateDer<'_>) -> Result<(SystemTime, SystemTime)> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| Error::config(format!("the certificate is not valid X.509 ({e})")))?;
    let v = cert.validity();
    let (not_before, not_after) = (at(&v.not_before), at(&v.not_after));
    let now = SystemTime::now();
    let subject = cert.subject();
    if now > not_after {
        tracing::warn!(
            %subject,
            not_before = %v.not_before,
            not_after = %v.not_after,
            "the server certificate has expired: valid from {} until {}",
            v.not_before,
            v.not_after
        );
    } else if now < not_before {
        tracing::warn!(
            %subject,
            not_before = %v.not_before,
            not_after = %v.not_after,
            "the server certificate is not yet valid: valid from {} until {}",
            v.not_before,
            v.not_after
        );
    }
    Ok((not_before, not_after))
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

    /// Collects the messages of the events logged while it is the default subscriber.
    #[derive(Default, Clone)]
    struct Capture(Arc<std::sync::Mutex<Vec<String>>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                    if field.name() == "message" {
                        *self.0 = format!("{value:?}");
                    }
                }
            }
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            self.0.lock().unwrap().push(message);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn expired_certificate_loads_with_a_warning_naming_the_dates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        let capture = Capture::default();
        let id = tracing::subscriber::with_default(capture.clone(), || {
            Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
        });
        // 2001-01-01 and 2002-01-01, midnight UTC.
        assert_eq!(
            id.not_before(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200)
        );
        assert_eq!(
            id.not_after(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_009_843_200)
        );
        let logged = capture.0.lock().unwrap().join("\n");
        assert!(
            logged.contains("the server certificate has expired: valid from Jan  1 00:00:00 2001 +00:00 until Jan  1 00:00:00 2002 +00:00"),
            "{logged}"
        );

        // A current certificate logs nothing.
        let (cert, key) = pair();
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || {
            Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
        });
        assert!(capture.0.lock().unwrap().is_empty());
    }
}

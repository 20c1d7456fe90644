//! The client's TLS options: trust (Mozilla's bundled roots, the OS store, extra or replacing
//! CAs, CRLs), client identity, versions and suites, and the server identity check
//! (Node's `checkServerIdentity`) with certificate/public-key pinning.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

use super::options::{self, TlsVersion};
use super::verify::node_code;
use super::{Identity, KeyLog, PeerCertificate};
use crate::error::{Error, Kind, Result};

/// Node's `checkServerIdentity(host, cert)`: runs after the chain verified; an `Err` fails the
/// handshake with that error. Receives the host name checked and the whole chain, leaf first.
pub type CheckServerIdentity = Arc<dyn Fn(&str, &[PeerCertificate]) -> Result<()> + Send + Sync>;

/// Which roots verify servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roots {
    /// Mozilla's roots, bundled (webpki-roots), plus any `ca` given. Node's default.
    #[default]
    Bundled,
    /// The operating system's store, plus any `ca` given.
    Os,
    /// Only the `ca` given (Node's `ca` option replaces the roots).
    OnlyCa,
}

/// TLS options of a client request or agent. Part of the pool key: requests with different
/// options never share a connection or a session.
#[derive(Clone, Default)]
pub struct ClientTlsOptions {
    pub(crate) roots: Roots,
    pub(crate) ca: Vec<CertificateDer<'static>>,
    pub(crate) crls: Vec<CertificateRevocationListDer<'static>>,
    pub(crate) identity: Option<Identity>,
    pub(crate) servername: Option<String>,
    pub(crate) min_version: Option<TlsVersion>,
    pub(crate) max_version: Option<TlsVersion>,
    pub(crate) ciphers: Option<String>,
    pub(crate) check_server_identity: Option<CheckServerIdentity>,
    pub(crate) reject_unauthorized: bool,
    pub(crate) keylog: Option<KeyLog>,
}

impl fmt::Debug for ClientTlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTlsOptions")
            .field("roots", &self.roots)
            .field("ca", &self.ca.len())
            .field("identity", &self.identity.is_some())
            .field("servername", &self.servername)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .finish_non_exhaustive()
    }
}

impl ClientTlsOptions {
    /// Verification on, Mozilla's roots, TLS 1.2–1.3.
    pub fn new() -> Self {
        Self {
            reject_unauthorized: true,
            ..Self::default()
        }
    }

    /// Node's `ca`: trust these CAs *instead of* the default roots.
    pub fn ca(mut self, certs: impl IntoIterator<Item = CertificateDer<'static>>) -> Self {
        self.ca.extend(certs);
        self.roots = Roots::OnlyCa;
        self
    }

    /// Trust these CAs *in addition to* the default roots (Node's `NODE_EXTRA_CA_CERTS`).
    pub fn add_ca(mut self, certs: impl IntoIterator<Item = CertificateDer<'static>>) -> Self {
        self.ca.extend(certs);
        self
    }

    /// Use the operating system's trust store (plus any CA added) instead of Mozilla's bundle.
    pub fn os_roots(mut self) -> Self {
        self.roots = Roots::Os;
        self
    }

    /// Revocation lists checked against the server's certificate (`CERT_REVOKED`).
    pub fn crls(
        mut self,
        crls: impl IntoIterator<Item = CertificateRevocationListDer<'static>>,
    ) -> Self {
        self.crls.extend(crls);
        self
    }

    /// A client certificate and key (Node's `cert`/`key` or `pfx`).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Node's `servername`: the SNI name and the name the certificate is checked against.
    /// Default: the host (no SNI for an IP literal, which must then match an IP SAN). The
    /// empty string sends no SNI and checks the host.
    pub fn servername(mut self, name: impl Into<String>) -> Self {
        self.servername = Some(name.into());
        self
    }

    /// Node's `minVersion`. Default: TLS 1.2.
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = Some(version);
        self
    }

    /// Node's `maxVersion`. Default: TLS 1.3.
    pub fn max_version(mut self, version: TlsVersion) -> Self {
        self.max_version = Some(version);
        self
    }

    /// Node's `ciphers`: IANA or OpenSSL names, `:`-separated.
    pub fn ciphers(mut self, list: impl Into<String>) -> Self {
        self.ciphers = Some(list.into());
        self
    }

    /// Node's `checkServerIdentity`: replaces the default host-name check (call
    /// [`check_server_identity`] inside to keep it) — for pinning, see [`PinSet`].
    pub fn check_server_identity(
        mut self,
        check: impl Fn(&str, &[PeerCertificate]) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.check_server_identity = Some(Arc::new(check));
        self
    }

    /// Key log lines for this client's connections (Node's agent `'keylog'` event).
    pub fn keylog(mut self, keylog: KeyLog) -> Self {
        self.keylog = Some(keylog);
        self
    }

    /// The part of Node's `getName` these options contribute: equal strings share pools and
    /// sessions. Certificates enter by their SHA-256, callbacks by their address.
    pub(crate) fn pool_key(&self) -> String {
        use std::fmt::Write as _;
        let mut key = String::new();
        let _ = write!(key, "{:?}:", self.roots);
        for ca in &self.ca {
            key.push_str(&short_hash(ca));
            key.push(',');
        }
        key.push(':');
        if let Some(id) = &self.identity {
            key.push_str(&short_hash(&id.chain()[0]));
        }
        let _ = write!(
            key,
            ":{}:{:?}:{:?}:{}:{}:",
            self.servername.as_deref().unwrap_or("\u{0}"),
            self.min_version,
            self.max_version,
            self.ciphers.as_deref().unwrap_or(""),
            self.reject_unauthorized
        );
        for crl in &self.crls {
            key.push_str(&short_hash(crl));
        }
        if let Some(check) = &self.check_server_identity {
            let _ = write!(key, ":{:p}", Arc::as_ptr(check) as *const ());
        }
        key
    }

    /// Builds the rustls client config (ALPN and resumption are set per connection).
    pub(crate) fn build(&self) -> Result<rustls::ClientConfig> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(list) = &self.ciphers {
            provider.cipher_suites = options::select_suites(&provider, std::slice::from_ref(list))?;
        }
        let provider = Arc::new(provider);
        let versions = options::versions(
            self.min_version.unwrap_or(TlsVersion::Tls12),
            self.max_version.unwrap_or(TlsVersion::Tls13),
        )?;
        let mut roots = rustls::RootCertStore::empty();
        match self.roots {
            Roots::Bundled => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Roots::Os => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
            }
            Roots::OnlyCa => {}
        }
        for ca in &self.ca {
            roots
                .add(ca.clone())
                .map_err(|e| Error::tls("unusable CA certificate", e))?;
        }
        if roots.is_empty() {
            return Err(Error::config(
                "no trusted roots: give a CA (ca) or use the default roots",
            ));
        }
        let mut webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if !self.crls.is_empty() {
            webpki = webpki
                .with_crls(self.crls.clone())
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status();
        }
        let webpki = webpki
            .build()
            .map_err(|e| Error::config(format!("server certificate verification: {e}")))?;
        let verifier = Arc::new(NodeVerifier {
            inner: webpki,
            check: self.check_server_identity.clone(),
            reject_unauthorized: self.reject_unauthorized,
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| Error::tls("inconsistent TLS options", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.identity {
            Some(id) => builder.with_client_cert_resolver(Arc::new(ClientIdentity(id.key.clone()))),
            None => builder.with_no_client_auth(),
        };
        if let Some(keylog) = &self.keylog {
            config.key_log = keylog.clone().into_rustls();
        } else if let Ok(Some(keylog)) = KeyLog::from_env() {
            config.key_log = keylog.into_rustls();
        }
        Ok(config)
    }
}

fn short_hash(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Node's default `tls.checkServerIdentity(host, cert)`: the leaf must be valid for `host`
/// (DNS SANs with wildcards, or an IP SAN for an IP literal).
///
/// # Errors
/// `ERR_TLS_CERT_ALTNAME_INVALID`, with Node's message naming the host and the altnames.
pub fn check_server_identity(host: &str, chain: &[PeerCertificate]) -> Result<()> {
    let Some(leaf) = chain.first() else {
        return Err(Error::new(Kind::Tls, "the server sent no certificate")
            .with_code("ERR_TLS_CERT_ALTNAME_INVALID"));
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let bracketless = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bracketless.to_owned())
        .map_err(|_| altname_error(host, leaf, bracketless.parse::<std::net::IpAddr>().is_ok()))?;
    let der = leaf.der();
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Error::new(Kind::Tls, format!("unparsable certificate: {e}")))?;
    cert.verify_is_valid_for_subject_name(&name)
        .map_err(|_| altname_error(host, leaf, matches!(name, ServerName::IpAddress(_))))
}

fn altname_error(host: &str, leaf: &PeerCertificate, ip: bool) -> Error {
    let sans = leaf.subjectaltname().unwrap_or("");
    let reason = if ip {
        let ips: Vec<&str> = sans
            .split(", ")
            .filter_map(|s| s.strip_prefix("IP Address:"))
            .collect();
        format!("IP: {host} is not in the cert's list: {}", ips.join(", "))
    } else if sans.is_empty() {
        "Cert does not contain a DNS name".to_owned()
    } else {
        format!("Host: {host}. is not in the cert's altnames: {sans}")
    };
    Error::new(
        Kind::Tls,
        format!("Hostname/IP does not match certificate's altnames: {reason}"),
    )
    .with_code("ERR_TLS_CERT_ALTNAME_INVALID")
}

/// A set of `pin-sha256` values (base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as
/// HPKP and Node's pinning example compute them). Use [`PinSet::check`] as a
/// `check_server_identity`: the host check runs first, then some certificate in the chain
/// must carry a pinned key.
#[derive(Debug, Clone)]
pub struct PinSet {
    pins: Vec<String>,
}

impl PinSet {
    /// Pins given as base64, with or without the `sha256//` prefix curl uses.
    pub fn new<I, S>(pins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            pins: pins
                .into_iter()
                .map(|p| {
                    let p = p.as_ref().trim();
                    p.strip_prefix("sha256//").unwrap_or(p).to_owned()
                })
                .collect(),
        }
    }

    /// The host check, then the pin check.
    ///
    /// # Errors
    /// `ERR_TLS_CERT_ALTNAME_INVALID`, or `ERR_TLS_PIN_MISMATCH` naming the pins seen.
    pub fn check(&self, host: &str, chain: &[PeerCertificate]) -> Result<()> {
        check_server_identity(host, chain)?;
        if chain
            .iter()
            .any(|c| self.pins.iter().any(|p| p == c.pin_sha256()))
        {
            return Ok(());
        }
        let seen: Vec<String> = chain
            .iter()
            .map(|c| format!("sha256//{}", c.pin_sha256()))
            .collect();
        Err(Error::new(
            Kind::Tls,
            format!(
                "Certificate verification error: the public key of '{host}' does not match any pin; the chain has {}",
                seen.join(", ")
            ),
        )
        .with_code("ERR_TLS_PIN_MISMATCH"))
    }
}

/// The pin of a certificate: base64 SHA-256 of its SubjectPublicKeyInfo.
pub fn pin_sha256(cert: &PeerCertificate) -> String {
    cert.pin_sha256().to_owned()
}

/// Verifies like Node: the chain (webpki, Mozilla or given roots, CRLs), then the identity check
/// (the default or the user's). Failures carry Node's code inside `CertificateError::Other`.
struct NodeVerifier {
    inner: Arc<WebPkiServerVerifier>,
    check: Option<CheckServerIdentity>,
    reject_unauthorized: bool,
}

impl fmt::Debug for NodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeVerifier")
            .field("custom_check", &self.check.is_some())
            .field("reject_unauthorized", &self.reject_unauthorized)
            .finish()
    }
}

fn rejected(error: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

impl ServerCertVerifier for NodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if !self.reject_unauthorized {
            return Ok(ServerCertVerified::assertion());
        }
        let name_mismatch = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => false,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => true,
            Err(e) => {
                let mut chain = vec![end_entity.clone().into_owned()];
                chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
                let code = node_code(&e, &chain);
                return Err(rejected(
                    Error::new(Kind::Tls, format!("certificate verification failed: {e}"))
                        .with_code(code),
                ));
            }
        };
        let host = match server_name {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        match &self.check {
            None if name_mismatch => {
                let leaf = PeerCertificate::from_der(end_entity).map_err(rejected)?;
                Err(rejected(altname_error(
                    &host,
                    &leaf,
                    matches!(server_name, ServerName::IpAddress(_)),
                )))
            }
            None => Ok(ServerCertVerified::assertion()),
            Some(check) => {
                let mut chain = vec![PeerCertificate::from_der(end_entity).map_err(rejected)?];
                for c in intermediates {
                    chain.push(PeerCertificate::from_der(c).map_err(rejected)?);
                }
                check(&host, &chain).map_err(rejected)?;
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client certificate, offered whenever the server asks.
#[derive(Debug)]
struct ClientIdentity(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Finds the portcullis error a verifier put inside a rustls error, if any.
pub(crate) fn verifier_error(err: &rustls::Error) -> Option<&Error> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<Error>()
        }
        _ => None,
    }
}

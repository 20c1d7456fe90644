//! The server's TLS configuration: identities (default and per SNI name, plus an async
//! callback), protocol choices, client certificates, session resumption, key log, OCSP.
//!
//! Built once into an `Arc<rustls::ServerConfig>`; a reload swaps the whole thing for new
//! connections while the session cache and ticket keys carry over.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

use super::keylog::KeyLog;
use super::options::{self, TlsVersion};
use super::tickets::{SessionCache, TicketKeys, Ticketer};
use super::verify::{self, Presenter};
use super::Identity;
use crate::error::{Error, Result};

/// The future an [`sni_callback`](ServerTlsConfigBuilder::sni_callback) returns.
pub type SniFuture = Pin<Box<dyn Future<Output = Option<Identity>> + Send>>;
pub(crate) type SniCallback = Arc<dyn Fn(&str) -> SniFuture + Send + Sync>;

/// A built server TLS configuration. Cheap to clone. Give it to
/// [`ServerBuilder::tls`](crate::ServerBuilder::tls), or swap it in at run time with
/// [`ServerHandle::set_tls_config`](crate::ServerHandle::set_tls_config) (Node's
/// `setSecureContext`).
#[derive(Clone)]
pub struct ServerTlsConfig {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) explicit_alpn: bool,
    pub(crate) explicit_ticket_keys: bool,
    pub(crate) sni: Arc<SniResolver>,
    pub(crate) sni_callback: Option<SniCallback>,
    pub(crate) client_auth: Option<Arc<dyn ClientCertVerifier>>,
    /// The handshake refuses unverified client chains (`reject_unauthorized`), so one that
    /// got through needs no second verification.
    pub(crate) client_auth_enforced: bool,
}

impl fmt::Debug for ServerTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsConfig")
            .field("alpn", &self.config.alpn_protocols)
            .field("client_auth", &self.client_auth.is_some())
            .field("sni_callback", &self.sni_callback.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTlsConfig {
    /// Starts a configuration. Defaults: TLS 1.2–1.3, the provider's AEAD suites and groups,
    /// no client certificates, a 20480-entry session cache and stateless tickets under a random
    /// key, both valid 7200 s (Node's effective `sessionTimeout`).
    pub fn builder() -> ServerTlsConfigBuilder {
        ServerTlsConfigBuilder::default()
    }

    /// The config with ALPN set for `http2` unless the user chose the list, and the resumption
    /// state of `previous` kept unless this config brought its own ticket keys.
    pub(crate) fn finalize(
        &self,
        http2: bool,
        previous: Option<&ServerConfig>,
    ) -> Arc<ServerConfig> {
        if self.explicit_alpn && previous.is_none() {
            return self.config.clone();
        }
        let mut config = (*self.config).clone();
        if !self.explicit_alpn {
            config.alpn_protocols = if http2 {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            } else {
                vec![b"http/1.1".to_vec()]
            };
        }
        if let Some(previous) = previous {
            if !self.explicit_ticket_keys {
                config.ticketer = previous.ticketer.clone();
            }
            config.session_storage = previous.session_storage.clone();
        }
        Arc::new(config)
    }

    /// This configuration with `identity` as the default identity (the SNI names and every
    /// other option kept): what a certificate renewal swaps in.
    pub fn with_identity(&self, identity: Identity) -> Self {
        let names = self
            .sni
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let sni = Arc::new(SniResolver {
            default: Some(identity.key),
            names: RwLock::new(names),
        });
        let mut config = (*self.config).clone();
        config.cert_resolver = sni.clone();
        Self {
            config: Arc::new(config),
            sni,
            ..self.clone()
        }
    }

    /// The expiry of every certificate this configuration presents (not those an
    /// `sni_callback` supplies).
    pub(crate) fn certificate_expiries(&self) -> Vec<crate::server::CertificateExpiry> {
        self.sni.expiries()
    }

    /// Node's `addContext(hostname, identity)`: serve `identity` to clients asking for
    /// `hostname` (exact, or `*.example.com` for one label). The most recently added match wins.
    pub fn add_context(&self, hostname: &str, identity: Identity) {
        self.sni.add(hostname, identity.key);
    }
}

/// Builds a [`ServerTlsConfig`]. Setters consume and return the builder; errors surface at
/// [`build`](Self::build).
pub struct ServerTlsConfigBuilder {
    identity: Option<Identity>,
    sni: Vec<(String, Identity)>,
    sni_callback: Option<SniCallback>,
    ocsp: Option<Vec<u8>>,
    min_version: TlsVersion,
    max_version: TlsVersion,
    cipher_suites: Option<Vec<String>>,
    kx_groups: Option<Vec<String>>,
    alpn: Option<Vec<Vec<u8>>>,
    request_cert: bool,
    reject_unauthorized: bool,
    client_ca: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    session_cache: usize,
    session_timeout: Duration,
    session_tickets: bool,
    ticket_keys: Option<TicketKeys>,
    keylog: Option<KeyLog>,
    without_identity: bool,
}

impl Default for ServerTlsConfigBuilder {
    fn default() -> Self {
        Self {
            identity: None,
            sni: Vec::new(),
            sni_callback: None,
            ocsp: None,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: None,
            kx_groups: None,
            alpn: None,
            request_cert: false,
            reject_unauthorized: true,
            client_ca: Vec::new(),
            crls: Vec::new(),
            session_cache: 20480,
            session_timeout: Duration::from_secs(7200),
            session_tickets: true,
            ticket_keys: None,
            keylog: None,
            without_identity: false,
        }
    }
}

impl fmt::Debug for ServerTlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsConfigBuilder")
            .field("identity", &self.identity)
            .field("sni", &self.sni.len())
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .field("request_cert", &self.request_cert)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .finish_non_exhaustive()
    }
}

impl ServerTlsConfigBuilder {
    /// The default identity: for clients that send no SNI or a name no other identity
    /// matches. Node's `key`/`cert` or `pfx`.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Node's `addContext(hostname, …)` at build time: `hostname` is exact or `*.example.com`
    /// (one label). Later entries win over earlier ones, as in Node.
    pub fn sni(mut self, hostname: impl Into<String>, identity: Identity) -> Self {
        self.sni.push((hostname.into(), identity));
        self
    }

    /// Node's `SNICallback`: called with the SNI name (only when the client sent one) before
    /// the static SNI entries are consulted; `Some(identity)` serves it, `None` falls back to
    /// the SNI entries and the default identity.
    pub fn sni_callback(
        mut self,
        callback: impl Fn(&str) -> SniFuture + Send + Sync + 'static,
    ) -> Self {
        self.sni_callback = Some(Arc::new(callback));
        self
    }

    /// A DER OCSP response stapled with the default identity.
    pub fn ocsp_response(mut self, der: Vec<u8>) -> Self {
        self.ocsp = Some(der);
        self
    }

    /// Node's `minVersion`. Default: TLS 1.2.
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// Node's `maxVersion`. Default: TLS 1.3.
    pub fn max_version(mut self, version: TlsVersion) -> Self {
        self.max_version = version;
        self
    }

    /// Node's `ciphers`: suites by IANA or OpenSSL name, `:`- or `,`-separated, in preference
    /// order. Default: the aws-lc-rs provider's AEAD forward-secret suites.
    pub fn cipher_suites<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cipher_suites = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Node's `ecdhCurve`: key exchange groups by name (`X25519`, `P-256`, `P-384`,
    /// `X25519MLKEM768`), in preference order. Default: the provider's.
    pub fn kx_groups<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kx_groups = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Node's `ALPNProtocols`, in server preference order. Default: `h2`, `http/1.1` (h2
    /// dropped when the server's `http2` is off).
    pub fn alpn_protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Vec<u8>>,
    {
        self.alpn = Some(protocols.into_iter().map(Into::into).collect());
        self
    }

    /// Node's `requestCert` (ESP-IDF `client_verify_cert`): ask clients for a certificate.
    /// Default: off.
    pub fn request_cert(mut self, request: bool) -> Self {
        self.request_cert = request;
        self
    }

    /// Node's `rejectUnauthorized` (with `request_cert`): refuse a missing or untrusted client
    /// certificate in the handshake. When off, the handshake succeeds and handlers see
    /// [`TlsInfo::is_authorized`](crate::TlsInfo::is_authorized) and the reason. Default: on.
    pub fn reject_unauthorized(mut self, reject: bool) -> Self {
        self.reject_unauthorized = reject;
        self
    }

    /// Node's `ca` on the server: the CAs client certificates must chain to.
    pub fn client_ca<I>(mut self, certs: I) -> Self
    where
        I: IntoIterator<Item = CertificateDer<'static>>,
    {
        self.client_ca.extend(certs);
        self
    }

    /// Node's `crl`: revocation lists checked against client certificates.
    pub fn crls<I>(mut self, crls: I) -> Self
    where
        I: IntoIterator<Item = CertificateRevocationListDer<'static>>,
    {
        self.crls.extend(crls);
        self
    }

    /// Server session cache size (session IDs and stateful resumption); 0 disables it.
    /// Default: 20480 (OpenSSL's).
    pub fn session_cache(mut self, entries: usize) -> Self {
        self.session_cache = entries;
        self
    }

    /// Node's `sessionTimeout`: how long a cached session or ticket stays valid.
    /// Default: 7200 s (what Node actually applies; its docs say 300).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Issue stateless session tickets (ESP-IDF `session_tickets`). Default: on.
    pub fn session_tickets(mut self, enabled: bool) -> Self {
        self.session_tickets = enabled;
        self
    }

    /// Node's `ticketKeys`: servers sharing keys resume each other's sessions. Default: one
    /// random key per server, kept across reloads.
    pub fn ticket_keys(mut self, keys: TicketKeys) -> Self {
        self.ticket_keys = Some(keys);
        self
    }

    /// Write TLS secrets as NSS key log lines (Node's `'keylog'` event). Default: off.
    pub fn keylog(mut self, keylog: KeyLog) -> Self {
        self.keylog = Some(keylog);
        self
    }

    /// Lets [`build`](Self::build) succeed with no identity at all: handshakes then fail with
    /// an alert until one arrives (`ServerBuilder::acme` with the `acme` feature,
    /// [`ServerHandle::add_context`](crate::ServerHandle::add_context) or
    /// [`ServerHandle::set_tls_config`](crate::ServerHandle::set_tls_config)).
    pub fn without_identity(mut self) -> Self {
        self.without_identity = true;
        self
    }

    /// Builds the configuration.
    ///
    /// # Errors
    /// No identity at all (unless [`without_identity`](Self::without_identity)), an unknown suite/group/version name, an empty client CA list with
    /// rejection on, unusable CRLs, or bad ticket keys.
    pub fn build(self) -> Result<ServerTlsConfig> {
        if self.identity.is_none()
            && self.sni.is_empty()
            && self.sni_callback.is_none()
            && !self.without_identity
        {
            return Err(Error::config(
                "a TLS configuration needs an identity (certificate and key)",
            ));
        }
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(names) = &self.cipher_suites {
            provider.cipher_suites = options::select_suites(&provider, names)?;
        }
        if let Some(names) = &self.kx_groups {
            provider.kx_groups = options::select_groups(&provider, names)?;
        }
        let versions = options::versions(self.min_version, self.max_version)?;
        if !provider
            .cipher_suites
            .iter()
            .any(|s| versions.iter().any(|v| s.version() == *v))
        {
            return Err(Error::config(format!(
                "none of the chosen cipher suites works with {}..{}",
                self.min_version, self.max_version
            )));
        }
        let provider = Arc::new(provider);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| Error::tls("inconsistent TLS options", e))?;

        let (builder, client_auth) = if self.request_cert {
            let strict = strict_client_verifier(&self.client_ca, self.crls, &provider)?;
            let offered: Arc<dyn ClientCertVerifier> = match (&strict, self.reject_unauthorized) {
                (Some(strict), true) => strict.clone(),
                (None, true) => {
                    return Err(Error::config(
                        "request_cert with reject_unauthorized needs client CA certificates (client_ca)",
                    ))
                }
                (strict, false) => Arc::new(Permissive {
                    hints: strict
                        .as_ref()
                        .map(|s| s.root_hint_subjects().to_vec())
                        .unwrap_or_default(),
                    provider: provider.clone(),
                }),
            };
            let strict = strict.unwrap_or_else(|| Arc::new(NoTrust(provider.clone())));
            (builder.with_client_cert_verifier(offered), Some(strict))
        } else {
            (builder.with_no_client_auth(), None)
        };

        let default = self.identity.map(|id| {
            let mut key = (*id.key).clone();
            if let Some(ocsp) = self.ocsp {
                key.ocsp = Some(ocsp);
            }
            Arc::new(key)
        });
        let sni = Arc::new(SniResolver {
            default,
            names: RwLock::new(Vec::new()),
        });
        for (name, identity) in self.sni {
            sni.add(&name, identity.key);
        }
        let mut config = builder.with_cert_resolver(sni.clone());
        config.ignore_client_order = true;
        config.session_storage = if self.session_cache == 0 {
            Arc::new(NoServerSessionStorage {})
        } else {
            Arc::new(SessionCache::new(self.session_cache, self.session_timeout))
        };
        let explicit_ticket_keys = self.ticket_keys.is_some();
        if self.session_tickets {
            // Keys of one's own are rotated by their owner; random ones rotate themselves.
            config.ticketer = Arc::new(match &self.ticket_keys {
                Some(keys) => Ticketer::new(keys, self.session_timeout)?,
                None => Ticketer::rotating(self.session_timeout)?,
            });
        } else {
            // TLS 1.3 then resumes through the session cache (stateful tickets), if on.
            config.send_tls13_tickets = if self.session_cache == 0 { 0 } else { 2 };
        }
        if let Some(keylog) = self.keylog {
            config.key_log = keylog.into_rustls();
        }
        let explicit_alpn = self.alpn.is_some();
        if let Some(alpn) = self.alpn {
            config.alpn_protocols = alpn;
        }
        Ok(ServerTlsConfig {
            config: Arc::new(config),
            explicit_alpn,
            explicit_ticket_keys,
            sni,
            sni_callback: self.sni_callback,
            client_auth_enforced: client_auth.is_some() && self.reject_unauthorized,
            client_auth,
        })
    }
}

/// The webpki verifier for client chains, or `None` when no CA was given.
fn strict_client_verifier(
    client_ca: &[CertificateDer<'static>],
    crls: Vec<CertificateRevocationListDer<'static>>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>> {
    if client_ca.is_empty() {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in client_ca {
        roots.add(ca.clone()).map_err(|_| {
            Error::config("unusable client CA certificate: not valid DER-encoded X.509")
        })?;
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if !crls.is_empty() {
        builder = builder
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let verifier = builder
        .build()
        .map_err(|e| Error::config(format!("client certificate verification: {e}")))?;
    Ok(Some(Arc::new(NodeClientVerifier {
        inner: verifier,
        anchors: client_ca.to_vec(),
        provider: provider.clone(),
    })))
}

/// The handshake-signature half of a client-certificate verifier, the same in all of ours: the
/// client's proof that it holds its certificate's key, checked with the provider's algorithms
/// (see [`signature`]).
macro_rules! handshake_signatures {
    ($self:ident . $($provider:tt)+) => {
        fn verify_tls12_signature(
            &$self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            signature(&$self.$($provider)+, message, cert, dss, false)
        }

        fn verify_tls13_signature(
            &$self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            signature(&$self.$($provider)+, message, cert, dss, true)
        }

        fn supported_verify_schemes(&$self) -> Vec<SignatureScheme> {
            $self
                .$($provider)+
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// webpki's client verifier with OpenSSL's anchor rule (a self-signed client certificate listed
/// among the client CAs is trusted as it is, dates checked) and Node's codes with a reason in
/// its refusals.
#[derive(Debug)]
struct NodeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    anchors: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verdict = match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(_) => Ok(()),
            Err(e) => verify::pinned_anchor(end_entity, &self.anchors, now).unwrap_or(Err(e)),
        };
        match verdict {
            Ok(()) => Ok(ClientCertVerified::assertion()),
            Err(e) => {
                let mut chain = vec![end_entity.clone().into_owned()];
                chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
                Err(verify::refusal(&e, &chain, Presenter::Client).into_rustls(&chain))
            }
        }
    }

    handshake_signatures!(self.provider);
}

/// Asks for a certificate, accepts any (its signature over the handshake is still checked);
/// the verdict is computed after the handshake for `TlsInfo::authorization_error`.
#[derive(Debug)]
struct Permissive {
    hints: Vec<DistinguishedName>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for Permissive {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!(self.provider);
}

/// Checks the client's handshake signature (proof it holds the certificate's key).
///
/// webpki reads only X.509 v3; the key of a v1 certificate (which OpenSSL and Node accept) is
/// taken from its SubjectPublicKeyInfo, so that such a client completes the handshake and
/// the verdict on the certificate itself is the verifier's.
fn signature(
    provider: &rustls::crypto::CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
    let algorithms = &provider.signature_verification_algorithms;
    let checked = if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    };
    match checked {
        Err(_) if is_v1(cert) => v1_signature(message, cert, dss, algorithms, tls13),
        checked => checked,
    }
}

fn is_v1(cert: &CertificateDer<'_>) -> bool {
    use x509_parser::prelude::{FromDer as _, X509Certificate, X509Version};
    X509Certificate::from_der(cert.as_ref()).is_ok_and(|(_, c)| c.version() == X509Version::V1)
}

/// The handshake signature checked with the public key of an X.509 v1 certificate.
fn v1_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &rustls::crypto::WebPkiSupportedAlgorithms,
    tls13: bool,
) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    use SignatureScheme as S;
    let tls12_only = matches!(
        dss.scheme,
        S::RSA_PKCS1_SHA1
            | S::RSA_PKCS1_SHA256
            | S::RSA_PKCS1_SHA384
            | S::RSA_PKCS1_SHA512
            | S::ECDSA_SHA1_Legacy
    );
    if tls13 && tls12_only {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
    let key = webpki::RawPublicKeyEntity::try_from(&spki).map_err(|_| bad())?;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map_or(&[][..], |(_, algs)| *algs);
    // TLS 1.3 names one algorithm per scheme; TLS 1.2's RSA and ECDSA schemes may map to
    // several, tried in turn.
    let candidates = if tls13 {
        &candidates[..candidates.len().min(1)]
    } else {
        candidates
    };
    for alg in candidates {
        if key.verify_signature(*alg, message, dss.signature()).is_ok() {
            return Ok(rustls::client::danger::HandshakeSignatureValid::assertion());
        }
    }
    Err(bad())
}

/// The strict verdict when no client CA was configured: nothing is trusted.
#[derive(Debug)]
struct NoTrust(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for NoTrust {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    handshake_signatures!(self.0);
}

/// Picks the identity by SNI: the most recently added matching name, else the default.
pub(crate) struct SniResolver {
    default: Option<Arc<CertifiedKey>>,
    names: RwLock<Vec<(String, Arc<CertifiedKey>)>>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field("default", &self.default.is_some())
            .finish_non_exhaustive()
    }
}

impl SniResolver {
    /// Each identity's leaf `notAfter`: the default one, then the SNI ones in the order added.
    fn expiries(&self) -> Vec<crate::server::CertificateExpiry> {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        let all = self
            .default
            .iter()
            .map(|key| ("default", key))
            .chain(names.iter().map(|(name, key)| (name.as_str(), key)));
        all.filter_map(|(identity, key)| {
            Some(crate::server::CertificateExpiry::new(
                identity,
                super::identity::leaf_not_after(key)?,
            ))
        })
        .collect()
    }

    fn add(&self, hostname: &str, key: Arc<CertifiedKey>) {
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((hostname.to_ascii_lowercase(), key));
    }

    pub(crate) fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let names = self.names.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, key)) = names
                .iter()
                .rev()
                .find(|(pattern, _)| matches(pattern, name))
            {
                return Some(key.clone());
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        usable(self.lookup(hello.server_name())?, &hello)
    }
}

/// `key` when it can sign with one of the client's signature schemes. rustls builds a TLS 1.2
/// ServerHello before asking the key for a scheme and then fails without an alert; a key
/// refused here makes it send one (`access_denied`).
fn usable(key: Arc<CertifiedKey>, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
    let schemes = hello.signature_schemes();
    // Empty when no cipher suite is in common: rustls then refuses with handshake_failure.
    (schemes.is_empty() || key.key.choose_scheme(schemes).is_some()).then_some(key)
}

/// `pattern` is lowercase; `*.` matches exactly one label (Node: `*` becomes `[^.]*`).
fn matches(pattern: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

/// One identity for every client: what an `sni_callback` answer is served with.
#[derive(Debug)]
pub(crate) struct FixedIdentity(pub(crate) Arc<CertifiedKey>);

impl ResolvesServerCert for FixedIdentity {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        usable(self.0.clone(), &hello)
    }
}

/// Reads a DER OCSP response (`openssl ocsp -respout`) for
/// [`ServerTlsConfigBuilder::ocsp_response`].
///
/// # Errors
/// The file cannot be read, is not a regular file or is over 1 MiB; the error names it.
pub fn load_ocsp_response(path: impl AsRef<std::path::Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let bytes = super::keyfile::read_bounded(path, super::keyfile::MAX_SMALL)?;
    Ok(bytes.to_vec())
}

/// Reads certificate revocation lists from a PEM (`X509 CRL`) or DER file.
///
/// # Errors
/// The file cannot be read or holds no CRL; the error names it.
pub fn load_crls(
    path: impl AsRef<std::path::Path>,
) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let path = path.as_ref();
    let bytes = super::keyfile::read_bounded(path, super::keyfile::MAX_CRL)?;
    if !bytes.starts_with(b"-----") && bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("malformed PEM: {e}")).with_path(path))?;
    if crls.is_empty() {
        return Err(
            Error::config("no certificate revocation list (X509 CRL) found").with_path(path),
        );
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn sni_patterns_follow_node() {
        assert!(matches("b.test.com", "B.test.com"));
        assert!(matches("*.test.com", "b.test.com"));
        assert!(!matches("*.test.com", "a.b.test.com"));
        assert!(!matches("*.test.com", "test.com"));
        assert!(!matches("a.test.com", "b.test.com"));
    }
}

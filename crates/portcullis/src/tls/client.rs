//! The client's TLS options: trust (Mozilla's bundled roots, the OS store, extra or replacing
//! CAs, CRLs), client identity, versions and suites, and the server identity check
//! (Node's `checkServerIdentity`) with certificate/public-key pinning.
// Without the `client` feature only the options type is public; the rest serves the agent.
#![cfg_attr(not(feature = "client"), allow(dead_code))]

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

use super::host_check::{check_server_identity, check_server_identity_rfc6125};
use super::options::{self, TlsVersion};
use super::verify::{self, verifier_error, Presenter};
use super::{Identity, KeyLog, PeerCertificate};
use crate::error::{Error, Result};

/// Node's `checkServerIdentity(host, cert)`: runs after the chain verified, and not on a
/// resumed session; an `Err` fails the handshake with that error (make one with
/// [`Error::server_identity`]). Receives the host name checked (the servername, else the URL's
/// host) and the chain as Node's `issuerCertificate` links walk it: the leaf, its issuers
/// among the certificates the server sent, then the trusted CA when it is one given with
/// `ca`/`add_ca` (a root from the bundled or OS store is not included).
pub type CheckServerIdentity = Arc<dyn Fn(&str, &[PeerCertificate]) -> Result<()> + Send + Sync>;

/// Which roots verify servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Roots {
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
    /// The key log sink, and a number telling sinks apart in the pool key.
    pub(crate) keylog: Option<(KeyLog, u64)>,
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

    /// Node's `ciphers`: the cipher suites by IANA or OpenSSL name, in preference order (each
    /// item may also be a `:`-separated list), as on the server
    /// ([`ServerTlsConfigBuilder::cipher_suites`](crate::tls::ServerTlsConfigBuilder::cipher_suites)).
    pub fn cipher_suites<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        self.ciphers = Some(names.join(":"));
        self
    }

    /// The former name of [`cipher_suites`](Self::cipher_suites), with one `:`-separated list.
    #[deprecated(note = "use cipher_suites, the name the server builder uses too")]
    pub fn ciphers(self, list: impl Into<String>) -> Self {
        self.cipher_suites([list.into()])
    }

    /// Node's `checkServerIdentity`: replaces the default host-name check (call
    /// [`check_server_identity`] inside to keep it) — for pinning, see [`PinSet`](crate::tls::PinSet).
    pub fn check_server_identity(
        mut self,
        check: impl Fn(&str, &[PeerCertificate]) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.check_server_identity = Some(Arc::new(check));
        self
    }

    /// Checks the host name by RFC 6125 instead of Node's rules: the subjectAltName only (no
    /// fallback to the subject CN) and a `*` only as the whole first label; see
    /// [`check_server_identity_rfc6125`]. Node's rules stay the default (see ARCHITECTURE.md,
    /// "Host-name checks").
    pub fn rfc6125_host_check(self) -> Self {
        self.check_server_identity(check_server_identity_rfc6125)
    }

    /// Key log lines for this client's connections (Node's agent `'keylog'` event).
    pub fn keylog(mut self, keylog: KeyLog) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.keylog = Some((keylog, id));
        self
    }

    /// Key log lines to the file `SSLKEYLOGFILE` names, when it is set (as curl and browsers
    /// do). Nothing is written unless this (or [`keylog`](Self::keylog)) is called.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn keylog_from_env(self) -> Result<Self> {
        Ok(match KeyLog::from_env()? {
            Some(keylog) => self.keylog(keylog),
            None => self,
        })
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
        // The servername is not part of it: it changes no config, and the agent adds the one
        // each request uses (Node's rule may take it from the Host header) to the pool key.
        let _ = write!(
            key,
            ":{:?}:{:?}:{}:{}:",
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
        // A connection logs keys to the sink of the config that made it, so another sink needs
        // another config (and other sockets).
        if let Some((_, id)) = &self.keylog {
            let _ = write!(key, ":keylog {id}");
        }
        key
    }

    /// Builds the rustls client config (ALPN and resumption are set per connection), and,
    /// when verification is off, what tells whether a server would have passed it.
    pub(crate) fn build(&self) -> Result<(rustls::ClientConfig, Option<Authorize>)> {
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
                for cert in os_roots() {
                    let _ = roots.add(cert.clone());
                }
            }
            Roots::OnlyCa => {}
        }
        for ca in &self.ca {
            roots.add(ca.clone()).map_err(|_| {
                Error::config("unusable CA certificate: not valid DER-encoded X.509")
            })?;
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
        let parsed: Arc<[PeerCertificate]> = self
            .ca
            .iter()
            .filter_map(|der| PeerCertificate::from_der(der).ok())
            .collect();
        let verifier = Arc::new(NodeVerifier {
            inner: webpki.clone(),
            check: self.check_server_identity.clone(),
            reject_unauthorized: self.reject_unauthorized,
            anchors: self.ca.clone(),
            parsed_anchors: parsed.clone(),
        });
        let authorizer = (!self.reject_unauthorized).then(|| {
            let strict = Authorizer(NodeVerifier {
                inner: webpki,
                check: self.check_server_identity.clone(),
                reject_unauthorized: true,
                anchors: self.ca.clone(),
                parsed_anchors: parsed,
            });
            Arc::new(move |chain: &[CertificateDer<'_>], name: &ServerName<'_>| {
                strict.authorization_error(chain, name)
            }) as Authorize
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
        // Secrets are written only when asked for (`keylog`, `keylog_from_env`), never because
        // SSLKEYLOGFILE happens to be set.
        if let Some((keylog, _)) = &self.keylog {
            config.key_log = keylog.clone().into_rustls();
        }
        Ok((config, authorizer))
    }
}

/// Tells, for a connection made with verification off (`rejectUnauthorized: false`), why the
/// server's chain would have been refused for a name: Node's `authorizationError`.
pub(crate) type Authorize =
    Arc<dyn Fn(&[CertificateDer<'_>], &ServerName<'_>) -> Option<(String, String)> + Send + Sync>;

/// The checks a verifying client would have run.
#[derive(Debug)]
struct Authorizer(NodeVerifier);

impl Authorizer {
    /// Why the server's chain would have been refused for `server_name`: Node's code (or the
    /// message of an error without one) and the reason in words, or `None` when it passes.
    fn authorization_error(
        &self,
        chain: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
    ) -> Option<(String, String)> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Some((
                "UNABLE_TO_GET_ISSUER_CERT".to_owned(),
                "the server sent no certificate".to_owned(),
            ));
        };
        let refused = self
            .0
            .verify_server_cert(leaf, intermediates, server_name, &[], UnixTime::now())
            .err()?;
        Some(match verifier_error(&refused) {
            Some(ours) => (
                ours.code().map_or_else(|| ours.to_string(), str::to_owned),
                ours.to_string(),
            ),
            None => (refused.to_string(), refused.to_string()),
        })
    }
}

fn short_hash(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The system's trust store, read once per process (agents build their configs on a blocking
/// thread, so the read never runs on the async runtime).
fn os_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Verifies like Node: the chain (webpki, Mozilla or given roots, CRLs), then the identity check
/// (the default or the user's). Failures carry Node's code inside `CertificateError::Other`.
struct NodeVerifier {
    inner: Arc<WebPkiServerVerifier>,
    check: Option<CheckServerIdentity>,
    reject_unauthorized: bool,
    /// The CAs given (`ca`, `add_ca`): where the chain walk shown to a custom check finds the
    /// trusted root, as Node's `issuerCertificate` chain does.
    anchors: Vec<CertificateDer<'static>>,
    /// The same, parsed once.
    parsed_anchors: Arc<[PeerCertificate]>,
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

/// The chain as Node's `getPeerCertificate(true)` walks it through `issuerCertificate`: the
/// leaf, then each issuer found among the certificates the server sent (in whatever order it
/// sent them), then the trusted CA from `anchors`, ending at a self-issued certificate or
/// where no issuer is known. Certificates the server sent off the path are left out.
fn node_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &[PeerCertificate],
) -> Result<Vec<PeerCertificate>> {
    // Each presented certificate is parsed once; the anchors were parsed with the options.
    let leaf = PeerCertificate::from_der(end_entity)?;
    let sent: Vec<PeerCertificate> = intermediates
        .iter()
        .filter_map(|der| PeerCertificate::from_der(der).ok())
        .collect();
    let candidates: Vec<&PeerCertificate> = sent.iter().chain(anchors.iter()).collect();
    let mut used = vec![false; candidates.len()];
    let mut chain = vec![leaf];
    loop {
        let (subject, issuer) = chain[chain.len() - 1].raw_names();
        if subject == issuer {
            break;
        }
        // The server's certificates come first in `candidates`, so they win over anchors.
        let next = candidates
            .iter()
            .enumerate()
            .find(|(i, c)| !used[*i] && c.raw_names().0 == issuer);
        let Some((i, cert)) = next else {
            break;
        };
        used[i] = true;
        let cert = (*cert).clone();
        chain.push(cert);
    }
    Ok(chain)
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
        // The chain first (Node: chain errors win over name errors). webpki checks the name
        // only once the chain verified, so a name error means the chain is good; the name is
        // then judged by Node's rules, not webpki's.
        let verdict = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(()),
            // A self-signed certificate given as `ca` and presented as is: trusted, as OpenSSL
            // does (webpki refuses it as a CA used as an end entity).
            Err(e) => verify::pinned_anchor(end_entity, &self.anchors, now).unwrap_or(Err(e)),
        };
        if let Err(e) = verdict {
            let mut chain = vec![end_entity.clone().into_owned()];
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
            return Err(verify::refusal(&e, &chain, Presenter::Server).into_rustls(&chain));
        }
        let host = match server_name {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        let chain =
            node_chain(end_entity, intermediates, &self.parsed_anchors).map_err(rejected)?;
        match &self.check {
            None => check_server_identity(&host, &chain),
            Some(check) => check(&host, &chain),
        }
        .map_err(rejected)?;
        Ok(ServerCertVerified::assertion())
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

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    use super::*;
    use crate::tls::host_check::{split_altnames, PinSet};

    fn cert(cn: &[&str], sans: &[&str]) -> PeerCertificate {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        for cn in cn {
            params.distinguished_name.push(DnType::CommonName, *cn);
        }
        params.subject_alt_names = sans
            .iter()
            .map(|san| match san.split_once(':') {
                Some(("DNS", name)) => SanType::DnsName(name.try_into().unwrap()),
                Some(("IP", ip)) => SanType::IpAddress(ip.parse().unwrap()),
                Some(("URI", _)) => SanType::URI(san[4..].try_into().unwrap()),
                _ => panic!("bad SAN {san}"),
            })
            .collect();
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        PeerCertificate::from_der(&der).unwrap()
    }

    fn check(host: &str, cert: &PeerCertificate) -> std::result::Result<(), String> {
        check_server_identity(host, std::slice::from_ref(cert)).map_err(|e| {
            assert_eq!(e.code(), Some("ERR_TLS_CERT_ALTNAME_INVALID"));
            e.to_string()
        })
    }

    #[test]
    fn sslkeylogfile_alone_writes_nothing_and_keylog_from_env_opts_in() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.log");
        // Only this test reads SSLKEYLOGFILE in this binary.
        std::env::set_var("SSLKEYLOGFILE", &file);
        let (plain, _) = ClientTlsOptions::new().build().unwrap();
        assert!(!plain.key_log.will_log("CLIENT_RANDOM"));
        let (asked, _) = ClientTlsOptions::new()
            .keylog_from_env()
            .unwrap()
            .build()
            .unwrap();
        std::env::remove_var("SSLKEYLOGFILE");
        assert!(asked.key_log.will_log("CLIENT_RANDOM"));
    }

    #[test]
    fn the_rfc6125_check_ignores_the_cn_and_partial_wildcards() {
        let strict = |host: &str, c: &PeerCertificate| {
            check_server_identity_rfc6125(host, std::slice::from_ref(c)).map_err(|e| {
                assert_eq!(e.code(), Some("ERR_TLS_CERT_ALTNAME_INVALID"));
                e.to_string()
            })
        };
        // CN-only: Node accepts it, RFC 6125 does not, and says how to re-issue.
        let cn_only = cert(&["localhost"], &[]);
        assert!(check("localhost", &cn_only).is_ok());
        let err = strict("localhost", &cn_only).unwrap_err();
        assert!(
            err.contains("only in the certificate's subject CN"),
            "{err}"
        );
        assert!(err.contains("portcullis cert new localhost"), "{err}");
        // Partial wildcards: Node's rules match, RFC 6125's do not.
        let partial = cert(&[], &["DNS:b*.a.com"]);
        assert!(check("bx.a.com", &partial).is_ok());
        assert!(strict("bx.a.com", &partial).is_err());
        // A whole-label wildcard matches one label.
        let wild = cert(&[], &["DNS:*.a.com"]);
        assert!(strict("b.a.com", &wild).is_ok());
        assert!(strict("B.A.COM.", &wild).is_ok());
        assert!(strict("c.b.a.com", &wild).is_err());
        assert!(strict("a.com", &wild).is_err());
        // IP literals: the IP SANs, as Node.
        let ip = cert(&[], &["IP:127.0.0.1"]);
        assert!(strict("127.0.0.1", &ip).is_ok());
        assert!(strict("127.0.0.2", &ip).is_err());
    }

    /// The verified cases of Node v20.20.2's `tls.checkServerIdentity` (reference §4.1).
    #[test]
    fn check_server_identity_follows_node() {
        let ok = |host: &str, cn: &[&str], sans: &[&str]| {
            let c = cert(cn, sans);
            assert_eq!(
                check(host, &c),
                Ok(()),
                "{host} against CN {cn:?} SAN {sans:?}"
            );
        };
        let fails = |host: &str, cn: &[&str], sans: &[&str], reason: &str| {
            let c = cert(cn, sans);
            let err = check(host, &c).expect_err(host);
            assert_eq!(
                err,
                format!("Hostname/IP does not match certificate's altnames: {reason}"),
                "{host} against CN {cn:?} SAN {sans:?}"
            );
        };
        ok("a.com", &["a.com"], &[]);
        ok("a.com", &["A.COM"], &[]);
        ok("a.com", &["a.com."], &[]);
        ok("a.com.", &["a.com"], &[]);
        ok("b.a.com", &["*.a.com"], &[]);
        fails(
            "b.a.com",
            &["*.a.com"],
            &["DNS:omg.com"],
            "Host: b.a.com. is not in the cert's altnames: DNS:omg.com",
        );
        fails(
            "a.com",
            &[],
            &["DNS:*"],
            "Host: a.com. is not in the cert's altnames: DNS:*",
        );
        fails(
            "a.com",
            &[],
            &["DNS:*.com"],
            "Host: a.com. is not in the cert's altnames: DNS:*.com",
        );
        ok("a.co.uk", &[], &["DNS:*.co.uk"]);
        fails(
            "a.com",
            &[],
            &["DNS:*.a.com"],
            "Host: a.com. is not in the cert's altnames: DNS:*.a.com",
        );
        fails(
            "c.b.a.com",
            &[],
            &["DNS:*.a.com"],
            "Host: c.b.a.com. is not in the cert's altnames: DNS:*.a.com",
        );
        ok("b.a.com", &[], &["DNS:*b.a.com"]);
        ok("a-cb.a.com", &[], &["DNS:*b.a.com"]);
        ok("bxx.a.com", &[], &["DNS:b*x.a.com"]);
        ok("b.a.com", &[], &["DNS:b*.a.com"]);
        fails(
            "x.a.com",
            &[],
            &["DNS:*.*.com"],
            "Host: x.a.com. is not in the cert's altnames: DNS:*.*.com",
        );
        fails(
            "xn--a.a.com",
            &[],
            &["DNS:xn--*.a.com"],
            "Host: xn--a.a.com. is not in the cert's altnames: DNS:xn--*.a.com",
        );
        fails(
            "a.b.a.com",
            &[],
            &["URI:http://a.b.a.com/"],
            "Cert does not contain a DNS name",
        );
        ok("a.b.a.com", &["a.b.a.com"], &["URI:http://a.b.a.com/"]);
        ok("a.b.a.com", &["a.b.a.com"], &["IP:127.0.0.1"]);
        ok("127.0.0.1", &[], &["IP:127.0.0.1"]);
        fails(
            "127.0.0.2",
            &[],
            &["IP:127.0.0.1"],
            "IP: 127.0.0.2 is not in the cert's list: 127.0.0.1",
        );
        fails(
            "127.0.0.1",
            &["127.0.0.1"],
            &["DNS:127.0.0.1"],
            "IP: 127.0.0.1 is not in the cert's list: ",
        );
        ok("::1", &[], &["IP:0:0:0:0:0:0:0:1"]);
        ok("[::1]", &[], &["IP:::1"]);
        fails(
            "localhost",
            &["localhost"],
            &["DNS:a.com"],
            "Host: localhost. is not in the cert's altnames: DNS:a.com",
        );
        fails("localhost", &[], &[], "Cert does not contain a DNS name");
        fails(
            "localhost",
            &["a.com"],
            &[],
            "Host: localhost. is not cert's CN: a.com",
        );
    }

    #[test]
    fn altnames_split_like_node() {
        assert_eq!(
            split_altnames(r#"DNS:a.com, URI:"http://x/a\u002c b", IP Address:1.2.3.4"#),
            ["DNS:a.com", "URI:http://x/a, b", "IP Address:1.2.3.4"]
        );
        assert!(split_altnames("").is_empty());
    }

    #[test]
    fn pin_set_checks_the_host_then_any_pin_in_the_chain() {
        let leaf = cert(&["localhost"], &["DNS:localhost"]);
        let other = cert(&["CA"], &[]);
        let chain = [leaf.clone(), other.clone()];
        assert!(PinSet::new([other.pin_sha256()])
            .check("localhost", &chain)
            .is_ok());
        assert!(PinSet::new([format!("sha256//{}", leaf.pin_sha256())])
            .check("localhost", &chain)
            .is_ok());
        let err = PinSet::new(["AAAA"])
            .check("localhost", &chain)
            .unwrap_err();
        assert_eq!(err.code(), Some("ERR_TLS_PIN_MISMATCH"));
        assert!(err.to_string().contains(leaf.pin_sha256()), "{err}");
        let err = PinSet::new([leaf.pin_sha256()])
            .check("example.com", &chain)
            .unwrap_err();
        assert_eq!(err.code(), Some("ERR_TLS_CERT_ALTNAME_INVALID"));
    }
}

//! Verification outcomes with Node's (OpenSSL's) error codes and a sentence saying what to do.
//!
//! rustls/webpki reports *why* a chain failed as a [`rustls::CertificateError`]; Node reports
//! OpenSSL's `X509_V_ERR_*` names without the prefix (`authorizationError` on the server, the
//! error's `code` on the client). [`refusal`] translates, looking at the presented chain
//! where OpenSSL distinguishes cases webpki does not (an unknown issuer), and words the reason
//! for the person who has to fix it: never a rustls or webpki identifier.
//!
//! Two rules of OpenSSL's that webpki does not follow are applied by the verifiers through
//! [`pinned_anchor`]: a presented certificate byte-identical to a configured trust anchor is
//! trusted (what `openssl req -x509` makes, `CA:TRUE` included, given as `ca`), its dates
//! still checked.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, OtherError};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::peer::PeerCertificate;
use crate::error::{Error, Kind};

/// What Node reports when the peer sent no certificate at all.
const NO_PEER_CERTIFICATE: &str = "UNABLE_TO_GET_ISSUER_CERT";

/// Why a certificate chain was refused: Node's code and a sentence a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: &'static str,
    pub(crate) reason: String,
}

impl Refusal {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// The refusal as this crate's error: Node's code, the reason in words, the chain.
    pub(crate) fn into_error(self, chain: &[CertificateDer<'_>]) -> Error {
        Error::new(Kind::Tls, self.reason)
            .with_code(self.code)
            .with_chain(chain)
    }

    /// The refusal of `chain` as the error a verifier returns to rustls; [`refusal`] reads it
    /// back.
    pub(crate) fn into_rustls(self, chain: &[CertificateDer<'_>]) -> rustls::Error {
        let error = Error::new(Kind::Tls, openssl_message(self.code))
            .with_code(self.code)
            .with_source(self.reason)
            .with_chain(chain);
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
    }
}

/// Who presented the chain being judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presenter {
    /// A server, judged by a client.
    Server,
    /// A client (mTLS), judged by a server.
    Client,
}

impl Presenter {
    fn noun(self) -> &'static str {
        match self {
            Presenter::Server => "server",
            Presenter::Client => "client",
        }
    }

    /// How to trust a CA (or a self-signed certificate) on the judging side.
    fn how_to_trust(self) -> &'static str {
        match self {
            Presenter::Server => {
                "trust it as a CA (curl and `portcullis get`: --cacert FILE; Node and \
                 ClientTlsOptions: ca)"
            }
            Presenter::Client => {
                "add it to the server's client CAs (`portcullis serve --client-ca FILE`; Node: \
                 ca; ServerTlsConfigBuilder::client_ca)"
            }
        }
    }
}

/// Runs a client-certificate verifier (mTLS) over a presented chain, leaf first.
///
/// # Errors
/// [`Error::code`] is Node's code, as a server with `requestCert: true, rejectUnauthorized:
/// false` sees it in `tlsSocket.authorizationError`: `"CERT_HAS_EXPIRED"`,
/// `"DEPTH_ZERO_SELF_SIGNED_CERT"`, … (an empty chain is `"UNABLE_TO_GET_ISSUER_CERT"`); the
/// message says what is wrong and how to fix it; [`Error::peer_certificates`] is the chain.
pub fn verify_client_chain(
    verifier: &dyn ClientCertVerifier,
    chain: &[CertificateDer<'static>],
    now: UnixTime,
) -> crate::Result<()> {
    judge_client_chain(verifier, chain, now).map_err(|r| r.into_error(chain))
}

/// [`verify_client_chain`] with the reason in words.
pub(crate) fn judge_client_chain(
    verifier: &dyn ClientCertVerifier,
    chain: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), Refusal> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(Refusal::new(
            NO_PEER_CERTIFICATE,
            "the client sent no certificate",
        ));
    };
    verifier
        .verify_client_cert(end_entity, intermediates, now)
        .map(|_| ())
        .map_err(|e| refusal(&e, chain, Presenter::Client))
}

/// Runs a server-certificate verifier over a presented chain, leaf first, for `server_name`.
///
/// # Errors
/// [`Error::code`] is Node's code as a client reports it (`err.code`): `"CERT_HAS_EXPIRED"`,
/// `"SELF_SIGNED_CERT_IN_CHAIN"`, `"ERR_TLS_CERT_ALTNAME_INVALID"`, … (an empty chain is
/// `"UNABLE_TO_GET_ISSUER_CERT"`), with the reason in words and the chain.
pub fn verify_server_chain(
    verifier: &dyn ServerCertVerifier,
    chain: &[CertificateDer<'static>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> crate::Result<()> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(
            Refusal::new(NO_PEER_CERTIFICATE, "the server sent no certificate").into_error(chain),
        );
    };
    verifier
        .verify_server_cert(end_entity, intermediates, server_name, &[], now)
        .map(|_| ())
        .map_err(|e| refusal(&e, chain, Presenter::Server).into_error(chain))
}

/// OpenSSL's rule for a certificate given as a trust anchor and then presented as the peer's own
/// (the self-signed certificate of `openssl req -x509`, which OpenSSL 3 marks `CA:TRUE`):
/// trusted as it is, its validity period still checked. `None` when `end_entity` is not one
/// of `anchors`; the caller then keeps the chain's own verdict. Host names are the caller's
/// to check.
pub(crate) fn pinned_anchor(
    end_entity: &CertificateDer<'_>,
    anchors: &[CertificateDer<'_>],
    now: UnixTime,
) -> Option<Result<(), rustls::Error>> {
    if !anchors.iter().any(|a| a.as_ref() == end_entity.as_ref()) {
        return None;
    }
    let Ok((_, cert)) = X509Certificate::from_der(end_entity.as_ref()) else {
        return Some(Err(CertificateError::BadEncoding.into()));
    };
    let at = |secs: i64| UnixTime::since_unix_epoch(Duration::from_secs(secs.max(0) as u64));
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    let time = now.as_secs() as i64;
    Some(if time < not_before {
        Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: at(not_before),
        }
        .into())
    } else if time > not_after {
        Err(CertificateError::ExpiredContext {
            time: now,
            not_after: at(not_after),
        }
        .into())
    } else {
        Ok(())
    })
}

/// Node's code for a rustls verification error on `chain`.
#[cfg(test)]
fn node_code(err: &rustls::Error, chain: &[CertificateDer<'_>]) -> &'static str {
    refusal(err, chain, Presenter::Server).code
}

/// Node's code for a rustls verification error on `chain` (the presented chain, leaf first),
/// and the reason in words.
///
/// | rustls | Node |
/// |---|---|
/// | `Expired*` | `CERT_HAS_EXPIRED` |
/// | `NotValidYet*` | `CERT_NOT_YET_VALID` |
/// | `UnknownIssuer` | `DEPTH_ZERO_SELF_SIGNED_CERT` (a self-signed leaf), `SELF_SIGNED_CERT_IN_CHAIN` (the presented chain reaches an untrusted self-signed root), `UNABLE_TO_VERIFY_LEAF_SIGNATURE` (the leaf's issuer was not presented), else `UNABLE_TO_GET_ISSUER_CERT_LOCALLY` |
/// | a CA certificate (`CA:TRUE`) as the leaf | `DEPTH_ZERO_SELF_SIGNED_CERT` when self-signed, else `CERT_REJECTED` |
/// | `Revoked` | `CERT_REVOKED` |
/// | `BadSignature` | `CERT_SIGNATURE_FAILURE` |
/// | `NotValidForName*` | `ERR_TLS_CERT_ALTNAME_INVALID` |
/// | `InvalidPurpose*` | `INVALID_PURPOSE` |
/// | `UnknownRevocationStatus` | `UNABLE_TO_GET_CRL` |
/// | `ExpiredRevocationList*` | `CRL_HAS_EXPIRED` |
/// | `UnhandledCriticalExtension` | `UNHANDLED_CRITICAL_EXTENSION` |
/// | anything else (an X.509 v1 certificate among them) | `CERT_REJECTED` |
pub(crate) fn refusal(err: &rustls::Error, chain: &[CertificateDer<'_>], by: Presenter) -> Refusal {
    use CertificateError as C;
    let who = by.noun();
    let rustls::Error::InvalidCertificate(err) = err else {
        return Refusal::new(
            "CERT_REJECTED",
            format!("the {who} certificate could not be verified"),
        );
    };
    let leaf = chain
        .first()
        .and_then(|der| PeerCertificate::from_der(der).ok());
    let subject = leaf
        .as_ref()
        .map_or_else(String::new, |c| format!(" ({})", c.subject()));
    let issuer = leaf
        .as_ref()
        .map_or_else(|| "its issuer".to_owned(), |c| c.issuer().to_string());
    match err {
        C::Other(OtherError(inner)) => {
            if let Some(ours) = inner.downcast_ref::<Error>() {
                let reason = std::error::Error::source(ours)
                    .map_or_else(|| ours.to_string(), |s| s.to_string());
                return Refusal::new(ours.code().unwrap_or("CERT_REJECTED"), reason);
            }
            match inner.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) if is_self_signed(chain) => Refusal::new(
                    "DEPTH_ZERO_SELF_SIGNED_CERT",
                    format!(
                        "the {who} certificate{subject} is self-signed (a CA certificate, as \
                         `openssl req -x509` makes) and not trusted here; if it is the one you \
                         expect, {}",
                        by.how_to_trust()
                    ),
                ),
                Some(webpki::Error::CaUsedAsEndEntity) => Refusal::new(
                    "CERT_REJECTED",
                    format!(
                        "the {who} certificate{subject} is a CA certificate (basicConstraints \
                         CA:TRUE) used as a {who} certificate; issue a leaf certificate \
                         (CA:FALSE) for the {who} instead, e.g. with `portcullis cert new`"
                    ),
                ),
                Some(webpki::Error::UnsupportedCertVersion) => Refusal::new(
                    "CERT_REJECTED",
                    format!(
                        "the {who} certificate{subject} is X.509 v1 (what `openssl x509 -req` \
                         makes without -extfile), which carries no extensions to say what it \
                         may be used for; re-issue it as v3: `openssl x509 -req ... -extfile \
                         v3.ext` with a v3.ext holding `basicConstraints=CA:FALSE` and \
                         `extendedKeyUsage={}`, or use `portcullis cert new`",
                        match by {
                            Presenter::Server => "serverAuth` and `subjectAltName=DNS:NAME",
                            Presenter::Client => "clientAuth",
                        }
                    ),
                ),
                _ => Refusal::new(
                    "CERT_REJECTED",
                    format!("the {who} certificate{subject} could not be verified"),
                ),
            }
        }
        C::Expired | C::ExpiredContext { .. } => Refusal::new(
            "CERT_HAS_EXPIRED",
            match &leaf {
                Some(c) => format!("the {who} certificate{subject} expired on {}", c.valid_to()),
                None => format!("the {who} certificate has expired"),
            },
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => Refusal::new(
            "CERT_NOT_YET_VALID",
            match &leaf {
                Some(c) => format!(
                    "the {who} certificate{subject} is valid only from {}: check this \
                     machine's clock",
                    c.valid_from()
                ),
                None => format!("the {who} certificate is not yet valid"),
            },
        ),
        C::UnknownIssuer => unknown_issuer(chain, by),
        C::Revoked => Refusal::new(
            "CERT_REVOKED",
            format!("the {who} certificate{subject} is revoked by a CRL of {issuer}"),
        ),
        C::BadSignature => Refusal::new(
            "CERT_SIGNATURE_FAILURE",
            format!(
                "the signature on the {who} certificate{subject} does not verify with the key \
                 of the trusted {issuer}: another key with the same name signed it"
            ),
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => Refusal::new(
            "ERR_TLS_CERT_ALTNAME_INVALID",
            format!("the {who} certificate{subject} is not valid for the name asked for"),
        ),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => Refusal::new(
            "INVALID_PURPOSE",
            format!(
                "the {who} certificate{subject} has an extended key usage that does not allow \
                 TLS {who} authentication; re-issue it with `extendedKeyUsage={}`",
                match by {
                    Presenter::Server => "serverAuth",
                    Presenter::Client => "clientAuth",
                }
            ),
        ),
        C::UnknownRevocationStatus => Refusal::new(
            "UNABLE_TO_GET_CRL",
            format!("no CRL given covers {issuer}, the issuer of the {who} certificate"),
        ),
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => Refusal::new(
            "CRL_HAS_EXPIRED",
            "the certificate revocation list is past its nextUpdate; load a fresh one",
        ),
        C::UnhandledCriticalExtension => Refusal::new(
            "UNHANDLED_CRITICAL_EXTENSION",
            format!(
                "the {who} certificate{subject} has a critical extension this verifier does \
                 not understand"
            ),
        ),
        C::BadEncoding => Refusal::new(
            "CERT_REJECTED",
            format!("the {who} certificate is not valid DER-encoded X.509"),
        ),
        #[allow(deprecated)] // rustls still reports the variant without context
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => Refusal::new(
            "CERT_REJECTED",
            format!(
                "a certificate in the {who}'s chain is signed with an algorithm that is not \
                 accepted (such as SHA-1 or MD5); re-issue it with SHA-256"
            ),
        ),
        _ => Refusal::new(
            "CERT_REJECTED",
            format!("the {who} certificate{subject} could not be verified"),
        ),
    }
}

/// Whether the chain's leaf names itself as its issuer.
fn is_self_signed(chain: &[CertificateDer<'_>]) -> bool {
    chain
        .first()
        .and_then(|der| X509Certificate::from_der(der.as_ref()).ok())
        .is_some_and(|(_, c)| {
            c.tbs_certificate.subject.as_raw() == c.tbs_certificate.issuer.as_raw()
        })
}

/// OpenSSL's distinction for a chain that does not reach a trust anchor: it follows the
/// presented certificates from the leaf by issuer name and reports where the walk stops.
fn unknown_issuer(chain: &[CertificateDer<'_>], by: Presenter) -> Refusal {
    let who = by.noun();
    let parsed: Vec<Option<PeerCertificate>> = chain
        .iter()
        .map(|der| PeerCertificate::from_der(der).ok())
        .collect();
    let names: Vec<Option<(&[u8], &[u8])>> = chain
        .iter()
        .map(|der| {
            X509Certificate::from_der(der.as_ref()).ok().map(|(_, c)| {
                (
                    c.tbs_certificate.subject.as_raw(),
                    c.tbs_certificate.issuer.as_raw(),
                )
            })
        })
        .collect();
    let generic = || {
        Refusal::new(
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            format!(
                "the {who}'s certificate chain does not end in a trusted CA; {}",
                by.how_to_trust()
            ),
        )
    };
    let Some(Some(mut current)) = names.first().copied() else {
        return generic();
    };
    let mut used = vec![false; names.len()];
    used[0] = true;
    let mut at = 0;
    loop {
        let (subject, issuer) = current;
        let cert = parsed[at].as_ref();
        let subject_text = cert.map_or_else(String::new, |c| c.subject().to_string());
        let issuer_text = cert.map_or_else(String::new, |c| c.issuer().to_string());
        if subject == issuer {
            return if at == 0 {
                Refusal::new(
                    "DEPTH_ZERO_SELF_SIGNED_CERT",
                    format!(
                        "the {who} certificate ({subject_text}) is self-signed and not trusted \
                         here; if it is the one you expect, {}",
                        by.how_to_trust()
                    ),
                )
            } else {
                Refusal::new(
                    "SELF_SIGNED_CERT_IN_CHAIN",
                    format!(
                        "the {who}'s chain ends in the root CA {subject_text}, which is not \
                         trusted here; if you expect it, {}",
                        by.how_to_trust()
                    ),
                )
            };
        }
        let next = names
            .iter()
            .enumerate()
            .find(|(i, n)| !used[*i] && n.is_some_and(|(s, _)| s == issuer));
        match next {
            Some((i, Some(name))) => {
                used[i] = true;
                current = *name;
                at = i;
            }
            _ if at == 0 => {
                return Refusal::new(
                    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
                    format!(
                        "the {who} certificate was issued by {issuer_text}, which the {who} did \
                         not send and which is not trusted here: the {who} should send its \
                         intermediate certificates (the full chain file), or, if {issuer_text} \
                         is a CA you expect, {}",
                        by.how_to_trust()
                    ),
                )
            }
            _ => {
                return Refusal::new(
                    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
                    format!(
                        "the {who}'s chain ends at a certificate issued by {issuer_text}, which is \
                         not trusted here; if it is a CA you expect, {}",
                        by.how_to_trust()
                    ),
                )
            }
        }
    }
}

/// OpenSSL's text for a verification code, which Node uses as the error message.
pub(crate) fn openssl_message(code: &str) -> &'static str {
    match code {
        "CERT_HAS_EXPIRED" => "certificate has expired",
        "CERT_NOT_YET_VALID" => "certificate is not yet valid",
        "DEPTH_ZERO_SELF_SIGNED_CERT" => "self-signed certificate",
        "SELF_SIGNED_CERT_IN_CHAIN" => "self-signed certificate in certificate chain",
        "UNABLE_TO_VERIFY_LEAF_SIGNATURE" => "unable to verify the first certificate",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" => "unable to get local issuer certificate",
        "UNABLE_TO_GET_ISSUER_CERT" => "unable to get issuer certificate",
        "CERT_REVOKED" => "certificate revoked",
        "CERT_SIGNATURE_FAILURE" => "certificate signature failure",
        "INVALID_PURPOSE" => "unsupported certificate purpose",
        "UNABLE_TO_GET_CRL" => "unable to get certificate CRL",
        "CRL_HAS_EXPIRED" => "CRL has expired",
        "UNHANDLED_CRITICAL_EXTENSION" => "unhandled critical extension",
        "ERR_TLS_CERT_ALTNAME_INVALID" => "certificate is not valid for this host name",
        _ => "certificate rejected",
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
        DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose,
        RevocationReason, RevokedCertParams, SerialNumber,
    };
    use rustls::client::WebPkiServerVerifier;
    use rustls::server::WebPkiClientVerifier;
    use rustls::RootCertStore;
    use rustls_pki_types::CertificateRevocationListDer;

    use super::*;

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl Ca {
        fn new(name: &str) -> Self {
            Self::with_key(name, KeyPair::generate().unwrap())
        }

        fn with_key(name: &str, key: KeyPair) -> Self {
            let cert = ca_params(name).self_signed(&key).unwrap();
            Self { cert, key }
        }

        /// An intermediate CA signed by `self`.
        fn intermediate(&self, name: &str) -> Self {
            let key = KeyPair::generate().unwrap();
            let cert = ca_params(name)
                .signed_by(&key, &self.cert, &self.key)
                .unwrap();
            Self { cert, key }
        }

        fn issue(&self, params: CertificateParams) -> CertificateDer<'static> {
            let key = KeyPair::generate().unwrap();
            params
                .signed_by(&key, &self.cert, &self.key)
                .unwrap()
                .der()
                .clone()
        }

        fn der(&self) -> CertificateDer<'static> {
            self.cert.der().clone()
        }

        fn crl(
            &self,
            revoked: &[u64],
            next_update: time::OffsetDateTime,
        ) -> CertificateRevocationListDer<'static> {
            let params = CertificateRevocationListParams {
                this_update: rcgen::date_time_ymd(2020, 1, 1),
                next_update,
                crl_number: SerialNumber::from(1u64),
                issuing_distribution_point: None,
                revoked_certs: revoked
                    .iter()
                    .map(|&serial| RevokedCertParams {
                        serial_number: SerialNumber::from(serial),
                        revocation_time: rcgen::date_time_ymd(2021, 1, 1),
                        reason_code: Some(RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: KeyIdMethod::Sha256,
            };
            params
                .signed_by(&self.cert, &self.key)
                .unwrap()
                .der()
                .clone()
        }
    }

    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
    }

    fn dn(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    /// A leaf for `localhost` with serial `serial`.
    fn leaf(serial: u64) -> CertificateParams {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name = dn("localhost");
        params.serial_number = Some(SerialNumber::from(serial));
        params
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn roots(trusted: &[&Ca]) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for ca in trusted {
            roots.add(ca.der()).unwrap();
        }
        Arc::new(roots)
    }

    fn client_verifier(trusted: &[&Ca]) -> Arc<dyn ClientCertVerifier> {
        WebPkiClientVerifier::builder_with_provider(roots(trusted), provider())
            .build()
            .unwrap()
    }

    fn client_verifier_with_crls(
        trusted: &[&Ca],
        crls: Vec<CertificateRevocationListDer<'static>>,
        enforce_expiry: bool,
    ) -> Arc<dyn ClientCertVerifier> {
        let builder =
            WebPkiClientVerifier::builder_with_provider(roots(trusted), provider()).with_crls(crls);
        let builder = if enforce_expiry {
            builder.enforce_revocation_expiration()
        } else {
            builder
        };
        builder.build().unwrap()
    }

    fn server_verifier(trusted: &[&Ca]) -> Arc<WebPkiServerVerifier> {
        WebPkiServerVerifier::builder_with_provider(roots(trusted), provider())
            .build()
            .unwrap()
    }

    fn client(
        verifier: &Arc<dyn ClientCertVerifier>,
        chain: &[CertificateDer<'static>],
    ) -> Result<(), &'static str> {
        verify_client_chain(verifier.as_ref(), chain, UnixTime::now())
            .map_err(|e| e.code().expect("a verification error has Node's code"))
    }

    fn server(
        verifier: &WebPkiServerVerifier,
        chain: &[CertificateDer<'static>],
        name: &str,
    ) -> Result<(), &'static str> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verify_server_chain(verifier, chain, &name, UnixTime::now())
            .map_err(|e| e.code().expect("a verification error has Node's code"))
    }

    #[test]
    fn valid_chains_verify() {
        let root = Ca::new("Root");
        let inter = root.intermediate("Intermediate");
        let direct = root.issue(leaf(1));
        let via = inter.issue(leaf(2));
        let verifier = client_verifier(&[&root]);
        assert_eq!(client(&verifier, std::slice::from_ref(&direct)), Ok(()));
        assert_eq!(client(&verifier, &[via.clone(), inter.der()]), Ok(()));
        let verifier = server_verifier(&[&root]);
        assert_eq!(server(&verifier, &[direct], "localhost"), Ok(()));
        assert_eq!(server(&verifier, &[via, inter.der()], "localhost"), Ok(()));
    }

    #[test]
    fn no_certificate_is_unable_to_get_issuer_cert() {
        let root = Ca::new("Root");
        assert_eq!(
            client(&client_verifier(&[&root]), &[]),
            Err("UNABLE_TO_GET_ISSUER_CERT")
        );
        assert_eq!(
            server(&server_verifier(&[&root]), &[], "localhost"),
            Err("UNABLE_TO_GET_ISSUER_CERT")
        );
    }

    #[test]
    fn expired_is_cert_has_expired() {
        let root = Ca::new("Root");
        let mut params = leaf(1);
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let cert = root.issue(params);
        assert_eq!(
            client(&client_verifier(&[&root]), std::slice::from_ref(&cert)),
            Err("CERT_HAS_EXPIRED")
        );
        assert_eq!(
            server(&server_verifier(&[&root]), &[cert], "localhost"),
            Err("CERT_HAS_EXPIRED")
        );
    }

    #[test]
    fn not_yet_valid_is_cert_not_yet_valid() {
        let root = Ca::new("Root");
        let mut params = leaf(1);
        params.not_before = rcgen::date_time_ymd(2999, 1, 1);
        params.not_after = rcgen::date_time_ymd(3000, 1, 1);
        let cert = root.issue(params);
        assert_eq!(
            client(&client_verifier(&[&root]), std::slice::from_ref(&cert)),
            Err("CERT_NOT_YET_VALID")
        );
        assert_eq!(
            server(&server_verifier(&[&root]), &[cert], "localhost"),
            Err("CERT_NOT_YET_VALID")
        );
    }

    #[test]
    fn self_signed_leaf_is_depth_zero_self_signed_cert() {
        let trusted = Ca::new("Trusted Root");
        let key = KeyPair::generate().unwrap();
        let cert = leaf(1).self_signed(&key).unwrap().der().clone();
        assert_eq!(
            client(&client_verifier(&[&trusted]), std::slice::from_ref(&cert)),
            Err("DEPTH_ZERO_SELF_SIGNED_CERT")
        );
        assert_eq!(
            server(&server_verifier(&[&trusted]), &[cert], "localhost"),
            Err("DEPTH_ZERO_SELF_SIGNED_CERT")
        );
    }

    #[test]
    fn untrusted_root_in_chain_is_self_signed_cert_in_chain() {
        let trusted = Ca::new("Trusted Root");
        let other = Ca::new("Other Root");
        let inter = other.intermediate("Other Intermediate");
        let cert = inter.issue(leaf(1));
        let chain = [cert, inter.der(), other.der()];
        assert_eq!(
            client(&client_verifier(&[&trusted]), &chain),
            Err("SELF_SIGNED_CERT_IN_CHAIN")
        );
        assert_eq!(
            server(&server_verifier(&[&trusted]), &chain, "localhost"),
            Err("SELF_SIGNED_CERT_IN_CHAIN")
        );
        // The root presented right after the leaf.
        let direct = [other.issue(leaf(2)), other.der()];
        assert_eq!(
            client(&client_verifier(&[&trusted]), &direct),
            Err("SELF_SIGNED_CERT_IN_CHAIN")
        );
    }

    #[test]
    fn lone_leaf_of_unknown_ca_is_unable_to_verify_leaf_signature() {
        let trusted = Ca::new("Trusted Root");
        let other = Ca::new("Other Root");
        let cert = other.issue(leaf(1));
        assert_eq!(
            client(&client_verifier(&[&trusted]), std::slice::from_ref(&cert)),
            Err("UNABLE_TO_VERIFY_LEAF_SIGNATURE")
        );
        // Also when the extra certificates presented are not the leaf's issuer.
        let unrelated = Ca::new("Unrelated Root");
        assert_eq!(
            server(
                &server_verifier(&[&trusted]),
                &[cert, unrelated.der()],
                "localhost"
            ),
            Err("UNABLE_TO_VERIFY_LEAF_SIGNATURE")
        );
    }

    #[test]
    fn missing_root_above_intermediate_is_unable_to_get_issuer_cert_locally() {
        let trusted = Ca::new("Trusted Root");
        let other = Ca::new("Other Root");
        let inter = other.intermediate("Other Intermediate");
        let chain = [inter.issue(leaf(1)), inter.der()];
        assert_eq!(
            client(&client_verifier(&[&trusted]), &chain),
            Err("UNABLE_TO_GET_ISSUER_CERT_LOCALLY")
        );
        assert_eq!(
            server(&server_verifier(&[&trusted]), &chain, "localhost"),
            Err("UNABLE_TO_GET_ISSUER_CERT_LOCALLY")
        );
    }

    #[test]
    fn forged_issuer_signature_is_cert_signature_failure() {
        let root = Ca::new("Root");
        // Same name as the trusted root, different key: the leaf's signature cannot verify.
        let impostor = Ca::new("Root");
        let cert = impostor.issue(leaf(1));
        assert_eq!(
            client(&client_verifier(&[&root]), std::slice::from_ref(&cert)),
            Err("CERT_SIGNATURE_FAILURE")
        );
        assert_eq!(
            server(&server_verifier(&[&root]), &[cert], "localhost"),
            Err("CERT_SIGNATURE_FAILURE")
        );
    }

    #[test]
    fn revoked_is_cert_revoked() {
        let root = Ca::new("Root");
        let crl = root.crl(&[7], rcgen::date_time_ymd(3000, 1, 1));
        let verifier = client_verifier_with_crls(&[&root], vec![crl], false);
        assert_eq!(
            client(&verifier, &[root.issue(leaf(7))]),
            Err("CERT_REVOKED")
        );
        assert_eq!(client(&verifier, &[root.issue(leaf(8))]), Ok(()));
    }

    #[test]
    fn unknown_revocation_status_is_unable_to_get_crl() {
        let root = Ca::new("Root");
        let other = Ca::new("Other Root");
        // Only a CRL of another CA: the leaf's status is unknown, which rustls denies by default.
        let crl = other.crl(&[], rcgen::date_time_ymd(3000, 1, 1));
        let verifier = client_verifier_with_crls(&[&root], vec![crl], false);
        assert_eq!(
            client(&verifier, &[root.issue(leaf(1))]),
            Err("UNABLE_TO_GET_CRL")
        );
    }

    #[test]
    fn expired_crl_is_crl_has_expired() {
        let root = Ca::new("Root");
        let crl = root.crl(&[], rcgen::date_time_ymd(2022, 1, 1));
        let verifier = client_verifier_with_crls(&[&root], vec![crl], true);
        assert_eq!(
            client(&verifier, &[root.issue(leaf(1))]),
            Err("CRL_HAS_EXPIRED")
        );
    }

    #[test]
    fn wrong_name_is_err_tls_cert_altname_invalid() {
        let root = Ca::new("Root");
        let cert = root.issue(leaf(1));
        assert_eq!(
            server(&server_verifier(&[&root]), &[cert], "example.com"),
            Err("ERR_TLS_CERT_ALTNAME_INVALID")
        );
    }

    #[test]
    fn wrong_extended_key_usage_is_invalid_purpose() {
        let root = Ca::new("Root");
        let mut server_only = leaf(1);
        server_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        assert_eq!(
            client(&client_verifier(&[&root]), &[root.issue(server_only)]),
            Err("INVALID_PURPOSE")
        );
        let mut client_only = leaf(2);
        client_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        assert_eq!(
            server(
                &server_verifier(&[&root]),
                &[root.issue(client_only)],
                "localhost"
            ),
            Err("INVALID_PURPOSE")
        );
    }

    #[test]
    fn other_errors_map_directly() {
        use CertificateError as C;
        let code = |e: CertificateError| node_code(&rustls::Error::InvalidCertificate(e), &[]);
        assert_eq!(code(C::Expired), "CERT_HAS_EXPIRED");
        assert_eq!(code(C::NotValidYet), "CERT_NOT_YET_VALID");
        assert_eq!(code(C::NotValidForName), "ERR_TLS_CERT_ALTNAME_INVALID");
        assert_eq!(code(C::InvalidPurpose), "INVALID_PURPOSE");
        assert_eq!(code(C::ExpiredRevocationList), "CRL_HAS_EXPIRED");
        assert_eq!(
            code(C::UnhandledCriticalExtension),
            "UNHANDLED_CRITICAL_EXTENSION"
        );
        assert_eq!(code(C::UnknownIssuer), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
        assert_eq!(code(C::BadEncoding), "CERT_REJECTED");
        assert_eq!(code(C::ApplicationVerificationFailure), "CERT_REJECTED");
        assert_eq!(
            node_code(&rustls::Error::HandshakeNotComplete, &[]),
            "CERT_REJECTED"
        );
        let garbage = [CertificateDer::from(vec![1, 2, 3])];
        assert_eq!(
            node_code(
                &rustls::Error::InvalidCertificate(C::UnknownIssuer),
                &garbage
            ),
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
        );
    }

    #[test]
    fn reissued_root_with_the_same_key_verifies() {
        // The counterpart of the forged signature: same name and the same key verify.
        let key = KeyPair::generate().unwrap();
        let pem = key.serialize_pem();
        let root = Ca::with_key("Root", key);
        let again = Ca::with_key("Root", KeyPair::from_pem(&pem).unwrap());
        let cert = again.issue(leaf(1));
        assert_eq!(client(&client_verifier(&[&root]), &[cert]), Ok(()));
    }

    #[test]
    fn a_presented_certificate_identical_to_an_anchor_is_trusted_with_its_dates_checked() {
        let key = KeyPair::generate().unwrap();
        let mut params = leaf(1);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap().der().clone();
        let other = Ca::new("Other").der();
        let now = UnixTime::now();
        assert!(pinned_anchor(&cert, std::slice::from_ref(&other), now).is_none());
        assert!(matches!(
            pinned_anchor(&cert, &[other, cert.clone()], now),
            Some(Ok(()))
        ));
        // webpki alone refuses it: a CA certificate as the end entity.
        let mut roots = RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let verifier_with =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let refused = verifier_with
            .verify_server_cert(&cert, &[], &name, &[], now)
            .unwrap_err();
        let why = refusal(&refused, std::slice::from_ref(&cert), Presenter::Server);
        assert_eq!(why.code, "DEPTH_ZERO_SELF_SIGNED_CERT");
        assert!(why.reason.contains("self-signed"), "{}", why.reason);

        let mut expired = leaf(2);
        expired.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        expired.not_before = rcgen::date_time_ymd(2001, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let expired = expired
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone();
        let Some(Err(e)) = pinned_anchor(&expired, std::slice::from_ref(&expired), now) else {
            panic!("expired");
        };
        assert_eq!(node_code(&e, &[expired]), "CERT_HAS_EXPIRED");
    }

    #[test]
    fn reasons_never_name_rustls_or_webpki_internals() {
        use rustls::CertificateError as C;
        let root = Ca::new("Root");
        let chain = [root.issue(leaf(1))];
        let errors = [
            rustls::Error::InvalidCertificate(C::UnknownIssuer),
            rustls::Error::InvalidCertificate(C::BadEncoding),
            rustls::Error::InvalidCertificate(C::Expired),
            rustls::Error::InvalidCertificate(C::Other(OtherError(Arc::new(
                webpki::Error::CaUsedAsEndEntity,
            )))),
            rustls::Error::InvalidCertificate(C::Other(OtherError(Arc::new(
                webpki::Error::UnsupportedCertVersion,
            )))),
            rustls::Error::HandshakeNotComplete,
        ];
        for error in &errors {
            for by in [Presenter::Server, Presenter::Client] {
                let why = refusal(error, &chain, by);
                for internal in [
                    "Other(",
                    "OtherError",
                    "UnknownIssuer",
                    "CaUsedAsEndEntity",
                    "BadEncoding",
                    "UnsupportedCertVersion",
                ] {
                    assert!(!why.reason.contains(internal), "{error:?}: {}", why.reason);
                }
            }
        }
        let v1 = refusal(&errors[4], &chain, Presenter::Client);
        assert_eq!(v1.code, "CERT_REJECTED");
        assert!(v1.reason.contains("X.509 v1"), "{}", v1.reason);
        assert!(
            v1.reason.contains("extendedKeyUsage=clientAuth"),
            "{}",
            v1.reason
        );
        let ca_leaf = refusal(&errors[3], &chain, Presenter::Server);
        assert_eq!(ca_leaf.code, "CERT_REJECTED");
        assert!(
            ca_leaf.reason.contains(
                "is a CA certificate (basicConstraints CA:TRUE) used as a server certificate"
            ),
            "{}",
            ca_leaf.reason
        );
    }
}

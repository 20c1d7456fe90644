//! Verification outcomes with Node's (OpenSSL's) error codes.
//!
//! rustls/webpki reports *why* a chain failed as a [`rustls::CertificateError`]; Node reports
//! OpenSSL's `X509_V_ERR_*` names without the prefix (`authorizationError` on the server, the
//! error's `code` on the client). [`node_code`] translates, looking at the presented chain
//! where OpenSSL distinguishes cases webpki does not (an unknown issuer).

use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::CertificateError;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// What Node reports when the peer sent no certificate at all.
const NO_PEER_CERTIFICATE: &str = "UNABLE_TO_GET_ISSUER_CERT";

/// Runs a client-certificate verifier (mTLS) over a presented chain, leaf first.
///
/// The error is Node's code, as a server with `requestCert: true, rejectUnauthorized: false`
/// sees it in `tlsSocket.authorizationError`: `"CERT_HAS_EXPIRED"`,
/// `"DEPTH_ZERO_SELF_SIGNED_CERT"`, … An empty chain is `"UNABLE_TO_GET_ISSUER_CERT"`.
pub fn verify_client_chain(
    verifier: &dyn ClientCertVerifier,
    chain: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), &'static str> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(NO_PEER_CERTIFICATE);
    };
    verifier
        .verify_client_cert(end_entity, intermediates, now)
        .map(|_| ())
        .map_err(|e| node_code(&e, chain))
}

/// Runs a server-certificate verifier over a presented chain, leaf first, for `server_name`.
///
/// The error is Node's code as a client reports it (`err.code`): `"CERT_HAS_EXPIRED"`,
/// `"SELF_SIGNED_CERT_IN_CHAIN"`, `"ERR_TLS_CERT_ALTNAME_INVALID"`, … An empty chain is
/// `"UNABLE_TO_GET_ISSUER_CERT"`.
pub fn verify_server_chain(
    verifier: &dyn ServerCertVerifier,
    chain: &[CertificateDer<'static>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), &'static str> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(NO_PEER_CERTIFICATE);
    };
    verifier
        .verify_server_cert(end_entity, intermediates, server_name, &[], now)
        .map(|_| ())
        .map_err(|e| node_code(&e, chain))
}

/// Node's code for a rustls verification error on `chain` (the presented chain, leaf first).
///
/// | rustls | Node |
/// |---|---|
/// | `Expired*` | `CERT_HAS_EXPIRED` |
/// | `NotValidYet*` | `CERT_NOT_YET_VALID` |
/// | `UnknownIssuer` | `DEPTH_ZERO_SELF_SIGNED_CERT` (a self-signed leaf), `SELF_SIGNED_CERT_IN_CHAIN` (the presented chain reaches an untrusted self-signed root), `UNABLE_TO_VERIFY_LEAF_SIGNATURE` (the leaf's issuer was not presented), else `UNABLE_TO_GET_ISSUER_CERT_LOCALLY` |
/// | `Revoked` | `CERT_REVOKED` |
/// | `BadSignature` | `CERT_SIGNATURE_FAILURE` |
/// | `NotValidForName*` | `ERR_TLS_CERT_ALTNAME_INVALID` |
/// | `InvalidPurpose*` | `INVALID_PURPOSE` |
/// | `UnknownRevocationStatus` | `UNABLE_TO_GET_CRL` |
/// | `ExpiredRevocationList*` | `CRL_HAS_EXPIRED` |
/// | `UnhandledCriticalExtension` | `UNHANDLED_CRITICAL_EXTENSION` |
/// | anything else | `CERT_REJECTED` |
pub(crate) fn node_code(err: &rustls::Error, chain: &[CertificateDer<'_>]) -> &'static str {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(err) = err else {
        return "CERT_REJECTED";
    };
    match err {
        C::Expired | C::ExpiredContext { .. } => "CERT_HAS_EXPIRED",
        C::NotValidYet | C::NotValidYetContext { .. } => "CERT_NOT_YET_VALID",
        C::UnknownIssuer => unknown_issuer_code(chain),
        C::Revoked => "CERT_REVOKED",
        C::BadSignature => "CERT_SIGNATURE_FAILURE",
        C::NotValidForName | C::NotValidForNameContext { .. } => "ERR_TLS_CERT_ALTNAME_INVALID",
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => "INVALID_PURPOSE",
        C::UnknownRevocationStatus => "UNABLE_TO_GET_CRL",
        C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => "CRL_HAS_EXPIRED",
        C::UnhandledCriticalExtension => "UNHANDLED_CRITICAL_EXTENSION",
        _ => "CERT_REJECTED",
    }
}

/// OpenSSL's distinction for a chain that does not reach a trust anchor: it follows the
/// presented certificates from the leaf by issuer name and reports where the walk stops.
fn unknown_issuer_code(chain: &[CertificateDer<'_>]) -> &'static str {
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
    let Some(Some(mut current)) = names.first().copied() else {
        return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY";
    };
    let mut used = vec![false; names.len()];
    used[0] = true;
    let mut depth = 0;
    loop {
        let (subject, issuer) = current;
        if subject == issuer {
            return if depth == 0 {
                "DEPTH_ZERO_SELF_SIGNED_CERT"
            } else {
                "SELF_SIGNED_CERT_IN_CHAIN"
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
                depth += 1;
            }
            _ if depth == 0 => return "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            _ => return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        }
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
    }

    fn server(
        verifier: &WebPkiServerVerifier,
        chain: &[CertificateDer<'static>],
        name: &str,
    ) -> Result<(), &'static str> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verify_server_chain(verifier, chain, &name, UnixTime::now())
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
}

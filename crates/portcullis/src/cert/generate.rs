//! Leaf certificates for DNS names and IP addresses: signed by the local CA or self-signed,
//! with an ECDSA P-256 or RSA key.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, RsaKeySize, SanType, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::LocalCa;
use crate::error::{Error, Result};

/// The key algorithm of a generated certificate. [default: `Ecdsa`]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on P-256 (`prime256v1`), signed with SHA-256. The default.
    #[default]
    Ecdsa,
    /// RSA with this modulus size in bits: 2048, 3072 or 4096; signed with SHA-256 (PKCS#1 v1.5).
    Rsa(u32),
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ecdsa => f.write_str("EC P-256"),
            Self::Rsa(bits) => write!(f, "RSA {bits}"),
        }
    }
}

/// What to put in a new leaf certificate. Build with [`LeafOptions::new`], adjust the fields,
/// then call [`LeafOptions::generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeafOptions {
    /// DNS names (`localhost`, `*.example.test`) and IP addresses (`127.0.0.1`, `::1`), each
    /// written as a subjectAltName; the first is also the subject's common name.
    pub names: Vec<String>,
    /// Sign the certificate with its own key instead of the local CA's (issuer == subject).
    /// [default: false]
    pub self_signed: bool,
    /// The key to generate. [default: [`KeyKind::Ecdsa`]]
    pub key: KeyKind,
    /// Days from now until the certificate expires. [default: 365] It is valid from an hour ago,
    /// to tolerate clocks a little behind.
    pub days: u32,
    /// Also allow the certificate to authenticate a client (`clientAuth` in its
    /// extendedKeyUsage, beside `serverAuth`): for mutual TLS. [default: false]
    pub client_auth: bool,
}

impl LeafOptions {
    /// Options for `names` with the defaults: signed by the CA, ECDSA P-256, 365 days.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            names: names.into_iter().map(Into::into).collect(),
            self_signed: false,
            key: KeyKind::Ecdsa,
            days: 365,
            client_auth: false,
        }
    }

    /// Generates a key and a certificate for these options, signed by `ca` (ignored when
    /// [`self_signed`](Self::self_signed) is set).
    ///
    /// # Errors
    /// No names, a name that is neither a DNS name nor an IP address, an RSA size other than
    /// 2048/3072/4096, zero days, or `ca` is `None` for a certificate that is not self-signed.
    pub fn generate(&self, ca: Option<&LocalCa>) -> Result<LeafCertificate> {
        let params = self.params()?;
        let key = match self.key {
            KeyKind::Ecdsa => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
            KeyKind::Rsa(bits) => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, rsa_size(bits)?),
        }
        .map_err(gen_error)?;
        let (cert, ca) = if self.self_signed {
            (params.self_signed(&key).map_err(gen_error)?, None)
        } else {
            let ca = ca.ok_or_else(|| {
                Error::config("a CA-signed certificate needs the local CA (or self_signed)")
            })?;
            (ca.sign(params, &key)?, Some(ca))
        };
        let mut chain = vec![cert.der().clone()];
        let mut chain_pem = cert.pem();
        if let Some(ca) = ca {
            chain.push(ca.cert_der().clone());
            chain_pem.push_str(ca.cert_pem());
        }
        Ok(LeafCertificate {
            chain,
            chain_pem,
            key_pem: key.serialize_pem(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            kind: self.key,
        })
    }

    /// The certificate's fields, before a key is chosen.
    fn params(&self) -> Result<CertificateParams> {
        let first = self
            .names
            .first()
            .ok_or_else(|| Error::config("a certificate needs at least one name"))?;
        if self.days == 0 {
            return Err(Error::config(
                "a certificate must be valid for at least 1 day",
            ));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, first.as_str());
        params.distinguished_name = dn;
        for name in &self.names {
            params.subject_alt_names.push(san(name)?);
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(i64::from(self.days));
        params.use_authority_key_identifier_extension = !self.self_signed;
        params.key_usages = match self.key {
            KeyKind::Ecdsa => vec![KeyUsagePurpose::DigitalSignature],
            // TLS 1.2's RSA key exchange encrypts to the key.
            KeyKind::Rsa(_) => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
        };
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if self.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        Ok(params)
    }
}

/// A generated leaf: its chain (leaf, then the CA unless self-signed) and its private key.
pub struct LeafCertificate {
    chain: Vec<CertificateDer<'static>>,
    chain_pem: String,
    key: PrivatePkcs8KeyDer<'static>,
    key_pem: String,
    kind: KeyKind,
}

impl LeafCertificate {
    /// The chain in DER, leaf first, then the CA (absent when self-signed).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The chain in PEM, leaf first: what a `cert.pem` file holds.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key (PKCS#8 DER).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The private key in PEM (PKCS#8, `BEGIN PRIVATE KEY`): what a `key.pem` file holds.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The key algorithm the certificate was made with.
    pub fn key_kind(&self) -> KeyKind {
        self.kind
    }
}

impl fmt::Debug for LeafCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafCertificate")
            .field("chain_len", &self.chain.len())
            .field("key_kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A subjectAltName for an IP address or a DNS name (a leading `*.` allowed).
fn san(name: &str) -> Result<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bad = || Error::config(format!("not a DNS name or IP address: {name:?}"));
    let base = name.strip_prefix("*.").unwrap_or(name);
    rustls_pki_types::DnsName::try_from(base).map_err(|_| bad())?;
    Ok(SanType::DnsName(name.try_into().map_err(|_| bad())?))
}

fn rsa_size(bits: u32) -> Result<RsaKeySize> {
    match bits {
        2048 => Ok(RsaKeySize::_2048),
        3072 => Ok(RsaKeySize::_3072),
        4096 => Ok(RsaKeySize::_4096),
        _ => Err(Error::config(format!(
            "unsupported RSA key size {bits}: use 2048, 3072 or 4096"
        ))),
    }
}

pub(super) fn gen_error(e: rcgen::Error) -> Error {
    Error::config(format!("certificate generation failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    #[test]
    fn ca_signed_ecdsa_leaf_chains_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        let leaf = LeafOptions::new(["example.test", "127.0.0.1"])
            .generate(Some(&ca))
            .unwrap();
        assert_eq!(leaf.chain().len(), 2);
        assert!(leaf.chain_pem().ends_with(ca.cert_pem()));
        let cert = parse(&leaf.chain()[0]);
        let ca_cert = parse(&leaf.chain()[1]);
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        // The CA's signature (ECDSA P-256), checked with aws-lc-rs.
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            ca_cert.public_key().subject_public_key.data.to_vec(),
        );
        key.verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .unwrap();
        // The leaf's authority key identifier is the CA's subject key identifier.
        use x509_parser::extensions::ParsedExtension;
        let aki = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0)
                }
                _ => None,
            });
        let ski = ca_cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
                _ => None,
            });
        assert!(aki.is_some());
        assert_eq!(aki, ski);
        let sans = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(sans.value.general_names.len(), 2);
        crate::Identity::from_pem(leaf.chain_pem().as_bytes(), leaf.key_pem().as_bytes()).unwrap();
    }

    #[test]
    fn self_signed_rsa_leaf() {
        let mut options = LeafOptions::new(["localhost"]);
        options.self_signed = true;
        options.key = KeyKind::Rsa(2048);
        options.days = 10;
        let leaf = options.generate(None).unwrap();
        assert_eq!(leaf.chain().len(), 1);
        let cert = parse(&leaf.chain()[0]);
        assert_eq!(cert.issuer(), cert.subject());
        let left =
            cert.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            (10 * 86_400 - 60..=10 * 86_400).contains(&left),
            "{left}s left"
        );
        assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        crate::Identity::from_der(leaf.chain().to_vec(), leaf.key()).unwrap();
    }

    #[test]
    fn bad_options_are_config_errors() {
        let none: [&str; 0] = [];
        for options in [
            LeafOptions::new(none),
            LeafOptions::new(["not a name"]),
            LeafOptions {
                key: KeyKind::Rsa(1024),
                ..LeafOptions::new(["localhost"])
            },
            LeafOptions {
                days: 0,
                ..LeafOptions::new(["localhost"])
            },
            LeafOptions::new(["localhost"]), // no CA
        ] {
            assert!(
                options.generate(None).unwrap_err().is_config(),
                "{options:?}"
            );
        }
        let mut wildcard = LeafOptions::new(["*.example.test"]);
        wildcard.self_signed = true;
        wildcard.generate(None).unwrap();
    }
}

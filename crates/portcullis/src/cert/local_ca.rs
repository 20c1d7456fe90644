//! A local development CA, created on first use and reused after, so that
//! `curl --cacert <dir>/ca.pem https://localhost:8443/` works without `-k`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::generate::gen_error;
use super::LeafOptions;
use crate::error::{Error, Result};
use crate::tls::Identity;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const LEAF_CERT: &str = "localhost.pem";
const LEAF_KEY: &str = "localhost-key.pem";

/// Where the local CA lives by default: `$PORTCULLIS_HOME`, else
/// `$XDG_DATA_HOME/portcullis`, else `~/.local/share/portcullis`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTCULLIS_HOME") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("portcullis");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/portcullis")
}

/// The local development CA: a self-signed ECDSA P-256 root, kept in a directory (key 0600).
#[derive(Debug)]
pub struct LocalCa {
    dir: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
}

/// A leaf certificate issued by the local CA, with the files it was written to.
#[derive(Debug)]
pub struct DevCertificate {
    /// The chain (leaf, then the CA) in PEM.
    pub cert_path: PathBuf,
    /// The leaf's private key in PEM (PKCS#8), mode 0600.
    pub key_path: PathBuf,
}

impl LocalCa {
    /// Loads the CA from `dir`, creating it (and the directory) when absent.
    ///
    /// # Errors
    /// The directory cannot be written, or the files there are not a usable CA.
    pub fn load_or_create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        if cert_path.exists() && key_path.exists() {
            let cert_pem = fs::read_to_string(&cert_path)
                .map_err(|e| Error::io("cannot read the local CA", e).with_path(&cert_path))?;
            let key_pem = fs::read_to_string(&key_path)
                .map_err(|e| Error::io("cannot read the local CA key", e).with_path(&key_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| {
                Error::config(format!("not a usable CA key: {e}")).with_path(&key_path)
            })?;
            let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
                Error::config(format!("not a usable CA certificate: {e}")).with_path(&cert_path)
            })?;
            return Ok(Self {
                dir,
                cert_pem,
                cert_der,
                key,
            });
        }
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create the CA directory", e).with_path(&dir))?;
        let key = KeyPair::generate().map_err(gen_error)?;
        let cert = ca_params().self_signed(&key).map_err(gen_error)?;
        let cert_pem = cert.pem();
        write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
        write_file(&cert_path, cert_pem.as_bytes(), false)?;
        Ok(Self {
            dir,
            cert_pem,
            cert_der: cert.der().clone(),
            key,
        })
    }

    /// The CA certificate's path, for `curl --cacert` or `NODE_EXTRA_CA_CERTS`.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a leaf for `names` (DNS names and IP addresses), valid for `days`, signed by
    /// this CA. Returns the chain PEM (leaf then CA) and the key PEM.
    ///
    /// # Errors
    /// A name that is neither a DNS name nor an IP address.
    pub fn issue(&self, names: &[&str], days: i64) -> Result<(String, String)> {
        let mut options = LeafOptions::new(
            if names.is_empty() {
                &["localhost"][..]
            } else {
                names
            }
            .iter()
            .copied(),
        );
        options.days = u32::try_from(days.max(1)).unwrap_or(u32::MAX);
        let leaf = options.generate(Some(self))?;
        Ok((leaf.chain_pem().to_owned(), leaf.key_pem().to_owned()))
    }

    /// Signs `params` for `key` with this CA. Used by [`LeafOptions::generate`].
    pub(super) fn sign(
        &self,
        params: CertificateParams,
        key: &KeyPair,
    ) -> Result<rcgen::Certificate> {
        // rcgen signs with an issuer `Certificate`; one rebuilt with our CA's subject (as
        // encoded) and key identifier is all the leaf takes from it.
        let issuer = issuer_params(&self.cert_der)?
            .self_signed(&self.key)
            .map_err(gen_error)?;
        params.signed_by(key, &issuer, &self.key).map_err(gen_error)
    }

    /// The `localhost`/`127.0.0.1`/`::1` certificate `portcullis serve` uses by default:
    /// reused while it has more than a week left, issued anew otherwise.
    ///
    /// # Errors
    /// The files cannot be written.
    pub fn localhost(&self) -> Result<DevCertificate> {
        let cert_path = self.dir.join(LEAF_CERT);
        let key_path = self.dir.join(LEAF_KEY);
        let reusable = Identity::from_pem_files(&cert_path, &key_path)
            .ok()
            .is_some_and(|id| valid_for_a_week(&id));
        if !reusable {
            let (chain, key) = self.issue(&["localhost", "127.0.0.1", "::1"], 365)?;
            write_file(&key_path, key.as_bytes(), true)?;
            write_file(&cert_path, chain.as_bytes(), false)?;
        }
        Ok(DevCertificate {
            cert_path,
            key_path,
        })
    }
}

/// True while the identity's leaf is valid now and for more than a week.
fn valid_for_a_week(id: &Identity) -> bool {
    let Some(leaf) = id.chain().first() else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return false;
    };
    let now = OffsetDateTime::now_utc();
    let validity = cert.validity();
    validity.not_before.to_datetime() <= now
        && validity.not_after.to_datetime() > now + Duration::days(7)
}

/// What a leaf takes from its issuer: the subject name, each attribute in its original string
/// type (names are compared as encoded), and the subject key identifier for the leaf's
/// authority key identifier. Read with x509-parser, so that rcgen needs none of its own.
fn issuer_params(ca: &CertificateDer<'_>) -> Result<CertificateParams> {
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::extensions::ParsedExtension;
    let unusable =
        |why: &str| Error::config(format!("the local CA certificate is not usable: {why}"));
    let (_, cert) =
        x509_parser::parse_x509_certificate(ca.as_ref()).map_err(|e| unusable(&e.to_string()))?;
    let mut dn = DistinguishedName::new();
    for rdn in cert.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unusable("a multi-valued name attribute"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unusable("an attribute type out of range"))?
            .collect();
        let data = attr.attr_value().data;
        let text = || std::str::from_utf8(data).map_err(|_| unusable("a name that is not text"));
        let bad = |e: rcgen::Error| unusable(&e.to_string());
        let value = match attr.attr_value().header.tag() {
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(bad)?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(bad)?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into().map_err(bad)?),
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::BmpString => {
                DnValue::BmpString(rcgen::BmpString::from_utf16be(data.to_vec()).map_err(bad)?)
            }
            Tag::UniversalString => DnValue::UniversalString(
                rcgen::UniversalString::from_utf32be(data.to_vec()).map_err(bad)?,
            ),
            _ => return Err(unusable("a name attribute of an unknown string type")),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    let mut params = ca_params();
    params.distinguished_name = dn;
    if let Some(ski) = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
    {
        params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(ski);
    }
    Ok(params)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "portcullis local development CA");
    dn.push(DnType::OrganizationName, "portcullis");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    params
}

fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = secret;
    let mut file = options
        .open(path)
        .map_err(|e| Error::io("cannot write file", e).with_path(path))?;
    file.write_all(data)
        .map_err(|e| Error::io("cannot write file", e).with_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_the_ca_and_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        let leaf = ca.localhost().unwrap();
        let first = fs::read(&leaf.cert_path).unwrap();
        Identity::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(CA_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(&leaf.key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = LocalCa::load_or_create(dir.path()).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let leaf2 = again.localhost().unwrap();
        assert_eq!(fs::read(&leaf2.cert_path).unwrap(), first);
    }
}

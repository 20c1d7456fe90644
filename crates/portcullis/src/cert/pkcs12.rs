//! PKCS#12 (`.p12`, `.pfx`) export: a private key with its chain in one passphrase-protected
//! file, as Node's `pfx` option, Windows, macOS Keychain and Java keystores take.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    ECDSA_P521_SHA512_ASN1_SIGNING,
};
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::tls::Passphrase;

/// The friendly name (alias) given to the key when the caller names none.
pub const DEFAULT_FRIENDLY_NAME: &str = "portcullis";

/// Key-derivation iterations for the encryption and the MAC (OpenSSL 3 uses 2048; more is
/// slower to brute-force and still instant to open).
const ITERATIONS: u32 = 10_000;

/// Writes `key` and `chain` (leaf first, then its CAs) as a PKCS#12 file protected by
/// `passphrase` (used as UTF-8, as OpenSSL does; read it back with
/// [`Identity::from_pkcs12`](crate::Identity::from_pkcs12)), the key and the certificates under `friendly_name`
/// [default: [`DEFAULT_FRIENDLY_NAME`]].
///
/// Both the key and the certificates are encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)
/// and the whole is authenticated with an HMAC-SHA256 MAC: what OpenSSL 3 writes by default,
/// and what `openssl pkcs12` and Node's `https.createServer({ pfx, passphrase })` read.
///
/// The key may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC P-256, P-384, P-521); it is stored as PKCS#8.
///
/// # Errors
/// An empty chain, a certificate that does not parse, or a key that cannot be converted.
pub fn export(
    chain: &[CertificateDer<'_>],
    key: &PrivateKeyDer<'_>,
    passphrase: &Passphrase,
    friendly_name: Option<&str>,
) -> Result<Vec<u8>> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::config("PKCS#12 export needs at least one certificate"))?;
    let certs = chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("PKCS#12 export: bad certificate: {e}")))?;
    let key = PrivateKey::from_der(&pkcs8(key)?)
        .map_err(|e| Error::config(format!("PKCS#12 export: bad private key: {e}")))?;
    // The localKeyId pairs the key bag with the leaf's bag; the leaf's SHA-1, as OpenSSL does.
    let key_id = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf);
    let mut store = KeyStore::new();
    store.add_entry(
        friendly_name.unwrap_or(DEFAULT_FRIENDLY_NAME),
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(key_id.as_ref(), key, certs)),
    );
    store
        .writer(passphrase.as_str())
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|e| Error::config(format!("PKCS#12 export failed: {e}")))
}

/// The key as PKCS#8 DER, converting PKCS#1 and SEC1 keys.
fn pkcs8(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>> {
    let unusable = || Error::config("PKCS#12 export: unusable private key");
    match key {
        PrivateKeyDer::Pkcs8(der) => Ok(der.secret_pkcs8_der().to_vec()),
        PrivateKeyDer::Pkcs1(der) => {
            let rsa = RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(|_| unusable())?;
            let pkcs8: Pkcs8V1Der<'static> = rsa.as_der().map_err(|_| unusable())?;
            Ok(pkcs8.as_ref().to_vec())
        }
        PrivateKeyDer::Sec1(der) => [
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &ECDSA_P384_SHA384_ASN1_SIGNING,
            &ECDSA_P521_SHA512_ASN1_SIGNING,
        ]
        .into_iter()
        .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, der.secret_sec1_der()).ok())
        .and_then(|ec| ec.to_pkcs8v1().ok())
        .map(|doc| doc.as_ref().to_vec())
        .ok_or_else(unusable),
        _ => Err(unusable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{KeyKind, LeafOptions, LocalCa};

    #[test]
    fn round_trips_through_p12_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        for kind in [KeyKind::Ecdsa, KeyKind::Rsa(2048)] {
            let mut options = LeafOptions::new(["localhost"]);
            options.key = kind;
            let leaf = options.generate(Some(&ca)).unwrap();
            let p12 = export(
                leaf.chain(),
                &leaf.key(),
                &"s3cret".to_owned().into(),
                Some("web"),
            )
            .unwrap();
            let store = KeyStore::from_pkcs12(&p12, "s3cret", Default::default()).unwrap();
            let (alias, chain) = store.private_key_chain().unwrap();
            assert_eq!(alias, "web");
            assert_eq!(chain.key().as_der(), leaf.key().secret_der());
            let certs: Vec<&[u8]> = chain.certs().iter().map(|c| c.as_der()).collect();
            assert_eq!(certs, [&leaf.chain()[0][..], &ca.cert_der()[..]]);
            assert!(KeyStore::from_pkcs12(&p12, "wrong", Default::default()).is_err());
        }
    }

    #[test]
    fn converts_sec1_keys() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        // PKCS#8 → SEC1 through aws-lc-rs, then back by export.
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der())
            .unwrap();
        let sec1 = pair.private_key().as_der().unwrap();
        let sec1 = PrivateKeyDer::Sec1(sec1.as_ref().to_vec().into());
        let p12 = export(&[cert.der().clone()], &sec1, &"pw".to_owned().into(), None).unwrap();
        let store = KeyStore::from_pkcs12(&p12, "pw", Default::default()).unwrap();
        assert_eq!(store.private_key_chain().unwrap().0, DEFAULT_FRIENDLY_NAME);
    }
}

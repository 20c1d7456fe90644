//! Decoding keys and certificates as users have them: PEM, DER, encrypted PKCS#8, legacy
//! OpenSSL encrypted PEM, PKCS#12.
//!
//! Every decoder here works on bytes and returns errors without a file name; the callers that
//! read files add it. Decrypted key bytes live in [`Zeroizing`] buffers until they are handed
//! to rustls, which zeroizes them in turn once the signing key is loaded.

use std::path::Path;

use rustls::sign::CertifiedKey;
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use zeroize::Zeroizing;

use super::Passphrase;
use crate::error::{Error, Result};

mod encrypted;
mod kind;
mod read;

use encrypted::*;
pub(crate) use kind::KeyKind;
use kind::*;
pub(crate) use read::{read_bounded, MAX_BUNDLE, MAX_CRL, MAX_KEY, MAX_SMALL};

/// The message of every error where decryption failed: a wrong passphrase, or a damaged file
/// (the two cannot be told apart once the structure around the ciphertext is sound).
pub(crate) const WRONG_PASSPHRASE: &str =
    "wrong passphrase (or the file is damaged: decryption failed)";

/// Reads every certificate in a file: PEM (`CERTIFICATE` sections, other sections ignored),
/// or DER (one certificate, or several concatenated).
///
/// Each certificate is checked to be well-formed X.509. A file holding a private key as well
/// is fine; its bytes are zeroized after reading.
///
/// # Errors
/// A file that cannot be read, is malformed, or holds no certificate (the error then says what
/// it holds instead). The error names the file.
pub fn load_certificates(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let data = read_bounded(path, MAX_BUNDLE)?;
    certificates(&data).map_err(|e| e.with_path(path))
}

/// The certificates in `data`, PEM or DER, in file order.
pub(crate) fn certificates(data: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let chain = match Format::of(data) {
        Format::Empty => return Err(Error::config("no certificate found; the file is empty")),
        Format::Unknown => {
            return Err(Error::config(
                "no certificate found; the file holds neither PEM nor DER data",
            ))
        }
        Format::Pem => {
            let sections = Sections::parse(data)?;
            let chain: Vec<_> = sections
                .0
                .iter()
                .filter(|s| CERT_LABELS.contains(&s.tag()))
                .map(|s| CertificateDer::from(s.contents().to_vec()))
                .collect();
            if chain.is_empty() {
                return Err(Error::config(format!(
                    "no certificate found; {}",
                    sections.describe()
                )));
            }
            chain
        }
        Format::Der => {
            let mut chain = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                let (kind, len) = DerKind::of(rest);
                if kind != DerKind::Certificate {
                    return Err(if chain.is_empty() {
                        kind.lacking("certificate")
                    } else {
                        Error::config(format!(
                            "corrupt file: data after DER certificate {} is not a certificate",
                            chain.len()
                        ))
                    });
                }
                chain.push(CertificateDer::from(rest[..len].to_vec()));
                rest = &rest[len..];
            }
            chain
        }
    };
    for (i, cert) in chain.iter().enumerate() {
        if let Err(e) = x509_parser::parse_x509_certificate(cert) {
            return Err(Error::config(format!(
                "corrupt file: certificate {} is not valid X.509 ({e})",
                i + 1
            )));
        }
    }
    Ok(chain)
}

/// The (first) private key in `data`: PEM (PKCS#8, PKCS#1, SEC1, encrypted PKCS#8, legacy
/// OpenSSL `Proc-Type: 4,ENCRYPTED`) or DER (PKCS#8, PKCS#1, SEC1, encrypted PKCS#8).
///
/// `passphrase` is needed only for an encrypted key and ignored otherwise.
pub(crate) fn private_key(
    data: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKeyDer<'static>> {
    match Format::of(data) {
        Format::Empty => Err(Error::config("no private key found; the file is empty")),
        Format::Unknown => Err(Error::config(
            "no private key found; the file holds neither PEM nor DER data",
        )),
        Format::Pem => key_from_pem(&Sections::parse(data)?, passphrase),
        Format::Der => {
            let (kind, len) = DerKind::of(data);
            let der = &data[..len];
            match kind {
                DerKind::Pkcs8 | DerKind::Pkcs1 | DerKind::Sec1 => {
                    Ok(typed_key(kind, Zeroizing::new(der.to_vec())))
                }
                DerKind::EncryptedPkcs8 => decrypt_pkcs8(der, passphrase),
                other => Err(other.lacking("private key")),
            }
        }
    }
}

/// True when `data` is (structurally) a DER PKCS#12 archive.
pub(crate) fn is_pkcs12(data: &[u8]) -> bool {
    DerKind::of(data).0 == DerKind::Pkcs12
}

/// Decodes a PKCS#12 archive: the key, and the chain ordered leaf first.
///
/// The leaf is the certificate bound to the key by `localKeyId` (else the one matching the
/// key); the other certificates follow, first those that form a chain up from the leaf, then
/// any others in file order.
pub(crate) fn pkcs12(
    data: &[u8],
    passphrase: &Passphrase,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (kind, _) = DerKind::of(data);
    if kind != DerKind::Pkcs12 {
        return Err(Error::config(match Format::of(data) {
            Format::Pem => format!(
                "not a PKCS#12 file: {}; load PEM files with Identity::from_files",
                Sections::parse(data)
                    .map(|s| s.describe())
                    .unwrap_or_else(|_| "the file holds malformed PEM".into())
            ),
            Format::Der => format!("corrupt file: not valid PKCS#12; {}", kind.describe()),
            Format::Empty => "corrupt file: not valid PKCS#12; the file is empty".into(),
            Format::Unknown => {
                "corrupt file: not valid PKCS#12; the file holds neither PEM nor DER data".into()
            }
        }));
    }
    // p12-keystore keeps its own copies of the decrypted key, which it does not zeroize; ours
    // are zeroized.
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(data, passphrase.as_str())
        .map_err(|e| pkcs12_error(e, pfx_has_mac(data)))?;
    let p12_keystore::Pkcs12Archive { keys, certs, .. } = archive;

    // Prefer a key that a certificate names by localKeyId.
    let linked = |key: &p12_keystore::PrivateKeyBag| {
        key.local_key_id.as_ref().and_then(|id| {
            certs
                .iter()
                .position(|c| c.local_key_id.as_deref() == Some(id.as_ref()))
        })
    };
    let (key_index, leaf) = keys
        .iter()
        .enumerate()
        .find_map(|(i, k)| linked(k).map(|leaf| (i, Some(leaf))))
        .unwrap_or((0, None));
    let Some(key_bag) = keys.get(key_index) else {
        return Err(Error::config(format!(
            "no private key found; the PKCS#12 file holds {} certificate(s) and no key",
            certs.len()
        )));
    };
    if certs.is_empty() {
        return Err(Error::config(
            "no certificate found; the PKCS#12 file holds a private key and no certificate",
        ));
    }
    let key = typed_key(
        DerKind::Pkcs8,
        Zeroizing::new(key_bag.key.as_der().to_vec()),
    );
    let certs: Vec<CertificateDer<'static>> = certs
        .iter()
        .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
        .collect();
    let leaf = leaf.or_else(|| matching_cert(&certs, &key)).unwrap_or(0);
    Ok((order_chain(certs, leaf), key))
}

/// PEM labels read as certificates.
const CERT_LABELS: [&str; 2] = ["CERTIFICATE", "X509 CERTIFICATE"];

/// How a file is encoded, judged from its bytes.
enum Format {
    Empty,
    Pem,
    Der,
    Unknown,
}

impl Format {
    fn of(data: &[u8]) -> Self {
        if data.iter().all(u8::is_ascii_whitespace) {
            Self::Empty
        } else if data.windows(11).any(|w| w == b"-----BEGIN ") {
            Self::Pem
        } else if data[0] == 0x30 {
            Self::Der
        } else {
            Self::Unknown
        }
    }
}

/// The PEM sections of a file. Their contents (keys among them) are zeroized on drop.
struct Sections(Vec<pem::Pem>);

impl Sections {
    fn parse(data: &[u8]) -> Result<Self> {
        pem::parse_many(data)
            .map(Self)
            .map_err(|e| Error::config(format!("malformed PEM: {e}")))
    }

    /// What the sections are, for error messages ("the file holds 2 certificate(s), ...").
    fn describe(&self) -> String {
        let certs = self
            .0
            .iter()
            .filter(|s| CERT_LABELS.contains(&s.tag()))
            .count();
        let keys = self
            .0
            .iter()
            .filter(|s| s.tag().ends_with("PRIVATE KEY"))
            .count();
        let other = self.0.len() - certs - keys;
        match (certs, keys, other) {
            (0, 0, 0) => "the file holds no PEM data".into(),
            _ => format!(
                "the file holds {certs} certificate(s), {keys} private key(s) and {other} other PEM section(s)"
            ),
        }
    }
}

impl Drop for Sections {
    fn drop(&mut self) {
        for section in self.0.drain(..) {
            drop(Zeroizing::new(section.into_contents()));
        }
    }
}

const OPENSSH_KEY: &str = "an OpenSSH private key cannot be used for TLS as it is: convert a \
                           copy to PKCS#8 with `ssh-keygen -p -m PKCS8 -f COPY`";

fn key_from_pem(
    sections: &Sections,
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKeyDer<'static>> {
    let Some(section) = sections.0.iter().find(|s| s.tag().ends_with("PRIVATE KEY")) else {
        return Err(Error::config(format!(
            "no private key found; {}",
            sections.describe()
        )));
    };
    let expected = match section.tag() {
        "PRIVATE KEY" => DerKind::Pkcs8,
        "RSA PRIVATE KEY" => DerKind::Pkcs1,
        "EC PRIVATE KEY" => DerKind::Sec1,
        "ENCRYPTED PRIVATE KEY" => DerKind::EncryptedPkcs8,
        "OPENSSH PRIVATE KEY" => return Err(Error::config(OPENSSH_KEY)),
        other => {
            return Err(Error::config(format!(
                "unsupported private key type `{other}`: TLS keys are RSA, ECDSA or Ed25519"
            )))
        }
    };
    let legacy_encrypted = section
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.split(',').any(|f| f.trim() == "ENCRYPTED"));
    let der = if legacy_encrypted {
        let plain = decrypt_legacy_pem(section, passphrase)?;
        // A wrong passphrase still yields valid padding about once in 256 tries; the
        // structure of the plaintext tells it apart.
        if DerKind::of(&plain) != (expected, plain.len()) {
            return Err(Error::config(WRONG_PASSPHRASE));
        }
        plain
    } else {
        Zeroizing::new(section.contents().to_vec())
    };
    if expected == DerKind::EncryptedPkcs8 {
        return decrypt_pkcs8(&der, passphrase);
    }
    Ok(typed_key(expected, der))
}

/// Wraps decrypted or decoded key bytes in rustls' type without copying them.
fn typed_key(kind: DerKind, mut der: Zeroizing<Vec<u8>>) -> PrivateKeyDer<'static> {
    let der = std::mem::take(&mut *der);
    match kind {
        DerKind::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        DerKind::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        _ => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
    }
}

fn needs_passphrase(what: &str) -> Error {
    Error::config(format!(
        "the private key is encrypted ({what}): a passphrase is needed"
    ))
}

fn unsupported_encryption(what: &str) -> Error {
    Error::config(format!(
        "unsupported key encryption ({what}): re-encrypt the key with \
         `openssl pkcs8 -topk8 -v2 aes256`"
    ))
}

/// Whether a PFX carries `macData` (its third field): then a MAC failure is the sure sign of a
/// wrong passphrase, and any later failure means a damaged or unsupported file.
fn pfx_has_mac(der: &[u8]) -> bool {
    let Some((_, body, _)) = tlv(der) else {
        return false;
    };
    let mut rest = body;
    for _ in 0..2 {
        match tlv(rest) {
            Some((_, _, r)) => rest = r,
            None => return false,
        }
    }
    tlv(rest).is_some()
}

fn pkcs12_error(e: p12_keystore::error::Error, has_mac: bool) -> Error {
    use p12_keystore::error::Error as E;
    match e {
        E::MacError(_) => Error::config(WRONG_PASSPHRASE),
        E::UnpadError | E::Pkcs5Error(_) | E::DerError(_) | E::InvalidPrivateKey if !has_mac => {
            Error::config(WRONG_PASSPHRASE)
        }
        E::UnsupportedEncryptionScheme
        | E::UnsupportedMacAlgorithm
        | E::UnsupportedContentType
        | E::UnsupportedCertificateType => Error::config(format!(
            "unsupported PKCS#12 file ({e}): re-export it with `openssl pkcs12 -export \
             -certpbe AES-256-CBC -keypbe AES-256-CBC`"
        )),
        E::InvalidParameters => Error::config(
            "unsupported PKCS#12 file: its parameters are invalid or its iteration counts \
             too high",
        ),
        e => Error::config(format!("corrupt file: not valid PKCS#12 ({e})")),
    }
}

/// The index of the certificate whose public key matches `key`, if any.
fn matching_cert(certs: &[CertificateDer<'static>], key: &PrivateKeyDer<'static>) -> Option<usize> {
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(key).ok()?;
    certs.iter().position(|cert| {
        CertifiedKey::new(vec![cert.clone()], signer.clone())
            .keys_match()
            .is_ok()
    })
}

/// Orders `certs` leaf first, then the chain up from it by issuer name, then the rest in
/// their original order. Exact duplicates are dropped.
fn order_chain(certs: Vec<CertificateDer<'static>>, leaf: usize) -> Vec<CertificateDer<'static>> {
    // (subject, issuer) of each certificate, raw DER names.
    let names: Vec<Option<(Vec<u8>, Vec<u8>)>> = certs
        .iter()
        .map(|c| {
            x509_parser::parse_x509_certificate(c)
                .ok()
                .map(|(_, x)| (x.subject().as_raw().to_vec(), x.issuer().as_raw().to_vec()))
        })
        .collect();
    let mut remaining: Vec<usize> = (0..certs.len()).filter(|&i| i != leaf).collect();
    let mut order = vec![leaf];
    let mut current = leaf;
    while let Some((subject, issuer)) = &names[current] {
        if subject == issuer {
            break; // self-signed: the top
        }
        let next = remaining
            .iter()
            .position(|&i| names[i].as_ref().is_some_and(|(s, _)| s == issuer));
        let Some(next) = next else { break };
        current = remaining.remove(next);
        order.push(current);
    }
    order.extend(remaining);
    let mut chain: Vec<CertificateDer<'static>> = Vec::with_capacity(order.len());
    for i in order {
        if !chain.contains(&certs[i]) {
            chain.push(certs[i].clone());
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::Identity;
    use std::path::PathBuf;
    use std::process::Command;

    /// A scratch directory where `openssl` makes key material.
    struct Scratch(tempfile::TempDir);

    impl Scratch {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.path().join(name)
        }

        fn read(&self, name: &str) -> Vec<u8> {
            std::fs::read(self.path(name)).unwrap()
        }

        fn text(&self, name: &str) -> String {
            String::from_utf8(self.read(name)).unwrap()
        }

        /// Runs `openssl` with the whitespace-separated `args` in the directory; its stdout.
        fn openssl(&self, args: &str) -> String {
            let out = Command::new("openssl")
                .args(args.split_whitespace())
                .current_dir(self.0.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }

        /// A self-signed certificate `c.pem` for `key` (whose passphrase is `secret`, if any).
        fn self_signed(&self, key: &str) {
            self.openssl(&format!(
                "req -x509 -key {key} -passin pass:secret -out c.pem -subj /CN=localhost -days 30"
            ));
        }

        /// An RSA key `k.pem` and a self-signed certificate `c.pem` for it.
        fn rsa_pair(&self) {
            self.openssl("genrsa -out k.pem 2048");
            self.self_signed("k.pem");
        }
    }

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.into())
    }

    /// The key decoded from `name` (with `passphrase`) matches the certificate `c.pem`.
    fn assert_loads(s: &Scratch, name: &str, passphrase: Option<&Passphrase>) {
        let key = private_key(&s.read(name), passphrase).unwrap_or_else(|e| panic!("{name}: {e}"));
        let chain = certificates(&s.read("c.pem")).unwrap();
        Identity::from_der(chain, key).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    fn err_of<T>(r: Result<T>) -> String {
        r.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        let s = Scratch::new();
        for (cipher, len) in [
            ("aes-256-cbc", 32),
            ("des-ede3-cbc", 24),
            ("aes-128-cbc", 16),
        ] {
            let out = s.openssl(&format!(
                "enc -{cipher} -md md5 -pass pass:secret -S 0001020304050607 -P"
            ));
            let want = out
                .lines()
                .find_map(|l| l.strip_prefix("key="))
                .expect("openssl printed the key");
            let got = evp_bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], len);
            let got: String = got.iter().map(|b| format!("{b:02X}")).collect();
            assert_eq!(got, want.trim(), "{cipher}");
        }
    }

    #[test]
    fn plain_pem_keys_of_every_kind() {
        let s = Scratch::new();
        s.rsa_pair();
        s.openssl("rsa -in k.pem -traditional -out pkcs1.pem");
        assert!(s.text("pkcs1.pem").contains("BEGIN RSA PRIVATE KEY"));
        assert_loads(&s, "k.pem", None);
        assert_loads(&s, "pkcs1.pem", None);

        let ec = Scratch::new();
        // Without -noout, `ecparam -genkey` writes an EC PARAMETERS section first.
        ec.openssl("ecparam -genkey -name prime256v1 -out k.pem");
        assert!(ec.text("k.pem").contains("BEGIN EC PARAMETERS"));
        ec.self_signed("k.pem");
        assert!(matches!(
            private_key(&ec.read("k.pem"), None),
            Ok(PrivateKeyDer::Sec1(_))
        ));
        assert_loads(&ec, "k.pem", None);

        let ed = Scratch::new();
        ed.openssl("genpkey -algorithm ed25519 -out k.pem");
        ed.self_signed("k.pem");
        assert_loads(&ed, "k.pem", None);

        // Certificate and key in one file, key first, with the text `openssl pkcs12 -nodes`
        // puts around sections.
        let mut both = b"Bag Attributes\n    localKeyID: 01 02\nsubject=CN = localhost\n".to_vec();
        both.extend(s.read("k.pem"));
        both.extend(s.read("c.pem"));
        assert_eq!(certificates(&both).unwrap().len(), 1);
        assert!(private_key(&both, None).is_ok());
    }

    #[test]
    fn der_keys_and_certificates_are_detected() {
        let s = Scratch::new();
        s.rsa_pair();
        s.openssl("x509 -in c.pem -outform DER -out c.der");
        s.openssl("pkcs8 -topk8 -nocrypt -in k.pem -outform DER -out k8.der");
        s.openssl("rsa -in k.pem -traditional -outform DER -out k1.der");
        s.openssl(
            "pkcs8 -topk8 -v2 aes256 -in k.pem -outform DER -out enc.der -passout pass:secret",
        );
        assert_eq!(
            certificates(&s.read("c.der")).unwrap(),
            certificates(&s.read("c.pem")).unwrap()
        );
        assert!(matches!(
            private_key(&s.read("k8.der"), None),
            Ok(PrivateKeyDer::Pkcs8(_))
        ));
        assert!(matches!(
            private_key(&s.read("k1.der"), None),
            Ok(PrivateKeyDer::Pkcs1(_))
        ));
        assert_loads(&s, "k8.der", None);
        assert_loads(&s, "k1.der", None);
        assert_loads(&s, "enc.der", Some(&pass("secret")));
        let e = err_of(private_key(&s.read("enc.der"), None));
        assert!(e.contains("a passphrase is needed"), "{e}");

        let ec = Scratch::new();
        ec.openssl("ecparam -genkey -name prime256v1 -noout -outform DER -out k.der");
        assert!(matches!(
            private_key(&ec.read("k.der"), None),
            Ok(PrivateKeyDer::Sec1(_))
        ));

        // Two DER certificates back to back are two certificates.
        let mut two = s.read("c.der");
        two.extend(s.read("c.der"));
        assert_eq!(certificates(&two).unwrap().len(), 2);

        // Swapped or odd files say what they hold.
        let e = err_of(private_key(&s.read("c.der"), None));
        assert!(
            e.contains("no private key found; the file holds a DER certificate"),
            "{e}"
        );
        let e = err_of(certificates(&s.read("k8.der")));
        assert!(
            e.contains("no certificate found; the file holds a DER private key"),
            "{e}"
        );
        let e = err_of(private_key(b"just some text\n", None));
        assert!(e.contains("neither PEM nor DER"), "{e}");
        let e = err_of(private_key(b"", None));
        assert!(e.contains("the file is empty"), "{e}");
        let mut cut = s.read("c.der");
        cut.truncate(100);
        let e = err_of(certificates(&cut));
        assert!(e.starts_with("corrupt file"), "{e}");

        // load_certificates reads files and names them in errors.
        assert_eq!(load_certificates(s.path("c.der")).unwrap().len(), 1);
        let e = err_of(load_certificates(s.path("k.pem")));
        assert!(e.starts_with(&s.path("k.pem").display().to_string()), "{e}");
        assert!(e.contains("0 certificate(s), 1 private key(s)"), "{e}");
    }

    #[test]
    fn encrypted_pkcs8() {
        let s = Scratch::new();
        s.rsa_pair();
        for cipher in ["aes256", "des3", "aes128"] {
            let name = format!("{cipher}.pem");
            s.openssl(&format!(
                "pkcs8 -topk8 -v2 {cipher} -in k.pem -out {name} -passout pass:secret"
            ));
            assert!(s.text(&name).contains("BEGIN ENCRYPTED PRIVATE KEY"));
            assert_loads(&s, &name, Some(&pass("secret")));
            let e = err_of(private_key(&s.read(&name), Some(&pass("wrong"))));
            assert_eq!(e, WRONG_PASSPHRASE, "{name}");
            let e = err_of(private_key(&s.read(&name), None));
            assert!(
                e.contains("encrypted (PKCS#8): a passphrase is needed"),
                "{e}"
            );
        }

        // What `openssl genrsa -aes256` writes in OpenSSL 3.
        let g = Scratch::new();
        g.openssl("genrsa -aes256 -out k.pem -passout pass:secret 2048");
        assert!(g.text("k.pem").contains("BEGIN ENCRYPTED PRIVATE KEY"));
        g.self_signed("k.pem");
        assert_loads(&g, "k.pem", Some(&pass("secret")));

        // PBES1 (`-v1`) cannot be decoded: unsupported, not a wrong passphrase.
        s.openssl("pkcs8 -topk8 -v1 PBE-SHA1-3DES -in k.pem -out v1.pem -passout pass:secret");
        let e = err_of(private_key(&s.read("v1.pem"), Some(&pass("secret"))));
        assert!(e.starts_with("unsupported key encryption"), "{e}");
    }

    #[test]
    fn corrupt_encrypted_pkcs8_is_not_a_wrong_passphrase() {
        let s = Scratch::new();
        s.rsa_pair();
        s.openssl(
            "pkcs8 -topk8 -v2 aes256 -in k.pem -outform DER -out enc.der -passout pass:secret",
        );
        let mut der = s.read("enc.der");
        der.truncate(der.len() - 40);
        // As a DER file: the lengths overrun.
        let e = err_of(private_key(&der, Some(&pass("secret"))));
        assert!(e.starts_with("corrupt file"), "{e}");
        // As a PEM section: the structure does not parse.
        let pem = pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", der));
        let e = err_of(private_key(pem.as_bytes(), Some(&pass("secret"))));
        assert!(
            e.starts_with("corrupt file: not a valid encrypted PKCS#8 key"),
            "{e}"
        );
    }

    #[test]
    fn legacy_encrypted_pem() {
        let s = Scratch::new();
        s.rsa_pair();
        for (flag, cipher) in [
            ("aes128", "AES-128-CBC"),
            ("aes192", "AES-192-CBC"),
            ("aes256", "AES-256-CBC"),
            ("des3", "DES-EDE3-CBC"),
        ] {
            let name = format!("{flag}.pem");
            s.openssl(&format!(
                "rsa -in k.pem -{flag} -traditional -out {name} -passout pass:secret"
            ));
            let text = s.text(&name);
            assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{text}");
            assert!(text.contains(&format!("DEK-Info: {cipher},")), "{text}");
            assert_loads(&s, &name, Some(&pass("secret")));
            assert!(matches!(
                private_key(&s.read(&name), Some(&pass("secret"))),
                Ok(PrivateKeyDer::Pkcs1(_))
            ));
            let e = err_of(private_key(&s.read(&name), Some(&pass("wrong"))));
            assert_eq!(e, WRONG_PASSPHRASE, "{name}");
            let e = err_of(private_key(&s.read(&name), None));
            assert!(
                e.contains(&format!("(OpenSSL PEM, {cipher}): a passphrase is needed")),
                "{e}"
            );
        }

        // An EC key, as `openssl ec -aes256` writes it.
        let ec = Scratch::new();
        ec.openssl("ecparam -genkey -name prime256v1 -noout -out k.pem");
        ec.self_signed("k.pem");
        ec.openssl("ec -in k.pem -aes256 -out enc.pem -passout pass:secret");
        assert!(ec.text("enc.pem").contains("BEGIN EC PRIVATE KEY"));
        assert_loads(&ec, "enc.pem", Some(&pass("secret")));

        // A damaged header is corruption, an unknown cipher is unsupported.
        let text = s.text("aes256.pem");
        let bad_iv = text.replace("DEK-Info: AES-256-CBC,", "DEK-Info: AES-256-CBC,ZZ");
        let e = err_of(private_key(bad_iv.as_bytes(), Some(&pass("secret"))));
        assert!(
            e.contains("corrupt file: legacy encrypted PEM key: malformed IV"),
            "{e}"
        );
        let unknown = text.replace("AES-256-CBC", "CAMELLIA-256-CBC");
        let e = err_of(private_key(unknown.as_bytes(), Some(&pass("secret"))));
        assert!(
            e.contains("unsupported key encryption `CAMELLIA-256-CBC`"),
            "{e}"
        );
    }

    #[test]
    fn pkcs12_files() {
        let s = Scratch::new();
        s.rsa_pair();
        for (name, extra) in [
            ("aes.p12", "-certpbe AES-256-CBC -keypbe AES-256-CBC"),
            ("default.p12", ""),
            ("legacy.p12", "-legacy"),
        ] {
            s.openssl(&format!(
                "pkcs12 -export -in c.pem -inkey k.pem -out {name} -passout pass:secret {extra}"
            ));
            let data = s.read(name);
            assert!(is_pkcs12(&data));
            let (chain, key) =
                pkcs12(&data, &pass("secret")).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(chain, certificates(&s.read("c.pem")).unwrap(), "{name}");
            Identity::from_der(chain, key).unwrap();
            let e = err_of(pkcs12(&data, &pass("wrong")));
            assert_eq!(e, WRONG_PASSPHRASE, "{name}");
        }

        // A broken structure is corruption; a PEM file is not PKCS#12 and says what it holds.
        let mut cut = s.read("aes.p12");
        cut.truncate(cut.len() / 2);
        let e = err_of(pkcs12(&cut, &pass("secret")));
        assert!(e.starts_with("corrupt file: not valid PKCS#12"), "{e}");
        assert!(!e.contains("wrong passphrase"), "{e}");
        let e = err_of(pkcs12(&s.read("c.pem"), &pass("secret")));
        assert!(
            e.contains("not a PKCS#12 file: the file holds 1 certificate(s)"),
            "{e}"
        );
        // A PKCS#12 file given where a key is expected says what it is.
        let e = err_of(private_key(&s.read("aes.p12"), None));
        assert!(e.contains("the file is a PKCS#12 archive"), "{e}");
    }

    #[test]
    fn pkcs12_chain_is_ordered_leaf_first() {
        let s = Scratch::new();
        // A root CA, an intermediate, a leaf; the archive lists the CAs root first.
        std::fs::write(s.path("ca.ext"), "basicConstraints=critical,CA:true\n").unwrap();
        s.openssl("genrsa -out root.key 2048");
        s.openssl("req -x509 -key root.key -out root.pem -subj /CN=Root -days 30");
        s.openssl("genrsa -out int.key 2048");
        s.openssl("req -new -key int.key -out int.csr -subj /CN=Int");
        s.openssl(
            "x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -out int.pem \
             -days 30 -extfile ca.ext",
        );
        s.openssl("genrsa -out k.pem 2048");
        s.openssl("req -new -key k.pem -out leaf.csr -subj /CN=localhost");
        s.openssl(
            "x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -out c.pem \
             -days 30",
        );
        let mut cas = s.read("root.pem");
        cas.extend(s.read("int.pem"));
        std::fs::write(s.path("cas.pem"), cas).unwrap();
        s.openssl(
            "pkcs12 -export -in c.pem -inkey k.pem -certfile cas.pem -out a.p12 \
             -passout pass:secret",
        );
        let (chain, _) = pkcs12(&s.read("a.p12"), &pass("secret")).unwrap();
        let want: Vec<_> = ["c.pem", "int.pem", "root.pem"]
            .iter()
            .map(|f| certificates(&s.read(f)).unwrap().remove(0))
            .collect();
        assert_eq!(chain, want);
    }

    #[test]
    fn key_kinds_are_read_from_every_key_format() {
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let der = PrivateKeyDer::Pkcs8(ec.serialize_der().into());
        assert_eq!(KeyKind::of(&der), KeyKind::Ec("P-384"));
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let der = PrivateKeyDer::Pkcs8(ed.serialize_der().into());
        assert_eq!(KeyKind::of(&der), KeyKind::Ed25519);
        assert_eq!(
            KeyKind::Rsa(1024).refusal(),
            "RSA key of 1024 bits: at least 2048 needed; `portcullis cert new` makes one (or \
             `openssl genrsa 2048`)"
        );
        assert_eq!(
            KeyKind::of(&PrivateKeyDer::Pkcs8(vec![1, 2, 3].into())),
            KeyKind::Unreadable
        );
    }
}

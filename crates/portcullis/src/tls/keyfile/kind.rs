//! What a key or DER value is (algorithm, size, curve), read from its structure without
//! decoding key material, to pick a decoder and to say why a key cannot be used.

use super::*;

/// What a DER value is, judged from the shape of its outer `SEQUENCE` (its first two fields).
/// This only picks the decoder; the decoders check the whole value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DerKind {
    Certificate,
    Pkcs8,
    EncryptedPkcs8,
    Pkcs1,
    Sec1,
    Pkcs12,
    /// A `SEQUENCE` whose lengths overrun the data.
    Damaged,
    Unknown,
}

impl DerKind {
    /// The kind of the first DER value in `der`, and that value's encoded length.
    pub(super) fn of(der: &[u8]) -> (Self, usize) {
        const SEQUENCE: u8 = 0x30;
        const INTEGER: u8 = 0x02;
        const OCTET_STRING: u8 = 0x04;
        let Some((tag, body, rest)) = tlv(der) else {
            let kind = if der.first() == Some(&SEQUENCE) {
                Self::Damaged
            } else {
                Self::Unknown
            };
            return (kind, der.len());
        };
        let len = der.len() - rest.len();
        if tag != SEQUENCE {
            return (Self::Unknown, len);
        }
        let Some((tag1, value1, after1)) = tlv(body) else {
            return (Self::Damaged, len);
        };
        let tag2 = tlv(after1).map(|(tag, ..)| tag);
        let kind = match (tag1, value1, tag2) {
            // tbsCertificate, signatureAlgorithm
            (SEQUENCE, _, Some(SEQUENCE)) => Self::Certificate,
            // encryptionAlgorithm, encryptedData
            (SEQUENCE, _, Some(OCTET_STRING)) => Self::EncryptedPkcs8,
            // version 3, authSafe
            (INTEGER, [3], Some(SEQUENCE)) => Self::Pkcs12,
            // version 0 (v1) or 1 (v2, OneAsymmetricKey), privateKeyAlgorithm
            (INTEGER, [0 | 1], Some(SEQUENCE)) => Self::Pkcs8,
            // version 0, modulus
            (INTEGER, [0], Some(INTEGER)) => Self::Pkcs1,
            // version 1, privateKey
            (INTEGER, [1], Some(OCTET_STRING)) => Self::Sec1,
            _ => Self::Unknown,
        };
        (kind, len)
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::Certificate => "the file holds a DER certificate",
            Self::Pkcs8 | Self::Pkcs1 | Self::Sec1 => "the file holds a DER private key",
            Self::EncryptedPkcs8 => "the file holds an encrypted DER private key (PKCS#8)",
            Self::Pkcs12 => {
                "the file is a PKCS#12 archive (.p12/.pfx): load it with \
                 Identity::from_pkcs12_file, or give it as both certificate and key"
            }
            Self::Damaged => "the DER data is truncated or damaged",
            Self::Unknown => {
                "the file holds DER data that is neither a certificate, a private key nor a \
                 PKCS#12 archive"
            }
        }
    }

    /// The error for a file of this kind where a `what` was expected and is missing.
    pub(super) fn lacking(self, what: &str) -> Error {
        match self {
            Self::Damaged => Error::config(format!("corrupt file: {}", self.describe())),
            _ => Error::config(format!("no {what} found; {}", self.describe())),
        }
    }
}

/// What a private key is, as far as telling a user why it cannot be used goes: algorithm and
/// size or curve, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa(usize),
    Ec(&'static str),
    Ed25519,
    Ed448,
    Dsa,
    RsaPss,
    KeyAgreement(&'static str),
    Other(String),
    Unreadable,
}

impl KeyKind {
    /// Reads the algorithm and its size or curve from a PKCS#1, SEC1 or PKCS#8 key.
    pub(crate) fn of(key: &PrivateKeyDer<'_>) -> Self {
        let parsed = match key {
            PrivateKeyDer::Pkcs1(der) => rsa_bits(der.secret_pkcs1_der()).map(KeyKind::Rsa),
            PrivateKeyDer::Sec1(der) => sec1_curve(der.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(der) => pkcs8_kind(der.secret_pkcs8_der()),
            _ => None,
        };
        parsed.unwrap_or(KeyKind::Unreadable)
    }

    /// Why a key of this kind was refused by the crypto provider, and what to do.
    pub(crate) fn refusal(&self) -> String {
        const MAKE: &str = "`portcullis cert new` makes one";
        match self {
            KeyKind::Rsa(bits) if *bits < 2048 => {
                format!("RSA key of {bits} bits: at least 2048 needed; {MAKE} (or `openssl genrsa 2048`)")
            }
            KeyKind::Rsa(bits) => {
                format!("RSA key of {bits} bits: not supported (2048 to 8192 bits are); {MAKE}")
            }
            KeyKind::Ec(curve @ ("P-256" | "P-384" | "P-521")) => {
                format!(
                    "EC key on curve {curve}: the key could not be loaded (is the file damaged?)"
                )
            }
            KeyKind::Ec(curve) => format!(
                "EC key on curve {curve}: not supported (P-256, P-384 and P-521 are); {MAKE} (or \
                 `openssl ecparam -name prime256v1 -genkey -noout`)"
            ),
            KeyKind::Ed25519 => {
                "Ed25519 key: the key could not be loaded (is the file damaged?)".to_owned()
            }
            KeyKind::Ed448 => {
                format!("Ed448 key: not supported (Ed25519, ECDSA and RSA are); {MAKE}")
            }
            KeyKind::Dsa => format!("DSA key: not supported (ECDSA, Ed25519 and RSA are); {MAKE}"),
            KeyKind::RsaPss => format!(
                "RSA-PSS key (algorithm id-RSASSA-PSS): not supported; an ordinary RSA key \
                 (`openssl genrsa 2048`) signs with PSS in TLS 1.3 anyway; {MAKE}"
            ),
            KeyKind::KeyAgreement(name) => {
                format!("{name} key: that is a key-exchange key and cannot sign; {MAKE}")
            }
            KeyKind::Other(oid) => {
                format!("unsupported private key type (algorithm OID {oid}); {MAKE}")
            }
            KeyKind::Unreadable => {
                "the private key could not be read (is the file damaged?)".to_owned()
            }
        }
    }
}

/// The modulus size of a PKCS#1 `RSAPrivateKey`.
pub(super) fn rsa_bits(der: &[u8]) -> Option<usize> {
    let (0x30, body, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = tlv(body)? else {
        return None;
    };
    let (0x02, modulus, _) = tlv(rest)? else {
        return None;
    };
    let modulus = match modulus.iter().position(|&b| b != 0) {
        Some(i) => &modulus[i..],
        None => return Some(0),
    };
    Some(modulus.len() * 8 - modulus[0].leading_zeros() as usize)
}

/// The curve of a SEC1 `ECPrivateKey` (from its `[0] parameters`).
pub(super) fn sec1_curve(der: &[u8]) -> Option<KeyKind> {
    let (0x30, body, _) = tlv(der)? else {
        return None;
    };
    let (_, _version, rest) = tlv(body)?;
    let (_, _private, mut rest) = tlv(rest)?;
    while let Some((tag, value, next)) = tlv(rest) {
        if tag == 0xa0 {
            let (0x06, oid, _) = tlv(value)? else {
                return None;
            };
            return Some(KeyKind::Ec(curve_name(oid)));
        }
        rest = next;
    }
    Some(KeyKind::Ec("unnamed"))
}

/// The algorithm of a PKCS#8 `PrivateKeyInfo`, with the RSA size or the EC curve.
pub(super) fn pkcs8_kind(der: &[u8]) -> Option<KeyKind> {
    let (0x30, body, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = tlv(body)? else {
        return None;
    };
    let (0x30, algorithm, rest) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, parameters) = tlv(algorithm)? else {
        return None;
    };
    Some(match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01] => {
            let (0x04, pkcs1, _) = tlv(rest)? else {
                return None;
            };
            KeyKind::Rsa(rsa_bits(pkcs1)?)
        }
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a] => KeyKind::RsaPss,
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => match tlv(parameters) {
            Some((0x06, curve, _)) => KeyKind::Ec(curve_name(curve)),
            _ => KeyKind::Ec("unnamed"),
        },
        [0x2b, 0x65, 0x70] => KeyKind::Ed25519,
        [0x2b, 0x65, 0x71] => KeyKind::Ed448,
        [0x2b, 0x65, 0x6e] => KeyKind::KeyAgreement("X25519"),
        [0x2b, 0x65, 0x6f] => KeyKind::KeyAgreement("X448"),
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => KeyKind::Dsa,
        other => KeyKind::Other(
            pkcs8::ObjectIdentifier::from_bytes(other)
                .map_or_else(|_| "unreadable".to_owned(), |oid| oid.to_string()),
        ),
    })
}

/// OpenSSL's or NIST's name for a named curve OID.
pub(super) fn curve_name(oid: &[u8]) -> &'static str {
    match oid {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => "P-256",
        [0x2b, 0x81, 0x04, 0x00, 0x22] => "P-384",
        [0x2b, 0x81, 0x04, 0x00, 0x23] => "P-521",
        [0x2b, 0x81, 0x04, 0x00, 0x21] => "P-224",
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01] => "P-192",
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => "secp256k1",
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07] => "brainpoolP256r1",
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b] => "brainpoolP384r1",
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d] => "brainpoolP512r1",
        _ => "unknown to this program",
    }
}

/// Splits one DER tag-length-value off `input`: (tag, value, rest). Definite lengths only.
pub(super) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags never occur at the levels looked at here
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

//! Encrypted keys: PKCS#8 `EncryptedPrivateKeyInfo` (PBES2) and OpenSSL's legacy encrypted PEM.

use super::*;

/// The OID of an `EncryptedPrivateKeyInfo`'s encryption algorithm, read without decoding its
/// parameters (to name an algorithm the decoder does not know).
pub(super) fn encryption_oid(der: &[u8]) -> Option<pkcs8::ObjectIdentifier> {
    pub(super) const OID: u8 = 0x06;
    let (_, body, _) = tlv(der)?;
    let (_, algorithm, _) = tlv(body)?;
    match tlv(algorithm)? {
        (OID, oid, _) => pkcs8::ObjectIdentifier::from_bytes(oid).ok(),
        _ => None,
    }
}

/// Decrypts a DER `EncryptedPrivateKeyInfo` (PBES2 with PBKDF2 or scrypt, AES-CBC or 3DES).
pub(super) fn decrypt_pkcs8(
    der: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKeyDer<'static>> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| {
        let oid_unknown = matches!(
            &e,
            pkcs8::Error::Asn1(e) if matches!(e.kind(), pkcs8::der::ErrorKind::OidUnknown { .. })
        );
        match encryption_oid(der) {
            Some(oid) if oid != pkcs8::pkcs5::pbes2::PBES2_OID => {
                unsupported_encryption(&format!("algorithm {oid}, not PBES2"))
            }
            _ if oid_unknown => unsupported_encryption(&e.to_string()),
            _ => Error::config(format!(
                "corrupt file: not a valid encrypted PKCS#8 key ({e})"
            )),
        }
    })?;
    let passphrase = passphrase.ok_or_else(|| needs_passphrase("PKCS#8"))?;
    let doc = info.decrypt(passphrase.as_bytes()).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed)
        | pkcs8::Error::Asn1(_) => Error::config(WRONG_PASSPHRASE),
        e => unsupported_encryption(&e.to_string()),
    })?;
    // `doc` zeroizes its copy on drop.
    let plain = Zeroizing::new(doc.as_bytes().to_vec());
    if DerKind::of(&plain) != (DerKind::Pkcs8, plain.len()) {
        return Err(Error::config(WRONG_PASSPHRASE));
    }
    Ok(typed_key(DerKind::Pkcs8, plain))
}

/// The ciphers OpenSSL writes in a legacy `DEK-Info:` header.
#[derive(Clone, Copy)]
pub(super) enum LegacyCipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

impl LegacyCipher {
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "AES-128-CBC" => Self::Aes128,
            "AES-192-CBC" => Self::Aes192,
            "AES-256-CBC" => Self::Aes256,
            "DES-EDE3-CBC" => Self::DesEde3,
            "DES-CBC" => Self::Des,
            _ => return None,
        })
    }

    pub(super) fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 | Self::DesEde3 => 24,
            Self::Aes256 => 32,
            Self::Des => 8,
        }
    }

    pub(super) fn block_len(self) -> usize {
        match self {
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
            Self::DesEde3 | Self::Des => 8,
        }
    }
}

/// Decrypts a legacy OpenSSL encrypted PEM body (`Proc-Type: 4,ENCRYPTED`, `DEK-Info:`).
///
/// No maintained crate decodes this format, so it is composed here from RustCrypto
/// primitives: the key is OpenSSL's `EVP_BytesToKey` with MD5, one iteration and the first 8
/// bytes of the IV as salt (see [`evp_bytes_to_key`]); the body is CBC with PKCS#7 padding.
pub(super) fn decrypt_legacy_pem(
    section: &pem::Pem,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<Vec<u8>>> {
    use cbc::cipher::KeyIvInit as _;

    let corrupt =
        |what: &str| Error::config(format!("corrupt file: legacy encrypted PEM key: {what}"));
    let dek = section
        .headers()
        .get("DEK-Info")
        .ok_or_else(|| corrupt("no DEK-Info header"))?;
    let (name, iv) = dek
        .split_once(',')
        .ok_or_else(|| corrupt("malformed DEK-Info header"))?;
    let name = name.trim().to_ascii_uppercase();
    let cipher = LegacyCipher::from_name(&name).ok_or_else(|| {
        Error::config(format!(
            "unsupported key encryption `{name}`: re-encrypt the key with \
             `openssl pkcs8 -topk8 -v2 aes256`"
        ))
    })?;
    let iv = decode_hex(iv.trim())
        .filter(|iv| iv.len() == cipher.block_len())
        .ok_or_else(|| corrupt("malformed IV in the DEK-Info header"))?;
    let body = section.contents();
    if body.is_empty() || body.len() % cipher.block_len() != 0 {
        return Err(corrupt("the body is not a whole number of cipher blocks"));
    }
    let passphrase = passphrase.ok_or_else(|| needs_passphrase(&format!("OpenSSL PEM, {name}")))?;
    let key = evp_bytes_to_key(passphrase.as_bytes(), &iv[..8], cipher.key_len());
    let mut buf = Zeroizing::new(body.to_vec());
    let plain_len = match cipher {
        LegacyCipher::Aes128 => cbc_decrypt(
            cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv),
            &mut buf,
        ),
        LegacyCipher::Aes192 => cbc_decrypt(
            cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv),
            &mut buf,
        ),
        LegacyCipher::Aes256 => cbc_decrypt(
            cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv),
            &mut buf,
        ),
        LegacyCipher::DesEde3 => cbc_decrypt(
            cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv),
            &mut buf,
        ),
        LegacyCipher::Des => cbc_decrypt(
            cbc::Decryptor::<des::Des>::new_from_slices(&key, &iv),
            &mut buf,
        ),
    }
    .ok_or_else(|| Error::config(WRONG_PASSPHRASE))?;
    buf.truncate(plain_len);
    Ok(buf)
}

/// Decrypts `buf` in place (CBC, PKCS#7 padding); the plaintext length, or `None` when the
/// padding is wrong (the usual sign of a wrong passphrase).
pub(super) fn cbc_decrypt<D: cbc::cipher::BlockModeDecrypt>(
    decryptor: std::result::Result<D, cbc::cipher::InvalidLength>,
    buf: &mut [u8],
) -> Option<usize> {
    decryptor
        .ok()?
        .decrypt_padded::<cbc::cipher::block_padding::Pkcs7>(buf)
        .ok()
        .map(<[u8]>::len)
}

/// OpenSSL's `EVP_BytesToKey(cipher, EVP_md5(), salt, pass, count = 1)`, the key derivation of
/// legacy encrypted PEM: `D_1 = MD5(pass || salt)`, `D_i = MD5(D_{i-1} || pass || salt)`, the
/// key is the first `len` bytes of `D_1 || D_2 || ...`. Composed from the `md-5` crate because
/// no maintained crate provides it.
pub(super) fn evp_bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    use md5::{Digest as _, Md5};

    let mut key = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut block = Zeroizing::new([0u8; 16]);
    while key.len() < len {
        let mut md5 = Md5::new();
        if !key.is_empty() {
            md5.update(&block[..]);
        }
        md5.update(pass);
        md5.update(salt);
        let digest = md5.finalize();
        block.copy_from_slice(&digest);
        key.extend_from_slice(&block[..]);
    }
    key.truncate(len);
    key
}

pub(super) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

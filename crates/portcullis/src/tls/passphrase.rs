//! The passphrase of an encrypted key file, wiped from memory when dropped.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The passphrase that unlocks an encrypted private key or a PKCS#12 (`.p12`/`.pfx`) file.
///
/// The text is overwritten with zeros when the value is dropped, and `Debug` never prints it.
/// It is used as UTF-8 bytes, as OpenSSL does with a passphrase typed or given on its command
/// line.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase; the string is taken over (not copied) and zeroized on drop.
    pub fn new(passphrase: String) -> Self {
        Self(Zeroizing::new(passphrase))
    }

    /// Reads a passphrase from a file, dropping one trailing newline (`\n` or `\r\n`) if there
    /// is one, like OpenSSL's `-passin file:`. Everything else, spaces included, is kept.
    ///
    /// # Errors
    /// A file that cannot be read or is not UTF-8 text; the error names the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = super::keyfile::read_bounded(path, super::keyfile::MAX_SMALL)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::config("the passphrase file is not UTF-8 text").with_path(path))?;
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        let mut out = Zeroizing::new(String::with_capacity(text.len()));
        out.push_str(text);
        Ok(Self(out))
    }

    /// The passphrase as bytes, for the decoders.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase as text, for the decoders that take `&str`.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Passphrase {
    fn from(passphrase: String) -> Self {
        Self::new(passphrase)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let p = Passphrase::new("hunter2".into());
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    }

    #[test]
    fn from_file_strips_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 5] = [
            (b"secret\n", "secret"),
            (b"secret\r\n", "secret"),
            (b"secret", "secret"),
            (b"secret\n\n", "secret\n"),
            (b" two words \n", " two words "),
        ];
        for (i, (content, want)) in cases.into_iter().enumerate() {
            let f = dir.path().join(format!("p{i}"));
            std::fs::write(&f, content).unwrap();
            assert_eq!(Passphrase::from_file(&f).unwrap().as_str(), want);
        }
        let err = Passphrase::from_file(dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }
}

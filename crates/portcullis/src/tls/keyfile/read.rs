//! Reading key material from disk with bounds: only regular files (a FIFO or a device would
//! block or never end), and no more than a stated size, so `--cert /dev/zero` or a log file
//! given by mistake is refused at once with the file's name instead of filling memory.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The largest private key file (a 16384-bit RSA key in PEM is ~13 kB).
pub(crate) const MAX_KEY: u64 = 1 << 20;
/// The largest certificate file, bundle or PKCS#12 archive (a CA bundle is ~200 kB).
pub(crate) const MAX_BUNDLE: u64 = 16 << 20;
/// The largest CRL file (the largest public CRLs are a few tens of MB).
pub(crate) const MAX_CRL: u64 = 64 << 20;
/// The largest passphrase, ticket-key or OCSP response file.
pub(crate) const MAX_SMALL: u64 = 1 << 20;

/// Reads `path` whole, if it is a regular file (or a symlink to one) of at most `limit`
/// bytes. The buffer is zeroized when dropped, and sized once so that no copy of a secret is
/// left behind by a reallocation.
///
/// # Errors
/// The file is missing or unreadable, is not a regular file, or is over `limit`; the error
/// names the file and says which.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>> {
    let cannot = |e| Error::io("cannot read file", e).with_path(path);
    // `metadata` follows symlinks and, unlike `open`, does not block on a FIFO.
    let meta = std::fs::metadata(path).map_err(cannot)?;
    check(path, &meta, limit)?;
    let file = File::open(path).map_err(cannot)?;
    // The path may have changed between the two looks: check what was opened.
    let meta = file.metadata().map_err(cannot)?;
    check(path, &meta, limit)?;
    let mut data = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(cannot)?;
    if data.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(data)
}

fn check(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<()> {
    if !meta.is_file() {
        return Err(Error::config(format!(
            "not a regular file ({}): certificates, keys and the files beside them are read \
             only from regular files",
            kind(meta)
        ))
        .with_path(path));
    }
    if meta.len() > limit {
        return Err(too_large(path, limit));
    }
    Ok(())
}

fn too_large(path: &Path, limit: u64) -> Error {
    Error::config(format!(
        "the file is larger than {}, more than any file of this kind holds",
        size(limit)
    ))
    .with_path(path)
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(&read_bounded(&path, 10).unwrap()[..], b"0123456789");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        std::fs::write(&path, vec![b'x'; 2048]).unwrap();
        let err = read_bounded(&path, 1024).unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()));
        assert!(err.to_string().contains("larger than 1 KiB"), "{err}");
    }

    #[test]
    #[cfg(unix)]
    fn a_device_is_refused_without_reading_it() {
        let err = read_bounded(Path::new("/dev/zero"), MAX_BUNDLE).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
    }

    #[test]
    #[cfg(unix)]
    fn a_named_pipe_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening a FIFO for reading blocks until a writer comes: refused before that.
        let err = read_bounded(&path, MAX_BUNDLE).unwrap_err();
        assert!(err.to_string().contains("a named pipe"), "{err}");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(dir.path(), MAX_KEY).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }
}

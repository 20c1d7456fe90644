//! The storage directory:
//!
//! ```text
//! DIR/                          0700
//!   <CA>/                       one per directory URL, e.g. acme-v02.api.letsencrypt.org-directory
//!     account.json              0600: account URL and key
//!     <first domain>/
//!       cert.pem                the chain, leaf first
//!       key.pem                 0600
//!       lock                    present while a process orders (pid, host, start time)
//!     challenges/               answers being validated, for every process of a fleet
//! ```
//!
//! Files are written under a temporary name and renamed, key before certificate; a reader that
//! finds a key that does not match the certificate (a writer between its two renames) tries
//! again later.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{AcmeConfig, LOCK_STALE_AFTER};
use crate::error::{Error, Result};
use crate::Identity;

const ACCOUNT: &str = "account.json";
const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";
const LOCK: &str = "lock";

/// One CA's part of the storage directory, and one certificate in it.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
    ca_dir: PathBuf,
    cert_dir: PathBuf,
}

impl Store {
    pub(crate) fn new(config: &AcmeConfig) -> Self {
        let root = config.storage.clone();
        let ca_dir = root.join(ca_dir_name(&config.directory));
        let cert_dir = ca_dir.join(&config.domains[0]);
        Self {
            root,
            ca_dir,
            cert_dir,
        }
    }

    /// Where the ordering process shares its challenge answers with the rest of a fleet.
    pub(crate) fn challenge_dir(&self) -> PathBuf {
        self.ca_dir.join("challenges")
    }

    pub(crate) fn cert_path(&self) -> PathBuf {
        self.cert_dir.join(CERT)
    }

    pub(crate) fn key_path(&self) -> PathBuf {
        self.cert_dir.join(KEY)
    }

    /// Creates the directories, 0700.
    pub(crate) fn create_dirs(&self) -> Result<()> {
        for dir in [&self.root, &self.ca_dir, &self.cert_dir] {
            private_dir(dir).map_err(|e| {
                Error::io(
                    format!("ACME storage {}: cannot create it", dir.display()),
                    e,
                )
            })?;
        }
        Ok(())
    }

    pub(crate) fn load_account(&self) -> Result<Option<instant_acme::AccountCredentials>> {
        let path = self.ca_dir.join(ACCOUNT);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("{}: cannot read it", path.display()), e)),
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            Error::config(format!(
                "{}: not an ACME account file ({e}); move it away to create a new account",
                path.display()
            ))
        })
    }

    pub(crate) fn save_account(
        &self,
        credentials: &instant_acme::AccountCredentials,
    ) -> Result<()> {
        let path = self.ca_dir.join(ACCOUNT);
        let text = serde_json::to_vec_pretty(credentials)
            .map_err(|e| Error::config(format!("cannot encode the ACME account: {e}")))?;
        write_private(&path, &text, true)
            .map_err(|e| Error::io(format!("{}: cannot write it", path.display()), e))
    }

    /// Moves `account.json` aside (to `account.json.unknown`) after the CA said it does not
    /// know the account, so that the next attempt creates one.
    pub(crate) fn forget_account(&self) {
        let path = self.ca_dir.join(ACCOUNT);
        let aside = self.ca_dir.join(format!("{ACCOUNT}.unknown"));
        if fs::rename(&path, &aside).is_ok() {
            tracing::warn!(
                moved_to = %aside.display(),
                "ACME: the CA does not know the stored account; a new one will be created"
            );
        }
    }

    /// The stored certificate and key, when both are there and match.
    pub(crate) fn load_certificate(&self) -> Result<Option<Identity>> {
        let (cert, key) = (self.cert_path(), self.key_path());
        let chain = match fs::read(&cert) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("{}: cannot read it", cert.display()), e)),
        };
        let key_pem = match fs::read(&key) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("{}: cannot read it", key.display()), e)),
        };
        Identity::from_pem(&chain, &key_pem)
            .map(Some)
            .map_err(|e| Error::config(format!("{}: {e}", cert.display())))
    }

    pub(crate) fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<()> {
        self.create_dirs()?;
        let (cert, key) = (self.cert_path(), self.key_path());
        write_private(&key, key_pem.as_bytes(), true)
            .map_err(|e| Error::io(format!("{}: cannot write it", key.display()), e))?;
        write_private(&cert, chain_pem.as_bytes(), false)
            .map_err(|e| Error::io(format!("{}: cannot write it", cert.display()), e))
    }

    /// Takes the order lock: `None` while another live process holds it. A lock older than
    /// [`LOCK_STALE_AFTER`] is taken over.
    pub(crate) fn try_lock(&self) -> Result<Option<OrderLock>> {
        self.create_dirs()?;
        let path = self.cert_dir.join(LOCK);
        let what = |e| Error::io(format!("{}: cannot take the lock", path.display()), e);
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let host = std::env::var("HOSTNAME").unwrap_or_default();
                    let _ = writeln!(
                        file,
                        "pid {} host {host} since {}",
                        std::process::id(),
                        httpdate_now()
                    );
                    return Ok(Some(OrderLock { path, file }));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !self.break_stale_lock(&path).map_err(what)? {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(what(e)),
            }
        }
        Ok(None)
    }

    /// Moves a stale lock aside; true when the lock is gone. Renaming first means that of two
    /// processes breaking the same stale lock only one succeeds; a lock found fresh once moved
    /// (its holder refreshed it in between) is put back.
    fn break_stale_lock(&self, path: &Path) -> io::Result<bool> {
        let age = |p: &Path| -> io::Result<Option<Duration>> {
            match fs::metadata(p) {
                Ok(meta) => Ok(Some(
                    SystemTime::now()
                        .duration_since(meta.modified()?)
                        .unwrap_or(Duration::ZERO),
                )),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        };
        match age(path)? {
            None => return Ok(true),
            Some(age) if age < LOCK_STALE_AFTER => return Ok(false),
            Some(_) => {}
        }
        let aside = path.with_extension(format!("stale.{}", std::process::id()));
        match fs::rename(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        }
        if age(&aside)?.is_some_and(|age| age < LOCK_STALE_AFTER) {
            // Not ours to break after all.
            let _ = fs::hard_link(&aside, path);
            let _ = fs::remove_file(&aside);
            return Ok(false);
        }
        tracing::warn!(
            lock = %path.display(),
            "ACME: taking over a lock left by a process that stopped while ordering"
        );
        fs::remove_file(&aside)?;
        Ok(true)
    }
}

/// Held while ordering; removed on drop. [`refresh`](Self::refresh) keeps it from looking stale.
#[derive(Debug)]
pub(crate) struct OrderLock {
    path: PathBuf,
    file: fs::File,
}

impl OrderLock {
    pub(crate) fn refresh(&self) {
        let _ = self.file.set_modified(SystemTime::now());
    }
}

impl Drop for OrderLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A certificate in the storage directory, as `portcullis cert acme status` lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredCertificate {
    /// The CA's part of the storage directory (named after its directory URL).
    pub ca: String,
    /// The certificate's file.
    pub path: PathBuf,
    /// The DNS names it covers.
    pub names: Vec<String>,
    /// Its validity period.
    pub not_before: SystemTime,
    /// Its validity period.
    pub not_after: SystemTime,
    /// When renewal starts at the default two thirds of the lifetime.
    pub next_renewal: SystemTime,
}

/// Every certificate under the storage directory `dir`, sorted by CA and name.
///
/// # Errors
/// `dir` cannot be read (a missing directory is an empty list).
pub fn stored_certificates(dir: impl AsRef<Path>) -> Result<Vec<StoredCertificate>> {
    let dir = dir.as_ref();
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(Error::io(format!("{}: cannot read it", dir.display()), e)),
    };
    for ca in entries.flatten() {
        let Ok(certs) = fs::read_dir(ca.path()) else {
            continue;
        };
        for cert in certs.flatten() {
            let path = cert.path().join(CERT);
            let Ok(pem) = fs::read(&path) else {
                continue;
            };
            let Some(info) = describe(&pem) else {
                continue;
            };
            let (names, not_before, not_after) = info;
            let life = not_after
                .duration_since(not_before)
                .unwrap_or(Duration::ZERO);
            found.push(StoredCertificate {
                ca: ca.file_name().to_string_lossy().into_owned(),
                path,
                names,
                not_before,
                not_after,
                next_renewal: not_before + life.mul_f64(2.0 / 3.0),
            });
        }
    }
    found.sort_by(|a, b| (&a.ca, &a.path).cmp(&(&b.ca, &b.path)));
    Ok(found)
}

/// The DNS names and validity of the first certificate in `pem`.
fn describe(pem: &[u8]) -> Option<(Vec<String>, SystemTime, SystemTime)> {
    use x509_parser::extensions::GeneralName;
    let chain = crate::tls::keyfile::certificates(pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(chain.first()?.as_ref()).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let at = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
    };
    Some((
        names,
        at(cert.validity().not_before),
        at(cert.validity().not_after),
    ))
}

/// `https://acme-v02.api.letsencrypt.org/directory` → `acme-v02.api.letsencrypt.org-directory`.
fn ca_dir_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut name: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(e),
        }
        let meta = fs::metadata(dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)
}

/// Writes `path` atomically: a temporary file (0600 when `secret`, else 0644), then a rename.
fn write_private(path: &Path, data: &[u8], secret: bool) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)
}

fn httpdate_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_directory_names_are_file_names() {
        assert_eq!(
            ca_dir_name(super::super::LETS_ENCRYPT),
            "acme-v02.api.letsencrypt.org-directory"
        );
        assert_eq!(
            ca_dir_name("https://127.0.0.1:14000/dir"),
            "127.0.0.1-14000-dir"
        );
    }

    #[test]
    fn a_lock_is_exclusive_until_dropped_and_a_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let config = AcmeConfig::new(["example.com"]).storage(dir.path());
        let store = Store::new(&config);
        let first = store.try_lock().unwrap().expect("free lock");
        assert!(store.try_lock().unwrap().is_none(), "held twice");
        drop(first);
        let second = store.try_lock().unwrap().expect("released lock");
        // A holder that died: its lock file is old.
        let old = SystemTime::now() - LOCK_STALE_AFTER - Duration::from_secs(5);
        second.file.set_modified(old).unwrap();
        std::mem::forget(second);
        let third = store.try_lock().unwrap().expect("stale lock taken over");
        third.refresh();
        assert!(store.try_lock().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn keys_and_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme");
        let config = AcmeConfig::new(["example.com"]).storage(&root);
        let store = Store::new(&config);
        let leaf = {
            let mut o = crate::cert::LeafOptions::new(["example.com"]);
            o.self_signed = true;
            o.generate(None).unwrap()
        };
        store
            .save_certificate(leaf.chain_pem(), leaf.key_pem())
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&store.key_path()), 0o600);
        assert_eq!(mode(&store.cert_path()), 0o644);
        let loaded = store.load_certificate().unwrap().expect("stored");
        assert_eq!(loaded.chain(), leaf.chain());
        let listed = stored_certificates(&root).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].names, ["example.com"]);
    }
}

//! NSS key log lines (`SSLKEYLOGFILE` format) for Wireshark: to a file or a callback.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Where key log lines go. Off unless configured; a warning is logged when on, since anyone
/// holding the lines can decrypt the traffic.
#[derive(Clone)]
pub struct KeyLog {
    sink: Sink,
}

#[derive(Clone)]
enum Sink {
    File(Arc<(PathBuf, Mutex<File>)>),
    Callback(Arc<dyn Fn(&str) + Send + Sync>),
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sink {
            Sink::File(file) => f.debug_tuple("KeyLog::File").field(&file.0).finish(),
            Sink::Callback(_) => f.write_str("KeyLog::Callback"),
        }
    }
}

impl KeyLog {
    /// Appends lines to `path` (created if absent), like `SSLKEYLOGFILE`.
    ///
    /// # Errors
    /// The file cannot be opened; the error names it.
    pub fn file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("cannot open the key log file", e).with_path(path))?;
        Ok(Self {
            sink: Sink::File(Arc::new((path.to_path_buf(), Mutex::new(file)))),
        })
    }

    /// The file named by `SSLKEYLOGFILE`, if that is set.
    ///
    /// # Errors
    /// As [`KeyLog::file`].
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var_os("SSLKEYLOGFILE") {
            Some(path) if !path.is_empty() => Self::file(PathBuf::from(path)).map(Some),
            _ => Ok(None),
        }
    }

    /// Calls `f` with each line (without the newline), as Node's `'keylog'` event.
    pub fn callback(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            sink: Sink::Callback(Arc::new(f)),
        }
    }

    pub(crate) fn into_rustls(self) -> Arc<dyn rustls::KeyLog> {
        match &self.sink {
            Sink::File(file) => tracing::warn!(
                path = %file.0.display(),
                "TLS key logging is on: the file can decrypt this server's traffic"
            ),
            Sink::Callback(_) => tracing::warn!("TLS key logging is on (callback)"),
        }
        Arc::new(self)
    }
}

impl rustls::KeyLog for KeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut line =
            String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()));
        line.push_str(label);
        line.push(' ');
        hex(&mut line, client_random);
        line.push(' ');
        hex(&mut line, secret);
        match &self.sink {
            Sink::File(file) => {
                let mut f = file.1.lock().unwrap_or_else(|e| e.into_inner());
                line.push('\n');
                if let Err(e) = f.write_all(line.as_bytes()) {
                    tracing::warn!(error = %e, "cannot write the key log");
                }
            }
            Sink::Callback(cb) => cb(&line),
        }
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    use std::fmt::Write as _;
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

//! The crate's one error type.

use std::fmt;
use std::path::{Path, PathBuf};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error from portcullis: configuration, I/O, TLS or a timeout.
///
/// Query it with the `is_*` methods; [`Error::code`] gives Node's error code where Node has one.
///
/// One pointer wide (the details live in a box), so that `Result<T, Error>` costs callers on the
/// success path no more than `T` and a tag.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    code: Option<&'static str>,
    message: String,
    path: Option<PathBuf>,
    source: Option<BoxError>,
    /// The chain a peer presented, when its verification failed.
    chain: Option<std::sync::Arc<[rustls_pki_types::CertificateDer<'static>]>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Config,
    Io,
    Tls,
    Timeout,
    Connect,
    Aborted,
    Http,
    Body,
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }

    pub(crate) fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        let kind = if source.kind() == std::io::ErrorKind::TimedOut {
            Kind::Timeout
        } else {
            Kind::Io
        };
        Self::new(kind, message).with_source(source)
    }

    pub(crate) fn tls(message: impl Into<String>, source: rustls::Error) -> Self {
        Self::new(Kind::Tls, message).with_source(source)
    }

    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                code: None,
                message: message.into(),
                path: None,
                source: None,
                chain: None,
            }),
        }
    }

    /// Sets Node's error code (`ECONNREFUSED`, `CERT_HAS_EXPIRED`, …).
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.inner.code = Some(code);
        self
    }

    /// A copy without the source chain (sources are not `Clone`).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: self.inner.kind,
                code: self.inner.code,
                message: self.inner.message.clone(),
                path: self.inner.path.clone(),
                source: None,
                chain: self.inner.chain.clone(),
            }),
        }
    }

    /// Keeps the chain a peer presented with a verification failure.
    pub(crate) fn with_chain(mut self, chain: &[rustls_pki_types::CertificateDer<'_>]) -> Self {
        self.inner.chain = Some(chain.iter().map(|c| c.clone().into_owned()).collect());
        self
    }

    /// The certificates the peer presented (leaf first) when this error is a failed
    /// verification of them; empty otherwise. What `openssl s_client -showcerts` would show:
    /// enough to tell which CA the peer's chain ends in.
    pub fn peer_certificates(&self) -> &[rustls_pki_types::CertificateDer<'static>] {
        self.inner.chain.as_deref().unwrap_or_default()
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Names the file the error is about; `Display` then starts with it.
    pub(crate) fn with_path(mut self, path: &Path) -> Self {
        self.inner.path = Some(path.to_path_buf());
        self
    }

    /// The file this error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// True for a bad option or a bad certificate/key file.
    pub fn is_config(&self) -> bool {
        self.inner.kind == Kind::Config
    }

    /// True for a socket error (bind, accept, read, write).
    pub fn is_io(&self) -> bool {
        self.inner.kind == Kind::Io
    }

    /// True for a TLS configuration or protocol error.
    pub fn is_tls(&self) -> bool {
        self.inner.kind == Kind::Tls
    }

    /// True when a timeout ended the operation (`ETIMEDOUT`, `ERR_TLS_HANDSHAKE_TIMEOUT`).
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Timeout
    }

    /// True when no connection could be made: refused, reset, unresolvable, proxy refused.
    pub fn is_connect(&self) -> bool {
        self.inner.kind == Kind::Connect
    }

    /// True when the request was cancelled through its `AbortSignal` (the client's).
    pub fn is_aborted(&self) -> bool {
        self.inner.kind == Kind::Aborted
    }

    /// True for an HTTP protocol error (malformed response, connection closed mid-message).
    pub fn is_http(&self) -> bool {
        self.inner.kind == Kind::Http
    }

    /// True when a response body was larger than the limit asked for, or could not be decoded.
    pub fn is_body(&self) -> bool {
        self.inner.kind == Kind::Body
    }

    /// Node's error code for this error, where Node has one: `ECONNREFUSED`, `ECONNRESET`,
    /// `ETIMEDOUT`, `ENOTFOUND`, `ERR_TLS_HANDSHAKE_TIMEOUT`, `CERT_HAS_EXPIRED`,
    /// `DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_CERT_ALTNAME_INVALID`, `ABORT_ERR`, …
    pub fn code(&self) -> Option<&'static str> {
        self.inner.code.or(match self.inner.kind {
            Kind::Timeout => Some("ETIMEDOUT"),
            Kind::Aborted => Some("ABORT_ERR"),
            _ => None,
        })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(code) = &self.inner.code {
            d.field("code", code);
        }
        if let Some(path) = &self.inner.path {
            d.field("path", path);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.inner.path {
            write!(f, "{}: ", path.display())?;
        }
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_ref().map(|e| &**e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_one_pointer_and_a_result_of_unit_too() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Result<()>>(),
            std::mem::size_of::<usize>()
        );
    }
}

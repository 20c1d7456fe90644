//! Automatic certificates from an ACME CA (RFC 8555), Let's Encrypt by default.
//!
//! Give an [`AcmeConfig`] to [`ServerBuilder::acme`](crate::ServerBuilder::acme) and the
//! server gets its own certificate and renews it:
//!
//! - the challenges are answered by the server itself: **TLS-ALPN-01** (RFC 8737) on every
//!   HTTPS listener, to clients that offer only the ALPN protocol `acme-tls/1` (normal clients
//!   never see the challenge certificate), and **HTTP-01** on every plain-HTTP listener
//!   (`/.well-known/acme-challenge/TOKEN`, answered before any redirect or service);
//! - the account key and each certificate and key live under the storage directory (directory
//!   0700, keys 0600) and are reused across restarts; processes sharing the directory take a
//!   lock file before ordering (a lock left by a dead process is taken over after
//!   [`LOCK_STALE_AFTER`]) and pick up what another process stored;
//! - renewal starts at two thirds of the certificate's lifetime, or inside the window the CA
//!   suggests through ACME Renewal Information (RFC 9773) where it offers it, and the new
//!   certificate is swapped in live: established connections keep theirs, new ones get the new
//!   one (the session cache and ticket keys carry over, as with
//!   [`ServerHandle::set_tls_config`](crate::ServerHandle::set_tls_config));
//! - a failure is never an outage: the current certificate stays while the CA is down or
//!   refuses, with retries under exponential backoff and jitter (and never before the
//!   `Retry-After` of a rate limit); with no certificate yet, the server starts, answers the
//!   challenges and refuses other handshakes with an alert (or serves a self-signed placeholder,
//!   [`AcmeConfig::placeholder`]) until the first issuance;
//! - every step is logged at info (order, challenge, validation, storage, next renewal), every
//!   failure at warn with the CA's problem document.
//!
//! ```no_run
//! # async fn run() -> portcullis::Result<()> {
//! use portcullis::acme::AcmeConfig;
//!
//! let acme = AcmeConfig::new(["example.com", "www.example.com"])
//!     .contact("admin@example.com")
//!     .accept_terms(true);
//! let server = portcullis::Server::builder().acme(acme).build()?;
//! let (https, http) = (server.clone(), server.clone());
//! let svc = tower::service_fn(|_req| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello\n")))
//! });
//! let (a, b) = tokio::join!(https.serve("[::]:443", svc.clone()), http.serve_redirect("[::]:80"));
//! a?;
//! b?;
//! # Ok(()) }
//! ```

mod challenge;
mod http;
mod manager;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;

pub(crate) use challenge::{offers_acme_alpn, Challenges};
pub(crate) use manager::AcmeState;
pub use store::{stored_certificates, StoredCertificate};

/// Let's Encrypt's production directory: the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory: untrusted certificates, generous rate limits.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// A lock file older than this (its holder refreshes it every minute) belongs to a process
/// that died while ordering, and is taken over.
pub const LOCK_STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// A way of proving control of a name to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeType {
    /// RFC 8737: the CA connects to port 443 with ALPN `acme-tls/1`.
    TlsAlpn01,
    /// RFC 8555 §8.3: the CA fetches `http://NAME/.well-known/acme-challenge/TOKEN` on port 80.
    Http01,
}

impl ChallengeType {
    /// The name the CA uses: `tls-alpn-01` or `http-01`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::Http01 => "http-01",
        }
    }

    /// The port the CA connects to on the public internet.
    fn public_port(self) -> u16 {
        match self {
            Self::TlsAlpn01 => 443,
            Self::Http01 => 80,
        }
    }

    fn to_acme(self) -> instant_acme::ChallengeType {
        match self {
            Self::TlsAlpn01 => instant_acme::ChallengeType::TlsAlpn01,
            Self::Http01 => instant_acme::ChallengeType::Http01,
        }
    }
}

impl std::str::FromStr for ChallengeType {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls-alpn-01" => Ok(Self::TlsAlpn01),
            "http-01" => Ok(Self::Http01),
            other => Err(crate::Error::config(format!(
                "unknown ACME challenge type {other:?}: use tls-alpn-01 or http-01"
            ))),
        }
    }
}

impl fmt::Display for ChallengeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// External Account Binding (RFC 8555 §7.3.4): the key ID and HMAC key a CA such as ZeroSSL
/// or Google Trust Services hands out to tie the ACME account to an account with them.
#[derive(Clone)]
pub struct ExternalAccount {
    key_id: String,
    hmac_key: Vec<u8>,
}

impl ExternalAccount {
    /// The key ID and the HMAC key as the CA shows it (base64url, padding optional).
    ///
    /// # Errors
    /// The HMAC key is not base64url.
    pub fn new(key_id: impl Into<String>, hmac_key_base64url: &str) -> crate::Result<Self> {
        use base64::Engine;
        let text = hmac_key_base64url.trim().trim_end_matches('=');
        let hmac_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|e| crate::Error::config(format!("the EAB HMAC key is not base64url: {e}")))?;
        Ok(Self {
            key_id: key_id.into(),
            hmac_key,
        })
    }
}

impl fmt::Debug for ExternalAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalAccount")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What to order and from whom; give it to [`ServerBuilder::acme`](crate::ServerBuilder::acme).
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    pub(crate) domains: Vec<String>,
    pub(crate) directory: String,
    pub(crate) contact: Vec<String>,
    pub(crate) terms_accepted: bool,
    pub(crate) storage: PathBuf,
    pub(crate) challenges: Vec<ChallengeType>,
    pub(crate) renew_at: f64,
    pub(crate) external_account: Option<ExternalAccount>,
    pub(crate) ca_roots: Vec<CertificateDer<'static>>,
    pub(crate) placeholder: bool,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) renew_after: Option<Duration>,
}

impl AcmeConfig {
    /// One certificate for `domains` (the first names it in storage and logs). Defaults: Let's
    /// Encrypt production, no contact, terms not accepted, storage in
    /// [`default_storage`], TLS-ALPN-01 then HTTP-01, renewal at two thirds of the lifetime,
    /// retries from 1 minute doubling up to 6 hours.
    pub fn new<I, S>(domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            domains: domains
                .into_iter()
                .map(|d| d.into().trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            directory: LETS_ENCRYPT.to_owned(),
            contact: Vec::new(),
            terms_accepted: false,
            storage: default_storage(),
            challenges: vec![ChallengeType::TlsAlpn01, ChallengeType::Http01],
            renew_at: 2.0 / 3.0,
            external_account: None,
            ca_roots: Vec::new(),
            placeholder: false,
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(6 * 60 * 60),
            renew_after: None,
        }
    }

    /// The CA's directory URL ([`LETS_ENCRYPT`], [`LETS_ENCRYPT_STAGING`], or any RFC 8555 CA).
    pub fn directory(mut self, url: impl Into<String>) -> Self {
        self.directory = url.into();
        self
    }

    /// A contact address for the account (`mailto:` is added when missing). Repeatable.
    pub fn contact(mut self, email: impl Into<String>) -> Self {
        let email = email.into();
        self.contact.push(if email.contains(':') {
            email
        } else {
            format!("mailto:{email}")
        });
        self
    }

    /// Agree to the CA's terms of service (needed to create an account with most CAs).
    pub fn accept_terms(mut self, accepted: bool) -> Self {
        self.terms_accepted = accepted;
        self
    }

    /// Where the account key, certificates and keys live.
    pub fn storage(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = dir.into();
        self
    }

    /// The challenge types to offer, in order of preference (default: TLS-ALPN-01, HTTP-01).
    /// HTTP-01 needs a plain-HTTP listener ([`Server::serve_http`](crate::Server::serve_http)
    /// or [`serve_redirect`](crate::Server::serve_redirect)) reachable on port 80.
    pub fn challenges(mut self, types: impl IntoIterator<Item = ChallengeType>) -> Self {
        self.challenges = types.into_iter().collect();
        self
    }

    /// Renew once this fraction of the lifetime has passed (default 2/3; 0 < fraction < 1).
    /// The CA's ACME Renewal Information, where offered, takes precedence.
    pub fn renew_at(mut self, fraction: f64) -> Self {
        self.renew_at = fraction;
        self
    }

    /// External Account Binding credentials, for CAs that require them.
    pub fn external_account(mut self, eab: ExternalAccount) -> Self {
        self.external_account = Some(eab);
        self
    }

    /// Trust these roots (instead of the public ones) for the HTTPS connection to the CA's
    /// API: for a private or test CA such as Pebble.
    pub fn ca_roots(mut self, roots: impl IntoIterator<Item = CertificateDer<'static>>) -> Self {
        self.ca_roots = roots.into_iter().collect();
        self
    }

    /// Until the first certificate is issued, serve a self-signed placeholder for the domains
    /// instead of refusing handshakes with an alert. Off by default.
    pub fn placeholder(mut self, enabled: bool) -> Self {
        self.placeholder = enabled;
        self
    }

    /// The retry backoff after a failed order or renewal: from `min`, doubling (with jitter)
    /// up to `max`. Default 1 minute to 6 hours.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = min;
        self.retry_max = max.max(min);
        self
    }

    /// Testing: renew once the certificate is this old, whatever its lifetime.
    #[doc(hidden)]
    pub fn renew_after(mut self, age: Duration) -> Self {
        self.renew_after = Some(age);
        self
    }

    /// The domains this configuration orders a certificate for.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The storage directory.
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    pub(crate) fn check(&self) -> crate::Result<()> {
        if self.domains.is_empty() {
            return Err(crate::Error::config("ACME needs at least one domain"));
        }
        for d in &self.domains {
            if d.is_empty()
                || d.parse::<std::net::IpAddr>().is_ok()
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*'))
            {
                return Err(crate::Error::config(format!(
                    "ACME domain {d:?}: give a DNS name such as example.com (IP addresses and \
                     non-ASCII names are not supported; write IDNs in their xn-- form)"
                )));
            }
            if d.starts_with("*.") {
                return Err(crate::Error::config(format!(
                    "ACME domain {d}: wildcards need the dns-01 challenge, which portcullis \
                     does not answer; list the names instead"
                )));
            }
        }
        if self.challenges.is_empty() {
            return Err(crate::Error::config(
                "ACME needs at least one challenge type (tls-alpn-01, http-01)",
            ));
        }
        if !(self.renew_at > 0.0 && self.renew_at < 1.0) {
            return Err(crate::Error::config(
                "ACME renew_at must be a fraction between 0 and 1",
            ));
        }
        if !(self.directory.starts_with("https://") || self.directory.starts_with("http://")) {
            return Err(crate::Error::config(format!(
                "ACME directory {:?} is not an http(s) URL",
                self.directory
            )));
        }
        Ok(())
    }

    /// When a certificate valid from `not_before` to `not_after` is due for renewal, unless
    /// the CA's renewal information says otherwise.
    pub(crate) fn due(&self, not_before: SystemTime, not_after: SystemTime) -> SystemTime {
        if let Some(age) = self.renew_after {
            return not_before + age;
        }
        let life = not_after
            .duration_since(not_before)
            .unwrap_or(Duration::ZERO);
        not_before + life.mul_f64(self.renew_at)
    }
}

/// Where ACME state lives by default: `acme/` under the same directory as the local CA
/// ([`crate::cert::default_dir`]).
pub fn default_storage() -> PathBuf {
    crate::cert::default_dir().join("acme")
}

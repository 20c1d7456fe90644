//! The server-identity check of the client: Node's `tls.checkServerIdentity` rules, RFC 6125's,
//! and certificate/public-key pinning (`PinSet`) for `check_server_identity` callbacks.

use crate::error::{Error, Kind, Result};
use crate::tls::PeerCertificate;

impl Error {
    /// An error for a [`ClientTlsOptions::check_server_identity`](crate::tls::ClientTlsOptions::check_server_identity) callback to return (Node's
    /// `return new Error(msg)`): it fails the handshake, and the request fails with it, as a
    /// TLS error whose [`code`](Error::code) is `code` (for example `"ERR_TLS_PIN_MISMATCH"`).
    pub fn server_identity(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Tls, message).with_code(code)
    }
}

/// Node's default `tls.checkServerIdentity(host, cert)`, rule for rule (Node v20's `tls.js`):
///
/// - an IP literal must equal one of the leaf's `IP Address` SANs (`::1` equals
///   `0:0:0:0:0:0:0:1`); the CN and DNS SANs never match an IP;
/// - a name is checked against the `DNS` SANs when there are any, else against the subject CN
///   (IP or URI SANs do not stop that fallback);
/// - matching ignores ASCII case and one trailing dot; a `*` stands for part or all of the
///   first label only (`*.a.com`, `b*.a.com`), never in a name of two labels or fewer, and
///   never in an `xn--` label.
///
/// # Errors
/// `ERR_TLS_CERT_ALTNAME_INVALID`, with Node's message: `Hostname/IP does not match
/// certificate's altnames: Host: <host>. is not in the cert's altnames: <SANs>` (or `is not
/// cert's CN: <cn>`, `IP: <ip> is not in the cert's list: <ips>`, `Cert does not contain a DNS
/// name`).
pub fn check_server_identity(host: &str, chain: &[PeerCertificate]) -> Result<()> {
    let Some(leaf) = chain.first() else {
        return Err(altname_invalid("Cert does not contain a DNS name"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    let altnames = leaf.subjectaltname().unwrap_or("");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in split_altnames(altnames) {
        if let Some(d) = name.strip_prefix("DNS:") {
            dns.push(d.to_owned());
        } else if let Some(ip) = name.strip_prefix("IP Address:") {
            ips.push(ip.parse::<std::net::IpAddr>().ok());
        }
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        if ips.contains(&Some(ip)) {
            return Ok(());
        }
        let list: Vec<String> = ips
            .iter()
            .map(|ip| ip.map(|ip| ip.to_string()).unwrap_or_default())
            .collect();
        return Err(altname_invalid(&format!(
            "IP: {host} is not in the cert's list: {}",
            list.join(", ")
        )));
    }
    let cns: Vec<&str> = leaf.subject().get_all("CN").collect();
    if !dns.is_empty() {
        if dns.iter().any(|pattern| host_matches(host, pattern)) {
            return Ok(());
        }
        return Err(altname_invalid(&format!(
            "Host: {host}. is not in the cert's altnames: {altnames}"
        )));
    }
    if !cns.is_empty() {
        if cns.iter().any(|pattern| host_matches(host, pattern)) {
            return Ok(());
        }
        return Err(altname_invalid(&format!(
            "Host: {host}. is not cert's CN: {}",
            cns.join(",")
        )));
    }
    Err(altname_invalid("Cert does not contain a DNS name"))
}

/// The host-name check of RFC 6125 (and of browsers): an IP literal must be one of the leaf's
/// `IP Address` SANs; a name must match one of its `DNS` SANs, ignoring ASCII case and one
/// trailing dot, where `*` may only be the whole first label and stands for exactly one label
/// (`*.a.com` matches `b.a.com`, not `a.com` nor `c.b.a.com`; `b*.a.com` matches nothing). The
/// subject CN is never consulted.
///
/// # Errors
/// `ERR_TLS_CERT_ALTNAME_INVALID`; for a certificate that names the host only in its CN, a
/// message that says so and how to re-issue it.
pub fn check_server_identity_rfc6125(host: &str, chain: &[PeerCertificate]) -> Result<()> {
    let Some(leaf) = chain.first() else {
        return Err(altname_invalid("Cert does not contain a DNS name"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        // IP literals follow the same rule either way.
        return check_server_identity(host, chain);
    }
    let host = bare.strip_suffix('.').unwrap_or(bare);
    let altnames = leaf.subjectaltname().unwrap_or("");
    let dns: Vec<String> = split_altnames(altnames)
        .into_iter()
        .filter_map(|n| n.strip_prefix("DNS:").map(str::to_owned))
        .collect();
    if dns.is_empty() {
        let cns: Vec<&str> = leaf.subject().get_all("CN").collect();
        let cn_names_host = cns.iter().any(|cn| host_matches(host, cn));
        let why = if cn_names_host {
            format!(
                "Host: {host}. is named only in the certificate's subject CN, which RFC 6125 \
                 checks ignore: re-issue it with a subjectAltName (portcullis cert new {host}, or \
                 openssl req ... -addext subjectAltName=DNS:{host})"
            )
        } else {
            "Cert does not contain a DNS name".to_owned()
        };
        return Err(altname_invalid(&why));
    }
    let strict = |pattern: &String| {
        let first = pattern.split('.').next().unwrap_or_default();
        (!first.contains('*') || first == "*") && host_matches(host, pattern)
    };
    if dns.iter().any(strict) {
        return Ok(());
    }
    Err(altname_invalid(&format!(
        "Host: {host}. is not in the cert's altnames: {altnames}"
    )))
}

fn altname_invalid(reason: &str) -> Error {
    Error::new(
        Kind::Tls,
        format!("Hostname/IP does not match certificate's altnames: {reason}"),
    )
    .with_code("ERR_TLS_CERT_ALTNAME_INVALID")
}

/// Node's `check(hostParts, pattern, wildcards = true)`.
fn host_matches(host: &str, pattern: &str) -> bool {
    let split = |s: &str| -> Vec<String> {
        s.strip_suffix('.')
            .unwrap_or(s)
            .split('.')
            .map(str::to_ascii_lowercase)
            .collect()
    };
    if pattern.is_empty() {
        return false;
    }
    let host = split(host);
    let pattern = split(pattern);
    if host.len() != pattern.len()
        || pattern.iter().any(String::is_empty)
        || pattern
            .iter()
            .any(|label| label.chars().any(|c| !('\u{21}'..='\u{7f}').contains(&c)))
    {
        return false;
    }
    if host[1..] != pattern[1..] {
        return false;
    }
    let (first, wanted) = (&host[0], &pattern[0]);
    let parts: Vec<&str> = wanted.splitn(3, '*').collect();
    if parts.len() == 1 || wanted.contains("xn--") {
        return first == wanted;
    }
    if parts.len() > 2 || pattern.len() <= 2 {
        return false;
    }
    let (prefix, suffix) = (parts[0], parts[1]);
    prefix.len() + suffix.len() <= first.len()
        && first.starts_with(prefix)
        && first.ends_with(suffix)
}

/// Splits Node's `subjectaltname` string on `", "`, keeping JSON-quoted values (which may
/// hold `", "`) whole and unquoting them, as Node's `splitEscapedAltNames` does.
pub(crate) fn split_altnames(altnames: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = altnames.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // A JSON string: read to the closing quote, decoding escapes.
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                if let Some(c) =
                                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                                {
                                    current.push(c);
                                }
                            }
                            Some('n') => current.push('\n'),
                            Some('t') => current.push('\t'),
                            Some('r') => current.push('\r'),
                            Some('b') => current.push('\u{8}'),
                            Some('f') => current.push('\u{c}'),
                            Some(other) => current.push(other),
                            None => {}
                        },
                        other => current.push(other),
                    }
                }
            }
            ',' if chars.peek() == Some(&' ') => {
                chars.next();
                out.push(std::mem::take(&mut current));
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A set of `pin-sha256` values (base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as
/// HPKP and Node's pinning example compute them). Use [`PinSet::check`] as a
/// `check_server_identity`: the host check runs first, then some certificate in the chain
/// must carry a pinned key.
#[derive(Debug, Clone)]
pub struct PinSet {
    pins: Vec<String>,
}

impl PinSet {
    /// Pins given as base64, with or without the `sha256//` prefix curl uses.
    pub fn new<I, S>(pins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            pins: pins
                .into_iter()
                .map(|p| {
                    let p = p.as_ref().trim();
                    p.strip_prefix("sha256//").unwrap_or(p).to_owned()
                })
                .collect(),
        }
    }

    /// The host check, then the pin check.
    ///
    /// # Errors
    /// `ERR_TLS_CERT_ALTNAME_INVALID`, or `ERR_TLS_PIN_MISMATCH` naming the pins seen.
    pub fn check(&self, host: &str, chain: &[PeerCertificate]) -> Result<()> {
        check_server_identity(host, chain)?;
        if chain
            .iter()
            .any(|c| self.pins.iter().any(|p| p == c.pin_sha256()))
        {
            return Ok(());
        }
        let seen: Vec<String> = chain
            .iter()
            .map(|c| format!("sha256//{}", c.pin_sha256()))
            .collect();
        Err(Error::new(
            Kind::Tls,
            format!(
                "Certificate verification error: the public key of '{host}' does not match any pin; the chain has {}",
                seen.join(", ")
            ),
        )
        .with_code("ERR_TLS_PIN_MISMATCH"))
    }
}

/// The pin of a certificate: base64 SHA-256 of its SubjectPublicKeyInfo.
pub fn pin_sha256(cert: &PeerCertificate) -> String {
    cert.pin_sha256().to_owned()
}

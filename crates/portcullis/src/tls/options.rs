//! Protocol choices by name: versions, cipher suites (IANA or OpenSSL names), key-exchange
//! groups. An unknown name is an error listing the supported ones.

use std::fmt;
use std::str::FromStr;

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::SupportedCipherSuite;

use crate::error::{Error, Result};

/// A TLS protocol version. Only 1.2 and 1.3 are supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (`TLSv1.2`).
    Tls12,
    /// TLS 1.3 (`TLSv1.3`).
    Tls13,
}

impl TlsVersion {
    /// Node's name: `TLSv1.2` or `TLSv1.3`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsVersion {
    type Err = Error;

    /// Accepts Node's names (`TLSv1.2`, `TLSv1.3`) and `1.2`/`1.3`.
    fn from_str(s: &str) -> Result<Self> {
        match s
            .trim()
            .trim_start_matches("TLSv")
            .trim_start_matches("tlsv")
        {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            "1" | "1.0" | "1.1" => Err(Error::config(format!(
                "{s} is not supported; supported versions: TLSv1.2, TLSv1.3"
            ))),
            _ => Err(Error::config(format!(
                "unknown TLS version {s:?}; supported versions: TLSv1.2, TLSv1.3"
            ))),
        }
    }
}

/// The rustls protocol versions between `min` and `max`.
pub(crate) fn versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    if min > max {
        return Err(Error::config(format!(
            "min_version {min} is above max_version {max}"
        )));
    }
    let mut out = Vec::new();
    if max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// The IANA name of a suite (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
pub(crate) fn iana_name(suite: &SupportedCipherSuite) -> &'static str {
    match suite.suite().as_str() {
        Some("TLS13_AES_128_GCM_SHA256") => "TLS_AES_128_GCM_SHA256",
        Some("TLS13_AES_256_GCM_SHA384") => "TLS_AES_256_GCM_SHA384",
        Some("TLS13_CHACHA20_POLY1305_SHA256") => "TLS_CHACHA20_POLY1305_SHA256",
        Some("TLS13_AES_128_CCM_SHA256") => "TLS_AES_128_CCM_SHA256",
        Some(name) => name,
        None => "unknown",
    }
}

/// OpenSSL's name of a suite (`ECDHE-RSA-AES128-GCM-SHA256`); TLS 1.3 suites share IANA's.
pub fn openssl_name(iana: &str) -> Option<&'static str> {
    Some(match iana {
        "TLS_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => return None,
    })
}

/// Picks suites by IANA or OpenSSL name, in the order given. Names may be separated by `:`
/// (OpenSSL's cipher-list syntax) or `,`.
pub(crate) fn select_suites(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<SupportedCipherSuite>> {
    let mut out = Vec::new();
    for name in split_names(names) {
        let found = provider.cipher_suites.iter().find(|s| {
            let iana = iana_name(s);
            iana.eq_ignore_ascii_case(&name)
                || openssl_name(iana).is_some_and(|o| o.eq_ignore_ascii_case(&name))
                || s.suite()
                    .as_str()
                    .is_some_and(|r| r.eq_ignore_ascii_case(&name))
        });
        match found {
            Some(suite) if !out.contains(suite) => out.push(*suite),
            Some(_) => {}
            None => {
                let supported: Vec<String> = provider
                    .cipher_suites
                    .iter()
                    .map(|s| {
                        let iana = iana_name(s);
                        match openssl_name(iana) {
                            Some(o) if o != iana => format!("{iana} ({o})"),
                            _ => iana.to_owned(),
                        }
                    })
                    .collect();
                return Err(Error::config(format!(
                    "unknown or unsupported cipher suite {name:?}; supported: {}",
                    supported.join(", ")
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::config("the cipher suite list is empty"));
    }
    Ok(out)
}

/// Picks key-exchange groups by name (`X25519`, `P-256`/`prime256v1`/`secp256r1`,
/// `P-384`/`secp384r1`, `X25519MLKEM768`), in the order given.
pub(crate) fn select_groups(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<&'static dyn SupportedKxGroup>> {
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for name in split_names(names) {
        let canonical = match name.to_ascii_lowercase().as_str() {
            "p-256" | "prime256v1" | "secp256r1" => "secp256r1".to_owned(),
            "p-384" | "secp384r1" => "secp384r1".to_owned(),
            "p-521" | "secp521r1" => "secp521r1".to_owned(),
            _ => name.clone(),
        };
        let found = provider.kx_groups.iter().find(|g| {
            g.name()
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&canonical))
        });
        match found {
            Some(group) => out.push(*group),
            None => {
                let supported: Vec<&str> = provider
                    .kx_groups
                    .iter()
                    .filter_map(|g| g.name().as_str())
                    .collect();
                return Err(Error::config(format!(
                    "unknown or unsupported key exchange group {name:?}; supported: {}",
                    supported.join(", ")
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::config("the key exchange group list is empty"));
    }
    Ok(out)
}

fn split_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| n.split([':', ',']))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::aws_lc_rs::default_provider()
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!("TLSv1.3".parse::<TlsVersion>().unwrap(), TlsVersion::Tls13);
        assert_eq!("1.2".parse::<TlsVersion>().unwrap(), TlsVersion::Tls12);
        let err = "TLSv1.1".parse::<TlsVersion>().unwrap_err().to_string();
        assert!(
            err.contains("supported versions: TLSv1.2, TLSv1.3"),
            "{err}"
        );
        assert!(versions(TlsVersion::Tls13, TlsVersion::Tls12).is_err());
        assert_eq!(
            versions(TlsVersion::Tls12, TlsVersion::Tls13)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn suites_by_iana_and_openssl_names() {
        let p = provider();
        let names = vec![
            "ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384".to_owned(),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_owned(),
        ];
        let suites = select_suites(&p, &names).unwrap();
        let got: Vec<&str> = suites.iter().map(iana_name).collect();
        assert_eq!(
            got,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        let err = select_suites(&p, &["RC4-SHA".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("supported: TLS_AES_256_GCM_SHA384"), "{err}");
        assert!(err.contains("ECDHE-RSA-AES128-GCM-SHA256"), "{err}");
    }

    #[test]
    fn groups_by_name() {
        let p = provider();
        let groups = select_groups(&p, &["P-256,X25519".to_owned()]).unwrap();
        assert_eq!(groups.len(), 2);
        let err = select_groups(&p, &["ffdhe2048".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("X25519"), "{err}");
    }
}

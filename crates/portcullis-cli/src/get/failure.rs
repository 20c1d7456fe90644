//! How `portcullis get` fails: curl's exit code for each client error, the message with
//! Node's error code in it.

use std::time::Duration;

/// Why `get` failed: curl's exit code and the message.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(2, message)
    }

    /// A library error, with curl's code for it and Node's code in the message.
    pub fn client(e: &portcullis::Error, timeout: Option<Duration>) -> Self {
        let code = exit_code(e);
        let mut message = with_sources(e);
        if let Some(node) = e.code() {
            if !message.contains(node) {
                message = format!("{node}: {message}");
            }
        }
        if let Some(ca) = local_dev_ca_behind(e) {
            message.push_str(&format!(
                "\nThe server's certificate was issued by this machine's portcullis local \
                 development CA; trust it with: --cacert {}",
                ca.display()
            ));
        }
        if code == 28 {
            if let Some(t) = timeout {
                message.push_str(&format!(" (--timeout {})", humantime::format_duration(t)));
            }
        }
        Self::new(code, message)
    }

    pub fn timed_out(timeout: Option<Duration>) -> Self {
        let after = timeout.map_or(String::new(), |t| {
            format!(" after {}", humantime::format_duration(t))
        });
        Self::new(28, format!("ETIMEDOUT: operation timed out{after}"))
    }
}

/// The local development CA's certificate file, when the chain a failed verification was
/// about holds that very certificate (`portcullis serve` sends it after the leaf).
fn local_dev_ca_behind(e: &portcullis::Error) -> Option<std::path::PathBuf> {
    let chain = e.peer_certificates();
    if chain.is_empty() {
        return None;
    }
    let path = portcullis::cert::default_dir().join("ca.pem");
    let ca = portcullis::tls::load_certificates(&path).ok()?;
    let ca = ca.first()?;
    chain
        .iter()
        .any(|c| c.as_ref() == ca.as_ref())
        .then_some(path)
}

/// The error and its sources, `: `-joined, without repeating what is already said.
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// Node's certificate verification codes (and the name check): curl's 60.
fn is_verification_code(code: &str) -> bool {
    code.starts_with("CERT_")
        || code.starts_with("UNABLE_TO_")
        || code.starts_with("CRL_")
        || matches!(
            code,
            "DEPTH_ZERO_SELF_SIGNED_CERT"
                | "SELF_SIGNED_CERT_IN_CHAIN"
                | "ERR_TLS_CERT_ALTNAME_INVALID"
                | "INVALID_PURPOSE"
                | "INVALID_CA"
                | "UNHANDLED_CRITICAL_EXTENSION"
                | "HOSTNAME_MISMATCH"
        )
}

/// curl's exit code for a client error.
fn exit_code(e: &portcullis::Error) -> u8 {
    match e.code() {
        Some("ENOTFOUND" | "EAI_AGAIN") => 6,
        Some("ETIMEDOUT" | "ERR_TLS_HANDSHAKE_TIMEOUT") => 28,
        _ if e.is_timeout() => 28,
        Some("ERR_TLS_PIN_MISMATCH") => 90,
        Some(code) if is_verification_code(code) => 60,
        _ if e.is_tls() => 35,
        _ if e.is_connect() => 7,
        _ if e.is_config() => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_codes_map_to_60() {
        for code in [
            "CERT_HAS_EXPIRED",
            "DEPTH_ZERO_SELF_SIGNED_CERT",
            "SELF_SIGNED_CERT_IN_CHAIN",
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "ERR_TLS_CERT_ALTNAME_INVALID",
            "CERT_REVOKED",
        ] {
            assert!(is_verification_code(code), "{code}");
        }
        for code in ["EPROTO", "ECONNRESET", "ERR_TLS_PIN_MISMATCH"] {
            assert!(!is_verification_code(code), "{code}");
        }
    }
}

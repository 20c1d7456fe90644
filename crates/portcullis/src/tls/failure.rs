//! TLS failures as people read them: Node's (OpenSSL's) code, OpenSSL's name for an alert, and
//! a sentence saying what happened, for both ends of a connection. rustls' own identifiers
//! (`HandshakeFailure`, `PeerIncompatible(...)`) never reach a user through here.

use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P};

use super::verify::verifier_error;

/// Which end reports the failure: the words for "the peer" differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// We are the client; the peer is a server.
    Client,
    /// We are the server; the peer is a client.
    Server,
}

impl Side {
    fn peer(self) -> &'static str {
        match self {
            Side::Client => "the server",
            Side::Server => "the client",
        }
    }
}

/// OpenSSL's name for an alert (`SSL_alert_desc_string_long`), as Node's messages show it.
pub(crate) fn alert_name(alert: A) -> &'static str {
    match alert {
        A::CloseNotify => "close notify",
        A::UnexpectedMessage => "unexpected message",
        A::BadRecordMac => "bad record mac",
        A::RecordOverflow => "record overflow",
        A::HandshakeFailure => "handshake failure",
        A::BadCertificate => "bad certificate",
        A::UnsupportedCertificate => "unsupported certificate",
        A::CertificateRevoked => "certificate revoked",
        A::CertificateExpired => "certificate expired",
        A::CertificateUnknown => "certificate unknown",
        A::IllegalParameter => "illegal parameter",
        A::UnknownCA => "unknown CA",
        A::AccessDenied => "access denied",
        A::DecodeError => "decode error",
        A::DecryptError => "decrypt error",
        A::ProtocolVersion => "protocol version",
        A::InsufficientSecurity => "insufficient security",
        A::InternalError => "internal error",
        A::InappropriateFallback => "inappropriate fallback",
        A::UserCanceled => "user canceled",
        A::MissingExtension => "missing extension",
        A::UnsupportedExtension => "unsupported extension",
        A::UnrecognisedName => "unrecognized name",
        A::UnknownPSKIdentity => "unknown PSK identity",
        A::CertificateRequired => "certificate required",
        A::NoApplicationProtocol => "no application protocol",
        _ => "unknown alert",
    }
}

/// Node's code for a TLS failure: `ERR_SSL_` and the alert received, `EPROTO` for a protocol
/// mismatch on the client, the verification code when a certificate was refused.
pub(crate) fn code(e: &E, side: Side) -> &'static str {
    if let Some(code) = verifier_error(e).and_then(crate::Error::code) {
        return code;
    }
    match e {
        E::AlertReceived(alert) => match alert {
            A::ProtocolVersion if side == Side::Client => "EPROTO",
            A::ProtocolVersion => "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
            A::HandshakeFailure => "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
            A::BadCertificate => "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
            A::CertificateUnknown => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
            A::CertificateExpired => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED",
            A::CertificateRevoked => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED",
            A::UnknownCA => "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
            A::AccessDenied => "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
            A::DecodeError => "ERR_SSL_TLSV1_ALERT_DECODE_ERROR",
            A::DecryptError => "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR",
            A::InternalError => "ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR",
            A::UnrecognisedName => "ERR_SSL_TLSV1_UNRECOGNIZED_NAME",
            A::CertificateRequired => "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
            A::NoApplicationProtocol => "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
            _ => "ERR_SSL_HANDSHAKE_FAILURE",
        },
        E::NoApplicationProtocol => "ERR_SSL_NO_APPLICATION_PROTOCOL",
        E::NoCertificatesPresented => "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE",
        E::PeerIncompatible(
            P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled
            | P::Tls13RequiredForQuic
            | P::SupportedVersionsExtensionRequired,
        ) if side == Side::Server => "ERR_SSL_UNSUPPORTED_PROTOCOL",
        E::PeerIncompatible(P::NoCipherSuitesInCommon) if side == Side::Server => {
            "ERR_SSL_NO_SHARED_CIPHER"
        }
        E::PeerIncompatible(_) | E::InvalidMessage(_) if side == Side::Client => "EPROTO",
        _ => "ERR_SSL_HANDSHAKE_FAILURE",
    }
}

/// What happened, in a sentence: OpenSSL's words for an alert, then what it usually means.
pub(crate) fn describe(e: &E, side: Side) -> String {
    if let Some(ours) = verifier_error(e) {
        return match std::error::Error::source(ours) {
            Some(reason) => format!("{ours}: {reason}"),
            None => ours.to_string(),
        };
    }
    let peer = side.peer();
    match e {
        E::AlertReceived(alert) => {
            let name = alert_name(*alert);
            let meaning = match (alert, side) {
                (A::UnknownCA | A::BadCertificate | A::CertificateUnknown, Side::Server) => {
                    "; it does not trust our certificate (browsers and curl send this when the \
                     issuing CA is not in their trust store)"
                }
                (A::CertificateExpired, Side::Server) => "; it says our certificate has expired",
                (A::UnknownCA | A::BadCertificate | A::CertificateUnknown | A::AccessDenied, _) => {
                    "; it refused our client certificate"
                }
                (A::CertificateExpired, _) => "; it says our client certificate has expired",
                (A::CertificateRequired, _) => {
                    "; it requires a client certificate (give one: --cert/--key, or \
                     ClientTlsOptions::identity)"
                }
                (A::HandshakeFailure, Side::Client) => {
                    "; no TLS version, cipher suite or key exchange in common, or a client \
                     certificate is required"
                }
                (A::ProtocolVersion, _) => "; no TLS version in common",
                (A::NoApplicationProtocol, _) => "; no ALPN protocol in common",
                _ => "",
            };
            format!("{peer} sent alert {name}{meaning}")
        }
        E::NoApplicationProtocol => format!("no ALPN protocol in common with {peer}"),
        E::NoCertificatesPresented => format!("{peer} sent no certificate, and one is required"),
        E::PeerIncompatible(why) => format!("{peer} is not compatible: {}", incompatible(why)),
        E::InvalidMessage(_) => format!("{peer} sent a malformed TLS message"),
        E::PeerMisbehaved(_) => format!("{peer} broke the TLS protocol"),
        E::InappropriateHandshakeMessage { .. } | E::InappropriateMessage { .. } => {
            format!("{peer} sent a TLS message out of order")
        }
        E::DecryptError => format!("a record from {peer} did not decrypt"),
        E::InvalidCertificate(_) => format!("the certificate of {peer} was refused"),
        E::General(text) => text.clone(),
        _ => "the TLS handshake failed".to_owned(),
    }
}

fn incompatible(why: &P) -> &'static str {
    match why {
        P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::SupportedVersionsExtensionRequired => {
            "it offers only TLS versions older than 1.2, the minimum here"
        }
        P::ServerDoesNotSupportTls12Or13 | P::ServerTlsVersionIsDisabledByOurConfig => {
            "it supports neither TLS 1.2 nor TLS 1.3 as configured here"
        }
        P::NoCipherSuitesInCommon => "no cipher suite in common",
        P::NoKxGroupsInCommon => "no key exchange group in common",
        P::NoSignatureSchemesInCommon | P::SignatureAlgorithmsExtensionRequired => {
            "no signature algorithm in common"
        }
        P::NoCertificateRequestSignatureSchemesInCommon => {
            "no signature algorithm in common for client certificates"
        }
        _ => "it lacks a TLS feature this end requires",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_read_as_openssl_names_them() {
        let text = describe(&E::AlertReceived(A::UnknownCA), Side::Server);
        assert_eq!(
            text,
            "the client sent alert unknown CA; it does not trust our certificate (browsers and \
             curl send this when the issuing CA is not in their trust store)"
        );
        assert!(!text.contains("UnknownCA"));
        let text = describe(&E::AlertReceived(A::CertificateRequired), Side::Client);
        assert!(
            text.starts_with("the server sent alert certificate required"),
            "{text}"
        );
        assert_eq!(
            code(&E::AlertReceived(A::CertificateRequired), Side::Client),
            "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"
        );
    }

    #[test]
    fn incompatibility_never_shows_rustls_names() {
        let text = describe(&E::PeerIncompatible(P::Tls12NotOffered), Side::Server);
        assert_eq!(
            text,
            "the client is not compatible: it offers only TLS versions older than 1.2, the \
             minimum here"
        );
        assert_eq!(
            code(&E::PeerIncompatible(P::Tls12NotOffered), Side::Server),
            "ERR_SSL_UNSUPPORTED_PROTOCOL"
        );
        assert_eq!(
            code(&E::PeerIncompatible(P::Tls12NotOffered), Side::Client),
            "EPROTO"
        );
    }
}

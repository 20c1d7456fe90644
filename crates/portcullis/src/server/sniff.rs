//! A look at the first bytes before the handshake: plain HTTP sent to the TLS port gets an
//! answer instead of a silent reset, and a client from before TLS 1.2 gets the alert OpenSSL
//! sends it (`protocol_version`) rather than a reset or a misleading `handshake_failure`.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the client started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstBytes {
    /// A TLS handshake record: its length, the first handshake message's type and, for a
    /// ClientHello, its `legacy_version`, as far as the first bytes hold them.
    Tls {
        record_len: Option<usize>,
        message_type: Option<u8>,
        legacy_version: Option<u16>,
    },
    /// An SSL 2.0-format ClientHello (how clients from the SSL era opened a connection).
    SslV2Hello,
    /// Something that looks like an HTTP request line.
    PlainHttp,
    /// Neither.
    Junk,
}

/// How the TLS port answers a plain-HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlainHttpResponse {
    /// `400 Bad Request` with a short text saying the port speaks HTTPS and naming the https URL.
    #[default]
    Explain,
    /// `308 Permanent Redirect` to the same path on https.
    Redirect,
}

pub(crate) async fn first_bytes(stream: &TcpStream) -> io::Result<FirstBytes> {
    // Record header (5), handshake header (4), ClientHello.legacy_version (2).
    let mut head = [0u8; 11];
    let n = stream.peek(&mut head).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(classify(&head[..n]))
}

/// What the first (up to 11, at least 1) bytes of a connection say it is.
pub(crate) fn classify(head: &[u8]) -> FirstBytes {
    let n = head.len();
    match head[0] {
        0x16 => FirstBytes::Tls {
            record_len: (n >= 5).then(|| usize::from(u16::from_be_bytes([head[3], head[4]]))),
            message_type: (n >= 6).then(|| head[5]),
            // Only when the first record itself holds them (a hello may come in fragments).
            legacy_version: (n == 11
                && head[5] == 0x01
                && u16::from_be_bytes([head[3], head[4]]) >= 6)
                .then(|| u16::from_be_bytes([head[9], head[10]])),
        },
        // Two-byte length with the top bit set, then message type 1 (CLIENT-HELLO).
        b if b & 0x80 != 0 && n >= 3 && head[2] == 0x01 => FirstBytes::SslV2Hello,
        b'A'..=b'Z' => FirstBytes::PlainHttp,
        _ => FirstBytes::Junk,
    }
}

/// A fatal alert in a plaintext record of `record_version`. Written only where no TLS state
/// exists yet (rustls has not answered, and will not), so it needs no keys; the bytes are fixed
/// by RFC 8446 §6.
fn fatal_alert(record_version: [u8; 2], description: u8) -> [u8; 7] {
    [
        0x15, // alert
        record_version[0],
        record_version[1],
        0x00,
        0x02, // length
        0x02, // fatal
        description,
    ]
}

/// `protocol_version`, what OpenSSL sends a client whose versions it does not support.
const PROTOCOL_VERSION: u8 = 70;
/// `decode_error`, what rustls sends for a message it cannot read.
const DECODE_ERROR: u8 = 50;
/// `unexpected_message`, for a first handshake message that is not a ClientHello.
const UNEXPECTED_MESSAGE: u8 = 10;
/// `record_overflow`, for a plaintext record over 2^14 bytes.
const RECORD_OVERFLOW: u8 = 22;

/// The largest plaintext record (RFC 8446 §5.1); rustls reads somewhat larger ones.
pub(crate) const MAX_PLAINTEXT_RECORD: usize = 1 << 14;

/// What is wrong with a first record that no server may accept, answered here because rustls
/// would accept it (a record over 2^14 bytes, a ClientHello below SSL 3.1) or close without an
/// alert (a first message other than ClientHello).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadHello {
    RecordOverflow(usize),
    NotClientHello(u8),
    AncientVersion(u16),
}

impl BadHello {
    /// Judges the first bytes of a TLS connection.
    pub(crate) fn of(first: FirstBytes) -> Option<Self> {
        let FirstBytes::Tls {
            record_len,
            message_type,
            legacy_version,
        } = first
        else {
            return None;
        };
        match (record_len, message_type, legacy_version) {
            (Some(len), _, _) if len > MAX_PLAINTEXT_RECORD => Some(BadHello::RecordOverflow(len)),
            (_, Some(kind), _) if kind != 0x01 => Some(BadHello::NotClientHello(kind)),
            // SSL 3.0 and older: TLS 1.3 clients send 0x0303 and list versions apart.
            (_, _, Some(version)) if version < 0x0301 => Some(BadHello::AncientVersion(version)),
            _ => None,
        }
    }

    /// Sends the alert OpenSSL sends for it.
    pub(crate) async fn refuse(self, stream: &mut TcpStream) -> io::Result<()> {
        let description = match self {
            BadHello::RecordOverflow(_) => RECORD_OVERFLOW,
            BadHello::NotClientHello(_) => UNEXPECTED_MESSAGE,
            BadHello::AncientVersion(_) => PROTOCOL_VERSION,
        };
        stream
            .write_all(&fatal_alert([0x03, 0x01], description))
            .await
    }
}

/// Answers an SSL 2.0-format ClientHello with `protocol_version`, as Node (OpenSSL 3) does.
pub(crate) async fn refuse_sslv2(stream: &mut TcpStream) -> io::Result<()> {
    stream
        .write_all(&fatal_alert([0x03, 0x01], PROTOCOL_VERSION))
        .await
}

/// An alert for a ClientHello that rustls refused without queuing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HelloAlert {
    /// Larger than rustls reads (a handshake message over 64 KiB).
    DecodeError,
    /// Split by a record of another type, or by too many empty records.
    UnexpectedMessage,
}

/// Sends the alert for a ClientHello rustls refused silently.
pub(crate) async fn refuse_hello(stream: &mut TcpStream, alert: HelloAlert) -> io::Result<()> {
    let description = match alert {
        HelloAlert::DecodeError => DECODE_ERROR,
        HelloAlert::UnexpectedMessage => UNEXPECTED_MESSAGE,
    };
    stream
        .write_all(&fatal_alert([0x03, 0x03], description))
        .await
}

/// For a ClientHello whose `legacy_version` is below TLS 1.2: whether the client can only speak
/// TLS 1.0 or 1.1. rustls, which never reaches the version check for such a hello (it lacks
/// `signature_algorithms`), would answer `handshake_failure`; OpenSSL answers
/// `protocol_version`, and so does [`refuse_old_version`]. The hello is parsed by rustls from a
/// copy of the first record; a hello that also offers TLS 1.3 (`supported_versions`) is left to
/// the handshake.
pub(crate) async fn is_pre_tls12_only(stream: &TcpStream) -> bool {
    // Such a hello is a few hundred bytes and arrives whole; one that does not is left to rustls.
    let mut record = vec![0u8; 5 + (1 << 14)];
    let Ok(have) = stream.peek(&mut record).await else {
        return false;
    };
    let mut acceptor = rustls::server::Acceptor::default();
    let mut bytes = &record[..have];
    if acceptor.read_tls(&mut bytes).is_err() {
        return false;
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => accepted.client_hello().signature_schemes().is_empty(),
        Err((
            rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::SignatureAlgorithmsExtensionRequired,
            ),
            _,
        )) => true,
        _ => false,
    }
}

/// Answers a TLS 1.0/1.1-only ClientHello with `protocol_version`, in the record version the
/// client used.
pub(crate) async fn refuse_old_version(stream: &mut TcpStream) -> io::Result<()> {
    let mut header = [0u8; 3];
    let version = match stream.peek(&mut header).await {
        Ok(3) => [header[1], header[2]],
        _ => [0x03, 0x01],
    };
    stream
        .write_all(&fatal_alert(version, PROTOCOL_VERSION))
        .await
}

/// Reads the plain-HTTP request head (bounded) and answers it, then closes.
pub(crate) async fn answer_plain_http<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    mode: PlainHttpResponse,
    https_port: u16,
) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    let (path, host) = loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let host = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(str::to_owned);
                break (req.path.unwrap_or("/").to_owned(), host);
            }
            Ok(httparse::Status::Partial) if len < buf.len() => continue,
            // Too long or not HTTP after all: answer without the details.
            _ => break ("/".to_owned(), None),
        }
    };
    let location = host
        .as_deref()
        .and_then(|h| https_url(h, https_port, &path));
    let response = match (mode, &location) {
        (PlainHttpResponse::Redirect, Some(url)) => format!(
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: {url}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ),
        _ => {
            let body = match &location {
                Some(url) => format!("This port speaks HTTPS. Try {url}\n"),
                None => "This port speaks HTTPS; send the request over TLS.\n".to_owned(),
            };
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// `https://host[:port]/path`, from a Host header value; `None` when it is unusable.
pub(crate) fn https_url(host_header: &str, https_port: u16, path: &str) -> Option<String> {
    let authority: http::uri::Authority = host_header.parse().ok()?;
    let host = authority.host();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let path = if path.starts_with('/') { path } else { "/" };
    Some(if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::https_url;

    #[test]
    fn builds_https_urls() {
        assert_eq!(
            https_url("example.com:8080", 8443, "/a?b=c").as_deref(),
            Some("https://example.com:8443/a?b=c")
        );
        assert_eq!(
            https_url("example.com", 443, "/").as_deref(),
            Some("https://example.com/")
        );
        assert_eq!(
            https_url("[::1]:80", 8443, "/x").as_deref(),
            Some("https://[::1]:8443/x")
        );
        assert_eq!(https_url("bad host", 443, "/"), None);
    }

    #[test]
    fn first_records_no_server_accepts_are_named() {
        use super::{BadHello, FirstBytes};
        let tls = |record_len, message_type, legacy_version| FirstBytes::Tls {
            record_len: Some(record_len),
            message_type: Some(message_type),
            legacy_version,
        };
        assert_eq!(BadHello::of(tls(512, 1, Some(0x0303))), None);
        assert_eq!(BadHello::of(tls(512, 1, Some(0x0301))), None);
        assert_eq!(
            BadHello::of(tls(16385, 1, Some(0x0303))),
            Some(BadHello::RecordOverflow(16385))
        );
        assert_eq!(
            BadHello::of(tls(512, 2, None)),
            Some(BadHello::NotClientHello(2))
        );
        assert_eq!(
            BadHello::of(tls(512, 1, Some(0x0300))),
            Some(BadHello::AncientVersion(0x0300))
        );
        assert_eq!(BadHello::of(FirstBytes::Junk), None);
    }
}

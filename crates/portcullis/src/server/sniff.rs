//! A look at the first bytes before the handshake: plain HTTP sent to the TLS port gets an
//! answer instead of a silent reset.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the client started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstBytes {
    /// A TLS handshake record.
    Tls,
    /// Something that looks like an HTTP request line.
    PlainHttp,
    /// Neither.
    Junk,
}

/// How the TLS port answers a plain-HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainHttpResponse {
    /// `400 Bad Request` with a short text saying the port speaks HTTPS and naming the https URL.
    #[default]
    Explain,
    /// `308 Permanent Redirect` to the same path on https.
    Redirect,
}

pub(crate) async fn first_bytes(stream: &TcpStream) -> io::Result<FirstBytes> {
    let mut byte = [0u8; 1];
    if stream.peek(&mut byte).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(match byte[0] {
        0x16 => FirstBytes::Tls,
        b'A'..=b'Z' => FirstBytes::PlainHttp,
        _ => FirstBytes::Junk,
    })
}

/// Reads the plain-HTTP request head (bounded) and answers it, then closes.
pub(crate) async fn answer_plain_http(
    stream: &mut TcpStream,
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
}

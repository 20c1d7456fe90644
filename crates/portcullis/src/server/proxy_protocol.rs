//! PROXY protocol v1 and v2 (HAProxy's), read before the TLS handshake so that
//! `ConnectionInfo::peer_addr` shows the real client behind a load balancer.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (the spec's bound).
const V1_MAX: usize = 107;

/// The shortest header of either version: v1's `PROXY UNKNOWN\r\n` (v2's is 16 bytes).
const MIN_HEADER: usize = 15;

/// Reads one PROXY header from the stream, consuming exactly its bytes (the TLS hello that
/// follows stays unread), with plain reads: the first 15 bytes, which every header has, tell
/// the version; a v2 header then says its length, and a v1 line is read to its CRLF.
///
/// Returns the source address it carries, or `None` for `UNKNOWN`/`LOCAL` (the connection's own
/// address then stands). A missing or malformed header is an error.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> io::Result<Option<SocketAddr>> {
    let mut head = [0u8; MIN_HEADER];
    stream.read_exact(&mut head).await?;
    if head[..12] == V2_SIGNATURE[..] {
        let mut last = [0u8; 1];
        stream.read_exact(&mut last).await?;
        let len = usize::from(u16::from_be_bytes([head[14], last[0]]));
        let mut header = Vec::with_capacity(16 + len);
        header.extend_from_slice(&head);
        header.push(last[0]);
        header.resize(16 + len, 0);
        stream.read_exact(&mut header[16..]).await?;
        let parsed = ppp::v2::Header::try_from(&header[..]).map_err(invalid)?;
        return Ok(match parsed.command {
            ppp::v2::Command::Local => None,
            ppp::v2::Command::Proxy => match parsed.addresses {
                ppp::v2::Addresses::IPv4(a) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v2::Addresses::IPv6(a) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                _ => None,
            },
        });
    }
    if !head.starts_with(b"PROXY ") {
        return Err(invalid("no PROXY protocol header"));
    }
    // The rest of the v1 line, a byte at a time so that nothing after its CRLF is read (a
    // line is at most 107 bytes, and usually arrives whole).
    let mut line = head.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(invalid("PROXY v1 line too long"));
        }
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        line.push(byte[0]);
    }
    // The line is printable ASCII up to its CRLF (the spec's alphabet). Checked here because
    // ppp 2.3 slices the text at the first CR plus two bytes, which panics when a multi-byte
    // character follows a stray CR (found by the proxy_header fuzz target).
    let body = &line[..line.len() - 2];
    if !body.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(invalid(
            "PROXY v1 line holds bytes other than printable ASCII",
        ));
    }
    let text = std::str::from_utf8(&line).map_err(invalid)?;
    let parsed = ppp::v1::Header::try_from(text).map_err(invalid)?;
    Ok(match parsed.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Unknown => None,
    })
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PROXY protocol: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Option<SocketAddr>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(read_header(&mut &bytes[..]))
    }

    #[test]
    fn v1_and_v2_headers_give_the_source_address() {
        assert_eq!(
            parse(b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n").unwrap(),
            Some("192.0.2.1:56324".parse().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), None);
        let v2 =
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc0\x00\x02\x02\xdc\x04\x01\xbb";
        assert_eq!(parse(v2).unwrap(), Some("192.0.2.1:56324".parse().unwrap()));
    }

    #[test]
    fn a_v1_line_with_a_stray_cr_before_a_multibyte_character_is_refused_not_a_panic() {
        // The fuzzer's first find: ppp would slice inside the two-byte character.
        let input = b"PROXY \n\r\xc8\xb4\nTCP6\r\r\nCP6\r\r\n";
        let err = parse(input).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
}

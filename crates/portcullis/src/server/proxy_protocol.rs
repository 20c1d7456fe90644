//! PROXY protocol v1 and v2 (HAProxy's), read before the TLS handshake so that
//! `ConnectionInfo::peer_addr` shows the real client behind a load balancer.

use std::io;
use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (the spec's bound).
const V1_MAX: usize = 107;

/// Reads one PROXY header from the stream, consuming exactly its bytes.
///
/// Returns the source address it carries, or `None` for `UNKNOWN`/`LOCAL` (the connection's own
/// address then stands). A missing or malformed header is an error.
pub(crate) async fn read_header(stream: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    let mut peeked = [0u8; V1_MAX];
    let n = peek_at_least(stream, &mut peeked, 16).await?;
    if peeked[..12] == V2_SIGNATURE[..] {
        let len = u16::from_be_bytes([peeked[14], peeked[15]]) as usize;
        let mut header = vec![0u8; 16 + len];
        stream.read_exact(&mut header).await?;
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
    if !peeked.starts_with(b"PROXY ") {
        return Err(invalid("no PROXY protocol header"));
    }
    // The v1 line may arrive in pieces: peek until its CRLF shows up.
    let mut n = n;
    let end = loop {
        if let Some(pos) = peeked[..n].windows(2).position(|w| w == b"\r\n") {
            break pos + 2;
        }
        if n == V1_MAX {
            return Err(invalid("PROXY v1 line too long"));
        }
        n = peek_at_least(stream, &mut peeked, n + 1).await?;
    };
    let mut line = vec![0u8; end];
    stream.read_exact(&mut line).await?;
    let text = std::str::from_utf8(&line).map_err(invalid)?;
    let parsed = ppp::v1::Header::try_from(text).map_err(invalid)?;
    Ok(match parsed.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Unknown => None,
    })
}

/// Peeks until at least `min` bytes are visible (or the buffer is full).
async fn peek_at_least(stream: &TcpStream, buf: &mut [u8], min: usize) -> io::Result<usize> {
    loop {
        let n = stream.peek(buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if n >= min.min(buf.len()) {
            return Ok(n);
        }
        // More bytes are on their way; wait for the socket to become readable again.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PROXY protocol: {e}"))
}

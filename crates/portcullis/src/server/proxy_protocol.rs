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

/// What a PROXY protocol header said besides the client's address: the TLVs of a v2 header
/// (HAProxy's `send-proxy-v2` sends ALPN, the authority — the SNI it saw — and, with
/// `proxy-v2-options unique-id`, the request's unique ID). A v1 header carries none.
/// [`ConnectionInfo::proxy`](super::ConnectionInfo::proxy) gives it to handlers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyInfo {
    version: u8,
    tlvs: Vec<(u8, Box<[u8]>)>,
}

/// PROXY v2 TLV types (the spec's `PP2_TYPE_*`).
const PP2_TYPE_ALPN: u8 = 0x01;
const PP2_TYPE_AUTHORITY: u8 = 0x02;
const PP2_TYPE_UNIQUE_ID: u8 = 0x05;

impl ProxyInfo {
    /// The header's version: 1 or 2.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The ALPN protocol the load balancer negotiated with the client (`PP2_TYPE_ALPN`).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(PP2_TYPE_ALPN)
    }

    /// The host name the client asked the load balancer for, usually its SNI
    /// (`PP2_TYPE_AUTHORITY`); `None` when absent or not UTF-8.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(PP2_TYPE_AUTHORITY)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The load balancer's unique ID for the connection (`PP2_TYPE_UNIQUE_ID`, up to 128 bytes):
    /// what ties this connection to the balancer's own logs.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(PP2_TYPE_UNIQUE_ID)
    }

    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| &v[..])
    }

    /// Every TLV, in the order they came.
    pub fn tlvs(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.tlvs.iter().map(|(k, v)| (*k, &v[..]))
    }
}

/// A PROXY header read: the client's address (`None` for `UNKNOWN`/`LOCAL`: the connection's
/// own address then stands) and the rest of what it said.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) source: Option<SocketAddr>,
    pub(crate) info: ProxyInfo,
}

/// Reads one PROXY header from the stream, consuming exactly its bytes (the TLS hello that
/// follows stays unread), with plain reads: the first 15 bytes, which every header has, tell
/// the version; a v2 header then says its length, and a v1 line is read to its CRLF. A missing
/// or malformed header is an error.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Header> {
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
        let source = match parsed.command {
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
        };
        let tlvs = parsed
            .tlvs()
            .map(|tlv| tlv.map(|tlv| (tlv.kind, Box::from(&tlv.value[..]))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        return Ok(Header {
            source,
            info: ProxyInfo { version: 2, tlvs },
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
    let source = match parsed.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Unknown => None,
    };
    Ok(Header {
        source,
        info: ProxyInfo {
            version: 1,
            tlvs: Vec::new(),
        },
    })
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PROXY protocol: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Option<SocketAddr>> {
        read(bytes).map(|h| h.source)
    }

    fn read(bytes: &[u8]) -> io::Result<Header> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(read_header(&mut &bytes[..]))
    }

    /// A v2 PROXY header over TCP/IPv4 from 192.0.2.1:56324 with `tlvs`.
    fn v2_with(tlvs: &[(u8, &[u8])]) -> Vec<u8> {
        let mut body = vec![192, 0, 2, 1, 192, 0, 2, 2, 0xdc, 0x04, 0x01, 0xbb];
        for (kind, value) in tlvs {
            body.push(*kind);
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
        }
        let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
        header.extend_from_slice(&(body.len() as u16).to_be_bytes());
        header.extend_from_slice(&body);
        header
    }

    #[test]
    fn v2_tlvs_are_kept_for_handlers() {
        let header = v2_with(&[
            (PP2_TYPE_ALPN, b"h2"),
            (PP2_TYPE_AUTHORITY, b"shop.example"),
            (PP2_TYPE_UNIQUE_ID, b"4f2a-77"),
            (0xe0, b"custom"),
        ]);
        let header = read(&header).unwrap();
        assert_eq!(header.source, Some("192.0.2.1:56324".parse().unwrap()));
        let info = header.info;
        assert_eq!(info.version(), 2);
        assert_eq!(info.alpn(), Some(&b"h2"[..]));
        assert_eq!(info.authority(), Some("shop.example"));
        assert_eq!(info.unique_id(), Some(&b"4f2a-77"[..]));
        assert_eq!(info.tlv(0xe0), Some(&b"custom"[..]));
        assert_eq!(info.tlvs().count(), 4);
        let v1 = read_v1();
        assert_eq!((v1.version(), v1.tlvs().count()), (1, 0));
        // A TLV that claims more bytes than the header holds is refused.
        let mut bad = v2_with(&[(PP2_TYPE_ALPN, b"h2")]);
        let at = bad.len() - 3;
        bad[at] = 0xff;
        assert!(read(&bad).is_err());
    }

    fn read_v1() -> ProxyInfo {
        read(b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n")
            .unwrap()
            .info
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

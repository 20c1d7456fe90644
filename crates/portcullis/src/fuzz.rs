//! Entry points for the fuzz targets in `fuzz/`: the parsers this crate owns or wraps, each
//! taking arbitrary bytes. Compiled only under `cargo fuzz` (`--cfg fuzzing`); not an API.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tls::{keyfile, Passphrase};

/// Certificate files: PEM sniffing and sections, DER, X.509 checks.
pub fn certificates(data: &[u8]) {
    let _ = keyfile::certificates(data);
}

/// Key files: PEM and DER, PKCS#1/SEC1/PKCS#8, encrypted PKCS#8, legacy OpenSSL encrypted PEM,
/// the DER length reader; with and without a passphrase.
pub fn private_key(data: &[u8]) {
    let _ = keyfile::private_key(data, None);
    let _ = keyfile::private_key(data, Some(&Passphrase::new("secret".to_owned())));
}

/// PKCS#12 archives.
pub fn pkcs12(data: &[u8]) {
    let _ = crate::Identity::from_pkcs12(data, &Passphrase::new("secret".to_owned()));
}

/// Ticket-key files (48-byte keys).
pub fn ticket_keys(data: &[u8]) {
    let _ = crate::TicketKeys::from_bytes(data);
}

/// PROXY protocol v1 and v2 headers as they arrive before the TLS hello.
pub fn proxy_header(data: &[u8]) {
    let mut stream = data;
    if let Some(Ok(header)) = run(crate::server::proxy_protocol::read_header(&mut stream)) {
        // What a handler reads of it.
        let info = header.info;
        let _ = (
            info.alpn(),
            info.authority(),
            info.unique_id(),
            info.tlvs().count(),
        );
    }
}

/// The first bytes of a connection, and the plain-HTTP answer when they look like HTTP.
pub fn first_bytes(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let head = &data[..data.len().min(11)];
    let first = crate::server::sniff::classify(head);
    let _ = crate::server::sniff::BadHello::of(first);
    let mut stream = Mock {
        input: data,
        output: Vec::new(),
    };
    for mode in [
        crate::server::PlainHttpResponse::Explain,
        crate::server::PlainHttpResponse::Redirect,
    ] {
        stream.input = data;
        let _ = run(crate::server::sniff::answer_plain_http(
            &mut stream,
            mode,
            8443,
        ));
    }
}

/// Names as users write them: cipher suites, key-exchange groups, TLS versions (`:`/`,` lists),
/// IP networks.
pub fn names(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let names = vec![text.to_owned()];
    let _ = crate::tls::options::select_suites(&provider, &names);
    let _ = crate::tls::options::select_groups(&provider, &names);
    let _ = text.parse::<crate::tls::TlsVersion>();
    // --proxy-protocol-from networks.
    if let Ok(net) = text.parse::<crate::server::IpNet>() {
        let _ = net.to_string();
        let _ = net.contains(std::net::IpAddr::from([127, 0, 0, 1]));
        let _ = net.contains(std::net::IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 1]));
    }
}

/// Polls a future that never waits (its I/O is in memory) to its end.
fn run<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

/// A connection whose peer sent `input` and then closed; what is written is kept.
struct Mock<'a> {
    input: &'a [u8],
    output: Vec<u8>,
}

impl AsyncRead for Mock<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.input.len().min(buf.remaining());
        buf.put_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Mock<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

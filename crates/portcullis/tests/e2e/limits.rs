//! Request limits: 431, 400, maxRequestsPerSocket (reference §1.6–1.8).

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn header_over_max_header_size_gets_431() {
    let srv = start_hello(|b| b).await;
    let mut tls = srv.tls().await;
    let big = "a".repeat(20 * 1024);
    write_all(
        &mut tls,
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(
        text.starts_with("http/1.1 431 request header fields too large"),
        "{text}"
    );
    assert!(text.contains("connection: close"), "{text}");
    assert!(closed);
}

#[tokio::test]
async fn too_many_headers_get_431() {
    // A larger head size so that only the count trips.
    let srv = start_hello(|b| b.max_header_size(64 * 1024)).await;
    let mut tls = srv.tls().await;
    let mut req = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..2001 {
        req.push_str(&format!("h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    write_all(&mut tls, req.as_bytes()).await;
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 431"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(closed);

    // 1999 headers plus Host is within the default limit of 2000.
    let mut tls = srv.tls().await;
    let mut req = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..1999 {
        req.push_str(&format!("h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    write_all(&mut tls, req.as_bytes()).await;
    let res = read_response(&mut tls).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

#[tokio::test]
async fn http2_header_limits_apply() {
    let srv = start_hello(|b| b.max_header_size(4096)).await;
    let big = format!("X-Big: {}", "a".repeat(8000));
    let out = srv
        .curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--http2",
            "-H",
            &big,
            &srv.url("/"),
        ])
        .await;
    let code = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code, "431", "an oversized h2 header list gets 431");
}

#[tokio::test]
async fn missing_host_gets_400() {
    let srv = start_hello(|b| b).await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\n\r\n").await;
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 400 bad request"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(closed);
}

#[tokio::test]
async fn malformed_request_gets_400() {
    let srv = start_hello(|b| b).await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GARBAGE\r\n\r\n").await;
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 400 bad request"), "{text}");
    assert!(closed);
}

#[tokio::test]
async fn max_requests_per_socket_closes_on_the_last() {
    let srv = start_hello(|b| b.max_requests_per_socket(3)).await;
    let mut tls = srv.tls().await;
    for i in 1..=3 {
        write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let res = read_response(&mut tls).await.to_ascii_lowercase();
        assert!(res.starts_with("http/1.1 200"), "{res}");
        if i < 3 {
            assert!(res.contains("keep-alive: timeout=5, max=3"), "{res}");
            assert!(res.contains("connection: keep-alive"), "{res}");
        } else {
            assert!(res.contains("connection: close"), "{res}");
        }
    }
    let (_, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    assert!(closed);
}

/// A response body of `left` bytes made 64 KiB at a time, counting what the server has taken.
struct Counted {
    left: usize,
    taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl hyper::body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        let n = self.left.min(64 * 1024);
        if n == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= n;
        self.taken.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes::Bytes::from(
            vec![b'x'; n],
        )))))
    }
}

#[tokio::test]
async fn a_peer_that_does_not_read_holds_little_of_the_response() {
    // Without a cap on unsent bytes the kernel queued up to 4 MiB of response for such a peer
    // (tcp_wmem's maximum); a thousand of them pushed the host's TCP memory into pressure.
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = taken.clone();
    let srv = start(
        |b| b,
        tower::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
            let taken = counter.clone();
            async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(Counted {
                    left: 64 << 20,
                    taken,
                }))
            }
        }),
    )
    .await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // Wait until the server stops producing: the same count over 30 looks in a row (the
    // poll's 10 ms apart: 300 ms).
    let (mut last, mut same) = (usize::MAX, 0);
    assert!(
        eventually(Duration::from_secs(10), || {
            let now = taken.load(std::sync::atomic::Ordering::SeqCst);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            same >= 30
        })
        .await,
        "the server never stopped producing"
    );
    let held = taken.load(std::sync::atomic::Ordering::SeqCst);
    // What the client's socket holds, the unsent cap (128 KiB), what is in flight, rustls's and
    // hyper's buffers: well under a megabyte and a half. Without the cap: 4 MiB and more.
    assert!(
        held < 1536 * 1024,
        "{held} bytes produced for a peer reading nothing"
    );
    drop(tls);
}

//! Real clients: curl (HTTP/1.1 and h2), openssl s_client, Node's https.get.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_http1_and_http2() {
    let srv = start_hello(|b| b).await;
    let out = srv.curl(&["-i", "--http1.1", &srv.url("/")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("hello world"), "{text}");
    assert!(text.to_ascii_lowercase().contains("keep-alive: timeout=5"), "{text}");
    assert!(text.contains("x-tls-alpn: http/1.1"), "{text}");

    let out = srv.curl(&["-i", "--http2", &srv.url("/")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("x-tls-alpn: h2"), "{text}");
    assert!(text.contains("hello world"), "{text}");
}

//! Node's timeouts, probed with a raw TLS client (reference §1.3–1.5, probes P1–P8, P15).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

const TIMEOUT_408: &str = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn silent_connection_gets_408_after_headers_timeout() {
    let srv = start_hello(|b| b.headers_timeout(Duration::from_millis(300))).await;
    let mut tls = srv.tls().await;
    let t0 = Instant::now();
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let elapsed = t0.elapsed();
    assert_eq!(String::from_utf8_lossy(&bytes), TIMEOUT_408);
    assert!(closed);
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn trickled_head_gets_408_then_close() {
    let srv = start_hello(|b| b.headers_timeout(Duration::from_millis(500))).await;
    let mut tls = srv.tls().await;
    let t0 = Instant::now();
    // One header line every 200 ms: the head never completes within 500 ms.
    let writer = async {
        for line in [
            "GET / HTTP/1.1\r\n",
            "Host: x\r\n",
            "A: 1\r\n",
            "B: 2\r\n",
            "C: 3\r\n",
            "D: 4\r\n",
        ] {
            if tls.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            let _ = tls.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    writer.await;
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(String::from_utf8_lossy(&bytes), TIMEOUT_408);
    assert!(closed);
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn slow_body_gets_408_at_request_timeout() {
    let srv = start(
        |b| {
            b.headers_timeout(Duration::from_millis(300))
                .request_timeout(Duration::from_millis(800))
        },
        tower::service_fn(echo_len),
    )
    .await;
    let mut tls = srv.tls().await;
    let t0 = Instant::now();
    write_all(
        &mut tls,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
    )
    .await;
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let elapsed = t0.elapsed();
    assert_eq!(String::from_utf8_lossy(&bytes), TIMEOUT_408);
    assert!(closed);
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn slow_handler_after_complete_request_is_not_timed_out() {
    // Node's P4: requestTimeout bounds receiving the request, not the handler.
    let slow = tower::service_fn(|req| async move {
        tokio::time::sleep(Duration::from_millis(900)).await;
        echo_len(req).await
    });
    let srv = start(
        |b| {
            b.headers_timeout(Duration::from_millis(200))
                .request_timeout(Duration::from_millis(400))
        },
        slow,
    )
    .await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut tls).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    write_all(
        &mut tls,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    let res = read_response(&mut tls).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.ends_with("\r\n\r\n3"), "{res}");
}

#[tokio::test]
async fn idle_keep_alive_connection_closes_after_keep_alive_timeout() {
    let srv = start_hello(|b| {
        b.keep_alive_timeout(Duration::from_millis(300))
            .keep_alive_timeout_buffer(Duration::from_millis(200))
    })
    .await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut tls).await;
    assert!(res.contains("keep-alive: timeout=0"), "{res}");
    let t0 = Instant::now();
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    let elapsed = t0.elapsed();
    assert!(bytes.is_empty(), "{bytes:?}");
    assert!(closed);
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    // The idle time did not count as a request: no 408 was written.
}

#[tokio::test]
async fn keep_alive_header_follows_the_option() {
    let srv = start_hello(|b| b.keep_alive_timeout(Duration::ZERO)).await;
    let out = srv.curl(&["-si", "--http1.1", &srv.url("/")]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(!text.contains("keep-alive: timeout"), "{text}");
}

#[tokio::test]
async fn inactivity_timeout_drops_without_a_byte() {
    let srv = start_hello(|b| {
        b.headers_timeout(Duration::ZERO)
            .request_timeout(Duration::ZERO)
            .inactivity_timeout(Duration::from_millis(400))
    })
    .await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\n").await;
    let t0 = Instant::now();
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    assert!(closed);
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn unfinished_handshake_is_closed_and_reported() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let srv = start_hello(move |b| {
        b.handshake_timeout(Duration::from_millis(300))
            .on_tls_client_error(move |e| seen.lock().unwrap().push(e.code()))
    })
    .await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let t0 = Instant::now();
    let (bytes, closed) = read_until_close(&mut tcp, Duration::from_secs(5)).await;
    let elapsed = t0.elapsed();
    assert!(bytes.is_empty());
    assert!(closed);
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(
        eventually(Duration::from_secs(2), || !errors
            .lock()
            .unwrap()
            .is_empty())
        .await
    );
    assert_eq!(*errors.lock().unwrap(), vec!["ERR_TLS_HANDSHAKE_TIMEOUT"]);
    // The server still serves others.
    let out = srv.curl(&[&srv.url("/")]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
}

//! on_connection / on_secure_connection gates, the handshake cap, and h2 under close().

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_connection_can_refuse() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let srv = start_hello(move |b| {
        b.on_connection(move |peer, local| {
            assert!(peer.ip().is_loopback() && local.ip().is_loopback());
            // Refuse every other connection.
            seen.fetch_add(1, Ordering::SeqCst) % 2 == 1
        })
    })
    .await;
    let refused = srv.curl(&[&srv.url("/")]).await;
    assert!(!refused.status.success());
    let served = srv.curl(&[&srv.url("/")]).await;
    assert_eq!(String::from_utf8_lossy(&served.stdout), "hello world\n");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_secure_connection_sees_tls_info_and_can_refuse() {
    let srv = start_hello(|b| {
        b.on_secure_connection(|info| {
            let tls = info.tls().expect("TLS info after the handshake");
            // Only clients that negotiated h2 are let in.
            tls.alpn() == Some("h2")
        })
    })
    .await;
    let refused = srv.curl(&["--http1.1", &srv.url("/")]).await;
    assert!(!refused.status.success());
    let served = srv.curl(&["--http2", &srv.url("/")]).await;
    assert_eq!(String::from_utf8_lossy(&served.stdout), "hello world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_do_not_starve_established_connections() {
    let srv = start_hello(|b| {
        b.max_concurrent_handshakes(4)
            .handshake_timeout(Duration::from_secs(5))
    })
    .await;
    let mut established = srv.tls().await;
    // 50 clients that start a TLS record and stall, holding (or queueing for) handshake slots.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(tcp);
    }
    assert!(
        eventually(Duration::from_secs(5), || srv
            .handle
            .connections()
            .handshaking
            >= 50)
        .await,
        "{:?}",
        srv.handle.connections()
    );
    let t0 = Instant::now();
    for _ in 0..20 {
        write_all(&mut established, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let res = read_response(&mut established).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_in_flight_request_finishes_after_close() {
    let slow = tower::service_fn(|req| async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        hello(req).await
    });
    let srv = start(|b| b, slow).await;
    let port = srv.addr.port().to_string();
    let ca = srv.pki.ca.clone();
    let url = srv.url("/");
    let curl = tokio::spawn(async move {
        tokio::process::Command::new("curl")
            .args(["-sS", "--http2", "--cacert"])
            .arg(ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1"), &url])
            .output()
            .await
            .unwrap()
    });
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await,
        "curl's stream reaches the service"
    );
    srv.handle.close().await;
    let out = curl.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.handle.connections().total(), 0);
}

//! `ServerBuilder::stats` and `ServerHandle::stats`: what a metrics endpoint exports.

use std::time::{Duration, SystemTime};

use rustls_pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn stats_count_handshakes_responses_timeouts_bytes_and_states() {
    let srv = start_hello(|b| {
        b.stats(true)
            .headers_timeout(Duration::from_millis(300))
            .request_timeout(Duration::from_millis(300))
            .handshake_timeout(Duration::from_millis(300))
            .keep_alive_timeout(Duration::from_millis(600))
            .keep_alive_timeout_buffer(Duration::ZERO)
            .release_idle_buffers_after(Duration::from_millis(50))
    })
    .await;
    let before = srv.handle.stats();
    assert_eq!(before.accepted, 0);
    assert_eq!(before.certificates.len(), 1);
    assert_eq!(before.certificates[0].identity, "default");
    assert!(before.certificates[0].not_after > SystemTime::now());

    // One client configuration: the second connection resumes the first one's session.
    let config = srv.pki.client_config(&[b"http/1.1"]);
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("localhost").unwrap();
    for request in [
        &b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        write_all(&mut tls, request).await;
        let (answer, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
        assert!(closed && answer.starts_with(b"HTTP/1."), "{answer:?}");
    }
    // A canned 400 (no Host).
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 400"));
    drop(tls);
    // Plain HTTP on the TLS port.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let _ = read_until_close(&mut tcp, Duration::from_secs(5)).await;
    // A handshake that never starts.
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    assert!(
        read_until_close(&mut silent, Duration::from_secs(5))
            .await
            .1
    );
    // A head that never ends: 408.
    let mut slow = srv.tls().await;
    write_all(&mut slow, b"GET / HTTP/1.1\r\nHost").await;
    let (answer, _) = read_until_close(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.starts_with(b"HTTP/1.1 408"), "{answer:?}");
    // A keep-alive connection: released after 50 ms, closed at the keep-alive timeout.
    let mut idle = srv.tls().await;
    write_all(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    assert!(
        eventually(Duration::from_secs(5), || srv
            .handle
            .stats()
            .connections
            .released
            == 1)
        .await,
        "the idle connection is counted as released: {:?}",
        srv.handle.stats().connections
    );
    assert!(read_until_close(&mut idle, Duration::from_secs(5)).await.1);

    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connection_count()
            == 0)
        .await,
        "every connection ends"
    );
    let s = srv.handle.stats();
    assert_eq!(s.accepted, 7, "{s:?}");
    assert_eq!((s.refused, s.purged), (0, 0));
    assert_eq!(s.handshakes_full, 4, "{s:?}");
    assert_eq!(s.handshakes_resumed, 1, "{s:?}");
    assert_eq!(s.handshake_failures["ERR_SSL_HTTP_REQUEST"], 1, "{s:?}");
    assert_eq!(
        s.handshake_failures["ERR_TLS_HANDSHAKE_TIMEOUT"], 1,
        "{s:?}"
    );
    assert_eq!(s.requests[&("1.1", "2xx")], 2, "{s:?}");
    assert_eq!(s.requests[&("1.0", "2xx")], 1, "{s:?}");
    assert_eq!(s.requests[&("1.1", "4xx")], 1, "{s:?}");
    assert_eq!(s.timeouts.headers, 1, "{s:?}");
    assert_eq!(s.timeouts.handshake, 1, "{s:?}");
    assert_eq!(s.timeouts.keep_alive, 1, "{s:?}");
    assert_eq!((s.timeouts.request, s.timeouts.idle), (0, 0), "{s:?}");
    assert!(s.bytes_in > 500 && s.bytes_out > 2000, "{s:?}");
    assert_eq!(s.connections, Default::default());
}

#[tokio::test]
async fn stats_count_purged_and_refused_connections() {
    for purge in [true, false] {
        let srv = start_hello(|b| b.stats(true).max_connections(1).lru_purge(purge)).await;
        let mut first = srv.tls().await;
        write_all(&mut first, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        read_response(&mut first).await;
        let mut second = TcpStream::connect(srv.addr).await.unwrap();
        if purge {
            // The idle first connection makes room for the second.
            assert!(read_until_close(&mut first, Duration::from_secs(5)).await.1);
        } else {
            assert!(
                read_until_close(&mut second, Duration::from_secs(5))
                    .await
                    .1
            );
        }
        let s = srv.handle.stats();
        assert_eq!(s.accepted, if purge { 2 } else { 1 }, "{s:?}");
        assert_eq!(s.purged, u64::from(purge), "{s:?}");
        assert_eq!(s.refused, u64::from(!purge), "{s:?}");
        assert_eq!(s.connections.handshaking, usize::from(purge), "{s:?}");
    }
}

#[tokio::test]
async fn without_stats_the_snapshot_has_states_and_certificates_only() {
    let srv = start_hello(|b| b).await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    read_response(&mut tls).await;
    let s = srv.handle.stats();
    assert_eq!((s.accepted, s.handshakes_full, s.bytes_out), (0, 0, 0));
    assert!(s.requests.is_empty());
    assert_eq!(s.connections.idle + s.connections.released, 1);
    assert_eq!(s.certificates.len(), 1);
}

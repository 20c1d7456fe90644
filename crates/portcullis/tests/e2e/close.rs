//! close(), closeIdleConnections(), closeAllConnections(), max_connections with LRU purge
//! (reference §1.9; ESP-IDF's lru_purge_enable).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::Server;
use tokio::net::TcpStream;

use crate::support::*;

async fn slow(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"done"))))
}

#[tokio::test]
async fn close_lets_a_slow_request_finish_and_refuses_new_connections() {
    let srv = start(|b| b, tower::service_fn(slow)).await;
    let mut idle = srv.tls().await;
    write_all(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    read_response(&mut idle).await;

    let mut busy = srv.tls().await;
    write_all(&mut busy, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await,
        "the request reaches the service"
    );
    assert_eq!(srv.handle.connections().idle, 1);

    let handle = srv.handle.clone();
    let t0 = Instant::now();
    let closing = tokio::spawn(async move { handle.close().await });

    // The idle connection is closed at once.
    let (bytes, closed) = read_until_close(&mut idle, Duration::from_secs(2)).await;
    assert!(bytes.is_empty() && closed);
    // A new connection is refused.
    let addr = srv.addr;
    assert!(
        eventually_async(Duration::from_secs(2), || async move {
            TcpStream::connect(addr).await.is_err()
        })
        .await,
        "listener must be closed"
    );
    // The slow request completes, with Connection: close.
    let res = read_response(&mut busy).await.to_ascii_lowercase();
    assert!(res.starts_with("http/1.1 200"), "{res}");
    assert!(res.contains("connection: close"), "{res}");
    assert!(res.ends_with("done"), "{res}");
    closing.await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(500));
    assert_eq!(srv.handle.connections().total(), 0);
    srv.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn close_all_connections_drops_in_flight_requests() {
    let srv = start(|b| b, tower::service_fn(slow)).await;
    let mut busy = srv.tls().await;
    write_all(&mut busy, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await,
        "the request reaches the service"
    );
    srv.handle.close_all_connections();
    let (bytes, closed) = read_until_close(&mut busy, Duration::from_secs(2)).await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    assert!(closed);
    // The server keeps serving.
    let out = srv.curl(&[&srv.url("/")]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done");
}

#[tokio::test]
async fn shutdown_timeout_drops_what_is_left() {
    let srv = start(
        |b| b.shutdown_timeout(Duration::from_millis(200)),
        tower::service_fn(slow),
    )
    .await;
    let mut busy = srv.tls().await;
    write_all(&mut busy, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await,
        "the request reaches the service"
    );
    let t0 = Instant::now();
    srv.handle.close().await;
    assert!(
        t0.elapsed() < Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
    let (bytes, closed) = read_until_close(&mut busy, Duration::from_secs(2)).await;
    assert!(bytes.is_empty() && closed);
}

#[tokio::test]
async fn close_idle_connections_leaves_active_ones() {
    let srv = start(|b| b, tower::service_fn(slow)).await;
    let mut idle = srv.tls().await;
    write_all(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    read_response(&mut idle).await;
    let mut partial = srv.tls().await;
    write_all(&mut partial, b"GET / HTTP/1.1\r\n").await;
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await,
        "the partial head is being read"
    );
    srv.handle.close_idle_connections();
    let (_, closed) = read_until_close(&mut idle, Duration::from_secs(2)).await;
    assert!(closed);
    write_all(&mut partial, b"Host: x\r\n\r\n").await;
    let res = read_response(&mut partial).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

/// Opens `n` keep-alive connections, each having completed one request.
async fn idle_connections(
    srv: &Running,
    n: usize,
) -> Vec<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut c = srv.tls().await;
        write_all(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        read_response(&mut c).await;
        conns.push(c);
        let idle = conns.len();
        assert!(
            eventually(Duration::from_secs(5), || srv.handle.connections().idle
                == idle)
            .await
        );
    }
    conns
}

#[tokio::test]
async fn max_connections_with_lru_purge_closes_the_oldest_idle() {
    let srv = start(|b| b.max_connections(10), tower::service_fn(slow)).await;
    let mut conns = idle_connections(&srv, 10).await;
    assert_eq!(srv.handle.connections().idle, 10);
    assert_eq!(srv.handle.connection_count(), 10);
    // The 11th is admitted...
    let mut eleventh = srv.tls().await;
    write_all(&mut eleventh, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut eleventh).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    // ...and the oldest idle one was closed; the second oldest is still open.
    let (_, closed) = read_until_close(&mut conns[0], Duration::from_secs(2)).await;
    assert!(
        closed,
        "the least recently used idle connection must be purged"
    );
    write_all(&mut conns[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut conns[1]).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert_eq!(srv.handle.connections().total(), 10);
}

#[tokio::test]
async fn close_serves_connections_caught_mid_handshake_or_before_their_first_request() {
    // A restart's SIGTERM finds clients in between: one connected whose hello has not been
    // read, one handshaken whose request is on its way. As in Node, neither is dropped; each
    // gets its answer, with Connection: close.
    let srv = start(|b| b, tower::service_fn(slow)).await;
    let early = TcpStream::connect(srv.addr).await.unwrap();
    let mut handshaken = srv.tls().await;
    assert!(
        eventually(Duration::from_secs(5), || {
            let c = srv.handle.connections();
            c.handshaking == 1 && c.active == 1
        })
        .await
    );
    let handle = srv.handle.clone();
    let closing = tokio::spawn(async move { handle.close().await });
    let mut early = srv.tls_over(early).await.expect("the handshake completes");
    for tls in [&mut early, &mut handshaken] {
        write_all(tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (bytes, closed) = read_until_close(tls, Duration::from_secs(5)).await;
        let res = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        assert!(res.starts_with("http/1.1 200"), "{res}");
        assert!(res.contains("connection: close"), "{res}");
        assert!(closed);
    }
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .expect("close() resolves once they are answered")
        .unwrap();
}

#[tokio::test]
async fn close_gives_a_silent_connection_a_moment_then_closes_it() {
    let srv = start(|b| b, tower::service_fn(slow)).await;
    let mut silent = srv.tls().await;
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await
    );
    let started = Instant::now();
    srv.handle.close().await;
    // The first-request grace (1 s), not the 60 s headers timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (bytes, closed) = read_until_close(&mut silent, Duration::from_secs(2)).await;
    assert!(bytes.is_empty() && closed);
}

#[tokio::test]
async fn a_full_server_with_lru_purge_holds_a_newcomer_until_a_connection_is_idle() {
    // Both places hold a request in progress (800 ms): nothing idle to purge when the third
    // client arrives. It waits (in the listen queue) instead of being refused, and is served by
    // purging whichever connection goes idle first.
    let srv = start(|b| b.max_connections(2), tower::service_fn(slow)).await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut c = srv.tls().await;
        write_all(&mut c, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
        busy.push(c);
    }
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 2)
        .await
    );
    let started = Instant::now();
    let mut third = srv.tls().await;
    write_all(&mut third, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut third).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The two slow requests were answered before their connections were purged.
    for c in &mut busy {
        let res = read_response(c).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    }
    assert!(srv.handle.connections().total() <= 2);
}

#[tokio::test]
async fn a_peer_that_on_connection_refuses_evicts_no_idle_client() {
    // The hook admits the first two connections only; the server holds two at most.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let srv = start(
        move |b| {
            b.max_connections(2).on_connection(move |_, _| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
            })
        },
        tower::service_fn(slow),
    )
    .await;
    let mut conns = idle_connections(&srv, 2).await;
    assert_eq!(srv.handle.connections().idle, 2);
    // A refused peer: before the hook ran ahead of admission, taking its place purged the
    // least recently used idle client.
    let refused = TcpStream::connect(srv.addr).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || seen
            .load(std::sync::atomic::Ordering::SeqCst)
            == 3)
        .await
    );
    drop(refused);
    for conn in &mut conns {
        write_all(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let res = read_response(conn).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    }
}

#[tokio::test]
async fn max_connections_without_purge_refuses_the_eleventh() {
    let srv = start(
        |b| b.max_connections(10).lru_purge(false),
        tower::service_fn(slow),
    )
    .await;
    let conns = idle_connections(&srv, 10).await;
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), srv.tls_over(tcp))
        .await
        .expect("refusal is prompt");
    assert!(result.is_err(), "the 11th connection must be refused");
    assert_eq!(srv.handle.connections().total(), 10);
    drop(conns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nghttp (nghttp2-client)"]
async fn close_sends_h2_goaway_and_the_stream_completes() {
    let srv = start(|b| b, tower::service_fn(slow)).await;
    let url = format!("https://127.0.0.1:{}/slow", srv.addr.port());
    let nghttp = tokio::spawn(async move {
        tokio::process::Command::new("nghttp")
            .args(["-v", "-t", "10", &url])
            .output()
            .await
            .expect("nghttp runs")
    });
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().active
            == 1)
        .await,
        "nghttp's stream reaches the service"
    );
    srv.handle.close().await;
    let out = nghttp.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("recv GOAWAY frame"), "{text}");
    assert!(text.contains(":status: 200"), "{text}");
    assert!(text.contains("done"), "{text}");
}

#[tokio::test]
async fn serve_with_shutdown_closes_gracefully_when_the_signal_fires() {
    let pki = Pki::new();
    let server = Server::builder().identity(pki.identity()).build().unwrap();
    let listener = server.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr();
    let (fire, fired) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let server = server.clone();
        async move {
            server
                .serve_with_shutdown(listener, tower::service_fn(slow), async {
                    let _ = fired.await;
                })
                .await
        }
    });
    let srv = Running {
        addr,
        handle: server.handle(),
        server,
        pki,
        task: tokio::spawn(async { Ok(()) }),
    };
    let mut busy = srv.tls().await;
    write_all(&mut busy, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        eventually(Duration::from_secs(2), || srv.handle.connections().active
            == 1)
        .await
    );
    fire.send(()).unwrap();
    // The request in flight finishes, with Connection: close.
    let res = read_response(&mut busy).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(
        res.to_ascii_lowercase().contains("connection: close"),
        "{res}"
    );
    // Then serve_with_shutdown returns, and nobody is accepted any more.
    let result = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("returned after the close");
    assert!(result.unwrap().is_ok());
    assert!(srv.handle.is_closing());
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn drain_keeps_accepting_and_ends_each_connection_after_its_next_response() {
    let srv = start_hello(|b| b).await;
    let mut idle = srv.tls().await;
    write_all(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let first = read_response(&mut idle).await.to_ascii_lowercase();
    assert!(first.contains("connection: keep-alive"), "{first}");

    srv.handle.drain();
    assert!(srv.handle.is_closing());
    // The idle connection is not closed under a client that may be sending: its next request
    // is answered, with Connection: close, and then it ends.
    let (bytes, closed) = read_until_close(&mut idle, Duration::from_millis(300)).await;
    assert!(bytes.is_empty() && !closed, "left open while idle");
    write_all(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let next = read_response(&mut idle).await.to_ascii_lowercase();
    assert!(
        next.starts_with("http/1.1 200") && next.contains("connection: close"),
        "{next}"
    );
    assert!(read_until_close(&mut idle, Duration::from_secs(5)).await.1);

    // New connections are still accepted and served, one response each.
    let mut fresh = srv.tls().await;
    write_all(&mut fresh, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut fresh).await.to_ascii_lowercase();
    assert!(
        res.starts_with("http/1.1 200") && res.contains("connection: close"),
        "{res}"
    );
    assert!(read_until_close(&mut fresh, Duration::from_secs(5)).await.1);

    // close() after a drain closes as usual.
    tokio::time::timeout(Duration::from_secs(5), srv.handle.close())
        .await
        .expect("close() ends");
}

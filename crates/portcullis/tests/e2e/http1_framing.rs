//! HTTP/1.1 headers that match what the server then does: `Connection` and `Keep-Alive` follow
//! the request and the outcome, `Expect` is answered as Node answers it, a pipelined request's
//! headers timeout runs from its first byte, and idle connections are governed by the
//! keep-alive timeout. Probes that Node answers the same way run against Node too.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The response head's status line and the named header values (lowercase), or `None`.
fn head_field<'a>(res: &'a str, name: &str) -> Option<&'a str> {
    res.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads what the server sends until it closes (`true`) or goes quiet for `quiet` (`false`).
async fn read_quiet<R: AsyncRead + Unpin>(r: &mut R, quiet: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(quiet, r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

/// A Node 20 https server with the test PKI's certificate, answering `hi` without reading the
/// request body (`res.end()` at once), as the hello service does.
struct NodeServer {
    _child: tokio::process::Child,
    addr: SocketAddr,
}

impl NodeServer {
    async fn start(pki: &Pki) -> Self {
        let script = r#"
            const https = require('https'), fs = require('fs');
            const [cert, key] = process.argv.slice(1);
            const s = https.createServer(
                {cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
                (req, res) => res.end('hello world\n'));
            s.listen(0, '127.0.0.1', () => console.log(s.address().port));
        "#;
        let mut child = tokio::process::Command::new("node")
            .args(["-e", script])
            .arg(&pki.cert)
            .arg(&pki.key)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            let n = tokio::time::timeout(Duration::from_secs(10), stdout.read(&mut byte))
                .await
                .expect("node listens in time")
                .unwrap();
            assert!(n > 0, "node exited");
            line.push(byte[0]);
        }
        let port: u16 = String::from_utf8_lossy(&line).trim().parse().unwrap();
        Self {
            _child: child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

/// A TLS connection (http/1.1) to `addr` trusting the test CA.
async fn connect(pki: &Pki, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(pki.client_config(&[b"http/1.1"]))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// One raw request; what came back within `quiet`, and whether the server then closed.
async fn probe(pki: &Pki, addr: SocketAddr, request: &str) -> (String, bool) {
    let mut tls = connect(pki, addr).await;
    write_all(&mut tls, request.as_bytes()).await;
    read_quiet(&mut tls, Duration::from_millis(700)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_headers_follow_the_request_like_node() {
    let srv = start_hello(|b| b).await;
    let node = NodeServer::start(&srv.pki).await;
    for addr in [srv.addr, node.addr] {
        let who = if addr == srv.addr {
            "portcullis"
        } else {
            "node"
        };

        // HTTP/1.0 without keep-alive: close, said and done.
        let (res, closed) = probe(&srv.pki, addr, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").await;
        assert!(res.contains(" 200 OK\r\n"), "{who}: {res}");
        assert_eq!(
            head_field(&res, "connection"),
            Some("close"),
            "{who}: {res}"
        );
        assert_eq!(head_field(&res, "keep-alive"), None, "{who}: {res}");
        assert!(closed, "{who}: the connection closes");

        // Connection: close gets `close` alone.
        let (res, closed) = probe(
            &srv.pki,
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(
            head_field(&res, "connection"),
            Some("close"),
            "{who}: {res}"
        );
        assert_eq!(head_field(&res, "keep-alive"), None, "{who}: {res}");
        assert!(closed, "{who}");

        // An upgrade answered normally keeps the connection.
        let (res, closed) = probe(
            &srv.pki,
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo/1\r\n\r\n",
        )
        .await;
        assert!(res.starts_with("HTTP/1.1 200 OK"), "{who}: {res}");
        assert_eq!(head_field(&res, "connection"), Some("keep-alive"), "{who}");
        assert_eq!(head_field(&res, "keep-alive"), Some("timeout=5"), "{who}");
        assert!(!closed, "{who}: kept open");

        // Expect: anything but 100-continue is refused.
        let (res, closed) = probe(
            &srv.pki,
            addr,
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 3\r\n\r\nabc",
        )
        .await;
        assert!(
            res.starts_with("HTTP/1.1 417 Expectation Failed"),
            "{who}: {res}"
        );
        assert!(!closed, "{who}: a 417 keeps the connection");
    }
    drop(node);
}

/// Reads the body only after a while, then answers with its length.
async fn slow_echo_len(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    echo_len(req).await
}

/// Node answers `100 Continue` as soon as the head is in, before the handler looks at the body;
/// so does portcullis (hyper alone would wait for the handler's first read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_at_once_like_node() {
    let srv = start(|b| b, tower::service_fn(slow_echo_len)).await;
    let node = NodeServer::start(&srv.pki).await;
    for addr in [srv.addr, node.addr] {
        let mut tls = connect(&srv.pki, addr).await;
        write_all(
            &mut tls,
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .await;
        let mut interim = vec![0u8; "HTTP/1.1 100 Continue\r\n\r\n".len()];
        tokio::time::timeout(Duration::from_millis(1000), tls.read_exact(&mut interim))
            .await
            .expect("100 Continue at once, before the handler reads")
            .unwrap();
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        write_all(&mut tls, b"hello").await;
        let res = read_response(&mut tls).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        if addr == srv.addr {
            assert!(
                res.ends_with("\r\n\r\n5"),
                "the handler read the 5 bytes: {res}"
            );
        }
    }
}

/// Answers at once, without reading the request body.
async fn early_answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"no thanks\n"))))
}

/// A handler that answers without reading a body still arriving: hyper then closes, and the
/// response says so. One that read the whole body keeps the connection.
#[tokio::test]
async fn an_unread_body_still_arriving_gets_connection_close() {
    let srv = start(|b| b, tower::service_fn(early_answer)).await;
    let mut tls = srv.tls().await;
    write_all(
        &mut tls,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc",
    )
    .await;
    let (res, closed) = read_quiet(&mut tls, Duration::from_secs(3)).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert_eq!(head_field(&res, "connection"), Some("close"), "{res}");
    assert_eq!(head_field(&res, "keep-alive"), None, "{res}");
    assert!(closed, "and the connection closes");

    let srv = start(|b| b, tower::service_fn(echo_len)).await;
    let mut tls = srv.tls().await;
    for _ in 0..2 {
        write_all(
            &mut tls,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        )
        .await;
        let res = read_response(&mut tls).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        assert_eq!(head_field(&res, "connection"), None, "{res}");
        assert!(res.ends_with("3"), "{res}");
    }
}

/// hyper keeps an upgrade pending after a normal answer to a request that asked for one; the
/// idle release must not hand the stream to it: the connection serves on and ends cleanly.
#[tokio::test]
async fn a_normally_answered_upgrade_request_keeps_its_connection_across_idle_periods() {
    let srv = start_hello(|b| {
        b.release_idle_buffers_after(Duration::from_millis(30))
            .keep_alive_timeout(Duration::from_millis(600))
            .keep_alive_timeout_buffer(Duration::ZERO)
    })
    .await;
    let mut tls = srv.tls().await;
    write_all(
        &mut tls,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    let res = read_response(&mut tls).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    // Several release periods go by; the connection is still there and serves.
    let (early, closed) = read_quiet(&mut tls, Duration::from_millis(300)).await;
    assert!(!closed && early.is_empty(), "{early}");
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut tls).await;
    assert!(res.ends_with("hello world\n"), "{res}");
    // The keep-alive timeout ends it with close_notify (rustls reads a clean end of stream).
    let mut buf = [0u8; 64];
    let end = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .expect("closed at the keep-alive timeout");
    assert_eq!(end.unwrap(), 0, "a clean end after close_notify");
}

/// The start of a second request sent with the first (pipelined) and never finished: its
/// headers timeout counts from its first byte, with the idle release on or off.
#[tokio::test]
async fn a_pipelined_partial_request_times_out_from_its_first_byte() {
    for release in [Duration::from_millis(500), Duration::ZERO] {
        let srv = start_hello(|b| {
            b.headers_timeout(Duration::from_millis(200))
                .release_idle_buffers_after(release)
        })
        .await;
        let mut tls = srv.tls().await;
        let sent = Instant::now();
        write_all(
            &mut tls,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Slow:",
        )
        .await;
        let res = read_response(&mut tls).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        let (rest, closed) = read_quiet(&mut tls, Duration::from_secs(8)).await;
        let elapsed = sent.elapsed();
        assert_eq!(
            rest, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n",
            "release {release:?}"
        );
        assert!(closed);
        assert!(
            elapsed >= Duration::from_millis(150) && elapsed < Duration::from_millis(600),
            "release {release:?}: 408 after {elapsed:?}, want ~200 ms"
        );
    }
}

/// Node lets the keep-alive timer govern an idle socket: `timeout` (inactivity) does not close
/// a keep-alive connection between requests before `keep_alive_timeout`.
#[tokio::test]
async fn the_inactivity_timeout_waits_for_keep_alive_on_idle_connections() {
    let srv = start_hello(|b| {
        b.inactivity_timeout(Duration::from_millis(150))
            .keep_alive_timeout(Duration::from_millis(800))
            .keep_alive_timeout_buffer(Duration::ZERO)
    })
    .await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let res = read_response(&mut tls).await;
    let done = Instant::now();
    assert!(res.ends_with("hello world\n"), "{res}");
    let (_, closed) = read_quiet(&mut tls, Duration::from_secs(5)).await;
    assert!(closed);
    let idle = done.elapsed();
    assert!(
        idle >= Duration::from_millis(600) && idle < Duration::from_millis(2500),
        "closed after {idle:?}, want ~800 ms (keep-alive), not ~150 ms (inactivity)"
    );
    // While a request is in flight, the inactivity timeout applies as before.
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    let started = Instant::now();
    let (rest, closed) = read_quiet(&mut tls, Duration::from_secs(5)).await;
    assert!(closed && rest.is_empty(), "dropped without a byte: {rest}");
    assert!(started.elapsed() < Duration::from_millis(600));
}

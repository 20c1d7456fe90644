//! Idle HTTP/1 connections release hyper's connection state (its read and write buffers) and
//! keep serving, timing out and closing as before (`release_idle_buffers_after`).

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::support::*;

const RELEASE: Duration = Duration::from_millis(30);
const RELEASED: &str = "releasing the HTTP/1 connection state";

#[tokio::test]
async fn an_idle_connection_releases_its_state_and_serves_the_next_request() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b.release_idle_buffers_after(RELEASE)).await;
    let mut tls = srv.tls().await;
    for round in 1..=3 {
        write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let res = read_response(&mut tls).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        assert!(
            res.to_ascii_lowercase().contains("connection: keep-alive"),
            "{res}"
        );
        assert!(res.ends_with("hello world\n"), "{res}");
        assert!(
            eventually(Duration::from_secs(5), || trace.count(RELEASED) >= round).await,
            "released after {RELEASE:?} idle"
        );
        assert_eq!(trace.count(RELEASED), round, "one release per idle period");
        let counts = srv.handle.connections();
        assert_eq!((counts.idle, counts.total()), (1, 1), "{counts:?}");
    }
}

#[tokio::test]
async fn zero_keeps_the_state_for_the_connections_life() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b.release_idle_buffers_after(Duration::ZERO)).await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 200"));
    // A check that nothing happens: idle for longer than any release delay would need.
    tokio::time::sleep(Duration::from_millis(700)).await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 200"));
    assert_eq!(trace.count(RELEASED), 0);
}

#[tokio::test]
async fn a_partial_pipelined_request_survives_the_release() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b.release_idle_buffers_after(RELEASE)).await;
    let mut tls = srv.tls().await;
    // The first request and the start of the second in one write: hyper holds the start of
    // the second, unparsed, when the connection is released.
    write_all(
        &mut tls,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHo",
    )
    .await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 200"));
    assert!(eventually(Duration::from_secs(5), || trace.count(RELEASED) == 1).await);
    write_all(&mut tls, b"st: x\r\n\r\n").await;
    let res = read_response(&mut tls).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    // The rest of the second request began a request: it is not released again while
    // incomplete.
    assert_eq!(trace.count(RELEASED), 1);
}

#[tokio::test]
async fn a_released_connection_times_out_with_close_notify() {
    let srv = start_hello(|b| {
        b.release_idle_buffers_after(RELEASE)
            .keep_alive_timeout(Duration::from_millis(300))
            .keep_alive_timeout_buffer(Duration::from_millis(200))
    })
    .await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 200"));
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    // Ok(0) is a clean end: close_notify, then FIN (an EOF without close_notify is an error
    // in tokio-rustls).
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .expect("closed in time");
    assert_eq!(read.unwrap(), 0);
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(
        eventually(Duration::from_secs(2), || srv.handle.connections().total()
            == 0)
        .await
    );
}

#[tokio::test]
async fn close_ends_released_idle_connections() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b.release_idle_buffers_after(RELEASE)).await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 200"));
    assert!(eventually(Duration::from_secs(5), || trace.count(RELEASED) == 1).await);
    let handle = srv.handle.clone();
    let closing = tokio::spawn(async move { handle.close().await });
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf))
        .await
        .expect("closed at once");
    assert_eq!(read.unwrap(), 0, "close_notify, no bytes");
    tokio::time::timeout(Duration::from_secs(2), closing)
        .await
        .expect("close() returns")
        .unwrap();
    srv.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn close_all_connections_drops_released_connections() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b.release_idle_buffers_after(RELEASE)).await;
    let mut tls = srv.tls().await;
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut tls).await.starts_with("HTTP/1.1 200"));
    assert!(eventually(Duration::from_secs(5), || trace.count(RELEASED) == 1).await);
    srv.handle.close_all_connections();
    let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(2)).await;
    assert!(bytes.is_empty() && closed);
    assert!(
        eventually(Duration::from_secs(2), || srv.handle.connections().total()
            == 0)
        .await
    );
}

#[tokio::test]
async fn curl_keep_alive_requests_across_releases() {
    let srv = start_hello(|b| b.release_idle_buffers_after(Duration::from_millis(10))).await;
    // curl reuses one connection for the URLs of one command; --rate spaces the requests
    // beyond the release delay.
    let url = srv.url("/");
    let out = srv
        .curl(&[
            "--http1.1",
            "--rate",
            "10/s",
            "-w",
            "%{num_connects} ",
            &url,
            &url,
            &url,
        ])
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("hello world").count(), 3, "{text}");
    // One new connection for the first transfer, none after.
    assert!(
        text.contains("hello world\n1 hello world\n0 hello world\n0"),
        "{text}"
    );
}

#[tokio::test]
async fn http2_connections_keep_their_state() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b.release_idle_buffers_after(Duration::from_millis(10))).await;
    let url = srv.url("/");
    let out = srv
        .curl(&[
            "--http2",
            "--rate",
            "10/s",
            "-w",
            "%{http_version}:%{num_connects} ",
            "-o",
            "/dev/null",
            &url,
            "-o",
            "/dev/null",
            &url,
        ])
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        "2:1 2:0",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(trace.count(RELEASED), 0);
}

/// Answers `Upgrade: echo` with 101 and echoes the upgraded stream; anything else with 200.
async fn upgrade_echo(
    mut req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, std::convert::Infallible> {
    use http_body_util::Full;

    if req.headers().get(http::header::UPGRADE).is_none() {
        return Ok(http::Response::new(Full::new(bytes::Bytes::from_static(
            b"plain",
        ))));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let upgraded = on_upgrade.await.expect("upgraded");
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut res = http::Response::new(Full::new(bytes::Bytes::new()));
    *res.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    res.headers_mut()
        .insert(http::header::CONNECTION, "upgrade".parse().unwrap());
    res.headers_mut()
        .insert(http::header::UPGRADE, "echo".parse().unwrap());
    Ok(res)
}

#[tokio::test]
async fn an_upgraded_connection_is_never_released() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start(
        |b| b.release_idle_buffers_after(RELEASE),
        tower::service_fn(upgrade_echo),
    )
    .await;
    let mut tls = srv.tls().await;
    write_all(
        &mut tls,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await;
    let head = read_response(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Idle past the release delay (the scenario, not a wait for state): the stream belongs to
    // the upgrade, which still echoes.
    tokio::time::sleep(RELEASE * 5).await;
    write_all(&mut tls, b"ping").await;
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut echo))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&echo, b"ping");
    assert_eq!(trace.count(RELEASED), 0);
}

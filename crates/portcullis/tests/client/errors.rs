//! Failures with Node's codes: refused, handshake timeout, request timeout, abort.

use std::time::{Duration, Instant};

use portcullis::client::{AbortController, Agent};
use tokio::net::TcpListener;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_econnrefused() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = Agent::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.code(), Some("ECONNREFUSED"), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("connect ECONNREFUSED 127.0.0.1:{port}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_server_is_err_tls_handshake_timeout() {
    // Accepts TCP and never answers the ClientHello.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let pki = Pki::new();
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = agent
        .get(&format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.code(), Some("ERR_TLS_HANDSHAKE_TIMEOUT"), "{err:?}");
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(agent.sockets(), 0);
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_is_etimedout_after_the_request_timeout() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let agent = Agent::builder()
        .no_proxy()
        .keep_alive(true)
        .tls(pki.trust())
        .build()
        .unwrap();
    let started = Instant::now();
    let err = agent
        .get(&server.url("/sleep/1000"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.code(), Some("ETIMEDOUT"), "{err:?}");
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The socket that timed out is closed, not pooled with a response still coming (the
    // server notices once its handler answers).
    assert_eq!(agent.sockets(), 0);
    assert!(eventually(Duration::from_secs(3), || server.open() == 0).await);
    // A quick handler within the same timeout is fine.
    let res = agent
        .get(&server.url("/"))
        .timeout(Duration::from_millis(2000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_controller_cancels_with_abort_err() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap();

    // Aborted mid-request.
    let controller = AbortController::new();
    let signal = controller.signal();
    let handle = server.handle.clone();
    let abort = tokio::spawn(async move {
        // Mid-request: once the server is running the handler.
        eventually(Duration::from_secs(5), || handle.connections().active == 1).await;
        controller.abort();
    });
    let started = Instant::now();
    let err = agent
        .get(&server.url("/sleep/3000"))
        .signal(signal.clone())
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    abort.await.unwrap();
    assert!(err.is_aborted(), "{err:?}");
    assert_eq!(err.code(), Some("ABORT_ERR"), "{err:?}");
    assert_eq!(err.to_string(), "The operation was aborted");
    // Aborted while the 3 s handler runs, not after it.
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(signal.is_aborted());
    assert_eq!(agent.sockets(), 0);

    // Already aborted: fails at once, nothing is sent.
    let accepts = server.accepts();
    let err = agent
        .get(&server.url("/"))
        .signal(signal)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ABORT_ERR"));
    assert_eq!(server.accepts(), accepts);
}

/// A TCP server that runs `behave` on each connection.
async fn raw_server<F, Fut>(behave: F) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(behave(socket));
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_http_server_is_eproto() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // What a plain HTTP server answers to a ClientHello.
    let (addr, task) = raw_server(|mut socket| async move {
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        let _ = socket
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
    })
    .await;
    let pki = Pki::new();
    let err = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap()
        .get(&format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_tls(), "{err:?}");
    assert_eq!(err.code(), Some("EPROTO"), "{err:?}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_hanging_up_during_the_handshake_is_econnreset() {
    use tokio::io::AsyncReadExt;
    let (addr, task) = raw_server(|mut socket| async move {
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        drop(socket);
    })
    .await;
    let pki = Pki::new();
    let err = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap()
        .get(&format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_tls(), "{err:?}");
    assert_eq!(err.code(), Some("ECONNRESET"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Client network socket disconnected before secure TLS connection was established"
    );
    task.abort();
}

//! `portcullis serve --proxy`: WebSockets over HTTP/1.1 and HTTP/2, Host, timeouts, routes,
//! several backends, server-sent events, slow clients, streaming uploads. Real peers: curl,
//! tungstenite (client and server), hyper's HTTP/2 client, raw TLS clients.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use portcullis_test_support::cli as support;

use support::*;

/// Polls `check` until it holds or 10 s pass.
fn eventually(what: &str, check: impl FnMut() -> bool) {
    assert!(
        support::eventually_blocking(Duration::from_secs(10), check),
        "timed out waiting for {what}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A TLS client of `server` trusting its development CA, offering `alpn`.
fn tls_connector(server: &Portcullis, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(server.ca()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// A WebSocket backend (tungstenite): greets each client with the Host it saw, then echoes.
fn websocket_backend(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut host = String::new();
                #[allow(clippy::result_large_err)] // tungstenite's callback signature
                let callback =
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                        host = req
                            .headers()
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        Ok(res)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let _ = ws
                    .send(Message::text(format!("welcome, host {host}")))
                    .await;
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(text) = msg {
                        let _ = ws.send(Message::text(format!("echo: {text}"))).await;
                    }
                }
            });
        }
    });
    addr
}

async fn chat<S>(ws: &mut WebSocketStream<S>, port: u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let greeting = ws.next().await.unwrap().unwrap();
    assert_eq!(
        greeting.into_text().unwrap().as_str(),
        format!("welcome, host localhost:{port}")
    );
    for word in ["one", "two"] {
        ws.send(Message::text(word)).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("echo: {word}"));
    }
    ws.close(None).await.unwrap();
}

#[test]
fn websockets_pass_through_over_http1_upgrade_and_http2_extended_connect() {
    let rt = runtime();
    let backend = websocket_backend(&rt);
    let home = tempfile::tempdir().unwrap();
    let route = format!("/ws=http://{backend}");
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", route.as_str()],
    );
    let port = server.port();

    // HTTP/1.1: Upgrade: websocket.
    let h1 = tls_connector(&server, b"http/1.1");
    rt.block_on(async {
        let tls = tls_connect(&h1, port).await;
        let url = format!("wss://localhost:{port}/ws/chat");
        let (mut ws, res) = tokio_tungstenite::client_async(url, tls).await.unwrap();
        assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
        chat(&mut ws, port).await;
    });

    // HTTP/2: CONNECT with :protocol websocket (RFC 8441) on a multiplexed connection.
    let h2 = tls_connector(&server, b"h2");
    rt.block_on(async {
        let tls = tls_connect(&h2, port).await;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        // The server's SETTINGS (ENABLE_CONNECT_PROTOCOL) arrive just after the handshake.
        let deadline = Instant::now() + Duration::from_secs(10);
        let res = loop {
            let mut req = Request::connect(format!("https://localhost:{port}/ws/chat"))
                .header("sec-websocket-version", "13")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap();
            req.extensions_mut()
                .insert(hyper::ext::Protocol::from_static("websocket"));
            sender.ready().await.unwrap();
            match sender.send_request(req).await {
                Ok(res) => break res,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("extended CONNECT not yet allowed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("extended CONNECT: {e}"),
            }
        };
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("sec-websocket-accept").is_none());
        let upgraded = hyper::upgrade::on(res).await.unwrap();
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
        chat(&mut ws, port).await;
    });
}

#[test]
fn a_browser_style_websocket_client_gets_through() {
    // Node's WebSocket (undici, the WHATWG API browsers implement) over HTTP/1.1.
    let rt = runtime();
    let backend = websocket_backend(&rt);
    let home = tempfile::tempdir().unwrap();
    let route = format!("/ws=http://{backend}");
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", route.as_str()],
    );
    let script = r#"
        const ws = new WebSocket(process.argv[1]);
        const seen = [];
        ws.onmessage = (e) => {
            seen.push(e.data);
            if (seen.length === 1) ws.send("ping");
            else { console.log(JSON.stringify(seen)); ws.close(); }
        };
        ws.onerror = (e) => { console.error("error", e.message); process.exit(1); };
        setTimeout(() => { console.error("timed out"); process.exit(1); }, 10000).unref();
    "#;
    let out = Command::new("node")
        .args(["--no-warnings", "--experimental-websocket", "-e", script])
        .arg(format!("wss://localhost:{}/ws/live", server.port()))
        .env("NODE_EXTRA_CA_CERTS", server.ca())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen,
        [
            format!("welcome, host localhost:{}", server.port()),
            "echo: ping".to_owned()
        ]
    );
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let seen = serde_json::json!({
        "uri": req.uri().to_string(),
        "host": req.headers().get("host").and_then(|h| h.to_str().ok()),
    });
    Ok(Response::new(Full::new(Bytes::from(seen.to_string()))))
}

#[test]
fn the_backend_sees_the_clients_host_unless_told_otherwise() {
    let backend = Backend::start(echo);
    let home = tempfile::tempdir().unwrap();
    let url = format!("http://{}", backend.addr);
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", url.as_str()],
    );
    let port = server.port();
    for version in ["--http1.1", "--http2"] {
        let seen = server.get("/x", &[version]).json();
        assert_eq!(seen["host"], format!("localhost:{port}"), "{version}");
    }
    let rewritten = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--proxy",
            url.as_str(),
            "--proxy-host-header",
            "backend",
        ],
    );
    let seen = rewritten.get("/x", &[]).json();
    assert_eq!(seen["host"], backend.addr.to_string());
}

#[test]
fn a_backend_without_a_response_head_gets_504_after_proxy_timeout() {
    // Connections complete in the kernel's backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--proxy",
            url.as_str(),
            "--proxy-timeout",
            "500ms",
        ],
    );
    let start = Instant::now();
    let reply = server.get("/", &[]);
    let took = start.elapsed();
    assert_eq!(reply.status, 504);
    assert!(reply.text().contains("Gateway Timeout"), "{}", reply.text());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

async fn refuses(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"backend says no\n")));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut()
        .insert("connection", "close".parse().unwrap());
    Ok(res)
}

#[test]
fn backend_statuses_bodies_and_connection_close_pass_through() {
    let backend = Backend::start(refuses);
    let home = tempfile::tempdir().unwrap();
    let url = format!("http://{}", backend.addr);
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", url.as_str()],
    );
    let reply = server.get("/", &["--http1.1"]);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.text(), "backend says no\n");
    assert_eq!(reply.header("connection"), Some("close"));
    // curl opens a second connection for the second URL: the first was closed.
    let url = format!("https://localhost:{}/", server.port());
    let out = server.curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}:%{num_connects} ",
        &url,
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "503:1 503:1 ");
}

#[test]
fn routes_send_prefixes_to_backends_and_other_paths_to_dir() {
    let backend = Backend::start(echo);
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<h1>app</h1>\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let keep = format!("/api=http://{}", backend.addr);
    let strip = format!("/v2=http://{}/", backend.addr);
    let dir = site.path().to_str().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            dir,
            "--proxy",
            keep.as_str(),
            "--proxy",
            strip.as_str(),
        ],
    );
    let page = server.get("/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.text(), "<h1>app</h1>\n");
    assert_eq!(
        server.get("/api/users?id=1", &[]).json()["uri"],
        "/api/users?id=1"
    );
    assert_eq!(server.get("/api", &[]).json()["uri"], "/api");
    assert_eq!(server.get("/v2/items?x", &[]).json()["uri"], "/items?x");
    // Not under /api: a file, missing.
    assert_eq!(server.get("/apix", &[]).status, 404);

    // DIR and a proxy for every path cannot both serve /.
    let url = format!("http://{}", backend.addr);
    let out = run(home.path(), &["serve", dir, "--proxy", url.as_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--proxy /api=URL"), "{stderr}");
}

static SERVED_BY_A: AtomicUsize = AtomicUsize::new(0);
static SERVED_BY_B: AtomicUsize = AtomicUsize::new(0);

async fn backend_a(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    SERVED_BY_A.fetch_add(1, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from_static(b"A"))))
}

async fn backend_b(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    SERVED_BY_B.fetch_add(1, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from_static(b"B"))))
}

#[test]
fn several_backends_take_turns_and_a_dead_one_is_skipped() {
    let (a, b) = (Backend::start(backend_a), Backend::start(backend_b));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let route = format!("http://{},http://{dead},http://{}", a.addr, b.addr);
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", route.as_str()],
    );
    let url = format!("https://localhost:{}/", server.port());
    let mut args = vec!["-w", "%{http_code} "];
    for _ in 0..9 {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let out = server.curl(&args);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 ".repeat(9));
    let (by_a, by_b) = (
        SERVED_BY_A.load(Ordering::SeqCst),
        SERVED_BY_B.load(Ordering::SeqCst),
    );
    assert_eq!(by_a + by_b, 9);
    assert!(by_a >= 3 && by_b >= 3, "A served {by_a}, B {by_b}");
    // Refused once, then rested: tried no more during these requests.
    assert_eq!(
        server.log().matches("backend failed").count(),
        1,
        "{}",
        server.log()
    );
}

#[test]
fn server_sent_events_arrive_as_the_backend_sends_them() {
    let rt = runtime();
    let (release, released) = tokio::sync::watch::channel(false);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let released = released.clone();
            let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                let mut released = released.clone();
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                tokio::spawn(async move {
                    let _ = tx.send(Ok(Frame::data(Bytes::from("data: one\n\n")))).await;
                    let _ = released.wait_for(|r| *r).await;
                    let _ = tx.send(Ok(Frame::data(Bytes::from("data: two\n\n")))).await;
                });
                let body = StreamBody::new(tokio_stream(rx));
                let mut res = Response::new(body);
                res.headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                async move { Ok::<_, Infallible>(res) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let home = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}");
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", url.as_str()],
    );
    for version in ["--http1.1", "--http2"] {
        release.send_replace(false);
        let mut curl = Command::new("curl")
            .args(["-sS", "-N", version, "--max-time", "10", "--cacert"])
            .arg(server.ca())
            .args([
                "--resolve",
                &format!("localhost:{}:127.0.0.1", server.port()),
            ])
            .arg(format!("https://localhost:{}/events", server.port()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = curl.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The first event arrives while the backend still holds the second.
        let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first, "data: one", "{version}");
        release.send_replace(true);
        let rest: Vec<String> = rx.iter().collect();
        assert!(
            rest.contains(&"data: two".to_owned()),
            "{version}: {rest:?}"
        );
        assert!(curl.wait().unwrap().success());
    }
}

/// A stream of what `rx` receives.
fn tokio_stream<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

static REQUESTS_SEEN: AtomicUsize = AtomicUsize::new(0);

/// Counts requests as their heads arrive, then reads the body to its end.
async fn counting(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    REQUESTS_SEEN.fetch_add(1, Ordering::SeqCst);
    let read = req.into_body().collect().await.map(|b| b.to_bytes().len());
    Ok(Response::new(Full::new(Bytes::from(format!("{read:?}")))))
}

/// Opens `n` TLS connections that each send a POST head and 10 of its 100,000 body bytes.
fn slow_posts(
    rt: &tokio::runtime::Runtime,
    server: &Portcullis,
    n: usize,
) -> Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector = tls_connector(server, b"http/1.1");
    let port = server.port();
    rt.block_on(async {
        let mut open = Vec::with_capacity(n);
        for _ in 0..n {
            let mut tls = tls_connect(&connector, port).await;
            tls.write_all(
                b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n0123456789",
            )
            .await
            .unwrap();
            tls.flush().await.unwrap();
            open.push(tls);
        }
        open
    })
}

#[test]
fn slow_request_bodies_never_reach_the_backend_and_the_cap_bounds_connections() {
    let backend = Backend::start(counting);
    let url = format!("http://{}", backend.addr);
    let home = tempfile::tempdir().unwrap();
    let rt = runtime();

    // Bodies are read ahead (64 KiB by default): 1,500 slow clients hold no backend connection.
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", url.as_str()],
    );
    let attackers = slow_posts(&rt, &server, 1500);
    let legit = server.get("/upload", &["--data-binary", "hello"]);
    assert_eq!(legit.status, 200);
    assert_eq!(legit.text(), "Ok(5)");
    assert_eq!(REQUESTS_SEEN.load(Ordering::SeqCst), 1);
    drop(attackers);
    let legit = server.get("/upload", &["--data-binary", "again"]);
    assert_eq!(legit.status, 200);
    assert_eq!(
        REQUESTS_SEEN.load(Ordering::SeqCst),
        2,
        "truncated bodies were forwarded"
    );
    drop(server);

    // Streaming from the first byte: each slow client holds a backend connection, up to the cap.
    REQUESTS_SEEN.store(0, Ordering::SeqCst);
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--proxy",
            url.as_str(),
            "--proxy-buffer-request",
            "0",
            "--proxy-max-connections",
            "10",
            "--proxy-timeout",
            "1s",
        ],
    );
    let attackers = slow_posts(&rt, &server, 50);
    eventually("10 backend requests", || {
        REQUESTS_SEEN.load(Ordering::SeqCst) == 10
    });
    let turned_away = server.get("/upload", &["--data-binary", "hello"]);
    assert_eq!(turned_away.status, 503);
    assert_eq!(REQUESTS_SEEN.load(Ordering::SeqCst), 10);
    drop(attackers);
}

static BYTES_RECEIVED: AtomicUsize = AtomicUsize::new(0);

/// Reads the body frame by frame, keeping only the count.
async fn sink(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut body = req.into_body();
    let mut n = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            n += data.len();
        }
    }
    BYTES_RECEIVED.store(n, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from(n.to_string()))))
}

/// The peak resident memory of `pid` so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_large_upload_streams_through_in_bounded_memory() {
    const SIZE: usize = 1 << 30;
    let backend = Backend::start(sink);
    let url = format!("http://{}", backend.addr);
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", url.as_str()],
    );
    assert_eq!(server.get("/warm-up", &["--data-binary", "x"]).status, 200);
    let before = peak_rss(server.child.id());
    let mut curl = Command::new("curl")
        .args([
            "-sS",
            "--http1.1",
            "--max-time",
            "120",
            "-T",
            "-",
            "--cacert",
        ])
        .arg(server.ca())
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.port()),
        ])
        .arg(format!("https://localhost:{}/upload", server.port()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = curl.stdin.take().unwrap();
    let block = vec![7u8; 1 << 20];
    for _ in 0..SIZE / block.len() {
        stdin.write_all(&block).unwrap();
    }
    drop(stdin);
    let out = curl.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), SIZE.to_string());
    assert_eq!(BYTES_RECEIVED.load(Ordering::SeqCst), SIZE);
    let grew = peak_rss(server.child.id()).saturating_sub(before);
    eprintln!("peak RSS grew by {grew} bytes for a {SIZE}-byte upload");
    assert!(
        grew < 8 << 20,
        "peak RSS grew by {grew} bytes for a {SIZE}-byte upload"
    );
}

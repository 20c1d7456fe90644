//! HTTPS through an HTTP CONNECT proxy started in the test, with Basic credentials, and the
//! NO_PROXY bypass.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use portcullis::client::{Agent, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// A tiny CONNECT proxy: reads the request head, checks `Proxy-Authorization` when told to,
/// answers `200 Connection established` and copies bytes both ways. Records each CONNECT
/// target it served.
struct ConnectProxy {
    addr: SocketAddr,
    tunnels: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConnectProxy {
    async fn start(authorization: Option<&'static str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = tunnel(client, authorization, seen).await;
                });
            }
        });
        Self {
            addr,
            tunnels,
            task,
        }
    }

    fn url(&self, userinfo: &str) -> String {
        format!("http://{userinfo}{}", self.addr)
    }

    fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().unwrap().clone()
    }
}

async fn tunnel(
    mut client: TcpStream,
    authorization: Option<&str>,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 8192 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next(), parts.next().unwrap_or_default().to_owned());
    if method != Some("CONNECT") {
        client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    if let Some(expected) = authorization {
        let given = lines.find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_owned())
        });
        if given.as_deref() != Some(expected) {
            client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
    }
    // The test resolves every name to loopback.
    let port = target.rsplit_once(':').map(|(_, p)| p).unwrap_or("443");
    let mut upstream = TcpStream::connect(format!("127.0.0.1:{port}")).await?;
    seen.lock().unwrap().push(target);
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_through_a_connect_proxy_with_basic_credentials() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    // "user:pass" in base64.
    let proxy = ConnectProxy::start(Some("Basic dXNlcjpwYXNz")).await;
    let agent = Agent::builder()
        .proxy(Proxy::new(&proxy.url("user:pass@")).unwrap())
        .keep_alive(true)
        .tls(pki.trust())
        .build()
        .unwrap();
    for i in 0..2 {
        let res = agent.get(&server.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        // TLS runs end to end inside the tunnel: SNI and the certificate are the server's.
        assert_eq!(res.headers()["x-tls-sni"], "localhost");
        assert_eq!(res.reused_socket(), i > 0);
        assert_eq!(res.text().await.unwrap(), "hello world\n");
    }
    let port = server.addr.port();
    assert_eq!(proxy.tunnels(), [format!("localhost:{port}")]);
    assert_eq!(server.accepts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proxy_credentials_are_refused() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let proxy = ConnectProxy::start(Some("Basic dXNlcjpwYXNz")).await;
    for userinfo in ["user:wrong@", ""] {
        let err = Agent::builder()
            .proxy(Proxy::new(&proxy.url(userinfo)).unwrap())
            .tls(pki.trust())
            .build()
            .unwrap()
            .get(&server.url("/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert_eq!(err.code(), Some("ERR_PROXY_TUNNEL"), "{err:?}");
        assert!(err.to_string().contains("407"), "{err}");
    }
    assert!(proxy.tunnels().is_empty());
    assert_eq!(server.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_hosts_bypass_the_proxy() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let proxy = ConnectProxy::start(None).await;
    let agent = Agent::builder()
        .proxy(Proxy::new(&proxy.url("")).unwrap().no_proxy(["localhost"]))
        .tls(pki.trust())
        .build()
        .unwrap();
    // localhost: direct.
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.remote_addr(), server.addr);
    res.text().await.unwrap();
    assert!(proxy.tunnels().is_empty());
    // 127.0.0.1 is not listed: through the proxy.
    let res = agent.get(&server.ip_url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.remote_addr(), proxy.addr);
    res.text().await.unwrap();
    assert_eq!(
        proxy.tunnels(),
        [format!("127.0.0.1:{}", server.addr.port())]
    );
    assert_eq!(server.accepts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_never_answers_connect_times_out() {
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
        .proxy(Proxy::new(&format!("http://{addr}")).unwrap())
        .connect_timeout(std::time::Duration::from_millis(300))
        .tls(pki.trust())
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = agent.get("https://localhost:9/").send().await.unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.code(), Some("ETIMEDOUT"), "{err:?}");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    assert_eq!(agent.sockets(), 0);
    hold.abort();
}

//! Support for the server tests: a CA and leaf made at test time, a server on a loopback port, raw TLS
//! clients, and helpers to run real peers (curl, openssl, node).

pub use crate::common::*;

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use portcullis::cert::LocalCa;
use portcullis::{ConnectionInfo, Identity, Server, ServerBuilder, ServerHandle};
use rustls::pki_types::ServerName;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A test PKI: a CA and a localhost/127.0.0.1/::1 leaf, on disk.
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path()).unwrap();
        let leaf = ca.localhost().unwrap();
        Self {
            ca: ca.cert_path(),
            cert: leaf.cert_path,
            key: leaf.key_path,
            dir,
        }
    }

    pub fn identity(&self) -> Identity {
        Identity::from_pem_files(&self.cert, &self.key).unwrap()
    }

    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&self.ca).unwrap();
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(Result::unwrap)
        .collect()
}

/// A hello-world service that also reports a few ConnectionInfo fields in headers.
pub async fn hello(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let info = req.extensions().get::<ConnectionInfo>().cloned();
    let mut res = Response::new(Full::new(Bytes::from_static(b"hello world\n")));
    if let Some(info) = info {
        let h = res.headers_mut();
        h.insert("x-peer", info.peer_addr().to_string().parse().unwrap());
        tls_headers(h, &info);
        if let Some(tls) = info.tls() {
            h.insert("x-tls-cipher", tls.cipher_suite().parse().unwrap());
        }
        if let Some(proxy) = info.proxy() {
            let tlvs: Vec<String> = proxy
                .tlvs()
                .map(|(kind, value)| format!("{kind}={}", String::from_utf8_lossy(value)))
                .collect();
            let summary = format!(
                "v{} alpn={} authority={} unique-id={} tlvs={}",
                proxy.version(),
                String::from_utf8_lossy(proxy.alpn().unwrap_or_default()),
                proxy.authority().unwrap_or("-"),
                String::from_utf8_lossy(proxy.unique_id().unwrap_or_default()),
                tlvs.join(";")
            );
            h.insert("x-proxy", summary.parse().unwrap());
        }
    }
    Ok(res)
}

/// Reads the whole body, then answers with its length.
pub async fn echo_len(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let len = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => return Ok(Response::new(Full::new(Bytes::from_static(b"body error")))),
    };
    Ok(Response::new(Full::new(Bytes::from(format!("{len}")))))
}

/// A running test server.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub server: Server,
    pub pki: Pki,
    pub task: tokio::task::JoinHandle<portcullis::Result<()>>,
}

/// Starts a TLS server on 127.0.0.1:0 with `configure` applied to the builder and `service`.
pub async fn start<S, B>(
    configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    service: S,
) -> Running
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let pki = Pki::new();
    let server = configure(Server::builder().identity(pki.identity()))
        .build()
        .unwrap();
    let listener = server.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr();
    let handle = server.handle();
    let s = server.clone();
    let task = tokio::spawn(async move { s.serve(listener, service).await });
    Running {
        addr,
        handle,
        server,
        pki,
        task,
    }
}

/// Starts the hello service with default options changed by `configure`.
pub async fn start_hello(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Running {
    start(configure, tower::service_fn(hello)).await
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A raw TLS connection (SNI localhost), ALPN http/1.1.
    pub async fn tls(&self) -> TlsStream<TcpStream> {
        self.tls_alpn(&[b"http/1.1"]).await
    }

    pub async fn tls_alpn(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.pki.client_config(alpn));
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// An HTTP/1.1 TLS handshake as `localhost` over `tcp`, a connection the test has already
    /// used (a PROXY header written, a pause); the handshake's result, for tests of refusals.
    pub async fn tls_over(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        tokio_rustls::TlsConnector::from(self.pki.client_config(&[b"http/1.1"]))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }

    /// Runs curl against the server with the test CA (without blocking the runtime).
    pub async fn curl(&self, args: &[&str]) -> Output {
        let port = self.addr.port().to_string();
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&self.pki.ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(args);
        cmd.output().await.expect("curl runs")
    }
}

/// Reads until EOF or `limit` passes; returns the bytes and whether EOF was seen.
pub async fn read_until_close<R: AsyncReadExt + Unpin>(
    r: &mut R,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Reads one HTTP/1.1 response head and a Content-Length body (enough for small tests).
pub async fn read_response<R: AsyncReadExt + Unpin>(r: &mut R) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), r.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        if n == 0 {
            break;
        }
        out.push(buf[0]);
    }
    let head = String::from_utf8_lossy(&out).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

pub async fn write_all<W: AsyncWriteExt + Unpin>(w: &mut W, data: &[u8]) {
    w.write_all(data).await.unwrap();
    w.flush().await.unwrap();
}

/// The server's trace output, captured for one test. `#[tokio::test]` runs the server's tasks on
/// the test's thread, so a thread-local default subscriber sees them all.
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<u8>>>);

impl Trace {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .matches(needle)
            .count()
    }
}

impl Write for Trace {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Trace {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

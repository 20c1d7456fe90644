//! Support for the client tests: a PKI made at test time (rcgen), a portcullis server that
//! reports what it sees of each connection in headers, and real servers to talk to (nginx,
//! Node, Python, `openssl s_server`), each killed when dropped.

pub use crate::common::*;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::tls::ClientTlsOptions;
use portcullis::{ConnectionInfo, Identity, Server, ServerBuilder, ServerHandle};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use tempfile::TempDir;
use time::OffsetDateTime;

/// A certificate authority (root or intermediate) made at test time.
pub struct Ca {
    pub cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// A self-signed root named `cn`.
    pub fn root(cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params(cn).self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// An intermediate CA named `cn`, signed by `self`.
    pub fn intermediate(&self, cn: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params(cn)
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        Self { cert, key }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Client options trusting only this CA.
    pub fn trust(&self) -> ClientTlsOptions {
        ClientTlsOptions::new().ca([self.der()])
    }

    /// A server leaf signed by this CA.
    pub fn leaf(&self, spec: Leaf) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = spec
            .params()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        Issued { cert, key }
    }

    /// A CRL from this CA revoking `serial`.
    pub fn crl_revoking(&self, serial: u64) -> CertificateRevocationListDer<'static> {
        let now = OffsetDateTime::now_utc();
        CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: now - time::Duration::minutes(5),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)
        .unwrap()
        .der()
        .clone()
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// What a server leaf looks like.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cn: String,
    pub dns: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub serial: u64,
    /// Validity relative to now.
    pub not_before: time::Duration,
    pub not_after: time::Duration,
    /// A client certificate (clientAuth EKU) rather than a server one.
    pub client: bool,
    /// Shaped like `openssl req -x509` makes it: `basicConstraints` critical `CA:TRUE`, no key
    /// usage, no extended key usage.
    pub tutorial: bool,
}

impl Leaf {
    /// A leaf for `localhost`, 127.0.0.1 and ::1, valid from an hour ago for a day.
    pub fn localhost() -> Self {
        Self::dns(&["localhost"])
            .ip("127.0.0.1".parse().unwrap())
            .ip("::1".parse().unwrap())
    }

    /// A leaf with these DNS names only (the first is also the CN).
    pub fn dns(names: &[&str]) -> Self {
        Self {
            cn: names.first().copied().unwrap_or("leaf").to_owned(),
            dns: names.iter().map(|s| s.to_string()).collect(),
            ips: Vec::new(),
            serial: 1000,
            not_before: -time::Duration::hours(1),
            not_after: time::Duration::days(1),
            client: false,
            tutorial: false,
        }
    }

    /// What the seeds' tutorial makes (`openssl req -x509 -subj /CN=localhost`): a self-signed
    /// `CA:TRUE` certificate with the name in its CN only. Self-sign it with
    /// [`Leaf::self_signed`].
    pub fn tutorial() -> Self {
        Self {
            tutorial: true,
            ..Self::cn_only("localhost")
        }
    }

    /// A client certificate named `cn`.
    pub fn client(cn: &str) -> Self {
        Self {
            client: true,
            ..Self::cn_only(cn)
        }
    }

    /// A leaf with no subjectAltName at all, only a CN.
    pub fn cn_only(cn: &str) -> Self {
        Self {
            dns: Vec::new(),
            cn: cn.to_owned(),
            ..Self::dns(&[])
        }
    }

    /// One more DNS SAN.
    pub fn dns_name(mut self, name: &str) -> Self {
        self.dns.push(name.to_owned());
        self
    }

    pub fn ip(mut self, ip: std::net::IpAddr) -> Self {
        self.ips.push(ip);
        self
    }

    pub fn serial(mut self, serial: u64) -> Self {
        self.serial = serial;
        self
    }

    pub fn valid(mut self, not_before: time::Duration, not_after: time::Duration) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    fn params(&self) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, &self.cn);
        params.subject_alt_names = self
            .dns
            .iter()
            .map(|d| SanType::DnsName(d.clone().try_into().unwrap()))
            .chain(self.ips.iter().map(|ip| SanType::IpAddress(*ip)))
            .collect();
        params.serial_number = Some(SerialNumber::from(self.serial));
        params.extended_key_usages = vec![if self.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if self.tutorial {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = Vec::new();
            params.extended_key_usages = Vec::new();
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now + self.not_before;
        params.not_after = now + self.not_after;
        params
    }

    /// A self-signed certificate with this shape.
    pub fn self_signed(&self) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = self.params().self_signed(&key).unwrap();
        Issued { cert, key }
    }
}

/// A leaf certificate and its key.
pub struct Issued {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Issued {
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// An identity sending this leaf followed by `rest` (intermediates, maybe the root).
    pub fn identity(&self, rest: &[&Ca]) -> Identity {
        let mut pem = self.cert.pem();
        for ca in rest {
            pem.push_str(&ca.pem());
        }
        Identity::from_pem(pem.as_bytes(), self.key.serialize_pem().as_bytes()).unwrap()
    }

    /// Writes `<name>.pem` (the leaf then `rest`) and `<name>-key.pem` in `dir`.
    pub fn write(&self, dir: &Path, name: &str, rest: &[&Ca]) -> (PathBuf, PathBuf) {
        let mut pem = self.cert.pem();
        for ca in rest {
            pem.push_str(&ca.pem());
        }
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, pem).unwrap();
        std::fs::write(&key, self.key.serialize_pem()).unwrap();
        (cert, key)
    }
}

/// A CA, an intermediate and a localhost leaf issued by the intermediate.
pub struct Pki {
    pub root: Ca,
    pub inter: Ca,
    pub leaf: Issued,
}

impl Pki {
    pub fn new() -> Self {
        Self::named("Portcullis Test")
    }

    /// A PKI whose CAs are called `<name> Root` and `<name> Intermediate` (two PKIs in one
    /// test need different names, or OpenSSL looks up one's issuer in the other).
    pub fn named(name: &str) -> Self {
        let root = Ca::root(&format!("{name} Root"));
        let inter = root.intermediate(&format!("{name} Intermediate"));
        let leaf = inter.leaf(Leaf::localhost());
        Self { root, inter, leaf }
    }

    /// The identity sending leaf + intermediate (the usual server setup).
    pub fn identity(&self) -> Identity {
        self.leaf.identity(&[&self.inter])
    }

    /// Client options trusting the root.
    pub fn trust(&self) -> ClientTlsOptions {
        self.root.trust()
    }
}

/// Reports the connection in headers: `x-conn-id`, `x-peer`, `x-tls-version`, `x-tls-alpn`,
/// `x-tls-sni` (`none` without SNI), `x-tls-resumed`, `x-http-version`, `x-req-connection`
/// (the request's `Connection` header), `x-client-authorized` and `x-client-cn` (mTLS). `/sleep/<ms>` answers
/// after that long; every response carries `public-key-pins: test`.
pub async fn info(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/echo" {
        // `METHOD content-type\nBODY`.
        use http_body_util::BodyExt;
        let head = format!(
            "{} {}\n",
            req.method(),
            req.headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
        );
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        return Ok(Response::new(Full::new(Bytes::from(out))));
    }
    let info = req.extensions().get::<ConnectionInfo>().cloned();
    if let Some(ms) = req.uri().path().strip_prefix("/sleep/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let connection = req.headers().get(http::header::CONNECTION).cloned();
    let mut res = Response::new(Full::new(Bytes::from_static(b"hello world\n")));
    let h = res.headers_mut();
    if let Some(c) = connection {
        h.insert("x-req-connection", c);
    }
    h.insert(
        "x-http-version",
        format!("{:?}", req.version()).parse().unwrap(),
    );
    h.insert("public-key-pins", "test".parse().unwrap());
    if let Some(info) = info {
        h.insert("x-conn-id", info.id().to_string().parse().unwrap());
        h.insert("x-peer", info.peer_addr().to_string().parse().unwrap());
        tls_headers(h, &info);
        if let Some(tls) = info.tls() {
            h.insert(
                "x-client-authorized",
                tls.is_authorized().to_string().parse().unwrap(),
            );
            if let Some(cn) = tls
                .peer_certificates()
                .first()
                .and_then(|c| c.subject().get("CN"))
            {
                h.insert("x-client-cn", cn.parse().unwrap());
            }
        }
    }
    Ok(res)
}

/// A portcullis server on a loopback port, counting accepted connections.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub accepts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<portcullis::Result<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts the [`info`] service on `bind` (e.g. `127.0.0.1:0`) with `identity` and the
    /// builder changed by `configure`.
    pub async fn start(
        bind: &str,
        identity: Identity,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Self {
        Self::start_builder(bind, configure(Server::builder().identity(identity))).await
    }

    /// Starts the [`info`] service with a builder that already holds its TLS setup.
    pub async fn start_builder(bind: &str, builder: ServerBuilder) -> Self {
        let accepts = Arc::new(AtomicUsize::new(0));
        let counter = accepts.clone();
        let server = builder
            .on_connection(move |_, _| {
                counter.fetch_add(1, Ordering::SeqCst);
                true
            })
            .build()
            .unwrap();
        let listener = server.bind(bind).await.unwrap();
        let addr = listener.local_addr();
        let handle = server.handle();
        let task =
            tokio::spawn(async move { server.serve(listener, tower::service_fn(info)).await });
        Self {
            addr,
            handle,
            accepts,
            task,
        }
    }

    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// `https://127.0.0.1:<port><path>` (or `[::1]`).
    pub fn ip_url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("https://{}:{}{path}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("https://[{}]:{}{path}", a.ip(), a.port()),
        }
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Connections open on the server side.
    pub fn open(&self) -> usize {
        self.handle.connections().total()
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub async fn wait_listening(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited ({status}) before listening on {addr}: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server process, killed on drop.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

/// `openssl s_server -www` with `cert`/`key` (and the chain in `cert`), plus `extra` flags.
pub async fn openssl_server(pki_dir: TempDir, cert: &Path, key: &Path, extra: &[&str]) -> Proc {
    require("openssl");
    let port = free_port();
    let mut child = Command::new("openssl")
        .args(["s_server", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .arg("-cert_chain")
        .arg(cert)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, &mut child, "openssl s_server").await;
    Proc {
        child,
        addr,
        dir: pki_dir,
    }
}

/// Node's `https.createServer` on 127.0.0.1:0; answers `node <version>` with the negotiated
/// protocol in `x-tls-version`.
pub async fn node_server(dir: TempDir, cert: &Path, key: &Path, extra_options: &str) -> Proc {
    node_server_with(
        dir,
        cert,
        key,
        extra_options,
        "res.setHeader('x-tls-version', req.socket.getProtocol());
         res.end('node ' + process.version + '\\n');",
    )
    .await
}

/// Node's `https.createServer` on 127.0.0.1:0 with `handler` as the body of
/// `(req, res) => { … }`.
pub async fn node_server_with(
    dir: TempDir,
    cert: &Path,
    key: &Path,
    extra_options: &str,
    handler: &str,
) -> Proc {
    require("node");
    let script = format!(
        r#"
const https = require('https');
const fs = require('fs');
const server = https.createServer({{
  cert: fs.readFileSync({cert:?}),
  key: fs.readFileSync({key:?}),
  {extra_options}
}}, (req, res) => {{
  {handler}
}});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"#
    );
    let mut child = Command::new("node")
        .args(["-e", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let port = read_port(&mut child, "node");
    Proc {
        child,
        addr: ([127, 0, 0, 1], port).into(),
        dir,
    }
}

/// Python's `http.server` wrapped in an `ssl.SSLContext`, on 127.0.0.1:0, with the context
/// changed by `context_setup` (Python statements on `ctx`).
pub async fn python_server(dir: TempDir, cert: &Path, key: &Path, context_setup: &str) -> Proc {
    require("python3");
    let script = format!(
        r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        body = ('python ' + sys.version.split()[0] + '\n').encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('x-tls-version', self.connection.version())
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain({cert:?}, {key:?})
{context_setup}
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#,
        cert = cert.display().to_string(),
        key = key.display().to_string(),
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let port = read_port(&mut child, "python3");
    Proc {
        child,
        addr: ([127, 0, 0, 1], port).into(),
        dir,
    }
}

/// nginx on a free loopback port serving `cert`/`key` with `ssl_protocols protocols`, h2 on
/// the same port, `return 200` with the protocol in headers.
pub async fn nginx_server(dir: TempDir, cert: &Path, key: &Path, protocols: &str) -> Proc {
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .map(str::to_owned)
        .unwrap_or_else(|| "nginx".to_owned());
    require(&nginx);
    let port = free_port();
    let root = dir.path();
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let conf = format!(
        r#"
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        location / {{
            add_header x-tls-version $ssl_protocol always;
            add_header x-http-version $server_protocol always;
            add_header x-tls-alpn "$ssl_alpn_protocol" always;
            return 200 "nginx\n";
        }}
    }}
}}
"#,
        root = root.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let conf_path = root.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new(&nginx)
        .arg("-p")
        .arg(root)
        .arg("-c")
        .arg(&conf_path)
        .args(["-e", "stderr"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx runs");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, &mut child, "nginx").await;
    Proc { child, addr, dir }
}

/// Reads the port a child prints as its first stdout line.
fn read_port(child: &mut Child, what: &str) -> u16 {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    match line.trim().parse() {
        Ok(port) => port,
        Err(_) => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} did not print its port (got {line:?}): {err}");
        }
    }
}

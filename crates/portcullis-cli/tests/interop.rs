//! The CLI with what users already have: OpenSSL-made certificates and keys, curl, browsers'
//! refusals, client certificates on the hello page, and the small faults a first hour meets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_test_support::cli as support;

use support::{bin, curl, run, Portcullis};

/// Runs `openssl ARGS` in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Polls `check` for up to 10 s.
fn eventually(check: impl FnMut() -> bool) -> bool {
    support::eventually_blocking(Duration::from_secs(10), check)
}

/// `openssl s_server -www` on a free loopback port, killed on drop.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(dir: &Path, cert: &str, key: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-www", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", cert, "-key", key])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            eventually(|| TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "s_server listens"
        );
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `portcullis get ARGS` with `PORTCULLIS_HOME=home` and no proxy.
fn get(home: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("get")
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const RUSTLS_WORDS: [&str; 5] = [
    "Other(",
    "OtherError",
    "UnknownIssuer",
    "CaUsedAsEndEntity",
    "InvalidCertificate",
];

#[test]
fn get_trusts_the_tutorials_certificate_given_as_cacert() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        "req -x509 -newkey rsa:2048 -nodes -sha256 -subj /CN=localhost -keyout key.pem -out \
         cert.pem",
    );
    let server = SServer::start(dir.path(), "cert.pem", "key.pem");
    let cert = dir.path().join("cert.pem");
    let out = get(
        dir.path(),
        &["--cacert", cert.to_str().unwrap(), &server.url()],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Without it, Node's code and what to do.
    let out = get(dir.path(), &[&server.url()]);
    assert_eq!(out.status.code(), Some(60), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("DEPTH_ZERO_SELF_SIGNED_CERT"), "{said}");
    assert!(said.contains("--cacert"), "{said}");
    for word in RUSTLS_WORDS {
        assert!(!said.contains(word), "{said}");
    }
}

#[test]
fn get_points_at_the_local_ca_and_names_a_ca_used_as_a_leaf() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    let url = format!("https://localhost:{}/", server.port());
    let out = get(home.path(), &[&url]);
    assert_eq!(out.status.code(), Some(60), "{}", text(&out));
    let said = text(&out);
    let ca = home.path().join("ca.pem");
    assert!(
        said.contains(&format!(
            "issued by this machine's portcullis local development CA; trust it with: --cacert {}",
            ca.display()
        )),
        "{said}"
    );
    for word in RUSTLS_WORDS {
        assert!(!said.contains(word), "{said}");
    }
    let out = get(home.path(), &["--cacert", ca.to_str().unwrap(), &url]);
    assert!(out.status.success(), "{}", text(&out));

    // A CA certificate (CA:TRUE) presented as a server's leaf.
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=Issuer \
         -keyout issuer.key -out issuer.pem",
    );
    openssl(
        dir.path(),
        "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
         -keyout leaf.key -out leaf.csr",
    );
    std::fs::write(
        dir.path().join("leaf.ext"),
        "basicConstraints=CA:TRUE\nsubjectAltName=DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir.path(),
        "x509 -req -in leaf.csr -CA issuer.pem -CAkey issuer.key -CAcreateserial -days 30 \
         -extfile leaf.ext -out leaf.pem",
    );
    let s_server = SServer::start(dir.path(), "leaf.pem", "leaf.key");
    let issuer = dir.path().join("issuer.pem");
    let out = get(
        dir.path(),
        &["--cacert", issuer.to_str().unwrap(), &s_server.url()],
    );
    assert_eq!(out.status.code(), Some(60), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(
            "is a CA certificate (basicConstraints CA:TRUE) used as a server certificate"
        ),
        "{said}"
    );
}

#[test]
fn serve_refuses_the_tutorials_weak_key_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    // The tutorial's two commands.
    openssl(dir.path(), "genrsa -out key.pem 1024");
    openssl(
        dir.path(),
        "req -x509 -new -key key.pem -subj /CN=localhost -out key-cert.pem",
    );
    let out = run(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            dir.path().join("key-cert.pem").to_str().unwrap(),
            "--key",
            dir.path().join("key.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(
            "key.pem: RSA key of 1024 bits: at least 2048 needed; `portcullis cert new` makes one"
        ),
        "{said}"
    );
}

/// Makes `ca.pem`/`ca.key`, then client certificates: `alice` (v3, clientAuth) and `bob` (v1).
fn client_certificates(dir: &Path) {
    openssl(
        dir,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=ClientCA \
         -keyout ca.key -out ca.pem -days 30",
    );
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for (name, ext) in [("alice", " -extfile client.ext"), ("bob", "")] {
        openssl(
            dir,
            &format!(
                "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN={name} \
                 -keyout {name}.key -out {name}.csr"
            ),
        );
        openssl(
            dir,
            &format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
                 -out {name}.pem{ext}"
            ),
        );
    }
}

/// What `openssl x509 -noout FLAG` prints after the `=`.
fn openssl_field(dir: &Path, cert: &str, flag: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout"])
        .args(flag.split_whitespace())
        .args(["-in", cert])
        .current_dir(dir)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    line.trim().split_once('=').unwrap().1.to_owned()
}

#[test]
fn hello_page_shows_the_client_certificate_and_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    client_certificates(dir.path());
    let home = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--request-client-cert",
            "--client-ca",
            ca.to_str().unwrap(),
        ],
    );
    let as_client = |name: &str, extra: &[&str]| {
        let cert = dir.path().join(format!("{name}.pem"));
        let key = dir.path().join(format!("{name}.key"));
        let args = [
            &[
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ][..],
            extra,
        ]
        .concat();
        server.get("/", &args)
    };

    let json = as_client("alice", &["-H", "Accept: application/json"]).json();
    let tls = &json["tls"];
    assert_eq!(tls["client_certificate"]["subject"], "CN=alice");
    assert_eq!(tls["client_certificate"]["issuer"], "CN=ClientCA");
    assert_eq!(
        tls["client_certificate"]["serialNumber"],
        openssl_field(dir.path(), "alice.pem", "-serial")
    );
    assert_eq!(
        tls["client_certificate"]["fingerprint256"],
        openssl_field(dir.path(), "alice.pem", "-fingerprint -sha256")
    );
    assert_eq!(
        tls["client_certificate"]["valid_to"],
        openssl_field(dir.path(), "alice.pem", "-enddate")
    );
    assert_eq!(tls["authorized"], true);
    assert_eq!(tls["authorizationError"], serde_json::Value::Null);

    let json = as_client("bob", &["-H", "Accept: application/json"]).json();
    assert_eq!(json["tls"]["authorized"], false);
    assert_eq!(json["tls"]["authorizationError"], "CERT_REJECTED");
    let reason = json["tls"]["authorizationReason"].as_str().unwrap();
    assert!(reason.contains("is X.509 v1"), "{reason}");

    let html = as_client("bob", &[]).text();
    for shown in [
        "<th>Client subject</th><td>CN=bob</td>",
        "<th>Authorized</th><td>false</td>",
        "<th>Authorization error</th><td>CERT_REJECTED</td>",
    ] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    // Without a certificate, no client rows.
    let json = server.get("/", &["-H", "Accept: application/json"]).json();
    assert_eq!(json["tls"]["client_certificate"], serde_json::Value::Null);

    let favicon = server.get("/favicon.ico", &[]);
    assert_eq!(favicon.status, 404);
}

#[test]
fn a_client_refusing_the_certificate_leaves_an_info_line_in_the_log() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    // curl without the dev CA refuses the certificate, as a browser would.
    let out = curl(
        server.port(),
        None,
        &[&format!("https://localhost:{}/", server.port())],
    );
    assert_eq!(out.status.code(), Some(60), "{}", text(&out));
    assert!(
        eventually(|| server.log().contains("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA")),
        "{}",
        server.log()
    );
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("peer_addr=127.0.0.1:"), "{line}");
    assert!(line.contains("sni=\"localhost\""), "{line}");
    assert!(line.contains("does not trust our certificate"), "{line}");
}

/// A relay on 127.0.0.1 counting the TLS application_data records the server sends.
fn record_counter(server: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut upstream = TcpStream::connect(server).unwrap();
        let mut client_to = client.try_clone().unwrap();
        let mut upstream_from = upstream.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut client_to, &mut upstream);
        });
        let mut header = [0u8; 5];
        while upstream_from.read_exact(&mut header).is_ok() {
            let len = u16::from_be_bytes([header[3], header[4]]) as usize;
            let mut body = vec![0u8; len];
            if upstream_from.read_exact(&mut body).is_err() {
                break;
            }
            if header[0] == 0x17 {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            if client.write_all(&header).is_err() || client.write_all(&body).is_err() {
                break;
            }
        }
    });
    (addr, count)
}

#[test]
fn a_small_static_file_leaves_in_one_tls_record() {
    let home = tempfile::tempdir().unwrap();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("page.html"), "<p>hello</p>\n".repeat(250)).unwrap();
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", site.path().to_str().unwrap()],
    );
    let (relay, records) = record_counter(server.https[0]);
    // TLS 1.2: after the handshake every application_data record is response bytes.
    let out = curl(
        relay.port(),
        Some(&server.ca()),
        &[
            "--tls-max",
            "1.2",
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            &format!("https://localhost:{}/page.html", relay.port()),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 3250",
        "{}",
        text(&out)
    );
    assert_eq!(
        records.load(Ordering::SeqCst),
        1,
        "head and body in one record"
    );
}

#[test]
fn cert_new_with_a_missing_dir_is_an_error_and_makes_no_ca() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-such-dir");
    let out = Command::new(bin())
        .args(["cert", "new", "localhost", "--dir"])
        .arg(&missing)
        .env("PORTCULLIS_HOME", home.path())
        .current_dir(work.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("does not exist"), "{said}");
    assert!(said.contains("portcullis cert ca --dir"), "{said}");
    assert!(!missing.exists(), "no CA was made there");
    assert!(!work.path().join("localhost.pem").exists());
}

#[test]
fn cert_inspect_of_a_missing_file_says_it_is_missing() {
    let home = tempfile::tempdir().unwrap();
    for name in ["missing.pem", "missing.p12"] {
        let out = run(home.path(), &["cert", "inspect", name]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let said = text(&out);
        assert!(said.contains(&format!("{name}: no such file")), "{said}");
        assert!(!said.contains("passphrase"), "{said}");
    }
}

/// Set by the slow backend when a request reaches it.
static IN_FLIGHT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn slow(
    _req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    IN_FLIGHT.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(20)).await;
    Ok(http::Response::new(http_body_util::Full::new(
        bytes::Bytes::from_static(b"late\n"),
    )))
}

#[test]
fn a_second_signal_names_itself() {
    let backend = support::Backend::start(slow);
    let home = tempfile::tempdir().unwrap();
    let mut server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--proxy",
            &format!("http://{}", backend.addr),
        ],
    );
    // A request in flight keeps the graceful close waiting.
    let mut client = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(server.ca())
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.port()),
        ])
        .arg(format!("https://localhost:{}/", server.port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        eventually(|| IN_FLIGHT.load(Ordering::SeqCst)),
        "the request reached the backend"
    );
    server.signal("TERM");
    assert!(
        eventually(|| server.log().contains("SIGTERM: shutting down")),
        "{}",
        server.log()
    );
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(10));
    let _ = client.kill();
    let _ = client.wait();
    assert!(status.is_some(), "exits after the second signal");
    let log = server.log();
    assert!(
        log.contains("SIGINT after SIGTERM: dropping every connection now"),
        "{log}"
    );
    assert!(!log.contains("SIGINT again"), "{log}");
}

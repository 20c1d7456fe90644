//! TLS configuration with real peers: mTLS (required, optional, CRL), SNI, resumption across
//! servers sharing ticket keys, key log, OCSP stapling, versions and suites, reload.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::tls::{KeyLog, ServerTlsConfig, TicketKeys, TlsVersion};
use portcullis::{ConnectionInfo, Identity, Server};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use time::OffsetDateTime;

use crate::support::*;

/// A CA that signs client and server certificates, written to a temp dir.
struct Ca {
    dir: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Self {
            dir: dir.to_path_buf(),
            cert,
            key,
        }
    }

    fn pem_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Issues a leaf; writes `<file>.pem` (leaf + CA) and `<file>-key.pem`.
    fn issue(
        &self,
        file: &str,
        cn: &str,
        names: &[&str],
        client: bool,
        serial: u64,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_path = self.dir.join(format!("{file}.pem"));
        let key_path = self.dir.join(format!("{file}-key.pem"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.cert.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn crl_revoking(&self, serial: u64) -> CertificateRevocationListDer<'static> {
        let now = OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
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
        .unwrap();
        crl.der().clone()
    }
}

/// Answers with what the handler sees of the client's certificate.
async fn whoami(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let info = req.extensions().get::<ConnectionInfo>().unwrap();
    let tls = info.tls().unwrap();
    let text = format!(
        "authorized={} error={} certs={}",
        tls.is_authorized(),
        tls.authorization_error().unwrap_or("none"),
        tls.peer_certificates().len()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

async fn start_tls(
    config: ServerTlsConfig,
    service_ca: &Path,
) -> (Server, std::net::SocketAddr, PathBuf) {
    let server = Server::builder().tls(config).build().unwrap();
    let listener = server.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, tower::service_fn(whoami)).await });
    (server, addr, service_ca.to_path_buf())
}

async fn curl(addr: std::net::SocketAddr, ca: &Path, extra: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .args(extra)
        .arg(format!("https://localhost:{}/", addr.port()))
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

struct MtlsFixture {
    _dir: tempfile::TempDir,
    server_ca: Ca,
    client_ca: Ca,
    server: (PathBuf, PathBuf),
    good: (PathBuf, PathBuf),
    revoked: (PathBuf, PathBuf),
    rogue: (PathBuf, PathBuf),
}

fn mtls_fixture() -> MtlsFixture {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new(dir.path(), "server-ca");
    let client_ca = Ca::new(dir.path(), "client-ca");
    let rogue_ca = Ca::new(dir.path(), "rogue-ca");
    let server = server_ca.issue("server", "localhost", &["localhost"], false, 1);
    let good = client_ca.issue("alice", "alice", &["alice.example"], true, 100);
    let revoked = client_ca.issue("mallory", "mallory", &["mallory.example"], true, 666);
    let rogue = rogue_ca.issue("rogue", "rogue", &["rogue.example"], true, 7);
    MtlsFixture {
        _dir: dir,
        server_ca,
        client_ca,
        server,
        good,
        revoked,
        rogue,
    }
}

fn cert_args(pair: &(PathBuf, PathBuf)) -> Vec<String> {
    vec![
        "--cert".into(),
        pair.0.display().to_string(),
        "--key".into(),
        pair.1.display().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_with_crl() {
    let f = mtls_fixture();
    let config = ServerTlsConfig::builder()
        .identity(Identity::from_pem_files(&f.server.0, &f.server.1).unwrap())
        .request_cert(true)
        .client_ca([f.client_ca.der()])
        .crls([f.client_ca.crl_revoking(666)])
        .build()
        .unwrap();
    let (_server, addr, ca) = start_tls(config, &f.server_ca.pem_path("server-ca")).await;

    let args = cert_args(&f.good);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = curl(addr, &ca, &args).await;
    assert!(ok, "{text}");
    assert_eq!(text, "authorized=true error=none certs=2");

    let (ok, text) = curl(addr, &ca, &[]).await;
    assert!(!ok, "no certificate must be refused: {text}");

    let args = cert_args(&f.revoked);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = curl(addr, &ca, &args).await;
    assert!(!ok, "a revoked certificate must be refused: {text}");

    let args = cert_args(&f.rogue);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = curl(addr, &ca, &args).await;
    assert!(!ok, "an untrusted certificate must be refused: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_client_certificates_without_rejection_reach_the_handler() {
    let f = mtls_fixture();
    let config = ServerTlsConfig::builder()
        .identity(Identity::from_pem_files(&f.server.0, &f.server.1).unwrap())
        .request_cert(true)
        .reject_unauthorized(false)
        .client_ca([f.client_ca.der()])
        .crls([f.client_ca.crl_revoking(666)])
        .build()
        .unwrap();
    let (_server, addr, ca) = start_tls(config, &f.server_ca.pem_path("server-ca")).await;
    let (ok, text) = curl(addr, &ca, &[]).await;
    assert!(ok, "{text}");
    assert_eq!(
        text,
        "authorized=false error=UNABLE_TO_GET_ISSUER_CERT certs=0"
    );
    for (pair, expected) in [
        (&f.good, "authorized=true error=none certs=2"),
        (&f.revoked, "authorized=false error=CERT_REVOKED certs=2"),
        // The rogue client sends its own root too: OpenSSL calls that SELF_SIGNED_CERT_IN_CHAIN.
        (
            &f.rogue,
            "authorized=false error=SELF_SIGNED_CERT_IN_CHAIN certs=2",
        ),
    ] {
        let args = cert_args(pair);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, text) = curl(addr, &ca, &args).await;
        assert!(ok, "{text}");
        assert_eq!(text, expected);
    }
}

async fn s_client(addr: std::net::SocketAddr, args: &[&str], input: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("openssl")
        .arg("s_client")
        .args(["-connect", &addr.to_string()])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("s_client finishes")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn subject_cn(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("subject="))
        .unwrap_or_else(|| panic!("no subject in {out}"));
    line.split("CN = ").nth(1).unwrap_or(line).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_identity_per_name_and_the_default_without_sni() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let id = |file: &str, cn: &str, names: &[&str]| {
        let (c, k) = ca.issue(file, cn, names, false, 1);
        Identity::from_pem_files(c, k).unwrap()
    };
    let config = ServerTlsConfig::builder()
        .identity(id("default", "default", &["localhost"]))
        .sni("a.test", id("a", "a.test", &["a.test"]))
        .sni("*.wild.test", id("wild", "wild", &["*.wild.test"]))
        .build()
        .unwrap();
    let (server, addr, _) = start_tls(config, &ca.pem_path("ca")).await;
    server
        .handle()
        .add_context("late.test", id("late", "late.test", &["late.test"]))
        .unwrap();
    for (args, cn) in [
        (vec!["-servername", "a.test"], "a.test"),
        (vec!["-servername", "x.wild.test"], "wild"),
        (vec!["-servername", "a.b.wild.test"], "default"),
        (vec!["-servername", "late.test"], "late.test"),
        (vec!["-noservername"], "default"),
    ] {
        let out = s_client(addr, &args, "").await;
        assert_eq!(subject_cn(&out), cn, "{args:?}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sni_callback_chooses_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let (c, k) = ca.issue("default", "default", &["localhost"], false, 1);
    let default = Identity::from_pem_files(c, k).unwrap();
    let (c, k) = ca.issue("dyn", "dyn.test", &["dyn.test"], false, 2);
    let dynamic = Identity::from_pem_files(c, k).unwrap();
    let config = ServerTlsConfig::builder()
        .identity(default)
        .sni_callback(move |name| {
            let chosen = (name == "dyn.test").then(|| dynamic.clone());
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                chosen
            })
        })
        .build()
        .unwrap();
    let (_server, addr, _) = start_tls(config, &ca.pem_path("ca")).await;
    assert_eq!(
        subject_cn(&s_client(addr, &["-servername", "dyn.test"], "").await),
        "dyn.test"
    );
    assert_eq!(
        subject_cn(&s_client(addr, &["-servername", "other.test"], "").await),
        "default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_with_reconnect_and_across_servers_sharing_ticket_keys() {
    let pki = Pki::new();
    let keys_file = pki.dir.path().join("ticket.keys");
    let mut key = [0u8; 48];
    aws_lc_rs::rand::fill(&mut key).unwrap();
    std::fs::write(&keys_file, key).unwrap();
    let make = || {
        ServerTlsConfig::builder()
            .identity(pki.identity())
            .ticket_keys(TicketKeys::from_file(&keys_file).unwrap())
            .build()
            .unwrap()
    };
    let (_a, addr_a, _) = start_tls(make(), &pki.ca).await;
    let (_b, addr_b, _) = start_tls(make(), &pki.ca).await;
    let ca = pki.ca.display().to_string();

    // TLS 1.2: -reconnect resumes from the ticket.
    let out = s_client(
        addr_a,
        &[
            "-tls1_2",
            "-reconnect",
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
        ],
        "",
    )
    .await;
    assert!(out.matches("Reused, TLSv1.2").count() >= 5, "{out}");

    // TLS 1.3: a session saved from A resumes on B.
    let sess = pki.dir.path().join("sess.pem");
    let sess = sess.display().to_string();
    let req = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let out = s_client(
        addr_a,
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
            "-sess_out",
            &sess,
            "-ign_eof",
        ],
        req,
    )
    .await;
    assert!(out.contains("New, TLSv1.3"), "{out}");
    let out = s_client(
        addr_b,
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
            "-sess_in",
            &sess,
            "-ign_eof",
        ],
        req,
    )
    .await;
    assert!(
        out.contains("Reused, TLSv1.3"),
        "a ticket from A must resume on B: {out}"
    );

    // A server with other keys does not resume it.
    let other = ServerTlsConfig::builder()
        .identity(pki.identity())
        .build()
        .unwrap();
    let (_c, addr_c, _) = start_tls(other, &pki.ca).await;
    let out = s_client(
        addr_c,
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
            "-sess_in",
            &sess,
            "-ign_eof",
        ],
        req,
    )
    .await;
    assert!(out.contains("New, TLSv1.3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tickets_and_no_cache_means_no_resumption() {
    let pki = Pki::new();
    let config = ServerTlsConfig::builder()
        .identity(pki.identity())
        .session_tickets(false)
        .session_cache(0)
        .build()
        .unwrap();
    let (_s, addr, _) = start_tls(config, &pki.ca).await;
    let ca = pki.ca.display().to_string();
    let out = s_client(
        addr,
        &[
            "-tls1_2",
            "-reconnect",
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
        ],
        "",
    )
    .await;
    // Handshakes happened (the first and the reconnections), and none resumed.
    assert!(out.matches("New, TLSv1.2").count() >= 2, "{out}");
    assert!(!out.contains("Reused,"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keylog_lines_for_tls12_and_tls13() {
    let pki = Pki::new();
    let log = pki.dir.path().join("keys.log");
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    let config = ServerTlsConfig::builder()
        .identity(pki.identity())
        .keylog(KeyLog::file(&log).unwrap())
        .build()
        .unwrap();
    let (_s, addr, _) = start_tls(config, &pki.ca).await;
    let ca = pki.ca.clone();
    curl(addr, &ca, &["--tlsv1.3"]).await;
    curl(addr, &ca, &["--tlsv1.2", "--tls-max", "1.2"]).await;
    let text = std::fs::read_to_string(&log).unwrap();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
        "CLIENT_RANDOM",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{label} "))),
            "{label} missing in {text}"
        );
    }
    // Each line: label, 32-byte client random in hex, secret in hex.
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[1].len(), 64, "{line}");
    }

    // The callback form.
    let config = ServerTlsConfig::builder()
        .identity(pki.identity())
        .keylog(KeyLog::callback(move |line| {
            seen.lock().unwrap().push(line.to_owned())
        }))
        .build()
        .unwrap();
    let (_s, addr, _) = start_tls(config, &pki.ca).await;
    curl(addr, &ca, &["--tlsv1.3"]).await;
    assert_eq!(
        lines.lock().unwrap().len(),
        5,
        "TLS 1.3 gives 5 server-side lines, as Node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_cipher_suites_by_name() {
    let pki = Pki::new();
    let config = ServerTlsConfig::builder()
        .identity(pki.identity())
        .max_version(TlsVersion::Tls12)
        .cipher_suites(["ECDHE-ECDSA-AES256-GCM-SHA384"])
        .build()
        .unwrap();
    let (_s, addr, _) = start_tls(config, &pki.ca).await;
    let ca = pki.ca.display().to_string();
    let out = s_client(addr, &["-servername", "localhost", "-CAfile", &ca], "").await;
    assert!(
        out.contains("Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"),
        "{out}"
    );
    assert!(out.contains("TLSv1.2"), "{out}");

    let config = ServerTlsConfig::builder()
        .identity(pki.identity())
        .min_version(TlsVersion::Tls13)
        .build()
        .unwrap();
    let (_s, addr, _) = start_tls(config, &pki.ca).await;
    let out = s_client(
        addr,
        &["-tls1_2", "-servername", "localhost", "-CAfile", &ca],
        "",
    )
    .await;
    assert!(out.contains("Cipher is (NONE)"), "{out}");

    let err = ServerTlsConfig::builder()
        .identity(pki.identity())
        .cipher_suites(["RC4-MD5"])
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("supported: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_response_is_stapled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=ocsp-ca",
        "-days",
        "2",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "0x1001",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    std::fs::write(
        d.join("index.txt"),
        "V\t301231235959Z\t\t1001\tunknown\t/CN=localhost\n",
    )
    .unwrap();
    run(&[
        "ocsp",
        "-index",
        "index.txt",
        "-rsigner",
        "ca.pem",
        "-rkey",
        "ca.key",
        "-CA",
        "ca.pem",
        "-issuer",
        "ca.pem",
        "-cert",
        "leaf.pem",
        "-respout",
        "resp.der",
        "-ndays",
        "1",
    ]);
    let config = ServerTlsConfig::builder()
        .identity(Identity::from_pem_files(d.join("leaf.pem"), d.join("leaf.key")).unwrap())
        .ocsp_response(std::fs::read(d.join("resp.der")).unwrap())
        .build()
        .unwrap();
    let (_s, addr, _) = start_tls(config, &d.join("ca.pem")).await;
    let out = s_client(addr, &["-status", "-servername", "localhost"], "").await;
    assert!(out.contains("OCSP Response Status: successful"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_tls_config_swaps_the_certificate_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let (c, k) = ca.issue("one", "one", &["localhost"], false, 1);
    let one = Identity::from_pem_files(c, k).unwrap();
    let (c, k) = ca.issue("two", "two", &["localhost"], false, 2);
    let two = Identity::from_pem_files(c, k).unwrap();
    let (server, addr, _) = start_tls(
        ServerTlsConfig::builder().identity(one).build().unwrap(),
        &ca.pem_path("ca"),
    )
    .await;
    let cafile = ca.pem_path("ca").display().to_string();
    // A session from before the swap...
    let sess = dir.path().join("sess.pem").display().to_string();
    let out = s_client(
        addr,
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &cafile,
            "-sess_out",
            &sess,
            "-ign_eof",
        ],
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(subject_cn(&out), "one");
    server
        .handle()
        .set_tls_config(ServerTlsConfig::builder().identity(two).build().unwrap())
        .unwrap();
    let out = s_client(addr, &["-servername", "localhost"], "").await;
    assert_eq!(subject_cn(&out), "two");
    // ...still resumes after it: ticket keys carry over.
    let out = s_client(
        addr,
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &cafile,
            "-sess_in",
            &sess,
            "-ign_eof",
        ],
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.contains("Reused, TLSv1.3"), "{out}");
}

/// Answers with the leaf client certificate's fields as the handler sees them.
async fn peer_fields(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let info = req.extensions().get::<ConnectionInfo>().unwrap();
    let certs = info.tls().unwrap().peer_certificates();
    let text = match certs.first() {
        Some(leaf) => format!(
            "{}|{}|{}|{}",
            leaf.fingerprint256(),
            leaf.serial_number(),
            leaf.subject().get("CN").unwrap_or(""),
            certs.len()
        ),
        None => "none".into(),
    };
    Ok(Response::new(Full::new(Bytes::from(text))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_peer_certificate_matches_openssl() {
    let f = mtls_fixture();
    let config = ServerTlsConfig::builder()
        .identity(Identity::from_pem_files(&f.server.0, &f.server.1).unwrap())
        .request_cert(true)
        .client_ca([f.client_ca.der()])
        .build()
        .unwrap();
    let server = Server::builder().tls(config).build().unwrap();
    let listener = server.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, tower::service_fn(peer_fields)).await });
    let args = cert_args(&f.good);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = curl(addr, &f.server_ca.pem_path("server-ca"), &args).await;
    assert!(ok, "{text}");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .arg("x509")
            .args(args)
            .arg("-in")
            .arg(&f.good.0)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        text.rsplit('=').next().unwrap().to_owned()
    };
    let sha256 = openssl(&["-noout", "-fingerprint", "-sha256"]);
    let serial = openssl(&["-noout", "-serial"]);
    assert_eq!(text, format!("{sha256}|{serial}|alice|2"));
}

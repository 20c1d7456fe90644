//! Certificates and keys made the way the seeds' tutorial and OpenSSL users make them, on the
//! server side: a self-signed client certificate trusted as its own CA, an X.509 v1 client
//! certificate (`openssl x509 -req` without `-extfile`), and keys the provider refuses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::tls::load_certificates;
use portcullis::{ConnectionInfo, Identity, Server, ServerTlsConfig};

use crate::support::{Pki, Trace};
use crate::support_files::Files;

/// What the handler sees of the client's certificate, one field per line.
async fn verdict(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let info = req.extensions().get::<ConnectionInfo>().unwrap();
    let tls = info.tls().unwrap();
    let text = format!(
        "authorized={}\nerror={}\nreason={}\ncerts={}\n",
        tls.is_authorized(),
        tls.authorization_error().unwrap_or("none"),
        tls.authorization_reason().unwrap_or("none"),
        tls.peer_certificates().len()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// A server for `localhost` (the test PKI) asking for client certificates from `client_ca`.
pub async fn mtls_server(pki: &Pki, client_ca: &Path, reject: bool) -> (Server, SocketAddr) {
    let config = ServerTlsConfig::builder()
        .identity(pki.identity())
        .request_cert(true)
        .reject_unauthorized(reject)
        .client_ca(load_certificates(client_ca).unwrap())
        .build()
        .unwrap();
    let server = Server::builder().tls(config).build().unwrap();
    let listener = server.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, tower::service_fn(verdict)).await });
    (server, addr)
}

/// curl with a client certificate; (success, stdout + stderr).
async fn curl_as(addr: SocketAddr, pki: &Pki, cert: &Path, key: &Path) -> (bool, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&pki.ca)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg(format!("https://localhost:{}/", addr.port()))
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The tutorial's self-signed certificate (`openssl req -x509`, `CA:TRUE`) as a client
/// certificate, with that same file as the server's client CA: OpenSSL and Node accept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_client_certificate_given_as_client_ca_is_authorized() {
    let files = Files::new();
    files
        .openssl(
            "req -x509 -newkey rsa:2048 -nodes -sha256 -subj /CN=alice -keyout alice.key \
             -out alice.pem -days 30",
        )
        .await;
    let text = files.read("alice.pem");
    assert!(
        String::from_utf8_lossy(&text).starts_with("-----BEGIN CERTIFICATE-----"),
        "openssl made a PEM certificate"
    );
    let pki = Pki::new();
    for reject in [true, false] {
        let (server, addr) = mtls_server(&pki, &files.path("alice.pem"), reject).await;
        let (ok, text) = curl_as(
            addr,
            &pki,
            &files.path("alice.pem"),
            &files.path("alice.key"),
        )
        .await;
        assert!(ok, "reject_unauthorized({reject}): {text}");
        assert!(
            text.starts_with("authorized=true\nerror=none\nreason=none\ncerts=1"),
            "{text}"
        );
        server.handle().close().await;
    }
}

/// A client certificate signed by a CA without extensions: X.509 v1. The handshake completes
/// when unauthorized clients are let in, and the handler learns why it is not authorized; with
/// rejection on, the client gets an alert and the server's log says why and how to fix it.
#[tokio::test]
async fn an_x509_v1_client_certificate_is_judged_with_a_reason() {
    let trace = Trace::default();
    let _guard = trace.install();
    let files = Files::new();
    files
        .openssl(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
             -out ca.pem -subj /CN=ClientCA -days 30",
        )
        .await;
    files
        .openssl("req -newkey rsa:2048 -nodes -subj /CN=bob -keyout bob.key -out bob.csr")
        .await;
    files
        .openssl(
            "x509 -req -in bob.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out bob.pem",
        )
        .await;
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(files.path("bob.pem"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Version: 1 (0x0)"),
        "openssl made a v1 certificate"
    );
    let pki = Pki::new();

    let (server, addr) = mtls_server(&pki, &files.path("ca.pem"), false).await;
    let (ok, text) = curl_as(addr, &pki, &files.path("bob.pem"), &files.path("bob.key")).await;
    assert!(ok, "the handshake completes: {text}");
    assert!(
        text.starts_with("authorized=false\nerror=CERT_REJECTED\nreason=the client certificate"),
        "{text}"
    );
    assert!(text.contains("is X.509 v1"), "{text}");
    assert!(
        text.contains("-extfile"),
        "the reason says how to fix it: {text}"
    );
    server.handle().close().await;

    let (server, addr) = mtls_server(&pki, &files.path("ca.pem"), true).await;
    let (ok, text) = curl_as(addr, &pki, &files.path("bob.pem"), &files.path("bob.key")).await;
    assert!(!ok, "refused: {text}");
    assert!(text.contains("alert"), "curl reports the alert: {text}");
    assert!(!text.contains("reset by peer"), "{text}");
    let log = trace.text();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake refused"))
        .unwrap_or_else(|| panic!("a refusal is logged: {log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("is X.509 v1"), "{line}");
    assert!(line.contains("-extfile"), "{line}");
    assert!(line.contains("code=\"CERT_REJECTED\""), "{line}");
    server.handle().close().await;
}

/// Keys OpenSSL makes that the crypto provider refuses: the error says which key and what to do,
/// never "failed to parse private key as RSA, ECDSA, or EdDSA".
#[tokio::test]
async fn refused_keys_say_what_is_wrong_with_them() {
    let files = Files::new();
    // The tutorial's own commands.
    files.openssl("genrsa -out weak.pem 1024").await;
    files
        .openssl("req -x509 -new -key weak.pem -subj /CN=localhost -out weak-cert.pem")
        .await;
    files
        .openssl("ecparam -name secp256k1 -genkey -noout -out k1.pem")
        .await;
    files
        .openssl("req -x509 -new -key k1.pem -subj /CN=localhost -out k1-cert.pem")
        .await;
    files
        .openssl("genpkey -algorithm ed448 -out ed448.pem")
        .await;
    files
        .openssl("req -x509 -new -key ed448.pem -subj /CN=localhost -out ed448-cert.pem")
        .await;
    let cases = [
        (
            "weak",
            "RSA key of 1024 bits: at least 2048 needed; `portcullis cert new` makes one",
        ),
        (
            "k1",
            "EC key on curve secp256k1: not supported (P-256, P-384 and P-521 are); \
             `portcullis cert new` makes one",
        ),
        (
            "ed448",
            "Ed448 key: not supported (Ed25519, ECDSA and RSA are); `portcullis cert new` makes \
             one",
        ),
    ];
    for (name, expected) in cases {
        let key = files.path(&format!("{name}.pem"));
        let err =
            Identity::from_files(files.path(&format!("{name}-cert.pem")), &key, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}: {expected}", key.display())),
            "{text}"
        );
        assert!(err.is_config());
        assert!(!text.contains("failed to parse"), "{text}");
    }
    // P-521 is usable.
    files
        .openssl("ecparam -name secp521r1 -genkey -noout -out p521.pem")
        .await;
    files
        .openssl("req -x509 -new -key p521.pem -subj /CN=localhost -out p521-cert.pem")
        .await;
    Identity::from_files(files.path("p521-cert.pem"), files.path("p521.pem"), None).unwrap();
}

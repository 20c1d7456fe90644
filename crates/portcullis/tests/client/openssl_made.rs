//! The seeds' tutorial certificate, made by OpenSSL itself (`openssl req -x509`, which OpenSSL 3
//! marks `CA:TRUE`) and served by `openssl s_server`: trusted when given as the CA, as curl and
//! Node trust it.

use std::process::Command;

use portcullis::client::Agent;
use portcullis::tls::{load_certificates, ClientTlsOptions};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorials_self_signed_certificate_is_trusted_as_its_own_ca() {
    require("node");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"));
    let server = openssl_server(tempfile::tempdir().unwrap(), &cert, &key, &[]).await;
    let url = server.url("/");

    // curl and Node, the reference.
    let curl = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200", "{curl:?}");
    let script = "require('https').get({host: 'localhost', port: +process.argv[1], \
                  ca: require('fs').readFileSync(process.argv[2])}, \
                  (res) => console.log(res.statusCode)).on('error', (e) => console.log(e.code))";
    let node = |ca: &std::path::Path| {
        let out = Command::new("node")
            .args(["-e", script, &server.addr.port().to_string()])
            .arg(ca)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(node(&cert), "200");

    let agent = Agent::builder()
        .no_proxy()
        .tls(ClientTlsOptions::new().ca(load_certificates(&cert).unwrap()))
        .build()
        .unwrap();
    let res = agent.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // s_server serves one connection at a time: let go of the pooled one.
    drop((res, agent));

    // Without it: Node's code, and a sentence saying what to do.
    let other = Pki::new();
    std::fs::write(dir.path().join("other.pem"), other.root.pem()).unwrap();
    assert_eq!(
        node(&dir.path().join("other.pem")),
        "DEPTH_ZERO_SELF_SIGNED_CERT"
    );
    let err = Agent::builder()
        .no_proxy()
        .tls(other.trust())
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("DEPTH_ZERO_SELF_SIGNED_CERT"));
    let reason = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        reason.starts_with("the server certificate (CN=localhost) is self-signed"),
        "{reason}"
    );
    assert!(reason.contains("--cacert"), "{reason}");
}

//! Pinning: the seeds' example (`examples/pinning.rs`, compiled in here) against a local
//! server, and `PinSet` as a `check_server_identity`.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use portcullis::client::Agent;
use portcullis::tls::PinSet;
use portcullis::PeerCertificate;

use crate::support::*;

#[path = "../../examples/pinning.rs"]
#[allow(dead_code)]
mod example;

fn collector() -> (example::Log, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    (Arc::new(move |line| sink.lock().unwrap().push(line)), lines)
}

/// The HPKP pin as the classic openssl pipeline computes it from a PEM certificate.
fn openssl_pin(pem: &str) -> String {
    require("openssl");
    let out = Command::new("sh")
        .args([
            "-c",
            "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(pem.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_accepts_matching_pins_and_walks_the_chain() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let leaf = PeerCertificate::from_der(&pki.leaf.der()).unwrap();
    let inter = PeerCertificate::from_der(&pki.inter.der()).unwrap();
    let root = PeerCertificate::from_der(&pki.root.der()).unwrap();
    // Our pin is the one HPKP tooling computes.
    assert_eq!(leaf.pin_sha256(), openssl_pin(&pki.leaf.cert.pem()));

    let pins = example::Pins {
        pubkey256: leaf.pin_sha256().to_owned(),
        cert256: leaf.fingerprint256().to_owned(),
    };
    let (log, lines) = collector();
    let status = example::run(&server.url("/"), vec![pki.root.der()], pins, log)
        .await
        .unwrap();
    assert_eq!(status, 200);

    // The seed's output: every certificate from the leaf up to the root (which the server
    // did not send: it comes from the trusted CAs, as Node's issuerCertificate does).
    let mut expected = Vec::new();
    for (cn, cert) in [
        ("localhost", &leaf),
        ("Portcullis Test Intermediate", &inter),
        ("Portcullis Test Root", &root),
    ] {
        expected.push(format!("Subject Common Name: {cn}"));
        expected.push(format!(
            "  Certificate SHA256 fingerprint: {}",
            cert.fingerprint256()
        ));
        expected.push(format!("  Public key ping-sha256: {}", cert.pin_sha256()));
    }
    expected.push("All OK. Server matched our pinned cert or public key".to_owned());
    expected.push("statusCode: 200".to_owned());
    expected.push("headers: test".to_owned());
    assert_eq!(*lines.lock().unwrap(), expected);
    // Fingerprints look like the seed's: 32 uppercase hex bytes joined by colons.
    let fp = leaf.fingerprint256();
    assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
    assert!(fp.split(':').all(|b| b.len() == 2
        && b.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_refuses_a_wrong_key_or_certificate_pin() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let leaf = PeerCertificate::from_der(&pki.leaf.der()).unwrap();
    // Another key for the same name: what a pin is there to catch.
    let impostor = PeerCertificate::from_der(&pki.inter.leaf(Leaf::localhost()).der()).unwrap();

    for (pins, message) in [
        (
            example::Pins {
                pubkey256: impostor.pin_sha256().to_owned(),
                cert256: leaf.fingerprint256().to_owned(),
            },
            "Certificate verification error: The public key of 'localhost' does not match our pinned fingerprint",
        ),
        (
            example::Pins {
                pubkey256: leaf.pin_sha256().to_owned(),
                cert256: impostor.fingerprint256().to_owned(),
            },
            "Certificate verification error: The certificate of 'localhost' does not match our pinned fingerprint",
        ),
    ] {
        let (log, lines) = collector();
        let err = example::run(&server.url("/"), vec![pki.root.der()], pins, log)
            .await
            .unwrap_err();
        assert!(err.is_tls(), "{err:?}");
        assert_eq!(err.code(), Some("ERR_TLS_PIN_MISMATCH"), "{err:?}");
        assert_eq!(err.to_string(), message);
        // Refused before the walk and before any response.
        assert!(lines.lock().unwrap().is_empty(), "{:?}", lines.lock().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_checks_the_host_before_the_pins() {
    let pki = Pki::new();
    let other_host = pki.inter.leaf(Leaf::dns(&["example.test"]));
    let server = TestServer::start("127.0.0.1:0", other_host.identity(&[&pki.inter]), |b| b).await;
    let leaf = PeerCertificate::from_der(&other_host.der()).unwrap();
    let pins = example::Pins {
        pubkey256: leaf.pin_sha256().to_owned(),
        cert256: leaf.fingerprint256().to_owned(),
    };
    let (log, lines) = collector();
    let err = example::run(&server.url("/"), vec![pki.root.der()], pins, log)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR_TLS_CERT_ALTNAME_INVALID"), "{err:?}");
    assert!(lines.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_set_accepts_a_pinned_root_or_leaf_and_refuses_others() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let root = PeerCertificate::from_der(&pki.root.der()).unwrap();
    let leaf = PeerCertificate::from_der(&pki.leaf.der()).unwrap();
    let stranger = PeerCertificate::from_der(&Ca::root("Stranger").der()).unwrap();

    for (pins, ok) in [
        // The root is not sent by the server; the walk adds it from the trusted CAs.
        (vec![root.pin_sha256().to_owned()], true),
        (vec![format!("sha256//{}", leaf.pin_sha256())], true),
        (
            vec![
                stranger.pin_sha256().to_owned(),
                leaf.pin_sha256().to_owned(),
            ],
            true,
        ),
        (vec![stranger.pin_sha256().to_owned()], false),
    ] {
        let set = PinSet::new(&pins);
        let agent = Agent::builder()
            .no_proxy()
            .tls(
                pki.trust()
                    .check_server_identity(move |host, chain| set.check(host, chain)),
            )
            .build()
            .unwrap();
        let result = agent.get(&server.url("/")).send().await;
        match (result, ok) {
            (Ok(res), true) => assert_eq!(res.status(), 200),
            (Err(e), false) => {
                assert_eq!(e.code(), Some("ERR_TLS_PIN_MISMATCH"), "{e:?}");
                // The message lists what the chain offers, to fix the pins from.
                assert!(e.to_string().contains(leaf.pin_sha256()), "{e}");
                assert!(e.to_string().contains(root.pin_sha256()), "{e}");
            }
            (other, _) => panic!("pins {pins:?}: {other:?}"),
        }
    }
}

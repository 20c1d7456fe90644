//! Client certificates (Node's `cert`/`key` on the agent) against a server that asks for one.

use portcullis::client::Agent;
use portcullis::tls::{ServerTlsConfig, TlsVersion};
use portcullis::Server;

use crate::support::*;

/// A server requiring a client certificate issued by `client_ca`.
async fn mtls_server(pki: &Pki, client_ca: &Ca, reject: bool) -> TestServer {
    let tls = ServerTlsConfig::builder()
        .identity(pki.identity())
        .request_cert(true)
        .reject_unauthorized(reject)
        .client_ca([client_ca.der()])
        .build()
        .unwrap();
    TestServer::start_builder("127.0.0.1:0", Server::builder().tls(tls)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_sent_and_verified() {
    let pki = Pki::new();
    let clients = Ca::root("Client CA");
    let server = mtls_server(&pki, &clients, true).await;
    let alice = clients.leaf(Leaf::client("alice"));
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let agent = Agent::builder()
            .no_proxy()
            .tls(
                pki.trust()
                    .max_version(version)
                    .identity(alice.identity(&[])),
            )
            .build()
            .unwrap();
        let res = agent.get(&server.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-client-authorized"], "true");
        assert_eq!(res.headers()["x-client-cn"], "alice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_is_refused_with_the_alerts_code() {
    let pki = Pki::new();
    let clients = Ca::root("Client CA");
    // Our server: a TLS 1.3 client learns of it from alert 116 after its own handshake
    // finished (the request, not the handshake, fails).
    let server = mtls_server(&pki, &clients, true).await;
    let err = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap()
        .get(&server.url("/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_tls(), "{err:?}");
    assert_eq!(
        err.code(),
        Some("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"),
        "{err:?}"
    );

    // OpenSSL (what Node's server runs on), per Node's P22: alert 116 over TLS 1.3, a
    // handshake failure alert over TLS 1.2.
    for (flag, code) in [
        ("-tls1_3", "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"),
        ("-tls1_2", "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pki.leaf.write(dir.path(), "server", &[&pki.inter]);
        let client_ca = dir.path().join("clients.pem");
        std::fs::write(&client_ca, clients.pem()).unwrap();
        let client_ca = client_ca.display().to_string();
        let server = openssl_server(
            dir,
            &cert,
            &key,
            &[flag, "-Verify", "1", "-CAfile", &client_ca],
        )
        .await;
        let err = Agent::builder()
            .no_proxy()
            .tls(pki.trust())
            .build()
            .unwrap()
            .get(&server.url("/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_tls(), "{flag}: {err:?}");
        assert_eq!(err.code(), Some(code), "{flag}: {err:?}");
        // With the certificate, the same server answers.
        let alice = clients.leaf(Leaf::client("alice"));
        let res = Agent::builder()
            .no_proxy()
            .tls(pki.trust().identity(alice.identity(&[])))
            .build()
            .unwrap()
            .get(&server.url("/"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_client_certificate_is_reported_unauthorized_when_untrusted() {
    let pki = Pki::new();
    let clients = Ca::root("Client CA");
    let server = mtls_server(&pki, &clients, false).await;
    let stranger = Leaf::client("mallory").self_signed();
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust().identity(stranger.identity(&[])))
        .build()
        .unwrap();
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-client-authorized"], "false");
    assert_eq!(res.headers()["x-client-cn"], "mallory");
}

//! The client against our own server: the basics every other client test builds on.

use portcullis::client::Agent;
use portcullis::tls::{load_certificates, ClientTlsOptions};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_a_custom_ca_reuses_one_keep_alive_socket() {
    let srv = start_hello(|b| b).await;
    let ca = load_certificates(&srv.pki.ca).unwrap();
    let agent = Agent::builder()
        .keep_alive(true)
        .tls(ClientTlsOptions::new().ca(ca))
        .build()
        .unwrap();
    let url = srv.url("/");
    for i in 0..3 {
        let res = agent.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.reused_socket(), i > 0);
        let tls = res.tls_info().unwrap();
        assert_eq!(tls.version(), "TLSv1.3");
        assert_eq!(tls.peer_certificates().len(), 2);
        assert_eq!(res.text().await.unwrap(), "hello world\n");
    }
    assert_eq!(agent.sockets(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_server_is_refused_with_a_node_code() {
    let srv = start_hello(|b| b).await;
    let err = Agent::builder()
        .build()
        .unwrap()
        .get(&srv.url("/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_tls(), "{err:?}");
    // The server sends its CA too, so OpenSSL (and Node) call it SELF_SIGNED_CERT_IN_CHAIN.
    assert_eq!(err.code(), Some("SELF_SIGNED_CERT_IN_CHAIN"), "{err:?}");
}

//! The request API: post/put/delete, `.json`, `.form`, and the `http` types re-exported.

use portcullis::{Agent, Method, StatusCode};

use crate::support::*;

async fn echo(req: portcullis::client::RequestBuilder) -> String {
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_put_delete_json_and_form_send_what_they_say() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap();
    let url = server.url("/echo");

    let json = serde_json::json!({"name": "a b", "n": [1, 2]});
    assert_eq!(
        echo(agent.post(&url).json(&json)).await,
        format!(
            "POST application/json\n{}",
            serde_json::to_string(&json).unwrap()
        )
    );
    assert_eq!(
        echo(agent.put(&url).form(&[("q", "a b&c"), ("é", "1")])).await,
        "PUT application/x-www-form-urlencoded\nq=a+b%26c&%C3%A9=1"
    );
    assert_eq!(echo(agent.delete(&url)).await, "DELETE -\n");
    // A content type given first is kept.
    assert_eq!(
        echo(
            agent
                .request(Method::POST, &url)
                .header("content-type", "application/vnd.test+json")
                .json(&1)
        )
        .await,
        "POST application/vnd.test+json\n1"
    );
}

/// The client and the server read one session type: `portcullis::tls::TlsInfo`.
fn summary(tls: &portcullis::tls::TlsInfo) -> (String, String, Option<String>) {
    (
        tls.version().to_owned(),
        tls.cipher_suite().to_owned(),
        tls.server_name().map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_see_the_same_session_through_one_type() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust().servername("localhost"))
        .build()
        .unwrap();
    let res = agent.get(&server.url("/")).send().await.unwrap();
    let (version, suite, sni) = summary(res.tls_info().expect("a TLS response"));
    // What the server's TlsInfo said, in the test server's headers.
    assert_eq!(res.headers()["x-tls-version"], version.as_str());
    assert_eq!(res.headers()["x-tls-sni"], "localhost");
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert!(suite.starts_with("TLS_"), "{suite}");
    assert!(res.tls_info().unwrap().is_authorized());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_reports_a_tls_configuration_error_before_any_request() {
    let bad_suite = portcullis::tls::ClientTlsOptions::new().cipher_suites(["NO_SUCH_SUITE"]);
    let err = Agent::builder().tls(bad_suite).build().unwrap_err();
    assert!(err.is_config(), "{err:?}");
    assert!(err.to_string().contains("NO_SUCH_SUITE"), "{err}");
    // A good configuration is built once, for every request after.
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap();
    assert_eq!(agent.cached_configs(), 1);
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(agent.cached_configs(), 1);
}

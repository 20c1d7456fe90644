//! The agent's TLS session cache (resumption seen by both ends), key log lines, and SNI.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use portcullis::client::Agent;
use portcullis::tls::{check_server_identity, KeyLog, ServerTlsConfig, TlsVersion};
use portcullis::Server;

use crate::support::*;

/// One GET; returns (client saw resumption, server saw resumption).
async fn resumed(agent: &Agent, url: &str) -> (bool, bool) {
    let res = agent.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let client = res.tls_info().unwrap().is_resumed();
    let server = res.headers()["x-tls-resumed"] == "true";
    res.text().await.unwrap();
    (client, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_keep_alive_agent_resumes_its_session_false_true_true() {
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let pki = Pki::new();
        let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
        let agent = Agent::builder()
            .no_proxy()
            .tls(pki.trust().max_version(version))
            .build()
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (client, server_side) = resumed(&agent, &server.url("/")).await;
            assert_eq!(client, server_side, "both ends agree");
            seen.push(client);
        }
        // Node's P24: isSessionReused() false, true, true; a new socket each time.
        assert_eq!(seen, [false, true, true], "{version:?}");
        assert_eq!(server.accepts(), 3);
        assert_eq!(agent.cached_sessions(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cached_sessions_0_never_resumes() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let agent = Agent::builder()
        .no_proxy()
        .max_cached_sessions(0)
        .tls(pki.trust())
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(resumed(&agent, &server.url("/")).await, (false, false));
    }
    assert_eq!(agent.cached_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_origin_is_evicted_at_the_limit() {
    let pki = Pki::new();
    let a = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let b = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    for (limit, expected) in [
        // One place, two origins alternating: each evicts the other.
        (1, [false, false, false, false]),
        // Room for both: the second round resumes.
        (2, [false, false, true, true]),
    ] {
        let agent = Agent::builder()
            .no_proxy()
            .max_cached_sessions(limit)
            .tls(pki.trust())
            .build()
            .unwrap();
        let mut seen = Vec::new();
        for url in [a.url("/"), b.url("/"), a.url("/"), b.url("/")] {
            let (client, server_side) = resumed(&agent, &url).await;
            assert_eq!(client, server_side);
            seen.push(client);
        }
        assert_eq!(seen, expected, "max_cached_sessions {limit}");
        assert_eq!(agent.cached_sessions(), limit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_server_identity_is_not_called_for_a_resumed_session() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust().check_server_identity(move |host, chain| {
            counter.fetch_add(1, Ordering::SeqCst);
            check_server_identity(host, chain)
        }))
        .build()
        .unwrap();
    assert_eq!(resumed(&agent, &server.url("/")).await, (false, false));
    assert_eq!(resumed(&agent, &server.url("/")).await, (true, true));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Labels of NSS key log lines.
fn labels(lines: &[String]) -> Vec<String> {
    let mut labels: Vec<String> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    labels.sort();
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keylog_lines_for_tls12_and_tls13_match_the_servers() {
    for (version, expected) in [
        (TlsVersion::Tls12, vec!["CLIENT_RANDOM"]),
        (
            TlsVersion::Tls13,
            // Node: 5 lines per TLS 1.3 handshake per side.
            vec![
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "EXPORTER_SECRET",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_TRAFFIC_SECRET_0",
            ],
        ),
    ] {
        let pki = Pki::new();
        let server_lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = server_lines.clone();
        let tls = ServerTlsConfig::builder()
            .identity(pki.identity())
            .keylog(KeyLog::callback(move |l| {
                sink.lock().unwrap().push(l.to_owned())
            }))
            .build()
            .unwrap();
        let server = TestServer::start_builder("127.0.0.1:0", Server::builder().tls(tls)).await;

        let client_lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = client_lines.clone();
        let agent = Agent::builder()
            .no_proxy()
            .keep_alive(true)
            .tls(
                pki.trust()
                    .max_version(version)
                    .keylog(KeyLog::callback(move |l| {
                        sink.lock().unwrap().push(l.to_owned())
                    })),
            )
            .build()
            .unwrap();
        for _ in 0..2 {
            let res = agent.get(&server.url("/")).send().await.unwrap();
            assert_eq!(res.tls_info().unwrap().version(), version.as_str());
            res.text().await.unwrap();
        }
        // One handshake (the second request reuses the socket).
        let client = client_lines.lock().unwrap().clone();
        assert_eq!(labels(&client), expected, "{version:?}: {client:?}");
        // The same secrets on both sides, in NSS format: LABEL <client random> <secret>.
        let mut server_side = server_lines.lock().unwrap().clone();
        let mut client_sorted = client.clone();
        server_side.sort();
        client_sorted.sort();
        assert_eq!(client_sorted, server_side);
        for line in &client {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{line}");
            assert_eq!(parts[1].len(), 64, "{line}");
            assert!(parts[1..]
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_hexdigit())));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_is_absent_for_an_ip_and_present_for_a_name() {
    let pki = Pki::new();
    let with_alias = pki
        .inter
        .leaf(Leaf::localhost().dns_name("sni.test"))
        .identity(&[&pki.inter]);
    let server = TestServer::start("127.0.0.1:0", with_alias, |b| b).await;
    let sni = |res: &portcullis::Response| res.headers()["x-tls-sni"].to_str().unwrap().to_owned();
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap();

    // https://127.0.0.1: no SNI (Node's P23), the IP SAN is checked.
    let res = agent.get(&server.ip_url("/")).send().await.unwrap();
    assert_eq!(sni(&res), "none");
    // https://localhost: SNI localhost.
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert_eq!(sni(&res), "localhost");
    // A Host header names the server (Node's servername default): SNI and check follow it.
    let res = agent
        .get(&server.ip_url("/"))
        .header("host", format!("sni.test:{}", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(sni(&res), "sni.test");
    // An explicit servername wins.
    let res = agent
        .get(&server.ip_url("/"))
        .tls(pki.trust().servername("sni.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(sni(&res), "sni.test");
    // servername "" sends none and checks the host.
    let res = agent
        .get(&server.url("/"))
        .tls(pki.trust().servername(""))
        .send()
        .await
        .unwrap();
    assert_eq!(sni(&res), "none");
}

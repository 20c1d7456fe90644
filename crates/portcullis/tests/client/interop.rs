//! The client against other servers: nginx (HTTP/1.1 and h2), Node's `https.createServer`,
//! Python's `ssl` module and `openssl s_server -www`, over TLS 1.2 and TLS 1.3.

use http::Version;
use portcullis::client::Agent;
use portcullis::tls::{ClientTlsOptions, TlsVersion};

use crate::support::*;

/// Writes the test PKI's leaf (+ intermediate) and key to a temp dir.
fn files() -> (
    Pki,
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.leaf.write(dir.path(), "server", &[&pki.inter]);
    (pki, dir, cert, key)
}

fn only(pki: &Pki, version: TlsVersion) -> ClientTlsOptions {
    pki.trust().min_version(version).max_version(version)
}

/// One request with `tls`; asserts the version the client and the server (header) saw.
async fn get_with(url: &str, tls: ClientTlsOptions, version: &str, server_header: bool) -> String {
    let agent = Agent::builder().no_proxy().tls(tls).build().unwrap();
    let res = agent
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url} over {version}: {e:?}"));
    assert_eq!(res.status(), 200);
    assert_eq!(res.tls_info().unwrap().version(), version);
    if server_header {
        assert_eq!(res.headers()["x-tls-version"], version, "{res:?}");
    }
    res.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx"]
async fn nginx_tls12_and_tls13_over_http1_and_h2() {
    for (protocols, version, wanted) in [
        ("TLSv1.2", TlsVersion::Tls12, "TLSv1.2"),
        ("TLSv1.3", TlsVersion::Tls13, "TLSv1.3"),
    ] {
        let (pki, dir, cert, key) = files();
        let nginx = nginx_server(dir, &cert, &key, protocols).await;

        // HTTP/1.1: the client offers only http/1.1.
        let agent = Agent::builder()
            .no_proxy()
            .keep_alive(true)
            .tls(only(&pki, version))
            .build()
            .unwrap();
        let res = agent.get(&nginx.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), Version::HTTP_11);
        assert_eq!(res.tls_info().unwrap().version(), wanted);
        assert_eq!(res.tls_info().unwrap().alpn(), Some("http/1.1"));
        assert_eq!(res.headers()["x-tls-version"], wanted);
        assert_eq!(res.headers()["x-http-version"], "HTTP/1.1");
        assert_eq!(res.text().await.unwrap(), "nginx\n");

        // h2 by ALPN; two requests share the connection.
        let agent = Agent::builder()
            .no_proxy()
            .http2(true)
            .tls(only(&pki, version))
            .build()
            .unwrap();
        for i in 0..2 {
            let res = agent.get(&nginx.url("/")).send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.version(), Version::HTTP_2);
            assert_eq!(res.tls_info().unwrap().alpn(), Some("h2"));
            assert_eq!(res.headers()["x-tls-version"], wanted);
            assert_eq!(res.headers()["x-http-version"], "HTTP/2.0");
            assert_eq!(res.reused_socket(), i > 0);
            assert_eq!(res.text().await.unwrap(), "nginx\n");
        }
        assert_eq!(agent.sockets(), 1, "one shared h2 connection");

        // The other version only: refused by the server's protocol_version alert.
        let other = match version {
            TlsVersion::Tls12 => TlsVersion::Tls13,
            _ => TlsVersion::Tls12,
        };
        let err = Agent::builder()
            .no_proxy()
            .tls(only(&pki, other))
            .build()
            .unwrap()
            .get(&nginx.url("/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_tls(), "{err:?}");
        assert_eq!(err.code(), Some("EPROTO"), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_https_server_tls12_and_tls13() {
    let (pki, dir, cert, key) = files();
    let node = node_server(dir, &cert, &key, "").await;
    for (version, wanted) in [
        (TlsVersion::Tls12, "TLSv1.2"),
        (TlsVersion::Tls13, "TLSv1.3"),
    ] {
        let body = get_with(&node.url("/"), only(&pki, version), wanted, true).await;
        assert!(body.starts_with("node v"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ssl_server_tls12_and_tls13() {
    let (pki, dir, cert, key) = files();
    let python = python_server(dir, &cert, &key, "").await;
    for (version, wanted) in [
        (TlsVersion::Tls12, "TLSv1.2"),
        (TlsVersion::Tls13, "TLSv1.3"),
    ] {
        let body = get_with(&python.url("/"), only(&pki, version), wanted, true).await;
        assert!(body.starts_with("python 3."), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_tls12_only_server_refuses_a_tls13_client() {
    let (pki, dir, cert, key) = files();
    let python = python_server(
        dir,
        &cert,
        &key,
        "ctx.maximum_version = ssl.TLSVersion.TLSv1_2",
    )
    .await;
    get_with(&python.url("/"), pki.trust(), "TLSv1.2", true).await;
    let err = Agent::builder()
        .no_proxy()
        .tls(only(&pki, TlsVersion::Tls13))
        .build()
        .unwrap()
        .get(&python.url("/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("EPROTO"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_server_www_tls12_and_tls13() {
    for (flag, version, wanted) in [
        ("-tls1_2", TlsVersion::Tls12, "TLSv1.2"),
        ("-tls1_3", TlsVersion::Tls13, "TLSv1.3"),
    ] {
        let (pki, dir, cert, key) = files();
        let server = openssl_server(dir, &cert, &key, &[flag]).await;
        // s_server -www answers HTTP/1.0 and closes; its page names the protocol.
        let body = get_with(&server.url("/"), only(&pki, version), wanted, false).await;
        assert!(
            body.contains(&format!("New, {wanted}, Cipher is")),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_server_receives_host_and_bodies_as_nodes_client_sends_them() {
    let (pki, dir, cert, key) = files();
    let node = node_server_with(
        dir,
        &cert,
        &key,
        "",
        "let n = 0;
         req.on('data', (d) => { n += d.length; });
         req.on('end', () => res.end([req.method, req.headers.host,
           req.headers['content-length'] || '-', req.headers['transfer-encoding'] || '-',
           req.headers.connection, n].join(' ')));",
    )
    .await;
    let port = node.addr.port();
    let agent = Agent::builder()
        .no_proxy()
        .keep_alive(true)
        .tls(pki.trust())
        .build()
        .unwrap();
    let get = agent.get(&node.url("/")).send().await.unwrap();
    assert_eq!(
        get.text().await.unwrap(),
        format!("GET localhost:{port} - - keep-alive 0")
    );
    let post = agent
        .request(http::Method::POST, &node.url("/upload"))
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert!(post.reused_socket());
    assert_eq!(
        post.text().await.unwrap(),
        format!("POST localhost:{port} 100000 - keep-alive 100000")
    );
    // A streamed body of unknown length goes chunked.
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 1000])));
    let stream = portcullis::client::RequestBody::stream(StreamIter(chunks));
    let put = agent
        .request(http::Method::PUT, &node.url("/"))
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.text().await.unwrap(),
        format!("PUT localhost:{port} - chunked keep-alive 10000")
    );
    // An empty POST still says Content-Length: 0, as Node's client does.
    let empty = agent
        .request(http::Method::POST, &node.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        empty.text().await.unwrap(),
        format!("POST localhost:{port} 0 - keep-alive 0")
    );
}

/// An iterator as a `Stream` (the test needs no stream utilities).
struct StreamIter<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for StreamIter<I> {
    type Item = I::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

//! Mutual TLS in one program: a server that requires client certificates signed by its CA, and
//! a client that presents one (Node's `requestCert: true, rejectUnauthorized: true` with `ca`,
//! and `https.request({ key, cert, ca })`). Everything is made in a temporary directory.
//!
//! ```sh
//! cargo run -p portcullis --example mtls
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::cert::{LeafOptions, LocalCa};
use portcullis::tls::{ClientTlsOptions, ServerTlsConfig};
use portcullis::{ConnectionInfo, Identity, Server};

fn identity(leaf: &portcullis::cert::LeafCertificate) -> portcullis::Result<Identity> {
    Identity::from_pem(leaf.chain_pem().as_bytes(), leaf.key_pem().as_bytes())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("portcullis-mtls-{}", std::process::id()));
    let ca = LocalCa::load_or_create(&dir)?;
    let server_leaf = LeafOptions::new(["localhost"]).generate(Some(&ca))?;
    let mut client = LeafOptions::new(["client-1"]);
    client.client_auth = true;
    let client_leaf = client.generate(Some(&ca))?;
    let ca_cert = portcullis::tls::load_certificates(ca.cert_path())?;

    let tls = ServerTlsConfig::builder()
        .identity(identity(&server_leaf)?)
        .request_cert(true)
        .reject_unauthorized(true)
        .client_ca(ca_cert.clone())
        .build()?;
    let server = Server::builder().tls(tls).build()?;
    let listener = server.bind("127.0.0.1:0").await?;
    let port = listener.local_addr().port();
    // The handler sees who the client is.
    let whoami = tower::service_fn(|req: Request<Incoming>| async move {
        let tls = req
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(|c| c.tls().cloned());
        let subject = tls
            .as_ref()
            .and_then(|t| t.peer_certificates().first())
            .map(|c| c.subject().to_string())
            .unwrap_or_default();
        let authorized = tls.as_ref().is_some_and(|t| t.is_authorized());
        let body = format!("hello {subject} (authorized: {authorized})\n");
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener, whoami).await }
    });

    let agent = portcullis::Agent::builder()
        .tls(
            ClientTlsOptions::new()
                .ca(ca_cert)
                .identity(identity(&client_leaf)?),
        )
        .build()?;
    let res = agent
        .get(&format!("https://localhost:{port}/"))
        .send()
        .await?;
    print!("{}", res.text().await?);

    // Without a client certificate the handshake is refused.
    let bare = portcullis::Agent::builder()
        .tls(ClientTlsOptions::new().ca(portcullis::tls::load_certificates(ca.cert_path())?))
        .build()?;
    match bare.get(&format!("https://localhost:{port}/")).send().await {
        Ok(res) => println!("unexpected: {}", res.status()),
        Err(e) => println!("without a client certificate: {e} ({:?})", e.code()),
    }

    server.handle().close().await;
    serving.await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

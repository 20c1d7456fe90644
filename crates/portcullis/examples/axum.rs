//! An axum `Router` served unchanged, reading the connection's TLS details per request.
//!
//! ```sh
//! cargo run -p portcullis --example axum -- cert.pem key.pem
//! curl -k https://localhost:8443/
//! ```

use axum::routing::get;
use axum::{Extension, Router};
use portcullis::{ConnectionInfo, Identity, Server};

async fn index(Extension(info): Extension<ConnectionInfo>) -> String {
    match info.tls() {
        Some(tls) => format!(
            "hello {} over {} with {} (ALPN {})\n",
            info.peer_addr(),
            tls.version(),
            tls.cipher_suite(),
            tls.alpn().unwrap_or("none"),
        ),
        None => format!("hello {} over plain HTTP\n", info.peer_addr()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cert = args.next().unwrap_or_else(|| "cert.pem".into());
    let key = args.next().unwrap_or_else(|| "key.pem".into());

    let app = Router::new().route("/", get(index));
    let server = Server::builder()
        .identity(Identity::from_pem_files(&cert, &key)?)
        .build()?;
    let listener = server.bind("127.0.0.1:8443").await?;
    println!("listening on https://{}", listener.local_addr());
    server.serve(listener, app).await?;
    Ok(())
}

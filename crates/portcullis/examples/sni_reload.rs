//! Two names on one port (SNI) with hot reload: `a.pem`/`a-key.pem` serve `a.test`,
//! `b.pem`/`b-key.pem` serve `b.test` and clients without SNI, and a change to any of the files
//! swaps the configuration in for new connections (Node's `setSecureContext`), established
//! ones keeping theirs, resumption state kept.
//!
//! ```sh
//! portcullis cert new a.test --out-cert a.pem --out-key a-key.pem
//! portcullis cert new b.test --out-cert b.pem --out-key b-key.pem
//! cargo run -p portcullis --example sni_reload
//! curl --cacert ~/.local/share/portcullis/ca.pem --resolve a.test:8443:127.0.0.1 https://a.test:8443/
//! ```

use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::tls::ServerTlsConfig;
use portcullis::{ConnectionInfo, Identity, Server, ServerHandle};

const FILES: [&str; 4] = ["a.pem", "a-key.pem", "b.pem", "b-key.pem"];

fn config() -> portcullis::Result<ServerTlsConfig> {
    ServerTlsConfig::builder()
        .identity(Identity::from_pem_files("b.pem", "b-key.pem")?)
        .sni("a.test", Identity::from_pem_files("a.pem", "a-key.pem")?)
        .build()
}

fn stamps() -> Vec<Option<SystemTime>> {
    FILES
        .iter()
        .map(|f| {
            std::fs::metadata(Path::new(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .collect()
}

/// Polls the files every second; a change rebuilds and swaps the configuration, a broken file
/// keeps the running one.
async fn watch(handle: ServerHandle) {
    let mut seen = stamps();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stamps();
        if now == seen {
            continue;
        }
        seen = now;
        match config().and_then(|c| handle.set_tls_config(c)) {
            Ok(()) => eprintln!("reloaded"),
            Err(e) => eprintln!("reload failed, keeping the running configuration: {e}"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().tls(config()?).build()?;
    tokio::spawn(watch(server.handle()));
    let app = tower::service_fn(|req: Request<Incoming>| async move {
        let name = req
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(|c| c.tls())
            .and_then(|t| t.server_name().map(str::to_owned))
            .unwrap_or_else(|| "(no SNI)".into());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "hello {name}\n"
        )))))
    });
    eprintln!("listening on https://127.0.0.1:8443/");
    server.serve("127.0.0.1:8443", app).await?;
    Ok(())
}

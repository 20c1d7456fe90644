//! Serve until Ctrl-C (or SIGTERM), then close as Node's `server.close()` does: stop accepting,
//! let in-flight requests finish (up to 10 s here), and exit once every connection is gone.
//!
//! ```sh
//! cargo run -p portcullis --example graceful_shutdown
//! curl --cacert ~/.local/share/portcullis/ca.pem https://localhost:8443/slow &  # then Ctrl-C
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::cert::{default_dir, LocalCa};
use portcullis::{Identity, Server};

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => None } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    eprintln!("shutting down: in-flight requests may finish");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The local development CA's localhost certificate (as `portcullis serve` uses).
    let ca = LocalCa::load_or_create(default_dir())?;
    let leaf = ca.localhost()?;
    let server = Server::builder()
        .identity(Identity::from_pem_files(&leaf.cert_path, &leaf.key_path)?)
        .shutdown_timeout(Duration::from_secs(10))
        .build()?;
    let app = tower::service_fn(|req: Request<Incoming>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
    });
    eprintln!("listening on https://localhost:8443/ (Ctrl-C to stop)");
    server
        .serve_with_shutdown("127.0.0.1:8443", app, shutdown_signal())
        .await?;
    eprintln!("closed");
    Ok(())
}

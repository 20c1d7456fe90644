//! The portcullis server of the benchmark: `portcullis::Server` with the library's defaults,
//! except the key exchange group (X25519, as every server in the benchmark), a keep-alive
//! timeout longer than the idle-connection measurement, and hyper's header-count limit (100,
//! as bare-hello) instead of the default 2000.
//!
//! `portcullis-hello PORT CERT KEY [current|multi]` serves on 127.0.0.1:PORT:
//! - `/bulk`: 1 GiB, a 64 KiB chunk repeated;
//! - `/stats`: `full N resumed M`, the handshakes seen so far (to check the handshake rows);
//! - anything else: `hello world\n` (12 bytes).
//!
//! The runtime is tokio's current-thread one, or (`multi`) the multi-thread one with one worker.
//! The allocator is glibc's malloc; `--features jemalloc` or `--features mimalloc` builds the
//! variants measured in PROFILE.md.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use portcullis::{Identity, Server, ServerTlsConfig};

/// A body of `left` bytes sent as slices of `chunk` (one frame for the hello reply).
struct Payload {
    left: u64,
    chunk: Bytes,
}

impl Payload {
    fn once(bytes: Bytes) -> Self {
        Self {
            left: bytes.len() as u64,
            chunk: bytes,
        }
    }
}

impl Body for Payload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[derive(Default)]
struct Counts {
    full: AtomicU64,
    resumed: AtomicU64,
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BULK_BYTES: u64 = 1 << 30;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, cert, key) = match &args[..] {
        [port, cert, key, ..] => (port.parse::<u16>()?, cert, key),
        _ => return Err("usage: portcullis-hello PORT CERT KEY [current|multi]".into()),
    };
    let runtime = match args.get(3).map(String::as_str) {
        None | Some("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some("multi") => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
        Some(other) => return Err(format!("unknown runtime {other}").into()),
    };

    let counts = Arc::new(Counts::default());
    let tls = ServerTlsConfig::builder()
        .identity(Identity::from_pem_files(cert, key)?)
        .kx_groups(["X25519"])
        .build()?;
    let seen = counts.clone();
    // The same header-count limit as bare-hello (hyper's 100). The library's default of 2000
    // makes hyper prepare 2000 header slots per request (see RESULTS.md);
    // `MAX_HEADERS_COUNT=2000` measures that.
    let max_headers = std::env::var("MAX_HEADERS_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let server = Server::builder()
        .max_headers_count(max_headers)
        .tls(tls)
        .keep_alive_timeout(Duration::from_secs(600))
        .on_secure_connection(move |info| {
            let resumed = info.tls().is_some_and(|t| t.is_resumed());
            let counter = if resumed { &seen.resumed } else { &seen.full };
            counter.fetch_add(1, Ordering::Relaxed);
            true
        })
        .build()?;

    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let service = tower::service_fn(move |req: Request<Incoming>| {
        let body = match req.uri().path() {
            "/bulk" => Payload {
                left: BULK_BYTES,
                chunk: chunk.clone(),
            },
            "/stats" => Payload::once(Bytes::from(format!(
                "full {} resumed {}\n",
                counts.full.load(Ordering::Relaxed),
                counts.resumed.load(Ordering::Relaxed)
            ))),
            _ => Payload::once(Bytes::from_static(b"hello world\n")),
        };
        async move { Ok::<_, Infallible>(Response::new(body)) }
    });

    runtime.block_on(async move {
        let listener = server.bind(("127.0.0.1", port)).await?;
        println!("listening on https://{}", listener.local_addr());
        server.serve(listener, service).await?;
        Ok(())
    })
}

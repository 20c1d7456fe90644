//! The bare baseline of the benchmark: the hello server a Rust user writes by hand with
//! hyper-util's auto builder and tokio-rustls, on the aws-lc-rs provider with X25519 only.
//! rustls's other defaults stay (stateful TLS 1.3 resumption from a 256-entry cache).
//!
//! `bare-hello PORT CERT KEY [current|multi]`: same routes as portcullis-hello (`/bulk`,
//! `/stats`, else `hello world\n`) and the same runtime choice.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use rustls::crypto::aws_lc_rs;
use rustls::server::ServerConfig;
use rustls::HandshakeKind;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

const BULK_BYTES: u64 = 1 << 30;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, cert, key) = match &args[..] {
        [port, cert, key, ..] => (port.parse::<u16>()?, cert, key),
        _ => return Err("usage: bare-hello PORT CERT KEY [current|multi]".into()),
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

    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519],
        ..aws_lc_rs::default_provider()
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let counts = Arc::new(Counts::default());
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on https://{}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let (acceptor, counts, chunk) = (acceptor.clone(), counts.clone(), chunk.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let counter = match tls.get_ref().1.handshake_kind() {
                    Some(HandshakeKind::Resumed) => &counts.resumed,
                    _ => &counts.full,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
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
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}

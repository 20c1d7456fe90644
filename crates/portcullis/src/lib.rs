//! # portcullis
//!
//! An HTTPS server with Node's `https.Server` options, names and semantics (timeouts, limits,
//! `close`, `closeIdleConnections`, `closeAllConnections`), ESP-IDF's connection controls
//! (connection cap with LRU purge, per-connection TLS info, insecure transport), on hyper 1
//! and rustls 0.23 with the aws-lc-rs provider.
//!
//! ```no_run
//! use portcullis::{Identity, Server};
//!
//! # async fn run() -> portcullis::Result<()> {
//! let server = Server::builder()
//!     .identity(Identity::from_pem_files("cert.pem", "key.pem")?)
//!     .build()?;
//! let hello = tower::service_fn(|_req| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(
//!         http_body_util::Full::new(bytes::Bytes::from_static(b"hello world\n")),
//!     ))
//! });
//! server.serve("127.0.0.1:8000", hello).await
//! # }
//! ```
//!
//! Every request carries a [`ConnectionInfo`] extension; [`ServerHandle`] closes the server and
//! reads its live connection counts from anywhere.

#[cfg(feature = "acme")]
pub mod acme;
pub mod cert;
pub mod client;
mod error;
#[cfg(feature = "files")]
pub mod files;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod server;
pub mod tls;

pub use client::{Agent, Response};
pub use error::{Error, Result};
pub use server::{ConnectionInfo, Server, ServerBuilder, ServerHandle, TlsInfo};
pub use tls::{Identity, Passphrase, PeerCertificate, ServerTlsConfig, TicketKeys};

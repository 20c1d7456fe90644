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
//!
//! The client, Node's `https.Agent` with `request`/`get` (see [`client`]):
//!
//! ```no_run
//! # async fn run() -> portcullis::Result<()> {
//! use portcullis::tls::ClientTlsOptions;
//!
//! let agent = portcullis::Agent::builder()
//!     .keep_alive(true)
//!     .tls(ClientTlsOptions::new().ca(portcullis::tls::load_certificates("ca.pem")?))
//!     .build()?;
//! let res = agent.post("https://api.test/items").json(&serde_json::json!({"n": 1})).send().await?;
//! println!("{} over {:?}", res.status(), res.tls_info().map(|t| t.version()));
//! # Ok(()) }
//! ```
//!
//! Certificates (see [`cert`]): a local development CA and leaves signed by it.
//!
//! ```no_run
//! # fn run() -> portcullis::Result<()> {
//! let ca = portcullis::cert::LocalCa::load_or_create(portcullis::cert::default_dir())?;
//! let leaf = portcullis::cert::LeafOptions::new(["localhost", "127.0.0.1"]).generate(Some(&ca))?;
//! std::fs::write("localhost.pem", leaf.chain_pem()).expect("writable");
//! # Ok(()) }
//! ```
//!
//! The `http` types the API takes and returns are re-exported: [`Method`], [`StatusCode`],
//! [`HeaderMap`], [`header`], [`Uri`], [`Version`], and the crate itself as [`http`].

// The library holds no unsafe code at all (the workspace denies it; only the CLI allows one
// audited allocator call).
#![forbid(unsafe_code)]

#[cfg(feature = "acme")]
pub mod acme;
#[cfg(feature = "cert")]
pub mod cert;
#[cfg(feature = "client")]
pub mod client;
mod error;
#[cfg(feature = "files")]
pub mod files;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod server;
pub mod tls;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;

#[cfg(feature = "client")]
pub use client::{Agent, Response};
pub use error::{Error, Result};
pub use http::{self, header, HeaderMap, Method, StatusCode, Uri, Version};
pub use server::{ConnectionInfo, Server, ServerBuilder, ServerHandle, TlsInfo};
pub use tls::{Identity, Passphrase, PeerCertificate, ServerTlsConfig, TicketKeys};

//! What the tests of `portcullis` and `portcullis-cli` share. Each test binary takes the module
//! it needs as its `support`:
//!
//! - [`server`]: a portcullis server on a loopback port with a CA on disk, raw TLS clients,
//!   curl against it, a trace capture (the server tests, `tests/e2e`);
//! - [`files`]: key material in every format OpenSSL writes (`tests/e2e`);
//! - [`client`]: a PKI made with rcgen, a server that reports what it sees, and real servers
//!   to talk to: nginx, Node, Python, `openssl s_server` (the client tests, `tests/client`);
//! - [`cli`]: the `portcullis` binary run as a process, `curl -i` parsing, a plain backend
//!   (the CLI's tests).
//!
//! Every module re-exports [`common`] (waiting, tool checks, ports).
#![allow(dead_code, missing_debug_implementations, clippy::new_without_default)]

pub mod cli;
pub mod client;
pub mod common;
pub mod files;
pub mod server;

pub use common::*;

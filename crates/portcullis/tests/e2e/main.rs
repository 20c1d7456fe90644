//! End-to-end tests of the HTTPS server against real clients on loopback.

use portcullis_test_support::files as support_files;
use portcullis_test_support::server as support;

mod alerts;
mod client;
mod clients;
mod close;
mod hooks;
mod http1_framing;
mod identity_formats;
mod idle_release;
mod limits;
mod openssl_made;
mod stats;
mod timeouts;
mod tls;
mod transport;

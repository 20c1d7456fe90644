//! End-to-end tests of the HTTPS client (`portcullis::client`) against real servers on
//! loopback: our own server, nginx, Node, Python and `openssl s_server`, with certificates
//! made at test time.

use portcullis_test_support::client as support;

mod api;
mod badssl;
mod errors;
mod interop;
mod mtls;
mod openssl_made;
mod pinning;
mod pool;
mod proxy;
mod sessions;

//! End-to-end tests of the HTTPS server against real clients on loopback.

mod support;
mod support_files;

mod client;
mod clients;
mod close;
mod hooks;
mod identity_formats;
mod idle_release;
mod limits;
mod timeouts;
mod tls;
mod transport;

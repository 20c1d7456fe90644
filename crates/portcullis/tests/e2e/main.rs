//! End-to-end tests of the HTTPS server against real clients on loopback.

mod support;

mod clients;
mod close;
mod hooks;
mod limits;
mod timeouts;
mod tls;
mod transport;

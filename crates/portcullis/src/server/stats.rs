//! What a server counts for monitoring ([`ServerBuilder::stats`](super::ServerBuilder::stats)),
//! read as one [`ServerStats`] snapshot with [`ServerHandle::stats`](super::ServerHandle::stats).
//!
//! The counters are plain atomics, added to with relaxed ordering where things happen (accept,
//! handshake, response head, timeout, socket read and write): no lock on the request path.
//! Handshake failures, rare and keyed by an open set of Node codes, are counted under a mutex.
//! Connection states are not counted but read from the registry when a snapshot is taken.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use http::{StatusCode, Version};

/// A snapshot of a server's counters. Counters only grow, from the server's start; the
/// connection counts are live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now, by state.
    pub connections: ConnectionStates,
    /// Connections accepted (taken a place among `max_connections`).
    pub accepted: u64,
    /// Connections refused at `max_connections` with nothing idle to purge.
    pub refused: u64,
    /// Idle connections closed to make room: the LRU purge at `max_connections`, and idle
    /// connections closed when the process ran out of file descriptors.
    pub purged: u64,
    /// TLS handshakes completed without resuming a session.
    pub handshakes_full: u64,
    /// TLS handshakes that resumed a session (ticket or session ID).
    pub handshakes_resumed: u64,
    /// Connections that ended before or in their handshake, by Node error code
    /// (`ERR_SSL_NO_SHARED_CIPHER`, `ERR_TLS_HANDSHAKE_TIMEOUT`, `ECONNRESET`, ...).
    pub handshake_failures: BTreeMap<&'static str, u64>,
    /// Responses begun, by HTTP version (`"1.0"`, `"1.1"`, `"2"`) and status class (`"1xx"` to
    /// `"5xx"`). Counts what the server's handlers and its own canned answers (400, 417, 431)
    /// produce; not hyper's own 400 or 431 for a request that does not parse, nor the 408 of
    /// a timeout (counted in `timeouts`).
    pub requests: BTreeMap<(&'static str, &'static str), u64>,
    /// Timeouts that ended a request or a connection, by kind.
    pub timeouts: TimeoutCounts,
    /// Bytes read from and written to client sockets (TLS records included).
    pub bytes_in: u64,
    /// See `bytes_in`.
    pub bytes_out: u64,
    /// The certificates the server presents, with their expiry.
    pub certificates: Vec<CertificateExpiry>,
}

/// Open connections by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStates {
    /// Accepted, TLS handshake not finished.
    pub handshaking: usize,
    /// In a request (or waiting for the first one after the handshake).
    pub active: usize,
    /// Between requests, holding their HTTP state.
    pub idle: usize,
    /// Between requests, HTTP state released (only the TLS stream kept; see
    /// [`release_idle_buffers_after`](super::ServerBuilder::release_idle_buffers_after)).
    pub released: usize,
}

/// Timeouts by kind, named after the options that set them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimeoutCounts {
    /// `headers_timeout`: the request head did not arrive in time (408).
    pub headers: u64,
    /// `request_timeout`: the request body did not arrive in time (408, or a drop once the
    /// response has begun).
    pub request: u64,
    /// `keep_alive_timeout`: an idle connection was closed.
    pub keep_alive: u64,
    /// `handshake_timeout`: the TLS handshake did not complete in time.
    pub handshake: u64,
    /// `inactivity_timeout` (Node's `server.timeout`): a socket saw no I/O in time.
    pub idle: u64,
}

/// One certificate the server presents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateExpiry {
    /// `"default"` for the identity given to the builder (or obtained by ACME), else the SNI
    /// name it was added for.
    pub identity: String,
    /// The leaf certificate's `notAfter`.
    pub not_after: SystemTime,
}

impl CertificateExpiry {
    pub(crate) fn new(identity: &str, not_after: SystemTime) -> Self {
        Self {
            identity: identity.to_owned(),
            not_after,
        }
    }
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutKind {
    Headers,
    Request,
    KeepAlive,
    Handshake,
    Idle,
}

const VERSIONS: [&str; 3] = ["1.0", "1.1", "2"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    purged: AtomicU64,
    handshakes_full: AtomicU64,
    handshakes_resumed: AtomicU64,
    handshake_failures: Mutex<BTreeMap<&'static str, u64>>,
    requests: [[AtomicU64; 5]; 3],
    timeouts: [AtomicU64; 5],
    /// Apart from the others: written on every read and write, by every worker thread.
    bytes: Bytes,
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Bytes {
    read: AtomicU64,
    written: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn accepted(&self) {
        add(&self.accepted, 1);
    }

    pub(crate) fn refused(&self) {
        add(&self.refused, 1);
    }

    pub(crate) fn purged(&self, n: usize) {
        add(&self.purged, n as u64);
    }

    pub(crate) fn handshake(&self, resumed: bool) {
        add(
            if resumed {
                &self.handshakes_resumed
            } else {
                &self.handshakes_full
            },
            1,
        );
    }

    pub(crate) fn handshake_failed(&self, code: &'static str) {
        *self
            .handshake_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    pub(crate) fn response(&self, version: Version, status: StatusCode) {
        let v = match version {
            Version::HTTP_09 | Version::HTTP_10 => 0,
            Version::HTTP_11 => 1,
            _ => 2,
        };
        let class = usize::from((status.as_u16() / 100).clamp(1, 5) - 1);
        add(&self.requests[v][class], 1);
    }

    pub(crate) fn timeout(&self, kind: TimeoutKind) {
        add(&self.timeouts[kind as usize], 1);
    }

    pub(crate) fn read(&self, n: usize) {
        add(&self.bytes.read, n as u64);
    }

    pub(crate) fn written(&self, n: usize) {
        add(&self.bytes.written, n as u64);
    }

    /// The counters (everything but connection states and certificates).
    pub(crate) fn snapshot(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut requests = BTreeMap::new();
        for (v, row) in self.requests.iter().enumerate() {
            for (class, count) in row.iter().enumerate() {
                let n = get(count);
                if n > 0 {
                    requests.insert((VERSIONS[v], CLASSES[class]), n);
                }
            }
        }
        let t = |kind: TimeoutKind| get(&self.timeouts[kind as usize]);
        ServerStats {
            connections: ConnectionStates::default(),
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            purged: get(&self.purged),
            handshakes_full: get(&self.handshakes_full),
            handshakes_resumed: get(&self.handshakes_resumed),
            handshake_failures: self
                .handshake_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            requests,
            timeouts: TimeoutCounts {
                headers: t(TimeoutKind::Headers),
                request: t(TimeoutKind::Request),
                keep_alive: t(TimeoutKind::KeepAlive),
                handshake: t(TimeoutKind::Handshake),
                idle: t(TimeoutKind::Idle),
            },
            bytes_in: get(&self.bytes.read),
            bytes_out: get(&self.bytes.written),
            certificates: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_version_and_class() {
        let c = Counters::default();
        c.response(Version::HTTP_11, StatusCode::OK);
        c.response(Version::HTTP_11, StatusCode::NO_CONTENT);
        c.response(Version::HTTP_2, StatusCode::NOT_FOUND);
        c.response(Version::HTTP_10, StatusCode::INTERNAL_SERVER_ERROR);
        c.response(Version::HTTP_11, StatusCode::SWITCHING_PROTOCOLS);
        let s = c.snapshot();
        assert_eq!(s.requests[&("1.1", "2xx")], 2);
        assert_eq!(s.requests[&("1.1", "1xx")], 1);
        assert_eq!(s.requests[&("2", "4xx")], 1);
        assert_eq!(s.requests[&("1.0", "5xx")], 1);
        assert_eq!(s.requests.len(), 4, "classes never seen are left out");
    }

    #[test]
    fn timeouts_and_failures_are_counted_by_kind_and_code() {
        let c = Counters::default();
        c.timeout(TimeoutKind::Headers);
        c.timeout(TimeoutKind::Idle);
        c.timeout(TimeoutKind::Idle);
        c.handshake_failed("ERR_SSL_NO_SHARED_CIPHER");
        c.handshake_failed("ERR_SSL_NO_SHARED_CIPHER");
        c.handshake(true);
        let s = c.snapshot();
        assert_eq!(
            (s.timeouts.headers, s.timeouts.idle, s.timeouts.request),
            (1, 2, 0)
        );
        assert_eq!(s.handshake_failures["ERR_SSL_NO_SHARED_CIPHER"], 2);
        assert_eq!((s.handshakes_full, s.handshakes_resumed), (0, 1));
    }
}

//! Binding listeners with a listen backlog that absorbs bursts: the system's `somaxconn` on
//! Linux (as nginx does), 1024 elsewhere, where std and mio would use 128 — a burst of 2,000
//! connects then overflows the accept queue and clients wait seconds for a SYN retransmit.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, ToSocketAddrs};

/// The backlog when none is configured.
pub(crate) fn default_backlog() -> u32 {
    static BACKLOG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map_or(1024, |n| n.clamp(128, 65535))
    })
}

/// Binds the first address `addr` resolves to that can be bound (as `TcpListener::bind`),
/// listening with `backlog`.
pub(crate) async fn bind(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        match bind_one(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As std and mio do on Unix: a restarted server can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_backlog_is_at_least_nginxs() {
        assert!(default_backlog() >= 128);
        #[cfg(target_os = "linux")]
        if let Ok(s) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
            let somaxconn: u32 = s.trim().parse().unwrap();
            assert_eq!(default_backlog(), somaxconn.clamp(128, 65535));
        }
    }

    #[tokio::test]
    async fn a_burst_beyond_128_waits_in_the_accept_queue() {
        // Nothing accepts while 600 clients connect: with a backlog of 128 most would be left
        // waiting for a SYN retransmit (a second or more); here every connect completes.
        let listener = bind("127.0.0.1:0", 1024).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..600 {
            let connect = tokio::net::TcpStream::connect(addr);
            let stream = tokio::time::timeout(std::time::Duration::from_millis(900), connect)
                .await
                .expect("the connect completes without a SYN retransmit")
                .unwrap();
            clients.push(stream);
        }
        drop(listener);
    }
}

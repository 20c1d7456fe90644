//! Listening sockets handed over by systemd socket activation (`sd_listen_fds(3)`): with
//! `portcullis.socket` holding the ports, a restart (or an upgrade of the binary) refuses no
//! connection: while no process accepts, the kernel queues new connections on the socket,
//! and the next process takes the same socket. The same protocol lets any supervisor pass
//! sockets (`systemd-socket-activate`, or a parent that keeps the socket across restarts).
//!
//! The sockets are descriptors 3, 4, … (`LISTEN_FDS` of them) when `LISTEN_PID` is this
//! process; `LISTEN_FDNAMES` names them. One named `http` becomes the plain-HTTP listener
//! (`--http-listen`); all others serve HTTPS.

use std::net::TcpListener;
#[cfg(target_os = "linux")]
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

#[cfg(target_os = "linux")]
use anyhow::{bail, Context};

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
#[cfg(target_os = "linux")]
const FIRST_FD: RawFd = 3;

/// Sockets passed to this process, by role.
#[derive(Debug, Default)]
pub struct Inherited {
    pub https: Vec<TcpListener>,
    pub http: Option<TcpListener>,
}

/// Systemd is Linux's: elsewhere nothing is passed.
#[cfg(not(target_os = "linux"))]
pub fn take() -> anyhow::Result<Option<Inherited>> {
    Ok(None)
}

/// Takes the passed sockets, once: the variables are removed so that nothing started from
/// here takes them again. `None` when no sockets were passed to this process.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // taking ownership of the passed descriptors; see SAFETY below
pub fn take() -> anyhow::Result<Option<Inherited>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None); // meant for another process (a parent that did not clear them)
    }
    let count: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=64).contains(n))
        .with_context(|| format!("LISTEN_FDS={count:?} is not a count of sockets (1 to 64)"))?;
    let names: Vec<&str> = names
        .as_deref()
        .map_or(Vec::new(), |n| n.split(':').collect());
    let mut inherited = Inherited::default();
    for i in 0..count {
        let fd = FIRST_FD + i;
        // SAFETY: the socket-activation protocol hands descriptors 3 to 3 + LISTEN_FDS - 1 to
        // the process named by LISTEN_PID, which was checked to be this one; they are taken
        // here once, at start-up before anything else runs, and the variables that name them
        // are gone, so nothing else in the process owns them.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = names.get(i as usize).copied().unwrap_or("");
        let listener =
            listening_tcp(owned).with_context(|| format!("passed descriptor {fd} ({name:?})"))?;
        if name == "http" {
            if inherited.http.is_some() {
                bail!("two passed sockets are named \"http\"");
            }
            inherited.http = Some(listener);
        } else {
            inherited.https.push(listener);
        }
    }
    if inherited.https.is_empty() {
        bail!("the passed sockets hold no HTTPS listener (all are named \"http\")");
    }
    Ok(Some(inherited))
}

#[cfg(target_os = "linux")]
/// `fd` as a TCP listener, if it is one (a passed UNIX or UDP socket, or a socket nobody
/// called listen on, is refused rather than served wrongly).
fn listening_tcp(fd: OwnedFd) -> anyhow::Result<TcpListener> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let kind = sockopt::socket_type(&fd).context("not a socket")?;
    let family = rustix::net::getsockname(&fd)
        .map(|addr| addr.address_family())
        .context("not a socket")?;
    if kind != SocketType::STREAM || !matches!(family, AddressFamily::INET | AddressFamily::INET6) {
        bail!("not a TCP socket");
    }
    if !sockopt::socket_acceptconn(&fd).context("not a socket")? {
        bail!("a TCP socket that is not listening");
    }
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).context("fcntl")?;
    let listener = TcpListener::from(fd);
    listener.set_nonblocking(true).context("O_NONBLOCK")?;
    Ok(listener)
}

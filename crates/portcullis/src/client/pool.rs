//! The agent's socket pool, keyed like Node's `getName`: at most `max_sockets` per key and
//! `max_total_sockets` overall, requests beyond that queued in order, free sockets taken LIFO
//! or FIFO, at most `max_free_sockets` kept per key, each closed after its idle timeout.
//!
//! Idle timeouts cost one task per pool, not one per socket: free sockets carry their deadline,
//! a checkout skips those past it, and a single reaper task (started when the first deadline
//! is set, ended when none is left) closes the rest as their time comes.
//!
//! Every request holds a [`Lease`] from [`Pool::checkout`] until its response ends. The lease
//! owns the request's place in the counts, so a request dropped at any await point (a timeout,
//! an abort, a failed connect) gives its place back instead of leaking it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::connect::Conn;
use super::Scheduling;

/// Pool limits (Node's Agent options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_sockets: usize,
    pub(crate) max_total_sockets: usize,
    pub(crate) max_free_sockets: usize,
    pub(crate) scheduling: Scheduling,
}

/// A free socket and when its idle time is up.
#[derive(Debug)]
struct Free {
    conn: Conn,
    deadline: Option<Instant>,
}

impl Free {
    fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now) || self.conn.is_closed()
    }
}

#[derive(Debug, Default)]
struct Host {
    free: VecDeque<Free>,
    /// Sockets carrying a request, or being opened for one.
    busy: usize,
    /// Of `busy`, those still being opened (a lease without a connection yet).
    opening: usize,
    /// Queued requests; `true` marks one that waits for a connection being opened, in case
    /// it turns out HTTP/2 and can be shared.
    waiting: VecDeque<(bool, oneshot::Sender<Lease>)>,
    /// A shared HTTP/2 connection, if one is open (counted in `total`, not in `busy`).
    h2: Option<Conn>,
}

impl Host {
    fn sockets(&self) -> usize {
        self.busy + self.free.len() + usize::from(self.h2.is_some())
    }

    /// Whether the first queued request could be given room for a new socket, the total
    /// limit aside.
    fn can_serve(&self, limits: &Limits) -> bool {
        self.waiting
            .front()
            .is_some_and(|(for_h2, _)| !(*for_h2 && self.opening > 0))
            && self.sockets() < limits.max_sockets
    }
}

#[derive(Debug, Default)]
struct State {
    hosts: HashMap<String, Host>,
    total: usize,
    /// The reaper task is running.
    reaping: bool,
}

#[derive(Debug)]
pub(crate) struct Pool {
    state: Mutex<State>,
    limits: Limits,
    me: Weak<Pool>,
    /// Tells the reaper that an earlier deadline was set.
    reaper: Notify,
}

/// A request's hold on the pool: a socket (reused or just opened), or the right to open one.
/// Given back with [`Lease::release`] when the response ends; dropped, it closes its socket
/// and frees its place.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<Pool>,
    key: String,
    conn: Option<Conn>,
    /// Holds one of the pool's places (a busy socket). False for a request on a shared
    /// HTTP/2 connection, which holds none.
    counted: bool,
    /// May the socket be pooled after the response, and for how long.
    keep: bool,
    idle: Option<Duration>,
}

impl Lease {
    /// The socket, once there is one.
    pub(crate) fn conn(&self) -> Option<&Conn> {
        self.conn.as_ref()
    }

    pub(crate) fn conn_mut(&mut self) -> Option<&mut Conn> {
        self.conn.as_mut()
    }

    /// Installs the socket just opened for this lease. An HTTP/2 connection becomes the
    /// origin's shared connection: queued requests get it at once, and this request stops
    /// holding a place of its own. Requests that waited to see whether it would be HTTP/2
    /// are let go to open their own sockets otherwise.
    pub(crate) fn attach(&mut self, conn: Conn) {
        if self.counted && self.conn.is_none() {
            if conn.is_http2() {
                self.pool.share_h2(&self.key, &conn);
                self.counted = false;
            } else {
                self.pool.opened(&self.key);
            }
        }
        self.conn = Some(conn);
    }

    /// What to do with the socket when the response ends.
    pub(crate) fn set_keep(&mut self, keep: bool, idle: Option<Duration>) {
        self.keep = keep;
        self.idle = idle;
    }

    /// Gives the socket back: kept for reuse when `complete` and keep-alive allows it.
    pub(crate) fn release(mut self, complete: bool) {
        if !self.counted {
            return;
        }
        self.counted = false;
        match self.conn.take() {
            Some(conn) => self
                .pool
                .release(&self.key, conn, complete && self.keep, self.idle),
            None => self.pool.discard(&self.key),
        }
    }

    /// Takes the socket out without touching the counts (the caller fixed them).
    fn disarm(mut self) -> Option<Conn> {
        self.counted = false;
        self.conn.take()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        match self.conn.take() {
            Some(conn) => self.pool.release(&self.key, conn, false, None),
            None => self.pool.discard(&self.key),
        }
    }
}

impl Pool {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State::default()),
            limits,
            me: me.clone(),
            reaper: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lease(&self, key: &str, conn: Option<Conn>, counted: bool) -> Lease {
        Lease {
            // `self` is always inside the Arc made by `new`, and a method call keeps it alive.
            pool: self.me.upgrade().expect("the pool is alive while in use"),
            key: key.to_owned(),
            conn,
            counted,
            keep: false,
            idle: None,
        }
    }

    /// A free socket for `key`, the shared HTTP/2 connection, room for a new socket (a lease
    /// without a connection: the caller opens one and [`attaches`](Lease::attach) it), or a
    /// place in the queue until one of those is available.
    ///
    /// With `h2` (the request offers HTTP/2), a request finding a connection being opened
    /// waits for it rather than opening another: it may be shared.
    pub(crate) async fn checkout(&self, key: &str, h2: bool) -> Lease {
        let rx = {
            let mut state = self.lock();
            let state = &mut *state;
            let host = state.hosts.entry(key.to_owned()).or_default();
            if let Some(h2) = &host.h2 {
                match h2.share() {
                    Some(shared) if !h2.is_closed() => return self.lease(key, Some(shared), false),
                    _ => {
                        host.h2 = None;
                        state.total -= 1;
                    }
                }
            }
            let now = Instant::now();
            loop {
                let next = match self.limits.scheduling {
                    Scheduling::Lifo => host.free.pop_back(),
                    Scheduling::Fifo => host.free.pop_front(),
                };
                match next {
                    Some(free) if free.expired(now) => state.total -= 1,
                    Some(free) => {
                        host.busy += 1;
                        return self.lease(key, Some(free.conn), true);
                    }
                    None => break,
                }
            }
            let may_share = h2 && host.opening > 0;
            if !may_share && host.sockets() < self.limits.max_sockets {
                // At the total limit, another origin's idle socket makes way.
                if state.total >= self.limits.max_total_sockets {
                    self.close_idle_elsewhere(state, key);
                }
                if state.total < self.limits.max_total_sockets {
                    let host = state.hosts.entry(key.to_owned()).or_default();
                    host.busy += 1;
                    host.opening += 1;
                    state.total += 1;
                    return self.lease(key, None, true);
                }
            }
            let (tx, rx) = oneshot::channel();
            let host = state.hosts.entry(key.to_owned()).or_default();
            host.waiting.push_back((may_share, tx));
            rx
        };
        match rx.await {
            Ok(lease) => lease,
            // Senders are only dropped after a send; should one vanish, open a socket.
            Err(_) => {
                {
                    let mut state = self.lock();
                    let host = state.hosts.entry(key.to_owned()).or_default();
                    host.busy += 1;
                    host.opening += 1;
                    state.total += 1;
                }
                self.lease(key, None, true)
            }
        }
    }

    /// Makes `conn` the origin's shared HTTP/2 connection: the place of the request that opened
    /// it becomes the connection's, and every queued request gets a handle on it.
    fn share_h2(&self, key: &str, conn: &Conn) {
        let mut state = self.lock();
        let state = &mut *state;
        let (Some(host), Some(shared)) = (state.hosts.get_mut(key), conn.share()) else {
            return;
        };
        host.busy = host.busy.saturating_sub(1);
        host.opening = host.opening.saturating_sub(1);
        if host.h2.replace(shared).is_some() {
            // Two requests raced to open one; the older connection ends with its requests.
            state.total = state.total.saturating_sub(1);
        }
        while let Some((_, waiter)) = host.waiting.pop_front() {
            if let Err(lease) = waiter.send(self.lease(key, conn.share(), false)) {
                drop(lease.disarm());
            }
        }
    }

    /// An HTTP/1 socket was opened: requests that waited for it in case it was HTTP/2 may
    /// now open their own.
    fn opened(&self, key: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(host) = state.hosts.get_mut(key) {
            host.opening = host.opening.saturating_sub(1);
        }
        self.wake(state, key);
    }

    /// Gives a counted socket back after its response: to the first queued request, to the
    /// free list (for at most `idle` when given), or closed.
    fn release(&self, key: &str, conn: Conn, keep: bool, idle: Option<Duration>) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(host) = state.hosts.get_mut(key) else {
            return;
        };
        host.busy = host.busy.saturating_sub(1);
        if !keep || conn.is_closed() {
            state.total = state.total.saturating_sub(1);
            self.wake(state, key);
            return;
        }
        let mut conn = conn;
        while let Some((_, waiter)) = host.waiting.pop_front() {
            host.busy += 1;
            match waiter.send(self.lease(key, Some(conn), true)) {
                Ok(()) => return,
                Err(lease) => {
                    host.busy -= 1;
                    match lease.disarm() {
                        Some(back) => conn = back,
                        None => unreachable!("the lease was made with the connection"),
                    }
                }
            }
        }
        if host.free.len() >= self.limits.max_free_sockets {
            state.total = state.total.saturating_sub(1);
            return;
        }
        let deadline = idle.map(|idle| Instant::now() + idle);
        host.free.push_back(Free { conn, deadline });
        // A request to another origin waiting under max_total_sockets gets this place.
        self.wake(state, key);
        if deadline.is_some() {
            if state.reaping {
                self.reaper.notify_one();
            } else {
                state.reaping = true;
                tokio::spawn(reap(self.me.clone()));
            }
        }
    }

    /// Gives back the place of a socket that was never made (connect failed or the request
    /// was dropped before it connected).
    fn discard(&self, key: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        state.total = state.total.saturating_sub(1);
        if let Some(host) = state.hosts.get_mut(key) {
            host.busy = host.busy.saturating_sub(1);
            host.opening = host.opening.saturating_sub(1);
        }
        self.wake(state, key);
    }

    /// Hands queued requests room for new sockets while the limits allow: those of `first`
    /// in order, then other origins' (Node's `removeSocket`), closing idle sockets of origins
    /// nobody waits for when the total limit is the obstacle.
    fn wake(&self, state: &mut State, first: &str) {
        let mut keys = vec![first.to_owned()];
        keys.extend(
            state
                .hosts
                .iter()
                .filter(|(k, h)| k.as_str() != first && !h.waiting.is_empty())
                .map(|(k, _)| k.clone()),
        );
        for key in keys {
            while state
                .hosts
                .get(&key)
                .is_some_and(|h| h.can_serve(&self.limits))
            {
                if state.total >= self.limits.max_total_sockets
                    && !self.close_idle_elsewhere(state, &key)
                {
                    return;
                }
                let Some(host) = state.hosts.get_mut(&key) else {
                    break;
                };
                let Some((_, waiter)) = host.waiting.pop_front() else {
                    break;
                };
                host.busy += 1;
                host.opening += 1;
                state.total += 1;
                if let Err(lease) = waiter.send(self.lease(&key, None, true)) {
                    drop(lease.disarm());
                    host.busy -= 1;
                    host.opening -= 1;
                    state.total -= 1;
                }
            }
        }
    }

    /// Closes the longest-idle free socket of an origin other than `key` with nobody waiting;
    /// false when there is none.
    fn close_idle_elsewhere(&self, state: &mut State, key: &str) -> bool {
        let victim = state
            .hosts
            .iter_mut()
            .filter(|(k, h)| k.as_str() != key && h.waiting.is_empty())
            .find_map(|(_, h)| h.free.pop_front());
        // A socket closed here leaves its deadline behind; the reaper finds none and moves on.
        match victim {
            Some(_closed) => {
                state.total = state.total.saturating_sub(1);
                true
            }
            None => false,
        }
    }

    /// Closes the free sockets whose idle time is up; the next deadline, or `None` (and the
    /// reaper stops) when no free socket has one.
    fn expire(&self) -> Option<Instant> {
        let mut state = self.lock();
        let state = &mut *state;
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut woken = Vec::new();
        for (key, host) in &mut state.hosts {
            let before = host.free.len();
            host.free.retain(|free| !free.expired(now));
            let closed = before - host.free.len();
            if closed > 0 {
                state.total -= closed;
                woken.push(key.clone());
            }
            for deadline in host.free.iter().filter_map(|f| f.deadline) {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        // Origins nobody uses any more are forgotten.
        state
            .hosts
            .retain(|_, h| h.sockets() > 0 || !h.waiting.is_empty());
        for key in woken {
            self.wake(state, &key);
        }
        if next.is_none() {
            state.reaping = false;
        }
        next
    }

    /// All sockets open or being opened.
    pub(crate) fn total(&self) -> usize {
        self.lock().total
    }

    /// Free sockets over all origins that are still open (one the server closed leaves the
    /// count at once, as from Node's `agent.freeSockets`, though its place is given back only
    /// at the next checkout or by the reaper).
    pub(crate) fn free(&self) -> usize {
        self.lock()
            .hosts
            .values()
            .map(|h| h.free.iter().filter(|f| !f.conn.is_closed()).count())
            .sum()
    }

    /// Requests queued for a socket over all origins.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().hosts.values().map(|h| h.waiting.len()).sum()
    }
}

/// The pool's one timer: sleeps until the earliest idle deadline (or until told of an earlier
/// one), closes what has expired, and ends when no free socket has a deadline.
async fn reap(pool: Weak<Pool>) {
    loop {
        let Some(strong) = pool.upgrade() else { return };
        let Some(next) = strong.expire() else { return };
        let notified = strong.reaper.notified();
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = notified => {}
        }
    }
}

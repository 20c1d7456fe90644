//! The agent's socket pool, keyed like Node's `getName`: at most `max_sockets` per key and
//! `max_total_sockets` overall, requests beyond that queued in order, free sockets taken LIFO
//! or FIFO, at most `max_free_sockets` kept per key, each closed after its idle timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

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

/// What a request gets from the pool.
#[derive(Debug)]
pub(crate) enum Grant {
    /// A free socket, reused.
    Reuse(Conn),
    /// Room for a new socket, which the caller opens (and must give back or discard).
    Create,
}

#[derive(Debug, Default)]
struct Host {
    free: VecDeque<(u64, Conn)>,
    busy: usize,
    waiting: VecDeque<oneshot::Sender<Grant>>,
    /// A shared HTTP/2 connection, if one is open.
    h2: Option<Conn>,
}

#[derive(Debug, Default)]
struct State {
    hosts: HashMap<String, Host>,
    total: usize,
    next_id: u64,
}

#[derive(Debug)]
pub(crate) struct Pool {
    state: Mutex<State>,
    limits: Limits,
    me: Weak<Pool>,
}

impl Pool {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State::default()),
            limits,
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A free socket for `key`, room for a new one, or a place in the queue.
    pub(crate) async fn checkout(&self, key: &str) -> Grant {
        let rx = {
            let mut state = self.lock();
            let state = &mut *state;
            let host = state.hosts.entry(key.to_owned()).or_default();
            if let Some(h2) = host
                .h2
                .as_ref()
                .filter(|c| !c.is_closed())
                .and_then(Conn::share)
            {
                return Grant::Reuse(h2);
            }
            loop {
                let next = match self.limits.scheduling {
                    Scheduling::Lifo => host.free.pop_back(),
                    Scheduling::Fifo => host.free.pop_front(),
                };
                match next {
                    Some((_, conn)) if conn.is_closed() => state.total -= 1,
                    Some((_, conn)) => {
                        host.busy += 1;
                        return Grant::Reuse(conn);
                    }
                    None => break,
                }
            }
            if host.busy + host.free.len() < self.limits.max_sockets
                && state.total < self.limits.max_total_sockets
            {
                host.busy += 1;
                state.total += 1;
                return Grant::Create;
            }
            let (tx, rx) = oneshot::channel();
            host.waiting.push_back(tx);
            rx
        };
        // The pool outlives every request it serves; a dropped sender means the agent is gone.
        rx.await.unwrap_or(Grant::Create)
    }

    /// Keeps an HTTP/2 connection for sharing; its slot is given back.
    pub(crate) fn share_h2(&self, key: &str, conn: &Conn) {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(host) = state.hosts.get_mut(key) {
            host.h2 = conn.share();
        }
    }

    /// Gives a socket back after its response: to the first queued request, to the free list
    /// (for at most `idle` when given), or closed.
    pub(crate) fn release(&self, key: &str, conn: Conn, keep: bool, idle: Option<Duration>) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(host) = state.hosts.get_mut(key) else {
            return;
        };
        if conn.is_http2() {
            // Shared connections do not hold a per-request slot beyond the request.
            host.busy = host.busy.saturating_sub(1);
            state.total = state.total.saturating_sub(1);
            Self::wake_one(host, &mut state.total, self.limits);
            return;
        }
        host.busy = host.busy.saturating_sub(1);
        if !keep || conn.is_closed() {
            state.total = state.total.saturating_sub(1);
            Self::wake_one(host, &mut state.total, self.limits);
            return;
        }
        let mut conn = conn;
        while let Some(waiter) = host.waiting.pop_front() {
            host.busy += 1;
            match waiter.send(Grant::Reuse(conn)) {
                Ok(()) => return,
                Err(Grant::Reuse(back)) => {
                    host.busy -= 1;
                    conn = back;
                }
                Err(Grant::Create) => unreachable!("we sent Reuse"),
            }
        }
        if host.free.len() >= self.limits.max_free_sockets {
            state.total = state.total.saturating_sub(1);
            return;
        }
        state.next_id += 1;
        let id = state.next_id;
        host.free.push_back((id, conn));
        if let Some(idle) = idle {
            let pool = self.me.clone();
            let key = key.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(idle).await;
                if let Some(pool) = pool.upgrade() {
                    pool.expire(&key, id);
                }
            });
        }
    }

    /// Gives back the slot of a socket that was never made (connect failed).
    pub(crate) fn discard(&self, key: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        state.total = state.total.saturating_sub(1);
        if let Some(host) = state.hosts.get_mut(key) {
            host.busy = host.busy.saturating_sub(1);
            Self::wake_one(host, &mut state.total, self.limits);
        }
    }

    /// Hands the first queued request room for a new socket, if the limits allow.
    fn wake_one(host: &mut Host, total: &mut usize, limits: Limits) {
        while host.busy + host.free.len() < limits.max_sockets && *total < limits.max_total_sockets
        {
            let Some(waiter) = host.waiting.pop_front() else {
                return;
            };
            host.busy += 1;
            *total += 1;
            if waiter.send(Grant::Create).is_ok() {
                return;
            }
            host.busy -= 1;
            *total -= 1;
        }
    }

    fn expire(&self, key: &str, id: u64) {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(host) = state.hosts.get_mut(key) {
            let before = host.free.len();
            host.free.retain(|(i, _)| *i != id);
            if host.free.len() < before {
                state.total -= 1;
            }
        }
    }

    /// All sockets open or being opened.
    pub(crate) fn total(&self) -> usize {
        self.lock().total
    }
}

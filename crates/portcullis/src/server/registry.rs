//! The connection registry: every connection known as handshaking, active or idle.
//!
//! It is the only state the connections share. `close()`, `close_idle_connections()`,
//! `close_all_connections()`, the live counts and the LRU purge all read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{watch, Notify};

/// Live connection counts, as [`ServerHandle::connections`](super::ServerHandle::connections) gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Accepted, TLS handshake not finished (includes PROXY header and protocol sniffing).
    pub handshaking: usize,
    /// Inside a request: waiting for or reading a request, or answering one. As in Node, a
    /// connection that has sent nothing since its handshake counts as active.
    pub active: usize,
    /// Between requests, after a complete response.
    pub idle: usize,
}

impl ConnectionCounts {
    /// All connections.
    pub fn total(&self) -> usize {
        self.handshaking + self.active + self.idle
    }
}

/// Where a connection is in its life. Stored in an `AtomicU8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Handshaking = 0,
    /// Waiting for, or reading, a request head.
    Head = 1,
    /// Head received; the body is still arriving (or may be).
    Body = 2,
    /// The whole request is in; the response is being produced.
    Processing = 3,
    /// The last response is complete; nothing in flight.
    Idle = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Phase::Handshaking,
            1 => Phase::Head,
            2 => Phase::Body,
            3 => Phase::Processing,
            _ => Phase::Idle,
        }
    }
}

/// Fired once, awaited by many: the server's stop signal and the client's abort.
pub(crate) type Signal = tokio_util::sync::CancellationToken;

/// One connection's shared state: written by its own task, read by the registry.
#[derive(Debug)]
pub(crate) struct ConnShared {
    pub(crate) id: u64,
    phase: AtomicU8,
    /// Microseconds since the registry's epoch when the connection last became idle (fine
    /// enough that connections idle one after another are told apart by the LRU purge).
    idle_since_us: AtomicU64,
    /// HTTP/2 streams in flight.
    in_flight: AtomicUsize,
    /// Requests received on this connection, for `max_requests_per_socket`.
    pub(crate) requests: AtomicUsize,
    /// The current response's head has been produced.
    response_started: AtomicBool,
    /// Finish in-flight work, then close (HTTP/1.1 `Connection: close`, h2 GOAWAY).
    graceful: Signal,
    /// Drop the connection now.
    kill: Signal,
    /// Every byte written has been flushed (hyper flushes its stream only once its own write
    /// buffer is empty), so hyper's connection state can be released without losing output.
    flushed: AtomicBool,
    /// The connection's HTTP/1 state is being released: a shutdown hyper asks for now must
    /// leave the stream open.
    parking: AtomicBool,
    /// A request carried `Upgrade:` and was answered without switching protocols: hyper keeps
    /// the upgrade pending until its connection ends and would then hand the stream to it, so
    /// the connection's hyper state must not be released.
    stale_upgrade: AtomicBool,
    /// The connection ends in an error the peer may still be sending into (a refused handshake,
    /// a TLS error, a 408): its socket lingers on close (see `server/socket.rs`).
    linger: AtomicBool,
    /// Idle with its HTTP/1 state released, waiting for the next request on the stream alone.
    released: AtomicBool,
    events: Arc<Events>,
}

/// What the registry shares with every connection: the clock the LRU order is kept on, and
/// the wake-up of accept loops waiting for a place or a descriptor.
#[derive(Debug)]
struct Events {
    epoch: Instant,
    /// Accept loops waiting (see [`Registry::freed`]).
    waiting: AtomicUsize,
    /// A connection left, or became idle (and so can be purged) with LRU purge on.
    freed: Notify,
    lru_purge: bool,
    /// With [`ServerBuilder::stats`](super::ServerBuilder::stats).
    counters: Option<super::stats::Counters>,
    /// [`Registry::drain`]: every HTTP/1 response says `Connection: close`.
    draining: AtomicBool,
}

impl Events {
    fn wake(&self, idle: bool) {
        // SeqCst pairs with `Registry::freed`: either the waiter sees the new phase, or this
        // sees the waiter.
        if (!idle || self.lru_purge) && self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }
}

impl ConnShared {
    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        if phase != Phase::Processing && phase != Phase::Body {
            self.response_started.store(false, Ordering::Release);
        }
        if phase == Phase::Idle {
            self.idle_since_us.store(
                self.events.epoch.elapsed().as_micros() as u64,
                Ordering::Release,
            );
            self.phase.store(phase as u8, Ordering::SeqCst);
            self.events.wake(true);
        } else {
            self.phase.store(phase as u8, Ordering::Release);
        }
    }

    pub(crate) fn idle_since(&self) -> Instant {
        self.events.epoch + Duration::from_micros(self.idle_since_us.load(Ordering::Acquire))
    }

    pub(crate) fn mark_response_started(&self) {
        self.response_started.store(true, Ordering::Release);
    }

    pub(crate) fn response_started(&self) -> bool {
        self.response_started.load(Ordering::Acquire)
    }

    /// Asks the connection to finish gracefully.
    pub(crate) fn fire_graceful(&self) {
        self.graceful.cancel();
    }

    /// Asks the connection to drop now.
    pub(crate) fn fire_kill(&self) {
        self.kill.cancel();
    }

    pub(crate) fn is_graceful(&self) -> bool {
        self.graceful.is_cancelled()
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.kill.is_cancelled()
    }

    /// Resolves when `graceful` (unless `seen_graceful`) or `kill` is set.
    pub(crate) async fn control_changed(&self, seen_graceful: bool) {
        if seen_graceful {
            return self.kill.cancelled().await;
        }
        tokio::select! {
            biased;
            () = self.kill.cancelled() => {}
            () = self.graceful.cancelled() => {}
        }
    }

    pub(crate) fn set_flushed(&self, flushed: bool) {
        self.flushed.store(flushed, Ordering::Relaxed);
    }

    pub(crate) fn is_flushed(&self) -> bool {
        self.flushed.load(Ordering::Relaxed)
    }

    pub(crate) fn set_parking(&self, parking: bool) {
        self.parking.store(parking, Ordering::Relaxed);
    }

    pub(crate) fn is_parking(&self) -> bool {
        self.parking.load(Ordering::Relaxed)
    }

    pub(crate) fn set_stale_upgrade(&self) {
        self.stale_upgrade.store(true, Ordering::Relaxed);
    }

    pub(crate) fn has_stale_upgrade(&self) -> bool {
        self.stale_upgrade.load(Ordering::Relaxed)
    }

    /// The server's counters, when it keeps them.
    pub(crate) fn counters(&self) -> Option<&super::stats::Counters> {
        self.events.counters.as_ref()
    }

    /// The server is draining: this connection's responses end it.
    pub(crate) fn is_draining(&self) -> bool {
        self.events.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn set_released(&self, released: bool) {
        self.released.store(released, Ordering::Relaxed);
    }

    pub(crate) fn set_linger(&self) {
        self.linger.store(true, Ordering::Relaxed);
    }

    pub(crate) fn wants_linger(&self) -> bool {
        self.linger.load(Ordering::Relaxed)
    }

    /// An HTTP/2 stream began.
    pub(crate) fn stream_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.phase.store(Phase::Processing as u8, Ordering::Release);
    }

    /// An HTTP/2 stream's response ended; the connection is idle when none is left.
    pub(crate) fn stream_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.set_phase(Phase::Idle);
        }
    }
}

/// Why [`Registry::admit`] turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// At `max_connections`, with nothing idle to purge.
    Full,
}

#[derive(Debug)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnShared>>>,
    next_id: AtomicU64,
    closing: AtomicBool,
    /// How many connections are registered, for `wait_empty`.
    count: watch::Sender<usize>,
    events: Arc<Events>,
    max_connections: usize,
    lru_purge: bool,
}

impl Registry {
    #[cfg(test)]
    pub(crate) fn new(max_connections: usize, lru_purge: bool) -> Self {
        Self::with_stats(max_connections, lru_purge, false)
    }

    /// A registry that also holds the server's counters when `stats`.
    pub(crate) fn with_stats(max_connections: usize, lru_purge: bool, stats: bool) -> Self {
        Self {
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closing: AtomicBool::new(false),
            count: watch::Sender::new(0),
            events: Arc::new(Events {
                epoch: Instant::now(),
                waiting: AtomicUsize::new(0),
                freed: Notify::new(),
                lru_purge,
                counters: stats.then(super::stats::Counters::default),
                draining: AtomicBool::new(false),
            }),
            max_connections,
            lru_purge,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnShared>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`admit`](Self::admit), but when the server is full and LRU purge is on, waits up to
    /// `wait` for a connection to become idle (and be purged) or to close, so a visitor who
    /// arrives while every place holds a connection still in its handshake is served a moment
    /// later instead of refused. Meanwhile new connections wait in the listen queue, as they do
    /// at nginx's `worker_connections`.
    pub(crate) async fn admit_within(
        self: &Arc<Self>,
        wait: Duration,
    ) -> Result<ConnGuard, Refused> {
        match self.admit() {
            Err(Refused::Full) if self.lru_purge && !wait.is_zero() => {}
            other => return other,
        }
        let deadline = Instant::now() + wait;
        loop {
            let admitted = self.freed(deadline, || match self.admit() {
                Err(Refused::Full) => None,
                other => Some(other),
            });
            match admitted.await {
                Some(admitted) => return admitted,
                None if Instant::now() >= deadline => return Err(Refused::Full),
                None => {}
            }
        }
    }

    /// Waits until a connection leaves or (with LRU purge on) becomes idle, or until
    /// `deadline`, unless `ready` has what is waited for first. Returns what `ready` returned.
    pub(crate) async fn freed<T>(
        &self,
        deadline: Instant,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.events.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.events.waiting);
        let freed = self.events.freed.notified();
        tokio::pin!(freed);
        // Registered before the check, so a wake-up between the two is not lost.
        freed.as_mut().enable();
        if let Some(done) = ready() {
            return Some(done);
        }
        let _ = tokio::time::timeout_at(deadline, freed).await;
        ready()
    }

    /// Registers a new connection, purging the least-recently-used idle one when full
    /// (if `lru_purge`), or refusing it.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<ConnGuard, Refused> {
        let mut conns = self.lock();
        if self.max_connections > 0 && conns.len() >= self.max_connections {
            let victim = self
                .lru_purge
                .then(|| {
                    conns
                        .values()
                        .filter(|c| c.phase() == Phase::Idle)
                        .min_by_key(|c| c.idle_since_us.load(Ordering::Acquire))
                        .map(|c| c.id)
                })
                .flatten();
            let Some(victim) = victim else {
                return Err(Refused::Full);
            };
            if let Some(conn) = conns.remove(&victim) {
                tracing::debug!(
                    id = victim,
                    "max_connections reached; purging LRU idle connection"
                );
                conn.fire_kill();
                if let Some(counters) = self.counters() {
                    counters.purged(1);
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnShared {
            id,
            phase: AtomicU8::new(Phase::Handshaking as u8),
            idle_since_us: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            response_started: AtomicBool::new(false),
            graceful: Signal::new(),
            kill: Signal::new(),
            flushed: AtomicBool::new(true),
            parking: AtomicBool::new(false),
            stale_upgrade: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            released: AtomicBool::new(false),
            events: self.events.clone(),
        });
        // Accepted while close() began (the accept loop had the connection before it saw the
        // stop): served like those already open, one request and `Connection: close`, rather
        // than dropped unanswered.
        if self.closing.load(Ordering::SeqCst) {
            conn.fire_graceful();
        }
        conns.insert(id, conn.clone());
        self.count.send_replace(conns.len());
        Ok(ConnGuard {
            registry: self.clone(),
            conn,
        })
    }

    /// The server's counters, when it keeps them.
    pub(crate) fn counters(&self) -> Option<&super::stats::Counters> {
        self.events.counters.as_ref()
    }

    /// Connections by state, released idle ones apart.
    pub(crate) fn states(&self) -> super::stats::ConnectionStates {
        let mut states = super::stats::ConnectionStates::default();
        for conn in self.lock().values() {
            match conn.phase() {
                Phase::Handshaking => states.handshaking += 1,
                Phase::Idle if conn.released.load(Ordering::Relaxed) => states.released += 1,
                Phase::Idle => states.idle += 1,
                _ => states.active += 1,
            }
        }
        states
    }

    /// Connections by state, released idle ones counted as idle.
    pub(crate) fn counts(&self) -> ConnectionCounts {
        let states = self.states();
        ConnectionCounts {
            handshaking: states.handshaking,
            active: states.active,
            idle: states.idle + states.released,
        }
    }

    /// How many connections are registered, without walking them.
    pub(crate) fn len(&self) -> usize {
        *self.count.borrow()
    }

    /// Closing, or draining.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst) || self.events.draining.load(Ordering::Relaxed)
    }

    /// Connections end after their next response, without a race with a request the client
    /// may be sending: every HTTP/1 response from now on says `Connection: close` (hyper then
    /// closes), and an HTTP/2 connection with streams in flight gets GOAWAY (streams it has not
    /// taken are refused, which a client may retry). Nothing else is closed: hyper's graceful
    /// shutdown would drop an HTTP/1 request whose head is still arriving, and an idle
    /// connection closed now may cross a request on its way. Those end with their next
    /// response, or at `close()`.
    pub(crate) fn drain(&self) {
        self.events.draining.store(true, Ordering::Relaxed);
        for conn in self.lock().values() {
            if conn.in_flight.load(Ordering::Acquire) > 0 {
                conn.fire_graceful();
            }
        }
    }

    /// Every connection finishes gracefully: handshakes complete (within their timeout), a
    /// connection that has sent no request yet is given a moment for its first, requests in
    /// flight finish with `Connection: close`, idle connections close. As in Node, a connection
    /// mid-handshake or silent since its handshake is not dropped.
    pub(crate) fn start_closing(&self) {
        let conns = self.lock();
        self.closing.store(true, Ordering::SeqCst);
        for conn in conns.values() {
            conn.fire_graceful();
        }
    }

    pub(crate) fn close_idle(&self) {
        for conn in self.lock().values() {
            if conn.phase() == Phase::Idle {
                conn.fire_graceful();
            }
        }
    }

    /// Closes up to `n` idle connections, least recently used first, to give their
    /// descriptors to new clients when the process has none left (nginx's
    /// `ngx_drain_connections`). Only with LRU purge on. Returns how many were closed.
    pub(crate) fn drain_idle(&self, n: usize) -> usize {
        if !self.lru_purge {
            return 0;
        }
        let mut conns = self.lock();
        let mut idle: Vec<(u64, u64)> = conns
            .values()
            .filter(|c| c.phase() == Phase::Idle)
            .map(|c| (c.idle_since_us.load(Ordering::Acquire), c.id))
            .collect();
        idle.sort_unstable();
        let mut closed = 0;
        for (_, id) in idle.into_iter().take(n) {
            if let Some(conn) = conns.remove(&id) {
                conn.fire_kill();
                closed += 1;
            }
        }
        if closed > 0 {
            self.count.send_replace(conns.len());
            if let Some(counters) = self.counters() {
                counters.purged(closed);
            }
        }
        closed
    }

    pub(crate) fn close_all(&self) {
        for conn in self.lock().values() {
            conn.fire_kill();
        }
    }

    /// Resolves when no connection is left.
    pub(crate) async fn wait_empty(&self) {
        // The sender lives as long as `self`, so `wait_for` cannot fail.
        let _ = self.count.subscribe().wait_for(|n| *n == 0).await;
    }
}

/// Owned by a connection's task; unregisters the connection when dropped.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    registry: Arc<Registry>,
    pub(crate) conn: Arc<ConnShared>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut conns = self.registry.lock();
        conns.remove(&self.conn.id);
        self.registry.count.send_replace(conns.len());
        drop(conns);
        self.registry.events.wake(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_closes_the_least_recently_used_idle_connections_only() {
        let reg = Arc::new(Registry::new(0, true));
        let guards: Vec<_> = (0..4).map(|_| reg.admit().unwrap()).collect();
        guards[3].conn.set_phase(Phase::Idle);
        std::thread::sleep(Duration::from_millis(2));
        guards[1].conn.set_phase(Phase::Idle);
        guards[2].conn.set_phase(Phase::Processing);
        assert_eq!(reg.drain_idle(1), 1);
        assert!(guards[3].conn.is_killed(), "the oldest idle one goes first");
        assert!(!guards[1].conn.is_killed());
        assert_eq!(reg.drain_idle(32), 1);
        assert!(guards[1].conn.is_killed());
        assert!(!guards[0].conn.is_killed() && !guards[2].conn.is_killed());
        let strict = Arc::new(Registry::new(0, false));
        let idle = strict.admit().unwrap();
        idle.conn.set_phase(Phase::Idle);
        assert_eq!(strict.drain_idle(32), 0, "not without LRU purge");
    }

    #[test]
    fn lru_purge_picks_oldest_idle() {
        let reg = Arc::new(Registry::new(2, true));
        let a = reg.admit().unwrap();
        let b = reg.admit().unwrap();
        b.conn.set_phase(Phase::Idle);
        std::thread::sleep(Duration::from_millis(5));
        a.conn.set_phase(Phase::Idle);
        let _c = reg.admit().unwrap();
        assert!(b.conn.is_killed());
        assert!(!a.conn.is_killed());
    }

    #[test]
    fn full_without_idle_or_purge_refuses() {
        let reg = Arc::new(Registry::new(1, true));
        let a = reg.admit().unwrap();
        a.conn.set_phase(Phase::Head);
        assert_eq!(reg.admit().unwrap_err(), Refused::Full);
        let reg = Arc::new(Registry::new(1, false));
        let a = reg.admit().unwrap();
        a.conn.set_phase(Phase::Idle);
        assert_eq!(reg.admit().unwrap_err(), Refused::Full);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_server_waits_for_a_place_then_refuses() {
        let reg = Arc::new(Registry::new(2, true));
        let a = reg.admit().unwrap();
        let _b = reg.admit().unwrap();
        // Both still in their handshake: nothing to purge. The third waits, and is admitted by
        // purging `a` the moment it becomes idle.
        let waiting = tokio::spawn({
            let reg = reg.clone();
            async move { reg.admit_within(Duration::from_secs(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "waits while every place is handshaking"
        );
        a.conn.set_phase(Phase::Idle);
        let third = tokio::time::timeout(Duration::from_millis(10), waiting)
            .await
            .expect("admitted at once when a connection becomes idle")
            .unwrap();
        assert!(third.is_ok());
        assert!(a.conn.is_killed(), "by purging the idle one");
        // Nothing changes now: refused when the wait is over, not before.
        let start = Instant::now();
        assert_eq!(
            reg.admit_within(Duration::from_secs(1)).await.unwrap_err(),
            Refused::Full
        );
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_place_freed_by_a_closing_connection_is_taken_by_the_waiter() {
        let reg = Arc::new(Registry::new(1, true));
        let a = reg.admit().unwrap();
        let waiting = tokio::spawn({
            let reg = reg.clone();
            async move { reg.admit_within(Duration::from_secs(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(a);
        let admitted = tokio::time::timeout(Duration::from_millis(10), waiting)
            .await
            .expect("admitted when the connection closed")
            .unwrap();
        assert!(admitted.is_ok());
    }

    /// How long `Registry::freed` waits (a second at most), on a task of its own.
    fn wait_for_freed(reg: &Arc<Registry>) -> tokio::task::JoinHandle<Duration> {
        let reg = reg.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            reg.freed(start + Duration::from_secs(1), || None::<()>)
                .await;
            start.elapsed()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_descriptors_the_wait_ends_when_a_connection_closes() {
        // Without LRU purge an idle connection frees nothing: only a close ends the wait.
        let reg = Arc::new(Registry::new(0, false));
        let a = reg.admit().unwrap();
        let b = reg.admit().unwrap();
        let waiter = wait_for_freed(&reg);
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.conn.set_phase(Phase::Idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiter.is_finished(),
            "an idle connection is no descriptor without purge"
        );
        drop(b);
        let waited = waiter.await.unwrap();
        assert_eq!(waited, Duration::from_millis(200), "woken by the close");
        // With LRU purge, an idle connection can be drained: that ends the wait too.
        let reg = Arc::new(Registry::new(0, true));
        let a = reg.admit().unwrap();
        let waiter = wait_for_freed(&reg);
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.conn.set_phase(Phase::Idle);
        assert_eq!(waiter.await.unwrap(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn without_purge_a_full_server_refuses_at_once() {
        let reg = Arc::new(Registry::new(1, false));
        let _a = reg.admit().unwrap();
        let start = Instant::now();
        assert_eq!(
            reg.admit_within(Duration::from_secs(1)).await.unwrap_err(),
            Refused::Full
        );
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "Node's maxConnections: dropped at once"
        );
    }

    #[test]
    fn counts_follow_phases() {
        let reg = Arc::new(Registry::new(0, true));
        let a = reg.admit().unwrap();
        let b = reg.admit().unwrap();
        let _c = reg.admit().unwrap();
        a.conn.set_phase(Phase::Idle);
        b.conn.set_phase(Phase::Body);
        let counts = reg.counts();
        assert_eq!((counts.handshaking, counts.active, counts.idle), (1, 1, 1));
        assert_eq!(reg.len(), 3);
        drop(a);
        assert_eq!(reg.counts().total(), 2);
        assert_eq!(reg.len(), 2);
        assert_eq!(reg.drain_idle(1), 0);
        b.conn.set_phase(Phase::Idle);
        assert_eq!(reg.drain_idle(1), 1);
        assert_eq!(
            reg.len(),
            1,
            "a drained connection leaves the count at once"
        );
    }
}

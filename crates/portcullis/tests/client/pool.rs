//! The agent's pool, observed from the server: connections accepted (`on_connection`), open
//! (`ServerHandle::connections`) and which one carried a request (`x-conn-id`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis::client::{AbortController, Agent, Scheduling};

use crate::support::*;

async fn server() -> (Pki, TestServer) {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    (pki, server)
}

fn keep_alive(pki: &Pki) -> portcullis::client::AgentBuilder {
    Agent::builder()
        .no_proxy()
        .keep_alive(true)
        .tls(pki.trust())
}

/// GETs `url`, reads the body, returns the server's connection id for it.
async fn conn_id(agent: &Agent, url: &str) -> u64 {
    let res = agent.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-conn-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    res.text().await.unwrap();
    id
}

/// Samples `f` every few ms until stopped; returns the largest value seen.
fn sample_max(
    stop: Arc<AtomicBool>,
    f: impl Fn() -> usize + Send + 'static,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut max = 0;
        while !stop.load(Ordering::SeqCst) {
            max = max.max(f());
            // The sampling period, not a wait for state.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        max
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_sequential_keep_alive_requests_use_one_connection() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).build().unwrap();
    let mut ids = HashSet::new();
    for i in 0..100 {
        let res = agent.get(&server.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        // Node's req.reusedSocket: false, then true (P25).
        assert_eq!(res.reused_socket(), i > 0, "request {i}");
        assert_eq!(res.headers()["x-req-connection"], "keep-alive");
        ids.insert(res.headers()["x-conn-id"].to_str().unwrap().to_owned());
        assert_eq!(res.text().await.unwrap(), "hello world\n");
    }
    assert_eq!(server.accepts(), 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(agent.sockets(), 1);
    assert_eq!(server.open(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_keep_alive_agent_closes_each_socket() {
    let (pki, server) = server().await;
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .build()
        .unwrap();
    for _ in 0..3 {
        let res = agent.get(&server.url("/")).send().await.unwrap();
        assert!(!res.reused_socket());
        assert_eq!(res.headers()["x-req-connection"], "close");
        res.text().await.unwrap();
    }
    assert_eq!(server.accepts(), 3);
    assert_eq!(agent.sockets(), 0);
    assert!(eventually(Duration::from_secs(2), || server.open() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sockets_2_queues_10_concurrent_requests_on_2_connections() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).max_sockets(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = server.handle.clone();
    let server_peak = sample_max(stop.clone(), move || handle.connections().total());
    let a = agent.clone();
    let client_peak = sample_max(stop.clone(), move || a.sockets());

    let started = std::time::Instant::now();
    let url = server.url("/sleep/150");
    let requests = (0..10).map(|_| {
        let agent = agent.clone();
        let url = url.clone();
        tokio::spawn(async move { conn_id(&agent, &url).await })
    });
    let mut ids = HashSet::new();
    for r in futures_join(requests).await {
        ids.insert(r);
    }
    stop.store(true, Ordering::SeqCst);
    // 10 requests of 150 ms, two at a time: five rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.accepts(), 2);
    assert_eq!(ids.len(), 2);
    assert_eq!(server_peak.await.unwrap(), 2);
    assert_eq!(client_peak.await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sockets_holds_without_keep_alive_too() {
    let (pki, server) = server().await;
    let agent = Agent::builder()
        .no_proxy()
        .tls(pki.trust())
        .max_sockets(2)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let a = agent.clone();
    let client_peak = sample_max(stop.clone(), move || a.sockets());
    let url = server.url("/sleep/50");
    let requests = (0..10).map(|_| {
        let agent = agent.clone();
        let url = url.clone();
        tokio::spawn(async move { conn_id(&agent, &url).await })
    });
    let ids: HashSet<u64> = futures_join(requests).await.into_iter().collect();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(ids.len(), 10, "a new connection per request");
    assert_eq!(server.accepts(), 10);
    assert_eq!(client_peak.await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_free_sockets_closes_the_surplus() {
    for (max_free, kept) in [(1, 1), (256, 3)] {
        let (pki, server) = server().await;
        let agent = keep_alive(&pki).max_free_sockets(max_free).build().unwrap();
        let url = server.url("/sleep/100");
        let requests = (0..3).map(|_| {
            let agent = agent.clone();
            let url = url.clone();
            tokio::spawn(async move { conn_id(&agent, &url).await })
        });
        let ids: HashSet<u64> = futures_join(requests).await.into_iter().collect();
        assert_eq!(ids.len(), 3);
        assert!(
            eventually(Duration::from_secs(2), || server.open() == kept).await,
            "max_free_sockets {max_free}: server has {} open",
            server.open()
        );
        // A check that nothing more closes: the count holds for a while.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(server.open(), kept, "max_free_sockets {max_free}");
        assert_eq!(agent.sockets(), kept);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_keep_alive_requests_leave_no_timer_task_behind() {
    // The server runs on its own runtime, so this runtime's tasks are the agent's.
    let (pki, server) = std::thread::spawn(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pair = rt.block_on(server());
        // Keep the server's runtime alive for the test.
        std::mem::forget(rt);
        pair
    })
    .join()
    .unwrap();
    let agent = keep_alive(&pki)
        .free_socket_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for _ in 0..2000 {
        conn_id(&agent, &server.url("/")).await;
    }
    let alive = metrics.num_alive_tasks();
    assert_eq!(server.accepts(), 1);
    // One socket: its connection task and the pool's one timer (no task per request).
    assert!(
        alive <= before + 3,
        "{alive} tasks alive after 2000 requests (before: {before})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_closes_idle_sockets() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki)
        .free_socket_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    conn_id(&agent, &server.url("/")).await;
    let freed = std::time::Instant::now();
    assert_eq!(server.open(), 1);
    // A window well inside the 400 ms timeout: the socket must still be pooled.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(server.open(), 1, "still pooled before the timeout");
    assert!(eventually(Duration::from_secs(3), || server.open() == 0).await);
    assert!(
        freed.elapsed() >= Duration::from_millis(380),
        "{:?}",
        freed.elapsed()
    );
    assert_eq!(agent.sockets(), 0);
    conn_id(&agent, &server.url("/")).await;
    assert_eq!(server.accepts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifo_reuses_the_last_freed_socket_and_fifo_the_first() {
    for (scheduling, want_first) in [(Scheduling::Lifo, false), (Scheduling::Fifo, true)] {
        let (pki, server) = server().await;
        let agent = keep_alive(&pki).scheduling(scheduling).build().unwrap();
        // Two sockets, freed 250 ms apart: the quick request's first.
        let quick = tokio::spawn({
            let (agent, url) = (agent.clone(), server.url("/sleep/50"));
            async move { conn_id(&agent, &url).await }
        });
        let slow = tokio::spawn({
            let (agent, url) = (agent.clone(), server.url("/sleep/300"));
            async move { conn_id(&agent, &url).await }
        });
        let (first_freed, last_freed) = (quick.await.unwrap(), slow.await.unwrap());
        assert_ne!(first_freed, last_freed);
        assert_eq!(agent.sockets(), 2);
        let next = conn_id(&agent, &server.url("/")).await;
        let want = if want_first { first_freed } else { last_freed };
        assert_eq!(next, want, "{scheduling:?}");
        assert_eq!(server.accepts(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_ca_means_a_different_socket() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).build().unwrap();
    let url = server.url("/");
    let plain = pki.trust();
    let extra = pki.trust().add_ca([Ca::root("Another Root").der()]);
    let send = |tls: portcullis::tls::ClientTlsOptions| {
        let agent = agent.clone();
        let url = url.clone();
        async move {
            let res = agent.get(&url).tls(tls).send().await.unwrap();
            let reused = res.reused_socket();
            let id: u64 = res.headers()["x-conn-id"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            res.text().await.unwrap();
            (id, reused)
        }
    };
    let (a, a_reused) = send(plain.clone()).await;
    let (b, b_reused) = send(extra.clone()).await;
    let (a2, a2_reused) = send(plain).await;
    let (b2, b2_reused) = send(extra).await;
    assert!(!a_reused && !b_reused && a2_reused && b2_reused);
    assert_ne!(a, b);
    assert_eq!((a2, b2), (a, b));
    assert_eq!(server.accepts(), 2);
    assert_eq!(agent.sockets(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_timeout_1_from_the_server_is_not_pooled() {
    for (server_timeout, pooled) in [(1, false), (3, true)] {
        let pki = Pki::new();
        let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| {
            b.keep_alive_timeout(Duration::from_secs(server_timeout))
        })
        .await;
        // No agent timeout: Node still refuses a 1 s hint (hint·1000 − 1000 = 0).
        let agent = keep_alive(&pki).build().unwrap();
        for _ in 0..2 {
            let res = agent.get(&server.url("/")).send().await.unwrap();
            assert_eq!(
                res.headers()["keep-alive"],
                format!("timeout={server_timeout}").as_str()
            );
            res.text().await.unwrap();
        }
        let sockets = usize::from(pooled);
        assert_eq!(
            agent.sockets(),
            sockets,
            "server keepAliveTimeout {server_timeout}s"
        );
        assert_eq!(server.accepts(), 2 - sockets);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_and_aborted_requests_give_their_socket_back() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).max_sockets(1).build().unwrap();
    // A request that times out while its socket waits for the response head…
    let err = agent
        .get(&server.url("/sleep/2000"))
        .timeout(Duration::from_millis(150))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ETIMEDOUT"), "{err:?}");
    // …one aborted while queued behind a slow request, and one aborted mid-request…
    let slow = tokio::spawn({
        let (agent, url) = (agent.clone(), server.url("/sleep/300"));
        async move { conn_id(&agent, &url).await }
    });
    // The one place is the slow request's (the timed-out request's socket was closed, and the
    // server may still be running its handler, so the server's counts cannot tell).
    assert!(
        eventually(Duration::from_secs(5), || agent.sockets() == 1
            && agent.free_sockets() == 0
            && agent.queued_requests() == 0)
        .await,
        "the slow request holds the socket"
    );
    let controller = AbortController::new();
    let queued = tokio::spawn({
        let (agent, url, signal) = (agent.clone(), server.url("/"), controller.signal());
        async move { agent.get(&url).signal(signal).send().await }
    });
    assert!(eventually(Duration::from_secs(5), || agent.queued_requests() == 1).await);
    controller.abort();
    let err = queued.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some("ABORT_ERR"), "{err:?}");
    slow.await.unwrap();
    // …leave the single place free for the next request.
    let res = tokio::time::timeout(Duration::from_secs(5), conn_id(&agent, &server.url("/")))
        .await
        .expect("the pool is not stuck");
    assert!(res > 0);
    assert!(agent.sockets() <= 1);
}

/// Awaits spawned tasks in order.
async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_h2_requests_share_one_connection() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).http2(true).build().unwrap();
    let url = server.url("/sleep/100");
    let requests = (0..10).map(|_| {
        let agent = agent.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let res = agent.get(&url).send().await.unwrap();
            assert_eq!(res.version(), http::Version::HTTP_2);
            let id: u64 = res.headers()["x-conn-id"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            res.text().await.unwrap();
            id
        })
    });
    let ids: HashSet<u64> = futures_join(requests).await.into_iter().collect();
    assert_eq!(
        ids.len(),
        1,
        "requests made while the first connection was opening wait for it"
    );
    assert_eq!(server.accepts(), 1);
    assert_eq!(agent.sockets(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_agent_against_an_http1_server_opens_sockets_as_needed() {
    let pki = Pki::new();
    let server = TestServer::start("127.0.0.1:0", pki.identity(), |b| b.http2(false)).await;
    let agent = keep_alive(&pki).http2(true).build().unwrap();
    let url = server.url("/sleep/100");
    let requests = (0..4).map(|_| {
        let agent = agent.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let res = agent.get(&url).send().await.unwrap();
            assert_eq!(res.version(), http::Version::HTTP_11);
            let id: u64 = res.headers()["x-conn-id"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            res.text().await.unwrap();
            id
        })
    });
    let started = std::time::Instant::now();
    let ids: HashSet<u64> = futures_join(requests).await.into_iter().collect();
    // In parallel, not one after the other on one socket.
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ids.len(), 4);
    assert_eq!(agent.sockets(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_socket_the_server_closed_is_not_reused() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).build().unwrap();
    let first = conn_id(&agent, &server.url("/")).await;
    server.handle.close_idle_connections();
    assert!(eventually(Duration::from_secs(2), || server.open() == 0).await);
    // The agent sees the close (its connection task ends): no free socket is left.
    assert!(eventually(Duration::from_secs(2), || agent.free_sockets() == 0).await);
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert!(!res.reused_socket());
    let second: u64 = res.headers()["x-conn-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(first, second);
    res.text().await.unwrap();
    assert_eq!(server.accepts(), 2);
    assert_eq!(agent.sockets(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_total_sockets_is_shared_by_origins_without_stranding_any() {
    let pki = Pki::new();
    let a = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    let b = TestServer::start("127.0.0.1:0", pki.identity(), |b| b).await;
    for keep in [false, true] {
        let agent = Agent::builder()
            .no_proxy()
            .keep_alive(keep)
            .max_total_sockets(1)
            .tls(pki.trust())
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sampled = agent.clone();
        let peak = sample_max(stop.clone(), move || sampled.sockets());
        // B's request queues behind A's (one socket in all), then runs once A's is done.
        let first = tokio::spawn({
            let (agent, url) = (agent.clone(), a.url("/sleep/200"));
            async move { conn_id(&agent, &url).await }
        });
        assert!(
            eventually(Duration::from_secs(5), || agent.sockets() == 1).await,
            "A's request holds the one socket"
        );
        let second = tokio::time::timeout(Duration::from_secs(5), conn_id(&agent, &b.url("/")))
            .await
            .expect("a request to another origin is not stranded");
        first.await.unwrap();
        assert!(second > 0);
        // With keep-alive, A's idle socket makes way for a request to B.
        let third = tokio::time::timeout(Duration::from_secs(5), conn_id(&agent, &a.url("/")))
            .await
            .expect("an idle socket of another origin makes way");
        assert!(third > 0);
        stop.store(true, Ordering::SeqCst);
        assert_eq!(peak.await.unwrap(), 1, "keep_alive {keep}");
        assert!(agent.sockets() <= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_address_binds_the_socket_and_keys_the_pool() {
    let (pki, server) = server().await;
    let from = |ip: [u8; 4]| {
        keep_alive(&pki)
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    for ip in [[127, 0, 0, 1], [127, 0, 0, 2]] {
        let agent = from(ip);
        let res = agent.get(&server.url("/")).send().await.unwrap();
        let peer: std::net::SocketAddr = res.headers()["x-peer"].to_str().unwrap().parse().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::from(ip));
        res.text().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_response_frees_its_socket_at_once() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).build().unwrap();
    let head = agent
        .request(http::Method::HEAD, &server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "12");
    // Not read, not dropped: the socket is already back in the pool.
    let get = agent.get(&server.url("/")).send().await.unwrap();
    assert!(get.reused_socket());
    assert_eq!(get.text().await.unwrap(), "hello world\n");
    drop(head);
    assert_eq!(server.accepts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_dropped_unread_closes_its_socket() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).max_sockets(1).build().unwrap();
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert_eq!(agent.sockets(), 1);
    drop(res);
    assert_eq!(agent.sockets(), 0);
    assert!(eventually(Duration::from_secs(2), || server.open() == 0).await);
    // The place is free again.
    let res = agent.get(&server.url("/")).send().await.unwrap();
    assert!(!res.reused_socket());
    res.text().await.unwrap();
    assert_eq!(server.accepts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rustls_configs_are_built_once_and_a_new_closure_per_request_is_bounded() {
    let (pki, server) = server().await;
    let agent = keep_alive(&pki).build().unwrap();
    for _ in 0..100 {
        conn_id(&agent, &server.url("/")).await;
    }
    assert_eq!(
        agent.cached_configs(),
        1,
        "one config for the agent's options"
    );
    // A fresh closure per request is a distinct TLS option set each time: bounded.
    for _ in 0..50 {
        let tls = pki.trust().check_server_identity(|_, _| Ok(()));
        let res = agent.get(&server.url("/")).tls(tls).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    assert!(
        agent.cached_configs() <= 32,
        "{} configs kept",
        agent.cached_configs()
    );
}

//! `serve --acme` end to end against Pebble, the ACME test CA (Debian package `pebble`), with
//! `pebble-challtestsrv` answering every DNS name with 127.0.0.1. Everything stays on loopback:
//! Pebble's validation connects to the ports of the portcullis listeners.
//!
//! These need the `pebble` package: `#[ignore = "needs pebble"]`; `.ci/run` installs it and
//! runs them.

use portcullis_test_support::cli as support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{bin, Portcullis};

const NAMES: [&str; 2] = ["a.acme.test", "b.acme.test"];

/// A loopback port nobody listens on right now, for Pebble's servers (which bind it a moment
/// later). Taken below the kernel's ephemeral range (32768 and up on Linux), where port 0 binds
/// and outgoing connections get theirs, so that nothing else picks it in between; the tests of
/// this file run one at a time (`serial`) so that they do not pick each other's.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering as O};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 500) as u16 * 20;
    loop {
        let offset = NEXT.fetch_add(1, O::Relaxed) % 10_000;
        let port = start + offset % (32_000 - start);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Held by each test of this file: Pebble's ports are chosen free, then bound by Pebble.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port}: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pebble and its DNS server, killed on drop.
struct Pebble {
    dir: tempfile::TempDir,
    api: u16,
    management: u16,
    dns: u16,
    tls_port: u16,
    http_port: u16,
    env: Vec<(String, String)>,
    challtestsrv: Option<Child>,
    pebble: Option<Child>,
}

impl Pebble {
    /// Ports chosen, files written, nothing started yet: the directory URL is known before
    /// portcullis starts, and portcullis's ports before Pebble does.
    fn prepare(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The API's own certificate, from a throwaway CA (the ACME client trusts that CA).
        let ca = portcullis::cert::LocalCa::load_or_create(dir.path().join("api-ca")).unwrap();
        let leaf = portcullis::cert::LeafOptions::new(["localhost", "127.0.0.1"])
            .generate(Some(&ca))
            .unwrap();
        fs::write(dir.path().join("api.pem"), leaf.chain_pem()).unwrap();
        fs::write(dir.path().join("api-key.pem"), leaf.key_pem()).unwrap();
        fs::copy(ca.cert_path(), dir.path().join("api-ca.pem")).unwrap();
        Self {
            dir,
            api: free_port(),
            management: free_port(),
            dns: free_port(),
            tls_port: 0,
            http_port: 0,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            challtestsrv: None,
            pebble: None,
        }
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.api)
    }

    fn api_ca(&self) -> PathBuf {
        self.dir.path().join("api-ca.pem")
    }

    /// Starts both, validating against `tls_port` and `http_port`.
    fn start(&mut self, tls_port: u16, http_port: u16) {
        self.tls_port = tls_port;
        self.http_port = http_port;
        let d = self.dir.path();
        if self.challtestsrv.is_none() {
            // Every one of its servers gets a loopback address of its own.
            let log = d.join("challtestsrv.log");
            let child = Command::new("pebble-challtestsrv")
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args(["-dns01", &format!("127.0.0.1:{}", self.dns)])
                .args(["-http01", &format!("127.0.0.1:{}", free_port())])
                .args(["-https01", &format!("127.0.0.1:{}", free_port())])
                .args(["-tlsalpn01", &format!("127.0.0.1:{}", free_port())])
                .args(["-management", &format!("127.0.0.1:{}", free_port())])
                .stdout(fs::File::create(&log).unwrap())
                .stderr(Stdio::from(
                    fs::File::create(d.join("challtestsrv.err")).unwrap(),
                ))
                .spawn()
                .expect("pebble-challtestsrv starts (Debian package pebble)");
            self.challtestsrv = Some(child);
        }
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{}", self.api),
                "managementListenAddress": format!("127.0.0.1:{}", self.management),
                "certificate": d.join("api.pem"),
                "privateKey": d.join("api-key.pem"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        fs::write(d.join("pebble.json"), config.to_string()).unwrap();
        let log = d.join("pebble.log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(d.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("pebble starts (Debian package pebble)");
        self.pebble = Some(child);
        wait_for_port(self.api, "pebble", &log);
        wait_for_port(self.management, "pebble management", &log);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pebble's root (a new one each time Pebble starts), as a PEM file.
    fn root(&self) -> PathBuf {
        let path = self.dir.path().join("root.pem");
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
            .arg(self.api_ca())
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(&path, &out.stdout).unwrap();
        path
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut child) = self.challtestsrv.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- pebble log ---\n{}", self.log());
        }
    }
}

/// Starts `portcullis serve --acme` on loopback ports with the given extra flags.
fn serve(pebble: &Pebble, storage: &Path, home: &Path, extra: &[&str]) -> Portcullis {
    let directory = pebble.directory();
    let api_ca = pebble.api_ca();
    let storage = storage.to_str().unwrap();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--acme",
        "a.acme.test,b.acme.test",
        "--acme-email",
        "ops@acme.test",
        "--acme-directory",
        &directory,
        "--acme-ca-root",
        api_ca.to_str().unwrap(),
        "--acme-dir",
        storage,
        "--acme-retry",
        "200ms",
    ];
    args.extend_from_slice(extra);
    Portcullis::start(home, &args)
}

/// The leaf the server presents to `name`, after verifying the chain against `root`.
fn served_leaf(port: u16, name: &str, root: &Path) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in portcullis::tls::load_certificates(root).map_err(|e| e.to_string())? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server_name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), server_name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let _ = tls.read(&mut buf).map_err(|e| e.to_string())?;
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    Ok(leaf.as_ref().to_vec())
}

/// Polls until the server presents a certificate that verifies against `root` for every name
/// (and differs from `previous`, when given).
fn wait_for_certificate(
    server: &Portcullis,
    pebble: &Pebble,
    root: &Path,
    previous: Option<&[u8]>,
    limit: Duration,
) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    loop {
        let results: Vec<_> = NAMES
            .iter()
            .map(|name| served_leaf(server.port(), name, root))
            .collect();
        if let Ok(first) = &results[0] {
            if results.iter().all(|r| r.as_ref() == Ok(first))
                && previous.is_none_or(|p| p != first.as_slice())
            {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no (new) certificate within {limit:?}: {results:?}\n--- portcullis ---\n{}\n--- pebble ---\n{}",
            server.log(),
            pebble.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn curl_ok(server: &Portcullis, name: &str, root: &Path) {
    let port = server.port();
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}/"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl https://{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_ok(server: &Portcullis, name: &str, root: &Path) {
    let port = server.port();
    let out = Command::new(bin())
        .args(["get", "--fail", "--timeout", "10s", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}/"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "portcullis get https://{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issues a certificate with only `challenge` offered, checks it with curl and `portcullis
/// get` for each name, and returns what the test needs to go on.
fn issue(challenge: &str, pebble_env: &[(&str, &str)]) -> (Pebble, Portcullis, tempfile::TempDir) {
    let mut pebble = Pebble::prepare(pebble_env);
    let state = tempfile::tempdir().unwrap();
    let storage = state.path().join("acme");
    let server = serve(
        &pebble,
        &storage,
        state.path(),
        &["--acme-challenge", challenge],
    );
    // No certificate yet: handshakes are refused with an alert, and the log says why.
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "10", "--resolve"])
        .arg(format!("{}:{}:127.0.0.1", NAMES[0], server.port()))
        .arg(format!("https://{}:{}/", NAMES[0], server.port()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(35), "{err}");
    assert!(err.contains("alert access denied"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("no certificate for this name yet") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    pebble.start(server.port(), server.http.unwrap().port());
    let root = pebble.root();
    wait_for_certificate(&server, &pebble, &root, None, Duration::from_secs(60));
    for name in NAMES {
        curl_ok(&server, name, &root);
        get_ok(&server, name, &root);
    }
    // The first type offered is the one used.
    let log = server.log();
    let first = challenge.split(',').next().unwrap();
    assert!(log.contains(&format!("challenge=\"{first}\"")), "{log}");
    (pebble, server, state)
}

#[test]
#[ignore = "needs pebble"]
fn tls_alpn_01_alone_issues_a_certificate_that_curl_and_get_verify_and_a_restart_reuses() {
    let _serial = serial();
    let (pebble, server, state) = issue("tls-alpn-01", &[]);
    let log = server.log();
    assert!(log.contains("answered a tls-alpn-01 validation"), "{log}");
    assert!(!log.contains("challenge=\"http-01\""), "{log}");
    let root = pebble.root();
    let first = served_leaf(server.port(), NAMES[0], &root).unwrap();

    // Files: private directory and key, certificate listed by `cert acme status`.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let storage = state.path().join("acme");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&storage), 0o700);
        let ca_dir = fs::read_dir(&storage)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(mode(&ca_dir.join("account.json")), 0o600);
        assert_eq!(mode(&ca_dir.join("a.acme.test/key.pem")), 0o600);
        let status = Command::new(bin())
            .args(["cert", "acme", "status", "--acme-dir"])
            .arg(&storage)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(status.status.success(), "{text}");
        assert!(text.contains("a.acme.test, b.acme.test"), "{text}");
        assert!(text.contains("next renewal:"), "{text}");
        assert!(text.contains("days left"), "{text}");
    }

    // A restart serves the stored certificate and orders nothing.
    drop(server);
    let orders_before = pebble.log().matches("POST /order-plz").count();
    let server = serve(&pebble, &state.path().join("acme"), state.path(), &[]);
    assert_eq!(served_leaf(server.port(), NAMES[0], &root).unwrap(), first);
    // The manager's decision: the stored certificate is current, renewal later.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log().contains("renewal scheduled") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    assert!(log.contains("using the stored certificate"), "{log}");
    assert!(!log.contains("order created"), "{log}");
    assert_eq!(
        pebble.log().matches("POST /order-plz").count(),
        orders_before
    );
}

#[test]
#[ignore = "needs pebble"]
fn http_01_alone_issues_a_certificate_that_curl_and_get_verify() {
    let _serial = serial();
    let (_pebble, server, _state) = issue("http-01", &[]);
    let log = server.log();
    assert!(!log.contains("answered a tls-alpn-01 validation"), "{log}");
    // With no validation pending, a client offering acme-tls/1 gets no challenge certificate:
    // the handshake is refused for want of a common protocol.
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", server.port()))
        .args(["-servername", NAMES[0], "-alpn", "acme-tls/1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("no application protocol"), "{text}");
}

#[test]
#[ignore = "needs pebble"]
fn renewal_under_keep_alive_load_fails_no_request() {
    let _serial = serial();
    let mut pebble = Pebble::prepare(&[]);
    let state = tempfile::tempdir().unwrap();
    let server = serve(
        &pebble,
        &state.path().join("acme"),
        state.path(),
        &["--acme-renew-after", "6s"],
    );
    pebble.start(server.port(), server.http.unwrap().port());
    let root = pebble.root();
    let first = wait_for_certificate(&server, &pebble, &root, None, Duration::from_secs(60));

    // Keep-alive load from four clients until the renewal is seen on a new connection.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ca = portcullis::tls::load_certificates(&root).unwrap();
    let port = server.port();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let agent = portcullis::Agent::builder()
            .tls(portcullis::tls::ClientTlsOptions::new().ca(ca.clone()))
            .resolve(NAMES[0], port, ([127, 0, 0, 1], port).into())
            .build()
            .unwrap();
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        tasks.push(runtime.spawn(async move {
            let url = format!("https://{}:{port}/", NAMES[0]);
            while !stop.load(Ordering::Relaxed) {
                let result = agent
                    .get(&url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let outcome = match result {
                    Ok(res) if res.status() == 200 => {
                        res.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(res) => Err(format!("status {}", res.status())),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("failed request: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let renewed = wait_for_certificate(
        &server,
        &pebble,
        &root,
        Some(&first),
        Duration::from_secs(60),
    );
    // Some more load after the swap.
    let seen = ok.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ok.load(Ordering::Relaxed) < seen + 100 {
        assert!(
            Instant::now() < deadline,
            "the load stalled after the renewal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_ne!(renewed, first);
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("renewal under load: {ok} requests, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 100, "too little load to mean anything: {ok}");
    let log = server.log();
    assert!(log.contains("certificate installed"), "{log}");
}

#[test]
#[ignore = "needs pebble"]
fn with_the_ca_down_the_certificate_stays_and_renewal_completes_when_it_is_back() {
    let _serial = serial();
    let mut pebble = Pebble::prepare(&[]);
    let state = tempfile::tempdir().unwrap();
    let server = serve(
        &pebble,
        &state.path().join("acme"),
        state.path(),
        &["--acme-renew-after", "4s"],
    );
    let (tls_port, http_port) = (server.port(), server.http.unwrap().port());
    pebble.start(tls_port, http_port);
    let root = pebble.root();
    let first = wait_for_certificate(&server, &pebble, &root, None, Duration::from_secs(60));

    // The CA goes away; renewal falls due and fails, with retries logged.
    pebble.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .log()
        .matches("keeping the current certificate")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no retries logged: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still serving the same certificate, verified.
    assert_eq!(served_leaf(server.port(), NAMES[1], &root).unwrap(), first);
    curl_ok(&server, NAMES[1], &root);

    // Back (a new Pebble: new root, the old account unknown): the renewal completes.
    pebble.start(tls_port, http_port);
    let root = pebble.root();
    let renewed = wait_for_certificate(
        &server,
        &pebble,
        &root,
        Some(&first),
        Duration::from_secs(90),
    );
    assert_ne!(renewed, first);
    curl_ok(&server, NAMES[0], &root);
}

#[test]
#[ignore = "needs pebble"]
fn rejected_nonces_and_fresh_authorizations_are_survived_by_retries() {
    let _serial = serial();
    // A third of Pebble's nonces refused, no authorization reuse: requests and orders fail at
    // random; the retries get the certificate anyway.
    let (_pebble, server, _state) = issue(
        "tls-alpn-01,http-01",
        &[
            ("PEBBLE_WFE_NONCEREJECT", "30"),
            ("PEBBLE_AUTHZREUSE", "0"),
            ("PEBBLE_VA_ALWAYS_VALID", "0"),
        ],
    );
    let log = server.log();
    eprintln!("retries needed: {}", log.matches("retrying in").count());
}

#[test]
#[ignore = "needs pebble"]
fn two_processes_sharing_the_directory_order_once_and_both_serve_it() {
    let _serial = serial();
    // Pebble validates against the first process only, as a load balancer might send it
    // there; whichever process orders, the other answers from the shared directory.
    let mut pebble = Pebble::prepare(&[("PEBBLE_AUTHZREUSE", "0")]);
    let state = tempfile::tempdir().unwrap();
    let storage = state.path().join("acme");
    let first = serve(
        &pebble,
        &storage,
        state.path(),
        &["--acme-challenge", "http-01"],
    );
    let second = serve(
        &pebble,
        &storage,
        state.path(),
        &["--acme-challenge", "http-01"],
    );
    pebble.start(first.port(), first.http.unwrap().port());
    let root = pebble.root();
    let a = wait_for_certificate(&first, &pebble, &root, None, Duration::from_secs(60));
    let b = wait_for_certificate(&second, &pebble, &root, None, Duration::from_secs(60));
    assert_eq!(a, b, "both serve the one stored certificate");
    let orders = pebble.log().matches("Added order").count();
    assert_eq!(orders, 1, "one order for the fleet:\n{}", pebble.log());
    let logs = format!("{}\n{}", first.log(), second.log());
    assert_eq!(logs.matches("ACME: order created").count(), 1, "{logs}");
    assert!(
        logs.contains("installed the certificate another process stored"),
        "{logs}"
    );
}

#[test]
#[ignore = "needs pebble"]
fn a_validation_that_cannot_reach_the_server_says_what_to_check() {
    let _serial = serial();
    // Pebble validates against a port nobody listens on, as when port 443 is firewalled.
    let mut pebble = Pebble::prepare(&[]);
    let state = tempfile::tempdir().unwrap();
    let server = serve(
        &pebble,
        &state.path().join("acme"),
        state.path(),
        &["--acme-challenge", "tls-alpn-01"],
    );
    pebble.start(free_port(), server.http.unwrap().port());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = server.log();
        if log.contains("could not validate") {
            assert!(log.contains(".acme.test points at this machine"), "{log}");
            assert!(log.contains("port 443 reaches the HTTPS listener"), "{log}");
            assert!(log.contains("Failed to connect to 127.0.0.1"), "{log}");
            assert!(log.contains("no certificate yet; retrying in"), "{log}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no validation failure logged: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `portcullis ARGS` with PORTCULLIS_HOME in a fresh directory: exit code and stderr.
fn run_cli(args: &[&str]) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(args)
        .env("PORTCULLIS_HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_acme_flags_exit_2_and_say_what_to_give() {
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let (code, _, err) = serve(&["--acme", "127.0.0.1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give a DNS name"), "{err}");
    let (code, _, err) = serve(&["--acme", "*.example.com"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("wildcards need the dns-01 challenge"), "{err}");
    let (code, _, err) = serve(&["--acme", "example.com", "--acme-challenge", "dns-01"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("use tls-alpn-01 or http-01"), "{err}");
    let (code, _, err) = serve(&["--acme", "example.com", "--acme-email", "nobody"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not an e-mail address"), "{err}");
    let (code, _, err) = serve(&["--acme", "example.com", "--acme-eab", "no-colon"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("KID:HMAC"), "{err}");
}

#[test]
fn cert_acme_status_on_an_empty_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_cli(&[
        "cert",
        "acme",
        "status",
        "--acme-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("no ACME certificates in"), "{out}");
}

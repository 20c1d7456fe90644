//! End-to-end tests of `portcullis serve`: the real binary on 127.0.0.1, driven by curl,
//! node and openssl.

use std::convert::Infallible;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;

use portcullis_test_support::cli as support;

use support::*;

#[test]
fn hello_page_is_html_and_json_with_tls_details() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);

    let html = server.get("/", &[]);
    assert_eq!(html.status, 200);
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(html.text().contains("TLSv1.3"), "{}", html.text());

    let json = server
        .get("/", &["--http1.1", "-H", "Accept: application/json"])
        .json();
    assert_eq!(json["tls"]["version"], "TLSv1.3");
    assert_eq!(json["tls"]["alpn"], "http/1.1");
    assert_eq!(json["tls"]["sni"], "localhost");
    assert_eq!(json["tls"]["resumed"], false);
    assert!(json["tls"]["cipher_suite"]
        .as_str()
        .unwrap()
        .starts_with("TLS_"));
    assert_eq!(json["http_version"], "HTTP/1.1");
    assert!(json["peer_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    let h2 = server
        .get("/", &["--http2", "-H", "Accept: application/json"])
        .json();
    assert_eq!(h2["tls"]["alpn"], "h2");
    assert_eq!(h2["http_version"], "HTTP/2");
}

#[test]
fn dev_ca_is_created_once_reused_and_trusted_by_curl_and_node() {
    let home = tempfile::tempdir().unwrap();
    let first_ca = {
        let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
        for name in ["ca.pem", "ca-key.pem", "localhost.pem", "localhost-key.pem"] {
            assert!(home.path().join(name).is_file(), "{name} missing");
        }
        #[cfg(unix)]
        for key in ["ca-key.pem", "localhost-key.pem"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key} mode {mode:o}");
        }
        assert!(server.log().contains("local CA: "), "{}", server.log());
        fs::read(server.ca()).unwrap()
    };

    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(fs::read(server.ca()).unwrap(), first_ca, "ca.pem changed");
    // Verification on: no -k.
    assert_eq!(server.get("/", &[]).status, 200);
    // Without the CA curl refuses the certificate.
    let untrusted = curl(
        server.port(),
        None,
        &[&format!("https://localhost:{}/", server.port())],
    );
    assert!(!untrusted.status.success());

    let script = r#"
        const https = require('https'), fs = require('fs');
        const [port, ca] = process.argv.slice(1);
        https.get({ host: '127.0.0.1', servername: 'localhost', port, path: '/',
                    ca: fs.readFileSync(ca) }, res => {
            console.log(res.statusCode);
            res.resume();
        }).on('error', e => { console.error(e.message); process.exit(1); });
    "#;
    let node = Command::new("node")
        .args(["-e", script, &server.port().to_string()])
        .arg(server.ca())
        .output()
        .expect("node runs");
    assert!(
        node.status.success(),
        "node: {}",
        String::from_utf8_lossy(&node.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&node.stdout).trim(), "200");
}

#[test]
fn static_files_serve_index_ranges_etags_and_no_listing() {
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("site");
    fs::create_dir_all(site.join("empty")).unwrap();
    fs::write(site.join("index.html"), "<h1>home</h1>\n").unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    fs::write(site.join("data.bin"), &data).unwrap();
    fs::write(site.join("empty/other.txt"), "not an index").unwrap();
    fs::write(root.path().join("secret.txt"), "TOP SECRET").unwrap();
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", site.to_str().unwrap()],
    );

    let index = server.get("/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>home</h1>\n");
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));

    let whole = server.get("/data.bin", &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, data);
    assert!(whole.header("last-modified").is_some());
    let etag = whole.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");

    let range = server.get("/data.bin", &["-H", "Range: bytes=0-9"]);
    assert_eq!(range.status, 206);
    assert_eq!(range.body, &data[..10]);
    assert_eq!(range.header("content-range"), Some("bytes 0-9/1000"));
    assert_eq!(range.header("etag"), Some(etag.as_str()));

    let cached = server.get("/data.bin", &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let stale = server.get("/data.bin", &["-H", "If-None-Match: W/\"other\""]);
    assert_eq!(stale.status, 200);
    // A weak ETag never satisfies If-Range: the whole file comes back.
    let if_range = server.get(
        "/data.bin",
        &["-H", "Range: bytes=0-9", "-H", &format!("If-Range: {etag}")],
    );
    assert_eq!(if_range.status, 200);
    assert_eq!(if_range.body.len(), 1000);

    assert_eq!(server.get("/empty/", &[]).status, 404, "no listing");
    assert_eq!(server.get("/missing.txt", &[]).status, 404);

    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/empty/../../secret.txt",
    ] {
        let escaped = server.get(path, &["--path-as-is"]);
        assert_ne!(escaped.status, 200, "{path}");
        assert!(!escaped.text().contains("TOP SECRET"), "{path}");
    }
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<Value> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::from(v.to_str().unwrap_or("?")))
            .collect();
        headers.insert(name.to_string(), Value::Array(values));
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let echo = serde_json::json!({
        "method": method,
        "uri": uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut res = Response::new(Full::new(Bytes::from(echo.to_string())));
    res.headers_mut()
        .insert("connection", "x-backend-private".parse().unwrap());
    res.headers_mut()
        .insert("x-backend-private", "1".parse().unwrap());
    res.headers_mut()
        .insert("x-backend-public", "1".parse().unwrap());
    Ok(res)
}

#[test]
fn proxy_forwards_with_forwarding_headers_and_502s_when_down() {
    let home = tempfile::tempdir().unwrap();
    let backend = Backend::start(echo);
    let url = format!("http://{}/base/", backend.addr);
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", url.as_str()],
    );
    let port = server.port();

    let reply = server.get(
        "/a/b?c=d&e",
        &["--http1.1", "-H", "X-Forwarded-For: 203.0.113.7"],
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-backend-public"), Some("1"));
    assert_eq!(
        reply.header("x-backend-private"),
        None,
        "hop-by-hop dropped"
    );
    let seen = reply.json();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/base/a/b?c=d&e");
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"][0], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"][0], "https");
    assert_eq!(h["x-forwarded-host"][0], format!("localhost:{port}"));
    let forwarded = h["forwarded"][0].as_str().unwrap();
    assert!(
        forwarded.starts_with("for=\"127.0.0.1:")
            && forwarded.ends_with(&format!(";proto=https;host=\"localhost:{port}\"")),
        "{forwarded}"
    );
    assert_eq!(
        h["host"][0],
        format!("localhost:{port}"),
        "the client's Host"
    );

    // A POST body makes the round trip (over HTTP/2 from the client, HTTP/1.1 to the backend).
    let body = "x".repeat(100_000);
    let post = server.get(
        "/upload",
        &["--http2", "-X", "POST", "--data-binary", body.as_str()],
    );
    assert_eq!(post.status, 200);
    let seen = post.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/base/upload");
    assert_eq!(seen["body"].as_str().unwrap().len(), body.len());

    // A backend that is down: 502.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", dead.as_str()],
    );
    let reply = server.get("/", &[]);
    assert_eq!(reply.status, 502);
    assert!(reply.text().contains("Bad Gateway"), "{}", reply.text());
}

#[test]
fn http_listener_redirects_to_https_keeping_path_and_query() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--redirect",
        ],
    );
    let http_port = server.http.expect("a plain listener").port();
    let out = curl(
        http_port,
        None,
        &["-i", &format!("http://localhost:{http_port}/a/b?c=d")],
    );
    let reply = Reply::parse(&out);
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some(format!("https://localhost:{}/a/b?c=d", server.port()).as_str())
    );
}

#[test]
fn http_listener_without_redirect_serves_the_same_content() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--hsts",
        ],
    );
    let http_port = server.http.unwrap().port();
    let out = curl(
        http_port,
        None,
        &[
            "-i",
            "-H",
            "Accept: application/json",
            &format!("http://localhost:{http_port}/"),
        ],
    );
    let reply = Reply::parse(&out);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["secure"], false);
    assert_eq!(reply.header("strict-transport-security"), None);
    let tls = server.get("/", &[]);
    assert_eq!(
        tls.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[test]
fn bad_flags_and_files_exit_2_naming_them() {
    let home = tempfile::tempdir().unwrap();
    let base = ["serve", "--listen", "127.0.0.1:0"];

    let out = run(
        home.path(),
        &[
            &base[..],
            &[
                "--cert",
                "/nonexistent/cert.pem",
                "--key",
                "/nonexistent/key.pem",
            ],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");

    let out = run(
        home.path(),
        &[&base[..], &["--headers-timeout", "bogus"]].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--headers-timeout"), "{stderr}");

    let out = run(
        home.path(),
        &[&base[..], &["--cert", "/nonexistent/cert.pem"]].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--key"), "{stderr}");

    let out = run(home.path(), &["serve", "/nonexistent/dir"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/dir"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(home.path(), &["serve", "--listen", addr.as_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn workers_1_serves_from_one_thread() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0", "--workers", "1"]);
    assert_eq!(server.get("/", &["--http1.1"]).status, 200);
    assert_eq!(server.get("/", &["--http2"]).status, 200);
    // One thread serves; the blocking pool (the certificate watcher's file reads) is apart.
    let serving: Vec<String> = fs::read_dir(format!("/proc/{}/task", server.child.id()))
        .unwrap()
        .map(|t| fs::read_to_string(t.unwrap().path().join("comm")).unwrap())
        .filter(|name| name.trim() != "blocking-pool")
        .collect();
    assert_eq!(
        serving.len(),
        1,
        "threads of `serve --workers 1`: {serving:?}"
    );

    let out = run(home.path(), &["serve", "--workers", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--workers"), "{stderr}");
}

#[test]
fn more_than_100_header_fields_get_431_unless_allowed() {
    let home = tempfile::tempdir().unwrap();
    let many: Vec<String> = (0..101).map(|i| format!("X-Field-{i}: {i}")).collect();
    let args: Vec<&str> = many.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    for version in ["--http1.1", "--http2"] {
        let reply = server.get("/", &[&[version][..], &args].concat());
        assert_eq!(reply.status, 431, "{version}");
    }
    let roomy = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--max-headers-count", "200"],
    );
    for version in ["--http1.1", "--http2"] {
        let reply = roomy.get("/", &[&[version][..], &args].concat());
        assert_eq!(reply.status, 200, "{version}");
    }
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_code_0() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(server.get("/", &[]).status, 200);
    let start = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn headers_timeout_answers_408_to_a_silent_tls_client() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--headers-timeout", "300ms"],
    );
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 2 | openssl s_client -connect 127.0.0.1:{} -quiet 2>/dev/null",
            server.port()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("408"), "openssl printed: {stdout:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn release_idle_after_keeps_the_connection_serving() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start_with_env(
        home.path(),
        &["--listen", "127.0.0.1:0", "--release-idle-after", "10ms"],
        &[("RUST_LOG", "info,portcullis::server=trace")],
    );
    // One curl command reuses its connection; --rate spaces the requests past the release.
    let url = format!("https://localhost:{}/", server.port());
    let out = server.curl(&[
        "--http1.1",
        "--rate",
        "10/s",
        "-w",
        "%{http_code}:%{num_connects} ",
        "-o",
        "/dev/null",
        &url,
        "-o",
        "/dev/null",
        &url,
        "-o",
        "/dev/null",
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), "200:1 200:0 200:0", "{}", server.log());
    // Released while idle between the requests (and after the last, before curl closed).
    let released = server
        .log()
        .matches("releasing the HTTP/1 connection state")
        .count();
    assert!(released >= 2, "{}", server.log());
}

/// The `Send-Q` column `ss` shows for the listening socket on `port`: its backlog.
fn listen_backlog(port: u16) -> Option<u32> {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(2)?.parse().ok())
}

#[test]
fn the_listen_backlog_is_somaxconn_by_default_and_set_by_backlog() {
    require("ss");
    let somaxconn: u32 = fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    // std and mio listen with 128; nginx with 511; we take what the system allows.
    assert_eq!(
        listen_backlog(server.port()),
        Some(somaxconn.clamp(128, 65535))
    );
    let small = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0", "--backlog", "77"]);
    assert_eq!(listen_backlog(small.port()), Some(77));
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one_and_said() {
    let home = tempfile::tempdir().unwrap();
    let server =
        Portcullis::start_with_ulimit(home.path(), &["--listen", "127.0.0.1:0"], "-S -n 256");
    let limits = fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    // Raised to the hard limit, or to 2^20 when there is none.
    let expected = if hard == "unlimited" { "1048576" } else { hard };
    assert_eq!(soft, expected, "{line}");
    assert_ne!(soft, "256", "{line}");
    assert!(
        server.log().contains("open-file limit raised from 256"),
        "{}",
        server.log()
    );
}

#[test]
fn out_of_descriptors_idle_keep_alive_clients_make_way_for_new_ones() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start_with_ulimit(home.path(), &["--listen", "127.0.0.1:0"], "-n 48");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // More idle keep-alive clients than the server has descriptors for: each made one
        // request and waits. Opening the last ones already needs room.
        let mut idle = Vec::new();
        for _ in 0..60 {
            let connect = KeepAlive::open(&server);
            let Ok(mut client) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
                panic!("a new client waited 5 s: {}", server.log());
            };
            let (head, _) = client.get("/").await;
            assert!(head.starts_with("http/1.1 200"), "{head}");
            idle.push(client);
        }
    });
    // As nginx does with its reusable connections: the least recently used idle ones are
    // closed so that the new ones are served, and the log says so.
    assert!(
        server
            .log()
            .contains("closing the least recently used idle connections"),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    // deploy/systemd as shipped, with ExecStart pointing at the binary under test (verify
    // checks that the executables exist).
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("/usr/local/bin/portcullis", &bin().display().to_string());
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        units.push(copy);
    }
    units.sort();
    assert!(units.len() >= 5, "{units:?}");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (from systemd) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Nothing said about our units (systemd may still mention units of the host it reads).
    for unit in &units {
        let name = unit.file_name().unwrap().to_string_lossy();
        assert!(!stderr.contains(name.as_ref()), "{name}: {stderr}");
    }
}

/// `curl http://ADDR{path}`: the status code and the body.
fn plain_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The value of the first sample line of `metrics` that starts with `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_listener_exports_prometheus_text_and_readyz_fails_while_draining() {
    use std::io::Write;
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
    );
    let metrics = server.metrics.expect("a metrics line");
    assert_eq!(plain_get(metrics, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(plain_get(metrics, "/readyz"), (200, "ready\n".to_owned()));
    assert_eq!(server.get("/", &["--http2"]).status, 200);
    assert_eq!(server.get("/", &["--http1.1"]).status, 200);
    assert_eq!(server.get("/favicon.ico", &["--http1.1"]).status, 404);
    server.signal("HUP");

    let mut text = String::new();
    let reloaded = eventually_blocking(Duration::from_secs(10), || {
        text = plain_get(metrics, "/metrics").1;
        sample(&text, "portcullis_tls_reloads_total{result=\"success\"}") == Some(1.0)
    });
    assert!(reloaded, "{text}");
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{content_type}"])
        .arg(format!("http://{metrics}/metrics"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("text/plain; version=0.0.4"));
    for (series, want) in [
        ("portcullis_connections_accepted_total", 3.0),
        ("portcullis_tls_handshakes_total{result=\"full\"}", 3.0),
        (
            "portcullis_http_responses_total{version=\"2\",status=\"2xx\"}",
            1.0,
        ),
        (
            "portcullis_http_responses_total{version=\"1.1\",status=\"2xx\"}",
            1.0,
        ),
        (
            "portcullis_http_responses_total{version=\"1.1\",status=\"4xx\"}",
            1.0,
        ),
        ("portcullis_tls_reloads_total{result=\"failure\"}", 0.0),
        ("portcullis_connections{state=\"active\"}", 0.0),
        ("portcullis_timeouts_total{kind=\"headers\"}", 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(want), "{series} in\n{text}");
    }
    let expiry = sample(
        &text,
        "portcullis_certificate_expiry_seconds{identity=\"default\"}",
    );
    assert!(expiry.is_some_and(|s| s > 86400.0), "{text}");
    assert!(sample(&text, "portcullis_sent_bytes_total").is_some_and(|n| n > 1000.0));
    assert!(sample(&text, "portcullis_received_bytes_total").is_some_and(|n| n > 500.0));

    // A request in flight keeps the server draining after SIGTERM: /readyz says so.
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{}", server.port()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        .unwrap();
    stdin.flush().unwrap();
    assert!(
        eventually_blocking(Duration::from_secs(10), || {
            let text = plain_get(metrics, "/metrics").1;
            sample(&text, "portcullis_connections{state=\"active\"}") == Some(1.0)
        }),
        "the request is in flight"
    );
    server.signal("TERM");
    assert!(
        eventually_blocking(Duration::from_secs(10), || plain_get(metrics, "/readyz").0
            == 503),
        "not ready while draining"
    );
    assert_eq!(
        plain_get(metrics, "/healthz").0,
        200,
        "alive while draining"
    );
    stdin.write_all(b"def").unwrap();
    drop(stdin);
    let out = client.wait_with_output().unwrap();
    // Answered once its body is in (the hello page takes GET only).
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let mut server = server;
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", server.log());
}

#[test]
fn shutdown_delay_keeps_serving_while_readyz_says_503_then_exits() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--shutdown-delay",
            "3s",
        ],
    );
    let metrics = server.metrics.unwrap();
    assert_eq!(server.get("/", &["--http1.1"]).status, 200);
    server.signal("TERM");
    assert!(
        eventually_blocking(Duration::from_secs(5), || plain_get(metrics, "/readyz").0
            == 503),
        "not ready once draining"
    );
    // Still accepting: a new connection is served, and told to close.
    let reply = server.get("/", &["--http1.1"]);
    assert_eq!(reply.status, 200, "{}", server.log());
    assert_eq!(reply.header("connection"), Some("close"));
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", server.log());
    assert!(server.log().contains("draining for 3s"), "{}", server.log());
}

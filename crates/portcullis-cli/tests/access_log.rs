//! `portcullis serve --access-log`: the formats, what each line holds, reopening on SIGUSR1,
//! rotation by size, and the redirect listener's lines. Clients: curl.

use std::convert::Infallible;
use std::fs;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use portcullis_test_support::cli as support;

use support::*;

/// Polls `check` until it holds or 10 s pass.
fn eventually(what: &str, check: impl FnMut() -> bool) {
    assert!(
        support::eventually_blocking(Duration::from_secs(10), check),
        "timed out waiting for {what}"
    );
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn json_lines_hold_target_status_bytes_duration_host_tls_agent_and_referer() {
    let site = tempfile::tempdir().unwrap();
    fs::write(site.path().join("hello.txt"), "hello world\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("access.log");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            site.path().to_str().unwrap(),
            "--access-log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ],
    );
    let port = server.port();
    for version in ["--http1.1", "--http2"] {
        let reply = server.get(
            "/hello.txt?lang=en&x=1",
            &[
                version,
                "-A",
                "probe/1.0",
                "-e",
                "https://example.test/page",
            ],
        );
        assert_eq!(reply.status, 200);
    }
    assert_eq!(server.get("/missing", &[]).status, 404);
    eventually("three lines", || lines(&log).len() == 3);
    let entries: Vec<Value> = lines(&log)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (entry, version) in entries.iter().zip(["HTTP/1.1", "HTTP/2.0"]) {
        assert_eq!(entry["method"], "GET");
        assert_eq!(entry["target"], "/hello.txt?lang=en&x=1");
        assert_eq!(entry["version"], version);
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["bytes"], 12);
        assert!(entry["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(entry["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(entry["host"], format!("localhost:{port}"));
        assert_eq!(entry["tls"], "TLSv1.3");
        assert_eq!(entry["user_agent"], "probe/1.0");
        assert_eq!(entry["referer"], "https://example.test/page");
        assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(entries[2]["status"], 404);
    assert_eq!(entries[2]["referer"], Value::Null);
}

#[test]
fn combined_and_text_formats_read_as_nginx_and_as_a_line_of_words() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("combined.log");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            log.to_str().unwrap(),
            "--log-format",
            "combined",
        ],
    );
    let reply = server.get("/?q=1", &["--http1.1", "-A", "say \"hi\"", "-e", "r"]);
    assert_eq!(reply.status, 200);
    eventually("a line", || lines(&log).len() == 1);
    let line = &lines(&log)[0];
    // 127.0.0.1 - - [01/Dec/2026:20:55:01 +0000] "GET /?q=1 HTTP/1.1" 200 1234 "r" "ua"
    let (left, rest) = line.split_once(" [").unwrap();
    assert_eq!(left, "127.0.0.1 - -");
    let (time, rest) = rest.split_once("] ").unwrap();
    assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");
    let expected_end = format!(
        "\"GET /?q=1 HTTP/1.1\" 200 {} \"r\" \"say \\x22hi\\x22\"",
        reply.body.len()
    );
    assert_eq!(rest, expected_end);

    // text, to stderr by default.
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(
        server.get("/x?y=2", &["--http2", "-A", "probe"]).status,
        200
    );
    eventually("a text line", || {
        server.log().contains("\"GET /x?y=2 HTTP/2.0\" 200 ")
    });
    let log = server.log();
    let line = log.lines().find(|l| l.contains("/x?y=2")).unwrap();
    assert!(
        line.contains(" tls=TLSv1.3 ua=\"probe\" referer=\"-\""),
        "{line}"
    );
    assert!(
        line.contains(&format!("host=localhost:{}", server.port())),
        "{line}"
    );

    // off: nothing.
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--access-log", "off"],
    );
    assert_eq!(server.get("/quiet", &[]).status, 200);
    assert_eq!(server.get("/quiet", &[]).status, 200);
    assert!(!server.log().contains("/quiet"), "{}", server.log());
}

#[test]
fn sigusr1_reopens_the_file_and_a_size_rotates_it() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("access.log");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(server.get("/before", &[]).status, 200);
    eventually("the first line", || lines(&log).len() == 1);
    // What logrotate does: move the file away, then signal.
    let moved = home.path().join("access.log.old");
    fs::rename(&log, &moved).unwrap();
    server.signal("USR1");
    eventually("the reopen", || {
        server.log().contains("access log reopened")
    });
    assert_eq!(server.get("/after", &[]).status, 200);
    eventually("a line in the new file", || lines(&log).len() == 1);
    assert!(lines(&log)[0].contains("/after"));
    assert_eq!(lines(&moved).len(), 1);
    assert!(lines(&moved)[0].contains("/before"));
    drop(server);

    let small = home.path().join("small.log");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            small.to_str().unwrap(),
            "--access-log-max-size",
            "600",
        ],
    );
    for i in 0..6 {
        assert_eq!(server.get(&format!("/r{i}"), &[]).status, 200);
    }
    let rotated = home.path().join("small.log.1");
    eventually("a rotation", || {
        rotated.exists() && !lines(&small).is_empty()
    });
    assert!(fs::metadata(&small).unwrap().len() <= 600);
    let all = [lines(&rotated), lines(&small)].concat();
    assert!(all.iter().any(|l| l.contains("/r5")), "{all:?}");

    let out = run(
        home.path(),
        &[
            "serve",
            "--access-log-max-size",
            "1MiB",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--access-log FILE"));
}

#[test]
fn redirects_from_the_plain_listener_are_logged() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("access.log");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--redirect",
            "--access-log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ],
    );
    let plain = server.http.unwrap();
    let out = curl(
        plain.port(),
        None,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{plain}/page?a=b"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "308");
    eventually("a line", || lines(&log).len() == 1);
    let entry: Value = serde_json::from_str(&lines(&log)[0]).unwrap();
    assert_eq!(entry["status"], 308);
    assert_eq!(entry["target"], "/page?a=b");
    assert_eq!(entry["tls"], Value::Null);
}

#[test]
fn the_duration_runs_to_the_last_byte_of_a_streamed_response() {
    // A backend that sends one chunk, waits 300 ms, then the last.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                let chunks = futures_util::stream::unfold(0, |i| async move {
                    match i {
                        0 => Some((Ok::<_, Infallible>(Frame::data(Bytes::from("first\n"))), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Some((Ok(Frame::data(Bytes::from("last\n"))), 2))
                        }
                        _ => None,
                    }
                });
                Ok::<_, Infallible>(Response::new(StreamBody::new(chunks)))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("access.log");
    let url = format!("http://{addr}");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--proxy",
            url.as_str(),
            "--access-log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ],
    );
    let reply = server.get("/stream", &[]);
    assert_eq!(reply.text(), "first\nlast\n");
    eventually("a line", || lines(&log).len() == 1);
    let entry: Value = serde_json::from_str(&lines(&log)[0]).unwrap();
    assert_eq!(entry["bytes"], 11);
    let ms = entry["duration_ms"].as_f64().unwrap();
    assert!((300.0..5000.0).contains(&ms), "duration {ms} ms");
}

//! End-to-end tests of `portcullis get`: the real binary against `portcullis serve` (and small
//! test servers) on 127.0.0.1, checked against openssl where it computes the same values.

use std::convert::Infallible;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;

use portcullis_test_support::cli as support;

use support::{bin, Backend, Portcullis};

/// Runs `portcullis get ARGS` to its exit, with no proxy from the environment.
fn get(home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("get")
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .stdin(Stdio::null());
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "PORTCULLIS_PASSPHRASE",
        "SSLKEYLOGFILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("portcullis get runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited with a code")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the exit code, showing stderr when it differs.
#[track_caller]
fn assert_exit(out: &Output, expected: i32) {
    assert_eq!(
        code(out),
        expected,
        "stderr: {}\nstdout: {}",
        stderr(out),
        stdout(out)
    );
}

fn url(server: &Portcullis, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", server.port())
}

/// openssl's pin-sha256 of a certificate file's public key (the HPKP / curl --pinnedpubkey
/// recipe).
fn openssl_pin(cert: &Path) -> String {
    let script = format!(
        "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64",
        cert.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(pin.len(), 44, "{pin}");
    pin
}

/// openssl's SHA-256 fingerprint of a certificate file (`AA:BB:…`).
fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .split_once('=')
        .expect("sha256 Fingerprint=…")
        .1
        .to_owned()
}

/// The lines of the `-v` block for chain certificate `index`.
fn chain_entry(err: &str, index: usize) -> Vec<String> {
    let start = format!("* [{index}] Subject Common Name: ");
    let mut lines = err.lines().skip_while(|l| !l.starts_with(&start));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no chain entry {index} in:\n{err}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("*   ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn verbose_shows_tls_session_chain_and_pins_then_the_body() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    let ca = server.ca();
    let ca_arg = ca.to_str().unwrap();
    let out = get(home.path(), &["-v", "--cacert", ca_arg, &url(&server, "/")]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("* TLS version: TLSv1.3"), "{err}");
    assert!(err.contains("* Cipher: TLS_"), "{err}");
    assert!(err.contains("* ALPN: http/1.1"), "{err}");
    assert!(err.contains("* Session resumed: no"), "{err}");

    // Leaf, then the CA, in the shape of Node's pinning example.
    let leaf = chain_entry(&err, 0);
    assert_eq!(leaf[0], "* [0] Subject Common Name: localhost", "{err}");
    assert!(leaf
        .iter()
        .any(|l| l == "*   Issuer Common Name: portcullis local development CA"));
    assert!(leaf
        .iter()
        .any(|l| l.starts_with("*   Validity: ") && l.contains(" → ")));
    let leaf_cert = home.path().join("localhost.pem");
    if leaf_cert.exists() {
        assert!(leaf.contains(&format!(
            "*   Public key ping-sha256: {}",
            openssl_pin(&leaf_cert)
        )));
    }
    let root = chain_entry(&err, 1);
    assert_eq!(
        root[0], "* [1] Subject Common Name: portcullis local development CA",
        "{err}"
    );
    assert!(
        root.contains(&format!(
            "*   Certificate SHA256 fingerprint: {}",
            openssl_fingerprint(&ca)
        )),
        "{root:?}"
    );
    assert!(
        root.contains(&format!("*   Public key ping-sha256: {}", openssl_pin(&ca))),
        "{root:?}"
    );

    // curl's request and response heads, then the hello page on stdout.
    assert!(err.contains("> GET / HTTP/1.1\n"), "{err}");
    assert!(err.contains("> User-Agent: portcullis/"), "{err}");
    assert!(err.contains("< HTTP/1.1 200 OK\n"), "{err}");
    let body = stdout(&out);
    assert!(body.contains("Hello from portcullis"), "{body}");
    assert!(!body.starts_with("HTTP/"), "no head without -i");
}

#[test]
fn pins_match_or_fail_with_90() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    let ca = server.ca();
    let ca_arg = ca.to_str().unwrap();
    let pin = format!("sha256//{}", openssl_pin(&ca));
    let out = get(
        home.path(),
        &["--cacert", ca_arg, "--pin", &pin, &url(&server, "/")],
    );
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Hello from portcullis"));

    let wrong = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = get(
        home.path(),
        &["--cacert", ca_arg, "--pin", wrong, &url(&server, "/")],
    );
    assert_exit(&out, 90);
    let err = stderr(&out);
    assert!(
        err.starts_with("portcullis: (90) ERR_TLS_PIN_MISMATCH"),
        "{err}"
    );
    assert!(err.contains("does not match any pin"), "{err}");
    // The message lists the chain's pins, the CA's among them.
    assert!(err.contains(&pin), "{err}");
    assert!(stdout(&out).is_empty());

    // A malformed pin is a usage error.
    let out = get(home.path(), &["--pin", "nope", &url(&server, "/")]);
    assert_exit(&out, 2);
}

#[test]
fn unverified_server_exits_60_and_insecure_connects_with_a_warning() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    // No --cacert: the bundled roots do not know the development CA.
    let out = get(home.path(), &[&url(&server, "/")]);
    assert_exit(&out, 60);
    let err = stderr(&out);
    assert!(err.starts_with("portcullis: (60) "), "{err}");
    assert!(
        [
            "SELF_SIGNED_CERT_IN_CHAIN",
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        ]
        .iter()
        .any(|c| err.contains(c)),
        "{err}"
    );
    assert!(stdout(&out).is_empty());

    let out = get(home.path(), &["--insecure", &url(&server, "/")]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("warning: --insecure"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("Hello from portcullis"));
    let out = get(home.path(), &["-k", &url(&server, "/")]);
    assert_exit(&out, 0);
}

#[test]
fn output_file_include_and_fail() {
    let home = tempfile::tempdir().unwrap();
    let site = tempfile::tempdir().unwrap();
    // Binary content over several chunks, with CRLFs and NULs.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(site.path().join("data.bin"), &content).unwrap();
    let server = Portcullis::start(
        home.path(),
        &[site.path().to_str().unwrap(), "--listen", "127.0.0.1:0"],
    );
    let ca = server.ca();
    let ca_arg = ca.to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // -o writes exactly the body, nothing on stdout.
    let file = scratch.path().join("out.bin");
    let out = get(
        home.path(),
        &[
            "--cacert",
            ca_arg,
            "-o",
            file.to_str().unwrap(),
            &url(&server, "/data.bin"),
        ],
    );
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    assert_eq!(fs::read(&file).unwrap(), content);

    // -i: the head, a blank line, then the body.
    let out = get(
        home.path(),
        &["--cacert", ca_arg, "-i", &url(&server, "/data.bin")],
    );
    assert_exit(&out, 0);
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&out.stdout[..split]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("\r\ncontent-length: {}", content.len())),
        "{head}"
    );
    assert_eq!(&out.stdout[split + 4..], &content[..]);

    // --fail: 22 on a 404, no body written (not even an empty file).
    let missing = scratch.path().join("missing.out");
    let out = get(
        home.path(),
        &[
            "--cacert",
            ca_arg,
            "--fail",
            "-o",
            missing.to_str().unwrap(),
            &url(&server, "/nope.txt"),
        ],
    );
    assert_exit(&out, 22);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert!(!missing.exists());
    // Without --fail a 404 is a success, its body printed.
    let out = get(
        home.path(),
        &["--cacert", ca_arg, &url(&server, "/nope.txt")],
    );
    assert_exit(&out, 0);
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, custom) = (header("content-type"), header("x-test"));
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let echo = serde_json::json!({
        "method": method,
        "uri": uri,
        "content_type": content_type,
        "x_test": custom,
        "body": String::from_utf8_lossy(&body),
    });
    Ok(Response::new(Full::new(Bytes::from(echo.to_string()))))
}

#[test]
fn post_data_binary_round_trips_through_the_proxy() {
    let home = tempfile::tempdir().unwrap();
    let backend = Backend::start(echo);
    let backend_url = format!("http://{}", backend.addr);
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy", &backend_url],
    );
    let ca = server.ca();
    let scratch = tempfile::tempdir().unwrap();
    let payload = "first line\nsecond line\r\n  tab\there & there\n";
    let file = scratch.path().join("payload.txt");
    fs::write(&file, payload).unwrap();
    let data = format!("@{}", file.display());
    let out = get(
        home.path(),
        &[
            "--cacert",
            ca.to_str().unwrap(),
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "-H",
            "X-Test: yes",
            "--data-binary",
            &data,
            &url(&server, "/echo?q=1"),
        ],
    );
    assert_exit(&out, 0);
    let echo: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/echo?q=1");
    assert_eq!(echo["body"], payload);
    assert_eq!(echo["content_type"], "text/plain");
    assert_eq!(echo["x_test"], "yes");

    // -d alone means POST with a form body; @file drops the newlines, as curl does.
    let out = get(
        home.path(),
        &[
            "--cacert",
            ca.to_str().unwrap(),
            "-d",
            "a=1",
            "-d",
            &data,
            &url(&server, "/form"),
        ],
    );
    assert_exit(&out, 0);
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(
        echo["body"],
        format!("a=1&{}", payload.replace(['\r', '\n'], ""))
    );
}

#[test]
fn location_follows_the_http_to_https_redirect() {
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
    let ca = server.ca();
    let ca_arg = ca.to_str().unwrap();
    let http_url = format!("http://127.0.0.1:{}/where?x=1", server.http.unwrap().port());
    let json = "Accept: application/json";

    // Without -L: the 308 itself.
    let out = get(home.path(), &["--cacert", ca_arg, "-i", &http_url]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
        "{text}"
    );
    let location = format!("https://127.0.0.1:{}/where?x=1", server.port());
    assert!(
        text.contains(&format!("location: {location}\r\n")),
        "{text}"
    );

    // -L: on to HTTPS, verified with --cacert; -i shows both heads.
    let out = get(
        home.path(),
        &["--cacert", ca_arg, "-L", "-i", "-v", "-H", json, &http_url],
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    let body = &text[text.rfind("\r\n\r\n").unwrap() + 4..];
    let hello: Value = serde_json::from_str(body).unwrap();
    assert_eq!(hello["secure"], true);
    assert_eq!(hello["path"], "/where");
    assert!(
        stderr(&out).contains(&format!("* Following redirect to {location}")),
        "{}",
        stderr(&out)
    );

    // Too many redirects: 47.
    let out = get(
        home.path(),
        &["--cacert", ca_arg, "-L", "--max-redirs", "0", &http_url],
    );
    assert_exit(&out, 47);
    assert!(stderr(&out).contains("Maximum (0) redirects followed"));
}

#[test]
fn resolve_and_http2() {
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(home.path(), &["--listen", "127.0.0.1:0"]);
    let ca = server.ca();
    let ca_arg = ca.to_str().unwrap();
    let port = server.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let localhost = format!("https://localhost:{port}/");
    let out = get(
        home.path(),
        &[
            "--cacert",
            ca_arg,
            "--resolve",
            &resolve,
            "-v",
            "-H",
            "Accept: application/json",
            &localhost,
        ],
    );
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains(&format!("* Connected to localhost (127.0.0.1) port {port}")),
        "{}",
        stderr(&out)
    );
    let hello: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hello["tls"]["sni"], "localhost");

    // A name the certificate does not hold, mapped with --resolve: the name is checked.
    let other = format!("https://other.test:{port}/");
    let out = get(
        home.path(),
        &[
            "--cacert",
            ca_arg,
            "--resolve",
            &format!("other.test:{port}:127.0.0.1"),
            &other,
        ],
    );
    assert_exit(&out, 60);
    assert!(stderr(&out).contains("ERR_TLS_CERT_ALTNAME_INVALID"));

    let out = get(
        home.path(),
        &[
            "--cacert",
            ca_arg,
            "--http2",
            "-v",
            "-H",
            "Accept: application/json",
            &url(&server, "/"),
        ],
    );
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("* ALPN: h2\n"), "{err}");
    assert!(err.contains("< HTTP/2 200\n"), "{err}");
    let hello: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hello["http_version"], "HTTP/2");
}

#[test]
fn connection_failures_and_bad_flags_exit_with_curls_codes() {
    let home = tempfile::tempdir().unwrap();

    // A port nobody listens on: 7.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = get(home.path(), &[&format!("https://127.0.0.1:{port}/")]);
    assert_exit(&out, 7);
    assert!(stderr(&out).contains("ECONNREFUSED"), "{}", stderr(&out));

    // An unreadable --cacert: 2, naming the file.
    let missing = home.path().join("no-such-ca.pem");
    let out = get(
        home.path(),
        &[
            "--cacert",
            missing.to_str().unwrap(),
            &format!("https://127.0.0.1:{port}/"),
        ],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(missing.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    // An unreadable --cert too, and clap's own usage errors.
    let out = get(
        home.path(),
        &["--cert", missing.to_str().unwrap(), "https://127.0.0.1:1/"],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains(missing.to_str().unwrap()));
    assert_exit(&get(home.path(), &["--no-such-flag", "https://x/"]), 2);
    assert_exit(&get(home.path(), &["--tls-min", "1.1", "https://x/"]), 2);
    assert_exit(&get(home.path(), &["--resolve", "nope", "https://x/"]), 2);
    assert_exit(&get(home.path(), &["ftp://example.test/"]), 2);

    // A server that accepts and never answers: 28 at --timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let start = Instant::now();
    let out = get(
        home.path(),
        &["--timeout", "300ms", &format!("https://{addr}/")],
    );
    assert_exit(&out, 28);
    assert!(start.elapsed() < Duration::from_secs(10));
    let err = stderr(&out);
    assert!(err.starts_with("portcullis: (28) "), "{err}");
    assert!(err.contains("300ms"), "{err}");
}

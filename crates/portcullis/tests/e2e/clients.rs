//! Real clients: curl (HTTP/1.1 and h2), openssl s_client, Node's https.get.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_http1_and_http2() {
    let srv = start_hello(|b| b).await;
    let out = srv.curl(&["-i", "--http1.1", &srv.url("/")]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("hello world"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("keep-alive: timeout=5"),
        "{text}"
    );
    assert!(text.contains("x-tls-alpn: http/1.1"), "{text}");

    let out = srv.curl(&["-i", "--http2", &srv.url("/")]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("x-tls-alpn: h2"), "{text}");
    assert!(text.contains("hello world"), "{text}");
}

/// Runs `openssl s_client` with `args`, sending `input`, and returns stdout+stderr.
async fn s_client(srv: &Running, args: &[&str], input: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("openssl")
        .arg("s_client")
        .args([
            "-connect",
            &srv.addr.to_string(),
            "-servername",
            "localhost",
            "-CAfile",
        ])
        .arg(&srv.pki.ca)
        .args(["-verify_return_error", "-ign_eof"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("s_client finishes")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The OpenSSL name of a suite, from the IANA name ConnectionInfo reports.
fn openssl_name(iana: &str) -> String {
    match iana {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256".into(),
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384".into(),
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305".into(),
        other => other.into(),
    }
}

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_tls13_and_tls12_match_connection_info() {
    let srv = start_hello(|b| b).await;
    let req = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let out = s_client(&srv, &[flag, "-alpn", "http/1.1"], req).await;
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(out.contains("hello world"), "{out}");
        assert_eq!(header(&out, "x-tls-version"), version);
        assert_eq!(header(&out, "x-tls-alpn"), "http/1.1");
        assert_eq!(header(&out, "x-tls-sni"), "localhost");
        assert_eq!(header(&out, "x-tls-resumed"), "false");
        let cipher = openssl_name(header(&out, "x-tls-cipher"));
        assert!(
            out.contains(&format!("Cipher is {cipher}"))
                || out.contains(&format!("Cipher    : {cipher}")),
            "{cipher} not in {out}"
        );
        assert!(
            out.contains(&format!("Protocol  : {version}"))
                || out.contains(&format!("{version}, Cipher")),
            "{out}"
        );
        let port = header(&out, "x-peer")
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        assert_ne!(port, srv.addr.port());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_tls11_is_refused() {
    let srv = start_hello(|b| b).await;
    let out = s_client(&srv, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], "").await;
    // rustls answers a TLS 1.1-only ClientHello with a fatal handshake_failure alert.
    assert!(out.contains("Cipher is (NONE)"), "{out}");
    assert!(
        out.contains("alert handshake failure") || out.contains("alert protocol version"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_https_get_trusts_the_dev_ca() {
    let srv = start_hello(|b| b).await;
    let script = format!(
        r#"const https = require('https'); const fs = require('fs');
        https.get({{host: 'localhost', port: {port}, path: '/', ca: fs.readFileSync({ca:?})}}, (res) => {{
          const proto = res.socket.getProtocol(); let body = ''; res.on('data', (d) => body += d);
          res.on('end', () => {{ console.log(res.statusCode, proto, JSON.stringify(body)); }});
        }}).on('error', (e) => {{ console.log('error', e.code); process.exit(1); }});"#,
        port = srv.addr.port(),
        ca = srv.pki.ca.display().to_string(),
    );
    let out = tokio::process::Command::new("node")
        .args(["-e", &script])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        r#"200 TLSv1.3 "hello world\n""#,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_router_is_served_unchanged() {
    use axum::routing::get;
    use axum::{Extension, Router};
    let app = Router::new().route(
        "/who",
        get(
            |Extension(info): Extension<portcullis::ConnectionInfo>| async move {
                info.tls().map_or("plain", |t| t.version()).to_string()
            },
        ),
    );
    let srv = start(|b| b, app).await;
    let out = srv.curl(&[&srv.url("/who")]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "TLSv1.3");
    let out = srv
        .curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &srv.url("/nope"),
        ])
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

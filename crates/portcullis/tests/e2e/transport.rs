//! What reaches the listener before TLS: junk, plain HTTP, PROXY headers; the plain-HTTP
//! listener's redirect; and file descriptors over many connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis::server::PlainHttpResponse;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_an_answer_and_others_are_served() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let srv =
        start_hello(move |b| b.on_tls_client_error(move |e| seen.lock().unwrap().push(e.code())))
            .await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    write_all(
        &mut tcp,
        b"GET /a?b=c HTTP/1.1\r\nHost: localhost:1234\r\n\r\n",
    )
    .await;
    let (bytes, closed) = read_until_close(&mut tcp, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(
        text.contains(&format!(
            "This port speaks HTTPS. Try https://localhost:{}/a?b=c",
            srv.addr.port()
        )),
        "{text}"
    );
    assert!(closed);
    assert_eq!(*errors.lock().unwrap(), vec!["ERR_SSL_HTTP_REQUEST"]);
    let out = srv.curl(&[&srv.url("/")]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
}

#[tokio::test]
async fn plain_http_on_the_tls_port_can_redirect() {
    let srv = start_hello(|b| b.plain_http_response(PlainHttpResponse::Redirect)).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    write_all(
        &mut tcp,
        b"GET /x?y=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    )
    .await;
    let (bytes, _) = read_until_close(&mut tcp, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 308"), "{text}");
    assert!(
        text.contains(&format!(
            "Location: https://example.test:{}/x?y=1\r\n",
            srv.addr.port()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn junk_bytes_are_closed_and_others_are_served() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let srv =
        start_hello(move |b| b.on_tls_client_error(move |e| seen.lock().unwrap().push(e.code())))
            .await;
    // Junk that is not a TLS record, then junk that claims to be one.
    for junk in [
        vec![0x00u8; 1024],
        [0x16u8, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5].repeat(50),
    ] {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        let _ = tcp.write_all(&junk).await;
        let (_, closed) = read_until_close(&mut tcp, Duration::from_secs(5)).await;
        assert!(closed);
    }
    let out = srv.curl(&[&srv.url("/")]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0], "ERR_SSL_WRONG_VERSION_NUMBER");
}

#[tokio::test]
async fn redirect_listener_answers_308_keeping_path_and_query() {
    let srv = start_hello(|b| b).await;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let server = srv.server.clone();
    tokio::spawn(async move { server.serve_redirect(plain).await });
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-i",
            &format!("http://localhost:{}/a/b?c=d", plain_addr.port()),
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 308"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains(&format!(
            "location: https://localhost:{}/a/b?c=d",
            srv.addr.port()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn insecure_listener_serves_the_same_service() {
    let srv = start_hello(|b| b).await;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let server = srv.server.clone();
    tokio::spawn(async move { server.serve_http(plain, tower::service_fn(hello)).await });
    let out = tokio::process::Command::new("curl")
        .args(["-sS", &format!("http://127.0.0.1:{}/", plain_addr.port())])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
}

async fn proxied_peer(srv: &Running, header: &[u8]) -> String {
    proxied_peer_in_pieces(srv, &[header]).await
}

/// As `proxied_peer`, the header written in pieces with a pause between them.
async fn proxied_peer_in_pieces(srv: &Running, pieces: &[&[u8]]) -> String {
    header_value(&proxied_response(srv, pieces).await, "x-peer")
}

/// The hello service's response on a connection that starts with `pieces` (a PROXY header, in
/// pieces written with a pause between them).
async fn proxied_response(srv: &Running, pieces: &[&[u8]]) -> String {
    let tcp = {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                // The pause is the scenario: the header arrives in several reads.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            tcp.write_all(piece).await.unwrap();
        }
        tcp
    };
    let mut tls = srv.tls_over(tcp).await.unwrap();
    write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    read_response(&mut tls).await
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_set_the_peer_address() {
    let srv = start_hello(|b| b.proxy_protocol(true)).await;
    let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
    assert_eq!(proxied_peer(&srv, v1).await, "203.0.113.7:56324");

    let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n";
    assert_eq!(proxied_peer(&srv, v6).await, "[2001:db8::7]:4000");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0x00, 12]); // v2 PROXY, TCP over IPv4, 12 bytes
    v2.extend_from_slice(&[198, 51, 100, 9, 192, 0, 2, 1]);
    v2.extend_from_slice(&7777u16.to_be_bytes());
    v2.extend_from_slice(&443u16.to_be_bytes());
    assert_eq!(proxied_peer(&srv, &v2).await, "198.51.100.9:7777");

    // The shortest header: the connection's own address stands.
    let own = proxied_peer(&srv, b"PROXY UNKNOWN\r\n").await;
    assert!(own.starts_with("127.0.0.1:"), "{own}");
    // Headers that arrive in pieces (each piece sent after a pause).
    let pieces: [&[u8]; 3] = [b"PROXY TCP4 203.0", b".113.8 192.0.2.1 ", b"5000 443\r\n"];
    assert_eq!(
        proxied_peer_in_pieces(&srv, &pieces).await,
        "203.0.113.8:5000"
    );
    let (a, b) = v2.split_at(14);
    assert_eq!(
        proxied_peer_in_pieces(&srv, &[a, b]).await,
        "198.51.100.9:7777"
    );

    // Without a header the connection is refused.
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let result = srv.tls_over(tcp).await;
    assert!(result.is_err());
}

#[tokio::test]
async fn proxy_v2_tlvs_reach_the_handler() {
    // What HAProxy's send-proxy-v2 sends: ALPN, authority (the SNI it saw), unique ID.
    let srv = start_hello(|b| b.proxy_protocol(true)).await;
    let mut body = vec![198, 51, 100, 9, 192, 0, 2, 1];
    body.extend_from_slice(&7777u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    for (kind, value) in [(1u8, &b"h2"[..]), (2, b"shop.example"), (5, b"abc-123")] {
        body.push(kind);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    v2.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v2.extend_from_slice(&body);
    let res = proxied_response(&srv, &[&v2]).await;
    let proxy = header_value(&res, "x-proxy");
    assert_eq!(
        proxy,
        "v2 alpn=h2 authority=shop.example unique-id=abc-123 tlvs=1=h2;2=shop.example;5=abc-123"
    );
    assert_eq!(header_value(&res, "x-peer"), "198.51.100.9:7777");
    // A v1 header: the version, no TLVs.
    let res = proxied_response(&srv, &[b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n"]).await;
    assert_eq!(
        header_value(&res, "x-proxy"),
        "v1 alpn= authority=- unique-id= tlvs="
    );
}

fn header_value(res: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    res.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in {res}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_proxy_header_from_outside_the_trusted_networks_is_refused() {
    // The test connects from 127.0.0.1: trusted by default, refused when only 10/8 is.
    let header = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
    let trusting = start_hello(|b| b.proxy_protocol(true)).await;
    assert_eq!(proxied_peer(&trusting, header).await, "203.0.113.7:56324");
    let wary = start_hello(|b| {
        b.proxy_protocol(true)
            .proxy_protocol_from(["10.0.0.0/8".parse::<portcullis::server::IpNet>().unwrap()])
    })
    .await;
    let mut tcp = TcpStream::connect(wary.addr).await.unwrap();
    write_all(&mut tcp, header).await;
    let result = wary.tls_over(tcp).await;
    assert!(
        result.is_err(),
        "a header from an untrusted peer is refused"
    );
    assert!(
        eventually(Duration::from_secs(5), || wary.handle.connections().total()
            == 0)
        .await
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sequential_connections_leave_no_open_files() {
    let srv = start_hello(|b| b).await;
    let addr: SocketAddr = srv.addr;
    // Warm up (runtime threads, lazily opened files), then count.
    for _ in 0..5 {
        let mut tls = srv.tls().await;
        write_all(
            &mut tls,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        read_until_close(&mut tls, Duration::from_secs(5)).await;
    }
    assert!(
        eventually(Duration::from_secs(5), || srv.handle.connections().total()
            == 0)
        .await
    );
    let before = open_fds();
    for _ in 0..2000 {
        let mut tls = srv.tls().await;
        write_all(
            &mut tls,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let (bytes, closed) = read_until_close(&mut tls, Duration::from_secs(5)).await;
        assert!(closed && bytes.starts_with(b"HTTP/1.1 200"));
    }
    // Server-side sockets close as their tasks end.
    let mut after = open_fds();
    eventually(Duration::from_secs(5), || {
        after = open_fds();
        after <= before
    })
    .await;
    assert!(
        after <= before,
        "open files grew from {before} to {after} ({addr})"
    );
    assert_eq!(srv.handle.connections().total(), 0);
}

//! Every refused handshake sends its alert and closes cleanly, so the client reports the alert
//! (not a reset); responses leave in as few TLS records as they can; failed handshakes are
//! logged where an operator sees them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis::tls::load_certificates;
use portcullis::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;
use crate::support_files::Files;

/// Reads until the peer ends the connection: (bytes, how it ended). A reset is an `Err`.
async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) => return (out, Ok(())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (out, Err(e)),
            Err(_) => panic!("the server neither answered nor closed"),
        }
    }
}

/// A fatal alert in a plaintext record: (record version, description).
fn plaintext_alert(bytes: &[u8]) -> Option<([u8; 2], u8)> {
    let alert = bytes
        .windows(7)
        .rev()
        .find(|w| w[0] == 0x15 && w[3..5] == [0, 2])?;
    (alert[5] == 2).then_some(([alert[1], alert[2]], alert[6]))
}

/// A server requiring client certificates from a CA no test client has.
async fn strict_mtls_server(files: &Files, pki: &Pki) -> (Server, SocketAddr) {
    files
        .openssl(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
             -out ca.pem -subj /CN=OnlyThisCA -days 30",
        )
        .await;
    crate::openssl_made::mtls_server(pki, &files.path("ca.pem"), true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_missing_client_certificates_reach_curl_as_alerts() {
    let files = Files::new();
    let pki = Pki::new();
    let (server, addr) = strict_mtls_server(&files, &pki).await;
    files
        .openssl(
            "req -x509 -newkey rsa:2048 -nodes -subj /CN=rogue -keyout rogue.key -out \
             rogue.pem -days 30",
        )
        .await;
    let port = addr.port();
    for version in ["1.3", "1.2"] {
        for with_cert in [true, false] {
            let mut cmd = tokio::process::Command::new("curl");
            cmd.args(["-sS", "--max-time", "10", "--tls-max", version, "--cacert"])
                .arg(&pki.ca)
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
            if with_cert {
                cmd.arg("--cert")
                    .arg(files.path("rogue.pem"))
                    .arg("--key")
                    .arg(files.path("rogue.key"));
            }
            let out = cmd
                .arg(format!("https://localhost:{port}/"))
                .output()
                .await
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "TLS {version}, cert {with_cert}: refused"
            );
            assert!(
                err.contains("alert"),
                "TLS {version}, cert {with_cert}: curl reports the alert: {err}"
            );
            for symptom in ["reset by peer", "getpeername", "Broken pipe"] {
                assert!(!err.contains(symptom), "TLS {version}: {err}");
            }
            if !with_cert && version == "1.3" {
                assert!(err.contains("certificate required"), "{err}");
            }
        }
    }
    server.handle().close().await;
}

#[tokio::test]
async fn an_sslv2_hello_gets_protocol_version_and_a_clean_close() {
    let srv = start_hello(|b| b).await;
    // An SSL 2.0-format CLIENT-HELLO offering TLS 1.0 (version 3.1) and one suite.
    let body: Vec<u8> = [0x01, 0x03, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10]
        .into_iter()
        .chain([0x00, 0x00, 0x2f])
        .chain([0x5a; 16])
        .collect();
    let mut hello = vec![0x80, body.len() as u8];
    hello.extend_from_slice(&body);
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(&hello).await.unwrap();
    let (bytes, end) = read_to_end(&mut tcp).await;
    // What Node (OpenSSL 3) answers.
    assert_eq!(bytes, [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]);
    end.expect("closed cleanly, not reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_hellos_get_protocol_version() {
    let srv = start_hello(|b| b).await;
    for flag in ["-tls1", "-tls1_1"] {
        let out = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect", &srv.addr.to_string(), flag])
            // OpenSSL 3 offers these versions only at security level 0.
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("alert protocol version"), "{flag}: {text}");
        assert!(text.contains("SSL alert number 70"), "{flag}: {text}");
    }
}

/// A TLS 1.2 client offering only signature schemes the server's key cannot make (P-256 with
/// SHA-384) gets an alert, not a silent close: rustls would fail after building its
/// ServerHello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_usable_signature_scheme_gets_an_alert() {
    let srv = start_hello(|b| b).await;
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &srv.addr.to_string(), "-tls1_2"])
        .args(["-sigalgs", "ECDSA+SHA384"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("SSL alert number"), "{text}");
    assert!(!text.contains("unexpected eof"), "{text}");
}

/// A rustls client config limited to TLS 1.2, trusting the test CA.
fn tls12_config(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certificates(&pki.ca).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

fn tls12_client(pki: &Pki) -> rustls::ClientConnection {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    rustls::ClientConnection::new(tls12_config(pki), name).unwrap()
}

/// Everything the client has to send, as bytes.
fn outgoing(client: &mut rustls::ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut out).unwrap();
    }
    out
}

/// The client's flights with a zero-length application_data record slipped in before its
/// second one (ClientKeyExchange, ChangeCipherSpec, Finished): the server is still
/// handshaking, so the record is out of place (tlsfuzzer's "zero-length data in handshake").
#[tokio::test]
async fn zero_length_application_data_inside_the_handshake_gets_an_alert_and_a_clean_close() {
    let srv = start_hello(|b| b).await;
    let mut client = tls12_client(&srv.pki);
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(&outgoing(&mut client)).await.unwrap();
    let mut buf = vec![0u8; 16384];
    while !client.wants_write() {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the server's first flight");
        client.read_tls(&mut &buf[..n]).unwrap();
        client.process_new_packets().unwrap();
    }
    tcp.write_all(&[0x17, 0x03, 0x03, 0x00, 0x00])
        .await
        .unwrap();
    tcp.write_all(&outgoing(&mut client)).await.unwrap();
    let (bytes, end) = read_to_end(&mut tcp).await;
    let alert = plaintext_alert(&bytes);
    assert_eq!(
        alert,
        Some(([0x03, 0x03], 10)),
        "unexpected_message: {bytes:02x?}"
    );
    end.expect("closed cleanly, not reset");
}

/// A TLS 1.3 ClientHello (X25519, the usual suites and signature schemes) carrying a padding
/// extension of `padding` bytes, cut into records of at most 16 KiB.
fn big_client_hello(padding: usize) -> Vec<u8> {
    fn with_u16_len(out: &mut Vec<u8>, body: &[u8]) {
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        with_u16_len(out, body);
    }
    let mut extensions = Vec::new();
    extension(&mut extensions, 0x002b, &[0x02, 0x03, 0x04]); // supported_versions: TLS 1.3
    extension(&mut extensions, 0x000a, &[0x00, 0x02, 0x00, 0x1d]); // supported_groups: x25519
    extension(
        &mut extensions,
        0x000d, // signature_algorithms
        &[0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x08, 0x07],
    );
    let mut share = vec![0x00, 0x24, 0x00, 0x1d, 0x00, 0x20];
    share.extend_from_slice(&[0x09; 32]); // any 32 bytes are an X25519 public key
    extension(&mut extensions, 0x0033, &share); // key_share
    let names = b"\x00\x0c\x00\x00\x09localhost";
    extension(&mut extensions, 0x0000, names); // server_name
    extension(&mut extensions, 0x0015, &vec![0; padding]); // padding
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0x17; 32]); // legacy_session_id
    with_u16_len(&mut body, &[0x13, 0x01, 0x13, 0x02, 0x13, 0x03]);
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut ext_block = Vec::new();
    // The extensions block has a u16 length: past 64 KiB it wraps, as an attacker's would.
    ext_block.extend_from_slice(&((extensions.len() & 0xffff) as u16).to_be_bytes());
    ext_block.extend_from_slice(&extensions);
    body.extend_from_slice(&ext_block);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut records = Vec::new();
    for chunk in handshake.chunks(16384) {
        records.extend_from_slice(&[0x16, 0x03, 0x01]);
        records.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        records.extend_from_slice(chunk);
    }
    records
}

/// The bound on a ClientHello is rustls's on any handshake message: 64 KiB. Below it the
/// handshake goes on; above it the client gets an alert and a clean close, never a reset.
#[tokio::test]
async fn client_hellos_up_to_64_kib_are_read_and_larger_ones_get_an_alert() {
    let srv = start_hello(|b| b).await;

    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(&big_client_hello(65_340)).await.unwrap();
    let mut first = [0u8; 6];
    tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first[0], 0x16, "a handshake record");
    assert_eq!(first[5], 0x02, "a ServerHello: {first:?}");
    drop(tcp);

    // Over the bound: by the declared length (70 KiB), or by a few bytes (what rustls
    // buffers counts the record headers too).
    for padding in [70 * 1024, 65_350] {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(&big_client_hello(padding)).await.unwrap();
        let (bytes, end) = read_to_end(&mut tcp).await;
        let alert = plaintext_alert(&bytes);
        assert_eq!(alert, Some(([0x03, 0x03], 50)), "{padding}: decode_error");
        end.unwrap_or_else(|e| panic!("{padding}: closed cleanly, not {e}"));
    }
}

/// First records no server may accept get OpenSSL's alert (tlsfuzzer's expectations), where
/// rustls would accept them or close without one.
#[tokio::test]
async fn first_records_no_server_accepts_get_their_alerts() {
    let srv = start_hello(|b| b).await;
    let mut oversized = vec![0x16, 0x03, 0x01, 0x40, 0x01];
    oversized.extend_from_slice(&big_client_hello(20_000)[5..5 + 16385]);
    let mut not_hello = big_client_hello(0);
    not_hello[5] = 0x02; // ServerHello where a ClientHello belongs
    let mut ssl3 = big_client_hello(0);
    ssl3[9..11].copy_from_slice(&[0x03, 0x00]); // legacy_version SSL 3.0
                                                // A ClientHello in two records with a ChangeCipherSpec between them (CVE-2004-0079).
    let hello = big_client_hello(0);
    let payload = &hello[5..];
    let mut interleaved = Vec::new();
    for (i, part) in [&payload[..40], &payload[40..]].into_iter().enumerate() {
        if i == 1 {
            interleaved.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
        }
        interleaved.extend_from_slice(&[0x16, 0x03, 0x01]);
        interleaved.extend_from_slice(&(part.len() as u16).to_be_bytes());
        interleaved.extend_from_slice(part);
    }
    for (what, bytes, alert) in [
        ("a ClientHello split by another record", interleaved, 10),
        ("a 16385-byte record", oversized, 22),
        ("a first message that is not a ClientHello", not_hello, 10),
        ("legacy_version 3.0", ssl3, 70),
    ] {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(&bytes).await.unwrap();
        let (got, end) = read_to_end(&mut tcp).await;
        assert_eq!(
            plaintext_alert(&got).map(|a| a.1),
            Some(alert),
            "{what}: {got:02x?}"
        );
        end.unwrap_or_else(|e| panic!("{what}: closed cleanly, not {e}"));
    }
}

/// A TCP relay that counts the TLS records of each content type the server sends.
struct RecordCounter {
    addr: SocketAddr,
    application_data: Arc<AtomicUsize>,
}

impl RecordCounter {
    async fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let application_data = Arc::new(AtomicUsize::new(0));
        let count = application_data.clone();
        tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let upstream = TcpStream::connect(server).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut up_read, mut up_write) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
            });
            let mut header = [0u8; 5];
            while up_read.read_exact(&mut header).await.is_ok() {
                let len = u16::from_be_bytes([header[3], header[4]]) as usize;
                let mut body = vec![0u8; len];
                if up_read.read_exact(&mut body).await.is_err() {
                    break;
                }
                if header[0] == 0x17 {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                if client_write.write_all(&header).await.is_err()
                    || client_write.write_all(&body).await.is_err()
                {
                    break;
                }
            }
        });
        Self {
            addr,
            application_data,
        }
    }
}

/// A response whose head and body are ready together leaves in one TLS record (after a TLS 1.2
/// handshake every application_data record the server sends is response bytes).
#[tokio::test]
async fn a_ready_response_leaves_in_one_record() {
    for size in [12, 3000, 12_000] {
        let body = bytes::Bytes::from(vec![b'x'; size]);
        let srv = start(
            |b| b,
            tower::service_fn(move |_req| {
                let body = body.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(body),
                    ))
                }
            }),
        )
        .await;
        let relay = RecordCounter::start(srv.addr).await;
        let tcp = TcpStream::connect(relay.addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(tls12_config(&srv.pki))
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        write_all(&mut tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let res = read_response(&mut tls).await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        assert_eq!(res.len() - res.find("\r\n\r\n").unwrap() - 4, size);
        assert_eq!(
            relay.application_data.load(Ordering::SeqCst),
            1,
            "a {size}-byte body: head and body in one record"
        );
        srv.handle.close().await;
    }
}

/// A browser or curl that does not trust the certificate leaves a line in the log at info:
/// who, which name, Node's code and what it means.
#[tokio::test]
async fn failed_handshakes_are_logged_at_info_with_peer_sni_code_and_reason() {
    let trace = Trace::default();
    let _guard = trace.install();
    let srv = start_hello(|b| b).await;
    let port = srv.addr.port();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(60),
        "curl does not trust the test CA"
    );
    let found = eventually(Duration::from_secs(5), || {
        trace.text().contains("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA")
    })
    .await;
    assert!(found, "{}", trace.text());
    let log = trace.text();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap();
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("peer_addr=127.0.0.1:"), "{line}");
    assert!(line.contains("sni=\"localhost\""), "{line}");
    assert!(
        line.contains("the client sent alert unknown CA; it does not trust our certificate"),
        "{line}"
    );

    // A flood is rate-limited: at most 20 lines per 10 s.
    for _ in 0..30 {
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(b"\x00\x01junk").await.unwrap();
        let _ = read_to_end(&mut tcp).await;
    }
    let logged = trace.count("the first bytes are not a TLS handshake");
    assert_eq!(logged, 19, "20 lines in the window, the curl one included");
}

/// The Python with tlslite-ng (`PORTCULLIS_TLSLITE_PYTHON`, else `python3`): a TLS stack that
/// can be told to send what well-behaved clients never do. `.ci/run` installs it.
fn tlslite_python() -> String {
    let python = std::env::var("PORTCULLIS_TLSLITE_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import tlslite"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{python} cannot import tlslite: `pip install tlslite-ng` (or set \
         PORTCULLIS_TLSLITE_PYTHON)"
    );
    python
}

/// KeyUpdate as TLS 1.3 allows it (whole, or split over records) keeps the connection
/// serving; a KeyUpdate with application data between its fragments (RFC 8446 §5.1 forbids
/// it) ends the connection cleanly, never with a reset. rustls 0.23 refuses that one without
/// an alert (its record layer returns the error before an alert is queued), so "closed" is
/// the best this server can say today.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tlslite-ng"]
async fn key_updates_and_zero_length_records_from_tlslite() {
    let python = tlslite_python();
    let srv = start_hello(|b| b).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/probes/tlslite_probe.py"
    );
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args(["127.0.0.1", &srv.addr.port().to_string()])
        .arg(&srv.pki.ca)
        .args([
            "keyupdate-ok",
            "keyupdate-fragmented",
            "zero-length-data-after-handshake",
            "keyupdate-appdata-between",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (line, probe) in lines.iter().zip([
        "keyupdate-ok",
        "keyupdate-fragmented",
        "zero-length-data-after-handshake",
    ]) {
        assert!(
            line.starts_with(&format!("{probe} ok HTTP/1.1 200 OK")),
            "{line}"
        );
    }
    assert_eq!(lines[3], "keyupdate-appdata-between closed", "no reset");
}

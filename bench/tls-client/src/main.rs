//! The handshake client of the benchmark: `tls-client full|resumed PORT TOTAL CONCURRENCY`.
//!
//! CONCURRENCY loops, each making one-request connections to 127.0.0.1:PORT in turn (TLS 1.3,
//! X25519, TLS_AES_128_GCM_SHA256, ALPN http/1.1, `GET /` with `Connection: close`, read to the
//! end), TOTAL connections in all. `resumed`: each loop has its own ticket store and offers the
//! newest ticket of its previous connection (tickets are single-use); `full`: no resumption.
//! Each loop first makes one connection (warm-up, the first ticket); then the client prints
//! `ready`, waits for a line on stdin, runs, and prints one JSON line: connections, full and
//! resumed handshakes as rustls saw them, how many closes carried close_notify, seconds.
//! The server's certificate is not checked against roots, but its handshake signature is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn config(resume: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519],
        cipher_suites: vec![aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256],
        ..aws_lc_rs::default_provider()
    });
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if resume {
        Resumption::in_memory_sessions(4)
    } else {
        Resumption::disabled()
    };
    Arc::new(config)
}

#[derive(Default, Clone, Copy)]
struct Tally {
    full: u64,
    resumed: u64,
    close_notify: u64,
}

async fn one(connector: &TlsConnector, port: u16, tally: &mut Tally) -> std::io::Result<()> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    match tls.get_ref().1.handshake_kind() {
        Some(HandshakeKind::Resumed) => tally.resumed += 1,
        _ => tally.full += 1,
    }
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response).await {
        Ok(_) => tally.close_notify += 1,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e),
    }
    if !response.windows(12).any(|w| w == b"hello world\n") {
        return Err(std::io::Error::other("no hello world in the response"));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, port, total, concurrency] = &args[..] else {
        eprintln!("usage: tls-client full|resumed PORT TOTAL CONCURRENCY");
        std::process::exit(2);
    };
    let resume = match mode.as_str() {
        "full" => false,
        "resumed" => true,
        _ => panic!("mode is full or resumed"),
    };
    let port: u16 = port.parse().expect("port");
    let total: u64 = total.parse().expect("total");
    let concurrency: u64 = concurrency.parse().expect("concurrency");

    // One connector (and so one ticket store) per loop; each loop warms up once.
    let mut connectors = Vec::new();
    for _ in 0..concurrency {
        let connector = TlsConnector::from(config(resume));
        tokio::time::timeout(
            Duration::from_secs(10),
            one(&connector, port, &mut Tally::default()),
        )
        .await
        .expect("warm-up connection timed out")
        .expect("warm-up connection failed");
        connectors.push(connector);
    }
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin"); // nothing else runs meanwhile

    let start = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for (i, connector) in connectors.into_iter().enumerate() {
        let count = total / concurrency + u64::from((i as u64) < total % concurrency);
        loops.spawn(async move {
            let mut tally = Tally::default();
            for _ in 0..count {
                tokio::time::timeout(Duration::from_secs(10), one(&connector, port, &mut tally))
                    .await
                    .expect("connection timed out")
                    .expect("connection failed");
            }
            tally
        });
    }
    let mut sum = Tally::default();
    while let Some(tally) = loops.join_next().await {
        let tally = tally.expect("loop");
        sum.full += tally.full;
        sum.resumed += tally.resumed;
        sum.close_notify += tally.close_notify;
    }
    println!(
        "{{\"connections\": {}, \"full\": {}, \"resumed\": {}, \"close_notify\": {}, \"seconds\": {}}}",
        sum.full + sum.resumed,
        sum.full,
        sum.resumed,
        sum.close_notify,
        start.elapsed().as_secs_f64()
    );
}

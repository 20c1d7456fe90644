//! A local badssl.com: servers with broken (and good) certificates made at test time. Each bad
//! one must be refused with the code Node's client gives for it, and each good one accepted;
//! Node's own `https.get` runs against the same server and must agree.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use portcullis::client::Agent;
use portcullis::tls::{danger, ClientTlsOptions, TlsVersion};
use portcullis::Identity;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::support::*;

/// The host a case connects to.
#[derive(Clone, Copy)]
enum Host {
    /// `localhost`.
    Localhost,
    /// `127.0.0.1` (no SNI; the certificate needs an IP SAN).
    Ip,
    /// A name resolved to the server's address by the agent (`--resolve`).
    Name(&'static str),
}

struct Case {
    name: &'static str,
    identity: Identity,
    /// The CAs the client trusts (Node's `ca`).
    ca: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    host: Host,
    /// Node's `err.code`, or `None` for a good server.
    expect: Option<&'static str>,
    /// What the message must contain.
    message: &'static str,
}

fn cases() -> Vec<Case> {
    let pki = Pki::new();
    let other = Pki::named("Other");
    let days = time::Duration::days;
    let issued = |leaf: Leaf| pki.inter.leaf(leaf);
    let revoked_leaf = pki.root.leaf(Leaf::localhost().serial(4242));
    let self_signed = Leaf::localhost().self_signed();
    let tutorial = Leaf::tutorial().self_signed();
    let tutorial_expired = Leaf::tutorial().valid(-days(30), -days(1)).self_signed();
    let wrong_self_signed = Leaf::dns(&["wrong.host.test"]).self_signed();
    vec![
        Case {
            name: "good chain",
            identity: pki.identity(),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: None,
            message: "",
        },
        Case {
            name: "wildcard",
            identity: issued(Leaf::dns(&["*.wild.test"])).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Name("a.wild.test"),
            expect: None,
            message: "",
        },
        Case {
            name: "IP SAN",
            identity: pki.identity(),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Ip,
            expect: None,
            message: "",
        },
        Case {
            name: "custom CA: a self-signed leaf trusted as its own CA",
            identity: self_signed.identity(&[]),
            ca: vec![self_signed.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: None,
            message: "",
        },
        Case {
            name: "no SAN: Node falls back to the CN",
            identity: issued(Leaf::cn_only("localhost")).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: None,
            message: "",
        },
        Case {
            name: "an IP SAN does not block the CN fallback",
            identity: issued(Leaf::cn_only("localhost").ip([127, 0, 0, 1].into()))
                .identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: None,
            message: "",
        },
        Case {
            name: "partial wildcard",
            identity: issued(Leaf::dns(&["b*z.wild.test"])).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Name("bar-baz.wild.test"),
            expect: None,
            message: "",
        },
        Case {
            name: "no SAN and another CN",
            identity: issued(Leaf::cn_only("example.test")).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("ERR_TLS_CERT_ALTNAME_INVALID"),
            message: "Host: localhost. is not cert's CN: example.test",
        },
        Case {
            name: "expired",
            identity: issued(Leaf::localhost().valid(-days(10), -days(1))).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("CERT_HAS_EXPIRED"),
            message: "certificate has expired",
        },
        Case {
            name: "not yet valid",
            identity: issued(Leaf::localhost().valid(days(1), days(10))).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("CERT_NOT_YET_VALID"),
            message: "certificate is not yet valid",
        },
        Case {
            name: "wrong host",
            identity: issued(Leaf::dns(&["wrong.host.test"])).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("ERR_TLS_CERT_ALTNAME_INVALID"),
            message: "Hostname/IP does not match certificate's altnames: Host: localhost. is not in the cert's altnames: DNS:wrong.host.test",
        },
        Case {
            name: "wildcard one level only",
            identity: issued(Leaf::dns(&["*.wild.test"])).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Name("a.b.wild.test"),
            expect: Some("ERR_TLS_CERT_ALTNAME_INVALID"),
            message: "Host: a.b.wild.test. is not in the cert's altnames: DNS:*.wild.test",
        },
        Case {
            name: "IP host without an IP SAN",
            identity: issued(Leaf::dns(&["localhost"])).identity(&[&pki.inter]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Ip,
            expect: Some("ERR_TLS_CERT_ALTNAME_INVALID"),
            message: "IP: 127.0.0.1 is not in the cert's list: ",
        },
        Case {
            name: "the tutorial's certificate (openssl req -x509: CA:TRUE, CN only) as its own CA",
            identity: tutorial.identity(&[]),
            ca: vec![tutorial.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: None,
            message: "",
        },
        Case {
            name: "the tutorial's certificate without ca",
            identity: tutorial.identity(&[]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("DEPTH_ZERO_SELF_SIGNED_CERT"),
            message: "self-signed certificate",
        },
        Case {
            name: "the tutorial's certificate as its own CA, reached by IP: the name still counts",
            identity: tutorial.identity(&[]),
            ca: vec![tutorial.der()],
            crls: vec![],
            host: Host::Ip,
            expect: Some("ERR_TLS_CERT_ALTNAME_INVALID"),
            message: "IP: 127.0.0.1 is not in the cert's list: ",
        },
        Case {
            name: "the tutorial's certificate as its own CA, expired: the dates still count",
            identity: tutorial_expired.identity(&[]),
            ca: vec![tutorial_expired.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("CERT_HAS_EXPIRED"),
            message: "certificate has expired",
        },
        Case {
            name: "self-signed",
            identity: self_signed.identity(&[]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("DEPTH_ZERO_SELF_SIGNED_CERT"),
            message: "self-signed certificate",
        },
        Case {
            name: "self-signed and the wrong host: the chain error wins",
            identity: wrong_self_signed.identity(&[]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("DEPTH_ZERO_SELF_SIGNED_CERT"),
            message: "",
        },
        Case {
            name: "untrusted root sent in the chain",
            identity: other.leaf.identity(&[&other.inter, &other.root]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("SELF_SIGNED_CERT_IN_CHAIN"),
            message: "self-signed certificate in certificate chain",
        },
        Case {
            name: "untrusted root not sent",
            identity: other.identity(),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
            message: "unable to get local issuer certificate",
        },
        Case {
            name: "missing intermediate",
            identity: pki.leaf.identity(&[]),
            ca: vec![pki.root.der()],
            crls: vec![],
            host: Host::Localhost,
            expect: Some("UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
            message: "unable to verify the first certificate",
        },
        Case {
            name: "revoked by CRL",
            identity: revoked_leaf.identity(&[]),
            ca: vec![pki.root.der()],
            crls: vec![pki.root.crl_revoking(4242)],
            host: Host::Localhost,
            expect: Some("CERT_REVOKED"),
            message: "certificate revoked",
        },
        Case {
            name: "a CRL that revokes another serial",
            identity: pki.root.leaf(Leaf::localhost().serial(77)).identity(&[]),
            ca: vec![pki.root.der()],
            crls: vec![pki.root.crl_revoking(4242)],
            host: Host::Localhost,
            expect: None,
            message: "",
        },
    ]
}

/// What our client says: `OK` or the error code; with `insecure`, `OK` or the response's
/// `authorization_error()`.
async fn ours(case: &Case, addr: SocketAddr, insecure: bool) -> String {
    let (url, resolve) = match case.host {
        Host::Localhost => (format!("https://localhost:{}/", addr.port()), None),
        Host::Ip => (format!("https://127.0.0.1:{}/", addr.port()), None),
        Host::Name(name) => (format!("https://{name}:{}/", addr.port()), Some(name)),
    };
    let mut tls = ClientTlsOptions::new()
        .ca(case.ca.clone())
        .crls(case.crls.clone());
    if insecure {
        tls = danger::insecure(tls);
    }
    let mut agent = Agent::builder().no_proxy().tls(tls);
    if let Some(name) = resolve {
        agent = agent.resolve(name, addr.port(), addr);
    }
    match agent.build().unwrap().get(&url).send().await {
        Ok(res) => {
            assert_eq!(res.status(), 200, "{}", case.name);
            let tls = res.tls_info().unwrap();
            let outcome = match tls.authorization_error() {
                None => "OK".to_owned(),
                Some(code) => code.to_owned(),
            };
            assert_eq!(tls.is_authorized(), outcome == "OK");
            assert_eq!(res.text().await.unwrap(), "hello world\n");
            outcome
        }
        Err(e) => {
            assert!(e.is_tls(), "{}: {e:?}", case.name);
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            for internal in [
                "Other(",
                "OtherError",
                "UnknownIssuer",
                "CaUsedAsEndEntity",
                "InvalidCertificate",
            ] {
                assert!(!text.contains(internal), "{}: {text}", case.name);
            }
            assert!(
                e.to_string().contains(case.message),
                "{}: {e} lacks {:?}",
                case.name,
                case.message
            );
            e.code().unwrap_or("no code").to_owned()
        }
    }
}

/// What Node's `https.get` says against the same server: `OK` or `err.code`; with `insecure`
/// (`rejectUnauthorized: false`), `OK` or `res.socket.authorizationError`.
fn node(case: &Case, addr: SocketAddr, dir: &Path, insecure: bool) -> String {
    let ca_path = dir.join("ca.pem");
    let pem: String = case
        .ca
        .iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())))
        .collect();
    std::fs::write(&ca_path, pem).unwrap();
    let crl_path = dir.join("crl.pem");
    let crl: String = case
        .crls
        .iter()
        .map(|der| pem::encode(&pem::Pem::new("X509 CRL", der.to_vec())))
        .collect();
    std::fs::write(&crl_path, crl).unwrap();
    let servername = match case.host {
        Host::Localhost => "localhost",
        Host::Ip => "",
        Host::Name(name) => name,
    };
    let script = r#"
const https = require('https'), fs = require('fs');
const [port, servername, ca, crl, insecure] = process.argv.slice(1);
const options = { host: '127.0.0.1', port: +port, path: '/', agent: false, ca: fs.readFileSync(ca),
  rejectUnauthorized: insecure !== 'insecure' };
if (servername) options.servername = servername;
const crlPem = fs.readFileSync(crl);
if (crlPem.length) options.crl = crlPem;
https.get(options, (res) => {
  res.resume();
  console.log(res.socket.authorized ? 'OK' : res.socket.authorizationError);
})
  .on('error', (e) => console.log(e.code || e.message));
"#;
    let out = Command::new("node")
        .args(["-e", script, &addr.port().to_string(), servername])
        .arg(&ca_path)
        .arg(&crl_path)
        .arg(if insecure { "insecure" } else { "verify" })
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_server_is_refused_with_nodes_code_and_good_ones_pass() {
    require("node");
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let server = TestServer::start("127.0.0.1:0", case.identity.clone(), |b| b).await;
        let wanted = case.expect.unwrap_or("OK");
        let node = tokio::task::block_in_place(|| node(&case, server.addr, dir.path(), false));
        assert_eq!(node, wanted, "Node on {:?}", case.name);
        assert_eq!(
            ours(&case, server.addr, false).await,
            wanted,
            "{:?}",
            case.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verification_off_each_server_answers_and_reports_nodes_authorization_error() {
    require("node");
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let server = TestServer::start("127.0.0.1:0", case.identity.clone(), |b| b).await;
        let wanted = case.expect.unwrap_or("OK");
        let node = tokio::task::block_in_place(|| node(&case, server.addr, dir.path(), true));
        assert_eq!(node, wanted, "Node on {:?}", case.name);
        assert_eq!(
            ours(&case, server.addr, true).await,
            wanted,
            "{:?}",
            case.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls10_only_server_is_refused() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.leaf.write(dir.path(), "server", &[&pki.inter]);
    // OpenSSL 3 refuses TLS 1.0 at its default security level; s_server must lower it.
    let server = openssl_server(
        dir,
        &cert,
        &key,
        &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
    )
    .await;
    for tls in [
        pki.trust(),
        pki.trust()
            .min_version(TlsVersion::Tls12)
            .max_version(TlsVersion::Tls12),
    ] {
        let err = Agent::builder()
            .no_proxy()
            .tls(tls)
            .build()
            .unwrap()
            .get(&server.url("/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_tls(), "{err:?}");
        assert_eq!(err.code(), Some("EPROTO"), "{err:?}");
    }
}

//! Node's certificate and public-key pinning example (`https.request` with a
//! `checkServerIdentity`), ported one for one:
//!
//! ```js
//! checkServerIdentity: function(host, cert) {
//!   const err = tls.checkServerIdentity(host, cert);
//!   if (err) return err;
//!   if (sha256(cert.pubkey) !== pubkey256) return new Error(`… public key of '${cert.subject.CN}' …`);
//!   if (cert.fingerprint256 !== cert256) return new Error(`… certificate of '${cert.subject.CN}' …`);
//!   do {
//!     console.log('Subject Common Name:', cert.subject.CN);
//!     console.log('  Certificate SHA256 fingerprint:', cert.fingerprint256);
//!     console.log('  Public key ping-sha256:', sha256(cert.pubkey));
//!     lastprint256 = cert.fingerprint256;
//!     cert = cert.issuerCertificate;
//!   } while (cert.fingerprint256 !== lastprint256);
//! },
//! ```
//!
//! then, on the response, `All OK…`, the status code and the `public-key-pins` header.
//!
//! The seed pins github.com against the public roots; this port takes the CA file so that it
//! runs against a local server too (the walk then ends at that CA, as Node's does):
//!
//! ```sh
//! cargo run -p portcullis --example pinning -- https://localhost:8443/ ca.pem \
//!   'pL1+qb9HTMRZJmuC/bB/ZI9d302BYrrqiVuRyW+DGrU=' '25:FE:39:32:…:8B:93:16'
//! ```
//!
//! The pins of a certificate file: `openssl x509 -in cert.pem -pubkey -noout | openssl pkey
//! -pubin -outform der | openssl dgst -sha256 -binary | base64` and `openssl x509 -in cert.pem
//! -noout -fingerprint -sha256`.

use std::process::ExitCode;
use std::sync::Arc;

use portcullis::client::Agent;
use portcullis::tls::{check_server_identity, load_certificates, ClientTlsOptions};
use portcullis::{Error, PeerCertificate};
use rustls_pki_types::CertificateDer;

/// What the example pins: Node's `pubkey256` and `cert256`.
#[derive(Debug, Clone)]
pub struct Pins {
    /// The leaf's public-key pin: base64 SHA-256 of its SubjectPublicKeyInfo (HPKP's
    /// `pin-sha256`).
    pub pubkey256: String,
    /// The leaf's SHA-256 fingerprint, `25:FE:39:…` (Node's `fingerprint256`).
    pub cert256: String,
}

/// Where the example's `console.log` lines go.
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// The example's `checkServerIdentity(host, cert)`. `chain` is the leaf and its issuers, as
/// Node's `cert.issuerCertificate` links walk them.
///
/// # Errors
/// `ERR_TLS_CERT_ALTNAME_INVALID` from the host check, or `ERR_TLS_PIN_MISMATCH` with the
/// seed's messages.
pub fn check(
    host: &str,
    chain: &[PeerCertificate],
    pins: &Pins,
    log: &dyn Fn(String),
) -> portcullis::Result<()> {
    // Make sure the certificate is issued to the host we are connected to
    check_server_identity(host, chain)?;
    let Some(cert) = chain.first() else {
        unreachable!("check_server_identity refuses an empty chain");
    };
    let cn = cert.subject().get("CN").unwrap_or_default();

    // Pin the public key, similar to HPKP pin-sha256 pinning
    if cert.pin_sha256() != pins.pubkey256 {
        let msg = format!(
            "Certificate verification error: The public key of '{cn}' does not match our pinned fingerprint"
        );
        return Err(Error::server_identity("ERR_TLS_PIN_MISMATCH", msg));
    }

    // Pin the exact certificate, rather than the pub key
    if cert.fingerprint256() != pins.cert256 {
        let msg = format!(
            "Certificate verification error: The certificate of '{cn}' does not match our pinned fingerprint"
        );
        return Err(Error::server_identity("ERR_TLS_PIN_MISMATCH", msg));
    }

    // This loop is informational only.
    // Print the certificate and public key fingerprints of all certs in the
    // chain. Its common to pin the public key of the issuer on the public
    // internet, while pinning the public key of the service in sensitive
    // environments.
    for cert in chain {
        log(format!(
            "Subject Common Name: {}",
            cert.subject().get("CN").unwrap_or_default()
        ));
        log(format!(
            "  Certificate SHA256 fingerprint: {}",
            cert.fingerprint256()
        ));
        log(format!("  Public key ping-sha256: {}", cert.pin_sha256()));
        // Node stops at the root, whose issuerCertificate is itself.
        if cert.subject() == cert.issuer() {
            break;
        }
    }
    Ok(())
}

/// The example's request: `options.agent = new https.Agent(options)`, then `https.request`,
/// logging as the response callback does. Returns the status code.
///
/// # Errors
/// The request's error (`req.on('error')`): a pin or host mismatch, or a connection failure.
pub async fn run(
    url: &str,
    ca: Vec<CertificateDer<'static>>,
    pins: Pins,
    log: Log,
) -> portcullis::Result<u16> {
    let check_log = log.clone();
    let tls = ClientTlsOptions::new()
        .ca(ca)
        .check_server_identity(move |host, chain| check(host, chain, &pins, &*check_log));
    let agent = Agent::builder().tls(tls).build()?;
    let res = agent.get(url).send().await?;
    log("All OK. Server matched our pinned cert or public key".to_owned());
    log(format!("statusCode: {}", res.status().as_u16()));
    // Print the HPKP values
    let hpkp = res
        .headers()
        .get("public-key-pins")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("undefined");
    log(format!("headers: {hpkp}"));
    let status = res.status().as_u16();
    res.bytes().await?; // res.on('data', (d) => {});
    Ok(status)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, ca, pubkey256, cert256] = args.as_slice() else {
        eprintln!("usage: pinning <https-url> <ca.pem> <pin-sha256 base64> <fingerprint256>");
        return ExitCode::from(2);
    };
    let ca = match load_certificates(ca) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let pins = Pins {
        pubkey256: pubkey256.clone(),
        cert256: cert256.clone(),
    };
    let log: Log = Arc::new(|line| println!("{line}"));
    match run(url, ca, pins, log).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            // req.on('error', (e) => { console.error(e.message); });
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

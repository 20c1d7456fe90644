//! Identities in every format users have, made by `openssl` at test time, each served to curl;
//! and the errors a user gets for a wrong passphrase or a key of another certificate.

use portcullis::{Identity, Passphrase};

use crate::support_files::{assert_curl_ok, Files, SECRET};

fn secret() -> Passphrase {
    Passphrase::new(SECRET.into())
}

/// `openssl req -x509 -newkey rsa:2048 -nodes`: a self-signed RSA leaf and its PKCS#8 key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_self_signed_pem() {
    let f = Files::new();
    f.openssl(
        "req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -subj /CN=localhost \
         -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 30",
    )
    .await;
    let id = Identity::from_files(f.path("c.pem"), f.path("k.pem"), None).unwrap();
    assert_eq!(id.chain().len(), 1);
    let days = id.not_after().duration_since(id.not_before()).unwrap();
    assert_eq!(days.as_secs() / 86_400, 30);
    assert_curl_ok(id, &f.path("c.pem")).await;
}

/// PKCS#12 as the seeds make it, with OpenSSL 3's defaults, and with `-legacy` (RC2/3DES,
/// SHA-1 MAC); also through `from_files` with the archive given as both files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs12_all_variants() {
    let f = Files::new();
    f.rsa_leaf().await;
    for (name, extra) in [
        ("seeds.p12", "-certpbe AES-256-CBC -keypbe AES-256-CBC"),
        ("default.p12", ""),
        ("legacy.p12", "-legacy"),
    ] {
        f.openssl(&format!(
            "pkcs12 -export -in c.pem -inkey k.pem -out {name} -passout pass:{SECRET} {extra}"
        ))
        .await;
        let id = Identity::from_pkcs12_file(f.path(name), &secret())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(id.chain().len(), 1, "{name}");
        assert_curl_ok(id, &f.path("ca.pem")).await;
    }
    let p12 = f.path("default.p12");
    let id = Identity::from_files(&p12, &p12, Some(&secret())).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;
    let id = Identity::from_pkcs12(&f.read("legacy.p12"), &secret()).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;
}

/// Encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2 aes256`, and `genrsa -aes256` in OpenSSL 3),
/// with the passphrase read from a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_pkcs8() {
    let f = Files::new();
    f.rsa_leaf().await;
    f.openssl(&format!(
        "pkcs8 -topk8 -v2 aes256 -in k.pem -out enc.pem -passout pass:{SECRET}"
    ))
    .await;
    f.write("pass.txt", format!("{SECRET}\n"));
    let pass = Passphrase::from_file(f.path("pass.txt")).unwrap();
    let id = Identity::from_files(f.path("c.pem"), f.path("enc.pem"), Some(&pass)).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;

    f.openssl(&format!(
        "genrsa -aes256 -out g.pem -passout pass:{SECRET} 2048"
    ))
    .await;
    f.issue("g.pem", "g-cert", "ca", false).await;
    let id = Identity::from_files(f.path("g-cert.pem"), f.path("g.pem"), Some(&pass)).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;
}

/// Legacy OpenSSL encrypted PEM: `openssl rsa -aes256 -traditional` and `-des3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traditional_encrypted_rsa() {
    let f = Files::new();
    f.rsa_leaf().await;
    for cipher in ["aes256", "des3"] {
        let name = format!("trad-{cipher}.pem");
        f.openssl(&format!(
            "rsa -in k.pem -{cipher} -traditional -out {name} -passout pass:{SECRET}"
        ))
        .await;
        let text = String::from_utf8(f.read(&name)).unwrap();
        assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{text}");
        let id = Identity::from_files(f.path("c.pem"), f.path(&name), Some(&secret())).unwrap();
        assert_curl_ok(id, &f.path("ca.pem")).await;
    }
}

/// An EC key in SEC1 (`EC PRIVATE KEY`), plain and `openssl ec -aes256` encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_sec1() {
    let f = Files::new();
    f.root_ca().await;
    f.openssl("ecparam -genkey -name prime256v1 -noout -out k.pem")
        .await;
    f.issue("k.pem", "c", "ca", false).await;
    let id = Identity::from_files(f.path("c.pem"), f.path("k.pem"), None).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;

    f.openssl(&format!(
        "ec -in k.pem -aes256 -out enc.pem -passout pass:{SECRET}"
    ))
    .await;
    let id = Identity::from_files(f.path("c.pem"), f.path("enc.pem"), Some(&secret())).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;
}

/// An Ed25519 key (`openssl genpkey -algorithm ed25519`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519() {
    let f = Files::new();
    f.root_ca().await;
    f.openssl("genpkey -algorithm ed25519 -out k.pem").await;
    f.issue("k.pem", "c", "ca", false).await;
    let id = Identity::from_files(f.path("c.pem"), f.path("k.pem"), None).unwrap();
    assert_curl_ok(id, &f.path("ca.pem")).await;
}

/// A DER certificate file and a DER key file (PKCS#8 and PKCS#1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn der_cert_and_key() {
    let f = Files::new();
    f.rsa_leaf().await;
    f.openssl("x509 -in c.pem -outform DER -out c.der").await;
    f.openssl("pkcs8 -topk8 -nocrypt -in k.pem -outform DER -out k8.der")
        .await;
    f.openssl("rsa -in k.pem -traditional -outform DER -out k1.der")
        .await;
    for key in ["k8.der", "k1.der"] {
        let id = Identity::from_files(f.path("c.der"), f.path(key), None).unwrap();
        assert_curl_ok(id, &f.path("ca.pem")).await;
    }
    // The old entry point reads DER too.
    let id = Identity::from_pem_files(f.path("c.der"), f.path("k8.der")).unwrap();
    assert_eq!(id.chain().len(), 1);
}

/// A wrong passphrase, a missing one, a damaged archive and a key of another certificate each
/// give their own error, naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_told_apart() {
    let f = Files::new();
    f.rsa_leaf().await;
    f.openssl(&format!(
        "pkcs12 -export -certpbe AES-256-CBC -keypbe AES-256-CBC -in c.pem -inkey k.pem \
         -out a.p12 -passout pass:{SECRET}"
    ))
    .await;
    f.openssl(&format!(
        "pkcs8 -topk8 -v2 aes256 -in k.pem -out enc.pem -passout pass:{SECRET}"
    ))
    .await;
    f.openssl(&format!(
        "rsa -in k.pem -aes256 -traditional -out trad.pem -passout pass:{SECRET}"
    ))
    .await;
    let wrong = Passphrase::new("not the secret".into());
    let wrong_msg = "wrong passphrase (or the file is damaged: decryption failed)";

    let e = Identity::from_pkcs12_file(f.path("a.p12"), &wrong).unwrap_err();
    assert!(e.is_config());
    assert_eq!(e.path(), Some(f.path("a.p12").as_path()));
    assert!(e.to_string().ends_with(wrong_msg), "{e}");
    for key in ["enc.pem", "trad.pem"] {
        let e = Identity::from_files(f.path("c.pem"), f.path(key), Some(&wrong)).unwrap_err();
        assert_eq!(e.path(), Some(f.path(key).as_path()));
        assert!(e.to_string().ends_with(wrong_msg), "{key}: {e}");
        let e = Identity::from_files(f.path("c.pem"), f.path(key), None).unwrap_err();
        assert!(
            e.to_string().contains("a passphrase is needed"),
            "{key}: {e}"
        );
    }

    // A damaged archive is corrupt, not a wrong passphrase.
    let mut damaged = f.read("a.p12");
    damaged.truncate(damaged.len() - 100);
    f.write("damaged.p12", damaged);
    let e = Identity::from_pkcs12_file(f.path("damaged.p12"), &secret()).unwrap_err();
    assert!(
        e.to_string().contains("corrupt file: not valid PKCS#12"),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong passphrase"), "{e}");

    // The key of another certificate.
    f.openssl("genrsa -out other.pem 2048").await;
    let e = Identity::from_files(f.path("c.pem"), f.path("other.pem"), None).unwrap_err();
    assert!(e.is_config());
    assert!(
        e.to_string()
            .contains("the private key does not match the certificate"),
        "{e}"
    );
    assert!(!e.to_string().contains("passphrase"), "{e}");

    // A key file holding only a certificate says so; a PKCS#12 given as a key file too.
    let e = Identity::from_files(f.path("c.pem"), f.path("ca.pem"), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("no private key found; the file holds 1 certificate(s)"),
        "{e}"
    );
    let e = Identity::from_files(f.path("c.pem"), f.path("a.p12"), Some(&secret())).unwrap_err();
    assert!(e.to_string().contains("PKCS#12 archive"), "{e}");
}

/// A PKCS#12 holding the leaf, its key and the intermediate CA that signed it: the chain is
/// leaf then intermediate, and curl trusting only the root verifies it (so the intermediate
/// was sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs12_ca_certificates_become_the_chain() {
    let f = Files::new();
    f.root_ca().await;
    f.openssl("ecparam -genkey -name prime256v1 -noout -out int.key")
        .await;
    f.issue("int.key", "int", "ca", true).await;
    f.openssl("genrsa -out k.pem 2048").await;
    f.issue("k.pem", "c", "int", false).await;
    f.openssl(&format!(
        "pkcs12 -export -certpbe AES-256-CBC -keypbe AES-256-CBC -in c.pem -inkey k.pem \
         -certfile int.pem -out a.p12 -passout pass:{SECRET}"
    ))
    .await;
    let id = Identity::from_pkcs12_file(f.path("a.p12"), &secret()).unwrap();
    let leaf = portcullis::tls::load_certificates(f.path("c.pem")).unwrap();
    let int = portcullis::tls::load_certificates(f.path("int.pem")).unwrap();
    assert_eq!(id.chain(), &[leaf[0].clone(), int[0].clone()]);
    assert_curl_ok(id, &f.path("ca.pem")).await;

    // Without the intermediate, curl trusting only the root refuses: the test is meaningful.
    f.openssl(&format!(
        "pkcs12 -export -in c.pem -inkey k.pem -out bare.p12 -passout pass:{SECRET}"
    ))
    .await;
    let bare = Identity::from_pkcs12_file(f.path("bare.p12"), &secret()).unwrap();
    assert_eq!(bare.chain().len(), 1);
    let running = crate::support_files::serve(bare).await;
    let out = crate::support_files::curl_with_ca(running.addr, &f.path("ca.pem")).await;
    assert!(
        !out.status.success(),
        "curl accepted a chain without its intermediate"
    );
}

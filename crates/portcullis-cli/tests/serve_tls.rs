//! `portcullis serve` TLS flags with real peers: PKCS#12 and encrypted keys, mTLS with CRL,
//! SNI bindings and a certificate directory, hot reload, shared ticket keys, key log.

use portcullis_test_support::cli as support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// Runs openssl in `dir`, failing the test on error.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`/`ca.key`) in `dir` that signs leaves: `leaf(name, cn, san, ext)`.
struct OpensslCa {
    dir: PathBuf,
    serial: std::cell::Cell<u32>,
}

impl OpensslCa {
    fn new(dir: &Path) -> Self {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=test-ca",
                "-days",
                "2",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Self {
            dir: dir.to_path_buf(),
            serial: std::cell::Cell::new(0x1000),
        }
    }

    /// Writes `NAME.pem` (leaf) and `NAME.key` (unencrypted PKCS#8); returns the serial.
    fn leaf(&self, name: &str, cn: &str, san: &str, client: bool) -> u32 {
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let eku = if client { "clientAuth" } else { "serverAuth" };
        fs::write(
            self.dir.join(format!("{name}.ext")),
            format!("subjectAltName={san}\nextendedKeyUsage={eku}\n"),
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial.to_string(),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
        serial
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

fn s_client(port: u16, args: &[&str]) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} {} < /dev/null 2>&1",
            args.join(" ")
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// s_client that sends one request and reads to the end, so TLS 1.3 tickets (sent after the
/// handshake) arrive before it exits.
fn s_client_request(port: u16, args: &[&str]) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -ign_eof -connect 127.0.0.1:{port} {} 2>&1",
            args.join(" ")
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn subject_cn(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("subject="))
        .and_then(|l| l.split("CN = ").nth(1))
        .unwrap_or_else(|| panic!("no subject in {out}"))
        .trim()
        .to_owned()
}

#[test]
fn pfx_and_encrypted_keys_with_a_passphrase_file_or_env() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("site", "localhost", "DNS:localhost", false);
    fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    openssl(
        dir.path(),
        &[
            "pkcs12",
            "-export",
            "-certpbe",
            "AES-256-CBC",
            "-keypbe",
            "AES-256-CBC",
            "-in",
            "site.pem",
            "-inkey",
            "site.key",
            "-certfile",
            "ca.pem",
            "-out",
            "site.p12",
            "-passout",
            "pass:s3cret",
        ],
    );
    openssl(
        dir.path(),
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes256",
            "-in",
            "site.key",
            "-out",
            "enc.key",
            "-passout",
            "pass:s3cret",
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let ca_path = PathBuf::from(ca.path("ca.pem"));

    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--pfx",
            &ca.path("site.p12"),
            "--passphrase-file",
            &ca.path("pw"),
        ],
    );
    let out = curl(
        server.port(),
        Some(&ca_path),
        &[&format!("https://localhost:{}/", server.port())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);

    let server = Portcullis::start_with_env(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &ca.path("site.pem"),
            "--key",
            &ca.path("enc.key"),
        ],
        &[("PORTCULLIS_PASSPHRASE", "s3cret")],
    );
    let out = curl(
        server.port(),
        Some(&ca_path),
        &[&format!("https://localhost:{}/", server.port())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);

    // A wrong passphrase is a usage error naming the file.
    fs::write(dir.path().join("bad"), "nope").unwrap();
    let out = run(
        home.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--pfx",
            &ca.path("site.p12"),
            "--passphrase-file",
            &ca.path("bad"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site.p12") && err.contains("passphrase"),
        "{err}"
    );
}

#[test]
fn required_client_certificates_and_crl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("site", "localhost", "DNS:localhost", false);
    ca.leaf("alice", "alice", "DNS:alice.example", true);
    let revoked = ca.leaf("mallory", "mallory", "DNS:mallory.example", true);
    // A CRL revoking mallory, made with `openssl ca`.
    let d = dir.path();
    fs::write(
        d.join("index.txt"),
        format!("R\t301231235959Z\t250101000000Z\t{revoked:X}\tunknown\t/CN=mallory\n"),
    )
    .unwrap();
    fs::write(d.join("crlnumber"), "01\n").unwrap();
    fs::write(d.join("ca.cnf"), "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n").unwrap();
    openssl(
        d,
        &[
            "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem", "-out",
            "crl.pem",
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &ca.path("site.pem"),
            "--key",
            &ca.path("site.key"),
            "--client-ca",
            &ca.path("ca.pem"),
            "--require-client-cert",
            "--crl",
            &ca.path("crl.pem"),
        ],
    );
    let url = format!("https://localhost:{}/", server.port());
    let ca_path = PathBuf::from(ca.path("ca.pem"));
    let with = |name: &str| {
        curl(
            server.port(),
            Some(&ca_path),
            &[
                "--cert",
                &ca.path(&format!("{name}.pem")),
                "--key",
                &ca.path(&format!("{name}.key")),
                &url,
            ],
        )
    };
    let out = with("alice");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !with("mallory").status.success(),
        "a revoked client must be refused"
    );
    assert!(
        !curl(server.port(), Some(&ca_path), &[&url])
            .status
            .success(),
        "no certificate must be refused"
    );
}

#[test]
fn sni_flags_bind_identities_and_cert_dir_serves_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("default", "default", "DNS:localhost", false);
    ca.leaf("a", "a.test", "DNS:a.test", false);
    ca.leaf("b", "b.test", "DNS:b.test", false);
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &ca.path("default.pem"),
            "--key",
            &ca.path("default.key"),
            "--sni",
            "a.test",
            "--cert",
            &ca.path("a.pem"),
            "--key",
            &ca.path("a.key"),
            "--sni",
            "b.test",
            "--sni",
            "*.b.test",
            "--cert",
            &ca.path("b.pem"),
            "--key",
            &ca.path("b.key"),
        ],
    );
    let port = server.port();
    assert_eq!(
        subject_cn(&s_client(port, &["-servername", "a.test"])),
        "a.test"
    );
    assert_eq!(
        subject_cn(&s_client(port, &["-servername", "b.test"])),
        "b.test"
    );
    assert_eq!(
        subject_cn(&s_client(port, &["-servername", "x.b.test"])),
        "b.test"
    );
    assert_eq!(
        subject_cn(&s_client(port, &["-servername", "other.test"])),
        "default"
    );
    assert_eq!(subject_cn(&s_client(port, &["-noservername"])), "default");
    drop(server);

    let certs = dir.path().join("certs");
    fs::create_dir(&certs).unwrap();
    for name in ["a", "b"] {
        fs::copy(
            dir.path().join(format!("{name}.pem")),
            certs.join(format!("{name}.test.pem")),
        )
        .unwrap();
        fs::copy(
            dir.path().join(format!("{name}.key")),
            certs.join(format!("{name}.test-key.pem")),
        )
        .unwrap();
    }
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert-dir",
            &certs.display().to_string(),
        ],
    );
    assert_eq!(
        subject_cn(&s_client(server.port(), &["-servername", "b.test"])),
        "b.test"
    );
    assert_eq!(
        subject_cn(&s_client(server.port(), &["-servername", "a.test"])),
        "a.test"
    );
}

#[test]
fn reload_on_sighup_and_on_file_change_keeps_the_old_identity_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("one", "one", "DNS:localhost", false);
    ca.leaf("two", "two", "DNS:localhost", false);
    ca.leaf("three", "three", "DNS:localhost", false);
    let (live_cert, live_key, _home, server) = serve_live(dir.path());
    let port = server.port();
    assert_eq!(
        subject_cn(&s_client(port, &["-servername", "localhost"])),
        "one"
    );

    // A broken certificate file: logged, the old identity kept.
    fs::write(&live_cert, "not a certificate").unwrap();
    server.signal("HUP");
    wait_for(
        || server.log().contains("reload failed"),
        "the reload failure to be logged",
        &server,
    );
    assert_eq!(
        subject_cn(&s_client(port, &["-servername", "localhost"])),
        "one"
    );

    // SIGHUP after replacing both files.
    fs::copy(dir.path().join("two.pem"), &live_cert).unwrap();
    fs::copy(dir.path().join("two.key"), &live_key).unwrap();
    server.signal("HUP");
    wait_for(
        || subject_cn(&s_client(port, &["-servername", "localhost"])) == "two",
        "the SIGHUP reload",
        &server,
    );

    // A file change alone. The watcher polls every second and compares modification times:
    // the change must land in a later second than the files it replaces (the scenario, not a
    // wait for state).
    std::thread::sleep(Duration::from_millis(1100));
    fs::copy(dir.path().join("three.key"), &live_key).unwrap();
    fs::copy(dir.path().join("three.pem"), &live_cert).unwrap();
    wait_for(
        || subject_cn(&s_client(port, &["-servername", "localhost"])) == "three",
        "the file-change reload",
        &server,
    );
}

/// `portcullis serve` on `live.pem`/`live.key` in `dir`, copied from the leaf `one` there: the
/// files the reload tests change under the running server. The home directory lives as long as
/// the server.
fn serve_live(dir: &Path) -> (PathBuf, PathBuf, tempfile::TempDir, Portcullis) {
    let live_cert = dir.join("live.pem");
    let live_key = dir.join("live.key");
    fs::copy(dir.join("one.pem"), &live_cert).unwrap();
    fs::copy(dir.join("one.key"), &live_key).unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &live_cert.display().to_string(),
            "--key",
            &live_key.display().to_string(),
        ],
    );
    (live_cert, live_key, home, server)
}

fn wait_for(check: impl FnMut() -> bool, what: &str, server: &Portcullis) {
    assert!(
        eventually_blocking(Duration::from_secs(10), check),
        "timed out waiting for {what}; log: {}",
        server.log()
    );
}

#[test]
fn two_processes_sharing_ticket_keys_resume_each_others_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("site", "localhost", "DNS:localhost", false);
    let keys = dir.path().join("ticket.keys");
    openssl(dir.path(), &["rand", "-out", "ticket.keys", "48"]);
    let home = tempfile::tempdir().unwrap();
    let args = |_: ()| {
        vec![
            "--listen".to_owned(),
            "127.0.0.1:0".into(),
            "--cert".into(),
            ca.path("site.pem"),
            "--key".into(),
            ca.path("site.key"),
            "--ticket-keys".into(),
            keys.display().to_string(),
        ]
    };
    let a_args = args(());
    let a = Portcullis::start(
        home.path(),
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b = Portcullis::start(
        home.path(),
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let sess = dir.path().join("sess.pem").display().to_string();
    let cafile = ca.path("ca.pem");
    let out = s_client_request(
        a.port(),
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &cafile,
            "-sess_out",
            &sess,
        ],
    );
    assert!(out.contains("New, TLSv1.3"), "{out}");
    let out = s_client_request(
        b.port(),
        &[
            "-tls1_3",
            "-servername",
            "localhost",
            "-CAfile",
            &cafile,
            "-sess_in",
            &sess,
        ],
    );
    assert!(
        out.contains("Reused, TLSv1.3"),
        "B must resume A's session: {out}"
    );
}

#[test]
fn keylog_flag_and_sslkeylogfile() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let log = dir.path().join("flag.log");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--keylog",
            &log.display().to_string(),
        ],
    );
    assert!(server
        .curl(&[
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            &format!("https://localhost:{}/", server.port())
        ])
        .status
        .success());
    assert!(server
        .curl(&[
            "--tlsv1.3",
            &format!("https://localhost:{}/", server.port())
        ])
        .status
        .success());
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("CLIENT_RANDOM "), "{text}");
    assert!(text.contains("SERVER_TRAFFIC_SECRET_0 "), "{text}");
    assert!(
        server.log().contains("key logging is on"),
        "{}",
        server.log()
    );
    drop(server);

    let env_log = dir.path().join("env.log");
    let server = Portcullis::start_with_env(
        home.path(),
        &["--listen", "127.0.0.1:0"],
        &[("SSLKEYLOGFILE", &env_log.display().to_string())],
    );
    assert!(server
        .curl(&[&format!("https://localhost:{}/", server.port())])
        .status
        .success());
    assert!(fs::read_to_string(&env_log)
        .unwrap()
        .contains("CLIENT_TRAFFIC_SECRET_0 "));
}

#[test]
#[ignore = "needs h2load (nghttp2-client)"]
fn reload_during_an_h2load_run_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("one", "one", "DNS:localhost", false);
    ca.leaf("two", "two", "DNS:localhost", false);
    let (live_cert, live_key, _home, server) = serve_live(dir.path());
    let port = server.port();
    // 600 connections made at 200/s, one request each: new connections keep arriving while
    // the certificate is swapped back and forth.
    let h2load = Command::new("h2load")
        .args([
            "-n",
            "600",
            "-c",
            "600",
            "-r",
            "200",
            "-m",
            "1",
            &format!("https://127.0.0.1:{port}/"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for i in 0..4 {
        // Reloads spaced out under the running load (the scenario, not a wait for state).
        std::thread::sleep(Duration::from_millis(500));
        let name = if i % 2 == 0 { "two" } else { "one" };
        fs::copy(dir.path().join(format!("{name}.pem")), &live_cert).unwrap();
        fs::copy(dir.path().join(format!("{name}.key")), &live_key).unwrap();
        server.signal("HUP");
    }
    let out = h2load.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("600 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    wait_for(
        || subject_cn(&s_client(port, &["-servername", "localhost"])) == "one",
        "the last reload",
        &server,
    );
    assert!(
        server.log().matches("TLS configuration reloaded").count() >= 4,
        "{}",
        server.log()
    );
}

#[test]
fn cert_new_client_makes_a_certificate_that_passes_required_client_authentication() {
    // mTLS with nothing but portcullis: the local CA, a server certificate, a client one.
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let new = |args: &[&str]| {
        let out = Command::new(bin())
            .args(["cert", "new"])
            .args(args)
            .current_dir(work.path())
            .env("PORTCULLIS_HOME", home.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    new(&["client-1", "--client"]);
    new(&["server-only"]);
    let ca = home.path().join("ca.pem");
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--client-ca",
            ca.to_str().unwrap(),
            "--require-client-cert",
        ],
    );
    let url = format!("https://localhost:{}/", server.port());
    let get = |name: &str| {
        Command::new(bin())
            .args(["get", "--fail", "--cacert"])
            .arg(&ca)
            .args([
                "--resolve",
                &format!("localhost:{}:127.0.0.1", server.port()),
            ])
            .arg("--cert")
            .arg(work.path().join(format!("{name}.pem")))
            .arg("--key")
            .arg(work.path().join(format!("{name}-key.pem")))
            .arg(&url)
            .env("PORTCULLIS_HOME", home.path())
            .output()
            .unwrap()
    };
    let ok = get("client-1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A certificate made for servers only (serverAuth) is refused as a client's.
    let refused = get("server-only");
    assert!(!refused.status.success());
}

#[test]
fn key_material_that_is_no_regular_file_or_too_large_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("one", "one", "DNS:localhost", false);
    let key = dir.path().join("one.key").display().to_string();
    let cert = dir.path().join("one.pem").display().to_string();
    let home = tempfile::tempdir().unwrap();
    let serve = |cert: &str, key: &str| {
        let out = run(
            home.path(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--cert",
                cert,
                "--key",
                key,
            ],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A device would be read forever (2 GB before failing, before this check).
    let (code, err) = serve("/dev/zero", &key);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("a character device"),
        "{err}"
    );
    // A key file of 2 MiB is no key.
    let big = dir.path().join("big.key");
    fs::write(&big, vec![b'A'; 2 << 20]).unwrap();
    let (code, err) = serve(&cert, &big.display().to_string());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("big.key") && err.contains("larger than 1 MiB"),
        "{err}"
    );
}

#[test]
fn a_reload_from_a_named_pipe_is_refused_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("one", "one", "DNS:localhost", false);
    let (live_cert, _, _home, mut server) = serve_live(dir.path());
    // The certificate path becomes a FIFO: opening it to read would block until a writer
    // comes, and before the reload moved off the runtime that froze every connection.
    fs::remove_file(&live_cert).unwrap();
    let made = Command::new("mkfifo").arg(&live_cert).status().unwrap();
    assert!(made.success());
    server.signal("HUP");
    // Waits for the FIFO's refusal itself: the file watcher may log a failed reload first,
    // having seen the path between its removal and the mkfifo.
    wait_for(
        || server.log().contains("a named pipe"),
        "the refused reload to be logged",
        &server,
    );
    assert!(server.log().contains("reload failed"), "{}", server.log());
    assert_eq!(
        subject_cn(&s_client(server.port(), &["-servername", "localhost"])),
        "one"
    );
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.is_some(), "SIGTERM is answered: {}", server.log());
}

#[test]
fn ticket_key_rotation_keeps_recent_sessions_and_drops_those_beyond_the_kept_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path());
    ca.leaf("site", "localhost", "DNS:localhost", false);
    let home = tempfile::tempdir().unwrap();
    let keys = dir.path().join("ticket.keys").display().to_string();
    let made = run(home.path(), &["tickets", "new", &keys]);
    assert!(made.status.success(), "{made:?}");
    assert_eq!(fs::metadata(&keys).unwrap().len(), 48);
    let again = run(home.path(), &["tickets", "new", &keys]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "new refuses to replace a key file"
    );
    let (cert, key) = (ca.path("site.pem"), ca.path("site.key"));
    let server = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--cert",
            &cert,
            "--key",
            &key,
            "--ticket-keys",
            &keys,
        ],
    );
    let port = server.port();
    let cafile = ca.path("ca.pem");
    let connect = |version: &str, sess: &str| {
        s_client_request(
            port,
            &[
                version,
                "-servername",
                "localhost",
                "-CAfile",
                &cafile,
                sess,
                &dir.path().join(version).display().to_string(),
            ],
        )
    };
    for version in ["-tls1_3", "-tls1_2"] {
        let out = connect(version, "-sess_out");
        assert!(out.contains("New, TLSv1."), "{out}");
    }
    let rotate = |reloads: usize| {
        let out = run(home.path(), &["tickets", "rotate", "--keep", "2", &keys]);
        assert!(out.status.success(), "{out:?}");
        wait_for(
            || server.log().matches("TLS configuration reloaded").count() >= reloads,
            "the reload of the rotated key file",
            &server,
        );
    };
    // One rotation: the sessions' key is kept for decryption, so they resume.
    rotate(1);
    assert_eq!(fs::metadata(&keys).unwrap().len(), 96);
    for version in ["-tls1_3", "-tls1_2"] {
        let out = connect(version, "-sess_in");
        assert!(
            out.contains("Reused, TLSv1."),
            "{version} across a rotation: {out}"
        );
    }
    // A second one with --keep 2 drops their key: a full handshake, no error.
    rotate(2);
    assert_eq!(fs::metadata(&keys).unwrap().len(), 96);
    for version in ["-tls1_3", "-tls1_2"] {
        let out = connect(version, "-sess_in");
        assert!(
            out.contains("New, TLSv1."),
            "{version} beyond the kept keys: {out}"
        );
        assert!(out.contains("HTTP/1.1 200"), "{out}");
    }
}

#[test]
fn proxy_protocol_is_taken_only_from_the_trusted_networks() {
    let home = tempfile::tempdir().unwrap();
    // curl sends a PROXY v1 header from 127.0.0.1: trusted by default.
    let server = Portcullis::start(
        home.path(),
        &["--listen", "127.0.0.1:0", "--proxy-protocol"],
    );
    let url = format!("https://localhost:{}/", server.port());
    let out = server.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--haproxy-protocol",
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let wary = Portcullis::start(
        home.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--proxy-protocol",
            "--proxy-protocol-from",
            "10.0.0.0/8,fd00::/8",
        ],
    );
    let url = format!("https://localhost:{}/", wary.port());
    let out = wary.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--haproxy-protocol",
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000", "refused");
    wait_for(
        || wary.log().contains("not a trusted proxy"),
        "the refusal to be logged",
        &wary,
    );
    // A bad network is a usage error that names it.
    let bad = run(
        home.path(),
        &[
            "serve",
            "--proxy-protocol",
            "--proxy-protocol-from",
            "10.0.0.0/33",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("10.0.0.0/33"));
}

/// Clears close-on-exec so that a child started from here inherits `socket`.
fn inheritable(socket: &impl std::os::fd::AsFd) -> i32 {
    use std::os::fd::AsRawFd;
    rustix::io::fcntl_setfd(socket, rustix::io::FdFlags::empty()).unwrap();
    socket.as_fd().as_raw_fd()
}

#[test]
fn serves_the_sockets_socket_activation_passes() {
    // As systemd's portcullis.socket passes them: one for HTTPS, one named "http".
    let home = tempfile::tempdir().unwrap();
    let https = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fds = [inheritable(&https), inheritable(&http)];
    let server = Portcullis::start_on_sockets(home.path(), &fds, "https:http", &["--redirect"]);
    assert_eq!(server.https, vec![https.local_addr().unwrap()]);
    assert_eq!(server.http, Some(http.local_addr().unwrap()));
    assert_eq!(server.get("/", &[]).status, 200);
    let out = curl(
        http.local_addr().unwrap().port(),
        None,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &format!("http://localhost:{}/x", http.local_addr().unwrap().port()),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("301 https://localhost:") || text.starts_with("308 https://localhost:"),
        "{text}"
    );
    assert!(server
        .log()
        .contains("serving the sockets passed by socket activation"));
    // Without a passed "http" socket, --redirect still needs --http-listen.
    let alone = run(
        home.path(),
        &["serve", "--listen", "127.0.0.1:0", "--redirect"],
    );
    assert_eq!(alone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--http-listen"));
}

#[test]
fn a_passed_descriptor_that_is_not_a_listening_tcp_socket_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let fd = inheritable(&udp);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3<&{fd}; export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" serve"
        ))
        .arg(bin())
        .env("PORTCULLIS_HOME", home.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("passed descriptor 3") && stderr.contains("not a TCP socket"),
        "{stderr}"
    );
}

#[test]
fn restarts_on_a_passed_socket_under_load_refuse_and_fail_no_request() {
    // The supervisor's part (systemd's portcullis.socket) is played by this test: it holds the
    // listening socket while generations of `serve` take it over, each new one started before
    // the old one is told to stop, as a load of new connections keeps coming.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let home = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fd = inheritable(&listener);
    let mut current = Portcullis::start_on_sockets(home.path(), &[fd], "https", &[]);
    let ca = current.ca();
    let (ok, failed, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(AtomicBool::new(false)),
    );
    let load = std::thread::spawn({
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        move || {
            let url = format!("https://localhost:{port}/");
            while !stop.load(Ordering::SeqCst) {
                // A new connection for each request: the case a restart can refuse.
                let out = curl(
                    port,
                    Some(&ca),
                    &["-o", "/dev/null", "-w", "%{http_code}", &url],
                );
                let code = String::from_utf8_lossy(&out.stdout).into_owned();
                if out.status.success() && code == "200" {
                    ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    let why = String::from_utf8_lossy(&out.stderr).into_owned();
                    failed.lock().unwrap().push(format!("{code} {why}"));
                }
            }
        }
    });
    let served_more = |n: usize| {
        let from = ok.load(Ordering::SeqCst);
        assert!(
            eventually_blocking(Duration::from_secs(20), || ok.load(Ordering::SeqCst)
                >= from + n),
            "the load stalled at {from}"
        );
    };
    served_more(10);
    for _ in 0..3 {
        let next = Portcullis::start_on_sockets(home.path(), &[fd], "https", &[]);
        served_more(5);
        current.signal("TERM");
        let status = current.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}: {}",
            current.log()
        );
        current = next;
        served_more(10);
    }
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok.load(Ordering::SeqCst) + failed.len()
    );
    drop(listener);
}

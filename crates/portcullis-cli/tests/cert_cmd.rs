//! `portcullis cert`: the local CA, new certificates (PEM and PKCS#12), inspect and trust,
//! checked against openssl and Node's https module.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A `PORTCULLIS_HOME` and a working directory, both temporary.
struct Sandbox {
    home: TempDir,
    cwd: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    fn ca_path(&self) -> PathBuf {
        self.home.path().join("ca.pem")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.cwd.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(args)
            .current_dir(self.cwd.path())
            .env("PORTCULLIS_HOME", self.home.path())
            // Never let a test touch the real user's NSS databases.
            .env("HOME", self.cwd.path())
            .env_remove("PORTCULLIS_PASSPHRASE")
            .env_remove("PORTCULLIS_TRUST_DIR");
        cmd
    }

    /// Runs `portcullis ARGS` to the end (bounded), returning its output.
    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args))
    }

    /// Runs `portcullis ARGS`, asserting success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "portcullis {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs openssl in the working directory, asserting success; returns stdout.
    fn openssl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("openssl");
        cmd.args(args).current_dir(self.cwd.path());
        let out = run_bounded(cmd);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a shell pipeline in the working directory; returns trimmed stdout.
    fn sh(&self, script: &str) -> String {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).current_dir(self.cwd.path());
        let out = run_bounded(cmd);
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// A child process that is killed if the test ends (or panics) before it does.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command with piped output to the end, killing it after 60 s.
fn run_bounded(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = Guard(cmd.spawn().expect("the command starts"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut data = Vec::new();
            let _ = pipe.read_to_end(&mut data);
            data
        })
    };
    let stdout = drain(Box::new(guard.0.stdout.take().unwrap()));
    let stderr = drain(Box::new(guard.0.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{cmd:?} did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The PEM blocks of a file, each with its END line.
fn pem_blocks(text: &str) -> Vec<String> {
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b[b.find("-----BEGIN").unwrap()..].to_owned())
        .collect()
}

/// The value of `label:` in the first certificate `cert inspect`/`cert ca` printed.
fn field<'a>(output: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}:");
    output
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {label} in:\n{output}"))
        .trim()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Node: serve `options` (JS object source) with https.createServer, GET it with `ca` and
/// servername localhost, print the status and exit.
fn node_get(sandbox: &Sandbox, server_options: &str) -> String {
    let script = format!(
        r#"
const https = require('https'), fs = require('fs');
const server = https.createServer({server_options}, (req, res) => res.end('ok'));
server.listen(0, '127.0.0.1', () => {{
  const req = https.get({{
    host: '127.0.0.1', servername: 'localhost', port: server.address().port, path: '/',
    ca: fs.readFileSync(process.env.CA), agent: false,
  }}, (res) => {{ console.log(res.statusCode); res.resume(); server.close(); }});
  req.on('error', (e) => {{ console.error(e.code || e.message); process.exit(3); }});
}});
"#
    );
    let mut cmd = Command::new("node");
    cmd.args(["-e", &script])
        .current_dir(sandbox.cwd.path())
        .env("CA", sandbox.ca_path());
    let out = run_bounded(cmd);
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn ca_is_created_then_reused_with_the_same_fingerprint() {
    let sandbox = Sandbox::new();
    let first = sandbox.ok(&["cert", "ca"]);
    let ca = sandbox.ca_path();
    assert!(
        first.contains(&format!("{} (created)", ca.display())),
        "{first}"
    );
    let second = sandbox.ok(&["cert", "ca"]);
    assert!(
        second.contains(&format!("{} (exists)", ca.display())),
        "{second}"
    );
    let fingerprint = field(&first, "SHA-256 fingerprint");
    assert_eq!(fingerprint, field(&second, "SHA-256 fingerprint"));
    let openssl = sandbox.openssl(&[
        "x509",
        "-in",
        ca.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    assert_eq!(openssl.trim(), format!("sha256 Fingerprint={fingerprint}"));
    assert!(field(&first, "subject").contains("CN=portcullis local development CA"));
    assert!(field(&first, "not after").ends_with("GMT"), "{first}");
    // --dir picks another CA.
    let other = tempfile::tempdir().unwrap();
    let third = sandbox.ok(&["cert", "ca", "--dir", other.path().to_str().unwrap()]);
    assert_ne!(field(&third, "SHA-256 fingerprint"), fingerprint);
}

#[test]
fn new_writes_a_chain_openssl_verifies_with_both_sans_and_a_0600_key() {
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["cert", "new", "localhost", "127.0.0.1"]);
    assert!(out.contains("localhost.pem"), "{out}");
    let chain = fs::read_to_string(sandbox.path("localhost.pem")).unwrap();
    let blocks = pem_blocks(&chain);
    assert_eq!(blocks.len(), 2, "leaf then CA:\n{chain}");
    assert_eq!(
        blocks[1],
        fs::read_to_string(sandbox.ca_path()).unwrap(),
        "the second block is the local CA"
    );
    fs::write(sandbox.path("leaf.pem"), &blocks[0]).unwrap();
    let ca = sandbox.ca_path();
    let verified = sandbox.openssl(&["verify", "-CAfile", ca.to_str().unwrap(), "leaf.pem"]);
    assert_eq!(verified.trim(), "leaf.pem: OK");
    let sans = sandbox.openssl(&[
        "x509",
        "-in",
        "leaf.pem",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(sans.contains("DNS:localhost"), "{sans}");
    assert!(sans.contains("IP Address:127.0.0.1"), "{sans}");
    let subject = sandbox.openssl(&["x509", "-in", "leaf.pem", "-noout", "-subject"]);
    assert_eq!(subject.trim(), "subject=CN = localhost");
    // ECDSA P-256 by default, and the key matches the certificate.
    let text = sandbox.openssl(&["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    let key_pub = sandbox.openssl(&["pkey", "-in", "localhost-key.pem", "-pubout"]);
    let cert_pub = sandbox.openssl(&["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
    assert_eq!(key_pub, cert_pub);
    #[cfg(unix)]
    assert_eq!(mode(&sandbox.path("localhost-key.pem")), 0o600);
}

#[test]
fn new_rsa_self_signed_with_days() {
    let sandbox = Sandbox::new();
    sandbox.ok(&[
        "cert",
        "new",
        "--rsa",
        "2048",
        "--self-signed",
        "--days",
        "10",
        "--out-cert",
        "c.pem",
        "--out-key",
        "k.pem",
        "example.test",
    ]);
    let text = sandbox.openssl(&["x509", "-in", "c.pem", "-noout", "-text"]);
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(text.contains("rsaEncryption"), "{text}");
    let subject = sandbox.openssl(&["x509", "-in", "c.pem", "-noout", "-subject"]);
    let issuer = sandbox.openssl(&["x509", "-in", "c.pem", "-noout", "-issuer"]);
    assert_eq!(
        subject.trim_start_matches("subject="),
        issuer.trim_start_matches("issuer=")
    );
    assert_eq!(
        pem_blocks(&fs::read_to_string(sandbox.path("c.pem")).unwrap()).len(),
        1
    );
    // Not after is about 10 days out: still valid in 10 days minus 20 minutes, not in 10 days
    // plus 20 minutes.
    sandbox.openssl(&["x509", "-in", "c.pem", "-noout", "-checkend", "862800"]);
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-in", "c.pem", "-noout", "-checkend", "865200"])
        .current_dir(sandbox.cwd.path());
    assert!(
        !run_bounded(cmd).status.success(),
        "expires within 10 days + 20 min"
    );
    #[cfg(unix)]
    assert_eq!(mode(&sandbox.path("k.pem")), 0o600);
    // The local CA was not needed.
    assert!(!sandbox.ca_path().exists());
}

#[test]
fn pfx_opens_in_openssl_and_node_serves_it() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.path("pw"), "correct horse\n").unwrap();
    let out = sandbox.ok(&[
        "cert",
        "new",
        "localhost",
        "127.0.0.1",
        "--pfx",
        "out.p12",
        "--passphrase-file",
        "pw",
    ]);
    assert!(out.contains("out.p12"), "{out}");
    assert!(
        !sandbox.path("localhost.pem").exists(),
        "--pfx alone writes only the PKCS#12 file"
    );
    #[cfg(unix)]
    assert_eq!(mode(&sandbox.path("out.p12")), 0o600);
    let certs = sandbox.openssl(&["pkcs12", "-in", "out.p12", "-passin", "file:pw", "-nokeys"]);
    assert_eq!(pem_blocks(&certs).len(), 2, "{certs}");
    assert!(certs.contains("subject=CN = localhost"), "{certs}");
    assert!(
        certs.contains("subject=CN = portcullis local development CA"),
        "{certs}"
    );
    let key = sandbox.openssl(&[
        "pkcs12", "-in", "out.p12", "-passin", "file:pw", "-nocerts", "-nodes",
    ]);
    assert!(key.contains("-----BEGIN PRIVATE KEY-----"), "{key}");
    // AES-256-CBC (PBES2) for key and certificates, a SHA-256 MAC; -info reports on stderr.
    let mut cmd = Command::new("openssl");
    cmd.args([
        "pkcs12", "-in", "out.p12", "-passin", "file:pw", "-info", "-noout",
    ])
    .current_dir(sandbox.cwd.path());
    let info = run_bounded(cmd);
    let info = String::from_utf8_lossy(&info.stderr);
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(info.contains("AES-256-CBC"), "{info}");

    let status = node_get(
        &sandbox,
        "{ pfx: fs.readFileSync('out.p12'), passphrase: 'correct horse' }",
    );
    assert_eq!(status, "200");

    // $PORTCULLIS_PASSPHRASE works too; with neither, --pfx is refused.
    let mut cmd = sandbox.command(&["cert", "new", "--pfx", "env.p12", "web.test"]);
    cmd.env("PORTCULLIS_PASSPHRASE", "from env");
    assert!(run_bounded(cmd).status.success());
    fs::write(sandbox.path("pw2"), "from env").unwrap();
    sandbox.openssl(&["pkcs12", "-in", "env.p12", "-passin", "file:pw2", "-nokeys"]);
    let out = sandbox.run(&["cert", "new", "--pfx", "none.p12", "web.test"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase"));
}

#[test]
fn inspect_agrees_with_openssl_on_pem_der_and_pfx() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.path("pw"), "pw\n").unwrap();
    sandbox.ok(&[
        "cert",
        "new",
        "localhost",
        "127.0.0.1",
        "--out-cert",
        "c.pem",
        "--out-key",
        "k.pem",
        "--pfx",
        "c.p12",
        "--passphrase-file",
        "pw",
    ]);
    sandbox.openssl(&["x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der"]);
    let fingerprint =
        sandbox.openssl(&["x509", "-in", "c.pem", "-noout", "-fingerprint", "-sha256"]);
    let fingerprint = fingerprint.trim().trim_start_matches("sha256 Fingerprint=");
    let serial = sandbox.openssl(&["x509", "-in", "c.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=");
    let pin = sandbox.sh(
        "openssl x509 -in c.pem -pubkey -noout | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64",
    );
    for args in [
        &["cert", "inspect", "c.pem"][..],
        &["cert", "inspect", "c.der"],
        &["cert", "inspect", "c.p12", "--passphrase-file", "pw"],
    ] {
        let out = sandbox.ok(args);
        assert_eq!(field(&out, "SHA-256 fingerprint"), fingerprint, "{args:?}");
        assert_eq!(field(&out, "serial"), serial, "{args:?}");
        assert_eq!(field(&out, "pin-sha256"), pin, "{args:?}");
        assert_eq!(field(&out, "subject"), "CN=localhost", "{args:?}");
        assert_eq!(
            field(&out, "subject alt names"),
            "DNS:localhost, IP Address:127.0.0.1",
            "{args:?}"
        );
        assert_eq!(field(&out, "key"), "EC P-256", "{args:?}");
        assert!(field(&out, "issuer").contains("portcullis local development CA"));
        let expected = if args[2] == "c.der" { 1 } else { 2 };
        assert!(
            out.contains(&format!("certificate 1 of {expected} (leaf)")),
            "{args:?}: {out}"
        );
    }
    // A wrong passphrase is the user's to fix: exit 2, naming the file.
    fs::write(sandbox.path("bad"), "nope").unwrap();
    let out = sandbox.run(&["cert", "inspect", "c.p12", "--passphrase-file", "bad"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.p12"));
}

#[test]
fn node_trusts_a_new_pem_certificate_given_the_ca() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["cert", "new", "localhost", "127.0.0.1"]);
    let status = node_get(
        &sandbox,
        "{ cert: fs.readFileSync('localhost.pem'), key: fs.readFileSync('localhost-key.pem') }",
    );
    assert_eq!(status, "200");
}

#[test]
fn trust_prints_the_commands_naming_the_ca() {
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["cert", "trust"]);
    let ca = sandbox.ca_path();
    let ca = ca.display();
    for line in [
        format!("export NODE_EXTRA_CA_CERTS={ca}"),
        format!(
            "cp {ca} /usr/local/share/ca-certificates/portcullis-local-ca.crt && update-ca-certificates"
        ),
        format!("certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n portcullis -i {ca}"),
        format!("curl --cacert {ca} "),
        format!("export CURL_CA_BUNDLE={ca}"),
        "update-ca-trust".to_owned(),
    ] {
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn trust_install_copies_to_the_redirected_store_and_reports_skips() {
    let sandbox = Sandbox::new();
    let store = tempfile::tempdir().unwrap();
    let mut cmd = sandbox.command(&["cert", "trust", "--install"]);
    cmd.env("PORTCULLIS_TRUST_DIR", store.path());
    let out = run_bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let copied = store.path().join("portcullis-local-ca.crt");
    assert_eq!(
        fs::read(&copied).unwrap(),
        fs::read(sandbox.ca_path()).unwrap()
    );
    assert!(
        stdout.contains(&format!(
            "done: system store: copied to {}",
            copied.display()
        )),
        "{stdout}"
    );
    // HOME is the empty working directory: no NSS database to add to.
    assert!(stdout.contains("skipped: NSS:"), "{stdout}");
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["cert", "inspect", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));

    fs::write(sandbox.path("notes.txt"), "hello\n").unwrap();
    let out = sandbox.run(&["cert", "inspect", "notes.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));

    let out = sandbox.run(&["cert", "new"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<NAME>"));

    for args in [
        &["cert", "new", "--rsa", "1024", "localhost"][..],
        &["cert", "new", "--days", "0", "localhost"],
        &["cert", "new", "not a name"],
        &[
            "cert",
            "new",
            "--pfx",
            "x.p12",
            "--passphrase-file",
            "/nonexistent-pw",
            "x",
        ],
    ] {
        let out = sandbox.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

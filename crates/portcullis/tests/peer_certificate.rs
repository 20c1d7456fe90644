//! `PeerCertificate` against OpenSSL's command line and Node 20's `crypto.X509Certificate`.
//!
//! Certificates are generated at test time with `openssl` (and one with rcgen). Both `openssl`
//! and `node` are on every machine these tests run on; a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis::PeerCertificate;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

/// Fails the test when `tool` is missing: these checks never skip silently.
fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(tool)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(ok, "`{tool}` is required by this test and is not installed");
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `openssl x509 -in pem -noout <args>`, the text after the first `=` of its one line.
fn x509_field(dir: &Path, pem: &Path, args: &[&str]) -> String {
    let mut all = vec!["x509", "-in", pem.to_str().unwrap(), "-noout"];
    all.extend_from_slice(args);
    let out = run("openssl", &all, dir);
    let line = out.trim_end();
    line.split_once('=')
        .unwrap_or_else(|| panic!("no `=` in {line:?}"))
        .1
        .to_owned()
}

/// Writes `config` and runs `openssl req -x509` with it; returns the certificate's path.
fn openssl_cert(dir: &Path, name: &str, newkey: &[&str], serial: &str, config: &str) -> PathBuf {
    let cnf = dir.join(format!("{name}.cnf"));
    std::fs::write(&cnf, config).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "30",
        "-set_serial",
        serial,
    ];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
        "-config",
        cnf.to_str().unwrap(),
    ]);
    run("openssl", &args, dir);
    pem
}

fn load(pem: &Path) -> PeerCertificate {
    let der = CertificateDer::from_pem_file(pem).expect("PEM certificate");
    PeerCertificate::from_der(&der).expect("certificate parses")
}

/// Node's view of a certificate: `key=value` pairs, values percent-encoded by Node and
/// decoded here; arrays (repeated attributes, ext_key_usage, infoAccess) repeat their key.
struct NodeView(Vec<(String, String)>);

const NODE_SCRIPT: &str = r#"
const fs = require('fs'), crypto = require('crypto');
const c = new crypto.X509Certificate(fs.readFileSync(process.argv[1]));
const l = c.toLegacyObject();
const out = [];
const put = (k, v) => {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) return v.forEach((x) => put(k, x));
  out.push(k + '=' + encodeURIComponent(String(v)));
};
const putObject = (prefix, o) => { for (const [k, v] of Object.entries(o || {})) put(prefix + k, v); };
putObject('subject.', l.subject);
putObject('issuer.', l.issuer);
putObject('infoAccess.', l.infoAccess);
for (const k of ['subjectaltname', 'valid_from', 'valid_to', 'serialNumber', 'fingerprint',
  'fingerprint256', 'fingerprint512', 'bits', 'exponent', 'modulus', 'asn1Curve', 'nistCurve',
  'ext_key_usage', 'ca']) put(k, l[k]);
put('X509.subjectAltName', c.subjectAltName);
put('X509.validFrom', c.validFrom);
put('X509.validTo', c.validTo);
put('X509.serialNumber', c.serialNumber);
put('X509.fingerprint256', c.fingerprint256);
const d = c.publicKey.asymmetricKeyDetails;
put('modulusLength', d.modulusLength);
put('namedCurve', d.namedCurve);
if (l.pubkey) put('pubkey', l.pubkey.toString('hex'));
put('spkiSha256', crypto.createHash('sha256')
  .update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('base64'));
console.log(out.join('\n'));
"#;

impl NodeView {
    fn of(pem: &Path) -> Self {
        let out = run(
            "node",
            &["-e", NODE_SCRIPT, pem.to_str().unwrap()],
            pem.parent().unwrap(),
        );
        let pairs = out
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("key=value");
                (k.to_owned(), percent_decode(v))
            })
            .collect();
        Self(pairs)
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, key: &str) -> Option<&str> {
        let all = self.all(key);
        assert!(all.len() <= 1, "{key} has several values: {all:?}");
        all.first().copied()
    }

    /// The attribute names under `prefix` in Node's order (first occurrence).
    fn keys(&self, prefix: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in &self.0 {
            if let Some(k) = k.strip_prefix(prefix) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("percent escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Nov 23 13:21:16 2026 GMT` (OpenSSL's `-startdate` form) as a time.
fn parse_openssl_date(s: &str) -> SystemTime {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(parts.len(), 5, "{s:?}");
    assert_eq!(parts[4], "GMT");
    let month = MONTHS.iter().position(|m| *m == parts[0]).unwrap() as u8 + 1;
    let date = time::Date::from_calendar_date(
        parts[3].parse().unwrap(),
        time::Month::try_from(month).unwrap(),
        parts[1].parse().unwrap(),
    )
    .unwrap();
    let hms: Vec<u8> = parts[2].split(':').map(|p| p.parse().unwrap()).collect();
    let t = date
        .with_hms(hms[0], hms[1], hms[2])
        .unwrap()
        .assume_utc()
        .unix_timestamp();
    UNIX_EPOCH + Duration::from_secs(t.try_into().unwrap())
}

/// Every field against OpenSSL's command line.
fn check_openssl(dir: &Path, pem: &Path, cert: &PeerCertificate) {
    for (flag, ours) in [
        ("-sha1", cert.fingerprint()),
        ("-sha256", cert.fingerprint256()),
        ("-sha512", cert.fingerprint512()),
    ] {
        assert_eq!(
            x509_field(dir, pem, &["-fingerprint", flag]),
            ours,
            "{flag}"
        );
    }
    assert_eq!(x509_field(dir, pem, &["-serial"]), cert.serial_number());
    let nameopt = ["-nameopt", "RFC2253,sep_comma_plus_space"];
    let subject = x509_field(dir, pem, &[&["-subject"][..], &nameopt].concat());
    assert_eq!(subject, cert.subject().to_string());
    let issuer = x509_field(dir, pem, &[&["-issuer"][..], &nameopt].concat());
    assert_eq!(issuer, cert.issuer().to_string());

    let start = x509_field(dir, pem, &["-startdate"]);
    let end = x509_field(dir, pem, &["-enddate"]);
    assert_eq!(parse_openssl_date(&start), cert.not_before());
    assert_eq!(parse_openssl_date(&end), cert.not_after());
    assert_eq!(start, cert.valid_from());
    assert_eq!(end, cert.valid_to());

    if let Some(modulus) = cert.modulus() {
        assert_eq!(x509_field(dir, pem, &["-modulus"]), modulus);
    }

    let pipeline = format!(
        "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64",
        pem.display()
    );
    let pin = run("sh", &["-c", &pipeline], dir);
    assert_eq!(pin.trim(), cert.pin_sha256());

    let spki_der = run(
        "sh",
        &[
            "-c",
            &format!(
                "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | od -An -v -tx1",
                pem.display()
            ),
        ],
        dir,
    );
    let spki_hex: String = spki_der.split_whitespace().collect();
    assert_eq!(spki_hex, hex(cert.public_key()));
}

/// Every field against Node 20's `X509Certificate` and its legacy (`getPeerCertificate`) object.
fn check_node(pem: &Path, cert: &PeerCertificate) {
    let node = NodeView::of(pem);
    for (prefix, dn) in [("subject.", cert.subject()), ("issuer.", cert.issuer())] {
        let mut ours: Vec<&str> = Vec::new();
        for (k, _) in dn.iter() {
            if !ours.contains(&k) {
                ours.push(k);
            }
        }
        assert_eq!(node.keys(prefix), ours, "{prefix} keys");
        for key in ours {
            assert_eq!(
                node.all(&format!("{prefix}{key}")),
                dn.get_all(key).collect::<Vec<_>>(),
                "{prefix}{key}"
            );
        }
    }
    assert_eq!(node.one("subjectaltname"), cert.subjectaltname());
    assert_eq!(node.one("X509.subjectAltName"), cert.subjectaltname());
    assert_eq!(node.one("valid_from"), Some(cert.valid_from()));
    assert_eq!(node.one("valid_to"), Some(cert.valid_to()));
    assert_eq!(node.one("X509.validFrom"), Some(cert.valid_from()));
    assert_eq!(node.one("X509.validTo"), Some(cert.valid_to()));
    assert_eq!(node.one("serialNumber"), Some(cert.serial_number()));
    assert_eq!(node.one("X509.serialNumber"), Some(cert.serial_number()));
    assert_eq!(node.one("fingerprint"), Some(cert.fingerprint()));
    assert_eq!(node.one("fingerprint256"), Some(cert.fingerprint256()));
    assert_eq!(node.one("X509.fingerprint256"), Some(cert.fingerprint256()));
    assert_eq!(node.one("fingerprint512"), Some(cert.fingerprint512()));
    assert_eq!(
        node.one("bits").map(|b| b.parse::<u32>().unwrap()),
        cert.bits()
    );
    assert_eq!(node.one("exponent"), cert.exponent());
    assert_eq!(node.one("modulus"), cert.modulus());
    assert_eq!(node.one("asn1Curve"), cert.asn1_curve());
    assert_eq!(node.one("asn1Curve"), cert.curve());
    assert_eq!(node.one("nistCurve"), cert.nist_curve());
    assert_eq!(node.one("namedCurve"), cert.curve());
    if let Some(len) = node.one("modulusLength") {
        assert_eq!(Some(len.parse::<u32>().unwrap()), cert.bits());
    }
    assert_eq!(node.all("ext_key_usage"), cert.ext_key_usage());
    assert_eq!(
        node.one("ca"),
        Some(if cert.is_ca() { "true" } else { "false" })
    );
    let ours: Vec<(String, &str)> = cert
        .info_access()
        .iter()
        .map(|(k, v)| (format!("infoAccess.{k}"), v.as_str()))
        .collect();
    let mut theirs: Vec<(String, &str)> = Vec::new();
    for key in node.keys("infoAccess.") {
        let key = format!("infoAccess.{key}");
        for v in node.all(&key) {
            theirs.push((key.clone(), v));
        }
    }
    let mut ours_sorted = ours.clone();
    ours_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    theirs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(theirs, ours_sorted, "infoAccess");
    assert_eq!(node.one("spkiSha256"), Some(cert.pin_sha256()));
    if cert.modulus().is_some() {
        // For RSA keys Node's `pubkey` is the SubjectPublicKeyInfo.
        assert_eq!(node.one("pubkey"), Some(hex(cert.public_key()).as_str()));
    }
}

const SERVER_EXTENSIONS: &str = r#"
[ext]
subjectAltName = @alt
basicConstraints = critical,CA:FALSE
keyUsage = digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
authorityInfoAccess = OCSP;URI:http://ocsp.example.com/,caIssuers;URI:http://ca.example.com/ca.crt
[alt]
DNS.1 = localhost
DNS.2 = *.example.com
IP.1 = 127.0.0.1
IP.2 = ::1
IP.3 = 2001:db8::a:0:ff01
URI.1 = http://example.com/\#me
URI.2 = http://example.com/a,b
email.1 = a@b.example
"#;

fn server_config() -> String {
    format!(
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n\
         [dn]\nC = US\nST = California\nL = San Francisco\nO = Example Inc\n\
         0.OU = Web\n1.OU = Ops\nCN = localhost\n{SERVER_EXTENSIONS}"
    )
}

const SERVER_SAN: &str = "DNS:localhost, DNS:*.example.com, IP Address:127.0.0.1, \
    IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:A:0:FF01, URI:http://example.com/#me, \
    URI:\"http://example.com/a\\u002cb\", email:a@b.example";

fn check_server_fields(cert: &PeerCertificate) {
    let subject = cert.subject();
    assert_eq!(subject.get("CN"), Some("localhost"));
    assert_eq!(subject.get("C"), Some("US"));
    assert_eq!(subject.get("ST"), Some("California"));
    assert_eq!(subject.get("L"), Some("San Francisco"));
    assert_eq!(subject.get("O"), Some("Example Inc"));
    assert_eq!(subject.get_all("OU").collect::<Vec<_>>(), ["Web", "Ops"]);
    assert_eq!(
        subject.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["C", "ST", "L", "O", "OU", "OU", "CN"]
    );
    assert_eq!(
        subject.to_string(),
        "CN=localhost, OU=Ops, OU=Web, O=Example Inc, L=San Francisco, ST=California, C=US"
    );
    assert_eq!(cert.issuer(), cert.subject());
    assert_eq!(cert.subjectaltname(), Some(SERVER_SAN));
    assert_eq!(
        cert.ext_key_usage(),
        ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
    );
    assert!(!cert.is_ca());
    assert_eq!(
        cert.info_access(),
        [
            (
                "OCSP - URI".to_owned(),
                "http://ocsp.example.com/".to_owned()
            ),
            (
                "CA Issuers - URI".to_owned(),
                "http://ca.example.com/ca.crt".to_owned()
            ),
        ]
    );
    assert_eq!(
        cert.not_after().duration_since(cert.not_before()).unwrap(),
        Duration::from_secs(30 * 86400)
    );
    assert!(cert.fingerprint256().len() == 32 * 3 - 1);
    assert_eq!(cert.der().as_ref(), cert.raw());
    let clone = cert.clone();
    assert_eq!(clone, *cert);
    assert!(
        std::ptr::eq(clone.subject(), cert.subject()),
        "clones share their fields"
    );
}

#[test]
fn rsa_certificate_matches_openssl_and_node() {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let pem = openssl_cert(
        dir.path(),
        "rsa",
        &["-newkey", "rsa:2048"],
        "0x00AB12",
        &server_config(),
    );
    let cert = load(&pem);
    check_server_fields(&cert);
    assert_eq!(cert.serial_number(), "AB12");
    assert_eq!(cert.bits(), Some(2048));
    assert_eq!(cert.exponent(), Some("0x10001"));
    assert_eq!(cert.modulus().map(str::len), Some(512));
    assert_eq!(cert.curve(), None);
    check_openssl(dir.path(), &pem, &cert);
    {
        require("node");
        check_node(&pem, &cert);
    }
}

#[test]
fn ec_p256_certificate_matches_openssl_and_node() {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let pem = openssl_cert(
        dir.path(),
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "0x7FEDCBA9876543210FEDCBA9876543210AB",
        &server_config(),
    );
    let cert = load(&pem);
    check_server_fields(&cert);
    assert_eq!(cert.serial_number(), "07FEDCBA9876543210FEDCBA9876543210AB");
    assert_eq!(cert.bits(), Some(256));
    assert_eq!(cert.curve(), Some("prime256v1"));
    assert_eq!(cert.nist_curve(), Some("P-256"));
    assert_eq!((cert.exponent(), cert.modulus()), (None, None));
    check_openssl(dir.path(), &pem, &cert);
    {
        require("node");
        check_node(&pem, &cert);
    }
}

#[test]
fn ca_certificate_with_unusual_names_matches_openssl_and_node() {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let config = "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n\
        [dn]\n0.DC = com\n1.DC = example\nO = \"Acme, Inc.\"\n0.OU = Web\n1.OU = Ops\n\
        CN = Root CA\nemailAddress = ca@example.com\n\
        [ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
        subjectAltName = URI:http://example.com/\\#me,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:upn@example.com,\
        RID:1.2.3.4,dirName:dir_sect,otherName:1.2.3.5;UTF8:x\n\
        [dir_sect]\nC = UK\nO = My, Org\nCN = x\n";
    let pem = openssl_cert(
        dir.path(),
        "ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "1",
        config,
    );
    let cert = load(&pem);
    assert!(cert.is_ca());
    assert_eq!(cert.serial_number(), "01");
    assert_eq!(cert.bits(), Some(521));
    assert_eq!(cert.curve(), Some("secp521r1"));
    assert_eq!(cert.nist_curve(), Some("P-521"));
    assert_eq!(
        cert.subject().get_all("DC").collect::<Vec<_>>(),
        ["com", "example"]
    );
    assert_eq!(cert.subject().get("O"), Some("Acme, Inc."));
    assert_eq!(cert.subject().get("emailAddress"), Some("ca@example.com"));
    assert_eq!(
        cert.subject().to_string(),
        "emailAddress=ca@example.com, CN=Root CA, OU=Ops, OU=Web, O=Acme\\, Inc., DC=example, DC=com"
    );
    assert_eq!(
        cert.subjectaltname(),
        Some(
            "URI:http://example.com/#me, othername:UPN:upn@example.com, Registered ID:1.2.3.4, \
             DirName:\"CN=x\\u002cO=My\\\\\\u002c Org\\u002cC=UK\", othername:<unsupported>"
        )
    );
    assert!(cert.ext_key_usage().is_empty());
    assert!(cert.info_access().is_empty());
    check_openssl(dir.path(), &pem, &cert);
    {
        require("node");
        check_node(&pem, &cert);
    }
}

#[test]
fn multi_valued_rdn_and_p384_match_openssl_and_node() {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let cnf = dir.path().join("empty.cnf");
    std::fs::write(&cnf, "[req]\ndistinguished_name = dn\n[dn]\n").unwrap();
    let pem = dir.path().join("mv.pem");
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-keyout",
            "mv.key",
            "-out",
            "mv.pem",
            "-config",
            cnf.to_str().unwrap(),
            "-multivalue-rdn",
            "-subj",
            "/C=DE/O=Acme+OU=R&D/CN=#hash <x>;y/serialNumber=42",
        ],
        dir.path(),
    );
    let cert = load(&pem);
    assert_eq!(cert.curve(), Some("secp384r1"));
    assert_eq!(cert.bits(), Some(384));
    assert_eq!(cert.subjectaltname(), None);
    assert_eq!(
        cert.subject().to_string(),
        "serialNumber=42, CN=\\#hash \\<x\\>\\;y, O=Acme + OU=R&D, C=DE"
    );
    check_openssl(dir.path(), &pem, &cert);
    {
        require("node");
        check_node(&pem, &cert);
    }
}

fn utc(year: i32, month: time::Month, day: u8, h: u8, m: u8, s: u8) -> time::OffsetDateTime {
    time::Date::from_calendar_date(year, month, day)
        .unwrap()
        .with_hms(h, m, s)
        .unwrap()
        .assume_utc()
}

#[test]
fn rcgen_certificate_dates_and_serial_match_node() {
    // A day below 10 is space-padded; a serial with its top bit set gets a leading zero byte
    // in DER, which Node does not print.
    let mut params = rcgen::CertificateParams::new(vec!["example.test".to_owned()]).unwrap();
    params.not_before = utc(2030, time::Month::January, 5, 3, 4, 5);
    params.not_after = utc(2031, time::Month::February, 28, 23, 59, 59);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x9A, 0xBC]));
    let key = rcgen::KeyPair::generate().unwrap();
    let generated = params.self_signed(&key).unwrap();
    let cert = PeerCertificate::from_der(generated.der()).unwrap();
    assert_eq!(cert.valid_from(), "Jan  5 03:04:05 2030 GMT");
    assert_eq!(cert.valid_to(), "Feb 28 23:59:59 2031 GMT");
    assert_eq!(
        cert.not_before(),
        UNIX_EPOCH + Duration::from_secs(1_893_812_645)
    );
    assert_eq!(cert.serial_number(), "9ABC");
    assert_eq!(cert.subjectaltname(), Some("DNS:example.test"));
    assert_eq!(cert.curve(), Some("prime256v1"));
    {
        require("node");
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("rcgen.pem");
        std::fs::write(&pem, generated.pem()).unwrap();
        check_node(&pem, &cert);
        {
            require("openssl");
            check_openssl(dir.path(), &pem, &cert);
        }
    }
}

#[test]
fn invalid_der_is_a_config_error() {
    let err =
        PeerCertificate::from_der(&CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01])).unwrap_err();
    assert!(err.is_config(), "{err:?}");
    let err = PeerCertificate::from_der(&CertificateDer::from(Vec::new())).unwrap_err();
    assert!(err.is_config(), "{err:?}");
}

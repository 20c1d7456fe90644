//! `portcullis cert`: the local CA, new leaf certificates, inspection, trust instructions.
//!
//! Exit codes: 0 on success, 2 for a bad flag or input file (the message names it), 1 for a
//! failure while doing the work (writing the output, running `update-ca-certificates`).

use std::fmt::Display;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use portcullis::cert::{default_dir, pkcs12, KeyKind, LeafOptions, LocalCa};
use portcullis::tls::{load_certificates, Passphrase};
use portcullis::{Identity, PeerCertificate};

/// The file name the CA gets in the system store (Debian's `update-ca-certificates` wants `.crt`).
const TRUST_NAME: &str = "portcullis-local-ca.crt";

/// The NSS nickname of the CA (`certutil -n`).
const NSS_NICKNAME: &str = "portcullis";

/// The `cert` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create (or show) the local development CA that `serve` uses by default: its path,
    /// subject, validity and SHA-256 fingerprint.
    Ca(CaArgs),

    /// Make a certificate and key for DNS names and IP addresses, signed by the local CA (or
    /// self-signed), as PEM files and/or a PKCS#12 file.
    ///
    /// Writes NAME.pem (the leaf, then the CA) and NAME-key.pem (mode 0600) in the current
    /// directory, NAME being the first name; with --pfx, only the PKCS#12 file unless
    /// --out-cert/--out-key are given too.
    New(NewArgs),

    /// Show what a certificate file holds (PEM, DER or PKCS#12): for each certificate its
    /// subject, issuer, names, validity, serial, key, SHA-256 fingerprint and pin-sha256.
    Inspect(InspectArgs),

    /// Print how to make this machine's clients (system store, Chromium, Firefox, curl, Node)
    /// trust the local CA; with --install, do it for the system store and NSS databases.
    Trust(TrustArgs),

    /// Certificates obtained by `serve --acme`.
    #[command(subcommand)]
    Acme(AcmeCommand),
}

/// The `cert acme` subcommands.
#[derive(Debug, Subcommand)]
pub enum AcmeCommand {
    /// List the stored ACME certificates: names, CA, expiry and next renewal.
    Status(crate::acme_flags::StatusArgs),
}

/// Options of `cert ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// The local CA's directory. [default: $PORTCULLIS_HOME, else $XDG_DATA_HOME/portcullis,
    /// else ~/.local/share/portcullis]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Options of `cert new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// DNS names (localhost, *.example.test) and IP addresses (127.0.0.1, ::1) the certificate
    /// is for; the first is also its common name and names the output files.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,

    /// Sign the certificate with its own key instead of the local CA. [default: CA-signed]
    #[arg(long, conflicts_with = "dir")]
    pub self_signed: bool,

    /// An ECDSA P-256 key (the default).
    #[arg(long, conflicts_with = "rsa")]
    pub ecdsa: bool,

    /// An RSA key of BITS bits: 2048, 3072 or 4096. [default: ECDSA P-256]
    #[arg(long, value_name = "BITS", value_parser = parse_rsa_bits)]
    pub rsa: Option<u32>,

    /// Also valid as a client certificate (clientAuth), for mutual TLS: `get --cert/--key`,
    /// curl `--cert/--key`, Node's `cert`/`key`. [default: server only]
    #[arg(long)]
    pub client: bool,

    /// Days until the certificate expires.
    #[arg(long, value_name = "N", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,

    /// Where to write the certificate chain (PEM: the leaf, then the CA). [default: NAME.pem]
    #[arg(long, value_name = "FILE")]
    pub out_cert: Option<PathBuf>,

    /// Where to write the private key (PEM, PKCS#8, mode 0600). [default: NAME-key.pem]
    #[arg(long, value_name = "FILE")]
    pub out_key: Option<PathBuf>,

    /// Also (or only, without --out-cert/--out-key) write a PKCS#12 file holding the key, the
    /// leaf and the CA, encrypted with AES-256 (PBES2) and a SHA-256 MAC, mode 0600.
    #[arg(long, value_name = "FILE")]
    pub pfx: Option<PathBuf>,

    /// File holding the --pfx passphrase (one trailing newline is ignored). [default:
    /// $PORTCULLIS_PASSPHRASE] Never give a passphrase on the command line.
    #[arg(long, value_name = "FILE", requires = "pfx")]
    pub passphrase_file: Option<PathBuf>,

    /// The directory of an existing local CA (`portcullis cert ca --dir DIR` makes one).
    /// [default: as for `cert ca`, created on first use]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Options of `cert inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A certificate file: PEM (every CERTIFICATE section), DER, or PKCS#12 (.p12/.pfx).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// File holding the PKCS#12 passphrase (one trailing newline is ignored). [default:
    /// $PORTCULLIS_PASSPHRASE, else empty]
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Options of `cert trust`.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Add the CA to the system store (needs root) and to the NSS databases of Chromium and
    /// Firefox (needs certutil), reporting what was done and what was skipped.
    ///
    /// For testing, $PORTCULLIS_TRUST_DIR replaces the system store's directory: the CA is
    /// copied there and no update command is run.
    #[arg(long)]
    pub install: bool,

    /// The local CA's directory. [default: as for `cert ca`]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs a `cert` subcommand.
pub fn main(command: CertCommand) -> ExitCode {
    let result = match command {
        CertCommand::Ca(args) => ca(&args),
        CertCommand::New(args) => new(&args),
        CertCommand::Inspect(args) => inspect(&args),
        CertCommand::Trust(args) => trust(&args),
        CertCommand::Acme(AcmeCommand::Status(args)) => {
            crate::acme_flags::status(&args).map_err(Failure::Input)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command failed, which decides its exit code.
enum Failure {
    /// A bad flag or input file: the user's to fix (exit 2).
    Input(anyhow::Error),
    /// Something went wrong doing the work (exit 1).
    Runtime(anyhow::Error),
}

type Outcome<T = ()> = Result<T, Failure>;

/// Attaches context to an error and says which kind of failure it is.
trait Classify<T> {
    fn input(self, context: impl Display + Send + Sync + 'static) -> Outcome<T>;
    fn runtime(self, context: impl Display + Send + Sync + 'static) -> Outcome<T>;
}

impl<T, E: Into<anyhow::Error>> Classify<T> for Result<T, E> {
    fn input(self, context: impl Display + Send + Sync + 'static) -> Outcome<T> {
        self.map_err(|e| Failure::Input(e.into().context(context)))
    }

    fn runtime(self, context: impl Display + Send + Sync + 'static) -> Outcome<T> {
        self.map_err(|e| Failure::Runtime(e.into().context(context)))
    }
}

/// Loads (or creates) the local CA: unusable CA files are the user's to fix, a directory that
/// cannot be created is a runtime failure.
fn local_ca(dir: Option<&Path>) -> Outcome<(LocalCa, bool)> {
    let dir = dir.map_or_else(default_dir, Path::to_path_buf);
    let existed = dir.join("ca.pem").exists();
    let context = format!("local CA in {}", dir.display());
    match LocalCa::load_or_create(&dir) {
        Ok(ca) => Ok((ca, !existed)),
        Err(e) if e.is_config() => Err(Failure::Input(anyhow::Error::new(e).context(context))),
        Err(e) => Err(Failure::Runtime(anyhow::Error::new(e).context(context))),
    }
}

fn ca(args: &CaArgs) -> Outcome {
    let (ca, created) = local_ca(args.dir.as_deref())?;
    let cert = PeerCertificate::from_der(ca.cert_der()).input("local CA certificate")?;
    let state = if created { "created" } else { "exists" };
    let mut out = String::new();
    out.push_str(&format!(
        "local CA: {} ({state})\n",
        ca.cert_path().display()
    ));
    describe(&mut out, &cert);
    out.push_str(&format!(
        "trust it: portcullis cert trust{}\n",
        args.dir
            .as_ref()
            .map(|d| format!(" --dir {}", d.display()))
            .unwrap_or_default()
    ));
    print(&out)
}

fn new(args: &NewArgs) -> Outcome {
    let mut options = LeafOptions::new(args.names.iter().cloned());
    options.self_signed = args.self_signed;
    options.key = args.rsa.map_or(KeyKind::Ecdsa, KeyKind::Rsa);
    options.days = args.days;
    options.client_auth = args.client;

    // Read the passphrase before doing any work, so a missing one costs nothing.
    let passphrase = match &args.pfx {
        Some(_) => Some(passphrase(args.passphrase_file.as_deref(), false)?),
        None => None,
    };
    let ca = if args.self_signed {
        None
    } else {
        if let Some(dir) = &args.dir {
            // An explicit --dir names an existing CA: a typo must not make a new one.
            if !dir.join("ca.pem").exists() {
                let what = if dir.is_dir() {
                    "holds no local CA (no ca.pem)"
                } else {
                    "does not exist"
                };
                return Err(Failure::Input(anyhow!(
                    "--dir {}: the directory {what}; make a CA there with `portcullis cert ca \
                     --dir {}`, or leave --dir out to use the default one",
                    dir.display(),
                    dir.display()
                )));
            }
        }
        Some(local_ca(args.dir.as_deref())?.0)
    };
    let leaf = options
        .generate(ca.as_ref())
        .map_err(|e| classify_lib(e, "cannot make the certificate"))?;

    let base = file_stem(&args.names[0]);
    let (cert_path, key_path) = match (&args.out_cert, &args.out_key, &args.pfx) {
        (None, None, Some(_)) => (None, None),
        (cert, key, _) => (
            Some(cert.clone().unwrap_or_else(|| format!("{base}.pem").into())),
            Some(
                key.clone()
                    .unwrap_or_else(|| format!("{base}-key.pem").into()),
            ),
        ),
    };
    if let Some(path) = &key_path {
        write_file(path, leaf.key_pem().as_bytes(), true)?;
    }
    if let Some(path) = &cert_path {
        write_file(path, leaf.chain_pem().as_bytes(), false)?;
    }
    if let (Some(path), Some(passphrase)) = (&args.pfx, &passphrase) {
        let der = pkcs12::export(leaf.chain(), &leaf.key(), passphrase, Some(&args.names[0]))
            .runtime("cannot write the PKCS#12 file")?;
        write_file(path, &der, true)?;
    }

    let cert = PeerCertificate::from_der(&leaf.chain()[0]).runtime("the new certificate")?;
    let mut out = format!(
        "made a certificate for {} ({}), valid to {}\n",
        args.names.join(", "),
        leaf.key_kind(),
        cert.valid_to()
    );
    match &ca {
        Some(ca) => out.push_str(&format!(
            "  signed by:   the local CA {}\n",
            ca.cert_path().display()
        )),
        None => out.push_str("  signed by:   itself (self-signed)\n"),
    }
    if let Some(path) = &cert_path {
        let what = if ca.is_some() {
            "the leaf, then the CA"
        } else {
            "the leaf"
        };
        out.push_str(&format!("  certificate: {} ({what})\n", path.display()));
    }
    if let Some(path) = &key_path {
        out.push_str(&format!("  key:         {} (mode 0600)\n", path.display()));
    }
    if let Some(path) = &args.pfx {
        out.push_str(&format!(
            "  PKCS#12:     {} (key, leaf{}; mode 0600)\n",
            path.display(),
            if ca.is_some() { ", CA" } else { "" }
        ));
    }
    print(&out)
}

fn inspect(args: &InspectArgs) -> Outcome {
    let path = &args.file;
    if let Err(e) = std::fs::metadata(path) {
        // Before any PKCS#12 or passphrase talk: the file itself is the problem.
        return Err(Failure::Input(anyhow!(
            "{}: {}",
            path.display(),
            io_reason(&e)
        )));
    }
    let is_pkcs12_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx"));
    let pkcs12 = || pkcs12_identity(path, args.passphrase_file.as_deref());
    let certs = if is_pkcs12_name || args.passphrase_file.is_some() {
        pkcs12()?.chain().to_vec()
    } else {
        match load_certificates(path) {
            Ok(certs) => certs,
            // A PKCS#12 file under another name: load_certificates says what it holds.
            Err(e) if e.to_string().contains("PKCS#12") => pkcs12()?.chain().to_vec(),
            Err(e) => return Err(Failure::Input(anyhow::Error::new(e))),
        }
    };
    let mut out = String::new();
    let total = certs.len();
    for (i, der) in certs.iter().enumerate() {
        let cert = PeerCertificate::from_der(der)
            .map_err(|e| anyhow!("{}: certificate {}: {e}", path.display(), i + 1))
            .input("cannot read the certificate")?;
        let role = if cert.subject() == cert.issuer() {
            if cert.is_ca() {
                "root CA, self-signed"
            } else {
                "self-signed"
            }
        } else if cert.is_ca() {
            "CA"
        } else {
            "leaf"
        };
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "certificate {} of {total} ({role}): {}\n",
            i + 1,
            path.display()
        ));
        describe(&mut out, &cert);
    }
    print(&out)
}

/// A PKCS#12 file's key and chain (leaf first), opened with the passphrase from `file`, else
/// `$PORTCULLIS_PASSPHRASE`, else empty.
fn pkcs12_identity(path: &Path, file: Option<&Path>) -> Outcome<Identity> {
    let passphrase = passphrase(file, true)?;
    Identity::from_pkcs12_file(path, &passphrase).input(
        "cannot open the PKCS#12 file (give its passphrase with --passphrase-file or \
         $PORTCULLIS_PASSPHRASE)",
    )
}

/// The passphrase from `file`, else `$PORTCULLIS_PASSPHRASE`; else empty if `empty_ok`.
fn passphrase(file: Option<&Path>, empty_ok: bool) -> Outcome<Passphrase> {
    if let Some(file) = file {
        return Passphrase::from_file(file).input("--passphrase-file");
    }
    if let Ok(text) = std::env::var("PORTCULLIS_PASSPHRASE") {
        return Ok(Passphrase::new(text));
    }
    if empty_ok {
        return Ok(Passphrase::new(String::new()));
    }
    Err(Failure::Input(anyhow!(
        "--pfx needs a passphrase: give --passphrase-file FILE or set $PORTCULLIS_PASSPHRASE"
    )))
}

fn trust(args: &TrustArgs) -> Outcome {
    let (ca, _) = local_ca(args.dir.as_deref())?;
    let path = ca.cert_path();
    let ca_path = shell_quote(&path);
    let cert = PeerCertificate::from_der(ca.cert_der()).input("local CA certificate")?;
    let mut out = format!(
        "The local CA: {ca_path}\n  subject: {}\n  SHA-256 fingerprint: {}\n\n",
        cert.subject(),
        cert.fingerprint256()
    );
    out.push_str(&format!(
        "System store (curl, wget, Python, Go, ... reading the OS bundle), as root:\n\
         \x20 Debian, Ubuntu, Alpine:\n\
         \x20   cp {ca_path} /usr/local/share/ca-certificates/{TRUST_NAME} && update-ca-certificates\n\
         \x20 Fedora, RHEL, CentOS:\n\
         \x20   cp {ca_path} /etc/pki/ca-trust/source/anchors/{TRUST_NAME} && update-ca-trust\n\
         \x20 openSUSE:\n\
         \x20   cp {ca_path} /etc/pki/trust/anchors/{TRUST_NAME} && update-ca-certificates\n\
         \x20 Arch:\n\
         \x20   trust anchor --store {ca_path}\n\
         \x20 macOS:\n\
         \x20   security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca_path}\n\
         \n\
         Chromium and Chrome on Linux (NSS database; certutil is in libnss3-tools / nss-tools):\n\
         \x20 certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n {NSS_NICKNAME} -i {ca_path}\n\
         Firefox (each profile):\n\
         \x20 certutil -d sql:$HOME/.mozilla/firefox/PROFILE -A -t C,, -n {NSS_NICKNAME} -i {ca_path}\n\
         \n\
         curl:\n\
         \x20 curl --cacert {ca_path} https://localhost:8443/\n\
         \x20 export CURL_CA_BUNDLE={ca_path}\n\
         Node.js:\n\
         \x20 export NODE_EXTRA_CA_CERTS={ca_path}\n"
    ));
    if !args.install {
        out.push_str("\nportcullis cert trust --install does the system store and NSS steps.\n");
        return print(&out);
    }
    print(&out)?;
    let mut failed = false;
    for step in [install_system(&path), install_nss(&path)] {
        for line in step {
            let (tag, text) = match &line {
                Step::Done(text) => ("done", text),
                Step::Skipped(text) => ("skipped", text),
                Step::Failed(text) => {
                    failed = true;
                    ("failed", text)
                }
            };
            println!("{tag}: {text}");
        }
    }
    if failed {
        return Err(Failure::Runtime(anyhow!(
            "could not install the local CA everywhere (see above)"
        )));
    }
    Ok(())
}

/// What an `--install` step did.
enum Step {
    Done(String),
    Skipped(String),
    Failed(String),
}

/// A system store: where the CA goes and the command that rebuilds the bundle.
struct SystemStore {
    dir: &'static str,
    update: &'static [&'static str],
}

const SYSTEM_STORES: [SystemStore; 3] = [
    SystemStore {
        dir: "/usr/local/share/ca-certificates",
        update: &["update-ca-certificates"],
    },
    SystemStore {
        dir: "/etc/pki/ca-trust/source/anchors",
        update: &["update-ca-trust", "extract"],
    },
    SystemStore {
        dir: "/etc/pki/trust/anchors",
        update: &["update-ca-certificates"],
    },
];

fn install_system(ca: &Path) -> Vec<Step> {
    if let Some(dir) = std::env::var_os("PORTCULLIS_TRUST_DIR") {
        let target = PathBuf::from(dir).join(TRUST_NAME);
        return vec![match fs::copy(ca, &target) {
            Ok(_) => Step::Done(format!(
                "system store: copied to {} ($PORTCULLIS_TRUST_DIR: no update command run)",
                target.display()
            )),
            Err(e) => Step::Failed(format!("system store: {}: {e}", target.display())),
        }];
    }
    let Some(store) = SYSTEM_STORES.iter().find(|s| Path::new(s.dir).is_dir()) else {
        return vec![Step::Skipped(
            "system store: no known CA directory here (see the commands above)".into(),
        )];
    };
    let target = Path::new(store.dir).join(TRUST_NAME);
    if let Err(e) = fs::copy(ca, &target) {
        return vec![if e.kind() == std::io::ErrorKind::PermissionDenied {
            Step::Skipped(format!(
                "system store: no permission to write {} (run as root: sudo portcullis cert \
                 trust --install)",
                target.display()
            ))
        } else {
            Step::Failed(format!("system store: {}: {e}", target.display()))
        }];
    }
    let mut steps = vec![Step::Done(format!(
        "system store: copied to {}",
        target.display()
    ))];
    let command = store.update.join(" ");
    steps.push(
        match Command::new(store.update[0])
            .args(&store.update[1..])
            .output()
        {
            Ok(o) if o.status.success() => Step::Done(format!("system store: ran {command}")),
            Ok(o) => Step::Failed(format!(
                "system store: {command} failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Step::Failed(format!("system store: cannot run {command}: {e}")),
        },
    );
    steps
}

fn install_nss(ca: &Path) -> Vec<Step> {
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return vec![Step::Skipped("NSS: $HOME is not set".into())];
    };
    let mut dbs = vec![home.join(".pki/nssdb")];
    if let Ok(profiles) = fs::read_dir(home.join(".mozilla/firefox")) {
        dbs.extend(
            profiles
                .flatten()
                .map(|p| p.path())
                .filter(|p| p.join("cert9.db").exists()),
        );
    }
    let dbs: Vec<_> = dbs
        .into_iter()
        .filter(|db| db.join("cert9.db").exists())
        .collect();
    if dbs.is_empty() {
        return vec![Step::Skipped(format!(
            "NSS: no database in {} or Firefox profiles (start Chromium or Firefox once first)",
            home.join(".pki/nssdb").display()
        ))];
    }
    if Command::new("certutil").arg("-H").output().is_err() {
        return vec![Step::Skipped(
            "NSS: certutil not found (install libnss3-tools or nss-tools)".into(),
        )];
    }
    dbs.iter()
        .map(|db| {
            let dir = format!("sql:{}", db.display());
            let result = Command::new("certutil")
                .args(["-d", &dir, "-A", "-t", "C,,", "-n", NSS_NICKNAME, "-i"])
                .arg(ca)
                .output();
            match result {
                Ok(o) if o.status.success() => Step::Done(format!("NSS: added to {dir}")),
                Ok(o) => Step::Failed(format!(
                    "NSS: certutil on {dir} failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Step::Failed(format!("NSS: cannot run certutil: {e}")),
            }
        })
        .collect()
}

/// Appends a certificate's fields, one per line.
fn describe(out: &mut String, cert: &PeerCertificate) {
    let expired = if cert.not_after() < SystemTime::now() {
        " (EXPIRED)"
    } else if cert.not_before() > SystemTime::now() {
        " (not yet valid)"
    } else {
        ""
    };
    let lines = [
        ("subject", cert.subject().to_string()),
        ("issuer", cert.issuer().to_string()),
        (
            "subject alt names",
            cert.subjectaltname().unwrap_or("(none)").to_owned(),
        ),
        ("not before", cert.valid_from().to_owned()),
        ("not after", format!("{}{expired}", cert.valid_to())),
        ("serial", cert.serial_number().to_owned()),
        ("key", key_type(cert)),
        ("SHA-256 fingerprint", cert.fingerprint256().to_owned()),
        ("pin-sha256", cert.pin_sha256().to_owned()),
    ];
    for (label, value) in lines {
        out.push_str(&format!("  {:<20} {value}\n", format!("{label}:")));
    }
}

/// A path as a shell word: as is when it is plain, else in single quotes.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._+-=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `EC P-256`, `RSA 2048`, ...
fn key_type(cert: &PeerCertificate) -> String {
    match (
        cert.nist_curve().or(cert.curve()),
        cert.bits(),
        cert.exponent(),
    ) {
        (Some(curve), ..) => format!("EC {curve}"),
        (None, Some(bits), Some(_)) => format!("RSA {bits}"),
        (None, Some(bits), None) => format!("{bits}-bit key"),
        _ => "other (not RSA or EC)".into(),
    }
}

/// The output file stem for a name: `*.example.test` → `_.example.test`, `::1` → `__1`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes a file; a secret one (key, PKCS#12) gets mode 0600, even if it existed before.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Outcome {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let context = || format!("cannot write {}", path.display());
    let mut file = options.open(path).runtime(context())?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .runtime(context())?;
    }
    file.write_all(data).runtime(context())
}

/// A library error: a config error is the user's to fix, anything else a runtime failure.
fn classify_lib(e: portcullis::Error, context: &'static str) -> Failure {
    if e.is_config() {
        Failure::Input(anyhow::Error::new(e).context(context))
    } else {
        Failure::Runtime(anyhow::Error::new(e).context(context))
    }
}

fn print(text: &str) -> Outcome {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .runtime("cannot write to stdout")
}

fn parse_rsa_bits(value: &str) -> Result<u32, String> {
    match value.parse() {
        Ok(bits @ (2048 | 3072 | 4096)) => Ok(bits),
        _ => Err("use 2048, 3072 or 4096".into()),
    }
}

/// An I/O error in a few words: "no such file", "permission denied", ...
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

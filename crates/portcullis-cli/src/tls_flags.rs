//! The TLS flags of `portcullis serve`: identities (PEM, DER, encrypted, PKCS#12; several,
//! bound to SNI names), client certificates, resumption, key log, OCSP, versions and suites.
//! Built into a `ServerTlsConfig` at start and again on every reload.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgMatches, Args};
use portcullis::cert::{default_dir, LocalCa};
use portcullis::tls::{
    load_certificates, load_crls, KeyLog, Passphrase, ServerTlsConfig, TicketKeys, TlsVersion,
};
use portcullis::Identity;

/// TLS options of `serve`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Certificate chain file, PEM or DER, leaf first; repeat with --key for several identities
    /// (paired in order) and bind each to names with --sni. (Node: cert) [default: a localhost
    /// certificate from the local CA]
    #[arg(long, value_name = "FILE")]
    pub cert: Vec<PathBuf>,

    /// Private key for the --cert in the same position: PEM (PKCS#1, PKCS#8, SEC1, encrypted
    /// PKCS#8 or legacy encrypted PEM) or DER. (Node: key)
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,

    /// PKCS#12 file holding key, certificate and CA chain; repeatable. Its passphrase comes
    /// from --passphrase-file or $PORTCULLIS_PASSPHRASE. (Node: pfx)
    #[arg(long, value_name = "FILE")]
    pub pfx: Vec<PathBuf>,

    /// File holding the passphrase of encrypted keys and PKCS#12 files (one trailing newline
    /// is ignored). Never give a passphrase on the command line. (Node: passphrase)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Serve the next --cert/--key or --pfx to clients asking for NAME (exact or
    /// *.example.com); repeat for several names. An identity without --sni is the default.
    /// (Node: addContext)
    #[arg(long, value_name = "NAME")]
    pub sni: Vec<String>,

    /// A directory of NAME.pem files (with NAME-key.pem or NAME.key beside, or the key inside):
    /// each is served for SNI name NAME (`_.example.com.pem` for *.example.com).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,

    /// CA certificates (PEM bundle or DER) that client certificates must chain to; repeatable.
    /// (Node: ca on a server; ESP-IDF: cacert_pem)
    #[arg(long, value_name = "FILE")]
    pub client_ca: Vec<PathBuf>,

    /// Ask for a client certificate and refuse the handshake without a valid one.
    /// (Node: requestCert + rejectUnauthorized; ESP-IDF: client_verify_cert) [default: off]
    #[arg(long, requires = "client_ca", conflicts_with = "request_client_cert")]
    pub require_client_cert: bool,

    /// Ask for a client certificate but accept any; handlers see whether it verified.
    /// (Node: requestCert with rejectUnauthorized: false) [default: off]
    #[arg(long)]
    pub request_client_cert: bool,

    /// Certificate revocation list (PEM or DER) for client certificates; repeatable. (Node: crl)
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,

    /// Session ticket keys: one or more 48-byte keys (Node's ticketKeys format), the first
    /// issuing. Servers sharing the file resume each other's sessions; replace the file to
    /// rotate. [default: a random key per process]
    #[arg(long, value_name = "FILE")]
    pub ticket_keys: Option<PathBuf>,

    /// Do not issue stateless session tickets. (ESP-IDF: session_tickets = false)
    #[arg(long)]
    pub no_session_tickets: bool,

    /// Server session cache size; 0 turns it off. [default: 20480]
    #[arg(long, value_name = "N")]
    pub session_cache: Option<usize>,

    /// How long sessions and tickets stay valid. (Node: sessionTimeout) [default: 7200s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub session_timeout: Option<Duration>,

    /// Append TLS secrets in NSS key log format to FILE, for Wireshark ($SSLKEYLOGFILE is
    /// honoured too). Anyone with the file can decrypt the traffic. [default: off]
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,

    /// Staple this DER OCSP response; reloaded with the certificate.
    #[arg(long, value_name = "FILE")]
    pub ocsp: Option<PathBuf>,

    /// Lowest TLS version: TLSv1.2 or TLSv1.3. (Node: minVersion) [default: TLSv1.2]
    #[arg(long, value_name = "VERSION")]
    pub tls_min: Option<String>,

    /// Highest TLS version: TLSv1.2 or TLSv1.3. (Node: maxVersion) [default: TLSv1.3]
    #[arg(long, value_name = "VERSION")]
    pub tls_max: Option<String>,

    /// Cipher suites by IANA or OpenSSL name, `:`-separated, in preference order.
    /// (Node: ciphers) [default: AEAD forward-secret suites]
    #[arg(long, value_name = "LIST")]
    pub ciphers: Option<String>,

    /// Key exchange groups, e.g. X25519:P-256. (Node: ecdhCurve) [default: the provider's]
    #[arg(long, value_name = "LIST")]
    pub groups: Option<String>,

    /// The identities in command-line order with their SNI names; filled from the flags'
    /// positions by `bind_sni_names`.
    #[arg(skip)]
    pub identities: Vec<IdentitySpec>,

    /// A problem found while pairing flags, reported when the configuration is built.
    #[arg(skip)]
    pub binding_error: Option<String>,

    /// ACME provides the default identity (`serve --acme`): no local-CA certificate then.
    #[arg(skip)]
    pub acme: bool,
}

/// Where one identity comes from, and the SNI names it is served for (none: the default).
#[derive(Debug, Clone)]
pub struct IdentitySpec {
    pub names: Vec<String>,
    pub source: Source,
}

/// An identity's files.
#[derive(Debug, Clone)]
pub enum Source {
    Pem { cert: PathBuf, key: PathBuf },
    Pfx(PathBuf),
}

impl TlsArgs {
    /// Pairs `--cert`/`--key` in order, and binds each `--sni NAME` to the first identity
    /// flag (`--cert` or `--pfx`) after it.
    pub fn bind_sni_names(&mut self, matches: &ArgMatches) {
        if self.cert.len() != self.key.len() {
            self.binding_error = Some(format!(
                "--cert and --key come in pairs: got {} --cert and {} --key",
                self.cert.len(),
                self.key.len()
            ));
            return;
        }
        let positions = |id: &str| -> Vec<usize> {
            matches
                .indices_of(id)
                .map(|i| i.collect())
                .unwrap_or_default()
        };
        let mut placed: Vec<(usize, IdentitySpec)> = Vec::new();
        for (i, pos) in positions("cert").into_iter().enumerate() {
            let source = Source::Pem {
                cert: self.cert[i].clone(),
                key: self.key[i].clone(),
            };
            placed.push((
                pos,
                IdentitySpec {
                    names: Vec::new(),
                    source,
                },
            ));
        }
        for (i, pos) in positions("pfx").into_iter().enumerate() {
            let source = Source::Pfx(self.pfx[i].clone());
            placed.push((
                pos,
                IdentitySpec {
                    names: Vec::new(),
                    source,
                },
            ));
        }
        placed.sort_by_key(|(pos, _)| *pos);
        for (i, pos) in positions("sni").into_iter().enumerate() {
            match placed.iter_mut().find(|(p, _)| *p > pos) {
                Some((_, spec)) => spec.names.push(self.sni[i].clone()),
                None => {
                    self.binding_error = Some(format!(
                        "--sni {} must come before the --cert/--key or --pfx it names",
                        self.sni[i]
                    ));
                    return;
                }
            }
        }
        self.identities = placed.into_iter().map(|(_, spec)| spec).collect();
    }

    /// Every file the configuration is read from: a change to any of them triggers a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        for spec in &self.identities {
            match &spec.source {
                Source::Pem { cert, key } => files.extend([cert.clone(), key.clone()]),
                Source::Pfx(path) => files.push(path.clone()),
            }
        }
        files.extend(self.client_ca.iter().cloned());
        files.extend(self.crl.iter().cloned());
        files.extend(self.ticket_keys.iter().cloned());
        files.extend(self.ocsp.iter().cloned());
        files.extend(self.passphrase_file.iter().cloned());
        if let Some(dir) = &self.cert_dir {
            files.push(dir.clone());
            if let Ok(entries) = std::fs::read_dir(dir) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
        files.sort();
        files
    }

    /// Reads every file and builds the TLS configuration. Returns the local CA's certificate
    /// path when the local development CA provides the identity.
    pub fn build(&self) -> anyhow::Result<(ServerTlsConfig, Option<PathBuf>)> {
        if let Some(e) = &self.binding_error {
            bail!("{e}");
        }
        let passphrase = self.passphrase()?;
        let mut builder = ServerTlsConfig::builder();
        let mut local_ca = None;
        let mut default_seen = false;

        for spec in &self.identities {
            let identity = load_identity(&spec.source, passphrase.as_ref())?;
            if spec.names.is_empty() {
                if default_seen {
                    bail!("more than one identity without --sni: bind the others to names with --sni NAME");
                }
                default_seen = true;
                builder = builder.identity(identity);
            } else {
                for name in &spec.names {
                    builder = builder.sni(name.clone(), identity.clone());
                }
            }
        }
        if let Some(dir) = &self.cert_dir {
            let entries = cert_dir_entries(dir)?;
            if entries.is_empty() {
                bail!("--cert-dir {}: no NAME.pem files found", dir.display());
            }
            for (name, cert, key) in entries {
                let identity = Identity::from_files(&cert, &key, passphrase.as_ref())
                    .with_context(|| format!("--cert-dir {}", dir.display()))?;
                if !default_seen && self.identities.is_empty() {
                    // The first file (by name) also serves clients that send no SNI.
                    builder = builder.identity(identity.clone());
                    default_seen = true;
                }
                builder = builder.sni(name, identity);
            }
        }
        if self.acme {
            builder = builder.without_identity();
        } else if !default_seen && self.identities.is_empty() && self.cert_dir.is_none() {
            let dir = default_dir();
            let ca = LocalCa::load_or_create(&dir)
                .with_context(|| format!("local CA in {}", dir.display()))?;
            let leaf = ca
                .localhost()
                .with_context(|| format!("localhost certificate in {}", dir.display()))?;
            let identity = Identity::from_pem_files(&leaf.cert_path, &leaf.key_path)
                .context("localhost certificate of the local CA")?;
            builder = builder.identity(identity);
            local_ca = Some(ca.cert_path());
        }

        if self.require_client_cert || self.request_client_cert || !self.client_ca.is_empty() {
            let mut cas = Vec::new();
            for path in &self.client_ca {
                cas.extend(load_certificates(path).context("--client-ca")?);
            }
            builder = builder
                .request_cert(self.require_client_cert || self.request_client_cert)
                .reject_unauthorized(!self.request_client_cert)
                .client_ca(cas);
        }
        for path in &self.crl {
            builder = builder.crls(load_crls(path).context("--crl")?);
        }
        if let Some(path) = &self.ticket_keys {
            builder = builder.ticket_keys(TicketKeys::from_file(path).context("--ticket-keys")?);
        }
        builder = builder.session_tickets(!self.no_session_tickets);
        if let Some(n) = self.session_cache {
            builder = builder.session_cache(n);
        }
        if let Some(t) = self.session_timeout {
            builder = builder.session_timeout(t);
        }
        let keylog = match &self.keylog {
            Some(path) => Some(KeyLog::file(path).context("--keylog")?),
            None => {
                let keylog = KeyLog::from_env().context("SSLKEYLOGFILE")?;
                if keylog.is_some() {
                    // As curl: honoured, and said so.
                    tracing::warn!(
                        "SSLKEYLOGFILE is set: writing TLS secrets to it; anyone with the file \
                         can decrypt this traffic"
                    );
                }
                keylog
            }
        };
        if let Some(keylog) = keylog {
            builder = builder.keylog(keylog);
        }
        if let Some(path) = &self.ocsp {
            let der = portcullis::tls::load_ocsp_response(path).context("--ocsp")?;
            builder = builder.ocsp_response(der);
        }
        if let Some(v) = &self.tls_min {
            builder = builder.min_version(v.parse::<TlsVersion>().context("--tls-min")?);
        }
        if let Some(v) = &self.tls_max {
            builder = builder.max_version(v.parse::<TlsVersion>().context("--tls-max")?);
        }
        if let Some(list) = &self.ciphers {
            builder = builder.cipher_suites([list.clone()]);
        }
        if let Some(list) = &self.groups {
            builder = builder.kx_groups([list.clone()]);
        }
        let config = builder.build().context("TLS configuration")?;
        Ok((config, local_ca))
    }

    fn passphrase(&self) -> anyhow::Result<Option<Passphrase>> {
        if let Some(path) = &self.passphrase_file {
            return Ok(Some(
                Passphrase::from_file(path).context("--passphrase-file")?,
            ));
        }
        Ok(std::env::var("PORTCULLIS_PASSPHRASE")
            .ok()
            .map(Passphrase::new))
    }
}

fn load_identity(source: &Source, passphrase: Option<&Passphrase>) -> anyhow::Result<Identity> {
    match source {
        Source::Pem { cert, key } => {
            Identity::from_files(cert, key, passphrase).context("--cert/--key")
        }
        Source::Pfx(path) => {
            let Some(passphrase) = passphrase else {
                bail!(
                    "--pfx {}: a passphrase is needed: give --passphrase-file FILE or set PORTCULLIS_PASSPHRASE",
                    path.display()
                );
            };
            Identity::from_pkcs12_file(path, passphrase).context("--pfx")
        }
    }
}

/// `(sni name, cert file, key file)` for each `NAME.pem` in `dir`, sorted by name.
fn cert_dir_entries(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf, PathBuf)>> {
    let read = std::fs::read_dir(dir)
        .with_context(|| format!("--cert-dir {}: cannot read the directory", dir.display()))?;
    let mut out = Vec::new();
    for entry in read.flatten() {
        let path = entry.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".pem") else {
            continue;
        };
        if stem.ends_with("-key") {
            continue;
        }
        let key = [
            dir.join(format!("{stem}-key.pem")),
            dir.join(format!("{stem}.key")),
        ]
        .into_iter()
        .find(|k| k.exists())
        .unwrap_or_else(|| path.clone());
        let name = match stem.strip_prefix("_.") {
            Some(rest) => format!("*.{rest}"),
            None => stem.to_owned(),
        };
        out.push((name, path, key));
    }
    out.sort();
    Ok(out)
}

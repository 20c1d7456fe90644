//! The ACME flags of `portcullis serve` and `portcullis cert acme status`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::Args;
use portcullis::acme::{self, AcmeConfig, ChallengeType, ExternalAccount};
use portcullis::tls::load_certificates;

/// Automatic certificates (ACME).
#[derive(Debug, Clone, Args)]
pub struct AcmeArgs {
    /// Get and renew a certificate for DOMAIN from an ACME CA (Let's Encrypt by default);
    /// repeat or comma-separate for several names on one certificate. Accepts the CA's terms of
    /// service. Unless given, --listen becomes [::]:443 and --http-listen [::]:80 with
    /// --redirect. [default: off]
    #[arg(long, value_name = "DOMAIN", value_delimiter = ',')]
    pub acme: Vec<String>,

    /// Contact e-mail for the ACME account (expiry and policy notices from the CA).
    #[arg(long, value_name = "EMAIL", requires = "acme")]
    pub acme_email: Option<String>,

    /// The CA's ACME directory URL. [default: Let's Encrypt production]
    #[arg(
        long,
        value_name = "URL",
        requires = "acme",
        conflicts_with = "acme_staging"
    )]
    pub acme_directory: Option<String>,

    /// Use Let's Encrypt's staging CA (untrusted certificates, generous limits): try a setup
    /// there first.
    #[arg(long, requires = "acme")]
    pub acme_staging: bool,

    /// Where the account key, certificates and keys are kept (0700; keys 0600). Processes
    /// sharing it do not order the same certificate twice. [default: acme/ beside the local
    /// CA: $PORTCULLIS_HOME/acme, else $XDG_DATA_HOME/portcullis/acme, else
    /// ~/.local/share/portcullis/acme]
    #[arg(long, value_name = "DIR")]
    pub acme_dir: Option<PathBuf>,

    /// Challenge types in order of preference: tls-alpn-01 (answered on the HTTPS listener,
    /// port 443 publicly) and http-01 (on --http-listen, port 80).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        requires = "acme",
        default_value = "tls-alpn-01,http-01"
    )]
    pub acme_challenge: Vec<String>,

    /// Trust this root (PEM) for the HTTPS connection to the CA's API, for a private or test
    /// CA (Pebble, step-ca). [default: the public roots]
    #[arg(long, value_name = "FILE", requires = "acme")]
    pub acme_ca_root: Option<PathBuf>,

    /// External Account Binding for CAs that require it (ZeroSSL, Google): the key ID and
    /// base64url HMAC key they issued, as KID:HMAC.
    #[arg(long, value_name = "KID:HMAC", requires = "acme")]
    pub acme_eab: Option<String>,

    /// Until the first certificate arrives, serve a self-signed one instead of refusing
    /// handshakes. [default: refuse with an alert]
    #[arg(long, requires = "acme")]
    pub acme_placeholder: bool,

    /// Testing: renew once the certificate is this old.
    #[arg(long, hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub acme_renew_after: Option<Duration>,

    /// Testing: first retry delay after a failure (doubling up to 64 times it).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub acme_retry: Option<Duration>,
}

impl AcmeArgs {
    pub fn enabled(&self) -> bool {
        !self.acme.is_empty()
    }

    /// The library configuration, every file read and every value checked.
    pub fn config(&self) -> anyhow::Result<Option<AcmeConfig>> {
        if !self.enabled() {
            return Ok(None);
        }
        let mut config = AcmeConfig::new(self.acme.iter().map(|d| d.trim().to_owned()))
            .accept_terms(true)
            .placeholder(self.acme_placeholder);
        if let Some(email) = &self.acme_email {
            if !email.contains('@') {
                bail!("--acme-email {email:?}: not an e-mail address");
            }
            config = config.contact(email.clone());
        }
        if self.acme_staging {
            config = config.directory(acme::LETS_ENCRYPT_STAGING);
        } else if let Some(url) = &self.acme_directory {
            config = config.directory(url.clone());
        }
        config = config.storage(self.storage());
        let mut challenges = Vec::new();
        for name in &self.acme_challenge {
            challenges.push(name.parse::<ChallengeType>().context("--acme-challenge")?);
        }
        config = config.challenges(challenges);
        if let Some(path) = &self.acme_ca_root {
            let roots = load_certificates(path).context("--acme-ca-root")?;
            config = config.ca_roots(roots);
        }
        if let Some(eab) = &self.acme_eab {
            let Some((kid, hmac)) = eab.split_once(':') else {
                bail!("--acme-eab: expected KID:HMAC, as the CA shows them");
            };
            config =
                config.external_account(ExternalAccount::new(kid, hmac).context("--acme-eab")?);
        }
        if let Some(age) = self.acme_renew_after {
            config = config.renew_after(age);
        }
        if let Some(min) = self.acme_retry {
            config = config.retry_backoff(min, min * 64);
        }
        Ok(Some(config))
    }

    /// Whether the CA will use HTTP-01 (which needs the plain-HTTP listener).
    pub fn wants_http01(&self) -> bool {
        self.acme_challenge
            .iter()
            .any(|c| c.trim().eq_ignore_ascii_case("http-01"))
    }

    fn storage(&self) -> PathBuf {
        self.acme_dir.clone().unwrap_or_else(acme::default_storage)
    }
}

/// Options of `cert acme status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The storage directory, as given to `serve --acme-dir`. [default: as for serve]
    #[arg(long, value_name = "DIR")]
    pub acme_dir: Option<PathBuf>,
}

/// `cert acme status`: one block per stored certificate.
pub fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let dir = args.acme_dir.clone().unwrap_or_else(acme::default_storage);
    let certs = acme::stored_certificates(&dir)?;
    let mut out = std::io::stdout().lock();
    if certs.is_empty() {
        writeln!(out, "no ACME certificates in {}", dir.display())?;
        return Ok(());
    }
    let now = SystemTime::now();
    for cert in certs {
        let left = cert.not_after.duration_since(now).map_or_else(
            |_| "EXPIRED".to_owned(),
            |d| format!("{} days left", d.as_secs() / 86_400),
        );
        let renewal = if cert.next_renewal <= now {
            "due now (at the next start or check)".to_owned()
        } else {
            httpdate::fmt_http_date(cert.next_renewal)
        };
        writeln!(out, "{}", cert.names.join(", "))?;
        writeln!(out, "  CA:           {}", cert.ca)?;
        writeln!(out, "  file:         {}", cert.path.display())?;
        writeln!(
            out,
            "  valid until:  {} ({left})",
            httpdate::fmt_http_date(cert.not_after)
        )?;
        writeln!(out, "  next renewal: {renewal}")?;
    }
    Ok(())
}

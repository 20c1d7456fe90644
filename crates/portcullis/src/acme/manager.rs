//! The task that gets and renews the certificate, and swaps it into the running server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AuthorizationStatus, ExternalAccountKey, Identifier, NewAccount, NewOrder,
    OrderStatus, Problem, RetryPolicy,
};

use super::challenge::Challenges;
use super::http::AcmeHttp;
use super::store::{OrderLock, Store};
use super::{AcmeConfig, ChallengeType};
use crate::error::{Error, Result};
use crate::server::accept::Shared;
use crate::Identity;

/// How often a process that is not ordering looks at the storage directory for a certificate
/// another process stored, and how often the lock holder refreshes the lock.
const RECHECK: Duration = Duration::from_secs(60);
/// How often a process waiting on another's lock looks again.
const LOCK_POLL: Duration = Duration::from_secs(2);
/// How long the CA may take to validate every challenge, and then to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);

/// How many times one request is sent again after the CA refused its nonce (`badNonce` is
/// retryable by RFC 8555 §6.5; instant-acme already retries a few times itself).
const NONCE_RETRIES: u32 = 8;

/// Evaluates `$call` again while it fails with `badNonce`.
macro_rules! nonce_retry {
    ($call:expr) => {{
        let mut tries = 0;
        loop {
            match $call {
                Err(e) if is_bad_nonce(&e) && tries < NONCE_RETRIES => tries += 1,
                result => break result,
            }
        }
    }};
}

fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:badNonce"))
}

/// One server's ACME state: configuration, storage, the challenges being answered, the
/// certificate being served.
#[derive(Debug)]
pub(crate) struct AcmeState {
    pub(crate) config: AcmeConfig,
    pub(crate) challenges: Arc<Challenges>,
    store: Store,
    /// The client of the ACME server, built (and its CA roots checked) with the state.
    http: AcmeHttp,
    started: AtomicBool,
    current: Mutex<Option<Identity>>,
}

impl AcmeState {
    /// Checks the configuration, creates the storage directory and reads what it holds.
    pub(crate) fn new(config: AcmeConfig) -> Result<Arc<Self>> {
        config.check()?;
        let http = AcmeHttp::new(&config.ca_roots)?;
        let store = Store::new(&config);
        store.create_dirs()?;
        let current = match store.load_certificate() {
            Ok(Some(identity)) => {
                tracing::info!(
                    domains = ?config.domains,
                    path = %store.cert_path().display(),
                    not_after = %fmt_time(identity.not_after()),
                    "ACME: using the stored certificate"
                );
                Some(identity)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("ACME: ignoring the stored certificate: {e}");
                None
            }
        };
        Ok(Arc::new(Self {
            challenges: Arc::new(Challenges::with_shared_dir(store.challenge_dir())),
            config,
            store,
            http,
            started: AtomicBool::new(false),
            current: Mutex::new(current),
        }))
    }

    /// What to serve before the manager runs: the stored certificate, else the placeholder
    /// when asked for, else nothing (handshakes fail with an alert).
    pub(crate) fn initial_identity(&self) -> Result<Option<Identity>> {
        if let Some(current) = self.current() {
            return Ok(Some(current));
        }
        if !self.config.placeholder {
            return Ok(None);
        }
        let mut options = crate::cert::LeafOptions::new(self.config.domains.iter().cloned());
        options.self_signed = true;
        options.days = 7;
        let leaf = options.generate(None)?;
        Identity::from_pem(leaf.chain_pem().as_bytes(), leaf.key_pem().as_bytes()).map(Some)
    }

    pub(crate) fn current(&self) -> Option<Identity> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts the manager on the current runtime, once per server.
    pub(crate) fn start(self: &Arc<Self>, shared: &Arc<Shared>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (state, shared) = (self.clone(), shared.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = state.run(&shared) => {}
                () = shared.stop_accepting.cancelled() => {}
            }
        });
    }

    /// Serves `identity` to new connections from now on.
    fn install(&self, shared: &Shared, identity: Identity) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(identity.clone());
        crate::server::set_default_identity(shared, identity);
    }

    fn serving(&self, identity: &Identity) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|c| c.chain().first() == identity.chain().first())
    }

    async fn run(&self, shared: &Shared) {
        let http = &self.http;
        let mut account: Option<Account> = None;
        let mut ari = Ari::default();
        let mut failures = 0u32;
        let mut waiting_logged = false;
        let mut scheduled: Option<SystemTime> = None;
        if self.current().is_none() {
            tracing::warn!(
                domains = ?self.config.domains,
                "ACME: no certificate yet; TLS handshakes for these names are refused until the \
                 first one is issued"
            );
        }
        loop {
            self.pick_up_stored(shared);
            let now = SystemTime::now();
            let due = match self.current() {
                Some(current) => ari.due(self, account.as_ref(), &current).await,
                None => now,
            };
            if due > now {
                if scheduled != Some(due) {
                    // Said once per renewal date: the decision not to order now.
                    tracing::info!(
                        domains = ?self.config.domains,
                        renewal = %fmt_time(due),
                        "ACME: certificate current; renewal scheduled"
                    );
                    scheduled = Some(due);
                }
                let wait = due.duration_since(now).unwrap_or_default().min(RECHECK);
                tokio::time::sleep(wait).await;
                continue;
            }
            let lock = match self.store.try_lock() {
                Ok(Some(lock)) => lock,
                Ok(None) => {
                    if !waiting_logged {
                        tracing::info!(
                            domains = ?self.config.domains,
                            "ACME: another process is ordering this certificate; waiting for it"
                        );
                        waiting_logged = true;
                    }
                    tokio::time::sleep(LOCK_POLL).await;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    let delay = self.backoff(failures, None);
                    tracing::warn!("ACME: {e}; retrying in {}", fmt_duration(delay));
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            waiting_logged = false;
            // Another process may have stored a fresh certificate while we waited.
            if self.pick_up_stored(shared) {
                continue;
            }
            let result = self.order(http, &mut account, &lock).await;
            drop(lock);
            match result {
                Ok(identity) => {
                    failures = 0;
                    ari = Ari::default();
                    let next = self.config.due(identity.not_before(), identity.not_after());
                    tracing::info!(
                        domains = ?self.config.domains,
                        not_after = %fmt_time(identity.not_after()),
                        next_renewal = %fmt_time(next),
                        "ACME: certificate installed; new connections get it"
                    );
                    self.install(shared, identity);
                }
                Err(failure) => {
                    failures += 1;
                    let retry_after = http.take_retry_after();
                    let delay = self.backoff(failures, retry_after);
                    failure.log(self, failures, delay, retry_after);
                    if failure.account_gone {
                        // A CA that lost its database (or a reset test CA): a new account next.
                        account = None;
                        self.store.forget_account();
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Installs the stored certificate when it is not the one being served and is not older
    /// than it. True when it did.
    fn pick_up_stored(&self, shared: &Shared) -> bool {
        let stored = match self.store.load_certificate() {
            Ok(Some(stored)) => stored,
            Ok(None) => return false,
            Err(e) => {
                // A writer between its two renames, or a damaged file: looked at again later.
                tracing::debug!("ACME: stored certificate not usable now: {e}");
                return false;
            }
        };
        if self.serving(&stored) {
            return false;
        }
        let newer = self
            .current()
            .is_none_or(|c| stored.not_before() >= c.not_before());
        if newer && stored.not_after() > SystemTime::now() {
            tracing::info!(
                domains = ?self.config.domains,
                not_after = %fmt_time(stored.not_after()),
                "ACME: installed the certificate another process stored"
            );
            self.install(shared, stored);
            return true;
        }
        false
    }

    /// Exponential from `retry_min`, capped at `retry_max`, times a jitter in [0.75, 1.25);
    /// never before the CA's `Retry-After`.
    fn backoff(&self, failures: u32, retry_after: Option<SystemTime>) -> Duration {
        let exp = self
            .config
            .retry_min
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.config.retry_max);
        let mut byte = [0u8; 1];
        let _ = aws_lc_rs::rand::fill(&mut byte);
        let jittered = exp.mul_f64(0.75 + f64::from(byte[0]) / 512.0);
        let ca = retry_after
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        jittered.max(ca)
    }

    async fn account(&self, http: &AcmeHttp) -> std::result::Result<Account, Failure> {
        let builder = || Account::builder_with_http(Box::new(http.clone()));
        if let Some(credentials) = self.store.load_account().map_err(Failure::local)? {
            return builder()
                .from_credentials(credentials)
                .await
                .map_err(|e| Failure::acme("cannot reach the CA", e, &self.config));
        }
        if !self.config.terms_accepted {
            return Err(Failure::local(Error::config(
                "the CA's terms of service were not accepted: set AcmeConfig::accept_terms(true) \
                 after reading them (the CLI's --acme accepts them for you)",
            )));
        }
        let contact: Vec<&str> = self.config.contact.iter().map(String::as_str).collect();
        let eab = self
            .config
            .external_account
            .as_ref()
            .map(|e| ExternalAccountKey::new(e.key_id.clone(), &e.hmac_key));
        let (account, credentials) = nonce_retry!(
            builder()
                .create(
                    &NewAccount {
                        contact: &contact,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    self.config.directory.clone(),
                    eab.as_ref(),
                )
                .await
        )
        .map_err(|e| Failure::acme("cannot create the ACME account", e, &self.config))?;
        self.store
            .save_account(&credentials)
            .map_err(Failure::local)?;
        tracing::info!(
            directory = %self.config.directory,
            account = account.id(),
            "ACME: account created"
        );
        Ok(account)
    }

    /// One order, from creation to the stored certificate.
    async fn order(
        &self,
        http: &AcmeHttp,
        account: &mut Option<Account>,
        lock: &OrderLock,
    ) -> std::result::Result<Identity, Failure> {
        let acc = match account {
            Some(acc) => acc.clone(),
            None => {
                let acc = self.account(http).await?;
                *account = Some(acc.clone());
                acc
            }
        };
        let result = self.order_with(&acc, lock).await;
        self.challenges.clear();
        result
    }

    async fn order_with(
        &self,
        account: &Account,
        lock: &OrderLock,
    ) -> std::result::Result<Identity, Failure> {
        let config = &self.config;
        let ids: Vec<Identifier> = config
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let acme = |what: &str| {
            let what = what.to_owned();
            move |e| Failure::acme(&what, e, config)
        };
        let mut order = nonce_retry!(account.new_order(&NewOrder::new(&ids)).await)
            .map_err(acme("cannot create the order"))?;
        tracing::info!(domains = ?config.domains, order = order.url(), "ACME: order created");

        // Each authorization once; a refused nonce while fetching one starts the walk again
        // (those already fetched are not fetched twice).
        let mut chosen: Vec<(String, ChallengeType)> = Vec::new();
        let mut done = std::collections::HashSet::new();
        let mut walks = 0;
        'walk: loop {
            walks += 1;
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = match authz {
                    Ok(authz) => authz,
                    Err(e) if is_bad_nonce(&e) && walks <= NONCE_RETRIES => continue 'walk,
                    Err(e) => return Err(acme("cannot fetch an authorization")(e)),
                };
                let domain = authz.identifier().to_string();
                if !done.insert(domain.clone()) {
                    continue;
                }
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => {
                        tracing::info!(domain, "ACME: already validated for this account");
                        continue;
                    }
                    other => {
                        return Err(Failure::message(format!(
                            "the CA says the authorization for {domain} is {other:?}"
                        )))
                    }
                }
                let offered: Vec<_> = authz.challenges.iter().map(|c| c.r#type.clone()).collect();
                let Some(kind) = config
                    .challenges
                    .iter()
                    .copied()
                    .find(|t| offered.contains(&t.to_acme()))
                else {
                    return Err(Failure::message(format!(
                        "the CA offers {offered:?} for {domain}, none of the configured {:?}",
                        config.challenges
                    )));
                };
                let mut challenge = authz
                    .challenge(kind.to_acme())
                    .ok_or_else(|| Failure::message("challenge vanished".into()))?;
                let key_authorization = challenge.key_authorization();
                match kind {
                    ChallengeType::Http01 => self
                        .challenges
                        .add_http01(&challenge.token, key_authorization.as_str()),
                    ChallengeType::TlsAlpn01 => self
                        .challenges
                        .add_tls_alpn01(&domain, key_authorization.digest().as_ref())
                        .map_err(Failure::local)?,
                }
                tracing::info!(
                    domain,
                    challenge = kind.as_str(),
                    "ACME: answering the challenge"
                );
                nonce_retry!(challenge.set_ready().await)
                    .map_err(acme("cannot start the validation"))?;
                chosen.push((domain, kind));
            }
            break;
        }
        lock.refresh();

        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(VALIDATION_TIMEOUT);
        let status = match nonce_retry!(order.poll_ready(&retries).await) {
            Ok(status) => status,
            // The order's own error: a validation failed.
            Err(instant_acme::Error::Api(problem)) => {
                let domain = problem
                    .subproblems
                    .iter()
                    .find_map(|sub| match &sub.identifier {
                        Some(Identifier::Dns(d)) => Some(d.clone()),
                        _ => None,
                    });
                return Err(Failure::validation(domain, problem, &chosen));
            }
            Err(e) => return Err(acme("validation did not finish")(e)),
        };
        if status != OrderStatus::Ready {
            // Why: the first challenge error the CA recorded.
            let mut why = None;
            let mut authorizations = order.authorizations();
            while let Some(Ok(mut authz)) = authorizations.next().await {
                let domain = authz.identifier().to_string();
                if let Ok(state) = authz.refresh().await {
                    if let Some((kind, problem)) = state
                        .challenges
                        .iter()
                        .find_map(|c| c.error.clone().map(|p| (c.r#type.clone(), p)))
                    {
                        why = Some((domain, kind, problem));
                        break;
                    }
                }
            }
            return Err(match why {
                Some((domain, _, problem)) => Failure::validation(Some(domain), problem, &chosen),
                None => {
                    Failure::message("the CA marked the order invalid without saying why".into())
                }
            });
        }
        tracing::info!(domains = ?config.domains, "ACME: every name validated");
        lock.refresh();

        let failed = |e: rcgen::Error| Failure::message(format!("cannot make the CSR: {e}"));
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let mut params = rcgen::CertificateParams::new(config.domains.clone()).map_err(failed)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key).map_err(failed)?;
        nonce_retry!(order.finalize_csr(csr.der()).await)
            .map_err(acme("the CA refused to finalize the order"))?;
        let chain = nonce_retry!(order.poll_certificate(&retries).await)
            .map_err(acme("the CA did not issue the certificate"))?;
        let key_pem = key.serialize_pem();
        let identity = Identity::from_pem(chain.as_bytes(), key_pem.as_bytes())
            .map_err(|e| Failure::message(format!("the CA sent an unusable certificate: {e}")))?;
        self.store
            .save_certificate(&chain, &key_pem)
            .map_err(Failure::local)?;
        tracing::info!(
            domains = ?config.domains,
            path = %self.store.cert_path().display(),
            not_after = %fmt_time(identity.not_after()),
            "ACME: certificate stored"
        );
        Ok(identity)
    }
}

/// The renewal time from ACME Renewal Information (RFC 9773), where the CA offers it: a random
/// time inside the suggested window, asked again when the CA's `Retry-After` passes.
#[derive(Default)]
struct Ari {
    unsupported: bool,
    /// (leaf, chosen time, ask again after)
    cached: Option<(Vec<u8>, SystemTime, SystemTime)>,
}

impl Ari {
    async fn due(
        &mut self,
        state: &AcmeState,
        account: Option<&Account>,
        cert: &Identity,
    ) -> SystemTime {
        let fallback = state.config.due(cert.not_before(), cert.not_after());
        if state.config.renew_after.is_some() || self.unsupported {
            return fallback;
        }
        let Some(account) = account else {
            return fallback;
        };
        let leaf = cert.chain()[0].as_ref();
        let now = SystemTime::now();
        if let Some((cached_leaf, at, refresh)) = &self.cached {
            if cached_leaf == leaf && now < *refresh {
                return *at;
            }
        }
        let Some(id) = certificate_id(leaf) else {
            self.unsupported = true;
            return fallback;
        };
        match account.renewal_info(&id).await {
            Ok((info, retry)) => {
                let start = to_system(info.suggested_window.start);
                let end = to_system(info.suggested_window.end).max(start);
                let mut byte = [0u8; 1];
                let _ = aws_lc_rs::rand::fill(&mut byte);
                let span = end.duration_since(start).unwrap_or_default();
                let at = start + span.mul_f64(f64::from(byte[0]) / 255.0);
                let refresh =
                    now + retry.clamp(Duration::from_secs(60), Duration::from_secs(86_400));
                tracing::info!(renew_at = %fmt_time(at), "ACME: renewal time from the CA's renewal information");
                self.cached = Some((leaf.to_vec(), at, refresh));
                at
            }
            Err(instant_acme::Error::Unsupported(_)) => {
                self.unsupported = true;
                fallback
            }
            Err(e) => {
                tracing::debug!("ACME: renewal information unavailable: {e}");
                fallback
            }
        }
    }
}

/// RFC 9773's certificate identifier: the authority key identifier and the serial.
fn certificate_id(leaf: &[u8]) -> Option<instant_acme::CertificateIdentifier<'static>> {
    use x509_parser::extensions::ParsedExtension;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let aki = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        })?;
    Some(
        instant_acme::CertificateIdentifier::new(
            rustls_pki_types::Der::from_slice(aki),
            rustls_pki_types::Der::from_slice(cert.tbs_certificate.raw_serial()),
        )
        .into_owned(),
    )
}

fn to_system(t: time::OffsetDateTime) -> SystemTime {
    let secs = t.unix_timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH
    }
}

/// Why an order or renewal failed, and what to tell the operator.
struct Failure {
    message: String,
    problem: Option<Problem>,
    account_gone: bool,
}

impl Failure {
    fn message(message: String) -> Self {
        Self {
            message,
            problem: None,
            account_gone: false,
        }
    }

    fn local(e: Error) -> Self {
        Self::message(e.to_string())
    }

    fn acme(what: &str, e: instant_acme::Error, config: &AcmeConfig) -> Self {
        match e {
            instant_acme::Error::Api(problem) => {
                let kind = problem.r#type.as_deref().unwrap_or_default();
                let kind = kind.rsplit(':').next().unwrap_or(kind);
                let hint = match kind {
                    "rateLimited" => " (rate limited: retrying after the CA's Retry-After)",
                    "externalAccountRequired" => {
                        " (this CA needs External Account Binding: give the key ID and HMAC key it \
                         issued you, AcmeConfig::external_account or --acme-eab KID:HMAC)"
                    }
                    "userActionRequired" | "agreementRequired" => {
                        " (the CA wants its terms of service accepted again: read them on its site)"
                    }
                    "accountDoesNotExist" | "unauthorized" if what.contains("account") => {
                        " (the stored account is unknown to this CA: move account.json away)"
                    }
                    "rejectedIdentifier" => {
                        " (the CA will not issue for this name: public CAs refuse internal names \
                         such as localhost or .internal)"
                    }
                    "invalidContact" => " (check the contact e-mail address)",
                    _ => "",
                };
                Self {
                    account_gone: kind == "accountDoesNotExist",
                    message: format!("{what}: {}{hint}", problem_text(&problem)),
                    problem: Some(problem),
                }
            }
            instant_acme::Error::Other(inner) => Self::message(format!(
                "{what}: cannot reach the CA at {}: {inner}",
                config.directory
            )),
            other => Self::message(format!("{what}: {other}")),
        }
    }

    fn validation(
        domain: Option<String>,
        problem: Problem,
        chosen: &[(String, ChallengeType)],
    ) -> Self {
        let (domain, kind) = match domain
            .as_ref()
            .and_then(|d| chosen.iter().find(|(c, _)| c == d))
            .or(chosen.first())
        {
            Some((d, k)) => (d.clone(), *k),
            None => (domain.unwrap_or_default(), ChallengeType::TlsAlpn01),
        };
        let listener = match kind {
            ChallengeType::TlsAlpn01 => "the HTTPS listener",
            ChallengeType::Http01 => "the plain-HTTP listener (--http-listen)",
        };
        Self {
            message: format!(
                "the CA could not validate {domain} by {kind}: {}. Check that DNS for {domain} \
                 points at this machine and that port {} reaches {listener} from the internet",
                problem_text(&problem),
                kind.public_port()
            ),
            problem: Some(problem),
            account_gone: false,
        }
    }

    fn log(
        &self,
        state: &AcmeState,
        failures: u32,
        retry_in: Duration,
        retry_after: Option<SystemTime>,
    ) {
        let serving = state.current();
        let keeping = match &serving {
            Some(c) => format!(
                "keeping the current certificate (valid until {})",
                fmt_time(c.not_after())
            ),
            None => "no certificate yet".to_owned(),
        };
        let (problem_type, detail) = self.problem.as_ref().map_or(("", ""), |p| {
            (
                p.r#type.as_deref().unwrap_or_default(),
                p.detail.as_deref().unwrap_or_default(),
            )
        });
        let ca_retry_after = retry_after.map(fmt_time).unwrap_or_default();
        tracing::warn!(
            domains = ?state.config.domains,
            attempt = failures,
            problem_type,
            detail,
            ca_retry_after,
            "ACME: {}; {keeping}; retrying in {}",
            self.message,
            fmt_duration(retry_in)
        );
    }
}

fn problem_text(p: &Problem) -> String {
    let mut text = p
        .detail
        .clone()
        .unwrap_or_else(|| p.r#type.clone().unwrap_or_else(|| "no detail".into()));
    if let Some(t) = &p.r#type {
        text.push_str(&format!(" [{t}]"));
    }
    for sub in &p.subproblems {
        if let Some(detail) = &sub.detail {
            text.push_str(&format!("; {detail}"));
        }
    }
    text
}

pub(crate) fn fmt_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

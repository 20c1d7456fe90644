//! From the flags to what is sent: TLS options (trust, client identity, pins, --insecure),
//! the request (method, URL, headers, body) and the agent.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, Uri};
use portcullis::client::Agent;
use portcullis::tls::{load_certificates, ClientTlsOptions, PinSet};
use portcullis::{Identity, Passphrase, PeerCertificate};

use super::failure::{with_sources, Failure};
use super::{parse, GetArgs};

/// The request as it is sent (again, after a redirect).
pub struct Plan {
    pub method: Method,
    pub uri: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
}

pub fn tls_options(args: &GetArgs) -> Result<(ClientTlsOptions, Vec<PeerCertificate>), Failure> {
    let mut tls = ClientTlsOptions::new();
    let mut anchors = Vec::new();
    if let Some(path) = &args.cacert {
        let certs = load_certificates(path)
            .map_err(|e| Failure::usage(format!("--cacert {}", with_sources(&e))))?;
        anchors = certs
            .iter()
            .filter_map(|c| PeerCertificate::from_der(c).ok())
            .collect();
        tls = tls.ca(certs);
    }
    if let Some(identity) = identity(args)? {
        tls = tls.identity(identity);
    }
    if let Some(name) = &args.servername {
        tls = tls.servername(name.clone());
    }
    if let Some(version) = args.tls_min {
        tls = tls.min_version(version);
    }
    let pins: Vec<&String> = args.pins.iter().flat_map(|p| &p.0).collect();
    if !pins.is_empty() {
        let set = PinSet::new(pins);
        tls = tls.check_server_identity(move |host, chain| set.check(host, chain));
    }
    // As curl: SSLKEYLOGFILE is honoured, and said so (the file decrypts the traffic).
    if let Some(path) = std::env::var_os("SSLKEYLOGFILE").filter(|p| !p.is_empty()) {
        tls = tls
            .keylog_from_env()
            .map_err(|e| Failure::usage(format!("SSLKEYLOGFILE {}", with_sources(&e))))?;
        eprintln!(
            "portcullis: warning: writing TLS secrets to {} (SSLKEYLOGFILE): anyone with the \
             file can decrypt this traffic",
            std::path::Path::new(&path).display()
        );
    }
    if args.insecure {
        // Node's `rejectUnauthorized: false`.
        tls = portcullis::tls::danger::insecure(tls);
        eprintln!(
            "portcullis: warning: --insecure: the server's certificate is not verified; \
             anyone on the path can impersonate it"
        );
    }
    Ok((tls, anchors))
}

fn passphrase(args: &GetArgs) -> Result<Option<Passphrase>, Failure> {
    if let Some(path) = &args.passphrase_file {
        return Passphrase::from_file(path)
            .map(Some)
            .map_err(|e| Failure::usage(format!("--passphrase-file {}", with_sources(&e))));
    }
    Ok(std::env::var("PORTCULLIS_PASSPHRASE")
        .ok()
        .map(Passphrase::new))
}

fn identity(args: &GetArgs) -> Result<Option<Identity>, Failure> {
    if let Some(pfx) = &args.pfx {
        let pass = passphrase(args)?;
        let given = pass.is_some();
        let pass = pass.unwrap_or_else(|| Passphrase::new(String::new()));
        return Identity::from_pkcs12_file(pfx, &pass).map(Some).map_err(|e| {
            let hint = if given {
                ""
            } else {
                " (no passphrase given: use --passphrase-file FILE or set PORTCULLIS_PASSPHRASE)"
            };
            Failure::usage(format!("--pfx {}{hint}", with_sources(&e)))
        });
    }
    let Some(cert) = &args.cert else {
        return Ok(None);
    };
    let key = args.key.as_deref().unwrap_or(cert);
    Identity::from_files(cert, key, passphrase(args)?.as_ref())
        .map(Some)
        .map_err(|e| Failure::usage(format!("--cert/--key {}", with_sources(&e))))
}

/// The request body from -d and --data-binary, if any.
fn body(args: &GetArgs) -> Result<Option<Bytes>, Failure> {
    if args.data.is_empty() && args.data_binary.is_empty() {
        return Ok(None);
    }
    let read = |flag: &str, spec: &str| -> Result<Vec<u8>, Failure> {
        let Some(path) = spec.strip_prefix('@') else {
            return Ok(spec.as_bytes().to_vec());
        };
        let data = if path == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
        } else {
            std::fs::read(path)
        };
        data.map_err(|e| Failure::usage(format!("{flag} {path}: cannot read file: {e}")))
    };
    let mut parts = Vec::new();
    for spec in &args.data {
        let mut data = read("--data", spec)?;
        if spec.starts_with('@') {
            data.retain(|b| *b != b'\n' && *b != b'\r');
        }
        parts.push(data);
    }
    for spec in &args.data_binary {
        parts.push(read("--data-binary", spec)?);
    }
    Ok(Some(Bytes::from(parts.join(&b'&'))))
}

/// The first request: method, URL, headers (curl's defaults, then -H) and body.
pub fn plan(args: &GetArgs) -> Result<Plan, Failure> {
    let uri = parse::url(&args.url).map_err(Failure::usage)?;
    let body = body(args)?;
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.as_bytes())
            .map_err(|_| Failure::usage(format!("-X: invalid method {m:?}")))?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = vec![
        (
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("portcullis/", env!("CARGO_PKG_VERSION"))),
        ),
        (http::header::ACCEPT, HeaderValue::from_static("*/*")),
    ];
    if body.is_some() {
        headers.push((
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        ));
    }
    // A -H replaces a default of that name; several -H of one name are all sent.
    let mut given: Vec<&HeaderName> = Vec::new();
    for h in &args.headers {
        if !given.contains(&&h.name) {
            headers.retain(|(n, _)| n != h.name);
            given.push(&h.name);
        }
        if let Some(value) = &h.value {
            headers.push((h.name.clone(), value.clone()));
        }
    }
    Ok(Plan {
        method,
        uri,
        headers,
        body,
    })
}

/// The agent for `get`; its TLS options (`--cacert`, `--cert`, `--ciphers`…) are checked here.
pub fn agent(args: &GetArgs, tls: ClientTlsOptions) -> Result<Agent, Failure> {
    let mut builder = Agent::builder().keep_alive(true).tls(tls).http2(args.http2);
    for r in &args.resolve {
        builder = builder.resolve(r.host.clone(), r.port, r.addr);
    }
    if let Some(t) = args.timeout {
        builder = builder.connect_timeout(t).handshake_timeout(t);
    }
    builder
        .build()
        .map_err(|e| Failure::client(&e, args.timeout))
}

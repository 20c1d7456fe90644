//! `portcullis get URL`: a curl-like HTTPS client on `portcullis::client`, with curl's flag
//! names and exit codes, and a `-v` that shows the TLS session and the server's certificate
//! chain with the pins to use with `--pin`.

mod failure;
mod output;
mod parse;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION};
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt as _;
use portcullis::client::{Agent, Response};
use portcullis::tls::TlsVersion;
use tokio::time::Instant;

use failure::{with_sources, Failure};
use output::{Progress, Sink};
use parse::{HeaderArg, PinArg, ResolveArg};
use setup::Plan;

/// The options of `portcullis get`, named as curl names them.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes (curl's): 0 success; 1 other error; 2 bad usage, flag value \
or unreadable file; 6 could not resolve host; 7 could not connect; 22 HTTP status >= 400 with \
--fail; 28 timeout; 35 TLS handshake failed; 47 too many redirects; 60 server certificate \
not verified; 90 public key pin mismatch."
)]
pub struct GetArgs {
    /// The URL to fetch; https:// is assumed without a scheme.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Request method. [default: GET, or POST with -d/--data-binary]
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,

    /// Request header `Name: value`; repeatable. `Name:` removes a default header
    /// (User-Agent, Accept), `Name;` sends it with an empty value.
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse::header)]
    pub headers: Vec<HeaderArg>,

    /// Request body; `@FILE` reads it from FILE (`@-`: stdin) without its newlines. Several
    /// are joined with `&`. Sends POST (unless -X) and a form Content-Type (unless -H).
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Vec<String>,

    /// As --data, but `@FILE` is sent byte for byte.
    #[arg(long = "data-binary", value_name = "DATA")]
    pub data_binary: Vec<String>,

    /// Write the body to FILE instead of stdout (a progress line shows on a terminal).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Include the response head (status line and headers) in the output.
    #[arg(short = 'i', long = "include")]
    pub include: bool,

    /// Follow redirects (Location). 301, 302 and 303 turn a POST into a GET as curl does;
    /// 307 and 308 repeat the method and body.
    #[arg(short = 'L', long = "location")]
    pub location: bool,

    /// Most redirects followed with -L.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirs: u32,

    /// Trust only the CA certificates in FILE (PEM or DER) instead of the bundled roots,
    /// e.g. $PORTCULLIS_HOME/ca.pem for `portcullis serve`.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Client certificate (chain) file, PEM or DER; the key comes from --key, or from the
    /// same file.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Private key of --cert (PEM or DER; encrypted keys need a passphrase).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Client certificate and key in one PKCS#12 file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key"])]
    pub pfx: Option<PathBuf>,

    /// File holding the passphrase of --key or --pfx (one trailing newline ignored);
    /// else $PORTCULLIS_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Public key pin `sha256//BASE64` (as `-v` prints them); some certificate of the chain
    /// must match one. Repeatable, or `;`-separated.
    #[arg(long = "pin", value_name = "PIN", value_parser = parse::pin)]
    pub pins: Vec<PinArg>,

    /// Name to send by SNI and to check the certificate against, instead of the URL's host.
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,

    /// Connect to ADDR for HOST:PORT (the URL's host still drives SNI and the certificate
    /// check). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = parse::resolve)]
    pub resolve: Vec<ResolveArg>,

    /// Offer HTTP/2 by ALPN (h2, then http/1.1).
    #[arg(long)]
    pub http2: bool,

    /// Lowest TLS version: 1.2 or 1.3 (TLSv1.2, TLSv1.3). [default: 1.2]
    #[arg(long, value_name = "VERSION", value_parser = parse::tls_version)]
    pub tls_min: Option<TlsVersion>,

    /// Give up after this long, the body included: `500ms`, `5s`. [default: none]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,

    /// Do not verify the server's certificate. Anyone on the path can read and change the
    /// traffic: for tests only.
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Exit with 22, writing no body, when the status is 400 or above.
    #[arg(short = 'f', long)]
    pub fail: bool,

    /// Print the TLS session, the server's certificate chain and the request and response
    /// heads on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Runs `portcullis get`; the exit code is curl's (see [`GetArgs`]).
pub fn main(args: GetArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: (1) cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("portcullis: ({}) {}", failure.code, failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(args: &GetArgs) -> Result<(), Failure> {
    let mut plan = setup::plan(args)?;
    let (tls, anchors) = setup::tls_options(args)?;
    let agent = setup::agent(args, tls)?;
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let mut sink = Sink::new(args.output.as_deref());
    let mut redirects = 0;
    loop {
        let res = send(&agent, &plan, deadline, args.timeout).await?;
        if args.verbose {
            output::connection(
                &plan.uri,
                res.remote_addr(),
                res.reused_socket(),
                res.tls_info(),
                &anchors,
            );
            output::request(
                &plan.method,
                &plan.uri,
                res.version(),
                &plan.headers,
                plan.body.as_ref().map(Bytes::len),
            );
            output::response(res.version(), res.status(), res.headers());
        }
        let status = res.status();
        let location = res.headers().get(LOCATION).cloned();
        if let (true, true, Some(location)) = (args.location, status.is_redirection(), location) {
            if redirects >= args.max_redirs {
                return Err(Failure::new(
                    47,
                    format!("Maximum ({}) redirects followed", args.max_redirs),
                ));
            }
            redirects += 1;
            if args.include {
                write_head(&mut sink, &res)?;
            }
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            drain(res, deadline, args.timeout).await?;
            let next = parse::join(&plan.uri, &location).map_err(|m| Failure::new(1, m))?;
            if args.verbose {
                output::info(format_args!("Following redirect to {next}"));
            }
            redirect(&mut plan, status, next);
            continue;
        }
        if args.fail && status.as_u16() >= 400 {
            return Err(Failure::new(
                22,
                format!("The requested URL returned error: {}", status_text(status)),
            ));
        }
        if args.include {
            write_head(&mut sink, &res)?;
        }
        return download(res, &mut sink, args, deadline).await;
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

async fn send(
    agent: &Agent,
    plan: &Plan,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<Response, Failure> {
    let mut req = agent.request(plan.method.clone(), &plan.uri.to_string());
    for (name, value) in &plan.headers {
        req = req.header(name.clone(), value.clone());
    }
    if let Some(body) = &plan.body {
        req = req.body(body.clone());
    }
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::timed_out(timeout));
        }
        req = req.timeout(left);
    }
    req.send().await.map_err(|e| Failure::client(&e, timeout))
}

/// Points the plan at the redirect's target with curl's method rules; credentials and a
/// custom Host are not carried to another origin (scheme, host or port).
fn redirect(plan: &mut Plan, status: StatusCode, next: Uri) {
    let to_get = match status.as_u16() {
        303 => plan.method != Method::HEAD,
        301 | 302 => plan.method == Method::POST,
        _ => false,
    };
    if to_get {
        plan.method = Method::GET;
        plan.body = None;
        plan.headers
            .retain(|(n, _)| *n != CONTENT_TYPE && *n != CONTENT_LENGTH);
    }
    let same_origin = next.scheme_str() == plan.uri.scheme_str()
        && next.authority().map(|a| a.as_str().to_ascii_lowercase())
            == plan
                .uri
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase());
    if !same_origin {
        plan.headers
            .retain(|(n, _)| *n != AUTHORIZATION && *n != COOKIE && *n != HOST);
    }
    plan.uri = next;
}

fn write_head(sink: &mut Sink, res: &Response) -> Result<(), Failure> {
    let head = output::response_head(res.version(), res.status(), res.headers());
    sink.write(&head).map_err(write_failure)
}

fn write_failure(e: std::io::Error) -> Failure {
    Failure::new(1, format!("cannot write the output: {e}"))
}

/// Reads and drops a redirect's body so that its connection can carry the next request.
async fn drain(
    res: Response,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<(), Failure> {
    let mut body = res.into_body();
    let mut seen = 0usize;
    while seen < 1 << 20 {
        match next_frame(&mut body, deadline, timeout).await? {
            Some(data) => seen += data.len(),
            None => break,
        }
    }
    Ok(())
}

async fn next_frame(
    body: &mut portcullis::client::ResponseBody,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
) -> Result<Option<Bytes>, Failure> {
    loop {
        let frame = match deadline {
            Some(d) => tokio::time::timeout_at(d, body.frame())
                .await
                .map_err(|_| Failure::timed_out(timeout))?,
            None => body.frame().await,
        };
        match frame {
            None => return Ok(None),
            Some(Err(e)) => {
                return Err(Failure::new(
                    1,
                    format!("error reading the response body: {}", with_sources(&e)),
                ))
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Streams the body to the output, chunk by chunk.
async fn download(
    res: Response,
    sink: &mut Sink,
    args: &GetArgs,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    let total = res
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut progress = Progress::new(args.output.is_some(), total);
    sink.open().map_err(write_failure)?;
    let mut body = res.into_body();
    let result = async {
        while let Some(data) = next_frame(&mut body, deadline, args.timeout).await? {
            sink.write(&data).map_err(write_failure)?;
            progress.add(data.len());
        }
        sink.finish().map_err(write_failure)
    }
    .await;
    progress.finish();
    result
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    fn plan_for(url: &str, method: Method) -> Plan {
        Plan {
            method,
            uri: url.parse().unwrap(),
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
                (AUTHORIZATION, HeaderValue::from_static("Bearer x")),
            ],
            body: Some(Bytes::from_static(b"data")),
        }
    }

    #[test]
    fn redirects_follow_curls_method_rules() {
        let mut p = plan_for("https://a.test/x", Method::POST);
        redirect(
            &mut p,
            StatusCode::FOUND,
            "https://a.test/y".parse().unwrap(),
        );
        assert_eq!(p.method, Method::GET);
        assert!(p.body.is_none());
        assert!(p.headers.iter().all(|(n, _)| n != CONTENT_TYPE));
        assert!(p.headers.iter().any(|(n, _)| n == AUTHORIZATION));

        let mut p = plan_for("https://a.test/x", Method::PUT);
        redirect(&mut p, StatusCode::MOVED_PERMANENTLY, "/y".parse().unwrap());
        assert_eq!(p.method, Method::PUT);

        let mut p = plan_for("https://a.test/x", Method::PUT);
        redirect(
            &mut p,
            StatusCode::SEE_OTHER,
            "https://a.test/y".parse().unwrap(),
        );
        assert_eq!(p.method, Method::GET);

        let mut p = plan_for("https://a.test/x", Method::POST);
        redirect(
            &mut p,
            StatusCode::PERMANENT_REDIRECT,
            "https://b.test/y".parse().unwrap(),
        );
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.body.as_deref(), Some(&b"data"[..]));
        assert!(p.headers.iter().all(|(n, _)| n != AUTHORIZATION));
    }
}

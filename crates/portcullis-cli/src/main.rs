//! The `portcullis` command: serve a directory, a reverse proxy or a hello page over HTTPS.
//!
//! Exit codes: 0 after a clean shutdown, 2 for a bad flag or file (clap's own code for usage
//! errors), 1 for anything that goes wrong once the server is running.

mod access_log;
mod acme_flags;
mod activation;
mod cert;
mod files_flags;
mod get;
mod hello;
mod listen_arg;
use listen_arg::parse_listen;
mod log;
mod metrics;
mod proxy_flags;
mod reload;
mod serve;
mod tickets;
mod tls_flags;
mod trim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// HTTPS in one command: static files, a reverse proxy, or a page showing your TLS session.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve DIR, a proxied backend (--proxy) or, with neither, a hello page, over HTTPS.
    ///
    /// Without --cert/--key a local development CA is created (or reused) under
    /// $PORTCULLIS_HOME (else $XDG_DATA_HOME/portcullis, else ~/.local/share/portcullis) and
    /// a localhost certificate signed by it is used; point clients at its ca.pem.
    Serve(Box<ServeArgs>),

    /// Make and inspect certificates: the local development CA, leaf certificates (PEM or
    /// PKCS#12), what a certificate file holds, and how to trust the local CA.
    #[command(subcommand)]
    Cert(cert::CertCommand),

    /// Fetch a URL over HTTPS, curl-style (-X, -H, -d, -o, -i, -L, --cacert, --pin, ...),
    /// with curl's exit codes; -v shows the TLS session and the server's certificate chain
    /// with each certificate's pin-sha256.
    Get(Box<get::GetArgs>),

    /// Make and rotate the TLS session-ticket key file a fleet shares (serve --ticket-keys), so
    /// that a session made through one instance resumes on any other.
    #[command(subcommand)]
    Tickets(tickets::TicketsCommand),
}

/// The options of `portcullis serve`. Durations take units: `500ms`, `5s`, `2m`; `0s` turns
/// a timeout off.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory to serve as static files: index.html for directories, compression, caching,
    /// ranges; see the static-file options below.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Static-file options.
    #[command(flatten)]
    pub files: files_flags::FilesArgs,

    /// Reverse-proxy options.
    #[command(flatten)]
    pub proxy: proxy_flags::ProxyArgs,

    /// HTTPS listen address; repeat for several (IPv6: [::1]:8443). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8443", value_parser = parse_listen)]
    pub listen: Vec<String>,

    /// TLS material and protocol options.
    #[command(flatten)]
    pub tls: tls_flags::TlsArgs,

    /// Automatic certificates (ACME).
    #[command(flatten)]
    pub acme: acme_flags::AcmeArgs,

    /// Whether --listen was given (with --acme, its default becomes [::]:443).
    #[arg(skip)]
    pub listen_given: bool,

    /// Also listen for plain HTTP here, serving the same content (or redirecting with
    /// --redirect). (ESP-IDF: transport_mode insecure / port_insecure) [default: none]
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub http_listen: Option<String>,

    /// Make the --http-listen listener (or the passed socket named http) answer every request
    /// with 308 to the https URL. [default: off]
    #[arg(long)]
    pub redirect: bool,

    /// Send Strict-Transport-Security: max-age=31536000 (one year) on HTTPS responses.
    /// [default: off]
    #[arg(long)]
    pub hsts: bool,

    /// Time allowed for a request's head to arrive; 408 after. (Node: headersTimeout) [default:
    /// 60s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub headers_timeout: Option<Duration>,

    /// Time allowed for a whole request (head and body) to arrive; 408 after. (Node:
    /// requestTimeout) [default: 300s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub request_timeout: Option<Duration>,

    /// How long an idle keep-alive connection is kept between requests. (Node:
    /// keepAliveTimeout) [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub keep_alive_timeout: Option<Duration>,

    /// Release an idle HTTP/1 connection's HTTP buffers after this long without a request; the
    /// connection stays open. 0s keeps them. [default: 500ms]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub release_idle_after: Option<Duration>,

    /// Drop a connection after this long with no socket activity. (Node: server.timeout; ESP-
    /// IDF: recv_wait_timeout/send_wait_timeout) [default: 0s, off]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Time allowed for the TLS handshake (and the PROXY header). (Node: handshakeTimeout)
    /// [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Option<Duration>,

    /// Where the access log goes: FILE (appended; SIGUSR1 reopens it, for logrotate), - for
    /// stderr, or off. One line per request once its response has gone: peer, method, target
    /// with query, version, status, body bytes, duration to the last byte, Host, TLS version,
    /// user agent, referer.
    #[arg(long, value_name = "FILE|-|off", default_value = "-")]
    pub access_log: String,

    /// Access log format: text, json (one object per line) or combined (Apache/nginx).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json", "combined"])]
    pub log_format: String,

    /// Move the access log FILE to FILE.1 (replacing it) when it would grow past SIZE, e.g.
    /// 100MiB. [default: never]
    #[arg(long, value_name = "SIZE", value_parser = files_flags::parse_size)]
    pub access_log_max_size: Option<usize>,

    /// Threads serving connections; 1 runs everything on one thread, as nginx's one worker
    /// process. Files larger than 256 KiB are read on extra blocking threads either way.
    /// [default: one per CPU core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// On SIGINT/SIGTERM, let in-flight requests finish for this long, then drop what is left.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// On SIGINT/SIGTERM, first keep accepting for this long while /readyz (--metrics) answers
    /// 503 and every response says Connection: close, so that a load balancer stops choosing
    /// this instance before its listeners close; then shut down as without it. Behind HAProxy,
    /// give it more than the health checks need to mark the instance down. [default: 0]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Option<Duration>,

    /// Most connections open at once; at the limit the least recently used idle one is closed
    /// (see --no-lru-purge). (Node: maxConnections; ESP-IDF: max_open_sockets) [default: 0,
    /// unlimited]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Connections the kernel queues before they are accepted (the listen backlog). (Node and
    /// nginx: backlog) [default: the system's net.core.somaxconn on Linux, else 1024]
    #[arg(long, value_name = "N")]
    pub backlog: Option<u32>,

    /// At --max-connections, refuse new connections instead of closing the least recently used
    /// idle one. (ESP-IDF: lru_purge_enable = false) [default: purge on]
    #[arg(long)]
    pub no_lru_purge: bool,

    /// Largest request head in bytes; 431 above. (Node: maxHeaderSize; ESP-IDF:
    /// CONFIG_HTTPD_MAX_REQ_HDR_LEN) [default: 16384]
    #[arg(long, value_name = "BYTES")]
    pub max_header_size: Option<usize>,

    /// Most header fields in a request; 431 above. 100, as Apache's LimitRequestFields and
    /// hyper, is far above what browsers send; the library's default is Node's 2000, which
    /// costs every HTTP/1.1 request a few microseconds. (Node: maxHeadersCount)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_headers_count: usize,

    /// Close a connection after this many requests. (Node: maxRequestsPerSocket) [default: 0,
    /// unlimited]
    #[arg(long, value_name = "N")]
    pub max_requests_per_socket: Option<usize>,

    /// Offer only HTTP/1.1 by ALPN. [default: h2 and http/1.1 offered]
    #[arg(long)]
    pub no_http2: bool,

    /// Require a PROXY protocol v1/v2 header on every connection (behind a TCP load balancer);
    /// its address becomes the client's. [default: off]
    #[arg(long)]
    pub proxy_protocol: bool,

    /// With --proxy-protocol: the load balancers a PROXY header is accepted from (CIDR, or an
    /// address; comma-separated or repeated). Connections from anywhere else are refused, so a
    /// client that reaches the server directly cannot choose its address. [default: 127.0.0.0/8,
    /// ::1]
    #[arg(long, value_name = "CIDR", value_delimiter = ',', requires = "proxy_protocol",
          value_parser = parse_ip_net)]
    pub proxy_protocol_from: Vec<portcullis::server::IpNet>,

    /// Serve Prometheus metrics (/metrics), /healthz and /readyz over plain HTTP here: keep it
    /// on loopback or a private network. /readyz answers 503 while the server drains.
    /// [default: off]
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    pub metrics: Option<String>,
}

fn parse_ip_net(s: &str) -> Result<portcullis::server::IpNet, String> {
    s.parse().map_err(|e: portcullis::Error| e.to_string())
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    log::init();
    match cli.command {
        Command::Serve(mut args) => {
            // Which --sni names go with which identity depends on the order of the flags.
            if let Some(serve) = matches.subcommand_matches("serve") {
                args.tls.bind_sni_names(serve);
                args.listen_given =
                    serve.value_source("listen") == Some(clap::parser::ValueSource::CommandLine);
            }
            serve::main(*args)
        }
        Command::Cert(command) => cert::main(command),
        Command::Get(args) => get::main(*args),
        Command::Tickets(command) => tickets::main(command),
    }
}

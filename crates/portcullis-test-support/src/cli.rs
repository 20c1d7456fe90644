//! Shared support for the CLI tests: a `portcullis serve` process killed on drop, curl, and
//! `curl -i` output parsing.

pub use crate::common::*;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tempfile::TempDir;

/// The `portcullis` binary next to the running test: cargo builds it for the CLI's
/// integration tests into the directory above the test's own (`target/<profile>/`).
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_portcullis") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join(format!("portcullis{}", std::env::consts::EXE_SUFFIX))
}

/// A child's standard output, line by line, read on a thread of its own so that a silent child
/// cannot hang the test: wait with `recv_timeout`.
pub fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `portcullis serve`, killed on drop. Its stderr goes to a file that is printed
/// when the test fails.
pub struct Portcullis {
    pub child: Child,
    pub home: PathBuf,
    /// Addresses from the `listening on https://` lines.
    pub https: Vec<SocketAddr>,
    /// Address from the `listening on http://` line.
    pub http: Option<SocketAddr>,
    /// Address from the `metrics on http://ADDR/metrics` line (with `--metrics`).
    pub metrics: Option<SocketAddr>,
    stderr: PathBuf,
    _logs: TempDir,
}

impl Portcullis {
    /// Starts `portcullis serve ARGS` with `PORTCULLIS_HOME=home` and waits for its
    /// listening lines.
    pub fn start(home: &Path, args: &[&str]) -> Self {
        Self::start_with_env(home, args, &[])
    }

    /// As `start`, with extra environment variables.
    pub fn start_with_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin());
        command.arg("serve").args(args);
        Self::spawn(command, home, args, env)
    }

    /// As `start`, under `ulimit` options given to `sh` (`-n 64`: soft and hard open-file
    /// limits of 64; `-S -n 256`: the soft one only).
    pub fn start_with_ulimit(home: &Path, args: &[&str], ulimit: &str) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit {ulimit} && exec \"$0\" serve \"$@\""))
            .arg(bin())
            .args(args);
        Self::spawn(command, home, args, &[])
    }

    /// As `start`, serving the listening sockets `fds` (descriptors of this process, not
    /// close-on-exec) passed as socket activation passes them: moved to 3, 4, … with
    /// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` (`names`, colon-separated) set.
    pub fn start_on_sockets(home: &Path, fds: &[i32], names: &str, args: &[&str]) -> Self {
        // Each descriptor is first moved above the range it will be passed in, so that
        // moving them into place cannot overwrite one not moved yet.
        let mut script = String::new();
        for (i, fd) in fds.iter().enumerate() {
            script.push_str(&format!("exec {}<&{fd} {fd}<&-; ", 100 + i));
        }
        for i in 0..fds.len() {
            script.push_str(&format!("exec {}<&{} {}<&-; ", 3 + i, 100 + i, 100 + i));
        }
        script.push_str(&format!(
            "export LISTEN_PID=$$ LISTEN_FDS={} LISTEN_FDNAMES='{names}'; exec \"$0\" serve \"$@\"",
            fds.len()
        ));
        // bash: dash's redirections reach descriptor 9 at most.
        let mut command = Command::new("bash");
        command.arg("-c").arg(script).arg(bin()).args(args);
        let listens = names.split(':').filter(|n| *n != "http").count();
        let mut expect: Vec<&str> = vec!["--listen"; listens];
        if names.split(':').any(|n| n == "http") {
            expect.push("--http-listen");
        }
        Self::spawn(command, home, &expect, &[])
    }

    fn spawn(mut command: Command, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let logs = tempfile::tempdir().unwrap();
        let stderr = logs.path().join("stderr.log");
        let mut child = command
            .env("PORTCULLIS_HOME", home)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("portcullis starts");
        let expected = args.iter().filter(|a| **a == "--listen").count().max(1)
            + args.iter().filter(|a| **a == "--http-listen").count();

        // Read stdout on a thread so that a silent server cannot hang the test.
        let rx = lines_of(child.stdout.take().unwrap());
        let wants_metrics = args.contains(&"--metrics");
        let mut server = Self {
            child,
            home: home.to_path_buf(),
            https: Vec::new(),
            http: None,
            metrics: None,
            stderr,
            _logs: logs,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.https.len() + usize::from(server.http.is_some()) < expected
            || (wants_metrics && server.metrics.is_none())
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no listening line ({e}); stderr: {}", server.log()));
            if let Some(addr) = line.strip_prefix("listening on https://") {
                server.https.push(addr.parse().unwrap());
            } else if let Some(addr) = line.strip_prefix("listening on http://") {
                server.http = Some(addr.parse().unwrap());
            } else if let Some(addr) = line
                .strip_prefix("metrics on http://")
                .and_then(|rest| rest.strip_suffix("/metrics"))
            {
                server.metrics = Some(addr.parse().unwrap());
            }
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.https[0].port()
    }

    pub fn ca(&self) -> PathBuf {
        self.home.join("ca.pem")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// curl with the dev CA (verification on), `localhost` resolved to 127.0.0.1.
    pub fn curl(&self, args: &[&str]) -> Output {
        curl(self.port(), Some(&self.ca()), args)
    }

    /// `curl -i` against `https://localhost:PORT{path}`, parsed.
    pub fn get(&self, path: &str, args: &[&str]) -> Reply {
        let url = format!("https://localhost:{}{path}", self.port());
        let out = self.curl(&[args, &["-i", url.as_str()]].concat());
        Reply::parse(&out)
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Portcullis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- portcullis stderr ---\n{}", self.log());
        }
    }
}

pub fn curl(port: u16, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.args(args).output().expect("curl runs")
}

/// One HTTP response as `curl -i` printed it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(out: &Output) -> Self {
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut rest = &out.stdout[..];
        loop {
            let end = rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a response head");
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = &rest[end + 4..];
            let mut lines = head.lines();
            let status: u16 = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .expect("a status line");
            if (100..200).contains(&status) {
                continue;
            }
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            return Self {
                status,
                headers,
                body: rest.to_vec(),
            };
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Runs the binary to its exit with `args`.
pub fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("PORTCULLIS_HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A plain-HTTP backend on 127.0.0.1:0 answering every request with `handler`, on its own
/// runtime (the tests themselves are synchronous).
pub struct Backend {
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Backend {
    pub fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(
                        TokioIo::new(stream),
                        hyper::service::service_fn(handler),
                    ),
                );
            }
        });
        Self {
            addr,
            _runtime: runtime,
        }
    }
}

/// One keep-alive TLS connection to a `portcullis serve`, speaking HTTP/1.1 by hand.
pub struct KeepAlive {
    pub tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
}

impl KeepAlive {
    pub async fn open(server: &Portcullis) -> Self {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(server.ca()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        Self { tls }
    }

    /// GET `path`; the response head (lowercased) and body.
    pub async fn get(&mut self, path: &str) -> (String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.tls.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            self.tls.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0; len];
        self.tls.read_exact(&mut body).await.unwrap();
        (head, body)
    }
}

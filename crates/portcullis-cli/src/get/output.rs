//! What `portcullis get` writes: the body (stdout or `-o FILE`), response heads (`-i`), the
//! `-v` trace on stderr (TLS session, certificate chain, `> ` and `< ` heads) and the progress
//! line for downloads to a file.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use portcullis::tls::TlsInfo;
use portcullis::PeerCertificate;

/// Where the body (and `-i` heads) go; the file is created at the first write.
#[derive(Debug)]
pub struct Sink {
    path: Option<PathBuf>,
    file: Option<BufWriter<File>>,
}

impl Sink {
    pub fn new(path: Option<&Path>) -> Self {
        Self {
            path: path.map(Path::to_path_buf),
            file: None,
        }
    }

    /// Creates the output file now (so that an empty body still leaves a file).
    pub fn open(&mut self) -> io::Result<()> {
        if let (Some(path), None) = (&self.path, &self.file) {
            self.file = Some(BufWriter::new(File::create(path).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: cannot create: {e}", path.display()))
            })?));
        }
        Ok(())
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.open()?;
        match &mut self.file {
            Some(file) => file.write_all(data),
            None => {
                let mut out = io::stdout().lock();
                out.write_all(data)?;
                out.flush()
            }
        }
    }

    pub fn finish(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => io::stdout().flush(),
        }
    }
}

pub fn version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn status_line(version: Version, status: StatusCode) -> String {
    match (version, status.canonical_reason()) {
        (Version::HTTP_2 | Version::HTTP_3, _) | (_, None) => {
            format!("{} {}", version_str(version), status.as_u16())
        }
        (_, Some(reason)) => format!("{} {} {reason}", version_str(version), status.as_u16()),
    }
}

/// The response head as `-i` writes it: status line, headers, blank line, CRLF-terminated.
pub fn response_head(version: Version, status: StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let mut head = status_line(version, status).into_bytes();
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// `-v`: an informational line.
pub fn info(line: impl std::fmt::Display) {
    eprintln!("* {line}");
}

/// `-v`: where the response came from and, over TLS, the session and the server's chain in
/// the shape of Node's pinning example (subject, SHA-256 fingerprint, public key pin), with
/// the trust anchor from --cacert appended when the server did not send it.
pub fn connection(
    uri: &Uri,
    remote: std::net::SocketAddr,
    reused: bool,
    tls: Option<&TlsInfo>,
    anchors: &[PeerCertificate],
) {
    let host = uri.host().unwrap_or("");
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    if reused {
        info(format_args!(
            "Re-using existing connection to {host} ({}) port {port}",
            remote.ip()
        ));
        return;
    }
    info(format_args!(
        "Connected to {host} ({}) port {port}",
        remote.ip()
    ));
    let Some(tls) = tls else {
        return;
    };
    info(format_args!("TLS version: {}", tls.version()));
    info(format_args!("Cipher: {}", tls.cipher_suite()));
    info(format_args!(
        "ALPN: {}",
        tls.alpn()
            .unwrap_or("none (server did not agree to a protocol)")
    ));
    info(format_args!(
        "Session resumed: {}",
        if tls.is_resumed() { "yes" } else { "no" }
    ));
    let mut chain: Vec<(&PeerCertificate, &str)> =
        tls.peer_certificates().iter().map(|c| (c, "")).collect();
    if let Some(&(last, _)) = chain.last() {
        if last.subject() != last.issuer() {
            if let Some(anchor) = anchors.iter().find(|a| a.subject() == last.issuer()) {
                chain.push((
                    anchor,
                    " (trust anchor from --cacert, not sent by the server)",
                ));
            }
        }
    }
    info(format_args!(
        "Server certificate chain ({} certificates, leaf first):",
        chain.len()
    ));
    for (i, (cert, note)) in chain.iter().enumerate() {
        eprint!("{}", certificate(i, cert, note));
    }
}

fn common_name(name: &portcullis::tls::DistinguishedName) -> String {
    match name.get("CN") {
        Some(cn) => cn.to_owned(),
        None => format!("(no CN) {name}"),
    }
}

fn certificate(index: usize, cert: &PeerCertificate, note: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "* [{index}] Subject Common Name: {}{note}",
        common_name(cert.subject())
    );
    let _ = writeln!(
        out,
        "*   Issuer Common Name: {}",
        common_name(cert.issuer())
    );
    let _ = writeln!(
        out,
        "*   Validity: {} → {}",
        cert.valid_from(),
        cert.valid_to()
    );
    let _ = writeln!(
        out,
        "*   Certificate SHA256 fingerprint: {}",
        cert.fingerprint256()
    );
    let _ = writeln!(out, "*   Public key ping-sha256: {}", cert.pin_sha256());
    out
}

/// `-v`: the request head as sent, curl's `> ` lines (the Host, Connection and
/// Content-Length the client adds included).
pub fn request(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &[(HeaderName, HeaderValue)],
    body_len: Option<usize>,
) {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    eprintln!("> {method} {target} {}", version_str(version));
    let has = |name: &str| headers.iter().any(|(n, _)| n == name);
    if !has("host") {
        if let Some(authority) = uri.authority() {
            eprintln!("> Host: {authority}");
        }
    }
    for (name, value) in headers {
        eprintln!(
            "> {}: {}",
            title_case(name),
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    if let Some(len) = body_len {
        if !has("content-length") && (len > 0 || !matches!(*method, Method::GET | Method::HEAD)) {
            eprintln!("> Content-Length: {len}");
        }
    }
    if version < Version::HTTP_2 && !has("connection") {
        eprintln!("> Connection: keep-alive");
    }
    eprintln!(">");
}

/// `-v`: the response head, curl's `< ` lines.
pub fn response(version: Version, status: StatusCode, headers: &HeaderMap) {
    eprintln!("< {}", status_line(version, status));
    for (name, value) in headers {
        eprintln!("< {name}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
    eprintln!("<");
}

/// `user-agent` → `User-Agent`, as the names were most likely typed.
fn title_case(name: &HeaderName) -> String {
    let mut out = String::with_capacity(name.as_str().len());
    let mut upper = true;
    for c in name.as_str().chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// The progress line on stderr for a download to a file: bytes so far, the total when known,
/// the rate. Drawn only when stderr is a terminal, at most ten times a second.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    total: Option<u64>,
    done: u64,
    start: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    pub fn new(enabled: bool, total: Option<u64>) -> Self {
        Self {
            enabled: enabled && io::stderr().is_terminal(),
            total,
            done: 0,
            start: Instant::now(),
            drawn: None,
        }
    }

    pub fn add(&mut self, n: usize) {
        self.done += n as u64;
        if self.enabled
            && self
                .drawn
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(100))
        {
            self.draw();
        }
    }

    pub fn finish(&mut self) {
        if self.enabled {
            self.draw();
            eprintln!();
        }
    }

    fn draw(&mut self) {
        self.drawn = Some(Instant::now());
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = bytes(self.done as f64 / secs);
        let line = match self.total {
            Some(total) if total > 0 => format!(
                "{} / {} ({:.0}%)  {rate}/s",
                bytes(self.done as f64),
                bytes(total as f64),
                self.done as f64 * 100.0 / total as f64
            ),
            _ => format!("{}  {rate}/s", bytes(self.done as f64)),
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r{line:<48}");
        let _ = err.flush();
    }
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_sizes() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("5"));
        assert_eq!(
            response_head(Version::HTTP_11, StatusCode::OK, &headers),
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(
            status_line(Version::HTTP_2, StatusCode::NOT_FOUND),
            "HTTP/2 404"
        );
        assert_eq!(
            title_case(&HeaderName::from_static("user-agent")),
            "User-Agent"
        );
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}

//! The access log: one line per request once its response body has gone (or the client left),
//! in `text`, `json` or `combined` (Apache/nginx) format, to stderr or a file that SIGUSR1
//! reopens (for logrotate) and that is rotated to `FILE.1` at a size when asked.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{HOST, REFERER, USER_AGENT};
use http::{Request, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use portcullis::ConnectionInfo;
use tower::util::BoxCloneService;
use tower::ServiceExt;

use crate::serve::{Body, BoxError, HttpService};

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `TIME PEER "METHOD TARGET VERSION" STATUS BYTES DURATION host=… tls=… ua="…" referer="…"`.
    Text,
    /// One JSON object per line.
    Json,
    /// Apache/nginx `combined`: `PEER - - [TIME] "REQUEST" STATUS BYTES "REFERER" "UA"`.
    Combined,
}

impl Format {
    pub fn parse(name: &str) -> Self {
        match name {
            "json" => Self::Json,
            "combined" => Self::Combined,
            _ => Self::Text,
        }
    }
}

/// Where lines go.
#[derive(Debug)]
enum Sink {
    Stderr,
    File {
        path: PathBuf,
        file: Mutex<(File, u64)>,
        max_size: Option<u64>,
    },
}

/// An open access log. Cheap to share.
#[derive(Debug)]
pub struct AccessLog {
    format: Format,
    sink: Sink,
}

impl AccessLog {
    /// `-` for stderr, `off` for none, else a file appended to (created mode 0640).
    pub fn open(
        destination: &str,
        format: Format,
        max_size: Option<u64>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let sink = match destination {
            "off" => return Ok(None),
            "-" => Sink::Stderr,
            path => {
                let path = PathBuf::from(path);
                let file = open_append(&path)
                    .with_context(|| format!("--access-log {}", path.display()))?;
                let len = file.metadata().map_or(0, |m| m.len());
                Sink::File {
                    path,
                    file: Mutex::new((file, len)),
                    max_size,
                }
            }
        };
        Ok(Some(Arc::new(Self { format, sink })))
    }

    /// Opens the file again by its name (after logrotate moved it away).
    pub fn reopen(&self) -> io::Result<()> {
        if let Sink::File { path, file, .. } = &self.sink {
            let fresh = open_append(path)?;
            let len = fresh.metadata().map_or(0, |m| m.len());
            *file.lock().unwrap_or_else(|e| e.into_inner()) = (fresh, len);
        }
        Ok(())
    }

    fn write(&self, line: &str) {
        match &self.sink {
            Sink::Stderr => {
                let _ = io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::File {
                path,
                file,
                max_size,
            } => {
                let mut guard = file.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(max) = max_size {
                    if guard.1 > 0 && guard.1 + line.len() as u64 > *max {
                        let mut rotated = path.clone().into_os_string();
                        rotated.push(".1");
                        let renamed = std::fs::rename(path, &rotated);
                        match renamed.and_then(|()| open_append(path)) {
                            Ok(fresh) => *guard = (fresh, 0),
                            Err(e) => {
                                tracing::warn!("access log {}: cannot rotate: {e}", path.display())
                            }
                        }
                    }
                }
                match guard.0.write_all(line.as_bytes()) {
                    Ok(()) => guard.1 += line.len() as u64,
                    Err(e) => tracing::warn!("access log {}: {e}", path.display()),
                }
            }
        }
    }
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    options.open(path)
}

/// What is known of a request when it arrives.
struct Record {
    log: Arc<AccessLog>,
    start: Instant,
    peer: Option<std::net::SocketAddr>,
    tls: Option<&'static str>,
    method: http::Method,
    target: String,
    version: Version,
    host: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    status: u16,
    bytes: u64,
}

/// Wraps `inner` so that each request is logged once its response body has gone.
pub fn layer(inner: HttpService, log: Arc<AccessLog>) -> HttpService {
    BoxCloneService::new(tower::service_fn(move |req: Request<Incoming>| {
        let header = |name| {
            req.headers()
                .get(name)
                .map(|v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let info = req.extensions().get::<ConnectionInfo>();
        let mut record = Record {
            log: log.clone(),
            start: Instant::now(),
            peer: info.map(ConnectionInfo::peer_addr),
            tls: info.and_then(|i| i.tls()).map(|t| t.version()),
            method: req.method().clone(),
            target: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().to_string(), |p| p.as_str().to_owned()),
            version: req.version(),
            host: header(HOST).or_else(|| req.uri().authority().map(|a| a.to_string())),
            user_agent: header(USER_AGENT),
            referer: header(REFERER),
            status: 0,
            bytes: 0,
        };
        let inner = inner.clone();
        async move {
            match inner.oneshot(req).await {
                Ok(res) => {
                    record.status = res.status().as_u16();
                    Ok(res.map(|body| {
                        LoggedBody {
                            inner: body,
                            record: Some(record),
                        }
                        .boxed_unsync()
                    }))
                }
                Err(error) => {
                    record.status = 500;
                    drop(record);
                    Err(error)
                }
            }
        }
    }))
}

/// A response body that counts what it hands over and logs the request when it is dropped:
/// after its last frame, or when the client went away first.
struct LoggedBody {
    inner: Body,
    record: Option<Record>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(record)) = (frame.data_ref(), self.record.as_mut()) {
                record.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        drop(self.record.take());
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let line = self.line();
        self.log.write(&line);
    }
}

impl Record {
    fn line(&self) -> String {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        let version = version_name(self.version);
        let peer = self.peer.map(|p| p.to_string());
        let mut line = String::with_capacity(256);
        match self.log.format {
            Format::Text => {
                let _ = write!(
                    line,
                    "{} {} \"{} {} {version}\" {} {} {ms:.1}ms host={} tls={} ua={} referer={}",
                    rfc3339_now(),
                    peer.as_deref().unwrap_or("-"),
                    self.method,
                    escape(&self.target),
                    self.status,
                    self.bytes,
                    escape(self.host.as_deref().unwrap_or("-")),
                    self.tls.unwrap_or("-"),
                    quoted(self.user_agent.as_deref()),
                    quoted(self.referer.as_deref()),
                );
            }
            Format::Json => {
                let value = serde_json::json!({
                    "time": rfc3339_now(),
                    "peer": peer,
                    "method": self.method.as_str(),
                    "target": self.target,
                    "version": version,
                    "status": self.status,
                    "bytes": self.bytes,
                    "duration_ms": (ms * 1000.0).round() / 1000.0,
                    "host": self.host,
                    "tls": self.tls,
                    "user_agent": self.user_agent,
                    "referer": self.referer,
                });
                line = value.to_string();
            }
            Format::Combined => {
                let _ = write!(
                    line,
                    "{} - - [{}] \"{} {} {version}\" {} {} {} {}",
                    self.peer
                        .map_or_else(|| "-".to_owned(), |p| p.ip().to_canonical().to_string()),
                    clf_now(),
                    self.method,
                    escape(&self.target),
                    self.status,
                    self.bytes,
                    quoted(self.referer.as_deref()),
                    quoted(self.user_agent.as_deref()),
                );
            }
        }
        line.push('\n');
        line
    }
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// A client-supplied value in double quotes, `"-"` when absent; quotes, backslashes and
/// control bytes escaped (as nginx's `\xHH`), so a line cannot be forged.
fn quoted(value: Option<&str>) -> String {
    match value {
        None => "\"-\"".to_owned(),
        Some(v) => format!("\"{}\"", escape(v)),
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// `2026-12-01T20:55:01.123Z`.
fn rfc3339_now() -> String {
    let t = now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Common Log Format time: `01/Dec/2026:20:55:01 +0000`.
fn clf_now() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = now();
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_values_cannot_break_a_line() {
        assert_eq!(quoted(Some("a\"b\\c\nd")), "\"a\\x22b\\x5Cc\\x0Ad\"");
        assert_eq!(quoted(None), "\"-\"");
    }
}

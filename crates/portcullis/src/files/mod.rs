//! Static files as a tower `Service`: what `portcullis serve DIR` serves, and what an axum user
//! mounts under a route.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use portcullis::files::StaticFiles;
//! let files = StaticFiles::builder("./public").spa_fallback("index.html").build()?;
//! let app: axum::Router = axum::Router::new().nest_service("/static", files);
//! # let _ = app; Ok(()) }
//! ```
//!
//! The common case is fast: a small file (up to [`SMALL_FILE`]) is read whole, kept in a
//! bounded in-memory cache and checked against the disk at most every
//! [`revalidate_after`](StaticFilesBuilder::revalidate_after) (a changed file is served fresh
//! within that time), so a hit costs no system call and no blocking-pool hop, and its head and
//! body leave in one TLS record. Larger files are read in 256 KiB chunks on the blocking pool.
//!
//! Also: `index.html` for directories (and a redirect to the trailing slash), weak ETags and
//! `Last-Modified` with `304`s, one `Range` (`206`/`416`; several ranges get the whole file),
//! zstd/br/gzip by `Accept-Encoding` for compressible types (a fresher precompressed sibling
//! `file.br`/`.zst`/`.gz` wins; small files' compressed bytes are cached), `charset=utf-8` on
//! text types, an SPA fallback, `404.html`, directory listings, CORS, `Cache-Control`, and
//! refusal of dotfiles and of symlinks leading out of the root unless allowed.

mod body;
mod cache;
mod compress;
mod failure;
mod listing;
mod mime;
mod range;
mod resolve;

use std::convert::Infallible;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    ACCEPT, ACCEPT_ENCODING, ACCEPT_RANGES, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED,
    LOCATION, RANGE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

pub use body::FileBody;
use cache::{Cache, Entry};
use compress::Encoding;
use failure::{Failure, FailureLog};
use mime::Kind;
use range::Ranged;

/// Files up to this size are read whole (and cached when they fit the cache).
pub const SMALL_FILE: u64 = 256 * 1024;

/// How responses may be cached by clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CacheControl {
    /// `no-cache`: keep, but revalidate every time (a 304 is cheap). The default.
    #[default]
    Revalidate,
    /// `public, max-age=N`.
    MaxAge(Duration),
    /// `public, max-age=31536000, immutable` for fingerprinted names (`app.3f9a1c2b.js`,
    /// `chunk-5d41402abc4b.css`), `no-cache` for the rest.
    ImmutableFingerprinted,
    /// No `Cache-Control` header.
    None,
}

/// Serves the files under a directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    root_canonical: PathBuf,
    fallback: Option<String>,
    browse: bool,
    cache_control: CacheControl,
    cors: Option<HeaderValue>,
    dotfiles: bool,
    follow_symlinks: bool,
    compression: bool,
    cache: Option<Cache>,
    failures: FailureLog,
}

/// Builds [`StaticFiles`]; see each setter for its default.
#[derive(Debug, Clone)]
pub struct StaticFilesBuilder {
    root: PathBuf,
    fallback: Option<String>,
    browse: bool,
    cache_control: CacheControl,
    cors: Option<HeaderValue>,
    dotfiles: bool,
    follow_symlinks: bool,
    compression: bool,
    cache_size: usize,
    revalidate_after: Duration,
}

impl StaticFiles {
    /// Starts a builder for the files under `root`.
    pub fn builder(root: impl Into<PathBuf>) -> StaticFilesBuilder {
        StaticFilesBuilder {
            root: root.into(),
            fallback: None,
            browse: false,
            cache_control: CacheControl::default(),
            cors: None,
            dotfiles: false,
            follow_symlinks: false,
            compression: true,
            cache_size: 8 * 1024 * 1024,
            revalidate_after: Duration::from_millis(500),
        }
    }
}

impl StaticFilesBuilder {
    /// For a single-page app: a request for a path that does not exist, asking for HTML
    /// (`Accept: text/html`) and not looking like an asset (no `.` in its last segment), gets
    /// this file (relative to the root) with `200`. Default: none.
    pub fn spa_fallback(mut self, file: impl Into<String>) -> Self {
        self.fallback = Some(file.into());
        self
    }

    /// List directories without an `index.html` (HTML, or JSON for `Accept:
    /// application/json`). Default: off (such a directory is a 404).
    pub fn browse(mut self, enabled: bool) -> Self {
        self.browse = enabled;
        self
    }

    /// `Cache-Control` on files. Default: [`CacheControl::Revalidate`].
    pub fn cache_control(mut self, policy: CacheControl) -> Self {
        self.cache_control = policy;
        self
    }

    /// `Access-Control-Allow-Origin` on every response (`"*"` or an origin), and answers to
    /// CORS preflight `OPTIONS` requests. Default: none.
    pub fn cors(mut self, origin: HeaderValue) -> Self {
        self.cors = Some(origin);
        self
    }

    /// Serve names starting with `.` (`.env`, `.git/…`). `.well-known` is always served.
    /// Default: off (404).
    pub fn dotfiles(mut self, allow: bool) -> Self {
        self.dotfiles = allow;
        self
    }

    /// Serve files reached through symlinks that lead out of the root. Default: off (404).
    pub fn follow_symlinks(mut self, follow: bool) -> Self {
        self.follow_symlinks = follow;
        self
    }

    /// Compress compressible types for clients that accept zstd, br or gzip. Default: on.
    pub fn compression(mut self, enabled: bool) -> Self {
        self.compression = enabled;
        self
    }

    /// The memory the small-file cache may hold, compressed copies included; zero disables it.
    /// A file over a quarter of it is not cached. Default: 8 MiB.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// How long a cached file is served without looking at the disk again (nginx's
    /// `open_file_cache_valid`). Default: 500 ms.
    pub fn revalidate_after(mut self, interval: Duration) -> Self {
        self.revalidate_after = interval;
        self
    }

    /// Builds the service.
    ///
    /// # Errors
    /// The root is not a readable directory.
    pub fn build(self) -> crate::Result<StaticFiles> {
        let root_canonical = std::fs::canonicalize(&self.root)
            .map_err(|e| crate::Error::io("cannot serve the directory", e).with_path(&self.root))?;
        if !root_canonical.is_dir() {
            return Err(crate::Error::config("not a directory").with_path(&self.root));
        }
        Ok(StaticFiles {
            inner: Arc::new(Inner {
                root: self.root,
                root_canonical,
                fallback: self.fallback,
                browse: self.browse,
                cache_control: self.cache_control,
                cors: self.cors,
                dotfiles: self.dotfiles,
                follow_symlinks: self.follow_symlinks,
                compression: self.compression,
                cache: (self.cache_size > 0)
                    .then(|| Cache::new(self.cache_size, self.revalidate_after)),
                failures: FailureLog::default(),
            }),
        })
    }
}

impl<B> tower_service::Service<Request<B>> for StaticFiles {
    type Response = Response<FileBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<FileBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Answers at once: small files and metadata are read inline (page-cached files take
    /// microseconds), large files are read by the body on the blocking pool.
    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.inner.respond(
            req.method(),
            req.uri(),
            req.headers(),
        )))
    }
}

/// A file's validators: a weak ETag from its size and modification time, and `Last-Modified`.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    etag: HeaderValue,
    last_modified: HeaderValue,
    modified: SystemTime,
}

impl Validators {
    fn new(len: u64, modified: SystemTime) -> Option<Self> {
        let since_epoch = modified.duration_since(UNIX_EPOCH).ok()?;
        let etag = format!(
            "W/\"{:x}-{:x}.{:x}\"",
            len,
            since_epoch.as_secs(),
            since_epoch.subsec_nanos()
        );
        Some(Self {
            etag: HeaderValue::from_str(&etag).ok()?,
            last_modified: cache::http_date(modified)?,
            modified,
        })
    }

    fn of(meta: &Metadata) -> Option<Self> {
        Self::new(meta.len(), meta.modified().ok()?)
    }
}

/// What a request asked for, as far as the response depends on it.
struct Asked<'a> {
    head: bool,
    path: &'a str,
    headers: &'a HeaderMap,
}

impl Inner {
    fn respond(&self, method: &Method, uri: &http::Uri, headers: &HeaderMap) -> Response<FileBody> {
        if method == Method::OPTIONS && self.cors.is_some() {
            return self.preflight(headers);
        }
        if method != Method::GET && method != Method::HEAD {
            let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return self.finish(res);
        }
        let asked = Asked {
            head: method == Method::HEAD,
            path: uri.path(),
            headers,
        };
        if let Some(cache) = &self.cache {
            if let Some(entry) = cache.get(asked.path) {
                if cache.is_fresh(&entry) || cache.revalidate(&entry) {
                    return self.cached(&entry, &asked, StatusCode::OK);
                }
                cache.remove(asked.path);
            }
        }
        self.lookup(&asked, uri.query())
    }

    /// The slow path: resolve, stat, read.
    fn lookup(&self, asked: &Asked<'_>, query: Option<&str>) -> Response<FileBody> {
        let Some(path) = resolve::resolve(&self.root, asked.path, self.dotfiles) else {
            return self.not_found(asked);
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                if !asked.path.ends_with('/') {
                    let mut location = format!("{}/", asked.path);
                    if let Some(query) = query {
                        location.push('?');
                        location.push_str(query);
                    }
                    let mut res = empty(StatusCode::PERMANENT_REDIRECT);
                    if let Ok(value) = HeaderValue::from_str(&location) {
                        res.headers_mut().insert(LOCATION, value);
                    }
                    return self.finish(res);
                }
                if !self.allowed(&path) {
                    return self.not_found(asked);
                }
                let index = path.join("index.html");
                match std::fs::metadata(&index) {
                    Ok(meta) if meta.is_file() => {
                        self.file(asked.path, &index, &meta, asked, StatusCode::OK)
                    }
                    _ if self.browse => self.listing(&path, asked, query),
                    _ => self.not_found(asked),
                }
            }
            Ok(meta) if meta.is_file() => {
                self.file(asked.path, &path, &meta, asked, StatusCode::OK)
            }
            Ok(_) => self.not_found(asked),
            Err(e) => self.failed(asked, &path, &e),
        }
    }

    /// Whether `path` may be served: inside the root once symlinks are followed, unless they
    /// may lead out.
    fn allowed(&self, path: &Path) -> bool {
        self.follow_symlinks || resolve::inside_root(path, &self.root_canonical)
    }

    /// Serves a file found on disk: read whole and cached when small, streamed when large.
    fn file(
        &self,
        key: &str,
        path: &Path,
        meta: &Metadata,
        asked: &Asked<'_>,
        status: StatusCode,
    ) -> Response<FileBody> {
        if !self.allowed(path) {
            return self.not_found(asked);
        }
        let Some(validators) = Validators::of(meta) else {
            return self.error(asked);
        };
        let kind = mime::kind_of(path);
        if meta.len() > SMALL_FILE {
            return self.stream(path, meta, validators, kind, asked, status);
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => return self.failed(asked, path, &e),
        };
        let validators = if bytes.len() as u64 == meta.len() {
            validators
        } else {
            // Changed between stat and read: describe what was read.
            match std::fs::metadata(path)
                .ok()
                .and_then(|m| Validators::of(&m))
            {
                Some(v) => v,
                None => return self.error(asked),
            }
        };
        let entry = Arc::new(Entry::new(
            path.to_path_buf(),
            Bytes::from(bytes),
            validators,
            kind,
        ));
        if self.compression && kind.compressible {
            for encoding in Encoding::ALL {
                if let Some(sibling) =
                    self.fresher_sibling(path, encoding, entry.validators.modified)
                {
                    if let Ok(packed) = std::fs::read(&sibling) {
                        entry.set_precompressed(encoding, Bytes::from(packed));
                    }
                }
            }
        }
        if status == StatusCode::OK {
            if let Some(cache) = &self.cache {
                cache.insert(key, &entry);
            }
        }
        self.cached(&entry, asked, status)
    }

    /// `file.br` (etc.) when it exists and is at least as new as the file.
    fn fresher_sibling(
        &self,
        path: &Path,
        encoding: Encoding,
        modified: SystemTime,
    ) -> Option<PathBuf> {
        let mut name = path.file_name()?.to_os_string();
        name.push(".");
        name.push(encoding.extension());
        let sibling = path.with_file_name(name);
        let meta = std::fs::metadata(&sibling).ok()?;
        (meta.is_file() && meta.modified().ok()? >= modified).then_some(sibling)
    }

    /// A response from cached (or just read) bytes.
    fn cached(&self, entry: &Entry, asked: &Asked<'_>, status: StatusCode) -> Response<FileBody> {
        let v = &entry.validators;
        let len = entry.bytes.len() as u64;
        let mut encoding = None;
        let (status, body, content_range) = if status == StatusCode::OK {
            if not_modified(asked.headers, v) {
                return self.finish(self.not_modified(v, entry.kind, asked.path));
            }
            match self.range(asked.headers, v, len) {
                Ranged::Part(r) => (
                    StatusCode::PARTIAL_CONTENT,
                    entry.bytes.slice(r.start as usize..r.end as usize),
                    Some(content_range(&r, len)),
                ),
                Ranged::Unsatisfiable => return self.finish(unsatisfiable(len)),
                Ranged::Whole => {
                    let accepted = compress::accepted(asked.headers.get(ACCEPT_ENCODING));
                    let body = match self.negotiate(entry.kind, accepted, |e| {
                        entry.variant(e, self.cache.as_ref())
                    }) {
                        Some((e, packed)) => {
                            encoding = Some(e);
                            packed
                        }
                        None => entry.bytes.clone(),
                    };
                    (StatusCode::OK, body, None)
                }
            }
        } else {
            (status, entry.bytes.clone(), None)
        };
        let body_len = body.len();
        let mut res = Response::new(if asked.head {
            FileBody::empty()
        } else {
            FileBody::full(body)
        });
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(entry.kind.content_type),
        );
        if asked.head {
            h.insert(CONTENT_LENGTH, HeaderValue::from(body_len));
        }
        if status.is_success() {
            self.describe(h, v, entry.kind, asked.path);
        }
        if let Some(range) = content_range {
            h.insert(CONTENT_RANGE, range);
        }
        if let Some(e) = encoding {
            h.insert(CONTENT_ENCODING, e.header());
        }
        self.finish(res)
    }

    /// The first coding the client accepts that this kind is compressed with and `variant`
    /// has (smaller) bytes for.
    fn negotiate(
        &self,
        kind: Kind,
        accepted: [bool; 3],
        variant: impl Fn(Encoding) -> Option<Bytes>,
    ) -> Option<(Encoding, Bytes)> {
        if !self.compression || !kind.compressible {
            return None;
        }
        Encoding::ALL
            .into_iter()
            .filter(|e| accepted[e.index()])
            .find_map(|e| variant(e).map(|packed| (e, packed)))
    }

    /// A large file, read on the blocking pool as the body is sent.
    fn stream(
        &self,
        path: &Path,
        meta: &Metadata,
        v: Validators,
        kind: Kind,
        asked: &Asked<'_>,
        status: StatusCode,
    ) -> Response<FileBody> {
        if status == StatusCode::OK && not_modified(asked.headers, &v) {
            return self.finish(self.not_modified(&v, kind, asked.path));
        }
        let len = meta.len();
        let (mut source, mut offset, mut count, mut code, mut encoding, mut range_header) =
            (path.to_path_buf(), 0, len, status, None, None);
        match if status == StatusCode::OK {
            self.range(asked.headers, &v, len)
        } else {
            Ranged::Whole
        } {
            Ranged::Part(r) => {
                offset = r.start;
                count = r.end - r.start;
                code = StatusCode::PARTIAL_CONTENT;
                range_header = Some(content_range(&r, len));
            }
            Ranged::Unsatisfiable => return self.finish(unsatisfiable(len)),
            Ranged::Whole => {
                // Precompressed siblings only: a large file is not compressed on the fly.
                let accepted = compress::accepted(asked.headers.get(ACCEPT_ENCODING));
                if self.compression && kind.compressible {
                    for e in Encoding::ALL.into_iter().filter(|e| accepted[e.index()]) {
                        if let Some(sibling) = self.fresher_sibling(path, e, v.modified) {
                            if let Ok(m) = std::fs::metadata(&sibling) {
                                source = sibling;
                                count = m.len();
                                encoding = Some(e);
                                break;
                            }
                        }
                    }
                }
            }
        }
        let body = if asked.head {
            FileBody::empty()
        } else {
            match std::fs::File::open(&source) {
                Ok(file) => FileBody::file(file, offset, count),
                Err(e) => return self.failed(asked, &source, &e),
            }
        };
        let mut res = Response::new(body);
        *res.status_mut() = code;
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(kind.content_type));
        if asked.head {
            h.insert(CONTENT_LENGTH, HeaderValue::from(count));
        }
        if code.is_success() {
            self.describe(h, &v, kind, asked.path);
        }
        if let Some(range) = range_header {
            h.insert(CONTENT_RANGE, range);
        }
        if let Some(e) = encoding {
            h.insert(CONTENT_ENCODING, e.header());
        }
        self.finish(res)
    }

    /// `Range`, unless `If-Range` names another version (our ETags are weak, so only a date
    /// can match, RFC 9110 §13.1.5).
    fn range(&self, headers: &HeaderMap, v: &Validators, len: u64) -> Ranged {
        let Some(range) = headers.get(RANGE).and_then(|r| r.to_str().ok()) else {
            return Ranged::Whole;
        };
        if let Some(if_range) = headers.get(IF_RANGE).and_then(|h| h.to_str().ok()) {
            let matches = httpdate::parse_http_date(if_range.trim()).is_ok_and(|date| {
                httpdate::HttpDate::from(date) == httpdate::HttpDate::from(v.modified)
            });
            if !matches {
                return Ranged::Whole;
            }
        }
        range::ranged(range, len)
    }

    /// Validators, caching policy, `Accept-Ranges` and `Vary` of a successful file response.
    fn describe(&self, h: &mut HeaderMap, v: &Validators, kind: Kind, path: &str) {
        h.insert(ETAG, v.etag.clone());
        h.insert(LAST_MODIFIED, v.last_modified.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if self.compression && kind.compressible {
            h.insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
        if let Some(policy) = self.cache_control_for(path) {
            h.insert(CACHE_CONTROL, policy);
        }
    }

    fn cache_control_for(&self, path: &str) -> Option<HeaderValue> {
        match &self.cache_control {
            CacheControl::Revalidate => Some(HeaderValue::from_static("no-cache")),
            CacheControl::MaxAge(age) => {
                HeaderValue::from_str(&format!("public, max-age={}", age.as_secs())).ok()
            }
            CacheControl::ImmutableFingerprinted if is_fingerprinted(path) => Some(
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            CacheControl::ImmutableFingerprinted => Some(HeaderValue::from_static("no-cache")),
            CacheControl::None => None,
        }
    }

    fn not_modified(&self, v: &Validators, kind: Kind, path: &str) -> Response<FileBody> {
        let mut res = empty(StatusCode::NOT_MODIFIED);
        self.describe(res.headers_mut(), v, kind, path);
        res.headers_mut().remove(ACCEPT_RANGES);
        res
    }

    /// What a missing path gets: the SPA fallback for a page request, else `404.html` from
    /// the root, else a short text.
    fn not_found(&self, asked: &Asked<'_>) -> Response<FileBody> {
        if let Some(fallback) = &self.fallback {
            let last = asked.path.rsplit('/').next().unwrap_or_default();
            let wants_html = asked
                .headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("text/html"));
            if wants_html && !last.contains('.') {
                let key = format!("/{}", fallback.trim_start_matches('/'));
                if let Some(response) = self.page(&key, asked, StatusCode::OK) {
                    return response;
                }
            }
        }
        if let Some(response) = self.page("/404.html", asked, StatusCode::NOT_FOUND) {
            return response;
        }
        self.finish(text(StatusCode::NOT_FOUND, "404 not found\n"))
    }

    /// A page of the site (the SPA fallback, `404.html`) served with `status`.
    fn page(&self, key: &str, asked: &Asked<'_>, status: StatusCode) -> Option<Response<FileBody>> {
        if status == StatusCode::OK {
            if let Some(cache) = &self.cache {
                if let Some(entry) = cache.get(key) {
                    if cache.is_fresh(&entry) || cache.revalidate(&entry) {
                        return Some(self.cached(&entry, asked, status));
                    }
                }
            }
        }
        let path = resolve::resolve(&self.root, key, true)?;
        let meta = std::fs::metadata(&path).ok().filter(Metadata::is_file)?;
        Some(self.file(key, &path, &meta, asked, status))
    }

    fn listing(&self, dir: &Path, asked: &Asked<'_>, query: Option<&str>) -> Response<FileBody> {
        let (sort, descending) = listing::sort_from_query(query);
        let items = match listing::read(dir, self.dotfiles, sort, descending) {
            Ok(items) => items,
            Err(e) => return self.failed(asked, dir, &e),
        };
        let json = asked
            .headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/json"));
        let (content_type, body) = if json {
            ("application/json", listing::json(&items))
        } else {
            (
                "text/html; charset=utf-8",
                listing::html(asked.path, &items, sort, descending),
            )
        };
        let len = body.len();
        let mut res = Response::new(if asked.head {
            FileBody::empty()
        } else {
            FileBody::full(Bytes::from(body))
        });
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(VARY, HeaderValue::from_static("accept"));
        if asked.head {
            h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        self.finish(res)
    }

    fn error(&self, _asked: &Asked<'_>) -> Response<FileBody> {
        self.finish(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the file\n",
        ))
    }

    /// The answer to an I/O error on `path` (see `failure.rs`), logged at most once per
    /// interval when it is the server's trouble.
    fn failed(&self, asked: &Asked<'_>, path: &Path, e: &std::io::Error) -> Response<FileBody> {
        let failure = failure::classify(e);
        self.failures.record(failure, path, e);
        match failure {
            Failure::NotFound => self.not_found(asked),
            Failure::Forbidden => self.finish(text(StatusCode::FORBIDDEN, "403 forbidden\n")),
            Failure::Exhausted => {
                let mut res = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "503 service unavailable: the server is out of file descriptors or \
                     memory; try again shortly\n",
                );
                res.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("2"));
                self.finish(res)
            }
            Failure::Other => self.error(asked),
        }
    }

    fn preflight(&self, headers: &HeaderMap) -> Response<FileBody> {
        let mut res = empty(StatusCode::NO_CONTENT);
        let h = res.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        if let Some(asked) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        self.finish(res)
    }

    /// What every response carries: CORS.
    fn finish(&self, mut res: Response<FileBody>) -> Response<FileBody> {
        if let Some(origin) = &self.cors {
            res.headers_mut()
                .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if origin != "*" {
                res.headers_mut()
                    .append(VARY, HeaderValue::from_static("origin"));
            }
        }
        res
    }
}

/// `If-None-Match` (weak comparison) or, without it, `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, v: &Validators) -> bool {
    if let Some(list) = headers.get(IF_NONE_MATCH) {
        return etag_list_matches(list, &v.etag);
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| httpdate::parse_http_date(h.trim()).ok())
        .is_some_and(|since| {
            httpdate::HttpDate::from(v.modified) <= httpdate::HttpDate::from(since)
        })
}

/// Weak comparison (RFC 9110 §8.8.3.2) of `etag` against an `If-None-Match` list or `*`.
fn etag_list_matches(header: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = header.to_str() else {
        return false;
    };
    if list.trim() == "*" {
        return true;
    }
    let ours = entity_tags(etag.to_str().unwrap_or_default()).next();
    entity_tags(list).any(|tag| Some(tag) == ours)
}

/// The opaque tags of a comma-separated list of entity tags; stops at the first malformed one.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let tail = rest.strip_prefix("W/").unwrap_or(rest);
        let tail = tail.strip_prefix('"')?;
        let end = tail.find('"')?;
        rest = &tail[end + 1..];
        Some(&tail[..end])
    })
}

/// Whether a file name carries a content hash: a `.`- or `-`-separated part of 8 or more
/// characters mixing letters and digits (`app.3f9a1c2b.js`, `chunk-5d41402abc4b.css`).
fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.split(['.', '-', '_']).skip(1).any(|part| {
        part.len() >= 8
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
            && part.bytes().any(|b| b.is_ascii_digit())
            && part.bytes().any(|b| b.is_ascii_alphabetic())
    })
}

fn content_range(r: &std::ops::Range<u64>, len: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1))
        .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

fn unsatisfiable(len: u64) -> Response<FileBody> {
    let mut res = empty(StatusCode::RANGE_NOT_SATISFIABLE);
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
        res.headers_mut().insert(CONTENT_RANGE, value);
    }
    res
}

fn empty(status: StatusCode) -> Response<FileBody> {
    let mut res = Response::new(FileBody::empty());
    *res.status_mut() = status;
    res
}

fn text(status: StatusCode, message: &'static str) -> Response<FileBody> {
    let mut res = Response::new(FileBody::full(Bytes::from_static(message.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_over_lists() {
        let ours = HeaderValue::from_static("W/\"3e8-1.2\"");
        let hv = HeaderValue::from_static;
        assert!(etag_list_matches(&hv("W/\"3e8-1.2\""), &ours));
        assert!(etag_list_matches(&hv("\"3e8-1.2\""), &ours));
        assert!(etag_list_matches(&hv("\"x\", W/\"3e8-1.2\""), &ours));
        assert!(etag_list_matches(&hv(" * "), &ours));
        assert!(!etag_list_matches(&hv("W/\"3e8-1.3\""), &ours));
        assert!(!etag_list_matches(&hv("3e8-1.2"), &ours));
    }

    #[test]
    fn fingerprinted_names() {
        assert!(is_fingerprinted("/assets/app.3f9a1c2b.js"));
        assert!(is_fingerprinted("/chunk-5d41402abc4b.css"));
        assert!(is_fingerprinted("/index-BxY7a9k2.js"));
        assert!(!is_fingerprinted("/index.html"));
        assert!(!is_fingerprinted("/jquery-3.7.1.min.js"));
        assert!(!is_fingerprinted("/readme-firstpage.txt"));
    }
}

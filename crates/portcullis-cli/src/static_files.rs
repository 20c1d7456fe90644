//! Static files: tower-http's `ServeDir` (index.html, Range, Last-Modified, content types,
//! no listings, no `..`), plus what it lacks: a weak ETag from the file's size and mtime,
//! `If-None-Match` answered with 304, and `If-Range` (which `ServeDir` ignores).

use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::util::BoxCloneService;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::serve::{full, BoxError, HttpService};

/// Serves the files under `root`.
pub fn service(root: PathBuf) -> HttpService {
    let root: Arc<Path> = root.into();
    let serve_dir = ServeDir::new(&*root).append_index_html_on_directories(true);
    BoxCloneService::new(tower::service_fn(move |req: Request<Incoming>| {
        let file = resolve(&root, req.uri().path());
        let serve_dir = serve_dir.clone();
        async move { Ok::<_, BoxError>(serve(serve_dir, file, req).await) }
    }))
}

async fn serve(
    serve_dir: ServeDir,
    file: Option<PathBuf>,
    mut req: Request<Incoming>,
) -> Response<crate::serve::Body> {
    let conditional = req.method() == Method::GET || req.method() == Method::HEAD;
    let get = req.method() == Method::GET;
    let validator = match file {
        Some(path) if conditional => tokio::fs::metadata(&path)
            .await
            .ok()
            .filter(Metadata::is_file)
            .and_then(|meta| Validator::new(&meta)),
        _ => None,
    };

    if conditional {
        let headers = req.headers_mut();
        if let Some(v) = &validator {
            if let Some(if_none_match) = headers.get(IF_NONE_MATCH) {
                if etag_list_matches(if_none_match, &v.etag) {
                    return not_modified(v);
                }
                // RFC 9110 §13.2.2: with If-None-Match, If-Modified-Since is ignored.
                headers.remove(IF_MODIFIED_SINCE);
            }
        }
        if headers.contains_key(IF_RANGE) && !if_range_passes(headers, validator.as_ref()) {
            // The representation changed (or cannot be compared): send all of it.
            headers.remove(RANGE);
        }
    }

    let res = match serve_dir.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let (mut parts, body) = res.into_parts();
    if let Some(v) = &validator {
        let status = parts.status;
        let same_file = parts.headers.get(LAST_MODIFIED) == Some(&v.last_modified);
        if (status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) && same_file {
            parts.headers.insert(ETAG, v.etag.clone());
        } else if status == StatusCode::NOT_MODIFIED {
            add_validators(&mut parts.headers, v);
        }
    }
    if parts.status.is_success() || parts.status == StatusCode::NOT_MODIFIED {
        // A development server: let caches keep files but always revalidate (cheap: 304).
        parts
            .headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
    }
    let small = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len <= READY_BODY_LIMIT);
    if get && small {
        // Read it all before answering: head and body then leave in one TLS record and one
        // write (ServeDir streams the file, and the head would go out alone while the first
        // read runs).
        return match body.collect().await {
            Ok(collected) => Response::from_parts(parts, full(collected.to_bytes())),
            Err(e) => {
                tracing::warn!(error = %e, "reading a file failed");
                crate::serve::text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n")
            }
        };
    }
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

/// Files up to this size are read whole before the response starts: one TLS record holds
/// 16 KiB, so such a file and its head leave together.
const READY_BODY_LIMIT: usize = 16 * 1024 - 1024;

/// The file `ServeDir` will serve for `request_path`, by its rules: percent-decoded, only
/// normal components (anything else is refused), and `index.html` for a directory asked for
/// with a trailing slash. `None` when it will not serve a file from disk.
fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(request_path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if request_path.ends_with('/') {
        path.push("index.html");
    }
    Some(path)
}

/// A file's validators: a weak ETag from its size and modification time, and the
/// Last-Modified `ServeDir` will send for it.
#[derive(Debug)]
struct Validator {
    etag: HeaderValue,
    last_modified: HeaderValue,
    modified: SystemTime,
}

impl Validator {
    fn new(meta: &Metadata) -> Option<Self> {
        let modified = meta.modified().ok()?;
        let since_epoch = modified.duration_since(UNIX_EPOCH).ok()?;
        let etag = format!(
            "W/\"{:x}-{:x}.{:x}\"",
            meta.len(),
            since_epoch.as_secs(),
            since_epoch.subsec_nanos()
        );
        Some(Self {
            etag: HeaderValue::from_str(&etag).ok()?,
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified)).ok()?,
            modified,
        })
    }
}

fn not_modified(v: &Validator) -> Response<crate::serve::Body> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::NOT_MODIFIED;
    add_validators(res.headers_mut(), v);
    res
}

fn add_validators(headers: &mut HeaderMap, v: &Validator) {
    headers.insert(ETAG, v.etag.clone());
    headers.insert(LAST_MODIFIED, v.last_modified.clone());
}

/// Weak comparison (RFC 9110 §8.8.3.2) of `etag` against an `If-None-Match` list or `*`.
fn etag_list_matches(header: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = header.to_str() else {
        return false;
    };
    if list.trim() == "*" {
        return true;
    }
    let ours = opaque_tag(etag.to_str().unwrap_or_default());
    entity_tags(list).any(|(_, tag)| Some(tag) == ours)
}

/// `If-Range` passes only for a strong validator that matches: our ETags are weak, so only
/// an HTTP date equal to the file's Last-Modified does (RFC 9110 §13.1.5).
fn if_range_passes(headers: &HeaderMap, validator: Option<&Validator>) -> bool {
    let (Some(value), Some(v)) = (
        headers.get(IF_RANGE).and_then(|h| h.to_str().ok()),
        validator,
    ) else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return false;
    }
    match httpdate::parse_http_date(value) {
        Ok(date) => httpdate::HttpDate::from(date) == httpdate::HttpDate::from(v.modified),
        Err(_) => false,
    }
}

/// The opaque part (between the quotes) of a single entity tag.
fn opaque_tag(etag: &str) -> Option<&str> {
    entity_tags(etag).next().map(|(_, tag)| tag)
}

/// Parses a comma-separated list of entity tags into (weak, opaque-tag) pairs; stops at the
/// first malformed one.
fn entity_tags(list: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let (weak, tail) = match rest.strip_prefix("W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        let tail = tail.strip_prefix('"')?;
        let end = tail.find('"')?;
        rest = &tail[end + 1..];
        Some((weak, &tail[..end]))
    })
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
    fn resolves_like_serve_dir() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.txt"),
            Some(PathBuf::from("/srv/a/b.txt"))
        );
        assert_eq!(
            resolve(root, "/a/"),
            Some(PathBuf::from("/srv/a/index.html"))
        );
        assert_eq!(resolve(root, "/a%20b"), Some(PathBuf::from("/srv/a b")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/%2e%2e/%2e%2e/x"), None);
    }
}

//! Flag values of `portcullis get` (headers, --resolve, --pin, --tls-min) and URL handling:
//! the default scheme and resolving a redirect's `Location` against the current URL.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, HeaderValue};
use http::Uri;
use portcullis::tls::TlsVersion;

/// One `-H` value: `Name: value` adds (or replaces a default), `Name:` removes a default
/// header, `Name;` sends the header with an empty value (curl's rules).
#[derive(Debug, Clone)]
pub struct HeaderArg {
    pub name: HeaderName,
    /// `None`: remove the header.
    pub value: Option<HeaderValue>,
}

pub fn header(value: &str) -> Result<HeaderArg, String> {
    let (name, value) = match value.split_once(':') {
        Some((name, rest)) => {
            let rest = rest.trim();
            (name, (!rest.is_empty()).then_some(rest))
        }
        None => match value.strip_suffix(';') {
            Some(name) => (name, Some("")),
            None => {
                return Err(
                    "expected 'Name: value' ('Name:' removes a header, 'Name;' sends it empty)"
                        .to_owned(),
                )
            }
        },
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name {:?}", name.trim()))?;
    let value = value
        .map(|v| HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {name}")))
        .transpose()?;
    Ok(HeaderArg { name, value })
}

/// One `--resolve HOST:PORT:ADDR`.
#[derive(Debug, Clone)]
pub struct ResolveArg {
    pub host: String,
    pub port: u16,
    pub addr: SocketAddr,
}

pub fn resolve(value: &str) -> Result<ResolveArg, String> {
    const USAGE: &str =
        "expected HOST:PORT:ADDR, e.g. localhost:8443:127.0.0.1 or example.test:443:[::1]";
    let (host, rest) = if let Some(bracketed) = value.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']').ok_or(USAGE)?;
        (host, rest.strip_prefix(':').ok_or(USAGE)?)
    } else {
        value.split_once(':').ok_or(USAGE)?
    };
    let (port, addr) = rest.split_once(':').ok_or(USAGE)?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port {port:?}: {USAGE}"))?;
    // curl accepts a list of addresses; the first is used.
    let addr = addr.split(',').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("bad address {addr:?}: {USAGE}"))?;
    if host.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(ResolveArg {
        host: host.to_ascii_lowercase(),
        port,
        addr: SocketAddr::new(ip, port),
    })
}

/// One `--pin` value: `sha256//BASE64`, several separated by `;` as curl allows.
#[derive(Debug, Clone)]
pub struct PinArg(pub Vec<String>);

pub fn pin(value: &str) -> Result<PinArg, String> {
    let mut pins = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let b64 = part
            .strip_prefix("sha256//")
            .ok_or_else(|| format!("{part:?}: expected sha256//BASE64 (a public key pin)"))?;
        let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
        let body = b64.strip_suffix('=').unwrap_or("");
        if b64.len() != 44 || !body.chars().all(alphabet) {
            return Err(format!(
                "{part:?}: the pin must be the base64 of a SHA-256 digest (44 characters ending in '=')"
            ));
        }
        pins.push(part.to_owned());
    }
    if pins.is_empty() {
        return Err("expected sha256//BASE64".to_owned());
    }
    Ok(PinArg(pins))
}

/// `--tls-min`: `1.2`, `1.3`, `TLSv1.2` or `TLSv1.3`.
pub fn tls_version(value: &str) -> Result<TlsVersion, String> {
    value.parse::<TlsVersion>().map_err(|e| e.to_string())
}

/// The URL to request: `https://` is assumed when the scheme is missing; only `http` and
/// `https` with a host are accepted.
pub fn url(value: &str) -> Result<Uri, String> {
    let with_scheme = if has_scheme(value) {
        value.to_owned()
    } else {
        format!("https://{value}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e| format!("bad URL {value:?}: {e}"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        Some(other) => {
            return Err(format!(
                "bad URL {value:?}: unsupported scheme {other:?} (http or https)"
            ))
        }
        None => return Err(format!("bad URL {value:?}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("bad URL {value:?}: no host"));
    }
    Ok(uri)
}

/// True for `scheme://…` (so `localhost:8443/x` has none).
fn has_scheme(value: &str) -> bool {
    value
        .split_once("://")
        .is_some_and(|(scheme, _)| is_scheme(scheme))
}

/// True for any `scheme:…`, as a Location is read (RFC 3986 §3.1).
fn has_any_scheme(value: &str) -> bool {
    value
        .split_once(':')
        .is_some_and(|(scheme, _)| is_scheme(scheme))
}

fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Resolves a `Location` value against the URL that answered with it (RFC 3986 §5.2). The
/// fragment is dropped: it is never sent.
pub fn join(base: &Uri, location: &str) -> Result<Uri, String> {
    let location = location.trim();
    let location = location.split('#').next().unwrap_or(location);
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map_or("", |a| a.as_str());
    let joined = if has_any_scheme(location) {
        location.to_owned()
    } else if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        let (path, query) = split_query(location);
        format!("{scheme}://{authority}{}{query}", remove_dots(path))
    } else if location.is_empty() {
        format!("{scheme}://{authority}{}", path_and_query(base))
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        let (path, query) = split_query(location);
        format!(
            "{scheme}://{authority}{}{query}",
            remove_dots(&format!("{dir}/{path}"))
        )
    };
    let joined = encode_unsafe(&joined);
    let uri: Uri = joined
        .parse()
        .map_err(|e| format!("bad redirect Location {location:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(format!(
            "bad redirect Location {location:?}: only http and https URLs are followed"
        )),
    }
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Percent-encodes what servers sometimes put raw in a Location (spaces, non-ASCII).
fn encode_unsafe(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_curl() {
        let h = header("X-Thing:  a value ").unwrap();
        assert_eq!(h.name.as_str(), "x-thing");
        assert_eq!(h.value.unwrap(), "a value");
        assert!(header("User-Agent:").unwrap().value.is_none());
        assert_eq!(header("X-Empty;").unwrap().value.unwrap(), "");
        assert!(header("no colon").is_err());
        assert!(header("bad name: v").is_err());
    }

    #[test]
    fn resolve_values() {
        let r = resolve("LocalHost:8443:127.0.0.1").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("localhost", 8443));
        assert_eq!(r.addr, "127.0.0.1:8443".parse().unwrap());
        let r = resolve("example.test:443:[::1]").unwrap();
        assert_eq!(r.addr, "[::1]:443".parse().unwrap());
        assert!(resolve("example.test:443").is_err());
        assert!(resolve("example.test:x:127.0.0.1").is_err());
        assert!(resolve("example.test:443:nope").is_err());
    }

    #[test]
    fn pins() {
        let good = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(pin(good).unwrap().0, [good]);
        assert_eq!(pin(&format!("{good};{good}")).unwrap().0.len(), 2);
        assert!(pin("AAAA").is_err());
        assert!(pin("sha256//short=").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            url("localhost:8443/x").unwrap().to_string(),
            "https://localhost:8443/x"
        );
        assert!(url("ftp://example.test/").is_err());
        assert!(url("https:///x").is_err());
        let base: Uri = "https://a.test:8443/dir/page?q=1".parse().unwrap();
        let j = |l: &str| join(&base, l).unwrap().to_string();
        assert_eq!(j("http://b.test/x"), "http://b.test/x");
        assert_eq!(j("//b.test/y"), "https://b.test/y");
        assert_eq!(j("/root?z=2#frag"), "https://a.test:8443/root?z=2");
        assert_eq!(j("other"), "https://a.test:8443/dir/other");
        assert_eq!(j("../up/./there"), "https://a.test:8443/up/there");
        assert_eq!(j("?r=3"), "https://a.test:8443/dir/page?r=3");
        assert_eq!(j("/with space"), "https://a.test:8443/with%20space");
        assert!(join(&base, "mailto:x@y.test").is_err());
    }
}

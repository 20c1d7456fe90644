//! HTTPS proxies through HTTP CONNECT: from `HTTPS_PROXY`/`https_proxy` with `NO_PROXY`, or
//! given explicitly; credentials in the URL become `Proxy-Authorization: Basic`.

use base64::Engine as _;

use crate::error::{Error, Result};

/// An HTTP proxy reached with CONNECT.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) authorization: Option<String>,
    no_proxy: Vec<String>,
}

impl Proxy {
    /// A proxy from a URL like `http://user:pass@proxy.example:3128`.
    ///
    /// # Errors
    /// A URL without a host, or with a scheme other than `http`.
    pub fn new(url: &str) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::config(format!("bad proxy URL {url:?}: {e}")))?;
        if uri.scheme_str().is_some_and(|s| s != "http") {
            return Err(Error::config(format!(
                "proxy URL {url:?}: only http:// proxies (CONNECT) are supported"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| Error::config(format!("proxy URL {url:?} has no host")))?;
        let (userinfo, hostport) = match authority.as_str().rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority.as_str()),
        };
        let hostport: http::uri::Authority = hostport
            .parse()
            .map_err(|e| Error::config(format!("bad proxy URL {url:?}: {e}")))?;
        let authorization = userinfo.map(|u| {
            let decoded = percent_decode(u);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(decoded)
            )
        });
        Ok(Self {
            host: hostport
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: hostport.port_u16().unwrap_or(80),
            authorization,
            no_proxy: Vec::new(),
        })
    }

    /// The proxy named by `HTTPS_PROXY` (or `https_proxy`), honouring `NO_PROXY`/`no_proxy`.
    /// `None` when unset or unusable.
    pub fn from_env() -> Option<Self> {
        let url = ["HTTPS_PROXY", "https_proxy"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
        let url = if url.contains("://") {
            url
        } else {
            format!("http://{url}")
        };
        let mut proxy = match Self::new(&url) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring HTTPS_PROXY");
                return None;
            }
        };
        if let Some(list) = ["NO_PROXY", "no_proxy"]
            .iter()
            .find_map(|k| std::env::var(k).ok())
        {
            proxy.no_proxy = list
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
        }
        Some(proxy)
    }

    /// Hosts that bypass the proxy, as in `NO_PROXY`: `*`, exact hosts or IPs, and domain
    /// suffixes (`example.com` and `.example.com` both cover `a.example.com`).
    pub fn no_proxy<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.no_proxy = hosts
            .into_iter()
            .map(|h| h.into().to_ascii_lowercase())
            .collect();
        self
    }

    /// True when a request to `host` goes through this proxy.
    pub(crate) fn applies_to(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        !self.no_proxy.iter().any(|entry| {
            let entry = entry.split(':').next().unwrap_or(entry);
            entry == "*" || {
                let suffix = entry.trim_start_matches('.');
                host == suffix || host.ends_with(&format!(".{suffix}"))
            }
        })
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials_and_no_proxy() {
        let p = Proxy::new("http://al%40ice:s3cret@proxy.test:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.test", 3128));
        assert_eq!(
            p.authorization.as_deref(),
            Some("Basic YWxAaWNlOnMzY3JldA==")
        );
        let p = p.no_proxy(["example.com", ".internal", "10.0.0.1"]);
        assert!(!p.applies_to("example.com"));
        assert!(!p.applies_to("a.example.com"));
        assert!(!p.applies_to("x.internal"));
        assert!(!p.applies_to("10.0.0.1"));
        assert!(p.applies_to("example.org"));
        assert!(p.applies_to("badexample.com"));
        assert!(!Proxy::new("http://p:1")
            .unwrap()
            .no_proxy(["*"])
            .applies_to("anything"));
        assert!(Proxy::new("socks5://p:1").is_err());
    }
}

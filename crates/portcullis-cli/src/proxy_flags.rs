//! The reverse-proxy flags of `portcullis serve`, mapped onto `portcullis::proxy`, and the
//! routing of paths between the proxies and DIR.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use portcullis::proxy::{HostHeader, ReverseProxy};
use tower::util::BoxCloneService;
use tower::ServiceExt;

use crate::serve::{text, BoxError, HttpService};

/// Reverse-proxy options.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Forward requests to plain-HTTP backends: URL for every path, or /PREFIX=URL for the
    /// paths under PREFIX (repeat for several routes; with DIR, other paths are files).
    /// Several URLs joined by commas take turns, a failing one skipped for 10 s. A URL with a
    /// path of its own (even /) takes PREFIX's place, as nginx's proxy_pass; without, the
    /// path goes as it is. WebSockets and other upgrades pass through (HTTP/2 clients' too).
    #[arg(long, value_name = "[/PREFIX=]URL[,URL...]", value_parser = parse_route)]
    pub proxy: Vec<Route>,

    /// The Host the backend sees: the client's, or the backend's own address.
    #[arg(long, value_name = "WHOSE", default_value = "client", value_parser = ["client", "backend"])]
    pub proxy_host_header: String,

    /// How long a backend has to accept and send its response head; then 504.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub proxy_timeout: Duration,

    /// Read this much of a request body before a backend connection is taken, so that slow
    /// clients wait on portcullis, not on the backend; longer bodies stream after it. 0
    /// streams from the start.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = crate::files_flags::parse_size)]
    pub proxy_buffer_request: usize,

    /// Most connections to each backend (WebSockets included); requests over it wait for a
    /// place until --proxy-timeout, then get 503.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub proxy_max_connections: u32,
}

/// One `--proxy`: a path prefix and its backends.
#[derive(Debug, Clone)]
pub struct Route {
    prefix: String,
    urls: Vec<String>,
}

impl Route {
    fn is_everything(&self) -> bool {
        self.prefix == "/"
    }

    /// Whether `path` is under this route's prefix: `/api` takes `/api`, `/api/…` and
    /// `/api?…`, not `/apix`.
    fn matches(&self, path: &str) -> bool {
        let prefix = self.prefix.trim_end_matches('/');
        match path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// Parses `[/PREFIX=]URL[,URL...]`, checking each URL.
fn parse_route(value: &str) -> Result<Route, String> {
    let (prefix, urls) = match value.split_once('=') {
        Some((prefix, urls)) if prefix.starts_with('/') => (prefix.to_owned(), urls),
        Some((prefix, _)) if !prefix.contains("://") => {
            return Err(format!(
                "the prefix {prefix:?} must start with /, e.g. /api=http://127.0.0.1:3000"
            ))
        }
        _ => ("/".to_owned(), value),
    };
    let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
    let mut check = ReverseProxy::builder();
    for url in &urls {
        check = check.backend(url).map_err(|e| e.to_string())?;
    }
    Ok(Route { prefix, urls })
}

impl ProxyArgs {
    pub fn any(&self) -> bool {
        !self.proxy.is_empty()
    }

    /// Whether a route takes every path.
    pub fn takes_everything(&self) -> bool {
        self.proxy.iter().any(Route::is_everything)
    }

    fn build(&self, route: &Route) -> anyhow::Result<ReverseProxy> {
        let mut builder = ReverseProxy::builder()
            .host_header(match self.proxy_host_header.as_str() {
                "backend" => HostHeader::Backend,
                _ => HostHeader::Client,
            })
            .timeout(self.proxy_timeout)
            .buffer_request(self.proxy_buffer_request)
            .max_connections(self.proxy_max_connections as usize)
            .strip_prefix(route.prefix.clone());
        for url in &route.urls {
            builder = builder.backend(url)?;
        }
        builder
            .build()
            .with_context(|| format!("--proxy {}", route.prefix))
    }

    /// The service for every path: the proxy routes, longest prefix first, then `rest` (DIR)
    /// or a 404.
    pub fn service(&self, rest: Option<HttpService>) -> anyhow::Result<HttpService> {
        let mut routes = Vec::with_capacity(self.proxy.len());
        for route in &self.proxy {
            if routes
                .iter()
                .any(|(r, _): &(Route, _)| r.prefix == route.prefix)
            {
                bail!(
                    "--proxy {}: given twice; list several backends as one --proxy {}=URL,URL",
                    route.prefix,
                    route.prefix
                );
            }
            routes.push((route.clone(), self.build(route)?));
        }
        routes.sort_by_key(|(r, _)| std::cmp::Reverse(r.prefix.len()));
        Ok(BoxCloneService::new(tower::service_fn(
            move |req: Request<Incoming>| {
                let matched = routes
                    .iter()
                    .find(|(route, _)| route.matches(req.uri().path()))
                    .map(|(_, proxy)| proxy.clone());
                let rest = rest.clone();
                async move {
                    match (matched, rest) {
                        (Some(proxy), _) => {
                            let res = proxy.oneshot(req).await.unwrap_or_else(|e| match e {});
                            Ok(res.map(|body| body.map_err(BoxError::from).boxed_unsync()))
                        }
                        (None, Some(rest)) => rest.oneshot(req).await,
                        (None, None) => Ok(text(StatusCode::NOT_FOUND, "no route for this path\n")),
                    }
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_match_by_prefix() {
        let r = parse_route("/api=http://127.0.0.1:3000,http://127.0.0.1:3001").unwrap();
        assert_eq!(r.prefix, "/api");
        assert_eq!(r.urls.len(), 2);
        assert!(r.matches("/api"));
        assert!(r.matches("/api/users"));
        assert!(!r.matches("/apix"));
        assert!(!r.matches("/"));
        let all = parse_route("http://127.0.0.1:3000/base").unwrap();
        assert!(all.is_everything());
        assert!(all.matches("/anything"));
        assert!(parse_route("api=http://127.0.0.1:3000").is_err());
        assert!(parse_route("/api=https://127.0.0.1:3000").is_err());
        assert!(parse_route("/api=http://a,ftp://b").is_err());
    }
}

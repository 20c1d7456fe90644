//! The built-in hello page: what the server learned about the connection, as HTML for
//! browsers and JSON for `Accept: application/json`.

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use portcullis::ConnectionInfo;
use serde_json::{json, Value};
use tower::util::BoxCloneService;

use crate::serve::{full, text, Body, BoxError, HttpService};

/// The hello service.
pub fn service() -> HttpService {
    BoxCloneService::new(tower::service_fn(|req: Request<Incoming>| async move {
        Ok::<_, BoxError>(respond(&req))
    }))
}

fn respond(req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let report = report(req);
    let wants_json = req
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    let (content_type, body) = if wants_json {
        let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
        text.push('\n');
        ("application/json", text)
    } else {
        ("text/html; charset=utf-8", html(&report))
    };
    let body = if req.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut res = Response::new(full(body));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(http::header::VARY, HeaderValue::from_static("accept"));
    res
}

/// What the page shows, as JSON; the HTML is rendered from the same value.
fn report(req: &Request<Incoming>) -> Value {
    let info = req.extensions().get::<ConnectionInfo>();
    let tls = info.and_then(ConnectionInfo::tls).map(|tls| {
        json!({
            "version": tls.version(),
            "cipher_suite": tls.cipher_suite(),
            "alpn": tls.alpn(),
            "sni": tls.server_name(),
            "resumed": tls.is_resumed(),
            "client_certificates": tls.peer_certificates().len(),
        })
    });
    json!({
        "secure": info.is_some_and(ConnectionInfo::is_secure),
        "http_version": http_version(req.version()),
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "peer_addr": info.map(|i| i.peer_addr().to_string()),
        "local_addr": info.map(|i| i.local_addr().to_string()),
        "connection_id": info.map(ConnectionInfo::id),
        "tls": tls,
    })
}

fn http_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "unknown",
    }
}

fn html(report: &Value) -> String {
    let field = |v: &Value| match v {
        Value::Null => "none".to_owned(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    };
    let mut rows = String::new();
    let mut row = |name: &str, value: &Value| {
        rows.push_str(&format!(
            "<tr><th>{name}</th><td>{}</td></tr>\n",
            field(value)
        ));
    };
    let tls = &report["tls"];
    if tls.is_null() {
        row("TLS", &Value::String("none (plain HTTP)".into()));
    } else {
        row("TLS version", &tls["version"]);
        row("Cipher suite", &tls["cipher_suite"]);
        row("ALPN", &tls["alpn"]);
        row("SNI", &tls["sni"]);
        row("Resumed", &tls["resumed"]);
        row("Client certificates", &tls["client_certificates"]);
    }
    row("HTTP version", &report["http_version"]);
    row("Peer address", &report["peer_addr"]);
    row("Local address", &report["local_addr"]);
    row("Connection", &report["connection_id"]);
    row(
        "Request",
        &Value::String(format!(
            "{} {}",
            report["method"].as_str().unwrap_or(""),
            report["path"].as_str().unwrap_or("")
        )),
    );
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>portcullis</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 2em; }}\n\
         th {{ text-align: left; padding-right: 1.5em; }}\n\
         td {{ font-family: ui-monospace, monospace; }}\n\
         </style>\n</head>\n<body>\n<h1>Hello from portcullis</h1>\n\
         <p>Your connection:</p>\n<table>\n{rows}</table>\n\
         <p>Ask with <code>Accept: application/json</code> for this as JSON.</p>\n\
         </body>\n</html>\n"
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

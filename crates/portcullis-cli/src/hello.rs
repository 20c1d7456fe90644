//! The built-in hello page: what the server learned about the connection, as HTML for
//! browsers and JSON for `Accept: application/json`.

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use portcullis::ConnectionInfo;
use serde_json::{json, Value};
use tower::util::BoxCloneService;

use crate::serve::{full, text, Body, BoxError, HttpService};

/// The hello service.
pub fn service() -> HttpService {
    BoxCloneService::new(tower::service_fn(|req: Request<Incoming>| async move {
        let (parts, body) = req.into_parts();
        // Read what the client sends before answering, as a server that handles uploads does:
        // a request the protocol layer refuses (an HTTP/2 content-length that does not match
        // its DATA, say) is then refused, not answered. Bounded: the rest is dropped.
        let _ = http_body_util::Limited::new(body, DRAIN_LIMIT)
            .collect()
            .await;
        Ok::<_, BoxError>(respond(&Request::from_parts(parts, ())))
    }))
}

/// How much of a request body the hello page reads before it answers.
const DRAIN_LIMIT: usize = 64 * 1024;

fn respond(req: &Request<()>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    if req.uri().path() == "/favicon.ico" {
        // Browsers ask for it on every first visit; the hello page has none.
        return text(StatusCode::NOT_FOUND, "not found\n");
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
fn report(req: &Request<()>) -> Value {
    let info = req.extensions().get::<ConnectionInfo>();
    let tls = info.and_then(ConnectionInfo::tls).map(|tls| {
        let mut value = json!({
            "version": tls.version(),
            "cipher_suite": tls.cipher_suite(),
            "alpn": tls.alpn(),
            "sni": tls.server_name(),
            "resumed": tls.is_resumed(),
            "client_certificates": tls.peer_certificates().len(),
        });
        if let Some(leaf) = tls.peer_certificates().first() {
            // Node's getPeerCertificate() names, and the verdict handlers see.
            value["client_certificate"] = json!({
                "subject": leaf.subject().to_string(),
                "issuer": leaf.issuer().to_string(),
                "serialNumber": leaf.serial_number(),
                "fingerprint256": leaf.fingerprint256(),
                "valid_from": leaf.valid_from(),
                "valid_to": leaf.valid_to(),
            });
            value["authorized"] = json!(tls.is_authorized());
            value["authorizationError"] = json!(tls.authorization_error());
            value["authorizationReason"] = json!(tls.authorization_reason());
        }
        value
    });
    // Behind a load balancer speaking the PROXY protocol: what its header said.
    let proxy = info.and_then(ConnectionInfo::proxy).map(|p| {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        json!({
            "version": p.version(),
            "alpn": text(p.alpn()),
            "authority": p.authority(),
            "unique_id": text(p.unique_id()),
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
        "proxy": proxy,
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
        let cert = &tls["client_certificate"];
        if !cert.is_null() {
            row("Client subject", &cert["subject"]);
            row("Client issuer", &cert["issuer"]);
            row("Client serial", &cert["serialNumber"]);
            row("Client fingerprint256", &cert["fingerprint256"]);
            row("Client valid to", &cert["valid_to"]);
            row("Authorized", &tls["authorized"]);
            if !tls["authorizationError"].is_null() {
                row("Authorization error", &tls["authorizationError"]);
                row("Why", &tls["authorizationReason"]);
            }
        }
    }
    row("HTTP version", &report["http_version"]);
    row("Peer address", &report["peer_addr"]);
    let proxy = &report["proxy"];
    if !proxy.is_null() {
        row("PROXY protocol", &proxy["version"]);
        row("PROXY unique ID", &proxy["unique_id"]);
    }
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

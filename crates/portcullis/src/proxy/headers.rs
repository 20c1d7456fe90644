//! The headers a proxy changes: hop-by-hop ones dropped (RFC 9110 §7.6.1), the client told
//! to the backend with `X-Forwarded-*` and RFC 7239 `Forwarded`.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::ConnectionInfo;

/// Headers that describe one connection and are never forwarded as they are.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether the `Connection` header lists `token`.
pub(crate) fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Drops the hop-by-hop headers and those the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds `X-Forwarded-For` (appended), `X-Forwarded-Proto`, `X-Forwarded-Host` and an element
/// of RFC 7239 `Forwarded` (appended).
pub(crate) fn add_forwarding(
    headers: &mut HeaderMap,
    info: Option<&ConnectionInfo>,
    host: Option<&HeaderValue>,
) {
    let proto = match info.is_some_and(ConnectionInfo::is_secure) {
        true => "https",
        false => "http",
    };
    let peer = info.map(|i| canonical(i.peer_addr()));

    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        let xff = match joined(headers, "x-forwarded-for") {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip,
        };
        if let Ok(value) = HeaderValue::from_str(&xff) {
            headers.insert("x-forwarded-for", value);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    match host {
        Some(host) => headers.insert("x-forwarded-host", host.clone()),
        None => headers.remove("x-forwarded-host"),
    };

    let mut element = Vec::new();
    if let Some(peer) = peer {
        element.push(format!("for={}", forwarded_value(&node(peer))));
    }
    element.push(format!("proto={proto}"));
    if let Some(host) = host.and_then(|h| h.to_str().ok()) {
        element.push(format!("host={}", forwarded_value(host)));
    }
    let element = element.join(";");
    let forwarded = match joined(headers, header::FORWARDED.as_str()) {
        Some(earlier) => format!("{earlier}, {element}"),
        None => element,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, value);
    }
}

/// All values of a header joined by ", ", if any.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// An IPv4-mapped IPv6 peer (from a dual-stack listener) as plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// RFC 7239 §6 node: `192.0.2.43:47011` or `[2001:db8::1]:47011`.
fn node(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A `Forwarded` parameter value: a token as is, anything else as a quoted-string.
fn forwarded_value(value: &str) -> String {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !value.is_empty() && value.chars().all(is_tchar) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_values_follow_rfc_7239() {
        assert_eq!(forwarded_value("example.com"), "example.com");
        assert_eq!(forwarded_value("localhost:8443"), "\"localhost:8443\"");
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(forwarded_value(&node(v6)), "\"[::1]:5000\"");
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(node(canonical(mapped)), "10.0.0.1:80");
    }

    #[test]
    fn drops_hop_by_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        assert!(connection_has(&h, "X-Secret"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}

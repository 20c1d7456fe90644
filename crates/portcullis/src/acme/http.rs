//! instant-acme's HTTP needs, met by our own client: the same TLS stack, pooling and Node-style
//! error codes, and roots of the user's choosing for a private CA. Also keeps the last
//! `Retry-After` the CA sent, which instant-acme's errors do not carry.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use crate::client::Agent;
use crate::tls::ClientTlsOptions;

/// How long one request to the CA may take (connecting included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a CA response may hold (a certificate chain is a few kB).
const BODY_LIMIT: usize = 1 << 20;

#[derive(Clone, Debug)]
pub(crate) struct AcmeHttp {
    agent: Agent,
    retry_after: Arc<Mutex<Option<SystemTime>>>,
}

impl AcmeHttp {
    /// # Errors
    /// A CA root (`--acme-ca-root`) the TLS configuration cannot use.
    pub(crate) fn new(roots: &[rustls_pki_types::CertificateDer<'static>]) -> crate::Result<Self> {
        let mut agent = Agent::builder().max_sockets(4).http2(false);
        if !roots.is_empty() {
            agent = agent.tls(ClientTlsOptions::new().ca(roots.iter().cloned()));
        }
        Ok(Self {
            agent: agent.build()?,
            retry_after: Arc::default(),
        })
    }

    /// The `Retry-After` of the latest response that had one, taken.
    pub(crate) fn take_retry_after(&self) -> Option<SystemTime> {
        self.retry_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let mut request = this
                .agent
                .request(parts.method, &parts.uri.to_string())
                .timeout(REQUEST_TIMEOUT);
            for (name, value) in &parts.headers {
                request = request.header(name.clone(), value.clone());
            }
            let response = request
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut head = http::Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = head.headers_mut() {
                headers.extend(
                    response
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone())),
                );
            }
            // Kept from refusals only (rate limits, 503): polling responses carry one too.
            let refused =
                response.status().is_client_error() || response.status().is_server_error();
            if let Some(when) = retry_after(response.headers()).filter(|_| refused) {
                *this.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = Some(when);
            }
            let bytes = response
                .limit(BODY_LIMIT)
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let (parts, ()) = head.body(())?.into_parts();
            Ok(BytesResponse {
                parts,
                body: Box::new(bytes),
            })
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &http::HeaderMap) -> Option<SystemTime> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(SystemTime::now() + Duration::from_secs(secs));
    }
    httpdate::parse_http_date(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
        let at = retry_after(&h).unwrap();
        let d = at.duration_since(SystemTime::now()).unwrap();
        assert!(d > Duration::from_secs(110) && d <= Duration::from_secs(120));
        h.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        let at = retry_after(&h).unwrap();
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
    }
}

//! Options that weaken security, kept apart so that their use stands out in review.

use super::ClientTlsOptions;

/// Node's `rejectUnauthorized: false` (curl's `--insecure`): the server's certificate chain and
/// name are not checked. The handshake signature is still verified, but anyone on the path can
/// impersonate the server. For tests and debugging only.
pub fn insecure(options: ClientTlsOptions) -> ClientTlsOptions {
    reject_unauthorized(options, false)
}

/// Node's `rejectUnauthorized`: `false` accepts any server certificate (see [`insecure`]).
pub fn reject_unauthorized(mut options: ClientTlsOptions, reject: bool) -> ClientTlsOptions {
    if !reject {
        tracing::warn!("TLS certificate verification is off: the server is not authenticated");
    }
    options.reject_unauthorized = reject;
    options
}

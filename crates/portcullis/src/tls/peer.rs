//! `PeerCertificate`: a certificate's fields as Node's `getPeerCertificate()` gives them.

/// A certificate's fields as Node's `getPeerCertificate()` gives them.
#[derive(Debug, Clone)]
pub struct PeerCertificate {}

//! Verification outcomes with Node's (OpenSSL's) error codes.

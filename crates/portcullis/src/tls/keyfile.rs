//! Decoding keys and certificates as users have them: PEM, DER, encrypted PKCS#8, legacy
//! OpenSSL encrypted PEM, PKCS#12.

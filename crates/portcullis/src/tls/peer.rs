//! `PeerCertificate`: a certificate's fields as Node's `getPeerCertificate()` gives them.
//!
//! Every string is built the way Node 20 (on OpenSSL 3) builds it, so that values can be
//! compared with what a Node server or client logs. Fields are read with `x509-parser`;
//! digests come from aws-lc-rs.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use x509_parser::der_parser::asn1_rs::{Any, FromDer as _, Tag, ToDer as _};
use x509_parser::der_parser::Oid;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{X509Certificate, X509Name};
use x509_parser::time::ASN1Time;

use crate::error::{Error, Result};

/// A certificate's fields as Node's `tls.TLSSocket.getPeerCertificate()` gives them.
///
/// Built from DER with [`PeerCertificate::from_der`]; the fields are read once, the digests
/// (fingerprints, pin) when first asked for, and clones share them (an `Arc` inside).
///
/// ```no_run
/// # fn show(der: &rustls_pki_types::CertificateDer<'_>) -> portcullis::Result<()> {
/// let cert = portcullis::PeerCertificate::from_der(der)?;
/// println!("{} valid to {}", cert.subject(), cert.valid_to());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PeerCertificate(Arc<Inner>);

struct Inner {
    der: CertificateDer<'static>,
    subject: DistinguishedName,
    issuer: DistinguishedName,
    subjectaltname: Option<String>,
    info_access: Vec<(String, String)>,
    not_before: SystemTime,
    not_after: SystemTime,
    valid_from: String,
    valid_to: String,
    serial_number: String,
    fingerprint: OnceLock<String>,
    fingerprint256: OnceLock<String>,
    fingerprint512: OnceLock<String>,
    public_key: Vec<u8>,
    pin_sha256: OnceLock<String>,
    /// The raw subject and issuer names, for chain building (the client's).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    raw_subject: Vec<u8>,
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    raw_issuer: Vec<u8>,
    key: KeyDetails,
    ext_key_usage: Vec<String>,
    is_ca: bool,
}

#[derive(Default)]
struct KeyDetails {
    bits: Option<u32>,
    asn1_curve: Option<&'static str>,
    nist_curve: Option<&'static str>,
    exponent: Option<String>,
    modulus: Option<String>,
}

impl PeerCertificate {
    /// Parses a DER certificate; a certificate that does not parse is a config error.
    pub fn from_der(der: &CertificateDer<'_>) -> Result<Self> {
        let bytes: &[u8] = der.as_ref();
        let (rest, cert) = X509Certificate::from_der(bytes)
            .map_err(|e| Error::config(format!("invalid certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::config(
                "invalid certificate: trailing data after the DER",
            ));
        }
        let validity = cert.validity();
        let spki = cert.public_key().raw.to_vec();
        let inner = Inner {
            der: CertificateDer::from(bytes.to_vec()),
            subject: DistinguishedName::from_x509(cert.subject()),
            issuer: DistinguishedName::from_x509(cert.issuer()),
            subjectaltname: subjectaltname(&cert),
            info_access: info_access(&cert),
            not_before: system_time(&validity.not_before),
            not_after: system_time(&validity.not_after),
            valid_from: node_time(&validity.not_before),
            valid_to: node_time(&validity.not_after),
            serial_number: serial_hex(cert.raw_serial()),
            fingerprint: OnceLock::new(),
            fingerprint256: OnceLock::new(),
            fingerprint512: OnceLock::new(),
            pin_sha256: OnceLock::new(),
            raw_subject: cert.tbs_certificate.subject.as_raw().to_vec(),
            raw_issuer: cert.tbs_certificate.issuer.as_raw().to_vec(),
            public_key: spki,
            key: key_details(&cert),
            ext_key_usage: ext_key_usage(&cert),
            is_ca: is_ca(&cert),
        };
        Ok(Self(Arc::new(inner)))
    }

    /// Node's `subject`: the subject's attributes, e.g. `{ C: 'US', O: 'Example', CN: 'localhost' }`.
    pub fn subject(&self) -> &DistinguishedName {
        &self.0.subject
    }

    /// Node's `issuer`: the issuer's attributes, e.g. `{ O: 'Example CA', CN: 'Example Root' }`.
    pub fn issuer(&self) -> &DistinguishedName {
        &self.0.issuer
    }

    /// Node's `subjectaltname`, e.g.
    /// `"DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, URI:http://example.com/#me, email:a@b"`.
    ///
    /// IPv6 addresses are printed uncompressed in uppercase hex (`IP Address:2001:DB8:0:0:0:0:0:1`);
    /// a name containing `,`, `"`, `\`, `'` or a control character is JSON-quoted as Node does
    /// (`URI:"http://example.com/a\u002cb"`). `None` without a subjectAltName extension.
    pub fn subjectaltname(&self) -> Option<&str> {
        self.0.subjectaltname.as_deref()
    }

    /// Node's `infoAccess` (authorityInfoAccess) as `(key, value)` pairs in certificate order,
    /// e.g. `[("OCSP - URI", "http://ocsp.example.com/"), ("CA Issuers - URI", "http://ca.example.com/ca.crt")]`.
    /// Node groups the values of a key in an array; empty without the extension.
    pub fn info_access(&self) -> &[(String, String)] {
        &self.0.info_access
    }

    /// Node's `valid_from`, e.g. `"Nov 23 13:21:16 2026 GMT"` (`"Jan  5 …"`: the day is space-padded).
    pub fn valid_from(&self) -> &str {
        &self.0.valid_from
    }

    /// Node's `valid_to`, e.g. `"Nov 23 13:21:16 2027 GMT"`.
    pub fn valid_to(&self) -> &str {
        &self.0.valid_to
    }

    /// The start of the validity period (Node's `valid_from` as a time).
    pub fn not_before(&self) -> SystemTime {
        self.0.not_before
    }

    /// The end of the validity period (Node's `valid_to` as a time).
    pub fn not_after(&self) -> SystemTime {
        self.0.not_after
    }

    /// Node's `serialNumber`: uppercase hex, whole bytes, no leading zero bytes, e.g. `"AB12"`
    /// for serial `0x00AB12` and `"07FEDC…"` for `0x7FEDC…`.
    pub fn serial_number(&self) -> &str {
        &self.0.serial_number
    }

    /// Node's `fingerprint`: SHA-1 of the DER, e.g. `"0C:92:C2:…:63:FE"`.
    pub fn fingerprint(&self) -> &str {
        self.0.fingerprint.get_or_init(|| {
            colon_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, self.raw()).as_ref())
        })
    }

    /// Node's `fingerprint256`: SHA-256 of the DER, e.g. `"6C:66:21:…:AA:0D"`.
    pub fn fingerprint256(&self) -> &str {
        self.0
            .fingerprint256
            .get_or_init(|| colon_hex(digest::digest(&digest::SHA256, self.raw()).as_ref()))
    }

    /// Node's `fingerprint512`: SHA-512 of the DER, e.g. `"E7:B5:CC:…:45:31"`.
    pub fn fingerprint512(&self) -> &str {
        self.0
            .fingerprint512
            .get_or_init(|| colon_hex(digest::digest(&digest::SHA512, self.raw()).as_ref()))
    }

    /// The SubjectPublicKeyInfo, DER-encoded (Node's `pubkey` for RSA keys; for EC keys Node's
    /// `pubkey` is the bare point instead).
    pub fn public_key(&self) -> &[u8] {
        &self.0.public_key
    }

    /// The HPKP pin: base64 of the SHA-256 of the SubjectPublicKeyInfo DER, e.g.
    /// `"3rKc1EVrNPrLvGKM0hqXLHUPqvT3eq8QkZ3u4YhW0vU="` (Node's pinning example
    /// `sha256(cert.pubkey)` for RSA keys).
    pub fn pin_sha256(&self) -> &str {
        self.0.pin_sha256.get_or_init(|| {
            base64::engine::general_purpose::STANDARD
                .encode(digest::digest(&digest::SHA256, &self.0.public_key))
        })
    }

    /// The raw DER subject and issuer names (self-issued when equal).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn raw_names(&self) -> (&[u8], &[u8]) {
        (&self.0.raw_subject, &self.0.raw_issuer)
    }

    /// Node's `bits`: the RSA modulus size or the EC curve's order size, e.g. `2048` or `256`.
    pub fn bits(&self) -> Option<u32> {
        self.0.key.bits
    }

    /// Node's `asn1Curve` for an EC key, e.g. `"prime256v1"`, `"secp384r1"`, `"secp521r1"`.
    pub fn curve(&self) -> Option<&str> {
        self.0.key.asn1_curve
    }

    /// Node's `asn1Curve` (same as [`curve`](Self::curve)), e.g. `"prime256v1"`.
    pub fn asn1_curve(&self) -> Option<&str> {
        self.0.key.asn1_curve
    }

    /// Node's `nistCurve` for an EC key on a NIST curve, e.g. `"P-256"`.
    pub fn nist_curve(&self) -> Option<&str> {
        self.0.key.nist_curve
    }

    /// Node's `exponent` for an RSA key, e.g. `"0x10001"`.
    pub fn exponent(&self) -> Option<&str> {
        self.0.key.exponent.as_deref()
    }

    /// Node's `modulus` for an RSA key: uppercase hex without leading zeros, e.g. `"AC662E9C…"`.
    pub fn modulus(&self) -> Option<&str> {
        self.0.key.modulus.as_deref()
    }

    /// Node's `ext_key_usage`: the extendedKeyUsage OIDs in certificate order, e.g.
    /// `["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]` (serverAuth, clientAuth); empty without
    /// the extension.
    pub fn ext_key_usage(&self) -> &[String] {
        &self.0.ext_key_usage
    }

    /// Node's `ca`: basicConstraints says CA and keyUsage, if present, allows certificate
    /// signing (OpenSSL's `X509_check_ca() == 1`), e.g. `false` for a server certificate.
    pub fn is_ca(&self) -> bool {
        self.0.is_ca
    }

    /// Node's `raw`: the certificate's DER bytes.
    pub fn raw(&self) -> &[u8] {
        self.0.der.as_ref()
    }

    /// The certificate's DER as rustls takes it.
    pub fn der(&self) -> CertificateDer<'static> {
        self.0.der.clone()
    }
}

impl fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerCertificate")
            .field("subject", &self.0.subject.to_string())
            .field("issuer", &self.0.issuer.to_string())
            .field("subjectaltname", &self.0.subjectaltname)
            .field("valid_from", &self.0.valid_from)
            .field("valid_to", &self.0.valid_to)
            .field("serial_number", &self.0.serial_number)
            .field("fingerprint256", &self.fingerprint256())
            .finish_non_exhaustive()
    }
}

impl PartialEq for PeerCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl Eq for PeerCertificate {}

/// A distinguished name (subject or issuer) as Node's object of attributes: OpenSSL short
/// names (`C`, `ST`, `L`, `O`, `OU`, `CN`, `emailAddress`, `DC`, …; a dotted OID for a type
/// OpenSSL does not name) in certificate order, values as UTF-8. A repeated attribute keeps
/// every value (Node makes it an array).
///
/// `Display` is OpenSSL's `-nameopt RFC2253,sep_comma_plus_space` form, most specific first:
/// `CN=localhost, O=Example, C=US` (non-ASCII characters are written as UTF-8, not escaped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    entries: Vec<Attribute>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Attribute {
    key: String,
    value: String,
    /// Index of the RDN (SET) holding this attribute: attributes of one RDN print joined by `+`.
    rdn: usize,
    /// The value is the `#`-prefixed hex of a non-string value's DER; never escaped.
    hex: bool,
}

impl DistinguishedName {
    fn from_x509(name: &X509Name<'_>) -> Self {
        let mut entries = Vec::new();
        for (rdn, set) in name.iter_rdn().enumerate() {
            for atv in set.iter() {
                let (value, hex) = attribute_value(atv.attr_value());
                entries.push(Attribute {
                    key: attribute_name(atv.attr_type()),
                    value,
                    rdn,
                    hex,
                });
            }
        }
        Self { entries }
    }

    /// The first value of attribute `key` (an OpenSSL short name such as `"CN"`), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    /// Every value of attribute `key`, in certificate order (Node's array for a repeated key).
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |a| a.key == key)
            .map(|a| a.value.as_str())
    }

    /// Every `(key, value)` in certificate order (`C` before `CN` in a typical certificate).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty name.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// OpenSSL's RFC 2253 form (reversed order, `\`-escapes), with or without spaces around
    /// the separators; `escape_ctrl` escapes control characters as `\XX`.
    fn rfc2253(&self, spaced: bool, escape_ctrl: bool) -> String {
        let (comma, plus) = if spaced { (", ", " + ") } else { (",", "+") };
        let mut out = String::new();
        let mut previous: Option<usize> = None;
        for a in self.entries.iter().rev() {
            if let Some(rdn) = previous {
                out.push_str(if rdn == a.rdn { plus } else { comma });
            }
            previous = Some(a.rdn);
            out.push_str(&a.key);
            out.push('=');
            if a.hex {
                out.push_str(&a.value);
            } else {
                escape_rfc2253(&mut out, &a.value, escape_ctrl);
            }
        }
        out
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc2253(true, true))
    }
}

/// OpenSSL's `ASN1_STRFLGS_ESC_2253` (plus `ESC_CTRL` when asked), characters above ASCII kept.
fn escape_rfc2253(out: &mut String, value: &str, escape_ctrl: bool) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if escape_ctrl && (c < ' ' || c == '\x7f') => {
                out.push_str(&format!("\\{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// OpenSSL's short name for an attribute type (`OBJ_nid2sn`), or the dotted OID.
fn attribute_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.15" => "businessCategory",
        "2.5.4.16" => "postalAddress",
        "2.5.4.17" => "postalCode",
        "2.5.4.18" => "postOfficeBox",
        "2.5.4.20" => "telephoneNumber",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "x500UniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.72" => "role",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return id,
    };
    name.to_owned()
}

/// An attribute value as UTF-8 (OpenSSL's `ASN1_STRING_to_UTF8`), or `#`-hex of its DER
/// for a value that is not a string.
fn attribute_value(value: &Any<'_>) -> (String, bool) {
    let data = value.data;
    let text = match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_owned),
        // T61String and the rest of the 8-bit types: OpenSSL reads them as Latin-1.
        Tag::T61String | Tag::VideotexString | Tag::GraphicString | Tag::GeneralString => {
            Some(data.iter().map(|&b| char::from(b)).collect())
        }
        Tag::BmpString if data.len() % 2 == 0 => char::decode_utf16(
            data.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]])),
        )
        .collect::<Result<String, _>>()
        .ok(),
        Tag::UniversalString if data.len() % 4 == 0 => data
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    };
    match text {
        Some(text) => (text, false),
        None => {
            let der = value.to_der_vec().unwrap_or_default();
            let hex: String = der.iter().map(|b| format!("{b:02X}")).collect();
            (format!("#{hex}"), true)
        }
    }
}

/// `Nov 23 13:21:16 2026 GMT`, as OpenSSL's `ASN1_TIME_print`.
fn node_time(t: &ASN1Time) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let dt = t.to_datetime();
    format!(
        "{} {:2} {:02}:{:02}:{:02} {} GMT",
        MONTHS[usize::from(u8::from(dt.month())) - 1],
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.year()
    )
}

fn system_time(t: &ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `AB:CD:…`: uppercase hex bytes joined by colons.
fn colon_hex(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// OpenSSL's `BN_bn2hex` of the serial: uppercase, whole bytes, leading zero bytes dropped,
/// `-` for a (non-conforming) negative serial, `0` for zero.
fn serial_hex(raw: &[u8]) -> String {
    let negative = raw.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude: Vec<u8> = if negative {
        // Two's complement: invert and add one.
        let mut m: Vec<u8> = raw.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
        m
    } else {
        raw.to_vec()
    };
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let digits: String = magnitude[start..]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    match (negative, digits.is_empty()) {
        (_, true) => "0".to_owned(),
        (true, false) => format!("-{digits}"),
        (false, false) => digits,
    }
}

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// Node's `bits`, `exponent` and `modulus` (RSA) or `bits`, `asn1Curve`, `nistCurve` (EC).
fn key_details(cert: &X509Certificate<'_>) -> KeyDetails {
    let spki = cert.public_key();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA_ENCRYPTION => {
            let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
                return KeyDetails::default();
            };
            let modulus = trim_leading_zeros(rsa.modulus);
            let bits = modulus.first().map(|&top| {
                u32::try_from(modulus.len() * 8).unwrap_or(u32::MAX) - top.leading_zeros()
            });
            // BN_print: uppercase hex without leading zero digits.
            let hex: String = modulus.iter().map(|b| format!("{b:02X}")).collect();
            let hex = hex.trim_start_matches('0');
            KeyDetails {
                bits: bits.or(Some(0)),
                exponent: rsa.try_exponent().ok().map(|e| format!("0x{e:x}")),
                modulus: Some(if hex.is_empty() {
                    "0".to_owned()
                } else {
                    hex.to_owned()
                }),
                ..KeyDetails::default()
            }
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let (bits, asn1, nist) = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => (256, "prime256v1", Some("P-256")),
                Some("1.3.132.0.34") => (384, "secp384r1", Some("P-384")),
                Some("1.3.132.0.35") => (521, "secp521r1", Some("P-521")),
                Some("1.3.132.0.33") => (224, "secp224r1", Some("P-224")),
                Some("1.2.840.10045.3.1.1") => (192, "prime192v1", Some("P-192")),
                Some("1.3.132.0.10") => (256, "secp256k1", None),
                Some("1.3.36.3.3.2.8.1.1.7") => (256, "brainpoolP256r1", None),
                Some("1.3.36.3.3.2.8.1.1.11") => (384, "brainpoolP384r1", None),
                Some("1.3.36.3.3.2.8.1.1.13") => (512, "brainpoolP512r1", None),
                _ => return KeyDetails::default(),
            };
            KeyDetails {
                bits: Some(bits),
                asn1_curve: Some(asn1),
                nist_curve: nist,
                ..KeyDetails::default()
            }
        }
        _ => KeyDetails::default(),
    }
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The extendedKeyUsage OIDs in certificate order (x509-parser's parsed form loses the order).
fn ext_key_usage(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) =
        cert.get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_EXTENDED_KEY_USAGE)
    else {
        return Vec::new();
    };
    let Ok((_, seq)) = x509_parser::der_parser::parse_der(ext.value) else {
        return Vec::new();
    };
    seq.as_sequence()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_oid().ok().map(Oid::to_id_string))
                .collect()
        })
        .unwrap_or_default()
}

/// OpenSSL's `X509_check_ca(cert) == 1`, which is what Node's `ca` reports.
fn is_ca(cert: &X509Certificate<'_>) -> bool {
    let key_usage_allows = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    key_usage_allows && ca
}

/// Node's `subjectaltname` string, or `None` without the extension.
fn subjectaltname(cert: &X509Certificate<'_>) -> Option<String> {
    let san = cert.subject_alternative_name().ok()??;
    let names: Vec<String> = san.value.general_names.iter().map(general_name).collect();
    Some(names.join(", "))
}

/// Node's `infoAccess` as `(key, value)` pairs, the values unquoted as Node's
/// `translatePeerCertificate` does.
fn info_access(cert: &X509Certificate<'_>) -> Vec<(String, String)> {
    let Ok(Some(ext)) =
        cert.get_extension_unique(&x509_parser::oid_registry::OID_PKIX_AUTHORITY_INFO_ACCESS)
    else {
        return Vec::new();
    };
    let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() else {
        return Vec::new();
    };
    aia.iter()
        .map(|desc| {
            let method_id = desc.access_method.to_id_string();
            // OpenSSL's long names (`i2t_ASN1_OBJECT`).
            let method = match method_id.as_str() {
                "1.3.6.1.5.5.7.48.1" => "OCSP",
                "1.3.6.1.5.5.7.48.2" => "CA Issuers",
                "1.3.6.1.5.5.7.48.3" => "AD Time Stamping",
                "1.3.6.1.5.5.7.48.4" => "ad dvcs",
                "1.3.6.1.5.5.7.48.5" => "CA Repository",
                other => other,
            };
            let line = format!("{method} - {}", general_name(&desc.access_location));
            let (key, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            (key.to_owned(), json_unquote(value))
        })
        .collect()
}

/// One general name as Node's `PrintGeneralName` prints it.
fn general_name(name: &GeneralName<'_>) -> String {
    let mut out = String::new();
    match name {
        GeneralName::DNSName(s) => {
            out.push_str("DNS:");
            print_alt_name(&mut out, s, false, None);
        }
        GeneralName::RFC822Name(s) => {
            out.push_str("email:");
            print_alt_name(&mut out, s, false, None);
        }
        GeneralName::URI(s) => {
            out.push_str("URI:");
            print_alt_name(&mut out, s, false, None);
        }
        GeneralName::DirectoryName(dn) => {
            out.push_str("DirName:");
            let dn = DistinguishedName::from_x509(dn).rfc2253(false, false);
            print_alt_name(&mut out, &dn, true, None);
        }
        GeneralName::IPAddress(ip) => {
            out.push_str("IP Address:");
            match ip.len() {
                4 => out.push_str(&format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])),
                16 => {
                    let groups: Vec<String> = ip
                        .chunks_exact(2)
                        .map(|g| format!("{:X}", u16::from_be_bytes([g[0], g[1]])))
                        .collect();
                    out.push_str(&groups.join(":"));
                }
                n => out.push_str(&format!("<invalid length={n}>")),
            }
        }
        GeneralName::RegisteredID(oid) => {
            out.push_str("Registered ID:");
            out.push_str(&oid.to_id_string());
        }
        GeneralName::OtherName(oid, value) => other_name(&mut out, oid, value),
        GeneralName::X400Address(_) => out.push_str("X400Name:<unsupported>"),
        GeneralName::EDIPartyName(_) => out.push_str("EdiPartyName:<unsupported>"),
    }
    out
}

/// `othername:UPN:user@example.com` for the types OpenSSL 3 names, else `othername:<unsupported>`.
fn other_name(out: &mut String, oid: &Oid<'_>, value: &[u8]) {
    let (prefix, utf8) = match oid.to_id_string().as_str() {
        "1.3.6.1.5.5.7.8.9" => ("SmtpUTF8Mailbox", true),
        "1.3.6.1.5.5.7.8.5" => ("XmppAddr", true),
        "1.3.6.1.5.5.7.8.7" => ("SRVName", false),
        "1.3.6.1.4.1.311.20.2.3" => ("UPN", true),
        "1.3.6.1.5.5.7.8.8" => ("NAIRealm", true),
        _ => {
            out.push_str("othername:<unsupported>");
            return;
        }
    };
    // value is `[0] EXPLICIT` around the string.
    let inner = Any::from_der(value)
        .ok()
        .and_then(|(_, tagged)| Any::from_der(tagged.data).ok())
        .map(|(_, inner)| inner);
    let expected = if utf8 {
        Tag::Utf8String
    } else {
        Tag::Ia5String
    };
    match inner
        .filter(|v| v.tag() == expected)
        .and_then(|v| std::str::from_utf8(v.data).ok())
    {
        Some(s) => {
            out.push_str("othername:");
            print_alt_name(out, s, utf8, Some(prefix));
        }
        None => out.push_str("othername:<unsupported>"),
    }
}

/// Node's `IsSafeAltName`.
fn is_safe_alt_name(name: &str, utf8: bool) -> bool {
    name.bytes().all(|c| match c {
        b'"' | b'\\' | b',' | b'\'' => false,
        c if utf8 => c >= b' ' && c != 0x7f,
        c => (b' '..=b'~').contains(&c),
    })
}

/// Node's `PrintAltName`: a safe name as is, anything else JSON-quoted.
fn print_alt_name(out: &mut String, name: &str, utf8: bool, safe_prefix: Option<&str>) {
    if is_safe_alt_name(name, utf8) {
        if let Some(prefix) = safe_prefix {
            out.push_str(prefix);
            out.push(':');
        }
        out.push_str(name);
        return;
    }
    out.push('"');
    if let Some(prefix) = safe_prefix {
        out.push_str(prefix);
        out.push(':');
    }
    let mut pending: Vec<u8> = Vec::new();
    for &c in name.as_bytes() {
        match c {
            b'\\' => pending.extend_from_slice(b"\\\\"),
            b'"' => pending.extend_from_slice(b"\\\""),
            c if (c >= b' ' && c != b',' && c <= b'~') || (utf8 && c & 0x80 != 0) => {
                pending.push(c)
            }
            // Node formats a (signed) char with "\\u%04x" into 7 bytes: bytes above 0x7f
            // come out as "\uffff".
            c if c & 0x80 != 0 => pending.extend_from_slice(b"\\uffff"),
            c => pending.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push('"');
}

/// Reverses `print_alt_name`'s quoting (JSON string literal) for a value starting with `"`.
fn json_unquote(value: &str) -> String {
    let Some(body) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => out.push(char::REPLACEMENT_CHARACTER),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_hex_matches_bn_bn2hex() {
        assert_eq!(serial_hex(&[0x00, 0xAB, 0x12]), "AB12");
        assert_eq!(serial_hex(&[0x07, 0xFE]), "07FE");
        assert_eq!(serial_hex(&[0x01]), "01");
        assert_eq!(serial_hex(&[0x00]), "0");
        assert_eq!(serial_hex(&[0xFF]), "-01");
        assert_eq!(serial_hex(&[0xFF, 0x00]), "-0100");
    }

    #[test]
    fn alt_names_are_quoted_like_node() {
        let mut out = String::new();
        print_alt_name(&mut out, "http://example.com/a,b", false, None);
        assert_eq!(out, r#""http://example.com/a\u002cb""#);
        let mut out = String::new();
        print_alt_name(&mut out, "a\"b\\c\x01", false, None);
        assert_eq!(out, r#""a\"b\\c\u0001""#);
        let mut out = String::new();
        print_alt_name(&mut out, "user@example.com", true, Some("UPN"));
        assert_eq!(out, "UPN:user@example.com");
        assert_eq!(
            json_unquote(r#""http://example.com/a\u002cb""#),
            "http://example.com/a,b"
        );
        assert_eq!(json_unquote("http://plain/"), "http://plain/");
    }

    #[test]
    fn rfc2253_escapes() {
        let mut out = String::new();
        escape_rfc2253(&mut out, "#Acme, Inc. ", true);
        assert_eq!(out, "\\#Acme\\, Inc.\\ ");
    }
}

//! Certificate generation: the local development CA, the leaf certificates it signs (or
//! self-signed ones), and PKCS#12 export.

mod generate;
mod local_ca;
pub mod pkcs12;

pub use generate::{KeyKind, LeafCertificate, LeafOptions};
pub use local_ca::{default_dir, DevCertificate, LocalCa};

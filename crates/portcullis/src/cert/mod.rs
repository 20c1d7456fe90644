//! Certificate generation: the local development CA and the leaf certificates it signs.

mod local_ca;

pub use local_ca::{default_dir, DevCertificate, LocalCa};

//! Key material made by `openssl` at test time (a CA of the test's own, leaves in every key
//! format), and curl against a server trusting that CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use portcullis::Identity;
use tempfile::TempDir;

use crate::server::{start_hello, Running};

/// The passphrase every encrypted file made here uses.
pub const SECRET: &str = "secret";

/// A scratch directory where `openssl` makes files.
pub struct Files {
    pub dir: TempDir,
}

impl Files {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), data).unwrap();
    }

    /// Runs `openssl` with the whitespace-separated `args` in the directory (without blocking
    /// the runtime); panics with openssl's stderr when it fails.
    pub async fn openssl(&self, args: &str) {
        let out = tokio::process::Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(self.dir.path())
            .output()
            .await
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A root CA: `ca.pem`, its key `ca.key` (EC P-256).
    pub async fn root_ca(&self) {
        self.openssl(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
             -out ca.pem -subj /CN=PortcullisTestRoot -days 30",
        )
        .await;
    }

    /// Issues `{out}.pem` for the key file `key` (passphrase [`SECRET`] if encrypted), signed by
    /// `{issuer}.pem`/`{issuer}.key`: a localhost/127.0.0.1 server leaf, or an intermediate
    /// CA when `ca` is set.
    pub async fn issue(&self, key: &str, out: &str, issuer: &str, ca: bool) {
        let ext = if ca {
            "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n"
        } else {
            "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
        };
        self.write(&format!("{out}.ext"), ext);
        let cn = if ca {
            "PortcullisTestIntermediate"
        } else {
            "localhost"
        };
        self.openssl(&format!(
            "req -new -key {key} -passin pass:{SECRET} -subj /CN={cn} -out {out}.csr"
        ))
        .await;
        self.openssl(&format!(
            "x509 -req -in {out}.csr -CA {issuer}.pem -CAkey {issuer}.key -CAcreateserial \
             -days 30 -extfile {out}.ext -out {out}.pem"
        ))
        .await;
    }

    /// A root CA, an RSA-2048 key `k.pem` and a leaf `c.pem` for it signed by the CA.
    pub async fn rsa_leaf(&self) {
        self.root_ca().await;
        self.openssl("genrsa -out k.pem 2048").await;
        self.issue("k.pem", "c", "ca", false).await;
    }
}

/// Starts the hello server presenting `identity`.
pub async fn serve(identity: Identity) -> Running {
    start_hello(move |b| b.identity(identity)).await
}

/// Runs curl against `addr` as `https://localhost:PORT/`, trusting only `ca`.
pub async fn curl_with_ca(addr: SocketAddr, ca: &Path) -> Output {
    let port = addr.port();
    tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .await
        .expect("curl runs")
}

/// Serves `identity` and asserts that curl, trusting only `ca`, gets the hello body.
pub async fn assert_curl_ok(identity: Identity, ca: &Path) {
    let running = serve(identity).await;
    let out = curl_with_ca(running.addr, ca).await;
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
    running.handle.close().await;
}

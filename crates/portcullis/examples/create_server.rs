//! Node's `https.createServer` example, ported one for one:
//!
//! ```js
//! const options = { key: fs.readFileSync('key.pem'), cert: fs.readFileSync('cert.pem') };
//! https.createServer(options, (req, res) => { res.writeHead(200); res.end('hello world\n'); })
//!   .listen(8000);
//! ```
//!
//! Make the files with the seeds' commands, then run and try it:
//!
//! ```sh
//! openssl req -x509 -newkey rsa:2048 -nodes -sha256 -subj '/CN=localhost' \
//!   -keyout key.pem -out cert.pem
//! cargo run -p portcullis --example create_server -- cert.pem key.pem
//! curl -k https://localhost:8000/
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis::{Identity, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cert = args.next().unwrap_or_else(|| "cert.pem".into());
    let key = args.next().unwrap_or_else(|| "key.pem".into());

    let server = Server::builder()
        .identity(Identity::from_pem_files(&cert, &key)?)
        .build()?;
    let hello = tower::service_fn(|_req: Request<Incoming>| async {
        let mut res = Response::new(Full::new(Bytes::from_static(b"hello world\n")));
        *res.status_mut() = StatusCode::OK;
        Ok::<_, Infallible>(res)
    });
    server.serve("0.0.0.0:8000", hello).await?;
    Ok(())
}

//! The static-file flags of `portcullis serve DIR`, mapped onto `portcullis::files`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use http::HeaderValue;
use http_body_util::BodyExt;
use portcullis::files::{CacheControl, StaticFiles};
use tower::util::BoxCloneService;
use tower::ServiceExt;

use crate::serve::HttpService;

/// Static-file options (used with DIR).
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Single-page app: a path that does not exist, asked for by a browser (Accept: text/html)
    /// and not looking like an asset (no dot in its last segment), gets DIR/index.html with
    /// 200; assets still 404. Same as --fallback index.html. [default: off]
    #[arg(long, conflicts_with = "fallback")]
    pub spa: bool,

    /// Like --spa, with another file of DIR.
    #[arg(long, value_name = "FILE")]
    pub fallback: Option<String>,

    /// List directories that have no index.html (HTML sortable by name, size and date; JSON
    /// with Accept: application/json). [default: off, such a directory is a 404]
    #[arg(long)]
    pub browse: bool,

    /// Cache-Control on files: no-cache (clients revalidate, a 304 is cheap), max-age=SECONDS,
    /// immutable (one year for fingerprinted names such as app.3f9a1c2b.js, no-cache for the
    /// rest) or none. [default: no-cache]
    #[arg(long, value_name = "POLICY", value_parser = parse_cache_control)]
    pub cache: Option<CacheControl>,

    /// Memory for small files kept in RAM (compressed copies included), e.g. 8MiB or 512KiB;
    /// 0 turns the cache off. A changed file is served fresh within half a second either way.
    /// [default: 8MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub cache_size: Option<usize>,

    /// Send Access-Control-Allow-Origin: ORIGIN (* without a value) and answer CORS preflight
    /// requests. [default: off]
    #[arg(long, value_name = "ORIGIN", num_args = 0..=1, default_missing_value = "*")]
    pub cors: Option<String>,

    /// Names starting with a dot (.env, .git/…): deny (404) or allow; .well-known is always
    /// served. [default: deny]
    #[arg(long, value_name = "POLICY", value_parser = ["deny", "allow"])]
    pub dotfiles: Option<String>,

    /// Serve files reached through symlinks that lead out of DIR. [default: off, 404]
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Send files as they are: no zstd/br/gzip, and precompressed .zst/.br/.gz siblings
    /// ignored. [default: compress text types for clients that accept it]
    #[arg(long)]
    pub no_compression: bool,
}

impl FilesArgs {
    /// Whether any of these flags was given (they need DIR).
    pub fn any(&self) -> bool {
        self.spa
            || self.fallback.is_some()
            || self.browse
            || self.cache.is_some()
            || self.cache_size.is_some()
            || self.cors.is_some()
            || self.dotfiles.is_some()
            || self.follow_symlinks
            || self.no_compression
    }

    /// The service for DIR.
    pub fn service(&self, dir: PathBuf) -> anyhow::Result<HttpService> {
        let mut builder = StaticFiles::builder(dir.clone())
            .browse(self.browse)
            .dotfiles(self.dotfiles.as_deref() == Some("allow"))
            .follow_symlinks(self.follow_symlinks)
            .compression(!self.no_compression);
        if self.spa {
            builder = builder.spa_fallback("index.html");
        }
        if let Some(file) = &self.fallback {
            if !dir.join(file).is_file() {
                bail!("--fallback {file}: no such file in {}", dir.display());
            }
            builder = builder.spa_fallback(file.clone());
        }
        if let Some(policy) = &self.cache {
            builder = builder.cache_control(policy.clone());
        }
        if let Some(size) = self.cache_size {
            builder = builder.cache_size(size);
        }
        if let Some(origin) = &self.cors {
            let value = HeaderValue::from_str(origin)
                .ok()
                .filter(|_| origin == "*" || origin.contains("://"))
                .with_context(|| {
                    format!("--cors {origin}: give * or an origin such as https://app.example")
                })?;
            builder = builder.cors(value);
        }
        let files = builder
            .build()
            .with_context(|| format!("DIR {}", dir.display()))?;
        type Req = http::Request<hyper::body::Incoming>;
        let service = ServiceExt::<Req>::map_response(files, |res| {
            res.map(|body| body.map_err(Into::into).boxed_unsync())
        });
        Ok(BoxCloneService::new(ServiceExt::<Req>::map_err(
            service,
            |never: std::convert::Infallible| -> crate::serve::BoxError { match never {} },
        )))
    }
}

fn parse_cache_control(value: &str) -> Result<CacheControl, String> {
    match value {
        "no-cache" => Ok(CacheControl::Revalidate),
        "immutable" => Ok(CacheControl::ImmutableFingerprinted),
        "none" => Ok(CacheControl::None),
        other => other
            .strip_prefix("max-age=")
            .and_then(|s| s.parse::<u64>().ok())
            .map(|secs| CacheControl::MaxAge(Duration::from_secs(secs)))
            .ok_or_else(|| "no-cache, max-age=SECONDS, immutable or none".to_owned()),
    }
}

/// `8MiB`, `512KiB`, `1048576` (bytes).
pub fn parse_size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| "a size such as 8MiB, 512KiB or 1048576".to_owned())?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err("a size such as 8MiB, 512KiB or 1048576".to_owned()),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| "too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_policies() {
        assert_eq!(parse_size("8MiB"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_size("512k"), Ok(512 * 1024));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("lots").is_err());
        assert_eq!(
            parse_cache_control("max-age=60"),
            Ok(CacheControl::MaxAge(Duration::from_secs(60)))
        );
        assert_eq!(
            parse_cache_control("immutable"),
            Ok(CacheControl::ImmutableFingerprinted)
        );
        assert!(parse_cache_control("forever").is_err());
    }
}

//! Content types by file extension: `charset=utf-8` on every text type (a UTF-8 `.txt`, or an
//! HTML page without `<meta charset>`, is otherwise shown as Latin-1 by browsers), and the
//! modern types older tables lack (`.mjs`, `.wasm`, `.webmanifest`, `.avif`).

use std::path::Path;

/// A file's content type, and whether compressing it pays off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kind {
    pub(crate) content_type: &'static str,
    pub(crate) compressible: bool,
}

/// The kind of the file at `path`, by its extension (case-insensitive).
pub(crate) fn kind_of(path: &Path) -> Kind {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (content_type, compressible) = match ext.as_str() {
        "html" | "htm" => ("text/html; charset=utf-8", true),
        "css" => ("text/css; charset=utf-8", true),
        "js" | "mjs" | "cjs" => ("text/javascript; charset=utf-8", true),
        "json" | "map" => ("application/json", true),
        "webmanifest" => ("application/manifest+json", true),
        "txt" | "text" | "log" | "conf" | "ini" => ("text/plain; charset=utf-8", true),
        "md" | "markdown" => ("text/markdown; charset=utf-8", true),
        "csv" => ("text/csv; charset=utf-8", true),
        "xml" => ("application/xml", true),
        "rss" => ("application/rss+xml", true),
        "atom" => ("application/atom+xml", true),
        "svg" => ("image/svg+xml", true),
        "wasm" => ("application/wasm", true),
        "ttf" => ("font/ttf", true),
        "otf" => ("font/otf", true),
        "woff" => ("font/woff", false),
        "woff2" => ("font/woff2", false),
        "ico" => ("image/x-icon", true),
        "png" => ("image/png", false),
        "jpg" | "jpeg" => ("image/jpeg", false),
        "gif" => ("image/gif", false),
        "webp" => ("image/webp", false),
        "avif" => ("image/avif", false),
        "bmp" => ("image/bmp", true),
        "mp4" => ("video/mp4", false),
        "webm" => ("video/webm", false),
        "mp3" => ("audio/mpeg", false),
        "ogg" => ("audio/ogg", false),
        "wav" => ("audio/wav", true),
        "pdf" => ("application/pdf", false),
        "zip" => ("application/zip", false),
        "gz" => ("application/gzip", false),
        "br" => ("application/x-brotli", false),
        "zst" => ("application/zstd", false),
        "tar" => ("application/x-tar", true),
        "pem" | "crt" => ("application/x-pem-file", true),
        _ => ("application/octet-stream", false),
    };
    Kind {
        content_type,
        compressible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_say_utf8_and_modern_types_are_known() {
        assert_eq!(
            kind_of(Path::new("a/notes.TXT")).content_type,
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            kind_of(Path::new("m.mjs")).content_type,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            kind_of(Path::new("x.wasm")).content_type,
            "application/wasm"
        );
        assert_eq!(
            kind_of(Path::new("site.webmanifest")).content_type,
            "application/manifest+json"
        );
        assert_eq!(kind_of(Path::new("p.avif")).content_type, "image/avif");
        assert!(!kind_of(Path::new("p.png")).compressible);
        assert_eq!(
            kind_of(Path::new("noext")).content_type,
            "application/octet-stream"
        );
    }
}

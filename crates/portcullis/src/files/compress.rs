//! Content codings: which one a client accepts (`Accept-Encoding`), and compressing a small
//! file's bytes once so that the result can be cached next to them.

use std::io::Write;

use bytes::Bytes;
use http::HeaderValue;

/// A content coding, in the order preferred when a client accepts several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Zstd,
    Br,
    Gzip,
}

impl Encoding {
    pub(crate) const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Br, Encoding::Gzip];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The `Content-Encoding` token.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }

    pub(crate) fn header(self) -> HeaderValue {
        HeaderValue::from_static(self.token())
    }

    /// The file-name suffix of a precompressed sibling (`app.js.br`).
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Encoding::Zstd => "zst",
            Encoding::Br => "br",
            Encoding::Gzip => "gz",
        }
    }

    /// Compresses `data`; `None` when that does not make it smaller.
    pub(crate) fn compress(self, data: &[u8]) -> Option<Bytes> {
        let out = match self {
            Encoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 2),
                    flate2::Compression::new(6),
                );
                encoder.write_all(data).ok()?;
                encoder.finish().ok()?
            }
            Encoding::Br => {
                let mut out = Vec::with_capacity(data.len() / 2);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 6,
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
                out
            }
            Encoding::Zstd => zstd::bulk::compress(data, 6).ok()?,
        };
        (out.len() < data.len()).then(|| Bytes::from(out))
    }
}

/// The codings an `Accept-Encoding` header accepts (q above zero), indexed like
/// [`Encoding::ALL`]; `*` stands for every coding not listed.
pub(crate) fn accepted(header: Option<&HeaderValue>) -> [bool; 3] {
    let mut accepted = [false; 3];
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return accepted;
    };
    let mut listed = [false; 3];
    let mut star = false;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or_default().trim();
        let q_zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if token == "*" {
            star = !q_zero;
            continue;
        }
        for encoding in Encoding::ALL {
            if token.eq_ignore_ascii_case(encoding.token()) {
                listed[encoding.index()] = true;
                accepted[encoding.index()] = !q_zero;
            }
        }
    }
    if star {
        for i in 0..3 {
            if !listed[i] {
                accepted[i] = true;
            }
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_with_weights_and_star() {
        let hv = |s: &'static str| Some(HeaderValue::from_static(s));
        assert_eq!(
            accepted(hv("gzip, deflate, br").as_ref()),
            [false, true, true]
        );
        assert_eq!(accepted(hv("br;q=0, gzip").as_ref()), [false, false, true]);
        assert_eq!(accepted(hv("*").as_ref()), [true, true, true]);
        assert_eq!(accepted(hv("*, zstd;q=0").as_ref()), [false, true, true]);
        assert_eq!(accepted(hv("ZSTD;q=0.5").as_ref()), [true, false, false]);
        assert_eq!(accepted(None), [false, false, false]);
    }

    #[test]
    fn compressed_bytes_decompress_to_the_original() {
        let text = "hello, portcullis! ".repeat(200);
        for encoding in Encoding::ALL {
            let packed = encoding.compress(text.as_bytes()).unwrap();
            assert!(packed.len() < text.len() / 4, "{encoding:?}");
            let unpacked = match encoding {
                Encoding::Zstd => zstd::bulk::decompress(&packed, text.len()).unwrap(),
                Encoding::Br => {
                    let mut out = Vec::new();
                    brotli::BrotliDecompress(&mut &packed[..], &mut out).unwrap();
                    out
                }
                Encoding::Gzip => {
                    use std::io::Read;
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&packed[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
            };
            assert_eq!(unpacked, text.as_bytes());
        }
        assert_eq!(Encoding::Gzip.compress(b"x"), None, "not smaller");
    }
}

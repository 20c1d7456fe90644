//! `Range: bytes=…` for one range (RFC 9110 §14.2). A request for several ranges is answered
//! with the whole representation (200), which the RFC allows: multipart/byteranges is not
//! produced.

use std::ops::Range;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ranged {
    /// Serve it all (no usable range, or several).
    Whole,
    /// Serve these bytes with 206.
    Part(Range<u64>),
    /// 416: no byte of the range exists.
    Unsatisfiable,
}

/// Judges a `Range` header value against a length.
pub(crate) fn ranged(header: &str, len: u64) -> Ranged {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(len.saturating_sub(suffix)..len)
            }
        }
        (false, Some(start), end) => {
            if last.trim().is_empty() || end.is_some() {
                if start >= len {
                    return Ranged::Unsatisfiable;
                }
                let end = end.map_or(len, |e| e.saturating_add(1).min(len));
                if end <= start {
                    return Ranged::Whole;
                }
                Ranged::Part(start..end)
            } else {
                Ranged::Whole
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_in_every_form() {
        assert_eq!(ranged("bytes=0-4", 10), Ranged::Part(0..5));
        assert_eq!(ranged("bytes=5-", 10), Ranged::Part(5..10));
        assert_eq!(ranged("bytes=-3", 10), Ranged::Part(7..10));
        assert_eq!(ranged("bytes=-30", 10), Ranged::Part(0..10));
        assert_eq!(ranged("bytes=8-100", 10), Ranged::Part(8..10));
        assert_eq!(ranged("bytes=10-", 10), Ranged::Unsatisfiable);
        assert_eq!(ranged("bytes=-0", 10), Ranged::Unsatisfiable);
        assert_eq!(ranged("bytes=0-1,4-5", 10), Ranged::Whole);
        assert_eq!(ranged("bytes=5-2", 10), Ranged::Whole);
        assert_eq!(ranged("items=0-1", 10), Ranged::Whole);
        assert_eq!(ranged("bytes=a-b", 10), Ranged::Whole);
    }
}

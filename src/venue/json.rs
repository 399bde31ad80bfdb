//! JSON helpers the venue parsers share: error labels, streaming over an
//! array without collecting it, and locating a borrowed slice in its frame.

use crate::venue::Malformed;
use rust_decimal::Decimal;
use serde::de::{self, Deserialize, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Deepest `[`/`{` nesting accepted. sonic-rs skips ignored values
/// (unknown fields, `LazyValue`s) recursively with no depth limit, so one
/// deeply nested frame (10 000 levels: 20 kB) overflowed a core's 2 MiB
/// stack and aborted the process. Real frames nest at most 6 levels; 32
/// keeps even a debug build (~37 kB of stack a level) within 2 MiB.
pub const MAX_NESTING: usize = 32;

/// Whether `text` nests arrays/objects deeper than [`MAX_NESTING`]
/// (brackets inside strings do not count). Check before parsing.
#[inline]
pub fn too_deep(text: &[u8]) -> bool {
    // Each level needs a byte of its own.
    text.len() > MAX_NESTING && super::nesting::deeper_than(text, MAX_NESTING)
}

/// Checks a REST body before it is parsed: valid UTF-8 (sonic-rs checks
/// bytes only once the parse is over, after borrowed `&str`s and raw values
/// were already taken from them) and nesting within [`MAX_NESTING`].
pub fn check_body(body: &[u8]) -> Result<(), Malformed> {
    if std::str::from_utf8(body).is_err() {
        return Err(Malformed::InvalidUtf8);
    }
    if too_deep(body) {
        return Err(Malformed::BadJson);
    }
    Ok(())
}

/// Longest number text taken: an exact `Decimal` needs at most 29 digits,
/// a point and a sign.
pub const MAX_NUMBER_LEN: usize = 64;

/// The decimal a venue wrote, exactly, from at most [`MAX_NUMBER_LEN`]
/// bytes that start (after a `-`) and end with a digit.
/// `Decimal::from_str_exact` recurses once per character: a long run of
/// `_` (which it skips) in a price overflowed the stack, even in release.
/// The end checks also refuse its `+1`, `.5` and `1.`; an `_` between
/// digits is still skipped (`1_000`): finding it would cost a scan of every
/// number, a good part of a parse.
#[inline]
pub fn exact_decimal(s: &str) -> Option<Decimal> {
    let b = s.as_bytes();
    let unsigned = b.strip_prefix(b"-").unwrap_or(b);
    let ok = b.len() <= MAX_NUMBER_LEN
        && unsigned.first().is_some_and(u8::is_ascii_digit)
        && unsigned.last().is_some_and(u8::is_ascii_digit);
    if !ok {
        return None;
    }
    if let Some(d) = plain_decimal(b) {
        return Some(d);
    }
    Decimal::from_str_exact(s).ok()
}

/// The common case read in one pass: unsigned, digits with at most one
/// point, at most 19 digits (so the mantissa fits a `u64` unchecked).
/// `None` sends the text to `from_str_exact` (signs, `_`, long mantissas,
/// invalid text), which made a third of a trade's parse.
#[inline]
fn plain_decimal(b: &[u8]) -> Option<Decimal> {
    if b.len() > 20 {
        return None;
    }
    let mut m: u64 = 0;
    let mut point = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            // Wraps past 19 digits, which are refused below anyway (a
            // debug build must not panic on a 20-digit text).
            b'0'..=b'9' => m = m.wrapping_mul(10).wrapping_add(u64::from(c - b'0')),
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    let digits = b.len() - usize::from(point.is_some());
    if digits > 19 {
        return None;
    }
    // The caller checked the text starts and ends with a digit.
    let scale = point.map_or(0, |p| b.len() - p - 1) as u32;
    Some(Decimal::from_parts(
        m as u32,
        (m >> 32) as u32,
        0,
        false,
        scale,
    ))
}

/// sonic-rs error → malformed-frame label.
pub fn classify(e: &sonic_rs::Error) -> Malformed {
    if e.is_unmatched_type() {
        Malformed::WrongType
    } else {
        Malformed::BadJson
    }
}

/// Calls `f` on each element of the JSON array `raw` as it is parsed (no
/// intermediate `Vec`). Stops at the first error `f` returns.
pub fn each<'de, T, F>(raw: &'de str, mut f: F) -> Result<(), Malformed>
where
    T: Deserialize<'de>,
    F: FnMut(T) -> Result<(), Malformed>,
{
    let mut failed = None;
    let mut de = sonic_rs::Deserializer::from_str(raw);
    let r = de::Deserializer::deserialize_seq(
        &mut de,
        EachVisitor {
            f: &mut f,
            failed: &mut failed,
            _t: PhantomData,
        },
    );
    match (failed, r) {
        (Some(m), _) => Err(m),
        (None, Err(e)) => Err(classify(&e)),
        (None, Ok(())) => Ok(()),
    }
}

struct EachVisitor<'x, T, F> {
    f: &'x mut F,
    failed: &'x mut Option<Malformed>,
    _t: PhantomData<fn() -> T>,
}

impl<'de, T, F> Visitor<'de> for EachVisitor<'_, T, F>
where
    T: Deserialize<'de>,
    F: FnMut(T) -> Result<(), Malformed>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            if let Err(m) = (self.f)(item) {
                *self.failed = Some(m);
                return Err(de::Error::custom("rejected element"));
            }
        }
        Ok(())
    }
}

/// Byte range of `s` inside `whole` (`s` was deserialized from `whole`), so
/// a sub-array can be parsed again later without copying it.
pub fn range_in(whole: &str, s: &str) -> Result<(usize, usize), Malformed> {
    let start = (s.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    if start > whole.len() || whole.len() - start < s.len() {
        return Err(Malformed::WrongType);
    }
    Ok((start, start + s.len()))
}

/// A string of ASCII digits as a number (OKX `tradeId`); `None` otherwise.
pub fn digits_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_streams_and_stops_at_the_first_rejection() {
        let mut seen = Vec::new();
        assert_eq!(
            each::<u32, _>("[1,2,3]", |x| {
                seen.push(x);
                Ok(())
            }),
            Ok(())
        );
        assert_eq!(seen, vec![1, 2, 3]);
        let r = each::<u32, _>("[1,2,3]", |x| {
            if x == 2 {
                Err(Malformed::InvalidNumber)
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(Malformed::InvalidNumber));
        assert_eq!(
            each::<u32, _>("[1,\"x\"]", |_| Ok(())),
            Err(Malformed::WrongType)
        );
        assert_eq!(each::<u32, _>("[1,", |_| Ok(())), Err(Malformed::BadJson));
    }

    /// The one-pass reader gives exactly `from_str_exact`'s value and scale
    /// (trailing zeros kept), and leaves everything else to it.
    #[test]
    fn every_point_position_and_odd_byte_reads_as_rust_decimal_reads_it() {
        let mut checked = 0;
        for int_len in 0..=9usize {
            for frac_len in 0..=10usize {
                let int: String = (0..int_len)
                    .map(|k| char::from(b'1' + (k % 9) as u8))
                    .collect();
                let frac: String = (0..frac_len)
                    .map(|k| char::from(b'9' - (k % 10) as u8))
                    .collect();
                let text = if frac_len == 0 {
                    int.clone()
                } else {
                    format!("{int}.{frac}")
                };
                let mut cases = vec![text.clone(), format!("0{text}")];
                // One byte replaced by a digit's neighbour or another odd byte.
                for at in 0..text.len() {
                    for odd in ['/', ':', '_', '.', 'a', ' '] {
                        let mut t = text.clone().into_bytes();
                        t[at] = odd as u8;
                        cases.push(String::from_utf8(t).unwrap());
                    }
                }
                for s in cases {
                    let theirs = Decimal::from_str_exact(&s).ok().filter(|_| {
                        s.as_bytes().first().is_some_and(u8::is_ascii_digit)
                            && s.as_bytes().last().is_some_and(u8::is_ascii_digit)
                    });
                    let ours = exact_decimal(&s);
                    assert_eq!(ours, theirs, "{s:?}");
                    if let (Some(a), Some(b)) = (ours, theirs) {
                        assert_eq!(a.scale(), b.scale(), "{s:?}");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 7_090);
    }

    #[test]
    fn plain_decimals_read_as_rust_decimal_reads_them() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut cases: Vec<String> = [
            "0",
            "00",
            "0.0",
            "1",
            "64000",
            "0.00100000",
            "00.10",
            "18446744073709551615",
            "9999999999999999999",
            "999999999999999999.9",
            "0.000000000000000001",
            "1.8446744073709551616",
            "12345678901234567890",
            "1..2",
            "1.2.3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 22) as usize + 1;
            let mut s: String = (0..digits)
                .map(|k| char::from(b'0' + ((x >> (k * 2 % 60)) % 10) as u8))
                .collect();
            let point = (x >> 40) as usize % (digits + 2);
            if point > 0 && point < digits {
                s.insert(point, '.');
            }
            cases.push(s);
        }
        for s in &cases {
            let ours = exact_decimal(s);
            let theirs = Decimal::from_str_exact(s).ok().filter(|_| {
                s.as_bytes().first().is_some_and(u8::is_ascii_digit)
                    && s.as_bytes().last().is_some_and(u8::is_ascii_digit)
            });
            assert_eq!(ours, theirs, "{s}");
            if let (Some(a), Some(b)) = (ours, theirs) {
                assert_eq!((a.mantissa(), a.scale()), (b.mantissa(), b.scale()), "{s}");
                assert_eq!(a.to_string(), b.to_string(), "{s}");
            }
        }
    }

    #[test]
    fn decimals_only_as_venues_write_them() {
        for (s, want) in [
            ("0.00100000", Some("0.00100000")),
            ("-0.0001", Some("-0.0001")),
            ("64000", Some("64000")),
            (
                "0.0000000000000000000000000001",
                Some("0.0000000000000000000000000001"),
            ),
        ] {
            assert_eq!(
                exact_decimal(s).map(|d| d.to_string()).as_deref(),
                want,
                "{s}"
            );
        }
        for s in [
            "",
            "-",
            ".",
            "1_",
            "+1",
            "1.",
            ".5",
            "-.5",
            " 1",
            "1 ",
            "1e5",
            "0x10",
            "NaN",
            "1.2.3",
            "--1",
            "1-2",
            "1..2",
            "-1-",
            "١٢٣",
            "99999999999999999999999999999.9",
            "1.00000000000000000000000000001",
        ] {
            assert_eq!(exact_decimal(s), None, "{s:?}");
        }
        // Long texts are refused before rust_decimal sees them.
        assert_eq!(exact_decimal(&format!("1{}", "_".repeat(1 << 20))), None);
        assert_eq!(exact_decimal(&"0".repeat(1 << 20)), None);
    }

    #[test]
    fn nesting_is_bounded_outside_strings() {
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(nest(MAX_NESTING).as_bytes()));
        assert!(too_deep(nest(MAX_NESTING + 1).as_bytes()));
        assert!(too_deep(b"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["));
        // Brackets in strings (escaped quotes too) are text, not nesting.
        let s = format!(
            r#"{{"a":"{}\"{}","b":[[1],[2]]}}"#,
            "[".repeat(99),
            "{".repeat(99)
        );
        assert!(!too_deep(s.as_bytes()));
        // Many levels side by side are not deep.
        let wide = format!("[{}]", vec!["[1]"; 1000].join(","));
        assert!(!too_deep(wide.as_bytes()));
    }

    #[test]
    fn range_in_locates_a_borrowed_slice() {
        let whole = "abc[1,2]def";
        assert_eq!(range_in(whole, &whole[3..8]), Ok((3, 8)));
        assert_eq!(range_in(whole, "elsewhere"), Err(Malformed::WrongType));
    }
}

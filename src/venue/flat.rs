//! A strict, allocation-free scanner for the flat JSON objects that make up
//! most market data (a trade is a dozen scalar members). It is a fast path
//! only: it accepts a subset of JSON, objects whose members are strings
//! without escapes, unsigned integers and booleans, and answers `None` for
//! anything else (arrays, nested values a caller did not ask for, escapes,
//! floats, negative numbers, `null`, or invalid JSON), so the caller falls
//! back to its full serde parser, which then accepts or rejects the frame as
//! before. Whatever it accepts reads exactly as the full parser reads it:
//! `tests` below and `tests/fuzz.rs` compare the two.
//!
//! Why: sonic-rs' serde path spends most of a small frame's time in
//! per-key visitor calls; a byte loop over a 160-byte trade is 3–4× faster.

use crate::swar::{json_special, LO};

/// A scalar member value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar<'a> {
    Str(&'a str),
    U64(u64),
    Bool(bool),
}

/// Powers of ten below 10⁸.
const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// How many of the eight bytes of `w` (little-endian: the first byte
/// lowest) are ASCII digits before the first byte that is not (0..=8).
#[inline]
fn leading_digits(w: u64) -> usize {
    // After `^ '0'` a digit byte is 0..=9: a high nibble or a carry out of
    // `+ 6` flags the others. Carries only move upwards and only out of an
    // already flagged byte, so the lowest flag is always a true one.
    let t = w ^ (LO * u64::from(b'0'));
    let m = (t & (LO * 0xF0)) | (t.wrapping_add(LO * 0x06) & (LO * 0x10));
    (m.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (0..=8) bytes of `w`, all ASCII digits.
#[inline]
fn digits_value(w: u64, n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    // Digit values, the first `n` moved to the top so the bytes below are
    // leading zeros (borrows from the other bytes only move upwards, out).
    eight_values(w.wrapping_sub(LO * u64::from(b'0')) << (8 * (8 - n)))
}

/// Eight digit values (0..=9, the first in the lowest byte) as a number:
/// pairs, then fours, then all eight, each lane `high * 10^k + low`.
#[inline]
fn eight_values(v: u64) -> u64 {
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0xFFFF_FFFF
}

/// A cursor over one JSON text.
pub struct Scanner<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Scanner { text, i: 0 }
    }

    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    fn skip_ws(&mut self) {
        let b = self.bytes();
        while let Some(&c) = b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes().get(self.i).copied()
    }

    /// Consumes `c` (after whitespace) or fails.
    #[inline]
    fn expect(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes or control characters, borrowed.
    #[inline]
    pub fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        self.string_rest()
    }

    /// The rest of a string whose opening quote was consumed (by [`Self::literal`]).
    #[inline]
    pub fn string_rest(&mut self) -> Option<&'a str> {
        let b = self.bytes();
        let start = self.i;
        loop {
            // Eight bytes at a time while none is special.
            if let Some(chunk) = b.get(self.i..self.i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().ok()?);
                let m = json_special(w);
                if m == 0 {
                    self.i += 8;
                    continue;
                }
                self.i += (m.trailing_zeros() / 8) as usize;
            }
            match *b.get(self.i)? {
                b'"' => break,
                // An escape needs decoding, a raw control byte is invalid JSON:
                // both are the full parser's business.
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let s = &self.text[start..self.i];
        self.i += 1;
        Some(s)
    }

    /// Consumes exactly `word` (no whitespace skipped) or fails: reading a
    /// venue's usual layout key by key, e.g. `,"p":"`, costs one compare
    /// per member instead of a key scan and a match.
    #[inline]
    pub fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        if self.bytes().get(self.i..end)? == word {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// `true` or `false`, no whitespace before.
    #[inline]
    pub fn boolean(&mut self) -> Option<bool> {
        match self.bytes().get(self.i)? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// An unsigned integer in JSON's grammar that fits a `u64`. Up to 15
    /// digits with 16 bytes of text left (every timestamp and id of a
    /// trade) are read eight bytes at a time; longer numbers and the end of
    /// a text byte by byte.
    #[inline]
    pub fn number(&mut self) -> Option<u64> {
        let b = self.bytes();
        let start = self.i;
        if let Some(chunk) = b.get(start..start + 16) {
            let w0 = u64::from_le_bytes(<[u8; 8]>::try_from(&chunk[..8]).ok()?);
            let n0 = leading_digits(w0);
            let (v, n) = if n0 < 8 {
                (digits_value(w0, n0), n0)
            } else {
                let w1 = u64::from_le_bytes(<[u8; 8]>::try_from(&chunk[8..]).ok()?);
                let n1 = leading_digits(w1);
                if n1 == 8 {
                    return self.number_bytewise();
                }
                let hi = digits_value(w0, 8);
                (hi * POW10[n1] + digits_value(w1, n1), 8 + n1)
            };
            // JSON forbids leading zeros.
            if n == 0 || (n > 1 && b[start] == b'0') {
                return None;
            }
            self.i = start + n;
            // A fraction or exponent is not ours.
            if matches!(b.get(self.i), Some(b'.' | b'e' | b'E')) {
                return None;
            }
            return Some(v);
        }
        self.number_bytewise()
    }

    /// [`Self::number`] one byte at a time, in one pass (counting the
    /// digits first was a second pass per number).
    #[inline(never)]
    fn number_bytewise(&mut self) -> Option<u64> {
        let b = self.bytes();
        let start = self.i;
        let mut i = start;
        let mut v: u64 = 0;
        // 19 digits always fit a u64: no overflow check on the hot loop
        // (timestamps have 13), only on a 20th digit.
        let end = b.len().min(start + 19);
        while i < end {
            let d = b[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v * 10 + u64::from(d);
            i += 1;
        }
        if i == start + 19 {
            if let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9) {
                v = v.checked_mul(10)?.checked_add(u64::from(d))?;
                i += 1;
                // 21+ digits cannot fit.
                if b.get(i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
            }
        }
        // JSON forbids leading zeros.
        if i == start || (i > start + 1 && b[start] == b'0') {
            return None;
        }
        self.i = i;
        // A fraction or exponent is not ours.
        if matches!(b.get(i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(v)
    }

    /// A scalar value: string, unsigned integer or boolean.
    #[inline]
    pub fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Scalar::Str),
            b'0'..=b'9' => self.number().map(Scalar::U64),
            b't' | b'f' => self.boolean().map(Scalar::Bool),
            _ => None,
        }
    }

    /// Walks an object's members: `member(key, self)` must consume the value
    /// (or fail). A literal must be followed by a delimiter, which the
    /// member/closing checks here enforce (`truex` fails at `x`).
    #[inline]
    pub fn object(
        &mut self,
        mut member: impl FnMut(&'a str, &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(key, self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Only whitespace is left.
    #[inline]
    pub fn end(&mut self) -> Option<()> {
        self.skip_ws();
        (self.i == self.text.len()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members of a flat object, or `None` where the full parser must decide.
    fn members(text: &str) -> Option<Vec<(&str, Scalar<'_>)>> {
        let mut out = Vec::new();
        let mut sc = Scanner::new(text);
        sc.object(|k, sc| {
            out.push((k, sc.scalar()?));
            Some(())
        })?;
        sc.end()?;
        Some(out)
    }

    #[test]
    fn reads_flat_objects() {
        assert_eq!(
            members(r#" { "e" : "trade","t":0,"T":18446744073709551615,"m":true,"M":false } "#),
            Some(vec![
                ("e", Scalar::Str("trade")),
                ("t", Scalar::U64(0)),
                ("T", Scalar::U64(u64::MAX)),
                ("m", Scalar::Bool(true)),
                ("M", Scalar::Bool(false)),
            ])
        );
        assert_eq!(members("{}"), Some(vec![]));
        assert_eq!(
            members(r#"{"a":9999999999999999999,"b":10000000000000000000,"c":0}"#),
            Some(vec![
                ("a", Scalar::U64(9_999_999_999_999_999_999)),
                ("b", Scalar::U64(10_000_000_000_000_000_000)),
                ("c", Scalar::U64(0)),
            ])
        );
        assert_eq!(
            members(r#"{"s":"é€"}"#),
            Some(vec![("s", Scalar::Str("é€"))])
        );
    }

    #[test]
    fn strings_of_every_length_with_a_special_byte_anywhere() {
        for len in 0..40 {
            let plain: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let text = format!(r#"{{"s":"{plain}"}}"#);
            assert_eq!(members(&text), Some(vec![("s", Scalar::Str(&plain))]));
            for at in 0..len {
                for bad in ['\\', '\u{1}', '\n', '\u{1f}'] {
                    let mut s = plain.clone();
                    s.replace_range(at..at + 1, &bad.to_string());
                    let text = format!(r#"{{"s":"{s}"}}"#);
                    assert_eq!(members(&text), None, "{text:?}");
                }
                // A quote ends the string early: what follows is not JSON.
                let mut s = plain.clone();
                s.replace_range(at..at + 1, "\"");
                assert_eq!(members(&format!(r#"{{"s":"{s}"}}"#)), None);
                // Multi-byte text is fine.
                let mut s = plain.clone();
                s.replace_range(at..at + 1, "é");
                let text = format!(r#"{{"s":"{s}"}}"#);
                assert_eq!(members(&text), Some(vec![("s", Scalar::Str(&s))]));
            }
        }
    }

    #[test]
    fn numbers_of_every_length_followed_by_anything_at_any_distance_from_the_end() {
        let mut checked = 0;
        for len in 1..=21usize {
            for lead in [b'1', b'9', b'0'] {
                let digits: String = std::iter::once(lead)
                    .chain((1..len).map(|i| b'0' + ((i * 7 + 3) % 10) as u8))
                    .map(char::from)
                    .collect();
                for after in [
                    "", ",", "}", ".", "e", "E", "x", "-", "/", ":", "é", "\u{0}",
                ] {
                    for pad in 0..18 {
                        let text = format!("{digits}{after}{}", " ".repeat(pad));
                        let mut sc = Scanner::new(&text);
                        let got = sc.number();
                        let fraction = matches!(after.as_bytes().first(), Some(b'.' | b'e' | b'E'));
                        let want = if (lead == b'0' && len > 1) || fraction {
                            None
                        } else {
                            digits.parse::<u64>().ok()
                        };
                        assert_eq!(got, want, "{text:?}");
                        if got.is_some() {
                            assert_eq!(sc.i, len, "{text:?}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 21 * 3 * 12 * 18);
        // Every digit in every position of an 8-byte word and across words.
        for n in [
            0u64,
            7,
            10,
            99_999_999,
            100_000_000,
            123_456_789_012_345,
            999_999_999_999_999,
        ] {
            let text = format!("{n},\"more\":1}}");
            assert_eq!(Scanner::new(&text).number(), Some(n), "{text}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_full_parser() {
        for text in [
            r#"{"t":18446744073709551616}"#, // overflow
            r#"{"t":99999999999999999999}"#,
            r#"{"t":100000000000000000000}"#,
            r#"{"t":01}"#,
            r#"{"t":-1}"#,
            r#"{"t":1.5}"#,
            r#"{"t":1e3}"#,
            r#"{"t":1E3}"#,
            r#"{"s":"a\"b"}"#,
            "{\"s\":\"a\tb\"}",
            r#"{"s":null}"#,
            r#"{"s":[1]}"#,
            r#"{"s":{}}"#,
            r#"{"m":truex}"#,
            r#"{"m":tru}"#,
            r#"{"s":"a""#,
            r#"{"s":"a",}"#,
            r#"{"s""a"}"#,
            r#"{"s":"a"}x"#,
            r#"{"s":"a"} {}"#,
            r#"["s"]"#,
            "",
            "{",
            r#"{"s":"#,
        ] {
            assert_eq!(members(text), None, "{text}");
        }
    }
}

//! How deep a JSON text nests, measured before it is parsed (why: see
//! [`crate::venue::json::MAX_NESTING`]). One pass: on x86_64, 64-byte
//! blocks through SSE2 masks (quotes, brackets, and a prefix XOR of the
//! quotes for what lies inside strings), so the check costs a small part of
//! a parse even for book frames full of brackets; blocks with a backslash,
//! the tail, and other targets go byte by byte.

/// Scan state carried from block to block.
#[derive(Default)]
struct Scan {
    depth: usize,
    in_str: bool,
    /// The next byte is escaped (a backslash ended the previous block).
    escaped: bool,
}

/// Whether `text` nests arrays/objects deeper than `max`. Brackets inside
/// strings do not count; a closer without an opener counts as none.
pub fn deeper_than(text: &[u8], max: usize) -> bool {
    let mut s = Scan::default();
    #[cfg(target_arch = "x86_64")]
    {
        let mut blocks = text.chunks_exact(64);
        for block in &mut blocks {
            if s.block(block, max) {
                return true;
            }
        }
        // The tail too, padded with bytes that mean nothing here.
        let tail = blocks.remainder();
        let mut last = [b' '; 64];
        last[..tail.len()].copy_from_slice(tail);
        s.block(&last, max)
    }
    #[cfg(not(target_arch = "x86_64"))]
    s.bytes(text, max)
}

impl Scan {
    /// Byte by byte; true as soon as the depth exceeds `max`.
    fn bytes(&mut self, text: &[u8], max: usize) -> bool {
        for &b in text {
            if self.escaped {
                self.escaped = false;
            } else if self.in_str {
                match b {
                    b'"' => self.in_str = false,
                    b'\\' => self.escaped = true,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => self.in_str = true,
                    b'[' | b'{' => {
                        self.depth += 1;
                        if self.depth > max {
                            return true;
                        }
                    }
                    b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        false
    }

    /// One 64-byte block.
    #[cfg(target_arch = "x86_64")]
    fn block(&mut self, block: &[u8], max: usize) -> bool {
        let m = masks(block);
        // Escapes are rare in market data: those blocks go byte by byte.
        if m.backslash != 0 || self.escaped {
            return self.bytes(block, max);
        }
        // Bit i: byte i is inside a string (or opens one).
        let inside = prefix_xor(m.quote) ^ if self.in_str { !0 } else { 0 };
        self.in_str = inside >> 63 == 1;
        let (open, close) = (m.open & !inside, m.close & !inside);
        let (o, c) = (open.count_ones() as usize, close.count_ones() as usize);
        if self.depth + o <= max && self.depth >= c {
            // Cannot exceed `max` nor drop below 0 within the block.
            self.depth = self.depth + o - c;
            return false;
        }
        let mut bits = open | close;
        while bits != 0 {
            let bit = bits & bits.wrapping_neg();
            if open & bit != 0 {
                self.depth += 1;
                if self.depth > max {
                    return true;
                }
            } else {
                self.depth = self.depth.saturating_sub(1);
            }
            bits ^= bit;
        }
        false
    }
}

/// Bit i set where byte i is a quote, a backslash, `[`/`{`, `]`/`}`.
#[cfg(target_arch = "x86_64")]
#[derive(Default)]
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8]) -> Masks {
    use std::arch::x86_64::*;
    assert_eq!(block.len(), 64);
    let mut m = Masks::default();
    for i in 0..4 {
        // SAFETY: SSE2 is part of every x86_64 target; the 16 bytes loaded
        // (unaligned load) lie within `block`, which is 64 bytes long.
        let (q, b, o, c) = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast());
            // `[` and `{` differ only in bit 5, as do `]` and `}`.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let eq = |x: __m128i, c: u8| {
                _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8))) as u16 as u64
            };
            (
                eq(v, b'"'),
                eq(v, b'\\'),
                eq(folded, b'{'),
                eq(folded, b'}'),
            )
        };
        let at = 16 * i;
        m.quote |= q << at;
        m.backslash |= b << at;
        m.open |= o << at;
        m.close |= c << at;
    }
    m
}

/// Bit i of the result: XOR of bits 0..=i of `x`.
#[cfg(target_arch = "x86_64")]
fn prefix_xor(mut x: u64) -> u64 {
    for s in [1, 2, 4, 8, 16, 32] {
        x ^= x << s;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte_by_byte(text: &[u8], max: usize) -> bool {
        Scan::default().bytes(text, max)
    }

    #[test]
    fn depth_outside_strings() {
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        for n in [0, 1, 31, 32, 33, 64, 65, 200] {
            let t = format!("{{\"pad\":\"{}\",\"a\":{}}}", "x".repeat(n), nest(n));
            assert_eq!(deeper_than(t.as_bytes(), 32), n + 1 > 32, "{n}");
        }
        let s = r#"{"a":"[[[[\"{{{{","b":[[1],[2]]}"#;
        assert!(!deeper_than(s.as_bytes(), 3));
        assert!(deeper_than(s.as_bytes(), 2));
    }

    /// The block path agrees with the byte path on any text, quotes,
    /// escapes and brackets anywhere, blocks split everywhere.
    #[test]
    fn blocks_agree_with_bytes() {
        let mut rng = fastrand::Rng::with_seed(3);
        let alphabet = b"[]{}\"\\\\ax,:[[[]]";
        for _ in 0..20_000 {
            let len = rng.usize(..300);
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            for max in [0, 1, 3, 8, 32] {
                assert_eq!(
                    deeper_than(&text, max),
                    byte_by_byte(&text, max),
                    "{max} {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
}

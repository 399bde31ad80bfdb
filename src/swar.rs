//! Eight bytes at a time: the zero-byte test the hot scanners share (the
//! flat venue scanner, the JSON string writer, the NATS protocol parser,
//! which reads one `MSG` line per record under load), and short keys
//! compared without a `memcmp` call (symbols, NATS data types).

/// `0x01` in every byte: `LO * b` is `b` in every byte.
pub const LO: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
pub const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes of `s` from `i` (which has them), little-endian.
#[inline]
fn word(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// High bit set in each byte of `w` that is zero; exact for the lowest such
/// byte (a borrow can only mark bytes above a true zero), so exact as a
/// yes/no too.
#[inline]
pub fn zeros(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// High bit set in each byte of `w` (little-endian) that is `"`, `\\` or a
/// control byte: what a JSON string cannot hold unescaped. Exact for the
/// lowest flagged byte, as [`zeros`].
#[inline]
pub fn json_special(w: u64) -> u64 {
    let quote = zeros(w ^ (LO * u64::from(b'"')));
    let backslash = zeros(w ^ (LO * u64::from(b'\\')));
    let control = w.wrapping_sub(LO * 0x20) & !w & HI;
    quote | backslash | control
}

/// Position of the first `b` in `s`.
pub fn find(s: &[u8], b: u8) -> Option<usize> {
    let pat = LO * u64::from(b);
    let mut i = 0;
    while i + 8 <= s.len() {
        let z = zeros(word(s, i) ^ pat);
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..].iter().position(|&c| c == b).map(|p| i + p)
}

/// Position of the first space or tab in `s` (the protocol's field separators).
pub fn find_blank(s: &[u8]) -> Option<usize> {
    const SP: u64 = LO * b' ' as u64;
    const TAB: u64 = LO * b'\t' as u64;
    let mut i = 0;
    while i + 8 <= s.len() {
        let w = word(s, i);
        let z = zeros(w ^ SP) | zeros(w ^ TAB);
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .map(|p| i + p)
}

/// `a == b` without a `memcmp` call for the short keys the hot paths
/// compare (symbols, data types): 4 to 16 bytes as two overlapping loads a
/// side.
#[inline(always)]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let w = |s: &[u8], at: usize| {
            u64::from_le_bytes(<[u8; 8]>::try_from(&s[at..at + 8]).unwrap_or_default())
        };
        (w(a, 0) ^ w(b, 0)) | (w(a, n - 8) ^ w(b, n - 8)) == 0
    } else if (4..8).contains(&n) {
        let w = |s: &[u8], at: usize| {
            u32::from_le_bytes(<[u8; 4]>::try_from(&s[at..at + 4]).unwrap_or_default())
        };
        (w(a, 0) ^ w(b, 0)) | (w(a, n - 4) ^ w(b, n - 4)) == 0
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the plain loops, every position in and around a word, with
    /// bytes next to the target (a borrow) before and after it.
    #[test]
    fn finds_what_the_byte_loop_finds() {
        for len in 0..40 {
            for at in 0..=len {
                for fill in [b'a', 0x00, 0x0b, b'!', 0xff, b'\n' + 1, b'\n' - 1] {
                    let mut s = vec![fill; len];
                    if at < len {
                        s[at] = b'\n';
                    }
                    let want = s.iter().position(|&c| c == b'\n');
                    assert_eq!(find(&s, b'\n'), want, "{s:?}");
                    for blank in [b' ', b'\t'] {
                        let mut t = vec![fill; len];
                        if at < len {
                            t[at] = blank;
                            if at + 1 < len {
                                t[at + 1] = b' ' ^ b'\t' ^ blank;
                            }
                        }
                        let want = t.iter().position(|&c| c == b' ' || c == b'\t');
                        assert_eq!(find_blank(&t), want, "{t:?}");
                    }
                }
            }
        }
    }
}

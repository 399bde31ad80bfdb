//! JSON writing primitives: integers, decimals and string literals appended
//! to a reused byte buffer without `fmt` machinery or allocation (beyond the
//! buffer's growth). A leaf: it imports nothing of this crate, so the
//! record encoder (`sink::encode`), the raw capture and the mock exchange
//! can all use it without depending on one another.
//!
//! Decimals are printed exactly as rust_decimal's `Display` does (scale
//! kept, never an exponent).

use rust_decimal::Decimal;

/// A decimal exactly as rust_decimal's `Display` prints it (scale kept, no
/// exponent), from mantissa and scale directly: `fmt` machinery cost more
/// than the whole JSON parse of a trade.
#[inline]
pub fn push_decimal(out: &mut Vec<u8>, d: &Decimal) {
    let m = d.mantissa();
    if m < 0 {
        out.push(b'-');
    }
    let abs = m.unsigned_abs();
    let scale = d.scale() as usize;
    match u64::try_from(abs) {
        Ok(small) => push_scaled(out, small, scale),
        Err(_) => push_scaled_u128(out, abs, scale),
    }
}

/// The rare mantissa beyond `u64` (over 19 digits): digits one division
/// at a time through a local buffer.
#[cold]
fn push_scaled_u128(out: &mut Vec<u8>, mut abs: u128, scale: usize) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    while abs > 0 {
        i -= 1;
        buf[i] = b'0' + (abs % 10) as u8;
        abs /= 10;
    }
    let digits = &buf[i..];
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    }
}

/// `n` (< 10⁸) as eight ASCII digits, leading zeros kept, in a `u64` whose
/// little-endian bytes are the digits in writing order. Lanes split 4+4,
/// then 2+2, then 1+1 digits with multiply-shift divisions, so the three
/// steps work on all lanes at once instead of a chain of divisions per
/// digit pair (that chain was 9 % of a core: a record has four integers
/// of 13–19 digits).
#[inline]
fn eight_digits(n: u32) -> u64 {
    let n = u64::from(n);
    // [hi 4 | lo 4] in 32-bit lanes, the high half first in memory.
    let v = (n / 10_000) | ((n % 10_000) << 32);
    // x / 100 == (x * 5243) >> 19 for x < 43 699.
    let q = ((v * 5243) >> 19) & 0x0000_007F_0000_007F;
    let v = q | ((v - q * 100) << 16);
    // x / 10 == (x * 103) >> 10 for x < 179.
    let q = ((v * 103) >> 10) & 0x000F_000F_000F_000F;
    let v = q | ((v - q * 10) << 8);
    v + 0x3030_3030_3030_3030
}

/// Decimal digits of `n` (1 for 0).
#[inline]
fn digit_count(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Copies `src` into `out`'s spare room at `at` past its length, without
/// changing the length. The caller has reserved room for it.
#[inline(always)]
fn put(out: &mut Vec<u8>, at: usize, src: &[u8]) {
    let spare = out.spare_capacity_mut();
    assert!(at + src.len() <= spare.len());
    // SAFETY: in bounds (checked above); `write_copy_of_slice` is not stable.
    unsafe {
        std::ptr::copy_nonoverlapping(
            src.as_ptr(),
            spare.as_mut_ptr().add(at).cast::<u8>(),
            src.len(),
        )
    };
}

/// Appends `n` with a decimal point `scale` (at most 28) digits from the
/// right (`0.` and zeros in front when `n` has no more digits than that; no
/// point for 0). Up to 19 fraction digits (every `u64` mantissa's point
/// within its digits) the number is split at the point by a constant
/// division and both parts go out as digit blocks (moving the just-written
/// fraction one byte right to make room for the point read back fresh
/// stores: a stall per decimal).
#[inline]
fn push_scaled(out: &mut Vec<u8>, n: u64, scale: usize) {
    let scale = scale.min(28);
    if scale == 0 {
        push_u64(out, n);
        return;
    }
    let Some((int, frac)) = split_at_point(n, scale) else {
        // Every digit is in the fraction: `0.`, the zeros in front, the digits.
        let b = Blocks::of(n);
        out.reserve(2 + 32);
        out.extend_from_slice(b"0.");
        put(out, 0, &[b'0'; 32]);
        // SAFETY: `put` wrote 32 '0's; `scale - digits` <= 27 are kept.
        unsafe { out.set_len(out.len() + scale - b.digits) };
        b.put(out, b.digits);
        return;
    };
    push_u64(out, int);
    out.push(b'.');
    push_fixed(out, frac, scale);
}

/// `(n / 10^scale, n % 10^scale)` for `scale` 1..=19, by constants (a
/// branch on the scale, which a venue keeps, instead of a division).
#[inline(always)]
fn split_at_point(n: u64, scale: usize) -> Option<(u64, u64)> {
    macro_rules! by {
        ($p:expr) => {
            Some((n / $p, n % $p))
        };
    }
    match scale {
        1 => by!(10),
        2 => by!(100),
        3 => by!(1_000),
        4 => by!(10_000),
        5 => by!(100_000),
        6 => by!(1_000_000),
        7 => by!(10_000_000),
        8 => by!(100_000_000),
        9 => by!(1_000_000_000),
        10 => by!(10_000_000_000),
        11 => by!(100_000_000_000),
        12 => by!(1_000_000_000_000),
        13 => by!(10_000_000_000_000),
        14 => by!(100_000_000_000_000),
        15 => by!(1_000_000_000_000_000),
        16 => by!(10_000_000_000_000_000),
        17 => by!(100_000_000_000_000_000),
        18 => by!(1_000_000_000_000_000_000),
        19 => by!(10_000_000_000_000_000_000),
        _ => None,
    }
}

/// Stores the 8 digit bytes of `w` (first digit lowest) at `dst + at`.
///
/// # Safety
/// `dst + at .. dst + at + 8` must be writable (reserved spare capacity).
#[inline(always)]
unsafe fn store8(dst: *mut u8, at: usize, w: u64) {
    // SAFETY: the caller guarantees the 8 bytes are writable.
    unsafe {
        dst.add(at)
            .cast::<[u8; 8]>()
            .write_unaligned(w.to_le_bytes())
    }
}

/// `v` (< 10^`width`) as exactly `width` (1..=19) digits, zeros in front.
#[inline]
fn push_fixed(out: &mut Vec<u8>, v: u64, width: usize) {
    out.reserve(24);
    let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: at most three 8-byte stores ending at byte 24 of the 24 reserved.
    let store = |at: usize, w: u64| unsafe { store8(dst, at, w) };
    // The block holding the first digits is shifted so the digits beyond
    // `width` fall off; the others are whole.
    let lead = |w: u64, k: usize| w >> (8 * (8 - k));
    if width <= 8 {
        store(0, lead(eight_digits(v as u32), width));
    } else if width <= 16 {
        let k = width - 8;
        store(0, lead(eight_digits((v / 100_000_000) as u32), k));
        store(k, eight_digits((v % 100_000_000) as u32));
    } else {
        let k = width - 16;
        let top = v / 100_000_000;
        store(0, lead(eight_digits((top / 100_000_000) as u32), k));
        store(k, eight_digits((top % 100_000_000) as u32));
        store(k + 8, eight_digits((v % 100_000_000) as u32));
    }
    // SAFETY: the stores wrote `width` digits from the old length on.
    unsafe { out.set_len(out.len() + width.min(19)) };
}

/// Decimal digits of `n` without going through `fmt` machinery.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let b = Blocks::of(n);
    b.put(out, b.digits);
}

/// An integer's digits as up to three blocks of eight ([`eight_digits`]),
/// stored straight into a vector's spare room, the first shifted so its
/// leading zeros fall off (no scratch buffer: reading back just-stored
/// bytes stalls store forwarding).
pub struct Blocks {
    /// Unused blocks are 0.
    w: [u64; 3],
    /// Digits in the first block (1..=8).
    first: usize,
    /// All digits: more than 8 use the second block, more than 16 the third.
    pub digits: usize,
}

impl Blocks {
    // Always inlined: as a call, the struct went back through memory and
    // the prologue cost as much as a block's digits.
    #[inline(always)]
    pub fn of(n: u64) -> Blocks {
        let digits = digit_count(n);
        // The first block's `k` digits are its last `k` bytes: shift the
        // others out (`k` is 1..=8, so the shift is 0..=56).
        let lead = |w: u64, k: usize| w >> (8 * (8 - k));
        if n < 100_000_000 {
            return Blocks {
                w: [lead(eight_digits(n as u32), digits), 0, 0],
                first: digits,
                digits,
            };
        }
        let top = n / 100_000_000;
        let lo = eight_digits((n % 100_000_000) as u32);
        if top < 100_000_000 {
            let k = digits - 8;
            Blocks {
                w: [lead(eight_digits(top as u32), k), lo, 0],
                first: k,
                digits,
            }
        } else {
            let k = digits - 16;
            let hi = lead(eight_digits((top / 100_000_000) as u32), k);
            let mid = eight_digits((top % 100_000_000) as u32);
            Blocks {
                w: [hi, mid, lo],
                first: k,
                digits,
            }
        }
    }

    /// Appends the first `keep` (1..=`digits`) digits: the number, or its
    /// leading part (ms of a ns time without a second conversion).
    #[inline]
    pub fn put(&self, out: &mut Vec<u8>, keep: usize) {
        debug_assert!(keep >= 1 && keep <= self.digits);
        out.reserve(24);
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: at most three 8-byte stores ending at byte 20 of the 24
        // reserved.
        let store = |at: usize, w: u64| unsafe { store8(dst, at, w) };
        // Spelled out: as a loop, the stores became a `memcpy` call. Only the
        // blocks in use are stored (extra stores under a number that is read
        // back, as decimals are, stall store forwarding).
        store(0, self.w[0]);
        if self.digits > 8 {
            store(self.first, self.w[1]);
            if self.digits > 16 {
                store(self.first + 8, self.w[2]);
            }
        }
        // SAFETY: the stores wrote the `digits` digits from the old length
        // on; `keep` of them are kept.
        unsafe { out.set_len(out.len() + keep.min(self.digits)) };
    }
}

/// Whether any of the eight bytes of `w` is below 0x20, `"` or `\\`.
#[inline]
fn needs_escape(w: u64) -> bool {
    crate::swar::json_special(w) != 0
}

/// Appends `"`, the `n` bytes whose first and last `W` (`W <= n <= 2W`)
/// are `head` and `tail`, and `"`.
#[inline(always)]
fn quoted_words<const W: usize>(out: &mut Vec<u8>, n: usize, head: &[u8; W], tail: &[u8; W]) {
    debug_assert!(W <= n && n <= 2 * W);
    out.reserve(n + 2);
    let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: `n + 2` bytes reserved; the words overlap when `n < 2W` and
    // together cover bytes 1..=n.
    unsafe {
        *dst = b'"';
        dst.add(1).cast::<[u8; W]>().write_unaligned(*head);
        dst.add(n + 1 - W).cast::<[u8; W]>().write_unaligned(*tail);
        *dst.add(n + 1) = b'"';
        out.set_len(out.len() + n + 2);
    }
}

/// A JSON string literal; escapes what JSON requires (symbols are venue data).
#[inline]
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Symbols never need escaping and are short: two overlapping word loads
    // check and copy them (a byte loop and a `memcpy` call cost more than
    // the rest of a trade's head).
    let n = bytes.len();
    if (8..=16).contains(&n) {
        let a = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let b = u64::from_le_bytes(bytes[n - 8..].try_into().unwrap());
        if !needs_escape(a) && !needs_escape(b) {
            quoted_words(out, n, &a.to_le_bytes(), &b.to_le_bytes());
            return;
        }
    } else if (4..8).contains(&n) {
        let a = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let b = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap());
        if !needs_escape(u64::from(a) | u64::from(b) << 32) {
            quoted_words(out, n, &a.to_le_bytes(), &b.to_le_bytes());
            return;
        }
    } else if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let hex = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(hex[(b >> 4) as usize]);
                out.push(hex[(b & 15) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests;

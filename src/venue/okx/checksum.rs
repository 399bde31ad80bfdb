//! OKX book checksum (the `checksum` of its book rule): CRC32 (IEEE) of the top 25 levels, interleaved
//! `bidPx:bidSz:askPx:askSz:...`, compared as a signed 32-bit integer.
//! Levels are formatted straight into the hasher (no string is built).

use crate::book::OrderBook;
use rust_decimal::Decimal;
use std::fmt::{self, Write};

/// Levels per side that OKX's checksum covers.
pub const OKX_CHECKSUM_DEPTH: usize = 25;

const fn make_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = make_table();

/// Incremental CRC32 (IEEE 802.3, as zlib's `crc32`).
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(!0)
    }

    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub fn finish(&self) -> u32 {
        !self.0
    }
}

impl Write for Crc32 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.update(s.as_bytes());
        Ok(())
    }
}

/// CRC32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// Writes `d` as its `Display` does (received scale kept) into `buf`,
/// returning the used tail. Hand-written: `fmt` made up most of the checksum.
pub fn format_decimal<'a>(d: &Decimal, buf: &'a mut [u8; 64]) -> &'a [u8] {
    fn digit(m: &mut u128) -> u8 {
        // u64 arithmetic when it fits: u128 division is a library call.
        let r = if let Ok(x) = u64::try_from(*m) {
            *m = (x / 10) as u128;
            x % 10
        } else {
            let r = (*m % 10) as u64;
            *m /= 10;
            r
        };
        b'0' + r as u8
    }
    let mut m = d.mantissa().unsigned_abs();
    let mut i = buf.len();
    for _ in 0..d.scale() {
        i -= 1;
        buf[i] = digit(&mut m);
    }
    if d.scale() > 0 {
        i -= 1;
        buf[i] = b'.';
    }
    loop {
        i -= 1;
        buf[i] = digit(&mut m);
        if m == 0 {
            break;
        }
    }
    if d.is_sign_negative() {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// OKX's checksum of `book` (levels in their received string form; a side
/// shorter than 25 just contributes fewer entries).
pub fn okx_checksum(book: &OrderBook) -> i32 {
    let mut h = Crc32::new();
    let mut buf = [0u8; 64];
    let mut first = true;
    let mut bids = book.top_bids(OKX_CHECKSUM_DEPTH);
    let mut asks = book.top_asks(OKX_CHECKSUM_DEPTH);
    loop {
        let (b, a) = (bids.next(), asks.next());
        if b.is_none() && a.is_none() {
            break;
        }
        for l in [b, a].into_iter().flatten() {
            if !first {
                h.update(b":");
            }
            first = false;
            h.update(format_decimal(&l.price, &mut buf));
            h.update(b":");
            h.update(format_decimal(&l.quantity, &mut buf));
        }
    }
    h.finish() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Level;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn lv(p: &str, q: &str) -> Level {
        Level::new(Decimal::from_str(p).unwrap(), Decimal::from_str(q).unwrap())
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn okx_documented_vectors() {
        assert_eq!(
            crc32(b"3366.1:7:3366.8:9:3366:6:3368:8") as i32,
            -1881014294
        );
        let mut b = OrderBook::new();
        b.load(
            &[lv("3366.1", "7"), lv("3366", "6")],
            &[lv("3366.8", "9"), lv("3368", "8")],
            1,
        );
        assert_eq!(okx_checksum(&b), -1881014294);
        b.load(
            &[lv("3366.1", "7")],
            &[lv("3366.8", "9"), lv("3368", "8"), lv("3372", "8")],
            2,
        );
        assert_eq!(okx_checksum(&b), 831078360);
    }

    #[test]
    fn format_matches_display() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut buf = [0u8; 64];
        let mut check = |d: Decimal| {
            let got = std::str::from_utf8(format_decimal(&d, &mut buf))
                .unwrap()
                .to_string();
            assert_eq!(got, d.to_string());
        };
        for s in [
            "0.35130000",
            "30244",
            "0.08",
            "1.0",
            "0.00000001",
            "100",
            "-2.50",
            "0.000",
        ] {
            check(Decimal::from_str(s).unwrap());
        }
        check(Decimal::MAX);
        check(Decimal::MIN);
        for _ in 0..20_000 {
            let m = rng.i128(-(1i128 << 96) + 1..1i128 << 96);
            let m = if rng.bool() { m >> rng.u32(0..96) } else { m };
            check(Decimal::from_i128_with_scale(m, rng.u32(0..29)));
        }
    }

    #[test]
    fn only_top_25_and_received_form() {
        let mut b = OrderBook::new();
        let bids: Vec<Level> = (0..40)
            .map(|i| lv(&format!("{}.50", 100 - i), "1.0"))
            .collect();
        b.load(&bids, &[], 1);
        let mut s = String::new();
        for i in 0..25 {
            if i > 0 {
                s.push(':');
            }
            s.push_str(&format!("{}.50:1.0", 100 - i));
        }
        assert_eq!(okx_checksum(&b), crc32(s.as_bytes()) as i32);
    }
}

//! ClickHouse RowBinary primitives, appended to a reused `Vec<u8>`: values
//! little-endian, strings as LEB128 length + bytes, `DateTime64(3)` as Int64
//! ms, `Decimal64(8)` as Int64 × 10⁸, `Date` as UInt16 days; and the walk
//! that finds where each row of a block ends.

use super::schema::Table;
use rust_decimal::Decimal;
use std::fmt;

/// A value the column type cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// |value| ≥ 10¹⁰: beyond `Decimal64(8)`'s 18 digits.
    OutOfRange,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("beyond Decimal64(8) (|value| >= 1e10)")
    }
}

/// 10⁰ … 10²⁸ (a rust_decimal scale is at most 28).
const POW10: [i128; 29] = {
    let mut t = [1i128; 29];
    let mut i = 1;
    while i < 29 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Decimal64(8)'s limit on the scaled value: precision 18.
const DEC64_LIMIT: i128 = 1_000_000_000_000_000_000;

/// `d` as a `Decimal64(8)` (the Int64 count of 10⁻⁸), by integer arithmetic
/// on the mantissa. Digits past the eighth decimal are truncated toward
/// zero, as ClickHouse does parsing such a value from text.
#[inline]
pub fn decimal64_8(d: &Decimal) -> Result<i64, DecimalError> {
    let m = d.mantissa();
    let scale = d.scale() as usize;
    let v = if scale <= 8 {
        // |m| < 2⁹⁶ and 10⁸ < 2²⁷: no overflow in i128.
        m * POW10[8 - scale]
    } else {
        // Integer division truncates toward zero.
        m / POW10[scale - 8]
    };
    if v.abs() >= DEC64_LIMIT {
        return Err(DecimalError::OutOfRange);
    }
    Ok(v as i64)
}

/// `DateTime64(3)`'s last instant, 2299-12-31 23:59:59.999 UTC, in ms.
pub const MAX_DATETIME64_MS: u64 = 10_413_791_999_999;

/// A time beyond `DateTime64(3)`'s range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOutOfRange;

#[inline]
pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

#[inline]
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}

#[inline]
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `DateTime64(3, 'UTC')` from epoch milliseconds.
#[inline]
pub fn put_datetime64_ms(out: &mut Vec<u8>, ms: u64) -> Result<(), TimeOutOfRange> {
    if ms > MAX_DATETIME64_MS {
        return Err(TimeOutOfRange);
    }
    put_i64(out, ms as i64);
    Ok(())
}

/// `Date` from days since 1970-01-01.
#[inline]
pub fn put_date(out: &mut Vec<u8>, days: u16) {
    put_u16(out, days);
}

/// `Decimal64(8)`.
#[inline]
pub fn put_decimal64_8(out: &mut Vec<u8>, d: &Decimal) -> Result<(), DecimalError> {
    put_i64(out, decimal64_8(d)?);
    Ok(())
}

/// Unsigned LEB128 (ClickHouse's VarUInt): 7 bits a byte, low first.
#[inline]
pub fn put_leb128(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes [`put_leb128`] writes for `n`.
#[inline]
pub fn leb128_len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// `String` / `LowCardinality(String)`.
#[inline]
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_leb128(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A string whose bytes `write` appends, length-prefixed without a
/// scratch copy: room for the expected length's prefix is left first and
/// the text moved only when the actual length needs another width.
#[inline]
pub fn put_str_with(out: &mut Vec<u8>, expect_len: usize, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    let guess = leb128_len(expect_len as u64);
    out.resize(at + guess, 0);
    write(out);
    let len = out.len() - at - guess;
    let width = leb128_len(len as u64);
    if width != guess {
        let end = out.len();
        if width > guess {
            out.resize(end + width - guess, 0);
        }
        out.copy_within(at + guess..end, at + width);
        out.truncate(at + width + len);
    }
    let mut n = len as u64;
    for b in &mut out[at..at + width] {
        *b = (n as u8 & 0x7f) | 0x80;
        n >>= 7;
    }
    out[at + width - 1] &= 0x7f;
}

/// Why a block does not split into whole rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// The block ends inside row `row` (0-based), in column `column`.
    Truncated { row: usize, column: &'static str },
    /// A string length prefix longer than a `u64`.
    BadLength { row: usize, column: &'static str },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Truncated { row, column } => {
                write!(f, "block ends inside row {row}, column {column}")
            }
            BlockError::BadLength { row, column } => {
                write!(f, "bad string length in row {row}, column {column}")
            }
        }
    }
}

/// End offset of every row of a RowBinary block of `table`'s sent columns
/// (so a block ClickHouse refused can be split to find the bad row).
pub fn row_ends(table: Table, bytes: &[u8]) -> Result<Vec<usize>, BlockError> {
    let cols = table.columns();
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let row = ends.len();
        for c in cols {
            let len = match c.ty.fixed_width() {
                Some(w) => w,
                None => {
                    let (n, used) = read_leb128(&bytes[pos..]).map_err(|e| match e {
                        LebError::Truncated => BlockError::Truncated {
                            row,
                            column: c.name,
                        },
                        LebError::TooLong => BlockError::BadLength {
                            row,
                            column: c.name,
                        },
                    })?;
                    pos += used;
                    usize::try_from(n).unwrap_or(usize::MAX)
                }
            };
            if bytes.len() - pos < len {
                return Err(BlockError::Truncated {
                    row,
                    column: c.name,
                });
            }
            pos += len;
        }
        ends.push(pos);
    }
    Ok(ends)
}

enum LebError {
    Truncated,
    TooLong,
}

/// A LEB128 value and the bytes it took.
fn read_leb128(b: &[u8]) -> Result<(u64, usize), LebError> {
    let mut n = 0u64;
    for (i, &byte) in b.iter().enumerate() {
        if i == 10 || (i == 9 && byte > 1) {
            return Err(LebError::TooLong);
        }
        n |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((n, i + 1));
        }
    }
    Err(LebError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Result<i64, DecimalError> {
        decimal64_8(&Decimal::from_str(s).unwrap())
    }

    #[test]
    fn decimals_scale_to_eight_places_exactly() {
        assert_eq!(dec("0"), Ok(0));
        assert_eq!(dec("1"), Ok(100_000_000));
        assert_eq!(dec("64000.1"), Ok(6_400_010_000_000));
        assert_eq!(dec("64000.10000000"), Ok(6_400_010_000_000));
        assert_eq!(dec("0.00000001"), Ok(1));
        assert_eq!(dec("0.00001000"), Ok(1_000));
        // f64 would give 0.30000000000000004 for 0.1 + 0.2; exact here.
        assert_eq!(dec("0.3"), Ok(30_000_000));
        assert_eq!(dec("-0.0001"), Ok(-10_000));
        assert_eq!(dec("-12.5"), Ok(-1_250_000_000));
    }

    #[test]
    fn decimals_past_eight_places_truncate_toward_zero() {
        assert_eq!(dec("1.123456789"), Ok(112_345_678));
        assert_eq!(dec("1.999999999999"), Ok(199_999_999));
        assert_eq!(dec("-1.123456789"), Ok(-112_345_678));
        assert_eq!(dec("-0.000000009"), Ok(0));
        assert_eq!(dec("0.0000000000000000000000000001"), Ok(0));
        // 28 places, 29 digits: the largest scale rust_decimal holds.
        assert_eq!(dec("1.2345678912345678912345678912"), Ok(123_456_789));
    }

    #[test]
    fn decimals_beyond_eighteen_digits_are_out_of_range() {
        assert_eq!(dec("9999999999.99999999"), Ok(999_999_999_999_999_999));
        assert_eq!(dec("-9999999999.99999999"), Ok(-999_999_999_999_999_999));
        // Truncation first: this one still fits.
        assert_eq!(dec("9999999999.999999999"), Ok(999_999_999_999_999_999));
        assert_eq!(dec("10000000000"), Err(DecimalError::OutOfRange));
        assert_eq!(dec("-10000000000"), Err(DecimalError::OutOfRange));
        assert_eq!(
            dec("79228162514264337593543950335"),
            Err(DecimalError::OutOfRange)
        );
        let mut out = vec![7];
        assert_eq!(
            put_decimal64_8(&mut out, &Decimal::from_str("1e10").unwrap()),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(out, [7]);
        put_decimal64_8(&mut out, &Decimal::from_str("-0.00000002").unwrap()).unwrap();
        assert_eq!(out, [7, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn leb128_lengths_and_bytes() {
        for (n, bytes) in [
            (0u64, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            put_leb128(&mut out, n);
            assert_eq!(out, bytes, "{n}");
            assert_eq!(leb128_len(n), bytes.len(), "{n}");
            assert!(matches!(read_leb128(&out), Ok((m, k)) if m == n && k == bytes.len()));
        }
        assert!(matches!(
            read_leb128(&[0x80, 0x80]),
            Err(LebError::Truncated)
        ));
        assert!(matches!(read_leb128(&[0xff; 10]), Err(LebError::TooLong)));
    }

    #[test]
    fn strings_written_in_place_get_the_right_prefix() {
        // Guess right, guess too small (text moved right), guess too big (moved left).
        for (expect, len) in [(5usize, 5usize), (5, 200), (20_000, 3), (200, 20_000)] {
            let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut out = b"xy".to_vec();
            put_str_with(&mut out, expect, |o| o.extend_from_slice(&text));
            let mut want = b"xy".to_vec();
            put_str(&mut want, &text);
            assert_eq!(out, want, "expect {expect}, len {len}");
        }
    }

    #[test]
    fn times_and_small_ints() {
        let mut out = Vec::new();
        put_datetime64_ms(&mut out, 1_764_943_200_123).unwrap();
        assert_eq!(out, 1_764_943_200_123i64.to_le_bytes());
        assert_eq!(
            put_datetime64_ms(&mut out, MAX_DATETIME64_MS + 1),
            Err(TimeOutOfRange)
        );
        assert_eq!(out.len(), 8);
        out.clear();
        put_date(&mut out, 20_427);
        put_u32(&mut out, 7);
        put_bool(&mut out, true);
        put_u8(&mut out, 9);
        assert_eq!(out, [0xcb, 0x4f, 7, 0, 0, 0, 1, 9]);
    }

    #[test]
    fn row_ends_walk_mixed_rows() {
        // Liquidations: Dt, Lc, Lc, Lc, Lc, Dec, Dec, Dt, Lc.
        let row = |out: &mut Vec<u8>, symbol: &[u8]| {
            put_i64(out, 1);
            put_str(out, b"binance");
            put_str(out, b"perpetual");
            put_str(out, symbol);
            put_str(out, b"sell");
            put_i64(out, 2);
            put_i64(out, 3);
            put_i64(out, 4);
            put_str(out, b"marketprism");
        };
        let mut block = Vec::new();
        row(&mut block, b"BTC-USDT");
        let first = block.len();
        let long = vec![b'S'; 300];
        row(&mut block, &long);
        let second = block.len();
        row(&mut block, b"");
        assert_eq!(
            row_ends(Table::Liquidations, &block),
            Ok(vec![first, second, block.len()])
        );
        assert_eq!(first, 8 + 8 + 10 + 9 + 5 + 24 + 12);
        assert_eq!(row_ends(Table::Liquidations, &[]), Ok(vec![]));
        assert_eq!(
            row_ends(Table::Liquidations, &block[..second + 9]),
            Err(BlockError::Truncated {
                row: 2,
                column: "exchange"
            })
        );
        assert_eq!(
            row_ends(Table::Liquidations, &block[..first + 8 + 8 + 10 + 1]),
            Err(BlockError::Truncated {
                row: 1,
                column: "symbol"
            })
        );
    }
}

//! Primitive tests: each against std / rust_decimal formatting.

use super::*;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The word-at-a-time path against a per-char reference, on strings of
/// every length around its 4/8/16-byte edges with each byte that needs
/// escaping (and multi-byte UTF-8) at every position.
#[test]
fn strings_escape_like_a_char_by_char_encoder() {
    fn reference(s: &str) -> String {
        let mut o = String::from('"');
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
                c => o.push(c),
            }
        }
        o.push('"');
        o
    }
    let specials = [
        '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é', '€', '!', '#', '[', ']',
    ];
    let mut out = Vec::new();
    for n in 0..=20 {
        let base: String = (0..n).map(|i| char::from(b'A' + (i % 26) as u8)).collect();
        let mut cases = vec![base.clone()];
        for at in 0..n {
            for &c in &specials {
                let mut s: Vec<char> = base.chars().collect();
                s[at] = c;
                cases.push(s.into_iter().collect());
            }
        }
        for s in cases {
            out.clear();
            out.extend_from_slice(b"x");
            json_str(&mut out, &s);
            assert_eq!(
                std::str::from_utf8(&out[1..]).unwrap(),
                reference(&s),
                "{s:?}"
            );
            let back: String = sonic_rs::from_slice(&out[1..]).unwrap();
            assert_eq!(back, s);
        }
    }
}

#[test]
fn integers_match_std_formatting() {
    let mut cases = vec![
        0u64,
        9,
        10,
        11,
        99,
        100,
        101,
        999,
        1000,
        u64::MAX,
        u64::MAX - 1,
    ];
    let mut x = 1u64;
    for _ in 0..19 {
        x *= 10;
        cases.extend([x - 1, x, x + 1, x + 37]);
    }
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..10_000 {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        cases.push(r >> (r % 64));
    }
    // Appended after what is there, into whatever room the vector has.
    let mut all = Vec::new();
    let mut want = String::new();
    for n in cases {
        let mut out = b"ab".to_vec();
        push_u64(&mut out, n);
        assert_eq!(String::from_utf8(out).unwrap(), format!("ab{n}"));
        push_u64(&mut all, n);
        all.push(b',');
        want.push_str(&format!("{n},"));
    }
    assert_eq!(String::from_utf8(all).unwrap(), want);
}

#[test]
fn decimals_print_like_display() {
    let cases = [
        "0",
        "1",
        "0.001",
        "100",
        "0.00100000",
        "64000.10000000",
        "12345678901234567890.123456789",
        "79228162514264337593543950335",
        "0.0000000000000000000000000001",
        "7.9228162514264337593543950335",
        "-1.50",
        "-0.001",
        "1844674407370955161.6",
        "18446744073709551615",
        "18446744073709551616",
    ];
    for c in cases {
        let d = Decimal::from_str(c).unwrap();
        let mut o = Vec::new();
        push_decimal(&mut o, &d);
        assert_eq!(String::from_utf8(o).unwrap(), d.to_string(), "{c}");
    }
    // And a sweep over mantissas and scales.
    let mut rng = 0x9e3779b97f4a7c15u64;
    for _ in 0..20_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let d = Decimal::from_i128_with_scale(
            (rng as i128) * if rng & 1 == 0 { 1 } else { -1 },
            (rng % 29) as u32,
        );
        let mut o = Vec::new();
        push_decimal(&mut o, &d);
        assert_eq!(String::from_utf8(o).unwrap(), d.to_string());
    }
    // Every mantissa length against every scale, at the edges of each
    // length (the point before, inside and after the digits), with text
    // already in the buffer.
    let mut checked = 0;
    for digits in 1..=20u32 {
        let lo = if digits == 1 {
            0
        } else {
            10u64.pow(digits - 1)
        };
        let hi = if digits == 20 {
            u64::MAX
        } else {
            10u64.pow(digits) - 1
        };
        for m in [lo, lo + 1, lo + (hi - lo) / 3, hi] {
            for scale in 0..=28 {
                let d = Decimal::from_i128_with_scale(i128::from(m), scale);
                let mut o = b"x".to_vec();
                push_decimal(&mut o, &d);
                assert_eq!(
                    String::from_utf8(o).unwrap(),
                    format!("x{d}"),
                    "{m} scale {scale}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 20 * 4 * 29);
}

#[test]
fn numbers_and_strings() {
    for n in [0u64, 7, 10, 99, 1000, u64::MAX] {
        let mut o = Vec::new();
        push_u64(&mut o, n);
        assert_eq!(String::from_utf8(o).unwrap(), n.to_string());
    }
    let mut o = Vec::new();
    json_str(&mut o, "a\"b\\c\nd\u{1}é");
    assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
}

//! Structure-aware mutations of a JSON tree (the shapes venues get wrong:
//! types, numbers, timestamps, keys, nesting, sizes) and byte-level ones on
//! the written text (truncation, flips kept valid UTF-8, splices).

use super::json::{self, J};
use super::seeds::Dict;
use fastrand::Rng;

/// Numbers a decimal or integer field may choke on. Some are not valid
/// JSON numbers: written raw they make the frame bad JSON, which is fine too.
pub const ODD_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "-0.0",
    "0",
    "0.0",
    "-1",
    "99999999999999999999999999999.9",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "-79228162514264337593543950336",
    "0.0000000000000000000000000001",
    "0.00000000000000000000000000001",
    "1.0000000000000000000000000001",
    "1.00000000000000000000000000001",
    "1234567890123456789012345678901234567890",
    "0.1234567890123456789012345678901234567890",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "4294967296",
    "-2147483649",
    "1.7976931348623157e308",
    "2.5E+3",
    "1e5",
    "1E-7",
    "1e28",
    "1e29",
    "1e-28",
    "1e-29",
    "0e0",
    "NaN",
    "Infinity",
    "-Infinity",
    "",
    " 1",
    "1 ",
    "0x10",
    "+1",
    "1.",
    ".5",
    "00012",
    "1_000",
    "1,5",
    "1.5.5",
    "--1",
    "١٢٣",
];

/// Timestamps no venue sends.
pub const ODD_TIMES: &[&str] = &[
    "-1",
    "0",
    "1",
    "1e20",
    "1e13",
    "100000000000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "253402300800000",
    "1700000000000.5",
    "9999999999999999999",
    "99999999999999999999999",
];

const TIME_KEYS: &[&str] = &[
    "E",
    "T",
    "ts",
    "cts",
    "time",
    "timestamp",
    "fundingTime",
    "nextFundingTime",
    "u",
    "U",
    "pu",
    "seqId",
    "prevSeqId",
    "change_id",
    "prev_change_id",
    "lastUpdateId",
    "checksum",
];

const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "null",
    "true",
    "\\u0000",
    "\\ud800",
    "\\udc00\\ud800",
    "\\u00e9\\u4e2d",
    "é中😀",
    "\\\"",
    "\\\\",
    "a\\nb",
    "\\/",
    "BTC\\u0055SDT",
    "btcusdt",
    "BTCUSDT ",
    "snapshot",
    "delta",
    "update",
    "change",
    "new",
    "delete",
    "Buy",
    "Sell",
    "buy",
    "sell",
    "BUY",
    "error",
    "subscribe",
    "heartbeat",
    "test_request",
    "subscription",
    "pong",
];

/// Whether `s` is a JSON number (so it can be written unquoted).
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    i == b.len()
}

fn pick<'a>(rng: &mut Rng, v: &'a [&'a str]) -> &'a str {
    v[rng.usize(..v.len())]
}

fn pick_owned<'a>(rng: &mut Rng, v: &'a [String], fallback: &'a str) -> &'a str {
    if v.is_empty() {
        fallback
    } else {
        &v[rng.usize(..v.len())]
    }
}

/// A number-ish value: as a JSON number when it is one (mostly), else a string.
fn odd_number(rng: &mut Rng, texts: &[&str]) -> J {
    let t = pick(rng, texts);
    if rng.u8(..4) > 0 && is_json_number(t) {
        J::Num(t.to_string())
    } else if rng.u8(..8) == 0 {
        // Raw, even if not JSON: the frame becomes bad JSON.
        J::Num(t.to_string())
    } else {
        J::Str(t.to_string())
    }
}

/// A random value, nested at most `depth` deep.
pub fn random_value(rng: &mut Rng, dict: &Dict, depth: u32) -> J {
    let top = if depth == 0 { 6 } else { 8 };
    match rng.u8(..top) {
        0 => J::Null,
        1 => J::Bool(rng.bool()),
        2 => odd_number(rng, ODD_NUMBERS),
        3 => J::Num(pick_owned(rng, &dict.numbers, "1").to_string()),
        4 => J::Str(pick_owned(rng, &dict.strings, "x").to_string()),
        5 => J::Str(pick(rng, ODD_STRINGS).to_string()),
        6 => J::Arr(
            (0..rng.usize(..4))
                .map(|_| random_value(rng, dict, depth - 1))
                .collect(),
        ),
        _ => J::Obj(
            (0..rng.usize(..4))
                .map(|_| {
                    let k = pick_owned(rng, &dict.keys, "k").to_string();
                    (k, random_value(rng, dict, depth - 1))
                })
                .collect(),
        ),
    }
}

fn kind_of(j: &J) -> u8 {
    match j {
        J::Null => 0,
        J::Bool(_) => 1,
        J::Num(_) => 2,
        J::Str(_) => 3,
        J::Arr(_) => 4,
        J::Obj(_) => 5,
    }
}

/// A value of another JSON type than `j`.
fn other_type(rng: &mut Rng, j: &J, dict: &Dict) -> J {
    loop {
        let v = random_value(rng, dict, 2);
        if kind_of(&v) != kind_of(j) {
            return v;
        }
    }
}

fn random_node<'a>(rng: &mut Rng, j: &'a mut J) -> &'a mut J {
    let n = json::count(j);
    let k = rng.usize(..n);
    // In range by construction; the root if the tree changed under us.
    if json::nth_mut(j, k).is_none() {
        return j;
    }
    json::nth_mut(j, k).unwrap()
}

/// A random object (or array) node, if the tree has one.
fn random_container<'a>(rng: &mut Rng, j: &'a mut J, objects: bool) -> Option<&'a mut J> {
    let mut idx = Vec::new();
    let mut i = 0;
    json::walk(j, None, &mut |_, v| {
        if matches!((v, objects), (J::Obj(_), true) | (J::Arr(_), false)) {
            idx.push(i);
        }
        i += 1;
    });
    if idx.is_empty() {
        return None;
    }
    let k = idx[rng.usize(..idx.len())];
    json::nth_mut(j, k)
}

/// Mostly short; sometimes up to 300 kB (frames may be 1 MiB).
fn long_string(rng: &mut Rng) -> String {
    let n = match rng.u8(..32) {
        0 => 300_000,
        1..=2 => 50_000,
        3..=8 => 5_000,
        _ => 500,
    };
    let unit = pick(rng, &["a", "é", "😀", "\\u0041", "\\\"", "0", "9."]);
    unit.repeat(n / unit.len().max(1))
}

/// `inner` nested in arrays or objects, around and past the parsers' limit
/// (32) and sonic-rs' (255), up to the 10 000 levels that used to overflow
/// a core's stack. Kept as raw text so the tree itself stays shallow.
fn nest(rng: &mut Rng, inner: &J) -> J {
    let depth = match rng.u8(..32) {
        0 => 100_000,
        1 => 10_000,
        2..=4 => [255, 256, 1000][rng.usize(..3)],
        _ => [2, 10, 31, 32, 33, 100][rng.usize(..6)],
    };
    let (open, close) = if rng.bool() {
        ("{\"n\":", "}")
    } else {
        ("[", "]")
    };
    J::Num(format!(
        "{}{}{}",
        open.repeat(depth),
        json::to_string(inner),
        close.repeat(depth)
    ))
}

/// Applies one random structural mutation to `j`.
pub fn mutate_tree(rng: &mut Rng, j: &mut J, dict: &Dict, donors: &[&J]) {
    match rng.u8(..17) {
        0 => {
            let n = random_node(rng, j);
            *n = other_type(rng, n, dict);
        }
        1 => {
            // Same text, other type: "123.4" <-> 123.4.
            let n = random_node(rng, j);
            *n = match std::mem::replace(n, J::Null) {
                J::Str(s) => J::Num(if s.is_empty() { "0".into() } else { s }),
                J::Num(s) => J::Str(s),
                J::Bool(b) => J::Str(b.to_string()),
                J::Null => J::Str("null".into()),
                other => other,
            };
        }
        2 => {
            let n = random_node(rng, j);
            *n = odd_number(rng, ODD_NUMBERS);
        }
        3 => absurd_timestamp(rng, j),
        4 => {
            if let Some(J::Obj(o)) = random_container(rng, j, true) {
                if !o.is_empty() {
                    o.remove(rng.usize(..o.len()));
                }
            }
        }
        5 => {
            if let Some(J::Obj(o)) = random_container(rng, j, true) {
                let k = if rng.bool() {
                    format!("_fz{}", rng.u32(..))
                } else {
                    pick_owned(rng, &dict.keys, "k").to_string()
                };
                let at = rng.usize(..=o.len());
                o.insert(at, (k, random_value(rng, dict, 3)));
            }
        }
        6 => {
            // Duplicate key: the same or another value, before or after.
            if let Some(J::Obj(o)) = random_container(rng, j, true) {
                if !o.is_empty() {
                    let (k, mut v) = o[rng.usize(..o.len())].clone();
                    if rng.bool() {
                        v = random_value(rng, dict, 2);
                    }
                    let at = rng.usize(..=o.len());
                    o.insert(at, (k, v));
                }
            }
        }
        7 => {
            if let Some(J::Obj(o)) = random_container(rng, j, true) {
                if !o.is_empty() {
                    let i = rng.usize(..o.len());
                    o[i].0 = match rng.u8(..3) {
                        0 => pick_owned(rng, &dict.keys, "k").to_string(),
                        1 => o[i].0.to_ascii_uppercase(),
                        _ => String::new(),
                    };
                }
            }
        }
        8 => {
            let n = random_node(rng, j);
            *n = nest(rng, n);
        }
        9 => {
            let n = random_node(rng, j);
            *n = J::Str(long_string(rng));
        }
        10 => {
            // Many copies of one element: huge books, many trades.
            if let Some(J::Arr(a)) = random_container(rng, j, false) {
                if let Some(e) = a.get(rng.usize(..a.len().max(1))).cloned() {
                    let size = json::to_string(&e).len().max(1);
                    let n = match rng.u8(..32) {
                        0 => 5000,
                        1..=3 => 1000,
                        _ => [2, 10, 100][rng.usize(..3)],
                    }
                    .min(400_000 / size);
                    a.extend(std::iter::repeat_n(e, n));
                }
            }
        }
        11 => {
            if let Some(J::Arr(a)) = random_container(rng, j, false) {
                match rng.u8(..3) {
                    0 if !a.is_empty() => {
                        a.remove(rng.usize(..a.len()));
                    }
                    1 => a.clear(),
                    _ => {
                        let at = rng.usize(..=a.len());
                        a.insert(at, random_value(rng, dict, 2));
                    }
                }
            }
        }
        12 if rng.bool() => {
            // An instrument nobody listed, everywhere the frame names it
            // (`book.BTC-PERPETUAL.100ms` and `"instrument_name":"BTC-PERPETUAL"`).
            let J::Str(s) = random_node(rng, j) else {
                return;
            };
            let parts: Vec<&str> = s.split('.').collect();
            let token = parts[if parts.len() > 1 { 1 } else { 0 }].to_string();
            if token.len() >= 3 {
                rename(j, &token, "NOPE-X");
            }
        }
        12 => {
            let n = random_node(rng, j);
            *n = J::Str(if rng.bool() {
                pick_owned(rng, &dict.strings, "x").to_string()
            } else {
                pick(rng, ODD_STRINGS).to_string()
            });
        }
        13 => {
            // Crossover: a subtree of another seed of the venue.
            if !donors.is_empty() {
                let mut d = donors[rng.usize(..donors.len())].clone();
                let part = random_node(rng, &mut d).clone();
                *random_node(rng, j) = part;
            }
        }
        14 => {
            // Escapes and non-ASCII inside an existing string.
            let n = random_node(rng, j);
            if let J::Str(s) = n {
                let at = (0..=s.len())
                    .filter(|&i| s.is_char_boundary(i))
                    .nth(rng.usize(..=s.chars().count()))
                    .unwrap_or(0);
                s.insert_str(at, pick(rng, ODD_STRINGS));
            }
        }
        15 => {
            // Reorder: keys or elements swapped.
            match random_node(rng, j) {
                J::Obj(o) if o.len() > 1 => {
                    let (a, b) = (rng.usize(..o.len()), rng.usize(..o.len()));
                    o.swap(a, b);
                }
                J::Arr(a) if a.len() > 1 => {
                    let (x, y) = (rng.usize(..a.len()), rng.usize(..a.len()));
                    a.swap(x, y);
                }
                _ => {}
            }
        }
        _ => {
            // A number nudged: off by one, sign flipped, scaled.
            let n = random_node(rng, j);
            if let J::Num(s) | J::Str(s) = n {
                if let Ok(v) = s.parse::<i128>() {
                    let d = [1i128, -1, 1000, -1_000_000][rng.usize(..4)];
                    *s = v.saturating_add(d).to_string();
                } else if !s.is_empty() {
                    s.insert(0, '-');
                }
            }
        }
    }
}

/// Replaces `token` as a whole string or a `.`-separated part of one.
fn rename(j: &mut J, token: &str, with: &str) {
    match j {
        J::Str(s) if s.split('.').any(|p| p == token) => {
            *s = s
                .split('.')
                .map(|p| if p == token { with } else { p })
                .collect::<Vec<_>>()
                .join(".");
        }
        J::Arr(a) => a.iter_mut().for_each(|v| rename(v, token, with)),
        J::Obj(o) => o.iter_mut().for_each(|(_, v)| rename(v, token, with)),
        _ => {}
    }
}

/// A timestamp or sequence field (by key) set to something no venue sends.
fn absurd_timestamp(rng: &mut Rng, j: &mut J) {
    let mut idx = Vec::new();
    let mut i = 0;
    json::walk(j, None, &mut |k, v| {
        if k.is_some_and(|k| TIME_KEYS.contains(&k)) && matches!(v, J::Num(_) | J::Str(_)) {
            idx.push(i);
        }
        i += 1;
    });
    let n = if idx.is_empty() {
        random_node(rng, j)
    } else {
        let k = idx[rng.usize(..idx.len())];
        match json::nth_mut(j, k) {
            Some(n) => n,
            None => return,
        }
    };
    let t = pick(rng, ODD_TIMES).to_string();
    *n = match n {
        J::Str(_) => J::Str(t),
        _ if is_json_number(&t) => J::Num(t),
        _ => J::Str(t),
    };
}

/// Raw number texts that are not JSON numbers become strings.
fn sanitize(j: &mut J) {
    match j {
        J::Num(n) if !is_json_number(n) => *j = J::Str(std::mem::take(n)),
        J::Arr(a) => a.iter_mut().for_each(sanitize),
        J::Obj(o) => o.iter_mut().for_each(|(_, v)| sanitize(v)),
        _ => {}
    }
}

/// Adds `n` keys no parser reads (`_fz…`) to random objects of the tree,
/// with values of any type, nested but well within parser depth limits.
pub fn add_unknown_fields(rng: &mut Rng, j: &mut J, dict: &Dict, n: usize) {
    for _ in 0..n {
        let Some(J::Obj(o)) = random_container(rng, j, true) else {
            return;
        };
        let mut v = random_value(rng, dict, 3);
        sanitize(&mut v);
        if rng.u8(..8) == 0 {
            // Deep, mostly within the parsers' nesting limit (32).
            for _ in 0..rng.usize(1..20) {
                v = J::Arr(vec![v]);
            }
        }
        if rng.u8(..8) == 0 {
            v = J::Str(long_string(rng));
        }
        let at = rng.usize(..=o.len());
        o.insert(at, (format!("_fz{}", rng.u32(..)), v));
    }
}

/// Byte-level damage to a written frame; the result stays valid UTF-8.
pub fn mutate_text(rng: &mut Rng, s: &mut String, other: &str) {
    let boundary = |s: &str, rng: &mut Rng| {
        let mut i = rng.usize(..=s.len());
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match rng.u8(..8) {
        0 => {
            let i = boundary(s, rng);
            s.truncate(i);
        }
        1 => {
            // Bit flips; invalid UTF-8 becomes U+FFFD.
            let mut b = std::mem::take(s).into_bytes();
            for _ in 0..rng.usize(1..4) {
                if !b.is_empty() {
                    let i = rng.usize(..b.len());
                    b[i] ^= 1 << rng.u32(..8);
                }
            }
            *s = String::from_utf8_lossy(&b).into_owned();
        }
        2 => {
            let i = boundary(s, rng);
            let c = pick(
                rng,
                &[
                    "{", "}", "[", "]", ",", ":", "\"", "\\", "0", "-", ".", "e", " ", "\n", "\t",
                    "\u{0}", "\u{1f}", "\u{7f}", "é", "\u{feff}", "😀", "\u{2028}",
                ],
            );
            s.insert_str(i, c);
        }
        3 => {
            if !s.is_empty() {
                let a = boundary(s, rng);
                let b = boundary(s, rng);
                let (a, b) = (a.min(b), a.max(b));
                s.replace_range(a..b, "");
            }
        }
        4 => {
            let a = boundary(s, rng);
            let b = boundary(s, rng);
            let (a, b) = (a.min(b), a.max(b));
            let part = s[a..b].to_string();
            s.insert_str(b, &part);
        }
        5 => {
            // Trailing garbage or a second frame.
            s.push_str(pick(rng, &["}", "]", " ", "\n", "x", ",", "{}", "\u{0}"]));
            if rng.bool() {
                s.push_str(other);
            }
        }
        6 => {
            let pre = pick(rng, &["\u{feff}", " ", "\n", "[", "{\"a\":", "\"", "\u{0}"]);
            s.insert_str(0, pre);
        }
        _ => {
            // Splice: the head of this frame, the tail of another.
            let a = boundary(s, rng);
            let b = boundary(other, rng);
            s.truncate(a);
            s.push_str(&other[b..]);
        }
    }
}

/// One fuzz input from a seed: 1-4 tree mutations (if it is JSON), then
/// sometimes byte damage.
pub fn derive(rng: &mut Rng, text: &str, tree: Option<&J>, dict: &Dict, donors: &[&J]) -> String {
    let mut out = match tree {
        Some(t) => {
            let mut t = t.clone();
            let n = 1 + (rng.u8(..8).trailing_ones() as usize).min(3);
            for _ in 0..n {
                mutate_tree(rng, &mut t, dict, donors);
            }
            json::to_string(&t)
        }
        None => text.to_string(),
    };
    if tree.is_none() || rng.u8(..4) == 0 {
        let other = donors
            .get(rng.usize(..donors.len().max(1)))
            .map(|d| json::to_string(d))
            .unwrap_or_default();
        mutate_text(rng, &mut out, &other);
    }
    out
}

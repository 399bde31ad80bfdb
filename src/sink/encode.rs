//! Record → one JSON line with MarketPrism's field names, written into a
//! reused buffer (no allocation once the buffer has grown to a batch's size).
//!
//! Decimals are printed by rust_decimal's `Display`, which keeps the received
//! scale and never uses exponents (MarketPrism's consumer `float()`s strings
//! with a dot and `int()`s the rest, so "1e-05" would become 0).

use crate::batch::{
    BookRecord, FundingRate, Gap, Level, Liquidation, LongShortRatio, OpenInterest, Origin, Record,
    Ticker, Trade, TradeId, VolatilityIndex,
};
use crate::model::DataType;
use rust_decimal::Decimal;

/// Appends `rec` as one JSON object and a newline (a JSON Lines line).
pub fn encode_record(out: &mut Vec<u8>, rec: &Record<'_>) {
    encode_json(out, rec);
    out.push(b'\n');
}

/// Appends `rec` as one JSON object (a NATS payload).
pub fn encode_json(out: &mut Vec<u8>, rec: &Record<'_>) {
    match rec {
        Record::Trade(t) => encode_trade(out, t),
        Record::Book(b) => encode_book(out, b),
        Record::Funding(f) => encode_funding(out, f),
        Record::OpenInterest(o) => encode_open_interest(out, o),
        Record::Liquidation(l) => encode_liquidation(out, l),
        Record::Lsr(l) => encode_lsr(out, l),
        Record::Volatility(v) => encode_volatility(out, v),
        Record::Ticker(t) => encode_ticker(out, t),
        Record::Gap(g) => encode_gap(out, g),
    }
}

/// `{"data_type":..,"exchange":..,"market_type":..,"symbol":..,"instrument_id":..`
fn head(out: &mut Vec<u8>, dt: DataType, o: &Origin<'_>) {
    out.extend_from_slice(b"{\"data_type\":\"");
    out.extend_from_slice(dt.name().as_bytes());
    out.extend_from_slice(b"\",\"exchange\":\"");
    out.extend_from_slice(o.venue.exchange().as_bytes());
    out.extend_from_slice(b"\",\"market_type\":\"");
    out.extend_from_slice(o.venue.market_type_of(dt).as_bytes());
    out.extend_from_slice(b"\",\"symbol\":");
    json_str(out, o.symbol);
    out.extend_from_slice(b",\"instrument_id\":");
    json_str(out, o.raw_symbol);
}

/// `,"ts_ms":..,"collected_ts_ms":..,"receive_ts_ns":..,"data_source":"marketprism"}`
fn tail(out: &mut Vec<u8>, o: &Origin<'_>) {
    u64_field(out, "ts_ms", o.ts_ms);
    receive_tail(out, o.receive_ts_ns);
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn u64_field(out: &mut Vec<u8>, k: &str, v: u64) {
    key(out, k);
    push_u64(out, v);
}

/// Decimals as strings (MarketPrism sends them so; exact).
fn dec_field(out: &mut Vec<u8>, k: &str, v: &Decimal) {
    key(out, k);
    out.push(b'"');
    push_decimal(out, v);
    out.push(b'"');
}

fn opt_dec(out: &mut Vec<u8>, k: &str, v: &Option<Decimal>) {
    if let Some(v) = v {
        dec_field(out, k, v);
    }
}

fn str_field(out: &mut Vec<u8>, k: &str, v: &str) {
    key(out, k);
    json_str(out, v);
}

/// Levels as MarketPrism's `[{"price":"..","quantity":".."}]`, best first.
fn levels(out: &mut Vec<u8>, k: &str, ls: &[Level]) {
    key(out, k);
    out.push(b'[');
    for (i, l) in ls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"price\":\"");
        push_decimal(out, &l.price);
        out.extend_from_slice(b"\",\"quantity\":\"");
        push_decimal(out, &l.quantity);
        out.extend_from_slice(b"\"}");
    }
    out.push(b']');
}

fn encode_book(out: &mut Vec<u8>, b: &BookRecord<'_>) {
    let dt = if b.delta {
        DataType::OrderBookDelta
    } else {
        DataType::OrderBook
    };
    head(out, dt, &b.origin);
    u64_field(out, "last_update_id", b.last_update_id);
    if b.delta {
        u64_field(out, "first_update_id", b.first_update_id);
    }
    if let Some(p) = b.prev_update_id {
        u64_field(out, "prev_update_id", p);
    }
    str_field(
        out,
        "update_type",
        if b.delta { "delta" } else { "snapshot" },
    );
    u64_field(out, "depth_levels", (b.bids.len() + b.asks.len()) as u64);
    levels(out, "bids", b.bids);
    levels(out, "asks", b.asks);
    tail(out, &b.origin);
}

fn encode_funding(out: &mut Vec<u8>, f: &FundingRate<'_>) {
    head(out, DataType::FundingRate, &f.origin);
    dec_field(out, "current_funding_rate", &f.funding_rate);
    opt_dec(out, "estimated_funding_rate", &f.estimated_rate);
    if let Some(t) = f.next_funding_ts_ms {
        u64_field(out, "next_funding_ts_ms", t);
    }
    if let Some(t) = f.funding_ts_ms {
        u64_field(out, "funding_ts_ms", t);
    }
    opt_dec(out, "mark_price", &f.mark_price);
    opt_dec(out, "index_price", &f.index_price);
    tail(out, &f.origin);
}

fn encode_open_interest(out: &mut Vec<u8>, o: &OpenInterest<'_>) {
    head(out, DataType::OpenInterest, &o.origin);
    // MarketPrism's field is `open_interest_value`; its consumer also reads `open_interest`.
    dec_field(out, "open_interest", &o.open_interest);
    dec_field(out, "open_interest_value", &o.open_interest);
    str_field(out, "open_interest_unit", "coins");
    opt_dec(out, "open_interest_contracts", &o.contracts);
    opt_dec(out, "open_interest_usd", &o.value_usd);
    tail(out, &o.origin);
}

fn encode_liquidation(out: &mut Vec<u8>, l: &Liquidation<'_>) {
    head(out, DataType::Liquidation, &l.origin);
    str_field(out, "side", l.side.as_str());
    if let Some(p) = l.position_side {
        str_field(out, "position_side", p);
    }
    dec_field(out, "price", &l.price);
    dec_field(out, "quantity", &l.quantity);
    opt_dec(out, "contracts", &l.contracts);
    u64_field(out, "liquidation_ts_ms", l.liquidation_ts_ms);
    tail(out, &l.origin);
}

fn encode_lsr(out: &mut Vec<u8>, l: &LongShortRatio<'_>) {
    head(out, l.data_type, &l.origin);
    dec_field(out, "long_short_ratio", &l.long_short_ratio);
    let (long, short) = if l.data_type == DataType::LsrTopPosition {
        ("long_position_ratio", "short_position_ratio")
    } else {
        ("long_account_ratio", "short_account_ratio")
    };
    opt_dec(out, long, &l.long_ratio);
    opt_dec(out, short, &l.short_ratio);
    str_field(out, "period", l.period);
    tail(out, &l.origin);
}

fn encode_volatility(out: &mut Vec<u8>, v: &VolatilityIndex<'_>) {
    head(out, DataType::VolatilityIndex, &v.origin);
    str_field(out, "currency", v.origin.symbol);
    str_field(out, "underlying_asset", v.origin.symbol);
    dec_field(out, "volatility_index", &v.volatility_index);
    str_field(out, "index_name", v.index_name);
    tail(out, &v.origin);
}

fn encode_ticker(out: &mut Vec<u8>, t: &Ticker<'_>) {
    head(out, DataType::Ticker, &t.origin);
    opt_dec(out, "best_bid_price", &t.bid_price);
    opt_dec(out, "best_bid_quantity", &t.bid_quantity);
    opt_dec(out, "best_ask_price", &t.ask_price);
    opt_dec(out, "best_ask_quantity", &t.ask_quantity);
    opt_dec(out, "last_price", &t.last_price);
    if let Some(u) = t.update_id {
        u64_field(out, "update_id", u);
    }
    tail(out, &t.origin);
}

/// `gap`: the stream (`channel`), why, and the id/time range lost.
fn encode_gap(out: &mut Vec<u8>, g: &Gap<'_>) {
    head(out, DataType::Gap, &g.origin);
    str_field(out, "channel", g.stream.name());
    str_field(out, "reason", g.reason);
    if let Some(a) = g.from_id {
        u64_field(out, "from_id", a);
    }
    if let Some(b) = g.to_id {
        u64_field(out, "to_id", b);
    }
    u64_field(out, "from_ts_ms", g.from_ts_ms);
    u64_field(out, "to_ts_ms", g.to_ts_ms);
    if let Some(n) = g.missing {
        u64_field(out, "missing", n);
    }
    out.extend_from_slice(b",\"filled\":false");
    tail(out, &g.origin);
}

/// `{"data_type":"trade","exchange":…,"market_type":…,"symbol":` of each
/// venue as one constant (one copy instead of five; a unit test holds it
/// to `exchange()` / `market_type()`).
fn encode_trade(out: &mut Vec<u8>, t: &Trade<'_>) {
    out.extend_from_slice(t.venue.trade_head());
    json_str(out, t.symbol);
    // `instrument_id` as on every record; `raw_symbol` (the same name) is
    // what trade readers have always read.
    out.extend_from_slice(b",\"instrument_id\":");
    json_str(out, t.raw_symbol);
    out.extend_from_slice(b",\"raw_symbol\":");
    json_str(out, t.raw_symbol);
    out.extend_from_slice(b",\"trade_id\":");
    match t.trade_id {
        TradeId::Num(n) => {
            out.push(b'"');
            push_u64(out, n);
            out.push(b'"');
        }
        TradeId::Str(s) => json_str(out, s),
    }
    out.extend_from_slice(b",\"price\":\"");
    push_decimal(out, &t.price);
    out.extend_from_slice(b"\",\"quantity\":\"");
    push_decimal(out, &t.quantity);
    out.extend_from_slice(b"\",\"side\":\"");
    out.extend_from_slice(t.side.as_str().as_bytes());
    out.push(b'"');
    opt_dec(out, "contracts", &t.contracts);
    if let Some(m) = t.is_maker {
        out.extend_from_slice(if m {
            b",\"is_maker\":true"
        } else {
            b",\"is_maker\":false"
        });
    }
    if t.backfilled {
        out.extend_from_slice(b",\"backfilled\":true");
    }
    out.extend_from_slice(b",\"trade_ts_ms\":");
    push_u64(out, t.trade_ts_ms);
    out.extend_from_slice(b",\"ts_ms\":");
    push_u64(out, t.ts_ms);
    receive_tail(out, t.receive_ts_ns);
}

/// NATS subject of a record: `{data_type}.{exchange}.{market_type}.{symbol}`
/// (MarketPrism's, e.g. `trade.binance.spot.BTC-USDT`). Symbols are
/// `BASE-QUOTE` from the instrument list; characters NATS treats specially
/// (`.`, `*`, `>`, spaces) are replaced by `_` so a record can never land on
/// another subject.
pub fn push_subject(out: &mut Vec<u8>, rec: &Record<'_>) {
    let (venue, symbol) = (rec.venue(), rec.symbol());
    let dt = rec.data_type();
    out.extend_from_slice(dt.name().as_bytes());
    out.push(b'.');
    out.extend_from_slice(venue.exchange().as_bytes());
    out.push(b'.');
    out.extend_from_slice(venue.market_type_of(dt).as_bytes());
    out.push(b'.');
    push_token(out, symbol);
}

/// JetStream `Nats-Msg-Id`: MarketPrism's `trade:{exchange}:{symbol}:{trade_id}`
/// with the market type added (`trade:binance:spot:BTC-USDT:123`), because
/// spot and perpetual share symbol names but not id spaces: without it the
/// server would drop a perpetual trade as a duplicate of a spot one.
pub fn push_msg_id(out: &mut Vec<u8>, rec: &Record<'_>) {
    match rec {
        Record::Trade(t) => {
            out.extend_from_slice(b"trade:");
            out.extend_from_slice(t.venue.exchange().as_bytes());
            out.push(b':');
            out.extend_from_slice(t.venue.market_type().as_bytes());
            out.push(b':');
            push_token(out, t.symbol);
            out.push(b':');
            match t.trade_id {
                TradeId::Num(n) => push_u64(out, n),
                TradeId::Str(s) => push_token(out, s),
            }
        }
        _ => {
            // MarketPrism's `{dt}:{exchange}:{symbol}:{ts}` family, with the
            // market type added and a discriminator per type.
            let dt = rec.data_type();
            let o = rec.origin();
            out.extend_from_slice(dt.name().as_bytes());
            out.push(b':');
            out.extend_from_slice(o.venue.exchange().as_bytes());
            out.push(b':');
            out.extend_from_slice(o.venue.market_type_of(dt).as_bytes());
            out.push(b':');
            push_token(out, o.symbol);
            out.push(b':');
            match rec {
                // A venue that sent no sequence id (OKX books before
                // `seqId`) leaves the id 0: the exchange time tells its
                // records apart instead (`t` marks it as a time).
                Record::Book(b) if b.last_update_id == 0 => {
                    out.push(b't');
                    push_u64(out, o.ts_ms);
                }
                Record::Book(b) => {
                    push_u64(out, b.last_update_id);
                    if b.delta {
                        out.push(b':');
                        push_u64(out, b.first_update_id);
                    }
                }
                Record::Ticker(t) => push_u64(out, t.update_id.unwrap_or(o.ts_ms)),
                Record::Liquidation(l) => {
                    push_u64(out, l.liquidation_ts_ms);
                    out.push(b':');
                    push_decimal(out, &l.price);
                    out.push(b':');
                    push_decimal(out, &l.quantity);
                    out.push(b':');
                    out.extend_from_slice(l.side.as_str().as_bytes());
                }
                Record::Lsr(l) => {
                    push_u64(out, o.ts_ms);
                    out.push(b':');
                    push_token(out, l.period);
                }
                Record::Gap(g) => {
                    out.extend_from_slice(g.stream.name().as_bytes());
                    out.push(b':');
                    push_u64(out, g.from_id.unwrap_or(g.from_ts_ms));
                    out.push(b':');
                    push_u64(out, g.to_id.unwrap_or(g.to_ts_ms));
                }
                _ => push_u64(out, o.ts_ms),
            }
        }
    }
}

/// A subject/header token: printable ASCII without NATS wildcards or separators.
fn push_token(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        out.push(match b {
            b'.' | b'*' | b'>' => b'_',
            0x21..=0x7e => b,
            _ => b'_',
        });
    }
}

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
/// point for 0). The digits go out as [`Blocks`], like integers; the point
/// is made by moving the fraction one byte right with one fixed 32-byte
/// move (a variable-length copy is a `memmove` call per number).
#[inline]
fn push_scaled(out: &mut Vec<u8>, n: u64, scale: usize) {
    let scale = scale.min(28);
    let b = Blocks::of(n);
    if scale == 0 {
        b.put(out, b.digits);
        return;
    }
    if b.digits <= scale {
        // `0.` and the zeros in front, then the digits.
        out.reserve(2 + 32);
        out.extend_from_slice(b"0.");
        put(out, 0, &[b'0'; 32]);
        // SAFETY: `put` wrote 32 '0's; `scale - digits` <= 27 are kept.
        unsafe { out.set_len(out.len() + scale - b.digits) };
        b.put(out, b.digits);
        return;
    }
    out.reserve(b.digits + 1 + 32);
    b.put(out, b.digits);
    let frac_at = out.len() - scale;
    // The fraction and the spare bytes after it (reserved above, maybe
    // uninitialized: hence `MaybeUninit`) move one byte right as a whole.
    let mut frac = std::mem::MaybeUninit::<[u8; 32]>::uninit();
    let base = out.as_mut_ptr();
    // SAFETY: `frac_at + 1 + 32` <= length + 33 - scale, within the
    // `digits + 1 + 32` bytes reserved from the old length on.
    unsafe {
        std::ptr::copy_nonoverlapping(base.add(frac_at), frac.as_mut_ptr().cast::<u8>(), 32);
        std::ptr::copy_nonoverlapping(frac.as_ptr().cast::<u8>(), base.add(frac_at + 1), 32);
        *base.add(frac_at) = b'.';
        out.set_len(out.len() + 1);
    }
}

/// `,"collected_ts_ms":…,"receive_ts_ns":…,"data_source":"marketprism"}`.
#[inline]
fn receive_tail(out: &mut Vec<u8>, receive_ts_ns: u64) {
    // The ms are the ns' leading digits: one conversion for both.
    let b = Blocks::of(receive_ts_ns);
    out.extend_from_slice(b",\"collected_ts_ms\":");
    if b.digits > 6 {
        b.put(out, b.digits - 6);
    } else {
        out.push(b'0');
    }
    out.extend_from_slice(b",\"receive_ts_ns\":");
    b.put(out, b.digits);
    out.extend_from_slice(b",\"data_source\":\"marketprism\"}");
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
struct Blocks {
    /// Unused blocks are 0.
    w: [u64; 3],
    /// Digits in the first block (1..=8).
    first: usize,
    /// All digits: more than 8 use the second block, more than 16 the third.
    digits: usize,
}

impl Blocks {
    // Always inlined: as a call, the struct went back through memory and
    // the prologue cost as much as a block's digits.
    #[inline(always)]
    fn of(n: u64) -> Blocks {
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
    fn put(&self, out: &mut Vec<u8>, keep: usize) {
        debug_assert!(keep >= 1 && keep <= self.digits);
        out.reserve(24);
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        let store = |at: usize, w: u64| {
            // SAFETY: at most three 8-byte stores ending at byte 20 of the
            // 24 reserved.
            unsafe {
                dst.add(at)
                    .cast::<[u8; 8]>()
                    .write_unaligned(w.to_le_bytes())
            }
        };
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

/// Whether any of the eight bytes of `w` is below 0x20, `"` or `\\`
/// (exact as a yes/no: the zero-byte test has no false positives overall).
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
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

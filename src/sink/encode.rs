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
use crate::json::{json_str, push_decimal, push_u64, Blocks};
use crate::model::{DataType, VenueId};
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

fn levels(out: &mut Vec<u8>, k: &str, ls: &[Level]) {
    key(out, k);
    push_levels(out, ls);
}

/// Levels as MarketPrism's `[{"price":"..","quantity":".."}]`, best first
/// (also the ClickHouse `bids`/`asks` text, which must be byte-identical).
pub(crate) fn push_levels(out: &mut Vec<u8>, ls: &[Level]) {
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
    push_subject_of(out, rec.data_type(), rec.venue(), rec.symbol());
}

fn push_subject_of(out: &mut Vec<u8>, dt: DataType, venue: VenueId, symbol: &str) {
    out.extend_from_slice(dt.name().as_bytes());
    out.push(b'.');
    out.extend_from_slice(venue.exchange().as_bytes());
    out.push(b'.');
    out.extend_from_slice(venue.market_type_of(dt).as_bytes());
    out.push(b'.');
    push_token(out, symbol);
}

/// The subject [`push_subject`] gives records of `dt`, `venue`, `symbol`.
pub fn subject_of(dt: DataType, venue: VenueId, symbol: &str) -> String {
    let mut out = Vec::with_capacity(64);
    push_subject_of(&mut out, dt, venue, symbol);
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
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

/// The key before a record's receive time, and the bytes every record ends
/// with: `sink::nats::receive_ts` reads the time back by them.
pub(crate) const RECEIVE_TS_KEY: &[u8] = b",\"receive_ts_ns\":";
pub(crate) const RECORD_END: &[u8] = b",\"data_source\":\"marketprism\"}";

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
    out.extend_from_slice(RECEIVE_TS_KEY);
    b.put(out, b.digits);
    out.extend_from_slice(RECORD_END);
}

#[cfg(test)]
mod tests;

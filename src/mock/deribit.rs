//! Deribit JSON-RPC 2.0 over WebSocket (perpetuals): deterministic
//! `trades.{inst}.{raw|100ms}`, `ticker.{inst}.100ms` and
//! `deribit_volatility_index.{btc_usd|eth_usd}` notifications, `book.{inst}.100ms`
//! snapshot/change frames, JSON-RPC replies and `get_instruments`.
//! Prices and amounts are JSON numbers printed in fixed-point (`10700.0`,
//! `0.00012000`), never exponent notation. `sym_idx` indexes
//! [`INSTRUMENTS`], the volatility `idx` [`VOL_INDICES`].

use std::fmt::Write as _;

use super::book::{mix, push_dec, BookFeed, Side, Update};
use super::chan::Chan;

/// The perpetuals.
pub const INSTRUMENTS: [&str; 2] = ["BTC-PERPETUAL", "ETH-PERPETUAL"];

/// The volatility indices.
pub const VOL_INDICES: [&str; 2] = ["btc_usd", "eth_usd"];

fn inst(i: usize) -> &'static str {
    INSTRUMENTS.get(i).copied().unwrap_or("BTC-PERPETUAL")
}

/// (mid in price units, price decimals, tick in units)
fn px_spec(i: usize) -> (i64, u32, i64) {
    if i == 0 {
        (300_000, 1, 5)
    } else {
        (200_000, 2, 5)
    }
}

fn ts(n: u64, base: u64) -> u64 {
    base.wrapping_add(n)
}

fn head(o: &mut String, channel: &str) {
    let _ = write!(
        o,
        "{{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{{\"channel\":\"{channel}\",\"data\":"
    );
}

/// `trades.{inst}.{interval}` notification number `n` (1-based): one trade,
/// `trade_seq` = n, `trade_id` = "<sym_idx+1><n zero-padded to 9>",
/// `amount` in USD.
pub fn trades(sym_idx: usize, n: u64, base: u64, interval: &str) -> String {
    let mut o = String::with_capacity(400);
    let channel = format!("trades.{}.{interval}", inst(sym_idx));
    write_trades(&mut o, &channel, sym_idx, n, base);
    o
}

pub(crate) fn write_trades(o: &mut String, channel: &str, i: usize, n: u64, base: u64) {
    head(o, channel);
    o.push('[');
    write_trade_obj(o, i, n, base);
    o.push_str("]}}");
}

/// Trade `n` as a JSON object: the element of the `trades` notification and
/// of REST `get_last_trades_by_instrument` alike.
pub(crate) fn write_trade_obj(o: &mut String, i: usize, n: u64, base: u64) {
    let (mid, dp, tick) = px_spec(i);
    let name = inst(i);
    let price = mid + tick * ((mix(n ^ 0xd1) % 201) as i64 - 100);
    let _ = write!(
        o,
        "{{\"trade_seq\":{n},\"trade_id\":\"{}{:09}\",\"timestamp\":{},\"tick_direction\":{},\"price\":",
        i + 1,
        n % 1_000_000_000,
        ts(n, base),
        n % 4
    );
    push_dec(o, price, dp);
    o.push_str(",\"mark_price\":");
    push_dec(o, price + 3, dp);
    let _ = write!(o, ",\"instrument_name\":\"{name}\",\"index_price\":");
    push_dec(o, price - 7, dp);
    let _ = write!(
        o,
        ",\"direction\":\"{}\",\"amount\":",
        if n % 3 == 0 { "sell" } else { "buy" }
    );
    push_dec(o, 10 * (1 + (n.wrapping_mul(7919) % 5000) as i64) * 10, 1);
    o.push('}');
}

/// `ticker.{inst}.{interval}` notification number `n`.
pub fn ticker(sym_idx: usize, n: u64, base: u64, interval: &str) -> String {
    let mut o = String::with_capacity(600);
    let channel = format!("ticker.{}.{interval}", inst(sym_idx));
    write_ticker(&mut o, &channel, sym_idx, n, base);
    o
}

pub(crate) fn write_ticker(o: &mut String, channel: &str, i: usize, n: u64, base: u64) {
    let (mid, dp, tick) = px_spec(i);
    let name = inst(i);
    head(o, channel);
    let last = mid + tick * ((mix(n ^ 0xd2) % 101) as i64 - 50);
    let bid = last - tick * (1 + (n % 3) as i64);
    let ask = last + tick * (1 + (n % 2) as i64);
    let funding = (mix(n ^ 0xd3) % 20_001) as i64 - 10_000; // 1e-8
    let _ = write!(
        o,
        "{{\"timestamp\":{},\"state\":\"open\",\"open_interest\":",
        ts(n, base)
    );
    push_dec(
        o,
        1_000_000_000 + (mix(n ^ 0xd4) % 1_000_000) as i64 * 10,
        1,
    );
    let fields: [(&str, i64, u32); 8] = [
        ("best_bid_price", bid, dp),
        ("best_bid_amount", 10 * (1 + (n % 997) as i64) * 10, 1),
        ("best_ask_price", ask, dp),
        ("best_ask_amount", 10 * (1 + (n % 991) as i64) * 10, 1),
        ("mark_price", last + 1, dp),
        ("index_price", last - 4, dp),
        ("current_funding", funding, 8),
        ("funding_8h", funding / 3, 8),
    ];
    for (k, v, d) in fields {
        let _ = write!(o, ",\"{k}\":");
        push_dec(o, v, d);
    }
    o.push_str(",\"last_price\":");
    push_dec(o, last, dp);
    let _ = write!(o, ",\"instrument_name\":\"{name}\"}}}}}}");
}

/// `deribit_volatility_index.{index}` notification number `n`; `idx` 0
/// `btc_usd`, 1 `eth_usd`.
pub fn volatility(idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(200);
    write_volatility(&mut o, idx, n, base);
    o
}

pub(crate) fn write_volatility(o: &mut String, idx: usize, n: u64, base: u64) {
    let name = VOL_INDICES.get(idx).copied().unwrap_or("btc_usd");
    let _ = write!(
        o,
        "{{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{{\"channel\":\"deribit_volatility_index.{name}\",\"data\":"
    );
    o.push_str("{\"volatility\":");
    push_dec(o, 4000 + (mix(n ^ 0xd5 ^ idx as u64) % 3000) as i64, 2);
    let _ = write!(
        o,
        ",\"timestamp\":{},\"index_name\":\"{name}\"}}}}}}",
        ts(n, base)
    );
}

/// `[action, price, amount]` entries.
fn push_entries(o: &mut String, f: &BookFeed, entries: &[(&str, i64, u64)]) {
    o.push('[');
    for (k, (a, p, q)) in entries.iter().enumerate() {
        if k > 0 {
            o.push(',');
        }
        let _ = write!(o, "[\"{a}\",");
        push_dec(o, *p, f.spec.price_dp);
        o.push(',');
        push_dec(o, *q as i64, f.spec.qty_dp.max(1));
        o.push(']');
    }
    o.push(']');
}

/// `book.{inst}.{interval}` first notification: the current true book as
/// `["new", price, amount]` entries with `change_id`.
pub fn write_book_snapshot(o: &mut String, channel: &str, instrument: &str, f: &BookFeed) {
    head(o, channel);
    let b = f.book();
    let bids: Vec<(&str, i64, u64)> = b
        .top(Side::Bid, usize::MAX)
        .into_iter()
        .map(|(p, q)| ("new", p, q))
        .collect();
    let asks: Vec<(&str, i64, u64)> = b
        .top(Side::Ask, usize::MAX)
        .into_iter()
        .map(|(p, q)| ("new", p, q))
        .collect();
    let _ = write!(
        o,
        "{{\"type\":\"snapshot\",\"timestamp\":{},\"instrument_name\":\"{instrument}\",\"change_id\":{},\"bids\":",
        f.ts_of(f.n()),
        f.last_id()
    );
    push_entries(o, f, &bids);
    o.push_str(",\"asks\":");
    push_entries(o, f, &asks);
    o.push_str("}}}");
}

/// `book.*` change notification of update `u`: `new` (level was absent),
/// `delete` (amount 0.0) or `change`.
pub fn write_book_change(
    o: &mut String,
    channel: &str,
    instrument: &str,
    f: &BookFeed,
    u: &Update,
) {
    head(o, channel);
    let side = |s: Side| {
        let mut v: Vec<(&str, i64, u64)> = u
            .changes
            .iter()
            .filter(|c| c.side == s)
            .map(|c| {
                let a = if c.new == 0 {
                    "delete"
                } else if c.old == 0 {
                    "new"
                } else {
                    "change"
                };
                (a, c.price, c.new)
            })
            .collect();
        match s {
            Side::Bid => v.sort_by_key(|x| std::cmp::Reverse(x.1)),
            Side::Ask => v.sort_by_key(|x| x.1),
        }
        v
    };
    let _ = write!(
        o,
        "{{\"type\":\"change\",\"timestamp\":{},\"prev_change_id\":{},\"instrument_name\":\"{instrument}\",\"change_id\":{},\"bids\":",
        u.ts_ms, u.prev_id, u.last_id
    );
    push_entries(o, f, &side(Side::Bid));
    o.push_str(",\"asks\":");
    push_entries(o, f, &side(Side::Ask));
    o.push_str("}}}");
}

/// What a channel names: (channel kind or None for a book, index, interval).
pub(crate) fn parse_channel(name: &str) -> Option<(Option<Chan>, usize)> {
    if let Some(ix) = name.strip_prefix("deribit_volatility_index.") {
        let i = VOL_INDICES.iter().position(|x| *x == ix)?;
        return Some((Some(Chan::Volatility), i));
    }
    let mut parts = name.split('.');
    let (kind, instr, interval) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let i = INSTRUMENTS.iter().position(|x| *x == instr)?;
    let c = match (kind, interval) {
        ("trades", "raw" | "100ms") => Some(Chan::Trade),
        ("ticker", "raw" | "100ms") => Some(Chan::Ticker),
        ("book", "raw" | "100ms") => None,
        _ => return None,
    };
    Some((c, i))
}

/// A JSON-RPC result; `id_json` is the request id as JSON text.
pub fn result(id_json: &str, result_json: &str) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id_json},\"result\":{result_json}}}")
}

/// A JSON-RPC error.
pub fn error(id_json: &str, code: i64, message: &str) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id_json},\"error\":{{\"message\":\"{message}\",\"code\":{code}}}}}"
    )
}

/// The server's heartbeat request.
pub const TEST_REQUEST: &str =
    "{\"jsonrpc\":\"2.0\",\"method\":\"heartbeat\",\"params\":{\"type\":\"test_request\"}}";

/// `GET /api/v2/public/get_instruments?currency=BTC|ETH|any&kind=future`;
/// `None` for an unknown currency.
pub fn instruments_json(currency: &str) -> Option<String> {
    let pick: Vec<usize> = match currency {
        "BTC" => vec![0],
        "ETH" => vec![1],
        "any" => vec![0, 1],
        _ => return None,
    };
    let mut o = String::from("{\"jsonrpc\":\"2.0\",\"result\":[");
    for (k, i) in pick.into_iter().enumerate() {
        if k > 0 {
            o.push(',');
        }
        let (base, tick) = if i == 0 {
            ("BTC", "0.5")
        } else {
            ("ETH", "0.05")
        };
        let _ = write!(
            o,
            "{{\"tick_size\":{tick},\"taker_commission\":0.0005,\"settlement_period\":\"perpetual\",\"settlement_currency\":\"{base}\",\"quote_currency\":\"USD\",\"price_index\":\"{}_usd\",\"min_trade_amount\":10,\"maker_commission\":0.0,\"kind\":\"future\",\"is_active\":true,\"instrument_name\":\"{}\",\"instrument_id\":{},\"expiration_timestamp\":32503708800000,\"creation_timestamp\":1534242287000,\"counter_currency\":\"USD\",\"contract_size\":10,\"block_trade_commission\":0.00025,\"base_currency\":\"{base}\"}}",
            base.to_ascii_lowercase(),
            inst(i),
            124_972 + i
        );
    }
    o.push_str("],\"usIn\":0,\"usOut\":0,\"usDiff\":0,\"testnet\":false}");
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venues::book_spec;
    use crate::mock::MockOptions;
    use crate::model::VenueId;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};

    fn v(s: &str) -> sonic_rs::Value {
        sonic_rs::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn notifications_parse_and_have_no_exponents() {
        for s in [
            trades(0, 3, 10, "raw"),
            trades(1, 3, 10, "100ms"),
            ticker(0, 9, 10, "100ms"),
            volatility(1, 2, 10),
        ] {
            let x = v(&s);
            assert_eq!(x.get("method").unwrap().as_str(), Some("subscription"));
            assert!(!s.contains('e') || !s.contains("e-"), "{s}");
            assert!(!s.contains("E+") && !s.contains("e+"));
        }
        let t = v(&trades(0, 3, 10, "raw"));
        let d = &t
            .get("params")
            .unwrap()
            .get("data")
            .unwrap()
            .as_array()
            .unwrap()[0];
        assert_eq!(d.get("trade_id").unwrap().as_str(), Some("1000000003"));
        assert!(d.get("price").unwrap().as_f64().is_some());
        let tk = ticker(0, 9, 10, "100ms");
        assert!(tk.contains("\"current_funding\":0.") || tk.contains("\"current_funding\":-0."));
        let vo = v(&volatility(0, 1, 5));
        assert_eq!(
            vo.get("params")
                .unwrap()
                .get("data")
                .unwrap()
                .get("index_name")
                .unwrap()
                .as_str(),
            Some("btc_usd")
        );
        assert_eq!(parse_channel("book.ETH-PERPETUAL.100ms"), Some((None, 1)));
        assert_eq!(
            parse_channel("trades.BTC-PERPETUAL.raw"),
            Some((Some(Chan::Trade), 0))
        );
        assert_eq!(parse_channel("trades.BTC-PERPETUAL.1s"), None);
        assert_eq!(
            parse_channel("deribit_volatility_index.eth_usd"),
            Some((Some(Chan::Volatility), 1))
        );
        let i = v(&instruments_json("any").unwrap());
        assert_eq!(i.get("result").unwrap().as_array().unwrap().len(), 2);
        assert!(instruments_json("XRP").is_none());
    }

    #[test]
    fn book_chain() {
        let o = MockOptions::default();
        let mut f = BookFeed::new(
            book_spec(&o, VenueId::DeribitDerivatives, 0, "BTC-PERPETUAL"),
            0,
            0,
            0,
        );
        let mut s = String::new();
        write_book_snapshot(&mut s, "book.BTC-PERPETUAL.100ms", "BTC-PERPETUAL", &f);
        let x = v(&s);
        let d = x.get("params").unwrap().get("data").unwrap();
        let mut last = d.get("change_id").unwrap().as_u64().unwrap();
        let first_bid = &d.get("bids").unwrap().as_array().unwrap()[0];
        assert_eq!(first_bid.as_array().unwrap()[0].as_str(), Some("new"));
        assert!(
            s.contains(",29999.5,") || s.contains("29999.5"),
            "{}",
            &s[..300]
        );
        f.advance_to(4);
        for n in 1..=4 {
            let mut s = String::new();
            write_book_change(
                &mut s,
                "book.BTC-PERPETUAL.100ms",
                "BTC-PERPETUAL",
                &f,
                f.update(n).unwrap(),
            );
            let x = v(&s);
            let d = x.get("params").unwrap().get("data").unwrap();
            assert_eq!(d.get("prev_change_id").unwrap().as_u64(), Some(last));
            last = d.get("change_id").unwrap().as_u64().unwrap();
        }
    }
}

//! Bybit v5 public market data, spot and linear: deterministic
//! `publicTrade`, `tickers` (linear: snapshot then deltas carrying only the
//! changed fields) and `allLiquidation` pushes, `orderbook.{50|200}` frames,
//! the subscribe/ping replies (spot and linear shapes differ) and the REST
//! answers in the `{"retCode":0,"retMsg":"OK","result":..}` envelope.
//! `sym_idx` indexes [`SYMBOLS`].

use std::fmt::Write as _;

use super::book::{mix, push_dec, side_changes, BookFeed, Side, Update};
use super::chan::Chan;

/// Native symbols (symbol, base, quote); `sym_idx` indexes them.
pub const SYMBOLS: [(&str, &str, &str); 2] =
    [("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT")];

/// Bybit product category (= WebSocket path / REST `category`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cat {
    Spot,
    Linear,
}

impl Cat {
    pub fn name(self) -> &'static str {
        match self {
            Cat::Spot => "spot",
            Cat::Linear => "linear",
        }
    }
}

const FUNDING_PERIOD_MS: u64 = 8 * 3_600_000;
const SLOT_MS: u64 = 300_000;

fn sym(i: usize) -> &'static str {
    SYMBOLS.get(i).map(|s| s.0).unwrap_or("BTCUSDT")
}

/// Mid in cents.
fn mid(i: usize) -> i64 {
    if i == 0 {
        3_000_000
    } else {
        200_000
    }
}

fn ts(n: u64, base: u64) -> u64 {
    base.wrapping_add(n)
}

fn dec(v: i64, dp: u32) -> String {
    super::book::dec(v, dp)
}

/// `publicTrade.{sym}` push number `n` (1-based): one trade, `i` ends with
/// `n` in hex, `seq` = n; linear trades carry `L` (tick direction).
pub fn trade(cat: Cat, sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(256);
    write_trade(&mut o, cat, sym_idx, n, base);
    o
}

/// The numbers of `publicTrade` item `n`, shared by the WS push and the
/// REST `recent-trade` rows so the two cannot diverge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TradeNums {
    pub time: u64,
    pub sell: bool,
    pub qty: i64,
    pub qty_dp: u32,
    /// Price in cents.
    pub price: i64,
    pub plus_tick: bool,
    /// Low bits of the execution id (`i`).
    pub exec: u64,
}

pub(crate) fn trade_nums(cat: Cat, i: usize, n: u64, base: u64) -> TradeNums {
    let (qty_dp, qty) = match cat {
        Cat::Spot => (6, 1 + (n.wrapping_mul(104_729) % 999_999) as i64),
        Cat::Linear => (3, 1 + (n.wrapping_mul(7919) % 9_999) as i64),
    };
    TradeNums {
        time: ts(n, base),
        sell: n % 3 == 0,
        qty,
        qty_dp,
        price: mid(i) + (mix(n ^ 0xb1) % 2001) as i64 - 1000,
        plus_tick: n % 2 == 0,
        exec: ((i as u64) << 40) | (n & 0xff_ffff_ffff),
    }
}

fn side(x: &TradeNums) -> &'static str {
    if x.sell {
        "Sell"
    } else {
        "Buy"
    }
}

pub(crate) fn write_trade(o: &mut String, cat: Cat, i: usize, n: u64, base: u64) {
    let x = trade_nums(cat, i, n, base);
    let t = x.time;
    let s = sym(i);
    let _ = write!(
        o,
        "{{\"topic\":\"publicTrade.{s}\",\"type\":\"snapshot\",\"ts\":{},\"data\":[{{\"T\":{t},\"s\":\"{s}\",\"S\":\"{}\",\"v\":\"",
        t + 1,
        side(&x)
    );
    push_dec(o, x.qty, x.qty_dp);
    o.push_str("\",\"p\":\"");
    push_dec(o, x.price, 2);
    o.push('"');
    if cat == Cat::Linear {
        o.push_str(if x.plus_tick {
            ",\"L\":\"PlusTick\""
        } else {
            ",\"L\":\"MinusTick\""
        });
    }
    let _ = write!(
        o,
        ",\"i\":\"00000000-0000-4000-8000-{:012x}\",\"BT\":false,\"seq\":{n}}}]}}",
        x.exec
    );
}

/// One `list` row of `GET /v5/market/recent-trade`.
pub(crate) fn write_recent_trade(o: &mut String, i: usize, x: &TradeNums) {
    let _ = write!(
        o,
        "{{\"execId\":\"00000000-0000-4000-8000-{:012x}\",\"symbol\":\"{}\",\"price\":\"",
        x.exec,
        sym(i)
    );
    push_dec(o, x.price, 2);
    o.push_str("\",\"size\":\"");
    push_dec(o, x.qty, x.qty_dp);
    let _ = write!(
        o,
        "\",\"side\":\"{}\",\"time\":\"{}\",\"isBlockTrade\":false}}",
        side(x),
        x.time
    );
}

/// The v5 REST envelope around a `result` object.
pub(crate) fn rest_ok(result: &str, now_ms: u64) -> String {
    envelope(result, now_ms)
}

/// The full ticker state after item `n` as (field, value) pairs, in the
/// order Bybit documents them.
fn ticker_fields(cat: Cat, i: usize, n: u64, base: u64) -> Vec<(&'static str, String)> {
    let m = mid(i);
    let last = m + (mix(n ^ 0x11) % 2001) as i64 - 1000;
    match cat {
        Cat::Spot => vec![
            ("symbol", sym(i).to_string()),
            ("lastPrice", dec(last, 2)),
            ("highPrice24h", dec(m + 5000, 2)),
            ("lowPrice24h", dec(m - 5000, 2)),
            ("prevPrice24h", dec(m, 2)),
            ("volume24h", dec(1_000_000 + n as i64, 6)),
            ("turnover24h", dec(30_000_000 + n as i64, 4)),
            ("price24hPcnt", dec((last - m) * 10_000 / m, 4)),
            ("usdIndexPrice", dec(m * 100 + (n % 7) as i64, 4)),
        ],
        Cat::Linear => {
            // Slower fields change every 2nd / 3rd / 5th item.
            let (n2, n3, n5) = (n / 2, n / 3, n / 5);
            let mark = m + (mix(n2 ^ 0x22) % 1001) as i64 - 500;
            let oi = 50_000_000 + (mix(n3 ^ 0x33) % 1_000_000) as i64; // 3 dp
            let rate = (mix(n5 ^ 0x55) % 20_001) as i64 - 10_000; // 8 dp
            let t5 = ts(n5 * 5, base);
            let next_funding = (t5 / FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS;
            let bid = last - 10 * (1 + (n % 3) as i64);
            vec![
                ("symbol", sym(i).to_string()),
                ("tickDirection", "PlusTick".to_string()),
                ("price24hPcnt", dec((last - m) * 10_000 / m, 6)),
                ("lastPrice", dec(last, 2)),
                ("prevPrice24h", dec(m, 2)),
                ("highPrice24h", dec(m + 5000, 2)),
                ("lowPrice24h", dec(m - 5000, 2)),
                ("prevPrice1h", dec(m, 2)),
                ("markPrice", dec(mark, 2)),
                ("indexPrice", dec(mark - 150, 2)),
                ("openInterest", dec(oi, 3)),
                ("openInterestValue", dec(oi * m / 1000, 2)),
                ("turnover24h", dec(49_367_908_076_521 + n as i64, 4)),
                ("volume24h", dec(73_191_387 + n as i64, 3)),
                ("fundingIntervalHour", "8".to_string()),
                ("fundingCap", "0.005".to_string()),
                ("nextFundingTime", next_funding.to_string()),
                ("fundingRate", dec(rate, 8)),
                ("bid1Price", dec(bid, 2)),
                ("bid1Size", dec(1 + (n % 997) as i64, 3)),
                ("ask1Price", dec(bid + 10, 2)),
                ("ask1Size", dec(1 + (n % 991) as i64, 3)),
            ]
        }
    }
}

/// `tickers.{sym}` push number `n`. Spot: always a snapshot. Linear: a
/// snapshot of the state after item `n` when `snapshot` (a subscriber's
/// first push), else a delta with `symbol` plus the fields that differ from
/// item `n - 1`.
pub fn ticker(cat: Cat, sym_idx: usize, n: u64, base: u64, snapshot: bool) -> String {
    let mut o = String::with_capacity(900);
    write_ticker(&mut o, cat, sym_idx, n, base, snapshot);
    o
}

pub(crate) fn write_ticker(o: &mut String, cat: Cat, i: usize, n: u64, base: u64, snapshot: bool) {
    let full = ticker_fields(cat, i, n, base);
    let snapshot = snapshot || cat == Cat::Spot;
    let prev = if snapshot {
        Vec::new()
    } else {
        ticker_fields(cat, i, n.saturating_sub(1), base)
    };
    let _ = write!(
        o,
        "{{\"topic\":\"tickers.{}\",\"type\":\"{}\",\"data\":{{",
        sym(i),
        if snapshot { "snapshot" } else { "delta" }
    );
    let mut first = true;
    for (k, (name, val)) in full.iter().enumerate() {
        if !snapshot && *name != "symbol" && prev.get(k).map(|p| &p.1) == Some(val) {
            continue;
        }
        if !first {
            o.push(',');
        }
        first = false;
        let _ = write!(o, "\"{name}\":\"{val}\"");
    }
    let _ = write!(o, "}},\"cs\":{},\"ts\":{}}}", n, ts(n, base));
}

/// `allLiquidation.{sym}` (linear) push number `n`; `S` is the liquidated
/// POSITION side (`Buy` = a long was liquidated).
pub fn liquidation(sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(200);
    write_liquidation(&mut o, sym_idx, n, base);
    o
}

pub(crate) fn write_liquidation(o: &mut String, i: usize, n: u64, base: u64) {
    let t = ts(n, base);
    let s = sym(i);
    let _ = write!(
        o,
        "{{\"topic\":\"allLiquidation.{s}\",\"type\":\"snapshot\",\"ts\":{},\"data\":[{{\"T\":{t},\"s\":\"{s}\",\"S\":\"{}\",\"v\":\"",
        t + 1,
        if n % 2 == 0 { "Buy" } else { "Sell" }
    );
    push_dec(o, 1 + (n.wrapping_mul(31) % 5000) as i64, 3);
    o.push_str("\",\"p\":\"");
    push_dec(o, mid(i) - 3000 + (n % 97) as i64 * 50, 2);
    o.push_str("\"}]}");
}

/// `[["p","q"],..]` of levels.
fn push_levels(o: &mut String, f: &BookFeed, levels: &[(i64, u64)]) {
    f.push_levels_json(o, levels);
}

#[allow(clippy::too_many_arguments)]
fn write_book_frame(
    o: &mut String,
    topic: &str,
    symbol: &str,
    f: &BookFeed,
    snapshot: bool,
    bids: &[(i64, u64)],
    asks: &[(i64, u64)],
    u: u64,
    seq: u64,
    ts_ms: u64,
) {
    let _ = write!(
        o,
        "{{\"topic\":\"{topic}\",\"type\":\"{}\",\"ts\":{},\"data\":{{\"s\":\"{symbol}\",\"b\":",
        if snapshot { "snapshot" } else { "delta" },
        ts_ms + 2
    );
    push_levels(o, f, bids);
    o.push_str(",\"a\":");
    push_levels(o, f, asks);
    let _ = write!(o, ",\"u\":{u},\"seq\":{seq}}},\"cts\":{ts_ms}}}");
}

/// `orderbook.{depth}.{sym}` snapshot of the current true book (the mock's
/// book depth; `u` = Bybit update id, `seq` = sequence id).
pub fn write_orderbook_snapshot(o: &mut String, topic: &str, symbol: &str, f: &BookFeed) {
    let b = f.book();
    write_book_frame(
        o,
        topic,
        symbol,
        f,
        true,
        &b.top(Side::Bid, usize::MAX),
        &b.top(Side::Ask, usize::MAX),
        f.u(),
        f.last_id(),
        f.ts_of(f.n()),
    );
}

/// The frame of update `up`: a delta (size "0" deletes), or a full snapshot
/// for the `snapshot` / `u1` faults.
pub fn write_orderbook_update(
    o: &mut String,
    topic: &str,
    symbol: &str,
    f: &BookFeed,
    up: &Update,
) {
    match &up.snapshot {
        Some(s) => write_book_frame(
            o, topic, symbol, f, true, &s.0, &s.1, up.u, up.last_id, up.ts_ms,
        ),
        None => write_book_frame(
            o,
            topic,
            symbol,
            f,
            false,
            &side_changes(&up.changes, Side::Bid),
            &side_changes(&up.changes, Side::Ask),
            up.u,
            up.last_id,
            up.ts_ms,
        ),
    }
}

/// What a topic names: (channel or None for a book, sym_idx). Spot has no
/// `allLiquidation`; books only at depth 50 and 200 (also 1 and 1000 are
/// real, not served here).
pub(crate) fn parse_topic(cat: Cat, topic: &str) -> Option<(Option<Chan>, usize)> {
    let (head, s) = topic.rsplit_once('.')?;
    let i = SYMBOLS.iter().position(|x| x.0 == s)?;
    let c = match head {
        "publicTrade" => Some(Chan::Trade),
        "tickers" => Some(Chan::Ticker),
        "allLiquidation" if cat == Cat::Linear => Some(Chan::Liquidation),
        "orderbook.50" | "orderbook.200" => None,
        _ => return None,
    };
    Some((c, i))
}

/// Subscribe/unsubscribe ack or failure. Spot's success `ret_msg` is the op.
pub fn ack(cat: Cat, ok: bool, ret_msg: &str, conn_id: &str, req_id: &str, op: &str) -> String {
    let msg = if ok && cat == Cat::Spot { op } else { ret_msg };
    format!(
        "{{\"success\":{ok},\"ret_msg\":\"{}\",\"conn_id\":\"{conn_id}\",\"req_id\":\"{}\",\"op\":\"{op}\"}}",
        json_escape(msg),
        json_escape(req_id)
    )
}

/// Pong: spot has no `req_id`; linear echoes it ("" when absent).
pub fn pong(cat: Cat, conn_id: &str, req_id: &str) -> String {
    match cat {
        Cat::Spot => format!(
            "{{\"success\":true,\"ret_msg\":\"pong\",\"conn_id\":\"{conn_id}\",\"op\":\"ping\"}}"
        ),
        Cat::Linear => format!(
            "{{\"success\":true,\"ret_msg\":\"pong\",\"conn_id\":\"{conn_id}\",\"req_id\":\"{}\",\"op\":\"ping\"}}",
            json_escape(req_id)
        ),
    }
}

pub(crate) fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn envelope(result: &str, now_ms: u64) -> String {
    format!("{{\"retCode\":0,\"retMsg\":\"OK\",\"result\":{result},\"retExtInfo\":{{}},\"time\":{now_ms}}}")
}

/// Bybit REST error.
pub fn rest_error(code: u32, msg: &str, now_ms: u64) -> String {
    format!(
        "{{\"retCode\":{code},\"retMsg\":\"{}\",\"result\":{{}},\"retExtInfo\":{{}},\"time\":{now_ms}}}",
        json_escape(msg)
    )
}

/// `GET /v5/market/instruments-info?category=spot|linear`.
pub fn instruments_json(cat: Cat, now_ms: u64) -> String {
    let mut list = String::from("[");
    for (k, (s, b, q)) in SYMBOLS.iter().enumerate() {
        if k > 0 {
            list.push(',');
        }
        let tick = if k == 0 { "0.10" } else { "0.01" };
        match cat {
            Cat::Spot => {
                let _ = write!(
                    list,
                    "{{\"symbol\":\"{s}\",\"baseCoin\":\"{b}\",\"quoteCoin\":\"{q}\",\"innovation\":\"0\",\"status\":\"Trading\",\"marginTrading\":\"both\",\"lotSizeFilter\":{{\"basePrecision\":\"0.000001\",\"quotePrecision\":\"0.00000001\",\"minOrderQty\":\"0.000048\",\"maxOrderQty\":\"71.73956243\"}},\"priceFilter\":{{\"tickSize\":\"{tick}\"}}}}"
                );
            }
            Cat::Linear => {
                let _ = write!(
                    list,
                    "{{\"symbol\":\"{s}\",\"contractType\":\"LinearPerpetual\",\"status\":\"Trading\",\"baseCoin\":\"{b}\",\"quoteCoin\":\"{q}\",\"settleCoin\":\"{q}\",\"launchTime\":\"1585526400000\",\"priceScale\":\"2\",\"priceFilter\":{{\"minPrice\":\"0.10\",\"maxPrice\":\"199999.80\",\"tickSize\":\"{tick}\"}},\"lotSizeFilter\":{{\"maxOrderQty\":\"1190.000\",\"minOrderQty\":\"0.001\",\"qtyStep\":\"0.001\"}},\"fundingInterval\":480}}"
                );
            }
        }
    }
    list.push(']');
    envelope(
        &format!(
            "{{\"category\":\"{}\",\"list\":{list},\"nextPageCursor\":\"\"}}",
            cat.name()
        ),
        now_ms,
    )
}

/// `GET /v5/market/orderbook?category=&symbol=&limit=` from a book at (n, u, seq).
#[allow(clippy::too_many_arguments)]
pub fn orderbook_rest_json(
    f: &BookFeed,
    symbol: &str,
    book: &super::book::Book,
    n: u64,
    u: u64,
    seq: u64,
    limit: usize,
    now_ms: u64,
) -> String {
    let mut r = String::with_capacity(64 + limit * 40);
    let _ = write!(r, "{{\"s\":\"{symbol}\",\"a\":");
    push_levels(&mut r, f, &book.top(Side::Ask, limit));
    r.push_str(",\"b\":");
    push_levels(&mut r, f, &book.top(Side::Bid, limit));
    let t = f.ts_of(n);
    let _ = write!(r, ",\"ts\":{},\"u\":{u},\"seq\":{seq},\"cts\":{t}}}", t + 2);
    envelope(&r, now_ms)
}

/// `GET /v5/market/account-ratio?category=linear&symbol=&period=5min&limit=L`
/// answer number `n` (per symbol): L rows newest first, the newest at
/// `ceil5m(base) + (n-1) * 5m`; `timestamp` is a string, as Bybit sends it.
pub fn account_ratio(sym_idx: usize, n: u64, base: u64, limit: usize, now_ms: u64) -> String {
    let latest = base.div_ceil(SLOT_MS) * SLOT_MS + n.saturating_sub(1) * SLOT_MS;
    let mut list = String::from("[");
    for k in 0..limit.clamp(1, 500) as u64 {
        let Some(t) = latest.checked_sub(k * SLOT_MS) else {
            break;
        };
        if k > 0 {
            list.push(',');
        }
        let buy = 3000 + (mix(t ^ 0xbb ^ ((sym_idx as u64) << 48)) % 4001) as i64;
        let _ = write!(
            list,
            "{{\"symbol\":\"{}\",\"buyRatio\":\"{}\",\"sellRatio\":\"{}\",\"timestamp\":\"{t}\"}}",
            sym(sym_idx),
            dec(buy, 4),
            dec(10_000 - buy, 4)
        );
    }
    list.push(']');
    envelope(
        &format!("{{\"list\":{list},\"nextPageCursor\":\"\"}}"),
        now_ms,
    )
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
    fn pushes_parse() {
        let t = v(&trade(Cat::Linear, 0, 5, 100));
        let d = &t.get("data").unwrap().as_array().unwrap()[0];
        assert_eq!(d.get("T").unwrap().as_u64(), Some(105));
        assert!(d.get("L").is_some());
        assert!(!trade(Cat::Spot, 0, 5, 100).contains("\"L\""));
        let l = v(&liquidation(1, 2, 0));
        assert_eq!(
            l.get("topic").unwrap().as_str(),
            Some("allLiquidation.ETHUSDT")
        );
        assert_eq!(
            l.get("data").unwrap().as_array().unwrap()[0]
                .get("S")
                .unwrap()
                .as_str(),
            Some("Buy")
        );
    }

    #[test]
    fn linear_ticker_deltas_merge_to_the_snapshot() {
        for n in 2..40u64 {
            let mut merged = std::collections::BTreeMap::new();
            let snap = v(&ticker(Cat::Linear, 0, n - 1, 0, true));
            assert_eq!(snap.get("type").unwrap().as_str(), Some("snapshot"));
            for (k, x) in snap.get("data").unwrap().as_object().unwrap().iter() {
                merged.insert(k.to_string(), x.as_str().unwrap().to_string());
            }
            let d = v(&ticker(Cat::Linear, 0, n, 0, false));
            assert_eq!(d.get("type").unwrap().as_str(), Some("delta"));
            let dd = d.get("data").unwrap();
            assert!(dd.get("bid1Price").is_some());
            if n % 5 != 0 {
                assert!(dd.get("fundingRate").is_none());
            }
            for (k, x) in dd.as_object().unwrap().iter() {
                merged.insert(k.to_string(), x.as_str().unwrap().to_string());
            }
            let full = v(&ticker(Cat::Linear, 0, n, 0, true));
            let want: std::collections::BTreeMap<String, String> = full
                .get("data")
                .unwrap()
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, x)| (k.to_string(), x.as_str().unwrap().to_string()))
                .collect();
            assert_eq!(merged, want);
            assert!(want["nextFundingTime"].parse::<u64>().is_ok());
        }
        assert!(ticker(Cat::Spot, 1, 3, 0, false).contains("\"type\":\"snapshot\""));
    }

    #[test]
    fn orderbook_frames() {
        let o = MockOptions::default();
        let mut f = BookFeed::new(book_spec(&o, VenueId::BybitLinear, 0, "BTCUSDT"), 0, 0, 0);
        let mut s = String::new();
        write_orderbook_snapshot(&mut s, "orderbook.50.BTCUSDT", "BTCUSDT", &f);
        let x = v(&s);
        assert_eq!(x.get("type").unwrap().as_str(), Some("snapshot"));
        assert_eq!(x.get("data").unwrap().get("u").unwrap().as_u64(), Some(0));
        f.advance_to(3);
        for n in 1..=3 {
            let mut s = String::new();
            write_orderbook_update(
                &mut s,
                "orderbook.50.BTCUSDT",
                "BTCUSDT",
                &f,
                f.update(n).unwrap(),
            );
            let x = v(&s);
            assert_eq!(x.get("data").unwrap().get("u").unwrap().as_u64(), Some(n));
        }
        assert_eq!(
            parse_topic(Cat::Spot, "orderbook.200.ETHUSDT"),
            Some((None, 1))
        );
        assert_eq!(parse_topic(Cat::Spot, "allLiquidation.ETHUSDT"), None);
        assert_eq!(parse_topic(Cat::Linear, "orderbook.500.ETHUSDT"), None);
        let a = v(&ack(Cat::Spot, true, "", "c", "7", "subscribe"));
        assert_eq!(a.get("ret_msg").unwrap().as_str(), Some("subscribe"));
        assert!(!pong(Cat::Spot, "c", "1").contains("req_id"));
        let r = v(&account_ratio(0, 1, 1_000_000, 2, 9));
        assert_eq!(
            r.get("result")
                .unwrap()
                .get("list")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let _ = v(&instruments_json(Cat::Linear, 1));
        let _ = v(&instruments_json(Cat::Spot, 1));
    }
}

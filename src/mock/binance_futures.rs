//! Binance USDⓈ-M: the deterministic `/market` streams (`@aggTrade`,
//! `@markPrice@1s`, `@forceOrder`), the futures `@bookTicker` shape, stream
//! routing between `/public` and `/market`, and the REST answers
//! (`exchangeInfo`, `openInterest`, long/short ratios). Symbols are
//! [`SYMBOLS`]; `sym_idx` indexes them.

use std::fmt::Write as _;

use super::book::{mix, push_dec};
use super::chan::Chan;

/// Native symbols (symbol, base, quote); `sym_idx` indexes them.
pub const SYMBOLS: [(&str, &str, &str); 2] =
    [("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT")];

/// Funding settles every 8 hours.
const FUNDING_PERIOD_MS: u64 = 8 * 3_600_000;
/// Long/short ratio statistics come in 5-minute slots.
const SLOT_MS: u64 = 300_000;

fn sym(i: usize) -> &'static str {
    SYMBOLS.get(i).map(|s| s.0).unwrap_or("BTCUSDT")
}

/// Mid price in cents.
fn mid(i: usize) -> i64 {
    if i == 0 {
        3_000_000
    } else {
        200_000
    }
}

/// Event time of item `n`: `time_base + n`.
fn t(n: u64, base: u64) -> u64 {
    base.wrapping_add(n)
}

/// `@aggTrade` event `n` (1-based) of symbol `sym_idx`.
pub fn agg_trade(sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(200);
    write_agg_trade(&mut o, sym_idx, n, base);
    o
}

/// The numbers of `@aggTrade` item `n`, shared by the WS event and the
/// REST `aggTrades` rows so the two cannot diverge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AggNums {
    pub a: u64,
    /// Price in cents.
    pub price: i64,
    /// Quantity in thousandths.
    pub qty: i64,
    pub first: u64,
    pub last: u64,
    pub time: u64,
    pub buyer_maker: bool,
}

pub(crate) fn agg_nums(i: usize, n: u64, base: u64) -> AggNums {
    let f = n.wrapping_mul(10);
    AggNums {
        a: n,
        price: mid(i) + (n.wrapping_mul(7919) % 2000) as i64 - 1000,
        qty: 1 + (n.wrapping_mul(104_729) % 5000) as i64,
        first: f,
        last: f + n % 3,
        time: t(n, base),
        buyer_maker: n % 3 == 0,
    }
}

pub(crate) fn write_agg_trade(o: &mut String, i: usize, n: u64, base: u64) {
    let x = agg_nums(i, n, base);
    let _ = write!(
        o,
        "{{\"e\":\"aggTrade\",\"E\":{},\"s\":\"{}\",\"a\":{},\"p\":\"",
        x.time + 1,
        sym(i),
        x.a
    );
    push_dec(o, x.price, 2);
    o.push_str("\",\"q\":\"");
    push_dec(o, x.qty, 3);
    o.push_str("\",\"nq\":\"");
    push_dec(o, x.qty, 3);
    let _ = write!(
        o,
        "\",\"f\":{},\"l\":{},\"T\":{},\"m\":{}}}",
        x.first, x.last, x.time, x.buyer_maker
    );
}

/// One row of `GET /fapi/v1/aggTrades`.
pub(crate) fn write_agg_trade_rest(o: &mut String, x: &AggNums) {
    let _ = write!(o, "{{\"a\":{},\"p\":\"", x.a);
    push_dec(o, x.price, 2);
    o.push_str("\",\"q\":\"");
    push_dec(o, x.qty, 3);
    let _ = write!(
        o,
        "\",\"f\":{},\"l\":{},\"T\":{},\"m\":{}}}",
        x.first, x.last, x.time, x.buyer_maker
    );
}

/// `@markPrice@1s` `markPriceUpdate` event `n`: `r` funding rate, `T` next
/// funding time (the next 8-hour boundary after `E`).
pub fn mark_price(sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(256);
    write_mark_price(&mut o, sym_idx, n, base);
    o
}

pub(crate) fn write_mark_price(o: &mut String, i: usize, n: u64, base: u64) {
    let e = t(n, base);
    let m = (mid(i) + (n % 401) as i64 - 200) * 1_000_000; // 8 decimals
    let _ = write!(
        o,
        "{{\"e\":\"markPriceUpdate\",\"E\":{},\"s\":\"{}\",\"p\":\"",
        e,
        sym(i)
    );
    push_dec(o, m, 8);
    o.push_str("\",\"ap\":\"");
    push_dec(o, m, 8);
    o.push_str("\",\"i\":\"");
    push_dec(o, m - 950_000_000, 8);
    o.push_str("\",\"P\":\"");
    push_dec(o, m - 900_000_000, 8);
    o.push_str("\",\"r\":\"");
    push_dec(o, funding_rate_e8(i, n), 8);
    let next = (e / FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS;
    let _ = write!(o, "\",\"T\":{next}}}");
}

/// Funding rate of mark-price item `n`, in units of 1e-8 (±0.0001 range).
fn funding_rate_e8(i: usize, n: u64) -> i64 {
    (mix(n ^ ((i as u64) << 40)) % 20_001) as i64 - 10_000
}

/// `@forceOrder` event `n`: `o.S` is the liquidation ORDER side.
pub fn force_order(sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(256);
    write_force_order(&mut o, sym_idx, n, base);
    o
}

pub(crate) fn write_force_order(o: &mut String, i: usize, n: u64, base: u64) {
    let ts = t(n, base);
    let side = if n % 2 == 0 { "BUY" } else { "SELL" };
    let mut q = String::new();
    push_dec(&mut q, 1 + (n.wrapping_mul(31) % 900) as i64, 3);
    let mut p = String::new();
    push_dec(&mut p, mid(i) - 5000 + (n % 97) as i64 * 100, 2);
    let _ = write!(
        o,
        "{{\"e\":\"forceOrder\",\"E\":{},\"o\":{{\"s\":\"{}\",\"S\":\"{side}\",\"o\":\"LIMIT\",\"f\":\"IOC\",\"q\":\"{q}\",\"p\":\"{p}\",\"ap\":\"{p}\",\"X\":\"FILLED\",\"l\":\"{q}\",\"z\":\"{q}\",\"T\":{}}}}}",
        ts + 1,
        sym(i),
        ts
    );
}

/// Futures `@bookTicker` event `n`: with `e`, `E`, `T`, unlike spot.
pub fn book_ticker(sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(200);
    write_book_ticker(&mut o, sym_idx, n, base);
    o
}

pub(crate) fn write_book_ticker(o: &mut String, i: usize, n: u64, base: u64) {
    let ts = t(n, base);
    let tick = if i == 0 { 10 } else { 1 };
    let _ = write!(
        o,
        "{{\"e\":\"bookTicker\",\"u\":{},\"E\":{},\"T\":{},\"s\":\"{}\",\"b\":\"",
        n,
        ts + 1,
        ts,
        sym(i)
    );
    push_dec(o, mid(i) - tick * (1 + (n % 7) as i64), 2);
    o.push_str("\",\"B\":\"");
    push_dec(o, 1 + (n % 113) as i64, 3);
    o.push_str("\",\"a\":\"");
    push_dec(o, mid(i) + tick * (1 + (n % 5) as i64), 2);
    o.push_str("\",\"A\":\"");
    push_dec(o, 1 + (n % 89) as i64, 3);
    o.push_str("\"}");
}

/// Which routed path (`/public` or `/market`) carries a channel.
pub(crate) fn is_public(c: Option<Chan>) -> bool {
    // Book data (depth, None here) and bookTicker are on /public.
    matches!(c, None | Some(Chan::BookTicker))
}

/// Parses a futures stream name into (channel or None for depth, sym_idx).
pub(crate) fn parse_stream(name: &str) -> Option<(Option<Chan>, usize)> {
    let (s, rest) = name.split_once('@')?;
    if s.is_empty() || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let i = SYMBOLS.iter().position(|x| x.0.eq_ignore_ascii_case(s))?;
    let c = match rest {
        "depth@100ms" | "depth" | "depth@500ms" | "depth@250ms" => None,
        "bookTicker" => Some(Chan::BookTicker),
        "aggTrade" => Some(Chan::AggTrade),
        "markPrice@1s" | "markPrice" => Some(Chan::MarkPrice),
        "forceOrder" => Some(Chan::ForceOrder),
        _ => return None,
    };
    Some((c, i))
}

/// `GET /fapi/v1/exchangeInfo`: the perpetuals plus one quarterly contract
/// (so collectors exercise `contractType` filtering).
pub fn exchange_info_json(server_time_ms: u64) -> String {
    let mut o = String::with_capacity(2048);
    let _ = write!(
        o,
        "{{\"timezone\":\"UTC\",\"serverTime\":{server_time_ms},\"rateLimits\":[{{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":2400}}],\"exchangeFilters\":[],\"assets\":[],\"symbols\":["
    );
    let rows: [(&str, &str, &str, &str, &str, &str); 3] = [
        ("BTCUSDT", "BTCUSDT", "PERPETUAL", "BTC", "0.10", "0.001"),
        ("ETHUSDT", "ETHUSDT", "PERPETUAL", "ETH", "0.01", "0.001"),
        (
            "BTCUSDT_261225",
            "BTCUSDT",
            "CURRENT_QUARTER",
            "BTC",
            "0.10",
            "0.001",
        ),
    ];
    for (k, (s, pair, ct, base, tick, step)) in rows.iter().enumerate() {
        if k > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"symbol\":\"{s}\",\"pair\":\"{pair}\",\"contractType\":\"{ct}\",\"deliveryDate\":4133404800000,\"onboardDate\":1569398400000,\"status\":\"TRADING\",\"baseAsset\":\"{base}\",\"quoteAsset\":\"USDT\",\"marginAsset\":\"USDT\",\"pricePrecision\":2,\"quantityPrecision\":3,\"filters\":[{{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"0.10\",\"maxPrice\":\"4529764\",\"tickSize\":\"{tick}\"}},{{\"filterType\":\"LOT_SIZE\",\"minQty\":\"0.001\",\"maxQty\":\"1000\",\"stepSize\":\"{step}\"}}]}}"
        );
    }
    o.push_str("]}");
    o
}

/// `GET /fapi/v1/openInterest?symbol=` answer number `n` (1-based count of
/// such requests for that symbol).
pub fn open_interest(sym_idx: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(100);
    o.push_str("{\"openInterest\":\"");
    push_dec(
        &mut o,
        10_000_000 + (mix(n ^ 0x01 ^ ((sym_idx as u64) << 32)) % 1_000_000) as i64,
        3,
    );
    let _ = write!(
        o,
        "\",\"symbol\":\"{}\",\"time\":{}}}",
        sym(sym_idx),
        t(n, base)
    );
    o
}

/// First 5-minute slot boundary at or after the time base.
fn first_slot(base: u64) -> u64 {
    base.div_ceil(SLOT_MS) * SLOT_MS
}

/// Long share (4 decimals, 0.3000-0.7000) of a statistics slot.
fn long_share_e4(kind: u64, sym_idx: usize, slot_ts: u64) -> i64 {
    3000 + (mix(slot_ts ^ kind ^ ((sym_idx as u64) << 48)) % 4001) as i64
}

fn push_ratio_rows(o: &mut String, kind: u64, i: usize, n: u64, base: u64, limit: usize) {
    // Request n sees slots up to first_slot + (n-1)*5m, oldest first.
    let latest = first_slot(base) + n.saturating_sub(1) * SLOT_MS;
    let limit = limit.clamp(1, 500) as u64;
    o.push('[');
    for k in 0..limit {
        let back = limit - 1 - k;
        let Some(ts) = latest.checked_sub(back * SLOT_MS) else {
            continue;
        };
        if o.len() > 1 {
            o.push(',');
        }
        let long = long_share_e4(kind, i, ts);
        let short = 10_000 - long;
        let ratio = (long * 10_000 + short / 2) / short;
        let _ = write!(o, "{{\"symbol\":\"{}\",\"longShortRatio\":\"", sym(i));
        push_dec(o, ratio, 4);
        o.push_str("\",\"longAccount\":\"");
        push_dec(o, long, 4);
        o.push_str("\",\"shortAccount\":\"");
        push_dec(o, short, 4);
        let _ = write!(o, "\",\"timestamp\":{ts}}}");
    }
    o.push(']');
}

/// `GET /futures/data/topLongShortPositionRatio?symbol=&period=5m&limit=L`
/// answer number `n`: L rows, oldest first, the newest at the 5-minute
/// boundary `ceil5m(base) + (n-1) * 5m`.
pub fn top_long_short_position_ratio(sym_idx: usize, n: u64, base: u64, limit: usize) -> String {
    let mut o = String::with_capacity(160 * limit.min(500));
    push_ratio_rows(&mut o, 0x70_7051, sym_idx, n, base, limit);
    o
}

/// `GET /futures/data/globalLongShortAccountRatio?...` (same rules as
/// [`top_long_short_position_ratio`], different numbers).
pub fn global_long_short_account_ratio(sym_idx: usize, n: u64, base: u64, limit: usize) -> String {
    let mut o = String::with_capacity(160 * limit.min(500));
    push_ratio_rows(&mut o, 0x61_6363, sym_idx, n, base, limit);
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};

    fn v(s: &str) -> sonic_rs::Value {
        sonic_rs::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn shapes_parse_like_the_docs() {
        let a = v(&agg_trade(0, 5, 1000));
        assert_eq!(a.get("e").unwrap().as_str(), Some("aggTrade"));
        assert_eq!(a.get("a").unwrap().as_u64(), Some(5));
        assert_eq!(a.get("T").unwrap().as_u64(), Some(1005));
        let m = v(&mark_price(1, 2, 1000));
        assert_eq!(m.get("e").unwrap().as_str(), Some("markPriceUpdate"));
        assert_eq!(m.get("T").unwrap().as_u64(), Some(FUNDING_PERIOD_MS));
        assert!(m.get("r").unwrap().as_str().unwrap().parse::<f64>().is_ok());
        let f = v(&force_order(0, 1, 0));
        assert_eq!(f.get("o").unwrap().get("S").unwrap().as_str(), Some("SELL"));
        let b = v(&book_ticker(0, 1, 0));
        assert!(b.get("E").is_some() && b.get("T").is_some());
        let e = v(&exchange_info_json(5));
        let syms = e.get("symbols").unwrap();
        assert_eq!(syms.as_array().unwrap().len(), 3);
        assert_eq!(
            syms.as_array().unwrap()[0]
                .get("contractType")
                .unwrap()
                .as_str(),
            Some("PERPETUAL")
        );
        let oi = v(&open_interest(0, 1, 0));
        assert_eq!(oi.get("symbol").unwrap().as_str(), Some("BTCUSDT"));
    }

    #[test]
    fn ratio_rows() {
        let r = top_long_short_position_ratio(0, 1, 1, 1);
        let a = v(&r);
        let a = a.as_array().unwrap();
        assert_eq!(a.len(), 1);
        let row = &a[0];
        assert_eq!(row.get("timestamp").unwrap().as_u64(), Some(SLOT_MS));
        let l: f64 = row
            .get("longAccount")
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let s: f64 = row
            .get("shortAccount")
            .unwrap()
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((l + s - 1.0).abs() < 1e-9);
        // Request 3 with limit 3 ends with the slot request 3 alone sees.
        let three = global_long_short_account_ratio(1, 3, 1, 3);
        let one = global_long_short_account_ratio(1, 3, 1, 1);
        assert!(three.ends_with(&one[1..]));
        assert_ne!(r, global_long_short_account_ratio(0, 1, 1, 1));
    }

    #[test]
    fn routing() {
        assert_eq!(parse_stream("btcusdt@depth@100ms"), Some((None, 0)));
        assert_eq!(
            parse_stream("ethusdt@markPrice@1s"),
            Some((Some(Chan::MarkPrice), 1))
        );
        assert_eq!(parse_stream("BTCUSDT@aggTrade"), None);
        assert_eq!(parse_stream("solusdt@aggTrade"), None);
        assert!(is_public(None) && !is_public(Some(Chan::AggTrade)));
    }
}

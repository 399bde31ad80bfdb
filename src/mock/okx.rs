//! OKX v5 public market data, spot and linear SWAP: the instrument table,
//! deterministic `trades`/`tickers`/`funding-rate`/`open-interest`/
//! `liquidation-orders` pushes, `books` frames (snapshot then updates with
//! `seqId`/`prevSeqId`/`checksum`), the subscribe/unsubscribe/error replies
//! and the REST answers, all in OKX's `{"code":"0","msg":"","data":[..]}`
//! envelope. `inst` arguments index the instrument table: [`INSTRUMENTS`],
//! then the `--okx-extra-pairs` instruments ([`instrument`]).

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::book::{mix, push_dec, side_changes, BookFeed, Side, Update};
use super::chan::Chan;
use crate::model::VenueId;

/// One OKX instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inst {
    pub inst_id: &'static str,
    pub base: &'static str,
    pub quote: &'static str,
    pub swap: bool,
    /// Contract value in base currency (swap only), e.g. "0.01".
    pub ct_val: &'static str,
    /// Decimals of `ct_val` (ct_val = 10^-ct_dp).
    pub ct_dp: u32,
    /// Price decimals (tick = 10^-price_dp).
    pub price_dp: u32,
    /// Mid price in whole quote units.
    pub mid: i64,
}

/// Spot 0-1, SWAP 2-3.
pub const INSTRUMENTS: [Inst; 4] = [
    Inst {
        inst_id: "BTC-USDT",
        base: "BTC",
        quote: "USDT",
        swap: false,
        ct_val: "",
        ct_dp: 0,
        price_dp: 1,
        mid: 30_000,
    },
    Inst {
        inst_id: "ETH-USDT",
        base: "ETH",
        quote: "USDT",
        swap: false,
        ct_val: "",
        ct_dp: 0,
        price_dp: 2,
        mid: 2_000,
    },
    Inst {
        inst_id: "BTC-USDT-SWAP",
        base: "BTC",
        quote: "USDT",
        swap: true,
        ct_val: "0.01",
        ct_dp: 2,
        price_dp: 1,
        mid: 30_000,
    },
    Inst {
        inst_id: "ETH-USDT-SWAP",
        base: "ETH",
        quote: "USDT",
        swap: true,
        ct_val: "0.1",
        ct_dp: 1,
        price_dp: 2,
        mid: 2_000,
    },
];

/// Most extra pairs `--okx-extra-pairs` may add.
pub const MAX_EXTRA_PAIRS: usize = 500;

/// Names of the extra pairs: (base, spot instId, swap instId).
fn extra_names() -> &'static [(String, String, String)] {
    static NAMES: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    NAMES.get_or_init(|| {
        (1..=MAX_EXTRA_PAIRS)
            .map(|j| {
                let base = format!("X{j:03}");
                (
                    base.clone(),
                    format!("{base}-USDT"),
                    format!("{base}-USDT-SWAP"),
                )
            })
            .collect()
    })
}

/// The extra instruments, spot then swap per pair. They never depend on the
/// options (only how many are listed does), so the pure frame functions
/// stay usable without a mock.
fn extras() -> &'static [Inst] {
    static EXTRA: OnceLock<Vec<Inst>> = OnceLock::new();
    EXTRA.get_or_init(|| {
        let mut v = Vec::with_capacity(2 * MAX_EXTRA_PAIRS);
        for (j, (base, spot, swap)) in extra_names().iter().enumerate() {
            for (id, is_swap) in [(spot, false), (swap, true)] {
                v.push(Inst {
                    inst_id: id,
                    base,
                    quote: "USDT",
                    swap: is_swap,
                    ct_val: if is_swap { "1" } else { "" },
                    ct_dp: 0,
                    price_dp: 2,
                    // Trade prices are mid ± 10.00: keep them positive.
                    mid: 20 + j as i64,
                });
            }
        }
        v
    })
}

/// Instrument `k`: the four of [`INSTRUMENTS`], then the extra pairs (spot
/// `X001-USDT` at 4, swap `X001-USDT-SWAP` at 5, `X002-USDT` at 6, ...).
pub fn instrument(k: usize) -> Option<&'static Inst> {
    match k.checked_sub(INSTRUMENTS.len()) {
        None => INSTRUMENTS.get(k),
        Some(j) => extras().get(j),
    }
}

/// How many instruments a mock with `extra_pairs` lists.
pub fn count(extra_pairs: usize) -> usize {
    INSTRUMENTS.len() + 2 * extra_pairs.min(MAX_EXTRA_PAIRS)
}

/// The listed instruments with their table index.
pub fn listed(extra_pairs: usize) -> impl Iterator<Item = (usize, &'static Inst)> {
    (0..count(extra_pairs)).filter_map(|k| instrument(k).map(|i| (k, i)))
}

/// Table index of a listed `instId`.
pub fn position(extra_pairs: usize, inst_id: &str) -> Option<usize> {
    listed(extra_pairs)
        .find(|(_, i)| i.inst_id == inst_id)
        .map(|(k, _)| k)
}

const FUNDING_PERIOD_MS: u64 = 8 * 3_600_000;
const SLOT_MS: u64 = 300_000;

fn inst(i: usize) -> &'static Inst {
    instrument(i).unwrap_or(&INSTRUMENTS[0])
}

fn inst_type(i: &Inst) -> &'static str {
    if i.swap {
        "SWAP"
    } else {
        "SPOT"
    }
}

/// `ts` of item `n` (string ms in frames).
fn ts(n: u64, base: u64) -> u64 {
    base.wrapping_add(n)
}

/// Price of item `n` in units of 10^-price_dp, near the mid.
fn px(i: &Inst, n: u64, salt: u64) -> i64 {
    let unit = 10i64.pow(i.price_dp);
    i.mid * unit + (mix(n ^ salt) % 2001) as i64 - 1000
}

/// Size: spot in base currency (8 decimals), swap in whole contracts.
fn push_sz(o: &mut String, i: &Inst, n: u64) {
    if i.swap {
        push_dec(o, 1 + (n.wrapping_mul(7) % 50) as i64, 0);
    } else {
        push_dec(o, 1 + (n.wrapping_mul(104_729) % 99_999_999) as i64, 8);
    }
}

/// `trades` push number `n` (1-based) of instrument `inst`; `tradeId` = n.
pub fn trade(inst: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(256);
    write_trade(&mut o, inst, n, base);
    o
}

pub(crate) fn write_trade(o: &mut String, k: usize, n: u64, base: u64) {
    let id = inst(k).inst_id;
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"trades\",\"instId\":\"{id}\"}},\"data\":[{{"
    );
    write_trade_core(o, k, n, base);
    let _ = write!(o, ",\"count\":\"1\",\"source\":\"0\",\"seqId\":{n}}}]}}");
}

/// The fields a `trades` push item shares with REST `history-trades` rows
/// (one writer for both so they cannot diverge).
fn write_trade_core(o: &mut String, k: usize, n: u64, base: u64) {
    let i = inst(k);
    let _ = write!(
        o,
        "\"instId\":\"{}\",\"tradeId\":\"{n}\",\"px\":\"",
        i.inst_id
    );
    push_dec(o, px(i, n, 1), i.price_dp);
    o.push_str("\",\"sz\":\"");
    push_sz(o, i, n);
    let _ = write!(
        o,
        "\",\"side\":\"{}\",\"ts\":\"{}\"",
        if n % 3 == 0 { "sell" } else { "buy" },
        ts(n, base)
    );
}

/// One row of `GET /api/v5/market/history-trades`.
pub(crate) fn write_history_trade(o: &mut String, k: usize, n: u64, base: u64) {
    o.push('{');
    write_trade_core(o, k, n, base);
    o.push_str(",\"source\":\"0\"}");
}

/// `tickers` push number `n`.
pub fn ticker(inst: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(512);
    write_ticker(&mut o, inst, n, base);
    o
}

pub(crate) fn write_ticker(o: &mut String, k: usize, n: u64, base: u64) {
    let i = inst(k);
    let dp = i.price_dp;
    let last = px(i, n, 2);
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"tickers\",\"instId\":\"{id}\"}},\"data\":[{{\"instType\":\"{ty}\",\"instId\":\"{id}\",\"last\":\"",
        id = i.inst_id,
        ty = inst_type(i)
    );
    push_dec(o, last, dp);
    o.push_str("\",\"lastSz\":\"");
    push_sz(o, i, n);
    o.push_str("\",\"askPx\":\"");
    push_dec(o, last + 1 + (n % 3) as i64, dp);
    o.push_str("\",\"askSz\":\"");
    push_sz(o, i, n + 1);
    o.push_str("\",\"bidPx\":\"");
    push_dec(o, last - 1 - (n % 4) as i64, dp);
    o.push_str("\",\"bidSz\":\"");
    push_sz(o, i, n + 2);
    let unit = 10i64.pow(dp);
    for (name, v) in [
        ("open24h", i.mid * unit),
        ("high24h", i.mid * unit + 5000),
        ("low24h", i.mid * unit - 5000),
    ] {
        let _ = write!(o, "\",\"{name}\":\"");
        push_dec(o, v, dp);
    }
    let vol = 1_000_000 + n as i64;
    let _ = write!(
        o,
        "\",\"volCcy24h\":\"{vol}\",\"vol24h\":\"{vol}\",\"sodUtc0\":\"",
    );
    push_dec(o, i.mid * unit, dp);
    o.push_str("\",\"sodUtc8\":\"");
    push_dec(o, i.mid * unit, dp);
    let _ = write!(o, "\",\"ts\":\"{}\"}}]}}", ts(n, base));
}

/// `funding-rate` push number `n` (swap instruments): `fundingTime` is the
/// next 8-hour boundary after `ts`, `nextFundingTime` 8 h later.
pub fn funding(inst: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(512);
    write_funding(&mut o, inst, n, base);
    o
}

pub(crate) fn write_funding(o: &mut String, k: usize, n: u64, base: u64) {
    let i = inst(k);
    let t = ts(n, base);
    let ft = (t / FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS;
    let rate = (mix(n ^ 0xf0 ^ ((k as u64) << 40)) % 20_001) as i64 - 10_000; // 1e-8
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"funding-rate\",\"instId\":\"{id}\"}},\"data\":[{{\"formulaType\":\"noRate\",\"fundingRate\":\"",
        id = i.inst_id
    );
    push_dec(o, rate, 8);
    let _ = write!(
        o,
        "\",\"fundingTime\":\"{ft}\",\"impactValue\":\"\",\"instId\":\"{}\",\"instType\":\"SWAP\",\"interestRate\":\"\",\"method\":\"current_period\",\"maxFundingRate\":\"0.00375\",\"minFundingRate\":\"-0.00375\",\"nextFundingRate\":\"\",\"nextFundingTime\":\"{}\",\"premium\":\"",
        i.inst_id,
        ft + FUNDING_PERIOD_MS
    );
    push_dec(o, rate / 2, 8);
    o.push_str("\",\"settFundingRate\":\"");
    push_dec(o, rate - 17, 8);
    let _ = write!(o, "\",\"settState\":\"settled\",\"ts\":\"{t}\"}}]}}");
}

/// `open-interest` push number `n`: `oi` contracts, `oiCcy` = oi × ctVal,
/// `oiUsd` = oiCcy × mid.
pub fn open_interest(inst: usize, n: u64, base: u64) -> String {
    let mut o = String::with_capacity(256);
    write_open_interest(&mut o, inst, n, base);
    o
}

pub(crate) fn write_open_interest(o: &mut String, k: usize, n: u64, base: u64) {
    let i = inst(k);
    let oi = 100_000 + (mix(n ^ 0x01 ^ ((k as u64) << 40)) % 50_000) as i64;
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"open-interest\",\"instId\":\"{id}\"}},\"data\":[{{\"instType\":\"SWAP\",\"instId\":\"{id}\",\"oi\":\"{oi}\",\"oiCcy\":\"",
        id = i.inst_id
    );
    push_dec(o, oi, i.ct_dp);
    o.push_str("\",\"oiUsd\":\"");
    push_dec(o, oi * i.mid, i.ct_dp);
    let _ = write!(o, "\",\"ts\":\"{}\"}}]}}", ts(n, base));
}

/// The SWAP instrument of liquidation push `n`: cycles over the swaps.
pub fn liquidation_inst(n: u64) -> usize {
    2 + (n.saturating_sub(1) % 2) as usize
}

/// `liquidation-orders` (instType SWAP) push number `n`: one detail of
/// [`liquidation_inst`]`(n)`; `sz` in contracts, `posSide` the liquidated
/// position, `side` the liquidation order side (opposite).
pub fn liquidation(n: u64, base: u64) -> String {
    let mut o = String::with_capacity(320);
    write_liquidation(&mut o, n, base);
    o
}

pub(crate) fn write_liquidation(o: &mut String, n: u64, base: u64) {
    let k = liquidation_inst(n);
    let i = inst(k);
    let long = n % 2 == 0;
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"liquidation-orders\",\"instType\":\"SWAP\"}},\"data\":[{{\"details\":[{{\"bkLoss\":\"0\",\"bkPx\":\""
    );
    push_dec(o, px(i, n, 3), i.price_dp);
    let _ = write!(
        o,
        "\",\"ccy\":\"\",\"posSide\":\"{}\",\"side\":\"{}\",\"sz\":\"{}\",\"ts\":\"{}\"}}],\"instFamily\":\"{b}-{q}\",\"instId\":\"{}\",\"instType\":\"SWAP\",\"uly\":\"{b}-{q}\"}}]}}",
        if long { "long" } else { "short" },
        if long { "sell" } else { "buy" },
        1 + n % 40,
        ts(n, base),
        i.inst_id,
        b = i.base,
        q = i.quote
    );
}

/// `["px","sz","0","numOrders"]`; a deleted level has size and orders "0".
fn push_level(o: &mut String, f: &BookFeed, price: i64, qty: u64) {
    o.push_str("[\"");
    push_dec(o, price, f.spec.price_dp);
    o.push_str("\",\"");
    push_dec(o, qty as i64, f.spec.qty_dp);
    let orders = if qty == 0 { 0 } else { 1 + qty % 7 };
    let _ = write!(o, "\",\"0\",\"{orders}\"]");
}

fn push_levels(o: &mut String, f: &BookFeed, levels: &[(i64, u64)]) {
    o.push('[');
    for (k, (p, q)) in levels.iter().enumerate() {
        if k > 0 {
            o.push(',');
        }
        push_level(o, f, *p, *q);
    }
    o.push(']');
}

/// `books` snapshot of the current true book (all levels, up to 400).
pub fn write_books_snapshot(o: &mut String, inst_id: &str, f: &BookFeed) {
    let b = f.book();
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"books\",\"instId\":\"{inst_id}\"}},\"action\":\"snapshot\",\"data\":[{{\"asks\":"
    );
    push_levels(o, f, &b.top(Side::Ask, 400));
    o.push_str(",\"bids\":");
    push_levels(o, f, &b.top(Side::Bid, 400));
    let _ = write!(
        o,
        ",\"ts\":\"{}\",\"checksum\":{},\"prevSeqId\":-1,\"seqId\":{}}}]}}",
        f.ts_of(f.n()),
        f.checksum(),
        f.last_id()
    );
}

/// `books` update frame for update `u`.
pub fn write_books_update(o: &mut String, inst_id: &str, f: &BookFeed, u: &Update) {
    let _ = write!(
        o,
        "{{\"arg\":{{\"channel\":\"books\",\"instId\":\"{inst_id}\"}},\"action\":\"update\",\"data\":[{{\"asks\":"
    );
    push_levels(o, f, &side_changes(&u.changes, Side::Ask));
    o.push_str(",\"bids\":");
    push_levels(o, f, &side_changes(&u.changes, Side::Bid));
    let _ = write!(
        o,
        ",\"ts\":\"{}\",\"checksum\":{},\"prevSeqId\":{},\"seqId\":{}}}]}}",
        u.ts_ms, u.checksum, u.prev_id, u.last_id
    );
}

/// What a subscribe arg names: (venue, channel (None = books), feed index),
/// among the instruments a mock with `extra_pairs` lists.
pub(crate) fn parse_arg(
    channel: &str,
    inst_id: Option<&str>,
    inst_type: Option<&str>,
    extra_pairs: usize,
) -> Option<(VenueId, Option<Chan>, usize)> {
    if channel == "liquidation-orders" {
        return (inst_type == Some("SWAP")).then_some((
            VenueId::OkxDerivatives,
            Some(Chan::Liquidation),
            0,
        ));
    }
    let k = position(extra_pairs, inst_id?)?;
    let swap = inst(k).swap;
    let c = match channel {
        "trades" => Some(Chan::Trade),
        "tickers" => Some(Chan::Ticker),
        "books" => None,
        "funding-rate" if swap => Some(Chan::Funding),
        "open-interest" if swap => Some(Chan::OpenInterest),
        _ => return None,
    };
    let v = if swap {
        VenueId::OkxDerivatives
    } else {
        VenueId::OkxSpot
    };
    Some((v, c, k))
}

/// `GET /api/v5/public/instruments?instType=SPOT|SWAP` body of the four
/// default instruments.
pub fn instruments_json(swap: bool) -> String {
    instruments_json_with(swap, 0)
}

/// The same, listing `extra_pairs` more pairs.
pub fn instruments_json_with(swap: bool, extra_pairs: usize) -> String {
    let mut o = String::from("{\"code\":\"0\",\"msg\":\"\",\"data\":[");
    let mut first = true;
    for (_, i) in listed(extra_pairs).filter(|(_, i)| i.swap == swap) {
        if !first {
            o.push(',');
        }
        first = false;
        let tick = {
            let mut s = String::new();
            push_dec(&mut s, 1, i.price_dp);
            s
        };
        if swap {
            let _ = write!(
                o,
                "{{\"instType\":\"SWAP\",\"instId\":\"{}\",\"instFamily\":\"{b}-{q}\",\"uly\":\"{b}-{q}\",\"baseCcy\":\"\",\"quoteCcy\":\"\",\"settleCcy\":\"{q}\",\"ctVal\":\"{}\",\"ctMult\":\"1\",\"ctValCcy\":\"{b}\",\"ctType\":\"linear\",\"tickSz\":\"{tick}\",\"lotSz\":\"1\",\"minSz\":\"1\",\"state\":\"live\",\"listTime\":\"1606468572000\"}}",
                i.inst_id,
                i.ct_val,
                b = i.base,
                q = i.quote
            );
        } else {
            let _ = write!(
                o,
                "{{\"instType\":\"SPOT\",\"instId\":\"{}\",\"instFamily\":\"\",\"uly\":\"\",\"baseCcy\":\"{}\",\"quoteCcy\":\"{}\",\"settleCcy\":\"\",\"ctVal\":\"\",\"ctMult\":\"\",\"ctValCcy\":\"\",\"ctType\":\"\",\"tickSz\":\"{tick}\",\"lotSz\":\"0.00000001\",\"minSz\":\"0.00001\",\"state\":\"live\",\"listTime\":\"1606468572000\"}}",
                i.inst_id, i.base, i.quote
            );
        }
    }
    o.push_str("]}");
    o
}

/// `GET /api/v5/market/books?instId=&sz=` body from a (possibly older) book.
pub fn books_rest_json(
    f: &BookFeed,
    n: u64,
    id: u64,
    book: &super::book::Book,
    sz: usize,
) -> String {
    let mut o = String::from("{\"code\":\"0\",\"msg\":\"\",\"data\":[{\"asks\":");
    push_levels(&mut o, f, &book.top(Side::Ask, sz));
    o.push_str(",\"bids\":");
    push_levels(&mut o, f, &book.top(Side::Bid, sz));
    let _ = write!(o, ",\"ts\":\"{}\",\"seqId\":{id}}}]}}", f.ts_of(n));
    o
}

fn ratio_rows(o: &mut String, salt: u64, n: u64, base: u64, limit: usize) {
    let latest = base.div_ceil(SLOT_MS) * SLOT_MS + n.saturating_sub(1) * SLOT_MS;
    o.push_str("{\"code\":\"0\",\"msg\":\"\",\"data\":[");
    for k in 0..limit.clamp(1, 100) as u64 {
        let Some(t) = latest.checked_sub(k * SLOT_MS) else {
            break;
        };
        if k > 0 {
            o.push(',');
        }
        let r = 5000 + (mix(t ^ salt) % 20_000) as i64; // 0.5 - 2.5, 4 decimals
        let _ = write!(o, "[\"{t}\",\"");
        push_dec(o, r, 4);
        o.push_str("\"]");
    }
    o.push_str("]}");
}

/// `GET /api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=&period=5m`
/// answer number `n` (per ccy): `limit` rows `["ts","ratio"]`, newest first,
/// the newest at `ceil5m(base) + (n-1) * 5m`. `ccy_idx`: 0 BTC, 1 ETH.
pub fn long_short_account_ratio(ccy_idx: usize, n: u64, base: u64, limit: usize) -> String {
    let mut o = String::with_capacity(40 * limit.min(100) + 40);
    ratio_rows(&mut o, 0xacc0 + ccy_idx as u64, n, base, limit);
    o
}

/// `GET /api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader?instId=&period=5m`
/// answer number `n` (per instId; `inst` indexes [`INSTRUMENTS`]), same shape.
pub fn top_trader_position_ratio(inst: usize, n: u64, base: u64, limit: usize) -> String {
    let mut o = String::with_capacity(40 * limit.min(100) + 40);
    ratio_rows(&mut o, 0x7070 + inst as u64, n, base, limit);
    o
}

/// OKX REST error envelope.
pub fn rest_error(code: &str, msg: &str) -> String {
    format!("{{\"code\":\"{code}\",\"msg\":\"{msg}\",\"data\":[]}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::book::okx_checksum;
    use crate::mock::venues::book_spec;
    use crate::mock::MockOptions;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};

    fn v(s: &str) -> sonic_rs::Value {
        sonic_rs::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn pushes_parse_with_the_doc_fields() {
        let t = v(&trade(0, 7, 1000));
        let d = &t.get("data").unwrap().as_array().unwrap()[0];
        assert_eq!(d.get("tradeId").unwrap().as_str(), Some("7"));
        assert_eq!(d.get("ts").unwrap().as_str(), Some("1007"));
        let s = v(&trade(2, 7, 1000));
        let d = &s.get("data").unwrap().as_array().unwrap()[0];
        assert!(
            d.get("sz")
                .unwrap()
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok(),
            "contracts"
        );
        for f in [
            ticker(0, 1, 0),
            funding(2, 1, 0),
            open_interest(3, 1, 0),
            liquidation(1, 0),
        ] {
            let x = v(&f);
            assert!(
                x.get("arg").is_some() && x.get("data").unwrap().is_array(),
                "{f}"
            );
        }
        let l = v(&liquidation(2, 0));
        let d = &l.get("data").unwrap().as_array().unwrap()[0];
        assert_eq!(d.get("instId").unwrap().as_str(), Some("ETH-USDT-SWAP"));
        let det = &d.get("details").unwrap().as_array().unwrap()[0];
        assert_eq!(det.get("posSide").unwrap().as_str(), Some("long"));
        assert_eq!(det.get("side").unwrap().as_str(), Some("sell"));
        let oi = open_interest(2, 1, 0);
        assert!(oi.contains("\"oiCcy\":\""));
        let i = v(&instruments_json(true));
        let d = &i.get("data").unwrap().as_array().unwrap()[0];
        assert_eq!(d.get("ctVal").unwrap().as_str(), Some("0.01"));
        assert_eq!(d.get("instFamily").unwrap().as_str(), Some("BTC-USDT"));
        let r = v(&long_short_account_ratio(0, 2, 1, 3));
        let rows = r.get("data").unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        let t0: u64 = rows[0].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let t1: u64 = rows[1].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!((t0, t0 - t1), (2 * SLOT_MS, SLOT_MS));
    }

    #[test]
    fn books_frames_chain_and_checksum() {
        let o = MockOptions::default();
        let mut f = BookFeed::new(book_spec(&o, VenueId::OkxSpot, 0, "BTC-USDT"), 0, 0, 0);
        let mut s = String::new();
        write_books_snapshot(&mut s, "BTC-USDT", &f);
        let snap = v(&s);
        let d = &snap.get("data").unwrap().as_array().unwrap()[0];
        assert_eq!(d.get("prevSeqId").unwrap().as_i64(), Some(-1));
        let mut last = d.get("seqId").unwrap().as_u64().unwrap();
        let strs = |x: &sonic_rs::Value, k: &str| -> Vec<(String, String)> {
            x.get(k)
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let l = l.as_array().unwrap();
                    (
                        l[0].as_str().unwrap().to_string(),
                        l[1].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        assert_eq!(
            okx_checksum(&strs(d, "bids")[..25], &strs(d, "asks")[..25]),
            d.get("checksum").unwrap().as_i64().unwrap() as i32
        );
        f.advance_to(5);
        for n in 1..=5 {
            let mut s = String::new();
            write_books_update(&mut s, "BTC-USDT", &f, f.update(n).unwrap());
            let x = v(&s);
            let d = &x.get("data").unwrap().as_array().unwrap()[0];
            assert_eq!(d.get("prevSeqId").unwrap().as_u64(), Some(last));
            last = d.get("seqId").unwrap().as_u64().unwrap();
            assert_eq!(x.get("action").unwrap().as_str(), Some("update"));
        }
    }

    #[test]
    fn extra_pairs_are_listed_and_streamed() {
        let ids = |swap: bool, extra: usize| -> Vec<String> {
            let x = v(&instruments_json_with(swap, extra));
            x.get("data")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.get("instId").unwrap().as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(false, 0), ["BTC-USDT", "ETH-USDT"]);
        assert_eq!(
            ids(false, 2),
            ["BTC-USDT", "ETH-USDT", "X001-USDT", "X002-USDT"]
        );
        assert_eq!(ids(true, 1)[2], "X001-USDT-SWAP");
        assert_eq!(count(MAX_EXTRA_PAIRS + 7), 4 + 2 * MAX_EXTRA_PAIRS);
        assert_eq!(position(3, "X003-USDT-SWAP"), Some(9));
        assert_eq!(position(2, "X003-USDT"), None);
        // Extra instruments stream like the others, prices positive.
        let t = v(&trade(position(500, "X500-USDT").unwrap(), 1000, 0));
        let d = &t.get("data").unwrap().as_array().unwrap()[0];
        assert_eq!(d.get("instId").unwrap().as_str(), Some("X500-USDT"));
        let min = (0..3000)
            .map(|n| {
                let t = v(&trade(4, n, 0));
                let px = t.get("data").unwrap().as_array().unwrap()[0]
                    .get("px")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap();
                px
            })
            .fold(f64::MAX, f64::min);
        assert!(min > 0.0, "{min}");
    }

    #[test]
    fn arg_parsing() {
        assert_eq!(
            parse_arg("books", Some("ETH-USDT"), None, 0),
            Some((VenueId::OkxSpot, None, 1))
        );
        assert_eq!(
            parse_arg("funding-rate", Some("BTC-USDT-SWAP"), None, 0),
            Some((VenueId::OkxDerivatives, Some(Chan::Funding), 2))
        );
        assert_eq!(parse_arg("funding-rate", Some("BTC-USDT"), None, 0), None);
        assert_eq!(parse_arg("trades", Some("NOPE"), None, 0), None);
        assert!(parse_arg("liquidation-orders", None, Some("SWAP"), 0).is_some());
        assert_eq!(parse_arg("liquidation-orders", None, Some("SPOT"), 0), None);
        // Extra pairs exist only when listed.
        assert_eq!(parse_arg("books", Some("X002-USDT"), None, 1), None);
        assert_eq!(
            parse_arg("books", Some("X002-USDT-SWAP"), None, 2),
            Some((VenueId::OkxDerivatives, None, 7))
        );
    }
}

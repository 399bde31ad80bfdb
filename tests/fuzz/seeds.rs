//! The seed corpus: every documented frame in tests/fixtures, a sample of
//! each frame kind of the real captures (tests/fixtures/captures), control frames, and
//! REST bodies; plus the instrument maps that make them parse (every symbol
//! the seeds name is listed, so mutations reach past the symbol lookup).

use super::json::{self, J};
use crate::common::fixtures::capture;
pub use crate::common::fixtures::fixture;
use marketprism::model::{DataType, DataTypeSet, VenueId};
use marketprism::venue::InstrumentMap;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

pub struct Seed {
    pub name: String,
    pub text: String,
    /// `None`: not JSON (OKX `pong`): text mutations only.
    pub tree: Option<J>,
}

impl Seed {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Seed {
        let text = text.into();
        Seed {
            name: name.into(),
            tree: json::parse(&text),
            text,
        }
    }
}

/// What a venue's frames and bodies are made of, for mutations to reuse.
#[derive(Default)]
pub struct Dict {
    pub keys: Vec<String>,
    pub strings: Vec<String>,
    pub numbers: Vec<String>,
}

impl Dict {
    pub fn from_seeds<'a>(seeds: impl Iterator<Item = &'a Seed>) -> Dict {
        let (mut k, mut s, mut n) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for seed in seeds {
            let Some(t) = &seed.tree else { continue };
            json::walk(t, None, &mut |key, v| {
                if let Some(key) = key {
                    k.insert(key.to_string());
                }
                match v {
                    J::Str(x) if x.len() <= 64 => {
                        s.insert(x.clone());
                    }
                    J::Num(x) => {
                        n.insert(x.clone());
                    }
                    _ => {}
                }
            });
        }
        Dict {
            keys: k.into_iter().collect(),
            strings: s.into_iter().collect(),
            numbers: n.into_iter().collect(),
        }
    }
}

/// Up to `per_kind` received frames of each kind (stream / channel / method)
/// of a `.ws` capture, spread over the session.
fn capture_frames(name: &str, per_kind: usize) -> Vec<Seed> {
    let text = capture(name);
    let mut by_kind: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        if line.contains(" <- ") {
            continue;
        }
        let Some((_, frame)) = line.split_once(": ") else {
            continue;
        };
        let Some(tree) = json::parse(frame) else {
            continue;
        };
        by_kind.entry(kind(&tree)).or_default().push(frame);
    }
    let mut out = Vec::new();
    for (k, frames) in by_kind {
        let step = (frames.len() / per_kind).max(1);
        for (i, f) in frames.iter().step_by(step).take(per_kind).enumerate() {
            out.push(Seed::new(format!("{name}:{k}#{i}"), *f));
        }
    }
    out
}

/// A frame's kind for sampling: the stream suffix, channel(+action) or method.
fn kind(t: &J) -> String {
    let mut parts = Vec::new();
    if let J::Obj(o) = t {
        for (k, v) in o {
            match (k.as_str(), v) {
                ("stream", J::Str(s)) => parts.push(s.split_once('@').map_or(s.as_str(), |x| x.1)),
                ("action" | "method" | "event", J::Str(s)) => parts.push(s),
                ("arg" | "params", J::Obj(a)) => {
                    for (k2, v2) in a {
                        if let ("channel", J::Str(c)) = (k2.as_str(), v2) {
                            parts.push(c.split('.').next().unwrap_or(c));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    parts.join("/")
}

fn combined(stream: &str, payload: &str) -> String {
    format!(r#"{{"stream":"{stream}","data":{payload}}}"#)
}

const BINANCE_CONTROL: [&str; 5] = [
    r#"{"result":null,"id":1}"#,
    r#"{"result":["btcusdt@trade"],"id":"abc"}"#,
    r#"{"code":2,"msg":"Invalid request: too many parameters"}"#,
    r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#,
    r#"{"e":"serverShutdown","E":1770123456789}"#,
];

/// The WebSocket seed frames of a venue.
pub fn ws_seeds(venue: VenueId) -> Vec<Seed> {
    let mut s = Vec::new();
    let fx = |dir: &str, name: &str| {
        let text = fixture(dir, name);
        if name.ends_with(".jsonl") {
            text.lines()
                .enumerate()
                .map(|(i, l)| Seed::new(format!("{dir}/{name}:{i}"), l))
                .collect::<Vec<_>>()
        } else {
            vec![Seed::new(format!("{dir}/{name}"), text)]
        }
    };
    match venue {
        VenueId::BinanceSpot | VenueId::BinanceDerivatives => {
            let spot = venue == VenueId::BinanceSpot;
            let streams: &[(&str, &str)] = if spot {
                &[
                    ("bnbbtc@trade", "spot_trade.json"),
                    ("bnbbtc@aggTrade", "spot_agg_trade.json"),
                    ("bnbbtc@depth@100ms", "spot_depth_update.json"),
                    ("bnbusdt@bookTicker", "spot_book_ticker.json"),
                ]
            } else {
                &[
                    ("btcusdt@aggTrade", "futures_agg_trade.json"),
                    ("btcusdt@depth@100ms", "futures_depth_update.json"),
                    ("bnbusdt@bookTicker", "futures_book_ticker.json"),
                    ("btcusdt@markPrice@1s", "futures_mark_price.json"),
                    ("btcusdt@forceOrder", "futures_force_order.json"),
                ]
            };
            for (stream, name) in streams {
                let payload = fixture("binance", name);
                s.push(Seed::new(
                    format!("binance/{name}"),
                    combined(stream, &payload),
                ));
            }
            s.extend(fx("binance", "spot_server_shutdown.json"));
            for (i, c) in BINANCE_CONTROL.iter().enumerate() {
                s.push(Seed::new(format!("binance control {i}"), *c));
            }
            s.extend(capture_frames(
                if spot {
                    "BINANCE.ws.1.0"
                } else {
                    "BINANCE_FUTURES.ws.1.0"
                },
                6,
            ));
        }
        VenueId::OkxSpot | VenueId::OkxDerivatives => {
            for name in [
                "trades.json",
                "tickers.json",
                "books_snapshot.json",
                "books_update.json",
                "funding_rate.json",
                "open_interest.json",
                "liquidation_orders.json",
                "mark_price.json",
                "bbo_tbt.json",
                "books5.json",
                "subscribe_ack.json",
                "unsubscribe_ack.json",
                "error_60012.json",
                "error_60018_observed.json",
                "notice_64008.json",
            ] {
                s.extend(fx("okx", name));
            }
            s.push(Seed::new("okx pong", "pong"));
            s.extend(capture_frames("OKX.ws.1.0", 6));
        }
        VenueId::DeribitDerivatives => {
            for name in [
                "book_snapshot.json",
                "book_change.json",
                "trades.json",
                "ticker.json",
                "volatility_index.json",
                "control.jsonl",
                "error.json",
                "test_request.json",
            ] {
                s.extend(fx("deribit", name));
            }
            s.extend(capture_frames("DERIBIT.ws.1.0", 6));
        }
        VenueId::BybitSpot | VenueId::BybitLinear => {
            for name in [
                "trade.json",
                "book_snapshot.json",
                "book_delta.json",
                "tickers_linear_snapshot.json",
                "tickers_linear_delta.json",
                "tickers_spot_snapshot.json",
                "liquidation.json",
                "control.jsonl",
                "control_error.jsonl",
            ] {
                s.extend(fx("bybit", name));
            }
        }
    }
    s
}

/// Where a REST body goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestKind {
    /// `parse_book_snapshot` of this raw symbol.
    Snapshot(&'static str),
    /// `parse_poll` of this data type and raw symbol.
    Poll(DataType, &'static str),
    Instruments,
}

pub struct RestSeed {
    pub venue: VenueId,
    pub kind: RestKind,
    pub seed: Seed,
}

/// The first REST answer of a capture whose URL contains `url_part`, with
/// every array cut to `keep` elements (the real shape, at fuzzing speed);
/// objects with `prefer` (key, value) go first, so a list keeps some
/// entries the parser collects.
fn capture_body(name: &str, url_part: &str, keep: usize, prefer: Option<(&str, &str)>) -> String {
    let text = capture(name);
    let body = text
        .lines()
        .find(|l| l.contains(url_part))
        .and_then(|l| l.split_once(" -> ")?.1.split_once(": "))
        .unwrap_or_else(|| panic!("capture {name}: no answer for {url_part}"))
        .1;
    let mut tree =
        json::parse(body).unwrap_or_else(|| panic!("capture {name}: {url_part} is not JSON"));
    trim_arrays(&mut tree, keep, prefer);
    json::to_string(&tree)
}

fn trim_arrays(j: &mut J, keep: usize, prefer: Option<(&str, &str)>) {
    let has = |e: &J| match (e, prefer) {
        (J::Obj(o), Some((k, v))) => o.iter().any(|(k2, v2)| k2 == k && *v2 == J::Str(v.into())),
        _ => false,
    };
    match j {
        J::Arr(a) => {
            // Two preferred entries, then the list's own order.
            let mut picked: Vec<J> = a.iter().filter(|e| has(e)).take(2).cloned().collect();
            picked.extend(a.iter().filter(|e| !has(e)).cloned());
            picked.truncate(keep);
            *a = picked;
            a.iter_mut().for_each(|v| trim_arrays(v, keep, prefer));
        }
        J::Obj(o) => o.iter_mut().for_each(|(_, v)| trim_arrays(v, keep, prefer)),
        _ => {}
    }
}

pub fn rest_seeds() -> Vec<RestSeed> {
    use DataType::*;
    use RestKind::*;
    use VenueId::*;
    let mut out = Vec::new();
    let mut add = |venue, kind, name: &str, text: String| {
        out.push(RestSeed {
            venue,
            kind,
            seed: Seed::new(name, text),
        })
    };
    let bin = |n: &str| fixture("binance", n);
    add(
        BinanceSpot,
        Snapshot("BNBBTC"),
        "spot depth",
        bin("spot_depth_snapshot.json"),
    );
    add(
        BinanceSpot,
        Snapshot("BNBBTC"),
        "binance error",
        bin("error_invalid_symbol.json"),
    );
    let fut_depth = bin("futures_depth_snapshot.json");
    add(
        BinanceDerivatives,
        Snapshot("BTCUSDT"),
        "futures depth",
        fut_depth,
    );
    let b = capture_body("BINANCE.http.0.0", "/api/v3/depth", 60, None);
    add(BinanceSpot, Snapshot("NKNUSDT"), "captured spot depth", b);
    let b = capture_body("BINANCE_FUTURES.http.0.0", "/fapi/v1/depth", 60, None);
    add(
        BinanceDerivatives,
        Snapshot("SUSHIUSDT"),
        "captured futures depth",
        b,
    );
    let oi = Poll(OpenInterest, "BTCUSDT");
    add(
        BinanceDerivatives,
        oi,
        "open interest",
        bin("futures_open_interest.json"),
    );
    add(
        BinanceDerivatives,
        oi,
        "oi error",
        bin("error_invalid_symbol.json"),
    );
    let top = bin("futures_lsr_top_position.json");
    add(
        BinanceDerivatives,
        Poll(LsrTopPosition, "BTCUSDT"),
        "lsr top",
        top,
    );
    let all = bin("futures_lsr_all_account.json");
    add(
        BinanceDerivatives,
        Poll(LsrAllAccount, "BTCUSDT"),
        "lsr all",
        all,
    );
    add(
        BinanceDerivatives,
        Poll(LsrAllAccount, "BTCUSDT"),
        "lsr error",
        bin("error_invalid_symbol.json"),
    );
    let okx = |n: &str| fixture("okx", n);
    add(
        OkxSpot,
        Snapshot("BTC-USDT"),
        "okx rest books",
        okx("rest_books.json"),
    );
    add(
        OkxDerivatives,
        Snapshot("BTC-USDT-SWAP"),
        "okx rest books",
        okx("rest_books.json"),
    );
    let acc = okx("lsr_account_ratio.json");
    add(
        OkxDerivatives,
        Poll(LsrAllAccount, "BTC-USDT-SWAP"),
        "okx lsr account",
        acc,
    );
    let top = okx("lsr_top_position_ratio.json");
    add(
        OkxDerivatives,
        Poll(LsrTopPosition, "BTC-USDT-SWAP"),
        "okx lsr top",
        top,
    );
    let ratio = fixture("bybit", "account_ratio.json");
    add(
        BybitLinear,
        Poll(LsrAllAccount, "BTCUSDT"),
        "bybit account ratio",
        ratio,
    );
    let spot = fixture("bybit", "instruments_spot.json");
    add(BybitSpot, Instruments, "bybit instruments spot", spot);
    let linear = fixture("bybit", "instruments_linear.json");
    add(BybitLinear, Instruments, "bybit instruments linear", linear);
    // Instrument lists: the documented shape inline, the recorded answer cut short.
    add(
        BinanceSpot,
        Instruments,
        "exchangeInfo",
        EXCHANGE_INFO.to_string(),
    );
    add(
        BinanceDerivatives,
        Instruments,
        "futures exchangeInfo",
        FUTURES_INFO.to_string(),
    );
    add(
        OkxSpot,
        Instruments,
        "okx instruments",
        OKX_SPOT_INSTRUMENTS.to_string(),
    );
    add(
        OkxDerivatives,
        Instruments,
        "okx swaps",
        OKX_SWAP_INSTRUMENTS.to_string(),
    );
    add(
        DeribitDerivatives,
        Instruments,
        "deribit instruments",
        DERIBIT_INSTRUMENTS.to_string(),
    );
    for (venue, file, url, prefer) in [
        (BinanceSpot, "BINANCE.0", "exchangeInfo", None),
        (
            BinanceDerivatives,
            "BINANCE_FUTURES.0",
            "exchangeInfo",
            Some(("contractType", "PERPETUAL")),
        ),
        (OkxSpot, "OKX.0", "instType=SPOT", None),
        (
            OkxDerivatives,
            "OKX.0",
            "instType=SWAP",
            Some(("ctType", "linear")),
        ),
        (
            DeribitDerivatives,
            "DERIBIT.0",
            "get_instruments",
            Some(("settlement_period", "perpetual")),
        ),
    ] {
        let b = capture_body(file, url, 4, prefer);
        add(venue, Instruments, &format!("captured {file} {url}"), b);
    }
    out
}

const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","serverTime":1633998511098,"symbols":[{"symbol":"BNBBTC","status":"TRADING","baseAsset":"BNB","quoteAsset":"BTC","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.000001"}]},{"symbol":"BTCUSDT","status":"BREAK","baseAsset":"BTC","quoteAsset":"USDT"}]}"#;
const FUTURES_INFO: &str = r#"{"futuresType":"U_MARGINED","symbols":[{"symbol":"BTCUSDT","status":"TRADING","contractType":"PERPETUAL","baseAsset":"BTC","quoteAsset":"USDT"},{"symbol":"BTCUSDT_210924","status":"TRADING","contractType":"CURRENT_QUARTER","baseAsset":"BTC","quoteAsset":"USDT"}]}"#;
const OKX_SPOT_INSTRUMENTS: &str = r#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT","instType":"SPOT","baseCcy":"BTC","quoteCcy":"USDT","state":"live","ctVal":""}]}"#;
const OKX_SWAP_INSTRUMENTS: &str = r#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","instFamily":"BTC-USDT","uly":"BTC-USDT","ctType":"linear","ctVal":"0.01","ctValCcy":"BTC","state":"live"},{"instId":"BTC-USD-SWAP","instType":"SWAP","instFamily":"BTC-USD","ctType":"inverse","ctVal":"100","ctValCcy":"USD","state":"live"}]}"#;
const DERIBIT_INSTRUMENTS: &str = r#"{"jsonrpc":"2.0","result":[{"instrument_name":"BTC-PERPETUAL","base_currency":"BTC","quote_currency":"USD","settlement_period":"perpetual","is_active":true,"kind":"future"},{"instrument_name":"BTC-24SEP21","base_currency":"BTC","quote_currency":"USD","settlement_period":"month","is_active":true}],"usIn":1,"usOut":2}"#;

/// Every symbol the seeds name, listed (and wanted for every data type) so
/// parsing goes past the symbol lookup.
pub fn instruments(venue: VenueId, seeds: &[Seed]) -> InstrumentMap {
    let mut names = std::collections::BTreeSet::new();
    for s in seeds {
        let Some(t) = &s.tree else { continue };
        json::walk(t, None, &mut |key, v| match (key, v) {
            (Some("s" | "instId" | "instrument_name" | "symbol"), J::Str(x)) => {
                names.insert(x.clone());
            }
            (Some("topic" | "channel"), J::Str(x)) => {
                // `publicTrade.BTCUSDT`, `book.BTC-PERPETUAL.100ms`
                if let Some(sym) = x.split('.').nth(1).filter(|_| !x.starts_with("orderbook")) {
                    names.insert(sym.to_string());
                }
                if let Some(sym) = x
                    .strip_prefix("orderbook.")
                    .and_then(|r| r.split('.').nth(1))
                {
                    names.insert(sym.to_string());
                }
            }
            _ => {}
        });
    }
    // What the REST seeds and book targets name.
    for n in [
        "BTCUSDT",
        "BNBBTC",
        "NKNUSDT",
        "SUSHIUSDT",
        "BTC-USDT",
        "BTC-USDT-SWAP",
        "BTC-PERPETUAL",
    ] {
        names.insert(n.to_string());
    }
    let mut map = InstrumentMap::default();
    for n in &names {
        if n.is_empty() || n.len() > 40 {
            continue;
        }
        let (base, quote) = split_symbol(venue, n);
        let contract =
            (venue == VenueId::OkxDerivatives && n.ends_with("-SWAP")).then(|| Decimal::new(1, 2));
        map.insert_contract(n, &base, &quote, true, contract);
        map.set_wanted(n, DataTypeSet::all());
    }
    map
}

fn split_symbol(venue: VenueId, n: &str) -> (String, String) {
    if venue == VenueId::DeribitDerivatives {
        // `BTC-PERPETUAL` and options count in USD; `BTC_USDC-PERPETUAL` in USDC.
        let head = n.split('-').next().unwrap_or(n);
        return match head.split_once('_') {
            Some((b, q)) => (b.to_string(), q.to_string()),
            None => (head.to_string(), "USD".to_string()),
        };
    }
    if let Some((b, rest)) = n.split_once('-') {
        let q = rest.split('-').next().unwrap_or(rest);
        return (b.to_string(), q.to_string());
    }
    for q in ["USDT", "USDC", "BUSD", "BTC", "ETH", "EUR", "BNB"] {
        if let Some(b) = n.strip_suffix(q).filter(|b| !b.is_empty()) {
            return (b.to_string(), q.to_string());
        }
    }
    (n.to_string(), "X".to_string())
}

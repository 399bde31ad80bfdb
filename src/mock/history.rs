//! Trade history REST endpoints for the collector's gap backfill: Binance
//! spot `historicalTrades`, USDⓈ-M `aggTrades`, OKX `history-trades`,
//! Deribit `get_last_trades_by_instrument`, Bybit `recent-trade`. Each
//! serves only items its market has already produced, formatted from the
//! same per-item numbers as the venue's WebSocket trade writer.

use std::fmt::Write as _;

use super::binance;
use super::bybit::{self, Cat};
use super::reply::{
    binance_err, futures_weight, param, reply, spot_weight, Reply, BINANCE_INVALID_SYMBOL,
    BINANCE_MISSING_SYMBOL,
};
use super::venues::{self, Chan};
use super::{binance_futures, deribit, okx, Shared};
use crate::model::VenueId;

/// Parses an optional unsigned parameter; `Err(())` when present but bad.
fn opt_u64(q: &[(String, String)], k: &str) -> Result<Option<u64>, ()> {
    match param(q, k) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| ()),
    }
}

fn binance_illegal(k: &str, headers: Vec<(&'static str, String)>) -> Reply {
    binance_err(
        &format!(
            "{{\"code\":-1100,\"msg\":\"Illegal characters found in parameter '{k}'; legal range is '^[0-9]{{1,20}}$'.\"}}"
        ),
        headers,
    )
}

/// Binance `limit` (default `d`, clamped to `max`) and `fromId`.
fn binance_paging(
    q: &[(String, String)],
    d: u64,
    max: u64,
    headers: &[(&'static str, String)],
) -> Result<(u64, Option<u64>), Reply> {
    let limit = match opt_u64(q, "limit") {
        Ok(None) => d,
        Ok(Some(n)) if n >= 1 => n.min(max),
        _ => return Err(binance_illegal("limit", headers.to_vec())),
    };
    let from = opt_u64(q, "fromId").map_err(|_| binance_illegal("fromId", headers.to_vec()))?;
    Ok((limit, from))
}

/// Ascending ids for Binance paging: `from..` or the latest `limit`, never
/// past `produced`.
fn ascending(from: Option<u64>, limit: u64, produced: u64) -> std::ops::RangeInclusive<u64> {
    match from {
        Some(f) => {
            let lo = f.max(1);
            lo..=produced.min(lo.saturating_add(limit - 1))
        }
        None => (produced.saturating_sub(limit) + 1)..=produced,
    }
}

/// `GET /api/v3/historicalTrades?symbol=&fromId=&limit=` (weight 25).
pub(crate) fn binance_spot(shared: &Shared, q: &[(String, String)]) -> Reply {
    let headers = spot_weight(shared, 25);
    let (limit, from) = match binance_paging(q, 500, 1000, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(sym) = param(q, "symbol").filter(|s| !s.is_empty()) else {
        return binance_err(BINANCE_MISSING_SYMBOL, headers);
    };
    let Some(i) = shared.opts.symbols.iter().position(|s| s.symbol == sym) else {
        return binance_err(BINANCE_INVALID_SYMBOL, headers);
    };
    let base = shared.opts.time_base_ms;
    let mut b = Vec::with_capacity(160 * limit as usize + 2);
    b.push(b'[');
    for id in ascending(from, limit, shared.market.produced(i)) {
        if b.len() > 1 {
            b.push(b',');
        }
        binance::write_historical_trade(&mut b, &binance::trade_nums(i, id, base));
    }
    b.push(b']');
    Reply {
        status: 200,
        body: String::from_utf8(b).unwrap_or_default(),
        headers,
    }
}

/// `GET /fapi/v1/aggTrades?symbol=&fromId=&limit=` (weight 20).
pub(crate) fn binance_futures(shared: &Shared, q: &[(String, String)]) -> Reply {
    let headers = futures_weight(shared, 20);
    let (limit, from) = match binance_paging(q, 500, 1000, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(sym) = param(q, "symbol").filter(|s| !s.is_empty()) else {
        return binance_err(BINANCE_MISSING_SYMBOL, headers);
    };
    let Some(i) = venues::find(&shared.opts, VenueId::BinanceDerivatives, &sym) else {
        return binance_err(BINANCE_INVALID_SYMBOL, headers);
    };
    let produced = shared
        .feeds
        .market(VenueId::BinanceDerivatives, Chan::AggTrade)
        .map_or(0, |m| m.produced(i));
    let base = shared.opts.time_base_ms;
    let mut o = String::with_capacity(120 * limit as usize + 2);
    o.push('[');
    for n in ascending(from, limit, produced) {
        if o.len() > 1 {
            o.push(',');
        }
        binance_futures::write_agg_trade_rest(&mut o, &binance_futures::agg_nums(i, n, base));
    }
    o.push(']');
    Reply {
        status: 200,
        body: o,
        headers,
    }
}

/// `GET /api/v5/market/history-trades?instId=&type=&after=&before=&limit=`:
/// newest first. `after`: ids below it; `before`: ids above it (the page
/// right after it); neither: the latest. `type=2` pages by `ts` instead.
pub(crate) fn okx(shared: &Shared, q: &[(String, String)]) -> Reply {
    let inst = param(q, "instId").unwrap_or_default();
    let Some(k) = okx::position(shared.opts.okx_extra_pairs, &inst) else {
        return reply(
            400,
            okx::rest_error("51001", "Instrument ID does not exist"),
        );
    };
    let limit = match opt_u64(q, "limit") {
        Ok(None) => 100,
        Ok(Some(n)) if n >= 1 => n.min(100),
        _ => return reply(400, okx::rest_error("51000", "Parameter limit error")),
    };
    let by_ts = match param(q, "type").as_deref() {
        None | Some("") | Some("1") => false,
        Some("2") => true,
        Some(_) => return reply(400, okx::rest_error("51000", "Parameter type error")),
    };
    let base = shared.opts.time_base_ms;
    // Item n has tradeId n and ts base + n.
    let cursor = |key: &str| -> Result<Option<u64>, Reply> {
        match opt_u64(q, key) {
            Ok(v) => Ok(v.map(|x| if by_ts { x.saturating_sub(base) } else { x })),
            Err(()) => Err(reply(
                400,
                okx::rest_error("51000", &format!("Parameter {key} error")),
            )),
        }
    };
    let (after, before) = match (cursor("after"), cursor("before")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let venue = if okx::instrument(k).is_some_and(|i| i.swap) {
        VenueId::OkxDerivatives
    } else {
        VenueId::OkxSpot
    };
    let produced = shared
        .feeds
        .market(venue, Chan::Trade)
        .map_or(0, |m| m.produced(k));
    let mut hi = produced;
    if let Some(a) = after {
        hi = hi.min(a.saturating_sub(1));
    }
    let lo = before.map_or(1, |b| b.saturating_add(1));
    if let (Some(b), None) = (before, after) {
        hi = hi.min(b.saturating_add(limit));
    }
    let mut o = String::with_capacity(160 * limit as usize + 40);
    o.push_str("{\"code\":\"0\",\"msg\":\"\",\"data\":[");
    let mut n = hi;
    let mut sent = 0;
    while n >= lo.max(1) && sent < limit {
        if sent > 0 {
            o.push(',');
        }
        okx::write_history_trade(&mut o, k, n, base);
        sent += 1;
        n -= 1;
    }
    o.push_str("]}");
    reply(200, o)
}

fn deribit_invalid(param: &str, reason: &str) -> Reply {
    reply(
        400,
        format!(
            "{{\"jsonrpc\":\"2.0\",\"error\":{{\"message\":\"Invalid params\",\"data\":{{\"reason\":\"{reason}\",\"param\":\"{param}\"}},\"code\":-32602}},\"testnet\":false}}"
        ),
    )
}

/// `GET /api/v2/public/get_last_trades_by_instrument?instrument_name=
/// &start_seq=&end_seq=&start_timestamp=&end_timestamp=&count=&sorting=`.
pub(crate) fn deribit(shared: &Shared, q: &[(String, String)]) -> Reply {
    let name = param(q, "instrument_name").unwrap_or_default();
    let Some(i) = deribit::INSTRUMENTS.iter().position(|s| *s == name) else {
        return deribit_invalid("instrument_name", "instrument not found");
    };
    let num = |k: &str| opt_u64(q, k).map_err(|_| deribit_invalid(k, "wrong format"));
    let parsed = (|| {
        Ok::<_, Reply>((
            num("start_seq")?,
            num("end_seq")?,
            num("start_timestamp")?,
            num("end_timestamp")?,
            num("count")?,
        ))
    })();
    let (start_seq, end_seq, start_ts, end_ts, count) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    let count = match count {
        None => 10,
        Some(c) if (1..=1000).contains(&c) => c,
        Some(_) => return deribit_invalid("count", "must be between 1 and 1000"),
    };
    let asc = match param(q, "sorting").as_deref() {
        None | Some("") | Some("default") | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return deribit_invalid("sorting", "wrong format"),
    };
    let base = shared.opts.time_base_ms;
    let produced = shared
        .feeds
        .market(VenueId::DeribitDerivatives, Chan::Trade)
        .map_or(0, |m| m.produced(i));
    // Item n has trade_seq n and timestamp base + n.
    let mut lo = start_seq.unwrap_or(1).max(1);
    let mut hi = end_seq.map_or(produced, |e| e.min(produced));
    if let Some(t) = start_ts {
        lo = lo.max(t.saturating_sub(base));
    }
    if let Some(t) = end_ts {
        hi = hi.min(t.saturating_sub(base));
    }
    let (ids, has_more): (Vec<u64>, bool) = if lo > hi {
        (Vec::new(), false)
    } else if asc {
        let top = hi.min(lo.saturating_add(count - 1));
        ((lo..=top).collect(), top < hi)
    } else {
        let bottom = lo.max(hi.saturating_sub(count - 1));
        ((bottom..=hi).rev().collect(), bottom > lo)
    };
    let us = shared.now_ms().saturating_mul(1000);
    let mut o = String::with_capacity(360 * ids.len() + 160);
    o.push_str("{\"jsonrpc\":\"2.0\",\"result\":{\"trades\":[");
    for (k, n) in ids.iter().enumerate() {
        if k > 0 {
            o.push(',');
        }
        deribit::write_trade_obj(&mut o, i, *n, base);
    }
    let _ = write!(
        o,
        "],\"has_more\":{has_more}}},\"usIn\":{us},\"usOut\":{},\"usDiff\":5,\"testnet\":false}}",
        us + 5
    );
    reply(200, o)
}

/// `GET /v5/market/recent-trade?category=&symbol=&limit=`: the latest
/// trades, newest first (spot: default and max 60; linear: default 500,
/// max 1000). `i` is the feed index of the already-resolved symbol.
pub(crate) fn bybit(shared: &Shared, cat: Cat, i: usize, q: &[(String, String)]) -> Reply {
    let now = shared.now_ms();
    let (d, max) = match cat {
        Cat::Spot => (60, 60),
        Cat::Linear => (500, 1000),
    };
    let limit = match opt_u64(q, "limit") {
        Ok(None) => d,
        Ok(Some(n)) if n >= 1 => n.min(max),
        _ => {
            return reply(
                200,
                bybit::rest_error(10001, "params error: limit invalid", now),
            )
        }
    };
    let venue = match cat {
        Cat::Spot => VenueId::BybitSpot,
        Cat::Linear => VenueId::BybitLinear,
    };
    let produced = shared
        .feeds
        .market(venue, Chan::Trade)
        .map_or(0, |m| m.produced(i));
    let base = shared.opts.time_base_ms;
    let mut o = String::with_capacity(200 * limit as usize + 60);
    let _ = write!(o, "{{\"category\":\"{}\",\"list\":[", cat.name());
    let lo = produced.saturating_sub(limit) + 1;
    for (k, n) in (lo..=produced).rev().enumerate() {
        if k > 0 {
            o.push(',');
        }
        bybit::write_recent_trade(&mut o, i, &bybit::trade_nums(cat, i, n, base));
    }
    o.push_str("]}");
    reply(200, bybit::rest_ok(&o, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::feed::{self, FeedSub};
    use crate::mock::http;
    use crate::mock::session::{fill_trades, Conn, MalformedState};
    use crate::mock::ws::{self, Decoded};
    use crate::mock::MockOptions;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

    const BASE: u64 = 1_700_000_000_000;

    fn shared(cap: u64) -> Shared {
        Shared::new(MockOptions {
            symbols: binance::default_symbols()[..2].to_vec(),
            time_base_ms: BASE,
            trades_per_symbol: cap,
            event_rate: 0,
            events_per_stream: cap,
            book_rate: 0,
            book_updates: 5,
            ..MockOptions::default()
        })
    }

    fn v(s: &str) -> Value {
        sonic_rs::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// (status, headers, parsed body) of a GET.
    fn get(s: &Shared, path: &str) -> (u16, Vec<(&'static str, String)>, Value) {
        let raw = format!("GET {path} HTTP/1.1\r\n\r\n");
        let req = http::parse_head(raw.as_bytes()).unwrap().unwrap().0;
        let r = super::super::rest::route(s, &req).expect("routed");
        (r.status, r.headers, v(&r.body))
    }

    fn arr(x: &Value) -> Vec<Value> {
        x.as_array().unwrap().iter().cloned().collect()
    }

    fn field(x: &Value, k: &str) -> Value {
        x.get(k)
            .unwrap_or_else(|| panic!("no {k} in {x:?}"))
            .clone()
    }

    fn u(x: &Value, k: &str) -> u64 {
        let f = field(x, k);
        f.as_u64()
            .or_else(|| f.as_str().and_then(|s| s.parse().ok()))
            .unwrap()
    }

    fn texts(mut b: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while let Decoded::Frame(f, used) = ws::decode_frame(b, false, usize::MAX) {
            out.push(String::from_utf8(f.payload).unwrap());
            b = &b[used..];
        }
        out
    }

    /// Every frame a fresh subscriber to (venue, chan, idx) receives.
    fn ws_items(s: &Shared, venue: VenueId, chan: Chan, idx: usize, name: &str) -> Vec<Value> {
        let mut subs = vec![FeedSub::new(
            s,
            venue,
            Some(chan),
            idx,
            name.to_string(),
            String::new(),
        )];
        let mut buf = Vec::new();
        let mut scratch = String::new();
        feed::fill(s, &mut subs, false, &mut buf, &mut scratch, usize::MAX);
        texts(&buf).iter().map(|t| v(t)).collect()
    }

    #[test]
    fn binance_spot_history_equals_ws_trades() {
        let s = shared(300);
        let (st, _, body) = get(&s, "/api/v3/historicalTrades?symbol=ETHUSDT");
        assert_eq!((st, arr(&body).len()), (200, 0), "nothing produced yet");
        let c = Conn::new(&s, true, &[1]);
        let mut buf = Vec::new();
        fill_trades(&s, &c, &mut buf, &mut MalformedState::default());
        let ws: Vec<Value> = texts(&buf).iter().map(|t| field(&v(t), "data")).collect();
        assert_eq!(ws.len(), 300);

        let (st, hdr, body) = get(
            &s,
            "/api/v3/historicalTrades?symbol=ETHUSDT&fromId=250&limit=100",
        );
        assert_eq!(st, 200);
        assert_eq!(hdr[0], ("X-MBX-USED-WEIGHT-1M", "50".to_string()));
        let rows = arr(&body);
        assert_eq!(rows.len(), 51, "never past the produced trade 300");
        for r in &rows {
            let w = &ws[u(r, "id") as usize - 1];
            assert_eq!(u(r, "id"), u(w, "t"));
            assert_eq!(field(r, "price"), field(w, "p"));
            assert_eq!(field(r, "qty"), field(w, "q"));
            assert_eq!(field(r, "time"), field(w, "T"));
            assert_eq!(field(r, "isBuyerMaker"), field(w, "m"));
            assert_eq!(field(r, "isBestMatch"), field(w, "M"));
            let num = |x: &Value, k: &str| field(x, k).as_str().unwrap().parse::<f64>().unwrap();
            let want = num(w, "p") * num(w, "q");
            assert!((num(r, "quoteQty") - want).abs() < 1e-6 * want.max(1.0));
        }
        assert_eq!(u(&rows[0], "id"), 250);
        assert_eq!(u(&rows[50], "id"), 300);
        let ids =
            |path: &str| -> Vec<u64> { arr(&get(&s, path).2).iter().map(|r| u(r, "id")).collect() };
        assert_eq!(
            ids("/api/v3/historicalTrades?symbol=ETHUSDT&limit=3"),
            [298, 299, 300]
        );
        assert_eq!(
            ids("/api/v3/historicalTrades?symbol=ETHUSDT&fromId=1&limit=2"),
            [1, 2]
        );
        assert_eq!(
            ids("/api/v3/historicalTrades?symbol=ETHUSDT&fromId=1").len(),
            300
        );
        assert!(ids("/api/v3/historicalTrades?symbol=ETHUSDT&fromId=301").is_empty());
        assert!(ids("/api/v3/historicalTrades?symbol=BTCUSDT&limit=5000").is_empty());
        let (st, _, e) = get(&s, "/api/v3/historicalTrades?symbol=NOPE");
        assert_eq!((st, field(&e, "code").as_i64()), (400, Some(-1121)));
        let (st, _, e) = get(&s, "/api/v3/historicalTrades?limit=5");
        assert_eq!((st, field(&e, "code").as_i64()), (400, Some(-1102)));
        let (st, _, e) = get(&s, "/api/v3/historicalTrades?symbol=ETHUSDT&fromId=x");
        assert_eq!((st, field(&e, "code").as_i64()), (400, Some(-1100)));
    }

    #[test]
    fn futures_agg_trades_equal_ws_items() {
        let s = shared(300);
        let ws = ws_items(
            &s,
            VenueId::BinanceDerivatives,
            Chan::AggTrade,
            1,
            "ethusdt@aggTrade",
        );
        assert_eq!(ws.len(), 300);
        let (st, hdr, body) = get(&s, "/fapi/v1/aggTrades?symbol=ETHUSDT&fromId=290&limit=50");
        assert_eq!((st, hdr[0].1.as_str()), (200, "20"));
        let rows = arr(&body);
        assert_eq!(rows.len(), 11);
        for r in &rows {
            let w = &ws[u(r, "a") as usize - 1];
            for k in ["a", "p", "q", "f", "l", "T", "m"] {
                assert_eq!(field(r, k), field(w, k), "{k}");
            }
            assert_eq!(r.as_object().unwrap().len(), 7);
        }
        let ids =
            |path: &str| -> Vec<u64> { arr(&get(&s, path).2).iter().map(|r| u(r, "a")).collect() };
        assert_eq!(ids("/fapi/v1/aggTrades?symbol=ETHUSDT&limit=2"), [299, 300]);
        assert_eq!(
            ids("/fapi/v1/aggTrades?symbol=ETHUSDT&fromId=1&limit=5000").len(),
            300
        );
        assert!(ids("/fapi/v1/aggTrades?symbol=BTCUSDT").is_empty());
        let (st, _, e) = get(&s, "/fapi/v1/aggTrades?symbol=SOLUSDT");
        assert_eq!((st, field(&e, "code").as_i64()), (400, Some(-1121)));
    }

    #[test]
    fn okx_history_trades_equal_ws_items_and_page_like_okx() {
        let s = shared(300);
        for (k, venue) in [(0usize, VenueId::OkxSpot), (3, VenueId::OkxDerivatives)] {
            let inst = okx::INSTRUMENTS[k].inst_id;
            let ws: Vec<Value> = ws_items(&s, venue, Chan::Trade, k, "trades")
                .iter()
                .map(|x| arr(&field(x, "data"))[0].clone())
                .collect();
            assert_eq!(ws.len(), 300);
            let page = |q: &str| -> Vec<Value> {
                let (st, _, body) = get(
                    &s,
                    &format!("/api/v5/market/history-trades?instId={inst}{q}"),
                );
                assert_eq!(st, 200);
                assert_eq!(field(&body, "code").as_str(), Some("0"));
                arr(&field(&body, "data"))
            };
            let ids = |q: &str| -> Vec<u64> { page(q).iter().map(|r| u(r, "tradeId")).collect() };
            let rows = page("&type=1&after=11&limit=4");
            assert_eq!(
                rows.iter().map(|r| u(r, "tradeId")).collect::<Vec<_>>(),
                [10, 9, 8, 7]
            );
            for r in page("&limit=100") {
                let w = &ws[u(&r, "tradeId") as usize - 1];
                for f in ["instId", "tradeId", "px", "sz", "side", "ts", "source"] {
                    assert_eq!(field(&r, f), field(w, f), "{f}");
                }
                assert_eq!(r.as_object().unwrap().len(), 7);
            }
            assert_eq!(ids("").len(), 100);
            assert_eq!(ids("&limit=2"), [300, 299]);
            assert_eq!(ids("&limit=1000").len(), 100);
            assert_eq!(ids("&before=295"), [300, 299, 298, 297, 296]);
            assert_eq!(ids("&before=10&limit=3"), [13, 12, 11]);
            assert_eq!(ids("&after=20&before=15"), [19, 18, 17, 16]);
            assert!(ids("&after=1").is_empty());
            assert!(ids("&before=300").is_empty());
            assert_eq!(ids("&after=5000&limit=1"), [300]);
            let ts11 = BASE + 11;
            assert_eq!(ids(&format!("&type=2&after={ts11}&limit=2")), [10, 9]);
        }
        let (st, _, e) = get(&s, "/api/v5/market/history-trades?instId=NOPE");
        assert_eq!((st, field(&e, "code").as_str()), (400, Some("51001")));
    }

    #[test]
    fn deribit_last_trades_equal_ws_items() {
        let s = shared(300);
        let ws: Vec<Value> = ws_items(
            &s,
            VenueId::DeribitDerivatives,
            Chan::Trade,
            1,
            "trades.ETH-PERPETUAL.raw",
        )
        .iter()
        .map(|x| arr(&field(&field(x, "params"), "data"))[0].clone())
        .collect();
        assert_eq!(ws.len(), 300);
        let q = |p: &str| -> (Vec<Value>, bool, Value) {
            let (st, _, body) = get(
                &s,
                &format!(
                    "/api/v2/public/get_last_trades_by_instrument?instrument_name=ETH-PERPETUAL{p}"
                ),
            );
            assert_eq!(st, 200, "{body:?}");
            let r = field(&body, "result");
            (
                arr(&field(&r, "trades")),
                field(&r, "has_more").as_bool().unwrap(),
                body,
            )
        };
        let seqs = |t: &[Value]| -> Vec<u64> { t.iter().map(|x| u(x, "trade_seq")).collect() };
        let (t, more, body) = q("&start_seq=5&end_seq=20&count=3&sorting=asc");
        assert_eq!((seqs(&t), more), (vec![5, 6, 7], true));
        assert_eq!(field(&body, "jsonrpc").as_str(), Some("2.0"));
        assert_eq!(field(&body, "testnet").as_bool(), Some(false));
        assert!(u(&body, "usOut") >= u(&body, "usIn"));
        for x in &t {
            assert_eq!(*x, ws[u(x, "trade_seq") as usize - 1]);
        }
        let (t, more, _) = q("&start_seq=5&end_seq=20&count=3&sorting=desc");
        assert_eq!((seqs(&t), more), (vec![20, 19, 18], true));
        let (t, more, _) = q("&start_seq=298&end_seq=5000&count=10&sorting=asc");
        assert_eq!((seqs(&t), more), (vec![298, 299, 300], false));
        let (t, more, _) = q("");
        assert_eq!(
            (seqs(&t), more),
            ((291..=300).rev().collect::<Vec<_>>(), true)
        );
        let (t, _, _) = q("&start_seq=1&count=1000&sorting=asc");
        assert_eq!(t.len(), 300);
        for x in &t {
            assert_eq!(*x, ws[u(x, "trade_seq") as usize - 1]);
        }
        let (t, more, _) = q("&start_seq=301&sorting=asc");
        assert!(t.is_empty() && !more);
        let (t, _, _) = q(&format!(
            "&start_timestamp={}&count=2&sorting=asc",
            BASE + 50
        ));
        assert_eq!(seqs(&t), [50, 51]);
        let (st, _, e) = get(
            &s,
            "/api/v2/public/get_last_trades_by_instrument?instrument_name=X",
        );
        assert_eq!(
            (st, field(&field(&e, "error"), "code").as_i64()),
            (400, Some(-32602))
        );
        let (st, _, _) = get(
            &s,
            "/api/v2/public/get_last_trades_by_instrument?instrument_name=ETH-PERPETUAL&count=1001",
        );
        assert_eq!(st, 400);
    }

    #[test]
    fn bybit_recent_trades_equal_ws_items() {
        let s = shared(300);
        for (cat, venue, max) in [
            ("spot", VenueId::BybitSpot, 60usize),
            ("linear", VenueId::BybitLinear, 300),
        ] {
            let ws: Vec<Value> = ws_items(&s, venue, Chan::Trade, 0, "publicTrade.BTCUSDT")
                .iter()
                .map(|x| arr(&field(x, "data"))[0].clone())
                .collect();
            assert_eq!(ws.len(), 300);
            let list = |q: &str| -> Vec<Value> {
                let (st, _, body) = get(
                    &s,
                    &format!("/v5/market/recent-trade?category={cat}&symbol=BTCUSDT{q}"),
                );
                assert_eq!(st, 200);
                assert_eq!(u(&body, "retCode"), 0);
                let r = field(&body, "result");
                assert_eq!(field(&r, "category").as_str(), Some(cat));
                arr(&field(&r, "list"))
            };
            let rows = list("&limit=1000");
            assert_eq!(rows.len(), max);
            for (k, r) in rows.iter().enumerate() {
                let w = &ws[300 - 1 - k];
                assert_eq!(u(r, "time"), u(w, "T"), "newest first");
                assert_eq!(field(r, "execId"), field(w, "i"));
                assert_eq!(field(r, "symbol"), field(w, "s"));
                assert_eq!(field(r, "price"), field(w, "p"));
                assert_eq!(field(r, "size"), field(w, "v"));
                assert_eq!(field(r, "side"), field(w, "S"));
                assert_eq!(field(r, "isBlockTrade"), field(w, "BT"));
                assert!(field(r, "time").is_str());
            }
            assert_eq!(list("&limit=3").len(), 3);
        }
        assert_eq!(
            get(&s, "/v5/market/recent-trade?category=spot&symbol=BTCUSDT")
                .2
                .get("result")
                .unwrap()
                .get("list")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            60
        );
        let (_, _, e) = get(&s, "/v5/market/recent-trade?category=spot&symbol=NOPE");
        assert_eq!(u(&e, "retCode"), 10001);
    }

    #[test]
    fn never_serves_items_not_produced_yet() {
        // Unlimited on-demand market: produced only as far as consumers pulled.
        let s = shared(0);
        let q = |p: &str| arr(&get(&s, p).2).len();
        assert_eq!(q("/api/v3/historicalTrades?symbol=BTCUSDT&fromId=1"), 0);
        let produced = s.market.available_up_to(0, 1);
        assert!(produced > 0);
        let rows = arr(&get(
            &s,
            "/api/v3/historicalTrades?symbol=BTCUSDT&fromId=1&limit=1000",
        )
        .2);
        assert_eq!(rows.len() as u64, produced);
        assert_eq!(u(rows.last().unwrap(), "id"), produced);
        let m = s
            .feeds
            .market(VenueId::BinanceDerivatives, Chan::AggTrade)
            .unwrap();
        assert_eq!(q("/fapi/v1/aggTrades?symbol=BTCUSDT"), 0);
        let p = m.available_up_to(0, 1);
        assert_eq!(
            q("/fapi/v1/aggTrades?symbol=BTCUSDT&fromId=1&limit=1000") as u64,
            p
        );
        // Rate mode: only what the clock has produced.
        let s = Shared::new(MockOptions {
            time_base_ms: BASE,
            event_rate: 1,
            rate: 1,
            ..MockOptions::default()
        });
        let body = |p: &str| get(&s, p).2;
        assert_eq!(
            arr(&body("/api/v3/historicalTrades?symbol=BTCUSDT")).len(),
            0
        );
        let d = body("/api/v2/public/get_last_trades_by_instrument?instrument_name=BTC-PERPETUAL");
        assert_eq!(arr(&field(&field(&d, "result"), "trades")).len(), 0);
        let o = body("/api/v5/market/history-trades?instId=BTC-USDT");
        assert_eq!(arr(&field(&o, "data")).len(), 0);
    }
}

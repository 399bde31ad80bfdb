//! Trade history REST endpoints for the collector's gap backfill: Binance
//! spot `historicalTrades`, USDⓈ-M `aggTrades`, OKX `history-trades`,
//! Deribit `get_last_trades_by_instrument`, Bybit `recent-trade`. Each
//! serves only items its market has already produced, formatted from the
//! same per-item numbers as the venue's WebSocket trade writer.

use std::fmt::Write as _;

use super::binance;
use super::bybit::{self, Cat};
use super::rest::{
    binance_err, futures_weight, param, reply, spot_weight, Reply, BINANCE_INVALID_SYMBOL,
    BINANCE_MISSING_SYMBOL,
};
use super::venues::{self, Chan, Venue};
use super::{binance_futures, deribit, okx, Shared};

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
    let Some(i) = venues::find(&shared.opts, Venue::BinanceDerivatives, &sym) else {
        return binance_err(BINANCE_INVALID_SYMBOL, headers);
    };
    let produced = shared
        .feeds
        .market(Venue::BinanceDerivatives, Chan::AggTrade)
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
    let Some(k) = okx::INSTRUMENTS.iter().position(|i| i.inst_id == inst) else {
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
    let venue = if okx::INSTRUMENTS[k].swap {
        Venue::OkxDerivatives
    } else {
        Venue::OkxSpot
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
    let Some(i) = venues::DERIBIT_INSTRUMENTS.iter().position(|s| *s == name) else {
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
        .market(Venue::DeribitDerivatives, Chan::Trade)
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
        Cat::Spot => Venue::BybitSpot,
        Cat::Linear => Venue::BybitLinear,
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

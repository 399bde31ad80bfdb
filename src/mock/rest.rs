//! REST answers beyond Binance spot's `exchangeInfo`: Binance spot depth,
//! USDⓈ-M, OKX, Bybit and Deribit public endpoints, plus the mock's own
//! `/mock/book` (true book), `/mock/fault` (book faults), `/mock/rest_fault`
//! and `/mock/conn_fault` (see `fault`); the trade history endpoints live in
//! `history`. Each bad request gets that venue's documented error shape,
//! never a panic.

use super::book::FaultKind;
use super::bybit::{self, Cat};
use super::fault::{self, ConnFaults};
use super::http::Request;
pub(crate) use super::reply::{
    binance_err, futures_weight, param, reply, spot_weight, Reply, BINANCE_INVALID_SYMBOL,
    BINANCE_MISSING_SYMBOL,
};
use super::stats::{bump, Bump};
use super::venues;
use super::{binance_book, binance_futures, deribit, history, okx, Shared};
use crate::model::VenueId;

fn count_rest(shared: &Shared, venue: &'static str, path: &str) {
    shared.venue_stats.with(venue, |c| bump(&mut c.rest, path));
}

/// Answers `req` if it is one of these routes (GET; `/mock/fault` also POST).
pub(crate) fn route(shared: &Shared, req: &Request) -> Option<Reply> {
    let path = req.path.as_str();
    if req.method != "GET" && !(req.method == "POST" && path.starts_with("/mock/")) {
        return None;
    }
    let q = req.query_pairs();
    // An injected error answer replaces the next venue REST answers.
    let (status, retry_after, left) = shared.rest_fault.get();
    if left > 0 && !path.starts_with("/mock/") {
        shared.rest_fault.set((status, retry_after, left - 1));
        shared
            .rest_faults_served
            .set(shared.rest_faults_served.get() + 1);
        shared.faults.stats.rest_errors.add(1);
        let body = match status {
            429 | 418 => "{\"code\":-1003,\"msg\":\"Too many requests; mock rate limit.\"}",
            500..=599 => "{\"code\":-1000,\"msg\":\"Internal error; mock server fault.\"}",
            _ => "{\"code\":-1000,\"msg\":\"Request rejected; mock fault.\"}",
        };
        let mut r = reply(status, body.to_string());
        r.headers.push(("Retry-After", retry_after.to_string()));
        return Some(r);
    }
    let r = match path {
        "/mock/rest_fault" => mock_rest_fault(shared, &q),
        "/mock/conn_fault" => mock_conn_fault(shared, &q),
        "/api/v3/historicalTrades" => {
            count_rest(shared, "binance_spot", path);
            history::binance_spot(shared, &q)
        }
        "/fapi/v1/aggTrades" => {
            count_rest(shared, "binance_derivatives", path);
            history::binance_futures(shared, &q)
        }
        "/api/v5/market/history-trades" => {
            count_rest(shared, "okx", path);
            history::okx(shared, &q)
        }
        "/api/v2/public/get_last_trades_by_instrument" => {
            count_rest(shared, "deribit_derivatives", path);
            history::deribit(shared, &q)
        }
        "/api/v3/depth" => {
            count_rest(shared, "binance_spot", path);
            binance_depth(shared, &q, false)
        }
        "/fapi/v1/exchangeInfo" => {
            count_rest(shared, "binance_derivatives", path);
            let mut r = reply(200, binance_futures::exchange_info_json(shared.now_ms()));
            r.headers = futures_weight(shared, 1);
            r
        }
        "/fapi/v1/depth" => {
            count_rest(shared, "binance_derivatives", path);
            binance_depth(shared, &q, true)
        }
        "/fapi/v1/openInterest"
        | "/futures/data/topLongShortPositionRatio"
        | "/futures/data/globalLongShortAccountRatio" => {
            count_rest(shared, "binance_derivatives", path);
            futures_stats(shared, path, &q)
        }
        "/api/v5/public/instruments" => {
            count_rest(shared, "okx", path);
            match param(&q, "instType").as_deref() {
                Some("SPOT") => reply(
                    200,
                    okx::instruments_json_with(false, shared.opts.okx_extra_pairs),
                ),
                Some("SWAP") => reply(
                    200,
                    okx::instruments_json_with(true, shared.opts.okx_extra_pairs),
                ),
                _ => reply(400, okx::rest_error("51000", "Parameter instType error")),
            }
        }
        "/api/v5/market/books" => {
            count_rest(shared, "okx", path);
            okx_books(shared, &q)
        }
        "/api/v5/rubik/stat/contracts/long-short-account-ratio"
        | "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader" => {
            count_rest(shared, "okx", path);
            okx_rubik(shared, path, &q)
        }
        "/v5/market/instruments-info"
        | "/v5/market/orderbook"
        | "/v5/market/account-ratio"
        | "/v5/market/recent-trade" => bybit_rest(shared, path, &q),
        "/api/v2/public/get_instruments" => {
            count_rest(shared, "deribit_derivatives", path);
            let cur = param(&q, "currency").unwrap_or_default();
            let kind = param(&q, "kind");
            match deribit::instruments_json(&cur) {
                Some(_) if kind.as_deref().is_some_and(|k| k != "future") => reply(
                    200,
                    "{\"jsonrpc\":\"2.0\",\"result\":[],\"usIn\":0,\"usOut\":0,\"usDiff\":0,\"testnet\":false}".to_string(),
                ),
                Some(b) => reply(200, b),
                None => reply(
                    400,
                    "{\"jsonrpc\":\"2.0\",\"error\":{\"message\":\"Invalid params\",\"data\":{\"reason\":\"wrong format\",\"param\":\"currency\"},\"code\":-32602},\"testnet\":false}".to_string(),
                ),
            }
        }
        "/mock/book" => mock_book(shared, &q),
        "/mock/fault" => mock_fault(shared, &q),
        _ => return None,
    };
    Some(r)
}

/// `/api/v3/depth` (spot, default limit 100, max 5000) and `/fapi/v1/depth`
/// (default 500, max 1000), weighted by limit.
fn binance_depth(shared: &Shared, q: &[(String, String)], futures: bool) -> Reply {
    let limit = match param(q, "limit") {
        None => {
            if futures {
                500
            } else {
                100
            }
        }
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(if futures { 1000 } else { 5000 }),
            _ => {
                return binance_err(
                    "{\"code\":-1100,\"msg\":\"Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.\"}",
                    Vec::new(),
                )
            }
        },
    };
    let headers = if futures {
        futures_weight(shared, binance_book::futures_depth_weight(limit))
    } else {
        spot_weight(shared, binance_book::spot_depth_weight(limit))
    };
    let Some(sym) = param(q, "symbol").filter(|s| !s.is_empty()) else {
        return binance_err(BINANCE_MISSING_SYMBOL, headers);
    };
    let venue = if futures {
        VenueId::BinanceDerivatives
    } else {
        VenueId::BinanceSpot
    };
    let Some(cell) =
        venues::find(&shared.opts, venue, &sym).and_then(|i| shared.feeds.book(venue, i))
    else {
        return binance_err(BINANCE_INVALID_SYMBOL, headers);
    };
    let mut f = cell.borrow_mut();
    let (n, id, book) = f.rest_snapshot();
    Reply {
        status: 200,
        body: binance_book::depth_snapshot_json(&f, id, n, &book, limit, futures),
        headers,
    }
}

fn futures_stats(shared: &Shared, path: &str, q: &[(String, String)]) -> Reply {
    let Some(sym) = param(q, "symbol").filter(|s| !s.is_empty()) else {
        return binance_err(BINANCE_MISSING_SYMBOL, futures_weight(shared, 1));
    };
    let Some(i) = venues::find(&shared.opts, VenueId::BinanceDerivatives, &sym) else {
        return binance_err(BINANCE_INVALID_SYMBOL, futures_weight(shared, 1));
    };
    let base = shared.opts.time_base_ms;
    let n = shared.next_request(&format!("{path}|{sym}"));
    let body = if path == "/fapi/v1/openInterest" {
        binance_futures::open_interest(i, n, base)
    } else {
        const PERIODS: [&str; 9] = ["5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"];
        if !param(q, "period").is_some_and(|p| PERIODS.contains(&p.as_str())) {
            return binance_err(
                "{\"code\":-1102,\"msg\":\"Mandatory parameter 'period' was not sent, was empty/null, or malformed.\"}",
                futures_weight(shared, 1),
            );
        }
        let limit = param(q, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 500);
        if path.ends_with("topLongShortPositionRatio") {
            binance_futures::top_long_short_position_ratio(i, n, base, limit)
        } else {
            binance_futures::global_long_short_account_ratio(i, n, base, limit)
        }
    };
    let mut r = reply(200, body);
    r.headers = futures_weight(shared, 1);
    r
}

fn okx_books(shared: &Shared, q: &[(String, String)]) -> Reply {
    let inst = param(q, "instId").unwrap_or_default();
    let Some(k) = okx::position(shared.opts.okx_extra_pairs, &inst) else {
        return reply(
            400,
            okx::rest_error("51001", "Instrument ID does not exist"),
        );
    };
    let sz = match param(q, "sz") {
        None => 1,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=400).contains(&n) => n,
            _ => return reply(400, okx::rest_error("51000", "Parameter sz error")),
        },
    };
    let venue = if okx::instrument(k).is_some_and(|i| i.swap) {
        VenueId::OkxDerivatives
    } else {
        VenueId::OkxSpot
    };
    let Some(cell) = shared.feeds.book(venue, k) else {
        return reply(
            400,
            okx::rest_error("51001", "Instrument ID does not exist"),
        );
    };
    let mut f = cell.borrow_mut();
    let (n, id, book) = f.rest_snapshot();
    reply(200, okx::books_rest_json(&f, n, id, &book, sz))
}

fn okx_rubik(shared: &Shared, path: &str, q: &[(String, String)]) -> Reply {
    let base = shared.opts.time_base_ms;
    let limit = param(q, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100);
    if path.ends_with("long-short-account-ratio") {
        let ccy = param(q, "ccy").unwrap_or_default();
        let Some(i) = ["BTC", "ETH"].iter().position(|c| *c == ccy) else {
            return reply(400, okx::rest_error("51000", "Parameter ccy error"));
        };
        let n = shared.next_request(&format!("{path}|{ccy}"));
        reply(200, okx::long_short_account_ratio(i, n, base, limit))
    } else {
        let inst = param(q, "instId").unwrap_or_default();
        let Some(k) = okx::position(shared.opts.okx_extra_pairs, &inst)
            .filter(|k| okx::instrument(*k).is_some_and(|i| i.swap))
        else {
            return reply(
                400,
                okx::rest_error("51001", "Instrument ID does not exist"),
            );
        };
        let n = shared.next_request(&format!("{path}|{inst}"));
        reply(200, okx::top_trader_position_ratio(k, n, base, limit))
    }
}

fn bybit_rest(shared: &Shared, path: &str, q: &[(String, String)]) -> Reply {
    let now = shared.now_ms();
    let cat = match param(q, "category").as_deref() {
        Some("spot") => Cat::Spot,
        Some("linear") => Cat::Linear,
        _ => {
            count_rest(shared, "bybit_linear", path);
            return reply(
                200,
                bybit::rest_error(10001, "params error: Category is invalid", now),
            );
        }
    };
    let (venue, key) = match cat {
        Cat::Spot => (VenueId::BybitSpot, "bybit_spot"),
        Cat::Linear => (VenueId::BybitLinear, "bybit_linear"),
    };
    count_rest(shared, key, path);
    if path == "/v5/market/instruments-info" {
        return reply(200, bybit::instruments_json(cat, now));
    }
    let sym = param(q, "symbol").unwrap_or_default();
    let Some(i) = venues::find(&shared.opts, venue, &sym) else {
        return reply(
            200,
            bybit::rest_error(10001, "params error: symbol invalid", now),
        );
    };
    if path == "/v5/market/recent-trade" {
        return history::bybit(shared, cat, i, q);
    }
    if path == "/v5/market/orderbook" {
        let limit = param(q, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(if cat == Cat::Spot { 1 } else { 25 })
            .clamp(1, 1000);
        let Some(cell) = shared.feeds.book(venue, i) else {
            return reply(
                200,
                bybit::rest_error(10001, "params error: symbol invalid", now),
            );
        };
        let mut f = cell.borrow_mut();
        let (n, id, book) = f.rest_snapshot();
        let u = if n == f.n() {
            f.u()
        } else {
            f.update(n).map(|x| x.u).unwrap_or(0)
        };
        return reply(
            200,
            bybit::orderbook_rest_json(&f, &sym, &book, n, u, id, limit, now),
        );
    }
    // account-ratio
    if cat != Cat::Linear {
        return reply(
            200,
            bybit::rest_error(10001, "params error: category invalid", now),
        );
    }
    let limit = param(q, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 500);
    let n = shared.next_request(&format!("{path}|{sym}"));
    reply(
        200,
        bybit::account_ratio(i, n, shared.opts.time_base_ms, limit, now),
    )
}

fn mock_err(status: u16, msg: &str) -> Reply {
    reply(
        status,
        format!("{{\"error\":\"{}\"}}", bybit::json_escape(msg)),
    )
}

/// Venue + symbol of a `/mock/...` request → (venue, feed index).
fn book_target(shared: &Shared, q: &[(String, String)]) -> Result<(VenueId, usize, String), Reply> {
    let v = param(q, "venue").unwrap_or_default();
    let Some(venue) = VenueId::from_config_key(&v) else {
        return Err(mock_err(404, &format!("unknown venue `{v}`")));
    };
    let sym = param(q, "symbol").unwrap_or_default();
    match venues::find(&shared.opts, venue, &sym) {
        Some(i) => Ok((venue, i, sym)),
        None => Err(mock_err(404, &format!("unknown symbol `{sym}` on {v}"))),
    }
}

/// `GET /mock/book?venue=&symbol=`: the true book.
fn mock_book(shared: &Shared, q: &[(String, String)]) -> Reply {
    match book_target(shared, q) {
        Err(r) => r,
        Ok((venue, i, _)) => match shared.feeds.book(venue, i) {
            Some(cell) => reply(200, cell.borrow_mut().mock_json()),
            None => mock_err(404, "no book"),
        },
    }
}

/// `/mock/fault?venue=&symbol=&kind=[&count=N]`: queues N faults on that book.
fn mock_fault(shared: &Shared, q: &[(String, String)]) -> Reply {
    let (venue, i, sym) = match book_target(shared, q) {
        Err(r) => return r,
        Ok(t) => t,
    };
    let k = param(q, "kind").unwrap_or_default();
    let Some(kind) = FaultKind::parse(&k) else {
        return mock_err(400, &format!("unknown fault kind `{k}`"));
    };
    if !venues::supports(venue, kind) {
        return mock_err(
            400,
            &format!("fault `{k}` not supported on {}", venue.config_key()),
        );
    }
    let count = param(q, "count")
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, 1000);
    let Some(cell) = shared.feeds.book(venue, i) else {
        return mock_err(404, "no book");
    };
    {
        let mut f = cell.borrow_mut();
        f.catch_up();
        for _ in 0..count {
            f.inject(kind);
        }
    }
    shared.venue_stats.with(venue.config_key(), |c| {
        for _ in 0..count {
            bump(&mut c.faults, &format!("{sym}:{k}"));
        }
    });
    reply(
        200,
        format!(
            "{{\"ok\":true,\"venue\":\"{}\",\"symbol\":\"{sym}\",\"kind\":\"{k}\",\"count\":{count}}}",
            venue.config_key()
        ),
    )
}

/// `/mock/rest_fault?status=&retry_after=&count=&timeout_ms=`: the next
/// `count` venue REST answers are `status` (default 429) with `Retry-After`;
/// with `timeout_ms` the next `count` requests are instead held that long
/// and the connection closed without an answer (`status` may be given too:
/// the held requests come first).
fn mock_rest_fault(shared: &Shared, q: &[(String, String)]) -> Reply {
    let n = |k: &str| param(q, k).and_then(|v| v.parse::<u64>().ok());
    let count = n("count").unwrap_or(1).min(1000);
    let timeout = n("timeout_ms");
    let status_given = param(q, "status").is_some();
    let status = n("status").unwrap_or(429).clamp(400, 599) as u16;
    if let Some(ms) = timeout {
        shared.rest_timeout.set((ms.min(600_000), count));
    }
    if timeout.is_none() || status_given {
        shared
            .rest_fault
            .set((status, n("retry_after").unwrap_or(1), count));
    }
    reply(
        200,
        format!(
            "{{\"ok\":true,\"status\":{status},\"count\":{count},\"timeout_ms\":{}}}",
            timeout.unwrap_or(0)
        ),
    )
}

/// `/mock/conn_fault?[venue=][&clear=1][&drop_after=N][&drop_random=P]
/// [&stall_after=N][&garbage_every=N][&oversized_every=N][&lifetime_ms=MS]
/// [&notice_ms=MS][&refuse_ms=MS][&fault_seed=S][&mute=SYMBOL]`: changes the
/// given keys (of one connection class, or all), answers with the settings.
/// `mute` silences that native symbol's subscriptions on the connections
/// open now, as a venue dropping them server-side would.
fn mock_conn_fault(shared: &Shared, q: &[(String, String)]) -> Reply {
    let reg = &shared.faults;
    let slot = match param(q, "venue") {
        None => None,
        Some(v) => match fault::slot_of(&v) {
            Some(s) => Some(s),
            None => return mock_err(404, &format!("unknown venue `{v}`")),
        },
    };
    let mut changes: Vec<(String, u64)> = Vec::new();
    let mut clear = false;
    for (k, v) in q {
        let value = match k.as_str() {
            "venue" => continue,
            "mute" => {
                reg.mute(slot, v);
                continue;
            }
            "clear" => {
                clear = v != "0";
                continue;
            }
            "drop_random" => fault::parse_prob(v),
            "drop_after" | "stall_after" | "garbage_every" | "oversized_every" | "lifetime_ms"
            | "notice_ms" | "refuse_ms" | "fault_seed" => v.parse::<u64>().ok(),
            _ => return mock_err(400, &format!("unknown key `{k}`")),
        };
        match value {
            Some(x) => changes.push((k.clone(), x)),
            None => return mock_err(400, &format!("bad value `{v}` for `{k}`")),
        }
    }
    if clear {
        reg.update(slot, |c| *c = ConnFaults::default());
        reg.set_refuse(slot, None);
    }
    for (k, x) in changes {
        match k.as_str() {
            "refuse_ms" => reg.set_refuse(
                slot,
                (x > 0).then(|| std::time::Instant::now() + std::time::Duration::from_millis(x)),
            ),
            "fault_seed" => reg.set_seed(x),
            _ => reg.update(slot, |c| match k.as_str() {
                "drop_after" => c.drop_after = x,
                "drop_random" => c.drop_random_ppb = x,
                "stall_after" => c.stall_after = x,
                "garbage_every" => c.garbage_every = x,
                "oversized_every" => c.oversized_every = x,
                "lifetime_ms" => c.lifetime_ms = x,
                _ => c.notice_ms = x,
            }),
        }
    }
    reply(200, reg.to_json())
}

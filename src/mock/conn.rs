//! One accepted connection: read HTTP/1.1 requests (keep-alive), answer the
//! REST routes, or upgrade to a WebSocket session on the stream routes.

use std::rc::Rc;

use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::binance;
use super::fault;
use super::http::{self, HeadError, Request};
use super::session::{self, StreamRef, Upgrade};
use super::stats::{bump, Bump};
use super::vsession::{self, Proto};
use super::Shared;

/// Largest request body we are willing to skip over.
const MAX_BODY: usize = 1 << 20;

const INVALID_SYMBOL: &str = "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}";

/// What to do with one request.
enum Route {
    /// Send these bytes; keep the connection when `true`.
    Reply(Vec<u8>, bool),
    /// Switch protocols to a Binance session.
    Upgrade(Upgrade),
    /// Switch protocols to an OKX / Bybit / Deribit session.
    VUpgrade(Vec<u8>, Proto),
    /// `/mock/rest_fault?timeout_ms=`: answer nothing, close after this long.
    Hang(std::time::Duration),
}

/// Serves HTTP requests on `io` until the peer leaves, asks to close, or the
/// connection becomes a WebSocket.
pub(crate) async fn serve<S>(shared: Rc<Shared>, mut io: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    loop {
        let (req, used) = loop {
            match http::parse_head(&buf) {
                Ok(Some(x)) => break x,
                Ok(None) => {}
                Err(e) => {
                    let msg = match e {
                        HeadError::Malformed => "{\"code\":-1,\"msg\":\"Malformed request.\"}",
                        HeadError::TooLarge => {
                            "{\"code\":-1,\"msg\":\"Request header too large.\"}"
                        }
                    };
                    let _ = send(&mut io, &http::json_response(400, msg, &[], false)).await;
                    let _ = io.close().await;
                    return;
                }
            }
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..used);

        // Skip any request body so keep-alive framing stays right.
        let mut body = match req.content_length() {
            Some(n) if n <= MAX_BODY => n,
            _ => {
                let msg = "{\"code\":-1,\"msg\":\"Unsupported request body.\"}";
                let _ = send(&mut io, &http::json_response(400, msg, &[], false)).await;
                let _ = io.close().await;
                return;
            }
        };
        while body > 0 {
            if buf.is_empty() {
                match io.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let k = body.min(buf.len());
            buf.drain(..k);
            body -= k;
        }

        match route(&shared, &req) {
            Route::Reply(bytes, keep) => {
                if send(&mut io, &bytes).await.is_err() {
                    return;
                }
                if !keep {
                    let _ = io.close().await;
                    return;
                }
            }
            Route::Upgrade(up) => {
                if send(&mut io, &up.response).await.is_err() {
                    return;
                }
                // Bytes after the head already belong to the WebSocket.
                session::run(shared, io, buf, up).await;
                return;
            }
            Route::VUpgrade(response, proto) => {
                if send(&mut io, &response).await.is_err() {
                    return;
                }
                vsession::run(shared, io, buf, proto).await;
                return;
            }
            Route::Hang(d) => {
                glommio::timer::sleep(d).await;
                let _ = io.close().await;
                return;
            }
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

fn not_found(keep: bool) -> Route {
    Route::Reply(
        http::json_response(404, "{\"code\":-1,\"msg\":\"Not found.\"}", &[], keep),
        keep,
    )
}

/// Adds `w` to the running request weight and returns the header for it.
fn weigh(shared: &Shared, w: u64) -> [(&'static str, String); 1] {
    let total = shared.weight.get().wrapping_add(w);
    shared.weight.set(total);
    [("X-MBX-USED-WEIGHT-1M", total.to_string())]
}

fn route(shared: &Shared, req: &Request) -> Route {
    let keep = req.keep_alive();
    let is_upgrade = req.header_has_token("upgrade", "websocket");
    if !is_upgrade && !req.path.starts_with("/mock/") {
        let (ms, left) = shared.rest_timeout.get();
        if left > 0 {
            shared.rest_timeout.set((ms, left - 1));
            shared.faults.stats.rest_timeouts.add(1);
            return Route::Hang(std::time::Duration::from_millis(ms));
        }
    }
    if !is_upgrade {
        if let Some(r) = super::rest::route(shared, req) {
            return Route::Reply(
                http::json_response(r.status, &r.body, &r.headers, keep),
                keep,
            );
        }
    }
    if req.method != "GET" {
        return not_found(keep);
    }
    if matches!(
        req.path.as_str(),
        "/api/v3/exchangeInfo" | "/api/v3/ping" | "/api/v3/time"
    ) && !is_upgrade
    {
        shared
            .venue_stats
            .with("binance_spot", |c| bump(&mut c.rest, &req.path));
    }
    match req.path.as_str() {
        "/api/v3/exchangeInfo" if !is_upgrade => {
            let hdr = weigh(shared, 20);
            let only = requested_symbols(req);
            match binance::exchange_info_json(
                &shared.opts.symbols,
                shared.now_ms(),
                only.as_deref(),
            ) {
                Some(body) => Route::Reply(http::json_response(200, &body, &hdr, keep), keep),
                None => Route::Reply(http::json_response(400, INVALID_SYMBOL, &hdr, keep), keep),
            }
        }
        "/api/v3/ping" if !is_upgrade => {
            let hdr = weigh(shared, 1);
            Route::Reply(http::json_response(200, "{}", &hdr, keep), keep)
        }
        "/api/v3/time" if !is_upgrade => {
            let hdr = weigh(shared, 1);
            let body = format!("{{\"serverTime\":{}}}", shared.now_ms());
            Route::Reply(http::json_response(200, &body, &hdr, keep), keep)
        }
        "/mock/stats" if !is_upgrade => {
            let mut body = shared.stats.to_json(&shared.opts.symbols);
            body.pop();
            body.push_str(",\"venues\":");
            body.push_str(&shared.venue_stats.to_json());
            body.push_str(",\"faults\":");
            body.push_str(&shared.faults.stats.to_json());
            body.push('}');
            // Read-and-clear, so a benchmark can measure a window.
            if req
                .query_pairs()
                .iter()
                .any(|(k, v)| k == "reset_pong_rtt" && v == "1")
            {
                shared.stats.pong_rtt.reset();
            }
            Route::Reply(http::json_response(200, &body, &[], keep), keep)
        }
        _ if is_upgrade => upgrade_route(shared, req, keep),
        _ => not_found(keep),
    }
}

/// `symbol=X` or `symbols=["X","Y"]` on exchangeInfo.
fn requested_symbols(req: &Request) -> Option<Vec<String>> {
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "symbol" => return Some(vec![v]),
            "symbols" => {
                let list = v
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                return Some(list);
            }
            _ => {}
        }
    }
    None
}

/// A Binance stream path below a route prefix: `/stream?streams=` (combined)
/// or `/ws[/<streams>]` (raw).
fn binance_streams(req: &Request, p: &str) -> Option<(bool, Vec<String>)> {
    match p {
        "/stream" | "/stream/" => {
            let streams = req
                .query_pairs()
                .into_iter()
                .find(|(k, _)| k == "streams")
                .map(|(_, v)| v)
                .unwrap_or_default();
            Some((true, split_streams(&streams)))
        }
        "/ws" | "/ws/" => Some((false, Vec::new())),
        p => p
            .strip_prefix("/ws/")
            .map(|rest| (false, split_streams(rest))),
    }
}

fn upgrade_route(shared: &Shared, req: &Request, keep: bool) -> Route {
    let path = req.path.as_str();
    let proto = Proto::of_path(path);
    let (route, parsed) = if proto.is_some() {
        (session::Route::Spot, None)
    } else if let Some(rest) = path.strip_prefix("/public") {
        (session::Route::FuturesPublic, binance_streams(req, rest))
    } else if let Some(rest) = path.strip_prefix("/market") {
        (session::Route::FuturesMarket, binance_streams(req, rest))
    } else {
        (session::Route::Spot, binance_streams(req, path))
    };
    if proto.is_none() && parsed.is_none() {
        return not_found(keep);
    }
    let slot = match (proto, route) {
        (Some(p), _) => p.fault_slot(),
        (None, session::Route::Spot) => fault::SLOT_BINANCE_SPOT,
        (None, _) => fault::SLOT_BINANCE_DERIVATIVES,
    };
    if let Some(secs) = shared.faults.refuse(slot) {
        let msg = "{\"code\":-1,\"msg\":\"Service unavailable; mock refuses connections.\"}";
        let hdr = [("Retry-After", secs.to_string())];
        return Route::Reply(http::json_response(503, msg, &hdr, false), false);
    }
    let (combined, names) = parsed.unwrap_or_default();
    let mut indices = Vec::with_capacity(names.len());
    let mut extra = Vec::new();
    for n in &names {
        match session::parse_stream(shared, route, n) {
            Some(StreamRef::Trade(i)) if !indices.contains(&i) => indices.push(i),
            Some(StreamRef::Trade(_)) => {}
            Some(StreamRef::Feed(..)) => extra.push(n.clone()),
            None => {
                return Route::Reply(http::json_response(400, INVALID_SYMBOL, &[], false), false)
            }
        }
    }
    let key = match req.header("sec-websocket-key") {
        Some(k) if !k.trim().is_empty() => k,
        _ => {
            let msg = "{\"code\":-1,\"msg\":\"Missing Sec-WebSocket-Key.\"}";
            return Route::Reply(http::json_response(400, msg, &[], false), false);
        }
    };
    if let Some(v) = req.header("sec-websocket-version") {
        if v.trim() != "13" {
            let msg = "{\"code\":-1,\"msg\":\"Unsupported Sec-WebSocket-Version.\"}";
            return Route::Reply(http::json_response(400, msg, &[], false), false);
        }
    }
    let response = super::ws::handshake_response(key);
    if let Some(p) = proto {
        return Route::VUpgrade(response, p);
    }
    Route::Upgrade(Upgrade {
        response,
        combined,
        streams: indices,
        extra,
        route,
    })
}

fn split_streams(s: &str) -> Vec<String> {
    s.split('/')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockOptions;

    fn shared() -> Shared {
        Shared::new(MockOptions {
            symbols: binance::default_symbols()[..3].to_vec(),
            time_base_ms: 1000,
            ..MockOptions::default()
        })
    }

    fn req(raw: &str) -> Request {
        http::parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    fn reply(r: Route) -> (String, bool) {
        match r {
            Route::Reply(b, k) => (String::from_utf8(b).unwrap(), k),
            _ => panic!("unexpected upgrade or hang"),
        }
    }

    #[test]
    fn rest_routes_and_weight() {
        let s = shared();
        let (r, keep) = reply(route(&s, &req("GET /api/v3/exchangeInfo HTTP/1.1\r\n\r\n")));
        assert!(keep);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("X-MBX-USED-WEIGHT-1M: 20\r\n"));
        assert!(r.contains("\"BNBUSDT\"") && r.contains("\"LUNAUSDT\""));
        let (r, _) = reply(route(
            &s,
            &req("GET /api/v3/exchangeInfo?symbol=ETHUSDT HTTP/1.1\r\nConnection: close\r\n\r\n"),
        ));
        assert!(r.contains("X-MBX-USED-WEIGHT-1M: 40\r\n"));
        assert!(r.contains("Connection: close"));
        assert!(r.contains("\"ETHUSDT\"") && !r.contains("\"BTCUSDT\""));
        let (r, _) = reply(route(
            &s,
            &req("GET /api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22LUNAUSDT%22%5D HTTP/1.1\r\n\r\n"),
        ));
        assert!(r.contains("\"BTCUSDT\"") && r.contains("\"LUNAUSDT\"") && !r.contains("ETHUSDT"));
        let (r, _) = reply(route(
            &s,
            &req("GET /api/v3/exchangeInfo?symbol=NOPE HTTP/1.1\r\n\r\n"),
        ));
        assert!(r.starts_with("HTTP/1.1 400") && r.contains("-1121"));
        let (r, _) = reply(route(&s, &req("GET /mock/stats HTTP/1.1\r\n\r\n")));
        assert!(r.contains("\"trades_sent\":{\"BTCUSDT\":0,\"ETHUSDT\":0,\"BNBUSDT\":0}"));
        // reset_pong_rtt=1 answers the histogram as it was, then clears it.
        s.stats
            .pong_rtt
            .record(std::time::Duration::from_micros(42));
        let rtt = |r: &str| r.split("\"pong_rtt_us\":").nth(1).unwrap()[..12].to_string();
        let (r, _) = reply(route(
            &s,
            &req("GET /mock/stats?reset_pong_rtt=1 HTTP/1.1\r\n\r\n"),
        ));
        assert_eq!(rtt(&r), "{\"count\":1,\"");
        let (r, _) = reply(route(&s, &req("GET /mock/stats HTTP/1.1\r\n\r\n")));
        assert_eq!(rtt(&r), "{\"count\":0,\"");
        let (r, _) = reply(route(&s, &req("GET /nope HTTP/1.1\r\n\r\n")));
        assert!(r.starts_with("HTTP/1.1 404"));
        let (r, _) = reply(route(
            &s,
            &req("POST /api/v3/exchangeInfo HTTP/1.1\r\n\r\n"),
        ));
        assert!(r.starts_with("HTTP/1.1 404"));
        // A stream URL without an upgrade is not a route.
        let (r, _) = reply(route(&s, &req("GET /ws/btcusdt@trade HTTP/1.1\r\n\r\n")));
        assert!(r.starts_with("HTTP/1.1 404"));
    }

    const UP: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn upgrade_routes() {
        let s = shared();
        let up = |path: &str| route(&s, &req(&format!("GET {path} HTTP/1.1\r\n{UP}")));
        match up("/stream?streams=btcusdt@trade/bnbusdt%40trade/btcusdt@trade") {
            Route::Upgrade(u) => {
                assert!(u.combined);
                assert_eq!(u.streams, vec![0, 2]);
                let r = String::from_utf8(u.response).unwrap();
                assert!(r.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
            }
            _ => panic!(),
        }
        match up("/ws/ethusdt@trade") {
            Route::Upgrade(u) => assert!(!u.combined && u.streams == vec![1]),
            _ => panic!(),
        }
        match up("/ws") {
            Route::Upgrade(u) => assert!(!u.combined && u.streams.is_empty()),
            _ => panic!(),
        }
        match up("/stream") {
            Route::Upgrade(u) => assert!(u.combined && u.streams.is_empty()),
            _ => panic!(),
        }
        let (r, keep) = reply(up("/stream?streams=btcusdt@trade/solusdt@trade"));
        assert!(!keep);
        assert!(r.starts_with("HTTP/1.1 400") && r.ends_with(INVALID_SYMBOL));
        let (r, _) = reply(up("/ws/BTCUSDT@trade"));
        assert!(r.ends_with(INVALID_SYMBOL));
        let (r, _) = reply(up("/other"));
        assert!(r.starts_with("HTTP/1.1 404"));
        let (r, _) = reply(route(
            &s,
            &req("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
        ));
        assert!(r.starts_with("HTTP/1.1 400"));
    }
}

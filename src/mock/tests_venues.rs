//! In-process end-to-end tests of the non-Binance-spot-trade venues: a real
//! mock on a loopback port, driven by the blocking test client, checking
//! book sync against `/mock/book`, faults, routing and keepalives.

use std::collections::HashMap;

use super::*;

type Side = HashMap<String, String>;

fn v(s: &str) -> sonic_rs::Value {
    sonic_rs::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn venue_opts() -> MockOptions {
    MockOptions {
        time_base_ms: BASE,
        book_rate: 0,
        book_updates: 200,
        event_rate: 0,
        events_per_stream: 20,
        ..MockOptions::default()
    }
}

/// Applies `[[p, q, ...], ...]` (strings or numbers; Deribit `[action, p, q]`).
fn apply(side: &mut Side, levels: &sonic_rs::Value) {
    for l in levels.as_array().unwrap().iter() {
        let l = l.as_array().unwrap();
        let (p, q) = if l.len() == 3 && l[0].is_str() && !l[2].is_str() {
            (
                sonic_rs::to_string(&l[1]).unwrap(),
                sonic_rs::to_string(&l[2]).unwrap(),
            )
        } else {
            (
                l[0].as_str().unwrap().to_string(),
                l[1].as_str().unwrap().to_string(),
            )
        };
        if q.trim_start_matches(['0', '.']).is_empty() {
            side.remove(&p);
        } else {
            side.insert(p, q);
        }
    }
}

fn true_book(addr: SocketAddr, venue: &str, symbol: &str) -> (u64, Side, Side) {
    let mut c = Client::new(tcp(addr));
    let (head, body) = c.get(&format!("/mock/book?venue={venue}&symbol={symbol}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}{body}");
    let b = v(&body);
    let (mut bids, mut asks) = (Side::new(), Side::new());
    apply(&mut bids, b.get("bids").unwrap());
    apply(&mut asks, b.get("asks").unwrap());
    (
        b.get("last_update_id").unwrap().as_u64().unwrap(),
        bids,
        asks,
    )
}

fn get_ok(addr: SocketAddr, path: &str) -> String {
    let mut c = Client::new(tcp(addr));
    let (head, body) = c.get(path);
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}{body}");
    body
}

/// OKX checksum over a replica (strings as received).
fn replica_checksum(bids: &Side, asks: &Side) -> i32 {
    let sorted = |s: &Side, desc: bool| {
        let mut v: Vec<(String, String)> = s.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
        v.sort_by(|a, b| {
            let (x, y) = (a.0.parse::<f64>().unwrap(), b.0.parse::<f64>().unwrap());
            if desc {
                y.total_cmp(&x)
            } else {
                x.total_cmp(&y)
            }
        });
        v
    };
    book::okx_checksum(&sorted(bids, true), &sorted(asks, false))
}

#[test]
fn e2e_binance_spot_depth_sync_stale_snapshot_and_futures_routing() {
    let server = start(venue_opts()).unwrap();
    let addr = server.addr;
    let mut ws = Client::new(tcp(addr));
    assert!(ws
        .upgrade("/stream?streams=btcusdt@depth@100ms/ethusdt@bookTicker")
        .starts_with("HTTP/1.1 101"));
    // Stale snapshot: older than anything the subscriber can hold.
    get_ok(
        addr,
        "/mock/fault?venue=binance_spot&symbol=BTCUSDT&kind=stale_snapshot",
    );
    let mut diffs = Vec::new();
    let mut tickers = Vec::new();
    while diffs.len() < 200 || tickers.len() < 20 {
        let t = ws.text();
        let x = v(&t);
        let stream = x.get("stream").unwrap().as_str().unwrap().to_string();
        if stream == "btcusdt@depth@100ms" {
            diffs.push(x.get("data").unwrap().clone());
        } else {
            assert_eq!(stream, "ethusdt@bookTicker");
            tickers.push(t);
        }
    }
    for (k, t) in tickers.iter().enumerate() {
        let want = venues::spot_book_ticker(&venue_opts(), 1, k as u64 + 1);
        assert_eq!(
            *t,
            format!("{{\"stream\":\"ethusdt@bookTicker\",\"data\":{want}}}")
        );
    }
    let first_u = diffs[0].get("U").unwrap().as_u64().unwrap();
    let stale = v(&get_ok(addr, "/api/v3/depth?symbol=BTCUSDT&limit=5000"));
    assert!(stale.get("lastUpdateId").unwrap().as_u64().unwrap() < first_u);
    let mut c = Client::new(tcp(addr));
    let (head, body) = c.get("/api/v3/depth?symbol=BTCUSDT&limit=5000");
    assert!(head.contains("X-MBX-USED-WEIGHT-1M: 500\r\n"), "{head}");
    let snap = v(&body);
    let last = snap.get("lastUpdateId").unwrap().as_u64().unwrap();
    let (mut bids, mut asks) = (Side::new(), Side::new());
    apply(&mut bids, snap.get("bids").unwrap());
    apply(&mut asks, snap.get("asks").unwrap());
    let mut prev_u = None;
    for d in &diffs {
        let (uu, u) = (
            d.get("U").unwrap().as_u64().unwrap(),
            d.get("u").unwrap().as_u64().unwrap(),
        );
        if let Some(p) = prev_u {
            assert_eq!(uu, p + 1, "contiguous");
        }
        prev_u = Some(u);
        if u <= last {
            continue;
        }
        apply(&mut bids, d.get("b").unwrap());
        apply(&mut asks, d.get("a").unwrap());
    }
    let (id, tb, ta) = true_book(addr, "binance_spot", "BTCUSDT");
    assert_eq!((id, &bids, &asks), (prev_u.unwrap(), &tb, &ta));

    // USDⓈ-M: depth on /market is accepted silently and never fed.
    let mut m = Client::new(tcp(addr));
    assert!(m
        .upgrade("/market/stream?streams=btcusdt@depth@100ms/ethusdt@aggTrade")
        .starts_with("HTTP/1.1 101"));
    for n in 1..=20 {
        let t = m.text();
        let want = binance_futures::agg_trade(1, n, BASE);
        assert_eq!(
            t,
            format!("{{\"stream\":\"ethusdt@aggTrade\",\"data\":{want}}}")
        );
    }
    let mut p = Client::new(tcp(addr));
    assert!(p
        .upgrade("/public/ws/ethusdt@depth@100ms")
        .starts_with("HTTP/1.1 101"));
    let mut prev = None;
    for _ in 0..200 {
        let d = v(&p.text());
        let pu = d.get("pu").unwrap().as_u64().unwrap();
        if let Some(x) = prev {
            assert_eq!(pu, x);
        }
        prev = Some(d.get("u").unwrap().as_u64().unwrap());
    }
    let fd = v(&get_ok(addr, "/fapi/v1/depth?symbol=ETHUSDT&limit=5"));
    assert_eq!(fd.get("lastUpdateId").unwrap().as_u64(), prev);
    assert!(fd.get("E").is_some() && fd.get("T").is_some());
    let oi = get_ok(addr, "/fapi/v1/openInterest?symbol=BTCUSDT");
    assert_eq!(oi, binance_futures::open_interest(0, 1, BASE));
    let r = get_ok(
        addr,
        "/futures/data/topLongShortPositionRatio?symbol=BTCUSDT&period=5m&limit=1",
    );
    assert_eq!(
        r,
        binance_futures::top_long_short_position_ratio(0, 1, BASE, 1)
    );
    let st = stats(addr);
    let bv = st.get("venues").unwrap();
    assert_eq!(stat(bv, &["binance_derivatives", "connections_total"]), 2);
    assert_eq!(
        stat(bv, &["binance_spot", "faults", "BTCUSDT:stale_snapshot"]),
        1
    );
    assert_eq!(stat(bv, &["binance_spot", "rest", "/api/v3/depth"]), 2);
}

#[test]
fn e2e_okx_bad_checksum_resubscribe_and_idle_close() {
    let server = start(MockOptions {
        okx_idle_timeout_ms: 400,
        ..venue_opts()
    })
    .unwrap();
    let addr = server.addr;
    get_ok(
        addr,
        "/mock/fault?venue=okx_spot&symbol=BTC-USDT&kind=bad_checksum",
    );
    let mut ws = Client::new(tcp(addr));
    assert!(ws.upgrade("/ws/v5/public").starts_with("HTTP/1.1 101"));
    let sub = r#"{"id":"1","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},{"channel":"trades","instId":"ETH-USDT-SWAP"}]}"#;
    ws.send(ws::OP_TEXT, sub.as_bytes());
    let (mut bids, mut asks) = (Side::new(), Side::new());
    let mut trades = Vec::new();
    let mut acks = 0;
    let mut last_seq = None;
    let mut resubscribed = false;
    while trades.len() < 20 || !resubscribed {
        let t = ws.text();
        let x = v(&t);
        if x.get("event").is_some() {
            acks += 1;
            continue;
        }
        let ch = x
            .get("arg")
            .unwrap()
            .get("channel")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        if ch == "trades" {
            trades.push(t);
            continue;
        }
        let d = &x.get("data").unwrap().as_array().unwrap()[0];
        let action = x.get("action").unwrap().as_str().unwrap();
        if action == "snapshot" {
            bids.clear();
            asks.clear();
            assert_eq!(d.get("prevSeqId").unwrap().as_i64(), Some(-1));
        } else {
            assert_eq!(d.get("prevSeqId").unwrap().as_u64(), last_seq);
        }
        last_seq = d.get("seqId").unwrap().as_u64();
        apply(&mut bids, d.get("bids").unwrap());
        apply(&mut asks, d.get("asks").unwrap());
        let sum = d.get("checksum").unwrap().as_i64().unwrap() as i32;
        if sum != replica_checksum(&bids, &asks) {
            assert!(!resubscribed, "only one bad checksum");
            resubscribed = true;
            ws.send(
                ws::OP_TEXT,
                br#"{"op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}"#,
            );
            ws.send(
                ws::OP_TEXT,
                br#"{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}"#,
            );
            // Drop pushes until the fresh snapshot.
            loop {
                let x = v(&ws.text());
                if x.get("action")
                    .and_then(|a| a.as_str().map(str::to_string))
                    .as_deref()
                    == Some("snapshot")
                {
                    let d = &x.get("data").unwrap().as_array().unwrap()[0];
                    bids.clear();
                    asks.clear();
                    apply(&mut bids, d.get("bids").unwrap());
                    apply(&mut asks, d.get("asks").unwrap());
                    last_seq = d.get("seqId").unwrap().as_u64();
                    assert_eq!(
                        replica_checksum(&bids, &asks),
                        d.get("checksum").unwrap().as_i64().unwrap() as i32
                    );
                    break;
                }
                if x.get("arg").unwrap().get("channel").unwrap().as_str() == Some("trades") {
                    trades.push(sonic_rs::to_string(&x).unwrap());
                }
            }
            let (id, tb, ta) = true_book(addr, "okx_spot", "BTC-USDT");
            assert_eq!((id, &tb, &ta), (last_seq.unwrap(), &bids, &asks));
        }
    }
    assert!(resubscribed && acks >= 2);
    for (k, t) in trades.iter().enumerate() {
        assert_eq!(*t, okx::trade(3, k as u64 + 1, BASE));
    }
    let st = stats(addr);
    let ven = st.get("venues").unwrap();
    assert_eq!(stat(ven, &["okx_spot", "resubscriptions", "BTC-USDT"]), 1);
    assert!(ven
        .get("okx_derivatives")
        .unwrap()
        .get("resubscriptions")
        .unwrap()
        .get("ETH-USDT-SWAP")
        .is_none());
    // Text ping → pong, then silence → close 4004.
    ws.send(ws::OP_TEXT, b"ping");
    assert_eq!(ws.text(), "pong");
    let f = ws.frame();
    assert_eq!(f.opcode, ws::OP_CLOSE);
    assert_eq!(&f.payload[..2], &4004u16.to_be_bytes());
}

#[test]
fn e2e_bybit_snapshot_faults_and_deribit_heartbeat() {
    let server = start(venue_opts()).unwrap();
    let addr = server.addr;
    get_ok(
        addr,
        "/mock/fault?venue=bybit_linear&symbol=BTCUSDT&kind=u1",
    );
    let mut ws = Client::new(tcp(addr));
    assert!(ws.upgrade("/v5/public/linear").starts_with("HTTP/1.1 101"));
    ws.send(ws::OP_TEXT, br#"{"req_id":"1","op":"subscribe","args":["orderbook.50.BTCUSDT","allLiquidation.ETHUSDT"]}"#);
    assert!(ws.text().contains("\"success\":true"));
    let (mut bids, mut asks) = (Side::new(), Side::new());
    let (mut liq, mut last_u, mut snaps) = (Vec::new(), 0u64, 0);
    while liq.len() < 20 || last_u < 200 {
        let t = ws.text();
        let x = v(&t);
        let topic = x.get("topic").unwrap().as_str().unwrap().to_string();
        if topic.starts_with("allLiquidation") {
            liq.push(t);
            continue;
        }
        let d = x.get("data").unwrap();
        let u = d.get("u").unwrap().as_u64().unwrap();
        if x.get("type").unwrap().as_str() == Some("snapshot") {
            snaps += 1;
            bids.clear();
            asks.clear();
        } else {
            assert_eq!(u, last_u + 1);
        }
        last_u = u;
        apply(&mut bids, d.get("b").unwrap());
        apply(&mut asks, d.get("a").unwrap());
    }
    assert_eq!(snaps, 2, "initial + u=1 snapshot");
    let (_, tb, ta) = true_book(addr, "bybit_linear", "BTCUSDT");
    assert_eq!((&tb, &ta), (&bids, &asks));
    for (k, t) in liq.iter().enumerate() {
        assert_eq!(*t, bybit::liquidation(1, k as u64 + 1, BASE));
    }
    let ob = v(&get_ok(
        addr,
        "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=500",
    ));
    assert_eq!(
        ob.get("result").unwrap().get("u").unwrap().as_u64(),
        Some(200)
    );

    // Deribit: heartbeat, answered once, then not: closed.
    let mut d = Client::new(tcp(addr));
    assert!(d.upgrade("/ws/api/v2").starts_with("HTTP/1.1 101"));
    d.send(
        ws::OP_TEXT,
        br#"{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":0.2}}"#,
    );
    assert_eq!(d.text(), r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#);
    assert_eq!(d.text(), deribit::TEST_REQUEST);
    d.send(
        ws::OP_TEXT,
        br#"{"jsonrpc":"2.0","id":2,"method":"public/test"}"#,
    );
    assert!(d.text().contains("\"version\""));
    assert_eq!(d.text(), deribit::TEST_REQUEST);
    let f = d.frame();
    assert_eq!(f.opcode, ws::OP_CLOSE);
    let st = stats(addr);
    assert_eq!(
        stat(
            st.get("venues").unwrap(),
            &["deribit_derivatives", "pongs_received"]
        ),
        1
    );
    // Unknown venue / kind are refused.
    let mut c = Client::new(tcp(addr));
    let (h, _) = c.get("/mock/fault?venue=deribit_derivatives&symbol=BTC-PERPETUAL&kind=seq_reset");
    assert!(h.starts_with("HTTP/1.1 400"));
    let (h, _) = c.get("/mock/book?venue=nope&symbol=X");
    assert!(h.starts_with("HTTP/1.1 404"));
}

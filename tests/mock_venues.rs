//! The multi-venue mock as other test suites use it: started in-process,
//! REST and WebSocket answers compared with the mock's public pure functions.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use marketprism::mock::{self, binance_futures, bybit, deribit, okx, MockOptions};

const BASE: u64 = 1_700_000_000_000;

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_string())
}

fn ws(addr: SocketAddr, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tungstenite::client(format!("ws://{addr}{path}"), s)
        .unwrap()
        .0
}

fn next_text(w: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match w.read().unwrap() {
            tungstenite::Message::Text(t) => return t.to_string(),
            _ => continue,
        }
    }
}

#[test]
fn every_venue_on_one_port() {
    let server = mock::start(MockOptions {
        time_base_ms: BASE,
        book_rate: 0,
        book_updates: 50,
        event_rate: 0,
        events_per_stream: 3,
        ..MockOptions::default()
    })
    .unwrap();
    let a = server.addr;

    for (path, needle) in [
        ("/api/v3/depth?symbol=ETHUSDT&limit=5", "\"lastUpdateId\""),
        ("/fapi/v1/exchangeInfo", "\"contractType\":\"PERPETUAL\""),
        (
            "/api/v5/public/instruments?instType=SWAP",
            "\"ctVal\":\"0.01\"",
        ),
        ("/api/v5/market/books?instId=BTC-USDT&sz=5", "\"seqId\""),
        (
            "/v5/market/instruments-info?category=linear",
            "\"LinearPerpetual\"",
        ),
        (
            "/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=5",
            "\"retCode\":0",
        ),
        (
            "/api/v2/public/get_instruments?currency=any&kind=future",
            "\"BTC-PERPETUAL\"",
        ),
        (
            "/mock/book?venue=deribit_derivatives&symbol=ETH-PERPETUAL",
            "\"last_update_id\"",
        ),
    ] {
        let (st, body) = get(a, path);
        assert_eq!(st, 200, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    let (_, r) = get(
        a,
        "/futures/data/globalLongShortAccountRatio?symbol=ETHUSDT&period=5m&limit=1",
    );
    assert_eq!(
        r,
        binance_futures::global_long_short_account_ratio(1, 1, BASE, 1)
    );
    let (_, r) = get(
        a,
        "/api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=BTC&period=5m",
    );
    assert_eq!(r, okx::long_short_account_ratio(0, 1, BASE, 100));
    let (st, _) = get(
        a,
        "/mock/fault?venue=okx_derivatives&symbol=BTC-USDT-SWAP&kind=keepalive",
    );
    assert_eq!(st, 200);

    let mut o = ws(a, "/ws/v5/public");
    o.send(tungstenite::Message::text(
        r#"{"op":"subscribe","args":[{"channel":"funding-rate","instId":"BTC-USDT-SWAP"}]}"#,
    ))
    .unwrap();
    assert!(next_text(&mut o).contains("\"event\":\"subscribe\""));
    for n in 1..=3 {
        assert_eq!(next_text(&mut o), okx::funding(2, n, BASE));
    }

    let mut b = ws(a, "/v5/public/spot");
    b.send(tungstenite::Message::text(
        r#"{"op":"subscribe","args":["publicTrade.ETHUSDT"]}"#,
    ))
    .unwrap();
    assert!(next_text(&mut b).contains("\"success\":true"));
    for n in 1..=3 {
        assert_eq!(
            next_text(&mut b),
            bybit::trade(bybit::Cat::Spot, 1, n, BASE)
        );
    }

    let mut d = ws(a, "/ws/api/v2");
    d.send(tungstenite::Message::text(
        r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["deribit_volatility_index.eth_usd"]}}"#,
    ))
    .unwrap();
    assert!(next_text(&mut d).contains("\"result\":[\"deribit_volatility_index.eth_usd\"]"));
    for n in 1..=3 {
        assert_eq!(next_text(&mut d), deribit::volatility(1, n, BASE));
    }

    let mut f = ws(a, "/market/ws/btcusdt@markPrice@1s");
    for n in 1..=3 {
        assert_eq!(next_text(&mut f), binance_futures::mark_price(0, n, BASE));
    }
}

//! Option parsing tests and in-process end-to-end tests: a real mock on a
//! loopback port, driven by a blocking std (optionally rustls) client that
//! plays the collector.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::ws::{self, Decoded, Frame};
use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn options_parse_all_flags() {
    let o = MockOptions::from_args(&args(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-dir",
        "/tmp/x",
        "--symbols",
        "ethbtc,BTCUSDT,FOO1:foo:Bar",
        "--trades-per-symbol",
        "10",
        "--rate=5",
        "--malformed-every",
        "7",
        "--ping-interval-ms",
        "100",
        "--pong-timeout-ms",
        "300",
        "--time-base-ms",
        "1700000000000",
        "--core",
        "1",
        "--spread",
        "1",
        "--send-log",
        "/tmp/x/send.log",
    ]))
    .unwrap();
    assert!(o.spread);
    assert_eq!(
        o.send_log.as_deref(),
        Some(std::path::Path::new("/tmp/x/send.log"))
    );
    assert_eq!(o.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(o.tls_dir.as_deref(), Some(std::path::Path::new("/tmp/x")));
    let names: Vec<_> = o.symbols.iter().map(|s| s.symbol.as_str()).collect();
    assert_eq!(names, ["ETHBTC", "BTCUSDT", "FOO1"]);
    assert_eq!(
        o.symbols[2],
        MockSymbol {
            symbol: "FOO1".into(),
            base: "FOO".into(),
            quote: "BAR".into()
        }
    );
    assert_eq!(
        (
            o.trades_per_symbol,
            o.rate,
            o.malformed_every,
            o.ping_interval_ms,
            o.pong_timeout_ms,
            o.time_base_ms,
            o.core
        ),
        (10, 5, 7, 100, 300, 1_700_000_000_000, Some(1))
    );
}

#[test]
fn options_parse_venue_flags() {
    let o = MockOptions::from_args(&args(&[
        "--listen=127.0.0.1:0",
        "--book-depth",
        "20",
        "--book-rate",
        "0",
        "--book-updates",
        "300",
        "--event-rate",
        "50",
        "--events-per-stream",
        "7",
        "--okx-checksum",
        "zero",
        "--okx-idle-timeout-ms",
        "500",
        "--futures-ping-interval-ms",
        "1000",
        "--futures-pong-timeout-ms",
        "3000",
        "--book-fault-every",
        "100:gap",
        "--okx-extra-pairs",
        "18",
    ]))
    .unwrap();
    assert_eq!(o.okx_extra_pairs, 18);
    assert_eq!(
        (
            o.book_depth,
            o.book_rate,
            o.book_updates,
            o.event_rate,
            o.events_per_stream
        ),
        (20, 0, 300, 50, 7)
    );
    assert!(!o.okx_checksum);
    assert_eq!(o.book_fault_every, Some((100, book::FaultKind::Gap)));
    assert_eq!(
        (
            o.okx_idle_timeout_ms,
            o.futures_ping_interval_ms,
            o.futures_pong_timeout_ms
        ),
        (500, 1000, 3000)
    );
    let d = MockOptions::from_args(&args(&["--listen", "127.0.0.1:0"])).unwrap();
    assert_eq!((d.book_depth, d.book_rate, d.event_rate), (50, 10, 10));
    assert!(d.okx_checksum);
    assert_eq!(d.okx_extra_pairs, 0);
    assert!(!d.spread && d.send_log.is_none());
    for bad in [
        ["--okx-extra-pairs", "501"],
        ["--okx-extra-pairs", "x"],
        ["--book-depth", "0"],
        ["--okx-checksum", "maybe"],
        ["--book-fault-every", "0:gap"],
        ["--book-fault-every", "5:nope"],
    ] {
        let e = MockOptions::from_args(&args(&["--listen", "127.0.0.1:0", bad[0], bad[1]]))
            .unwrap_err();
        assert!(e.contains(bad[0]), "{e}");
    }
}

#[test]
fn options_defaults() {
    let before = wall_clock_ms();
    let o = MockOptions::from_args(&args(&["--listen", "[::1]:9443"])).unwrap();
    assert_eq!(o.listen, "[::1]:9443".parse().unwrap());
    assert_eq!(o.tls_dir, None);
    assert_eq!(o.symbols, default_symbols());
    assert_eq!((o.trades_per_symbol, o.rate, o.malformed_every), (0, 0, 0));
    assert_eq!((o.ping_interval_ms, o.pong_timeout_ms), (20_000, 60_000));
    assert!(o.time_base_ms >= before && o.time_base_ms <= wall_clock_ms());
    assert_eq!(o.core, None);
}

#[test]
fn options_errors_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "--listen"),
        (&["--listen"], "--listen"),
        (&["--listen", "nope"], "--listen"),
        (&["--listen", "127.0.0.1:0", "--rate", "-1"], "--rate"),
        (&["--listen", "127.0.0.1:0", "--core", "x"], "--core"),
        (
            &["--listen", "127.0.0.1:0", "--symbols", "XXXYYY"],
            "--symbols",
        ),
        (
            &["--listen", "127.0.0.1:0", "--symbols", "A:B"],
            "--symbols",
        ),
        (
            &["--listen", "127.0.0.1:0", "--symbols", "btcusdt,BTCUSDT"],
            "--symbols",
        ),
        (&["--listen", "127.0.0.1:0", "--symbols", ","], "--symbols"),
        (&["--listen", "127.0.0.1:0", "--bogus", "1"], "--bogus"),
        (
            &["--listen", "127.0.0.1:0", "--malformed-every"],
            "--malformed-every",
        ),
    ];
    for (a, flag) in cases {
        let e = MockOptions::from_args(&args(a)).unwrap_err();
        assert!(e.contains(flag), "{a:?}: {e}");
        assert!(e.contains("usage:"), "{a:?}: {e}");
    }
    assert_eq!(
        MockOptions::from_args(&args(&["--help"])).unwrap_err(),
        USAGE
    );
}

// ---------------------------------------------------------------------------
// A blocking client playing the collector.

struct Client<S: Read + Write> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    fn new(s: S) -> Self {
        Client { s, buf: Vec::new() }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        let n = self.s.read(&mut chunk).expect("read");
        assert!(n > 0, "unexpected EOF");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Reads a response head and its Content-Length body.
    fn response(&mut self) -> (String, String) {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            self.fill();
        };
        let head = String::from_utf8(self.buf.drain(..end).collect()).unwrap();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        while self.buf.len() < len {
            self.fill();
        }
        let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
        (head, body)
    }

    fn get(&mut self, path: &str) -> (String, String) {
        write!(self.s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        self.s.flush().unwrap();
        self.response()
    }

    fn upgrade(&mut self, path: &str) -> String {
        self.upgrade_full(path).0
    }

    fn upgrade_full(&mut self, path: &str) -> (String, String) {
        write!(
            self.s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        self.s.flush().unwrap();
        self.response()
    }

    fn frame(&mut self) -> Frame {
        loop {
            match ws::decode_frame(&self.buf, false, usize::MAX) {
                Decoded::Frame(f, used) => {
                    self.buf.drain(..used);
                    return f;
                }
                Decoded::Incomplete => self.fill(),
                Decoded::Error(c, w) => panic!("bad server frame {c} {w}"),
            }
        }
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        let f = ws::encode_client_frame(opcode, payload, [0xa1, 0xb2, 0xc3, 0xd4]);
        self.s.write_all(&f).unwrap();
        self.s.flush().unwrap();
    }

    /// Next text frame, skipping pings (answering them is explicit, since
    /// pongs count towards the 5 messages/s limit).
    fn text(&mut self) -> String {
        loop {
            let f = self.frame();
            match f.opcode {
                ws::OP_TEXT => return String::from_utf8(f.payload).unwrap(),
                ws::OP_PING => {}
                op => panic!("unexpected opcode {op}"),
            }
        }
    }
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn stats(addr: SocketAddr) -> sonic_rs::Value {
    let mut c = Client::new(tcp(addr));
    let (head, body) = c.get("/mock/stats");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    sonic_rs::from_str(&body).unwrap()
}

fn stat(v: &sonic_rs::Value, path: &[&str]) -> u64 {
    let mut cur = v.clone();
    for p in path {
        cur = cur.get(*p).unwrap_or_else(|| panic!("missing {p}")).clone();
    }
    cur.as_u64().unwrap()
}

/// Polls the stats until `cond` holds (the mock updates them asynchronously).
fn wait_stats(addr: SocketAddr, cond: impl Fn(&sonic_rs::Value) -> bool) -> sonic_rs::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = stats(addr);
        if cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "stats never matched: {v:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const BASE: u64 = 1_700_000_000_000;

fn expected_event(sym_index: usize, symbol: &str, id: u64) -> String {
    let t = trade(sym_index, id, BASE);
    format!(
        "{{\"e\":\"trade\",\"E\":{},\"s\":\"{symbol}\",\"t\":{id},\"p\":\"{}\",\"q\":\"{}\",\"T\":{},\"m\":{},\"M\":true}}",
        t.event_time_ms, t.price, t.quantity, t.trade_time_ms, t.is_buyer_maker
    )
}

fn opts() -> MockOptions {
    MockOptions {
        time_base_ms: BASE,
        ..MockOptions::default()
    }
}

#[test]
fn e2e_plain_rest_ws_pings_and_stats() {
    let server = start(MockOptions {
        trades_per_symbol: 3000,
        ping_interval_ms: 250,
        ..opts()
    })
    .unwrap();
    assert!(!server.tls);
    let addr = server.addr;
    assert_ne!(addr.port(), 0);

    // REST with keep-alive: two calls on one connection, weight accumulates.
    let mut rest = Client::new(tcp(addr));
    let (head, body) = rest.get("/api/v3/exchangeInfo");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/json"));
    assert!(head.contains("X-MBX-USED-WEIGHT-1M: 20\r\n"));
    let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    let syms = v.get("symbols").unwrap();
    let names: Vec<String> = syms
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("symbol").unwrap().as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = default_symbols().into_iter().map(|s| s.symbol).collect();
    want.push("LUNAUSDT".into());
    assert_eq!(names, want);
    let (head, _) = rest.get("/api/v3/exchangeInfo");
    assert!(head.contains("X-MBX-USED-WEIGHT-1M: 40\r\n"));
    let (head, body) = rest.get("/nope");
    assert!(head.starts_with("HTTP/1.1 404"));
    assert!(body.starts_with('{'));

    // Combined stream: every id in order, exactly the formula's bytes.
    let mut c = Client::new(tcp(addr));
    let head = c.upgrade("/stream?streams=btcusdt@trade");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    for id in 1..=3000u64 {
        let t = c.text();
        let want = format!(
            "{{\"stream\":\"btcusdt@trade\",\"data\":{}}}",
            expected_event(0, "BTCUSDT", id)
        );
        assert_eq!(t, want);
    }
    // The market is capped: now only pings arrive. Answer one.
    let f = c.frame();
    assert_eq!(f.opcode, ws::OP_PING);
    assert!(std::str::from_utf8(&f.payload)
        .unwrap()
        .parse::<u64>()
        .is_ok());
    c.send(ws::OP_PONG, &f.payload);
    let v = wait_stats(addr, |v| stat(v, &["pongs_received"]) >= 1);
    assert_eq!(stat(&v, &["trades_sent_total"]), 3000);
    assert_eq!(stat(&v, &["trades_sent", "BTCUSDT"]), 3000);
    assert_eq!(stat(&v, &["trades_sent", "ETHUSDT"]), 0);
    assert_eq!(stat(&v, &["connections_total"]), 1);
    assert_eq!(stat(&v, &["connections_open"]), 1);
    assert!(stat(&v, &["pings_sent"]) >= 1);
    assert_eq!(stat(&v, &["pongs_mismatched"]), 0);
    assert_eq!(stat(&v, &["malformed_sent"]), 0);

    // Control frames: subscribe (ETH starts at 1: nobody consumed it yet),
    // list, unknown stream, invalid JSON.
    c.send(
        ws::OP_TEXT,
        br#"{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}"#,
    );
    assert_eq!(c.text(), r#"{"result":null,"id":1}"#);
    for id in 1..=5u64 {
        let want = format!(
            "{{\"stream\":\"ethusdt@trade\",\"data\":{}}}",
            expected_event(1, "ETHUSDT", id)
        );
        assert_eq!(c.text(), want);
    }
    // Drain the rest of the ETH market before the next control reply.
    for _ in 6..=3000u64 {
        c.text();
    }
    // Pace the control messages: Binance allows 5 per second.
    std::thread::sleep(Duration::from_millis(1000));
    c.send(ws::OP_TEXT, br#"{"method":"LIST_SUBSCRIPTIONS","id":2}"#);
    assert_eq!(
        c.text(),
        r#"{"result":["btcusdt@trade","ethusdt@trade"],"id":2}"#
    );
    c.send(
        ws::OP_TEXT,
        br#"{"method":"SUBSCRIBE","params":["xyz@trade"],"id":3}"#,
    );
    assert_eq!(
        c.text(),
        r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":3}"#
    );
    c.send(ws::OP_TEXT, b"{oops");
    assert_eq!(
        c.text(),
        r#"{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1","id":null}"#
    );
    let v = stats(addr);
    assert_eq!(stat(&v, &["subscribe_requests"]), 2);
    assert_eq!(stat(&v, &["control_rejected"]), 2);
    assert_eq!(stat(&v, &["trades_sent", "ETHUSDT"]), 3000);

    // Close handshake: the code is echoed, then EOF.
    c.send(ws::OP_CLOSE, &1000u16.to_be_bytes());
    loop {
        let f = c.frame();
        if f.opcode == ws::OP_CLOSE {
            assert_eq!(f.payload, 1000u16.to_be_bytes());
            break;
        }
    }
    let mut rest_bytes = [0u8; 16];
    assert_eq!(c.s.read(&mut rest_bytes).unwrap_or(0), 0);
    wait_stats(addr, |v| stat(v, &["connections_open"]) == 0);

    // A URL naming an unknown stream is refused before the upgrade.
    let mut bad = Client::new(tcp(addr));
    let (head, body) = bad.upgrade_full("/stream?streams=btcusdt@trade/nope@trade");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(body, r#"{"code":-1121,"msg":"Invalid symbol."}"#);
    let mut tail = Vec::new();
    let _ = bad.s.read_to_end(&mut tail);
    assert!(tail.is_empty(), "connection closed after the 400");

    // Malformed request heads get a 400.
    let mut junk = tcp(addr);
    junk.write_all(b"NOT HTTP\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = junk.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
}

#[test]
fn e2e_malformed_cycle_raw_ws_and_late_subscriber() {
    let server = start(MockOptions {
        trades_per_symbol: 20,
        malformed_every: 3,
        symbols: MockOptions::from_args(&args(&[
            "--listen",
            "127.0.0.1:0",
            "--symbols",
            "ETHBTC,BTCEUR",
        ]))
        .unwrap()
        .symbols,
        ..opts()
    })
    .unwrap();
    let addr = server.addr;
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws/btceur@trade").starts_with("HTTP/1.1 101"));
    let mut ids = Vec::new();
    let mut kinds = Vec::new();
    while ids.len() < 20 {
        let f = c.frame();
        match f.opcode {
            ws::OP_BINARY => {
                assert_eq!(f.payload, [0xff, 0xfe, 0x00]);
                kinds.push("binary_frame");
            }
            ws::OP_TEXT => {
                let t = String::from_utf8(f.payload).unwrap();
                if t == r#"{"e":"weird","E":1}"# {
                    kinds.push("unknown_event");
                } else if t.contains(r#""p":"12.3.4""#) {
                    kinds.push("invalid_number");
                } else if sonic_rs::from_str::<sonic_rs::Value>(&t).is_err() {
                    assert!(t.starts_with(r#"{"e":"trade","#), "{t}");
                    kinds.push("truncated_json");
                } else if t.contains(r#""p":""#) {
                    let id = ids.len() as u64 + 1;
                    assert_eq!(t, expected_event(1, "BTCEUR", id));
                    ids.push(id);
                } else {
                    kinds.push("wrong_type");
                }
            }
            ws::OP_PING => {}
            op => panic!("opcode {op}"),
        }
    }
    assert_eq!(
        kinds,
        [
            "truncated_json",
            "wrong_type",
            "unknown_event",
            "invalid_number",
            "binary_frame",
            "truncated_json"
        ]
    );
    let v = wait_stats(addr, |v| stat(v, &["malformed_sent"]) == 6);
    assert_eq!(stat(&v, &["malformed_by_kind", "truncated_json"]), 2);
    assert_eq!(stat(&v, &["malformed_by_kind", "binary_frame"]), 1);
    assert_eq!(stat(&v, &["trades_sent", "BTCEUR"]), 20);

    // A second connection to the exhausted market receives nothing but is kept.
    let mut late = Client::new(tcp(addr));
    assert!(late.upgrade("/ws").starts_with("HTTP/1.1 101"));
    late.send(
        ws::OP_TEXT,
        br#"{"method":"SUBSCRIBE","params":["btceur@trade"],"id":"a"}"#,
    );
    assert_eq!(late.text(), r#"{"result":null,"id":"a"}"#);
    late.s
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 64];
    let e = late.s.read(&mut b).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    let v = stats(addr);
    assert_eq!(stat(&v, &["connections_open"]), 2);
}

#[test]
fn e2e_rate_limit_and_pong_timeout() {
    let server = start(MockOptions {
        ping_interval_ms: 100,
        pong_timeout_ms: 300,
        trades_per_symbol: 1,
        ..opts()
    })
    .unwrap();
    let addr = server.addr;

    // Six messages inside one second: Binance (and the mock) hang up.
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws").starts_with("HTTP/1.1 101"));
    for i in 0..6 {
        c.send(ws::OP_PING, format!("{i}").as_bytes());
    }
    let mut pongs = 0;
    loop {
        let f = c.frame();
        match f.opcode {
            ws::OP_PONG => pongs += 1,
            ws::OP_CLOSE => {
                assert_eq!(&f.payload[..2], &ws::CLOSE_POLICY.to_be_bytes());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(pongs, 5);

    // Never answering pings: closed after the pong timeout.
    let t0 = Instant::now();
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws").starts_with("HTTP/1.1 101"));
    loop {
        let f = c.frame();
        if f.opcode == ws::OP_CLOSE {
            break;
        }
        assert_eq!(f.opcode, ws::OP_PING);
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "{:?}",
        t0.elapsed()
    );
    let v = wait_stats(addr, |v| stat(v, &["connections_open"]) == 0);
    assert_eq!(stat(&v, &["pong_timeouts"]), 1);
    assert_eq!(stat(&v, &["connections_total"]), 2);
}

#[test]
fn e2e_rate_mode_paces_trades() {
    let server = start(MockOptions {
        rate: 200,
        symbols: default_symbols()[..2].to_vec(),
        ..opts()
    })
    .unwrap();
    let addr = server.addr;
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Client::new(tcp(addr));
    assert!(c
        .upgrade("/stream?streams=ethusdt@trade")
        .starts_with("HTTP/1.1 101"));
    // Subscribing joins the market "now": the first id is well past 1.
    let first: sonic_rs::Value = sonic_rs::from_str(&c.text()).unwrap();
    let first_id = first
        .get("data")
        .unwrap()
        .get("t")
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(first_id > 20, "{first_id}");
    let t0 = Instant::now();
    let mut last = first_id;
    while t0.elapsed() < Duration::from_millis(500) {
        let v: sonic_rs::Value = sonic_rs::from_str(&c.text()).unwrap();
        let id = v.get("data").unwrap().get("t").unwrap().as_u64().unwrap();
        assert_eq!(id, last + 1);
        last = id;
    }
    let got = last - first_id;
    assert!((50..=200).contains(&got), "{got} trades in 0.5 s at 200/s");
}

#[test]
fn e2e_send_log_stamps_every_trade_sent_once() {
    use crate::mock::send_log::SendStamp;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("send.log");
    let syms = default_symbols()[..2].to_vec();
    let names: Vec<String> = syms.iter().map(|s| s.symbol.clone()).collect();
    let t0 = crate::sys::now_ns();
    let server = start(MockOptions {
        rate: 200,
        spread: true,
        send_log: Some(log.clone()),
        symbols: syms,
        ..opts()
    })
    .unwrap();
    let mut c = Client::new(tcp(server.addr));
    let path = format!(
        "/stream?streams={}@trade/{}@trade",
        names[0].to_lowercase(),
        names[1].to_lowercase()
    );
    assert!(c.upgrade(&path).starts_with("HTTP/1.1 101"));
    let mut got: Vec<(usize, u64)> = Vec::new();
    while got.len() < 100 {
        let v: sonic_rs::Value = sonic_rs::from_str(&c.text()).unwrap();
        let d = v.get("data").unwrap();
        let sym = d.get("s").unwrap().as_str().unwrap();
        let i = names.iter().position(|n| n == sym).unwrap();
        got.push((i, d.get("t").unwrap().as_u64().unwrap()));
    }
    // A chunk is stamped after its flush, possibly after the client read
    // it: wait (bounded) until the stamps cover the last frame read.
    let (li, lid) = *got.last().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let stamps = loop {
        let st = SendStamp::decode_all(&std::fs::read(&log).unwrap());
        if st.iter().any(|s| s.symbol == li as u64 && s.last >= lid) {
            break st;
        }
        assert!(
            Instant::now() < end,
            "trade {lid} of symbol {li} never stamped"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // Per symbol the stamped ranges follow each other without gap or overlap.
    for i in 0..2u64 {
        let r: Vec<&SendStamp> = stamps.iter().filter(|s| s.symbol == i).collect();
        assert!(!r.is_empty(), "no stamp for symbol {i}");
        for w in r.windows(2) {
            assert_eq!(w[1].first, w[0].last + 1, "{:?}", w);
            assert!(w[1].sent_ns >= w[0].sent_ns);
        }
    }
    for s in &stamps {
        assert!(s.first <= s.last && s.sent_ns >= t0, "{s:?}");
    }
    // Every frame the client read is covered by exactly one stamp.
    for (i, id) in got {
        let cover = stamps
            .iter()
            .filter(|s| s.symbol == i as u64 && (s.first..=s.last).contains(&id))
            .count();
        assert_eq!(cover, 1, "symbol {i} trade {id}");
    }
}

#[test]
fn e2e_tls_with_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("tls");
    let server = start(MockOptions {
        tls_dir: Some(tls_dir.clone()),
        trades_per_symbol: 500,
        ..opts()
    })
    .unwrap();
    assert!(server.tls);
    let addr = server.addr;
    for f in ["ca.pem", "server.pem", "server.key"] {
        assert!(tls_dir.join(f).is_file(), "{f}");
    }

    use rustls_pki_types::pem::PemObject;
    let ca = rustls_pki_types::CertificateDer::from_pem_file(tls_dir.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let cfg = Arc::new(cfg);
    let connect = || {
        let conn =
            rustls::ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
        Client::new(rustls::StreamOwned::new(conn, tcp(addr)))
    };

    let mut rest = connect();
    let (head, body) = rest.get("/api/v3/exchangeInfo");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"LUNAUSDT\""));
    assert_eq!(rest.s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));

    let mut c = connect();
    assert!(c
        .upgrade("/stream?streams=bnbusdt@trade")
        .starts_with("HTTP/1.1 101"));
    for id in 1..=500u64 {
        let want = format!(
            "{{\"stream\":\"bnbusdt@trade\",\"data\":{}}}",
            expected_event(2, "BNBUSDT", id)
        );
        assert_eq!(c.text(), want);
    }
    let v = wait_stats_tls(&connect);
    assert_eq!(stat(&v, &["trades_sent", "BNBUSDT"]), 500);
}

fn wait_stats_tls<S: Read + Write>(connect: &dyn Fn() -> Client<S>) -> sonic_rs::Value {
    let mut c = connect();
    let (_, body) = c.get("/mock/stats");
    sonic_rs::from_str(&body).unwrap()
}

#[path = "tests_venues.rs"]
mod venues_e2e;

#[path = "tests_faults.rs"]
mod faults_e2e;

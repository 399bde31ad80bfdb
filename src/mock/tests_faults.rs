//! In-process end-to-end tests of the connection and REST faults: a real
//! mock on a loopback port, the blocking test client, and `/mock/stats`.

use super::*;

fn faults_opts(c: ConnFaults) -> MockOptions {
    MockOptions {
        conn_faults: c,
        ..opts()
    }
}

/// Every frame until the server ends the TCP connection.
fn frames_until_eof<S: Read + Write>(c: &mut Client<S>) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match ws::decode_frame(&c.buf, false, usize::MAX) {
            Decoded::Frame(f, used) => {
                c.buf.drain(..used);
                out.push(f);
            }
            Decoded::Incomplete => match c.s.read(&mut chunk) {
                Ok(0) => {
                    assert!(c.buf.is_empty(), "EOF inside a frame");
                    return out;
                }
                Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            },
            Decoded::Error(code, why) => panic!("bad server frame {code} {why}"),
        }
    }
}

/// Asserts nothing at all arrives for `ms`.
fn assert_silent<S: Read + Write>(c: &mut Client<S>, set_timeout: impl Fn(Duration), ms: u64) {
    assert!(c.buf.is_empty(), "{} bytes pending", c.buf.len());
    set_timeout(Duration::from_millis(ms));
    let mut b = [0u8; 64];
    match c.s.read(&mut b) {
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        Ok(n) => panic!("expected silence, got {n} bytes"),
    }
}

fn texts(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            assert_eq!(f.opcode, ws::OP_TEXT);
            String::from_utf8(f.payload.clone()).unwrap()
        })
        .collect()
}

fn fault_stat(addr: SocketAddr, k: &str) -> u64 {
    stat(&stats(addr), &["faults", k])
}

#[test]
fn options_parse_fault_flags() {
    let o = MockOptions::from_args(&args(&[
        "--listen",
        "127.0.0.1:0",
        "--drop-after",
        "5",
        "--drop-random=0.25",
        "--fault-seed",
        "7",
        "--stall-after",
        "6",
        "--garbage-every",
        "3",
        "--oversized-every",
        "9",
        "--lifetime-ms",
        "1000",
        "--shutdown-notice-ms",
        "200",
        "--refuse-ms",
        "300",
    ]))
    .unwrap();
    assert_eq!(
        o.conn_faults,
        ConnFaults {
            drop_after: 5,
            drop_random_ppb: 250_000_000,
            stall_after: 6,
            garbage_every: 3,
            oversized_every: 9,
            lifetime_ms: 1000,
            notice_ms: 200,
        }
    );
    assert_eq!((o.fault_seed, o.refuse_ms), (7, 300));
    let d = MockOptions::from_args(&args(&["--listen", "127.0.0.1:0"])).unwrap();
    assert_eq!(d.conn_faults, ConnFaults::default());
    assert_eq!((d.fault_seed, d.refuse_ms), (fault::DEFAULT_SEED, 0));
    for bad in [["--drop-random", "2"], ["--drop-after", "x"]] {
        let e = MockOptions::from_args(&args(&["--listen", "127.0.0.1:0", bad[0], bad[1]]))
            .unwrap_err();
        assert!(e.contains(bad[0]), "{e}");
    }
    for flag in [
        "--drop-after",
        "--drop-random",
        "--fault-seed",
        "--stall-after",
        "--garbage-every",
        "--oversized-every",
        "--lifetime-ms",
        "--shutdown-notice-ms",
        "--refuse-ms",
    ] {
        assert!(USAGE.contains(flag), "{flag}");
    }
}

#[test]
fn e2e_drop_after_exact_frames_without_close_frame() {
    let server = start(MockOptions {
        trades_per_symbol: 1000,
        event_rate: 0,
        events_per_stream: 100,
        ..faults_opts(ConnFaults {
            drop_after: 10,
            ..Default::default()
        })
    })
    .unwrap();
    let addr = server.addr;
    let mut c = Client::new(tcp(addr));
    assert!(c
        .upgrade("/stream?streams=btcusdt@trade")
        .starts_with("HTTP/1.1 101"));
    let got = texts(&frames_until_eof(&mut c));
    let want: Vec<String> = (1..=10)
        .map(|id| {
            format!(
                "{{\"stream\":\"btcusdt@trade\",\"data\":{}}}",
                expected_event(0, "BTCUSDT", id)
            )
        })
        .collect();
    assert_eq!(got, want, "exactly 10 data frames, no close frame");
    // New connections get the same treatment.
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws/ethusdt@trade").starts_with("HTTP/1.1 101"));
    assert_eq!(frames_until_eof(&mut c).len(), 10);

    // Runtime, one venue: OKX drops after 3 data frames (the ack is no data).
    let mut r = Client::new(tcp(addr));
    let (h, body) = r.get("/mock/conn_fault?venue=okx_spot&drop_after=3");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}{body}");
    let b: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    assert_eq!(stat(&b, &["venues", "okx", "drop_after"]), 3);
    assert_eq!(stat(&b, &["venues", "bybit_spot", "drop_after"]), 10);
    let mut o = Client::new(tcp(addr));
    assert!(o.upgrade("/ws/v5/public").starts_with("HTTP/1.1 101"));
    o.send(
        ws::OP_TEXT,
        br#"{"op":"subscribe","args":[{"channel":"trades","instId":"ETH-USDT"}]}"#,
    );
    let got = texts(&frames_until_eof(&mut o));
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].contains("\"event\":\"subscribe\""));
    for (k, t) in got[1..].iter().enumerate() {
        assert_eq!(*t, okx::trade(1, k as u64 + 1, BASE));
    }
    // drop_random=1: every data frame is the last.
    r.get("/mock/conn_fault?venue=binance_spot&clear=1&drop_random=1");
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws/bnbusdt@trade").starts_with("HTTP/1.1 101"));
    assert_eq!(frames_until_eof(&mut c).len(), 1);
    let v = wait_stats(addr, |v| stat(v, &["connections_open"]) == 0);
    assert_eq!(stat(&v, &["faults", "dropped"]), 4);
    // The other stats keep their shape.
    assert_eq!(stat(&v, &["connections_total"]), 3);
}

#[test]
fn e2e_stall_keeps_socket_open_and_silent() {
    let server = start(MockOptions {
        trades_per_symbol: 1000,
        ping_interval_ms: 50,
        pong_timeout_ms: 0,
        event_rate: 0,
        events_per_stream: 100,
        ..faults_opts(ConnFaults {
            stall_after: 5,
            ..Default::default()
        })
    })
    .unwrap();
    let addr = server.addr;
    let mut c = Client::new(tcp(addr));
    assert!(c
        .upgrade("/stream?streams=btcusdt@trade")
        .starts_with("HTTP/1.1 101"));
    for id in 1..=5 {
        let want = format!(
            "{{\"stream\":\"btcusdt@trade\",\"data\":{}}}",
            expected_event(0, "BTCUSDT", id)
        );
        assert_eq!(c.text(), want);
    }
    let sock = c.s.try_clone().unwrap();
    let set = |d| sock.set_read_timeout(Some(d)).unwrap();
    // No data, no pings (interval 50 ms), no pong, no control reply.
    assert_silent(&mut c, set, 300);
    c.send(ws::OP_PING, b"hello");
    c.send(ws::OP_TEXT, br#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#);
    assert_silent(&mut c, set, 300);
    let v = stats(addr);
    assert_eq!(stat(&v, &["connections_open"]), 1, "socket kept open");
    assert_eq!(stat(&v, &["faults", "stalled"]), 1);
    // The mock still reads: a client close, then the client leaving, ends it.
    c.send(ws::OP_CLOSE, &1000u16.to_be_bytes());
    assert_silent(&mut c, set, 200);
    drop(c);
    drop(sock);
    wait_stats(addr, |v| stat(v, &["connections_open"]) == 0);

    // Other venues too, set at runtime: Deribit stalls after 2 trades.
    let mut r = Client::new(tcp(addr));
    r.get("/mock/conn_fault?clear=1&venue=deribit_derivatives&stall_after=2");
    let mut d = Client::new(tcp(addr));
    assert!(d.upgrade("/ws/api/v2").starts_with("HTTP/1.1 101"));
    d.send(
        ws::OP_TEXT,
        br#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["trades.BTC-PERPETUAL.raw"]}}"#,
    );
    assert!(d.text().contains("\"result\""));
    assert_eq!(d.text(), deribit::trades(0, 1, BASE, "raw"));
    assert_eq!(d.text(), deribit::trades(0, 2, BASE, "raw"));
    let sock = d.s.try_clone().unwrap();
    d.send(
        ws::OP_TEXT,
        br#"{"jsonrpc":"2.0","id":2,"method":"public/test"}"#,
    );
    assert_silent(&mut d, |t| sock.set_read_timeout(Some(t)).unwrap(), 300);
    assert_eq!(fault_stat(addr, "stalled"), 2);
}

#[test]
fn e2e_garbage_and_oversized_cadence_without_consuming_ids() {
    let server = start(MockOptions {
        trades_per_symbol: 40,
        event_rate: 0,
        events_per_stream: 20,
        ..faults_opts(ConnFaults {
            garbage_every: 4,
            oversized_every: 10,
            ..Default::default()
        })
    })
    .unwrap();
    let addr = server.addr;
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws/btcusdt@trade").starts_with("HTTP/1.1 101"));
    let mut ids = Vec::new();
    let mut extra = Vec::new();
    while ids.len() < 40 || extra.len() < 14 {
        let f = c.frame();
        assert_eq!(f.opcode, ws::OP_TEXT);
        let Ok(t) = std::str::from_utf8(&f.payload) else {
            extra.push(format!("invalid_utf8@{}", ids.len()));
            continue;
        };
        if f.payload.len() == fault::OVERSIZED_LEN {
            let _: sonic_rs::Value = sonic_rs::from_str(t).unwrap();
            extra.push(format!("oversized@{}", ids.len()));
            continue;
        }
        let id = ids.len() as u64 + 1;
        if t == expected_event(0, "BTCUSDT", id) {
            ids.push(id);
            continue;
        }
        let kind = match sonic_rs::from_str::<sonic_rs::Value>(t) {
            Err(_) if t.starts_with('{') => "truncated_json",
            Err(_) => "not_json",
            Ok(v) if v.get("e").and_then(|e| e.as_str()) == Some("mockUnknown") => "unknown_event",
            Ok(v) => {
                assert!(v.get("t").unwrap().is_str(), "{t}");
                "wrong_types"
            }
        };
        extra.push(format!("{kind}@{}", ids.len()));
    }
    assert_eq!(ids, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        extra,
        [
            "not_json@4",
            "truncated_json@8",
            "oversized@10",
            "wrong_types@12",
            "invalid_utf8@16",
            "unknown_event@20",
            "oversized@20",
            "not_json@24",
            "truncated_json@28",
            "oversized@30",
            "wrong_types@32",
            "invalid_utf8@36",
            "unknown_event@40",
            "oversized@40",
        ]
    );
    let v = wait_stats(addr, |v| stat(v, &["faults", "garbage"]) == 10);
    assert_eq!(stat(&v, &["faults", "oversized"]), 4);
    assert_eq!(stat(&v, &["trades_sent", "BTCUSDT"]), 40);

    // Runtime, Bybit linear only: every 2nd frame; all trades still arrive.
    let mut r = Client::new(tcp(addr));
    r.get("/mock/conn_fault?clear=1");
    r.get("/mock/conn_fault?venue=bybit_linear&garbage_every=2");
    let mut b = Client::new(tcp(addr));
    assert!(b.upgrade("/v5/public/linear").starts_with("HTTP/1.1 101"));
    b.send(
        ws::OP_TEXT,
        br#"{"op":"subscribe","args":["publicTrade.ETHUSDT"]}"#,
    );
    let mut trades = Vec::new();
    let mut junk = 0;
    let mut first = true;
    while trades.len() < 10 {
        let f = b.frame();
        let t = String::from_utf8_lossy(&f.payload).to_string();
        if first {
            assert!(t.contains("\"success\":true"), "{t}");
            first = false;
        } else if t.starts_with("{\"topic\":\"publicTrade.ETHUSDT\"")
            && sonic_rs::from_str::<sonic_rs::Value>(&t).is_ok()
            && !t.contains("\"ts\":\"soon\"")
        {
            trades.push(t);
        } else {
            junk += 1;
        }
    }
    for (k, t) in trades.iter().enumerate() {
        assert_eq!(*t, bybit::trade(bybit::Cat::Linear, 1, k as u64 + 1, BASE));
    }
    assert!((4..=5).contains(&junk), "{junk}");
}

#[test]
fn e2e_lifetime_close_with_venue_notice() {
    let server = start(MockOptions {
        rate: 50,
        event_rate: 50,
        ..faults_opts(ConnFaults {
            lifetime_ms: 700,
            notice_ms: 350,
            ..Default::default()
        })
    })
    .unwrap();
    let addr = server.addr;
    // (path, subscribe message, expected notice builder)
    type Check = fn(&str, &str) -> bool;
    let binance_comb: Check = |t, _| {
        let v: sonic_rs::Value = sonic_rs::from_str(t).unwrap();
        let d = v.get("data").unwrap();
        v.get("stream").unwrap().as_str() == Some("!serverShutdown")
            && d.get("e").unwrap().as_str() == Some("serverShutdown")
            && d.get("E").unwrap().as_u64().unwrap() > BASE
            && d.as_object().unwrap().len() == 2
            && v.as_object().unwrap().len() == 2
    };
    let binance_raw: Check = |t, _| {
        let v: sonic_rs::Value = sonic_rs::from_str(t).unwrap();
        v.get("e").unwrap().as_str() == Some("serverShutdown")
            && v.get("E").unwrap().as_u64().unwrap() > BASE
            && v.as_object().unwrap().len() == 2
    };
    let okx_notice: Check = |t, conn_id| {
        t == format!("{{\"event\":\"notice\",\"code\":\"64008\",\"msg\":\"The connection will soon be closed for a service upgrade. Please reconnect.\",\"connId\":\"{conn_id}\"}}")
    };
    let cases: [(&str, &[u8], Option<Check>); 6] = [
        ("/stream?streams=btcusdt@trade", b"", Some(binance_comb)),
        ("/ws/ethusdt@trade", b"", Some(binance_raw)),
        ("/market/ws/btcusdt@aggTrade", b"", Some(binance_raw)),
        (
            "/ws/v5/public",
            br#"{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}"#,
            Some(okx_notice),
        ),
        (
            "/v5/public/spot",
            br#"{"op":"subscribe","args":["publicTrade.BTCUSDT"]}"#,
            None,
        ),
        (
            "/ws/api/v2",
            br#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["trades.BTC-PERPETUAL.raw"]}}"#,
            None,
        ),
    ];
    let mut handles = Vec::new();
    for (path, sub, check) in cases {
        handles.push(std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut c = Client::new(tcp(addr));
            assert!(c.upgrade(path).starts_with("HTTP/1.1 101"), "{path}");
            if !sub.is_empty() {
                c.send(ws::OP_TEXT, sub);
            }
            let mut conn_id = String::new();
            let mut notice_at = None;
            let mut data_after_notice = 0;
            loop {
                let f = c.frame();
                let el = t0.elapsed();
                if f.opcode == ws::OP_CLOSE {
                    assert_eq!(&f.payload[..2], &ws::CLOSE_GOING_AWAY.to_be_bytes());
                    assert!(el >= Duration::from_millis(690), "{path}: closed at {el:?}");
                    assert!(el < Duration::from_millis(2000), "{path}: closed at {el:?}");
                    break;
                }
                if f.opcode != ws::OP_TEXT {
                    continue;
                }
                let t = String::from_utf8(f.payload).unwrap();
                if let Some(i) = t.find("\"connId\":\"") {
                    if conn_id.is_empty() {
                        conn_id = t[i + 10..].split('"').next().unwrap().to_string();
                    }
                }
                if t.contains("serverShutdown") || t.contains("\"notice\"") {
                    let check = check.unwrap_or_else(|| panic!("{path}: unexpected {t}"));
                    assert!(check(&t, &conn_id), "{path}: {t}");
                    assert!(notice_at.is_none(), "one notice");
                    assert!(el >= Duration::from_millis(340), "{path}: notice at {el:?}");
                    assert!(el < Duration::from_millis(690), "{path}: notice at {el:?}");
                    notice_at = Some(el);
                } else if notice_at.is_some() {
                    data_after_notice += 1;
                }
            }
            assert_eq!(notice_at.is_some(), check.is_some(), "{path}");
            if check.is_some() {
                assert!(data_after_notice > 3, "{path}: {data_after_notice}");
            }
            // Then the connection ends.
            let mut rest = Vec::new();
            let _ = c.s.read_to_end(&mut rest);
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let v = wait_stats(addr, |v| stat(v, &["faults", "lifetime_closed"]) == 6);
    assert_eq!(stat(&v, &["faults", "notices"]), 4);
}

#[test]
fn e2e_refuse_window_then_accept() {
    let server = start(MockOptions {
        refuse_ms: 400,
        trades_per_symbol: 5,
        ..opts()
    })
    .unwrap();
    let addr = server.addr;
    let t0 = Instant::now();
    let mut c = Client::new(tcp(addr));
    let (head, body) = c.upgrade_full("/stream?streams=btcusdt@trade");
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{head}"
    );
    assert!(head.contains("Connection: close"));
    let _: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    let mut tail = Vec::new();
    let _ = c.s.read_to_end(&mut tail);
    assert!(tail.is_empty(), "closed after the 503");
    // REST keeps working.
    let (head, _) = Client::new(tcp(addr)).get("/api/v3/exchangeInfo");
    assert!(head.starts_with("HTTP/1.1 200"));
    let mut refused = 1;
    while t0.elapsed() < Duration::from_millis(380) {
        let mut c = Client::new(tcp(addr));
        let head = c.upgrade("/ws/v5/public");
        if t0.elapsed() < Duration::from_millis(380) {
            assert!(head.starts_with("HTTP/1.1 503"), "{head}");
            refused += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(
        450u64.saturating_sub(t0.elapsed().as_millis() as u64),
    ));
    let mut c = Client::new(tcp(addr));
    assert!(c.upgrade("/ws/btcusdt@trade").starts_with("HTTP/1.1 101"));
    assert_eq!(c.text(), expected_event(0, "BTCUSDT", 1));
    assert!(fault_stat(addr, "refused") >= refused);

    // Runtime, one venue: OKX refused, Binance spot accepted.
    let before = fault_stat(addr, "refused");
    let (_, body) = Client::new(tcp(addr)).get("/mock/conn_fault?venue=okx&refuse_ms=5000");
    assert!(body.contains("\"refuse_ms_left\":"), "{body}");
    assert!(Client::new(tcp(addr))
        .upgrade("/ws/v5/public")
        .starts_with("HTTP/1.1 503"));
    assert!(Client::new(tcp(addr))
        .upgrade("/ws/ethusdt@trade")
        .starts_with("HTTP/1.1 101"));
    assert_eq!(fault_stat(addr, "refused"), before + 1);
    Client::new(tcp(addr)).get("/mock/conn_fault?venue=okx&clear=1");
    assert!(Client::new(tcp(addr))
        .upgrade("/ws/v5/public")
        .starts_with("HTTP/1.1 101"));
}

#[test]
fn e2e_conn_fault_endpoint_validation() {
    let server = start(opts()).unwrap();
    let addr = server.addr;
    let mut r = Client::new(tcp(addr));
    let (h, _) = r.get("/mock/conn_fault?venue=nope&drop_after=1");
    assert!(h.starts_with("HTTP/1.1 404"), "{h}");
    let (h, _) = r.get("/mock/conn_fault?dropafter=1");
    assert!(h.starts_with("HTTP/1.1 400"), "{h}");
    let (h, _) = r.get("/mock/conn_fault?drop_random=1.5");
    assert!(h.starts_with("HTTP/1.1 400"), "{h}");
    let (h, body) =
        r.get("/mock/conn_fault?garbage_every=3&lifetime_ms=100&notice_ms=50&drop_random=0.5");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    for slot in fault::SLOTS {
        assert_eq!(stat(&v, &["venues", slot, "garbage_every"]), 3);
        assert_eq!(stat(&v, &["venues", slot, "notice_ms"]), 50);
        let p = v["venues"][slot]["drop_random"].as_f64().unwrap();
        assert!((p - 0.5).abs() < 1e-9);
    }
    let (_, body) = r.get("/mock/conn_fault?venue=deribit_derivatives&clear=1");
    let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    assert_eq!(
        stat(&v, &["venues", "deribit_derivatives", "garbage_every"]),
        0
    );
    assert_eq!(stat(&v, &["venues", "okx", "garbage_every"]), 3);
    let (_, body) = r.get("/mock/conn_fault?clear=1");
    assert!(!body.contains(":3,"), "{body}");
    let s = stats(addr);
    for k in [
        "dropped",
        "stalled",
        "garbage",
        "oversized",
        "lifetime_closed",
        "notices",
        "refused",
        "rest_errors",
        "rest_timeouts",
    ] {
        assert_eq!(stat(&s, &["faults", k]), 0, "{k}");
    }
    assert!(s.get("venues").is_some() && s.get("trades_sent").is_some());
}

#[test]
fn e2e_rest_fault_500_and_timeout() {
    let server = start(opts()).unwrap();
    let addr = server.addr;
    let mut r = Client::new(tcp(addr));
    let (h, _) = r.get("/mock/rest_fault?status=500&count=2");
    assert!(h.starts_with("HTTP/1.1 200"));
    for path in [
        "/api/v3/depth?symbol=BTCUSDT",
        "/api/v5/market/books?instId=BTC-USDT",
    ] {
        let (h, body) = r.get(path);
        assert!(h.starts_with("HTTP/1.1 500 Internal Server Error"), "{h}");
        let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
        assert!(v.get("msg").is_some(), "{body}");
    }
    let (h, _) = r.get("/api/v3/depth?symbol=BTCUSDT");
    assert!(h.starts_with("HTTP/1.1 200"));

    let (_, body) = r.get("/mock/rest_fault?timeout_ms=300&count=2");
    assert!(body.contains("\"timeout_ms\":300"), "{body}");
    for path in ["/api/v3/exchangeInfo", "/fapi/v1/depth?symbol=BTCUSDT"] {
        let t0 = Instant::now();
        let mut c = tcp(addr);
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        // The control routes still answer while that request hangs.
        let (h, _) = Client::new(tcp(addr)).get("/mock/stats");
        assert!(h.starts_with("HTTP/1.1 200"));
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "no answer: {}",
            String::from_utf8_lossy(&got)
        );
        let el = t0.elapsed();
        assert!(el >= Duration::from_millis(290), "{el:?}");
        assert!(el < Duration::from_millis(3000), "{el:?}");
    }
    // Then answers again, 429 by default for a status fault.
    let (h, _) = r.get("/api/v3/exchangeInfo");
    assert!(h.starts_with("HTTP/1.1 200"));
    r.get("/mock/rest_fault?count=1");
    let (h, _) = r.get("/api/v3/exchangeInfo");
    assert!(
        h.starts_with("HTTP/1.1 429") && h.contains("Retry-After: 1"),
        "{h}"
    );
    let v = stats(addr);
    assert_eq!(stat(&v, &["faults", "rest_errors"]), 3);
    assert_eq!(stat(&v, &["faults", "rest_timeouts"]), 2);
}

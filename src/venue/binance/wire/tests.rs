use super::*;

fn instruments() -> InstrumentMap {
    let mut m = InstrumentMap::default();
    m.insert("BNBBTC", "BNB", "BTC", true);
    m.insert("BTCUSDT", "BTC", "USDT", true);
    m
}

fn one(text: &str) -> (FrameOutcome, Option<String>) {
    let mut b = Batch::new(4, 4096);
    let out = on_text(text, 42, &instruments(), &mut b);
    let rec = b.iter().next().map(|r| format!("{r:?}"));
    (out, rec)
}

/// The documented example, wrapped as a combined stream frame.
const DOC_TRADE: &str = r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}"#;

#[test]
fn documented_trade_becomes_a_record() {
    let mut b = Batch::new(4, 4096);
    assert_eq!(
        on_text(DOC_TRADE, 7, &instruments(), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Trade(t)) = b.iter().next() else {
        panic!("no record")
    };
    assert_eq!(t.symbol, "BNB-BTC");
    assert_eq!(t.raw_symbol, "BNBBTC");
    assert_eq!(t.trade_id, TradeId::Num(12345));
    assert_eq!(t.price.to_string(), "0.001");
    assert_eq!(t.quantity.to_string(), "100");
    assert_eq!(
        t.side,
        Side::Sell,
        "m:true means the buyer was maker: taker sold"
    );
    assert_eq!(t.is_maker, Some(true));
    assert_eq!(t.trade_ts_ms, 1672515782136);
    assert_eq!(t.ts_ms, 1672515782136);
    assert_eq!(t.receive_ts_ns, 7);
}

#[test]
fn keeps_trailing_zeros_and_buy_side() {
    let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"64000.10000000","q":"0.00100000","T":1,"m":false,"M":true,"x":"new field"}}"#;
    let mut b = Batch::new(4, 4096);
    assert_eq!(
        on_text(f, 1, &instruments(), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Trade(t)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(t.price.to_string(), "64000.10000000");
    assert_eq!(t.quantity.to_string(), "0.00100000");
    assert_eq!(t.side, Side::Buy);
    assert_eq!((t.trade_ts_ms, t.ts_ms), (1, 2));
}

#[test]
fn more_digits_than_f64_survive() {
    let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"0.1000000000000000055511151231","q":"1","T":1,"m":false}}"#;
    let mut b = Batch::new(4, 4096);
    assert_eq!(
        on_text(f, 1, &instruments(), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Trade(t)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(t.price.to_string(), "0.1000000000000000055511151231");
}

#[test]
fn control_frames() {
    assert_eq!(one(r#"{"result":null,"id":1}"#).0, FrameOutcome::Control);
    assert_eq!(
        one(r#"{"result":["btcusdt@trade"],"id":"abc"}"#).0,
        FrameOutcome::Control
    );
    assert_eq!(
        one(r#"{"code": 2, "msg": "Invalid request: too many parameters"}"#).0,
        FrameOutcome::ControlError
    );
    assert_eq!(
        one(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#).0,
        FrameOutcome::ControlError
    );
}

#[test]
fn malformed_frames_are_classified_and_push_nothing() {
    let cases = [
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":17"#,
            Malformed::BadJson,
        ),
        ("not json", Malformed::BadJson),
        ("", Malformed::BadJson),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":123.45,"q":"1","T":1,"m":false}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":"9","p":"1","q":"1","T":1,"m":false}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","p":"1","q":"1","T":1,"m":false}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@weird","data":{"e":"weird","E":1}}"#,
            Malformed::UnknownEvent,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"E":1}}"#,
            Malformed::UnknownEvent,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"12.3.4","q":"1","T":1,"m":false}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1e5","q":"1","T":1,"m":false}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"-1","q":"1","T":1,"m":false}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1","q":"99999999999999999999999999999999","T":1,"m":false}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"dogeusdt@trade","data":{"e":"trade","E":2,"s":"DOGEUSDT","t":9,"p":"1","q":"1","T":1,"m":false}}"#,
            Malformed::UnknownSymbol,
        ),
        (r#"{"stream":"btcusdt@trade"}"#, Malformed::WrongType),
        (r#"[1,2,3]"#, Malformed::WrongType),
    ];
    for (text, want) in cases {
        let (out, rec) = one(text);
        assert_eq!(out, FrameOutcome::Malformed(want), "{text}");
        assert_eq!(rec, None, "{text}");
    }
}

#[test]
fn escaped_strings_are_rejected_not_panicking() {
    let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTC\u0055SDT","t":9,"p":"1","q":"1","T":1,"m":false}}"#;
    assert!(matches!(one(f).0, FrameOutcome::Malformed(_)));
}

/// Both parsers on `text`: outcome, records and book message.
fn both(text: &str, venue: VenueId) -> [(FrameOutcome, Vec<String>, String); 2] {
    let map = instruments();
    let run = |full: bool| {
        let mut book = BookMsg::default();
        let mut b = Batch::new(4, 4096);
        let out = if full {
            on_frame_with(Reader::Serde, text, 3, venue, &map, &mut book, &mut b)
        } else {
            on_frame(text, 3, venue, &map, &mut book, &mut b)
        };
        let recs = b.iter().map(|r| format!("{r:?}")).collect();
        let book = if out == FrameOutcome::Book {
            format!("{book:?}")
        } else {
            String::new()
        };
        (out, recs, book)
    };
    [run(false), run(true)]
}

#[test]
fn fast_scanner_takes_flat_events_and_agrees_with_the_full_parser() {
    let flat = [
        DOC_TRADE,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true}}"#,
        r#"{"stream":"bnbbtc@bookTicker","data":{"u":400900217,"s":"BNBBTC","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#,
        r#" {"data":{"m":false,"T":1,"q":"1","p":"2","t":9,"s":"BTCUSDT","E":2,"e":"trade"} , "stream":"btcusdt@trade"} "#,
    ];
    for f in flat {
        assert!(flat_frame(f).is_some(), "{f}");
    }
    // Trades in Binance's own layout (docs, a recorded spot session,
    // USDⓈ-M with `nq`) take the literal reader.
    let layout = [
        DOC_TRADE,
        flat[1],
        r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"0.1","f":100,"l":105,"T":123456785,"m":true}}"#,
    ];
    for f in layout {
        assert!(trade_layout(f).is_some(), "{f}");
    }
    assert!(trade_layout(flat[3]).is_none());
    // Every cut and every one-byte change of these frames: whatever the
    // fast scanner accepts reads exactly as the full parser reads it.
    let mut frames: Vec<String> = flat
        .iter()
        .chain(&layout[2..])
        .map(|s| s.to_string())
        .collect();
    frames.push(r#"{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BNBBTC","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[]}}"#.into());
    frames.push(r#"{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"1","p":"2","ap":"2","T":1}}}"#.into());
    let mut checked = 0;
    for f in &frames {
        let mut variants = Vec::new();
        for i in 0..=f.len() {
            if f.is_char_boundary(i) {
                variants.push(f[..i].to_string());
                for rep in [
                    "", "\\", "\"", "0", "-", ".", "e", "x", " ", "{", "[", "}", ",", "t", "n",
                ] {
                    let mut v = f[..i].to_string();
                    v.push_str(rep);
                    v.push_str(&f[i..]);
                    variants.push(v.clone());
                    if let Some(c) = f[i..].chars().next() {
                        let mut w = f[..i].to_string();
                        w.push_str(rep);
                        w.push_str(&f[i + c.len_utf8()..]);
                        variants.push(w);
                    }
                }
            }
        }
        for v in variants {
            for venue in [VenueId::BinanceSpot, VenueId::BinanceDerivatives] {
                let [fast, full] = both(&v, venue);
                assert_eq!(fast, full, "{venue} {v}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

fn book_of(text: &str, venue: VenueId) -> (FrameOutcome, BookMsg) {
    let mut book = BookMsg::default();
    let mut b = Batch::new(4, 4096);
    let out = on_frame(text, 5_000_000, venue, &instruments(), &mut book, &mut b);
    assert!(b.is_empty());
    (out, book)
}

#[test]
fn documented_spot_depth_update_becomes_a_book_message() {
    let f = r#"{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}"#;
    let (out, book) = book_of(f, VenueId::BinanceSpot);
    assert_eq!(out, FrameOutcome::Book);
    assert_eq!(book.raw_symbol, "BNBBTC");
    assert!(!book.snapshot);
    assert_eq!(
        (book.first_id, book.last_id, book.prev_id),
        (157, 160, None)
    );
    assert_eq!(book.ts_ms, 1672515782136);
    assert_eq!(book.bids, vec![Level::new(dec("0.0024"), dec("10"))]);
    assert_eq!(book.asks, vec![Level::new(dec("0.0026"), dec("100"))]);
}

#[test]
fn futures_depth_needs_pu_and_keeps_it() {
    let f = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}"#;
    let (out, book) = book_of(f, VenueId::BinanceDerivatives);
    assert_eq!(out, FrameOutcome::Book);
    assert_eq!(book.prev_id, Some(149));
    let no_pu = f.replace(r#","pu":149"#, "");
    assert_eq!(
        book_of(&no_pu, VenueId::BinanceDerivatives).0,
        FrameOutcome::Malformed(Malformed::WrongType)
    );
}

#[test]
fn depth_rejections() {
    let cases = [
        // a bad level anywhere rejects the frame
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","x"]],"a":[]}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1"]],"a":[]}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[[1,2]],"a":[]}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","u":2,"b":[],"a":[]}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":"1","a":[]}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}}"#,
            Malformed::UnknownSymbol,
        ),
        // a partial book stream is not a diff stream
        (
            r#"{"stream":"btcusdt@depth5@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}}"#,
            Malformed::UnknownEvent,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","2"]],"a":[["1","2"]"#,
            Malformed::BadJson,
        ),
    ];
    for (f, want) in cases {
        assert_eq!(
            book_of(f, VenueId::BinanceSpot).0,
            FrameOutcome::Malformed(want),
            "{f}"
        );
    }
}

#[test]
fn a_book_message_reuses_its_vectors() {
    let mut book = BookMsg::default();
    let mut b = Batch::new(4, 4096);
    let map = instruments();
    let f = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","2"],["3","4"]],"a":[["5","6"]]}}"#;
    assert_eq!(
        on_frame(f, 0, VenueId::BinanceSpot, &map, &mut book, &mut b),
        FrameOutcome::Book
    );
    let (bp, ap) = (book.bids.as_ptr(), book.asks.as_ptr());
    assert_eq!(
        on_frame(f, 0, VenueId::BinanceSpot, &map, &mut book, &mut b),
        FrameOutcome::Book
    );
    assert_eq!((book.bids.len(), book.asks.len()), (2, 1));
    assert_eq!((book.bids.as_ptr(), book.asks.as_ptr()), (bp, ap));
}

#[test]
fn spot_book_ticker_uses_receive_time() {
    let f = r#"{"stream":"bnbbtc@bookTicker","data":{"u":400900217,"s":"BNBBTC","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#;
    let mut b = Batch::new(4, 4096);
    assert_eq!(
        on_text(f, 1_700_000_000_123_456_789, &instruments(), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Ticker(t)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(t.origin.ts_ms, 1_700_000_000_123);
    assert_eq!(t.update_id, Some(400900217));
    assert_eq!(t.bid_price.unwrap().to_string(), "25.35190000");
    assert_eq!(t.ask_quantity.unwrap().to_string(), "40.66000000");
}

#[test]
fn shutdown_and_raw_events() {
    assert_eq!(
        one(r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#).0,
        FrameOutcome::Notice
    );
    assert_eq!(
        one(r#"{"e":"serverShutdown","E":1770123456789}"#).0,
        FrameOutcome::Notice
    );
    assert_eq!(
        one(r#"{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1","q":"1","T":1,"m":false}"#).0,
        FrameOutcome::Malformed(Malformed::UnknownEvent)
    );
    // 24hrTicker: `o` is a price string, `b`/`a` strings; unknown, not wrong.
    assert_eq!(
        one(r#"{"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}}"#).0,
        FrameOutcome::Malformed(Malformed::UnknownEvent)
    );
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

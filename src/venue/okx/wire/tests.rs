use super::*;
use crate::model::DataTypeSet;
use crate::venue::VenueState;

fn instruments() -> InstrumentMap {
    let mut m = InstrumentMap::default();
    m.insert("BTC-USDT", "BTC", "USDT", true);
    m.insert_contract(
        "BTC-USDT-SWAP",
        "BTC",
        "USDT",
        true,
        Some(Decimal::new(1, 2)),
    );
    m.insert_contract(
        "ETH-USDT-SWAP",
        "ETH",
        "USDT",
        true,
        Some(Decimal::new(1, 1)),
    );
    let mut liq = DataTypeSet::default();
    liq.insert(DataType::Liquidation);
    m.set_wanted("BTC-USDT-SWAP", liq);
    m
}

struct Run {
    map: InstrumentMap,
    book: BookMsg,
    state: VenueState,
    replies: Vec<String>,
    batch: Batch,
}

impl Run {
    fn new() -> Run {
        Run {
            map: instruments(),
            book: BookMsg::default(),
            state: VenueState::default(),
            replies: Vec::new(),
            batch: Batch::new(16, 1 << 14),
        }
    }

    fn feed(&mut self, text: &str) -> FrameOutcome {
        let mut cx = ParseCtx {
            venue: VenueId::OkxDerivatives,
            instruments: &self.map,
            book: &mut self.book,
            state: &mut self.state,
            replies: &mut self.replies,
        };
        on_text(text, 9, &mut cx, &mut self.batch)
    }
}

fn one(text: &str) -> (FrameOutcome, usize) {
    let mut r = Run::new();
    let out = r.feed(text);
    (out, r.batch.len())
}

#[test]
fn control_frames() {
    assert_eq!(one("pong").0, FrameOutcome::Control);
    assert_eq!(
        one(r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"x"}"#)
            .0,
        FrameOutcome::Control
    );
    assert_eq!(
        one(r#"{"event":"channel-conn-count-error","channel":"books","connCount":"30"}"#).0,
        FrameOutcome::ControlError
    );
    assert_eq!(
        one(r#"{"event":"error","code":"60018","msg":"x"}"#).0,
        FrameOutcome::ControlError
    );
}

/// Whatever the flat entry reader accepts, serde accepts and reads the
/// same way: entries of each channel as OKX documents them, cut at every
/// byte and with every byte replaced by characters that change the JSON.
#[test]
fn flat_entries_read_as_serde_reads_them() {
    fn fields<'a>(e: &Entry<'a>) -> Vec<Option<&'a str>> {
        vec![
            e.inst_id,
            e.ts,
            e.trade_id,
            e.px,
            e.sz,
            e.side,
            e.last,
            e.ask_px,
            e.ask_sz,
            e.bid_px,
            e.bid_sz,
            e.funding_rate,
            e.funding_time,
            e.next_funding_time,
            e.next_funding_rate,
            e.oi,
            e.oi_ccy,
            e.oi_usd,
        ]
    }
    let docs = [
        r#"{"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3","source":"0"}"#,
        r#"{"instType":"SWAP","instId":"BTC-USDT-SWAP","last":"9999.99","lastSz":"1","askPx":"9999.99","askSz":"11","bidPx":"8888.88","bidSz":"5","ts":"1597026383085"}"#,
        r#"{"fundingRate":"0.0001515","fundingTime":"1703088000000","instId":"BTC-USD-SWAP","instType":"SWAP","nextFundingRate":"","nextFundingTime":"1703116800000","ts":"1703070685309"}"#,
        r#"{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"5000","oiCcy":"555.55","oiUsd":"50000","ts":"1597026383085"}"#,
    ];
    let mut accepted = 0;
    for doc in docs {
        assert!(flat_entry(doc).is_some(), "{doc}");
        let mut cases = vec![
            doc.to_string(),
            doc.replacen(r#""ts":"#, r#""ts":"1","ts":"#, 1),
            doc.replacen(r#""instId":"#, r#""instId":7,"x":"#, 1),
            doc.replacen('{', r#"{"details":[],"#, 1),
            doc.replacen('{', r#"{"n":null,"#, 1),
            doc.replacen('{', r#"{"f":1.5,"#, 1),
        ];
        for i in 0..doc.len() {
            cases.push(doc[..i].to_string());
            for c in ['"', ',', ':', '}', '{', '[', '1', ' ', '\\', 'x', 'n', '-'] {
                let mut t = doc.to_string();
                t.replace_range(i..i + 1, &c.to_string());
                cases.push(t);
            }
        }
        for t in &cases {
            let Some(flat) = flat_entry(t) else { continue };
            accepted += 1;
            let serde: Entry<'_> = sonic_rs::from_str(t)
                .unwrap_or_else(|e| panic!("flat reader accepted what serde rejects: {t}: {e}"));
            assert_eq!(fields(&flat), fields(&serde), "{t}");
        }
    }
    assert!(accepted > 200, "{accepted}");
}

#[test]
fn several_trades_push_several_records() {
    let mut r = Run::new();
    let f = r#"{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"1","px":"100.5","sz":"3","side":"sell","ts":"10"},{"instId":"BTC-USDT-SWAP","tradeId":"2","px":"100.4","sz":"0.5","side":"buy","ts":"11"}]}"#;
    assert_eq!(r.feed(f), FrameOutcome::Records(2));
    let recs: Vec<_> = r.batch.iter().collect();
    let (Record::Trade(a), Record::Trade(b)) = (recs[0], recs[1]) else {
        panic!()
    };
    assert_eq!(a.trade_id, TradeId::Str("1"));
    assert_eq!(a.quantity.to_string(), "0.03");
    assert_eq!(a.contracts.unwrap().to_string(), "3");
    assert_eq!(a.side, Side::Sell);
    assert_eq!(b.trade_id, TradeId::Str("2"));
    assert_eq!(b.quantity.to_string(), "0.005");
    assert_eq!((b.trade_ts_ms, b.ts_ms), (11, 11));
    // A bad second entry rejects the whole frame: nothing pushed.
    let bad = f.replace(r#""px":"100.4""#, r#""px":"x""#);
    let mut r = Run::new();
    assert_eq!(
        r.feed(&bad),
        FrameOutcome::Malformed(Malformed::InvalidNumber)
    );
    assert!(r.batch.is_empty());
}

#[test]
fn liquidations_are_filtered_by_wanted() {
    let f = r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[
        {"details":[{"bkLoss":"0","bkPx":"30000.1","ccy":"","posSide":"long","side":"sell","sz":"2","ts":"5"},{"bkPx":"30000.2","posSide":"","side":"sell","sz":"1","ts":"6"}],"instId":"BTC-USDT-SWAP","instType":"SWAP"},
        {"details":[{"bkPx":"1","posSide":"short","side":"buy","sz":"1","ts":"7"}],"instId":"ETH-USDT-SWAP","instType":"SWAP"},
        {"details":[{"bkPx":"1","posSide":"short","side":"buy","sz":"1","ts":"7"}],"instId":"DOGE-USDT-SWAP","instType":"SWAP"}]}"#;
    let mut r = Run::new();
    assert_eq!(r.feed(f), FrameOutcome::Records(2));
    let recs: Vec<_> = r.batch.iter().collect();
    let (Record::Liquidation(a), Record::Liquidation(b)) = (recs[0], recs[1]) else {
        panic!()
    };
    assert_eq!(a.position_side, Some("long"));
    assert_eq!(a.side, Side::Sell);
    assert_eq!(a.quantity.to_string(), "0.02");
    assert_eq!(b.position_side, None);
    assert_eq!(b.liquidation_ts_ms, 6);
    let only_others = r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkPx":"1","posSide":"short","side":"buy","sz":"1","ts":"7"}],"instId":"ETH-USDT-SWAP","instType":"SWAP"}]}"#;
    assert_eq!(one(only_others), (FrameOutcome::Ignored, 0));
}

#[test]
fn books_old_and_new_shapes() {
    let mut r = Run::new();
    let old = r#"{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"asks":[["30249.4","0","0","0"]],"bids":[],"ts":"1652459225464","checksum":-914047754}]}"#;
    assert_eq!(r.feed(old), FrameOutcome::Book);
    assert_eq!(r.book.raw_symbol, "BTC-USDT-SWAP");
    assert!(!r.book.snapshot);
    assert_eq!(
        (r.book.first_id, r.book.last_id, r.book.prev_id),
        (0, 0, None)
    );
    assert_eq!(r.book.checksum, Some(-914047754));
    assert_eq!(r.book.asks.len(), 1);
    assert_eq!(r.book.asks[0].quantity.to_string(), "0");
    assert!(r.book.bids.is_empty());
    assert_eq!(r.book.ts_ms, 1652459225464);
    let keepalive = r#"{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1","checksum":0,"prevSeqId":15,"seqId":15}]}"#;
    assert_eq!(r.feed(keepalive), FrameOutcome::Book);
    assert_eq!(
        (r.book.first_id, r.book.last_id, r.book.prev_id),
        (15, 15, Some(15))
    );
    assert_eq!(r.book.checksum, None);
    assert!(r.book.asks.is_empty() && r.book.bids.is_empty());
    assert!(r.batch.is_empty());
}

#[test]
fn malformed_frames_are_classified_and_push_nothing() {
    let t = |px: &str| {
        format!(
            r#"{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT","tradeId":"1","px":{px},"sz":"1","side":"buy","ts":"1"}}]}}"#
        )
    };
    let b = |lvl: &str| {
        format!(
            r#"{{"arg":{{"channel":"books","instId":"BTC-USDT"}},"action":"snapshot","data":[{{"asks":[{lvl}],"bids":[],"ts":"1","checksum":0,"prevSeqId":-1,"seqId":1}}]}}"#
        )
    };
    let cases: Vec<(String, Malformed)> = vec![
        ("".into(), Malformed::BadJson),
        ("ping".into(), Malformed::BadJson),
        (r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"#.into(), Malformed::BadJson),
        ("[1,2]".into(), Malformed::WrongType),
        ("{}".into(), Malformed::WrongType),
        (r#"{"arg":{"channel":"trades"}}"#.into(), Malformed::WrongType),
        (r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":{}}"#.into(), Malformed::WrongType),
        (r#"{"arg":{"instId":"BTC-USDT"},"data":[]}"#.into(), Malformed::WrongType),
        (r#"{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}"#.into(), Malformed::UnknownEvent),
        (t(r#""1.2.3""#), Malformed::InvalidNumber),
        (t(r#""-1""#), Malformed::InvalidNumber),
        (t(r#""1e5""#), Malformed::InvalidNumber),
        (t(r#""""#), Malformed::InvalidNumber),
        (t("1.5"), Malformed::WrongType),
        (t(r#""1","side":"up""#).replace(r#","side":"buy""#, ""), Malformed::WrongType),
        (t(r#""1""#).replace(r#""tradeId":"1","#, ""), Malformed::WrongType),
        (t(r#""1""#).replace(r#""ts":"1""#, r#""ts":"soon""#), Malformed::InvalidNumber),
        (t(r#""1""#).replace("BTC-USDT", "DOGE-USDT"), Malformed::UnknownSymbol),
        (b(r#"["1","x","0","1"]"#), Malformed::InvalidNumber),
        (b(r#"["1"]"#), Malformed::WrongType),
        (b(r#"[1,2]"#), Malformed::WrongType),
        (b(r#"["1","2"]"#).replace(r#""ts":"1","#, ""), Malformed::WrongType),
        (b(r#"["1","2"]"#).replace(r#""seqId":1"#, r#""seqId":-5"#), Malformed::InvalidNumber),
        (b(r#"["1","2"]"#).replace(r#""checksum":0"#, r#""checksum":99999999999"#), Malformed::InvalidNumber),
        (b(r#"["1","2"]"#).replace(r#""action":"snapshot","#, ""), Malformed::WrongType),
        (b(r#"["1","2"]"#).replace("BTC-USDT", "DOGE-USDT"), Malformed::UnknownSymbol),
        (b(r#"["1","2"]"#).replace(r#"data":[{"#, r#"data":[{},{"#), Malformed::WrongType),
        (b(r#"["1","2"]"#).replace(r#"data":[{"asks":[["1","2"]],"bids":[],"ts":"1","checksum":0,"prevSeqId":-1,"seqId":1}]"#, r#"data":[]"#), Malformed::WrongType),
        (r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"BTC-USDT-SWAP"}]}"#.into(), Malformed::WrongType),
        (r#"{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","fundingRate":"x","ts":"1"}]}"#.into(), Malformed::InvalidNumber),
        (r#"{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","oi":"1","ts":"1"}]}"#.into(), Malformed::WrongType),
        (r#"{"arg":{"channel":"trades","instId":"BTC\u002dUSDT"},"data":[]}"#.into(), Malformed::WrongType),
    ];
    for (text, want) in cases {
        let mut r = Run::new();
        assert_eq!(r.feed(&text), FrameOutcome::Malformed(want), "{text}");
        assert!(r.batch.is_empty(), "{text}");
        assert_eq!(r.book, BookMsg::default(), "{text}");
    }
}

#[test]
fn negative_funding_rate_and_empty_estimate() {
    let mut r = Run::new();
    let f = r#"{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"fundingRate":"-0.0000312","fundingTime":"100","instId":"BTC-USDT-SWAP","nextFundingRate":"0.0001","nextFundingTime":"","ts":"7"}]}"#;
    assert_eq!(r.feed(f), FrameOutcome::Records(1));
    let Some(Record::Funding(x)) = r.batch.iter().next() else {
        panic!()
    };
    assert_eq!(x.funding_rate.to_string(), "-0.0000312");
    assert_eq!(x.estimated_rate.unwrap().to_string(), "0.0001");
    assert_eq!((x.funding_ts_ms, x.next_funding_ts_ms), (Some(100), None));
}

#[test]
fn rest_book_snapshot() {
    let mut m = BookMsg::default();
    let body = br#"{"code":"0","msg":"","data":[{"asks":[["41006.8","0.60038921","0","1"]],"bids":[["41006.3","0.30178218","0","2"]],"ts":"1629966436396","seqId":3235851742}]}"#;
    parse_book_snapshot("BTC-USDT", body, 1, &mut m).unwrap();
    assert!(m.snapshot);
    assert_eq!(
        (m.first_id, m.last_id, m.prev_id),
        (3235851742, 3235851742, None)
    );
    assert_eq!(
        m.asks,
        vec![Level::new(
            Decimal::new(410068, 1),
            Decimal::new(60038921, 8)
        )]
    );
    assert_eq!(m.ts_ms, 1629966436396);
    assert_eq!(
        parse_book_snapshot(
            "BTC-USDT",
            br#"{"code":"51001","msg":"x","data":[]}"#,
            1,
            &mut m
        ),
        Err(Malformed::WrongType)
    );
    assert_eq!(m, BookMsg::default());
}

/// The books fast path reads every frame it accepts as the full parser
/// does (outcome and message), on OKX's frames and on mutations of them.
#[test]
fn books_fast_path_reads_as_the_full_parser() {
    let base = [
        r#"{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[{"asks":[["30249.4","0","0","0"]],"bids":[],"ts":"1652459225464","checksum":-914047754}]}"#,
        r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["8476.98","415","0","13"],["8477","7","0","2"]],"bids":[["8476.5","256","0","3"]],"ts":"1597026383085","checksum":-855196043,"prevSeqId":-1,"seqId":123456}]}"#,
        r#"{"arg":{"channel":"books","instId":"ETH-USDT-SWAP"},"action":"update","data":[{"asks":[],"bids":[["2000.10","0.50"]],"ts":"1","checksum":0,"prevSeqId":15,"seqId":16}]}"#,
    ];
    let run = |text: &str, fast: bool| {
        let mut r = Run::new();
        let mut cx = ParseCtx {
            venue: VenueId::OkxDerivatives,
            instruments: &r.map,
            book: &mut r.book,
            state: &mut r.state,
            replies: &mut r.replies,
        };
        let out = if fast {
            fast_book(text, &mut cx).map(|res| book_outcome(res, &mut cx))
        } else {
            Some(on_text_full(text, 9, &mut cx, &mut r.batch))
        };
        (out, r.book)
    };
    let mut rng = fastrand::Rng::with_seed(20);
    let (mut accepted, mut declined) = (0, 0);
    let mut check = |text: &str| match run(text, true) {
        (Some(out), msg) => {
            accepted += 1;
            assert_eq!(run(text, false), (Some(out), msg), "{text}");
        }
        (None, msg) => {
            declined += 1;
            assert_eq!(msg, BookMsg::default(), "declined, left clean: {text}");
        }
    };
    let alphabet = b"[]{},:\"-0123456789.e ax\\";
    for t in base {
        check(t);
        for _ in 0..3_000 {
            let mut b = t.as_bytes().to_vec();
            for _ in 0..rng.usize(1..3) {
                let i = rng.usize(..b.len());
                match rng.u8(..3) {
                    0 => b[i] = alphabet[rng.usize(..alphabet.len())],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[rng.usize(..alphabet.len())]),
                }
            }
            if let Ok(text) = std::str::from_utf8(&b) {
                check(text);
            }
        }
        for cut in 0..t.len() {
            check(&t[..cut]);
        }
    }
    // Both kinds are exercised: accepted mutations (digits changed,
    // malformed numbers, unknown symbols) and declined ones.
    assert!(
        accepted > 1_000 && declined > 1_000,
        "{accepted} accepted, {declined} declined"
    );
    for t in base {
        assert_eq!(run(t, true).0, Some(FrameOutcome::Book));
    }
}

//! Deribit through the public `Protocol` API: documented payloads
//! (`tests/fixtures/deribit/`, sources in its README) become exact records,
//! encodings and book messages; the real 2021 capture replays without a
//! malformed frame.

mod common;

use common::alloc::allocs;
use common::fixtures::capture;
use common::venue::{jsons, map_of, set_of, Conn};
use marketprism::batch::{Batch, Level, Record, TradeId};
use marketprism::model::{DataType, Side, VenueId};
use marketprism::venue::{protocol, FrameOutcome, InstrumentMap, Malformed};
use std::collections::HashMap;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

const TAIL: &str = r#","collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#;

fn fixture(name: &str) -> String {
    common::fixtures::fixture("deribit", name)
}

impl Conn {
    fn with_map(map: InstrumentMap) -> Conn {
        Conn::new(VenueId::DeribitDerivatives, map)
    }
}

/// BTC-PERPETUAL (inverse) and BTC_USDC-PERPETUAL (linear), wanting `wanted`.
fn conn(wanted: &[DataType]) -> Conn {
    let mut map = map_of(&[
        ("BTC-PERPETUAL", "BTC", "USD"),
        ("BTC_USDC-PERPETUAL", "BTC", "USDC"),
    ]);
    map.set_wanted("BTC-PERPETUAL", set_of(wanted));
    map.set_wanted("BTC_USDC-PERPETUAL", set_of(wanted));
    Conn::with_map(map)
}

fn levels(ls: &[Level]) -> Vec<String> {
    ls.iter()
        .map(|l| format!("{}@{}", l.quantity, l.price))
        .collect()
}

#[test]
fn documented_book_snapshot_then_change() {
    let mut c = conn(&[DataType::OrderBook]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("book_snapshot.json"), &mut b),
        FrameOutcome::Book
    );
    let m = &c.book;
    assert_eq!(m.raw_symbol, "BTC-PERPETUAL");
    assert!(m.snapshot);
    assert_eq!(
        (m.first_id, m.last_id, m.prev_id, m.checksum),
        (14202051597, 14202051597, None, None)
    );
    assert_eq!(m.ts_ms, 1566347389966);
    assert_eq!(levels(&m.bids), ["1200.0@10746.5", "40000.0@10700.0"]);
    assert_eq!(levels(&m.asks), ["150000.0@10756.5", "20.0@10760.0"]);

    assert_eq!(
        c.feed_into(&fixture("book_change.json"), &mut b),
        FrameOutcome::Book
    );
    let m = &c.book;
    assert!(!m.snapshot);
    assert_eq!(
        (m.first_id, m.last_id, m.prev_id),
        (14202051674, 14202051674, Some(14202051597))
    );
    assert_eq!(m.ts_ms, 1566347390042);
    // JSON numbers keep their text: 10700.0 stays "10700.0"; delete → 0.
    assert_eq!(levels(&m.bids), ["45690.0@10700.0", "0@10746.5"]);
    assert_eq!(levels(&m.asks), ["156690.0@10756.5"]);
    assert!(b.is_empty());
}

#[test]
fn documented_trades_inverse_amounts_are_usd() {
    let mut c = conn(&[DataType::Trade]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("trades.json"), &mut b),
        FrameOutcome::Records(2)
    );
    let Some(Record::Trade(t)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(t.venue, VenueId::DeribitDerivatives);
    assert_eq!((t.symbol, t.raw_symbol), ("BTC-USD", "BTC-PERPETUAL"));
    assert_eq!(t.trade_id, TradeId::Str("48079254"));
    assert_eq!(t.price.to_string(), "8954");
    // 20 USD / 8954 = 0.0022336385972…, half-even to 8 dp.
    assert_eq!(t.quantity.to_string(), "0.00223364");
    assert_eq!(t.contracts.map(|c| c.to_string()).as_deref(), Some("20"));
    assert_eq!(t.side, Side::Sell);
    assert_eq!(t.is_maker, None);
    assert_eq!((t.trade_ts_ms, t.ts_ms), (1590484156350, 1590484156350));
    assert_eq!(
        jsons(&b)[1],
        format!(
            r#"{{"data_type":"trade","exchange":"deribit","market_type":"perpetual","symbol":"BTC-USD","instrument_id":"BTC-PERPETUAL","raw_symbol":"BTC-PERPETUAL","trade_id":"48079255","price":"8954","quantity":"0.00223364","side":"sell","contracts":"20","trade_ts_ms":1590484156350,"ts_ms":1590484156350{TAIL}"#
        )
    );

    // USDC linear perpetual: amounts are coins.
    let f = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC_USDC-PERPETUAL.100ms","data":[{"trade_seq":1,"trade_id":"BTC_USDC-1","timestamp":5,"price":60000.5,"instrument_name":"BTC_USDC-PERPETUAL","direction":"buy","amount":0.001}]}}"#;
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(1));
    let Some(Record::Trade(t)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(t.symbol, "BTC-USDC");
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string(), t.contracts),
        ("60000.5".to_string(), "0.001".to_string(), None)
    );
    assert_eq!(t.side, Side::Buy);
}

#[test]
fn documented_ticker_feeds_three_types() {
    let mut c = conn(&[
        DataType::Ticker,
        DataType::FundingRate,
        DataType::OpenInterest,
    ]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("ticker.json"), &mut b),
        FrameOutcome::Records(3)
    );
    let head = |dt: &str| {
        format!(
            r#"{{"data_type":"{dt}","exchange":"deribit","market_type":"perpetual","symbol":"BTC-USD","instrument_id":"BTC-PERPETUAL""#
        )
    };
    let ts = r#","ts_ms":1623060194301"#;
    assert_eq!(
        jsons(&b),
        [
            format!(
                r#"{},"best_bid_price":"36442.5","best_bid_quantity":"5000","best_ask_price":"36443","best_ask_quantity":"100","last_price":"36457.5"{ts}{TAIL}"#,
                head("ticker")
            ),
            format!(
                r#"{},"current_funding_rate":"0","estimated_funding_rate":"0.0000211","mark_price":"36446.51","index_price":"36441.64"{ts}{TAIL}"#,
                head("funding_rate")
            ),
            // 502097590 USD / 36446.51 = 13776.287222013…
            format!(
                r#"{},"open_interest":"13776.28722201","open_interest_value":"13776.28722201","open_interest_unit":"coins","open_interest_contracts":"502097590","open_interest_usd":"502097590"{ts}{TAIL}"#,
                head("open_interest")
            ),
        ]
    );

    // Only the wanted types.
    let mut c = conn(&[DataType::FundingRate]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("ticker.json"), &mut b),
        FrameOutcome::Records(1)
    );
    assert!(matches!(b.iter().next(), Some(Record::Funding(_))));
    let mut c = conn(&[DataType::Trade]);
    assert_eq!(
        c.feed_into(&fixture("ticker.json"), &mut b),
        FrameOutcome::Ignored
    );
}

#[test]
fn ticker_nulls_and_empty_sides() {
    let mut c = conn(&[DataType::Ticker, DataType::OpenInterest]);
    let mut b = Batch::new(16, 1 << 16);
    let f = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC_USDC-PERPETUAL.100ms","data":{"timestamp":9,"instrument_name":"BTC_USDC-PERPETUAL","best_bid_price":0.0,"best_bid_amount":0.0,"best_ask_price":61000.5,"best_ask_amount":1e-05,"last_price":null,"mark_price":61000.0,"open_interest":12.5}}}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(2));
    let mut it = b.iter();
    let Some(Record::Ticker(t)) = it.next() else {
        panic!()
    };
    assert_eq!(
        (t.bid_price, t.bid_quantity, t.last_price),
        (None, None, None)
    );
    assert_eq!(t.ask_quantity.unwrap().to_string(), "0.00001");
    let Some(Record::OpenInterest(oi)) = it.next() else {
        panic!()
    };
    // Linear: coins as sent, no contracts, no USD value.
    assert_eq!(oi.open_interest.to_string(), "12.5");
    assert_eq!((oi.contracts, oi.value_usd), (None, None));
}

#[test]
fn documented_volatility_index() {
    // Not an instrument: an empty instrument list still parses it.
    let mut c = Conn::with_map(InstrumentMap::default());
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("volatility_index.json"), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Volatility(v)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(
        (v.origin.symbol, v.origin.raw_symbol, v.index_name),
        ("BTC", "btc_usd", "btc_usd")
    );
    assert_eq!(v.volatility_index.to_string(), "129.36");
    assert_eq!(v.origin.ts_ms, 1619777946007);
    assert_eq!(
        jsons(&b),
        [format!(
            r#"{{"data_type":"volatility_index","exchange":"deribit","market_type":"options","symbol":"BTC","instrument_id":"btc_usd","currency":"BTC","underlying_asset":"BTC","volatility_index":"129.36","index_name":"btc_usd","ts_ms":1619777946007{TAIL}"#
        )]
    );
}

#[test]
fn heartbeat_test_request_is_answered() {
    let mut c = conn(&[DataType::Trade]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("test_request.json"), &mut b),
        FrameOutcome::Control
    );
    assert_eq!(
        c.replies,
        [r#"{"jsonrpc":"2.0","id":2,"method":"public/test","params":{}}"#]
    );
    c.replies.clear();
    for line in fixture("control.jsonl").lines() {
        assert_eq!(c.feed_into(line, &mut b), FrameOutcome::Control, "{line}");
    }
    assert!(c.replies.is_empty());
    assert_eq!(
        c.feed_into(&fixture("error.json"), &mut b),
        FrameOutcome::ControlError
    );
    assert!(b.is_empty());
}

#[test]
fn malformed_frames() {
    let mut c = conn(&[DataType::Trade, DataType::Ticker]);
    let sub = |channel: &str, data: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{data}}}}}"#
        )
    };
    let cases = [
        ("{\"jsonrpc\":".to_string(), Malformed::BadJson),
        (sub("user.orders.BTC-PERPETUAL.raw", "{}"), Malformed::UnknownEvent),
        (
            sub("trades.ETH-PERPETUAL.100ms", "[]"),
            Malformed::UnknownSymbol,
        ),
        (
            sub(
                "trades.BTC-PERPETUAL.100ms",
                r#"[{"trade_id":"1","timestamp":1,"price":"x","instrument_name":"BTC-PERPETUAL","direction":"buy","amount":1}]"#,
            ),
            Malformed::BadJson,
        ),
        (
            sub(
                "trades.BTC-PERPETUAL.100ms",
                r#"[{"trade_id":"1","timestamp":1,"price":0,"instrument_name":"BTC-PERPETUAL","direction":"buy","amount":1}]"#,
            ),
            Malformed::InvalidNumber,
        ),
        (
            sub(
                "trades.BTC-PERPETUAL.100ms",
                r#"[{"trade_id":"1","timestamp":1,"price":1,"instrument_name":"BTC-PERPETUAL","direction":"up","amount":1}]"#,
            ),
            Malformed::WrongType,
        ),
        (
            sub(
                "book.BTC-PERPETUAL.100ms",
                r#"{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":2,"bids":[["move",1.0,1.0]],"asks":[]}"#,
            ),
            Malformed::WrongType,
        ),
        (
            sub(
                "book.BTC-PERPETUAL.100ms",
                r#"{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":2,"prev_change_id":1,"bids":[["new",-1.0,1.0]],"asks":[]}"#,
            ),
            Malformed::InvalidNumber,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms"}}"#.to_string(),
            Malformed::WrongType,
        ),
        (r#"{"jsonrpc":"2.0"}"#.to_string(), Malformed::UnknownEvent),
    ];
    for (text, want) in cases {
        let mut b = Batch::new(16, 1 << 16);
        assert_eq!(
            c.feed_into(&text, &mut b),
            FrameOutcome::Malformed(want),
            "{text}"
        );
        assert!(b.is_empty(), "{text}");
    }
}

#[test]
fn subscribe_and_unsubscribe_frames() {
    let p = protocol(VenueId::DeribitDerivatives);
    let ch: Vec<String> = [
        (DataType::OrderBook, "BTC-PERPETUAL"),
        (DataType::Trade, "BTC-PERPETUAL"),
        (DataType::FundingRate, "BTC-PERPETUAL"),
        (DataType::VolatilityIndex, "BTC"),
    ]
    .map(|(dt, s)| p.channel(s, dt))
    .to_vec();
    assert_eq!(
        p.subscribe_frames(&ch),
        [
            r#"{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":30}}"#,
            r#"{"jsonrpc":"2.0","id":10,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms","trades.BTC-PERPETUAL.100ms","ticker.BTC-PERPETUAL.100ms","deribit_volatility_index.btc_usd"]}}"#,
        ]
    );
    assert_eq!(
        p.unsubscribe_frames(&ch[..1]),
        [
            r#"{"jsonrpc":"2.0","id":1000,"method":"public/unsubscribe","params":{"channels":["book.BTC-PERPETUAL.100ms"]}}"#
        ]
    );
    assert_eq!(p.heartbeat(), None);
    assert_eq!(p.endpoints().ws_url, "wss://www.deribit.com/ws/api/v2");
    assert_eq!(
        p.instruments_request(None).unwrap().path,
        "/api/v2/public/get_instruments?currency=any&kind=future"
    );
    assert_eq!(p.instruments_request(Some("x")), None);
}

/// `(url, body)` of each REST answer in a `.0` capture.
fn rest_bodies(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| l.starts_with("https://"))
        .filter_map(|l| {
            let (head, body) = l.split_once(": ")?;
            Some((head.split(" -> ").next()?, body))
        })
        .collect()
}

#[test]
fn recorded_instrument_lists_keep_perpetuals() {
    let text = capture("DERIBIT.0");
    let p = protocol(VenueId::DeribitDerivatives);
    let mut map = InstrumentMap::default();
    let bodies = rest_bodies(&text);
    assert_eq!(bodies.len(), 4);
    for (_, body) in bodies {
        assert_eq!(p.parse_instruments(body.as_bytes(), &mut map), Ok(None));
    }
    assert_eq!(map.len(), 19, "3 inverse + 16 USDC perpetuals");
    assert_eq!(map.normalize("BTC-PERPETUAL"), Some("BTC-USD"));
    assert_eq!(map.normalize("ETH-PERPETUAL"), Some("ETH-USD"));
    assert_eq!(map.normalize("BTC_USDC-PERPETUAL"), Some("BTC-USDC"));
    assert_eq!(map.normalize("DOGE_USDC-PERPETUAL"), Some("DOGE-USDC"));
    assert_eq!(map.get("BTC-PERPETUAL").unwrap().contract_value, None);
    assert_eq!(map.normalize("BTC-24SEP21-8000-P"), None);
    assert!(p
        .parse_instruments(
            br#"{"jsonrpc":"2.0","id":1,"error":{"message":"bad","code":-1}}"#,
            &mut InstrumentMap::default()
        )
        .is_err());
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    book_snapshots: u32,
    book_changes: u32,
    trades: u32,
    tickers: u32,
    other_records: u32,
    control: u32,
    unknown_symbol: u32,
}

fn replay(c: &mut Conn) -> Counts {
    let text = capture("DERIBIT.ws.1.0");
    let mut n = Counts::default();
    let mut chain: HashMap<String, u64> = HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with(|ch: char| ch.is_ascii_digit()))
    {
        let frame = &line[line.find(": ").expect("T: TEXT") + 2..];
        let mut b = Batch::new(64, 1 << 16);
        match c.feed_into(frame, &mut b) {
            FrameOutcome::Book => {
                let m = &c.book;
                if m.snapshot {
                    n.book_snapshots += 1;
                } else {
                    n.book_changes += 1;
                    // Every change follows the previous message of its book.
                    let prev = chain.get(&m.raw_symbol).copied();
                    assert_eq!(m.prev_id, prev.map(|p| p as i64), "{frame}");
                }
                chain.insert(m.raw_symbol.clone(), m.last_id);
            }
            FrameOutcome::Records(_) => {
                for r in b.iter() {
                    match r {
                        Record::Trade(_) => n.trades += 1,
                        Record::Ticker(_) => n.tickers += 1,
                        _ => n.other_records += 1,
                    }
                }
            }
            FrameOutcome::Control => n.control += 1,
            FrameOutcome::Malformed(Malformed::UnknownSymbol) => n.unknown_symbol += 1,
            other => panic!("{other:?} for {frame}"),
        }
    }
    n
}

/// The 2021 capture holds options only (`book`/`ticker` `.raw` channels of
/// ten options; no trade happened). With the production list (perpetuals
/// only) every data frame is `UnknownSymbol`; with every instrument of the
/// recorded `get_instruments` answers, all of them parse.
#[test]
fn recorded_session_replays() {
    let text = capture("DERIBIT.0");
    let p = protocol(VenueId::DeribitDerivatives);

    let mut perps = InstrumentMap::default();
    for (_, body) in rest_bodies(&text) {
        p.parse_instruments(body.as_bytes(), &mut perps).unwrap();
    }
    let mut c = Conn::with_map(perps);
    assert_eq!(
        replay(&mut c),
        Counts {
            control: 1,
            unknown_symbol: 46 + 89,
            ..Counts::default()
        }
    );

    // Every listed instrument, any kind (options are quoted in their coin).
    let mut all = InstrumentMap::default();
    for (_, body) in rest_bodies(&text) {
        let v: sonic_rs::Value = sonic_rs::from_str(body).unwrap();
        use sonic_rs::{JsonContainerTrait, JsonValueTrait};
        for i in v.get("result").unwrap().as_array().unwrap().iter() {
            let s = |k: &str| i.get(k).and_then(|x| x.as_str()).unwrap().to_string();
            let name = s("instrument_name");
            all.insert(&name, &s("base_currency"), &s("quote_currency"), true);
            all.set_wanted(&name, set_of(&[DataType::OrderBook, DataType::Ticker]));
        }
    }
    let mut c = Conn::with_map(all);
    assert_eq!(
        replay(&mut c),
        Counts {
            book_snapshots: 10,
            book_changes: 36,
            trades: 0,
            tickers: 89,
            control: 1,
            ..Counts::default()
        }
    );
}

/// Steady state: books, trades, tickers and DVOL allocate nothing.
#[test]
fn steady_state_allocates_nothing() {
    let mut c = conn(&[
        DataType::Trade,
        DataType::OrderBook,
        DataType::Ticker,
        DataType::FundingRate,
        DataType::OpenInterest,
    ]);
    let mut b = Batch::new(4096, 1 << 20);
    let frames = [
        fixture("book_snapshot.json"),
        fixture("book_change.json"),
        fixture("trades.json"),
        fixture("ticker.json"),
        fixture("volatility_index.json"),
        fixture("control.jsonl").lines().next().unwrap().to_string(),
    ];
    for f in &frames {
        assert!(!matches!(
            c.feed_into(f, &mut b),
            FrameOutcome::Malformed(_)
        ));
    }
    b.reset();
    let before = allocs();
    for _ in 0..200 {
        for f in &frames {
            assert!(!matches!(
                c.feed_into(f, &mut b),
                FrameOutcome::Malformed(_)
            ));
        }
        b.reset();
    }
    assert_eq!(allocs() - before, 0);
}

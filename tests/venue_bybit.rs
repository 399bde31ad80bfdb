//! Bybit v5 through the public `Protocol` API: the documented payloads
//! (`tests/fixtures/bybit/`, verbatim from exchanges.md §4 unless noted there)
//! become exact records, encodings, book messages and control outcomes.

mod common;

use common::alloc::allocs;
use common::venue::{jsons, map_of, set_of, Conn};
use marketprism::batch::{Batch, Record, TradeId};
use marketprism::model::{DataType, Side, VenueId};
use marketprism::venue::{protocol, FrameOutcome, InstrumentMap, Malformed};

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

const RECV: u64 = common::venue::RECV;

fn fixture(name: &str) -> String {
    common::fixtures::fixture("bybit", name)
}

/// BTCUSDT and ROSEUSDT, both wanting `wanted`.
fn conn(venue: VenueId, wanted: &[DataType]) -> Conn {
    let mut map = map_of(&[("BTCUSDT", "BTC", "USDT"), ("ROSEUSDT", "ROSE", "USDT")]);
    map.set_wanted("BTCUSDT", set_of(wanted));
    map.set_wanted("ROSEUSDT", set_of(wanted));
    Conn::new(venue, map)
}

fn all_linear() -> Conn {
    conn(
        VenueId::BybitLinear,
        &[
            DataType::Trade,
            DataType::OrderBook,
            DataType::Ticker,
            DataType::FundingRate,
            DataType::OpenInterest,
            DataType::Liquidation,
        ],
    )
}

#[test]
fn documented_trade() {
    let mut c = all_linear();
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("trade.json"), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Trade(t)) = b.iter().next() else {
        panic!("no trade")
    };
    assert_eq!(t.venue, VenueId::BybitLinear);
    assert_eq!((t.symbol, t.raw_symbol), ("BTC-USDT", "BTCUSDT"));
    assert_eq!(
        t.trade_id,
        TradeId::Str("20f43950-d8dd-5b31-9112-a178eb6023af")
    );
    assert_eq!(t.price.to_string(), "16578.50");
    assert_eq!(t.quantity.to_string(), "0.001");
    assert_eq!(t.side, Side::Buy);
    assert_eq!((t.contracts, t.is_maker), (None, None));
    assert_eq!((t.trade_ts_ms, t.ts_ms), (1672304486865, 1672304486868));
    assert_eq!(t.receive_ts_ns, RECV);
    assert_eq!(
        jsons(&b),
        [concat!(
            r#"{"data_type":"trade","exchange":"bybit","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","raw_symbol":"BTCUSDT","#,
            r#""trade_id":"20f43950-d8dd-5b31-9112-a178eb6023af","price":"16578.50","quantity":"0.001","side":"buy","#,
            r#""trade_ts_ms":1672304486865,"ts_ms":1672304486868,"collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#
        )]
    );
    // Spot: same payload, spot market type.
    let mut s = conn(VenueId::BybitSpot, &[DataType::Trade]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        s.feed_into(&fixture("trade.json"), &mut b),
        FrameOutcome::Records(1)
    );
    assert!(jsons(&b)[0].contains(r#""exchange":"bybit","market_type":"spot""#));
}

#[test]
fn several_trades_per_message_or_none() {
    let mut c = all_linear();
    let mut b = Batch::new(16, 1 << 16);
    let f = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":5,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.1","p":"100.0","i":"a"},{"T":2,"s":"BTCUSDT","S":"Sell","v":"0.2","p":"99.5","i":"b"}]}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(2));
    let sides: Vec<_> = b
        .iter()
        .map(|r| match r {
            Record::Trade(t) => (t.trade_id, t.side, t.trade_ts_ms, t.ts_ms),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        sides,
        [
            (TradeId::Str("a"), Side::Buy, 1, 5),
            (TradeId::Str("b"), Side::Sell, 2, 5)
        ]
    );
    // A bad second trade rejects the frame and pushes nothing.
    let mut b = Batch::new(16, 1 << 16);
    let f = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":5,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.1","p":"100.0","i":"a"},{"T":2,"s":"BTCUSDT","S":"Sell","v":"0.2","p":"9x","i":"b"}]}"#;
    assert_eq!(
        c.feed_into(f, &mut b),
        FrameOutcome::Malformed(Malformed::InvalidNumber)
    );
    assert!(b.is_empty());
}

#[test]
fn documented_book_snapshot_and_delta() {
    let mut c = all_linear();
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("book_snapshot.json"), &mut b),
        FrameOutcome::Book
    );
    let levels = |ls: &[marketprism::batch::Level]| {
        ls.iter()
            .map(|l| format!("{}@{}", l.quantity, l.price))
            .collect::<Vec<_>>()
    };
    let m = &c.book;
    assert_eq!(m.raw_symbol, "BTCUSDT");
    assert!(m.snapshot);
    assert_eq!(
        (m.first_id, m.last_id, m.prev_id),
        (18521288, 18521288, None)
    );
    assert_eq!(m.checksum, None);
    assert_eq!(m.ts_ms, 1672304484976, "cts, the engine time");
    assert_eq!(levels(&m.bids), ["0.006@16493.50", "0.100@16493.00"]);
    assert_eq!(levels(&m.asks), ["0.029@16611.00", "0.213@16612.00"]);

    assert_eq!(
        c.feed_into(&fixture("book_delta.json"), &mut b),
        FrameOutcome::Book
    );
    let m = &c.book;
    assert!(!m.snapshot);
    assert_eq!(
        (m.first_id, m.last_id, m.prev_id),
        (177400507, 177400507, None)
    );
    assert_eq!(m.ts_ms, 1687940967464);
    assert_eq!(
        levels(&m.bids),
        [
            "30.028@30247.20",
            "0.224@30245.40",
            "1.593@30242.10",
            "1.305@30240.30",
            "0@30240.00"
        ]
    );
    assert_eq!(levels(&m.asks).len(), 7);
    assert_eq!(levels(&m.asks)[0], "0@30248.70");
    assert!(b.is_empty());

    // Without `cts` the message time is `ts`.
    let f = r#"{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":77,"data":{"s":"BTCUSDT","b":[],"a":[["1.5","2"]],"u":9,"seq":1}}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Book);
    assert_eq!(
        (c.book.ts_ms, c.book.bids.len(), c.book.asks.len()),
        (77, 0, 1)
    );
}

#[test]
fn linear_tickers_snapshot_then_delta_merge() {
    let mut c = all_linear();
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("tickers_linear_snapshot.json"), &mut b),
        FrameOutcome::Records(3)
    );
    let tail = r#","ts_ms":1760325052630,"collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#;
    let head = |dt: &str| {
        format!(
            r#"{{"data_type":"{dt}","exchange":"bybit","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT""#
        )
    };
    assert_eq!(
        jsons(&b),
        [
            format!(
                r#"{},"best_bid_price":"66666.60","best_bid_quantity":"23789.165","best_ask_price":"66666.70","best_ask_quantity":"23775.469","last_price":"66666.60"{tail}"#,
                head("ticker")
            ),
            format!(
                r#"{},"current_funding_rate":"-0.005","next_funding_ts_ms":1760342400000,"mark_price":"66666.60","index_price":"115418.19"{tail}"#,
                head("funding_rate")
            ),
            format!(
                r#"{},"open_interest":"492373.72","open_interest_value":"492373.72","open_interest_unit":"coins","open_interest_usd":"32824881841.75"{tail}"#,
                head("open_interest")
            ),
        ]
    );

    // Delta with only the best bid: one ticker from the merged state.
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("tickers_linear_delta.json"), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Ticker(t)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(t.origin.ts_ms, 1787590405983);
    let s = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string());
    assert_eq!(s(t.bid_price).as_deref(), Some("79114.50"));
    assert_eq!(s(t.bid_quantity).as_deref(), Some("1.496"));
    assert_eq!(s(t.ask_price).as_deref(), Some("66666.70"));
    assert_eq!(s(t.ask_quantity).as_deref(), Some("23775.469"));
    assert_eq!(s(t.last_price).as_deref(), Some("66666.60"));
    assert_eq!(t.update_id, None);

    // Funding-only delta: one funding record, mark price from the cache.
    let mut b = Batch::new(16, 1 << 16);
    let f = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","fundingRate":"0.0001"},"cs":1,"ts":1787590406000}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(1));
    let Some(Record::Funding(fr)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(fr.funding_rate.to_string(), "0.0001");
    assert_eq!(fr.next_funding_ts_ms, Some(1760342400000));
    assert_eq!(s(fr.mark_price).as_deref(), Some("66666.60"));

    // Mark price alone and open interest: only open_interest.
    let mut b = Batch::new(16, 1 << 16);
    let f = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"79000.1","openInterest":"500000.00"},"cs":2,"ts":1787590406100}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(1));
    let Some(Record::OpenInterest(oi)) = b.iter().next() else {
        panic!()
    };
    assert_eq!(oi.open_interest.to_string(), "500000.00");
    assert_eq!(s(oi.value_usd).as_deref(), Some("32824881841.75"));
    let st = c
        .state
        .get::<marketprism::venue::bybit::State>()
        .unwrap()
        .ticker("BTCUSDT")
        .unwrap();
    assert_eq!(s(st.mark_price).as_deref(), Some("79000.1"));

    // Nothing we record changed.
    let f = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","turnover24h":"1"},"cs":3,"ts":1787590406200}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Ignored);

    // A new snapshot replaces the cache (fields it lacks are gone).
    let mut b = Batch::new(16, 1 << 16);
    let f = r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","lastPrice":"1.0"},"cs":4,"ts":1787590406300}"#;
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(1));
    let st = c
        .state
        .get::<marketprism::venue::bybit::State>()
        .unwrap()
        .ticker("BTCUSDT")
        .unwrap();
    assert_eq!(
        (st.bid_price, st.funding_rate, st.mark_price),
        (None, None, None)
    );
}

#[test]
fn tickers_emit_only_wanted_types() {
    let mut c = conn(VenueId::BybitLinear, &[DataType::FundingRate]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("tickers_linear_snapshot.json"), &mut b),
        FrameOutcome::Records(1)
    );
    assert!(matches!(b.iter().next(), Some(Record::Funding(_))));
    assert_eq!(
        c.feed_into(&fixture("tickers_linear_delta.json"), &mut b),
        FrameOutcome::Ignored
    );
}

#[test]
fn spot_ticker_has_last_price_only() {
    let mut c = conn(VenueId::BybitSpot, &[DataType::Ticker]);
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("tickers_spot_snapshot.json"), &mut b),
        FrameOutcome::Records(1)
    );
    assert_eq!(
        jsons(&b),
        [concat!(
            r#"{"data_type":"ticker","exchange":"bybit","market_type":"spot","symbol":"BTC-USDT","instrument_id":"BTCUSDT","last_price":"21109.77","#,
            r#""ts_ms":1673853746003,"collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#
        )]
    );
}

#[test]
fn documented_liquidation_is_the_opposite_order_side() {
    let mut c = all_linear();
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        c.feed_into(&fixture("liquidation.json"), &mut b),
        FrameOutcome::Records(1)
    );
    let Some(Record::Liquidation(l)) = b.iter().next() else {
        panic!()
    };
    // "Sell" position side: a short was liquidated by a buy order.
    assert_eq!(l.side, Side::Buy);
    assert_eq!(l.position_side, Some("short"));
    assert_eq!(
        jsons(&b),
        [concat!(
            r#"{"data_type":"liquidation","exchange":"bybit","market_type":"perpetual","symbol":"ROSE-USDT","instrument_id":"ROSEUSDT","#,
            r#""side":"buy","position_side":"short","price":"0.04499","quantity":"20000","liquidation_ts_ms":1739502302929,"#,
            r#""ts_ms":1739502303204,"collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#
        )]
    );
    let f = r#"{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":2,"data":[{"T":1,"s":"ROSEUSDT","S":"Buy","v":"1","p":"0.5"}]}"#;
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(c.feed_into(f, &mut b), FrameOutcome::Records(1));
    let Some(Record::Liquidation(l)) = b.iter().next() else {
        panic!()
    };
    assert_eq!((l.side, l.position_side), (Side::Sell, Some("long")));
}

#[test]
fn control_frames() {
    for venue in [VenueId::BybitSpot, VenueId::BybitLinear] {
        let mut c = conn(venue, &[DataType::Trade]);
        let mut b = Batch::new(16, 1 << 16);
        for line in fixture("control.jsonl").lines() {
            assert_eq!(c.feed_into(line, &mut b), FrameOutcome::Control, "{line}");
        }
        for line in fixture("control_error.jsonl").lines() {
            assert_eq!(
                c.feed_into(line, &mut b),
                FrameOutcome::ControlError,
                "{line}"
            );
        }
        assert!(b.is_empty() && c.replies.is_empty());
    }
}

#[test]
fn malformed_frames() {
    let mut c = all_linear();
    let cases = [
        ("not json", Malformed::BadJson),
        (
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1"#,
            Malformed::BadJson,
        ),
        (
            r#"{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1,"data":[]}"#,
            Malformed::UnknownEvent,
        ),
        (
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"topic":"publicTrade.DOGEUSDT","type":"snapshot","ts":1,"data":[]}"#,
            Malformed::UnknownSymbol,
        ),
        (
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":0.1,"p":"1","i":"x"}]}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Up","v":"0.1","p":"1","i":"x"}]}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"-0.1","p":"1","i":"x"}]}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["1e5","1"]],"a":[],"u":1}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"ETHUSDT","b":[],"a":[],"u":1}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"topic":"orderbook.200.BTCUSDT","type":"weird","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":{"symbol":"BTCUSDT","nextFundingTime":"soon"}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"topic":"tickers.ETHUSDT","type":"snapshot","ts":1,"data":{"symbol":"ETHUSDT","lastPrice":"1"}}"#,
            Malformed::UnknownSymbol,
        ),
        (r#"{"hello":1}"#, Malformed::UnknownEvent),
    ];
    for (text, want) in cases {
        let mut b = Batch::new(16, 1 << 16);
        assert_eq!(
            c.feed_into(text, &mut b),
            FrameOutcome::Malformed(want),
            "{text}"
        );
        assert!(b.is_empty(), "{text}");
    }
}

#[test]
fn subscribe_and_unsubscribe_frames() {
    let spot = protocol(VenueId::BybitSpot);
    let ch: Vec<String> = [
        "publicTrade.BTCUSDT",
        "orderbook.200.BTCUSDT",
        "tickers.BTCUSDT",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        spot.subscribe_frames(&ch),
        [
            r#"{"req_id":"1","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.200.BTCUSDT","tickers.BTCUSDT"]}"#
        ]
    );
    assert_eq!(
        spot.unsubscribe_frames(&ch[1..2]),
        [r#"{"req_id":"1","op":"unsubscribe","args":["orderbook.200.BTCUSDT"]}"#]
    );
    let many: Vec<String> = (0..25).map(|i| format!("publicTrade.S{i}USDT")).collect();
    let f = spot.subscribe_frames(&many);
    assert_eq!(f.len(), 3);
    assert!(f[1].starts_with(r#"{"req_id":"2","op":"subscribe","args":["publicTrade.S10USDT","#));
    assert_eq!(
        protocol(VenueId::BybitLinear).subscribe_frames(&many).len(),
        1
    );
    let hb = spot.heartbeat().unwrap();
    assert_eq!((hb.every.as_secs(), hb.frame), (20, r#"{"op":"ping"}"#));
    assert_eq!(
        spot.endpoints().ws_url,
        "wss://stream.bybit.com/v5/public/spot"
    );
    assert_eq!(
        protocol(VenueId::BybitLinear).endpoints().ws_url,
        "wss://stream.bybit.com/v5/public/linear"
    );
    let linear = protocol(VenueId::BybitLinear);
    let conn_channels: Vec<String> = [
        DataType::Ticker,
        DataType::FundingRate,
        DataType::OpenInterest,
    ]
    .map(|dt| linear.channel("BTCUSDT", dt))
    .to_vec();
    assert!(conn_channels.iter().all(|c| c == "tickers.BTCUSDT"));
}

#[test]
fn instruments_pages() {
    let linear = protocol(VenueId::BybitLinear);
    assert_eq!(
        linear.instruments_request(None).unwrap().path,
        "/v5/market/instruments-info?category=linear&limit=1000"
    );
    let mut map = InstrumentMap::default();
    let next = linear
        .parse_instruments(fixture("instruments_linear.json").as_bytes(), &mut map)
        .unwrap();
    assert_eq!(
        next.as_deref(),
        Some("first%3D10000000%26last%3D1000PEPEUSDT")
    );
    assert_eq!(
        linear.instruments_request(next.as_deref()).unwrap().path,
        "/v5/market/instruments-info?category=linear&limit=1000&cursor=first%3D10000000%26last%3D1000PEPEUSDT"
    );
    assert_eq!(map.len(), 3, "dated futures are dropped");
    assert_eq!(map.normalize("BTCUSDT"), Some("BTC-USDT"));
    assert_eq!(map.normalize("BTCPERP"), Some("BTC-USDC"));
    assert_eq!(map.normalize("BTC-26DEC25"), None);
    assert!(!map.get("1000PEPEUSDT").unwrap().trading);

    let spot = protocol(VenueId::BybitSpot);
    let mut map = InstrumentMap::default();
    let next = spot
        .parse_instruments(fixture("instruments_spot.json").as_bytes(), &mut map)
        .unwrap();
    assert_eq!(next, None);
    assert_eq!(map.normalize("ETHBTC"), Some("ETH-BTC"));
    assert!(spot
        .parse_instruments(br#"{"retCode":10001,"retMsg":"bad","result":{}}"#, &mut map)
        .is_err());
    assert!(spot.parse_instruments(b"<html>", &mut map).is_err());
}

#[test]
fn account_ratio_poll() {
    let linear = protocol(VenueId::BybitLinear);
    let c = all_linear();
    let inst = c.map.get("BTCUSDT").unwrap();
    assert_eq!(
        linear
            .poll_request(DataType::LsrAllAccount, inst)
            .unwrap()
            .path,
        "/v5/market/account-ratio?category=linear&symbol=BTCUSDT&period=5min&limit=1"
    );
    assert_eq!(
        protocol(VenueId::BybitSpot).poll_request(DataType::LsrAllAccount, inst),
        None
    );
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        linear.parse_poll(
            DataType::LsrAllAccount,
            inst,
            fixture("account_ratio.json").as_bytes(),
            RECV,
            &mut b
        ),
        FrameOutcome::Records(1)
    );
    assert_eq!(
        jsons(&b),
        [concat!(
            r#"{"data_type":"lsr_all_account","exchange":"bybit","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","#,
            r#""long_short_ratio":"1.36798484","long_account_ratio":"0.5777","short_account_ratio":"0.4223","period":"5m","#,
            r#""ts_ms":1695772800000,"collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#
        )]
    );
    let mut b = Batch::new(16, 1 << 16);
    assert_eq!(
        linear.parse_poll(
            DataType::LsrAllAccount,
            inst,
            br#"{"retCode":0,"retMsg":"OK","result":{"list":[]}}"#,
            RECV,
            &mut b
        ),
        FrameOutcome::Ignored
    );
    assert_eq!(
        linear.parse_poll(
            DataType::LsrAllAccount,
            inst,
            br#"{"retCode":10001,"retMsg":"params error","result":{}}"#,
            RECV,
            &mut b
        ),
        FrameOutcome::ControlError
    );
    assert!(b.is_empty());
}

/// Steady state: trades, book deltas and ticker deltas allocate nothing.
#[test]
fn steady_state_allocates_nothing() {
    let mut c = all_linear();
    let mut b = Batch::new(4096, 1 << 20);
    let frames = [
        fixture("trade.json"),
        fixture("book_snapshot.json"),
        fixture("book_delta.json"),
        fixture("tickers_linear_snapshot.json"),
        fixture("tickers_linear_delta.json"),
        fixture("liquidation.json"),
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

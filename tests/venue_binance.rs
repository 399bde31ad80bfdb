//! Binance spot and USDⓈ-M through the public `Protocol`: every documented
//! payload (tests/fixtures/binance) → the exact normalized record and its
//! exact MarketPrism JSON line; REST answers → snapshots and polled records;
//! the recorded 2021 sessions replayed frame by frame.

mod common;

use common::alloc::allocs;
use common::fixtures::capture;
use common::venue::{answers, frames, json, map_of, Conn, RECV};
use marketprism::batch::{Level, Record, TradeId};
use marketprism::book::BookMsg;
use marketprism::model::{DataType, Side, VenueId};
use marketprism::venue::{self, FrameOutcome, InstrumentMap, Malformed};
use rust_decimal::Decimal;
use std::collections::HashMap;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

const SPOT: VenueId = VenueId::BinanceSpot;
const FUT: VenueId = VenueId::BinanceDerivatives;
const RECV_MS: u64 = 1_700_000_000_123;
/// `,"collected_ts_ms":..,"receive_ts_ns":..,"data_source":"marketprism"}` for RECV.
const TAIL: &str = r#""collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#;

fn fixture(name: &str) -> String {
    common::fixtures::fixture("binance", name)
}

/// The combined-stream envelope around a raw payload.
fn combined(stream: &str, payload: &str) -> String {
    format!(r#"{{"stream":"{stream}","data":{payload}}}"#)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn lv(p: &str, q: &str) -> Level {
    Level::new(dec(p), dec(q))
}

fn spot() -> Conn {
    Conn::new(
        SPOT,
        map_of(&[("BNBBTC", "BNB", "BTC"), ("BNBUSDT", "BNB", "USDT")]),
    )
}

fn futures() -> Conn {
    Conn::new(
        FUT,
        map_of(&[("BTCUSDT", "BTC", "USDT"), ("BNBUSDT", "BNB", "USDT")]),
    )
}

// ---------------------------------------------------------------------------
// Spot
// ---------------------------------------------------------------------------

#[test]
fn spot_trade() {
    let mut h = spot();
    let f = combined("bnbbtc@trade", &fixture("spot_trade.json"));
    assert_eq!(h.feed_as(SPOT, &f), FrameOutcome::Records(1));
    let rec = h.only();
    let Record::Trade(t) = rec else {
        panic!("{rec:?}")
    };
    assert_eq!(t.venue, SPOT);
    assert_eq!(t.symbol, "BNB-BTC");
    assert_eq!(t.raw_symbol, "BNBBTC");
    assert_eq!(t.trade_id, TradeId::Num(12345));
    assert_eq!(t.price.to_string(), "0.001");
    assert_eq!(t.quantity.to_string(), "100");
    assert_eq!(t.contracts, None);
    assert_eq!(t.side, Side::Sell);
    assert_eq!(t.is_maker, Some(true));
    assert_eq!(t.trade_ts_ms, 1672515782136);
    assert_eq!(t.ts_ms, 1672515782136);
    assert_eq!(t.receive_ts_ns, RECV);
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"trade","exchange":"binance","market_type":"spot","symbol":"BNB-BTC","instrument_id":"BNBBTC","raw_symbol":"BNBBTC","trade_id":"12345","price":"0.001","quantity":"100","side":"sell","is_maker":true,"trade_ts_ms":1672515782136,"ts_ms":1672515782136,{TAIL}"#
        )
    );
}

#[test]
fn spot_agg_trade_uses_the_aggregate_id() {
    let mut h = spot();
    let f = combined("bnbbtc@aggTrade", &fixture("spot_agg_trade.json"));
    assert_eq!(h.feed_as(SPOT, &f), FrameOutcome::Records(1));
    let Record::Trade(t) = h.only() else { panic!() };
    assert_eq!(
        (t.venue, t.symbol, t.raw_symbol, t.trade_id),
        (SPOT, "BNB-BTC", "BNBBTC", TradeId::Num(12345))
    );
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string()),
        ("0.001".into(), "100".into())
    );
    assert_eq!((t.side, t.is_maker), (Side::Sell, Some(true)));
    assert_eq!(
        (t.trade_ts_ms, t.ts_ms, t.receive_ts_ns),
        (1672515782136, 1672515782136, RECV)
    );
}

#[test]
fn spot_depth_update() {
    let mut h = spot();
    let f = combined("bnbbtc@depth@100ms", &fixture("spot_depth_update.json"));
    assert_eq!(h.feed_as(SPOT, &f), FrameOutcome::Book);
    assert!(h.batch.is_empty());
    let b = &h.book;
    assert_eq!(b.raw_symbol, "BNBBTC");
    assert!(!b.snapshot);
    assert_eq!((b.first_id, b.last_id, b.prev_id), (157, 160, None));
    assert_eq!(b.checksum, None);
    assert_eq!(b.ts_ms, 1672515782136);
    assert_eq!(b.bids, vec![lv("0.0024", "10")]);
    assert_eq!(b.asks, vec![lv("0.0026", "100")]);
}

#[test]
fn spot_depth_snapshot() {
    let p = venue::protocol(SPOT);
    assert_eq!(
        p.book_snapshot_request("BNBBTC", 1000)
            .map(|r| (r.path, r.weight)),
        Some(("/api/v3/depth?symbol=BNBBTC&limit=1000".to_string(), 50))
    );
    let mut msg = BookMsg::default();
    let body = fixture("spot_depth_snapshot.json");
    p.parse_book_snapshot("BNBBTC", body.as_bytes(), RECV, &mut msg)
        .unwrap();
    assert_eq!(msg.raw_symbol, "BNBBTC");
    assert!(msg.snapshot);
    assert_eq!(
        (msg.first_id, msg.last_id, msg.prev_id),
        (1027024, 1027024, None)
    );
    assert_eq!(msg.checksum, None);
    assert_eq!(msg.ts_ms, RECV_MS, "spot snapshots carry no time");
    assert_eq!(msg.bids, vec![lv("4.00000000", "431.00000000")]);
    assert_eq!(msg.asks, vec![lv("4.00000200", "12.00000000")]);
    assert_eq!(msg.bids[0].price.to_string(), "4.00000000");
}

#[test]
fn spot_book_ticker_is_stamped_with_receive_time() {
    let mut h = spot();
    let f = combined("bnbusdt@bookTicker", &fixture("spot_book_ticker.json"));
    assert_eq!(h.feed_as(SPOT, &f), FrameOutcome::Records(1));
    let rec = h.only();
    let Record::Ticker(t) = rec else { panic!() };
    assert_eq!(t.origin.venue, SPOT);
    assert_eq!(t.origin.symbol, "BNB-USDT");
    assert_eq!(t.origin.raw_symbol, "BNBUSDT");
    assert_eq!(t.origin.ts_ms, RECV_MS);
    assert_eq!(t.origin.receive_ts_ns, RECV);
    assert_eq!(t.bid_price.unwrap().to_string(), "25.35190000");
    assert_eq!(t.bid_quantity.unwrap().to_string(), "31.21000000");
    assert_eq!(t.ask_price.unwrap().to_string(), "25.36520000");
    assert_eq!(t.ask_quantity.unwrap().to_string(), "40.66000000");
    assert_eq!(t.last_price, None);
    assert_eq!(t.update_id, Some(400900217));
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"ticker","exchange":"binance","market_type":"spot","symbol":"BNB-USDT","instrument_id":"BNBUSDT","best_bid_price":"25.35190000","best_bid_quantity":"31.21000000","best_ask_price":"25.36520000","best_ask_quantity":"40.66000000","update_id":400900217,"ts_ms":1700000000123,{TAIL}"#
        )
    );
}

#[test]
fn control_frames() {
    let mut h = spot();
    for venue in [SPOT, FUT] {
        assert_eq!(
            h.feed_as(venue, &fixture("spot_server_shutdown.json")),
            FrameOutcome::Notice
        );
        assert_eq!(
            h.feed_as(venue, r#"{"result":null,"id":1}"#),
            FrameOutcome::Control
        );
        assert_eq!(
            h.feed_as(
                venue,
                r#"{"code": 2, "msg": "Invalid request: too many parameters"}"#
            ),
            FrameOutcome::ControlError
        );
        assert_eq!(
            h.feed_as(
                venue,
                r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#
            ),
            FrameOutcome::ControlError
        );
    }
    assert!(h.batch.is_empty());
}

// ---------------------------------------------------------------------------
// USDⓈ-M
// ---------------------------------------------------------------------------

#[test]
fn futures_agg_trade() {
    let mut h = futures();
    let f = combined("btcusdt@aggTrade", &fixture("futures_agg_trade.json"));
    assert_eq!(h.feed_as(FUT, &f), FrameOutcome::Records(1));
    let rec = h.only();
    let Record::Trade(t) = rec else { panic!() };
    assert_eq!(t.venue, FUT);
    assert_eq!(t.symbol, "BTC-USDT");
    assert_eq!(t.raw_symbol, "BTCUSDT");
    assert_eq!(t.trade_id, TradeId::Num(5933014));
    assert_eq!(t.price.to_string(), "0.001");
    assert_eq!(t.quantity.to_string(), "100");
    assert_eq!(t.contracts, None);
    assert_eq!(t.side, Side::Sell);
    assert_eq!(t.is_maker, Some(true));
    assert_eq!(t.trade_ts_ms, 123456785);
    assert_eq!(t.ts_ms, 123456789);
    assert_eq!(t.receive_ts_ns, RECV);
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"trade","exchange":"binance","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","raw_symbol":"BTCUSDT","trade_id":"5933014","price":"0.001","quantity":"100","side":"sell","is_maker":true,"trade_ts_ms":123456785,"ts_ms":123456789,{TAIL}"#
        )
    );
}

#[test]
fn futures_depth_update() {
    let mut h = futures();
    let f = combined("btcusdt@depth@100ms", &fixture("futures_depth_update.json"));
    assert_eq!(h.feed_as(FUT, &f), FrameOutcome::Book);
    assert!(h.batch.is_empty());
    let b = &h.book;
    assert_eq!(b.raw_symbol, "BTCUSDT");
    assert!(!b.snapshot);
    assert_eq!((b.first_id, b.last_id, b.prev_id), (157, 160, Some(149)));
    assert_eq!(b.checksum, None);
    assert_eq!(b.ts_ms, 123456789);
    assert_eq!(b.bids, vec![lv("0.0024", "10")]);
    assert_eq!(b.asks, vec![lv("0.0026", "100")]);
}

#[test]
fn futures_depth_snapshot() {
    let p = venue::protocol(FUT);
    assert_eq!(
        p.book_snapshot_request("BTCUSDT", 400)
            .map(|r| (r.path, r.weight)),
        Some(("/fapi/v1/depth?symbol=BTCUSDT&limit=500".to_string(), 10))
    );
    let mut msg = BookMsg::default();
    let body = fixture("futures_depth_snapshot.json");
    p.parse_book_snapshot("BTCUSDT", body.as_bytes(), RECV, &mut msg)
        .unwrap();
    assert_eq!(msg.raw_symbol, "BTCUSDT");
    assert!(msg.snapshot);
    assert_eq!(
        (msg.first_id, msg.last_id, msg.prev_id),
        (1027024, 1027024, None)
    );
    assert_eq!(msg.ts_ms, 1589436922972);
    assert_eq!(msg.bids, vec![lv("4.00000000", "431.00000000")]);
    assert_eq!(msg.asks, vec![lv("4.00000200", "12.00000000")]);
}

#[test]
fn futures_book_ticker() {
    let mut h = futures();
    let f = combined("bnbusdt@bookTicker", &fixture("futures_book_ticker.json"));
    assert_eq!(h.feed_as(FUT, &f), FrameOutcome::Records(1));
    let rec = h.only();
    let Record::Ticker(t) = rec else { panic!() };
    assert_eq!(t.origin.venue, FUT);
    assert_eq!(t.origin.symbol, "BNB-USDT");
    assert_eq!(t.origin.raw_symbol, "BNBUSDT");
    assert_eq!(t.origin.ts_ms, 1568014460893);
    assert_eq!(t.origin.receive_ts_ns, RECV);
    assert_eq!(t.bid_price.unwrap().to_string(), "25.35190000");
    assert_eq!(t.bid_quantity.unwrap().to_string(), "31.21000000");
    assert_eq!(t.ask_price.unwrap().to_string(), "25.36520000");
    assert_eq!(t.ask_quantity.unwrap().to_string(), "40.66000000");
    assert_eq!(t.last_price, None);
    assert_eq!(t.update_id, Some(400900217));
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"ticker","exchange":"binance","market_type":"perpetual","symbol":"BNB-USDT","instrument_id":"BNBUSDT","best_bid_price":"25.35190000","best_bid_quantity":"31.21000000","best_ask_price":"25.36520000","best_ask_quantity":"40.66000000","update_id":400900217,"ts_ms":1568014460893,{TAIL}"#
        )
    );
}

#[test]
fn futures_mark_price_is_a_funding_rate() {
    let mut h = futures();
    let f = combined("btcusdt@markPrice@1s", &fixture("futures_mark_price.json"));
    assert_eq!(h.feed_as(FUT, &f), FrameOutcome::Records(1));
    let rec = h.only();
    let Record::Funding(r) = rec else { panic!() };
    assert_eq!(r.origin.venue, FUT);
    assert_eq!(r.origin.symbol, "BTC-USDT");
    assert_eq!(r.origin.raw_symbol, "BTCUSDT");
    assert_eq!(r.origin.ts_ms, 1562305380000);
    assert_eq!(r.origin.receive_ts_ns, RECV);
    assert_eq!(r.funding_rate.to_string(), "0.00038167");
    assert_eq!(r.estimated_rate, None);
    assert_eq!(r.funding_ts_ms, None);
    assert_eq!(r.next_funding_ts_ms, Some(1562306400000));
    assert_eq!(r.mark_price.unwrap().to_string(), "11794.15000000");
    assert_eq!(r.index_price.unwrap().to_string(), "11784.62659091");
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"funding_rate","exchange":"binance","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","current_funding_rate":"0.00038167","next_funding_ts_ms":1562306400000,"mark_price":"11794.15000000","index_price":"11784.62659091","ts_ms":1562305380000,{TAIL}"#
        )
    );
}

#[test]
fn funding_rates_may_be_negative_and_empty_ones_are_ignored() {
    let mut h = futures();
    let neg = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1.0","i":"1.0","P":"1.0","r":"-0.00012500","T":2}}"#;
    assert_eq!(h.feed_as(FUT, neg), FrameOutcome::Records(1));
    let Record::Funding(r) = h.only() else {
        panic!()
    };
    assert_eq!(r.funding_rate.to_string(), "-0.00012500");
    let delivery = r#"{"stream":"!markPrice@arr","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1.0","i":"1.0","P":"1.0","r":"","T":0}}"#;
    assert_eq!(h.feed_as(FUT, delivery), FrameOutcome::Ignored);
    assert_eq!(h.batch.len(), 1);
}

#[test]
fn futures_force_order_is_a_liquidation() {
    let mut h = futures();
    let f = combined("btcusdt@forceOrder", &fixture("futures_force_order.json"));
    assert_eq!(h.feed_as(FUT, &f), FrameOutcome::Records(1));
    let rec = h.only();
    let Record::Liquidation(l) = rec else {
        panic!()
    };
    assert_eq!(l.origin.venue, FUT);
    assert_eq!(l.origin.symbol, "BTC-USDT");
    assert_eq!(l.origin.raw_symbol, "BTCUSDT");
    assert_eq!(l.origin.ts_ms, 1568014460893);
    assert_eq!(l.origin.receive_ts_ns, RECV);
    assert_eq!(l.side, Side::Sell, "the liquidation order's side");
    assert_eq!(l.position_side, Some("long"), "a SELL closes a long");
    assert_eq!(l.price.to_string(), "9910");
    assert_eq!(l.quantity.to_string(), "0.014");
    assert_eq!(l.contracts, None);
    assert_eq!(l.liquidation_ts_ms, 1568014460893);
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"liquidation","exchange":"binance","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","side":"sell","position_side":"long","price":"9910","quantity":"0.014","liquidation_ts_ms":1568014460893,"ts_ms":1568014460893,{TAIL}"#
        )
    );
}

#[test]
fn liquidation_price_is_the_average_fill_where_there_is_one() {
    let mut h = futures();
    let buy = r#"{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":5,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"2.5","p":"101.10","ap":"100.95","X":"FILLED","l":"2.5","z":"2.5","T":4}}}"#;
    assert_eq!(h.feed_as(FUT, buy), FrameOutcome::Records(1));
    let Record::Liquidation(l) = h.only() else {
        panic!()
    };
    assert_eq!((l.side, l.position_side), (Side::Buy, Some("short")));
    assert_eq!(l.price.to_string(), "100.95");
    assert_eq!((l.origin.ts_ms, l.liquidation_ts_ms), (5, 4));
    h.batch.reset();
    let unfilled = buy.replace(r#""ap":"100.95""#, r#""ap":"0""#);
    assert_eq!(h.feed_as(FUT, &unfilled), FrameOutcome::Records(1));
    let Record::Liquidation(l) = h.only() else {
        panic!()
    };
    assert_eq!(l.price.to_string(), "101.10");
    h.batch.reset();
    let no_ap = buy.replace(r#""ap":"100.95","#, "");
    assert_eq!(h.feed_as(FUT, &no_ap), FrameOutcome::Records(1));
    let Record::Liquidation(l) = h.only() else {
        panic!()
    };
    assert_eq!(l.price.to_string(), "101.10");
}

#[test]
fn futures_open_interest_poll() {
    let mut h = futures();
    let body = fixture("futures_open_interest.json");
    // Polled twice: the same record twice (de-duplication is the engine's).
    for n in 1..=2 {
        assert_eq!(
            h.poll(DataType::OpenInterest, "BTCUSDT", &body),
            FrameOutcome::Records(1)
        );
        assert_eq!(h.batch.len(), n);
    }
    let recs: Vec<Record<'_>> = h.batch.iter().copied().collect();
    assert_eq!(recs[0], recs[1]);
    let Record::OpenInterest(o) = recs[0] else {
        panic!()
    };
    assert_eq!(o.origin.venue, FUT);
    assert_eq!(o.origin.symbol, "BTC-USDT");
    assert_eq!(o.origin.raw_symbol, "BTCUSDT");
    assert_eq!(o.origin.ts_ms, 1589437530011);
    assert_eq!(o.origin.receive_ts_ns, RECV);
    assert_eq!(o.open_interest.to_string(), "10659.509");
    assert_eq!(o.contracts, None);
    assert_eq!(o.value_usd, None);
    assert_eq!(
        json(&recs[0]),
        format!(
            r#"{{"data_type":"open_interest","exchange":"binance","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","open_interest":"10659.509","open_interest_value":"10659.509","open_interest_unit":"coins","ts_ms":1589437530011,{TAIL}"#
        )
    );
}

#[test]
fn futures_long_short_ratio_polls() {
    let mut h = futures();
    let top = fixture("futures_lsr_top_position.json");
    assert_eq!(
        h.poll(DataType::LsrTopPosition, "BTCUSDT", &top),
        FrameOutcome::Records(1)
    );
    let rec = h.only();
    let Record::Lsr(l) = rec else { panic!() };
    assert_eq!(l.origin.venue, FUT);
    assert_eq!(l.origin.symbol, "BTC-USDT");
    assert_eq!(l.origin.raw_symbol, "BTCUSDT");
    assert_eq!(l.origin.ts_ms, 1583139600000);
    assert_eq!(l.origin.receive_ts_ns, RECV);
    assert_eq!(l.data_type, DataType::LsrTopPosition);
    assert_eq!(l.long_short_ratio.to_string(), "1.4342");
    assert_eq!(l.long_ratio.unwrap().to_string(), "0.5344");
    assert_eq!(l.short_ratio.unwrap().to_string(), "0.4656");
    assert_eq!(l.period, "5m");
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"lsr_top_position","exchange":"binance","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","long_short_ratio":"1.4342","long_position_ratio":"0.5344","short_position_ratio":"0.4656","period":"5m","ts_ms":1583139600000,{TAIL}"#
        )
    );

    let mut h = futures();
    let all = fixture("futures_lsr_all_account.json");
    assert_eq!(
        h.poll(DataType::LsrAllAccount, "BTCUSDT", &all),
        FrameOutcome::Records(1)
    );
    let rec = h.only();
    let Record::Lsr(l) = rec else { panic!() };
    assert_eq!(l.origin.ts_ms, 1583139900000);
    assert_eq!(l.data_type, DataType::LsrAllAccount);
    assert_eq!(l.long_short_ratio.to_string(), "1.9559");
    assert_eq!(l.long_ratio.unwrap().to_string(), "0.6617");
    assert_eq!(l.short_ratio.unwrap().to_string(), "0.3383");
    assert_eq!(l.period, "5m");
    assert_eq!(
        json(&rec),
        format!(
            r#"{{"data_type":"lsr_all_account","exchange":"binance","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTCUSDT","long_short_ratio":"1.9559","long_account_ratio":"0.6617","short_account_ratio":"0.3383","period":"5m","ts_ms":1583139900000,{TAIL}"#
        )
    );

    // Several datapoints: one record each; none: zero records.
    let mut h = futures();
    let two = format!("[{},{}]", &top[1..top.len() - 1], &all[1..all.len() - 1]);
    assert_eq!(
        h.poll(DataType::LsrAllAccount, "BTCUSDT", &two),
        FrameOutcome::Records(2)
    );
    assert_eq!(
        h.poll(DataType::LsrAllAccount, "BTCUSDT", "[]"),
        FrameOutcome::Records(0)
    );
    assert_eq!(h.batch.len(), 2);
}

#[test]
fn rest_error_bodies() {
    let mut h = futures();
    let err = fixture("error_invalid_symbol.json");
    for dt in [
        DataType::OpenInterest,
        DataType::LsrTopPosition,
        DataType::LsrAllAccount,
    ] {
        assert_eq!(
            h.poll(dt, "BTCUSDT", &err),
            FrameOutcome::ControlError,
            "{dt}"
        );
        assert_eq!(
            h.poll(dt, "BTCUSDT", "<html>"),
            FrameOutcome::Malformed(Malformed::BadJson),
            "{dt}"
        );
        assert_eq!(
            h.poll(dt, "BTCUSDT", ""),
            FrameOutcome::Malformed(Malformed::BadJson),
            "{dt}"
        );
    }
    let cases = [
        (
            DataType::OpenInterest,
            r#"{"openInterest":"x","symbol":"BTCUSDT","time":1}"#,
            Malformed::InvalidNumber,
        ),
        (
            DataType::OpenInterest,
            r#"{"openInterest":"1","symbol":"BTCUSDT"}"#,
            Malformed::WrongType,
        ),
        (
            DataType::OpenInterest,
            r#"{"openInterest":1.5,"symbol":"BTCUSDT","time":1}"#,
            Malformed::WrongType,
        ),
        (
            DataType::OpenInterest,
            r#"{"openInterest":"1","symbol":"ETHUSDT","time":1}"#,
            Malformed::UnknownSymbol,
        ),
        (
            DataType::LsrTopPosition,
            r#"[{"symbol":"BTCUSDT","longShortRatio":"1.5","longAccount":"0.6","shortAccount":"0.4"}]"#,
            Malformed::WrongType,
        ),
        (
            DataType::LsrTopPosition,
            r#"[{"symbol":"BTCUSDT","longShortRatio":"1,5","longAccount":"0.6","shortAccount":"0.4","timestamp":1}]"#,
            Malformed::InvalidNumber,
        ),
        (
            DataType::LsrTopPosition,
            r#"[{"symbol":"BTCUSDT","longShortRatio":"1.5","longAccount":"0.6","shortAccount":"0.4","timestamp":"soon"}]"#,
            Malformed::WrongType,
        ),
        (
            DataType::LsrAllAccount,
            r#"{"symbol":"BTCUSDT"}"#,
            Malformed::WrongType,
        ),
        (DataType::LsrAllAccount, r#"[1]"#, Malformed::WrongType),
        (DataType::Trade, r#"[]"#, Malformed::UnknownEvent),
    ];
    for (dt, body, want) in cases {
        assert_eq!(
            h.poll(dt, "BTCUSDT", body),
            FrameOutcome::Malformed(want),
            "{body}"
        );
    }
    assert!(h.batch.is_empty());

    for venue in [SPOT, FUT] {
        let p = venue::protocol(venue);
        let mut msg = BookMsg::default();
        let snap = |body: &str, msg: &mut BookMsg| {
            p.parse_book_snapshot("BTCUSDT", body.as_bytes(), RECV, msg)
        };
        assert_eq!(snap(&err, &mut msg), Err(Malformed::UnknownSymbol));
        assert_eq!(
            snap(r#"{"code":-1003,"msg":"Too many requests"}"#, &mut msg),
            Err(Malformed::WrongType)
        );
        assert_eq!(snap("<html>", &mut msg), Err(Malformed::BadJson));
        assert_eq!(
            snap(r#"{"lastUpdateId":1,"bids":[]}"#, &mut msg),
            Err(Malformed::WrongType)
        );
        assert_eq!(
            snap(
                r#"{"lastUpdateId":1,"bids":[["1","-2"]],"asks":[]}"#,
                &mut msg
            ),
            Err(Malformed::InvalidNumber)
        );
        assert_eq!(
            msg,
            BookMsg::default(),
            "a rejected snapshot leaves nothing"
        );
    }
}

#[test]
fn futures_malformed_events() {
    let mut h = futures();
    let cases = [
        (
            r#"{"stream":"ethusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"ETHUSDT","a":1,"p":"1","q":"1","T":1,"m":true}}"#,
            Malformed::UnknownSymbol,
        ),
        (
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","p":"1","q":"1","T":1,"m":true}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":"1","p":"1","q":"1","T":1,"m":true}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"1.2.3","q":"1","T":1,"m":true}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","r":"abc","T":2}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","i":"1","T":2}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"ethusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1,"s":"ETHUSDT","p":"1","i":"1","r":"0.1","T":2}}"#,
            Malformed::UnknownSymbol,
        ),
        (
            r#"{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"HOLD","q":"1","p":"1","T":1}}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"1","p":"1","ap":"x","T":1}}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1"}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"-1"}}"#,
            Malformed::InvalidNumber,
        ),
        (
            r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1}}}"#,
            Malformed::UnknownEvent,
        ),
        (
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}"#,
            Malformed::WrongType,
        ),
        (
            r#"{"stream":"btcusdt@aggTrade","data":"#,
            Malformed::BadJson,
        ),
        (
            r#"{"stream":"btcusdt@aggTrade","data":{}} x"#,
            Malformed::BadJson,
        ),
    ];
    for (f, want) in cases {
        assert_eq!(h.feed_as(FUT, f), FrameOutcome::Malformed(want), "{f}");
    }
    assert!(h.batch.is_empty());
}

/// Every frame kind, once warmed up (book vectors grown, arena sized),
/// parses without touching the heap.
#[test]
fn steady_state_frames_allocate_nothing() {
    let spot_frames = [
        combined("bnbbtc@trade", &fixture("spot_trade.json")),
        combined("bnbbtc@aggTrade", &fixture("spot_agg_trade.json")),
        combined("bnbbtc@depth@100ms", &fixture("spot_depth_update.json")),
        combined("bnbusdt@bookTicker", &fixture("spot_book_ticker.json")),
    ];
    let fut_frames = [
        combined("btcusdt@aggTrade", &fixture("futures_agg_trade.json")),
        combined("btcusdt@depth@100ms", &fixture("futures_depth_update.json")),
        combined("bnbusdt@bookTicker", &fixture("futures_book_ticker.json")),
        combined("btcusdt@markPrice@1s", &fixture("futures_mark_price.json")),
        combined("btcusdt@forceOrder", &fixture("futures_force_order.json")),
    ];
    let mut s = spot();
    let mut f = futures();
    let mut run = |rounds: usize| {
        for _ in 0..rounds {
            for fr in &spot_frames {
                assert!(!matches!(s.feed_as(SPOT, fr), FrameOutcome::Malformed(_)));
            }
            for fr in &fut_frames {
                assert!(!matches!(f.feed_as(FUT, fr), FrameOutcome::Malformed(_)));
            }
            s.batch.reset();
            f.batch.reset();
        }
    };
    run(3);
    let before = allocs();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(8)));
    assert_eq!(allocs() - before, 1, "the counter counts");
    let before = allocs();
    run(1000);
    assert_eq!(allocs() - before, 0, "heap allocations in steady state");
}

/// Truncated and mutated frames and bodies are rejected, never a panic, and a
/// rejected frame pushes nothing.
#[test]
fn mangled_input_never_panics() {
    let frames = [
        (SPOT, combined("bnbbtc@trade", &fixture("spot_trade.json"))),
        (
            SPOT,
            combined("bnbbtc@depth@100ms", &fixture("spot_depth_update.json")),
        ),
        (
            SPOT,
            combined("bnbusdt@bookTicker", &fixture("spot_book_ticker.json")),
        ),
        (
            FUT,
            combined("btcusdt@aggTrade", &fixture("futures_agg_trade.json")),
        ),
        (
            FUT,
            combined("btcusdt@depth@100ms", &fixture("futures_depth_update.json")),
        ),
        (
            FUT,
            combined("btcusdt@markPrice@1s", &fixture("futures_mark_price.json")),
        ),
        (
            FUT,
            combined("btcusdt@forceOrder", &fixture("futures_force_order.json")),
        ),
    ];
    let bodies = [
        (
            DataType::OpenInterest,
            fixture("futures_open_interest.json"),
        ),
        (
            DataType::LsrTopPosition,
            fixture("futures_lsr_top_position.json"),
        ),
        (
            DataType::LsrAllAccount,
            fixture("futures_lsr_all_account.json"),
        ),
    ];
    let snapshots = [
        (SPOT, fixture("spot_depth_snapshot.json")),
        (FUT, fixture("futures_depth_snapshot.json")),
    ];
    let subst = [
        '"', '{', '}', '[', ']', ',', ':', '0', '-', '\\', 'a', ' ', 'é',
    ];
    let variants = |text: &str| -> Vec<String> {
        let mut out = Vec::new();
        for (i, _) in text.char_indices() {
            out.push(text[..i].to_string());
            for c in subst {
                let mut t = String::with_capacity(text.len() + 2);
                t.push_str(&text[..i]);
                t.push(c);
                let rest = &text[i..];
                t.push_str(&rest[rest.chars().next().map_or(0, char::len_utf8)..]);
                out.push(t);
            }
        }
        out
    };
    let mut h = Conn::new(
        FUT,
        map_of(&[
            ("BNBBTC", "BNB", "BTC"),
            ("BNBUSDT", "BNB", "USDT"),
            ("BTCUSDT", "BTC", "USDT"),
        ]),
    );
    let mut fed = 0;
    for (venue, frame) in &frames {
        for v in variants(frame) {
            let before = h.batch.len();
            let out = h.feed_as(*venue, &v);
            match out {
                FrameOutcome::Records(n) => assert_eq!(h.batch.len() - before, n as usize),
                _ => assert_eq!(h.batch.len(), before, "{v}"),
            }
            fed += 1;
        }
        h.batch.reset();
    }
    for (dt, body) in &bodies {
        for v in variants(body) {
            let before = h.batch.len();
            if let FrameOutcome::Records(n) = h.poll(*dt, "BTCUSDT", &v) {
                assert_eq!(h.batch.len() - before, n as usize);
            }
            fed += 1;
        }
        h.batch.reset();
    }
    for (venue, body) in &snapshots {
        for v in variants(body) {
            let mut msg = BookMsg::default();
            if venue::protocol(*venue)
                .parse_book_snapshot("BTCUSDT", v.as_bytes(), RECV, &mut msg)
                .is_err()
            {
                assert_eq!(msg, BookMsg::default(), "{v}");
            }
            fed += 1;
        }
    }
    assert!(fed > 10_000, "{fed}");
}

// ---------------------------------------------------------------------------
// Recorded sessions
// ---------------------------------------------------------------------------

fn instruments(venue: VenueId, file: &str) -> InstrumentMap {
    let text = capture(file);
    let (_, body) = answers(&text)
        .find(|(url, _)| url.ends_with("/exchangeInfo"))
        .expect("exchangeInfo answer");
    let mut map = InstrumentMap::default();
    let next = venue::protocol(venue)
        .parse_instruments(body.as_bytes(), &mut map)
        .unwrap();
    assert_eq!(next, None);
    map
}

/// Outcome counts per stream kind, with every book message checked for
/// continuity (`U == prev u + 1` spot, `pu == prev u` USDⓈ-M).
#[derive(Default, Debug)]
struct Replay {
    by_kind: HashMap<String, HashMap<String, usize>>,
    levels: usize,
    breaks: usize,
}

fn replay(venue: VenueId, ws: &str, map: InstrumentMap) -> (Replay, Conn) {
    let mut h = Conn::new(venue, map);
    let text = capture(ws);
    let mut r = Replay::default();
    let mut last_u: HashMap<String, u64> = HashMap::new();
    for f in frames(&text) {
        let stream = f
            .split_once(r#""stream":""#)
            .and_then(|(_, s)| s.split_once('"'))
            .map(|(s, _)| s)
            .expect("stream");
        let kind = stream.split_once('@').unwrap().1.to_string();
        let before = h.batch.len();
        let out = h.feed_as(venue, f);
        let label = match out {
            FrameOutcome::Book => {
                let b = &h.book;
                if let Some(&prev) = last_u.get(&b.raw_symbol) {
                    let ok = match venue {
                        VenueId::BinanceSpot => b.first_id == prev + 1,
                        _ => b.prev_id == Some(prev as i64),
                    };
                    r.breaks += usize::from(!ok);
                }
                last_u.insert(b.raw_symbol.clone(), b.last_id);
                assert!(b.first_id <= b.last_id, "{f}");
                assert!(b.ts_ms > 1_600_000_000_000, "{f}");
                r.levels += b.bids.len() + b.asks.len();
                "book".to_string()
            }
            FrameOutcome::Records(n) => {
                assert_eq!(h.batch.len() - before, n as usize, "{f}");
                format!("records({n})")
            }
            other => format!("{other:?}"),
        };
        *r.by_kind.entry(kind).or_default().entry(label).or_default() += 1;
    }
    (r, h)
}

fn counts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn replays_the_spot_capture() {
    let map = instruments(SPOT, "BINANCE.0");
    assert!(map.len() > 1000);
    let (r, h) = replay(SPOT, "BINANCE.ws.1.0", map);
    assert_eq!(r.by_kind["depth@100ms"], counts(&[("book", 177)]));
    assert_eq!(r.by_kind["aggTrade"], counts(&[("records(1)", 2)]));
    assert_eq!(r.by_kind["bookTicker"], counts(&[("records(1)", 84)]));
    assert_eq!(
        r.by_kind["kline_1m"],
        counts(&[("Malformed(UnknownEvent)", 2)])
    );
    assert_eq!(r.by_kind.len(), 4);
    assert_eq!(r.levels, 422);
    assert_eq!(r.breaks, 0);
    // The first aggTrade of the session, exactly.
    let t = h
        .batch
        .iter()
        .find_map(|r| match r {
            Record::Trade(t) => Some(*t),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (t.symbol, t.raw_symbol, t.trade_id),
        ("NKN-USDT", "NKNUSDT", TradeId::Num(15683430))
    );
    assert_eq!(
        (t.price.to_string(), t.quantity.to_string(), t.side),
        ("0.35280000".into(), "58.00000000".into(), Side::Buy)
    );
    assert_eq!((t.trade_ts_ms, t.ts_ms), (1633998523963, 1633998523963));
}

#[test]
fn replays_the_futures_capture() {
    let map = instruments(FUT, "BINANCE_FUTURES.0");
    let (r, h) = replay(FUT, "BINANCE_FUTURES.ws.1.0", map);
    assert_eq!(r.by_kind["depth@100ms"], counts(&[("book", 764)]));
    assert_eq!(r.by_kind["aggTrade"], counts(&[("records(1)", 91)]));
    assert_eq!(r.by_kind["bookTicker"], counts(&[("records(1)", 613)]));
    assert_eq!(
        r.by_kind["kline_1m"],
        counts(&[("Malformed(UnknownEvent)", 67)])
    );
    assert_eq!(r.by_kind.len(), 4);
    assert_eq!(r.levels, 6297);
    assert_eq!(r.breaks, 0);
    // First frame of the session: a bookTicker with E and T.
    let Some(Record::Ticker(t)) = h.batch.iter().next() else {
        panic!()
    };
    assert_eq!(
        (
            t.origin.symbol,
            t.origin.raw_symbol,
            t.origin.ts_ms,
            t.update_id
        ),
        ("SUSHI-USDT", "SUSHIUSDT", 1626992741017, Some(600859600576))
    );
    assert_eq!(t.bid_price.unwrap().to_string(), "7.6110");
    assert_eq!(t.bid_quantity.unwrap().to_string(), "2");
    assert_eq!(t.ask_price.unwrap().to_string(), "7.6120");
    assert_eq!(t.ask_quantity.unwrap().to_string(), "297");
}

#[test]
fn parses_the_recorded_rest_depth_snapshots() {
    for (venue, file, want) in [
        (
            SPOT,
            "BINANCE.http.0.0",
            &[
                ("NKNUSDT", 499869752, 609, 1000, None),
                ("BLZETH", 281916627, 174, 1000, None),
                ("LRCBTC", 259345543, 176, 1000, None),
                ("RUNEEUR", 15602511, 221, 468, None),
            ],
        ),
        (
            FUT,
            "BINANCE_FUTURES.http.0.0",
            &[
                ("SUSHIUSDT", 600859605926, 1000, 1000, Some(1626992741264)),
                ("AKROUSDT", 600859605486, 609, 763, Some(1626992741242)),
                ("KEEPUSDT", 600859619434, 400, 612, Some(1626992742018)),
                ("CTKUSDT", 600859618836, 485, 744, Some(1626992741986)),
            ],
        ),
    ] {
        let text = capture(file);
        let got: Vec<_> = answers(&text)
            .filter(|(url, _)| url.contains("/depth?"))
            .map(|(url, body)| {
                let sym = url
                    .split_once("symbol=")
                    .and_then(|(_, s)| s.split('&').next())
                    .unwrap();
                let mut msg = BookMsg::default();
                venue::protocol(venue)
                    .parse_book_snapshot(sym, body.as_bytes(), RECV, &mut msg)
                    .unwrap_or_else(|e| panic!("{sym}: {e:?}"));
                assert!(msg.snapshot);
                assert_eq!(msg.raw_symbol, sym);
                assert_eq!(msg.first_id, msg.last_id);
                // Best first, as served.
                assert!(msg.bids.windows(2).all(|w| w[0].price > w[1].price));
                assert!(msg.asks.windows(2).all(|w| w[0].price < w[1].price));
                (
                    sym.to_string(),
                    msg.last_id,
                    msg.bids.len(),
                    msg.asks.len(),
                    (msg.ts_ms != RECV_MS).then_some(msg.ts_ms),
                )
            })
            .collect();
        let want: Vec<_> = want
            .iter()
            .map(|&(s, id, b, a, ts)| (s.to_string(), id, b, a, ts))
            .collect();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn parses_the_recorded_futures_exchange_info() {
    let map = instruments(FUT, "BINANCE_FUTURES.0");
    // 122 listed: 119 perpetuals, 2 quarterlies, 1 pending contract.
    assert_eq!(map.len(), 119);
    for (native, norm) in [
        ("BTCUSDT", "BTC-USDT"),
        ("SUSHIUSDT", "SUSHI-USDT"),
        ("AKROUSDT", "AKRO-USDT"),
        ("KEEPUSDT", "KEEP-USDT"),
        ("CTKUSDT", "CTK-USDT"),
    ] {
        assert_eq!(map.normalize(native), Some(norm));
        let i = map.get(native).unwrap();
        assert!(i.trading);
        assert_eq!(i.contract_value, None);
    }
    assert_eq!(map.get("BTCUSDT_210924"), None);
    assert_eq!(map.get("BTCSTUSDT"), None);
    assert!(venue::protocol(FUT)
        .parse_instruments(
            b"{\"code\":-1121,\"msg\":\"Invalid symbol.\"}",
            &mut map.clone()
        )
        .is_err());
}

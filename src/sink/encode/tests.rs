//! Encoder tests: exact lines, subjects and message ids.

use super::*;
use crate::model::{DataType, Side, VenueId};
use rust_decimal::Decimal;
use std::str::FromStr;

#[test]
fn trade_line_has_marketprism_fields() {
    let t = Trade {
        seq: None,
        backfilled: false,
        venue: VenueId::BinanceSpot,
        symbol: "BTC-USDT",
        raw_symbol: "BTCUSDT",
        trade_id: TradeId::Num(12345),
        price: Decimal::from_str("64000.10000000").unwrap(),
        quantity: Decimal::from_str("0.00001000").unwrap(),
        contracts: None,
        side: Side::Sell,
        is_maker: Some(true),
        trade_ts_ms: 1672515782136,
        ts_ms: 1672515782137,
        receive_ts_ns: 1672515782140123456,
    };
    let mut out = Vec::new();
    encode_record(&mut out, &Record::Trade(t));
    let line = String::from_utf8(out).unwrap();
    assert_eq!(
        line,
        "{\"data_type\":\"trade\",\"exchange\":\"binance\",\"market_type\":\"spot\",\"symbol\":\"BTC-USDT\",\
         \"instrument_id\":\"BTCUSDT\",\"raw_symbol\":\"BTCUSDT\",\"trade_id\":\"12345\",\"price\":\"64000.10000000\",\"quantity\":\"0.00001000\",\
         \"side\":\"sell\",\"is_maker\":true,\"trade_ts_ms\":1672515782136,\"ts_ms\":1672515782137,\
         \"collected_ts_ms\":1672515782140,\"receive_ts_ns\":1672515782140123456,\"data_source\":\"marketprism\"}\n"
    );
    // And it is valid JSON that round-trips through a real parser.
    let v: sonic_rs::Value = sonic_rs::from_str(line.trim_end()).unwrap();
    use sonic_rs::JsonValueTrait;
    assert_eq!(
        v.get("price").and_then(|p| p.as_str()),
        Some("64000.10000000")
    );
}

#[test]
fn trade_heads_are_the_venue_names() {
    for v in VenueId::ALL {
        let want = format!(
            r#"{{"data_type":"trade","exchange":"{}","market_type":"{}","symbol":"#,
            v.exchange(),
            v.market_type_of(DataType::Trade)
        );
        assert_eq!(std::str::from_utf8(v.trade_head()).unwrap(), want, "{v}");
    }
}

#[test]
fn receive_tail_is_ms_and_ns() {
    for ns in [
        0u64,
        999_999,
        1_000_000,
        1_234_567,
        1_764_150_000_123_456_789,
        u64::MAX,
    ] {
        let mut out = b"x".to_vec();
        receive_tail(&mut out, ns);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                r#"x,"collected_ts_ms":{},"receive_ts_ns":{ns},"data_source":"marketprism"}}"#,
                ns / 1_000_000
            )
        );
    }
}

#[test]
fn subjects_and_msg_ids() {
    let mut t = Trade {
        seq: None,
        backfilled: false,
        venue: VenueId::BinanceSpot,
        symbol: "BTC-USDT",
        raw_symbol: "BTCUSDT",
        trade_id: TradeId::Num(12345),
        price: Decimal::ONE,
        quantity: Decimal::ONE,
        contracts: None,
        side: Side::Buy,
        is_maker: None,
        trade_ts_ms: 0,
        ts_ms: 0,
        receive_ts_ns: 0,
    };
    let mut o = Vec::new();
    push_subject(&mut o, &Record::Trade(t));
    assert_eq!(o, b"trade.binance.spot.BTC-USDT");
    o.clear();
    push_msg_id(&mut o, &Record::Trade(t));
    assert_eq!(o, b"trade:binance:spot:BTC-USDT:12345");
    t.symbol = "A.B *>C";
    t.trade_id = TradeId::Str("x y");
    o.clear();
    push_subject(&mut o, &Record::Trade(t));
    assert_eq!(o, b"trade.binance.spot.A_B___C");
    o.clear();
    push_msg_id(&mut o, &Record::Trade(t));
    assert_eq!(o, b"trade:binance:spot:A_B___C:x_y");
}

fn book(venue: VenueId, last: u64, ts_ms: u64) -> BookRecord<'static> {
    BookRecord {
        origin: Origin {
            venue,
            symbol: "BTC-USDT",
            raw_symbol: "BTC-USDT",
            ts_ms,
            receive_ts_ns: 7,
        },
        delta: false,
        last_update_id: last,
        first_update_id: last,
        prev_update_id: None,
        bids: &[],
        asks: &[],
    }
}

fn msg_id(rec: &Record<'_>) -> String {
    let mut o = Vec::new();
    push_msg_id(&mut o, rec);
    String::from_utf8(o).unwrap()
}

/// OKX books from before `seqId` carry no sequence id: their records are
/// told apart by exchange time (else JetStream would drop all but the first
/// as duplicates of one id).
#[test]
fn book_msg_ids_without_a_venue_id_use_exchange_time() {
    let a = Record::Book(book(VenueId::OkxSpot, 0, 1652400000100));
    let b = Record::Book(book(VenueId::OkxSpot, 0, 1652400000200));
    assert_eq!(msg_id(&a), "orderbook:okx:spot:BTC-USDT:t1652400000100");
    assert_eq!(msg_id(&b), "orderbook:okx:spot:BTC-USDT:t1652400000200");
    let mut d = book(VenueId::OkxSpot, 0, 1652400000300);
    d.delta = true;
    assert_eq!(
        msg_id(&Record::Book(d)),
        "orderbook_delta:okx:spot:BTC-USDT:t1652400000300"
    );
    // With an id, the id (the same time twice is still two states).
    let c = Record::Book(book(VenueId::OkxSpot, 42, 1652400000200));
    assert_eq!(msg_id(&c), "orderbook:okx:spot:BTC-USDT:42");
    d.last_update_id = 43;
    d.first_update_id = 43;
    assert_eq!(
        msg_id(&Record::Book(d)),
        "orderbook_delta:okx:spot:BTC-USDT:43:43"
    );
}

/// The fields the README lists for every record, on one record of each kind.
#[test]
fn every_record_kind_has_the_common_fields() {
    use crate::batch::*;
    use sonic_rs::JsonValueTrait;
    let o = Origin {
        venue: VenueId::BinanceDerivatives,
        symbol: "BTC-USDT",
        raw_symbol: "BTCUSDT",
        ts_ms: 1_700_000_000_123,
        receive_ts_ns: 1_700_000_000_456_789_012,
    };
    let one = Decimal::ONE;
    let recs = [
        Record::Trade(Trade {
            venue: o.venue,
            symbol: o.symbol,
            raw_symbol: o.raw_symbol,
            trade_id: TradeId::Num(1),
            price: one,
            quantity: one,
            contracts: None,
            side: Side::Buy,
            is_maker: None,
            trade_ts_ms: 1,
            seq: None,
            backfilled: false,
            ts_ms: o.ts_ms,
            receive_ts_ns: o.receive_ts_ns,
        }),
        Record::Book(BookRecord {
            origin: o,
            ..book(o.venue, 5, 0)
        }),
        Record::Book(BookRecord {
            origin: o,
            delta: true,
            ..book(o.venue, 5, 0)
        }),
        Record::Funding(FundingRate {
            origin: o,
            funding_rate: one,
            estimated_rate: None,
            funding_ts_ms: None,
            next_funding_ts_ms: None,
            mark_price: None,
            index_price: None,
        }),
        Record::OpenInterest(OpenInterest {
            origin: o,
            open_interest: one,
            contracts: None,
            value_usd: None,
        }),
        Record::Liquidation(Liquidation {
            origin: o,
            side: Side::Sell,
            position_side: None,
            price: one,
            quantity: one,
            contracts: None,
            liquidation_ts_ms: 1,
        }),
        Record::Lsr(LongShortRatio {
            origin: o,
            data_type: DataType::LsrTopPosition,
            long_short_ratio: one,
            long_ratio: None,
            short_ratio: None,
            period: "5m",
        }),
        Record::Lsr(LongShortRatio {
            origin: o,
            data_type: DataType::LsrAllAccount,
            long_short_ratio: one,
            long_ratio: None,
            short_ratio: None,
            period: "5m",
        }),
        Record::Volatility(VolatilityIndex {
            origin: o,
            volatility_index: one,
            index_name: "btc_usd",
        }),
        Record::Ticker(Ticker {
            origin: o,
            bid_price: None,
            bid_quantity: None,
            ask_price: None,
            ask_quantity: None,
            last_price: None,
            update_id: None,
        }),
        Record::Gap(Gap {
            origin: o,
            stream: DataType::Trade,
            reason: "disconnect",
            from_id: None,
            to_id: None,
            from_ts_ms: 0,
            to_ts_ms: 0,
            missing: None,
        }),
    ];
    let mut kinds: Vec<&str> = Vec::new();
    for r in &recs {
        let mut line = Vec::new();
        encode_json(&mut line, r);
        let v: sonic_rs::Value = sonic_rs::from_slice(&line).unwrap();
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
        let dt = r.data_type();
        assert_eq!(s("data_type").as_deref(), Some(dt.name()));
        assert_eq!(s("exchange").as_deref(), Some("binance"), "{dt}");
        assert_eq!(s("market_type").as_deref(), Some("perpetual"), "{dt}");
        assert_eq!(s("symbol").as_deref(), Some("BTC-USDT"), "{dt}");
        assert_eq!(s("instrument_id").as_deref(), Some("BTCUSDT"), "{dt}");
        assert_eq!(n("ts_ms"), Some(1_700_000_000_123), "{dt}");
        assert_eq!(n("collected_ts_ms"), Some(1_700_000_000_456), "{dt}");
        assert_eq!(n("receive_ts_ns"), Some(1_700_000_000_456_789_012), "{dt}");
        assert_eq!(s("data_source").as_deref(), Some("marketprism"), "{dt}");
        kinds.push(dt.name());
    }
    // Every data type there is, once.
    let mut all: Vec<&str> = DataType::ALL.iter().map(|d| d.name()).collect();
    all.sort();
    kinds.sort();
    assert_eq!(kinds, all);
}

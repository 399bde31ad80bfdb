//! Encoder tests: exact lines, subjects and message ids.

use super::*;
use crate::model::{DataType, Side, VenueId};
use rust_decimal::Decimal;
use std::str::FromStr;

/// The word-at-a-time path against a per-char reference, on strings of
/// every length around its 4/8/16-byte edges with each byte that needs
/// escaping (and multi-byte UTF-8) at every position.
#[test]
fn strings_escape_like_a_char_by_char_encoder() {
    fn reference(s: &str) -> String {
        let mut o = String::from('"');
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
                c => o.push(c),
            }
        }
        o.push('"');
        o
    }
    let specials = [
        '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é', '€', '!', '#', '[', ']',
    ];
    let mut out = Vec::new();
    for n in 0..=20 {
        let base: String = (0..n).map(|i| char::from(b'A' + (i % 26) as u8)).collect();
        let mut cases = vec![base.clone()];
        for at in 0..n {
            for &c in &specials {
                let mut s: Vec<char> = base.chars().collect();
                s[at] = c;
                cases.push(s.into_iter().collect());
            }
        }
        for s in cases {
            out.clear();
            out.extend_from_slice(b"x");
            json_str(&mut out, &s);
            assert_eq!(
                std::str::from_utf8(&out[1..]).unwrap(),
                reference(&s),
                "{s:?}"
            );
            let back: String = sonic_rs::from_slice(&out[1..]).unwrap();
            assert_eq!(back, s);
        }
    }
}

#[test]
fn integers_match_std_formatting() {
    let mut cases = vec![
        0u64,
        9,
        10,
        11,
        99,
        100,
        101,
        999,
        1000,
        u64::MAX,
        u64::MAX - 1,
    ];
    let mut x = 1u64;
    for _ in 0..19 {
        x *= 10;
        cases.extend([x - 1, x, x + 1, x + 37]);
    }
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..10_000 {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        cases.push(r >> (r % 64));
    }
    // Appended after what is there, into whatever room the vector has.
    let mut all = Vec::new();
    let mut want = String::new();
    for n in cases {
        let mut out = b"ab".to_vec();
        push_u64(&mut out, n);
        assert_eq!(String::from_utf8(out).unwrap(), format!("ab{n}"));
        push_u64(&mut all, n);
        all.push(b',');
        want.push_str(&format!("{n},"));
    }
    assert_eq!(String::from_utf8(all).unwrap(), want);
}

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
fn decimals_print_like_display() {
    let cases = [
        "0",
        "1",
        "0.001",
        "100",
        "0.00100000",
        "64000.10000000",
        "12345678901234567890.123456789",
        "79228162514264337593543950335",
        "0.0000000000000000000000000001",
        "7.9228162514264337593543950335",
        "-1.50",
        "-0.001",
        "1844674407370955161.6",
        "18446744073709551615",
        "18446744073709551616",
    ];
    for c in cases {
        let d = Decimal::from_str(c).unwrap();
        let mut o = Vec::new();
        push_decimal(&mut o, &d);
        assert_eq!(String::from_utf8(o).unwrap(), d.to_string(), "{c}");
    }
    // And a sweep over mantissas and scales.
    let mut rng = 0x9e3779b97f4a7c15u64;
    for _ in 0..20_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let d = Decimal::from_i128_with_scale(
            (rng as i128) * if rng & 1 == 0 { 1 } else { -1 },
            (rng % 29) as u32,
        );
        let mut o = Vec::new();
        push_decimal(&mut o, &d);
        assert_eq!(String::from_utf8(o).unwrap(), d.to_string());
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

#[test]
fn numbers_and_strings() {
    for n in [0u64, 7, 10, 99, 1000, u64::MAX] {
        let mut o = Vec::new();
        push_u64(&mut o, n);
        assert_eq!(String::from_utf8(o).unwrap(), n.to_string());
    }
    let mut o = Vec::new();
    json_str(&mut o, "a\"b\\c\nd\u{1}é");
    assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
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

//! OKX v5 through the public venue interface: the documentation's example
//! frames (tests/fixtures/okx) become exactly the expected records and JSON,
//! subscribe requests are exact, REST bodies parse, the real 2022 capture
//! replays without a malformed frame (and its book checksums verify against
//! the parsed levels), and steady-state parsing allocates nothing.

mod common;

use common::alloc::allocs;
use common::fixtures::capture;
use common::venue::{json, set_of as wanting, Conn, RECV as RX};
use marketprism::batch::{Batch, Record, TradeId};
use marketprism::book::BookMsg;
use marketprism::model::{DataType, Side, VenueId};
use marketprism::venue::{protocol, FrameOutcome, InstrumentMap, Malformed, Source};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

// ------------------------------------------------------------ helpers

fn fixture(name: &str) -> String {
    common::fixtures::fixture("okx", name)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn spot_map() -> InstrumentMap {
    let mut m = InstrumentMap::default();
    m.insert("BTC-USDT", "BTC", "USDT", true);
    m
}

/// Linear swaps with their real contract values, plus the docs' inverse
/// examples (not listed by the instrument parser; their funding/open-interest
/// frames carry no contract quantities).
fn swap_map() -> InstrumentMap {
    let mut m = InstrumentMap::default();
    m.insert_contract("BTC-USDT-SWAP", "BTC", "USDT", true, Some(dec("0.01")));
    m.insert_contract("IOST-USDT-SWAP", "IOST", "USDT", true, Some(dec("1000")));
    m.insert_contract("BCH-USDT-SWAP", "BCH", "USDT", true, Some(dec("0.1")));
    m.insert_contract("BTC-USD-SWAP", "BTC", "USD", true, None);
    m.insert_contract("LTC-USD-SWAP", "LTC", "USD", true, None);
    m.set_wanted(
        "IOST-USDT-SWAP",
        wanting(&[DataType::Trade, DataType::Liquidation]),
    );
    m.set_wanted("BTC-USDT-SWAP", wanting(&[DataType::Trade]));
    m
}

impl Conn {
    fn spot() -> Conn {
        Conn::new(VenueId::OkxSpot, spot_map())
    }

    fn swap() -> Conn {
        Conn::new(VenueId::OkxDerivatives, swap_map())
    }

    /// The only record in the batch, and its JSON.
    fn only_json(&self) -> (Record<'_>, String) {
        let r = self.only();
        (r, json(&r))
    }
}

const TAIL: &str = r#""collected_ts_ms":1700000000123,"receive_ts_ns":1700000000123456789,"data_source":"marketprism"}"#;

// ------------------------------------------------------------ control, subscribe

#[test]
fn control_frames_from_the_docs() {
    let mut c = Conn::spot();
    for (f, want) in [
        ("subscribe_ack.json", FrameOutcome::Control),
        ("unsubscribe_ack.json", FrameOutcome::Control),
        ("notice_64008.json", FrameOutcome::Notice),
        ("error_60012.json", FrameOutcome::ControlError),
        ("error_60018_observed.json", FrameOutcome::ControlError),
    ] {
        assert_eq!(c.feed(&fixture(f)), want, "{f}");
    }
    assert_eq!(c.feed("pong"), FrameOutcome::Control);
    // Channels this collector does not subscribe to.
    for f in ["bbo_tbt.json", "books5.json", "mark_price.json"] {
        assert_eq!(
            Conn::swap().feed(&fixture(f)),
            FrameOutcome::Malformed(Malformed::UnknownEvent),
            "{f}"
        );
    }
    assert!(c.batch.is_empty());
}

#[test]
fn subscribe_requests_are_exact() {
    let spot = protocol(VenueId::OkxSpot);
    let swap = protocol(VenueId::OkxDerivatives);
    assert_eq!(
        spot.endpoints().ws_url,
        "wss://ws.okx.com:8443/ws/v5/public"
    );
    assert_eq!(spot.endpoints().rest_url, "https://www.okx.com");
    let hb = swap.heartbeat().unwrap();
    assert_eq!((hb.frame, hb.every.as_secs()), ("ping", 20));
    assert_eq!(swap.max_streams_per_connection(), 100);

    let books = spot.channel("BTC-USDT", DataType::OrderBook);
    assert_eq!(books, "books:BTC-USDT");
    assert_eq!(spot.channel("BTC-USDT", DataType::OrderBookDelta), books);
    // The docs' request, with our id.
    assert_eq!(
        spot.subscribe_frames(std::slice::from_ref(&books)),
        vec![fixture("subscribe_request.json").replace("\"1512\"", "\"1\"")]
    );
    // The docs' unsubscribe (which has no id) plus ours.
    let tickers = spot.channel("BTC-USDT", DataType::Ticker);
    assert_eq!(
        spot.unsubscribe_frames(std::slice::from_ref(&tickers)),
        vec![fixture("unsubscribe_request.json").replace("{\"op\"", "{\"id\":\"u1\",\"op\"")]
    );

    let s = "BTC-USDT-SWAP";
    let chans: Vec<String> = [
        DataType::Trade,
        DataType::OrderBook,
        DataType::Ticker,
        DataType::FundingRate,
        DataType::OpenInterest,
        DataType::Liquidation,
    ]
    .into_iter()
    .map(|d| swap.channel(s, d))
    .collect();
    assert_eq!(
        chans,
        [
            "trades:BTC-USDT-SWAP",
            "books:BTC-USDT-SWAP",
            "tickers:BTC-USDT-SWAP",
            "funding-rate:BTC-USDT-SWAP",
            "open-interest:BTC-USDT-SWAP",
            "liquidation-orders:SWAP"
        ]
    );
    assert_eq!(
        swap.channel("ETH-USDT-SWAP", DataType::Liquidation),
        "liquidation-orders:SWAP",
        "one instType-wide subscription for every symbol"
    );
    assert_eq!(
        swap.subscribe_frames(&chans),
        vec![concat!(
            r#"{"id":"1","op":"subscribe","args":["#,
            r#"{"channel":"trades","instId":"BTC-USDT-SWAP"},"#,
            r#"{"channel":"books","instId":"BTC-USDT-SWAP"},"#,
            r#"{"channel":"tickers","instId":"BTC-USDT-SWAP"},"#,
            r#"{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"#,
            r#"{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"#,
            r#"{"channel":"liquidation-orders","instType":"SWAP"}]}"#
        )
        .to_string()]
    );
    assert_eq!(
        swap.unsubscribe_frames(&chans[1..2]),
        vec![
            r#"{"id":"u1","op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT-SWAP"}]}"#
                .to_string()
        ]
    );
    // 250 channels → requests of 100, 100, 50 args.
    let many: Vec<String> = (0..250).map(|i| format!("trades:C{i}-USDT-SWAP")).collect();
    let frames = swap.subscribe_frames(&many);
    let args: Vec<usize> = frames.iter().map(|f| f.matches("instId").count()).collect();
    assert_eq!(args, [100, 100, 50]);
    assert!(frames[1].starts_with(
        r#"{"id":"2","op":"subscribe","args":[{"channel":"trades","instId":"C100-USDT-SWAP"}"#
    ));
}

#[test]
fn sources() {
    let spot = protocol(VenueId::OkxSpot);
    let swap = protocol(VenueId::OkxDerivatives);
    let ws = Source::Ws { route: "" };
    for d in [
        DataType::Trade,
        DataType::OrderBook,
        DataType::OrderBookDelta,
        DataType::Ticker,
    ] {
        assert_eq!(spot.source(d), ws);
        assert_eq!(swap.source(d), ws);
    }
    for d in [
        DataType::FundingRate,
        DataType::OpenInterest,
        DataType::Liquidation,
    ] {
        assert_eq!(spot.source(d), Source::Unsupported);
        assert_eq!(swap.source(d), ws);
    }
    for d in [DataType::LsrAllAccount, DataType::LsrTopPosition] {
        assert_eq!(spot.source(d), Source::Unsupported);
        assert!(matches!(swap.source(d), Source::Poll { every } if every.as_secs() == 10));
    }
    assert_eq!(swap.source(DataType::VolatilityIndex), Source::Unsupported);
    let limit = swap.rest_limit();
    assert_eq!((limit.weight, limit.window.as_secs()), (20, 2));
    assert_eq!(swap.book_snapshot_request("BTC-USDT-SWAP", 400), None);
}

// ------------------------------------------------------------ records

#[test]
fn documented_trade() {
    let mut c = Conn::spot();
    assert_eq!(c.feed(&fixture("trades.json")), FrameOutcome::Records(1));
    let (r, j) = c.only_json();
    let Record::Trade(t) = r else { panic!() };
    assert_eq!(t.venue, VenueId::OkxSpot);
    assert_eq!((t.symbol, t.raw_symbol), ("BTC-USDT", "BTC-USDT"));
    assert_eq!(t.trade_id, TradeId::Str("130639474"));
    assert_eq!(t.price.to_string(), "42219.9");
    assert_eq!(t.quantity.to_string(), "0.12060306");
    assert_eq!(t.contracts, None);
    assert_eq!(t.side, Side::Buy);
    assert_eq!(t.is_maker, None);
    assert_eq!(
        (t.trade_ts_ms, t.ts_ms, t.receive_ts_ns),
        (1630048897897, 1630048897897, RX)
    );
    assert_eq!(
        j,
        format!(
            r#"{{"data_type":"trade","exchange":"okx","market_type":"spot","symbol":"BTC-USDT","instrument_id":"BTC-USDT","raw_symbol":"BTC-USDT","trade_id":"130639474","price":"42219.9","quantity":"0.12060306","side":"buy","trade_ts_ms":1630048897897,"ts_ms":1630048897897,{TAIL}"#
        )
    );
}

#[test]
fn swap_trade_in_contracts() {
    let mut c = Conn::swap();
    let f = fixture("trades.json")
        .replace("BTC-USDT", "BTC-USDT-SWAP")
        .replace(r#""sz":"0.12060306""#, r#""sz":"12""#)
        .replace(r#""side":"buy""#, r#""side":"sell""#);
    assert_eq!(c.feed(&f), FrameOutcome::Records(1));
    let (r, j) = c.only_json();
    let Record::Trade(t) = r else { panic!() };
    assert_eq!((t.symbol, t.raw_symbol), ("BTC-USDT", "BTC-USDT-SWAP"));
    assert_eq!(
        t.quantity.to_string(),
        "0.12",
        "12 contracts × ctVal 0.01 BTC"
    );
    assert_eq!(t.contracts.unwrap().to_string(), "12");
    assert_eq!(t.side, Side::Sell);
    assert_eq!(
        j,
        format!(
            r#"{{"data_type":"trade","exchange":"okx","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTC-USDT-SWAP","raw_symbol":"BTC-USDT-SWAP","trade_id":"130639474","price":"42219.9","quantity":"0.12","side":"sell","contracts":"12","trade_ts_ms":1630048897897,"ts_ms":1630048897897,{TAIL}"#
        )
    );
}

#[test]
fn documented_ticker() {
    let mut c = Conn::spot();
    assert_eq!(c.feed(&fixture("tickers.json")), FrameOutcome::Records(1));
    let (r, j) = c.only_json();
    let Record::Ticker(t) = r else { panic!() };
    assert_eq!(t.origin.venue, VenueId::OkxSpot);
    assert_eq!(
        (t.origin.symbol, t.origin.raw_symbol),
        ("BTC-USDT", "BTC-USDT")
    );
    assert_eq!(t.bid_price.unwrap().to_string(), "8888.88");
    assert_eq!(t.bid_quantity.unwrap().to_string(), "5");
    assert_eq!(t.ask_price.unwrap().to_string(), "9999.99");
    assert_eq!(t.ask_quantity.unwrap().to_string(), "11");
    assert_eq!(t.last_price.unwrap().to_string(), "9999.99");
    assert_eq!(t.update_id, None);
    assert_eq!(
        (t.origin.ts_ms, t.origin.receive_ts_ns),
        (1597026383085, RX)
    );
    assert_eq!(
        j,
        format!(
            r#"{{"data_type":"ticker","exchange":"okx","market_type":"spot","symbol":"BTC-USDT","instrument_id":"BTC-USDT","best_bid_price":"8888.88","best_bid_quantity":"5","best_ask_price":"9999.99","best_ask_quantity":"11","last_price":"9999.99","ts_ms":1597026383085,{TAIL}"#
        )
    );
    // A swap's best sizes are converted to base units; empty sides stay empty.
    let mut c = Conn::swap();
    let f = fixture("tickers.json")
        .replace("BTC-USDT", "BTC-USDT-SWAP")
        .replace(
            r#""askPx":"9999.99","askSz":"11""#,
            r#""askPx":"","askSz":"""#,
        );
    assert_eq!(c.feed(&f), FrameOutcome::Records(1));
    let Record::Ticker(t) = c.only_json().0 else {
        panic!()
    };
    assert_eq!(t.bid_quantity.unwrap().to_string(), "0.05");
    assert_eq!((t.ask_price, t.ask_quantity), (None, None));
}

#[test]
fn documented_funding_rate() {
    let mut c = Conn::swap();
    assert_eq!(
        c.feed(&fixture("funding_rate.json")),
        FrameOutcome::Records(1)
    );
    let (r, j) = c.only_json();
    let Record::Funding(f) = r else { panic!() };
    assert_eq!(f.origin.venue, VenueId::OkxDerivatives);
    assert_eq!(
        (f.origin.symbol, f.origin.raw_symbol),
        ("BTC-USD", "BTC-USD-SWAP")
    );
    assert_eq!(f.funding_rate.to_string(), "0.0001875391284828");
    assert_eq!(f.estimated_rate, None, "nextFundingRate is empty");
    assert_eq!(f.funding_ts_ms, Some(1700726400000));
    assert_eq!(f.next_funding_ts_ms, Some(1700755200000));
    assert_eq!((f.mark_price, f.index_price), (None, None));
    assert_eq!(f.origin.ts_ms, 1700724675402);
    assert_eq!(
        j,
        format!(
            r#"{{"data_type":"funding_rate","exchange":"okx","market_type":"perpetual","symbol":"BTC-USD","instrument_id":"BTC-USD-SWAP","current_funding_rate":"0.0001875391284828","next_funding_ts_ms":1700755200000,"funding_ts_ms":1700726400000,"ts_ms":1700724675402,{TAIL}"#
        )
    );
}

#[test]
fn documented_open_interest() {
    let mut c = Conn::swap();
    assert_eq!(
        c.feed(&fixture("open_interest.json")),
        FrameOutcome::Records(1)
    );
    let (r, j) = c.only_json();
    let Record::OpenInterest(o) = r else { panic!() };
    assert_eq!(
        (o.origin.symbol, o.origin.raw_symbol),
        ("LTC-USD", "LTC-USD-SWAP")
    );
    assert_eq!(o.open_interest.to_string(), "555.55");
    assert_eq!(o.contracts.unwrap().to_string(), "5000");
    assert_eq!(o.value_usd, None);
    assert_eq!(o.origin.ts_ms, 1597026383085);
    assert_eq!(
        j,
        format!(
            r#"{{"data_type":"open_interest","exchange":"okx","market_type":"perpetual","symbol":"LTC-USD","instrument_id":"LTC-USD-SWAP","open_interest":"555.55","open_interest_value":"555.55","open_interest_unit":"coins","open_interest_contracts":"5000","ts_ms":1597026383085,{TAIL}"#
        )
    );
    // Current docs add oiUsd.
    let mut c = Conn::swap();
    let f = fixture("open_interest.json").replace(r#""oiCcy""#, r#""oiUsd":"50000","oiCcy""#);
    assert_eq!(c.feed(&f), FrameOutcome::Records(1));
    let Record::OpenInterest(o) = c.only_json().0 else {
        panic!()
    };
    assert_eq!(o.value_usd.unwrap().to_string(), "50000");
}

#[test]
fn documented_liquidation() {
    let mut c = Conn::swap();
    assert_eq!(
        c.feed(&fixture("liquidation_orders.json")),
        FrameOutcome::Records(1)
    );
    let (r, j) = c.only_json();
    let Record::Liquidation(l) = r else { panic!() };
    assert_eq!(
        (l.origin.symbol, l.origin.raw_symbol),
        ("IOST-USDT", "IOST-USDT-SWAP")
    );
    assert_eq!(l.side, Side::Buy, "order side: a buy closes the short");
    assert_eq!(l.position_side, Some("short"));
    assert_eq!(l.price.to_string(), "0.007831");
    assert_eq!(l.quantity.to_string(), "13000", "13 contracts × 1000 IOST");
    assert_eq!(l.contracts.unwrap().to_string(), "13");
    assert_eq!(l.liquidation_ts_ms, 1692266434010);
    assert_eq!(l.origin.ts_ms, 1692266434010);
    assert_eq!(
        j,
        format!(
            r#"{{"data_type":"liquidation","exchange":"okx","market_type":"perpetual","symbol":"IOST-USDT","instrument_id":"IOST-USDT-SWAP","side":"buy","position_side":"short","price":"0.007831","quantity":"13000","contracts":"13","liquidation_ts_ms":1692266434010,"ts_ms":1692266434010,{TAIL}"#
        )
    );
    // Not wanted (or not listed) → ignored, nothing pushed.
    let mut c = Conn::swap();
    c.map
        .set_wanted("IOST-USDT-SWAP", wanting(&[DataType::Trade]));
    assert_eq!(
        c.feed(&fixture("liquidation_orders.json")),
        FrameOutcome::Ignored
    );
    let mut c = Conn::new(VenueId::OkxDerivatives, InstrumentMap::default());
    assert_eq!(
        c.feed(&fixture("liquidation_orders.json")),
        FrameOutcome::Ignored
    );
    assert!(c.batch.is_empty());
}

// ------------------------------------------------------------ books

fn levels(ls: &[marketprism::batch::Level]) -> Vec<(String, String)> {
    ls.iter()
        .map(|l| (l.price.to_string(), l.quantity.to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn documented_books() {
    let asks = pairs(&[
        ("8476.98", "415"),
        ("8477", "7"),
        ("8477.34", "85"),
        ("8477.56", "1"),
        ("8505.84", "8"),
        ("8506.37", "85"),
        ("8506.49", "2"),
        ("8506.96", "100"),
    ]);
    let bids = pairs(&[
        ("8476.97", "256"),
        ("8475.55", "101"),
        ("8475.54", "100"),
        ("8475.3", "1"),
        ("8447.32", "6"),
        ("8447.02", "246"),
        ("8446.83", "24"),
        ("8446", "95"),
    ]);
    let mut c = Conn::spot();
    assert_eq!(c.feed(&fixture("books_snapshot.json")), FrameOutcome::Book);
    let b = &c.book;
    assert_eq!(b.raw_symbol, "BTC-USDT");
    assert!(b.snapshot);
    assert_eq!(
        (b.first_id, b.last_id, b.prev_id),
        (123456, 123456, Some(-1))
    );
    assert_eq!(b.checksum, None, "checksum 0 = not provided");
    assert_eq!(b.ts_ms, 1597026383085);
    assert_eq!(levels(&b.asks), asks);
    assert_eq!(levels(&b.bids), bids);

    assert_eq!(c.feed(&fixture("books_update.json")), FrameOutcome::Book);
    let b = &c.book;
    assert!(!b.snapshot);
    assert_eq!(
        (b.first_id, b.last_id, b.prev_id),
        (123457, 123457, Some(123456))
    );
    assert_eq!(levels(&b.asks), asks);
    assert_eq!(levels(&b.bids), bids);
    assert!(
        c.batch.is_empty(),
        "books become records in the book engine"
    );

    // Swap books keep contracts as sent (the checksum covers them).
    let mut c = Conn::swap();
    let f = fixture("books_snapshot.json").replace("BTC-USDT", "BTC-USDT-SWAP");
    assert_eq!(c.feed(&f), FrameOutcome::Book);
    assert_eq!(levels(&c.book.asks), asks);
    // The legacy non-zero checksum is passed on.
    let f = fixture("books_update.json").replace(r#""checksum":0"#, r#""checksum":-855196043"#);
    assert_eq!(Conn::spot().feed(&f), FrameOutcome::Book);
    let mut c = Conn::spot();
    c.feed(&f);
    assert_eq!(c.book.checksum, Some(-855196043));
}

#[test]
fn documented_rest_book() {
    let p = protocol(VenueId::OkxSpot);
    let mut m = BookMsg::default();
    p.parse_book_snapshot(
        "BTC-USDT",
        fixture("rest_books.json").as_bytes(),
        RX,
        &mut m,
    )
    .unwrap();
    assert!(m.snapshot);
    assert_eq!(m.raw_symbol, "BTC-USDT");
    assert_eq!(
        (m.first_id, m.last_id, m.prev_id),
        (3235851742, 3235851742, None)
    );
    assert_eq!(levels(&m.asks), pairs(&[("41006.8", "0.60038921")]));
    assert_eq!(levels(&m.bids), pairs(&[("41006.3", "0.30178218")]));
    assert_eq!(m.ts_ms, 1629966436396);
}

// ------------------------------------------------------------ REST

#[test]
fn long_short_ratios() {
    let p = protocol(VenueId::OkxDerivatives);
    let map = swap_map();
    let inst = map.get("BTC-USDT-SWAP").unwrap();
    let req = p.poll_request(DataType::LsrAllAccount, inst).unwrap();
    assert_eq!(
        req.path,
        "/api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=BTC&period=5m"
    );
    let req = p.poll_request(DataType::LsrTopPosition, inst).unwrap();
    assert_eq!(
        req.path,
        "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader?instId=BTC-USDT-SWAP&period=5m"
    );
    assert_eq!(
        req.weight, 4,
        "rubik: 5 requests / 2 s of the 20-unit budget"
    );
    assert_eq!(
        protocol(VenueId::OkxSpot).poll_request(DataType::LsrAllAccount, inst),
        None
    );

    let mut b = Batch::new(8, 4096);
    let out = p.parse_poll(
        DataType::LsrAllAccount,
        inst,
        fixture("lsr_account_ratio.json").as_bytes(),
        RX,
        &mut b,
    );
    assert_eq!(out, FrameOutcome::Records(1));
    let out = p.parse_poll(
        DataType::LsrTopPosition,
        inst,
        fixture("lsr_top_position_ratio.json").as_bytes(),
        RX,
        &mut b,
    );
    assert_eq!(out, FrameOutcome::Records(1));
    let recs: Vec<Record<'_>> = b.iter().copied().collect();
    let (Record::Lsr(a), Record::Lsr(t)) = (recs[0], recs[1]) else {
        panic!()
    };
    assert_eq!(a.data_type, DataType::LsrAllAccount);
    assert_eq!(a.long_short_ratio.to_string(), "1.25");
    assert_eq!((a.long_ratio, a.short_ratio), (None, None));
    assert_eq!(a.period, "5m");
    assert_eq!(
        (a.origin.symbol, a.origin.raw_symbol),
        ("BTC-USDT", "BTC-USDT-SWAP")
    );
    assert_eq!(a.origin.ts_ms, 1630502100000);
    assert_eq!(t.data_type, DataType::LsrTopPosition);
    assert_eq!(t.long_short_ratio.to_string(), "1.1739", "the newest point");
    assert_eq!(t.origin.ts_ms, 1701417900000);
    assert_eq!(
        json(&recs[0]),
        format!(
            r#"{{"data_type":"lsr_all_account","exchange":"okx","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTC-USDT-SWAP","long_short_ratio":"1.25","period":"5m","ts_ms":1630502100000,{TAIL}"#
        )
    );
    assert_eq!(
        json(&recs[1]),
        format!(
            r#"{{"data_type":"lsr_top_position","exchange":"okx","market_type":"perpetual","symbol":"BTC-USDT","instrument_id":"BTC-USDT-SWAP","long_short_ratio":"1.1739","period":"5m","ts_ms":1701417900000,{TAIL}"#
        )
    );
}

/// The first REST answer for `path` in a `.0` capture.
fn rest_body<'a>(text: &'a str, url: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.starts_with(url) && l[url.len()..].starts_with(" -> "))
        .unwrap_or_else(|| panic!("{url} not in capture"));
    &line[line.find(": ").unwrap() + 2..]
}

#[test]
fn recorded_instrument_lists() {
    let text = capture("OKX.0");
    let spot = protocol(VenueId::OkxSpot);
    let swap = protocol(VenueId::OkxDerivatives);
    let req = spot.instruments_request(None).unwrap();
    assert_eq!(req.path, "/api/v5/public/instruments?instType=SPOT");
    assert_eq!(spot.instruments_request(Some("next")), None);
    let mut m = InstrumentMap::default();
    let body = rest_body(&text, &format!("https://www.okx.com{}", req.path));
    assert_eq!(spot.parse_instruments(body.as_bytes(), &mut m), Ok(None));
    assert_eq!(m.len(), 513);
    let btc = m.get("BTC-USDT").unwrap();
    assert_eq!(
        (
            btc.normalized.as_str(),
            btc.base.as_str(),
            btc.quote.as_str()
        ),
        ("BTC-USDT", "BTC", "USDT")
    );
    assert!(btc.trading);
    assert_eq!(btc.contract_value, None);
    assert!(m.iter().all(|i| i.normalized == i.native));

    let req = swap.instruments_request(None).unwrap();
    assert_eq!(req.path, "/api/v5/public/instruments?instType=SWAP");
    let mut m = InstrumentMap::default();
    let body = rest_body(&text, &format!("https://www.okx.com{}", req.path));
    assert_eq!(swap.parse_instruments(body.as_bytes(), &mut m), Ok(None));
    assert_eq!(m.len(), 126, "the 126 linear swaps; 40 inverse skipped");
    let btc = m.get("BTC-USDT-SWAP").unwrap();
    assert_eq!(btc.normalized, "BTC-USDT");
    assert_eq!(btc.contract_value.unwrap().to_string(), "0.01");
    assert_eq!(m.normalize("ETH-USDT-SWAP"), Some("ETH-USDT"));
    assert_eq!(
        m.get("SHIB-USDT-SWAP")
            .unwrap()
            .contract_value
            .unwrap()
            .to_string(),
        "1000000"
    );
    assert_eq!(m.get("UNI-USD-SWAP"), None, "inverse");
    assert!(m
        .iter()
        .all(|i| i.native == format!("{}-SWAP", i.normalized)));

    // Spot list through the swap parser and vice versa: nothing listed → error.
    let spot_body = rest_body(
        &text,
        "https://www.okx.com/api/v5/public/instruments?instType=SPOT",
    );
    assert!(swap
        .parse_instruments(spot_body.as_bytes(), &mut InstrumentMap::default())
        .is_err());
    assert!(spot
        .parse_instruments(
            br#"{"code":"50011","msg":"Too Many Requests","data":[]}"#,
            &mut m
        )
        .is_err());
}

// ------------------------------------------------------------ replay

/// A local book to verify the capture's CRC32 checksums against the parsed levels.
#[derive(Default)]
struct LocalBook {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
}

impl LocalBook {
    fn apply(&mut self, m: &BookMsg) {
        if m.snapshot {
            self.bids.clear();
            self.asks.clear();
        }
        for (side, ls) in [(&mut self.bids, &m.bids), (&mut self.asks, &m.asks)] {
            for l in ls {
                if l.quantity.is_zero() {
                    side.remove(&l.price);
                } else {
                    side.insert(l.price, l.quantity);
                }
            }
        }
    }

    /// OKX's legacy checksum of the top 25 levels per side.
    fn checksum(&self) -> i32 {
        let bids: Vec<_> = self.bids.iter().rev().take(25).collect();
        let asks: Vec<_> = self.asks.iter().take(25).collect();
        let mut parts = Vec::new();
        for i in 0..25 {
            if let Some((p, q)) = bids.get(i) {
                parts.push(format!("{p}:{q}"));
            }
            if let Some((p, q)) = asks.get(i) {
                parts.push(format!("{p}:{q}"));
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(parts.join(":").as_bytes());
        crc.sum() as i32
    }
}

#[derive(Default, Debug, PartialEq)]
struct Counts {
    control: u32,
    trades_frames: u32,
    trade_records: u32,
    ticker_records: u32,
    book_msgs: u32,
    book_snapshots: u32,
    checksums_verified: u32,
    unknown_symbol: BTreeMap<String, u32>,
}

/// Replays every received frame of the 2022 capture: spot instruments through
/// `okx_spot`, everything else through `okx_derivatives`.
fn replay(extra_instruments: bool) -> Counts {
    let inst = capture("OKX.0");
    let mut spot_map = InstrumentMap::default();
    let mut swap_map = InstrumentMap::default();
    protocol(VenueId::OkxSpot)
        .parse_instruments(
            rest_body(
                &inst,
                "https://www.okx.com/api/v5/public/instruments?instType=SPOT",
            )
            .as_bytes(),
            &mut spot_map,
        )
        .unwrap();
    protocol(VenueId::OkxDerivatives)
        .parse_instruments(
            rest_body(
                &inst,
                "https://www.okx.com/api/v5/public/instruments?instType=SWAP",
            )
            .as_bytes(),
            &mut swap_map,
        )
        .unwrap();
    if extra_instruments {
        // The capture's inverse swap and future are not collected by this
        // build; listed here without a contract value to replay their frames.
        swap_map.insert_contract("UNI-USD-SWAP", "UNI", "USD", true, None);
        swap_map.insert_contract("BTC-USD-220527", "BTC", "USD", true, None);
    }
    let mut spot = Conn::new(VenueId::OkxSpot, spot_map);
    let mut swap = Conn::new(VenueId::OkxDerivatives, swap_map);
    let mut books: BTreeMap<String, LocalBook> = BTreeMap::new();
    let mut n = Counts::default();
    let text = capture("OKX.ws.1.0");
    for line in text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
    {
        let (t, frame) = line.split_once(": ").unwrap();
        let rx = (t.parse::<f64>().unwrap() * 1e9) as u64;
        let inst_id = frame
            .split("\"instId\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        let channel = frame
            .split("\"channel\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        let c = if spot.map.get(inst_id).is_some() {
            &mut spot
        } else {
            &mut swap
        };
        let before = c.batch.len();
        match c.feed_at(frame, rx) {
            FrameOutcome::Control => n.control += 1,
            FrameOutcome::Records(k) => {
                assert_eq!(c.batch.len() - before, k as usize);
                match channel {
                    "trades" => {
                        n.trades_frames += 1;
                        n.trade_records += k
                    }
                    "tickers" => n.ticker_records += k,
                    other => panic!("records from {other}"),
                }
            }
            FrameOutcome::Book => {
                assert_eq!(channel, "books");
                let m = &c.book;
                assert_eq!(m.raw_symbol, inst_id);
                assert_eq!(
                    (m.first_id, m.last_id, m.prev_id),
                    (0, 0, None),
                    "2022: no seqId"
                );
                assert!(m.ts_ms > 1_652_000_000_000);
                n.book_msgs += 1;
                n.book_snapshots += m.snapshot as u32;
                let local = books.entry(inst_id.to_string()).or_default();
                local.apply(m);
                let sum = m.checksum.expect("2022 books carry a checksum");
                assert_eq!(local.checksum(), sum, "{inst_id} at {t}");
                n.checksums_verified += 1;
            }
            FrameOutcome::Malformed(Malformed::UnknownSymbol) => {
                *n.unknown_symbol
                    .entry(format!("{channel}:{inst_id}"))
                    .or_default() += 1
            }
            other => panic!("{other:?} for {frame}"),
        }
    }
    for r in spot.batch.iter().chain(swap.batch.iter()) {
        let o = r.origin();
        assert!(o.receive_ts_ns > 1_652_459_000_000_000_000);
        assert!(!json(r).is_empty());
    }
    n
}

#[test]
fn replays_recorded_session() {
    let n = replay(false);
    let unknown: BTreeMap<String, u32> = [
        ("books:BTC-USD-220527", 99),
        ("books:UNI-USD-SWAP", 93),
        ("tickers:BTC-USD-220527", 2),
        ("tickers:UNI-USD-SWAP", 1),
        ("trades:BTC-USD-220527", 4),
        ("trades:UNI-USD-SWAP", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        n,
        Counts {
            control: 18,
            trades_frames: 69,
            trade_records: 69,
            ticker_records: 25,
            book_msgs: 98,
            book_snapshots: 1,
            checksums_verified: 98,
            unknown_symbol: unknown,
        },
        "BTC-USDT parses completely; the future and the inverse swap are not listed"
    );

    // With those two listed, every frame of the capture parses.
    let n = replay(true);
    assert_eq!(
        n,
        Counts {
            control: 18,
            trades_frames: 74,
            trade_records: 74,
            ticker_records: 28,
            book_msgs: 290,
            book_snapshots: 3,
            checksums_verified: 290,
            unknown_symbol: BTreeMap::new(),
        }
    );
}

// ------------------------------------------------------------ robustness

#[test]
fn mangled_frames_never_panic_and_never_half_push() {
    let frames = [
        fixture("trades.json"),
        fixture("tickers.json"),
        fixture("books_snapshot.json"),
        fixture("funding_rate.json"),
        fixture("open_interest.json"),
        fixture("liquidation_orders.json"),
        fixture("error_60012.json"),
    ];
    let mut total = 0;
    let (mut spot, mut swap) = (Conn::spot(), Conn::swap());
    for f in &frames {
        for cut in 0..f.len() {
            for variant in [
                f[..cut].to_string(),
                format!("{}\"{}", &f[..cut], &f[cut..]),
                format!("{}1{}", &f[..cut], &f[cut..]),
            ] {
                for c in [&mut spot, &mut swap] {
                    let before = c.batch.len();
                    if let FrameOutcome::Malformed(_) = c.feed(&variant) {
                        assert_eq!(c.batch.len(), before, "{variant}");
                    }
                    if c.batch.len() > 500 {
                        c.batch.reset();
                    }
                    total += 1;
                }
            }
        }
    }
    assert!(total > 1000);
}

#[test]
fn steady_state_allocates_nothing() {
    let mut spot = Conn::spot();
    let mut swap = Conn::swap();
    let spot_frames = [
        fixture("trades.json"),
        fixture("tickers.json"),
        fixture("books_snapshot.json"),
        fixture("books_update.json"),
        "pong".to_string(),
        fixture("subscribe_ack.json"),
    ];
    let swap_frames = [
        fixture("funding_rate.json"),
        fixture("open_interest.json"),
        fixture("liquidation_orders.json"),
        fixture("trades.json")
            .replace("BTC-USDT", "BTC-USDT-SWAP")
            .replace(r#"[{"instId""#, r#"[{"instId":"BTC-USDT-SWAP","tradeId":"1","px":"1","sz":"2","side":"buy","ts":"3"},{"instId""#),
    ];
    let mut run = |rounds: usize| {
        for _ in 0..rounds {
            for f in &spot_frames {
                assert!(!matches!(spot.feed(f), FrameOutcome::Malformed(_)));
            }
            for f in &swap_frames {
                assert!(!matches!(swap.feed(f), FrameOutcome::Malformed(_)));
            }
            if spot.batch.len() > 500 {
                spot.batch.reset();
            }
            if swap.batch.len() > 500 {
                swap.batch.reset();
            }
        }
    };
    run(300);
    let before = allocs();
    std::hint::black_box(Vec::<u8>::with_capacity(8));
    assert_eq!(allocs() - before, 1, "the counter counts");
    let before = allocs();
    run(2_000);
    assert_eq!(allocs() - before, 0, "heap allocations in steady state");
}

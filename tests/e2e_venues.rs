//! Every venue and every non-book data type end to end over TLS: the mock
//! exchange speaks all seven venues' protocols on one port, `marketprism run`
//! collects them on two cores into JSON Lines files, and the output must be
//! exactly what the mock sent: for every WebSocket stream, item n of 1..=N
//! appears once and only once, with every field equal to what the venue
//! parser makes of the mock's frame n (the parsers are checked field by field
//! against the official examples in `venue_*` tests). Polled data types must
//! be answers the mock gave, each datapoint once.
//!
//! Order books have their own test (`e2e_books`).

mod common;

use common::*;
use marketprism::batch::Batch;
use marketprism::book::BookMsg;
use marketprism::mock::{self, bybit::Cat};
use marketprism::model::{DataType, DataTypeSet, VenueId};
use marketprism::venue::{self, InstrumentMap, ParseCtx, VenueState};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const TIME_BASE: u64 = 1_700_000_000_000;
/// Items per WebSocket stream.
const N: u64 = 40;

/// Venue → (ws path, symbols, data types) as configured.
fn venues() -> Vec<(VenueId, &'static str, Vec<&'static str>, Vec<DataType>)> {
    use DataType::*;
    vec![
        (
            VenueId::BinanceSpot,
            "",
            vec!["BTCUSDT", "ETHUSDT"],
            vec![Ticker],
        ),
        (
            VenueId::BinanceDerivatives,
            "",
            vec!["BTCUSDT", "ETHUSDT"],
            vec![
                Trade,
                FundingRate,
                Liquidation,
                Ticker,
                OpenInterest,
                LsrTopPosition,
                LsrAllAccount,
            ],
        ),
        (
            VenueId::OkxSpot,
            "/ws/v5/public",
            vec!["BTC-USDT", "ETH-USDT"],
            vec![Trade, Ticker],
        ),
        (
            VenueId::OkxDerivatives,
            "/ws/v5/public",
            vec!["BTC-USDT-SWAP", "ETH-USDT-SWAP"],
            vec![
                Trade,
                Ticker,
                FundingRate,
                OpenInterest,
                Liquidation,
                LsrTopPosition,
                LsrAllAccount,
            ],
        ),
        (
            VenueId::DeribitDerivatives,
            "/ws/api/v2",
            vec!["BTC-PERPETUAL", "ETH-PERPETUAL", "BTC", "ETH"],
            vec![Trade, Ticker, FundingRate, OpenInterest, VolatilityIndex],
        ),
        (
            VenueId::BybitSpot,
            "/v5/public/spot",
            vec!["BTCUSDT", "ETHUSDT"],
            vec![Trade, Ticker],
        ),
        (
            VenueId::BybitLinear,
            "/v5/public/linear",
            vec!["BTCUSDT", "ETHUSDT"],
            vec![
                Trade,
                Ticker,
                FundingRate,
                OpenInterest,
                Liquidation,
                LsrAllAccount,
            ],
        ),
    ]
}

fn write_config(dir: &Path, mock: std::net::SocketAddr) -> std::path::PathBuf {
    let mut text = format!(
        "[engine]\ncores = [0, 1]\nbatch_max_events = 512\nbatch_max_delay_ms = 10\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[sink]\nkind = \"file\"\npath = \"{}\"\n",
        dir.join("data").display()
    );
    for (v, path, syms, dts) in venues() {
        let polled: Vec<String> = dts
            .iter()
            .filter(|&&d| is_polled(v, d))
            .map(|d| format!("{} = 1000", d.name()))
            .collect();
        let polls = if polled.is_empty() {
            String::new()
        } else {
            format!("poll_interval_ms = {{ {} }}\n", polled.join(", "))
        };
        let syms: Vec<String> = syms.iter().map(|s| format!("\"{s}\"")).collect();
        let dts: Vec<String> = dts.iter().map(|d| format!("\"{}\"", d.name())).collect();
        text.push_str(&format!(
            "[exchanges.{v}]\nws_url = \"wss://localhost:{port}{path}\"\nrest_url = \"https://localhost:{port}\"\n\
             ca_file = \"{ca}\"\nsymbols = [{syms}]\ndata_types = [{dts}]\n{polls}",
            port = mock.port(),
            ca = dir.join("tls/ca.pem").display(),
            syms = syms.join(", "),
            dts = dts.join(", "),
        ));
    }
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The instrument map the collector builds from the mock's REST answers, with
/// the configured data types marked as wanted.
fn instruments(v: VenueId, syms: &[&str], dts: &[DataType]) -> InstrumentMap {
    let body = match v {
        VenueId::BinanceSpot => return spot_instruments(syms, dts),
        VenueId::BinanceDerivatives => mock::binance_futures::exchange_info_json(TIME_BASE),
        VenueId::OkxSpot => mock::okx::instruments_json(false),
        VenueId::OkxDerivatives => mock::okx::instruments_json(true),
        VenueId::DeribitDerivatives => mock::deribit::instruments_json("any").unwrap(),
        VenueId::BybitSpot => mock::bybit::instruments_json(Cat::Spot, TIME_BASE),
        VenueId::BybitLinear => mock::bybit::instruments_json(Cat::Linear, TIME_BASE),
    };
    let mut m = InstrumentMap::default();
    venue::protocol(v)
        .parse_instruments(body.as_bytes(), &mut m)
        .unwrap();
    mark(&mut m, syms, dts);
    m
}

fn spot_instruments(syms: &[&str], dts: &[DataType]) -> InstrumentMap {
    let mut m = InstrumentMap::default();
    m.insert("BTCUSDT", "BTC", "USDT", true);
    m.insert("ETHUSDT", "ETH", "USDT", true);
    mark(&mut m, syms, dts);
    m
}

fn mark(m: &mut InstrumentMap, syms: &[&str], dts: &[DataType]) {
    let mut w = DataTypeSet::default();
    dts.iter().for_each(|&d| w.insert(d));
    for s in syms {
        m.set_wanted(s, w);
    }
}

/// A record as compared: the JSON line without the local receive times.
fn canonical(v: sonic_rs::Value, drop_ts: bool) -> String {
    let mut fields: Vec<(String, String)> = v
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            !(matches!(*k, "collected_ts_ms" | "receive_ts_ns") || drop_ts && *k == "ts_ms")
        })
        .map(|(k, v)| (k.to_string(), sonic_rs::to_string(v).unwrap()))
        .collect();
    fields.sort();
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the collector must make of `frames`, parsed in order on one connection.
fn expected_records(
    v: VenueId,
    frames: &[String],
    inst: &InstrumentMap,
) -> Vec<(String, String, String)> {
    let proto = venue::protocol(v);
    let mut state = VenueState::default();
    let mut book = BookMsg::default();
    let mut replies = Vec::new();
    let mut out = Vec::new();
    for f in frames {
        let mut batch = Batch::new(64, 1 << 16);
        let mut cx = ParseCtx {
            venue: v,
            instruments: inst,
            book: &mut book,
            state: &mut state,
            replies: &mut replies,
        };
        proto.on_text(f, 1, &mut cx, &mut batch);
        for r in batch.iter() {
            let mut line = Vec::new();
            marketprism::sink::encode::encode_json(&mut line, r);
            let val: sonic_rs::Value = sonic_rs::from_slice(&line).unwrap();
            let drop_ts = v == VenueId::BinanceSpot && r.data_type() == DataType::Ticker;
            out.push((
                r.data_type().name().to_string(),
                r.symbol().to_string(),
                canonical(val, drop_ts),
            ));
        }
    }
    out
}

fn wrap_binance(stream: &str, raw: String) -> String {
    format!("{{\"stream\":\"{stream}\",\"data\":{raw}}}")
}

/// The frames the mock sends for each configured WebSocket stream, grouped
/// by the connection order the parser sees them in (per channel).
fn mock_frames(v: VenueId) -> Vec<Vec<String>> {
    let opts = mock::MockOptions::default();
    let ns = || 1..=N;
    let b = TIME_BASE;
    match v {
        VenueId::BinanceSpot => (0..2)
            .map(|i| {
                let s = ["btcusdt", "ethusdt"][i];
                ns().map(|n| {
                    wrap_binance(
                        &format!("{s}@bookTicker"),
                        mock::venues::spot_book_ticker(&opts, i, n),
                    )
                })
                .collect()
            })
            .collect(),
        VenueId::BinanceDerivatives => {
            use mock::binance_futures as f;
            let mut all = Vec::new();
            for i in 0..2 {
                let s = ["btcusdt", "ethusdt"][i];
                all.push(
                    ns().map(|n| wrap_binance(&format!("{s}@aggTrade"), f::agg_trade(i, n, b)))
                        .collect(),
                );
                all.push(
                    ns().map(|n| {
                        wrap_binance(&format!("{s}@markPrice@1s"), f::mark_price(i, n, b))
                    })
                    .collect(),
                );
                all.push(
                    ns().map(|n| wrap_binance(&format!("{s}@forceOrder"), f::force_order(i, n, b)))
                        .collect(),
                );
                all.push(
                    ns().map(|n| wrap_binance(&format!("{s}@bookTicker"), f::book_ticker(i, n, b)))
                        .collect(),
                );
            }
            all
        }
        VenueId::OkxSpot | VenueId::OkxDerivatives => {
            let swap = v == VenueId::OkxDerivatives;
            let insts = if swap { [2, 3] } else { [0, 1] };
            let mut all = Vec::new();
            for i in insts {
                all.push(ns().map(|n| mock::okx::trade(i, n, b)).collect());
                all.push(ns().map(|n| mock::okx::ticker(i, n, b)).collect());
                if swap {
                    all.push(ns().map(|n| mock::okx::funding(i, n, b)).collect());
                    all.push(ns().map(|n| mock::okx::open_interest(i, n, b)).collect());
                }
            }
            if swap {
                all.push(ns().map(|n| mock::okx::liquidation(n, b)).collect());
            }
            all
        }
        VenueId::DeribitDerivatives => {
            let mut all = Vec::new();
            for i in 0..2 {
                all.push(
                    ns().map(|n| mock::deribit::trades(i, n, b, "100ms"))
                        .collect(),
                );
                all.push(
                    ns().map(|n| mock::deribit::ticker(i, n, b, "100ms"))
                        .collect(),
                );
                all.push(ns().map(|n| mock::deribit::volatility(i, n, b)).collect());
            }
            all
        }
        VenueId::BybitSpot | VenueId::BybitLinear => {
            let cat = if v == VenueId::BybitSpot {
                Cat::Spot
            } else {
                Cat::Linear
            };
            let mut all = Vec::new();
            for i in 0..2 {
                all.push(ns().map(|n| mock::bybit::trade(cat, i, n, b)).collect());
                all.push(
                    ns().map(|n| mock::bybit::ticker(cat, i, n, b, n == 1))
                        .collect(),
                );
                if cat == Cat::Linear {
                    all.push(ns().map(|n| mock::bybit::liquidation(i, n, b)).collect());
                }
            }
            all
        }
    }
}

/// The fields config/README.md's "Output records" lists for every record, with
/// their values: `ts_ms` is the exchange's time (the mock's clock starts at
/// `TIME_BASE`), except Binance spot `ticker`, which has none: receive time.
fn common_fields(v: VenueId, d: DataType, r: &sonic_rs::Value, inst: &InstrumentMap) {
    let s = |k: &str| {
        r[k].as_str()
            .unwrap_or_else(|| panic!("{v} {d}: no {k}: {r:?}"))
    };
    let n = |k: &str| {
        r[k].as_u64()
            .unwrap_or_else(|| panic!("{v} {d}: no {k}: {r:?}"))
    };
    assert_eq!(s("data_type"), d.name());
    assert_eq!(s("exchange"), v.exchange());
    assert_eq!(s("market_type"), v.market_type_of(d));
    assert_eq!(s("data_source"), "marketprism");
    let id = s("instrument_id");
    if d == DataType::VolatilityIndex {
        // The index's own name; `symbol` is its currency.
        assert_eq!(id, s("index_name"), "{r:?}");
        assert_eq!(id, format!("{}_usd", s("symbol").to_lowercase()), "{r:?}");
    } else {
        assert_eq!(inst.normalize(id), Some(s("symbol")), "{v} {d}: {r:?}");
    }
    if d == DataType::Trade {
        assert_eq!(s("raw_symbol"), id);
    }
    let recv = n("receive_ts_ns");
    assert_eq!(n("collected_ts_ms"), recv / 1_000_000);
    let ts = n("ts_ms");
    if (v, d) == (VenueId::BinanceSpot, DataType::Ticker) {
        assert_eq!(ts, recv / 1_000_000, "{r:?}");
    } else {
        assert!(
            (TIME_BASE..TIME_BASE + 30 * 86_400_000).contains(&ts),
            "{v} {d}: ts_ms {ts} is not the mock exchange's time"
        );
    }
}

fn is_polled(v: VenueId, dt: DataType) -> bool {
    matches!(venue::protocol(v).source(dt), venue::Source::Poll { .. })
}

#[test]
fn every_venue_and_data_type_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--time-base-ms",
            &TIME_BASE.to_string(),
            "--event-rate",
            "0",
            "--events-per-stream",
            &N.to_string(),
        ],
    );
    let cfg = write_config(dir.path(), addr);
    let (mut coll, maddr) = start_collector(&cfg);

    // Expected WebSocket records per (venue, data type, symbol).
    let mut expected: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    let mut total_expected = 0usize;
    for (v, _, syms, dts) in venues() {
        let inst = instruments(v, &syms, &dts);
        for frames in mock_frames(v) {
            for (dt, sym, rec) in expected_records(v, &frames, &inst) {
                total_expected += 1;
                expected
                    .entry((v.to_string(), dt, sym))
                    .or_default()
                    .push(rec);
            }
        }
    }
    assert!(total_expected > 1500, "{total_expected}");

    // Wait until every WebSocket record is written and every poll answered twice.
    wait_until("all streams written", Duration::from_secs(60), || {
        let (_, m) = http_get(maddr, "/metrics");
        let written = metric_sum(&m, "marketprism_messages_written_total", &[]);
        let polled = metric_sum(&m, "marketprism_rest_requests_total", &[]);
        written as usize >= total_expected + 8 && polled >= 30.0
    });
    let (_, metrics) = http_get(maddr, "/metrics");
    let status = coll.signal_and_wait(libc::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", coll.output());
    drop(mock);

    let mut got: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    let mut polled: BTreeMap<(String, String, String), Vec<sonic_rs::Value>> = BTreeMap::new();
    let maps: BTreeMap<VenueId, InstrumentMap> = venues()
        .into_iter()
        .map(|(v, _, syms, dts)| (v, instruments(v, &syms, &dts)))
        .collect();
    let mut kinds: BTreeSet<(VenueId, DataType)> = BTreeSet::new();
    for (_, rec) in read_records(&dir.path().join("data")) {
        let venue_key = format!(
            "{}_{}",
            rec["exchange"].as_str().unwrap(),
            rec["market_type"].as_str().unwrap()
        );
        let dt = rec["data_type"].as_str().unwrap().to_string();
        let v = VenueId::ALL
            .into_iter()
            .find(|v| {
                v.exchange() == rec["exchange"].as_str().unwrap()
                    && v.market_type_of(DataType::from_name(&dt).unwrap())
                        == rec["market_type"].as_str().unwrap()
            })
            .unwrap_or_else(|| panic!("record of an unknown venue {venue_key}"));
        let sym = rec["symbol"].as_str().unwrap().to_string();
        let d = DataType::from_name(&dt).unwrap();
        common_fields(v, d, &rec, &maps[&v]);
        kinds.insert((v, d));
        if is_polled(v, d) {
            polled
                .entry((v.to_string(), dt, sym))
                .or_default()
                .push(rec);
            continue;
        }
        let drop_ts = v == VenueId::BinanceSpot && d == DataType::Ticker;
        got.entry((v.to_string(), dt, sym))
            .or_default()
            .push(canonical(rec, drop_ts));
    }
    for recs in expected.values_mut().chain(got.values_mut()) {
        recs.sort();
    }
    // Every configured data type of every venue was seen (and checked above).
    let configured: BTreeSet<(VenueId, DataType)> = venues()
        .into_iter()
        .flat_map(|(v, _, _, dts)| dts.into_iter().map(move |d| (v, d)))
        .collect();
    assert_eq!(kinds, configured);
    let want_keys: Vec<_> = expected.keys().collect();
    let got_keys: Vec<_> = got.keys().collect();
    assert_eq!(got_keys, want_keys, "streams differ");
    for (k, want) in &expected {
        let have = &got[k];
        assert_eq!(have.len(), want.len(), "{k:?}: count");
        for (h, w) in have.iter().zip(want) {
            assert_eq!(h, w, "{k:?}");
        }
    }

    // Polls: every configured (venue, type, symbol) answered, each datapoint once.
    let mut poll_streams = 0;
    for (v, _, syms, dts) in venues() {
        for d in dts.iter().filter(|&&d| is_polled(v, d)) {
            for s in &syms {
                let inst = instruments(v, &syms, &dts);
                let sym = inst.normalize(s).unwrap().to_string();
                let recs = polled
                    .get(&(v.to_string(), d.name().to_string(), sym.clone()))
                    .unwrap_or_else(|| panic!("no {d} records of {v} {s}"));
                let mut ts: Vec<u64> = recs.iter().map(|r| r["ts_ms"].as_u64().unwrap()).collect();
                ts.sort();
                let n = ts.len();
                ts.dedup();
                assert_eq!(ts.len(), n, "{v} {d} {s}: a datapoint was published twice");
                poll_streams += 1;
            }
        }
    }
    assert_eq!(poll_streams, 12);
    // Nothing was malformed, and no venue answered an error.
    assert_eq!(
        metric_sum(&metrics, "marketprism_malformed_frames_total", &[]),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "marketprism_control_errors_total", &[]),
        0.0
    );
    // Heartbeats: OKX/Bybit/Deribit each run on their own clocks; nothing asserted
    // here beyond the connections staying up (no reconnects).
    assert_eq!(
        metric_sum(&metrics, "marketprism_websocket_reconnections_total", &[]),
        0.0
    );
}

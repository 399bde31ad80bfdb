//! Micro-benchmarks of the message path, printed as ns/msg and allocs/msg:
//! Binance trade frame → record (parse + decimals + arena), record → JSON
//! line, the whole pipeline (parse → batch → encode → file write),
//! rust_decimal parsing alone, and every venue's busiest messages (trades and
//! book updates, as the mock exchange sends them) through its parser.
//! Run: `cargo bench --bench parse`.

use marketprism::batch::{Batch, Record, Trade, TradeId};
use marketprism::config::plan::FileSinkPlan;
use marketprism::engine::pipeline::Pipeline;
use marketprism::metrics::CoreStats;
use marketprism::mock::binance::{trade, trade_frames};
use marketprism::model::{DataType, Side, VenueId};
use marketprism::sink::encode::encode_record;
use marketprism::venue::{binance, FrameOutcome, InstrumentMap};
use rust_decimal::Decimal;
use sonic_rs::{JsonValueTrait, LazyValue};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The tests' counting allocator: per thread, and the benches measure on one.
#[path = "../tests/common/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const SYMBOLS: [(&str, &str, &str); 4] = [
    ("BTCUSDT", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("BNBUSDT", "BNB", "USDT"),
    ("ETHBTC", "ETH", "BTC"),
];

fn frames(n: u64) -> Vec<String> {
    trade_frames(&SYMBOLS, n, 1_700_000_000_000)
}

fn instruments() -> InstrumentMap {
    let mut m = InstrumentMap::default();
    for (s, b, q) in SYMBOLS {
        m.insert(s, b, q, true);
    }
    m
}

/// Runs `f` over all frames `rounds` times; prints best ns/msg and allocs/msg.
fn report(name: &str, frames: &[String], rounds: usize, mut f: impl FnMut(&[String])) {
    f(frames); // warm-up
    let mut best = Duration::MAX;
    let a0 = alloc::allocs();
    for _ in 0..rounds {
        let t = Instant::now();
        f(frames);
        best = best.min(t.elapsed());
    }
    let allocs = (alloc::allocs() - a0) as f64 / (rounds * frames.len()) as f64;
    let ns = best.as_nanos() as f64 / frames.len() as f64;
    println!(
        "{name:<44} {ns:>8.1} ns/msg {:>10.0} msg/s {allocs:>8.4} allocs/msg",
        1e9 / ns
    );
}

/// A receive time of 2025-11-26 (19 digits), so encoding and the
/// pipeline see numbers of a live run's size.
const RECV_NS: u64 = 1_764_150_000_123_456_789;

fn main() {
    let n = 200_000;
    let frames = frames(n);
    let bytes: usize = frames.iter().map(String::len).sum();
    println!(
        "{} Binance trade frames, {:.0} bytes average; best of 5 rounds",
        n,
        bytes as f64 / n as f64
    );
    let map = instruments();

    let mut batch = Batch::new(4096, 4096 * 192);
    report(
        "parse → record in arena (binance trade)",
        &frames,
        5,
        |fr| {
            for f in fr {
                let out = binance::wire::on_text(f, RECV_NS, &map, &mut batch);
                debug_assert!(matches!(out, FrameOutcome::Records(..)));
                black_box(out);
                if batch.len() >= 4096 {
                    batch.reset();
                }
            }
            batch.reset();
        },
    );

    // The same frames → the same records by each reader: sonic-rs typed
    // serde, sonic-rs lazy (object iterators), the flat scanner, the layout
    // reader the protocol uses. Checked equal first (encoded lines).
    let strategies: [(&str, Strategy); 4] = [
        (
            "sonic-rs typed serde",
            Strategy::Reader(binance::wire::Reader::Serde),
        ),
        ("sonic-rs lazy (object iterators)", Strategy::Lazy),
        (
            "flat scanner",
            Strategy::Reader(binance::wire::Reader::Flat),
        ),
        (
            "layout reader (used)",
            Strategy::Reader(binance::wire::Reader::Layout),
        ),
    ];
    let sample = &frames[..2000];
    let reference = encoded(sample, &map, Strategy::Reader(binance::wire::Reader::Serde));
    for (name, st) in strategies {
        assert_eq!(
            encoded(sample, &map, st),
            reference,
            "{name}: records differ"
        );
    }
    println!("binance trade → record, by reader (same records, checked):");
    for (name, st) in strategies {
        let mut batch = Batch::new(4096, 4096 * 192);
        let mut book = marketprism::book::BookMsg::default();
        report(&format!("  {name}"), &frames, 5, |fr| {
            for f in fr {
                black_box(read(st, f, &map, &mut book, &mut batch));
                if batch.len() >= 4096 {
                    batch.reset();
                }
            }
            batch.reset();
        });
    }

    let mut batch = Batch::new(4096, 4096 * 192);
    for f in frames.iter().take(4096) {
        binance::wire::on_text(f, RECV_NS, &map, &mut batch);
    }
    let recs: Vec<Record<'_>> = batch.iter().copied().collect();
    let mut out = Vec::with_capacity(4096 * 400);
    let enc_frames: Vec<String> = frames[..4096].to_vec();
    report("record → JSON line (encode)", &enc_frames, 50, |_| {
        out.clear();
        for r in &recs {
            encode_record(&mut out, r);
        }
        black_box(&out);
    });
    // The ClickHouse sink's encoding of the same records (RowBinary rows).
    let mut rows = Vec::with_capacity(4096 * 128);
    report(
        "record → RowBinary row (ClickHouse)",
        &enc_frames,
        50,
        |_| {
            rows.clear();
            for r in &recs {
                let _ = marketprism::sink::clickhouse::rows::encode_row(
                    marketprism::sink::clickhouse::schema::Table::Trades,
                    r,
                    &mut rows,
                );
            }
            black_box(&rows);
        },
    );
    drop(recs);

    let dir = tempfile::tempdir().unwrap();
    let plan = FileSinkPlan {
        path: dir.path().to_path_buf(),
        rotate_max_bytes: 1 << 40,
        rotate_interval: Duration::from_secs(86_400),
        write_mode: marketprism::config::WriteMode::Inline,
        io_worker_cpus: Vec::new(),
        io_worker_cpus_configured: None,
    };
    let stats = Arc::new(CoreStats::new(0, 0));
    let mut p = Pipeline::new(0, 4096, &plan, vec![instruments()], stats).unwrap();
    let mut conn = marketprism::engine::pipeline::ConnState::default();
    report(
        "pipeline: parse → batch → encode → write",
        &frames,
        3,
        |fr| {
            for f in fr {
                black_box(p.on_text(
                    VenueId::BinanceSpot,
                    Some(DataType::Trade),
                    f,
                    RECV_NS,
                    &mut conn,
                ));
                if p.is_full() {
                    p.flush(RECV_NS);
                }
            }
            p.flush(RECV_NS);
        },
    );
    p.close().unwrap();

    let prices: Vec<String> = frames
        .iter()
        .take(100_000)
        .enumerate()
        .map(|(i, _)| trade(i % 4, i as u64 + 1, 0).price)
        .collect();
    report("Decimal::from_str_exact (price string)", &prices, 5, |ps| {
        for s in ps {
            black_box(Decimal::from_str_exact(s).ok());
        }
    });
    report("exact_decimal (ours, price string)", &prices, 5, |ps| {
        for s in ps {
            black_box(marketprism::venue::json::exact_decimal(black_box(s)));
        }
    });

    println!("\nper venue: frame → records / book message (parser only), 20 000 frames each");
    for (v, what, frames) in venue_frames(20_000) {
        let inst = venue_instruments(v);
        let mut batch = Batch::new(4096, 4096 * 256);
        let mut book = marketprism::book::BookMsg::default();
        let mut state = marketprism::venue::VenueState::default();
        let mut replies = Vec::new();
        let proto = marketprism::venue::protocol(v);
        report(&format!("{v} {what}"), &frames, 5, |fr| {
            for f in fr {
                let mut cx = marketprism::venue::ParseCtx {
                    venue: v,
                    instruments: &inst,
                    book: &mut book,
                    state: &mut state,
                    replies: &mut replies,
                };
                let out = proto.on_text(f, 1, &mut cx, &mut batch);
                assert!(
                    matches!(out, FrameOutcome::Records(_) | FrameOutcome::Book),
                    "{v} {what}: {out:?} for {f}"
                );
                if batch.len() >= 4000 {
                    batch.reset();
                }
            }
            batch.reset();
        });
    }
}

/// Instruments as the mock lists them, every data type wanted.
fn venue_instruments(v: VenueId) -> InstrumentMap {
    use marketprism::mock::{binance_futures, bybit, deribit, okx};
    let body = match v {
        VenueId::BinanceSpot => return instruments(),
        VenueId::BinanceDerivatives => binance_futures::exchange_info_json(0),
        VenueId::OkxSpot => okx::instruments_json(false),
        VenueId::OkxDerivatives => okx::instruments_json(true),
        VenueId::DeribitDerivatives => deribit::instruments_json("any").unwrap_or_default(),
        VenueId::BybitSpot => bybit::instruments_json(bybit::Cat::Spot, 0),
        VenueId::BybitLinear => bybit::instruments_json(bybit::Cat::Linear, 0),
    };
    let mut m = InstrumentMap::default();
    marketprism::venue::protocol(v)
        .parse_instruments(body.as_bytes(), &mut m)
        .unwrap();
    let natives: Vec<String> = m.iter().map(|i| i.native.clone()).collect();
    for n in natives {
        m.set_wanted(&n, marketprism::model::DataTypeSet::all());
    }
    m
}

/// Each venue's trade frames and book-update frames, as the mock sends them.
fn venue_frames(n: u64) -> Vec<(VenueId, &'static str, Vec<String>)> {
    use marketprism::mock::book::BookFeed;
    use marketprism::mock::venues::book_spec;
    use marketprism::mock::{binance_book, binance_futures, bybit, deribit, okx, MockOptions};
    let opts = MockOptions {
        book_depth: 400,
        ..MockOptions::default()
    };
    let base = 1_700_000_000_000;
    let books = |v: VenueId, native: &str, write: &dyn Fn(&BookFeed, u64) -> String| {
        let mut feed = BookFeed::new(book_spec(&opts, v, 0, native), base, 0, 0);
        (1..=n)
            .map(|i| {
                feed.advance_to(i);
                write(&feed, i)
            })
            .collect::<Vec<String>>()
    };
    let wrap = |s: &str, raw: String| format!("{{\"stream\":\"{s}\",\"data\":{raw}}}");
    vec![
        (VenueId::BinanceSpot, "trade", frames(n)),
        (
            VenueId::BinanceSpot,
            "depthUpdate (400-level book)",
            books(VenueId::BinanceSpot, "BTCUSDT", &|f, i| {
                wrap(
                    "btcusdt@depth@100ms",
                    binance_book::depth_update("BTCUSDT", f, f.update(i).unwrap(), false),
                )
            }),
        ),
        (
            VenueId::BinanceDerivatives,
            "aggTrade",
            (1..=n)
                .map(|i| wrap("btcusdt@aggTrade", binance_futures::agg_trade(0, i, base)))
                .collect(),
        ),
        (
            VenueId::BinanceDerivatives,
            "depthUpdate (400-level book)",
            books(VenueId::BinanceDerivatives, "BTCUSDT", &|f, i| {
                wrap(
                    "btcusdt@depth@100ms",
                    binance_book::depth_update("BTCUSDT", f, f.update(i).unwrap(), true),
                )
            }),
        ),
        (
            VenueId::OkxDerivatives,
            "trades",
            (1..=n).map(|i| okx::trade(2, i, base)).collect(),
        ),
        (
            VenueId::OkxDerivatives,
            "books update (400-level book)",
            books(VenueId::OkxDerivatives, "BTC-USDT-SWAP", &|f, i| {
                let mut o = String::new();
                okx::write_books_update(&mut o, "BTC-USDT-SWAP", f, f.update(i).unwrap());
                o
            }),
        ),
        (
            VenueId::BybitLinear,
            "publicTrade",
            (1..=n)
                .map(|i| bybit::trade(bybit::Cat::Linear, 0, i, base))
                .collect(),
        ),
        (
            VenueId::BybitLinear,
            "orderbook.200 delta",
            books(VenueId::BybitLinear, "BTCUSDT", &|f, i| {
                let mut o = String::new();
                bybit::write_orderbook_update(
                    &mut o,
                    "orderbook.200.BTCUSDT",
                    "BTCUSDT",
                    f,
                    f.update(i).unwrap(),
                );
                o
            }),
        ),
        (
            VenueId::DeribitDerivatives,
            "trades",
            (1..=n)
                .map(|i| deribit::trades(0, i, base, "100ms"))
                .collect(),
        ),
        (
            VenueId::DeribitDerivatives,
            "book change",
            books(VenueId::DeribitDerivatives, "BTC-PERPETUAL", &|f, i| {
                let mut o = String::new();
                deribit::write_book_change(
                    &mut o,
                    "book.BTC-PERPETUAL.100ms",
                    "BTC-PERPETUAL",
                    f,
                    f.update(i).unwrap(),
                );
                o
            }),
        ),
    ]
}

/// A way to read a Binance trade frame into a record.
#[derive(Clone, Copy)]
enum Strategy {
    Reader(binance::wire::Reader),
    Lazy,
}

fn read(
    st: Strategy,
    f: &str,
    map: &InstrumentMap,
    book: &mut marketprism::book::BookMsg,
    batch: &mut Batch,
) -> bool {
    match st {
        Strategy::Reader(r) => matches!(
            binance::wire::on_frame_with(r, f, RECV_NS, VenueId::BinanceSpot, map, book, batch),
            FrameOutcome::Records(1)
        ),
        Strategy::Lazy => lazy_trade(f, map, batch).is_some(),
    }
}

/// The encoded lines of `frames` read by `st`.
fn encoded(frames: &[String], map: &InstrumentMap, st: Strategy) -> Vec<u8> {
    let mut batch = Batch::new(4096, 4096 * 192);
    let mut book = marketprism::book::BookMsg::default();
    for f in frames {
        assert!(read(st, f, map, &mut book, &mut batch), "{f}");
    }
    let mut out = Vec::new();
    for r in batch.iter() {
        encode_record(&mut out, r);
    }
    out
}

/// sonic-rs' lazy strategy: iterate the frame's members, then `data`'s,
/// keep the wanted values as `LazyValue`s and read them; the record is
/// built as the protocol builds it.
fn lazy_trade(text: &str, map: &InstrumentMap, batch: &mut Batch) -> Option<()> {
    let mut data = None;
    for kv in sonic_rs::to_object_iter(text) {
        let (k, v) = kv.ok()?;
        if k == "data" {
            data = Some(v);
        }
    }
    let data = data?;
    let mut fields: [Option<LazyValue<'_>>; 7] = Default::default();
    for kv in sonic_rs::to_object_iter(data.as_raw_str()) {
        let (k, v) = kv.ok()?;
        let slot = match &*k {
            "E" => 0,
            "s" => 1,
            "t" => 2,
            "p" => 3,
            "q" => 4,
            "T" => 5,
            "m" => 6,
            _ => continue,
        };
        fields[slot] = Some(v);
    }
    let [e, s, t, p, q, tt, m] = &fields;
    let raw_symbol = s.as_ref()?.as_str()?;
    let id = t.as_ref()?.as_u64()?;
    let price = marketprism::venue::json::exact_decimal(p.as_ref()?.as_str()?)?;
    let quantity = marketprism::venue::json::exact_decimal(q.as_ref()?.as_str()?)?;
    let trade_ts = tt.as_ref()?.as_u64()?;
    let maker = m.as_ref()?.as_bool()?;
    let event_ts = e.as_ref().and_then(|v| v.as_u64()).unwrap_or(trade_ts);
    let symbol = map.normalize(raw_symbol)?;
    batch
        .push_with::<()>(RECV_NS, |bump| {
            Ok(Record::Trade(Trade {
                venue: VenueId::BinanceSpot,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                trade_id: TradeId::Num(id),
                price,
                quantity,
                side: if maker { Side::Sell } else { Side::Buy },
                contracts: None,
                is_maker: Some(maker),
                trade_ts_ms: trade_ts,
                seq: Some(id),
                backfilled: false,
                ts_ms: event_ts,
                receive_ts_ns: RECV_NS,
            }))
        })
        .ok()
}

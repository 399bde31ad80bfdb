//! Replays of real venue captures through the book engine: every recorded
//! book frame is turned into a `BookMsg` by a small test-only parser (the
//! real venue parsers live elsewhere), REST snapshots are served when the
//! engine asks for them (no earlier than their recorded time), and the sync
//! outcome is checked: zero gaps, every OKX checksum matching.

mod common;

use common::alloc::allocs;
use common::fixtures::capture;
use marketprism::batch::{Batch, Level, Record};
use marketprism::book::{BookAction, BookConfig, BookMsg, BookStats, Books};
use marketprism::model::VenueId;
use rust_decimal::Decimal;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

/// One recorded event in time order.
enum Event {
    Ws(Value),
    /// (raw symbol, body)
    Rest(String, Value),
}

/// `T: TEXT` frames of a `.ws` file and `URL -> T: BODY` answers of an
/// `.http` file, merged by time.
fn events(ws: &str, http: Option<&str>) -> Vec<(f64, Event)> {
    let mut out = Vec::new();
    for line in ws.lines().skip(1) {
        if line.contains(" <- ") {
            continue; // a frame we sent
        }
        let Some((t, json)) = line.split_once(": ") else {
            continue;
        };
        let (Ok(t), Ok(v)) = (t.parse::<f64>(), sonic_rs::from_str::<Value>(json)) else {
            continue;
        };
        out.push((t, Event::Ws(v)));
    }
    for line in http.unwrap_or("").lines() {
        let Some((url, rest)) = line.split_once(" -> ") else {
            continue;
        };
        let Some((t, body)) = rest.split_once(": ") else {
            continue;
        };
        let sym = url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("symbol="))
            .unwrap_or("")
            .to_string();
        if let (Ok(t), Ok(v)) = (t.parse::<f64>(), sonic_rs::from_str::<Value>(body)) {
            out.push((t, Event::Rest(sym, v)));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn ns(t: f64) -> u64 {
    (t * 1e9) as u64
}

fn dec(v: &Value) -> Decimal {
    match v.as_str() {
        Some(s) => Decimal::from_str(s).unwrap(),
        // Deribit sends numbers; their shortest form is what was sent.
        None => Decimal::from_str(&v.as_f64().unwrap().to_string()).unwrap(),
    }
}

/// `[[price, qty, ...], ...]` (Binance, OKX).
fn pairs(v: Option<&Value>, out: &mut Vec<Level>) {
    out.clear();
    for l in v.and_then(|v| v.as_array()).into_iter().flatten() {
        out.push(Level::new(dec(&l[0]), dec(&l[1])));
    }
}

/// Deribit `[[action, price, amount], ...]`: `delete` removes.
fn deribit_levels(v: Option<&Value>, out: &mut Vec<Level>) {
    out.clear();
    for l in v.and_then(|v| v.as_array()).into_iter().flatten() {
        let qty = if l[0].as_str() == Some("delete") {
            Decimal::ZERO
        } else {
            dec(&l[2])
        };
        out.push(Level::new(dec(&l[1]), qty));
    }
}

/// A Binance `depthUpdate` (combined stream) into `m`.
fn binance_diff(v: &Value, m: &mut BookMsg) -> bool {
    let Some(d) = v.get("data") else { return false };
    if d.get("e").and_then(|e| e.as_str()) != Some("depthUpdate") {
        return false;
    }
    m.clear();
    m.raw_symbol.push_str(d["s"].as_str().unwrap());
    m.first_id = d["U"].as_u64().unwrap();
    m.last_id = d["u"].as_u64().unwrap();
    m.prev_id = d.get("pu").and_then(|p| p.as_i64());
    m.ts_ms = d["E"].as_u64().unwrap();
    pairs(d.get("b"), &mut m.bids);
    pairs(d.get("a"), &mut m.asks);
    true
}

fn binance_rest(sym: &str, v: &Value, t: f64, m: &mut BookMsg) {
    m.clear();
    m.raw_symbol.push_str(sym);
    m.snapshot = true;
    m.last_id = v["lastUpdateId"].as_u64().unwrap();
    m.first_id = m.last_id;
    m.ts_ms = v
        .get("E")
        .and_then(|e| e.as_u64())
        .unwrap_or((t * 1e3) as u64);
    pairs(v.get("bids"), &mut m.bids);
    pairs(v.get("asks"), &mut m.asks);
}

const CFG: BookConfig = BookConfig {
    depth: 400,
    publish_interval_ns: 100_000_000,
    deltas: false,
};

/// Replays a Binance session: diffs go to `on_ws`, a recorded snapshot is
/// served once the engine asks for it (and not before its recorded time).
/// Returns the stats, diffs per symbol and the books.
fn replay_binance(venue: VenueId, ws: &str, http: &str) -> (Books, BTreeMap<String, u64>, u64) {
    let evs = events(ws, Some(http));
    let mut books = Books::new(marketprism::venue::book_rule, &[(venue, CFG)]);
    let mut batch = Batch::new(1 << 16, 1 << 22);
    let mut seen = BTreeMap::<String, u64>::new();
    let mut m = BookMsg::default();
    // Recorded answers not yet asked for / requests not yet answered.
    let mut answers = BTreeMap::<String, (f64, Value)>::new();
    let mut requested = BTreeSet::<String>::new();
    let mut served = 0;
    for (t, ev) in evs {
        match ev {
            Event::Ws(v) => {
                if !binance_diff(&v, &mut m) {
                    continue;
                }
                books.register(venue, &m.raw_symbol, &m.raw_symbol);
                *seen.entry(m.raw_symbol.clone()).or_default() += 1;
                match books.on_ws(venue, &m, ns(t), &mut batch) {
                    BookAction::FetchSnapshot => {
                        let sym = m.raw_symbol.clone();
                        if let Some((rt, body)) = answers.remove(&sym) {
                            binance_rest(&sym, &body, rt, &mut m);
                            served += 1;
                            assert_eq!(
                                books.on_rest_snapshot(venue, &m, ns(t), &mut batch),
                                BookAction::None
                            );
                        } else {
                            requested.insert(sym);
                        }
                    }
                    a => assert_eq!(a, BookAction::None, "{} at {t}", m.raw_symbol),
                }
            }
            Event::Rest(sym, body) => {
                if requested.remove(&sym) {
                    binance_rest(&sym, &body, t, &mut m);
                    served += 1;
                    assert_eq!(
                        books.on_rest_snapshot(venue, &m, ns(t), &mut batch),
                        BookAction::None
                    );
                } else {
                    answers.insert(sym, (t, body));
                }
            }
        }
        books.publish_due(ns(t), &mut batch);
    }
    books.publish_due(u64::MAX, &mut batch);
    // Every published book is uncrossed and best first.
    for r in batch.iter() {
        if let Record::Book(b) = r {
            assert!(b.bids.windows(2).all(|w| w[0].price > w[1].price));
            assert!(b.asks.windows(2).all(|w| w[0].price < w[1].price));
            assert!(b.bids[0].price < b.asks[0].price);
            assert!(b.bids.len() <= 400 && b.asks.len() <= 400);
        }
    }
    assert_eq!(served, seen.len() as u64, "one snapshot per symbol");
    (books, seen, batch.len() as u64)
}

fn print(name: &str, s: &BookStats, published: u64) {
    eprintln!("{name}: {s:?} (records {published})");
}

#[test]
fn binance_spot_capture_syncs_without_gaps() {
    let (ws, http) = (capture("BINANCE.ws.1.0"), capture("BINANCE.http.0.0"));
    let v = VenueId::BinanceSpot;
    let (books, seen, records) = replay_binance(v, &ws, &http);
    let s = *books.stats(v);
    print("binance spot", &s, records);
    assert_eq!(
        seen.iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect::<Vec<_>>(),
        [
            ("BLZETH", 10),
            ("LRCBTC", 15),
            ("NKNUSDT", 150),
            ("RUNEEUR", 2)
        ]
    );
    for sym in seen.keys() {
        assert!(books.is_synced(v, sym), "{sym}");
    }
    assert_eq!(
        (s.gaps, s.resyncs, s.crossed, s.stale_snapshots),
        (0, 0, 0, 0)
    );
    assert_eq!((s.snapshots_applied, s.snapshot_requests), (4, 4));
    // 177 diffs: each one buffered then dropped as covered by the snapshot, or applied.
    assert_eq!(s.updates_applied + s.stale_dropped, 177);
    // Dropped: each symbol's diffs already in its snapshot (NKNUSDT 1,
    // BLZETH 1, LRCBTC 2, RUNEEUR 1); every later one applied in sequence.
    assert_eq!(
        (s.updates_applied, s.stale_dropped, s.buffered),
        (172, 5, 4)
    );
    assert_eq!((s.published, records), (175, 175));
    let last: Vec<u64> = seen
        .keys()
        .map(|k| books.book(v, k).unwrap().last_update_id())
        .collect();
    assert_eq!(last, [281916638, 259345563, 499870179, 15602513]);
}

#[test]
fn binance_futures_capture_follows_the_pu_chain() {
    let (ws, http) = (
        capture("BINANCE_FUTURES.ws.1.0"),
        capture("BINANCE_FUTURES.http.0.0"),
    );
    let v = VenueId::BinanceDerivatives;
    let (books, seen, records) = replay_binance(v, &ws, &http);
    let s = *books.stats(v);
    print("binance usdm", &s, records);
    assert_eq!(
        seen.iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect::<Vec<_>>(),
        [
            ("AKROUSDT", 189),
            ("CTKUSDT", 185),
            ("KEEPUSDT", 135),
            ("SUSHIUSDT", 255)
        ]
    );
    for sym in seen.keys() {
        assert!(books.is_synced(v, sym), "{sym}");
    }
    assert_eq!(
        (s.gaps, s.resyncs, s.crossed, s.stale_snapshots),
        (0, 0, 0, 0)
    );
    assert_eq!(s.updates_applied + s.stale_dropped, 764);
    // The REST snapshots were taken after a few diffs: those (u < lastUpdateId) are dropped.
    assert_eq!(
        (s.updates_applied, s.stale_dropped, s.buffered),
        (752, 12, 4)
    );
    assert_eq!((s.snapshots_applied, s.snapshot_requests), (4, 4));
    assert_eq!((s.published, records), (753, 753));
    let last: Vec<u64> = seen
        .keys()
        .map(|k| books.book(v, k).unwrap().last_update_id())
        .collect();
    assert_eq!(
        last,
        [600860423964, 600860423222, 600860420312, 600860425198]
    );
}

#[test]
fn okx_capture_checksums_all_match() {
    let ws = capture("OKX.ws.1.0");
    let v = VenueId::OkxDerivatives;
    let mut books = Books::new(marketprism::venue::book_rule, &[(v, CFG)]);
    let mut batch = Batch::new(1 << 16, 1 << 22);
    let mut m = BookMsg::default();
    let mut frames = 0;
    for (t, ev) in events(&ws, None) {
        let Event::Ws(f) = ev else { continue };
        let arg = f.get("arg");
        if arg.and_then(|a| a.get("channel")).and_then(|c| c.as_str()) != Some("books") {
            continue;
        }
        let Some(action) = f.get("action").and_then(|a| a.as_str()) else {
            continue; // subscribe ack
        };
        let inst = arg.unwrap()["instId"].as_str().unwrap();
        for d in f["data"].as_array().unwrap().iter() {
            m.clear();
            m.raw_symbol.push_str(inst);
            books.register(v, inst, inst);
            m.snapshot = action == "snapshot";
            // 2022 frames carry no seqId / prevSeqId.
            m.last_id = d.get("seqId").and_then(|s| s.as_u64()).unwrap_or(0);
            m.first_id = m.last_id;
            m.prev_id = d.get("prevSeqId").and_then(|s| s.as_i64());
            m.checksum = d
                .get("checksum")
                .and_then(|c| c.as_i64())
                .filter(|&c| c != 0)
                .map(|c| c as i32);
            m.ts_ms = d["ts"].as_str().unwrap().parse().unwrap();
            pairs(d.get("bids"), &mut m.bids);
            pairs(d.get("asks"), &mut m.asks);
            frames += 1;
            let a = books.on_ws(v, &m, ns(t), &mut batch);
            assert_eq!(a, BookAction::None, "{inst} at {t}");
            assert!(books.is_synced(v, inst));
        }
        books.publish_due(ns(t), &mut batch);
    }
    books.publish_due(u64::MAX, &mut batch);
    let s = *books.stats(v);
    print("okx", &s, batch.len() as u64);
    assert_eq!(frames, 290);
    assert_eq!((s.snapshots_applied, s.updates_applied), (3, 287));
    assert_eq!((s.checksums_verified, s.checksum_failures), (290, 0));
    assert_eq!((s.gaps, s.resyncs, s.crossed), (0, 0, 0));
    assert_eq!((s.published, batch.len()), (283, 283));
    // No sequence ids in 2022: every record's id is 0, and its NATS message
    // id (the JetStream dedup key) is told apart by exchange time instead.
    let mut ids = std::collections::BTreeSet::new();
    for r in batch.iter() {
        let marketprism::batch::Record::Book(b) = r else {
            panic!("not a book record")
        };
        assert_eq!(b.last_update_id, 0);
        let mut id = Vec::new();
        marketprism::sink::encode::push_msg_id(&mut id, r);
        let id = String::from_utf8(id).unwrap();
        let want = format!(
            "orderbook:okx:perpetual:{}:t{}",
            b.origin.symbol.replace('.', "_"),
            b.origin.ts_ms
        );
        assert_eq!(id, want);
        ids.insert(id);
    }
    assert_eq!(ids.len(), 283, "message ids repeat");
}

#[test]
fn deribit_capture_change_ids_chain() {
    let ws = capture("DERIBIT.ws.1.0");
    let v = VenueId::DeribitDerivatives;
    let mut books = Books::new(marketprism::venue::book_rule, &[(v, CFG)]);
    let mut batch = Batch::new(1 << 16, 1 << 22);
    let mut m = BookMsg::default();
    let mut frames = 0;
    for (t, ev) in events(&ws, None) {
        let Event::Ws(f) = ev else { continue };
        let Some(p) = f.get("params") else { continue };
        let ch = p.get("channel").and_then(|c| c.as_str()).unwrap_or("");
        if !ch.starts_with("book.") {
            continue;
        }
        let d = &p["data"];
        let inst = d["instrument_name"].as_str().unwrap();
        books.register(v, inst, inst);
        m.clear();
        m.raw_symbol.push_str(inst);
        m.snapshot = d["type"].as_str() == Some("snapshot");
        m.last_id = d["change_id"].as_u64().unwrap();
        m.first_id = m.last_id;
        m.prev_id = d.get("prev_change_id").and_then(|c| c.as_i64());
        m.ts_ms = d["timestamp"].as_u64().unwrap();
        deribit_levels(d.get("bids"), &mut m.bids);
        deribit_levels(d.get("asks"), &mut m.asks);
        frames += 1;
        assert_eq!(
            books.on_ws(v, &m, ns(t), &mut batch),
            BookAction::None,
            "{inst}"
        );
        assert!(books.is_synced(v, inst));
        books.publish_due(ns(t), &mut batch);
    }
    books.publish_due(u64::MAX, &mut batch);
    let s = *books.stats(v);
    print("deribit", &s, batch.len() as u64);
    assert_eq!(frames, 46);
    assert_eq!((s.snapshots_applied, s.updates_applied), (10, 36));
    assert_eq!(
        (s.gaps, s.resyncs, s.crossed, s.dropped_unsynced),
        (0, 0, 0, 0)
    );
    assert_eq!((s.published, batch.len()), (37, 37));
}

/// Steady state: updates, throttled `orderbook` records, `orderbook_delta`
/// records and timer passes allocate nothing on the heap (replaying the
/// OKX capture's frames, pre-parsed, over and over with fresh seqIds).
#[test]
fn steady_state_allocates_nothing() {
    let v = VenueId::BybitLinear;
    let cfg = BookConfig {
        depth: 400,
        publish_interval_ns: 1_000,
        deltas: true,
    };
    let mut books = Books::new(marketprism::venue::book_rule, &[(v, cfg)]);
    books.register(v, "BTCUSDT", "BTC-USDT");
    let mut batch = Batch::new(1 << 12, 1 << 24);
    let lv = |p: i64, q: i64| Level::new(Decimal::new(p, 1), Decimal::new(q, 3));
    let mut snap = BookMsg {
        raw_symbol: "BTCUSDT".into(),
        snapshot: true,
        last_id: 1,
        ..Default::default()
    };
    for i in 0..400 {
        snap.bids.push(lv(100_000 - i, 1 + i));
        snap.asks.push(lv(100_001 + i, 1 + i));
    }
    books.on_ws(v, &snap, 0, &mut batch);
    let mut rng = fastrand::Rng::with_seed(3);
    let mut msgs: Vec<BookMsg> = (0..512)
        .map(|_| BookMsg {
            raw_symbol: "BTCUSDT".into(),
            bids: vec![lv(100_000 - rng.i64(0..10), rng.i64(0..3) * 7)],
            asks: vec![lv(100_001 + rng.i64(0..10), rng.i64(0..3) * 7)],
            ..Default::default()
        })
        .collect();
    let mut id = 1;
    let mut run = |books: &mut Books, batch: &mut Batch, n: usize| {
        for i in 0..n {
            id += 1;
            let m = &mut msgs[i % 512];
            m.first_id = id;
            m.last_id = id;
            // Every third update enters a new interval of exchange time.
            m.ts_ms = id / 3;
            let now = id * 300;
            books.on_ws(v, m, now, batch);
            if books.next_publish_ns().is_some_and(|t| t <= now) {
                books.publish_due(now, batch);
            }
            if batch.len() >= 1 << 11 {
                batch.reset();
            }
        }
    };
    run(&mut books, &mut batch, 20_000);
    let before = allocs();
    run(&mut books, &mut batch, 100_000);
    assert_eq!(allocs() - before, 0, "heap allocations in steady state");
    let s = *books.stats(v);
    assert_eq!((s.gaps, s.crossed, s.resyncs), (0, 0, 0));
    assert_eq!((s.published, s.deltas_published), (40_000, 120_000));
}

//! Order books of every venue end to end over TLS, with the mock exchange
//! injecting each venue's documented trouble into the first symbol's stream:
//! sequence gaps, a stale REST snapshot, OKX sequence reset / keep-alive /
//! bad checksum, Bybit mid-stream snapshot and `u = 1`, crossed books.
//!
//! - Every `orderbook` record of an untouched symbol equals the mock's true
//!   book at the record's `last_update_id` (all levels, exact strings).
//! - Every book, troubled or not, ends equal to the mock's final true book.
//! - Resyncs are counted per venue, and only the troubled symbol was
//!   resubscribed: the other symbol on the same connection kept flowing.

mod common;

use common::*;
use marketprism::mock::book::{BookFeed, Side};
use marketprism::mock::venues::book_spec;
use marketprism::mock::MockOptions;
use marketprism::model::VenueId;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

const TIME_BASE: u64 = 1_700_000_000_000;
/// Book updates per symbol, and their rate.
const UPDATES: u64 = 400;
const RATE: u64 = 100;

struct BookVenue {
    id: VenueId,
    path: &'static str,
    symbols: [&'static str; 2],
    /// Faults injected into `symbols[0]`, in order.
    faults: &'static [&'static str],
    /// Faults that make the collector resync (the rest are legal events).
    resyncs: u64,
}

fn book_venues() -> Vec<BookVenue> {
    vec![
        BookVenue {
            id: VenueId::BinanceSpot,
            path: "",
            symbols: ["BTCUSDT", "ETHUSDT"],
            // The resync after the gap gets a stale snapshot first.
            faults: &["stale_snapshot", "gap", "crossed"],
            resyncs: 2,
        },
        BookVenue {
            id: VenueId::BinanceDerivatives,
            path: "",
            symbols: ["BTCUSDT", "ETHUSDT"],
            faults: &["gap", "crossed"],
            resyncs: 2,
        },
        BookVenue {
            id: VenueId::OkxSpot,
            path: "/ws/v5/public",
            symbols: ["BTC-USDT", "ETH-USDT"],
            faults: &["keepalive", "seq_reset", "bad_checksum", "gap"],
            resyncs: 2,
        },
        BookVenue {
            id: VenueId::OkxDerivatives,
            path: "/ws/v5/public",
            symbols: ["BTC-USDT-SWAP", "ETH-USDT-SWAP"],
            faults: &["crossed"],
            resyncs: 1,
        },
        BookVenue {
            id: VenueId::BybitLinear,
            path: "/v5/public/linear",
            symbols: ["BTCUSDT", "ETHUSDT"],
            faults: &["snapshot", "u1", "crossed"],
            resyncs: 1,
        },
        BookVenue {
            id: VenueId::BybitSpot,
            path: "/v5/public/spot",
            symbols: ["BTCUSDT", "ETHUSDT"],
            faults: &["snapshot"],
            resyncs: 0,
        },
        BookVenue {
            id: VenueId::DeribitDerivatives,
            path: "/ws/api/v2",
            symbols: ["BTC-PERPETUAL", "ETH-PERPETUAL"],
            faults: &["gap", "crossed"],
            resyncs: 2,
        },
    ]
}

fn write_config(dir: &Path, mock: std::net::SocketAddr) -> std::path::PathBuf {
    let mut text = format!(
        "[engine]\ncores = [0, 1]\nbatch_max_events = 512\nbatch_max_delay_ms = 10\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[sink]\nkind = \"file\"\npath = \"{}\"\n",
        dir.join("data").display()
    );
    for v in book_venues() {
        text.push_str(&format!(
            "[exchanges.{}]\nws_url = \"wss://localhost:{port}{}\"\nrest_url = \"https://localhost:{port}\"\n\
             ca_file = \"{ca}\"\nsymbols = [\"{}\", \"{}\"]\ndata_types = [\"orderbook\"]\n\
             book_publish_interval_ms = 10\nsnapshot_depth = 100\n",
            v.id,
            v.path,
            v.symbols[0],
            v.symbols[1],
            port = mock.port(),
            ca = dir.join("tls/ca.pem").display(),
        ));
    }
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

type Levels = Vec<(String, String)>;
/// True book (bids, asks) by update id.
type History = HashMap<u64, (Levels, Levels)>;

/// The mock's true book after every update of an untouched symbol, by id.
fn true_books(v: VenueId, native: &str, bybit: bool) -> History {
    let opts = MockOptions::default();
    let idx = marketprism::mock::venues::find(&opts, v, native).unwrap();
    let mut feed = BookFeed::new(book_spec(&opts, v, idx, native), TIME_BASE, 0, 0);
    let mut out = HashMap::new();
    for n in 0..=UPDATES {
        feed.advance_to(n);
        let b = feed.book();
        out.insert(
            if bybit { feed.u() } else { feed.last_id() },
            (
                feed.fmt_levels(&b.top(Side::Bid, usize::MAX)),
                feed.fmt_levels(&b.top(Side::Ask, usize::MAX)),
            ),
        );
    }
    out
}

/// The id a venue's book records carry: Bybit's `u` (which restarts at 1
/// after a `u = 1` snapshot), the sequence id elsewhere.
fn is_bybit(v: VenueId) -> bool {
    matches!(v, VenueId::BybitSpot | VenueId::BybitLinear)
}

/// config/README.md's common fields of a book or gap record. `ts_ms` is the
/// exchange time of the last update the book reflects (the mock's clock
/// starts at `TIME_BASE`); a gap's is when the collector found the loss, and
/// a Binance spot book straight from a REST snapshot (no exchange time in
/// it) has the snapshot's receive time.
fn book_common_fields(v: VenueId, r: &sonic_rs::Value) {
    let n = |k: &str| {
        r[k].as_u64()
            .unwrap_or_else(|| panic!("{v}: no {k}: {r:?}"))
    };
    let inst = r["instrument_id"].as_str().unwrap();
    let want_symbol = match v {
        VenueId::OkxSpot | VenueId::OkxDerivatives => inst.trim_end_matches("-SWAP").to_string(),
        VenueId::DeribitDerivatives => inst.replace("-PERPETUAL", "-USD"),
        _ => inst.replace("USDT", "-USDT"),
    };
    assert_eq!(r["symbol"].as_str(), Some(want_symbol.as_str()), "{r:?}");
    assert_eq!(r["data_source"].as_str(), Some("marketprism"));
    let recv_ms = n("receive_ts_ns") / 1_000_000;
    assert_eq!(n("collected_ts_ms"), recv_ms);
    let ts = n("ts_ms");
    let exchange_time = (TIME_BASE..TIME_BASE + 30 * 86_400_000).contains(&ts);
    if r["data_type"].as_str() == Some("gap") {
        assert_eq!(ts, recv_ms, "{r:?}");
    } else if v == VenueId::BinanceSpot {
        assert!(exchange_time || ts == recv_ms, "{r:?}");
    } else {
        assert!(exchange_time, "{v}: ts_ms {ts} is not the mock's time");
    }
}

/// Venues whose book updates name the update they follow (USDⓈ-M `pu`,
/// OKX `prevSeqId`, Deribit `prev_change_id`).
fn has_prev_id(v: VenueId) -> bool {
    matches!(
        v,
        VenueId::BinanceDerivatives
            | VenueId::OkxSpot
            | VenueId::OkxDerivatives
            | VenueId::DeribitDerivatives
    )
}

fn mock_id(v: VenueId, m: &sonic_rs::Value) -> Option<u64> {
    if is_bybit(v) {
        m["u"].as_u64()
    } else {
        m["last_update_id"].as_u64()
    }
}

fn levels(v: &sonic_rs::Value, key: &str) -> Levels {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["price"].as_str().unwrap().to_string(),
                l["quantity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn mock_levels(v: &sonic_rs::Value, key: &str) -> Levels {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l[0].as_str().unwrap().to_string(),
                l[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn mock_book(addr: std::net::SocketAddr, ca: &Path, v: VenueId, sym: &str) -> sonic_rs::Value {
    let body = https_get(addr, ca, &format!("/mock/book?venue={v}&symbol={sym}"));
    sonic_rs::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// The newest `orderbook` record per (venue key, raw symbol) in the files
/// (complete lines only: also used while the collector writes).
fn latest(dir: &Path) -> BTreeMap<(String, String), sonic_rs::Value> {
    let mut out: BTreeMap<(String, String), sonic_rs::Value> = BTreeMap::new();
    for (_, r) in read_records_so_far(dir) {
        let key = (
            format!(
                "{}:{}",
                r["exchange"].as_str().unwrap(),
                r["market_type"].as_str().unwrap()
            ),
            r["instrument_id"].as_str().unwrap().to_string(),
        );
        let newer = out.get(&key).is_none_or(|old| {
            r["receive_ts_ns"].as_u64().unwrap() >= old["receive_ts_ns"].as_u64().unwrap()
        });
        if newer {
            out.insert(key, r);
        }
    }
    out
}

fn venue_key(v: VenueId) -> String {
    format!("{}:{}", v.exchange(), v.market_type())
}

#[test]
fn books_stay_in_sync_through_every_documented_fault() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("tls/ca.pem");
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--time-base-ms",
            &TIME_BASE.to_string(),
            "--book-rate",
            &RATE.to_string(),
            "--book-updates",
            &UPDATES.to_string(),
        ],
    );
    let cfg = write_config(dir.path(), addr);
    let (mut coll, maddr) = start_collector(&cfg);
    let data = dir.path().join("data");
    let all = book_venues();

    // Every book published at least once: all synced.
    wait_until("all books published", Duration::from_secs(30), || {
        let l = latest(&data);
        all.iter().all(|v| {
            v.symbols
                .iter()
                .all(|s| l.contains_key(&(venue_key(v.id), s.to_string())))
        })
    });
    // Trouble for the first symbol of each venue, one fault at a time.
    let max_faults = all.iter().map(|v| v.faults.len()).max().unwrap();
    for i in 0..max_faults {
        for v in &all {
            if let Some(kind) = v.faults.get(i) {
                let body = https_get(
                    addr,
                    &ca,
                    &format!(
                        "/mock/fault?venue={}&symbol={}&kind={kind}",
                        v.id, v.symbols[0]
                    ),
                );
                assert!(!body.contains("error"), "{}: {kind}: {body}", v.id);
            }
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    // Wait for the end of every stream and for each book to reach it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    wait_until("books final", Duration::from_secs(60), || {
        let late = std::time::Instant::now() + Duration::from_secs(2) > deadline;
        let l = latest(&data);
        all.iter().all(|v| {
            v.symbols.iter().all(|s| {
                let m = mock_book(addr, &ca, v.id, s);
                let ok = m["update_count"].as_u64() == Some(UPDATES)
                    && l.get(&(venue_key(v.id), s.to_string()))
                        .is_some_and(|r| r["last_update_id"].as_u64() == mock_id(v.id, &m));
                if !ok && late {
                    eprintln!(
                        "{} {s}: mock n={:?} id={:?}, collector id={:?}",
                        v.id,
                        m["update_count"].as_u64(),
                        mock_id(v.id, &m),
                        l.get(&(venue_key(v.id), s.to_string()))
                            .map(|r| r["last_update_id"].as_u64())
                    );
                }
                ok
            })
        })
    });
    let (_, metrics) = http_get(maddr, "/metrics");
    let stats = https_get(addr, &ca, "/mock/stats");
    let status = coll.signal_and_wait(libc::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", coll.output());

    // Final state: every book equals the mock's true book, level for level
    // (and the stopped collector left no torn line).
    assert!(!read_records(&data).is_empty());
    let l = latest(&data);
    for v in &all {
        for s in v.symbols {
            let m = mock_book(addr, &ca, v.id, s);
            let r = &l[&(venue_key(v.id), s.to_string())];
            assert_eq!(
                levels(r, "bids"),
                mock_levels(&m, "bids"),
                "{} {s} bids",
                v.id
            );
            assert_eq!(
                levels(r, "asks"),
                mock_levels(&m, "asks"),
                "{} {s} asks",
                v.id
            );
        }
    }
    drop(mock);

    // Every record of the untouched symbols equals the true book at its id.
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let truth: HashMap<(VenueId, &str), History> = all
        .iter()
        .map(|v| {
            (
                (v.id, v.symbols[1]),
                true_books(v.id, v.symbols[1], is_bybit(v.id)),
            )
        })
        .collect();
    let sorted_ids: HashMap<VenueId, Vec<u64>> = truth
        .iter()
        .map(|((v, _), h)| {
            let mut ids: Vec<u64> = h.keys().copied().collect();
            ids.sort_unstable();
            (*v, ids)
        })
        .collect();
    let mut with_prev: BTreeMap<String, usize> = BTreeMap::new();
    let mut without_prev: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_id: HashMap<(VenueId, String), u64> = HashMap::new();
    let mut book_gaps: HashMap<String, u64> = HashMap::new();
    for (_, r) in read_records(&data) {
        let inst = r["instrument_id"].as_str().unwrap();
        let Some(v) = all.iter().find(|v| {
            venue_key(v.id)
                == format!(
                    "{}:{}",
                    r["exchange"].as_str().unwrap(),
                    r["market_type"].as_str().unwrap()
                )
        }) else {
            panic!("unexpected record {r:?}");
        };
        book_common_fields(v.id, &r);
        if r["data_type"].as_str() == Some("gap") {
            // Each resync of the troubled symbol is reported, nothing else.
            assert_eq!(inst, v.symbols[0], "{r:?}");
            assert_eq!(r["reason"].as_str(), Some("book_resync"));
            assert_eq!(r["channel"].as_str(), Some("orderbook"));
            *book_gaps.entry(v.id.to_string()).or_default() += 1;
            continue;
        }
        assert_eq!(r["data_type"].as_str(), Some("orderbook"));
        let id = r["last_update_id"].as_u64().unwrap();
        // `depth_levels`: the levels in the record, bids + asks (MarketPrism's meaning).
        assert_eq!(
            r["depth_levels"].as_u64(),
            Some((levels(&r, "bids").len() + levels(&r, "asks").len()) as u64)
        );
        if inst == v.symbols[1] {
            // The previous id the last applied update carried: the id of
            // the update before it, where the venue sends one.
            let prev = r["prev_update_id"].as_u64();
            if has_prev_id(v.id) {
                match prev {
                    Some(p) => {
                        let ids = &sorted_ids[&v.id];
                        let before = ids[..ids.partition_point(|&x| x < id)].last();
                        assert_eq!(Some(&p), before, "{} {inst} @{id}", v.id);
                        *with_prev.entry(v.id.to_string()).or_default() += 1;
                    }
                    // Only a record of the snapshot itself has none.
                    None => *without_prev.entry(v.id.to_string()).or_default() += 1,
                }
            } else {
                assert_eq!(prev, None, "{} {inst} @{id}", v.id);
            }
            let (bids, asks) = truth[&(v.id, v.symbols[1])]
                .get(&id)
                .unwrap_or_else(|| panic!("{} {inst}: no true book with id {id}", v.id));
            assert_eq!(&levels(&r, "bids"), bids, "{} {inst} @{id}", v.id);
            assert_eq!(&levels(&r, "asks"), asks, "{} {inst} @{id}", v.id);
            *checked.entry(v.id.to_string()).or_default() += 1;
            // Untouched books only move forward.
            let prev = last_id.insert((v.id, inst.to_string()), id);
            assert!(
                prev.is_none_or(|p| p < id),
                "{} {inst}: {prev:?} then {id}",
                v.id
            );
        }
    }
    for v in &all {
        let key = v.id.to_string();
        let (with, without) = (
            with_prev.get(&key).copied().unwrap_or(0),
            without_prev.get(&key).copied().unwrap_or(0),
        );
        if has_prev_id(v.id) {
            assert!(
                without <= 1,
                "{key}: {without} records without prev_update_id"
            );
            assert_eq!(with + without, checked[&key], "{key}");
        }
    }
    for v in &all {
        let n = checked.get(&v.id.to_string()).copied().unwrap_or(0);
        assert!(
            n >= 20,
            "{}: only {n} records of {} checked",
            v.id,
            v.symbols[1]
        );
    }

    // Resyncs counted per venue; only the troubled symbol was resubscribed.
    let stats: sonic_rs::Value = sonic_rs::from_str(&stats).unwrap();
    for v in &all {
        let labels = [
            format!("exchange=\"{}\"", v.id.exchange()),
            format!("market_type=\"{}\"", v.id.market_type()),
        ];
        let filters: Vec<&str> = labels.iter().map(String::as_str).collect();
        let resyncs = metric_sum(
            &metrics,
            "marketprism_orderbook_resync_count_total",
            &filters,
        );
        assert!(
            resyncs >= v.resyncs as f64,
            "{}: {resyncs} resyncs, expected at least {}",
            v.id,
            v.resyncs
        );
        // One `gap` record per resync the WebSocket stream revealed.
        let gaps = book_gaps.get(&v.id.to_string()).copied().unwrap_or(0);
        assert!(
            gaps as f64 <= resyncs && gaps >= v.resyncs.min(1),
            "{}: {gaps} gap records for {resyncs} resyncs",
            v.id
        );
        let resub = &stats["venues"][v.id.config_key()]["resubscriptions"];
        assert!(
            resub[v.symbols[1]].as_u64().unwrap_or(0) == 0,
            "{}: {} was resubscribed: {stats:?}",
            v.id,
            v.symbols[1]
        );
    }
    let okx = ["exchange=\"okx\"", "market_type=\"spot\""];
    assert!(
        metric_sum(
            &metrics,
            "marketprism_orderbook_checksum_failures_total",
            &okx
        ) >= 1.0
    );
    assert!(metric_sum(&metrics, "marketprism_orderbook_gaps_total", &okx) >= 1.0);
}

/// A resync whose snapshot request is answered 429 waits the `Retry-After`,
/// asks once more and syncs; the rate limit is counted, and the venue saw no
/// retry storm (exactly one more depth request).
#[test]
fn rate_limited_snapshot_waits_and_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("tls/ca.pem");
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--time-base-ms",
            &TIME_BASE.to_string(),
            "--book-rate",
            "50",
            "--book-updates",
            "300",
        ],
    );
    let text = format!(
        "[engine]\ncores = [0]\nbatch_max_delay_ms = 10\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\nkind = \"file\"\npath = \"{data}\"\n[exchanges.binance_spot]\n\
         ws_url = \"wss://localhost:{port}\"\nrest_url = \"https://localhost:{port}\"\nca_file = \"{ca}\"\n\
         symbols = [\"BTCUSDT\", \"ETHUSDT\"]\ndata_types = [\"orderbook\"]\nbook_publish_interval_ms = 10\n",
        data = dir.path().join("data").display(),
        port = addr.port(),
        ca = ca.display(),
    );
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let (mut coll, maddr) = start_collector(&cfg);
    let data = dir.path().join("data");
    wait_until("books published", Duration::from_secs(30), || {
        let l = latest(&data);
        ["BTCUSDT", "ETHUSDT"]
            .iter()
            .all(|s| l.contains_key(&(venue_key(VenueId::BinanceSpot), s.to_string())))
    });
    let depth_requests = |stats: &str| -> u64 {
        let v: sonic_rs::Value = sonic_rs::from_str(stats).unwrap();
        v["venues"]["binance_spot"]["rest"]["/api/v3/depth"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = depth_requests(&https_get(addr, &ca, "/mock/stats"));
    assert_eq!(before, 2, "one snapshot per symbol at start");
    https_get(
        addr,
        &ca,
        "/mock/rest_fault?status=429&retry_after=2&count=1",
    );
    https_get(
        addr,
        &ca,
        "/mock/fault?venue=binance_spot&symbol=BTCUSDT&kind=gap",
    );
    let t0 = std::time::Instant::now();
    wait_until("rate limit seen", Duration::from_secs(10), || {
        let (_, m) = http_get(maddr, "/metrics");
        metric_sum(&m, "marketprism_rest_rate_limited_total", &[]) >= 1.0
    });
    // During Retry-After nothing more is asked of the venue.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(depth_requests(&https_get(addr, &ca, "/mock/stats")), before);
    wait_until("books final", Duration::from_secs(30), || {
        let l = latest(&data);
        ["BTCUSDT", "ETHUSDT"].iter().all(|s| {
            let m = mock_book(addr, &ca, VenueId::BinanceSpot, s);
            m["update_count"].as_u64() == Some(300)
                && l.get(&(venue_key(VenueId::BinanceSpot), s.to_string()))
                    .is_some_and(|r| {
                        r["last_update_id"].as_u64() == m["last_update_id"].as_u64()
                            && levels(r, "bids") == mock_levels(&m, "bids")
                            && levels(r, "asks") == mock_levels(&m, "asks")
                    })
        })
    });
    assert!(t0.elapsed() >= Duration::from_secs(2));
    // Exactly one more snapshot after the 429: no retry storm.
    assert_eq!(
        depth_requests(&https_get(addr, &ca, "/mock/stats")),
        before + 1
    );
    let (_, metrics) = http_get(maddr, "/metrics");
    assert_eq!(
        metric_sum(&metrics, "marketprism_rest_rate_limited_total", &[]),
        1.0
    );
    assert_eq!(
        metric_sum(&metrics, "marketprism_orderbook_resync_count_total", &[]),
        1.0
    );
    let status = coll.signal_and_wait(libc::SIGTERM, Duration::from_secs(20));
    assert!(status.success());
    drop(mock);
}

/// Books subscribed before their first update (the mock's on-demand feed:
/// the snapshot is at update 0, Bybit `u == 0`, so the first delta is
/// `u == 1`), at full speed: every venue's final book equals the true book.
/// Bybit once took that first delta for a service restart and lost the
/// levels no later delta touched.
#[test]
fn books_subscribed_from_their_first_update_stay_true() {
    // Few updates over deep books: most levels are never touched by a delta,
    // so a book rebuilt from a delta instead of the snapshot shows.
    const N: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("tls/ca.pem");
    let (_mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--book-rate",
            "0",
            "--book-updates",
            &N.to_string(),
            // The config's `snapshot_depth` (Binance REST snapshots).
            "--book-depth",
            "100",
        ],
    );
    let cfg = write_config(dir.path(), addr);
    let (mut collector, metrics) = start_collector(&cfg);
    let venues = book_venues();
    let data = dir.path().join("data");
    // Done when each book's record carries the mock's final id (Binance
    // drops the diffs its REST snapshot already holds, so counting applied
    // updates cannot tell).
    wait_until("final books published", Duration::from_secs(60), || {
        let l = latest(&data);
        venues.iter().all(|v| {
            v.symbols.iter().all(|s| {
                let m = mock_book(addr, &ca, v.id, s);
                l.get(&(venue_key(v.id), s.to_string()))
                    .is_some_and(|r| r["last_update_id"].as_u64() == mock_id(v.id, &m))
            })
        })
    });
    let l = latest(&data);
    for v in &venues {
        for s in v.symbols {
            let m = mock_book(addr, &ca, v.id, s);
            let r = &l[&(venue_key(v.id), s.to_string())];
            for side in ["bids", "asks"] {
                assert_eq!(
                    levels(r, side),
                    mock_levels(&m, side),
                    "{} {s} {side}",
                    v.id
                );
            }
        }
    }
    let m = http_get(metrics, "/metrics").1;
    assert_eq!(
        metric_sum(&m, "marketprism_orderbook_resync_count_total", &[]),
        0.0
    );
    let st = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert!(st.success());
    assert!(!read_records(&data).is_empty());
}

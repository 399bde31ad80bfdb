//! Steady state allocates nothing per message: 100 000+ Binance trade frames
//! go through parse → batch (arena) → encode → file write, and a counting
//! global allocator sees zero heap allocations on this thread after warm-up.

mod common;

use common::alloc::allocs;
use marketprism::config::plan::FileSinkPlan;
use marketprism::config::WriteMode;
use marketprism::engine::pipeline::{Frame, FrameSource, Pipeline};
use marketprism::metrics::CoreStats;
use marketprism::mock::binance::trade_frames;
use marketprism::model::{DataType, VenueId};
use marketprism::sink::spill::Spill;
use marketprism::sink::{MessageSink, Overflow};
use marketprism::venue::{FrameOutcome, InstrumentMap};
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

const SYMBOLS: [(&str, &str, &str); 4] = [
    ("BTCUSDT", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("BNBUSDT", "BNB", "USDT"),
    ("ETHBTC", "ETH", "BTC"),
];

fn frames(n: u64) -> Vec<String> {
    trade_frames(&SYMBOLS, n, 1_700_000_000_000)
}

#[test]
fn no_heap_allocation_per_message_in_steady_state() {
    steady_state(WriteMode::Inline, false);
}

/// With a message sink too: subject, id and payload built in reused buffers,
/// and the per-subject published counts (MarketPrism's series) kept.
#[test]
fn no_heap_allocation_per_message_with_a_message_sink() {
    steady_state(WriteMode::Inline, true);
}

/// A message sink that takes everything and keeps a count.
struct Taker(std::cell::Cell<u64>);

impl MessageSink for Taker {
    fn try_send(&self, _subject: &str, _msg_id: &str, _payload: &[u8]) -> bool {
        self.0.set(self.0.get() + 1);
        true
    }
}

/// The same with the default `sink.write_mode = "offload"` (each write
/// waited for before the next flush, so the buffers' sizes are settled).
#[test]
fn no_heap_allocation_per_message_in_steady_state_with_offloaded_writes() {
    steady_state(WriteMode::Offload, false);
}

fn steady_state(write_mode: WriteMode, with_net: bool) {
    const WARMUP: usize = 30_000;
    const MEASURED: usize = 120_000;
    let all = frames((WARMUP + MEASURED) as u64);
    let dir = tempfile::tempdir().unwrap();
    let plan = FileSinkPlan {
        path: dir.path().to_path_buf(),
        rotate_max_bytes: 1 << 40,
        rotate_interval: Duration::from_secs(86_400),
        write_mode,
        io_worker_cpus: Vec::new(),
        io_worker_cpus_configured: None,
    };
    let mut map = InstrumentMap::default();
    for (s, b, q) in SYMBOLS {
        map.insert(s, b, q, true);
    }
    let stats = Arc::new(CoreStats::new(0, 0));
    let mut p = Pipeline::new(0, 4096, &plan, vec![map], stats.clone()).unwrap();
    let taker = std::rc::Rc::new(Taker(std::cell::Cell::new(0)));
    if with_net {
        let spill = Spill::open(&dir.path().join("spill"), 1 << 20, 1 << 16).unwrap();
        p = p.with_message_sink(Overflow::new(taker.clone(), spill));
    }

    let mut conn = marketprism::engine::pipeline::ConnState::default();
    // The read loop's one call per frame.
    let src = FrameSource {
        conn_id: 0,
        venue: VenueId::BinanceSpot,
        conn_type: Some(DataType::Trade),
    };
    let mut feed = |p: &mut Pipeline, frames: &[String]| {
        for (i, f) in frames.iter().enumerate() {
            let out = p
                .on_frame(
                    &src,
                    Frame::Text(f),
                    1_700_000_000_000_000_000 + i as u64,
                    &mut conn,
                )
                .outcome;
            assert_eq!(out, FrameOutcome::Records(1));
            if p.is_full() {
                p.flush(1_700_000_000_000_000_000 + i as u64);
                while p.sink_in_flight() {
                    p.reap_sink(1_700_000_000_000_000_000 + i as u64);
                }
            }
        }
    };
    feed(&mut p, &all[..WARMUP]);
    let before = allocs();
    feed(&mut p, &all[WARMUP..]);
    let during = allocs() - before;
    p.close().unwrap();

    let v = stats.venue(VenueId::BinanceSpot);
    assert_eq!(
        v.parsed[DataType::Trade.index()].get(),
        (WARMUP + MEASURED) as u64
    );
    assert_eq!(
        v.written[DataType::Trade.index()].get(),
        (WARMUP + MEASURED) as u64
    );
    assert!(stats.batches_flushed.get() >= (MEASURED / 4096) as u64);
    if with_net {
        let all = (WARMUP + MEASURED) as u64;
        assert_eq!(taker.0.get(), all);
        let per_subject: Vec<(&str, u64)> = stats.subjects.iter().collect();
        assert_eq!(per_subject.len(), SYMBOLS.len(), "{per_subject:?}");
        assert_eq!(per_subject.iter().map(|s| s.1).sum::<u64>(), all);
    }
    assert_eq!(
        during,
        0,
        "{during} heap allocations over {MEASURED} messages ({} per message)",
        during as f64 / MEASURED as f64
    );
    // Every record reached the file.
    let mut lines = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            continue; // the spill
        }
        lines += std::fs::read_to_string(e.path()).unwrap().lines().count();
    }
    assert_eq!(lines, WARMUP + MEASURED);
}

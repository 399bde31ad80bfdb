//! Micro-benchmarks of the message path, printed as ns/msg and allocs/msg:
//! Binance trade frame → record (parse + decimals + arena), record → JSON
//! line, the whole pipeline (parse → batch → encode → file write), and
//! rust_decimal parsing alone. Run: `cargo bench --bench parse`.

use marketprism::batch::{Batch, Record};
use marketprism::config::plan::FileSinkPlan;
use marketprism::engine::pipeline::Pipeline;
use marketprism::metrics::CoreStats;
use marketprism::mock::binance::{trade, trade_frames};
use marketprism::model::{DataType, VenueId};
use marketprism::sink::encode::encode_record;
use marketprism::venue::{binance, FrameOutcome, InstrumentMap};
use rust_decimal::Decimal;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let a0 = ALLOCS.load(Relaxed);
    for _ in 0..rounds {
        let t = Instant::now();
        f(frames);
        best = best.min(t.elapsed());
    }
    let allocs = (ALLOCS.load(Relaxed) - a0) as f64 / (rounds * frames.len()) as f64;
    let ns = best.as_nanos() as f64 / frames.len() as f64;
    println!(
        "{name:<44} {ns:>8.1} ns/msg {:>10.0} msg/s {allocs:>8.4} allocs/msg",
        1e9 / ns
    );
}

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
                let out = binance::wire::on_text(f, 1, &map, &mut batch);
                debug_assert!(matches!(out, FrameOutcome::Records(..)));
                black_box(out);
                if batch.len() >= 4096 {
                    batch.reset();
                }
            }
            batch.reset();
        },
    );

    let mut batch = Batch::new(4096, 4096 * 192);
    for f in frames.iter().take(4096) {
        binance::wire::on_text(f, 1, &map, &mut batch);
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
    drop(recs);

    let dir = tempfile::tempdir().unwrap();
    let plan = FileSinkPlan {
        path: dir.path().to_path_buf(),
        rotate_max_bytes: 1 << 40,
        rotate_interval: Duration::from_secs(86_400),
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
                black_box(p.on_text(VenueId::BinanceSpot, Some(DataType::Trade), f, 1, &mut conn));
                if p.is_full() {
                    p.flush(1);
                }
            }
            p.flush(1);
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
}

//! Order-book engine micro-benchmarks, printed as ns/op and allocs/op:
//! an update applied to a 400-level book (USDⓈ-M rule: `pu` checked, crossed
//! check, no publish; also per level change, with the mix printed), a top-400
//! `orderbook` record pushed into a batch, and the OKX checksum. Run:
//! `cargo bench --bench book`.

use marketprism::batch::{Batch, Level};
use marketprism::book::{BookConfig, BookMsg, Books, OrderBook};
use marketprism::model::VenueId;
use marketprism::venue::okx::checksum::okx_checksum;
use rust_decimal::Decimal;
use std::hint::black_box;
use std::time::Instant;

// The tests' counting allocator: per thread, and the benches measure on one.
#[path = "../tests/common/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const V: VenueId = VenueId::BinanceDerivatives;
const LEVELS: i64 = 400;
/// Mid price in ticks of 0.1 (tick 0.1, 4 decimals of quantity).
const MID: i64 = 300_000;

fn px(ticks: i64) -> Decimal {
    Decimal::new(ticks, 1)
}

fn qty(rng: &mut fastrand::Rng) -> Decimal {
    Decimal::new(rng.i64(1..5_000_000), 4)
}

/// 400 levels a side around MID, one tick apart.
fn snapshot(rng: &mut fastrand::Rng) -> BookMsg {
    let mut m = BookMsg {
        raw_symbol: "BTCUSDT".into(),
        snapshot: true,
        first_id: 1000,
        last_id: 1000,
        ..Default::default()
    };
    for i in 0..LEVELS {
        m.bids.push(Level::new(px(MID - 1 - i), qty(rng)));
        m.asks.push(Level::new(px(MID + 1 + i), qty(rng)));
    }
    m
}

/// Ticks from the top of a changed level: most changes are near the best
/// price, some deeper (80 % within 20 ticks, 15 % within 100, 5 % to 400).
fn depth(rng: &mut fastrand::Rng) -> i64 {
    match rng.u8(0..100) {
        0..=79 => rng.i64(0..20),
        80..=94 => rng.i64(20..100),
        _ => rng.i64(100..LEVELS),
    }
}

/// Realistic diffs: 1–4 levels a side, 20 % deletes (re-filled later by
/// inserts), never crossing.
fn diffs(rng: &mut fastrand::Rng, n: usize) -> Vec<BookMsg> {
    (0..n)
        .map(|_| {
            let mut m = BookMsg {
                raw_symbol: "BTCUSDT".into(),
                ..Default::default()
            };
            for _ in 0..rng.usize(1..=4) {
                let q = if rng.u8(0..5) == 0 {
                    Decimal::ZERO
                } else {
                    qty(rng)
                };
                m.bids.push(Level::new(px(MID - 1 - depth(rng)), q));
            }
            for _ in 0..rng.usize(1..=4) {
                let q = if rng.u8(0..5) == 0 {
                    Decimal::ZERO
                } else {
                    qty(rng)
                };
                m.asks.push(Level::new(px(MID + 1 + depth(rng)), q));
            }
            m
        })
        .collect()
}

/// Level changes of `msgs` applied to `book` (a copy), by kind: updates of
/// an existing level, inserts, deletes, and deletes of absent levels.
fn mix(book: &OrderBook, msgs: &[BookMsg]) -> [u64; 4] {
    let mut b = book.clone();
    let mut k = [0u64; 4];
    for m in msgs {
        for (side, levels) in [(b.bids(), &m.bids), (b.asks(), &m.asks)] {
            for l in levels {
                let present = side.as_worst_first().iter().any(|x| x.price == l.price);
                let i = match (present, l.quantity.is_zero()) {
                    (true, false) => 0,
                    (false, false) => 1,
                    (true, true) => 2,
                    (false, true) => 3,
                };
                k[i] += 1;
            }
        }
        b.apply(&m.bids, &m.asks, 0);
    }
    k
}

fn synced_books(cfg: BookConfig, rng: &mut fastrand::Rng, batch: &mut Batch) -> Books {
    let mut books = Books::new(marketprism::venue::book_rule, &[(V, cfg)]);
    books.register(V, "BTCUSDT", "BTC-USDT");
    let mut first = BookMsg {
        raw_symbol: "BTCUSDT".into(),
        first_id: 990,
        last_id: 1000,
        prev_id: Some(980),
        ..Default::default()
    };
    books.on_ws(V, &first, 0, batch);
    books.on_rest_snapshot(V, &snapshot(rng), 0, batch);
    first.clear();
    assert!(books.is_synced(V, "BTCUSDT"));
    books
}

fn report(name: &str, n: u64, t: Instant, allocs: u64) {
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{name:<44} {ns:>9.1} ns/op  {:>6.3} allocs/op  ({n} ops)",
        allocs as f64 / n as f64
    );
}

fn bench_updates(n: u64) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut batch = Batch::new(1024, 1 << 20);
    let cfg = BookConfig {
        depth: 400,
        publish_interval_ns: u64::MAX,
        deltas: false,
    };
    let mut books = synced_books(cfg, &mut rng, &mut batch);
    let mut msgs = diffs(&mut rng, 4096);
    let mut last = 1000u64;
    let mut step = |books: &mut Books, m: &mut BookMsg, batch: &mut Batch| {
        m.first_id = last + 1;
        m.prev_id = Some(last as i64);
        last += 3;
        m.last_id = last;
        black_box(books.on_ws(V, m, last, batch));
    };
    // Warm-up: the book reaches its steady size and capacity.
    for i in 0..100_000 {
        step(&mut books, &mut msgs[i % 4096], &mut batch);
    }
    let kinds = mix(books.book(V, "BTCUSDT").unwrap(), &msgs);
    let per_cycle: u64 = msgs
        .iter()
        .map(|m| (m.bids.len() + m.asks.len()) as u64)
        .sum();
    let changes: u64 = (0..n as usize)
        .map(|i| (msgs[i % 4096].bids.len() + msgs[i % 4096].asks.len()) as u64)
        .sum();
    let a0 = alloc::allocs();
    let t = Instant::now();
    for i in 0..n as usize {
        step(&mut books, &mut msgs[i % 4096], &mut batch);
    }
    let el = t.elapsed();
    report(
        "update applied, 400-level book (Books::on_ws)",
        n,
        t,
        alloc::allocs() - a0,
    );
    println!(
        "{:<44} {:>9.1} ns/op  ({} level changes: {:.1} % updates, {:.1} % inserts, {:.1} % deletes, {:.1} % deletes of absent levels)",
        "  per level change",
        el.as_nanos() as f64 / changes as f64,
        changes,
        kinds[0] as f64 * 100.0 / per_cycle as f64,
        kinds[1] as f64 * 100.0 / per_cycle as f64,
        kinds[2] as f64 * 100.0 / per_cycle as f64,
        kinds[3] as f64 * 100.0 / per_cycle as f64,
    );
    // The structure alone.
    let mut book = OrderBook::new();
    let snap = snapshot(&mut rng);
    book.load(&snap.bids, &snap.asks, 0);
    let t = Instant::now();
    let a0 = alloc::allocs();
    for i in 0..n as usize {
        let m = &msgs[i % 4096];
        black_box(book.apply(&m.bids, &m.asks, i as u64));
    }
    let el = t.elapsed();
    report(
        "update applied, OrderBook::apply alone",
        n,
        t,
        alloc::allocs() - a0,
    );
    println!(
        "{:<44} {:>9.1} ns/op",
        "  per level change",
        el.as_nanos() as f64 / changes as f64
    );
}

fn bench_publish(n: u64) {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut batch = Batch::new(1024, 8 << 20);
    let mut books = synced_books(BookConfig::default(), &mut rng, &mut batch);
    batch.reset();
    // Warm-up sizes the arena.
    for _ in 0..200 {
        books.publish_now(V, "BTCUSDT", &mut batch);
    }
    batch.reset();
    let a0 = alloc::allocs();
    let t = Instant::now();
    for _ in 0..n {
        books.publish_now(V, "BTCUSDT", &mut batch);
        // 32 records (820 KB): the e2e book run's arena high water (790 KB).
        if batch.len() == 32 {
            batch.reset();
        }
    }
    report(
        "orderbook record, top 400 a side, into Batch",
        n,
        t,
        alloc::allocs() - a0,
    );
}

fn bench_checksum(n: u64) {
    let mut rng = fastrand::Rng::with_seed(13);
    let mut book = OrderBook::new();
    let snap = snapshot(&mut rng);
    book.load(&snap.bids, &snap.asks, 0);
    let a0 = alloc::allocs();
    let t = Instant::now();
    let mut x = 0i32;
    for _ in 0..n {
        x ^= okx_checksum(black_box(&book));
    }
    black_box(x);
    report(
        "OKX checksum (top 25 a side, CRC32)",
        n,
        t,
        alloc::allocs() - a0,
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let k = if quick { 10 } else { 1 };
    bench_updates(2_000_000 / k);
    bench_publish(200_000 / k);
    bench_checksum(200_000 / k);
}

//! End-to-end loopback benchmark: the mock exchange (pinned to CPU 1) streams
//! Binance spot trades over TLS as fast as it can; the collector runs on one
//! core (CPU 0) and writes JSON Lines files. Prints messages/s on the
//! collector core, receive→written latency quantiles, and CPU per 100 000
//! messages for both processes. Run: `cargo bench --bench e2e`.
//!
//! A second scenario streams order-book diffs (OKX `books`, 400-level books,
//! spot and swap) and reports book updates applied per second on the core,
//! with the final books checked against the mock's true books.
//!
//! Environment: `E2E_TRADES` (per symbol, default 400000), `E2E_SYMBOLS`
//! (default 5), `E2E_BATCH_DELAY_MS` (default 20), `E2E_DATA_DIR` (where the
//! files go; default /dev/shm), `E2E_BOOK_UPDATES` (per book, default 100000),
//! `E2E_BOOKS_ONLY` (skip the trade scenario), `E2E_SPIN_US` (the collector's
//! `engine.spin_before_park_us`, default 0).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::time::{Duration, Instant};

struct Outcome {
    rate: f64,
    span: f64,
    wall: f64,
    cpu_c: f64,
    cpu_m: f64,
    metrics: String,
}

/// One run: a fresh mock and collector. `discard` = receive-only (frames
/// counted, not parsed): the ceiling of the same TLS + WebSocket path.
fn run(syms: &[&str], per_symbol: u64, delay_ms: u64, discard: bool) -> Outcome {
    let total = per_symbol * syms.len() as u64;
    // Output on tmpfs by default: this measures the collector, not the
    // machine's disk (a VM disk throttles page-cache writeback at ~100 MB/s,
    // which stalls write(2) for hundreds of ms). E2E_DATA_DIR overrides it.
    let base = std::env::var("E2E_DATA_DIR").unwrap_or_else(|_| {
        if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir().display().to_string()
        }
    });
    let dir = tempfile::tempdir_in(&base).unwrap();
    let tls = dir.path().join("tls");
    let n = per_symbol.to_string();
    let (mock, addr) = start_mock(
        &tls,
        &["--trades-per-symbol", &n, "--rate", "0", "--core", "1"],
    );
    let quoted: Vec<String> = syms.iter().map(|s| format!("\"{s}\"")).collect();
    let cfg = dir.path().join("bench.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores = [0]\nbatch_max_events = 4096\nbatch_max_delay_ms = {delay_ms}\ndiscard_frames = {discard}\nspin_before_park_us = {spin}\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[sink]\npath = \"{}\"\n\
             [exchanges.binance_spot]\nws_url = \"wss://localhost:{}\"\nrest_url = \"https://localhost:{}\"\n\
             symbols = [{}]\ndata_types = [\"trade\"]\nca_file = \"{}\"\n",
            dir.path().join("data").display(),
            addr.port(),
            addr.port(),
            quoted.join(", "),
            tls.join("ca.pem").display(),
            spin = env_u64("E2E_SPIN_US", 0),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let (mut collector, metrics) = start_collector(&cfg);
    let cpu0_c = cpu_seconds(collector.child.id());
    let cpu0_m = cpu_seconds(mock.child.id());
    let family = if discard {
        "marketprism_messages_received_total"
    } else {
        "marketprism_messages_written_total"
    };
    let mut last;
    let mut first_seen: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        last = http_get(metrics, "/metrics").1;
        let n = metric_sum(&last, family, &[]) as u64;
        if n > 0 && first_seen.is_none() {
            first_seen = Some(Instant::now());
        }
        if n >= total {
            break;
        }
        assert!(Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
    let done = Instant::now();
    let wall = started.elapsed().as_secs_f64();
    let cpu_c = cpu_seconds(collector.child.id()) - cpu0_c;
    let cpu_m = cpu_seconds(mock.child.id()) - cpu0_m;
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    let span = if discard {
        (done - first_seen.unwrap_or(done)).as_secs_f64().max(1e-9)
    } else {
        receive_span(&dir.path().join("data"), total)
    };
    Outcome {
        rate: total as f64 / span,
        span,
        wall,
        cpu_c,
        cpu_m,
        metrics: last,
    }
}

/// First → last `receive_ts_ns` over all written records (seconds), checking
/// that exactly `total` were written.
fn receive_span(data: &std::path::Path, total: u64) -> f64 {
    let mut first = u64::MAX;
    let mut lastr = 0u64;
    let mut count = 0u64;
    for e in std::fs::read_dir(data).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            let i = line.find("\"receive_ts_ns\":").unwrap() + 16;
            let v: u64 = line[i..].split([',', '}']).next().unwrap().parse().unwrap();
            first = first.min(v);
            lastr = lastr.max(v);
            count += 1;
        }
    }
    assert_eq!(count, total, "every trade written exactly once");
    (lastr - first) as f64 / 1e9
}

fn quantile(metrics: &str, want: f64) -> String {
    quantile_of(
        metrics,
        "marketprism_receive_to_written_seconds",
        want,
        1e3,
        "ms",
    )
}

/// RSS of the collector with `n` streams (symbols × trade) at a low rate,
/// after a few seconds, and its growth over the last seconds of the run.
fn rss_at(n: usize) -> (f64, f64) {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let syms: Vec<String> = (0..n).map(|i| format!("S{i}USDT")).collect();
    let mock_syms: Vec<String> = syms
        .iter()
        .map(|s| format!("{s}:{}:USDT", &s[..s.len() - 4]))
        .collect();
    let list = mock_syms.join(",");
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--symbols", &list, "--rate", "5", "--core", "1"],
    );
    let quoted: Vec<String> = syms.iter().map(|s| format!("\"{s}\"")).collect();
    let cfg = dir.path().join("rss.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores = [0]\n[http]\nlisten = \"127.0.0.1:0\"\n[sink]\npath = \"{}\"\n\
             [exchanges.binance_spot]\nws_url = \"wss://localhost:{p}\"\nrest_url = \"https://localhost:{p}\"\n\
             symbols = [{}]\ndata_types = [\"trade\"]\nca_file = \"{}\"\n",
            dir.path().join("data").display(),
            quoted.join(", "),
            tls_ca(&dir),
            p = addr.port()
        ),
    )
    .unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    let rss = || {
        metric_sum(
            &http_get(metrics, "/metrics").1,
            "marketprism_process_rss_bytes",
            &[],
        ) / 1e6
    };
    std::thread::sleep(Duration::from_secs(3));
    let early = rss();
    std::thread::sleep(Duration::from_secs(4));
    let late = rss();
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
            .code(),
        Some(0)
    );
    drop(mock);
    (late, late - early)
}

/// Book scenario: the mock floods `updates` diffs per book on OKX's four
/// instruments (400 levels per side, checksum 0 as OKX sends since 2026-06);
/// the collector keeps the books on one core and publishes them throttled.
fn books(updates: u64) {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let tls = dir.path().join("tls");
    let (mock, addr) = start_mock(
        &tls,
        &[
            "--book-rate",
            "0",
            "--book-updates",
            &updates.to_string(),
            "--book-depth",
            "400",
            "--okx-checksum",
            "zero",
            "--core",
            "1",
        ],
    );
    let cfg = dir.path().join("books.toml");
    let venue = |key: &str, syms: &str| {
        format!(
            "[exchanges.{key}]\nws_url = \"wss://localhost:{p}/ws/v5/public\"\nrest_url = \"https://localhost:{p}\"\n\
             ca_file = \"{ca}\"\nsymbols = [{syms}]\ndata_types = [\"orderbook\"]\n",
            p = addr.port(),
            ca = tls_ca(&dir),
        )
    };
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores = [0]\n[http]\nlisten = \"127.0.0.1:0\"\n[sink]\npath = \"{}\"\n{}{}",
            dir.path().join("data").display(),
            venue("okx_spot", "\"BTC-USDT\", \"ETH-USDT\""),
            venue("okx_derivatives", "\"BTC-USDT-SWAP\", \"ETH-USDT-SWAP\""),
        ),
    )
    .unwrap();
    let total = updates * 4;
    let (mut collector, metrics) = start_collector(&cfg);
    let cpu0 = cpu_seconds(collector.child.id());
    let mut first: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(600);
    let m = loop {
        let m = http_get(metrics, "/metrics").1;
        let n = metric_sum(&m, "marketprism_orderbook_updates_total", &[]) as u64;
        if n > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if n >= total {
            break m;
        }
        assert!(Instant::now() < end, "timed out at {n} of {total} updates");
        std::thread::sleep(Duration::from_millis(5));
    };
    let span = first.map_or(1e-9, |f| f.elapsed().as_secs_f64());
    let cpu = cpu_seconds(collector.child.id()) - cpu0;
    // The work measured must be right: every final book equals the true book.
    std::thread::sleep(Duration::from_millis(300));
    let ca = dir.path().join("tls/ca.pem");
    for (v, s) in [
        ("okx_spot", "BTC-USDT"),
        ("okx_spot", "ETH-USDT"),
        ("okx_derivatives", "BTC-USDT-SWAP"),
        ("okx_derivatives", "ETH-USDT-SWAP"),
    ] {
        let body = https_get(addr, &ca, &format!("/mock/book?venue={v}&symbol={s}"));
        let want: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
        let id = sonic_rs::JsonValueTrait::as_u64(&want["last_update_id"]);
        let last = read_records(&dir.path().join("data"))
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| sonic_rs::JsonValueTrait::as_str(&r["instrument_id"]) == Some(s))
            .max_by_key(|r| sonic_rs::JsonValueTrait::as_u64(&r["last_update_id"]));
        let got = last.map(|r| sonic_rs::JsonValueTrait::as_u64(&r["last_update_id"]));
        assert_eq!(got, Some(id), "{v} {s}: final book not published");
    }
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    println!("books: mock (cpu 1) → TLS → collector (1 core, cpu 0); OKX books, 4 × 400-level books, {updates} diffs each");
    println!(
        "  book updates applied  {:>9.0} /s on one core ({total} in {span:.2} s); collector CPU {:.1} ms per 100k updates (busy {:.0}%)",
        total as f64 / span,
        cpu / total as f64 * 1e5 * 1e3,
        (cpu / span * 100.0).min(100.0)
    );
    println!(
        "  orderbook records     {} published (top 400, at most one per book per 100 ms); resyncs {}",
        metric_sum(&m, "marketprism_orderbook_published_total", &[]),
        metric_sum(&m, "marketprism_orderbook_resync_count_total", &[])
    );
    println!(
        "  heap allocations      {:.4} per update over the whole run (incl. start-up)",
        metric_sum(&m, "marketprism_heap_allocations_total", &[]) / total as f64
    );
}

fn tls_ca(dir: &tempfile::TempDir) -> String {
    dir.path().join("tls").join("ca.pem").display().to_string()
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    books(env_u64("E2E_BOOK_UPDATES", 100_000));
    if std::env::var("E2E_BOOKS_ONLY").is_ok() {
        return;
    }
    let per_symbol = env_u64("E2E_TRADES", 400_000);
    let nsym = env_u64("E2E_SYMBOLS", 5).min(12) as usize;
    let delay_ms = env_u64("E2E_BATCH_DELAY_MS", 20);
    let names = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "ETHBTC",
        "BNBBTC", "LTCBTC", "BTCFDUSD", "BTCEUR",
    ];
    let syms: Vec<&str> = names[..nsym].to_vec();
    let total = per_symbol * nsym as u64;

    let ceiling = run(&syms, per_symbol, delay_ms, true);
    let full = run(&syms, per_symbol, delay_ms, false);
    let per100k = |cpu: f64| cpu / total as f64 * 1e5 * 1e3;
    println!(
        "e2e: mock (cpu 1) → TLS → collector (1 core, cpu 0) → files in {}; {nsym} symbols x {per_symbol} trades = {total}",
        std::env::var("E2E_DATA_DIR").unwrap_or_else(|_| "/dev/shm".into())
    );
    println!(
        "  receive-only ceiling  {:>9.0} msg/s ({:.2} s; collector CPU {:.1} ms/100k msgs, mock {:.1})",
        ceiling.rate,
        ceiling.span,
        per100k(ceiling.cpu_c),
        per100k(ceiling.cpu_m)
    );
    println!(
        "  end to end to files   {:>9.0} msg/s ({:.2} s first→last receive; wall incl. start {:.2} s)",
        full.rate, full.span, full.wall
    );
    println!(
        "  ratio                 {:.0} % of the ceiling",
        full.rate / ceiling.rate * 100.0
    );
    println!(
        "  CPU per 100k msgs     collector {:.1} ms, mock {:.1} ms (collector busy {:.0}% of the span)",
        per100k(full.cpu_c),
        per100k(full.cpu_m),
        (full.cpu_c / full.span * 100.0).min(100.0)
    );
    println!(
        "  receive→written       p50 {}  p99 {}  p99.9 {}  (batch_max_delay_ms = {delay_ms}, batch 4096)",
        quantile(&full.metrics, 0.5),
        quantile(&full.metrics, 0.99),
        quantile(&full.metrics, 0.999)
    );
    println!(
        "  receive→parsed        p50 {}  p99 {}  p99.9 {}",
        quantile_of(
            &full.metrics,
            "marketprism_receive_to_parsed_seconds",
            0.5,
            1e6,
            "µs"
        ),
        quantile_of(
            &full.metrics,
            "marketprism_receive_to_parsed_seconds",
            0.99,
            1e6,
            "µs"
        ),
        quantile_of(
            &full.metrics,
            "marketprism_receive_to_parsed_seconds",
            0.999,
            1e6,
            "µs"
        )
    );
    println!(
        "  heap allocations      {:.4} per message over the whole run (incl. start-up; rustls allocates one buffer per TLS record)",
        metric_sum(&full.metrics, "marketprism_heap_allocations_total", &[]) / total as f64
    );
    println!(
        "  arena high water      {} bytes; RSS {:.1} MB",
        metric_sum(&full.metrics, "marketprism_arena_high_water_bytes", &[]),
        metric_sum(&full.metrics, "marketprism_process_rss_bytes", &[]) / 1e6
    );
    if std::env::var("E2E_SKIP_RSS").is_err() {
        for n in [10, 100, 1000] {
            let (rss, growth) = rss_at(n);
            println!(
                "  RSS with {n:>4} streams {rss:.1} MB (growth over the last 4 s: {growth:+.2} MB)"
            );
        }
    }
}

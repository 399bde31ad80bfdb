//! End-to-end loopback benchmarks: the mock exchange (pinned to CPU 1) feeds
//! the collector (one core, CPU 0) over TLS; the collector writes JSON Lines
//! files. Run: `cargo bench --bench e2e` (every scenario, in this order):
//!
//! 1. **books**: OKX `books` diffs on many 400-level books (spot and swap,
//!    checksum 0 as OKX sends since 2026-06) as fast as the collector takes
//!    them; book updates applied per second on the core; every final book is
//!    checked level by level against the mock's true book (`/mock/book`).
//! 2. **mix**: trades and book diffs of all seven venues at once (Binance
//!    spot and USDⓈ-M, OKX spot and swap, Bybit spot and linear, Deribit),
//!    two symbols each, into one core; messages/s against the receive-only
//!    ceiling of the same mix (`engine.discard_frames = true`), latency,
//!    allocations and CPU per 100 000 messages; every trade written exactly
//!    once per stream and every book equal to the true book.
//! 3. **trades**: Binance spot trades, with the receive-only ceiling, and
//!    RSS at 10 / 100 / 1000 streams.
//! 4. **spin**: Binance spot trades paced at a low rate; receive→parsed and
//!    receive→written quantiles, the collector's CPU share and the round
//!    trip of the mock's WebSocket pings (ping sent → pong read, measured by
//!    the mock: it includes the collector's wake-up, which the collector's
//!    own histograms start after) with `engine.spin_before_park_us` 0 and the
//!    values given.
//! 5. **idle**: connected, no traffic: the collector core's CPU per second
//!    and wake-ups per second (`benches/e2e_idle/mod.rs`).
//! 6. **latency**: four Binance spot streams paced at everyday rates, receive
//!    latency per frame (mock send stamp → `receive_ts_ns`) and process CPU
//!    per frame, beside a bare TLS + WebSocket receiver, parked and spinning
//!    (`benches/e2e_latency/`).
//!
//! Environment:
//! - books: `E2E_BOOK_SYMBOLS` (books, default 40: the four OKX instruments
//!   plus `X001-USDT`, `X001-USDT-SWAP`, ... listed by the mock's
//!   `--okx-extra-pairs`), `E2E_BOOK_UPDATES` (per book, default 25000),
//!   `E2E_BOOK_PUBLISH_MS` (`book_publish_interval_ms`, default the config's).
//! - mix: `E2E_MIX_TRADES` (trades per stream, default 50000),
//!   `E2E_MIX_BOOK_UPDATES` (diffs per book, default 20000),
//!   `E2E_BOOK_PUBLISH_MS` (as for books).
//! - trades: `E2E_TRADES` (per symbol, default 400000), `E2E_SYMBOLS`
//!   (default 5), `E2E_SKIP_RSS` (skip the RSS runs), `E2E_PAIRS` (ceiling
//!   and end-to-end runs, default 1: with more, each pair is printed, the
//!   order alternates, and the pair with the median ratio is detailed).
//! - spin: `E2E_SPIN_RATE` (trades/s over two symbols, default 2000),
//!   `E2E_SPIN_S` (measured seconds per setting, default 10, after 2 s of
//!   warm-up), `E2E_SPIN_VALUES` (comma-separated µs, default `0,50,100`),
//!   `E2E_SPIN_PING_MS` (the mock's ping interval, default 5).
//! - all: `E2E_BATCH_DELAY_MS` (default 20), `E2E_BATCH_EVENTS` (the
//!   collector's `batch_max_events`, default 4096), `E2E_DATA_DIR` (where the files
//!   go; default /dev/shm), `E2E_WRITE_MODE` (`sink.write_mode`: `inline`,
//!   `offload` (default: kernel io_uring workers copy into the page cache
//!   on the CPUs the collector's core leaves free) or `direct`: put
//!   `E2E_DATA_DIR` on a real device), `E2E_SPIN_US` (the collector's
//!   `engine.spin_before_park_us` in the other scenarios, default 0),
//!   `E2E_POLL_US` (the collector's `engine.poll_before_park_us`; unset:
//!   the build's default).
//! - idle: `E2E_IDLE_S` (measured seconds, default 20).
//! - latency: `E2E_LAT_RATES` (frames/s over the four streams, default
//!   `1000,20000`), `E2E_LAT_S` (measured seconds per run, default 5),
//!   `E2E_LAT_SPIN_US` (the collector's `spin_before_park_us` when spinning,
//!   default 10000), `E2E_LAT_FULL_TRADES` (per stream, full-speed run,
//!   default 250000), `E2E_LAT_SIDE` (instead: the bare receiver and the
//!   collector parking through glommio and waiting in `ppoll`, side by side
//!   on one mock, CPU per frame; `e2e_latency/side.rs`; with
//!   `E2E_SIDE_BASE=<binary>`, that build and this one, both in `ppoll`).
//! - selection: `E2E_BOOKS_ONLY`, `E2E_MIX_ONLY`, `E2E_TRADES_ONLY`,
//!   `E2E_SPIN_ONLY`, `E2E_IDLE_ONLY`, `E2E_LATENCY_ONLY` (any set: only
//!   those scenarios run).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "e2e_idle/mod.rs"]
mod idle;
#[path = "e2e_latency/mod.rs"]
mod latency;

use common::*;
use marketprism::model::VenueId;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Outcome {
    rate: f64,
    span: f64,
    wall: f64,
    cpu_c: f64,
    /// The collector's shard thread alone (`cpu_c` includes the kernel's
    /// io_uring workers that copy its output in offload mode).
    cpu_core: f64,
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
    let base = data_base();
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
            "[engine]\ncores = [0]\nbatch_max_events = {batch}\nbatch_max_delay_ms = {delay_ms}\ndiscard_frames = {discard}\nspin_before_park_us = {spin}\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[sink]\npath = \"{}\"\nwrite_mode = \"{mode}\"\n\
             [exchanges.binance_spot]\nws_url = \"wss://localhost:{}\"\nrest_url = \"https://localhost:{}\"\n\
             symbols = [{}]\ndata_types = [\"trade\"]\nca_file = \"{}\"\n",
            dir.path().join("data").display(),
            addr.port(),
            addr.port(),
            quoted.join(", "),
            tls.join("ca.pem").display(),
            spin = env_u64("E2E_SPIN_US", 0),
            batch = env_u64("E2E_BATCH_EVENTS", 4096),
            mode = write_mode(),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let (mut collector, metrics) = start_collector(&cfg);
    let cpu0_c = cpu_seconds(collector.child.id());
    let cpu0_core = core_thread_seconds(collector.child.id());
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
    let cpu_core = core_thread_seconds(collector.child.id()) - cpu0_core;
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
        cpu_core,
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

/// Where output files go: tmpfs unless `E2E_DATA_DIR` says otherwise.
fn data_base() -> String {
    std::env::var("E2E_DATA_DIR").unwrap_or_else(|_| {
        if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir().display().to_string()
        }
    })
}

fn tls_ca(dir: &tempfile::TempDir) -> String {
    dir.path().join("tls").join("ca.pem").display().to_string()
}

/// `[engine]` … `[sink]` of a one-core collector config.
fn engine_toml(dir: &Path, discard: bool, spin_us: u64) -> String {
    // Only when set, so builds from before the key run in the same harness.
    let poll = std::env::var("E2E_POLL_US")
        .map(|v| format!("poll_before_park_us = {v}\n"))
        .unwrap_or_default();
    format!(
        "[engine]\ncores = [0]\nbatch_max_events = {}\nbatch_max_delay_ms = {}\ndiscard_frames = {discard}\nspin_before_park_us = {spin_us}\n{poll}\
         [http]\nlisten = \"127.0.0.1:0\"\n[sink]\npath = \"{}\"\nwrite_mode = \"{}\"\n",
        env_u64("E2E_BATCH_EVENTS", 4096),
        env_u64("E2E_BATCH_DELAY_MS", 20),
        dir.join("data").display(),
        write_mode(),
    )
}

/// `E2E_WRITE_MODE`: the file sink's `sink.write_mode` (default offload).
fn write_mode() -> String {
    let m = std::env::var("E2E_WRITE_MODE").unwrap_or_else(|_| "offload".into());
    assert!(
        ["inline", "offload", "direct"].contains(&m.as_str()),
        "E2E_WRITE_MODE: inline, offload or direct, not {m:?}"
    );
    m
}

/// One `[exchanges.KEY]` table pointing at the mock.
/// A one-core collector config for Binance spot trades of BTCUSDT and
/// ETHUSDT on the mock at `port`, written to `<dir>/<name>`.
fn two_symbol_trades(dir: &tempfile::TempDir, port: u16, spin_us: u64, name: &str) -> PathBuf {
    let syms = ["BTCUSDT".to_string(), "ETHUSDT".to_string()];
    let text = engine_toml(dir.path(), false, spin_us)
        + &venue_toml("binance_spot", "", port, &tls_ca(dir), &syms, "\"trade\"");
    let cfg = dir.path().join(name);
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// `book_publish_interval_ms` from `E2E_BOOK_PUBLISH_MS`, for a venue
/// table (empty when unset: the config's default).
fn book_interval_toml() -> String {
    std::env::var("E2E_BOOK_PUBLISH_MS")
        .map(|ms| format!("book_publish_interval_ms = {ms}\n"))
        .unwrap_or_default()
}

fn venue_toml(key: &str, path: &str, port: u16, ca: &str, syms: &[String], types: &str) -> String {
    let quoted: Vec<String> = syms.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[exchanges.{key}]\nws_url = \"wss://localhost:{port}{path}\"\nrest_url = \"https://localhost:{port}\"\n\
         ca_file = \"{ca}\"\nsymbols = [{}]\ndata_types = [{types}]\n",
        quoted.join(", ")
    )
}

/// The book a venue's `orderbook` records and `/mock/book` agree on: Bybit
/// numbers books by `u`, the others by their sequence id.
fn mock_book(addr: SocketAddr, ca: &Path, venue: &str, sym: &str) -> sonic_rs::Value {
    let body = https_get(addr, ca, &format!("/mock/book?venue={venue}&symbol={sym}"));
    sonic_rs::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn mock_id(venue: &str, m: &sonic_rs::Value) -> Option<u64> {
    if venue.starts_with("bybit") {
        m["u"].as_u64()
    } else {
        m["last_update_id"].as_u64()
    }
}

/// Levels of an `orderbook` record side or of a `/mock/book` side, as
/// exact strings.
fn levels(v: &sonic_rs::Value, key: &str) -> Vec<(String, String)> {
    let s = |x: &sonic_rs::Value| x.as_str().unwrap_or("?").to_string();
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| match l.as_array() {
                    Some(pair) => (s(&pair[0]), s(&pair[1])),
                    None => (s(&l["price"]), s(&l["quantity"])),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The newest `orderbook` record and the trade ids per "exchange
/// market_type instrument", read without parsing trade lines as JSON.
struct Output {
    books: HashMap<String, sonic_rs::Value>,
    trades: BTreeMap<String, Vec<String>>,
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let Some(i) = line.find(&pat) else {
        return "";
    };
    let v = &line[i + pat.len()..];
    let v = v.strip_prefix('"').unwrap_or(v);
    &v[..v.find(['"', ',', '}']).unwrap_or(v.len())]
}

fn read_output(data: &Path) -> Output {
    let mut out = Output {
        books: HashMap::new(),
        trades: BTreeMap::new(),
    };
    for e in std::fs::read_dir(data).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Read while the collector writes: a batch may be half written.
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        for line in whole.lines() {
            match field(line, "data_type") {
                "trade" => out
                    .trades
                    .entry(format!(
                        "{} {} {}",
                        field(line, "exchange"),
                        field(line, "market_type"),
                        field(line, "symbol")
                    ))
                    .or_default()
                    .push(field(line, "trade_id").to_string()),
                "orderbook" => {
                    let r: sonic_rs::Value = sonic_rs::from_str(line).unwrap();
                    let inst = format!(
                        "{} {} {}",
                        field(line, "exchange"),
                        field(line, "market_type"),
                        field(line, "instrument_id")
                    );
                    let id = |r: &sonic_rs::Value| r["receive_ts_ns"].as_u64().unwrap_or(0);
                    if out.books.get(&inst).is_none_or(|old| id(&r) >= id(old)) {
                        out.books.insert(inst, r);
                    }
                }
                other => panic!("unexpected record type {other:?}: {line}"),
            }
        }
    }
    out
}

/// Waits until the newest published record of every (venue key, symbol)
/// carries the mock's final id, then checks every level against the true
/// book. Ok: how many books were checked; Err: the books that differ.
fn check_books(
    addr: SocketAddr,
    ca: &Path,
    data: &Path,
    books: &[(String, String)],
) -> Result<usize, String> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let out = read_output(data);
        let mut pending = Vec::new();
        let mut wrong = Vec::new();
        for (v, s) in books {
            let m = mock_book(addr, ca, v, s);
            let id = VenueId::from_config_key(v).unwrap();
            let key = format!("{} {} {s}", id.exchange(), id.market_type());
            let got = out
                .books
                .get(&key)
                .and_then(|r| r["last_update_id"].as_u64());
            if got != mock_id(v, &m) {
                pending.push(format!("{v} {s}: {got:?} vs {:?}", mock_id(v, &m)));
                continue;
            }
            let r = &out.books[&key];
            for side in ["bids", "asks"] {
                let (got, want) = (levels(r, side), levels(&m, side));
                if got != want {
                    let first = got.iter().zip(&want).position(|(g, w)| g != w);
                    wrong.push(format!(
                        "{v} {s} {side}: {} levels published, {} true; first difference at level {first:?}: {:?} vs {:?}",
                        got.len(),
                        want.len(),
                        first.and_then(|i| got.get(i)),
                        first.and_then(|i| want.get(i))
                    ));
                }
            }
        }
        if pending.is_empty() {
            if !wrong.is_empty() {
                return Err(wrong.join("\n"));
            }
            return Ok(books.len());
        }
        assert!(
            Instant::now() < end,
            "books not final after 60 s: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Book scenario: the mock floods `updates` diffs per book on `n` OKX
/// instruments (400 levels per side, checksum 0 as OKX sends since
/// 2026-06); the collector keeps the books on one core and publishes them
/// throttled.
fn books(updates: u64, n: usize) {
    let n = n.clamp(1, okx_count(okx_extra_for(n)));
    let extra = okx_extra_for(n);
    let dir = tempfile::tempdir_in(data_base()).unwrap();
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
            "--okx-extra-pairs",
            &extra.to_string(),
            "--core",
            "1",
        ],
    );
    // The mock's listing order: BTC-USDT, ETH-USDT, the two swaps, then
    // X001-USDT, X001-USDT-SWAP, X002-USDT, ...
    let mut insts: Vec<String> = ["BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "ETH-USDT-SWAP"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for j in 1..=extra {
        insts.push(format!("X{j:03}-USDT"));
        insts.push(format!("X{j:03}-USDT-SWAP"));
    }
    insts.truncate(n);
    let (swap, spot): (Vec<String>, Vec<String>) =
        insts.iter().cloned().partition(|s| s.ends_with("-SWAP"));
    let ca = tls_ca(&dir);
    let mut cfg_text = engine_toml(dir.path(), false, env_u64("E2E_SPIN_US", 0));
    let p = addr.port();
    let book = "\"orderbook\"";
    // The mock stamps update n at base + 10 n ms, far ahead of the wall clock
    // at flood rate: a longer interval keeps records per update realistic.
    let interval = book_interval_toml();
    if !spot.is_empty() {
        cfg_text += &venue_toml("okx_spot", "/ws/v5/public", p, &ca, &spot, book);
        cfg_text += &interval;
    }
    if !swap.is_empty() {
        cfg_text += &venue_toml("okx_derivatives", "/ws/v5/public", p, &ca, &swap, book);
        cfg_text += &interval;
    }
    let cfg = dir.path().join("books.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let total = updates * n as u64;
    let (mut collector, metrics) = start_collector(&cfg);
    let cpu0 = cpu_seconds(collector.child.id());
    let mut first: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(600);
    let m = loop {
        let m = http_get(metrics, "/metrics").1;
        let k = metric_sum(&m, "marketprism_orderbook_updates_total", &[]) as u64;
        if k > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if k >= total {
            break m;
        }
        assert!(Instant::now() < end, "timed out at {k} of {total} updates");
        std::thread::sleep(Duration::from_millis(5));
    };
    let span = first.map_or(1e-9, |f| f.elapsed().as_secs_f64());
    let cpu = cpu_seconds(collector.child.id()) - cpu0;
    // The work measured must be right: every final book equals the true book.
    let pairs: Vec<(String, String)> = insts
        .iter()
        .map(|s| {
            let v = if s.ends_with("-SWAP") {
                "okx_derivatives"
            } else {
                "okx_spot"
            };
            (v.to_string(), s.clone())
        })
        .collect();
    let checked = check_books(addr, &tls.join("ca.pem"), &dir.path().join("data"), &pairs)
        .unwrap_or_else(|e| panic!("final books differ from the true books:\n{e}"));
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    println!("books: mock (cpu 1) → TLS → collector (1 core, cpu 0); OKX books, {n} × 400-level books ({} spot, {} swap), {updates} diffs each", spot.len(), swap.len());
    println!(
        "  book updates applied  {:>9.0} /s on one core ({total} in {span:.2} s); collector CPU {:.1} ms per 100k updates (busy {:.0}%)",
        total as f64 / span,
        cpu / total as f64 * 1e5 * 1e3,
        (cpu / span * 100.0).min(100.0)
    );
    println!(
        "  orderbook records     {} published (top 400); resyncs {}",
        metric_sum(&m, "marketprism_orderbook_published_total", &[]),
        metric_sum(&m, "marketprism_orderbook_resync_count_total", &[])
    );
    println!(
        "  heap allocations      {:.4} per update over the whole run (incl. start-up); arena high water {} bytes",
        metric_sum(&m, "marketprism_heap_allocations_total", &[]) / total as f64,
        metric_sum(&m, "marketprism_arena_high_water_bytes", &[])
    );
    println!(
        "  correctness           {checked} final books equal the mock's true books, every level"
    );
}

/// Extra OKX pairs the mock must list for `n` books.
fn okx_extra_for(n: usize) -> usize {
    n.saturating_sub(4).div_ceil(2)
}

fn okx_count(extra: usize) -> usize {
    4 + 2 * extra
}

/// The mixed scenario's venues: (config key, WebSocket path, symbols,
/// `/mock/book` venue key).
const MIX: [(&str, &str, [&str; 2]); 7] = [
    ("binance_spot", "", ["BTCUSDT", "ETHUSDT"]),
    ("binance_derivatives", "", ["BTCUSDT", "ETHUSDT"]),
    ("okx_spot", "/ws/v5/public", ["BTC-USDT", "ETH-USDT"]),
    (
        "okx_derivatives",
        "/ws/v5/public",
        ["BTC-USDT-SWAP", "ETH-USDT-SWAP"],
    ),
    ("bybit_spot", "/v5/public/spot", ["BTCUSDT", "ETHUSDT"]),
    ("bybit_linear", "/v5/public/linear", ["BTCUSDT", "ETHUSDT"]),
    (
        "deribit_derivatives",
        "/ws/api/v2",
        ["BTC-PERPETUAL", "ETH-PERPETUAL"],
    ),
];

struct MixRun {
    /// First frame received → the last data frame received and every trade
    /// written (seconds).
    span: f64,
    cpu_c: f64,
    /// The shard thread alone (see `Outcome::cpu_core`).
    cpu_core: f64,
    cpu_m: f64,
    metrics: String,
    /// The books that ended different from the true books.
    failed: Option<String>,
}

/// One mixed run: trades and book diffs of every venue into one core.
/// `discard` = receive-only (frames counted, not parsed).
fn mix_run(trades: u64, updates: u64, discard: bool) -> MixRun {
    let dir = tempfile::tempdir_in(data_base()).unwrap();
    let tls = dir.path().join("tls");
    let (t, u) = (trades.to_string(), updates.to_string());
    let (mock, addr) = start_mock(
        &tls,
        &[
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--rate",
            "0",
            "--trades-per-symbol",
            &t,
            "--event-rate",
            "0",
            "--events-per-stream",
            &t,
            "--book-rate",
            "0",
            "--book-updates",
            &u,
            // Bybit's `orderbook.200` depth. The mock's book depth is one
            // setting for every venue, and it does not emulate Bybit's
            // top-200 window (deletes as levels leave it), so deeper books
            // would not be what Bybit sends.
            "--book-depth",
            "200",
            "--okx-checksum",
            "zero",
            "--core",
            "1",
        ],
    );
    let ca = tls_ca(&dir);
    let mut text = engine_toml(dir.path(), discard, env_u64("E2E_SPIN_US", 0));
    // Books publish by exchange time, which the mock advances 10 ms per
    // update: the default 100 ms publishes every tenth update (200-level
    // records). A long interval gives builds that published by wall time
    // the same work to compare.
    let interval = book_interval_toml();
    for (key, path, syms) in MIX {
        let syms: Vec<String> = syms.iter().map(|s| s.to_string()).collect();
        text += &venue_toml(
            key,
            path,
            addr.port(),
            &ca,
            &syms,
            "\"trade\", \"orderbook\"",
        );
        text += &interval;
    }
    let cfg = dir.path().join("mix.toml");
    std::fs::write(&cfg, text).unwrap();
    let streams = (MIX.len() * 2) as u64;
    let (all_trades, data_frames) = (streams * trades, streams * (trades + updates));
    let (mut collector, metrics) = start_collector(&cfg);
    let cpu0_c = cpu_seconds(collector.child.id());
    let cpu0_core = core_thread_seconds(collector.child.id());
    let cpu0_m = cpu_seconds(mock.child.id());
    let mut first: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(600);
    let m = loop {
        let m = http_get(metrics, "/metrics").1;
        let got = metric_sum(&m, "marketprism_messages_received_total", &[]) as u64;
        let written = metric_sum(
            &m,
            "marketprism_messages_written_total",
            &["data_type=\"trade\""],
        ) as u64;
        if got > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        // Received counts acks and snapshots too: a few frames more than
        // the data frames, never fewer once all were sent.
        if got >= data_frames && (discard || written >= all_trades) {
            break m;
        }
        assert!(
            Instant::now() < end,
            "timed out: {got} of {data_frames} frames, {written} of {all_trades} trades"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let span = first.map_or(1e-9, |f| f.elapsed().as_secs_f64());
    let cpu_c = cpu_seconds(collector.child.id()) - cpu0_c;
    let cpu_core = core_thread_seconds(collector.child.id()) - cpu0_core;
    let cpu_m = cpu_seconds(mock.child.id()) - cpu0_m;
    let mut failed = None;
    if !discard {
        // The work measured must be right: every trade once, every book true.
        let data = dir.path().join("data");
        let books: Vec<(String, String)> = MIX
            .iter()
            .flat_map(|(k, _, syms)| syms.iter().map(|s| (k.to_string(), s.to_string())))
            .collect();
        let books_ok = check_books(addr, &tls.join("ca.pem"), &data, &books);
        let out = read_output(&data);
        assert_eq!(out.trades.len(), MIX.len() * 2, "{:?}", out.trades.keys());
        for (k, ids) in &out.trades {
            let distinct: HashSet<&String> = ids.iter().collect();
            assert_eq!(
                (ids.len() as u64, distinct.len() as u64),
                (trades, trades),
                "{k}: trades written / distinct"
            );
        }
        println!(
            "  correctness           {} trade streams × {trades} trades written exactly once",
            out.trades.len()
        );
        match books_ok {
            Ok(n) => println!(
                "  correctness           {n} final books equal the true books, every level"
            ),
            Err(e) => {
                // Print the figures anyway; main exits 1 at the end.
                println!("  CORRECTNESS FAILURE   final books differ from the true books:\n{e}");
                failed = Some(e);
            }
        }
    }
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    MixRun {
        span,
        cpu_c,
        cpu_core,
        cpu_m,
        metrics: m,
        failed,
    }
}

fn per100k(cpu: f64, n: u64) -> f64 {
    cpu / n as f64 * 1e5 * 1e3
}

/// "p50 … p99 … p99.9 …" of a latency family in µs or ms.
fn quantiles(metrics: &str, family: &str, scale: f64, unit: &str) -> String {
    let q = |w| quantile_of(metrics, family, w, scale, unit);
    format!("p50 {}  p99 {}  p99.9 {}", q(0.5), q(0.99), q(0.999))
}

/// Mixed scenario: the receive-only ceiling of the mix, then the real run.
/// Returns the correctness failure, if any (after printing the figures).
fn mix(trades: u64, updates: u64) -> Option<String> {
    let streams = (MIX.len() * 2) as u64;
    let frames = streams * (trades + updates);
    let ceiling = mix_run(trades, updates, true);
    let full = mix_run(trades, updates, false);
    let m = &full.metrics;
    let (c_rate, f_rate) = (frames as f64 / ceiling.span, frames as f64 / full.span);
    println!(
        "mix: mock (cpu 1) → TLS → collector (1 core, cpu 0); 7 venues × 2 symbols, trade + orderbook (200 levels) each: {streams} × {trades} trades + {streams} × {updates} book diffs = {frames} messages"
    );
    println!(
        "  receive-only ceiling  {c_rate:>9.0} msg/s ({:.2} s; collector CPU {:.1} ms/100k msgs, mock {:.1})",
        ceiling.span,
        per100k(ceiling.cpu_c, frames),
        per100k(ceiling.cpu_m, frames)
    );
    println!(
        "  end to end            {f_rate:>9.0} msg/s on one core ({:.2} s first frame → all received, every trade written); {:.0} records written/s",
        full.span,
        metric_sum(m, "marketprism_messages_written_total", &[]) / full.span
    );
    println!(
        "  ratio                 {:.0} % of the ceiling",
        f_rate / c_rate * 100.0
    );
    println!(
        "  CPU per 100k msgs     collector core {:.1} ms (busy {:.0}% of the span); kernel I/O workers and other threads {:.1} ms; mock {:.1} ms",
        per100k(full.cpu_core, frames),
        (full.cpu_core / full.span * 100.0).min(100.0),
        per100k((full.cpu_c - full.cpu_core).max(0.0), frames),
        per100k(full.cpu_m, frames),
    );
    println!(
        "  receive→parsed        {}",
        quantiles(m, "marketprism_receive_to_parsed_seconds", 1e6, "µs")
    );
    println!(
        "  receive→written       {}  (batch_max_delay_ms = {}, batch {})",
        quantiles(m, "marketprism_receive_to_written_seconds", 1e3, "ms"),
        env_u64("E2E_BATCH_DELAY_MS", 20),
        env_u64("E2E_BATCH_EVENTS", 4096)
    );
    println!(
        "  book updates          {} applied, {} snapshots, {} orderbook records, resyncs {}",
        metric_sum(m, "marketprism_orderbook_updates_total", &[]),
        metric_sum(m, "marketprism_orderbook_snapshots_total", &[]),
        metric_sum(m, "marketprism_orderbook_published_total", &[]),
        metric_sum(m, "marketprism_orderbook_resync_count_total", &[])
    );
    println!(
        "  heap allocations      {:.4} per message over the whole run (incl. start-up, REST snapshots)",
        metric_sum(m, "marketprism_heap_allocations_total", &[]) / frames as f64
    );
    println!(
        "  arena high water      {} bytes; RSS {:.1} MB",
        metric_sum(m, "marketprism_arena_high_water_bytes", &[]),
        metric_sum(m, "marketprism_process_rss_bytes", &[]) / 1e6
    );
    full.failed
}

/// Quantiles of what a histogram counted between two scrapes.
fn delta_quantiles(before: &str, after: &str, family: &str, scale: f64, unit: &str) -> String {
    let b0 = histogram_buckets(before, family);
    let d: Vec<(f64, f64)> = histogram_buckets(after, family)
        .into_iter()
        .map(|(le, n)| {
            let old = b0.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - old)
        })
        .collect();
    let n = d.last().map_or(0.0, |b| b.1);
    let q = |want: f64| {
        let target = (want * n).ceil();
        d.iter()
            .find(|b| b.1 >= target && n > 0.0)
            .map(|b| format!("≤ {:.3} {unit}", b.0 * scale))
            .unwrap_or_else(|| "n/a".into())
    };
    format!("p50 {}  p99 {}  p99.9 {}", q(0.5), q(0.99), q(0.999))
}

/// Spin scenario: one paced run per `spin_before_park_us` value.
fn spin(rate: u64, secs: u64, values: &[u64]) {
    let delay = env_u64("E2E_BATCH_DELAY_MS", 20);
    let ping_ms = env_u64("E2E_SPIN_PING_MS", 5).max(1);
    println!(
        "spin: mock (cpu 1) → TLS → collector (1 core, cpu 0); Binance spot trades paced at {rate}/s (2 symbols), {secs} s measured after 2 s warm-up, batch_max_delay_ms = {delay}, mock pings every {ping_ms} ms"
    );
    let ping = ping_ms.to_string();
    for &us in values {
        let dir = tempfile::tempdir_in(data_base()).unwrap();
        let tls = dir.path().join("tls");
        let per_symbol = (rate / 2).max(1).to_string();
        let (mock, addr) = start_mock(
            &tls,
            &[
                "--symbols",
                "BTCUSDT,ETHUSDT",
                "--rate",
                &per_symbol,
                "--core",
                "1",
                "--ping-interval-ms",
                &ping,
                // The default 60 s pong timeout is far above any round trip.
            ],
        );
        let ca = tls.join("ca.pem");
        let cfg = two_symbol_trades(&dir, addr.port(), us, "spin.toml");
        let (mut collector, metrics) = start_collector(&cfg);
        std::thread::sleep(Duration::from_secs(2));
        // Only the measured window's pings count (read-and-clear).
        https_get(addr, &ca, "/mock/stats?reset_pong_rtt=1");
        let (m0, c0, k0, t0) = (
            http_get(metrics, "/metrics").1,
            cpu_seconds(collector.child.id()),
            cpu_seconds(mock.child.id()),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_secs(secs));
        let (m1, c1, k1, wall) = (
            http_get(metrics, "/metrics").1,
            cpu_seconds(collector.child.id()),
            cpu_seconds(mock.child.id()),
            t0.elapsed().as_secs_f64(),
        );
        let stats = https_get(addr, &ca, "/mock/stats");
        let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
        assert_eq!(status.code(), Some(0));
        drop(mock);
        let written = |m: &str| metric_sum(m, "marketprism_messages_written_total", &[]);
        let n = written(&m1) - written(&m0);
        assert!(n > 0.0, "nothing written in the measured window");
        println!(
            "  spin_before_park_us = {us:>3}: {:.0} msgs/s written; collector CPU {:.1} % of a core ({:.1} ms per 100k msgs), mock {:.1} %",
            n / wall,
            (c1 - c0) / wall * 100.0,
            (c1 - c0) / n * 1e8,
            (k1 - k0) / wall * 100.0
        );
        println!(
            "      receive→parsed  {}",
            delta_quantiles(&m0, &m1, "marketprism_receive_to_parsed_seconds", 1e6, "µs")
        );
        println!(
            "      receive→written {}",
            delta_quantiles(
                &m0,
                &m1,
                "marketprism_receive_to_written_seconds",
                1e3,
                "ms"
            )
        );
        let v: sonic_rs::Value = sonic_rs::from_str(&stats).unwrap();
        let rtt = |k: &str| v["pong_rtt_us"][k].as_u64().unwrap_or(0);
        assert_eq!(json_u64(&stats, "pong_timeouts"), 0, "{stats}");
        println!(
            "      ping→pong RTT   p50 < {} µs  p99 < {} µs  p99.9 < {} µs  (max {} µs, {} pongs; mock-measured)",
            rtt("p50"),
            rtt("p99"),
            rtt("p999"),
            rtt("max"),
            rtt("count")
        );
    }
}

/// Trade scenario: Binance spot trades at full speed, with the ceiling.
fn trades() {
    let per_symbol = env_u64("E2E_TRADES", 400_000);
    let nsym = env_u64("E2E_SYMBOLS", 5).min(12) as usize;
    let delay_ms = env_u64("E2E_BATCH_DELAY_MS", 20);
    let names = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "ETHBTC",
        "BNBBTC", "LTCBTC", "BTCFDUSD", "BTCEUR",
    ];
    let syms: Vec<&str> = names[..nsym].to_vec();
    let total = per_symbol * nsym as u64;

    // On a shared machine the ratio of one pair swings with the machine's
    // state (28–38 % for the same build here): `E2E_PAIRS` runs several
    // ceiling / end-to-end pairs, alternating which goes first, and the
    // figures below are the pair with the median ratio.
    let npairs = env_u64("E2E_PAIRS", 1).max(1) as usize;
    let mut pairs = Vec::new();
    for k in 0..npairs {
        let (ceiling, full) = if k % 2 == 0 {
            let c = run(&syms, per_symbol, delay_ms, true);
            (c, run(&syms, per_symbol, delay_ms, false))
        } else {
            let f = run(&syms, per_symbol, delay_ms, false);
            (run(&syms, per_symbol, delay_ms, true), f)
        };
        pairs.push((ceiling, full));
    }
    println!(
        "e2e: mock (cpu 1) → TLS → collector (1 core, cpu 0) → files in {} ({}); {nsym} symbols x {per_symbol} trades = {total}",
        data_base(),
        match write_mode().as_str() {
            "inline" => "write(2) from the core",
            "offload" => "io_uring, page-cache copy by kernel workers off cpu 0",
            _ => "O_DIRECT via io_uring",
        }
    );
    // The target: the higher of 1 M msg/s and 40 % of the same pair's ceiling.
    let target = |c: &Outcome| (0.4 * c.rate).max(1e6);
    if npairs > 1 {
        for (k, (c, f)) in pairs.iter().enumerate() {
            println!(
                "  pair {:>2}: ceiling {:>9.0}  end to end {:>9.0} msg/s  ratio {:>3.0} %  collector core {:.1} ms/100k{}",
                k + 1,
                c.rate,
                f.rate,
                f.rate / c.rate * 100.0,
                per100k(f.cpu_core, total),
                if k % 2 == 1 { "  (end to end first)" } else { "" }
            );
        }
    }
    let met = pairs.iter().filter(|(c, f)| f.rate >= target(c)).count();
    pairs.sort_by(|(c1, f1), (c2, f2)| (f1.rate / c1.rate).total_cmp(&(f2.rate / c2.rate)));
    let (ceiling, full) = pairs.swap_remove(npairs / 2);
    if npairs > 1 {
        println!("  median pair by ratio:");
    }
    println!(
        "  receive-only ceiling  {:>9.0} msg/s ({:.2} s; collector CPU {:.1} ms/100k msgs, mock {:.1})",
        ceiling.rate,
        ceiling.span,
        per100k(ceiling.cpu_c, total),
        per100k(ceiling.cpu_m, total)
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
        "  target                ≥ {:.0} msg/s (the higher of 1 M and 40 % of the ceiling): {} in {met} of {npairs} pair(s)",
        target(&ceiling),
        if met > 0 { "met" } else { "not met" },
    );
    println!(
        "  CPU per 100k msgs     collector core {:.1} ms (busy {:.0}% of the span); kernel I/O workers and other threads {:.1} ms; mock {:.1} ms",
        per100k(full.cpu_core, total),
        (full.cpu_core / full.span * 100.0).min(100.0),
        per100k((full.cpu_c - full.cpu_core).max(0.0), total),
        per100k(full.cpu_m, total),
    );
    println!(
        "  receive→written       {}  (batch_max_delay_ms = {delay_ms}, batch {})",
        quantiles(
            &full.metrics,
            "marketprism_receive_to_written_seconds",
            1e3,
            "ms"
        ),
        env_u64("E2E_BATCH_EVENTS", 4096)
    );
    println!(
        "  receive→parsed        {}",
        quantiles(
            &full.metrics,
            "marketprism_receive_to_parsed_seconds",
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

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let set = |k: &str| std::env::var(k).is_ok();
    let only = [
        "E2E_BOOKS_ONLY",
        "E2E_MIX_ONLY",
        "E2E_TRADES_ONLY",
        "E2E_SPIN_ONLY",
        "E2E_IDLE_ONLY",
        "E2E_LATENCY_ONLY",
    ];
    let all = !only.iter().any(|k| set(k));
    if all || set("E2E_BOOKS_ONLY") {
        books(
            env_u64("E2E_BOOK_UPDATES", 25_000),
            env_u64("E2E_BOOK_SYMBOLS", 40) as usize,
        );
    }
    let mut failed = None;
    if all || set("E2E_MIX_ONLY") {
        failed = mix(
            env_u64("E2E_MIX_TRADES", 50_000),
            env_u64("E2E_MIX_BOOK_UPDATES", 20_000),
        );
    }
    if all || set("E2E_TRADES_ONLY") {
        trades();
    }
    if all || set("E2E_SPIN_ONLY") {
        let values: Vec<u64> = std::env::var("E2E_SPIN_VALUES")
            .unwrap_or_else(|_| "0,50,100".into())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        spin(
            env_u64("E2E_SPIN_RATE", 2000),
            env_u64("E2E_SPIN_S", 10),
            &values,
        );
    }
    if all || set("E2E_IDLE_ONLY") {
        idle::idle(env_u64("E2E_IDLE_S", 20));
    }
    if all || set("E2E_LATENCY_ONLY") {
        let rates: Vec<u64> = std::env::var("E2E_LAT_RATES")
            .unwrap_or_else(|_| "1000,20000".into())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        if set("E2E_LAT_SIDE") {
            latency::side_by_side(&rates, env_u64("E2E_LAT_S", 5));
        } else {
            latency::latency(
                &rates,
                env_u64("E2E_LAT_S", 5),
                env_u64("E2E_LAT_SPIN_US", 10_000),
            );
        }
    }
    if let Some(e) = failed {
        eprintln!("e2e: mix: final books differ from the true books:\n{e}");
        std::process::exit(1);
    }
}

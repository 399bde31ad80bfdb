//! End-to-end to ClickHouse against the file sink, alternating in one
//! sitting: mock (CPU 1) → TLS → collector (1 core, CPU 0) → either JSON
//! Lines files on tmpfs, or ClickHouse's HTTP interface (chdb behind
//! tests/clickhouse/chdb_http.py, the real engine parsing the RowBinary).
//! Two loads: Binance spot trades, and 20 OKX order books (400 levels,
//! 1000 updates/s each, an `orderbook` row per book every 10 ms carrying
//! its levels as MarketPrism's JSON text).
//!
//! Prints, per run: records/s through the sink (for ClickHouse: rows
//! acknowledged), the collector's process CPU per 100 000 records, and the
//! ratio ClickHouse / file of that CPU per pair. The test server (Python +
//! chdb) shares the machine's two vCPUs and is slower than a real server,
//! so rows/s is a floor; the collector's CPU per record is the figure.
//! Run: `cargo bench --bench e2e_clickhouse` (needs python3 with chdb 4.4).
//!
//! Environment: `E2E_TRADES` (per symbol, default 200000), `E2E_SYMBOLS`
//! (default 4), `E2E_BOOK_UPDATES` (per book, default 5000), `E2E_PAIRS`
//! (file/ClickHouse pairs per load, default 2), `E2E_ONLY` (`trades` or
//! `books`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::clickhouse::ClickHouse;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum SinkKind {
    File,
    ClickHouse,
}

#[derive(Clone, Copy)]
enum Load {
    Trades,
    Books,
}

/// OKX books of the books load (400 levels each, published every 10 ms).
const BOOKS: usize = 20;

const SYMS: [&str; 8] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "ETHBTC",
];

fn config(
    dir: &Path,
    sink: SinkKind,
    load: Load,
    mock_port: u16,
    ch_url: &str,
    nsym: usize,
) -> std::path::PathBuf {
    let sink_text = match sink {
        SinkKind::File => "kind = \"file\"\n".to_string(),
        SinkKind::ClickHouse => {
            format!("kind = \"clickhouse\"\n[sink.clickhouse]\nurl = \"{ch_url}\"\nttl_days = 0\n")
        }
    };
    let ca = dir.join("tls/ca.pem");
    let venue = match load {
        Load::Trades => {
            let syms: Vec<String> = SYMS[..nsym].iter().map(|s| format!("\"{s}\"")).collect();
            format!(
                "[exchanges.binance_spot]\nws_url = \"wss://localhost:{mock_port}\"\nrest_url = \"https://localhost:{mock_port}\"\n\
                 ca_file = \"{}\"\nsymbols = [{}]\ndata_types = [\"trade\"]\n",
                ca.display(),
                syms.join(", ")
            )
        }
        Load::Books => {
            // BTC-USDT, ETH-USDT and the mock's extra pairs X001-USDT...
            let syms: Vec<String> = ["BTC-USDT".to_string(), "ETH-USDT".to_string()]
                .into_iter()
                .chain((1..=BOOKS - 2).map(|j| format!("X{j:03}-USDT")))
                .map(|s| format!("\"{s}\""))
                .collect();
            format!(
                "[exchanges.okx_spot]\nws_url = \"wss://localhost:{mock_port}/ws/v5/public\"\nrest_url = \"https://localhost:{mock_port}\"\n\
                 ca_file = \"{}\"\nsymbols = [{}]\ndata_types = [\"orderbook\"]\nbook_publish_interval_ms = 10\n",
                ca.display(),
                syms.join(", ")
            )
        }
    };
    let text = format!(
        "[engine]\ncores = [0]\nbatch_max_delay_ms = 20\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\npath = \"{}\"\n{sink_text}{venue}",
        dir.join("data").display()
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Figures {
    records: u64,
    per_s: f64,
    cpu_ms_per_100k: f64,
}

fn run(sink: SinkKind, load: Load, nsym: usize, per_symbol: u64, book_updates: u64) -> Figures {
    let base = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let ch = (sink == SinkKind::ClickHouse).then(|| ClickHouse::start(&dir.path().join("ch")));
    let url = ch.as_ref().map(|c| c.url()).unwrap_or_default();
    let n = per_symbol.to_string();
    let u = book_updates.to_string();
    let extra = (BOOKS - 2).to_string();
    let mock_args: Vec<&str> = match load {
        Load::Trades => vec!["--trades-per-symbol", &n, "--rate", "0", "--core", "1"],
        Load::Books => vec![
            "--trades-per-symbol",
            "1",
            "--book-depth",
            "400",
            "--book-rate",
            "1000",
            "--book-updates",
            &u,
            "--okx-extra-pairs",
            &extra,
            "--core",
            "1",
        ],
    };
    let (mock, addr) = start_mock(&dir.path().join("tls"), &mock_args);
    let cfg = config(dir.path(), sink, load, addr.port(), &url, nsym);
    let (mut collector, metrics) = start_collector(&cfg);
    let pid = collector.child.id();
    let (family, filter, total) = match (sink, load) {
        (SinkKind::File, Load::Trades) => (
            "marketprism_messages_written_total",
            "data_type=\"trade\"",
            per_symbol * nsym as u64,
        ),
        (SinkKind::File, Load::Books) => (
            "marketprism_messages_written_total",
            "data_type=\"orderbook\"",
            0,
        ),
        (SinkKind::ClickHouse, Load::Trades) => (
            "marketprism_clickhouse_rows_inserted_total",
            "table=\"trades\"",
            per_symbol * nsym as u64,
        ),
        (SinkKind::ClickHouse, Load::Books) => (
            "marketprism_clickhouse_rows_inserted_total",
            "table=\"orderbooks\"",
            0,
        ),
    };
    // CPU from before the first frame to the last record through the
    // sink; time from the first record parsed to the last through the sink
    // (a ClickHouse block leaves up to block_max_delay_ms after its rows).
    let c0 = cpu_seconds(pid);
    let mut first: Option<Instant> = None;
    let mut last_n = 0u64;
    let mut still = 0;
    let end = Instant::now() + Duration::from_secs(900);
    let done = loop {
        let m = http_get(metrics, "/metrics").1;
        let n = metric_sum(&m, family, &[filter]) as u64;
        if first.is_none() && metric_sum(&m, "marketprism_messages_parsed_total", &[]) > 0.0 {
            first = Some(Instant::now());
        }
        // Books: the count is unknown up front (one row per publish while
        // the book is synced): done when it stops moving for 2 s.
        still = if n == last_n && n > 0 { still + 1 } else { 0 };
        last_n = n;
        if (total > 0 && n >= total) || (total == 0 && still >= 200) {
            break n;
        }
        assert!(Instant::now() < end, "timed out at {n}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let settle = if total == 0 {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    let t0 = first.unwrap_or_else(Instant::now);
    let span = (t0.elapsed().saturating_sub(settle))
        .as_secs_f64()
        .max(1e-9);
    let cpu = cpu_seconds(pid) - c0;
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(60))
            .code(),
        Some(0),
        "{}",
        collector.output()
    );
    drop(mock);
    drop(ch);
    Figures {
        records: done,
        per_s: done as f64 / span,
        cpu_ms_per_100k: cpu / done.max(1) as f64 * 1e5 * 1e3,
    }
}

fn main() {
    let per_symbol = env_u64("E2E_TRADES", 200_000);
    let nsym = env_u64("E2E_SYMBOLS", 4).clamp(1, 8) as usize;
    let book_updates = env_u64("E2E_BOOK_UPDATES", 5000);
    let pairs = env_u64("E2E_PAIRS", 2).max(1);
    let only = std::env::var("E2E_ONLY").unwrap_or_default();
    for (load, name) in [(Load::Trades, "trades"), (Load::Books, "books")] {
        if !only.is_empty() && only != name {
            continue;
        }
        println!("{name}: file vs ClickHouse, {pairs} alternating pair(s)");
        for p in 0..pairs {
            // Alternate which goes first, so drift does not favour one.
            let order = if p % 2 == 0 {
                [SinkKind::File, SinkKind::ClickHouse]
            } else {
                [SinkKind::ClickHouse, SinkKind::File]
            };
            let mut cpu = [0.0f64; 2];
            for s in order {
                let f = run(s, load, nsym, per_symbol, book_updates);
                let label = if s == SinkKind::File {
                    "file      "
                } else {
                    "clickhouse"
                };
                println!(
                    "  pair {p} {label} {:>9} records  {:>9.0} records/s  CPU {:>6.1} ms per 100k",
                    f.records, f.per_s, f.cpu_ms_per_100k
                );
                cpu[(s == SinkKind::ClickHouse) as usize] = f.cpu_ms_per_100k;
            }
            println!(
                "  pair {p} ClickHouse / file CPU per record: {:.2}x",
                cpu[1] / cpu[0].max(1e-9)
            );
        }
    }
}

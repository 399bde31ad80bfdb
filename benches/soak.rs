//! RSS soak: every venue from the mock exchange (trades, books, tickers,
//! funding, open interest, liquidations, polls, volatility index) into one
//! collector core for `SOAK_S` seconds (default 600), sampling the
//! collector's RSS every 30 s. Prints the samples, the RSS after warm-up and
//! the growth after it. Run: `cargo bench --bench soak`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::time::{Duration, Instant};

fn main() {
    let secs = env_u64("SOAK_S", 600).max(60);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let tls = dir.path().join("tls");
    let (mock, addr) = start_mock(
        &tls,
        &[
            "--rate",
            "200",
            "--event-rate",
            "50",
            "--book-rate",
            "20",
            "--book-depth",
            "400",
            "--core",
            "1",
        ],
    );
    let ca = tls.join("ca.pem");
    let venue = |key: &str, path: &str, syms: &str, dts: &str, extra: &str| {
        format!(
            "[exchanges.{key}]\nws_url = \"wss://localhost:{p}{path}\"\nrest_url = \"https://localhost:{p}\"\n\
             ca_file = \"{ca}\"\nsymbols = [{syms}]\ndata_types = [{dts}]\n{extra}",
            p = addr.port(),
            ca = ca.display(),
        )
    };
    let cfg = dir.path().join("soak.toml");
    let text = [
        format!(
            "[engine]\ncores = [0]\n[http]\nlisten = \"127.0.0.1:0\"\n[sink]\npath = \"{}\"\nrotate_max_bytes = 67108864\n",
            dir.path().join("data").display()
        ),
        venue(
            "binance_spot",
            "",
            "\"BTCUSDT\", \"ETHUSDT\", \"BNBUSDT\", \"SOLUSDT\"",
            "\"trade\", \"orderbook\", \"ticker\"",
            "",
        ),
        venue(
            "binance_derivatives",
            "",
            "\"BTCUSDT\", \"ETHUSDT\"",
            "\"trade\", \"orderbook\", \"funding_rate\", \"open_interest\", \"liquidation\", \"lsr_top_position\", \"lsr_all_account\", \"ticker\"",
            "poll_interval_ms = { open_interest = 5000, lsr_top_position = 5000, lsr_all_account = 5000 }\n",
        ),
        venue(
            "okx_spot",
            "/ws/v5/public",
            "\"BTC-USDT\", \"ETH-USDT\"",
            "\"trade\", \"orderbook\", \"ticker\"",
            "",
        ),
        venue(
            "okx_derivatives",
            "/ws/v5/public",
            "\"BTC-USDT-SWAP\", \"ETH-USDT-SWAP\"",
            "\"trade\", \"orderbook\", \"funding_rate\", \"open_interest\", \"liquidation\", \"ticker\"",
            "",
        ),
        venue(
            "deribit_derivatives",
            "/ws/api/v2",
            "\"BTC-PERPETUAL\", \"ETH-PERPETUAL\", \"BTC\", \"ETH\"",
            "\"trade\", \"orderbook\", \"ticker\", \"funding_rate\", \"open_interest\", \"volatility_index\"",
            "",
        ),
        venue(
            "bybit_spot",
            "/v5/public/spot",
            "\"BTCUSDT\", \"ETHUSDT\"",
            "\"trade\", \"orderbook\", \"ticker\"",
            "",
        ),
        venue(
            "bybit_linear",
            "/v5/public/linear",
            "\"BTCUSDT\", \"ETHUSDT\"",
            "\"trade\", \"orderbook\", \"orderbook_delta\", \"funding_rate\", \"open_interest\", \"liquidation\", \"ticker\"",
            "",
        ),
    ]
    .concat();
    std::fs::write(&cfg, text).unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    let started = Instant::now();
    let sample = || {
        let m = http_get(metrics, "/metrics").1;
        (
            metric_sum(&m, "marketprism_process_rss_bytes", &[]) / 1e6,
            metric_sum(&m, "marketprism_messages_written_total", &[]),
            metric_sum(&m, "marketprism_orderbook_updates_total", &[]),
        )
    };
    let mut samples = Vec::new();
    println!("soak: every venue from the mock → 1 collector core, {secs} s; RSS every 30 s");
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(30).min(
            Duration::from_secs(secs).saturating_sub(started.elapsed()) + Duration::from_millis(10),
        ));
        let (rss, written, books) = sample();
        println!(
            "  t={:>4.0} s  RSS {rss:>6.1} MB  records written {written:>9.0}  book updates {books:>9.0}",
            started.elapsed().as_secs_f64()
        );
        samples.push((started.elapsed(), rss));
    }
    let warm: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= Duration::from_secs(60))
        .map(|&(_, r)| r)
        .collect();
    let first = warm.first().copied().unwrap_or(0.0);
    let max = warm.iter().copied().fold(0.0, f64::max);
    let last = warm.last().copied().unwrap_or(0.0);
    println!(
        "  after warm-up (60 s): RSS {first:.1} MB → {last:.1} MB at the end, max {max:.1} MB (growth {:+.1} MB)",
        last - first
    );
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
}

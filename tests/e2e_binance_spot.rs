//! End to end over TLS on loopback: mock Binance spot → `marketprism run` on
//! two cores → per-core JSON Lines files. Every trade id of every symbol must
//! appear exactly once with exact price, quantity and side; malformed frames
//! are counted; /metrics and /health answer; SIGTERM exits 0 losing nothing.

mod common;

use common::*;
use marketprism::mock::binance::trade;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

const TIME_BASE: u64 = 1_700_000_000_000;
/// Mock symbol order (= the mock's symbol_index): BTCUSDT, ETHUSDT, BNBUSDT,
/// SOLUSDT, XRPUSDT, ADAUSDT, DOGEUSDT, ETHBTC, ...
const SYMBOLS: [(&str, usize, &str); 5] = [
    ("BTCUSDT", 0, "BTC-USDT"),
    ("ETHUSDT", 1, "ETH-USDT"),
    ("BNBUSDT", 2, "BNB-USDT"),
    ("SOLUSDT", 3, "SOL-USDT"),
    ("ETHBTC", 7, "ETH-BTC"),
];

fn write_config(
    dir: &Path,
    mock: std::net::SocketAddr,
    per_conn: usize,
    extra_engine: &str,
) -> std::path::PathBuf {
    let syms: Vec<String> = SYMBOLS.iter().map(|(s, _, _)| format!("\"{s}\"")).collect();
    let text = format!(
        r#"[engine]
cores = [0, 1]
batch_max_events = 512
batch_max_delay_ms = 20
{extra_engine}
[http]
listen = "127.0.0.1:0"
[sink]
kind = "file"
path = "{data}"
[exchanges.binance_spot]
ws_url = "wss://localhost:{port}"
rest_url = "https://localhost:{port}"
symbols = [{syms}]
data_types = ["trade"]
streams_per_connection = {per_conn}
ca_file = "{ca}"
"#,
        data = dir.join("data").display(),
        port = mock.port(),
        syms = syms.join(", "),
        ca = dir.join("tls/ca.pem").display(),
    );
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_trade_exactly_once_over_tls_on_two_cores() {
    every_trade_exactly_once("", &[]);
}

/// With `poll_before_park_us = 0` an idle session waits on glommio (its
/// io_uring poll) and the core parks, instead of waiting in the core's
/// `ppoll` (`conn/kwait.rs`, the default).
#[test]
fn every_trade_exactly_once_parking_through_glommio() {
    every_trade_exactly_once("poll_before_park_us = 0\n", &[]);
}

/// Spinning cores busy-poll their sockets (`conn/busy.rs`) and leave the
/// task queue only when the short preempt timer fires: still every trade
/// once, pings answered, files flushed.
#[test]
fn every_trade_exactly_once_on_spinning_cores() {
    every_trade_exactly_once("spin_before_park_us = 2000\n", &[]);
}

fn every_trade_exactly_once(extra_engine: &str, extra_mock: &[&str]) {
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let n = N.to_string();
    let base = TIME_BASE.to_string();
    let mut args = vec![
        "--trades-per-symbol",
        &n,
        "--malformed-every",
        "1500",
        "--ping-interval-ms",
        "200",
        "--time-base-ms",
        &base,
    ];
    args.extend_from_slice(extra_mock);
    let (mock, mock_addr) = start_mock(&tls, &args);
    // 5 streams, 2 per connection → 3 connections spread over both cores.
    let cfg = write_config(dir.path(), mock_addr, 2, extra_engine);
    let (mut collector, metrics) = start_collector(&cfg);
    let ca = tls.join("ca.pem");

    let total = N * SYMBOLS.len() as u64;
    wait_until("all trades written", Duration::from_secs(120), || {
        let (_, m) = http_get(metrics, "/metrics");
        metric_sum(
            &m,
            "marketprism_messages_written_total",
            &["data_type=\"trade\""],
        ) as u64
            >= total
    });
    // Let a few more pings go by so pong accounting is exercised.
    std::thread::sleep(Duration::from_millis(600));

    let (code, health) = http_get(metrics, "/health");
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(health.contains("\"connections_up\":3"), "{health}");

    let (code, m) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    let stats = https_get(mock_addr, &ca, "/mock/stats");
    assert_eq!(json_u64(&stats, "trades_sent_total"), total, "{stats}");
    let malformed_sent = json_u64(&stats, "malformed_sent");
    assert!(malformed_sent >= 5 * 13, "{stats}");
    assert_eq!(
        metric_sum(
            &m,
            "marketprism_malformed_frames_total",
            &["exchange=\"binance\""]
        ) as u64,
        malformed_sent,
        "every malformed frame the mock sent is counted\n{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "marketprism_messages_parsed_total",
            &["data_type=\"trade\""]
        ) as u64,
        total
    );
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_connected", &[]) as u64,
        3
    );
    assert!(
        metric_sum(&m, "marketprism_websocket_pings_total", &[]) >= 3.0,
        "{m}"
    );
    assert!(metric_sum(&m, "marketprism_bytes_received_total", &[]) > (total * 150) as f64);
    assert!(metric_sum(&m, "marketprism_receive_to_written_seconds_count", &[]) as u64 >= total);
    assert!(metric_sum(&m, "marketprism_arena_high_water_bytes", &[]) > 0.0);
    assert!(metric_sum(&m, "marketprism_process_rss_bytes", &[]) > 1e6);
    assert_eq!(
        metric_sum(&m, "marketprism_receive_to_parsed_seconds_count", &[]) as u64,
        total
    );
    assert!(
        metric_sum(&m, "marketprism_heap_allocations_total", &[]) > 0.0,
        "counting allocator installed"
    );
    // Introspection endpoints: valid JSON with the per-core figures.
    let (code, lat) = http_get(metrics, "/debug/latency");
    assert_eq!(code, 200);
    let lat: sonic_rs::Value = sonic_rs::from_str(&lat).unwrap();
    let cores = lat.get("cores").and_then(|c| c.as_array()).unwrap();
    assert_eq!(cores.len(), 2);
    let parsed_count: u64 = cores
        .iter()
        .map(|c| {
            c.pointer(&["stages", "receive_to_parsed", "count"])
                .and_then(|v| v.as_u64())
                .unwrap()
        })
        .sum();
    assert_eq!(parsed_count, total);
    assert!(cores[0]
        .pointer(&["stages", "receive_to_written", "p99"])
        .and_then(|v| v.as_f64())
        .is_some());
    let (code, mem) = http_get(metrics, "/debug/memory");
    assert_eq!(code, 200);
    let mem: sonic_rs::Value = sonic_rs::from_str(&mem).unwrap();
    assert!(mem.get("rss_bytes").and_then(|v| v.as_u64()).unwrap() > 1_000_000);
    assert!(!mem
        .get("rss_history")
        .and_then(|v| v.as_array())
        .unwrap()
        .is_empty());
    let mcores = mem.get("cores").and_then(|c| c.as_array()).unwrap();
    assert_eq!(mcores.len(), 2);
    assert!(
        mcores[0]
            .get("arena_high_water_bytes")
            .and_then(|v| v.as_i64())
            .unwrap()
            > 0
    );
    // Both cores did work.
    for core in ["core=\"0\"", "core=\"1\""] {
        assert!(
            metric_sum(&m, "marketprism_messages_written_total", &[core]) > 0.0,
            "{core} wrote nothing\n{m}"
        );
    }
    assert_eq!(json_u64(&stats, "pongs_mismatched"), 0, "{stats}");
    assert!(json_u64(&stats, "pongs_received") >= 3, "{stats}");
    assert_eq!(json_u64(&stats, "pong_timeouts"), 0, "{stats}");

    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", collector.output());
    drop(mock);

    let records = read_records(&dir.path().join("data"));
    assert_eq!(records.len() as u64, total);
    let files: HashSet<&str> = records.iter().map(|(f, _)| &f[..6]).collect();
    assert_eq!(
        files,
        HashSet::from(["core00", "core01"]),
        "one file set per core"
    );
    let mut seen: BTreeMap<&str, HashSet<u64>> = BTreeMap::new();
    for (file, r) in &records {
        let s = |k: &str| {
            r.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{k} in {file}"))
        };
        let u = |k: &str| {
            r.get(k)
                .and_then(|v| v.as_u64())
                .unwrap_or_else(|| panic!("{k} in {file}"))
        };
        assert_eq!(s("data_type"), "trade");
        assert_eq!(s("exchange"), "binance");
        assert_eq!(s("market_type"), "spot");
        assert_eq!(s("data_source"), "marketprism");
        let raw = s("raw_symbol");
        let &(_, idx, norm) = SYMBOLS
            .iter()
            .find(|(n, _, _)| *n == raw)
            .expect("known symbol");
        assert_eq!(s("symbol"), norm);
        let id: u64 = s("trade_id").parse().unwrap();
        let want = trade(idx, id, TIME_BASE);
        assert_eq!(s("price"), want.price, "{raw} {id}");
        assert_eq!(s("quantity"), want.quantity, "{raw} {id}");
        assert_eq!(s("side"), if want.is_buyer_maker { "sell" } else { "buy" });
        assert_eq!(
            r.get("is_maker").and_then(|v| v.as_bool()),
            Some(want.is_buyer_maker)
        );
        assert_eq!(u("trade_ts_ms"), want.trade_time_ms);
        assert_eq!(u("ts_ms"), want.event_time_ms);
        let recv = u("receive_ts_ns");
        assert_eq!(u("collected_ts_ms"), recv / 1_000_000);
        assert!(
            seen.entry(norm).or_default().insert(id),
            "duplicate {norm} {id}"
        );
    }
    for (_, _, norm) in SYMBOLS {
        let ids = &seen[norm];
        assert_eq!(ids.len() as u64, N, "{norm}");
        assert_eq!(*ids.iter().min().unwrap(), 1);
        assert_eq!(*ids.iter().max().unwrap(), N);
    }
}

/// SIGTERM while trades are still streaming: everything received is written
/// (each symbol's ids form a gap-free run from the first one received; the
/// mock's market starts before the collector subscribes), and exit is 0.
#[test]
fn sigterm_mid_stream_loses_nothing() {
    sigterm_loses_nothing("inline");
}

/// The same with `sink.write_mode = "offload"`: the write in flight with a
/// kernel worker at SIGTERM lands before exit.
#[test]
fn sigterm_mid_stream_loses_nothing_with_offloaded_writes() {
    sigterm_loses_nothing("offload");
}

/// The same with `sink.write_mode = "direct"`: O_DIRECT writes in flight at
/// SIGTERM land before exit, and the files end at their last line (no
/// padding).
#[test]
fn sigterm_mid_stream_loses_nothing_with_direct_io() {
    sigterm_loses_nothing("direct");
}

fn sigterm_loses_nothing(write_mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (mock, mock_addr) = start_mock(
        &tls,
        &["--rate", "3000", "--time-base-ms", &TIME_BASE.to_string()],
    );
    let cfg = write_config(dir.path(), mock_addr, 3, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("write_mode = \"{write_mode}\"\n");
    let text = text.replace("kind = \"file\"\n", &format!("kind = \"file\"\n{line}"));
    assert!(text.contains(&line));
    std::fs::write(&cfg, text).unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    wait_until("trades flowing", Duration::from_secs(60), || {
        let (_, m) = http_get(metrics, "/metrics");
        metric_sum(&m, "marketprism_messages_written_total", &[]) > 5_000.0
    });
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", collector.output());
    drop(mock);
    let out = collector.output();
    let ring_lines = match write_mode {
        "direct" => out.matches("with O_DIRECT through io_uring").count(),
        "offload" => out.matches("copied by kernel workers on cpus").count(),
        _ => out.matches("through io_uring").count(),
    };
    assert_eq!(
        ring_lines,
        if write_mode == "inline" { 0 } else { 2 },
        "{out}"
    );
    let mut parsed = 0u64;
    let mut written = 0u64;
    for l in out.lines().filter(|l| l.contains("stopped: parsed ")) {
        let nums: Vec<u64> = l
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|x| x.parse().ok())
            .collect();
        // "... core N stopped: parsed P, written W, ..."
        let n = nums.len();
        parsed += nums[n - 3];
        written += nums[n - 2];
    }
    assert!(parsed > 5_000, "{out}");
    assert_eq!(
        parsed, written,
        "records parsed but not written at stop\n{out}"
    );

    let records = read_records(&dir.path().join("data"));
    assert_eq!(records.len() as u64, written);
    for e in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            let b = std::fs::read(&p).unwrap();
            assert!(!b.contains(&0), "zero padding left in {p:?}");
            assert!(b.is_empty() || b.ends_with(b"\n"), "{p:?}");
        }
    }
    let mut ids: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, r) in &records {
        let sym = r
            .get("symbol")
            .and_then(|v| v.as_str())
            .unwrap()
            .to_string();
        let id: u64 = r
            .get("trade_id")
            .and_then(|v| v.as_str())
            .unwrap()
            .parse()
            .unwrap();
        ids.entry(sym).or_default().push(id);
    }
    assert_eq!(ids.len(), SYMBOLS.len());
    for (sym, mut v) in ids {
        v.sort_unstable();
        let first = v[0];
        let n = v.len() as u64;
        assert_eq!(
            v,
            (first..first + n).collect::<Vec<u64>>(),
            "{sym}: gap or duplicate"
        );
    }
}

#[test]
fn unlisted_symbol_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (_mock, mock_addr) = start_mock(&tls, &["--trades-per-symbol", "1"]);
    let cfg = write_config(dir.path(), mock_addr, 2, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"ETHBTC\"", "\"NOPEUSDT\"");
    std::fs::write(&cfg, text).unwrap();
    let mut p = spawn(&["run", "--config", cfg.to_str().unwrap()]);
    let status = p.signal_and_wait(0, Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", p.output());
    assert!(
        p.output().contains("exchanges.binance_spot.symbols[4]"),
        "{}",
        p.output()
    );
}

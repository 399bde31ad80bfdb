//! Fault soak: trades of five venues from the mock exchange into the
//! collector for `SOAK_S` seconds (default 600) while the mock injects random
//! faults: every `FAULT_EVERY_S` (default 20) one of random drops, a stall,
//! garbage + oversized frames, a close notice, a refusal window, failing
//! REST answers or subscriptions dropped server-side (`mute`; trades have a
//! 3 s silence limit), applied for a while then cleared; connections are also
//! rotated by age. At the end the collector stops (SIGTERM) and the output is
//! checked per stream: trades sent in the range seen vs written, lost (not
//! written and not in a `gap` record: must be 0), duplicates (must be 0),
//! reported in gap records, backfilled; availability from the metrics; RSS
//! at start and end. Run: `cargo bench --bench fault_soak` (outside CI).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use sonic_rs::JsonValueTrait;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const VENUES: &[(&str, &str, &str)] = &[
    ("binance_spot", "", "\"BTCUSDT\", \"ETHUSDT\""),
    ("binance_derivatives", "", "\"BTCUSDT\""),
    ("okx_spot", "/ws/v5/public", "\"BTC-USDT\", \"ETH-USDT\""),
    ("deribit_derivatives", "/ws/api/v2", "\"BTC-PERPETUAL\""),
    ("bybit_linear", "/v5/public/linear", "\"BTCUSDT\""),
];

/// Runtime fault settings the soak cycles through (`/mock/conn_fault` and
/// `/mock/rest_fault` queries), each with a name.
const FAULTS: &[(&str, &str)] = &[
    ("random drops", "/mock/conn_fault?drop_random=0.002"),
    ("drop after 300 frames", "/mock/conn_fault?drop_after=300"),
    ("stall", "/mock/conn_fault?stall_after=200"),
    (
        "garbage + oversized",
        "/mock/conn_fault?garbage_every=40&oversized_every=500",
    ),
    (
        "close notice + lifetime",
        "/mock/conn_fault?lifetime_ms=4000&notice_ms=2000",
    ),
    (
        "refuse 3 s + drop",
        "/mock/conn_fault?refuse_ms=3000&drop_after=400",
    ),
    ("REST 500 x5 + drop", "/mock/rest_fault?status=500&count=5"),
    (
        "subscriptions dropped",
        "/mock/conn_fault?mute=BTCUSDT&mute=BTC-USDT&mute=BTC-PERPETUAL",
    ),
];

fn main() {
    let secs = env_u64("SOAK_S", 600).max(30);
    let every = env_u64("FAULT_EVERY_S", 20).max(4);
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (mock, addr) = start_mock(&tls, &["--rate", "100", "--event-rate", "100"]);
    let ca = tls.join("ca.pem");
    let mut text = format!(
        "[engine]\ncores = [0]\nbatch_max_delay_ms = 20\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\npath = \"{}\"\n",
        dir.path().join("data").display()
    );
    for (v, path, syms) in VENUES {
        text.push_str(&format!(
            "[exchanges.{v}]\nws_url = \"wss://localhost:{p}{path}\"\nrest_url = \"https://localhost:{p}\"\n\
             ca_file = \"{ca}\"\nsymbols = [{syms}]\ndata_types = [\"trade\"]\n\
             rotate_after_ms = 45000\nrotation_overlap_ms = 500\nstale_after_ms = 2000\n\
             stream_stale_after_ms = {{ trade = 3000 }}\n",
            p = addr.port(),
            ca = ca.display(),
        ));
    }
    let cfg = dir.path().join("soak.toml");
    std::fs::write(&cfg, text).unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    let rss = || {
        metric_sum(
            &http_get(metrics, "/metrics").1,
            "marketprism_process_rss_bytes",
            &[],
        ) / 1e6
    };
    std::thread::sleep(Duration::from_secs(5));
    let rss_start = rss();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(env_u64("SOAK_SEED", 7));
    println!("fault soak: 5 venues' trades → 1 collector core, {secs} s, a fault every {every} s");
    while started.elapsed() < Duration::from_secs(secs) {
        let (name, q) = FAULTS[rng.usize(..FAULTS.len())];
        let body = https_get(addr, &ca, q);
        assert!(!body.contains("error"), "{q}: {body}");
        std::thread::sleep(Duration::from_secs(every / 2));
        https_get(addr, &ca, "/mock/conn_fault?clear=1");
        https_get(addr, &ca, "/mock/rest_fault?count=0");
        println!(
            "  t={:>4.0} s  {name:<24} RSS {:>5.1} MB",
            started.elapsed().as_secs_f64(),
            rss()
        );
        std::thread::sleep(Duration::from_secs(every - every / 2));
    }
    // Let the last backfills finish, then stop.
    std::thread::sleep(Duration::from_secs(5));
    let rss_end = rss();
    let m = http_get(metrics, "/metrics").1;
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let stats = https_get(addr, &ca, "/mock/stats");
    drop(mock);

    // Per stream: trade numbers written, and ranges reported lost.
    let mut seqs: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    let mut bybit: Vec<String> = Vec::new();
    let mut reported: BTreeMap<(String, String), BTreeSet<u64>> = BTreeMap::new();
    let mut gap_records = 0usize;
    let mut backfilled = 0usize;
    for (_, v) in read_records(&dir.path().join("data")) {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        match v.get("data_type").and_then(|x| x.as_str()) {
            Some("trade") => {
                if v.get("backfilled").and_then(|x| x.as_bool()) == Some(true) {
                    backfilled += 1;
                }
                let (ex, id) = (s("exchange"), s("trade_id"));
                if ex == "bybit" {
                    bybit.push(id);
                    continue;
                }
                let n: u64 = id.parse().unwrap();
                let n = if ex == "deribit" {
                    n % 1_000_000_000
                } else {
                    n
                };
                seqs.entry((format!("{ex}/{}", s("market_type")), s("symbol")))
                    .or_default()
                    .push(n);
            }
            Some("gap") => {
                gap_records += 1;
                if let (Some(a), Some(b)) = (
                    v.get("from_id").and_then(|x| x.as_u64()),
                    v.get("to_id").and_then(|x| x.as_u64()),
                ) {
                    let key = (
                        format!("{}/{}", s("exchange"), s("market_type")),
                        s("symbol"),
                    );
                    reported.entry(key).or_default().extend(a..=b);
                }
            }
            _ => {}
        }
    }
    println!("stream                           sent(range)    written  reported  lost  dupes");
    let (mut total_sent, mut total_written, mut total_lost, mut total_dupes) = (0, 0, 0, 0);
    for (key, ns) in &seqs {
        let set: BTreeSet<u64> = ns.iter().copied().collect();
        let (lo, hi) = (*set.first().unwrap(), *set.last().unwrap());
        let sent = hi - lo + 1;
        let rep = reported.get(key).cloned().unwrap_or_default();
        let lost = (lo..=hi)
            .filter(|n| !set.contains(n) && !rep.contains(n))
            .count() as u64;
        let dupes = (ns.len() - set.len()) as u64;
        let rep_n = rep.range(lo..=hi).count();
        println!(
            "  {:<30} {sent:>10} {:>10} {rep_n:>9} {lost:>5} {dupes:>6}",
            format!("{} {}", key.0, key.1),
            set.len()
        );
        total_sent += sent;
        total_written += set.len() as u64;
        total_lost += lost;
        total_dupes += dupes;
    }
    let bybit_dupes = bybit.len() - bybit.iter().collect::<BTreeSet<_>>().len();
    let up = metric_sum(&m, "marketprism_stream_connected_seconds_total", &[]);
    let planned = metric_sum(&m, "marketprism_stream_planned_seconds_total", &[]);
    println!(
        "numbered trades: sent {total_sent}, written {total_written}, lost {total_lost}, duplicates {total_dupes}; \
         bybit: {} written, {bybit_dupes} duplicates",
        bybit.len()
    );
    println!(
        "gap records {gap_records}, backfilled trades {backfilled}, reconnects {:.0}, rotations {:.0}, stale {:.0}, \
         silent streams renewed {:.0}, malformed {:.0}",
        metric_sum(&m, "marketprism_websocket_reconnections_total", &[]),
        metric_sum(&m, "marketprism_websocket_rotations_total", &[]),
        metric_sum(&m, "marketprism_websocket_stale_total", &[]),
        metric_sum(&m, "marketprism_stream_stale_total", &[]),
        metric_sum(&m, "marketprism_malformed_frames_total", &[]),
    );
    println!(
        "availability {:.2} % ({up:.0} of {planned:.0} stream-seconds); RSS {rss_start:.1} MB → {rss_end:.1} MB",
        if planned > 0.0 { 100.0 * up / planned } else { 0.0 }
    );
    println!(
        "mock faults: {}",
        stats
            .split("\"faults\"")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(240)
            .collect::<String>()
    );
    assert_eq!(total_lost, 0, "trades lost without a gap record");
    assert_eq!(total_dupes + bybit_dupes as u64, 0, "duplicates");
}

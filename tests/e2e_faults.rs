//! Faults an exchange or a network throws, injected by the mock exchange
//! (`--drop-after`, `--lifetime-ms` + `--shutdown-notice-ms`, `--garbage-every`,
//! `--oversized-every`, `--stall-after`, `--refuse-ms`, `/mock/rest_fault`),
//! against `marketprism run` writing files. For every venue whose trades carry
//! a consecutive number (Binance spot and USDⓈ-M, OKX, Deribit) the output
//! must hold each trade from the first to the last exactly once, or a `gap`
//! record must cover the ids the mock made unrecoverable; Bybit (no trade
//! numbers) must hold no duplicate and report each reconnect as a possible gap.

mod common;

use common::*;
use sonic_rs::JsonValueTrait;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// (venue, ws path, symbols, data types).
type VenueSpec = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

const SEQ_VENUES: &[VenueSpec] = &[
    ("binance_spot", "", &["BTCUSDT", "ETHUSDT"], "\"trade\""),
    ("binance_derivatives", "", &["BTCUSDT"], "\"trade\""),
    ("okx_spot", "/ws/v5/public", &["BTC-USDT"], "\"trade\""),
    (
        "deribit_derivatives",
        "/ws/api/v2",
        &["BTC-PERPETUAL"],
        "\"trade\"",
    ),
];
const BYBIT: VenueSpec = (
    "bybit_linear",
    "/v5/public/linear",
    &["BTCUSDT"],
    "\"trade\"",
);

fn write_config(dir: &Path, port: u16, venues: &[VenueSpec], extra: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[engine]\ncores = [0, 1]\nbatch_max_delay_ms = 10\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\nkind = \"file\"\npath = \"{}\"\n",
        dir.join("data").display()
    );
    for (v, path, syms, dts) in venues {
        let syms: Vec<String> = syms.iter().map(|s| format!("\"{s}\"")).collect();
        text.push_str(&format!(
            "[exchanges.{v}]\nws_url = \"wss://localhost:{port}{path}\"\nrest_url = \"https://localhost:{port}\"\n\
             ca_file = \"{ca}\"\nsymbols = [{syms}]\ndata_types = [{dts}]\n{extra}\n",
            ca = dir.join("tls/ca.pem").display(),
            syms = syms.join(", "),
        ));
    }
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The per-instrument consecutive number of a trade record.
fn seq_of(exchange: &str, trade_id: &str) -> u64 {
    let n: u64 = trade_id.parse().unwrap_or_else(|_| panic!("{trade_id}"));
    // Deribit ids are "<instrument><n as 9 digits>"; `trade_seq` is n.
    if exchange == "deribit" {
        n % 1_000_000_000
    } else {
        n
    }
}

/// (exchange, symbol, reason, from_id, to_id) of a `gap` record.
type GapRec = (String, String, String, Option<u64>, Option<u64>);

struct Output {
    /// (exchange, market_type, symbol) → trade numbers in file order.
    seqs: BTreeMap<(String, String, String), Vec<u64>>,
    /// Same key → trade ids of venues without numbers.
    ids: BTreeMap<(String, String, String), Vec<String>>,
    backfilled: usize,
    gaps: Vec<GapRec>,
}

fn output(dir: &Path) -> Output {
    let mut o = Output {
        seqs: BTreeMap::new(),
        ids: BTreeMap::new(),
        backfilled: 0,
        gaps: Vec::new(),
    };
    for (_, v) in read_records(&dir.join("data")) {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        match v.get("data_type").and_then(|x| x.as_str()) {
            Some("trade") => {
                let key = (s("exchange"), s("market_type"), s("symbol"));
                if v.get("backfilled").and_then(|x| x.as_bool()) == Some(true) {
                    o.backfilled += 1;
                }
                if key.0 == "bybit" {
                    o.ids.entry(key).or_default().push(s("trade_id"));
                } else {
                    let n = seq_of(&key.0, &s("trade_id"));
                    o.seqs.entry(key).or_default().push(n);
                }
            }
            Some("gap") if s("reason") != "crash_recovery" => o.gaps.push((
                s("exchange"),
                s("symbol"),
                s("reason"),
                v.get("from_id").and_then(|x| x.as_u64()),
                v.get("to_id").and_then(|x| x.as_u64()),
            )),
            _ => {}
        }
    }
    o
}

/// Every trade number from the first to the last exactly once, except ids a
/// `gap` record of that stream covers (which must then be absent).
fn assert_complete(o: &Output, streams_expected: usize) {
    assert_eq!(
        o.seqs.len(),
        streams_expected,
        "streams: {:?}",
        o.seqs.keys()
    );
    for (key, seqs) in &o.seqs {
        let dupes = seqs.len() - seqs.iter().collect::<BTreeSet<_>>().len();
        assert_eq!(dupes, 0, "{key:?}: {dupes} duplicated trades");
        let (lo, hi) = (*seqs.iter().min().unwrap(), *seqs.iter().max().unwrap());
        assert!(hi - lo > 100, "{key:?}: only {lo}..={hi}");
        let have: BTreeSet<u64> = seqs.iter().copied().collect();
        let covered: BTreeSet<u64> = o
            .gaps
            .iter()
            .filter(|g| g.0 == key.0 && g.1 == key.2)
            .filter_map(|g| Some((g.3?, g.4?)))
            .flat_map(|(a, b)| a..=b)
            .collect();
        let missing: Vec<u64> = (lo..=hi)
            .filter(|n| !have.contains(n) && !covered.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "{key:?}: {} trades missing and not reported, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        let both: Vec<&u64> = covered.intersection(&have).collect();
        assert!(
            both.is_empty(),
            "{key:?}: reported lost but present: {both:?}"
        );
    }
}

fn assert_no_bybit_duplicates(o: &Output) {
    for (key, ids) in &o.ids {
        let n = ids.iter().collect::<BTreeSet<_>>().len();
        assert_eq!(n, ids.len(), "{key:?}: duplicated trades");
        assert!(n > 50, "{key:?}: only {n} trades");
    }
}

struct Run {
    dir: tempfile::TempDir,
    _mock: Proc,
    mock_addr: std::net::SocketAddr,
    collector: Proc,
    metrics: std::net::SocketAddr,
}

fn start(mock_args: &[&str], venues: &[VenueSpec], extra: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let mut args = vec!["--rate", "400", "--event-rate", "400"];
    args.extend_from_slice(mock_args);
    let (mock, mock_addr) = start_mock(&tls, &args);
    let cfg = write_config(dir.path(), mock_addr.port(), venues, extra);
    let (collector, metrics) = start_collector(&cfg);
    Run {
        dir,
        _mock: mock,
        mock_addr,
        collector,
        metrics,
    }
}

impl Run {
    fn metric(&self, name: &str, filters: &[&str]) -> f64 {
        metric_sum(&http_get(self.metrics, "/metrics").1, name, filters)
    }

    /// Runs `secs`, stops the collector (SIGTERM: everything flushed), reads
    /// the files; returns the output and the final metrics.
    fn finish(mut self, secs: u64) -> (Output, String, Run) {
        std::thread::sleep(Duration::from_secs(secs));
        let metrics = http_get(self.metrics, "/metrics").1;
        let st = self
            .collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
        assert!(
            st.success(),
            "collector exit {st:?}:\n{}",
            self.collector.output()
        );
        let out = output(self.dir.path());
        (out, metrics, self)
    }
}

#[test]
fn rotation_by_age_is_gapless_and_duplicate_free() {
    let mut venues = SEQ_VENUES.to_vec();
    venues.push(BYBIT);
    let run = start(
        &[],
        &venues,
        "rotate_after_ms = 1500\nrotation_overlap_ms = 300",
    );
    let (o, m, run) = run.finish(8);
    assert_complete(&o, 5);
    assert_no_bybit_duplicates(&o);
    assert!(o.gaps.is_empty(), "gaps: {:?}", o.gaps);
    assert_eq!(o.backfilled, 0);
    for (v, ..) in &venues {
        let ex = if v.starts_with("binance") {
            "binance"
        } else {
            v.split('_').next().unwrap()
        };
        let rotations = metric_sum(&m, "marketprism_websocket_rotations_total", &[ex]);
        assert!(rotations >= 3.0, "{v}: {rotations} rotations");
    }
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_reconnections_total", &[]),
        0.0
    );
    // Both connections delivered the overlap; one copy was kept.
    assert!(metric_sum(&m, "marketprism_duplicates_dropped_total", &[]) > 0.0);
    // Availability counts stream-seconds: Binance spot's one connection
    // carries 2 streams, so it plans 2 per second; rotations never take a
    // stream down, so only the first connect (slow on a loaded machine) is
    // missing.
    let planned = |f: &[&str]| metric_sum(&m, "marketprism_stream_planned_seconds_total", f);
    let up = |f: &[&str]| metric_sum(&m, "marketprism_stream_connected_seconds_total", f);
    let spot = ["exchange=\"binance\"", "market_type=\"spot\""];
    assert!(
        planned(&spot) >= 6.0 && planned(&spot) % 2.0 == 0.0,
        "{}",
        planned(&spot)
    );
    assert!(
        up(&[]) >= 0.5 * planned(&[]) && up(&[]) <= planned(&[]),
        "{} of {}",
        up(&[]),
        planned(&[])
    );
    drop(run);
}

#[test]
fn venue_close_notices_rotate_before_the_close() {
    // Binance `serverShutdown` and OKX `64008` one second before each close.
    let venues = [SEQ_VENUES[0], SEQ_VENUES[2]];
    let run = start(
        &["--lifetime-ms", "2500", "--shutdown-notice-ms", "1500"],
        &venues,
        "rotation_overlap_ms = 300",
    );
    let (o, m, run) = run.finish(8);
    assert_complete(&o, 3);
    assert!(o.gaps.is_empty(), "gaps: {:?}", o.gaps);
    assert!(
        metric_sum(
            &m,
            "marketprism_websocket_shutdown_notices_total",
            &["binance"]
        ) >= 2.0
    );
    assert!(metric_sum(&m, "marketprism_websocket_shutdown_notices_total", &["okx"]) >= 2.0);
    assert!(metric_sum(&m, "marketprism_websocket_rotations_total", &[]) >= 4.0);
    // Replaced before the venue's close: never a reconnect.
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_reconnections_total", &[]),
        0.0
    );
    drop(run);
}

#[test]
fn dropped_connections_are_backfilled_or_reported() {
    let mut venues = SEQ_VENUES.to_vec();
    venues.push(BYBIT);
    let run = start(&["--drop-after", "500"], &venues, "");
    let (o, m, run) = run.finish(8);
    assert_complete(&o, 5);
    assert_no_bybit_duplicates(&o);
    assert!(metric_sum(&m, "marketprism_websocket_reconnections_total", &[]) >= 5.0);
    let backfilled = metric_sum(&m, "marketprism_trades_backfilled_total", &[]);
    assert!(backfilled > 0.0 && o.backfilled as f64 >= backfilled.min(1.0));
    // The venues with trade numbers lost nothing. The one exception is a drop
    // in the last moments: SIGTERM may cut its backfill short, which must be
    // reported (`backfill_interrupted`, its exact range checked above), once
    // per stream at most.
    let seq_gaps: Vec<_> = o
        .gaps
        .iter()
        .filter(|g| g.0 != "bybit" && g.2 != "backfill_interrupted")
        .collect();
    assert!(seq_gaps.is_empty(), "{seq_gaps:?}");
    let mut interrupted = BTreeSet::new();
    for g in o.gaps.iter().filter(|g| g.2 == "backfill_interrupted") {
        assert!(interrupted.insert((&g.0, &g.1)), "{:?}", o.gaps);
    }
    // Bybit cannot tell what it missed: each reconnect is reported.
    let bybit = o.gaps.iter().filter(|g| g.0 == "bybit").count();
    assert!(bybit >= 1, "no bybit gap record");
    assert!(o
        .gaps
        .iter()
        .all(|g| g.0 != "bybit" || g.2 == "disconnect_unmeasured"));
    drop(run);
}

#[test]
fn failing_history_becomes_exact_gap_records() {
    let venues = [SEQ_VENUES[0]];
    let run = start(&["--drop-after", "1500"], &venues, "");
    wait_until("first trades", Duration::from_secs(20), || {
        run.metric("marketprism_messages_written_total", &[]) > 100.0
    });
    // From now on every REST answer is a 500: history cannot be fetched.
    let ca = run.dir.path().join("tls/ca.pem");
    let body = https_get(
        run.mock_addr,
        &ca,
        "/mock/rest_fault?status=500&count=100000",
    );
    assert!(body.contains("500"), "{body}");
    let (o, m, run) = run.finish(8);
    assert_complete(&o, 2);
    let failed: Vec<_> = o.gaps.iter().filter(|g| g.2 == "backfill_failed").collect();
    assert!(!failed.is_empty(), "{:?}", o.gaps);
    // Metrics are read before SIGTERM; backfills failing during the shutdown
    // grace add records after that.
    let counted = metric_sum(&m, "marketprism_gap_records_total", &[]);
    assert!(
        counted >= 1.0 && o.gaps.len() as f64 >= counted,
        "{counted}"
    );
    assert!(metric_sum(&m, "marketprism_rest_errors_total", &[]) >= 3.0);
    drop(run);
}

#[test]
fn garbage_and_oversized_frames_are_counted_and_skipped() {
    let venues = [SEQ_VENUES[0], SEQ_VENUES[2]];
    let run = start(
        &["--garbage-every", "50", "--oversized-every", "120"],
        &venues,
        "",
    );
    let (o, m, run) = run.finish(6);
    assert_complete(&o, 3);
    assert!(o.gaps.is_empty(), "{:?}", o.gaps);
    let oversized = metric_sum(&m, "marketprism_malformed_frames_total", &["oversized"]);
    assert!(
        oversized >= 2.0,
        "oversized {oversized}: {}",
        m.lines()
            .filter(|l| l.contains("malformed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for reason in ["bad_json", "wrong_type", "invalid_utf8"] {
        let n = metric_sum(&m, "marketprism_malformed_frames_total", &[reason]);
        assert!(n >= 1.0, "{reason}: {n}");
    }
    drop(run);
}

#[test]
fn stalled_and_refused_connections_recover() {
    let venues = [SEQ_VENUES[0], SEQ_VENUES[2]];
    let run = start(
        &["--stall-after", "800", "--refuse-ms", "1500"],
        &venues,
        "stale_after_ms = 1000",
    );
    let (o, m, run) = run.finish(9);
    assert_complete(&o, 3);
    assert!(o.gaps.is_empty(), "{:?}", o.gaps);
    assert!(metric_sum(&m, "marketprism_websocket_stale_total", &[]) >= 2.0);
    assert!(metric_sum(&m, "marketprism_websocket_connect_failures_total", &[]) >= 1.0);
    assert!(metric_sum(&m, "marketprism_trades_backfilled_total", &[]) > 0.0);
    // The refusals carried `Retry-After`: each connection waited it out
    // instead of retrying on its backoff, so none was refused twice.
    let ca = run.dir.path().join("tls/ca.pem");
    let stats: sonic_rs::Value =
        sonic_rs::from_str(&https_get(run.mock_addr, &ca, "/mock/stats")).unwrap();
    let refused = stats["faults"]["refused"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&refused),
        "{refused} refusals for 2 connections"
    );
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_connect_throttled_total", &[]),
        refused as f64
    );
    drop(run);
}

#[test]
fn silent_subscriptions_are_renewed_and_backfilled() {
    // A venue dropping one subscription while the socket stays healthy:
    // that stream alone goes quiet. Its silence limit (1.5 s for trades
    // here, at 400 trades/s) renews that subscription on the same
    // connection; what it missed is backfilled by trade number, or reported
    // for Bybit, whose trades carry none.
    let mut venues = SEQ_VENUES.to_vec();
    venues.push(BYBIT);
    let run = start(&[], &venues, "stream_stale_after_ms = { trade = 1500 }");
    wait_until("first trades", Duration::from_secs(20), || {
        run.metric("marketprism_messages_written_total", &[]) > 500.0
    });
    let ca = run.dir.path().join("tls/ca.pem");
    let muted = [
        ("binance_spot", "BTCUSDT"),
        ("binance_derivatives", "BTCUSDT"),
        ("okx", "BTC-USDT"),
        ("deribit_derivatives", "BTC-PERPETUAL"),
        ("bybit_linear", "BTCUSDT"),
    ];
    for (venue, symbol) in muted {
        let body = https_get(
            run.mock_addr,
            &ca,
            &format!("/mock/conn_fault?venue={venue}&mute={symbol}"),
        );
        assert!(body.contains("\"ok\":true"), "{body}");
    }
    let (o, m, run) = run.finish(7);
    let stats = https_get(run.mock_addr, &ca, "/mock/stats");
    let stats: sonic_rs::Value = sonic_rs::from_str(&stats).unwrap();
    // One subscription per muted stream: Binance spot's ETHUSDT keeps flowing.
    assert_eq!(
        stats["faults"]["muted"].as_u64(),
        Some(muted.len() as u64),
        "{stats}"
    );
    assert_complete(&o, 5);
    assert_no_bybit_duplicates(&o);
    // Trade numbers: every trade the silence cost was fetched back.
    let seq_gaps: Vec<_> = o.gaps.iter().filter(|g| g.0 != "bybit").collect();
    assert!(seq_gaps.is_empty(), "{seq_gaps:?}");
    assert!(o.backfilled > 0);
    let bybit: Vec<_> = o.gaps.iter().filter(|g| g.0 == "bybit").collect();
    assert_eq!(bybit.len(), 1, "{bybit:?}");
    assert_eq!(bybit[0].2, "disconnect_unmeasured");
    // Each muted stream was found silent and renewed once, on its own
    // connection: a quiet stream is not a dead socket.
    for ex in ["binance", "okx", "deribit", "bybit"] {
        let want = if ex == "binance" { 2.0 } else { 1.0 };
        assert_eq!(
            metric_sum(&m, "marketprism_stream_stale_total", &[ex, "trade"]),
            want,
            "{ex}"
        );
    }
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_reconnections_total", &[]),
        0.0
    );
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_stale_total", &[]),
        0.0
    );
    for (venue, symbol) in muted {
        let key = if venue == "okx" { "okx_spot" } else { venue };
        assert_eq!(
            stats["venues"][key]["resubscriptions"][symbol].as_u64(),
            Some(1),
            "{venue}: {stats}"
        );
    }
    drop(run);
}

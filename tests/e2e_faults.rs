//! Faults an exchange or a network throws, injected by the mock exchange,
//! against `marketprism run` writing files, one test per fault:
//!
//! - connections dropped after N frames (`--drop-after`) or at random
//!   (`--drop-random` + `--fault-seed`): backfilled, each drop one reconnect;
//! - the venue's lifetime close with its notice (`--lifetime-ms` +
//!   `--shutdown-notice-ms`: rotated first), without one (a reconnect and a
//!   backfill), or pre-empted by `rotate_after_ms` (rotations only);
//! - rotation by age; garbage and oversized frames (`--garbage-every`,
//!   `--oversized-every`); stalls and refused connects (`--stall-after`,
//!   `--refuse-ms`);
//! - REST faults during backfill (`/mock/rest_fault`): 500s (exact
//!   `backfill_failed` gaps), 429 + `Retry-After` (waited out, then
//!   complete), 418 (no request for minutes; `backfill_interrupted` gaps at
//!   shutdown), held requests (`rest_timeout_ms`, retried, complete).
//!
//! For every venue whose trades carry a consecutive number (Binance spot and
//! USDⓈ-M, OKX, Deribit) the output must hold each trade from the first to
//! the last exactly once, or a `gap` record must cover the ids the mock made
//! unrecoverable; Bybit (no trade numbers) must hold no duplicate and report
//! each reconnect as a possible gap. The mock's `/mock/stats` counts what it
//! injected; the collector's metrics must count the same faults.

mod common;

use common::*;
use sonic_rs::JsonValueTrait;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

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
/// Binance spot with one symbol: one connection, one REST worker, so the
/// mock's request counts are that worker's.
const BINANCE_ONE: VenueSpec = ("binance_spot", "", &["BTCUSDT"], "\"trade\"");
/// Per venue of SEQ_VENUES + BYBIT: its key in `/mock/stats` `venues`, and
/// its `exchange` and `market_type` metric labels.
const LABELS: [(&str, &str, &str); 5] = [
    (
        "binance_spot",
        "exchange=\"binance\"",
        "market_type=\"spot\"",
    ),
    (
        "binance_derivatives",
        "exchange=\"binance\"",
        "market_type=\"perpetual\"",
    ),
    ("okx", "exchange=\"okx\"", "market_type=\"spot\""),
    (
        "deribit_derivatives",
        "exchange=\"deribit\"",
        "market_type=\"perpetual\"",
    ),
    (
        "bybit_linear",
        "exchange=\"bybit\"",
        "market_type=\"perpetual\"",
    ),
];
const RECONNECTS: &str = "marketprism_websocket_reconnections_total";
const HISTORY: &str = "/api/v3/historicalTrades";
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

/// After connection losses on all five venues: every numbered trade once
/// (backfilled), Bybit without duplicates and its gaps `disconnect_unmeasured`.
/// The venues with trade numbers lost nothing; the one exception is a loss
/// in the last moments: SIGTERM may cut its backfill short, which must be
/// reported (`backfill_interrupted`, its exact range checked by
/// `assert_complete`), once per stream at most.
fn assert_backfilled_or_reported(o: &Output, m: &str) {
    assert_complete(o, 5);
    assert_no_bybit_duplicates(o);
    let backfilled = metric_sum(m, "marketprism_trades_backfilled_total", &[]);
    assert!(backfilled > 0.0 && o.backfilled as f64 >= backfilled.min(1.0));
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
    assert!(o
        .gaps
        .iter()
        .all(|g| g.0 != "bybit" || g.2 == "disconnect_unmeasured"));
}

/// With the faults switched off and every reconnect made: each venue's
/// connections at the mock are its planned ones plus its reconnects, each
/// Bybit reconnect is one gap record, and nothing was left unrecovered.
fn assert_settled(o: &Output, m: &str, run: &Run) {
    let stats = run.mock("/mock/stats");
    for (key, ex, mt) in LABELS {
        let opened = stat(&stats, &["venues", key, "connections_total"]).unwrap();
        let planned = metric_sum(m, "marketprism_websocket_planned", &[ex, mt]);
        let reconnects = metric_sum(m, RECONNECTS, &[ex, mt]);
        assert!(planned >= 1.0, "{key}");
        assert_eq!(opened as f64, planned + reconnects, "{key}");
    }
    let bybit_gaps = o.gaps.iter().filter(|g| g.0 == "bybit").count();
    assert_eq!(
        bybit_gaps as f64,
        metric_sum(m, RECONNECTS, &["exchange=\"bybit\""])
    );
    assert!(o.gaps.iter().all(|g| g.0 == "bybit"), "{:?}", o.gaps);
}

/// A number in a `/mock/stats` answer at `path` (`None`: no such key).
fn stat(body: &str, path: &[&str]) -> Option<u64> {
    let v: sonic_rs::Value = sonic_rs::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let mut cur = &v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_u64()
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

    /// A GET of the mock's own endpoints (`/mock/stats`, `/mock/*_fault`).
    fn mock(&self, path: &str) -> String {
        https_get(self.mock_addr, &self.dir.path().join("tls/ca.pem"), path)
    }

    /// A `/mock/stats` counter that must exist.
    fn mock_stat(&self, path: &[&str]) -> u64 {
        let body = self.mock("/mock/stats");
        stat(&body, path).unwrap_or_else(|| panic!("no {path:?} in {body}"))
    }

    /// History requests the mock answered for Binance spot (faulted ones
    /// are not counted here but under `faults`).
    fn history_answered(&self) -> u64 {
        stat(
            &self.mock("/mock/stats"),
            &["venues", "binance_spot", "rest", HISTORY],
        )
        .unwrap_or(0)
    }

    /// Waits for the first trades on file.
    fn wait_trades(&self) {
        wait_until("first trades", Duration::from_secs(20), || {
            self.metric("marketprism_messages_written_total", &[]) > 100.0
        });
    }

    /// Switches the connection faults off; returns how many connections
    /// the mock dropped and closed at their lifetime (final: the mock
    /// applies a change before it serves the next request).
    fn conn_faults_off(&self) -> (u64, u64) {
        let r = self.mock("/mock/conn_fault?clear=1");
        assert!(r.contains("\"ok\":true"), "{r}");
        (
            self.mock_stat(&["faults", "dropped"]),
            self.mock_stat(&["faults", "lifetime_closed"]),
        )
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
    assert!(metric_sum(&m, RECONNECTS, &[]) >= 5.0);
    assert_backfilled_or_reported(&o, &m);
    // Bybit cannot tell what it missed: each reconnect is reported.
    let bybit = o.gaps.iter().filter(|g| g.0 == "bybit").count();
    assert!(bybit >= 1, "no bybit gap record");
    drop(run);
}

#[test]
fn random_drops_are_backfilled_or_reported() {
    let mut venues = SEQ_VENUES.to_vec();
    venues.push(BYBIT);
    // Each data frame ends its connection with probability 1/1000.
    let run = start(
        &["--drop-random", "0.001", "--fault-seed", "7"],
        &venues,
        "",
    );
    std::thread::sleep(Duration::from_secs(5));
    let (dropped, _) = run.conn_faults_off();
    assert!(dropped >= 3, "{dropped} drops");
    // Every drop is one reconnect, no more (the backoff may take a while).
    wait_until("a reconnect per drop", Duration::from_secs(20), || {
        run.metric(RECONNECTS, &[]) >= dropped as f64
    });
    let (o, m, run) = run.finish(1);
    assert_eq!(metric_sum(&m, RECONNECTS, &[]), dropped as f64);
    assert_backfilled_or_reported(&o, &m);
    assert_settled(&o, &m, &run);
    drop(run);
}

#[test]
fn lifetime_close_without_notice_is_a_reconnect_and_a_backfill() {
    let mut venues = SEQ_VENUES.to_vec();
    venues.push(BYBIT);
    // Every connection is closed cleanly 2 s after it opened, unannounced.
    let run = start(&["--lifetime-ms", "2000"], &venues, "");
    std::thread::sleep(Duration::from_secs(5));
    let (dropped, closed) = run.conn_faults_off();
    assert_eq!(dropped, 0);
    assert!(closed >= 5, "{closed} lifetime closes");
    wait_until("a reconnect per close", Duration::from_secs(20), || {
        run.metric(RECONNECTS, &[]) >= closed as f64
    });
    let (o, m, run) = run.finish(1);
    assert_eq!(metric_sum(&m, RECONNECTS, &[]), closed as f64);
    for (key, ex, mt) in LABELS {
        assert!(metric_sum(&m, RECONNECTS, &[ex, mt]) >= 1.0, "{key}");
    }
    assert_eq!(
        metric_sum(&m, "marketprism_websocket_rotations_total", &[]),
        0.0
    );
    assert_eq!(run.mock_stat(&["faults", "notices"]), 0);
    assert_backfilled_or_reported(&o, &m);
    assert_settled(&o, &m, &run);
    drop(run);
}

#[test]
fn rotation_before_the_venue_lifetime_never_reconnects() {
    let mut venues = SEQ_VENUES.to_vec();
    venues.push(BYBIT);
    // The venue closes at 2 s; the collector replaces each connection at 1 s.
    let run = start(
        &["--lifetime-ms", "2000"],
        &venues,
        "rotate_after_ms = 1000\nrotation_overlap_ms = 300",
    );
    let (o, m, run) = run.finish(6);
    assert_complete(&o, 5);
    assert_no_bybit_duplicates(&o);
    assert!(o.gaps.is_empty(), "gaps: {:?}", o.gaps);
    assert_eq!(o.backfilled, 0);
    assert_eq!(metric_sum(&m, RECONNECTS, &[]), 0.0);
    for (key, ex, mt) in LABELS {
        let rotations = metric_sum(&m, "marketprism_websocket_rotations_total", &[ex, mt]);
        assert!(rotations >= 3.0, "{key}: {rotations} rotations");
    }
    // The collector closed every connection before the venue did.
    assert_eq!(run.mock_stat(&["faults", "lifetime_closed"]), 0);
    drop(run);
}

#[test]
fn failing_history_becomes_exact_gap_records() {
    let venues = [SEQ_VENUES[0]];
    let run = start(&["--drop-after", "1500"], &venues, "");
    run.wait_trades();
    // From now on every REST answer is a 500: history cannot be fetched.
    let body = run.mock("/mock/rest_fault?status=500&count=100000");
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

#[test]
fn rate_limited_backfill_waits_for_retry_after() {
    let run = start(&["--drop-after", "600"], &[BINANCE_ONE], "");
    run.wait_trades();
    // The next three REST answers are 429 with `Retry-After: 2` (the
    // collector's own retry delay is 1 s: only the header explains 2 s).
    let r = run.mock("/mock/rest_fault?status=429&count=3&retry_after=2");
    assert!(r.contains("\"status\":429"), "{r}");
    // One drop: one range to backfill, which meets all three.
    wait_until("a drop", Duration::from_secs(10), || {
        run.mock_stat(&["faults", "dropped"]) >= 1
    });
    run.conn_faults_off();
    for served in 1..=3 {
        wait_until("a 429 served", Duration::from_secs(10), || {
            run.mock_stat(&["faults", "rest_errors"]) >= served
        });
        // Nothing reaches the mock while the collector waits (the 0.5 s
        // margin covers this poll's own delay after the 429).
        let seen = Instant::now();
        while seen.elapsed() < Duration::from_millis(1500) {
            assert_eq!(run.mock_stat(&["faults", "rest_errors"]), served);
            assert_eq!(run.history_answered(), 0);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // A rate limit is no failed attempt: the backfill goes on.
    wait_until("history after the wait", Duration::from_secs(5), || {
        run.history_answered() > 0
    });
    let (o, m, run) = run.finish(1);
    assert_complete(&o, 1);
    assert!(o.gaps.is_empty(), "{:?}", o.gaps);
    assert!(o.backfilled > 0);
    assert_eq!(
        metric_sum(&m, "marketprism_rest_rate_limited_total", &[]),
        3.0
    );
    assert_eq!(metric_sum(&m, "marketprism_rest_errors_total", &[]), 3.0);
    // No retry storm: every request sent is one the mock answered or one of
    // the three 429s.
    assert_eq!(run.mock_stat(&["faults", "rest_errors"]), 3);
    assert_eq!(
        metric_sum(&m, "marketprism_rest_requests_total", &[]),
        run.history_answered() as f64 + 3.0
    );
    drop(run);
}

#[test]
fn banned_backfill_asks_nothing_more_and_reports_the_range() {
    let venues = [SEQ_VENUES[0]];
    let run = start(&["--drop-after", "1000"], &venues, "");
    run.wait_trades();
    // The next REST answer is 418 (IP banned): at least 2 minutes of silence.
    let r = run.mock("/mock/rest_fault?status=418&count=1");
    assert!(r.contains("\"status\":418"), "{r}");
    wait_until("the 418 served", Duration::from_secs(15), || {
        run.mock_stat(&["faults", "rest_errors"]) >= 1
    });
    let answered = run.history_answered();
    // More drops, more gaps: none may be asked for.
    std::thread::sleep(Duration::from_secs(3));
    let (dropped, _) = run.conn_faults_off();
    assert!(dropped >= 2, "{dropped} drops");
    let (o, m, run) = run.finish(0);
    assert_eq!(run.history_answered(), answered);
    assert_eq!(run.mock_stat(&["faults", "rest_errors"]), 1);
    assert_eq!(
        metric_sum(&m, "marketprism_rest_rate_limited_total", &[]),
        1.0
    );
    assert_eq!(
        metric_sum(&m, "marketprism_rest_requests_total", &[]),
        answered as f64 + 1.0
    );
    // At SIGTERM the ranges still waiting are reported, exactly (checked
    // against the trades present by `assert_complete`).
    assert_complete(&o, 2);
    assert!(!o.gaps.is_empty());
    assert!(
        o.gaps.iter().all(|g| g.2 == "backfill_interrupted"),
        "{:?}",
        o.gaps
    );
    drop(run);
}

#[test]
fn timed_out_history_requests_are_retried() {
    let run = start(
        &["--drop-after", "1200"],
        &[BINANCE_ONE],
        "rest_timeout_ms = 400",
    );
    run.wait_trades();
    // The next two REST requests get no answer for a minute: only the
    // collector's 400 ms timeout lets the third attempt fetch the history.
    let r = run.mock("/mock/rest_fault?timeout_ms=60000&count=2");
    assert!(r.contains("\"timeout_ms\":60000"), "{r}");
    wait_until("a drop", Duration::from_secs(10), || {
        run.mock_stat(&["faults", "dropped"]) >= 1
    });
    let dropped = Instant::now();
    run.conn_faults_off();
    wait_until("the backfill", Duration::from_secs(5), || {
        run.metric("marketprism_trades_backfilled_total", &[]) > 0.0
    });
    // Two timeouts and two 1 s retry delays.
    assert!(dropped.elapsed() >= Duration::from_secs(2));
    let (o, m, run) = run.finish(1);
    assert_complete(&o, 1);
    assert!(o.gaps.is_empty(), "{:?}", o.gaps);
    assert!(o.backfilled > 0);
    assert_eq!(run.mock_stat(&["faults", "rest_timeouts"]), 2);
    assert_eq!(metric_sum(&m, "marketprism_rest_errors_total", &[]), 2.0);
    assert_eq!(
        metric_sum(&m, "marketprism_rest_requests_total", &[]),
        run.history_answered() as f64 + 2.0
    );
    assert!(
        run.collector.output().contains("timed out after 400ms"),
        "{}",
        run.collector.output()
    );
    drop(run);
}

//! Two scrapes + the time between them → the table (a pure function).
//!
//! Counter rates are per series (`cur − prev`, or `cur` when the counter went
//! backwards, i.e. the collector restarted), summed per `core` label.
//! Latency quantiles come from the histogram bucket deltas between the two
//! scrapes and are shown as the bucket's upper bound ("≤ 5 ms"); with no new
//! observations in between they fall back to the cumulative histogram
//! (marked `*`).

use super::parse::{parse_value, Sample};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

const RECEIVED: &str = "marketprism_messages_received_total";
const WRITTEN: &str = "marketprism_messages_written_total";
const MALFORMED: &str = "marketprism_malformed_frames_total";
const BYTES: &str = "marketprism_bytes_received_total";
const LATENCY_BUCKET: &str = "marketprism_receive_to_written_seconds_bucket";
const BATCHES: &str = "marketprism_batches_flushed_total";
const ARENA: &str = "marketprism_arena_high_water_bytes";
const WS_UP: &str = "marketprism_websocket_connected";
const WS_PLANNED: &str = "marketprism_websocket_planned";
const RSS: &str = "marketprism_process_rss_bytes";
const UPTIME: &str = "marketprism_uptime_seconds";
const NATS_PREFIX: &str = "marketprism_nats_";
const NATS_PUBLISHED: &str = "marketprism_nats_sent_total";
const NATS_ACKED: &str = "marketprism_nats_acked_total";
const NATS_IN_FLIGHT: &str = "marketprism_nats_in_flight";
const NATS_BUFFERED: &str = "marketprism_nats_buffered_records";
const NATS_CONNECTED: &str = "marketprism_nats_connected";
const SPILL: &str = "marketprism_spill_records";

/// What `/health` said.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// HTTP status of the answer.
    pub http_status: u16,
    /// `ok`, `degraded` or `down`.
    pub status: String,
    pub connections_up: i64,
    pub connections_planned: i64,
    pub uptime_s: Option<u64>,
}

/// One scrape: the `/metrics` samples and the `/health` answer (or why
/// there was none).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub samples: Vec<Sample>,
    pub health: Result<Health, String>,
}

impl Snapshot {
    /// A snapshot with nothing in it: as `prev`, rates become averages since
    /// the collector started.
    pub fn empty() -> Snapshot {
        Snapshot {
            samples: Vec::new(),
            health: Err("no scrape".into()),
        }
    }

    /// Value of an unlabelled (or first) sample of `name`.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    }

    pub fn has_nats(&self) -> bool {
        self.samples.iter().any(|s| s.name.starts_with(NATS_PREFIX))
    }
}

/// A `core` label, ordered numerically ("2" < "10"), non-numbers last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Core(u64, String);

impl Core {
    fn new(label: &str) -> Core {
        Core(label.parse().unwrap_or(u64::MAX), label.to_string())
    }
}

/// Series identity: labels in order (a `BTreeMap` iterates sorted).
fn series_key(s: &Sample) -> Vec<(&str, &str)> {
    s.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Increase of a counter series; a decrease means a reset.
fn increase(prev: Option<f64>, cur: f64) -> f64 {
    let d = match prev {
        Some(p) if cur >= p => cur - p,
        _ => cur,
    };
    if d.is_finite() {
        d.max(0.0)
    } else {
        0.0
    }
}

/// Per-core increase of counter `name` between the snapshots.
pub fn increase_by_core(prev: &Snapshot, cur: &Snapshot, name: &str) -> BTreeMap<Core, f64> {
    let before: HashMap<Vec<(&str, &str)>, f64> = prev
        .samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (series_key(s), s.value))
        .collect();
    let mut out = BTreeMap::new();
    for s in cur.samples.iter().filter(|s| s.name == name) {
        let Some(core) = s.label("core") else {
            continue;
        };
        let d = increase(before.get(&series_key(s)).copied(), s.value);
        *out.entry(Core::new(core)).or_insert(0.0) += d;
    }
    out
}

/// Per-core sum of gauge `name` in one snapshot.
pub fn gauge_by_core(snap: &Snapshot, name: &str) -> BTreeMap<Core, f64> {
    let mut out = BTreeMap::new();
    for s in snap.samples.iter().filter(|s| s.name == name) {
        if let (Some(core), true) = (s.label("core"), s.value.is_finite()) {
            *out.entry(Core::new(core)).or_insert(0.0) += s.value;
        }
    }
    out
}

/// Cumulative buckets `(le, count)` per core, sorted by `le`.
pub type Buckets = Vec<(f64, f64)>;

/// Histogram buckets of `name` per core: the increase between the snapshots
/// (`delta`) and the cumulative state of `cur`.
pub fn buckets_by_core(
    prev: &Snapshot,
    cur: &Snapshot,
    name: &str,
) -> BTreeMap<Core, (Buckets, Buckets)> {
    let before: HashMap<Vec<(&str, &str)>, f64> = prev
        .samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (series_key(s), s.value))
        .collect();
    let mut out: BTreeMap<Core, (Buckets, Buckets)> = BTreeMap::new();
    for s in cur.samples.iter().filter(|s| s.name == name) {
        let (Some(core), Some(le)) = (s.label("core"), s.label("le").and_then(parse_value)) else {
            continue;
        };
        if le.is_nan() || !s.value.is_finite() {
            continue;
        }
        let d = increase(before.get(&series_key(s)).copied(), s.value);
        let e = out.entry(Core::new(core)).or_default();
        e.0.push((le, d));
        e.1.push((le, s.value.max(0.0)));
    }
    for (d, c) in out.values_mut() {
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Adds `b` into `a` bucket by bucket (same `le`), keeping order.
pub fn merge_buckets(a: &mut Buckets, b: &Buckets) {
    for &(le, n) in b {
        match a.iter_mut().find(|x| x.0 == le) {
            Some(x) => x.1 += n,
            None => a.push((le, n)),
        }
    }
    a.sort_by(|x, y| x.0.total_cmp(&y.0));
}

/// Upper bound of the bucket holding quantile `q` of cumulative `buckets`
/// (the same rule as the collector: the first bucket reaching
/// `ceil(q × count)`); `None` without observations.
pub fn quantile_bound(buckets: &Buckets, q: f64) -> Option<f64> {
    // Counts are cumulative, so the total is the largest one (the +Inf bucket).
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    let target = (q * total).ceil().max(1.0);
    buckets.iter().find(|b| b.1 >= target).map(|b| b.0)
}

/// "≤ 5 ms", "> 10000 ms" (beyond the last finite bound), "-" for none.
pub fn fmt_bound(buckets: &Buckets, bound: Option<f64>) -> String {
    match bound {
        None => "-".into(),
        Some(b) if b.is_finite() => format!("≤ {} ms", trim_num(b * 1e3)),
        Some(_) => {
            match buckets
                .iter()
                .map(|x| x.0)
                .filter(|x| x.is_finite())
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            {
                Some(last) => format!("> {} ms", trim_num(last * 1e3)),
                None => "+Inf".into(),
            }
        }
    }
}

/// Up to 4 decimals, trailing zeros dropped: 0.0025, 5, 0.5.
fn trim_num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// p50 and p99 cells: the interval's buckets, else the cumulative ones
/// (marked `*`).
fn latency_cells(delta: &Buckets, cumulative: &Buckets) -> (String, String, bool) {
    if quantile_bound(delta, 0.5).is_some() {
        // The trailing space keeps the column aligned with starred cells.
        (
            format!("{} ", fmt_bound(delta, quantile_bound(delta, 0.5))),
            format!("{} ", fmt_bound(delta, quantile_bound(delta, 0.99))),
            false,
        )
    } else {
        let p50 = quantile_bound(cumulative, 0.5);
        let starred = p50.is_some();
        let mark = |s: String| format!("{s}{}", if starred { '*' } else { ' ' });
        (
            mark(fmt_bound(cumulative, p50)),
            mark(fmt_bound(cumulative, quantile_bound(cumulative, 0.99))),
            starred,
        )
    }
}

/// 1536 → "1.5 KiB".
pub fn fmt_bytes(b: f64) -> String {
    if !b.is_finite() {
        return "-".into();
    }
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// 3723 → "1h02m03s"; 90061 → "1d01h01m".
pub fn fmt_uptime(s: u64) -> String {
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else if h > 0 {
        format!("{h}h{m:02}m{sec:02}s")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

fn fmt_rate(x: f64) -> String {
    format!("{x:.1}")
}

fn fmt_int(x: f64) -> String {
    format!("{x:.0}")
}

/// Renders the screen for `cur`, with rates over `elapsed` since `prev`.
pub fn render(url: &str, prev: &Snapshot, cur: &Snapshot, elapsed: Duration) -> String {
    render_with_note(url, prev, cur, elapsed, None)
}

/// [`render`] with an extra note in the header (e.g. "averages since start").
pub fn render_with_note(
    url: &str,
    prev: &Snapshot,
    cur: &Snapshot,
    elapsed: Duration,
    note: Option<&str>,
) -> String {
    let secs = elapsed.as_secs_f64();
    let per_s = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    let mut out = String::with_capacity(4096);

    // Header.
    let ws_up = gauge_by_core(cur, WS_UP);
    let ws_planned = gauge_by_core(cur, WS_PLANNED);
    let (status, conns, uptime) = match &cur.health {
        Ok(h) => (
            h.status.clone(),
            format!("{}/{}", h.connections_up, h.connections_planned),
            h.uptime_s,
        ),
        Err(e) => (
            format!("unknown ({e})"),
            format!(
                "{}/{}",
                fmt_int(ws_up.values().sum()),
                fmt_int(ws_planned.values().sum())
            ),
            None,
        ),
    };
    let uptime = uptime
        .or_else(|| {
            cur.value(UPTIME)
                .filter(|u| u.is_finite() && *u >= 0.0)
                .map(|u| u as u64)
        })
        .map(fmt_uptime)
        .unwrap_or_else(|| "-".into());
    let rss = cur
        .value(RSS)
        .map(|r| format!("{:.1} MiB", r / 1_048_576.0))
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "marketprism top  {url}");
    let _ = writeln!(
        out,
        "health: {status}  uptime: {uptime}  rss: {rss}  connections: {conns}  rates over {secs:.2} s{}",
        note.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    out.push('\n');

    // Per-core table.
    let received = increase_by_core(prev, cur, RECEIVED);
    let written = increase_by_core(prev, cur, WRITTEN);
    let malformed = increase_by_core(prev, cur, MALFORMED);
    let bytes = increase_by_core(prev, cur, BYTES);
    let batches = increase_by_core(prev, cur, BATCHES);
    let arena = gauge_by_core(cur, ARENA);
    let latency = buckets_by_core(prev, cur, LATENCY_BUCKET);

    let mut cores: Vec<Core> = Vec::new();
    for m in [
        &received,
        &written,
        &malformed,
        &bytes,
        &batches,
        &arena,
        &ws_up,
        &ws_planned,
    ] {
        cores.extend(m.keys().cloned());
    }
    cores.extend(latency.keys().cloned());
    cores.sort();
    cores.dedup();

    let get = |m: &BTreeMap<Core, f64>, c: &Core| m.get(c).copied().unwrap_or(0.0);
    let total = |m: &BTreeMap<Core, f64>| m.values().sum::<f64>();

    let _ = writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>11} {:>12} {:>12} {:>12} {:>10} {:>10} {:>7}",
        "core",
        "msgs/s",
        "written/s",
        "malformed/s",
        "bytes/s",
        "r→w p50",
        "r→w p99",
        "batches/s",
        "arena hw",
        "ws"
    );
    let mut any_cumulative = false;
    let empty: (Buckets, Buckets) = (Vec::new(), Vec::new());
    let mut all_delta = Buckets::new();
    let mut all_cum = Buckets::new();
    for c in &cores {
        let (d, cum) = latency.get(c).unwrap_or(&empty);
        merge_buckets(&mut all_delta, d);
        merge_buckets(&mut all_cum, cum);
        let (p50, p99, starred) = latency_cells(d, cum);
        any_cumulative |= starred;
        let _ = writeln!(
            out,
            "{:>5} {:>10} {:>10} {:>11} {:>12} {:>12} {:>12} {:>10} {:>10} {:>7}",
            c.1,
            fmt_rate(per_s(get(&received, c))),
            fmt_rate(per_s(get(&written, c))),
            fmt_rate(per_s(get(&malformed, c))),
            format!("{}/s", fmt_bytes(per_s(get(&bytes, c)))),
            p50,
            p99,
            fmt_rate(per_s(get(&batches, c))),
            fmt_bytes(get(&arena, c)),
            format!(
                "{}/{}",
                fmt_int(get(&ws_up, c)),
                fmt_int(get(&ws_planned, c))
            ),
        );
    }
    let (p50, p99, starred) = latency_cells(&all_delta, &all_cum);
    any_cumulative |= starred;
    let _ = writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>11} {:>12} {:>12} {:>12} {:>10} {:>10} {:>7}",
        "total",
        fmt_rate(per_s(total(&received))),
        fmt_rate(per_s(total(&written))),
        fmt_rate(per_s(total(&malformed))),
        format!("{}/s", fmt_bytes(per_s(total(&bytes)))),
        p50,
        p99,
        fmt_rate(per_s(total(&batches))),
        fmt_bytes(total(&arena)),
        format!("{}/{}", fmt_int(total(&ws_up)), fmt_int(total(&ws_planned))),
    );
    if cores.is_empty() {
        out.push_str("(no per-core metrics in the scrape)\n");
    }
    if any_cumulative {
        out.push_str("* no new latency samples in the interval: cumulative since start\n");
    }

    // NATS table, only when the sink is on.
    if cur.has_nats() {
        let published = increase_by_core(prev, cur, NATS_PUBLISHED);
        let acked = increase_by_core(prev, cur, NATS_ACKED);
        let in_flight = gauge_by_core(cur, NATS_IN_FLIGHT);
        let buffered = gauge_by_core(cur, NATS_BUFFERED);
        let connected = gauge_by_core(cur, NATS_CONNECTED);
        let spill = gauge_by_core(cur, SPILL);
        let mut ncores: Vec<Core> = Vec::new();
        for m in [
            &published, &acked, &in_flight, &buffered, &connected, &spill,
        ] {
            ncores.extend(m.keys().cloned());
        }
        ncores.sort();
        ncores.dedup();
        out.push('\n');
        let _ = writeln!(
            out,
            "{:>5} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "nats", "published/s", "acked/s", "in-flight", "buffered", "connected", "spill"
        );
        for c in &ncores {
            let _ = writeln!(
                out,
                "{:>5} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
                c.1,
                fmt_rate(per_s(get(&published, c))),
                fmt_rate(per_s(get(&acked, c))),
                fmt_int(get(&in_flight, c)),
                fmt_int(get(&buffered, c)),
                fmt_int(get(&connected, c)),
                fmt_int(get(&spill, c)),
            );
        }
        let _ = writeln!(
            out,
            "{:>5} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "total",
            fmt_rate(per_s(total(&published))),
            fmt_rate(per_s(total(&acked))),
            fmt_int(total(&in_flight)),
            fmt_int(total(&buffered)),
            fmt_int(total(&connected)),
            fmt_int(total(&spill)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::parse::parse;

    fn snap(text: &str, health: Result<Health, String>) -> Snapshot {
        Snapshot {
            samples: parse(text),
            health,
        }
    }

    fn health(status: &str, up: i64, planned: i64, uptime: u64) -> Result<Health, String> {
        Ok(Health {
            http_status: 200,
            status: status.into(),
            connections_up: up,
            connections_planned: planned,
            uptime_s: Some(uptime),
        })
    }

    const PREV: &str = r#"# TYPE marketprism_messages_received counter
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="trade",core="0"} 1000
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="mixed",core="0"} 0
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="trade",core="1"} 2000
marketprism_bytes_received_total{exchange="binance",market_type="spot",core="0"} 1000000
marketprism_bytes_received_total{exchange="binance",market_type="spot",core="1"} 0
marketprism_messages_written_total{exchange="binance",market_type="spot",data_type="trade",core="0"} 900
marketprism_messages_written_total{exchange="binance",market_type="spot",data_type="trade",core="1"} 1800
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="bad_json",core="0"} 5
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="oversized",core="0"} 0
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="bad_json",core="1"} 0
marketprism_websocket_connected{exchange="binance",market_type="spot",core="0"} 1
marketprism_websocket_connected{exchange="binance",market_type="spot",core="1"} 1
marketprism_websocket_planned{exchange="binance",market_type="spot",core="0"} 1
marketprism_websocket_planned{exchange="binance",market_type="spot",core="1"} 2
# TYPE marketprism_receive_to_written_seconds histogram
marketprism_receive_to_written_seconds_sum{core="0"} 0.5
marketprism_receive_to_written_seconds_count{core="0"} 200
marketprism_receive_to_written_seconds_bucket{le="0.0005",core="0"} 190
marketprism_receive_to_written_seconds_bucket{le="0.001",core="0"} 195
marketprism_receive_to_written_seconds_bucket{le="0.005",core="0"} 198
marketprism_receive_to_written_seconds_bucket{le="0.01",core="0"} 200
marketprism_receive_to_written_seconds_bucket{le="+Inf",core="0"} 200
marketprism_receive_to_written_seconds_sum{core="1"} 0.1
marketprism_receive_to_written_seconds_count{core="1"} 50
marketprism_receive_to_written_seconds_bucket{le="0.0005",core="1"} 0
marketprism_receive_to_written_seconds_bucket{le="0.001",core="1"} 0
marketprism_receive_to_written_seconds_bucket{le="0.005",core="1"} 50
marketprism_receive_to_written_seconds_bucket{le="0.01",core="1"} 50
marketprism_receive_to_written_seconds_bucket{le="+Inf",core="1"} 50
marketprism_batches_flushed_total{core="0"} 100
marketprism_batches_flushed_total{core="1"} 200
marketprism_arena_high_water_bytes{core="0"} 65536
marketprism_arena_high_water_bytes{core="1"} 131072
marketprism_spill_records{core="0"} 0
marketprism_spill_records{core="1"} 7
marketprism_nats_sent_total{core="0"} 1000
marketprism_nats_sent_total{core="1"} 0
marketprism_nats_acked_total{core="0"} 990
marketprism_nats_acked_total{core="1"} 0
marketprism_process_rss_bytes 52428800
marketprism_uptime_seconds 3721
# EOF
"#;

    /// PREV two seconds later.
    const CUR: &str = r#"# TYPE marketprism_messages_received counter
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="trade",core="0"} 4000
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="mixed",core="0"} 0
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="trade",core="1"} 2600
marketprism_bytes_received_total{exchange="binance",market_type="spot",core="0"} 4145728
marketprism_bytes_received_total{exchange="binance",market_type="spot",core="1"} 2048
marketprism_messages_written_total{exchange="binance",market_type="spot",data_type="trade",core="0"} 3900
marketprism_messages_written_total{exchange="binance",market_type="spot",data_type="trade",core="1"} 2400
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="bad_json",core="0"} 6
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="oversized",core="0"} 0
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="bad_json",core="1"} 0
marketprism_websocket_connected{exchange="binance",market_type="spot",core="0"} 1
marketprism_websocket_connected{exchange="binance",market_type="spot",core="1"} 1
marketprism_websocket_planned{exchange="binance",market_type="spot",core="0"} 1
marketprism_websocket_planned{exchange="binance",market_type="spot",core="1"} 2
# TYPE marketprism_receive_to_written_seconds histogram
marketprism_receive_to_written_seconds_sum{core="0"} 0.9
marketprism_receive_to_written_seconds_count{core="0"} 300
marketprism_receive_to_written_seconds_bucket{le="0.0005",core="0"} 190
marketprism_receive_to_written_seconds_bucket{le="0.001",core="0"} 245
marketprism_receive_to_written_seconds_bucket{le="0.005",core="0"} 297
marketprism_receive_to_written_seconds_bucket{le="0.01",core="0"} 300
marketprism_receive_to_written_seconds_bucket{le="+Inf",core="0"} 300
marketprism_receive_to_written_seconds_sum{core="1"} 0.1
marketprism_receive_to_written_seconds_count{core="1"} 50
marketprism_receive_to_written_seconds_bucket{le="0.0005",core="1"} 0
marketprism_receive_to_written_seconds_bucket{le="0.001",core="1"} 0
marketprism_receive_to_written_seconds_bucket{le="0.005",core="1"} 50
marketprism_receive_to_written_seconds_bucket{le="0.01",core="1"} 50
marketprism_receive_to_written_seconds_bucket{le="+Inf",core="1"} 50
marketprism_batches_flushed_total{core="0"} 120
marketprism_batches_flushed_total{core="1"} 210
marketprism_arena_high_water_bytes{core="0"} 65536
marketprism_arena_high_water_bytes{core="1"} 131072
marketprism_spill_records{core="0"} 0
marketprism_spill_records{core="1"} 7
marketprism_nats_sent_total{core="0"} 1600
marketprism_nats_sent_total{core="1"} 0
marketprism_nats_acked_total{core="0"} 1590
marketprism_nats_acked_total{core="1"} 0
marketprism_nats_in_flight{core="0"} 10
marketprism_nats_in_flight{core="1"} 0
marketprism_nats_buffered_records{core="0"} 12
marketprism_nats_buffered_records{core="1"} 0
marketprism_nats_connected{core="0"} 1
marketprism_nats_connected{core="1"} 0
marketprism_process_rss_bytes 52428800
marketprism_uptime_seconds 3723
# EOF
"#;

    fn line_of<'a>(out: &'a str, first: &str) -> &'a str {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(first))
            .unwrap_or_else(|| panic!("no `{first}` row in\n{out}"))
    }

    /// `cells` appear in `line` in this order.
    fn assert_in_order(line: &str, cells: &[&str]) {
        let mut from = 0;
        for c in cells {
            match line[from..].find(c) {
                Some(i) => from += i + c.len(),
                None => panic!("`{c}` missing (in order) in `{line}`"),
            }
        }
    }

    #[test]
    fn counter_increase_per_core_with_reset() {
        let p = snap(PREV, Err("x".into()));
        let c = snap(CUR, Err("x".into()));
        let r = increase_by_core(&p, &c, RECEIVED);
        assert_eq!(r[&Core::new("0")], 3000.0);
        assert_eq!(r[&Core::new("1")], 600.0);
        // The collector restarted: 2600 → 40 counts as 40.
        let restarted = snap(
            r#"marketprism_messages_received_total{data_type="trade",core="1"} 40"#,
            Err("x".into()),
        );
        let before = snap(
            r#"marketprism_messages_received_total{data_type="trade",core="1"} 2600"#,
            Err("x".into()),
        );
        assert_eq!(
            increase_by_core(&before, &restarted, RECEIVED)[&Core::new("1")],
            40.0
        );
        // Numeric core order: 2 before 10.
        let many = snap("x{core=\"10\"} 1\nx{core=\"2\"} 1\n", Err("x".into()));
        let keys: Vec<String> = gauge_by_core(&many, "x").into_keys().map(|c| c.1).collect();
        assert_eq!(keys, ["2", "10"]);
    }

    #[test]
    fn quantiles_from_bucket_deltas() {
        let p = snap(PREV, Err("x".into()));
        let c = snap(CUR, Err("x".into()));
        let b = buckets_by_core(&p, &c, LATENCY_BUCKET);
        let (delta, cum) = &b[&Core::new("0")];
        assert_eq!(
            delta,
            &vec![
                (0.0005, 0.0),
                (0.001, 50.0),
                (0.005, 99.0),
                (0.01, 100.0),
                (f64::INFINITY, 100.0)
            ]
        );
        // 100 new samples: the 50th is in ≤ 1 ms, the 99th in ≤ 5 ms, the 100th in ≤ 10 ms.
        assert_eq!(quantile_bound(delta, 0.5), Some(0.001));
        assert_eq!(quantile_bound(delta, 0.99), Some(0.005));
        assert_eq!(quantile_bound(delta, 1.0), Some(0.01));
        // Cumulative: 150th of 300 is in ≤ 0.5 ms.
        assert_eq!(quantile_bound(cum, 0.5), Some(0.0005));
        // The 297th of 300 is in ≤ 5 ms.
        assert_eq!(quantile_bound(cum, 0.99), Some(0.005));
        // Core 1 had no new samples.
        let (d1, c1) = &b[&Core::new("1")];
        assert_eq!(quantile_bound(d1, 0.5), None);
        assert_eq!(quantile_bound(c1, 0.5), Some(0.005));
        // A quantile beyond the last finite bound.
        let tail: Buckets = vec![(0.01, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile_bound(&tail, 0.5), Some(f64::INFINITY));
        assert_eq!(fmt_bound(&tail, quantile_bound(&tail, 0.5)), "> 10 ms");
        assert_eq!(fmt_bound(&tail, Some(0.0000025)), "≤ 0.0025 ms");
        assert_eq!(fmt_bound(&tail, None), "-");
    }

    #[test]
    fn formats_units() {
        assert_eq!(fmt_bytes(512.0), "512 B");
        assert_eq!(fmt_bytes(1_572_864.0), "1.5 MiB");
        assert_eq!(fmt_bytes(65536.0), "64.0 KiB");
        assert_eq!(fmt_uptime(3723), "1h02m03s");
        assert_eq!(fmt_uptime(90_061), "1d01h01m");
        assert_eq!(fmt_uptime(59), "59s");
        assert_eq!(trim_num(0.5), "0.5");
        assert_eq!(trim_num(10_000.0), "10000");
    }

    #[test]
    fn renders_known_pair() {
        let p = snap(PREV, health("degraded", 2, 3, 3721));
        let c = snap(CUR, health("degraded", 2, 3, 3723));
        let out = render("http://127.0.0.1:9092", &p, &c, Duration::from_secs(2));
        assert!(
            out.starts_with("marketprism top  http://127.0.0.1:9092\n"),
            "{out}"
        );
        assert_in_order(
            &out,
            &[
                "health: degraded",
                "uptime: 1h02m03s",
                "rss: 50.0 MiB",
                "connections: 2/3",
                "rates over 2.00 s",
            ],
        );
        assert!(!out.contains('\x1b'));
        // core 0: 3000 frames, 3000 records, 1 malformed, 3 MiB, 20 batches in 2 s.
        assert_in_order(
            line_of(&out, "0"),
            &[
                "1500.0",
                "1500.0",
                "0.5",
                "1.5 MiB/s",
                "≤ 1 ms",
                "≤ 5 ms",
                "10.0",
                "64.0 KiB",
                "1/1",
            ],
        );
        // core 1: no new latency samples → cumulative, starred.
        assert_in_order(
            line_of(&out, "1"),
            &[
                "300.0",
                "300.0",
                "0.0",
                "1.0 KiB/s",
                "≤ 5 ms*",
                "≤ 5 ms*",
                "5.0",
                "128.0 KiB",
                "1/2",
            ],
        );
        assert_in_order(
            line_of(&out, "total"),
            &[
                "1800.0",
                "1800.0",
                "0.5",
                "1.5 MiB/s",
                "≤ 1 ms",
                "≤ 5 ms",
                "15.0",
                "192.0 KiB",
                "2/3",
            ],
        );
        assert!(out.contains("* no new latency samples"));
        // NATS table.
        let nats = &out[out.find("published/s").expect("nats table")..];
        assert_in_order(
            line_of(nats, "0"),
            &["300.0", "300.0", "10", "12", "1", "0"],
        );
        assert_in_order(line_of(nats, "1"), &["0.0", "0.0", "0", "0", "0", "7"]);
        assert_in_order(
            line_of(nats, "total"),
            &["300.0", "300.0", "10", "12", "1", "7"],
        );
    }

    #[test]
    fn renders_without_nats_health_or_samples() {
        let no_nats: String = CUR
            .lines()
            .filter(|l| !l.contains("nats_"))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = snap(&no_nats, Err("http://h:1/health: timed out".into()));
        let out = render(
            "http://h:1",
            &Snapshot::empty(),
            &c,
            Duration::from_secs(3723),
        );
        assert!(!out.contains("published/s"), "{out}");
        assert!(out.contains("health: unknown (http://h:1/health: timed out)"));
        // Connections from the websocket gauges, uptime from the metric.
        assert!(out.contains("connections: 2/3"));
        assert!(out.contains("uptime: 1h02m03s"));
        // Odd input never panics, and an empty scrape still renders.
        let junk = snap("}{\n\u{0}\nx{core=\"a\"} NaN\n", Err("x".into()));
        let out = render("u", &junk, &junk, Duration::ZERO);
        assert!(out.contains("total"));
        let out = render("u", &Snapshot::empty(), &Snapshot::empty(), Duration::ZERO);
        assert!(out.contains("(no per-core metrics in the scrape)"));
    }
}

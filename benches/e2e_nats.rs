//! End-to-end to NATS: mock (CPU 1) → TLS → collector (1 core, CPU 0) →
//! nats-server on loopback. Scenarios: JetStream (file storage, acked,
//! pipelined) and core NATS (no ack). Prints records/s on the collector core,
//! the collector core's busy share (idle = the collector is not the
//! bottleneck), where the rest of the machine's CPU went (nats-server, mock,
//! machine-wide busy share), publish→ack and receive→acked latency
//! quantiles and CPU per 100k records.
//! Also runs the file sink in the same round and prints each NATS target's
//! CPU per record as a ratio of the file sink's, at full speed and paced.
//! Run: `cargo bench --bench e2e_nats` (needs nats-server on PATH or /usr/sbin).
//!
//! Environment: `E2E_TRADES` (per symbol, default 200000), `E2E_SYMBOLS` (default 5),
//! `E2E_PACED_RATE` (per symbol, default 4000), `E2E_PACED_SECS` (default 5),
//! `E2E_ROUNDS` (default 1; odd rounds reverse the order), `E2E_TARGETS`
//! (comma-separated subset of `file,js,core`, default all three; the ratio
//! lines need `file`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::time::{Duration, Instant};

fn quantile(metrics: &str, family: &str, want: f64) -> String {
    quantile_of(metrics, family, want, 1e3, "ms")
}

/// Stream storage: `E2E_NATS_STORAGE=memory` takes the server's disk out of the
/// measurement (default `file`, MarketPrism's).
fn storage() -> &'static str {
    match std::env::var("E2E_NATS_STORAGE").as_deref() {
        Ok("memory") => "memory",
        _ => "file",
    }
}

/// Where the collector's records go: the file sink (the baseline the NATS
/// targets are ratios of), JetStream with acks, or core NATS (no ack).
#[derive(Clone, Copy, PartialEq)]
enum Target {
    File,
    JetStream,
    Core,
}

impl Target {
    fn label(self) -> String {
        match self {
            Target::File => "file sink".into(),
            Target::JetStream => format!("JetStream ({} storage, acked)", storage()),
            Target::Core => "core NATS (no ack)".into(),
        }
    }

    /// The counter that says a record reached this target.
    fn family(self) -> &'static str {
        match self {
            Target::File => "marketprism_messages_written_total",
            Target::JetStream => "marketprism_nats_acked_total",
            Target::Core => "marketprism_nats_sent_total",
        }
    }
}

/// Collector config: one core, the target's sink only.
fn config(
    dir: &tempfile::TempDir,
    np: u16,
    mock_port: u16,
    syms: &[String],
    t: Target,
) -> std::path::PathBuf {
    let cfg = dir.path().join("c.toml");
    let sink = match t {
        Target::File => String::new(),
        Target::JetStream | Target::Core => format!(
            "kind=\"nats\"\n[sink.nats]\nservers=[\"nats://127.0.0.1:{np}\"]\nstorage=\"{}\"\n{}\n",
            storage(),
            if t == Target::Core {
                "core_nats_data_types=[\"trade\"]"
            } else {
                ""
            }
        ),
    };
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0]\n[http]\nlisten=\"127.0.0.1:0\"\n[sink]\npath=\"{}\"\n{sink}\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
             symbols=[{}]\ndata_types=[\"trade\"]\nca_file=\"{}\"\n",
            dir.path().join("data").display(),
            syms.join(","),
            dir.path().join("tls/ca.pem").display(),
            p = mock_port,
        ),
    )
    .unwrap();
    cfg
}

fn symbols(nsym: usize) -> Vec<String> {
    let names = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "ETHBTC",
    ];
    names[..nsym].iter().map(|s| format!("\"{s}\"")).collect()
}

fn bench_dir() -> tempfile::TempDir {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    tempfile::tempdir_in(base).unwrap()
}

/// Full speed: the mock sends `per_symbol` trades per symbol as fast as it
/// can. Returns the collector's process CPU per record in µs, over the
/// records that reached the target between the first and the last sample.
fn scenario(t: Target, per_symbol: u64, nsym: usize) -> f64 {
    let syms = symbols(nsym);
    let total = per_symbol * nsym as u64;
    let dir = bench_dir();
    let (np, mp) = (free_port(), free_port());
    let nats = (t != Target::File).then(|| start_nats(np, mp, &dir.path().join("js")));
    let n = per_symbol.to_string();
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--trades-per-symbol", &n, "--rate", "0", "--core", "1"],
    );
    let cfg = config(&dir, np, addr.port(), &syms, t);
    let (mut collector, metrics) = start_collector(&cfg);
    let pid = collector.child.id();
    let nats_pid = nats.as_ref().map(|n| n.child.id());
    let mock_pid = mock.child.id();
    let cpus = || {
        [
            cpu_seconds(pid),
            nats_pid.map(cpu_seconds).unwrap_or(0.0),
            cpu_seconds(mock_pid),
        ]
    };
    let mut first: Option<(Instant, [f64; 3], MachineCpu, u64)> = None;
    let mut last;
    let mut done;
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        last = http_get(metrics, "/metrics").1;
        done = metric_sum(&last, t.family(), &[]) as u64;
        if done > 0 && first.is_none() {
            first = Some((Instant::now(), cpus(), MachineCpu::now(), done));
        }
        if done >= total {
            break;
        }
        assert!(Instant::now() < end, "timed out");
        // Each scrape costs the collector CPU: poll at 1 % of the elapsed span
        // (at least 5 ms), so the span stays within about 1 % and the scrapes'
        // share does not grow with a slow target's longer run.
        let since = first.as_ref().map_or(Duration::ZERO, |f| f.0.elapsed());
        std::thread::sleep((since / 100).max(Duration::from_millis(5)));
    }
    let (t0, c0, m0, d0) = first.unwrap_or((Instant::now(), cpus(), MachineCpu::now(), 0));
    let span = t0.elapsed().as_secs_f64().max(1e-9);
    let c1 = cpus();
    let machine = MachineCpu::now().busy_since(&m0);
    let cpu = c1[0] - c0[0];
    let counted = (done - d0).max(1);
    let (cpu_nats, cpu_mock) = (c1[1] - c0[1], c1[2] - c0[2]);
    let stored = if t == Target::JetStream {
        stream_messages(mp, "MARKET_DATA")
    } else {
        0
    };
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
            .code(),
        Some(0)
    );
    drop(mock);
    drop(nats);
    println!(
        "{} at full speed: {nsym} symbols x {per_symbol} trades = {total}",
        t.label()
    );
    println!(
        "  records/s          {:.0} on one collector core ({:.2} s)",
        counted as f64 / span,
        span
    );
    println!(
        "  collector core     busy {:.0} %, idle {:.0} % of the span; CPU {:.1} ms per 100k records",
        (cpu / span * 100.0).min(100.0),
        (100.0 - cpu / span * 100.0).max(0.0),
        cpu / counted as f64 * 1e5 * 1e3
    );
    println!(
        "  where the CPU went nats-server {:.0} %, mock {:.0} % (of one vCPU); machine busy {:.0} % of its {} vCPUs",
        cpu_nats / span * 100.0,
        cpu_mock / span * 100.0,
        machine.0 * 100.0,
        machine.1
    );
    // What one collector core would carry at this CPU cost were the server
    // not the limit (the collector's own cost per record, measured above).
    println!(
        "  collector capacity {:.0} records/s per core at this CPU cost",
        counted as f64 / cpu.max(1e-9)
    );
    if t == Target::JetStream {
        println!(
            "  publish→ack        p50 {}  p99 {}  p99.9 {}",
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.5),
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.99),
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.999)
        );
        receive_to_acked(None, &last);
        println!("  stream holds       {stored} messages");
        // A run far slower than the others is reconnects and resends:
        // say so, with the collector's own words.
        let m = |f| metric_sum(&last, f, &[]) as u64;
        println!(
            "  resent {}, duplicates {}, reconnects {}, publish errors {}, spilled {}",
            m("marketprism_nats_resent_total"),
            m("marketprism_nats_duplicates_total"),
            m("marketprism_nats_reconnects_total"),
            m("marketprism_nats_publish_errors_total"),
            m("marketprism_spilled_records_total"),
        );
        for l in collector
            .output()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(5)
        {
            println!("  collector said     {l}");
        }
    }
    println!(
        "  receive→handed     p50 {}  p99 {} (batch delay 20 ms)",
        quantile(&last, "marketprism_receive_to_written_seconds", 0.5),
        quantile(&last, "marketprism_receive_to_written_seconds", 0.99)
    );
    cpu / counted as f64 * 1e6
}

/// Machine-wide CPU time from `/proc/stat`: (busy, total) jiffies, vCPUs.
struct MachineCpu(u64, u64, usize);

impl MachineCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let n = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        let f: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: u64 = f.iter().take(8).sum();
        // idle + iowait are not busy.
        let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
        MachineCpu(total - idle, total, n)
    }

    /// Busy share of the machine since `before`, and its vCPU count.
    fn busy_since(&self, before: &MachineCpu) -> (f64, usize) {
        let total = self.1.saturating_sub(before.1).max(1);
        (
            self.0.saturating_sub(before.0) as f64 / total as f64,
            self.2,
        )
    }
}

/// Below saturation: the mock paced at `rate` per symbol for `secs`, to
/// read CPU per record and latencies that are not queueing. Returns the
/// collector's process CPU per record in µs.
fn paced(t: Target, rate: u64, nsym: usize, secs: u64) -> f64 {
    let syms = symbols(nsym);
    let dir = bench_dir();
    let (np, mp) = (free_port(), free_port());
    let nats = (t != Target::File).then(|| start_nats(np, mp, &dir.path().join("js")));
    let r = rate.to_string();
    let (mock, addr) = start_mock(&dir.path().join("tls"), &["--rate", &r, "--core", "1"]);
    let cfg = config(&dir, np, addr.port(), &syms, t);
    let (mut collector, metrics) = start_collector(&cfg);
    let pid = collector.child.id();
    let done = || metric_sum(&http_get(metrics, "/metrics").1, t.family(), &[]);
    wait_until("first records", Duration::from_secs(30), || done() > 0.0);
    // One second for every stream to reach its pace before measuring.
    std::thread::sleep(Duration::from_secs(1));
    let first = http_get(metrics, "/metrics").1;
    let (c0, a0) = (cpu_seconds(pid), metric_sum(&first, t.family(), &[]));
    std::thread::sleep(Duration::from_secs(secs));
    let last = http_get(metrics, "/metrics").1;
    let n = (metric_sum(&last, t.family(), &[]) - a0).max(1.0);
    let cpu = cpu_seconds(pid) - c0;
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(30))
            .code(),
        Some(0)
    );
    drop(mock);
    drop(nats);
    println!(
        "{} paced at {} records/s ({nsym} symbols x {rate}/s), {secs} s:",
        t.label(),
        rate * nsym as u64
    );
    println!(
        "  reached target     {:.0} records/s; collector busy {:.0} %; CPU {:.2} µs per record",
        n / secs as f64,
        cpu / secs as f64 * 100.0,
        cpu / n * 1e6
    );
    println!(
        "  receive→handed     p50 {}  p99 {}",
        quantile(&last, "marketprism_receive_to_written_seconds", 0.5),
        quantile(&last, "marketprism_receive_to_written_seconds", 0.99)
    );
    if t == Target::JetStream {
        println!(
            "  handed→acked       p50 {}  p99 {}",
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.5),
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.99)
        );
        // Over the measured window (start-up, when records wait for the
        // connection, left out).
        receive_to_acked(Some(&first), &last);
    }
    let _ = mp;
    cpu / n * 1e6
}

/// Receive → acked per record, from the collector's
/// `marketprism_nats_receive_ack_seconds` histogram (each record's
/// `receive_ts_ns` to its PubAck, wall clock): bucket upper bounds over the
/// records acked between the scrapes `before` (None: since start) and `after`.
fn receive_to_acked(before: Option<&str>, after: &str) {
    let f = "marketprism_nats_receive_ack_seconds";
    let mut b = histogram_buckets(after, f);
    if let Some(before) = before {
        let b0 = histogram_buckets(before, f);
        for (x, n0) in b.iter_mut().zip(b0) {
            x.1 -= n0.1;
        }
    }
    let n = b.last().map_or(0.0, |x| x.1);
    if n <= 0.0 && std::env::var_os("MARKETPRISM_BIN").is_some() {
        println!("  receive→acked      n/a (this MARKETPRISM_BIN does not expose {f})");
        return;
    }
    assert!(n > 0.0, "{f}: no record timed in the window");
    let q = |want: f64| {
        let target = (want * n).ceil();
        b.iter()
            .find(|x| x.1 >= target)
            .map_or("n/a".into(), |x| format!("≤ {:.3} ms", x.0 * 1e3))
    };
    println!(
        "  receive→acked      p50 {}  p90 {}  p99 {}  p99.9 {} ({n} records)",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999)
    );
}

/// Prints each NATS target's CPU per record as a ratio of the file sink's
/// in the same round.
fn ratios(what: &str, file: f64, js: f64, core: f64) {
    println!(
        "{what}: collector CPU per record file {file:.2} µs, JetStream {js:.2} µs ({:.2}× file), core NATS {core:.2} µs ({:.2}× file)",
        js / file.max(1e-9),
        core / file.max(1e-9)
    );
}

/// Whether `E2E_TARGETS` (default: all) lists `t`.
fn wanted(t: Target) -> bool {
    let name = match t {
        Target::File => "file",
        Target::JetStream => "js",
        Target::Core => "core",
    };
    std::env::var("E2E_TARGETS").map_or(true, |v| v.split(',').any(|x| x.trim() == name))
}

fn main() {
    let per_symbol = env_u64("E2E_TRADES", 200_000);
    let nsym = env_u64("E2E_SYMBOLS", 5).clamp(1, 8) as usize;
    // Per symbol; 4 000 x 5 symbols = 20 000 records/s.
    let rate = env_u64("E2E_PACED_RATE", 4000);
    let secs = env_u64("E2E_PACED_SECS", 5);
    // Rounds alternate the order (file first, then last) against drift on
    // a shared machine.
    for round in 0..env_u64("E2E_ROUNDS", 1) {
        let mut order: Vec<Target> = [Target::File, Target::JetStream, Target::Core]
            .into_iter()
            .filter(|t| wanted(*t))
            .collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut full = [0.0; 3];
        let mut pace = [0.0; 3];
        for &t in &order {
            full[t as usize] = scenario(t, per_symbol, nsym);
        }
        for &t in &order {
            pace[t as usize] = paced(t, rate, nsym, secs);
        }
        ratios(
            &format!("round {round} full speed"),
            full[0],
            full[1],
            full[2],
        );
        ratios(
            &format!("round {round} paced {}/s", rate * nsym as u64),
            pace[0],
            pace[1],
            pace[2],
        );
    }
}

//! End-to-end to NATS: mock (CPU 1) → TLS → collector (1 core, CPU 0) →
//! nats-server on loopback. Two scenarios: JetStream (file storage, acked,
//! pipelined) and core NATS (no ack). Prints records/s on the collector core,
//! the collector core's busy share (idle = the collector is not the
//! bottleneck), where the rest of the machine's CPU went (nats-server, mock,
//! machine-wide busy share), publish→ack latency quantiles and CPU per 100k
//! records.
//! Run: `cargo bench --bench e2e_nats` (needs nats-server on PATH or /usr/sbin).
//!
//! Environment: `E2E_TRADES` (per symbol, default 200000), `E2E_SYMBOLS` (default 5).

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

/// Collector config: one core, NATS sink only, `extra` lines in `[sink.nats]`.
fn nats_config(
    dir: &tempfile::TempDir,
    np: u16,
    mock_port: u16,
    syms: &[String],
    extra: &str,
) -> std::path::PathBuf {
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0]\n[http]\nlisten=\"127.0.0.1:0\"\n[sink]\nkind=\"nats\"\npath=\"{}\"\n\
             [sink.nats]\nservers=[\"nats://127.0.0.1:{np}\"]\nstorage=\"{storage}\"\n{extra}\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
             symbols=[{}]\ndata_types=[\"trade\"]\nca_file=\"{}\"\n",
            dir.path().join("data").display(),
            syms.join(","),
            dir.path().join("tls/ca.pem").display(),
            p = mock_port,
            storage = storage(),
        ),
    )
    .unwrap();
    cfg
}

fn scenario(name: &str, jetstream_ack: bool, per_symbol: u64, nsym: usize) {
    let names = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "ETHBTC",
    ];
    let syms: Vec<String> = names[..nsym].iter().map(|s| format!("\"{s}\"")).collect();
    let total = per_symbol * nsym as u64;
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let (np, mp) = (free_port(), free_port());
    let nats = start_nats(np, mp, &dir.path().join("js"));
    let n = per_symbol.to_string();
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--trades-per-symbol", &n, "--rate", "0", "--core", "1"],
    );
    let core_types = if jetstream_ack {
        ""
    } else {
        "core_nats_data_types=[\"trade\"]"
    };
    let cfg = nats_config(&dir, np, addr.port(), &syms, core_types);
    let (mut collector, metrics) = start_collector(&cfg);
    let pid = collector.child.id();
    let (nats_pid, mock_pid) = (nats.child.id(), mock.child.id());
    let cpus = || {
        [
            cpu_seconds(pid),
            cpu_seconds(nats_pid),
            cpu_seconds(mock_pid),
        ]
    };
    let family = if jetstream_ack {
        "marketprism_nats_acked_total"
    } else {
        "marketprism_nats_sent_total"
    };
    let mut first: Option<(Instant, [f64; 3], MachineCpu)> = None;
    let mut last;
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        last = http_get(metrics, "/metrics").1;
        let done = metric_sum(&last, family, &[]) as u64;
        if done > 0 && first.is_none() {
            first = Some((Instant::now(), cpus(), MachineCpu::now()));
        }
        if done >= total {
            break;
        }
        assert!(Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (t0, c0, m0) = first.unwrap_or((Instant::now(), cpus(), MachineCpu::now()));
    let span = t0.elapsed().as_secs_f64().max(1e-9);
    let c1 = cpus();
    let machine = MachineCpu::now().busy_since(&m0);
    let cpu = c1[0] - c0[0];
    let (cpu_nats, cpu_mock) = (c1[1] - c0[1], c1[2] - c0[2]);
    let stored = if jetstream_ack {
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
    println!("{name}: {nsym} symbols x {per_symbol} trades = {total}");
    println!(
        "  records/s          {:.0} {} on one collector core ({:.2} s)",
        total as f64 / span,
        if jetstream_ack { "acked" } else { "published" },
        span
    );
    println!(
        "  collector core     busy {:.0} %, idle {:.0} % of the span; CPU {:.1} ms per 100k records",
        (cpu / span * 100.0).min(100.0),
        (100.0 - cpu / span * 100.0).max(0.0),
        cpu / total as f64 * 1e5 * 1e3
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
        total as f64 / cpu.max(1e-9)
    );
    if jetstream_ack {
        println!(
            "  publish→ack        p50 {}  p99 {}  p99.9 {}",
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.5),
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.99),
            quantile(&last, "marketprism_nats_publish_ack_seconds", 0.999)
        );
        println!("  stream holds       {stored} messages");
    }
    println!(
        "  receive→handed     p50 {}  p99 {} (batch delay 20 ms)",
        quantile(&last, "marketprism_receive_to_written_seconds", 0.5),
        quantile(&last, "marketprism_receive_to_written_seconds", 0.99)
    );
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

/// JetStream below saturation: the mock paced at `rate` per symbol for
/// `secs`, to read latencies that are not queueing.
fn paced(rate: u64, nsym: usize, secs: u64) {
    let names = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "ETHBTC",
    ];
    let syms: Vec<String> = names[..nsym].iter().map(|s| format!("\"{s}\"")).collect();
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::tempdir_in(base).unwrap();
    let (np, mp) = (free_port(), free_port());
    let nats = start_nats(np, mp, &dir.path().join("js"));
    let r = rate.to_string();
    let (mock, addr) = start_mock(&dir.path().join("tls"), &["--rate", &r, "--core", "1"]);
    let cfg = nats_config(&dir, np, addr.port(), &syms, "");
    let (mut collector, metrics) = start_collector(&cfg);
    let pid = collector.child.id();
    wait_until("first acks", Duration::from_secs(30), || {
        metric_sum(
            &http_get(metrics, "/metrics").1,
            "marketprism_nats_acked_total",
            &[],
        ) > 0.0
    });
    let c0 = cpu_seconds(pid);
    let a0 = metric_sum(
        &http_get(metrics, "/metrics").1,
        "marketprism_nats_acked_total",
        &[],
    );
    std::thread::sleep(Duration::from_secs(secs));
    let last = http_get(metrics, "/metrics").1;
    let acked = metric_sum(&last, "marketprism_nats_acked_total", &[]) - a0;
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
        "JetStream paced at {} records/s ({nsym} symbols x {rate}/s), {secs} s:",
        rate * nsym as u64
    );
    println!(
        "  acked              {:.0} records/s; collector core busy {:.0} %",
        acked / secs as f64,
        cpu / secs as f64 * 100.0
    );
    println!(
        "  receive→handed     p50 {}  p99 {}",
        quantile(&last, "marketprism_receive_to_written_seconds", 0.5),
        quantile(&last, "marketprism_receive_to_written_seconds", 0.99)
    );
    println!(
        "  handed→acked       p50 {}  p99 {}  (receive→acked ≤ the sum)",
        quantile(&last, "marketprism_nats_publish_ack_seconds", 0.5),
        quantile(&last, "marketprism_nats_publish_ack_seconds", 0.99)
    );
}

fn main() {
    let per_symbol = env_u64("E2E_TRADES", 200_000);
    let nsym = env_u64("E2E_SYMBOLS", 5).clamp(1, 8) as usize;
    let label = format!("JetStream ({} storage, acked)", storage());
    scenario(&label, true, per_symbol, nsym);
    scenario("core NATS (no ack)", false, per_symbol, nsym);
    paced(4000, nsym, 5);
}

//! Latency scenario: Binance spot trades of four symbols paced at everyday
//! rates, evenly spaced (`--spread 1`), the mock stamping each chunk's
//! frames after the flush (`--send-log`, `CLOCK_REALTIME`, the clock of
//! `receive_ts_ns`). Per rate and per mode (parked, spinning) a bare
//! receiver (`bare.rs`) and the collector run one after the other (order
//! alternating), each against a fresh mock; prints receive latency per frame
//! (record `receive_ts_ns` − send stamp) as exact quantiles over the window,
//! and process CPU per frame. A full-speed run of the same four streams gives
//! the cost per frame the 20 000/s figure is held to.

mod bare;
mod side;

pub use side::side_by_side;

use super::*;
use marketprism::mock::send_log::SendStamp;

const SYMBOLS: [&str; 4] = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"];
const WARM_UP: Duration = Duration::from_secs(2);

/// CPU time (ns) of every thread of a process: schedstat is in ns, unlike
/// stat's clock ticks (10 ms here, too coarse for a few seconds at 1 000/s).
fn process_cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("collector's /proc");
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The mock for one run: 4 symbols at `rate` frames/s in all, stamped.
fn mock(dir: &Path, rate: u64) -> (Proc, SocketAddr, PathBuf) {
    let log = dir.join("send.log");
    let per_symbol = (rate / SYMBOLS.len() as u64).max(1).to_string();
    let (m, addr) = start_mock(
        &dir.join("tls"),
        &[
            "--symbols",
            &SYMBOLS.join(","),
            "--rate",
            &per_symbol,
            "--spread",
            "1",
            "--send-log",
            log.to_str().unwrap(),
            "--core",
            "1",
        ],
    );
    (m, addr, log)
}

/// (symbol, trade id) → (send stamp, frames the mock flushed with it).
fn sent(log: &Path) -> HashMap<(String, u64), (u64, u64)> {
    let bytes = std::fs::read(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let stamps = SendStamp::decode_all(&bytes);
    // Chunks of every symbol flushed together carry the same stamp.
    let mut per_flush: HashMap<u64, u64> = HashMap::new();
    for s in &stamps {
        *per_flush.entry(s.sent_ns).or_default() += s.last + 1 - s.first;
    }
    let mut out = HashMap::new();
    for s in stamps {
        let sym = SYMBOLS[s.symbol as usize].to_string();
        for id in s.first..=s.last {
            out.insert((sym.clone(), id), (s.sent_ns, per_flush[&s.sent_ns]));
        }
    }
    out
}

/// One side's figures over the window.
struct Side {
    /// Latencies (ns), sorted, of the frames sent in the window.
    lat: Vec<u64>,
    /// The same, of the frames the mock flushed alone: no other frame of
    /// the same write queued ahead of them (the rest show the work per
    /// frame of a reader, not its wake-up).
    alone: Vec<u64>,
    /// Frames sent in the window that were never received.
    missing: usize,
    /// Process (or bare thread) CPU over the window, ns.
    cpu_ns: u64,
}

impl Side {
    fn q(&self, p: f64) -> f64 {
        quantile(&self.lat, p)
    }

    fn cpu_per_frame_us(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / (self.lat.len() + self.missing).max(1) as f64
    }
}

/// The `p` quantile (µs) of sorted latencies in ns (0 when there are none).
fn quantile(lat: &[u64], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
    lat[i] as f64 / 1e3
}

/// Latencies of the frames stamped in `[from, until)`.
fn side(
    sent: &HashMap<(String, u64), (u64, u64)>,
    received: impl Iterator<Item = (String, u64, u64)>,
    from: u64,
    until: u64,
    cpu_ns: u64,
) -> Side {
    let mut got: HashMap<(String, u64), u64> = HashMap::new();
    for (sym, id, rx) in received {
        got.insert((sym, id), rx);
    }
    let (mut lat, mut alone) = (Vec::new(), Vec::new());
    let mut missing = 0;
    for (k, &(tx, flushed_with)) in sent {
        if tx < from || tx >= until {
            continue;
        }
        match got.get(k) {
            Some(&rx) => {
                lat.push(rx.saturating_sub(tx));
                if flushed_with == 1 {
                    alone.push(rx.saturating_sub(tx));
                }
            }
            None => missing += 1,
        }
    }
    lat.sort_unstable();
    alone.sort_unstable();
    assert!(!lat.is_empty(), "no frame received in the window");
    Side {
        lat,
        alone,
        missing,
        cpu_ns,
    }
}

fn streams_path() -> String {
    let s: Vec<String> = SYMBOLS
        .iter()
        .map(|s| format!("{}@trade", s.to_lowercase()))
        .collect();
    format!("/stream?streams={}", s.join("/"))
}

fn bare_run(rate: u64, secs: u64, spin: bool) -> Side {
    let dir = tempfile::tempdir_in(data_base()).unwrap();
    let (mock, addr, log) = mock(dir.path(), rate);
    let now = marketprism::sys::now_ns();
    let from = now + WARM_UP.as_nanos() as u64;
    let until = from + secs * 1_000_000_000;
    let cap = (rate * (secs + 4)) as usize;
    let ca = dir.path().join("tls").join("ca.pem");
    let b = bare::run(addr, &ca, &streams_path(), spin, (from, until), cap);
    std::thread::sleep(Duration::from_millis(100));
    drop(mock);
    side(&sent(&log), b.frames.into_iter(), from, until, b.cpu_ns)
}

fn collector_run(rate: u64, secs: u64, spin_us: u64) -> Side {
    let dir = tempfile::tempdir_in(data_base()).unwrap();
    let (mock, addr, log) = mock(dir.path(), rate);
    let syms: Vec<String> = SYMBOLS.iter().map(|s| s.to_string()).collect();
    let text = engine_toml(dir.path(), false, spin_us)
        + &venue_toml(
            "binance_spot",
            "",
            addr.port(),
            &tls_ca(&dir),
            &syms,
            "\"trade\"",
        );
    let cfg = dir.path().join("latency.toml");
    std::fs::write(&cfg, text).unwrap();
    let (mut collector, _metrics) = start_collector(&cfg);
    std::thread::sleep(WARM_UP);
    let pid = collector.child.id();
    let (from, c0) = (marketprism::sys::now_ns(), process_cpu_ns(pid));
    std::thread::sleep(Duration::from_secs(secs));
    let (until, c1) = (marketprism::sys::now_ns(), process_cpu_ns(pid));
    // Past the batch delay: everything received in the window is written.
    std::thread::sleep(Duration::from_millis(300));
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    let data = dir.path().join("data");
    let mut rx = Vec::new();
    for e in std::fs::read_dir(&data).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            let id: u64 = field(line, "trade_id").parse().unwrap();
            let ts: u64 = field(line, "receive_ts_ns").parse().unwrap();
            rx.push((field(line, "instrument_id").to_string(), id, ts));
        }
    }
    side(&sent(&log), rx.into_iter(), from, until, c1 - c0)
}

fn line(name: &str, s: &Side) {
    println!(
        "    {name:<10} p50 {:>7.1}  p90 {:>7.1}  p99 {:>7.1}  max {:>8.1} µs  ({} frames, {} missing); CPU {:.2} µs/frame",
        s.q(0.5),
        s.q(0.9),
        s.q(0.99),
        s.q(1.0),
        s.lat.len(),
        s.missing,
        s.cpu_per_frame_us()
    );
    println!(
        "      flushed alone ({:.0} %)  p50 {:>7.1}  p90 {:>7.1}  p99 {:>7.1} µs",
        s.alone.len() as f64 * 100.0 / s.lat.len() as f64,
        quantile(&s.alone, 0.5),
        quantile(&s.alone, 0.9),
        quantile(&s.alone, 0.99),
    );
}

/// The scenario: `rates` frames/s (4 streams), `secs` measured per run,
/// parked and spinning with `spin_us`.
pub fn latency(rates: &[u64], secs: u64, spin_us: u64) {
    let syms: Vec<&str> = SYMBOLS.to_vec();
    let per = env_u64("E2E_LAT_FULL_TRADES", 250_000);
    let full = run(&syms, per, env_u64("E2E_BATCH_DELAY_MS", 20), false);
    let full_us = full.cpu_c * 1e6 / (per * SYMBOLS.len() as u64) as f64;
    println!(
        "latency: mock (cpu 1) → TLS → collector (1 core, cpu 0) or bare receiver (1 thread, cpu 0); Binance spot trades, 4 streams evenly spaced, {secs} s measured after {} s; latency = receive_ts_ns − mock send stamp (after the flush)",
        WARM_UP.as_secs()
    );
    println!("  full speed (4 × {per} trades): collector process CPU {full_us:.2} µs/frame");
    let mut k = 0;
    for (mode, spin) in [("parked", 0), ("spinning", spin_us)] {
        for &rate in rates {
            let (b, c) = if k % 2 == 0 {
                let b = bare_run(rate, secs, spin > 0);
                (b, collector_run(rate, secs, spin))
            } else {
                let c = collector_run(rate, secs, spin);
                (bare_run(rate, secs, spin > 0), c)
            };
            k += 1;
            println!(
                "  {rate} frames/s, {mode}{}{}",
                if spin > 0 {
                    format!(" (collector spin_before_park_us = {spin}; bare busy-polls)")
                } else {
                    String::new()
                },
                if k % 2 == 0 {
                    "  (collector first)"
                } else {
                    ""
                }
            );
            line("bare", &b);
            line("collector", &c);
            println!(
                "    ratio      p50 {:.2}×  p90 {:.2}×  p99 {:.2}×; collector CPU {:.2}× its full-speed cost per frame",
                c.q(0.5) / b.q(0.5),
                c.q(0.9) / b.q(0.9),
                c.q(0.99) / b.q(0.99),
                c.cpu_per_frame_us() / full_us
            );
            let r = |p| quantile(&c.alone, p) / quantile(&b.alone, p);
            println!(
                "      flushed alone     p50 {:.2}×  p90 {:.2}×  p99 {:.2}×",
                r(0.5),
                r(0.9),
                r(0.99)
            );
        }
    }
}

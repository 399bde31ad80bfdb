//! Idle scenario: a collector connected to the mock with no traffic (each
//! symbol's market stops after one trade, server pings off). Prints the
//! collector core's CPU per second and its wake-ups per second.

use super::*;

/// `(cpu ns, context switches)` of the process's first shard thread
/// (named `core…`): schedstat's run time is in ns, unlike stat's ticks.
fn core_thread(pid: u32) -> (u64, u64) {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("collector's /proc");
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("core") {
            continue;
        }
        let sched = std::fs::read_to_string(t.path().join("schedstat")).unwrap();
        let ns = sched.split_whitespace().next().unwrap().parse().unwrap();
        let status = std::fs::read_to_string(t.path().join("status")).unwrap();
        let switches = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        return (ns, switches);
    }
    panic!("collector {pid} has no thread named core…");
}

/// One run: connect, let the two trades through, then measure `secs` idle.
pub fn idle(secs: u64) {
    let dir = tempfile::tempdir_in(data_base()).unwrap();
    let tls = dir.path().join("tls");
    let (mock, addr) = start_mock(
        &tls,
        &[
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--trades-per-symbol",
            "1",
            "--rate",
            "1",
            "--ping-interval-ms",
            "0",
            "--core",
            "1",
        ],
    );
    let cfg = two_symbol_trades(&dir, addr.port(), env_u64("E2E_SPIN_US", 0), "idle.toml");
    let (mut collector, metrics) = start_collector(&cfg);
    let written = || {
        let m = http_get(metrics, "/metrics").1;
        metric_sum(&m, "marketprism_messages_written_total", &[]) as u64
    };
    let end = Instant::now() + Duration::from_secs(30);
    while written() < 2 {
        assert!(
            Instant::now() < end,
            "the two trades were not written in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the last batch and its metrics settle before measuring.
    std::thread::sleep(Duration::from_secs(2));
    let pid = collector.child.id();
    let (c0, p0, t0) = (core_thread(pid), cpu_seconds(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, p1, wall) = (
        core_thread(pid),
        cpu_seconds(pid),
        t0.elapsed().as_secs_f64(),
    );
    assert_eq!(written(), 2, "traffic during the idle window");
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    let cpu_ms = (c1.0 - c0.0) as f64 / 1e6;
    let wakes = (c1.1 - c0.1) as f64;
    println!(
        "idle: mock (cpu 1) → TLS → collector (1 core, cpu 0), Binance spot, 2 streams connected, no traffic, {secs} s"
    );
    println!(
        "  core thread: {:.2} ms CPU per second, {:.1} wake-ups per second ({:.0} µs each); process {:.2} ms CPU per second",
        cpu_ms / wall,
        wakes / wall,
        if wakes > 0.0 { cpu_ms * 1e3 / wakes } else { 0.0 },
        (p1 - p0) * 1e3 / wall
    );
}

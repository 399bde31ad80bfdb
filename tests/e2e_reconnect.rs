//! The exchange goes away and comes back: the collector neither dies nor
//! spins (bounded, backed-off attempts, near-zero CPU while down), reports
//! itself down on /health, reconnects when the exchange returns, and still
//! flushes everything on SIGTERM.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn survives_exchange_restart_without_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (mut mock, addr) = start_mock(&tls, &["--rate", "2000"]);
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0]\nbatch_max_delay_ms=10\n[http]\nlisten=\"127.0.0.1:0\"\n[sink]\npath=\"{}\"\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
             symbols=[\"BTCUSDT\",\"ETHUSDT\"]\ndata_types=[\"trade\"]\nca_file=\"{}\"\n",
            dir.path().join("data").display(),
            tls.join("ca.pem").display(),
            p = addr.port()
        ),
    )
    .unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    let scrape = || http_get(metrics, "/metrics").1;
    wait_until("first trades", Duration::from_secs(30), || {
        metric_sum(&scrape(), "marketprism_messages_written_total", &[]) > 1000.0
    });

    // The exchange dies.
    mock.child.kill().unwrap();
    mock.child.wait().unwrap();
    wait_until("connection seen down", Duration::from_secs(10), || {
        metric_sum(&scrape(), "marketprism_websocket_connected", &[]) == 0.0
    });
    let (code, health) = http_get(metrics, "/health");
    assert_eq!(code, 503, "{health}");
    assert!(health.contains("\"status\":\"down\""), "{health}");
    let failures0 = metric_sum(
        &scrape(),
        "marketprism_websocket_connect_failures_total",
        &[],
    );
    let cpu0 = cpu_seconds(collector.child.id());
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(collector.child.id()) - cpu0;
    let failures = metric_sum(
        &scrape(),
        "marketprism_websocket_connect_failures_total",
        &[],
    ) - failures0;
    // Backoff 250 ms doubling (with jitter ≥ half): at most a handful in 3 s.
    assert!(
        (1.0..=8.0).contains(&failures),
        "{failures} attempts in 3 s"
    );
    assert!(
        cpu < 0.3,
        "collector used {cpu} s CPU in 3 s while the exchange was down"
    );
    assert_eq!(collector.child.try_wait().unwrap(), None, "collector died");

    // The exchange comes back on the same port (same certificate).
    let port = addr.port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let back = spawn(&[
        "mock-exchange",
        "--listen",
        &listen,
        "--tls-dir",
        tls.to_str().unwrap(),
        "--rate",
        "2000",
    ]);
    back.wait_line("listening on", Duration::from_secs(20));
    let before = metric_sum(&scrape(), "marketprism_messages_written_total", &[]);
    wait_until(
        "reconnected and collecting",
        Duration::from_secs(60),
        || {
            let m = scrape();
            metric_sum(&m, "marketprism_websocket_connected", &[]) == 1.0
                && metric_sum(&m, "marketprism_messages_written_total", &[]) > before + 500.0
        },
    );
    let m = scrape();
    assert!(metric_sum(&m, "marketprism_websocket_reconnections_total", &[]) >= 1.0);
    assert_eq!(http_get(metrics, "/health").0, 200);

    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", collector.output());
    drop(back);
    let out = collector.output();
    let line = out
        .lines()
        .find(|l| l.contains("stopped: parsed "))
        .expect("stop line");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse().ok())
        .collect();
    let (parsed, written) = (nums[nums.len() - 3], nums[nums.len() - 2]);
    assert_eq!(parsed, written);
    assert_eq!(read_records(&dir.path().join("data")).len() as u64, written);
}

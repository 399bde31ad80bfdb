//! Mock exchange → collector → NATS JetStream (a real nats-server, started
//! here on free loopback ports). Every record lands in the stream exactly
//! once — also when nats-server is killed and restarted mid-run, and when it
//! is absent at first and records spill to disk.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const STREAM: &str = "MARKET_DATA";

fn collector_config(
    dir: &Path,
    mock_port: u16,
    nats_port: u16,
    extra_nats: &str,
    symbols: &[&str],
) -> std::path::PathBuf {
    let syms: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    let cfg = dir.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0,1]\nbatch_max_delay_ms=10\n[http]\nlisten=\"127.0.0.1:0\"\n\
             [sink]\nkind=[\"file\",\"nats\"]\npath=\"{data}\"\nspill_max_bytes=104857600\n\
             [sink.nats]\nservers=[\"nats://127.0.0.1:{nats_port}\"]\njetstream=true\nstream=\"{STREAM}\"\ncreate_stream=true\n{extra_nats}\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{mock_port}\"\nrest_url=\"https://localhost:{mock_port}\"\n\
             symbols=[{syms}]\ndata_types=[\"trade\"]\nstreams_per_connection=2\nca_file=\"{ca}\"\n",
            data = dir.join("data").display(),
            syms = syms.join(","),
            ca = dir.join("tls/ca.pem").display(),
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn every_record_exactly_once_in_jetstream() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--trades-per-symbol", "5000", "--malformed-every", "900"],
    );
    let cfg = collector_config(
        dir.path(),
        addr.port(),
        np,
        "",
        &["BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC"],
    );
    let (mut collector, metrics) = start_collector(&cfg);
    let total = 20_000u64;
    wait_until("all records acked", Duration::from_secs(90), || {
        metric_sum(&scrape(metrics), "marketprism_nats_acked_total", &[]) as u64 >= total
    });
    let m = scrape(metrics);
    assert_eq!(
        metric_sum(&m, "marketprism_nats_acked_total", &[]) as u64,
        total
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_duplicates_total", &[]) as u64,
        0
    );
    assert_eq!(metric_sum(&m, "marketprism_nats_in_flight", &[]) as u64, 0);
    assert_eq!(
        metric_sum(&m, "marketprism_nats_connected", &[]) as u64,
        2,
        "one connection per core"
    );
    assert!(metric_sum(&m, "marketprism_nats_publish_ack_seconds_count", &[]) as u64 >= total);
    // Every acked record timed from its receive_ts_ns, on the same clock
    // (a mixed-up clock would put the mean decades off, not under the wait).
    let f = "marketprism_nats_receive_ack_seconds";
    assert_eq!(metric_sum(&m, &format!("{f}_count"), &[]) as u64, total);
    let mean = metric_sum(&m, &format!("{f}_sum"), &[]) / total as f64;
    assert!(mean > 0.0 && mean < 90.0, "mean receive→acked {mean} s");
    assert_eq!(stream_messages(mp, STREAM), total);
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
            .code(),
        Some(0)
    );
    drop(mock);
    assert_eq!(read_records(&dir.path().join("data")).len() as u64, total);
    assert_eq!(
        stream_messages(mp, STREAM),
        total,
        "nothing more after stop"
    );
}

#[test]
fn nats_restart_mid_run_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let store = dir.path().join("js");
    let mut nats = start_nats(np, mp, &store);
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--rate", "2500", "--trades-per-symbol", "10000"],
    );
    let cfg = collector_config(
        dir.path(),
        addr.port(),
        np,
        "",
        &["BTCUSDT", "ETHUSDT", "BNBUSDT"],
    );
    let (mut collector, metrics) = start_collector(&cfg);
    wait_until("some records acked", Duration::from_secs(30), || {
        metric_sum(&scrape(metrics), "marketprism_nats_acked_total", &[]) > 3000.0
    });
    // Stop the server under load: unacked messages must be resent to the
    // restarted one. (SIGTERM: nats-server may ack before its own write-back,
    // so a SIGKILL can lose acked data inside the server itself.)
    unsafe { libc::kill(nats.child.id() as i32, libc::SIGTERM) };
    nats.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let down = scrape(metrics);
    assert_eq!(metric_sum(&down, "marketprism_nats_connected", &[]), 0.0);
    let _nats2 = start_nats(np, mp, &store);
    // The mock's markets run 4 s at 2500/s per symbol; the collector joined
    // after they started, so the expected count is what the mock sent.
    let ca = dir.path().join("tls/ca.pem");
    let sent = wait_markets_finished(addr, &ca, Duration::from_secs(60));
    let written = || metric_sum(&scrape(metrics), "marketprism_messages_written_total", &[]) as u64;
    wait_until("everything written", Duration::from_secs(30), || {
        written() >= sent
    });
    let settled = || {
        let m = scrape(metrics);
        metric_sum(&m, "marketprism_nats_in_flight", &[]) == 0.0
            && metric_sum(&m, "marketprism_nats_buffered_records", &[]) == 0.0
            && metric_sum(&m, "marketprism_spill_records", &[]) == 0.0
            && stream_messages(mp, STREAM) >= sent
    };
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while !settled() {
        assert!(
            std::time::Instant::now() < end,
            "not everything acked 60 s after the restart; stream {} of {sent}\n{}\ncollector:\n{}",
            stream_messages(mp, STREAM),
            nats_and_spill_metrics(metrics),
            collector.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = scrape(metrics);
    assert!(
        metric_sum(&m, "marketprism_nats_reconnects_total", &[]) >= 1.0,
        "{m}"
    );
    let rss = metric_sum(&m, "marketprism_process_rss_bytes", &[]);
    assert!(rss < 256e6, "memory stayed bounded: {rss}");
    let status = collector.signal_and_wait(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    drop(mock);
    let records = read_records(&dir.path().join("data")).len() as u64;
    assert_eq!(records, sent);
    assert!(records > 20_000, "{records}");
    assert_eq!(
        stream_messages(mp, STREAM),
        records,
        "exactly once in the stream"
    );
}

#[test]
fn absent_nats_spills_to_disk_then_delivers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let (mock, addr) = start_mock(&dir.path().join("tls"), &["--trades-per-symbol", "4000"]);
    // A tiny memory buffer: almost everything must go through the spill.
    let cfg = collector_config(
        dir.path(),
        addr.port(),
        np,
        "max_buffered_bytes=65536",
        &["BTCUSDT", "ETHUSDT"],
    );
    let (mut collector, metrics) = start_collector(&cfg);
    wait_until(
        "records collected while NATS is down",
        Duration::from_secs(60),
        || metric_sum(&scrape(metrics), "marketprism_messages_written_total", &[]) as u64 >= 8000,
    );
    let m = scrape(metrics);
    let spilled = metric_sum(&m, "marketprism_spill_records", &[]) as u64;
    assert!(
        spilled > 6000,
        "expected most records on disk, spill holds {spilled}\n{m}"
    );
    assert_eq!(
        metric_sum(&m, "marketprism_sink_records_dropped_total", &[]),
        0.0
    );
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    wait_until("spill drained and acked", Duration::from_secs(60), || {
        let m = scrape(metrics);
        metric_sum(&m, "marketprism_spill_records", &[]) == 0.0
            && metric_sum(&m, "marketprism_nats_in_flight", &[]) == 0.0
            && stream_messages(mp, STREAM) >= 8000
    });
    assert_eq!(stream_messages(mp, STREAM), 8000);
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
            .code(),
        Some(0)
    );
    drop(mock);
}

/// A clean stop while NATS is down keeps every record on disk; the next
/// start delivers them.
#[test]
fn stop_while_nats_is_down_then_next_start_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let (mock, addr) = start_mock(&dir.path().join("tls"), &["--trades-per-symbol", "3000"]);
    let cfg = collector_config(dir.path(), addr.port(), np, "", &["BTCUSDT", "ETHUSDT"]);
    let (mut first, metrics) = start_collector(&cfg);
    wait_until("records collected", Duration::from_secs(60), || {
        metric_sum(&scrape(metrics), "marketprism_messages_written_total", &[]) as u64 >= 6000
    });
    let status = first.signal_and_wait(libc::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", first.output());
    // Never connected, so no transport was decided: every record went
    // straight to the spill, and stays there.
    assert!(
        first.output().contains("6000 records stay in the spill"),
        "{}",
        first.output()
    );
    drop(first);

    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let (mut second, metrics) = start_collector(&cfg);
    wait_until(
        "the spill from the first run delivered",
        Duration::from_secs(60),
        || {
            stream_messages(mp, STREAM) >= 6000
                && metric_sum(&scrape(metrics), "marketprism_spill_records", &[]) == 0.0
        },
    );
    assert_eq!(stream_messages(mp, STREAM), 6000);
    assert_eq!(
        second
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
            .code(),
        Some(0)
    );
    drop(mock);
}

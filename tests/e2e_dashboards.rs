//! MarketPrism's shipped Grafana dashboard and alert rules
//! (`services/monitoring-alerting`) read the collector's `/metrics`. After a
//! mock run into a real nats-server, every collector series they query is
//! there with the labels they filter and group by, and the values mean what
//! they mean there: messages published per subject / per exchange × market
//! type × data type, the last success time per exchange × data type, the
//! publish latency histogram, the broker connection, the standard process
//! metrics. (The list below is written from reading those files.)

mod common;

use common::*;
use std::time::Duration;

const PER_SYMBOL: u64 = 500;
/// Trade silence limit: the mock sends its trades in well under this, then
/// nothing, so `/health` must list both cores' trade streams after it.
const SILENT_MS: u64 = 3000;

/// (series, labels it must carry) as the dashboard and alerts query them.
const QUERIED: &[(&str, &[&str])] = &[
    // Alerts CollectorNoDataIngestion / CollectorDataIngestionLow; dashboard
    // "数据采集速率", per-topic tables (subject regex), by exchange / data_type.
    (
        "marketprism_nats_messages_published_total",
        &["subject=", "exchange=", "data_type="],
    ),
    // Dashboard "数据采集速率 - 按交易所 / 按数据类型", completeness ratio.
    (
        "marketprism_nats_messages_published_labeled_total",
        &["exchange=", "market_type=", "data_type="],
    ),
    // Dashboard "NATS发布延迟 (p95)": by (le).
    ("marketprism_nats_publish_duration_seconds_bucket", &["le="]),
    // Dashboard freshness panels and the $exchange / $data_type variables.
    (
        "marketprism_collector_last_success_timestamp_seconds",
        &["exchange=", "data_type="],
    ),
    // Alert BrokerDown.
    ("marketprism_broker_connected", &[]),
    // Alert CollectorHighMemory; dashboard memory, CPU, uptime, fds panels.
    ("process_resident_memory_bytes", &[]),
    ("process_cpu_seconds_total", &[]),
    ("process_start_time_seconds", &[]),
    ("process_open_fds", &[]),
];

fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .collect()
}

/// The `reasons` entry "binance spot trade silent for N s (threshold 3 s, core C)".
fn silence_reason(health: &str, core: usize) -> Option<&str> {
    let tail = format!(" s (threshold {} s, core {core})\"", SILENT_MS / 1000);
    let end = health.find(&tail)?;
    let start = health[..end].rfind("\"binance spot trade silent for ")?;
    let n = &health[start + "\"binance spot trade silent for ".len()..end];
    (n.parse::<u64>().ok()? >= SILENT_MS / 1000).then_some(&health[start..end + tail.len()])
}

fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn marketprism_dashboard_and_alert_series_after_a_mock_run() {
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--trades-per-symbol", &PER_SYMBOL.to_string()],
    );
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0,1]\nbatch_max_delay_ms=10\n[http]\nlisten=\"127.0.0.1:0\"\n\
             [sink]\nkind=[\"nats\"]\npath=\"{data}\"\n\
             [sink.nats]\nservers=[\"nats://127.0.0.1:{np}\"]\njetstream=true\nstream=\"MARKET_DATA\"\ncreate_stream=true\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{mp}\"\nrest_url=\"https://localhost:{mp}\"\n\
             symbols=[\"BTCUSDT\",\"ETHUSDT\"]\ndata_types=[\"trade\"]\nstreams_per_connection=1\nca_file=\"{ca}\"\n\
             stream_stale_after_ms={{trade={SILENT_MS}}}\n",
            data = dir.path().join("data").display(),
            mp = addr.port(),
            ca = dir.path().join("tls/ca.pem").display(),
        ),
    )
    .unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    let total = 2 * PER_SYMBOL;
    wait_until("all records acked", Duration::from_secs(60), || {
        metric_sum(
            &http_get(metrics, "/metrics").1,
            "marketprism_nats_acked_total",
            &[],
        ) as u64
            >= total
    });
    let m = http_get(metrics, "/metrics").1;
    for (name, labels) in QUERIED {
        let got = samples(&m, name);
        assert!(!got.is_empty(), "{name} missing:\n{m}");
        for l in &got {
            assert!(
                !l.contains("core="),
                "{l}: MarketPrism series carry no core"
            );
            for want in *labels {
                assert!(l.contains(want), "{l}: no {want}");
            }
        }
    }
    assert_eq!(
        samples(&m, "marketprism_nats_messages_published_total"),
        [
            format!("marketprism_nats_messages_published_total{{subject=\"trade.binance.spot.BTC-USDT\",exchange=\"binance\",market_type=\"spot\",data_type=\"trade\"}} {PER_SYMBOL}"),
            format!("marketprism_nats_messages_published_total{{subject=\"trade.binance.spot.ETH-USDT\",exchange=\"binance\",market_type=\"spot\",data_type=\"trade\"}} {PER_SYMBOL}"),
        ]
    );
    assert_eq!(
        samples(&m, "marketprism_nats_messages_published_labeled_total"),
        [format!("marketprism_nats_messages_published_labeled_total{{exchange=\"binance\",market_type=\"spot\",data_type=\"trade\"}} {total}")]
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_publish_duration_seconds_count", &[]) as u64,
        total
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_sent_total", &[]) as u64,
        total,
        "per-core figure under its own name"
    );
    assert_eq!(
        samples(&m, "marketprism_broker_connected"),
        ["marketprism_broker_connected 1"]
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = samples(&m, "marketprism_collector_last_success_timestamp_seconds");
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(last[0].starts_with(
        "marketprism_collector_last_success_timestamp_seconds{exchange=\"binance\",data_type=\"trade\"} "
    ));
    assert!((t0..=now).contains(&value(last[0])), "{last:?}");
    let started = value(samples(&m, "process_start_time_seconds")[0]);
    // /proc's start time has clock-tick (10 ms) resolution.
    assert!((t0 - 1.0..=now).contains(&started), "{started} vs {t0}");
    assert!(value(samples(&m, "process_resident_memory_bytes")[0]) > 1e6);
    assert!(value(samples(&m, "process_open_fds")[0]) >= 3.0);
    let (code, health) = http_get(metrics, "/health");
    assert_eq!(code, 200);
    assert!(health.contains("\"silent_streams\":[]"), "{health}");
    // The mock has sent everything: past the limit, each core's trade
    // stream shows as silent and the status is degraded.
    let mut health = String::new();
    wait_until("trade streams silent", Duration::from_secs(30), || {
        health = http_get(metrics, "/health").1;
        health.contains("\"core\":1,\"silent_ms\"") && health.contains("\"core\":0,\"silent_ms\"")
    });
    assert!(health.starts_with("{\"status\":\"degraded\","), "{health}");
    for core in 0..2 {
        let entry = format!(
            "{{\"exchange\":\"binance\",\"market_type\":\"spot\",\"data_type\":\"trade\",\"core\":{core},\"silent_ms\":"
        );
        assert!(health.contains(&entry), "{health}");
    }
    assert_eq!(
        health
            .matches(&format!("\"threshold_ms\":{SILENT_MS}}}"))
            .count(),
        2,
        "{health}"
    );
    for core in 0..2 {
        let reason = silence_reason(&health, core);
        assert!(reason.is_some(), "no reason for core {core}: {health}");
    }
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
            .code(),
        Some(0)
    );
    drop(mock);
}

//! `marketprism top` against a tiny canned HTTP server: exact rates from two
//! successive `/metrics` bodies, `/health` statuses, and clear errors when the
//! collector cannot be reached.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the canned server frames its bodies.
#[derive(Clone, Copy)]
enum Framing {
    ContentLength,
    Chunked,
}

/// Serves `/metrics` from `metrics` in order (the last one repeated) and
/// `/health` as given; returns the address and the number of metrics requests.
fn serve(
    metrics: Vec<String>,
    health: (u16, String),
    framing: Framing,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let scrapes = Arc::new(AtomicUsize::new(0));
    let counter = scrapes.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let Some(path) = read_request_path(&mut s) else {
                continue;
            };
            let (code, body) = match path.as_str() {
                "/metrics" => {
                    let i = counter.fetch_add(1, Ordering::SeqCst);
                    (200, metrics[i.min(metrics.len() - 1)].clone())
                }
                "/health" => health.clone(),
                _ => (404, "{\"error\":\"not found\"}".to_string()),
            };
            let reason = match code {
                200 => "OK",
                503 => "Service Unavailable",
                _ => "Not Found",
            };
            let resp = match framing {
                Framing::ContentLength => format!(
                    "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                ),
                Framing::Chunked => {
                    // Two chunks, split mid-body.
                    let (a, b) = body.split_at(body.len() / 2);
                    format!(
                        "HTTP/1.1 {code} {reason}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                        a.len(),
                        b.len()
                    )
                }
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    (addr, scrapes)
}

fn read_request_path(s: &mut TcpStream) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next()?;
    assert!(line.ends_with(" HTTP/1.1"), "request line `{line}`");
    assert!(text.contains("\r\nHost: 127.0.0.1:"), "{text}");
    line.split_whitespace().nth(1).map(str::to_string)
}

/// A scrape of two cores (+ NATS when `nats`), every counter a multiple of `k`.
fn metrics_body(k: u64, nats: bool) -> String {
    let mut s = String::new();
    let c = |s: &mut String, name: &str, labels: &str, v: u64| {
        s.push_str(&format!("{name}{{{labels}}} {v}\n"));
    };
    let v = r#"exchange="binance",market_type="spot""#;
    s.push_str("# HELP marketprism_messages_received WebSocket frames received\n");
    s.push_str("# TYPE marketprism_messages_received counter\n");
    for (core, per) in [("0", 600), ("1", 300)] {
        c(
            &mut s,
            "marketprism_messages_received_total",
            &format!(r#"{v},data_type="trade",core="{core}""#),
            per * k,
        );
        c(
            &mut s,
            "marketprism_messages_received_total",
            &format!(r#"{v},data_type="mixed",core="{core}""#),
            0,
        );
    }
    for (core, per) in [("0", 600), ("1", 200)] {
        c(
            &mut s,
            "marketprism_messages_written_total",
            &format!(r#"{v},data_type="trade",core="{core}""#),
            per * k,
        );
    }
    for (core, per) in [("0", 2), ("1", 0)] {
        c(
            &mut s,
            "marketprism_malformed_frames_total",
            &format!(r#"{v},reason="bad_json",core="{core}""#),
            per * k,
        );
    }
    for (core, per) in [("0", 409_600), ("1", 0)] {
        c(
            &mut s,
            "marketprism_bytes_received_total",
            &format!(r#"{v},core="{core}""#),
            per * k,
        );
    }
    for (core, up, planned) in [("0", 2, 2), ("1", 1, 2)] {
        c(
            &mut s,
            "marketprism_websocket_connected",
            &format!(r#"{v},core="{core}""#),
            up,
        );
        c(
            &mut s,
            "marketprism_websocket_planned",
            &format!(r#"{v},core="{core}""#),
            planned,
        );
    }
    // Latency: each scrape adds, on core 0, 90 records ≤ 0.25 ms and 10 ≤ 25 ms;
    // core 1 gets nothing new after its first 4 records ≤ 0.05 ms.
    s.push_str("# TYPE marketprism_receive_to_written_seconds histogram\n");
    for (le, n0, n1) in [
        ("0.00005", 0, 4),
        ("0.00025", 90 * k, 4),
        ("0.025", 100 * k, 4),
        ("+Inf", 100 * k, 4),
    ] {
        c(
            &mut s,
            "marketprism_receive_to_written_seconds_bucket",
            &format!(r#"le="{le}",core="0""#),
            n0,
        );
        c(
            &mut s,
            "marketprism_receive_to_written_seconds_bucket",
            &format!(r#"le="{le}",core="1""#),
            n1,
        );
    }
    c(
        &mut s,
        "marketprism_receive_to_written_seconds_count",
        r#"core="0""#,
        100 * k,
    );
    for (core, per) in [("0", 8), ("1", 4)] {
        c(
            &mut s,
            "marketprism_batches_flushed_total",
            &format!(r#"core="{core}""#),
            per * k,
        );
    }
    c(
        &mut s,
        "marketprism_arena_high_water_bytes",
        r#"core="0""#,
        1_048_576,
    );
    c(
        &mut s,
        "marketprism_arena_high_water_bytes",
        r#"core="1""#,
        2048,
    );
    c(&mut s, "marketprism_spill_records", r#"core="0""#, 0);
    c(&mut s, "marketprism_spill_records", r#"core="1""#, 42);
    if nats {
        for (core, per) in [("0", 400), ("1", 40)] {
            c(
                &mut s,
                "marketprism_nats_sent_total",
                &format!(r#"core="{core}""#),
                per * k,
            );
            c(
                &mut s,
                "marketprism_nats_acked_total",
                &format!(r#"core="{core}""#),
                per * k,
            );
        }
        c(&mut s, "marketprism_nats_in_flight", r#"core="0""#, 64);
        c(&mut s, "marketprism_nats_in_flight", r#"core="1""#, 3);
        c(
            &mut s,
            "marketprism_nats_buffered_records",
            r#"core="0""#,
            70,
        );
        c(
            &mut s,
            "marketprism_nats_buffered_records",
            r#"core="1""#,
            5,
        );
        c(&mut s, "marketprism_nats_connected", r#"core="0""#, 1);
        c(&mut s, "marketprism_nats_connected", r#"core="1""#, 0);
    }
    s.push_str("marketprism_some_future_metric{core=\"0\",odd=\"a\\\"b\"} 9\n");
    s.push_str("marketprism_process_rss_bytes 104857600\n");
    s.push_str(&format!("marketprism_uptime_seconds {}\n", 60 + k));
    s.push_str("# EOF\n");
    s
}

fn row<'a>(out: &'a str, first: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no `{first}` row in\n{out}"))
}

/// `cells` appear in `line`, in this order.
fn assert_cells(line: &str, cells: &[&str]) {
    let mut from = 0;
    for c in cells {
        match line[from..].find(c) {
            Some(i) => from += i + c.len(),
            None => panic!("`{c}` missing (in order) in `{line}`"),
        }
    }
}

const INTERVAL: Duration = Duration::from_millis(400);

#[test]
fn once_gives_exact_rates_and_statuses() {
    let health = r#"{"status":"degraded","connections_up":3,"connections_planned":4,"uptime_s":61,"cores":[]}"#;
    let (addr, scrapes) = serve(
        vec![metrics_body(1, true), metrics_body(2, true)],
        (200, health.into()),
        Framing::ContentLength,
    );
    let url = format!("http://{addr}");
    let t0 = Instant::now();
    let out = marketprism::top::run_once(&url, INTERVAL).unwrap();
    assert!(t0.elapsed() >= INTERVAL);
    assert_eq!(scrapes.load(Ordering::SeqCst), 2);
    assert!(!out.contains('\x1b'), "--once output has no ANSI codes");
    assert_cells(
        &out,
        &[
            &url,
            "health: degraded",
            "uptime: 1m01s",
            "rss: 100.0 MiB",
            "connections: 3/4",
            "rates over 0.40 s",
        ],
    );
    // Over 0.4 s core 0 received 600 frames, wrote 600 records, 2 malformed,
    // 400 KiB, 8 batches; 100 new latency samples: 90 ≤ 0.25 ms, 10 ≤ 25 ms.
    assert_cells(
        row(&out, "0"),
        &[
            "1500.0",
            "1500.0",
            "5.0",
            "1000.0 KiB/s",
            "≤ 0.25 ms",
            "≤ 25 ms",
            "20.0",
            "1.0 MiB",
            "2/2",
        ],
    );
    // Core 1: 300 frames, 200 records, no latency samples since (cumulative: 4 ≤ 0.05 ms).
    assert_cells(
        row(&out, "1"),
        &[
            "750.0",
            "500.0",
            "0.0",
            "0 B/s",
            "≤ 0.05 ms*",
            "≤ 0.05 ms*",
            "10.0",
            "2.0 KiB",
            "1/2",
        ],
    );
    assert_cells(
        row(&out, "total"),
        &[
            "2250.0",
            "2000.0",
            "5.0",
            "1000.0 KiB/s",
            "≤ 0.25 ms",
            "≤ 25 ms",
            "30.0",
            "1.0 MiB",
            "3/4",
        ],
    );
    let nats = &out[out.find("published/s").expect("NATS table")..];
    assert_cells(row(nats, "0"), &["1000.0", "1000.0", "64", "70", "1", "0"]);
    assert_cells(row(nats, "1"), &["100.0", "100.0", "3", "5", "0", "42"]);
    assert_cells(
        row(nats, "total"),
        &["1100.0", "1100.0", "67", "75", "1", "42"],
    );
}

#[test]
fn down_health_chunked_bodies_and_no_nats() {
    let health = r#"{"status":"down","connections_up":0,"connections_planned":4,"uptime_s":3723,"cores":[]}"#;
    let (addr, _) = serve(
        vec![metrics_body(5, false), metrics_body(6, false)],
        (503, health.into()),
        Framing::Chunked,
    );
    let out = marketprism::top::run_once(&format!("http://{addr}/"), INTERVAL).unwrap();
    assert_cells(
        &out,
        &["health: down", "uptime: 1h02m03s", "connections: 0/4"],
    );
    assert_cells(row(&out, "0"), &["1500.0", "1500.0"]);
    assert_cells(row(&out, "total"), &["2250.0", "2000.0"]);
    assert!(
        !out.contains("published/s"),
        "no NATS families, no NATS table:\n{out}"
    );
}

#[test]
fn unreachable_url_is_an_error_naming_it() {
    // A port nobody listens on: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = marketprism::top::run_once(&url, INTERVAL).unwrap_err();
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("/metrics"), "{err}");

    // The loop retries each interval and exits 1 when never reachable.
    let t0 = Instant::now();
    let code = marketprism::top::cli(&[
        "--url".into(),
        url.clone(),
        "--interval-ms".into(),
        "50".into(),
        "--iterations".into(),
        "3".into(),
    ]);
    assert_eq!(code, ExitCode::from(1));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert_eq!(
        marketprism::top::cli(&["--interval-ms".into(), "nope".into()]),
        ExitCode::from(2)
    );
}

#[test]
fn silent_server_times_out() {
    // Accepts and never answers: the 2 s request timeout ends the scrape.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let url = format!("http://{addr}");
    let t0 = Instant::now();
    let err = marketprism::top::run_once(&url, INTERVAL).unwrap_err();
    let took = t0.elapsed();
    assert!(err.contains(&url) && err.contains("timed out"), "{err}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn loop_mode_reachable_exits_zero() {
    let health =
        r#"{"status":"ok","connections_up":4,"connections_planned":4,"uptime_s":61,"cores":[]}"#;
    let (addr, scrapes) = serve(
        vec![
            metrics_body(1, false),
            metrics_body(2, false),
            metrics_body(3, false),
        ],
        (200, health.into()),
        Framing::ContentLength,
    );
    let code = marketprism::top::cli(&[
        format!("--url=http://{addr}"),
        "--interval-ms=50".into(),
        "--iterations=3".into(),
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(scrapes.load(Ordering::SeqCst), 3);
}

/// Against a running collector:
/// `MARKETPRISM_TOP_URL=http://127.0.0.1:9092 cargo test --test top -- --ignored --nocapture`
#[test]
#[ignore]
fn live_collector() {
    let url =
        std::env::var("MARKETPRISM_TOP_URL").unwrap_or_else(|_| "http://127.0.0.1:9092".into());
    let out = marketprism::top::run_once(&url, Duration::from_secs(1)).unwrap();
    println!("{out}");
    assert!(out.contains("total"));
}

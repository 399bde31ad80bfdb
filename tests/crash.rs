//! Crash safety, a full disk, bounded shutdown and TLS, end to end (the real
//! binary against the mock exchange over TLS):
//!
//! - `kill -9` mid-stream, three times, then a clean stop: every line of every
//!   file parses, each restart reports the unclean stop (metric + one
//!   `crash_recovery` gap record per core), a torn last line is cut and
//!   counted, no trade id appears twice, and ids are missing only across a
//!   kill (the last surviving record before each hole was received shortly
//!   before a kill). A real kill lands inside `write(2)` only by chance, so the
//!   second kill is followed by appending half a line to the newest file,
//!   exactly what a short write leaves.
//! - Disk full: the sink directory is a 16 MiB tmpfs we fill up. Needs root
//!   (mount); without it the test prints why and returns, leaving the
//!   coverage to the unit tests (`sink::file` injected ENOSPC/EDQUOT/EFBIG,
//!   `engine::pipeline`, `metrics::http`).
//! - SIGTERM with a sink that cannot drain (`RLIMIT_FSIZE` = 0: every write
//!   fails with EFBIG): the drain waits, gives up at
//!   `engine.shutdown_timeout_ms` with exit code 1 naming what it abandons;
//!   a second SIGTERM exits at once (130).
//! - TLS: without `ca_file` the mock's certificate is refused (verification
//!   has no off switch).

mod common;

use common::*;
use sonic_rs::JsonValueTrait;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SYMS: [(&str, &str); 2] = [("BTCUSDT", "BTC-USDT"), ("ETHUSDT", "ETH-USDT")];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Two cores, one symbol each; `data` is the sink directory.
fn config(
    dir: &Path,
    data: &Path,
    mock: SocketAddr,
    extra_engine: &str,
    extra_sink: &str,
) -> PathBuf {
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[engine]\ncores=[0,1]\nbatch_max_events=4096\nbatch_max_delay_ms=50\n{extra_engine}\n\
             [http]\nlisten=\"127.0.0.1:0\"\n[sink]\npath=\"{}\"\n{extra_sink}\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
             symbols=[\"BTCUSDT\",\"ETHUSDT\"]\ndata_types=[\"trade\"]\nstreams_per_connection=1\n\
             ca_file=\"{}\"\n",
            data.display(),
            dir.join("tls/ca.pem").display(),
            p = mock.port()
        ),
    )
    .unwrap();
    path
}

fn written(addr: SocketAddr) -> f64 {
    metric_sum(&scrape(addr), "marketprism_messages_written_total", &[])
}

/// A trade's (symbol, id, receive ms).
fn trade_of(v: &sonic_rs::Value) -> Option<(String, u64, u64)> {
    if v["data_type"].as_str()? != "trade" {
        return None;
    }
    Some((
        v["symbol"].as_str()?.to_string(),
        v["trade_id"].as_str()?.parse().ok()?,
        v["receive_ts_ns"].as_u64()? / 1_000_000,
    ))
}

/// Per symbol: id → receive ms; panics on a duplicate id.
fn trades_by_symbol(records: &[(String, sonic_rs::Value)]) -> BTreeMap<String, BTreeMap<u64, u64>> {
    let mut out: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    for (file, v) in records {
        if let Some((sym, id, ms)) = trade_of(v) {
            let dup = out.entry(sym.clone()).or_default().insert(id, ms);
            assert!(
                dup.is_none(),
                "{sym} trade {id} written twice (again in {file})"
            );
        }
    }
    out
}

/// Holes (last id before, first id after) in each symbol's ids.
fn holes(ids: &BTreeMap<u64, u64>) -> Vec<(u64, u64)> {
    let v: Vec<u64> = ids.keys().copied().collect();
    v.windows(2)
        .filter(|w| w[1] > w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect()
}

fn gap_records<'a>(
    records: &'a [(String, sonic_rs::Value)],
    reason: &str,
) -> Vec<&'a sonic_rs::Value> {
    records
        .iter()
        .map(|(_, v)| v)
        .filter(|v| v["data_type"].as_str() == Some("gap") && v["reason"].as_str() == Some(reason))
        .collect()
}

/// The newest output file (names sort by run stamp, then sequence).
fn newest_file(data: &Path) -> PathBuf {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .max_by_key(|p| {
            let n = p.file_name().unwrap().to_str().unwrap().to_string();
            let (head, seq) = n.trim_end_matches(".jsonl").rsplit_once('-').unwrap();
            (head[7..].to_string(), seq.parse::<u64>().unwrap())
        })
        .unwrap()
}

#[test]
fn kill_9_loses_only_the_unflushed_batch_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, addr) = start_mock(&dir.path().join("tls"), &["--rate", "5000"]);
    let data = dir.path().join("data");
    let cfg = config(dir.path(), &data, addr, "", "");
    const TEAR: &[u8] = br#"{"data_type":"trade","exchange":"binance","market_ty"#;
    let mut kills: Vec<u64> = Vec::new();
    let mut unclean_reported = 0.0;
    let mut torn_lines = 0.0;
    let mut torn_bytes = 0.0;
    let mut torn_file = None;
    for run in 0..4 {
        let (mut c, metrics) = start_collector(&cfg);
        if run > 0 {
            // Both cores saw the previous run's marker (reported once the
            // cores opened their sinks, just after the listener is up).
            wait_until("unclean stop reported", Duration::from_secs(30), || {
                metric_sum(&scrape(metrics), "marketprism_file_unclean_shutdown", &[]) == 2.0
            });
            c.wait_line("did not shut down cleanly", Duration::from_secs(5));
            let m = scrape(metrics);
            unclean_reported += 1.0;
            let lines = metric_sum(&m, "marketprism_file_recovered_torn_lines_total", &[]);
            torn_lines += lines;
            torn_bytes += metric_sum(&m, "marketprism_file_recovered_torn_bytes_total", &[]);
            if run == 2 {
                assert!(lines >= 1.0, "forced torn line not recovered: {m}");
            }
        }
        let base = written(metrics);
        wait_until("records flowing", Duration::from_secs(30), || {
            written(metrics) > base + 10_000.0
        });
        if run == 3 {
            let t = Instant::now();
            let st = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
            assert_eq!(st.code(), Some(0), "{}", c.output());
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "clean stop took {:?}",
                t.elapsed()
            );
            break;
        }
        // Land anywhere, including inside a write: no pause before the kill.
        kills.push(now_ms());
        c.child.kill().unwrap();
        c.child.wait().unwrap();
        if run == 1 {
            let f = newest_file(&data);
            std::fs::OpenOptions::new()
                .append(true)
                .open(&f)
                .unwrap()
                .write_all(TEAR)
                .unwrap();
            torn_file = Some(f.file_name().unwrap().to_str().unwrap().to_string());
        }
    }
    eprintln!("kills at {kills:?}; torn lines {torn_lines}, bytes {torn_bytes}");
    assert_eq!(unclean_reported, 3.0);
    assert!(torn_lines >= 1.0 && torn_bytes >= TEAR.len() as f64);

    // Every line of every file is whole JSON; the clean stop removed the markers.
    let records = read_records(&data);
    assert!(!data.join(".marketprism").exists());
    // One crash_recovery gap per core per restart, with the window of the loss.
    let crash = gap_records(&records, "crash_recovery");
    assert_eq!(crash.len(), 3 * 2, "{crash:?}");
    let mut dropped = 0;
    for g in &crash {
        assert_eq!(g["exchange"].as_str(), Some("*"));
        let to = g["to_ts_ms"].as_u64().unwrap();
        let k = kills
            .iter()
            .rev()
            .find(|&&k| k <= to)
            .expect("gap after a kill");
        if let Some(from) = g["from_ts_ms"].as_u64() {
            assert!(from <= *k + 5, "{g:?} vs kill at {k}");
        }
        dropped += g["dropped_bytes"].as_u64().unwrap();
    }
    assert_eq!(dropped as f64, torn_bytes);
    assert!(
        crash
            .iter()
            .any(|g| g["file"].as_str() == torn_file.as_deref()
                && g["dropped_lines"].as_u64() == Some(1)),
        "no gap names {torn_file:?}"
    );

    // No id twice; ids are missing only across a kill, and only what was
    // received shortly before it (the unflushed batch, plus what the socket
    // still held, was lost; 3 s covers a starved CI machine).
    let by_symbol = trades_by_symbol(&records);
    assert_eq!(by_symbol.len(), SYMS.len());
    for (sym, ids) in &by_symbol {
        assert!(ids.len() > 10_000, "{sym}: {}", ids.len());
        let hs = holes(ids);
        eprintln!(
            "{sym}: {} trades, holes {:?}",
            ids.len(),
            hs.iter()
                .map(|(a, b)| (b - a - 1, ids[a], ids[b]))
                .collect::<Vec<_>>()
        );
        assert!(
            hs.len() <= kills.len(),
            "{sym}: holes {hs:?}, kills {kills:?}"
        );
        for (a, b) in hs {
            let (ta, tb) = (ids[&a], ids[&b]);
            assert!(
                kills
                    .iter()
                    .any(|&k| ta <= k + 5 && k <= tb && k - ta.min(k) <= 3000),
                "{sym}: ids {a}..{b} missing (received {ta}..{tb} ms), not across a kill {kills:?}"
            );
        }
    }
}

/// A tmpfs mounted for the test; unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a filler file until the file system refuses more.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut n = 0;
    while let Ok(k) = f.write(&chunk) {
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    n
}

#[test]
fn full_disk_pauses_the_sink_reports_it_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fs = match Tmpfs::mount(&data, "16m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!(
                "SKIPPED the end-to-end disk-full test: {why}. Needs root to mount a tmpfs; \
                 the unit tests (sink::file, engine::pipeline, metrics::http) cover the behaviour \
                 with an injected ENOSPC/EDQUOT/EFBIG."
            );
            return;
        }
    };
    let (_mock, addr) = start_mock(&dir.path().join("tls"), &["--rate", "1000"]);
    // 256 KiB of memory per core for records the disk refuses: a few
    // seconds of disk full overflow it, so drops and gap records happen too.
    let cfg = config(
        dir.path(),
        &data,
        addr,
        "",
        "max_pending_bytes=262144\ndisk_full_retry_ms=200",
    );
    let (mut c, metrics) = start_collector(&cfg);
    wait_until("records flowing", Duration::from_secs(30), || {
        written(metrics) > 1000.0
    });
    assert_eq!(http_get(metrics, "/health").0, 200);

    let filler = data.join("filler.bin");
    fill(&filler);
    wait_until("disk full seen", Duration::from_secs(10), || {
        metric_sum(&scrape(metrics), "marketprism_sink_disk_full", &[]) >= 1.0
    });
    let (code, health) = http_get(metrics, "/health");
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("\"status\":\"degraded\""), "{health}");
    assert!(health.contains("disk full, file writes paused"), "{health}");
    assert!(health.contains("\"sink_disk_full\":true"), "{health}");
    // Sockets are still read while the disk is full.
    let m = scrape(metrics);
    let parsed0 = metric_sum(&m, "marketprism_messages_parsed_total", &[]);
    wait_until("still parsing", Duration::from_secs(10), || {
        metric_sum(&scrape(metrics), "marketprism_messages_parsed_total", &[]) > parsed0 + 2000.0
    });
    wait_until(
        "memory limit reached: drops",
        Duration::from_secs(20),
        || {
            metric_sum(
                &scrape(metrics),
                "marketprism_sink_records_dropped_total",
                &[],
            ) > 0.0
        },
    );
    assert_eq!(c.child.try_wait().unwrap(), None, "collector died");

    // Space again: the backlog, the gap records, then everything new.
    std::fs::remove_file(&filler).unwrap();
    wait_until("writing again", Duration::from_secs(10), || {
        let m = scrape(metrics);
        metric_sum(&m, "marketprism_sink_disk_full", &[]) == 0.0
            && metric_sum(&m, "marketprism_sink_pending_records", &[]) == 0.0
    });
    assert_eq!(http_get(metrics, "/health").0, 200);
    let resumed_at = now_ms();
    let w = written(metrics);
    // Generous: CI machines are shared and this is a debug build.
    let end = Instant::now() + Duration::from_secs(30);
    while written(metrics) <= w + 2000.0 {
        assert!(
            Instant::now() < end,
            "nothing more written after the disk came back:\n{}\n{}",
            scrape(metrics),
            c.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = scrape(metrics);
    let dropped = metric_sum(&m, "marketprism_sink_records_dropped_total", &[]);
    assert!(metric_sum(&m, "marketprism_sink_write_errors_total", &[]) >= 1.0);
    let st = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    assert_eq!(st.code(), Some(0), "{}", c.output());
    let out = c.output();
    let (mut parsed, mut wrote) = (0u64, 0u64);
    for l in out.lines().filter(|l| l.contains("stopped: parsed ")) {
        let n: Vec<u64> = l
            .split(|ch: char| !ch.is_ascii_digit())
            .filter_map(|x| x.parse().ok())
            .collect();
        parsed += n[n.len() - 3];
        wrote += n[n.len() - 2];
    }
    assert_eq!(parsed, wrote + dropped as u64, "parsed = written + dropped");

    let records = read_records(&data);
    let by_symbol = trades_by_symbol(&records);
    let gaps = gap_records(&records, "disk_full");
    assert!(!gaps.is_empty());
    let lost: u64 = gaps.iter().map(|g| g["lost"].as_u64().unwrap()).sum();
    eprintln!(
        "disk full: {} gap records, {lost} records lost, parsed {parsed}",
        gaps.len()
    );
    assert_eq!(lost as f64, dropped);
    for (sym, ids) in &by_symbol {
        // Each hole is exactly one gap record's id range; after the disk
        // came back nothing is missing.
        for (a, b) in holes(ids) {
            assert!(
                gaps.iter().any(|g| g["symbol"].as_str() == Some(sym)
                    && g["from_id"].as_str() == Some(&(a + 1).to_string())
                    && g["to_id"].as_str() == Some(&(b - 1).to_string())
                    && g["lost"].as_u64() == Some(b - a - 1)),
                "{sym}: ids {}..={} missing without a gap record",
                a + 1,
                b - 1
            );
            assert!(ids[&a] < resumed_at, "{sym}: loss after the disk came back");
        }
    }
    drop(fs);
}

/// Spawns the collector with `RLIMIT_FSIZE` = 0: every file write fails
/// with EFBIG (SIGXFSZ is ignored by the collector), so its sink can never drain.
fn spawn_unwritable(cfg: &Path) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config", cfg.to_str().unwrap()])
        .env("MARKETPRISM_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn marketprism");
    let (tx, rx) = channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
        let tx = tx.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
    }
    let p = Proc {
        child,
        lines: rx,
        log,
    };
    let line = p.wait_line("metrics and health on http://", Duration::from_secs(30));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    (p, addr)
}

fn wait_stuck(metrics: SocketAddr) {
    wait_until("sink stuck with records", Duration::from_secs(30), || {
        let m = scrape(metrics);
        metric_sum(&m, "marketprism_sink_disk_full", &[]) >= 1.0
            && metric_sum(&m, "marketprism_sink_pending_records", &[]) > 100.0
    });
}

#[test]
fn sigterm_is_bounded_and_a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, addr) = start_mock(&dir.path().join("tls"), &["--rate", "500"]);
    let data = dir.path().join("data");

    // One SIGTERM: the drain keeps trying until the budget is spent, then
    // the process exits 1 saying what it abandons.
    let cfg = config(
        dir.path(),
        &data,
        addr,
        "shutdown_timeout_ms=3000",
        "disk_full_retry_ms=100",
    );
    let (mut c, metrics) = spawn_unwritable(&cfg);
    wait_stuck(metrics);
    let t = Instant::now();
    let st = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(20));
    let took = t.elapsed();
    let out = c.output();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        took >= Duration::from_millis(2300) && took < Duration::from_secs(8),
        "exit after {took:?}\n{out}"
    );
    assert!(out.contains("records not written"), "{out}");

    // Two SIGTERMs: the first one waits (a minute of budget), the second
    // exits at once.
    let cfg = config(
        dir.path(),
        &data,
        addr,
        "shutdown_timeout_ms=60000",
        "disk_full_retry_ms=100",
    );
    let (mut c, metrics) = spawn_unwritable(&cfg);
    wait_stuck(metrics);
    unsafe { libc::kill(c.child.id() as i32, libc::SIGTERM) };
    c.wait_line("signal 15: stopping", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        c.child.try_wait().unwrap(),
        None,
        "first SIGTERM did not wait"
    );
    let t = Instant::now();
    let st = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(5));
    assert_eq!(st.code(), Some(130), "{}", c.output());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(c.output().contains("second signal"), "{}", c.output());
}

#[test]
fn tls_certificates_are_verified_without_an_off_switch() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, addr) = start_mock(&dir.path().join("tls"), &[]);
    // The mock's certificate is signed by its own CA: without `ca_file`
    // the collector must refuse it.
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[http]\nlisten=\"127.0.0.1:0\"\n[sink]\npath=\"{}\"\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
             symbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n",
            dir.path().join("data").display(),
            p = addr.port()
        ),
    )
    .unwrap();
    let mut c = spawn(&["run", "--config", cfg.to_str().unwrap()]);
    let line = c.wait_line("instrument list unavailable", Duration::from_secs(30));
    assert!(line.contains("UnknownIssuer"), "{line}");
    let st = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{}", c.output());
    assert!(!c.output().contains("metrics and health on"));
}

//! Helpers shared by the integration tests (each test file is its own crate
//! and takes what it needs with `mod common;`):
//! - here: end-to-end tests start the mock exchange and the collector as real
//!   processes (the built `marketprism` binary), scrape them, read output;
//! - [`alloc`]: the counting global allocator of the heap checks;
//! - [`fixtures`]: documented payloads and real captures, in the checkout;
//! - [`venue`]: one venue connection's parser state, fed frame by frame;
//! - [`nats`]: a minimal NATS client, independent of the code under test;
//! - [`clickhouse`]: the real ClickHouse engine (chdb) behind its HTTP interface;
//! - [`configs`]: collector configs several end-to-end tests share.
#![allow(dead_code)]

pub mod alloc;
pub mod clickhouse;
pub mod configs;
pub mod fixtures;
pub mod nats;
pub mod venue;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_marketprism");

/// A child process killed on drop (tests never leave strays behind).
pub struct Proc {
    pub child: Child,
    pub lines: Receiver<String>,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits for an output line containing `needle`; returns it.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; output so far:\n{}",
                    self.log.lock().unwrap().join("\n")
                ),
            }
        }
    }

    pub fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends a signal and waits for the exit status.
    pub fn signal_and_wait(&mut self, sig: i32, timeout: Duration) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > end {
                panic!(
                    "process did not exit within {timeout:?}; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Spawns `marketprism args...`, merging stdout and stderr lines into one channel.
pub fn spawn(args: &[&str]) -> Proc {
    // Benchmarks compare builds with `MARKETPRISM_BIN=/path/to/other/build`.
    let bin = std::env::var("MARKETPRISM_BIN").unwrap_or_else(|_| BIN.to_string());
    let mut cmd = Command::new(bin);
    cmd.args(args).env("MARKETPRISM_LOG", "info");
    spawn_cmd(cmd)
}

/// Spawns `cmd` (output piped and collected as [`spawn`] does).
pub fn spawn_cmd(mut cmd: Command) -> Proc {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn marketprism");
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
    Proc {
        child,
        lines: rx,
        log,
    }
}

/// Starts the mock with TLS in `tls_dir`; returns it and its address.
pub fn start_mock(tls_dir: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec![
        "mock-exchange",
        "--listen",
        "127.0.0.1:0",
        "--tls-dir",
        tls_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    // Benchmarks comparing collector builds keep this build's mock (its
    // options) with `MARKETPRISM_MOCK_BIN`.
    let p = match std::env::var("MARKETPRISM_MOCK_BIN") {
        Ok(bin) => {
            let mut cmd = Command::new(bin);
            cmd.args(&args).env("MARKETPRISM_LOG", "info");
            spawn_cmd(cmd)
        }
        Err(_) => spawn(&args),
    };
    let line = p.wait_line("listening on", Duration::from_secs(20));
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse mock address from {line:?}"));
    (p, addr)
}

/// Starts the collector on `config`; returns it and its metrics address.
pub fn start_collector(config: &Path) -> (Proc, SocketAddr) {
    let p = spawn(&["run", "--config", config.to_str().unwrap()]);
    let line = p.wait_line("metrics and health on http://", Duration::from_secs(30));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse metrics address from {line:?}"));
    (p, addr)
}

/// Plain HTTP/1.1 GET (for /metrics and /health); returns (status, body).
/// The collector's `/metrics` text.
pub fn scrape(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").1
}

/// The NATS and spill series of `/metrics` (what a NATS test shows when it
/// times out).
pub fn nats_and_spill_metrics(addr: SocketAddr) -> String {
    scrape(addr)
        .lines()
        .filter(|l| l.starts_with("marketprism_nats") || l.starts_with("marketprism_spill"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// HTTPS GET against the mock (its /mock/stats), trusting its CA.
pub fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(cfg),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// Sum of a metric family's samples whose line contains every `filters` entry.
pub fn metric_sum(text: &str, name: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Every JSON line of every `.jsonl` file under `dir`, with its file name
/// (files complete: the collector has stopped).
pub fn read_records(dir: &Path) -> Vec<(String, sonic_rs::Value)> {
    read_records_from(dir, false)
}

/// [`read_records`] while the collector still writes: a last line whose
/// write is under way is left for the next poll.
pub fn read_records_so_far(dir: &Path) -> Vec<(String, sonic_rs::Value)> {
    read_records_from(dir, true)
}

fn read_records_from(dir: &Path, live: bool) -> Vec<(String, sonic_rs::Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        assert_eq!(
            f.extension().and_then(|e| e.to_str()),
            Some("jsonl"),
            "{f:?}"
        );
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let mut text = std::fs::read_to_string(&f).unwrap();
        if live {
            text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        }
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "torn last line in {name}"
        );
        for line in text.lines() {
            let v: sonic_rs::Value = sonic_rs::from_str(line)
                .unwrap_or_else(|e| panic!("bad JSON line in {name}: {e}: {line}"));
            out.push((name.clone(), v));
        }
    }
    out
}

/// A JSON number field of the stats answer of the mock, e.g. "trades_sent_total".
pub fn json_u64(body: &str, key: &str) -> u64 {
    use sonic_rs::JsonValueTrait;
    let v: sonic_rs::Value = sonic_rs::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v.get(key)
        .and_then(|x| x.as_u64())
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

/// Polls `f` until it returns true.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Waits until the mock's paced markets have ended (its trade count stopped
/// growing over 700 ms) and returns how many trades it sent.
pub fn wait_markets_finished(mock: SocketAddr, ca: &Path, timeout: Duration) -> u64 {
    let mut sent = 0;
    wait_until("markets finished", timeout, || {
        let now = json_u64(&https_get(mock, ca, "/mock/stats"), "trades_sent_total");
        let done = now > 0 && now == sent;
        sent = now;
        std::thread::sleep(Duration::from_millis(700));
        done
    });
    sent
}

/// Counts by key.
pub fn counts<K: std::hash::Hash + Eq>(it: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut m = HashMap::new();
    for k in it {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `nats-server` binary: on PATH or Debian's /usr/sbin.
pub fn nats_server_bin() -> String {
    for p in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("nats-server not found: install it (Debian: apt-get install nats-server); .ci/run does");
}

/// Starts nats-server with JetStream on `port` (monitoring on `mport`),
/// storing in `store`; waits until it accepts connections.
pub fn start_nats(port: u16, mport: u16, store: &Path) -> Proc {
    let mut child = Command::new(nats_server_bin())
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &mport.to_string(),
            "-sd",
            store.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nats-server");
    let (_tx, rx) = channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let err = child.stderr.take().unwrap();
    let l2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let p = Proc {
        child,
        lines: rx,
        log,
    };
    let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    wait_until("nats-server up", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok() && http_get(addr, "/healthz").0 == 200
    });
    p
}

/// Messages stored in a JetStream stream, from the monitoring endpoint.
pub fn stream_messages(mport: u16, stream: &str) -> u64 {
    let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let (code, body) = http_get(addr, "/jsz?accounts=true&streams=true");
    if code != 200 {
        return 0;
    }
    // The server pretty-prints; names and numbers contain no spaces.
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    // {"account_details":[{"stream_detail":[{"name":"MARKET_DATA","state":{"messages":N,...
    let Some(i) = body.find(&format!("\"name\":\"{stream}\"")) else {
        return 0;
    };
    let rest = &body[i..];
    let Some(j) = rest.find("\"messages\":") else {
        return 0;
    };
    rest[j + 11..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// utime+stime of a process in seconds (from /proc).
pub fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that closes the command name: state is 0, utime 11, stime 12.
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// utime+stime in seconds of a process's shard threads (named `coreN…`):
/// the collector's cores, without the kernel's io_uring workers.
pub fn core_thread_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut total = 0.0;
    for t in tasks.flatten() {
        let s = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let comm = s.split_once('(').and_then(|(_, r)| r.rsplit_once(')'));
        let Some((name, rest)) = comm else { continue };
        if !name.starts_with("core") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        let v = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        total += v(11) + v(12);
    }
    total / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Cumulative buckets (upper bound, count) of a histogram family in an
/// OpenMetrics text, summed over label sets, by bound.
pub fn histogram_buckets(metrics: &str, family: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{family}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for l in metrics.lines().filter(|l| l.starts_with(&prefix)) {
        let Some(le) = l.split("le=\"").nth(1).and_then(|x| x.split('"').next()) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let n: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        match buckets.iter_mut().find(|b| b.0 == le) {
            Some(b) => b.1 += n,
            None => buckets.push((le, n)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Quantile `want` of histogram `family` in a /metrics text, as "≤ bound unit"
/// (bound × `scale`), summed over all label sets.
pub fn quantile_of(metrics: &str, family: &str, want: f64, scale: f64, unit: &str) -> String {
    let buckets = histogram_buckets(metrics, family);
    let n = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let target = (want * n).ceil();
    buckets
        .iter()
        .find(|b| b.1 >= target && n > 0.0)
        .map(|b| format!("≤ {:.3} {unit}", b.0 * scale))
        .unwrap_or_else(|| "n/a".into())
}

/// A numeric environment variable, or `d`.
pub fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

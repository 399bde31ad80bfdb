//! The HTTP listeners as MarketPrism's deployment uses them: `/health` on its
//! own listener and `/metrics` on another, addresses from the config or from
//! MarketPrism's environment variables, and both safe to open to any peer
//! (connection cap, header and write timeouts, request size limit).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const REJECTED: &str = "marketprism_http_connections_rejected_total";
const ACCEPTED: &str = "marketprism_http_connections_accepted_total";
const OPEN: &str = "marketprism_http_connections_open";
/// A few trades, then quiet: the collector's memory settles fast.
const QUIET: &[&str] = &["--trades-per-symbol", "100"];

/// A config collecting Binance spot trades from the mock; `http` is the
/// body of its `[http]` table.
fn write_config(dir: &Path, mock: SocketAddr, http: &str) -> PathBuf {
    let text = format!(
        "[engine]\ncores = [0]\n[http]\n{http}\n[sink]\npath = \"{data}\"\n\
         [exchanges.binance_spot]\nws_url = \"wss://localhost:{port}\"\n\
         rest_url = \"https://localhost:{port}\"\nsymbols = [\"BTCUSDT\", \"ETHUSDT\"]\n\
         data_types = [\"trade\"]\nca_file = \"{ca}\"\n",
        data = dir.join("data").display(),
        port = mock.port(),
        ca = dir.join("tls/ca.pem").display(),
    );
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Two cores and three venues: a /metrics answer several times larger
/// than what the kernel buffers for a peer that does not read.
fn big_config(dir: &Path, mock: SocketAddr, http: &str) -> PathBuf {
    let venue = |key: &str, path: &str, sym: &str| {
        format!(
            "[exchanges.{key}]\nws_url = \"wss://localhost:{port}{path}\"\n\
             rest_url = \"https://localhost:{port}\"\nsymbols = [\"{sym}\"]\n\
             data_types = [\"trade\"]\nca_file = \"{ca}\"\n",
            port = mock.port(),
            ca = dir.join("tls/ca.pem").display(),
        )
    };
    let text = format!(
        "[engine]\ncores = [0, 1]\n[http]\n{http}\n[sink]\npath = \"{data}\"\n{}{}{}",
        venue("binance_spot", "", "BTCUSDT"),
        venue("okx_spot", "/ws/v5/public", "BTC-USDT"),
        venue("okx_derivatives", "/ws/v5/public", "BTC-USDT-SWAP"),
        data = dir.join("data").display(),
    );
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `marketprism args` with exactly `env` of the variables it reads (the
/// test's own environment cleared of them).
fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for v in [
        "MARKETPRISM_LOG",
        "MARKETPRISM_LOG_LEVEL",
        "LOG_LEVEL",
        "MARKETPRISM_NATS_URL",
        "NATS_URL",
        "MARKETPRISM_NATS_SERVERS",
        "METRICS_PORT",
        "HEALTH_CHECK_PORT",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    spawn_cmd(cmd)
}

/// Runs a command to its end: (exit code, stdout and stderr lines).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut p = spawn_env(args, env);
    let code = p.child.wait().unwrap().code().unwrap_or(-1);
    // The pipes are closed: collect until both readers are done.
    let mut out = Vec::new();
    while let Ok(l) = p.lines.recv_timeout(Duration::from_secs(5)) {
        out.push(l);
    }
    (code, out.join("\n"))
}

/// The address after `http://` in a log line.
fn addr_in(line: &str) -> SocketAddr {
    line.split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// Starts the collector; returns it, its metrics and its health address.
fn start(cfg: &Path) -> (Proc, SocketAddr, SocketAddr) {
    let p = spawn_env(
        &["run", "--config", cfg.to_str().unwrap()],
        &[("MARKETPRISM_LOG", "info")],
    );
    let metrics = addr_in(&p.wait_line("metrics and health on http://", Duration::from_secs(30)));
    let health = addr_in(&p.wait_line("health only on http://", Duration::from_secs(5)));
    (p, metrics, health)
}

fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// One listener's connection count from a scrape.
fn conns(m: &str, family: &str, listener: &str, reason: Option<&str>) -> u64 {
    let l = format!("listener=\"{listener}\"");
    let r = reason.map(|r| format!("reason=\"{r}\""));
    let mut f = vec![l.as_str()];
    if let Some(r) = &r {
        f.push(r);
    }
    metric_sum(m, family, &f) as u64
}

/// A connection that sent half a request head and waits.
fn half_head(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s
}

/// A GET of /metrics in one write, errors ignored: what came back.
fn probe(addr: SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
}

/// Asks for /metrics with a receive buffer of a few KiB set before connect
/// (so the window the server sees is tiny), then never reads.
fn never_reads(addr: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    // SAFETY: plain socket calls on a descriptor owned by `s` from creation.
    let s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let s = TcpStream::from_raw_fd(fd);
        let bytes: libc::c_int = 2048;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        s
    };
    (&s).write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s
}

#[test]
fn health_and_metrics_answer_on_separate_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, mock) = start_mock(&dir.path().join("tls"), QUIET);
    let cfg = write_config(
        dir.path(),
        mock,
        "listen = \"127.0.0.1:0\"\nhealth_listen = \"127.0.0.1:0\"",
    );
    let (_c, metrics, health) = start(&cfg);
    assert_ne!(metrics, health);
    let mut health_polls = 0;
    wait_until("connected", Duration::from_secs(30), || {
        health_polls += 1;
        http_get(health, "/health").0 == 200
    });
    let (code, body) = http_get(health, "/health");
    assert_eq!(code, 200);
    // MarketPrism's words on its listener (its scripts grep for them).
    assert!(body.starts_with("{\"status\": \"healthy\","), "{body}");
    // The metrics listener answers /health too (existing users, `top`).
    let (code, body) = http_get(metrics, "/health");
    assert_eq!(code, 200);
    assert!(body.starts_with("{\"status\":\"ok\","), "{body}");
    let (code, body) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(body.ends_with("# EOF\n"), "{body}");
    // The health listener answers nothing else.
    for path in ["/metrics", "/debug/memory", "/debug/latency", "/"] {
        assert_eq!(
            http_get(health, path),
            (
                404,
                "{\"error\":\"not found; this listener answers /health only\"}".to_string()
            ),
            "{path}"
        );
    }
    // Every connection of each listener is counted: this scrape is the
    // metrics listener's 3rd.
    let (_, m) = http_get(metrics, "/metrics");
    assert_eq!(conns(&m, ACCEPTED, "metrics", None), 3);
    assert_eq!(conns(&m, ACCEPTED, "health", None), health_polls + 1 + 4);
    assert_eq!(conns(&m, OPEN, "metrics", None), 1, "only this scrape");
    assert_eq!(conns(&m, OPEN, "health", None), 0);
    for reason in [
        "limit",
        "evicted",
        "header_timeout",
        "write_timeout",
        "too_large",
        "bad_request",
    ] {
        for l in ["metrics", "health"] {
            let line = format!("{REJECTED}{{listener=\"{l}\",reason=\"{reason}\"}} 0\n");
            assert!(m.contains(&line), "{line}: {m}");
        }
    }
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[http]\nlisten = \"0.0.0.0:9092\"\n[sink]\nkind = [\"file\", \"nats\"]\n\
         [sink.nats]\nservers = [\"nats://file:4222\"]\n\
         [exchanges.binance_spot]\nsymbols = [\"BTCUSDT\"]\ndata_types = [\"trade\"]\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (code, out) = run_env(&["check-config", cfg], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("sink file:data + nats:nats://file:4222 "),
        "{out}"
    );
    assert!(
        out.contains("  http: /metrics and /health on http://0.0.0.0:9092; per"),
        "{out}"
    );
    assert!(!out.contains("environment:"), "{out}");

    let (code, out) = run_env(
        &["check-config", cfg],
        &[
            ("MARKETPRISM_NATS_SERVERS", "nats://servers:1"),
            ("NATS_URL", "nats://url:2"),
            ("METRICS_PORT", "9100"),
            ("HEALTH_CHECK_PORT", "8087"),
            ("LOG_LEVEL", "WARNING"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sink file:data + nats:nats://url:2 "), "{out}");
    assert!(
        out.contains(
            "  http: /metrics and /health on http://0.0.0.0:9100; \
             /health also on http://0.0.0.0:8087/health; per"
        ),
        "{out}"
    );
    let env_lines: Vec<&str> = out.lines().filter(|l| l.contains("environment:")).collect();
    assert_eq!(
        env_lines,
        [
            "  environment: NATS_URL=nats://url:2 -> sink.nats.servers",
            "  environment: MARKETPRISM_NATS_SERVERS=nats://servers:1 -> sink.nats.servers \
             (ignored: NATS_URL takes precedence)",
            "  environment: METRICS_PORT=9100 -> http.listen",
            "  environment: HEALTH_CHECK_PORT=8087 -> http.health_listen",
            "  environment: LOG_LEVEL=WARNING -> log level",
        ]
    );
    let (code, out) = run_env(
        &["check-config", cfg],
        &[
            ("MARKETPRISM_NATS_URL", "nats://a:1,nats://b:2"),
            ("NATS_URL", "nats://url:2"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("sink file:data + nats:nats://a:1,nats://b:2 "),
        "{out}"
    );

    // A bad value is a configuration error naming the variable, for
    // `check-config` and `run` alike.
    for (env, needle) in [
        (
            ("METRICS_PORT", "nine"),
            "config error at `METRICS_PORT`: `nine` is not a port number",
        ),
        (
            ("HEALTH_CHECK_PORT", "70000"),
            "config error at `HEALTH_CHECK_PORT`: `70000` is not a port number",
        ),
        (
            ("LOG_LEVEL", "loud"),
            "config error at `LOG_LEVEL`: `loud` is not a log level",
        ),
        (
            ("NATS_URL", "http://x:1"),
            "config error at `sink.nats.servers[0] (set by environment variable NATS_URL=http://x:1)`",
        ),
    ] {
        for cmd in [&["check-config", cfg][..], &["run", "--config", cfg][..]] {
            let (code, out) = run_env(cmd, &[env]);
            assert_eq!(code, 2, "{cmd:?} {env:?}: {out}");
            assert!(out.contains(needle), "{cmd:?} {env:?}: {out}");
        }
    }
}

#[test]
fn a_run_takes_its_ports_and_log_level_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, mock) = start_mock(&dir.path().join("tls"), QUIET);
    // Port 1 in the file: only the environment's port can work.
    let cfg = write_config(dir.path(), mock, "listen = \"127.0.0.1:1\"");
    let (mp, hp) = (free_port(), free_port());
    let (mps, hps) = (mp.to_string(), hp.to_string());
    let c = spawn_env(
        &["run", "--config", cfg.to_str().unwrap()],
        &[
            ("METRICS_PORT", &mps),
            ("HEALTH_CHECK_PORT", &hps),
            ("LOG_LEVEL", "ERROR"),
        ],
    );
    let metrics: SocketAddr = format!("127.0.0.1:{mp}").parse().unwrap();
    let health: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
    wait_until("health listener up", Duration::from_secs(30), || {
        TcpStream::connect(health).is_ok() && http_get(health, "/health").0 == 200
    });
    let (code, m) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    assert!(
        m.contains(&format!("{ACCEPTED}{{listener=\"health\"}} ")),
        "{m}"
    );
    // LOG_LEVEL=ERROR: not one of the start-up info lines.
    let out = c.output();
    assert!(!out.contains(" INFO "), "{out}");
}

#[test]
fn a_flood_of_half_sent_heads_stays_bounded_and_scrapes_are_answered() {
    const FLOOD: u64 = 3000;
    const CAP: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let (_mock, mock) = start_mock(&dir.path().join("tls"), QUIET);
    // A header timeout far above the flood's duration: no connection times
    // out during it, so every count below is exact.
    let cfg = write_config(
        dir.path(),
        mock,
        &format!(
            "listen = \"127.0.0.1:0\"\nhealth_listen = \"127.0.0.1:0\"\n\
             max_connections = {CAP}\nheader_timeout_ms = 300000"
        ),
    );
    let (c, metrics, health) = start(&cfg);
    let pid = c.child.id();
    let mut health_polls = 0u64;
    wait_until("connected", Duration::from_secs(30), || {
        health_polls += 1;
        http_get(health, "/health").0 == 200
    });
    let mut scrapes = 0u64;
    // Before the baseline, every per-connection path has run once: the
    // allocator's pools exist already.
    // (One less than the cap, so that no scrape makes room by closing one.)
    let warm: Vec<TcpStream> = (1..CAP).map(|_| half_head(metrics)).collect();
    drop(warm);
    wait_until(
        "warm-up connections closed",
        Duration::from_secs(20),
        || {
            scrapes += 1;
            let m = http_get(metrics, "/metrics").1;
            conns(&m, OPEN, "metrics", None) == 1
                && conns(&m, ACCEPTED, "metrics", None) == CAP - 1 + scrapes
        },
    );
    let before = rss_bytes(pid);
    let started = Instant::now();
    let mut held = Vec::with_capacity(FLOOD as usize);
    for i in 0..FLOOD {
        held.push(half_head(metrics));
        if i % 500 == 499 {
            // A scrape and a health check are answered in the middle of it.
            let (code, body) = http_get(metrics, "/metrics");
            assert_eq!(code, 200, "scrape after {} half heads", i + 1);
            assert!(body.ends_with("# EOF\n"));
            scrapes += 1;
            assert_eq!(http_get(health, "/health").0, 200);
            health_polls += 1;
        }
    }
    let flood_time = started.elapsed();
    // Each scrape is a connection too; the counts are exact once the
    // listener has accepted the whole flood.
    let mut m = String::new();
    wait_until("the whole flood accepted", Duration::from_secs(60), || {
        m = http_get(metrics, "/metrics").1;
        scrapes += 1;
        conns(&m, ACCEPTED, "metrics", None) == CAP - 1 + FLOOD + scrapes
    });
    let after = rss_bytes(pid);
    // The cap holds CAP connections, this scrape and CAP - 1 half heads;
    // every other half head was closed to make room.
    assert_eq!(conns(&m, OPEN, "metrics", None), CAP, "{m}");
    assert_eq!(
        conns(&m, REJECTED, "metrics", Some("evicted")),
        FLOOD - (CAP - 1)
    );
    for reason in ["limit", "header_timeout", "write_timeout", "too_large"] {
        assert_eq!(conns(&m, REJECTED, "metrics", Some(reason)), 0, "{reason}");
    }
    assert_eq!(conns(&m, ACCEPTED, "health", None), health_polls);
    assert_eq!(conns(&m, REJECTED, "health", None), 0);
    // Memory: tuning/README.md bounds a connection waiting for its head by
    // 32 KiB (measured: about 12 KiB); the flood added less than the cap's worth.
    let grown = after.saturating_sub(before);
    eprintln!("flood of {FLOOD}: RSS {before} -> {after} bytes in {flood_time:?}");
    assert!(
        grown < CAP * (32 << 10),
        "RSS grew {grown} bytes ({before} -> {after}) during the flood"
    );
    assert!(
        flood_time < Duration::from_secs(300),
        "flood took {flood_time:?}"
    );
    drop(held);
    // Closed by their peers: the slots empty without a refusal.
    wait_until("held connections closed", Duration::from_secs(20), || {
        m = http_get(metrics, "/metrics").1;
        conns(&m, OPEN, "metrics", None) == 1
    });
    assert_eq!(conns(&m, REJECTED, "metrics", Some("header_timeout")), 0);
    let out = c.output();
    assert!(
        out.contains("http metrics listener: closed a connection from 127.0.0.1:"),
        "{out}"
    );
    // Rate-limited: one line a second at most, never one per connection.
    let lines = out.matches("http metrics listener: closed").count() as u64;
    assert!(
        lines <= started.elapsed().as_secs() + 1,
        "{lines} log lines for one flood"
    );
}

#[test]
fn slow_heads_time_out_and_large_or_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, mock) = start_mock(&dir.path().join("tls"), QUIET);
    let cfg = write_config(
        dir.path(),
        mock,
        "listen = \"127.0.0.1:0\"\nhealth_listen = \"127.0.0.1:0\"\nheader_timeout_ms = 1000",
    );
    let (_c, metrics, health) = start(&cfg);
    // Header timeout: 3 half heads on the health listener are closed,
    // unanswered, once a second has passed.
    let t0 = Instant::now();
    let mut held: Vec<TcpStream> = (0..3).map(|_| half_head(health)).collect();
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        assert_eq!(s.read_to_end(&mut buf).unwrap(), 0);
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "closed after {waited:?}, before the 1 s timeout"
    );
    let (_, m) = http_get(metrics, "/metrics");
    assert_eq!(conns(&m, REJECTED, "health", Some("header_timeout")), 3);

    // A head over 8 KiB: 431. A request body: 413.
    let mut s = TcpStream::connect(health).unwrap();
    let big = "x".repeat(9000);
    let _ =
        s.write_all(format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    let mut s = TcpStream::connect(health).unwrap();
    s.write_all(
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    // Not HTTP: 400.
    let mut s = TcpStream::connect(health).unwrap();
    let _ = s.write_all(b"\x16\x03\x01 not http\r\n\r\n");
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    let (_, m) = http_get(metrics, "/metrics");
    assert_eq!(conns(&m, REJECTED, "health", Some("too_large")), 2);
    assert_eq!(conns(&m, REJECTED, "health", Some("bad_request")), 1);
    assert_eq!(conns(&m, REJECTED, "health", None), 6);
    assert_eq!(conns(&m, REJECTED, "metrics", None), 0);
}

#[test]
fn a_peer_that_never_reads_is_dropped_and_the_cap_holds() {
    const CAP: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (_mock, mock) = start_mock(&dir.path().join("tls"), QUIET);
    let cfg = big_config(
        dir.path(),
        mock,
        &format!(
            "listen = \"127.0.0.1:0\"\nhealth_listen = \"127.0.0.1:0\"\n\
             max_connections = {CAP}\nwrite_timeout_ms = 1500"
        ),
    );
    let (_c, metrics, health) = start(&cfg);
    let (code, full) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    // The kernel buffers at most ~32 KiB for the server (16 KiB asked,
    // doubled) and ~4 KiB for this peer.
    assert!(
        full.len() > 48 << 10,
        "the answer ({} bytes) must exceed the kernel's buffers for this test",
        full.len()
    );
    // CAP peers ask and never read: their answers stall.
    let t0 = Instant::now();
    let mut stuck: Vec<TcpStream> = (0..CAP).map(|_| never_reads(metrics)).collect();
    // A byte arrives once the server read the head and began the answer.
    for s in &stuck {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(s.peek(&mut [0u8; 1]).unwrap(), 1);
    }
    // Every connection is past its head: a new one is closed at once,
    // unanswered, until write_timeout_ms drops the stuck peers.
    let mut refused = 0u64;
    let mut first_answer = Duration::ZERO;
    wait_until("a probe answered", Duration::from_secs(20), || {
        let got = probe(metrics);
        if got.is_empty() {
            refused += 1;
            false
        } else {
            first_answer = t0.elapsed();
            assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
            true
        }
    });
    assert!(refused >= 1, "the cap never refused a connection");
    assert!(
        first_answer >= Duration::from_millis(1450),
        "stuck peers dropped after {first_answer:?}, before write_timeout_ms"
    );
    // Each stuck peer reads the start of its answer, then the end.
    for s in &mut stuck {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(buf.len() < full.len(), "read {} bytes", buf.len());
    }
    let (code, m) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        conns(&m, REJECTED, "metrics", Some("write_timeout")),
        CAP as u64
    );
    assert_eq!(conns(&m, REJECTED, "metrics", Some("limit")), refused);
    assert_eq!(conns(&m, REJECTED, "metrics", Some("evicted")), 0);
    assert_eq!(
        conns(&m, ACCEPTED, "metrics", None),
        1 + CAP as u64 + refused + 1 + 1
    );
    // The other listener was never affected.
    assert_eq!(http_get(health, "/health").0, 200);
}

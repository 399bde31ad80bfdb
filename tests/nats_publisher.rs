//! The NATS JetStream publisher against a real `nats-server` (started per test
//! on free ports with its own store directory). Results are checked
//! independently of our client, through a small blocking NATS client written
//! here (stream info and message fetches over the JetStream API).

mod common;

use common::nats::{on_glommio, Raw};
use marketprism::sink::nats::route::Want;
use marketprism::sink::nats::{CoreNats, NatsSinkConfig, Publisher};
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- server

fn nats_bin() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect()
        })
        .unwrap_or_default();
    candidates.push("/usr/sbin/nats-server".into());
    candidates.push("/usr/local/bin/nats-server".into());
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server not found on PATH or in /usr/sbin: these tests need a real server \
                 (Debian/Ubuntu: `apt-get install -y nats-server`)"
            )
        })
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

struct Server {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = Command::new(nats_bin())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path().join("store"))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                // Ready once it greets with INFO.
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).is_ok() && &b == b"INFO" {
                    return;
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("nats-server exited: {st}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM (the server flushes its store) and wait for the exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ------------------------------------------------------------- helpers

fn config(servers: Vec<String>) -> NatsSinkConfig {
    NatsSinkConfig {
        servers,
        ack_timeout_ms: 3000,
        ..NatsSinkConfig::default()
    }
}

/// A publisher for trade and orderbook subjects of one venue (the stream is
/// created with `trade.>` and `orderbook.>` at connect when absent).
fn new_pub(cfg: NatsSinkConfig, core: usize) -> std::rc::Rc<Publisher> {
    let wants = ["trade", "orderbook"]
        .iter()
        .map(|d| Want {
            data_type: d.to_string(),
            patterns: vec![format!("{d}.binance.spot.>")],
        })
        .collect();
    Publisher::new(cfg, core, wants, Default::default(), None)
}

fn payload(tag: &str, i: usize) -> String {
    format!(
        r#"{{"data_type":"trade","exchange":"binance","symbol":"BTC-USDT","trade_id":"{tag}{i}","price":"64000.{i:08}","pad":"{}"}}"#,
        "x".repeat(i % 97)
    )
}

fn subject(i: usize) -> String {
    format!("trade.binance.spot.S{}-USDT", i % 7)
}

/// Publishes, yielding to the publisher's task now and then and waiting
/// when the queue is full (nothing is dropped).
async fn publish(p: &Publisher, tag: &str, i: usize) {
    let (s, id, body) = (subject(i), format!("{tag}-{i}"), payload(tag, i));
    let mut waited = 0;
    while p.try_publish(&s, &id, body.as_bytes(), true).is_err() {
        waited += 1;
        assert!(waited < 20_000, "queue stayed full");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    if i % 256 == 0 {
        futures_lite::future::yield_now().await;
    }
}

async fn wait_until(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[derive(Debug, Clone, Copy)]
struct Snap {
    published: u64,
    acked: u64,
    duplicates: u64,
    errors: u64,
    reconnects: u64,
    resent: u64,
    /// Records the resend check found already stored (never re-sent).
    resend_skipped: u64,
    connect_failures: u64,
    in_flight: i64,
    buffered: i64,
    left: usize,
}

fn snap(p: &Publisher, left: usize) -> Snap {
    let s = p.stats();
    Snap {
        published: s.published.get(),
        acked: s.acked.get(),
        duplicates: s.duplicates.get(),
        errors: s.errors.get(),
        reconnects: s.reconnects.get(),
        resent: s.resent.get(),
        resend_skipped: s.resend_skipped.get(),
        connect_failures: s.connect_failures.get(),
        in_flight: s.in_flight.get(),
        buffered: s.buffered_msgs.get(),
        left,
    }
}

fn check_stored(raw: &mut Raw, seq: u64, tag: &str, i: usize) {
    let (subj, hdrs, data) = raw.get("MARKET_DATA", seq);
    assert_eq!(subj, subject(i));
    assert_eq!(data, payload(tag, i).as_bytes(), "stream seq {seq}");
    assert!(
        hdrs.contains(&format!("Nats-Msg-Id: {tag}-{i}\r\n")),
        "{hdrs:?}"
    );
}

// --------------------------------------------------------------- tests

#[test]
fn pipelined_acks_20k_exact_payloads() {
    let srv = Server::start(&[]);
    let url = srv.url();
    const N: usize = 20_000;
    let t0 = Instant::now();
    let s = on_glommio(move || async move {
        let p = new_pub(config(vec![url]), 0);
        let run = glommio::spawn_local(p.clone().run());
        for i in 0..N {
            publish(&p, "a", i).await;
        }
        let left = p.drain(Duration::from_secs(20)).await;
        assert!(p.connected());
        let hist = p.stats().ack_latency.count();
        drop(run);
        (snap(&p, left), hist)
    });
    eprintln!("20k publish+ack: {:?}, {:?}", t0.elapsed(), s);
    let (s, hist) = s;
    assert_eq!(s.left, 0);
    assert_eq!(s.acked, N as u64);
    assert_eq!(s.published, N as u64);
    assert_eq!((s.in_flight, s.buffered), (0, 0));
    assert_eq!((s.errors, s.duplicates, s.resent), (0, 0, 0));
    assert_eq!(hist, N as u64);
    let mut raw = Raw::connect(srv.port, None);
    assert_eq!(raw.stream_messages("MARKET_DATA"), N as u64);
    // One connection, in order: stream sequence = publish index + 1.
    for i in [0, 1, 96, 777, 12_345, N - 1] {
        check_stored(&mut raw, i as u64 + 1, "a", i);
    }
}

#[test]
fn same_msg_id_is_deduplicated() {
    let srv = Server::start(&[]);
    let url = srv.url();
    let s = on_glommio(move || async move {
        let p = new_pub(config(vec![url]), 3);
        let run = glommio::spawn_local(p.clone().run());
        p.try_publish("trade.binance.spot.BTC-USDT", "dup-1", b"first", true)
            .unwrap();
        assert_eq!(p.drain(Duration::from_secs(10)).await, 0);
        p.try_publish("trade.binance.spot.BTC-USDT", "dup-1", b"second", true)
            .unwrap();
        p.try_publish("trade.binance.spot.BTC-USDT", "other", b"third", true)
            .unwrap();
        let left = p.drain(Duration::from_secs(10)).await;
        drop(run);
        snap(&p, left)
    });
    assert_eq!(s.left, 0);
    assert_eq!((s.acked, s.duplicates, s.errors), (3, 1, 0));
    let mut raw = Raw::connect(srv.port, None);
    assert_eq!(raw.stream_messages("MARKET_DATA"), 2);
    assert_eq!(raw.get("MARKET_DATA", 1).2, b"first");
    assert_eq!(raw.get("MARKET_DATA", 2).2, b"third");
}

#[test]
fn server_restart_loses_and_duplicates_nothing() {
    let srv = Server::start(&[]);
    let url = srv.url();
    const N: usize = 30_000;
    let srv = std::sync::Arc::new(std::sync::Mutex::new(srv));
    let srv2 = srv.clone();
    let s = on_glommio(move || async move {
        let p = new_pub(config(vec![url]), 1);
        let run = glommio::spawn_local(p.clone().run());
        for i in 0..N {
            if (N / 3 + 1..N / 3 + 2000).contains(&i) {
                continue; // published while the server was down
            }
            publish(&p, "r", i).await;
            if i == N / 3 {
                // Some acked, some in flight: kill the server mid-stream.
                let pp = p.clone();
                assert!(
                    wait_until(Duration::from_secs(10), || pp.stats().acked.get() > 2000).await
                );
                srv2.lock().unwrap().stop();
                assert!(wait_until(Duration::from_secs(5), || !pp.connected()).await);
                // Keep publishing into the queue while the server is down.
                for j in i + 1..i + 2000 {
                    publish(&p, "r", j).await;
                }
                srv2.lock().unwrap().spawn();
            }
        }
        let left = p.drain(Duration::from_secs(30)).await;
        drop(run);
        snap(&p, left)
    });
    eprintln!("restart: {s:?}");
    assert_eq!(s.left, 0);
    assert!(s.reconnects >= 1, "{s:?}");
    let port = srv.lock().unwrap().port;
    let mut raw = Raw::connect(port, None);
    assert_eq!(raw.stream_messages("MARKET_DATA"), N as u64, "{s:?}");
    // Records stored whose acks the kill lost are found by the resend check
    // and skipped instead of re-sent: each record is acked or skipped, once.
    assert_eq!(
        (s.acked + s.resend_skipped, s.published),
        (N as u64, N as u64),
        "{s:?}"
    );
}

#[test]
fn failover_to_second_server() {
    let srv = Server::start(&[]);
    let dead = format!("nats://127.0.0.1:{}", free_port());
    let urls = vec![dead, srv.url()];
    let s = on_glommio(move || async move {
        let p = new_pub(config(urls), 0);
        let run = glommio::spawn_local(p.clone().run());
        for i in 0..1000 {
            publish(&p, "f", i).await;
        }
        let left = p.drain(Duration::from_secs(15)).await;
        drop(run);
        snap(&p, left)
    });
    assert_eq!(s.left, 0);
    assert_eq!(s.acked, 1000);
    assert!(s.connect_failures >= 1, "{s:?}");
    let mut raw = Raw::connect(srv.port, None);
    assert_eq!(raw.stream_messages("MARKET_DATA"), 1000);
}

#[test]
fn auth_wrong_and_right_password() {
    let srv = Server::start(&["--user", "u", "--pass", "p"]);
    let url = srv.url();
    let (bad, good) = on_glommio(move || async move {
        let mut cfg = config(vec![url.clone()]);
        cfg.user = Some("u".into());
        cfg.password = Some("wrong".into());
        let p = new_pub(cfg, 0);
        let run = glommio::spawn_local(p.clone().run());
        p.try_publish("trade.binance.spot.BTC-USDT", "x1", b"x", true)
            .unwrap();
        let pp = p.clone();
        assert!(wait_until(Duration::from_secs(10), || pp.stats().errors.get() >= 2).await);
        assert!(!p.connected());
        drop(run);
        let bad = snap(&p, p.drain(Duration::ZERO).await);

        let mut cfg = config(vec![url]);
        cfg.user = Some("u".into());
        cfg.password_env = Some("MP_NATS_TEST_PASSWORD".into());
        std::env::set_var("MP_NATS_TEST_PASSWORD", "p");
        let p = new_pub(cfg, 0);
        let run = glommio::spawn_local(p.clone().run());
        for i in 0..100 {
            publish(&p, "auth", i).await;
        }
        let left = p.drain(Duration::from_secs(10)).await;
        drop(run);
        (bad, snap(&p, left))
    });
    assert!(
        bad.errors >= 2 && bad.acked == 0 && bad.left == 1,
        "{bad:?}"
    );
    assert_eq!((good.left, good.acked, good.errors), (0, 100, 0));
    let mut raw = Raw::connect(srv.port, Some(("u", "p")));
    assert_eq!(raw.stream_messages("MARKET_DATA"), 100);
    check_stored(&mut raw, 100, "auth", 99);
}

#[test]
fn core_nats_messages_need_no_ack() {
    let srv = Server::start(&[]);
    let url = srv.url();
    let port = srv.port;
    // A raw subscriber sees the plain PUBs.
    let sub = std::thread::spawn(move || {
        let mut raw = Raw::connect(port, None);
        write!(raw.w, "SUB orderbook.> 9\r\nPING\r\n").unwrap();
        assert_eq!(raw.line(), "PONG");
        let mut got = Vec::new();
        while got.len() < 50 {
            let l = raw.line();
            if let Some(rest) = l.strip_prefix("MSG ") {
                let len: usize = rest.rsplit(' ').next().unwrap().parse().unwrap();
                let mut b = vec![0; len + 2];
                raw.r.read_exact(&mut b).unwrap();
                b.truncate(len);
                got.push(b);
            }
        }
        got
    });
    std::thread::sleep(Duration::from_millis(300));
    let s = on_glommio(move || async move {
        let mut cfg = config(vec![url]);
        cfg.core_nats_data_types = CoreNats::List(vec!["orderbook".into()]);
        let p = new_pub(cfg.clone(), 0);
        let run = glommio::spawn_local(p.clone().run());
        for i in 0..50 {
            let ack = false;
            p.try_publish(
                "orderbook.binance.spot.BTC-USDT",
                "",
                format!("ob{i}").as_bytes(),
                ack,
            )
            .unwrap();
        }
        let left = p.drain(Duration::from_secs(10)).await;
        drop(run);
        snap(&p, left)
    });
    assert_eq!((s.left, s.acked, s.published), (0, 0, 50));
    let got = sub.join().unwrap();
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, format!("ob{i}").as_bytes());
    }
}

/// Writes a throw-away CA and a server certificate for 127.0.0.1/localhost.
fn make_pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// Total stored messages from the monitoring endpoint (`/jsz`).
fn jsz_messages(mport: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", mport)).unwrap();
    write!(
        s,
        "GET /jsz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let json = &body[body.find("\r\n\r\n").expect("HTTP answer") + 4..];
    #[derive(Deserialize)]
    struct Jsz {
        messages: u64,
    }
    sonic_rs::from_str::<Jsz>(json).unwrap().messages
}

#[test]
fn tls_with_extra_ca() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let mport = free_port();
    let p = |f: &str| pki.path().join(f).to_string_lossy().into_owned();
    let srv = Server::start(&[
        "--tls",
        "--tlscert",
        &p("server.pem"),
        "--tlskey",
        &p("server.key"),
        "-m",
        &mport.to_string(),
    ]);
    let port = srv.port;
    let ca = pki.path().join("ca.pem");
    let s = on_glommio(move || async move {
        let mut out = Vec::new();
        // tls:// by IP, and nats:// by name on a server that requires TLS
        // (upgraded after INFO says tls_required).
        for (k, url) in [
            format!("tls://127.0.0.1:{port}"),
            format!("nats://localhost:{port}"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut cfg = config(vec![url]);
            cfg.ca_file = Some(ca.clone());
            let p = new_pub(cfg, k);
            let run = glommio::spawn_local(p.clone().run());
            for i in 0..500 {
                publish(&p, &format!("tls{k}"), i).await;
            }
            let left = p.drain(Duration::from_secs(15)).await;
            drop(run);
            out.push(snap(&p, left));
        }
        out
    });
    for s in &s {
        assert_eq!((s.left, s.acked), (0, 500), "{s:?}");
    }
    assert_eq!(jsz_messages(mport), 1000);
}

#[test]
fn ack_timeout_reconnects_and_resends() {
    let srv = Server::start(&[]);
    let url = srv.url();
    let pid = srv.child.as_ref().unwrap().id() as i32;
    const N: usize = 3000;
    let s = on_glommio(move || async move {
        let mut cfg = config(vec![url]);
        cfg.ack_timeout_ms = 300;
        let p = new_pub(cfg, 0);
        let run = glommio::spawn_local(p.clone().run());
        for i in 0..N / 2 {
            publish(&p, "t", i).await;
        }
        let pp = p.clone();
        assert!(wait_until(Duration::from_secs(10), || pp.stats().acked.get() > 0).await);
        // A frozen server: the socket stays open but no ack comes back.
        // SAFETY: plain kill(2) on the child we started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        for i in N / 2..N {
            publish(&p, "t", i).await;
        }
        assert!(wait_until(Duration::from_secs(5), || !pp.connected()).await);
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let left = p.drain(Duration::from_secs(20)).await;
        drop(run);
        snap(&p, left)
    });
    eprintln!("ack timeout: {s:?}");
    assert_eq!((s.left, s.in_flight), (0, 0), "{s:?}");
    assert!(s.reconnects >= 1, "{s:?}");
    let mut raw = Raw::connect(srv.port, None);
    assert_eq!(raw.stream_messages("MARKET_DATA"), N as u64);
}

/// Starts a clustered nats-server node: client port `p`, cluster port `c`,
/// monitor port `m`, routing to the cluster port `peer` if any.
fn cluster_node(dir: &Path, p: u16, c: u16, m: u16, peer: Option<u16>, name: &str) -> Child {
    let mut cmd = Command::new(nats_bin());
    cmd.args([
        "-a",
        "127.0.0.1",
        "-p",
        &p.to_string(),
        "-m",
        &m.to_string(),
    ])
    .args(["--cluster_name", "t", "-n", name])
    .args(["--cluster", &format!("nats://127.0.0.1:{c}")]);
    if let Some(peer) = peer {
        cmd.args(["--routes", &format!("nats://127.0.0.1:{peer}")]);
    }
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .expect("start nats-server")
}

/// Whether the node with monitor port `m` has its route up.
fn routed(m: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", m)) else {
        return false;
    };
    let _ = s.write_all(b"GET /routez HTTP/1.0\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"num_routes\": 1") || body.contains("\"num_routes\":1")
}

fn wait_routed(ma: u16, mb: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(routed(ma) && routed(mb)) {
        assert!(Instant::now() < deadline, "cluster did not form");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A two-node cluster: the publisher is configured with node A only and
/// learns node B from A's INFO `connect_urls`, so failover can reach it.
#[test]
fn learns_cluster_members_from_info() {
    let dir = tempfile::tempdir().unwrap();
    let [pa, pb, ca, cb, ma, mb] = std::array::from_fn(|_| free_port());
    let mut a = cluster_node(dir.path(), pa, ca, ma, Some(cb), "a");
    let mut b = cluster_node(dir.path(), pb, cb, mb, Some(ca), "b");
    // Wait until the route is up (A then announces B's client URL).
    wait_routed(ma, mb);
    let mut cfg = config(vec![format!("nats://127.0.0.1:{pa}")]);
    cfg.jetstream = false;
    let servers = on_glommio(move || async move {
        let p = new_pub(cfg, 0);
        let run = glommio::spawn_local(p.clone().run());
        wait_until(Duration::from_secs(10), || p.servers().len() >= 2).await;
        drop(run);
        p.servers()
    });
    let _ = a.kill();
    let _ = b.kill();
    let _ = (a.wait(), b.wait());
    assert_eq!(
        servers,
        vec![
            format!("nats://127.0.0.1:{pa}"),
            format!("nats://127.0.0.1:{pb}")
        ]
    );
}

/// A node joining after the publisher connected: the server pushes an INFO
/// update with the new `connect_urls`, and the publisher adds the node.
#[test]
fn learns_cluster_members_joining_later() {
    let dir = tempfile::tempdir().unwrap();
    let [pa, pb, ca, cb, ma, mb] = std::array::from_fn(|_| free_port());
    let mut a = cluster_node(dir.path(), pa, ca, ma, None, "a");
    let mut cfg = config(vec![format!("nats://127.0.0.1:{pa}")]);
    cfg.jetstream = false;
    let (servers, connects, before) = on_glommio(move || async move {
        let p = new_pub(cfg, 0);
        let run = glommio::spawn_local(p.clone().run());
        let pp = p.clone();
        assert!(wait_until(Duration::from_secs(10), move || pp.connected()).await);
        let before = p.servers();
        // B joins the cluster now; A tells its connected clients.
        let mut b = cluster_node(dir.path(), pb, cb, mb, Some(ca), "b");
        let pp = p.clone();
        wait_until(Duration::from_secs(20), move || pp.servers().len() >= 2).await;
        let _ = b.kill();
        let _ = b.wait();
        let connects = p.stats().reconnects.get();
        drop(run);
        (p.servers(), connects, before)
    });
    let _ = a.kill();
    let _ = a.wait();
    assert_eq!(before, vec![format!("nats://127.0.0.1:{pa}")]);
    assert_eq!(
        servers,
        vec![
            format!("nats://127.0.0.1:{pa}"),
            format!("nats://127.0.0.1:{pb}")
        ]
    );
    // Learned over the live connection, not by reconnecting.
    assert_eq!(connects, 0);
}

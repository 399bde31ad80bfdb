//! Exactly once past `duplicate_window`: mock exchange → collector → a TCP
//! proxy → nats-server (JetStream, stream `duplicate_window` 2 s). Mid-run
//! the proxy swallows the server's replies for a while (the server stores
//! the collector's publishes, the acks never arrive), then cuts every
//! connection; nats-server is stopped and restarted on the same store after
//! 10 s. The collector resends what it holds unacked; the server no longer
//! remembers those ids, so only the collector's check of the last stored
//! message per subject keeps them from being stored twice. Afterwards every
//! trade the collector received is in the stream exactly once.

mod common;

use common::nats::Raw;
use common::*;
use sonic_rs::JsonValueTrait;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "MARKET_DATA";

const PASS: u8 = 0;
/// Client → server bytes pass; server → client bytes are dropped.
const SWALLOW_REPLIES: u8 = 1;
/// Every connection is cut; new ones are closed at once.
const CUT: u8 = 2;

/// A loopback TCP proxy in front of nats-server with the modes above.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (m, c) = (mode.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if m.load(Ordering::SeqCst) == CUT {
                    continue; // dropped: closed
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                {
                    let mut list = c.lock().unwrap();
                    list.push(client.try_clone().unwrap());
                    list.push(server.try_clone().unwrap());
                }
                let up = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let m1 = m.clone();
                std::thread::spawn(move || pump(up.0, up.1, &m1, false));
                let m2 = m.clone();
                std::thread::spawn(move || pump(server, client, &m2, true));
            }
        });
        Proxy { port, mode, conns }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        if mode == CUT {
            for s in self.conns.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies `from` → `to` until either end closes or the proxy cuts;
/// `replies`: the server → client direction (swallowed on demand).
fn pump(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU8, replies: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match mode.load(Ordering::SeqCst) {
            CUT => break,
            SWALLOW_REPLIES if replies => continue,
            _ => {}
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn collector_config(dir: &Path, mock_port: u16, nats_port: u16) -> std::path::PathBuf {
    let cfg = dir.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0,1]\nbatch_max_delay_ms=10\n[http]\nlisten=\"127.0.0.1:0\"\n\
             [sink]\nkind=[\"file\",\"nats\"]\npath=\"{data}\"\nspill_max_bytes=104857600\n\
             [sink.nats]\nservers=[\"nats://127.0.0.1:{nats_port}\"]\njetstream=true\n\
             stream=\"{STREAM}\"\ncreate_stream=true\nduplicate_window_s=2\nack_timeout_ms=5000\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{mock_port}\"\n\
             rest_url=\"https://localhost:{mock_port}\"\n\
             symbols=[\"BTCUSDT\",\"ETHUSDT\",\"BNBUSDT\"]\ndata_types=[\"trade\"]\n\
             streams_per_connection=2\nca_file=\"{ca}\"\n",
            data = dir.join("data").display(),
            ca = dir.join("tls/ca.pem").display(),
        ),
    )
    .unwrap();
    cfg
}

/// (subject, trade id) of a record's JSON.
fn trade_key(v: &sonic_rs::Value) -> (String, u64) {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let id: u64 = s("trade_id")
        .parse()
        .unwrap_or_else(|_| panic!("trade_id not a number: {v}"));
    (
        format!(
            "trade.{}.{}.{}",
            s("exchange"),
            s("market_type"),
            s("symbol")
        ),
        id,
    )
}

#[test]
fn outage_longer_than_the_duplicate_window_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let store = dir.path().join("js");
    let mut nats = start_nats(np, mp, &store);
    let proxy = Proxy::start(np);
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--rate", "2500", "--trades-per-symbol", "35000"],
    );
    let cfg = collector_config(dir.path(), addr.port(), proxy.port);
    let (mut collector, metrics) = start_collector(&cfg);
    wait_until("some records acked", Duration::from_secs(30), || {
        metric_sum(&scrape(metrics), "marketprism_nats_acked_total", &[]) > 3000.0
    });

    // The server stores, the acks are lost.
    let before = stream_messages(mp, STREAM);
    proxy.set(SWALLOW_REPLIES);
    std::thread::sleep(Duration::from_millis(1500));
    let stored_unacked = stream_messages(mp, STREAM) - before;
    assert!(
        stored_unacked > 1000,
        "the server stored only {stored_unacked} records while acks were swallowed"
    );
    proxy.set(CUT);
    // Down for 10 s (5× duplicate_window): the server forgets those ids.
    unsafe { libc::kill(nats.child.id() as i32, libc::SIGTERM) };
    nats.child.wait().unwrap();
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        metric_sum(&scrape(metrics), "marketprism_nats_connected", &[]),
        0.0
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed()));
    let _nats2 = start_nats(np, mp, &store);
    proxy.set(PASS);

    let ca = dir.path().join("tls/ca.pem");
    let sent = wait_markets_finished(addr, &ca, Duration::from_secs(90));
    let settled = || {
        let m = scrape(metrics);
        metric_sum(&m, "marketprism_messages_written_total", &[]) as u64 >= sent
            && metric_sum(&m, "marketprism_nats_in_flight", &[]) == 0.0
            && metric_sum(&m, "marketprism_nats_buffered_records", &[]) == 0.0
            && metric_sum(&m, "marketprism_spill_records", &[]) == 0.0
    };
    let end = Instant::now() + Duration::from_secs(60);
    while !settled() {
        assert!(
            Instant::now() < end,
            "not settled 60 s after the restart\n{}\ncollector:\n{}",
            nats_and_spill_metrics(metrics),
            collector.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = scrape(metrics);
    let skipped = metric_sum(&m, "marketprism_nats_resend_skipped_total", &[]) as u64;
    let lookups = metric_sum(&m, "marketprism_nats_resend_lookups_total", &[]) as u64;
    assert!(
        metric_sum(&m, "marketprism_nats_reconnects_total", &[]) >= 1.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_resend_lookup_failures_total", &[]),
        0.0
    );
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
            .code(),
        Some(0)
    );
    drop(mock);

    // What the collector received (its file sink), against the stream.
    let is_trade =
        |v: &sonic_rs::Value| v.get("data_type").and_then(|d| d.as_str()) == Some("trade");
    let received: Vec<(String, u64)> = read_records(&dir.path().join("data"))
        .iter()
        .filter(|(_, v)| is_trade(v))
        .map(|(_, v)| trade_key(v))
        .collect();
    assert_eq!(received.len() as u64, sent, "the collector got every trade");
    let in_stream = stream_messages(mp, STREAM);
    assert_eq!(
        in_stream,
        received.len() as u64,
        "stream holds {in_stream} records, the collector received {}: skipped {skipped}, \
         lookups {lookups}, stored while acks were lost {stored_unacked}",
        received.len()
    );
    let mut raw = Raw::connect(np, None);
    // One small write per request: without this each waits on Nagle.
    raw.w.set_nodelay(true).unwrap();
    let stored: Vec<(String, u64)> = raw
        .all(STREAM)
        .iter()
        .filter_map(|(subject, data)| {
            let v: sonic_rs::Value = sonic_rs::from_slice(data).unwrap();
            if !is_trade(&v) {
                return None;
            }
            let k = trade_key(&v);
            assert_eq!(&k.0, subject);
            Some(k)
        })
        .collect();
    let twice: Vec<&(String, u64)> = counts(stored.iter())
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        twice.is_empty(),
        "{} trades stored twice (e.g. {:?}); skipped {skipped}, lookups {lookups}, \
         stored while acks were lost {stored_unacked}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    let want: HashMap<&(String, u64), usize> = counts(received.iter());
    let got: HashMap<&(String, u64), usize> = counts(stored.iter());
    let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
    assert_eq!(missing, 0, "trades received but not in the stream");
    assert_eq!(stored.len(), received.len());
    // No gap: each symbol's ids are consecutive.
    let mut per: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (s, id) in &stored {
        per.entry(s.as_str()).or_default().push(*id);
    }
    assert_eq!(per.len(), 3);
    for (s, ids) in per.iter_mut() {
        ids.sort_unstable();
        assert_eq!(
            ids.last().unwrap() - ids[0] + 1,
            ids.len() as u64,
            "{s}: ids not consecutive"
        );
    }
    assert!(
        skipped > 0 && lookups > 0,
        "the check ran and skipped what the server held (skipped {skipped}, lookups {lookups})"
    );
}

//! Membership and takeover (`[cluster] membership = "jetstream"`): three
//! collector instances, one JetStream stream, the mock exchange producing
//! trades on a clock. An instance is `kill -9`ed mid-run (and, with one
//! replica, started again); the stream must hold every trade from the first
//! one collected to the mock's last exactly once, the survivors must take
//! the dead one's symbols within `takeover_ms`, and no symbol may have two
//! collectors for longer than the handover overlap plus a stated slack.

mod common;

use common::nats::Raw;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SYMBOLS: [&str; 6] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ETHBTC",
];
/// The mock's trades per second per symbol, and trades per symbol.
const RATE: u64 = 100;
const TRADES: u64 = 3000;
const TAKEOVER_MS: u64 = 3000;
const HANDOVER_MS: u64 = 1000;
/// A takeover line may come this long after `takeover_ms`: reading the
/// stream's last trade and scheduling on a loaded 2-core machine.
const TAKEOVER_SLACK_MS: u64 = 1000;
/// Two collectors of one symbol may overlap this much beyond `handover_ms`:
/// the new one's warm-up (connect, first trade) and one key refresh plus
/// one bucket read before the old one sees it warm (2 × ttl / 4 = 1 s).
const OVERLAP_SLACK_MS: u64 = 2500;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Unix ms of a log line's `YYYY-MM-DDTHH:MM:SS.mmmZ` prefix.
fn line_ms(line: &str) -> u64 {
    let n = |a: usize, b: usize| -> i64 { line[a..b].parse().unwrap() };
    let (y, mo, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (h, mi, s, ms) = (n(11, 13), n(14, 16), n(17, 19), n(20, 23));
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (((days * 24 + h) * 60 + mi) * 60 + s) as u64 * 1000 + ms as u64
}

/// One "stream binance_spot SYM: collecting / released" line.
#[derive(Debug, Clone)]
struct Event {
    ms: u64,
    symbol: String,
    collecting: bool,
    taken_over: bool,
}

fn events(log: &str) -> Vec<Event> {
    log.lines()
        .filter_map(|l| {
            let i = l.find("stream binance_spot ")?;
            let rest = &l[i + "stream binance_spot ".len()..];
            let (sym, what) = rest.split_once(": ")?;
            let collecting = what.starts_with("collecting");
            if !collecting && !what.starts_with("released after overlap") {
                return None;
            }
            Some(Event {
                ms: line_ms(l),
                symbol: sym.to_string(),
                collecting,
                taken_over: what.contains("taken over"),
            })
        })
        .collect()
}

/// Per symbol, the intervals (from, to) an instance collected it; an
/// interval still open ends at `end_ms`.
fn intervals(evs: &[Event], end_ms: u64) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for e in evs {
        if e.collecting {
            open.insert(e.symbol.clone(), e.ms);
        } else if let Some(from) = open.remove(&e.symbol) {
            out.entry(e.symbol.clone()).or_default().push((from, e.ms));
        }
    }
    for (s, from) in open {
        out.entry(s).or_default().push((from, end_ms));
    }
    out
}

struct Instance {
    dir: PathBuf,
    cfg: PathBuf,
    proc: Option<(Proc, std::net::SocketAddr)>,
    /// Logs of earlier lives (before a kill), with the kill time.
    past: Vec<(String, u64)>,
}

impl Instance {
    fn metric(&self, name: &str) -> f64 {
        let (_, m) = self.proc.as_ref().expect("instance running");
        metric_sum(&http_get(*m, "/metrics").1, name, &[])
    }

    fn owned(&self) -> u64 {
        self.metric("marketprism_cluster_symbols_owned") as u64
    }

    fn start(&mut self) {
        self.proc = Some(start_collector(&self.cfg));
    }

    fn kill9(&mut self) -> u64 {
        let (mut p, _) = self.proc.take().expect("instance running");
        p.child.kill().unwrap();
        p.child.wait().unwrap();
        let at = now_ms();
        // The reader threads may still hold the last lines for a moment.
        std::thread::sleep(Duration::from_millis(200));
        self.past.push((p.output(), at));
        at
    }

    /// (log, end time) of every life, the current one ending at `end_ms`.
    fn lives(&self, end_ms: u64) -> Vec<(String, u64)> {
        let mut v = self.past.clone();
        if let Some((p, _)) = &self.proc {
            v.push((p.output(), end_ms));
        }
        v
    }
}

fn setup(dir: &Path, np: u16, mock_port: u16, replicas: u32, types: &str) -> Vec<Instance> {
    let syms: Vec<String> = SYMBOLS.iter().map(|s| format!("\"{s}\"")).collect();
    (1..=3)
        .map(|i| {
            let d = dir.join(format!("i{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let cfg = d.join("c.toml");
            std::fs::write(
                &cfg,
                format!(
                    "[cluster]\ninstance={i}\ninstances=3\nreplicas={replicas}\nmembership=\"jetstream\"\n\
                     takeover_ms={TAKEOVER_MS}\nhandover_ms={HANDOVER_MS}\n\
                     [engine]\ncores=[0,1]\n[http]\nlisten=\"127.0.0.1:0\"\n\
                     [sink]\nkind=[\"file\",\"nats\"]\npath=\"{}\"\n[sink.nats]\nservers=[\"nats://127.0.0.1:{np}\"]\n\
                     [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
                     symbols=[{}]\ndata_types=[{types}]\nca_file=\"{}\"\n",
                    d.join("data").display(),
                    syms.join(","),
                    dir.join("tls/ca.pem").display(),
                    p = mock_port
                ),
            )
            .unwrap();
            Instance {
                dir: d,
                cfg,
                proc: None,
                past: Vec::new(),
            }
        })
        .collect()
}

/// Per subject, the ids (`trade_id` or ticker `update_id`) the stream holds.
fn stored_ids(np: u16) -> BTreeMap<String, Vec<u64>> {
    let mut raw = Raw::connect(np, None);
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (subject, payload) in raw.fetch_all("MARKET_DATA") {
        let v: sonic_rs::Value = sonic_rs::from_slice(&payload).unwrap();
        let id = if subject.starts_with("trade.") {
            sonic_rs::JsonValueTrait::as_str(sonic_rs::JsonValueTrait::get(&v, "trade_id").unwrap())
                .unwrap()
                .parse()
                .unwrap()
        } else if subject.starts_with("orderbook.") {
            // Books are checked by `book_records`.
            continue;
        } else if subject.starts_with("ticker.") {
            sonic_rs::JsonValueTrait::as_u64(
                sonic_rs::JsonValueTrait::get(&v, "update_id")
                    .unwrap_or_else(|| panic!("{subject}: no update_id")),
            )
            .unwrap()
        } else {
            panic!(
                "unexpected record on {subject}: {}",
                String::from_utf8_lossy(&payload)
            );
        };
        out.entry(subject).or_default().push(id);
    }
    out
}

/// Per book subject, (`last_update_id`, `ts_ms`) of every stored record.
fn book_records(np: u16) -> BTreeMap<String, Vec<(u64, u64)>> {
    use sonic_rs::JsonValueTrait;
    let mut raw = Raw::connect(np, None);
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (subject, payload) in raw.fetch_all("MARKET_DATA") {
        if !subject.starts_with("orderbook.") {
            continue;
        }
        let v: sonic_rs::Value = sonic_rs::from_slice(&payload).unwrap();
        let id = v.get("last_update_id").and_then(|x| x.as_u64()).unwrap();
        let ts = v.get("ts_ms").and_then(|x| x.as_u64()).unwrap();
        out.entry(subject).or_default().push((id, ts));
    }
    out
}

/// Every subject of `prefix` holds `first..=last` exactly once, `first`
/// at most `max_first` (the collectors start after the mock).
fn assert_exactly_once(ids: &BTreeMap<String, Vec<u64>>, prefix: &str, last: u64, max_first: u64) {
    let subjects: Vec<&String> = ids.keys().filter(|s| s.starts_with(prefix)).collect();
    assert_eq!(subjects.len(), SYMBOLS.len(), "{prefix}: {subjects:?}");
    for s in subjects {
        let got = &ids[s];
        let set: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(
            set.len(),
            got.len(),
            "{s}: {} duplicates",
            got.len() - set.len()
        );
        let first = *set.first().unwrap();
        assert!(first <= max_first, "{s}: first id {first}");
        let want: BTreeSet<u64> = (first..=last).collect();
        let missing: Vec<u64> = want.difference(&set).copied().collect();
        assert!(
            missing.is_empty(),
            "{s}: missing {} ids: {missing:?}",
            missing.len()
        );
        assert_eq!(set, want, "{s}: ids beyond {last}");
    }
}

/// Waits until the stream stops growing and the mock has produced everything.
fn wait_for_the_end(mock_started: Instant, mp: u16) {
    let end = mock_started + Duration::from_millis(TRADES * 1000 / RATE);
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let mut last = 0;
    let mut still = 0;
    wait_until("the stream stops growing", Duration::from_secs(30), || {
        let n = stream_messages(mp, "MARKET_DATA");
        still = if n == last { still + 1 } else { 0 };
        last = n;
        still >= 6
    });
}

#[test]
fn one_replica_takes_over_a_killed_member_and_hands_back() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let rate = RATE.to_string();
    let trades = TRADES.to_string();
    let (_mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--rate", &rate, "--trades-per-symbol", &trades],
    );
    let mock_started = Instant::now();
    let mut inst = setup(dir.path(), np, addr.port(), 1, "\"trade\"");
    let out = std::process::Command::new(BIN)
        .args(["check-config", inst[1].cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("cluster: instance 2 of 3, replicas 1, jetstream membership (bucket marketprism_members, takeover 3000 ms, handover 1000 ms"),
        "{text}"
    );
    for i in inst.iter_mut() {
        i.start();
    }
    wait_until(
        "every symbol owned exactly once, every member warm",
        Duration::from_secs(30),
        || {
            inst.iter().map(Instance::owned).sum::<u64>() == SYMBOLS.len() as u64
                && inst
                    .iter()
                    .all(|i| i.metric("marketprism_cluster_warm") == 1.0)
        },
    );
    let settled_ms = now_ms();
    for i in &inst {
        assert_eq!(i.metric("marketprism_cluster_members_alive"), 3.0);
    }
    // check-config --connect reads the bucket: the members and the share.
    let out = std::process::Command::new(BIN)
        .args(["check-config", "--connect", inst[1].cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("cluster bucket marketprism_members: members [1, 2, 3]; with them and this instance (2), replicas 1:"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  binance_spot: {} of 6 symbols here: ",
            inst[1].owned()
        )),
        "{text}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let counter = |inst: &[Instance], name: &str| -> Vec<f64> {
        inst.iter()
            .map(|i| i.proc.as_ref().map_or(0.0, |_| i.metric(name)))
            .collect()
    };
    let takeovers_before = counter(&inst, "marketprism_cluster_takeovers_total");
    let handovers_before = counter(&inst, "marketprism_cluster_handovers_total");
    // The victim: the instance owning the most symbols.
    let v = (0..3).max_by_key(|&i| inst[i].owned()).unwrap();
    let share = inst[v].owned();
    assert!(share >= 1);
    let killed_ms = inst[v].kill9();
    let victim_syms: BTreeSet<String> = {
        let (log, end) = inst[v].past[0].clone();
        intervals(&events(&log), end)
            .into_iter()
            .filter(|(_, iv)| iv.last().is_some_and(|&(_, to)| to == end))
            .map(|(s, _)| s)
            .collect()
    };
    assert_eq!(
        victim_syms.len() as u64,
        share,
        "{victim_syms:?}\n{}",
        inst[v].past[0].0
    );
    let survivors: Vec<usize> = (0..3).filter(|&i| i != v).collect();
    wait_until(
        "the survivors own every symbol",
        Duration::from_secs(15),
        || survivors.iter().map(|&i| inst[i].owned()).sum::<u64>() == SYMBOLS.len() as u64,
    );
    // Each of the victim's symbols taken over by a survivor within takeover_ms.
    for s in &victim_syms {
        let at: Vec<u64> = survivors
            .iter()
            .flat_map(|&i| events(&inst[i].proc.as_ref().unwrap().0.output()))
            .filter(|e| &e.symbol == s && e.collecting && e.taken_over && e.ms >= killed_ms)
            .map(|e| e.ms)
            .collect();
        assert_eq!(at.len(), 1, "{s}: takeovers at {at:?}");
        let after = at[0] - killed_ms;
        assert!(
            after <= TAKEOVER_MS + TAKEOVER_SLACK_MS,
            "{s} taken over {after} ms after the kill"
        );
    }
    // Each takeover continued from the stream's last trade, and the window
    // between it and the first live trade came from the REST history (its
    // line follows the first live trade: wait for it).
    let logs = || -> String {
        survivors
            .iter()
            .map(|&i| inst[i].proc.as_ref().unwrap().0.output())
            .collect::<Vec<_>>()
            .join("\n")
    };
    wait_until("every takeover backfilled", Duration::from_secs(15), || {
        let l = logs();
        victim_syms.iter().all(|s| {
            l.lines().any(|x| {
                x.contains(&format!("binance_spot {s}: trades Some(")) && x.ends_with("backfilled")
            })
        })
    });
    let survivor_logs = logs();
    for s in &victim_syms {
        let seeded = format!("stream binance_spot {s}: the stream holds trades up to id ");
        let after_kill = survivor_logs
            .lines()
            .filter(|l| l.contains(&seeded) && line_ms(l) >= killed_ms)
            .count();
        assert_eq!(after_kill, 1, "{s}:\n{survivor_logs}");
        assert!(
            survivor_logs
                .lines()
                .any(|l| l.contains(&format!("binance_spot {s}: trades Some("))
                    && l.ends_with("backfilled")),
            "{s}: no backfill after the takeover:\n{survivor_logs}"
        );
    }
    let takeovers: f64 = survivors
        .iter()
        .map(|&i| inst[i].metric("marketprism_cluster_takeovers_total") - takeovers_before[i])
        .sum();
    assert_eq!(takeovers as u64, share);
    for &i in &survivors {
        assert_eq!(inst[i].metric("marketprism_cluster_members_alive"), 2.0);
    }
    std::thread::sleep(Duration::from_secs(2));
    // Back: it takes its share again, make-before-break.
    inst[v].start();
    wait_until(
        "the restarted member owns its share again",
        Duration::from_secs(20),
        || {
            inst[v].owned() == share
                && inst.iter().map(Instance::owned).sum::<u64>() == SYMBOLS.len() as u64
        },
    );
    let handovers: f64 = survivors
        .iter()
        .map(|&i| inst[i].metric("marketprism_cluster_handovers_total") - handovers_before[i])
        .sum();
    wait_for_the_end(mock_started, mp);
    let ids = stored_ids(np);
    assert_exactly_once(&ids, "trade.binance.spot.", TRADES, 10 * RATE);

    // Never two collectors of one symbol for longer than the overlap, once
    // start-up settled (every instance starts by collecting its own share).
    let end = now_ms();
    let mut per_symbol: BTreeMap<String, Vec<(usize, u64, u64)>> = BTreeMap::new();
    for (n, i) in inst.iter().enumerate() {
        for (log, life_end) in i.lives(end) {
            for (s, ivs) in intervals(&events(&log), life_end) {
                for (a, b) in ivs {
                    per_symbol.entry(s.clone()).or_default().push((n, a, b));
                }
            }
        }
    }
    let limit = HANDOVER_MS + OVERLAP_SLACK_MS;
    let mut overlaps = 0;
    for (s, ivs) in &per_symbol {
        for (x, &(i, a0, a1)) in ivs.iter().enumerate() {
            for &(j, b0, b1) in &ivs[x + 1..] {
                if i == j || a1.min(b1) < settled_ms {
                    continue;
                }
                let overlap = a1.min(b1).saturating_sub(a0.max(b0));
                if overlap > 0 {
                    overlaps += 1;
                }
                assert!(
                    overlap <= limit,
                    "{s}: instances {} and {} both collected it for {overlap} ms",
                    i + 1,
                    j + 1
                );
            }
        }
    }
    // The handback overlapped once per symbol handed back.
    assert_eq!(overlaps as u64, share, "{per_symbol:?}");
    assert_eq!(handovers as u64, share);
    for i in inst.iter_mut() {
        let (mut p, _) = i.proc.take().unwrap();
        assert_eq!(
            p.signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
                .code(),
            Some(0),
            "{}",
            i.dir.display()
        );
    }
}

#[test]
fn two_replicas_lose_nothing_when_a_member_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let rate = RATE.to_string();
    let trades = TRADES.to_string();
    let (_mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--rate",
            &rate,
            "--trades-per-symbol",
            &trades,
            "--event-rate",
            "20",
            "--events-per-stream",
            "600",
            // One book update per 10 ms of wall time, as the mock's book
            // clock advances: exchange-time intervals are wall-time ones.
            "--book-rate",
            "100",
            "--book-updates",
            &trades,
        ],
    );
    let mock_started = Instant::now();
    let mut inst = setup(
        dir.path(),
        np,
        addr.port(),
        2,
        "\"trade\",\"ticker\",\"orderbook\"",
    );
    for i in inst.iter_mut() {
        i.start();
    }
    let k = 2 * SYMBOLS.len() as u64;
    wait_until(
        "every symbol owned by two members",
        Duration::from_secs(30),
        || inst.iter().map(Instance::owned).sum::<u64>() == k,
    );
    std::thread::sleep(Duration::from_secs(3));
    inst[0].kill9();
    wait_until(
        "the two survivors own every symbol",
        Duration::from_secs(15),
        || inst[1..].iter().map(Instance::owned).sum::<u64>() == k,
    );
    for i in &inst[1..] {
        let (code, body) = http_get(i.proc.as_ref().unwrap().1, "/health");
        assert_eq!(code, 200);
        assert!(body.contains("\"status\":\"ok\""), "{body}");
    }
    wait_for_the_end(mock_started, mp);
    let ids = stored_ids(np);
    assert_exactly_once(&ids, "trade.binance.spot.", TRADES, 10 * RATE);
    assert_exactly_once(&ids, "ticker.binance.spot.", 600, 10 * 20);
    // Books: once per update id, and (both replicas publishing the state
    // after the first update of each exchange-time interval) one record per
    // 100 ms interval; receive-time throttling would store about two, with
    // different ids. A state published after a local stall (trailing) may
    // add a second record to a few intervals.
    let books = book_records(np);
    assert_eq!(books.len(), SYMBOLS.len(), "{:?}", books.keys());
    for (s, recs) in &books {
        let ids: BTreeSet<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(ids.len(), recs.len(), "{s}: a book update id stored twice");
        let mut per: BTreeMap<u64, u32> = BTreeMap::new();
        for r in recs {
            *per.entry(r.1 / 100).or_default() += 1;
        }
        let doubled = per.values().filter(|&&n| n > 1).count();
        // No hole: every interval from the first to the last has its record
        // (the mock changes every book every 10 ms), kill or not.
        let (first, last) = (*per.keys().next().unwrap(), *per.keys().last().unwrap());
        assert_eq!(per.len() as u64, last - first + 1, "{s}: intervals missing");
        assert!(per.len() >= 250, "{s}: only {} intervals", per.len());
        assert!(
            doubled * 10 <= per.len(),
            "{s}: {doubled} of {} intervals hold more than one book record",
            per.len()
        );
    }
    // Both replicas published: the server dropped the second copies.
    let dups: f64 = inst[1..]
        .iter()
        .map(|i| i.metric("marketprism_nats_duplicates_total"))
        .sum();
    assert!(
        dups > 0.0,
        "no duplicate acked: both replicas should publish"
    );
    // One member left of two replicas: /health says what is under-covered.
    inst[1].kill9();
    wait_until("the last member alone", Duration::from_secs(15), || {
        inst[2].metric("marketprism_cluster_members_alive") == 1.0
    });
    let (code, body) = http_get(inst[2].proc.as_ref().unwrap().1, "/health");
    assert_eq!(code, 200);
    assert!(body.contains("\"status\":\"degraded\""), "{body}");
    assert!(
        body.contains("cluster: 1 alive member(s) for replicas = 2: 6 symbol(s) covered by fewer than 2 instances (binance_spot 6)"),
        "{body}"
    );
}

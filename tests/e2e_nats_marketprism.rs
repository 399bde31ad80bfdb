//! A MarketPrism deployment's NATS, as its own broker init leaves it: the
//! stream `MARKET_DATA` already exists, capturing only the six low-rate data
//! types per exchange, with its own limits. (The settings are written here
//! from MarketPrism's documented layout; none of its files are used.)
//!
//! - A config naming only `servers` collects every MarketPrism data type; a
//!   subscriber shaped like MarketPrism's hot-storage service (core
//!   subscriptions on `trade.>` / `orderbook.>`, the stream for the rest)
//!   receives every record the file sink wrote, exactly once; the stream's
//!   settings are unchanged but for added subjects; no reconnect, no error.
//! - `create_stream = false` with a type no stream captures: exit 2 from
//!   `check-config --connect` and `run`, naming it and both fixes.
//! - A stream with other limits: only subjects added.
//! - A publish answered "no responders": counted, written again a while, then
//!   set aside; no reconnect.
//! - A spill of a data type the current configuration no longer carries: the
//!   live data flows, the old records are set aside and reported.

mod common;

use common::configs::exchange_section;
use common::nats::{CoreSub, Raw};
use common::*;
use sonic_rs::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const STREAM: &str = "MARKET_DATA";
const LOW_RATE: [&str; 6] = [
    "funding_rate",
    "open_interest",
    "liquidation",
    "volatility_index",
    "lsr_top_position",
    "lsr_all_account",
];

/// MarketPrism's stream: six types × three exchanges, its limits.
fn create_marketprism_stream(raw: &mut Raw) {
    let mut subjects = Vec::new();
    for dt in LOW_RATE {
        for ex in ["binance", "okx", "deribit"] {
            subjects.push(format!("\"{dt}.{ex}.>\""));
        }
    }
    let cfg = format!(
        "{{\"name\":\"{STREAM}\",\"subjects\":[{}],\"retention\":\"limits\",\"max_consumers\":50,\
         \"max_msgs\":5000000,\"max_bytes\":2147483648,\"max_age\":172800000000000,\
         \"discard\":\"old\",\"storage\":\"file\",\"num_replicas\":1,\
         \"duplicate_window\":300000000000,\"max_msgs_per_subject\":0}}",
        subjects.join(",")
    );
    raw.api(&format!("$JS.API.STREAM.CREATE.{STREAM}"), &cfg);
}

/// The config minus `subjects`, and the subjects.
fn split_config(mut c: sonic_rs::Value) -> (sonic_rs::Value, Vec<String>) {
    let subjects = c["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    c.as_object_mut().unwrap().remove(&"subjects");
    (c, subjects)
}

/// Every MarketPrism data type, from four venues, plus Bybit funding (whose
/// subjects MarketPrism's stream does not capture).
fn every_type_config(dir: &Path, mock_port: u16, nats_port: u16, nats_extra: &str) -> PathBuf {
    let ca = dir.join("tls/ca.pem");
    let mut text = format!(
        "[engine]\ncores = [0, 1]\nbatch_max_delay_ms = 10\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\nkind = [\"file\", \"nats\"]\npath = \"{}\"\n\
         [sink.nats]\nservers = [\"nats://127.0.0.1:{nats_port}\"]\n{nats_extra}\n",
        dir.join("data").display()
    );
    text.push_str(&common::configs::every_type_exchanges(&ca, mock_port, true));
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every JSON line the file sink wrote, with its data type.
fn file_lines(dir: &Path) -> Vec<(String, String)> {
    read_records(dir)
        .into_iter()
        .map(|(_, v)| {
            (
                v["data_type"].as_str().unwrap().to_string(),
                sonic_rs::to_string(&v).unwrap(),
            )
        })
        .collect()
}

fn as_json_line(payload: &[u8]) -> String {
    let v: sonic_rs::Value = sonic_rs::from_slice(payload).unwrap();
    sonic_rs::to_string(&v).unwrap()
}

fn check_connect(cfg: &Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["check-config", "--connect", cfg.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn marketprism_stream_every_type_delivered_once_and_settings_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let mut raw = Raw::connect(np, None);
    create_marketprism_stream(&mut raw);
    let (before, subjects_before) = split_config(raw.stream_config(STREAM));
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--event-rate",
            "0",
            "--events-per-stream",
            "30",
            "--trades-per-symbol",
            "300",
            "--book-rate",
            "100",
            "--book-updates",
            "150",
        ],
    );
    let cfg = every_type_config(dir.path(), addr.port(), np, "");

    // The dry run says what `run` will do, and changes nothing.
    let out = check_connect(&cfg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |dt: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{dt} ")))
            .unwrap_or_else(|| panic!("no line for {dt}:\n{stdout}"))
            .to_string()
    };
    assert!(line("trade").contains("core NATS"), "{stdout}");
    assert!(line("orderbook").contains("core NATS"), "{stdout}");
    for dt in LOW_RATE {
        assert!(
            line(dt).contains("JetStream (stream MARKET_DATA)"),
            "{stdout}"
        );
    }
    let added = [
        "funding_rate.bybit.perpetual.>",
        "gap.binance.perpetual.>",
        "gap.binance.spot.>",
        "gap.bybit.perpetual.>",
        "gap.deribit.perpetual.>",
        "gap.okx.perpetual.>",
    ];
    assert!(
        stdout.contains(&format!(
            "stream change: add subjects {} to MARKET_DATA",
            added.join(" ")
        )),
        "{stdout}"
    );
    assert_eq!(split_config(raw.stream_config(STREAM)).1, subjects_before);

    let sub = CoreSub::start(np, &["trade.>", "orderbook.>"]);
    let (mut coll, maddr) = start_collector(&cfg);
    let types = [
        "trade",
        "orderbook",
        "funding_rate",
        "open_interest",
        "liquidation",
        "lsr_top_position",
        "lsr_all_account",
        "volatility_index",
    ];
    wait_until("every data type written", Duration::from_secs(60), || {
        let m = scrape(maddr);
        types.iter().all(|dt| {
            metric_sum(
                &m,
                "marketprism_messages_written_total",
                &[&format!("data_type=\"{dt}\"")],
            ) > 0.0
        }) && metric_sum(
            &m,
            "marketprism_messages_written_total",
            &["data_type=\"trade\""],
        ) >= 690.0
    });
    std::thread::sleep(Duration::from_millis(1500));
    let m = scrape(maddr);
    let status = coll.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", coll.output());
    drop(mock);
    for (name, want) in [
        ("marketprism_nats_reconnects_total", 0.0),
        ("marketprism_nats_publish_errors_total", 0.0),
        ("marketprism_nats_no_responders_total", 0.0),
        ("marketprism_nats_dead_letter_total", 0.0),
        ("marketprism_nats_unroutable_data_types", 0.0),
    ] {
        assert_eq!(metric_sum(&m, name, &[]), want, "{name}");
    }
    assert!(!coll.output().contains("PubAck"), "{}", coll.output());

    // What the file sink wrote, per type, against what NATS delivered.
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (dt, l) in file_lines(&dir.path().join("data")) {
        files.entry(dt).or_default().push(l);
    }
    let mut nats: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (subject, payload) in sub.finish() {
        let dt = subject.split('.').next().unwrap().to_string();
        assert!(dt == "trade" || dt == "orderbook", "{subject}");
        nats.entry(dt).or_default().push(as_json_line(&payload));
    }
    let stored = raw.all(STREAM);
    for (subject, payload) in &stored {
        let dt = subject.split('.').next().unwrap().to_string();
        assert!(LOW_RATE.contains(&dt.as_str()), "{subject} stored");
        nats.entry(dt).or_default().push(as_json_line(payload));
    }
    for v in files.values_mut().chain(nats.values_mut()) {
        v.sort();
    }
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        {
            let mut t = types.to_vec();
            t.sort();
            t
        }
        .iter()
        .collect::<Vec<_>>()
    );
    for (dt, want) in &files {
        let got = nats.get(dt).unwrap_or_else(|| panic!("no {dt} from NATS"));
        assert_eq!(got.len(), want.len(), "{dt}: count");
        assert_eq!(got, want, "{dt}: records");
    }
    assert!(
        files["orderbook"].len() >= 4,
        "{}",
        files["orderbook"].len()
    );
    assert!(
        stored
            .iter()
            .any(|(s, _)| s.starts_with("funding_rate.bybit.")),
        "Bybit funding stored through the added subject"
    );

    // The stream: every setting as the operator left it, subjects only added.
    let (after, subjects_after) = split_config(raw.stream_config(STREAM));
    assert_eq!(after, before);
    let mut want = subjects_before.clone();
    want.extend(added.iter().map(|s| s.to_string()));
    assert_eq!(subjects_after, want);
}

#[test]
fn create_stream_false_and_an_uncaptured_type_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let mut raw = Raw::connect(np, None);
    create_marketprism_stream(&mut raw);
    let before = raw.stream_config(STREAM);
    // Only for its CA: nothing connects to it.
    let (_mock, addr) = start_mock(&dir.path().join("tls"), &[]);
    let cfg = every_type_config(dir.path(), addr.port(), np, "create_stream = false");
    let check = |out: &std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        for needle in [
            "`funding_rate`",
            "funding_rate.bybit.perpetual.>",
            "stream MARKET_DATA exists without them",
            "sink.nats.create_stream = true",
            "sink.nats.core_nats_data_types",
        ] {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
        // Only Bybit's funding is uncaptured; gap records go over core NATS.
        assert_eq!(stderr.matches("data type `").count(), 1, "{stderr}");
    };
    let out = check_connect(&cfg);
    check(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NONE (configuration error)") && stdout.contains("stream change: none"),
        "{stdout}"
    );
    let out = std::process::Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("MARKETPRISM_LOG", "warn")
        .output()
        .unwrap();
    check(&out);
    assert_eq!(raw.stream_config(STREAM), before);
}

/// A small trades-only run: binance spot, two symbols.
fn trades_config(
    dir: &Path,
    mock_port: u16,
    nats_port: u16,
    kinds: &str,
    nats_extra: &str,
) -> PathBuf {
    let text = format!(
        "[engine]\ncores = [0]\nbatch_max_delay_ms = 10\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\nkind = {kinds}\npath = \"{}\"\n\
         [sink.nats]\nservers = [\"nats://127.0.0.1:{nats_port}\"]\n{nats_extra}\n{}",
        dir.join("data").display(),
        exchange_section(
            "binance_spot",
            mock_port,
            "",
            &dir.join("tls/ca.pem"),
            &["BTCUSDT", "ETHUSDT"],
            &["trade"]
        )
    );
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn existing_stream_with_other_limits_gets_only_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let mut raw = Raw::connect(np, None);
    raw.api(
        &format!("$JS.API.STREAM.CREATE.{STREAM}"),
        &format!(
            "{{\"name\":\"{STREAM}\",\"description\":\"the operator's\",\"subjects\":[\"funding_rate.>\"],\
             \"retention\":\"limits\",\"max_consumers\":7,\"max_msgs\":777777,\"max_bytes\":123456789,\
             \"max_age\":3600000000000,\"max_msgs_per_subject\":1000,\"discard\":\"new\",\
             \"storage\":\"memory\",\"num_replicas\":1,\"duplicate_window\":17000000000}}"
        ),
    );
    let (before, _) = split_config(raw.stream_config(STREAM));
    let (mock, addr) = start_mock(&dir.path().join("tls"), &["--trades-per-symbol", "50"]);
    // Trades through JetStream by choice: their subject is added too.
    let cfg = trades_config(
        dir.path(),
        addr.port(),
        np,
        "\"nats\"",
        "core_nats_data_types = []",
    );
    let (mut coll, maddr) = start_collector(&cfg);
    wait_until("100 trades acked", Duration::from_secs(30), || {
        metric_sum(&scrape(maddr), "marketprism_nats_acked_total", &[]) >= 100.0
    });
    let m = scrape(maddr);
    assert_eq!(metric_sum(&m, "marketprism_nats_acked_total", &[]), 100.0);
    assert_eq!(
        metric_sum(&m, "marketprism_nats_reconnects_total", &[]),
        0.0
    );
    assert!(coll
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
        .success());
    drop(mock);
    let (after, subjects) = split_config(raw.stream_config(STREAM));
    assert_eq!(after, before);
    assert_eq!(
        subjects,
        [
            "funding_rate.>",
            "gap.binance.spot.>",
            "trade.binance.spot.>"
        ]
    );
    assert_eq!(raw.stream_messages(STREAM), 100);
    assert!(
        coll.output()
            .contains("added subjects gap.binance.spot.> trade.binance.spot.>"),
        "{}",
        coll.output()
    );
}

/// Entries in the spill-format segments under `dir` (the dead-letter store).
fn store_entries(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let b = std::fs::read(&f).unwrap();
        let mut i = 0;
        while i + 8 <= b.len() {
            let rest = u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            let sl = u16::from_le_bytes(b[i + 4..i + 6].try_into().unwrap()) as usize;
            let il = u16::from_le_bytes(b[i + 6..i + 8].try_into().unwrap()) as usize;
            let s = String::from_utf8(b[i + 8..i + 8 + sl].to_vec()).unwrap();
            let id = String::from_utf8(b[i + 8 + sl..i + 8 + sl + il].to_vec()).unwrap();
            out.push((s, id));
            i += 8 + rest;
        }
    }
    out
}

#[test]
fn no_responders_is_a_configuration_error_without_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &["--rate", "150", "--trades-per-symbol", "900"],
    );
    let cfg = trades_config(dir.path(), addr.port(), np, "[\"file\", \"nats\"]", "");
    let (mut coll, maddr) = start_collector(&cfg);
    wait_until("some trades acked", Duration::from_secs(30), || {
        metric_sum(&scrape(maddr), "marketprism_nats_acked_total", &[]) >= 100.0
    });
    // The operator deletes the stream under us: every publish now answers 503.
    let mut raw = Raw::connect(np, None);
    raw.api(&format!("$JS.API.STREAM.DELETE.{STREAM}"), "");
    let ca = dir.path().join("tls/ca.pem");
    // The mock's count of trades sent is the truth; it stops when done.
    let (mut last, mut sent) = (u64::MAX, 0);
    wait_until(
        "every trade sent and settled",
        Duration::from_secs(60),
        || {
            std::thread::sleep(Duration::from_millis(300));
            sent = json_u64(&https_get(addr, &ca, "/mock/stats"), "trades_sent_total");
            let m = scrape(maddr);
            let settled = metric_sum(&m, "marketprism_nats_acked_total", &[])
                + metric_sum(&m, "marketprism_nats_dead_letter_total", &[]);
            let stable = std::mem::replace(&mut last, sent) == sent;
            stable
                && settled == sent as f64
                && metric_sum(&m, "marketprism_messages_written_total", &[]) == sent as f64
        },
    );
    assert!(sent > 1500, "{sent}");
    let m = scrape(maddr);
    let acked = metric_sum(&m, "marketprism_nats_acked_total", &[]);
    let dead = metric_sum(&m, "marketprism_nats_dead_letter_total", &[]);
    assert_eq!(acked + dead, sent as f64);
    assert!(dead > 0.0);
    // Each set-aside record was written again until its 20th "no responders".
    assert_eq!(
        metric_sum(&m, "marketprism_nats_no_responders_total", &[]),
        dead * 20.0
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_reconnects_total", &[]),
        0.0
    );
    assert_eq!(metric_sum(&m, "marketprism_nats_in_flight", &[]), 0.0);
    let log = coll.output();
    assert!(
        log.contains("no responders 20 times: no JetStream stream captures this subject"),
        "{log}"
    );
    assert!(log.contains("answered \"no responders\""), "{log}");
    assert!(!log.contains("PubAck"), "{log}");
    assert!(coll
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
        .success());
    drop(mock);
    let set_aside = store_entries(&dir.path().join("data/spill/dead-letter/core00"));
    assert_eq!(set_aside.len() as f64, dead);
    assert!(set_aside.iter().all(
        |(s, id)| s.starts_with("trade.binance.spot.") && id.starts_with("trade:binance:spot:")
    ));
    assert_eq!(read_records(&dir.path().join("data")).len() as u64, sent);
}

#[test]
fn spilled_records_of_a_dropped_type_are_set_aside_and_live_data_flows() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, addr) = start_mock(
        &dir.path().join("tls"),
        &[
            "--event-rate",
            "0",
            "--events-per-stream",
            "25",
            "--trades-per-symbol",
            "40",
        ],
    );
    let ca = dir.path().join("tls/ca.pem");
    let (np, mp) = (free_port(), free_port());
    let write = |dts: &[&str], venue: &str| {
        let text = format!(
            "[engine]\ncores = [0]\nbatch_max_delay_ms = 10\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [sink]\nkind = [\"file\", \"nats\"]\npath = \"{}\"\n\
             [sink.nats]\nservers = [\"nats://127.0.0.1:{np}\"]\n{}",
            dir.path().join("data").display(),
            exchange_section(venue, addr.port(), "", &ca, &["BTCUSDT", "ETHUSDT"], dts)
        );
        let p = dir.path().join("collector.toml");
        std::fs::write(&p, text).unwrap();
        p
    };
    // Run 1, NATS down: USDⓈ-M trades and funding go to the spill.
    let cfg = write(&["trade", "funding_rate"], "binance_derivatives");
    let (mut coll, maddr) = start_collector(&cfg);
    wait_until("run 1 written", Duration::from_secs(30), || {
        let m = scrape(maddr);
        metric_sum(
            &m,
            "marketprism_messages_written_total",
            &["data_type=\"trade\""],
        ) >= 50.0
            && metric_sum(
                &m,
                "marketprism_messages_written_total",
                &["data_type=\"funding_rate\""],
            ) >= 50.0
    });
    assert!(coll
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
        .success());
    let run1 = file_lines(&dir.path().join("data"));
    let funding = run1.iter().filter(|(d, _)| d == "funding_rate").count();
    let perp_trades = run1.iter().filter(|(d, _)| d == "trade").count();
    assert_eq!((funding, perp_trades), (50, 50));

    // Run 2: spot trades only, against a fresh server.
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let cfg = write(&["trade"], "binance_spot");
    let (mut coll, maddr) = start_collector(&cfg);
    wait_until("everything settled", Duration::from_secs(30), || {
        let m = scrape(maddr);
        metric_sum(&m, "marketprism_nats_acked_total", &[]) >= 130.0
            && metric_sum(&m, "marketprism_nats_dead_letter_total", &[]) >= 50.0
    });
    let m = scrape(maddr);
    assert_eq!(metric_sum(&m, "marketprism_nats_acked_total", &[]), 130.0);
    assert_eq!(
        metric_sum(&m, "marketprism_nats_dead_letter_total", &[]),
        50.0
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_reconnects_total", &[]),
        0.0
    );
    assert_eq!(
        metric_sum(&m, "marketprism_nats_publish_errors_total", &[]),
        0.0
    );
    assert!(coll
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
        .success());
    drop(mock);
    let mut raw = Raw::connect(np, None);
    let stored = raw.all(STREAM);
    let count = |p: &str| stored.iter().filter(|(s, _)| s.starts_with(p)).count();
    assert_eq!(count("trade.binance.perpetual."), 50);
    assert_eq!(count("trade.binance.spot."), 80);
    assert_eq!(stored.len(), 130);
    let set_aside = store_entries(&dir.path().join("data/spill/dead-letter/core00"));
    assert_eq!(set_aside.len(), 50);
    assert!(set_aside
        .iter()
        .all(|(s, _)| s.starts_with("funding_rate.binance.perpetual.")));
}

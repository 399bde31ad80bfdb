//! The ClickHouse sink against the real ClickHouse engine (chdb behind
//! ClickHouse's HTTP interface: tests/clickhouse/chdb_http.py), fed by the
//! mock exchange:
//!
//! - every record of every MarketPrism data type is a row, once, equal in
//!   every column to what MarketPrism's hot-storage service would have
//!   written for the same record (tests/clickhouse/hot_storage_model.py),
//!   in tables `create_tables` made; a second start changes nothing;
//! - ClickHouse killed mid-run and started again, and answers lost after an
//!   insert was applied: still every row exactly once;
//! - rows the server refuses (a CHECK constraint): counted exactly, the rest
//!   inserted; existing tables are never altered;
//! - a table lacking a column the sink writes: exit 2 at start;
//! - the collector killed while an insert was in flight: the restart sends
//!   the same block with the same token, and the server keeps it once.

mod common;

use common::clickhouse::{model_compare, model_compare_extras, model_expected, ClickHouse};
use common::configs::every_type_exchanges;
use common::*;
use marketprism::sink::clickhouse::schema::Table;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TYPES: [(&str, &str); 8] = [
    ("trade", "trades"),
    ("orderbook", "orderbooks"),
    ("funding_rate", "funding_rates"),
    ("open_interest", "open_interests"),
    ("liquidation", "liquidations"),
    ("lsr_top_position", "lsr_top_positions"),
    ("lsr_all_account", "lsr_all_accounts"),
    ("volatility_index", "volatility_indices"),
];

/// `sink_extra`: more `[sink]` lines; `ch_extra`: `[sink.clickhouse]` lines.
fn config(dir: &Path, mock_port: u16, ch_url: &str, sink_extra: &str, ch_extra: &str) -> PathBuf {
    let ca = dir.join("tls/ca.pem");
    let mut text = format!(
        "[engine]\ncores = [0, 1]\nbatch_max_delay_ms = 10\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [sink]\nkind = [\"file\", \"clickhouse\"]\npath = \"{}\"\n{sink_extra}\n\
         [sink.clickhouse]\nurl = \"{ch_url}\"\n{ch_extra}\n",
        dir.join("data").display()
    );
    text.push_str(&every_type_exchanges(&ca, mock_port, false));
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every stream of the mock ends after a while (`trades` per symbol at
/// `rate`/s, 0 = as fast as possible).
fn finite_mock(dir: &Path, trades: u32, rate: u32) -> (Proc, SocketAddr) {
    start_mock(
        &dir.join("tls"),
        &[
            "--event-rate",
            "20",
            "--events-per-stream",
            "30",
            "--trades-per-symbol",
            &trades.to_string(),
            "--rate",
            &rate.to_string(),
            "--book-rate",
            "100",
            "--book-updates",
            "150",
        ],
    )
}

fn written(m: &str, dt: &str) -> f64 {
    metric_sum(
        m,
        "marketprism_messages_written_total",
        &[&format!("data_type=\"{dt}\"")],
    )
}

/// Waits until every type was written and the trades stopped (the mock's
/// trade streams are finite; polled types go on), then stops the collector
/// with SIGTERM.
fn run_to_end(coll: &mut Proc, maddr: SocketAddr, ch: &ClickHouse, min_trades: f64) -> String {
    let mut last = -1.0;
    wait_until(
        "every data type written, then no more trades",
        Duration::from_secs(120),
        || {
            let m = scrape(maddr);
            let trades = written(&m, "trade");
            let settled = TYPES.iter().all(|(dt, _)| written(&m, dt) > 0.0)
                && trades >= min_trades
                && trades == last;
            last = trades;
            if std::env::var("E2E_CH_DEBUG").is_ok() {
                let c: Vec<(&str, f64)> =
                    TYPES.iter().map(|(dt, _)| (*dt, written(&m, dt))).collect();
                eprintln!("written {c:?}");
            }
            if !settled {
                std::thread::sleep(Duration::from_millis(1000));
            }
            settled
        },
    );
    // ClickHouse caught up: nothing journaled, and the trades table and
    // the refused count no longer move.
    let mut m = String::new();
    let mut prev = None;
    wait_until("ClickHouse caught up", Duration::from_secs(60), || {
        m = scrape(maddr);
        let cur = (
            count(ch, "marketprism_hot", "trades"),
            metric_sum(&m, "marketprism_clickhouse_rejected_rows_total", &[]) as u64,
        );
        let done = metric_sum(&m, "marketprism_clickhouse_journal_blocks", &[]) == 0.0
            && prev == Some(cur);
        prev = Some(cur);
        if !done {
            std::thread::sleep(Duration::from_millis(600));
        }
        done
    });
    let status = coll.signal_and_wait(libc::SIGTERM, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", coll.output());
    m
}

/// `marketprism check-config --connect <cfg>`.
fn check_connect(cfg: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_marketprism"))
        .args(["check-config", "--connect", cfg.to_str().unwrap()])
        .output()
        .unwrap()
}

fn wait_trades_inserted(maddr: SocketAddr) {
    wait_until("trade rows inserted", Duration::from_secs(30), || {
        metric_sum(
            &scrape(maddr),
            "marketprism_clickhouse_rows_inserted_total",
            &["table=\"trades\""],
        ) > 0.0
    });
}

/// Records per data type in the file sink's output.
fn file_counts(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, r) in read_records(&dir.join("data")) {
        let dt = r["data_type"].as_str().unwrap_or_default().to_string();
        *out.entry(dt).or_default() += 1;
    }
    out
}

fn count(ch: &ClickHouse, db: &str, table: &str) -> u64 {
    ch.query(&format!("SELECT count() FROM {db}.{table}"))
        .trim()
        .parse()
        .unwrap()
}

fn tables(ch: &ClickHouse) -> String {
    ch.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = 'marketprism_hot' ORDER BY name",
    )
}

/// Every row of every table once, as MarketPrism would have written it;
/// the rows in ClickHouse equal the records in the files, per type.
fn assert_exactly_the_records(ch: &ClickHouse, dir: &Path) {
    let files = file_counts(dir);
    for (dt, table) in TYPES {
        let want = files.get(dt).copied().unwrap_or(0);
        assert!(want > 0, "no {dt} records written: {files:?}");
        assert_eq!(count(ch, "marketprism_hot", table), want, "{table}");
    }
    let model = model_expected(&ch.url(), &dir.join("data"));
    let (ok, report) = model_compare(&ch.url());
    assert!(ok, "{model}\n{report}");
    let (ok, report) = model_compare_extras(&ch.url(), &dir.join("data"));
    assert!(ok, "{report}");
}

#[test]
fn every_type_is_one_row_as_marketprism_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("ch"));
    let (mock, addr) = finite_mock(dir.path(), 300, 0);
    let cfg = config(dir.path(), addr.port(), &ch.url(), "", "");
    // The dry run says what the start will create, and creates nothing.
    let out = check_connect(&cfg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for t in Table::ALL {
        assert!(
            stdout.contains(&format!(
                "  {}: absent, created at start\n",
                t.default_name()
            )),
            "{stdout}"
        );
    }
    assert_eq!(
        ch.query("SELECT count() FROM system.databases WHERE name = 'marketprism_hot'"),
        "0\n"
    );
    let (mut coll, maddr) = start_collector(&cfg);
    let m = run_to_end(&mut coll, maddr, &ch, 600.0);
    assert!(
        coll.output()
            .contains("database marketprism_hot: tables ready"),
        "{}",
        coll.output()
    );
    for (name, filter) in [
        ("marketprism_clickhouse_errors_total", ""),
        ("marketprism_clickhouse_rejected_rows_total", ""),
        ("marketprism_clickhouse_records_dropped_total", ""),
    ] {
        assert_eq!(metric_sum(&m, name, &[filter]), 0.0, "{name}");
    }
    assert_eq!(metric_sum(&m, "marketprism_clickhouse_up", &[]), 2.0);
    assert_exactly_the_records(&ch, dir.path());

    // create_tables made MarketPrism's tables (plus ours, `gaps`), with the
    // deduplication window retried inserts need.
    let names =
        ch.query("SELECT name FROM system.tables WHERE database = 'marketprism_hot' ORDER BY name");
    let mut want: Vec<&str> = Table::ALL.iter().map(|t| t.default_name()).collect();
    want.sort();
    assert_eq!(names.lines().collect::<Vec<_>>(), want);
    let trades = ch.query(
        "SELECT name, type, default_expression FROM system.columns \
         WHERE database = 'marketprism_hot' AND table = 'trades' ORDER BY position FORMAT TSVRaw",
    );
    assert_eq!(
        trades,
        "timestamp\tDateTime64(3, 'UTC')\t\n\
         exchange\tLowCardinality(String)\t\n\
         market_type\tLowCardinality(String)\t\n\
         symbol\tLowCardinality(String)\t\n\
         trade_id\tString\t\n\
         price\tDecimal(18, 8)\t\n\
         quantity\tDecimal(18, 8)\t\n\
         side\tLowCardinality(String)\t\n\
         is_maker\tBool\tfalse\n\
         trade_time\tDateTime64(3, 'UTC')\t\n\
         data_source\tLowCardinality(String)\t'marketprism'\n\
         created_at\tDateTime64(3, 'UTC')\tnow64(3)\n"
    );
    let columns = ch.query(
        "SELECT table, count() FROM system.columns WHERE database = 'marketprism_hot' \
         GROUP BY table ORDER BY table FORMAT TabSeparated",
    );
    assert_eq!(
        columns,
        "funding_rates\t11\ngaps\t13\nliquidations\t10\nlsr_all_accounts\t9\nlsr_top_positions\t9\n\
         open_interests\t9\norderbooks\t15\ntrades\t12\nvolatility_indices\t9\n"
    );
    for t in Table::ALL {
        let q = ch.query(&format!(
            "SELECT engine_full FROM system.tables WHERE database = 'marketprism_hot' AND name = '{}'",
            t.default_name()
        ));
        assert!(
            q.contains("TTL toDateTime(timestamp) + toIntervalDay(3)")
                && q.contains("non_replicated_deduplication_window = 1000"),
            "{}: {q}",
            t.default_name()
        );
    }

    // A second start on the existing tables changes nothing.
    let before = tables(&ch);
    let (mut again, _) = start_collector(&cfg);
    assert!(
        again.output().contains("tables ready"),
        "{}",
        again.output()
    );
    let status = again.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{}", again.output());
    assert_eq!(tables(&ch), before);
    drop(mock);
}

#[test]
fn clickhouse_down_mid_run_and_lost_answers_still_store_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ch = ClickHouse::start(&dir.path().join("ch"));
    // Trades for about 12 s, so ClickHouse's outage falls in the middle.
    let (mock, addr) = finite_mock(dir.path(), 1200, 100);
    // The first two inserts are applied, then their answers lost: the
    // sender must resend them with the same token.
    ch.fault("apply_then_drop", &[("count", "2")]);
    let cfg = config(
        dir.path(),
        addr.port(),
        &ch.url(),
        "",
        // Little memory: during the outage most blocks are read back from
        // the journal on disk.
        "block_max_delay_ms = 50\nrequest_timeout_ms = 2000\nmax_buffered_bytes = 65536",
    );
    let (mut coll, maddr) = start_collector(&cfg);
    wait_trades_inserted(maddr);
    assert_eq!(
        ch.stats()["inserts_dropped_after_apply"].as_u64(),
        Some(2),
        "{}",
        ch.log()
    );
    ch.kill();
    wait_until(
        "blocks journaled while ClickHouse is down",
        Duration::from_secs(20),
        || {
            let m = scrape(maddr);
            metric_sum(&m, "marketprism_clickhouse_journal_blocks", &[]) >= 3.0
                && metric_sum(&m, "marketprism_clickhouse_up", &[]) == 0.0
        },
    );
    let (_, health) = http_get(maddr, "/health");
    assert!(
        health.contains("\"status\":\"degraded\"")
            && health.contains("ClickHouse not accepting inserts"),
        "{health}"
    );
    ch.restart();
    let m = run_to_end(&mut coll, maddr, &ch, 2000.0);
    drop(mock);
    assert!(
        metric_sum(
            &m,
            "marketprism_clickhouse_errors_total",
            &["kind=\"transient\""]
        ) >= 3.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(&m, "marketprism_clickhouse_rejected_rows_total", &[]),
        0.0
    );
    assert_exactly_the_records(&ch, dir.path());
}

/// MarketPrism's tables created beforehand (by hand, as an operator would),
/// one with a CHECK constraint.
fn precreate(ch: &ClickHouse) {
    ch.query("CREATE DATABASE marketprism_hot");
    for t in Table::ALL {
        ch.query(&t.ddl("marketprism_hot", t.default_name(), Some(3), 1000));
    }
}

#[test]
fn refused_rows_are_counted_and_the_rest_inserted_into_tables_left_as_found() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("ch"));
    precreate(&ch);
    const BAD: &str = "toUInt64OrZero(trade_id) % 40 = 7";
    ch.query(&format!(
        "ALTER TABLE marketprism_hot.trades ADD CONSTRAINT no_sevens CHECK NOT ({BAD})"
    ));
    let before = tables(&ch);
    let (mock, addr) = finite_mock(dir.path(), 300, 0);
    let cfg = config(dir.path(), addr.port(), &ch.url(), "", "");
    let (mut coll, maddr) = start_collector(&cfg);
    let m = run_to_end(&mut coll, maddr, &ch, 600.0);
    drop(mock);
    assert_eq!(tables(&ch), before, "existing tables are never altered");

    let bad = read_records(&dir.path().join("data"))
        .into_iter()
        .filter(|(_, r)| {
            r["data_type"].as_str() == Some("trade")
                && r["trade_id"]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|n| n % 40 == 7)
        })
        .count() as u64;
    assert!(bad >= 5, "{bad} refused trades: the test needs some");
    assert_eq!(
        metric_sum(
            &m,
            "marketprism_clickhouse_rejected_rows_total",
            &["table=\"trades\""]
        ),
        bad as f64
    );
    assert_eq!(
        metric_sum(&m, "marketprism_clickhouse_rejected_rows_total", &[]),
        bad as f64
    );
    // The rest: what MarketPrism would have written, minus the refused rows.
    ch.query("ALTER TABLE marketprism_hot.trades DROP CONSTRAINT no_sevens");
    model_expected(&ch.url(), &dir.path().join("data"));
    ch.query(&format!(
        "ALTER TABLE expected.trades DELETE WHERE {BAD} SETTINGS mutations_sync = 2"
    ));
    let (ok, report) = model_compare(&ch.url());
    assert!(ok, "{report}");
}

#[test]
fn a_table_without_a_written_column_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("ch"));
    ch.query("CREATE DATABASE marketprism_hot");
    ch.query(
        "CREATE TABLE marketprism_hot.trades (timestamp DateTime64(3, 'UTC'), exchange String, \
         market_type String, symbol String, trade_id String, price Decimal64(8), quantity Decimal64(8), \
         side String, trade_time DateTime64(3, 'UTC'), data_source String) \
         ENGINE = MergeTree ORDER BY timestamp",
    );
    // Only its certificate is needed: the start stops before any connection.
    let (_mock, addr) = start_mock(&dir.path().join("tls"), &[]);
    let cfg = config(dir.path(), addr.port(), &ch.url(), "", "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_marketprism"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let dry = check_connect(&cfg);
    let dry_err = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(2), "{dry_err}");
    assert!(dry_err.contains("lacks column(s) is_maker"), "{dry_err}");
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err
        .lines()
        .filter(|l| !l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("table marketprism_hot.trades lacks column(s) is_maker that the sink writes"),
        "{err}"
    );
}

/// (exchange, symbol, trade_id) of every trade row.
fn trade_keys(ch: &ClickHouse) -> Vec<String> {
    ch.query("SELECT exchange, symbol, trade_id FROM marketprism_hot.trades FORMAT TSVRaw")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn collector_killed_with_an_insert_in_flight_resends_it_and_it_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("ch"));
    let (mock, addr) = finite_mock(dir.path(), 1500, 100);
    // Inline file writes: a batch is in the file before it is in a block,
    // so whatever the kill interrupts, ClickHouse holds a subset of the files.
    let cfg = config(
        dir.path(),
        addr.port(),
        &ch.url(),
        "write_mode = \"inline\"",
        "block_max_delay_ms = 100",
    );
    let (mut coll, maddr) = start_collector(&cfg);
    wait_trades_inserted(maddr);
    // The next insert is applied, and its answer held back 5 s: the
    // collector dies waiting for it.
    ch.fault("apply_then_delay", &[("ms", "5000"), ("count", "1")]);
    wait_until(
        "an insert applied, its answer held",
        Duration::from_secs(20),
        || ch.stats()["inserts_answered_late"].as_u64() == Some(1),
    );
    coll.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
    let late = ch.stats()["late_tokens"][0].as_str().unwrap().to_string();

    // The restart finds the block in its journal and sends it first, with
    // the same token: the server keeps the first copy only.
    let (mut coll, maddr) = start_collector(&cfg);
    run_to_end(&mut coll, maddr, &ch, 1.0);
    drop(mock);
    let attempts: Vec<u64> = ch.stats()["tokens"][late.as_str()]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(attempts.len(), 2, "{late}: {attempts:?}\n{}", ch.log());
    assert!(attempts[0] > 0, "{attempts:?}");
    assert_eq!(attempts[1], 0, "the resend was stored again: {attempts:?}");
    assert!(
        coll.output()
            .contains("blocks left in the journal by the last run"),
        "{}",
        coll.output()
    );

    // No trade more often than the files have it (a trade both runs
    // received is in both runs' files), none that was not received.
    let keys = counts(trade_keys(&ch).into_iter());
    let files = counts(
        read_records(&dir.path().join("data"))
            .into_iter()
            .filter(|(_, r)| r["data_type"].as_str() == Some("trade"))
            .map(|(_, r)| {
                let id = match r["trade_id"].as_str() {
                    Some(s) => s.to_string(),
                    None => r["trade_id"].as_u64().unwrap().to_string(),
                };
                format!(
                    "{}\t{}\t{id}",
                    r["exchange"].as_str().unwrap(),
                    r["symbol"].as_str().unwrap()
                )
            }),
    );
    let over: Vec<(&String, &usize)> = keys
        .iter()
        .filter(|(k, n)| files.get(*k).copied().unwrap_or(0) < **n)
        .collect();
    assert!(over.is_empty(), "rows beyond the received trades: {over:?}");
    // Lost with the process: at most the rows not yet in a block.
    let (rows, received): (usize, usize) = (keys.values().sum(), files.values().sum());
    assert!(rows as f64 >= received as f64 * 0.9, "{rows} of {received}");
}

#[test]
fn clickhouse_down_from_the_start_and_a_full_journal_drop_with_gap_rows() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mock, addr) = finite_mock(dir.path(), 1200, 100);
    // The smallest journal (1 MiB): ClickHouse is not there, so it fills.
    let cfg = config(
        dir.path(),
        addr.port(),
        &format!("http://127.0.0.1:{port}"),
        "spill_max_bytes = 1048576",
        "block_max_delay_ms = 50\nmax_buffered_bytes = 65536",
    );
    let (mut coll, maddr) = start_collector(&cfg);
    assert!(
        coll.output().contains("ClickHouse not reachable at start"),
        "{}",
        coll.output()
    );
    wait_until("records dropped", Duration::from_secs(60), || {
        metric_sum(
            &scrape(maddr),
            "marketprism_clickhouse_records_dropped_total",
            &[],
        ) > 0.0
    });
    // ClickHouse comes; the cores create the tables and catch up.
    let ch = ClickHouse::start_on(&dir.path().join("ch"), port);
    let m = run_to_end(&mut coll, maddr, &ch, 2000.0);
    drop(mock);
    let dropped = metric_sum(&m, "marketprism_clickhouse_records_dropped_total", &[]) as u64;
    assert!(dropped > 0);
    // Every record is a row or counted in a gap row of its stream.
    let missing: BTreeMap<String, u64> = ch
        .query(
            "SELECT channel, sum(missing) FROM marketprism_hot.gaps \
             WHERE reason = 'sink_backpressure' GROUP BY channel FORMAT TSVRaw",
        )
        .lines()
        .map(|l| {
            let (c, n) = l.split_once('\t').unwrap();
            (c.to_string(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(missing.values().sum::<u64>(), dropped, "{missing:?}");
    let files = file_counts(dir.path());
    for (dt, table) in TYPES {
        let rows = count(&ch, "marketprism_hot", table);
        let lost = missing.get(dt).copied().unwrap_or(0);
        assert_eq!(
            rows + lost,
            files.get(dt).copied().unwrap_or(0),
            "{dt}: {rows} rows + {lost} in gap rows"
        );
    }
}

#[test]
fn credentials_come_from_a_file_and_a_wrong_password_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start_with_auth(&dir.path().join("ch"), "collector", "s3cret-pw");
    let (mock, addr) = finite_mock(dir.path(), 300, 0);
    let pw = dir.path().join("ch-password");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    let run = |extra: &str| {
        let cfg = config(dir.path(), addr.port(), &ch.url(), "", extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_marketprism"))
            .args(["run", "--config", cfg.to_str().unwrap()])
            .env("CH_USER", "collector")
            .output()
            .unwrap()
    };
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let out = run(&format!(
        "user_env = \"CH_USER\"\npassword_file = \"{}\"",
        wrong.display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("516"), "{err}");
    assert!(
        !err.contains("nope"),
        "the password is never printed: {err}"
    );

    let cfg = config(
        dir.path(),
        addr.port(),
        &ch.url(),
        "",
        &format!(
            "user_env = \"CH_USER\"\npassword_file = \"{}\"",
            pw.display()
        ),
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_marketprism"));
    cmd.args(["run", "--config", cfg.to_str().unwrap()])
        .env("CH_USER", "collector");
    let mut coll = spawn_cmd(cmd);
    let line = coll.wait_line("metrics and health on http://", Duration::from_secs(30));
    let maddr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    run_to_end(&mut coll, maddr, &ch, 600.0);
    drop(mock);
    assert!(!coll.output().contains("s3cret-pw"));
    let files = file_counts(dir.path());
    for (dt, table) in TYPES {
        assert_eq!(
            count(&ch, "marketprism_hot", table),
            files.get(dt).copied().unwrap_or(0),
            "{table}"
        );
    }
}

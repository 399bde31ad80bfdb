//! The ClickHouse test stand itself (tests/clickhouse/chdb_http.py): the real
//! ClickHouse 26.9 engine behind its HTTP interface. These hold the facts the
//! ClickHouse sink's tests rely on: RowBinary rows land with exact values and
//! DEFAULT-filled columns, `insert_deduplication_token` deduplicates retries,
//! errors carry ClickHouse's codes and HTTP statuses, the test faults do what
//! they say, data survives kill -9, and the hot-storage model is exact.

mod common;

use common::clickhouse::{self, rowbinary as rb, ClickHouse};
use std::io::{Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TABLE: &str = "CREATE TABLE t (\
    id Int64, ts DateTime64(3, 'UTC'), price Decimal64(8), sym LowCardinality(String), maker Bool, \
    created_at DateTime64(3, 'UTC') DEFAULT now64(3), \
    CONSTRAINT positive_price CHECK price > 0) \
    ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100";
const HEAD: &str = "INSERT INTO t (id, ts, price, sym, maker) FORMAT RowBinary";

/// One row of `t` (created_at left to its DEFAULT): price as Int64 × 10^8.
fn row(out: &mut Vec<u8>, id: i64, ts_ms: i64, price_e8: i64, sym: &str, maker: bool) {
    rb::i64(out, id);
    rb::i64(out, ts_ms);
    rb::i64(out, price_e8);
    rb::str(out, sym);
    rb::u8(out, maker as u8);
}

fn two_rows() -> Vec<u8> {
    let mut b = Vec::new();
    row(
        &mut b,
        1,
        1_764_900_000_123,
        5_000_012_345_678_901,
        "BTC-USDT",
        true,
    );
    row(&mut b, 2, 1_764_900_000_001, 1, "ETH-USDT", false);
    b
}

fn stand() -> (tempfile::TempDir, ClickHouse) {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(dir.path());
    ch.query(TABLE);
    (dir, ch)
}

fn count(ch: &ClickHouse) -> u64 {
    ch.query("SELECT count() FROM t").trim().parse().unwrap()
}

fn ok(reply: Option<clickhouse::Reply>) -> clickhouse::Reply {
    let r = reply.expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

fn stat(ch: &ClickHouse, key: &str) -> u64 {
    use sonic_rs::JsonValueTrait;
    let s = ch.stats();
    s.get(key)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("no {key} in stats"))
}

fn rows_added(ch: &ClickHouse, table: &str) -> u64 {
    use sonic_rs::JsonValueTrait;
    let s = ch.stats();
    s.get("rows")
        .and_then(|r| r.get(table))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

#[test]
fn rowbinary_rows_land_exact_and_defaults_are_filled() {
    let (_dir, ch) = stand();
    assert_eq!(
        ch.request("GET", "/ping", &[], b"").unwrap().text(),
        "Ok.\n"
    );
    assert_eq!(ch.request("GET", "/", &[], b"").unwrap().text(), "Ok.\n");
    ok(ch.insert(HEAD, &[], &two_rows()));
    assert_eq!(
        ch.query("SELECT id, ts, price, sym, maker FROM t ORDER BY id"),
        "1\t2025-12-05 02:00:00.123\t50000123.45678901\tBTC-USDT\ttrue\n\
         2\t2025-12-05 02:00:00.001\t0.00000001\tETH-USDT\tfalse\n"
    );
    // created_at got its DEFAULT now64(3), not the type's zero (1970).
    assert_eq!(
        ch.query(
            "SELECT countIf(created_at > now64(3) - INTERVAL 10 MINUTE AND created_at <= now64(3)) FROM t"
        ),
        "2\n"
    );
    // The query parameter's FORMAT, the database parameter, settings as parameters.
    let r = ok(ch.post(
        &[
            ("query", "SELECT sum(id) AS s FROM t FORMAT JSONEachRow"),
            ("database", "default"),
            ("max_threads", "1"),
        ],
        b"",
    ));
    assert_eq!(r.text(), "{\"s\":3}\n");
    assert_eq!(stat(&ch, "inserts_received"), 1);
    assert_eq!(stat(&ch, "inserts_applied"), 1);
    assert_eq!(rows_added(&ch, "default.t"), 2);
}

#[test]
fn dedup_token_lands_a_retried_block_once() {
    let (_dir, ch) = stand();
    let body = two_rows();
    ok(ch.insert(HEAD, &[("insert_deduplication_token", "batch-1")], &body));
    ok(ch.insert(HEAD, &[("insert_deduplication_token", "batch-1")], &body));
    assert_eq!(count(&ch), 2);
    assert_eq!(rows_added(&ch, "default.t"), 2);
    ok(ch.insert(HEAD, &[("insert_deduplication_token", "batch-2")], &body));
    ok(ch.insert(HEAD, &[("insert_deduplication_token", "batch-3")], &body));
    assert_eq!(count(&ch), 6);
    assert_eq!(stat(&ch, "inserts_applied"), 4);
    assert_eq!(rows_added(&ch, "default.t"), 6);
    // The token does not stick to later queries: without one, the block lands
    // once more, and its repeat is deduplicated by the block's hash.
    ok(ch.insert(HEAD, &[], &body));
    ok(ch.insert(HEAD, &[], &body));
    assert_eq!(count(&ch), 8);
}

#[test]
fn errors_carry_clickhouse_codes_and_statuses() {
    let (_dir, ch) = stand();
    let r = ch
        .insert("INSERT INTO nope (id) FORMAT RowBinary", &[], &[0; 8])
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.header("X-ClickHouse-Exception-Code"), Some("60"));
    let text = r.text();
    assert!(
        text.starts_with("Code: 60. DB::Exception: ")
            && text.contains("(UNKNOWN_TABLE) (version 26.9"),
        "{text}"
    );
    // A CHECK constraint: VIOLATED_CONSTRAINT (469) is not in ClickHouse's
    // exceptionCodeToHTTPStatus lists, so it answers 500.
    let mut bad = Vec::new();
    row(&mut bad, 3, 1_764_900_000_000, -5, "X", false);
    let r = ch.insert(HEAD, &[], &bad).unwrap();
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.header("X-ClickHouse-Exception-Code"), Some("469"));
    assert!(r.text().contains("(VIOLATED_CONSTRAINT)"), "{}", r.text());
    assert_eq!(count(&ch), 0);
    // Truncated RowBinary: CANNOT_READ_ALL_DATA (33), 500.
    let r = ch.insert(HEAD, &[], &[1, 2]).unwrap();
    assert_eq!(
        (r.status, r.header("X-ClickHouse-Exception-Code")),
        (500, Some("33"))
    );
    // Syntax error (62) and unparsable text (6) are 400; a Decimal overflow
    // (407) is not in ClickHouse's 400 list: 500.
    assert_eq!(ch.try_query("SELEC 1 FROM").unwrap_err().0, 400);
    let r = ch
        .post(&[("query", "SELECT CAST('abc' AS Int32)")], b"")
        .unwrap();
    assert_eq!(
        (r.status, r.header("X-ClickHouse-Exception-Code")),
        (400, Some("6"))
    );
    let r = ch
        .post(&[("query", "SELECT toDecimal64(1e12, 8)")], b"")
        .unwrap();
    assert_eq!(
        (r.status, r.header("X-ClickHouse-Exception-Code")),
        (500, Some("407"))
    );
    // Unknown database: 404, code 81.
    let r = ch.post(&[("query", "SELECT 1 FROM nodb.t")], b"").unwrap();
    assert_eq!(
        (r.status, r.header("X-ClickHouse-Exception-Code")),
        (404, Some("81"))
    );
    assert_eq!(stat(&ch, "inserts_failed"), 3);
    assert_eq!(stat(&ch, "inserts_applied"), 0);
}

#[test]
fn error_fault_refuses_the_next_inserts_without_applying_them() {
    let (_dir, ch) = stand();
    ch.fault(
        "error",
        &[("code", "241"), ("status", "503"), ("count", "2")],
    );
    for _ in 0..2 {
        let r = ch.insert(HEAD, &[], &two_rows()).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("X-ClickHouse-Exception-Code"), Some("241"));
        assert!(
            r.text().starts_with("Code: 241. DB::Exception: ")
                && r.text().contains("(MEMORY_LIMIT_EXCEEDED) (version 26.9"),
            "{}",
            r.text()
        );
    }
    assert_eq!(count(&ch), 0);
    ok(ch.insert(HEAD, &[], &two_rows()));
    assert_eq!(count(&ch), 2);
    assert_eq!(stat(&ch, "inserts_failed_by_fault"), 2);
    assert_eq!(stat(&ch, "inserts_applied"), 1);
    // Without a status, the one ClickHouse uses for the code (UNKNOWN_TABLE: 404).
    ch.fault("error", &[("code", "60")]);
    assert_eq!(ch.insert(HEAD, &[], &two_rows()).unwrap().status, 404);
}

#[test]
fn apply_then_drop_applies_and_a_same_token_retry_dedups() {
    let (_dir, ch) = stand();
    ch.fault("apply_then_drop", &[]);
    let token = [("insert_deduplication_token", "retry-me")];
    assert!(
        ch.insert(HEAD, &token, &two_rows()).is_none(),
        "the connection is closed without an answer"
    );
    assert_eq!(count(&ch), 2, "applied before the drop");
    ok(ch.insert(HEAD, &token, &two_rows()));
    assert_eq!(count(&ch), 2, "the retry is deduplicated");
    assert_eq!(stat(&ch, "inserts_dropped_after_apply"), 1);
    assert_eq!(stat(&ch, "inserts_applied"), 2);
    assert_eq!(rows_added(&ch, "default.t"), 2);
}

#[test]
fn delay_fault_holds_the_answer() {
    let (_dir, ch) = stand();
    ch.fault("delay", &[("ms", "300")]);
    let t0 = std::time::Instant::now();
    ok(ch.insert(HEAD, &[], &two_rows()));
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(stat(&ch, "inserts_delayed"), 1);
    assert_eq!(count(&ch), 2);
}

#[test]
fn rows_survive_kill_9_and_restart_on_the_same_dir() {
    let (_dir, mut ch) = stand();
    ok(ch.insert(HEAD, &[("insert_deduplication_token", "a")], &two_rows()));
    let port = ch.port();
    ch.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    ch.restart();
    assert_eq!(ch.port(), port, "same port when free");
    assert_eq!(
        ch.query("SELECT id, price FROM t ORDER BY id"),
        "1\t50000123.45678901\n2\t0.00000001\n"
    );
    // The dedup window survives too: the same token after the restart is a no-op.
    ok(ch.insert(HEAD, &[("insert_deduplication_token", "a")], &two_rows()));
    assert_eq!(count(&ch), 2);
}

#[test]
fn auth_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start_with_auth(dir.path(), "writer", "s3cret");
    let r = ch.request("POST", "/", &[], b"SELECT 1").unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("X-ClickHouse-Exception-Code"), Some("516"));
    assert!(r.text().contains("(AUTHENTICATION_FAILED)"), "{}", r.text());
    let wrong = [
        ("X-ClickHouse-User", "writer"),
        ("X-ClickHouse-Key", "nope"),
    ];
    assert_eq!(
        ch.request("POST", "/", &wrong, b"SELECT 1").unwrap().status,
        403
    );
    // Basic auth ("writer:s3cret") and the user/password parameters work too.
    let basic = [("Authorization", "Basic d3JpdGVyOnMzY3JldA==")];
    assert_eq!(
        ch.request("POST", "/", &basic, b"SELECT 1").unwrap().text(),
        "1\n"
    );
    let r = ch.request("POST", "/?user=writer&password=s3cret", &[], b"SELECT 2");
    assert_eq!(r.unwrap().text(), "2\n");
    assert_eq!(ch.query("SELECT 3"), "3\n");
    // /ping needs no credentials, as in ClickHouse.
    assert_eq!(ch.request("GET", "/ping", &[], b"").unwrap().status, 200);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (_dir, ch) = stand();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", ch.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nSELECT 7";
    s.write_all(format!("{req}{req}").as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert_eq!(buf.matches("HTTP/1.1 200").count(), 2, "{buf}");
    assert_eq!(buf.matches("Content-Length: 2\r\n").count(), 2, "{buf}");
}

// MarketPrism's trades and orderbooks columns (its clickhouse_schema.sql), hot TTL included;
// trades with a deduplication window, which the model must not trip over.
const HOT_TRADES: &str = "CREATE TABLE marketprism_hot.trades (\
    timestamp DateTime64(3, 'UTC'), exchange LowCardinality(String), market_type LowCardinality(String), \
    symbol LowCardinality(String), trade_id String, price Decimal64(8), quantity Decimal64(8), \
    side LowCardinality(String), is_maker Bool DEFAULT false, trade_time DateTime64(3, 'UTC'), \
    data_source LowCardinality(String) DEFAULT 'marketprism', created_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
    ENGINE = MergeTree PARTITION BY (toYYYYMM(timestamp), exchange) ORDER BY (timestamp, exchange, symbol, trade_id) \
    TTL toDateTime(timestamp) + INTERVAL 3 DAY DELETE SETTINGS non_replicated_deduplication_window = 100";
const HOT_BOOKS: &str = "CREATE TABLE marketprism_hot.orderbooks (\
    timestamp DateTime64(3, 'UTC'), exchange LowCardinality(String), market_type LowCardinality(String), \
    symbol LowCardinality(String), last_update_id UInt64, bids_count UInt32, asks_count UInt32, \
    best_bid_price Decimal64(8), best_ask_price Decimal64(8), best_bid_quantity Decimal64(8), \
    best_ask_quantity Decimal64(8), bids String, asks String, \
    data_source LowCardinality(String) DEFAULT 'marketprism', created_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
    ENGINE = MergeTree PARTITION BY (toYYYYMM(timestamp), exchange) ORDER BY (timestamp, exchange, symbol, last_update_id) \
    TTL toDateTime(timestamp) + INTERVAL 3 DAY DELETE";

#[test]
fn hot_storage_model_writes_the_services_rows() {
    let (dir, ch) = stand();
    ch.query("CREATE DATABASE marketprism_hot");
    ch.query(HOT_TRADES);
    ch.query(HOT_BOOKS);
    // Current timestamps: the hot tables' TTL deletes rows older than 3 days.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let records = dir.path().join("records");
    std::fs::create_dir_all(records.join("sub")).unwrap();
    let trade = format!(
        "{{\"data_type\":\"trade\",\"exchange\":\"binance\",\"market_type\":\"spot\",\"symbol\":\"BTC-USDT\",\
         \"trade_id\":\"42\",\"price\":\"50000.1\",\"quantity\":\"0.00001234\",\"side\":\"buy\",\"is_maker\":true,\
         \"trade_ts_ms\":{t},\"ts_ms\":{now},\"collected_ts_ms\":{now},\"data_source\":\"marketprism\"}}\n",
        t = now - 5
    );
    // The same trade twice (two rows for the service), and one whose quote
    // breaks the service's SQL: its batch fails, the others go in one by one.
    std::fs::write(
        records.join("core01-x-0001.jsonl"),
        format!("{trade}{}", trade.replace("BTC-USDT", "BAD'SYM")),
    )
    .unwrap();
    std::fs::write(
        records.join("sub/core00-x-0001.jsonl"),
        format!(
            "{trade}\
             {{\"data_type\":\"orderbook\",\"exchange\":\"okx\",\"market_type\":\"perpetual\",\"symbol\":\"BTC-USDT\",\
             \"last_update_id\":7,\"bids\":[{{\"price\":\"100.5\",\"quantity\":\"2\"}},{{\"price\":\"100\",\"quantity\":\"1\"}}],\
             \"asks\":[{{\"price\":\"101\",\"quantity\":\"3.5\"}}],\"ts_ms\":{now},\"data_source\":\"marketprism\"}}\n\
             {{\"data_type\":\"gap\",\"exchange\":\"okx\",\"ts_ms\":{now}}}\n"
        ),
    )
    .unwrap();
    let out = clickhouse::model_expected(&ch.url(), &records);
    assert!(
        out.starts_with("orderbooks: 1 records\ntrades: the service could not insert ("),
        "{out}"
    );
    assert!(
        out.contains("'BAD'SYM'") && out.contains("(SYNTAX_ERROR)"),
        "{out}"
    );
    assert!(
        out.ends_with("\ntrades: 3 records\n1 records refused by the engine\n"),
        "{out}"
    );
    // Text INSERTs are counted per table too: the failed batch added nothing.
    assert_eq!(rows_added(&ch, "expected.trades"), 2);
    assert_eq!(rows_added(&ch, "expected.orderbooks"), 1);
    assert_eq!(
        ch.query(
            "SELECT toUnixTimestamp64Milli(timestamp), exchange, market_type, symbol, trade_id, price, \
             quantity, side, is_maker, toUnixTimestamp64Milli(trade_time), data_source FROM expected.trades"
        ),
        format!(
            "{now}\tbinance\tspot\tBTC-USDT\t42\t50000.1\t0.00001234\tbuy\ttrue\t{}\tmarketprism\n",
            now - 5
        )
        .repeat(2)
    );
    assert_eq!(
        ch.query(
            "SELECT toUnixTimestamp64Milli(timestamp), exchange, market_type, symbol, last_update_id, \
             bids_count, asks_count, best_bid_price, best_ask_price, best_bid_quantity, best_ask_quantity, \
             bids, asks, data_source FROM expected.orderbooks"
        ),
        format!(
            "{now}\tokx\tperpetual\tBTC-USDT\t7\t2\t1\t100.5\t101\t2\t3.5\t\
             [{{\"price\":\"100.5\",\"quantity\":\"2\"}},{{\"price\":\"100\",\"quantity\":\"1\"}}]\t\
             [{{\"price\":\"101\",\"quantity\":\"3.5\"}}]\tmarketprism\n"
        )
    );
    // Nothing in marketprism_hot yet: all rows missing.
    let (equal, report) = clickhouse::model_compare(&ch.url());
    assert!(!equal, "{report}");
    assert!(report.starts_with("trades: 0 rows, 0 equal\n"), "{report}");
    assert!(report.contains("\n  missing x2: "), "{report}");
    assert!(report.contains("orderbooks: 0 rows, 0 equal\n"), "{report}");
    assert_eq!(report.matches("missing x").count(), 2, "{report}");
    // The same rows (created_at aside) compare equal.
    ch.query("INSERT INTO marketprism_hot.trades SELECT * FROM expected.trades");
    ch.query("INSERT INTO marketprism_hot.orderbooks SELECT * FROM expected.orderbooks");
    let (equal, report) = clickhouse::model_compare(&ch.url());
    assert!(equal, "{report}");
    assert_eq!(
        report,
        "trades: 2 rows, 2 equal\norderbooks: 1 rows, 1 equal\n"
    );
    // One changed value and one duplicate are both differences.
    ch.query("ALTER TABLE marketprism_hot.trades UPDATE price = 50000.2 WHERE 1 SETTINGS mutations_sync = 1");
    ch.query("INSERT INTO marketprism_hot.orderbooks SELECT * FROM expected.orderbooks");
    let (equal, report) = clickhouse::model_compare(&ch.url());
    assert!(!equal, "{report}");
    assert!(report.contains("trades: 2 rows, 0 equal\n"), "{report}");
    assert!(report.contains("orderbooks: 2 rows, 1 equal\n"), "{report}");
    assert!(report.contains("\tbuy\ttrue\t"), "{report}");
}

// MarketPrism's funding_rates columns: mark_price and index_price are the sink's extras.
const HOT_FUNDING: &str = "CREATE TABLE marketprism_hot.funding_rates (\
    timestamp DateTime64(3, 'UTC'), exchange LowCardinality(String), market_type LowCardinality(String), \
    symbol LowCardinality(String), funding_rate Decimal64(8), funding_time DateTime64(3, 'UTC'), \
    next_funding_time DateTime64(3, 'UTC'), mark_price Decimal64(8), index_price Decimal64(8), \
    data_source LowCardinality(String) DEFAULT 'marketprism', created_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
    ENGINE = MergeTree PARTITION BY (toYYYYMM(timestamp), exchange) ORDER BY (timestamp, exchange, symbol) \
    TTL toDateTime(timestamp) + INTERVAL 3 DAY DELETE";

#[test]
fn hot_storage_model_checks_the_sinks_extra_columns() {
    let (dir, ch) = stand();
    ch.query("CREATE DATABASE marketprism_hot");
    ch.query(HOT_FUNDING);
    ch.query("CREATE TABLE marketprism_hot.gaps (ts DateTime64(3)) ENGINE = MergeTree ORDER BY ts");
    ch.query("INSERT INTO marketprism_hot.gaps VALUES (now64(3))");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(
        records.join("core00-x-0001.jsonl"),
        format!(
            "{{\"data_type\":\"funding_rate\",\"exchange\":\"binance\",\"market_type\":\"perpetual\",\
             \"symbol\":\"BTC-USDT\",\"current_funding_rate\":\"0.0001\",\"next_funding_ts_ms\":{next},\
             \"mark_price\":\"101.5\",\"ts_ms\":{now},\"data_source\":\"marketprism\"}}\n",
            next = now + 3_600_000
        ),
    )
    .unwrap();
    assert_eq!(
        clickhouse::model_expected(&ch.url(), &records),
        "funding_rates: 1 records\n"
    );
    // The service: funding_time falls back to ts_ms; mark and index price left at 0.
    assert_eq!(
        ch.query(
            "SELECT funding_rate, toUnixTimestamp64Milli(funding_time), \
             toUnixTimestamp64Milli(next_funding_time), mark_price, index_price FROM expected.funding_rates"
        ),
        format!("0.0001\t{now}\t{}\t0\t0\n", now + 3_600_000)
    );
    // Our sink's row: the same, plus mark_price from the record (index_price absent: 0).
    ch.query(
        "INSERT INTO marketprism_hot.funding_rates SELECT * REPLACE (toDecimal64('101.5', 8) AS mark_price) \
         FROM expected.funding_rates",
    );
    let (equal, report) = clickhouse::model_compare_extras(&ch.url(), &records);
    assert!(equal, "{report}");
    assert_eq!(
        report,
        "funding_rates: 1 rows, 1 equal\n\
         funding_rates extras (mark_price, index_price): 1 records, 1 equal\ngaps: 1 rows\n"
    );
    ch.query("ALTER TABLE marketprism_hot.funding_rates UPDATE index_price = 3 WHERE 1 SETTINGS mutations_sync = 1");
    let (equal, report) = clickhouse::model_compare_extras(&ch.url(), &records);
    assert!(!equal, "{report}");
    assert!(
        report.starts_with("funding_rates: 1 rows, 1 equal\n"),
        "{report}"
    );
    assert!(
        report.contains("funding_rates extras (mark_price, index_price): 1 records, 0 equal\n"),
        "{report}"
    );
}

#[test]
fn chunked_and_gzip_bodies_are_read() {
    use flate2::{write::GzEncoder, Compression};
    let (_dir, ch) = stand();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&two_rows()).unwrap();
    let body = gz.finish().unwrap();
    let path = format!("/?query={}", clickhouse::url_encode(HEAD));
    ok(ch.request("POST", &path, &[("Content-Encoding", "gzip")], &body));
    // Chunked: two chunks, no Content-Length.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", ch.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         7\r\nSELECT \r\ne\r\ncount() FROM t\r\n0\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
    assert!(buf.ends_with("\r\n\r\n2\n"), "{buf}");
}

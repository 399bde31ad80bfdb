//! ClickHouse rows checked by the real engine: `chdb` (PyPI, ClickHouse
//! 26.9 embedded) decodes our RowBinary blocks and runs our DDL.
//!
//! - every table's rows, one record of each type with every field set and
//!   one with the optional fields absent, read back by `file(…, 'RowBinary',
//!   structure)`: every column's exact value;
//! - every `ddl()` on an empty database: the columns we send, the ones the
//!   server fills (`created_at`, `data_source` defaults), and our blocks
//!   inserted through ClickHouse's own input path (`INSERT … FROM INFILE …
//!   FORMAT RowBinary`) twice with one `insert_deduplication_token`: one copy;
//! - no heap allocation per row once the block buffer has grown.
//!
//! Needs `python3` with `chdb` 4.4.0 (`pip install chdb==4.4.0`); without it
//! the tests fail, they never skip.

mod common;

use common::alloc::allocs;
use marketprism::batch::{
    BookRecord, FundingRate, Gap, Level, Liquidation, LongShortRatio, OpenInterest, Origin, Record,
    Trade, TradeId, VolatilityIndex,
};
use marketprism::model::{DataType, Side, VenueId};
use marketprism::sink::clickhouse::rowbinary::row_ends;
use marketprism::sink::clickhouse::rows::{encode_gap_row, encode_row};
use marketprism::sink::clickhouse::schema::{ColType, Table};
use marketprism::sink::overflow;
use rust_decimal::Decimal;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const BIDS: [(&str, &str); 2] = [("64000.10", "1.5"), ("63999.9", "0.00100000")];
const ASKS: [(&str, &str); 1] = [("64000.2", "2")];

fn levels(ls: &[(&str, &str)]) -> &'static [Level] {
    let v: Vec<Level> = ls.iter().map(|(p, q)| Level::new(d(p), d(q))).collect();
    Vec::leak(v)
}

fn origin(venue: VenueId, symbol: &'static str, ts_ms: u64) -> Origin<'static> {
    Origin {
        venue,
        symbol,
        raw_symbol: "RAW",
        ts_ms,
        receive_ts_ns: ts_ms * 1_000_000 + 5,
    }
}

/// Records of every table, times offset from `t` (ms): each type once with
/// every field set, and once with its optional fields absent.
fn records(t: u64) -> Vec<(Table, Record<'static>)> {
    let bn = |s| origin(VenueId::BinanceDerivatives, s, t);
    let trade = |venue, id, price: &str, maker| Trade {
        venue,
        symbol: "BTC-USDT",
        raw_symbol: "BTCUSDT",
        trade_id: id,
        price: d(price),
        quantity: d("0.00001000"),
        contracts: Some(d("1")),
        side: Side::Sell,
        is_maker: maker,
        trade_ts_ms: t - 1,
        seq: Some(7),
        backfilled: false,
        ts_ms: t,
        receive_ts_ns: t * 1_000_000,
    };
    let book = |bids, asks| BookRecord {
        origin: bn("BTC-USDT"),
        delta: false,
        last_update_id: 18_446_744_073_709_551_615,
        first_update_id: 1,
        prev_update_id: None,
        bids,
        asks,
    };
    let funding = |full: bool| FundingRate {
        origin: origin(VenueId::OkxDerivatives, "ETH-USDT", t),
        funding_rate: d("-0.000125"),
        estimated_rate: full.then(|| d("0.0001")),
        funding_ts_ms: full.then_some(t + 3_600_000),
        next_funding_ts_ms: full.then_some(t + 7_200_000),
        mark_price: full.then(|| d("3000.5")),
        index_price: full.then(|| d("3000.25")),
    };
    let lsr = |dt, full: bool| LongShortRatio {
        origin: bn("BTC-USDT"),
        data_type: dt,
        long_short_ratio: d("1.5"),
        long_ratio: full.then(|| d("0.6")),
        short_ratio: full.then(|| d("0.4")),
        period: "5m",
    };
    let gap = |full: bool| Gap {
        origin: origin(VenueId::OkxSpot, "BTC-USDT", t),
        stream: if full {
            DataType::Trade
        } else {
            DataType::OrderBook
        },
        reason: if full { "disconnect" } else { "book_resync" },
        from_id: full.then_some(100),
        to_id: full.then_some(120),
        from_ts_ms: t - 2_000,
        to_ts_ms: t - 1_000,
        missing: full.then_some(21),
    };
    vec![
        (
            Table::Trades,
            Record::Trade(trade(
                VenueId::BinanceSpot,
                TradeId::Num(12345),
                "64000.10000000",
                Some(true),
            )),
        ),
        (
            Table::Trades,
            // A quote in an id (the service's SQL text would break on it),
            // and a price past eight places (truncated).
            Record::Trade(trade(
                VenueId::OkxDerivatives,
                TradeId::Str("t-9'x"),
                "0.123456789",
                None,
            )),
        ),
        (
            Table::Orderbooks,
            Record::Book(book(levels(&BIDS), levels(&ASKS))),
        ),
        (Table::Orderbooks, Record::Book(book(&[], &[]))),
        (Table::FundingRates, Record::Funding(funding(true))),
        (Table::FundingRates, Record::Funding(funding(false))),
        (
            Table::OpenInterests,
            Record::OpenInterest(OpenInterest {
                origin: bn("BTC-USDT"),
                open_interest: d("81234.567"),
                contracts: Some(d("812345")),
                value_usd: Some(d("5200000000")),
            }),
        ),
        (
            Table::Liquidations,
            Record::Liquidation(Liquidation {
                origin: bn("ETH-USDT"),
                side: Side::Buy,
                position_side: Some("short"),
                price: d("3000.01"),
                quantity: d("9999999999.99999999"),
                contracts: None,
                liquidation_ts_ms: t - 5,
            }),
        ),
        (
            Table::LsrTopPositions,
            Record::Lsr(lsr(DataType::LsrTopPosition, true)),
        ),
        (
            Table::LsrAllAccounts,
            Record::Lsr(lsr(DataType::LsrAllAccount, false)),
        ),
        (
            Table::VolatilityIndices,
            Record::Volatility(VolatilityIndex {
                origin: origin(VenueId::DeribitDerivatives, "BTC", t),
                volatility_index: d("55.43"),
                index_name: "btc_usd",
            }),
        ),
        (Table::Gaps, Record::Gap(gap(true))),
        (Table::Gaps, Record::Gap(gap(false))),
    ]
}

fn overflow_gap(t: u64) -> overflow::Gap {
    overflow::Gap {
        venue: VenueId::BybitLinear,
        data_type: DataType::Trade,
        symbol: "SOL-USDT".into(),
        count: 42,
        from_ts_ms: t - 30,
        to_ts_ms: t - 20,
        from_id: Some("a".into()),
        to_id: Some("b".into()),
    }
}

/// One RowBinary block per table, rows in `records` order (the overflow
/// gap last in `gaps`).
fn blocks(t: u64) -> Vec<(Table, Vec<u8>, usize)> {
    let recs = records(t);
    let mut out = Vec::new();
    for table in Table::ALL {
        let mut block = Vec::new();
        let mut rows = 0;
        for (_, r) in recs.iter().filter(|(tb, _)| *tb == table) {
            encode_row(table, r, &mut block).unwrap();
            rows += 1;
        }
        if table == Table::Gaps {
            encode_gap_row(&overflow_gap(t), t + 1, &mut block).unwrap();
            rows += 1;
        }
        assert_eq!(row_ends(table, &block).unwrap().len(), rows, "{table:?}");
        out.push((table, block, rows));
    }
    out
}

const PIP: &str = "python3 with chdb is needed: pip install chdb==4.4.0";

/// Runs a Python script with `chdb`; its stdout. Fails (never skips) when
/// python3 or chdb is missing.
fn chdb(script: &str, args: &[String]) -> String {
    let check = Command::new("python3")
        .args(["-c", "import chdb"])
        .output()
        .unwrap_or_else(|e| panic!("{PIP} (python3: {e})"));
    assert!(
        check.status.success(),
        "{PIP}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chdb script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// SQL string quoting, and JSONEachRow settings that print every value exactly.
const PY_HEAD: &str = r#"
import sys, chdb
def q(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
EXACT = " SETTINGS output_format_json_quote_decimals=1, output_format_decimal_trailing_zeros=1, output_format_json_quote_64bit_integers=0"
def lines(r):
    return [l for l in str(r).splitlines() if l]
"#;

fn write_blocks(dir: &Path, blocks: &[(Table, Vec<u8>, usize)]) -> Vec<String> {
    blocks
        .iter()
        .map(|(table, block, _)| {
            let p = dir.join(table.default_name());
            std::fs::write(&p, block).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn every_table_decodes_to_the_values_the_service_writes() {
    const T: u64 = 1_764_943_200_123; // 2025-12-05 14:00:00.123 UTC
    let dir = tempfile::tempdir().unwrap();
    let blocks = blocks(T);
    let paths = write_blocks(dir.path(), &blocks);
    let mut args = Vec::new();
    for ((table, _, _), path) in blocks.iter().zip(&paths) {
        args.push(table.default_name().to_string());
        args.push(path.clone());
        args.push(table.structure());
    }
    let script = format!(
        "{PY_HEAD}{}",
        r#"
a = sys.argv[1:]
for i in range(0, len(a), 3):
    name, path, st = a[i:i + 3]
    for l in lines(chdb.query(f"SELECT * FROM file({q(path)}, 'RowBinary', {q(st)})" + EXACT, "JSONEachRow")):
        print(name, l)
"#
    );
    let got = chdb(&script, &args);
    let base = |ex: &str, mt: &str, sym: &str| {
        format!(
            r#""timestamp":"2025-12-05 14:00:00.123","exchange":"{ex}","market_type":"{mt}","symbol":"{sym}""#
        )
    };
    let bd = base("binance", "perpetual", "BTC-USDT");
    let want = [
        format!(
            r#"trades {{{},"trade_id":"12345","price":"64000.10000000","quantity":"0.00001000","side":"sell","is_maker":true,"trade_time":"2025-12-05 14:00:00.122","data_source":"marketprism"}}"#,
            base("binance", "spot", "BTC-USDT")
        ),
        format!(
            r#"trades {{{},"trade_id":"t-9'x","price":"0.12345678","quantity":"0.00001000","side":"sell","is_maker":false,"trade_time":"2025-12-05 14:00:00.122","data_source":"marketprism"}}"#,
            base("okx", "perpetual", "BTC-USDT")
        ),
        format!(
            r#"orderbooks {{{bd},"last_update_id":18446744073709551615,"bids_count":2,"asks_count":1,"best_bid_price":"64000.10000000","best_ask_price":"64000.20000000","best_bid_quantity":"1.50000000","best_ask_quantity":"2.00000000","bids":"[{{\"price\":\"64000.10\",\"quantity\":\"1.5\"}},{{\"price\":\"63999.9\",\"quantity\":\"0.00100000\"}}]","asks":"[{{\"price\":\"64000.2\",\"quantity\":\"2\"}}]","data_source":"marketprism"}}"#
        ),
        format!(
            r#"orderbooks {{{bd},"last_update_id":18446744073709551615,"bids_count":0,"asks_count":0,"best_bid_price":"0.00000000","best_ask_price":"0.00000000","best_bid_quantity":"0.00000000","best_ask_quantity":"0.00000000","bids":"[]","asks":"[]","data_source":"marketprism"}}"#
        ),
        format!(
            r#"funding_rates {{{},"funding_rate":"-0.00012500","funding_time":"2025-12-05 15:00:00.123","next_funding_time":"2025-12-05 16:00:00.123","mark_price":"3000.50000000","index_price":"3000.25000000","data_source":"marketprism"}}"#,
            base("okx", "perpetual", "ETH-USDT")
        ),
        format!(
            r#"funding_rates {{{},"funding_rate":"-0.00012500","funding_time":"2025-12-05 14:00:00.123","next_funding_time":"2025-12-05 14:00:00.123","mark_price":"0.00000000","index_price":"0.00000000","data_source":"marketprism"}}"#,
            base("okx", "perpetual", "ETH-USDT")
        ),
        format!(
            r#"open_interests {{{bd},"open_interest":"81234.56700000","open_interest_value":"81234.56700000","data_source":"marketprism"}}"#
        ),
        format!(
            r#"liquidations {{{},"side":"buy","price":"3000.01000000","quantity":"9999999999.99999999","liquidation_time":"2025-12-05 14:00:00.118","data_source":"marketprism"}}"#,
            base("binance", "perpetual", "ETH-USDT")
        ),
        format!(
            r#"lsr_top_positions {{{bd},"long_position_ratio":"0.60000000","short_position_ratio":"0.40000000","period":"5m","data_source":"marketprism"}}"#
        ),
        format!(
            r#"lsr_all_accounts {{{bd},"long_account_ratio":"0.00000000","short_account_ratio":"0.00000000","period":"5m","data_source":"marketprism"}}"#
        ),
        format!(
            r#"volatility_indices {{{},"index_value":"55.43000000","underlying_asset":"BTC","data_source":"marketprism"}}"#,
            base("deribit", "options", "BTC")
        ),
        format!(
            r#"gaps {{{},"channel":"trade","reason":"disconnect","from_id":"100","to_id":"120","from_time":"2025-12-05 13:59:58.123","to_time":"2025-12-05 13:59:59.123","missing":21,"data_source":"marketprism"}}"#,
            base("okx", "spot", "BTC-USDT")
        ),
        format!(
            r#"gaps {{{},"channel":"orderbook","reason":"book_resync","from_id":"","to_id":"","from_time":"2025-12-05 13:59:58.123","to_time":"2025-12-05 13:59:59.123","missing":-1,"data_source":"marketprism"}}"#,
            base("okx", "spot", "BTC-USDT")
        ),
        r#"gaps {"timestamp":"2025-12-05 14:00:00.124","exchange":"bybit","market_type":"perpetual","symbol":"SOL-USDT","channel":"trade","reason":"sink_backpressure","from_id":"a","to_id":"b","from_time":"2025-12-05 14:00:00.093","to_time":"2025-12-05 14:00:00.103","missing":42,"data_source":"marketprism"}"#.to_string(),
    ];
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}

/// `system.columns` type of a sent column (ClickHouse spells Decimal64(8) out).
fn system_type(t: ColType) -> &'static str {
    match t {
        ColType::Decimal64x8 => "Decimal(18, 8)",
        other => other.sql(),
    }
}

#[test]
fn ddl_makes_the_tables_the_rows_go_into_exactly_once() {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let dir = tempfile::tempdir().unwrap();
    // Current times: the hot tables' 3-day TTL would delete older rows.
    let blocks = blocks(now_ms);
    let paths = write_blocks(dir.path(), &blocks);
    let mut args = vec![dir.path().join("db").to_str().unwrap().to_string()];
    for ((table, _, _), path) in blocks.iter().zip(&paths) {
        let name = table.default_name();
        args.push(name.to_string());
        args.push(table.ddl("marketprism_hot", name, Some(3), 1000));
        args.push(table.insert_sql(name).replace(
            " FORMAT RowBinary",
            &format!(" FROM INFILE '{path}' FORMAT RowBinary"),
        ));
        args.push(path.clone());
        args.push(table.structure());
        let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
        args.push(names.join(", "));
    }
    let script = format!(
        "{PY_HEAD}{}",
        r#"
from chdb import session
s = session.Session(sys.argv[1])
s.query("CREATE DATABASE marketprism_hot")
s.query("USE marketprism_hot")
a = sys.argv[2:]
for i in range(0, len(a), 6):
    name, ddl, insert, path, st, cols = a[i:i + 6]
    s.query(ddl)
    s.query(ddl)  # IF NOT EXISTS: a second run changes nothing
    for c in lines(s.query(f"SELECT name, type, default_kind, default_expression FROM system.columns WHERE database = 'marketprism_hot' AND table = {q(name)} ORDER BY position", "TabSeparatedRaw")):
        print("col", name, c)
    # A retry with the same token: the second insert is deduplicated.
    for _ in range(2):
        s.query(insert.replace(" FORMAT", " SETTINGS insert_deduplication_token = 'tok-" + name + "' FORMAT"))
    table_rows = sorted(lines(s.query(f"SELECT {cols} FROM {name}" + EXACT, "JSONEachRow")))
    file_rows = sorted(lines(s.query(f"SELECT * FROM file({q(path)}, 'RowBinary', {q(st)})" + EXACT, "JSONEachRow")))
    print("same", name, table_rows == file_rows, len(table_rows))
    print("fresh", name, str(s.query(f"SELECT countIf(abs(dateDiff('second', created_at, now64(3))) < 600) FROM {name}", "TabSeparatedRaw")).strip())
"#
    );
    let got = chdb(&script, &args);
    for (table, _, rows) in &blocks {
        let name = table.default_name();
        let cols: Vec<Vec<&str>> = got
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("col {name} ")))
            .map(|l| l.split('\t').collect())
            .collect();
        // The sent columns in send order, the server's in between.
        let server: Vec<&str> = table.server_columns().collect();
        let sent: Vec<Vec<&str>> = cols
            .iter()
            .filter(|c| !server.contains(&c[0]))
            .map(|c| c[..2].to_vec())
            .collect();
        let want: Vec<Vec<&str>> = table
            .columns()
            .iter()
            .map(|c| vec![c.name, system_type(c.ty)])
            .collect();
        assert_eq!(sent, want, "{name}");
        assert_eq!(
            cols.last().unwrap(),
            &["created_at", "DateTime64(3, 'UTC')", "DEFAULT", "now64(3)"],
            "{name}"
        );
        let ds = cols.iter().find(|c| c[0] == "data_source").unwrap();
        assert_eq!(
            ds,
            &[
                "data_source",
                "LowCardinality(String)",
                "DEFAULT",
                "'marketprism'"
            ],
            "{name}"
        );
        assert_eq!(cols.len(), want.len() + server.len(), "{name}");
        assert!(
            got.contains(&format!("same {name} True {rows}\n")),
            "{name}: {got}"
        );
        assert!(got.contains(&format!("fresh {name} {rows}\n")), "{name}");
    }
    let server: Vec<(Table, Vec<&str>)> = Table::ALL
        .iter()
        .map(|t| (*t, t.server_columns().collect::<Vec<_>>()))
        .filter(|(_, c)| c.len() > 1)
        .collect();
    assert_eq!(
        server,
        [
            (Table::OpenInterests, vec!["count", "created_at"]),
            (
                Table::VolatilityIndices,
                vec!["maturity_date", "created_at"]
            ),
        ]
    );
}

#[test]
fn rows_allocate_nothing_once_the_block_has_grown() {
    let recs = records(1_764_943_200_123);
    let mut block = Vec::with_capacity(1 << 16);
    for (table, r) in &recs {
        encode_row(*table, r, &mut block).unwrap();
    }
    let before = allocs();
    for _ in 0..1000 {
        block.clear();
        for (table, r) in &recs {
            encode_row(*table, r, &mut block).unwrap();
        }
    }
    assert_eq!(allocs() - before, 0);
}

//! A record → one RowBinary row of its table, with the values MarketPrism's
//! hot-storage service writes for the same record (its
//! `_validate_message_data` / `_build_values_for_record`), so its queries
//! keep working:
//!
//! - every table: `timestamp` = the record's `ts_ms`, `exchange`,
//!   `market_type`, `symbol` as in our JSON, `data_source` = `marketprism`;
//!   `created_at` is left to the server's DEFAULT;
//! - absent optional values become what the service stores for them
//!   (`is_maker` false, ratios and prices 0, a missing funding time the
//!   record's own time);
//! - decimals exactly (integer arithmetic, never f64), book levels as the
//!   JSON text of our payload's `bids`/`asks`.
//!
//! Where the service leaves a column at its default but we have the value
//! (funding `mark_price`/`index_price`, open interest, the volatility
//! `index_value` and `underlying_asset`), we fill it. A row is all or
//! nothing: on error `out` is as it was.

use super::rowbinary::{
    put_bool, put_datetime64_ms, put_decimal64_8, put_i64, put_str, put_str_with, put_u32, put_u64,
    put_u8, DecimalError, TimeOutOfRange,
};
use super::schema::Table;
use crate::batch::{
    BookRecord, FundingRate, Gap, Liquidation, LongShortRatio, OpenInterest, Record, Trade,
    TradeId, VolatilityIndex,
};
use crate::json::push_u64;
use crate::model::{DataType, VenueId};
use crate::sink::encode::push_levels;
use crate::sink::overflow;
use rust_decimal::Decimal;
use std::fmt;

/// `reason` of the `gaps` row for records the sink had to drop (the same
/// word as the overflow policy's JSON `gap` record).
pub const OVERFLOW_REASON: &str = "sink_backpressure";

const DATA_SOURCE: &[u8] = b"marketprism";

/// Why a record could not become a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowError {
    /// The record does not belong in this table (wrong type, a book delta).
    WrongTable { table: Table, data_type: DataType },
    /// A decimal beyond `Decimal64(8)` (|value| ≥ 10¹⁰): ClickHouse would
    /// refuse it, so the row is not sent.
    DecimalOutOfRange { column: &'static str },
    /// A time beyond `DateTime64(3)` (after 2299).
    TimeOutOfRange { column: &'static str },
}

impl RowError {
    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RowError::WrongTable { .. } => "wrong_table",
            RowError::DecimalOutOfRange { .. } => "decimal_out_of_range",
            RowError::TimeOutOfRange { .. } => "time_out_of_range",
        }
    }

    /// The column at fault (`None` for a record of another table).
    pub fn column(&self) -> Option<&'static str> {
        match self {
            RowError::WrongTable { .. } => None,
            RowError::DecimalOutOfRange { column } | RowError::TimeOutOfRange { column } => {
                Some(column)
            }
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::WrongTable { table, data_type } => write!(
                f,
                "a {data_type} record has no row in {}",
                table.default_name()
            ),
            RowError::DecimalOutOfRange { column } => {
                write!(f, "{column}: {}", DecimalError::OutOfRange)
            }
            RowError::TimeOutOfRange { column } => {
                write!(f, "{column}: time beyond DateTime64(3) (after 2299)")
            }
        }
    }
}

/// Appends `rec` as one row of `table` (all of it, or nothing on error).
#[inline]
pub fn encode_row(table: Table, rec: &Record<'_>, out: &mut Vec<u8>) -> Result<(), RowError> {
    let start = out.len();
    let r = write_row(table, rec, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Appends the `gaps` row of records the sink dropped (`now_ms`: when).
pub fn encode_gap_row(g: &overflow::Gap, now_ms: u64, out: &mut Vec<u8>) -> Result<(), RowError> {
    let start = out.len();
    let r = write_overflow_gap(g, now_ms, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

#[inline]
fn write_row(table: Table, rec: &Record<'_>, out: &mut Vec<u8>) -> Result<(), RowError> {
    match (table, rec) {
        (Table::Trades, Record::Trade(t)) => trade(out, t),
        (Table::Orderbooks, Record::Book(b)) if !b.delta => book(out, b),
        (Table::FundingRates, Record::Funding(f)) => funding(out, f),
        (Table::OpenInterests, Record::OpenInterest(o)) => open_interest(out, o),
        (Table::Liquidations, Record::Liquidation(l)) => liquidation(out, l),
        (Table::LsrTopPositions, Record::Lsr(l)) if l.data_type == DataType::LsrTopPosition => {
            lsr(out, l)
        }
        (Table::LsrAllAccounts, Record::Lsr(l)) if l.data_type == DataType::LsrAllAccount => {
            lsr(out, l)
        }
        (Table::VolatilityIndices, Record::Volatility(v)) => volatility(out, v),
        (Table::Gaps, Record::Gap(g)) => gap(out, g),
        _ => Err(RowError::WrongTable {
            table,
            data_type: rec.data_type(),
        }),
    }
}

#[inline]
fn time(out: &mut Vec<u8>, column: &'static str, ms: u64) -> Result<(), RowError> {
    put_datetime64_ms(out, ms).map_err(|TimeOutOfRange| RowError::TimeOutOfRange { column })
}

#[inline]
fn dec(out: &mut Vec<u8>, column: &'static str, d: &Decimal) -> Result<(), RowError> {
    put_decimal64_8(out, d).map_err(|_| RowError::DecimalOutOfRange { column })
}

#[inline]
fn opt_dec(out: &mut Vec<u8>, column: &'static str, d: &Option<Decimal>) -> Result<(), RowError> {
    dec(out, column, d.as_ref().unwrap_or(&Decimal::ZERO))
}

/// `timestamp, exchange, market_type, symbol`.
#[inline]
fn base(
    out: &mut Vec<u8>,
    ts_ms: u64,
    venue: VenueId,
    dt: DataType,
    symbol: &str,
) -> Result<(), RowError> {
    time(out, "timestamp", ts_ms)?;
    put_str(out, venue.exchange().as_bytes());
    put_str(out, venue.market_type_of(dt).as_bytes());
    put_str(out, symbol.as_bytes());
    Ok(())
}

/// An integer as a `String` value: its decimal digits (at most 20, so the
/// length prefix is one byte).
#[inline]
fn u64_text(out: &mut Vec<u8>, n: u64) {
    let at = out.len();
    out.push(0);
    push_u64(out, n);
    out[at] = (out.len() - at - 1) as u8;
}

fn trade(out: &mut Vec<u8>, t: &Trade<'_>) -> Result<(), RowError> {
    base(out, t.ts_ms, t.venue, DataType::Trade, t.symbol)?;
    match t.trade_id {
        TradeId::Num(n) => u64_text(out, n),
        TradeId::Str(s) => put_str(out, s.as_bytes()),
    }
    dec(out, "price", &t.price)?;
    dec(out, "quantity", &t.quantity)?;
    put_str(out, t.side.as_str().as_bytes());
    put_bool(out, t.is_maker.unwrap_or(false));
    time(out, "trade_time", t.trade_ts_ms)?;
    put_str(out, DATA_SOURCE);
    Ok(())
}

/// Typical text of one level (`{"price":"64000.1","quantity":"0.5"},`),
/// to guess the width of the `bids`/`asks` length prefix.
const LEVEL_TEXT_GUESS: usize = 40;

fn book(out: &mut Vec<u8>, b: &BookRecord<'_>) -> Result<(), RowError> {
    base(
        out,
        b.origin.ts_ms,
        b.origin.venue,
        DataType::OrderBook,
        b.origin.symbol,
    )?;
    put_u64(out, b.last_update_id);
    put_u32(out, u32::try_from(b.bids.len()).unwrap_or(u32::MAX));
    put_u32(out, u32::try_from(b.asks.len()).unwrap_or(u32::MAX));
    let (bid, ask) = (b.bids.first(), b.asks.first());
    dec(
        out,
        "best_bid_price",
        &bid.map_or(Decimal::ZERO, |l| l.price),
    )?;
    dec(
        out,
        "best_ask_price",
        &ask.map_or(Decimal::ZERO, |l| l.price),
    )?;
    dec(
        out,
        "best_bid_quantity",
        &bid.map_or(Decimal::ZERO, |l| l.quantity),
    )?;
    dec(
        out,
        "best_ask_quantity",
        &ask.map_or(Decimal::ZERO, |l| l.quantity),
    )?;
    put_str_with(out, 2 + b.bids.len() * LEVEL_TEXT_GUESS, |o| {
        push_levels(o, b.bids)
    });
    put_str_with(out, 2 + b.asks.len() * LEVEL_TEXT_GUESS, |o| {
        push_levels(o, b.asks)
    });
    put_str(out, DATA_SOURCE);
    Ok(())
}

fn funding(out: &mut Vec<u8>, f: &FundingRate<'_>) -> Result<(), RowError> {
    let o = &f.origin;
    base(out, o.ts_ms, o.venue, DataType::FundingRate, o.symbol)?;
    dec(out, "funding_rate", &f.funding_rate)?;
    time(out, "funding_time", f.funding_ts_ms.unwrap_or(o.ts_ms))?;
    time(
        out,
        "next_funding_time",
        f.next_funding_ts_ms.unwrap_or(o.ts_ms),
    )?;
    opt_dec(out, "mark_price", &f.mark_price)?;
    opt_dec(out, "index_price", &f.index_price)?;
    put_str(out, DATA_SOURCE);
    Ok(())
}

fn open_interest(out: &mut Vec<u8>, r: &OpenInterest<'_>) -> Result<(), RowError> {
    let o = &r.origin;
    base(out, o.ts_ms, o.venue, DataType::OpenInterest, o.symbol)?;
    dec(out, "open_interest", &r.open_interest)?;
    // Our JSON's `open_interest_value` is the same quantity.
    dec(out, "open_interest_value", &r.open_interest)?;
    put_str(out, DATA_SOURCE);
    Ok(())
}

fn liquidation(out: &mut Vec<u8>, l: &Liquidation<'_>) -> Result<(), RowError> {
    let o = &l.origin;
    base(out, o.ts_ms, o.venue, DataType::Liquidation, o.symbol)?;
    put_str(out, l.side.as_str().as_bytes());
    dec(out, "price", &l.price)?;
    dec(out, "quantity", &l.quantity)?;
    time(out, "liquidation_time", l.liquidation_ts_ms)?;
    put_str(out, DATA_SOURCE);
    Ok(())
}

fn lsr(out: &mut Vec<u8>, l: &LongShortRatio<'_>) -> Result<(), RowError> {
    let o = &l.origin;
    base(out, o.ts_ms, o.venue, l.data_type, o.symbol)?;
    let (long, short) = if l.data_type == DataType::LsrTopPosition {
        ("long_position_ratio", "short_position_ratio")
    } else {
        ("long_account_ratio", "short_account_ratio")
    };
    opt_dec(out, long, &l.long_ratio)?;
    opt_dec(out, short, &l.short_ratio)?;
    put_str(out, l.period.as_bytes());
    put_str(out, DATA_SOURCE);
    Ok(())
}

fn volatility(out: &mut Vec<u8>, v: &VolatilityIndex<'_>) -> Result<(), RowError> {
    let o = &v.origin;
    base(out, o.ts_ms, o.venue, DataType::VolatilityIndex, o.symbol)?;
    dec(out, "index_value", &v.volatility_index)?;
    put_str(out, o.symbol.as_bytes());
    put_str(out, DATA_SOURCE);
    Ok(())
}

/// `from_id` / `to_id`: the id's digits, or empty when unknown.
fn opt_id(out: &mut Vec<u8>, id: Option<u64>) {
    match id {
        Some(n) => u64_text(out, n),
        None => put_u8(out, 0),
    }
}

/// `missing`: the count, -1 when unknown.
fn missing(out: &mut Vec<u8>, n: Option<u64>) {
    put_i64(out, n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)));
}

fn gap(out: &mut Vec<u8>, g: &Gap<'_>) -> Result<(), RowError> {
    let o = &g.origin;
    base(out, o.ts_ms, o.venue, DataType::Gap, o.symbol)?;
    put_str(out, g.stream.name().as_bytes());
    put_str(out, g.reason.as_bytes());
    opt_id(out, g.from_id);
    opt_id(out, g.to_id);
    time(out, "from_time", g.from_ts_ms)?;
    time(out, "to_time", g.to_ts_ms)?;
    missing(out, g.missing);
    put_str(out, DATA_SOURCE);
    Ok(())
}

fn write_overflow_gap(g: &overflow::Gap, now_ms: u64, out: &mut Vec<u8>) -> Result<(), RowError> {
    time(out, "timestamp", now_ms)?;
    put_str(out, g.venue.exchange().as_bytes());
    // As the overflow policy's JSON `gap` record: the venue's market type.
    put_str(out, g.venue.market_type().as_bytes());
    put_str(out, g.symbol.as_bytes());
    put_str(out, g.data_type.name().as_bytes());
    put_str(out, OVERFLOW_REASON.as_bytes());
    put_str(out, g.from_id.as_deref().unwrap_or("").as_bytes());
    put_str(out, g.to_id.as_deref().unwrap_or("").as_bytes());
    time(out, "from_time", g.from_ts_ms)?;
    time(out, "to_time", g.to_ts_ms)?;
    missing(out, Some(g.count));
    put_str(out, DATA_SOURCE);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Level, Origin};
    use crate::model::Side;
    use crate::sink::clickhouse::rowbinary::row_ends;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn trade(price: &str) -> Record<'static> {
        Record::Trade(Trade {
            venue: VenueId::BinanceSpot,
            symbol: "BTC-USDT",
            raw_symbol: "BTCUSDT",
            trade_id: TradeId::Num(12345),
            price: d(price),
            quantity: d("0.5"),
            contracts: None,
            side: Side::Sell,
            is_maker: None,
            trade_ts_ms: 1_764_943_200_001,
            seq: None,
            backfilled: false,
            ts_ms: 1_764_943_200_002,
            receive_ts_ns: 0,
        })
    }

    fn s(out: &mut Vec<u8>, v: &str) {
        out.push(v.len() as u8);
        out.extend_from_slice(v.as_bytes());
    }

    #[test]
    fn trade_row_bytes() {
        let mut out = Vec::new();
        encode_row(Table::Trades, &trade("64000.1"), &mut out).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&1_764_943_200_002i64.to_le_bytes());
        s(&mut want, "binance");
        s(&mut want, "spot");
        s(&mut want, "BTC-USDT");
        s(&mut want, "12345");
        want.extend_from_slice(&6_400_010_000_000i64.to_le_bytes());
        want.extend_from_slice(&50_000_000i64.to_le_bytes());
        s(&mut want, "sell");
        want.push(0);
        want.extend_from_slice(&1_764_943_200_001i64.to_le_bytes());
        s(&mut want, "marketprism");
        assert_eq!(out, want);
    }

    #[test]
    fn a_bad_row_leaves_the_block_as_it_was() {
        let mut out = Vec::new();
        encode_row(Table::Trades, &trade("1"), &mut out).unwrap();
        let one = out.clone();
        assert_eq!(
            encode_row(Table::Trades, &trade("10000000000"), &mut out),
            Err(RowError::DecimalOutOfRange { column: "price" })
        );
        assert_eq!(out, one);
        let err = encode_row(Table::Orderbooks, &trade("1"), &mut out).unwrap_err();
        assert_eq!(
            err,
            RowError::WrongTable {
                table: Table::Orderbooks,
                data_type: DataType::Trade
            }
        );
        assert_eq!(err.to_string(), "a trade record has no row in orderbooks");
        assert_eq!((err.kind(), err.column()), ("wrong_table", None));
        assert_eq!(out, one);
        let mut late = trade("1");
        if let Record::Trade(t) = &mut late {
            t.trade_ts_ms = u64::MAX;
        }
        let err = encode_row(Table::Trades, &late, &mut out).unwrap_err();
        assert_eq!(
            err,
            RowError::TimeOutOfRange {
                column: "trade_time"
            }
        );
        assert_eq!(err.kind(), "time_out_of_range");
        assert_eq!(out, one);
    }

    #[test]
    fn book_deltas_have_no_row() {
        let levels = [Level::new(d("1"), d("2"))];
        let origin = Origin {
            venue: VenueId::OkxDerivatives,
            symbol: "BTC-USDT",
            raw_symbol: "BTC-USDT-SWAP",
            ts_ms: 1,
            receive_ts_ns: 0,
        };
        let mut b = BookRecord {
            origin,
            delta: true,
            last_update_id: 9,
            first_update_id: 9,
            prev_update_id: None,
            bids: &levels,
            asks: &[],
        };
        let mut out = Vec::new();
        assert!(encode_row(Table::Orderbooks, &Record::Book(b), &mut out).is_err());
        assert!(out.is_empty());
        b.delta = false;
        encode_row(Table::Orderbooks, &Record::Book(b), &mut out).unwrap();
        // The level text is our JSON's; the empty side is `[]` and its best 0.
        let text = br#"[{"price":"1","quantity":"2"}]"#;
        let at = out.windows(text.len()).position(|w| w == text).unwrap();
        assert_eq!(out[at - 1] as usize, text.len());
        assert_eq!(&out[at + text.len()..at + text.len() + 3], b"\x02[]");
        assert_eq!(row_ends(Table::Orderbooks, &out), Ok(vec![out.len()]));
    }

    #[test]
    fn overflow_gap_row() {
        let g = overflow::Gap {
            venue: VenueId::DeribitDerivatives,
            data_type: DataType::Trade,
            symbol: "BTC-PERPETUAL".into(),
            count: 3,
            from_ts_ms: 10,
            to_ts_ms: 20,
            from_id: Some("a1".into()),
            to_id: None,
        };
        let mut out = Vec::new();
        encode_gap_row(&g, 30, &mut out).unwrap();
        let mut want = 30i64.to_le_bytes().to_vec();
        s(&mut want, "deribit");
        s(&mut want, "perpetual");
        s(&mut want, "BTC-PERPETUAL");
        s(&mut want, "trade");
        s(&mut want, "sink_backpressure");
        s(&mut want, "a1");
        s(&mut want, "");
        want.extend_from_slice(&10i64.to_le_bytes());
        want.extend_from_slice(&20i64.to_le_bytes());
        want.extend_from_slice(&3i64.to_le_bytes());
        s(&mut want, "marketprism");
        assert_eq!(out, want);
        assert_eq!(
            encode_gap_row(&g, u64::MAX, &mut out),
            Err(RowError::TimeOutOfRange {
                column: "timestamp"
            })
        );
        assert_eq!(out, want);
    }
}

//! MarketPrism's ClickHouse tables (services/hot-storage-service/config/
//! clickhouse_schema.sql in MNS-Vic/marketprism) plus our `gaps` table:
//! the columns we send, in send order, and the DDL `create_tables` runs.
//!
//! One description per table serves both: [`Table::ddl`] writes every
//! column (server-filled ones too), [`Table::columns`] only the ones the
//! sink sends. Codecs follow from the type, as in MarketPrism's file
//! (times and counters `Delta, ZSTD`, the rest `ZSTD`).

use crate::model::DataType;
use std::fmt::Write;

/// A table the sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Trades,
    Orderbooks,
    FundingRates,
    OpenInterests,
    Liquidations,
    LsrTopPositions,
    LsrAllAccounts,
    VolatilityIndices,
    /// Ours: what a stream lost (`gap` records and sink overflow).
    Gaps,
}

/// A column's ClickHouse type, as far as the sink needs to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `DateTime64(3, 'UTC')`: Int64 milliseconds in RowBinary.
    DateTime64Ms,
    LowCardString,
    String,
    /// `Decimal64(8)`: Int64 × 10⁸ in RowBinary.
    Decimal64x8,
    UInt64,
    UInt32,
    Int64,
    Bool,
    /// UInt16 days since 1970-01-01 in RowBinary.
    Date,
}

impl ColType {
    /// The type as MarketPrism's DDL spells it.
    pub fn sql(self) -> &'static str {
        match self {
            ColType::DateTime64Ms => "DateTime64(3, 'UTC')",
            ColType::LowCardString => "LowCardinality(String)",
            ColType::String => "String",
            ColType::Decimal64x8 => "Decimal64(8)",
            ColType::UInt64 => "UInt64",
            ColType::UInt32 => "UInt32",
            ColType::Int64 => "Int64",
            ColType::Bool => "Bool",
            ColType::Date => "Date",
        }
    }

    /// Bytes of one value in RowBinary; `None`: LEB128 length + bytes.
    pub fn fixed_width(self) -> Option<usize> {
        match self {
            ColType::DateTime64Ms | ColType::Decimal64x8 | ColType::UInt64 | ColType::Int64 => {
                Some(8)
            }
            ColType::UInt32 => Some(4),
            ColType::Date => Some(2),
            ColType::Bool => Some(1),
            ColType::LowCardString | ColType::String => None,
        }
    }

    fn codec(self) -> &'static str {
        match self {
            ColType::DateTime64Ms | ColType::UInt64 | ColType::UInt32 => "Delta, ZSTD",
            _ => "ZSTD",
        }
    }
}

/// A column the sink sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
}

/// A column of the DDL: `sent` = part of [`Table::columns`].
struct DdlCol {
    name: &'static str,
    ty: ColType,
    default: Option<&'static str>,
    sent: bool,
}

const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty }
}

const fn d(name: &'static str, ty: ColType) -> DdlCol {
    DdlCol {
        name,
        ty,
        default: None,
        sent: true,
    }
}

const fn dd(name: &'static str, ty: ColType, default: &'static str) -> DdlCol {
    DdlCol {
        name,
        ty,
        default: Some(default),
        sent: true,
    }
}

/// A column the server fills (its DEFAULT), never sent.
const fn server(name: &'static str, ty: ColType, default: Option<&'static str>) -> DdlCol {
    DdlCol {
        name,
        ty,
        default,
        sent: false,
    }
}

use ColType::{
    Bool, Date, DateTime64Ms as Dt, Decimal64x8 as Dec, Int64, LowCardString as Lc, String as Str,
    UInt32, UInt64,
};

const DATA_SOURCE: DdlCol = dd("data_source", Lc, "'marketprism'");
const CREATED_AT: DdlCol = server("created_at", Dt, Some("now64(3)"));

macro_rules! base_cols {
    ($($rest:expr),* $(,)?) => {
        &[
            col("timestamp", Dt),
            col("exchange", Lc),
            col("market_type", Lc),
            col("symbol", Lc),
            $($rest,)*
            col("data_source", Lc),
        ]
    };
}

macro_rules! base_ddl {
    ($($rest:expr),* $(,)?) => {
        &[
            d("timestamp", Dt),
            d("exchange", Lc),
            d("market_type", Lc),
            d("symbol", Lc),
            $($rest,)*
            DATA_SOURCE,
            CREATED_AT,
        ]
    };
}

const TRADES: &[Column] = base_cols![
    col("trade_id", Str),
    col("price", Dec),
    col("quantity", Dec),
    col("side", Lc),
    col("is_maker", Bool),
    col("trade_time", Dt),
];
const TRADES_DDL: &[DdlCol] = base_ddl![
    d("trade_id", Str),
    d("price", Dec),
    d("quantity", Dec),
    d("side", Lc),
    dd("is_maker", Bool, "false"),
    d("trade_time", Dt),
];

const ORDERBOOKS: &[Column] = base_cols![
    col("last_update_id", UInt64),
    col("bids_count", UInt32),
    col("asks_count", UInt32),
    col("best_bid_price", Dec),
    col("best_ask_price", Dec),
    col("best_bid_quantity", Dec),
    col("best_ask_quantity", Dec),
    col("bids", Str),
    col("asks", Str),
];
const ORDERBOOKS_DDL: &[DdlCol] = base_ddl![
    d("last_update_id", UInt64),
    d("bids_count", UInt32),
    d("asks_count", UInt32),
    d("best_bid_price", Dec),
    d("best_ask_price", Dec),
    d("best_bid_quantity", Dec),
    d("best_ask_quantity", Dec),
    d("bids", Str),
    d("asks", Str),
];

const FUNDING_RATES: &[Column] = base_cols![
    col("funding_rate", Dec),
    col("funding_time", Dt),
    col("next_funding_time", Dt),
    col("mark_price", Dec),
    col("index_price", Dec),
];
const FUNDING_RATES_DDL: &[DdlCol] = base_ddl![
    d("funding_rate", Dec),
    d("funding_time", Dt),
    d("next_funding_time", Dt),
    d("mark_price", Dec),
    d("index_price", Dec),
];

const OPEN_INTERESTS: &[Column] =
    base_cols![col("open_interest", Dec), col("open_interest_value", Dec),];
const OPEN_INTERESTS_DDL: &[DdlCol] = base_ddl![
    d("open_interest", Dec),
    d("open_interest_value", Dec),
    server("count", UInt64, None),
];

const LIQUIDATIONS: &[Column] = base_cols![
    col("side", Lc),
    col("price", Dec),
    col("quantity", Dec),
    col("liquidation_time", Dt),
];
const LIQUIDATIONS_DDL: &[DdlCol] = base_ddl![
    d("side", Lc),
    d("price", Dec),
    d("quantity", Dec),
    d("liquidation_time", Dt),
];

const LSR_TOP: &[Column] = base_cols![
    col("long_position_ratio", Dec),
    col("short_position_ratio", Dec),
    col("period", Lc),
];
const LSR_TOP_DDL: &[DdlCol] = base_ddl![
    d("long_position_ratio", Dec),
    d("short_position_ratio", Dec),
    dd("period", Lc, "'5m'"),
];

const LSR_ALL: &[Column] = base_cols![
    col("long_account_ratio", Dec),
    col("short_account_ratio", Dec),
    col("period", Lc),
];
const LSR_ALL_DDL: &[DdlCol] = base_ddl![
    d("long_account_ratio", Dec),
    d("short_account_ratio", Dec),
    dd("period", Lc, "'5m'"),
];

const VOLATILITY: &[Column] = base_cols![col("index_value", Dec), col("underlying_asset", Lc)];
const VOLATILITY_DDL: &[DdlCol] = base_ddl![
    d("index_value", Dec),
    d("underlying_asset", Lc),
    server("maturity_date", Date, None),
];

const GAPS: &[Column] = base_cols![
    col("channel", Lc),
    col("reason", Lc),
    col("from_id", Str),
    col("to_id", Str),
    col("from_time", Dt),
    col("to_time", Dt),
    col("missing", Int64),
];
const GAPS_DDL: &[DdlCol] = base_ddl![
    d("channel", Lc),
    d("reason", Lc),
    d("from_id", Str),
    d("to_id", Str),
    d("from_time", Dt),
    d("to_time", Dt),
    d("missing", Int64),
];

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Trades,
        Table::Orderbooks,
        Table::FundingRates,
        Table::OpenInterests,
        Table::Liquidations,
        Table::LsrTopPositions,
        Table::LsrAllAccounts,
        Table::VolatilityIndices,
        Table::Gaps,
    ];
    pub const COUNT: usize = Self::ALL.len();

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// MarketPrism's table name (`gaps` is ours).
    pub fn default_name(self) -> &'static str {
        match self {
            Table::Trades => "trades",
            Table::Orderbooks => "orderbooks",
            Table::FundingRates => "funding_rates",
            Table::OpenInterests => "open_interests",
            Table::Liquidations => "liquidations",
            Table::LsrTopPositions => "lsr_top_positions",
            Table::LsrAllAccounts => "lsr_all_accounts",
            Table::VolatilityIndices => "volatility_indices",
            Table::Gaps => "gaps",
        }
    }

    /// The table a data type's records go to. `orderbook_delta` and
    /// `ticker` have none (MarketPrism stores neither).
    #[inline]
    pub fn for_data_type(dt: DataType) -> Option<Table> {
        Some(match dt {
            DataType::Trade => Table::Trades,
            DataType::OrderBook => Table::Orderbooks,
            DataType::FundingRate => Table::FundingRates,
            DataType::OpenInterest => Table::OpenInterests,
            DataType::Liquidation => Table::Liquidations,
            DataType::LsrTopPosition => Table::LsrTopPositions,
            DataType::LsrAllAccount => Table::LsrAllAccounts,
            DataType::VolatilityIndex => Table::VolatilityIndices,
            DataType::Gap => Table::Gaps,
            DataType::OrderBookDelta | DataType::Ticker => return None,
        })
    }

    /// The columns we send, in send order (every row of an INSERT has
    /// exactly these).
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Trades => TRADES,
            Table::Orderbooks => ORDERBOOKS,
            Table::FundingRates => FUNDING_RATES,
            Table::OpenInterests => OPEN_INTERESTS,
            Table::Liquidations => LIQUIDATIONS,
            Table::LsrTopPositions => LSR_TOP,
            Table::LsrAllAccounts => LSR_ALL,
            Table::VolatilityIndices => VOLATILITY,
            Table::Gaps => GAPS,
        }
    }

    /// Columns of the table we never send (the server fills them: its
    /// DEFAULT or the type's zero), in table order.
    pub fn server_columns(self) -> impl Iterator<Item = &'static str> {
        self.ddl_columns()
            .iter()
            .filter(|c| !c.sent)
            .map(|c| c.name)
    }

    fn ddl_columns(self) -> &'static [DdlCol] {
        match self {
            Table::Trades => TRADES_DDL,
            Table::Orderbooks => ORDERBOOKS_DDL,
            Table::FundingRates => FUNDING_RATES_DDL,
            Table::OpenInterests => OPEN_INTERESTS_DDL,
            Table::Liquidations => LIQUIDATIONS_DDL,
            Table::LsrTopPositions => LSR_TOP_DDL,
            Table::LsrAllAccounts => LSR_ALL_DDL,
            Table::VolatilityIndices => VOLATILITY_DDL,
            Table::Gaps => GAPS_DDL,
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Table::Trades => "timestamp, exchange, symbol, trade_id",
            Table::Orderbooks => "timestamp, exchange, symbol, last_update_id",
            Table::LsrTopPositions | Table::LsrAllAccounts => "timestamp, exchange, symbol, period",
            Table::Gaps => "timestamp, exchange, symbol, channel",
            _ => "timestamp, exchange, symbol",
        }
    }

    /// MarketPrism adds these by `ALTER TABLE … ADD INDEX` after creating
    /// the hot tables; inline they give the same table in one statement.
    fn indexes(self) -> &'static [&'static str] {
        match self {
            Table::Orderbooks => {
                &["idx_price_range (best_bid_price, best_ask_price) TYPE minmax GRANULARITY 4"]
            }
            Table::Trades => &[
                "idx_price_quantity (price, quantity) TYPE minmax GRANULARITY 4",
                "idx_trade_time (trade_time) TYPE minmax GRANULARITY 4",
            ],
            Table::FundingRates => &["idx_funding_rate (funding_rate) TYPE minmax GRANULARITY 4"],
            Table::OpenInterests => {
                &["idx_open_interest (open_interest) TYPE minmax GRANULARITY 4"]
            }
            Table::Liquidations => &["idx_liquidation_price (price) TYPE minmax GRANULARITY 4"],
            Table::LsrTopPositions => &[
                "idx_lsr_top_ratio (long_position_ratio, short_position_ratio) TYPE minmax GRANULARITY 4",
            ],
            Table::LsrAllAccounts => &[
                "idx_lsr_account_ratio (long_account_ratio, short_account_ratio) TYPE minmax GRANULARITY 4",
            ],
            Table::VolatilityIndices => {
                &["idx_volatility_value (index_value) TYPE minmax GRANULARITY 4"]
            }
            Table::Gaps => &[],
        }
    }

    /// `CREATE TABLE IF NOT EXISTS`: MarketPrism's table (TTL on the hot
    /// side, `ttl_days = Some(3)`; none on the cold side), plus
    /// `non_replicated_deduplication_window`, without which a plain
    /// MergeTree ignores `insert_deduplication_token` and a retried insert
    /// would duplicate its rows.
    pub fn ddl(
        self,
        db: &str,
        table_name: &str,
        ttl_days: Option<u32>,
        dedup_window: u64,
    ) -> String {
        let mut s = String::with_capacity(1536);
        s.push_str("CREATE TABLE IF NOT EXISTS ");
        push_ident(&mut s, db);
        s.push('.');
        push_ident(&mut s, table_name);
        s.push_str("\n(\n");
        for c in self.ddl_columns() {
            let _ = write!(s, "    {} {}", c.name, c.ty.sql());
            if let Some(def) = c.default {
                let _ = write!(s, " DEFAULT {def}");
            }
            let _ = writeln!(s, " CODEC({}),", c.ty.codec());
        }
        for ix in self.indexes() {
            let _ = writeln!(s, "    INDEX {ix},");
        }
        // The last definition takes no comma.
        s.truncate(s.len() - 2);
        s.push_str("\n)\nENGINE = MergeTree()\nPARTITION BY (toYYYYMM(timestamp), exchange)\n");
        let _ = writeln!(s, "ORDER BY ({})", self.order_by());
        if let Some(days) = ttl_days {
            let _ = writeln!(s, "TTL toDateTime(timestamp) + INTERVAL {days} DAY DELETE");
        }
        let _ = write!(
            s,
            "SETTINGS index_granularity = 8192, non_replicated_deduplication_window = {dedup_window}"
        );
        s
    }

    /// `INSERT INTO <name> (<sent columns>) FORMAT RowBinary` (the rows follow).
    pub fn insert_sql(self, table_name: &str) -> String {
        let mut s = String::with_capacity(256);
        s.push_str("INSERT INTO ");
        push_ident(&mut s, table_name);
        s.push_str(" (");
        for (i, c) in self.columns().iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(c.name);
        }
        s.push_str(") FORMAT RowBinary");
        s
    }

    /// `name Type, …` of the sent columns: a `file(…, 'RowBinary', s)` or
    /// `input(s)` structure.
    pub fn structure(self) -> String {
        let mut s = String::with_capacity(512);
        for (i, c) in self.columns().iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(c.name);
            s.push(' ');
            s.push_str(c.ty.sql());
        }
        s
    }
}

/// A database or table name as a backquoted identifier, so a configured
/// name can never change the statement.
fn push_ident(s: &mut String, name: &str) {
    s.push('`');
    for ch in name.chars() {
        if ch == '`' || ch == '\\' {
            s.push('\\');
        }
        s.push(ch);
    }
    s.push('`');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_columns_are_the_ddl_columns_the_server_does_not_fill() {
        for t in Table::ALL {
            let from_ddl: Vec<Column> = t
                .ddl_columns()
                .iter()
                .filter(|c| c.sent)
                .map(|c| col(c.name, c.ty))
                .collect();
            assert_eq!(t.columns(), &from_ddl[..], "{t:?}");
            assert_eq!(Table::ALL[t.index()], t);
            let last = t.ddl_columns().last().unwrap();
            assert_eq!((last.name, last.sent), ("created_at", false), "{t:?}");
        }
    }

    #[test]
    fn data_types_map_to_marketprism_tables() {
        let got: Vec<(&str, Option<&str>)> = DataType::ALL
            .iter()
            .map(|&dt| (dt.name(), Table::for_data_type(dt).map(Table::default_name)))
            .collect();
        assert_eq!(
            got,
            [
                ("trade", Some("trades")),
                ("orderbook", Some("orderbooks")),
                ("orderbook_delta", None),
                ("funding_rate", Some("funding_rates")),
                ("open_interest", Some("open_interests")),
                ("liquidation", Some("liquidations")),
                ("lsr_top_position", Some("lsr_top_positions")),
                ("lsr_all_account", Some("lsr_all_accounts")),
                ("volatility_index", Some("volatility_indices")),
                ("ticker", None),
                ("gap", Some("gaps")),
            ]
        );
    }

    #[test]
    fn trades_ddl_is_marketprisms() {
        assert_eq!(
            Table::Trades.ddl("marketprism_hot", "trades", Some(3), 1000),
            "CREATE TABLE IF NOT EXISTS `marketprism_hot`.`trades`\n(\n\
             \x20   timestamp DateTime64(3, 'UTC') CODEC(Delta, ZSTD),\n\
             \x20   exchange LowCardinality(String) CODEC(ZSTD),\n\
             \x20   market_type LowCardinality(String) CODEC(ZSTD),\n\
             \x20   symbol LowCardinality(String) CODEC(ZSTD),\n\
             \x20   trade_id String CODEC(ZSTD),\n\
             \x20   price Decimal64(8) CODEC(ZSTD),\n\
             \x20   quantity Decimal64(8) CODEC(ZSTD),\n\
             \x20   side LowCardinality(String) CODEC(ZSTD),\n\
             \x20   is_maker Bool DEFAULT false CODEC(ZSTD),\n\
             \x20   trade_time DateTime64(3, 'UTC') CODEC(Delta, ZSTD),\n\
             \x20   data_source LowCardinality(String) DEFAULT 'marketprism' CODEC(ZSTD),\n\
             \x20   created_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD),\n\
             \x20   INDEX idx_price_quantity (price, quantity) TYPE minmax GRANULARITY 4,\n\
             \x20   INDEX idx_trade_time (trade_time) TYPE minmax GRANULARITY 4\n\
             )\nENGINE = MergeTree()\nPARTITION BY (toYYYYMM(timestamp), exchange)\n\
             ORDER BY (timestamp, exchange, symbol, trade_id)\n\
             TTL toDateTime(timestamp) + INTERVAL 3 DAY DELETE\n\
             SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000"
        );
        // The cold side: no TTL; a name cannot break out of its quotes.
        let cold = Table::Gaps.ddl("cold", "g`x", None, 5);
        assert!(cold.starts_with("CREATE TABLE IF NOT EXISTS `cold`.`g\\`x`\n"));
        assert!(!cold.contains("TTL"));
        assert!(!cold.contains("INDEX"));
        assert!(cold.ends_with("non_replicated_deduplication_window = 5"));
    }

    #[test]
    fn insert_and_structure_list_the_sent_columns() {
        assert_eq!(
            Table::Liquidations.insert_sql("liq"),
            "INSERT INTO `liq` (timestamp, exchange, market_type, symbol, side, price, quantity, \
             liquidation_time, data_source) FORMAT RowBinary"
        );
        assert_eq!(
            Table::VolatilityIndices.structure(),
            "timestamp DateTime64(3, 'UTC'), exchange LowCardinality(String), \
             market_type LowCardinality(String), symbol LowCardinality(String), \
             index_value Decimal64(8), underlying_asset LowCardinality(String), \
             data_source LowCardinality(String)"
        );
    }
}

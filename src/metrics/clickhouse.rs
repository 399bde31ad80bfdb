//! The ClickHouse sink's series: its per-core counters ([`ClickHouseStats`],
//! written by that core's sink and sender), encoded only when some core
//! runs the sink.

use super::family::{encode_all, Family, Shape};
use super::{
    CoreStats, Exporter, Fmt, LocalCounter, LocalGauge, LocalHistogram, LATENCY_BOUNDS_NS,
};
use prometheus_client::encoding::DescriptorEncoder;

/// The `table` label: MarketPrism's table names, in the sink's table order
/// (`sink::clickhouse::schema::Table`; a unit test there holds them equal).
pub const TABLES: [&str; 9] = [
    "trades",
    "orderbooks",
    "funding_rates",
    "open_interests",
    "liquidations",
    "lsr_top_positions",
    "lsr_all_accounts",
    "volatility_indices",
    "gaps",
];

/// The `kind` label of errors.
pub const ERROR_KINDS: [&str; 3] = ["transient", "rejected", "config"];

/// Counters of one core's ClickHouse sink (single writer: that core).
#[derive(Debug)]
pub struct ClickHouseStats {
    pub rows: [LocalCounter; 9],
    pub bytes: [LocalCounter; 9],
    pub inserts: [LocalCounter; 9],
    /// Rows refused: by our own checks before sending (a value the column
    /// cannot hold) or by the server (found by splitting the block).
    pub rejected_rows: [LocalCounter; 9],
    /// Failed INSERT attempts by [`ERROR_KINDS`].
    pub errors: [LocalCounter; 3],
    /// Blocks the server already had (a resend after a lost answer or a
    /// crash): acknowledged, nothing written.
    pub duplicate_blocks: LocalCounter,
    /// Blocks read back from the journal (a previous run's, or sealed while
    /// memory was full) instead of sent from memory.
    pub read_back: LocalCounter,
    /// Records of a type with no table (orderbook_delta, ticker).
    pub no_table: LocalCounter,
    /// Records dropped because the journal's disk budget was used up.
    pub dropped: LocalCounter,
    /// Blocks sealed and journaled, not yet acknowledged.
    pub journal_blocks: LocalGauge,
    pub journal_bytes: LocalGauge,
    /// Rows encoded into blocks not yet sealed.
    pub building_rows: LocalGauge,
    pub building_bytes: LocalGauge,
    /// 1 while the last INSERT (or start-up check) succeeded.
    pub up: LocalGauge,
    /// INSERT sent → answered OK, ns.
    pub insert_latency: LocalHistogram,
}

impl Default for ClickHouseStats {
    fn default() -> Self {
        ClickHouseStats {
            rows: Default::default(),
            bytes: Default::default(),
            inserts: Default::default(),
            rejected_rows: Default::default(),
            errors: Default::default(),
            duplicate_blocks: LocalCounter::default(),
            read_back: LocalCounter::default(),
            no_table: LocalCounter::default(),
            dropped: LocalCounter::default(),
            journal_blocks: LocalGauge::default(),
            journal_bytes: LocalGauge::default(),
            building_rows: LocalGauge::default(),
            building_bytes: LocalGauge::default(),
            up: LocalGauge::default(),
            insert_latency: LocalHistogram::new(LATENCY_BOUNDS_NS, 1e9),
        }
    }
}

const fn per_table(
    name: &'static str,
    help: &'static str,
    read: fn(&CoreStats, usize) -> u64,
) -> Family {
    Family {
        name,
        help,
        shape: Shape::CoreBy {
            label: "table",
            count: TABLES.len(),
            value: |i| TABLES[i],
            read,
        },
    }
}

fn ch(c: &CoreStats) -> Option<&ClickHouseStats> {
    c.clickhouse.get().map(|s| &**s)
}

/// `marketprism_clickhouse_*` (0 on a core without the sink).
const CLICKHOUSE: &[Family] = &[
    per_table(
        "clickhouse_rows_inserted",
        "Rows ClickHouse wrote, per table (as its X-ClickHouse-Summary says: a resent block it already had adds none)",
        |c, i| ch(c).map_or(0, |s| s.rows[i].get()),
    ),
    per_table(
        "clickhouse_bytes_inserted",
        "RowBinary bytes ClickHouse acknowledged, per table",
        |c, i| ch(c).map_or(0, |s| s.bytes[i].get()),
    ),
    per_table(
        "clickhouse_inserts",
        "INSERTs ClickHouse acknowledged, per table",
        |c, i| ch(c).map_or(0, |s| s.inserts[i].get()),
    ),
    per_table(
        "clickhouse_rejected_rows",
        "Rows refused (a value the column cannot hold, or refused by the server), per table",
        |c, i| ch(c).map_or(0, |s| s.rejected_rows[i].get()),
    ),
    Family {
        name: "clickhouse_errors",
        help: "Failed INSERT attempts: transient (retried), rejected (block split), config (retried slowly)",
        shape: Shape::CoreBy {
            label: "kind",
            count: ERROR_KINDS.len(),
            value: |i| ERROR_KINDS[i],
            read: |c, i| ch(c).map_or(0, |s| s.errors[i].get()),
        },
    },
    Family::core_counter(
        "clickhouse_duplicate_blocks",
        "Blocks ClickHouse already had (resent after a lost answer or a restart): nothing written",
        |c| ch(c).map_or(0, |s| s.duplicate_blocks.get()),
    ),
    Family::core_counter(
        "clickhouse_blocks_read_back",
        "Blocks read back from the journal on disk (left by the last run, or sealed while memory was full)",
        |c| ch(c).map_or(0, |s| s.read_back.get()),
    ),
    Family::core_counter(
        "clickhouse_records_without_table",
        "Records of a type ClickHouse has no table for (orderbook_delta, ticker): not written there",
        |c| ch(c).map_or(0, |s| s.no_table.get()),
    ),
    Family::core_counter(
        "clickhouse_records_dropped",
        "Records dropped because the core's ClickHouse journal reached its disk budget (gap rows follow)",
        |c| ch(c).map_or(0, |s| s.dropped.get()),
    ),
    Family::core_gauge(
        "clickhouse_journal_blocks",
        "Blocks on disk waiting for ClickHouse's acknowledgement",
        |c| ch(c).map_or(0, |s| s.journal_blocks.get()),
    ),
    Family::core_gauge(
        "clickhouse_journal_bytes",
        "Bytes on disk waiting for ClickHouse's acknowledgement",
        |c| ch(c).map_or(0, |s| s.journal_bytes.get()),
    ),
    Family::core_gauge(
        "clickhouse_building_rows",
        "Rows in blocks being built (memory)",
        |c| ch(c).map_or(0, |s| s.building_rows.get()),
    ),
    Family::core_gauge(
        "clickhouse_building_bytes",
        "Bytes in blocks being built (memory)",
        |c| ch(c).map_or(0, |s| s.building_bytes.get()),
    ),
    Family::core_gauge(
        "clickhouse_up",
        "1 while the core's last ClickHouse request succeeded",
        |c| ch(c).map_or(0, |s| s.up.get()),
    ),
    Family::core_histogram(
        "clickhouse_insert_seconds",
        "INSERT sent to acknowledged",
        |c| ch(c).map(|s| &s.insert_latency),
    ),
];

pub(super) fn encode(ex: &Exporter, e: &mut DescriptorEncoder) -> Fmt {
    if ex.cores.iter().all(|c| c.clickhouse.get().is_none()) {
        return Ok(());
    }
    encode_all(CLICKHOUSE, ex, e)
}

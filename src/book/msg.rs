//! What a venue parser hands the book engine: one book message (a snapshot or
//! an incremental update) in venue-neutral form. The parser fills a reused
//! `BookMsg` (its vectors keep their capacity), so steady state allocates
//! nothing; the book engine applies it by the venue's [`SyncRule`].

use super::order_book::OrderBook;
use crate::batch::Level;

/// A checksum a venue sends with its book updates, computed over the local
/// book after applying (the venue module supplies it: OKX's CRC32).
pub type Checksum = fn(&OrderBook) -> i32;

/// A documented book-sync procedure, named for what it does; a venue picks
/// one in `Protocol::book_rule`.
#[derive(Debug, Clone, Copy)]
pub enum SyncRule {
    /// Buffer diffs, REST snapshot, first diff bridges `first <= snapshot+1 <= last`,
    /// then `first == previous last + 1` (Binance spot).
    RestSnapshotConsecutive,
    /// REST snapshot, drop `last < snapshot`, first `first <= snapshot <= last`,
    /// then `prev == previous last` (Binance USDⓈ-M).
    RestSnapshotLinked,
    /// WS snapshot, then `prev == previous last`; a keep-alive repeats it
    /// (`prev == last`), a reset goes back (`last < prev`). With a checksum,
    /// verified after every message, updates without ids are applied and
    /// left to the checksum (OKX: CRC32 of the top 25 levels; Deribit: none).
    WsSnapshotLinked { checksum: Option<Checksum> },
    /// WS snapshot resets the book (also mid-stream, also `last == 1`, a
    /// restart); updates carry absolute sizes and increasing ids, size 0
    /// deletes (Bybit).
    WsSnapshotIncreasing,
}

impl SyncRule {
    /// Whether the book starts from a REST snapshot (diffs buffered meanwhile)
    /// rather than from one the stream sends.
    pub fn rest_snapshot(self) -> bool {
        matches!(
            self,
            SyncRule::RestSnapshotConsecutive | SyncRule::RestSnapshotLinked
        )
    }
}

/// One book message of one symbol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookMsg {
    /// The venue's instrument name, e.g. `BTCUSDT`, `BTC-USDT-SWAP`.
    pub raw_symbol: String,
    /// A full book (replaces the local one) rather than an update.
    pub snapshot: bool,
    /// First update id covered (Binance `U`; others: same as `last_id`).
    pub first_id: u64,
    /// Update id after applying (Binance `u` / `lastUpdateId`, OKX `seqId`,
    /// Bybit `u`, Deribit `change_id`).
    pub last_id: u64,
    /// The id this update follows (Binance USDⓈ-M `pu`, OKX `prevSeqId`
    /// (`-1` on snapshots), Deribit `prev_change_id`); `None` if not sent.
    pub prev_id: Option<i64>,
    /// The venue's checksum of the book after applying (OKX CRC32 of the top
    /// 25 levels); `None` when absent or 0.
    pub checksum: Option<i32>,
    /// Absolute quantities; 0 removes the level. Any order.
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    /// Exchange time of the message, ms (receive time if none).
    pub ts_ms: u64,
    /// From a replacement connection still overlapping the one it replaces
    /// (set by the pipeline, not the parser): it may only extend a synced
    /// book, never restart or resync it.
    pub shadow: bool,
}

impl BookMsg {
    /// Empties it for reuse, keeping the allocations.
    pub fn clear(&mut self) {
        self.raw_symbol.clear();
        self.snapshot = false;
        self.shadow = false;
        self.first_id = 0;
        self.last_id = 0;
        self.prev_id = None;
        self.checksum = None;
        self.bids.clear();
        self.asks.clear();
        self.ts_ms = 0;
    }
}

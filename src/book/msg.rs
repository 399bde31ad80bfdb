//! What a venue parser hands the book engine: one book message (a snapshot or
//! an incremental update) in venue-neutral form. The parser fills a reused
//! `BookMsg` (its vectors keep their capacity), so steady state allocates
//! nothing; the book engine applies it by the venue's [`SyncRule`].

use crate::batch::Level;

/// Each venue's documented book-sync procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRule {
    /// Buffer diffs, REST snapshot, first diff bridges `U <= lastUpdateId+1 <= u`,
    /// then `U == prev u + 1`.
    BinanceSpot,
    /// REST snapshot, drop `u < lastUpdateId`, first `U <= lastUpdateId <= u`,
    /// then `pu == prev u`.
    BinanceFutures,
    /// WS snapshot (`prevSeqId = -1`), then `prevSeqId == prev seqId`; keep-alive
    /// `prevSeqId == seqId`; reset when `seqId < prevSeqId`; CRC32 of the top 25
    /// levels when `checksum != 0`.
    Okx,
    /// WS snapshot resets the book (also mid-stream, also `u == 1`); deltas are
    /// absolute, size 0 deletes.
    Bybit,
    /// WS snapshot, then `prev_change_id == prev change_id`.
    Deribit,
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
    /// OKX CRC32 of the top 25 levels after applying; `None` when absent or 0.
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

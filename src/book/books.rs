//! Placeholder of the per-core book set (being written): the API the engine uses.

use crate::batch::Batch;
use crate::book::BookMsg;
use crate::model::VenueId;

/// Publishing settings (per venue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookConfig {
    /// Levels per side in `orderbook` records (MarketPrism: 400).
    pub depth: usize,
    /// At most one `orderbook` record per symbol per interval (MarketPrism: 100 ms).
    pub publish_interval_ns: u64,
    /// Also publish every applied update as an `orderbook_delta` record.
    pub deltas: bool,
}

/// What the engine must do for a book after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookAction {
    None,
    /// Fetch a REST snapshot of this symbol and hand it to [`Books::on_rest_snapshot`].
    FetchSnapshot,
    /// Unsubscribe and resubscribe this symbol's book channel (WS-snapshot venues).
    Resubscribe,
}

/// Counters of one venue's books on this core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookStats {
    pub updates_applied: u64,
    pub snapshots_applied: u64,
    pub resyncs: u64,
    pub gaps: u64,
    pub checksum_failures: u64,
    pub crossed: u64,
    pub stale_dropped: u64,
    pub buffered: u64,
    pub published: u64,
    pub unknown_symbol: u64,
}

#[derive(Default)]
pub struct Books {
    stats: [BookStats; VenueId::COUNT],
}

impl Books {
    pub fn new(_venues: &[(VenueId, BookConfig)]) -> Books {
        Books::default()
    }

    pub fn register(&mut self, _venue: VenueId, _raw_symbol: &str, _symbol: &str) {}

    pub fn on_ws(
        &mut self,
        _venue: VenueId,
        _msg: &BookMsg,
        _receive_ns: u64,
        _batch: &mut Batch,
    ) -> BookAction {
        BookAction::None
    }

    pub fn on_rest_snapshot(
        &mut self,
        _venue: VenueId,
        _msg: &BookMsg,
        _receive_ns: u64,
        _batch: &mut Batch,
    ) -> BookAction {
        BookAction::None
    }

    pub fn on_snapshot_failed(&mut self, _venue: VenueId, _raw_symbol: &str) {}

    pub fn on_disconnect(&mut self, _venue: VenueId, _raw_symbol: &str) {}

    pub fn publish_due(&mut self, _now_ns: u64, _batch: &mut Batch) -> Option<u64> {
        None
    }

    pub fn stats(&self, venue: VenueId) -> &BookStats {
        &self.stats[venue.index()]
    }
}

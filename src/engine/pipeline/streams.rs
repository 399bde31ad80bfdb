//! The continuity side of the pipeline: which connections are live, when
//! each stream was last seen, and the reconnect gaps found on the way, which
//! the shard backfills or reports as `gap` records.

use super::Pipeline;
use crate::engine::continuity::StreamGap;
use crate::model::{DataType, VenueId};

impl Pipeline {
    /// A connection (by epoch) is up / went down: continuity treats records
    /// of a live connection as overlap and of a dead one as a reconnect.
    pub fn conn_up(&mut self, epoch: u32) {
        self.continuity.conn_up(epoch);
    }

    pub fn conn_down(&mut self, epoch: u32) {
        self.continuity.conn_down(epoch);
    }

    /// A rotation replaced `old` by `new`: records of `old` compare with
    /// those of `new` as overlap, not as a reconnect.
    pub fn retire(&mut self, old: u32, new: u32) {
        self.continuity.retire(old, new);
    }

    /// When a replacement connection last delivered something ahead of the
    /// connection it replaces (ns); the rotation waits for this to stop.
    pub fn last_deferred_ns(&self) -> u64 {
        self.continuity.last_deferred_ns
    }

    /// Receive time (ns) of the last message of a stream on any connection
    /// of this core (books: any WebSocket book message); 0: none yet.
    pub fn stream_last_seen_ns(&self, venue: VenueId, dt: DataType, raw_symbol: &str) -> u64 {
        match dt {
            DataType::OrderBook | DataType::OrderBookDelta => {
                self.books.last_ws_ns(venue, raw_symbol)
            }
            _ => self.continuity.last_seen_ns(venue, dt, raw_symbol),
        }
    }

    /// A stream stopped on a live connection and is subscribed again: what it
    /// missed is measured at its next record (see [`crate::engine::continuity::Continuity::stream_lost`]).
    /// Books need nothing: their sync rules see the jump or the new snapshot.
    pub fn stream_lost(&mut self, venue: VenueId, dt: DataType, raw_symbol: &str) {
        self.continuity.stream_lost(venue, dt, raw_symbol);
    }

    /// A takeover: trades up to `seq` are already stored (see
    /// [`crate::engine::continuity::Continuity::seed`]).
    pub fn seed_trades(&mut self, venue: VenueId, raw_symbol: &str, seq: u64, ts_ms: u64) {
        self.continuity
            .seed(venue, DataType::Trade, raw_symbol, seq, ts_ms);
    }

    /// Reconnect gaps found since the last call.
    pub fn take_stream_gaps(&mut self) -> Vec<StreamGap> {
        std::mem::take(&mut self.stream_gaps)
    }

    /// Emits a `gap` record: `g`'s range (or `missing` of it) was not recovered.
    pub fn push_gap(&mut self, g: &StreamGap, reason: &'static str, now_ns: u64) {
        if self.push_gap_record(g, reason, now_ns) {
            self.stats.venue(g.venue).parsed[DataType::Gap.index()].inc();
        }
    }

    /// The record of [`Pipeline::push_gap`], not counted as parsed (frame
    /// handlers count every record they add).
    pub(super) fn push_gap_record(
        &mut self,
        g: &StreamGap,
        reason: &'static str,
        now_ns: u64,
    ) -> bool {
        let start = self.batch.len();
        let _ = self.batch.push_with::<()>(now_ns, |bump| {
            Ok(crate::batch::Record::Gap(crate::batch::Gap {
                origin: crate::batch::Origin {
                    venue: g.venue,
                    symbol: bump.alloc_str(&g.symbol),
                    raw_symbol: bump.alloc_str(&g.raw_symbol),
                    ts_ms: now_ns / 1_000_000,
                    receive_ts_ns: now_ns,
                },
                stream: g.data_type,
                reason,
                from_id: g.range.map(|r| r.0),
                to_id: g.range.map(|r| r.1),
                from_ts_ms: g.from_ts_ms,
                to_ts_ms: g.to_ts_ms,
                missing: g.range.map(|(a, b)| b + 1 - a),
            }))
        });
        let pushed = self.batch.len() > start;
        if pushed {
            self.stats.venue(g.venue).gap_records.inc();
            if let Some(n) = self.gap_log.check(now_ns) {
                log::warn!(
                    "gap: {} {} {} {reason}: {}, {}..{} ms not recovered ({n} more suppressed)",
                    g.venue,
                    g.data_type,
                    g.raw_symbol,
                    g.ids(),
                    g.from_ts_ms,
                    g.to_ts_ms
                );
            }
        }
        pushed
    }
}

//! What a core's membership task ([`crate::cluster::run`]) uses of its shard:
//! the pipeline (seeding continuity, names, liveness) and the planned gauges.

use super::session::Core;
use super::shard::Shard;
use crate::cluster::run::Host;
use crate::model::{DataType, VenueId};

impl Host for Shard {
    fn seed_trades(&self, venue: VenueId, raw_symbol: &str, seq: u64, ts_ms: u64) {
        self.pipeline()
            .borrow_mut()
            .seed_trades(venue, raw_symbol, seq, ts_ms);
    }

    fn normalized(&self, venue: VenueId, raw_symbol: &str) -> String {
        let p = self.pipeline().borrow();
        p.instruments(venue)
            .normalize(raw_symbol)
            .unwrap_or(raw_symbol)
            .to_string()
    }

    fn last_seen_ns(&self, venue: VenueId, dt: DataType, raw_symbol: &str) -> u64 {
        self.pipeline()
            .borrow()
            .stream_last_seen_ns(venue, dt, raw_symbol)
    }

    fn planned(&self, venue: VenueId, conns: i64, streams: i64) {
        let vs = self.stats().venue(venue);
        vs.connections_planned.add(conns);
        vs.streams_planned.add(streams);
    }
}

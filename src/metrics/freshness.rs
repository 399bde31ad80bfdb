//! Health per data type: each core's streams (venue × data type) silent
//! past their threshold, for `/health`.
//!
//! The pipeline stores the receive time of each venue × data type's last
//! record ([`super::VenueStats::last_record_ns`], one relaxed store per
//! record); the thresholds are set once at start ([`expect_streams`]), from
//! the plan (`config::freshness` says how long each stream may be silent).

use super::{CoreStats, Exporter};
use crate::model::{DataType, VenueId};
use std::time::Duration;

/// What a core's plan tells the health check: the streams it carries.
/// `config` implements it for its core plan, so metrics need no config.
pub trait CoreStreams {
    /// (venue, data type) of every stream the core carries.
    fn carried(&self) -> Vec<(VenueId, DataType)>;
}

/// What a venue's plan tells the exporter and the health check.
pub trait VenueStreams {
    fn venue(&self) -> VenueId;
    /// Whether the venue offers `dt` at all.
    fn offers(&self, dt: DataType) -> bool;
    /// Silence after which `/health` reports the venue's stream of `dt`
    /// (`None`: never).
    fn silent_after(&self, dt: DataType) -> Option<Duration>;
}

/// Registers in `stats` what the venues offer and the threshold of every
/// stream `core` carries. Called once per core at start.
pub fn expect_streams<C: CoreStreams + ?Sized, V: VenueStreams>(
    stats: &CoreStats,
    core: &C,
    venues: &[V],
) {
    for v in venues {
        let offered = DataType::ALL.into_iter().filter(|&d| v.offers(d));
        stats.venue(v.venue()).offered.set(offered);
    }
    for (id, dt) in core.carried() {
        let Some(v) = venues.iter().find(|v| v.venue() == id) else {
            continue;
        };
        if let Some(d) = v.silent_after(dt) {
            stats.venue(id).silent_after_ms[dt.index()].set(d.as_millis() as i64);
        }
    }
}

/// One core's stream silent past its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silent {
    pub venue: VenueId,
    pub data_type: DataType,
    pub core: usize,
    /// Since the last record, or since start when none came.
    pub silent_ms: u64,
    pub threshold_ms: u64,
}

/// Streams silent at `now_ns` (Unix ns), by core, venue, data type.
/// `start_ns`: when the collector started (a stream that never sent a
/// record has been silent since then).
pub fn silent_streams(ex: &Exporter, start_ns: u64, now_ns: u64) -> Vec<Silent> {
    let mut out = Vec::new();
    for c in ex.cores.iter() {
        for &v in &ex.venues {
            let vs = c.venue(v);
            // Nothing of the venue runs on this core now (cluster
            // membership: its symbols are collected elsewhere).
            if vs.streams_planned.get() <= 0 {
                continue;
            }
            for dt in DataType::ALL {
                let threshold_ms = vs.silent_after_ms[dt.index()].get().max(0) as u64;
                if threshold_ms == 0 {
                    continue;
                }
                let last = (vs.last_record_ns[dt.index()].get().max(0) as u64).max(start_ns);
                let silent_ms = now_ns.saturating_sub(last) / 1_000_000;
                if silent_ms > threshold_ms {
                    out.push(Silent {
                        venue: v,
                        data_type: dt,
                        core: c.shard,
                        silent_ms,
                        threshold_ms,
                    });
                }
            }
        }
    }
    out
}

//! Health per data type: each core's streams (venue × data type) silent
//! past their threshold, for `/health`.
//!
//! The pipeline stores the receive time of each venue × data type's last
//! record ([`super::VenueStats::last_record_ns`], one relaxed store per
//! record); the thresholds are set once at start ([`expect_streams`]).

use super::{CoreStats, Exporter};
use crate::config::plan::{CorePlan, VenuePlan};
use crate::model::{DataType, VenueId};
use crate::venue::{self, Source};
use std::time::Duration;

/// Trades, deltas, tickers, volatility indices of the configured symbols together: a core
/// silent this long on all of them has lost the stream.
pub const PUSHED_SILENT_AFTER: Duration = Duration::from_secs(120);
/// Liquidations are events, hours apart on a quiet symbol (MarketPrism's 1 h);
/// funding and open interest pushed without a known cadence come when they
/// change (Bybit's ticker deltas), which may be rare too.
pub const EVENT_SILENT_AFTER: Duration = Duration::from_secs(3600);
/// Order books: this plus three publish intervals.
pub const BOOK_SILENT_AFTER: Duration = Duration::from_secs(60);
/// Polled types: three poll intervals plus this.
pub const POLL_SLACK: Duration = Duration::from_secs(30);

/// Silence after which `/health` reports `v`'s stream of `dt`: its
/// `stream_stale_after_ms` (configured, or derived from the venue's push
/// cadence) where set, else by kind of data. `None` for `gap`.
pub fn silent_after(v: &VenuePlan, dt: DataType) -> Option<Duration> {
    if dt == DataType::Gap {
        return None;
    }
    if let Source::Poll { .. } = venue::protocol(v.id).source(dt) {
        return Some(v.poll_every[dt.index()] * 3 + POLL_SLACK);
    }
    if let Some(d) = v.stream_stale_after[dt.index()] {
        return Some(d);
    }
    Some(match dt {
        DataType::OrderBook => BOOK_SILENT_AFTER + v.book_publish_interval * 3,
        DataType::Liquidation | DataType::FundingRate | DataType::OpenInterest => {
            EVENT_SILENT_AFTER
        }
        _ => PUSHED_SILENT_AFTER,
    })
}

/// Records in `stats` the threshold of every stream `core` carries.
pub fn expect_streams(stats: &CoreStats, core: &CorePlan, venues: &[VenuePlan]) {
    let carried = core
        .connections
        .iter()
        .flat_map(|c| c.streams.iter().map(move |s| (c.venue, s.data_type)))
        .chain(core.polls.iter().map(|p| (p.venue, p.data_type)));
    for (id, dt) in carried {
        let Some(v) = venues.iter().find(|v| v.id == id) else {
            continue;
        };
        if let Some(d) = silent_after(v, dt) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::plan::Plan;

    fn plan(venue: &str) -> Plan {
        let text =
            format!("[engine]\ncores=[0]\n[sink]\nkind=[\"file\"]\npath=\"/tmp/x\"\n{venue}");
        crate::config::load_str(&text).unwrap()
    }

    #[test]
    fn thresholds_by_kind_of_data() {
        let p = plan(
            "[exchanges.binance_derivatives]\nsymbols=[\"BTCUSDT\"]\n\
             data_types=[\"trade\",\"orderbook\",\"funding_rate\",\"open_interest\",\"liquidation\",\"lsr_top_position\"]\n\
             book_publish_interval_ms=1000\npoll_interval_ms={open_interest=60000}\n\
             stream_stale_after_ms={trade=45000}\n",
        );
        let v = &p.venues[0];
        let s = |dt| silent_after(v, dt).map(|d| d.as_millis());
        assert_eq!(s(DataType::Trade), Some(45_000), "configured");
        assert_eq!(s(DataType::OrderBook), Some(63_000));
        assert_eq!(
            s(DataType::FundingRate),
            Some(33_000),
            "1 s cadence × 3 + 30 s"
        );
        assert_eq!(s(DataType::OpenInterest), Some(210_000));
        assert_eq!(s(DataType::Liquidation), Some(3_600_000));
        assert_eq!(s(DataType::Gap), None);
        let b = plan(
            "[exchanges.bybit_linear]\nsymbols=[\"BTCUSDT\"]\n\
             data_types=[\"funding_rate\",\"open_interest\",\"ticker\"]\n",
        );
        let s = |dt| silent_after(&b.venues[0], dt).map(|d| d.as_millis());
        assert_eq!(s(DataType::FundingRate), Some(3_600_000), "sent on change");
        assert_eq!(s(DataType::OpenInterest), Some(3_600_000));
        assert_eq!(s(DataType::Ticker), Some(120_000));
        let stats = CoreStats::new(0, 0);
        expect_streams(&stats, &p.cores[0], &p.venues);
        let after = |dt: DataType| {
            stats.venue(VenueId::BinanceDerivatives).silent_after_ms[dt.index()].get()
        };
        assert_eq!(after(DataType::Trade), 45_000);
        assert_eq!(after(DataType::OpenInterest), 210_000);
        assert_eq!(after(DataType::LsrTopPosition), 10_000 * 3 + 30_000);
        assert_eq!(after(DataType::Ticker), 0, "not configured");
    }
}

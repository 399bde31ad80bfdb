//! How long each planned stream may be silent before `/health` reports it,
//! and the plan's side of [`crate::metrics::freshness::expect_streams`].

use super::plan::{CorePlan, VenuePlan};
use crate::metrics::freshness::{CoreStreams, VenueStreams};
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

impl CoreStreams for CorePlan {
    fn carried(&self) -> Vec<(VenueId, DataType)> {
        self.connections
            .iter()
            .flat_map(|c| c.streams.iter().map(move |s| (c.venue, s.data_type)))
            .chain(self.polls.iter().map(|p| (p.venue, p.data_type)))
            .collect()
    }
}

impl VenueStreams for VenuePlan {
    fn venue(&self) -> VenueId {
        self.id
    }

    fn offers(&self, dt: DataType) -> bool {
        venue::supports(self.id, dt)
    }

    fn silent_after(&self, dt: DataType) -> Option<Duration> {
        silent_after(self, dt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::plan::Plan;
    use crate::metrics::freshness::expect_streams;
    use crate::metrics::CoreStats;

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
        let offered = &stats.venue(VenueId::BinanceDerivatives).offered;
        for dt in DataType::ALL {
            assert_eq!(
                offered.contains(dt),
                venue::supports(VenueId::BinanceDerivatives, dt)
            );
        }
    }
}

//! Binance spot: endpoints, documented limits and the [`Protocol`] glue.
//! Frames are parsed in [`super::wire`], REST answers in [`super::rest`].
//!
//! | data type | stream / request |
//! |---|---|
//! | `trade` | `<sym>@trade` |
//! | `orderbook`, `orderbook_delta` | `<sym>@depth@100ms` + `GET /api/v3/depth?symbol=&limit=` snapshots |
//! | `ticker` | `<sym>@bookTicker` (no event time: stamped with the receive time) |

use crate::batch::Batch;
use crate::book::{BookMsg, SyncRule};
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, ErrorShape, FrameOutcome, InstrumentMap, Malformed, ParseCtx, Protocol, RestLimit,
    RestRequest, Source,
};
use std::time::Duration;
use url::Url;

/// Production market-data WebSocket base.
pub const WS_URL: &str = "wss://stream.binance.com:9443";
/// Production REST base.
pub const REST_URL: &str = "https://api.binance.com";
/// Instrument list (weight 20).
pub const EXCHANGE_INFO_PATH: &str = "/api/v3/exchangeInfo";
/// "A single connection can listen to a maximum of 1024 streams."
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;
/// Book snapshot; `limit` 1..=5000.
pub const DEPTH_PATH: &str = "/api/v3/depth";
pub const MAX_DEPTH_LIMIT: usize = 5000;

/// `GET /api/v3/depth` weight by `limit`: 1–100 → 5, 101–500 → 25,
/// 501–1000 → 50, 1001–5000 → 250.
pub fn depth_weight(limit: usize) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

pub struct BinanceSpot;
pub static SPOT: BinanceSpot = BinanceSpot;

impl Protocol for BinanceSpot {
    fn trade_id_is_seq(&self) -> bool {
        true
    }
    fn id(&self) -> VenueId {
        VenueId::BinanceSpot
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            ws_url: WS_URL,
            rest_url: REST_URL,
        }
    }

    fn source(&self, dt: DataType) -> Source {
        match dt {
            DataType::Trade | DataType::OrderBook | DataType::OrderBookDelta | DataType::Ticker => {
                Source::Ws { route: "" }
            }
            _ => Source::Unsupported,
        }
    }

    /// "A single connection is only valid for 24 hours."
    fn connection_lifetime(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(24 * 3600))
    }

    /// "300 connections per attempt every 5 minutes per IP."
    fn connection_rate_limit(&self) -> Option<(u32, std::time::Duration)> {
        Some((300, std::time::Duration::from_secs(300)))
    }

    fn max_streams_per_connection(&self) -> usize {
        MAX_STREAMS_PER_CONNECTION
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        super::stream_name(symbol, dt)
    }

    fn connection_url(&self, base: &Url, route: &str, channels: &[String]) -> Url {
        super::combined_stream_url(base, route, channels)
    }

    fn resubscribe_frames(&self, channels: &[String]) -> Vec<String> {
        super::resubscribe_frames(channels)
    }

    fn trade_history_request(&self, raw_symbol: &str, from: u64, to: u64) -> Option<RestRequest> {
        Some(super::history::spot_request(raw_symbol, from, to))
    }

    fn parse_trade_history(
        &self,
        inst: &crate::venue::Instrument,
        body: &[u8],
        range: (u64, u64),
        receive_ns: u64,
        batch: &mut Batch,
    ) -> Result<Option<(u64, u64)>, crate::venue::Malformed> {
        let items = super::history::parse_spot(body)?;
        crate::venue::history::push(self.id(), inst, items, range, receive_ns, batch)
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::RestSnapshotConsecutive
    }

    fn instruments_request(&self, cursor: Option<&str>) -> Option<RestRequest> {
        cursor.is_none().then(|| RestRequest {
            path: EXCHANGE_INFO_PATH.to_string(),
            weight: 20,
        })
    }

    fn parse_instruments(
        &self,
        body: &[u8],
        map: &mut InstrumentMap,
    ) -> Result<Option<String>, String> {
        super::instruments::parse_exchange_info(body, map).map(|()| None)
    }

    fn book_snapshot_request(&self, raw_symbol: &str, depth: usize) -> Option<RestRequest> {
        let limit = depth.clamp(1, MAX_DEPTH_LIMIT);
        Some(RestRequest {
            path: format!("{DEPTH_PATH}?symbol={raw_symbol}&limit={limit}"),
            weight: depth_weight(limit),
        })
    }

    fn parse_book_snapshot(
        &self,
        raw_symbol: &str,
        body: &[u8],
        receive_ns: u64,
        msg: &mut BookMsg,
    ) -> Result<(), Malformed> {
        super::rest::parse_depth_snapshot(raw_symbol, body, receive_ns, msg)
    }

    /// `REQUEST_WEIGHT` 6000 per minute per IP.
    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 6000,
            window: Duration::from_secs(60),
        }
    }

    fn rest_error_shape(&self) -> ErrorShape {
        super::rest::ERROR_SHAPE
    }

    fn on_text(
        &self,
        text: &str,
        receive_ns: u64,
        cx: &mut ParseCtx<'_>,
        batch: &mut Batch,
    ) -> FrameOutcome {
        super::wire::on_frame(
            text,
            receive_ns,
            VenueId::BinanceSpot,
            cx.instruments,
            cx.book,
            batch,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_sources() {
        let p = &SPOT;
        assert_eq!(p.channel("BTCUSDT", DataType::Trade), "btcusdt@trade");
        assert_eq!(
            p.channel("BTCUSDT", DataType::OrderBook),
            "btcusdt@depth@100ms"
        );
        assert_eq!(
            p.channel("BTCUSDT", DataType::OrderBookDelta),
            p.channel("BTCUSDT", DataType::OrderBook)
        );
        assert_eq!(p.channel("BTCUSDT", DataType::Ticker), "btcusdt@bookTicker");
        for dt in [
            DataType::Trade,
            DataType::OrderBook,
            DataType::OrderBookDelta,
            DataType::Ticker,
        ] {
            assert_eq!(p.source(dt), Source::Ws { route: "" }, "{dt}");
        }
        for dt in [
            DataType::FundingRate,
            DataType::OpenInterest,
            DataType::Liquidation,
            DataType::LsrTopPosition,
            DataType::LsrAllAccount,
            DataType::VolatilityIndex,
        ] {
            assert_eq!(p.source(dt), Source::Unsupported, "{dt}");
        }
    }

    #[test]
    fn snapshot_requests_are_weighted_by_limit() {
        let cases = [
            (1, 1, 5),
            (100, 100, 5),
            (101, 101, 25),
            (500, 500, 25),
            (501, 501, 50),
            (1000, 1000, 50),
            (1001, 1001, 250),
            (5000, 5000, 250),
            (9000, 5000, 250),
            (0, 1, 5),
        ];
        for (depth, limit, weight) in cases {
            let r = SPOT.book_snapshot_request("BTCUSDT", depth).unwrap();
            assert_eq!(
                r,
                RestRequest {
                    path: format!("/api/v3/depth?symbol=BTCUSDT&limit={limit}"),
                    weight
                },
                "{depth}"
            );
        }
    }
}

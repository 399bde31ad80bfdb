//! Binance USDⓈ-M perpetuals: endpoints, routes, channels, REST polls and the
//! [`Protocol`] glue. Frames are parsed in [`super::wire`] (shared with spot),
//! REST answers in [`super::rest`].
//!
//! Since 2026-04-23 streams are served from routed entry points: book data
//! on `wss://fstream.binance.com/public`, everything else on `/market`
//! (mis-routed subscriptions are accepted silently and never deliver).
//!
//! | data type | route | stream / request |
//! |---|---|---|
//! | `trade` | `market` | `<sym>@aggTrade` (trade id = aggregate id `a`, as MarketPrism) |
//! | `orderbook`, `orderbook_delta` | `public` | `<sym>@depth@100ms` (`U`,`u`,`pu`) + `GET /fapi/v1/depth` snapshots |
//! | `ticker` | `public` | `<sym>@bookTicker` |
//! | `funding_rate` | `market` | `<sym>@markPrice@1s` (`r`, next funding `T`, mark `p`, index `i`) |
//! | `liquidation` | `market` | `<sym>@forceOrder` |
//! | `open_interest` | poll 300 s | `GET /fapi/v1/openInterest?symbol=` (weight 1) |
//! | `lsr_top_position` | poll 60 s | `GET /futures/data/topLongShortPositionRatio?symbol=&period=5m&limit=1` |
//! | `lsr_all_account` | poll 60 s | `GET /futures/data/globalLongShortAccountRatio?symbol=&period=5m&limit=1` |
//!
//! Poll intervals: open interest every 300 s is MarketPrism's code value.
//! The ratios are 5-minute datapoints; MarketPrism polls them every 10 s,
//! which re-reads the same point 30 times. 60 s keeps a new point at most a
//! minute late at a sixth of the requests (the `/futures/data` endpoints
//! have their own per-IP request cap besides the weight budget). Both are
//! overridable per config (`poll_interval_ms`).

use crate::batch::Batch;
use crate::book::{BookMsg, SyncRule};
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, ErrorShape, FrameOutcome, Instrument, InstrumentMap, Malformed, ParseCtx, Protocol,
    RestLimit, RestRequest, Source,
};
use std::time::Duration;
use url::Url;

/// Production market-data WebSocket base (routes are appended).
pub const WS_URL: &str = "wss://fstream.binance.com";
/// Production REST base.
pub const REST_URL: &str = "https://fapi.binance.com";
/// Route of high-frequency book data (`@depth*`, `@bookTicker`).
pub const ROUTE_PUBLIC: &str = "public";
/// Route of everything else (`@aggTrade`, `@markPrice`, `@forceOrder`, ...).
pub const ROUTE_MARKET: &str = "market";
/// Instrument list.
pub const EXCHANGE_INFO_PATH: &str = "/fapi/v1/exchangeInfo";
pub const DEPTH_PATH: &str = "/fapi/v1/depth";
pub const OPEN_INTEREST_PATH: &str = "/fapi/v1/openInterest";
pub const LSR_TOP_POSITION_PATH: &str = "/futures/data/topLongShortPositionRatio";
pub const LSR_ALL_ACCOUNT_PATH: &str = "/futures/data/globalLongShortAccountRatio";
/// "A single connection can listen to a maximum of 1024 streams."
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;
/// MarketPrism's open-interest poll interval (code value).
pub const OPEN_INTEREST_EVERY: Duration = Duration::from_secs(300);
/// MarketPrism's long/short ratio poll interval (`fetch_interval`, code
/// default); a repeated 5-minute datapoint is not republished.
pub const LSR_EVERY: Duration = Duration::from_secs(10);

/// `GET /fapi/v1/depth` accepts only these limits.
pub const DEPTH_LIMITS: [usize; 7] = [5, 10, 20, 50, 100, 500, 1000];

/// The smallest valid depth limit covering `depth` (1000 at most).
pub fn depth_limit(depth: usize) -> usize {
    DEPTH_LIMITS
        .into_iter()
        .find(|&l| l >= depth)
        .unwrap_or(1000)
}

/// `GET /fapi/v1/depth` weight: 5/10/20/50 → 2, 100 → 5, 500 → 10, 1000 → 20.
pub fn depth_weight(limit: usize) -> u32 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// The USDⓈ-M stream name of `dt` (`orderbook` and `orderbook_delta` share one).
pub fn stream_name(symbol: &str, dt: DataType) -> String {
    let channel = match dt {
        DataType::Trade => "aggTrade",
        DataType::OrderBook | DataType::OrderBookDelta => "depth@100ms",
        DataType::Ticker => "bookTicker",
        DataType::FundingRate => "markPrice@1s",
        DataType::Liquidation => "forceOrder",
        _ => "unsupported",
    };
    super::channel_name(symbol, channel)
}

pub struct BinanceFutures {
    pub id: VenueId,
}

pub static FUTURES: BinanceFutures = BinanceFutures {
    id: VenueId::BinanceDerivatives,
};

impl Protocol for BinanceFutures {
    fn trade_id_is_seq(&self) -> bool {
        true
    }
    fn id(&self) -> VenueId {
        self.id
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            ws_url: WS_URL,
            rest_url: REST_URL,
        }
    }

    fn source(&self, dt: DataType) -> Source {
        match dt {
            DataType::OrderBook | DataType::OrderBookDelta | DataType::Ticker => Source::Ws {
                route: ROUTE_PUBLIC,
            },
            DataType::Trade | DataType::FundingRate | DataType::Liquidation => Source::Ws {
                route: ROUTE_MARKET,
            },
            DataType::OpenInterest => Source::Poll {
                every: OPEN_INTEREST_EVERY,
            },
            DataType::LsrTopPosition | DataType::LsrAllAccount => Source::Poll { every: LSR_EVERY },
            DataType::VolatilityIndex | DataType::Gap => Source::Unsupported,
        }
    }

    /// USDⓈ-M pings only every 3 minutes: three missed pings.
    fn stale_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(10 * 60)
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
        stream_name(symbol, dt)
    }

    /// `wss://fstream.binance.com/<route>/stream?streams=a/b/c`.
    fn connection_url(&self, base: &Url, route: &str, channels: &[String]) -> Url {
        super::combined_stream_url(base, route, channels)
    }

    fn resubscribe_frames(&self, channels: &[String]) -> Vec<String> {
        super::resubscribe_frames(channels)
    }

    /// `markPrice@1s` is pushed every second whether or not it changed.
    fn stream_cadence(&self, dt: DataType) -> Option<std::time::Duration> {
        (dt == DataType::FundingRate).then(|| std::time::Duration::from_secs(1))
    }

    fn trade_history_request(&self, raw_symbol: &str, from: u64, to: u64) -> Option<RestRequest> {
        Some(super::history::futures_request(raw_symbol, from, to))
    }

    fn parse_trade_history(
        &self,
        inst: &crate::venue::Instrument,
        body: &[u8],
        range: (u64, u64),
        receive_ns: u64,
        batch: &mut Batch,
    ) -> Result<Option<(u64, u64)>, crate::venue::Malformed> {
        let items = super::history::parse_futures(body)?;
        crate::venue::history::push(self.id(), inst, items, range, receive_ns, batch)
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::RestSnapshotLinked
    }

    /// Weight 1 (third-party figure; the official page was not read).
    fn instruments_request(&self, cursor: Option<&str>) -> Option<RestRequest> {
        cursor.is_none().then(|| RestRequest {
            path: EXCHANGE_INFO_PATH.to_string(),
            weight: 1,
        })
    }

    fn parse_instruments(
        &self,
        body: &[u8],
        map: &mut InstrumentMap,
    ) -> Result<Option<String>, String> {
        super::instruments::parse_futures_exchange_info(body, map).map(|()| None)
    }

    /// `limit` rounded up to a valid one (1000 at most).
    fn book_snapshot_request(&self, raw_symbol: &str, depth: usize) -> Option<RestRequest> {
        let limit = depth_limit(depth);
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

    /// `REQUEST_WEIGHT` 2400 per minute per IP (exchangeInfo `rateLimits`).
    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 2400,
            window: Duration::from_secs(60),
        }
    }

    fn rest_error_shape(&self) -> ErrorShape {
        super::rest::ERROR_SHAPE
    }

    /// Weight 1 each: documented for `openInterest`; the `/futures/data`
    /// ratios are capped per IP by request count instead, counted as 1 here.
    fn poll_request(&self, dt: DataType, inst: &Instrument) -> Option<RestRequest> {
        let sym = &inst.native;
        let path = match dt {
            DataType::OpenInterest => format!("{OPEN_INTEREST_PATH}?symbol={sym}"),
            DataType::LsrTopPosition => format!(
                "{LSR_TOP_POSITION_PATH}?symbol={sym}&period={}&limit=1",
                super::rest::LSR_PERIOD
            ),
            DataType::LsrAllAccount => format!(
                "{LSR_ALL_ACCOUNT_PATH}?symbol={sym}&period={}&limit=1",
                super::rest::LSR_PERIOD
            ),
            _ => return None,
        };
        Some(RestRequest { path, weight: 1 })
    }

    fn parse_poll(
        &self,
        dt: DataType,
        inst: &Instrument,
        body: &[u8],
        receive_ns: u64,
        batch: &mut Batch,
    ) -> FrameOutcome {
        match dt {
            DataType::OpenInterest => {
                super::rest::parse_open_interest(self.id, inst, body, receive_ns, batch)
            }
            DataType::LsrTopPosition | DataType::LsrAllAccount => {
                super::rest::parse_long_short_ratio(self.id, dt, inst, body, receive_ns, batch)
            }
            _ => FrameOutcome::Malformed(Malformed::UnknownEvent),
        }
    }

    fn on_text(
        &self,
        text: &str,
        receive_ns: u64,
        cx: &mut ParseCtx<'_>,
        batch: &mut Batch,
    ) -> FrameOutcome {
        super::wire::on_frame(text, receive_ns, self.id, cx.instruments, cx.book, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_channels() {
        let p = &FUTURES;
        let cases = [
            (DataType::Trade, "market", "btcusdt@aggTrade"),
            (DataType::OrderBook, "public", "btcusdt@depth@100ms"),
            (DataType::OrderBookDelta, "public", "btcusdt@depth@100ms"),
            (DataType::Ticker, "public", "btcusdt@bookTicker"),
            (DataType::FundingRate, "market", "btcusdt@markPrice@1s"),
            (DataType::Liquidation, "market", "btcusdt@forceOrder"),
        ];
        for (dt, route, channel) in cases {
            assert_eq!(p.source(dt), Source::Ws { route }, "{dt}");
            assert_eq!(p.channel("BTCUSDT", dt), channel);
        }
        assert_eq!(
            p.source(DataType::OpenInterest),
            Source::Poll {
                every: Duration::from_secs(300)
            }
        );
        assert_eq!(
            p.source(DataType::LsrTopPosition),
            Source::Poll {
                every: Duration::from_secs(10)
            }
        );
        assert_eq!(
            p.source(DataType::LsrAllAccount),
            p.source(DataType::LsrTopPosition)
        );
        assert_eq!(p.source(DataType::VolatilityIndex), Source::Unsupported);
        let base = Url::parse(WS_URL).unwrap();
        let ch = vec![
            "btcusdt@aggTrade".to_string(),
            "btcusdt@markPrice@1s".to_string(),
        ];
        assert_eq!(
            p.connection_url(&base, "market", &ch).as_str(),
            "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s"
        );
    }

    #[test]
    fn snapshot_limits_round_up_to_valid_ones() {
        let cases = [
            (1, 5, 2),
            (5, 5, 2),
            (6, 10, 2),
            (20, 20, 2),
            (21, 50, 2),
            (50, 50, 2),
            (51, 100, 5),
            (100, 100, 5),
            (101, 500, 10),
            (400, 500, 10),
            (500, 500, 10),
            (501, 1000, 20),
            (1000, 1000, 20),
            (5000, 1000, 20),
        ];
        for (depth, limit, weight) in cases {
            assert_eq!(
                FUTURES.book_snapshot_request("BTCUSDT", depth),
                Some(RestRequest {
                    path: format!("/fapi/v1/depth?symbol=BTCUSDT&limit={limit}"),
                    weight
                }),
                "{depth}"
            );
        }
    }

    #[test]
    fn poll_requests() {
        let mut map = InstrumentMap::default();
        map.insert("BTCUSDT", "BTC", "USDT", true);
        let inst = map.get("BTCUSDT").unwrap();
        let req = |dt| FUTURES.poll_request(dt, inst).map(|r| (r.path, r.weight));
        assert_eq!(
            req(DataType::OpenInterest),
            Some(("/fapi/v1/openInterest?symbol=BTCUSDT".to_string(), 1))
        );
        assert_eq!(
            req(DataType::LsrTopPosition),
            Some((
                "/futures/data/topLongShortPositionRatio?symbol=BTCUSDT&period=5m&limit=1"
                    .to_string(),
                1
            ))
        );
        assert_eq!(
            req(DataType::LsrAllAccount),
            Some((
                "/futures/data/globalLongShortAccountRatio?symbol=BTCUSDT&period=5m&limit=1"
                    .to_string(),
                1
            ))
        );
        assert_eq!(req(DataType::Trade), None);
        assert_eq!(
            FUTURES.rest_limit(),
            RestLimit {
                weight: 2400,
                window: Duration::from_secs(60)
            }
        );
    }
}

//! Bybit v5 public market data, spot and USDT/USDC linear perpetuals.
//! Docs: <https://bybit-exchange.github.io/docs/v5/ws/connect>.
//!
//! - [`wire`]: WebSocket frames → records / book messages (payload examples double as tests).
//! - [`rest`]: `instruments-info` → [`InstrumentMap`], `account-ratio` polls → records.
//!
//! Channels (one per data type, except `tickers`, which is shared):
//!
//! | data type | channel |
//! |---|---|
//! | trade | `publicTrade.{sym}` |
//! | orderbook, orderbook_delta | `orderbook.200.{sym}` (WS snapshot, then absolute deltas) |
//! | ticker, funding_rate, open_interest | `tickers.{sym}` (linear: snapshot + delta, merged per symbol in [`State`]) |
//! | liquidation | `allLiquidation.{sym}` (linear) |
//! | lsr_all_account | REST poll `/v5/market/account-ratio` (linear, 60 s) |

pub mod rest;
pub mod wire;

use crate::batch::Batch;
use crate::book::SyncRule;
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, ErrorShape, FrameOutcome, Heartbeat, Instrument, InstrumentMap, ParseCtx, Protocol,
    RestLimit, RestRequest, Source,
};
use std::time::Duration;

pub use wire::State;

pub const SPOT_WS_URL: &str = "wss://stream.bybit.com/v5/public/spot";
pub const LINEAR_WS_URL: &str = "wss://stream.bybit.com/v5/public/linear";
pub const REST_URL: &str = "https://api.bybit.com";
/// Book depth subscribed: 200 levels, pushed every 100 ms (spot and linear).
pub const BOOK_DEPTH: u32 = 200;
/// "Spot: up to 10 args per subscription request."
pub const SPOT_ARGS_PER_REQUEST: usize = 10;
/// Linear has no documented args limit; requests stay well under the
/// 21,000-character `args` ceiling at 100 topics.
pub const LINEAR_ARGS_PER_REQUEST: usize = 100;
/// Default interval of the `account-ratio` poll: MarketPrism's 10 s (its
/// finest period is 5 min; a repeated datapoint is not republished).
pub const LSR_POLL_EVERY: Duration = Duration::from_secs(10);

pub struct Bybit {
    pub id: VenueId,
}

pub static BYBIT_SPOT: Bybit = Bybit {
    id: VenueId::BybitSpot,
};
pub static BYBIT_LINEAR: Bybit = Bybit {
    id: VenueId::BybitLinear,
};

impl Bybit {
    fn is_linear(&self) -> bool {
        self.id == VenueId::BybitLinear
    }

    fn category(&self) -> &'static str {
        if self.is_linear() {
            "linear"
        } else {
            "spot"
        }
    }

    fn args_per_request(&self) -> usize {
        if self.is_linear() {
            LINEAR_ARGS_PER_REQUEST
        } else {
            SPOT_ARGS_PER_REQUEST
        }
    }

    /// `{"req_id":"1","op":"subscribe","args":[...]}`, one per chunk of args.
    fn op_frames(&self, op: &str, channels: &[String]) -> Vec<String> {
        channels
            .chunks(self.args_per_request())
            .enumerate()
            .map(|(i, chunk)| {
                let args = sonic_rs::to_string(chunk).unwrap_or_else(|_| "[]".to_string());
                format!(r#"{{"req_id":"{}","op":"{op}","args":{args}}}"#, i + 1)
            })
            .collect()
    }
}

impl Protocol for Bybit {
    fn id(&self) -> VenueId {
        self.id
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            ws_url: if self.is_linear() {
                LINEAR_WS_URL
            } else {
                SPOT_WS_URL
            },
            rest_url: REST_URL,
        }
    }

    fn source(&self, dt: DataType) -> Source {
        let ws = Source::Ws { route: "" };
        match dt {
            DataType::Trade | DataType::OrderBook | DataType::OrderBookDelta | DataType::Ticker => {
                ws
            }
            DataType::FundingRate | DataType::OpenInterest | DataType::Liquidation
                if self.is_linear() =>
            {
                ws
            }
            DataType::LsrAllAccount if self.is_linear() => Source::Poll {
                every: LSR_POLL_EVERY,
            },
            _ => Source::Unsupported,
        }
    }

    /// Bybit documents no per-connection topic ceiling for public streams
    /// (only spot's 10 args per request and a 21,000-character `args` array);
    /// these keep one connection's subscribe burst and fan-in moderate.
    /// "≤500 connections / 5 min per WS domain".
    fn connection_rate_limit(&self) -> Option<(u32, std::time::Duration)> {
        Some((500, std::time::Duration::from_secs(300)))
    }

    fn max_streams_per_connection(&self) -> usize {
        if self.is_linear() {
            500
        } else {
            200
        }
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        match dt {
            DataType::Trade => format!("publicTrade.{symbol}"),
            DataType::OrderBook | DataType::OrderBookDelta => {
                format!("orderbook.{BOOK_DEPTH}.{symbol}")
            }
            DataType::Ticker | DataType::FundingRate | DataType::OpenInterest => {
                format!("tickers.{symbol}")
            }
            DataType::Liquidation => format!("allLiquidation.{symbol}"),
            // Polled or unsupported: a name for logs only.
            other => format!("{}.{symbol}", other.name()),
        }
    }

    fn subscribe_frames(&self, channels: &[String]) -> Vec<String> {
        self.op_frames("subscribe", channels)
    }

    fn unsubscribe_frames(&self, channels: &[String]) -> Vec<String> {
        self.op_frames("unsubscribe", channels)
    }

    fn heartbeat(&self) -> Option<Heartbeat> {
        Some(Heartbeat {
            every: Duration::from_secs(20),
            frame: r#"{"op":"ping"}"#,
        })
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::WsSnapshotIncreasing
    }

    fn instruments_request(&self, cursor: Option<&str>) -> Option<RestRequest> {
        Some(rest::instruments_request(self.category(), cursor))
    }

    fn parse_instruments(
        &self,
        body: &[u8],
        map: &mut InstrumentMap,
    ) -> Result<Option<String>, String> {
        rest::parse_instruments(body, self.is_linear(), map)
    }

    /// HTTP: 600 requests per 5 s per IP; half of it leaves room for other
    /// clients on the same IP (exceeding it bans the IP for 10 minutes).
    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 300,
            window: Duration::from_secs(5),
        }
    }

    fn rest_error_shape(&self) -> ErrorShape {
        rest::ERROR_SHAPE
    }

    fn poll_request(&self, dt: DataType, inst: &Instrument) -> Option<RestRequest> {
        (dt == DataType::LsrAllAccount && self.is_linear())
            .then(|| rest::account_ratio_request(&inst.native))
    }

    fn parse_poll(
        &self,
        dt: DataType,
        inst: &Instrument,
        body: &[u8],
        receive_ns: u64,
        batch: &mut Batch,
    ) -> FrameOutcome {
        if dt != DataType::LsrAllAccount {
            return FrameOutcome::Malformed(crate::venue::Malformed::UnknownEvent);
        }
        rest::parse_account_ratio(self.id, inst, body, receive_ns, batch)
    }

    fn on_text(
        &self,
        text: &str,
        receive_ns: u64,
        cx: &mut ParseCtx<'_>,
        batch: &mut Batch,
    ) -> FrameOutcome {
        wire::on_text(self.id, text, receive_ns, cx, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chans(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("publicTrade.S{i}")).collect()
    }

    #[test]
    fn spot_subscribes_ten_args_per_request() {
        let f = BYBIT_SPOT.subscribe_frames(&chans(21));
        assert_eq!(f.len(), 3);
        assert!(f[0].starts_with(r#"{"req_id":"1","op":"subscribe","args":["publicTrade.S0","#));
        assert!(f[2].ends_with(r#""args":["publicTrade.S20"]}"#));
        assert_eq!(BYBIT_LINEAR.subscribe_frames(&chans(150)).len(), 2);
        assert!(BYBIT_SPOT.subscribe_frames(&[]).is_empty());
    }

    #[test]
    fn shared_tickers_channel() {
        let p = &BYBIT_LINEAR;
        assert_eq!(p.channel("BTCUSDT", DataType::Ticker), "tickers.BTCUSDT");
        assert_eq!(
            p.channel("BTCUSDT", DataType::FundingRate),
            "tickers.BTCUSDT"
        );
        assert_eq!(
            p.channel("BTCUSDT", DataType::OpenInterest),
            "tickers.BTCUSDT"
        );
        assert_eq!(
            p.channel("BTCUSDT", DataType::OrderBookDelta),
            "orderbook.200.BTCUSDT"
        );
        assert_eq!(
            BYBIT_SPOT.source(DataType::FundingRate),
            Source::Unsupported
        );
        assert_eq!(
            p.source(DataType::LsrAllAccount),
            Source::Poll {
                every: Duration::from_secs(10)
            }
        );
        assert_eq!(p.source(DataType::LsrTopPosition), Source::Unsupported);
    }
}

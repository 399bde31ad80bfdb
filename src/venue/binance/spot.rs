//! Binance spot: endpoints, documented limits and the [`Protocol`] glue.
//! Frames are parsed in [`super::wire`].

use crate::batch::Batch;
use crate::book::SyncRule;
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, FrameOutcome, InstrumentMap, ParseCtx, Protocol, RestLimit, RestRequest, Source,
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

pub struct BinanceSpot;
pub static SPOT: BinanceSpot = BinanceSpot;

impl Protocol for BinanceSpot {
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
            DataType::Trade => Source::Ws { route: "" },
            _ => Source::Unsupported,
        }
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

    fn book_rule(&self) -> SyncRule {
        SyncRule::BinanceSpot
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

    /// `REQUEST_WEIGHT` 6000 per minute per IP.
    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 6000,
            window: Duration::from_secs(60),
        }
    }

    fn on_text(
        &self,
        text: &str,
        receive_ns: u64,
        cx: &mut ParseCtx<'_>,
        batch: &mut Batch,
    ) -> FrameOutcome {
        super::wire::on_text(text, receive_ns, cx.instruments, batch)
    }
}

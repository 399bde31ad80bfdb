//! Binance USDⓈ-M futures (placeholder: being written).

use crate::batch::Batch;
use crate::book::SyncRule;
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, FrameOutcome, InstrumentMap, Malformed, ParseCtx, Protocol, RestLimit, RestRequest,
    Source,
};
use std::time::Duration;

pub struct BinanceFutures {
    pub id: VenueId,
}

pub static FUTURES: BinanceFutures = BinanceFutures {
    id: VenueId::BinanceDerivatives,
};

impl Protocol for BinanceFutures {
    fn id(&self) -> VenueId {
        self.id
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            ws_url: "wss://fstream.binance.com",
            rest_url: "https://fapi.binance.com",
        }
    }

    fn source(&self, _dt: DataType) -> Source {
        Source::Unsupported
    }

    fn max_streams_per_connection(&self) -> usize {
        1024
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        format!("{}.{symbol}", dt.name())
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::BinanceFutures
    }

    fn instruments_request(&self, _cursor: Option<&str>) -> Option<RestRequest> {
        None
    }

    fn parse_instruments(
        &self,
        _body: &[u8],
        _map: &mut InstrumentMap,
    ) -> Result<Option<String>, String> {
        Ok(None)
    }

    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 600,
            window: Duration::from_secs(60),
        }
    }

    fn on_text(
        &self,
        _text: &str,
        _receive_ns: u64,
        _cx: &mut ParseCtx<'_>,
        _batch: &mut Batch,
    ) -> FrameOutcome {
        FrameOutcome::Malformed(Malformed::UnknownEvent)
    }
}

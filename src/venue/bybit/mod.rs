//! Bybit v5 (placeholder: being written).

use crate::batch::Batch;
use crate::book::SyncRule;
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, FrameOutcome, InstrumentMap, Malformed, ParseCtx, Protocol, RestLimit, RestRequest,
    Source,
};
use std::time::Duration;

pub struct Bybit {
    pub id: VenueId,
}

pub static BYBIT_SPOT: Bybit = Bybit {
    id: VenueId::BybitSpot,
};
pub static BYBIT_LINEAR: Bybit = Bybit {
    id: VenueId::BybitLinear,
};

/// Per-connection parser state.
#[derive(Debug, Default)]
pub struct State {}

impl Protocol for Bybit {
    fn id(&self) -> VenueId {
        self.id
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            ws_url: "wss://stream.bybit.com/v5/public/spot",
            rest_url: "https://api.bybit.com",
        }
    }

    fn source(&self, _dt: DataType) -> Source {
        Source::Unsupported
    }

    fn max_streams_per_connection(&self) -> usize {
        500
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        format!("{}.{symbol}", dt.name())
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::Bybit
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

//! OKX v5 (placeholder: being written).

use crate::batch::Batch;
use crate::book::SyncRule;
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, FrameOutcome, InstrumentMap, Malformed, ParseCtx, Protocol, RestLimit, RestRequest,
    Source,
};
use std::time::Duration;

pub struct Okx {
    pub id: VenueId,
}

pub static OKX_SPOT: Okx = Okx {
    id: VenueId::OkxSpot,
};
pub static OKX_SWAP: Okx = Okx {
    id: VenueId::OkxDerivatives,
};

impl Protocol for Okx {
    fn id(&self) -> VenueId {
        self.id
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints {
            ws_url: "wss://ws.okx.com:8443/ws/v5/public",
            rest_url: "https://www.okx.com",
        }
    }

    fn source(&self, _dt: DataType) -> Source {
        Source::Unsupported
    }

    fn max_streams_per_connection(&self) -> usize {
        30
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        format!("{}.{symbol}", dt.name())
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::Okx
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

//! Venue protocols. A venue module only *describes* its protocol: endpoints,
//! stream names and subscription URL, how a text frame becomes records, and
//! how its instrument list maps native symbols to `BASE-QUOTE`. The engine
//! around it (connections, batching, sinks) is generic and dispatches here by
//! [`VenueId`] (a plain `match`, no type matrix).

pub mod binance;
pub mod instruments;

use crate::batch::Batch;
use crate::config::ConnectionPlan;
use crate::model::{DataType, VenueId};
pub use instruments::InstrumentMap;
use url::Url;

/// Production endpoints of a venue (overridable per config).
pub struct Endpoints {
    pub ws_url: &'static str,
    pub rest_url: &'static str,
}

pub fn endpoints(id: VenueId) -> Endpoints {
    match id {
        VenueId::BinanceSpot => Endpoints {
            ws_url: binance::spot::WS_URL,
            rest_url: binance::spot::REST_URL,
        },
    }
}

/// Whether the venue offers a data type.
pub fn supports(id: VenueId, dt: DataType) -> bool {
    match id {
        VenueId::BinanceSpot => matches!(dt, DataType::Trade),
    }
}

/// The venue's documented ceiling of streams per connection.
pub fn max_streams_per_connection(id: VenueId) -> usize {
    match id {
        VenueId::BinanceSpot => binance::spot::MAX_STREAMS_PER_CONNECTION,
    }
}

/// The venue's name for one stream (for URLs, subscribe frames and logs).
pub fn stream_name(id: VenueId, symbol: &str, dt: DataType) -> String {
    match id {
        VenueId::BinanceSpot => binance::stream_name(symbol, dt),
    }
}

/// The URL a connection opens (subscriptions included where the venue allows).
pub fn connection_url(base: &Url, conn: &ConnectionPlan) -> Url {
    match conn.venue {
        VenueId::BinanceSpot => binance::combined_stream_url(base, conn),
    }
}

/// REST path of the instrument list used to normalize symbols.
pub fn instruments_path(id: VenueId) -> &'static str {
    match id {
        VenueId::BinanceSpot => binance::spot::EXCHANGE_INFO_PATH,
    }
}

/// Builds the instrument map from the venue's instrument-list body.
pub fn parse_instruments(id: VenueId, body: &[u8]) -> Result<InstrumentMap, String> {
    match id {
        VenueId::BinanceSpot => binance::instruments::parse_exchange_info(body),
    }
}

/// Why a frame was rejected; the label of the malformed-frames metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all, or truncated.
    BadJson,
    /// JSON, but a field has the wrong type or a required field is missing.
    WrongType,
    /// An event or stream this collector does not know.
    UnknownEvent,
    /// A price/quantity that is not an exact decimal.
    InvalidNumber,
    /// A symbol missing from the instrument list.
    UnknownSymbol,
    /// A binary (or otherwise non-text) frame where text is expected.
    NonText,
    /// Text that is not valid UTF-8 (caught by the WebSocket layer).
    InvalidUtf8,
    /// A frame over the size limit.
    Oversized,
}

impl Malformed {
    pub const ALL: [Malformed; 8] = [
        Malformed::BadJson,
        Malformed::WrongType,
        Malformed::UnknownEvent,
        Malformed::InvalidNumber,
        Malformed::UnknownSymbol,
        Malformed::NonText,
        Malformed::InvalidUtf8,
        Malformed::Oversized,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn label(self) -> &'static str {
        match self {
            Malformed::BadJson => "bad_json",
            Malformed::WrongType => "wrong_type",
            Malformed::UnknownEvent => "unknown_event",
            Malformed::InvalidNumber => "invalid_number",
            Malformed::UnknownSymbol => "unknown_symbol",
            Malformed::NonText => "non_text",
            Malformed::InvalidUtf8 => "invalid_utf8",
            Malformed::Oversized => "oversized",
        }
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What one text frame turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// This many records were pushed into the batch, of this data type.
    Records(DataType, u32),
    /// A subscription ack or other control message (no data).
    Control,
    /// The venue reported an error on a control request.
    ControlError,
    /// Rejected; counted and skipped.
    Malformed(Malformed),
}

/// Parses one text frame of `venue` into `batch`.
#[inline]
pub fn on_text(
    venue: VenueId,
    text: &str,
    receive_ns: u64,
    instruments: &InstrumentMap,
    batch: &mut Batch,
) -> FrameOutcome {
    match venue {
        VenueId::BinanceSpot => binance::wire::on_text(text, receive_ns, instruments, batch),
    }
}

//! Deribit (JSON-RPC 2.0 over WebSocket). Docs: <https://docs.deribit.com/>.
//!
//! - [`wire`]: notifications → records / book messages (payload examples double as tests).
//! - [`rest`]: `public/get_instruments` → [`InstrumentMap`].
//!
//! Channels (100 ms aggregation: `.raw` needs an authorized connection nowadays):
//!
//! | data type | channel |
//! |---|---|
//! | trade | `trades.{instrument}.100ms` |
//! | orderbook, orderbook_delta | `book.{instrument}.100ms` (snapshot, then changes chained by `prev_change_id`) |
//! | ticker, funding_rate, open_interest | `ticker.{instrument}.100ms` (shared) |
//! | volatility_index | `deribit_volatility_index.{btc_usd\|eth_usd}` (config symbol: the currency, `BTC`) |
//!
//! Connection set-up is `public/set_heartbeat` (30 s) then `public/subscribe`;
//! the server's `test_request` heartbeats are answered with `public/test`
//! through `ParseCtx::replies`.

pub mod history;
pub mod rest;
pub mod wire;

use crate::batch::Batch;
use crate::book::SyncRule;
use crate::model::{DataType, VenueId};
use crate::venue::{
    Endpoints, ErrorShape, FrameOutcome, InstrumentMap, ParseCtx, Protocol, RestLimit, RestRequest,
    Source,
};
use std::time::Duration;

pub const WS_URL: &str = "wss://www.deribit.com/ws/api/v2";
pub const REST_URL: &str = "https://www.deribit.com";
/// Heartbeat interval asked of the server (`public/set_heartbeat`, ≥ 10 s).
pub const HEARTBEAT_INTERVAL_S: u32 = 30;
/// JSON-RPC ids of the frames we send (answers are only counted, not matched).
pub const SET_HEARTBEAT_ID: u64 = 1;
pub const TEST_ID: u64 = 2;
pub const SUBSCRIBE_ID_BASE: u64 = 10;
pub const UNSUBSCRIBE_ID_BASE: u64 = 1000;
/// Channels per `public/subscribe` request.
pub const CHANNELS_PER_REQUEST: usize = 100;

pub struct Deribit {
    pub id: VenueId,
}

pub static DERIBIT: Deribit = Deribit {
    id: VenueId::DeribitDerivatives,
};

/// `{"jsonrpc":"2.0","id":N,"method":"..","params":{"channels":[..]}}` per chunk.
fn channel_requests(method: &str, id_base: u64, channels: &[String]) -> Vec<String> {
    channels
        .chunks(CHANNELS_PER_REQUEST)
        .enumerate()
        .map(|(i, chunk)| {
            let list = sonic_rs::to_string(chunk).unwrap_or_else(|_| "[]".to_string());
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{{"channels":{list}}}}}"#,
                id_base + i as u64
            )
        })
        .collect()
}

/// The reply to a server `test_request` heartbeat.
pub fn test_reply() -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{TEST_ID},"method":"public/test","params":{{}}}}"#)
}

/// `BTC` → `btc_usd` (already `btc_usd`: unchanged, lower-cased).
pub fn volatility_index_name(symbol: &str) -> String {
    let lower = symbol.to_ascii_lowercase();
    if lower.contains('_') {
        lower
    } else {
        format!("{lower}_usd")
    }
}

impl Protocol for Deribit {
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
            DataType::Trade
            | DataType::OrderBook
            | DataType::OrderBookDelta
            | DataType::Ticker
            | DataType::FundingRate
            | DataType::OpenInterest
            | DataType::VolatilityIndex => Source::Ws { route: "" },
            _ => Source::Unsupported,
        }
    }

    /// One `symbols` list serves both kinds of channel, as in MarketPrism's
    /// config: currencies (`BTC`) feed the volatility index, instrument names
    /// (`BTC-PERPETUAL`) everything else.
    fn symbol_applies(&self, symbol: &str, dt: DataType) -> bool {
        let currency = !symbol.contains('-');
        (dt == DataType::VolatilityIndex) == currency
    }

    /// The volatility index is not an instrument.
    fn needs_instrument(&self, dt: DataType) -> bool {
        dt != DataType::VolatilityIndex
    }

    /// Deribit documents no channel ceiling per connection; this keeps one
    /// connection's 100 ms fan-in moderate.
    fn max_streams_per_connection(&self) -> usize {
        500
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        match dt {
            DataType::Trade => format!("trades.{symbol}.100ms"),
            DataType::OrderBook | DataType::OrderBookDelta => format!("book.{symbol}.100ms"),
            DataType::Ticker | DataType::FundingRate | DataType::OpenInterest => {
                format!("ticker.{symbol}.100ms")
            }
            DataType::VolatilityIndex => {
                format!("deribit_volatility_index.{}", volatility_index_name(symbol))
            }
            other => format!("{}.{symbol}", other.name()),
        }
    }

    fn subscribe_frames(&self, channels: &[String]) -> Vec<String> {
        let mut out = vec![format!(
            r#"{{"jsonrpc":"2.0","id":{SET_HEARTBEAT_ID},"method":"public/set_heartbeat","params":{{"interval":{HEARTBEAT_INTERVAL_S}}}}}"#
        )];
        out.extend(channel_requests(
            "public/subscribe",
            SUBSCRIBE_ID_BASE,
            channels,
        ));
        out
    }

    fn unsubscribe_frames(&self, channels: &[String]) -> Vec<String> {
        channel_requests("public/unsubscribe", UNSUBSCRIBE_ID_BASE, channels)
    }

    fn trade_history_request(&self, raw_symbol: &str, from: u64, to: u64) -> Option<RestRequest> {
        Some(history::request(raw_symbol, from, to))
    }

    fn parse_trade_history(
        &self,
        inst: &crate::venue::Instrument,
        body: &[u8],
        range: (u64, u64),
        receive_ns: u64,
        batch: &mut Batch,
    ) -> Result<Option<(u64, u64)>, crate::venue::Malformed> {
        let items = history::parse(inst, body)?;
        crate::venue::history::push(self.id(), inst, items, range, receive_ns, batch)
    }

    fn book_rule(&self) -> SyncRule {
        SyncRule::WsSnapshotLinked { checksum: None }
    }

    fn market_type_of(&self, dt: DataType) -> Option<&'static str> {
        (dt == DataType::VolatilityIndex).then_some("options")
    }

    fn instruments_request(&self, cursor: Option<&str>) -> Option<RestRequest> {
        cursor.is_none().then(rest::instruments_request)
    }

    fn parse_instruments(
        &self,
        body: &[u8],
        map: &mut InstrumentMap,
    ) -> Result<Option<String>, String> {
        rest::parse_instruments(body, map).map(|()| None)
    }

    /// Non-matching-engine requests: 20 per second sustained (credit refill).
    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 20,
            window: Duration::from_secs(1),
        }
    }

    fn rest_error_shape(&self) -> ErrorShape {
        rest::ERROR_SHAPE
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

    #[test]
    fn channels() {
        let p = &DERIBIT;
        assert_eq!(
            p.channel("BTC-PERPETUAL", DataType::Trade),
            "trades.BTC-PERPETUAL.100ms"
        );
        assert_eq!(
            p.channel("BTC-PERPETUAL", DataType::FundingRate),
            p.channel("BTC-PERPETUAL", DataType::Ticker)
        );
        assert_eq!(
            p.channel("BTC", DataType::VolatilityIndex),
            "deribit_volatility_index.btc_usd"
        );
        assert_eq!(p.source(DataType::Liquidation), Source::Unsupported);
    }

    #[test]
    fn subscribe_batches_channels() {
        let ch: Vec<String> = (0..150).map(|i| format!("book.I{i}.100ms")).collect();
        let f = DERIBIT.subscribe_frames(&ch);
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[0],
            r#"{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":30}}"#
        );
        assert!(f[2].starts_with(
            r#"{"jsonrpc":"2.0","id":11,"method":"public/subscribe","params":{"channels":["book.I100.100ms","#
        ));
        assert_eq!(DERIBIT.unsubscribe_frames(&ch).len(), 2);
    }
}

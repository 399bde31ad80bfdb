//! OKX v5 public market data: spot (`okx_spot`) and USDT/USDC-margined
//! perpetual swaps (`okx_derivatives`). One implementation serves both; it
//! holds only its [`VenueId`].
//!
//! - [`wire`]: WebSocket push frames → records or a [`crate::book::BookMsg`].
//! - [`rest`]: instrument list and the polled long/short-ratio bodies.
//! - [`checksum`]: the CRC32 of the top 25 levels its book updates carry.
//!
//! Channels (documented, `wss://ws.okx.com:8443/ws/v5/public`): `trades`,
//! `books` (400 levels: snapshot, then 100 ms increments), `tickers`,
//! `funding-rate`, `open-interest`, and `liquidation-orders`, which is
//! subscribed by **instType** (`SWAP`) rather than instrument and filtered here
//! by [`crate::venue::Instrument::wants`].
//!
//! A stream's channel name ([`Protocol::channel`]) encodes the subscribe
//! argument as `channel:instId` (`trades:BTC-USDT`), or `channel:instType` for
//! instType-wide channels (`liquidation-orders:SWAP`); [`subscribe_frames`]
//! splits it back. Orderbook and orderbook-delta share `books:<instId>`, and
//! every liquidation stream of a connection shares `liquidation-orders:SWAP`
//! (so it is subscribed once per connection).
//!
//! Units: trade, liquidation and ticker quantities of swaps are converted from
//! contracts to base units (`sz × ctVal`, exact decimal product) with the
//! venue's count kept in `contracts`. **Book levels stay in contracts** as
//! received: the book engine checksums levels exactly as sent, so
//! `okx_derivatives` `orderbook`/`orderbook_delta` quantities are contracts.
//! Inverse swaps (`ctType` `inverse`, `ctVal` in USD) are not listed (their
//! base quantity would need a division by price); configuring one fails as an
//! unknown instrument.

pub mod checksum;
pub mod history;
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

/// Production public WebSocket.
pub const WS_URL: &str = "wss://ws.okx.com:8443/ws/v5/public";
/// Production REST base.
pub const REST_URL: &str = "https://www.okx.com";

/// Channels per connection. OKX documents no per-connection channel cap for
/// public channels, only "total args of one request ≤ 64 KB" and, for many
/// 50/400-level book channels, "multiple connections each of less than 30
/// channels". 100 keeps each subscribe request one small frame; a book-heavy
/// setup should lower `streams_per_connection` (e.g. to 30).
pub const MAX_STREAMS_PER_CONNECTION: usize = 100;
/// Args per subscribe/unsubscribe request (one request stays far below 64 KB).
pub const MAX_ARGS_PER_REQUEST: usize = 100;
/// Byte ceiling of one request's args (the documented limit is 64 KB).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024;

/// The server closes a connection with no data for 30 s; a text `ping` every
/// 20 s (the documented "N < 30 s") keeps it open and proves it alive.
pub const HEARTBEAT: Heartbeat = Heartbeat {
    every: Duration::from_secs(20),
    frame: "ping",
};

/// Default poll interval of the long/short ratios: MarketPrism's 10 s. The
/// rubik series are 5-minutely (`period=5m`), so most answers repeat the last
/// point; the engine does not republish those.
pub const LSR_POLL_EVERY: Duration = Duration::from_secs(10);

/// `liquidation-orders` is subscribed per instrument type, not per instrument.
pub const LIQUIDATION_CHANNEL: &str = "liquidation-orders";

pub struct Okx {
    pub id: VenueId,
}

pub static OKX_SPOT: Okx = Okx {
    id: VenueId::OkxSpot,
};
pub static OKX_SWAP: Okx = Okx {
    id: VenueId::OkxDerivatives,
};

impl Okx {
    fn is_swap(&self) -> bool {
        self.id == VenueId::OkxDerivatives
    }

    /// `instType` of this venue's instrument list.
    pub fn inst_type(&self) -> &'static str {
        if self.is_swap() {
            "SWAP"
        } else {
            "SPOT"
        }
    }
}

impl Protocol for Okx {
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
        const WS: Source = Source::Ws { route: "" };
        match dt {
            DataType::Trade | DataType::OrderBook | DataType::OrderBookDelta | DataType::Ticker => {
                WS
            }
            DataType::FundingRate | DataType::OpenInterest | DataType::Liquidation
                if self.is_swap() =>
            {
                WS
            }
            DataType::LsrAllAccount | DataType::LsrTopPosition if self.is_swap() => Source::Poll {
                every: LSR_POLL_EVERY,
            },
            _ => Source::Unsupported,
        }
    }

    /// "Connection limit: 3 requests per second (based on IP)."
    fn connection_rate_limit(&self) -> Option<(u32, std::time::Duration)> {
        Some((3, std::time::Duration::from_secs(1)))
    }

    fn max_streams_per_connection(&self) -> usize {
        MAX_STREAMS_PER_CONNECTION
    }

    fn channel(&self, symbol: &str, dt: DataType) -> String {
        match dt {
            DataType::Trade => format!("trades:{symbol}"),
            DataType::OrderBook | DataType::OrderBookDelta => format!("books:{symbol}"),
            DataType::Ticker => format!("tickers:{symbol}"),
            DataType::FundingRate => format!("funding-rate:{symbol}"),
            DataType::OpenInterest => format!("open-interest:{symbol}"),
            DataType::Liquidation => format!("{LIQUIDATION_CHANNEL}:{}", self.inst_type()),
            // Polled (REST), never subscribed; named for logs only.
            DataType::LsrAllAccount => format!("long-short-account-ratio:{symbol}"),
            DataType::LsrTopPosition => {
                format!("long-short-position-ratio-contract-top-trader:{symbol}")
            }
            DataType::VolatilityIndex => format!("volatility:{symbol}"),
            DataType::Gap => String::new(),
        }
    }

    fn subscribe_frames(&self, channels: &[String]) -> Vec<String> {
        subscribe_frames(channels)
    }

    fn unsubscribe_frames(&self, channels: &[String]) -> Vec<String> {
        unsubscribe_frames(channels)
    }

    fn heartbeat(&self) -> Option<Heartbeat> {
        Some(HEARTBEAT)
    }

    /// `funding-rate` is pushed every 30 to 90 s whether or not it changed.
    fn stream_cadence(&self, dt: DataType) -> Option<Duration> {
        (dt == DataType::FundingRate).then(|| Duration::from_secs(90))
    }

    /// "480 `subscribe`/`unsubscribe`/`login` requests per connection per hour."
    fn control_requests_per_hour(&self) -> Option<u32> {
        Some(480)
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
        SyncRule::WsSnapshotLinked {
            checksum: Some(checksum::okx_checksum),
        }
    }

    fn instruments_request(&self, cursor: Option<&str>) -> Option<RestRequest> {
        // One page: the endpoint lists every instrument of the type.
        cursor.is_none().then(|| RestRequest {
            path: format!("{}{}", rest::INSTRUMENTS_PATH, self.inst_type()),
            weight: 1,
        })
    }

    fn parse_instruments(
        &self,
        body: &[u8],
        map: &mut InstrumentMap,
    ) -> Result<Option<String>, String> {
        let added = if self.is_swap() {
            rest::parse_swap_instruments(body, map)?
        } else {
            rest::parse_spot_instruments(body, map)?
        };
        if added == 0 {
            return Err(format!("OKX lists no {} instruments", self.inst_type()));
        }
        Ok(None)
    }

    /// None: OKX pushes the book snapshot on the WebSocket after subscribing;
    /// a gap is healed by unsubscribing and subscribing again.
    fn book_snapshot_request(&self, _raw_symbol: &str, _depth: usize) -> Option<RestRequest> {
        None
    }

    /// The REST book (`/api/v5/market/books`), for when a snapshot is requested.
    fn parse_book_snapshot(
        &self,
        raw_symbol: &str,
        body: &[u8],
        receive_ns: u64,
        msg: &mut crate::book::BookMsg,
    ) -> Result<(), crate::venue::Malformed> {
        wire::parse_book_snapshot(raw_symbol, body, receive_ns, msg)
    }

    /// OKX limits per endpoint and IP: instruments 20 req / 2 s, books 40 / 2 s,
    /// rubik statistics 5 / 2 s. One budget of 20 units per 2 s, with
    /// [`rest::RUBIK_WEIGHT`] = 4 per rubik request (so at most 5 per 2 s).
    fn rest_limit(&self) -> RestLimit {
        RestLimit {
            weight: 20,
            window: Duration::from_secs(2),
        }
    }

    fn rest_error_shape(&self) -> ErrorShape {
        rest::ERROR_SHAPE
    }

    fn poll_request(&self, dt: DataType, inst: &Instrument) -> Option<RestRequest> {
        if !self.is_swap() {
            return None;
        }
        rest::lsr_request(dt, inst)
    }

    fn parse_poll(
        &self,
        dt: DataType,
        inst: &Instrument,
        body: &[u8],
        receive_ns: u64,
        batch: &mut Batch,
    ) -> FrameOutcome {
        rest::parse_lsr(self.id, dt, inst, body, receive_ns, batch)
    }

    fn on_text(
        &self,
        text: &str,
        receive_ns: u64,
        cx: &mut ParseCtx<'_>,
        batch: &mut Batch,
    ) -> FrameOutcome {
        wire::on_text(text, receive_ns, cx, batch)
    }
}

/// Subscribe requests for `channels` (`channel:instId` / `channel:instType`),
/// at most [`MAX_ARGS_PER_REQUEST`] args and [`MAX_REQUEST_BYTES`] each, ids
/// `"1"`, `"2"`, … (OKX echoes the id in the acks).
pub fn subscribe_frames(channels: &[String]) -> Vec<String> {
    requests("subscribe", "", channels)
}

/// Unsubscribe requests, same batching, ids `"u1"`, `"u2"`, ….
pub fn unsubscribe_frames(channels: &[String]) -> Vec<String> {
    requests("unsubscribe", "u", channels)
}

fn requests(op: &str, id_prefix: &str, channels: &[String]) -> Vec<String> {
    let mut frames = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut args = 0;
    for c in channels {
        let mut arg = Vec::with_capacity(64);
        push_arg(&mut arg, c);
        if args > 0
            && (args == MAX_ARGS_PER_REQUEST || out.len() + arg.len() + 3 > MAX_REQUEST_BYTES)
        {
            finish(&mut out, &mut frames);
            args = 0;
        }
        if args == 0 {
            out.extend_from_slice(b"{\"id\":\"");
            out.extend_from_slice(id_prefix.as_bytes());
            out.extend_from_slice((frames.len() + 1).to_string().as_bytes());
            out.extend_from_slice(b"\",\"op\":\"");
            out.extend_from_slice(op.as_bytes());
            out.extend_from_slice(b"\",\"args\":[");
        } else {
            out.push(b',');
        }
        out.extend_from_slice(&arg);
        args += 1;
    }
    if args > 0 {
        finish(&mut out, &mut frames);
    }
    frames
}

fn finish(out: &mut Vec<u8>, frames: &mut Vec<String>) {
    out.extend_from_slice(b"]}");
    // Built from `&str` pieces and escaped JSON strings: valid UTF-8.
    frames.push(String::from_utf8_lossy(out).into_owned());
    out.clear();
}

/// One subscribe arg of a channel name.
fn push_arg(out: &mut Vec<u8>, channel: &str) {
    use crate::json::json_str;
    out.extend_from_slice(b"{\"channel\":");
    match channel.split_once(':') {
        Some((name, target)) => {
            json_str(out, name);
            out.extend_from_slice(if name == LIQUIDATION_CHANNEL {
                b",\"instType\":"
            } else {
                b",\"instId\":"
            });
            json_str(out, target);
        }
        None => json_str(out, channel),
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn channel_names_round_trip_to_subscribe_args() {
        let p = &OKX_SWAP;
        let chans = vec![
            p.channel("BTC-USDT-SWAP", DataType::Trade),
            p.channel("BTC-USDT-SWAP", DataType::OrderBook),
            p.channel("BTC-USDT-SWAP", DataType::Liquidation),
        ];
        assert_eq!(
            chans,
            strings(&[
                "trades:BTC-USDT-SWAP",
                "books:BTC-USDT-SWAP",
                "liquidation-orders:SWAP"
            ])
        );
        assert_eq!(
            p.subscribe_frames(&chans),
            vec![
                r#"{"id":"1","op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT-SWAP"},{"channel":"books","instId":"BTC-USDT-SWAP"},{"channel":"liquidation-orders","instType":"SWAP"}]}"#
            ]
        );
        assert_eq!(
            p.channel("X", DataType::OrderBookDelta),
            p.channel("X", DataType::OrderBook)
        );
    }

    #[test]
    fn requests_are_batched() {
        let chans: Vec<String> = (0..250).map(|i| format!("trades:S{i}-USDT")).collect();
        let f = subscribe_frames(&chans);
        assert_eq!(f.len(), 3);
        assert!(f[0].starts_with(
            r#"{"id":"1","op":"subscribe","args":[{"channel":"trades","instId":"S0-USDT"},"#
        ));
        assert!(f[2].starts_with(r#"{"id":"3","#));
        assert_eq!(f[0].matches("\"channel\"").count(), 100);
        assert_eq!(f[2].matches("\"channel\"").count(), 50);
        for frame in &f {
            let v: sonic_rs::Value = sonic_rs::from_str(frame).unwrap();
            assert!(sonic_rs::JsonValueTrait::is_object(&v));
            assert!(frame.len() < 64 * 1024);
        }
        let u = unsubscribe_frames(&chans[..2]);
        assert_eq!(
            u,
            vec![
                r#"{"id":"u1","op":"unsubscribe","args":[{"channel":"trades","instId":"S0-USDT"},{"channel":"trades","instId":"S1-USDT"}]}"#
            ]
        );
        assert!(subscribe_frames(&[]).is_empty());
        // Long names split by bytes before the count limit.
        let long: Vec<String> = (0..90)
            .map(|i| format!("trades:{}{i}", "X".repeat(1000)))
            .collect();
        let f = subscribe_frames(&long);
        assert!(f.len() >= 3, "{}", f.len());
        assert!(f.iter().all(|s| s.len() <= MAX_REQUEST_BYTES + 64));
    }

    #[test]
    fn sources_per_market() {
        assert_eq!(OKX_SPOT.source(DataType::Trade), Source::Ws { route: "" });
        assert_eq!(OKX_SPOT.source(DataType::FundingRate), Source::Unsupported);
        assert_eq!(
            OKX_SPOT.source(DataType::LsrAllAccount),
            Source::Unsupported
        );
        for dt in [
            DataType::Trade,
            DataType::OrderBook,
            DataType::OrderBookDelta,
            DataType::Ticker,
            DataType::FundingRate,
            DataType::OpenInterest,
            DataType::Liquidation,
        ] {
            assert_eq!(OKX_SWAP.source(dt), Source::Ws { route: "" }, "{dt}");
        }
        assert_eq!(
            OKX_SWAP.source(DataType::LsrTopPosition),
            Source::Poll {
                every: Duration::from_secs(10)
            }
        );
        assert_eq!(
            OKX_SWAP.source(DataType::VolatilityIndex),
            Source::Unsupported
        );
        assert_eq!(OKX_SWAP.heartbeat(), Some(HEARTBEAT));
        assert_eq!(OKX_SWAP.book_snapshot_request("BTC-USDT-SWAP", 400), None);
        assert_eq!(
            OKX_SPOT.instruments_request(None).unwrap().path,
            "/api/v5/public/instruments?instType=SPOT"
        );
        assert_eq!(
            OKX_SWAP.instruments_request(None).unwrap().path,
            "/api/v5/public/instruments?instType=SWAP"
        );
        assert_eq!(OKX_SWAP.instruments_request(Some("x")), None);
    }
}

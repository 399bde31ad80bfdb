//! Venue protocols. A venue module only *describes* its protocol: endpoints,
//! channel names, subscribe frames and heartbeats, how a text frame or a REST
//! body becomes records or book messages, which book-sync procedure applies,
//! how missed trades are fetched again. The engine around it (connections,
//! books, REST budget, batching, sinks) is generic and reaches a venue only
//! through [`Protocol`] and its row of the venue table ([`table`]): this
//! module and those below it are the only home of venue facts.
//!
//! Where a frame becomes a record: `binance::wire` (Binance spot),
//! `binance::futures` (USDⓈ-M), `okx::wire`, `bybit::wire`, `deribit::wire`.
//!
//! # Adding a venue
//!
//! One new folder, one line in the table, one line in the id's list:
//!
//! 1. `src/venue/<name>/mod.rs`: a `static` implementing [`Protocol`] (it may
//!    hold its [`VenueId`] when one implementation serves several markets, as
//!    OKX spot and swap do). Say where each data type comes from
//!    ([`Protocol::source`]), the channel names and subscribe frames, the
//!    heartbeat, REST limits and error answers
//!    ([`Protocol::rest_error_shape`]), the instrument list
//!    ([`Protocol::parse_instruments`]) and the book-sync procedure
//!    ([`Protocol::book_rule`]: one of [`SyncRule`]'s, with the venue's own
//!    checksum function if its updates carry one, as `okx::checksum`).
//! 2. In the same folder, by job: `wire.rs` (a text frame → records in the
//!    batch, or the reused [`BookMsg`]: borrow the frame, push into the
//!    arena, allocate nothing per frame), `rest.rs` (instrument list, polled
//!    bodies, the REST book snapshot if the procedure needs one, the error
//!    shape), `history.rs` if its trades carry a consecutive number
//!    ([`Protocol::trade_history_request`], answers handed to
//!    [`history::push`]; and [`Protocol::trade_id_is_seq`] if that number
//!    is the record's `trade_id`, so a cluster takeover resumes from it). State kept between frames of a connection is the
//!    venue's own type, kept in [`VenueState`] (`bybit::State`).
//! 3. Three existing files, a line each: `pub mod <name>;` below, its
//!    variant in `model::VenueId` (`ALL` and `COUNT` follow from that list),
//!    and its row in [`VENUES`] (`table.rs`): config key, the `exchange` and
//!    `market_type` of its records, the protocol. Config keys, record names,
//!    metric labels, NATS subjects and the trade encoding head all read that
//!    row; a data type published under another market type (Deribit's
//!    volatility index: `options`) says so in [`Protocol::market_type_of`].
//! 4. Its mock exchange: a new `src/mock/<name>.rs` (frames, REST bodies,
//!    control replies, from deterministic feeds) and six existing files:
//!    `mock/mod.rs` (`pub mod`), `mock/venues.rs` (the mock's venue table:
//!    book faults, symbols, book format, channels, which of its writers a
//!    frame goes to), `mock/vsession/mod.rs` (its `Proto`: WebSocket path,
//!    fault slot, stats key, control dispatch), `mock/vsession/control.rs`
//!    (its subscribe/ping dialect), `mock/fault.rs` (its fault slot, and its
//!    close notice if it sends one) and `mock/rest.rs` (its REST paths);
//!    `mock/history.rs` too when its trades are backfilled (step 2). A venue
//!    that subscribes in the URL, as Binance, uses `mock/session` instead.
//! 5. Its tests: `tests/venue_<name>.rs` with its documented frames in
//!    `tests/fixtures/<name>/`; its arms in the matches over [`VenueId`] of
//!    `tests/fuzz/seeds.rs` and `tests/e2e_venues.rs` (the compiler asks).
//!
//! Counted: 3 existing files in `src/` outside the mock and 6 (7 with trade
//! backfill) in `src/mock`, besides the new folder and mock module. Nothing
//! in `engine`, `book`, `sink`, `config` or `metrics` changes.

pub mod binance;
pub mod bybit;
pub mod config;
pub mod deribit;
pub mod error_body;
pub mod flat;
pub mod history;
pub mod instruments;
pub mod json;
pub mod nesting;
pub mod okx;
pub mod sym;
pub mod table;

use crate::batch::Batch;
use crate::book::{BookMsg, SyncRule};
pub use crate::metrics::Malformed;
use crate::model::{DataType, VenueId};
use config::ConnectionPlan;
pub use instruments::{Instrument, InstrumentMap};
use std::any::Any;
use std::time::Duration;
pub use table::{Venue, VENUES};
use url::Url;

/// Production endpoints of a venue (overridable per config).
pub struct Endpoints {
    pub ws_url: &'static str,
    pub rest_url: &'static str,
}

/// How a venue delivers a data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A WebSocket channel, on the venue's `route` (Binance USDⓈ-M splits
    /// `public` book data from `market` data; "" where there is one endpoint).
    Ws { route: &'static str },
    /// REST polling at this default interval (the venue has no stream for it).
    Poll { every: Duration },
    /// The venue does not offer it.
    Unsupported,
}

/// A client heartbeat the venue requires (server pings are answered by the
/// WebSocket layer and need none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub every: Duration,
    /// Text frame to send, e.g. OKX `ping`, Bybit `{"op":"ping"}`.
    pub frame: &'static str,
}

/// One REST request: path and query (appended to `rest_url`), and its cost in
/// the venue's request-weight units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRequest {
    pub path: String,
    pub weight: u32,
}

/// A venue's REST request budget (per IP; the engine splits it across cores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestLimit {
    /// Weight units allowed per `window`.
    pub weight: u32,
    pub window: Duration,
}

/// Where a venue's REST error answers keep their code and message (JSON
/// paths), for the log line that reports one ([`error_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorShape {
    pub code: &'static [&'static str],
    pub message: &'static [&'static str],
}

/// What a parser may use besides the frame: the instrument list, the reused
/// book message it fills, per-connection venue state and a reply queue.
pub struct ParseCtx<'a> {
    pub venue: VenueId,
    pub instruments: &'a InstrumentMap,
    /// Filled when the parser returns [`FrameOutcome::Book`].
    pub book: &'a mut BookMsg,
    /// Per-connection state of the venue's own type (e.g. Bybit's ticker
    /// snapshot+delta cache).
    pub state: &'a mut VenueState,
    /// Text frames to send back on this connection (Deribit `test_request` → `public/test`).
    pub replies: &'a mut Vec<String>,
}

/// Per-connection state a venue parser keeps between frames. Its type is
/// the venue's own (Bybit: `bybit::State`); it is made on first use, so a
/// connection of a venue that keeps none holds nothing.
#[derive(Default)]
pub struct VenueState(Option<Box<dyn Any + Send>>);

impl VenueState {
    /// The state, if this connection's venue made one of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_ref().and_then(|b| b.downcast_ref())
    }

    /// The state of type `T`, made (default) on first use.
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        if !self.0.as_ref().is_some_and(|b| b.is::<T>()) {
            self.0 = Some(Box::new(T::default()));
        }
        match self.0.as_mut().and_then(|b| b.downcast_mut()) {
            Some(s) => s,
            None => unreachable!("set above"),
        }
    }
}

impl std::fmt::Debug for VenueState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "VenueState(..)"
        } else {
            "VenueState(None)"
        })
    }
}

/// A venue protocol. Implementations are zero-sized or hold only their
/// [`VenueId`] (OKX spot and swap share one implementation).
pub trait Protocol: Sync {
    fn id(&self) -> VenueId;
    fn endpoints(&self) -> Endpoints;
    /// How `dt` is collected (`Unsupported`: rejected by config validation).
    fn source(&self, dt: DataType) -> Source;
    /// Whether a configured symbol is collected for `dt` (Deribit lists
    /// currencies such as `BTC` for its volatility index and instruments such
    /// as `BTC-PERPETUAL` for the rest, under one `symbols` key).
    fn symbol_applies(&self, _symbol: &str, _dt: DataType) -> bool {
        true
    }
    /// Whether `dt`'s symbols must be in the instrument list.
    fn needs_instrument(&self, _dt: DataType) -> bool {
        true
    }
    /// The venue's documented ceiling of channels per connection.
    fn max_streams_per_connection(&self) -> usize;
    /// The venue's channel name for one stream; several data types may share
    /// one channel (Bybit `tickers` carries funding, open interest and BBO).
    fn channel(&self, symbol: &str, dt: DataType) -> String;
    /// URL a connection opens; `channels` are subscribed in the URL where the
    /// venue allows it (Binance), else by [`Protocol::subscribe_frames`].
    fn connection_url(&self, base: &Url, _route: &str, _channels: &[String]) -> Url {
        base.clone()
    }
    /// Frames sent right after connecting (subscriptions, heartbeat set-up).
    fn subscribe_frames(&self, _channels: &[String]) -> Vec<String> {
        Vec::new()
    }
    /// Frames that drop channels (book resync: unsubscribe, then subscribe again).
    fn unsubscribe_frames(&self, _channels: &[String]) -> Vec<String> {
        Vec::new()
    }
    fn heartbeat(&self) -> Option<Heartbeat> {
        None
    }
    /// Frames that subscribe again to channels of a live connection whose
    /// data stopped (the venue dropped them, or a book must resync):
    /// unsubscribe then subscribe, so a venue that refuses a duplicate
    /// subscription accepts it.
    fn resubscribe_frames(&self, channels: &[String]) -> Vec<String> {
        let mut f = self.unsubscribe_frames(channels);
        f.extend(self.subscribe_frames(channels));
        f
    }
    /// The push interval the venue documents for `dt` whether or not
    /// anything changed (Binance `markPrice@1s`), so that a silent stream of
    /// that type is a dropped subscription, not a quiet market. `None`: the
    /// stream speaks only when something happens (trades, book diffs).
    fn stream_cadence(&self, _dt: DataType) -> Option<Duration> {
        None
    }
    /// A connection silent this long (no frame, no ping, no pong) is dead.
    /// Default: two client heartbeats and 5 s, or 60 s for venues that ping
    /// us (Binance spot every 20 s).
    fn stale_after(&self) -> Duration {
        match self.heartbeat() {
            Some(h) => h.every * 2 + Duration::from_secs(5),
            None => Duration::from_secs(60),
        }
    }
    /// The venue's hard connection lifetime (Binance: 24 h), rotated before.
    fn connection_lifetime(&self) -> Option<Duration> {
        None
    }
    /// New connections the venue allows per window per IP (split over cores).
    fn connection_rate_limit(&self) -> Option<(u32, Duration)> {
        None
    }
    /// Subscribe/unsubscribe requests a connection may send per hour (OKX:
    /// 480); book resyncs beyond it reconnect instead of resubscribing.
    fn control_requests_per_hour(&self) -> Option<u32> {
        None
    }
    /// The venue's book-sync procedure (and its checksum, if it sends one).
    fn book_rule(&self) -> SyncRule;
    /// `market_type` of records of `dt` where it differs from the venue's
    /// (Deribit's volatility index: `options`, as MarketPrism publishes it).
    fn market_type_of(&self, _dt: DataType) -> Option<&'static str> {
        None
    }
    /// REST request of the instrument list (page after `cursor`); `None`: no list.
    fn instruments_request(&self, cursor: Option<&str>) -> Option<RestRequest>;
    /// Adds the listed instruments to `map`; returns the next page's cursor.
    fn parse_instruments(
        &self,
        body: &[u8],
        map: &mut InstrumentMap,
    ) -> Result<Option<String>, String>;
    /// REST book snapshot, where the venue's sync procedure needs one.
    fn book_snapshot_request(&self, _raw_symbol: &str, _depth: usize) -> Option<RestRequest> {
        None
    }
    fn parse_book_snapshot(
        &self,
        _raw_symbol: &str,
        _body: &[u8],
        _receive_ns: u64,
        _msg: &mut BookMsg,
    ) -> Result<(), Malformed> {
        Err(Malformed::UnknownEvent)
    }
    fn rest_limit(&self) -> RestLimit;
    /// Where its REST error answers keep their code and message.
    fn rest_error_shape(&self) -> ErrorShape;
    /// REST request polling `dt` of one instrument (`Source::Poll` types).
    fn poll_request(&self, _dt: DataType, _inst: &Instrument) -> Option<RestRequest> {
        None
    }
    /// A polled REST body → records.
    fn parse_poll(
        &self,
        _dt: DataType,
        _inst: &Instrument,
        _body: &[u8],
        _receive_ns: u64,
        _batch: &mut Batch,
    ) -> FrameOutcome {
        FrameOutcome::Malformed(Malformed::UnknownEvent)
    }
    /// Whether a trade record's `trade_id` is the venue's consecutive trade
    /// number (its continuity key), so the last trade a stream holds tells
    /// where a takeover resumes. Venues keyed otherwise (a `trade_seq` not in
    /// the record, or time) start a takeover at the first live trade.
    fn trade_id_is_seq(&self) -> bool {
        false
    }
    /// REST request for missed trades `from..=to` (sequence numbers) of one
    /// instrument; `None`: the venue cannot be backfilled by id.
    fn trade_history_request(
        &self,
        _raw_symbol: &str,
        _from: u64,
        _to: u64,
    ) -> Option<RestRequest> {
        None
    }
    /// A trade-history answer → backfilled trades of `from..=to`, oldest
    /// first; returns the lowest and highest sequence number recovered.
    fn parse_trade_history(
        &self,
        _inst: &Instrument,
        _body: &[u8],
        _range: (u64, u64),
        _receive_ns: u64,
        _batch: &mut Batch,
    ) -> Result<Option<(u64, u64)>, Malformed> {
        Err(Malformed::UnknownEvent)
    }
    /// One text frame → records in `batch`, or a book message in `cx.book`.
    fn on_text(
        &self,
        text: &str,
        receive_ns: u64,
        cx: &mut ParseCtx<'_>,
        batch: &mut Batch,
    ) -> FrameOutcome;
}

/// The protocol of a venue (its row of [`VENUES`]).
pub fn protocol(id: VenueId) -> &'static dyn Protocol {
    id.protocol()
}

/// The book-sync procedure of a venue (what `Books::new` is given).
pub fn book_rule(id: VenueId) -> SyncRule {
    id.protocol().book_rule()
}

pub fn endpoints(id: VenueId) -> Endpoints {
    protocol(id).endpoints()
}

/// Whether the venue offers a data type.
pub fn supports(id: VenueId, dt: DataType) -> bool {
    protocol(id).source(dt) != Source::Unsupported
}

pub fn max_streams_per_connection(id: VenueId) -> usize {
    protocol(id).max_streams_per_connection()
}

/// The venue's name for one stream (for URLs, subscribe frames and logs).
pub fn stream_name(id: VenueId, symbol: &str, dt: DataType) -> String {
    protocol(id).channel(symbol, dt)
}

/// The distinct channels of a connection, in plan order.
pub fn connection_channels(conn: &ConnectionPlan) -> Vec<String> {
    let p = protocol(conn.venue);
    let mut out: Vec<String> = Vec::with_capacity(conn.streams.len());
    for s in &conn.streams {
        let c = p.channel(&s.symbol, s.data_type);
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The URL a connection opens (subscriptions included where the venue allows).
pub fn connection_url(base: &Url, conn: &ConnectionPlan) -> Url {
    protocol(conn.venue).connection_url(base, conn.route, &connection_channels(conn))
}

/// What one text frame turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// This many records were pushed into the batch.
    Records(u32),
    /// The parser filled `ParseCtx::book` with a book message.
    Book,
    /// A subscription ack, pong or other control message (no data).
    Control,
    /// The venue announced this connection will close soon (Binance
    /// `serverShutdown`, OKX `64008`): time to rotate to a new one.
    Notice,
    /// The venue reported an error on a control request.
    ControlError,
    /// A frame of a known channel that carries nothing to record (e.g. a
    /// broadcast entry for an instrument this collector does not want).
    Ignored,
    /// Rejected; counted and skipped.
    Malformed(Malformed),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_state_holds_the_venues_own_type() {
        let mut s = VenueState::default();
        assert!(s.get::<bybit::State>().is_none());
        s.get_or_default::<bybit::State>();
        assert!(s.get::<bybit::State>().is_some());
        assert!(s.get::<u32>().is_none());
        // Another type replaces it (one venue per connection: never in practice).
        *s.get_or_default::<u32>() = 7;
        assert_eq!(s.get::<u32>(), Some(&7));
        assert!(s.get::<bybit::State>().is_none());
    }

    #[test]
    fn book_rule_is_the_protocols() {
        for v in VenueId::ALL {
            assert_eq!(
                book_rule(v).rest_snapshot(),
                matches!(v, VenueId::BinanceSpot | VenueId::BinanceDerivatives),
                "{v}"
            );
        }
    }
}

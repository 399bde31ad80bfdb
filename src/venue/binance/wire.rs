//! Binance combined-stream frames → records or book messages, for spot and
//! USDⓈ-M alike (same envelope, same one-letter field names). **This is where
//! a Binance frame becomes a record.**
//!
//! A combined frame wraps each event: `{"stream":"btcusdt@trade","data":{...}}`.
//! Documented payloads (spot docs "Trade Streams" etc.; USDⓈ-M "Websocket
//! Market Streams"), each one a test below or in `tests/venue_binance.rs`:
//!
//! | event | example | becomes |
//! |---|---|---|
//! | `trade` (spot) | `{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}` | `Trade`, id `t` |
//! | `aggTrade` | `{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":true}` | `Trade`, id `a` |
//! | `depthUpdate` | `{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}` | `BookMsg` (`pu` USDⓈ-M only) |
//! | `bookTicker` | spot `{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}` (no `e`, no time); USDⓈ-M adds `e`,`E`,`T` | `Ticker` |
//! | `markPriceUpdate` | `{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","ap":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}` | `FundingRate` |
//! | `forceOrder` | `{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}` | `Liquidation` |
//! | `serverShutdown` | `{"e":"serverShutdown","E":1770123456789}` | `Notice` (rotate) |
//!
//! `m` = "is the buyer the market maker", so the taker sold when `m` is true.
//! Control answers have no `stream`: `{"result":null,"id":1}`, errors either
//! `{"code":2,"msg":"..."}` or (live servers) `{"error":{"code":2,"msg":"..."},"id":1}`.
//!
//! Parsing is one sonic-rs pass over the borrowed `&str`: a hand-written
//! visitor (the one-letter keys mean different things per event: `a` is an
//! aggregate trade id, an ask price or the ask levels) that writes book
//! levels straight into the reused [`BookMsg`] vectors, so no frame allocates.
//! Decimals go straight from the received string to `rust_decimal` (never f64).

use crate::batch::{
    Batch, FundingRate, Level, Liquidation, Origin, Record, Ticker, Trade, TradeId,
};
use crate::book::BookMsg;
use crate::model::{Side, VenueId};
use crate::venue::flat::{Scalar, Scanner};
use crate::venue::{FrameOutcome, InstrumentMap, Malformed};
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

mod fast;
mod records;

use fast::{flat_frame, trade_layout};
use records::{depth, funding, liquidation, ticker, trade};

/// Parses one text frame of `venue` into `batch` (records) or `book` (a
/// depth update; the caller applies it when [`FrameOutcome::Book`] is returned).
pub fn on_frame(
    text: &str,
    receive_ns: u64,
    venue: VenueId,
    instruments: &InstrumentMap,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    on_frame_with(
        Reader::Layout,
        text,
        receive_ns,
        venue,
        instruments,
        book,
        batch,
    )
}

/// Which readers a frame may take: benches compare them, and the fuzz
/// suite holds the fast ones to [`Reader::Serde`] (same outcome, same
/// records). The protocol always uses [`Reader::Layout`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The trade layout reader, then the flat scanner, then serde.
    Layout,
    /// The flat scanner, then serde.
    Flat,
    /// sonic-rs typed serde only.
    Serde,
}

/// [`on_frame`] with a choice of readers.
#[doc(hidden)]
pub fn on_frame_with(
    reader: Reader,
    text: &str,
    receive_ns: u64,
    venue: VenueId,
    instruments: &InstrumentMap,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    let cx = Cx {
        venue,
        receive_ns,
        instruments,
    };
    parse(text, &cx, reader, book, batch)
}

fn parse(
    text: &str,
    cx: &Cx<'_>,
    reader: Reader,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    book.clear();
    // Flat events (trades, tickers, funding) take the fast scanner; anything
    // it declines (book levels, control answers, odd JSON) the full parser.
    let fast = match reader {
        Reader::Layout => trade_layout(text).or_else(|| flat_frame(text)),
        Reader::Flat => flat_frame(text),
        Reader::Serde => None,
    };
    if let Some((stream, data)) = fast {
        return dispatch(cx, stream, &data, false, book, batch);
    }
    on_frame_full(text, cx, book, batch)
}

/// The full serde parser (frames the fast scanner declines).
fn on_frame_full(text: &str, cx: &Cx<'_>, book: &mut BookMsg, batch: &mut Batch) -> FrameOutcome {
    if crate::venue::json::too_deep(text.as_bytes()) {
        return FrameOutcome::Malformed(Malformed::BadJson);
    }
    let mut bad_level = false;
    let mut de = sonic_rs::Deserializer::from_str(text);
    let parsed = FrameSeed {
        book: &mut *book,
        bad_level: &mut bad_level,
    }
    .deserialize(&mut de)
    .and_then(|f| de.end().map(|()| f));
    let frame = match parsed {
        Ok(f) => f,
        Err(e) => return FrameOutcome::Malformed(json_error(&e)),
    };
    let (stream, data) = match (frame.stream, frame.data) {
        (Some(s), Some(d)) => (s, d),
        (None, None) if frame.error => return FrameOutcome::ControlError,
        (None, None) => {
            // A raw (non-combined) event: only the shutdown notice is expected.
            return match frame.event {
                Some("serverShutdown") => FrameOutcome::Notice,
                None => FrameOutcome::Control,
                Some(_) => FrameOutcome::Malformed(Malformed::UnknownEvent),
            };
        }
        _ => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    dispatch(cx, stream, &data, bad_level, book, batch)
}

/// A combined-stream event → record or book message, by its `e`.
fn dispatch(
    cx: &Cx<'_>,
    stream: &str,
    data: &Event<'_>,
    bad_level: bool,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    match data.event {
        Some("trade") => {
            let Some(id) = data.trade_id else {
                return FrameOutcome::Malformed(Malformed::WrongType);
            };
            trade(cx, data, id, batch)
        }
        Some("aggTrade") => {
            let Field::Num(id) = data.a else {
                return FrameOutcome::Malformed(Malformed::WrongType);
            };
            trade(cx, data, id, batch)
        }
        Some("depthUpdate") if is_diff_depth(stream) => depth(cx, data, bad_level, book),
        Some("bookTicker") => ticker(cx, data, batch),
        // Spot bookTicker payloads carry no `e`.
        None if stream.ends_with("@bookTicker") => ticker(cx, data, batch),
        Some("markPriceUpdate") => funding(cx, data, batch),
        Some("forceOrder") => liquidation(cx, data, batch),
        Some("serverShutdown") => FrameOutcome::Notice,
        _ => FrameOutcome::Malformed(Malformed::UnknownEvent),
    }
}

/// Spot trade-path entry for callers without a [`crate::venue::ParseCtx`]
/// (benches): book messages are parsed into a throwaway [`BookMsg`], which
/// allocates only for depth frames. The protocol uses [`on_frame`].
pub fn on_text(
    text: &str,
    receive_ns: u64,
    instruments: &InstrumentMap,
    batch: &mut Batch,
) -> FrameOutcome {
    let mut book = BookMsg::default();
    on_frame(
        text,
        receive_ns,
        VenueId::BinanceSpot,
        instruments,
        &mut book,
        batch,
    )
}

/// A sonic-rs error → why the frame was rejected.
pub(super) fn json_error(e: &sonic_rs::Error) -> Malformed {
    if e.is_unmatched_type() {
        Malformed::WrongType
    } else {
        Malformed::BadJson
    }
}

/// `<sym>@depth` / `<sym>@depth@100ms` (a diff stream), not the partial
/// `<sym>@depth5@100ms` (USDⓈ-M partial books are `depthUpdate`s too).
fn is_diff_depth(stream: &str) -> bool {
    match stream.find("@depth") {
        Some(i) => {
            let rest = &stream[i + "@depth".len()..];
            rest.is_empty() || rest.starts_with('@')
        }
        None => false,
    }
}

struct Cx<'i> {
    venue: VenueId,
    receive_ns: u64,
    instruments: &'i InstrumentMap,
}

/// Pushes one record built by `f` (which copies strings into the arena).
#[inline]
pub(super) fn push(
    batch: &mut Batch,
    receive_ns: u64,
    f: impl for<'b> FnOnce(&'b bumpalo::Bump) -> Record<'b>,
) -> FrameOutcome {
    match batch.push_with::<()>(receive_ns, |bump| Ok(f(bump))) {
        Ok(()) => FrameOutcome::Records(1),
        Err(()) => FrameOutcome::Malformed(Malformed::WrongType),
    }
}

/// Exact decimal from the venue's string; negative values are not prices or sizes.
#[inline]
pub(super) fn decimal(s: &str) -> Option<Decimal> {
    let d = crate::venue::json::exact_decimal(s)?;
    if d.is_sign_negative() {
        return None;
    }
    Some(d)
}

/// Exact decimal that may be negative (funding rates).
#[inline]
pub(super) fn signed_decimal(s: &str) -> Option<Decimal> {
    crate::venue::json::exact_decimal(s)
}

/// An optional non-negative decimal: absent is fine, present must parse.
#[inline]
fn opt_decimal(s: Option<&str>) -> Result<Option<Decimal>, ()> {
    match s {
        None => Ok(None),
        Some(s) => decimal(s).map(Some).ok_or(()),
    }
}

// ---------------------------------------------------------------------------
// The one-pass deserializer.
// ---------------------------------------------------------------------------

/// Envelope of a frame. Unknown keys are skipped.
struct Frame<'a> {
    stream: Option<&'a str>,
    data: Option<Event<'a>>,
    /// `error` or `code` present: a control error answer.
    error: bool,
    /// Top-level `e` (raw, non-combined event).
    event: Option<&'a str>,
}

/// A value of the keys whose type depends on the event (`a`, `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    Absent,
    Str(&'a str),
    Num(u64),
    /// Levels written into the book message.
    Levels,
}

/// Union of the event fields read (the event type decides which are required).
struct Event<'a> {
    event: Option<&'a str>,
    event_time: Option<u64>,
    /// `T`: trade time, transaction time or next funding time.
    time: Option<u64>,
    symbol: Option<&'a str>,
    trade_id: Option<u64>,
    /// aggTrade id / bookTicker ask price / depth asks.
    a: Field<'a>,
    /// bookTicker bid price / depth bids.
    b: Field<'a>,
    ask_qty: Option<&'a str>,
    bid_qty: Option<&'a str>,
    /// `p`: trade price or mark price.
    price: Option<&'a str>,
    quantity: Option<&'a str>,
    buyer_is_maker: Option<bool>,
    first_update: Option<u64>,
    last_update: Option<u64>,
    prev_update: Option<i64>,
    funding_rate: Option<&'a str>,
    index_price: Option<&'a str>,
    order: Option<ForceOrder<'a>>,
}

impl Event<'_> {
    fn empty() -> Self {
        Event {
            event: None,
            event_time: None,
            time: None,
            symbol: None,
            trade_id: None,
            a: Field::Absent,
            b: Field::Absent,
            ask_qty: None,
            bid_qty: None,
            price: None,
            quantity: None,
            buyer_is_maker: None,
            first_update: None,
            last_update: None,
            prev_update: None,
            funding_rate: None,
            index_price: None,
            order: None,
        }
    }
}

/// `forceOrder.o`. Unknown fields are ignored.
#[derive(Deserialize)]
struct ForceOrder<'a> {
    #[serde(rename = "s", borrow, default)]
    symbol: Option<&'a str>,
    #[serde(rename = "S", borrow, default)]
    side: Option<&'a str>,
    #[serde(rename = "q", borrow, default)]
    quantity: Option<&'a str>,
    #[serde(rename = "p", borrow, default)]
    price: Option<&'a str>,
    #[serde(rename = "ap", borrow, default)]
    avg_price: Option<&'a str>,
    #[serde(rename = "T", default)]
    time: Option<u64>,
}

struct FrameSeed<'v> {
    book: &'v mut BookMsg,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Frame<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance stream frame")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Frame<'de>, M::Error> {
        let mut frame = Frame {
            stream: None,
            data: None,
            error: false,
            event: None,
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "stream" => frame.stream = Some(map.next_value()?),
                "data" => {
                    frame.data = Some(map.next_value_seed(EventSeed {
                        book: &mut *self.book,
                        bad_level: &mut *self.bad_level,
                    })?)
                }
                "error" | "code" => {
                    map.next_value::<IgnoredAny>()?;
                    frame.error = true;
                }
                "e" => frame.event = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(frame)
    }
}

struct EventSeed<'v> {
    book: &'v mut BookMsg,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Event<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Event<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance event object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Event<'de>, M::Error> {
        let mut ev = Event::empty();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "e" => ev.event = Some(map.next_value()?),
                "E" => ev.event_time = Some(map.next_value()?),
                "T" => ev.time = Some(map.next_value()?),
                "s" => ev.symbol = Some(map.next_value()?),
                "t" => ev.trade_id = Some(map.next_value()?),
                "p" => ev.price = Some(map.next_value()?),
                "q" => ev.quantity = Some(map.next_value()?),
                "m" => ev.buyer_is_maker = Some(map.next_value()?),
                "U" => ev.first_update = Some(map.next_value()?),
                "u" => ev.last_update = Some(map.next_value()?),
                "pu" => ev.prev_update = Some(map.next_value()?),
                "A" => ev.ask_qty = Some(map.next_value()?),
                "B" => ev.bid_qty = Some(map.next_value()?),
                "r" => ev.funding_rate = Some(map.next_value()?),
                "i" => ev.index_price = Some(map.next_value()?),
                "a" => {
                    ev.a = map.next_value_seed(FieldSeed {
                        levels: &mut self.book.asks,
                        bad_level: &mut *self.bad_level,
                    })?
                }
                "b" => {
                    ev.b = map.next_value_seed(FieldSeed {
                        levels: &mut self.book.bids,
                        bad_level: &mut *self.bad_level,
                    })?
                }
                "o" => ev.order = map.next_value_seed(OrderSeed)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ev)
    }
}

/// `a` / `b`: a string, a number, or an array of levels (written to `levels`).
struct FieldSeed<'v> {
    levels: &'v mut Vec<Level>,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an unsigned integer or an array of [price, quantity]")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<'de>, E> {
        Ok(Field::Num(v))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Field<'de>, S::Error> {
        LevelsSeed {
            out: self.levels,
            bad_level: self.bad_level,
        }
        .visit_seq(seq)?;
        Ok(Field::Levels)
    }
}

/// `[["price","qty"], ...]` appended to `out`; a level that is not an exact
/// non-negative decimal sets `bad_level` (the parse goes on, the caller rejects).
pub(super) struct LevelsSeed<'v> {
    pub out: &'v mut Vec<Level>,
    pub bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for LevelsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [price, quantity]")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(LevelStr(p, q)) = seq.next_element()? {
            match (decimal(p), decimal(q)) {
                (Some(price), Some(quantity)) => self.out.push(Level { price, quantity }),
                _ => *self.bad_level = true,
            }
        }
        Ok(())
    }
}

/// One `["price","qty"]` pair (extra elements are ignored).
struct LevelStr<'a>(&'a str, &'a str);

impl<'de> Deserialize<'de> for LevelStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LevelStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[price, quantity]")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<LevelStr<'de>, S::Error> {
                let (Some(p), Some(q)) = (seq.next_element()?, seq.next_element()?) else {
                    return Err(de::Error::invalid_length(0, &self));
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LevelStr(p, q))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `o`: the force order object, or anything else (24hrTicker's `o` is the
/// open price) → `None`.
struct OrderSeed;

impl<'de> DeserializeSeed<'de> for OrderSeed {
    type Value = Option<ForceOrder<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<Option<ForceOrder<'de>>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OrderSeed {
    type Value = Option<ForceOrder<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a force order object")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        ForceOrder::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
